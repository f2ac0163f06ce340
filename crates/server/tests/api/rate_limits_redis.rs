//! The shared rate limiter (`[rate_limits] backend = "redis"`, docs/rate-limits.md) against the
//! real Redis at 127.0.0.1:6379 (or `OAUTH_TEST_REDIS_URL`): two server instances share one
//! bucket; when Redis is unreachable or silent, each instance falls back to its own in-memory
//! bucket. Every test uses its own key prefix and deletes its keys afterwards.

use std::sync::Arc;

use oauth_server::clock::ManualClock;
use oauth_server::config::{RateLimit, RateLimitBackend};
use oauth_server::Config;
use serde_json::Value;

use crate::oauth_support::{basic, cc_client};
use crate::rate_limits::{client_from, ATTACKER};
use crate::support::{status_json, TestApp};

const NOW: i64 = 1_900_000_000;

fn redis_url() -> String {
    std::env::var("OAUTH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The keys of one test, deleted when it ends (also when it fails).
struct Keys {
    prefix: String,
    client: redis::Client,
}

impl Keys {
    fn new() -> Self {
        Keys {
            prefix: format!("oauth-test:{}:", uuid::Uuid::new_v4()),
            client: redis::Client::open(redis_url()).unwrap(),
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        let mut con = self
            .client
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        cmd.query_async(&mut con).await.unwrap()
    }

    async fn list(&self) -> Vec<String> {
        let pattern = format!("{}*", self.prefix);
        self.query(redis::cmd("KEYS").arg(pattern)).await
    }

    async fn get(&self, key: &str, field: &str) -> Option<String> {
        self.query(redis::cmd("HGET").arg(key).arg(field)).await
    }

    async fn ttl(&self, key: &str) -> i64 {
        self.query(redis::cmd("TTL").arg(key)).await
    }

    async fn clean(&self) {
        for k in self.list().await {
            let () = self.query(redis::cmd("DEL").arg(k)).await;
        }
    }
}

fn limit(requests: u32, window_secs: u32) -> RateLimit {
    RateLimit {
        requests,
        window_secs,
    }
}

fn redis_backend(url: &str, prefix: &str) -> RateLimitBackend {
    RateLimitBackend::Redis {
        url: url.to_owned(),
        key_prefix: prefix.to_owned(),
    }
}

/// GET /oauth_clients with the app's admin key: (status, Retry-After, body).
async fn list_clients(app: &TestApp) -> (u16, Option<String>, Value) {
    let r = app
        .http
        .get(app.at("/oauth_clients"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = status_json(r).await;
    (status, retry_after, body)
}

async fn register(app: &TestApp) -> (u16, Option<String>, Value) {
    crate::rate_limits::register_from(&app.http, app).await
}

fn assert_rate_limited(status: u16, retry_after: Option<&str>, body: &Value, wait: &str) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after, Some(wait));
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert_eq!(
        body["error_description"],
        format!("too many requests; retry after {wait} s"),
        "{body}"
    );
}

#[tokio::test]
async fn two_instances_share_one_bucket_in_redis() {
    let keys = Keys::new();
    let clock = Arc::new(ManualClock::new(NOW));
    let configure = |c: &mut Config| {
        // 3 at once, then one every 20 s.
        c.rate_limits.management_per_ip = limit(3, 60);
        c.rate_limits.register_per_ip = limit(1, 60);
        c.rate_limits.backend = redis_backend(&redis_url(), &keys.prefix);
    };
    let a = TestApp::spawn_with_clock(clock.clone(), configure).await;
    let b = TestApp::spawn_with_clock(clock.clone(), configure).await;

    for app in [&a, &a, &b] {
        let (status, _, body) = list_clients(app).await;
        assert_eq!(status, 200, "{body}");
    }
    // The budget of the address is spent, whichever instance is asked.
    let (status, retry_after, body) = list_clients(&b).await;
    assert_rate_limited(status, retry_after.as_deref(), &body, "20");
    let (status, retry_after, body) = list_clients(&a).await;
    assert_rate_limited(status, retry_after.as_deref(), &body, "20");

    // The bucket is in Redis under the prefix, empty, expiring within the window.
    let stored = keys.list().await;
    let bucket = stored
        .iter()
        .find(|k| k.starts_with(&format!("{}management_per_ip:", keys.prefix)))
        .unwrap_or_else(|| panic!("{stored:?}"));
    assert_eq!(keys.get(bucket, "tokens").await, Some("0".to_owned()));
    assert_eq!(keys.get(bucket, "updated").await, Some(NOW.to_string()));
    let ttl = keys.ttl(bucket).await;
    assert!((1..=60).contains(&ttl), "ttl {ttl}");

    // One token comes back after 20 s, for one request on either instance.
    clock.advance(20);
    let (status, _, body) = list_clients(&b).await;
    assert_eq!(status, 200, "{body}");
    let (status, retry_after, body) = list_clients(&a).await;
    assert_rate_limited(status, retry_after.as_deref(), &body, "20");

    // Registration (another limit, another bucket): one for the address across both.
    let (status, _, body) = register(&a).await;
    assert_eq!(status, 201, "{body}");
    let (status, retry_after, body) = register(&b).await;
    assert_rate_limited(status, retry_after.as_deref(), &body, "60");
    keys.clean().await;
    assert!(keys.list().await.is_empty());
}

/// The token endpoint's per-client limit, on two instances of one database: the second
/// instance refuses once the first has spent the client's budget.
#[tokio::test]
async fn a_client_id_has_one_budget_across_instances_of_one_database() {
    let keys = Keys::new();
    let clock = Arc::new(ManualClock::new(NOW));
    let configure = |c: &mut Config| {
        c.rate_limits.oauth_per_client = limit(3, 60);
        c.rate_limits.backend = redis_backend(&redis_url(), &keys.prefix);
    };
    let a = TestApp::spawn_with_clock(clock.clone(), configure).await;
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: a.database_url.clone(),
        ..Default::default()
    };
    configure(&mut config);
    config.check().unwrap();
    let b = oauth_server::start_with_clock(config, clock.clone(), std::future::pending())
        .await
        .unwrap();
    let (id, secret) = cc_client(&a).await;
    let token = |url: String| {
        let http = a.http.clone();
        let auth = basic(&id, &secret);
        async move {
            let r = http
                .post(format!("{url}/oauth/token"))
                .header("authorization", auth)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let (status, body) = status_json(r).await;
            (status, retry_after, body)
        }
    };
    for url in [a.url.clone(), a.url.clone(), b.url()] {
        let (status, _, body) = token(url).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["access_token"].is_string());
    }
    let (status, retry_after, body) = token(b.url()).await;
    assert_rate_limited(status, retry_after.as_deref(), &body, "20");
    let (status, retry_after, body) = token(a.url.clone()).await;
    assert_rate_limited(status, retry_after.as_deref(), &body, "20");
    clock.advance(20);
    let (status, _, body) = token(b.url()).await;
    assert_eq!(status, 200, "{body}");
    b.stop().await.unwrap();
    keys.clean().await;
}

/// Failed client authentication on Redis: the failure budgets are shared by the instances,
/// looked at without being spent (an address that never failed gets no bucket), spent by
/// failures only, and never stop the client's own requests from another address.
#[tokio::test]
async fn failure_budgets_are_shared_looked_at_and_spent_only_by_failures() {
    let keys = Keys::new();
    let clock = Arc::new(ManualClock::new(NOW));
    let configure = |c: &mut Config| {
        c.rate_limits.client_auth_failures_per_client_ip = limit(2, 64);
        c.rate_limits.client_auth_failures_per_ip = limit(5, 60);
        c.rate_limits.backend = redis_backend(&redis_url(), &keys.prefix);
    };
    let a = TestApp::spawn_with_clock(clock.clone(), configure).await;
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: a.database_url.clone(),
        ..Default::default()
    };
    configure(&mut config);
    config.check().unwrap();
    let b = oauth_server::start_with_clock(config, clock.clone(), std::future::pending())
        .await
        .unwrap();
    let (id, secret) = cc_client(&a).await;
    let attacker = client_from(ATTACKER);
    let token = |http: &reqwest::Client, url: String, auth: String| {
        let http = http.clone();
        async move {
            let r = http
                .post(format!("{url}/oauth/token"))
                .header("authorization", auth)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let (status, body) = status_json(r).await;
            (status, retry_after, body)
        }
    };
    // One wrong secret on each instance spends the pair's shared budget.
    for url in [a.url.clone(), b.url()] {
        let (status, _, body) = token(&attacker, url, basic(&id, "wrong")).await;
        assert_eq!(status, 401, "{body}");
    }
    for url in [a.url.clone(), b.url()] {
        let (status, retry_after, body) = token(&attacker, url, basic(&id, &secret)).await;
        assert_rate_limited(status, retry_after.as_deref(), &body, "32");
    }
    // The client, from its own address, on either instance.
    for url in [a.url.clone(), b.url()] {
        let (status, _, body) = token(&a.http, url, basic(&id, &secret)).await;
        assert_eq!(status, 200, "{body}");
    }
    // In Redis: the pair's bucket is empty, the attacker's address has 3 of 5 left, and the
    // client's address, only looked at, has no failure bucket at all.
    let stored = keys.list().await;
    let named = |limit: &str| -> Vec<String> {
        stored
            .iter()
            .filter(|k| k.starts_with(&format!("{}{limit}:", keys.prefix)))
            .cloned()
            .collect()
    };
    let pair = named("client_auth_failures_per_client_ip");
    assert_eq!(pair.len(), 1, "{stored:?}");
    assert_eq!(keys.get(&pair[0], "tokens").await, Some("0".to_owned()));
    let per_ip = named("client_auth_failures_per_ip");
    assert_eq!(per_ip.len(), 1, "only the address that failed: {stored:?}");
    assert_eq!(keys.get(&per_ip[0], "tokens").await, Some("3".to_owned()));
    let ttl = keys.ttl(&pair[0]).await;
    assert!((1..=64).contains(&ttl), "ttl {ttl}");
    // The client's request budget was spent by its two successes only.
    let per_client = named("oauth_per_client");
    assert_eq!(per_client.len(), 1, "{stored:?}");
    assert_eq!(
        keys.get(&per_client[0], "tokens").await,
        Some("198".to_owned())
    );
    // A failure back after 32 s, on either instance.
    clock.advance(32);
    let (status, _, body) = token(&attacker, b.url(), basic(&id, &secret)).await;
    assert_eq!(status, 200, "{body}");
    b.stop().await.unwrap();
    keys.clean().await;
}

