//! Authorization: consent requests, grants and authorization codes.

use oauth_core::{Client, PageSpec, UnixSeconds};
use oauth_wire::GrantType;

use std::sync::Arc;

use async_trait::async_trait;

use crate::audit::{event_args, insert_event, NEW_EVENT_COLUMNS};
use crate::clients::{client_joined_sql, CLIENT_COLUMNS};
use crate::engine::{self, Engine};
use crate::shared::{joined, to_json, Arg, Cols, FromCols};
use crate::tokens::{insert_refresh, revoke_grant_refresh_tokens, revoke_token_family};
use crate::writes::{
    lock_live_grant, new_refresh_values, note_grant_use, Exec, Head, WithGrantUse, WriteJob,
};
use crate::GrantStore;
use crate::{
    Approval, AuthorizationCode, CodeDecision, CodeExchange, CodeRedemption, ConsentRequest, Grant,
    NewTokenFamily, Page, Result,
};

const CONSENT_COLUMNS: &str = "token_hash, user_id, client_id, redirect_uri, scopes, \
    state, code_challenge, code_challenge_method, resource, created_at, expires_at";

const GRANT_COLUMNS: &str = "id, user_id, client_id, installation, scopes, resources, created_at, \
    updated_at, last_used_at, revoked_at";

const CODE_COLUMNS: &str = "code_hash, grant_id, client_id, user_id, redirect_uri, \
    scopes, code_challenge, code_challenge_method, resource, created_at, expires_at, family_id";

/// [`CODE_COLUMNS`] of the joined `ac`, renamed `ac_*` so that they do not meet the client's.
const JOINED_CODE_COLUMNS: &str = "ac.code_hash AS ac_code_hash, ac.grant_id AS ac_grant_id, \
    ac.client_id AS ac_client_id, ac.user_id AS ac_user_id, ac.redirect_uri AS ac_redirect_uri, \
    ac.scopes AS ac_scopes, ac.code_challenge AS ac_code_challenge, \
    ac.code_challenge_method AS ac_code_challenge_method, ac.resource AS ac_resource, \
    ac.created_at AS ac_created_at, ac.expires_at AS ac_expires_at, ac.family_id AS ac_family_id";

/// [`CONSENT_COLUMNS`] of `consent_requests r`, renamed `r_{column}` (beside a client's).
const JOINED_CONSENT_COLUMNS: &str = "r.token_hash AS r_token_hash, r.user_id AS r_user_id, \
    r.client_id AS r_client_id, r.redirect_uri AS r_redirect_uri, r.scopes AS r_scopes, \
    r.state AS r_state, r.code_challenge AS r_code_challenge, \
    r.code_challenge_method AS r_code_challenge_method, r.resource AS r_resource, \
    r.created_at AS r_created_at, r.expires_at AS r_expires_at";

/// A consent request and its client, read together.
struct ConsentAndClient(Option<ConsentRequest>, Client);

impl FromCols for ConsentAndClient {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        // The client's columns come first in the row.
        let client = Client::from_cols(r)?;
        Ok(ConsentAndClient(joined(r, "r_", "token_hash")?, client))
    }
}

/// A client row and, when an unused code has the hash asked for, that code's.
struct ClientAndCode(Client, Option<AuthorizationCode>);

impl FromCols for ClientAndCode {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(ClientAndCode(
            Client::from_cols(r)?,
            joined(r, "ac_", "code_hash")?,
        ))
    }
}

/// `a` followed by the values of `b` it does not have yet, in order.
fn union(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = a.to_vec();
    for v in b {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

/// A row of [`GRANT_COLUMNS`].
impl FromCols for Grant {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(Grant {
            id: r.col("id")?,
            user_id: r.col("user_id")?,
            client_id: r.col("client_id")?,
            installation: r.col("installation")?,
            scopes: r.json("scopes")?,
            resources: r.json("resources")?,
            created_at: r.col("created_at")?,
            updated_at: r.col("updated_at")?,
            last_used_at: r.col("last_used_at")?,
            revoked_at: r.col("revoked_at")?,
        })
    }
}

/// A row of [`CONSENT_COLUMNS`].
impl FromCols for ConsentRequest {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(ConsentRequest {
            token_hash: r.col("token_hash")?,
            user_id: r.col("user_id")?,
            client_id: r.col("client_id")?,
            redirect_uri: r.col("redirect_uri")?,
            scopes: r.json("scopes")?,
            state: r.col("state")?,
            code_challenge: r.col("code_challenge")?,
            code_challenge_method: r.col("code_challenge_method")?,
            resource: r.col("resource")?,
            created_at: r.col("created_at")?,
            expires_at: r.col("expires_at")?,
        })
    }
}

/// A row of [`CODE_COLUMNS`].
impl FromCols for AuthorizationCode {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(AuthorizationCode {
            code_hash: r.col("code_hash")?,
            grant_id: r.col("grant_id")?,
            client_id: r.col("client_id")?,
            user_id: r.col("user_id")?,
            redirect_uri: r.col("redirect_uri")?,
            scopes: r.json("scopes")?,
            code_challenge: r.col("code_challenge")?,
            code_challenge_method: r.col("code_challenge_method")?,
            resource: r.col("resource")?,
            created_at: r.col("created_at")?,
            expires_at: r.col("expires_at")?,
            family_id: r.col("family_id")?,
        })
    }
}

#[async_trait]
impl<B: Engine> GrantStore for B {
    /// A hot-path write.
    async fn create_consent(&self, c: &ConsentRequest) -> Result<()> {
        if Self::DIALECT.writes_in_with {
            return self.write(CreateConsentAtOnce(c.clone())).await;
        }
        self.write(CreateConsent(c.clone())).await
    }

