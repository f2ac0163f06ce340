//! Configuration: defaults, then an optional TOML file (`--config`), then `OAUTH_*` environment
//! variables, then command-line flags; each later source wins. Unknown keys in the file are
//! rejected. Secrets are kept only as hashes and never printed by `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use oauth_core::keys::{Algorithm, KeyEncryptionKey};
use oauth_core::{secret, ScopeCatalogue, ScopeDef};
use serde::Deserialize;

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/oauth.db";
pub const DEFAULT_DATABASE_ACQUIRE_TIMEOUT_MS: u64 = 2000;
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_ACCESS_TOKEN_LIFETIME_SECS: i64 = 3600;
pub const DEFAULT_REFRESH_TOKEN_LIFETIME_SECS: i64 = 30 * 86_400;
pub const DEFAULT_REFRESH_FAMILY_LIFETIME_SECS: i64 = 90 * 86_400;
/// Failed logins are kept this long (the purge forgets older ones), so no failure window may
/// be longer.
pub const LOGIN_FAILURE_RETENTION_SECS: i64 = 7 * 86_400;
pub const DEFAULT_KEY_PUBLISH_DELAY_SECS: i64 = 3600;
pub const DEFAULT_KEY_RELOAD_SECS: u64 = 60;
pub const DEFAULT_PURGE_INTERVAL_SECS: u64 = 300;
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 90;
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 128;
pub const DEFAULT_MAX_CONCURRENT_PASSWORD_CHECKS: usize = 4;
pub const DEFAULT_PASSWORD_CHECK_WAIT_MS: u64 = 2000;

/// Options shared by every command; each is also an `OAUTH_<NAME>` environment variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "OAUTH_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "OAUTH_BIND", global = true)]
    pub bind: Option<SocketAddr>,
    /// `sqlite://PATH` or `postgres://...` [default: sqlite://data/oauth.db].
    #[arg(long, env = "OAUTH_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Longest wait for a database connection, in milliseconds: while the database is
    /// unreachable, requests that need it answer 503 after this long [default: 2000].
    #[arg(long, env = "OAUTH_DATABASE_ACQUIRE_TIMEOUT_MS", global = true)]
    pub database_acquire_timeout_ms: Option<u64>,
    /// Issuer identifier (RFC 8414): the server's public base URL [default: http://<bind>].
    #[arg(long, env = "OAUTH_ISSUER", global = true)]
    pub issuer: Option<String>,
    /// Largest accepted request body, in bytes [default: 65536].
    #[arg(long, env = "OAUTH_MAX_BODY_BYTES", global = true)]
    pub max_body_bytes: Option<usize>,
    /// Longest time a client may take to send a request's head (request line and headers), in
    /// milliseconds, counted from the accept (first request) or from the request's first byte
    /// (later requests on a kept-alive connection); then the connection is closed
    /// [default: 10000].
    #[arg(long, env = "OAUTH_HEADER_READ_TIMEOUT_MS", global = true)]
    pub header_read_timeout_ms: Option<u64>,
    /// Seconds a connection may stay open without a request, or with a request that moves no
    /// byte, before the server closes it [default: 60].
    #[arg(long, env = "OAUTH_IDLE_TIMEOUT_SECS", global = true)]
    pub idle_timeout_secs: Option<u64>,
    /// Most connections served at once; past it the server accepts no new connection until one
    /// closes (they wait in the listen queue) [default: 1024].
    #[arg(long, env = "OAUTH_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Most connections one client address (an IPv6 address by its /64) holds at once; more are
    /// closed at once; 0 turns the cap off (behind a reverse proxy, where every caller shares
    /// its address) [default: 128].
    #[arg(long, env = "OAUTH_MAX_CONNECTIONS_PER_IP", global = true)]
    pub max_connections_per_ip: Option<usize>,
    /// Dynamic client registration: `open` or `token` (an initial access token is required).
    #[arg(long, env = "OAUTH_REGISTRATION_MODE", global = true)]
    pub registration_mode: Option<RegistrationMode>,
    /// The initial access token that `token` registration mode requires.
    #[arg(
        long,
        env = "OAUTH_REGISTRATION_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub registration_token: Option<String>,
    /// A file holding the initial access token (instead of `--registration-token`, so that it
    /// stays out of `ps` and the environment); one trailing newline is ignored.
    #[arg(long, env = "OAUTH_REGISTRATION_TOKEN_FILE", global = true)]
    pub registration_token_file: Option<PathBuf>,
    /// No longer used: registered clients belong to no organization's members. Accepted so
    /// that an old configuration still starts; a warning says it is ignored.
    #[arg(long, env = "OAUTH_REGISTRATION_ORG", global = true, hide = true)]
    pub registration_org: Option<String>,
    /// Let a registration that presents the initial access token ask for `client_credentials`
    /// (`token` registration mode only) [default: false].
    #[arg(
        long,
        env = "OAUTH_REGISTRATION_ALLOW_CLIENT_CREDENTIALS",
        global = true
    )]
    pub registration_allow_client_credentials: Option<bool>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "OAUTH_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
    /// Days that security events (the audit trail) are kept [default: 90].
    #[arg(long, env = "OAUTH_AUDIT_RETENTION_DAYS", global = true)]
    pub audit_retention_days: Option<u32>,
    /// Access token signing algorithm: `es256`, `rs256` or `eddsa` [default: es256].
    #[arg(long, env = "OAUTH_TOKEN_ALGORITHM", global = true)]
    pub token_algorithm: Option<TokenAlgorithm>,
    /// Access token lifetime in seconds [default: 3600].
    #[arg(long, env = "OAUTH_ACCESS_TOKEN_LIFETIME_SECS", global = true)]
    pub access_token_lifetime_secs: Option<i64>,
    /// Refresh token lifetime in seconds [default: 2592000, 30 days].
    #[arg(long, env = "OAUTH_REFRESH_TOKEN_LIFETIME_SECS", global = true)]
    pub refresh_token_lifetime_secs: Option<i64>,
    /// Absolute lifetime of a token family (the refresh tokens of one authorization), in
    /// seconds [default: 7776000, 90 days].
    #[arg(long, env = "OAUTH_REFRESH_FAMILY_LIFETIME_SECS", global = true)]
    pub refresh_family_lifetime_secs: Option<i64>,
    /// Seconds between publishing a rotated-in key and signing with it [default: 3600].
    #[arg(long, env = "OAUTH_KEY_PUBLISH_DELAY_SECS", global = true)]
    pub key_publish_delay_secs: Option<i64>,
    /// Base64 of 32 bytes: encrypts the private signing keys in the database.
    #[arg(
        long,
        env = "OAUTH_KEY_ENCRYPTION_KEY",
        global = true,
        hide_env_values = true
    )]
    pub key_encryption_key: Option<String>,
    /// A file holding the key-encryption key (instead of `--key-encryption-key`, so that it stays
    /// out of `ps` and the environment). Readable and writable by its owner only (mode 0600 or
    /// 0400); one trailing newline is ignored.
    #[arg(long, env = "OAUTH_KEY_ENCRYPTION_KEY_FILE", global = true)]
    pub key_encryption_key_file: Option<PathBuf>,
    /// Accept PKCE `plain` challenges (RFC 7636 §4.2) besides S256 [default: false].
    #[arg(long, env = "OAUTH_ALLOW_PLAIN_PKCE", global = true)]
    pub allow_plain_pkce: Option<bool>,
    /// Address of an external consent page (it gets `?consent_token=...`) [default: the
    /// built-in page, /consent].
    #[arg(long, env = "OAUTH_CONSENT_URL", global = true)]
    pub consent_url: Option<String>,
    /// Skip the consent page when the user already granted the client every requested scope
    /// [default: false].
    #[arg(long, env = "OAUTH_SKIP_CONSENT_IF_GRANTED", global = true)]
    pub skip_consent_if_granted: Option<bool>,
    /// Sign-in password checks (argon2id) run at once; a sign-in that cannot start its check
    /// within `authorization.password_check_wait_ms` is answered 503 [default: 4].
    #[arg(long, env = "OAUTH_MAX_CONCURRENT_PASSWORD_CHECKS", global = true)]
    pub max_concurrent_password_checks: Option<usize>,
    /// Where the rate-limit buckets live: `memory` (per instance) or `redis` (shared)
    /// [default: memory].
    #[arg(long, env = "OAUTH_RATE_LIMIT_BACKEND", global = true)]
    pub rate_limit_backend: Option<RateLimitBackendKind>,
    /// `redis://[[user]:password@]host[:port][/db]` for the `redis` rate-limit backend.
    #[arg(
        long,
        env = "OAUTH_RATE_LIMIT_REDIS_URL",
        global = true,
        hide_env_values = true
    )]
    pub rate_limit_redis_url: Option<String>,
}

