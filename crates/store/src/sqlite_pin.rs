//! The write-ahead log's read lock, held for the reads to share.
//!
//! In WAL mode every read transaction takes a shared lock on one of the log's read marks and
//! gives it back when it ends. SQLite counts these locks per process and asks the kernel
//! (`fcntl` on the `-shm` file) only for the first one taken on a mark and the last one given
//! back. The reads here are short and seldom overlap, so nearly every one paid both system
//! calls: holding the mark saves 3–4 µs of server CPU of an ES256 token's 55, and about 3 µs of
//! an introspection's 24 (BENCHMARKS.md).
//!
//! The pin is a connection of its own holding a read transaction open on the latest mark, so
//! that a read taking the same mark finds it held and makes no system call. The pin reads
//! nothing after it has begun, and no read sees its snapshot: each read still begins a
//! transaction of its own and sees every commit made before it, from this process or another.
//!
//! What a held read transaction does hold back is the log's upkeep. A checkpoint copies back into
//! the database file no frame beyond the one a held mark names, and none at all while mark 0 is
//! held (the mark a read takes when the whole log has been copied back); the log starts again
//! from its beginning only once it has all been copied back and no reader holds a mark other
//! than 0. So the writer thread, which owns the pin:
//!
//! - lets go of it before each batch of writes, whose commit runs the automatic checkpoint (once
//!   the log holds 1,000 pages), and takes it again after the batch;
//! - every [`REFRESH`] (on a clock of its own, whether writes come or not) lets go, and takes it
//!   again only if a read came in since the last tick and no other process committed while it
//!   was held. Another process that writes (an admin command, a `sqlite3` shell) checkpoints at
//!   its own commits, which the pin would hold back, and this server, reading only, would never
//!   checkpoint: the log would grow with every write of the other process. So the pin stays let
//!   go, and its reads pay the system calls again, for as long as another process goes on
//!   committing (a tick at a time), and that process's checkpoints go through as they would
//!   without the pin. A server with no read for a tick holds nothing, and leaves the file to
//!   other tools.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use crate::sqlite_read::open_query_only;
use crate::sqlite_write::control;

/// How often the writer thread lets go of the pin and (if reads came in since the last time, and
/// no other process committed) takes it again on the latest mark.
pub(crate) const REFRESH: Duration = Duration::from_millis(100);

/// What the reads and the writer thread share: whether a read came in since the last tick.
#[derive(Default)]
pub(crate) struct ReadActivity {
    read: AtomicBool,
    /// Whether the pin is held now (for the tests and nothing else).
    held: AtomicBool,
}