    async fn get_consent(
        &self,
        token_hash: &str,
        user_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<ConsentRequest>> {
        let sql = format!(
            "SELECT {CONSENT_COLUMNS} FROM consent_requests \
             WHERE token_hash = $1 AND (user_id = $2 AND used_at IS NULL AND expires_at > $3) IS TRUE"
        );
        let args = [Arg::Text(token_hash), Arg::Text(user_id), Arg::Int(now)];
        self.point_read(&sql, &args).await
    }

    /// A point read.
    async fn get_consent_and_client(
        &self,
        token_hash: &str,
        user_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<(ConsentRequest, Client)>> {
        let sql = format!(
            "SELECT c.*, {JOINED_CONSENT_COLUMNS} FROM consent_requests r \
             JOIN (SELECT {CLIENT_COLUMNS} FROM oauth_clients) c ON c.client_id = r.client_id \
             WHERE r.token_hash = $1 \
               AND (r.user_id = $2 AND r.used_at IS NULL AND r.expires_at > $3) IS TRUE"
        );
        let args = [Arg::Text(token_hash), Arg::Text(user_id), Arg::Int(now)];
        let read: Option<ConsentAndClient> = self.point_read(&sql, &args).await?;
        Ok(read.and_then(|ConsentAndClient(consent, client)| Some((consent?, client))))
    }

    async fn consume_consent(
        &self,
        token_hash: &str,
        user_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<ConsentRequest>> {
        let args = [Arg::Int(now), Arg::Text(token_hash), Arg::Text(user_id)];
        engine::execute_returning(self, &take_consent_sql(), &args).await
    }

    /// A hot-path write.
    async fn approve_consent(
        &self,
        token_hash: &str,
        user_id: &str,
        a: &Approval,
    ) -> Result<Option<(ConsentRequest, Grant, AuthorizationCode)>> {
        if let (true, Some(pending)) = (Self::DIALECT.writes_in_with, &a.pending) {
            let at_once = ApproveAtOnce {
                token_hash: token_hash.to_owned(),
                user_id: user_id.to_owned(),
                pending: pending.clone(),
                approval: a.clone(),
                for_share: Self::DIALECT.for_share,
                for_key_share: Self::DIALECT.for_key_share,
            };
            if let Some(approved) = self.write(at_once).await? {
                return Ok(Some(approved));
            }
        }
        // Not approved in one statement (no live grant covers the request yet, or the request
        // is gone): the transaction creates or widens the grant, or finds nothing to approve.
        self.write(ApproveConsent {
            token_hash: token_hash.to_owned(),
            user_id: user_id.to_owned(),
            approval: a.clone(),
            for_update: Self::DIALECT.for_update,
            for_key_share: Self::DIALECT.for_key_share,
        })
        .await
    }

    /// The exchange's hot-path write, with every code
    /// burned.
    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        now: UnixSeconds,
    ) -> Result<CodeRedemption> {
        let burn: Decide = Box::new(|_: &AuthorizationCode| CodeDecision::Reject);
        let exchange = ExchangeCode {
            code_hash: code_hash.to_owned(),
            read: None,
            client_id: None,
            family: None,
            now,
            decide: burn,
            for_update: Self::DIALECT.for_update,
        };
        Ok(match self.write(exchange).await? {
            CodeExchange::Exchanged(code) | CodeExchange::Rejected(code) => {
                CodeRedemption::Redeemed(code)
            }
            CodeExchange::AlreadyUsed { grant_id, .. }
            | CodeExchange::WrongClient { grant_id, .. } => {
                CodeRedemption::AlreadyUsed { grant_id }
            }
            CodeExchange::Invalid => CodeRedemption::Invalid,
        })
    }

    /// A hot-path write.
    async fn exchange_authorization_code(
        &self,
        code_hash: &str,
        client_id: &str,
        family: &NewTokenFamily,
        now: UnixSeconds,
        decide: Decide,
    ) -> Result<CodeExchange> {
        exchange(self, code_hash, None, client_id, family, now, decide).await
    }

    /// A hot-path write.
    async fn exchange_unused_authorization_code(
        &self,
        code: &AuthorizationCode,
        client_id: &str,
        family: &NewTokenFamily,
        now: UnixSeconds,
        decide: Decide,
    ) -> Result<CodeExchange> {
        let read = Some(code.clone());
        exchange(self, &code.code_hash, read, client_id, family, now, decide).await
    }

    /// A point read.
    async fn client_and_unused_code(
        &self,
        client_id: &str,
        code_hash: &str,
    ) -> Result<Option<(Client, Option<AuthorizationCode>)>> {
        let sql = client_joined_sql(
            JOINED_CODE_COLUMNS,
            "authorization_codes ac ON ac.code_hash = $2 AND ac.used_at IS NULL",
        );
        let args = [Arg::Text(client_id), Arg::Text(code_hash)];
        Ok(self
            .point_read::<ClientAndCode>(&sql, &args)
            .await?
            .map(|ClientAndCode(c, code)| (c, code)))
    }

    async fn list_grants(&self, user_id: &str, page: PageSpec) -> Result<Page<Grant>> {
        let order = format!("created_at, {}, id", Self::DIALECT.insertion_order);
        let from_where = "oauth_grants WHERE user_id = $1 AND revoked_at IS NULL";
        let query = (GRANT_COLUMNS, from_where, order.as_str());
        engine::read_page(self, query, &[Arg::Text(user_id)], page).await
    }

    /// A point read.
    async fn get_user_grant(&self, user_id: &str, grant_id: &str) -> Result<Option<Grant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
        );
        self.point_read(&sql, &[Arg::Text(grant_id), Arg::Text(user_id)])
            .await
    }

