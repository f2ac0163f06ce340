//! The consent step: the pending request behind a consent token, the built-in page that shows
//! it, and the decision (`POST /oauth/grants`).
//!
//! - `GET /consent?consent_token=..` (browser, session cookie): the HTML page. Allow and Deny
//!   post a form to `/oauth/grants` with a CSRF token derived from the session; the answer is
//!   a 303 to the client.
//! - `GET /oauth/consent/{consent_token}` and `POST /oauth/grants` with JSON (docs/api.md,
//!   steps 2 and 3): for an external consent app or a headless client. The user is identified
//!   by `Authorization: Bearer <API key>` or by the session cookie; a cookie-authenticated JSON
//!   `POST` must also send the session's CSRF token in `X-CSRF-Token`.
//!
//! A consent token is bound to the user it was issued for: another user's token answers as an
//! unknown one does (422 `invalid_request`), so a token seen in a URL is worth nothing alone.

use askama::Template;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use oauth_core::authorize::{
    code_redirect, error_redirect, AuthorizeRequest, CODE_TTL, CONSENT_TTL,
};
use oauth_core::secret;
use oauth_store::{Approval, ConsentRequest, User};
use oauth_wire::{ConsentDetails, CreateGrantRequest, CreateGrantResponse, Data, RequestedScope};
use rand::rngs::OsRng;

use crate::accounts::new_id;
use crate::audit::{self, Event, EventKind};
use crate::error::ApiError;
use crate::extract::{content_type, is_json, parse_json, read_body, PathParam};
use crate::html::{self, ConsentPage, ScopeLine};
use crate::routes::authorize::found;
use crate::routes::login::{field, form_pairs, see_other};
use crate::session::{self, Via, Viewer};
use crate::state::AppState;

/// The built-in consent page.
pub fn page_router() -> Router<AppState> {
    Router::new().route("/consent", get(consent_page))
}

/// The consent API (management API rate limits apply).
pub fn api_router() -> Router<AppState> {
    Router::new()
        .route("/oauth/consent/{consent_token}", get(consent_json))
        .route("/oauth/grants", post(decide_handler))
}

/// Stores a consent request for a checked authorization request; returns the consent token.
pub(crate) async fn create(
    state: &AppState,
    user_id: &str,
    req: &AuthorizeRequest,
) -> Result<String, ApiError> {
    let token = secret::random_token(&mut OsRng);
    let now = state.clock.now();
    state
        .store
        .create_consent(&ConsentRequest {
            token_hash: secret::hash_secret(&token),
            user_id: user_id.to_owned(),
            client_id: req.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            state: req.state.clone(),
            code_challenge: req.code_challenge.clone(),
            code_challenge_method: req.code_challenge_method.map(|m| m.as_str().to_owned()),
            resource: req.resource.clone(),
            created_at: now,
            expires_at: now + CONSENT_TTL,
        })
        .await?;
    Ok(token)
}

