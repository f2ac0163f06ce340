//! Accounts: organizations, users, API keys, browser sessions and failed logins.

use oauth_core::{PageSpec, UnixSeconds};

use async_trait::async_trait;

use crate::engine::{self, Engine};
use crate::shared::{Arg, Cols, Count, FromCols};
use crate::writes::{Exec, WriteJob};
use crate::AccountStore;
use crate::{
    ApiKey, DeletedUser, LoginReservation, NewApiKey, NewLoginDevice, NewSecurityEvent, NewSession,
    NewUser, Organization, Page, PasswordChange, Result, User,
};

const USER_COLUMNS: &str = "id, org_id, email, password_hash, created_at";
const API_KEY_COLUMNS: &str = "id, user_id, name, created_at, last_used_at, revoked_at";

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
    // Created unless the name is taken; a creation of the same name committing meanwhile is
    // waited for (PostgreSQL) and then read, so concurrent creations of one new organization
    // all land in it rather than failing on its unique name.
    e.execute(
        "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
        &[
            Arg::Text(&new.new_org_id),
            Arg::Text(&new.org_name),
            Arg::Int(new.now),
        ],
    )
    .await?;
    let org: Option<Organization> = e
        .fetch(
            "SELECT id, name, created_at FROM organizations WHERE name = $1",
            &[Arg::Text(&new.org_name)],
        )
        .await?;
    let Some(org) = org else {
        return Err(crate::StoreError::Internal(
            "the organization was neither created nor found".into(),
        ));
    };
    // No one joins the organization of third-party clients; nor anyone else's organization
    // unless asked to.
    if org.id == oauth_core::client::THIRD_PARTY_ORG_ID {
        return Err(crate::StoreError::Conflict(
            "that organization name is reserved".into(),
        ));
    }
    if org.id != new.new_org_id && !new.join_existing_org {
        return Err(crate::StoreError::Conflict(
            "an organization of that name exists".into(),
        ));
    }
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

#[async_trait]
impl<B: Engine> AccountStore for B {
    /// One write transaction.
    async fn create_user(&self, new: NewUser) -> Result<(User, Organization)> {
        self.write(CreateUser(new)).await
    }

    /// One write transaction.
    async fn bootstrap_admin(&self, user: NewUser, key: NewApiKey) -> Result<bool> {
        self.write(BootstrapAdmin(user, key)).await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        self.point_read(&sql, &[Arg::Text(email)]).await
    }

    /// A point read.
    async fn get_user(&self, user_id: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        self.point_read(&sql, &[Arg::Text(user_id)]).await
    }

    async fn find_organization_by_name(&self, name: &str) -> Result<Option<Organization>> {
        let sql = "SELECT id, name, created_at FROM organizations WHERE name = $1";
        self.point_read(sql, &[Arg::Text(name)]).await
    }

    async fn list_users(&self, org_id: Option<&str>, page: PageSpec) -> Result<Page<User>> {
        let (from_where, args) = match org_id {
            Some(org) => ("users WHERE org_id = $1", vec![Arg::Text(org)]),
            None => ("users", Vec::new()),
        };
        let order = "created_at, id";
        engine::read_page(self, (USER_COLUMNS, from_where, order), &args, page).await
    }

