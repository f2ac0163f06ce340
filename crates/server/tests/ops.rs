//! Operating the server: the Prometheus metrics listener, `oauth-server doctor`, the container
//! files (Dockerfile, compose.yaml) and what `serve`, `migrate` and `keys rotate` print. Every
//! test runs the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Fresh PostgreSQL databases, shared with the storage tests.
#[path = "../../store/tests/support/mod.rs"]
mod db;

const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Db {
    dir: tempfile::TempDir,
    url: String,
}

fn fresh_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ops.db").display());
    Db { dir, url }
}

/// A running `oauth-server`, with what it printed up to its "listening on" line.
struct Served {
    child: tokio::process::Child,
    addr: String,
    /// The whole "listening on" line.
    banner: String,
    api_key: Option<String>,
}

impl Served {
    /// Runs the binary with `args` and exactly `env` (besides PATH), in `dir`.
    async fn spawn(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Self {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut api_key = None;
        let (addr, banner) = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the server prints its address")
                .unwrap()
                .expect("the server starts");
            if let Some(k) = line.trim().strip_prefix("API key:") {
                api_key = Some(k.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("oauth-server listening on ") {
                break (rest.split(' ').next().unwrap().to_owned(), line.clone());
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Served {
            child,
            addr,
            banner,
            api_key,
        }
    }

    async fn start(db: &Db, extra_env: &[(&str, &str)]) -> Self {
        let mut env = vec![
            ("OAUTH_DATABASE_URL", db.url.as_str()),
            ("OAUTH_BIND", "127.0.0.1:0"),
        ];
        env.extend_from_slice(extra_env);
        Self::spawn(&["serve"], &env, db.dir.path()).await
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The metrics address the banner names.
    fn metrics_url(&self) -> String {
        let rest = self
            .banner
            .split("metrics ")
            .nth(1)
            .unwrap_or_else(|| panic!("{}", self.banner));
        rest.split(',').next().unwrap().to_owned()
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

// ---------------------------------------------------------------------------------------------
// A strict reader of the Prometheus / OpenMetrics text format.

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Every sample of an exposition. Panics on a line that is neither a comment nor a well-formed
/// sample, or when the exposition does not end with `# EOF`.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last().copied(), Some("# EOF"), "ends with # EOF");
    let mut samples = Vec::new();
    for line in &lines {
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split(' ').next().unwrap();
            assert!(
                matches!(kind, "HELP" | "TYPE" | "UNIT" | "EOF"),
                "comment {line:?}"
            );
            continue;
        }
        samples.push(parse_sample(line).unwrap_or_else(|e| panic!("{e}: {line:?}")));
    }
    samples
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("bad metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let end = loop {
            // A label name, `=`, a quoted value, then `,` or `}`.
            let Some(&(start, c)) = chars.peek() else {
                return Err("unterminated labels".into());
            };
            if c == '}' {
                break start + 1;
            }
            let mut key = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    key.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            if key.is_empty() || chars.next().map(|x| x.1) != Some('=') {
                return Err("bad label name".into());
            }
            if chars.next().map(|x| x.1) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next().map(|x| x.1) {
                    Some('\\') => match chars.next().map(|x| x.1) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        _ => return Err("bad escape".into()),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            }
            if labels.insert(key, value).is_some() {
                return Err("repeated label".into());
            }
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => break i + 1,
                _ => return Err("expected , or }".into()),
            }
        };
        rest = &after[end..];
    }
    let mut parts = rest.split(' ');
    if parts.next() != Some("") {
        return Err("no space before the value".into());
    }
    let value = parts.next().ok_or("no value")?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    // An optional timestamp, nothing else.
    if let Some(ts) = parts.next() {
        ts.parse::<f64>().map_err(|_| "bad timestamp")?;
    }
    if parts.next().is_some() {
        return Err("trailing text".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The value of the sample `name` with exactly `labels`; 0 when absent.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map_or(0.0, |s| s.value)
}

#[test]
fn the_exposition_reader_is_strict() {
    let ok =
        "# HELP a_total A.\n# TYPE a counter\na_total{x=\"1\",y=\"q\\\"\\n\"} 3\nb 1.5 17\n# EOF";
    let s = parse_exposition(ok);
    assert_eq!(value(&s, "a_total", &[("x", "1"), ("y", "q\"\n")]), 3.0);
    assert_eq!(value(&s, "b", &[]), 1.5);
    for bad in [
        "a_total{x=1} 3",
        "a_total{x=\"1\"}3",
        "a_total{x=\"1\" 3",
        "a_total{x=\"1\",x=\"2\"} 3",
        "a_total three",
        "a_total 3 4 5",
    ] {
        assert!(parse_sample(bad).is_err(), "{bad}");
    }
}

async fn scrape(http: &reqwest::Client, url: &str) -> (String, Vec<Sample>) {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.text().await.unwrap();
    let samples = parse_exposition(&text);
    (text, samples)
}

#[tokio::test]
async fn metrics_count_requests_tokens_failures_and_limits_on_their_own_listener() {
    let db = fresh_db();
    let served = Served::start(
        &db,
        &[
            ("OAUTH_METRICS_BIND", "127.0.0.1:0"),
            (
                "OAUTH_RATE_LIMITS__REGISTER_PER_IP",
                "{ requests = 1, window_secs = 3600 }",
            ),
        ],
    )
    .await;
    let base = served.url();
    let metrics = served.metrics_url();
    assert!(metrics.starts_with("http://127.0.0.1:") && metrics.ends_with("/metrics"));
    assert_ne!(metrics, format!("{base}/metrics"));
    let key = served.api_key.clone().expect("first start's API key");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let created: Value = http
        .post(format!("{base}/oauth_clients"))
        .bearer_auth(&key)
        .json(&serde_json::json!({
            "name": "Metrics client", "client_type": "confidential",
            "allowed_grant_types": ["client_credentials"], "allowed_scopes": ["admin"]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = created["data"]["client_id"].as_str().unwrap().to_owned();
    let secret = created["data"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let (_, before) = scrape(&http, &metrics).await;
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&before, "oauth_build_info", &[("version", version)]),
        1.0
    );

    // A token; a failed client authentication; a failed login; a 404 (and /metrics on the public
    // port is one); a refused registration.
    let token = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let access_token = token.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(&client_id, Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let login = http
        .post(format!("{base}/login"))
        .header("cookie", "oauth_login_csrf=abc123")
        .form(&[
            ("email", "admin@localhost"),
            ("password", "wrong password"),
            ("csrf_token", "abc123"),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 401, "a wrong password re-renders the form");
    let missing = http
        .get(format!("{base}/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let public = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "never on the public port");
    let registration = serde_json::json!({
        "client_name": "x", "redirect_uris": ["http://127.0.0.1:9/cb"],
        "token_endpoint_auth_method": "none"
    });
    for expected in [201, 429] {
        let r = http
            .post(format!("{base}/oauth/register"))
            .json(&registration)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected);
    }

    let (text, after) = scrape(&http, &metrics).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(
        delta(
            "oauth_tokens_issued_total",
            &[("grant_type", "client_credentials"), ("algorithm", "ES256")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        delta(
            "oauth_security_events_total",
            &[("kind", "client.authentication_failed")]
        ),
        1.0
    );
    assert_eq!(
        delta("oauth_security_events_total", &[("kind", "login.failed")]),
        1.0
    );
    assert_eq!(
        delta("oauth_rate_limited_total", &[("limit", "register_per_ip")]),
        1.0
    );
    let requests = |route: &str, method: &str, status: &str| {
        delta(
            "oauth_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(requests("/oauth/token", "POST", "200"), 1.0);
    assert_eq!(requests("/oauth/token", "POST", "401"), 1.0);
    assert_eq!(requests("/login", "POST", "401"), 1.0);
    assert_eq!(requests("unmatched", "GET", "404"), 2.0);
    assert_eq!(requests("/oauth/register", "POST", "201"), 1.0);
    assert_eq!(requests("/oauth/register", "POST", "429"), 1.0);
    // The latency histogram of the token route counted both token requests.
    assert_eq!(
        delta(
            "oauth_http_request_duration_seconds_count",
            &[("route", "/oauth/token"), ("method", "POST")]
        ),
        2.0
    );
    let age = value(&after, "oauth_signing_key_age_seconds", &[]);
    assert!((0.0..120.0).contains(&age), "{age}");
    // SQLite: the read connections, none busy between requests, and no pool bound.
    assert!(
        value(&after, "oauth_database_connections", &[("state", "idle")]) >= 1.0,
        "{text}"
    );
    assert_eq!(
        value(&after, "oauth_database_connections", &[("state", "in_use")]),
        0.0
    );
    assert_eq!(value(&after, "oauth_database_connections_max", &[]), 0.0);
    // Present at 0 while nothing failed.
    for class in ["unavailable", "invalid_input", "internal"] {
        let zero = after.iter().any(|s| {
            s.name == "oauth_database_errors_total"
                && s.labels.get("class").map(String::as_str) == Some(class)
                && s.value == 0.0
        });
        assert!(zero, "{class}: {text}");
    }

    // No label value holds an id, a secret, a token or an email address.
    for s in &after {
        for (k, v) in &s.labels {
            for secret_ish in [&client_id, &secret, &key, &access_token] {
                assert!(!v.contains(secret_ish.as_str()), "{k}={v}");
            }
            assert!(!v.contains('@'), "{k}={v}");
        }
    }
    assert!(!text.contains(&client_id) && !text.contains(&secret));
    served.stop().await;
}

/// On PostgreSQL the pool gauges show the pool: its bound, and connections that stay within it
/// through 30 requests at once.
#[tokio::test]
async fn metrics_show_the_postgres_pool() {
    let Some((url, _guard)) = db::postgres_url().await else {
        eprintln!("skipped: {} is not set", db::POSTGRES_ENV);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let served = Served::spawn(
        &["serve"],
        &[
            ("OAUTH_DATABASE_URL", url.as_str()),
            ("OAUTH_BIND", "127.0.0.1:0"),
            ("OAUTH_METRICS_BIND", "127.0.0.1:0"),
            (
                "OAUTH_KEY_ENCRYPTION_KEY",
                "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            ),
        ],
        dir.path(),
    )
    .await;
    let http = reqwest::Client::new();
    let (text, before) = scrape(&http, &served.metrics_url()).await;
    assert_eq!(
        value(&before, "oauth_database_connections_max", &[]),
        16.0,
        "{text}"
    );
    let open = |s: &[Sample]| {
        value(s, "oauth_database_connections", &[("state", "idle")])
            + value(s, "oauth_database_connections", &[("state", "in_use")])
    };
    assert!(open(&before) >= 1.0, "the migrations' connection: {text}");

    let key = served.api_key.clone().expect("first start's API key");
    let base = served.url();
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let request = http.get(format!("{base}/oauth_clients")).bearer_auth(&key);
        burst.spawn(async move { request.send().await.unwrap().status() });
    }
    while let Some(status) = burst.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let (text, after) = scrape(&http, &served.metrics_url()).await;
    assert!((1.0..=16.0).contains(&open(&after)), "{text}");
    served.stop().await;
}

/// Without the `otlp` feature, asking for trace export stops the server at start, saying how to
/// get a build that exports.
#[cfg(not(feature = "otlp"))]
#[test]
fn an_otlp_endpoint_needs_the_otlp_build() {
    let db = fresh_db();
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("OAUTH_DATABASE_URL", &db.url)
        .env("OAUTH_BIND", "127.0.0.1:0")
        .env("OAUTH_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .current_dir(db.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tracing.otlp_endpoint") && err.contains("--features otlp"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}

/// With the `otlp` feature (`cargo nextest run -p oauth-server --features otlp --test ops
/// otlp`): request spans reach an OTLP collector, children of the caller's `traceparent`, with
/// route templates and no secret.
#[cfg(feature = "otlp")]
#[tokio::test]
async fn otlp_exports_request_spans_under_the_callers_trace() {
    use std::sync::{Arc, Mutex};

    // A collector: OTLP/HTTP with JSON bodies, kept as they arrive.
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).expect("an OTLP JSON body");
                kept.lock().unwrap().push(v);
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let db = fresh_db();
    let served = Served::start(
        &db,
        &[
            ("OAUTH_OTLP_ENDPOINT", collector_url.as_str()),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    assert!(
        served.banner.contains(&format!("traces {collector_url}")),
        "{}",
        served.banner
    );
    let http = reqwest::Client::new();
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";
    let r = http
        .get(format!("{}/healthz", served.url()))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let secret = "hunter2-never-in-a-span";
    let r = http
        .post(format!(
            "{}/oauth/token?code=query-never-in-a-span",
            served.url()
        ))
        .basic_auth("no-such-client", Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A caller's "not sampled" flag does not keep its request out of the export.
    const UNSAMPLED: &str = "0af7651916cd43dd8448eb211c80319c";
    let r = http
        .get(format!("{}/readyz", served.url()))
        .header("traceparent", format!("00-{UNSAMPLED}-b7ad6b7169203331-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A failed sign-in: its security event is logged inside the request's span, without the
    // email address typed or the password.
    let form = http
        .get(format!("{}/login", served.url()))
        .send()
        .await
        .unwrap();
    let cookie = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = form.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the login form's CSRF token")
        .to_owned();
    let r = http
        .post(format!("{}/login", served.url()))
        .header("cookie", cookie)
        .form(&[
            ("email", "typed-email@never-in-a-span.example"),
            ("password", secret),
            ("csrf_token", csrf.as_str()),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Every exported span, with its resource's service name.
    let spans = |received: &[Value]| -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for batch in received {
            for rs in batch["resourceSpans"].as_array().unwrap() {
                let service = rs["resource"]["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["key"] == "service.name")
                    .map(|a| a["value"]["stringValue"].as_str().unwrap().to_owned())
                    .unwrap_or_default();
                for ss in rs["scopeSpans"].as_array().unwrap() {
                    for span in ss["spans"].as_array().unwrap() {
                        out.push((service.clone(), span.clone()));
                    }
                }
            }
        }
        out
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let exported = loop {
        let now = spans(&received.lock().unwrap());
        if now.len() >= 5 || tokio::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let attr = |span: &Value, key: &str| -> Option<String> {
        span["attributes"]
            .as_array()?
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| {
                let v = &a["value"];
                v["stringValue"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v["intValue"].to_string().trim_matches('"').to_owned())
            })
    };
    let by_name = |name: &str| {
        exported
            .iter()
            .find(|(_, s)| s["name"] == name)
            .unwrap_or_else(|| panic!("no span {name}: {exported:?}"))
            .clone()
    };
    let (service, health) = by_name("GET /healthz");
    assert_eq!(service, "oauth-server");
    assert_eq!(health["traceId"], TRACE, "the caller's trace");
    assert_eq!(
        health["parentSpanId"], PARENT,
        "a child of the caller's span"
    );
    assert_eq!(health["kind"], 2, "a server span");
    assert_eq!(attr(&health, "http.route").as_deref(), Some("/healthz"));
    assert_eq!(
        attr(&health, "http.response.status_code").as_deref(),
        Some("200")
    );

    let (_, ready) = by_name("GET /readyz");
    assert_eq!(
        ready["traceId"], UNSAMPLED,
        "exported, under the caller's trace"
    );
    let (_, token) = by_name("POST /oauth/token");
    assert_ne!(
        token["traceId"], TRACE,
        "no traceparent: a trace of its own"
    );
    assert!(
        token["parentSpanId"].as_str().unwrap_or("").is_empty(),
        "a root span: {token}"
    );
    assert_eq!(
        attr(&token, "http.response.status_code").as_deref(),
        Some("401")
    );
    let all = serde_json::to_string(&*received.lock().unwrap()).unwrap();
    // Client ids are not secrets (the audit log names them); secrets, codes in the query and
    // typed email addresses never leave the server.
    assert!(
        all.contains("client.authentication_failed"),
        "the event rides on the span"
    );
    assert!(all.contains("login.failed"), "{all}");
    for never in [secret, "query-never-in-a-span", "never-in-a-span.example"] {
        assert!(!all.contains(never), "{never} was exported");
    }
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// doctor

/// Runs `oauth-server doctor` with exactly `env` (and PATH); returns (success, stdout, stderr).
fn doctor(env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("doctor")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The line of the check `name`.
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l[5..].starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} line in {out}"))
}

/// A database URL parameter the PostgreSQL driver does not read (a password under another
/// name, say) is named by the configuration check, and its value is printed nowhere: not by
/// doctor, not by the driver's own warning.
#[test]
fn doctor_names_an_unread_database_parameter_without_its_value() {
    let url = "postgres://u@127.0.0.1:1/db?sslmode=disable&sslpassword=SECRET3&passwrd=SECRET4";
    for args in [&[][..], &["--json"][..]] {
        let (ok, out, err) = doctor(&[("OAUTH_DATABASE_URL", url), ("OAUTH_LOG", "trace")], args);
        assert!(!ok, "{out}");
        assert!(
            out.contains("sslpassword, passwrd"),
            "the configuration check names them: {out}"
        );
        for secret in ["SECRET3", "SECRET4"] {
            assert!(
                !out.contains(secret) && !err.contains(secret),
                "{out}\n{err}"
            );
        }
    }
}

#[tokio::test]
async fn doctor_passes_a_good_setup_and_names_what_is_broken() {
    let db = fresh_db();
    let served = Served::start(&db, &[]).await;
    let issuer = served.url();

    // The server as started, and this configuration: every check passes.
    let good = [
        ("OAUTH_DATABASE_URL", db.url.as_str()),
        ("OAUTH_ISSUER", issuer.as_str()),
    ];
    let (ok, out, err) = doctor(&good, &[]);
    assert!(ok, "{out}\n{err}");
    for name in [
        "issuer",
        "configuration",
        "key-encryption key",
        "database",
        "redis",
        "server",
        "clock",
        "authorization server metadata",
        "MCP: PKCE",
        "MCP: registration",
        "MCP: protected resource metadata",
        "JWK set",
    ] {
        assert!(line(&out, name).starts_with("ok   "), "{out}");
    }
    assert!(
        line(&out, "JWK set").contains("holds the signing key"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 12, "one line per check: {out}");
    let (ok, out, _) = doctor(&good, &["--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["checks"].as_array().unwrap().len(), 12);

    // A plain-http issuer on a public host.
    let (ok, out, err) = doctor(
        &[
            ("OAUTH_DATABASE_URL", db.url.as_str()),
            ("OAUTH_ISSUER", "http://auth.example.com"),
        ],
        &["--url", &issuer],
    );
    assert!(!ok);
    assert!(err.contains("checks failed"), "{err}");
    let l = line(&out, "issuer");
    assert!(
        l.starts_with("FAIL issuer: http://auth.example.com is plain http"),
        "{l}"
    );
    assert!(l.contains("fix: set OAUTH_ISSUER"), "{l}");

    // The public URL configured here is not the one the server says it is.
    let (ok, out, _) = doctor(
        &[
            ("OAUTH_DATABASE_URL", db.url.as_str()),
            ("OAUTH_ISSUER", "https://auth.example.com"),
        ],
        &["--url", &issuer],
    );
    assert!(!ok);
    assert!(line(&out, "issuer").starts_with("ok   "), "{out}");
    let l = line(&out, "authorization server metadata");
    assert!(
        l.starts_with("FAIL ")
            && l.contains(&format!("says its issuer is \"{issuer}\""))
            && l.contains("https://auth.example.com"),
        "{l}"
    );
    assert!(
        line(&out, "MCP: protected resource metadata").starts_with("FAIL "),
        "{out}"
    );
    // The JWK set is still reached (through --url) and holds the key.
    assert!(line(&out, "JWK set").starts_with("ok   "), "{out}");

    // No server there.
    let (ok, out, _) = doctor(
        &[
            ("OAUTH_DATABASE_URL", db.url.as_str()),
            ("OAUTH_ISSUER", "http://127.0.0.1:1"),
        ],
        &[],
    );
    assert!(!ok);
    let l = line(&out, "server");
    assert!(
        l.starts_with("FAIL server: cannot reach http://127.0.0.1:1/healthz"),
        "{l}"
    );
    assert!(l.contains("fix: start the server"), "{l}");
    assert!(
        !out.contains("JWK set"),
        "nothing more is asked of a server not reached"
    );

    // Rate limits in a Redis that does not answer.
    let (ok, out, _) = doctor(
        &[
            ("OAUTH_DATABASE_URL", db.url.as_str()),
            ("OAUTH_ISSUER", issuer.as_str()),
            ("OAUTH_RATE_LIMIT_BACKEND", "redis"),
            (
                "OAUTH_RATE_LIMIT_REDIS_URL",
                "redis://:sesame@127.0.0.1:1/0",
            ),
        ],
        &[],
    );
    assert!(!ok);
    let l = line(&out, "redis");
    assert!(
        l.starts_with("FAIL redis: redis://:***@127.0.0.1:1/0 does not answer"),
        "{l}"
    );
    assert!(l.contains("fix: check OAUTH_RATE_LIMIT_REDIS_URL"), "{l}");
    assert!(!out.contains("sesame"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("FAIL")).count(),
        1,
        "{out}"
    );

    // PostgreSQL without a key-encryption key (and no database there either).
    let (ok, out, _) = doctor(
        &[
            (
                "OAUTH_DATABASE_URL",
                "postgres://oauth:hunter2@127.0.0.1:1/oauth",
            ),
            ("OAUTH_ISSUER", issuer.as_str()),
        ],
        &[],
    );
    assert!(!ok);
    let l = line(&out, "key-encryption key");
    assert!(
        l.starts_with("FAIL key-encryption key: not set, and the database is PostgreSQL"),
        "{l}"
    );
    assert!(l.contains("OAUTH_KEY_ENCRYPTION_KEY"), "{l}");
    assert!(line(&out, "database").starts_with("FAIL "), "{out}");
    assert!(
        line(&out, "database connection")
            .starts_with("ok   database connection: TCP to 127.0.0.1 on this machine (sslmode="),
        "{out}"
    );
    assert!(
        !out.contains("hunter2"),
        "the password is never printed: {out}"
    );
    served.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The container files

/// The Dockerfile's instructions (continuation lines joined, comments dropped), in order.
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("{REPO}/Dockerfile")).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for l in text.lines() {
        let t = l.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                let (ins, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((ins.to_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// The instructions of the last stage (the image that ships).
fn final_stage() -> Vec<(String, String)> {
    let all = dockerfile();
    let last_from = all.iter().rposition(|(i, _)| i == "FROM").unwrap();
    all[last_from..].to_vec()
}

fn json_array(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("{args}: {e}"))
}

#[test]
fn the_dockerfile_builds_the_release_binary_and_runs_it_as_a_non_root_user() {
    let all = dockerfile();
    let runs: Vec<&str> = all
        .iter()
        .filter(|(i, _)| i == "RUN")
        .map(|(_, a)| a.as_str())
        .collect();
    assert!(
        runs.iter()
            .any(|r| r.contains("cargo build --release --locked -p oauth-server")),
        "{runs:?}"
    );
    assert_eq!(
        all.iter().filter(|(i, _)| i == "FROM").count(),
        2,
        "multi-stage"
    );
    let last = final_stage();
    let get = |ins: &str| {
        last.iter()
            .filter(|(i, _)| i == ins)
            .map(|(_, a)| a.clone())
            .collect::<Vec<_>>()
    };
    assert!(get("FROM")[0].starts_with("debian:bookworm-slim"));
    let user = get("USER");
    assert_eq!(user.len(), 1);
    assert!(
        !user[0].starts_with("root") && !user[0].starts_with('0'),
        "{user:?}"
    );
    assert_eq!(get("VOLUME"), ["[\"/data\"]"]);
    assert!(get("EXPOSE")[0].split(' ').any(|p| p == "8080"));
    assert!(get("HEALTHCHECK")[0].contains("/healthz"));
    assert_eq!(
        json_array(&get("ENTRYPOINT")[0]),
        ["/usr/local/bin/oauth-server"]
    );
    assert_eq!(json_array(&get("CMD")[0]), ["serve"]);
}

#[tokio::test]
async fn the_dockerfile_command_and_environment_serve_the_probes() {
    let last = final_stage();
    let mut env: Vec<(String, String)> = last
        .iter()
        .filter(|(i, _)| i == "ENV")
        .flat_map(|(_, a)| {
            a.split_whitespace()
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_owned(), v.to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["OAUTH_BIND", "OAUTH_DATABASE_URL", "OAUTH_LOG_FORMAT"]
    );
    // The image's /data is the volume; here a fresh directory. Its 0.0.0.0:8080 is a free
    // loopback port here, so that the test holds no public port and runs beside others.
    let data = tempfile::tempdir().unwrap();
    for (k, v) in &mut env {
        if k == "OAUTH_BIND" {
            assert_eq!(v, "0.0.0.0:8080");
            *v = "127.0.0.1:0".to_owned();
        }
        if k == "OAUTH_DATABASE_URL" {
            assert_eq!(v, "sqlite:///data/oauth.db");
            *v = v.replace("/data", &data.path().display().to_string());
        }
    }
    let entrypoint = json_array(&last.iter().find(|(i, _)| i == "ENTRYPOINT").unwrap().1);
    let cmd = json_array(&last.iter().find(|(i, _)| i == "CMD").unwrap().1);
    assert_eq!(
        entrypoint,
        ["/usr/local/bin/oauth-server"],
        "the binary under test"
    );
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let served = Served::spawn(&args, &env, data.path()).await;
    assert!(
        data.path().join("oauth.db").exists(),
        "the database is in the volume"
    );
    assert!(
        data.path().join("oauth.db.kek").exists(),
        "and its key file"
    );
    let http = reqwest::Client::new();
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let r = http
            .get(format!("{}{path}", served.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.json::<Value>().await.unwrap()["status"], status);
    }
    // The HEALTHCHECK's own command, pointed at this server, when curl is here.
    let check = last
        .iter()
        .find(|(i, _)| i == "HEALTHCHECK")
        .unwrap()
        .1
        .clone();
    let exec = json_array(check.split(" CMD ").nth(1).unwrap());
    if Command::new("curl").arg("--version").output().is_ok() {
        let args: Vec<String> = exec[1..]
            .iter()
            .map(|a| a.replace("127.0.0.1:8080", &served.addr))
            .collect();
        let status = Command::new(&exec[0]).args(&args).status().unwrap();
        assert!(status.success(), "{exec:?}");
    } else {
        eprintln!("curl is not installed: the HEALTHCHECK command itself was not run");
    }
    served.stop().await;
}

fn compose() -> yaml_rust2::Yaml {
    let text = std::fs::read_to_string(format!("{REPO}/compose.yaml")).unwrap();
    yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0)
}

fn env_of(service: &yaml_rust2::Yaml) -> BTreeMap<String, String> {
    service["environment"]
        .as_hash()
        .expect("environment as a mapping")
        .iter()
        .map(|(k, v)| {
            let v = match v {
                yaml_rust2::Yaml::String(s) => s.clone(),
                other => panic!("{k:?}: quote {other:?} so that it stays text"),
            };
            (k.as_str().unwrap().to_owned(), v)
        })
        .collect()
}

#[test]
fn compose_runs_two_instances_behind_one_issuer_on_shared_postgres_and_redis() {
    let doc = compose();
    let services = &doc["services"];
    let names: Vec<&str> = services
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(names, ["postgres", "redis", "oauth-1", "oauth-2", "proxy"]);
    let one = env_of(&services["oauth-1"]);
    let two = env_of(&services["oauth-2"]);
    assert_eq!(one, two, "both instances run one configuration");
    assert!(one["OAUTH_ISSUER"].contains("http://localhost:8080"));
    let db = &one["OAUTH_DATABASE_URL"];
    assert!(
        db.starts_with("postgres://oauth:${POSTGRES_PASSWORD")
            && db.ends_with("@postgres:5432/oauth?sslmode=disable"),
        "the compose network is trusted, and the URL says so (no warning at start): {db}"
    );
    assert_eq!(one["OAUTH_RATE_LIMIT_BACKEND"], "redis");
    assert_eq!(one["OAUTH_RATE_LIMIT_REDIS_URL"], "redis://redis:6379/0");
    assert_eq!(one["OAUTH_MAX_CONNECTIONS_PER_IP"], "0", "behind the proxy");
    // The per-address limits go by the caller's address as the proxy forwards it: the private
    // networks where compose puts the proxy are trusted, and nothing wider.
    let listed: toml::Value = format!("v = {}", one["OAUTH_TRUSTED_PROXIES"])
        .parse()
        .unwrap();
    let listed: Vec<String> = listed["v"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let proxies = oauth_server::peer::TrustedProxies::parse(&listed).unwrap();
    assert!(!proxies.trusts_a_wide_network(), "{listed:?}");
    assert_eq!(
        listed,
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"]
    );
    assert_eq!(one["OAUTH_METRICS_BIND"], "0.0.0.0:9464");
    // The key-encryption key comes from the operator's environment (.env), required, never
    // written in the file.
    let kek = &one["OAUTH_KEY_ENCRYPTION_KEY"];
    assert!(kek.starts_with("${OAUTH_KEY_ENCRYPTION_KEY:?"), "{kek}");
    let pg = &services["postgres"]["environment"];
    assert!(pg["POSTGRES_PASSWORD"]
        .as_str()
        .unwrap()
        .starts_with("${POSTGRES_PASSWORD:?"));
    assert_eq!(pg["POSTGRES_USER"].as_str(), Some("oauth"));
    assert_eq!(pg["POSTGRES_DB"].as_str(), Some("oauth"));

    // Every service has a health check; the instances wait for a healthy database and Redis,
    // and the proxy for healthy instances.
    for name in &names[..4] {
        let test = &services[*name]["healthcheck"]["test"];
        assert!(test.as_vec().is_some_and(|t| !t.is_empty()), "{name}");
    }
    for name in ["oauth-1", "oauth-2"] {
        let s = &services[name];
        let probe = format!("{:?}", s["healthcheck"]["test"]);
        assert!(probe.contains("/readyz"), "{name}: {probe}");
        for dep in ["postgres", "redis"] {
            assert_eq!(
                s["depends_on"][dep]["condition"].as_str(),
                Some("service_healthy"),
                "{name} on {dep}"
            );
        }
        assert!(s["ports"].is_badvalue(), "{name} publishes no port");
        assert_eq!(s["image"].as_str(), Some("oauth-server:local"));
    }
    assert_eq!(services["oauth-1"]["build"].as_str(), Some("."));
    let proxy = &services["proxy"];
    let ports: Vec<&str> = proxy["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(ports, ["8080:8080"], "the one public port");
    for name in ["postgres", "redis"] {
        assert!(
            services[name]["ports"].is_badvalue(),
            "{name} is not published"
        );
    }
    // The proxy sends traffic to both instances, checking /readyz.
    let caddyfile = std::fs::read_to_string(format!("{REPO}/deploy/Caddyfile")).unwrap();
    assert!(caddyfile.contains("reverse_proxy oauth-1:8080 oauth-2:8080"));
    assert!(caddyfile.contains("health_uri /readyz"));
    let mount = proxy["volumes"][0].as_str().unwrap();
    assert!(mount.starts_with("./deploy/Caddyfile:/etc/caddy/Caddyfile"));
}

// ---------------------------------------------------------------------------------------------
// What the commands say

fn run(db: &Db, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OAUTH_DATABASE_URL", &db.url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn migrate_rotate_and_serve_say_what_they_do() {
    let db = fresh_db();
    let (ok, out, err) = run(&db, &["migrate"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("SQLite database migrated; ran 13:"),
        "{out}"
    );
    assert!(out.contains("\n  0001 accounts and clients"), "{out}");
    assert!(out.contains("\n  0007 trust and families"), "{out}");
    assert!(out.contains("\n  0008 registration access tokens"), "{out}");
    assert!(out.contains("\n  0009 client assertions"), "{out}");
    assert!(out.contains("\n  0010 grant installations"), "{out}");
    assert!(out.contains("\n  0011 login devices"), "{out}");
    assert!(out.contains("\n  0012 org client count"), "{out}");
    assert!(out.contains("\n  0013 code replays"), "{out}");
    let (ok, out, _) = run(&db, &["migrate"]);
    assert!(ok);
    assert_eq!(
        out.trim(),
        "SQLite database up to date (13 migrations applied before)"
    );

    let (ok, out, err) = run(&db, &["keys", "rotate"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("created signing key "), "{out}");
    assert!(out.contains("no previous key"), "{out}");
    let first = out.split(' ').nth(3).unwrap().to_owned();
    let (ok, out, _) = run(&db, &["keys", "rotate"]);
    assert!(ok);
    assert!(
        out.contains(&format!("previous keys {first} retire at ")),
        "{out}"
    );

    let served = Served::start(&db, &[]).await;
    let banner = &served.banner;
    assert!(
        banner.contains(&format!("(issuer http://{}", served.addr)),
        "{banner}"
    );
    assert!(banner.contains("database SQLite"), "{banner}");
    assert!(banner.contains("metrics off"), "{banner}");
    assert!(
        banner.contains(&format!("OpenAPI http://{}/openapi.json", served.addr)),
        "{banner}"
    );
    assert!(!banner.contains(&db.url), "{banner}");
    served.stop().await;
}
