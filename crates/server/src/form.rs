//! `application/x-www-form-urlencoded` (form bodies and query strings), read strictly: a
//! name or value that is not UTF-8 once percent-decoded makes the whole input invalid, rather
//! than being patched with replacement characters that another reader of the same bytes would
//! not see. So does a NUL byte (`%00`): no parameter of this server holds one, and PostgreSQL
//! text cannot store one.

use std::ops::Range;

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
    raw_pairs(input)
        .map(|(name, value)| {
            let (name, value) = (component(name)?, component(value)?);
            if name.contains('\0') || value.contains('\0') {
                return Err(FormError::Nul(name.replace('\0', "\\0")));
            }
            Ok((name, value))
        })
        .collect()
}

/// The undecoded name and value of each piece: `&`-separated, empty pieces skipped, the first
/// `=` splitting name from value (none: an empty value).
fn raw_pairs(input: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    input
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(at) => (&piece[..at], &piece[at + 1..]),
            None => (piece, &[][..]),
        })
}

/// Request parameters (a query string or a form body; the token endpoint builds them from a JSON
/// object too), each name at most once: the one rule for repeated names everywhere (RFC 6749
/// §3.1: a repeated parameter is an error, never "first one wins"). Only the authorization
/// endpoint reads [`decode`]'s pairs with repeats kept, to refuse them in its own order.
///
/// Every name and value is decoded into one string, the pairs being ranges of it: a token
/// request's parameters cost two allocations, not two per parameter.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params {
    text: String,
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

/// Room for the parameters of a usual request (a code exchange has five or six).
const USUAL_PAIRS: usize = 8;

/// Up to this many pairs, a repeated name is looked for pair by pair; above it, with a set (so
/// that a body of many parameters costs linear time).
const REPEATS_BY_SCAN: usize = 16;

impl Params {
    /// Decodes `input`, refusing a repeated name.
    pub(crate) fn parse(input: &[u8]) -> Result<Self, FormError> {
        let mut bytes = Vec::with_capacity(input.len());
        // Sized for the usual request and grown by the pairs found, never by the separators
        // (a body of `&`s holds no pair).
        let mut pairs = Vec::with_capacity(USUAL_PAIRS);
        for (name, value) in raw_pairs(input) {
            let name = component_into(name, &mut bytes)?;
            let value = component_into(value, &mut bytes)?;
            if memchr::memchr(0, &bytes[name.start..value.end]).is_some() {
                let name = String::from_utf8_lossy(&bytes[name]).replace('\0', "\\0");
                return Err(FormError::Nul(name));
            }
            pairs.push((name, value));
        }
        // Each name and value was checked to be UTF-8 on its own.
        let text = String::from_utf8(bytes).map_err(|_| FormError::NotUtf8)?;
        Self::checked(Self { text, pairs })
    }

    /// `pairs`, refusing a repeated name.
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, FormError> {
        let mut params = Self {
            text: String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len()).sum()),
            pairs: Vec::with_capacity(pairs.len()),
        };
        for (name, value) in &pairs {
            let at = params.text.len();
            params.text.push_str(name);
            params.text.push_str(value);
            let split = at + name.len();
            params.pairs.push((at..split, split..params.text.len()));
        }
        Self::checked(params)
    }

    /// Refuses a repeated name: the first name, in order, that appeared before.
    fn checked(self) -> Result<Self, FormError> {
        let repeated = if self.pairs.len() <= REPEATS_BY_SCAN {
            self.names()
                .enumerate()
                .find(|&(i, name)| self.names().take(i).any(|earlier| earlier == name))
                .map(|(_, name)| name)
        } else {
            let mut seen = std::collections::HashSet::with_capacity(self.pairs.len());
            self.names().find(|name| !seen.insert(*name))
        };
        match repeated {
            Some(name) => Err(FormError::Repeated(name.to_owned())),
            None => Ok(self),
        }
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| &self.text[k.clone()])
    }

    /// The value of `name`, if present (an empty value included).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|&(k, _)| k == name).map(|(_, v)| v)
    }

    /// The value of `name`, or `""` when absent (for the HTML forms, where an absent field and
    /// an empty one mean the same).
    pub(crate) fn field(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// The pairs, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .map(|(k, v)| (&self.text[k.clone()], &self.text[v.clone()]))
    }
}