/// `[rate_limits] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitBackendKind {
    #[default]
    Memory,
    Redis,
}

/// The JWS algorithm of access tokens (`[tokens] algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
pub enum TokenAlgorithm {
    #[default]
    #[serde(rename = "es256", alias = "ES256")]
    Es256,
    #[serde(rename = "rs256", alias = "RS256")]
    Rs256,
    #[serde(rename = "eddsa", alias = "EdDSA")]
    Eddsa,
}

impl TokenAlgorithm {
    pub fn algorithm(self) -> Algorithm {
        match self {
            TokenAlgorithm::Es256 => Algorithm::Es256,
            TokenAlgorithm::Rs256 => Algorithm::Rs256,
            TokenAlgorithm::Eddsa => Algorithm::EdDsa,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    #[default]
    Open,
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The TOML file. Every key is optional; unknown keys are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    database_url: Option<String>,
    database_acquire_timeout_ms: Option<u64>,
    issuer: Option<String>,
    max_body_bytes: Option<usize>,
    log_format: Option<LogFormat>,
    server: Option<FileServer>,
    audit: Option<FileAudit>,
    registration: Option<FileRegistration>,
    scopes: Option<Vec<ScopeDef>>,
    /// RFC 8707 resources (token audiences) besides the issuer.
    resources: Option<Vec<String>>,
    tokens: Option<FileTokens>,
    authorization: Option<FileAuthorization>,
    rate_limits: Option<FileRateLimits>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    header_read_timeout_ms: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAudit {
    retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRateLimits {
    management_per_key: Option<RateLimit>,
    management_per_ip: Option<RateLimit>,
    oauth_per_client: Option<RateLimit>,
    client_auth_failures_per_ip: Option<RateLimit>,
    client_auth_failures_per_client_ip: Option<RateLimit>,
    register_per_ip: Option<RateLimit>,
    login_per_ip: Option<RateLimit>,
    authorize_per_ip: Option<RateLimit>,
    backend: Option<RateLimitBackendKind>,
    redis_url: Option<String>,
    redis_key_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTokens {
    algorithm: Option<TokenAlgorithm>,
    access_token_lifetime_secs: Option<i64>,
    refresh_token_lifetime_secs: Option<i64>,
    refresh_family_lifetime_secs: Option<i64>,
    key_publish_delay_secs: Option<i64>,
    key_encryption_key: Option<String>,
    key_encryption_key_file: Option<PathBuf>,
    key_reload_secs: Option<u64>,
    purge_interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuthorization {
    allow_plain_pkce: Option<bool>,
    consent_url: Option<String>,
    skip_consent_if_granted: Option<bool>,
    session_lifetime_secs: Option<i64>,
    login_failure_window_secs: Option<i64>,
    login_max_failures_per_account: Option<u64>,
    login_max_failures_per_ip: Option<u64>,
    max_concurrent_password_checks: Option<usize>,
    password_check_wait_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRegistration {
    mode: Option<RegistrationMode>,
    initial_access_token: Option<String>,
    initial_access_token_file: Option<PathBuf>,
    organization: Option<String>,
    default_scopes: Option<Vec<String>>,
    allow_client_credentials: Option<bool>,
}

/// The resolved configuration.
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: String,
    /// The connection pool's acquire timeout: the bound on a request's wait for the database.
    pub database_acquire_timeout_ms: u64,
    /// `None`: derived from the address actually bound.
    pub issuer: Option<String>,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    pub server: ServerConfig,
    pub audit: AuditConfig,
    pub registration: RegistrationConfig,
    pub scopes: ScopeCatalogue,
    /// RFC 8707 resources a client may name (`resource`), besides the issuer itself, which is
    /// always one (the management API) and the default audience.
    pub resources: Vec<String>,
    pub tokens: TokensConfig,
    pub authorization: AuthorizationConfig,
    pub rate_limits: RateLimitsConfig,
    /// What the configuration asked for that this version no longer does, each a sentence the
    /// server logs as a warning when it starts.
    pub notices: Vec<String>,
}

/// Connections (`[server]`): what one client may hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// The longest time to receive a request's head, from the accept (first request) or from
    /// its first byte (later requests on a kept-alive connection).
    pub header_read_timeout_ms: u64,
    /// How long a connection may stay without a request, or with a request that moves no byte.
    pub idle_timeout_secs: u64,
    /// Connections served at once; past it, no connection is accepted until one closes.
    pub max_connections: usize,
    /// Connections one client address (IPv6 by its /64) holds at once; 0 is no cap.
    pub max_connections_per_ip: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
        }
    }
}

/// The audit trail (`[audit]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditConfig {
    /// Security events older than this many days are purged.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        }
    }
}

/// One request-rate limit: a token bucket of `requests` tokens refilled over `window_secs`,
/// so a key may send `requests` at once and `requests` per window after that.
/// `requests = 0` turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub window_secs: u32,
}

