//! PostgreSQL: for deployments that run several server instances on one database.

use std::time::{Duration, Instant};

use deadpool::managed::{
    Manager, Metrics, Object, Pool, PoolError, QueueMode, RecycleError, RecycleResult,
};
use deadpool::Runtime;
use sqlx::postgres::{PgConnectOptions, PgRow, PgSslMode};
use sqlx::{Connection, PgConnection};

use crate::coalesce::{self, Coalescer, Runner, Turn, Value, Waiting};
use crate::engine::Engine;
use crate::shared::{Arg, FromCols};
use crate::writes::{pg_query, Exec, WriteJob};
use crate::{ConnectionUsage, Dialect, PoolSettings, Result, StoreError};

/// A connection idle for at least this long, or one whose last use did not finish, is checked
/// before it is used again. A database restart takes far longer, so every connection that lived
/// through one is checked; under load a connection goes back to work within a millisecond or two
/// and is not.
pub const CHECK_IF_IDLE_FOR: Duration = Duration::from_millis(5);

/// How a PostgreSQL URL, with the `PG*` environment variables that fill in what it leaves out,
/// reaches its database: what `doctor` reports and what `serve` warns about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresRoute {
    /// A Unix socket in this directory: nothing crosses a network, and there is no TLS or TCP
    /// to pay for on each statement.
    Socket(String),
    Tcp {
        host: String,
        /// `localhost` or a loopback address.
        loopback: bool,
        /// `sslmode`, as libpq spells it.
        ssl_mode: &'static str,
    },
}

impl PostgresRoute {
    pub fn of(url: &str) -> Result<Self> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {e}")))?;
        if let Some(dir) = opts.get_socket() {
            return Ok(Self::Socket(dir.display().to_string()));
        }
        let host = opts.get_host();
        if host.starts_with('/') {
            return Ok(Self::Socket(host.to_owned()));
        }
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        let ssl_mode = match opts.get_ssl_mode() {
            PgSslMode::Disable => "disable",
            PgSslMode::Allow => "allow",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        };
        Ok(Self::Tcp {
            host: host.to_owned(),
            loopback,
            ssl_mode,
        })
    }

    /// TCP to another machine whose protection is less than it looks: TLS that accepts any
    /// certificate (`prefer`, the default, and `require`), or that may fall back to none
    /// (`allow`), so that whoever is on the network path can read and change what the server
    /// stores (token and secret hashes, grants, the sealed signing keys). `disable` says in so
    /// many words that the network is trusted (a container network on one host), and is not.
    pub fn exposed(&self) -> bool {
        match self {
            Self::Socket(_) => false,
            Self::Tcp {
                loopback, ssl_mode, ..
            } => !loopback && matches!(*ssl_mode, "allow" | "prefer" | "require"),
        }
    }
}

pub struct PostgresStore {
    pool: Pool<Connections>,
    /// The longest a statement waits for its connection, opening or checking one included.
    acquire_timeout: Duration,
    /// When idle connections were last looked at ([`PostgresStore::close_long_idle`]).
    idle_sweep: std::sync::Mutex<Instant>,
    /// Point reads that arrive together share a statement (`coalesce.rs`).
    reads: std::sync::Arc<Coalescer<Reader>>,
}

/// Opens connections for the pool and checks them when they are handed out again.
///
/// sqlx's own pool sends a `Sync` and waits for the answer every time a connection goes back;
/// that is a second round trip for every statement. Here a use that ran to its end (the common
/// case) returns its connection as it is. One that did not (an error other than the database
/// refusing one statement, a request given up half-way) is settled at once by a task of its own
/// ([`Lease`]'s `Drop`), so that nothing it left (a `ROLLBACK` to send, and the locks it holds
/// until then) waits for the connection's next use and no other request pays for it. A
/// connection idle for [`CHECK_IF_IDLE_FOR`] is checked before it is handed out (a database
/// restart leaves idle connections dead); one older than [`MAX_LIFETIME`] is closed then, and
/// idle ones are closed after [`MAX_IDLE`]. A check that fails drops the connection and the
/// pool opens another.
struct Connections {
    options: PgConnectOptions,
    /// The longest one check may take (a fraction of the acquire timeout, so that a connection
    /// that does not answer leaves time to open another).
    check_timeout: Duration,
}

/// A connection older than this is closed when it would next be handed out (after a failover,
/// connections move to the new primary within this time; sqlx's pool had the same default).
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// An idle connection unused for this long is closed (sqlx's default too).
const MAX_IDLE: Duration = Duration::from_secs(10 * 60);

/// A pooled connection, and how its last use ended.
struct Conn {
    raw: PgConnection,
    /// The last use ran to its end: no statement or result left half-way.
    finished: bool,
    /// A transaction was begun and not yet committed or rolled back. sqlx counts a transaction
    /// only once its `BEGIN` was answered, so one given up during `BEGIN` leaves the server in
    /// a transaction that sqlx knows nothing of: such a connection is closed, never reused.
    in_transaction: bool,
    /// When the last use ended.
    used_at: Instant,
}

impl Manager for Connections {
    type Type = Conn;
    type Error = sqlx::Error;

