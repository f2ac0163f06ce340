//! Accounts: organizations, users, API keys, browser sessions and failed logins.

use oauth_core::UnixSeconds;

use crate::engine::Engine;
use crate::shared::{Arg, Cols, Count, FromCols};
use crate::writes::{Exec, WriteJob};
use crate::{ApiKey, LoginReservation, NewApiKey, NewSession, NewUser, Organization, Result, User};

const USER_COLUMNS: &str = "id, org_id, email, password_hash, created_at";

/// The advisory lock that serializes the failed-login counter of `key` (PostgreSQL): FNV-1a
/// over a label and the key, the same number on every instance.
fn login_lock_id(key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"oauth login_failures\0".iter().chain(key.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// A key's last use is recorded at most this often.
const LAST_USED_GRANULARITY: i64 = 60;

/// A row of `SELECT id, name, created_at FROM organizations`.
impl FromCols for Organization {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(Organization {
            id: r.col("id")?,
            name: r.col("name")?,
            created_at: r.col("created_at")?,
        })
    }
}

/// Inside an open transaction: the organization named `new.org_name` (created when
/// missing), then the user.
async fn insert_user<E: Exec>(e: &mut E, new: &NewUser) -> Result<(User, Organization)> {
    let existing: Option<Organization> = e
        .fetch(
            "SELECT id, name, created_at FROM organizations WHERE name = $1",
            &[Arg::Text(&new.org_name)],
        )
        .await?;
    let org = match existing {
        // No one joins the organization of third-party clients.
        Some(o) if o.id == oauth_core::client::THIRD_PARTY_ORG_ID => {
            return Err(crate::StoreError::Conflict(
                "that organization name is reserved".into(),
            ));
        }
        Some(o) => o,
        None => {
            e.execute(
                "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)",
                &[
                    Arg::Text(&new.new_org_id),
                    Arg::Text(&new.org_name),
                    Arg::Int(new.now),
                ],
            )
            .await?;
            Organization {
                id: new.new_org_id.clone(),
                name: new.org_name.clone(),
                created_at: new.now,
            }
        }
    };
    e.execute(
        "INSERT INTO users (id, org_id, email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[
            Arg::Text(&new.user_id),
            Arg::Text(&org.id),
            Arg::Text(&new.email),
            Arg::Text(&new.password_hash),
            Arg::Int(new.now),
        ],
    )
    .await?;
    let user = User {
        id: new.user_id.clone(),
        org_id: org.id.clone(),
        email: new.email.clone(),
        password_hash: new.password_hash.clone(),
        created_at: new.now,
    };
    Ok((user, org))
}

async fn insert_api_key<E: Exec>(e: &mut E, key: &NewApiKey) -> Result<ApiKey> {
    e.execute(
        "INSERT INTO api_keys (id, user_id, name, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[
            Arg::Text(&key.id),
            Arg::Text(&key.user_id),
            Arg::OptText(key.name.as_deref()),
            Arg::Text(&key.key_hash),
            Arg::Int(key.now),
        ],
    )
    .await?;
    Ok(ApiKey {
        id: key.id.clone(),
        user_id: key.user_id.clone(),
        name: key.name.clone(),
        created_at: key.now,
        last_used_at: None,
        revoked_at: None,
    })
}

/// `Store::create_user`: one write transaction on the pool.
pub(crate) async fn create_user<B: Engine>(b: &B, new: &NewUser) -> Result<(User, Organization)> {
    let mut tx = b.begin().await?;
    let out = insert_user(&mut tx, new).await?;
    B::commit(tx).await?;
    Ok(out)
}

