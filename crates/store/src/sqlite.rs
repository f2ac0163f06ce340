//! The embedded default: one SQLite file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::engine::{self, Engine};
use crate::shared::{Arg, FromCols};
use crate::sqlite_read::{self, Readers};
use crate::sqlite_write::Writer;
use crate::writes::WriteJob;
use crate::{Dialect, PoolSettings, Result, StoreError};

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// Point reads on the calling thread ([`crate::sqlite_read`]); `None` for an in-memory
    /// database, which only the pool's connections can see.
    readers: Option<Readers>,
    /// The hot-path writes ([`crate::sqlite_write`]); `None` for an in-memory database.
    writer: Option<Writer>,
}

impl SqliteStore {
    /// Opens (and creates, with its directory) the SQLite file of `url`, with WAL, a busy
    /// timeout, `synchronous=NORMAL` (durable across a process crash; WAL makes it safe) and
    /// foreign keys on.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        if let Some(dir) = opts.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Internal(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(opts.clone())
            .await?;
        // The pool's first connection has created the file and switched it to WAL.
        let (readers, writer) = match sqlite_read::file_of(opts.get_filename()) {
            Some(path) => (Some(Readers::open(path)?), Some(Writer::open(path)?)),
            None => (None, None),
        };
        Ok(Self {
            pool,
            readers,
            writer,
        })
    }
}

impl Engine for SqliteStore {
    const DIALECT: Dialect = Dialect {
        begin_write: "BEGIN IMMEDIATE",
        insertion_order: "rowid",
        strpos: "instr",
        json_array_contains: "EXISTS (SELECT 1 FROM json_each(grant_types) WHERE value = {})",
        for_update: "",
        lock_key: "",
        row_id: "rowid",
    };

    type Conn = PoolConnection<Sqlite>;
    type Tx = Transaction<'static, Sqlite>;

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
        match &self.readers {
            Some(readers) => readers.point_read(sql, args),
            None => engine::pool_point_read(self, sql, args).await,
        }
    }

    async fn rows_read<T: FromCols + Send>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<T>> {
        match &self.readers {
            Some(readers) => readers.rows_read(sql, args),
            None => engine::pool_rows_read(self, sql, args).await,
        }
    }

    async fn write<J: WriteJob>(&self, job: J) -> Result<J::Output> {
        match &self.writer {
            Some(writer) => writer.run(job).await,
            None => engine::pool_write(self, job).await,
        }
    }

    async fn run_migrations(&self) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the reader connections and stops the writer (after its queued jobs), then the
    /// pool.
    async fn close_connections(&self) {
        if let Some(readers) = &self.readers {
            readers.close();
        }
        if let Some(writer) = &self.writer {
            writer.close();
        }
        self.pool.close().await;
    }
}
