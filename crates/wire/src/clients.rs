//! `/oauth_clients`: the OAuth client as the management API shows it, and its request bodies.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::enums::{ClientType, GrantType};

/// An OAuth client (`record_type: "oauth_client"`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthClient {
    /// Always `"oauth_client"`.
    pub record_type: String,
    /// The client's id (a UUID on this server).
    pub client_id: String,
    /// Present only in the create response of a confidential client; `null` otherwise.
    pub client_secret: Option<String>,
    /// The name shown on the consent page.
    pub name: String,
    /// The organization that owns the client.
    pub org_id: String,
    /// The user who created the client.
    pub user_id: String,
    /// `public` or `confidential`.
    pub client_type: ClientType,
    /// Whether authorization requests must use PKCE.
    pub require_pkce: bool,
    /// The grant types the client may use at the token endpoint.
    #[serde(default)]
    pub allowed_grant_types: Vec<GrantType>,
    /// The scopes the client may be granted.
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// The registered redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The client's logo, if set.
    pub logo_uri: Option<String>,
    /// The client's privacy policy, if set.
    pub policy_uri: Option<String>,
    /// The client's terms of service, if set.
    pub tos_uri: Option<String>,
    /// When the client was created (RFC 3339 on the wire).
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    /// When the client was last changed (RFC 3339 on the wire).
    #[serde(with = "crate::timestamp")]
    pub updated_at: OffsetDateTime,
}

crate::redact::debug_hiding_credentials!(OAuthClient {
    record_type,
    client_id,
    name,
    org_id,
    user_id,
    client_type,
    require_pkce,
    allowed_grant_types,
    allowed_scopes,
    redirect_uris,
    logo_uri,
    policy_uri,
    tos_uri,
    created_at,
    updated_at,
} hidden {
    client_secret,
});

/// `POST /oauth_clients`.
///
/// Built with [`CreateOAuthClient::new`] (the required fields) and setters for the optional
/// ones, so that a field added later does not break callers:
///
/// ```
/// use oauth_wire::{ClientType, CreateOAuthClient, GrantType};
/// let req = CreateOAuthClient::new(
///     "Billing",
///     ClientType::Confidential,
///     [GrantType::AuthorizationCode],
///     ["admin"],
/// )
/// .redirect_uris(["https://billing.example.com/callback"])
/// .require_pkce(true);
/// assert_eq!(req.allowed_grant_types, [GrantType::AuthorizationCode]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CreateOAuthClient {
    /// The name shown on the consent page.
    pub name: String,
    /// The scopes the client may be granted.
    pub allowed_scopes: Vec<String>,
    /// `public` or `confidential` (only a confidential client gets a secret).
    pub client_type: ClientType,
    /// The grant types the client may use.
    pub allowed_grant_types: Vec<GrantType>,
    /// The redirect URIs (required for `authorization_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// Whether authorization requests must use PKCE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pkce: Option<bool>,
    /// The client's logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// The client's privacy policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// The client's terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
}

/// `PUT /oauth_clients/{id}`: a partial update. An absent field is left alone; `null` clears an
/// optional link, and is refused for the other fields, which cannot be cleared.
///
/// ```
/// use oauth_wire::UpdateOAuthClient;
/// let patch = UpdateOAuthClient::new().name("Renamed").clear_logo_uri();
/// assert_eq!(patch.name.as_deref(), Some("Renamed"));
/// assert_eq!(patch.logo_uri, Some(None));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpdateOAuthClient {
    /// A new name; `None` leaves it alone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::not_null::deserialize"
    )]
    pub name: Option<String>,
    /// New allowed scopes; `None` leaves them alone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::not_null::deserialize"
    )]
    pub allowed_scopes: Option<Vec<String>>,
    /// New allowed grant types; `None` leaves them alone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::not_null::deserialize"
    )]
    pub allowed_grant_types: Option<Vec<GrantType>>,
    /// New redirect URIs; `None` leaves them alone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::not_null::deserialize"
    )]
    pub redirect_uris: Option<Vec<String>>,
    /// Whether PKCE is required; `None` leaves it alone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::not_null::deserialize"
    )]
    pub require_pkce: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::double_option"
    )]
    /// `None` leaves the logo alone, `Some(None)` clears it.
    pub logo_uri: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::double_option"
    )]
    /// `None` leaves the policy link alone, `Some(None)` clears it.
    pub policy_uri: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::double_option"
    )]
    /// `None` leaves the terms link alone, `Some(None)` clears it.
    pub tos_uri: Option<Option<String>>,
}

fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

