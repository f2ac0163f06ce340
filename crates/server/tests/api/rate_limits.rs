//! In-process request-rate limits (docs/rate-limits.md): 429 with `Retry-After` and the JSON
//! error body, per key, per address and per client_id; recovery as the (injected) clock moves.

use std::sync::Arc;

use oauth_server::clock::ManualClock;
use oauth_server::config::RateLimit;
use serde_json::{json, Value};

use crate::oauth_support::{basic, cc_client, post_form};
use crate::support::TestApp;

const NOW: i64 = 1_900_000_000;

fn limit(requests: u32, window_secs: u32) -> RateLimit {
    RateLimit {
        requests,
        window_secs,
    }
}

/// GET with a bearer credential: (status, Retry-After, body).
async fn get_with(app: &TestApp, key: &str, path: &str) -> (u16, Option<String>, Value) {
    let r = app
        .http
        .get(app.at(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = crate::support::status_json(r).await;
    (status, retry_after, body)
}

fn assert_rate_limited(body: &Value) {
    assert_eq!(body["error"], "rate_limited", "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("too many requests"), "{description}");
}

#[tokio::test]
async fn management_api_is_limited_per_key_and_recovers() {
    let clock = Arc::new(ManualClock::new(NOW));
    // 3 at once, then one every 2 s.
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.management_per_key = limit(3, 6);
    })
    .await;
    let other = app.user("other@example.com", "Other").await;
    for _ in 0..3 {
        let (status, _, body) = get_with(&app, &app.admin_key, "/oauth_clients").await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry_after, body) = get_with(&app, &app.admin_key, "/oauth_clients").await;
    assert_eq!(status, 429);
    assert_eq!(retry_after.as_deref(), Some("2"));
    assert_rate_limited(&body);
    // Every management path shares the key's bucket, /v2 included.
    let (status, _, body) = get_with(&app, &app.admin_key, "/v2/oauth_grants").await;
    assert_eq!(status, 429, "{body}");

    // Another key has its own bucket.
    let (status, _, body) = get_with(&app, &other.api_key, "/oauth_clients").await;
    assert_eq!(status, 200, "{body}");

    // A refused call changed nothing: after the wait, one call again.
    clock.advance(2);
    let (status, _, body) = get_with(&app, &app.admin_key, "/oauth_clients").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = get_with(&app, &app.admin_key, "/oauth_clients").await;
    assert_eq!(status, 429);
    // Introspection with the key as a Bearer credential spends the same bucket.
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some(&format!("Bearer {}", app.admin_key)),
        &[("token", "x")],
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_rate_limited(&r.body);
    // After a whole window, the full burst is back.
    clock.advance(6);
    for _ in 0..3 {
        let (status, _, body) = get_with(&app, &app.admin_key, "/oauth_clients").await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn management_api_is_limited_per_address_whatever_the_key() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.management_per_ip = limit(2, 60);
    })
    .await;
    // Guessing keys counts too: unknown keys get 401 until the address is out of tokens.
    let (status, _, _) = get_with(&app, "not-a-key-1", "/oauth_clients").await;
    assert_eq!(status, 401);
    let (status, _, _) = get_with(&app, &app.admin_key, "/oauth_clients").await;
    assert_eq!(status, 200);
    let (status, retry_after, body) = get_with(&app, "not-a-key-2", "/oauth_clients").await;
    assert_eq!(status, 429);
    assert_eq!(retry_after.as_deref(), Some("30"));
    assert_rate_limited(&body);
    // The public OAuth endpoints are not behind the management limits.
    let (status, _, _) = get_with(&app, &app.admin_key, "/oauth/jwks").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn registration_is_limited_per_address() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.register_per_ip = limit(2, 60);
    })
    .await;
    let body = json!({"client_name": "MCP", "redirect_uris": ["http://127.0.0.1/cb"]});
    let register = || async {
        let r = app
            .http
            .post(app.at("/oauth/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let (status, body) = crate::support::status_json(r).await;
        (status, retry_after, body)
    };
    for _ in 0..2 {
        let (status, _, body) = register().await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, retry_after, body) = register().await;
    assert_eq!(status, 429);
    assert_eq!(retry_after.as_deref(), Some("30"));
    assert_rate_limited(&body);
    // Nothing was registered by the refused call.
    assert_eq!(crate::register::third_party_clients(&app).await, 2);
    clock.advance(30);
    let (status, _, body) = register().await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn token_endpoint_is_limited_per_client_before_the_secret_check() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.oauth_per_client = limit(2, 2);
    })
    .await;
    let (id, secret) = cc_client(&app).await;
    let (id2, secret2) = cc_client(&app).await;
    let form = [("grant_type", "client_credentials")];
    let r = post_form(&app, "/oauth/token", Some(&basic(&id, &secret)), &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A wrong secret spends a token as well: guessing is limited.
    let r = post_form(&app, "/oauth/token", Some(&basic(&id, "wrong")), &form).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post_form(&app, "/oauth/token", Some(&basic(&id, &secret)), &form).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_rate_limited(&r.body);
    // Introspection and revocation share the client's bucket.
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some(&basic(&id, &secret)),
        &[("token", "x")],
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body);

    // A second client is unaffected.
    let r = post_form(&app, "/oauth/token", Some(&basic(&id2, &secret2)), &form).await;
    assert_eq!(r.status, 200, "{}", r.body);

    clock.advance(1);
    let r = post_form(&app, "/oauth/token", Some(&basic(&id, &secret)), &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn zero_turns_a_limit_off() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limits.management_per_key = limit(0, 0);
        c.rate_limits.management_per_ip = limit(0, 0);
    })
    .await;
    for _ in 0..50 {
        let (status, _, _) = get_with(&app, &app.admin_key, "/oauth_clients").await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn login_posts_are_limited_per_address() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.login_per_ip = limit(2, 10);
    })
    .await;
    let post = || async {
        app.http
            .post(app.at("/login"))
            .form(&[("email", "a@example.com"), ("password", "x")])
            .send()
            .await
            .unwrap()
    };
    // Without the CSRF cookie the form is refused (403), but each post counts.
    for _ in 0..2 {
        assert_eq!(post().await.status(), 403);
    }
    let r = post().await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "5");
    let (_, body) = crate::support::status_json(r).await;
    assert_rate_limited(&body);
    // The sign-in form itself (GET) is not limited.
    let r = app.http.get(app.at("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    clock.advance(5);
    assert_eq!(post().await.status(), 403);
}
