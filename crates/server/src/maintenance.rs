//! Background work of a running server: reloading the signing keys, and purging rows nobody
//! needs any more, in bounded batches so that no table grows without end and no purge holds a
//! long transaction.
//!
//! Each purge is one entry in [`PURGES`]: a name and a store call that deletes at most `limit`
//! expired rows. Adding a table to the purge is adding an entry.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use oauth_core::UnixSeconds;
use oauth_store::Store;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// Rows deleted per statement: each is a short transaction.
pub const PURGE_BATCH: i64 = 500;
/// How long one purge may keep deleting in one run before the rest waits for the next run. A
/// table that grows faster than a fixed number of batches per run could delete (expired
/// assertion ids an attacker's own client spends, say) is emptied of its expired rows
/// anyway; the budget only keeps one purge from holding the others up without end.
pub const PURGE_RUN_BUDGET: Duration = Duration::from_secs(60);

type PurgeFuture<'a> = Pin<Box<dyn Future<Output = oauth_store::Result<u64>> + Send + 'a>>;
type PurgeFn = for<'a> fn(&'a dyn Store, Retention, UnixSeconds, i64) -> PurgeFuture<'a>;

/// How long rows that do not expire by themselves are kept (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Security events (the audit trail).
    pub security_events_secs: i64,
    /// Registered clients never used; `None`: kept.
    pub unused_clients_secs: Option<i64>,
    /// Failed sign-ins: the failure window (`authorization.login_failure_window_secs`), past
    /// which no count looks at them. Their keys hold what was typed as an email (or a hash of
    /// it), which may be a password typed in the wrong field: kept no longer than needed.
    pub login_failures_secs: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Self::from_config(&crate::config::Config::default())
    }
}

impl Retention {
    pub fn from_config(config: &crate::config::Config) -> Self {
        let unused = config.registration.unused_client_lifetime_secs;
        Self {
            security_events_secs: i64::from(config.audit.retention_days) * 86_400,
            unused_clients_secs: (unused > 0).then_some(unused),
            login_failures_secs: config.authorization.login_failure_window_secs,
        }
    }
}

fn revoked_tokens(s: &dyn Store, _: Retention, now: UnixSeconds, limit: i64) -> PurgeFuture<'_> {
    s.purge_revoked_tokens(now, limit)
}

fn retired_signing_keys(
    s: &dyn Store,
    _: Retention,
    now: UnixSeconds,
    limit: i64,
) -> PurgeFuture<'_> {
    s.purge_retired_signing_keys(now, limit)
}

/// The `jti`s of client assertions (RFC 7523) whose assertion has expired.
fn client_assertion_jtis(
    s: &dyn Store,
    _: Retention,
    now: UnixSeconds,
    limit: i64,
) -> PurgeFuture<'_> {
    s.purge_assertion_jtis(now, limit)
}

fn refresh_tokens(s: &dyn Store, _: Retention, now: UnixSeconds, limit: i64) -> PurgeFuture<'_> {
    s.purge_refresh_tokens(now, limit)
}

/// The longest failure window the configuration accepts.
pub use crate::config::LOGIN_FAILURE_RETENTION_SECS;

/// Expired sessions and consent requests, codes an hour past expiry (kept that long so that a
/// replay is still recognised as one), failed-login records past the failure window.
fn authorization(
    s: &dyn Store,
    retention: Retention,
    now: UnixSeconds,
    limit: i64,
) -> PurgeFuture<'_> {
    s.purge_authorization(now, now - retention.login_failures_secs, limit)
}

/// Security events past the retention.
fn security_events(
    s: &dyn Store,
    retention: Retention,
    now: UnixSeconds,
    limit: i64,
) -> PurgeFuture<'_> {
    s.purge_security_events(now - retention.security_events_secs, limit)
}

/// Clients registered through `/oauth/register` or met through their metadata document that
/// nobody authorized within `registration.unused_client_lifetime_secs` of their creation.
fn unused_clients(
    s: &dyn Store,
    retention: Retention,
    now: UnixSeconds,
    limit: i64,
) -> PurgeFuture<'_> {
    match retention.unused_clients_secs {
        Some(secs) => s.purge_unused_clients(now - secs, limit),
        None => Box::pin(async { Ok(0) }),
    }
}

/// Every purge, by name.
pub const PURGES: &[(&str, PurgeFn)] = &[
    ("revoked_tokens", revoked_tokens),
    ("signing_keys", retired_signing_keys),
    ("authorization", authorization),
    ("refresh_tokens", refresh_tokens),
    ("security_events", security_events),
    ("client_assertion_jtis", client_assertion_jtis),
    ("unused_clients", unused_clients),
];

/// Runs every purge once with the default retention; returns how many rows each deleted.
pub async fn purge_once(store: &dyn Store, now: UnixSeconds) -> Vec<(&'static str, u64)> {
    purge_with(store, &Retention::default(), now).await
}

/// Runs every purge once; returns how many rows each deleted. A failing purge is logged and
/// the others still run.
pub async fn purge_with(
    store: &dyn Store,
    retention: &Retention,
    now: UnixSeconds,
) -> Vec<(&'static str, u64)> {
    let mut out = Vec::with_capacity(PURGES.len());
    for (name, purge) in PURGES {
        let mut total = 0;
        let started = tokio::time::Instant::now();
        loop {
            match purge(store, *retention, now, PURGE_BATCH).await {
                Ok(n) => {
                    total += n;
                    if n < PURGE_BATCH as u64 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(purge = name, error = %e, "purge failed");
                    break;
                }
            }
            if started.elapsed() >= PURGE_RUN_BUDGET {
                tracing::warn!(
                    purge = name,
                    rows = total,
                    "purge stopped at its time budget with expired rows left; the next run goes on"
                );
                break;
            }
            // Requests get their turn between two deletions.
            tokio::task::yield_now().await;
        }
        if total > 0 {
            tracing::info!(purge = name, rows = total, "purged expired rows");
        }
        out.push((*name, total));
    }
    out
}

/// Starts the periodic tasks; they run until aborted.
pub fn spawn(state: &AppState) -> Vec<JoinHandle<()>> {
    let reload = {
        let state = state.clone();
        let every = Duration::from_secs(state.config.tokens.key_reload_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = state.keys.reload(state.clock.now()).await {
                    tracing::warn!(error = %e, "reloading signing keys failed; keeping the loaded ones");
                }
            }
        })
    };
    let purge = {
        let store: Arc<dyn Store> = state.store.clone();
        let clock = state.clock.clone();
        let every = Duration::from_secs(state.config.tokens.purge_interval_secs);
        let retention = Retention::from_config(&state.config);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                purge_with(store.as_ref(), &retention, clock.now()).await;
            }
        })
    };
    vec![reload, purge]
}
