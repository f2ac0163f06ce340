//! The signed-in user's own pages: the apps they granted access to (and revoking one), and
//! changing their password or signing out their other sessions.
//!
//! Every page needs the session cookie (an API key is not a browser); every form carries the
//! session's CSRF token and is refused without it. Revoking here is the management API's revoke
//! (`DELETE /oauth_grants/{id}`): the same store operation ends the grant, its codes, its refresh
//! tokens and every token family under it at once. Another user's grant answers 404, as if it
//! did not exist. Sessions are rows keyed by the cookie's hash (`session.rs`), so signing out
//! the other sessions deletes their rows and they stop working on every instance at once.

use askama::Template;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use oauth_core::entity::User;
use oauth_core::{secret, timefmt, PageSpec};
use oauth_store::{LoginReservation, PasswordChange, StoreError};
use std::net::SocketAddr;

use crate::accounts::{hash_password, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::audit::{self, Event, EventKind};
use crate::error::ApiError;
use crate::extract::{is_form, read_body, PathParam};
use crate::form::Params;
use crate::html::{self, AppLine, AppsPage, PasswordPage};
use crate::login_budget;
use crate::passwords::Verdict;
use crate::respond::see_other;
use crate::session::{self, Via, Viewer};
use crate::state::AppState;

pub const APPS_PATH: &str = "/account/apps";
pub const PASSWORD_PATH: &str = "/account/password";

/// The most grants the page lists.
const MAX_APPS_SHOWN: u64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(APPS_PATH, get(apps_page))
        .route("/account/apps/{grant_id}/revoke", post(revoke_app))
        .route(PASSWORD_PATH, get(password_page).post(change_password))
        .route("/account/sessions/sign-out-others", post(sign_out_others))
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(apps_page, revoke_app, password_page, change_password, sign_out_others))]
pub(super) struct Doc;

/// The signed-in user and their session cookie, or the answer that sends them to sign in.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    come_back_to: &str,
) -> Result<Result<(User, String), Response>, ApiError> {
    match session::session_viewer(state, headers).await? {
        Some(Viewer {
            user,
            via: Via::Session(cookie),
        }) => Ok(Ok((user, cookie))),
        _ => {
            let back: String =
                url::form_urlencoded::byte_serialize(come_back_to.as_bytes()).collect();
            Ok(Err(see_other(&format!("/login?return_to={back}"))))
        }
    }
}

/// The form of a post that carries the session's CSRF token; otherwise the page to answer, and
/// nothing is done: a body that is not a form (415) or a form that cannot be read (400), as the
/// sign-in form answers, or one without the token (403: it expired, or another site posted it).
async fn checked_form(
    state: &AppState,
    req: Request,
    cookie: &str,
) -> Result<Result<Params, Response>, ApiError> {
    if !is_form(req.headers()) {
        return Ok(Err(html::message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Nothing was changed",
            "The form must be posted as application/x-www-form-urlencoded.",
        )));
    }
    let bytes = read_body(req.into_body(), state).await?;
    let Ok(form) = Params::parse(&bytes) else {
        return Ok(Err(html::message(
            StatusCode::BAD_REQUEST,
            "Nothing was changed",
            "The form could not be read (a repeated field, a NUL byte, or text that is not \
             UTF-8). Go back, reload the page and try again.",
        )));
    };
    if !session::csrf_matches(cookie, form.field("csrf_token")) {
        return Ok(Err(html::message(
            StatusCode::FORBIDDEN,
            "Nothing was changed",
            "This form expired. Go back, reload the page and try again.",
        )));
    }
    Ok(Ok(form))
}

