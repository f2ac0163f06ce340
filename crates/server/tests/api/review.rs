//! Findings of an outside review: each test failed before its fix.

use oauth_server::config::RateLimit;

use crate::rate_limits::{client_from, post_form_with, ATTACKER};
use crate::support::TestApp;

/// Introspection by a Bearer credential is client authentication by another name: a made-up
/// credential spends the address's failure budget (as a made-up client_id does), and once that
/// is spent the address is refused before any lookup. Before, every guess had a fresh
/// per-credential bucket, so guessing API keys there was limited by nothing.
#[tokio::test]
async fn made_up_bearer_credentials_at_introspection_spend_the_address_failure_budget() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limits.client_auth_failures_per_ip = RateLimit {
            requests: 2,
            window_secs: 600,
        };
    })
    .await;
    let attacker = client_from(ATTACKER);
    let form = [("token", "not-a-token")];
    for n in 0..2 {
        let guess = format!("Bearer KEYguess{n}");
        let (status, _, body) =
            post_form_with(&attacker, &app, "/oauth/introspect", Some(&guess), &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token")),
            "{body}"
        );
    }
    // A third guess, even the right key, from that address: refused before the lookup.
    let real = format!("Bearer {}", app.admin_key);
    for auth in ["Bearer KEYguess2", real.as_str()] {
        let (status, retry_after, body) =
            post_form_with(&attacker, &app, "/oauth/introspect", Some(auth), &form).await;
        assert_eq!(status, 429, "{body}");
        assert!(retry_after.is_some());
    }
    // The key's owner, elsewhere, is not limited by them.
    let (status, _, body) =
        post_form_with(&app.http, &app, "/oauth/introspect", Some(&real), &form).await;
    assert_eq!((status, &body["active"]), (200, &serde_json::json!(false)));
}
