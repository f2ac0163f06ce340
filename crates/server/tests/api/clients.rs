//! `/oauth_clients`: create, list with every filter, get, update, delete; tenant isolation.

use serde_json::json;

use crate::support::{confidential_client, public_client, TestApp};

#[tokio::test]
async fn create_returns_the_secret_once_and_stores_only_its_hash() {
    let app = TestApp::spawn().await;
    let c = app
        .create_client(&app.admin_key, confidential_client("Billing app"))
        .await;
    assert_eq!(c["record_type"], "oauth_client");
    assert_eq!(c["name"], "Billing app");
    assert_eq!(c["client_type"], "confidential");
    assert_eq!(c["org_id"], app.admin_org.as_str());
    let secret = c["client_secret"].as_str().expect("a secret on create");
    assert_eq!(secret.len(), 43, "256 random bits, base64url");
    let id = c["client_id"].as_str().unwrap();

    let (status, got) = app
        .get(&app.admin_key, &format!("/oauth_clients/{id}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        got["data"]["client_secret"].is_null(),
        "never again on read"
    );
    assert_eq!(got["data"]["allowed_scopes"], json!(["admin", "messaging"]));

    let stored = app.server.store.get_client(id).await.unwrap().unwrap();
    let hash = stored.secret_hash.expect("hash stored");
    assert_ne!(hash, secret);
    assert!(oauth_core::secret::verify_secret(secret, &hash));
}
