//! `/login`, `/logout`: sessions, login CSRF, the rate limit, `return_to`.

use std::sync::Arc;

use oauth_core::secret;
use oauth_server::clock::ManualClock;

use crate::flow::*;
use crate::support::TestApp;

#[tokio::test]
async fn signing_in_sets_a_hardened_session_cookie_stored_as_a_hash() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com", "alice-org").await;
    let (_, page) = app.login_form().await;
    assert!(page.contains("<label for=\"email\">"));
    assert!(!page.contains("<script"));

    let r = app
        .post_login("Alice@Example.com", &user.password, "/")
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/");
    let (value, line) = set_cookie(&r, "oauth_session").unwrap();
    assert_eq!(value.len(), 43);
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(line.contains(attr), "{line}");
    }
    assert!(!line.contains("Secure"), "plain http issuer: {line}");
    let stored = app
        .server
        .store
        .session_user(&secret::hash_secret(&value), app.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, user.user_id);
    assert!(app
        .server
        .store
        .session_user(&value, app.clock.now())
        .await
        .unwrap()
        .is_none());

    // The account page knows who is signed in.
    let r = app
        .get_with_cookie("/", &format!("oauth_session={value}"))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("alice@example.com"));
}

#[tokio::test]
async fn over_https_the_cookies_are_host_prefixed_and_secure() {
    let app = TestApp::spawn_with(|c| c.issuer = Some("https://auth.example.com".into())).await;
    let user = app.user("alice@example.com", "alice-org").await;
    // `__Host-` needs Secure, Path=/ and no Domain; the server listens on plain http here, as
    // behind a TLS-terminating proxy.
    let host_cookie = |line: &str| {
        assert!(line.contains("; Secure"), "{line}");
        assert!(line.contains("; Path=/;"), "{line}");
        assert!(!line.to_ascii_lowercase().contains("domain="), "{line}");
    };
    let r = app.http.get(app.at("/login")).send().await.unwrap();
    assert!(set_cookie(&r, "oauth_login_csrf").is_none());
    let (csrf, line) = set_cookie(&r, "__Host-oauth_login_csrf").unwrap();
    host_cookie(&line);
    assert_eq!(hidden(&r.text().await.unwrap(), "csrf_token"), csrf);

    let post = |cookie_name: &'static str| {
        app.http
            .post(app.at("/login"))
            .header("cookie", format!("{cookie_name}={csrf}"))
            .form(&[
                ("email", user.email.as_str()),
                ("password", user.password.as_str()),
                ("csrf_token", csrf.as_str()),
                ("return_to", "/"),
            ])
            .send()
    };
    // The unprefixed name is not read over https.
    assert_eq!(post("oauth_login_csrf").await.unwrap().status(), 403);
    let r = post("__Host-oauth_login_csrf").await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(set_cookie(&r, "oauth_session").is_none());
    let (session, line) = set_cookie(&r, "__Host-oauth_session").unwrap();
    host_cookie(&line);
    let (cleared, line) = set_cookie(&r, "__Host-oauth_login_csrf").unwrap();
    assert!(cleared.is_empty() && line.contains("Max-Age=0"), "{line}");
    assert!(set_cookie(&r, "oauth_login_device").is_none());
    let (_, line) = set_cookie(&r, "__Host-oauth_login_device").unwrap();
    host_cookie(&line);
    let stored = app
        .server
        .store
        .session_user(&secret::hash_secret(&session), app.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, user.user_id);

    // The session cookie signs the browser in, under its prefixed name only.
    let cookie = format!("__Host-oauth_session={session}");
    let r = app.get_with_cookie("/", &cookie).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("alice@example.com"));
    let r = app
        .get_with_cookie("/", &format!("oauth_session={session}"))
        .await;
    assert_eq!(location(&r), "/login");
    // And signs it out (the CSRF token derives from that cookie).
    let r = app
        .http
        .post(app.at("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", hidden(&page, "csrf_token").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (cleared, line) = set_cookie(&r, "__Host-oauth_session").unwrap();
    assert!(cleared.is_empty() && line.contains("Max-Age=0"), "{line}");
    assert!(app
        .server
        .store
        .session_user(&secret::hash_secret(&session), app.clock.now())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com", "alice-org").await;
    let wrong = app.post_login(&user.email, "wrong password", "/").await;
    let unknown = app
        .post_login("nobody@example.com", &user.password, "/")
        .await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert!(set_cookie(&wrong, "oauth_session").is_none());
    let (a, b) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert!(a.contains("Incorrect email or password."));
    assert!(b.contains("Incorrect email or password."));
}

#[tokio::test]
async fn the_login_form_needs_its_csrf_value() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com", "alice-org").await;
    let (csrf, _) = app.login_form().await;
    let attempts = [
        (None, csrf.clone()),
        (Some(csrf.clone()), String::new()),
        (Some(csrf.clone()), format!("{csrf}x")),
    ];
    for (cookie, field) in attempts {
        let mut rb = app.http.post(app.at("/login")).form(&[
            ("email", user.email.as_str()),
            ("password", user.password.as_str()),
            ("csrf_token", field.as_str()),
            ("return_to", "/"),
        ]);
        if let Some(c) = cookie {
            rb = rb.header("cookie", format!("oauth_login_csrf={c}"));
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert!(set_cookie(&r, "oauth_session").is_none());
    }
}

/// An authorization request with its parameters at their limits comes back after signing in;
/// one too long to come back is told so, not sent to sign in and then lost.
#[tokio::test]
async fn a_long_authorization_request_comes_back_after_signing_in() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com", "alice-org").await;
    let (client_id, _) =
        crate::oauth_support::cc_client_with(&app, &app.admin_key, code_client("App")).await;
    let mut params = standard_params(&client_id);
    params.retain(|(k, _)| *k != "state");
    // 2048 characters, each percent-encoded to three.
    params.push(("state", "\"".repeat(2048)));
    let path = path_of(&params);
    assert!(path.len() > 6000, "{}", path.len());
    let r = app.http.get(app.at(&path)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let to_login = location(&r);
    assert!(to_login.starts_with("/login?return_to="), "{to_login}");
    let r = app.http.get(app.at(&to_login)).send().await.unwrap();
    let page = r.text().await.unwrap();
    // The form carries it (HTML-escaped), and signing in goes back to it.
    let field = hidden(&page, "return_to").replace("&#38;", "&");
    assert!(field == path, "the form's return_to is not the request");
    let r = app.post_login(&user.email, &user.password, &path).await;
    assert_eq!(r.status(), 303);
    assert!(
        location(&r) == path,
        "signing in did not go back to the request"
    );

    // Past what can come back: a page that says so.
    params.push(("padding", "x".repeat(17 * 1024)));
    let r = app
        .http
        .get(app.at(&path_of(&params)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 414);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("too long"));
}

#[tokio::test]
async fn return_to_only_leads_back_into_this_server() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com", "alice-org").await;
    for evil in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\t/evil.example",
    ] {
        let r = app.post_login(&user.email, &user.password, evil).await;
        assert_eq!(r.status(), 303);
        assert_eq!(location(&r), "/", "{evil:?}");
    }
    let r = app
        .post_login(&user.email, &user.password, "/oauth/authorize?a=1&b=2")
        .await;
    assert_eq!(location(&r), "/oauth/authorize?a=1&b=2");
    // The form itself never echoes an unsafe value.
    let r = app
        .http
        .get(app.at("/login?return_to=https%3A%2F%2Fevil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(hidden(&r.text().await.unwrap(), "return_to"), "/");
}

/// The login page's `form-action` lets the browser follow authorize on to a client after the
/// form, but only to a URI a client could register: anyone can write a `return_to`, so
/// `javascript:`, `data:` and a bare scheme never widen the policy.
#[tokio::test]
async fn the_login_pages_form_action_names_only_a_registrable_redirect_uri() {
    let app = TestApp::spawn().await;
    let csp_for = |redirect_uri: &str| {
        let authorize: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", "c")
            .append_pair("redirect_uri", redirect_uri)
            .finish();
        let return_to: String = url::form_urlencoded::byte_serialize(
            format!("/oauth/authorize?{authorize}").as_bytes(),
        )
        .collect();
        let req = app
            .http
            .get(app.at(&format!("/login?return_to={return_to}")));
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            let csp = r.headers()["content-security-policy"].to_str().unwrap();
            let (_, rest) = csp.split_once("form-action ").unwrap();
            rest.split(';').next().unwrap().to_owned()
        }
    };
    assert_eq!(
        csp_for("https://app.example.com/cb").await,
        "'self' https://app.example.com"
    );
    assert_eq!(
        csp_for("http://127.0.0.1:40001/cb").await,
        "'self' http://127.0.0.1:40001"
    );
    assert_eq!(
        csp_for("com.example.app:/cb").await,
        "'self' com.example.app:"
    );
    for hostile in [
        "javascript:alert(1)",
        "data:text/html,x",
        "vbscript:x",
        "http://evil.example/cb",
        "https://user@evil.example/cb",
        "https://a.example/cb#frag",
    ] {
        assert_eq!(csp_for(hostile).await, "'self'", "{hostile}");
    }
}

#[tokio::test]
async fn failed_logins_are_limited_per_account_and_per_address() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.authorization.login_max_failures_per_account = 3;
        c.authorization.login_max_failures_per_ip = 5;
        c.authorization.login_failure_window_secs = 600;
    })
    .await;
    let alice = app.user("alice@example.com", "org").await;
    let bob = app.user("bob@example.com", "org").await;
    for _ in 0..3 {
        assert_eq!(
            app.post_login(&alice.email, "nope", "/").await.status(),
            401
        );
    }
    // Locked: even the right password is not checked.
    let r = app.post_login(&alice.email, &alice.password, "/").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert!(set_cookie(&r, "oauth_session").is_none());
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-in attempts"));
    // Another account from the same address still works, and a success forgets nothing of
    // alice's lock.
    assert_eq!(
        app.post_login(&bob.email, &bob.password, "/")
            .await
            .status(),
        303
    );
    // Two more failures reach the per-address limit: now bob is refused too.
    assert_eq!(app.post_login(&bob.email, "nope", "/").await.status(), 401);
    assert_eq!(
        app.post_login("carol@example.com", "nope", "/")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.post_login(&bob.email, &bob.password, "/")
            .await
            .status(),
        429
    );
    // After the window, the limits lift.
    clock.advance(601);
    assert_eq!(
        app.post_login(&alice.email, &alice.password, "/")
            .await
            .status(),
        303
    );
}

