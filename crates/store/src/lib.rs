//! Storage for the OAuth server.
//!
//! One trait, [`Store`], whose operations are shaped like the domain ("create a user in this
//! organization", "authenticate this API key"), with two engines behind it: SQLite, the embedded
//! default, and PostgreSQL, for several server instances sharing one database. The URL scheme
//! picks the engine ([`connect`]). `Store` gathers one trait per area ([`AccountStore`],
//! [`ClientStore`], [`GrantStore`], [`TokenStore`], [`KeyStore`], [`AuditStore`]), so a caller
//! holds one `Arc<dyn Store>`. Both engines run the same SQL text (written with `$N`
//! placeholders, which both engines accept) from one implementation; the few places where the
//! dialects differ are named in [`Dialect`].
//!
//! Migrations for both engines are embedded in the binary and run by [`Store::migrate`].
//!
//! Concurrency rules live in the database: a conditional `UPDATE ... RETURNING` or a transaction,
//! never a process-local lock that a second server instance cannot see.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oauth_core::validation::ValidationErrors;
use oauth_core::{Client, PageSpec, UnixSeconds};
use oauth_wire::{ClientType, GrantType};

mod accounts;
mod audit;
mod clients;
mod coalesce;
mod engine;
mod grants;
mod keys;
mod migrations;
mod postgres;
mod shared;
mod sqlite;
mod sqlite_migrate;
mod sqlite_pin;
mod sqlite_read;
mod sqlite_write;
mod tokens;
mod writes;

pub use clients::{ClientEdit, EditedClient};
pub use grants::Decide;
pub use migrations::{applied_migrations, holds_server_tables, AppliedMigration};
pub use oauth_core::entity::{
    ApiKey, AuthorizationCode, ConsentRequest, Grant, Organization, RefreshToken, User,
};
pub use postgres::{PostgresRoute, PostgresStore, CHECK_IF_IDLE_FOR};
pub use sqlite::SqliteStore;

/// How many times the store runs a PostgreSQL write transaction that was aborted as a deadlock
/// or serialization failure before it gives up with [`StoreError::Unavailable`].
pub const CONTENTION_ATTEMPTS: u32 = 4;

/// What a storage operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (an email already taken, an id reused).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached right now; worth retrying later.
    #[error("database unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database refused a value it was given: text it cannot hold (a NUL byte on
    /// PostgreSQL), or a value too large for an index. The request's mistake, not the server's;
    /// the detail is the SQLSTATE (never the database's message, which may quote the value),
    /// logged, never shown to a caller.
    #[error("the database refused a value: {0}")]
    InvalidInput(String),
    /// Anything else: a bug or a corrupt row. Logged, never shown to a caller.
    #[error("storage error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            sqlx::Error::Database(db)
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some_and(|pg| {
                        is_unavailable_code(pg.code()) || is_contention_code(pg.code())
                    }) =>
            {
                StoreError::Unavailable(Box::new(e))
            }
            sqlx::Error::Database(db)
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some_and(|pg| is_invalid_input_code(pg.code())) =>
            {
                // The SQLSTATE alone: some of these messages quote the refused value, which is
                // the caller's input and may be anything.
                StoreError::InvalidInput(format!(
                    "SQLSTATE {}",
                    db.code().as_deref().unwrap_or("unknown")
                ))
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

/// PostgreSQL SQLSTATEs that say "not now" rather than "never": the connection broke (class
/// 08), the server is shutting down, restarting or terminated this session (57P01-57P03), or
/// has no connection slot left (53300). A retry later may succeed.
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// PostgreSQL aborted the transaction to break a deadlock (40P01) or a serialization conflict
/// (40001): running it again may well succeed, and the store does so a few times before it
/// answers [`StoreError::Unavailable`].
fn is_contention_code(code: &str) -> bool {
    matches!(code, "40P01" | "40001")
}

/// Is `e` a PostgreSQL deadlock or serialization failure (see [`is_contention_code`])?
pub(crate) fn is_contention(e: &StoreError) -> bool {
    let StoreError::Unavailable(source) = e else {
        return false;
    };
    match source.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| is_contention_code(pg.code())),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs that say "this value cannot be stored or compared", whatever the
/// database's state: a data exception (class 22: among them 22021, a NUL byte in text, and
/// 22P05, a character the encoding lacks) or a program limit (54000: an index row larger than
/// the index allows). Retrying the same request fails the same way.
fn is_invalid_input_code(code: &str) -> bool {
    code.starts_with("22") || code == "54000"
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Internal(format!("migration failed: {e}"))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A user to create, and the organization they join: the one with `org_name`, created with
/// `new_org_id` if no organization has that name yet.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: String,
    pub email: String,
    pub password_hash: String,
    pub org_name: String,
    pub new_org_id: String,
    /// Join the organization named `org_name` when there is one. When false, the name must be
    /// new: an organization of that name already there is a [`StoreError::Conflict`], so that
    /// a user meant to get an organization of their own never lands in someone else's.
    pub join_existing_org: bool,
    pub now: UnixSeconds,
}

/// An API key to store; `key_hash` is the SHA-256 of the key, the key itself is never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub key_hash: String,
    pub now: UnixSeconds,
}

