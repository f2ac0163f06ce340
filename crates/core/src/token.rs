//! The token endpoint's rules (RFC 6749 §3.3, §4.1.3, §6; RFC 7636 §4.6; RFC 8707 §2.2) as pure
//! decisions: which grants it serves, which scopes a request is given, and whether a presented
//! authorization code may be exchanged, every refusal with its reason. No IO and no HTTP: the
//! handler parses the request, asks here, and maps a refusal to its OAuth error.

use std::fmt;

use crate::entity::AuthorizationCode;
use crate::pkce::{self, ChallengeMethod};
use crate::scope::{parse_scope_string, ScopeError};

/// The grants the token endpoint serves, as `grant_types_supported` (RFC 8414 §2) lists them.
pub const SUPPORTED_GRANT_TYPES: &[&str] =
    &["authorization_code", "refresh_token", "client_credentials"];

/// Why the scope of a token request was refused (`invalid_scope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRefusal {
    /// Not a scope string (RFC 6749 §3.3), or beyond the bounds.
    Malformed(ScopeError),
    /// A scope the client, or the refreshed token, does not have: a request may narrow, never
    /// widen.
    NotAllowed(String),
    /// None of the scopes of the authorization may still be granted (they were taken from the
    /// client, or from the catalogue, since).
    NoneLeft,
}

impl fmt::Display for ScopeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeRefusal::Malformed(e) => write!(f, "{e}"),
            ScopeRefusal::NotAllowed(s) => write!(
                f,
                "the scope `{}` is not one this request may be granted (the client's scopes; for a refresh, the refresh token's own)",
                s.chars().take(64).collect::<String>()
            ),
            ScopeRefusal::NoneLeft => {
                f.write_str("none of the authorized scopes may still be granted to this client")
            }
        }
    }
}

/// RFC 6749 §3.3: the requested scopes, each one of `allowed`; none requested (or an empty
/// string) means all of `allowed`. An empty `allowed` is [`ScopeRefusal::NoneLeft`].
pub fn granted_scopes(
    requested: Option<&str>,
    allowed: &[String],
) -> Result<Vec<String>, ScopeRefusal> {
    if allowed.is_empty() {
        return Err(ScopeRefusal::NoneLeft);
    }
    let Some(requested) = requested else {
        return Ok(allowed.to_vec());
    };
    let scopes = parse_scope_string(requested).map_err(ScopeRefusal::Malformed)?;
    if let Some(extra) = scopes.iter().find(|s| !allowed.contains(s)) {
        return Err(ScopeRefusal::NotAllowed(extra.clone()));
    }
    if scopes.is_empty() {
        return Ok(allowed.to_vec());
    }
    Ok(scopes)
}

/// What a token request says about the authorization code it presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCode {
    /// The authenticated client.
    pub client_id: String,
    /// The client must use PKCE now ([`Client::requires_pkce`](crate::client::Client::requires_pkce)):
    /// a code issued without a challenge before it had to is not exchanged.
    pub pkce_required: bool,
    pub redirect_uri: String,
    pub verifier: Option<String>,
    /// RFC 8707 `resource` of the token request, if any.
    pub resource: Option<String>,
    /// The audience of a code issued for no resource: the issuer. Naming it at the exchange
    /// matches such a code, as naming it at a refresh matches such a token.
    pub default_resource: String,
    /// The resources the server serves now (the issuer and the configured ones): a code for one
    /// taken out of the configuration since it was issued mints nothing.
    pub known_resources: Vec<String>,
    /// The scopes the client may be granted now: an approved scope taken from the client (or
    /// the catalogue) since is not issued.
    pub grantable: Vec<String>,
}

/// Why a presented code may not be exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// RFC 6749 §4.1.3: issued to another client.
    WrongClient,
    /// §4.1.3: not the `redirect_uri` of the authorization request.
    RedirectUri,
    /// RFC 7636 §4.6: the verifier does not match the challenge (or is not a verifier).
    VerifierMismatch,
    /// A challenge was stored and no verifier sent.
    VerifierMissing,
    /// RFC 9700 §4.8.2: a verifier for a code issued without a challenge, a downgrade attempt.
    VerifierWithoutChallenge,
    /// The client must use PKCE (RFC 9700 §2.1.1) and the code was issued without a challenge
    /// (before the client was made to).
    PkceRequired,
    /// None of the approved scopes may still be granted.
    NoScopeLeft,
    /// RFC 8707 §2.2: the resource is not the one the user approved.
    Resource,
    /// RFC 8707 §2: the code's resource is no longer one this server serves.
    ResourceGone,
    /// The stored challenge method is unknown: a corrupt record, not the caller's mistake.
    StoredChallengeMethod,
}

