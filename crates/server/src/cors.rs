//! Cross-origin requests (the Fetch standard's CORS protocol).
//!
//! Browser-based public clients (MCP clients in a web page, say) read the metadata documents
//! and the JWK set, and call the token, registration and revocation endpoints from another
//! origin. Those endpoints take no cookies, so they allow any origin (`*`, never with
//! credentials) and answer preflights. The management API and the HTML pages allow only the
//! origins the operator lists in `cors.allowed_origins`, and never with credentials either.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

/// How long a browser may keep a preflight's answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";
/// Request headers the public endpoints accept from another origin.
const PUBLIC_HEADERS: &str = "Authorization, Content-Type, Accept, MCP-Protocol-Version";
/// Request headers the management API accepts from a listed origin.
const LISTED_HEADERS: &str = "Authorization, Content-Type, Accept, X-CSRF-Token";
/// Response headers a script may read.
const EXPOSED: &str = "WWW-Authenticate, Retry-After, Location";

/// Who may call `path` from another origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// Any origin: the public OAuth endpoints.
    Anyone { methods: &'static str },
    /// Only the configured origins.
    Listed,
}

/// Who may call `path` from a browser. `/v2` and the issuer's own path (`issuer_path`, empty
/// when the issuer has none) serve the same routes as the root, and answer alike.
fn audience(path: &str, issuer_path: &str) -> Audience {
    let under = |prefix: &str| {
        (!prefix.is_empty())
            .then(|| path.strip_prefix(prefix))
            .flatten()
            .filter(|p| p.starts_with('/'))
    };
    let path = under("/v2").or_else(|| under(issuer_path)).unwrap_or(path);
    let metadata = [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource",
    ];
    let is_metadata = metadata
        .iter()
        .any(|m| path == *m || path.strip_prefix(m).is_some_and(|r| r.starts_with('/')));
    if is_metadata || path == "/oauth/jwks" {
        return Audience::Anyone {
            methods: "GET, HEAD, OPTIONS",
        };
    }
    match path {
        "/oauth/token" | "/oauth/register" | "/oauth/revoke" => Audience::Anyone {
            methods: "POST, OPTIONS",
        },
        // RFC 7592 registration management: a bearer token, no cookies.
        p if p
            .strip_prefix("/oauth/register/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/')) =>
        {
            Audience::Anyone {
                methods: "GET, PUT, DELETE, OPTIONS",
            }
        }
        _ => Audience::Listed,
    }
}

/// The origins the operator listed (`cors.allowed_origins`), shared by every request.
#[derive(Clone)]
pub struct ListedOrigins {
    origins: Arc<[String]>,
    /// The issuer's path (`/tenant`), under which every route is served too; empty if none.
    issuer_path: Arc<str>,
}

impl ListedOrigins {
    pub fn new(origins: &[String]) -> Self {
        Self::with_issuer_path(origins, "")
    }

    /// For a server whose issuer has a path: the routes under it answer as at the root.
    pub fn with_issuer_path(origins: &[String], issuer_path: &str) -> Self {
        Self {
            origins: origins.into(),
            issuer_path: issuer_path.trim_end_matches('/').into(),
        }
    }
}

/// What CORS adds to a request's response, decided before the request runs: the
/// `Access-Control-Allow-Origin` value, if any, and who may call the path.
pub struct Cors(Option<HeaderValue>, Audience);

/// What [`before`] decided.
pub enum Before {
    /// A preflight, answered here: the handler does not run.
    Answered(Response),
    /// The handler runs; then these headers go on its response.
    Handle(Cors),
}

/// Before the handler: a preflight that may be answered is answered here; otherwise the
/// headers to add to the response once it is made.
pub fn before(listed_origins: &ListedOrigins, req: &Request) -> Before {
    let aud = audience(req.uri().path(), &listed_origins.issuer_path);
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        // Not a cross-origin request from a browser. A public endpoint's answer is the same
        // for every origin, so it says `*` anyway: a shared cache that keeps this copy (the
        // JWK set and the metadata are cacheable) serves it to browsers too.
        let anyone = matches!(aud, Audience::Anyone { .. }).then(|| HeaderValue::from_static("*"));
        return Before::Handle(Cors(anyone, aud));
    };
    let listed = origin
        .to_str()
        .is_ok_and(|o| listed_origins.origins.iter().any(|a| a == o));
    let allow_origin = match aud {
        Audience::Anyone { .. } => Some(HeaderValue::from_static("*")),
        Audience::Listed if listed => Some(origin.clone()),
        Audience::Listed => None,
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        if let Some(allow_origin) = allow_origin {
            let (methods, headers) = match aud {
                Audience::Anyone { methods } => (methods, PUBLIC_HEADERS),
                Audience::Listed => ("GET, POST, PUT, PATCH, DELETE, OPTIONS", LISTED_HEADERS),
            };
            let mut resp = StatusCode::NO_CONTENT.into_response();
            let h = resp.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(methods),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(headers),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            );
            vary_origin(h, aud);
            return Before::Answered(resp);
        }
        // Not allowed: the request goes on as it would without CORS (a 405), and without the
        // headers the browser needs, so it refuses.
    }
    Before::Handle(Cors(allow_origin, aud))
}

impl Cors {
    /// Adds `Access-Control-Allow-Origin` (and what goes with it) to an allowed origin's response.
    /// A listed-origins path's response says it varies by `Origin` whether or not this one came
    /// with one, so that no cache serves one origin's answer to another.
    pub fn finish(self, resp: &mut Response) {
        let Cors(allow_origin, aud) = self;
        let h = resp.headers_mut();
        if let Some(allow_origin) = allow_origin {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED),
            );
        }
        vary_origin(h, aud);
    }
}

/// A response that depends on the origin says so, for caches.
fn vary_origin(h: &mut HeaderMap, aud: Audience) {
    if aud == Audience::Listed {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths_under_the_issuers_path_answer_as_at_the_root() {
        for p in [
            "/tenant/oauth/token",
            "/tenant/oauth/jwks",
            "/tenant/oauth/register/abc",
            "/tenant/.well-known/oauth-authorization-server",
        ] {
            assert!(
                matches!(audience(p, "/tenant"), Audience::Anyone { .. }),
                "{p}"
            );
        }
        for p in [
            "/tenant/oauth_clients",
            "/tenantx/oauth/token",
            "/other/oauth/token",
        ] {
            assert_eq!(audience(p, "/tenant"), Audience::Listed, "{p}");
        }
    }

    #[test]
    fn public_paths_at_the_root_and_under_v2() {
        for p in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-protected-resource/tenant",
            "/v2/oauth/jwks",
            "/oauth/token",
            "/v2/oauth/register",
            "/oauth/revoke",
            "/oauth/register/abc",
        ] {
            assert!(matches!(audience(p, ""), Audience::Anyone { .. }), "{p}");
        }
        for p in [
            "/oauth_clients",
            "/v2/oauth_clients",
            "/oauth/authorize",
            "/consent",
            "/login",
            "/oauth/introspect",
            "/.well-known/oauth-authorization-serverx",
            "/v2x/oauth/token",
            "/oauth/register/",
            "/oauth/register/a/b",
        ] {
            assert_eq!(audience(p, ""), Audience::Listed, "{p}");
        }
    }
}
