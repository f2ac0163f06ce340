//! The work every route shares around its handler, as one tower layer: a panic becomes a 500,
//! the request's span, its context for the audit trail ([`RequestContext`]), the request
//! metrics (when served) and CORS (preflights answered, headers added).
//!
//! One layer, not one per concern: axum boxes every route again for each layer the router is
//! given, and a boxed route clones its box and boxes its future on every call, so each layer
//! cost every request two allocations; `axum::middleware::from_fn` also clones everything
//! inside it and boxes two more per request. This layer is one such level, and it calls the
//! route it wraps in place (a route is always ready) and boxes one future. The span and the
//! panic guard are here too, not tower-http's trace and catch-panic layers: each of those wraps
//! the response body in a type of its own, which axum then boxes again, so every response paid
//! two more allocations and two more levels of indirection for each frame of its body.
//!
//! Spans name the route template, never the concrete path or query: those can carry tokens. A
//! caller's W3C trace context (`traceparent`) names the trace in the logs and, when traces are
//! exported, makes the span a child of the caller's ([`crate::telemetry`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tower::{Layer, Service};
use tracing::{Instrument, Span};

use crate::audit::RequestContext;
use crate::cors::{self, Before, ListedOrigins};
use crate::error::ApiError;
use crate::metrics::Tracked;
use crate::peer::TrustedProxies;

/// The layer ([`Around`] for each route).
#[derive(Clone)]
pub struct AroundLayer {
    listed_origins: ListedOrigins,
    proxies: TrustedProxies,
}

impl AroundLayer {
    pub fn new(listed_origins: ListedOrigins, proxies: TrustedProxies) -> Self {
        Self {
            listed_origins,
            proxies,
        }
    }
}

impl<S> Layer<S> for AroundLayer {
    type Service = Around<S>;

    fn layer(&self, inner: S) -> Around<S> {
        Around {
            inner,
            listed_origins: self.listed_origins.clone(),
            proxies: self.proxies.clone(),
        }
    }
}

/// A route with the shared work around it.
#[derive(Clone)]
pub struct Around<S> {
    inner: S,
    listed_origins: ListedOrigins,
    proxies: TrustedProxies,
}

impl<S> Service<Request> for Around<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // Everything of ours here runs under a guard as well, not only the route: whatever
        // panics, the caller gets the API's 500 rather than a closed connection. (The route's
        // own panic is caught closer, in `handle`, so that its 500 still gets the CORS headers
        // and is counted.)
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(req))) {
            Ok(handling) => Box::pin(
                AssertUnwindSafe(handling)
                    .catch_unwind()
                    .map(|outcome| Ok(outcome.unwrap_or_else(|_| panicked()))),
            ),
            Err(_) => Box::pin(std::future::ready(Ok(panicked()))),
        }
    }
}

impl<S> Around<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    fn handle(&mut self, mut req: Request) -> impl Future<Output = Response> + Send + 'static {
        if !self.proxies.is_empty() {
            // Behind a trusted proxy, the client it names is the peer for everything after
            // (per-address limits, the audit trail, the span).
            if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
                let peer = *peer;
                let client = self.proxies.client(peer.ip(), req.headers());
                if client != peer.ip() {
                    req.extensions_mut()
                        .insert(ConnectInfo(SocketAddr::new(client, peer.port())));
                }
            }
        }
        let started = Instant::now();
        let span = request_span(&req);
        let context = RequestContext::of(&req);
        let tracked = Tracked::start(&req);
        let handled = {
            let _entered = span.enter();
            tracing::debug!(target: "oauth::http", "started processing request");
            match (
                cors::before(&self.listed_origins, &req),
                refused_early(&req),
            ) {
                // Refused before any route reads a credential; readable cross-origin as any
                // error of the route would be.
                (Before::Handle(cors), Some(refusal)) => {
                    let mut refused = refusal.into_response();
                    cors.finish(&mut refused);
                    Handled::Answered(refused)
                }
                // Calling an axum route only makes its future: the route's service is called,
                // and its handler runs, when that future is polled, under `catch_unwind` below.
                (Before::Handle(cors), None) => Handled::Route(cors, self.inner.call(req)),
                (Before::Answered(preflight), _) => Handled::Answered(preflight),
            }
        };
        context.scope(async move {
            let response = match handled {
                Handled::Route(cors, handler) => {
                    let outcome = AssertUnwindSafe(handler)
                        .catch_unwind()
                        .instrument(span.clone())
                        .await;
                    let mut response = match outcome {
                        Ok(Ok(response)) => response,
                        Ok(Err(never)) => match never {},
                        Err(_panic) => span.in_scope(panicked),
                    };
                    cors.finish(&mut response);
                    response
                }
                Handled::Answered(preflight) => preflight,
            };
            finished(&span, &response, started);
            if let Some(t) = tracked {
                t.finish(&response);
            }
            response
        })
    }
}

