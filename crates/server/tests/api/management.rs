//! The management API with access tokens of this server: `admin` scope required, the token's
//! user (for client_credentials, the client's owner) acts, expiry and revocation hold.

use std::sync::Arc;

use oauth_server::clock::ManualClock;
use serde_json::json;

use crate::oauth_support::{basic, cc_client, cc_client_with, cc_token, post_form};
use crate::support::{confidential_client, TestApp};

#[tokio::test]
async fn an_admin_scoped_token_acts_for_the_clients_owner() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, Some("admin")).await;
    let (status, body) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    // Writes too, in the owner's organization; but not another machine client, which takes
    // an API key (threat-model.md, "Who acts for whom").
    let mut web = confidential_client("Made by token");
    web["allowed_grant_types"] = serde_json::json!(["authorization_code", "refresh_token"]);
    let created = app.create_client(&token, web).await;
    assert_eq!(created["org_id"], app.admin_org.as_str());
    let (status, body) = app
        .post_json(&token, "/oauth_clients", &confidential_client("Machine"))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "api_key_required", "{body}");
    let (status, _) = app.get(&token, "/v2/oauth_clients").await;
    assert_eq!(status, 200);

    // Another organization's client owner sees only their own organization.
    let bob = app.user("bob@b.example", "org-b").await;
    let (bid, bsecret) = cc_client_with(&app, &bob.api_key, confidential_client("B")).await;
    let btoken = cc_token(&app, &bid, &bsecret, Some("admin")).await;
    let (status, body) = app.get(&btoken, "/oauth_clients").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["client_id"], bid.as_str());
    let (status, _) = app.get(&btoken, &format!("/oauth_clients/{id}")).await;
    assert_eq!(status, 404);
}

/// A client-credentials token acts for the client's owner only while the client has that
/// grant: a member taking it away ends what the token can do at once, as taking the scope
/// away does.
#[tokio::test]
async fn a_machine_token_stops_acting_when_its_client_loses_the_grant() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, Some("admin")).await;
    assert_eq!(app.get(&token, "/oauth_clients").await.0, 200);
    let (status, body) = app
        .put_json(
            &app.admin_key,
            &format!("/oauth_clients/{id}"),
            &json!({"allowed_grant_types": ["authorization_code", "refresh_token"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 401, "{body}");
    // Introspection does not vouch for it either.
    let r = app
        .http
        .post(app.at("/oauth/introspect"))
        .bearer_auth(&app.admin_key)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"active": false})
    );
    // Nor can it create anything; the owner's key still can.
    let (status, _) = app
        .post_json(
            &token,
            "/oauth_clients",
            &confidential_client("Made by token"),
        )
        .await;
    assert_eq!(status, 401);
    let (status, list) = app.get(&app.admin_key, "/oauth_clients").await;
    assert_eq!(status, 200);
    assert_eq!(list["meta"]["total_results"], 1, "{list}");
}

#[tokio::test]
async fn a_token_without_admin_is_403_insufficient_scope() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, Some("messaging")).await;
    let r = app
        .http
        .get(app.at("/oauth_clients"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"admin\""),
        "{challenge}"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    let (status, _) = app.post_json(&token, "/oauth_clients", &json!({})).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_expired_or_revoked_token_is_401_with_the_resource_metadata() {
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;
    let revoked = cc_token(&app, &id, &secret, None).await;
    post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&id, &secret)),
        &[("token", &revoked)],
    )
    .await;
    let metadata = format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
        app.server.issuer
    );
    for t in [&revoked] {
        let r = app
            .http
            .get(app.at("/oauth_clients"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(&metadata));
    }
    let (status, _) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 200);
    clock.advance(3600);
    let r = app
        .http
        .get(app.at("/oauth_clients"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        format!("Bearer error=\"invalid_token\", {metadata}")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}
