//! `/oauth_grants`: each user sees, reads and revokes only their own grants; revoking kills
//! the grant's codes.

use oauth_store::CodeRedemption;
use serde_json::json;

use crate::flow::*;
use crate::support::{TestApp, TestUser};

/// Runs the flow for `user` and `client_id` through the JSON API; returns the code.
async fn consent(app: &TestApp, user: &TestUser, client_id: &str) -> String {
    let token = app
        .consent_token(&user.api_key, &path_of(&standard_params(client_id)))
        .await;
    let (status, body) = app.decide(&user.api_key, &token, true).await;
    assert_eq!(status, 200, "{body}");
    param(body["redirect_uri"].as_str().unwrap(), "code").unwrap()
}

#[tokio::test]
async fn users_see_only_their_own_grants() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "alice-org").await;
    let bob = app.user("bob@example.com", "bob-org").await;
    let mut ids = Vec::new();
    for name in ["One", "Two", "Three"] {
        let c = app.create_client(&app.admin_key, code_client(name)).await;
        let id = c["client_id"].as_str().unwrap().to_owned();
        consent(&app, &alice, &id).await;
        ids.push(id);
    }
    consent(&app, &bob, &ids[0]).await;

    let (status, page) = app.get(&alice.api_key, "/oauth_grants?page[size]=2").await;
    assert_eq!(status, 200);
    assert_eq!(
        page["meta"],
        json!({"page_number": 1, "page_size": 2, "total_pages": 2, "total_results": 3})
    );
    let g = &page["data"][0];
    assert_eq!(g["record_type"], "oauth_grant");
    assert_eq!(g["client_id"], ids[0].as_str());
    assert_eq!(g["scopes"], json!(["admin", "messaging"]));
    assert!(g["created_at"].as_str().unwrap().ends_with('Z'));
    let (_, page2) = app
        .get(
            &alice.api_key,
            "/oauth_grants?page%5Bnumber%5D=2&page%5Bsize%5D=2",
        )
        .await;
    assert_eq!(page2["data"][0]["client_id"], ids[2].as_str());
    let (_, page3) = app
        .get(&alice.api_key, "/oauth_grants?page[number]=3&page[size]=2")
        .await;
    assert_eq!(page3["data"], json!([]));

    let (_, bobs) = app.get(&bob.api_key, "/oauth_grants").await;
    assert_eq!(bobs["meta"]["total_results"], 1);
    let bob_grant = bobs["data"][0]["id"].as_str().unwrap().to_owned();
    let alice_grant = g["id"].as_str().unwrap().to_owned();

    let (status, got) = app
        .get(&alice.api_key, &format!("/oauth_grants/{alice_grant}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["data"], *g);
    // Another user's grant does not exist for alice, for reading or revoking.
    let (status, body) = app
        .get(&alice.api_key, &format!("/oauth_grants/{bob_grant}"))
        .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _) = app
        .delete(&alice.api_key, &format!("/oauth_grants/{bob_grant}"))
        .await;
    assert_eq!(status, 404);
    let (_, bobs) = app.get(&bob.api_key, "/oauth_grants").await;
    assert_eq!(bobs["meta"]["total_results"], 1);

    // Bad pages and no credentials.
    let (status, body) = app
        .get(&alice.api_key, "/oauth_grants?page[size]=101")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["source"]["parameter"], "page[size]");
    let (status, _) = app.get(&alice.api_key, "/oauth_grants?filter[x]=1").await;
    assert_eq!(status, 400);
    let r = app.http.get(app.at("/oauth_grants")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Also under /v2.
    let (status, _) = app.get(&alice.api_key, "/v2/oauth_grants").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn revoking_a_grant_makes_its_unused_code_unredeemable() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "alice-org").await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let client_id = c["client_id"].as_str().unwrap();
    let code = consent(&app, &alice, client_id).await;
    let (_, list) = app.get(&alice.api_key, "/oauth_grants").await;
    let grant = list["data"][0].clone();
    let id = grant["id"].as_str().unwrap();

    let (status, body) = app
        .delete(&alice.api_key, &format!("/oauth_grants/{id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], grant);
    assert_eq!(app.redeem(&code).await, CodeRedemption::Invalid);
    let (_, list) = app.get(&alice.api_key, "/oauth_grants").await;
    assert_eq!(list["meta"]["total_results"], 0);
    let (status, _) = app
        .get(&alice.api_key, &format!("/oauth_grants/{id}"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .delete(&alice.api_key, &format!("/oauth_grants/{id}"))
        .await;
    assert_eq!(status, 404);

    // Consenting again creates a new grant, with a new id.
    let code = consent(&app, &alice, client_id).await;
    let (_, list) = app.get(&alice.api_key, "/oauth_grants").await;
    assert_ne!(list["data"][0]["id"], grant["id"]);
    assert!(matches!(
        app.redeem(&code).await,
        CodeRedemption::Redeemed(_)
    ));
}

#[tokio::test]
async fn deleting_a_client_removes_its_grants() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "alice-org").await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let client_id = c["client_id"].as_str().unwrap();
    let code = consent(&app, &alice, client_id).await;
    let (status, _) = app
        .delete(&app.admin_key, &format!("/oauth_clients/{client_id}"))
        .await;
    assert_eq!(status, 204);
    let (_, list) = app.get(&alice.api_key, "/oauth_grants").await;
    assert_eq!(list["meta"]["total_results"], 0);
    assert_eq!(app.redeem(&code).await, CodeRedemption::Invalid);
}