/// The answer to a request refused before any route sees it: header fields that cannot be
/// read one way ([`malformed_fields`], 400), or a body in a coding this server does not decode
/// ([`unsupported_coding`]).
fn refused_early(req: &Request) -> Option<ApiError> {
    if let Some(why) = malformed_fields(req) {
        return Some(ApiError::bad_request(why));
    }
    unsupported_coding(req.headers())
}

/// A body this server would otherwise read as something it is not, refused (nothing reads it):
///
/// - a transfer coding other than `chunked` (`gzip, chunked`, say): the HTTP layer removes the
///   chunked framing only, and the compressed bytes would be parsed as the body (RFC 9112 §6.1:
///   a coding the server does not understand is 501); `chunked` twice, which no sender may
///   apply (RFC 9112 §6.1) and whose inner framing would be read as the body, is 400. The
///   connection is closed either way, since its framing is the sender's and the body is not
///   read;
/// - a content coding other than `identity` (RFC 9110 §8.4): no body is decompressed here, and
///   one that is not compressed though it says so is not what its sender described. 415, with
///   `Accept-Encoding: identity` (RFC 9110 §15.5.16);
/// - a JSON body in a charset other than UTF-8 (`application/json; charset=utf-16`): JSON is
///   read as UTF-8 (RFC 8259 §8.1), and another charset's text would be misread. 415. A form's
///   `charset` is not looked at: the form encoding is ASCII with UTF-8 percent-escapes
///   (WHATWG URL), whatever a client writes there (Apache HttpClient writes `ISO-8859-1`), and
///   escapes that are not UTF-8 are refused when the form is read.
fn unsupported_coding(headers: &axum::http::HeaderMap) -> Option<ApiError> {
    use axum::http::{header, HeaderValue, StatusCode};
    let codings = |name| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(|c| String::from_utf8_lossy(c).trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
    };
    let close = || HeaderValue::from_static("close");
    if codings(header::TRANSFER_ENCODING)
        .filter(|c| c == "chunked")
        .nth(1)
        .is_some()
    {
        return Some(
            ApiError::bad_request(
                "the body is chunked more than once (RFC 9112 §6.1): send it chunked once",
            )
            .with_header(header::CONNECTION, close()),
        );
    }
    if let Some(coding) = codings(header::TRANSFER_ENCODING).find(|c| c != "chunked") {
        return Some(
            ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "invalid_request",
                format!(
                    "the transfer coding {} is not supported: send the body with Content-Length \
                     or chunked alone",
                    printable(&coding)
                ),
            )
            .with_header(header::CONNECTION, close()),
        );
    }
    if let Some(coding) = codings(header::CONTENT_ENCODING).find(|c| c != "identity") {
        return Some(
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                format!(
                    "the content coding {} is not supported: send the body uncompressed",
                    printable(&coding)
                ),
            )
            .with_header(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            ),
        );
    }
    if crate::extract::is_json(headers) {
        if let Some(charset) = crate::extract::charset(headers)
            .filter(|c| !matches!(c.as_str(), "utf-8" | "utf8" | "us-ascii"))
        {
            return Some(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                format!(
                    "the charset {} is not supported: send the body in UTF-8",
                    printable(&charset)
                ),
            ));
        }
    }
    None
}

/// A value from a request's header, quoted in an error: at most 40 characters, printable ASCII
/// only (the rest as `?`).
fn printable(value: &str) -> String {
    let mut shown: String = value
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if value.chars().count() > 40 {
        shown.push_str("...");
    }
    format!("'{shown}'")
}

