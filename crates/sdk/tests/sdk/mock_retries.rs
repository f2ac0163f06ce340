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

/// An exchange of a code or a refresh token, and a consent decision, are sent again only when
/// the credential cannot have been spent: after a 429, never after a 502 or 503 (a gateway may
/// answer so after the server spent it; the second presentation would be a replay and revoke
/// the first one's tokens) nor after a timeout. A client_credentials request is retried as any.
#[tokio::test]
async fn one_time_credentials_are_not_sent_again_once_they_may_have_been_spent() {
    use telnyx_oauth::{CreateGrantRequest, GrantType, TokenRequest};
    let token = json!({"access_token": "at", "token_type": "Bearer", "expires_in": 3600});
    let exchanges = [
        TokenRequest::new(GrantType::AuthorizationCode)
            .code("the-code")
            .code_verifier("v")
            .redirect_uri("https://app.example/cb"),
        TokenRequest::new(GrantType::RefreshToken).refresh_token("the-refresh-token"),
    ];
    for params in &exchanges {
        for status in [502, 503, 500, 408] {
            let mock = Mock::scripted(vec![
                Reply::error(status, "server_error"),
                Reply::json(200, token.clone()),
            ])
            .await;
            let client = mock.client().build().unwrap();
            let err = client.oauth().token(params).await.unwrap_err();
            assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{err:?}");
            assert_eq!(mock.requests().len(), 1, "{status}: sent once");
        }
        let mock = Mock::scripted(vec![
            Reply::error(429, "rate_limited").header("retry-after-ms", "10"),
            Reply::json(200, token.clone()),
        ])
        .await;
        let client = mock.client().build().unwrap();
        client.oauth().token(params).await.unwrap();
        assert_eq!(retry_counts(&mock), ["0", "1"], "429 is retried");

        let mock = Mock::scripted(vec![
            Reply::json(200, token.clone()).after(Duration::from_secs(5))
        ])
        .await;
        let client = mock
            .client()
            .timeout(Duration::from_millis(150))
            .max_retries(2)
            .build()
            .unwrap();
        let err = client.oauth().token(params).await.unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err:?}");
        assert_eq!(mock.requests().len(), 1, "a timeout is not retried");
    }
    let mock = Mock::scripted(vec![
        Reply::error(502, "bad_gateway"),
        Reply::json(
            200,
            json!({"redirect_uri": "https://app.example/cb?code=c"}),
        ),
    ])
    .await;
    let client = mock.client().build().unwrap();
    let decision = CreateGrantRequest::new(true, "the-consent-token");
    client.oauth().grants(&decision).await.unwrap_err();
    assert_eq!(
        mock.requests().len(),
        1,
        "the consent decision is sent once"
    );

    let mock = Mock::scripted(vec![
        Reply::error(502, "bad_gateway"),
        Reply::json(200, token.clone()),
    ])
    .await;
    let client = mock.client().build().unwrap();
    let machine = TokenRequest::new(GrantType::ClientCredentials)
        .client_id("id")
        .client_secret("secret");
    client.oauth().token(&machine).await.unwrap();
    assert_eq!(
        retry_counts(&mock),
        ["0", "1"],
        "client_credentials is retried"
    );
}

