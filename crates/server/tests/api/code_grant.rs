//! `POST /oauth/token` with `authorization_code` (RFC 6749 §4.1.3) and `refresh_token` (§6):
//! every check, replay and reuse, concurrency, and revocation reaching the tokens.

use std::sync::Arc;

use oauth_core::secret;
use oauth_server::clock::ManualClock;
use serde_json::{json, Value};

use crate::flow::*;
use crate::oauth_support::*;
use crate::support::{public_client, TestApp};

/// A confidential code-flow client of the admin's organization: (id, secret).
async fn code_app_client(app: &TestApp, body: Value) -> (String, String) {
    cc_client_with(app, &app.admin_key, body).await
}

/// The admin authorizes and consents with these authorize parameters; returns the code.
async fn code_for(app: &TestApp, params: &[(&'static str, String)]) -> String {
    let token = app.consent_token(&app.admin_key, &path_of(params)).await;
    let (status, body) = app.decide(&app.admin_key, &token, true).await;
    assert_eq!(status, 200, "{body}");
    let uri = body["redirect_uri"].as_str().unwrap();
    param(uri, "code").expect("code in the redirect")
}

async fn exchange(app: &TestApp, id: &str, secret: &str, form: &[(&str, &str)]) -> Resp {
    let mut f = vec![("grant_type", "authorization_code")];
    f.extend_from_slice(form);
    post_form(app, "/oauth/token", Some(&basic(id, secret)), &f).await
}

async fn refresh(app: &TestApp, id: &str, secret: &str, rt: &str, scope: Option<&str>) -> Resp {
    let mut f = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    if let Some(s) = scope {
        f.push(("scope", s));
    }
    post_form(app, "/oauth/token", Some(&basic(id, secret)), &f).await
}

fn assert_oauth_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"], error, "{}", r.body);
    assert!(r.body.get("access_token").is_none());
}

/// A fresh code exchanged with the standard parameters: the token response.
async fn tokens(app: &TestApp, id: &str, secret: &str) -> Value {
    let code = code_for(app, &standard_params(id)).await;
    let r = exchange(
        app,
        id,
        secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[tokio::test]
async fn code_exchange_issues_a_jwt_and_a_refresh_token() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let code = code_for(&app, &standard_params(&id)).await;
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3600);
    assert_eq!(r.body["scope"], "admin messaging");
    let rt = r.body["refresh_token"].as_str().unwrap();
    assert_eq!(rt.len(), 43, "256 random bits, base64url");
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "admin messaging");
    let admin = app
        .server
        .store
        .find_user_by_email("admin@localhost")
        .await
        .unwrap();
    let grant_id = claims["grant_id"].as_str().expect("grant id claim");
    let grant = app
        .server
        .store
        .live_grant(grant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["sub"], grant.user_id.as_str());
    if let Some(admin) = admin {
        assert_eq!(grant.user_id, admin.id);
    }
    assert!(
        grant.last_used_at.is_some(),
        "the exchange touches the grant"
    );
    // Only the hash is stored.
    let stored = app
        .server
        .store
        .find_refresh_token(&secret::hash_secret(rt))
        .await
        .unwrap()
        .expect("refresh token stored by hash");
    assert_eq!(stored.grant_id, grant_id);
    assert_eq!(stored.expires_at - stored.created_at, 30 * 86_400);
    // The access token is active for its client.
    let i = introspect_as(&app, &id, &secret, r.body["access_token"].as_str().unwrap()).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], grant.user_id.as_str());
}

#[tokio::test]
async fn no_refresh_token_without_the_refresh_grant() {
    let app = TestApp::spawn().await;
    let mut body = code_client("No refresh");
    body["allowed_grant_types"] = json!(["authorization_code"]);
    let (id, secret) = code_app_client(&app, body).await;
    let t = tokens(&app, &id, &secret).await;
    assert!(t.get("refresh_token").is_none(), "{t}");
    assert!(t["access_token"].is_string());
}