/// Failed sign-ins are kept for the failure window only: what was typed as an email (maybe a
/// password in the wrong field) does not outlive the counts that need it.
#[tokio::test]
async fn failed_logins_are_forgotten_once_the_window_has_passed() {
    use oauth_server::clock::Clock;
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.authorization.login_failure_window_secs = 600;
    })
    .await;
    let rows = || {
        crate::support::sqlite(&app.database_url)
            .query_row("SELECT COUNT(*) FROM login_failures", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
    };
    // No email address: refused, nothing counted. An email address: counted.
    assert_eq!(
        app.post_login("Summer2024!", "nope", "/").await.status(),
        400
    );
    assert_eq!(rows(), 0);
    for typed in ["nobody@example.com", "somebody@example.com"] {
        assert_eq!(app.post_login(typed, "nope", "/").await.status(), 401);
    }
    // Each failure is counted under the account and the address.
    let counted = rows();
    assert!(counted >= 2, "{counted}");
    let mut config = oauth_server::Config::default();
    config.authorization.login_failure_window_secs = 600;
    let retention = oauth_server::maintenance::Retention::from_config(&config);
    clock.advance(300);
    oauth_server::maintenance::purge_with(app.server.store.as_ref(), &retention, clock.now()).await;
    assert_eq!(rows(), counted, "still in the window");
    clock.advance(301);
    oauth_server::maintenance::purge_with(app.server.store.as_ref(), &retention, clock.now()).await;
    assert_eq!(rows(), 0);
}