    /// A point read.
    async fn find_client_grant(
        &self,
        user_id: &str,
        client_id: &str,
        installation: &str,
    ) -> Result<Option<Grant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grants \
             WHERE user_id = $1 AND client_id = $2 AND installation = $3 AND revoked_at IS NULL"
        );
        self.point_read(
            &sql,
            &[
                Arg::Text(user_id),
                Arg::Text(client_id),
                Arg::Text(installation),
            ],
        )
        .await
    }

    /// A hot-path write.
    async fn revoke_grant(
        &self,
        user_id: &str,
        grant_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<Grant>> {
        self.write(RevokeGrant {
            user_id: user_id.to_owned(),
            grant_id: grant_id.to_owned(),
            now,
        })
        .await
    }

    /// A point read.
    async fn live_grant(&self, grant_id: &str) -> Result<Option<Grant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE id = $1 AND revoked_at IS NULL"
        );
        self.point_read(&sql, &[Arg::Text(grant_id)]).await
    }

    /// One statement at a time.
    async fn purge_authorization(
        &self,
        now: UnixSeconds,
        forget_failures_before: UnixSeconds,
        limit: i64,
    ) -> Result<u64> {
        let mut total = 0;
        // Each statement deletes by primary key through a bounded sub-select, which
        // both engines accept (neither has a portable DELETE ... LIMIT).
        for (sql, cutoff) in [
            (
                "DELETE FROM sessions WHERE id_hash IN \
                 (SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM login_devices WHERE token_hash IN \
                 (SELECT token_hash FROM login_devices WHERE used_at <= $1 LIMIT $2)",
                now - crate::LOGIN_DEVICE_RETENTION_SECS,
            ),
            (
                "DELETE FROM consent_requests WHERE token_hash IN \
                 (SELECT token_hash FROM consent_requests WHERE expires_at <= $1 LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM authorization_codes WHERE code_hash IN \
                 (SELECT code_hash FROM authorization_codes WHERE expires_at <= $1 LIMIT $2)",
                now - USED_CODE_KEPT_SECS,
            ),
        ] {
            total += engine::execute(self, sql, &[Arg::Int(cutoff), Arg::Int(limit)]).await?;
        }
        total += engine::execute(
            self,
            "DELETE FROM login_failures WHERE at < $1",
            &[Arg::Int(forget_failures_before)],
        )
        .await?;
        Ok(total)
    }
}

/// `GrantStore::exchange_authorization_code`, with the code as the caller read it while it was
/// unused, if it did (`read`).
async fn exchange<B: Engine>(
    store: &B,
    code_hash: &str,
    read: Option<AuthorizationCode>,
    client_id: &str,
    family: &NewTokenFamily,
    now: UnixSeconds,
    decide: Decide,
) -> Result<CodeExchange> {
    let decide: Arc<dyn Fn(&AuthorizationCode) -> CodeDecision + Send + Sync> = Arc::from(decide);
    if B::DIALECT.writes_in_with {
        let at_once = ExchangeAtOnce {
            code_hash: code_hash.to_owned(),
            read: read.clone(),
            client_id: client_id.to_owned(),
            family: family.clone(),
            now,
            decide: Arc::clone(&decide),
            for_share: B::DIALECT.for_share,
        };
        if let Some(code) = store.write(at_once).await? {
            return Ok(CodeExchange::Exchanged(Box::new(code)));
        }
    }
    // Not exchanged in one statement (unknown, used, expired, another client's, rejected, its
    // grant revoked, or SQLite): the transaction tells which, and burns or revokes what the
    // rules say.
    store
        .write(ExchangeCode {
            code_hash: code_hash.to_owned(),
            read,
            client_id: Some(client_id.to_owned()),
            family: Some(family.clone()),
            now,
            decide: Box::new(move |code: &AuthorizationCode| decide(code)),
            for_update: B::DIALECT.for_update,
        })
        .await
}

/// The conditional update that makes a consent token single-use: only a live, unused request
/// of this user is marked, and only one caller gets the row back.
async fn take_consent<E: Exec>(
    e: &mut E,
    token_hash: &str,
    user_id: &str,
    now: UnixSeconds,
) -> Result<Option<ConsentRequest>> {
    let args = [Arg::Int(now), Arg::Text(token_hash), Arg::Text(user_id)];
    e.fetch(&take_consent_sql(), &args).await
}

/// Takes a live consent request (`$1` now, `$2` its token's hash, `$3` its user): deletes it
/// and returns it. (`used_at` is set only on rows of earlier versions, which marked a request
/// used instead.)
fn take_consent_sql() -> String {
    format!(
        "DELETE FROM consent_requests \
         WHERE (expires_at > $1) IS TRUE AND token_hash = $2 AND (user_id = $3 AND used_at IS NULL) IS TRUE \
         RETURNING {CONSENT_COLUMNS}"
    )
}

/// `Store::revoke_grant`: the user's live grant and everything hanging off it.
struct RevokeGrant {
    user_id: String,
    grant_id: String,
    now: UnixSeconds,
}

impl WriteJob for RevokeGrant {
    type Output = Option<Grant>;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<Option<Grant>> {
        let sql = format!(
            "UPDATE oauth_grants SET revoked_at = $1, updated_at = $1 \
             WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL RETURNING {GRANT_COLUMNS}"
        );
        let grant: Option<Grant> = e
            .fetch(
                &sql,
                &[
                    Arg::Int(self.now),
                    Arg::Text(&self.grant_id),
                    Arg::Text(&self.user_id),
                ],
            )
            .await?;
        if grant.is_some() {
            revoke_grant_dependents(e, &self.grant_id, self.now).await?;
        }
        Ok(grant)
    }
}

/// A consent request's columns ([`CONSENT_COLUMNS`]) as `$1` to `$11`.
fn consent_args<'a>(c: &'a ConsentRequest, scopes_json: &'a str) -> Vec<Arg<'a>> {
    vec![
        Arg::Text(&c.token_hash),
        Arg::Text(&c.user_id),
        Arg::Text(&c.client_id),
        Arg::Text(&c.redirect_uri),
        Arg::Text(scopes_json),
        Arg::OptText(c.state.as_deref()),
        Arg::OptText(c.code_challenge.as_deref()),
        Arg::OptText(c.code_challenge_method.as_deref()),
        Arg::OptText(c.resource.as_deref()),
        Arg::Int(c.created_at),
        Arg::Int(c.expires_at),
    ]
}

