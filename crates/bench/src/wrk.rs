//! `--wrk`: the load comes from [wrk](https://github.com/wg/wrk) instead of the harness's own
//! generator, so that a figure can be checked with a load generator that is not ours. wrk sends
//! one fixed request over and over (a Lua script sets its method, headers and body), so only
//! scenarios whose operation is always the same request run under it; flows and requests that
//! change from one to the next (a new client name, the next page) are skipped.
//!
//! The script checks every response as the harness does (status and a fragment of the body) and
//! prints one line at the end that [`parse_summary`] reads. wrk runs with one thread on the load
//! generator's CPUs (it inherits the harness's pinning), a warm-up run first, then the measured
//! run; the server's CPU is sampled when the measured run starts and when it ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::load::{LoadOutcome, Window};

/// The one request an operation repeats, as wrk sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedRequest {
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Header names and values, the `Host` header left to wrk.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
    pub status: StatusCode,
    pub body_contains: Option<String>,
}

/// Why a scenario did not run under wrk (its outcome is "skipped", not an error).
#[derive(Debug)]
pub struct NotFixed;

impl std::fmt::Display for NotFixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "wrk sends one fixed request; this scenario is a flow or its requests differ from one another",
        )
    }
}

impl std::error::Error for NotFixed {}

/// The marker of the script's summary line.
const SUMMARY: &str = "oauth-bench-wrk";

/// A Lua string literal holding `bytes` exactly: every byte that is not a letter or a digit is
/// written as a three-digit decimal escape, so no quote, backslash, bracket or line break of the
/// value can end the literal.
pub fn lua_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2 + 2);
    out.push('"');
    for &b in bytes {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\{b:03}"));
        }
    }
    out.push('"');
    out
}

/// The wrk script for `req`: the request, a check of every response, and a summary line.
pub fn script(req: &FixedRequest) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "wrk.method = {}\nwrk.path = {}\nwrk.body = {}\n",
        lua_string(req.method.as_str().as_bytes()),
        lua_string(req.path.as_bytes()),
        lua_string(&req.body),
    ));
    for (name, value) in &req.headers {
        s.push_str(&format!(
            "wrk.headers[{}] = {}\n",
            lua_string(name.as_bytes()),
            lua_string(value)
        ));
    }
    s.push_str(&format!(
        "local expected_status = {}\nlocal fragment = {}\n",
        req.status.as_u16(),
        match &req.body_contains {
            Some(f) => lua_string(f.as_bytes()),
            None => "nil".to_owned(),
        }
    ));
    s.push_str(&format!(
        r#"local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  failed = 0
  checked = 0
  sample = ""
end
function response(status, headers, body)
  checked = checked + 1
  if status ~= expected_status or (fragment ~= nil and not string.find(body, fragment, 1, true)) then
    failed = failed + 1
    if sample == "" then
      sample = "status " .. status .. ": " .. string.sub(body, 1, 200)
    end
  end
end
function done(summary, latency, requests)
  local failed_total = 0
  local checked_total = 0
  local first = ""
  for _, t in ipairs(threads) do
    failed_total = failed_total + t:get("failed")
    checked_total = checked_total + t:get("checked")
    if first == "" then first = t:get("sample") end
  end
  local e = summary.errors
  io.write(string.format("{SUMMARY} requests=%d checked=%d duration_us=%d failed=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, checked_total, summary.duration, failed_total, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
  io.write("{SUMMARY}-sample " .. string.gsub(first, "\n", " ") .. "\n")
end
"#
    ));
    s
}

/// What the script's summary line says.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub requests: u64,
    /// Responses the script checked (every one, unless the script did not run).
    pub checked: u64,
    pub duration: Duration,
    /// Responses that failed the check.
    pub failed: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// The first failed response, shortened.
    pub sample: Option<String>,
}

impl Summary {
    /// Failed checks, socket errors and timeouts, and any response the script did not check.
    pub fn errors(&self) -> u64 {
        self.failed + self.socket_errors + self.requests.saturating_sub(self.checked)
    }
}