/// Posts the login form with `cookies` besides the form's CSRF cookie.
async fn post_login_with(
    app: &TestApp,
    email: &str,
    password: &str,
    cookies: &str,
) -> reqwest::Response {
    let (csrf, _) = app.login_form().await;
    app.http
        .post(app.at("/login"))
        .header("cookie", format!("oauth_login_csrf={csrf}; {cookies}"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", csrf.as_str()),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs in; returns the device cookie the browser got.
async fn device_cookie(app: &TestApp, user: &crate::support::TestUser) -> String {
    let r = app.post_login(&user.email, &user.password, "/").await;
    assert_eq!(r.status(), 303);
    let (value, line) = set_cookie(&r, "oauth_login_device").expect("a device cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=15552000"] {
        assert!(line.contains(attr), "{line}");
    }
    format!("oauth_login_device={value}")
}

/// A stolen session must not take the owner's known browsers away from them. Signing the other
/// sessions out forgets their device cookies, which let the owner's own browsers sign in while
/// wrong passwords from elsewhere lock the account; so it takes the password, which the thief
/// does not have, and its wrong guesses there count as failed sign-ins. The owner, locked out
/// everywhere else, still signs in where they did before.
#[tokio::test]
async fn a_stolen_session_cannot_strip_the_owners_browsers_and_lock_them_out() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.authorization.login_max_failures_per_account = 3;
        c.authorization.login_max_failures_per_ip = 50;
        c.authorization.login_failure_window_secs = 600;
    })
    .await;
    let alice = app.user("alice@example.com", "org").await;
    let owners = device_cookie(&app, &alice).await;
    let thief = app.session(&alice).await;
    let html = app
        .get_with_cookie("/account/password", &thief)
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf_token");
    let sign_out = |typed: &'static str| {
        let (app, thief, csrf) = (&app, &thief, &csrf);
        async move {
            app.http
                .post(app.at("/account/sessions/sign-out-others"))
                .header("cookie", thief.as_str())
                .form(&[("csrf_token", csrf.as_str()), ("current_password", typed)])
                .send()
                .await
                .unwrap()
        }
    };
    for typed in ["", "guess-1"] {
        assert_eq!(sign_out(typed).await.status(), 401);
    }
    let value = owners.trim_start_matches("oauth_login_device=");
    let known = app
        .server
        .store
        .login_device_email(&secret::hash_secret(value), 0)
        .await
        .unwrap();
    assert_eq!(known.as_deref(), Some("alice@example.com"), "still known");
    // Those were failed sign-ins of the account: one more from anywhere locks it, and the
    // form itself is answered 429 then.
    assert_eq!(
        app.post_login(&alice.email, "guess-2", "/").await.status(),
        401
    );
    assert_eq!(sign_out("guess-3").await.status(), 429);
    assert_eq!(
        app.post_login(&alice.email, &alice.password, "/")
            .await
            .status(),
        429,
        "a browser the account does not know is locked out with everyone else"
    );
    // The owner's own browser signs in.
    let r = post_login_with(&app, &alice.email, &alice.password, &owners).await;
    assert_eq!(r.status(), 303);
    assert!(set_cookie(&r, "oauth_session").is_some());
}