/// The filters of `GET /oauth_clients`; `None` filters nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientFilter {
    pub client_type: Option<ClientType>,
    pub verified: Option<bool>,
    pub grant_type: Option<GrantType>,
    pub name: Option<String>,
    /// A substring of the name, ignoring the case of ASCII letters (`Dialect::name_contains`).
    pub name_contains: Option<String>,
    pub client_id: Option<String>,
}

/// One page of a list and the total count across pages.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// An access-token signing key as stored: the public JWK as JSON text, the private key sealed
/// by the server (this crate never sees it in the clear).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    pub alg: String,
    pub public_jwk: String,
    pub sealed_private_key: String,
    pub created_at: UnixSeconds,
    /// The key signs from this time on.
    pub active_from: UnixSeconds,
    /// `None` while current; otherwise when the last token it signed has expired.
    pub retire_after: Option<UnixSeconds>,
}

// --- authorization ---------------------------------------------------------------------------

/// A password change (`AccountStore::change_password`): the new hash is set only over
/// `old_hash`, and with it every session of the user but `keep_session` and every login device
/// but `keep_device` are deleted, all in one transaction.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    pub user_id: String,
    pub old_hash: String,
    pub new_hash: String,
    /// The cookie hash of the session that makes the change.
    pub keep_session: String,
    /// The device cookie hash of the browser that makes the change, or empty.
    pub keep_device: String,
    /// With a replacement, the change is made only while `keep_session` is live, and that
    /// session is swapped for the replacement: the changing browser gets a new session id, or
    /// nothing changes at all (a sign-out that ended it meanwhile wins).
    pub replacement: Option<NewSession>,
    /// The security event stored by the same write, so that a change is never without its
    /// event; its detail gets `other_sessions_ended`.
    pub event: Option<NewSecurityEvent>,
    /// A failed-login counter key (the account's) forgotten by the same write, as a sign-in
    /// forgets it: the operator's new password opens an account locked by guessing.
    pub forget_failures: Option<String>,
}

/// What removing a user ended ([`AccountStore::delete_user`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeletedUser {
    /// Browser sessions signed out.
    pub sessions: u64,
    /// API keys that were live (not revoked).
    pub api_keys: u64,
    /// Grants that were live: their codes, refresh tokens and access tokens end with them.
    pub grants: u64,
    /// Clients of the organization the user created: they stay with the organization, but a
    /// first-party client's client-credentials tokens act for no user from now on.
    pub clients_created: u64,
}

/// A signed-in browser session; only the hash of the cookie value is stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id_hash: String,
    pub user_id: String,
    /// The stored password hash the sign-in was checked against: the session is created only
    /// while it is still the user's, so a sign-in under way when the password changes gets none.
    pub password_hash: String,
    pub now: UnixSeconds,
    pub expires_at: UnixSeconds,
}

/// A browser that signed in (its device cookie; only the hash of the value is stored): its later
/// password attempts for the same account have a failure budget of their own.
#[derive(Debug, Clone)]
pub struct NewLoginDevice {
    pub token_hash: String,
    pub user_id: String,
    /// The stored password hash the sign-in was checked against, as for [`NewSession`].
    pub password_hash: String,
    pub now: UnixSeconds,
}

/// A login device unused for this long is deleted by the purge: no configured lifetime is
/// longer (a browser keeps a cookie 400 days at most).
pub const LOGIN_DEVICE_RETENTION_SECS: UnixSeconds = 400 * 86_400;

/// What [`AccountStore::reserve_login_attempt`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginReservation {
    /// A failure is recorded under every key, until the attempt gives it back.
    Reserved,
    /// The key at this index of those given had reached its limit; nothing was recorded.
    Limited(usize),
}

/// A token family to start with a code's exchange: the refresh and access tokens descending
/// from one authorization code. `expires_at` is its absolute lifetime: no refresh token of the
/// family outlives it, however often it rotates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTokenFamily {
    pub id: String,
    pub expires_at: UnixSeconds,
}

/// What [`GrantStore::approve_consent`] needs besides the consent token: the ids and the code it
/// mints.
#[derive(Debug, Clone)]
pub struct Approval {
    /// The id a new grant gets; unused when the user already has a live grant for the client.
    pub new_grant_id: String,
    pub code_hash: String,
    pub code_expires_at: UnixSeconds,
    pub now: UnixSeconds,
    /// The scopes the client may be granted now: the request's scopes outside these (removed
    /// from the client or the catalogue while the request was pending) are dropped. When none
    /// is left, nothing is approved (the request is used up all the same).
    pub grantable_scopes: Vec<String>,
    /// The request as the caller read it (`GrantStore::get_consent_and_client`), when it has: with it,
    /// PostgreSQL approves under a live grant that already covers the request in one statement.
    /// Only its content is used, never as proof that the request is still live.
    pub pending: Option<ConsentRequest>,
    /// The security event to store with the approval, in the same write (statement or
    /// transaction), so that approving costs one commit and one round trip, not two. Its
    /// `grant_id` becomes the grant the code is minted under, and a `scopes` member of its
    /// detail the scopes approved; nothing is stored when nothing is approved.
    pub event: Option<NewSecurityEvent>,
}

