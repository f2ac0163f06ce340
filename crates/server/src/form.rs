//! `application/x-www-form-urlencoded` (form bodies and query strings), read strictly: a
//! name or value that is not UTF-8 once percent-decoded makes the whole input invalid, rather
//! than being patched with replacement characters that another reader of the same bytes would
//! not see. So does a NUL byte (`%00`): no parameter of this server holds one, and PostgreSQL
//! text cannot store one.

/// Why a form was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FormError {
    /// The parameter appears more than once (RFC 6749 §3.1).
    Repeated(String),
    /// A name or value is not UTF-8 once decoded.
    NotUtf8,
    /// A name or value holds a NUL byte once decoded; the name, NUL shown as `\0`.
    Nul(String),
}

/// The name/value pairs in order, repeats kept. `&`-separated; empty pieces skipped; the first
/// `=` splits name from value (none: an empty value); `+` is a space; `%XX` is a byte, and a `%`
/// not followed by two hex digits stands for itself.
pub(crate) fn decode(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    input
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = match piece.iter().position(|&b| b == b'=') {
                Some(at) => (&piece[..at], &piece[at + 1..]),
                None => (piece, &[][..]),
            };
            let (name, value) = (component(name)?, component(value)?);
            if name.contains('\0') || value.contains('\0') {
                return Err(FormError::Nul(name.replace('\0', "\\0")));
            }
            Ok((name, value))
        })
        .collect()
}

/// Request parameters (a query string or a form body; the token endpoint builds them from a JSON
/// object too), each name at most once: the one rule for repeated names everywhere (RFC 6749
/// §3.1: a repeated parameter is an error, never "first one wins"). Only the authorization
/// endpoint reads [`decode`]'s pairs with repeats kept, to refuse them in its own order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes `input`, refusing a repeated name.
    pub(crate) fn parse(input: &[u8]) -> Result<Self, FormError> {
        Self::from_pairs(decode(input)?)
    }

    /// `pairs`, refusing a repeated name.
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, FormError> {
        let mut seen = std::collections::HashSet::with_capacity(pairs.len());
        for (name, _) in &pairs {
            if !seen.insert(name.as_str()) {
                return Err(FormError::Repeated(name.clone()));
            }
        }
        Ok(Self(pairs))
    }

    /// The value of `name`, if present (an empty value included).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or `""` when absent (for the HTML forms, where an absent field and
    /// an empty one mean the same).
    pub(crate) fn field(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The pairs, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn component(raw: &[u8]) -> Result<String, FormError> {
    percent_decode(raw, true, BrokenEscape::Literal).ok_or(FormError::NotUtf8)
}

/// How [`percent_decode`] reads a `%` that does not start a `%XX` escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BrokenEscape {
    /// As itself, like browsers and the URL standard.
    Literal,
    /// As an error, where a sender has no excuse for it (HTTP Basic credentials).
    Refuse,
}

