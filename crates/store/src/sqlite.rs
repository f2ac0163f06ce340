//! The embedded default: one SQLite file in WAL mode, reached through rusqlite alone.
//!
//! Reads run on the calling thread on connections of their own ([`crate::sqlite_read`]); every
//! write runs on one writer thread ([`crate::sqlite_write`]). SQLite allows one writer at a time,
//! so nothing waits for the write lock but that thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::Engine;
use crate::shared::{Arg, FromCols};
use crate::sqlite_pin::ReadActivity;
use crate::sqlite_read::Readers;
use crate::sqlite_write::Writer;
use crate::writes::WriteJob;
use crate::{ConnectionUsage, Dialect, Result, StoreError};

pub struct SqliteStore {
    path: PathBuf,
    readers: Readers,
    writer: Writer,
    /// The directory of a `sqlite::memory:` database, removed with the store.
    _scratch: Option<tempfile::TempDir>,
}

impl SqliteStore {
    /// Opens the database of a `sqlite:` URL: `sqlite://PATH` or `sqlite:PATH` (a file,
    /// created with its directory when missing; `?mode=rw` refuses to create it) or
    /// `sqlite::memory:` (a database of this process alone, in a temporary directory that is
    /// removed when the store is dropped). The file is switched to WAL, with a busy timeout,
    /// `synchronous=NORMAL` (durable across a process crash; WAL makes it safe) and foreign
    /// keys on.
    pub async fn connect(url: &str) -> Result<Self> {
        let (path, scratch, create) = match location(url)? {
            Location::File { path, create } => (path, None, create),
            Location::Memory => {
                let dir = tempfile::Builder::new()
                    .prefix("oauth-sqlite-")
                    .tempdir()
                    .map_err(|e| {
                        StoreError::Internal(format!("creating a scratch database: {e}"))
                    })?;
                (dir.path().join("oauth.db"), Some(dir), true)
            }
        };
        if create {
            create_private(&path)?;
        }
        crate::sqlite_migrate::refuse_foreign(&path)?;
        // The writer opens (and creates) the file first and switches it to WAL.
        let activity = Arc::new(ReadActivity::default());
        let writer = Writer::open(&path, create, Arc::clone(&activity))?;
        let readers = Readers::open(&path, Arc::clone(&activity))?;
        Ok(Self {
            path,
            readers,
            writer,
            _scratch: scratch,
        })
    }
}

/// The file a `sqlite:` URL names; an error for `sqlite::memory:`, which has none.
pub(crate) fn file_path(url: &str) -> Result<PathBuf> {
    match location(url)? {
        Location::File { path, .. } => Ok(path),
        Location::Memory => Err(StoreError::Internal(
            "an in-memory database has no file".into(),
        )),
    }
}

/// Creates the database's directory (mode 0700) and the empty database file (mode 0600) when
/// they are missing, so that neither follows the process's umask: the database holds password
/// hashes, emails and the audit trail's addresses, and SQLite gives its `-wal` and `-shm` files
/// the database file's mode. What exists already is left as it is.
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let failed = |what: &Path, e: std::io::Error| {
        StoreError::Internal(format!("cannot create {}: {e}", what.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| failed(dir, e))?;
    }
    // Not `create_new`: a dangling symbolic link (a database placed elsewhere) is followed,
    // and the file it names is created 0600 too. A file that exists keeps its mode and content.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| failed(path, e))
}

/// Where a `sqlite:` URL points.
#[derive(Debug, PartialEq)]
enum Location {
    File { path: PathBuf, create: bool },
    Memory,
}

