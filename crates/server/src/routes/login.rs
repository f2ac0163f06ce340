//! `/login`, `/logout` and `/`: the browser's sign-in.
//!
//! - The login form is protected against login CSRF by a double-submit value: a random cookie
//!   set with the form, echoed in a hidden field, compared in constant time.
//! - Failed logins are counted in the database per account and per client address (an IPv6
//!   address by its /64) within a window, so the limit holds across instances. Each attempt is
//!   counted as a failure before its password is checked, atomically with the check of the
//!   limits, and given back when it succeeds: concurrent attempts cannot get more password
//!   checks than the limit. Once a limit is reached, the form answers 429 without checking the
//!   password.
//! - An unknown email and a wrong password get the same message, and both run argon2 (on a
//!   blocking thread, against a dummy hash built at start for an unknown email), so neither the
//!   text nor the timing tells which it was. A bounded number of checks run at once
//!   (`passwords.rs`); a sign-in that cannot get its turn soon is answered 503 without a check
//!   and without counting a failure.
//! - `return_to` is followed only when it is a same-origin path (`oauth_core::return_to`).

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use oauth_core::return_to::safe_return_to;
use oauth_core::secret;
use oauth_store::LoginReservation;
use rand::rngs::OsRng;

use crate::accounts::normalize_email;
use crate::audit::{self, Event, EventKind};
use crate::error::ApiError;
use crate::extract::{is_form, read_body};
use crate::html::{self, AccountPage, LoginPage};
use crate::login_budget::{
    budget, give_back, remember_device, reserve_attempt, succeeded, with_retry_after,
};
use crate::passwords::Verdict;
use crate::session::{self, login_csrf_cookie, session_cookie, Via};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", get(account_at_logout).post(logout))
        .route("/", get(account))
        .route(html::CSS_PATH, get(stylesheet))
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(login_form, login, account, account_at_logout, logout, stylesheet))]
pub(super) struct Doc;

#[utoipa::path(
    get,
    path = "/assets/oauth.css",
    operation_id = "GetStylesheet",
    tag = "Pages",
    summary = "The pages' stylesheet",
    responses((status = 200, description = "CSS", content_type = "text/css")),
    security(()),
)]
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html::CSS,
    )
        .into_response()
}

/// Renders the login form with a fresh double-submit CSRF value in a cookie and the form.
fn render_form(
    state: &AppState,
    status: StatusCode,
    return_to: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let csrf = secret::random_token(&mut OsRng);
    let return_to = safe_return_to(return_to).unwrap_or("/");
    let body = LoginPage {
        csrf_token: &csrf,
        return_to,
        email,
        error,
    }
    .render();
    let mut resp = html::page(status, body, &onward_source(return_to));
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(state, login_csrf_cookie(state), &csrf, 3600),
    );
    resp
}

/// Browsers apply `form-action` to every redirect that follows a form submission. After
/// signing in, `/oauth/authorize` may send the browser straight on to the client (an error, or
/// a code when consent is skipped), so the login page allows the origin of the `redirect_uri`
/// its `return_to` names, when it is a URI a client could register (so never `javascript:`,
/// `data:` or a bare scheme): anyone can write a `return_to`. The authorize endpoint still
/// decides whether that URI is registered.
fn onward_source(return_to: &str) -> String {
    let Some((path, query)) = return_to.split_once('?') else {
        return String::new();
    };
    if !path.ends_with("/oauth/authorize") {
        return String::new();
    }
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "redirect_uri")
        .filter(|(_, v)| oauth_core::redirect_uri::RedirectUri::parse(v).is_ok())
        .map(|(_, v)| html::csp_source(&v))
        .unwrap_or_default()
}

