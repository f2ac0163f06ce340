//! Starting a server for a test, and the few helpers every test needs.

#![allow(dead_code)]

use std::sync::Arc;

use oauth_server::accounts;
use oauth_server::clock::{Clock, ManualClock, SystemClock};
use oauth_server::{Config, RunningServer};
use serde_json::Value;
use tempfile::TempDir;

pub struct TestApp {
    pub server: RunningServer,
    pub url: String,
    /// API key of the bootstrap admin (organization `default`).
    pub admin_key: String,
    pub admin_org: String,
    pub http: reqwest::Client,
    pub database_url: String,
    pub clock: Arc<dyn Clock>,
    pub dir: TempDir,
}

/// A server on `database_url` at a free port of 127.0.0.1, its configuration adjusted first.
async fn start_on(
    database_url: &str,
    adjust: impl FnOnce(&mut Config),
    clock: Arc<dyn Clock>,
) -> RunningServer {
    let mut config = Config {
        bind: "127.0.0.1:0".parse().expect("addr"),
        database_url: database_url.to_owned(),
        ..Default::default()
    };
    adjust(&mut config);
    config.check().expect("valid test configuration");
    oauth_server::start_with_clock(config, clock, std::future::pending())
        .await
        .expect("server starts")
}

/// A connection to the SQLite file of a `sqlite://PATH` URL, for reading (or breaking) what
/// the server stored.
pub fn sqlite(database_url: &str) -> rusqlite::Connection {
    let path = database_url.trim_start_matches("sqlite://");
    rusqlite::Connection::open(path.split('?').next().unwrap_or(path)).unwrap()
}

/// A user of some organization, with an API key.
pub struct TestUser {
    pub user_id: String,
    pub org_id: String,
    pub email: String,
    pub api_key: String,
    pub password: String,
}

impl TestApp {
    /// The stored security events of `kind`, newest first.
    pub async fn events(&self, kind: &str) -> Vec<oauth_store::SecurityEvent> {
        let filter = oauth_store::SecurityEventFilter {
            kind: Some(kind.into()),
            ..Default::default()
        };
        let events = self.server.store.list_security_events(&filter, 1000).await;
        events.unwrap()
    }

    /// The client as stored (it must be).
    pub async fn stored_client(&self, client_id: &str) -> oauth_core::Client {
        let stored = self.server.store.get_client(client_id).await.unwrap();
        stored.unwrap_or_else(|| panic!("client {client_id} is not stored"))
    }

    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server on a fresh SQLite file, after letting the test adjust the configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}", dir.path().join("oauth.db").display());
        Self::spawn_on(dir, database_url, adjust, Arc::new(SystemClock)).await
    }

    /// Like [`TestApp::spawn_with`], with a clock the test moves by hand.
    pub async fn spawn_with_clock(
        clock: Arc<ManualClock>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}", dir.path().join("oauth.db").display());
        Self::spawn_on(dir, database_url, adjust, clock).await
    }

    pub async fn spawn_on(
        dir: TempDir,
        database_url: String,
        adjust: impl FnOnce(&mut Config),
        clock: Arc<dyn Clock>,
    ) -> Self {
        let server = start_on(&database_url, adjust, clock.clone()).await;
        let bootstrap = server
            .bootstrap
            .clone()
            .expect("a fresh database bootstraps an admin");
        let url = server.url();
        TestApp {
            url,
            admin_key: bootstrap.api_key,
            admin_org: bootstrap.org_id,
            server,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            database_url,
            clock,
            dir,
        }
    }

    /// Stops the server and starts another on the same database file with the configuration
    /// adjusted (an operator's change); the admin's key and the clock stay. The new server has
    /// another port, and so another issuer.
    pub async fn restart_with(self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let TestApp {
            server,
            admin_key,
            admin_org,
            http,
            database_url,
            clock,
            dir,
            ..
        } = self;
        server.stop().await.expect("clean stop");
        let server = start_on(&database_url, adjust, clock.clone()).await;
        TestApp {
            url: server.url(),
            server,
            admin_key,
            admin_org,
            http,
            database_url,
            clock,
            dir,
        }
    }

    /// Stops the server and starts another on the same database file.
    pub async fn restart(self) -> (RunningServer, TempDir) {
        let TestApp {
            server,
            dir,
            database_url,
            ..
        } = self;
        server.stop().await.expect("clean stop");
        let config = Config {
            bind: "127.0.0.1:0".parse().expect("addr"),
            database_url,
            ..Default::default()
        };
        let again = oauth_server::start(config, std::future::pending())
            .await
            .expect("server restarts");
        (again, dir)
    }

    /// Creates a user (and an API key) in organization `org` (created when missing).
    pub async fn user(&self, email: &str, org: &str) -> TestUser {
        let store = self.server.store.as_ref();
        let now = self.clock.now();
        let created = accounts::create_user(
            store,
            email,
            Some(org),
            Some("correct horse battery".into()),
            now,
        )
        .await
        .expect("create user");
        let key = accounts::create_api_key(store, email, Some("test".into()), now)
            .await
            .expect("create key");
        TestUser {
            user_id: created.user_id,
            org_id: created.org_id,
            email: created.email,
            api_key: key.api_key,
            password: "correct horse battery".into(),
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.at(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    pub async fn post_json(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.at(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    pub async fn put_json(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .put(self.at(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    pub async fn delete(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .delete(self.at(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    /// Creates a client through the API and returns its JSON (`data`).
    pub async fn create_client(&self, key: &str, body: Value) -> Value {
        let (status, json) = self.post_json(key, "/oauth_clients", &body).await;
        assert_eq!(status, 201, "{json}");
        json["data"].clone()
    }
}

/// Status and JSON body (`Value::Null` for an empty body).
pub async fn status_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, json)
}

/// A confidential client that may use every grant.
pub fn confidential_client(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "client_type": "confidential",
        "allowed_grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "allowed_scopes": ["admin", "messaging"],
        "redirect_uris": ["https://app.example.com/callback"]
    })
}

/// A public client for the authorization code flow (PKCE required).
pub fn public_client(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "client_type": "public",
        "allowed_grant_types": ["authorization_code", "refresh_token"],
        "allowed_scopes": ["admin", "messaging"],
        "redirect_uris": ["http://127.0.0.1/callback"]
    })
}
