//! The load generator: N keep-alive HTTP/1.1 connections (hyper), each running one operation
//! after another until the time is up. Every response is checked; latencies are recorded per
//! operation in microseconds. A short warm-up precedes the measured window and is not counted
//! (except for its errors, which always count).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

pub use crate::wrk::FixedRequest;

/// One unit of work: a single request, or (for flows) several requests in sequence. The error
/// says what was wrong with the response.
#[async_trait]
pub trait Operation: Send + Sync {
    async fn run(&self, conn: &mut Connection, seq: u64) -> Result<(), String>;

    /// The one request this operation repeats, when it is always the same request (what wrk can
    /// send: `--wrk`); `None` for flows and for requests that differ from one another.
    async fn fixed(&self) -> Option<FixedRequest> {
        None
    }
}

/// One keep-alive connection to the target.
pub struct Connection {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Self {
        let host = HeaderValue::from_str(&addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1"));
        Self {
            addr,
            host,
            sender: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_some_and(|s| s.is_closed()) {
            self.sender = None;
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    /// Sends one request and reads the whole response body.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
        self.exchange(req)
            .await
            .map(|(status, _, body)| (status, body))
    }

    /// Sends one request; the response's status, headers and whole body.
    pub async fn exchange(
        &mut self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), String> {
        req.headers_mut().insert(header::HOST, self.host.clone());
        let sender = self.sender().await?;
        let sent = async {
            sender
                .ready()
                .await
                .map_err(|e| format!("connection: {e}"))?;
            let response = sender
                .send_request(req)
                .await
                .map_err(|e| format!("request: {e}"))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("response body: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, headers, body))
        }
        .await;
        if sent.is_err() {
            // Start over with a fresh connection next time.
            self.sender = None;
        }
        sent
    }
}

/// A request template for [`Single`]: called with a sequence number unique within the run.
pub type BuildRequest = Box<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

/// The common operation: one request, one expected status, and optionally a fragment the body
/// must contain.
pub struct Single {
    pub build: BuildRequest,
    pub status: StatusCode,
    pub body_contains: Option<String>,
}

#[async_trait]
impl Operation for Single {
    async fn run(&self, conn: &mut Connection, seq: u64) -> Result<(), String> {
        let (status, body) = conn.send((self.build)(seq)).await?;
        check(status, &body, self.status, self.body_contains.as_deref())
    }

    /// Fixed when the requests it builds for several sequence numbers are all the same request,
    /// with no header name given twice (wrk keeps one value per name).
    async fn fixed(&self) -> Option<FixedRequest> {
        let first = fixed_parts(self.build.as_ref()(0)).await?;
        for seq in [1, 2, 3, 10, 97, 1_000_003] {
            if fixed_parts(self.build.as_ref()(seq)).await? != first {
                return None;
            }
        }
        let (method, path, headers, body) = first;
        let mut names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        Some(FixedRequest {
            method,
            path,
            headers,
            body,
            status: self.status,
            body_contains: self.body_contains.clone(),
        })
    }
}

type Parts = (Method, String, Vec<(String, Vec<u8>)>, Bytes);

/// A request's method, path and query, headers and body.
async fn fixed_parts(req: Request<Full<Bytes>>) -> Option<Parts> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query()?.as_str().to_owned();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let body = body.collect().await.ok()?.to_bytes();
    Some((parts.method, path, headers, body))
}

/// The response check every operation uses.
pub fn check(
    status: StatusCode,
    body: &[u8],
    expected: StatusCode,
    contains: Option<&str>,
) -> Result<(), String> {
    let snippet = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    if status != expected {
        return Err(format!(
            "status {status} (expected {expected}): {}",
            snippet()
        ));
    }
    if let Some(fragment) = contains {
        if !body
            .windows(fragment.len().max(1))
            .any(|w| w == fragment.as_bytes())
        {
            return Err(format!("body without {fragment:?}: {}", snippet()));
        }
    }
    Ok(())
}

/// A request with a body of `content_type`.
pub fn request(
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method;
    *req.uri_mut() = path.parse().unwrap_or_default();
    if let Some(ct) = content_type {
        if let Ok(v) = HeaderValue::from_str(ct) {
            req.headers_mut().insert(header::CONTENT_TYPE, v);
        }
    }
    req
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Connection `i` goes to `addrs[i % addrs.len()]` (several instances of one server).
    pub addrs: Vec<SocketAddr>,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one load run measured.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Operations completed inside the measured window.
    pub ops: u64,
    /// Failed operations, warm-up included.
    pub errors: u64,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// Latencies of the measured operations, sorted, in microseconds.
    pub latencies_us: Vec<u32>,
    pub window: Duration,
    /// p50 and p99 in microseconds as another load generator reported them (wrk), in place of
    /// `latencies_us`.
    pub percentiles_us: Option<(u64, u64)>,
}

impl LoadOutcome {
    pub fn throughput(&self) -> f64 {
        self.ops as f64 / self.window.as_secs_f64().max(1e-9)
    }

    pub fn p50_ms(&self) -> f64 {
        match self.percentiles_us {
            Some((p50, _)) => p50 as f64 / 1000.0,
            None => self.percentile_ms(50.0),
        }
    }

    pub fn p99_ms(&self) -> f64 {
        match self.percentiles_us {
            Some((_, p99)) => p99 as f64 / 1000.0,
            None => self.percentile_ms(99.0),
        }
    }

    /// Nearest-rank percentile, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.latencies_us.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.latencies_us.len()) - 1;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// Hooks the caller runs at the edges of the measured window (CPU samples).
pub trait Window {
    fn start(&mut self);
    fn end(&mut self);
}

/// Runs `op` on `spec.connections` connections for warm-up + duration. `window` is told when
/// the measured window starts and ends.
pub async fn run(
    op: Arc<dyn Operation>,
    spec: LoadSpec,
    window: &mut dyn Window,
) -> anyhow::Result<LoadOutcome> {
    anyhow::ensure!(!spec.addrs.is_empty(), "no server address to load");
    let seq = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Vec::<String>::new()));
    let begin = Instant::now();
    let start = begin + spec.warmup;
    let end = start + spec.duration;
    let mut tasks = Vec::with_capacity(spec.connections);
    for i in 0..spec.connections.max(1) {
        let addr = spec.addrs[i % spec.addrs.len()];
        let op = op.clone();
        let seq = seq.clone();
        let errors = errors.clone();
        let samples = samples.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::new(addr);
            let mut latencies: Vec<u32> = Vec::with_capacity(64 * 1024);
            let mut ops = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let result = op.run(&mut conn, n).await;
                let t1 = Instant::now();
                match result {
                    Ok(()) => {
                        if t0 >= start && t1 <= end {
                            ops += 1;
                            let us = t1.duration_since(t0).as_micros();
                            latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut s) = samples.lock() {
                            if s.len() < 5 {
                                s.push(e);
                            }
                        }
                    }
                }
            }
            (ops, latencies)
        }));
    }
    tokio::time::sleep_until(start).await;
    window.start();
    tokio::time::sleep_until(end).await;
    window.end();
    let mut outcome = LoadOutcome {
        window: spec.duration,
        ..Default::default()
    };
    for t in tasks {
        let (ops, latencies) = t.await.context("a load task failed")?;
        outcome.ops += ops;
        outcome.latencies_us.extend(latencies);
    }
    outcome.latencies_us.sort_unstable();
    outcome.errors = errors.load(Ordering::Relaxed);
    outcome.error_samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let o = LoadOutcome {
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            ..Default::default()
        };
        assert_eq!(o.percentile_ms(50.0), 50.0);
        assert_eq!(o.percentile_ms(99.0), 99.0);
        assert_eq!(o.percentile_ms(100.0), 100.0);
        assert_eq!(LoadOutcome::default().percentile_ms(99.0), 0.0);
    }

    fn post(path: &str, body: String) -> Request<Full<Bytes>> {
        let mut req = request(Method::POST, path, Some("text/plain"), Bytes::from(body));
        req.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eA=="),
        );
        req
    }

    #[tokio::test]
    async fn a_request_that_never_changes_is_fixed_and_one_that_does_is_not() {
        let same = Single {
            build: Box::new(|_| post("/oauth/token?x=1", "a=b".to_owned())),
            status: StatusCode::OK,
            body_contains: Some("tok".to_owned()),
        };
        let fixed = same.fixed().await.expect("fixed");
        assert_eq!(fixed.method, Method::POST);
        assert_eq!(fixed.path, "/oauth/token?x=1");
        assert_eq!(&fixed.body[..], b"a=b");
        assert_eq!(fixed.status, StatusCode::OK);
        assert_eq!(fixed.body_contains.as_deref(), Some("tok"));
        assert!(fixed
            .headers
            .contains(&("authorization".to_owned(), b"Basic eA==".to_vec())));
        assert!(fixed
            .headers
            .contains(&("content-type".to_owned(), b"text/plain".to_vec())));

        let body_varies = Single {
            build: Box::new(|seq| post("/p", format!("n={seq}"))),
            status: StatusCode::OK,
            body_contains: None,
        };
        assert_eq!(body_varies.fixed().await, None);
        let path_varies = Single {
            build: Box::new(|seq| post(&format!("/p?page={seq}"), String::new())),
            status: StatusCode::OK,
            body_contains: None,
        };
        assert_eq!(path_varies.fixed().await, None);
        let header_varies = Single {
            build: Box::new(|seq| {
                let mut req = post("/p", String::new());
                req.headers_mut().insert("x-seq", HeaderValue::from(seq));
                req
            }),
            status: StatusCode::OK,
            body_contains: None,
        };
        assert_eq!(header_varies.fixed().await, None);
        let varies_later = Single {
            build: Box::new(|seq| post("/p", if seq < 5 { "a" } else { "b" }.to_owned())),
            status: StatusCode::OK,
            body_contains: None,
        };
        assert_eq!(varies_later.fixed().await, None);
        let header_twice = Single {
            build: Box::new(|_| {
                let mut req = post("/p", String::new());
                req.headers_mut().append(
                    header::AUTHORIZATION,
                    HeaderValue::from_static("Basic eQ=="),
                );
                req
            }),
            status: StatusCode::OK,
            body_contains: None,
        };
        assert_eq!(header_twice.fixed().await, None);
    }

    #[test]
    fn reported_percentiles_stand_in_for_the_latencies() {
        let o = LoadOutcome {
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            ..Default::default()
        };
        assert_eq!((o.p50_ms(), o.p99_ms()), (50.0, 99.0));
        let wrk = LoadOutcome {
            percentiles_us: Some((850, 2100)),
            ..Default::default()
        };
        assert_eq!((wrk.p50_ms(), wrk.p99_ms()), (0.85, 2.1));
    }

    #[test]
    fn checks_status_and_body() {
        assert!(check(StatusCode::OK, b"{\"a\":1}", StatusCode::OK, Some("\"a\"")).is_ok());
        let e = check(StatusCode::CREATED, b"x", StatusCode::OK, None);
        assert!(e.is_err_and(|e| e.contains("201")));
        assert!(check(StatusCode::OK, b"{}", StatusCode::OK, Some("data")).is_err());
    }
}
