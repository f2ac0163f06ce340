//! `GET /oauth/authorize`: the order of checks, what is a page and what is a redirect, PKCE,
//! scopes, resources, who the user is.

use std::sync::Arc;

use oauth_server::clock::ManualClock;
use oauth_store::CodeRedemption;
use serde_json::json;

use crate::flow::*;
use crate::support::{public_client, TestApp};

/// An HTML error page: the status, no `Location`, the page headers, the message. The page.
async fn assert_page(r: reqwest::Response, status: u16, text: &str) -> String {
    assert_eq!(r.status(), status);
    assert!(r.headers().get("location").is_none(), "never a redirect");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let body = r.text().await.unwrap();
    assert!(body.contains(text), "{body}");
    body
}

/// A redirect back to the client carrying `error`, `state` and `iss`.
fn assert_error_redirect(app: &TestApp, r: &reqwest::Response, redirect: &str, error: &str) {
    assert_eq!(r.status(), 302);
    let loc = location(r);
    assert!(loc.starts_with(&format!("{redirect}?")), "{loc}");
    assert_eq!(param(&loc, "error").as_deref(), Some(error), "{loc}");
    assert!(param(&loc, "error_description").is_some());
    assert_eq!(param(&loc, "state").as_deref(), Some("st-123"));
    assert_eq!(
        param(&loc, "iss").as_deref(),
        Some(app.server.issuer.as_str())
    );
    assert!(param(&loc, "code").is_none());
}

async fn get(app: &TestApp, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut rb = app.http.get(app.at(path));
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    rb.send().await.unwrap()
}

fn with(
    mut p: Vec<(&'static str, String)>,
    k: &'static str,
    v: Option<&str>,
) -> Vec<(&'static str, String)> {
    p.retain(|(key, _)| *key != k);
    if let Some(v) = v {
        p.push((k, v.to_owned()));
    }
    p
}

#[tokio::test]
async fn an_unknown_client_or_a_missing_client_id_gets_a_page() {
    let app = TestApp::spawn().await;
    let p = standard_params("00000000-0000-0000-0000-000000000000");
    assert_page(get(&app, &path_of(&p), None).await, 404, "No application").await;
    let p = with(p, "client_id", None);
    assert_page(get(&app, &path_of(&p), None).await, 400, "no client_id").await;
}

/// Consent requests stored (each authorize request that reaches the consent step makes one).
async fn consent_requests(app: &TestApp) -> i64 {
    crate::support::sqlite(&app.database_url)
        .query_row("SELECT COUNT(*) FROM consent_requests", [], |r| r.get(0))
        .unwrap()
}

/// A query the decoder refuses gets a page that says why: bytes that are not UTF-8 once
/// percent-decoded, or a NUL, with the parameter that holds it named (its name cut short and
/// escaped). Nothing is stored, even for a signed-in user with an otherwise valid request.
#[tokio::test]
async fn an_unreadable_query_gets_a_page_saying_what_is_wrong() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let id = c["client_id"].as_str().unwrap();
    let valid = path_of(&with(standard_params(id), "state", None));
    let key = Some(app.admin_key.as_str());
    let page = |extra: &str| {
        let path = format!("{valid}&{extra}");
        let app = &app;
        async move { get(app, &path, key).await }
    };

    for extra in ["state=%FF", "state=%C3%28", "%FF=1"] {
        let body = assert_page(page(extra).await, 400, "not valid UTF-8").await;
        assert!(!body.contains("NUL"), "{extra}: {body}");
    }
    let body = assert_page(
        page("state=a%00b").await,
        400,
        "parameter `state` holds a NUL character (%00)",
    )
    .await;
    assert!(!body.contains("UTF-8"), "{body}");
    // Before the client's own checks: a NUL in client_id is said as such too.
    let nul_id = path_of(&with(standard_params(id), "client_id", Some("a\0b")));
    assert_page(
        get(&app, &nul_id, key).await,
        400,
        "parameter `client_id` holds a NUL character",
    )
    .await;
    // In a name, the NUL is shown as `\0`.
    assert_page(page("a%00b=1").await, 400, "parameter `a\\0b` holds a NUL").await;
    // A long name with markup: escaped, and cut at 64 characters.
    let long = format!("<b>{}", "x".repeat(1000));
    let body = assert_page(
        page(&format!("{long}%00=1")).await,
        400,
        &format!("{}…` holds a NUL", "x".repeat(61)),
    )
    .await;
    assert!(!body.contains("<b>"), "{body}");
    assert!(!body.contains(&"x".repeat(62)), "{body}");

    assert_eq!(consent_requests(&app).await, 0);
    // The same request without the bad parameter reaches the consent step.
    let r = get(&app, &valid, key).await;
    assert_eq!(r.status(), 302);
    assert_eq!(consent_requests(&app).await, 1);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_is_never_redirected_to() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let id = c["client_id"].as_str().unwrap();
    for bad in [
        "https://evil.example/callback",
        "https://app.example.com/callback/extra",
        "https://app.example.com/callback?x=1",
        "https://app.example.com/callback#frag",
        "http://localhost:8080/cb",
    ] {
        let p = with(standard_params(id), "redirect_uri", Some(bad));
        assert_page(
            get(&app, &path_of(&p), Some(&app.admin_key)).await,
            422,
            "not registered",
        )
        .await;
    }
    let p = with(standard_params(id), "redirect_uri", None);
    assert_page(get(&app, &path_of(&p), None).await, 400, "no redirect_uri").await;
    // A repeated redirect_uri cannot be trusted either: a page, even with a broken
    // response_type that would otherwise be redirected.
    let mut p = with(standard_params(id), "response_type", Some("token"));
    p.push(("redirect_uri", REDIRECT.into()));
    assert_page(
        get(&app, &path_of(&p), None).await,
        400,
        "more than one redirect_uri",
    )
    .await;
}

