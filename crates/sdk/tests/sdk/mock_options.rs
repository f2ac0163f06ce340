//! Per-call options, raw responses, logging, and body read failures, against scripted servers:
//! these are the network's behaviours (slow answers, cut connections), not the server's.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use telnyx_oauth::{Error, RequestOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::mock::{client_json, Mock, Reply};

fn ok_client() -> Reply {
    Reply::json(200, json!({"data": client_json("c1", "one")}))
}

#[tokio::test]
async fn a_per_call_timeout_applies_to_that_call_only() {
    let mock = Mock::scripted(vec![ok_client().after(Duration::from_millis(600))]).await;
    let client = mock.client().max_retries(0).build().unwrap();

    let started = Instant::now();
    let err = client
        .oauth_clients()
        .retrieve("c1")
        .timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(550));

    // The next call has the client's 60 s timeout again and waits for the slow answer.
    let found = client.oauth_clients().retrieve("c1").await.unwrap();
    assert_eq!(found.client_id, "c1");
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn per_call_max_retries_overrides_the_clients() {
    let mock = Mock::scripted(vec![Reply::error(503, "temporarily_unavailable")]).await;
    let client = mock.client().max_retries(3).build().unwrap();

    let err = client
        .oauth_clients()
        .retrieve("c1")
        .max_retries(0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InternalServer(_)), "{err:?}");
    assert_eq!(mock.requests().len(), 1);

    let err = client
        .oauth_clients()
        .retrieve("c1")
        .with_options(RequestOptions::new().max_retries(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InternalServer(_)), "{err:?}");
    assert_eq!(mock.requests().len(), 3);

    // Without options the client's three retries hold.
    client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert_eq!(mock.requests().len(), 7);
}

#[tokio::test]
async fn client_with_options_applies_to_every_call_and_calls_override_it() {
    let mock = Mock::scripted(vec![Reply::error(503, "temporarily_unavailable")]).await;
    let client = mock.client().max_retries(3).build().unwrap();
    let once = client.with_options(
        RequestOptions::new()
            .max_retries(0)
            .header("x-job", "nightly"),
    );

    once.oauth_clients().retrieve("c1").await.unwrap_err();
    once.oauth_grants().retrieve("g1").await.unwrap_err();
    assert_eq!(mock.requests().len(), 2);
    // The call's own option wins over the client's.
    once.oauth_clients()
        .retrieve("c1")
        .max_retries(1)
        .await
        .unwrap_err();
    assert_eq!(mock.requests().len(), 4);
    assert!(mock
        .requests()
        .iter()
        .all(|r| r.header("x-job") == Some("nightly")));
    // The original client is unchanged.
    client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert_eq!(mock.requests().len(), 8);
    assert_eq!(mock.requests()[7].header("x-job"), None);
}

#[tokio::test]
async fn per_call_headers_are_sent_with_that_call_only_and_win() {
    let mock = Mock::scripted(vec![ok_client()]).await;
    let client = mock
        .client()
        .default_header("x-source", "default")
        .build()
        .unwrap();

    client
        .oauth_clients()
        .retrieve("c1")
        .header("x-trace-id", "abc123")
        .header("x-source", "call")
        .header("user-agent", "my-app/1.0")
        .await
        .unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();

    let requests = mock.requests();
    assert_eq!(requests[0].header("x-trace-id"), Some("abc123"));
    assert_eq!(requests[0].header("x-source"), Some("call"));
    assert_eq!(requests[0].header("user-agent"), Some("my-app/1.0"));
    assert_eq!(requests[0].headers.get_all("x-source").iter().count(), 1);
    assert_eq!(requests[1].header("x-trace-id"), None);
    assert_eq!(requests[1].header("x-source"), Some("default"));
    assert!(requests[1]
        .header("user-agent")
        .unwrap()
        .starts_with("telnyx-oauth-rust/"));
}

#[tokio::test]
async fn an_invalid_per_call_header_sends_nothing() {
    let mock = Mock::scripted(vec![ok_client()]).await;
    let client = mock.client().build().unwrap();
    for (name, value) in [("bad header", "v"), ("x-ok", "line\nbreak")] {
        let err = client
            .oauth_clients()
            .retrieve("c1")
            .header(name, value)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn the_raw_response_carries_status_and_headers_next_to_the_data() {
    let mock = Mock::start(|r, _| match r.method.as_str() {
        "DELETE" => Reply::empty(204).header("x-request-id", "req-del"),
        _ => ok_client().header("x-request-id", "req-1"),
    })
    .await;
    let client = mock.client().build().unwrap();

    let response = client
        .oauth_clients()
        .retrieve("c1")
        .with_raw_response()
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["x-request-id"], "req-1");
    assert_eq!(response.headers["content-type"], "application/json");
    assert_eq!(response.data.client_id, "c1");
    assert_eq!(response.into_data().name, "one");

    let deleted = client
        .oauth_clients()
        .delete("c1")
        .header("x-why", "cleanup")
        .with_raw_response()
        .await
        .unwrap();
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.headers["x-request-id"], "req-del");
    assert_eq!(mock.requests()[1].header("x-why"), Some("cleanup"));
}