impl RateLimit {
    pub fn is_off(&self) -> bool {
        self.requests == 0
    }
}

/// Where the buckets live.
#[derive(Clone, PartialEq, Eq)]
pub enum RateLimitBackend {
    /// In process: each instance has its own buckets.
    Memory,
    /// In Redis, shared by every instance with the same `url` and `key_prefix`.
    Redis { url: String, key_prefix: String },
}

impl fmt::Debug for RateLimitBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimitBackend::Memory => f.write_str("Memory"),
            RateLimitBackend::Redis { url, key_prefix } => f
                .debug_struct("Redis")
                .field("url", &redact_url(url))
                .field("key_prefix", key_prefix)
                .finish(),
        }
    }
}

/// The default `[rate_limits] redis_key_prefix`.
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "oauth:rl:";

/// Request-rate limits (`[rate_limits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitsConfig {
    /// The management API, per bearer credential (API key or access token).
    pub management_per_key: RateLimit,
    /// The management API, per client address.
    pub management_per_ip: RateLimit,
    /// `/oauth/token`, `/oauth/introspect` and `/oauth/revoke`, per authenticated client_id
    /// (a public client: per client_id and client address).
    pub oauth_per_client: RateLimit,
    /// Failed client authentications at those endpoints, per client address.
    pub client_auth_failures_per_ip: RateLimit,
    /// Failed client authentications at those endpoints, per client_id and client address.
    pub client_auth_failures_per_client_ip: RateLimit,
    /// `/oauth/register`, per client address.
    pub register_per_ip: RateLimit,
    /// `POST /login`, per client address.
    pub login_per_ip: RateLimit,
    /// `GET /oauth/authorize`, per client address.
    pub authorize_per_ip: RateLimit,
    pub backend: RateLimitBackend,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            // 100 per second, bursts of 200.
            management_per_key: RateLimit {
                requests: 200,
                window_secs: 2,
            },
            // 200 per second, bursts of 400: several keys may share one address.
            management_per_ip: RateLimit {
                requests: 400,
                window_secs: 2,
            },
            // 100 per second, bursts of 200.
            oauth_per_client: RateLimit {
                requests: 200,
                window_secs: 2,
            },
            // One failure every 2 s, bursts of 30: a misconfigured client notices long before.
            client_auth_failures_per_ip: RateLimit {
                requests: 30,
                window_secs: 60,
            },
            // One every 6 s, bursts of 10.
            client_auth_failures_per_client_ip: RateLimit {
                requests: 10,
                window_secs: 60,
            },
            // 10 per minute, bursts of 20.
            register_per_ip: RateLimit {
                requests: 20,
                window_secs: 120,
            },
            // 1 per second, bursts of 60.
            login_per_ip: RateLimit {
                requests: 60,
                window_secs: 60,
            },
            // 100 per second, bursts of 200.
            authorize_per_ip: RateLimit {
                requests: 200,
                window_secs: 2,
            },
            backend: RateLimitBackend::Memory,
        }
    }
}

/// Access tokens and their signing keys (`[tokens]`).
#[derive(Clone, Debug)]
pub struct TokensConfig {
    pub algorithm: TokenAlgorithm,
    pub access_token_lifetime_secs: i64,
    /// RFC 6749 §6: how long an unused refresh token lives (each use issues a new one).
    pub refresh_token_lifetime_secs: i64,
    /// The absolute lifetime of a token family: no refresh token descending from one
    /// authorization outlives it, however often it rotates (RFC 9700 §4.14.2).
    pub refresh_family_lifetime_secs: i64,
    /// How long a rotated-in key is published in the JWK set before it signs.
    pub key_publish_delay_secs: i64,
    /// Encrypts private signing keys at rest. `None`: with SQLite, a key file beside the
    /// database is used (created on first start); PostgreSQL requires one.
    pub key_encryption_key: Option<KeyEncryptionKey>,
    /// How often each instance reloads the signing keys from the database.
    pub key_reload_secs: u64,
    /// How often expired rows are purged.
    pub purge_interval_secs: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            algorithm: TokenAlgorithm::Es256,
            access_token_lifetime_secs: DEFAULT_ACCESS_TOKEN_LIFETIME_SECS,
            refresh_token_lifetime_secs: DEFAULT_REFRESH_TOKEN_LIFETIME_SECS,
            refresh_family_lifetime_secs: DEFAULT_REFRESH_FAMILY_LIFETIME_SECS,
            key_publish_delay_secs: DEFAULT_KEY_PUBLISH_DELAY_SECS,
            key_encryption_key: None,
            key_reload_secs: DEFAULT_KEY_RELOAD_SECS,
            purge_interval_secs: DEFAULT_PURGE_INTERVAL_SECS,
        }
    }
}

/// The authorization code flow's options (`[authorization]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationConfig {
    /// Accept PKCE `plain`; off by default (RFC 9700 §2.1.1).
    pub allow_plain_pkce: bool,
    /// An external consent page; `None`: the built-in `/consent`.
    pub consent_url: Option<String>,
    /// Skip the consent page when a live grant already covers the request.
    pub skip_consent_if_granted: bool,
    /// How long a login session lasts.
    pub session_lifetime_secs: i64,
    /// The window in which failed logins are counted.
    pub login_failure_window_secs: i64,
    /// Failed logins to one account within the window before it is locked for the window.
    pub login_max_failures_per_account: u64,
    /// Failed logins from one client address within the window before it is locked.
    pub login_max_failures_per_ip: u64,
    /// Password checks (argon2id) running at once.
    pub max_concurrent_password_checks: usize,
    /// How long a sign-in waits for its turn to check a password before its 503.
    pub password_check_wait_ms: u64,
}

impl Default for AuthorizationConfig {
    fn default() -> Self {
        Self {
            allow_plain_pkce: false,
            consent_url: None,
            skip_consent_if_granted: false,
            session_lifetime_secs: 12 * 3600,
            login_failure_window_secs: 15 * 60,
            login_max_failures_per_account: 5,
            login_max_failures_per_ip: 30,
            max_concurrent_password_checks: DEFAULT_MAX_CONCURRENT_PASSWORD_CHECKS,
            password_check_wait_ms: DEFAULT_PASSWORD_CHECK_WAIT_MS,
        }
    }
}

