//! The write-ahead log's read lock, held for the reads to share.
//!
//! In WAL mode every read transaction takes a shared lock on one of the log's read marks and
//! gives it back when it ends. SQLite counts these locks per process and asks the kernel
//! (`fcntl` on the `-shm` file) only for the first one taken on a mark and the last one given
//! back. The reads here are short and seldom overlap, so nearly every one paid both system
//! calls: holding the mark saves about 4 µs of server CPU of an ES256 token's 55, and 3 µs of an
//! introspection's 24 (BENCHMARKS.md).
//!
//! The pin is a connection of its own holding a read transaction open on the latest mark, so
//! that a read taking the same mark finds it held and makes no system call. The pin reads
//! nothing after it has begun, and no read sees its snapshot: each read still begins a
//! transaction of its own and sees every commit made before it, from this process or another.
//!
//! What a held read transaction does hold back is the log's upkeep: a checkpoint copies no frame
//! past the oldest mark held into the database file, and the log starts again from its beginning
//! only when no reader holds a mark. So the writer thread, which owns the pin, lets go of it
//! before each batch of writes (whose commit runs the automatic checkpoint) and takes it again
//! after; while reads go on it takes it anew every [`REFRESH`], so that another process's commits
//! (an admin command, a `sqlite3` shell) are behind it for at most that long; and it holds
//! nothing after a tick with no read, so an idle server holds no lock at all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::Connection;

/// How often the writer thread, when it has no write to run, lets go of the pin and (if reads
/// came in since the last time) takes it again on the latest mark.
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
    held_before_writes: bool,
    activity: std::sync::Arc<ReadActivity>,
}

impl Pin {
    /// `conn` must be a connection to the store's file, already in WAL mode.
    pub(crate) fn new(
        conn: Connection,
        activity: std::sync::Arc<ReadActivity>,
    ) -> rusqlite::Result<Self> {
        // The writer thread never waits for it: a read transaction that cannot begin at once
        // is simply not held until the next try.
        conn.busy_timeout(Duration::ZERO)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(Self {
            conn,
            held: false,
            held_before_writes: false,
            activity,
        })
    }

    /// Before a batch of writes: the read transaction ends, to be taken again after the batch
    /// ([`Pin::after_writes`]) if it was held.
    pub(crate) fn before_writes(&mut self) {
        self.held_before_writes = self.held;
        self.release();
    }

    fn release(&mut self) {
        if self.held {
            if !self.conn.is_autocommit() {
                let _ = self
                    .conn
                    .prepare_cached("COMMIT")
                    .and_then(|mut s| s.execute([]));
            }
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.held = false;
            self.activity.held.store(false, Ordering::Release);
        }
    }

    /// After a batch of writes: held again, on the latest mark, if it was held before or a
    /// read has come in since the last tick.
    pub(crate) fn after_writes(&mut self) {
        if self.held_before_writes || self.activity.reads_noted() {
            self.take();
        }
    }

    /// A tick with no write to run: let go, and hold again only if a read came in since the
    /// last tick.
    pub(crate) fn tick(&mut self) {
        self.release();
        if self.activity.take_reads() {
            self.take();
        }
    }

    fn take(&mut self) {
        self.release();
        // `BEGIN` alone takes no lock; the first read of the transaction takes the read mark,
        // and the transaction keeps it until it ends.
        let began = self
            .conn
            .prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .and_then(|_| {
                self.conn
                    .prepare_cached("SELECT 1 FROM sqlite_schema LIMIT 1")?
                    .query([])?
                    .next()
                    .map(|_| ())
            });
        if began.is_ok() && !self.conn.is_autocommit() {
            self.held = true;
            self.activity.held.store(true, Ordering::Release);
        } else if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.release();
    }
}
