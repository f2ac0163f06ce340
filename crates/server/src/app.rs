//! Starting and stopping the server: open the database, migrate, bootstrap, bind, serve until
//! told to stop, then finish the requests in flight and close the database.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use oauth_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::accounts::{self, BootstrapCredentials};
use crate::clock::{Clock, SystemClock};
use crate::config::{redact_url, without_url_secrets, Config};
use crate::maintenance;
use crate::passwords::PasswordChecks;
use crate::routes;
use crate::serve::{self, ConnectionLimits};
use crate::signing::{self, KeyRing};
use crate::state::AppState;

/// A server running in this process.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served (`[metrics] bind`), if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    pub issuer: String,
    /// The first start of an empty database creates an admin; these are its credentials.
    pub bootstrap: Option<BootstrapCredentials>,
    pub store: Arc<dyn Store>,
    /// The signing keys this server holds in memory.
    pub keys: Arc<KeyRing>,
    /// The sign-in form's password checks (and the dummy hash of unknown emails, built at start).
    pub passwords: Arc<PasswordChecks>,
    /// The key of the failed-login counters' account keys (`RunningServer::account_failure_key`).
    login_keys: Arc<oauth_core::secret::DigestKey>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
}

/// The purpose the failed-login counters' key is derived for from the key-encryption key.
const LOGIN_KEYS_PURPOSE: &str = "oauth-server login failure counters v1";

/// The key of the failed-login counters' account keys, derived from the key-encryption key: the
/// same on every instance and in the admin commands.
pub fn login_failure_keys(
    kek: &oauth_core::keys::KeyEncryptionKey,
) -> oauth_core::secret::DigestKey {
    kek.digest_key(LOGIN_KEYS_PURPOSE)
}

impl RunningServer {
    /// The key this server counts an account's failed sign-ins under in the database, for the
    /// account with this (normalized) email.
    pub fn account_failure_key(&self, email: &str) -> String {
        crate::accounts::account_key(&self.login_keys, email)
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets requests in flight finish, closes the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.context("server task")??;
        self.stop_background();
        self.store.close().await;
        Ok(())
    }

    fn stop_background(&mut self) {
        for t in self.background.drain(..) {
            t.abort();
        }
    }

    /// Waits until the server stops by itself (after a shutdown signal).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task")??;
        self.stop_background();
        self.store.close().await;
        Ok(())
    }
}

/// Opens and migrates the database of `config`.
/// An error as one line: its context and causes joined by ": ", without a cause that the line
/// already ends with after a ": " (a database driver's error often quotes its own source).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&format!(": {text}")) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// A store error as one line, with the secrets of the database URL `url` masked: the driver's
/// text may quote what it was given, and so part of a password the URL parser misread.
pub fn store_error_line(e: oauth_store::StoreError, url: &str) -> String {
    without_url_secrets(&error_line(&anyhow::Error::new(e)), url)
}

pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let pool = oauth_store::PoolSettings {
        acquire_timeout: Duration::from_millis(config.database_acquire_timeout_ms),
        max_connections: config.database_max_connections,
    };
    let said = |e| store_error_line(e, &config.database_url);
    let store = oauth_store::connect_with(&config.database_url, pool)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "opening database {}: {}",
                redact_url(&config.database_url),
                said(e)
            )
        })?;
    store
        .migrate()
        .await
        .map_err(|e| anyhow::anyhow!("running migrations: {}", said(e)))?;
    Ok(store)
}

