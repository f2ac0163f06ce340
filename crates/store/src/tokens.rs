//! Tokens: refresh tokens, their families, and revoked access tokens.

use std::sync::LazyLock;

use oauth_core::{Client, UnixSeconds};

use async_trait::async_trait;

use crate::clients::{client_joined_sql, CLIENT_COLUMNS};
use crate::engine::{self, Engine};
use crate::grants::revoke_grant_family;
use crate::shared::{joined, to_json, Arg, Cols, Exists, FromCols};
use crate::writes::{
    lock_live_grant, new_refresh_values, note_grant_use, Exec, Head, WithGrantUse, WriteJob,
};
use crate::TokenStore;
use crate::{AccessTokenRef, NewRefreshToken, RefreshRotation, RefreshToken, Result};

const REFRESH_COLUMNS: &str = "token_hash, grant_id, client_id, user_id, scopes, \
    resource, created_at, expires_at, used_at, revoked_at, family_id";

/// A row of [`REFRESH_COLUMNS`].
impl FromCols for RefreshToken {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(RefreshToken {
            token_hash: r.col("token_hash")?,
            grant_id: r.col("grant_id")?,
            client_id: r.col("client_id")?,
            user_id: r.col("user_id")?,
            scopes: r.json("scopes")?,
            resource: r.col("resource")?,
            created_at: r.col("created_at")?,
            expires_at: r.col("expires_at")?,
            used_at: r.col("used_at")?,
            revoked_at: r.col("revoked_at")?,
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

/// Which condition a verified access token's liveness needs: a token from a grant names its
/// family (or, from before families, its grant alone); a client's own token, neither.
#[derive(Clone, Copy)]
enum Liveness {
    Family,
    Grant,
    JtiOnly,
}

impl Liveness {
    /// The kind of `token`'s condition, and its parameters' values.
    fn of<'a>(token: &AccessTokenRef<'a>) -> (Liveness, Vec<Arg<'a>>) {
        match (token.family_id, token.grant_id) {
            (Some(family), _) => (Self::Family, vec![Arg::Text(token.jti), Arg::Text(family)]),
            (None, Some(grant)) => (Self::Grant, vec![Arg::Text(token.jti), Arg::Text(grant)]),
            (None, None) => (Self::JtiOnly, vec![Arg::Text(token.jti)]),
        }
    }

    /// The condition, with its parameters numbered from `$1`: the token's `jti` is not
    /// revoked, and its family and the family's grant (or its grant alone) are live. Each part
    /// is a primary-key lookup.
    fn condition(self) -> String {
        let jti = "NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)";
        match self {
            Self::Family => format!(
                "{jti} AND EXISTS (SELECT 1 FROM token_families f \
                 JOIN oauth_grants g ON g.id = f.grant_id \
                 WHERE f.id = $2 AND f.revoked_at IS NULL AND g.revoked_at IS NULL)"
            ),
            Self::Grant => format!(
                "{jti} AND EXISTS (SELECT 1 FROM oauth_grants \
                 WHERE id = $2 AND revoked_at IS NULL)"
            ),
            Self::JtiOnly => jti.to_owned(),
        }
    }

    /// How many parameters the condition has.
    fn parameters(self) -> usize {
        match self {
            Self::Family | Self::Grant => 2,
            Self::JtiOnly => 1,
        }
    }

    /// This kind's statements, written once: they run on every introspection and bearer check.
    fn statements(self) -> &'static LivenessStatements {
        static FAMILY: LazyLock<LivenessStatements> =
            LazyLock::new(|| LivenessStatements::of(Liveness::Family));
        static GRANT: LazyLock<LivenessStatements> =
            LazyLock::new(|| LivenessStatements::of(Liveness::Grant));
        static JTI_ONLY: LazyLock<LivenessStatements> =
            LazyLock::new(|| LivenessStatements::of(Liveness::JtiOnly));
        match self {
            Self::Family => &FAMILY,
            Self::Grant => &GRANT,
            Self::JtiOnly => &JTI_ONLY,
        }
    }
}

/// The statements of the liveness reads for one kind of condition.
struct LivenessStatements {
    /// `access_token_live`.
    live: String,
    /// `client_and_token_state`: the client `$n+1` with the condition's value.
    client_and_live: String,
}

impl LivenessStatements {
    fn of(kind: Liveness) -> Self {
        Self {
            live: format!("SELECT 1 AS one WHERE {}", kind.condition()),
            // Placeholders are numbered in order of first appearance (`shared`): the
            // condition's first, then the client id.
            client_and_live: format!(
                "SELECT {CLIENT_COLUMNS}, ({}) AS live FROM oauth_clients WHERE client_id = ${}",
                kind.condition(),
                kind.parameters() + 1
            ),
        }
    }
}

/// A client row and the token condition's value.
struct ClientAndLive(Client, bool);

impl FromCols for ClientAndLive {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(ClientAndLive(Client::from_cols(r)?, r.col("live")?))
    }
}

