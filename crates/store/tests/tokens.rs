#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Storage of signing keys and revoked access tokens, on SQLite and, when
//! `OAUTH_TEST_POSTGRES_URL` names an administrative connection, on a fresh PostgreSQL database
//! created for the test and dropped after it.

use std::future::Future;
use std::sync::Arc;

use oauth_store::{Store, StoredSigningKey};

/// Runs `test` against a fresh SQLite file, then against a fresh PostgreSQL database if one is
/// configured.
async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = oauth_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    test(store.clone()).await;
    store.close().await;

    if let Ok(admin_url) = std::env::var("OAUTH_TEST_POSTGRES_URL") {
        let name = format!("oauth_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let mut db_url = url::Url::parse(&admin_url).unwrap();
        db_url.set_path(&name);
        let store = oauth_store::connect(db_url.as_str()).await.unwrap();
        store.migrate().await.unwrap();
        test(store.clone()).await;
        store.close().await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    }
}

fn key(kid: &str, active_from: i64) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.into(),
        alg: "ES256".into(),
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        sealed_private_key: "sealed".into(),
        created_at: active_from,
        active_from,
        retire_after: None,
    }
}

#[tokio::test]
async fn the_first_key_is_stored_once() {
    on_each_backend(|s| async move {
        assert!(s
            .insert_first_signing_key(&key("a", 100), 100)
            .await
            .unwrap());
        assert!(!s
            .insert_first_signing_key(&key("b", 100), 100)
            .await
            .unwrap());
        let keys = s.list_signing_keys(100).await.unwrap();
        assert_eq!(keys, vec![key("a", 100)]);
    })
    .await;
}

#[tokio::test]
async fn concurrent_first_starts_store_one_key() {
    on_each_backend(|s| async move {
        let mut tasks = Vec::new();
        for i in 0..4 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.insert_first_signing_key(&key(&format!("k{i}"), 100), 100)
                    .await
                    .unwrap()
            }));
        }
        let mut won = 0;
        for t in tasks {
            won += usize::from(t.await.unwrap());
        }
        assert_eq!(won, 1);
        assert_eq!(s.list_signing_keys(100).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn rotation_retires_the_others_and_purge_removes_them_after() {
    on_each_backend(|s| async move {
        s.insert_first_signing_key(&key("old", 100), 100)
            .await
            .unwrap();
        // New key used from 200; tokens of the old one live one hour at most.
        s.rotate_signing_key(&key("new", 200), 200 + 3600)
            .await
            .unwrap();
        let keys = s.list_signing_keys(150).await.unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].kid, "old");
        assert_eq!(keys[0].retire_after, Some(3800));
        assert_eq!(keys[1].kid, "new");
        assert_eq!(keys[1].retire_after, None);
        // Retired: out of the list, then purged.
        let keys = s.list_signing_keys(3800).await.unwrap();
        assert_eq!(
            keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            ["new"]
        );
        assert_eq!(s.purge_retired_signing_keys(3799, 10).await.unwrap(), 0);
        assert_eq!(s.purge_retired_signing_keys(3800, 10).await.unwrap(), 1);
        assert_eq!(s.purge_retired_signing_keys(3800, 10).await.unwrap(), 0);
        // A first-key insert sees the rotated-in key and does nothing.
        assert!(!s
            .insert_first_signing_key(&key("x", 4000), 4000)
            .await
            .unwrap());
    })
    .await;
}

/// A rotation run before the first start (after `migrate`) leaves a key that signs only later:
/// the first start adds none of its own, which nothing would ever retire.
#[tokio::test]
async fn a_key_rotated_in_before_the_first_start_is_the_only_one() {
    on_each_backend(|s| async move {
        s.rotate_signing_key(&key("pending", 3700), 3700 + 3600)
            .await
            .unwrap();
        assert!(!s
            .insert_first_signing_key(&key("first", 200), 200)
            .await
            .unwrap());
        let keys = s.list_signing_keys(200).await.unwrap();
        assert_eq!(
            keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            ["pending"]
        );
    })
    .await;
}