/// The user's decision on a consent token; `None` when the token is not live for this user, or
/// when the client changed while the request was pending so that it could no longer be made:
/// its redirect URI removed (never redirected to, not even with an error), or every requested
/// scope taken away. Allowing creates or widens the grant and mints a code in one transaction,
/// with only the scopes the client may still be granted.
pub(crate) async fn decide(
    state: &AppState,
    user: &User,
    token: &str,
    allowed: bool,
) -> Result<Option<String>, ApiError> {
    let hash = secret::hash_secret(token);
    let now = state.clock.now();
    let user_id = user.id.as_str();
    let Some(pending) = state.store.get_consent(&hash, user_id, now).await? else {
        return Ok(None);
    };
    let client = state
        .store
        .get_client(&pending.client_id)
        .await?
        .filter(|c| c.accepts_redirect_uri(&pending.redirect_uri));
    let Some(client) = client else {
        // Used up, so that it cannot be tried again; the browser stays here.
        state.store.consume_consent(&hash, user_id, now).await?;
        tracing::info!(client_id = %pending.client_id, "a pending consent request was dropped: its redirect URI is no longer registered");
        return Ok(None);
    };
    if !allowed {
        let Some(c) = state.store.consume_consent(&hash, user_id, now).await? else {
            return Ok(None);
        };
        audit::record(
            state.store.as_ref(),
            now,
            Event::new(EventKind::ConsentDenied)
                .user(user)
                .client_id(&c.client_id),
        )
        .await;
        return Ok(Some(error_redirect(
            &c.redirect_uri,
            "access_denied",
            "the user denied the request",
            c.state.as_deref(),
            &state.issuer,
        )));
    }
    let code = secret::random_token(&mut OsRng);
    let approval = Approval {
        new_grant_id: new_id(),
        code_hash: secret::hash_secret(&code),
        code_expires_at: now + CODE_TTL,
        now,
        grantable_scopes: client.grantable_scopes(&state.config.scopes),
    };
    let Some((c, grant, _)) = state
        .store
        .approve_consent(&hash, user_id, &approval)
        .await?
    else {
        return Ok(None);
    };
    audit::record(
        state.store.as_ref(),
        now,
        Event::new(EventKind::ConsentApproved)
            .user(user)
            .client_id(&c.client_id)
            .grant_id(&grant.id)
            .detail("scopes", c.scopes.clone()),
    )
    .await;
    Ok(Some(code_redirect(
        &c.redirect_uri,
        &code,
        c.state.as_deref(),
        &state.issuer,
    )))
}

fn unknown_token() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "the consent token is unknown, expired or already used",
    )
}

fn unauthenticated(state: &AppState) -> ApiError {
    ApiError::unauthorized(
        "unauthorized",
        "authentication required: send Authorization: Bearer <API key> or sign in",
        &state.protected_resource_metadata_url(),
    )
}

/// What the page and the JSON show about a pending request.
async fn details(state: &AppState, c: &ConsentRequest) -> Result<Option<ConsentDetails>, ApiError> {
    let Some(client) = state
        .store
        .get_client(&c.client_id)
        .await?
        .filter(|client| client.accepts_redirect_uri(&c.redirect_uri))
    else {
        return Ok(None);
    };
    // A scope taken from the client since the request was made is not asked for.
    let scopes: Vec<&String> = c
        .scopes
        .iter()
        .filter(|s| client.may_be_granted(s, &state.config.scopes))
        .collect();
    if scopes.is_empty() {
        return Ok(None);
    }
    let s = &client.settings;
    Ok(Some(ConsentDetails {
        client_id: client.client_id.clone(),
        name: s.name.clone(),
        logo_uri: s.logo_uri.clone(),
        policy_uri: s.policy_uri.clone(),
        tos_uri: s.tos_uri.clone(),
        redirect_uri: c.redirect_uri.clone(),
        verified: client.verified,
        requested_scopes: scopes
            .into_iter()
            .map(|name| RequestedScope {
                id: name.clone(),
                name: name.clone(),
                description: state
                    .config
                    .scopes
                    .get(name)
                    .map(|d| d.description.clone())
                    .unwrap_or_else(|| name.clone()),
            })
            .collect(),
    }))
}

async fn consent_json(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParam(token): PathParam,
) -> Result<Response, ApiError> {
    let viewer = session::viewer(&state, &headers)
        .await?
        .ok_or_else(|| unauthenticated(&state))?;
    let c = state
        .store
        .get_consent(
            &secret::hash_secret(&token),
            &viewer.user.id,
            state.clock.now(),
        )
        .await?
        .ok_or_else(unknown_token)?;
    let data = details(&state, &c).await?.ok_or_else(unknown_token)?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(Data { data })).into_response())
}

fn expired_page() -> Response {
    html::message(
        StatusCode::UNPROCESSABLE_ENTITY,
        "This request is no longer valid",
        "This authorization request has expired or was already answered. Go back to the application and start again.",
    )
}