/// `Store::create_consent` as one PostgreSQL statement (`Dialect::writes_in_with`): the insert
/// and the bound of [`CreateConsent`] in one round trip. The `DELETE` does not see the row its
/// `WITH` inserts (one snapshot), so it keeps one request fewer of the others. The request's
/// client is locked first (the key share lock its foreign key takes anyway), in the order a deletion of the client
/// locks, then the user's row; when either is gone (the operator removed the user while the
/// authorization was read), nothing is written.
struct CreateConsentAtOnce(ConsentRequest);

impl WriteJob for CreateConsentAtOnce {
    type Output = ();
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<()> {
        let c = &self.0;
        let scopes = to_json(&c.scopes)?;
        // A first-party client's scopes as they are now bound the request (see
        // `CreateConsent`): it is not stored if one was taken away meanwhile.
        let sql = format!(
            "WITH k AS (SELECT client_id, origin, scopes FROM oauth_clients WHERE client_id = $3 \
               FOR KEY SHARE), \
             u AS (SELECT id FROM users WHERE id = $2 FOR KEY SHARE), \
             new AS (INSERT INTO consent_requests ({CONSENT_COLUMNS}) \
               SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM k, u \
               WHERE k.origin IN ('registration', 'metadata_document') \
                 OR $5::jsonb <@ k.scopes::jsonb) \
             DELETE FROM consent_requests WHERE user_id = $2 AND EXISTS (SELECT 1 FROM k) \
               AND (used_at IS NOT NULL OR token_hash NOT IN \
               (SELECT token_hash FROM consent_requests WHERE user_id = $2 AND used_at IS NULL \
                ORDER BY created_at DESC LIMIT $12))"
        );
        let mut args = consent_args(c, &scopes);
        args.push(Arg::Int(crate::MAX_CONSENTS_PER_USER - 1));
        e.execute(&sql, &args).await?;
        Ok(())
    }
}

/// Takes `removed` out of the scopes of every pending consent request of `client_id`; a request
/// left with none goes (it could no longer be made). Part of the client's edit, in its
/// transaction.
pub(crate) async fn narrow_pending_consents<E: Exec>(
    e: &mut E,
    client_id: &str,
    removed: &[&str],
) -> Result<()> {
    let sql = format!("SELECT {CONSENT_COLUMNS} FROM consent_requests WHERE client_id = $1");
    let pending: Vec<ConsentRequest> = e.fetch_all(&sql, &[Arg::Text(client_id)]).await?;
    for c in pending {
        if !c.scopes.iter().any(|s| removed.contains(&s.as_str())) {
            continue;
        }
        let kept: Vec<&String> = c
            .scopes
            .iter()
            .filter(|s| !removed.contains(&s.as_str()))
            .collect();
        if kept.is_empty() {
            e.execute(
                "DELETE FROM consent_requests WHERE token_hash = $1",
                &[Arg::Text(&c.token_hash)],
            )
            .await?;
        } else {
            let kept = to_json(&kept)?;
            e.execute(
                "UPDATE consent_requests SET scopes = $1 WHERE token_hash = $2",
                &[Arg::Text(&kept), Arg::Text(&c.token_hash)],
            )
            .await?;
        }
    }
    Ok(())
}

/// `Store::create_consent`.
struct CreateConsent(ConsentRequest);

impl WriteJob for CreateConsent {
    type Output = ();

    async fn run<E: Exec>(&self, e: &mut E) -> Result<()> {
        let c = &self.0;
        let scopes = to_json(&c.scopes)?;
        // The request was judged against the client as the authorization read it. A scope taken
        // from a first-party client since then is not in its scopes now, and the edit that took
        // it has already narrowed the pending requests: such a request is not stored (the
        // user starts again), or the page would hide a scope its approval grants once the scope
        // is given back. A third party's registered scope is no ceiling.
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = $1");
        let client: Option<Client> = e.fetch(&sql, &[Arg::Text(&c.client_id)]).await?;
        if client.is_some_and(|client| {
            !client.is_third_party() && !c.scopes.iter().all(|s| client.settings.scopes.contains(s))
        }) {
            return Ok(());
        }
        // Nothing is written for a client deleted meanwhile, nor for a user the operator
        // removed meanwhile (the foreign keys would refuse it).
        let sql = format!(
            "INSERT INTO consent_requests ({CONSENT_COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             WHERE EXISTS (SELECT 1 FROM oauth_clients WHERE client_id = $3) \
             AND EXISTS (SELECT 1 FROM users WHERE id = $2)"
        );
        e.execute(&sql, &consent_args(c, &scopes)).await?;
        // The user's pending requests beyond the bound, oldest first, go: opening authorization
        // after authorization (in tabs, or by a page that loops) cannot pile up rows. Rows an
        // earlier version marked used go too, and do not count.
        e.execute(
            "DELETE FROM consent_requests WHERE user_id = $1 AND (used_at IS NOT NULL OR token_hash NOT IN \
             (SELECT token_hash FROM consent_requests WHERE user_id = $1 AND used_at IS NULL \
              ORDER BY created_at DESC, token_hash = $2 DESC LIMIT $3))",
            &[
                Arg::Text(&c.user_id),
                Arg::Text(&c.token_hash),
                Arg::Int(crate::MAX_CONSENTS_PER_USER),
            ],
        )
        .await?;
        Ok(())
    }
}

/// Narrows `consent` to the scopes the client may still be granted (by the caller's judgement,
/// and among `client_scopes`, the client's scopes as stored when `Some`); with none left, `None`
/// (nothing is approved). Otherwise the request's resources as a list and its installation.
fn approvable(
    consent: &mut ConsentRequest,
    a: &Approval,
    client_scopes: Option<&[String]>,
) -> Option<(Vec<String>, String)> {
    consent.scopes = a.approved_scopes(&consent.scopes);
    if let Some(allowed) = client_scopes {
        consent.scopes.retain(|s| allowed.contains(s));
    }
    if consent.scopes.is_empty() {
        return None;
    }
    let resources = consent.resource.iter().cloned().collect();
    let installation = oauth_core::cimd::installation(&consent.client_id, &consent.redirect_uri);
    Some((resources, installation))
}