/// [`REFRESH_COLUMNS`] of the joined `rt`, renamed `rt_*` so that they do not meet the client's.
const JOINED_REFRESH_COLUMNS: &str = "rt.token_hash AS rt_token_hash, rt.grant_id AS rt_grant_id, \
    rt.client_id AS rt_client_id, rt.user_id AS rt_user_id, rt.scopes AS rt_scopes, \
    rt.resource AS rt_resource, rt.created_at AS rt_created_at, rt.expires_at AS rt_expires_at, \
    rt.used_at AS rt_used_at, rt.revoked_at AS rt_revoked_at, rt.family_id AS rt_family_id";

/// A client row and, when one has the hash asked for, a refresh token's.
struct ClientAndRefresh(Client, Option<RefreshToken>);

impl FromCols for ClientAndRefresh {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(ClientAndRefresh(
            Client::from_cols(r)?,
            joined(r, "rt_", "token_hash")?,
        ))
    }
}

#[async_trait]
impl<B: Engine> TokenStore for B {
    /// A point read.
    async fn live_token_family(&self, family_id: &str) -> Result<bool> {
        let sql = "SELECT 1 AS one FROM token_families f JOIN oauth_grants g ON g.id = f.grant_id \
                   WHERE f.id = $1 AND f.revoked_at IS NULL AND g.revoked_at IS NULL";
        Ok(self
            .point_read::<Exists>(sql, &[Arg::Text(family_id)])
            .await?
            .is_some())
    }

    /// A hot-path write.
    async fn revoke_access_token(
        &self,
        jti: &str,
        exp: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool> {
        self.write(RevokeAccessToken {
            jti: jti.to_owned(),
            exp,
            now,
        })
        .await
    }

    /// A point read.
    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool> {
        let sql = "SELECT 1 AS one FROM revoked_tokens WHERE jti = $1";
        Ok(self
            .point_read::<Exists>(sql, &[Arg::Text(jti)])
            .await?
            .is_some())
    }

    /// A point read.
    async fn access_token_live(&self, token: &AccessTokenRef<'_>) -> Result<bool> {
        let (kind, args) = Liveness::of(token);
        let sql = &kind.statements().live;
        Ok(self.point_read::<Exists>(sql, &args).await?.is_some())
    }

    /// A point read.
    async fn client_and_token_state(
        &self,
        client_id: &str,
        token: &AccessTokenRef<'_>,
    ) -> Result<Option<(Client, bool)>> {
        let (kind, mut args) = Liveness::of(token);
        args.push(Arg::Text(client_id));
        let sql = &kind.statements().client_and_live;
        Ok(self
            .point_read::<ClientAndLive>(sql, &args)
            .await?
            .map(|ClientAndLive(c, live)| (c, live)))
    }

    async fn purge_revoked_tokens(&self, now: UnixSeconds, limit: i64) -> Result<u64> {
        let sql = "DELETE FROM revoked_tokens WHERE jti IN \
                   (SELECT jti FROM revoked_tokens WHERE exp <= $1 LIMIT $2)";
        engine::execute(self, sql, &[Arg::Int(now), Arg::Int(limit)]).await
    }

    /// A hot-path write: one upsert that takes over an expired row and leaves a live one alone.
    async fn use_assertion_jti(
        &self,
        jti_hash: &str,
        expires_at: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool> {
        let sql = "INSERT INTO client_assertion_jtis (jti_hash, expires_at) VALUES ($1, $2) \
                   ON CONFLICT (jti_hash) DO UPDATE SET expires_at = excluded.expires_at \
                   WHERE client_assertion_jtis.expires_at <= $3";
        let args = [Arg::Text(jti_hash), Arg::Int(expires_at), Arg::Int(now)];
        Ok(engine::execute(self, sql, &args).await? == 1)
    }

    async fn purge_assertion_jtis(&self, now: UnixSeconds, limit: i64) -> Result<u64> {
        let sql = "DELETE FROM client_assertion_jtis WHERE jti_hash IN \
                   (SELECT jti_hash FROM client_assertion_jtis WHERE expires_at <= $1 LIMIT $2)";
        engine::execute(self, sql, &[Arg::Int(now), Arg::Int(limit)]).await
    }

    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> Result<()> {
        self.write(InsertRefresh(token.clone())).await
    }

    /// A point read.
    async fn client_and_refresh_token(
        &self,
        client_id: &str,
        token_hash: &str,
    ) -> Result<Option<(Client, Option<RefreshToken>)>> {
        let sql = client_joined_sql(
            JOINED_REFRESH_COLUMNS,
            "refresh_tokens rt ON rt.token_hash = $2",
        );
        let args = [Arg::Text(client_id), Arg::Text(token_hash)];
        Ok(self
            .point_read::<ClientAndRefresh>(&sql, &args)
            .await?
            .map(|ClientAndRefresh(c, t)| (c, t)))
    }

    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        let sql = format!("SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = $1");
        self.point_read(&sql, &[Arg::Text(token_hash)]).await
    }

    /// A hot-path write.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &NewRefreshToken,
        now: UnixSeconds,
    ) -> Result<RefreshRotation> {
        let job = RotateRefresh {
            old_hash: old_hash.to_owned(),
            new: new.clone(),
            now,
            for_update: Self::DIALECT.for_update,
        };
        if Self::DIALECT.writes_in_with {
            let at_once = RotateAtOnce {
                old_hash: job.old_hash.clone(),
                new: job.new.clone(),
                now,
                for_share: Self::DIALECT.for_share,
            };
            if let Some(old) = self.write(at_once).await? {
                return Ok(RefreshRotation::Rotated(Box::new(old)));
            }
        }
        // Not rotated in one statement (unknown, used, expired or revoked, or SQLite): the
        // transaction tells which, and deals with reuse.
        self.write(job).await
    }

