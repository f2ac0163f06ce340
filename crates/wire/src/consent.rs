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

/// `POST /oauth/grants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGrantRequest {
    pub allowed: bool,
    pub consent_token: String,
}

/// The answer to a consent decision: where to send the user's browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateGrantResponse {
    pub redirect_uri: String,
}
