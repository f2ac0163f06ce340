//! `POST /oauth/register`: dynamic client registration (RFC 7591).
//!
//! Open by default; with `registration.mode = "token"` the caller must present the configured
//! initial access token as a Bearer credential (RFC 7591 §3). A registered client is a
//! third-party client (docs/threat-model.md): it belongs to no user, sits in an organization no
//! user is a member of, is never given a scope the catalogue keeps from third parties, and
//! gets `client_credentials` only behind the initial access token when the operator allows it.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use oauth_core::client::THIRD_PARTY_ORG_ID;
use oauth_core::{secret, Client, ClientDraft, ClientOrigin, RegistrationPolicy};
use oauth_wire::{ErrorBody, RegistrationRequest, RegistrationResponse};
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;

use crate::accounts::new_id;
use crate::audit::{self, Event, EventKind};
use crate::config::RegistrationMode;
use crate::error::ApiError;
use crate::extract::{bearer_token, JsonBody};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/oauth/register", post(register))
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register))]
pub(super) struct Doc;

#[utoipa::path(
    post,
    path = "/oauth/register",
    operation_id = "RegisterOAuthClient",
    tag = "OAuth",
    summary = "Dynamic client registration (RFC 7591)",
    request_body = RegistrationRequest,
    responses(
        (status = 201, description = "The registered client; `client_secret` is shown this once", body = RegistrationResponse),
        (status = 400, description = "`invalid_redirect_uri` or `invalid_client_metadata` (RFC 7591 §3.2.2)", body = ErrorBody),
        (status = 401, description = "Registration needs the initial access token", body = ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = ErrorBody),
    ),
    security((), ("initial_access_token" = [])),
)]
async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<JsonBody<RegistrationRequest>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    state
        .rate_limits
        .register_ip(peer.ip(), state.clock.now())
        .await?;
    let reg = &state.config.registration;
    if reg.mode == RegistrationMode::Token {
        let presented = bearer_token(&headers).map(secret::hash_secret);
        let ok = match (&presented, &reg.initial_access_token_hash) {
            (Some(p), Some(expected)) => bool::from(p.as_bytes().ct_eq(expected.as_bytes())),
            _ => false,
        };
        if !ok {
            return Err(ApiError::unauthorized(
                "invalid_token",
                "registration requires a valid initial access token: send Authorization: Bearer <token>",
                &state.protected_resource_metadata_url(),
            ));
        }
    }
    // RFC 7591 §3.2.2: a body that cannot be read as client metadata is invalid_client_metadata.
    let JsonBody(req) = body.map_err(|e| match e.status() {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            e.description().to_owned(),
        ),
        _ => e,
    })?;
    let policy = RegistrationPolicy {
        catalogue: &state.config.scopes,
        default_scopes: &reg.default_scopes,
        // Only behind the initial access token, and only when the operator said so.
        allow_client_credentials: reg.mode == RegistrationMode::Token
            && reg.allow_client_credentials,
    };
    let settings = ClientDraft::from_registration(req, &policy)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code, e.description))?;
    // A third party: no organization's member, no owner.
    let (client, secret) = Client::new(
        new_id(),
        settings,
        ClientOrigin::Registration,
        (THIRD_PARTY_ORG_ID, ""),
        state.clock.now(),
        &mut OsRng,
    );
    state.store.insert_client(&client).await?;
    audit::record(
        state.store.as_ref(),
        client.created_at,
        Event::new(EventKind::ClientRegistered).client(&client),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(client.to_registration_response(secret)),
    ))
}