impl Approval {
    /// The scopes of `requested` this approval grants: those in `grantable_scopes`, in the
    /// request's order. Empty means nothing is approved.
    pub fn approved_scopes(&self, requested: &[String]) -> Vec<String> {
        requested
            .iter()
            .filter(|s| self.grantable_scopes.contains(s))
            .cloned()
            .collect()
    }
}

/// The outcome of [`GrantStore::redeem_authorization_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// The code was live and is now used; this call is the only one that will ever see this.
    Redeemed(Box<AuthorizationCode>),
    /// The code exists but was already used: RFC 6749 §4.1.2 says the tokens issued from it
    /// should be revoked (revoke `grant_id`).
    AlreadyUsed { grant_id: String },
    /// Unknown, expired, or its grant was revoked.
    Invalid,
}

/// The caller's verdict on a code it is exchanging, given inside the exchange's transaction
/// (see [`GrantStore::exchange_authorization_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeDecision {
    /// The client, redirect URI and verifier check out: issue, storing this refresh token (if
    /// any) in the same transaction as the code's use.
    Accept {
        refresh_token: Option<NewRefreshToken>,
    },
    /// The redirect URI or the verifier does not match, and the request was authenticated as
    /// the code's client: the code is burned all the same, and nothing is issued.
    Reject,
    /// The redirect URI or the verifier does not match, and nothing but the code's `client_id`
    /// says the request comes from the code's client (a public client): nothing is written. The
    /// code stays its owner's to exchange, and presenting a used one revokes nothing, so that
    /// whoever holds a leaked code without its verifier cannot spend it or end the user's
    /// tokens.
    Refuse,
}

/// The outcome of [`GrantStore::exchange_authorization_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeExchange {
    /// Accepted: the code is used, its token family started, the refresh token stored and the
    /// grant touched, together.
    Exchanged(Box<AuthorizationCode>),
    /// Rejected by the caller's decision: on [`CodeDecision::Reject`] the code is used and
    /// nothing else was written; on [`CodeDecision::Refuse`] nothing was written.
    Rejected(Box<AuthorizationCode>),
    /// The code was issued to another client: nothing was written (the code is not burned, so
    /// that presenting someone else's code costs its owner nothing).
    WrongClient { issued_to: String, grant_id: String },
    /// The code was already used and its own client presented it again, not refused by the
    /// decision (RFC 6749 §4.1.2): the
    /// token family its first exchange started has been revoked in the same transaction (for
    /// a code from before token families, the whole grant), and the replay noted on the code:
    /// this is answered once per code, and the code is unknown after it. `revoked` says whether this
    /// presentation revoked anything: false when the family was revoked already (the client
    /// revoked its refresh token, say) or the first exchange issued nothing.
    AlreadyUsed {
        grant_id: String,
        user_id: String,
        revoked: bool,
    },
    /// Unknown, expired, or its grant was revoked.
    Invalid,
}

// --- refresh tokens --------------------------------------------------------------------------

/// A refresh token to store (RFC 6749 §6); `token_hash` is the SHA-256 of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    pub created_at: UnixSeconds,
    /// Capped by the family's absolute lifetime when the token is stored by a rotation.
    pub expires_at: UnixSeconds,
    /// The token family; a rotation stores the old token's family whatever this says.
    pub family_id: Option<String>,
}

/// The outcome of [`TokenStore::rotate_refresh_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshRotation {
    /// The presented token was live and is now used; the new one is stored. Carries the old
    /// record (its client, user, grant and scopes). Only one caller ever sees this.
    Rotated(Box<RefreshToken>),
    /// The presented token exists but was already used (RFC 9700 §4.14.2: reuse); its token
    /// family has been revoked (for a token from before families, its grant). `revoked` says
    /// whether this presentation revoked anything: false when the family was revoked already.
    Reused { grant_id: String, revoked: bool },
    /// Unknown, expired, revoked, its family revoked or past its absolute lifetime, or its
    /// grant revoked. Nothing changed.
    Invalid,
}

// --- audit trail -----------------------------------------------------------------------------

/// A security event to record. `detail` is a JSON object of non-secret facts; no field may hold
/// a password, secret, token, code or API key.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSecurityEvent {
    pub occurred_at: UnixSeconds,
    /// A dotted name such as `login.failed`.
    pub kind: String,
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub grant_id: Option<String>,
    /// The client address of the request that caused the event.
    pub ip: Option<String>,
    pub detail: serde_json::Value,
}

/// A recorded security event; `id` increases with every event.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    pub id: i64,
    pub occurred_at: UnixSeconds,
    pub kind: String,
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub grant_id: Option<String>,
    pub ip: Option<String>,
    pub detail: serde_json::Value,
}

/// Which security events to list; `None` filters nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityEventFilter {
    pub kind: Option<String>,
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// Events that occurred at or after this time.
    pub since: Option<UnixSeconds>,
    /// The cursor: events with a smaller id than this (the next page after the one whose
    /// oldest event had this id).
    pub before_id: Option<i64>,
}

