//! SQLite reads on the calling thread.
//!
//! A read is a primary-key lookup or a short list, cheaper than handing it to another thread and
//! back, so reads run directly on the calling thread, on a few connections kept for them: a statement runs to completion without awaiting anything, and a connection is never
//! shared while it does.
//!
//! In WAL mode a reader never waits for a writer, and each statement here runs in its own read
//! transaction (the statement is reset when it finishes), so it sees every write committed before
//! it started, from this process or another. Writes run on the writer thread
//! ([`crate::sqlite_write`]), where waiting for the write lock holds up no runtime thread. While
//! reads come in, that thread also holds the log's read lock that they take, so that taking it
//! costs them no system call ([`crate::sqlite_pin`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::shared::{Arg, FromCols, InOrder};
use crate::sqlite_pin::ReadActivity;
use crate::{ConnectionUsage, Result, StoreError};

/// How many idle connections are kept; more are opened when more threads read at once.
const IDLE_CONNECTIONS: usize = 8;

pub(crate) struct Readers {
    path: PathBuf,
    /// Told of every read, so that the writer thread holds the read lock while reads go on
    /// ([`crate::sqlite_pin`]).
    activity: Arc<ReadActivity>,
    idle: Mutex<Vec<Connection>>,
    /// Connections taken by a read that has not finished.
    in_use: AtomicUsize,
    /// Set by [`Readers::close`]: no connection is opened after it.
    closed: AtomicBool,
}

impl Readers {
    /// Readers for the database file at `path`, which the writer has already opened (and so
    /// created, in WAL mode). One connection is opened now, so that a bad path fails here.
    pub(crate) fn open(path: &Path, activity: Arc<ReadActivity>) -> Result<Self> {
        let readers = Self {
            path: path.to_owned(),
            activity,
            idle: Mutex::new(Vec::new()),
            in_use: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        };
        let first = readers.connect()?;
        readers.put_back(first);
        Ok(readers)
    }

    fn connect(&self) -> Result<Connection> {
        let conn = open_query_only(&self.path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(conn)
    }

    fn take(&self) -> Result<Connection> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < IDLE_CONNECTIONS && !self.closed.load(Ordering::Acquire) {
            idle.push(conn);
        }
    }

    /// Runs `read` on an idle connection (or a new one). A connection whose statement failed
    /// is dropped rather than reused.
    fn with<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.activity.note_read();
        let conn = self.take()?;
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let out = read(&conn);
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        if out.is_ok() {
            self.put_back(conn);
        }
        out
    }

    /// The row `sql` selects with `args` bound to `$1`, `$2`, ... (in that order), if any.
    pub(crate) fn point_read<T: FromCols>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<T>> {
        self.with(|conn| read_one(conn, sql, args))
    }

    /// Every row `sql` selects with `args` bound to `$1`, `$2`, ... (in that order).
    pub(crate) fn rows_read<T: FromCols>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<T>> {
        self.with(|conn| read_all(conn, sql, args))
    }

    /// Whether the writer thread holds the read lock now.
    #[cfg(test)]
    pub(crate) fn read_lock_held(&self) -> bool {
        self.activity.pinned()
    }

    /// The read connections busy and idle now.
    pub(crate) fn usage(&self) -> ConnectionUsage {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        ConnectionUsage {
            in_use: u32::try_from(self.in_use.load(Ordering::Relaxed)).unwrap_or(u32::MAX),
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max: None,
        }
    }

    /// Closes the idle connections; later reads fail as unavailable.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// A connection to the file at `path` that refuses to write: the readers' and the writer
/// thread's read lock ([`crate::sqlite_pin`]).
pub(crate) fn open_query_only(path: &Path) -> rusqlite::Result<Connection> {
    // Read-write flags, so that opening never depends on whether the `-wal` and `-shm` files
    // exist yet; `query_only` then refuses any write on this connection.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// The first row `sql` returns with `params`, if any. The statement is reset before this
/// returns, which ends its read transaction.
pub(crate) fn read_one<T: FromCols>(
    conn: &Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    match rows.next()? {
        Some(row) => T::from_cols(&InOrder::new(row)).map(Some),
        None => Ok(None),
    }
}

/// Every row `sql` returns with `args`.
pub(crate) fn read_all<T: FromCols>(
    conn: &Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(T::from_cols(&InOrder::new(row))?);
    }
    Ok(out)
}