#[tokio::test]
async fn an_invalid_id_fails_the_raw_call_too_and_sends_nothing() {
    let mock = Mock::scripted(vec![ok_client()]).await;
    let client = mock.client().build().unwrap();
    let err = client
        .oauth_clients()
        .retrieve("..")
        .with_raw_response()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidParameter(_)), "{err:?}");
    assert!(mock.requests().is_empty());
}

/// A client-credentials call whose token fetch is retried: each request counts its own attempts.
#[tokio::test]
async fn the_retry_count_of_a_call_does_not_include_its_token_fetch() {
    let mock = Mock::start(|r, n| match (r.path.as_str(), n) {
        ("/oauth/token", 0) => Reply::error(503, "temporarily_unavailable"),
        ("/oauth/token", _) => Reply::json(
            200,
            json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600}),
        ),
        (_, 2) => Reply::error(503, "temporarily_unavailable"),
        _ => ok_client(),
    })
    .await;
    let client = telnyx_oauth::Client::builder()
        .client_credentials("id", "secret")
        .base_url(&mock.url)
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .build()
        .unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    let counts: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.path,
                r.header("x-stainless-retry-count").unwrap()
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            "/oauth/token 0",
            "/oauth/token 1",
            "/oauth_clients/c1 0",
            "/oauth_clients/c1 1",
            // The second call starts from 0 again.
            "/oauth_clients/c1 0",
        ]
    );
}

/// A server on 127.0.0.1 that answers the first `cut` connections with the headers of a 200 and
/// a body cut short (the connection closes before `Content-Length` bytes came), and the others
/// in full. It returns its URL and each request's head.
async fn cutting_server(cut: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let log = heads.clone();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => head.extend_from_slice(&buf[..k]),
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let body = json!({"data": client_json("c1", "one")}).to_string();
            let reply = if n < cut {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
                    body.len(),
                    &body[..10]
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = socket.write_all(reply.as_bytes()).await;
            let _ = socket.flush().await;
            drop(socket);
        }
    });
    (url, heads)
}

fn retry_count(head: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-stainless-retry-count")
            .then(|| v.trim().to_owned())
    })
}

#[tokio::test]
async fn a_body_cut_short_is_retried_like_a_connection_failure() {
    let (url, heads) = cutting_server(2).await;
    let client = telnyx_oauth::Client::builder()
        .api_key("KEYtest")
        .base_url(&url)
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .build()
        .unwrap();
    let found = client.oauth_clients().retrieve("c1").await.unwrap();
    assert_eq!(found.client_id, "c1");
    let counts: Vec<_> = heads
        .lock()
        .unwrap()
        .iter()
        .map(|h| retry_count(h))
        .collect();
    assert_eq!(
        counts,
        [
            Some("0".to_owned()),
            Some("1".to_owned()),
            Some("2".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_body_cut_short_on_the_last_attempt_is_the_connection_error() {
    let (url, heads) = cutting_server(usize::MAX).await;
    let client = telnyx_oauth::Client::builder()
        .api_key("KEYtest")
        .base_url(&url)
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .max_retries(1)
        .build()
        .unwrap();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
    assert_eq!(heads.lock().unwrap().len(), 2);
}

/// Log lines written by the SDK's `tracing` spans and events.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn each_request_has_a_span_with_the_path_template_status_and_retries() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("telnyx_oauth=debug")
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread test runtime: every poll of the calls below happens on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let secret_id = "c1-a3f9e7-private";
    let mock = Mock::scripted(vec![
        Reply::error(503, "temporarily_unavailable").header("retry-after-ms", "20"),
        ok_client(),
    ])
    .await;
    let client = mock.client().api_key("KEYsecret-value").build().unwrap();
    client.oauth_clients().retrieve(secret_id).await.unwrap();

    let log = captured.text();
    let lines: Vec<&str> = log.lines().collect();
    let retry = lines
        .iter()
        .find(|l| l.contains("retrying the request"))
        .unwrap_or_else(|| panic!("no retry event in {log}"));
    assert!(retry.contains("retry=1"), "{retry}");
    assert!(retry.contains("reason=\"status\""), "{retry}");
    assert!(retry.contains("delay_ms=20"), "{retry}");
    assert!(
        retry.contains(r#"telnyx_oauth.request{method=GET path="/oauth_clients/{id}""#),
        "{retry}"
    );
    let close = lines
        .iter()
        .find(|l| l.contains("close"))
        .unwrap_or_else(|| panic!("no span close in {log}"));
    assert!(close.contains(r#"path="/oauth_clients/{id}""#), "{close}");
    assert!(close.contains("status=200"), "{close}");
    assert!(close.contains("retries=1"), "{close}");
    // Never the id, the key or the URL.
    assert!(!log.contains(secret_id), "{log}");
    assert!(!log.contains("KEYsecret-value"), "{log}");
    assert!(!log.contains(&mock.url), "{log}");
}
