//! Traces: W3C trace context (`traceparent`) taken from incoming requests, and, in a build with
//! the `otlp` feature and `tracing.otlp_endpoint` set, OpenTelemetry export over OTLP/HTTP.
//!
//! Every request runs in one `request` span (middleware.rs); with export on it is the root span
//! of the server's part of the trace, a child of the caller's span when the request carries a
//! valid `traceparent`. Span attributes are the method, the route template and the status: never
//! a path, a query, a header value, an id or a token.

use axum::http::HeaderMap;

/// A valid `traceparent` header (W3C Trace Context, version 00): the caller's trace and span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent<'a> {
    /// 32 lower-case hex digits, not all zero.
    pub trace_id: &'a str,
    /// 16 lower-case hex digits, not all zero.
    pub parent_id: &'a str,
    pub sampled: bool,
}

/// The request's `traceparent`, when there is exactly one and it is well formed; anything else
/// starts a new trace, as the specification asks of a receiver.
pub fn trace_parent(headers: &HeaderMap) -> Option<TraceParent<'_>> {
    let mut values = headers.get_all("traceparent").iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_trace_parent(value.to_str().ok()?)
}

/// `00-<trace-id>-<parent-id>-<flags>`. A higher version is read by its first four fields, as
/// the specification allows; version `ff` is invalid.
pub fn parse_trace_parent(value: &str) -> Option<TraceParent<'_>> {
    let value = value.trim_matches([' ', '\t']);
    let mut parts = value.splitn(5, '-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next();
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(version, 2) || version == "ff" || !hex(trace_id, 32) || !hex(parent_id, 16) {
        return None;
    }
    if !hex(flags, 2) || (version == "00" && rest.is_some()) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') || parent_id.bytes().all(|b| b == b'0') {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceParent {
        trace_id,
        parent_id,
        sampled: flags & 1 == 1,
    })
}

/// Is a tracer installed (the `otlp` feature with an endpoint)?
pub fn exporting() -> bool {
    #[cfg(feature = "otlp")]
    {
        otlp::PROVIDER.get().is_some()
    }
    #[cfg(not(feature = "otlp"))]
    {
        false
    }
}

/// Makes `span` a child of the caller's span named by the request's `traceparent` (and
/// `tracestate`), when traces are exported. Called only for a request whose `traceparent`
/// [`trace_parent`] accepted.
#[cfg_attr(not(feature = "otlp"), allow(unused_variables))]
pub fn adopt_remote_parent(span: &tracing::Span, headers: &HeaderMap) {
    #[cfg(feature = "otlp")]
    otlp::adopt_remote_parent(span, headers);
}

/// Flushes and stops the exporter (at shutdown): spans still queued are sent.
pub async fn shutdown() {
    #[cfg(feature = "otlp")]
    otlp::shutdown().await;
}

#[cfg(feature = "otlp")]
pub use otlp::layer;

#[cfg(feature = "otlp")]
mod otlp {
    use std::sync::OnceLock;
    use std::time::Duration;