/// Where SQLite and PostgreSQL differ in the SQL this crate writes.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// A column that orders rows of one table by insertion.
    pub insertion_order: &'static str,
    /// SQL that is true when column `name` contains the bound value, ignoring the case of ASCII
    /// letters only (SQLite's `lower` folds nothing else, and PostgreSQL's under the `C`
    /// collation neither), so that one filter finds the same clients on both engines; `{}`
    /// stands for the placeholder.
    pub name_contains: &'static str,
    /// SQL that is true when the JSON array in column `grant_types` contains the bound value;
    /// `{}` stands for the placeholder.
    pub json_array_contains: &'static str,
    /// Appended to a `SELECT` whose rows are about to be updated (in non-key columns only) in
    /// the same transaction: row locks on PostgreSQL; nothing on SQLite, whose write
    /// transaction already holds the database.
    pub for_update: &'static str,
    /// Appended to a `SELECT` of a grant that rows about to be written hang off: a share lock
    /// on PostgreSQL, which waits for a revocation in progress and holds off a new one until
    /// the transaction ends, while writes under one grant do not wait for each other (the row
    /// lock of `for_update` would line them up); nothing on SQLite.
    pub for_share: &'static str,
    /// Appended to a `SELECT` of the client that rows about to be written hang off: the key
    /// share lock on PostgreSQL that the foreign keys of those rows take anyway, taken first,
    /// so that a deletion of the client (which locks the client, then the rows that hang off
    /// it) and the write lock in one order; it does not hold off an update of the client's
    /// other columns. Nothing on SQLite.
    pub for_key_share: &'static str,
    /// Appended to the `SELECT` of a client about to be edited: on PostgreSQL the lock that
    /// also holds off [`Dialect::for_key_share`], so that a consent request being stored for
    /// the client is ordered wholly before the edit (which then narrows it) or after it (which
    /// it is then judged against). Nothing on SQLite.
    pub lock_client_to_edit: &'static str,
    /// Appended to a `SELECT` of rows the same transaction is about to delete when they are
    /// still eligible: locks them, skipping rows another transaction holds any lock on (a write
    /// under way that hangs a row off them), which a later pass looks at again. Nothing on
    /// SQLite, whose write transaction holds the whole database.
    pub lock_to_delete: &'static str,
    /// A statement that holds, until the transaction ends, a lock on the `BIGINT` bound as `$1`
    /// (`pg_advisory_xact_lock` on PostgreSQL); empty on SQLite, whose write transaction already
    /// holds the whole database.
    pub lock_key: &'static str,
    /// The column that names one row of any table (`ctid`, `rowid`).
    pub row_id: &'static str,
    /// Whether a `WITH` clause may hold `INSERT` and `UPDATE` statements (PostgreSQL), so that
    /// a write of several rows can be one statement: one round trip instead of one per
    /// statement plus `BEGIN` and `COMMIT`.
    pub writes_in_with: bool,
}

