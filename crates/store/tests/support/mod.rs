//! Fresh databases for storage tests.
//!
//! SQLite: a file in a temporary directory. PostgreSQL (when `OAUTH_TEST_POSTGRES_URL` is set to
//! a URL whose user may create databases): a new database `oauth_test_<random>`, dropped when the
//! test ends, even when it fails.

#![allow(dead_code)]

use std::sync::Arc;

use oauth_core::client::{Client, ClientDraft};
use oauth_store::Store;
use rand::Rng;
use sqlx::Connection;

pub const POSTGRES_ENV: &str = "OAUTH_TEST_POSTGRES_URL";

/// Keeps a test database alive; dropping it removes the database.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside any runtime guarantee; use a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ = sqlx::query(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

pub async fn sqlite() -> (Arc<dyn Store>, TestDb) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = oauth_store::connect(&url).await.expect("open SQLite");
    store.migrate().await.expect("migrate");
    (store, TestDb::Sqlite(dir))
}

/// `None` when no PostgreSQL server is configured for tests.
pub async fn postgres() -> Option<(Arc<dyn Store>, TestDb)> {
    let (url, guard) = postgres_url().await?;
    let store = oauth_store::connect(&url).await.expect("open PostgreSQL");
    store.migrate().await.expect("migrate");
    Some((store, guard))
}

/// A fresh, empty PostgreSQL database (not migrated) and its URL; `None` when no PostgreSQL
/// server is configured for tests.
pub async fn postgres_url() -> Option<(String, TestDb)> {
    let admin_url = std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty())?;
    let name = format!("oauth_test_{:016x}", rand::thread_rng().gen::<u64>());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL is unreachable: {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    let guard = TestDb::Postgres {
        admin_url: admin_url.clone(),
        name: name.clone(),
    };
    let mut url = url::Url::parse(&admin_url).expect("PostgreSQL URL");
    url.set_path(&format!("/{name}"));
    Some((url.to_string(), guard))
}

/// For each listed `async fn(&dyn Store)`, a test on SQLite and one on PostgreSQL (which passes
/// with a note when PostgreSQL is not configured).
#[macro_export]
macro_rules! storage_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _db) = $crate::support::sqlite().await;
                    super::$name(store.as_ref()).await;
                    store.close().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some((store, _db)) = $crate::support::postgres().await else {
                        eprintln!("skipped: set {} to run the PostgreSQL suite", $crate::support::POSTGRES_ENV);
                        return;
                    };
                    super::$name(store.as_ref()).await;
                    store.close().await;
                }
            )+
        }
    };
}

/// Replaces the settings of `org_id`'s client (the verified mark cleared when `clear` and it
/// was set), as the server's updates do through `edit_client`; `None` for no such client.
pub async fn update(
    store: &dyn Store,
    org_id: &str,
    client_id: &str,
    settings: &ClientDraft,
    clear: bool,
    now: i64,
) -> Option<Client> {
    let s = settings.clone();
    let edit: oauth_store::ClientEdit = Box::new(move |_: &Client| Ok((s.clone(), clear)));
    let edited = store
        .edit_client(org_id, client_id, edit, now)
        .await
        .unwrap();
    edited.map(|r| r.unwrap().client)
}
