//! Who is at the browser: login sessions (a cookie whose SHA-256 is the server-side key), the
//! CSRF tokens that tie a form to its session, and the user behind a request, found from
//! `Authorization: Bearer <API key>` or the session cookie.
//!
//! The cookie value is a 256-bit random secret; the database keeps only its hash, so a copy of
//! the database cannot be replayed as a cookie, and deleting the row signs the browser out on
//! every instance.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth_core::entity::User;
use oauth_core::{secret, UnixSeconds};
use oauth_store::NewSession;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::extract::bearer_token;
use crate::state::AppState;

/// The login session (issuer on plain http).
pub const SESSION_COOKIE: &str = "oauth_session";
/// The login form's double-submit CSRF value (before any session exists; plain http).
pub const LOGIN_CSRF_COOKIE: &str = "oauth_login_csrf";
/// The session cookie when the issuer is https. Browsers accept a `__Host-` cookie only with
/// `Secure`, `Path=/` and no `Domain`, so neither a sibling subdomain nor a plain-http page on the
/// same host can set or shadow it.
pub const HOST_SESSION_COOKIE: &str = "__Host-oauth_session";
/// The login CSRF cookie when the issuer is https.
pub const HOST_LOGIN_CSRF_COOKIE: &str = "__Host-oauth_login_csrf";
/// A browser that signed in before (plain http): its password attempts for that account have a
/// failure budget of their own (the sign-in form counts them apart). It outlives the session.
pub const LOGIN_DEVICE_COOKIE: &str = "oauth_login_device";
/// The device cookie when the issuer is https.
pub const HOST_LOGIN_DEVICE_COOKIE: &str = "__Host-oauth_login_device";

/// The name of the session cookie, written and read: `__Host-` prefixed over https.
pub fn session_cookie(state: &AppState) -> &'static str {
    if state.secure_cookies() {
        HOST_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The name of the login CSRF cookie, written and read: `__Host-` prefixed over https.
pub fn login_csrf_cookie(state: &AppState) -> &'static str {
    if state.secure_cookies() {
        HOST_LOGIN_CSRF_COOKIE
    } else {
        LOGIN_CSRF_COOKIE
    }
}

/// The name of the device cookie, written and read: `__Host-` prefixed over https.
pub fn login_device_cookie(state: &AppState) -> &'static str {
    if state.secure_cookies() {
        HOST_LOGIN_DEVICE_COOKIE
    } else {
        LOGIN_DEVICE_COOKIE
    }
}

/// How the user of a request was identified.
pub enum Via {
    ApiKey,
    /// The session cookie's value (to derive the CSRF token from).
    Session(String),
}

pub struct Viewer {
    pub user: User,
    pub via: Via,
}

/// The value of cookie `name`, if the request carries it once.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        // Two cookies of one name (a sibling subdomain can plant one): trust
                        // neither.
                        return None;
                    }
                    found = Some(val);
                }
            }
        }
    }
    found.filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a cookie of this server: HttpOnly, SameSite=Lax, Path=/, Secure over https,
/// never a `Domain` (so the `__Host-` names are accepted).
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A new login session for `user`: the cookie value for the browser, and the row to store. The
/// store creates the row only while `password_hash` is still the user's password, so a sign-in
/// checked against a password that changed meanwhile gets no session.
pub fn new_session(
    state: &AppState,
    user: &User,
    password_hash: &str,
    now: UnixSeconds,
) -> (String, NewSession) {
    let cookie = secret::random_token(&mut OsRng);
    let row = NewSession {
        id_hash: secret::hash_secret(&cookie),
        user_id: user.id.clone(),
        password_hash: password_hash.to_owned(),
        now,
        expires_at: now + state.config.authorization.session_lifetime_secs,
    };
    (cookie, row)
}

/// The `Set-Cookie` value that gives the browser the session `cookie`, for the session's
/// lifetime.
pub fn set_session_cookie(state: &AppState, cookie: &str) -> HeaderValue {
    set_cookie(
        state,
        session_cookie(state),
        cookie,
        state.config.authorization.session_lifetime_secs,
    )
}

/// The CSRF token of a session: derived from the cookie value, which only this browser and no
/// database row knows, under a label of its own so it differs from the stored hash.
pub fn csrf_token(session_cookie: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"oauth-server csrf v1\0");
    h.update(session_cookie.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Does `presented` equal the session's CSRF token? Constant time.
pub fn csrf_matches(session_cookie: &str, presented: &str) -> bool {
    csrf_token(session_cookie)
        .as_bytes()
        .ct_eq(presented.as_bytes())
        .into()
}

/// Does `a` equal `b`? Constant time (for the login double-submit value).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The signed-in user of the session cookie, if it names a live session.
pub async fn session_viewer(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Viewer>, ApiError> {
    let Some(value) = cookie(headers, session_cookie(state)) else {
        return Ok(None);
    };
    let user = state
        .store
        .session_user(&secret::hash_secret(value), state.clock.now())
        .await?;
    Ok(user.map(|user| Viewer {
        user,
        via: Via::Session(value.to_owned()),
    }))
}

/// The user of a request: a valid `Authorization: Bearer <API key>`, else the session cookie.
/// An unknown key counts as no user (the caller decides whether that is a 401 or a login page).
pub async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Option<Viewer>, ApiError> {
    if let Some(token) = bearer_token(headers) {
        let found = state
            .store
            .authenticate_api_key(&secret::hash_secret(token), state.clock.now())
            .await?;
        match found {
            Some((_, user)) => {
                return Ok(Some(Viewer {
                    user,
                    via: Via::ApiKey,
                }))
            }
            None => state.log_paces.api_key_rejected(token, state.clock.now()),
        }
    }
    session_viewer(state, headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_once_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; oauth_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("oauth_session=evil"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
    }

    #[test]
    fn csrf_tokens_depend_on_the_session() {
        let t = csrf_token("session-1");
        assert!(csrf_matches("session-1", &t));
        assert!(!csrf_matches("session-2", &t));
        assert!(!csrf_matches("session-1", ""));
        assert_ne!(t, secret::hash_secret("session-1"));
    }
}
