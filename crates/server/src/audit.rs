//! The audit trail: security events (sign-ins, failed sign-ins, consents, revoked grants,
//! failed client authentication, refresh token reuse, code replay, key rotation, ...), each
//! stored in the database (`security_events`, listed by `oauth-server events list`) and written
//! to the log as a structured event with the target [`LOG_TARGET`].
//!
//! Each place where such an event happens makes one call, [`record`], with an [`Event`] that
//! names identifiers only. What the request itself knows (the client address and the route) is
//! added from the [`RequestContext`] that the per-route middleware puts around every
//! request, so the call sites need not pass it along.
//!
//! Rules:
//! - An event never holds a secret: no password, client secret, API key, token, code or
//!   consent token, and no email address typed into the login form (it may be a password
//!   typed into the wrong field). Ids, kinds, reasons and key ids only.
//! - Recording never fails the request it describes: a failed insert is logged at warn, with
//!   the event, and the request goes on. The exception is an event stored by the write of the
//!   change itself ([`StoredWith`]: a consent approval), which is stored with it or not at all.
//! - The client_credentials success path records nothing (it is the hot path, and a
//!   self-contained token issued to an authenticated client is no security event).
//! - Failed authentication of an unknown client id is logged, not stored: anyone can send
//!   endless made-up ids, and a row for each would let them fill the table.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request};
use oauth_core::entity::User;
use oauth_core::{Client, UnixSeconds};
use oauth_store::{NewSecurityEvent, Store};
use serde_json::{Map, Value};

/// The `tracing` target of security events in the log.
pub const LOG_TARGET: &str = "oauth::security";

/// What happened. The string forms (`as_str`) are what the database and the log hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A user signed in with the login form.
    LoginSucceeded,
    /// A wrong password, or an unknown email (the user id is set when the account exists).
    LoginFailed,
    /// The failed-login limit of an account or an address was reached; the form was refused.
    LoginLocked,
    /// The user allowed a client (a grant created or widened, a code issued).
    ConsentApproved,
    /// The user denied a client.
    ConsentDenied,
    /// A grant was revoked by its user (`DELETE /oauth_grants/{id}`), with every token family
    /// under it.
    GrantRevoked,
    /// One token family (the tokens descending from one authorization code) was revoked: by its
    /// client (RFC 7009), or by the server after reuse of a refresh token or replay of a code.
    TokenFamilyRevoked,
    /// A client presented a wrong secret, or none where one is required (or one where none
    /// is expected), at the token, introspection or revocation endpoint.
    ClientAuthenticationFailed,
    /// A used refresh token was presented again (RFC 9700 §4.14.2); its token family is
    /// revoked.
    RefreshTokenReused,
    /// A refresh token was presented by a client it was not issued to.
    RefreshTokenWrongClient,
    /// A used authorization code was presented again by its client (RFC 6749 §4.1.2); the
    /// token family of its first exchange is revoked.
    AuthorizationCodeReplayed,
    /// An authorization code was presented by a client it was not issued to.
    AuthorizationCodeWrongClient,
    /// A client revoked one of its access tokens (RFC 7009).
    AccessTokenRevoked,
    /// A new signing key was added (`oauth-server keys rotate`).
    SigningKeyRotated,
    /// An API key was created (admin command).
    ApiKeyCreated,
    /// An API key was revoked (admin command).
    ApiKeyRevoked,
    /// A client was created through the management API.
    ClientCreated,
    /// A client was registered dynamically (RFC 7591).
    ClientRegistered,
    /// A client's settings were changed.
    ClientUpdated,
    /// A client was deleted.
    ClientDeleted,
    /// A client was marked verified (admin command).
    ClientVerified,
    /// A user changed their password (`/account/password`), or the operator set it (`oauth-server
    /// users set-password`, detail `by: operator`); their other sessions were ended.
    PasswordChanged,
    /// A password change was refused: the current password was wrong.
    PasswordChangeFailed,
    /// A user signed out their other sessions.
    OtherSessionsSignedOut,
    /// The operator removed a user (`oauth-server users delete`); their sessions, API keys and
    /// grants ended with them.
    UserDeleted,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::LoginSucceeded,
        EventKind::LoginFailed,
        EventKind::LoginLocked,
        EventKind::ConsentApproved,
        EventKind::ConsentDenied,
        EventKind::GrantRevoked,
        EventKind::TokenFamilyRevoked,
        EventKind::ClientAuthenticationFailed,
        EventKind::RefreshTokenReused,
        EventKind::RefreshTokenWrongClient,
        EventKind::AuthorizationCodeReplayed,
        EventKind::AuthorizationCodeWrongClient,
        EventKind::AccessTokenRevoked,
        EventKind::SigningKeyRotated,
        EventKind::ApiKeyCreated,
        EventKind::ApiKeyRevoked,
        EventKind::ClientCreated,
        EventKind::ClientRegistered,
        EventKind::ClientUpdated,
        EventKind::ClientDeleted,
        EventKind::ClientVerified,
        EventKind::PasswordChanged,
        EventKind::PasswordChangeFailed,
        EventKind::OtherSessionsSignedOut,
        EventKind::UserDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LoginSucceeded => "login.succeeded",
            EventKind::LoginFailed => "login.failed",
            EventKind::LoginLocked => "login.locked",
            EventKind::ConsentApproved => "consent.approved",
            EventKind::ConsentDenied => "consent.denied",
            EventKind::GrantRevoked => "grant.revoked",
            EventKind::TokenFamilyRevoked => "token_family.revoked",
            EventKind::ClientAuthenticationFailed => "client.authentication_failed",
            EventKind::RefreshTokenReused => "refresh_token.reused",
            EventKind::RefreshTokenWrongClient => "refresh_token.wrong_client",
            EventKind::AuthorizationCodeReplayed => "authorization_code.replayed",
            EventKind::AuthorizationCodeWrongClient => "authorization_code.wrong_client",
            EventKind::AccessTokenRevoked => "access_token.revoked",
            EventKind::SigningKeyRotated => "signing_key.rotated",
            EventKind::ApiKeyCreated => "api_key.created",
            EventKind::ApiKeyRevoked => "api_key.revoked",
            EventKind::ClientCreated => "client.created",
            EventKind::ClientRegistered => "client.registered",
            EventKind::ClientUpdated => "client.updated",
            EventKind::ClientDeleted => "client.deleted",
            EventKind::ClientVerified => "client.verified",
            EventKind::PasswordChanged => "password.changed",
            EventKind::PasswordChangeFailed => "password.change_failed",
            EventKind::OtherSessionsSignedOut => "sessions.signed_out_others",
            EventKind::UserDeleted => "user.deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Signs of an attack are logged at warn; the rest at info.
    fn is_alarm(self) -> bool {
        matches!(
            self,
            EventKind::LoginLocked
                | EventKind::RefreshTokenReused
                | EventKind::AuthorizationCodeReplayed
                | EventKind::RefreshTokenWrongClient
                | EventKind::AuthorizationCodeWrongClient
        )
    }
}