/// `Store::bootstrap_admin`: one write transaction on the pool.
pub(crate) async fn bootstrap_admin<B: Engine>(
    b: &B,
    user: &NewUser,
    key: &NewApiKey,
) -> Result<bool> {
    let mut tx = b.begin().await?;
    let users = tx
        .fetch::<Count>("SELECT COUNT(*) AS n FROM users", &[])
        .await?
        .map_or(0, |c| c.0);
    let marked = tx
        .execute(
            "INSERT INTO server_state (key, value) VALUES ('bootstrap', $1) ON CONFLICT (key) DO NOTHING",
            &[Arg::Text(&user.now.to_string())],
        )
        .await?;
    if users > 0 || marked == 0 {
        B::rollback(tx).await?;
        return Ok(false);
    }
    insert_user(&mut tx, user).await?;
    insert_api_key(&mut tx, key).await?;
    B::commit(tx).await?;
    Ok(true)
}

/// `Store::find_user_by_email`, on the pool.
pub(crate) async fn find_user_by_email<B: Engine>(b: &B, email: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    b.acquire().await?.fetch(&sql, &[Arg::Text(email)]).await
}

/// `Store::get_user`: a point read.
pub(crate) async fn get_user<B: Engine>(b: &B, user_id: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    b.point_read(&sql, &[Arg::Text(user_id)]).await
}

/// `Store::get_organization`, on the pool.
pub(crate) async fn get_organization<B: Engine>(
    b: &B,
    org_id: &str,
) -> Result<Option<Organization>> {
    let sql = "SELECT id, name, created_at FROM organizations WHERE id = $1";
    b.acquire().await?.fetch(sql, &[Arg::Text(org_id)]).await
}

/// `Store::find_organization_by_name`, on the pool.
pub(crate) async fn find_organization_by_name<B: Engine>(
    b: &B,
    name: &str,
) -> Result<Option<Organization>> {
    let sql = "SELECT id, name, created_at FROM organizations WHERE name = $1";
    b.acquire().await?.fetch(sql, &[Arg::Text(name)]).await
}

/// `Store::organization_owner`, on the pool.
pub(crate) async fn organization_owner<B: Engine>(b: &B, org_id: &str) -> Result<Option<User>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 ORDER BY created_at, {} LIMIT 1",
        B::DIALECT.insertion_order
    );
    b.acquire().await?.fetch(&sql, &[Arg::Text(org_id)]).await
}

/// `Store::create_api_key`, on the pool.
pub(crate) async fn create_api_key<B: Engine>(b: &B, key: &NewApiKey) -> Result<ApiKey> {
    insert_api_key(&mut b.acquire().await?, key).await
}

/// `Store::authenticate_api_key`: a point read, and a hot-path write at most once a minute.
pub(crate) async fn authenticate_api_key<B: Engine>(
    b: &B,
    key_hash: &str,
    now: UnixSeconds,
) -> Result<Option<(ApiKey, User)>> {
    let sql = "SELECT k.id, k.user_id, k.name, k.created_at, k.last_used_at, k.revoked_at, \
               u.org_id, u.email, u.password_hash, u.created_at AS user_created_at \
               FROM api_keys k JOIN users u ON u.id = k.user_id \
               WHERE k.key_hash = $1 AND k.revoked_at IS NULL";
    let Some(KeyAndUser(key, user)) = b.point_read(sql, &[Arg::Text(key_hash)]).await? else {
        return Ok(None);
    };
    if key
        .last_used_at
        .is_none_or(|t| t <= now - LAST_USED_GRANULARITY)
    {
        b.write(TouchApiKey {
            key_id: key.id.clone(),
            now,
            not_after: now - LAST_USED_GRANULARITY,
        })
        .await?;
    }
    Ok(Some((key, user)))
}

/// `Store::revoke_api_key`, on the pool.
pub(crate) async fn revoke_api_key<B: Engine>(
    b: &B,
    key_id: &str,
    now: UnixSeconds,
) -> Result<bool> {
    let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
    let n = (b.acquire().await?)
        .execute(sql, &[Arg::Int(now), Arg::Text(key_id)])
        .await?;
    Ok(n == 1)
}

