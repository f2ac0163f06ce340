//! RFC 8707 resource indicators: which of the server's known resources a requested one names.
//!
//! RFC 3986 §6.2.2 and §6.2.3 make `https://api.example` and `https://api.example/` the same
//! resource (an empty path is `/` for http and https), and scheme and host case-insensitive. MCP
//! clients send the resource with or without that slash, so both must match. A path's own
//! trailing slash still matters: `https://api.example/mcp/` is not `https://api.example/mcp`.

/// The known resource `requested` names, as configured (so that tokens always carry one
/// spelling of it), or `None` when it is not an absolute URI without a fragment that equals
/// one of `known` after normalization.
pub fn match_known<'a>(requested: &str, known: &'a [String]) -> Option<&'a str> {
    if requested.contains('#') || url::Url::parse(requested).is_err() {
        return None;
    }
    if let Some(exact) = known.iter().find(|k| k.as_str() == requested) {
        return Some(exact);
    }
    let wanted = normalize(requested)?;
    known
        .iter()
        .find(|k| normalize(k).as_deref() == Some(wanted.as_str()))
        .map(String::as_str)
}

/// The syntax-based normal form of an absolute URI (lower-case scheme and host, default port
/// dropped, empty path as `/`, dot segments removed, percent-encoded unreserved characters
/// decoded and the other percent-encodings in upper case: RFC 3986 §6.2.2), or `None` when it
/// is not absolute or has a fragment (RFC 8707 §2).
pub fn normalize(uri: &str) -> Option<String> {
    if uri.contains('#') {
        return None;
    }
    let parsed = url::Url::parse(uri).ok()?;
    Some(percent_encoding_normalized(parsed.as_str()))
}

/// RFC 3986 §6.2.2.1 and §6.2.2.2: `%6D` is `m`, `%2f` is `%2F`.
fn percent_encoding_normalized(s: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                let decoded = char::from(u8::try_from(hi * 16 + lo).unwrap_or(0));
                if decoded.is_ascii_alphanumeric() || matches!(decoded, '-' | '.' | '_' | '~') {
                    out.push(decoded);
                } else {
                    out.push('%');
                    out.push_str(&s[i + 1..i + 3].to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        // Not a percent-encoding: copy the character as it is.
        let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec![
            "https://auth.example.com".into(),
            "https://api.example.com/mcp".into(),
        ]
    }

    #[test]
    fn a_trailing_slash_on_a_pathless_uri_is_the_same_resource() {
        let k = known();
        assert_eq!(
            match_known("https://auth.example.com/", &k),
            Some("https://auth.example.com")
        );
        assert_eq!(
            match_known("HTTPS://Auth.Example.com:443", &k),
            Some("https://auth.example.com")
        );
        assert_eq!(
            match_known("https://auth.example.com", &k),
            Some("https://auth.example.com")
        );
    }

    #[test]
    fn a_paths_trailing_slash_other_hosts_and_fragments_do_not_match() {
        let k = known();
        assert_eq!(match_known("https://api.example.com/mcp/", &k), None);
        assert_eq!(match_known("https://api.example.com/", &k), None);
        assert_eq!(match_known("https://auth.example.com/#x", &k), None);
        assert_eq!(match_known("https://auth.example.org/", &k), None);
        assert_eq!(match_known("not a uri", &k), None);
        assert_eq!(
            match_known("https://api.example.com/mcp", &k),
            Some("https://api.example.com/mcp")
        );
    }

    #[test]
    fn percent_encodings_are_normalized() {
        let k = known();
        assert_eq!(
            match_known("https://api.example.com/%6Dcp", &k),
            Some("https://api.example.com/mcp")
        );
        assert_eq!(
            match_known("https://api.example.com/%6d%63%70", &k),
            Some("https://api.example.com/mcp")
        );
        // A reserved character stays encoded, in either case of hex digit.
        let slash = vec!["https://api.example.com/a%2Fb".to_owned()];
        assert_eq!(
            match_known("https://api.example.com/a%2fb", &slash),
            Some("https://api.example.com/a%2Fb")
        );
        assert_eq!(match_known("https://api.example.com/a/b", &slash), None);
        assert_eq!(match_known("https://api.example.com/%6Dcp%", &k), None);
        assert_eq!(
            normalize("https://a.example/%zz%4").as_deref(),
            Some("https://a.example/%zz%4")
        );
    }

    #[test]
    fn a_configured_resource_with_a_slash_matches_one_without() {
        let k = vec!["https://auth.example.com/".to_owned()];
        assert_eq!(
            match_known("https://auth.example.com", &k),
            Some("https://auth.example.com/")
        );
    }
}
