//! The SQLite writer: one connection on a thread of its own that runs each hot-path write
//! ([`WriteJob`]) whole, inside one `BEGIN IMMEDIATE` transaction.
//!
//! Through sqlx, every statement of a transaction is a round trip to the connection's thread
//! (begin, three or four statements, commit: five or six hand-offs each way); here a
//! transaction is one. The jobs are queued, and SQLite allows one writer at a time anyway, so
//! nothing is lost by running them one after another. When another connection holds the write
//! lock (the pool's other writes, or another process), this thread waits for it under the busy
//! timeout; no runtime thread ever does.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::shared::{Arg, FromCols};
use crate::sqlite_read::read_one;
use crate::writes::{Exec, WriteJob};
use crate::{Result, StoreError};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub(crate) struct Writer {
    /// `None` once closed: the thread finishes the queued jobs and ends.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Writer {
    /// Opens the writer's connection to the file at `path` (which the pool has created, in WAL
    /// mode) and starts its thread.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Internal(format!("starting the SQLite writer: {e}")))?;
        Ok(Self {
            jobs: Mutex::new(Some(tx)),
        })
    }

    /// Runs `job` in a transaction on the writer thread and waits for its outcome.
    pub(crate) async fn run<J: WriteJob>(&self, job: J) -> Result<J::Output> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let work: Job = Box::new(move |conn: &mut Connection| {
            let out = std::panic::catch_unwind(AssertUnwindSafe(|| in_transaction(conn, job)))
                .unwrap_or_else(|_| Err(StoreError::Internal("a SQLite write panicked".into())));
            if !conn.is_autocommit() {
                // Only after a panic between BEGIN and COMMIT/ROLLBACK.
                let _ = conn.execute_batch("ROLLBACK");
            }
            let _ = done.send(out);
        });
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

    /// Stops taking jobs; those already queued still run.
    pub(crate) fn close(&self) {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable(Box::new(std::io::Error::other("the store is closed")))
}

fn in_transaction<J: WriteJob>(conn: &mut Connection, job: J) -> Result<J::Output> {
    if J::SINGLE_STATEMENT {
        return poll_once(job.run(conn));
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let out = poll_once(job.run(conn));
    match out {
        Ok(v) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(v),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e.into())
            }
        },
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
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
        read_one(self, sql, rusqlite::params_from_iter(args))
    }

    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        let mut stmt = self.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(args))? as u64)
    }
}
