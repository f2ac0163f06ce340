//! Each error class the real server produces today, decoded by the SDK.

use std::sync::Arc;
use std::time::Duration;

use oauth_server::clock::ManualClock;
use oauth_server::config::RateLimit;
use telnyx_oauth::{ClientType, Error, ListOAuthClientsParams};

use crate::server::{new_client, TestServer};

#[tokio::test]
async fn an_unknown_api_key_is_the_authentication_error() {
    let app = TestServer::spawn().await;
    let err = app
        .client_with_key("KEYnot-a-real-key")
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap_err();
    let Error::Authentication(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status.as_u16(), 401);
    assert!(api.headers.contains_key("www-authenticate"));
    let body = api.body.as_ref().unwrap();
    assert!(!body.error.is_empty());
    assert!(body.error_description.is_some());
    assert!(!err.to_string().contains("KEYnot-a-real-key"));

    // No key at all: the request goes out without credentials and is refused the same way.
    let anonymous = telnyx_oauth::Client::builder()
        .base_url(&app.url)
        .build()
        .unwrap();
    let err = anonymous
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");
}

#[tokio::test]
async fn an_unknown_id_is_the_not_found_error() {
    let app = TestServer::spawn().await;
    let err = app
        .client()
        .oauth_clients()
        .retrieve("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    let Error::NotFound(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.status.as_u16(), 404);
    assert!(api.body.as_ref().unwrap().error_description.is_some());
}

#[tokio::test]
async fn an_invalid_client_is_the_unprocessable_entity_error_with_pointers() {
    let app = TestServer::spawn().await;
    let client = app.client();
    // The seed's own example: a public client cannot use client_credentials (RFC 6749 §4.4).
    let mut params = new_client("", ClientType::Public);
    params.allowed_scopes = vec!["root".into()];
    let err = client.oauth_clients().create(&params).await.unwrap_err();
    let Error::UnprocessableEntity(api) = &err else {
        panic!("{err:?}")
    };
    let body = api.body.as_ref().unwrap();
    let pointers: Vec<_> = body
        .errors
        .iter()
        .filter_map(|e| e.source.as_ref()?.pointer.clone())
        .collect();
    for p in ["/name", "/allowed_grant_types", "/allowed_scopes/0"] {
        assert!(pointers.iter().any(|x| x == p), "{p} in {pointers:?}");
    }
    // Nothing was created.
    let page = client
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(page.meta.total_results, 0);
}

#[tokio::test]
async fn a_bad_page_size_is_the_bad_request_error() {
    let app = TestServer::spawn().await;
    for size in [0, 101] {
        let err = app
            .client()
            .oauth_clients()
            .list(&ListOAuthClientsParams::new().page_size(size))
            .await
            .unwrap_err();
        let Error::BadRequest(api) = &err else {
            panic!("{err:?}")
        };
        let params: Vec<_> = api
            .body
            .as_ref()
            .unwrap()
            .errors
            .iter()
            .filter_map(|e| e.source.as_ref()?.parameter.clone())
            .collect();
        assert_eq!(params, ["page[size]"], "{size}");
    }
}

#[tokio::test]
async fn a_rate_limit_is_the_rate_limit_error_after_the_retries() {
    // The server's clock stands still, so its bucket never refills: the SDK's one retry, made
    // after the 1 s the server asks for, is refused as well.
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let app = TestServer::spawn_with_clock(clock, |c| {
        c.rate_limits.management_per_key = RateLimit {
            requests: 1,
            window_secs: 1,
        };
    })
    .await;
    let client = telnyx_oauth::Client::builder()
        .api_key(&app.admin_key)
        .base_url(&app.url)
        .max_retries(1)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(20))
        .build()
        .unwrap();
    client
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = client
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap_err();
    let Error::RateLimit(api) = &err else {
        panic!("{err:?}")
    };
    // The retry waited for the server's Retry-After.
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(api.status.as_u16(), 429);
    assert_eq!(api.headers["retry-after"], "1");
    let body = api.body.as_ref().unwrap();
    assert_eq!(body.error, "rate_limited");
    assert!(body.error_description.is_some());
}
