//! The failure budgets of password attempts, shared by the sign-in form and the
//! password-change form: a wrong password is counted against the account and the address,
//! reserved before the password is checked.
//!
//! A browser that signed in to an account before carries a device cookie (a random value; the
//! database keeps its hash in `login_devices`). Its attempts for that same account are counted
//! under the device alone, not under the account or the address: wrong passwords typed
//! elsewhere, however many, never lock the owner out of a browser they signed in with, and
//! neighbours behind the same address cannot either. A device counts while its last successful
//! sign-in is within `authorization.login_device_lifetime_secs` as configured now (0: none
//! counts), and each sign-in through it starts that time again. A stolen device cookie gives
//! its thief the account's limit of failures per window, on that device, until the owner
//! changes the password or signs the other browsers out.

use std::net::SocketAddr;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use oauth_core::entity::User;
use oauth_core::secret::{self, DigestKey};
use oauth_store::{LoginReservation, NewLoginDevice};
use rand::rngs::OsRng;

use crate::accounts::{account_key, normalize_email};
use crate::error::ApiError;
use crate::session::{self, login_device_cookie};
use crate::state::AppState;

/// The most login devices kept per user: signing in from a new browser past this forgets the
/// one used longest ago.
pub const MOST_DEVICES_PER_USER: i64 = 20;

/// What a password attempt is counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Budget {
    /// The account named in the attempt and the caller's address.
    Shared { account: String, address: String },
    /// A browser that signed in to the account named in the attempt: its device alone (the
    /// hash of its device cookie).
    Device { hash: String },
}

impl Budget {
    /// The keys and their limits, in the order a [`LoginReservation::Limited`] index refers to.
    fn limits(&self, state: &AppState) -> Vec<(String, u64)> {
        let a = &state.config.authorization;
        match self {
            Budget::Shared { account, address } => vec![
                (account.clone(), a.login_max_failures_per_account),
                (address.clone(), a.login_max_failures_per_ip),
            ],
            Budget::Device { hash } => vec![(device_key(hash), a.login_max_failures_per_account)],
        }
    }

    /// Every key an attempt reserves a failure under.
    pub fn keys(&self) -> Vec<String> {
        match self {
            Budget::Shared { account, address } => vec![account.clone(), address.clone()],
            Budget::Device { hash } => vec![device_key(hash)],
        }
    }

    /// What the limit at `index` counts, for the audit trail: `account`, `address` or `device`.
    pub fn limit_name(&self, index: usize) -> &'static str {
        match (self, index) {
            (Budget::Shared { .. }, 0) => "account",
            (Budget::Shared { .. }, _) => "address",
            (Budget::Device { .. }, _) => "device",
        }
    }

    /// The hash of the device cookie this attempt is counted under, if it is.
    pub fn device_hash(&self) -> Option<&str> {
        match self {
            Budget::Device { hash } => Some(hash),
            Budget::Shared { .. } => None,
        }
    }
}

/// The failure counter's key of the device whose cookie has this hash.
fn device_key(hash: &str) -> String {
    format!("device:{hash}")
}

/// The failure counter's key of every attempt whose email field holds no email address.
pub const NOT_AN_EMAIL: &str = "account:not-an-email";

/// The keys a password attempt is counted under when it comes from no known device: the
/// account named by `email_raw` and the caller's address. What is not an email address names
/// no account; its failures are still counted, all under one key that holds nothing of what was
/// typed: often a password typed into the wrong field, whose digest, even a keyed one, is
/// quicker to guess at than the password's own hash, and stays in the database's free pages
/// after its row is purged.
pub fn attempt_keys(key: &DigestKey, email_raw: &str, peer: SocketAddr) -> (String, String) {
    let account_key = match normalize_email(email_raw) {
        Ok(email) => account_key(key, &email),
        Err(_) => NOT_AN_EMAIL.to_owned(),
    };
    let ip_key = format!("ip:{}", crate::peer::address_key(peer.ip()));
    (account_key, ip_key)
}

