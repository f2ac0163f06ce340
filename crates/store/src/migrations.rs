//! What the migrations did: the migrations a database has applied, so that `oauth-server
//! migrate` can say which ones it ran, and whether a database holds this server's tables at all.

use sqlx::Connection;

use crate::sqlite_migrate::MARKER_TABLES;
use crate::{Result, StoreError};

/// One applied migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
}

/// The migrations applied to the database at `url`, oldest first, over a connection of its own.
/// A database that has never been migrated has none. A SQLite file that does not exist is not
/// created: that is an error.
pub async fn applied_migrations(url: &str) -> Result<Vec<AppliedMigration>> {
    if url.starts_with("sqlite:") {
        return on_sqlite_file(url, sqlite_applied).await;
    }
    let mut conn = pg_connection(url).await?;
    let rows: std::result::Result<Vec<(i64, String)>, sqlx::Error> = sqlx::query_as(
        "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await;
    let _ = conn.close().await;
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

/// `read` run on the file of the SQLite URL `url`, off the async runtime's threads.
async fn on_sqlite_file<T: Send + 'static>(
    url: &str,
    read: fn(&std::path::Path) -> Result<T>,
) -> Result<T> {
    let path = crate::sqlite::file_path(url)?;
    tokio::task::spawn_blocking(move || read(&path))
        .await
        .map_err(|e| StoreError::Internal(format!("reading the SQLite database: {e}")))?
}

/// A connection of its own to the PostgreSQL database at `url`.
async fn pg_connection(url: &str) -> Result<sqlx::PgConnection> {
    sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| StoreError::Unavailable(Box::new(e)))
}

/// Does the database at `url` hold this server's tables, where its statements would find them
/// (PostgreSQL: the first schema of the connection's `search_path`, where the migrations would
/// create them), with the record of the migrations that made them? Read over a connection of
/// its own, changing nothing: a SQLite file is opened as a reader (a missing one is an error,
/// not created; a hot journal left by a crash is rolled back first, as any reader of the file
/// would) and a lock held by another process is waited for up to 5 s, then an error.
pub async fn holds_server_tables(url: &str) -> Result<bool> {
    if url.starts_with("sqlite:") {
        return on_sqlite_file(url, sqlite_holds_tables).await;
    }
    let mut conn = pg_connection(url).await?;
    // `to_regclass` needs no right on the catalogue's views, as the server itself needs none;
    // with no schema on the path, `current_schema()` is NULL and so is every name.
    let found: std::result::Result<(bool,), sqlx::Error> = sqlx::query_as(
        "SELECT bool_and(to_regclass(quote_ident(current_schema()) || '.' || quote_ident(t)) \
                         IS NOT NULL) \
         FROM unnest($1::text[]) AS t",
    )
    .bind(
        MARKER_TABLES
            .iter()
            .chain(&["_sqlx_migrations"])
            .copied()
            .collect::<Vec<_>>(),
    )
    .fetch_one(&mut conn)
    .await;
    let _ = conn.close().await;
    let (found,) = found.map_err(|e| StoreError::Unavailable(Box::new(e)))?;
    Ok(found)
}

fn sqlite_holds_tables(path: &std::path::Path) -> Result<bool> {
    let unavailable = |e: rusqlite::Error| StoreError::Unavailable(Box::new(e));
    let conn = crate::sqlite_migrate::open_to_read(path, std::time::Duration::from_secs(5))
        .map_err(unavailable)?;
    let found = crate::sqlite_migrate::holds_marker_tables(&conn).map_err(unavailable)?;
    Ok(found && crate::sqlite_migrate::recorded_version(&conn)? > 0)
}

/// SQLite: the migrations up to the file's recorded version (`sqlite_migrate.rs`).
fn sqlite_applied(path: &std::path::Path) -> Result<Vec<AppliedMigration>> {
    let conn = crate::sqlite_migrate::open_to_read(path, std::time::Duration::from_secs(5))
        .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
    let version = crate::sqlite_migrate::recorded_version(&conn)?;
    Ok(crate::sqlite_migrate::MIGRATIONS
        .iter()
        .filter(|(n, _, _)| i64::from(*n) <= version)
        .map(|(n, name, _)| AppliedMigration {
            version: i64::from(*n),
            // Worded as sqlx words PostgreSQL's: the file name's words.
            description: name.replace('_', " "),
        })
        .collect())
}
