//! `POST /oauth/register`: dynamic client registration (RFC 7591).
//!
//! Open by default; with `registration.mode = "token"` the caller must present the configured
//! initial access token as a Bearer credential (RFC 7591 §3). A registered client is a
//! third-party client (docs/threat-model.md): it belongs to no user, sits in an organization no
//! user is a member of, is never given a scope the catalogue keeps from third parties, and
//! gets `client_credentials` only behind the initial access token when the operator allows it.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use oauth_core::client::THIRD_PARTY_ORG_ID;
use oauth_core::validation::{FieldError, ValidationErrors};
use oauth_core::{secret, Client, ClientDraft, ClientOrigin, RegistrationPolicy};
use oauth_store::ClientEdit;
use oauth_wire::{ErrorBody, GrantType, RegistrationRequest, RegistrationResponse};
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;

use crate::accounts::new_id;
use crate::audit::{self, Event, EventKind};
use crate::config::RegistrationMode;
use crate::error::ApiError;
use crate::extract::{bearer_token, JsonBody, PathParam};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/register", post(register))
        .route(
            "/oauth/register/{client_id}",
            get(read_registration)
                .put(update_registration)
                .delete(delete_registration),
        )
}

/// RFC 7592 §3: where the registrant manages the client.
fn registration_client_uri(state: &AppState, client_id: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    format!("{}/oauth/register/{id}", state.issuer)
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register, read_registration, update_registration, delete_registration))]
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
            // RFC 6750 §3.1: no error code for a request without a bearer token; the
            // protected resource metadata describes the management API, not this token.
            let (error, challenge) = match presented {
                Some(_) => ("invalid_token", "Bearer error=\"invalid_token\""),
                None => ("unauthorized", "Bearer"),
            };
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                error,
                "registration requires a valid initial access token: send Authorization: Bearer <token>",
            )
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge)));
        }
    }
    let JsonBody(req) = body.map_err(ApiError::as_client_metadata_error)?;
    let policy = RegistrationPolicy {
        catalogue: &state.config.scopes,
        default_scopes: &reg.default_scopes,
        // Only behind the initial access token, and only when the operator said so.
        allow_client_credentials: reg.mode == RegistrationMode::Token
            && reg.allow_client_credentials,
        allow_http_loopback: reg.cimd_allow_http_loopback,
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
    // What one address stores in a day is bounded; only a stored client spends of it.
    state
        .rate_limits
        .storing_client_allowed(peer.ip(), state.clock.now())
        .await
        .map_err(ApiError::rate_limited)?;
    // RFC 7592: the registrant's credential for managing the client, kept only as its hash and
    // stored with the client in one write, so that no client is left that nobody can manage.
    let access_token = secret::random_token(&mut OsRng);
    state
        .store
        .register_client(&client, &secret::hash_secret(&access_token))
        .await?;
    state
        .rate_limits
        .client_stored(peer.ip(), state.clock.now())
        .await;
    audit::record(
        state.store.as_ref(),
        client.created_at,
        Event::new(EventKind::ClientRegistered).client(&client),
    )
    .await;
    let mut response = client.to_registration_response(secret);
    response.registration_client_uri = Some(registration_client_uri(&state, &client.client_id));
    response.registration_access_token = Some(access_token);
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(response),
    ))
}

/// RFC 7592 §2: the client the bearer token manages, and the token. A missing or wrong token,
/// an unknown client and a client with no registration token all answer the same 401.
async fn registrant<'h>(
    state: &AppState,
    peer: SocketAddr,
    headers: &'h HeaderMap,
    client_id: &str,
) -> Result<(Client, &'h str), ApiError> {
    state
        .rate_limits
        .register_ip(peer.ip(), state.clock.now())
        .await?;
    let refused = not_a_registrant;
    let presented = bearer_token(headers).ok_or_else(no_registration_token)?;
    let stored = state
        .store
        .registration_token_hash(client_id)
        .await?
        .ok_or_else(refused)?;
    // SHA-256 of the presented token, compared in constant time.
    if !secret::verify_secret(presented, &stored) {
        return Err(refused());
    }
    let client = state
        .store
        .get_client(client_id)
        .await?
        .filter(|c| c.origin == ClientOrigin::Registration)
        .ok_or_else(refused)?;
    Ok((client, presented))
}

