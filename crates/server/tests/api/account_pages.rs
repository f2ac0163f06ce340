//! The signed-in user's pages: connected apps (and revoking one), password change, and signing
//! out the other sessions.

use crate::flow::*;
use crate::oauth_support::*;
use crate::support::{TestApp, TestUser};

async fn post_page(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, String, String) {
    let mut req = app.http.post(app.at(path)).form(form);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let loc = location(&r);
    (status, loc, r.text().await.unwrap())
}

async fn page(app: &TestApp, path: &str, cookie: &str) -> (u16, String, String) {
    let r = app.get_with_cookie(path, cookie).await;
    let status = r.status().as_u16();
    let loc = location(&r);
    (status, loc, r.text().await.unwrap())
}

/// Is the grant still there, with its tokens alive?
async fn grant_alive(
    app: &TestApp,
    user: &TestUser,
    grant_id: &str,
    id: &str,
    secret: &str,
    access: &str,
) -> bool {
    let (status, _) = app
        .get(&user.api_key, &format!("/oauth_grants/{grant_id}"))
        .await;
    let active = introspect_as(app, id, secret, access).await["active"] == true;
    assert_eq!(
        status == 200,
        active,
        "the grant and its access token agree"
    );
    active
}

#[tokio::test]
async fn the_apps_page_lists_grants_and_revokes_only_with_the_sessions_csrf_token() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "acme").await;
    let bob = app.user("bob@example.com", "other").await;
    let (id, secret, grant_id, tokens) = connected_app(&app, &alice, "Billing Helper").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    // Not signed in: to the sign-in page, coming back here.
    let r = app.http.get(app.at("/account/apps")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?return_to=%2Faccount%2Fapps");
    // An API key is not a session.
    let r = app
        .http
        .get(app.at("/account/apps"))
        .bearer_auth(&alice.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    let alice_cookie = app.session(&alice).await;
    let (status, _, html) = page(&app, "/account/apps", &alice_cookie).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Billing Helper"), "{html}");
    assert!(html.contains("Unverified"), "{html}");
    assert!(
        html.contains("<code class=\"scope-name\">admin</code>"),
        "{html}"
    );
    assert!(
        html.contains("<code class=\"scope-name\">messaging</code>"),
        "{html}"
    );
    assert!(html.contains("app.example.com"), "{html}");
    assert!(
        html.contains(&format!("/account/apps/{grant_id}/revoke")),
        "{html}"
    );
    assert!(html.contains("class=\"granted\""), "{html}");
    let csrf = hidden(&html, "csrf_token");
    let revoke = format!("/account/apps/{grant_id}/revoke");

    // No CSRF token, or a wrong one: refused, nothing revoked.
    for form in [vec![], vec![("csrf_token", "forged")]] {
        let (status, _, body) = post_page(&app, &revoke, Some(&alice_cookie), &form).await;
        assert_eq!(status, 403, "{body}");
        assert!(grant_alive(&app, &alice, &grant_id, &id, &secret, access).await);
    }
    // No session at all: to the sign-in page, nothing revoked.
    let (status, loc, _) = post_page(&app, &revoke, None, &[("csrf_token", &csrf)]).await;
    assert_eq!(
        (status, loc.as_str()),
        (303, "/login?return_to=%2Faccount%2Fapps")
    );
    assert!(grant_alive(&app, &alice, &grant_id, &id, &secret, access).await);

    // Bob, signed in with his own valid CSRF token, cannot revoke Alice's grant.
    let bob_cookie = app.session(&bob).await;
    let (_, _, bob_html) = page(&app, "/account/apps", &bob_cookie).await;
    assert!(bob_html.contains("No app has access"), "{bob_html}");
    assert!(!bob_html.contains("Billing Helper"));
    let (_, _, bob_password_page) = page(&app, "/account/password", &bob_cookie).await;
    let bob_csrf = hidden(&bob_password_page, "csrf_token");
    let (status, _, body) = post_page(
        &app,
        &revoke,
        Some(&bob_cookie),
        &[("csrf_token", &bob_csrf)],
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(grant_alive(&app, &alice, &grant_id, &id, &secret, access).await);
    // Nor can Alice's token be used with Bob's session.
    let (status, _, _) =
        post_page(&app, &revoke, Some(&bob_cookie), &[("csrf_token", &csrf)]).await;
    assert_eq!(status, 403);
    assert!(grant_alive(&app, &alice, &grant_id, &id, &secret, access).await);

    // Alice revokes: back to the page, which no longer lists it; every token of the grant is
    // dead at once.
    let (status, loc, _) =
        post_page(&app, &revoke, Some(&alice_cookie), &[("csrf_token", &csrf)]).await;
    assert_eq!((status, loc.as_str()), (303, "/account/apps"));
    assert!(!grant_alive(&app, &alice, &grant_id, &id, &secret, access).await);
    assert_eq!(introspect_as(&app, &id, &secret, access).await, inactive());
    assert_eq!(introspect_as(&app, &id, &secret, refresh).await, inactive());
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_grant");
    let (_, _, html) = page(&app, "/account/apps", &alice_cookie).await;
    assert!(!html.contains("Billing Helper"), "{html}");
    assert!(html.contains("No app has access"), "{html}");
    // Revoking again: nothing to revoke.
    let (status, _, _) =
        post_page(&app, &revoke, Some(&alice_cookie), &[("csrf_token", &csrf)]).await;
    assert_eq!(status, 404);

    // The revocation is in the audit trail, as the management API's is.
    let events = app
        .server
        .store
        .list_security_events(&Default::default(), 100)
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "grant.revoked" && e.grant_id.as_deref() == Some(grant_id.as_str())));
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_signs_out_other_sessions() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "acme").await;
    let here = app.session(&alice).await;
    let elsewhere = app.session(&alice).await;
    let stored = || async {
        app.server
            .store
            .find_user_by_email("alice@example.com")
            .await
            .unwrap()
            .unwrap()
            .password_hash
    };
    let before = stored().await;

    let (status, _, html) = page(&app, "/account/password", &here).await;
    assert_eq!(status, 200, "{html}");
    let csrf = hidden(&html, "csrf_token");
    let new = "a much better passphrase";

    // Wrong current password: refused, nothing changed, the other session stands.
    let (status, _, body) = post_page(
        &app,
        "/account/password",
        Some(&here),
        &[
            ("csrf_token", &csrf),
            ("current_password", "not my password"),
            ("new_password", new),
            ("confirm_password", new),
        ],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("incorrect"), "{body}");
    assert_eq!(stored().await, before);
    assert_eq!(page(&app, "/account/apps", &elsewhere).await.0, 200);

    // Without the CSRF token, with a short or mistyped new password: refused, nothing changed.
    for (form, want) in [
        (
            vec![
                ("current_password", alice.password.as_str()),
                ("new_password", new),
                ("confirm_password", new),
            ],
            403,
        ),
        (
            vec![
                ("csrf_token", csrf.as_str()),
                ("current_password", alice.password.as_str()),
                ("new_password", "short"),
                ("confirm_password", "short"),
            ],
            400,
        ),
        (
            vec![
                ("csrf_token", csrf.as_str()),
                ("current_password", alice.password.as_str()),
                ("new_password", new),
                ("confirm_password", "a much better passphrasE"),
            ],
            400,
        ),
    ] {
        let (status, _, body) = post_page(&app, "/account/password", Some(&here), &form).await;
        assert_eq!(status, want, "{body}");
        assert_eq!(stored().await, before);
        assert_eq!(page(&app, "/account/apps", &elsewhere).await.0, 200);
    }

    // The right current password: changed; the other session is signed out, and this one is
    // replaced by a new one (a copy of its cookie taken earlier ends too).
    let r = app
        .http
        .post(app.at("/account/password"))
        .header("cookie", &here)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current_password", alice.password.as_str()),
            ("new_password", new),
            ("confirm_password", new),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (value, line) = set_cookie(&r, "oauth_session").expect("a new session cookie");
    assert!(line.contains("HttpOnly"), "{line}");
    let copied = here;
    let here = format!("oauth_session={value}");
    assert_ne!(here, copied);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&session_csrf(&app, &here).await),
        "the page's forms carry the new session's CSRF token"
    );
    let (status, loc, _) = page(&app, "/account/apps", &copied).await;
    assert_eq!(
        (status, loc.as_str()),
        (303, "/login?return_to=%2Faccount%2Fapps"),
        "the copied cookie is signed out"
    );
    assert!(body.contains("other sessions were signed out"), "{body}");
    let after = stored().await;
    assert_ne!(after, before);
    assert!(after.starts_with("$argon2id$"), "stored hashed");
    assert!(!after.contains(new));
    let (status, loc, _) = page(&app, "/account/apps", &elsewhere).await;
    assert_eq!(
        (status, loc.as_str()),
        (303, "/login?return_to=%2Faccount%2Fapps")
    );
    assert_eq!(page(&app, "/account/apps", &here).await.0, 200);

    // The old password no longer signs in; the new one does.
    let r = app.post_login(&alice.email, &alice.password, "/").await;
    assert_eq!(r.status(), 401);
    let r = app.post_login(&alice.email, new, "/").await;
    assert_eq!(r.status(), 303);
}

