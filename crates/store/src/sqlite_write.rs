//! The SQLite writer: one connection on a thread of its own that runs every write
//! ([`WriteJob`]).
//!
//! A job is one hand-off to this thread and back, however many statements its transaction runs.
//! SQLite allows one writer at a time anyway, so nothing is lost by running the jobs one after
//! another, and the jobs that queued up while one ran are committed together (group commit, see
//! [`run_batch`]): one WAL append for all the pages they changed. When another process holds
//! the write lock (a second server on the same file, or the `migrate` command), this thread
//! waits for it under the busy timeout; no runtime thread ever does. Between batches it holds
//! the log's read lock for the reads ([`crate::sqlite_pin`]), and every 100 ms renews it or lets
//! it go.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::shared::{Arg, FromCols};
use crate::sqlite_pin::{self, Pin, ReadActivity};
use crate::sqlite_read::{closed, read_all, read_one};
use crate::writes::{Exec, WriteJob};
use crate::{Result, StoreError};

/// A queued job with the channel its caller waits on.
struct Pending<J: WriteJob> {
    job: J,
    done: tokio::sync::oneshot::Sender<Result<J::Output>>,
}

/// What the writer thread does with a queued job, whatever its type.
trait Queued: Send {
    /// Runs the write inside the open transaction, under a savepoint of its own; returns what
    /// to do once the transaction's fate is known, and `false` if the savepoint could not be
    /// undone or released (then the whole transaction must roll back).
    fn run(self: Box<Self>, conn: &mut Connection) -> (Finish, bool);
    /// The transaction could not even begin.
    fn fail(self: Box<Self>, failure: &CommitFailure);
}

impl<J: WriteJob> Queued for Pending<J> {
    fn run(self: Box<Self>, conn: &mut Connection) -> (Finish, bool) {
        let Pending { job, done } = *self;
        let (out, clean) = match in_savepoint(conn, job) {
            Ok(out) => (out, true),
            Err(e) => (Err(StoreError::from(e)), false),
        };
        let finish: Finish = Box::new(move |failure: Option<&CommitFailure>| {
            let out = match (out, failure) {
                (Ok(_), Some(f)) => Err(f.to_error()),
                (out, _) => out,
            };
            let _ = done.send(out);
        });
        (finish, clean)
    }

    fn fail(self: Box<Self>, failure: &CommitFailure) {
        let _ = self.done.send(Err(failure.to_error()));
    }
}

type Job = Box<dyn Queued>;

/// Delivers a job's outcome: its own result if the batch committed, else the commit's failure.
type Finish = Box<dyn FnOnce(Option<&CommitFailure>) + Send>;

/// The most jobs committed together.
const MAX_BATCH: usize = 64;

