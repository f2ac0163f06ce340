//! SQLite migrations: the files of `migrations/sqlite`, embedded in the binary and applied in
//! order, each in a transaction of its own. The database's `PRAGMA user_version` is the number
//! of the last one applied, so the version and the schema change together or not at all.
//!
//! Databases created before this runner existed recorded their migrations in sqlx's
//! `_sqlx_migrations` table instead; the first run adopts that record ([`adopt_sqlx_record`]).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::{Result, StoreError};

/// Every migration, by number, in order. A test checks this against the directory.
pub(crate) const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "accounts_and_clients",
        include_str!("../migrations/sqlite/0001_accounts_and_clients.sql"),
    ),
    (
        2,
        "authorization",
        include_str!("../migrations/sqlite/0002_authorization.sql"),
    ),
    (
        3,
        "tokens",
        include_str!("../migrations/sqlite/0003_tokens.sql"),
    ),
    (
        4,
        "refresh_tokens",
        include_str!("../migrations/sqlite/0004_refresh_tokens.sql"),
    ),
    (
        5,
        "security_events",
        include_str!("../migrations/sqlite/0005_security_events.sql"),
    ),
    (
        6,
        "perf_indexes",
        include_str!("../migrations/sqlite/0006_perf_indexes.sql"),
    ),
    (
        7,
        "trust_and_families",
        include_str!("../migrations/sqlite/0007_trust_and_families.sql"),
    ),
    (
        8,
        "registration_access_tokens",
        include_str!("../migrations/sqlite/0008_registration_access_tokens.sql"),
    ),
    (
        9,
        "client_assertions",
        include_str!("../migrations/sqlite/0009_client_assertions.sql"),
    ),
    (
        10,
        "grant_installations",
        include_str!("../migrations/sqlite/0010_grant_installations.sql"),
    ),
    (
        11,
        "login_devices",
        include_str!("../migrations/sqlite/0011_login_devices.sql"),
    ),
    (
        12,
        "org_client_count",
        include_str!("../migrations/sqlite/0012_org_client_count.sql"),
    ),
    (
        13,
        "code_replays",
        include_str!("../migrations/sqlite/0013_code_replays.sql"),
    ),
];

/// Brings the database at `path` up to the last migration. Safe to run from several processes
/// at once: each step takes the write lock and reads the version again under it.
pub(crate) fn run(path: &Path) -> Result<()> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "foreign_keys", true)?;
    adopt_sqlx_record(&mut conn)?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    for &(version, name, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = user_version(&tx)?;
        if current > latest {
            return Err(StoreError::Internal(format!(
                "the database is at schema version {current}, newer than this server's \
                 {latest}: run a newer server"
            )));
        }
        if current >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(|e| {
            StoreError::Internal(format!("migration {version} ({name}) failed: {e}"))
        })?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, name, "applied a SQLite migration");
    }
    Ok(())
}

/// The tables the first migration creates, which every migrated database holds, and which
/// another application's database is unlikely to hold all of.
pub(crate) const MARKER_TABLES: [&str; 5] = [
    "server_state",
    "organizations",
    "users",
    "api_keys",
    "oauth_clients",
];

/// Whether the database holds every one of [`MARKER_TABLES`].
pub(crate) fn holds_marker_tables(conn: &Connection) -> rusqlite::Result<bool> {
    let found: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN (?1, ?2, ?3, ?4, ?5)",
        MARKER_TABLES,
        |r| r.get(0),
    )?;
    Ok(found == MARKER_TABLES.len() as i64)
}