#[tokio::test]
async fn a_replayed_code_is_invalid_grant_and_revokes_its_tokens() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let code = code_for(&app, &standard_params(&id)).await;
    let form = [
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let first = exchange(&app, &id, &secret, &form).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let at = first.body["access_token"].as_str().unwrap();
    let rt = first.body["refresh_token"].as_str().unwrap();
    assert_eq!(introspect_as(&app, &id, &secret, at).await["active"], true);

    let replay = exchange(&app, &id, &secret, &form).await;
    assert_oauth_error(&replay, 400, "invalid_grant");
    // RFC 6749 §4.1.2: the tokens issued from the code are revoked.
    assert_eq!(introspect_as(&app, &id, &secret, at).await, inactive());
    assert_eq!(introspect_as(&app, &id, &secret, rt).await, inactive());
    assert_oauth_error(
        &refresh(&app, &id, &secret, rt, None).await,
        400,
        "invalid_grant",
    );
    // What ends is the family of that code, not the user's grant (their other
    // authorizations of the client stand).
    let (_, claims) = jwt_parts(at);
    let grant_id = claims["grant_id"].as_str().unwrap();
    let family_id = claims["family_id"].as_str().unwrap();
    assert!(!app.server.store.live_token_family(family_id).await.unwrap());
    assert!(app
        .server
        .store
        .live_grant(grant_id)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn concurrent_redemptions_have_exactly_one_winner() {
    let app = Arc::new(TestApp::spawn().await);
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let code = code_for(&app, &standard_params(&id)).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (app, id, secret, code) = (app.clone(), id.clone(), secret.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            exchange(
                &app,
                &id,
                &secret,
                &[
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            400 => assert_eq!(r.body["error"], "invalid_grant"),
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn code_checks_each_fail_with_invalid_grant_and_burn_the_code_but_another_clients_does_not() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let (other_id, other_secret) = code_app_client(&app, code_client("Other")).await;
    let wrong_verifier = "x".repeat(43);
    // (who presents, form without grant_type)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        // Wrong redirect_uri (another registered one).
        (
            &id,
            &secret,
            vec![
                ("redirect_uri", "http://127.0.0.1/cb"),
                ("code_verifier", VERIFIER),
            ],
        ),
        // Missing verifier.
        (&id, &secret, vec![("redirect_uri", REDIRECT)]),
        // Wrong verifier.
        (
            &id,
            &secret,
            vec![
                ("redirect_uri", REDIRECT),
                ("code_verifier", &wrong_verifier),
            ],
        ),
    ];
    for (who, who_secret, extra) in cases {
        let code = code_for(&app, &standard_params(&id)).await;
        let mut form = vec![("code", code.as_str())];
        form.extend(extra.iter().copied());
        let r = exchange(&app, who, who_secret, &form).await;
        assert_oauth_error(&r, 400, "invalid_grant");
        // The code is burned: the right request afterwards fails too.
        let again = exchange(
            &app,
            &id,
            &secret,
            &[
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_oauth_error(&again, 400, "invalid_grant");
    }
    // Another client's attempt is refused and burns nothing: the code was never theirs to
    // spend (its owner may be the victim of whoever presents it).
    let code = code_for(&app, &standard_params(&id)).await;
    let form = [
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let r = exchange(&app, &other_id, &other_secret, &form).await;
    assert_oauth_error(&r, 400, "invalid_grant");
    let r = exchange(&app, &id, &secret, &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Unknown code.
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", "nope"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_grant");
    // Missing code or redirect_uri: invalid_request.
    let r = exchange(&app, &id, &secret, &[("redirect_uri", REDIRECT)]).await;
    assert_oauth_error(&r, 400, "invalid_request");
    let code = code_for(&app, &standard_params(&id)).await;
    let r = exchange(
        &app,
        &id,
        &secret,
        &[("code", &code), ("code_verifier", VERIFIER)],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn a_verifier_for_a_code_without_challenge_is_a_downgrade() {
    let app = TestApp::spawn().await;
    let mut body = code_client("No PKCE");
    body["require_pkce"] = json!(false);
    let (id, secret) = code_app_client(&app, body).await;
    let params: Vec<(&'static str, String)> = standard_params(&id)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    let code = code_for(&app, &params).await;
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_grant");
    // Without a verifier, a confidential client's code without a challenge is fine.
    let code = code_for(&app, &params).await;
    let r = exchange(
        &app,
        &id,
        &secret,
        &[("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let code = code_for(&app, &standard_params(&id)).await;
    clock.advance(3600);
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_grant");
}

#[tokio::test]
async fn a_client_without_the_code_grant_is_unauthorized_client() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let code = code_for(&app, &standard_params(&id)).await;
    let (cc_id, cc_secret) = code_app_client(
        &app,
        json!({"name": "CC", "client_type": "confidential",
               "allowed_grant_types": ["client_credentials"], "allowed_scopes": ["admin"]}),
    )
    .await;
    let r = exchange(
        &app,
        &cc_id,
        &cc_secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "unauthorized_client");
    // The code was not touched: its own client still redeems it.
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A confidential client without its secret is invalid_client.
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
}

/// A public client redirecting to `http://127.0.0.1/callback`: its id and the parameters of
/// an authorization request of it.
async fn public_mobile_client(app: &TestApp) -> (String, Vec<(&'static str, String)>) {
    let c = app
        .create_client(&app.admin_key, public_client("Mobile"))
        .await;
    let id = c["client_id"].as_str().unwrap().to_owned();
    let mut params = standard_params(&id);
    params.retain(|(k, _)| *k != "redirect_uri");
    params.push(("redirect_uri", "http://127.0.0.1/callback".into()));
    (id, params)
}

#[tokio::test]
async fn a_public_client_uses_pkce_without_a_secret() {
    let app = TestApp::spawn().await;
    let (id, params) = public_mobile_client(&app).await;
    let code = code_for(&app, &params).await;
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt = r.body["refresh_token"].as_str().unwrap();
    // It refreshes with its id alone too.
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("refresh_token", rt),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(r.body["refresh_token"].as_str().unwrap(), rt);
    // Without the verifier, a public client's code fails.
    let code = code_for(&app, &params).await;
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1/callback"),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_grant");
}

/// Verifiers tried on a public client's code spend the presenter's client authentication
/// failures (10 at once per client_id and address): a leaked code cannot be tried at the request
/// rate, and a failure refills in 6 s.
#[tokio::test]
async fn a_public_clients_verifier_guesses_spend_failures() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let (id, params) = public_mobile_client(&app).await;
    let code = code_for(&app, &params).await;
    let wrong = "x".repeat(43);
    let attempt = |verifier: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("code_verifier", verifier),
        ]
        .map(|(k, v)| (k, v.to_owned()));
        let app = &app;
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(app, "/oauth/token", None, &f).await
        }
    };
    for i in 0..10 {
        let r = attempt(&wrong).await;
        assert_eq!(r.status, 400, "attempt {i}: {}", r.body);
    }
    let r = attempt(&wrong).await;
    assert_eq!(r.status, 429, "{}", r.body);
    clock.advance(7);
    let r = attempt(VERIFIER).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A public client's request that carries the verifier and the redirect URI but is refused for
/// its resource has proved possession: the code is spent, as an authenticated client's would be.
#[tokio::test]
async fn a_public_clients_request_with_the_verifier_spends_the_code_when_refused() {
    let app = TestApp::spawn().await;
    let (id, params) = public_mobile_client(&app).await;
    let code = code_for(&app, &params).await;
    let form = |resource: Option<&'static str>| {
        let mut f = vec![
            ("grant_type", "authorization_code"),
            ("client_id", id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("code_verifier", VERIFIER),
        ];
        f.extend(resource.map(|r| ("resource", r)));
        f
    };
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &form(Some("https://other.example")),
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_target");
    let r = post_form(&app, "/oauth/token", None, &form(None)).await;
    assert_oauth_error(&r, 400, "invalid_grant");
}

/// A public client proves itself with the code's verifier only: a request without it, or with
/// the wrong redirect URI, spends nothing (whoever holds a leaked code cannot burn it), and a
/// used code presented so revokes nothing (nor end the user's tokens).
#[tokio::test]
async fn a_public_clients_code_is_spent_only_with_its_verifier() {
    let app = TestApp::spawn().await;
    let (id, params) = public_mobile_client(&app).await;
    let code = code_for(&app, &params).await;
    let wrong_verifier = "x".repeat(43);
    let form = |verifier: Option<&str>, redirect: &str| {
        let mut f = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("client_id", id.clone()),
            ("code", code.clone()),
            ("redirect_uri", redirect.to_owned()),
        ];
        if let Some(v) = verifier {
            f.push(("code_verifier", v.to_owned()));
        }
        f
    };
    let send = |f: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(app, "/oauth/token", None, &f).await
        }
    };
    let wrong = wrong_verifier.as_str();
    for attempt in [
        form(None, "http://127.0.0.1/callback"),
        form(Some(wrong), "http://127.0.0.1/callback"),
        form(Some(VERIFIER), "http://127.0.0.1/other"),
    ] {
        assert_oauth_error(&send(attempt).await, 400, "invalid_grant");
    }
    let r = send(form(Some(VERIFIER), "http://127.0.0.1/callback")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    // The used code again, without the verifier: refused, and the tokens stand.
    assert_oauth_error(
        &send(form(Some(wrong), "http://127.0.0.1/callback")).await,
        400,
        "invalid_grant",
    );
    let refresh = |rt: String| {
        let app = &app;
        let id = id.clone();
        async move {
            post_form(
                app,
                "/oauth/token",
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &id),
                    ("refresh_token", &rt),
                ],
            )
            .await
        }
    };
    let r = refresh(rt).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    // With the verifier, the replay proves possession and ends the family (RFC 6749 §4.1.2).
    assert_oauth_error(
        &send(form(Some(VERIFIER), "http://127.0.0.1/callback")).await,
        400,
        "invalid_grant",
    );
    assert_oauth_error(&refresh(rt).await, 400, "invalid_grant");
}

#[tokio::test]
async fn refresh_rotates_and_may_narrow_but_not_widen() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let t = tokens(&app, &id, &secret).await;
    let rt1 = t["refresh_token"].as_str().unwrap();

    let widen = refresh(&app, &id, &secret, rt1, Some("admin voice")).await;
    assert_oauth_error(&widen, 400, "invalid_scope");
    // A refused request does not use the token up.
    let r = refresh(&app, &id, &secret, rt1, Some("messaging")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.body["scope"], "messaging");
    assert_eq!(r.body["token_type"], "Bearer");
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "messaging");
    let rt2 = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt2, rt1);
    // RFC 6749 §6: the new refresh token has the scope of the one presented, so the next
    // refresh may ask for anything originally granted, and none asked is all of it; never more.
    let r = refresh(&app, &id, &secret, &rt2, Some("voice")).await;
    assert_oauth_error(&r, 400, "invalid_scope");
    let r = refresh(&app, &id, &secret, &rt2, Some("admin")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scope"], "admin");
    let rt3 = r.body["refresh_token"].as_str().unwrap().to_owned();
    let stored = app
        .server
        .store
        .find_refresh_token(&secret::hash_secret(&rt3))
        .await;
    assert_eq!(stored.unwrap().unwrap().scopes, ["admin", "messaging"]);
    let r = refresh(&app, &id, &secret, &rt3, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scope"], "admin messaging");
    // Unknown token.
    assert_oauth_error(
        &refresh(&app, &id, &secret, "nope", None).await,
        400,
        "invalid_grant",
    );
    // Missing token.
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[("grant_type", "refresh_token")],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
}

/// What a client loses, introspection stops reporting at once: a scope taken away leaves the
/// access and refresh tokens' reported scope (a token left with none is not active), and a
/// refresh token of a client no longer allowed the refresh grant is not active.
#[tokio::test]
async fn introspection_reports_what_the_client_may_still_be_granted() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let t = tokens(&app, &id, &secret).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let seen = |token: &str| {
        let (app, id, secret, token) = (&app, id.clone(), secret.clone(), token.to_owned());
        async move { introspect_as(app, &id, &secret, &token).await }
    };
    assert_eq!(seen(at).await["scope"], "admin messaging");
    assert_eq!(seen(rt).await["scope"], "admin messaging");
    let put = |body: Value| {
        let (app, path) = (&app, format!("/oauth_clients/{id}"));
        async move {
            let (status, r) = app.put_json(&app.admin_key, &path, &body).await;
            assert_eq!(status, 200, "{r}");
        }
    };
    put(json!({"allowed_scopes": ["messaging", "voice"]})).await;
    let a = seen(at).await;
    assert_eq!(
        (a["active"].clone(), a["scope"].clone()),
        (json!(true), json!("messaging"))
    );
    let r = seen(rt).await;
    assert_eq!(
        (r["active"].clone(), r["scope"].clone()),
        (json!(true), json!("messaging"))
    );
    assert_eq!(r["token_type"], "refresh_token");
    // Without the refresh grant the refresh token is unusable, and so not active.
    put(json!({"allowed_grant_types": ["authorization_code"]})).await;
    assert_eq!(seen(rt).await, inactive());
    assert_eq!(seen(at).await["active"], true);
    // With none of its scopes left, the access token is not active either.
    put(json!({"allowed_scopes": ["voice"]})).await;
    assert_eq!(seen(at).await, inactive());
    // Without the code grant, which every user's grant starts from, the user's access token is
    // not active though its scopes are back.
    put(json!({"allowed_scopes": ["admin", "messaging"],
               "allowed_grant_types": ["client_credentials"]}))
    .await;
    assert_eq!(seen(at).await, inactive());
    assert_eq!(seen(rt).await, inactive());
    // Nor does it act for its user: not on the management API, not as a bearer at
    // introspection.
    let (status, body) = app.get(at, "/oauth_clients").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token", "{body}");
    let as_bearer = app
        .http
        .post(app.at("/oauth/introspect"))
        .bearer_auth(at)
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(as_bearer.status(), 401);
    // Given back, both are what they were: nothing was revoked.
    put(json!({"allowed_scopes": ["admin", "messaging"],
               "allowed_grant_types": ["authorization_code", "refresh_token"]}))
    .await;
    assert_eq!(seen(at).await["scope"], "admin messaging");
    assert_eq!(seen(rt).await["scope"], "admin messaging");
    let (status, body) = app.get(at, "/oauth_clients").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["client_id"] == id.as_str()));
}

#[tokio::test]
async fn refresh_reuse_revokes_the_family() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let t = tokens(&app, &id, &secret).await;
    let rt1 = t["refresh_token"].as_str().unwrap();
    let r = refresh(&app, &id, &secret, rt1, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt2 = r.body["refresh_token"].as_str().unwrap().to_owned();
    let at2 = r.body["access_token"].as_str().unwrap().to_owned();

    let reuse = refresh(&app, &id, &secret, rt1, None).await;
    assert_oauth_error(&reuse, 400, "invalid_grant");
    // The whole family is gone: the newest refresh token, and the access tokens of the grant.
    assert_oauth_error(
        &refresh(&app, &id, &secret, &rt2, None).await,
        400,
        "invalid_grant",
    );
    assert_eq!(introspect_as(&app, &id, &secret, &rt2).await, inactive());
    assert_eq!(introspect_as(&app, &id, &secret, &at2).await, inactive());
    let stored = app
        .server
        .store
        .find_refresh_token(&secret::hash_secret(&rt2))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.revoked_at.is_some());
}