#[utoipa::path(
    get,
    path = "/login",
    operation_id = "ShowLoginForm",
    tag = "Pages",
    summary = "The sign-in form (HTML)",
    params(("return_to" = Option<String>, Query, description = "A same-origin path to go to after signing in")),
    responses((status = 200, description = "The form", content_type = "text/html")),
    security(()),
)]
async fn login_form(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    let pairs =
        crate::form::Params::parse(uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
    render_form(&state, StatusCode::OK, pairs.field("return_to"), "", None)
}

const BAD_CREDENTIALS: &str = "Incorrect email or password.";

#[utoipa::path(
    post,
    path = "/login",
    operation_id = "SignIn",
    tag = "Pages",
    summary = "Sign in with email and password (the form's post)",
    request_body(content = crate::form::schema::LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: sets the session cookie and goes to `return_to` or `/`"),
        (status = 401, description = "Incorrect email or password", content_type = "text/html"),
        (status = 403, description = "The form's CSRF value is missing or wrong", content_type = "text/html"),
        (status = 429, description = "Too many failed attempts", content_type = "text/html"),
        (status = 503, description = "Too many sign-ins at once; try again", content_type = "text/html"),
    ),
    security(()),
)]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    if !is_form(&headers) {
        return Ok(html::message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Sign-in failed",
            "The sign-in form must be posted as application/x-www-form-urlencoded.",
        ));
    }
    let bytes = read_body(req.into_body(), &state).await?;
    let Ok(form) = crate::form::Params::parse(&bytes) else {
        return Ok(render_form(
            &state,
            StatusCode::BAD_REQUEST,
            "/",
            "",
            Some("The form could not be read (a repeated field, a NUL byte, or text that is not UTF-8). Please try again."),
        ));
    };
    let return_to = form.field("return_to");
    let email_raw = form.field("email");

    // Login CSRF: the hidden field must equal the cookie this server set with the form.
    let cookie_csrf = session::cookie(&headers, login_csrf_cookie(&state)).unwrap_or("");
    let form_csrf = form.field("csrf_token");
    if cookie_csrf.is_empty() || !session::same_secret(cookie_csrf, form_csrf) {
        return Ok(render_form(
            &state,
            StatusCode::FORBIDDEN,
            return_to,
            email_raw,
            Some("Your sign-in form expired. Please try again."),
        ));
    }
    // The address's budget is spent only by a form this server gave out: a page elsewhere can
    // make its visitors' browsers post to this route (a form or a no-cors fetch needs no
    // permission), but cannot send the cookie with it, so it cannot use up their network's
    // sign-ins.
    state
        .rate_limits
        .login_ip(peer.ip(), state.clock.now())
        .await?;

    // No account has a name that is no email address, so nothing is counted or checked for
    // one: often a password typed into the wrong field, which must leave no trace, and a
    // shared count of such attempts would tell everyone who mistypes to wait.
    let Ok(email) = normalize_email(email_raw) else {
        return Ok(render_form(
            &state,
            StatusCode::BAD_REQUEST,
            return_to,
            "",
            Some("Enter the email address of your account."),
        ));
    };
    let now = state.clock.now();
    let budget = budget(&state, &headers, email_raw, peer, now).await?;
    let reservation = reserve_attempt(&state, &budget, now).await?;
    if let LoginReservation::Limited(which) = reservation {
        let limit = budget.limit_name(which);
        let event = Event::new(EventKind::LoginLocked).detail("limit", limit);
        // Stored once per locked key and window; each attempt after it is logged only.
        let key = budget.keys().into_iter().nth(which).unwrap_or_default();
        let window = state.config.authorization.login_failure_window_secs;
        if state.lockouts.first(&key, now, window) {
            audit::record(state.store.as_ref(), now, event).await;
        } else {
            audit::log_only(event);
        }
        return Ok(with_retry_after(
            &state,
            render_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                return_to,
                email_raw,
                Some("Too many failed sign-in attempts. Please wait a few minutes and try again."),
            ),
        ));
    }
    let reserved = budget.keys();

    let user = match state.store.find_user_by_email(&email).await {
        Ok(u) => u,
        Err(e) => {
            give_back(&state, &reserved, now).await;
            return Err(e.into());
        }
    };
    let password = form.field("password").to_owned();
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let verdict = state
        .passwords
        .check(password, stored_hash)
        .await
        .map_err(ApiError::internal)?;
    if verdict == Verdict::Busy {
        // Nothing was checked: no failure to count.
        give_back(&state, &reserved, now).await;
        tracing::warn!("sign-in refused: every password check is busy");
        let mut resp = render_form(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            return_to,
            email_raw,
            Some("The server is busy. Please try again in a moment."),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Ok(resp);
    }
    let user = match user {
        Some(u) if verdict == Verdict::Correct => u,
        known => {
            // The reserved failure stays: this attempt was one. The event names the user id
            // when the account exists, never the email as typed.
            let event = match &known {
                Some(u) => Event::new(EventKind::LoginFailed)
                    .user(u)
                    .detail("reason", "wrong_password"),
                None => Event::new(EventKind::LoginFailed).detail("reason", "unknown_account"),
            };
            audit::record(state.store.as_ref(), now, event).await;
            return Ok(refused(&state, return_to, email_raw));
        }
    };
    let (cookie_value, row) = session::new_session(&state, &user, &user.password_hash, now);
    let created = state.store.create_session(row).await?;
    if !created {
        // The password changed (or the account went) while this one was being checked: it is
        // no longer the password, and the change's "other sessions signed out" must hold. The
        // reserved failure stays, as for a wrong password.
        audit::record(
            state.store.as_ref(),
            now,
            Event::new(EventKind::LoginFailed)
                .user(&user)
                .detail("reason", "password_changed"),
        )
        .await;
        return Ok(refused(&state, return_to, email_raw));
    }
    // Signed in: the failures of what this attempt was counted under are forgotten (this
    // reservation with them), and the address gets its reservation back.
    succeeded(&state, &budget, now).await?;
    audit::record(
        state.store.as_ref(),
        now,
        Event::new(EventKind::LoginSucceeded)
            .user(&user)
            .detail("session", secret::log_label(&cookie_value)),
    )
    .await;
    let target = safe_return_to(return_to).unwrap_or("/");
    let mut resp = crate::respond::see_other(target);
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::set_session_cookie(&state, &cookie_value),
    );
    h.append(
        header::SET_COOKIE,
        session::set_cookie(&state, login_csrf_cookie(&state), "", 0),
    );
    if let Some(device) = remember_device(&state, &headers, &budget, &user, now).await {
        h.append(header::SET_COOKIE, device);
    }
    Ok(resp)
}