/// The code an approval of `consent` (narrowed) mints under grant `grant_id`.
fn approved_code(consent: &ConsentRequest, grant_id: &str, a: &Approval) -> AuthorizationCode {
    AuthorizationCode {
        family_id: None,
        code_hash: a.code_hash.clone(),
        grant_id: grant_id.to_owned(),
        client_id: consent.client_id.clone(),
        user_id: consent.user_id.clone(),
        redirect_uri: consent.redirect_uri.clone(),
        scopes: consent.scopes.clone(),
        code_challenge: consent.code_challenge.clone(),
        code_challenge_method: consent.code_challenge_method.clone(),
        resource: consent.resource.clone(),
        created_at: a.now,
        expires_at: a.code_expires_at,
    }
}

/// How long past its expiry a code is kept, so that its replay is still recognized (and ends
/// the family of its exchange): an hour.
const USED_CODE_KEPT_SECS: UnixSeconds = 3600;

/// `Store::approve_consent`.
struct ApproveConsent {
    token_hash: String,
    user_id: String,
    approval: Approval,
    /// The dialect's row lock for the grant (`Dialect::for_update`). Not the share lock of the
    /// exchange and rotation: an approval may widen the grant, and two approvals each holding a
    /// share lock and each waiting to update would deadlock.
    for_update: &'static str,
    /// The dialect's key share lock for the request's client (`Dialect::for_key_share`), taken
    /// before anything else: a deletion of the client locks the client and then the request
    /// and the grant, so the approval locks in that order too. The approval is decided on the
    /// client as this transaction reads it; an update that commits while it is being written is
    /// ordered after it (a share lock would hold the update off, but lets a stream of approvals
    /// of one popular client starve it).
    for_key_share: &'static str,
}

/// How many times an approval looks for the live grant of its installation before giving up:
/// each miss means a revocation committed between the insert that found a live grant and the
/// lock on it, so a second miss needs a second revocation within the same instants.
const GRANT_ATTEMPTS: usize = 3;

impl WriteJob for ApproveConsent {
    type Output = Option<(ConsentRequest, Grant, AuthorizationCode)>;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<Self::Output> {
        let a = &self.approval;
        let user_id = self.user_id.as_str();
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = \
             (SELECT client_id FROM consent_requests WHERE token_hash = $1){}",
            self.for_key_share
        );
        let client: Option<Client> = e.fetch(&sql, &[Arg::Text(&self.token_hash)]).await?;
        let Some(mut consent) = take_consent(e, &self.token_hash, user_id, a.now).await? else {
            return Ok(None);
        };
        // The client as it is now, not as the caller read it: a redirect URI removed meanwhile
        // is never sent a code (the request is used up all the same), and a scope removed
        // meanwhile is not granted.
        let Some(client) = client.filter(|c| c.client_id == consent.client_id) else {
            return Ok(None);
        };
        if !client.accepts_redirect_uri(&consent.redirect_uri) {
            return Ok(None);
        }
        // Nor is a client that may no longer use the code flow, or a request without a PKCE
        // challenge of a client that must now send one: its code could not be exchanged, and
        // no grant is made or widened for it.
        if !client.allows_grant(&GrantType::AuthorizationCode)
            || (client.requires_pkce() && consent.code_challenge.is_none())
        {
            return Ok(None);
        }
        // A first-party client's allowed scopes are the ceiling, read here; a third party's
        // registered scope is not (`Client::may_be_granted`), and what the catalogue opens to
        // third parties is already in the approval's grantable scopes.
        let ceiling = (!client.is_third_party()).then_some(client.settings.scopes.as_slice());
        let Some((resources, installation)) = approvable(&mut consent, a, ceiling) else {
            return Ok(None);
        };
        // Create the grant unless a live one exists for this installation (the partial unique
        // index decides, also against a concurrent approval), then lock and widen whichever is
        // live. On PostgreSQL a revocation can commit between the two statements (the insert
        // saw the live grant; the lock finds it revoked): then a new grant is made.
        let scopes_json = to_json(&consent.scopes)?;
        let resources_json = to_json(&resources)?;
        let mut live = None;
        for _ in 0..GRANT_ATTEMPTS {
            live = live_grant_for(
                e,
                &consent,
                &installation,
                a,
                [&scopes_json, &resources_json],
                self.for_update,
            )
            .await?;
            if live.is_some() {
                break;
            }
        }
        let Some(mut grant) = live else {
            return Err(crate::StoreError::Unavailable(
                "the grant was revoked under every approval attempt".into(),
            ));
        };
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
        let code = approved_code(&consent, &grant.id, a);
        let sql = "INSERT INTO authorization_codes (code_hash, grant_id, client_id, user_id, \
             redirect_uri, scopes, code_challenge, code_challenge_method, resource, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        e.execute(
            sql,
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
        if let Some(event) = &a.event {
            // The scopes approved, as narrowed here by the client as stored.
            let mut event = event.clone();
            if let Some(scopes) = event.detail.get_mut("scopes") {
                *scopes = serde_json::json!(consent.scopes);
            }
            insert_event(e, &event, Some(&grant.id)).await?;
        }
        Ok(Some((consent, grant, code)))
    }
}

