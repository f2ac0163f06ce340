//! Accounts: users (argon2id passwords), API keys, and the bootstrap admin of a new database.
//! Used by the admin commands and by the server's first start.

use anyhow::{bail, Context};
use oauth_core::entity::{ApiKey, Organization, User};
use oauth_core::secret::{self, DigestKey};
use oauth_store::{NewApiKey, NewUser, PasswordChange, Store, StoreError};
use rand::rngs::OsRng;
use serde::Serialize;

use crate::audit::{self, Event, EventKind};

pub const BOOTSTRAP_EMAIL: &str = "admin@localhost";
pub const BOOTSTRAP_ORG: &str = "default";

/// A plausible email address: one `@`, something on each side, no spaces, at most 254 bytes.
/// (Deliverability is not this server's concern.)
pub fn normalize_email(email: &str) -> anyhow::Result<String> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if !valid {
        bail!("{email:?} is not an email address");
    }
    Ok(e)
}

/// argon2id with the crate's default (OWASP-recommended) parameters. Slow on purpose: call it
/// off the async runtime's worker threads (`spawn_blocking`).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    crate::passwords::hash(password).map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// The failed-login counter's key of the account with this (normalized) email: its keyed
/// digest, so that the counters, in the database or in memory, never hold an address someone
/// typed, nor a plain hash of it that a dictionary would reverse.
pub fn account_key(key: &DigestKey, email: &str) -> String {
    format!("account:{}", key.digest(email))
}

/// The shortest password accepted, by the admin commands and the account page.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest: argon2 would hash more, but nobody types it.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A password given to an admin command, as the account page takes one: 8 to 1024 characters,
/// and no control character (the sign-in form refuses a NUL byte, and none can be typed), so
/// that the command never sets a password nobody can sign in with.
fn check_password(password: String) -> anyhow::Result<String> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
    }
    if length > MAX_PASSWORD_CHARS {
        bail!("the password must have at most {MAX_PASSWORD_CHARS} characters");
    }
    if password.chars().any(char::is_control) {
        bail!(
            "the password must not hold control characters (a NUL byte, a tab, an escape): \
             the sign-in form could not take it"
        );
    }
    Ok(password)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[derive(Debug, Serialize)]
pub struct CreatedUser {
    pub user_id: String,
    pub org_id: String,
    pub email: String,
    /// Only when the password was generated (not read from stdin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Creates a user in the organization `org_name` (created when missing). Without a password, one
/// is generated and returned.
pub async fn create_user(
    store: &dyn Store,
    email: &str,
    org_name: Option<&str>,
    password: Option<String>,
    now: i64,
) -> anyhow::Result<CreatedUser> {
    let email = normalize_email(email)?;
    // Without a name, an organization of the user's own, named after the email: never one
    // that someone else already made with that name.
    let join_existing_org = org_name.is_some();
    let org_name = org_name.map(str::trim).unwrap_or(&email).to_owned();
    if org_name.is_empty() || org_name.chars().count() > 200 {
        bail!("the organization name must have 1 to 200 characters");
    }
    // The store refuses it too (by the organization's id); this says why.
    if org_name == oauth_core::client::THIRD_PARTY_ORG_NAME {
        bail!("the organization name {org_name} is reserved for third-party clients");
    }
    let (password, generated) = match password {
        Some(p) => (check_password(p)?, false),
        None => (secret::random_token(&mut OsRng), true),
    };
    let to_hash = password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&to_hash))
        .await
        .context("password hashing task")??;
    let result = store
        .create_user(NewUser {
            user_id: new_id(),
            email: email.clone(),
            password_hash,
            org_name: org_name.clone(),
            new_org_id: new_id(),
            join_existing_org,
            now,
        })
        .await;
    let (user, org): (User, Organization) = match result {
        Err(StoreError::Conflict(_)) if store.find_user_by_email(&email).await?.is_some() => {
            bail!("a user with email {email} already exists")
        }
        Err(StoreError::Conflict(_)) => bail!(
            "an organization named {org_name} already exists: to add the user to it, name it \
             with --org; otherwise choose another name with --org"
        ),
        other => other?,
    };
    Ok(CreatedUser {
        user_id: user.id,
        org_id: org.id,
        email: user.email,
        password: generated.then_some(password),
    })
}

