//! `/oauth_grants`: a user's standing authorization of a client.

use serde::{Deserialize, Serialize};

/// An OAuth grant (`record_type: "oauth_grant"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthGrant {
    pub id: String,
    pub record_type: String,
    pub client_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub created_at: String,
    #[serde(default)]
    pub last_used_at: Option<String>,
}