impl CreateOAuthClient {
    /// A request with the required fields; every optional field is left out.
    pub fn new<S: Into<String>>(
        name: impl Into<String>,
        client_type: ClientType,
        grant_types: impl IntoIterator<Item = GrantType>,
        scopes: impl IntoIterator<Item = S>,
    ) -> Self {
        CreateOAuthClient {
            name: name.into(),
            allowed_scopes: strings(scopes),
            client_type,
            allowed_grant_types: grant_types.into_iter().collect(),
            redirect_uris: None,
            require_pkce: None,
            logo_uri: None,
            policy_uri: None,
            tos_uri: None,
        }
    }

    /// `redirect_uris`: where authorization answers may be sent.
    pub fn redirect_uris<S: Into<String>>(mut self, uris: impl IntoIterator<Item = S>) -> Self {
        self.redirect_uris = Some(strings(uris));
        self
    }

    /// `require_pkce`: whether the authorization code flow must use PKCE.
    pub fn require_pkce(mut self, require: bool) -> Self {
        self.require_pkce = Some(require);
        self
    }

    /// `logo_uri`.
    pub fn logo_uri(mut self, uri: impl Into<String>) -> Self {
        self.logo_uri = Some(uri.into());
        self
    }

    /// `policy_uri`.
    pub fn policy_uri(mut self, uri: impl Into<String>) -> Self {
        self.policy_uri = Some(uri.into());
        self
    }

    /// `tos_uri`.
    pub fn tos_uri(mut self, uri: impl Into<String>) -> Self {
        self.tos_uri = Some(uri.into());
        self
    }
}

impl UpdateOAuthClient {
    /// An update that changes nothing; each setter adds one field.
    pub fn new() -> Self {
        UpdateOAuthClient::default()
    }

    /// A new `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// New `allowed_scopes` (replacing the old list).
    pub fn allowed_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.allowed_scopes = Some(strings(scopes));
        self
    }

    /// New `allowed_grant_types` (replacing the old list).
    pub fn allowed_grant_types(mut self, grant_types: impl IntoIterator<Item = GrantType>) -> Self {
        self.allowed_grant_types = Some(grant_types.into_iter().collect());
        self
    }

    /// New `redirect_uris` (replacing the old list).
    pub fn redirect_uris<S: Into<String>>(mut self, uris: impl IntoIterator<Item = S>) -> Self {
        self.redirect_uris = Some(strings(uris));
        self
    }

    /// A new `require_pkce`.
    pub fn require_pkce(mut self, require: bool) -> Self {
        self.require_pkce = Some(require);
        self
    }

    /// A new `logo_uri`.
    pub fn logo_uri(mut self, uri: impl Into<String>) -> Self {
        self.logo_uri = Some(Some(uri.into()));
        self
    }

    /// Clears `logo_uri` (sends `null`).
    pub fn clear_logo_uri(mut self) -> Self {
        self.logo_uri = Some(None);
        self
    }

    /// A new `policy_uri`.
    pub fn policy_uri(mut self, uri: impl Into<String>) -> Self {
        self.policy_uri = Some(Some(uri.into()));
        self
    }

    /// Clears `policy_uri` (sends `null`).
    pub fn clear_policy_uri(mut self) -> Self {
        self.policy_uri = Some(None);
        self
    }

    /// A new `tos_uri`.
    pub fn tos_uri(mut self, uri: impl Into<String>) -> Self {
        self.tos_uri = Some(Some(uri.into()));
        self
    }

    /// Clears `tos_uri` (sends `null`).
    pub fn clear_tos_uri(mut self) -> Self {
        self.tos_uri = Some(None);
        self
    }
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
    fn constructors_send_only_what_was_set() {
        let create = CreateOAuthClient::new(
            "App",
            ClientType::Public,
            [GrantType::AuthorizationCode],
            ["admin"],
        );
        assert_eq!(
            serde_json::to_string(&create).ok().as_deref(),
            Some(
                r#"{"name":"App","allowed_scopes":["admin"],"client_type":"public","allowed_grant_types":["authorization_code"]}"#
            )
        );
        let create = create
            .redirect_uris(["https://a.example/cb"])
            .require_pkce(true);
        assert_eq!(
            serde_json::to_value(&create).ok(),
            serde_json::from_str::<serde_json::Value>(
                r#"{"name":"App","allowed_scopes":["admin"],"client_type":"public","allowed_grant_types":["authorization_code"],"redirect_uris":["https://a.example/cb"],"require_pkce":true}"#
            )
            .ok()
        );
        let update = UpdateOAuthClient::new()
            .tos_uri("https://a.example/tos")
            .clear_policy_uri();
        assert_eq!(
            serde_json::to_string(&update).ok().as_deref(),
            Some(r#"{"policy_uri":null,"tos_uri":"https://a.example/tos"}"#)
        );
    }

    #[test]
    fn unknown_fields_are_refused_in_management_bodies() {
        let r = serde_json::from_str::<UpdateOAuthClient>(r#"{"client_type":"public"}"#);
        assert!(r.is_err());
    }
}
