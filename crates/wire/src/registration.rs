//! `POST /oauth/register`: dynamic client registration (RFC 7591).

use serde::{Deserialize, Serialize};

use crate::enums::{GrantType, TokenEndpointAuthMethod};

/// RFC 7591 §2 client metadata. Metadata the server does not understand is ignored (§2), so this
/// type does not refuse unknown fields. Every field is optional: start from
/// [`RegistrationRequest::new`] and set what you need.
///
/// ```
/// use oauth_wire::{GrantType, RegistrationRequest};
/// let req = RegistrationRequest::new()
///     .client_name("My app")
///     .redirect_uris(["https://example.com/callback"])
///     .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken]);
/// assert_eq!(req.client_name.as_deref(), Some("My app"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct RegistrationRequest {
    /// `client_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `grant_types` (RFC 7591 default: `authorization_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<GrantType>>,
    /// `response_types` (RFC 7591 default: `code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    /// `redirect_uris`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// `scope`: space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `token_endpoint_auth_method`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// `logo_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// `policy_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// `tos_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// `jwks`: the client's public keys as a JWK set (RFC 7517), for `private_key_jwt`
    /// (RFC 7523).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub jwks: Option<serde_json::Value>,
    /// `jwks_uri`: where the client publishes its JWK set (https), for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `application_type` (OpenID Connect Dynamic Client Registration §2): `web` or `native`,
    /// checked against the redirect URIs when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
}

fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

impl RegistrationRequest {
    /// A request with no metadata; the server applies its defaults.
    pub fn new() -> Self {
        RegistrationRequest::default()
    }

    /// `client_name`.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// `grant_types`.
    pub fn grant_types(mut self, grant_types: impl IntoIterator<Item = GrantType>) -> Self {
        self.grant_types = Some(grant_types.into_iter().collect());
        self
    }

    /// `response_types`.
    pub fn response_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.response_types = Some(strings(types));
        self
    }

    /// `redirect_uris`.
    pub fn redirect_uris<S: Into<String>>(mut self, uris: impl IntoIterator<Item = S>) -> Self {
        self.redirect_uris = Some(strings(uris));
        self
    }

    /// `scope`: space-separated scopes.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// `token_endpoint_auth_method`.
    pub fn token_endpoint_auth_method(mut self, method: TokenEndpointAuthMethod) -> Self {
        self.token_endpoint_auth_method = Some(method);
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

    /// The client's public keys (a JWK set), for `private_key_jwt`.
    pub fn jwks(mut self, jwks: serde_json::Value) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// Where the client publishes its JWK set, for `private_key_jwt`.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// `application_type`: `web` or `native`.
    pub fn application_type(mut self, kind: impl Into<String>) -> Self {
        self.application_type = Some(kind.into());
        self
    }
}

/// RFC 7591 §3.2.1 client information response.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationResponse {
    /// The new client's id.
    pub client_id: String,
    /// When the id was issued, in seconds since the Unix epoch.
    pub client_id_issued_at: i64,
    /// The secret, for a client that authenticates with one; shown only here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// 0: the secret does not expire (RFC 7591 §3.2.1). Present when a secret is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// `client_name`, as registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `grant_types`, as registered.
    #[serde(default)]
    pub grant_types: Vec<GrantType>,
    /// `response_types`, as registered.
    #[serde(default)]
    pub response_types: Vec<String>,
    /// `redirect_uris`, as registered.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// `scope`, as registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `token_endpoint_auth_method`, as registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// `logo_uri`, as registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// `policy_uri`, as registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// `tos_uri`, as registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// `jwks`, as registered, for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub jwks: Option<serde_json::Value>,
    /// `jwks_uri`, as registered, for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `application_type`, as registered (absent when the registration did not send one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    /// RFC 7592 §3: where the registrant reads, updates and deletes the registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_client_uri: Option<String>,
    /// RFC 7592 §3: the bearer token for `registration_client_uri`; shown only when issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
}

crate::redact::debug_hiding_credentials!(RegistrationResponse {
    client_id,
    client_id_issued_at,
    client_secret_expires_at,
    client_name,
    grant_types,
    response_types,
    redirect_uris,
    scope,
    token_endpoint_auth_method,
    logo_uri,
    policy_uri,
    tos_uri,
    jwks,
    jwks_uri,
    application_type,
    registration_client_uri,
} hidden {
    client_secret,
    registration_access_token,
});