#[utoipa::path(
    get,
    path = "/account/apps",
    operation_id = "ShowConnectedApps",
    tag = "Pages",
    summary = "The apps the signed-in user granted access to (HTML)",
    responses(
        (status = 200, description = "Each app's name, verified mark, scopes, when granted and last used, redirect host, and a revoke button", content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/login`"),
    ),
    security(("session" = [])),
)]
async fn apps_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (user, cookie) = match signed_in(&state, &headers, APPS_PATH).await? {
        Ok(v) => v,
        Err(to_login) => return Ok(to_login),
    };
    let mut grants = Vec::new();
    let size = 100;
    for number in 1..=MAX_APPS_SHOWN / size {
        let page = state
            .store
            .list_grants(&user.id, PageSpec { number, size })
            .await?;
        let last = (page.items.len() as u64) < size;
        grants.extend(page.items);
        if last {
            break;
        }
    }
    // One read for every app on the page.
    let mut ids: Vec<String> = grants.iter().map(|g| g.client_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let clients: std::collections::HashMap<String, oauth_core::Client> = state
        .store
        .get_clients(&ids)
        .await?
        .into_iter()
        .map(|c| (c.client_id.clone(), c))
        .collect();
    let mut apps = Vec::with_capacity(grants.len());
    for g in grants {
        let client = clients.get(&g.client_id);
        let (name, verified, hosts) = match client {
            Some(c) => {
                let mut hosts: Vec<String> = c
                    .settings
                    .redirect_uris
                    .iter()
                    .map(|u| html::return_host(u))
                    .collect();
                hosts.sort();
                hosts.dedup();
                (c.settings.name.clone(), c.verified, hosts.join(", "))
            }
            None => ("A deleted app".to_owned(), false, String::new()),
        };
        apps.push(AppLine {
            grant_id: g.id.clone(),
            name,
            verified,
            scopes: g.scopes.clone(),
            granted_at: timefmt::rfc3339(g.created_at),
            last_used_at: g.last_used_at.map(timefmt::rfc3339),
            redirect_host: hosts,
            installation_host: (!g.installation.is_empty())
                .then(|| html::return_host(&g.installation)),
            installation_local: url::Url::parse(&g.installation)
                .is_ok_and(|u| u.host_str().is_some_and(oauth_core::cimd::is_loopback_host)),
            document: client.and_then(|c| html::document_place(&c.client_id)),
        });
    }
    let csrf = session::csrf_token(&cookie);
    Ok(html::page(
        StatusCode::OK,
        AppsPage {
            email: &user.email,
            apps,
            csrf_token: &csrf,
        }
        .render(),
        "",
    ))
}

#[utoipa::path(
    post,
    path = "/account/apps/{grant_id}/revoke",
    operation_id = "RevokeConnectedApp",
    tag = "Pages",
    summary = "Revoke one of the signed-in user's grants, and every token under it (the apps page's form)",
    params(("grant_id" = String, Path, description = "The grant id")),
    request_body(content = crate::form::schema::CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Revoked: back to the apps page (or not signed in: to `/login`)"),
        (status = 403, description = "The form's CSRF token is missing or wrong; nothing was revoked", content_type = "text/html"),
        (status = 404, description = "No such grant of the signed-in user; nothing was revoked", content_type = "text/html"),
    ),
    security(("session" = [])),
)]
async fn revoke_app(
    State(state): State<AppState>,
    PathParam(grant_id): PathParam,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let (user, cookie) = match signed_in(&state, &headers, APPS_PATH).await? {
        Ok(v) => v,
        Err(to_login) => return Ok(to_login),
    };
    if let Err(page) = checked_form(&state, req, &cookie).await? {
        return Ok(page);
    }
    let now = state.clock.now();
    let Some(grant) = state.store.revoke_grant(&user.id, &grant_id, now).await? else {
        return Ok(html::message(
            StatusCode::NOT_FOUND,
            "No such app",
            "This app has no access to your account (it may have been revoked already).",
        ));
    };
    audit::record(
        state.store.as_ref(),
        now,
        Event::new(EventKind::GrantRevoked)
            .user(&user)
            .client_id(&grant.client_id)
            .grant_id(&grant.id)
            .detail("by", "user"),
    )
    .await;
    Ok(see_other(APPS_PATH))
}

fn render_password_page(
    status: StatusCode,
    user: &User,
    cookie: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let csrf = session::csrf_token(cookie);
    html::page(
        status,
        PasswordPage {
            email: &user.email,
            csrf_token: &csrf,
            error,
            notice,
        }
        .render(),
        "",
    )
}

#[utoipa::path(
    get,
    path = "/account/password",
    operation_id = "ShowPasswordForm",
    tag = "Pages",
    summary = "Change one's password, or sign out one's other sessions (HTML)",
    responses(
        (status = 200, description = "The forms", content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/login`"),
    ),
    security(("session" = [])),
)]
async fn password_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (user, cookie) = match signed_in(&state, &headers, PASSWORD_PATH).await? {
        Ok(v) => v,
        Err(to_login) => return Ok(to_login),
    };
    Ok(render_password_page(
        StatusCode::OK,
        &user,
        &cookie,
        None,
        None,
    ))
}