/// Starts a server with the real clock; it stops when `shutdown` completes (or on [`RunningServer::stop`]).
pub async fn start(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunningServer> {
    start_with_clock(config, Arc::new(SystemClock), shutdown).await
}

pub async fn start_with_clock(
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunningServer> {
    // What the configuration asked for that is refused or unsafe, said once at start.
    for notice in &config.notices {
        tracing::warn!("configuration: {notice}");
    }
    let store = open_store(&config).await?;
    let kek = signing::load_key_encryption_key(&config, store.as_ref(), clock.now()).await?;
    let login_keys = Arc::new(login_failure_keys(&kek));
    let keys = Arc::new(
        KeyRing::open(
            store.clone(),
            kek,
            config.tokens.algorithm.algorithm(),
            clock.now(),
        )
        .await
        .context("loading the signing keys")?,
    );
    // The dummy hash of unknown emails is built now, not by the first sign-in that needs it, so
    // that sign-in takes as long as a wrong password.
    let passwords = Arc::new(
        PasswordChecks::new(
            config.authorization.max_concurrent_password_checks,
            Duration::from_millis(config.authorization.password_check_wait_ms),
        )
        .await?,
    );
    // Bind before spawning: once this returns, the address accepts connections.
    let listener = bind_public(config.bind).with_context(|| format!("binding {}", config.bind))?;
    let addr = listener.local_addr()?;
    let issuer = config.issuer_for(addr);
    let rate_limits = Arc::new(
        crate::rate_limit::RateLimiters::new(&config.rate_limits)
            .map_err(|e| anyhow::anyhow!("configuration: rate_limits.redis_url {e}"))?,
    );
    let state = AppState::new(crate::state::Shared {
        rate_limits,
        store: store.clone(),
        config: Arc::new(config),
        clock,
        issuer: issuer.clone().into(),
        keys: keys.clone(),
        passwords: passwords.clone(),
        documents: Arc::new(
            crate::cimd::Documents::new().context("building the metadata document fetcher")?,
        ),
        lockouts: Arc::default(),
        login_keys: login_keys.clone(),
        log_paces: Arc::default(),
    });
    let limits = ConnectionLimits::from(&state.config.server);
    let mut background = maintenance::spawn(&state);
    // Metrics on a listener of their own, never on the public port.
    let metrics_addr = match state.config.metrics.bind {
        Some(bind) => {
            let listener = TcpListener::bind(bind)
                .await
                .with_context(|| format!("binding the metrics listener {bind}"))?;
            let metrics_addr = listener.local_addr()?;
            crate::metrics::enable();
            let app = metrics_router(state.keys.clone(), state.clock.clone(), state.store.clone());
            background.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::warn!(error = %e, "the metrics listener stopped");
                }
            }));
            Some(metrics_addr)
        }
        None => None,
    };
    // The first start's admin is made last, once nothing else can fail: its password is shown
    // only by the start that made it, so a start that failed after making it (a port in use,
    // a missing key-encryption key) would leave an admin whose password no one knows.
    let bootstrap = accounts::bootstrap(store.as_ref(), state.clock.now()).await?;
    let app = routes::router(state);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve::serve(listener, app, limits, async move {
        tokio::select! {
            _ = shutdown => {}
            _ = stop_rx => {}
        }
    }));
    tracing::info!(%addr, %issuer, "listening");
    Ok(RunningServer {
        addr,
        metrics_addr,
        issuer,
        bootstrap,
        store,
        keys,
        passwords,
        login_keys,
        stop: Some(stop_tx),
        task,
        background,
    })
}

/// The metrics listener's router: `/metrics`, and nothing else.
fn metrics_router(
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let now = clock.now();
            let age = keys.signing_since(now).map(|since| now - since);
            let connections = store.connections();
            async move { crate::metrics::scrape_response(age, connections) }
        }),
    )
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: the server announces that it is listening before its serving task
/// has run, and a SIGTERM sent right after that announcement must stop it cleanly rather than
/// find the default action (ending the process) still in place. Call it inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(interrupt) => {}
                _ = wait(terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested; finishing requests in flight");
    }
}

/// How many connections the kernel keeps waiting for this server to accept (the system's
/// `net.core.somaxconn` caps it). While every slot is taken the server accepts none, so waiting
/// connections queue here in arrival order; with the usual default of 128, a few addresses
/// reconnecting as fast as they are closed keep the queue full, and everyone else's connection
/// attempts are dropped and retried by their kernels only after 1, 3, 7, 15 s.
pub const LISTEN_BACKLOG: u32 = 4096;

/// The public listener, bound with [`LISTEN_BACKLOG`] (the standard library's `bind` asks for
/// 128).
fn bind_public(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As the standard library's `bind` does on Unix: a restarted server binds again at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The open files a server needs besides one per connection: the database pool, outbound
/// fetches, the log, and room to spare.
const OPEN_FILES_BESIDES_CONNECTIONS: u64 = 256;

/// Raises this process's soft limit of open files to its hard limit (at most 1,048,576, Linux's
/// usual ceiling), as a server that holds a socket per connection needs: a service manager's
/// soft limit is often 1024, which `max_connections` alone fills, and a server out of file
/// descriptors accepts nothing, so the rules for a full server never start. Returns the soft
/// limit now, and warns when it is still too low for `max_connections`.
pub fn raise_open_file_limit(max_connections: usize) -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    const CEILING: u64 = 1 << 20;
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.map_or(CEILING, |hard| hard.min(CEILING));
    let soft = match limit.current {
        Some(soft) if soft < wanted => {
            let raised = Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => wanted,
                Err(e) => {
                    tracing::warn!(error = %e, "could not raise the open-file limit");
                    soft
                }
            }
        }
        Some(soft) => soft,
        None => return None,
    };
    let needed = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(OPEN_FILES_BESIDES_CONNECTIONS);
    if soft < needed {
        tracing::warn!(
            open_files = soft,
            max_connections,
            "the open-file limit is below server.max_connections plus {OPEN_FILES_BESIDES_CONNECTIONS}: \
             once it is reached, new connections are refused before the rules for a full server apply; \
             raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower server.max_connections"
        );
    }
    Some(soft)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_one() {
        use rustix::process::{getrlimit, Resource};
        let before = getrlimit(Resource::Nofile);
        let soft = super::raise_open_file_limit(1024).unwrap();
        let after = getrlimit(Resource::Nofile);
        assert_eq!(after.current, Some(soft));
        let ceiling = before.maximum.map_or(1 << 20, |h| h.min(1 << 20));
        assert_eq!(soft, before.current.unwrap().max(ceiling));
        assert_eq!(
            after.maximum, before.maximum,
            "the hard limit is left alone"
        );
    }
}