/// Sign-ins with the old password that are being checked while the password changes get no
/// session that outlives the change, whichever finishes first: one stored before the change is
/// signed out by it, one after is not stored (401). The page's "other sessions were signed out"
/// holds.
#[tokio::test]
async fn sign_ins_under_way_during_a_password_change_keep_no_session() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "acme").await;
    let here = app.session(&alice).await;
    let (_, _, html) = page(&app, "/account/password", &here).await;
    let csrf = hidden(&html, "csrf_token");
    let new = "a much better passphrase";
    let sign_ins = (0..8).map(|_| app.post_login(&alice.email, &alice.password, "/"));
    let form = [
        ("csrf_token", csrf.as_str()),
        ("current_password", &alice.password),
        ("new_password", new),
        ("confirm_password", new),
    ];
    let change = post_page(&app, "/account/password", Some(&here), &form);
    let (responses, (status, _, body)) =
        tokio::join!(futures_util::future::join_all(sign_ins), change);
    assert_eq!(status, 200, "{body}");
    let mut outcomes = Vec::new();
    for r in responses {
        let status = r.status().as_u16();
        outcomes.push(status);
        match status {
            303 => {
                let (value, _) = set_cookie(&r, "oauth_session").expect("session cookie");
                let (status, loc, _) =
                    page(&app, "/account/apps", &format!("oauth_session={value}")).await;
                assert_eq!(
                    (status, loc.as_str()),
                    (303, "/login?return_to=%2Faccount%2Fapps"),
                    "a session of a sign-in under way outlived the change ({outcomes:?})"
                );
            }
            // Checked after the change, refused while every check was busy, or past the
            // account's failure budget that those after the change spent.
            401 | 503 | 429 => {}
            other => panic!("sign-in answered {other}: {}", r.text().await.unwrap()),
        }
    }
    // The changing browser's own session was replaced by a new one.
    assert_eq!(page(&app, "/account/apps", &here).await.0, 303);
    let r = app.post_login(&alice.email, new, "/").await;
    assert_eq!(r.status(), 303);
}

