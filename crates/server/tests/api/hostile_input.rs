//! Hostile input on every route that reads input: NUL bytes and other control characters in
//! form and query parameters, path segments, JSON strings and member names and client
//! credentials, and values longer than an identifier can be or than a PostgreSQL index holds.
//! Each is a client error (4xx with the JSON error body, or the page or login form on the
//! browser routes), never a 500, and changes nothing that is stored. The table runs on SQLite,
//! and on a fresh PostgreSQL database when `OAUTH_TEST_POSTGRES_URL` is set (PostgreSQL refuses
//! NUL in text and index rows over 2704 bytes, which SQLite stores).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use oauth_core::keys::KeyEncryptionKey;
use oauth_core::secret;
use oauth_server::clock::SystemClock;
use reqwest::Method;
use serde_json::{json, Value};

use crate::db::{self, TestDb, POSTGRES_ENV};
use crate::flow::*;
use crate::oauth_support::{basic, cc_client};
use crate::support::TestApp;

/// The key-encryption key of the PostgreSQL test server (PostgreSQL requires one).
const KEK: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// Large enough for the 1 MB values below.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

/// What a case must answer.
#[derive(Debug, Clone)]
enum Expect {
    /// This status and the JSON error body with this `error`.
    Json(u16, &'static str),
    /// This status and an HTML page containing this text.
    Page(u16, &'static str),
}

struct Case {
    what: String,
    method: Method,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    expect: Expect,
}

fn request(what: &str, method: Method, path: impl Into<String>) -> Case {
    Case {
        what: what.to_owned(),
        method,
        path: path.into(),
        headers: Vec::new(),
        body: Vec::new(),
        // Every case says what it wants.
        expect: Expect::Json(0, ""),
    }
}

fn get(what: &str, path: impl Into<String>) -> Case {
    request(what, Method::GET, path)
}

fn post(what: &str, path: impl Into<String>) -> Case {
    request(what, Method::POST, path)
}

/// A client to create: these members over a valid confidential client's.
fn new_client(members: Value) -> Value {
    let mut body = json!({
        "name": "x",
        "client_type": "confidential",
        "allowed_grant_types": ["client_credentials"],
        "allowed_scopes": ["admin"]
    });
    for (k, v) in members.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// The case whose outcome differs by engine (see its comment).
const BIG_LOGIN: &str = "login: a 300 KB email";

impl Case {
    fn header(mut self, name: &'static str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name, value.as_ref().to_vec()));
        self
    }

    fn form(self, body: impl AsRef<[u8]>) -> Self {
        let mut c = self.header("content-type", "application/x-www-form-urlencoded");
        c.body = body.as_ref().to_vec();
        c
    }

    /// A JSON body (serde_json writes a NUL in a string as `\u0000`).
    fn json(self, body: Value) -> Self {
        let mut c = self.header("content-type", "application/json");
        c.body = serde_json::to_vec(&body).unwrap();
        c
    }

    /// A body of this content type, as it is.
    fn typed(self, content_type: &'static str, body: impl AsRef<[u8]>) -> Self {
        let mut c = self.header("content-type", content_type);
        c.body = body.as_ref().to_vec();
        c
    }

    fn bearer(self, key: &str) -> Self {
        self.header("authorization", format!("Bearer {key}"))
    }

    fn wants(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }
}

/// Text that no compressor shrinks (hex of a SHA-256 chain from a fixed seed): PostgreSQL
/// compresses index entries, so a repeated letter would fit in an index and miss the point.
fn incompressible(len: usize) -> String {
    let mut out = String::with_capacity(len + 64);
    let mut h = secret::hash_secret("hostile input");
    while out.len() < len {
        out.push_str(&h);
        h = secret::hash_secret(&h);
    }
    out.truncate(len);
    out
}

/// `Basic` credentials whose decoded id or secret are exactly these (no form-encoding that
/// would hide the bytes: `%00` inside the base64 is what a client sends).
fn raw_basic(id_encoded: &str, secret_encoded: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{id_encoded}:{secret_encoded}"))
    )
}

/// The row count of every table a request could write to.
async fn stored(app: &TestApp, engine: Db) -> Vec<(&'static str, i64)> {
    const TABLES: &[&str] = &[
        "organizations",
        "users",
        "api_keys",
        "oauth_clients",
        "sessions",
        "login_failures",
        "oauth_grants",
        "consent_requests",
        "authorization_codes",
        "revoked_tokens",
        "refresh_tokens",
        "security_events",
    ];
    use sqlx::Connection;
    let mut counts = Vec::new();
    match engine {
        Db::Sqlite => {
            let c = crate::support::sqlite(&app.database_url);
            for t in TABLES {
                let n: i64 = c
                    .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                    .unwrap();
                counts.push((*t, n));
            }
        }
        Db::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            for t in TABLES {
                let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
                counts.push((*t, n));
            }
            c.close().await.unwrap();
        }
    }
    counts
}

fn configure(c: &mut oauth_server::Config) {
    c.max_body_bytes = BODY_LIMIT;
}

#[tokio::test]
async fn nul_bytes_and_oversized_values_are_client_errors_on_sqlite() {
    let app = TestApp::spawn_with(configure).await;
    every_route(&app, Db::Sqlite).await;
}

#[tokio::test]
async fn nul_bytes_and_oversized_values_are_client_errors_on_postgres() {
    let Some((store, guard)) = db::postgres().await else {
        eprintln!("skipped: set {POSTGRES_ENV} to run this test on PostgreSQL");
        return;
    };
    store.close().await;
    let TestDb::Postgres { admin_url, name } = &guard else {
        unreachable!()
    };
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_on(
        dir,
        url.to_string(),
        |c| {
            configure(c);
            c.tokens.key_encryption_key = Some(KeyEncryptionKey::from_base64(KEK).unwrap());
        },
        Arc::new(SystemClock),
    )
    .await;
    every_route(&app, Db::Postgres).await;
    app.server.stop().await.unwrap();
    drop(guard);
}

async fn every_route(app: &TestApp, engine: Db) {
    use Expect::{Json, Page};
    let admin = app.admin_key.clone();
    let (id, secret) = cc_client(app).await;
    let auth = basic(&id, &secret);
    let code = app.create_client(&admin, code_client("Code App")).await;
    let code_id = code["client_id"].as_str().unwrap().to_owned();
    // A signed-in user with a grant, a pending consent and the session's CSRF token.
    let user = app.user("alice@example.com", "alice-org").await;
    let cookie = app.session(&user).await;
    let session_value = cookie.trim_start_matches("oauth_session=").to_owned();
    let csrf = oauth_server::session::csrf_token(&session_value);
    let token = app
        .consent_token(&user.api_key, &path_of(&standard_params(&code_id)))
        .await;
    let (status, _) = app.decide(&user.api_key, &token, true).await;
    assert_eq!(status, 200);
    let (_, grants) = app.get(&user.api_key, "/oauth_grants").await;
    let grant_id = grants["data"][0]["id"].as_str().unwrap().to_owned();
    let pending = app
        .consent_token(&user.api_key, &path_of(&standard_params(&code_id)))
        .await;
    // The login form's double-submit value, so that a post reaches the account lookups.
    let (login_csrf, _) = app.login_form().await;
    let login_cookie = format!("oauth_login_csrf={login_csrf}");

    let long_id = incompressible(300 * 1024);
    let big_email = format!("{}@example.com", incompressible(300 * 1024));
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let authorize_nul_state = {
        let mut p = standard_params(&code_id);
        p.retain(|(k, _)| *k != "state");
        format!("{}&state=a%00b", path_of(&p))
    };

    let cb = "http://127.0.0.1/cb";
    let mut cases = vec![
        // --- the token endpoint (no authentication needed to reach it) -------------------
        post("token: NUL in a body client_id", "/oauth/token")
            .form("grant_type=client_credentials&client_id=a%00b&client_secret=s")
            .wants(Json(400, "invalid_request")),
        post(
            "token: another control character in a body client_id",
            "/oauth/token",
        )
        .form("grant_type=client_credentials&client_id=a%01b&client_secret=s")
        .wants(Json(400, "invalid_request")),
        post("token: NUL in a JSON client_id", "/v2/oauth/token")
            .json(json!({
                "grant_type": "client_credentials",
                "client_id": "a\0b",
                "client_secret": "s"
            }))
            .wants(Json(400, "invalid_request")),
        post("token: NUL in a JSON member name", "/oauth/token")
            .header("authorization", &auth)
            .json(json!({"grant_type": "client_credentials", "x\0": "1"}))
            .wants(Json(400, "invalid_request")),
        post("token: NUL in the HTTP Basic client_id", "/oauth/token")
            .header("authorization", raw_basic("a%00b", "s"))
            .form("grant_type=client_credentials")
            .wants(Json(401, "invalid_client")),
        post("token: NUL in the HTTP Basic secret", "/oauth/token")
            .header("authorization", raw_basic(&id, "s%00"))
            .form("grant_type=client_credentials")
            .wants(Json(401, "invalid_client")),
        post("token: a 300 KB client_id", "/oauth/token")
            .form(format!(
                "grant_type=client_credentials&client_id={long_id}&client_secret=s"
            ))
            .wants(Json(400, "invalid_request")),
        // A head far over 64 KiB is refused before any route (`connections`).
        post("token: a 30 KB HTTP Basic client_id", "/oauth/token")
            .header("authorization", raw_basic(&long_id[..30_000], "s"))
            .form("grant_type=client_credentials")
            .wants(Json(401, "invalid_client")),
        post("token: NUL in a code", "/oauth/token")
            .header("authorization", &auth)
            .form(format!(
                "grant_type=authorization_code&code=a%00b&redirect_uri={}",
                enc(REDIRECT)
            ))
            .wants(Json(400, "invalid_request")),
        post("token: NUL in a refresh token", "/oauth/token")
            .header("authorization", &auth)
            .form("grant_type=refresh_token&refresh_token=%00")
            .wants(Json(400, "invalid_request")),
        post("token: NUL in the scope", "/oauth/token")
            .header("authorization", &auth)
            .form("grant_type=client_credentials&scope=admin%00")
            .wants(Json(400, "invalid_request")),
        // --- introspection and revocation ------------------------------------------------
        post("introspect: NUL in the token", "/oauth/introspect")
            .header("authorization", &auth)
            .form("token=a%00b")
            .wants(Json(400, "invalid_request")),
        post("introspect: NUL in a body client_id", "/oauth/introspect")
            .form("client_id=%00&client_secret=s&token=t")
            .wants(Json(400, "invalid_request")),
        post("revoke: NUL in a JSON token", "/oauth/revoke")
            .header("authorization", &auth)
            .json(json!({"token": "\0"}))
            .wants(Json(400, "invalid_request")),
        post("revoke: NUL in a body client_id", "/oauth/revoke")
            .form("client_id=abc%00&token=t")
            .wants(Json(400, "invalid_request")),
        // --- dynamic registration (no authentication) --------------------------------------
        post("register: NUL in client_name", "/oauth/register")
            .json(json!({"client_name": "a\0b", "redirect_uris": [cb]}))
            .wants(Json(400, "invalid_client_metadata")),
        post("register: NUL in a redirect URI", "/oauth/register")
            .json(json!({"client_name": "x", "redirect_uris": ["http://127.0.0.1/cb\0"]}))
            .wants(Json(400, "invalid_client_metadata")),
        post("register: NUL in logo_uri", "/v2/oauth/register")
            .json(json!({
                "client_name": "x",
                "redirect_uris": [cb],
                "logo_uri": "https://a.example/\0.png"
            }))
            .wants(Json(400, "invalid_client_metadata")),
        post("register: NUL in the scope", "/oauth/register")
            .json(json!({"client_name": "x", "redirect_uris": [cb], "scope": "admin\0"}))
            .wants(Json(400, "invalid_client_metadata")),
        post("register: NUL in a member name", "/oauth/register")
            .json(json!({"client_name": "x", "redirect_uris": [cb], "\0": 1}))
            .wants(Json(400, "invalid_client_metadata")),
        post("register: a 1 MB client_name", "/oauth/register")
            .json(json!({"client_name": incompressible(1024 * 1024), "redirect_uris": [cb]}))
            .wants(Json(400, "invalid_client_metadata")),
        // --- the authorization endpoint (a browser route: pages) ---------------------------
        get(
            "authorize: NUL in client_id",
            "/oauth/authorize?response_type=code&client_id=a%00b&redirect_uri=x",
        )
        .wants(Page(400, "parameter `client_id` holds a NUL character")),
        get(
            "authorize: NUL in the state, signed in",
            authorize_nul_state,
        )
        .header("cookie", &cookie)
        .wants(Page(400, "parameter `state` holds a NUL character")),
        // --- the sign-in form --------------------------------------------------------------
        post("login: NUL in the email", "/login")
            .header("cookie", &login_cookie)
            .form(format!(
                "email=a%00b%40example.com&password=p&csrf_token={login_csrf}"
            ))
            .wants(Page(400, "could not be read")),
        post("login: NUL in the password", "/login")
            .header("cookie", &login_cookie)
            .form(format!(
                "email=alice%40example.com&password=%00&csrf_token={login_csrf}"
            ))
            .wants(Page(400, "could not be read")),
        post("logout: NUL in the CSRF field", "/logout")
            .header("cookie", &cookie)
            .form("csrf_token=%00")
            .wants(Page(403, "Sign-out failed")),
        // --- the consent page, form and API ----------------------------------------------
        get(
            "consent page: NUL in the consent token",
            "/consent?consent_token=%00",
        )
        .header("cookie", &cookie)
        .wants(Page(422, "no longer valid")),
        post("consent form: NUL in the consent token", "/oauth/grants")
            .header("cookie", &cookie)
            .form(format!(
                "consent_token=%00&csrf_token={csrf}&decision=allow"
            ))
            .wants(Page(400, "could not be read")),
        post("consent API: NUL in the consent token", "/oauth/grants")
            .bearer(&user.api_key)
            .json(json!({"allowed": true, "consent_token": "a\0"}))
            .wants(Json(422, "invalid_request")),
        get("consent API: NUL in the path", "/oauth/consent/a%00b")
            .bearer(&user.api_key)
            .wants(Json(404, "not_found")),
        get(
            "consent API: a 60 KB path segment",
            format!("/oauth/consent/{}", &long_id[..60_000]),
        )
        .bearer(&user.api_key)
        .wants(Json(404, "not_found")),
        // --- the management API ----------------------------------------------------------
        get(
            "clients: NUL in filter[name]",
            "/oauth_clients?filter[name]=a%00",
        )
        .bearer(&admin)
        .wants(Json(400, "invalid_request")),
        get(
            "clients: NUL in filter[name][contains]",
            "/oauth_clients?filter[name][contains]=%00",
        )
        .bearer(&admin)
        .wants(Json(400, "invalid_request")),
        get(
            "clients: NUL in filter[client_id]",
            "/v2/oauth_clients?filter[client_id]=x%00",
        )
        .bearer(&admin)
        .wants(Json(400, "invalid_request")),
        get(
            "clients: a 60 KB filter[name]",
            format!("/oauth_clients?filter[name]={}", &long_id[..60_000]),
        )
        .bearer(&admin)
        .wants(Json(400, "invalid_request")),
        get("clients: NUL in the id (GET)", "/oauth_clients/%00")
            .bearer(&admin)
            .wants(Json(404, "not_found")),
        request(
            "clients: NUL in the id (PUT)",
            Method::PUT,
            "/oauth_clients/a%00b",
        )
        .bearer(&admin)
        .json(json!({"name": "x"}))
        .wants(Json(404, "not_found")),
        request(
            "clients: NUL in the id (DELETE)",
            Method::DELETE,
            "/v2/oauth_clients/%00",
        )
        .bearer(&admin)
        .wants(Json(404, "not_found")),
        get(
            "clients: a 60 KB id",
            format!("/oauth_clients/{}", &long_id[..60_000]),
        )
        .bearer(&admin)
        .wants(Json(404, "not_found")),
        post("clients: NUL in a created name", "/oauth_clients")
            .bearer(&admin)
            .json(new_client(json!({"name": "a\0b"})))
            .wants(Json(422, "invalid_request")),
        post("clients: NUL in a created redirect URI", "/oauth_clients")
            .bearer(&admin)
            .json(new_client(json!({
                "allowed_grant_types": ["authorization_code"],
                "redirect_uris": ["https://a.example/cb\0"]
            })))
            .wants(Json(422, "invalid_request")),
        post("clients: NUL in a created tos_uri", "/oauth_clients")
            .bearer(&admin)
            .json(new_client(json!({"tos_uri": "https://a.example/\0"})))
            .wants(Json(422, "invalid_request")),
        post("clients: a 1 MB name", "/oauth_clients")
            .bearer(&admin)
            .json(new_client(json!({"name": incompressible(1024 * 1024)})))
            .wants(Json(422, "invalid_request")),
        request(
            "clients: NUL in an updated name",
            Method::PUT,
            format!("/oauth_clients/{id}"),
        )
        .bearer(&admin)
        .json(json!({"name": "\0"}))
        .wants(Json(422, "invalid_request")),
        request(
            "clients: NUL in an updated policy_uri",
            Method::PUT,
            format!("/oauth_clients/{id}"),
        )
        .bearer(&admin)
        .json(json!({"policy_uri": "https://a.example/p\0"}))
        .wants(Json(422, "invalid_request")),
        get(
            "grants: NUL in page[number]",
            "/oauth_grants?page[number]=%00",
        )
        .bearer(&user.api_key)
        .wants(Json(400, "invalid_request")),
        get("grants: NUL in the id (GET)", "/oauth_grants/%00")
            .bearer(&user.api_key)
            .wants(Json(404, "not_found")),
        request(
            "grants: NUL in the id (DELETE)",
            Method::DELETE,
            format!("/oauth_grants/{grant_id}%00"),
        )
        .bearer(&user.api_key)
        .wants(Json(404, "not_found")),
        // --- bodies in a coding or charset that is not read here --------------------------
        // Each would otherwise be read as UTF-8 JSON or form as it is (the first two stored).
        post("clients: a JSON body said to be gzip", "/oauth_clients")
            .bearer(&admin)
            .json(new_client(json!({})))
            .header("content-encoding", "gzip")
            .wants(Json(415, "invalid_request")),
        post("register: a made-up content coding", "/oauth/register")
            .json(json!({"redirect_uris": [cb], "client_name": "x"}))
            .header("content-encoding", "identity, x-made-up")
            .wants(Json(415, "invalid_request")),
        post("clients: a JSON body in UTF-16", "/oauth_clients")
            .bearer(&admin)
            .typed(
                "application/json; charset=utf-16",
                serde_json::to_vec(&new_client(json!({}))).unwrap(),
            )
            .wants(Json(415, "invalid_request")),
        post("token: JSON in ISO-8859-1", "/oauth/token")
            .header("authorization", &auth)
            .typed(
                "application/json; charset=\"ISO-8859-1\"",
                r#"{"grant_type":"client_credentials"}"#,
            )
            .wants(Json(415, "invalid_request")),
        // --- discovery -------------------------------------------------------------------
        get(
            "metadata: NUL in the issuer path",
            "/.well-known/oauth-authorization-server/%00",
        )
        .wants(Json(404, "not_found")),
    ];
    // An email too long to be one (and, as it is, for PostgreSQL's index of failed logins): no
    // email address, so refused before anything is counted or checked, on both engines.
    cases.push(
        post(BIG_LOGIN, "/login")
            .header("cookie", &login_cookie)
            .form(format!(
                "email={}&password=p&csrf_token={login_csrf}",
                enc(&big_email)
            ))
            .wants(Page(400, "Enter the email address")),
    );

    let (_, clients_before) = app.get(&admin, "/oauth_clients").await;
    let (_, client_before) = app.get(&admin, &format!("/oauth_clients/{id}")).await;
    let mut failures = Vec::new();
    for c in cases {
        let before = stored(app, engine).await;
        let mut rb = app.http.request(c.method.clone(), app.at(&c.path));
        for (k, v) in &c.headers {
            rb = rb.header(*k, reqwest::header::HeaderValue::from_bytes(v).unwrap());
        }
        let r = rb.body(c.body.clone()).send().await.unwrap();
        let status = r.status().as_u16();
        let html = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
        let redirected = r.headers().get("location").is_some();
        let text = r.text().await.unwrap();
        let ok = match &c.expect {
            Json(want, error) => {
                let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                // Never the database's own words.
                let leaks = ["UTF8", "btree", "index row", "SQL"]
                    .iter()
                    .any(|w| text.contains(w));
                status == *want && body["error"] == *error && !redirected && !leaks
            }
            Page(want, marker) => status == *want && html && text.contains(marker) && !redirected,
        };
        if !ok {
            let shown: String = text.chars().take(300).collect();
            failures.push(format!(
                "{}: expected {:?}, got {status} {shown}",
                c.what, c.expect
            ));
        }
        let after = stored(app, engine).await;
        if before != after {
            failures.push(format!(
                "{}: stored something: {before:?} -> {after:?}",
                c.what
            ));
        }
    }
    assert!(failures.is_empty(), "{engine:?}:\n{}", failures.join("\n"));
    // The clients, the grant, the pending consent: as they were.
    let (_, clients_after) = app.get(&admin, "/oauth_clients").await;
    assert_eq!(clients_after, clients_before);
    let (_, client_after) = app.get(&admin, &format!("/oauth_clients/{id}")).await;
    assert_eq!(client_after, client_before);
    let (status, _) = app
        .get(&user.api_key, &format!("/oauth_grants/{grant_id}"))
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.decide(&user.api_key, &pending, true).await;
    assert_eq!(status, 200, "{body}");
    let (_, registered) = app.get(&admin, "/oauth_clients?filter[name]=x").await;
    assert_eq!(registered["meta"]["total_results"], 0, "{registered}");
}