    /// Retries while the database refuses connections or says it is starting up (a restart),
    /// as sqlx's pool did; the acquire timeout bounds the whole.
    async fn create(&self) -> std::result::Result<Conn, sqlx::Error> {
        let mut backoff = Duration::from_millis(10);
        loop {
            match PgConnection::connect_with(&self.options).await {
                Ok(raw) => {
                    return Ok(Conn {
                        raw,
                        finished: true,
                        in_transaction: false,
                        used_at: Instant::now(),
                    })
                }
                Err(sqlx::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(sqlx::Error::Database(e)) if e.is_transient_in_connect_phase() => {}
                Err(e) => return Err(e),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    async fn recycle(&self, conn: &mut Conn, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if conn.in_transaction {
            return Err(RecycleError::message("a transaction was left open"));
        }
        if metrics.age() >= MAX_LIFETIME {
            return Err(RecycleError::message("past its lifetime"));
        }
        if !conn.finished || conn.used_at.elapsed() >= CHECK_IF_IDLE_FOR {
            check(conn, self.check_timeout).await?;
        }
        Ok(())
    }
}

/// A round trip that also reads whatever an interrupted use left unread (sending a queued
/// `ROLLBACK` first).
async fn check(conn: &mut Conn, limit: Duration) -> std::result::Result<(), sqlx::Error> {
    match tokio::time::timeout(limit, conn.raw.ping()).await {
        Ok(Ok(())) => {
            conn.finished = true;
            conn.used_at = Instant::now();
            Ok(())
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "a pooled PostgreSQL connection failed its check");
            Err(e)
        }
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
}

/// A connection from the pool, marked unfinished while in use until [`Lease::done`] says its
/// use ended. Dropped unfinished, it is settled by a task of its own: checked and returned, or
/// closed.
struct Lease {
    conn: Option<Object<Connections>>,
    check_timeout: Duration,
}

impl Lease {
    /// The connection, marked in use.
    fn conn(&mut self) -> Result<&mut Conn> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| StoreError::Internal("a lease without its connection".into()))?;
        conn.finished = false;
        Ok(conn)
    }

    /// The use ended with `result`. A single statement that the database refused (a conflict,
    /// a value it cannot hold) leaves the connection ready for the next one; any other error
    /// leaves it to be settled.
    fn done<T>(mut self, result: Result<T>) -> Result<T> {
        if let Some(conn) = self.conn.as_mut() {
            conn.finished = match &result {
                Ok(_) => true,
                Err(e) => matches!(e, StoreError::Conflict(_) | StoreError::InvalidInput(_)),
            };
            conn.used_at = Instant::now();
        }
        result
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if conn.finished && !conn.in_transaction {
            return; // back to the pool as it is
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to settle it on (shutting down): out of the pool, the socket closes.
            drop(Object::take(conn));
            return;
        };
        let limit = self.check_timeout;
        drop(runtime.spawn(async move {
            if !conn.in_transaction && check(&mut conn, limit).await.is_ok() {
                return; // back to the pool, ready
            }
            // Out of the pool; closing the socket ends the session and whatever it held.
            let raw = Object::take(conn).raw;
            let _ = tokio::time::timeout(limit, raw.close()).await;
        }));
    }
}

impl PostgresStore {
    /// Connections are opened on demand (one at once, so that a wrong URL or an unreachable
    /// database fails the start), at most [`PoolSettings::max_connections`]; the most recently used idle one
    /// is handed out first, so a light load keeps a few connections warm instead of cycling
    /// through all of them.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {e}")))?;
        let check_timeout = (settings.acquire_timeout / 4).min(Duration::from_millis(500));
        let pool = Pool::builder(Connections {
            options,
            check_timeout,
        })
        .max_size(settings.max_connections.max(1))
        .queue_mode(QueueMode::Lifo)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(settings.acquire_timeout))
        .create_timeout(Some(settings.acquire_timeout))
        .build()
        .map_err(|e| StoreError::Internal(format!("PostgreSQL pool: {e}")))?;
        let store = Self {
            reads: Coalescer::new(
                Reader {
                    pool: pool.clone(),
                    acquire_timeout: settings.acquire_timeout,
                },
                coalesce::STALLED_AFTER,
            ),
            pool,
            acquire_timeout: settings.acquire_timeout,
            idle_sweep: std::sync::Mutex::new(Instant::now()),
        };
        drop(store.lease().await?);
        Ok(store)
    }

    /// A connection within [`PostgresStore::acquire_timeout`] in all: waiting for one, checking
    /// it, opening one. Past it, or when the database cannot be reached, the statement fails as
    /// unavailable (503).
    async fn lease(&self) -> Result<Lease> {
        self.close_long_idle();
        lease(&self.pool, self.acquire_timeout).await
    }

    /// The first row of `sql`, in a statement of its own.
    async fn read_alone<T: FromCols + Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>> {
        let mut lease = self.lease().await?;
        let result = match lease.conn() {
            Ok(conn) => conn.raw.fetch(sql, args).await,
            Err(e) => Err(e),
        };
        lease.done(result)
    }

    /// At most once a minute, closes the idle connections unused for [`MAX_IDLE`].
    fn close_long_idle(&self) {
        {
            let Ok(mut last) = self.idle_sweep.try_lock() else {
                return;
            };
            if last.elapsed() < Duration::from_secs(60) {
                return;
            }
            *last = Instant::now();
        }
        let removed = self
            .pool
            .retain(|c, _| c.used_at.elapsed() < MAX_IDLE)
            .removed;
        if !removed.is_empty() {
            tokio::spawn(async move {
                for c in removed {
                    let _ = c.raw.close().await;
                }
            });
        }
    }

    async fn write_once<J: WriteJob>(&self, job: &J) -> Result<J::Output> {
        let mut lease = self.lease().await?;
        let result = match lease.conn() {
            Ok(conn) if J::SINGLE_STATEMENT => job.run(&mut conn.raw).await,
            Ok(conn) => in_transaction(conn, job).await,
            Err(e) => Err(e),
        };
        lease.done(result)
    }
}

/// A connection from `pool` within `acquire_timeout` ([`PostgresStore::lease`]).
async fn lease(pool: &Pool<Connections>, acquire_timeout: Duration) -> Result<Lease> {
    let Ok(got) = tokio::time::timeout(acquire_timeout, pool.get()).await else {
        return Err(acquire_timed_out());
    };
    match got {
        Ok(conn) => Ok(Lease {
            conn: Some(conn),
            check_timeout: pool.manager().check_timeout,
        }),
        Err(PoolError::Backend(e)) => Err(e.into()),
        Err(e @ (PoolError::Timeout(_) | PoolError::Closed)) => {
            Err(StoreError::Unavailable(Box::new(e)))
        }
        Err(e) => Err(StoreError::Internal(format!("PostgreSQL pool: {e}"))),
    }
}

/// Runs the batches of point reads that waited ([`coalesce`]) on the pool's connections.
#[derive(Clone)]
struct Reader {
    pool: Pool<Connections>,
    acquire_timeout: Duration,
}

impl Reader {
    /// How long a read that waits for a shared statement waits for its answer: its turn, then
    /// its batch's wait for a connection, twice what a statement alone may wait for its
    /// connection. Also the longest a shared statement may run.
    fn patience(&self) -> Duration {
        self.acquire_timeout * 2
    }
}

impl Runner for Reader {
    type Row = PgRow;