    use anyhow::Context as _;
    use axum::http::HeaderMap;
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
    use opentelemetry::{Context, KeyValue};
    use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::{
        SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::config::TracingConfig;

    pub(super) static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    /// How long one export may take, and the flush at shutdown.
    const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

    /// The OpenTelemetry layer for the subscriber, when `tracing.otlp_endpoint` is set. Call from
    /// within the Tokio runtime: exports run on it.
    pub fn layer<S>(
        config: &TracingConfig,
    ) -> anyhow::Result<Option<impl tracing_subscriber::Layer<S>>>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let Some(endpoint) = &config.otlp_endpoint else {
            return Ok(None);
        };
        let endpoint = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let client = RuntimeClient::new(EXPORT_TIMEOUT)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol())
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .with_http_client(client)
            .build()
            .context("building the OTLP trace exporter")?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(ServerSampled {
                ratio: config.sample_ratio,
            })
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("oauth-server");
        if PROVIDER.set(provider).is_err() {
            anyhow::bail!("the trace exporter is already installed");
        }
        Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
    }

    /// Sampling decided by this server, never by the caller: the callers of an authorization
    /// server are anonymous, and a `traceparent` flag that forced export could flood the queue
    /// (dropping the operator's spans), or keep an attacker's requests out of the traces. A
    /// request's span is exported with probability `ratio`, drawn here (not from the trace id,
    /// which the caller may choose); the spans inside a request follow its decision.
    #[derive(Debug, Clone)]
    struct ServerSampled {
        ratio: f64,
    }

    impl ShouldSample for ServerSampled {
        fn should_sample(
            &self,
            parent: Option<&Context>,
            _: TraceId,
            _: &str,
            _: &SpanKind,
            _: &[KeyValue],
            _: &[Link],
        ) -> SamplingResult {
            let parent = parent
                .filter(|cx| cx.has_active_span())
                .map(|cx| cx.span().span_context().clone());
            let sampled = match &parent {
                Some(local) if !local.is_remote() => local.is_sampled(),
                _ => self.ratio >= 1.0 || (self.ratio > 0.0 && rand::random::<f64>() < self.ratio),
            };
            SamplingResult {
                decision: if sampled {
                    SamplingDecision::RecordAndSample
                } else {
                    SamplingDecision::Drop
                },
                attributes: Vec::new(),
                trace_state: parent.map(|p| p.trace_state().clone()).unwrap_or_default(),
            }
        }
    }

    /// `http/protobuf` (the OTLP default) unless `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` says `http/json`.
    fn protocol() -> Protocol {
        let named = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_default();
        if named.trim() == "http/json" {
            Protocol::HttpJson
        } else {
            Protocol::HttpBinary
        }
    }

    pub(super) fn adopt_remote_parent(span: &tracing::Span, headers: &HeaderMap) {
        if PROVIDER.get().is_none() {
            return;
        }
        let cx =
            TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
        let _ = span.set_parent(cx);
    }

    pub(super) async fn shutdown() {
        if let Some(provider) = PROVIDER.get() {
            let provider = provider.clone();
            // The exporter's worker thread waits on exports that run on this runtime: block a
            // thread of the blocking pool, not a runtime worker.
            let _ = tokio::task::spawn_blocking(move || {
                let _ = provider.shutdown_with_timeout(EXPORT_TIMEOUT);
            })
            .await;
        }
    }

    /// Sends the exporter's requests with the server's reqwest client (rustls) on the Tokio
    /// runtime. The batch processor runs exports on a thread of its own, outside the runtime, so
    /// each request is spawned onto the runtime and awaited from there.
    #[derive(Debug)]
    struct RuntimeClient {
        client: reqwest::Client,
        runtime: tokio::runtime::Handle,
    }

    impl RuntimeClient {
        fn new(timeout: Duration) -> anyhow::Result<Self> {
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .context("building the OTLP HTTP client")?;
            let runtime = tokio::runtime::Handle::try_current()
                .context("the OTLP exporter needs the Tokio runtime")?;
            Ok(Self { client, runtime })
        }
    }

    #[async_trait::async_trait]
    impl HttpClient for RuntimeClient {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            let client = self.client.clone();
            let sent = self.runtime.spawn(async move {
                let request = reqwest::Request::try_from(request)?;
                let response = client.execute(request).await?;
                let mut answer = Response::builder().status(response.status());
                if let Some(headers) = answer.headers_mut() {
                    *headers = response.headers().clone();
                }
                let body = response.bytes().await?;
                Ok::<_, HttpError>(answer.body(body)?)
            });
            sent.await?
        }
    }
}

/// The text log's field formatter: `tracing_subscriber`'s own (`DefaultFields`, with its
/// escaping of control characters), written first into a buffer each thread reuses and then
/// copied into the span's or event's string in one piece. The fmt layer formats a span's
/// fields when the span opens, and every request opens one: written straight into the span's
/// new, empty string, a few small writes grew it several times per request. On a terminal
/// (colours on) the fields are written directly, as before.
#[derive(Debug, Default)]
pub struct BufferedFields(tracing_subscriber::fmt::format::DefaultFields);

/// A formatted set of fields longer than this gives its buffer back rather than keep it.
const KEPT_FIELDS_BUFFER: usize = 4096;

