//! The writes on the authorization and token paths, written once against [`Exec`]: a sqlx
//! connection of either engine, or the SQLite writer's own connection
//! ([`crate::sqlite_write`]).
//!
//! Each is a [`WriteJob`]: a value owning its inputs, run inside one transaction. On
//! PostgreSQL (and an in-memory SQLite database) the store runs it on a pooled connection; on a
//! SQLite file, the writer thread runs it whole, so that a transaction costs one hand-off
//! between threads instead of one per statement.

use std::future::Future;

use oauth_core::{Client, UnixSeconds};

use crate::shared::{
    to_json, union, Arg, Cols, FromCols, CLIENT_COLUMNS, CODE_COLUMNS, CONSENT_COLUMNS,
    GRANT_COLUMNS, REFRESH_COLUMNS,
};
use crate::{
    Approval, AuthorizationCode, CodeDecision, CodeExchange, ConsentRequest, Grant,
    NewRefreshToken, NewSecurityEvent, RefreshRotation, RefreshToken, Result,
};

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

/// A write on the hot paths, run in one transaction by the store.
pub(crate) trait WriteJob: Send + 'static {
    type Output: Send + 'static;

    /// One statement, atomic by itself: run without `BEGIN` and `COMMIT` (two round trips
    /// fewer on PostgreSQL).
    const SINGLE_STATEMENT: bool = false;

    fn run<E: Exec>(self, e: &mut E) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// One column, `grant_id`.
pub(crate) struct GrantId(pub String);

impl FromCols for GrantId {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(GrantId(r.col("grant_id")?))
    }
}

/// `INSERT ... RETURNING id`.
struct Id(i64);

impl FromCols for Id {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(Id(r.col("id")?))
    }
}

/// The conditional update that makes a consent token single-use: only a live, unused request
/// of this user is marked, and only one caller gets the row back.
pub(crate) async fn take_consent<E: Exec>(
    e: &mut E,
    token_hash: &str,
    user_id: &str,
    now: UnixSeconds,
) -> Result<Option<ConsentRequest>> {
    let sql = format!(
        "UPDATE consent_requests SET used_at = $1 \
         WHERE token_hash = $2 AND user_id = $3 AND used_at IS NULL AND expires_at > $1 \
         RETURNING {CONSENT_COLUMNS}"
    );
    e.fetch(
        &sql,
        &[Arg::Int(now), Arg::Text(token_hash), Arg::Text(user_id)],
    )
    .await
}