    async fn list_api_keys(&self, user_id: &str, page: PageSpec) -> Result<Page<ApiKey>> {
        let query = (
            API_KEY_COLUMNS,
            "api_keys WHERE user_id = $1",
            "created_at, id",
        );
        engine::read_page(self, query, &[Arg::Text(user_id)], page).await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey> {
        self.write(CreateApiKey(key)).await
    }

    /// A point read, and a hot-path write at most once a minute.
    async fn authenticate_api_key(
        &self,
        key_hash: &str,
        now: UnixSeconds,
    ) -> Result<Option<(ApiKey, User)>> {
        let sql = "SELECT k.id, k.user_id, k.name, k.created_at, k.last_used_at, k.revoked_at, \
                   u.org_id, u.email, u.password_hash, u.created_at AS user_created_at \
                   FROM api_keys k JOIN users u ON u.id = k.user_id \
                   WHERE k.key_hash = $1 AND k.revoked_at IS NULL";
        let Some(KeyAndUser(key, user)) = self.point_read(sql, &[Arg::Text(key_hash)]).await?
        else {
            return Ok(None);
        };
        if key
            .last_used_at
            .is_none_or(|t| t <= now - LAST_USED_GRANULARITY)
        {
            self.write(TouchApiKey {
                key_id: key.id.clone(),
                now,
                not_after: now - LAST_USED_GRANULARITY,
            })
            .await?;
        }
        Ok(Some((key, user)))
    }

    async fn revoke_api_key(&self, key_id: &str, now: UnixSeconds) -> Result<bool> {
        let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        let n = engine::execute(self, sql, &[Arg::Int(now), Arg::Text(key_id)]).await?;
        Ok(n == 1)
    }

    /// One statement: the user's row is read with the dialect's share lock, which a password
    /// change's update waits for (and, once that has committed, no longer matches).
    async fn create_session(&self, session: NewSession) -> Result<bool> {
        let sql = format!(
            "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) \
             SELECT $1, $2, $3, $4 FROM users WHERE id = $2 AND password_hash = $5{}",
            Self::DIALECT.for_share
        );
        let args = [
            Arg::Text(&session.id_hash),
            Arg::Text(&session.user_id),
            Arg::Int(session.now),
            Arg::Int(session.expires_at),
            Arg::Text(&session.password_hash),
        ];
        Ok(engine::execute(self, &sql, &args).await? == 1)
    }

    async fn session_user(&self, id_hash: &str, now: UnixSeconds) -> Result<Option<User>> {
        let sql = "SELECT u.id, u.org_id, u.email, u.password_hash, u.created_at \
                   FROM sessions s JOIN users u ON u.id = s.user_id \
                   WHERE s.id_hash = $1 AND (s.expires_at > $2) IS TRUE";
        self.point_read(sql, &[Arg::Text(id_hash), Arg::Int(now)])
            .await
    }

    async fn delete_session(&self, id_hash: &str) -> Result<bool> {
        let sql = "DELETE FROM sessions WHERE id_hash = $1";
        Ok(engine::execute(self, sql, &[Arg::Text(id_hash)]).await? == 1)
    }

    /// One write transaction.
    async fn change_password(&self, change: &PasswordChange) -> Result<Option<u64>> {
        self.write(ChangePassword(change.clone())).await
    }

    /// One write transaction.
    async fn delete_user(
        &self,
        user_id: &str,
        forget_failures: Option<&str>,
        event: Option<NewSecurityEvent>,
    ) -> Result<Option<DeletedUser>> {
        self.write(DeleteUser {
            user_id: user_id.to_owned(),
            forget_failures: forget_failures.map(str::to_owned),
            event,
        })
        .await
    }

    /// One write transaction.
    async fn delete_other_sessions(
        &self,
        user_id: &str,
        keep_session: &str,
        keep_device: &str,
    ) -> Result<u64> {
        self.write(DeleteOtherSessions {
            user_id: user_id.to_owned(),
            keep_session: keep_session.to_owned(),
            keep_device: keep_device.to_owned(),
        })
        .await
    }

    /// One write transaction, serialized per user.
    async fn remember_login_device(&self, device: NewLoginDevice, keep: i64) -> Result<bool> {
        self.write(RememberLoginDevice {
            device,
            keep,
            lock_key: Self::DIALECT.lock_key,
            for_share: Self::DIALECT.for_share,
        })
        .await
    }

    async fn login_device_email(
        &self,
        token_hash: &str,
        used_after: UnixSeconds,
    ) -> Result<Option<String>> {
        let sql = "SELECT u.email FROM login_devices d JOIN users u ON u.id = d.user_id \
                   WHERE d.token_hash = $1 AND (d.used_at > $2) IS TRUE";
        let found = self
            .point_read::<Email>(sql, &[Arg::Text(token_hash), Arg::Int(used_after)])
            .await?;
        Ok(found.map(|e| e.0))
    }

    async fn login_device_used(&self, token_hash: &str, now: UnixSeconds) -> Result<()> {
        let sql = "UPDATE login_devices SET used_at = $1 WHERE token_hash = $2 AND used_at < $1";
        engine::execute(self, sql, &[Arg::Int(now), Arg::Text(token_hash)]).await?;
        Ok(())
    }

    async fn login_failures(&self, key: &str, since: UnixSeconds) -> Result<u64> {
        let sql = "SELECT COUNT(*) AS n FROM login_failures WHERE key = $1 AND at >= $2";
        let n = self
            .point_read::<Count>(sql, &[Arg::Text(key), Arg::Int(since)])
            .await?
            .map_or(0, |c| c.0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        let sql = "DELETE FROM login_failures WHERE key = $1";
        engine::execute(self, sql, &[Arg::Text(key)]).await?;
        Ok(())
    }

    /// One write transaction, serialized per key.
    async fn reserve_login_attempt(
        &self,
        keys: &[(String, u64)],
        now: UnixSeconds,
        since: UnixSeconds,
    ) -> Result<LoginReservation> {
        self.write(ReserveLogin {
            keys: keys.to_vec(),
            now,
            since,
            lock_key: Self::DIALECT.lock_key,
        })
        .await
    }

    /// One statement per key.
    async fn release_login_attempt(&self, keys: &[String], at: UnixSeconds) -> Result<()> {
        let id = Self::DIALECT.row_id;
        let sql = format!(
            "DELETE FROM login_failures WHERE {id} IN \
             (SELECT {id} FROM login_failures WHERE key = $1 AND at = $2 LIMIT 1)"
        );
        for key in keys {
            engine::execute(self, &sql, &[Arg::Text(key), Arg::Int(at)]).await?;
        }
        Ok(())
    }
}
struct CreateUser(NewUser);

impl WriteJob for CreateUser {
    type Output = (User, Organization);

    async fn run<E: Exec>(&self, e: &mut E) -> Result<(User, Organization)> {
        insert_user(e, &self.0).await
    }
}

/// The first user and their API key, unless the database has a user or was bootstrapped
/// before (`server_state` remembers it).
struct BootstrapAdmin(NewUser, NewApiKey);

impl WriteJob for BootstrapAdmin {
    type Output = bool;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<bool> {
        let BootstrapAdmin(user, key) = self;
        let users = e
            .fetch::<Count>("SELECT COUNT(*) AS n FROM users", &[])
            .await?
            .map_or(0, |c| c.0);
        if users > 0 {
            return Ok(false);
        }
        let marked = e
            .execute(
                "INSERT INTO server_state (key, value) VALUES ('bootstrap', $1) ON CONFLICT (key) DO NOTHING",
                &[Arg::Text(&user.now.to_string())],
            )
            .await?;
        if marked == 0 {
            return Ok(false);
        }
        insert_user(e, user).await?;
        insert_api_key(e, key).await?;
        Ok(true)
    }
}

struct CreateApiKey(NewApiKey);

impl WriteJob for CreateApiKey {
    type Output = ApiKey;
    const SINGLE_STATEMENT: bool = true;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<ApiKey> {
        insert_api_key(e, &self.0).await
    }
}

struct ReserveLogin {
    keys: Vec<(String, u64)>,
    now: UnixSeconds,
    since: UnixSeconds,
    lock_key: &'static str,
}

impl WriteJob for ReserveLogin {
    type Output = LoginReservation;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<LoginReservation> {
        if !self.lock_key.is_empty() {
            // In one order, so that two attempts sharing keys never wait for each
            // other crosswise.
            let mut locks: Vec<i64> = self.keys.iter().map(|(k, _)| login_lock_id(k)).collect();
            locks.sort_unstable();
            locks.dedup();
            for id in locks {
                e.execute(self.lock_key, &[Arg::Int(id)]).await?;
            }
        }
        for (i, (key, limit)) in self.keys.iter().enumerate() {
            e.execute(
                "DELETE FROM login_failures WHERE key = $1 AND at < $2",
                &[Arg::Text(key), Arg::Int(self.since)],
            )
            .await?;
            let n = e
                .fetch::<Count>(
                    "SELECT COUNT(*) AS n FROM login_failures WHERE key = $1",
                    &[Arg::Text(key)],
                )
                .await?
                .map_or(0, |c| c.0);
            if u64::try_from(n).unwrap_or(0) >= *limit {
                // What was deleted above had expired anyway.
                return Ok(LoginReservation::Limited(i));
            }
        }
        for (key, _) in &self.keys {
            e.execute(
                "INSERT INTO login_failures (key, at) VALUES ($1, $2)",
                &[Arg::Text(key), Arg::Int(self.now)],
            )
            .await?;
        }
        Ok(LoginReservation::Reserved)
    }
}

/// Every session of user `$1` but the one whose cookie hash is `$2`.
const DELETE_OTHER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2";

/// `AccountStore::change_password`: the new hash, only over the old one, and the user's other
/// sessions ended with it.
struct ChangePassword(PasswordChange);

impl WriteJob for ChangePassword {
    type Output = Option<u64>;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<Option<u64>> {
        let c = &self.0;
        let args = [
            Arg::Text(&c.new_hash),
            Arg::Text(&c.user_id),
            Arg::Text(&c.old_hash),
            Arg::Text(&c.keep_session),
        ];
        let changed = if c.replacement.is_some() {
            let sql = "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3 \
                       AND EXISTS (SELECT 1 FROM sessions WHERE id_hash = $4 AND user_id = $2)";
            e.execute(sql, &args).await?
        } else {
            let sql = "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3";
            e.execute(sql, &args[..3]).await?
        };
        if changed != 1 {
            return Ok(None);
        }
        let others = DeleteOtherSessions {
            user_id: c.user_id.clone(),
            keep_session: c.keep_session.clone(),
            keep_device: c.keep_device.clone(),
        };
        let ended = others.run(e).await?;
        if let Some(new) = &c.replacement {
            let gone = e
                .execute(
                    "DELETE FROM sessions WHERE id_hash = $1 AND user_id = $2",
                    &[Arg::Text(&c.keep_session), Arg::Text(&c.user_id)],
                )
                .await?;
            if gone != 1 {
                // A sign-out ended the session between the check and here (PostgreSQL): the
                // whole change is undone, as if it had come a moment later.
                return Err(crate::StoreError::Conflict(
                    "the session that made the password change ended meanwhile".into(),
                ));
            }
            e.execute(
                "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
                &[
                    Arg::Text(&new.id_hash),
                    Arg::Text(&c.user_id),
                    Arg::Int(new.now),
                    Arg::Int(new.expires_at),
                ],
            )
            .await?;
        }
        if let Some(key) = &c.forget_failures {
            e.execute(
                "DELETE FROM login_failures WHERE key = $1",
                &[Arg::Text(key)],
            )
            .await?;
        }
        if let Some(event) = &c.event {
            let mut event = event.clone();
            if let Some(d) = event.detail.as_object_mut() {
                d.insert("other_sessions_ended".into(), ended.into());
            }
            crate::audit::insert_event(e, &event, None).await?;
        }
        Ok(Some(ended))
    }
}

/// `AccountStore::delete_user`: what is counted is deleted first, the rest goes with the user's
/// row (`ON DELETE CASCADE`).
struct DeleteUser {
    user_id: String,
    forget_failures: Option<String>,
    event: Option<NewSecurityEvent>,
}

impl WriteJob for DeleteUser {
    type Output = Option<DeletedUser>;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<Option<DeletedUser>> {
        let user = [Arg::Text(&self.user_id)];
        let deleted = DeletedUser {
            sessions: e
                .execute("DELETE FROM sessions WHERE user_id = $1", &user)
                .await?,
            api_keys: e
                .execute(
                    "DELETE FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL",
                    &user,
                )
                .await?,
            grants: e
                .execute(
                    "DELETE FROM oauth_grants WHERE user_id = $1 AND revoked_at IS NULL",
                    &user,
                )
                .await?,
            clients_created: e
                .fetch::<Count>(
                    "SELECT COUNT(*) AS n FROM oauth_clients WHERE user_id = $1",
                    &user,
                )
                .await?
                .map_or(0, |c| u64::try_from(c.0).unwrap_or(0)),
        };
        if e.execute("DELETE FROM users WHERE id = $1", &user).await? != 1 {
            // No such user: the deletes above found nothing of theirs either.
            return Ok(None);
        }
        if let Some(key) = &self.forget_failures {
            e.execute(
                "DELETE FROM login_failures WHERE key = $1",
                &[Arg::Text(key)],
            )
            .await?;
        }
        if let Some(event) = &self.event {
            let mut event = event.clone();
            if let Some(d) = event.detail.as_object_mut() {
                d.insert("sessions_ended".into(), deleted.sessions.into());
                d.insert("api_keys_revoked".into(), deleted.api_keys.into());
                d.insert("grants_revoked".into(), deleted.grants.into());
                d.insert("clients_created".into(), deleted.clients_created.into());
            }
            crate::audit::insert_event(e, &event, None).await?;
        }
        Ok(Some(deleted))
    }
}

/// Every session and login device of a user but the ones kept: how many sessions ended.
struct DeleteOtherSessions {
    user_id: String,
    keep_session: String,
    keep_device: String,
}

impl WriteJob for DeleteOtherSessions {
    type Output = u64;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<u64> {
        let args = [Arg::Text(&self.user_id), Arg::Text(&self.keep_session)];
        let ended = e.execute(DELETE_OTHER_SESSIONS, &args).await?;
        e.execute(
            "DELETE FROM login_devices WHERE user_id = $1 AND token_hash <> $2",
            &[Arg::Text(&self.user_id), Arg::Text(&self.keep_device)],
        )
        .await?;
        Ok(ended)
    }
}

/// A login device, and the user's devices beyond the newest `keep` gone.
struct RememberLoginDevice {
    device: NewLoginDevice,
    keep: i64,
    lock_key: &'static str,
    /// The dialect's share lock on the user's row, as in `create_session`.
    for_share: &'static str,
}

impl WriteJob for RememberLoginDevice {
    type Output = bool;

    async fn run<E: Exec>(&self, e: &mut E) -> Result<bool> {
        let d = &self.device;
        if !self.lock_key.is_empty() {
            // One user's sign-ins take turns here: two at once would each keep their own new
            // device and delete beyond the cap without seeing the other's, leaving one too many.
            let id = login_lock_id(&format!("devices of {}", d.user_id));
            e.execute(self.lock_key, &[Arg::Int(id)]).await?;
        }
        // Only while the password checked is still the user's: a password change forgets
        // every other device, and one remembered by a sign-in under way would escape it.
        let inserted = e
            .execute(
                &format!(
                    "INSERT INTO login_devices (token_hash, user_id, created_at, used_at) \
                     SELECT $1, $2, $3, $3 FROM users WHERE id = $2 AND password_hash = $4{}",
                    self.for_share
                ),
                &[
                    Arg::Text(&d.token_hash),
                    Arg::Text(&d.user_id),
                    Arg::Int(d.now),
                    Arg::Text(&d.password_hash),
                ],
            )
            .await?;
        if inserted != 1 {
            return Ok(false);
        }
        // The new device always stays (others of the same second may sort either way).
        e.execute(
            "DELETE FROM login_devices WHERE user_id = $1 AND token_hash <> $2 \
             AND token_hash NOT IN (SELECT token_hash FROM login_devices \
             WHERE user_id = $1 AND token_hash <> $2 \
             ORDER BY used_at DESC, created_at DESC, token_hash LIMIT $3)",
            &[
                Arg::Text(&d.user_id),
                Arg::Text(&d.token_hash),
                Arg::Int(self.keep.saturating_sub(1).max(0)),
            ],
        )
        .await?;
        Ok(true)
    }
}

/// One column, `email`.
struct Email(String);

impl FromCols for Email {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(Email(r.col("email")?))
    }
}

/// An API key and its user, as `authenticate_api_key` selects them (the user's `created_at` as
/// `user_created_at`).
struct KeyAndUser(ApiKey, User);

impl FromCols for KeyAndUser {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        let key = ApiKey::from_cols(r)?;
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

/// A row of [`API_KEY_COLUMNS`].
impl FromCols for ApiKey {
    fn from_cols(r: &impl Cols) -> Result<Self> {
        Ok(ApiKey {
            id: r.col("id")?,
            user_id: r.col("user_id")?,
            name: r.col("name")?,
            created_at: r.col("created_at")?,
            last_used_at: r.col("last_used_at")?,
            revoked_at: r.col("revoked_at")?,
        })
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