#[derive(Debug, Serialize)]
pub struct CreatedApiKey {
    pub id: String,
    pub user_id: String,
    /// Shown once; only its hash is stored.
    pub api_key: String,
}

pub async fn create_api_key(
    store: &dyn Store,
    email: &str,
    name: Option<String>,
    now: i64,
) -> anyhow::Result<CreatedApiKey> {
    let email = normalize_email(email)?;
    let Some(user) = store.find_user_by_email(&email).await? else {
        bail!("no user with email {email}");
    };
    let key = secret::new_api_key(&mut OsRng);
    let stored: ApiKey = store
        .create_api_key(NewApiKey {
            id: new_id(),
            user_id: user.id.clone(),
            name,
            key_hash: secret::hash_secret(&key),
            now,
        })
        .await?;
    audit::record(
        store,
        now,
        Event::new(EventKind::ApiKeyCreated)
            .user(&user)
            .detail("api_key_id", stored.id.clone()),
    )
    .await;
    Ok(CreatedApiKey {
        id: stored.id,
        user_id: user.id,
        api_key: key,
    })
}

#[derive(Debug, Serialize)]
pub struct DeletedUser {
    pub user_id: String,
    pub email: String,
    pub sessions_ended: u64,
    pub api_keys_revoked: u64,
    pub grants_revoked: u64,
    /// Clients the user created: they stay with the organization, but a first-party client's
    /// client-credentials tokens act for no user from now on.
    pub clients_created: u64,
    pub org_id: String,
    /// The organization's users after the deletion. At 0 its clients stay, and those that
    /// use `client_credentials` still get tokens: the operator lists them with `clients list
    /// --org` and deletes those no one runs any more.
    pub members_left: u64,
    /// Whether the account's failed sign-ins went too (the command had the server's key).
    pub failed_sign_ins_forgotten: bool,
}

/// Removes a user (`oauth-server users delete`): their sessions, API keys and grants end with
/// them, in one write with the `user.deleted` event, and with them the account's failed
/// sign-ins when `login_keys` (the server's key for them) is given.
pub async fn delete_user(
    store: &dyn Store,
    login_keys: Option<&DigestKey>,
    email: &str,
    now: i64,
) -> anyhow::Result<DeletedUser> {
    let email = normalize_email(email)?;
    let Some(user) = store.find_user_by_email(&email).await? else {
        bail!("no user with email {email}");
    };
    let event = audit::StoredWith::new(
        Event::new(EventKind::UserDeleted)
            .user(&user)
            .detail("by", "operator"),
        now,
    );
    let Some(ended) = store
        .delete_user(
            &user.id,
            login_keys.map(|k| account_key(k, &email)).as_deref(),
            Some(event.row().clone()),
        )
        .await?
    else {
        // Deleted by someone else since it was found.
        bail!("no user with email {email}");
    };
    event.stored(
        None,
        &[
            ("sessions_ended", ended.sessions.into()),
            ("api_keys_revoked", ended.api_keys.into()),
            ("grants_revoked", ended.grants.into()),
            ("clients_created", ended.clients_created.into()),
        ],
    );
    let members_left = store
        .list_users(
            Some(&user.org_id),
            oauth_core::PageSpec { number: 1, size: 1 },
        )
        .await?
        .total;
    Ok(DeletedUser {
        user_id: user.id,
        email: user.email,
        sessions_ended: ended.sessions,
        api_keys_revoked: ended.api_keys,
        grants_revoked: ended.grants,
        clients_created: ended.clients_created,
        org_id: user.org_id,
        members_left,
        failed_sign_ins_forgotten: login_keys.is_some(),
    })
}

