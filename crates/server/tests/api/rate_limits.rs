//! In-process request-rate limits (docs/rate-limits.md): 429 with `Retry-After` and the JSON
//! error body, per key, per address and per client_id; recovery as the (injected) clock moves.

use std::net::IpAddr;
use std::sync::Arc;

use oauth_server::clock::ManualClock;
use oauth_server::config::RateLimit;
use oauth_store::SecurityEventFilter;
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

/// Registers a client through `http`: status, Retry-After, body.
pub async fn register_from(http: &reqwest::Client, app: &TestApp) -> (u16, Option<String>, Value) {
    let r = http
        .post(app.at("/oauth/register"))
        .json(&json!({"client_name": "MCP", "redirect_uris": ["http://127.0.0.1/cb"]}))
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

#[tokio::test]
async fn registration_is_limited_per_address() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.register_per_ip = limit(2, 60);
    })
    .await;
    let register = || register_from(&app.http, &app);
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
async fn registration_is_limited_per_address_and_day() {
    // However slow the pace, one address stores at most so many clients a day.
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.register_per_ip = limit(0, 0);
        c.rate_limits.register_per_ip_daily = limit(3, 86_400);
    })
    .await;
    let mut first = None;
    for _ in 0..3 {
        let (status, _, body) = register_from(&app.http, &app).await;
        assert_eq!(status, 201, "{body}");
        first.get_or_insert(body);
        clock.advance(600);
    }
    let (status, retry_after, body) = register_from(&app.http, &app).await;
    assert_eq!(status, 429, "{body}");
    assert_rate_limited(&body);
    // `Retry-After` says at most a minute, as for every limit.
    assert_eq!(retry_after.as_deref(), Some("60"));
    assert_eq!(crate::register::third_party_clients(&app).await, 3);
    // The day's budget is for storing clients: a registrant still reads and deletes its own.
    let first = first.unwrap();
    let (uri, token) = (
        first["registration_client_uri"].as_str().unwrap(),
        first["registration_access_token"].as_str().unwrap(),
    );
    let r = app.http.get(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .delete(uri)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(crate::register::third_party_clients(&app).await, 2);
    // Another address has its own day.
    let (status, _, body) = register_from(&client_from(ATTACKER), &app).await;
    assert_eq!(status, 201, "{body}");
    // A token comes back every 8 hours (28,800 s; 1,800 s of it had passed).
    clock.advance(26_000);
    let (status, _, body) = register_from(&app.http, &app).await;
    assert_eq!(status, 429, "{body}");
    clock.advance(1_100);
    let (status, _, body) = register_from(&app.http, &app).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(crate::register::third_party_clients(&app).await, 4);
}