/// The owner's browser, which signed in before, keeps its own failure budget: wrong passwords
/// typed elsewhere lock the account for everyone else but not for it, and the owner signing in
/// there gives the guesser no new guesses.
#[tokio::test]
async fn failures_elsewhere_do_not_lock_the_owner_out_of_a_browser_they_signed_in_with() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.authorization.login_max_failures_per_account = 3;
        c.authorization.login_max_failures_per_ip = 8;
        c.authorization.login_failure_window_secs = 600;
    })
    .await;
    let alice = app.user("alice@example.com", "org").await;
    let bob = app.user("bob@example.com", "org").await;
    let alices = device_cookie(&app, &alice).await;
    let bobs = device_cookie(&app, &bob).await;
    // Stored as a hash only, naming its user.
    let value = alices.trim_start_matches("oauth_login_device=");
    let store = &app.server.store;
    let hash = secret::hash_secret(value);
    let owner = store.login_device_email(&hash, 0).await.unwrap();
    assert_eq!(owner.as_deref(), Some("alice@example.com"));
    assert_eq!(store.login_device_email(value, 0).await.unwrap(), None);

    // Someone without the cookie locks the account.
    for _ in 0..3 {
        assert_eq!(
            app.post_login(&alice.email, "guess", "/").await.status(),
            401
        );
    }
    assert_eq!(
        app.post_login(&alice.email, &alice.password, "/")
            .await
            .status(),
        429
    );
    // Bob's device cookie is no way around alice's lock.
    let r = post_login_with(&app, &alice.email, &alice.password, &bobs).await;
    assert_eq!(r.status(), 429);
    // Alice's browser signs in; it keeps its cookie (the same value, its lifetime started
    // again), and the guesser stays locked.
    let r = post_login_with(&app, &alice.email, &alice.password, &alices).await;
    assert_eq!(r.status(), 303);
    assert!(set_cookie(&r, "oauth_session").is_some());
    let (again, line) = set_cookie(&r, "oauth_login_device").unwrap();
    assert_eq!(again, value);
    assert!(line.contains("Max-Age=15552000"), "{line}");
    let account = store
        .login_failures(&app.server.account_failure_key("alice@example.com"), 0)
        .await;
    assert_eq!(account.unwrap(), 3);
    // Neither the email nor its plain SHA-256 (which a list of addresses would reverse) is
    // what the count is kept under.
    for plain in [
        "account:alice@example.com".to_owned(),
        format!("account:{}", secret::hash_secret("alice@example.com")),
    ] {
        let typed = store.login_failures(&plain, 0).await;
        assert_eq!(
            typed.unwrap(),
            0,
            "counted under a keyed digest, not {plain}"
        );
    }
    assert_eq!(
        app.post_login(&alice.email, &alice.password, "/")
            .await
            .status(),
        429
    );

    // The device's own budget is bounded like an account's, and is the device's alone: its
    // failures spend nothing of the address, and the lock names the device.
    for _ in 0..3 {
        let r = post_login_with(&app, &alice.email, "guess", &alices).await;
        assert_eq!(r.status(), 401);
    }
    let r = post_login_with(&app, &alice.email, &alice.password, &alices).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let address = store.login_failures("ip:127.0.0.1", 0).await;
    assert_eq!(address.unwrap(), 3, "the guesser's failures only");
    let locked = app.events("login.locked").await;
    assert_eq!(locked[0].detail["limit"], "device", "{locked:?}");
    // Bob's browser is untouched by all of it.
    let r = post_login_with(&app, &bob.email, &bob.password, &bobs).await;
    assert_eq!(r.status(), 303);

    // The device cookie expires with its row: after it, the account's limits apply again.
    clock.advance(601);
    let r = post_login_with(&app, &alice.email, &alice.password, &alices).await;
    assert_eq!(r.status(), 303);
    clock.advance(15_552_000);
    let r = post_login_with(&app, &alice.email, &alice.password, &alices).await;
    assert_eq!(r.status(), 303);
    assert!(
        set_cookie(&r, "oauth_login_device").is_some(),
        "an expired device gets a new cookie"
    );
}

