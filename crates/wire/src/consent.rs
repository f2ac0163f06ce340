//! The consent step: `GET /oauth/consent/{consent_token}` and `POST /oauth/grants`.

use serde::{Deserialize, Serialize};

/// What a consent page shows about a pending authorization request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentDetails {
    pub client_id: String,
    pub name: String,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub redirect_uri: String,
    pub verified: bool,
    #[serde(default)]
    pub requested_scopes: Vec<RequestedScope>,
}

/// One scope the client asks for, with the text a user reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestedScope {
    pub id: String,
    pub name: String,
    pub description: String,
}

/// `POST /oauth/grants`: the user's decision on a pending authorization request.
///
/// ```
/// use oauth_wire::CreateGrantRequest;
/// let decision = CreateGrantRequest::new(true, "consent-token");
/// assert!(decision.allowed);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CreateGrantRequest {
    /// `true` grants the requested scopes, `false` denies them.
    pub allowed: bool,
    /// The token that named the request on the consent page.
    pub consent_token: String,
}

impl CreateGrantRequest {
    /// A decision on the request `consent_token` names.
    pub fn new(allowed: bool, consent_token: impl Into<String>) -> Self {
        CreateGrantRequest {
            allowed,
            consent_token: consent_token.into(),
        }
    }
}

/// The answer to a consent decision: where to send the user's browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateGrantResponse {
    pub redirect_uri: String,
}