#[tokio::test]
async fn a_loopback_redirect_uri_may_use_another_port() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let id = c["client_id"].as_str().unwrap();
    let p = with(
        standard_params(id),
        "redirect_uri",
        Some("http://127.0.0.1:49152/cb"),
    );
    let token = app.consent_token(&app.admin_key, &path_of(&p)).await;
    let (status, body) = app
        .get(&app.admin_key, &format!("/oauth/consent/{token}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["redirect_uri"], "http://127.0.0.1:49152/cb");
    // ...but not another path on it.
    let p = with(
        standard_params(id),
        "redirect_uri",
        Some("http://127.0.0.1:49152/cb/x"),
    );
    assert_page(get(&app, &path_of(&p), None).await, 422, "not registered").await;
}

#[tokio::test]
async fn other_errors_redirect_with_error_state_and_iss() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let id = c["client_id"].as_str().unwrap();
    let cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (
            with(standard_params(id), "response_type", Some("token")),
            "unsupported_response_type",
        ),
        (
            with(standard_params(id), "response_type", None),
            "invalid_request",
        ),
        (
            with(standard_params(id), "scope", Some("admin billing")),
            "invalid_scope",
        ),
        (
            with(standard_params(id), "scope", Some("adm\"in")),
            "invalid_scope",
        ),
        (
            with(
                standard_params(id),
                "resource",
                Some("https://elsewhere.example"),
            ),
            "invalid_target",
        ),
        (
            with(standard_params(id), "resource", Some("not a uri")),
            "invalid_target",
        ),
        // PKCE required (require_pkce) and missing, malformed, or plain while disabled.
        (
            with(
                with(standard_params(id), "code_challenge", None),
                "code_challenge_method",
                None,
            ),
            "invalid_request",
        ),
        (
            with(standard_params(id), "code_challenge", Some("too-short")),
            "invalid_request",
        ),
        (
            with(
                standard_params(id),
                "code_challenge",
                Some(&format!("{}+", &CHALLENGE[..43])),
            ),
            "invalid_request",
        ),
        (
            with(standard_params(id), "code_challenge_method", Some("plain")),
            "invalid_request",
        ),
        (
            with(standard_params(id), "code_challenge_method", Some("S512")),
            "invalid_request",
        ),
        (
            with(standard_params(id), "code_challenge_method", None),
            "invalid_request",
        ),
    ];
    for (p, error) in cases {
        let r = get(&app, &path_of(&p), Some(&app.admin_key)).await;
        assert_error_redirect(&app, &r, REDIRECT, error);
    }
    // A repeated parameter other than client_id/redirect_uri: the redirect URI is verified, so
    // the client hears about it.
    let mut p = standard_params(id);
    p.push(("scope", "voice".into()));
    let r = get(&app, &path_of(&p), Some(&app.admin_key)).await;
    assert_error_redirect(&app, &r, REDIRECT, "invalid_request");
    assert!(param(&location(&r), "error_description")
        .unwrap()
        .contains("scope"));
    // Nothing was stored for any of them.
    let (_, grants) = app.get(&app.admin_key, "/oauth_grants").await;
    assert_eq!(grants["meta"]["total_results"], 0);
}