/// Thirty wrong passwords at once from the owner's known browser: at most the limit get a
/// password check, every failure is the device's, and neither the account nor the address is
/// charged, so the owner still signs in from another browser. On SQLite, and on PostgreSQL
/// when `OAUTH_TEST_POSTGRES_URL` is set.
#[tokio::test]
async fn thirty_wrong_passwords_at_once_from_a_known_browser_charge_the_device_alone() {
    let adjust = |c: &mut oauth_server::Config| {
        five_failures_per_account(c);
        c.tokens.key_encryption_key = Some(oauth_core::keys::KeyEncryptionKey::generate(
            &mut rand::rngs::OsRng,
        ));
    };
    for (app, _guard) in &crate::databases::on_both_databases(adjust).await {
        let alice = app.user("alice@example.com", "org").await;
        let device = device_cookie(app, &alice).await;
        let (csrf, _) = app.login_form().await;
        let attempts = (0..30).map(|_| {
            let request = app
                .http
                .post(app.at("/login"))
                .header("cookie", format!("oauth_login_csrf={csrf}; {device}"))
                .form(&[
                    ("email", alice.email.as_str()),
                    ("password", "not the password"),
                    ("csrf_token", csrf.as_str()),
                    ("return_to", "/"),
                ]);
            tokio::spawn(async move {
                let r = request.send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
        });
        let mut answers = Vec::new();
        for attempt in attempts.collect::<Vec<_>>() {
            answers.push(attempt.await.unwrap());
        }
        let wrong = answers.iter().filter(|(s, _)| *s == 401).count();
        let locked = answers.iter().filter(|(s, _)| *s == 429).count();
        assert!((1..=5).contains(&wrong), "{wrong} password checks");
        assert_eq!(wrong + locked, 30, "only 401 and 429");
        for (status, page) in &answers {
            let said = if *status == 401 {
                "Incorrect email or password."
            } else {
                "Too many failed sign-in attempts"
            };
            assert!(page.contains(said), "{status}");
        }
        let value = device.trim_start_matches("oauth_login_device=");
        let key = format!("device:{}", secret::hash_secret(value));
        let store = &app.server.store;
        assert_eq!(store.login_failures(&key, 0).await.unwrap(), wrong as u64);
        let account = store
            .login_failures(&app.server.account_failure_key("alice@example.com"), 0)
            .await;
        assert_eq!(account.unwrap(), 0);
        assert_eq!(store.login_failures("ip:127.0.0.1", 0).await.unwrap(), 0);
        // The device is locked; the owner elsewhere is not.
        let r = post_login_with(app, &alice.email, &alice.password, &device).await;
        assert_eq!(r.status(), 429);
        let r = app.post_login(&alice.email, &alice.password, "/").await;
        assert_eq!(r.status(), 303);
    }
}

/// A device counts while its last sign-in is within the lifetime, and each sign-in through it
/// starts the lifetime again.
#[tokio::test]
async fn a_device_counts_while_it_is_used_within_its_lifetime() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.authorization.login_max_failures_per_account = 2;
        c.authorization.login_failure_window_secs = 60;
        c.authorization.login_device_lifetime_secs = 600;
    })
    .await;
    let alice = app.user("alice@example.com", "org").await;
    let r = app.post_login(&alice.email, &alice.password, "/").await;
    let (value, line) = set_cookie(&r, "oauth_login_device").unwrap();
    assert!(line.contains("Max-Age=600"), "{line}");
    let device = format!("oauth_login_device={value}");
    let lock = || async {
        for _ in 0..2 {
            assert_eq!(
                app.post_login(&alice.email, "guess", "/").await.status(),
                401
            );
        }
        let r = app.post_login(&alice.email, &alice.password, "/").await;
        assert_eq!(r.status(), 429);
    };
    // 500 s later, used: its lifetime starts again.
    clock.advance(500);
    lock().await;
    let r = post_login_with(&app, &alice.email, &alice.password, &device).await;
    assert_eq!(r.status(), 303);
    // 500 s after that (1,000 after it was made), still a device.
    clock.advance(500);
    lock().await;
    let r = post_login_with(&app, &alice.email, &alice.password, &device).await;
    assert_eq!(r.status(), 303);
    // 601 s unused: no longer a device, so the account's lock holds for it too.
    clock.advance(601);
    lock().await;
    let r = post_login_with(&app, &alice.email, &alice.password, &device).await;
    assert_eq!(r.status(), 429);
}