/// Accounts: organizations, users, their API keys, browser sessions and failed logins.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates the user, and its organization when none has that name. The email must be new.
    async fn create_user(&self, new: NewUser) -> Result<(User, Organization)>;
    /// Creates the first admin and its API key, once per database: `Ok(false)` (and nothing
    /// written) when a bootstrap already happened or any user exists.
    async fn bootstrap_admin(&self, user: NewUser, key: NewApiKey) -> Result<bool>;
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>>;
    async fn get_user(&self, user_id: &str) -> Result<Option<User>>;
    async fn find_organization_by_name(&self, name: &str) -> Result<Option<Organization>>;
    /// Users, oldest first: of the organization `org_id`, or of all; with the count across
    /// pages.
    async fn list_users(&self, org_id: Option<&str>, page: PageSpec) -> Result<Page<User>>;
    /// The user's API keys, revoked ones included, oldest first; with the count across pages.
    async fn list_api_keys(&self, user_id: &str, page: PageSpec) -> Result<Page<ApiKey>>;
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey>;
    /// The live (not revoked) key with this hash, and its user. Records `now` as the key's last
    /// use, at most once a minute, so that a busy key does not write on every request.
    async fn authenticate_api_key(
        &self,
        key_hash: &str,
        now: UnixSeconds,
    ) -> Result<Option<(ApiKey, User)>>;
    /// `Ok(false)` for an unknown or already revoked key.
    async fn revoke_api_key(&self, key_id: &str, now: UnixSeconds) -> Result<bool>;
    /// Stores a session, only if the user's password hash is still `session.password_hash`
    /// (read under a share lock, so a password change either waits for it, and then deletes it,
    /// or has already happened and it is not stored). `Ok(false)`: not stored.
    async fn create_session(&self, session: NewSession) -> Result<bool>;
    /// The user of the live (unexpired) session with this cookie hash.
    async fn session_user(&self, id_hash: &str, now: UnixSeconds) -> Result<Option<User>>;
    /// Signs a browser out; `Ok(false)` when there was no such session.
    async fn delete_session(&self, id_hash: &str) -> Result<bool>;
    /// A password change, in one transaction ([`PasswordChange`]). `Ok(None)`: nothing was
    /// written (the password changed meanwhile, or the changing session ended); otherwise the
    /// number of other sessions ended.
    async fn change_password(&self, change: &PasswordChange) -> Result<Option<u64>>;
    /// Removes the user, in one transaction with `event`: their sessions, login devices, API
    /// keys, consent requests and grants (and with the grants their codes, refresh tokens and
    /// token families, so their access tokens are no longer live) go with the row, and the
    /// failed sign-ins counted under `forget_failures`, the account's key, when given (someone
    /// given the address later does not find the account locked). `Ok(None)`: there is no such
    /// user, and nothing was written.
    async fn delete_user(
        &self,
        user_id: &str,
        forget_failures: Option<&str>,
        event: Option<NewSecurityEvent>,
    ) -> Result<Option<DeletedUser>>;
    /// Deletes every session of the user but `keep_session` (a cookie hash), and every login
    /// device of the user but `keep_device` (a device cookie hash, or empty); how many sessions
    /// it ended.
    async fn delete_other_sessions(
        &self,
        user_id: &str,
        keep_session: &str,
        keep_device: &str,
    ) -> Result<u64>;
    /// Remembers a browser that signed in, and forgets the same user's devices but this one and
    /// the `keep - 1` used last (so that signing in again and again keeps a bounded number of
    /// rows). Only while the user's password hash is still `device.password_hash`, as for
    /// [`AccountStore::create_session`]; `Ok(false)`: not remembered.
    async fn remember_login_device(&self, device: NewLoginDevice, keep: i64) -> Result<bool>;
    /// The email of the user of the login device with this cookie hash, if it signed in after
    /// `used_after`.
    async fn login_device_email(
        &self,
        token_hash: &str,
        used_after: UnixSeconds,
    ) -> Result<Option<String>>;
    /// Records a successful sign-in through the login device with this cookie hash.
    async fn login_device_used(&self, token_hash: &str, now: UnixSeconds) -> Result<()>;
    /// Failed logins recorded under `key` at or after `since`.
    async fn login_failures(&self, key: &str, since: UnixSeconds) -> Result<u64>;
    /// Forgets the failures under `key` (after a successful login to that account).
    async fn clear_login_failures(&self, key: &str) -> Result<()>;
    /// Reserves one login attempt before its password is checked: records a failure under each
    /// `(key, limit)` at `now`, unless one of the keys already has `limit` failures at or after
    /// `since`; then it records nothing and answers which key (its index in `keys`) is at its
    /// limit. Failures older than `since` under these keys are forgotten. One transaction,
    /// serialized per key (an advisory lock on PostgreSQL, the write lock on SQLite), so of any
    /// number of concurrent attempts, on any number of instances, at most `limit` are let
    /// through. An attempt that turns out not to be a failure gives its reservation back with
    /// [`AccountStore::release_login_attempt`] (or [`AccountStore::clear_login_failures`]).
    async fn reserve_login_attempt(
        &self,
        keys: &[(String, u64)],
        now: UnixSeconds,
        since: UnixSeconds,
    ) -> Result<LoginReservation>;
    /// Removes one failure recorded at `at` under each of `keys`: the reservation of an attempt
    /// that did not fail.
    async fn release_login_attempt(&self, keys: &[String], at: UnixSeconds) -> Result<()>;
}

/// OAuth clients: their registration, settings and verified mark.
#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn insert_client(&self, client: &Client) -> Result<()>;
    /// Stores `client` unless its organization already holds `max_in_org` clients: `Ok(false)`
    /// then, and nothing is stored. The organization keeps a count of its clients
    /// (`organizations.client_count`, kept by this and `delete_client`), taken one up by a
    /// conditional update in the insert's transaction: creations at once take turns on the
    /// organization's row and never pass the cap, and no creation counts rows.
    async fn insert_client_within(&self, client: &Client, max_in_org: i64) -> Result<bool>;
    /// Any organization's client: for the OAuth endpoints, which identify clients by id alone.
    async fn get_client(&self, client_id: &str) -> Result<Option<Client>>;
    /// The clients with these ids (any organization's), in no particular order; unknown ids
    /// are left out. At most [`MAX_CLIENTS_PER_READ`] ids.
    async fn get_clients(&self, client_ids: &[String]) -> Result<Vec<Client>>;
    /// Deletes up to `limit` clients registered (dynamically or by a metadata document) before
    /// `created_before` that were never used: no grant was ever made to them, live or revoked,
    /// no consent request for them is kept (one may be under way), and they cannot use
    /// `client_credentials`. Returns how many.
    async fn purge_unused_clients(&self, created_before: UnixSeconds, limit: i64) -> Result<u64>;
    /// The client when it belongs to `org_id`, else `None`.
    async fn get_org_client(&self, org_id: &str, client_id: &str) -> Result<Option<Client>>;
    async fn list_clients(
        &self,
        org_id: &str,
        filter: &ClientFilter,
        page: PageSpec,
    ) -> Result<Page<Client>>;
    /// Applies `edit` to `org_id`'s client as stored while no other write can change it (a row
    /// lock on PostgreSQL, the write transaction on SQLite): two edits made at once both take
    /// effect, one after the other, instead of the later writing back what it read before the
    /// earlier. `None` when there is no such client; `Some(Err)` when `edit` refused the client
    /// as stored, and then nothing changed.
    async fn edit_client(
        &self,
        org_id: &str,
        client_id: &str,
        edit: ClientEdit,
        now: UnixSeconds,
    ) -> Result<Option<std::result::Result<EditedClient, ValidationErrors>>>;
    /// `Ok(false)` when `org_id` has no such client.
    async fn delete_client(&self, org_id: &str, client_id: &str) -> Result<bool>;
    /// Marks a client verified (or not): the client as the mark was set on it, read by the same
    /// statement (what the mark vouches for); `None` for an unknown client.
    async fn set_client_verified(
        &self,
        client_id: &str,
        verified: bool,
        now: UnixSeconds,
    ) -> Result<Option<Client>>;
    /// Dynamic registration: inserts the client with the SHA-256 of its RFC 7592 registration
    /// access token, in one write (both or neither). A client id in use is
    /// [`StoreError::Conflict`], and nothing is written.
    async fn register_client(&self, client: &Client, token_hash: &str) -> Result<()>;
    /// The stored SHA-256 of the client's registration access token, if it has one.
    async fn registration_token_hash(&self, client_id: &str) -> Result<Option<String>>;
}