#[tokio::test]
async fn refused_registrations_spend_nothing_of_the_day() {
    // Behind the initial access token, with one client a day: registrations without the token
    // (401) and with a refused body (400) store nothing and spend nothing of it.
    let app = TestApp::spawn_with(|c| {
        c.registration.mode = oauth_server::config::RegistrationMode::Token;
        c.registration.initial_access_token_hash =
            Some(oauth_core::secret::hash_secret("initial-access-token"));
        c.rate_limits.register_per_ip = limit(0, 0);
        c.rate_limits.register_per_ip_daily = limit(1, 86_400);
    })
    .await;
    for _ in 0..5 {
        let (status, _, body) = register_from(&app.http, &app).await;
        assert_eq!(status, 401, "{body}");
    }
    let register = |body: Value| {
        app.http
            .post(app.at("/oauth/register"))
            .bearer_auth("initial-access-token")
            .json(&body)
            .send()
    };
    for _ in 0..5 {
        let r = register(json!({"redirect_uris": ["http://evil.example/cb"]}))
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    let ok = json!({"client_name": "MCP", "redirect_uris": ["http://127.0.0.1/cb"]});
    let r = register(ok.clone()).await.unwrap();
    assert_eq!(r.status(), 201);
    let r = register(ok).await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(crate::register::third_party_clients(&app).await, 1);
}

/// An HTTP client whose connections come from `ip` (a loopback address other than the
/// server's own 127.0.0.1 stands for another machine).
pub fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub const ATTACKER: [u8; 4] = [127, 0, 0, 2];

/// POSTs a form to `path` through `http`: status, Retry-After, body.
pub async fn post_form_with(
    http: &reqwest::Client,
    app: &TestApp,
    path: &str,
    auth: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Option<String>, Value) {
    let mut req = http.post(app.at(path)).form(form);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = crate::support::status_json(r).await;
    (status, retry_after, body)
}

async fn failed_authentications(app: &TestApp) -> usize {
    let filter = SecurityEventFilter {
        kind: Some("client.authentication_failed".into()),
        ..SecurityEventFilter::default()
    };
    app.server
        .store
        .list_security_events(&filter, 1000)
        .await
        .unwrap()
        .len()
}

/// Behind a proxy named in `trusted_proxies`, each caller counts under the address the proxy
/// forwards: one caller's failures lock out that caller, not everyone behind the proxy, and what
/// a caller writes into `X-Forwarded-For` itself moves it nowhere. From any other peer the
/// header is ignored; with no proxy configured (the default) it is ignored from everyone.
#[tokio::test]
async fn behind_a_trusted_proxy_each_caller_has_its_own_budget() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.rate_limits.client_auth_failures_per_ip = limit(3, 60);
        c.rate_limits.client_auth_failures_per_client_ip = limit(100, 60);
    })
    .await;
    let (id, secret) = cc_client(&app).await;
    let proxy = &app.http;
    let direct = client_from(ATTACKER);
    let form = [("grant_type", "client_credentials")];
    let token = |http: &reqwest::Client, forwarded: Option<&str>, secret: &str| {
        let mut req = http
            .post(app.at("/oauth/token"))
            .header("authorization", basic(&id, secret))
            .form(&form);
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        async move { crate::support::status_json(req.send().await.unwrap()).await }
    };

    // The attacker, through the proxy, spends its address's three failures, then is refused.
    for _ in 0..3 {
        let (status, body) = token(proxy, Some("203.0.113.66"), "wrong").await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, body) = token(proxy, Some("203.0.113.66"), &secret).await;
    assert_eq!(status, 429, "{body}");
    // Writing another address in front of the one the proxy appends changes nothing.
    let (status, body) = token(proxy, Some("203.0.113.7, 203.0.113.66"), &secret).await;
    assert_eq!(status, 429, "{body}");
    // The client, through the same proxy from its own address, is not affected.
    for _ in 0..3 {
        let (status, body) = token(proxy, Some("203.0.113.7"), &secret).await;
        assert_eq!(status, 200, "{body}");
    }
    // The failures were recorded under the caller's address, not the proxy's.
    let filter = SecurityEventFilter {
        kind: Some("client.authentication_failed".into()),
        ..SecurityEventFilter::default()
    };
    let events = app
        .server
        .store
        .list_security_events(&filter, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e.ip.as_deref() == Some("203.0.113.66")),
        "{events:?}"
    );

    // A peer that is not a trusted proxy: its header is ignored, whatever it says, so a fresh
    // made-up address per attempt does not escape its own budget.
    for n in 0..3 {
        let (status, body) = token(&direct, Some(&format!("198.51.100.{n}")), "wrong").await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, body) = token(&direct, Some("198.51.100.200"), &secret).await;
    assert_eq!(status, 429, "{body}");
    // ... and the address it named is untouched: the proxy forwarding it gets through.
    let (status, body) = token(proxy, Some("198.51.100.0"), &secret).await;
    assert_eq!(status, 200, "{body}");
}

/// Without `trusted_proxies` (the default), `X-Forwarded-For` is read from nobody: callers behind
/// one proxy share its address.
#[tokio::test]
async fn without_trusted_proxies_no_forwarding_header_is_read() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.client_auth_failures_per_ip = limit(2, 60);
    })
    .await;
    let (id, secret) = cc_client(&app).await;
    for n in 0..2 {
        let (status, _, body) = post_form_with(
            &client_from(ATTACKER),
            &app,
            "/oauth/token",
            Some(&basic(&id, "wrong")),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(status, 401, "{n}: {body}");
    }
    let r = client_from(ATTACKER)
        .post(app.at("/oauth/token"))
        .header("authorization", basic(&id, &secret))
        .header("x-forwarded-for", "203.0.113.99")
        .header("x-real-ip", "203.0.113.99")
        .header("forwarded", "for=203.0.113.99")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

/// When both failure budgets refuse, `Retry-After` is the longer wait of the two: a client that
/// waits what it was told is not refused again by the other budget.
#[tokio::test]
async fn retry_after_is_the_longer_of_the_two_failure_budgets() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        // Two failures per client_id and address (one back every 40 s); three per address
        // (one back every 8 s).
        c.rate_limits.client_auth_failures_per_client_ip = limit(2, 80);
        c.rate_limits.client_auth_failures_per_ip = limit(3, 24);
    })
    .await;
    let (id, secret) = cc_client(&app).await;
    let (id2, _) = cc_client(&app).await;
    let attacker = client_from(ATTACKER);
    let form = [("grant_type", "client_credentials")];
    for (client, times) in [(&id, 2), (&id2, 1)] {
        for _ in 0..times {
            let (status, _, body) = post_form_with(
                &attacker,
                &app,
                "/oauth/token",
                Some(&basic(client, "x")),
                &form,
            )
            .await;
            assert_eq!(status, 401, "{body}");
        }
    }
    let auth = basic(&id, &secret);
    let (status, retry_after, body) =
        post_form_with(&attacker, &app, "/oauth/token", Some(&auth), &form).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after.as_deref(), Some("40"), "not the address's 8 s");
    clock.advance(39);
    let (status, _, _) = post_form_with(&attacker, &app, "/oauth/token", Some(&auth), &form).await;
    assert_eq!(status, 429);
    clock.advance(1);
    let (status, _, body) =
        post_form_with(&attacker, &app, "/oauth/token", Some(&auth), &form).await;
    assert_eq!(status, 200, "{body}");
}

