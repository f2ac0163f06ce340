//! Where the login page may send the browser afterwards: only back into this server, never to
//! another site (an open redirect would let a phishing link borrow this server's address).

/// The longest `return_to` followed: room for an authorization request with a fully
/// percent-encoded 2048-character `state` beside a long redirect URI and scope (only one whose
/// parameters are all near their limits and mostly percent-encoded is longer). A longer request
/// cannot come back after signing in, and `/oauth/authorize` says so instead of sending the
/// browser to sign in.
pub const MAX_RETURN_TO_BYTES: usize = 16 * 1024;

/// `Some(path)` when `return_to` is a same-origin relative reference: it starts with a single
/// `/`, not `//` or `/\` (which browsers treat as another host), and has no control characters
/// or backslashes anywhere (some browsers read `\` as `/`). Anything else is `None`: go to `/`.
pub fn safe_return_to(return_to: &str) -> Option<&str> {
    let bytes = return_to.as_bytes();
    if bytes.first() != Some(&b'/') {
        return None;
    }
    if matches!(bytes.get(1), Some(b'/') | Some(b'\\')) {
        return None;
    }
    if return_to.len() > MAX_RETURN_TO_BYTES
        || return_to
            .chars()
            .any(|c| c.is_control() || c == '\\' || c.is_whitespace())
    {
        return None;
    }
    Some(return_to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_paths() {
        assert_eq!(
            safe_return_to("/oauth/authorize?a=1&b=2"),
            Some("/oauth/authorize?a=1&b=2")
        );
        assert_eq!(safe_return_to("/"), Some("/"));
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "/\t/evil.example",
            "/a\\b",
            "/a\nb",
            " /x",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }
}
