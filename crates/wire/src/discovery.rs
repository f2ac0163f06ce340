//! Discovery documents (RFC 8414, RFC 9728) and the JWK set (RFC 7517).

use serde::{Deserialize, Serialize};

/// RFC 8414 §2 authorization server metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorizationServerMetadata {
    /// `issuer`: the server's identifier, an https URL.
    pub issuer: String,
    /// `authorization_endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// `token_endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// `introspection_endpoint` (RFC 7662).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// `revocation_endpoint` (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// `registration_endpoint` (RFC 7591).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// `jwks_uri`: the key set that verifies the server's tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `response_types_supported`.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// `response_modes_supported` (RFC 8414 §2: when absent, `query` and `fragment`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_modes_supported: Vec<String>,
    /// `grant_types_supported`.
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    /// `code_challenge_methods_supported` (RFC 7636).
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// `scopes_supported`.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// `token_endpoint_auth_methods_supported`.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `token_endpoint_auth_signing_alg_values_supported`: the algorithms of `private_key_jwt`
    /// client assertions (RFC 7523).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// `revocation_endpoint_auth_methods_supported` (RFC 8414 §2: when absent,
    /// `client_secret_basic` alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// `revocation_endpoint_auth_signing_alg_values_supported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// `introspection_endpoint_auth_methods_supported` (RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// `introspection_endpoint_auth_signing_alg_values_supported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// draft-ietf-oauth-client-id-metadata-document: an https URL may be a `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_document_supported: Option<bool>,
}

/// RFC 9728 §2 protected resource metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProtectedResourceMetadata {
    /// `resource`: the protected resource's identifier.
    pub resource: String,
    /// `authorization_servers`: issuers whose tokens the resource accepts.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// `scopes_supported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// `bearer_methods_supported` (`header`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer_methods_supported: Vec<String>,
}

/// RFC 7517 §5 JWK set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// One public key. Only `kty` is required (RFC 7517 §4): `kid`, `alg` and `use` are optional, and
/// a key set from another server may leave them out. Key material fields depend on `kty` (RFC
/// 7518 §6); members this type does not name are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// `kid`: the key id a token's header names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `kty`: the key type (`EC`, `RSA`, `OKP`, ...).
    pub kty: String,
    /// `alg`: the algorithm the key is meant for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `use`: `sig` or `enc`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// `crv`: the curve of an `EC` or `OKP` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// `x`: the x coordinate (`EC`) or public key (`OKP`), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// `y`: the y coordinate of an `EC` key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// `n`: the modulus of an `RSA` key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// `e`: the exponent of an `RSA` key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_needs_only_kty() {
        let set: Result<JwkSet, _> = serde_json::from_str(
            r#"{"keys":[{"kty":"RSA","n":"0vx7","e":"AQAB"},{"kty":"EC","kid":"k1","crv":"P-256","x":"a","y":"b","x5c":["MIIC"]}]}"#,
        );
        let set = set.unwrap_or_default();
        assert_eq!(set.keys.len(), 2);
        assert_eq!(set.keys[0].kty, "RSA");
        assert_eq!(set.keys[0].kid, None);
        assert_eq!(set.keys[0].alg, None);
        assert_eq!(set.keys[0].use_, None);
        assert_eq!(set.keys[1].kid.as_deref(), Some("k1"));
        // Absent members stay absent when the key is written back.
        assert_eq!(
            serde_json::to_string(&set.keys[0]).ok().as_deref(),
            Some(r#"{"kty":"RSA","n":"0vx7","e":"AQAB"}"#)
        );
    }
}