impl CodeRefusal {
    /// Whether the request had already proved that it holds the code's redirect URI and PKCE
    /// verifier when it was refused ([`PresentedCode::check`] judges those first): a refusal for
    /// the scopes or the resource. Only such a request of a public client spends the code or, for
    /// a used code, revokes what it gave.
    pub fn after_proof(self) -> bool {
        matches!(
            self,
            CodeRefusal::NoScopeLeft | CodeRefusal::Resource | CodeRefusal::ResourceGone
        )
    }

    /// The OAuth error code (RFC 6749 §5.2, RFC 8707 §2).
    pub fn error(self) -> &'static str {
        match self {
            CodeRefusal::NoScopeLeft => "invalid_scope",
            CodeRefusal::Resource | CodeRefusal::ResourceGone => "invalid_target",
            _ => "invalid_grant",
        }
    }

    /// The `error_description`: nothing that would help guess another client's codes.
    pub fn description(self) -> &'static str {
        match self {
            CodeRefusal::WrongClient => {
                "the authorization code is invalid, expired or already used"
            }
            CodeRefusal::RedirectUri => "redirect_uri does not match the authorization request",
            CodeRefusal::VerifierMismatch => "the code_verifier does not match the code_challenge",
            CodeRefusal::VerifierMissing => {
                "code_verifier is required: the authorization request had a code_challenge"
            }
            CodeRefusal::VerifierWithoutChallenge => {
                "code_verifier was sent, but the authorization request had no code_challenge"
            }
            CodeRefusal::PkceRequired => {
                "this client must use PKCE: the authorization request had no code_challenge"
            }
            CodeRefusal::NoScopeLeft => {
                "none of the approved scopes may still be granted to this client"
            }
            CodeRefusal::Resource => "the resource does not match the authorization request",
            CodeRefusal::ResourceGone => "the code's resource is no longer served by this server",
            CodeRefusal::StoredChallengeMethod => "the stored code_challenge_method is unknown",
        }
    }
}

impl PresentedCode {
    /// The code's scopes that the client may still be granted, in the code's order.
    pub fn scopes(&self, code: &AuthorizationCode) -> Vec<String> {
        code.scopes
            .iter()
            .filter(|s| self.grantable.contains(s))
            .cloned()
            .collect()
    }