#[tokio::test]
async fn unreachable_redis_falls_back_to_per_instance_limits() {
    // Nothing listens on port 1: every connection is refused at once.
    let clock = Arc::new(ManualClock::new(NOW));
    let configure = |c: &mut Config| {
        c.rate_limits.management_per_ip = limit(2, 60);
        c.rate_limits.backend = redis_backend("redis://127.0.0.1:1", "oauth-test:");
    };
    let a = TestApp::spawn_with_clock(clock.clone(), configure).await;
    let b = TestApp::spawn_with_clock(clock.clone(), configure).await;
    // Fail open to the in-memory bucket of each instance: requests are served, and each
    // instance still limits on its own.
    for _ in 0..2 {
        let (status, _, body) = list_clients(&a).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry_after, body) = list_clients(&a).await;
    assert_rate_limited(status, retry_after.as_deref(), &body, "30");
    let (status, _, body) = list_clients(&b).await;
    assert_eq!(
        status, 200,
        "b has its own bucket while Redis is down: {body}"
    );
}

#[tokio::test]
async fn silent_redis_times_out_and_falls_back() {
    // A listener that accepts connections and never answers: every command times out.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.management_per_ip = limit(2, 60);
        c.rate_limits.backend = redis_backend(&format!("redis://127.0.0.1:{port}"), "t:");
    })
    .await;
    for _ in 0..2 {
        let (status, _, body) = list_clients(&app).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry_after, body) = list_clients(&app).await;
    assert_rate_limited(status, retry_after.as_deref(), &body, "30");
    silent.abort();
}