#[derive(Clone)]
pub struct RegistrationConfig {
    pub mode: RegistrationMode,
    /// SHA-256 of the initial access token (`token` mode).
    pub initial_access_token_hash: Option<String>,
    /// Scopes a registration gets when it asks for none; only scopes open to third parties.
    pub default_scopes: Vec<String>,
    /// May a registration (behind the initial access token) ask for `client_credentials`?
    pub allow_client_credentials: bool,
}

impl fmt::Debug for RegistrationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationConfig")
            .field("mode", &self.mode)
            .field(
                "initial_access_token",
                &self
                    .initial_access_token_hash
                    .as_ref()
                    .map(|_| "<redacted>"),
            )
            .field("default_scopes", &self.default_scopes)
            .field("allow_client_credentials", &self.allow_client_credentials)
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "database_acquire_timeout_ms",
                &self.database_acquire_timeout_ms,
            )
            .field("issuer", &self.issuer)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("log_format", &self.log_format)
            .field("server", &self.server)
            .field("audit", &self.audit)
            .field("registration", &self.registration)
            .field("scopes", &self.scopes.names())
            .field("resources", &self.resources)
            .field("tokens", &self.tokens)
            .field("authorization", &self.authorization)
            .field("rate_limits", &self.rate_limits)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

impl Default for Config {
    fn default() -> Self {
        let scopes = ScopeCatalogue::default();
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            database_acquire_timeout_ms: DEFAULT_DATABASE_ACQUIRE_TIMEOUT_MS,
            issuer: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            log_format: LogFormat::Text,
            server: ServerConfig::default(),
            audit: AuditConfig::default(),
            registration: RegistrationConfig {
                mode: RegistrationMode::Open,
                initial_access_token_hash: None,
                default_scopes: scopes.third_party_names(),
                allow_client_credentials: false,
            },
            scopes,
            resources: Vec::new(),
            tokens: TokensConfig::default(),
            authorization: AuthorizationConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            notices: Vec::new(),
        }
    }
}