/// Authorization: consent requests, grants and authorization codes.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores a pending authorization request under the hash of its consent token. A user holds
    /// at most [`MAX_CONSENTS_PER_USER`] pending requests: storing one more drops their oldest.
    /// Nothing is stored when the request's client or user no longer exists (deleted meanwhile):
    /// the request could never be approved.
    async fn create_consent(&self, consent: &ConsentRequest) -> Result<()>;
    /// The live consent request (unused, unexpired) of this token hash, when it belongs to
    /// `user_id`; another user's request is `None`, as if unknown.
    async fn get_consent(
        &self,
        token_hash: &str,
        user_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<ConsentRequest>>;
    /// [`GrantStore::get_consent`] and the request's client, in one read. (A request goes with
    /// its client: deleting a client deletes its pending requests.)
    async fn get_consent_and_client(
        &self,
        token_hash: &str,
        user_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<(ConsentRequest, Client)>>;
    /// Takes the consent request and returns it: one conditional `DELETE ... RETURNING`, so that
    /// of two concurrent calls only one gets `Some` (a used request is gone; nothing reads it
    /// again). `None` when unknown, expired, already used or another user's. For a denial.
    async fn consume_consent(
        &self,
        token_hash: &str,
        user_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<ConsentRequest>>;
    /// In one write (a transaction, or one statement): consumes the consent request (as
    /// [`GrantStore::consume_consent`]), creates the user's live grant for the client or widens
    /// its scopes and resources, stores an authorization code bound to the request and to that
    /// grant, and the approval's event ([`Approval::event`]). `None` (nothing written) when the
    /// consent request is not live for this user or no requested scope is grantable.
    async fn approve_consent(
        &self,
        token_hash: &str,
        user_id: &str,
        approval: &Approval,
    ) -> Result<Option<(ConsentRequest, Grant, AuthorizationCode)>>;
    /// Atomically marks a live code used and returns it (RFC 6749 §4.1.2: single use). A code
    /// whose grant was revoked, or which has expired, is [`CodeRedemption::Invalid`]. The
    /// caller checks the client, redirect URI and PKCE verifier against the returned code.
    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        now: UnixSeconds,
    ) -> Result<CodeRedemption>;
    /// The token endpoint's exchange, in one transaction: a code issued to another client than
    /// `client_id` changes nothing ([`CodeExchange::WrongClient`]); otherwise a live code is
    /// marked used (single use, as [`GrantStore::redeem_authorization_code`]), `decide` is asked
    /// about it, and on [`CodeDecision::Accept`] the token family `family` is started, the
    /// refresh token stored in it and the grant touched. A used code presented again by its
    /// client revokes the family of its first exchange. A crash leaves either the code unused
    /// or the code used with its tokens stored, never a used code whose tokens were lost. On
    /// PostgreSQL the grant is locked first, as everywhere.
    async fn exchange_authorization_code(
        &self,
        code_hash: &str,
        client_id: &str,
        family: &NewTokenFamily,
        now: UnixSeconds,
        decide: Decide,
    ) -> Result<CodeExchange>;
    /// [`GrantStore::exchange_authorization_code`] of `code`, as the caller read it while it
    /// was unused ([`GrantStore::client_and_unused_code`]): the same outcomes, and on PostgreSQL
    /// an accepted exchange does not read the code again. Only the code's content is taken from
    /// `code` (it never changes); whether it is still unused, unexpired and under a live grant
    /// is decided by the store as always.
    async fn exchange_unused_authorization_code(
        &self,
        code: &AuthorizationCode,
        client_id: &str,
        family: &NewTokenFamily,
        now: UnixSeconds,
        decide: Decide,
    ) -> Result<CodeExchange>;
    /// The client `client_id` and the authorization code with this hash if it is unused
    /// (whoever it was issued to) in one statement: the code grant makes one round trip to the
    /// database before its exchange instead of two. `None` when there is no such client.
    async fn client_and_unused_code(
        &self,
        client_id: &str,
        code_hash: &str,
    ) -> Result<Option<(Client, Option<AuthorizationCode>)>>;
    /// The user's live grants, oldest first.
    async fn list_grants(&self, user_id: &str, page: PageSpec) -> Result<Page<Grant>>;
    /// The user's live grant with this id; another user's (or a revoked) grant is `None`.
    async fn get_user_grant(&self, user_id: &str, grant_id: &str) -> Result<Option<Grant>>;
    /// The user's live grant for an installation of a client (`cimd::installation`), if any.
    async fn find_client_grant(
        &self,
        user_id: &str,
        client_id: &str,
        installation: &str,
    ) -> Result<Option<Grant>>;
    /// Revokes the user's live grant (sets `revoked_at`) and deletes its authorization codes,
    /// and revokes its refresh tokens, in one transaction; returns the grant with `revoked_at` set. Tokens carrying the grant id must check
    /// that the grant is live. `None` when the user has no such live grant.
    async fn revoke_grant(
        &self,
        user_id: &str,
        grant_id: &str,
        now: UnixSeconds,
    ) -> Result<Option<Grant>>;
    /// The grant with this id if it is live, whoever's it is: for the token endpoint and
    /// introspection, which check that the grant behind a token still stands.
    async fn live_grant(&self, grant_id: &str) -> Result<Option<Grant>>;
    /// Housekeeping: deletes up to `limit` rows of each kind that can no longer matter:
    /// sessions and consent requests past their expiry, login devices unused for
    /// [`LOGIN_DEVICE_RETENTION_SECS`], authorization codes expired for more
    /// than an hour (kept that long so a replay is still seen as reuse), and failed logins
    /// older than `forget_failures_before`. Returns how many rows went.
    async fn purge_authorization(
        &self,
        now: UnixSeconds,
        forget_failures_before: UnixSeconds,
        limit: i64,
    ) -> Result<u64>;
}

/// What decides whether a verified access token is still live: its `jti`, and the family or
/// grant it came from (none for a client-credentials token).
#[derive(Debug, Clone, Copy)]
pub struct AccessTokenRef<'a> {
    pub jti: &'a str,
    pub family_id: Option<&'a str>,
    pub grant_id: Option<&'a str>,
}

