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
use oauth_core::entity::{ConsentRequest, User};
use oauth_core::secret;
use oauth_wire::{
    ConsentDetails, CreateGrantRequest, CreateGrantResponse, Data, ErrorBody, RequestedScope,
};

use crate::consent::decide;
use crate::error::ApiError;
use crate::extract::{is_form, is_json, parse_json, read_body, PathParam};
use crate::html::{self, ConsentPage, ScopeLine};
use crate::respond::{found, see_other};
use crate::session::{self, Via, Viewer};
use crate::state::AppState;

/// The built-in consent page.
pub fn page_router() -> Router<AppState> {
    Router::new().route("/consent", get(consent_page))
}

/// The consent API (management API rate limits apply).
pub fn api_router() -> Router<AppState> {
    Router::new().route("/oauth/consent/{consent_token}", get(consent_json))
}

/// The decision (management API rate limits apply). The form of the consent page posts here
/// too, so the caller wraps the limits in `form_errors_as_pages`: every error a form post
/// gets, the limits' 429 included, is a page.
pub fn decision_router() -> Router<AppState> {
    Router::new().route("/oauth/grants", post(decide_handler))
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(consent_page, consent_json, decide_handler))]
pub(super) struct Doc;

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
async fn details(
    state: &AppState,
    c: &ConsentRequest,
    viewer: &User,
) -> Result<Option<ConsentDetails>, ApiError> {
    let Some(client) = state
        .store
        .get_client(&c.client_id)
        .await?
        .filter(|client| client.accepts_redirect_uri(&c.redirect_uri))
        // A document client the configuration no longer accepts (denied since the request was
        // made, say) is shown to no one.
        .filter(|client| crate::cimd::still_accepted(&state.config.registration, client))
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
    // A logo is loaded by the user's browser as the page opens: an address someone else chose
    // (a tracking pixel, a device on the user's network) is not, unless the operator verified
    // the client or it is a client of the user's own organization. An anonymous registrant and
    // a member of another organization are someone else. Document clients have none
    // (`oauth_core::cimd`).
    let own = !client.is_third_party() && client.org_id == viewer.org_id;
    let logo_uri = (own || client.verified)
        .then(|| s.logo_uri.clone())
        .flatten();
    Ok(Some(ConsentDetails {
        client_id: Some(client.client_id.clone()),
        name: Some(s.name.clone()),
        logo_uri,
        policy_uri: s.policy_uri.clone(),
        tos_uri: s.tos_uri.clone(),
        redirect_uri: Some(c.redirect_uri.clone()),
        verified: Some(client.verified),
        requested_scopes: scopes
            .into_iter()
            .map(|name| RequestedScope {
                id: Some(name.clone()),
                name: Some(name.clone()),
                description: Some(
                    state
                        .config
                        .scopes
                        .get(name)
                        .map(|d| d.description.clone())
                        .unwrap_or_else(|| name.clone()),
                ),
            })
            .collect(),
        resource: Some(c.resource.as_deref().unwrap_or(&state.issuer).to_owned()),
    }))
}

#[utoipa::path(
    get,
    path = "/oauth/consent/{consent_token}",
    operation_id = "GetOAuthConsentToken",
    tag = "OAuth Consent",
    summary = "The pending authorization request behind a consent token",
    params(("consent_token" = String, Path, description = "The consent token from the authorize redirect")),
    responses(
        (status = 200, description = "The client and the scopes it asks for", body = Data<ConsentDetails>),
        (status = 401, description = "No signed-in user or API key", body = ErrorBody),
        (status = 422, description = "Unknown, expired, used, or another user's consent token", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
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
    let data = details(&state, &c, &viewer.user)
        .await?
        .ok_or_else(unknown_token)?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(Data { data })).into_response())
}

fn expired_page() -> Response {
    html::message(
        StatusCode::UNPROCESSABLE_ENTITY,
        "This request is no longer valid",
        "This authorization request has expired or was already answered. Go back to the application and start again.",
    )
}