impl Config {
    /// Merges the sources in order of precedence and checks the result.
    pub fn load(args: &ConfigArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let reg = file.registration.unwrap_or_default();
        let mut config = Config::default();
        if let Some(scopes) = file.scopes {
            config.scopes = ScopeCatalogue::new(scopes)
                .map_err(|e| anyhow::anyhow!("configuration: scopes: {e}"))?;
            config.registration.default_scopes = config.scopes.third_party_names();
        }
        if let Some(v) = args.bind.or(file.bind) {
            config.bind = v;
        }
        if let Some(v) = args.database_url.clone().or(file.database_url) {
            config.database_url = v;
        }
        if let Some(v) = args
            .database_acquire_timeout_ms
            .or(file.database_acquire_timeout_ms)
        {
            config.database_acquire_timeout_ms = v;
        }
        config.issuer = args.issuer.clone().or(file.issuer);
        if let Some(v) = args.max_body_bytes.or(file.max_body_bytes) {
            config.max_body_bytes = v;
        }
        if let Some(v) = args.log_format.or(file.log_format) {
            config.log_format = v;
        }
        let srv = file.server.unwrap_or_default();
        if let Some(v) = args.header_read_timeout_ms.or(srv.header_read_timeout_ms) {
            config.server.header_read_timeout_ms = v;
        }
        if let Some(v) = args.idle_timeout_secs.or(srv.idle_timeout_secs) {
            config.server.idle_timeout_secs = v;
        }
        if let Some(v) = args.max_connections_per_ip.or(srv.max_connections_per_ip) {
            config.server.max_connections_per_ip = v;
        }
        if let Some(v) = args.max_connections.or(srv.max_connections) {
            config.server.max_connections = v;
        }
        if let Some(v) = args
            .audit_retention_days
            .or(file.audit.and_then(|a| a.retention_days))
        {
            config.audit.retention_days = v;
        }
        if let Some(v) = args.registration_mode.or(reg.mode) {
            config.registration.mode = v;
        }
        config.registration.initial_access_token_hash = secret_value(
            args.registration_token.clone().or(reg.initial_access_token),
            args.registration_token_file
                .clone()
                .or(reg.initial_access_token_file),
            SecretNames {
                what: "the registration token",
                value: "OAUTH_REGISTRATION_TOKEN, --registration-token or registration.initial_access_token",
                file: "OAUTH_REGISTRATION_TOKEN_FILE, --registration-token-file or registration.initial_access_token_file",
                owner_only: false,
            },
        )?
        .map(|t| secret::hash_secret(&t));
        if let Some(v) = args.registration_org.clone().or(reg.organization) {
            config.notices.push(format!(
                "registration.organization ({v:?}) is ignored: registered clients are third-party clients and belong to no organization's members"
            ));
        }
        if let Some(v) = reg.default_scopes {
            config.registration.default_scopes = v;
        }
        if let Some(v) = args
            .registration_allow_client_credentials
            .or(reg.allow_client_credentials)
        {
            config.registration.allow_client_credentials = v;
        }
        if let Some(v) = file.resources {
            config.resources = v;
        }
        let tok = file.tokens.unwrap_or_default();
        let t = &mut config.tokens;
        if let Some(v) = args.token_algorithm.or(tok.algorithm) {
            t.algorithm = v;
        }
        if let Some(v) = args
            .access_token_lifetime_secs
            .or(tok.access_token_lifetime_secs)
        {
            t.access_token_lifetime_secs = v;
        }
        if let Some(v) = args
            .refresh_token_lifetime_secs
            .or(tok.refresh_token_lifetime_secs)
        {
            t.refresh_token_lifetime_secs = v;
        }
        if let Some(v) = args
            .refresh_family_lifetime_secs
            .or(tok.refresh_family_lifetime_secs)
        {
            t.refresh_family_lifetime_secs = v;
        }
        if let Some(v) = args.key_publish_delay_secs.or(tok.key_publish_delay_secs) {
            t.key_publish_delay_secs = v;
        }
        let kek = secret_value(
            args.key_encryption_key.clone().or(tok.key_encryption_key),
            args.key_encryption_key_file
                .clone()
                .or(tok.key_encryption_key_file),
            SecretNames {
                what: "the key-encryption key",
                value: "OAUTH_KEY_ENCRYPTION_KEY, --key-encryption-key or tokens.key_encryption_key",
                file: "OAUTH_KEY_ENCRYPTION_KEY_FILE, --key-encryption-key-file or tokens.key_encryption_key_file",
                owner_only: true,
            },
        )?;
        if let Some(v) = kek {
            t.key_encryption_key = Some(KeyEncryptionKey::from_base64(&v).map_err(|_| {
                anyhow::anyhow!(
                    "configuration: the key-encryption key (OAUTH_KEY_ENCRYPTION_KEY, tokens.key_encryption_key or their _FILE forms) must be the base64 of 32 bytes, e.g. from `openssl rand -base64 32`"
                )
            })?);
        }
        if let Some(v) = tok.key_reload_secs {
            t.key_reload_secs = v;
        }
        if let Some(v) = tok.purge_interval_secs {
            t.purge_interval_secs = v;
        }
        let authz = file.authorization.unwrap_or_default();
        let a = &mut config.authorization;
        if let Some(v) = args.allow_plain_pkce.or(authz.allow_plain_pkce) {
            a.allow_plain_pkce = v;
        }
        a.consent_url = args.consent_url.clone().or(authz.consent_url);
        if let Some(v) = args
            .skip_consent_if_granted
            .or(authz.skip_consent_if_granted)
        {
            a.skip_consent_if_granted = v;
        }
        if let Some(v) = authz.session_lifetime_secs {
            a.session_lifetime_secs = v;
        }
        if let Some(v) = authz.login_failure_window_secs {
            a.login_failure_window_secs = v;
        }
        if let Some(v) = authz.login_max_failures_per_account {
            a.login_max_failures_per_account = v;
        }
        if let Some(v) = authz.login_max_failures_per_ip {
            a.login_max_failures_per_ip = v;
        }
        if let Some(v) = args
            .max_concurrent_password_checks
            .or(authz.max_concurrent_password_checks)
        {
            a.max_concurrent_password_checks = v;
        }
        if let Some(v) = authz.password_check_wait_ms {
            a.password_check_wait_ms = v;
        }
        let rl = file.rate_limits.unwrap_or_default();
        let r = &mut config.rate_limits;
        for (field, value) in [
            (&mut r.management_per_key, rl.management_per_key),
            (&mut r.management_per_ip, rl.management_per_ip),
            (&mut r.oauth_per_client, rl.oauth_per_client),
            (
                &mut r.client_auth_failures_per_ip,
                rl.client_auth_failures_per_ip,
            ),
            (
                &mut r.client_auth_failures_per_client_ip,
                rl.client_auth_failures_per_client_ip,
            ),
            (&mut r.register_per_ip, rl.register_per_ip),
            (&mut r.login_per_ip, rl.login_per_ip),
            (&mut r.authorize_per_ip, rl.authorize_per_ip),
        ] {
            if let Some(v) = value {
                *field = v;
            }
        }
        let redis_url = args.rate_limit_redis_url.clone().or(rl.redis_url);
        r.backend = match (args.rate_limit_backend.or(rl.backend), redis_url) {
            (None | Some(RateLimitBackendKind::Memory), None) => RateLimitBackend::Memory,
            (Some(RateLimitBackendKind::Redis), Some(url)) => RateLimitBackend::Redis {
                url,
                key_prefix: rl
                    .redis_key_prefix
                    .unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.to_owned()),
            },
            (Some(RateLimitBackendKind::Redis), None) => bail!(
                "configuration: rate_limits.backend = \"redis\" needs rate_limits.redis_url (OAUTH_RATE_LIMIT_REDIS_URL)"
            ),
            (_, Some(_)) => bail!(
                "configuration: rate_limits.redis_url is set but the backend is memory; set rate_limits.backend = \"redis\" (OAUTH_RATE_LIMIT_BACKEND=redis)"
            ),
        };
        config.check()?;
        Ok(config)
    }

    /// The rules a configuration obeys, whatever its source.
    pub fn check(&mut self) -> anyhow::Result<()> {
        if let Some(issuer) = &self.issuer {
            self.issuer = Some(check_issuer(issuer)?);
        }
        if !(100..=60_000).contains(&self.database_acquire_timeout_ms) {
            bail!("configuration: database_acquire_timeout_ms must be between 100 and 60000");
        }
        if self.max_body_bytes < 1024 {
            bail!("configuration: max_body_bytes must be at least 1024");
        }
        let srv = &self.server;
        if !(100..=300_000).contains(&srv.header_read_timeout_ms) {
            bail!("configuration: server.header_read_timeout_ms must be between 100 and 300000");
        }
        if !(1..=3600).contains(&srv.idle_timeout_secs) {
            bail!("configuration: server.idle_timeout_secs must be between 1 and 3600");
        }
        if !(1..=1_000_000).contains(&srv.max_connections) {
            bail!("configuration: server.max_connections must be between 1 and 1000000");
        }
        if self.registration.mode == RegistrationMode::Token
            && self.registration.initial_access_token_hash.is_none()
        {
            bail!("configuration: registration mode `token` needs an initial access token (OAUTH_REGISTRATION_TOKEN or registration.initial_access_token)");
        }
        if !(1..=3650).contains(&self.audit.retention_days) {
            bail!("configuration: audit.retention_days must be between 1 and 3650");
        }
        let r = &self.rate_limits;
        for limit in [
            r.management_per_key,
            r.management_per_ip,
            r.oauth_per_client,
            r.client_auth_failures_per_ip,
            r.client_auth_failures_per_client_ip,
            r.register_per_ip,
            r.login_per_ip,
            r.authorize_per_ip,
        ] {
            if !limit.is_off() && !(1..=86_400).contains(&limit.window_secs) {
                bail!("configuration: every rate_limits window_secs must be between 1 and 86400");
            }
        }
        if let RateLimitBackend::Redis { url, key_prefix } = &r.backend {
            if let Err(e) = crate::redis_url::redis_client(url) {
                bail!("configuration: rate_limits.redis_url {e}");
            }
            if key_prefix.len() > 200 || !key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
                bail!("configuration: rate_limits.redis_key_prefix must be at most 200 printable ASCII characters");
            }
        }
        let t = &self.tokens;
        if !(60..=86_400).contains(&t.access_token_lifetime_secs) {
            bail!("configuration: tokens.access_token_lifetime_secs must be between 60 and 86400");
        }
        if !(60..=366 * 86_400).contains(&t.refresh_token_lifetime_secs) {
            bail!("configuration: tokens.refresh_token_lifetime_secs must be between 60 and 31622400 (366 days)");
        }
        if !(60..=3660 * 86_400).contains(&t.refresh_family_lifetime_secs) {
            bail!("configuration: tokens.refresh_family_lifetime_secs must be between 60 and 316224000 (3660 days)");
        }
        if t.key_publish_delay_secs < 0 {
            bail!("configuration: tokens.key_publish_delay_secs must not be negative");
        }
        if t.key_reload_secs == 0 || t.purge_interval_secs == 0 {
            bail!("configuration: tokens.key_reload_secs and tokens.purge_interval_secs must be positive");
        }
        for r in &self.resources {
            // RFC 8707 §2: an absolute URI without a fragment.
            match url::Url::parse(r) {
                Ok(u) if u.fragment().is_none() => {}
                _ => bail!(
                    "configuration: resources: {r:?} must be an absolute URI without a fragment"
                ),
            }
        }
        let a = &self.authorization;
        if let Some(u) = &a.consent_url {
            let url = url::Url::parse(u)
                .with_context(|| format!("authorization.consent_url {u:?} is not a URL"))?;
            if !matches!(url.scheme(), "https" | "http") || url.fragment().is_some() {
                bail!("configuration: authorization.consent_url must be an http(s) URL without a fragment");
            }
        }
        if a.login_failure_window_secs > LOGIN_FAILURE_RETENTION_SECS {
            bail!("configuration: authorization.login_failure_window_secs must be at most 604800 (7 days)");
        }
        if a.session_lifetime_secs < 60 || a.login_failure_window_secs < 1 {
            bail!("configuration: authorization.session_lifetime_secs must be at least 60 and login_failure_window_secs at least 1");
        }
        if a.login_max_failures_per_account == 0 || a.login_max_failures_per_ip == 0 {
            bail!("configuration: the login failure limits must be at least 1");
        }
        if !(1..=1024).contains(&a.max_concurrent_password_checks) {
            bail!("configuration: authorization.max_concurrent_password_checks must be between 1 and 1024");
        }
        if !(1..=60_000).contains(&a.password_check_wait_ms) {
            bail!(
                "configuration: authorization.password_check_wait_ms must be between 1 and 60000"
            );
        }
        for s in &self.registration.default_scopes {
            if !self.scopes.contains(s) {
                bail!("configuration: registration.default_scopes names {s:?}, which is not in the scope catalogue");
            }
        }
        // An older configuration may name the management scope here: it is dropped, and said.
        let (open, closed): (Vec<String>, Vec<String>) =
            std::mem::take(&mut self.registration.default_scopes)
                .into_iter()
                .partition(|s| self.scopes.allows_third_party(s));
        self.registration.default_scopes = open;
        if !closed.is_empty() {
            self.notices.push(format!(
                "registration.default_scopes names {closed:?}, which third-party clients may never be granted; registered clients will not get {}",
                if closed.len() == 1 { "it" } else { "them" }
            ));
        }
        if self.registration.allow_client_credentials
            && self.registration.mode != RegistrationMode::Token
        {
            bail!("configuration: registration.allow_client_credentials needs registration mode `token` (open registration never creates client_credentials clients)");
        }
        Ok(())
    }

    /// The issuer: configured, or `http://<bound address>` (an unspecified address becomes
    /// 127.0.0.1).
    pub fn issuer_for(&self, bound: SocketAddr) -> String {
        match &self.issuer {
            Some(i) => i.clone(),
            None => {
                let mut addr = bound;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}")
            }
        }
    }
}

