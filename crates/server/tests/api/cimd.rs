//! Client ID Metadata Documents: a document server on 127.0.0.1 (with
//! `registration.cimd_allow_http_loopback`) serves the documents; the whole code flow with a
//! document client, and every refusal, each an error page and never a redirect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use oauth_core::client::THIRD_PARTY_ORG_ID;
use oauth_core::ClientOrigin;
use oauth_server::clock::ManualClock;
use serde_json::{json, Value};

use crate::flow::*;
use crate::oauth_support::*;
use crate::support::TestApp;

/// What the document server answers at one path.
#[derive(Clone)]
struct Served {
    status: u16,
    body: String,
    headers: Vec<(&'static str, String)>,
    /// How long the server takes to answer.
    delay: std::time::Duration,
}

#[derive(Default)]
struct Docs {
    served: Mutex<HashMap<String, Served>>,
    hits: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
}

/// A plain-http server on 127.0.0.1 serving documents.
pub(crate) struct DocServer {
    pub(crate) base: String,
    docs: Arc<Docs>,
}

async fn serve_doc(State(docs): State<Arc<Docs>>, OriginalUri(uri): OriginalUri) -> Response {
    let path = uri.path().to_owned();
    docs.total.fetch_add(1, Ordering::SeqCst);
    *docs.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let Some(s) = docs.served.lock().unwrap().get(&path).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    tokio::time::sleep(s.delay).await;
    let mut resp = (StatusCode::from_u16(s.status).unwrap(), s.body).into_response();
    for (k, v) in s.headers {
        resp.headers_mut().insert(
            HeaderName::from_static(k),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}

impl DocServer {
    pub(crate) async fn start() -> Self {
        let docs = Arc::new(Docs::default());
        let app = axum::Router::new()
            .fallback(serve_doc)
            .with_state(docs.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        DocServer {
            base: format!("http://127.0.0.1:{}", addr.port()),
            docs,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn serve(
        &self,
        path: &str,
        status: u16,
        body: String,
        headers: Vec<(&'static str, String)>,
    ) {
        self.docs.served.lock().unwrap().insert(
            path.to_owned(),
            Served {
                status,
                body,
                headers,
                delay: std::time::Duration::ZERO,
            },
        );
    }

    /// A valid document at `path` for a loopback redirect URI.
    pub(crate) fn serve_doc(&self, path: &str, doc: &Value) {
        self.serve(
            path,
            200,
            doc.to_string(),
            vec![("content-type", "application/json".into())],
        );
    }

    /// The answer at `path` takes `delay` from now on.
    pub(crate) fn slow(&self, path: &str, delay: std::time::Duration) {
        if let Some(s) = self.docs.served.lock().unwrap().get_mut(path) {
            s.delay = delay;
        }
    }

    pub(crate) fn hits(&self, path: &str) -> usize {
        self.docs
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn total(&self) -> usize {
        self.docs.total.load(Ordering::SeqCst)
    }
}

pub(crate) const CALLBACK: &str = "http://127.0.0.1:33418/callback";

const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

pub(crate) fn document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Example MCP Client",
        "client_uri": "https://mcp.example.com",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "messaging voice"
    })
}

pub(crate) fn params(client_id: &str, redirect_uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client_id.to_owned()),
        ("redirect_uri", redirect_uri.to_owned()),
        ("scope", "messaging".into()),
        ("state", "st-cimd".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

pub(crate) async fn spawn(loopback: bool) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.registration.cimd_allow_http_loopback = loopback;
    })
    .await;
    (app, clock)
}

/// GET /oauth/authorize as the admin (API key): the response.
async fn authorize(app: &TestApp, client_id: &str, redirect_uri: &str) -> reqwest::Response {
    app.http
        .get(app.at(&path_of(&params(client_id, redirect_uri))))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap()
}

/// The authorization is refused on a page (400), not redirected; nothing is stored.
async fn assert_refused_page(app: &TestApp, client_id: &str, needle: &str) {
    let r = authorize(app, client_id, CALLBACK).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains(needle), "{needle:?} not in {page}");
    assert!(app
        .server
        .store
        .get_client(client_id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_whole_code_flow_with_a_document_client() {
    let docs = DocServer::start().await;
    let id = docs.url("/clients/mcp.json");
    docs.serve_doc("/clients/mcp.json", &document(&id));
    let (app, _) = spawn(true).await;
    let user = app.user("cimd-user@example.com", "cimd-org").await;
    let cookie = app.session(&user).await;

    let r = app
        .get_with_cookie(&path_of(&params(&id, CALLBACK)), &cookie)
        .await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(loc.starts_with("/consent?consent_token="), "{loc}");
    let token = param(&loc, "consent_token").unwrap();
    assert_eq!(docs.hits("/clients/mcp.json"), 1);

    // Stored as a third-party public client, from the document.
    let stored = app.server.store.get_client(&id).await.unwrap().unwrap();
    assert_eq!(stored.origin, ClientOrigin::MetadataDocument);
    assert_eq!(stored.org_id, THIRD_PARTY_ORG_ID);
    assert_eq!(stored.user_id, "");
    assert!(stored.secret_hash.is_none());
    assert_eq!(stored.settings.name, "Example MCP Client");
    assert_eq!(stored.settings.redirect_uris, [CALLBACK]);
    assert!(stored.settings.require_pkce);

    let page = app
        .get_with_cookie(&format!("/consent?consent_token={token}"), &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Example MCP Client"), "{page}");
    // Named by its host (and port) and its path: one host may publish many makers' documents.
    let u = url::Url::parse(&id).unwrap();
    let place = format!(
        "id=\"document-host\">127.0.0.1:{}</strong>, <code id=\"document-path\">{}</code>",
        u.port().unwrap(),
        u.path()
    );
    assert!(page.contains(&place), "{page}");
    assert!(page.contains("id=\"local-redirect\""), "{page}");
    // With a warning that any program on the device may use the name (RFC 8252 §8.6).
    assert!(page.contains("id=\"device-warning\""), "{page}");
    assert!(page.contains("Any program on this device"), "{page}");
    assert!(!page.contains("<img"), "{page}");
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
    assert!(loc.starts_with(&format!("{CALLBACK}?code=")), "{loc}");
    let code = param(&loc, "code").unwrap();

    // A public client: client_id alone, with the PKCE verifier.
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scope"], "messaging");
    let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["sub"], user.user_id.as_str());
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("refresh_token", &rt),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["refresh_token"].as_str().is_some());
    // A third party's token never acts on the management API.
    let (status, _) = app
        .get(r.body["access_token"].as_str().unwrap(), "/oauth_clients")
        .await;
    assert_eq!(status, 403);
    // The metadata says documents are accepted, and that `none` is supported.
    let (_, meta) = app.get("", "/.well-known/oauth-authorization-server").await;
    assert_eq!(meta["client_id_metadata_document_supported"], true);
    assert!(meta["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("none")));

    // The same database under a configuration that no longer accepts this client id (plain
    // http on loopback is off by default): its refresh token is refused as invalid_client.
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    let (again, _dir) = app.restart().await;
    let r = reqwest::Client::new()
        .post(format!("{}/oauth/token", again.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", id.as_str()),
            ("refresh_token", rt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn plain_http_without_the_setting_is_refused_without_a_fetch() {
    let docs = DocServer::start().await;
    let id = docs.url("/c.json");
    docs.serve_doc("/c.json", &document(&id));
    let (app, _) = spawn(false).await;
    assert_refused_page(&app, &id, "must use https").await;
    assert_eq!(docs.total(), 0);
}

#[tokio::test]
async fn a_special_use_address_is_never_fetched() {
    let docs = DocServer::start().await;
    let port = docs.base.rsplit(':').next().unwrap().to_owned();
    let (app, _) = spawn(false).await;
    // https on 127.0.0.1 (a literal) and on localhost (a name resolving to loopback): refused
    // before any connection, since the setting that allows loopback is off.
    for id in [
        format!("https://127.0.0.1:{port}/c.json"),
        format!("https://[::1]:{port}/c.json"),
        "https://10.1.2.3/c.json".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        assert_refused_page(&app, &id, "special-use address").await;
    }
    // A name that points inside reads as one that does not resolve at all: the answer does not
    // map the server's network.
    for id in [
        format!("https://localhost:{port}/c.json"),
        "https://no-such-host.invalid/c.json".to_owned(),
    ] {
        assert_refused_page(&app, &id, "could not be fetched").await;
    }
    assert_eq!(docs.total(), 0);
}

#[tokio::test]
async fn documents_that_are_refused() {
    let docs = DocServer::start().await;
    let (app, _) = spawn(true).await;
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let with = |path: &str, f: &dyn Fn(&mut Value)| {
        let mut d = document(&docs.url(path));
        f(&mut d);
        d
    };
    cases.push((
        "/mismatch.json",
        with("/mismatch.json", &|d| {
            d["client_id"] = json!("http://127.0.0.1:1/other.json")
        }),
        "client_id is not its URL",
    ));
    cases.push((
        "/no-redirects.json",
        with("/no-redirects.json", &|d| {
            d.as_object_mut().unwrap().remove("redirect_uris");
        }),
        "no redirect_uris",
    ));
    cases.push((
        "/secret.json",
        with("/secret.json", &|d| d["client_secret"] = json!("s3cret")),
        "client_secret",
    ));
    cases.push((
        "/basic.json",
        with("/basic.json", &|d| {
            d["token_endpoint_auth_method"] = json!("client_secret_basic")
        }),
        "shared secret",
    ));
    cases.push((
        "/post.json",
        with("/post.json", &|d| {
            d["token_endpoint_auth_method"] = json!("client_secret_post")
        }),
        "shared secret",
    ));
    cases.push((
        "/bad-redirect.json",
        with("/bad-redirect.json", &|d| {
            d["redirect_uris"] = json!(["http://evil.example/cb"])
        }),
        "redirect",
    ));
    cases.push((
        "/no-name.json",
        with("/no-name.json", &|d| {
            d.as_object_mut().unwrap().remove("client_name");
        }),
        "no client_name",
    ));
    cases.push((
        "/web-on-loopback.json",
        with("/web-on-loopback.json", &|d| {
            d["application_type"] = json!("web")
        }),
        "does not fit application_type",
    ));
    for (path, doc, needle) in &cases {
        docs.serve_doc(path, doc);
        assert_refused_page(&app, &docs.url(path), needle).await;
    }
    // Not JSON; too large; a redirect (not followed); other statuses.
    docs.serve("/not-json.json", 200, "<html>".into(), vec![]);
    assert_refused_page(&app, &docs.url("/not-json.json"), "not a JSON object").await;
    let mut big = document(&docs.url("/big.json"));
    big["padding"] = json!("x".repeat(5 * 1024));
    docs.serve_doc("/big.json", &big);
    assert_refused_page(&app, &docs.url("/big.json"), "larger than 5120 bytes").await;
    docs.serve_doc("/target.json", &document(&docs.url("/moved.json")));
    docs.serve(
        "/moved.json",
        302,
        String::new(),
        vec![("location", docs.url("/target.json"))],
    );
    assert_refused_page(&app, &docs.url("/moved.json"), "HTTP 302").await;
    assert_eq!(
        docs.hits("/target.json"),
        0,
        "the redirect was not followed"
    );
    docs.serve(
        "/gone.json",
        404,
        document(&docs.url("/gone.json")).to_string(),
        vec![],
    );
    assert_refused_page(&app, &docs.url("/gone.json"), "HTTP 404").await;
    docs.serve(
        "/created.json",
        201,
        document(&docs.url("/created.json")).to_string(),
        vec![],
    );
    assert_refused_page(&app, &docs.url("/created.json"), "HTTP 201").await;
    // A member named twice (a vetting reader taking the first and this server the last would
    // see two clients); a NUL character.
    let twice = document(&docs.url("/twice.json")).to_string();
    let twice = twice.replacen(
        "\"redirect_uris\":",
        "\"redirect_uris\":[\"https://good.example/cb\"],\"redirect_uris\":",
        1,
    );
    docs.serve(
        "/twice.json",
        200,
        twice,
        vec![("content-type", "application/json".into())],
    );
    assert_refused_page(
        &app,
        &docs.url("/twice.json"),
        "names a member twice (at /redirect_uris)",
    )
    .await;
    let mut nul = document(&docs.url("/nul.json"));
    nul["client_name"] = json!("Nul\u{0}Client");
    docs.serve_doc("/nul.json", &nul);
    assert_refused_page(&app, &docs.url("/nul.json"), "NUL character").await;

    // A refused new document is not kept, nor its failure held: fixed, it works at once.
    docs.serve_doc("/secret.json", &document(&docs.url("/secret.json")));
    let r = authorize(&app, &docs.url("/secret.json"), CALLBACK).await;
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with("/consent?"));
}

/// Naming document URLs stores nothing until a signed-in user's request for one is valid: an
/// anonymous caller sent to sign in, or a signed-in request refused, adds no client row and no
/// `client.registered` event; the signed-in user's valid request then stores the client once.
#[tokio::test]
async fn naming_a_document_stores_nothing_until_a_signed_in_request_is_valid() {
    let docs = DocServer::start().await;
    let (app, _) = spawn(true).await;
    let ids: Vec<String> = (0..5)
        .map(|i| {
            let path = format!("/anon/{i}.json");
            let id = docs.url(&path);
            docs.serve_doc(&path, &document(&id));
            id
        })
        .collect();
    for id in &ids {
        let r = app
            .http
            .get(app.at(&path_of(&params(id, CALLBACK))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        assert!(location(&r).starts_with("/login?"), "{}", location(&r));
        assert!(app.server.store.get_client(id).await.unwrap().is_none());
    }
    // A signed-in request that is refused (a redirect URI the document does not list).
    let r = authorize(&app, &ids[0], "https://attacker.example/cb").await;
    assert_eq!(r.status(), 422);
    assert!(app
        .server
        .store
        .get_client(&ids[0])
        .await
        .unwrap()
        .is_none());
    assert_eq!(app.events("client.registered").await.len(), 0);
    // The valid one stores it, once.
    let r = authorize(&app, &ids[0], CALLBACK).await;
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with("/consent?consent_token="));
    let stored = app.server.store.get_client(&ids[0]).await.unwrap().unwrap();
    assert_eq!(stored.origin, ClientOrigin::MetadataDocument);
    assert_eq!(authorize(&app, &ids[0], CALLBACK).await.status(), 302);
    assert_eq!(app.events("client.registered").await.len(), 1);
    assert!(app
        .server
        .store
        .get_client(&ids[1])
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn new_documents_spend_the_fetch_and_store_budgets_of_their_address() {
    let docs = DocServer::start().await;
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.registration.cimd_allow_http_loopback = true;
        c.rate_limits.documents_per_ip = oauth_server::config::RateLimit {
            requests: 2,
            window_secs: 3600,
        };
        c.rate_limits.register_per_ip_daily = oauth_server::config::RateLimit {
            requests: 1,
            window_secs: 86_400,
        };
    })
    .await;
    let ids: Vec<(String, String)> = (0..3)
        .map(|i| {
            let path = format!("/budget/{i}.json");
            let id = docs.url(&path);
            docs.serve_doc(&path, &document(&id));
            (path, id)
        })
        .collect();
    let anonymous = |id: &str| {
        let url = app.at(&path_of(&params(id, CALLBACK)));
        let http = app.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let today = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 429);
        assert!(r.text().await.unwrap().contains("today"));
    };
    // Nobody signed in (as a page elsewhere makes its visitors' browsers ask, with no cookie):
    // to the sign-in page, with nothing fetched and nothing spent, however often.
    for _ in 0..5 {
        for (path, id) in &ids {
            let r = anonymous(id).await;
            assert_eq!(r.status(), 302);
            assert!(
                location(&r).starts_with("/login?return_to="),
                "{}",
                location(&r)
            );
            assert_eq!(docs.hits(path), 0);
        }
    }
    // A registration spends the address's one stored client of the day.
    let r = app
        .http
        .post(app.at("/oauth/register"))
        .json(&json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Two new documents, fetched for a signed-in user: the fetch budget is spent, and the
    // clients are not stored (none left of the day).
    for (path, id) in &ids[..2] {
        today(authorize(&app, id, CALLBACK).await).await;
        assert_eq!(docs.hits(path), 1);
        assert!(app.server.store.get_client(id).await.unwrap().is_none());
    }
    // One of them again, from the cache: nothing fetched; anonymously, the cached document
    // is no new one, and the request goes on to the sign-in page.
    today(authorize(&app, &ids[0].1, CALLBACK).await).await;
    assert_eq!(anonymous(&ids[0].1).await.status(), 302);
    assert_eq!(docs.hits(&ids[0].0), 1);
    // A third new one is refused on a page, and the server does not fetch it.
    let r = authorize(&app, &ids[2].1, CALLBACK).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("Too many new applications"), "{page}");
    assert_eq!(docs.hits(&ids[2].0), 0);
    // The next day it is stored; once its cached copy is stale it is fetched again for a
    // signed-in user with no fetch budget left, since a stored client is no new one.
    clock.advance(86_400);
    let r = authorize(&app, &ids[0].1, CALLBACK).await;
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with("/consent?consent_token="));
    assert!(app
        .server
        .store
        .get_client(&ids[0].1)
        .await
        .unwrap()
        .is_some());
    assert_eq!(docs.hits(&ids[0].0), 2);
    today(authorize(&app, &ids[1].1, CALLBACK).await).await;
    assert_eq!(
        authorize(&app, &ids[2].1, CALLBACK).await.status(),
        429,
        "no fetch budget left"
    );
    assert_eq!(docs.hits(&ids[2].0), 0);
    clock.advance(oauth_server::config::DEFAULT_CIMD_CACHE_MIN_SECS + 1);
    let r = authorize(&app, &ids[0].1, CALLBACK).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    assert_eq!(docs.hits(&ids[0].0), 3);
}

#[tokio::test]
async fn an_unlisted_redirect_uri_is_a_page_not_a_redirect() {
    let docs = DocServer::start().await;
    let id = docs.url("/c.json");
    docs.serve_doc("/c.json", &document(&id));
    let (app, _) = spawn(true).await;
    let r = authorize(&app, &id, "https://attacker.example/cb").await;
    assert_eq!(r.status(), 422);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("not registered"));
}

/// A verified document client whose document changes what users see loses the mark when the
/// document is read again, and that is recorded (`client.updated`, `verified_cleared`): the
/// operator who vouched for it can see it go. A change users do not see records nothing.
#[tokio::test]
async fn a_document_that_clears_the_verified_mark_is_recorded() {
    let docs = DocServer::start().await;
    let id = docs.url("/verified.json");
    let cache = vec![("cache-control", "public, max-age=0".to_owned())];
    docs.serve(
        "/verified.json",
        200,
        document(&id).to_string(),
        cache.clone(),
    );
    let (app, clock) = spawn(true).await;
    assert_eq!(authorize(&app, &id, CALLBACK).await.status(), 302);
    assert!(app
        .server
        .store
        .set_client_verified(&id, true, app.clock.now())
        .await
        .unwrap()
        .is_some());
    let cleared = async |app: &TestApp| {
        let updated = app.events("client.updated").await;
        updated
            .iter()
            .filter(|e| e.detail["verified_cleared"] == true)
            .count()
    };
    let mut changed = document(&id);
    changed["scope"] = json!("messaging");
    docs.serve("/verified.json", 200, changed.to_string(), cache.clone());
    clock.advance(400);
    assert_eq!(authorize(&app, &id, CALLBACK).await.status(), 302);
    let stored = app.server.store.get_client(&id).await.unwrap().unwrap();
    assert!(
        stored.verified,
        "the scopes are not what the mark vouches for"
    );
    assert_eq!(cleared(&app).await, 0);
    changed["client_name"] = json!("Renamed Client");
    docs.serve("/verified.json", 200, changed.to_string(), cache);
    clock.advance(400);
    assert_eq!(authorize(&app, &id, CALLBACK).await.status(), 302);
    let stored = app.server.store.get_client(&id).await.unwrap().unwrap();
    assert!(!stored.verified);
    assert_eq!(stored.settings.name, "Renamed Client");
    assert_eq!(cleared(&app).await, 1);
}

#[tokio::test]
async fn the_cache_honours_max_age_and_a_changed_document_applies_after_it() {
    let docs = DocServer::start().await;
    let id = docs.url("/cached.json");
    let cache = |max_age: u32| vec![("cache-control", format!("public, max-age={max_age}"))];
    docs.serve("/cached.json", 200, document(&id).to_string(), cache(600));
    let (app, clock) = spawn(true).await;
    let r = authorize(&app, &id, CALLBACK).await;
    assert_eq!(r.status(), 302);
    assert_eq!(docs.hits("/cached.json"), 1);

    // The document changes: within max-age, the cached one still applies, with no fetch.
    let other = "http://127.0.0.1:50000/new-callback";
    let mut changed = document(&id);
    changed["redirect_uris"] = json!([other]);
    changed["client_name"] = json!("Renamed Client");
    docs.serve("/cached.json", 200, changed.to_string(), cache(600));
    clock.advance(500);
    let r = authorize(&app, &id, CALLBACK).await;
    assert_eq!(r.status(), 302);
    assert_eq!(docs.hits("/cached.json"), 1);

    // Past max-age: fetched again; the new redirect list applies to new authorizations.
    clock.advance(101);
    let r = authorize(&app, &id, CALLBACK).await;
    assert_eq!(r.status(), 422, "the old redirect URI is gone");
    assert_eq!(docs.hits("/cached.json"), 2);
    let r = authorize(&app, &id, other).await;
    assert_eq!(r.status(), 302);
    assert_eq!(docs.hits("/cached.json"), 2);
    let stored = app.server.store.get_client(&id).await.unwrap().unwrap();
    assert_eq!(stored.settings.name, "Renamed Client");
    assert_eq!(stored.settings.redirect_uris, [other]);

    // max-age below the configured minimum (300 s) is raised to it; no-store too.
    docs.serve(
        "/short.json",
        200,
        document(&docs.url("/short.json")).to_string(),
        cache(5),
    );
    docs.serve(
        "/nostore.json",
        200,
        document(&docs.url("/nostore.json")).to_string(),
        vec![("cache-control", "no-store".into())],
    );
    for path in ["/short.json", "/nostore.json"] {
        assert_eq!(
            authorize(&app, &docs.url(path), CALLBACK).await.status(),
            302
        );
        clock.advance(200);
        assert_eq!(
            authorize(&app, &docs.url(path), CALLBACK).await.status(),
            302
        );
        assert_eq!(docs.hits(path), 1, "{path}");
        clock.advance(101);
        assert_eq!(
            authorize(&app, &docs.url(path), CALLBACK).await.status(),
            302
        );
        assert_eq!(docs.hits(path), 2, "{path}");
    }
    // A max-age above the maximum (24 h) is cut to it.
    docs.serve(
        "/long.json",
        200,
        document(&docs.url("/long.json")).to_string(),
        cache(10_000_000),
    );
    assert_eq!(
        authorize(&app, &docs.url("/long.json"), CALLBACK)
            .await
            .status(),
        302
    );
    clock.advance(86_401);
    assert_eq!(
        authorize(&app, &docs.url("/long.json"), CALLBACK)
            .await
            .status(),
        302
    );
    assert_eq!(docs.hits("/long.json"), 2);
}

/// A failed fetch is not kept as a document is (whatever `max-age` it came with): it answers
/// for its URL a few seconds, so that requests naming a document whose host is down or failing
/// cannot make this server fetch from that host at their rate (a stored client spends no budget
/// for new documents, signed in or not); the fixed document is fetched after that.
#[tokio::test]
async fn a_failed_fetch_is_held_a_few_seconds_and_not_cached() {
    let docs = DocServer::start().await;
    let id = docs.url("/flaky.json");
    docs.serve_doc("/flaky.json", &document(&id));
    let (app, clock) = spawn(true).await;
    // Stored for a user, then its host fails and the cached copy expires.
    let r = authorize(&app, &id, CALLBACK).await;
    assert_eq!(r.status(), 302);
    docs.serve(
        "/flaky.json",
        500,
        String::new(),
        vec![("cache-control", "max-age=600".into())],
    );
    clock.advance(app_cache_max_secs() + 1);
    for _ in 0..50 {
        let r = app
            .http
            .get(app.at(&path_of(&params(&id, CALLBACK))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "refused on a page, signed in or not");
    }
    let refused = authorize(&app, &id, CALLBACK).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("HTTP 500"));
    assert_eq!(docs.hits("/flaky.json"), 2, "one fetch for them all");
    // Held, the fixed document is not fetched yet; after the hold, it is.
    docs.serve_doc("/flaky.json", &document(&id));
    clock.advance(oauth_server::cimd::FAILURE_HOLD_SECS - 1);
    let refused = authorize(&app, &id, CALLBACK).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("HTTP 500"));
    assert_eq!(docs.hits("/flaky.json"), 2);
    clock.advance(1);
    let r = authorize(&app, &id, CALLBACK).await;
    assert_eq!(r.status(), 302);
    assert_eq!(docs.hits("/flaky.json"), 3);
}

#[tokio::test]
async fn documents_can_be_turned_off_and_limited_to_hosts() {
    let docs = DocServer::start().await;
    let id = docs.url("/c.json");
    docs.serve_doc("/c.json", &document(&id));
    let app = TestApp::spawn_with(|c| {
        c.registration.cimd_allow_http_loopback = true;
        c.registration.cimd_enabled = false;
    })
    .await;
    assert_refused_page(&app, &id, "does not accept client metadata documents").await;
    let (_, meta) = app.get("", "/.well-known/oauth-authorization-server").await;
    assert_eq!(meta["client_id_metadata_document_supported"], false);
    let app = TestApp::spawn_with(|c| {
        c.registration.cimd_allow_http_loopback = true;
        c.registration.cimd_allowed_hosts = vec!["clients.example.com".into()];
    })
    .await;
    assert_refused_page(&app, &id, "from that host").await;
    assert_eq!(docs.total(), 0);
}

/// The operator's deny list refuses a document client that is stored and granted as much as a
/// new one: no authorization and no refresh, and nothing fetched for it. A URL denies one id
/// on its host and leaves the host's other ids; a host denies them all. The refusal spends
/// nothing: with the denial lifted, the same refresh token works.
#[tokio::test]
async fn a_denied_client_id_or_host_is_refused_even_when_stored_and_granted() {
    const PATH: &str = "/clients/lookalike.json";
    const OTHER: &str = "/clients/other.json";
    let docs = DocServer::start().await;
    let id = docs.url(PATH);
    let other = docs.url(OTHER);
    docs.serve_doc(PATH, &document(&id));
    docs.serve_doc(OTHER, &document(&other));
    let (app, _clock) = spawn(true).await;
    let user = app.user("denied@example.com", "denied-org").await;
    let cookie = app.session(&user).await;
    let rt = authorize_and_exchange(&app, &cookie, &id, CALLBACK).await;
    // A request for `other` waits on the consent page while the operator denies its host.
    let r = app
        .get_with_cookie(&path_of(&params(&other, CALLBACK)), &cookie)
        .await;
    assert_eq!(r.status(), 302);
    let pending = param(&location(&r), "consent_token").unwrap();
    let deny = |list: Vec<String>| {
        move |c: &mut oauth_server::Config| {
            c.registration.cimd_allow_http_loopback = true;
            c.registration.cimd_denied = list;
        }
    };
    let app = app.restart_with(deny(vec![id.clone()])).await;
    let fetched = docs.hits(PATH);
    let (status, body) = refresh(&app, &id, &rt).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    let r = authorize(&app, &id, CALLBACK).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("does not accept this client"), "{page}");
    assert_eq!(
        docs.hits(PATH),
        fetched,
        "a denied document is never fetched"
    );
    // The row stays (for the operator to delete), and so does its grant.
    assert!(app.server.store.get_client(&id).await.unwrap().is_some());
    // Another id on the same host is not touched by a denied URL.
    assert_eq!(authorize(&app, &other, CALLBACK).await.status(), 302);
    // A denied host refuses every id on it, stored or not.
    let host = url::Url::parse(&id).unwrap().host_str().unwrap().to_owned();
    let app = app.restart_with(deny(vec![host])).await;
    assert_refused_page(
        &app,
        &docs.url("/clients/new.json"),
        "does not accept this client",
    )
    .await;
    let r = authorize(&app, &other, CALLBACK).await;
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("does not accept this client"));
    let (status, _) = refresh(&app, &id, &rt).await;
    assert_eq!(status, 401);
    // The pending request shows nothing and approves nothing, and is used up by the attempt:
    // no code goes to the denied client, not even an error.
    let page = app
        .get_with_cookie(&format!("/consent?consent_token={pending}"), &cookie)
        .await;
    assert_eq!(page.status(), 422);
    let (status, body) = app
        .get(&user.api_key, &format!("/oauth/consent/{pending}"))
        .await;
    assert_eq!(status, 422, "{body}");
    let approve = json!({"consent_token": pending, "allowed": true});
    let (status, body) = app
        .post_json(&user.api_key, "/oauth/grants", &approve)
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.get("redirect_to").is_none(), "{body}");
    // Lifted, the refresh token the refusals met works: they spent nothing of it. The pending
    // request stays used up, and `other` was granted nothing.
    let app = app.restart_with(deny(Vec::new())).await;
    let (status, body) = refresh(&app, &id, &rt).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .post_json(&user.api_key, "/oauth/grants", &approve)
        .await;
    assert_eq!(status, 422, "{body}");
    let grants = app
        .server
        .store
        .list_grants(&user.user_id, oauth_core::PageSpec::default())
        .await
        .unwrap();
    let granted: Vec<&str> = grants.items.iter().map(|g| g.client_id.as_str()).collect();
    assert_eq!(granted, [id.as_str()]);
}

/// Signs `cookie`'s user through the consent page for `redirect_uri` and exchanges the code:
/// the refresh token.
async fn authorize_and_exchange(
    app: &TestApp,
    cookie: &str,
    id: &str,
    redirect_uri: &str,
) -> String {
    let r = app
        .get_with_cookie(&path_of(&params(id, redirect_uri)), cookie)
        .await;
    assert_eq!(r.status(), 302);
    let token = param(&location(&r), "consent_token").unwrap();
    let page = app
        .get_with_cookie(&format!("/consent?consent_token={token}"), cookie)
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token");
    let r = app
        .http
        .post(app.at("/oauth/grants"))
        .header("cookie", cookie)
        .form(&[
            ("consent_token", token.as_str()),
            ("csrf_token", csrf.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let code = param(&location(&r), "code").unwrap();
    let r = post_form(
        app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["refresh_token"].as_str().unwrap().to_owned()
}

async fn refresh(app: &TestApp, id: &str, rt: &str) -> (u16, Value) {
    let r = post_form(
        app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("refresh_token", rt),
        ],
    )
    .await;
    (r.status, r.body)
}

/// The token endpoint judges a document client on its document as fresh as the cache allows,
/// not on the copy stored at its last authorization: once the cached copy is stale, a
/// withdrawn document refuses a refresh (and spends nothing of it); back, it works again.
#[tokio::test]
async fn a_refresh_follows_the_document_once_the_cache_is_stale() {
    const PATH: &str = "/clients/stale.json";
    let docs = DocServer::start().await;
    let id = docs.url(PATH);
    docs.serve_doc(PATH, &document(&id));
    let (app, clock) = spawn(true).await;
    let user = app.user("stale@example.com", "stale-org").await;
    let cookie = app.session(&user).await;
    let rt = authorize_and_exchange(&app, &cookie, &id, CALLBACK).await;
    // While the cached copy is fresh the document is not fetched again.
    let fetched = docs.hits(PATH);
    let (status, body) = refresh(&app, &id, &rt).await;
    assert_eq!(status, 200, "{body}");
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(docs.hits(PATH), fetched);
    // Withdrawn, and the cached copy past its longest life.
    docs.serve(PATH, 404, String::new(), vec![]);
    clock.advance(app_cache_max_secs() + 1);
    let (status, body) = refresh(&app, &id, &rt).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client", "{body}");
    assert!(docs.hits(PATH) > fetched);
    // Back: the same refresh token works once the failure's short hold is over; it was not
    // spent by the refusal.
    docs.serve_doc(PATH, &document(&id));
    clock.advance(oauth_server::cimd::FAILURE_HOLD_SECS);
    let (status, body) = refresh(&app, &id, &rt).await;
    assert_eq!(status, 200, "{body}");
}

/// Revoking only gives access up: a public document client can still revoke its tokens while
/// its document cannot be had (its host down), judged on its stored copy.
#[tokio::test]
async fn a_document_client_revokes_while_its_document_is_gone() {
    const PATH: &str = "/clients/gone.json";
    let docs = DocServer::start().await;
    let id = docs.url(PATH);
    docs.serve_doc(PATH, &document(&id));
    let (app, clock) = spawn(true).await;
    let user = app.user("gone@example.com", "gone-org").await;
    let cookie = app.session(&user).await;
    let rt = authorize_and_exchange(&app, &cookie, &id, CALLBACK).await;
    docs.serve(PATH, 500, String::new(), vec![]);
    clock.advance(app_cache_max_secs() + 1);
    let r = post_form(
        &app,
        "/oauth/revoke",
        None,
        &[("client_id", id.as_str()), ("token", rt.as_str())],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Each such fetch spends the failure budget all the same: revocations naming a client
    // whose document's host is down cannot make the server fetch without bound.
    let fetched = docs.hits(PATH);
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let r = post_form(
            &app,
            "/oauth/revoke",
            None,
            &[("client_id", id.as_str()), ("token", "not-a-token")],
        )
        .await;
        statuses.push(r.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        docs.hits(PATH) - fetched < 15,
        "{}",
        docs.hits(PATH) - fetched
    );
    // The document back (and the budget refilled), the refresh token is gone for good.
    docs.serve_doc(PATH, &document(&id));
    clock.advance(61);
    let (status, body) = refresh(&app, &id, &rt).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

/// The longest a document is cached by default.
fn app_cache_max_secs() -> i64 {
    oauth_server::Config::default()
        .registration
        .cimd_cache_max_secs
}

/// One document client id is every installation of an app: the user's grant to one
/// installation (its redirect URI) is revoked without touching the others, and the apps page
/// tells them apart.
#[tokio::test]
async fn revoking_one_installation_leaves_the_others() {
    const WEB: &str = "https://web.mcp.example/callback";
    let docs = DocServer::start().await;
    let id = docs.url("/clients/shared.json");
    let mut doc = document(&id);
    doc["redirect_uris"] = json!([CALLBACK, WEB]);
    docs.serve_doc("/clients/shared.json", &doc);
    let (app, _) = spawn(true).await;
    let user = app.user("installs@example.com", "installs-org").await;
    let cookie = app.session(&user).await;

    let desktop_rt = authorize_and_exchange(&app, &cookie, &id, CALLBACK).await;
    // The desktop app again on another port: the same installation.
    let desktop_rt2 =
        authorize_and_exchange(&app, &cookie, &id, "http://127.0.0.1:50001/callback").await;
    let web_rt = authorize_and_exchange(&app, &cookie, &id, WEB).await;

    let grants = app
        .server
        .store
        .list_grants(&user.user_id, oauth_core::PageSpec::default())
        .await
        .unwrap();
    assert_eq!(grants.total, 2, "{:?}", grants.items);
    let web_grant = grants
        .items
        .iter()
        .find(|g| g.installation == WEB)
        .unwrap()
        .id
        .clone();
    let desktop_grant = grants
        .items
        .iter()
        .find(|g| g.installation == "http://127.0.0.1/callback")
        .unwrap()
        .id
        .clone();

    // The apps page lists both, each with where it sends the user back.
    let page = app
        .get_with_cookie("/account/apps", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("class=\"app\"").count(), 2, "{page}");
    assert!(page.contains("web.mcp.example"), "{page}");
    // Each names the host of the document, as the consent page did.
    let u = url::Url::parse(&id).unwrap();
    let named = format!(
        "<strong class=\"document-host\">{}:{}</strong>, <code class=\"document-path\">{}</code>",
        u.host_str().unwrap(),
        u.port().unwrap(),
        u.path()
    );
    assert_eq!(page.matches(&named).count(), 2, "{page}");
    assert!(page.contains("class=\"local-installation\""), "{page}");
    let csrf = hidden(&page, "csrf_token");

    // Revoke the web installation from the apps page.
    let r = app
        .http
        .post(app.at(&format!("/account/apps/{web_grant}/revoke")))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (status, body) = refresh(&app, &id, &web_rt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // The desktop installation's tokens still work, both of its authorizations.
    for rt in [&desktop_rt, &desktop_rt2] {
        let (status, body) = refresh(&app, &id, rt).await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(app
        .server
        .store
        .live_grant(&desktop_grant)
        .await
        .unwrap()
        .is_some());
    let page = app
        .get_with_cookie("/account/apps", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("class=\"app\"").count(), 1, "{page}");
    assert!(!page.contains("web.mcp.example"), "{page}");
}

/// With `skip_consent_if_granted`, a public document client's loopback installation still asks
/// the user every time: its client_id is public, and any program on the device can send the
/// user to authorize with a loopback port of its own and its own PKCE verifier (RFC 8252 §8.6).
/// Its granted https installation goes straight back.
#[tokio::test]
async fn a_public_loopback_installation_never_skips_consent() {
    const WEB: &str = "https://web.mcp.example/callback";
    let docs = DocServer::start().await;
    let id = docs.url("/clients/native.json");
    let mut doc = document(&id);
    doc["redirect_uris"] = json!([CALLBACK, WEB]);
    docs.serve_doc("/clients/native.json", &doc);
    let app = TestApp::spawn_with(|c| {
        c.registration.cimd_allow_http_loopback = true;
        c.authorization.skip_consent_if_granted = true;
    })
    .await;
    let user = app.user("native@example.com", "native-org").await;
    let cookie = app.session(&user).await;
    authorize_and_exchange(&app, &cookie, &id, CALLBACK).await;
    authorize_and_exchange(&app, &cookie, &id, WEB).await;

    // Another program on the device, on a port of its own: the consent page, no code.
    let other = "http://127.0.0.1:50002/callback";
    let r = app
        .get_with_cookie(&path_of(&params(&id, other)), &cookie)
        .await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(loc.starts_with("/consent?consent_token="), "{loc}");
    assert!(param(&loc, "code").is_none(), "{loc}");

    // The granted web installation is answered without the page.
    let r = app
        .get_with_cookie(&path_of(&params(&id, WEB)), &cookie)
        .await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(loc.starts_with(WEB), "{loc}");
    assert!(param(&loc, "code").is_some(), "{loc}");
}

/// A burst of first authorizations for one document (30 at once, while its server is slow)
/// makes one fetch, and every request gets the client; a refused document is shared by the
/// requests waiting for it, and fetched again afterwards (never cached).
#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let docs = DocServer::start().await;
    let id = docs.url("/clients/burst.json");
    docs.serve_doc("/clients/burst.json", &document(&id));
    docs.slow("/clients/burst.json", std::time::Duration::from_millis(400));
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.registration.cimd_allow_http_loopback = true;
        c.rate_limits.authorize_per_ip = oauth_server::config::RateLimit {
            requests: 0,
            window_secs: 0,
        };
    })
    .await;
    let app = Arc::new(app);
    let burst = |id: String| {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..oauth_server::cimd::MAX_WAITING_PER_ADDRESS {
            let app = app.clone();
            let id = id.clone();
            set.spawn(async move {
                let r = authorize(&app, &id, CALLBACK).await;
                let status = r.status().as_u16();
                let location = r
                    .headers()
                    .get("location")
                    .map(|l| l.to_str().unwrap().to_owned());
                (status, location, r.text().await.unwrap())
            });
        }
        set
    };
    let mut set = burst(id.clone());
    while let Some(r) = set.join_next().await {
        let (status, location, _) = r.unwrap();
        assert_eq!(status, 302, "every request reaches the consent step");
        assert!(
            location.is_some_and(|l| l.starts_with("/consent?consent_token=")),
            "to the consent page"
        );
    }
    assert_eq!(
        docs.hits("/clients/burst.json"),
        1,
        "one fetch for the burst"
    );
    assert!(app.server.store.get_client(&id).await.unwrap().is_some());

    let bad = docs.url("/clients/burst-bad.json");
    docs.serve("/clients/burst-bad.json", 500, String::new(), vec![]);
    docs.slow(
        "/clients/burst-bad.json",
        std::time::Duration::from_millis(400),
    );
    let mut set = burst(bad.clone());
    while let Some(r) = set.join_next().await {
        let (status, location, page) = r.unwrap();
        assert_eq!((status, location), (400, None), "a page, never a redirect");
        assert!(page.contains("HTTP 500"), "{page}");
    }
    assert!(app.server.store.get_client(&bad).await.unwrap().is_none());
    assert_eq!(
        docs.hits("/clients/burst-bad.json"),
        1,
        "the refusal was shared"
    );
    // A new document's failure is neither cached nor held: the next try fetches it again.
    assert_eq!(authorize(&app, &bad, CALLBACK).await.status(), 400);
    assert_eq!(docs.hits("/clients/burst-bad.json"), 2, "not cached");
}

/// A session that ends while the server fetches a document (signed out, or by its owner from
/// another browser) gets nothing from the request under way: it goes to sign in, and neither
/// the client nor a consent request is stored.
#[tokio::test]
async fn a_session_ended_during_a_document_fetch_gets_nothing() {
    let docs = DocServer::start().await;
    let id = docs.url("/clients/slow-session.json");
    docs.serve_doc("/clients/slow-session.json", &document(&id));
    docs.slow(
        "/clients/slow-session.json",
        std::time::Duration::from_millis(1000),
    );
    let (app, _) = spawn(true).await;
    let app = Arc::new(app);
    let user = app.user("ends@example.com", "ends-org").await;
    let cookie = app.session(&user).await;
    let pending = {
        let app = app.clone();
        let cookie = cookie.clone();
        let path = path_of(&params(&id, CALLBACK));
        tokio::spawn(async move { app.get_with_cookie(&path, &cookie).await })
    };
    // The fetch is under way (the document is served after a second): the session ends.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let value = cookie.trim_start_matches("oauth_session=");
    assert!(app
        .server
        .store
        .delete_session(&oauth_core::secret::hash_secret(value))
        .await
        .unwrap());
    let r = pending.await.unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        location(&r).starts_with("/login?return_to="),
        "{}",
        location(&r)
    );
    assert_eq!(docs.hits("/clients/slow-session.json"), 1);
    assert!(app.server.store.get_client(&id).await.unwrap().is_none());
}

/// Of a burst of first authorizations for one new document, only the request that stores the
/// client spends a stored client of its address's day: the others waited for the same fetch
/// and found the row stored, and stored nothing.
#[tokio::test]
async fn a_burst_for_a_new_document_spends_one_stored_client() {
    let docs = DocServer::start().await;
    let id = docs.url("/clients/burst-budget.json");
    docs.serve_doc("/clients/burst-budget.json", &document(&id));
    docs.slow(
        "/clients/burst-budget.json",
        std::time::Duration::from_millis(400),
    );
    let app = Arc::new(
        TestApp::spawn_with(|c| {
            c.registration.cimd_allow_http_loopback = true;
            c.rate_limits.authorize_per_ip = oauth_server::config::RateLimit {
                requests: 0,
                window_secs: 0,
            };
            c.rate_limits.register_per_ip_daily = oauth_server::config::RateLimit {
                requests: 2,
                window_secs: 86_400,
            };
        })
        .await,
    );
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..oauth_server::cimd::MAX_WAITING_PER_ADDRESS {
        let app = app.clone();
        let id = id.clone();
        set.spawn(async move { authorize(&app, &id, CALLBACK).await.status() });
    }
    while let Some(status) = set.join_next().await {
        assert_eq!(
            status.unwrap(),
            302,
            "every request reaches the consent step"
        );
    }
    assert_eq!(docs.hits("/clients/burst-budget.json"), 1);
    assert!(app.server.store.get_client(&id).await.unwrap().is_some());
    // One of the day's two stored clients was spent, by the one row stored: one registration
    // is left, and then none.
    let register = || {
        app.http
            .post(app.at("/oauth/register"))
            .json(&json!({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}))
            .send()
    };
    assert_eq!(register().await.unwrap().status(), 201);
    let r = register().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "rate_limited");
}

/// A document's host that is slow to answer holds the requests that wait for it: one address
/// has at most a few of them waiting at once, the rest refused at once, so that a few
/// addresses cannot hold every connection this way; another address waits beside them.
#[tokio::test]
async fn an_address_waits_for_a_document_in_a_few_requests_at_once() {
    use std::time::{Duration, Instant};
    let docs = DocServer::start().await;
    let id = docs.url("/clients/slow-host.json");
    docs.serve_doc("/clients/slow-host.json", &document(&id));
    docs.slow("/clients/slow-host.json", Duration::from_millis(1500));
    let (app, _) = spawn(true).await;
    let app = Arc::new(app);
    let mut set = tokio::task::JoinSet::new();
    let from = |http: reqwest::Client, other: bool| {
        let app = app.clone();
        let url = app.at(&path_of(&params(&id, CALLBACK)));
        async move {
            let started = Instant::now();
            // Signed in: a document nobody has named is fetched for signed-in users only.
            let r = http
                .get(url)
                .bearer_auth(&app.admin_key)
                .send()
                .await
                .unwrap();
            (other, r.status().as_u16(), started.elapsed())
        }
    };
    let max = oauth_server::cimd::MAX_WAITING_PER_ADDRESS;
    for _ in 0..max + 4 {
        set.spawn(from(app.http.clone(), false));
    }
    set.spawn(from(
        crate::rate_limits::client_from(crate::rate_limits::ATTACKER),
        true,
    ));
    let (mut waited, mut refused) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (other, status, took) = r.unwrap();
        match status {
            302 => waited += usize::from(!other),
            429 => {
                assert!(!other, "the other address is not refused");
                assert!(
                    took < Duration::from_millis(1000),
                    "refused at once: {took:?}"
                );
                refused += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!((waited, refused), (max, 4));
    assert_eq!(docs.hits("/clients/slow-host.json"), 1, "one fetch for all");
    // Once it is cached, nobody waits: every request is served.
    for _ in 0..8 {
        let r = app
            .http
            .get(app.at(&path_of(&params(&id, CALLBACK))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
    }
}

/// The endpoints where a document client authenticates wait for its document the same way once
/// the cached copy is stale: one address has at most a few requests waiting, the rest refused
/// at once with 429 (no failure counted), and another address waits beside them.
#[tokio::test]
async fn an_address_waits_for_a_stale_document_in_a_few_requests_at_once() {
    use std::time::{Duration, Instant};
    const PATH: &str = "/clients/slow-again.json";
    let docs = DocServer::start().await;
    let id = docs.url(PATH);
    docs.serve_doc(PATH, &document(&id));
    let (app, clock) = spawn(true).await;
    let user = app.user("slow-again@example.com", "slow-again-org").await;
    let cookie = app.session(&user).await;
    let rt = authorize_and_exchange(&app, &cookie, &id, CALLBACK).await;
    docs.slow(PATH, Duration::from_millis(1500));
    clock.advance(app_cache_max_secs() + 1);
    let fetched = docs.hits(PATH);
    let app = Arc::new(app);
    let max = oauth_server::cimd::MAX_WAITING_PER_ADDRESS;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..=max + 4 {
        let other = i == max + 4;
        let http = if other {
            crate::rate_limits::client_from(crate::rate_limits::ATTACKER)
        } else {
            app.http.clone()
        };
        let (app, id) = (app.clone(), id.clone());
        set.spawn(async move {
            let started = Instant::now();
            let form = [("client_id", id.as_str()), ("token", "not-a-token")];
            let (status, retry_after, body) =
                crate::rate_limits::post_form_with(&http, &app, "/oauth/revoke", None, &form).await;
            (other, status, retry_after, body, started.elapsed())
        });
    }
    let (mut waited, mut refused) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (other, status, retry_after, body, took) = r.unwrap();
        match status {
            200 => waited += usize::from(!other),
            429 => {
                assert!(!other, "the other address is not refused");
                assert_eq!(body["error"], "rate_limited", "{body}");
                assert_eq!(retry_after.as_deref(), Some("5"));
                assert!(
                    took < Duration::from_millis(1000),
                    "refused at once: {took:?}"
                );
                refused += 1;
            }
            s => panic!("unexpected {s}: {body}"),
        }
    }
    assert_eq!((waited, refused), (max, 4));
    assert_eq!(docs.hits(PATH) - fetched, 1, "one fetch for all");
    // Fresh again, nobody waits, and the refresh token works.
    let (status, body) = refresh(&app, &id, &rt).await;
    assert_eq!(status, 200, "{body}");
}

/// A request that goes away while its document is being fetched (its caller hung up, which
/// cancels the handler) leaves nothing behind in the table of fetches under way, so made-up
/// document URLs behind a slow server cannot grow it; and a request waiting on a fetch whose
/// request went away takes the fetch over.
#[tokio::test]
async fn a_cancelled_fetch_leaves_no_entry_behind() {
    use std::time::Duration;
    let docs = DocServer::start().await;
    let (app, _) = spawn(true).await;
    let mut config = oauth_server::config::Config::default();
    config.registration.cimd_allow_http_loopback = true;
    let documents = oauth_server::cimd::Documents::new().unwrap();
    let slow = |path: &str| {
        let id = docs.url(path);
        docs.serve_doc(path, &document(&id));
        docs.docs
            .served
            .lock()
            .unwrap()
            .get_mut(path)
            .unwrap()
            .delay = Duration::from_millis(500);
        url::Url::parse(&id).unwrap()
    };
    let now = 1_900_000_000;
    let admit = || async { Ok(()) };
    for i in 0..3 {
        let url = slow(&format!("/clients/slow-{i}.json"));
        let fetch = oauth_server::cimd::describe(
            &documents,
            app.server.store.as_ref(),
            &config,
            now,
            (&url, LOOPBACK),
            admit,
        );
        let cancelled = tokio::time::timeout(Duration::from_millis(50), fetch).await;
        assert!(cancelled.is_err(), "the fetch was still under way");
        assert_eq!(documents.fetches_under_way(), 0, "after fetch {i}");
    }

    let url = slow("/clients/slow-shared.json");
    let store = app.server.store.as_ref();
    let first = tokio::time::timeout(
        Duration::from_millis(50),
        oauth_server::cimd::describe(&documents, store, &config, now, (&url, LOOPBACK), admit),
    );
    let second = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        oauth_server::cimd::describe(&documents, store, &config, now, (&url, LOOPBACK), admit).await
    };
    let (first, second) = tokio::join!(first, second);
    assert!(first.is_err(), "the first request went away");
    let Ok(described) = second else {
        panic!("the waiting request did not get the client")
    };
    assert_eq!(described.client().client_id, url.as_str());
    assert_eq!(documents.fetches_under_way(), 0);
}