/// Opens an existing database file to read it: never created, and read-only, unless a crash
/// left a hot journal, which a read-only connection cannot roll back (it fails with
/// `SQLITE_READONLY_ROLLBACK`). Then it is opened read-write, as any reader of the file would
/// open it, and the journal is rolled back first. A lock held by another process is waited for
/// up to `busy`.
pub(crate) fn open_to_read(path: &Path, busy: Duration) -> rusqlite::Result<Connection> {
    let open = |flags: OpenFlags| -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(busy)?;
        Ok(conn)
    };
    let conn = open(OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // The first read is where SQLite finds a hot journal.
    match conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(conn),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK =>
        {
            drop(conn);
            open(OpenFlags::SQLITE_OPEN_READ_WRITE)
        }
        Err(e) => Err(e),
    }
}

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuses, before the writer opens it (and switches it to WAL), a file that is not this
/// server's database: one that is not SQLite at all, or one that holds anything of its own (a
/// table, a view, an index or a trigger), records a schema version (`user_version`, or a
/// successful row of sqlx's `_sqlx_migrations`) or an `application_id`, without holding this
/// server's first tables. The migrations would otherwise run into another application's
/// database, or trust its version, skip what it seems to cover and fail part way. A missing or
/// empty file passes: it becomes a new database, as does one whose only object is an empty
/// `_sqlx_migrations` (what this server's earlier runner left when its first migration failed).
///
/// The file is read through [`open_to_read`].
pub(crate) fn refuse_foreign(path: &Path) -> Result<()> {
    use std::io::Read as _;
    let Ok(file) = std::fs::File::open(path) else {
        // Missing (to be created) or unreadable: the writer's open says which.
        return Ok(());
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    file.take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(|e| StoreError::Internal(format!("reading {}: {e}", path.display())))?;
    if header.is_empty() {
        return Ok(());
    }
    if header != SQLITE_HEADER {
        return Err(StoreError::Internal(format!(
            "{} is not a SQLite database; it was left as it was",
            path.display()
        )));
    }
    let conn = open_to_read(path, Duration::from_secs(30))?;
    let mut version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        version = recorded_version(&conn)?;
    }
    let application: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    // sqlx's record table counts as an object unless it is a table with no row at all.
    let empty_sqlx_record = has_sqlx_record(&conn)?
        && conn.query_row("SELECT COUNT(*) FROM _sqlx_migrations", [], |r| {
            r.get::<_, i64>(0)
        })? == 0;
    let all_objects: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        [],
        |r| r.get(0),
    )?;
    let objects = all_objects - i64::from(empty_sqlx_record);
    if (version != 0 || application != 0 || objects > 0) && !holds_marker_tables(&conn)? {
        return Err(StoreError::Internal(format!(
            "{} is another application's database (schema version {version}, {objects} \
             objects, not oauth-server's); it was left as it was",
            path.display()
        )));
    }
    Ok(())
}

/// The number of the last migration applied to the database: its `user_version`, or for a
/// database that sqlx migrated and this runner has not seen yet, the highest one sqlx recorded.
pub(crate) fn recorded_version(conn: &Connection) -> Result<i64> {
    let version = i64::from(user_version(conn)?);
    if version > 0 || !has_sqlx_record(conn)? {
        return Ok(version);
    }
    let highest: Option<i64> = conn.query_row(
        "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
        [],
        |r| r.get(0),
    )?;
    Ok(highest.unwrap_or(0))
}

fn has_sqlx_record(conn: &Connection) -> Result<bool> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(found.is_some())
}

fn user_version(conn: &Connection) -> Result<u32> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    u32::try_from(v).map_err(|_| StoreError::Internal(format!("bad user_version {v}")))
}

/// A database that sqlx migrated has `user_version` 0 and a `_sqlx_migrations` table listing
/// the migrations applied: take its highest number as the version, once. A record with a
/// failed or missing migration is refused rather than guessed at.
fn adopt_sqlx_record(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if user_version(&tx)? != 0 {
        return Ok(());
    }
    if !has_sqlx_record(&tx)? {
        return Ok(());
    }
    let (count, highest, failed): (i64, Option<i64>, i64) = tx.query_row(
        "SELECT COUNT(*), MAX(version), COUNT(*) FILTER (WHERE NOT success) FROM _sqlx_migrations",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let Some(highest) = highest else {
        return Ok(());
    };
    let known = MIGRATIONS.last().map_or(0, |m| i64::from(m.0));
    if failed > 0 || count != highest || highest > known {
        return Err(StoreError::Internal(format!(
            "the database's migration record is not one this server can continue: {count} \
             migrations recorded, up to {highest}, {failed} failed"
        )));
    }
    tx.pragma_update(None, "user_version", highest)?;
    tx.commit()?;
    tracing::info!(version = highest, "adopted the earlier migration record");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// Every file of the directory is listed, in order, and numbered as its name says; the
    /// PostgreSQL directory has the same files.
    #[test]
    fn every_migration_file_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let names = |engine: &str| {
            let mut v: Vec<String> = std::fs::read_dir(format!("{dir}/{engine}"))
                .expect("migrations directory")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|(n, name, _)| format!("{n:04}_{name}.sql"))
            .collect();
        assert_eq!(names("sqlite"), listed);
        assert_eq!(names("postgres"), listed);
        for (i, (n, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*n as usize, i + 1);
        }
    }
}