/// Percent-decoding of one component: `%XX` is a byte, `+` a space when `plus_is_space`.
/// `None` for a refused broken escape or a result that is not UTF-8.
pub(crate) fn percent_decode(
    raw: &[u8],
    plus_is_space: bool,
    broken: BrokenEscape,
) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    loop {
        // The plain run up to the next `%` (or `+`) is copied whole: a token or a code is one
        // long run.
        let next = if plus_is_space {
            memchr::memchr2(b'%', b'+', rest)
        } else {
            memchr::memchr(b'%', rest)
        };
        let Some(at) = next else {
            out.extend_from_slice(rest);
            break;
        };
        out.extend_from_slice(&rest[..at]);
        rest = &rest[at..];
        if rest[0] == b'+' {
            out.push(b' ');
            rest = &rest[1..];
            continue;
        }
        match (hex(rest.get(1)), hex(rest.get(2))) {
            (Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                rest = &rest[3..];
            }
            _ if broken == BrokenEscape::Refuse => return None,
            _ => {
                out.push(b'%');
                rest = &rest[1..];
            }
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The forms the built-in pages post, as the OpenAPI document describes them (the handlers
/// read them with [`pairs`] and [`field`]).
pub mod schema {
    /// The built-in consent page's form (`POST /oauth/grants`).
    #[derive(utoipa::ToSchema)]
    #[allow(dead_code)]
    pub struct ConsentForm {
        consent_token: String,
        /// `allow` or `deny`.
        decision: String,
        /// The session's CSRF token, from the page.
        csrf_token: String,
    }

    /// The sign-in form (`POST /login`).
    #[derive(utoipa::ToSchema)]
    #[allow(dead_code)]
    pub struct LoginForm {
        /// The double-submit value from the form (it equals the login CSRF cookie).
        csrf_token: String,
        email: String,
        password: String,
        /// A same-origin path to go to after signing in.
        return_to: Option<String>,
    }

    /// A form that carries only the session's CSRF token.
    #[derive(utoipa::ToSchema)]
    #[allow(dead_code)]
    pub struct CsrfForm {
        csrf_token: String,
    }

    /// The password page's form (`POST /account/password`).
    #[derive(utoipa::ToSchema)]
    #[allow(dead_code)]
    pub struct PasswordForm {
        /// The session's CSRF token, from the page.
        csrf_token: String,
        current_password: String,
        /// At least 8 characters.
        new_password: String,
        /// The new password again.
        confirm_password: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(input: &str) -> Result<Vec<(String, String)>, FormError> {
        Params::parse(input.as_bytes()).map(|p| p.0)
    }

    #[test]
    fn decodes_like_the_url_standard() {
        assert_eq!(
            p("a=1&b=x+y%20z&&c&d=%41%zz%4").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), "".into()),
                ("d".into(), "A%zz%4".into()),
            ]
        );
        assert_eq!(p("k=a=b").unwrap(), vec![("k".into(), "a=b".into())]);
        assert_eq!(
            p("%C3%A9=%E2%82%AC").unwrap(),
            vec![("é".into(), "€".into())]
        );
        // Agrees with the url crate's reading wherever the input is UTF-8.
        let input = b"grant_type=client_credentials&scope=a+b%2Bc&x=%&y=%4g";
        let theirs: Vec<(String, String)> = url::form_urlencoded::parse(input)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(Params::parse(input).unwrap().0, theirs);
    }

    #[test]
    fn invalid_utf8_and_repeats_are_refused() {
        assert_eq!(p("scope=%FF"), Err(FormError::NotUtf8));
        assert_eq!(p("%C3%28=1"), Err(FormError::NotUtf8));
        assert_eq!(Params::parse(b"scope=\xff"), Err(FormError::NotUtf8));
        assert_eq!(p("a=1&%61=2"), Err(FormError::Repeated("a".into())));
        assert_eq!(
            percent_decode(b"a%2Bb+c%zz", true, BrokenEscape::Literal).as_deref(),
            Some("a+b c%zz")
        );
        assert_eq!(
            percent_decode(b"a+b", false, BrokenEscape::Literal).as_deref(),
            Some("a+b")
        );
        assert_eq!(percent_decode(b"%+1", true, BrokenEscape::Refuse), None);
        assert_eq!(percent_decode(b"%4", true, BrokenEscape::Refuse), None);
        // `decode` keeps repeats for callers that judge them themselves.
        assert_eq!(decode(b"a=1&a=2").unwrap().len(), 2);
    }

    #[test]
    fn nul_bytes_are_refused_in_names_and_values() {
        assert_eq!(p("a=x%00y"), Err(FormError::Nul("a".into())));
        assert_eq!(p("ok=1&a%00b=1"), Err(FormError::Nul("a\\0b".into())));
        assert_eq!(Params::parse(b"a=\0"), Err(FormError::Nul("a".into())));
        assert_eq!(
            decode(b"client_id=%00"),
            Err(FormError::Nul("client_id".into()))
        );
        // Other control characters are text as before (a field judges them itself).
        assert_eq!(p("a=%01%09").unwrap(), vec![("a".into(), "\u{1}\t".into())]);
    }

    /// Every string of up to five bytes over escapes, signs and plain bytes decodes as the
    /// url crate decodes it, or is refused where that is not UTF-8 (the plain runs between
    /// escapes are copied in bulk).
    #[test]
    fn short_inputs_agree_with_the_url_crate() {
        let alphabet = b"a%+4Fg";
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        let mut longest = inputs.clone();
        for _ in 0..5 {
            longest = longest
                .iter()
                .flat_map(|s| alphabet.iter().map(move |&b| [&s[..], &[b]].concat()))
                .collect();
            inputs.extend(longest.iter().cloned());
        }
        assert_eq!(inputs.len(), 1 + 6 + 36 + 216 + 1296 + 7776);
        for input in &inputs {
            let theirs: String = url::form_urlencoded::parse(&[b"k=", &input[..]].concat())
                .map(|(_, v)| v.into_owned())
                .collect();
            let ours = percent_decode(input, true, BrokenEscape::Literal);
            // Where the url crate patches bytes that are not UTF-8, ours refuses.
            let expected = Some(theirs.as_str()).filter(|t| !t.contains('\u{FFFD}'));
            assert_eq!(ours.as_deref(), expected, "{input:?}");
        }
    }
}