    async fn run(&self, sql: &str, batch: Vec<Waiting<PgRow>>) {
        let Some(first) = batch.first().map(|w| w.args.clone()) else {
            return;
        };
        // One statement text always has the same argument types; should it not, the odd ones
        // run alone.
        let (together, apart): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|w| coalesce::same_types(&w.args, &first));
        for w in apart {
            self.answer_alone(sql, w).await;
        }
        // Refused for a value one of them was given: the batch runs again in halves, down to
        // the read whose value it was, which alone fails. One such read among n costs about
        // 2·log2(n) statements more, not n.
        let mut parts = vec![together];
        while let Some(mut part) = parts.pop() {
            if part.len() <= 1 {
                for w in part {
                    self.answer_alone(sql, w).await;
                }
                continue;
            }
            match self.read_together(sql, &part).await {
                Ok(rows) => {
                    for (w, row) in part.into_iter().zip(rows) {
                        let _ = w.reply.send(Ok(row));
                    }
                }
                Err(StoreError::InvalidInput(_) | StoreError::Conflict(_)) => {
                    let second = part.split_off(part.len() / 2);
                    parts.push(second);
                    parts.push(part);
                }
                Err(e) => {
                    for w in part {
                        let _ = w.reply.send(Err(coalesce::copy_error(&e)));
                    }
                }
            }
        }
    }
}

impl Reader {
    /// One read in a statement of its own.
    async fn answer_alone(&self, sql: &str, w: Waiting<PgRow>) {
        let args: Vec<Arg<'_>> = w.args.iter().map(Value::arg).collect();
        let answer = async {
            let mut lease = lease(&self.pool, self.acquire_timeout).await?;
            let result = match lease.conn() {
                Ok(conn) => pg_query(sql, &args)
                    .fetch_optional(&mut conn.raw)
                    .await
                    .map_err(StoreError::from),
                Err(e) => Err(e),
            };
            lease.done(result)
        };
        let _ = w.reply.send(answer.await);
    }

    /// The first row of `sql` for each read of `batch`, in order, from one statement.
    async fn read_together(
        &self,
        sql: &str,
        batch: &[Waiting<PgRow>],
    ) -> Result<Vec<Option<PgRow>>> {
        let Some(first) = batch.first() else {
            return Ok(Vec::new());
        };
        let types: Vec<&str> = first.args.iter().map(Value::array_type).collect();
        let text = coalesce::batched_sql(sql, &types);
        let mut query = sqlx::query(&text);
        for (k, v) in first.args.iter().enumerate() {
            let nth = |w: &'_ Waiting<PgRow>| w.args.get(k).cloned();
            query = match v {
                Value::Text(_) => query.bind(
                    batch
                        .iter()
                        .map(|w| match nth(w) {
                            Some(Value::Text(t)) => t,
                            _ => String::new(),
                        })
                        .collect::<Vec<String>>(),
                ),
                Value::Int(_) => query.bind(
                    batch
                        .iter()
                        .map(|w| match nth(w) {
                            Some(Value::Int(i)) => i,
                            _ => 0,
                        })
                        .collect::<Vec<i64>>(),
                ),
                Value::Bool(_) => query.bind(
                    batch
                        .iter()
                        .map(|w| matches!(nth(w), Some(Value::Bool(true))))
                        .collect::<Vec<bool>>(),
                ),
            };
        }
        let mut lease = lease(&self.pool, self.acquire_timeout).await?;
        // Its readers wait at most `patience()`: a statement that runs longer answers no one,
        // so it is given up, and its connection settled (checked, or closed) rather than held
        // by a task that no request waits for (a database or network that stopped answering
        // without closing the connection would otherwise hold it until TCP gives up).
        let result = match lease.conn() {
            Ok(conn) => {
                match tokio::time::timeout(self.patience(), query.fetch_all(&mut conn.raw)).await {
                    Ok(rows) => rows.map_err(StoreError::from),
                    Err(_) => Err(StoreError::Unavailable(
                        "a shared read outlasted its readers' wait".into(),
                    )),
                }
            }
            Err(e) => Err(e),
        };
        let rows = lease.done(result)?;
        let mut answers: Vec<Option<PgRow>> = batch.iter().map(|_| None).collect();
        for row in rows {
            // The row's number is the first column, whatever the statement's own columns are
            // called.
            let n: i64 = sqlx::Row::try_get(&row, 0)?;
            let slot = usize::try_from(n - 1)
                .ok()
                .and_then(|i| answers.get_mut(i))
                .ok_or_else(|| StoreError::Internal(format!("a batched read's row {n}")))?;
            if slot.is_none() {
                *slot = Some(row);
            }
        }
        Ok(answers)
    }
}

/// No connection could be had within the acquire timeout (503).
fn acquire_timed_out() -> StoreError {
    StoreError::Unavailable("no PostgreSQL connection within the acquire timeout".into())
}

/// `job` in a transaction of its own, rolled back at once when it fails, so that the locks it
/// took are released before the caller hears of the failure. Given up half-way, the connection
/// is left marked as in a transaction, and [`Lease`] closes it.
async fn in_transaction<J: WriteJob>(conn: &mut Conn, job: &J) -> Result<J::Output> {
    conn.in_transaction = true;
    let mut tx = sqlx::Connection::begin(&mut conn.raw).await?;
    let result = job.run(&mut *tx).await;
    match result {
        Ok(out) => {
            tx.commit().await?;
            conn.in_transaction = false;
            Ok(out)
        }
        Err(e) => {
            tx.rollback().await?;
            conn.in_transaction = false;
            Err(e)
        }
    }
}

#[cfg(test)]
impl PostgresStore {
    /// The store, where no read is ever taken for stuck: the reads that arrive together wait
    /// for the one running however slow the machine.
    fn never_stalled(mut self) -> Self {
        let reader = Reader {
            pool: self.pool.clone(),
            acquire_timeout: self.acquire_timeout,
        };
        self.reads = Coalescer::new(reader, Duration::from_secs(3600));
        self
    }
}

impl Engine for PostgresStore {
    const DIALECT: Dialect = Dialect {
        insertion_order: "seq",
        name_contains: "strpos(lower(name COLLATE \"C\"), lower({} COLLATE \"C\")) > 0",
        json_array_contains: "jsonb_exists(grant_types::jsonb, {})",
        // Not `FOR UPDATE`: that lock also conflicts with the `FOR KEY SHARE` lock a foreign-key
        // check takes, so an approval locking a grant deadlocked against concurrent inserts of
        // codes and refresh tokens referencing it. The rows locked here are then updated in
        // non-key columns only, which is exactly what `FOR NO KEY UPDATE` serializes.
        for_update: " FOR NO KEY UPDATE",
        for_share: " FOR SHARE",
        for_key_share: " FOR KEY SHARE",
        lock_client_to_edit: " FOR UPDATE",
        lock_to_delete: " FOR UPDATE SKIP LOCKED",
        lock_key: "SELECT pg_advisory_xact_lock($1)",
        row_id: "ctid",
        writes_in_with: true,
    };