/// A client's (or a registration's) secret is shown only in the answer to its creation: a
/// create the server may have done is not sent again, or a second client would be made and
/// the first one's secret lost with the answer. It is sent again when it cannot have been done.
#[tokio::test]
async fn a_create_is_not_sent_again_once_the_server_may_have_done_it() {
    use telnyx_oauth::{ClientType, CreateOAuthClient, GrantType, RegistrationRequest};
    let created = || Reply::json(201, json!({"data": client_json("c1", "one")}));
    let registered = || Reply::json(201, json!({"client_id": "r1", "client_id_issued_at": 1}));
    let create = CreateOAuthClient::new(
        "one",
        ClientType::Confidential,
        [GrantType::ClientCredentials],
        ["admin"],
    );
    let register = RegistrationRequest::new().client_name("app");
    for status in [502, 503, 500, 408, 409] {
        let mock = Mock::scripted(vec![Reply::error(status, "server_error"), created()]).await;
        let client = mock.client().build().unwrap();
        let err = client.oauth_clients().create(&create).await.unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{err:?}");
        assert_eq!(mock.requests().len(), 1, "{status}: create sent once");

        let mock = Mock::scripted(vec![Reply::error(status, "server_error"), registered()]).await;
        let client = mock.client().build().unwrap();
        let err = client.oauth().register(&register).await.unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{err:?}");
        assert_eq!(mock.requests().len(), 1, "{status}: registration sent once");
    }
    // A timeout: the server may have made it.
    let mock = Mock::scripted(vec![created().after(Duration::from_secs(5))]).await;
    let client = mock
        .client()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let err = client.oauth_clients().create(&create).await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert_eq!(
        mock.requests().len(),
        1,
        "a timed-out create is not sent again"
    );
    // 429 is answered before anything is done; the server may also say so itself.
    for first in [
        Reply::error(429, "rate_limited").header("retry-after-ms", "10"),
        Reply::error(503, "unavailable").header("x-should-retry", "true"),
    ] {
        let mock = Mock::scripted(vec![first, created()]).await;
        let client = mock.client().build().unwrap();
        let made = client.oauth_clients().create(&create).await.unwrap();
        assert_eq!(made.client_id, "c1");
        assert_eq!(retry_counts(&mock), ["0", "1"]);
    }
    // A read is retried as before.
    let mock = Mock::scripted(vec![Reply::error(503, "unavailable"), ok_client()]).await;
    let client = mock.client().build().unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    assert_eq!(retry_counts(&mock), ["0", "1"]);
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

/// Every call carries a credential (or gets a secret back): over plain http it crosses the
/// network in clear. Loopback is for development; elsewhere the caller must say the network
/// is trusted.
#[test]
fn a_plain_http_base_url_takes_loopback_or_consent() {
    for url in [
        "http://api.example.com/v2",
        "http://10.0.0.5:8080",
        "http://localhost.example.com",
    ] {
        let err = telnyx_oauth::Client::builder()
            .base_url(url)
            .api_key("KEY0123456789")
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("allow_plain_http")),
            "{url}: {err:?}"
        );
        telnyx_oauth::Client::builder()
            .base_url(url)
            .allow_plain_http(true)
            .build()
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
    }
    for url in [
        "http://127.0.0.1:8080/v2",
        "http://localhost:8080",
        "http://[::1]:8080",
        "https://api.example.com/v2",
    ] {
        telnyx_oauth::Client::builder()
            .base_url(url)
            .api_key("KEY0123456789")
            .build()
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
    }
}

#[test]
fn debug_output_never_shows_credentials() {
    let client = telnyx_oauth::Client::new("KEYsecret123").unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains("KEYsecret123"), "{shown}");
    let builder = telnyx_oauth::Client::builder().client_credentials("id", "s3cr3t");
    assert!(!format!("{builder:?}").contains("s3cr3t"));
    // The state that binds an authorization answer to the user's session, and the verifier.
    let pkce = telnyx_oauth::Pkce::new();
    let params = telnyx_oauth::AuthorizeParams::new("id", "https://app.example/cb")
        .state("STATE-SECRET")
        .pkce(&pkce);
    let shown = format!("{params:?} {pkce:?}");
    assert!(!shown.contains("STATE-SECRET"), "{shown}");
    assert!(!shown.contains(pkce.verifier()), "{shown}");
    assert!(shown.contains(pkce.challenge()), "{shown}");
    // The code in a consent decision's answer, the consent token in the authorize redirect,
    // and a call's own header values (a registration access token).
    let answer = telnyx_oauth::CreateGrantResponse {
        redirect_uri: "https://app.example/cb?code=CODE-SECRET&state=s".into(),
    };
    let shown = format!("{answer:?}");
    assert!(!shown.contains("CODE-SECRET"), "{shown}");
    assert!(shown.contains("https://app.example/cb?<hidden>"), "{shown}");
    let redirect = telnyx_oauth::AuthorizeRedirect {
        status: reqwest::StatusCode::FOUND,
        location: Some("/consent?consent_token=CONSENT-SECRET".into()),
    };
    let shown = format!("{redirect:?}");
    assert!(
        !shown.contains("CONSENT-SECRET") && shown.contains("/consent?"),
        "{shown}"
    );
    let options = telnyx_oauth::RequestOptions::new().header("Authorization", "Bearer RAT-SECRET");
    let shown = format!("{options:?}");
    assert!(
        !shown.contains("RAT-SECRET") && shown.contains("Authorization"),
        "{shown}"
    );
}