/// Off (`login_device_lifetime_secs = 0`) means off: no new cookie, and a cookie issued while
/// they were on (here by another instance on the same database) counts for nothing.
#[tokio::test]
async fn device_cookies_can_be_turned_off() {
    let off = |c: &mut oauth_server::Config| {
        c.authorization.login_device_lifetime_secs = 0;
        c.authorization.login_max_failures_per_account = 2;
    };
    let app = TestApp::spawn_with(off).await;
    let alice = app.user("alice@example.com", "org").await;
    let r = app.post_login(&alice.email, &alice.password, "/").await;
    assert_eq!(r.status(), 303);
    assert!(set_cookie(&r, "oauth_login_device").is_none());

    let mut on = oauth_server::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: app.database_url.clone(),
        ..Default::default()
    };
    on.authorization.login_max_failures_per_account = 2;
    let on = oauth_server::start(on, std::future::pending())
        .await
        .unwrap();
    let (csrf, _) = app.login_form().await;
    let r = app
        .http
        .post(format!("{}/login", on.url()))
        .header("cookie", format!("oauth_login_csrf={csrf}"))
        .form(&[
            ("email", alice.email.as_str()),
            ("password", alice.password.as_str()),
            ("csrf_token", csrf.as_str()),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (value, _) = set_cookie(&r, "oauth_login_device").expect("issued while on");
    on.stop().await.unwrap();

    for _ in 0..2 {
        assert_eq!(
            app.post_login(&alice.email, "guess", "/").await.status(),
            401
        );
    }
    let device = format!("oauth_login_device={value}");
    let r = post_login_with(&app, &alice.email, &alice.password, &device).await;
    assert_eq!(r.status(), 429, "the old cookie counts for nothing");
}

/// Fires 30 wrong passwords for one account at once (spread over `urls`, each a server on the
/// same database) and checks that at most the limit of them got a password check.
async fn thirty_concurrent_wrong_passwords(app: &TestApp, urls: &[String]) {
    let alice = app.user("alice@example.com", "org").await;
    let (csrf, _) = app.login_form().await;
    let attempts = (0..30).map(|i| {
        let url = format!("{}/login", urls[i % urls.len()]);
        let request = app
            .http
            .post(url)
            .header("cookie", format!("oauth_login_csrf={csrf}"))
            .form(&[
                ("email", alice.email.as_str()),
                ("password", "not the password"),
                ("csrf_token", csrf.as_str()),
                ("return_to", "/"),
            ]);
        tokio::spawn(async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let retry_after = r.headers().get("retry-after").is_some();
            (status, retry_after, r.text().await.unwrap())
        })
    });
    let mut answers = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        answers.push(attempt.await.unwrap());
    }
    let wrong = answers.iter().filter(|(s, ..)| *s == 401).count();
    let locked = answers.iter().filter(|(s, ..)| *s == 429).count();
    assert!((1..=5).contains(&wrong), "{wrong} password checks");
    assert_eq!(wrong + locked, 30, "only 401 and 429");
    for (status, retry_after, page) in &answers {
        if *status == 401 {
            assert!(page.contains("Incorrect email or password."));
        } else {
            assert!(*retry_after, "429 carries Retry-After");
            assert!(page.contains("Too many failed sign-in attempts"));
        }
    }
    // What is stored is the failures that were checked, within the limit.
    let stored = app
        .server
        .store
        .login_failures(&app.server.account_failure_key("alice@example.com"), 0)
        .await
        .unwrap();
    assert_eq!(stored, wrong as u64);
    assert!(stored <= 5);
    // Locked for the right password too.
    let r = app.post_login(&alice.email, &alice.password, "/").await;
    assert_eq!(r.status(), 429);
}