#[utoipa::path(
    get,
    path = "/consent",
    operation_id = "ShowConsentPage",
    tag = "Pages",
    summary = "The built-in consent page (HTML)",
    params(("consent_token" = Option<String>, Query, description = "The consent token from the authorize redirect")),
    responses(
        (status = 200, description = "Allow and Deny buttons", content_type = "text/html"),
        (status = 303, description = "Not signed in: to the sign-in page"),
        (status = 422, description = "Unknown or expired consent token", content_type = "text/html"),
    ),
    security((), ("session" = [])),
)]
async fn consent_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    // The URI as requested, `/v2` prefix included, for the way back after signing in.
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let query =
        crate::form::Params::parse(uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
    let token = query.field("consent_token");
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
    let Some(d) = details(&state, &c, &user).await? else {
        return Ok(expired_page());
    };
    let csrf = session::csrf_token(&cookie);
    let name = d.name.as_deref().unwrap_or_default();
    let page = ConsentPage {
        name,
        initial: name
            .chars()
            .find(|ch| ch.is_alphanumeric())
            .map(|ch| ch.to_uppercase().collect())
            .unwrap_or_else(|| "?".to_owned()),
        logo_uri: html::web_url(d.logo_uri.as_deref()),
        policy_uri: html::web_url(d.policy_uri.as_deref()),
        tos_uri: html::web_url(d.tos_uri.as_deref()),
        verified: d.verified.unwrap_or(false),
        email: &user.email,
        scopes: d
            .requested_scopes
            .iter()
            .map(|s| ScopeLine {
                name: s.name.clone().unwrap_or_default(),
                description: s.description.clone().unwrap_or_default(),
            })
            .collect(),
        return_host: html::return_host(&c.redirect_uri),
        resource: c.resource.as_deref().unwrap_or(&state.issuer),
        resource_is_issuer: c.resource.as_deref().is_none_or(|r| r == &*state.issuer),
        document: d.client_id.as_deref().and_then(html::document_place),
        // A loopback address or an app's private-use scheme: whatever listens there on this
        // device gets the code.
        local_redirect: url::Url::parse(&c.redirect_uri).is_ok_and(|u| {
            !matches!(u.scheme(), "http" | "https")
                || u.host_str().is_some_and(oauth_core::cimd::is_loopback_host)
        }),
        consent_token: token,
        csrf_token: &csrf,
        script: html::CONSENT_SCRIPT,
    };
    Ok(html::page_running(
        StatusCode::OK,
        page.render(),
        &html::csp_source(&c.redirect_uri),
        Some(html::consent_script_source()),
    ))
}

/// `POST /oauth/grants`: JSON for the API, a form for the built-in page.
#[utoipa::path(
    post,
    path = "/oauth/grants",
    operation_id = "CreateOAuthGrant",
    tag = "OAuth Consent",
    summary = "Allow or deny a pending authorization request",
    request_body(content(
        (CreateGrantRequest = "application/json"),
        (crate::form::schema::ConsentForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Where to send the user: the client's redirect URI with `code` or `error`", body = CreateGrantResponse),
        (status = 303, description = "The consent page's form: the same redirect, as a redirect"),
        (status = 401, description = "No signed-in user or API key", body = ErrorBody),
        (status = 403, description = "A session without its CSRF token", body = ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = ErrorBody),
        (status = 422, description = "Unknown, expired, used, or another user's consent token", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn decide_handler(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    if is_form(&headers) {
        let bytes = read_body(req.into_body(), &state).await?;
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
    let bytes = read_body(req.into_body(), &state).await?;
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
    let Ok(form) = crate::form::Params::parse(bytes) else {
        return Ok(html::message(
            StatusCode::BAD_REQUEST,
            "Your decision was not recorded",
            "The form could not be read (a repeated field, a NUL byte, or text that is not UTF-8). Go back to the application and start again.",
        ));
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
    if !session::csrf_matches(&cookie, form.field("csrf_token")) {
        tracing::warn!(user_id = %user.id, "consent form without a valid CSRF token");
        return Ok(forbidden());
    }
    let allowed = match form.field("decision") {
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
    match decide(state, &user, form.field("consent_token"), allowed).await? {
        Some(location) => Ok(see_other(&location)),
        None => Ok(expired_page()),
    }
}