/// A password change forgets every other browser's device cookie (whoever signed in with the
/// old password gets no budget of their own for guessing the new one); the browser that made
/// the change keeps its own.
#[tokio::test]
async fn a_password_change_forgets_the_other_browsers_devices() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "acme").await;
    let mut browsers = Vec::new();
    for _ in 0..2 {
        let r = app.post_login(&alice.email, &alice.password, "/").await;
        assert_eq!(r.status(), 303);
        let (session, _) = set_cookie(&r, "oauth_session").unwrap();
        let (device, _) = set_cookie(&r, "oauth_login_device").unwrap();
        browsers.push((session, device));
    }
    let store = app.server.store.clone();
    let device_of = |value: &str| {
        let hash = oauth_core::secret::hash_secret(value);
        let store = store.clone();
        async move { store.login_device_email(&hash, 0).await.unwrap() }
    };
    let (session, device) = &browsers[0];
    let here = format!("oauth_session={session}; oauth_login_device={device}");
    let (_, _, html) = page(&app, "/account/password", &here).await;
    let new = "a much better passphrase";
    let r = app
        .http
        .post(app.at("/account/password"))
        .header("cookie", &here)
        .form(&[
            ("csrf_token", hidden(&html, "csrf_token").as_str()),
            ("current_password", alice.password.as_str()),
            ("new_password", new),
            ("confirm_password", new),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        set_cookie(&r, "oauth_login_device").is_some(),
        "kept, its lifetime again"
    );
    assert_eq!(
        device_of(device).await.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(device_of(&browsers[1].1).await, None);
}

/// A stolen session gets no more guesses at the password than the sign-in form gives: a wrong
/// current password is a failed sign-in of the account (reserved before the check), so the
/// account's limit holds whatever the address, and it covers both forms.
#[tokio::test]
async fn wrong_current_passwords_spend_the_accounts_sign_in_budget() {
    let clock = std::sync::Arc::new(oauth_server::clock::ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.authorization.login_max_failures_per_account = 3;
        c.authorization.login_max_failures_per_ip = 100;
        c.authorization.login_failure_window_secs = 600;
    })
    .await;
    let alice = app.user("alice@example.com", "acme").await;
    let bob = app.user("bob@example.com", "acme").await;
    let here = app.session(&alice).await;
    let stored = || async {
        let user = app.server.store.find_user_by_email(&alice.email).await;
        user.unwrap().unwrap().password_hash
    };
    let before = stored().await;
    let (_, _, html) = page(&app, "/account/password", &here).await;
    let csrf = hidden(&html, "csrf_token");
    let new = "a much better passphrase";
    let change = |current: &str| {
        let form = [
            ("csrf_token", csrf.clone()),
            ("current_password", current.to_owned()),
            ("new_password", new.to_owned()),
            ("confirm_password", new.to_owned()),
        ];
        let app = &app;
        let here = here.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_page(app, "/account/password", Some(&here), &form).await
        }
    };
    for guess in ["guess one", "guess two", "guess three"] {
        let (status, _, body) = change(guess).await;
        assert_eq!(status, 401, "{body}");
    }
    // The budget is spent: even the right password is not checked, and nothing changes.
    let (status, _, body) = change(&alice.password).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("Too many wrong passwords"), "{body}");
    assert_eq!(stored().await, before);
    // One budget for both forms: the sign-in form is locked for the account too, not for bob.
    let r = app.post_login(&alice.email, &alice.password, "/").await;
    assert_eq!(r.status(), 429);
    let r = app.post_login(&bob.email, &bob.password, "/").await;
    assert_eq!(r.status(), 303);
    // After the window the right password changes it, and the failures are forgotten.
    clock.advance(601);
    let (status, _, body) = change(&alice.password).await;
    assert_eq!(status, 200, "{body}");
    let r = app.post_login(&alice.email, new, "/").await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn signing_out_other_sessions_keeps_only_this_one() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "acme").await;
    let bob = app.user("bob@example.com", "acme").await;
    let here = app.session(&alice).await;
    let elsewhere = app.session(&alice).await;
    let bobs = app.session(&bob).await;
    let (_, _, html) = page(&app, "/account/password", &here).await;
    let csrf = hidden(&html, "csrf_token");

    // Without the CSRF token: refused, nothing signed out.
    let (status, _, _) =
        post_page(&app, "/account/sessions/sign-out-others", Some(&here), &[]).await;
    assert_eq!(status, 403);
    assert_eq!(page(&app, "/", &elsewhere).await.0, 200);

    // Without the password, or with a wrong one: refused, nothing signed out; the wrong one is
    // a failed sign-in of the account, as on the password form.
    for typed in [None, Some("wrong password")] {
        let mut form = vec![("csrf_token", csrf.as_str())];
        if let Some(t) = typed {
            form.push(("current_password", t));
        }
        let (status, _, body) = post_page(
            &app,
            "/account/sessions/sign-out-others",
            Some(&here),
            &form,
        )
        .await;
        assert_eq!(status, 401, "{typed:?}: {body}");
        assert!(body.contains("The current password is incorrect"), "{body}");
        assert_eq!(page(&app, "/", &elsewhere).await.0, 200);
    }
    let failed = app.events("password.change_failed").await;
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0].detail["form"], "sign_out_others");
    assert!(app.events("sessions.signed_out_others").await.is_empty());

    let r = app
        .http
        .post(app.at("/account/sessions/sign-out-others"))
        .header("cookie", &here)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current_password", alice.password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // This browser gets a new session; its old cookie (and so any copy taken of it) is signed
    // out with the others.
    let (fresh, line) = set_cookie(&r, "oauth_session").expect("a new session cookie");
    assert!(line.contains("HttpOnly"), "{line}");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("Your other sessions were signed out"),
        "{body}"
    );
    assert_eq!(page(&app, "/", &elsewhere).await.0, 303);
    assert_eq!(
        page(&app, "/", &here).await.0,
        303,
        "a copy of the old cookie"
    );
    let now_here = format!("oauth_session={fresh}");
    assert_eq!(page(&app, "/", &now_here).await.0, 200);
    let signed_out = app.events("sessions.signed_out_others").await;
    assert_eq!(signed_out.len(), 1);
    assert_eq!(signed_out[0].detail["other_sessions_ended"], 1);
    let here = now_here;
    assert_eq!(page(&app, "/", &here).await.0, 200);
    // Another user's session is not touched.
    assert_eq!(page(&app, "/", &bobs).await.0, 200);
}