fn five_failures_per_account(c: &mut oauth_server::Config) {
    c.authorization.login_max_failures_per_account = 5;
    c.authorization.login_max_failures_per_ip = 30;
}

#[tokio::test]
async fn concurrent_wrong_passwords_get_at_most_the_limit_of_checks() {
    let app = TestApp::spawn_with(five_failures_per_account).await;
    thirty_concurrent_wrong_passwords(&app, std::slice::from_ref(&app.url)).await;
}

#[tokio::test]
async fn concurrent_wrong_passwords_on_two_instances_of_one_postgres_database() {
    let Some((store, guard)) = crate::db::postgres().await else {
        eprintln!(
            "skipped: set {} to run the PostgreSQL login test",
            crate::db::POSTGRES_ENV
        );
        return;
    };
    store.close().await;
    let crate::db::TestDb::Postgres { admin_url, name } = &guard else {
        unreachable!()
    };
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    let kek = oauth_core::keys::KeyEncryptionKey::from_base64(
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
    )
    .unwrap();
    let adjust = |c: &mut oauth_server::Config| {
        five_failures_per_account(c);
        c.tokens.key_encryption_key = Some(kek.clone());
    };
    let app = TestApp::spawn_on(
        tempfile::tempdir().unwrap(),
        url.to_string(),
        adjust,
        Arc::new(oauth_server::clock::SystemClock),
    )
    .await;
    let mut config = oauth_server::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: url.to_string(),
        ..Default::default()
    };
    adjust(&mut config);
    let other = oauth_server::start(config, std::future::pending())
        .await
        .unwrap();
    thirty_concurrent_wrong_passwords(&app, &[app.url.clone(), other.url()]).await;
    other.stop().await.unwrap();
    let TestApp { server, .. } = app;
    server.stop().await.unwrap();
    drop(guard);
}