/// What a read or write on a closed store fails with: unavailable.
pub(crate) fn closed() -> StoreError {
    StoreError::Unavailable(Box::new(std::io::Error::other("the store is closed")))
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                StoreError::Unavailable(Box::new(e))
            }
            // SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY.
            rusqlite::Error::SqliteFailure(f, msg) if matches!(f.extended_code, 2067 | 1555) => {
                StoreError::Conflict(msg.clone().unwrap_or_else(|| f.to_string()))
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{read_all, read_one};
    use crate::clients::CLIENT_COLUMNS;
    use crate::shared::{joined, Cols, FromCols, InOrder};
    use crate::Result;
    use oauth_core::{Client, ClientOrigin};
    use oauth_wire::{ClientType, GrantType, TokenEndpointAuthMethod};
    use rusqlite::Connection;

    /// Reads `b` before `a`, and `c` twice, against `SELECT a, b, c`.
    #[derive(Debug, PartialEq)]
    struct OutOfOrder(String, i64, String, String);

    impl FromCols for OutOfOrder {
        fn from_cols(r: &impl Cols) -> Result<Self> {
            let b = r.col("b")?;
            let a = r.col("a")?;
            let c1 = r.col("c")?;
            Ok(OutOfOrder(a, b, c1, r.col("c")?))
        }
    }

    #[derive(Debug)]
    struct Missing;

    impl FromCols for Missing {
        fn from_cols(r: &impl Cols) -> Result<Self> {
            let _: String = r.col("a")?;
            let _: String = r.col("nope")?;
            Ok(Missing)
        }
    }

    /// The first row of `sql`, decoded, and how many of its columns were found by a scan.
    fn decode_counting_scans<T: FromCols>(conn: &Connection, sql: &str) -> (T, u32) {
        let mut stmt = conn.prepare(sql).expect("prepare");
        let mut rows = stmt.query([]).expect("query");
        let row = rows.next().expect("step").expect("a row");
        let cols = InOrder::new(row);
        let value = T::from_cols(&cols).expect("decode");
        (value, cols.scans())
    }

    /// A client row (every column of `CLIENT_COLUMNS`) and a joined row renamed `j_*`.
    fn client_table() -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(&format!(
            "CREATE TABLE oauth_clients ({CLIENT_COLUMNS});
             INSERT INTO oauth_clients VALUES ('c1', 'org', 'u1', 'App', 'confidential', 'hash', 1,
               '[\"client_credentials\"]', '[\"read\"]', '[\"https://a.example/cb\"]', NULL, NULL,
               NULL, 'client_secret_basic', 1, 10, 20, 'management', NULL, NULL, NULL);
             CREATE TABLE j (key TEXT, value TEXT);
             INSERT INTO j VALUES ('k', 'v');"
        ))
        .expect("seed");
        conn
    }

    #[derive(Debug, PartialEq)]
    struct Joined(String, String);

    impl FromCols for Joined {
        fn from_cols(r: &impl Cols) -> Result<Self> {
            Ok(Joined(r.col("key")?, r.col("value")?))
        }
    }

    struct ClientAndJoined(Client, Option<Joined>);

    impl FromCols for ClientAndJoined {
        fn from_cols(r: &impl Cols) -> Result<Self> {
            let client = Client::from_cols(r)?;
            Ok(ClientAndJoined(client, joined(r, "j_", "key")?))
        }
    }

    /// The token endpoint reads a client on every request: its decoder takes the columns in
    /// the order they are selected, and so does a row joined to it (whose key column `joined`
    /// reads twice), so no column is looked for by name.
    #[test]
    fn a_client_row_and_a_row_joined_to_it_are_read_without_a_scan() {
        let conn = client_table();
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients");
        let (client, scans): (Client, u32) = decode_counting_scans(&conn, &sql);
        assert_eq!(scans, 0);
        assert_eq!(
            (
                client.client_id.as_str(),
                client.org_id.as_str(),
                client.user_id.as_str()
            ),
            ("c1", "org", "u1")
        );
        assert_eq!(client.secret_hash.as_deref(), Some("hash"));
        assert!(client.verified && client.settings.require_pkce);
        assert_eq!((client.created_at, client.updated_at), (10, 20));
        assert_eq!(client.settings.name, "App");
        assert_eq!(client.settings.scopes, ["read"]);
        assert_eq!(client.settings.redirect_uris, ["https://a.example/cb"]);
        // The columns parsed from the row's own text.
        assert_eq!(client.settings.client_type, ClientType::Confidential);
        assert_eq!(client.settings.grant_types, [GrantType::ClientCredentials]);
        assert_eq!(
            client.settings.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert_eq!(client.origin, ClientOrigin::Management);

        let sql = crate::clients::client_joined_sql(
            "j.key AS j_key, j.value AS j_value",
            "j ON j.key = 'k'",
        )
        .replace("$1", "'c1'");
        let (row, scans): (ClientAndJoined, u32) = decode_counting_scans(&conn, &sql);
        assert_eq!(scans, 0);
        assert_eq!(row.0, client);
        assert_eq!(row.1, Some(Joined("k".into(), "v".into())));
    }

    /// A text column that holds something else (a blob keeps its type in a TEXT column) or text
    /// that is not UTF-8, JSON that does not decode, or an origin this version does not know, is
    /// an error of the read, not a panic or a default.
    #[test]
    fn a_client_column_that_is_not_what_it_should_be_fails_the_read() {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients");
        for (change, expected) in [
            ("grant_types = NULL", "Null"),
            ("grant_types = x'5b5d'", "Blob"),
            (
                "scopes = CAST(x'5bff5d' AS TEXT)",
                "Conversion error from type Text",
            ),
            ("scopes = '[\"read\"'", "decoding stored JSON"),
            (
                "origin = 'elsewhere'",
                "unknown client origin \"elsewhere\"",
            ),
        ] {
            let conn = client_table();
            conn.execute_batch(&format!("UPDATE oauth_clients SET {change}"))
                .expect(change);
            let err = read_one::<Client>(&conn, &sql, &[]).expect_err(change);
            assert!(err.to_string().contains(expected), "{change}: {err}");
        }
    }

    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE t (a TEXT, b INTEGER, c TEXT);
             INSERT INTO t VALUES ('x', 1, 'y'), ('z', 2, 'w');",
        )
        .expect("seed");
        let rows: Vec<OutOfOrder> =
            read_all(&conn, "SELECT a, b, c FROM t ORDER BY b", &[]).expect("read");
        assert_eq!(
            rows,
            vec![
                OutOfOrder("x".into(), 1, "y".into(), "y".into()),
                OutOfOrder("z".into(), 2, "w".into(), "w".into()),
            ]
        );
        let (_, scans): (OutOfOrder, u32) =
            decode_counting_scans(&conn, "SELECT a, b, c FROM t ORDER BY b");
        // `b` first, `a` after it and `c` after `a`: three scans; `c` again is the last one
        // read, no scan.
        assert_eq!(scans, 3);
        let err = read_one::<Missing>(&conn, "SELECT a FROM t", &[]).expect_err("no such column");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
