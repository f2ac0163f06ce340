//! Servers on each database the suite runs against.

use crate::support::TestApp;

/// A server on SQLite, and one on PostgreSQL when `OAUTH_TEST_POSTGRES_URL` is set (with the
/// guard that drops its database).
pub async fn on_both_databases(
    adjust: impl Fn(&mut oauth_server::Config),
) -> Vec<(TestApp, Option<crate::db::TestDb>)> {
    let mut apps = vec![(TestApp::spawn_with(&adjust).await, None)];
    if let Some((url, guard)) = crate::db::postgres_url().await {
        let app = TestApp::spawn_on(
            tempfile::tempdir().unwrap(),
            url,
            &adjust,
            std::sync::Arc::new(oauth_server::clock::SystemClock),
        )
        .await;
        apps.push((app, Some(guard)));
    }
    apps
}