/// Inserts a grant of `consent` for `installation` unless one is live (the partial unique
/// index decides), then reads and locks (`for_update`) the live one. `None` when a revocation
/// committed between the two statements.
async fn live_grant_for<E: Exec>(
    e: &mut E,
    consent: &ConsentRequest,
    installation: &str,
    a: &Approval,
    [scopes_json, resources_json]: [&str; 2],
    for_update: &str,
) -> Result<Option<Grant>> {
    e.execute(
        "INSERT INTO oauth_grants (id, user_id, client_id, installation, scopes, resources, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
         ON CONFLICT (user_id, client_id, installation) WHERE revoked_at IS NULL DO NOTHING",
        &[
            Arg::Text(&a.new_grant_id),
            Arg::Text(&consent.user_id),
            Arg::Text(&consent.client_id),
            Arg::Text(installation),
            Arg::Text(scopes_json),
            Arg::Text(resources_json),
            Arg::Int(a.now),
        ],
    )
    .await?;
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_grants \
         WHERE user_id = $1 AND client_id = $2 AND installation = $3 AND revoked_at IS NULL{for_update}"
    );
    let args = [
        Arg::Text(&consent.user_id),
        Arg::Text(&consent.client_id),
        Arg::Text(installation),
    ];
    e.fetch(&sql, &args).await
}

/// An approval under a live grant that already covers it, as one PostgreSQL statement
/// (`Dialect::writes_in_with`): what [`ApproveConsent`] does in that case, in one round trip
/// instead of six and with no transaction around it. The request's content comes from the
/// caller's earlier read (`Approval::pending`; a request never changes, it is only deleted),
/// so the grant can be looked up first: the statement takes the dialect's `for_share` lock on
/// the live grant of the request's installation if its scopes and resources already include the
/// request's, deletes the request only if that grant was found (and the request is still live,
/// this user's, and exactly as read), and inserts the code bound to both. The share lock makes a
/// revocation wait for the commit and then revoke the new code too, as it would after
/// [`ApproveConsent`]. The approval's security event is inserted by the same statement, for the
/// code it inserts. All of it only while the client, key-share-locked first, still has the request's
/// redirect URI exactly as registered, every approved scope and the code grant, and the request
/// has a PKCE challenge (a loopback URI on another port, a request without a challenge, or a
/// client changed meanwhile, falls through to [`ApproveConsent`], which judges the client as
/// stored). `None` when nothing was approved; nothing has changed then.
struct ApproveAtOnce {
    token_hash: String,
    user_id: String,
    pending: ConsentRequest,
    approval: Approval,
    /// The dialect's share lock on the grant.
    for_share: &'static str,
    /// The dialect's key share lock on the request's client, taken first, as in
    /// [`ApproveConsent`].
    for_key_share: &'static str,
}

impl WriteJob for ApproveAtOnce {
    type Output = Option<(ConsentRequest, Grant, AuthorizationCode)>;
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<Self::Output> {
        let a = &self.approval;
        // The request as stored, compared whole in the statement: a copy that differs from it
        // approves nothing here.
        let requested_json = to_json(&self.pending.scopes)?;
        let mut consent = self.pending.clone();
        // A request without a PKCE challenge is judged by [`ApproveConsent`], which reads the
        // client (whether it must now send one).
        if consent.user_id != self.user_id || consent.code_challenge.is_none() {
            return Ok(None);
        }
        // The client's scopes are checked by the statement.
        let Some((resources, installation)) = approvable(&mut consent, a, None) else {
            return Ok(None);
        };
        let scopes_json = to_json(&consent.scopes)?;
        let resources_json = to_json(&resources)?;
        let event_detail = self.approval.event.as_ref().map(|ev| to_json(&ev.detail));
        let event_detail = event_detail.transpose()?;
        let event = match (&self.approval.event, &event_detail) {
            (Some(ev), Some(detail)) => Some(event_args(ev, detail)),
            _ => None,
        };
        let event_cte = if event.is_some() {
            format!(
                ", ev AS (INSERT INTO security_events ({NEW_EVENT_COLUMNS}) \
                 SELECT $16, $17, $18, $19, $20, $21, $22, grant_id FROM code)"
            )
        } else {
            String::new()
        };
        let sql = format!(
            "WITH k AS (SELECT client_id FROM oauth_clients WHERE client_id = $2 \
               AND scopes::jsonb @> $4::jsonb \
               AND grant_types::jsonb @> '[\"authorization_code\"]'::jsonb \
               AND redirect_uris::jsonb @> jsonb_build_array($7::text){for_key_share}), \
             g AS (\
               SELECT {GRANT_COLUMNS} FROM oauth_grants \
               WHERE user_id = $1 AND client_id = $2 AND installation = $3 AND revoked_at IS NULL \
                 AND scopes::jsonb @> $4::jsonb AND resources::jsonb @> $5::jsonb \
                 AND EXISTS (SELECT 1 FROM k){for_share}), \
             c AS (\
               DELETE FROM consent_requests \
               WHERE token_hash = $6 AND (user_id = $1 AND client_id = $2 AND redirect_uri = $7 \
                 AND scopes = $14 AND state IS NOT DISTINCT FROM $15 \
                 AND code_challenge IS NOT DISTINCT FROM $10 \
                 AND code_challenge_method IS NOT DISTINCT FROM $11 \
                 AND resource IS NOT DISTINCT FROM $12 \
                 AND used_at IS NULL AND expires_at > $8) IS TRUE AND EXISTS (SELECT 1 FROM g) \
               RETURNING token_hash), \
             code AS (\
               INSERT INTO authorization_codes (code_hash, grant_id, client_id, user_id, \
                 redirect_uri, scopes, code_challenge, code_challenge_method, resource, \
                 created_at, expires_at) \
               SELECT $9, g.id, $2, $1, $7, $4, $10, $11, $12, $8, $13 FROM g, c \
               RETURNING grant_id){event_cte} \
             SELECT g.* FROM g JOIN code ON code.grant_id = g.id",
            for_share = self.for_share,
            for_key_share = self.for_key_share,
        );
        let mut args = vec![
            Arg::Text(&self.user_id),
            Arg::Text(&consent.client_id),
            Arg::Text(&installation),
            Arg::Text(&scopes_json),
            Arg::Text(&resources_json),
            Arg::Text(&self.token_hash),
            Arg::Text(&consent.redirect_uri),
            Arg::Int(a.now),
            Arg::Text(&a.code_hash),
            Arg::OptText(consent.code_challenge.as_deref()),
            Arg::OptText(consent.code_challenge_method.as_deref()),
            Arg::OptText(consent.resource.as_deref()),
            Arg::Int(a.code_expires_at),
            Arg::Text(&requested_json),
            Arg::OptText(consent.state.as_deref()),
        ];
        args.extend(event.into_iter().flatten());
        let Some(grant) = e.fetch::<Grant>(&sql, &args).await? else {
            return Ok(None);
        };
        let code = approved_code(&consent, &grant.id, a);
        Ok(Some((consent, grant, code)))
    }
}