#[tokio::test]
async fn a_client_without_the_code_grant_is_unauthorized_client() {
    let app = TestApp::spawn().await;
    let mut body = code_client("Machine");
    body["allowed_grant_types"] = json!(["client_credentials"]);
    let c = app.create_client(&app.admin_key, body).await;
    // Signed in (an unverified client's errors redirect only once a user is there).
    let r = get(
        &app,
        &path_of(&standard_params(c["client_id"].as_str().unwrap())),
        Some(&app.admin_key),
    )
    .await;
    assert_error_redirect(&app, &r, REDIRECT, "unauthorized_client");
}

#[tokio::test]
async fn public_clients_must_use_pkce_and_plain_needs_the_operator() {
    let app = TestApp::spawn().await;
    let c = app
        .create_client(&app.admin_key, public_client("Native"))
        .await;
    let id = c["client_id"].as_str().unwrap();
    let base = with(
        standard_params(id),
        "redirect_uri",
        Some("http://127.0.0.1/callback"),
    );
    let r = get(
        &app,
        &path_of(&with(
            with(base.clone(), "code_challenge", None),
            "code_challenge_method",
            None,
        )),
        Some(&app.admin_key),
    )
    .await;
    assert_error_redirect(&app, &r, "http://127.0.0.1/callback", "invalid_request");
    assert!(param(&location(&r), "error_description")
        .unwrap()
        .contains("PKCE"));
    let plain = with(
        with(base.clone(), "code_challenge_method", Some("plain")),
        "code_challenge",
        Some(VERIFIER),
    );
    let r = get(&app, &path_of(&plain), Some(&app.admin_key)).await;
    assert_error_redirect(&app, &r, "http://127.0.0.1/callback", "invalid_request");

    // With plain enabled, the same request goes on to the login page.
    let app = TestApp::spawn_with(|c| c.authorization.allow_plain_pkce = true).await;
    let c = app
        .create_client(&app.admin_key, public_client("Native"))
        .await;
    let id = c["client_id"].as_str().unwrap();
    let plain = with(
        with(
            with(
                standard_params(id),
                "redirect_uri",
                Some("http://127.0.0.1/callback"),
            ),
            "code_challenge_method",
            Some("plain"),
        ),
        "code_challenge",
        Some(VERIFIER),
    );
    let token = app.consent_token(&app.admin_key, &path_of(&plain)).await;
    let (status, body) = app.decide(&app.admin_key, &token, true).await;
    assert_eq!(status, 200, "{body}");
    let code = param(body["redirect_uri"].as_str().unwrap(), "code").unwrap();
    match app.redeem(&code).await {
        CodeRedemption::Redeemed(c) => {
            assert_eq!(c.code_challenge.as_deref(), Some(VERIFIER));
            assert_eq!(c.code_challenge_method.as_deref(), Some("plain"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn without_a_user_the_browser_goes_to_login_and_comes_back() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let path = path_of(&standard_params(c["client_id"].as_str().unwrap()));
    let r = get(&app, &path, None).await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(loc.starts_with("/login?return_to="), "{loc}");
    assert_eq!(param(&loc, "return_to").as_deref(), Some(path.as_str()));
    // An unknown API key is no user either.
    let r = get(&app, &path, Some("KEYnot-a-real-key")).await;
    assert!(location(&r).starts_with("/login?"));

    // After signing in, return_to leads back to the authorize request, which now goes on to the
    // consent page.
    let user = app.user("alice@example.com", "alice-org").await;
    let r = app.post_login(&user.email, &user.password, &path).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), path);
    let (session, _) = set_cookie(&r, "oauth_session").unwrap();
    let r = app
        .get_with_cookie(&path, &format!("oauth_session={session}"))
        .await;
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with("/consent?consent_token="));
}

#[tokio::test]
async fn no_scope_means_all_of_the_clients_scopes_and_resources_are_carried() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let id = c["client_id"].as_str().unwrap();
    let p = with(
        with(standard_params(id), "scope", None),
        "resource",
        Some(&app.server.issuer),
    );
    let token = app.consent_token(&app.admin_key, &path_of(&p)).await;
    let (_, body) = app
        .get(&app.admin_key, &format!("/oauth/consent/{token}"))
        .await;
    let names: Vec<&str> = body["data"]["requested_scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "messaging", "voice"]);
    let (_, body) = app.decide(&app.admin_key, &token, true).await;
    let code = param(body["redirect_uri"].as_str().unwrap(), "code").unwrap();
    match app.redeem(&code).await {
        CodeRedemption::Redeemed(c) => {
            assert_eq!(c.resource.as_deref(), Some(app.server.issuer.as_str()));
            assert_eq!(c.scopes, ["admin", "messaging", "voice"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn configured_resources_and_an_external_consent_page() {
    let app = TestApp::spawn_with(|c| {
        c.resources = vec!["https://api.example.net".into()];
        c.authorization.consent_url = Some("https://consent.example.net/approve?lang=en".into());
    })
    .await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let id = c["client_id"].as_str().unwrap();
    let p = with(
        standard_params(id),
        "resource",
        Some("https://api.example.net"),
    );
    let r = get(&app, &path_of(&p), Some(&app.admin_key)).await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(
        loc.starts_with("https://consent.example.net/approve?lang=en&consent_token="),
        "{loc}"
    );
    // The issuer stays a known resource (the management API); anything else is a target error.
    let p = with(standard_params(id), "resource", Some(&app.server.issuer));
    let r = get(&app, &path_of(&p), Some(&app.admin_key)).await;
    assert_eq!(r.status(), 302);
    assert!(
        location(&r).starts_with("https://consent.example.net/"),
        "{}",
        location(&r)
    );
    let p = with(
        standard_params(id),
        "resource",
        Some("https://unknown.example.net"),
    );
    let r = get(&app, &path_of(&p), Some(&app.admin_key)).await;
    assert_error_redirect(&app, &r, REDIRECT, "invalid_target");
    // Two resources (RFC 8707 §2 lets a client ask): one at a time here, `invalid_target`.
    let mut two = with(
        standard_params(id),
        "resource",
        Some("https://api.example.net"),
    );
    two.push(("resource", app.server.issuer.clone()));
    let r = get(&app, &path_of(&two), Some(&app.admin_key)).await;
    assert_error_redirect(&app, &r, REDIRECT, "invalid_target");
}

#[tokio::test]
async fn consent_is_asked_every_time_unless_configured_otherwise() {
    for skip in [false, true] {
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let app =
            TestApp::spawn_with_clock(clock, |c| c.authorization.skip_consent_if_granted = skip)
                .await;
        let c = app.create_client(&app.admin_key, code_client("App")).await;
        let id = c["client_id"].as_str().unwrap();
        let path = path_of(&standard_params(id));
        let token = app.consent_token(&app.admin_key, &path).await;
        let (status, _) = app.decide(&app.admin_key, &token, true).await;
        assert_eq!(status, 200);

        let r = get(&app, &path, Some(&app.admin_key)).await;
        let loc = location(&r);
        if skip {
            assert!(loc.starts_with(REDIRECT), "{loc}");
            assert!(param(&loc, "code").is_some());
            assert_eq!(param(&loc, "state").as_deref(), Some("st-123"));
            // A scope beyond the grant still asks.
            let wider = with(standard_params(id), "scope", Some("admin voice"));
            let r = get(&app, &path_of(&wider), Some(&app.admin_key)).await;
            assert!(location(&r).starts_with("/consent?"));
        } else {
            assert!(loc.starts_with("/consent?consent_token="), "{loc}");
        }
    }
}

/// With `skip_consent_if_granted`, a public client's loopback installation is asked every time,
/// whoever created the client: its id is public, and any program on the device can listen on a
/// loopback port and pose as the app the user approved (RFC 8252 §8.6). Its https installation
/// skips the page as a confidential client's does.
#[tokio::test]
async fn a_public_clients_loopback_installation_is_asked_every_time() {
    let app = TestApp::spawn_with(|c| c.authorization.skip_consent_if_granted = true).await;
    let mut client = code_client("Desktop app");
    client["client_type"] = json!("public");
    client["redirect_uris"] = json!([REDIRECT, "http://127.0.0.1/callback"]);
    let c = app.create_client(&app.admin_key, client).await;
    let id = c["client_id"].as_str().unwrap();
    for (redirect, port) in [(REDIRECT, None), ("http://127.0.0.1/callback", Some(40001))] {
        let at_port = |port: u16| format!("http://127.0.0.1:{port}/callback");
        let first = port.map_or_else(|| redirect.to_owned(), at_port);
        let params = with(standard_params(id), "redirect_uri", Some(&first));
        let token = app.consent_token(&app.admin_key, &path_of(&params)).await;
        let (status, body) = app.decide(&app.admin_key, &token, true).await;
        assert_eq!(status, 200, "{body}");
        // The same request again, from another port for the loopback one (another program).
        let again = port.map_or_else(|| redirect.to_owned(), |p| at_port(p + 998));
        let params = with(standard_params(id), "redirect_uri", Some(&again));
        let r = get(&app, &path_of(&params), Some(&app.admin_key)).await;
        let loc = location(&r);
        if port.is_some() {
            assert!(loc.starts_with("/consent?consent_token="), "{loc}");
        } else {
            assert!(loc.starts_with(REDIRECT), "{loc}");
            assert!(param(&loc, "code").is_some(), "{loc}");
        }
    }
}

/// With `skip_consent_if_granted`, a grant approved for one resource does not cover a request
/// for no resource, which asks for the issuer (the management API): the user is asked. The
/// approved resource itself is covered.
#[tokio::test]
async fn a_grant_for_one_resource_does_not_cover_the_management_api() {
    const MCP: &str = "https://mcp.example.com/mcp";
    let app = TestApp::spawn_with(|c| {
        c.authorization.skip_consent_if_granted = true;
        c.resources = vec![MCP.into()];
    })
    .await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let id = c["client_id"].as_str().unwrap();
    let for_mcp = with(standard_params(id), "resource", Some(MCP));
    let token = app.consent_token(&app.admin_key, &path_of(&for_mcp)).await;
    let (status, body) = app.decide(&app.admin_key, &token, true).await;
    assert_eq!(status, 200, "{body}");
    // The same resource again: covered, a code at once.
    let r = get(&app, &path_of(&for_mcp), Some(&app.admin_key)).await;
    let loc = location(&r);
    assert!(
        loc.starts_with(REDIRECT) && param(&loc, "code").is_some(),
        "{loc}"
    );
    // No resource, or the issuer by name: asked.
    let issuer = app.server.issuer.clone();
    for resource in [None, Some(issuer.as_str())] {
        let params = with(standard_params(id), "resource", resource);
        let r = get(&app, &path_of(&params), Some(&app.admin_key)).await;
        let loc = location(&r);
        assert!(
            loc.starts_with("/consent?consent_token="),
            "{resource:?}: {loc}"
        );
    }
}

#[tokio::test]
async fn the_flow_is_served_under_v2_too() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let path = format!(
        "/v2{}",
        path_of(&standard_params(c["client_id"].as_str().unwrap()))
    );
    let r = get(&app, &path, None).await;
    assert_eq!(
        param(&location(&r), "return_to").as_deref(),
        Some(path.as_str())
    );
    let r = get(&app, &path, Some(&app.admin_key)).await;
    let token = param(&location(&r), "consent_token").unwrap();
    let (status, body) = app
        .post_json(
            &app.admin_key,
            "/v2/oauth/grants",
            &json!({"allowed": true, "consent_token": token}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(param(body["redirect_uri"].as_str().unwrap(), "code").is_some());
}
