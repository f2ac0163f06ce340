//! The discovery documents (RFC 8414, RFC 9728), at the root, under `/v2`, and at the
//! path-aware location for an issuer with a path.

use serde_json::{json, Value};

use crate::support::TestApp;

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.http.get(app.at(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn authorization_server_metadata_lists_every_endpoint() {
    let app = TestApp::spawn().await;
    let iss = app.server.issuer.clone();
    let expected = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "registration_endpoint": format!("{iss}/oauth/register"),
        "jwks_uri": format!("{iss}/oauth/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["admin", "messaging", "voice", "numbers", "billing", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
    });
    for path in [
        "/.well-known/oauth-authorization-server",
        "/v2/.well-known/oauth-authorization-server",
    ] {
        let (status, body) = get(&app, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body, expected, "{path}");
    }
    // No issuer path: the path-aware form has nothing to serve.
    let (status, body) = get(&app, "/.well-known/oauth-authorization-server/tenant").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn protected_resource_metadata_describes_the_management_api() {
    let app = TestApp::spawn().await;
    let iss = app.server.issuer.clone();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/v2/.well-known/oauth-protected-resource",
    ] {
        let (status, body) = get(&app, path).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({
                "resource": iss,
                "authorization_servers": [iss],
                "scopes_supported": ["messaging", "voice", "numbers", "billing", "profile"],
                "bearer_methods_supported": ["header"],
            })
        );
    }
}

#[tokio::test]
async fn an_issuer_with_a_path_has_path_aware_metadata() {
    let app =
        TestApp::spawn_with(|c| c.issuer = Some("https://auth.example.com/tenant-a/".into())).await;
    let (status, body) = get(&app, "/.well-known/oauth-authorization-server/tenant-a").await;
    assert_eq!(status, 200);
    assert_eq!(body["issuer"], "https://auth.example.com/tenant-a");
    assert_eq!(
        body["token_endpoint"],
        "https://auth.example.com/tenant-a/oauth/token"
    );
    let (status, _) = get(&app, "/.well-known/oauth-authorization-server/tenant-b").await;
    assert_eq!(status, 404);
    let (status, body) = get(&app, "/.well-known/oauth-protected-resource/tenant-a").await;
    assert_eq!(status, 200);
    assert_eq!(body["resource"], "https://auth.example.com/tenant-a");
    // The endpoints it advertises answer under the issuer's path, as at the root.
    let (status, body) = get(&app, "/tenant-a/oauth/jwks").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["keys"].as_array().is_some_and(|k| !k.is_empty()));
    let (status, body) = get(&app, "/tenant-a/healthz").await;
    assert_eq!(status, 200, "{body}");
    let r = app
        .http
        .post(app.at("/tenant-a/oauth/register"))
        .json(&json!({"client_name": "Under the path", "redirect_uris": ["https://c.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .http
        .post(app.at("/tenant-a/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an OAuth error, not a missing route");
    let (status, _) = get(&app, "/tenant-b/oauth/jwks").await;
    assert_eq!(status, 404);
    // A browser client may call them there as at the root (CORS).
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.at("/tenant-a/oauth/token"))
        .header("origin", "https://mcp-web.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = app
        .http
        .get(app.at("/tenant-a/oauth/jwks"))
        .header("origin", "https://mcp-web.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn plain_pkce_is_listed_only_when_enabled() {
    let app = TestApp::spawn_with(|c| c.authorization.allow_plain_pkce = true).await;
    let (_, body) = get(&app, "/.well-known/oauth-authorization-server").await;
    assert_eq!(
        body["code_challenge_methods_supported"],
        json!(["S256", "plain"])
    );
}