/// Tokens: refresh tokens, their families, and revoked access tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Is the token family live: not revoked, and its grant live? One indexed read.
    async fn live_token_family(&self, family_id: &str) -> Result<bool>;
    /// Remembers an access token's `jti` as revoked until `exp`. `Ok(false)` when it already was.
    async fn revoke_access_token(
        &self,
        jti: &str,
        exp: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool>;
    /// Is this `jti` revoked? One primary-key lookup.
    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool>;
    /// Is a verified access token still live: its `jti` not revoked, and its family (or, for a
    /// token from before families, its grant) live? One statement.
    async fn access_token_live(&self, token: &AccessTokenRef<'_>) -> Result<bool>;
    /// The client `client_id`, and whether the access token is still live (as
    /// [`TokenStore::access_token_live`]), in one statement: the introspection and bearer
    /// paths make one round trip to the database instead of three.
    async fn client_and_token_state(
        &self,
        client_id: &str,
        token: &AccessTokenRef<'_>,
    ) -> Result<Option<(Client, bool)>>;
    /// Deletes at most `limit` revoked-token rows whose token has expired by `now`.
    async fn purge_revoked_tokens(&self, now: UnixSeconds, limit: i64) -> Result<u64>;
    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> Result<()>;
    /// The stored token with this hash, whatever its state (the caller judges liveness).
    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>>;
    /// The client `client_id` and the refresh token with this hash (as
    /// [`TokenStore::find_refresh_token`], whoever it was issued to) in one statement: the
    /// refresh grant makes one round trip to the database before its rotation instead of two.
    /// `None` when there is no such client.
    async fn client_and_refresh_token(
        &self,
        client_id: &str,
        token_hash: &str,
    ) -> Result<Option<(Client, Option<RefreshToken>)>>;
    /// In one transaction: marks the live token `old_hash` used (a conditional `UPDATE`, so
    /// that of two concurrent calls, on any number of instances, only one wins) and stores
    /// `new`, which must carry the same grant. A used token revokes its grant and family in
    /// the same transaction. `new.grant_id` is ignored: the old token's grant is used.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &NewRefreshToken,
        now: UnixSeconds,
    ) -> Result<RefreshRotation>;
    /// RFC 7009 §2.1: revokes the token's family (the tokens descending from the same
    /// authorization code; for a token from before families, its whole grant). `Ok(true)` when
    /// this call revoked something; `Ok(false)` for an unknown token, or one whose family or
    /// grant was revoked already (a repeated revocation changes nothing and is not an event).
    async fn revoke_refresh_token_family(&self, token_hash: &str, now: UnixSeconds)
        -> Result<bool>;
    /// Deletes at most `limit` refresh tokens expired by `now`, and at most `limit` token
    /// families a day past their absolute lifetime (their access tokens have expired by then).
    async fn purge_refresh_tokens(&self, now: UnixSeconds, limit: i64) -> Result<u64>;
    /// Records the `jti` of a client assertion (RFC 7523 §3), given as `jti_hash` (a digest of
    /// the client id and the jti), as used until `expires_at`. `Ok(true)` for the first use;
    /// `Ok(false)` while an earlier use has not expired at `now`: a replay. One statement, so
    /// that of several concurrent uses, on any number of instances, exactly one wins.
    async fn use_assertion_jti(
        &self,
        jti_hash: &str,
        expires_at: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool>;
    /// Deletes at most `limit` recorded assertion `jti`s expired by `now`.
    async fn purge_assertion_jtis(&self, now: UnixSeconds, limit: i64) -> Result<u64>;
}

/// Access-token signing keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Signing keys not retired at `now` (published in the JWK set), oldest `active_from` first.
    async fn list_signing_keys(&self, now: UnixSeconds) -> Result<Vec<StoredSigningKey>>;
    /// Stores `key` only when no key can sign at `now` (first start). Two instances starting
    /// together on one database store one key between them: `Ok(false)` for the loser.
    async fn insert_first_signing_key(
        &self,
        key: &StoredSigningKey,
        now: UnixSeconds,
    ) -> Result<bool>;
    /// Adds `key` and, in the same transaction, retires every other key at
    /// `retire_others_after` (or earlier, if it was already due to retire earlier).
    async fn rotate_signing_key(
        &self,
        key: &StoredSigningKey,
        retire_others_after: UnixSeconds,
    ) -> Result<()>;
    /// Deletes at most `limit` signing keys retired by `now`.
    async fn purge_retired_signing_keys(&self, now: UnixSeconds, limit: i64) -> Result<u64>;
}

