//! PostgreSQL: for deployments that run several server instances on one database.

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::engine::{self, Engine};
use crate::shared::{Arg, FromCols};
use crate::writes::WriteJob;
use crate::{Dialect, PoolSettings, Result, StoreError};

pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

impl PostgresStore {
    /// Connections are opened on demand and checked before each use, so that the pool recovers
    /// by itself once an unreachable database answers again.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }
}

impl Engine for PostgresStore {
    const DIALECT: Dialect = Dialect {
        begin_write: "BEGIN",
        insertion_order: "seq",
        strpos: "strpos",
        json_array_contains: "jsonb_exists(grant_types::jsonb, {})",
        // Not `FOR UPDATE`: that lock also conflicts with the `FOR KEY SHARE` lock a foreign-key
        // check takes, so an approval locking a grant deadlocked against concurrent inserts of
        // codes and refresh tokens referencing it. The rows locked here are then updated in
        // non-key columns only, which is exactly what `FOR NO KEY UPDATE` serializes.
        for_update: " FOR NO KEY UPDATE",
        lock_key: "SELECT pg_advisory_xact_lock($1)",
        row_id: "ctid",
    };

    type Conn = PoolConnection<Postgres>;
    type Tx = Transaction<'static, Postgres>;

    async fn acquire(&self) -> Result<Self::Conn> {
        Ok(self.pool.acquire().await?)
    }

    async fn begin(&self) -> Result<Self::Tx> {
        Ok(self.pool.begin_with(Self::DIALECT.begin_write).await?)
    }

    async fn commit(tx: Self::Tx) -> Result<()> {
        Ok(tx.commit().await?)
    }

    async fn rollback(tx: Self::Tx) -> Result<()> {
        Ok(tx.rollback().await?)
    }

    async fn point_read<T: FromCols + Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>> {
        engine::pool_point_read(self, sql, args).await
    }

    async fn rows_read<T: FromCols + Send>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<T>> {
        engine::pool_rows_read(self, sql, args).await
    }

    async fn write<J: WriteJob>(&self, job: J) -> Result<J::Output> {
        engine::pool_write(self, job).await
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
}