/// The form again, 401, with the one message for a wrong email or password.
fn refused(state: &AppState, return_to: &str, email: &str) -> Response {
    render_form(
        state,
        StatusCode::UNAUTHORIZED,
        return_to,
        email,
        Some(BAD_CREDENTIALS),
    )
}

/// `/` and `GET /logout`: who is signed in, with a sign-out button.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "ShowAccount",
    tag = "Pages",
    summary = "Who is signed in (HTML)",
    responses(
        (status = 200, description = "The account page", content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/login`"),
    ),
    security(("session" = [])),
)]
async fn account(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    match session::session_viewer(&state, &headers).await? {
        Some(v) => {
            let Via::Session(cookie) = &v.via else {
                return Ok(crate::respond::see_other("/login"));
            };
            let csrf = session::csrf_token(cookie);
            Ok(html::page(
                StatusCode::OK,
                AccountPage {
                    email: &v.user.email,
                    csrf_token: &csrf,
                }
                .render(),
                "",
            ))
        }
        None => Ok(crate::respond::see_other("/login")),
    }
}

/// `GET /logout`: the account page, with its sign-out button.
#[utoipa::path(
    get,
    path = "/logout",
    operation_id = "ShowSignOut",
    tag = "Pages",
    summary = "The account page, with its sign-out button (HTML)",
    responses(
        (status = 200, description = "The account page", content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/login`"),
    ),
    security(("session" = [])),
)]
async fn account_at_logout(
    state: State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    account(state, headers).await
}

/// `POST /logout`: deletes the session (on every instance) and the cookie. CSRF-protected, so
/// another site cannot sign the user out.
#[utoipa::path(
    post,
    path = "/logout",
    operation_id = "SignOut",
    tag = "Pages",
    summary = "Sign out (the account page's form)",
    request_body(content = crate::form::schema::CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed out (or was not signed in): to `/login`"),
        (status = 403, description = "The form's CSRF token is missing or wrong", content_type = "text/html"),
    ),
    security(("session" = [])),
)]
async fn logout(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let bytes = read_body(req.into_body(), &state).await?;
    let form = crate::form::Params::parse(&bytes).unwrap_or_default();
    let Some(cookie) = session::cookie(&headers, session_cookie(&state)) else {
        return Ok(crate::respond::see_other("/login"));
    };
    if !session::csrf_matches(cookie, form.field("csrf_token")) {
        return Ok(html::message(
            StatusCode::FORBIDDEN,
            "Sign-out failed",
            "This form expired. Go back, reload the page and try again.",
        ));
    }
    state
        .store
        .delete_session(&secret::hash_secret(cookie))
        .await?;
    let mut resp = crate::respond::see_other("/login");
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(&state, session_cookie(&state), "", 0),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_allows_the_authorize_requests_redirect_origin() {
        assert_eq!(
            onward_source("/oauth/authorize?client_id=x&redirect_uri=https%3A%2F%2Fa.example%2Fcb"),
            " https://a.example"
        );
        assert_eq!(
            onward_source("/v2/oauth/authorize?redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb"),
            " http://127.0.0.1:9"
        );
        assert_eq!(
            onward_source("/?redirect_uri=https%3A%2F%2Fa.example%2Fcb"),
            ""
        );
        assert_eq!(onward_source("/oauth/authorize"), "");
    }
}