pub(crate) struct Writer {
    /// `None` once closed: the thread finishes the queued jobs and ends.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Writer {
    /// Opens the writer's connection to the file at `path` (created when missing, if `create`),
    /// switches the file to WAL and starts the thread, which also holds the read lock the reads
    /// share while they come in (`activity`, [`crate::sqlite_pin`]).
    pub(crate) fn open(path: &Path, create: bool, activity: Arc<ReadActivity>) -> Result<Self> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Internal(format!(
                "the SQLite database stays in {mode} mode, not WAL"
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Every job's statements and the transaction-control ones stay prepared.
        conn.set_prepared_statement_cache_capacity(64);
        let pin = Pin::new(path, activity)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                let mut pin = pin;
                let mut next_tick = Instant::now() + sqlite_pin::REFRESH;
                loop {
                    let wait = next_tick.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok(first) => {
                            let mut batch = vec![first];
                            while batch.len() < MAX_BATCH {
                                match rx.try_recv() {
                                    Ok(job) => batch.push(job),
                                    Err(_) => break,
                                }
                            }
                            // The commit checkpoints the log, which a held read mark would
                            // hold back (`sqlite_pin`).
                            let was_held = pin.before_writes();
                            run_batch(&mut conn, batch);
                            pin.after_writes(was_held);
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                    if Instant::now() >= next_tick {
                        pin.tick(&conn);
                        next_tick = Instant::now() + sqlite_pin::REFRESH;
                    }
                }
                // Let go before the connection closes (and checkpoints the log).
                drop(pin);
            })
            .map_err(|e| StoreError::Internal(format!("starting the SQLite writer: {e}")))?;
        Ok(Self {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `job` on the writer thread and waits until its transaction has committed (or failed).
    pub(crate) async fn run<J: WriteJob>(&self, job: J) -> Result<J::Output> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let work: Job = Box::new(Pending { job, done });
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|jobs| jobs.send(work).is_ok());
        if sent != Some(true) {
            return Err(closed());
        }
        outcome.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Stops taking jobs, and returns once those already queued have run and the connection
    /// is closed (the last connection to close checkpoints the write-ahead log).
    pub(crate) async fn close(&self) {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Why a batch did not commit, told to each of its jobs.
#[derive(Clone)]
enum CommitFailure {
    /// The write lock stayed taken for longer than the busy timeout.
    Busy(String),
    Other(String),
}

impl CommitFailure {
    fn from(e: rusqlite::Error) -> Self {
        match StoreError::from(e) {
            StoreError::Unavailable(source) => CommitFailure::Busy(source.to_string()),
            other => CommitFailure::Other(other.to_string()),
        }
    }

    fn to_error(&self) -> StoreError {
        match self {
            CommitFailure::Busy(m) => {
                StoreError::Unavailable(Box::new(std::io::Error::other(m.clone())))
            }
            CommitFailure::Other(m) => StoreError::Internal(format!("commit failed: {m}")),
        }
    }
}

/// Group commit: the queued jobs run one after another in one transaction, each under its own
/// savepoint, so a job that fails is undone alone and the others still commit. Jobs run in
/// the order they were queued and each sees the ones before it, exactly as if each had its own
/// transaction; only the commit (the WAL append of every page changed) is shared, and no job
/// hears of its outcome before that commit.
fn run_batch(conn: &mut Connection, batch: Vec<Job>) {
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        let failure = CommitFailure::from(e);
        for job in batch {
            job.fail(&failure);
        }
        return;
    }
    let mut finishers: Vec<Finish> = Vec::with_capacity(batch.len());
    let mut clean = true;
    for job in batch {
        if !clean {
            // A savepoint went wrong: the transaction is rolled back, the rest not run.
            job.fail(&CommitFailure::Other(
                "an earlier write in its batch failed".into(),
            ));
            continue;
        }
        let (finish, ok) = job.run(conn);
        finishers.push(finish);
        clean = ok;
    }
    let failure = if clean {
        match control(conn, "COMMIT") {
            Ok(()) => None,
            Err(e) => Some(CommitFailure::from(e)),
        }
    } else {
        Some(CommitFailure::Other(
            "a savepoint could not be undone".into(),
        ))
    };
    if !conn.is_autocommit() {
        let _ = control(conn, "ROLLBACK");
    }
    for finish in finishers {
        finish(failure.as_ref());
    }
}

/// A transaction-control statement, prepared once per connection: two to four run per job
/// (and the read lock's `BEGIN` and `COMMIT`, [`crate::sqlite_pin`]).
pub(crate) fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Runs one job under a savepoint of the open transaction: released on success, rolled back
/// on failure or panic. The outer error: the savepoint itself failed.
fn in_savepoint<J: WriteJob>(conn: &mut Connection, job: J) -> rusqlite::Result<Result<J::Output>> {
    control(conn, "SAVEPOINT job")?;
    let out = std::panic::catch_unwind(AssertUnwindSafe(|| poll_once(job.run(&mut *conn))))
        .unwrap_or_else(|_| Err(StoreError::Internal("a SQLite write panicked".into())));
    if out.is_err() {
        control(conn, "ROLLBACK TO job")?;
    }
    control(conn, "RELEASE job")?;
    Ok(out)
}

/// Drives a job's future on this thread. Every statement on a rusqlite connection completes
/// before it returns, so the future is ready at its first poll.
fn poll_once<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => Err(StoreError::Internal(
            "a SQLite write waited for something".into(),
        )),
    }
}

impl Exec for Connection {
    async fn fetch<T: FromCols + Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>> {
        read_one(self, sql, args)
    }

    async fn fetch_all<T: FromCols + Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<T>> {
        read_all(self, sql, args)
    }

    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        let mut stmt = self.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(args))? as u64)
    }
}
