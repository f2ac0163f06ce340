//! What every write is written against: [`Exec`], a PostgreSQL connection (sqlx) or the SQLite
//! writer's own connection (rusqlite, [`crate::sqlite_write`]).
//!
//! Every write is a [`WriteJob`], in its area's module: a value owning its inputs, run inside
//! one transaction. On PostgreSQL the store runs it on a pooled connection; on SQLite, the
//! writer thread runs it whole, so that a transaction costs one hand-off between threads
//! instead of one per statement.

use std::future::Future;

use oauth_core::UnixSeconds;

use crate::shared::{Arg, Cols, FromCols};
use crate::Result;

/// Runs statements, with parameters bound to `$1`, `$2`, ... in order.
pub(crate) trait Exec: Send {
    /// The first row `sql` returns, if any (a `SELECT`, or a write with `RETURNING`).
    fn fetch<T: FromCols + Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Option<T>>> + Send;

    /// Every row `sql` returns.
    fn fetch_all<T: FromCols + Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<Vec<T>>> + Send;

    /// Runs a write; the number of rows it changed.
    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = Result<u64>> + Send;
}

/// `sqlx::query(sql)` with `args` bound in order.
impl Exec for sqlx::PgConnection {
    async fn fetch<T: FromCols + Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<T>> {
        let row = pg_query(sql, args).fetch_optional(&mut *self).await?;
        row.as_ref().map(T::from_cols).transpose()
    }

    async fn fetch_all<T: FromCols + Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<T>> {
        let rows = pg_query(sql, args).fetch_all(&mut *self).await?;
        rows.iter().map(T::from_cols).collect()
    }

    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        Ok(pg_query(sql, args)
            .execute(&mut *self)
            .await?
            .rows_affected())
    }
}

/// `sqlx::query(sql)` with `args` bound in order.
pub(crate) fn pg_query<'q>(
    sql: &'q str,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let mut q = sqlx::query(sql);
    for a in args {
        q = match *a {
            Arg::Text(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::OptInt(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
        };
    }
    q
}

/// A write, run in one transaction by the store. `run` borrows the job, so
/// that a PostgreSQL transaction aborted as a deadlock or serialization failure can run it
/// again.
pub(crate) trait WriteJob: Send + Sync + 'static {
    type Output: Send + 'static;

    /// One statement, atomic by itself: run without `BEGIN` and `COMMIT` (two round trips
    /// fewer on PostgreSQL).
    const SINGLE_STATEMENT: bool = false;

    fn run<E: Exec>(&self, e: &mut E) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// What a code or refresh token row says about where it belongs, read before anything is
/// locked: its grant (locked next), client and family.
pub(crate) struct Head {
    pub grant_id: String,
    pub client_id: String,
    pub family_id: Option<String>,
}

impl FromCols for Head {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(Head {
            grant_id: r.col("grant_id")?,
            client_id: r.col("client_id")?,
            family_id: r.col("family_id")?,
        })
    }
}

/// A row of a one-statement write (PostgreSQL, `Dialect::writes_in_with`) with its grant's
/// `last_used_at` as the statement began, in the column `grant_last_used_at`.
pub(crate) struct WithGrantUse<T>(pub T, pub Option<UnixSeconds>);

impl<T: FromCols> FromCols for WithGrantUse<T> {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(WithGrantUse(T::from_cols(r)?, r.col("grant_last_used_at")?))
    }
}

/// Notes a grant's use at `now`, when `last_used` (read by the write that used it) is older:
/// one write per grant and second however many tokens it issues, and none that waits inside
/// another transaction (two share locks on the grant, each waiting to become a row lock,
/// would deadlock). It runs after the write that used the grant has committed, so its failure
/// is logged and never fails that write: the caller must still hand out what was issued (a
/// retry would find its own code or token used, and take it for a replay).
pub(crate) async fn note_grant_use<E: Exec>(
    e: &mut E,
    grant_id: &str,
    last_used: Option<UnixSeconds>,
    now: UnixSeconds,
) {
    if last_used.is_some_and(|t| t >= now) {
        return;
    }
    let noted = e
        .execute(
            "UPDATE oauth_grants SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
            &[Arg::Int(now), Arg::Text(grant_id)],
        )
        .await;
    if let Err(error) = noted {
        tracing::warn!(%error, grant_id, "could not note a grant's use");
    }
}

/// A refresh token's values that a one-statement write binds from `first` on, in this
/// order: `token_hash`, `client_id`, `user_id`, `scopes` (as `scopes_json`), `resource`,
/// `created_at`, `expires_at` (its grant and family come from the row it is issued from).
pub(crate) fn new_refresh_values<'a>(
    t: &'a crate::NewRefreshToken,
    scopes_json: &'a str,
) -> [Arg<'a>; 7] {
    [
        Arg::Text(&t.token_hash),
        Arg::Text(&t.client_id),
        Arg::Text(&t.user_id),
        Arg::Text(scopes_json),
        Arg::OptText(t.resource.as_deref()),
        Arg::Int(t.created_at),
        Arg::Int(t.expires_at),
    ]
}

/// The lock order of every write transaction: the grant first, then the rows that hang off it
/// (codes, refresh tokens, families). Revocation updates the grant first; exchange and rotation
/// read their row's grant id unlocked, then lock the grant here, then update their row. Two
/// transactions can then never hold each other's next lock (PostgreSQL's "deadlock detected").
/// `true` when the grant is live (and now locked until the transaction ends).
pub(crate) async fn lock_live_grant<E: Exec>(
    e: &mut E,
    grant_id: &str,
    for_update: &str,
) -> Result<bool> {
    let sql = format!(
        "SELECT 1 AS one FROM oauth_grants WHERE id = $1 AND revoked_at IS NULL{for_update}"
    );
    Ok(
        e.fetch::<crate::shared::Exists>(&sql, &[Arg::Text(grant_id)])
            .await?
            .is_some(),
    )
}
