//! A database from before the trust model (migrations 1 to 6, with rows as that version wrote
//! them) upgrades: the clients it registered dynamically become third-party clients that no
//! organization's member sees, its own clients stay where they were, and its refresh tokens
//! (from before token families) still rotate. On SQLite, and on PostgreSQL when
//! `OAUTH_TEST_POSTGRES_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::borrow::Cow;

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
            now: 20,
        })
        .await;
    assert!(joined.is_err(), "{joined:?}");
}

#[tokio::test]
async fn sqlite_database_from_the_previous_version_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    before_the_trust_model(sqlx::migrate!("./migrations/sqlite"))
        .run(&mut conn)
        .await
        .unwrap();
    for sql in OLD_ROWS {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    let store = oauth_store::connect(&format!("sqlite://{}", dir.path().join("old.db").display()))
        .await
        .unwrap();
    upgraded(store.as_ref()).await;
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