/// The caller's verdict on a code being exchanged (`Store::exchange_authorization_code`).
/// `Fn`, not `FnOnce`: a PostgreSQL transaction aborted as a deadlock runs again.
pub type Decide = Box<dyn Fn(&AuthorizationCode) -> CodeDecision + Send + Sync>;

/// An accepted exchange of a live code as one PostgreSQL write (`Dialect::writes_in_with`):
/// what [`ExchangeCode`] does when the code is live, its client's and accepted, in two round
/// trips instead of eight and with no transaction around them. The code is read and judged
/// first (its content never changes; only `used_at` does); then one statement takes the
/// dialect's `for_share` lock on its grant (the scalar subquery runs before the code's row is
/// updated: the lock order of [`lock_live_grant`]), marks the code used only if it is still
/// unused and unexpired and its grant live, starts the token family and stores the refresh
/// token; [`note_grant_use`] follows. `None` when nothing was exchanged; nothing has changed
/// then, and [`ExchangeCode`] says why.
struct ExchangeAtOnce {
    code_hash: String,
    /// The code as the caller read it while unused (`GrantStore::client_and_unused_code`): then
    /// it is not read again here. Its content never changes; the statement checks its state.
    read: Option<AuthorizationCode>,
    client_id: String,
    family: NewTokenFamily,
    now: UnixSeconds,
    decide: Arc<dyn Fn(&AuthorizationCode) -> CodeDecision + Send + Sync>,
    for_share: &'static str,
}

impl WriteJob for ExchangeAtOnce {
    type Output = Option<AuthorizationCode>;
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<Option<AuthorizationCode>> {
        let now = self.now;
        let code: Option<AuthorizationCode> = match &self.read {
            Some(read) if read.code_hash == self.code_hash => {
                let live = read.client_id == self.client_id && read.expires_at > now;
                live.then(|| read.clone())
            }
            _ => {
                let sql = format!(
                    "SELECT {CODE_COLUMNS} FROM authorization_codes \
                     WHERE code_hash = $1 \
                       AND (client_id = $2 AND used_at IS NULL AND expires_at > $3) IS TRUE"
                );
                let args = [
                    Arg::Text(&self.code_hash),
                    Arg::Text(&self.client_id),
                    Arg::Int(now),
                ];
                e.fetch(&sql, &args).await?
            }
        };
        let Some(code) = code else {
            return Ok(None);
        };
        let CodeDecision::Accept { refresh_token } = (self.decide)(&code) else {
            return Ok(None);
        };
        let family = &self.family;
        let scopes;
        let mut args = vec![
            Arg::Int(now),
            Arg::Text(&family.id),
            Arg::Text(&self.code_hash),
            Arg::Text(&self.client_id),
            Arg::Int(family.expires_at),
        ];
        let refresh = match &refresh_token {
            Some(t) => {
                scopes = to_json(&t.scopes)?;
                args.extend(new_refresh_values(t, &scopes));
                ", refresh AS (\
                   INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scopes, \
                     resource, created_at, expires_at, family_id) \
                   SELECT $6, grant_id, $7, $8, $9, $10, $11, LEAST($12, $5), $2 FROM code)"
            }
            None => "",
        };
        let sql = format!(
            "WITH code AS (\
               UPDATE authorization_codes SET used_at = $1, family_id = $2 \
               WHERE code_hash = $3 AND (client_id = $4 AND used_at IS NULL AND expires_at > $1 \
                 AND grant_id = (SELECT g.id FROM oauth_grants g \
                   WHERE g.id = (SELECT c.grant_id FROM authorization_codes c WHERE c.code_hash = $3) \
                     AND g.revoked_at IS NULL{for_share})) IS TRUE \
               RETURNING {CODE_COLUMNS}), \
             family AS (\
               INSERT INTO token_families (id, grant_id, created_at, expires_at) \
               SELECT $2, grant_id, $1, $5 FROM code){refresh} \
             SELECT {CODE_COLUMNS}, (SELECT g.last_used_at FROM oauth_grants g \
               WHERE g.id = code.grant_id) AS grant_last_used_at FROM code",
            for_share = self.for_share,
        );
        let exchanged: Option<WithGrantUse<AuthorizationCode>> = e.fetch(&sql, &args).await?;
        let Some(WithGrantUse(code, last_used)) = exchanged else {
            return Ok(None);
        };
        note_grant_use(e, &code.grant_id, last_used, now).await;
        Ok(Some(code))
    }
}

/// `Store::exchange_authorization_code` (and, with no client, `redeem_authorization_code`).
struct ExchangeCode {
    code_hash: String,
    /// The code as the caller read it, if it did: the decision is asked of it first (else of
    /// the code as stored) and a [`CodeDecision::Refuse`] writes nothing.
    read: Option<AuthorizationCode>,
    /// The authenticated client; `None` checks no client.
    client_id: Option<String>,
    /// The family an accepted exchange starts; `None` starts none.
    family: Option<NewTokenFamily>,
    now: UnixSeconds,
    decide: Decide,
    for_update: &'static str,
}