/// Wrong secrets sent together pass the look before any of them is charged; each is charged
/// all the same, one token each, so the budget goes into debt and the look refuses until the
/// debt is paid back: not again as soon as one failure's token comes back, nor after a window
/// whatever the size of the wave.
#[tokio::test]
async fn a_wave_of_concurrent_failures_is_charged_in_full() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        // Two failures per client_id and address, one back every 32 s.
        c.rate_limits.client_auth_failures_per_client_ip = limit(2, 64);
        c.rate_limits.client_auth_failures_per_ip = limit(1000, 60);
    })
    .await;
    let (id, secret) = cc_client(&app).await;
    let attacker = client_from(ATTACKER);
    let form = [("grant_type", "client_credentials")];
    let wrong = basic(&id, "wrong");
    let outcomes = futures_util::future::join_all(
        (0..30).map(|_| post_form_with(&attacker, &app, "/oauth/token", Some(&wrong), &form)),
    )
    .await;
    let failed = outcomes.iter().filter(|(s, _, _)| *s == 401).count();
    assert!(
        outcomes.iter().all(|(s, _, _)| *s == 401 || *s == 429),
        "{outcomes:?}"
    );
    assert!(failed >= 2, "{outcomes:?}");
    // Each failure cost a token: the look passes again once `failed - 1` tokens are back, one
    // every 32 s (without a debt it would pass after one token).
    let paid = (failed as i64 - 1) * 32;
    let auth = basic(&id, &secret);
    let right = || post_form_with(&attacker, &app, "/oauth/token", Some(&auth), &form);
    clock.advance(paid - 1);
    let (status, _, body) = right().await;
    assert_eq!(status, 429, "{failed} failed together: {body}");
    clock.advance(1);
    let (status, _, body) = right().await;
    assert_eq!(
        status, 200,
        "{failed} failed together, the debt paid: {body}"
    );
}

