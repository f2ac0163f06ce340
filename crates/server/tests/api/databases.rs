//! Servers on each database the suite runs against.

use crate::support::TestApp;

/// The key-encryption key of the PostgreSQL servers [`on_both_databases`] starts (unless the
/// test sets its own), for admin commands run against their database. On SQLite the server keeps
/// its key in a file beside the database, where the commands find it.
pub const POSTGRES_KEK: &str = "c2VydmVyIHRlc3RzOiBub3QgYSByZWFsIHNlY3JldCE=";

/// A server on SQLite, and one on PostgreSQL when `OAUTH_TEST_POSTGRES_URL` is set (with the
/// guard that drops its database, and a key-encryption key unless `adjust` sets one).
pub async fn on_both_databases(
    adjust: impl Fn(&mut oauth_server::Config),
) -> Vec<(TestApp, Option<crate::db::TestDb>)> {
    let mut apps = vec![(TestApp::spawn_with(&adjust).await, None)];
    if let Some((url, guard)) = crate::db::postgres_url().await {
        // PostgreSQL keeps the signing keys encrypted: a key-encryption key is required.
        let adjust = |c: &mut oauth_server::Config| {
            adjust(c);
            c.tokens.key_encryption_key.get_or_insert_with(|| {
                oauth_core::keys::KeyEncryptionKey::from_base64(POSTGRES_KEK).unwrap()
            });
        };
        let app = TestApp::spawn_on(
            tempfile::tempdir().unwrap(),
            url,
            adjust,
            std::sync::Arc::new(oauth_server::clock::SystemClock),
        )
        .await;
        apps.push((app, Some(guard)));
    }
    apps
}