fn location(url: &str) -> Result<Location> {
    let bad = |why: &str| StoreError::Internal(format!("bad SQLite URL: {why}"));
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| bad("it must start with sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut create = true;
    let mut memory = path == ":memory:";
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair {
            "mode=rwc" => create = true,
            "mode=rw" => create = false,
            "mode=memory" => memory = true,
            other => return Err(bad(&format!("unsupported option {other:?}"))),
        }
    }
    if memory {
        return Ok(Location::Memory);
    }
    if path.is_empty() {
        return Err(bad("no file named"));
    }
    // SQLite reads a name that starts with `file:` as a URI of its own, naming another file
    // than the one this store creates and checks.
    if path
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("file:"))
    {
        return Err(bad("write sqlite://PATH; a file: URI is not taken"));
    }
    Ok(Location::File {
        path: Path::new(path).to_owned(),
        create,
    })
}

impl Engine for SqliteStore {
    const DIALECT: Dialect = Dialect {
        insertion_order: "rowid",
        name_contains: "instr(lower(name), lower({})) > 0",
        json_array_contains: "EXISTS (SELECT 1 FROM json_each(grant_types) WHERE value = {})",
        for_update: "",
        for_share: "",
        for_key_share: "",
        lock_client_to_edit: "",
        lock_to_delete: "",
        lock_key: "",
        row_id: "rowid",
        writes_in_with: false,
    };

    async fn point_read<T: FromCols + Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>> {
        self.readers.point_read(sql, args)
    }

    async fn rows_read<T: FromCols + Send>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<T>> {
        self.readers.rows_read(sql, args)
    }

    async fn write<J: WriteJob>(&self, job: J) -> Result<J::Output> {
        self.writer.run(job).await
    }

    async fn run_migrations(&self) -> Result<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || crate::sqlite_migrate::run(&path))
            .await
            .map_err(|e| StoreError::Internal(format!("the migration task failed: {e}")))?
    }

    /// Closes the reader connections and stops the writer (after its queued jobs).
    async fn close_connections(&self) {
        self.readers.close();
        self.writer.close().await;
    }

    fn connection_usage(&self) -> ConnectionUsage {
        self.readers.usage()
    }
}

#[cfg(test)]
mod tests {
    use super::{location, Location, SqliteStore};
    use crate::engine::{execute, Engine};
    use crate::shared::Count;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    async fn count(store: &SqliteStore) -> i64 {
        store
            .point_read::<Count>("SELECT count(*) AS n FROM t", &[])
            .await
            .expect("read")
            .expect("a row")
            .0
    }

    /// A store on a fresh file (in the directory returned with it) with a table `t (columns)`.
    async fn store_with_table(columns: &str) -> (tempfile::TempDir, PathBuf, SqliteStore) {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("oauth.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("connect");
        execute(&store, &format!("CREATE TABLE t ({columns})"), &[])
            .await
            .expect("create");
        (dir, db, store)
    }

    fn wal_len(db: &Path) -> u64 {
        std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len())
    }