thread_local! {
    static FIELDS_BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for BufferedFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: tracing_subscriber::fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::format::Writer;
        if writer.has_ansi_escapes() {
            return self.0.format_fields(writer, fields);
        }
        let buffered = FIELDS_BUFFER.try_with(|buffer| {
            let Ok(mut buffer) = buffer.try_borrow_mut() else {
                // A field's value that logs while it is being formatted.
                return None;
            };
            let formatted = self
                .0
                .format_fields(Writer::new(&mut *buffer), &fields)
                .and_then(|()| writer.write_str(&buffer));
            // Nothing of the fields stays behind; a large buffer is given back.
            buffer.clear();
            if buffer.capacity() > KEPT_FIELDS_BUFFER {
                *buffer = String::new();
            }
            Some(formatted)
        });
        match buffered {
            Ok(Some(formatted)) => formatted,
            // Re-entered, or the thread is ending and its buffer is gone: written directly.
            Ok(None) | Err(_) => self.0.format_fields(writer, fields),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn reads_a_valid_traceparent() {
        let v = format!("00-{TRACE}-{SPAN}-01");
        let p = parse_trace_parent(&v).expect("valid");
        assert_eq!((p.trace_id, p.parent_id, p.sampled), (TRACE, SPAN, true));
        let v = format!("00-{TRACE}-{SPAN}-00");
        assert!(!parse_trace_parent(&v).expect("valid").sampled);
        // A later version may carry more fields.
        let v = format!("01-{TRACE}-{SPAN}-01-extra");
        assert_eq!(parse_trace_parent(&v).map(|p| p.trace_id), Some(TRACE));
    }

    #[test]
    fn refuses_malformed_traceparents() {
        for v in [
            String::new(),
            format!("00-{TRACE}-{SPAN}"),
            format!("00-{TRACE}-{SPAN}-01-extra"),
            format!("ff-{TRACE}-{SPAN}-01"),
            format!("00-{}-{SPAN}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
            format!("00-{}-{SPAN}-01", &TRACE[1..]),
            format!("00-{TRACE}-{SPAN}-0g"),
            format!("0-{TRACE}-{SPAN}-01"),
            format!("00-{TRACE}x-{SPAN}-01"),
        ] {
            assert_eq!(parse_trace_parent(&v), None, "{v}");
        }
    }

    #[test]
    fn two_traceparent_headers_start_a_new_trace() {
        let mut h = HeaderMap::new();
        let v = format!("00-{TRACE}-{SPAN}-01");
        h.append("traceparent", v.parse().expect("header"));
        assert!(trace_parent(&h).is_some());
        h.append("traceparent", v.parse().expect("header"));
        assert!(trace_parent(&h).is_none());
    }

    /// A log writer for tests: what the fmt layer wrote.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What a span and an event inside it log, with the given field formatter.
    fn logged<N>(fields: N) -> String
    where
        N: for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static,
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .without_time()
                .fmt_fields(fields)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let long = "x".repeat(5000);
            let span =
                tracing::info_span!("request", method = "POST", route = %"/oauth/token", n = 3);
            let _in = span.enter();
            tracing::info!(r#type = "a", long = %long, "message with \u{1b}[31m an escape");
            span.record("n", 4);
            tracing::warn!(reason = ?Some("b"), "second");
        });
        let bytes = out.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    #[test]
    fn buffered_fields_log_what_the_default_fields_do() {
        let buffered = logged(BufferedFields::default());
        assert_eq!(
            buffered,
            logged(tracing_subscriber::fmt::format::DefaultFields::new())
        );
        assert!(
            buffered.contains(r#"request{method="POST" route=/oauth/token n=3}"#),
            "{buffered}"
        );
        assert!(buffered.contains("n=3 n=4}"), "{buffered}");
        assert!(
            !buffered.contains('\u{1b}'),
            "an escape code reached the log: {buffered}"
        );
        // The long field was written whole, and the buffer it grew was not kept.
        assert!(buffered.contains(&"x".repeat(5000)));
        assert!(FIELDS_BUFFER.with(|b| b.borrow().capacity()) <= KEPT_FIELDS_BUFFER);
        // And no field's text stays behind in it.
        assert!(FIELDS_BUFFER.with(|b| b.borrow().is_empty()));
    }
}