    /// A hot-path write.
    async fn revoke_refresh_token_family(
        &self,
        token_hash: &str,
        now: UnixSeconds,
    ) -> Result<bool> {
        self.write(RevokeRefreshFamily {
            token_hash: token_hash.to_owned(),
            now,
            for_update: Self::DIALECT.for_update,
        })
        .await
    }

    /// One statement at a time.
    async fn purge_refresh_tokens(&self, now: UnixSeconds, limit: i64) -> Result<u64> {
        let n = engine::execute(
            self,
            "DELETE FROM refresh_tokens WHERE token_hash IN \
                 (SELECT token_hash FROM refresh_tokens WHERE expires_at <= $1 LIMIT $2)",
            &[Arg::Int(now), Arg::Int(limit)],
        )
        .await?;
        // A day past its absolute lifetime, a family's last access token has expired.
        let families = engine::execute(
            self,
            "DELETE FROM token_families WHERE id IN \
                 (SELECT id FROM token_families WHERE expires_at <= $1 LIMIT $2)",
            &[Arg::Int(now - 86_400), Arg::Int(limit)],
        )
        .await?;
        Ok(n + families)
    }
}
struct InsertRefresh(NewRefreshToken);

impl WriteJob for InsertRefresh {
    type Output = ();
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<()> {
        insert_refresh(e, &self.0, &self.0.grant_id).await
    }
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

/// Revokes one token family: the family row (which every access token of it checks) and its
/// refresh tokens. A code or token from before families (`None`) takes its whole grant.
pub(crate) async fn revoke_token_family<E: Exec>(
    e: &mut E,
    family_id: Option<&str>,
    grant_id: &str,
    now: UnixSeconds,
) -> Result<bool> {
    let Some(family_id) = family_id else {
        revoke_grant_family(e, grant_id, now).await?;
        return Ok(true);
    };
    let family = e
        .execute(
            "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            &[Arg::Int(now), Arg::Text(family_id)],
        )
        .await?;
    let tokens = e
        .execute(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
            &[Arg::Int(now), Arg::Text(family_id)],
        )
        .await?;
    Ok(family + tokens > 0)
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

/// `Store::revoke_refresh_token_family`: whether this call revoked the family of a known
/// token (or, for a token from before families, its grant).
struct RevokeRefreshFamily {
    token_hash: String,
    now: UnixSeconds,
    for_update: &'static str,
}

impl WriteJob for RevokeRefreshFamily {
    type Output = bool;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<bool> {
        let Some(head) = e
            .fetch::<Head>(
                "SELECT grant_id, client_id, family_id FROM refresh_tokens WHERE token_hash = $1",
                &[Arg::Text(&self.token_hash)],
            )
            .await?
        else {
            return Ok(false);
        };
        // A revoked grant has taken its families with it already.
        if !lock_live_grant(e, &head.grant_id, self.for_update).await? {
            return Ok(false);
        }
        revoke_token_family(e, head.family_id.as_deref(), &head.grant_id, self.now).await
    }
}

/// `Store::revoke_access_token`: whether this call added the revocation.
struct RevokeAccessToken {
    jti: String,
    exp: UnixSeconds,
    now: UnixSeconds,
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

/// A live refresh token's rotation as one PostgreSQL statement (`Dialect::writes_in_with`):
/// what [`RotateRefresh`] does when the token is live, in one round trip instead of eight. The
/// statement takes the dialect's `for_share` lock on the token's grant first (the scalar
/// subquery runs before the token's row is updated: the lock order of [`lock_live_grant`]),
/// then marks the old token used only if it, its family and its grant are live, and stores the
/// new token; [`note_grant_use`] follows. `None` when nothing was rotated; nothing has changed
/// then, and [`RotateRefresh`] says why.
struct RotateAtOnce {
    old_hash: String,
    new: NewRefreshToken,
    now: UnixSeconds,
    for_share: &'static str,
}

impl WriteJob for RotateAtOnce {
    type Output = Option<RefreshToken>;
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<Option<RefreshToken>> {
        let sql = format!(
            "WITH old AS (\
               UPDATE refresh_tokens SET used_at = $1 \
               WHERE token_hash = $2 AND (used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
                 AND grant_id = (SELECT g.id FROM oauth_grants g \
                   WHERE g.id = (SELECT t.grant_id FROM refresh_tokens t WHERE t.token_hash = $2) \
                     AND g.revoked_at IS NULL{for_share}) \
                 AND (family_id IS NULL OR EXISTS (SELECT 1 FROM token_families f \
                   WHERE f.id = refresh_tokens.family_id \
                     AND (f.revoked_at IS NULL AND f.expires_at > $1) IS TRUE))) IS TRUE \
               RETURNING {REFRESH_COLUMNS}), \
             new AS (\
               INSERT INTO refresh_tokens (token_hash, grant_id, client_id, user_id, scopes, \
                 resource, created_at, expires_at, family_id) \
               SELECT $3, old.grant_id, $4, $5, $6, $7, $8, \
                 LEAST($9, COALESCE((SELECT f.expires_at FROM token_families f \
                   WHERE f.id = old.family_id), $9)), old.family_id \
               FROM old) \
             SELECT {REFRESH_COLUMNS}, (SELECT g.last_used_at FROM oauth_grants g \
               WHERE g.id = old.grant_id) AS grant_last_used_at FROM old",
            for_share = self.for_share,
        );
        let new = &self.new;
        let scopes = to_json(&new.scopes)?;
        let mut args = vec![Arg::Int(self.now), Arg::Text(&self.old_hash)];
        args.extend(new_refresh_values(new, &scopes));
        let rotated: Option<WithGrantUse<RefreshToken>> = e.fetch(&sql, &args).await?;
        let Some(WithGrantUse(old, last_used)) = rotated else {
            return Ok(None);
        };
        note_grant_use(e, &old.grant_id, last_used, self.now).await;
        Ok(Some(old))
    }
}

/// `Store::rotate_refresh_token`.
struct RotateRefresh {
    old_hash: String,
    new: NewRefreshToken,
    now: UnixSeconds,
    for_update: &'static str,
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
             WHERE token_hash = $2 AND (used_at IS NULL AND revoked_at IS NULL AND expires_at > $1) IS TRUE \
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
        // Only while it has not expired: an expired token could not be rotated by anyone, and the
        // purge deletes it once expired, so reuse detection must not hang on the purge's timing.
        let used: Option<Head> = e
            .fetch(
                "SELECT grant_id, client_id, family_id FROM refresh_tokens \
                 WHERE token_hash = $1 AND (used_at IS NOT NULL AND expires_at > $2) IS TRUE",
                &[Arg::Text(&self.old_hash), Arg::Int(now)],
            )
            .await?;
        let Some(used) = used else {
            return Ok(RefreshRotation::Invalid);
        };
        // RFC 9700 §4.14.2: a used refresh token presented again means one of two parties holds
        // a stolen copy; end its family (the user's other authorizations of the client stand).
        let revoked =
            revoke_token_family(e, used.family_id.as_deref(), &used.grant_id, now).await?;
        Ok(RefreshRotation::Reused {
            grant_id: used.grant_id,
            revoked,
        })
    }
}
