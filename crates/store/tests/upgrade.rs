//! A database from before the trust model (migrations 1 to 6, with rows as that version wrote
//! them) upgrades: the clients it registered dynamically become third-party clients that no
//! organization's member sees, its own clients stay where they were, and its refresh tokens
//! (from before token families) still rotate. On SQLite, and on PostgreSQL when
//! `OAUTH_TEST_POSTGRES_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::borrow::Cow;
use std::path::Path;

use oauth_core::client::THIRD_PARTY_ORG_ID;
use oauth_core::{ClientOrigin, PageSpec};
use oauth_store::{ClientFilter, NewRefreshToken, RefreshRotation, Store};
use sqlx::Connection;

/// What the previous version stored: an organization with its admin, a client the admin
/// created, one registered through `/oauth/register` (owned, then, by the admin), a grant to
/// the registered client and a refresh token of that grant.
const OLD_ROWS: &[&str] = &[
    "INSERT INTO organizations (id, name, created_at) VALUES ('org-1', 'default', 1)",
    "INSERT INTO users (id, org_id, email, password_hash, created_at) \
     VALUES ('admin', 'org-1', 'admin@localhost', 'x', 1)",
    "INSERT INTO oauth_clients (client_id, org_id, user_id, name, client_type, secret_hash, \
     require_pkce, grant_types, scopes, redirect_uris, token_endpoint_auth_method, verified, \
     created_at, updated_at) VALUES ('own', 'org-1', 'admin', 'Own', 'confidential', 'h', FALSE, \
     '[\"client_credentials\"]', '[\"admin\"]', '[]', 'client_secret_basic', FALSE, 2, 2)",
    "INSERT INTO oauth_clients (client_id, org_id, user_id, name, client_type, secret_hash, \
     require_pkce, grant_types, scopes, redirect_uris, token_endpoint_auth_method, verified, \
     created_at, updated_at) VALUES ('reg', 'org-1', 'admin', 'Registered', 'confidential', 'h', \
     FALSE, '[\"authorization_code\",\"refresh_token\"]', '[\"admin\",\"voice\"]', \
     '[\"https://r.example/cb\"]', 'client_secret_basic', FALSE, 3, 3)",
    "INSERT INTO security_events (occurred_at, kind, org_id, user_id, client_id, detail) \
     VALUES (2, 'client.created', 'org-1', 'admin', 'own', '{}')",
    "INSERT INTO security_events (occurred_at, kind, org_id, client_id, detail) \
     VALUES (3, 'client.registered', 'org-1', 'reg', '{}')",
    "INSERT INTO oauth_grants (id, user_id, client_id, scopes, resources, created_at, updated_at) \
     VALUES ('g-1', 'admin', 'reg', '[\"voice\"]', '[]', 4, 4)",
    "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scopes, created_at, \
     expires_at) VALUES ('old-rt', 'g-1', 'reg', 'admin', '[\"voice\"]', 4, 4000000000)",
];

/// The migrations of the previous version.
fn before_the_trust_model(mut m: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    m.migrations = Cow::Owned(
        m.migrations
            .iter()
            .filter(|m| m.version < 7)
            .cloned()
            .collect(),
    );
    m
}

async fn upgraded(store: &dyn Store) {
    store.migrate().await.expect("the upgrade migrates");
    let reg = store.get_client("reg").await.unwrap().unwrap();
    assert_eq!(reg.origin, ClientOrigin::Registration);
    assert_eq!(reg.org_id, THIRD_PARTY_ORG_ID);
    assert_eq!(reg.user_id, "");
    let own = store.get_client("own").await.unwrap().unwrap();
    assert_eq!(own.origin, ClientOrigin::Management);
    assert_eq!(
        (own.org_id.as_str(), own.user_id.as_str()),
        ("org-1", "admin")
    );
    let listed = store
        .list_clients("org-1", &ClientFilter::default(), PageSpec::default())
        .await
        .unwrap();
    let ids: Vec<&str> = listed.items.iter().map(|c| c.client_id.as_str()).collect();
    assert_eq!(ids, vec!["own"]);
    // The organization's count of clients starts from the clients it held: with a cap of one
    // it has no room, with two it has.
    let mut second = own.clone();
    second.client_id = "own-2".into();
    assert!(!store.insert_client_within(&second, 1).await.unwrap());
    assert!(store.get_client("own-2").await.unwrap().is_none());
    assert!(store.insert_client_within(&second, 2).await.unwrap());
    assert!(store.delete_client("org-1", "own-2").await.unwrap());
    // A refresh token from before families still rotates; its new token has no family either.
    let new = NewRefreshToken {
        token_hash: "new-rt".into(),
        grant_id: "g-1".into(),
        client_id: "reg".into(),
        user_id: "admin".into(),
        scopes: vec!["voice".into()],
        resource: None,
        created_at: 10,
        expires_at: 4_000_000_000,
        family_id: None,
    };
    let out = store
        .rotate_refresh_token("old-rt", &new, 10)
        .await
        .unwrap();
    assert!(matches!(out, RefreshRotation::Rotated(_)), "{out:?}");
    assert_eq!(
        store
            .find_refresh_token("new-rt")
            .await
            .unwrap()
            .unwrap()
            .family_id,
        None
    );
    // Nobody can join the organization of third-party clients by its name.
    let joined = store
        .create_user(oauth_store::NewUser {
            user_id: "intruder".into(),
            email: "i@x.example".into(),
            password_hash: "x".into(),
            org_name: "(third-party clients)".into(),
            new_org_id: "org-new".into(),
            join_existing_org: true,
            now: 20,
        })
        .await;
    assert!(joined.is_err(), "{joined:?}");
}