/// Where a secret may come from, for [`secret_value`]'s messages.
struct SecretNames {
    what: &'static str,
    value: &'static str,
    file: &'static str,
    /// Refuse a file that its group or others may read or write.
    owner_only: bool,
}

/// A secret given as a value or as a file holding it: never both. The file's content is the
/// secret, one trailing newline removed.
fn secret_value(
    value: Option<String>,
    file: Option<PathBuf>,
    names: SecretNames,
) -> anyhow::Result<Option<String>> {
    let path = match (value, file) {
        (Some(_), Some(_)) => bail!(
            "configuration: {} is given both as a value ({}) and as a file ({}); give one",
            names.what,
            names.value,
            names.file
        ),
        (value, None) => return Ok(value),
        (None, Some(path)) => path,
    };
    if names.owner_only {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .with_context(|| format!("configuration: {} file {}", names.what, path.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "configuration: {} file {} has mode {mode:04o}: group and others may read or write it; \
                 make it readable by its owner only (chmod 0600 or 0400)",
                names.what,
                path.display()
            );
        }
    }
    let mut text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "configuration: reading {} file {}",
            names.what,
            path.display()
        )
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        bail!(
            "configuration: {} file {} is empty",
            names.what,
            path.display()
        );
    }
    Ok(Some(text))
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("configuration file {}", path.display()))
}

