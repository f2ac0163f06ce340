//! Prometheus metrics, served at `/metrics` on their own listener (`[metrics] bind`), never on
//! the public port. Off by default: until [`enable`] is called nothing is counted, so a server
//! without a metrics listener pays one relaxed atomic load per event.
//!
//! Label values come from fixed sets only (route templates, methods, status codes, grant types,
//! algorithms, event kinds, limit names, error classes): never an id, a client id, an email
//! address or a token, so the number of series stays bounded whatever callers send.
//!
//! The metrics live in one registry per process: an in-process test that starts several servers
//! sees their sum.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use oauth_store::ConnectionUsage;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The route label of a request that matched no route (a 404 from the fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The content type of the text format served at `/metrics`.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

static ENABLED: AtomicBool = AtomicBool::new(false);

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Starts counting (called when the metrics listener is configured).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
    LazyLock::force(&METRICS);
}

fn metrics() -> Option<&'static Metrics> {
    ENABLED.load(Ordering::Relaxed).then(|| &*METRICS)
}

/// A route template, shared: the label of a request is an `Arc` clone of an interned string,
/// not a new allocation per request.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct RouteLabel(Arc<str>);

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, &self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: RouteLabel,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: RouteLabel,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    grant_type: &'static str,
    algorithm: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 4 s: a token request takes well under a millisecond, a sign-in (argon2id)
    // tens of milliseconds, a request waiting for the database up to its acquire timeout.
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ])
}

struct Metrics {
    registry: Registry,
    /// Route templates seen, interned.
    routes: RwLock<HashMap<Box<str>, Arc<str>>>,
    unmatched: Arc<str>,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabels>,
    tokens: Family<TokenLabels, Counter>,
    security_events: Family<KindLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    database_errors: Family<ErrorLabels, Counter>,
    connections: Family<StateLabels, Gauge>,
    connections_max: Gauge,
    signing_key_age: Gauge,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("oauth");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency = HistogramFamily::<RouteLabels>::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's head to its response's head, by route template and method",
            latency.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "tokens_issued",
            "Access tokens issued, by grant type and signing algorithm",
            tokens.clone(),
        );
        let security_events = Family::<KindLabels, Counter>::default();
        registry.register(
            "security_events",
            "Security events of the audit trail, by kind (refresh_token.reused, authorization_code.replayed, client.authentication_failed, login.failed, ...)",
            security_events.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit (429), by limit",
            rate_limited.clone(),
        );
        let database_errors = Family::<ErrorLabels, Counter>::default();
        // Present at 0 from the start, so that an alert on their rate has a series to read.
        for class in ["unavailable", "invalid_input", "internal"] {
            let _ = database_errors.get_or_create(&ErrorLabels { class });
        }
        registry.register(
            "database_errors",
            "Database errors met while answering requests, by class (unavailable, invalid_input, internal)",
            database_errors.clone(),
        );
        let connections = Family::<StateLabels, Gauge>::default();
        registry.register(
            "database_connections",
            "Database connections now, by state: in_use (running a statement or transaction) or idle; on SQLite the read connections",
            connections.clone(),
        );
        let connections_max = Gauge::default();
        registry.register(
            "database_connections_max",
            "The most connections the PostgreSQL pool opens (0 on SQLite, which has no pool)",
            connections_max.clone(),
        );
        let signing_key_age = Gauge::default();
        registry.register(
            "signing_key_age_seconds",
            "Seconds since the key that signs access tokens now started signing",
            signing_key_age.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The server's version, as a label", build);
        Self {
            registry,
            routes: RwLock::new(HashMap::new()),
            unmatched: Arc::from(UNMATCHED_ROUTE),
            requests,
            latency,
            tokens,
            security_events,
            rate_limited,
            database_errors,
            connections,
            connections_max,
            signing_key_age,
        }
    }

    fn route(&self, template: Option<&str>) -> Arc<str> {
        let Some(template) = template else {
            return self.unmatched.clone();
        };
        let known = match self.routes.read() {
            Ok(g) => g.get(template).cloned(),
            Err(poisoned) => poisoned.into_inner().get(template).cloned(),
        };
        if let Some(route) = known {
            return route;
        }
        // Templates are the router's own, a fixed set: this runs once per route.
        let mut g = match self.routes.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        g.entry(Box::from(template))
            .or_insert_with(|| Arc::from(template))
            .clone()
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A request being counted (by route template, method and status) and timed, when metrics are
/// served.
pub struct Tracked {
    metrics: &'static Metrics,
    route: Arc<str>,
    method: &'static str,
    started: std::time::Instant,
}

impl Tracked {
    /// Starts counting `req`; `None` when metrics are not served.
    pub fn start(req: &Request) -> Option<Self> {
        let m = metrics()?;
        let route = m.route(
            req.extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str),
        );
        Some(Self {
            metrics: m,
            route,
            method: method_label(req.method()),
            started: std::time::Instant::now(),
        })
    }

    /// Counts the request's response.
    pub fn finish(self, response: &Response) {
        let elapsed = self.started.elapsed();
        record_request(
            self.metrics,
            self.route,
            self.method,
            response.status().as_u16(),
            elapsed,
        );
    }
}

fn record_request(m: &Metrics, route: Arc<str>, method: &'static str, status: u16, took: Duration) {
    let route = RouteLabel(route);
    m.latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method,
        })
        .observe(took.as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status,
        })
        .inc();
}

/// An access token was issued.
pub fn token_issued(grant_type: &'static str, algorithm: &'static str) {
    if let Some(m) = metrics() {
        m.tokens
            .get_or_create(&TokenLabels {
                grant_type,
                algorithm,
            })
            .inc();
    }
}

/// A security event of the audit trail (stored or only logged).
pub fn security_event(kind: &'static str) {
    if let Some(m) = metrics() {
        m.security_events.get_or_create(&KindLabels { kind }).inc();
    }
}

/// A request was refused by the rate limit named `limit`.
pub fn rate_limited(limit: &'static str) {
    if let Some(m) = metrics() {
        m.rate_limited.get_or_create(&LimitLabels { limit }).inc();
    }
}

/// The database failed a request: `unavailable`, `invalid_input` or `internal`.
pub fn database_error(class: &'static str) {
    if let Some(m) = metrics() {
        m.database_errors
            .get_or_create(&ErrorLabels { class })
            .inc();
    }
}

/// The text exposition of every metric; `signing_key_age_secs` and `connections` are read by
/// the caller at the moment of the scrape.
pub fn render(
    signing_key_age_secs: Option<i64>,
    connections: ConnectionUsage,
) -> Result<String, std::fmt::Error> {
    let m = &*METRICS;
    if let Some(age) = signing_key_age_secs {
        m.signing_key_age.set(age.max(0));
    }
    for (state, n) in [("in_use", connections.in_use), ("idle", connections.idle)] {
        m.connections
            .get_or_create(&StateLabels { state })
            .set(i64::from(n));
    }
    if let Some(max) = connections.max {
        m.connections_max.set(i64::from(max));
    }
    let mut out = String::with_capacity(8 * 1024);
    prometheus_client::encoding::text::encode(&mut out, &m.registry)?;
    Ok(out)
}

/// The answer to a scrape: the exposition, or a bare 500.
pub fn scrape_response(
    signing_key_age_secs: Option<i64>,
    connections: ConnectionUsage,
) -> Response {
    match render(signing_key_age_secs, connections) {
        Ok(body) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            body,
        )
            .into_response(),
        Err(_) => {
            tracing::error!("encoding the metrics failed");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