/// What an attempt to sign in to `email_raw` from `peer` is counted under: the device, when the
/// request carries a live device cookie of that same account; otherwise the account and the
/// address.
pub async fn budget(
    state: &AppState,
    headers: &HeaderMap,
    email_raw: &str,
    peer: SocketAddr,
    now: i64,
) -> Result<Budget, ApiError> {
    let (account, address) = attempt_keys(&state.login_keys, email_raw, peer);
    let lifetime = state.config.authorization.login_device_lifetime_secs;
    let cookie = session::cookie(headers, login_device_cookie(state)).filter(|_| lifetime > 0);
    if let Some(cookie) = cookie {
        let hash = secret::hash_secret(cookie);
        let owner = state
            .store
            .login_device_email(&hash, now - lifetime)
            .await?;
        if owner.is_some_and(|email| account == account_key(&state.login_keys, &email)) {
            return Ok(Budget::Device { hash });
        }
    }
    Ok(Budget::Shared { account, address })
}

/// Records a password attempt as a failure under each key of `budget` before its password is
/// checked, in one step with the check of the limits: of any number of concurrent attempts, at
/// most the limit get to a password check. A success, or an attempt that checks nothing, gives
/// it back.
pub async fn reserve_attempt(
    state: &AppState,
    budget: &Budget,
    now: i64,
) -> Result<LoginReservation, ApiError> {
    let a = &state.config.authorization;
    Ok(state
        .store
        .reserve_login_attempt(
            &budget.limits(state),
            now,
            now - a.login_failure_window_secs,
        )
        .await?)
}

/// A password attempt reserved under `budget` was right. From no known device, the account's
/// failures are forgotten (its reservation with them) and the address gets its reservation
/// back; from a device, the device's failures are forgotten, and the account's stay: the
/// owner signing in on their own browser gives whoever guesses elsewhere no new guesses. When
/// the database fails half-way, every reservation is given back before the error is answered:
/// a right password never counts as a failure.
pub async fn succeeded(state: &AppState, budget: &Budget, now: i64) -> Result<(), ApiError> {
    let (forget, release) = match budget {
        Budget::Shared { account, address } => (account.clone(), Some(address)),
        Budget::Device { hash } => (device_key(hash), None),
    };
    let done = match state.store.clear_login_failures(&forget).await {
        Ok(()) => match release {
            Some(address) => {
                state
                    .store
                    .release_login_attempt(std::slice::from_ref(address), now)
                    .await
            }
            None => Ok(()),
        },
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        give_back(state, &budget.keys(), now).await;
        return Err(e.into());
    }
    Ok(())
}

/// After a successful sign-in of `user` counted under `budget`: the `Set-Cookie` of the
/// device cookie. A browser that signed in through its device starts its lifetime again (the
/// same value, a new `Max-Age`); any other gets a new one, remembered in the database (none when
/// device cookies are off). A failure to remember it costs the browser its device budget,
/// never the sign-in.
pub async fn remember_device(
    state: &AppState,
    headers: &HeaderMap,
    budget: &Budget,
    user: &User,
    now: i64,
) -> Option<HeaderValue> {
    let lifetime = state.config.authorization.login_device_lifetime_secs;
    if lifetime == 0 {
        return None;
    }
    if let Some(hash) = budget.device_hash() {
        if let Err(e) = state.store.login_device_used(hash, now).await {
            tracing::warn!(error = %e, "could not record a login device's use");
            return None;
        }
        let value = session::cookie(headers, login_device_cookie(state))?;
        return Some(session::set_cookie(
            state,
            login_device_cookie(state),
            value,
            lifetime,
        ));
    }
    let value = secret::random_token(&mut OsRng);
    let device = NewLoginDevice {
        token_hash: secret::hash_secret(&value),
        user_id: user.id.clone(),
        password_hash: user.password_hash.clone(),
        now,
    };
    match state
        .store
        .remember_login_device(device, MOST_DEVICES_PER_USER)
        .await
    {
        Ok(true) => {}
        // The password changed since the sign-in's check: a change forgets devices.
        Ok(false) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "could not remember a login device");
            return None;
        }
    }
    Some(session::set_cookie(
        state,
        login_device_cookie(state),
        &value,
        lifetime,
    ))
}

/// `resp` (a refusal over the failure limits) with a `Retry-After` within the failure window.
pub fn with_retry_after(state: &AppState, mut resp: Response) -> Response {
    let wait = state
        .config
        .authorization
        .login_failure_window_secs
        .clamp(1, 60);
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Gives back the failure reserved for an attempt that checked no password.
pub async fn give_back(state: &AppState, keys: &[String], now: i64) {
    if let Err(e) = state.store.release_login_attempt(keys, now).await {
        tracing::warn!(error = %e, "could not give back a reserved login failure");
    }
}
