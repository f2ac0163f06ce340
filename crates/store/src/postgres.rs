//! PostgreSQL: for deployments that run several server instances on one database.

use std::time::Instant;

use deadpool::managed::{Manager, Metrics, Object, Pool, PoolError, QueueMode, RecycleResult};
use deadpool::Runtime;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{Connection, PgConnection};

use crate::engine::Engine;
use crate::shared::{Arg, FromCols};
use crate::writes::{Exec, WriteJob};
use crate::{ConnectionUsage, Dialect, PoolSettings, Result, StoreError};

/// A connection idle for at least this long, or one whose last use did not finish, is checked
/// before it is used again. A database restart takes far longer, so every connection that lived
/// through one is checked; under load a connection goes back to work within a millisecond or two
/// and is not.
pub const CHECK_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_millis(5);

/// Most connections one instance holds.
const MAX_CONNECTIONS: usize = 16;

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
    acquire_timeout: std::time::Duration,
}

/// Opens connections for the pool and checks them when they are handed out again.
///
/// sqlx's own pool sends a `Sync` and waits for the answer every time a connection goes back,
/// so that a connection left mid-statement by a cancelled future is not handed out; that is a
/// second round trip for every statement. sqlx reads what an interrupted statement left unread
/// (and sends a dropped transaction's `ROLLBACK`) before the connection's next statement anyway;
/// the check is for the connection itself. Here a connection records whether its last use
/// finished ([`Conn::finished`]), and only one that did not, or that sat idle for
/// [`CHECK_IF_IDLE_FOR`] (a database restart leaves idle connections dead), is checked, when it
/// is next handed out. A check that fails drops the connection and the pool opens another.
struct Connections {
    options: PgConnectOptions,
}

/// A pooled connection, and how its last use ended.
struct Conn {
    raw: PgConnection,
    /// The last use ran to its end: no statement, result or transaction left half-way.
    finished: bool,
    /// When the last use ended.
    used_at: Instant,
}

impl Manager for Connections {
    type Type = Conn;
    type Error = sqlx::Error;

    async fn create(&self) -> std::result::Result<Conn, sqlx::Error> {
        Ok(Conn {
            raw: PgConnection::connect_with(&self.options).await?,
            finished: true,
            used_at: Instant::now(),
        })
    }

    async fn recycle(&self, conn: &mut Conn, _: &Metrics) -> RecycleResult<sqlx::Error> {
        if !conn.finished || conn.used_at.elapsed() >= CHECK_IF_IDLE_FOR {
            // Reads whatever an interrupted use left unread (a queued `ROLLBACK` of a
            // transaction dropped half-way is sent first), then a round trip of its own.
            conn.raw.ping().await?;
            conn.finished = true;
        }
        Ok(())
    }
}

/// A connection from the pool, marked unfinished until [`Lease::done`] says its use ended.
struct Lease(Object<Connections>);

impl Lease {
    fn conn(&mut self) -> &mut PgConnection {
        self.0.finished = false;
        &mut self.0.raw
    }

    /// The use ended with `result`. A single statement that the database refused (a conflict,
    /// a value it cannot hold) leaves the connection ready for the next one; any other error
    /// leaves it to be checked before it is used again.
    fn done<T>(self, result: Result<T>) -> Result<T> {
        let ready = match &result {
            Ok(_) => true,
            Err(e) => matches!(e, StoreError::Conflict(_) | StoreError::InvalidInput(_)),
        };
        self.end(ready, result)
    }

    /// As [`Lease::done`] for a transaction: after any error its `ROLLBACK` is still queued.
    fn done_transaction<T>(self, result: Result<T>) -> Result<T> {
        self.end(result.is_ok(), result)
    }

    fn end<T>(mut self, ready: bool, result: Result<T>) -> Result<T> {
        self.0.finished = ready;
        self.0.used_at = Instant::now();
        result
    }
}

impl PostgresStore {
    /// Connections are opened on demand (one at once, so that a wrong URL or an unreachable
    /// database fails the start), at most [`MAX_CONNECTIONS`]; the most recently used idle one
    /// is handed out first, so a light load keeps a few connections warm instead of cycling
    /// through all of them.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {e}")))?;
        let pool = Pool::builder(Connections { options })
            .max_size(MAX_CONNECTIONS)
            .queue_mode(QueueMode::Lifo)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.acquire_timeout))
            .create_timeout(Some(settings.acquire_timeout))
            .recycle_timeout(Some(settings.acquire_timeout))
            .build()
            .map_err(|e| StoreError::Internal(format!("PostgreSQL pool: {e}")))?;
        let store = Self {
            pool,
            acquire_timeout: settings.acquire_timeout,
        };
        drop(store.lease().await?);
        Ok(store)
    }

    /// A connection within [`PostgresStore::acquire_timeout`] in all: waiting for one, checking
    /// it, opening one. Past it, or when the database cannot be reached, the statement fails as
    /// unavailable (503).
    async fn lease(&self) -> Result<Lease> {
        let got = tokio::time::timeout(self.acquire_timeout, self.pool.get()).await;
        let Ok(got) = got else {
            return Err(StoreError::Unavailable(
                "no PostgreSQL connection within the acquire timeout".into(),
            ));
        };
        got.map(Lease).map_err(|e| match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Timeout(_) | PoolError::Closed => StoreError::Unavailable(Box::new(e)),
            e => StoreError::Internal(format!("PostgreSQL pool: {e}")),
        })
    }

    async fn write_once<J: WriteJob>(&self, job: &J) -> Result<J::Output> {
        let mut lease = self.lease().await?;
        if J::SINGLE_STATEMENT {
            let result = job.run(lease.conn()).await;
            lease.done(result)
        } else {
            let result = in_transaction(lease.conn(), job).await;
            lease.done_transaction(result)
        }
    }
}

/// `job` in a transaction of its own; dropped half-way (an error, or the request given up), the
/// transaction queues its `ROLLBACK`, which goes out before the connection's next statement.
async fn in_transaction<J: WriteJob>(conn: &mut PgConnection, job: &J) -> Result<J::Output> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let out = job.run(&mut *tx).await?;
    tx.commit().await?;
    Ok(out)
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
        let mut lease = self.lease().await?;
        let result = lease.conn().fetch(sql, args).await;
        lease.done(result)
    }

    async fn rows_read<T: FromCols + Send>(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<T>> {
        let mut lease = self.lease().await?;
        let result = lease.conn().fetch_all(sql, args).await;
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
        let mut conn = PgConnection::connect_with(&self.pool.manager().options).await?;
        let result = sqlx::migrate!("./migrations/postgres")
            .run_direct(&mut conn)
            .await;
        let _ = conn.close().await;
        Ok(result?)
    }

    /// Closes the idle connections and every one that comes back; later requests fail as
    /// unavailable.
    async fn close_connections(&self) {
        self.pool.close();
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

    async fn store() -> Option<PostgresStore> {
        let Ok(url) = std::env::var("OAUTH_TEST_POSTGRES_URL") else {
            eprintln!("OAUTH_TEST_POSTGRES_URL not set: skipped");
            return None;
        };
        let settings = PoolSettings {
            acquire_timeout: Duration::from_secs(5),
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