/// RFC 8414 §2: an https (or, for local use, http) URL with no query or fragment. A trailing
/// slash is removed so that endpoint URLs join cleanly.
fn check_issuer(issuer: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(issuer).with_context(|| format!("issuer {issuer:?} is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        bail!("issuer {issuer:?} must be an http or https URL");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("issuer {issuer:?} must not have a query or fragment (RFC 8414 §2)");
    }
    Ok(issuer.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_file_then_env_or_flags() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"
bind = "127.0.0.1:9000"
database_url = "sqlite://from-file.db"
database_acquire_timeout_ms = 750
resources = ["https://api.example"]
[registration]
mode = "token"
initial_access_token = "s3cret"
[authorization]
allow_plain_pkce = true
[tokens]
refresh_token_lifetime_secs = 86400
[[scopes]]
name = "admin"
description = "Everything"
[[scopes]]
name = "read"
description = "Read"
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path),
            database_url: Some("sqlite://from-flag.db".into()),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.database_url, "sqlite://from-flag.db");
        assert_eq!(c.registration.mode, RegistrationMode::Token);
        assert_eq!(c.scopes.names(), vec!["admin", "read"]);
        assert!(c.authorization.allow_plain_pkce);
        assert_eq!(c.resources, vec!["https://api.example"]);
        assert!(!c.authorization.skip_consent_if_granted);
        assert_eq!(c.tokens.refresh_token_lifetime_secs, 86_400);
        assert_eq!(c.database_acquire_timeout_ms, 750, "from the file");
        assert_eq!(
            Config::default().tokens.refresh_token_lifetime_secs,
            30 * 86_400
        );

        // Flags (and OAUTH_* variables, which clap reads into the same fields) win over the file.
        let args = ConfigArgs {
            allow_plain_pkce: Some(false),
            skip_consent_if_granted: Some(true),
            consent_url: Some("https://consent.example/page".into()),
            refresh_token_lifetime_secs: Some(3600),
            ..args
        };
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tokens.refresh_token_lifetime_secs, 3600);
        let slow = ConfigArgs {
            database_acquire_timeout_ms: Some(5000),
            ..args.clone()
        };
        assert_eq!(
            Config::load(&slow)
                .unwrap_or_else(|e| panic!("{e}"))
                .database_acquire_timeout_ms,
            5000
        );
        for bad in [0, 99, 60_001] {
            let bad = ConfigArgs {
                database_acquire_timeout_ms: Some(bad),
                ..args.clone()
            };
            assert!(Config::load(&bad).is_err());
        }
        let too_short = ConfigArgs {
            refresh_token_lifetime_secs: Some(59),
            ..args.clone()
        };
        assert!(Config::load(&too_short).is_err());
        assert!(!c.authorization.allow_plain_pkce);
        assert!(c.authorization.skip_consent_if_granted);
        assert_eq!(
            c.authorization.consent_url.as_deref(),
            Some("https://consent.example/page")
        );
        let bad = ConfigArgs {
            consent_url: Some("javascript:alert(1)".into()),
            ..args
        };
        assert!(Config::load(&bad).is_err());
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "bnd = \"127.0.0.1:1\"\n").unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path),
            ..Default::default()
        };
        assert!(Config::load(&args).is_err());
        let args = ConfigArgs {
            issuer: Some("https://a.example/?x=1".into()),
            ..Default::default()
        };
        assert!(Config::load(&args).is_err());
        let args = ConfigArgs {
            registration_mode: Some(RegistrationMode::Token),
            ..Default::default()
        };
        assert!(Config::load(&args).is_err());
    }

    #[test]
    fn issuer_defaults_to_the_bound_address() {
        let c = Config::default();
        assert_eq!(
            c.issuer_for("0.0.0.0:8080".parse().unwrap_or(c.bind)),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn an_old_registration_section_starts_with_warnings_and_nothing_refused_is_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"
[registration]
organization = "mcp-clients"
default_scopes = ["admin", "voice"]
refresh_family_lifetime_secs = 1
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        // An unknown key is still an error, so the stray line above must go first.
        assert!(Config::load(&args).is_err());
        std::fs::write(
            &path,
            "[registration]\norganization = \"mcp-clients\"\ndefault_scopes = [\"admin\", \"voice\"]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.registration.default_scopes, vec!["voice"]);
        assert_eq!(c.notices.len(), 2, "{:?}", c.notices);
        assert!(c.notices[0].contains("registration.organization"));
        assert!(c.notices[1].contains("default_scopes") && c.notices[1].contains("admin"));
        // By default, registrations get every scope open to third parties, and no warning.
        let c = Config::load(&ConfigArgs::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.notices.is_empty());
        assert!(!c.registration.default_scopes.contains(&"admin".to_owned()));
        // client_credentials registration needs the initial access token.
        let args = ConfigArgs {
            registration_allow_client_credentials: Some(true),
            ..Default::default()
        };
        assert!(Config::load(&args).is_err());
    }

    #[test]
    fn tokens_section_and_flags() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"
resources = ["https://api.example.com"]
[tokens]
algorithm = "eddsa"
access_token_lifetime_secs = 600
key_publish_delay_secs = 0
key_encryption_key = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path.clone()),
            access_token_lifetime_secs: Some(900),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tokens.algorithm, TokenAlgorithm::Eddsa);
        assert_eq!(c.tokens.access_token_lifetime_secs, 900, "the flag wins");
        assert_eq!(c.tokens.key_publish_delay_secs, 0);
        assert_eq!(c.resources, vec!["https://api.example.com"]);
        assert!(c.tokens.key_encryption_key.is_some());
        assert!(
            !format!("{c:?}").contains("BwcHBwcH"),
            "the key is redacted"
        );

        let bad_kek = ConfigArgs {
            key_encryption_key: Some("c2hvcnQ=".into()),
            ..Default::default()
        };
        assert!(Config::load(&bad_kek).is_err());
        let bad_lifetime = ConfigArgs {
            access_token_lifetime_secs: Some(5),
            ..Default::default()
        };
        assert!(Config::load(&bad_lifetime).is_err());
        std::fs::write(&path, "[tokens]\nalgorithm = \"HS256\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path),
            ..Default::default()
        };
        assert!(Config::load(&args).is_err(), "only asymmetric algorithms");
    }

    #[test]
    fn rate_limits_section() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"
