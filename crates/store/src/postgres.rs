//! PostgreSQL: for deployments that run several server instances on one database.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;

use crate::engine::Engine;
use crate::shared::{Arg, FromCols};
use crate::writes::{Exec, WriteJob};
use crate::{ConnectionUsage, Dialect, PoolSettings, Result, StoreError};

/// A connection idle for at least this long is checked before it is used again. A database
/// restart takes far longer, so every connection that lived through one is checked; under load
/// a connection goes back to work within a millisecond or two and is not.
pub const CHECK_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_millis(5);

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