pub(crate) async fn insert_refresh<E: Exec>(
    e: &mut E,
    t: &NewRefreshToken,
    grant_id: &str,
) -> Result<()> {
    let scopes = to_json(&t.scopes)?;
    e.execute(
        "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scopes, resource, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            Arg::Text(&t.token_hash),
            Arg::Text(grant_id),
            Arg::Text(&t.client_id),
            Arg::Text(&t.user_id),
            Arg::Text(&scopes),
            Arg::OptText(t.resource.as_deref()),
            Arg::Int(t.created_at),
            Arg::Int(t.expires_at),
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
    revoke_grant_refresh_tokens(e, grant_id, now).await?;
    e.execute(
        "DELETE FROM authorization_codes WHERE grant_id = $1",
        &[Arg::Text(grant_id)],
    )
    .await?;
    Ok(())
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

/// `Store::insert_client`.
pub(crate) struct InsertClient(pub Client);

impl WriteJob for InsertClient {
    type Output = ();
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(self, e: &mut E) -> Result<()> {
        let c = &self.0;
        let s = &c.settings;
        let grant_types = to_json(&s.grant_types)?;
        let scopes = to_json(&s.scopes)?;
        let redirect_uris = to_json(&s.redirect_uris)?;
        let sql = format!(
            "INSERT INTO oauth_clients ({CLIENT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        );
        e.execute(
            &sql,
            &[
                Arg::Text(&c.client_id),
                Arg::Text(&c.org_id),
                Arg::Text(&c.user_id),
                Arg::Text(&s.name),
                Arg::Text(s.client_type.as_str()),
                Arg::OptText(c.secret_hash.as_deref()),
                Arg::Bool(s.require_pkce),
                Arg::Text(&grant_types),
                Arg::Text(&scopes),
                Arg::Text(&redirect_uris),
                Arg::OptText(s.logo_uri.as_deref()),
                Arg::OptText(s.policy_uri.as_deref()),
                Arg::OptText(s.tos_uri.as_deref()),
                Arg::Text(s.token_endpoint_auth_method.as_str()),
                Arg::Bool(c.verified),
                Arg::Int(c.created_at),
                Arg::Int(c.updated_at),
            ],
        )
        .await?;
        Ok(())
    }
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

    async fn run<E: Exec>(self, e: &mut E) -> Result<bool> {
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

/// An API key's last use, recorded by `Store::authenticate_api_key` unless it was recorded
/// after `not_after` already.
pub(crate) struct TouchApiKey {
    pub key_id: String,
    pub now: UnixSeconds,
    pub not_after: UnixSeconds,
}

impl WriteJob for TouchApiKey {
    type Output = ();
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(self, e: &mut E) -> Result<()> {
        e.execute(
            "UPDATE api_keys SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
            &[
                Arg::Int(self.now),
                Arg::Text(&self.key_id),
                Arg::Int(self.not_after),
            ],
        )
        .await?;
        Ok(())
    }
}

/// `Store::create_consent`.
pub(crate) struct CreateConsent(pub ConsentRequest);

impl WriteJob for CreateConsent {
    type Output = ();
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(self, e: &mut E) -> Result<()> {
        let c = &self.0;
        let scopes = to_json(&c.scopes)?;
        let sql = format!(
            "INSERT INTO consent_requests ({CONSENT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        e.execute(
            &sql,
            &[
                Arg::Text(&c.token_hash),
                Arg::Text(&c.user_id),
                Arg::Text(&c.client_id),
                Arg::Text(&c.redirect_uri),
                Arg::Text(&scopes),
                Arg::OptText(c.state.as_deref()),
                Arg::OptText(c.code_challenge.as_deref()),
                Arg::OptText(c.code_challenge_method.as_deref()),
                Arg::OptText(c.resource.as_deref()),
                Arg::Int(c.created_at),
                Arg::Int(c.expires_at),
            ],
        )
        .await?;
        Ok(())
    }
}

/// `Store::approve_consent`.
pub(crate) struct ApproveConsent {
    pub token_hash: String,
    pub user_id: String,
    pub approval: Approval,
    /// The dialect's row lock for the grant (`Dialect::for_update`).
    pub for_update: &'static str,
}

impl WriteJob for ApproveConsent {
    type Output = Option<(ConsentRequest, Grant, AuthorizationCode)>;

    async fn run<E: Exec>(self, e: &mut E) -> Result<Self::Output> {
        let a = &self.approval;
        let user_id = self.user_id.as_str();
        let Some(consent) = take_consent(e, &self.token_hash, user_id, a.now).await? else {
            return Ok(None);
        };
        let resources: Vec<String> = consent.resource.iter().cloned().collect();
        // Create the grant unless a live one exists (the partial unique index decides, also
        // against a concurrent approval), then lock and widen whichever is live.
        let scopes_json = to_json(&consent.scopes)?;
        let resources_json = to_json(&resources)?;
        e.execute(
            "INSERT INTO oauth_grants (id, user_id, client_id, scopes, resources, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (user_id, client_id) WHERE revoked_at IS NULL DO NOTHING",
            &[
                Arg::Text(&a.new_grant_id),
                Arg::Text(user_id),
                Arg::Text(&consent.client_id),
                Arg::Text(&scopes_json),
                Arg::Text(&resources_json),
                Arg::Int(a.now),
            ],
        )
        .await?;
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grants \
             WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL{}",
            self.for_update
        );
        let mut grant: Grant = e
            .fetch(&sql, &[Arg::Text(user_id), Arg::Text(&consent.client_id)])
            .await?
            .ok_or_else(|| crate::StoreError::Internal("the live grant vanished".into()))?;
        let scopes = union(&grant.scopes, &consent.scopes);
        let all_resources = union(&grant.resources, &resources);
        if scopes != grant.scopes || all_resources != grant.resources {
            let scopes_json = to_json(&scopes)?;
            let resources_json = to_json(&all_resources)?;
            e.execute(
                "UPDATE oauth_grants SET scopes = $1, resources = $2, updated_at = $3 WHERE id = $4",
                &[
                    Arg::Text(&scopes_json),
                    Arg::Text(&resources_json),
                    Arg::Int(a.now),
                    Arg::Text(&grant.id),
                ],
            )
            .await?;
            grant.scopes = scopes;
            grant.resources = all_resources;
            grant.updated_at = a.now;
        }
        let code = AuthorizationCode {
            code_hash: a.code_hash.clone(),
            grant_id: grant.id.clone(),
            client_id: consent.client_id.clone(),
            user_id: user_id.to_owned(),
            redirect_uri: consent.redirect_uri.clone(),
            scopes: consent.scopes.clone(),
            code_challenge: consent.code_challenge.clone(),
            code_challenge_method: consent.code_challenge_method.clone(),
            resource: consent.resource.clone(),
            created_at: a.now,
            expires_at: a.code_expires_at,
        };
        let sql = format!(
            "INSERT INTO authorization_codes ({CODE_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        e.execute(
            &sql,
            &[
                Arg::Text(&code.code_hash),
                Arg::Text(&code.grant_id),
                Arg::Text(&code.client_id),
                Arg::Text(&code.user_id),
                Arg::Text(&code.redirect_uri),
                Arg::Text(&scopes_json),
                Arg::OptText(code.code_challenge.as_deref()),
                Arg::OptText(code.code_challenge_method.as_deref()),
                Arg::OptText(code.resource.as_deref()),
                Arg::Int(code.created_at),
                Arg::Int(code.expires_at),
            ],
        )
        .await?;
        Ok(Some((consent, grant, code)))
    }
}

/// The caller's verdict on a code being exchanged (`Store::exchange_authorization_code`).
pub type Decide = Box<dyn FnOnce(&AuthorizationCode) -> CodeDecision + Send>;

/// `Store::exchange_authorization_code`.
pub(crate) struct ExchangeCode {
    pub code_hash: String,
    pub now: UnixSeconds,
    pub decide: Decide,
}

impl WriteJob for ExchangeCode {
    type Output = CodeExchange;

    async fn run<E: Exec>(self, e: &mut E) -> Result<CodeExchange> {
        let now = self.now;
        // The conditional update is the single-use rule: of two concurrent exchanges (on any
        // instance) only one finds `used_at IS NULL`.
        let sql = format!(
            "UPDATE authorization_codes SET used_at = $1 \
             WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             AND EXISTS (SELECT 1 FROM oauth_grants g \
                         WHERE g.id = authorization_codes.grant_id AND g.revoked_at IS NULL) \
             RETURNING {CODE_COLUMNS}"
        );
        let code: Option<AuthorizationCode> = e
            .fetch(&sql, &[Arg::Int(now), Arg::Text(&self.code_hash)])
            .await?;
        if let Some(code) = code {
            return Ok(match (self.decide)(&code) {
                CodeDecision::Accept { refresh_token } => {
                    if let Some(token) = &refresh_token {
                        insert_refresh(e, token, &code.grant_id).await?;
                    }
                    e.execute(
                        "UPDATE oauth_grants SET last_used_at = $1 WHERE id = $2",
                        &[Arg::Int(now), Arg::Text(&code.grant_id)],
                    )
                    .await?;
                    CodeExchange::Exchanged(Box::new(code))
                }
                CodeDecision::Reject => CodeExchange::Rejected(Box::new(code)),
            });
        }
        let used: Option<GrantId> = e
            .fetch(
                "SELECT grant_id FROM authorization_codes WHERE code_hash = $1 AND used_at IS NOT NULL",
                &[Arg::Text(&self.code_hash)],
            )
            .await?;
        Ok(match used {
            Some(GrantId(grant_id)) => CodeExchange::AlreadyUsed { grant_id },
            None => CodeExchange::Invalid,
        })
    }
}

/// `Store::rotate_refresh_token`.
pub(crate) struct RotateRefresh {
    pub old_hash: String,
    pub new: NewRefreshToken,
    pub now: UnixSeconds,
}

impl WriteJob for RotateRefresh {
    type Output = RefreshRotation;

    async fn run<E: Exec>(self, e: &mut E) -> Result<RefreshRotation> {
        let now = self.now;
        // The conditional update is the single-use rule: of two concurrent rotations (on any
        // instance) only one finds `used_at IS NULL`; on PostgreSQL the second waits for the
        // first's row lock and re-checks.
        let sql = format!(
            "UPDATE refresh_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
             AND EXISTS (SELECT 1 FROM oauth_grants g \
                         WHERE g.id = refresh_tokens.grant_id AND g.revoked_at IS NULL) \
             RETURNING {REFRESH_COLUMNS}"
        );
        let old: Option<RefreshToken> = e
            .fetch(&sql, &[Arg::Int(now), Arg::Text(&self.old_hash)])
            .await?;
        if let Some(old) = old {
            insert_refresh(e, &self.new, &old.grant_id).await?;
            e.execute(
                "UPDATE oauth_grants SET last_used_at = $1 WHERE id = $2",
                &[Arg::Int(now), Arg::Text(&old.grant_id)],
            )
            .await?;
            return Ok(RefreshRotation::Rotated(Box::new(old)));
        }
        let used: Option<GrantId> = e
            .fetch(
                "SELECT grant_id FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL",
                &[Arg::Text(&self.old_hash)],
            )
            .await?;
        let Some(GrantId(grant_id)) = used else {
            return Ok(RefreshRotation::Invalid);
        };
        // RFC 9700 §4.14.2: a used refresh token presented again means one of two parties holds
        // a stolen copy; end the whole family.
        revoke_grant_family(e, &grant_id, now).await?;
        Ok(RefreshRotation::Reused { grant_id })
    }
}

/// `Store::record_security_event`.
pub(crate) struct RecordEvent(pub NewSecurityEvent);

impl WriteJob for RecordEvent {
    type Output = i64;
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(self, e: &mut E) -> Result<i64> {
        let ev = &self.0;
        let detail = to_json(&ev.detail)?;
        let id: Option<Id> = e
            .fetch(
                "INSERT INTO security_events \
                 (occurred_at, kind, org_id, user_id, client_id, grant_id, ip, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    Arg::Int(ev.occurred_at),
                    Arg::Text(&ev.kind),
                    Arg::OptText(ev.org_id.as_deref()),
                    Arg::OptText(ev.user_id.as_deref()),
                    Arg::OptText(ev.client_id.as_deref()),
                    Arg::OptText(ev.grant_id.as_deref()),
                    Arg::OptText(ev.ip.as_deref()),
                    Arg::Text(&detail),
                ],
            )
            .await?;
        id.map(|Id(id)| id).ok_or_else(|| {
            crate::StoreError::Internal("INSERT ... RETURNING returned no row".into())
        })
    }
}