/// Decodes one name or value onto the end of `out`: where it lies there, once it is known to be
/// UTF-8 on its own.
fn component_into(raw: &[u8], out: &mut Vec<u8>) -> Result<Range<usize>, FormError> {
    let start = out.len();
    percent_decode_into(raw, true, BrokenEscape::Literal, out);
    match std::str::from_utf8(&out[start..]) {
        Ok(_) => Ok(start..out.len()),
        Err(_) => Err(FormError::NotUtf8),
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
    if !percent_decode_into(raw, plus_is_space, broken, &mut out) {
        return None;
    }
    String::from_utf8(out).ok()
}

/// [`percent_decode`]'s bytes, onto the end of `out`; `false` for a refused broken escape.
fn percent_decode_into(
    raw: &[u8],
    plus_is_space: bool,
    broken: BrokenEscape,
    out: &mut Vec<u8>,
) -> bool {
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
            return true;
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
            _ if broken == BrokenEscape::Refuse => return false,
            _ => {
                out.push(b'%');
                rest = &rest[1..];
            }
        }
    }
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

    /// The password page's "sign out everywhere else" form
    /// (`POST /account/sessions/sign-out-others`).
    #[derive(utoipa::ToSchema)]
    #[allow(dead_code)]
    pub struct SignOutOthersForm {
        /// The session's CSRF token, from the page.
        csrf_token: String,
        /// The user's password: a session alone does not sign the others out.
        current_password: String,
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

    fn owned(p: &Params) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn p(input: &str) -> Result<Vec<(String, String)>, FormError> {
        Params::parse(input.as_bytes()).map(|p| owned(&p))
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
        assert_eq!(owned(&Params::parse(input).unwrap()), theirs);
    }

    #[test]
    fn invalid_utf8_and_repeats_are_refused() {
        assert_eq!(p("scope=%FF"), Err(FormError::NotUtf8));
        assert_eq!(p("%C3%28=1"), Err(FormError::NotUtf8));
        // Each name and value on its own: halves of one character in a name and its value, or
        // in two parameters, are no character.
        assert_eq!(p("%C3=%A9"), Err(FormError::NotUtf8));
        assert_eq!(p("a=%C3&%A9=b"), Err(FormError::NotUtf8));
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
        // Few pairs are compared pair by pair, many through a set: the same answer, the first
        // name that appeared before.
        for n in [3, REPEATS_BY_SCAN, REPEATS_BY_SCAN + 1, 500] {
            let mut names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
            let distinct = names.join("=v&");
            assert_eq!(p(&distinct).unwrap().len(), n, "{n} pairs");
            names.push("n1".into());
            names.push("n0".into());
            assert_eq!(
                p(&names.join("=v&")),
                Err(FormError::Repeated("n1".into())),
                "{n} pairs"
            );
            let pairs = names.iter().map(|k| (k.clone(), String::new())).collect();
            assert_eq!(
                Params::from_pairs(pairs),
                Err(FormError::Repeated("n1".into()))
            );
        }
        let built = Params::from_pairs(vec![("a".into(), "1".into()), ("bc".into(), "".into())]);
        assert_eq!(
            owned(&built.unwrap()),
            vec![("a".into(), "1".into()), ("bc".into(), "".into())]
        );
        // Memory follows the pairs found, not the separators: a body of `&`s is no pairs.
        let mut separators = vec![b'&'; 60_000];
        separators.extend_from_slice(b"a=1&&");
        let params = Params::parse(&separators).unwrap();
        assert_eq!(owned(&params), vec![("a".into(), "1".into())]);
        assert!(
            params.pairs.capacity() <= USUAL_PAIRS,
            "{}",
            params.pairs.capacity()
        );
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

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// One `&`-separated piece: names and values from a few letters (repeats likely),
        /// escapes valid and broken, and arbitrary bytes (NUL and invalid UTF-8 included).
        fn piece() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                "[a-c]{0,2}(=[a-c%+]{0,3})?".prop_map(String::into_bytes),
                "(%[0-9A-Fa-f]{2}|%[0-9A-Fa-f]?|[a-c=+]){0,6}".prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..6),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// `Params::parse` decodes into one string; `decode` (kept for the authorization
            /// endpoint) makes one string per name and value. On any input, `parse` answers
            /// what `decode` and the repeat rule answer: the same pairs, or the same first
            /// refusal.
            #[test]
            fn parse_agrees_with_decode_and_the_repeat_rule(
                pieces in proptest::collection::vec(piece(), 0..24)
            ) {
                let input = pieces.join(&b'&');
                let expected = decode(&input).and_then(Params::from_pairs);
                let ours = Params::parse(&input);
                prop_assert_eq!(
                    ours.as_ref().map(owned),
                    expected.as_ref().map(owned),
                    "{:?}",
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }
}