[rate_limits]
management_per_key = { requests = 5, window_secs = 10 }
register_per_ip = { requests = 0, window_secs = 0 }
client_auth_failures_per_client_ip = { requests = 3, window_secs = 30 }
authorize_per_ip = { requests = 0, window_secs = 0 }
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        let d = RateLimitsConfig::default();
        assert_eq!(
            c.rate_limits.management_per_key,
            RateLimit {
                requests: 5,
                window_secs: 10
            }
        );
        assert!(c.rate_limits.register_per_ip.is_off());
        assert_eq!(c.rate_limits.oauth_per_client, d.oauth_per_client);
        assert_eq!(
            c.rate_limits.client_auth_failures_per_client_ip,
            RateLimit {
                requests: 3,
                window_secs: 30
            }
        );
        assert!(c.rate_limits.authorize_per_ip.is_off());
        assert_eq!(
            c.rate_limits.client_auth_failures_per_ip,
            d.client_auth_failures_per_ip
        );
        assert_eq!(d.management_per_key.requests, 200);

        assert_eq!(c.rate_limits.backend, RateLimitBackend::Memory);

        std::fs::write(
            &path,
            "[rate_limits]\nbackend = \"redis\"\nredis_url = \"redis://:pw@127.0.0.1:6380/1\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.rate_limits.backend,
            RateLimitBackend::Redis {
                url: "redis://:pw@127.0.0.1:6380/1".into(),
                key_prefix: DEFAULT_REDIS_KEY_PREFIX.into()
            }
        );
        assert!(!format!("{c:?}").contains("pw@"), "{c:?}");
        // The environment (clap fields) wins over the file.
        let from_env = ConfigArgs {
            rate_limit_backend: Some(RateLimitBackendKind::Memory),
            ..args.clone()
        };
        assert!(
            Config::load(&from_env).is_err(),
            "a Redis URL without the redis backend is refused"
        );
        let from_env = ConfigArgs {
            config: None,
            rate_limit_backend: Some(RateLimitBackendKind::Redis),
            rate_limit_redis_url: Some("redis://127.0.0.1".into()),
            ..Default::default()
        };
        let c = Config::load(&from_env).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            c.rate_limits.backend,
            RateLimitBackend::Redis { .. }
        ));

        for bad in [
            "[rate_limits]\nbackend = \"redis\"\n",
            "[rate_limits]\nbackend = \"redis\"\nredis_url = \"rediss://127.0.0.1/#insecure\"\n",
            "[rate_limits]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1\"\nredis_key_prefix = \"a b\"\n",
            "[rate_limits]\nbackend = \"disk\"\n",
            "[rate_limits]\nlogin_per_ip = { requests = 5, window_secs = 0 }\n",
            "[rate_limits]\nlogin_per_ip = { requests = 5 }\n",
            "[rate_limits]\nper_moon = { requests = 5, window_secs = 1 }\n",
        ] {
            std::fs::write(&path, bad).unwrap_or_else(|e| panic!("{e}"));
            assert!(Config::load(&args).is_err(), "{bad}");
        }
    }

    #[test]
    fn audit_section_and_flag() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "log_format = \"json\"\n[audit]\nretention_days = 30\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.audit.retention_days, 30);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(Config::default().audit.retention_days, 90);
        let flag = ConfigArgs {
            audit_retention_days: Some(7),
            log_format: Some(LogFormat::Text),
            ..args.clone()
        };
        let c = Config::load(&flag).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.audit.retention_days, c.log_format), (7, LogFormat::Text));
        let zero = ConfigArgs {
            audit_retention_days: Some(0),
            ..args.clone()
        };
        assert!(Config::load(&zero).is_err());
        std::fs::write(&path, "[audit]\nkeep_days = 30\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(Config::load(&args).is_err(), "unknown keys are rejected");
    }

    #[test]
    fn server_section_and_flags() {
        let d = Config::default().server;
        assert_eq!(
            (
                d.header_read_timeout_ms,
                d.idle_timeout_secs,
                d.max_connections
            ),
            (10_000, 60, 1024)
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[server]\nheader_read_timeout_ms = 2500\nidle_timeout_secs = 30\nmax_connections = 64\nmax_connections_per_ip = 0\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.server,
            ServerConfig {
                header_read_timeout_ms: 2500,
                idle_timeout_secs: 30,
                max_connections: 64,
                max_connections_per_ip: 0,
            }
        );
        // Flags (and OAUTH_* variables) win over the file.
        let flags = ConfigArgs {
            header_read_timeout_ms: Some(500),
            idle_timeout_secs: Some(5),
            max_connections: Some(8),
            ..args.clone()
        };
        let c = Config::load(&flags).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                c.server.header_read_timeout_ms,
                c.server.idle_timeout_secs,
                c.server.max_connections
            ),
            (500, 5, 8)
        );
        for bad in [
            ConfigArgs {
                header_read_timeout_ms: Some(99),
                ..args.clone()
            },
            ConfigArgs {
                header_read_timeout_ms: Some(300_001),
                ..args.clone()
            },
            ConfigArgs {
                idle_timeout_secs: Some(0),
                ..args.clone()
            },
            ConfigArgs {
                idle_timeout_secs: Some(3601),
                ..args.clone()
            },
            ConfigArgs {
                max_connections: Some(0),
                ..args.clone()
            },
            ConfigArgs {
                max_connections: Some(1_000_001),
                ..args.clone()
            },
        ] {
            assert!(Config::load(&bad).is_err(), "{bad:?}");
        }
        std::fs::write(&path, "[server]\nread_timeout_ms = 1\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(Config::load(&args).is_err(), "unknown keys are rejected");
    }

    #[test]
    fn password_check_limits() {
        let d = Config::default().authorization;
        assert_eq!(
            (d.max_concurrent_password_checks, d.password_check_wait_ms),
            (4, 2000)
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[authorization]\nmax_concurrent_password_checks = 2\npassword_check_wait_ms = 500\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs {
            config: Some(path),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.authorization.max_concurrent_password_checks, 2);
        assert_eq!(c.authorization.password_check_wait_ms, 500);
        let flag = ConfigArgs {
            max_concurrent_password_checks: Some(8),
            ..args.clone()
        };
        let c = Config::load(&flag).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.authorization.max_concurrent_password_checks, 8,
            "the flag wins"
        );
        for bad in [0, 1025] {
            let bad = ConfigArgs {
                max_concurrent_password_checks: Some(bad),
                ..args.clone()
            };
            assert!(Config::load(&bad).is_err());
        }
    }

    #[test]
    fn secrets_from_files() {
        use std::os::unix::fs::PermissionsExt;
        const KEK: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, text: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("{e}"));
            path
        };
        let kek_file = write("kek", &format!("{KEK}\n"), 0o600);
        let token_file = write("token", "s3cret token\n", 0o644);
        let args = ConfigArgs {
            key_encryption_key_file: Some(kek_file.clone()),
            registration_token_file: Some(token_file.clone()),
            registration_mode: Some(RegistrationMode::Token),
            ..Default::default()
        };
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        let from_value = ConfigArgs {
            key_encryption_key: Some(KEK.into()),
            ..Default::default()
        };
        let expected = Config::load(&from_value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.tokens
                .key_encryption_key
                .as_ref()
                .map(KeyEncryptionKey::to_base64),
            expected
                .tokens
                .key_encryption_key
                .as_ref()
                .map(KeyEncryptionKey::to_base64)
        );
        // The content without its one trailing newline is the token.
        assert_eq!(
            c.registration.initial_access_token_hash,
            Some(secret::hash_secret("s3cret token"))
        );
        // 0400 is fine too.
        let read_only = write("kek-ro", KEK, 0o400);
        let ro = ConfigArgs {
            key_encryption_key_file: Some(read_only),
            ..Default::default()
        };
        assert!(Config::load(&ro).is_ok());

        // A key file others may read is refused, naming the file and the modes expected.
        for mode in [0o644, 0o640, 0o604, 0o660] {
            let open = write("kek-open", KEK, mode);
            let bad = ConfigArgs {
                key_encryption_key_file: Some(open.clone()),
                ..Default::default()
            };
            let e = format!(
                "{:#}",
                Config::load(&bad)
                    .err()
                    .unwrap_or_else(|| panic!("{mode:o} refused"))
            );
            assert!(e.contains(&open.display().to_string()), "{e}");
            assert!(e.contains(&format!("mode {mode:04o}")), "{e}");
            assert!(e.contains("0600 or 0400"), "{e}");
        }
        // Both a value and a file: refused, whatever the sources.
        let both = ConfigArgs {
            key_encryption_key: Some(KEK.into()),
            key_encryption_key_file: Some(kek_file.clone()),
            ..Default::default()
        };
        let e = format!(
            "{:#}",
            Config::load(&both).err().unwrap_or_else(|| panic!("both"))
        );
        assert!(e.contains("both as a value"), "{e}");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[registration]\ninitial_access_token = \"x\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let both = ConfigArgs {
            config: Some(path.clone()),
            registration_token_file: Some(token_file.clone()),
            ..Default::default()
        };
        assert!(Config::load(&both).is_err());
        // From the file's [tokens] and [registration] too.
        std::fs::write(
            &path,
            format!(
                "[tokens]\nkey_encryption_key_file = {:?}\n[registration]\ninitial_access_token_file = {:?}\n",
                kek_file.display().to_string(),
                token_file.display().to_string()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(&ConfigArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.tokens.key_encryption_key.is_some());
        assert!(c.registration.initial_access_token_hash.is_some());
        // A missing file names itself.
        let missing = ConfigArgs {
            registration_token_file: Some(dir.path().join("nope")),
            ..Default::default()
        };
        let e = format!(
            "{:#}",
            Config::load(&missing)
                .err()
                .unwrap_or_else(|| panic!("missing"))
        );
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    }
}