#[tokio::test]
async fn refresh_by_another_client_or_without_the_grant_fails() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let (other_id, other_secret) = code_app_client(&app, code_client("Other")).await;
    let t = tokens(&app, &id, &secret).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let r = refresh(&app, &other_id, &other_secret, rt, None).await;
    assert_oauth_error(&r, 400, "invalid_grant");
    // Another client's attempt did not use the token up.
    let r = refresh(&app, &id, &secret, rt, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    // A client no longer allowed the refresh grant.
    let (s, _) = app
        .put_json(
            &app.admin_key,
            &format!("/oauth_clients/{id}"),
            &json!({"allowed_grant_types": ["authorization_code"]}),
        )
        .await;
    assert_eq!(s, 200);
    let r = refresh(&app, &id, &secret, &rt, None).await;
    assert_oauth_error(&r, 400, "unauthorized_client");
}

#[tokio::test]
async fn concurrent_rotations_have_exactly_one_winner() {
    let app = Arc::new(TestApp::spawn().await);
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let t = tokens(&app, &id, &secret).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (app, id, secret, rt) = (app.clone(), id.clone(), secret.clone(), rt.clone());
        tasks.push(tokio::spawn(async move {
            refresh(&app, &id, &secret, &rt, None).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            400 => assert_eq!(r.body["error"], "invalid_grant"),
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn a_revoked_grant_stops_refresh_and_access_tokens() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let t = tokens(&app, &id, &secret).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let (_, claims) = jwt_parts(at);
    let grant_id = claims["grant_id"].as_str().unwrap();
    let (s, _) = app
        .delete(&app.admin_key, &format!("/oauth_grants/{grant_id}"))
        .await;
    assert!(s == 200 || s == 204, "{s}");
    assert_eq!(introspect_as(&app, &id, &secret, at).await, inactive());
    assert_eq!(introspect_as(&app, &id, &secret, rt).await, inactive());
    assert_oauth_error(
        &refresh(&app, &id, &secret, rt, None).await,
        400,
        "invalid_grant",
    );
    // The management API no longer accepts the access token either.
    let r = app
        .http
        .get(app.at("/oauth_clients"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_deleted_client_cannot_refresh() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let t = tokens(&app, &id, &secret).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let (s, _) = app
        .delete(&app.admin_key, &format!("/oauth_clients/{id}"))
        .await;
    assert!(s == 200 || s == 204, "{s}");
    // The client cannot authenticate any more (401 invalid_client), and its grant and refresh
    // tokens are gone with it.
    let r = refresh(&app, &id, &secret, rt, None).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_client");
    assert!(app
        .server
        .store
        .find_refresh_token(&secret::hash_secret(rt))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn an_expired_refresh_token_is_invalid_grant() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.tokens.refresh_token_lifetime_secs = 7200;
    })
    .await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let t = tokens(&app, &id, &secret).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let i = introspect_as(&app, &id, &secret, rt).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["exp"], 1_800_000_000i64 + 7200);
    clock.advance(7201);
    assert_eq!(introspect_as(&app, &id, &secret, rt).await, inactive());
    assert_oauth_error(
        &refresh(&app, &id, &secret, rt, None).await,
        400,
        "invalid_grant",
    );
}

#[tokio::test]
async fn refresh_tokens_introspect_and_revoke() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let (other_id, other_secret) = code_app_client(&app, code_client("Other")).await;
    let t = tokens(&app, &id, &secret).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let (_, claims) = jwt_parts(at);

    let i = introspect_as(&app, &id, &secret, rt).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["token_type"], "refresh_token");
    assert_eq!(i["client_id"], id.as_str());
    assert_eq!(i["scope"], "admin messaging");
    assert_eq!(i["sub"], claims["sub"]);
    assert_eq!(i["iss"], claims["iss"]);
    assert!(i["exp"].as_i64().unwrap() > i["iat"].as_i64().unwrap());
    // Another client sees nothing; a user of the client's organization does; another
    // organization's user does not.
    assert_eq!(
        introspect_as(&app, &other_id, &other_secret, rt).await,
        inactive()
    );
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some(&format!("Bearer {}", app.admin_key)),
        &[("token", rt)],
    )
    .await;
    assert_eq!(r.body["active"], true, "{}", r.body);
    let stranger = app.user("stranger@example.com", "elsewhere").await;
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some(&format!("Bearer {}", stranger.api_key)),
        &[("token", rt)],
    )
    .await;
    assert_eq!(r.body, inactive());

    // Another client's revocation is a silent no-op.
    let r = post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&other_id, &other_secret)),
        &[("token", rt)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect_as(&app, &id, &secret, rt).await["active"], true);
    // Unknown tokens: 200.
    let r = post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&id, &secret)),
        &[("token", "unknown")],
    )
    .await;
    assert_eq!(r.status, 200);
    // The owner revokes: the refresh token, its family and the grant's access tokens stop.
    let r = post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&id, &secret)),
        &[("token", rt)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect_as(&app, &id, &secret, rt).await, inactive());
    assert_eq!(introspect_as(&app, &id, &secret, at).await, inactive());
    assert_oauth_error(
        &refresh(&app, &id, &secret, rt, None).await,
        400,
        "invalid_grant",
    );
}

