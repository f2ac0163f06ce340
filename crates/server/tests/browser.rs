#![allow(clippy::unwrap_used, clippy::expect_used)]

//! End-to-end: the authorization code flow in a real headless Chromium, driven over WebDriver
//! (chromedriver). Sign in, see the consent page, click Allow (then, in a second round, Deny),
//! and land on a callback served by this test on 127.0.0.1, the client's loopback redirect URI.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium
//! chromium-driver`); `CHROMEDRIVER` and `CHROMIUM` override their paths. Without them the
//! test fails, it does not skip. A screenshot of the consent page is saved as
//! `artifacts/consent.png` (and `consent-phone.png`) under the workspace root.

#[path = "api/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use fantoccini::{Client, ClientBuilder, Locator};
use oauth_core::secret;
use oauth_store::CodeRedemption;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use support::TestApp;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn program(env: &str, default: &str) -> PathBuf {
    let path = std::env::var(env)
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(default));
    if !path.exists() {
        panic!(
            "{} not found: install Chromium and its WebDriver (Debian: apt-get install -y chromium chromium-driver), or set {env}",
            path.display()
        );
    }
    path
}

/// Starts chromedriver on a free port and returns once it says it listens (it prints a line).
/// The port is free when chosen, but another test may take it before chromedriver binds it
/// (chromedriver then exits): a few tries, each on a new port.
async fn start_chromedriver() -> (Child, u16) {
    for _ in 0..3 {
        if let Some(started) = try_start_chromedriver().await {
            return started;
        }
    }
    panic!("chromedriver exited before it was ready, three times");
}

async fn try_start_chromedriver() -> Option<(Child, u16)> {
    let driver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next_line().await.unwrap() {
            Some(l) if l.contains("started successfully") => break,
            Some(_) => continue,
            None => return None,
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some((child, port))
}

async fn browser(port: u16, profile: &Path) -> Client {
    let chromium = program("CHROMIUM", "/usr/bin/chromium");
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=900,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session")
}

/// The client's logo, served by the callback server.
const LOGO_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="14" fill="#0f766e"/><path d="M18 44 32 16l14 28h-8l-6-13-6 13z" fill="#fff"/></svg>"##;

/// The client's callback: answers every request with a short page and reports the path and
/// query of each `/callback` hit.
async fn callback_server() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    callback_server_on(listener, None).await
}

