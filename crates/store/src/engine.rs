//! What the store's queries need of a database engine, so that they are written once as plain
//! generic functions (`clients.rs`, `grants.rs`, ...) for SQLite and PostgreSQL alike.
//!
//! An engine names its SQL dialect and offers two ways to reach the database: reads
//! ([`Engine::point_read`], [`Engine::rows_read`]) and writes ([`WriteJob`]s, each run in one
//! transaction by [`Engine::write`]). SQLite reads run on the calling thread on a connection of
//! their own and every SQLite write runs on the writer thread (`sqlite.rs`); PostgreSQL runs
//! both on its pool (`postgres.rs`).

use std::future::Future;
use std::marker::PhantomData;

use async_trait::async_trait;

use oauth_core::PageSpec;

use crate::shared::{Arg, Count, FromCols};
use crate::writes::{Exec, WriteJob};
use crate::{ConnectionUsage, Dialect, Page, Result, Store};

pub(crate) trait Engine: Send + Sync + 'static {
    const DIALECT: Dialect;

    /// The row `sql` selects with `args` bound to `$1`, `$2`, ..., if any.
    fn point_read<T: FromCols + Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Option<T>>> + Send;

    /// Every row `sql` selects with `args` bound to `$1`, `$2`, ....
    fn rows_read<T: FromCols + Send>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Vec<T>>> + Send;

    /// Runs a write in one transaction (or alone, when it is [`WriteJob::SINGLE_STATEMENT`]).
    fn write<J: WriteJob>(&self, job: J) -> impl Future<Output = Result<J::Output>> + Send;

    /// Runs this engine's embedded migrations (idempotent).
    fn run_migrations(&self) -> impl Future<Output = Result<()>> + Send;

    /// Closes every connection.
    fn close_connections(&self) -> impl Future<Output = ()> + Send;

    /// How the connections are used now.
    fn connection_usage(&self) -> ConnectionUsage;
}

/// One page of the rows of `from_where` (a table and its `WHERE` clause, whose placeholders
/// `$1`, `$2`, ... are `args`), their `columns` in `order`, and the count of them all: two
/// reads.
pub(crate) async fn read_page<B: Engine, T: FromCols + Send>(
    engine: &B,
    (columns, from_where, order): (&str, &str, &str),
    args: &[Arg<'_>],
    page: PageSpec,
) -> Result<Page<T>> {
    let total = engine
        .point_read::<Count>(&format!("SELECT COUNT(*) AS n FROM {from_where}"), args)
        .await?
        .map_or(0, |c| c.0);
    let sql = format!(
        "SELECT {columns} FROM {from_where} ORDER BY {order} LIMIT ${} OFFSET ${}",
        args.len() + 1,
        args.len() + 2
    );
    let mut all = args.to_vec();
    all.extend([Arg::Int(page.limit()), Arg::Int(page.offset())]);
    Ok(Page {
        items: engine.rows_read(&sql, &all).await?,
        total: u64::try_from(total).unwrap_or(0),
    })
}

/// Every engine is a [`Store`]: the area traits are implemented for any engine in their own
/// modules (`accounts.rs`, `clients.rs`, ...).
#[async_trait]
impl<B: Engine> Store for B {
    async fn migrate(&self) -> Result<()> {
        self.run_migrations().await
    }

    async fn ping(&self) -> Result<()> {
        self.point_read::<crate::shared::Exists>("SELECT 1 AS one", &[])
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.close_connections().await;
    }

    fn connections(&self) -> ConnectionUsage {
        self.connection_usage()
    }
}

/// Runs one write statement; the number of rows it changed.
pub(crate) async fn execute<B: Engine>(b: &B, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
    b.write(Statement::<Changed>::new(sql, args)).await
}

/// Runs one write statement with `RETURNING`; the first row it returned, if any.
pub(crate) async fn execute_returning<B: Engine, T: FromCols + Send + 'static>(
    b: &B,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<Option<T>> {
    b.write(Statement::<Returning<T>>::new(sql, args)).await
}

/// One statement with its parameters, owned, so that it can travel to the SQLite writer.
struct Statement<K> {
    sql: String,
    args: Vec<Owned>,
    kind: PhantomData<fn() -> K>,
}

/// The statement's outcome: the rows it changed.
struct Changed;

/// The statement's outcome: the first row it returned.
struct Returning<T>(PhantomData<fn() -> T>);

impl<K> Statement<K> {
    fn new(sql: &str, args: &[Arg<'_>]) -> Self {
        Self {
            sql: sql.to_owned(),
            args: args.iter().map(Owned::from).collect(),
            kind: PhantomData,
        }
    }

    fn args(&self) -> Vec<Arg<'_>> {
        self.args.iter().map(Owned::as_arg).collect()
    }
}

impl WriteJob for Statement<Changed> {
    type Output = u64;
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<u64> {
        e.execute(&self.sql, &self.args()).await
    }
}

impl<T: FromCols + Send + 'static> WriteJob for Statement<Returning<T>> {
    type Output = Option<T>;
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<Option<T>> {
        e.fetch(&self.sql, &self.args()).await
    }
}

/// An [`Arg`] that owns its text.
enum Owned {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

impl Owned {
    fn from(a: &Arg<'_>) -> Self {
        match *a {
            Arg::Text(v) => Owned::Text(v.to_owned()),
            Arg::OptText(v) => Owned::OptText(v.map(str::to_owned)),
            Arg::Int(v) => Owned::Int(v),
            Arg::OptInt(v) => Owned::OptInt(v),
            Arg::Bool(v) => Owned::Bool(v),
        }
    }

    fn as_arg(&self) -> Arg<'_> {
        match self {
            Owned::Text(v) => Arg::Text(v),
            Owned::OptText(v) => Arg::OptText(v.as_deref()),
            Owned::Int(v) => Arg::Int(*v),
            Owned::OptInt(v) => Arg::OptInt(*v),
            Owned::Bool(v) => Arg::Bool(*v),
        }
    }
}