/// The table in which sqlx's migrator, which ran the SQLite migrations before the store had a
/// runner of its own, recorded them: as sqlx 0.8 creates it.
const SQLX_RECORD: &str = "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, \
     description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
     success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)";

/// A SQLite file as sqlx's migrator left it after applying migrations 1 to `up_to`, the last
/// one recorded with `last_success`.
fn sqlx_migrated_sqlite(path: &Path, up_to: u32, last_success: bool) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    let _: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    conn.execute_batch(SQLX_RECORD).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for (i, file) in files.iter().enumerate().take(up_to as usize) {
        let version = i as i64 + 1;
        conn.execute_batch(&std::fs::read_to_string(file).unwrap())
            .unwrap();
        let success = version < i64::from(up_to) || last_success;
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, ?3, x'00', 1)",
            rusqlite::params![version, file.file_stem().unwrap().to_str().unwrap(), success],
        )
        .unwrap();
    }
    conn
}

/// The number of the last SQLite migration.
const LATEST: i64 = 13;

fn user_version(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[tokio::test]
async fn sqlite_database_from_the_previous_version_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let conn = sqlx_migrated_sqlite(&path, 6, true);
    for sql in OLD_ROWS {
        conn.execute_batch(sql).unwrap();
    }
    drop(conn);
    let store = oauth_store::connect(&sqlite_url(&path)).await.unwrap();
    upgraded(store.as_ref()).await;
    assert_eq!(user_version(&path), LATEST);
}

/// The schema of the last release that used sqlx for SQLite (migration 7), as sqlx recorded it,
/// is adopted as it is: nothing runs again, the later migrations run, every row stays, and
/// running the migrations once more changes nothing.
#[tokio::test]
async fn sqlite_database_migrated_by_sqlx_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("today.db");
    let conn = sqlx_migrated_sqlite(&path, 7, true);
    conn.execute_batch(OLD_ROWS[0]).unwrap();
    drop(conn);
    assert_eq!(user_version(&path), 0);
    let store = oauth_store::connect(&sqlite_url(&path)).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(user_version(&path), LATEST);
    store.migrate().await.unwrap();
    assert_eq!(
        store
            .find_organization_by_name("default")
            .await
            .unwrap()
            .map(|o| o.id),
        Some("org-1".to_owned())
    );
}

/// A record whose last migration failed is not guessed at: the migration fails and the database
/// is left as it was.
#[tokio::test]
async fn sqlite_record_with_a_failed_migration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failed.db");
    drop(sqlx_migrated_sqlite(&path, 6, false));
    let store = oauth_store::connect(&sqlite_url(&path)).await.unwrap();
    let err = store.migrate().await.expect_err("refused");
    assert!(err.to_string().contains("1 failed"), "{err}");
    assert_eq!(user_version(&path), 0);
}

/// A database a newer server migrated is refused, not written to.
#[tokio::test]
async fn sqlite_database_newer_than_the_server_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let store = oauth_store::connect(&sqlite_url(&path)).await.unwrap();
    store.migrate().await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = store.migrate().await.expect_err("refused");
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(user_version(&path), 99);
}

/// Several processes starting on one new file migrate it once between them.
#[tokio::test]
async fn concurrent_sqlite_migrations_apply_each_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(oauth_store::connect(&sqlite_url(&path)).await.unwrap());
    }
    let runs = stores.iter().map(|s| s.migrate());
    for out in futures_util::future::join_all(runs).await {
        out.unwrap();
    }
    assert_eq!(user_version(&path), LATEST);
}

/// `sqlite::memory:` is a working database of its own, gone with the store.
#[tokio::test]
async fn memory_database_works_and_leaves_nothing() {
    let store = oauth_store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let (user, _) = store
        .create_user(oauth_store::NewUser {
            user_id: "u-1".into(),
            email: "u@x.example".into(),
            password_hash: "x".into(),
            org_name: "acme".into(),
            new_org_id: "org-1".into(),
            join_existing_org: true,
            now: 1,
        })
        .await
        .unwrap();
    assert_eq!(store.get_user("u-1").await.unwrap(), Some(user));
    let other = oauth_store::connect("sqlite::memory:").await.unwrap();
    other.migrate().await.unwrap();
    assert_eq!(other.get_user("u-1").await.unwrap(), None);
}

#[tokio::test]
async fn postgres_database_from_the_previous_version_upgrades() {
    let Some((url, _guard)) = support::postgres_url().await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    before_the_trust_model(sqlx::migrate!("./migrations/postgres"))
        .run(&mut conn)
        .await
        .unwrap();
    for sql in OLD_ROWS {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    let store = oauth_store::connect(&url).await.unwrap();
    upgraded(store.as_ref()).await;
}