/// Why a request's header fields are refused before any route sees it, if they are:
///
/// - two `Authorization` fields: every reader of credentials here takes one, and which one
///   would be a guess (a good and a bad Basic header must not authenticate);
/// - an HTTP/1.1 request without `Host`, or any request with two, or one whose value is not a
///   host and optional port (RFC 9112 §3.2: the server MUST answer 400). Nothing here reads
///   `Host` (the issuer is configured), but a proxy or cache in front may key on it, and two of
///   them are read differently by different parts.
fn malformed_fields(req: &Request) -> Option<&'static str> {
    let headers = req.headers();
    let count = |name| headers.get_all(name).iter().take(2).count();
    if count(axum::http::header::AUTHORIZATION) > 1 {
        return Some(
            "the request has more than one Authorization header field (RFC 9110 §11.6.2: a \
             request carries one set of credentials)",
        );
    }
    match count(axum::http::header::HOST) {
        0 if req.version() == axum::http::Version::HTTP_11 => {
            Some("the request has no Host header field (RFC 9112 §3.2)")
        }
        2 => Some("the request has more than one Host header field (RFC 9112 §3.2)"),
        1 if !headers
            .get(axum::http::header::HOST)
            .is_some_and(|h| is_host_value(h.as_bytes())) =>
        {
            Some("the request's Host header field is not a host and optional port (RFC 9112 §3.2)")
        }
        _ => None,
    }
}

/// A `Host` field value (RFC 9110 §7.2, RFC 3986 §3.2.2): a host (a registered name or IPv4
/// address, or an IP literal in brackets) and an optional port, no user information; or empty
/// (a target URI without an authority). Read in place: it runs on every request.
fn is_host_value(value: &[u8]) -> bool {
    if value.is_empty() {
        return true;
    }
    let (host_ok, rest) = match value.strip_prefix(b"[") {
        Some(literal) => match literal.iter().position(|&b| b == b']') {
            Some(end) => (
                end > 0
                    && literal[..end]
                        .iter()
                        .all(|b| b.is_ascii_hexdigit() || b":.".contains(b)),
                &literal[end + 1..],
            ),
            None => return false,
        },
        None => {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            let name = &value[..end];
            // unreserved, sub-delims and percent-encoding (RFC 3986 §3.2.2 reg-name).
            let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(b);
            (!name.is_empty() && name.iter().all(allowed), &value[end..])
        }
    };
    let port_ok = match rest.strip_prefix(b":") {
        None => rest.is_empty(),
        Some(b"") => true,
        Some(port) => {
            port.len() <= 5
                && port.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(port).is_ok_and(|p| p.parse::<u16>().is_ok())
        }
    };
    host_ok && port_ok
}

/// The answer to a request whose handling panicked (the panic's message is not in it).
fn panicked() -> Response {
    ApiError::internal("a handler panicked").into_response()
}

/// What the route was asked, before its future runs.
enum Handled<F> {
    /// The route's future, and the CORS headers to add to its response.
    Route(cors::Cors, F),
    /// A preflight, answered without the route.
    Answered(Response),
}

/// The request's span: the method and the route template, and the caller's trace id (with
/// trace export: the OpenTelemetry attributes instead, and the caller's span as its parent).
fn request_span(req: &Request) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str);
    let parent = crate::telemetry::trace_parent(req.headers());
    let trace_id = parent.map(|p| p.trace_id);
    let span = if crate::telemetry::exporting() {
        tracing::info_span!(
            target: "oauth::http",
            "request",
            otel.name = %format_args!("{} {route}", req.method()),
            otel.kind = "server",
            http.request.method = %req.method(),
            http.route = %route,
            http.response.status_code = tracing::field::Empty,
            trace_id,
        )
    } else {
        tracing::info_span!(
            target: "oauth::http",
            "request",
            method = %req.method(),
            route = %route,
            trace_id
        )
    };
    if parent.is_some() {
        crate::telemetry::adopt_remote_parent(&span, req.headers());
    }
    span
}