/// Failed client authentication is limited per address and per (client_id, address), looked
/// at before the secret is checked and spent only by failures: a flood of wrong secrets from
/// one address locks out that address (even with the right secret), never the client itself
/// elsewhere.
#[tokio::test]
async fn token_endpoint_limits_failed_authentication_before_the_secret_check() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        // Two failures per client_id and address (one back every 32 s); three per address
        // (one back every 16 s).
        c.rate_limits.client_auth_failures_per_client_ip = limit(2, 64);
        c.rate_limits.client_auth_failures_per_ip = limit(3, 48);
    })
    .await;
    let (id, secret) = cc_client(&app).await;
    let (id2, secret2) = cc_client(&app).await;
    let attacker = client_from(ATTACKER);
    let client = &app.http;
    let form = [("grant_type", "client_credentials")];
    let token = |http: &reqwest::Client, auth: String| {
        let http = http.clone();
        let app = &app;
        async move { post_form_with(&http, app, "/oauth/token", Some(&auth), &form).await }
    };

    // Wrong secrets for a known client_id from another address: 401 each.
    for _ in 0..2 {
        let (status, _, body) = token(&attacker, basic(&id, "wrong")).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client");
    }
    // That pair has used its failures: refused before the secret is checked, right or wrong.
    let (status, retry_after, body) = token(&attacker, basic(&id, &secret)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after.as_deref(), Some("32"));
    assert_rate_limited(&body);
    // The client itself, from its own address, is not affected: token and introspection.
    for _ in 0..3 {
        let (status, _, body) = token(client, basic(&id, &secret)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, body) = post_form_with(
        client,
        &app,
        "/oauth/introspect",
        Some(&basic(&id, &secret)),
        &[("token", "x")],
    )
    .await;
    assert_eq!((status, &body), (200, &json!({"active": false})));

    // The address's third failure (another client) spends its own budget: after that, every
    // client_id from there is refused before any lookup, made-up ones included.
    let (status, _, body) = token(&attacker, basic(&id2, "wrong")).await;
    assert_eq!(status, 401, "{body}");
    for auth in [basic(&id2, &secret2), basic("made-up-client", "x")] {
        let (status, retry_after, body) = token(&attacker, auth).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(retry_after.as_deref(), Some("16"));
    }
    let (status, _, body) = post_form_with(
        &attacker,
        &app,
        "/oauth/revoke",
        Some(&basic(&id2, &secret2)),
        &[("token", "x")],
    )
    .await;
    assert_eq!(status, 429, "revocation shares the budget: {body}");
    let (status, _, body) = token(client, basic(&id2, &secret2)).await;
    assert_eq!(status, 200, "{body}");
    // Audited as before: one event per wrong secret for a known client, none for a refusal.
    assert_eq!(failed_authentications(&app).await, 3);

    // Budgets come back with time; a success spends none of them.
    clock.advance(16);
    for _ in 0..2 {
        let (status, _, body) = token(&attacker, basic(&id2, &secret2)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry_after, _) = token(&attacker, basic(&id, &secret)).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("16")));
    clock.advance(16);
    let (status, _, body) = token(&attacker, basic(&id, &secret)).await;
    assert_eq!(status, 200, "{body}");
}

/// Unknown client_ids spend the address's failure budget (not one per made-up id).
#[tokio::test]
async fn unknown_client_ids_count_against_the_address() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.client_auth_failures_per_ip = limit(2, 60);
    })
    .await;
    let (id, secret) = cc_client(&app).await;
    let attacker = client_from(ATTACKER);
    for n in 0..2 {
        let (status, _, body) = post_form_with(
            &attacker,
            &app,
            "/oauth/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &format!("guess-{n}")),
                ("client_secret", "x"),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client"))
        );
    }
    let form = [("grant_type", "client_credentials")];
    let auth = basic(&id, &secret);
    let (status, retry_after, body) =
        post_form_with(&attacker, &app, "/oauth/token", Some(&auth), &form).await;
    assert_eq!(
        (status, retry_after.as_deref()),
        (429, Some("30")),
        "{body}"
    );
    assert_rate_limited(&body);
    let (status, _, body) =
        post_form_with(&app.http, &app, "/oauth/token", Some(&auth), &form).await;
    assert_eq!(status, 200, "{body}");
    // Unknown ids are logged, not stored (the audit rule), and still counted here.
    assert_eq!(failed_authentications(&app).await, 0);
}

