//! The consent step: the built-in page, its form, and the JSON API
//! (`GET /oauth/consent/{token}`, `POST /oauth/grants`).

use std::sync::Arc;

use oauth_server::clock::ManualClock;
use oauth_store::CodeRedemption;
use serde_json::json;

use crate::flow::*;
use crate::support::{TestApp, TestUser};

/// A client, a user with a session, and a consent token of that user.
async fn pending(app: &TestApp, client: serde_json::Value) -> (String, TestUser, String, String) {
    let c = app.create_client(&app.admin_key, client).await;
    let id = c["client_id"].as_str().unwrap().to_owned();
    let user = app.user("alice@example.com", "alice-org").await;
    let cookie = app.session(&user).await;
    let r = app
        .get_with_cookie(&path_of(&standard_params(&id)), &cookie)
        .await;
    assert_eq!(r.status(), 302);
    let token = param(&location(&r), "consent_token").unwrap();
    (id, user, cookie, token)
}

/// The consent page of `token`, as the browser of `cookie` gets it.
async fn consent_page(app: &TestApp, token: &str, cookie: &str) -> String {
    app.get_with_cookie(&format!("/consent?consent_token={token}"), cookie)
        .await
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_page_shows_the_request_with_strict_headers() {
    let app = TestApp::spawn().await;
    let (id, _, cookie, token) = pending(&app, code_client("Acme Dialer")).await;
    app.server
        .store
        .set_client_verified(&id, true, 0)
        .await
        .unwrap();
    let r = app
        .get_with_cookie(&format!("/consent?consent_token={token}"), &cookie)
        .await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' https: http:",
        "frame-ancestors 'none'",
        "form-action 'self' https://app.example.com",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    // One script may run: the page's own, by its hash; no 'self', no inline script else.
    assert!(
        csp.ends_with(&format!(
            "; script-src {}",
            oauth_server::html::consent_script_source()
        )),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe") && !csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert_eq!(
        page.matches("<script").count(),
        1,
        "the page's own script alone"
    );
    assert!(page.contains(&format!(
        "<script>{}</script>",
        oauth_server::html::CONSENT_SCRIPT
    )));
    assert!(!page.contains("style="), "no inline style");
    assert!(page.contains("name=\"viewport\""));
    assert!(page.contains("Acme Dialer"));
    assert!(page.contains("Verified application"));
    assert!(page.contains("app.example.com"));
    assert!(page.contains("Full access to your account"));
    assert!(page.contains("Send and receive messages"));
    assert!(page.contains("href=\"https://app.example.com/privacy\""));
    assert!(page.contains("href=\"https://app.example.com/terms\""));
    assert!(page.contains("alice@example.com"));
    // An https redirect URI on a real host: no warning about programs on this device.
    assert!(!page.contains("device-warning"), "{page}");
    // No resource asked for: the access is for this server.
    assert!(
        page.contains(&format!(
            "The access is for this server, <strong id=\"resource\">{}</strong>.",
            app.server.issuer
        )),
        "{page}"
    );
    assert_eq!(hidden(&page, "consent_token"), token);
    // The stylesheet it links is served.
    let css = app
        .http
        .get(app.at("/assets/oauth.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

#[tokio::test]
async fn markup_in_a_client_name_and_logo_is_inert() {
    let app = TestApp::spawn().await;
    let mut body = code_client("<script>alert(1)</script><b>Evil</b>");
    body["logo_uri"] = json!("https://cdn.example.com/l.png\"onerror=\"alert(2)");
    let (id, _, cookie, token) = pending(&app, body).await;
    // Verified, so that the logo is on the page (a client of another organization).
    app.server
        .store
        .set_client_verified(&id, true, 0)
        .await
        .unwrap();
    let page = consent_page(&app, &token, &cookie).await;
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(!page.contains("<b>Evil"));
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || page.contains("&lt;script&gt;")
    );
    assert!(!page.contains("\"onerror=\""), "{page}");
    assert!(
        page.contains("onerror=&#34;alert(2)") || page.contains("onerror=&quot;alert(2)"),
        "{page}"
    );
}

#[tokio::test]
async fn allow_through_the_form_gives_a_code_for_the_client() {
    let app = TestApp::spawn().await;
    let (id, user, cookie, token) = pending(&app, code_client("App")).await;
    let page = consent_page(&app, &token, &cookie).await;
    let csrf = hidden(&page, "csrf_token");
    let r = app
        .http
        .post(app.at("/oauth/grants"))
        .header("cookie", &cookie)
        .form(&[
            ("consent_token", token.as_str()),
            ("csrf_token", csrf.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{REDIRECT}?code=")), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("st-123"));
    assert_eq!(
        param(&loc, "iss").as_deref(),
        Some(app.server.issuer.as_str())
    );
    let code = param(&loc, "code").unwrap();
    let (_, grants) = app.get(&user.api_key, "/oauth_grants").await;
    assert_eq!(grants["data"][0]["client_id"], id.as_str());
    assert_eq!(grants["data"][0]["scopes"], json!(["admin", "messaging"]));
    match app.redeem(&code).await {
        CodeRedemption::Redeemed(c) => {
            assert_eq!(c.client_id, id);
            assert_eq!(c.user_id, user.user_id);
            assert_eq!(c.redirect_uri, REDIRECT);
            assert_eq!(c.code_challenge.as_deref(), Some(CHALLENGE));
            assert_eq!(c.grant_id, grants["data"][0]["id"].as_str().unwrap());
            assert_eq!(c.expires_at - c.created_at, 60);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn deny_through_the_form_and_a_form_without_csrf() {
    let app = TestApp::spawn().await;
    let (_, user, cookie, token) = pending(&app, code_client("App")).await;
    let form = |csrf: Option<&str>, decision: &str| {
        let mut f = vec![
            ("consent_token", token.clone()),
            ("decision", decision.to_owned()),
        ];
        if let Some(c) = csrf {
            f.push(("csrf_token", c.to_owned()));
        }
        app.http
            .post(app.at("/oauth/grants"))
            .header("cookie", &cookie)
            .form(&f)
            .send()
    };
    for bad in [None, Some(""), Some("forged")] {
        let r = form(bad, "allow").await.unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.headers().get("location").is_none());
    }
    // Nothing was decided: the token is still pending.
    let (status, _) = app
        .get(&user.api_key, &format!("/oauth/consent/{token}"))
        .await;
    assert_eq!(status, 200);

    let page = consent_page(&app, &token, &cookie).await;
    let csrf = hidden(&page, "csrf_token");
    let r = form(Some(&csrf), "deny").await.unwrap();
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert_eq!(param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&loc, "state").as_deref(), Some("st-123"));
    assert_eq!(
        param(&loc, "iss").as_deref(),
        Some(app.server.issuer.as_str())
    );
    assert!(param(&loc, "code").is_none());
    let (_, grants) = app.get(&user.api_key, "/oauth_grants").await;
    assert_eq!(grants["meta"]["total_results"], 0);
    // The CSRF token of one session is worthless in another.
    let other = app.session(&user).await;
    let r = app
        .http
        .post(app.at("/oauth/grants"))
        .header("cookie", &other)
        .form(&[
            ("consent_token", token.as_str()),
            ("csrf_token", csrf.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn the_json_api_decides_once_and_only_for_its_user() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let id = c["client_id"].as_str().unwrap();
    let alice = app.user("alice@example.com", "alice-org").await;
    let bob = app.user("bob@example.com", "bob-org").await;
    let token = app
        .consent_token(&alice.api_key, &path_of(&standard_params(id)))
        .await;

    let (status, body) = app
        .get(&alice.api_key, &format!("/oauth/consent/{token}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let d = &body["data"];
    assert_eq!(d["client_id"], id);
    assert_eq!(d["name"], "App");
    assert_eq!(d["verified"], false);
    assert_eq!(d["redirect_uri"], REDIRECT);
    assert_eq!(d["policy_uri"], "https://app.example.com/privacy");
    assert_eq!(d["requested_scopes"][1]["name"], "messaging");
    assert_eq!(
        d["requested_scopes"][1]["description"],
        "Send and receive messages"
    );
    assert_eq!(d["resource"], app.url, "no resource asked for: this server");

    // Bob cannot see or use alice's token: as if it did not exist, and it stays usable.
    let (status, body) = app
        .get(&bob.api_key, &format!("/oauth/consent/{token}"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("invalid_request"))
    );
    let (status, body) = app.decide(&bob.api_key, &token, true).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("invalid_request"))
    );
    let (status, _) = app.decide(&bob.api_key, &token, false).await;
    assert_eq!(status, 422);
    // An access token that acts for alice on the management API does not decide for her: a
    // client holding it must not approve authorizations in her name.
    let (machine, secret) = crate::oauth_support::cc_client_with(
        &app,
        &alice.api_key,
        json!({"name": "Alice's service", "client_type": "confidential",
               "allowed_grant_types": ["client_credentials"], "allowed_scopes": ["admin"]}),
    )
    .await;
    let acting = crate::oauth_support::cc_token(&app, &machine, &secret, Some("admin")).await;
    let (status, body) = app.get(&acting, "/oauth_clients").await;
    assert_eq!(status, 200, "acts for alice on the management API: {body}");
    let (status, body) = app.get(&acting, &format!("/oauth/consent/{token}")).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = app.decide(&acting, &token, true).await;
    assert_eq!(status, 401, "{body}");

    let r = app
        .http
        .post(app.at("/oauth/grants"))
        .bearer_auth(&alice.api_key)
        .json(&json!({"allowed": true, "consent_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let (status, body) = crate::support::status_json(r).await;
    assert_eq!(status, 200, "{body}");
    let uri = body["redirect_uri"].as_str().unwrap();
    assert!(param(uri, "code").is_some());
    assert_eq!(param(uri, "state").as_deref(), Some("st-123"));

    // Used twice: 422, whatever the decision.
    for allowed in [true, false] {
        let (status, body) = app.decide(&alice.api_key, &token, allowed).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("invalid_request"))
        );
    }
    let (status, _) = app
        .get(&alice.api_key, &format!("/oauth/consent/{token}"))
        .await;
    assert_eq!(status, 422);
    let (status, _) = app.get(&alice.api_key, "/oauth/consent/not-a-token").await;
    assert_eq!(status, 422);

    // Deny returns access_denied.
    let token = app
        .consent_token(&alice.api_key, &path_of(&standard_params(id)))
        .await;
    let (status, body) = app.decide(&alice.api_key, &token, false).await;
    assert_eq!(status, 200);
    let uri = body["redirect_uri"].as_str().unwrap();
    assert!(uri.starts_with(REDIRECT));
    assert_eq!(param(uri, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        param(uri, "iss").as_deref(),
        Some(app.server.issuer.as_str())
    );

    // No credentials: 401; a body that is not the contract's: 422.
    let r = app
        .http
        .post(app.at("/oauth/grants"))
        .json(&json!({"allowed": true, "consent_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (status, _) = app
        .post_json(
            &alice.api_key,
            "/oauth/grants",
            &json!({"allowed": "yes", "consent_token": "x"}),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn an_expired_consent_token_is_refused() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let path = path_of(&standard_params(c["client_id"].as_str().unwrap()));
    let token = app.consent_token(&app.admin_key, &path).await;
    clock.advance(599);
    let (status, _) = app
        .get(&app.admin_key, &format!("/oauth/consent/{token}"))
        .await;
    assert_eq!(status, 200);
    clock.advance(1);
    let (status, body) = app
        .get(&app.admin_key, &format!("/oauth/consent/{token}"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("invalid_request"))
    );
    let (status, _) = app.decide(&app.admin_key, &token, true).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_cookie_authenticated_json_decision_needs_the_csrf_header() {
    let app = TestApp::spawn().await;
    let (_, _, cookie, token) = pending(&app, code_client("App")).await;
    let page = consent_page(&app, &token, &cookie).await;
    let csrf = hidden(&page, "csrf_token");
    // Reading needs no CSRF token: the cookie alone is enough.
    let r = app
        .get_with_cookie(&format!("/oauth/consent/{token}"), &cookie)
        .await;
    assert_eq!(r.status(), 200);
    let body = json!({"allowed": true, "consent_token": token});
    let r = app
        .http
        .post(app.at("/oauth/grants"))
        .header("cookie", &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app
        .http
        .post(app.at("/oauth/grants"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn concurrent_decisions_on_one_token_yield_one_code() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let path = path_of(&standard_params(c["client_id"].as_str().unwrap()));
    let token = app.consent_token(&app.admin_key, &path).await;
    let (a, b, c2, d) = tokio::join!(
        app.decide(&app.admin_key, &token, true),
        app.decide(&app.admin_key, &token, true),
        app.decide(&app.admin_key, &token, false),
        app.decide(&app.admin_key, &token, true),
    );
    let statuses = [a.0, b.0, c2.0, d.0];
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 422).count(),
        3,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn consenting_again_widens_the_one_grant() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let id = c["client_id"].as_str().unwrap();
    let mut p = standard_params(id);
    let token = app.consent_token(&app.admin_key, &path_of(&p)).await;
    app.decide(&app.admin_key, &token, true).await;
    p.retain(|(k, _)| *k != "scope");
    p.push(("scope", "voice".into()));
    let token = app.consent_token(&app.admin_key, &path_of(&p)).await;
    app.decide(&app.admin_key, &token, true).await;
    let (_, grants) = app.get(&app.admin_key, "/oauth_grants").await;
    assert_eq!(grants["meta"]["total_results"], 1);
    assert_eq!(
        grants["data"][0]["scopes"],
        json!(["admin", "messaging", "voice"])
    );
}

#[tokio::test]
async fn the_page_needs_a_session_and_a_live_token() {
    let app = TestApp::spawn().await;
    let (_, _, cookie, token) = pending(&app, code_client("App")).await;
    let path = format!("/consent?consent_token={token}");
    let r = app.http.get(app.at(&path)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        param(&location(&r), "return_to").as_deref(),
        Some(path.as_str())
    );
    let r = app
        .get_with_cookie("/consent?consent_token=unknown", &cookie)
        .await;
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("expired or was already answered"));
    // Another user's session sees the same page as for an unknown token.
    let bob = app.user("bob@example.com", "bob-org").await;
    let bob_cookie = app.session(&bob).await;
    let r = app.get_with_cookie(&path, &bob_cookie).await;
    assert_eq!(r.status(), 422);
}

/// The page says which resource (RFC 8707) the access is for, as the request named it.
#[tokio::test]
async fn the_page_names_the_resource_asked_for() {
    const MCP: &str = "https://mcp.example.com/mcp";
    let app = TestApp::spawn_with(|c| c.resources = vec![MCP.into()]).await;
    let user = app.user("alice@example.com", "acme").await;
    let cookie = app.session(&user).await;
    let c = app.create_client(&user.api_key, code_client("Tools")).await;
    let id = c["client_id"].as_str().unwrap();
    let mut params = standard_params(id);
    params.push(("resource", MCP.into()));
    let r = app.get_with_cookie(&path_of(&params), &cookie).await;
    let token = param(&location(&r), "consent_token").unwrap();
    let page = consent_page(&app, &token, &cookie).await;
    assert!(
        page.contains(&format!(
            "The access is for <strong id=\"resource\">{MCP}</strong>."
        )),
        "{page}"
    );
    assert!(!page.contains("this server,"), "{page}");
    // A consent screen built on the JSON learns it too.
    let (status, body) = app
        .get(&user.api_key, &format!("/oauth/consent/{token}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["resource"], MCP, "{body}");
}

/// The consent form's post past the management API's per-address limit is answered as every
/// form error is: a page (429, `Retry-After`, the pages' headers), not the API's JSON; the
/// request is not used up, and the same form works once the window has passed.
#[tokio::test]
async fn a_rate_limited_form_post_is_a_page_and_spends_nothing() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.rate_limits.management_per_ip = oauth_server::config::RateLimit {
            requests: 5,
            window_secs: 60,
        };
    })
    .await;
    let (_, user, cookie, token) = pending(&app, code_client("App")).await;
    let page = consent_page(&app, &token, &cookie).await;
    let csrf = hidden(&page, "csrf_token");
    // Spend the address's budget on the JSON API.
    let mut spent = 0;
    while app.get(&user.api_key, "/oauth_grants").await.0 != 429 {
        spent += 1;
        assert!(spent <= 5, "the limit holds");
    }
    let post = || {
        app.http
            .post(app.at("/oauth/grants"))
            .header("cookie", &cookie)
            .form(&[
                ("consent_token", token.as_str()),
                ("csrf_token", csrf.as_str()),
                ("decision", "allow"),
            ])
            .send()
    };
    let r = post().await.unwrap();
    assert_eq!(r.status(), 429);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(h.contains_key("retry-after"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let body = r.text().await.unwrap();
    assert!(body.contains("<html"), "{body}");
    clock.advance(61);
    let r = post().await.unwrap();
    assert_eq!(r.status(), 303, "the request was not used up");
    assert!(location(&r).starts_with(&format!("{REDIRECT}?code=")));
}

/// A logo the consent page would make the user's browser load: a first-party client's, or a
/// verified one's; never an anonymous registrant's address (a tracking pixel, a device on the
/// user's network), in the page or in the JSON.
#[tokio::test]
async fn an_unverified_registrants_logo_is_never_loaded() {
    let app = TestApp::spawn().await;
    const PIXEL: &str = "http://192.168.1.1/reboot?who=victim";
    let r = app
        .http
        .post(app.at("/oauth/register"))
        .json(
            &json!({"client_name": "Logo Tracker", "redirect_uris": [REDIRECT],
                      "logo_uri": PIXEL, "token_endpoint_auth_method": "none"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = app.user("alice@example.com", "alice-org").await;
    let cookie = app.session(&user).await;
    let consent = || async {
        let r = app
            .get_with_cookie(&path_of(&standard_params(&id)), &cookie)
            .await;
        let token = param(&location(&r), "consent_token").unwrap();
        let page = consent_page(&app, &token, &cookie).await;
        let (status, json) = app
            .get(&user.api_key, &format!("/oauth/consent/{token}"))
            .await;
        assert_eq!(status, 200, "{json}");
        (page, json["data"]["logo_uri"].clone())
    };
    let (page, logo) = consent().await;
    assert!(page.contains("Logo Tracker"), "{page}");
    assert!(!page.contains("192.168.1.1"), "{page}");
    assert_eq!(logo, serde_json::Value::Null);
    // Once the operator vouches for the client, its logo is shown.
    app.server
        .store
        .set_client_verified(&id, true, 0)
        .await
        .unwrap();
    let (page, logo) = consent().await;
    assert!(page.contains("192.168.1.1/reboot"), "{page}");
    assert_eq!(logo, PIXEL);
}

/// What `user` is shown of client `id`'s logo: whether the consent page names it, and the JSON's
/// `logo_uri`.
async fn logo_seen_by(app: &TestApp, id: &str, user: &TestUser) -> (bool, serde_json::Value) {
    let cookie = app.session(user).await;
    let r = app
        .get_with_cookie(&path_of(&standard_params(id)), &cookie)
        .await;
    let token = param(&location(&r), "consent_token").unwrap();
    let page = consent_page(app, &token, &cookie).await;
    let (status, json) = app
        .get(&user.api_key, &format!("/oauth/consent/{token}"))
        .await;
    assert_eq!(status, 200, "{json}");
    (
        page.contains("localhost:9/track.png"),
        json["data"]["logo_uri"].clone(),
    )
}

/// A first-party client's logo is loaded for users of its own organization only (or once the
/// operator verifies it): a member of another organization chose its address, as an anonymous
/// registrant would.
#[tokio::test]
async fn another_organizations_logo_is_loaded_only_once_verified() {
    let app = TestApp::spawn().await;
    const PIXEL: &str = "http://localhost:9/track.png?who=victim";
    let mallory = app.user("mallory@example.com", "mallory-org").await;
    let mut client = code_client("Mallory's App");
    client["logo_uri"] = json!(PIXEL);
    let c = app.create_client(&mallory.api_key, client).await;
    let id = c["client_id"].as_str().unwrap().to_owned();
    let colleague = app.user("colleague@example.com", "mallory-org").await;
    let victim = app.user("victim@example.com", "victim-org").await;
    assert_eq!(
        logo_seen_by(&app, &id, &colleague).await,
        (true, json!(PIXEL))
    );
    assert_eq!(
        logo_seen_by(&app, &id, &victim).await,
        (false, serde_json::Value::Null)
    );
    app.server
        .store
        .set_client_verified(&id, true, 0)
        .await
        .unwrap();
    assert_eq!(logo_seen_by(&app, &id, &victim).await, (true, json!(PIXEL)));
}