#[tokio::test]
async fn the_resource_of_the_authorization_follows_the_tokens() {
    let app = TestApp::spawn_with(|c| c.resources = vec!["https://api.example.com".into()]).await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let mut params = standard_params(&id);
    params.push(("resource", "https://api.example.com".into()));
    let code = code_for(&app, &params).await;
    // Another resource than the authorization's: invalid_target.
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", "https://other.example.com"),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_target");
    let code = code_for(&app, &params).await;
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://api.example.com");
    let rt = r.body["refresh_token"].as_str().unwrap();
    let i = introspect_as(&app, &id, &secret, rt).await;
    assert_eq!(i["aud"], "https://api.example.com");
    let r = refresh(&app, &id, &secret, rt, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://api.example.com");
    let rt2 = r.body["refresh_token"].as_str().unwrap();
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt2),
            ("resource", "https://other.example.com"),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_target");
}

/// A code issued for no resource is for the issuer: naming the issuer at the exchange names
/// it (as at a refresh), and does not burn the code.
#[tokio::test]
async fn an_exchange_may_name_the_issuer_for_a_code_issued_for_no_resource() {
    let app = TestApp::spawn_with(|c| c.resources = vec!["https://api.example.com".into()]).await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let code = code_for(&app, &standard_params(&id)).await;
    let issuer = app.server.issuer.clone();
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", &issuer),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], issuer.as_str());
    // Another resource for such a code is still refused.
    let code = code_for(&app, &standard_params(&id)).await;
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", "https://api.example.com"),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_target");
}