/// The response's status on the span, and the events tower-http's trace layer logged, in its
/// words: the end of every request at `debug`, then a server error at `error`.
fn finished(span: &Span, response: &Response, started: Instant) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    // Entering the span costs the subscriber's bookkeeping: on every request only when the
    // `debug` event is wanted.
    if !status.is_server_error() && !tracing::enabled!(target: "oauth::http", tracing::Level::DEBUG)
    {
        return;
    }
    let _entered = span.enter();
    let latency_ms = started.elapsed().as_millis();
    tracing::debug!(
        target: "oauth::http",
        latency = %format_args!("{latency_ms} ms"),
        status = status.as_u16(),
        "finished processing request"
    );
    if status.is_server_error() {
        tracing::error!(
            target: "oauth::http",
            classification = %format_args!("Status code: {status}"),
            latency = %format_args!("{latency_ms} ms"),
            "response failed"
        );
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::{AroundLayer, TrustedProxies};
    use crate::cors::ListedOrigins;

    #[test]
    fn host_values() {
        for ok in [
            "localhost",
            "127.0.0.1:8080",
            "[::1]:3000",
            "auth.example.com",
            "auth.example.com:",
            "",
        ] {
            assert!(super::is_host_value(ok.as_bytes()), "{ok:?}");
        }
        for bad in [
            &b"a b@c:99999"[..],
            b"\xff\xfe",
            b"host:99999",
            b"user@host",
            b"host:abc",
            b"[::1",
            b":8080",
            b"[]:80",
            b"[::1]x",
            b"host:80:80",
            b"h\x00st",
        ] {
            assert!(
                !super::is_host_value(bad),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// A panicking handler, a service that panics before it makes its future, and a route
    /// that answers: through a real router with the layer, as the server has it.
    fn app() -> Router {
        Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("the handler failed");
                    }
                    "never"
                }),
            )
            // A service that panics in `call` rather than in its future.
            .route_service(
                "/boom-early",
                tower::service_fn(|_: Request<Body>| {
                    if true {
                        panic!("the handler failed before its future");
                    }
                    std::future::ready(Ok::<_, std::convert::Infallible>(StatusCode::OK))
                }),
            )
            // A public OAuth endpoint: any origin may read its answers, a panic's too.
            .route(
                "/oauth/token",
                axum::routing::post(|| async {
                    if true {
                        panic!("the token endpoint failed");
                    }
                    "never"
                }),
            )
            .route("/fine", get(|| async { "fine" }))
            .layer(AroundLayer::new(
                ListedOrigins::new(&[]),
                TrustedProxies::default(),
            ))
    }

    async fn get_path(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        send(axum::http::Method::GET, path).await
    }

    async fn send(
        method: axum::http::Method,
        path: &str,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = app()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::HOST, "localhost")
                    .header(header::ORIGIN, "https://elsewhere.example")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_api_error_and_nothing_of_the_panic() {
        for path in ["/boom", "/boom-early"] {
            let (status, headers, body) = get_path(path).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["error"], "server_error", "{path}: {body}");
            assert!(!body.contains("the handler failed"), "{path}: {body}");
            assert_eq!(
                headers[header::CONTENT_TYPE],
                "application/json",
                "{path}: {headers:?}"
            );
        }
        // A panic's 500 carries the CORS headers of its endpoint, as any other answer.
        let (status, headers, body) = send(axum::http::Method::POST, "/oauth/token").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert!(!body.contains("the token endpoint failed"), "{body}");
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "*",
            "{headers:?}"
        );
        // The server goes on answering.
        let (status, _, body) = get_path("/fine").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "fine"));
    }

    /// The layer wrapped directly around a service whose `call` panics (not behind axum's
    /// route, which only calls its service when its future is polled): the guard around the
    /// layer's own work answers.
    #[tokio::test]
    async fn a_service_that_panics_when_called_answers_500() {
        use tower::Layer;
        let service = AroundLayer::new(ListedOrigins::new(&[]), TrustedProxies::default()).layer(
            tower::service_fn(|_: Request<Body>| {
                if true {
                    panic!("called");
                }
                std::future::ready(Ok::<_, std::convert::Infallible>(
                    axum::response::IntoResponse::into_response("never"),
                ))
            }),
        );
        let response = service
            .oneshot(
                Request::get("/anything")
                    .header(header::HOST, "localhost")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "server_error", "{json}");
    }

    /// With `oauth::http` at `debug`: each request's end, a 5xx's failure, inside the request's
    /// span (route template, never the path's query); with it at `info`, neither event.
    #[tokio::test(flavor = "current_thread")]
    async fn the_end_of_a_request_is_logged_in_its_span_without_the_query() {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        async fn logged(filter: &str) -> String {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            let _default = tracing::subscriber::set_default(subscriber);
            for path in ["/fine?code=kept-out-of-logs", "/boom"] {
                let _ = get_path(path).await;
            }
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            text
        }
        let text = logged("info,oauth::http=debug").await;
        let fine = text
            .lines()
            .find(|l| l.contains("finished processing request") && l.contains("status=200"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(fine.contains("route=/fine"), "{fine}");
        assert!(fine.contains(" ms"), "{fine}");
        let failed = text
            .lines()
            .find(|l| l.contains("response failed"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(failed.contains("route=/boom"), "{failed}");
        assert!(
            failed.contains("classification=Status code: 500 Internal Server Error"),
            "{failed}"
        );
        assert!(!text.contains("kept-out-of-logs"), "{text}");

        let text = logged("info").await;
        assert!(!text.contains("finished processing request"), "{text}");
        // A 5xx is logged at `error` whatever the level of the rest.
        assert!(text.contains("response failed"), "{text}");
    }
}