impl WriteJob for ExchangeCode {
    type Output = CodeExchange;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<CodeExchange> {
        let now = self.now;
        // The code as the caller read it, unused (its client, grant and family never change);
        // else its head as stored.
        let read = self
            .read
            .as_ref()
            .filter(|read| read.code_hash == self.code_hash);
        let head = match read {
            Some(read) => Head {
                grant_id: read.grant_id.clone(),
                client_id: read.client_id.clone(),
                family_id: read.family_id.clone(),
            },
            None => {
                let head = e
                    .fetch::<Head>(
                        "SELECT grant_id, client_id, family_id FROM authorization_codes WHERE code_hash = $1",
                        &[Arg::Text(&self.code_hash)],
                    )
                    .await?;
                let Some(head) = head else {
                    return Ok(CodeExchange::Invalid);
                };
                head
            }
        };
        // Another client's code: refused before anything is written, so that whoever presents
        // a code they intercepted burns nothing of its owner's.
        if self
            .client_id
            .as_ref()
            .is_some_and(|c| *c != head.client_id)
        {
            return Ok(CodeExchange::WrongClient {
                issued_to: head.client_id,
                grant_id: head.grant_id,
            });
        }
        if !lock_live_grant(e, &head.grant_id, self.for_update).await? {
            return Ok(CodeExchange::Invalid);
        }
        // A request that nothing but its `client_id` ties to the code's client, and whose
        // verifier or redirect URI is wrong, changes nothing: the code stays its owner's.
        let live = match read {
            Some(read) => Some(read.clone()).filter(|read| read.expires_at > now),
            None => {
                let sql = format!(
                    "SELECT {CODE_COLUMNS} FROM authorization_codes \
                     WHERE code_hash = $1 AND (used_at IS NULL AND expires_at > $2) IS TRUE"
                );
                e.fetch(&sql, &[Arg::Text(&self.code_hash), Arg::Int(now)])
                    .await?
            }
        };
        if let Some(live) = live {
            if (self.decide)(&live) == CodeDecision::Refuse {
                return Ok(CodeExchange::Rejected(Box::new(live)));
            }
        }
        // The conditional update is the single-use rule: of two concurrent exchanges (on any
        // instance) only one finds `used_at IS NULL`; on PostgreSQL the second waited for the
        // grant lock above and re-checks here.
        let sql = format!(
            "UPDATE authorization_codes SET used_at = $1, family_id = $2 \
             WHERE code_hash = $3 AND (used_at IS NULL AND expires_at > $1) IS TRUE \
             RETURNING {CODE_COLUMNS}"
        );
        let code: Option<AuthorizationCode> = e
            .fetch(
                &sql,
                &[
                    Arg::Int(now),
                    Arg::OptText(self.family.as_ref().map(|f| f.id.as_str())),
                    Arg::Text(&self.code_hash),
                ],
            )
            .await?;
        if let Some(code) = code {
            return Ok(match (self.decide)(&code) {
                CodeDecision::Accept { refresh_token } => {
                    if let Some(family) = &self.family {
                        e.execute(
                            "INSERT INTO token_families (id, grant_id, created_at, expires_at) \
                             VALUES ($1, $2, $3, $4)",
                            &[
                                Arg::Text(&family.id),
                                Arg::Text(&code.grant_id),
                                Arg::Int(now),
                                Arg::Int(family.expires_at),
                            ],
                        )
                        .await?;
                    }
                    if let Some(token) = &refresh_token {
                        let mut token = token.clone();
                        if let Some(family) = &self.family {
                            token.family_id = Some(family.id.clone());
                            token.expires_at = token.expires_at.min(family.expires_at);
                        }
                        insert_refresh(e, &token, &code.grant_id).await?;
                    }
                    e.execute(
                        "UPDATE oauth_grants SET last_used_at = $1 WHERE id = $2",
                        &[Arg::Int(now), Arg::Text(&code.grant_id)],
                    )
                    .await?;
                    CodeExchange::Exchanged(Box::new(code))
                }
                CodeDecision::Reject | CodeDecision::Refuse => {
                    CodeExchange::Rejected(Box::new(code))
                }
            });
        }
        // A replay is recognized for [`USED_CODE_KEPT_SECS`] past the code's expiry, and the
        // purge keeps used codes that long: the answer never hangs on the purge's timing. It is
        // recognized once: a code already replayed is unknown.
        let sql = format!(
            "SELECT {CODE_COLUMNS} FROM authorization_codes \
             WHERE code_hash = $1 \
             AND (used_at IS NOT NULL AND expires_at > $2 AND replayed_at IS NULL) IS TRUE"
        );
        let used: Option<AuthorizationCode> = e
            .fetch(
                &sql,
                &[
                    Arg::Text(&self.code_hash),
                    Arg::Int(now - USED_CODE_KEPT_SECS),
                ],
            )
            .await?;
        let Some(used) = used else {
            return Ok(CodeExchange::Invalid);
        };
        // A replay that does not prove it comes from the code's client (a public client's
        // without the right verifier) revokes nothing: a leaked code is not enough to end the
        // user's tokens.
        if (self.decide)(&used) == CodeDecision::Refuse {
            return Ok(CodeExchange::Invalid);
        }
        // RFC 6749 §4.1.2: its own client presenting a used code again. Whoever holds the other
        // copy holds the tokens of the first exchange: end that family.
        let revoked =
            revoke_token_family(e, used.family_id.as_deref(), &used.grant_id, now).await?;
        // Detected once: presenting it again is an unknown code, and the replay is recorded
        // once per code however often its holder sends it.
        e.execute(
            "UPDATE authorization_codes SET replayed_at = $1 WHERE code_hash = $2",
            &[Arg::Int(now), Arg::Text(&self.code_hash)],
        )
        .await?;
        let user: Option<UserId> = e
            .fetch(
                "SELECT user_id FROM oauth_grants WHERE id = $1",
                &[Arg::Text(&used.grant_id)],
            )
            .await?;
        Ok(CodeExchange::AlreadyUsed {
            grant_id: used.grant_id,
            user_id: user.map(|UserId(u)| u).unwrap_or_default(),
            revoked,
        })
    }
}

/// One column, `user_id`.
struct UserId(String);

impl FromCols for UserId {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(UserId(r.col("user_id")?))
    }
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
