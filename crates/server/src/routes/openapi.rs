//! `GET /openapi.json`: the OpenAPI 3.1 description of every route, built from the handlers'
//! `#[utoipa::path]` attributes and the wire types' schemas, so it changes with the code.
//!
//! Each route module describes its own operations (its `Doc`); this module merges them, adds the
//! security schemes, and copies every operation the router also mounts under `/v2`
//! (docs/api.md, "Paths") with the operation id suffixed `V2`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::openapi::path::PathItem;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use crate::session::SESSION_COOKIE;
use crate::state::AppState;

/// Paths served at the root only; every other route is also under `/v2`.
pub const ROOT_ONLY: &[&str] = &["/healthz", "/readyz", "/openapi.json"];

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "oauth-server",
        description = "A self-hostable OAuth 2.0 authorization server, wire-compatible with the \
            Telnyx OAuth API. Errors are `{\"error\", \"error_description\"}`, with `errors` \
            (one per bad field) on validation failures.",
    ),
    paths(openapi_json),
    tags(
        (name = "OAuth", description = "The OAuth 2.0 endpoints"),
        (name = "OAuth Discovery", description = "What the server says about itself"),
        (name = "OAuth Consent", description = "The consent step, for a consent app of one's own"),
        (name = "OAuth Clients", description = "Management API: the organization's clients"),
        (name = "OAuth Grants", description = "Management API: the caller's grants"),
        (name = "Pages", description = "The built-in browser pages"),
        (name = "Health", description = "Probes for an orchestrator"),
    ),
)]
struct Root;

#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "GetOpenApiDocument",
    tag = "Health",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 description of every route", content_type = "application/json")),
    security(()),
)]
async fn openapi_json() -> Response {
    static BODY: OnceLock<String> = OnceLock::new();
    let body = BODY.get_or_init(|| {
        // Serializing plain maps and strings cannot fail; an empty object would be the answer if
        // it ever did.
        serde_json::to_string(&document()).unwrap_or_else(|_| "{}".to_owned())
    });
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Root::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for part in [
        super::authorize::Doc::openapi(),
        super::consent::Doc::openapi(),
        super::discovery::Doc::openapi(),
        super::introspect::Doc::openapi(),
        super::register::Doc::openapi(),
        super::token::Doc::openapi(),
        super::clients::Doc::openapi(),
        super::grants::Doc::openapi(),
        super::login::Doc::openapi(),
        super::account::Doc::openapi(),
        super::health::Doc::openapi(),
    ] {
        doc.merge(part);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A user's API key (`KEY...`), or an access token of this server with the \
                     management scope from a first-party client",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The sign-in session (`__Host-oauth_session` when the issuer is https); a \
             state-changing request also sends the session's CSRF token",
        ))),
    );
    components.add_security_scheme(
        "client_basic",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "Client authentication (`client_secret_basic`); `client_secret_post` and a \
                     public client's `client_id` alone go in the body",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "initial_access_token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The operator's initial access token, when registration needs one (RFC 7591 §3)",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "registration_access_token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The registration access token issued with the client (RFC 7592 §3)",
                ))
                .build(),
        ),
    );
    let copies: Vec<(String, PathItem)> = doc
        .paths
        .paths
        .iter()
        .filter(|(path, _)| !ROOT_ONLY.contains(&path.as_str()))
        // `/` nested under `/v2` is served at `/v2` itself.
        .map(|(path, item)| (format!("/v2{}", path.trim_end_matches('/')), v2_copy(item)))
        .collect();
    doc.paths.paths.extend(copies);
    doc
}

/// The same operations, with operation ids that stay unique.
fn v2_copy(item: &PathItem) -> PathItem {
    let mut item = item.clone();
    for op in [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
    {
        if let Some(id) = &mut op.operation_id {
            id.push_str("V2");
        }
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique() {
        let doc = serde_json::to_value(document()).unwrap_or_default();
        let mut ids = Vec::new();
        for item in doc["paths"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.values())
        {
            for op in item.as_object().into_iter().flat_map(|o| o.values()) {
                if let Some(id) = op["operationId"].as_str() {
                    ids.push(id.to_owned());
                }
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert!(count > 40, "{count} operations");
        assert_eq!(ids.len(), count, "duplicate operation ids");
    }
}
