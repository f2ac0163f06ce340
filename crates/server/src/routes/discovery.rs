//! What the server says about itself, all from memory: the authorization server metadata
//! (RFC 8414), the protected resource metadata (RFC 9728) and the JWK set (RFC 7517).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use oauth_core::token::SUPPORTED_GRANT_TYPES;
use oauth_wire::{AuthorizationServerMetadata, ErrorBody, JwkSet, ProtectedResourceMetadata};

use crate::error::ApiError;
use crate::extract::PathParam;

use crate::state::AppState;

pub const AS_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(AS_METADATA_PATH, get(authorization_server))
        .route(
            &format!("{AS_METADATA_PATH}/{{*issuer_path}}"),
            get(authorization_server_with_path),
        )
        .route(RESOURCE_METADATA_PATH, get(protected_resource))
        .route(
            &format!("{RESOURCE_METADATA_PATH}/{{*resource_path}}"),
            get(protected_resource_with_path),
        )
        .route("/oauth/jwks", get(jwks))
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    authorization_server,
    authorization_server_with_path,
    protected_resource,
    protected_resource_with_path,
    jwks
))]
pub(super) struct Doc;

/// RFC 8414 §2.
pub fn authorization_server_metadata(state: &AppState) -> AuthorizationServerMetadata {
    let iss = &state.issuer;
    let strs = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    AuthorizationServerMetadata {
        issuer: iss.to_string(),
        authorization_endpoint: Some(format!("{iss}/oauth/authorize")),
        token_endpoint: Some(format!("{iss}/oauth/token")),
        introspection_endpoint: Some(format!("{iss}/oauth/introspect")),
        revocation_endpoint: Some(format!("{iss}/oauth/revoke")),
        registration_endpoint: Some(format!("{iss}/oauth/register")),
        jwks_uri: Some(format!("{iss}/oauth/jwks")),
        response_types_supported: strs(&["code"]),
        // The code comes back in the query only; any other `response_mode` is refused.
        response_modes_supported: strs(&["query"]),
        grant_types_supported: strs(SUPPORTED_GRANT_TYPES),
        // PKCE S256 is always on; `plain` is listed only when the operator enables it.
        code_challenge_methods_supported: if state.config.authorization.allow_plain_pkce {
            strs(&["S256", "plain"])
        } else {
            strs(&["S256"])
        },
        scopes_supported: state.config.scopes.names(),
        token_endpoint_auth_methods_supported: strs(&[
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ]),
        token_endpoint_auth_signing_alg_values_supported: strs(
            oauth_core::client_assertion::SIGNING_ALGORITHMS,
        ),
        // A public client revokes its own tokens with its id alone (RFC 7009 §2.1)...
        revocation_endpoint_auth_methods_supported: strs(&[
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ]),
        revocation_endpoint_auth_signing_alg_values_supported: strs(
            oauth_core::client_assertion::SIGNING_ALGORITHMS,
        ),
        // ...but introspects nothing: a caller that cannot prove itself is answered 401. A
        // bearer credential (an API key, or a management token) is no client authentication
        // method, and is described in the API's own documents.
        introspection_endpoint_auth_methods_supported: strs(&[
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ]),
        introspection_endpoint_auth_signing_alg_values_supported: strs(
            oauth_core::client_assertion::SIGNING_ALGORITHMS,
        ),
        authorization_response_iss_parameter_supported: Some(true),
        client_id_metadata_document_supported: Some(state.config.registration.cimd_enabled),
    }
}

/// RFC 9728 §2: this server as a protected resource (its management API).
pub fn protected_resource_metadata(state: &AppState) -> ProtectedResourceMetadata {
    ProtectedResourceMetadata {
        resource: state.issuer.to_string(),
        authorization_servers: vec![state.issuer.to_string()],
        // An MCP client asks for every scope listed here (and may have registered itself with
        // them): only scopes a third-party client may be granted, so that its default journey
        // succeeds. The management scope is for first-party clients, who know it.
        scopes_supported: state.config.scopes.third_party_names(),
        bearer_methods_supported: vec!["header".to_owned()],
    }
}