/// `Store::create_session`, on the pool.
pub(crate) async fn create_session<B: Engine>(b: &B, session: &NewSession) -> Result<()> {
    let sql =
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
    let args = [
        Arg::Text(&session.id_hash),
        Arg::Text(&session.user_id),
        Arg::Int(session.now),
        Arg::Int(session.expires_at),
    ];
    b.acquire().await?.execute(sql, &args).await?;
    Ok(())
}

/// `Store::session_user`, on the pool.
pub(crate) async fn session_user<B: Engine>(
    b: &B,
    id_hash: &str,
    now: UnixSeconds,
) -> Result<Option<User>> {
    let sql = "SELECT u.id, u.org_id, u.email, u.password_hash, u.created_at \
               FROM sessions s JOIN users u ON u.id = s.user_id \
               WHERE s.id_hash = $1 AND s.expires_at > $2";
    (b.acquire().await?)
        .fetch(sql, &[Arg::Text(id_hash), Arg::Int(now)])
        .await
}

/// `Store::delete_session`, on the pool.
pub(crate) async fn delete_session<B: Engine>(b: &B, id_hash: &str) -> Result<bool> {
    let sql = "DELETE FROM sessions WHERE id_hash = $1";
    Ok(b.acquire()
        .await?
        .execute(sql, &[Arg::Text(id_hash)])
        .await?
        == 1)
}

/// `Store::change_password`: the new hash, only if `old_hash` is still the stored one, and every
/// other session of the user deleted, in one transaction.
pub(crate) async fn change_password<B: Engine>(
    b: &B,
    user_id: &str,
    old_hash: &str,
    new_hash: &str,
    keep_session: &str,
) -> Result<Option<u64>> {
    let mut tx = b.begin().await?;
    let changed = tx
        .execute(
            "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3",
            &[Arg::Text(new_hash), Arg::Text(user_id), Arg::Text(old_hash)],
        )
        .await?;
    if changed != 1 {
        B::rollback(tx).await?;
        return Ok(None);
    }
    let ended = tx
        .execute(
            "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2",
            &[Arg::Text(user_id), Arg::Text(keep_session)],
        )
        .await?;
    B::commit(tx).await?;
    Ok(Some(ended))
}

/// `Store::delete_other_sessions`, on the pool.
pub(crate) async fn delete_other_sessions<B: Engine>(
    b: &B,
    user_id: &str,
    keep_session: &str,
) -> Result<u64> {
    let sql = "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2";
    b.acquire()
        .await?
        .execute(sql, &[Arg::Text(user_id), Arg::Text(keep_session)])
        .await
}

/// `Store::record_login_failure`: one write transaction on the pool.
pub(crate) async fn record_login_failure<B: Engine>(
    b: &B,
    keys: &[String],
    now: UnixSeconds,
    forget_before: UnixSeconds,
) -> Result<()> {
    let mut tx = b.begin().await?;
    for key in keys {
        tx.execute(
            "DELETE FROM login_failures WHERE key = $1 AND at < $2",
            &[Arg::Text(key), Arg::Int(forget_before)],
        )
        .await?;
        tx.execute(
            "INSERT INTO login_failures (key, at) VALUES ($1, $2)",
            &[Arg::Text(key), Arg::Int(now)],
        )
        .await?;
    }
    B::commit(tx).await
}