/// The client's request budget (`oauth_per_client`) is spent only once it has authenticated:
/// wrong secrets spend none of it. A public client, which authenticates by its id alone, has
/// it per address.
#[tokio::test]
async fn a_clients_request_budget_is_spent_only_after_it_authenticates() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.oauth_per_client = limit(2, 2);
    })
    .await;
    let (id, secret) = cc_client(&app).await;
    let (id2, secret2) = cc_client(&app).await;
    let public = app
        .create_client(&app.admin_key, crate::support::public_client("Public"))
        .await;
    let public_id = public["client_id"].as_str().unwrap().to_owned();
    let attacker = client_from(ATTACKER);
    let form = [("grant_type", "client_credentials")];
    for _ in 0..5 {
        let (status, _, body) = post_form_with(
            &attacker,
            &app,
            "/oauth/token",
            Some(&basic(&id, "wrong")),
            &form,
        )
        .await;
        assert_eq!(status, 401, "{body}");
    }
    let auth = basic(&id, &secret);
    for _ in 0..2 {
        let (status, _, body) =
            post_form_with(&app.http, &app, "/oauth/token", Some(&auth), &form).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry_after, body) =
        post_form_with(&app.http, &app, "/oauth/token", Some(&auth), &form).await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("1")));
    assert_rate_limited(&body);
    // Introspection and revocation share the client's bucket; another client is unaffected.
    let (status, _, _) = post_form_with(
        &app.http,
        &app,
        "/oauth/introspect",
        Some(&auth),
        &[("token", "x")],
    )
    .await;
    assert_eq!(status, 429);
    let (status, _, body) = post_form_with(
        &app.http,
        &app,
        "/oauth/token",
        Some(&basic(&id2, &secret2)),
        &form,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    clock.advance(1);
    let (status, _, body) =
        post_form_with(&app.http, &app, "/oauth/token", Some(&auth), &form).await;
    assert_eq!(status, 200, "{body}");

    // A public client (revocation accepts its id alone): per client_id and address.
    let revoke = |http: reqwest::Client| {
        let public_id = public_id.clone();
        let app = &app;
        async move {
            post_form_with(
                &http,
                app,
                "/oauth/revoke",
                None,
                &[("client_id", &public_id), ("token", "x")],
            )
            .await
        }
    };
    for _ in 0..2 {
        let (status, _, body) = revoke(attacker.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, body) = revoke(attacker.clone()).await;
    assert_eq!(status, 429, "{body}");
    let (status, _, body) = revoke(app.http.clone()).await;
    assert_eq!(status, 200, "the public client's other users: {body}");
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

/// Sign-in posts are limited per address; only posts of a form this server gave out count, so
/// that a page elsewhere making its visitors' browsers post here (no cookie goes with such a
/// post) cannot use up their network's sign-ins.
#[tokio::test]
async fn login_posts_are_limited_per_address() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.login_per_ip = limit(2, 10);
    })
    .await;
    let forged = || async {
        app.http
            .post(app.at("/login"))
            .form(&[("email", "a@example.com"), ("password", "x")])
            .send()
            .await
            .unwrap()
    };
    // Without the CSRF cookie the form is refused (403), and spends nothing.
    for _ in 0..10 {
        assert_eq!(forged().await.status(), 403);
    }
    // Forms of this server: two wrong passwords, then the limit.
    for _ in 0..2 {
        let r = app.post_login("a@example.com", "wrong", "/").await;
        assert_eq!(r.status(), 401);
    }
    // A browser's form: the answer is a page, with the API's words and `Retry-After`.
    let r = app.post_login("a@example.com", "wrong", "/").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "5");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let page = r.text().await.unwrap();
    assert!(page.contains("Too many requests"), "{page}");
    assert!(page.contains("too many requests"), "{page}");
    // The sign-in form itself (GET) is not limited.
    let r = app.http.get(app.at("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    clock.advance(5);
    assert_eq!(
        app.post_login("a@example.com", "wrong", "/").await.status(),
        401
    );
}

/// Consent requests stored (each authorize request that reaches the consent step makes one).
async fn consent_requests(app: &TestApp) -> i64 {
    crate::support::sqlite(&app.database_url)
        .query_row("SELECT COUNT(*) FROM consent_requests", [], |r| r.get(0))
        .unwrap()
}

/// `GET /oauth/authorize` is limited per client address (root and `/v2` share the bucket):
/// 429 with `Retry-After` and a page, before anything is read or stored.
#[tokio::test]
async fn authorize_is_limited_per_address_with_a_page() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        // Two at once, then one every 4 s.
        c.rate_limits.authorize_per_ip = limit(2, 8);
    })
    .await;
    let c = app
        .create_client(&app.admin_key, crate::flow::code_client("App"))
        .await;
    let path = crate::flow::path_of(&crate::flow::standard_params(
        c["client_id"].as_str().unwrap(),
    ));
    let authorize = |http: reqwest::Client, path: String| {
        let app = &app;
        async move {
            http.get(app.at(&path))
                .bearer_auth(&app.admin_key)
                .send()
                .await
                .unwrap()
        }
    };
    for p in [path.clone(), format!("/v2{path}")] {
        let r = authorize(app.http.clone(), p).await;
        assert_eq!(r.status(), 302);
    }
    assert_eq!(consent_requests(&app).await, 2);
    let r = authorize(app.http.clone(), path.clone()).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "4");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers().get("location").is_none());
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("Too many requests"), "{page}");
    assert!(page.contains("Wait 4 seconds"), "{page}");
    // Refused before anything was read or stored.
    assert_eq!(consent_requests(&app).await, 2);
    // Another address has its own bucket.
    let r = authorize(client_from(ATTACKER), path.clone()).await;
    assert_eq!(r.status(), 302);
    clock.advance(4);
    let r = authorize(app.http.clone(), path).await;
    assert_eq!(r.status(), 302);
    assert_eq!(consent_requests(&app).await, 4);
}
