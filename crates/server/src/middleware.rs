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
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tower::{Layer, Service};
use tracing::{Instrument, Span};

use crate::audit::RequestContext;
use crate::cors::{self, Before, ListedOrigins};
use crate::error::ApiError;
use crate::metrics::Tracked;

/// The layer ([`Around`] for each route).
#[derive(Clone)]
pub struct AroundLayer {
    listed_origins: ListedOrigins,
}

impl AroundLayer {
    pub fn new(listed_origins: ListedOrigins) -> Self {
        Self { listed_origins }
    }
}

impl<S> Layer<S> for AroundLayer {
    type Service = Around<S>;

    fn layer(&self, inner: S) -> Around<S> {
        Around {
            inner,
            listed_origins: self.listed_origins.clone(),
        }
    }
}

/// A route with the shared work around it.
#[derive(Clone)]
pub struct Around<S> {
    inner: S,
    listed_origins: ListedOrigins,
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
        let started = Instant::now();
        let span = request_span(&req);
        let context = RequestContext::of(&req);
        let tracked = Tracked::start(&req);
        let handled = {
            let _entered = span.enter();
            tracing::debug!("started processing request");
            match cors::before(&self.listed_origins, &req) {
                // Calling an axum route only makes its future: the route's service is called,
                // and its handler runs, when that future is polled, under `catch_unwind` below.
                Before::Handle(cors) => Handled::Route(cors, self.inner.call(req)),
                Before::Answered(preflight) => Handled::Answered(preflight),
            }
        };
        Box::pin(context.scope(async move {
            let response = match handled {
                Handled::Route(cors, handler) => {
                    let outcome = AssertUnwindSafe(handler)
                        .catch_unwind()
                        .instrument(span.clone())
                        .await;
                    let mut response = match outcome {
                        Ok(Ok(response)) => response,
                        Ok(Err(never)) => match never {},
                        Err(_panic) => {
                            let _entered = span.enter();
                            ApiError::internal("a handler panicked").into_response()
                        }
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
            Ok(response)
        }))
    }
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
            "request",
            otel.name = %format_args!("{} {route}", req.method()),
            otel.kind = "server",
            http.request.method = %req.method(),
            http.route = %route,
            http.response.status_code = tracing::field::Empty,
            trace_id,
        )
    } else {
        tracing::info_span!("request", method = %req.method(), route = %route, trace_id)
    };
    if parent.is_some() {
        crate::telemetry::adopt_remote_parent(&span, req.headers());
    }
    span
}

/// The response's status on the span, and the events tower-http's trace layer logged: the
/// end of every request at `debug`, a server error at `error`.
fn finished(span: &Span, response: &Response, started: Instant) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    let _entered = span.enter();
    let latency = started.elapsed();
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), ?latency, "response failed");
    }
    tracing::debug!(
        status = status.as_u16(),
        ?latency,
        "finished processing request"
    );
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    use super::AroundLayer;
    use crate::cors::ListedOrigins;

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
            .route("/fine", get(|| async { "fine" }))
            .layer(AroundLayer::new(ListedOrigins::new(&[])))
    }

    async fn get_path(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = app()
            .oneshot(
                Request::get(path)
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
        // The server goes on answering.
        let (status, _, body) = get_path("/fine").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "fine"));
    }
}