    /// Alone when few reads of `sql` are running, else in a statement shared with the reads
    /// of it that wait meanwhile ([`coalesce`]).
    async fn point_read<T: FromCols + Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>> {
        if !coalesce::shareable(args) {
            return self.read_alone(sql, args).await;
        }
        match self.reads.enter(sql, args) {
            Turn::Alone => self.read_alone(sql, args).await,
            Turn::Run(place) => {
                let answer = self.read_alone(sql, args).await;
                drop(place);
                answer
            }
            Turn::Wait(answer) => {
                let limit = self.reads.runner().patience();
                match self.reads.answer(sql, answer, limit).await {
                    Some(row) => row?.as_ref().map(T::from_cols).transpose(),
                    None => Err(StoreError::Unavailable(
                        "a shared read was not answered in time".into(),
                    )),
                }
            }
        }
    }

    async fn rows_read<T: FromCols + Send>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<T>> {
        let mut lease = self.lease().await?;
        let result = match lease.conn() {
            Ok(conn) => conn.raw.fetch_all(sql, args).await,
            Err(e) => Err(e),
        };
        lease.done(result)
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

    /// On a connection of its own, closed afterwards: the migrator holds a session-level
    /// advisory lock, which a failed run could otherwise leave on a pooled connection.
    async fn run_migrations(&self) -> Result<()> {
        let connect = PgConnection::connect_with(&self.pool.manager().options);
        let Ok(conn) = tokio::time::timeout(self.acquire_timeout, connect).await else {
            return Err(acquire_timed_out());
        };
        let mut conn = conn?;
        let result = sqlx::migrate!("./migrations/postgres")
            .run_direct(&mut conn)
            .await;
        let _ = conn.close().await;
        Ok(result?)
    }

    /// Closes the idle connections (saying goodbye to the database) and every one that comes
    /// back; later requests fail as unavailable.
    async fn close_connections(&self) {
        let idle = self.pool.retain(|_, _| false).removed;
        self.pool.close();
        for c in idle {
            let _ = tokio::time::timeout(self.pool.manager().check_timeout, c.raw.close()).await;
        }
    }

    fn connection_usage(&self) -> ConnectionUsage {
        let status = self.pool.status();
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let idle = status.available.min(status.size);
        ConnectionUsage {
            in_use: count(status.size - idle),
            idle: count(idle),
            max: Some(count(status.max_size)),
        }
    }
}

#[cfg(test)]
mod pool_tests {
    //! The pool against the PostgreSQL of `OAUTH_TEST_POSTGRES_URL` (skipped without it): no
    //! tables, only statements that need none.

    use std::time::Duration;

    use super::PostgresStore;
    use crate::engine::Engine;
    use crate::shared::{Arg, Cols, FromCols};
    use crate::writes::{Exec, WriteJob};
    use crate::{PoolSettings, Result};

    struct Text(String);

    impl FromCols for Text {
        fn from_cols(r: &impl Cols) -> Result<Self> {
            Ok(Text(r.col("v")?))
        }
    }

    /// A transaction that outlasts the caller's patience.
    struct Slow;

    impl WriteJob for Slow {
        type Output = ();

        async fn run<E: Exec>(&self, e: &mut E) -> Result<()> {
            e.execute("SELECT pg_sleep(0.5)", &[]).await.map(|_| ())
        }
    }

    /// Takes a transaction-level advisory lock on `key`, then sleeps or fails.
    struct Locking {
        key: i64,
        then_fail: bool,
    }

    impl WriteJob for Locking {
        type Output = ();

        async fn run<E: Exec>(&self, e: &mut E) -> Result<()> {
            e.fetch::<Text>(
                "SELECT pg_advisory_xact_lock($1)::text AS v",
                &[Arg::Int(self.key)],
            )
            .await?;
            if self.then_fail {
                return Err(crate::StoreError::Internal("the job failed".into()));
            }
            e.execute("SELECT pg_sleep(0.5)", &[]).await.map(|_| ())
        }
    }

    /// Whether another session can take the advisory lock on `key` now (and gives it back).
    async fn lock_is_free(key: i64) -> bool {
        use sqlx::{Connection, Row};
        let url = std::env::var("OAUTH_TEST_POSTGRES_URL").expect("url");
        let mut other = sqlx::PgConnection::connect(&url).await.expect("connect");
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS got")
            .bind(key)
            .fetch_one(&mut other)
            .await
            .expect("try lock");
        let got: bool = row.get("got");
        if got {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut other)
                .await
                .expect("unlock");
        }
        let _ = other.close().await;
        got
    }

    fn random_key() -> i64 {
        i64::from(std::process::id()) << 20 | i64::from(rand::random::<u16>())
    }

    #[tokio::test]
    async fn a_failed_transaction_releases_its_locks_before_the_caller_hears_of_it() {
        let Some(store) = store().await else { return };
        let key = random_key();
        let failed = store
            .write(Locking {
                key,
                then_fail: true,
            })
            .await;
        assert!(failed.is_err());
        assert!(
            lock_is_free(key).await,
            "the rolled-back transaction still holds its lock"
        );
        let (echoed, _) = echo(&store, "next").await.expect("read");
        assert_eq!(echoed, "next");
    }

