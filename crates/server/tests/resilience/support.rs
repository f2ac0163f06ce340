//! The real `oauth-server` binary on a fresh database, a TCP relay the test can cut between a
//! server and PostgreSQL, and the HTTP steps of the OAuth flows these tests drive.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub use crate::db::{TestDb, POSTGRES_ENV};

pub const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");

/// The key-encryption key every test server gets (PostgreSQL requires one, the same on every
/// instance).
pub const KEK: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "https://app.example.com/callback";

/// The issuer of every test server: one name for every instance and every restart, as in a
/// deployment behind one address.
pub const ISSUER: &str = "https://auth.test.example";

/// The configuration file of every test server: the shared issuer, request-rate limits off
/// (these tests send bursts from one address on purpose), and `extra` (top-level keys first).
pub fn config_file(dir: &Path, name: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "issuer = \"{ISSUER}\"\n{extra}\n[rate_limits]\nregister_per_ip = {{ requests = 0, window_secs = 0 }}\n\
             register_per_ip_daily = {{ requests = 0, window_secs = 0 }}\n\
             documents_per_ip = {{ requests = 0, window_secs = 0 }}\n\
             login_per_ip = {{ requests = 0, window_secs = 0 }}\n\
             management_per_ip = {{ requests = 0, window_secs = 0 }}\n\
             management_per_key = {{ requests = 0, window_secs = 0 }}\n\
             oauth_per_client = {{ requests = 0, window_secs = 0 }}\n\
             client_auth_failures_per_ip = {{ requests = 0, window_secs = 0 }}\n\
             client_auth_failures_per_client_ip = {{ requests = 0, window_secs = 0 }}\n\
             authorize_per_ip = {{ requests = 0, window_secs = 0 }}\n"
        ),
    )
    .unwrap();
    path
}

/// A fresh database: a SQLite file, or (with `postgres`) a new PostgreSQL database, `None`
/// when `OAUTH_TEST_POSTGRES_URL` is unset. Dropping the guard removes it.
pub struct FreshDb {
    pub guard: TestDb,
    /// The database as the server is told to reach it.
    pub url: String,
}

impl FreshDb {
    pub async fn sqlite() -> Self {
        let (store, guard) = crate::db::sqlite().await;
        store.close().await;
        let TestDb::Sqlite(dir) = &guard else {
            unreachable!()
        };
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        FreshDb { guard, url }
    }

    pub async fn postgres() -> Option<Self> {
        let (store, guard) = crate::db::postgres().await?;
        store.close().await;
        let TestDb::Postgres { admin_url, name } = &guard else {
            unreachable!()
        };
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        Some(FreshDb {
            url: url.to_string(),
            guard,
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.guard, TestDb::Postgres { .. })
    }

    /// The same database reached through `relay` (PostgreSQL only).
    pub fn via(&self, relay: &Relay) -> String {
        let mut url = url::Url::parse(&self.url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(relay.port)).unwrap();
        url.to_string()
    }

    /// A single number from a SQL query, read directly from the database.
    pub async fn scalar(&self, sql: &str) -> i64 {
        match &self.guard {
            TestDb::Sqlite(_) => self.open_sqlite().query_row(sql, [], |r| r.get(0)).unwrap(),
            TestDb::Postgres { .. } => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let v: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
                c.close().await.unwrap();
                v
            }
        }
    }