    /// Waits (up to 3 s, reading all along if `reading`) until the writer thread holds the
    /// read lock or lets it go, as `held` says.
    async fn until_read_lock(store: &SqliteStore, held: bool, reading: bool) {
        let deadline = Instant::now() + Duration::from_secs(3);
        while store.readers.read_lock_held() != held {
            assert!(
                Instant::now() < deadline,
                "the read lock never became {held}"
            );
            if reading {
                count(store).await;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The writer thread holds a read transaction open while reads come in (`sqlite_pin`):
    /// a read still sees what another process committed a moment before, and once reads stop
    /// the lock is let go, so that an idle server leaves the file to other tools.
    #[tokio::test]
    async fn the_read_lock_follows_the_reads_and_hides_no_commit() {
        let (_dir, db, store) = store_with_table("x INTEGER").await;
        assert!(!store.readers.read_lock_held(), "held before any read");
        until_read_lock(&store, true, true).await;

        // Another process (here, a connection of its own) commits while the lock is held.
        let other = rusqlite::Connection::open(&db).expect("open");
        other.busy_timeout(Duration::ZERO).expect("timeout");
        for n in 1..=3 {
            other
                .execute("INSERT INTO t VALUES (1)", [])
                .expect("insert");
            assert_eq!(count(&store).await, n, "a read missed a commit");
        }
        assert!(wal_len(&db) > 0);

        // No more reads: the next tick lets go, and another process may truncate the log.
        until_read_lock(&store, false, false).await;
        let (busy, _, _): (i64, i64, i64) = other
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("checkpoint");
        assert_eq!(busy, 0, "an idle store still holds the log");
        assert_eq!(wal_len(&db), 0);
        assert_eq!(count(&store).await, 3);
        store.close_connections().await;
    }

    /// Another process writes (an admin command, a `sqlite3` shell) while the server only
    /// reads: that process checkpoints at its own commits, which the held read lock would hold
    /// back, and the server would never checkpoint. So the lock is let go while another process
    /// commits, and the log starts again instead of growing with every write (to some 20 MB
    /// here with the lock held on); once that process stops, the lock is held again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_processs_checkpoints_go_through_while_the_server_reads() {
        let (_dir, db, store) = store_with_table("x BLOB").await;
        let store = std::sync::Arc::new(store);
        until_read_lock(&store, true, true).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = tokio::spawn({
            let (store, stop) = (store.clone(), stop.clone());
            async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    count(&store).await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let other = rusqlite::Connection::open(&db).expect("open");
        other.busy_timeout(Duration::from_secs(5)).expect("timeout");
        // 300 rows of 64 KiB over some 3 s, five at a time: many ticks of the writer thread.
        for _ in 0..60 {
            for _ in 0..5 {
                other
                    .execute("INSERT INTO t VALUES (zeroblob(65536))", [])
                    .expect("insert");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let wal = wal_len(&db);
        assert!(wal < 8 << 20, "the log grew to {wal} bytes");
        // The other process has stopped: the reads get the lock back.
        until_read_lock(&store, true, false).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.await.expect("reader");
        assert_eq!(count(&store).await, 300);
        store.close_connections().await;
    }

    /// Reads and writes in turn, as a busy server runs them: the writer lets go of the read
    /// lock before each batch of writes, so its checkpoints copy the whole log back and the log
    /// starts again from its beginning. Held through the writes, the lock would stop that and
    /// the log would grow with every write (here to some 20 MB).
    #[tokio::test]
    async fn the_log_starts_again_while_reads_and_writes_go_on() {
        let (_dir, db, store) = store_with_table("x BLOB").await;
        // 300 rows of 64 KiB: 4,800 pages, the automatic checkpoint's 1,000 almost five times.
        // Each write begins with the lock held.
        for n in 1..=300 {
            until_read_lock(&store, true, true).await;
            execute(&store, "INSERT INTO t VALUES (zeroblob(65536))", &[])
                .await
                .expect("insert");
            assert_eq!(count(&store).await, n);
        }
        let wal = wal_len(&db);
        assert!(wal < 8 << 20, "the log grew to {wal} bytes");
        store.close_connections().await;
    }

    #[test]
    fn urls_name_a_file_or_memory() {
        let file = |p: &str, create| Location::File {
            path: PathBuf::from(p),
            create,
        };
        let cases = [
            ("sqlite://data/oauth.db", file("data/oauth.db", true)),
            (
                "sqlite:///var/lib/oauth.db",
                file("/var/lib/oauth.db", true),
            ),
            ("sqlite:oauth.db", file("oauth.db", true)),
            ("sqlite://dir/oauth.db?mode=rwc", file("dir/oauth.db", true)),
            ("sqlite://oauth.db?mode=rw", file("oauth.db", false)),
            ("sqlite::memory:", Location::Memory),
            ("sqlite://x.db?mode=memory", Location::Memory),
        ];
        for (url, want) in cases {
            assert_eq!(location(url).ok(), Some(want), "{url}");
        }
        for url in [
            "postgres://x",
            "sqlite://",
            "sqlite://x.db?cache=shared",
            // SQLite would open another file than the one named.
            "sqlite:file:other.db",
            "sqlite://FILE:other.db",
            "sqlite:file:///tmp/other.db",
        ] {
            assert!(location(url).is_err(), "{url}");
        }
    }
}