#[derive(Debug, Serialize)]
pub struct PasswordSet {
    pub user_id: String,
    pub email: String,
    pub sessions_ended: u64,
    /// Only when the password was generated (not read from stdin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Gives a user a new password (`oauth-server users set-password`: the user forgot theirs, or it
/// leaked). Every session of the user ends and every remembered browser is forgotten, in one
/// write with the `password.changed` event; API keys and grants stay. The account's failed
/// sign-ins (counted under `login_keys`, the server's key for them; `None` when no server has
/// run on the database yet) are forgotten by the same write, as a sign-in forgets them: whoever
/// locked the account guessing the old password does not keep its owner from signing in with
/// the new one. Without a password, one is generated and returned.
pub async fn set_password(
    store: &dyn Store,
    login_keys: Option<&DigestKey>,
    email: &str,
    password: Option<String>,
    now: i64,
) -> anyhow::Result<PasswordSet> {
    let email = normalize_email(email)?;
    let (password, generated) = match password {
        Some(p) => (check_password(p)?, false),
        None => (secret::random_token(&mut OsRng), true),
    };
    let Some(user) = store.find_user_by_email(&email).await? else {
        bail!("no user with email {email}");
    };
    let to_hash = password.clone();
    let new_hash = tokio::task::spawn_blocking(move || hash_password(&to_hash))
        .await
        .context("password hashing task")??;
    let event = audit::StoredWith::new(
        Event::new(EventKind::PasswordChanged)
            .user(&user)
            .detail("by", "operator"),
        now,
    );
    let change = PasswordChange {
        user_id: user.id.clone(),
        old_hash: user.password_hash.clone(),
        new_hash,
        // No session or browser is kept.
        keep_session: String::new(),
        keep_device: String::new(),
        replacement: None,
        event: Some(event.row().clone()),
        forget_failures: login_keys.map(|k| account_key(k, &email)),
    };
    let Some(ended) = store.change_password(&change).await? else {
        bail!("the password of {email} changed meanwhile (or the user was deleted): run it again");
    };
    event.stored(None, &[("other_sessions_ended", ended.into())]);
    Ok(PasswordSet {
        user_id: user.id,
        email: user.email,
        sessions_ended: ended,
        password: generated.then_some(password),
    })
}

/// What the first start prints, once.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapCredentials {
    pub email: String,
    pub password: String,
    pub api_key: String,
    pub org_id: String,
}

/// On a database with no users, creates the admin `admin@localhost` in the organization
/// `default` with a generated password and an API key. `None` when the database already had
/// users or was bootstrapped before (by this or another instance).
pub async fn bootstrap(
    store: &dyn Store,
    now: i64,
) -> anyhow::Result<Option<BootstrapCredentials>> {
    if store
        .find_organization_by_name(BOOTSTRAP_ORG)
        .await?
        .is_some()
        || store.find_user_by_email(BOOTSTRAP_EMAIL).await?.is_some()
    {
        return Ok(None);
    }
    let password = secret::random_token(&mut OsRng);
    let to_hash = password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&to_hash))
        .await
        .context("password hashing task")??;
    let api_key = secret::new_api_key(&mut OsRng);
    let user_id = new_id();
    let org_id = new_id();
    let api_key_id = new_id();
    let created = store
        .bootstrap_admin(
            NewUser {
                user_id: user_id.clone(),
                email: BOOTSTRAP_EMAIL.to_owned(),
                password_hash,
                org_name: BOOTSTRAP_ORG.to_owned(),
                new_org_id: org_id.clone(),
                join_existing_org: true,
                now,
            },
            NewApiKey {
                id: api_key_id.clone(),
                user_id: user_id.clone(),
                name: Some("bootstrap".to_owned()),
                key_hash: secret::hash_secret(&api_key),
                now,
            },
        )
        .await?;
    if created {
        audit::record(
            store,
            now,
            Event::new(EventKind::ApiKeyCreated)
                .user_id(&user_id)
                .org_id(&org_id)
                .detail("api_key_id", api_key_id)
                .detail("bootstrap", true),
        )
        .await;
    }
    Ok(created.then(|| BootstrapCredentials {
        email: BOOTSTRAP_EMAIL.to_owned(),
        password,
        api_key,
        org_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" A@B.example ").ok().as_deref(),
            Some("a@b.example")
        );
        for bad in ["", "a", "@b", "a@", "a b@c", "a@b@c"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