    /// Text rows of a SQL query (SQLite only: its `PRAGMA` checks), columns joined by `|`.
    pub async fn sqlite_texts(&self, sql: &str) -> Vec<String> {
        let c = self.open_sqlite();
        let mut stmt = c.prepare(sql).unwrap();
        let width = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                Ok((0..width)
                    .map(|i| match r.get_ref(i) {
                        Ok(rusqlite::types::ValueRef::Text(t)) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        Ok(rusqlite::types::ValueRef::Integer(n)) => n.to_string(),
                        _ => String::new(),
                    })
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// A connection of the test's own to the SQLite file.
    pub fn open_sqlite(&self) -> rusqlite::Connection {
        let path = self.url.trim_start_matches("sqlite://");
        rusqlite::Connection::open(path.split('?').next().unwrap_or(path)).unwrap()
    }
}

/// A running `oauth-server serve` process.
pub struct Server {
    child: tokio::process::Child,
    pub addr: String,
    /// The bootstrap admin's API key, printed on the first start of an empty database.
    pub api_key: Option<String>,
    drain: JoinHandle<()>,
}

impl Server {
    /// Starts the binary on `database_url` with the configuration file `config`; returns once
    /// it listens.
    pub async fn start(database_url: &str, config: &Path) -> Self {
        let mut child = tokio::process::Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("OAUTH_DATABASE_URL", database_url)
            .env("OAUTH_BIND", "127.0.0.1:0")
            .env("OAUTH_KEY_ENCRYPTION_KEY", KEK)
            .env("OAUTH_LOG", "warn")
            .env_remove("OAUTH_CONFIG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut api_key = None;
        let addr = loop {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("the server prints its address")
                .unwrap()
                .expect("the server starts");
            if let Some(k) = line.trim().strip_prefix("API key:") {
                api_key = Some(k.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("oauth-server listening on ") {
                break rest.split(' ').next().unwrap().to_owned();
            }
        };
        // Keep reading stdout so that the process never blocks on a full pipe.
        let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server {
            child,
            addr,
            api_key,
            drain,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    pub async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        let status = self.child.wait().await.unwrap();
        assert!(!status.success(), "killed, not exited: {status:?}");
        self.drain.abort();
    }

    /// SIGTERM, and waits for the clean stop.
    pub async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("stops after SIGTERM")
            .unwrap();
        assert!(status.success(), "{status:?}");
        self.drain.abort();
    }
}

/// Runs an admin command of the binary on `database_url`; returns (success, stdout, stderr).
pub fn admin(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env("OAUTH_DATABASE_URL", database_url)
        .env("OAUTH_KEY_ENCRYPTION_KEY", KEK)
        .env_remove("OAUTH_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A TCP relay in front of PostgreSQL. Cut, it closes every relayed connection and accepts new
/// ones without ever answering: the database looks like a host that went away.
pub struct Relay {
    pub port: u16,
    up: Arc<AtomicBool>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    /// Relays to the PostgreSQL server of `database_url`.
    pub async fn start(database_url: &str) -> Self {
        let u = url::Url::parse(database_url).unwrap();
        let host = u.host_str().unwrap_or("127.0.0.1").to_owned();
        let upstream: SocketAddr =
            tokio::net::lookup_host((host.as_str(), u.port().unwrap_or(5432)))
                .await
                .unwrap()
                .next()
                .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accept = {
            let (up, pipes, held) = (up.clone(), pipes.clone(), held.clone());
            tokio::spawn(async move {
                while let Ok((mut down, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        held.lock().unwrap().push(down);
                        continue;
                    }
                    let pipe = tokio::spawn(async move {
                        if let Ok(mut upstream) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut down, &mut upstream).await;
                        }
                    });
                    let mut pipes = pipes.lock().unwrap();
                    pipes.retain(|p| !p.is_finished());
                    pipes.push(pipe);
                }
            })
        };
        Relay {
            port,
            up,
            pipes,
            held,
            accept,
        }
    }

    /// The database becomes unreachable: open connections close, new ones hang.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for p in self.pipes.lock().unwrap().drain(..) {
            p.abort();
        }
    }

    /// The database is reachable again.
    pub fn restore(&self) {
        self.held.lock().unwrap().clear();
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
        self.held.lock().unwrap().clear();
    }
}

// --- HTTP ------------------------------------------------------------------------------------

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One response: status, headers, JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// `Basic base64(id:secret)`, each part form-urlencoded first (RFC 6749 §2.3.1).
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// Header and claims of a JWT, unverified.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let mut part = || {
        let bytes = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    let h = part();
    let c = part();
    (h, c)
}

pub fn param(location: &str, key: &str) -> Option<String> {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A client of one server process, with the admin's API key.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    pub fn new(server: &Server, key: &str) -> Self {
        Api {
            http: http(),
            base: format!("http://{}", server.addr),
            key: key.to_owned(),
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<Resp, reqwest::Error> {
        Ok(into_resp(req.send().await?).await)
    }

    pub async fn get(&self, path: &str) -> Result<Resp, reqwest::Error> {
        self.send(self.http.get(self.at(path)).bearer_auth(&self.key))
            .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Resp, reqwest::Error> {
        self.send(
            self.http
                .post(self.at(path))
                .bearer_auth(&self.key)
                .json(body),
        )
        .await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Result<Resp, reqwest::Error> {
        self.send(
            self.http
                .put(self.at(path))
                .bearer_auth(&self.key)
                .json(body),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Result<Resp, reqwest::Error> {
        self.send(self.http.delete(self.at(path)).bearer_auth(&self.key))
            .await
    }

    /// A form POST with client authentication (HTTP Basic).
    pub async fn post_form(
        &self,
        path: &str,
        client: (&str, &str),
        form: &[(&str, &str)],
    ) -> Result<Resp, reqwest::Error> {
        self.send(
            self.http
                .post(self.at(path))
                .header("authorization", basic(client.0, client.1))
                .form(form),
        )
        .await
    }

    /// A confidential code-flow client (PKCE, refresh tokens, client credentials):
    /// (client_id, client_secret).
    pub async fn code_client(&self, name: &str) -> (String, String) {
        let r = self
            .post_json(
                "/oauth_clients",
                &json!({
                    "name": name,
                    "client_type": "confidential",
                    "allowed_grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                    "allowed_scopes": ["admin", "messaging"],
                    "redirect_uris": [REDIRECT],
                    "require_pkce": true
                }),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.text);
        (
            r.body["data"]["client_id"].as_str().unwrap().to_owned(),
            r.body["data"]["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The standard authorize request of `client_id` (PKCE S256).
    pub fn authorize_path(client_id: &str) -> String {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", REDIRECT),
                ("scope", "admin messaging"),
                ("state", "st-1"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .finish();
        format!("/oauth/authorize?{q}")
    }

    /// The admin authorizes `client_id` and consents: the code. `Err` on a transport error.
    pub async fn code(&self, client_id: &str) -> Result<String, reqwest::Error> {
        let r = self.get(&Self::authorize_path(client_id)).await?;
        assert_eq!(r.status, 302, "{}", r.text);
        let loc = r.header("location").unwrap().to_owned();
        let token = param(&loc, "consent_token").unwrap_or_else(|| panic!("{loc}"));
        let r = self
            .post_json(
                "/oauth/grants",
                &json!({"allowed": true, "consent_token": token}),
            )
            .await?;
        assert_eq!(r.status, 200, "{}", r.text);
        Ok(param(r.body["redirect_uri"].as_str().unwrap(), "code").expect("a code"))
    }

    pub async fn exchange(&self, client: (&str, &str), code: &str) -> Result<Resp, reqwest::Error> {
        self.post_form(
            "/oauth/token",
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
    }

    pub async fn refresh(&self, client: (&str, &str), rt: &str) -> Result<Resp, reqwest::Error> {
        self.post_form(
            "/oauth/token",
            client,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await
    }

    /// Introspects `token` as `client`, asserting a 200.
    pub async fn introspect(&self, client: (&str, &str), token: &str) -> Value {
        let r = self
            .post_form("/oauth/introspect", client, &[("token", token)])
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }
}

/// Asserts an OAuth error response.
pub fn assert_oauth_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"], error, "{}", r.text);
    assert!(r.body.get("access_token").is_none());
}