/// Reads the script's summary line from wrk's output.
pub fn parse_summary(stdout: &str) -> anyhow::Result<Summary> {
    let prefix = format!("{SUMMARY} ");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .context("wrk printed no summary line (did the script run?)")?;
    let mut fields = std::collections::HashMap::new();
    for pair in line.split_whitespace() {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("summary field {pair:?}"))?;
        let v: u64 = v
            .parse()
            .with_context(|| format!("summary field {pair:?}"))?;
        fields.insert(k, v);
    }
    let field = |k: &str| {
        fields
            .get(k)
            .copied()
            .with_context(|| format!("wrk's summary has no {k}"))
    };
    let sample = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{SUMMARY}-sample ")))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(Summary {
        requests: field("requests")?,
        checked: field("checked")?,
        duration: Duration::from_micros(field("duration_us")?),
        failed: field("failed")?,
        socket_errors: field("socket_errors")?,
        p50_us: field("p50_us")?,
        p99_us: field("p99_us")?,
        sample,
    })
}

/// Whether wrk is on the path.
pub fn available() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs wrk against `url` with `req`: a warm-up run of `warmup` (at least a second: wrk counts
/// whole seconds), then the measured run of `duration`, the server's CPU sampled from wrk's start
/// to its exit (a few milliseconds more than wrk's own measured duration, which the throughput
/// is taken over).
pub async fn run(
    req: &FixedRequest,
    url: &str,
    dir: &Path,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    window: &mut dyn Window,
) -> anyhow::Result<LoadOutcome> {
    let script_path: PathBuf = dir.join("wrk.lua");
    std::fs::write(&script_path, script(req))
        .with_context(|| format!("writing {}", script_path.display()))?;
    let seconds = |d: Duration| d.as_secs().max(1);
    let measured_window = seconds(duration);
    // wrk counts an answer slower than this as an error; a request still unanswered when a run
    // ends is not counted at all, so the timeout is half the measured run (and a run that
    // completes nothing is an error of the harness's). Not shorter: node-oidc-provider's p99
    // under 64 connections reached 1.5 s, and in its first second (the warm-up, which has the
    // same timeout, so that a slow start is not an error) 0.8 s.
    let timeout = (measured_window / 2).max(1);
    let warm = wrk(url, &script_path, connections, seconds(warmup), timeout).await?;
    let child = spawn(url, &script_path, connections, measured_window, timeout)?;
    window.start();
    let out = child.wait_with_output().await.context("waiting for wrk")?;
    window.end();
    let measured = summary_of(out)?;
    let errors = warm.errors() + measured.errors();
    let error_samples = warm.sample.into_iter().chain(measured.sample).collect();
    Ok(LoadOutcome {
        ops: measured.requests,
        errors,
        error_samples,
        // wrk reports percentiles, not every latency: the two it reports stand for all.
        latencies_us: Vec::new(),
        window: measured.duration,
        percentiles_us: Some((measured.p50_us, measured.p99_us)),
    })
}

fn spawn(
    url: &str,
    script: &Path,
    connections: usize,
    seconds: u64,
    timeout: u64,
) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new("wrk")
        .arg("-t1")
        .arg(format!("--timeout={timeout}s"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(script)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running wrk (apt-get install wrk)")
}

async fn wrk(
    url: &str,
    script: &Path,
    connections: usize,
    seconds: u64,
    timeout: u64,
) -> anyhow::Result<Summary> {
    let out = spawn(url, script, connections, seconds, timeout)?
        .wait_with_output()
        .await
        .context("waiting for wrk")?;
    summary_of(out)
}

fn summary_of(out: std::process::Output) -> anyhow::Result<Summary> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_summary(&stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_strings_escape_everything_but_letters_and_digits() {
        assert_eq!(lua_string(b"ab1"), "\"ab1\"");
        let tricky = b"a\"b\\c]]\n\0=%";
        let s = lua_string(tricky);
        assert_eq!(s, "\"a\\034b\\092c\\093\\093\\010\\000\\061\\037\"");
        // Nothing between the quotes can end the literal.
        let inner = &s[1..s.len() - 1];
        assert!(inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '\\'));
        // A digit after an escape stays a digit: the escape always has three.
        assert_eq!(lua_string(b"=1"), "\"\\0611\"");
    }

    #[test]
    fn the_script_sets_the_request_and_checks_the_answer() {
        let req = FixedRequest {
            method: Method::POST,
            path: "/oauth/token".to_owned(),
            headers: vec![("content-type".to_owned(), b"text/x".to_vec())],
            body: Bytes::from_static(b"a=b"),
            status: StatusCode::OK,
            body_contains: Some("\"access_token\"".to_owned()),
        };
        let s = script(&req);
        assert!(s.contains(&format!("wrk.method = {}", lua_string(b"POST"))));
        assert!(s.contains(&format!("wrk.path = {}", lua_string(b"/oauth/token"))));
        assert!(s.contains(&format!("wrk.body = {}", lua_string(b"a=b"))));
        assert!(s.contains(&format!(
            "wrk.headers[{}] = {}",
            lua_string(b"content-type"),
            lua_string(b"text/x")
        )));
        assert!(s.contains("local expected_status = 200\n"));
        assert!(s.contains(&format!(
            "local fragment = {}\n",
            lua_string(b"\"access_token\"")
        )));
        let none = script(&FixedRequest {
            body_contains: None,
            ..req
        });
        assert!(none.contains("local fragment = nil\n"));
    }

    #[test]
    fn the_summary_line_is_read_and_a_missing_one_is_an_error() {
        let out = "Running 5s test\n  1 threads and 64 connections\n\
            oauth-bench-wrk requests=1200 checked=1199 duration_us=5000123 failed=2 socket_errors=1 p50_us=850 p99_us=2100\n\
            oauth-bench-wrk-sample status 401: {\"error\":\"invalid_client\"}\n";
        let s = parse_summary(out).unwrap();
        assert_eq!(
            s,
            Summary {
                requests: 1200,
                checked: 1199,
                duration: Duration::from_micros(5_000_123),
                failed: 2,
                socket_errors: 1,
                p50_us: 850,
                p99_us: 2100,
                sample: Some("status 401: {\"error\":\"invalid_client\"}".to_owned()),
            }
        );
        // Two failed, one socket error, one response not checked.
        assert_eq!(s.errors(), 4);
        let clean = "oauth-bench-wrk requests=1 checked=1 duration_us=1 failed=0 socket_errors=0 p50_us=1 p99_us=1\noauth-bench-wrk-sample \n";
        assert_eq!(parse_summary(clean).unwrap().sample, None);
        assert_eq!(parse_summary(clean).unwrap().errors(), 0);
        assert!(parse_summary("Running 5s test\n").is_err());
        assert!(parse_summary("oauth-bench-wrk requests=x").is_err());
        assert!(parse_summary("oauth-bench-wrk requests=1").is_err());
    }

    /// Counts the window's edges.
    #[derive(Default)]
    struct Edges(u32, u32);

    impl Window for Edges {
        fn start(&mut self) {
            self.0 += 1;
        }
        fn end(&mut self) {
            self.1 += 1;
        }
    }

    /// `app` served on a free loopback port: its base URL and the task serving it.
    async fn serve(app: axum::Router) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        (
            url,
            tokio::spawn(async move { axum::serve(listener, app).await }),
        )
    }

    /// The real wrk against a small server that answers `tok-yes` to the one right request and
    /// 400 to anything else: the script's check counts exactly the wrong answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrk_runs_the_script_and_counts_wrong_answers() {
        use axum::http::HeaderMap;
        async fn answer(headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
            let authorized = headers
                .get("authorization")
                .is_some_and(|v| v.as_bytes() == b"Basic eA==");
            if authorized && body.as_ref() == b"a=\"b\"&c=]]" {
                (StatusCode::OK, "tok-yes")
            } else {
                (StatusCode::BAD_REQUEST, "no")
            }
        }
        let (url, server) =
            serve(axum::Router::new().route("/t", axum::routing::post(answer))).await;
        let dir = tempfile::tempdir().unwrap();
        let right = FixedRequest {
            method: Method::POST,
            path: "/t".to_owned(),
            headers: vec![("authorization".to_owned(), b"Basic eA==".to_vec())],
            body: Bytes::from_static(b"a=\"b\"&c=]]"),
            status: StatusCode::OK,
            body_contains: Some("yes".to_owned()),
        };
        let run = |req: FixedRequest| {
            let (url, dir) = (url.clone(), dir.path().to_owned());
            async move {
                let mut edges = Edges::default();
                let second = Duration::from_secs(1);
                let outcome = run(&req, &url, &dir, 4, second, second, &mut edges)
                    .await
                    .unwrap();
                assert_eq!((edges.0, edges.1), (1, 1));
                outcome
            }
        };

        let ok = run(right.clone()).await;
        assert!(ok.ops > 100, "{} requests", ok.ops);
        assert_eq!(ok.errors, 0, "{:?}", ok.error_samples);
        assert!(ok.window >= Duration::from_millis(900));
        let (p50, p99) = ok.percentiles_us.unwrap();
        assert!(p50 > 0 && p50 <= p99);
        let absent = run(FixedRequest {
            body_contains: Some("absent".to_owned()),
            ..right.clone()
        })
        .await;
        // One sample from the warm-up, one from the measured run.
        assert_eq!(absent.error_samples, ["status 200: tok-yes"; 2]);

        // One wrk run's own counts: every response checked, exactly the wrong ones failed.
        let once = |req: FixedRequest| {
            let (url, path) = (url.clone(), dir.path().join("once.lua"));
            async move {
                std::fs::write(&path, script(&req)).unwrap();
                wrk(&url, &path, 4, 1, 1).await.unwrap()
            }
        };
        let good = once(right.clone()).await;
        assert!(good.requests > 100, "{good:?}");
        assert_eq!(
            (good.checked, good.failed, good.errors()),
            (good.requests, 0, 0)
        );
        assert_eq!(good.sample, None);
        let wrong_body = once(FixedRequest {
            body_contains: Some("absent".to_owned()),
            ..right.clone()
        })
        .await;
        assert!(wrong_body.requests > 100, "{wrong_body:?}");
        assert_eq!(
            (wrong_body.checked, wrong_body.failed),
            (wrong_body.requests, wrong_body.requests)
        );
        assert_eq!(wrong_body.sample.as_deref(), Some("status 200: tok-yes"));
        let unauthorized = once(FixedRequest {
            headers: Vec::new(),
            ..right
        })
        .await;
        assert!(unauthorized.requests > 100, "{unauthorized:?}");
        assert_eq!(
            (unauthorized.checked, unauthorized.failed),
            (unauthorized.requests, unauthorized.requests)
        );
        assert_eq!(unauthorized.sample.as_deref(), Some("status 400: no"));
        server.abort();
    }

    /// wrk counts an answer slower than its timeout as an error. The warm-up has the measured
    /// run's timeout: a server slow to start (node-oidc-provider's first second) is measured as
    /// slow, not failed, and an answer slower than the measured run's timeout is still an error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_warm_up_has_the_measured_runs_timeout() {
        async fn slow() -> &'static str {
            tokio::time::sleep(Duration::from_millis(1300)).await;
            "ok"
        }
        let (url, server) =
            serve(axum::Router::new().route("/slow", axum::routing::get(slow))).await;
        let dir = tempfile::tempdir().unwrap();
        let req = FixedRequest {
            method: Method::GET,
            path: "/slow".to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
            status: StatusCode::OK,
            body_contains: Some("ok".to_owned()),
        };
        let run_for = |measured: u64| {
            let (req, url, dir) = (req.clone(), url.clone(), dir.path().to_owned());
            async move {
                let mut edges = Edges::default();
                // A 2 s warm-up: the first answers (at 1.3 s) arrive within it.
                let (warmup, measured) = (Duration::from_secs(2), Duration::from_secs(measured));
                run(&req, &url, &dir, 2, warmup, measured, &mut edges)
                    .await
                    .unwrap()
            }
        };

        // A 4 s run: a 2 s timeout, in the warm-up too.
        let patient = run_for(4).await;
        assert!(patient.ops >= 2, "{} requests", patient.ops);
        assert_eq!(patient.errors, 0, "{:?}", patient.error_samples);
        // A 2 s run: a 1 s timeout, which every answer of both runs exceeds.
        let hasty = run_for(2).await;
        assert!(hasty.ops >= 2, "{} requests", hasty.ops);
        // More errors than measured answers: the warm-up's answers are errors too.
        assert!(hasty.errors > hasty.ops, "{} errors", hasty.errors);
        server.abort();
    }
}