/// The audit trail of security events.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends a security event; returns its id.
    async fn record_security_event(&self, event: &NewSecurityEvent) -> Result<i64>;
    /// Up to `limit` events matching `filter`, newest (highest id) first. The next page is
    /// the same filter with `before_id` set to the last event's id.
    async fn list_security_events(
        &self,
        filter: &SecurityEventFilter,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>>;
    /// Deletes at most `limit` events that occurred before `before`.
    async fn purge_security_events(&self, before: UnixSeconds, limit: i64) -> Result<u64>;
}

/// The storage operations of the server: every area's, and the database's own. Callers hold
/// an `Arc<dyn Store>` and call any area's operations on it.
#[async_trait]
pub trait Store:
    AccountStore + ClientStore + GrantStore + TokenStore + KeyStore + AuditStore + Send + Sync + 'static
{
    /// Runs the embedded migrations (idempotent).
    async fn migrate(&self) -> Result<()>;
    /// Is the database reachable?
    async fn ping(&self) -> Result<()>;
    /// Closes every connection; on SQLite this checkpoints the write-ahead log.
    async fn close(&self);
    /// How the database connections are used at this moment (the metrics' pool gauges).
    fn connections(&self) -> ConnectionUsage;
}

/// The database connections at one moment: those running a statement or transaction, and
/// those open and waiting. On PostgreSQL these are the pool's (at most [`Self::max`]); on SQLite
/// the read connections (the writer thread's own connection is not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionUsage {
    pub in_use: u32,
    pub idle: u32,
    /// The pool's bound; `None` where there is none (SQLite opens a read connection per
    /// concurrent reader).
    pub max: Option<u32>,
}

/// The most ids one [`ClientStore::get_clients`] reads.
pub const MAX_CLIENTS_PER_READ: usize = 500;

/// The most pending consent requests one user holds; a new one beyond this drops the oldest.
pub const MAX_CONSENTS_PER_USER: i64 = 20;

/// How the PostgreSQL connection pool behaves (SQLite has no pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// The longest an operation waits for a connection, opening a new one included. While the
    /// database cannot be reached, every operation fails with [`StoreError::Unavailable`] after
    /// at most this long.
    pub acquire_timeout: Duration,
    /// The most connections the pool holds at once (at least one). Several instances of one
    /// database each hold their own, within the database's `max_connections`.
    pub max_connections: usize,
}

/// The default pool size: enough for the statements of two cores' worth of requests, with
/// PostgreSQL's default `max_connections` (100) left for six such instances.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// The default acquire timeout: short, so that callers get a 503 quickly while the database
/// is down, and long enough to ride out a burst that keeps every connection busy.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Opens the database a URL names: `sqlite:` (a file, created when missing) or `postgres:` /
/// `postgresql:`. Does not migrate.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    connect_with(url, PoolSettings::default()).await
}

/// [`connect`] with these pool settings.
pub async fn connect_with(url: &str, pool: PoolSettings) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PostgresStore::connect(url, pool).await?))
    } else {
        Err(StoreError::Internal(
            "unsupported database URL: use sqlite://PATH or postgres://...".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{is_invalid_input_code, is_unavailable_code};

    #[test]
    fn data_exceptions_and_program_limits_are_invalid_input() {
        for code in ["22021", "22P05", "22001", "22P02", "54000"] {
            assert!(is_invalid_input_code(code), "{code}");
            assert!(!is_unavailable_code(code), "{code}");
        }
        for code in ["23505", "08006", "42601", "54001", "40001", "53300"] {
            assert!(!is_invalid_input_code(code), "{code}");
        }
    }

    #[test]
    fn connection_sqlstates_are_unavailable_others_are_not() {
        for code in [
            "08006", "08001", "08P01", "57P01", "57P02", "57P03", "53300",
        ] {
            assert!(is_unavailable_code(code), "{code}");
        }
        // Unique violation, syntax error, undefined table, serialization failure.
        for code in ["23505", "42601", "42P01", "40001", "55000"] {
            assert!(!is_unavailable_code(code), "{code}");
        }
        // Deadlocks and serialization failures are retried, then answered as unavailable.
        assert!(super::is_contention_code("40P01") && super::is_contention_code("40001"));
        assert!(!super::is_contention_code("23505"));
    }
}