/// A resource the operator takes out of `resources` mints no more tokens: neither a code
/// approved for it nor a refresh token issued for it gets one (RFC 8707 §2: not a resource of
/// this server any more), as a scope taken out of the catalogue is not granted again.
#[tokio::test]
async fn a_resource_taken_out_of_the_configuration_mints_no_more_tokens() {
    const API: &str = "https://api.example.com";
    let app = TestApp::spawn_with(|c| c.resources = vec![API.into()]).await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let mut params = standard_params(&id);
    params.push(("resource", API.into()));
    let code = code_for(&app, &params).await;
    let unexchanged = code_for(&app, &params).await;
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();

    let app = app.restart_with(|_| {}).await;
    let refused = |r: &Resp| {
        assert_oauth_error(r, 400, "invalid_target");
        let why = r.body["error_description"].as_str().unwrap();
        assert!(why.contains("no longer served"), "{}", r.body);
    };
    let r = refresh(&app, &id, &secret, &rt, None).await;
    refused(&r);
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &unexchanged),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    refused(&r);
    // Served again, the refresh token works: it was refused, not spent.
    let app = app.restart_with(|c| c.resources = vec![API.into()]).await;
    let r = refresh(&app, &id, &secret, &rt, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], API);
}

/// A refresh token issued for no resource is for the issuer (its access tokens' `aud`): a
/// refresh naming the issuer names it; another resource does not.
#[tokio::test]
async fn a_refresh_may_name_the_issuer_for_a_token_issued_for_no_resource() {
    let app = TestApp::spawn_with(|c| c.resources = vec!["https://api.example.com".into()]).await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let t = tokens(&app, &id, &secret).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let with_resource = |rt: String, resource: &'static str| {
        let (app, id, secret) = (&app, id.clone(), secret.clone());
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("resource", resource),
            ];
            post_form(app, "/oauth/token", Some(&basic(&id, &secret)), &form).await
        }
    };
    let r = with_resource(rt.to_owned(), "https://api.example.com").await;
    assert_oauth_error(&r, 400, "invalid_target");
    let issuer: &'static str = Box::leak(app.server.issuer.to_string().into_boxed_str());
    let r = with_resource(rt.to_owned(), issuer).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], issuer);
}

