//! The HTTP surface: one router function per module, mounted at the root and under `/v2`
//! (docs/api.md, "Paths").

use axum::http::{Method, StatusCode, Uri};
use axum::Router;

use crate::error::ApiError;
use crate::middleware::AroundLayer;
use crate::state::AppState;

mod account;
mod authorize;
mod clients;
mod consent;
pub mod discovery;
mod grants;
mod health;
mod introspect;
mod login;
pub mod openapi;
mod register;
pub mod token;

/// The whole application.
pub fn router(state: AppState) -> Router {
    // The management API, behind its per-key and per-address rate limits.
    let limits = axum::middleware::from_fn_with_state(state.clone(), management_limits);
    let management = Router::new()
        .merge(clients::router())
        .merge(grants::router())
        .merge(consent::api_router())
        .route_layer(limits.clone());
    let decision = consent::decision_router()
        .route_layer(limits)
        .layer(axum::middleware::from_fn(form_errors_as_pages));
    let api = Router::new()
        .merge(management)
        .merge(decision)
        .merge(register::router())
        .merge(token::router())
        .merge(introspect::router())
        .merge(discovery::router())
        .merge(
            Router::new()
                .merge(authorize::router())
                .merge(consent::page_router())
                .merge(login::router())
                .merge(account::router())
                .layer(axum::middleware::from_fn(errors_as_pages)),
        )
        .method_not_allowed_fallback(method_not_allowed);
    // An issuer with a path (`https://host/tenant`) advertises its endpoints under that path
    // (`https://host/tenant/oauth/token`): they are served there too, beside the root, so that
    // they answer with or without a proxy that strips the path. The configuration keeps the
    // path to plain segments that no route of ours starts with.
    let issuer_path = url::Url::parse(&state.issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let mut root = Router::new();
    if !issuer_path.is_empty() {
        root = root.nest(&issuer_path, api.clone().merge(health::router()));
    }
    root.nest("/v2", api.clone())
        .merge(api)
        .merge(health::router())
        .merge(openapi::router())
        // Every route of the server, the health and OpenAPI ones too: a method it does not
        // serve is the API's JSON error, not an empty body.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // One layer for all the work around every route (a layer per concern would cost every
        // request a boxed clone per layer): a panic becomes a 500; the request's span; its
        // audit context, metrics and CORS (preflights answered before the handler). See
        // crate::middleware.
        .layer(AroundLayer::new(
            crate::cors::ListedOrigins::with_issuer_path(
                &state.config.cors.allowed_origins,
                &issuer_path,
            ),
            state.config.proxies.clone(),
        ))
        .with_state(state)
}

/// On the pages a browser goes to, an error a handler returns (the database busy, an internal
/// failure) is answered as a page with the same status and headers (`Retry-After` included),
/// not as the API's JSON body. A JSON request (the consent API's decision) keeps the JSON.
pub(crate) async fn errors_as_pages(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let json = crate::extract::is_json(req.headers());
    let resp = next.run(req).await;
    if json {
        return resp;
    }
    as_page(resp)
}

/// [`errors_as_pages`] for a route that serves the API and a page's form alike (the consent
/// decision): only the form's errors become pages; any other caller keeps the JSON.
pub(crate) async fn form_errors_as_pages(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let form = crate::extract::is_form(req.headers());
    let resp = next.run(req).await;
    if !form {
        return resp;
    }
    as_page(resp)
}

/// An error response of the API turned into a page that says the same, with its status and
/// headers; any other response as it is.
fn as_page(resp: axum::response::Response) -> axum::response::Response {
    let Some(crate::error::ErrorText(text)) = resp.extensions().get().cloned() else {
        return resp;
    };
    let (parts, _) = resp.into_parts();
    let title = match parts.status {
        StatusCode::SERVICE_UNAVAILABLE => "The service is busy; try again in a moment",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests; try again later",
        s if s.is_server_error() => "Something went wrong",
        _ => "This request cannot be completed",
    };
    let mut page = crate::html::message(parts.status, title, &text);
    let own: Vec<_> = page.headers().keys().cloned().collect();
    for (name, value) in &parts.headers {
        let body_header =
            name == axum::http::header::CONTENT_TYPE || name == axum::http::header::CONTENT_LENGTH;
        if !body_header && !own.contains(name) {
            page.headers_mut().append(name.clone(), value.clone());
        }
    }
    page
}

/// The management API's rate limits, before anything else reads the request (per address, then
/// per bearer credential, before authentication).
async fn management_limits(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let credential = crate::extract::bearer_token(req.headers());
    state
        .rate_limits
        .management(peer, credential, state.clock.now())
        .await?;
    Ok(next.run(req).await)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint: {method} {}", uri.path()),
    )
}

/// The path as requested (a nested router sees it without `/v2` or the issuer's path).
async fn method_not_allowed(
    method: Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
