//! The real server, started in-process on 127.0.0.1:0 with a fresh SQLite file.

#![allow(dead_code)]

use std::sync::Arc;

use oauth_server::clock::{Clock, SystemClock};
use oauth_server::{accounts, Config, RunningServer};
use telnyx_oauth::{Client, ClientType, CreateOAuthClient, GrantType};
use tempfile::TempDir;

pub struct TestServer {
    pub server: RunningServer,
    pub url: String,
    pub admin_key: String,
    _dir: TempDir,
}

impl TestServer {
    pub async fn spawn() -> Self {
        Self::spawn_with_clock(Arc::new(SystemClock), |_| {}).await
    }

    /// Like [`TestServer::spawn`], with the server's clock and configuration chosen by the test.
    pub async fn spawn_with_clock(clock: Arc<dyn Clock>, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            bind: "127.0.0.1:0".parse().expect("addr"),
            database_url: format!("sqlite://{}", dir.path().join("oauth.db").display()),
            ..Default::default()
        };
        adjust(&mut config);
        config.check().expect("valid test configuration");
        let server = oauth_server::start_with_clock(config, clock, std::future::pending())
            .await
            .expect("server starts");
        let admin_key = server
            .bootstrap
            .clone()
            .expect("a fresh database bootstraps an admin")
            .api_key;
        TestServer {
            url: server.url(),
            server,
            admin_key,
            _dir: dir,
        }
    }

    /// An SDK client for the bootstrap admin, at the root or at `/v2`.
    pub fn client(&self) -> Client {
        self.client_with_key(&self.admin_key)
    }

    pub fn client_v2(&self) -> Client {
        Client::builder()
            .api_key(&self.admin_key)
            .base_url(format!("{}/v2", self.url))
            .build()
            .expect("client")
    }

    pub fn client_with_key(&self, key: &str) -> Client {
        Client::builder()
            .api_key(key)
            .base_url(&self.url)
            .build()
            .expect("client")
    }

    /// An API key of a new user in organization `org`.
    pub async fn user_key(&self, email: &str, org: &str) -> String {
        let store = self.server.store.as_ref();
        let now = SystemClock.now();
        accounts::create_user(
            store,
            email,
            Some(org),
            Some("correct horse battery".into()),
            now,
        )
        .await
        .expect("create user");
        accounts::create_api_key(store, email, Some("sdk test".into()), now)
            .await
            .expect("create key")
            .api_key
    }
}

pub fn new_client(name: &str, client_type: ClientType) -> CreateOAuthClient {
    CreateOAuthClient::new(name, client_type, [GrantType::ClientCredentials], ["admin"])
}
