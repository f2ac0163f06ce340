//! `POST /oauth/token` (RFC 6749 §3.2): authenticate the client, then hand the request to the
//! grant it names.
//!
//! ```text
//!  client ── POST /oauth/token ──► OAuthParams (form or JSON, §3.2)
//!                                   ClientCredentials (Basic | body | id alone, §2.3)
//!                                   authenticate_client
//!                                   match grant_type ──► client_credentials (§4.4)
//!                                                   └─► anything else: unsupported_grant_type
//! ```

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use oauth_core::scope::parse_scope_string;
use oauth_wire::{GrantType, TokenResponse};

use crate::error::ApiError;
use crate::oauth_request::{
    authenticate_client, AuthenticatedClient, ClientCredentials, OAuthParams,
};
use crate::state::AppState;
use crate::tokens::{issue_access_token, TokenRequest};

/// The grants this endpoint serves, as `grant_types_supported` (RFC 8414 §2) lists them; the
/// `match` in [`token`] is the other half of this list.
pub const SUPPORTED_GRANT_TYPES: &[&str] = &["client_credentials"];

pub fn router() -> Router<AppState> {
    Router::new().route("/oauth/token", post(token))
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: OAuthParams,
) -> Result<Response, ApiError> {
    let creds = ClientCredentials::from_request(&headers, &params)?;
    let grant_type = params.require("grant_type")?;
    let Some(creds) = creds else {
        return Err(ApiError::invalid_client(
            false,
            "client authentication is required: HTTP Basic, or client_id (and client_secret) in the body",
        ));
    };
    let client = authenticate_client(&state, &creds).await?;
    let response = match grant_type {
        "client_credentials" => client_credentials(&state, &client, &params)?,
        // `authorization_code` (§4.1.3) and `refresh_token` (§6) arrive with the authorization
        // flow, as arms of this match.
        other => {
            return Err(ApiError::oauth(
                "unsupported_grant_type",
                format!("grant_type `{}` is not supported here", truncate(other)),
            ))
        }
    };
    Ok(no_store(Json(response).into_response()))
}

/// RFC 6749 §4.4: a confidential client gets a token for itself. Nothing is written: the token
/// is self-contained.
fn client_credentials(
    state: &AppState,
    auth: &AuthenticatedClient,
    params: &OAuthParams,
) -> Result<TokenResponse, ApiError> {
    let client = &auth.client;
    // §4.4: confidential clients only.
    if !client.is_confidential() || !auth.with_secret {
        return Err(ApiError::oauth(
            "unauthorized_client",
            "only a confidential client may use the client_credentials grant",
        ));
    }
    if !client
        .settings
        .grant_types
        .contains(&GrantType::ClientCredentials)
    {
        return Err(ApiError::oauth(
            "unauthorized_client",
            "this client is not allowed the client_credentials grant",
        ));
    }
    let scopes = granted_scopes(params.get("scope"), &client.settings.scopes)?;
    let audience = resource(state, params.get("resource"))?;
    let issued = issue_access_token(
        state,
        &TokenRequest {
            subject: &client.client_id,
            client_id: &client.client_id,
            scopes: &scopes,
            audience: audience.as_deref(),
            grant_id: None,
        },
    )?;
    tracing::info!(client_id = %client.client_id, jti_label = %oauth_core::secret::log_label(&issued.claims.jti), "issued a client_credentials token");
    Ok(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in,
        refresh_token: None,
        scope: Some(issued.claims.scope).filter(|s| !s.is_empty()),
    })
}

/// RFC 6749 §3.3: the requested scopes, each one allowed; none requested means all allowed.
pub fn granted_scopes(
    requested: Option<&str>,
    allowed: &[String],
) -> Result<Vec<String>, ApiError> {
    let Some(requested) = requested else {
        return Ok(allowed.to_vec());
    };
    let scopes = parse_scope_string(requested).map_err(|bad| {
        ApiError::oauth(
            "invalid_scope",
            format!("`{}` is not a valid scope", truncate(&bad)),
        )
    })?;
    if let Some(extra) = scopes.iter().find(|s| !allowed.contains(s)) {
        return Err(ApiError::oauth(
            "invalid_scope",
            format!(
                "the scope `{}` is not allowed for this client",
                truncate(extra)
            ),
        ));
    }
    if scopes.is_empty() {
        return Ok(allowed.to_vec());
    }
    Ok(scopes)
}

/// RFC 8707 §2: a `resource` must be the issuer or one of the configured `resources`; `None` is the
/// default (the issuer itself).
pub fn resource(state: &AppState, requested: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(r) = requested else {
        return Ok(None);
    };
    if !state.is_known_resource(r) {
        return Err(ApiError::oauth(
            "invalid_target",
            "the requested resource is unknown to this server",
        ));
    }
    Ok(Some(r.to_owned()))
}

/// RFC 6749 §5.1: token responses must not be cached.
pub fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// Caller-supplied text echoed in an error, cut short.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