#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    operation_id = "GetOAuthAuthorizationServerMetadata",
    tag = "OAuth Discovery",
    summary = "Authorization server metadata (RFC 8414)",
    responses(
        (status = 200, description = "The metadata", body = AuthorizationServerMetadata),
        (status = 400, description = "Not sent by this server; listed for compatibility", body = ErrorBody),
        (status = 401, description = "Not sent by this server; listed for compatibility", body = ErrorBody),
    ),
    security(()),
)]
async fn authorization_server(State(state): State<AppState>) -> Response {
    Json(authorization_server_metadata(&state)).into_response()
}

/// RFC 8414 §3.1: for an issuer with a path, the metadata lives at the well-known path
/// followed by the issuer's path. Only that path answers.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server/{issuer_path}",
    operation_id = "GetOAuthAuthorizationServerMetadataForIssuerPath",
    tag = "OAuth Discovery",
    summary = "Authorization server metadata of an issuer with a path (RFC 8414 §3.1)",
    params(("issuer_path" = String, Path, description = "The issuer's path (may contain `/`)")),
    responses(
        (status = 200, description = "The metadata", body = AuthorizationServerMetadata),
        (status = 404, description = "Not this issuer's path", body = ErrorBody),
    ),
    security(()),
)]
async fn authorization_server_with_path(
    State(state): State<AppState>,
    PathParam(issuer_path): PathParam,
) -> Result<Response, ApiError> {
    if !matches_issuer_path(&state, &issuer_path) {
        return Err(ApiError::not_found("authorization server metadata"));
    }
    Ok(Json(authorization_server_metadata(&state)).into_response())
}

#[utoipa::path(
    get,
    path = "/.well-known/oauth-protected-resource",
    operation_id = "GetOAuthProtectedResourceMetadata",
    tag = "OAuth Discovery",
    summary = "Protected resource metadata (RFC 9728)",
    responses(
        (status = 200, description = "The metadata", body = ProtectedResourceMetadata),
        (status = 400, description = "Not sent by this server; listed for compatibility", body = ErrorBody),
        (status = 401, description = "Not sent by this server; listed for compatibility", body = ErrorBody),
    ),
    security(()),
)]
async fn protected_resource(State(state): State<AppState>) -> Response {
    Json(protected_resource_metadata(&state)).into_response()
}

/// RFC 9728 §3.1: the same insertion rule for a resource identifier with a path.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-protected-resource/{resource_path}",
    operation_id = "GetOAuthProtectedResourceMetadataForResourcePath",
    tag = "OAuth Discovery",
    summary = "Protected resource metadata of a resource with a path (RFC 9728 §3.1)",
    params(("resource_path" = String, Path, description = "The resource's path (may contain `/`)")),
    responses(
        (status = 200, description = "The metadata", body = ProtectedResourceMetadata),
        (status = 404, description = "Not this resource's path", body = ErrorBody),
    ),
    security(()),
)]
async fn protected_resource_with_path(
    State(state): State<AppState>,
    PathParam(resource_path): PathParam,
) -> Result<Response, ApiError> {
    if !matches_issuer_path(&state, &resource_path) {
        return Err(ApiError::not_found("protected resource metadata"));
    }
    Ok(Json(protected_resource_metadata(&state)).into_response())
}

fn matches_issuer_path(state: &AppState, path: &str) -> bool {
    let issuer_path = url::Url::parse(&state.issuer)
        .map(|u| u.path().trim_matches('/').to_owned())
        .unwrap_or_default();
    !issuer_path.is_empty() && issuer_path == path.trim_matches('/')
}

/// The published keys, from memory: answers even while the database is down.
#[utoipa::path(
    get,
    path = "/oauth/jwks",
    operation_id = "GetOAuthJWKS",
    tag = "OAuth Discovery",
    summary = "The public keys that verify access tokens (RFC 7517)",
    responses(
        (status = 200, description = "The JWK set", body = JwkSet),
        (status = 400, description = "Not sent by this server; listed for compatibility", body = ErrorBody),
        (status = 401, description = "Not sent by this server; listed for compatibility", body = ErrorBody),
    ),
    security(()),
)]
async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = (StatusCode::OK, state.keys.jwks_json()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Short enough that a key rotated in with the default publish delay is seen by verifiers
    // long before it signs.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}
