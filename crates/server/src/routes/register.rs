//! `POST /oauth/register`: dynamic client registration (RFC 7591).
//!
//! Open by default; with `registration.mode = "token"` the caller must present the configured
//! initial access token as a Bearer credential (RFC 7591 §3). Registered clients belong to the
//! configured registration organization and are owned by its oldest user.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use oauth_core::{secret, ClientDraft};
use oauth_wire::RegistrationRequest;
use subtle::ConstantTimeEq;

use crate::audit::{self, Event, EventKind};
use crate::config::RegistrationMode;
use crate::error::ApiError;
use crate::extract::{bearer_token, JsonBody};
use crate::routes::clients::new_client;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/oauth/register", post(register))
}

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
    let settings = ClientDraft::from_registration(req, &state.config.scopes, &reg.default_scopes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code, e.description))?;

    let Some(org) = state
        .store
        .find_organization_by_name(&reg.organization)
        .await?
    else {
        tracing::error!(organization = %reg.organization, "registration organization does not exist");
        return Err(ApiError::unavailable());
    };
    let Some(owner) = state.store.organization_owner(&org.id).await? else {
        tracing::error!(organization = %reg.organization, "registration organization has no users");
        return Err(ApiError::unavailable());
    };
    let (client, secret) = new_client(&state, settings, &org.id, &owner.id);
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
