//! Redirect URIs: which ones a client may register (RFC 8252, RFC 9700 §4.1) and how a presented
//! URI is matched against the registered ones (docs/api.md: exact string match, except the port of
//! a loopback URI, RFC 8252 §7.3).

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Longest URI the server stores.
pub const MAX_URI_LEN: usize = 2000;

/// The parameters the authorization response adds to a redirect URI's query (RFC 6749 §4.1.2
/// and §4.1.2.1, RFC 9207).
pub const RESPONSE_PARAMETERS: [&str; 6] = [
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "error_uri",
];

/// A redirect URI that passed registration rules. Holds the string exactly as registered, since
/// matching compares strings, not normalized URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Checks a URI a client wants to register:
    /// - absolute, at most [`MAX_URI_LEN`] bytes, printable ASCII only, no fragment (RFC 6749 §3.1.2);
    /// - `https` with a host and no userinfo;
    /// - or `http` on a loopback host (`127.0.0.1`, `[::1]`, `localhost`) for native apps (RFC 8252 §7.3);
    /// - for both, a host that is an IP address or a DNS name (letters, digits, `-`, `.`, `_`:
    ///   the url crate would keep `;` or `,` in a name, which no resolver answers and which
    ///   pages quoting the URI must not meet), and a port, if one is written, of 1 to 65535;
    /// - or a private-use scheme in reverse-domain form such as `com.example.app:/cb` (RFC 8252 §7.1);
    /// - and, for every scheme, no query parameter that the authorization response adds
    ///   ([`RESPONSE_PARAMETERS`]): it would then appear twice (RFC 6749 §3.1.2), and a client
    ///   that reads the first `code` or `iss` would read the registered one. Parameters are
    ///   split at `&` and at `;` (which older parsers also split at), and their names decoded.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > MAX_URI_LEN {
            return Err(format!("must be at most {MAX_URI_LEN} characters"));
        }
        if !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err("must be printable ASCII without spaces (percent-encode the rest)".into());
        }
        if s.contains('#') {
            return Err("must not contain a fragment".into());
        }
        let url = Url::parse(s).map_err(|_| "must be an absolute URI".to_owned())?;
        if let Some(name) = response_parameter_in(url.query().unwrap_or("")) {
            return Err(format!(
                "must not carry the query parameter {name:?}: the authorization response adds it"
            ));
        }
        match url.scheme() {
            "https" => {
                if url.host().is_none() || !has_authority(s) {
                    return Err("an https URI needs a host".into());
                }
                reject_userinfo(&url)?;
                check_host_and_port(s, &url)?;
            }
            "http" => {
                if !is_loopback(&url) || !has_authority(s) || !written_loopback(s) {
                    return Err(
                        "http is allowed only on a loopback host (127.0.0.1, [::1], localhost); use https"
                            .into(),
                    );
                }
                reject_userinfo(&url)?;
                check_host_and_port(s, &url)?;
            }
            scheme => {
                if !scheme.contains('.') {
                    return Err(
                        "must use https, http on a loopback host, or a private-use scheme in reverse-domain form (com.example.app:/callback)"
                            .into(),
                    );
                }
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Does `presented` (from an authorization or token request) match this registered URI?
    /// Exact string comparison; for a loopback `http` URI the port may differ (RFC 8252 §7.3).
    pub fn matches(&self, presented: &str) -> bool {
        if self.0 == presented {
            return true;
        }
        let (Ok(reg), Ok(pre)) = (Url::parse(&self.0), Url::parse(presented)) else {
            return false;
        };
        if reg.scheme() != "http" || !is_loopback(&reg) || presented.contains('#') {
            return false;
        }
        // Compare everything but the port, on the strings themselves (no normalization): the
        // registered URI with its port removed must equal the presented one with its port removed.
        match (strip_port(&self.0), strip_port(presented)) {
            (Some(a), Some(b)) => a == b && pre.scheme() == "http",
            _ => false,
        }
    }
}

/// The first parameter of `query` named as one the authorization response adds, its name
/// decoded; parameters split at `&` and at `;`.
fn response_parameter_in(query: &str) -> Option<String> {
    query.split(['&', ';']).find_map(|pair| {
        let (name, _) = url::form_urlencoded::parse(pair.as_bytes()).next()?;
        RESPONSE_PARAMETERS
            .contains(&name.as_ref())
            .then(|| name.into_owned())
    })
}

/// Does `s` (an `http` or `https` URL) spell a non-empty authority right after `scheme://`?
/// The url crate reads `https:///cb` and `https:cb` as `https://cb/`; a registered URI must say
/// what it means.
pub(crate) fn has_authority(s: &str) -> bool {
    let rest = s.split_once("://").map_or("", |(_, rest)| rest);
    !rest.is_empty() && !rest.starts_with(['/', '?', '#', '\\'])
}

fn reject_userinfo(url: &Url) -> Result<(), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain userinfo (user@host)".into());
    }
    Ok(())
}