#[utoipa::path(
    post,
    path = "/account/password",
    operation_id = "ChangePassword",
    tag = "Pages",
    summary = "Change one's password (current password required); signs out every other session",
    request_body(content = crate::form::schema::PasswordForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Changed; every other session is signed out", content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/login`"),
        (status = 400, description = "The new password is too short, too long, or not repeated exactly", content_type = "text/html"),
        (status = 401, description = "The current password is wrong; nothing was changed", content_type = "text/html"),
        (status = 403, description = "The form's CSRF token is missing or wrong; nothing was changed", content_type = "text/html"),
        (status = 429, description = "Too many wrong passwords for this account (with the sign-in form's failures) or from this address; nothing was changed", content_type = "text/html"),
        (status = 503, description = "Too many password checks at once; try again", content_type = "text/html"),
    ),
    security(("session" = [])),
)]
async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Result<Response, ApiError> {
    let PasswordPost {
        headers,
        user,
        cookie,
        form,
    } = match password_post(&state, peer, req).await? {
        Ok(post) => post,
        Err(page) => return Ok(page),
    };
    let new = form.field("new_password");
    let again = form.field("confirm_password");
    let bad = |message: &str| {
        render_password_page(StatusCode::BAD_REQUEST, &user, &cookie, Some(message), None)
    };
    let length = new.chars().count();
    if length < MIN_PASSWORD_CHARS {
        return Ok(bad("The new password must have at least 8 characters."));
    }
    if length > MAX_PASSWORD_CHARS {
        return Ok(bad("The new password must have at most 1024 characters."));
    }
    if new != again {
        return Ok(bad("The two new passwords differ."));
    }
    let budget = match confirm_current_password(
        &state,
        (&headers, peer),
        (&user, &cookie),
        form.field("current_password"),
        "password",
    )
    .await?
    {
        Confirmed::Yes(budget) => budget,
        Confirmed::Refused(page) => return Ok(page),
    };
    let to_hash = new.to_owned();
    let new_hash = tokio::task::spawn_blocking(move || hash_password(&to_hash))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // The session that made the change is replaced in the same write, as a sign-in would: a
    // copy of its cookie taken earlier (often why a password is changed) ends with the other
    // sessions, even if this answer never reaches the browser.
    let now = state.clock.now();
    let (fresh, replacement) = session::new_session(&state, &user, &new_hash, now);
    // Stored by the change's own write: a change never goes without its event, even if this
    // handler is dropped (the browser hung up) the moment after the commit.
    let event = audit::StoredWith::new(Event::new(EventKind::PasswordChanged).user(&user), now);
    let change = PasswordChange {
        user_id: user.id.clone(),
        old_hash: user.password_hash.clone(),
        new_hash: new_hash.clone(),
        keep_session: secret::hash_secret(&cookie),
        keep_device: budget.device_hash().unwrap_or("").to_owned(),
        replacement: Some(replacement),
        event: Some(event.row().clone()),
        // The current password was just checked as a sign-in checks it, which forgot them.
        forget_failures: None,
    };
    let ended = match state.store.change_password(&change).await {
        Ok(Some(ended)) => ended,
        // The password changed between the check and the write (another tab), or this session
        // was signed out meanwhile: nothing was changed.
        Ok(None) | Err(StoreError::Conflict(_)) => {
            return Ok(render_password_page(
                StatusCode::CONFLICT,
                &user,
                &cookie,
                Some("Your password was changed elsewhere, or this session was signed out, meanwhile. Nothing was changed here."),
                None,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    event.stored(None, &[("other_sessions_ended", ended.into())]);
    // The change forgot every other browser's device cookie; this one keeps its own, or gets
    // one.
    let mut resp = answer_with_session(
        &state,
        &user,
        &fresh,
        "Your password was changed, and your other sessions were signed out.",
    );
    // Remembered under the new password, which the store now holds.
    let user = User {
        password_hash: new_hash,
        ..user
    };
    if let Some(device) = login_budget::remember_device(&state, &headers, &budget, &user, now).await
    {
        resp.headers_mut().append(header::SET_COOKIE, device);
    }
    Ok(resp)
}

/// What the current password typed into a form of the password page came to.
enum Confirmed {
    /// Right; the sign-in budget it was checked under (to remember this browser by).
    Yes(login_budget::Budget),
    /// The page to answer with: wrong (401), too many wrong ones (429), or the server busy.
    Refused(Response),
}

/// Checks the current password a signed-in user typed, as a sign-in checks it. A stolen session
/// must not get unlimited guesses across addresses: a wrong one is a failed sign-in of the
/// account, reserved before the check as the sign-in form does, so the forms share one budget
/// per account (and per address). `form` names the form in the failure's event.
async fn confirm_current_password(
    state: &AppState,
    (headers, peer): (&HeaderMap, SocketAddr),
    (user, cookie): (&User, &str),
    typed: &str,
    form: &'static str,
) -> Result<Confirmed, ApiError> {
    let now = state.clock.now();
    let budget = login_budget::budget(state, headers, &user.email, peer, now).await?;
    let reservation = login_budget::reserve_attempt(state, &budget, now).await?;
    if let LoginReservation::Limited(_) = reservation {
        return Ok(Confirmed::Refused(login_budget::with_retry_after(
            state,
            render_password_page(
                StatusCode::TOO_MANY_REQUESTS,
                user,
                cookie,
                Some("Too many wrong passwords. Nothing was changed. Please wait a few minutes and try again."),
                None,
            ),
        )));
    }
    let reserved = budget.keys();
    let verdict = state
        .passwords
        .check(typed.to_owned(), Some(user.password_hash.clone()))
        .await;
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => {
            login_budget::give_back(state, &reserved, now).await;
            return Err(ApiError::internal(e));
        }
    };
    match verdict {
        Verdict::Correct => {
            // As a sign-in: the account's failures are forgotten, the address gets its
            // reservation back.
            login_budget::succeeded(state, &budget, now).await?;
            Ok(Confirmed::Yes(budget))
        }
        Verdict::Busy => {
            // Nothing was checked: no failure to count.
            login_budget::give_back(state, &reserved, now).await;
            Ok(Confirmed::Refused(html::message(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy",
                "Nothing was changed. Please try again in a moment.",
            )))
        }
        Verdict::Wrong => {
            audit::record(
                state.store.as_ref(),
                state.clock.now(),
                Event::new(EventKind::PasswordChangeFailed)
                    .user(user)
                    .detail("form", form),
            )
            .await;
            Ok(Confirmed::Refused(render_password_page(
                StatusCode::UNAUTHORIZED,
                user,
                cookie,
                Some("The current password is incorrect. Nothing was changed."),
                None,
            )))
        }
    }
}

#[utoipa::path(
    post,
    path = "/account/sessions/sign-out-others",
    operation_id = "SignOutOtherSessions",
    tag = "Pages",
    summary = "Sign out every session of the user but this one",
    request_body(content = crate::form::schema::SignOutOthersForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done", content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/login`"),
        (status = 401, description = "The password is wrong; nothing was changed", content_type = "text/html"),
        (status = 403, description = "The form's CSRF token is missing or wrong; nothing was changed", content_type = "text/html"),
        (status = 429, description = "Too many wrong passwords or sign-ins; see `Retry-After`", content_type = "text/html"),
    ),
    security(("session" = [])),
)]
async fn sign_out_others(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Result<Response, ApiError> {
    let PasswordPost {
        headers,
        user,
        cookie,
        form,
    } = match password_post(&state, peer, req).await? {
        Ok(post) => post,
        Err(page) => return Ok(page),
    };
    // The password, not the session alone: signing the others out forgets their device
    // cookies, which are what keeps the owner's own browsers signing in while the account is
    // locked. A stolen session could otherwise take that away, then keep the owner locked out
    // with wrong passwords (threat-model.md, "Costs that stay with the attacker").
    if let Confirmed::Refused(page) = confirm_current_password(
        &state,
        (&headers, peer),
        (&user, &cookie),
        form.field("current_password"),
        "sign_out_others",
    )
    .await?
    {
        return Ok(page);
    }
    // This browser gets a new session, as at sign-in and at a password change, and its old
    // one ends with the others: a copy of its cookie taken earlier (the reason to sign the
    // others out, often) must not stay signed in.
    let now = state.clock.now();
    let (fresh, replacement) = session::new_session(&state, &user, &user.password_hash, now);
    if !state.store.create_session(replacement).await? {
        // The password changed meanwhile (in another tab): nothing was changed here.
        return Ok(render_password_page(
            StatusCode::CONFLICT,
            &user,
            &cookie,
            Some("Your password was changed elsewhere meanwhile. Nothing was changed here."),
            None,
        ));
    }
    // The other browsers lose their device cookies too: whoever signed in elsewhere keeps no
    // failure budget of their own for this account.
    let this_device = session::cookie(&headers, session::login_device_cookie(&state))
        .map(secret::hash_secret)
        .unwrap_or_default();
    let ended = state
        .store
        .delete_other_sessions(&user.id, &secret::hash_secret(&fresh), &this_device)
        .await?;
    audit::record(
        state.store.as_ref(),
        now,
        Event::new(EventKind::OtherSessionsSignedOut)
            .user(&user)
            // This browser's previous session is among those deleted.
            .detail("other_sessions_ended", ended.saturating_sub(1)),
    )
    .await;
    Ok(answer_with_session(
        &state,
        &user,
        &fresh,
        "Your other sessions were signed out.",
    ))
}

/// A post to the password page, read as far as the password check.
struct PasswordPost {
    headers: HeaderMap,
    user: User,
    /// The session cookie the post came with.
    cookie: String,
    form: Params,
}

/// Reads a post to the password page: signed in, a form with the session's CSRF token, and
/// within the sign-in form's per-address limit (a stolen session must not get unlimited guesses
/// at the password). Otherwise the page to answer, and nothing is done.
async fn password_post(
    state: &AppState,
    peer: SocketAddr,
    req: Request,
) -> Result<Result<PasswordPost, Response>, ApiError> {
    let headers = req.headers().clone();
    let (user, cookie) = match signed_in(state, &headers, PASSWORD_PATH).await? {
        Ok(v) => v,
        Err(to_login) => return Ok(Err(to_login)),
    };
    let form = match checked_form(state, req, &cookie).await? {
        Ok(form) => form,
        Err(page) => return Ok(Err(page)),
    };
    state
        .rate_limits
        .login_ip(peer.ip(), state.clock.now())
        .await?;
    Ok(Ok(PasswordPost {
        headers,
        user,
        cookie,
        form,
    }))
}

/// The password page with `notice`, setting this browser's new session cookie.
fn answer_with_session(state: &AppState, user: &User, cookie: &str, notice: &str) -> Response {
    let mut resp = render_password_page(StatusCode::OK, user, cookie, None, Some(notice));
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::set_session_cookie(state, cookie),
    );
    resp
}