/// Signing the other sessions out forgets the other browsers' device cookies too, and keeps
/// this one's.
#[tokio::test]
async fn signing_out_other_sessions_forgets_their_devices() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "acme").await;
    let bob = app.user("bob@example.com", "acme").await;
    let mut devices = Vec::new();
    let mut here = String::new();
    for who in [&alice, &alice, &bob] {
        let r = app.post_login(&who.email, &who.password, "/").await;
        let (session, _) = set_cookie(&r, "oauth_session").unwrap();
        let (device, _) = set_cookie(&r, "oauth_login_device").unwrap();
        if here.is_empty() {
            here = format!("oauth_session={session}; oauth_login_device={device}");
        }
        devices.push(device);
    }
    let (_, _, html) = page(&app, "/account/password", &here).await;
    let (status, _, body) = post_page(
        &app,
        "/account/sessions/sign-out-others",
        Some(&here),
        &[
            ("csrf_token", &hidden(&html, "csrf_token")),
            ("current_password", &alice.password),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let owner = |value: &str| {
        let hash = oauth_core::secret::hash_secret(value);
        let store = app.server.store.clone();
        async move { store.login_device_email(&hash, 0).await.unwrap() }
    };
    assert_eq!(
        owner(&devices[0]).await.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(owner(&devices[1]).await, None);
    assert_eq!(owner(&devices[2]).await.as_deref(), Some("bob@example.com"));
}

/// A form of the account pages that cannot be read (a NUL byte, text that is not UTF-8, a
/// repeated field), even with the session's CSRF token, is a 400 page saying so, as the
/// sign-in form answers, not "expired"; a body that is not a form is 415; nothing is changed.
#[tokio::test]
async fn an_unreadable_account_form_is_a_400_page_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "acme").await;
    let (id, secret, grant_id, tokens) = connected_app(&app, &alice, "Kept").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let here = app.session(&alice).await;
    let elsewhere = app.session(&alice).await;
    let csrf = session_csrf(&app, &here).await;
    let revoke = format!("/account/apps/{grant_id}/revoke");
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let c = enc(&csrf);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "/account/password",
            format!(
                "csrf_token={c}&current_password={}%00&new_password=abcdefghijkl&confirm_password=abcdefghijkl",
                enc(&alice.password)
            )
            .into_bytes(),
        ),
        (
            "/account/password",
            [
                format!("csrf_token={c}&current_password=").as_bytes(),
                b"\xff",
                b"&new_password=abcdefghijkl&confirm_password=abcdefghijkl",
            ]
            .concat(),
        ),
        (
            "/account/sessions/sign-out-others",
            format!("csrf_token={c}&x=%FF").into_bytes(),
        ),
        (&revoke, format!("csrf_token={c}&csrf_token={c}").into_bytes()),
    ];
    for (path, body) in cases {
        let r = app
            .http
            .post(app.at(path))
            .header("cookie", &here)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = r.text().await.unwrap();
        assert!(
            html.contains("The form could not be read"),
            "{path}: {html}"
        );
        assert!(!html.contains("expired"), "{path}: {html}");
    }
    // A body that is not a form, even one that reads as a valid form, is 415.
    for ct in [
        Some("text/plain; charset=utf-16"),
        Some("application/json"),
        None,
    ] {
        let mut req = app
            .http
            .post(app.at("/account/sessions/sign-out-others"))
            .header("cookie", &here)
            .body(format!("csrf_token={c}"));
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 415, "{ct:?}");
        let html = r.text().await.unwrap();
        assert!(html.contains("application/x-www-form-urlencoded"), "{html}");
    }
    // The password, the other session and the grant are as they were.
    assert_eq!(page(&app, "/", &elsewhere).await.0, 200);
    assert!(grant_alive(&app, &alice, &grant_id, &id, &secret, &access).await);
    let r = app.post_login(&alice.email, &alice.password, "/").await;
    assert!(
        set_cookie(&r, "oauth_session").is_some(),
        "the old password signs in"
    );
}

#[tokio::test]
async fn the_account_and_consent_pages_link_the_apps_page() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "acme").await;
    let cookie = app.session(&alice).await;
    let (status, _, html) = page(&app, "/", &cookie).await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/account/apps\""), "{html}");
    assert!(html.contains("href=\"/account/password\""), "{html}");

    let (id, _) = cc_client_with(&app, &alice.api_key, code_client("Linked")).await;
    let token = app
        .consent_token(&alice.api_key, &path_of(&standard_params(&id)))
        .await;
    let (status, _, html) = page(&app, &format!("/consent?consent_token={token}"), &cookie).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("href=\"/account/apps\""), "{html}");
}

/// The CSRF token the password page's form carries for the session of `cookie`.
async fn session_csrf(app: &TestApp, cookie: &str) -> String {
    let (status, _, html) = page(app, "/account/password", cookie).await;
    assert_eq!(status, 200, "{html}");
    hidden(&html, "csrf_token")
}
