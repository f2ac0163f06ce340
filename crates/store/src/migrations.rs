//! What the migrations did: the migrations a database has applied, read from sqlx's
//! `_sqlx_migrations` table, so that `oauth-server migrate` can say which ones it ran.

use sqlx::Connection;

use crate::{Result, StoreError};

/// One applied migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
}

const APPLIED: &str =
    "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version";

/// The migrations applied to the database at `url`, oldest first, over a connection of its own.
/// A database that has never been migrated has none. A SQLite file that does not exist is not
/// created: that is an error.
pub async fn applied_migrations(url: &str) -> Result<Vec<AppliedMigration>> {
    let rows: std::result::Result<Vec<(i64, String)>, sqlx::Error> = if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let rows = sqlx::query_as(APPLIED).fetch_all(&mut conn).await;
        let _ = conn.close().await;
        rows
    } else {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let rows = sqlx::query_as(APPLIED).fetch_all(&mut conn).await;
        let _ = conn.close().await;
        rows
    };
    match rows {
        Ok(rows) => Ok(rows
            .into_iter()
            .map(|(version, description)| AppliedMigration {
                version,
                description,
            })
            .collect()),
        // No table yet: nothing was ever applied.
        Err(sqlx::Error::Database(_)) => Ok(Vec::new()),
        Err(e) => Err(StoreError::Internal(format!(
            "reading the applied migrations: {e}"
        ))),
    }
}
