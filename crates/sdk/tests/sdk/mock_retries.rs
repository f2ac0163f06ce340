//! Retries, timeouts and error classes against the scripted server.

use std::time::{Duration, Instant};

use serde_json::json;
use telnyx_oauth::Error;

use crate::mock::{client_json, Mock, Reply};

fn ok_client() -> Reply {
    Reply::json(200, json!({"data": client_json("c1", "one")}))
}

fn retry_counts(mock: &Mock) -> Vec<String> {
    mock.requests()
        .iter()
        .map(|r| {
            r.header("x-stainless-retry-count")
                .unwrap_or("-")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn retry_after_ms_is_honoured_and_the_retry_count_increments() {
    let mock = Mock::scripted(vec![
        Reply::error(503, "temporarily_unavailable").header("retry-after-ms", "300"),
        ok_client(),
    ])
    .await;
    let client = mock.client().build().unwrap();
    let started = Instant::now();
    let found = client.oauth_clients().retrieve("c1").await.unwrap();
    let waited = started.elapsed();
    assert_eq!(found.client_id, "c1");
    // The backoff is configured to at most 5 ms, so the 300 ms came from the header.
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(retry_counts(&mock), ["0", "1"]);
}

#[tokio::test]
async fn retry_after_seconds_is_honoured_on_429() {
    // A fractional value keeps the test short; integer seconds go through the same parser.
    let mock = Mock::scripted(vec![
        Reply::error(429, "rate_limited").header("retry-after", "0.25"),
        ok_client(),
    ])
    .await;
    let client = mock.client().build().unwrap();
    let started = Instant::now();
    client.oauth_clients().retrieve("c1").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn retry_after_beyond_sixty_seconds_falls_back_to_backoff() {
    let mock = Mock::scripted(vec![
        Reply::error(503, "temporarily_unavailable").header("retry-after", "3600"),
        ok_client(),
    ])
    .await;
    let client = mock.client().build().unwrap();
    let started = Instant::now();
    client.oauth_clients().retrieve("c1").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn x_should_retry_false_is_final() {
    let mock = Mock::scripted(vec![
        Reply::error(409, "conflict").header("x-should-retry", "false"),
        ok_client(),
    ])
    .await;
    let client = mock.client().build().unwrap();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    let Error::Conflict(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status.as_u16(), 409);
    assert_eq!(api.headers["x-should-retry"], "false");
    assert_eq!(api.body.as_ref().unwrap().error, "conflict");
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn x_should_retry_true_forces_a_retry_of_a_final_status() {
    let mock = Mock::scripted(vec![
        Reply::error(400, "invalid_request").header("x-should-retry", "true"),
        ok_client(),
    ])
    .await;
    let client = mock.client().build().unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    assert_eq!(retry_counts(&mock), ["0", "1"]);
}

#[tokio::test]
async fn the_retry_limit_is_respected() {
    let mock = Mock::scripted(vec![Reply::error(500, "server_error")]).await;
    let client = mock.client().max_retries(3).build().unwrap();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert!(matches!(err, Error::InternalServer(_)), "{err:?}");
    assert_eq!(err.body().unwrap().error, "server_error");
    assert_eq!(retry_counts(&mock), ["0", "1", "2", "3"]);

    let mock = Mock::scripted(vec![Reply::error(500, "server_error")]).await;
    let client = mock.client().build().unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert_eq!(mock.requests().len(), 3, "two retries by default");

    let mock = Mock::scripted(vec![Reply::error(500, "server_error")]).await;
    let client = mock.client().max_retries(0).build().unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert_eq!(mock.requests().len(), 1);
}

/// Each status answers with its own class; 408, 409, 429 and 5xx are retried, the rest not.
#[tokio::test]
async fn statuses_map_to_error_classes_and_only_transient_ones_are_retried() {
    // The status to answer is the id asked for.
    let mock = Mock::start(|req, _| {
        let status: u16 = req.path.rsplit('/').next().unwrap().parse().unwrap();
        Reply::error(status, "scripted")
    })
    .await;
    let client = mock.client().max_retries(1).build().unwrap();
    type IsClass = fn(&Error) -> bool;
    let cases: &[(u16, IsClass, usize)] = &[
        (400, |e| matches!(e, Error::BadRequest(_)), 1),
        (401, |e| matches!(e, Error::Authentication(_)), 1),
        (403, |e| matches!(e, Error::PermissionDenied(_)), 1),
        (404, |e| matches!(e, Error::NotFound(_)), 1),
        (408, |e| matches!(e, Error::Status(_)), 2),
        (409, |e| matches!(e, Error::Conflict(_)), 2),
        (413, |e| matches!(e, Error::Status(_)), 1),
        (418, |e| matches!(e, Error::Status(_)), 1),
        (422, |e| matches!(e, Error::UnprocessableEntity(_)), 1),
        (429, |e| matches!(e, Error::RateLimit(_)), 2),
        (500, |e| matches!(e, Error::InternalServer(_)), 2),
        (503, |e| matches!(e, Error::InternalServer(_)), 2),
    ];
    for (status, is_class, attempts) in cases {
        let before = mock.requests().len();
        let err = client
            .oauth_clients()
            .retrieve(&status.to_string())
            .await
            .unwrap_err();
        assert!(is_class(&err), "{status}: {err:?}");
        assert_eq!(err.status().unwrap().as_u16(), *status);
        assert_eq!(err.body().unwrap().error, "scripted");
        assert_eq!(
            mock.requests().len() - before,
            *attempts,
            "attempts for {status}"
        );
    }
}

#[tokio::test]
async fn a_timeout_is_the_timeout_error_after_the_retries() {
    let mock = Mock::scripted(vec![ok_client().after(Duration::from_secs(5))]).await;
    let client = mock
        .client()
        .timeout(Duration::from_millis(150))
        .max_retries(1)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(retry_counts(&mock), ["0", "1"]);
}

#[tokio::test]
async fn a_refused_connection_is_the_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = telnyx_oauth::Client::builder()
        .base_url(format!("http://{addr}"))
        .retry_backoff(Duration::from_millis(1), Duration::from_millis(1))
        .build()
        .unwrap();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
    assert!(err.status().is_none());
}

#[tokio::test]
async fn a_success_with_an_unexpected_body_is_the_decode_error() {
    let mock = Mock::scripted(vec![Reply::json(200, json!({"data": {"id": 1}}))]).await;
    let err = mock
        .client()
        .build()
        .unwrap()
        .oauth_clients()
        .retrieve("c1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn every_request_carries_the_sdk_headers_and_the_configured_ones() {
    let mock = Mock::scripted(vec![ok_client()]).await;
    let client = mock
        .client()
        .default_header("x-tenant", "blue")
        .build()
        .unwrap();
    client.oauth_clients().retrieve("c?1 2").await.unwrap();
    let r = &mock.requests()[0];
    assert_eq!(r.method, "GET");
    // The id is one percent-encoded path segment.
    assert_eq!(r.path, "/oauth_clients/c%3F1%202");
    assert_eq!(r.header("authorization"), Some("Bearer KEYtest"));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert_eq!(
        r.header("user-agent"),
        Some(concat!("telnyx-oauth-rust/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(r.header("x-stainless-lang"), Some("rust"));
    assert_eq!(
        r.header("x-stainless-package-version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
    // The platform in the official SDKs' words, not Rust's (`linux`, `x86_64`).
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        assert_eq!(r.header("x-stainless-os"), Some("Linux"));
        assert_eq!(r.header("x-stainless-arch"), Some("x64"));
    }
    assert_eq!(r.header("x-stainless-runtime"), Some("rust"));
    let runtime_version = r.header("x-stainless-runtime-version").unwrap();
    assert!(
        runtime_version.starts_with(|c: char| c.is_ascii_digit()),
        "{runtime_version}"
    );
    assert_eq!(r.header("x-stainless-retry-count"), Some("0"));
    assert_eq!(r.header("x-tenant"), Some("blue"));
    assert!(r.header("idempotency-key").is_none());
}

#[tokio::test]
async fn without_credentials_requests_go_out_without_authorization() {
    let mock = Mock::scripted(vec![ok_client()]).await;
    let client = telnyx_oauth::Client::builder()
        .base_url(&mock.url)
        .build()
        .unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    assert!(mock.requests()[0].header("authorization").is_none());
}

#[test]
fn a_bad_base_url_is_a_configuration_error() {
    for url in ["not a url", "ftp://example.com", "mailto:x@example.com"] {
        let err = telnyx_oauth::Client::builder()
            .base_url(url)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{url}: {err:?}");
    }
}

#[test]
fn debug_output_never_shows_credentials() {
    let client = telnyx_oauth::Client::new("KEYsecret123").unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains("KEYsecret123"), "{shown}");
    let builder = telnyx_oauth::Client::builder().client_credentials("id", "s3cr3t");
    assert!(!format!("{builder:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn a_callers_http_client_carries_the_sdk_headers_and_timeout() {
    let mut defaults = reqwest::header::HeaderMap::new();
    defaults.insert("x-from-the-caller", "yes".parse().unwrap());
    let http = reqwest::Client::builder()
        .default_headers(defaults)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mock = Mock::scripted(vec![
        ok_client(),
        ok_client().after(Duration::from_millis(800)),
    ])
    .await;
    let client = mock
        .client()
        .http_client(http)
        .timeout(Duration::from_millis(200))
        .max_retries(0)
        .build()
        .unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    let first = &mock.requests()[0];
    assert_eq!(first.header("x-from-the-caller"), Some("yes"));
    assert_eq!(
        first.header("user-agent"),
        Some(concat!("telnyx-oauth-rust/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(first.header("authorization"), Some("Bearer KEYtest"));
    // The SDK's timeout applies to the caller's client too.
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
}
