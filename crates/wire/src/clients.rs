//! `/oauth_clients`: the OAuth client as the management API shows it, and its request bodies.

use serde::{Deserialize, Serialize};

use crate::enums::{ClientType, GrantType};

/// An OAuth client (`record_type: "oauth_client"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthClient {
    pub record_type: String,
    pub client_id: String,
    /// Present only in the create response of a confidential client; `null` otherwise.
    pub client_secret: Option<String>,
    pub name: String,
    pub org_id: String,
    pub user_id: String,
    pub client_type: ClientType,
    pub require_pkce: bool,
    #[serde(default)]
    pub allowed_grant_types: Vec<GrantType>,
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /oauth_clients`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOAuthClient {
    pub name: String,
    pub allowed_scopes: Vec<String>,
    pub client_type: ClientType,
    pub allowed_grant_types: Vec<GrantType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pkce: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
}

/// `PUT /oauth_clients/{id}`: a partial update. An absent field is left alone; `null` clears an
/// optional link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateOAuthClient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_grant_types: Option<Vec<GrantType>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pkce: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::double_option"
    )]
    pub logo_uri: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::double_option"
    )]
    pub policy_uri: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::double_option"
    )]
    pub tos_uri: Option<Option<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_tells_absent_from_null() {
        let absent: UpdateOAuthClient = serde_json::from_str("{}").unwrap_or_default();
        assert_eq!(absent.logo_uri, None);
        let null: UpdateOAuthClient =
            serde_json::from_str(r#"{"logo_uri":null}"#).unwrap_or_default();
        assert_eq!(null.logo_uri, Some(None));
        assert_eq!(
            serde_json::to_string(&null).ok().as_deref(),
            Some(r#"{"logo_uri":null}"#)
        );
        assert_eq!(serde_json::to_string(&absent).ok().as_deref(), Some("{}"));
    }

    #[test]
    fn unknown_fields_are_refused_in_management_bodies() {
        let r = serde_json::from_str::<UpdateOAuthClient>(r#"{"client_type":"public"}"#);
        assert!(r.is_err());
    }
}