    #[tokio::test]
    async fn a_transaction_given_up_releases_its_locks_without_waiting_for_the_next_use() {
        let Some(store) = store().await else { return };
        let key = random_key();
        let job = Locking {
            key,
            then_fail: false,
        };
        let given_up = tokio::time::timeout(Duration::from_millis(100), store.write(job)).await;
        assert!(given_up.is_err(), "the transaction outlasted the timeout");
        // Nothing takes a connection from this store meanwhile: the interrupted one is settled
        // by itself, and the session holding the lock ends once its statement does.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !lock_is_free(key).await {
            assert!(
                std::time::Instant::now() < deadline,
                "the given-up transaction still holds its lock"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (echoed, _) = echo(&store, "after").await.expect("read");
        assert_eq!(echoed, "after");
    }

    async fn store() -> Option<PostgresStore> {
        store_waiting_at_most(Duration::from_secs(5)).await
    }

    async fn store_waiting_at_most(acquire_timeout: Duration) -> Option<PostgresStore> {
        store_with(PoolSettings {
            acquire_timeout,
            ..PoolSettings::default()
        })
        .await
    }

    /// A store on the PostgreSQL of `OAUTH_TEST_POSTGRES_URL` with these pool settings; `None`
    /// (skipped) without it.
    async fn store_with(settings: PoolSettings) -> Option<PostgresStore> {
        let Ok(url) = std::env::var("OAUTH_TEST_POSTGRES_URL") else {
            eprintln!("OAUTH_TEST_POSTGRES_URL not set: skipped");
            return None;
        };
        Some(
            PostgresStore::connect(&url, settings)
                .await
                .expect("connect"),
        )
    }

    async fn echo(store: &PostgresStore, v: &str) -> Result<(String, String)> {
        let sql = "SELECT $1::text || ' ' || pg_backend_pid()::text AS v";
        let Text(row) = store
            .point_read::<Text>(sql, &[Arg::Text(v)])
            .await?
            .expect("a row");
        let (echoed, pid) = row.split_once(' ').expect("two words");
        Ok((echoed.to_owned(), pid.to_owned()))
    }

    /// What a read of `v` saw: its value and the statement that answered it (the backend and
    /// the statement's start), or nothing for `none`. `r0` takes 200 ms, so that the reads
    /// asked with it arrive while it runs, however the machine schedules the test (a quick
    /// answer can be read back before the next read is first polled).
    async fn stamped(store: &PostgresStore, v: &str) -> Result<Option<(String, String)>> {
        let sql = "SELECT $1::text || ' ' || pg_backend_pid()::text || '@' \
                   || statement_timestamp()::text AS v \
                   FROM pg_sleep(CASE WHEN $1 = 'r0' THEN 0.2 ELSE 0 END) WHERE $1 <> 'none'";
        let row = store.point_read::<Text>(sql, &[Arg::Text(v)]).await?;
        Ok(row.map(|Text(row)| {
            let (echoed, statement) = row.split_once(' ').expect("two words");
            (echoed.to_owned(), statement.to_owned())
        }))
    }

    /// Waits (up to 5 s) until no read holds or waits for a place.
    async fn settled(store: &PostgresStore) {
        for _ in 0..500 {
            if store.reads.statements() == 0 && store.connection_usage().in_use == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "reads left behind: {} statements, {} waiting, {:?}",
            store.reads.statements(),
            store.reads.waiting(),
            store.connection_usage()
        );
    }

    #[tokio::test]
    async fn reads_that_arrive_together_share_one_statement_and_each_gets_its_own_answer() {
        let Some(store) = store().await.map(PostgresStore::never_stalled) else {
            return;
        };
        let asked: Vec<String> = (0..30)
            .map(|i| {
                if i % 7 == 3 {
                    "none".to_owned()
                } else {
                    format!("r{i}")
                }
            })
            .collect();
        let reads = asked.iter().map(|v| stamped(&store, v));
        let mut statements = std::collections::HashMap::<String, usize>::new();
        for (asked, answer) in asked
            .iter()
            .zip(futures_util::future::join_all(reads).await)
        {
            match answer.expect("read") {
                None => assert_eq!(asked, "none"),
                Some((echoed, statement)) => {
                    assert_eq!(asked, &echoed);
                    *statements.entry(statement).or_default() += 1;
                }
            }
        }
        // The first read ran alone; the 29 that came while it ran waited and were answered by
        // one statement, 25 of them with a row (4 asked for none).
        assert_eq!(crate::coalesce::RUNNING_PER_STATEMENT, 1);
        let mut sizes: Vec<usize> = statements.into_values().collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [1, 25]);
        settled(&store).await;
    }

