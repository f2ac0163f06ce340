//! Client-credentials mode: the token is fetched from the configured base URL, cached, renewed
//! 10 s before it expires, and replaced once when a request answers 401.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;
use telnyx_oauth::{BodyEncoding, Client, Error};

use crate::mock::{client_json, Mock, Recorded, Reply};

/// A token endpoint issuing `tok-1`, `tok-2`, ... with `expires_in`, and an API that accepts
/// only the tokens `accept` allows.
async fn token_server(
    expires_in: i64,
    accept: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> Mock {
    let issued = Arc::new(AtomicUsize::new(0));
    Mock::start(move |req: &Recorded, _| {
        if req.path.ends_with("/oauth/token") {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::json(
                200,
                json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": expires_in, "scope": "admin"}),
            );
        }
        let token = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("");
        if accept(token) {
            Reply::json(200, json!({"data": client_json("c1", "one")}))
        } else {
            Reply::error(401, "invalid_token")
        }
    })
    .await
}

fn cc_client(mock: &Mock, base_suffix: &str) -> telnyx_oauth::ClientBuilder {
    mock.client()
        .base_url(format!("{}{base_suffix}", mock.url))
        .client_credentials("my-client", "s3cr:et")
}

fn token_requests(mock: &Mock) -> Vec<Recorded> {
    mock.requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/oauth/token"))
        .collect()
}

fn api_tokens(mock: &Mock) -> Vec<String> {
    mock.requests()
        .iter()
        .filter(|r| !r.path.ends_with("/oauth/token"))
        .map(|r| r.header("authorization").unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn the_token_comes_from_the_configured_base_url_and_is_cached() {
    let mock = token_server(3600, |t| t == "tok-1").await;
    let client = cc_client(&mock, "/v2").build().unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    // Clones share the cache.
    client.clone().oauth_clients().retrieve("c1").await.unwrap();

    let tokens = token_requests(&mock);
    assert_eq!(tokens.len(), 1);
    let t = &tokens[0];
    assert_eq!(t.method, "POST");
    assert_eq!(t.path, "/v2/oauth/token");
    assert_eq!(
        t.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        t.form(),
        [("grant_type".to_owned(), "client_credentials".to_owned())]
    );
    // RFC 6749 §2.3.1: HTTP Basic over the form-urlencoded id and secret ("s3cr:et" -> "s3cr%3Aet").
    let expected = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "my-client:s3cr%3Aet"
        )
    );
    assert_eq!(t.header("authorization"), Some(expected.as_str()));
    assert_eq!(api_tokens(&mock), ["Bearer tok-1"; 3]);
}

#[tokio::test]
async fn a_token_within_ten_seconds_of_expiry_is_renewed() {
    // expires_in 10: already inside the renewal margin, so every call needs a fresh token.
    let mock = token_server(10, |t| t.starts_with("tok-")).await;
    let client = cc_client(&mock, "").build().unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    assert_eq!(token_requests(&mock).len(), 2);
    assert_eq!(api_tokens(&mock), ["Bearer tok-1", "Bearer tok-2"]);
}

#[tokio::test]
async fn a_401_replaces_the_token_once() {
    // tok-1 was revoked server-side; tok-2 works.
    let mock = token_server(3600, |t| t == "tok-2").await;
    let client = cc_client(&mock, "").build().unwrap();
    let found = client.oauth_clients().retrieve("c1").await.unwrap();
    assert_eq!(found.client_id, "c1");
    assert_eq!(api_tokens(&mock), ["Bearer tok-1", "Bearer tok-2"]);
    // The new token is cached.
    client.oauth_clients().retrieve("c1").await.unwrap();
    assert_eq!(token_requests(&mock).len(), 2);
}

#[tokio::test]
async fn a_401_that_persists_is_the_authentication_error_after_one_renewal() {
    let mock = token_server(3600, |_| false).await;
    let client = cc_client(&mock, "").build().unwrap();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");
    assert_eq!(api_tokens(&mock), ["Bearer tok-1", "Bearer tok-2"]);
    assert_eq!(token_requests(&mock).len(), 2);
}

#[tokio::test]
async fn a_refused_token_request_is_the_callers_error() {
    let mock = Mock::scripted(vec![Reply::error(401, "invalid_client")]).await;
    let client = cc_client(&mock, "").build().unwrap();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");
    assert_eq!(err.body().unwrap().error, "invalid_client");
    assert!(mock.requests().iter().all(|r| r.path == "/oauth/token"));
}

#[tokio::test]
async fn the_token_request_can_be_json() {
    let mock = token_server(3600, |t| t == "tok-1").await;
    let client = cc_client(&mock, "")
        .body_encoding(BodyEncoding::Json)
        .build()
        .unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    let t = &token_requests(&mock)[0];
    assert_eq!(t.header("content-type"), Some("application/json"));
    assert_eq!(t.json(), json!({"grant_type": "client_credentials"}));
}

#[tokio::test]
async fn with_client_credentials_defaults_to_the_official_base_url() {
    let client = Client::with_client_credentials("id", "secret").unwrap();
    assert_eq!(client.base_url(), "https://api.telnyx.com/v2");
}

#[tokio::test]
async fn concurrent_calls_share_one_token_request() {
    let mock = token_server(3600, |t| t == "tok-1").await;
    let client = cc_client(&mock, "").build().unwrap();
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.oauth_clients().retrieve("c1").await })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
    assert_eq!(token_requests(&mock).len(), 1);
    assert_eq!(api_tokens(&mock), ["Bearer tok-1"; 8]);
}

