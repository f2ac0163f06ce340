//! CORS: the public OAuth endpoints answer preflights and allow any origin, without
//! credentials; the management API and the pages allow only the configured origins.

use reqwest::Method;
use serde_json::json;

use crate::support::TestApp;

const ORIGIN: &str = "https://mcp-client.example";

async fn preflight(app: &TestApp, path: &str, method: &str) -> reqwest::Response {
    app.http
        .request(Method::OPTIONS, app.at(path))
        .header("origin", ORIGIN)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
        .await
        .unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn public_endpoints_answer_preflights_for_any_origin() {
    let app = TestApp::spawn().await;
    for (path, method) in [
        ("/.well-known/oauth-authorization-server", "GET"),
        ("/.well-known/oauth-protected-resource", "GET"),
        ("/oauth/jwks", "GET"),
        ("/oauth/token", "POST"),
        ("/oauth/register", "POST"),
        ("/oauth/revoke", "POST"),
        ("/v2/oauth/token", "POST"),
        ("/oauth/register/some-client", "PUT"),
        ("/oauth/register/some-client", "DELETE"),
    ] {
        let r = preflight(&app, path, method).await;
        assert_eq!(r.status(), 204, "{path}");
        assert_eq!(
            header(&r, "access-control-allow-origin").as_deref(),
            Some("*"),
            "{path}"
        );
        assert!(
            header(&r, "access-control-allow-methods")
                .unwrap()
                .contains(method),
            "{path}"
        );
        let allowed = header(&r, "access-control-allow-headers")
            .unwrap()
            .to_lowercase();
        assert!(allowed.contains("content-type") && allowed.contains("authorization"));
        assert!(
            header(&r, "access-control-allow-credentials").is_none(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn public_responses_carry_the_wildcard_and_work_cross_origin() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.at("/.well-known/oauth-authorization-server"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(header(&r, "access-control-allow-credentials").is_none());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["issuer"], app.server.issuer.as_str());

    // Without an Origin, the same answer: a cache that keeps the cacheable JWK set fetched by
    // a server serves browsers a copy they may read. A listed-origins path says it varies.
    for path in ["/oauth/jwks", "/.well-known/oauth-authorization-server"] {
        let r = app.http.get(app.at(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(&r, "access-control-allow-origin").as_deref(),
            Some("*"),
            "{path}"
        );
        assert!(header(&r, "vary").is_none(), "{path}");
    }
    let r = app.http.get(app.at("/oauth_clients")).send().await.unwrap();
    assert!(header(&r, "access-control-allow-origin").is_none());
    assert_eq!(header(&r, "vary").as_deref(), Some("Origin"));

    // A registration from a browser: created, and readable by the page.
    let r = app
        .http
        .post(app.at("/oauth/register"))
        .header("origin", ORIGIN)
        .json(&json!({"client_name": "Web MCP client",
                      "redirect_uris": ["https://mcp-client.example/cb"],
                      "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    let id = body["client_id"].as_str().unwrap();
    assert!(app.server.store.get_client(id).await.unwrap().is_some());

    // An error from the token endpoint is readable too (the client must see invalid_client).
    let r = app
        .http
        .post(app.at("/oauth/token"))
        .header("origin", ORIGIN)
        .form(&[("grant_type", "client_credentials"), ("client_id", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
}

#[tokio::test]
async fn the_management_api_and_pages_refuse_unlisted_origins() {
    let app = TestApp::spawn().await;
    for (path, method) in [
        ("/oauth_clients", "GET"),
        ("/v2/oauth_clients", "POST"),
        ("/oauth_grants", "GET"),
        ("/oauth/grants", "POST"),
        ("/login", "POST"),
        ("/consent", "GET"),
        ("/oauth/authorize", "GET"),
        ("/oauth/introspect", "POST"),
    ] {
        let r = preflight(&app, path, method).await;
        assert_ne!(r.status(), 204, "{path}");
        assert!(
            header(&r, "access-control-allow-origin").is_none(),
            "{path}"
        );
        assert!(
            header(&r, "access-control-allow-methods").is_none(),
            "{path}"
        );
    }
    // The request itself is served (CORS is the browser's check) but carries no permission.
    let r = app
        .http
        .get(app.at("/oauth_clients"))
        .bearer_auth(&app.admin_key)
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "access-control-allow-origin").is_none());
    let r = app
        .http
        .get(app.at("/login"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert!(header(&r, "access-control-allow-origin").is_none());
}

#[tokio::test]
async fn listed_origins_reach_the_management_api_without_credentials() {
    let app = TestApp::spawn_with(|c| c.cors.allowed_origins = vec![ORIGIN.to_owned()]).await;
    let r = preflight(&app, "/oauth_clients", "POST").await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some(ORIGIN)
    );
    assert!(header(&r, "vary").unwrap().contains("Origin"));
    assert!(header(&r, "access-control-allow-credentials").is_none());
    let r = app
        .http
        .get(app.at("/oauth_clients"))
        .bearer_auth(&app.admin_key)
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some(ORIGIN)
    );
    // Another origin still gets nothing.
    let r = app
        .http
        .request(Method::OPTIONS, app.at("/oauth_clients"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(header(&r, "access-control-allow-origin").is_none());
    // The public endpoints keep the wildcard.
    let r = preflight(&app, "/oauth/token", "POST").await;
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
}

#[tokio::test]
async fn a_malformed_allowed_origin_is_a_configuration_error() {
    for bad in [
        "https://app.example/",
        "app.example",
        "https://app.example/x",
        "*",
    ] {
        let mut c = oauth_server::Config::default();
        c.cors.allowed_origins = vec![bad.to_owned()];
        assert!(c.check().is_err(), "{bad}");
    }
    let mut c = oauth_server::Config::default();
    c.cors.allowed_origins = vec!["https://app.example:8443".to_owned()];
    c.check().unwrap();
}
