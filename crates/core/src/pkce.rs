//! PKCE (RFC 7636): which challenges an authorization request may carry, and how the token
//! endpoint checks a verifier against the stored challenge.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// RFC 7636 §4.2 and §4.3: `S256`, or `plain` when the operator allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeMethod {
    S256,
    Plain,
}

impl ChallengeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeMethod::S256 => "S256",
            ChallengeMethod::Plain => "plain",
        }
    }

    /// The method of an authorization request. RFC 7636 §4.3: an absent method means `plain`;
    /// an unknown one is an error, never a fallback. `plain` is accepted only when
    /// `allow_plain` (RFC 9700 §2.1.1 recommends S256).
    pub fn parse(method: Option<&str>, allow_plain: bool) -> Result<Self, String> {
        match method {
            Some("S256") => Ok(ChallengeMethod::S256),
            Some("plain") | None if allow_plain => Ok(ChallengeMethod::Plain),
            Some("plain") | None => Err(
                "code_challenge_method must be S256 (plain is not enabled on this server)".into(),
            ),
            Some(other) => Err(format!(
                "code_challenge_method {other:?} is not supported; use S256"
            )),
        }
    }

    /// The stored form back to the method; `None` for anything this server never stores.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "S256" => Some(ChallengeMethod::S256),
            "plain" => Some(ChallengeMethod::Plain),
            _ => None,
        }
    }
}

/// RFC 7636 §4.1 / §4.2: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
/// Both a verifier and a challenge have this syntax.
pub fn is_valid_syntax(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks a challenge from an authorization request.
pub fn check_challenge(challenge: &str) -> Result<(), String> {
    if is_valid_syntax(challenge) {
        Ok(())
    } else {
        Err(
            "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.2)"
                .into(),
        )
    }
}

/// The S256 challenge of a verifier: `BASE64URL(SHA256(ASCII(verifier)))` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.6: does `verifier` match the stored challenge? Constant time in the comparison.
pub fn verify(verifier: &str, challenge: &str, method: ChallengeMethod) -> bool {
    if !is_valid_syntax(verifier) {
        return false;
    }
    let computed = match method {
        ChallengeMethod::S256 => s256_challenge(verifier),
        ChallengeMethod::Plain => verifier.to_owned(),
    };
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256_challenge(verifier), challenge);
        assert!(verify(verifier, challenge, ChallengeMethod::S256));
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge,
            ChallengeMethod::S256
        ));
        assert!(!verify(verifier, verifier, ChallengeMethod::S256));
        assert!(verify(verifier, verifier, ChallengeMethod::Plain));
        assert!(!verify("short", "short", ChallengeMethod::Plain));
    }

    #[test]
    fn methods() {
        assert_eq!(
            ChallengeMethod::parse(Some("S256"), false),
            Ok(ChallengeMethod::S256)
        );
        assert!(ChallengeMethod::parse(Some("plain"), false).is_err());
        assert!(ChallengeMethod::parse(None, false).is_err());
        assert_eq!(
            ChallengeMethod::parse(None, true),
            Ok(ChallengeMethod::Plain)
        );
        assert_eq!(
            ChallengeMethod::parse(Some("plain"), true),
            Ok(ChallengeMethod::Plain)
        );
        assert!(ChallengeMethod::parse(Some("s256"), true).is_err());
        assert!(ChallengeMethod::parse(Some("S512"), true).is_err());
    }

    #[test]
    fn challenge_syntax() {
        assert!(check_challenge(&"a".repeat(43)).is_ok());
        assert!(check_challenge(&"a".repeat(128)).is_ok());
        assert!(check_challenge(&"a".repeat(42)).is_err());
        assert!(check_challenge(&"a".repeat(129)).is_err());
        assert!(check_challenge(&format!("{}+", "a".repeat(43))).is_err());
        assert!(check_challenge(&format!("{}=", "a".repeat(43))).is_err());
        assert!(check_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").is_ok());
    }
}