    /// Whether `code` may be exchanged by this request, in the order of RFC 6749 §4.1.3,
    /// RFC 7636 §4.6 and RFC 8707 §2.2.
    pub fn check(&self, code: &AuthorizationCode) -> Result<(), CodeRefusal> {
        if code.client_id != self.client_id {
            return Err(CodeRefusal::WrongClient);
        }
        if code.redirect_uri != self.redirect_uri {
            return Err(CodeRefusal::RedirectUri);
        }
        match (&code.code_challenge, self.verifier.as_deref()) {
            (Some(challenge), Some(verifier)) => {
                let method = code
                    .code_challenge_method
                    .as_deref()
                    .and_then(ChallengeMethod::from_stored)
                    .ok_or(CodeRefusal::StoredChallengeMethod)?;
                // Constant-time comparison inside `verify`.
                if !pkce::is_valid_syntax(verifier) || !pkce::verify(verifier, challenge, method) {
                    return Err(CodeRefusal::VerifierMismatch);
                }
            }
            (Some(_), None) => return Err(CodeRefusal::VerifierMissing),
            (None, Some(_)) => return Err(CodeRefusal::VerifierWithoutChallenge),
            (None, None) if self.pkce_required => return Err(CodeRefusal::PkceRequired),
            (None, None) => {}
        }
        if self.scopes(code).is_empty() {
            return Err(CodeRefusal::NoScopeLeft);
        }
        if let Some(r) = self.resource.as_deref() {
            if code.resource.as_deref().unwrap_or(&self.default_resource) != r {
                return Err(CodeRefusal::Resource);
            }
        }
        if let Some(r) = code.resource.as_deref() {
            if !self.known_resources.iter().any(|k| k == r) {
                return Err(CodeRefusal::ResourceGone);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code() -> AuthorizationCode {
        AuthorizationCode {
            code_hash: "h".into(),
            grant_id: "g".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            redirect_uri: "https://app.example/cb".into(),
            scopes: vec!["admin".into(), "voice".into()],
            code_challenge: Some(CHALLENGE.into()),
            code_challenge_method: Some("S256".into()),
            resource: Some("https://api.example".into()),
            created_at: 0,
            expires_at: 60,
            family_id: None,
        }
    }

    fn presented() -> PresentedCode {
        PresentedCode {
            client_id: "c".into(),
            pkce_required: false,
            redirect_uri: "https://app.example/cb".into(),
            verifier: Some(VERIFIER.into()),
            resource: None,
            default_resource: "https://auth.example".into(),
            known_resources: vec!["https://auth.example".into(), "https://api.example".into()],
            grantable: vec!["voice".into(), "admin".into()],
        }
    }

    #[test]
    fn a_matching_request_passes_and_each_mismatch_has_its_reason() {
        assert_eq!(presented().check(&code()), Ok(()));
        let with = |f: &dyn Fn(&mut PresentedCode)| {
            let mut p = presented();
            f(&mut p);
            p.check(&code())
        };
        assert_eq!(
            with(&|p| p.client_id = "x".into()),
            Err(CodeRefusal::WrongClient)
        );
        assert_eq!(
            with(&|p| p.redirect_uri = "https://app.example/cb/".into()),
            Err(CodeRefusal::RedirectUri)
        );
        assert_eq!(
            with(&|p| p.verifier = Some(CHALLENGE.into())),
            Err(CodeRefusal::VerifierMismatch)
        );
        assert_eq!(
            with(&|p| p.verifier = None),
            Err(CodeRefusal::VerifierMissing)
        );
        assert_eq!(
            with(&|p| p.grantable.clear()),
            Err(CodeRefusal::NoScopeLeft)
        );
        assert_eq!(
            with(&|p| p.resource = Some("https://other.example".into())),
            Err(CodeRefusal::Resource)
        );
        assert_eq!(
            with(&|p| p.resource = Some("https://api.example".into())),
            Ok(())
        );
        // The code's resource no longer served: nothing minted, whatever the request names.
        assert_eq!(
            with(&|p| p.known_resources.retain(|r| r != "https://api.example")),
            Err(CodeRefusal::ResourceGone)
        );
        // A code of no resource is for the issuer: naming it matches, another does not.
        let mut for_issuer = code();
        for_issuer.resource = None;
        let naming = |r: &str| PresentedCode {
            resource: Some(r.into()),
            ..presented()
        };
        assert_eq!(naming("https://auth.example").check(&for_issuer), Ok(()));
        assert_eq!(
            naming("https://api.example").check(&for_issuer),
            Err(CodeRefusal::Resource)
        );
        let mut no_challenge = code();
        no_challenge.code_challenge = None;
        no_challenge.code_challenge_method = None;
        assert_eq!(
            presented().check(&no_challenge),
            Err(CodeRefusal::VerifierWithoutChallenge)
        );
        let public = PresentedCode {
            pkce_required: true,
            verifier: None,
            ..presented()
        };
        assert_eq!(public.check(&no_challenge), Err(CodeRefusal::PkceRequired));
        let mut corrupt = code();
        corrupt.code_challenge_method = Some("md5".into());
        assert_eq!(
            presented().check(&corrupt),
            Err(CodeRefusal::StoredChallengeMethod)
        );
        // The code's order, less what may no longer be granted.
        let p = PresentedCode {
            grantable: vec!["voice".into()],
            ..presented()
        };
        assert_eq!(p.scopes(&code()), vec!["voice"]);
        assert_eq!(CodeRefusal::Resource.error(), "invalid_target");
        assert_eq!(CodeRefusal::NoScopeLeft.error(), "invalid_scope");
        assert_eq!(CodeRefusal::VerifierMissing.error(), "invalid_grant");
    }

    /// A refusal counts as after the proof only when the redirect URI and the verifier passed:
    /// a request wrong in both is refused for the proof.
    #[test]
    fn only_scope_and_resource_refusals_come_after_the_proof() {
        use CodeRefusal::*;
        for r in [
            WrongClient,
            RedirectUri,
            VerifierMismatch,
            VerifierMissing,
            VerifierWithoutChallenge,
            PkceRequired,
            StoredChallengeMethod,
        ] {
            assert!(!r.after_proof(), "{r:?}");
        }
        assert!(NoScopeLeft.after_proof() && Resource.after_proof());
        let both = PresentedCode {
            verifier: Some(CHALLENGE.into()),
            resource: Some("https://other.example".into()),
            grantable: vec![],
            ..presented()
        };
        assert_eq!(both.check(&code()), Err(VerifierMismatch));
    }

    #[test]
    fn scopes_may_be_narrowed_never_widened() {
        let allowed = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(granted_scopes(None, &allowed), Ok(allowed.clone()));
        assert_eq!(granted_scopes(Some(""), &allowed), Ok(allowed.clone()));
        assert_eq!(
            granted_scopes(Some("b"), &allowed),
            Ok(vec!["b".to_owned()])
        );
        assert_eq!(
            granted_scopes(Some("a c"), &allowed),
            Err(ScopeRefusal::NotAllowed("c".into()))
        );
        assert!(matches!(
            granted_scopes(Some("a\"b"), &allowed),
            Err(ScopeRefusal::Malformed(_))
        ));
        assert_eq!(granted_scopes(None, &[]), Err(ScopeRefusal::NoneLeft));
    }
}
