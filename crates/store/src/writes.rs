//! The writes on the authorization and token paths, written once against [`Exec`]: a sqlx
//! connection of either engine, or the SQLite writer's own connection
//! ([`crate::sqlite_write`]).
//!
//! Each is a [`WriteJob`]: a value owning its inputs, run inside one transaction. On
//! PostgreSQL (and an in-memory SQLite database) the store runs it on a pooled connection; on a
//! SQLite file, the writer thread runs it whole, so that a transaction costs one hand-off
//! between threads instead of one per statement.

use std::future::Future;

use oauth_core::UnixSeconds;

use crate::shared::{to_json, Arg, Cols, FromCols, REFRESH_COLUMNS};
use crate::{NewRefreshToken, RefreshRotation, RefreshToken, Result};

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
macro_rules! sqlx_query {
    ($sql:expr, $args:expr) => {{
        let mut q = sqlx::query($sql);
        for a in $args {
            q = match *a {
                Arg::Text(v) => q.bind(v),
                Arg::OptText(v) => q.bind(v),
                Arg::Int(v) => q.bind(v),
                Arg::OptInt(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
            };
        }
        q
    }};
}

macro_rules! impl_exec_for_sqlx {
    ($conn:ty) => {
        impl Exec for $conn {
            async fn fetch<T: FromCols + Send>(
                &mut self,
                sql: &str,
                args: &[Arg<'_>],
            ) -> Result<Option<T>> {
                let row = sqlx_query!(sql, args).fetch_optional(&mut *self).await?;
                row.as_ref().map(T::from_cols).transpose()
            }

            async fn fetch_all<T: FromCols + Send>(
                &mut self,
                sql: &str,
                args: &[Arg<'_>],
            ) -> Result<Vec<T>> {
                let rows = sqlx_query!(sql, args).fetch_all(&mut *self).await?;
                rows.iter().map(T::from_cols).collect()
            }

            async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
                Ok(sqlx_query!(sql, args)
                    .execute(&mut *self)
                    .await?
                    .rows_affected())
            }
        }
    };
}

impl_exec_for_sqlx!(sqlx::SqliteConnection);
impl_exec_for_sqlx!(sqlx::PgConnection);

/// A pooled connection or an open transaction runs statements on the connection it holds.
macro_rules! impl_exec_by_deref {
    ($($held:ty),*) => {$(
        impl Exec for $held {
            fn fetch<T: FromCols + Send>(
                &mut self,
                sql: &str,
                args: &[Arg<'_>],
            ) -> impl Future<Output = Result<Option<T>>> + Send {
                (**self).fetch(sql, args)
            }

            fn fetch_all<T: FromCols + Send>(
                &mut self,
                sql: &str,
                args: &[Arg<'_>],
            ) -> impl Future<Output = Result<Vec<T>>> + Send {
                (**self).fetch_all(sql, args)
            }

            fn execute(
                &mut self,
                sql: &str,
                args: &[Arg<'_>],
            ) -> impl Future<Output = Result<u64>> + Send {
                (**self).execute(sql, args)
            }
        }
    )*};
}

impl_exec_by_deref!(
    sqlx::pool::PoolConnection<sqlx::Sqlite>,
    sqlx::pool::PoolConnection<sqlx::Postgres>,
    sqlx::Transaction<'static, sqlx::Sqlite>,
    sqlx::Transaction<'static, sqlx::Postgres>
);

/// A write on the hot paths, run in one transaction by the store. `run` borrows the job, so
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

/// A token family's absolute end and whether it was revoked.
struct FamilyState {
    expires_at: UnixSeconds,
    revoked_at: Option<UnixSeconds>,
}

impl FromCols for FamilyState {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(FamilyState {
            expires_at: r.col("expires_at")?,
            revoked_at: r.col("revoked_at")?,
        })
    }
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

/// Revokes one token family: the family row (which every access token of it checks) and its
/// refresh tokens. A code or token from before families (`None`) takes its whole grant.
pub(crate) async fn revoke_token_family<E: Exec>(
    e: &mut E,
    family_id: Option<&str>,
    grant_id: &str,
    now: UnixSeconds,
) -> Result<()> {
    let Some(family_id) = family_id else {
        return revoke_grant_family(e, grant_id, now).await;
    };
    e.execute(
        "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        &[Arg::Int(now), Arg::Text(family_id)],
    )
    .await?;
    e.execute(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        &[Arg::Int(now), Arg::Text(family_id)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_refresh<E: Exec>(
    e: &mut E,
    t: &NewRefreshToken,
    grant_id: &str,
) -> Result<()> {
    let scopes = to_json(&t.scopes)?;
    e.execute(
        "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scopes, resource, created_at, expires_at, family_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            Arg::Text(&t.token_hash),
            Arg::Text(grant_id),
            Arg::Text(&t.client_id),
            Arg::Text(&t.user_id),
            Arg::Text(&scopes),
            Arg::OptText(t.resource.as_deref()),
            Arg::Int(t.created_at),
            Arg::Int(t.expires_at),
            Arg::OptText(t.family_id.as_deref()),
        ],
    )
    .await?;
    Ok(())
}

/// Revokes a grant and everything derived from it that the database holds: its refresh tokens
/// (revoked) and its authorization codes (deleted). Access tokens carry the grant id and check
/// the grant on use.
pub(crate) async fn revoke_grant_family<E: Exec>(
    e: &mut E,
    grant_id: &str,
    now: UnixSeconds,
) -> Result<()> {
    e.execute(
        "UPDATE oauth_grants SET revoked_at = $1, updated_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        &[Arg::Int(now), Arg::Text(grant_id)],
    )
    .await?;
    revoke_grant_dependents(e, grant_id, now).await
}

/// Everything hanging off a grant that has just been revoked (and so locked): its codes
/// (deleted), its refresh tokens and its token families (revoked).
pub(crate) async fn revoke_grant_dependents<E: Exec>(
    e: &mut E,
    grant_id: &str,
    now: UnixSeconds,
) -> Result<()> {
    e.execute(
        "DELETE FROM authorization_codes WHERE grant_id = $1",
        &[Arg::Text(grant_id)],
    )
    .await?;
    revoke_grant_refresh_tokens(e, grant_id, now).await?;
    e.execute(
        "UPDATE token_families SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        &[Arg::Int(now), Arg::Text(grant_id)],
    )
    .await?;
    Ok(())
}

/// `Store::revoke_refresh_token_family`: the grant id of a known token, whose family is now
/// revoked.
pub(crate) struct RevokeRefreshFamily {
    pub token_hash: String,
    pub now: UnixSeconds,
    pub for_update: &'static str,
}

impl WriteJob for RevokeRefreshFamily {
    type Output = Option<String>;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<Option<String>> {
        let Some(head) = e
            .fetch::<Head>(
                "SELECT grant_id, client_id, family_id FROM refresh_tokens WHERE token_hash = $1",
                &[Arg::Text(&self.token_hash)],
            )
            .await?
        else {
            return Ok(None);
        };
        // A revoked grant has taken its families with it already.
        if lock_live_grant(e, &head.grant_id, self.for_update).await? {
            revoke_token_family(e, head.family_id.as_deref(), &head.grant_id, self.now).await?;
        }
        Ok(Some(head.grant_id))
    }
}

pub(crate) async fn revoke_grant_refresh_tokens<E: Exec>(
    e: &mut E,
    grant_id: &str,
    now: UnixSeconds,
) -> Result<()> {
    e.execute(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        &[Arg::Int(now), Arg::Text(grant_id)],
    )
    .await?;
    Ok(())
}

/// `Store::revoke_access_token`: whether this call added the revocation.
pub(crate) struct RevokeAccessToken {
    pub jti: String,
    pub exp: UnixSeconds,
    pub now: UnixSeconds,
}

impl WriteJob for RevokeAccessToken {
    type Output = bool;
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<bool> {
        let n = e
            .execute(
                "INSERT INTO revoked_tokens (jti, exp, revoked_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (jti) DO NOTHING",
                &[Arg::Text(&self.jti), Arg::Int(self.exp), Arg::Int(self.now)],
            )
            .await?;
        Ok(n == 1)
    }
}

/// `Store::rotate_refresh_token`.
pub(crate) struct RotateRefresh {
    pub old_hash: String,
    pub new: NewRefreshToken,
    pub now: UnixSeconds,
    pub for_update: &'static str,
}

impl WriteJob for RotateRefresh {
    type Output = RefreshRotation;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<RefreshRotation> {
        let now = self.now;
        let Some(head) = e
            .fetch::<Head>(
                "SELECT grant_id, client_id, family_id FROM refresh_tokens WHERE token_hash = $1",
                &[Arg::Text(&self.old_hash)],
            )
            .await?
        else {
            return Ok(RefreshRotation::Invalid);
        };
        if !lock_live_grant(e, &head.grant_id, self.for_update).await? {
            return Ok(RefreshRotation::Invalid);
        }
        // The family's absolute lifetime bounds every token in it; a revoked family is over.
        let family_end = match &head.family_id {
            Some(f) => {
                let state: Option<FamilyState> = e
                    .fetch(
                        "SELECT expires_at, revoked_at FROM token_families WHERE id = $1",
                        &[Arg::Text(f)],
                    )
                    .await?;
                match state {
                    Some(s) if s.revoked_at.is_none() && s.expires_at > now => Some(s.expires_at),
                    _ => return Ok(RefreshRotation::Invalid),
                }
            }
            None => None,
        };
        // The conditional update is the single-use rule: of two concurrent rotations (on any
        // instance) only one finds `used_at IS NULL`; on PostgreSQL the second waited for the
        // grant lock above and re-checks here.
        let sql = format!(
            "UPDATE refresh_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
             RETURNING {REFRESH_COLUMNS}"
        );
        let old: Option<RefreshToken> = e
            .fetch(&sql, &[Arg::Int(now), Arg::Text(&self.old_hash)])
            .await?;
        if let Some(old) = old {
            let mut new = self.new.clone();
            new.family_id = old.family_id.clone();
            if let Some(end) = family_end {
                new.expires_at = new.expires_at.min(end);
            }
            insert_refresh(e, &new, &old.grant_id).await?;
            e.execute(
                "UPDATE oauth_grants SET last_used_at = $1 WHERE id = $2",
                &[Arg::Int(now), Arg::Text(&old.grant_id)],
            )
            .await?;
            return Ok(RefreshRotation::Rotated(Box::new(old)));
        }
        let used: Option<Head> = e
            .fetch(
                "SELECT grant_id, client_id, family_id FROM refresh_tokens \
                 WHERE token_hash = $1 AND used_at IS NOT NULL",
                &[Arg::Text(&self.old_hash)],
            )
            .await?;
        let Some(used) = used else {
            return Ok(RefreshRotation::Invalid);
        };
        // RFC 9700 §4.14.2: a used refresh token presented again means one of two parties holds
        // a stolen copy; end its family (the user's other authorizations of the client stand).
        revoke_token_family(e, used.family_id.as_deref(), &used.grant_id, now).await?;
        Ok(RefreshRotation::Reused {
            grant_id: used.grant_id,
        })
    }
}