#[tokio::test]
async fn the_retry_count_counts_the_calls_attempts_across_the_token_renewal() {
    let mock = token_server(3600, |t| t == "tok-2").await;
    let client = cc_client(&mock, "").build().unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    let counts: Vec<_> = mock
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
            "/oauth_clients/c1 0",
            // A token fetch counts its own attempts, and the call's count runs on after it.
            "/oauth/token 0",
            "/oauth_clients/c1 1"
        ]
    );
}

/// `max_retries` bounds a whole call: after a token renewal the call is sent once more, and
/// its retries come from the same budget, so a call answered 503, 503, 401, then 503 for ever
/// is sent four times (three attempts and the resend), not six.
#[tokio::test]
async fn the_retry_budget_runs_on_across_the_token_renewal() {
    let answered = Arc::new(AtomicUsize::new(0));
    let mock = Mock::start(move |req: &Recorded, _| {
        if req.path.ends_with("/oauth/token") {
            return Reply::json(
                200,
                json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600}),
            );
        }
        match answered.fetch_add(1, Ordering::SeqCst) {
            2 => Reply::error(401, "invalid_token"),
            _ => Reply::error(503, "unavailable"),
        }
    })
    .await;
    let client = cc_client(&mock, "").max_retries(2).build().unwrap();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503), "{err:?}");
    let calls: Vec<_> = mock
        .requests()
        .iter()
        .filter(|r| !r.path.ends_with("/oauth/token"))
        .map(|r| r.header("x-stainless-retry-count").unwrap().to_owned())
        .collect();
    // Two retries after the first attempt (the second answered 401), then the resend with a
    // fresh token, with no retry left for its 503.
    assert_eq!(calls, ["0", "1", "2", "3"]);
}

#[tokio::test]
async fn a_token_that_is_not_bearer_is_not_used() {
    let mock = Mock::scripted(vec![Reply::json(
        200,
        json!({"access_token": "t", "token_type": "mac", "expires_in": 3600}),
    )])
    .await;
    let client = cc_client(&mock, "").build().unwrap();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(api_tokens(&mock).is_empty());
}

/// An RFC 7592 call brings its own credential (the registration access token): a client in
/// client-credentials mode fetches no token for it, and its 401 leaves the cached token alone.
#[tokio::test]
async fn a_call_with_its_own_credential_fetches_no_token() {
    let mock = token_server(3600, |t| t == "RAT-right" || t.starts_with("tok-")).await;
    let client = cc_client(&mock, "").build().unwrap();
    let err = client
        .oauth()
        .retrieve_registration("c1", "RAT-wrong")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");
    assert!(token_requests(&mock).is_empty(), "no token fetched");
    assert_eq!(
        api_tokens(&mock),
        ["Bearer RAT-wrong"],
        "sent once, as given"
    );
    // The client's own calls still fetch (once) and use their token.
    client.oauth_clients().retrieve("c1").await.unwrap();
    client.oauth_clients().retrieve("c1").await.unwrap();
    assert_eq!(token_requests(&mock).len(), 1);
    assert_eq!(
        api_tokens(&mock),
        ["Bearer RAT-wrong", "Bearer tok-1", "Bearer tok-1"]
    );
}

/// A code exchange answered 401 is not sent again with a fresh client-credentials token, as
/// other calls are: the code may have been spent.
#[tokio::test]
async fn a_one_time_credential_is_not_sent_again_after_a_401() {
    use telnyx_oauth::{GrantType, TokenRequest};
    let mock = Mock::start(|req: &Recorded, _| {
        let form = req.form();
        let grant = form
            .iter()
            .find(|(k, _)| k == "grant_type")
            .map(|(_, v)| v.as_str());
        match grant {
            Some("client_credentials") => Reply::json(
                200,
                json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600}),
            ),
            _ => Reply::error(401, "invalid_client"),
        }
    })
    .await;
    let client = cc_client(&mock, "").build().unwrap();
    let exchange = TokenRequest::new(GrantType::AuthorizationCode)
        .code("the-code")
        .code_verifier("v")
        .redirect_uri("https://app.example/cb");
    let err = client.oauth().token(&exchange).await.unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");
    let exchanges = mock
        .requests()
        .iter()
        .filter(|r| r.body.contains("the-code"))
        .count();
    assert_eq!(exchanges, 1, "the code was sent once");
}
