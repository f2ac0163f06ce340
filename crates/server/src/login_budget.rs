//! The failure budgets of password attempts, shared by the sign-in form and the
//! password-change form: a wrong password is counted against the account and the address,
//! reserved before the password is checked.

use std::net::SocketAddr;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use oauth_core::secret;
use oauth_store::LoginReservation;

use crate::accounts::normalize_email;
use crate::error::ApiError;
use crate::state::AppState;

/// The keys a password attempt is counted under: the account named by `email_raw` and the
/// caller's address. What is not an email address names no account; its failures are still
/// counted, under a key of bounded length (a long value must not reach the counter's index as
/// it is).
pub fn attempt_keys(email_raw: &str, peer: SocketAddr) -> (String, String) {
    let account_key = match normalize_email(email_raw) {
        Ok(email) => format!("account:{email}"),
        Err(_) => {
            let email = email_raw.trim().to_lowercase();
            format!("account:not-an-email:{}", secret::hash_secret(&email))
        }
    };
    let ip_key = format!("ip:{}", crate::peer::address_key(peer.ip()));
    (account_key, ip_key)
}

/// Records a password attempt as a failure of the account and of the address (`keys`, from
/// [`attempt_keys`]) before its password is checked, in one step with the check of the limits:
/// of any number of concurrent attempts, at most the limit get to a password check. A success,
/// or an attempt that checks nothing, gives it back.
pub async fn reserve_attempt(
    state: &AppState,
    [account_key, ip_key]: [&str; 2],
    now: i64,
) -> Result<LoginReservation, ApiError> {
    let a = &state.config.authorization;
    Ok(state
        .store
        .reserve_login_attempt(
            &[
                (account_key.to_owned(), a.login_max_failures_per_account),
                (ip_key.to_owned(), a.login_max_failures_per_ip),
            ],
            now,
            now - a.login_failure_window_secs,
        )
        .await?)
}

/// A password attempt reserved under `keys` was right: the account's failures are forgotten
/// (its reservation with them) and the address gets its reservation back. When the database
/// fails half-way, both reservations are given back before the error is answered: a right
/// password never counts as a failure.
pub async fn succeeded(
    state: &AppState,
    [account_key, ip_key]: [&str; 2],
    now: i64,
) -> Result<(), ApiError> {
    let done = match state.store.clear_login_failures(account_key).await {
        Ok(()) => {
            state
                .store
                .release_login_attempt(&[ip_key.to_owned()], now)
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        give_back(state, &[account_key.to_owned(), ip_key.to_owned()], now).await;
        return Err(e.into());
    }
    Ok(())
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