/// A DNS name or an IP address for the host, and a port of 1 to 65535 when `s` writes one.
/// `url.port()` hides an empty port (`https://a.example:/cb`) and a scheme's default port, so
/// the empty port is read off the string.
fn check_host_and_port(s: &str, url: &Url) -> Result<(), String> {
    if let Some(Host::Domain(name)) = url.host() {
        let dns = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if !name.bytes().all(dns) {
            return Err(
                "the host must be a DNS name (letters, digits, '-', '.', '_') or an IP address"
                    .into(),
            );
        }
    }
    let rest = s.split_once("://").map_or("", |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    if url.port() == Some(0) || authority.ends_with(':') {
        return Err("the port, if written, must be 1 to 65535".into());
    }
    Ok(())
}

/// Does `s` write its loopback host in one of the usual spellings (`127.0.0.1`, `[::1]`,
/// `localhost`)? The url crate also reads `127.1`, `2130706433`, `0x7f000001`, `127.0.0.1.` and
/// `LOCALHOST` as loopback, but a registered URI is kept as written and compared as written, so
/// it must be written as the documentation says.
fn written_loopback(s: &str) -> bool {
    let rest = s.split_once("://").map_or("", |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = match authority.strip_prefix("[::1]") {
        Some(port) if port.is_empty() || port.starts_with(':') => "[::1]",
        _ => authority.split(':').next().unwrap_or(""),
    };
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
        Some(Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// `http://127.0.0.1:8080/cb` → `http://127.0.0.1/cb`, working on the raw string. `None` when the
/// string is not a plain `http://host[:port]...` authority with no userinfo.
fn strip_port(s: &str) -> Option<String> {
    let rest = s.strip_prefix("http://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return None;
    }
    let host = if let Some(v6_end) = authority.strip_prefix('[').and_then(|a| a.find(']')) {
        let (h, after) = authority.split_at(v6_end + 2);
        match after.strip_prefix(':') {
            Some(port) if is_port(port) => h,
            None if after.is_empty() => h,
            _ => return None,
        }
    } else {
        match authority.split_once(':') {
            Some((h, port)) if is_port(port) => h,
            Some(_) => return None,
            None => authority,
        }
    };
    Some(format!("http://{host}{tail}"))
}

/// A port as a client writes one, canonically: 1 to 65535, no leading zero. An empty port
/// (`127.0.0.1:/cb`), which registration refuses, and `08080`, which names port 8080 in
/// another spelling, do not match.
fn is_port(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('0')
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        RedirectUri::parse(s).is_ok()
    }

    #[test]
    fn registration_rules() {
        assert!(ok("https://app.example.com/callback"));
        assert!(ok("https://app.example.com/callback?x=1"));
        assert!(ok("http://127.0.0.1/callback"));
        assert!(ok("http://127.0.0.1:8080/callback"));
        assert!(ok("http://[::1]:9000/cb"));
        assert!(ok("http://localhost:3000/cb"));
        assert!(ok("com.example.app:/oauth2redirect"));
        assert!(!ok("http://app.example.com/callback"));
        assert!(!ok("https://app.example.com/callback#frag"));
        assert!(!ok("/relative/path"));
        assert!(!ok("javascript:alert(1)"));
        assert!(!ok("data:text/html,hi"));
        assert!(!ok("file:///etc/passwd"));
        assert!(!ok("https://good.example@evil.example/cb"));
        assert!(!ok("http://user:pw@127.0.0.1/cb"));
        assert!(!ok("https://app.example.com/a b"));
        assert!(!ok("https://app.exämple.com/"));
        // A punycode label must decode; one that does is kept as written.
        assert!(!ok("https://xn--.example/cb"));
        assert!(ok("https://xn--exmple-cua.com/cb"));
        assert!(!ok(""));
        // A host that is neither a DNS name nor an address, and a port that is none.
        assert!(!ok("https://a;b.example/cb"));
        assert!(!ok("https://a,b.example/cb"));
        assert!(!ok("https://a$b.example/cb"));
        assert!(!ok("https://app.example.com:0/cb"));
        assert!(!ok("https://app.example.com:/cb"));
        assert!(!ok("https://[2001:db8::1]:/cb"));
        assert!(!ok("http://127.0.0.1:0/cb"));
        assert!(!ok("http://localhost:/cb"));
        assert!(ok("https://_acme.app-1.example.com:8443/cb"));
        assert!(ok("https://192.0.2.1:443/cb"));
        assert!(ok("https://[2001:db8::1]:8443/cb"));
        // No host where the host belongs, though the url crate would make one up.
        assert!(!ok("https:///cb"));
        assert!(!ok("https:cb"));
        assert!(!ok("https:/cb"));
        assert!(!ok("http:127.0.0.1/cb"));
        assert!(!ok("http:///127.0.0.1/cb"));
        // Loopback in spellings the url crate reads but the rule does not name.
        for other in [
            "http://127.1/cb",
            "http://2130706433/cb",
            "http://0x7f000001/cb",
            "http://127.0.0.1./cb",
            "http://LOCALHOST/cb",
            "http://localhost./cb",
            "http://[0:0:0:0:0:0:0:1]/cb",
            "http://[::1]x/cb",
        ] {
            assert!(!ok(other), "{other}");
        }
        assert!(ok("http://[::1]/cb"));
        assert!(ok("http://localhost?x=1"));
        // A parameter the response adds, in any spelling that decodes to its name.
        for taken in [
            "https://app.example.com/cb?code=fixed",
            "https://app.example.com/cb?x=1&iss=https://as.example",
            "https://app.example.com/cb?%63ode=1",
            "https://app.example.com/cb?state",
            "http://127.0.0.1/cb?error=access_denied",
            "com.example.app:/cb?error_description=x",
            "https://app.example.com/cb?error_uri=",
            "https://app.example.com/cb?x=1;code=fixed",
            "https://app.example.com/cb?c%6Fde=1",
        ] {
            assert!(!ok(taken), "{taken}");
        }
        assert!(ok("https://app.example.com/cb?codes=1&issuer=x&stateful"));
        assert!(!ok(&format!(
            "https://a.example/{}",
            "x".repeat(MAX_URI_LEN)
        )));
    }

    #[test]
    fn exact_matching() {
        let r =
            RedirectUri::parse("https://app.example.com/cb").unwrap_or(RedirectUri(String::new()));
        assert!(r.matches("https://app.example.com/cb"));
        assert!(!r.matches("https://app.example.com/cb/"));
        assert!(!r.matches("https://app.example.com/cb/extra"));
        assert!(!r.matches("https://app.example.com/cb?x=1"));
        assert!(!r.matches("https://APP.example.com/cb"));
        assert!(!r.matches("https://app.example.com:8443/cb"));
        assert!(!r.matches("https://app.example.com/cb#x"));
        assert!(!r.matches("https://app.example.com@evil.example/cb"));
        assert!(!r.matches("https://app.example.com/%63b"));
    }

    #[test]
    fn loopback_port_may_differ() {
        let r = RedirectUri::parse("http://127.0.0.1/cb").unwrap_or(RedirectUri(String::new()));
        assert!(r.matches("http://127.0.0.1:51234/cb"));
        assert!(r.matches("http://127.0.0.1/cb"));
        assert!(!r.matches("http://127.0.0.1:51234/cb/x"));
        assert!(!r.matches("http://127.0.0.1:51234/cb?q"));
        assert!(!r.matches("http://localhost:51234/cb"));
        assert!(!r.matches("http://127.0.0.1:51234@evil.example/cb"));
        let r6 = RedirectUri::parse("http://[::1]:8000/cb").unwrap_or(RedirectUri(String::new()));
        assert!(r6.matches("http://[::1]:9000/cb"));
        // Only digits after the colon, as for the other hosts (a URL parser drops a tab or a
        // trailing space, the string comparison must not).
        assert!(!r6.matches("http://[::1]:8000\t/cb"));
        assert!(!RedirectUri("http://[::1]:1".into()).matches("http://[::1]:1 "));
        // The port written as registration would take it: not empty, no leading zero, in range.
        for odd in ["", "0", "08080", "65536", "99999999999999999999"] {
            assert!(!r.matches(&format!("http://127.0.0.1:{odd}/cb")), "{odd:?}");
            assert!(!r6.matches(&format!("http://[::1]:{odd}/cb")), "{odd:?}");
        }
        assert!(r.matches("http://127.0.0.1:65535/cb"));
        assert!(r.matches("http://127.0.0.1:1/cb"));
        let https =
            RedirectUri::parse("https://localhost/cb").unwrap_or(RedirectUri(String::new()));
        assert!(!https.matches("https://localhost:8443/cb"));
    }
}