#[tokio::test]
async fn json_bodies_work_for_both_grants() {
    let app = TestApp::spawn().await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let code = code_for(&app, &standard_params(&id)).await;
    let r = post_oauth_json(
        &app,
        "/oauth/token",
        None,
        &json!({"grant_type": "authorization_code", "client_id": id, "client_secret": secret,
                "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt = r.body["refresh_token"].as_str().unwrap();
    let r = post_oauth_json(
        &app,
        "/oauth/token",
        None,
        &json!({"grant_type": "refresh_token", "client_id": id, "client_secret": secret,
                "refresh_token": rt}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["refresh_token"].is_string());
}

/// RFC 3986 §6.2.3: `<issuer>/` is the issuer (MCP clients send the slash). It is accepted at
/// the authorization and token endpoints, and tokens carry the issuer as configured.
#[tokio::test]
async fn a_trailing_slash_on_a_pathless_resource_is_the_same_resource() {
    let app = TestApp::spawn_with(|c| c.resources = vec!["https://api.example.com".into()]).await;
    let (id, secret) = code_app_client(&app, code_client("App")).await;
    let issuer = app.server.issuer.clone();
    let slashed = format!("{issuer}/");
    let mut params = standard_params(&id);
    params.push(("resource", slashed.clone()));
    let code = code_for(&app, &params).await;
    let r = exchange(
        &app,
        &id,
        &secret,
        &[
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", &slashed),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], issuer.as_str());
    // The token acts on the management API, whose resource is the issuer.
    let (status, body) = app
        .get(r.body["access_token"].as_str().unwrap(), "/oauth_clients")
        .await;
    assert_eq!(status, 200, "{body}");
    let rt = r.body["refresh_token"].as_str().unwrap();
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("resource", &slashed),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], issuer.as_str());

    // Configured resources too, and upper-case host; at the client_credentials grant as well.
    let (cc_id, cc_secret) = cc_client(&app).await;
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&cc_id, &cc_secret)),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://API.example.com/"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://api.example.com");

    // A path's trailing slash is another resource: still invalid_target, at both endpoints.
    let mut params = standard_params(&id);
    params.push(("resource", format!("{issuer}/v2/")));
    let r = app
        .http
        .get(app.at(&path_of(&params)))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = location(&r);
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("invalid_target"),
        "{location}"
    );
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&cc_id, &cc_secret)),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://api.example.com/x"),
        ],
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_target");
}