#[tokio::test]
async fn a_burst_past_the_password_check_limit_is_told_to_retry_never_held() {
    let app = TestApp::spawn_with(|c| {
        c.authorization.max_concurrent_password_checks = 1;
        c.authorization.password_check_wait_ms = 10;
        c.authorization.login_max_failures_per_ip = 1000;
        c.rate_limits.login_per_ip = oauth_server::config::RateLimit {
            requests: 0,
            window_secs: 0,
        };
    })
    .await;
    let alice = app.user("alice@example.com", "org").await;
    let (csrf, _) = app.login_form().await;
    let burst: Vec<_> = (0..24)
        .map(|i| {
            let (email, password) = if i % 6 == 0 {
                (alice.email.clone(), alice.password.clone())
            } else {
                (
                    format!("nobody{i}@example.com"),
                    "wrong password".to_owned(),
                )
            };
            let request = app
                .http
                .post(app.at("/login"))
                .header("cookie", format!("oauth_login_csrf={csrf}"))
                .form(&[
                    ("email", email.as_str()),
                    ("password", password.as_str()),
                    ("csrf_token", csrf.as_str()),
                    ("return_to", "/"),
                ]);
            tokio::spawn(async move {
                tokio::time::timeout(std::time::Duration::from_secs(60), async move {
                    let r = request.send().await.unwrap();
                    let status = r.status().as_u16();
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_owned());
                    (status, retry_after, r.text().await.unwrap())
                })
                .await
                .expect("every sign-in is answered")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for b in burst {
        answers.push(b.await.unwrap());
    }
    for (status, ..) in &answers {
        assert!(
            [200, 303, 401, 429, 503].contains(status),
            "unexpected {status}"
        );
    }
    let busy: Vec<_> = answers.iter().filter(|(s, ..)| *s == 503).collect();
    assert!(!busy.is_empty(), "one check at a time, 10 ms of patience");
    for (_, retry_after, page) in &busy {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(page.contains("Please try again in a moment."), "{page}");
    }
    // A 503 checked nothing and counts as no failure: the address's failures are the 401s.
    let wrong = answers.iter().filter(|(s, ..)| *s == 401).count();
    assert_eq!(
        app.server
            .store
            .login_failures("ip:127.0.0.1", 0)
            .await
            .unwrap(),
        wrong as u64
    );
}

#[tokio::test]
async fn the_dummy_hash_for_unknown_emails_is_built_at_start() {
    use argon2::password_hash::PasswordHash;

    let app = TestApp::spawn().await;
    // Ready before any sign-in, with the parameters of a real password's hash.
    let dummy = app.server.passwords.dummy_hash().to_owned();
    let dummy = PasswordHash::new(&dummy).unwrap();
    assert_eq!(dummy.algorithm.as_str(), "argon2id");
    let alice = app.user("alice@example.com", "org").await;
    let stored = app
        .server
        .store
        .find_user_by_email(&alice.email)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let real = PasswordHash::new(&stored).unwrap();
    assert_eq!(dummy.params.to_string(), real.params.to_string());
    assert_eq!(dummy.version, real.version);
    let r = app.post_login("nobody@example.com", "whatever", "/").await;
    assert_eq!(r.status(), 401);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Incorrect email or password."));
}

#[tokio::test]
async fn signing_out_ends_the_session_everywhere() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com", "alice-org").await;
    let cookie = app.session(&user).await;
    let value = cookie.trim_start_matches("oauth_session=").to_owned();
    let page = app
        .get_with_cookie("/logout", &cookie)
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token");

    // Without the CSRF token nothing happens.
    let r = app
        .http
        .post(app.at("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.get_with_cookie("/", &cookie).await.status(), 200);

    let r = app
        .http
        .post(app.at("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (cleared, line) = set_cookie(&r, "oauth_session").unwrap();
    assert!(cleared.is_empty() && line.contains("Max-Age=0"));
    assert!(app
        .server
        .store
        .session_user(&secret::hash_secret(&value), app.clock.now())
        .await
        .unwrap()
        .is_none());
    let r = app.get_with_cookie("/", &cookie).await;
    assert_eq!(location(&r), "/login");
}

#[tokio::test]
async fn sessions_expire() {
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.authorization.session_lifetime_secs = 3600;
    })
    .await;
    let user = app.user("alice@example.com", "alice-org").await;
    let cookie = app.session(&user).await;
    assert_eq!(app.get_with_cookie("/", &cookie).await.status(), 200);
    clock.advance(3600);
    assert_eq!(location(&app.get_with_cookie("/", &cookie).await), "/login");
}

/// A password typed into the email field is refused as no email address, before anything is
/// counted or checked: nothing of it is stored (not even a keyed digest, which is quicker to
/// guess at than the password's own hash and outlives its purged row in the database file's
/// free pages), and nobody's sign-in is told to wait for such attempts (a shared count of them
/// would be).
#[tokio::test]
async fn a_password_in_the_email_field_leaves_nothing_of_it_behind() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com", "alice-org").await;
    for _ in 0..10 {
        let r = app.post_login(&alice.password, "anything", "/").await;
        assert_eq!(r.status(), 400);
        let page = r.text().await.unwrap();
        assert!(page.contains("Enter the email address"), "{page}");
        assert!(
            !page.contains(&alice.password),
            "the field is not filled in again"
        );
    }
    let rows: i64 = crate::support::sqlite(&app.database_url)
        .query_row("SELECT COUNT(*) FROM login_failures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    // Someone else who mistypes is told so, not to wait; the account signs in.
    let r = app.post_login("alice", "anything", "/").await;
    assert_eq!(r.status(), 400);
    let r = app.post_login(&alice.email, &alice.password, "/").await;
    assert_eq!(r.status(), 303);
}