/// Rotations run at once (a rotation scheduled on every host, say) leave one current key: each
/// schedules every key it sees, the others' new keys included, to retire.
#[tokio::test]
async fn rotations_at_once_leave_one_current_key() {
    on_each_backend(|s| async move {
        s.insert_first_signing_key(&key("first", 100), 100)
            .await
            .unwrap();
        let new_keys: Vec<StoredSigningKey> = (0..8).map(|i| key(&format!("k{i}"), 200)).collect();
        let rotations = new_keys.iter().map(|k| s.rotate_signing_key(k, 200 + 3600));
        for rotated in futures_util::future::join_all(rotations).await {
            rotated.unwrap();
        }
        let keys = s.list_signing_keys(150).await.unwrap();
        assert_eq!(keys.len(), 9, "{keys:?}");
        let current: Vec<&str> = keys
            .iter()
            .filter(|k| k.retire_after.is_none())
            .map(|k| k.kid.as_str())
            .collect();
        assert_eq!(current.len(), 1, "{keys:?}");
        assert!(keys
            .iter()
            .all(|k| k.retire_after.is_none() || k.retire_after == Some(3800)));
    })
    .await;
}

#[tokio::test]
async fn a_key_rotated_in_within_the_same_second_comes_last() {
    on_each_backend(|s| async move {
        // Same activation second: the current key (not retiring) is listed last, whatever
        // the kids' order, so that it is the one that signs.
        s.insert_first_signing_key(&key("zzz", 100), 100)
            .await
            .unwrap();
        s.rotate_signing_key(&key("aaa", 100), 100 + 3600)
            .await
            .unwrap();
        let kids =
            |keys: Vec<StoredSigningKey>| keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
        assert_eq!(
            kids(s.list_signing_keys(100).await.unwrap()),
            ["zzz", "aaa"]
        );
        s.rotate_signing_key(&key("mmm", 100), 100 + 3600)
            .await
            .unwrap();
        let keys = s.list_signing_keys(100).await.unwrap();
        assert_eq!(keys.last().unwrap().kid, "mmm");
        assert_eq!(keys.last().unwrap().retire_after, None);
        assert_eq!(keys.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn revoked_jtis_are_remembered_until_exp_and_purged_in_batches() {
    on_each_backend(|s| async move {
        assert!(!s.is_access_token_revoked("j0").await.unwrap());
        for i in 0..5 {
            assert!(s
                .revoke_access_token(&format!("j{i}"), 1000 + i, 10)
                .await
                .unwrap());
        }
        assert!(
            !s.revoke_access_token("j0", 1000, 11).await.unwrap(),
            "already revoked"
        );
        assert!(s.is_access_token_revoked("j0").await.unwrap());
        // Expired at 1002: j0, j1, j2; at most two per batch.
        assert_eq!(s.purge_revoked_tokens(1002, 2).await.unwrap(), 2);
        assert_eq!(s.purge_revoked_tokens(1002, 2).await.unwrap(), 1);
        assert_eq!(s.purge_revoked_tokens(1002, 2).await.unwrap(), 0);
        assert!(!s.is_access_token_revoked("j2").await.unwrap());
        assert!(s.is_access_token_revoked("j3").await.unwrap());
    })
    .await;
}

/// A client assertion's `jti` is used once until it expires; an expired record is taken over
/// by the next use, and expired records are purged in batches.
#[tokio::test]
async fn assertion_jtis_are_single_use_until_they_expire() {
    on_each_backend(|s| async move {
        assert!(s.use_assertion_jti("h1", 1060, 1000).await.unwrap());
        assert!(
            !s.use_assertion_jti("h1", 1060, 1001).await.unwrap(),
            "replay"
        );
        assert!(
            !s.use_assertion_jti("h1", 2000, 1059).await.unwrap(),
            "a later expiry does not revive a live jti"
        );
        assert!(s.use_assertion_jti("h2", 1010, 1000).await.unwrap());
        // At 1060 the first record has expired: the same digest is usable again, until 1120.
        assert!(s.use_assertion_jti("h1", 1120, 1060).await.unwrap());
        assert!(!s.use_assertion_jti("h1", 1120, 1061).await.unwrap());
        for i in 0..3 {
            assert!(s
                .use_assertion_jti(&format!("p{i}"), 1050, 1000)
                .await
                .unwrap());
        }
        // Expired at 1100: h2 and p0..p2; h1 (until 1120) stays.
        assert_eq!(s.purge_assertion_jtis(1100, 3).await.unwrap(), 3);
        assert_eq!(s.purge_assertion_jtis(1100, 3).await.unwrap(), 1);
        assert_eq!(s.purge_assertion_jtis(1100, 3).await.unwrap(), 0);
        assert!(!s.use_assertion_jti("h1", 1120, 1100).await.unwrap());
    })
    .await;
}