async fn consent_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    // The URI as requested, `/v2` prefix included, for the way back after signing in.
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let query = form_pairs(uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
    let token = field(&query, "consent_token");
    let Some(Viewer {
        user,
        via: Via::Session(cookie),
    }) = session::session_viewer(&state, &headers).await?
    else {
        let here = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/consent");
        let login = format!(
            "/login?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", here)
                .finish()
        );
        return Ok(found(&login));
    };
    let Some(c) = state
        .store
        .get_consent(&secret::hash_secret(token), &user.id, state.clock.now())
        .await?
    else {
        return Ok(expired_page());
    };
    let Some(d) = details(&state, &c).await? else {
        return Ok(expired_page());
    };
    let csrf = session::csrf_token(&cookie);
    let page = ConsentPage {
        name: &d.name,
        initial: d
            .name
            .chars()
            .find(|ch| ch.is_alphanumeric())
            .map(|ch| ch.to_uppercase().collect())
            .unwrap_or_else(|| "?".to_owned()),
        logo_uri: html::web_url(d.logo_uri.as_deref()),
        policy_uri: html::web_url(d.policy_uri.as_deref()),
        tos_uri: html::web_url(d.tos_uri.as_deref()),
        verified: d.verified,
        email: &user.email,
        scopes: d
            .requested_scopes
            .iter()
            .map(|s| ScopeLine {
                name: s.name.clone(),
                description: s.description.clone(),
            })
            .collect(),
        return_host: html::return_host(&c.redirect_uri),
        consent_token: token,
        csrf_token: &csrf,
    };
    Ok(html::page(
        StatusCode::OK,
        page.render(),
        &html::csp_source(&c.redirect_uri),
    ))
}

/// `POST /oauth/grants`: JSON for the API, a form for the built-in page.
async fn decide_handler(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    if content_type(&headers).as_deref() == Some("application/x-www-form-urlencoded") {
        let bytes = read_body(req.into_body(), state.config.max_body_bytes).await?;
        return decide_form(&state, &headers, &bytes).await;
    }
    if !is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "send the decision as application/json (or the consent page's form)",
        ));
    }
    // Who is asking comes before what is asked, so an anonymous caller learns nothing.
    let viewer = session::viewer(&state, &headers)
        .await?
        .ok_or_else(|| unauthenticated(&state))?;
    let bytes = read_body(req.into_body(), state.config.max_body_bytes).await?;
    if let Via::Session(cookie) = &viewer.via {
        let presented = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !session::csrf_matches(cookie, presented) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_request",
                "a cookie-authenticated request must send the session's CSRF token in X-CSRF-Token",
            ));
        }
    }
    let body: CreateGrantRequest = parse_json(&bytes)?;
    let location = decide(&state, &viewer.user, &body.consent_token, body.allowed)
        .await?
        .ok_or_else(unknown_token)?;
    // The answer carries an authorization code: never cached.
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(CreateGrantResponse {
            redirect_uri: location,
        }),
    )
        .into_response())
}

async fn decide_form(
    state: &AppState,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    let forbidden = || {
        html::message(
            StatusCode::FORBIDDEN,
            "Your decision was not recorded",
            "This form expired or did not come from this site. Go back to the application and start again.",
        )
    };
    let Some(form) = form_pairs(bytes) else {
        return Ok(forbidden());
    };
    let Some(Viewer {
        user,
        via: Via::Session(cookie),
    }) = session::session_viewer(state, headers).await?
    else {
        return Ok(html::message(
            StatusCode::UNAUTHORIZED,
            "Please sign in",
            "Your session ended before you decided. Go back to the application and start again.",
        ));
    };
    if !session::csrf_matches(&cookie, field(&form, "csrf_token")) {
        tracing::warn!(user_id = %user.id, "consent form without a valid CSRF token");
        return Ok(forbidden());
    }
    let allowed = match field(&form, "decision") {
        "allow" => true,
        "deny" => false,
        _ => {
            return Ok(html::message(
                StatusCode::BAD_REQUEST,
                "Your decision was not recorded",
                "Choose Allow or Deny.",
            ))
        }
    };
    match decide(state, &user, field(&form, "consent_token"), allowed).await? {
        Some(location) => Ok(see_other(&location)),
        None => Ok(expired_page()),
    }
}
