//! PostgreSQL: for deployments that run several server instances on one database.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::engine::Engine;
use crate::shared::{Arg, FromCols};
use crate::writes::{Exec, WriteJob};
use crate::{ConnectionUsage, Dialect, PoolSettings, Result, StoreError};

/// A connection idle for at least this long is checked before it is used again. A database
/// restart takes far longer, so every connection that lived through one is checked; under load
/// a connection goes back to work within a millisecond or two and is not.
pub const CHECK_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_millis(5);

pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

impl PostgresStore {
    /// Connections are opened on demand. One idle for [`CHECK_IF_IDLE_FOR`] or more is checked
    /// before use (a database restart leaves idle connections dead), so that the pool recovers
    /// by itself once an unreachable database answers again and no request is given a dead
    /// connection; one that was in use a moment ago is not, because sqlx already checks every
    /// connection as it goes back to the pool, and a check before each use as well was a
    /// second round trip per statement (BENCHMARKS.md).
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(settings.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= CHECK_IF_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }

    async fn write_once<J: WriteJob>(&self, job: &J) -> Result<J::Output> {
        if J::SINGLE_STATEMENT {
            return job.run(&mut *self.pool.acquire().await?).await;
        }
        let mut tx = self.pool.begin().await?;
        let out = job.run(&mut *tx).await?;
        tx.commit().await?;
        Ok(out)
    }
}

impl Engine for PostgresStore {
    const DIALECT: Dialect = Dialect {
        insertion_order: "seq",
        strpos: "strpos",
        json_array_contains: "jsonb_exists(grant_types::jsonb, {})",
        // Not `FOR UPDATE`: that lock also conflicts with the `FOR KEY SHARE` lock a foreign-key
        // check takes, so an approval locking a grant deadlocked against concurrent inserts of
        // codes and refresh tokens referencing it. The rows locked here are then updated in
        // non-key columns only, which is exactly what `FOR NO KEY UPDATE` serializes.
        for_update: " FOR NO KEY UPDATE",
        for_share: " FOR SHARE",
        lock_key: "SELECT pg_advisory_xact_lock($1)",
        row_id: "ctid",
        writes_in_with: true,
    };

    async fn point_read<T: FromCols + Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>> {
        self.pool.acquire().await?.fetch(sql, args).await
    }

    async fn rows_read<T: FromCols + Send>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<T>> {
        self.pool.acquire().await?.fetch_all(sql, args).await
    }

    /// In one transaction, unless it is a single statement. A transaction aborted as a
    /// deadlock or serialization failure runs again, up to [`crate::CONTENTION_ATTEMPTS`]
    /// times in all.
    async fn write<J: WriteJob>(&self, job: J) -> Result<J::Output> {
        let mut attempt = 1;
        loop {
            match self.write_once(&job).await {
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

    async fn run_migrations(&self) -> Result<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn close_connections(&self) {
        self.pool.close().await;
    }

    fn connection_usage(&self) -> ConnectionUsage {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle())
            .unwrap_or(u32::MAX)
            .min(size);
        ConnectionUsage {
            in_use: size - idle,
            idle,
            max: Some(self.pool.options().get_max_connections()),
        }
    }
}