/// RFC 7592 §2: a registration access token that is wrong, or names a client that is gone
/// (also one deleted while the request was under way): RFC 6750 §3.1 `invalid_token`.
fn not_a_registrant() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the registration access token is wrong, or not this client's",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    )
}

/// RFC 6750 §3.1: a request with no credential at all gets a challenge without an error code.
/// No `resource_metadata` either: the protected resource metadata describes the management
/// API, whose credentials do not manage a registration.
fn no_registration_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "authentication required: send Authorization: Bearer <registration access token>",
    )
    .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// RFC 7592 §3: the client's information with its configuration endpoint and its registration
/// access token, which is never rotated here: the one the request presented (only its hash is
/// stored).
fn management_response(state: &AppState, client: &Client, access_token: &str) -> impl IntoResponse {
    let mut response = client.to_registration_response(None);
    response.registration_client_uri = Some(registration_client_uri(state, &client.client_id));
    response.registration_access_token = Some(access_token.to_owned());
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(response),
    )
}

/// RFC 7592 §2.1: read the registration.
#[utoipa::path(
    get,
    path = "/oauth/register/{client_id}",
    operation_id = "ReadOAuthClientRegistration",
    tag = "OAuth",
    summary = "Read one's own registration (RFC 7592)",
    params(("client_id" = String, Path, description = "The registered client's id")),
    security(("registration_access_token" = [])),
    responses(
        (status = 200, description = "The client's registration", body = RegistrationResponse),
        (status = 401, description = "The registration access token is missing or wrong", body = ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = ErrorBody),
    ),
)]
async fn read_registration(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PathParam(client_id): PathParam,
) -> Result<impl IntoResponse, ApiError> {
    let (client, access_token) = registrant(&state, peer, &headers, &client_id).await?;
    Ok(management_response(&state, &client, access_token))
}