/// The callback server on `listener`; with `document`, it also serves that JSON at
/// `/client.json` (a Client ID Metadata Document).
async fn callback_server_on(
    listener: TcpListener,
    document: Option<String>,
) -> (u16, mpsc::UnboundedReceiver<String>) {
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            let document = document.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let target = head.split(' ').nth(1).unwrap_or("").to_owned();
                let is_logo = target.starts_with("/logo.svg");
                if target.starts_with("/callback") {
                    let _ = tx.send(target.clone());
                }
                let (content_type, body) = if is_logo {
                    ("image/svg+xml", LOGO_SVG)
                } else if let Some(doc) = document.as_deref().filter(|_| target == "/client.json") {
                    ("application/json", doc)
                } else {
                    (
                        "text/html",
                        "<!doctype html><title>Callback</title><p id=done>Back at the app.</p>",
                    )
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (port, rx)
}

/// The next callback hit; a test fails, rather than hangs, when the browser never gets there.
async fn next_callback(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("the browser reached the client's callback within 30 s")
        .expect("callback server running")
}

fn param(target: &str, key: &str) -> Option<String> {
    let q = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn authorize_url(app: &TestApp, client_id: &str, redirect: &str, state: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "admin messaging")
        .append_pair("state", state)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .finish();
    app.at(&format!("/oauth/authorize?{q}"))
}

/// Fills in the login form (waiting for it) and submits it.
async fn sign_in(b: &Client, email: &str, password: &str) {
    b.wait()
        .for_element(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(email)
        .await
        .unwrap();
    b.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    b.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// A consent decision button, once the page shows it. The decision appears a moment after the
/// page (the stylesheet hides it for its first 0.8 s, so that the second click of a double-click
/// that opened the page cannot land on Allow): this checks that the page asks for that, then
/// waits until the button is shown.
async fn decision_button(b: &Client, id: &'static str) -> fantoccini::elements::Element {
    let button = b.wait().for_element(Locator::Id(id)).await.unwrap();
    let style = b
        .execute(
            "const s = getComputedStyle(document.querySelector('.decision .actions')); \
             return [s.animationName, s.animationDelay, s.animationFillMode];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(style, json!(["appear", "0.8s", "backwards"]));
    let shown = std::time::Instant::now();
    while !button.is_displayed().await.unwrap() {
        assert!(
            shown.elapsed() < std::time::Duration::from_secs(10),
            "the decision never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    button
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_consent_allow_and_deny_in_chromium() {
    let (_driver, driver_port) = start_chromedriver().await;
    let (cb_port, mut callbacks) = callback_server().await;
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com", "Alice's org").await;
    let (status, created) = app
        .post_json(
            &app.admin_key,
            "/oauth_clients",
            &json!({
                "name": "Acme Dialer",
                "client_type": "public",
                "allowed_grant_types": ["authorization_code", "refresh_token"],
                "allowed_scopes": ["admin", "messaging", "voice"],
                "redirect_uris": ["http://127.0.0.1/callback"],
                "logo_uri": format!("http://127.0.0.1:{cb_port}/logo.svg"),
                "policy_uri": "https://acme.example/privacy",
                "tos_uri": "https://acme.example/terms"
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["data"]["client_id"].as_str().unwrap().to_owned();
    app.server
        .store
        .set_client_verified(&client_id, true, 0)
        .await
        .unwrap();
    let redirect = format!("http://127.0.0.1:{cb_port}/callback");

    let profile = tempfile::tempdir().unwrap();
    let b = browser(driver_port, profile.path()).await;

    // Not signed in: the authorize request leads to the login page.
    b.goto(&authorize_url(&app, &client_id, &redirect, "state-allow"))
        .await
        .unwrap();
    b.wait().for_element(Locator::Id("email")).await.unwrap();
    std::fs::write(artifacts().join("login.png"), b.screenshot().await.unwrap()).unwrap();
    sign_in(&b, &user.email, &user.password).await;

    // Back through authorize to the consent page.
    let allow = decision_button(&b, "allow").await;
    assert_eq!(b.current_url().await.unwrap().path(), "/consent");
    let name = b
        .find(Locator::Id("client-name"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(name, "Acme Dialer");
    let host = b
        .find(Locator::Id("return-host"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(host, format!("127.0.0.1:{cb_port}"));
    let badge = b
        .find(Locator::Id("verified-badge"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(badge.contains("Verified"), "{badge}");
    // The logo loads (the page's CSP allows http(s) images).
    let logo_width = b
        .execute(
            "return document.querySelector('img.logo').naturalWidth",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        logo_width.as_u64().unwrap_or(0) > 0,
        "logo not loaded: {logo_width}"
    );
    let source = b.source().await.unwrap();
    assert!(source.contains("Send and receive messages"));
    let dir = artifacts();
    std::fs::write(dir.join("consent.png"), b.screenshot().await.unwrap()).unwrap();
    b.set_window_size(390, 844).await.unwrap();
    std::fs::write(dir.join("consent-phone.png"), b.screenshot().await.unwrap()).unwrap();
    b.set_window_size(900, 1000).await.unwrap();

    // The page comes to the front again (a popup that covered it closed): the decision is
    // hidden again for a moment, however long the page has been loaded (consent.js, allowed
    // by the page's CSP through its hash alone), so a click aimed at whatever covered it
    // cannot land on Allow. Then it comes back. Headless Chromium has no window stacking and
    // sends no focus event when a window is switched to, so the test sends the one a desktop
    // browser sends.
    assert!(allow.is_displayed().await.unwrap());
    let rearmed = b
        .execute(
            "window.dispatchEvent(new Event('focus')); \
             return getComputedStyle(document.querySelector('.decision .actions')).visibility;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rearmed, json!("hidden"), "the page script did not run");
    assert!(!allow.is_displayed().await.unwrap());
    let allow = decision_button(&b, "allow").await;

    allow.click().await.unwrap();
    let hit = next_callback(&mut callbacks).await;
    assert_eq!(param(&hit, "state").as_deref(), Some("state-allow"));
    assert_eq!(
        param(&hit, "iss").as_deref(),
        Some(app.server.issuer.as_str())
    );
    let code = param(&hit, "code").expect("a code");
    b.wait().for_element(Locator::Id("done")).await.unwrap();
    assert_eq!(b.current_url().await.unwrap().port(), Some(cb_port));
    match app
        .server
        .store
        .redeem_authorization_code(&secret::hash_secret(&code), app.clock.now())
        .await
        .unwrap()
    {
        CodeRedemption::Redeemed(c) => {
            assert_eq!(c.client_id, client_id);
            assert_eq!(c.user_id, user.user_id);
            assert_eq!(c.redirect_uri, redirect);
            assert!(oauth_core::pkce::verify(
                VERIFIER,
                c.code_challenge.as_deref().unwrap(),
                oauth_core::pkce::ChallengeMethod::S256
            ));
        }
        other => panic!("{other:?}"),
    }

    // Still signed in: the next request goes straight to the consent page; Deny this time.
    b.goto(&authorize_url(&app, &client_id, &redirect, "state-deny"))
        .await
        .unwrap();
    decision_button(&b, "deny").await.click().await.unwrap();
    let hit = next_callback(&mut callbacks).await;
    assert_eq!(param(&hit, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&hit, "state").as_deref(), Some("state-deny"));
    assert!(param(&hit, "code").is_none());

    b.close().await.unwrap();
}

/// With `skip_consent_if_granted`, signing in leads through authorize straight to the client:
/// the redirect chain after the login form must be allowed by the login page's CSP
/// (`form-action`), which browsers apply to redirects after a form submission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_straight_back_to_the_client_when_consent_was_given() {
    let (_driver, driver_port) = start_chromedriver().await;
    let (cb_port, mut callbacks) = callback_server().await;
    let app = TestApp::spawn_with(|c| c.authorization.skip_consent_if_granted = true).await;
    let user = app.user("alice@example.com", "Alice's org").await;
    let (status, created) = app
        .post_json(
            &app.admin_key,
            "/oauth_clients",
            // Confidential: a public client's loopback installation is asked every time.
            &json!({
                "name": "Acme Dialer",
                "client_type": "confidential",
                "allowed_grant_types": ["authorization_code"],
                "allowed_scopes": ["admin", "messaging"],
                "redirect_uris": ["http://127.0.0.1/callback"]
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["data"]["client_id"].as_str().unwrap().to_owned();
    let redirect = format!("http://127.0.0.1:{cb_port}/callback");
    let url = authorize_url(&app, &client_id, &redirect, "state-skip");

    // Consent given once through the JSON API.
    let r = app
        .http
        .get(&url)
        .bearer_auth(&user.api_key)
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let token = param(&loc, "consent_token").unwrap();
    let (status, _) = app
        .post_json(
            &user.api_key,
            "/oauth/grants",
            &json!({"allowed": true, "consent_token": token}),
        )
        .await;
    assert_eq!(status, 200);

    let profile = tempfile::tempdir().unwrap();
    let b = browser(driver_port, profile.path()).await;
    b.goto(&url).await.unwrap();
    sign_in(&b, &user.email, &user.password).await;
    let hit = next_callback(&mut callbacks).await;
    assert_eq!(param(&hit, "state").as_deref(), Some("state-skip"));
    assert!(param(&hit, "code").is_some());
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_see_connected_apps_and_revoke_one_in_chromium() {
    let (_driver, driver_port) = start_chromedriver().await;
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com", "Alice's org").await;
    let (status, created) = app
        .post_json(
            &app.admin_key,
            "/oauth_clients",
            &json!({
                "name": "Acme Dialer",
                "client_type": "public",
                "allowed_grant_types": ["authorization_code"],
                "allowed_scopes": ["admin", "messaging"],
                "redirect_uris": ["http://127.0.0.1/callback"]
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["data"]["client_id"].as_str().unwrap().to_owned();

    // Alice grants it access through the JSON API.
    let url = authorize_url(&app, &client_id, "http://127.0.0.1:9/callback", "s");
    let r = app
        .http
        .get(&url)
        .bearer_auth(&user.api_key)
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let token = param(&loc, "consent_token").unwrap();
    let (status, _) = app
        .post_json(
            &user.api_key,
            "/oauth/grants",
            &json!({"allowed": true, "consent_token": token}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, grants) = app.get(&user.api_key, "/oauth_grants").await;
    let grant_id = grants["data"][0]["id"].as_str().unwrap().to_owned();

    // Sign in, landing on the apps page.
    let profile = tempfile::tempdir().unwrap();
    let b = browser(driver_port, profile.path()).await;
    b.goto(&app.at("/account/apps")).await.unwrap();
    sign_in(&b, &user.email, &user.password).await;
    let revoke = b
        .wait()
        .for_element(Locator::Id(&format!("revoke-{grant_id}")))
        .await
        .unwrap();
    assert_eq!(b.current_url().await.unwrap().path(), "/account/apps");
    let card = b
        .find(Locator::Id(&format!("app-{grant_id}")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(card.contains("Acme Dialer"), "{card}");
    assert!(card.contains("Unverified"), "{card}");
    assert!(
        card.contains("admin") && card.contains("messaging"),
        "{card}"
    );
    assert!(card.contains("127.0.0.1"), "{card}");
    assert!(card.contains("never"), "not used yet: {card}");
    std::fs::write(artifacts().join("apps.png"), b.screenshot().await.unwrap()).unwrap();

    revoke.click().await.unwrap();
    b.wait().for_element(Locator::Id("no-apps")).await.unwrap();
    assert_eq!(b.current_url().await.unwrap().path(), "/account/apps");
    assert!(app
        .server
        .store
        .get_user_grant(&user.user_id, &grant_id)
        .await
        .unwrap()
        .is_none());
    let (status, _) = app
        .get(&user.api_key, &format!("/oauth_grants/{grant_id}"))
        .await;
    assert_eq!(status, 404);
    b.close().await.unwrap();
}

/// A client that identifies itself with a Client ID Metadata Document (the MCP way): signing
/// in, the consent page naming the document's host and marking the redirect to this device,
/// the code exchanged with the client id alone, and the app on the connected-apps page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_document_client_signs_in_in_chromium() {
    let (_driver, driver_port) = start_chromedriver().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cb_port = listener.local_addr().unwrap().port();
    let client_id = format!("http://127.0.0.1:{cb_port}/client.json");
    let document = json!({
        "client_id": client_id,
        "client_name": "Docs MCP Client",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        "scope": "messaging"
    });
    let (_, mut callbacks) = callback_server_on(listener, Some(document.to_string())).await;
    let app = TestApp::spawn_with(|c| c.registration.cimd_allow_http_loopback = true).await;
    let user = app.user("mcp-user@example.com", "MCP org").await;
    let redirect = format!("http://127.0.0.1:{cb_port}/callback");
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "messaging")
        .append_pair("state", "state-cimd")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .finish();

    let profile = tempfile::tempdir().unwrap();
    let b = browser(driver_port, profile.path()).await;
    b.goto(&app.at(&format!("/oauth/authorize?{q}")))
        .await
        .unwrap();
    sign_in(&b, &user.email, &user.password).await;

    let allow = decision_button(&b, "allow").await;
    let text = |id: &'static str| {
        let b = b.clone();
        async move { b.find(Locator::Id(id)).await.unwrap().text().await.unwrap() }
    };
    assert_eq!(text("client-name").await, "Docs MCP Client");
    assert_eq!(text("document-host").await, format!("127.0.0.1:{cb_port}"));
    assert_eq!(text("document-path").await, "/client.json");
    assert!(text("local-redirect").await.contains("this device"));
    assert!(
        b.find(Locator::Css("img.logo")).await.is_err(),
        "no remote logo"
    );
    std::fs::write(
        artifacts().join("consent-cimd.png"),
        b.screenshot().await.unwrap(),
    )
    .unwrap();
    allow.click().await.unwrap();

    let hit = next_callback(&mut callbacks).await;
    assert_eq!(param(&hit, "state").as_deref(), Some("state-cimd"));
    let code = param(&hit, "code").expect("a code");
    // The public client exchanges the code with its id and the PKCE verifier alone.
    let r = app
        .http
        .post(app.at("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "messaging");
    assert!(body["refresh_token"].as_str().is_some());

    // The connected-apps page shows it, as an application on this device.
    b.goto(&app.at("/account/apps")).await.unwrap();
    let name = b
        .wait()
        .for_element(Locator::Css(".app-name"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(name, "Docs MCP Client");
    let local = b.find(Locator::Css(".local-installation")).await.unwrap();
    assert!(local.text().await.unwrap().contains("this device"));
    b.close().await.unwrap();
}