/// `rediss://` (TLS) URLs pass the configuration check; so do a user name and password that
/// are UTF-8 once percent-decoded, and no others. No TLS Redis runs in the tests: the TLS
/// handshake itself is covered against the plain Redis only (`rate_limit::tests`).
#[test]
fn configuration_takes_rediss_urls_and_only_utf8_credentials() {
    let check = |url: &str| {
        let mut config = Config::default();
        config.rate_limits.backend = redis_backend(url, "oauth:rl:");
        config.check().map_err(|e| e.to_string())
    };
    for good in [
        "rediss://cache.internal",
        "rediss://me:p%40ss@cache.internal:6380/2",
        "rediss://:%C3%A9t%C3%A9@[::1]:6390",
        "redis://me:pw@127.0.0.1:6379/0",
    ] {
        assert_eq!(check(good), Ok(()), "{good}");
    }
    for (bad, why) in [
        (
            "rediss://:%FF@cache.internal",
            "Password is not valid UTF-8",
        ),
        (
            "rediss://%C3%28:pw@cache.internal",
            "Username is not valid UTF-8",
        ),
        ("redis://:%FF@127.0.0.1", "Password is not valid UTF-8"),
        (
            "https://cache.internal",
            "must be a redis:// or rediss:// URL",
        ),
        (
            "rediss://cache.internal/#insecure",
            "must not have a query or fragment",
        ),
    ] {
        let error = check(bad).expect_err(bad);
        assert!(
            error.starts_with("configuration: rate_limits.redis_url ") && error.contains(why),
            "{bad}: {error}"
        );
        assert!(!error.contains("pw"), "{error}");
    }
}