/// A cookie an error answer sets stays out of the error's debug output.
#[tokio::test]
async fn an_errors_debug_output_hides_the_cookies_it_was_sent() {
    let mock = Mock::scripted(vec![
        Reply::error(401, "unauthorized").header("set-cookie", "session=COOKIE-SECRET")
    ])
    .await;
    let client = mock.client().build().unwrap();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    let shown = format!("{err:?} {err}");
    assert!(!shown.contains("COOKIE-SECRET"), "{shown}");
    assert!(err.api_error().unwrap().headers.contains_key("set-cookie"));
}

/// The headers of a successful answer (`with_raw_response`) keep the values of a redirect's
/// `Location` (a code or a consent token in its query) and of the cookies it sets out of debug
/// output, and still give them to `get`.
#[tokio::test]
async fn a_responses_debug_output_hides_its_location_and_cookies() {
    let mock = Mock::scripted(vec![Reply::empty(302)
        .header(
            "location",
            "https://app.example/cb?code=CODE-SECRET&state=s",
        )
        .header("content-location", "/consent?consent_token=CT-SECRET")
        .header("set-cookie", "sid=COOKIE-SECRET")
        .header("x-request-id", "req-1")])
    .await;
    let client = mock.client().build().unwrap();
    let response = client
        .oauth()
        .retrieve_authorize(&telnyx_oauth::AuthorizeParams::new(
            "c1",
            "https://app.example/cb",
        ))
        .with_raw_response()
        .await
        .unwrap();
    let shown = format!("{response:?}");
    for secret in ["CODE-SECRET", "CT-SECRET", "COOKIE-SECRET"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("req-1"), "{shown}");
    assert_eq!(
        response.headers.get("location").unwrap(),
        "https://app.example/cb?code=CODE-SECRET&state=s"
    );
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

/// A caller's HTTP client that follows redirects: the answer from the other URL is refused, not
/// taken for the token it carries.
#[tokio::test]
async fn an_answer_from_a_url_the_call_did_not_name_is_refused() {
    use telnyx_oauth::{GrantType, TokenRequest};
    let elsewhere = Mock::scripted(vec![Reply::json(
        200,
        json!({"access_token": "FROM-ELSEWHERE", "token_type": "Bearer", "expires_in": 3600}),
    )])
    .await;
    let target = format!("{}/oauth/token", elsewhere.url);
    let mock = Mock::scripted(vec![Reply {
        status: 307,
        headers: vec![("location".into(), target)],
        body: String::new(),
        delay: None,
    }])
    .await;
    let client = mock
        .client()
        .http_client(reqwest::Client::new())
        .build()
        .unwrap();
    let machine = TokenRequest::new(GrantType::ClientCredentials)
        .client_id("id")
        .client_secret("secret");
    let err = client.oauth().token(&machine).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("followed a redirect"), "{err}");
    assert_eq!(mock.requests().len(), 1, "not retried");
}