/// One security event, built at the place where it happens: identifiers and non-secret facts.
#[derive(Debug, Clone)]
pub struct Event {
    kind: EventKind,
    org_id: Option<String>,
    user_id: Option<String>,
    client_id: Option<String>,
    grant_id: Option<String>,
    detail: Map<String, Value>,
}

impl Event {
    pub fn new(kind: EventKind) -> Self {
        Self {
            kind,
            org_id: None,
            user_id: None,
            client_id: None,
            grant_id: None,
            detail: Map::new(),
        }
    }

    /// The user, and their organization.
    pub fn user(mut self, user: &User) -> Self {
        self.user_id = Some(user.id.clone());
        self.org_id = Some(user.org_id.clone());
        self
    }

    pub fn user_id(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }

    /// The client, and its organization unless a user's is already set.
    pub fn client(mut self, client: &Client) -> Self {
        self.client_id = Some(client.client_id.clone());
        if self.org_id.is_none() {
            self.org_id = Some(client.org_id.clone());
        }
        self
    }

    pub fn client_id(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    pub fn org_id(mut self, org_id: &str) -> Self {
        self.org_id = Some(org_id.to_owned());
        self
    }

    pub fn grant_id(mut self, grant_id: &str) -> Self {
        self.grant_id = Some(grant_id.to_owned());
        self
    }

    /// A further fact. Never a secret.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }

    /// The row to store: this event, the request's address and route, and the time. An
    /// `endpoint` the event names itself is kept.
    fn into_row(
        self,
        now: UnixSeconds,
        ip: Option<IpAddr>,
        route: Option<&str>,
    ) -> NewSecurityEvent {
        let mut detail = self.detail;
        if let Some(route) = route {
            detail
                .entry("endpoint".to_owned())
                .or_insert_with(|| Value::String(route.to_owned()));
        }
        NewSecurityEvent {
            occurred_at: now,
            kind: self.kind.as_str().to_owned(),
            org_id: self.org_id,
            user_id: self.user_id,
            client_id: self.client_id,
            grant_id: self.grant_id,
            ip: ip.map(|a| a.to_string()),
            detail: Value::Object(detail),
        }
    }
}

/// What the HTTP request behind an event knows about itself.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The peer address (an IPv4 client reached over IPv6 shows as IPv4).
    pub ip: Option<IpAddr>,
    /// The route template (`/oauth/token`), never the concrete path or query. (A shared
    /// string: the middleware runs on every request, hot paths included, and only clones it.)
    pub route: Option<MatchedPath>,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

impl RequestContext {
    /// The context of an HTTP request: its peer's address and its route template.
    pub fn of(req: &Request) -> Self {
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_canonical());
        let route = req.extensions().get::<MatchedPath>().cloned();
        Self { ip, route }
    }

    /// Runs `work` (the rest of the request) inside this context.
    pub fn scope<F: Future>(self, work: F) -> impl Future<Output = F::Output> {
        REQUEST.scope(self, work)
    }
}