impl ReadActivity {
    /// A read is about to run. Cheap: one load, and a store only on the first read of a tick.
    pub(crate) fn note_read(&self) {
        if !self.read.load(Ordering::Relaxed) {
            self.read.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a read came in since the last call.
    fn take_reads(&self) -> bool {
        self.read.swap(false, Ordering::Relaxed)
    }

    fn reads_noted(&self) -> bool {
        self.read.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn pinned(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }
}

/// A read-only connection that holds a read transaction open, or none. Used on the writer
/// thread only.
pub(crate) struct Pin {
    conn: Connection,
    held: bool,
    /// Held at some moment since the last tick.
    held_since_tick: bool,
    /// The writer connection's `PRAGMA data_version` at the last look: it changes when another
    /// process commits (this server's own commits are the writer's, which do not change it).
    data_version: Option<i64>,
    /// Another process committed in the last tick: the pin stays let go until a tick passes
    /// without that.
    yielding: bool,
    activity: Arc<ReadActivity>,
}

impl Pin {
    /// A pin on the store's file at `path`, already in WAL mode; held by none yet.
    pub(crate) fn new(path: &Path, activity: Arc<ReadActivity>) -> rusqlite::Result<Self> {
        let conn = open_query_only(path)?;
        // The writer thread never waits for it: a read transaction that cannot begin at once
        // is simply not held until the next try.
        conn.busy_timeout(Duration::ZERO)?;
        Ok(Self {
            conn,
            held: false,
            held_since_tick: false,
            data_version: None,
            yielding: false,
            activity,
        })
    }

    /// Before a batch of writes: the read transaction ends. Whether it was held, for
    /// [`Pin::after_writes`].
    pub(crate) fn before_writes(&mut self) -> bool {
        let was_held = self.held;
        self.release();
        self.publish();
        was_held
    }

    /// After a batch of writes: held again, on the latest mark, if it `was_held` before or a
    /// read has come in since the last tick (and no other process is committing).
    pub(crate) fn after_writes(&mut self, was_held: bool) {
        if !self.yielding && (was_held || self.activity.reads_noted()) {
            self.take();
        }
        self.publish();
    }

    /// Every [`REFRESH`]: let go; hold again only if a read came in since the last tick and no
    /// other process committed while the pin was held or let go for that (`writer` is the
    /// writer thread's connection, whose `data_version` tells).
    pub(crate) fn tick(&mut self, writer: &Connection) {
        self.release();
        if self.held_since_tick || self.yielding {
            let version = writer
                .prepare_cached("PRAGMA data_version")
                .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
                .ok();
            // Not knowing counts as a commit (and so does the first look).
            self.yielding = version.is_none() || version != self.data_version;
            self.data_version = version;
        }
        self.held_since_tick = false;
        if self.activity.take_reads() && !self.yielding {
            self.take();
        }
        self.publish();
    }

    fn release(&mut self) {
        if self.held {
            if !self.conn.is_autocommit() {
                let _ = control(&self.conn, "COMMIT");
            }
            if !self.conn.is_autocommit() {
                let _ = control(&self.conn, "ROLLBACK");
            }
            self.held = false;
        }
    }

    fn take(&mut self) {
        self.release();
        // `BEGIN` alone takes no lock; the first read of the transaction takes the read mark,
        // and the transaction keeps it until it ends.
        let began = control(&self.conn, "BEGIN").and_then(|()| {
            self.conn
                .prepare_cached("SELECT 1 FROM sqlite_schema LIMIT 1")?
                .query([])?
                .next()
                .map(|_| ())
        });
        if began.is_ok() && !self.conn.is_autocommit() {
            self.held = true;
            self.held_since_tick = true;
        } else if !self.conn.is_autocommit() {
            let _ = control(&self.conn, "ROLLBACK");
        }
    }

    /// Told once per step, so that no one sees the moment between letting go and taking again.
    fn publish(&self) {
        self.activity.held.store(self.held, Ordering::Release);
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.release();
        self.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::{Pin, ReadActivity};
    use rusqlite::Connection;
    use std::sync::Arc;

    /// Another connection's passive checkpoint: the frames in the log, and those copied back.
    fn checkpoint(conn: &Connection) -> (i64, i64) {
        let (_, log, copied): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("checkpoint");
        (log, copied)
    }

    /// The pin really holds a read mark of the log: while it is held, another connection's
    /// checkpoint cannot copy back what was committed after the pin was taken; once it is let
    /// go, everything is copied back.
    #[test]
    fn a_held_pin_holds_a_read_mark_and_a_released_one_does_not() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pin.db");
        let other = Connection::open(&path).expect("open");
        let mode: String = other
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .expect("wal");
        assert_eq!(mode, "wal");
        other
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .expect("seed");
        let activity = Arc::new(ReadActivity::default());
        let mut pin = Pin::new(&path, activity.clone()).expect("pin");
        activity.note_read();
        pin.after_writes(false);
        assert!(activity.pinned());

        other
            .execute("INSERT INTO t VALUES (2)", [])
            .expect("insert");
        let (log, copied) = checkpoint(&other);
        assert!(copied < log, "copied {copied} of {log} frames past the pin");

        assert!(pin.before_writes());
        assert!(!activity.pinned());
        let (log, copied) = checkpoint(&other);
        assert_eq!(copied, log);
    }
}