/// RFC 7592 §2.2: replace the registration's metadata, under the rules of registration. The
/// client's type (its authentication method) cannot change.
#[utoipa::path(
    put,
    path = "/oauth/register/{client_id}",
    operation_id = "UpdateOAuthClientRegistration",
    tag = "OAuth",
    summary = "Replace one's own registration (RFC 7592)",
    params(("client_id" = String, Path, description = "The registered client's id")),
    security(("registration_access_token" = [])),
    request_body = RegistrationRequest,
    responses(
        (status = 200, description = "The updated registration", body = RegistrationResponse),
        (status = 400, description = "`invalid_redirect_uri` or `invalid_client_metadata`", body = ErrorBody),
        (status = 401, description = "The registration access token is missing or wrong", body = ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = ErrorBody),
    ),
)]
async fn update_registration(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PathParam(client_id): PathParam,
    body: Result<JsonBody<serde_json::Map<String, serde_json::Value>>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    // Authenticates the registrant; the update is judged on the client as stored.
    let (registered, access_token) = registrant(&state, peer, &headers, &client_id).await?;
    let metadata = |d: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", d);
    let JsonBody(mut body) = body.map_err(ApiError::as_client_metadata_error)?;
    // §2.2 has the client repeat the `client_id` (and, if confidential, the `client_secret`)
    // it was issued; either, when sent, must be the issued value. A client that leaves them
    // out is not refused. The rest is the metadata, read as at registration.
    let mut issued = |name: &str| match body.remove(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(v)) => Ok(Some(v)),
        Some(_) => Err(metadata(format!("{name} must be a string"))),
    };
    let named = issued("client_id")?;
    let client_secret = issued("client_secret")?;
    let req: RegistrationRequest = crate::extract::from_value(serde_json::Value::Object(body))
        .map_err(|e| metadata(e.description().to_owned()))?;
    if named.as_deref().is_some_and(|named| named != client_id) {
        return Err(metadata(
            "client_id must be the id of the client being updated (RFC 7592 section 2.2)".into(),
        ));
    }
    // A secret, when sent, must be the one issued: a client never chooses its own.
    if let Some(presented) = client_secret {
        let issued = registered
            .secret_hash
            .as_deref()
            .is_some_and(|hash| secret::verify_secret(&presented, hash));
        if !issued {
            return Err(metadata(
                "client_secret must be the client's current secret; a client cannot choose its own (RFC 7592 section 2.2)".into(),
            ));
        }
    }
    let reg = &state.config.registration;
    let policy = RegistrationPolicy {
        catalogue: &state.config.scopes,
        default_scopes: &reg.default_scopes,
        // Whether the machine grant may stay is the client's own history, not the mode now:
        // the edit below keeps it where the client has it and never adds it.
        allow_client_credentials: true,
        allow_http_loopback: reg.cimd_allow_http_loopback,
    };
    let settings = ClientDraft::from_registration(req, &policy)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code, e.description))?;
    // Judged against the client as stored when the update is written.
    let edit: ClientEdit = Box::new(move |current: &Client| {
        let s = &current.settings;
        let refuse = |pointer: &str, message: String| {
            Err(ValidationErrors(vec![FieldError::new(
                pointer,
                "invalid_value",
                message,
            )]))
        };
        if settings.auth_kind() != s.auth_kind() {
            return refuse(
                "/token_endpoint_auth_method",
                format!(
                    "token_endpoint_auth_method cannot change from {} to {}; register a new client",
                    s.auth_kind(),
                    settings.auth_kind()
                ),
            );
        }
        // The registration access token is the client's own credential, not the operator's:
        // it keeps what the initial access token allowed at registration but never adds a
        // machine grant (which only the initial access token may ask for), whatever the mode
        // is now.
        let machine = |d: &ClientDraft| d.grant_types.contains(&GrantType::ClientCredentials);
        if machine(&settings) && !machine(s) {
            return refuse(
                "/grant_types",
                "grant type client_credentials cannot be added to a registered client; register a new client with the initial access token".to_owned(),
            );
        }
        Ok((settings.clone(), s.changes_what_users_see(&settings)))
    });
    let now = state.clock.now();
    let oauth_store::EditedClient {
        client: updated,
        verified_cleared,
    } = state
        .store
        .edit_client(THIRD_PARTY_ORG_ID, &client_id, edit, now)
        .await?
        .ok_or_else(not_a_registrant)?
        .map_err(|refused| {
            let messages: Vec<String> = refused.0.into_iter().map(|e| e.message).collect();
            metadata(messages.join("; "))
        })?;
    let mut event = Event::new(EventKind::ClientUpdated).client(&updated);
    if verified_cleared {
        event = event.detail("verified_cleared", true);
    }
    audit::record(state.store.as_ref(), now, event).await;
    Ok(management_response(&state, &updated, access_token))
}

/// RFC 7592 §2.3: delete the client (its grants, codes and tokens go with it).
#[utoipa::path(
    delete,
    path = "/oauth/register/{client_id}",
    operation_id = "DeleteOAuthClientRegistration",
    tag = "OAuth",
    summary = "Delete one's own registration (RFC 7592)",
    params(("client_id" = String, Path, description = "The registered client's id")),
    security(("registration_access_token" = [])),
    responses(
        (status = 204, description = "Deleted, with its grants, codes and tokens"),
        (status = 401, description = "The registration access token is missing or wrong", body = ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = ErrorBody),
    ),
)]
async fn delete_registration(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PathParam(client_id): PathParam,
) -> Result<StatusCode, ApiError> {
    let (client, _) = registrant(&state, peer, &headers, &client_id).await?;
    // Of deletions racing one another, one deletes the client; the rest find it gone.
    let deleted = state
        .store
        .delete_client(THIRD_PARTY_ORG_ID, &client_id)
        .await?;
    if !deleted {
        return Err(not_a_registrant());
    }
    audit::record(
        state.store.as_ref(),
        state.clock.now(),
        Event::new(EventKind::ClientDeleted).client(&client),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