/// The row of `event`, with the address and route of the request being served, if any (an
/// admin command has none).
fn row_in_context(event: Event, now: UnixSeconds) -> NewSecurityEvent {
    let context = REQUEST.try_with(RequestContext::clone).unwrap_or_default();
    event.into_row(
        now,
        context.ip,
        context.route.as_ref().map(MatchedPath::as_str),
    )
}

/// Writes the event to the log and stores it. A storage failure is logged at warn, with the
/// event, and otherwise ignored: the request it describes goes on.
pub async fn record(store: &dyn Store, now: UnixSeconds, event: Event) {
    crate::metrics::security_event(event.kind.as_str());
    let alarm = event.kind.is_alarm();
    let row = row_in_context(event, now);
    log(&row, alarm);
    if let Err(e) = store.record_security_event(&row).await {
        tracing::warn!(
            target: LOG_TARGET,
            kind = %row.kind,
            error = %e,
            "storing a security event failed; it is only in this log"
        );
    }
}

/// An event stored by the same write as the change it describes (`Approval::event`): both are
/// stored or neither, in one commit. [`StoredWith::row`] goes to the write; once it succeeded,
/// [`StoredWith::stored`] counts and logs the event as [`record`] does.
pub struct StoredWith {
    kind: EventKind,
    row: NewSecurityEvent,
}

impl StoredWith {
    /// The row of `event`, with the address and route of the request being served.
    pub fn new(event: Event, now: UnixSeconds) -> Self {
        Self {
            kind: event.kind,
            row: row_in_context(event, now),
        }
    }

    pub fn row(&self) -> &NewSecurityEvent {
        &self.row
    }

    /// The write stored the event (under `grant_id`, if it names one), with `detail` members as
    /// the write set them: counted and logged.
    pub fn stored(mut self, grant_id: Option<&str>, detail: &[(&str, serde_json::Value)]) {
        if let Some(grant_id) = grant_id {
            self.row.grant_id = Some(grant_id.to_owned());
        }
        if let Some(d) = self.row.detail.as_object_mut() {
            for (k, v) in detail {
                d.insert((*k).to_owned(), v.clone());
            }
        }
        crate::metrics::security_event(self.kind.as_str());
        log(&self.row, self.kind.is_alarm());
    }
}

/// A replayed authorization code or a reused refresh token of the grant's user `user_id`,
/// presented by `client`: the event, and, when `family_revoked`, the revocation of its token
/// family that the server made in answer. The store answers a replay once per code (it notes
/// the replay on the code) and a reuse once per family (the family's tokens are refused before reuse is
/// looked for), so a client presenting its own spent code again and again does not grow the
/// table; and a replay is stored even when the family was revoked already (the client revoked
/// its refresh token, say), since it is the sign that the code was used twice.
pub async fn record_replay(
    store: &dyn Store,
    now: UnixSeconds,
    kind: EventKind,
    client: &Client,
    grant_id: &str,
    user_id: Option<&str>,
    family_revoked: bool,
) {
    let about = |kind| {
        let event = Event::new(kind).client(client).grant_id(grant_id);
        match user_id {
            Some(user_id) => event.user_id(user_id),
            None => event,
        }
    };
    record(
        store,
        now,
        about(kind).detail("family_revoked", family_revoked),
    )
    .await;
    if !family_revoked {
        return;
    }
    let revoked = about(EventKind::TokenFamilyRevoked)
        .detail("by", "server")
        .detail("reason", kind.as_str());
    record(store, now, revoked).await;
}

/// Logs an event without storing it (see the module's rules for when).
pub fn log_only(event: Event) {
    crate::metrics::security_event(event.kind.as_str());
    let alarm = event.kind.is_alarm();
    log(&row_in_context(event, 0), alarm);
}

fn log(row: &NewSecurityEvent, alarm: bool) {
    let detail = row.detail.to_string();
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    macro_rules! emit {
        ($level:ident) => {
            tracing::$level!(
                target: LOG_TARGET,
                kind = %row.kind,
                org_id = %o(&row.org_id),
                user_id = %o(&row.user_id),
                client_id = %o(&row.client_id),
                grant_id = %o(&row.grant_id),
                ip = %o(&row.ip),
                detail = %detail,
                "security event"
            )
        };
    }
    if alarm {
        emit!(warn);
    } else {
        emit!(info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
            assert!(seen.insert(k.as_str()), "{} twice", k.as_str());
        }
        assert_eq!(EventKind::parse("login"), None);
    }

    #[test]
    fn a_row_takes_the_address_and_route_and_keeps_an_explicit_endpoint() {
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        let route = Some("/oauth/token");
        let row = Event::new(EventKind::LoginFailed)
            .user_id("u")
            .into_row(5, ip, route);
        assert_eq!(row.ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(row.detail["endpoint"], "/oauth/token");
        assert_eq!(row.kind, "login.failed");
        assert_eq!(row.occurred_at, 5);
        let row = Event::new(EventKind::GrantRevoked)
            .detail("endpoint", "x")
            .into_row(5, ip, route);
        assert_eq!(row.detail["endpoint"], "x");
        let row = Event::new(EventKind::SigningKeyRotated).into_row(5, None, None);
        assert_eq!((row.ip, row.detail), (None, Value::Object(Map::new())));
    }
}