/// `Store::login_failures`, on the pool.
pub(crate) async fn login_failures<B: Engine>(b: &B, key: &str, since: UnixSeconds) -> Result<u64> {
    let sql = "SELECT COUNT(*) AS n FROM login_failures WHERE key = $1 AND at >= $2";
    let n = (b.acquire().await?)
        .fetch::<Count>(sql, &[Arg::Text(key), Arg::Int(since)])
        .await?
        .map_or(0, |c| c.0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// `Store::clear_login_failures`, on the pool.
pub(crate) async fn clear_login_failures<B: Engine>(b: &B, key: &str) -> Result<()> {
    let sql = "DELETE FROM login_failures WHERE key = $1";
    b.acquire().await?.execute(sql, &[Arg::Text(key)]).await?;
    Ok(())
}

/// `Store::reserve_login_attempt`: one write transaction on the pool, serialized per key.
pub(crate) async fn reserve_login_attempt<B: Engine>(
    b: &B,
    keys: &[(String, u64)],
    now: UnixSeconds,
    since: UnixSeconds,
) -> Result<LoginReservation> {
    let d = B::DIALECT;
    let mut tx = b.begin().await?;
    if !d.lock_key.is_empty() {
        // In one order, so that two attempts sharing keys never wait for each
        // other crosswise.
        let mut locks: Vec<i64> = keys.iter().map(|(k, _)| login_lock_id(k)).collect();
        locks.sort_unstable();
        locks.dedup();
        for id in locks {
            tx.execute(d.lock_key, &[Arg::Int(id)]).await?;
        }
    }
    for (i, (key, limit)) in keys.iter().enumerate() {
        tx.execute(
            "DELETE FROM login_failures WHERE key = $1 AND at < $2",
            &[Arg::Text(key), Arg::Int(since)],
        )
        .await?;
        let n = tx
            .fetch::<Count>(
                "SELECT COUNT(*) AS n FROM login_failures WHERE key = $1",
                &[Arg::Text(key)],
            )
            .await?
            .map_or(0, |c| c.0);
        if u64::try_from(n).unwrap_or(0) >= *limit {
            B::rollback(tx).await?;
            return Ok(LoginReservation::Limited(i));
        }
    }
    for (key, _) in keys {
        tx.execute(
            "INSERT INTO login_failures (key, at) VALUES ($1, $2)",
            &[Arg::Text(key), Arg::Int(now)],
        )
        .await?;
    }
    B::commit(tx).await?;
    Ok(LoginReservation::Reserved)
}

/// `Store::release_login_attempt`, on the pool: one statement per key.
pub(crate) async fn release_login_attempt<B: Engine>(
    b: &B,
    keys: &[String],
    at: UnixSeconds,
) -> Result<()> {
    let id = B::DIALECT.row_id;
    let sql = format!(
        "DELETE FROM login_failures WHERE {id} IN \
         (SELECT {id} FROM login_failures WHERE key = $1 AND at = $2 LIMIT 1)"
    );
    for key in keys {
        (b.acquire().await?)
            .execute(&sql, &[Arg::Text(key), Arg::Int(at)])
            .await?;
    }
    Ok(())
}

/// An API key and its user, as `authenticate_api_key` selects them (the user's `created_at` as
/// `user_created_at`).
struct KeyAndUser(ApiKey, User);

impl FromCols for KeyAndUser {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        let key = ApiKey {
            id: r.col("id")?,
            user_id: r.col("user_id")?,
            name: r.col("name")?,
            created_at: r.col("created_at")?,
            last_used_at: r.col("last_used_at")?,
            revoked_at: r.col("revoked_at")?,
        };
        let user = User {
            id: key.user_id.clone(),
            org_id: r.col("org_id")?,
            email: r.col("email")?,
            password_hash: r.col("password_hash")?,
            created_at: r.col("user_created_at")?,
        };
        Ok(KeyAndUser(key, user))
    }
}

/// A row of [`USER_COLUMNS`].
impl FromCols for User {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(User {
            id: r.col("id")?,
            org_id: r.col("org_id")?,
            email: r.col("email")?,
            password_hash: r.col("password_hash")?,
            created_at: r.col("created_at")?,
        })
    }
}

/// An API key's last use, recorded by `Store::authenticate_api_key` unless it was recorded
/// after `not_after` already.
struct TouchApiKey {
    key_id: String,
    now: UnixSeconds,
    not_after: UnixSeconds,
}

impl WriteJob for TouchApiKey {
    type Output = ();
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<()> {
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
