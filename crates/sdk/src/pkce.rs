//! What a client makes fresh for each authorization request: a PKCE verifier and its challenge
//! (RFC 7636), and a `state` value (RFC 6749 §10.12).
//!
//! Both come from the operating system's random source, 32 bytes each (256 bits; RFC 7636 §7.1
//! asks for at least 256 bits of entropy in the verifier), written in base64url without padding:
//! 43 characters, inside the verifier's alphabet and length (43 to 128).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// The shortest verifier RFC 7636 §4.1 allows.
const MIN_VERIFIER: usize = 43;
/// The longest.
const MAX_VERIFIER: usize = 128;

/// A PKCE pair for one authorization request: the verifier the client keeps for the token
/// request, and the `S256` challenge that goes into the authorization request.
///
/// ```
/// use telnyx_oauth::{AuthorizeParams, Pkce};
/// let pkce = Pkce::new();
/// let params = AuthorizeParams::new("client-id", "https://example.com/cb")
///     .state(telnyx_oauth::random_state())
///     .pkce(&pkce);
/// assert_eq!(params.code_challenge.as_deref(), Some(pkce.challenge()));
/// // Later, with the code that came back:
/// let exchange = telnyx_oauth::TokenRequest::new(telnyx_oauth::GrantType::AuthorizationCode)
///     .code("CODE")
///     .redirect_uri("https://example.com/cb")
///     .code_verifier(pkce.verifier());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    /// A fresh verifier (32 random bytes, 43 characters) and its `S256` challenge.
    pub fn new() -> Self {
        Pkce::pair(random_text())
    }

    /// The challenge of a verifier the caller already has: `BASE64URL(SHA256(verifier))`
    /// (RFC 7636 §4.2).
    ///
    /// The verifier must be what RFC 7636 §4.1 allows, 43 to 128 characters of `A-Z`, `a-z`,
    /// `0-9`, `-`, `.`, `_` and `~`; anything else is [`Error::InvalidParameter`] (a server
    /// would refuse it only at the token request, after the user consented). The message does
    /// not repeat the verifier.
    pub fn from_verifier(verifier: impl Into<String>) -> Result<Self, Error> {
        let verifier = verifier.into();
        if !verifier
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
        {
            return Err(Error::InvalidParameter(
                "a PKCE verifier has only A-Z, a-z, 0-9, '-', '.', '_' and '~'".to_owned(),
            ));
        }
        // ASCII only from here: its length in bytes is its length in characters.
        let length = verifier.len();
        if !(MIN_VERIFIER..=MAX_VERIFIER).contains(&length) {
            return Err(Error::InvalidParameter(format!(
                "a PKCE verifier has 43 to 128 characters, not {length}"
            )));
        }
        Ok(Pkce::pair(verifier))
    }

    fn pair(verifier: String) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }

    /// The `code_verifier` of the token request; keep it secret until then.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// The `code_challenge` of the authorization request (method `S256`).
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"<redacted>")
            .field("challenge", &self.challenge)
            .finish()
    }
}

/// A fresh `state` value (32 random bytes, 43 characters): keep it with the user's session and
/// accept the answer only when it comes back unchanged (RFC 6749 §10.12).
pub fn random_state() -> String {
    random_text()
}

fn random_text() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_example() {
        // RFC 7636 Appendix B.
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(
            pkce.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_fresh_and_within_the_alphabet() {
        let a = Pkce::new();
        let b = Pkce::new();
        assert_ne!(a.verifier(), b.verifier());
        assert_eq!(a.verifier().len(), 43);
        assert!(a
            .verifier()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c)));
        assert_eq!(a, Pkce::from_verifier(a.verifier()).unwrap());
        assert_ne!(random_state(), random_state());
        assert_eq!(random_state().len(), 43);
    }

    #[test]
    fn a_verifier_outside_rfc_7636_is_refused_without_being_repeated() {
        for (verifier, says) in [
            ("a".repeat(42), "not 42"),
            ("a".repeat(129), "not 129"),
            (String::new(), "not 0"),
            (format!("{}+/=", "a".repeat(43)), "only A-Z"),
            (format!("{} ", "s3cret".repeat(8)), "only A-Z"),
            (format!("{}\u{e9}", "a".repeat(43)), "only A-Z"),
            ("\u{e9}".repeat(70), "only A-Z"),
        ] {
            match Pkce::from_verifier(verifier.clone()) {
                Err(Error::InvalidParameter(m)) => {
                    assert!(m.contains(says), "{verifier:?}: {m}");
                    assert!(!m.contains("s3cret") && !m.contains("aaaa"), "{m}");
                }
                other => panic!("{verifier:?}: {other:?}"),
            }
        }
        // Both ends of the range, and every character the RFC allows.
        for verifier in [
            "a".repeat(43),
            "~".repeat(128),
            "ABCXYZabcxyz0189-._~ABCXYZabcxyz0189-._~abc".to_owned(),
        ] {
            let pkce = Pkce::from_verifier(verifier.clone()).unwrap();
            assert_eq!(pkce.verifier(), verifier);
        }
    }

    #[test]
    fn debug_hides_the_verifier() {
        let pkce = Pkce::new();
        let shown = format!("{pkce:?}");
        assert!(!shown.contains(pkce.verifier()), "{shown}");
        assert!(shown.contains(pkce.challenge()), "{shown}");
    }
}
