//! What the store's queries need of a database engine, so that they are written once as plain
//! generic functions (`clients.rs`, `grants.rs`, ...) for SQLite and PostgreSQL alike.
//!
//! An engine names its SQL dialect and offers three ways to reach the database: a pooled
//! connection or write transaction (sqlx), its point reads (on the calling thread for a SQLite
//! file, see [`crate::sqlite_read`]) and its hot-path writes ([`WriteJob`]s, on the writer thread
//! for a SQLite file, see [`crate::sqlite_write`]).

use std::future::Future;

use crate::shared::{Arg, FromCols};
use crate::writes::{Exec, WriteJob};
use crate::{Dialect, Result};

pub(crate) trait Engine: Send + Sync + 'static {
    const DIALECT: Dialect;

    /// A connection from the pool.
    type Conn: Exec;
    /// A write transaction on a pooled connection: rolled back when dropped uncommitted.
    type Tx: Exec;

    /// A connection from the pool, for statements that need no transaction.
    fn acquire(&self) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// Opens a write transaction ([`Dialect::begin_write`]) on a pooled connection.
    fn begin(&self) -> impl Future<Output = Result<Self::Tx>> + Send;

    fn commit(tx: Self::Tx) -> impl Future<Output = Result<()>> + Send;

    fn rollback(tx: Self::Tx) -> impl Future<Output = Result<()>> + Send;

    /// The row `sql` selects with `args` bound to `$1`, `$2`, ..., if any: on the calling
    /// thread when the database is a SQLite file.
    fn point_read<T: FromCols + Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Option<T>>> + Send;

    /// Every row `sql` selects with `args` bound to `$1`, `$2`, ...: on the calling thread
    /// when the database is a SQLite file.
    fn rows_read<T: FromCols + Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Vec<T>>> + Send;

    /// Runs a hot-path write in one transaction: on the writer thread when the database is a
    /// SQLite file.
    fn write<J: WriteJob>(&self, job: J) -> impl Future<Output = Result<J::Output>> + Send;

    /// Runs this engine's embedded migrations (idempotent).
    fn run_migrations(&self) -> impl Future<Output = Result<()>> + Send;

    /// Closes every connection: the pool's and the engine's own.
    fn close_connections(&self) -> impl Future<Output = ()> + Send;
}

/// The row `sql` selects with `args` bound to `$1`, `$2`, ..., if any, on a pooled connection.
pub(crate) async fn pool_point_read<B: Engine, T: FromCols + Send>(
    b: &B,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<Option<T>> {
    b.acquire().await?.fetch(sql, args).await
}

/// Every row `sql` selects with `args` bound to `$1`, `$2`, ..., on a pooled connection.
pub(crate) async fn pool_rows_read<B: Engine, T: FromCols + Send>(
    b: &B,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<Vec<T>> {
    b.acquire().await?.fetch_all(sql, args).await
}

/// Runs `job` on a pooled connection: in one transaction, unless it is a single statement.
/// On PostgreSQL, a transaction aborted as a deadlock or serialization failure runs again, up
/// to [`crate::CONTENTION_ATTEMPTS`] times in all.
pub(crate) async fn pool_write<B: Engine, J: WriteJob>(b: &B, job: J) -> Result<J::Output> {
    let mut attempt = 1;
    loop {
        match pool_write_once(b, &job).await {
            Err(e) if crate::is_contention(&e) && attempt < crate::CONTENTION_ATTEMPTS => {
                tracing::debug!(
                    attempt,
                    "write transaction aborted by contention; running it again"
                );
                attempt += 1;
            }
            out => return out,
        }
    }
}

async fn pool_write_once<B: Engine, J: WriteJob>(b: &B, job: &J) -> Result<J::Output> {
    if J::SINGLE_STATEMENT {
        let mut conn = b.acquire().await?;
        return job.run(&mut conn).await;
    }
    let mut tx = b.begin().await?;
    let out = job.run(&mut tx).await?;
    B::commit(tx).await?;
    Ok(out)
}