    #[tokio::test]
    async fn enough_reads_waiting_are_answered_while_a_slow_one_runs() {
        let Some(store) = store().await.map(PostgresStore::never_stalled) else {
            return;
        };
        let store = std::sync::Arc::new(store);
        let read = |v: String| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .point_read::<Text>(SLOW_FOR_SLOW, &[Arg::Text(&v)])
                    .await
                    .expect("read")
                    .map(|Text(v)| v)
            })
        };
        let slow = read("slow".to_owned());
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Fewer than enough wait for the slow read, never taken for stuck here.
        let few: Vec<_> = (1..crate::coalesce::SECOND_BATCH_AT)
            .map(|i| read(format!("r{i}")))
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(few.iter().all(|r| !r.is_finished()), "they wait for it");
        // One more, and their statement runs beside the slow one.
        let last = read("last".to_owned());
        let started = std::time::Instant::now();
        assert_eq!(last.await.expect("task").as_deref(), Some("last"));
        for (i, r) in (1..).zip(few) {
            assert_eq!(r.await.expect("task"), Some(format!("r{i}")));
        }
        assert!(!slow.is_finished(), "answered in {:?}", started.elapsed());
        assert_eq!(slow.await.expect("task").as_deref(), Some("slow"));
        settled(&store).await;
    }

    #[tokio::test]
    async fn more_reads_than_one_statement_answers_take_several() {
        let Some(store) = store().await.map(PostgresStore::never_stalled) else {
            return;
        };
        let asked: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
        let reads = asked.iter().map(|v| stamped(&store, v));
        let mut statements = std::collections::HashMap::<String, usize>::new();
        for (asked, answer) in asked
            .iter()
            .zip(futures_util::future::join_all(reads).await)
        {
            let (echoed, statement) = answer.expect("read").expect("a row");
            assert_eq!(asked, &echoed);
            *statements.entry(statement).or_default() += 1;
        }
        let mut sizes: Vec<usize> = statements.into_values().collect();
        sizes.sort_unstable();
        assert_eq!(crate::coalesce::MOST_PER_BATCH, 64);
        assert_eq!(sizes, [1, 35, 64]);
        settled(&store).await;
    }

    /// Sleeps 2 s for `slow`, answers at once otherwise.
    const SLOW_FOR_SLOW: &str =
        "SELECT $1::text AS v FROM pg_sleep(CASE WHEN $1 = 'slow' THEN 2 ELSE 0 END)";

    #[tokio::test]
    async fn a_stuck_read_holds_up_the_others_of_its_statement_only_briefly() {
        let Some(store) = store().await else { return };
        let store = std::sync::Arc::new(store);
        let slow = {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .point_read::<Text>(SLOW_FOR_SLOW, &[Arg::Text("slow")])
                    .await
            })
        };
        tokio::time::sleep(crate::coalesce::STALLED_AFTER * 3).await;
        let started = std::time::Instant::now();
        let asked: Vec<String> = (0..30).map(|i| format!("r{i}")).collect();
        let reads = asked.iter().map(|v| async {
            store
                .point_read::<Text>(SLOW_FOR_SLOW, &[Arg::Text(v)])
                .await
        });
        for (asked, answer) in asked
            .iter()
            .zip(futures_util::future::join_all(reads).await)
        {
            assert_eq!(Some(asked), answer.expect("read").map(|Text(v)| v).as_ref());
        }
        let took = started.elapsed();
        assert!(!slow.is_finished(), "the others were answered in {took:?}");
        let Text(v) = slow.await.expect("task").expect("read").expect("a row");
        assert_eq!(v, "slow");
        settled(&store).await;
    }

    #[tokio::test]
    async fn a_read_waiting_behind_a_stuck_one_is_answered_beside_it() {
        let Some(store) = store().await else { return };
        let slow = store.point_read::<Text>(SLOW_FOR_SLOW, &[Arg::Text("slow")]);
        let fast = async {
            let answer = store
                .point_read::<Text>(SLOW_FOR_SLOW, &[Arg::Text("fast")])
                .await;
            (answer, std::time::Instant::now())
        };
        let ((slow, slow_done), (fast, fast_done)) =
            tokio::join!(async { (slow.await, std::time::Instant::now()) }, fast);
        assert_eq!(
            slow.expect("read").map(|Text(v)| v).as_deref(),
            Some("slow")
        );
        assert_eq!(
            fast.expect("read").map(|Text(v)| v).as_deref(),
            Some("fast")
        );
        assert!(fast_done + Duration::from_millis(500) < slow_done);
        settled(&store).await;
    }

    #[tokio::test]
    async fn a_read_gives_up_waiting_after_twice_the_acquire_timeout() {
        let Some(store) = store_waiting_at_most(Duration::from_millis(500))
            .await
            .map(PostgresStore::never_stalled)
        else {
            return;
        };
        let read = |v: &'static str| {
            let store = &store;
            async move {
                let started = std::time::Instant::now();
                let answer = store
                    .point_read::<Text>(SLOW_FOR_SLOW, &[Arg::Text(v)])
                    .await;
                (answer.map(|r| r.map(|Text(v)| v)), started.elapsed())
            }
        };
        // The first runs alone for 2 s; the second waits for it, and gives up at 1 s.
        let ((first, _), (fast, took)) = tokio::join!(read("slow"), read("fast"));
        assert_eq!(first.expect("read").as_deref(), Some("slow"));
        assert!(
            matches!(fast, Err(crate::StoreError::Unavailable(_))),
            "{fast:?}"
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(1900),
            "gave up after {took:?}"
        );
        settled(&store).await;
    }

    #[tokio::test]
    async fn the_pool_holds_at_most_the_connections_it_is_given() {
        let Some(store) = store_with(PoolSettings {
            max_connections: 3,
            ..PoolSettings::default()
        })
        .await
        else {
            return;
        };
        // Eight reads of 200 ms at once (scans, which never share a statement) take turns on
        // three connections.
        let sql = "SELECT pg_backend_pid()::text AS v FROM pg_sleep(0.2)";
        let reads = (0..8).map(|_| store.rows_read::<Text>(sql, &[]));
        let backends: std::collections::HashSet<String> = futures_util::future::join_all(reads)
            .await
            .into_iter()
            .flat_map(|rows| rows.expect("read"))
            .map(|Text(pid)| pid)
            .collect();
        assert!(
            (1..=3).contains(&backends.len()),
            "{} backends",
            backends.len()
        );
        assert_eq!(store.connection_usage().max, Some(3));
        settled(&store).await;
    }

    #[tokio::test]
    async fn a_shared_statement_that_outlasts_its_readers_gives_its_connection_back() {
        // Its readers wait 600 ms for their answer.
        let Some(store) = store_waiting_at_most(Duration::from_millis(300))
            .await
            .map(PostgresStore::never_stalled)
        else {
            return;
        };
        // `r0` runs alone for 300 ms; the five that arrive meanwhile share a statement that
        // would run for 10 s (2 s a row), as if the database had stopped answering.
        let sql = "SELECT $1::text AS v \
                   FROM pg_sleep(CASE WHEN $1 = 'r0' THEN 0.3 WHEN $1 <> 'after' THEN 2 ELSE 0 END)";
        let asked: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
        let started = std::time::Instant::now();
        let reads = asked.iter().map(|v| async {
            let answer = store.point_read::<Text>(sql, &[Arg::Text(v)]).await;
            (answer.map(|r| r.map(|Text(v)| v)), started.elapsed())
        });
        for (i, (answer, took)) in futures_util::future::join_all(reads)
            .await
            .into_iter()
            .enumerate()
        {
            if i == 0 {
                assert_eq!(answer.expect("read").as_deref(), Some("r0"));
            } else {
                assert!(
                    matches!(answer, Err(crate::StoreError::Unavailable(_))),
                    "read {i}: {answer:?}"
                );
                assert!(took < Duration::from_secs(2), "read {i} took {took:?}");
            }
        }
        // The statement is given up when its readers are: its connection is back or closed
        // within `settled`'s 5 s, long before the statement would have ended.
        settled(&store).await;
        assert!(started.elapsed() < Duration::from_secs(8));
        let Text(v) = store
            .point_read::<Text>(sql, &[Arg::Text("after")])
            .await
            .expect("read")
            .expect("a row");
        assert_eq!(v, "after");
    }

    #[tokio::test]
    async fn reads_whose_requests_gave_up_are_not_read_for() {
        let Some((url, db)) = fresh_database().await else {
            return;
        };
        let store = PostgresStore::connect(
            &url,
            crate::PoolSettings {
                acquire_timeout: Duration::from_millis(300),
                ..crate::PoolSettings::default()
            },
        )
        .await
        .expect("connect")
        .never_stalled();
        // Each row read counts itself.
        let sql = "SELECT $1::text || ' ' || nextval('reads_counted')::text AS v \
                   FROM pg_sleep(CASE WHEN $1 = 'r0' THEN 1 ELSE 0 END)";
        // `r0` runs alone for 1 s; the five that arrive meanwhile give up after 600 ms, before
        // their turn.
        let asked: Vec<String> = (0..6).map(|i| format!("r{i}")).collect();
        let reads = asked
            .iter()
            .map(|v| async { store.point_read::<Text>(sql, &[Arg::Text(v)]).await });
        for (i, answer) in futures_util::future::join_all(reads)
            .await
            .into_iter()
            .enumerate()
        {
            let answer = answer.map(|r| r.map(|Text(v)| v));
            if i == 0 {
                assert_eq!(answer.expect("read").as_deref(), Some("r0 1"));
            } else {
                assert!(
                    matches!(answer, Err(crate::StoreError::Unavailable(_))),
                    "read {i}: {answer:?}"
                );
            }
        }
        settled(&store).await;
        // Nothing was read for the five: the next read is the second counted.
        let Text(v) = store
            .point_read::<Text>(sql, &[Arg::Text("after")])
            .await
            .expect("read")
            .expect("a row");
        assert_eq!(v, "after 2");
        store.close_connections().await;
        drop(db);
    }

    /// A database of its own with the sequence `reads_counted`, dropped with the
    /// [`FreshDatabase`]; `None` without `OAUTH_TEST_POSTGRES_URL`.
    async fn fresh_database() -> Option<(String, FreshDatabase)> {
        use rand::Rng;
        use sqlx::Connection;
        let Ok(admin_url) = std::env::var("OAUTH_TEST_POSTGRES_URL") else {
            eprintln!("OAUTH_TEST_POSTGRES_URL not set: skipped");
            return None;
        };
        let name = format!("oauth_test_{:016x}", rand::thread_rng().gen::<u64>());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("URL");
        url.set_path(&format!("/{name}"));
        let mut conn = sqlx::PgConnection::connect(url.as_str())
            .await
            .expect("connect");
        sqlx::query("CREATE SEQUENCE reads_counted")
            .execute(&mut conn)
            .await
            .expect("sequence");
        let _ = conn.close().await;
        Some((url.to_string(), FreshDatabase { admin_url, name }))
    }

    struct FreshDatabase {
        admin_url: String,
        name: String,
    }

    /// Dropped with the test, also when it fails (on a thread with a runtime of its own, as
    /// `Drop` cannot wait on the test's).
    impl Drop for FreshDatabase {
        fn drop(&mut self) {
            let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
            let _ = std::thread::spawn(move || {
                use sqlx::Connection;
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ = sqlx::query(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut admin)
                        .await;
                    }
                });
            })
            .join();
        }
    }

    #[tokio::test]
    async fn a_read_whose_value_the_database_refuses_fails_alone() {
        let Some(store) = store().await.map(PostgresStore::never_stalled) else {
            return;
        };
        // The first read takes 200 ms, so that the others arrive while it runs.
        let sql = "SELECT (($1::text)::int8 * 2)::text || ' ' || pg_backend_pid()::text || '@' \
                   || statement_timestamp()::text AS v \
                   FROM pg_sleep(CASE WHEN $1 = '0' THEN 0.2 ELSE 0 END)";
        let asked: Vec<String> = (0..30)
            .map(|i| match i {
                7 | 12 => "x".to_owned(), // refused, in the batch
                9 => "1\x002".to_owned(), // a NUL byte: never shares a statement
                i => i.to_string(),
            })
            .collect();
        let reads = asked
            .iter()
            .map(|v| async { store.point_read::<Text>(sql, &[Arg::Text(v)]).await });
        let mut statements = std::collections::HashSet::new();
        for (i, answer) in futures_util::future::join_all(reads)
            .await
            .into_iter()
            .enumerate()
        {
            match i {
                7 | 9 | 12 => assert!(
                    matches!(answer, Err(crate::StoreError::InvalidInput(_))),
                    "read {i}: {:?}",
                    answer.map(|r| r.map(|Text(v)| v))
                ),
                i => {
                    let Text(v) = answer.expect("read").expect("a row");
                    let (doubled, statement) = v.split_once(' ').expect("two words");
                    assert_eq!(doubled, (i * 2).to_string());
                    statements.insert(statement.to_owned());
                }
            }
        }
        // The first read ran alone; the 26 good reads that waited were answered by the parts of
        // the refused batch that held no bad read: 9 statements in all (28 split into halves
        // down to the two bad reads), not one each.
        assert!(
            (2..=10).contains(&statements.len()),
            "{} statements",
            statements.len()
        );
        settled(&store).await;
    }

    #[tokio::test]
    async fn reads_given_up_while_waiting_leave_the_others_answered() {
        let Some(store) = store().await else { return };
        // `r0` runs for 200 ms: polled once (it runs, nine wait), then all are dropped, as when
        // their clients hang up.
        let given_up: Vec<String> = (0..10)
            .map(|i| if i == 0 { "r0".into() } else { format!("g{i}") })
            .collect();
        let once = futures_util::future::join_all(given_up.iter().map(|v| stamped(&store, v)));
        assert!(tokio::time::timeout(Duration::ZERO, once).await.is_err());
        let asked: Vec<String> = (0..30).map(|i| format!("r{i}")).collect();
        let reads = asked.iter().map(|v| echo(&store, v));
        for (asked, answer) in asked
            .iter()
            .zip(futures_util::future::join_all(reads).await)
        {
            assert_eq!(asked, &answer.expect("read").0);
        }
        settled(&store).await;
        assert_eq!(echo(&store, "after").await.expect("read").0, "after");
    }

    #[tokio::test]
    async fn a_use_given_up_half_way_leaves_nothing_for_the_next_one() {
        let Some(store) = store().await else { return };
        // Inside a transaction, mid-statement: the future is dropped, as when a client hangs up.
        let given_up = tokio::time::timeout(Duration::from_millis(50), store.write(Slow)).await;
        assert!(given_up.is_err(), "the transaction outlasted the timeout");
        // The most recently used connection is handed out next: the interrupted one. It is
        // checked first, so each statement gets its own answer, and no transaction stays open.
        let (_, first_pid) = echo(&store, "first")
            .await
            .expect("read after the interruption");
        for i in 0..20 {
            let v = format!("value-{i}");
            let (echoed, _) = echo(&store, &v).await.expect("read");
            assert_eq!(echoed, v, "an answer meant for another statement");
        }
        let state: Option<Text> = store
            .point_read(
                "SELECT state AS v FROM pg_stat_activity WHERE pid = $1::int",
                &[Arg::Text(&first_pid)],
            )
            .await
            .expect("state");
        let state = state.map(|Text(s)| s);
        assert!(
            state.as_deref().is_none_or(|s| s != "idle in transaction"),
            "{state:?}"
        );
        let usage = store.connection_usage();
        assert_eq!(usage.max, Some(16));
        assert!(usage.in_use == 0 && usage.idle >= 1, "{usage:?}");
    }

    #[tokio::test]
    async fn a_refused_statement_leaves_the_connection_ready() {
        let Some(store) = store().await else { return };
        let refused = store
            .point_read::<Text>("SELECT $1::int::text AS v", &[Arg::Text("not a number")])
            .await;
        assert!(refused.is_err());
        let (echoed, _) = echo(&store, "after").await.expect("read");
        assert_eq!(echoed, "after");
    }

    #[tokio::test]
    async fn thirty_reads_at_once_each_get_their_own_answer() {
        let Some(store) = store().await else { return };
        let reads = (0..30).map(|i| {
            let store = &store;
            async move {
                let v = format!("r{i}");
                (v.clone(), echo(store, &v).await.expect("read").0)
            }
        });
        for (asked, answered) in futures_util::future::join_all(reads).await {
            assert_eq!(asked, answered);
        }
        let usage = store.connection_usage();
        assert!(usage.idle <= 16 && usage.in_use == 0, "{usage:?}");
    }

    /// A shared read's statement is planned once per connection, not once per batch: after the
    /// five plans PostgreSQL always makes for the arguments of a prepared statement's first
    /// executions, it keeps the generic one.
    #[tokio::test]
    async fn a_shared_read_keeps_its_generic_plan() {
        use sqlx::{Connection, Row};
        let Ok(url) = std::env::var("OAUTH_TEST_POSTGRES_URL") else {
            eprintln!("OAUTH_TEST_POSTGRES_URL not set: skipped");
            return;
        };
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        // The plan counts are there from PostgreSQL 14.
        let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
            .fetch_one(&mut conn)
            .await
            .expect("version");
        if version < 140_000 {
            eprintln!("PostgreSQL {version} has no plan counts: skipped");
            return;
        }
        for setup in [
            // The default, whatever the server, role or database says.
            "SET plan_cache_mode = auto",
            "CREATE TEMP TABLE kv (k text PRIMARY KEY, v text NOT NULL)",
            "INSERT INTO kv SELECT 'k' || g, 'v' || g FROM generate_series(1, 1000) g",
            "ANALYZE kv",
        ] {
            sqlx::query(setup).execute(&mut conn).await.expect(setup);
        }
        let text = crate::coalesce::batched_sql("SELECT v FROM kv WHERE k = $1", &["text[]"]);
        for round in 0..12 {
            let keys = vec![
                format!("k{round}"),
                "absent".to_owned(),
                format!("k{}", round + 1),
            ];
            let rows = sqlx::query(&text)
                .bind(keys)
                .fetch_all(&mut conn)
                .await
                .expect("batch");
            let found: Vec<(i64, String)> = rows
                .iter()
                .map(|r| (r.get("batch_n"), r.get("v")))
                .collect();
            assert_eq!(
                found,
                [(1, format!("v{round}")), (3, format!("v{}", round + 1))]
                    .into_iter()
                    .filter(|(_, v)| v != "v0")
                    .collect::<Vec<_>>(),
                "round {round}"
            );
        }
        let plans = sqlx::query(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
        )
        .bind(&text)
        .fetch_one(&mut conn)
        .await
        .expect("the statement is prepared");
        let (generic, custom): (i64, i64) = (plans.get(0), plans.get(1));
        assert_eq!(
            (generic, custom),
            (7, 5),
            "a plan made for the arguments of every batch"
        );
        let _ = conn.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::PostgresRoute;

    fn route(url: &str) -> PostgresRoute {
        PostgresRoute::of(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn a_socket_directory_is_a_socket_however_it_is_written() {
        for url in [
            "postgres://u@localhost/db?host=/var/run/postgresql",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/db",
        ] {
            let r = route(url);
            assert_eq!(
                r,
                PostgresRoute::Socket("/var/run/postgresql".into()),
                "{url}"
            );
            assert!(!r.exposed());
        }
    }

    #[test]
    fn tcp_to_another_host_is_exposed_when_its_tls_accepts_any_certificate() {
        for (url, exposed) in [
            ("postgres://u@db.internal/db?sslmode=allow", true),
            ("postgres://u@db.internal/db?sslmode=prefer", true),
            ("postgres://u@db.internal/db?sslmode=require", true),
            ("postgres://u@10.0.0.5:5433/db?sslmode=require", true),
            ("postgres://u@db.internal/db?sslmode=verify-ca", false),
            ("postgres://u@postgres:5432/db?sslmode=disable", false),
            ("postgres://u@db.internal/db?sslmode=verify-full", false),
            ("postgres://u@127.0.0.1/db?sslmode=disable", false),
            ("postgres://u@localhost/db?sslmode=prefer", false),
            ("postgres://u@[::1]/db?sslmode=disable", false),
        ] {
            let r = route(url);
            assert!(matches!(r, PostgresRoute::Tcp { .. }), "{url}: {r:?}");
            assert_eq!(r.exposed(), exposed, "{url}: {r:?}");
        }
        let PostgresRoute::Tcp {
            host,
            loopback,
            ssl_mode,
        } = route("postgres://u@db.internal:5433/db?sslmode=verify-full")
        else {
            panic!("not TCP");
        };
        assert_eq!(
            (host.as_str(), loopback, ssl_mode),
            ("db.internal", false, "verify-full")
        );
    }

    #[test]
    fn without_sslmode_the_default_is_prefer_and_exposed_to_the_network() {
        // The `PG*` environment fills in what the URL leaves out; this asks for the default.
        if std::env::var_os("PGSSLMODE").is_some() {
            return;
        }
        let r = route("postgres://u@db.internal/db");
        assert_eq!(
            r,
            PostgresRoute::Tcp {
                host: "db.internal".into(),
                loopback: false,
                ssl_mode: "prefer"
            }
        );
        assert!(r.exposed());
    }

    #[test]
    fn a_url_that_is_not_one_is_an_error() {
        assert!(PostgresRoute::of("postgres://u@db/db?sslmode=sometimes").is_err());
    }
}
