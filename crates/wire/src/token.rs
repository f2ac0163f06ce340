//! `/oauth/token` (RFC 6749 §4), `/oauth/introspect` (RFC 7662), `/oauth/revoke` (RFC 7009).

use serde::{Deserialize, Serialize};

use crate::enums::GrantType;

/// A token request, form-encoded or JSON. Every field is a string on the wire.
///
/// ```
/// use oauth_wire::{GrantType, TokenRequest};
/// let req = TokenRequest::new(GrantType::AuthorizationCode)
///     .code("SplxlOBeZQQYbYS6WxSbIA")
///     .redirect_uri("https://client.example.com/cb")
///     .code_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
/// assert_eq!(req.grant_type, GrantType::AuthorizationCode);
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct TokenRequest {
    /// `grant_type`.
    pub grant_type: GrantType,
    /// `client_id`, when the client authenticates in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `client_secret`, when the client authenticates in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `code` (authorization code grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `code_verifier` (PKCE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verifier: Option<String>,
    /// `redirect_uri`, as sent with the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// `refresh_token` (refresh token grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// `scope`: space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// RFC 8707 resource indicator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

crate::redact::debug_hiding_credentials!(TokenRequest {
    grant_type,
    client_id,
    redirect_uri,
    scope,
    resource,
} hidden {
    client_secret,
    code,
    code_verifier,
    refresh_token,
});

impl TokenRequest {
    /// A request for `grant_type`; the grant's parameters are added with the setters.
    pub fn new(grant_type: GrantType) -> Self {
        TokenRequest {
            grant_type,
            client_id: None,
            client_secret: None,
            code: None,
            code_verifier: None,
            redirect_uri: None,
            refresh_token: None,
            scope: None,
            resource: None,
        }
    }

    /// `client_id`, for a client that authenticates in the body (or a public client).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// `client_secret`, for a client that authenticates in the body.
    pub fn client_secret(mut self, client_secret: impl Into<String>) -> Self {
        self.client_secret = Some(client_secret.into());
        self
    }

    /// `code`: the authorization code (RFC 6749 §4.1.3).
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// `code_verifier`: the PKCE verifier (RFC 7636 §4.5).
    pub fn code_verifier(mut self, verifier: impl Into<String>) -> Self {
        self.code_verifier = Some(verifier.into());
        self
    }

    /// `redirect_uri`: the one the authorization request carried.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// `refresh_token` (RFC 6749 §6).
    pub fn refresh_token(mut self, token: impl Into<String>) -> Self {
        self.refresh_token = Some(token.into());
        self
    }

    /// `scope`: space-separated scopes.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// `resource` (RFC 8707).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }
}

/// RFC 6749 §5.1 successful token response.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always exactly `"Bearer"`.
    pub token_type: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// A refresh token, when the grant issues one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scopes granted, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

crate::redact::debug_hiding_credentials!(TokenResponse {
    token_type,
    expires_in,
    scope,
} hidden {
    access_token,
    refresh_token,
});

/// RFC 7662 §2.1 introspection request.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct IntrospectRequest {
    /// The token to inspect.
    pub token: String,
    /// `access_token` or `refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type_hint: Option<String>,
    /// `client_id`, when the client authenticates in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `client_secret`, when the client authenticates in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

crate::redact::debug_hiding_credentials!(IntrospectRequest {
    token_type_hint,
    client_id,
} hidden {
    token,
    client_secret,
});

/// RFC 7662 §2.2 introspection response. An inactive token carries `active: false` alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IntrospectResponse {
    /// Whether the token is active; the other members are present only when it is.
    pub active: bool,
    /// `aud`: the audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `exp`: expiry, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// `iat`: issue time, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// `iss`: the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The token's scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `sub`: the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The token's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// `jti`: the token's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// RFC 7009 §2.1 revocation request.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct RevokeRequest {
    /// The token to revoke.
    pub token: String,
    /// `access_token` or `refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type_hint: Option<String>,
    /// `client_id`, when the client authenticates in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `client_secret`, when the client authenticates in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

crate::redact::debug_hiding_credentials!(RevokeRequest {
    token_type_hint,
    client_id,
} hidden {
    token,
    client_secret,
});

impl IntrospectRequest {
    /// A request about `token`.
    pub fn new(token: impl Into<String>) -> Self {
        IntrospectRequest {
            token: token.into(),
            token_type_hint: None,
            client_id: None,
            client_secret: None,
        }
    }

    /// `token_type_hint`: `access_token` or `refresh_token`.
    pub fn token_type_hint(mut self, hint: impl Into<String>) -> Self {
        self.token_type_hint = Some(hint.into());
        self
    }

    /// `client_id`, for a client that authenticates in the body.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// `client_secret`, for a client that authenticates in the body.
    pub fn client_secret(mut self, client_secret: impl Into<String>) -> Self {
        self.client_secret = Some(client_secret.into());
        self
    }
}

impl RevokeRequest {
    /// A request about `token`.
    pub fn new(token: impl Into<String>) -> Self {
        RevokeRequest {
            token: token.into(),
            token_type_hint: None,
            client_id: None,
            client_secret: None,
        }
    }

    /// `token_type_hint`: `access_token` or `refresh_token`.
    pub fn token_type_hint(mut self, hint: impl Into<String>) -> Self {
        self.token_type_hint = Some(hint.into());
        self
    }

    /// `client_id`, for a client that authenticates in the body.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// `client_secret`, for a client that authenticates in the body.
    pub fn client_secret(mut self, client_secret: impl Into<String>) -> Self {
        self.client_secret = Some(client_secret.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_type_is_a_plain_string_on_the_wire() {
        let req = TokenRequest::new(GrantType::ClientCredentials).scope("admin");
        assert_eq!(
            serde_urlencoded::to_string(&req).ok().as_deref(),
            Some("grant_type=client_credentials&scope=admin")
        );
        assert_eq!(
            serde_json::to_string(&req).ok().as_deref(),
            Some(r#"{"grant_type":"client_credentials","scope":"admin"}"#)
        );
        let other = TokenRequest::new(GrantType::parse("urn:example:grant"));
        assert_eq!(
            serde_urlencoded::to_string(&other).ok().as_deref(),
            Some("grant_type=urn%3Aexample%3Agrant")
        );
        let back: Option<TokenRequest> =
            serde_urlencoded::from_str("grant_type=refresh_token&refresh_token=r").ok();
        assert_eq!(
            back,
            Some(TokenRequest::new(GrantType::RefreshToken).refresh_token("r"))
        );
    }
}
