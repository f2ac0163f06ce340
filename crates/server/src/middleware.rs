//! The work every route shares around its handler, as one tower layer: the request's context
//! for the audit trail ([`RequestContext`]), the request metrics (when served) and CORS
//! (preflights answered, headers added).
//!
//! One layer, not one per concern: axum boxes every route again for each layer the router is
//! given, and a boxed route clones its box and boxes its future on every call, so each layer
//! cost every request two allocations; `axum::middleware::from_fn` also clones everything
//! inside it and boxes two more per request. This layer is one such level, and it calls the
//! route it wraps in place (a route is always ready) and boxes one future.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use tower::{Layer, Service};

use crate::audit::RequestContext;
use crate::cors::{self, Before, ListedOrigins};
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
        let context = RequestContext::of(&req);
        let tracked = Tracked::start(&req);
        let handled = match cors::before(&self.listed_origins, &req) {
            Before::Handle(cors) => Ok((cors, self.inner.call(req))),
            Before::Answered(preflight) => Err(preflight),
        };
        Box::pin(context.scope(async move {
            let response = match handled {
                Ok((cors, handler)) => {
                    let Ok(mut response) = handler.await;
                    cors.finish(&mut response);
                    response
                }
                Err(preflight) => preflight,
            };
            if let Some(t) = tracked {
                t.finish(&response);
            }
            Ok(response)
        }))
    }
}
