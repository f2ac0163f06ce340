//! Configuration: defaults, then an optional TOML file (`--config`), then `OAUTH_*` environment
//! variables, then command-line flags; each later source wins. `SETTINGS` is the one list of
//! settings: the keys the file may hold (any other is an error), and the environment variables
//! and flag of each. The merged sources deserialize into [`Config`], which [`Config::check`]
//! validates. Secrets are kept only as hashes and never printed by `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use oauth_core::keys::{Algorithm, KeyEncryptionKey};
use oauth_core::{secret, ScopeCatalogue, ScopeDef};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::peer::TrustedProxies;

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/oauth.db";
pub const DEFAULT_DATABASE_ACQUIRE_TIMEOUT_MS: u64 = 2000;
pub const DEFAULT_DATABASE_MAX_CONNECTIONS: usize = oauth_store::DEFAULT_MAX_CONNECTIONS;
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_CLIENTS_PER_ORGANIZATION: i64 = 1000;
pub const DEFAULT_ACCESS_TOKEN_LIFETIME_SECS: i64 = 3600;
pub const DEFAULT_REFRESH_TOKEN_LIFETIME_SECS: i64 = 30 * 86_400;
pub const DEFAULT_REFRESH_FAMILY_LIFETIME_SECS: i64 = 90 * 86_400;
/// Failed logins are kept this long (the purge forgets older ones), so no failure window may
/// be longer.
pub const LOGIN_FAILURE_RETENTION_SECS: i64 = 7 * 86_400;

/// The shortest initial access token (`registration.initial_access_token`) accepted.
pub const MIN_REGISTRATION_TOKEN_CHARS: usize = 16;

/// The largest `max_body_bytes`: every body is read into memory before it is parsed.
pub const MOST_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The longest a browser keeps a cookie (400 days), and so a device cookie's longest lifetime
/// (the purge keeps an unused device that long).
pub const LONGEST_COOKIE_SECS: i64 = oauth_store::LOGIN_DEVICE_RETENTION_SECS;
pub const DEFAULT_KEY_PUBLISH_DELAY_SECS: i64 = 3600;
pub const DEFAULT_KEY_RELOAD_SECS: u64 = 60;
pub const DEFAULT_PURGE_INTERVAL_SECS: u64 = 300;
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 90;
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 128;
pub const DEFAULT_MAX_CONCURRENT_PASSWORD_CHECKS: usize = 4;
pub const DEFAULT_PASSWORD_CHECK_WAIT_MS: u64 = 2000;

/// One setting: its key in the file, how a value from the environment or a flag is read, its
/// flag if it has one, and the flag's help (empty: a hidden flag).
///
/// Every setting answers to `OAUTH_` and its key upper-cased with each `.` written `__`
/// (`rate_limits.login_per_ip`: `OAUTH_RATE_LIMITS__LOGIN_PER_IP`). A setting with a flag
/// answers to the flag's name too (`--access-token-lifetime-secs`:
/// `OAUTH_ACCESS_TOKEN_LIFETIME_SECS`); for a top-level key both names are the same.
struct Setting {
    key: &'static str,
    form: Form,
    flag: Option<&'static str>,
    help: &'static str,
}

/// How a value from the environment or a flag is read.
#[derive(Clone, Copy)]
enum Form {
    /// As it is: a name, a URL, a path, a secret (`12345` stays text).
    Text,
    /// As a TOML value: `3600`, `true`, `[a, b]`, `{ requests = 5, window_secs = 60 }`.
    Toml,
}
use Form::{Text, Toml};

const fn s(
    key: &'static str,
    form: Form,
    flag: Option<&'static str>,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        form,
        flag,
        help,
    }
}

/// Every setting, in the order of the README's table (a test checks it against the README).
#[rustfmt::skip]
const SETTINGS: &[Setting] = &[
    s("bind", Text, Some("bind"), "Address to listen on [default: 127.0.0.1:8080]"),
    s("database_url", Text, Some("database-url"), "`sqlite://PATH` or `postgres://...` [default: sqlite://data/oauth.db]"),
    s("database_acquire_timeout_ms", Toml, Some("database-acquire-timeout-ms"), "Longest wait for a PostgreSQL connection, in milliseconds, before a request's 503 [default: 2000]"),
    s("database_max_connections", Toml, Some("database-max-connections"), "Most PostgreSQL connections this instance holds at once [default: 16]"),
    s("issuer", Text, Some("issuer"), "Issuer identifier (RFC 8414): the server's public base URL [default: http://<bind>]"),
    s("max_body_bytes", Toml, Some("max-body-bytes"), "Largest accepted request body, in bytes [default: 65536]"),
    s("max_clients_per_organization", Toml, Some("max-clients-per-organization"), "Most OAuth clients one organization may create through the management API [default: 1000]"),
    s("log_format", Text, Some("log-format"), "Log format: `text` or `json` [default: text]"),
    s("trusted_proxies", Toml, Some("trusted-proxies"), "Reverse proxies (addresses or networks, a TOML list such as '[\"10.0.0.0/8\"]') whose X-Forwarded-For names the client for per-address limits and the audit trail [default: none: every caller is its TCP peer]"),
    s("server.header_read_timeout_ms", Toml, Some("header-read-timeout-ms"), "Longest time to receive a request's head, in milliseconds; then the connection is closed [default: 10000]"),
    s("server.body_read_timeout_ms", Toml, Some("body-read-timeout-ms"), "Longest time to receive a request's body once its head has come, in milliseconds; then 408 and the connection is closed [default: 10000]"),
    s("server.idle_timeout_secs", Toml, Some("idle-timeout-secs"), "Seconds a connection may stay without a request, or with one that moves no byte [default: 60]"),
    s("server.max_connections", Toml, Some("max-connections"), "Most connections served at once; the next ones wait in the listen queue [default: 1024]"),
    s("server.max_connections_per_ip", Toml, Some("max-connections-per-ip"), "Most connections one client address (IPv6 by its /64) holds at once; 0 turns the cap off [default: 128]"),
    s("metrics.bind", Text, Some("metrics-bind"), "Address of the Prometheus metrics listener (`/metrics`), apart from the public one [default: none, no metrics]"),
    s("tracing.otlp_endpoint", Text, Some("otlp-endpoint"), "OpenTelemetry collector base URL for OTLP/HTTP trace export, such as `http://127.0.0.1:4318` (needs a build with the `otlp` feature) [default: none, no export]"),
    s("tracing.service_name", Text, None, ""),
    s("tracing.sample_ratio", Toml, None, ""),
    s("audit.retention_days", Toml, Some("audit-retention-days"), "Days that security events (the audit trail) are kept [default: 90]"),
    s("registration.mode", Text, Some("registration-mode"), "Dynamic client registration: `open` or `token` (an initial access token is required) [default: open]"),
    s("registration.initial_access_token", Text, Some("registration-token"), "The initial access token that `token` registration mode requires"),
    s("registration.initial_access_token_file", Text, Some("registration-token-file"), "A file holding the initial access token, kept out of `ps` and the environment"),
    s("registration.allow_client_credentials", Toml, Some("registration-allow-client-credentials"), "Let a registration that presents the initial access token ask for `client_credentials` [default: false]"),
    s("registration.default_scopes", Toml, None, ""),
    s("registration.cimd_enabled", Toml, Some("cimd-enabled"), "Accept Client ID Metadata Documents: an https URL as client_id [default: true]"),
    s("registration.cimd_allowed_hosts", Toml, None, ""),
    s("registration.cimd_denied", Toml, None, ""),
    s("registration.cimd_allow_http_loopback", Toml, Some("cimd-allow-http-loopback"), "Accept http client id URLs on 127.0.0.1, [::1] and localhost (development only) [default: false]"),
    s("registration.cimd_cache_min_secs", Toml, None, ""),
    s("registration.cimd_cache_max_secs", Toml, None, ""),
    s("registration.unused_client_lifetime_secs", Toml, None, ""),
    // No longer used: accepted so that an old configuration still starts, with a notice.
    s("registration.organization", Text, Some("registration-org"), ""),
    s("scopes", Toml, None, ""),
    s("resources", Toml, None, ""),
    s("tokens.algorithm", Text, Some("token-algorithm"), "Access token signing algorithm: `es256`, `rs256` or `eddsa` [default: es256]"),
    s("tokens.access_token_lifetime_secs", Toml, Some("access-token-lifetime-secs"), "Access token lifetime in seconds [default: 3600]"),
    s("tokens.key_publish_delay_secs", Toml, Some("key-publish-delay-secs"), "Seconds between publishing a rotated-in key and signing with it [default: 3600]"),
    s("tokens.refresh_token_lifetime_secs", Toml, Some("refresh-token-lifetime-secs"), "Refresh token lifetime in seconds [default: 2592000, 30 days]"),
    s("tokens.refresh_family_lifetime_secs", Toml, Some("refresh-family-lifetime-secs"), "Absolute lifetime of the refresh tokens of one authorization, in seconds [default: 7776000, 90 days]"),
    s("tokens.key_reload_secs", Toml, None, ""),
    s("tokens.purge_interval_secs", Toml, None, ""),
    s("tokens.key_encryption_key", Text, Some("key-encryption-key"), "Base64 of 32 bytes: encrypts the private signing keys in the database"),
    s("tokens.key_encryption_key_file", Text, Some("key-encryption-key-file"), "A file holding the key-encryption key, readable by its owner only (mode 0600 or 0400)"),
    s("authorization.allow_plain_pkce", Toml, Some("allow-plain-pkce"), "Accept PKCE `plain` challenges (RFC 7636 §4.2) besides S256 [default: false]"),
    s("authorization.consent_url", Text, Some("consent-url"), "Address of an external consent page (it gets `?consent_token=...`) [default: the built-in /consent]"),
    s("authorization.skip_consent_if_granted", Toml, Some("skip-consent-if-granted"), "Skip the consent page when the user already granted every requested scope [default: false]"),
    s("authorization.client_assertion_accepts_token_endpoint", Toml, None, ""),
    s("authorization.session_lifetime_secs", Toml, None, ""),
    s("authorization.login_failure_window_secs", Toml, None, ""),
    s("authorization.login_device_lifetime_secs", Toml, None, ""),
    s("authorization.login_max_failures_per_account", Toml, None, ""),
    s("authorization.login_max_failures_per_ip", Toml, None, ""),
    s("authorization.max_concurrent_password_checks", Toml, Some("max-concurrent-password-checks"), "Sign-in password checks (argon2id) run at once [default: 4]"),
    s("authorization.password_check_wait_ms", Toml, None, ""),
    s("rate_limits.backend", Text, Some("rate-limit-backend"), "Where the rate-limit buckets live: `memory` (per instance) or `redis` (shared) [default: memory]"),
    s("rate_limits.redis_url", Text, Some("rate-limit-redis-url"), "`redis://[[user]:password@]host[:port][/db]` for the `redis` rate-limit backend"),
    s("rate_limits.redis_key_prefix", Text, None, ""),
    s("rate_limits.management_per_key", Toml, None, ""),
    s("rate_limits.management_per_ip", Toml, None, ""),
    s("rate_limits.oauth_per_client", Toml, None, ""),
    s("rate_limits.client_auth_failures_per_ip", Toml, None, ""),
    s("rate_limits.client_auth_failures_per_client_ip", Toml, None, ""),
    s("rate_limits.register_per_ip", Toml, None, ""),
    s("rate_limits.register_per_ip_daily", Toml, None, ""),
    s("rate_limits.documents_per_ip", Toml, None, ""),
    s("rate_limits.login_per_ip", Toml, None, ""),
    s("rate_limits.authorize_per_ip", Toml, None, ""),
    s("cors.allowed_origins", Toml, None, ""),
];

impl Setting {
    fn named(key: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.key == key)
    }

    /// The variables this setting answers to: the one from its key, and the one from its flag.
    fn env_names(&self) -> Vec<String> {
        let mut names = vec![format!(
            "OAUTH_{}",
            self.key.replace('.', "__").to_uppercase()
        )];
        if let Some(flag) = self.flag {
            let name = format!("OAUTH_{}", flag.replace('-', "_").to_uppercase());
            if !names.contains(&name) {
                names.insert(0, name);
            }
        }
        names
    }

    /// The sources of this setting, for messages: `OAUTH_X, --x or section.x`.
    fn sources(&self) -> String {
        let env = self.env_names().remove(0);
        match self.flag {
            Some(flag) => format!("{env}, --{flag} or {}", self.key),
            None => format!("{env} or {}", self.key),
        }
    }

    /// A value from the environment or a flag, as a layer named after where it came from.
    fn layer(&self, source: String, text: &str) -> Layer {
        let value = match self.form {
            Text => Value::from(text.to_owned()),
            Toml => {
                let Ok(value) = text.parse::<Value>();
                value
            }
        };
        let data = figment::util::nest(self.key, value)
            .into_dict()
            .unwrap_or_default();
        Layer { source, data }
    }
}

/// One source's values, named in error messages (`for key "server.max_connections" in
/// environment variable OAUTH_MAX_CONNECTIONS`).
struct Layer {
    source: String,
    data: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.source.clone())
            .interpolater(|_: &Profile, keys: &[&str]| keys.join("."))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.data.clone()))
    }
}

/// What the process was given: the file (`--config` or `OAUTH_CONFIG`), the `OAUTH_*`
/// environment and the flags of `SETTINGS`, every one global to the subcommands.
/// [`Config::load`] layers them over the defaults.
#[derive(Clone, Default)]
pub struct ConfigArgs {
    pub config: Option<PathBuf>,
    /// `OAUTH_*` variables, as (name, value); those that name no setting are ignored.
    pub env: Vec<(String, String)>,
    /// Flags given, as (name without `--`, value).
    pub flags: Vec<(String, String)>,
}

impl fmt::Debug for ConfigArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: values may be secrets.
        let names = |v: &[(String, String)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        f.debug_struct("ConfigArgs")
            .field("config", &self.config)
            .field("env", &names(&self.env))
            .field("flags", &names(&self.flags))
            .finish()
    }
}

impl clap::Args for ConfigArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let config = clap::Arg::new("config")
            .long("config")
            .env("OAUTH_CONFIG")
            .global(true)
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .help("TOML configuration file");
        SETTINGS
            .iter()
            .fold(cmd.arg(config), |cmd, s| match s.flag {
                Some(flag) => cmd.arg(
                    clap::Arg::new(flag)
                        .long(flag)
                        .global(true)
                        .value_name(flag.replace('-', "_").to_uppercase())
                        .help(format!("{} [env: {}]", s.help, s.env_names()[0]))
                        .hide(s.help.is_empty()),
                ),
                None => cmd,
            })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for ConfigArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
            .filter(|(k, _)| k.starts_with("OAUTH_"))
            .collect();
        Ok(Self::from_matches(matches, env))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl ConfigArgs {
    /// The file and flags from `matches`, with this environment.
    fn from_matches(matches: &clap::ArgMatches, env: Vec<(String, String)>) -> Self {
        let get = |id: &str| matches.try_get_one::<String>(id).ok().flatten().cloned();
        Self {
            config: matches
                .try_get_one::<PathBuf>("config")
                .ok()
                .flatten()
                .cloned(),
            env,
            flags: SETTINGS
                .iter()
                .filter_map(|s| Some((s.flag?.to_owned(), get(s.flag?)?)))
                .collect(),
        }
    }

    /// The sources in order of precedence, and what they asked for that is ignored.
    fn figment(&self) -> anyhow::Result<(Figment, Vec<String>)> {
        let mut figment = Figment::new();
        let mut notices = Vec::new();
        if let Some(path) = &self.config {
            let source = format!("configuration file {}", path.display());
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {source}"))?;
            let data: Dict = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{source}: {}", toml_error(&text, &e)))?;
            unknown_keys(&data, "").with_context(|| source.clone())?;
            if let Some(notice) = secret_in_an_open_file(path, &data) {
                notices.push(notice);
            }
            figment = figment.merge(Layer { source, data });
        }
        for s in SETTINGS {
            let names = s.env_names();
            let given: Vec<_> = self.env.iter().filter(|(k, _)| names.contains(k)).collect();
            match given[..] {
                [] => {}
                [(name, value)] => {
                    figment = figment.merge(s.layer(format!("environment variable {name}"), value))
                }
                _ => bail!(
                    "configuration: {} both set {}; set one",
                    names.join(" and "),
                    s.key
                ),
            }
        }
        let env_names: Vec<String> = SETTINGS.iter().flat_map(Setting::env_names).collect();
        for (name, _) in &self.env {
            if env_names.contains(name) {
                continue;
            }
            // Other `OAUTH_` variables may belong to something else; one a letter or two from a
            // setting's name is a typo, which would otherwise leave a default in force
            // unnoticed (`OAUTH_REGISTRATON_MODE=token`, and registration stays open).
            let near = env_names
                .iter()
                .find(|known| edit_distance(known, name) <= 2);
            if let Some(near) = near {
                notices.push(format!(
                    "the environment variable {name} names no setting and is ignored; did you mean {near}?"
                ));
            } else if name.contains("__") {
                notices.push(format!(
                    "the environment variable {name} names no setting and is ignored"
                ));
            }
        }
        for (flag, value) in &self.flags {
            let s = SETTINGS
                .iter()
                .find(|s| s.flag == Some(flag.as_str()))
                .ok_or_else(|| anyhow!("configuration: no flag --{flag}"))?;
            figment = figment.merge(s.layer(format!("flag --{flag}"), value));
        }
        Ok((figment, notices))
    }
}

/// The file's keys must be settings, or sections holding them.
fn unknown_keys(dict: &Dict, section: &str) -> anyhow::Result<()> {
    for (key, value) in dict {
        let path = if section.is_empty() {
            key.clone()
        } else {
            format!("{section}.{key}")
        };
        if Setting::named(&path).is_some() {
            continue;
        }
        let prefix = format!("{path}.");
        if !SETTINGS.iter().any(|s| s.key.starts_with(&prefix)) {
            bail!("unknown field `{path}`");
        }
        // A section that is not a table is the deserializer's to refuse.
        if let Some(inner) = value.as_dict() {
            unknown_keys(inner, &path)?;
        }
    }
    Ok(())
}

/// `[rate_limits] backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitBackendKind {
    #[default]
    Memory,
    Redis,
}

/// The JWS algorithm of access tokens (`[tokens] algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    #[default]
    Open,
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The resolved configuration. It deserializes from the merged sources; the fields marked
/// `skip` come from settings that [`Config::load`] reads itself (secrets, files, the scope
/// catalogue).
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: String,
    /// The connection pool's acquire timeout: the bound on a request's wait for the database.
    pub database_acquire_timeout_ms: u64,
    /// The connection pool's size (PostgreSQL).
    pub database_max_connections: usize,
    /// `None`: derived from the address actually bound.
    pub issuer: Option<String>,
    pub max_body_bytes: usize,
    /// The most clients one organization may hold (`POST /oauth_clients` answers 422 past it):
    /// a member's key cannot fill the database with clients.
    pub max_clients_per_organization: i64,
    pub log_format: LogFormat,
    /// Reverse proxies (addresses or networks) believed about their callers' addresses, as
    /// configured; `proxies` is what they parse to.
    pub trusted_proxies: Vec<String>,
    #[serde(skip)]
    pub proxies: TrustedProxies,
    pub server: ServerConfig,
    pub metrics: MetricsConfig,
    pub tracing: TracingConfig,
    pub audit: AuditConfig,
    pub registration: RegistrationConfig,
    #[serde(skip)]
    pub scopes: ScopeCatalogue,
    /// RFC 8707 resources a client may name (`resource`), besides the issuer itself, which is
    /// always one (the management API) and the default audience.
    pub resources: Vec<String>,
    pub tokens: TokensConfig,
    pub authorization: AuthorizationConfig,
    pub rate_limits: RateLimitsConfig,
    pub cors: CorsConfig,
    /// What the configuration asked for that this version no longer does, each a sentence the
    /// server logs as a warning when it starts.
    #[serde(skip)]
    pub notices: Vec<String>,
}

/// Connections (`[server]`): what one client may hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// The longest time to receive a request's head, from the accept (first request) or from
    /// its first byte (later requests on a kept-alive connection).
    pub header_read_timeout_ms: u64,
    /// The longest time to receive a request's body, from the end of its head.
    pub body_read_timeout_ms: u64,
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
            body_read_timeout_ms: DEFAULT_BODY_READ_TIMEOUT_MS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
        }
    }
}

/// Prometheus metrics (`[metrics]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// Where `/metrics` is served, on a listener of its own; `None`: no metrics.
    pub bind: Option<SocketAddr>,
}

/// Trace export (`[tracing]`): OpenTelemetry over OTLP/HTTP, with the `otlp` cargo feature.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct TracingConfig {
    /// The collector's base URL (`/v1/traces` is appended); `None`: no export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// The share of requests whose spans are exported, 0.0 to 1.0, drawn by the server: a
    /// caller's `traceparent` sampled flag is not followed.
    pub sample_ratio: f64,
}

impl TracingConfig {
    fn check(&self) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            bail!("configuration: tracing.sample_ratio must be between 0.0 and 1.0");
        }
        if self.service_name.trim().is_empty() || self.service_name.len() > 200 {
            bail!("configuration: tracing.service_name must be 1 to 200 characters");
        }
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(());
        };
        let url = url::Url::parse(endpoint)
            .map_err(|e| anyhow!("configuration: tracing.otlp_endpoint is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            bail!("configuration: tracing.otlp_endpoint must be an http or https URL, such as http://127.0.0.1:4318");
        }
        if url.query().is_some() || url.fragment().is_some() {
            bail!("configuration: tracing.otlp_endpoint takes no query or fragment");
        }
        if !url.username().is_empty() || url.password().is_some() {
            bail!("configuration: tracing.otlp_endpoint takes no user information; give the collector's credentials in OTEL_EXPORTER_OTLP_HEADERS");
        }
        if !cfg!(feature = "otlp") {
            bail!("configuration: tracing.otlp_endpoint is set, but this build has no OTLP export; build with `cargo build --release --features otlp`");
        }
        Ok(())
    }
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "oauth-server".to_owned(),
            sample_ratio: 1.0,
        }
    }
}

/// The audit trail (`[audit]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
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
    /// Clients stored for one address in a day (registrations, and metadata documents' clients
    /// named for the first time), whatever the pace.
    pub register_per_ip_daily: RateLimit,
    /// Fetches of Client ID Metadata Documents that are neither stored nor cached, per client
    /// address.
    pub documents_per_ip: RateLimit,
    /// `POST /login`, per client address.
    pub login_per_ip: RateLimit,
    /// `GET /oauth/authorize`, per client address.
    pub authorize_per_ip: RateLimit,
    /// From `backend`, `redis_url` and `redis_key_prefix`.
    #[serde(skip)]
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
            // 200 a day: a registration may store some 45 KB, kept a week if nobody uses it,
            // so the pace above alone would let one address store gigabytes.
            register_per_ip_daily: RateLimit {
                requests: 200,
                window_secs: 86_400,
            },
            // One every 2 s, bursts of 30: each is a request to a host the caller names.
            documents_per_ip: RateLimit {
                requests: 30,
                window_secs: 60,
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
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
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
    #[serde(skip)]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AuthorizationConfig {
    /// Accept PKCE `plain`; off by default (RFC 9700 §2.1.1).
    pub allow_plain_pkce: bool,
    /// An external consent page; `None`: the built-in `/consent`.
    pub consent_url: Option<String>,
    /// Skip the consent page when a live grant already covers the request.
    pub skip_consent_if_granted: bool,
    /// Accept a client assertion (`private_key_jwt`) whose `aud` is the token endpoint's URL,
    /// besides the issuer; off by default (audience injection, draft-ietf-oauth-rfc7523bis).
    pub client_assertion_accepts_token_endpoint: bool,
    /// How long a login session lasts.
    pub session_lifetime_secs: i64,
    /// The window in which failed logins are counted.
    pub login_failure_window_secs: i64,
    /// How long after its last sign-in a browser keeps its own failure budget for that account
    /// (its device cookie); 0: no device cookies, those issued before included.
    pub login_device_lifetime_secs: i64,
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
            client_assertion_accepts_token_endpoint: false,
            session_lifetime_secs: 12 * 3600,
            login_failure_window_secs: 15 * 60,
            login_device_lifetime_secs: 180 * 24 * 3600,
            login_max_failures_per_account: 5,
            login_max_failures_per_ip: 30,
            max_concurrent_password_checks: DEFAULT_MAX_CONCURRENT_PASSWORD_CHECKS,
            password_check_wait_ms: DEFAULT_PASSWORD_CHECK_WAIT_MS,
        }
    }
}

/// Dynamic client registration (`[registration]`).
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct RegistrationConfig {
    pub mode: RegistrationMode,
    /// SHA-256 of the initial access token (`token` mode).
    #[serde(skip)]
    pub initial_access_token_hash: Option<String>,
    /// Scopes a registration gets when it asks for none; only scopes open to third parties.
    /// Read with the scope catalogue, whose open scopes are the default.
    #[serde(skip)]
    pub default_scopes: Vec<String>,
    /// May a registration (behind the initial access token) ask for `client_credentials`?
    pub allow_client_credentials: bool,
    /// Accept Client ID Metadata Documents (an https URL as `client_id`).
    pub cimd_enabled: bool,
    /// Hosts a client id URL may name; empty: any.
    pub cimd_allowed_hosts: Vec<String>,
    /// Client ids refused whatever else allows them: a host name refuses that host and every
    /// host under it, a client id URL refuses that one client.
    pub cimd_denied: Vec<String>,
    /// Accept `http://` client id URLs on loopback hosts (for development and tests).
    pub cimd_allow_http_loopback: bool,
    /// Shortest time a fetched document is kept, whatever its `Cache-Control` says.
    pub cimd_cache_min_secs: i64,
    /// Longest time a fetched document is kept.
    pub cimd_cache_max_secs: i64,
    /// Registered (and metadata-document) clients never used this long after their creation
    /// are purged; 0 keeps them.
    pub unused_client_lifetime_secs: i64,
}

/// A week: a client registered (or met through its metadata document) and never authorized by
/// anyone in that long is purged.
pub const DEFAULT_UNUSED_CLIENT_LIFETIME_SECS: i64 = 7 * 86_400;

/// Cross-origin requests (`[cors]`) beyond the public OAuth endpoints, which always allow any
/// origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CorsConfig {
    /// Origins (`https://app.example.com`) allowed to call the management API and the pages.
    pub allowed_origins: Vec<String>,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            mode: RegistrationMode::Open,
            initial_access_token_hash: None,
            default_scopes: ScopeCatalogue::default().third_party_names(),
            allow_client_credentials: false,
            cimd_enabled: true,
            cimd_allowed_hosts: Vec::new(),
            cimd_denied: Vec::new(),
            cimd_allow_http_loopback: false,
            cimd_cache_min_secs: DEFAULT_CIMD_CACHE_MIN_SECS,
            cimd_cache_max_secs: DEFAULT_CIMD_CACHE_MAX_SECS,
            unused_client_lifetime_secs: DEFAULT_UNUSED_CLIENT_LIFETIME_SECS,
        }
    }
}

/// A fetched Client ID Metadata Document is kept at least this long (seconds).
pub const DEFAULT_CIMD_CACHE_MIN_SECS: i64 = 300;
/// And at most this long.
pub const DEFAULT_CIMD_CACHE_MAX_SECS: i64 = 86_400;

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
            .field("cimd_enabled", &self.cimd_enabled)
            .field("cimd_allowed_hosts", &self.cimd_allowed_hosts)
            .field("cimd_denied", &self.cimd_denied)
            .field("cimd_allow_http_loopback", &self.cimd_allow_http_loopback)
            .field("cimd_cache_min_secs", &self.cimd_cache_min_secs)
            .field("cimd_cache_max_secs", &self.cimd_cache_max_secs)
            .field(
                "unused_client_lifetime_secs",
                &self.unused_client_lifetime_secs,
            )
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
            .field("database_max_connections", &self.database_max_connections)
            .field("issuer", &self.issuer)
            .field("max_body_bytes", &self.max_body_bytes)
            .field(
                "max_clients_per_organization",
                &self.max_clients_per_organization,
            )
            .field("log_format", &self.log_format)
            .field("server", &self.server)
            .field("metrics", &self.metrics)
            .field("tracing", &self.tracing)
            .field("audit", &self.audit)
            .field("registration", &self.registration)
            .field("scopes", &self.scopes.names())
            .field("resources", &self.resources)
            .field("tokens", &self.tokens)
            .field("authorization", &self.authorization)
            .field("rate_limits", &self.rate_limits)
            .field("cors", &self.cors)
            .finish()
    }
}

/// The Levenshtein distance between two ASCII names (insertions, deletions and substitutions
/// of one byte each), for telling a mistyped setting name from an unrelated one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, y) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(x != y);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Where a configuration file cannot be read as TOML, and why, without the line itself: the
/// parser's own message quotes it, and the line may hold a secret (a registration token, the
/// key-encryption key, a password in a database URL).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().to_owned();
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!(
        "TOML parse error at line {line}, column {column}: {}",
        e.message()
    )
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, and a query parameter that
/// may hold a secret masked the same way: one whose name holds `pass` (`?password=`, which
/// PostgreSQL's drivers take, `sslpassword=`, a mistyped `passwrd=`), `secret`, `token` or `key`.
pub fn redact_url(url: &str) -> String {
    let Some(mut u) = readable_url(url) else {
        // Not readable as a URL with a host (a password holding an unencoded `#`, `/` or `?`,
        // a slash missing after the scheme, a keyword string such as `host=… password=…`), it
        // cannot be masked part by part: only what cannot hold a password is shown.
        let lower = url.to_ascii_lowercase();
        let may_hold_one = url.contains(['@', '?', '#', ':', '='])
            || ["pass", "secret", "token", "key"]
                .iter()
                .any(|w| lower.contains(w));
        if !may_hold_one {
            return url.to_owned();
        }
        let scheme = url
            .split_once("://")
            .map(|(scheme, _)| scheme)
            .filter(|s| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            })
            .unwrap_or("");
        return format!("{scheme}://*** (not a valid URL, so not shown)");
    };
    let masked_query = u.query_pairs().any(|(k, _)| secret_parameter(&k)).then(|| {
        // What follows a secret parameter may be the rest of its value, cut at an unencoded
        // `&`: after the first, a parameter the driver does not read is masked, name and value.
        let mut after_secret = false;
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                if secret_parameter(&k) {
                    after_secret = true;
                    return (k.into_owned(), "***".to_owned());
                }
                if after_secret && may_continue_a_secret(&k) {
                    return ("***".to_owned(), "***".to_owned());
                }
                (k.into_owned(), v.into_owned())
            })
            .collect();
        pairs
    });
    if u.password().is_none() && masked_query.is_none() {
        return url.to_owned();
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if let Some(pairs) = masked_query {
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// `url` parsed, when the parser read it as it was meant: with a host, or an authority written
/// empty (`postgres:///db?host=/run/postgresql`, a socket), or a SQLite path. A `#`, `/` or `?`
/// left unencoded in a password makes the parser take the user and the password's first part
/// for a host and a port (or, after an `@` in the password, the rest for a host), and what
/// follows for a fragment, a path or a query: such a URL has a fragment, or an `@` after its
/// authority. An `@` in a query value (`user=a@b`) is read the same way, to be safe.
fn readable_url(url: &str) -> Option<url::Url> {
    let u = url::Url::parse(url).ok()?;
    if u.scheme() == "sqlite" {
        return Some(u);
    }
    let empty_authority = url
        .get(u.scheme().len()..)
        .is_some_and(|rest| rest.starts_with(":///"));
    // An `@` after the authority ended where the parser ended it is the end of user
    // information it did not take for one.
    let after_authority = [Some(u.path()), u.query()];
    let misread = u.fragment().is_some()
        || after_authority
            .iter()
            .flatten()
            .any(|part| part.contains('@') || part.to_ascii_lowercase().contains("%40"));
    ((u.has_host() || empty_authority) && !misread).then_some(u)
}

/// `host`, as the driver read it from `url`, to be shown; not shown when the URL does not read
/// as one (see [`readable_url`]), where what was read as the host may be part of a password.
pub fn host_shown(url: &str, host: &str) -> String {
    if readable_url(url).is_some() {
        host.to_owned()
    } else {
        "a host not shown (the URL does not read as one)".to_owned()
    }
}

/// The query parameters of a PostgreSQL URL that the driver reads (`options[...]` besides).
const DRIVER_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// After a secret parameter, whether a parameter may be the rest of the secret's value, cut at
/// an unencoded `&`: any whose name the driver does not read.
fn may_continue_a_secret(name: &str) -> bool {
    !DRIVER_PARAMETERS.contains(&name) && !name.starts_with("options[")
}

/// Whether a URL's query parameter may hold a secret, by its name.
fn secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|part| name.contains(part))
}

/// `text` (an error about the database at `url`, say) with the secrets of `url` masked: its
/// password, as written and decoded, and the values of its secret parameters. When `url` is not
/// readable as a URL, its secrets cannot be told apart: the whole text is masked as
/// [`redact_url`] masks such a URL.
pub fn without_url_secrets(text: &str, url: &str) -> String {
    let Some(u) = readable_url(url) else {
        return redact_url(text);
    };
    let decoded = |raw: &str| {
        url::form_urlencoded::parse(format!("v={raw}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let mut secrets: Vec<String> = Vec::new();
    if let Some(password) = u.password() {
        secrets.push(password.to_owned());
        secrets.extend(decoded(password));
    }
    let mut after_secret = false;
    for (name, value) in u.query_pairs() {
        if secret_parameter(&name) {
            after_secret = true;
            secrets.push(value.into_owned());
        } else if after_secret && may_continue_a_secret(&name) {
            // Perhaps the rest of the secret's value, cut at an unencoded `&`.
            secrets.push(name.into_owned());
            secrets.push(value.into_owned());
        }
    }
    // The longest first, so that a secret holding another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret.as_str(), "***");
    }
    text
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            database_acquire_timeout_ms: DEFAULT_DATABASE_ACQUIRE_TIMEOUT_MS,
            database_max_connections: DEFAULT_DATABASE_MAX_CONNECTIONS,
            issuer: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_clients_per_organization: DEFAULT_MAX_CLIENTS_PER_ORGANIZATION,
            log_format: LogFormat::Text,
            trusted_proxies: Vec::new(),
            proxies: TrustedProxies::default(),
            server: ServerConfig::default(),
            metrics: MetricsConfig::default(),
            tracing: TracingConfig::default(),
            audit: AuditConfig::default(),
            registration: RegistrationConfig::default(),
            scopes: ScopeCatalogue::default(),
            resources: Vec::new(),
            tokens: TokensConfig::default(),
            authorization: AuthorizationConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            cors: CorsConfig::default(),
            notices: Vec::new(),
        }
    }
}

impl Config {
    /// Merges the sources in order of precedence and checks the result.
    pub fn load(args: &ConfigArgs) -> anyhow::Result<Self> {
        let (figment, notices) = args.figment()?;
        let mut config: Config = figment
            .extract()
            .map_err(|e| anyhow!("configuration: {e}"))?;
        config.notices = notices;
        if let Some(scopes) = read::<Vec<ScopeDef>>(&figment, "scopes")? {
            config.scopes =
                ScopeCatalogue::new(scopes).map_err(|e| anyhow!("configuration: scopes: {e}"))?;
        }
        config.registration.default_scopes = read(&figment, "registration.default_scopes")?
            .unwrap_or_else(|| config.scopes.third_party_names());
        let token = secret_value(
            &figment,
            "registration.initial_access_token",
            "the registration token",
            true,
        )?;
        if let Some(t) = &token {
            // Anyone may try tokens at /oauth/register (within its per-address limit).
            if t.trim().chars().count() < MIN_REGISTRATION_TOKEN_CHARS {
                bail!("configuration: the registration token must be at least 16 characters: a short one can be guessed (make one with `head -c 24 /dev/urandom | base64`)");
            }
        }
        config.registration.initial_access_token_hash = token.map(|t| secret::hash_secret(&t));
        if let Some(v) = read::<String>(&figment, "registration.organization")? {
            config.notices.push(format!(
                "registration.organization ({v:?}) is ignored: registered clients are third-party clients and belong to no organization's members"
            ));
        }
        if let Some(v) = secret_value(
            &figment,
            "tokens.key_encryption_key",
            "the key-encryption key",
            true,
        )? {
            config.tokens.key_encryption_key = Some(KeyEncryptionKey::from_base64(&v).map_err(|_| {
                anyhow!(
                    "configuration: the key-encryption key (OAUTH_KEY_ENCRYPTION_KEY, tokens.key_encryption_key or their _FILE forms) must be the base64 of 32 bytes, e.g. from `openssl rand -base64 32`"
                )
            })?);
        }
        let backend = read(&figment, "rate_limits.backend")?.unwrap_or_default();
        let key_prefix = read(&figment, "rate_limits.redis_key_prefix")?;
        config.rate_limits.backend = match (backend, read(&figment, "rate_limits.redis_url")?) {
            (RateLimitBackendKind::Memory, None) => RateLimitBackend::Memory,
            (RateLimitBackendKind::Redis, Some(url)) => RateLimitBackend::Redis {
                url,
                key_prefix: key_prefix.unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.to_owned()),
            },
            (RateLimitBackendKind::Redis, None) => bail!(
                "configuration: rate_limits.backend = \"redis\" needs rate_limits.redis_url (OAUTH_RATE_LIMIT_REDIS_URL)"
            ),
            (RateLimitBackendKind::Memory, Some(_)) => bail!(
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
        if let Some(warning) = database_route_warning(&self.database_url) {
            self.notices.push(warning);
        }
        self.notices
            .extend(unread_database_parameters(&self.database_url));
        if !(100..=60_000).contains(&self.database_acquire_timeout_ms) {
            bail!("configuration: database_acquire_timeout_ms must be between 100 and 60000");
        }
        if !(1..=1000).contains(&self.database_max_connections) {
            bail!("configuration: database_max_connections must be between 1 and 1000");
        }
        if !(1024..=MOST_BODY_BYTES).contains(&self.max_body_bytes) {
            bail!("configuration: max_body_bytes must be between 1024 and 67108864 (64 MiB)");
        }
        if !(1..=1_000_000).contains(&self.max_clients_per_organization) {
            bail!("configuration: max_clients_per_organization must be between 1 and 1000000");
        }
        self.notices.extend(self.exposure_notice());
        self.proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("configuration: trusted_proxies: {e}"))?;
        if self.proxies.trusts_a_wide_network() {
            self.notices.push("trusted_proxies trusts a network wider than a /8: any caller in it that reaches this server directly can choose the address it is counted under; only do this where the proxies are the only way in".to_owned());
        }
        let srv = &self.server;
        if !(100..=300_000).contains(&srv.header_read_timeout_ms) {
            bail!("configuration: server.header_read_timeout_ms must be between 100 and 300000");
        }
        if !(100..=300_000).contains(&srv.body_read_timeout_ms) {
            bail!("configuration: server.body_read_timeout_ms must be between 100 and 300000");
        }
        if !(1..=3600).contains(&srv.idle_timeout_secs) {
            bail!("configuration: server.idle_timeout_secs must be between 1 and 3600");
        }
        if !(1..=1_000_000).contains(&srv.max_connections) {
            bail!("configuration: server.max_connections must be between 1 and 1000000");
        }
        if let Some(metrics) = self.metrics.bind {
            if metrics.port() != 0 && metrics.port() == self.bind.port() {
                bail!("configuration: metrics.bind ({metrics}) must differ from bind ({}): metrics are never served on the public port", self.bind);
            }
        }
        self.tracing.check()?;
        if self.registration.mode == RegistrationMode::Token
            && self.registration.initial_access_token_hash.is_none()
        {
            bail!("configuration: registration mode `token` needs an initial access token (OAUTH_REGISTRATION_TOKEN or registration.initial_access_token)");
        }
        // A token set for nothing: the operator meant registration to need it, and it would not.
        if self.registration.mode == RegistrationMode::Open
            && self.registration.initial_access_token_hash.is_some()
        {
            bail!("configuration: an initial access token is set (OAUTH_REGISTRATION_TOKEN, OAUTH_REGISTRATION_TOKEN_FILE or registration.initial_access_token) but registration mode is `open`, which does not ask for it: anyone could register. Set registration mode `token` (OAUTH_REGISTRATION_MODE=token) to require it, or remove the token");
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
            r.register_per_ip_daily,
            r.documents_per_ip,
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
        // Bounded above as well: a time this far ahead (or a duration this long) would wrap when
        // added to the clock.
        if !(0..=366 * 86_400).contains(&t.key_publish_delay_secs) {
            bail!("configuration: tokens.key_publish_delay_secs must be between 0 and 31622400 (366 days)");
        }
        if !(1..=86_400).contains(&t.key_reload_secs)
            || !(1..=86_400).contains(&t.purge_interval_secs)
        {
            bail!("configuration: tokens.key_reload_secs and tokens.purge_interval_secs must be between 1 and 86400");
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
        if !(60..=LONGEST_COOKIE_SECS).contains(&a.session_lifetime_secs)
            || a.login_failure_window_secs < 1
        {
            bail!("configuration: authorization.session_lifetime_secs must be between 60 and 34560000 (400 days, the longest a browser keeps a cookie) and login_failure_window_secs at least 1");
        }
        if !(0..=LONGEST_COOKIE_SECS).contains(&a.login_device_lifetime_secs) {
            bail!("configuration: authorization.login_device_lifetime_secs must be between 0 (off) and 34560000 (400 days, the longest a browser keeps a cookie)");
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
        let reg = &mut self.registration;
        if reg.unused_client_lifetime_secs != 0
            && !(3600..=10 * 365 * 86_400).contains(&reg.unused_client_lifetime_secs)
        {
            bail!("configuration: registration.unused_client_lifetime_secs must be 0 (keep them) or between 3600 and 315360000");
        }
        if reg.cimd_cache_min_secs < 0
            || reg.cimd_cache_max_secs < reg.cimd_cache_min_secs
            || reg.cimd_cache_max_secs > 366 * 86_400
        {
            bail!("configuration: registration.cimd_cache_min_secs must be at least 0, and cimd_cache_max_secs at least cimd_cache_min_secs and at most 31622400 (366 days)");
        }
        for h in &mut reg.cimd_allowed_hosts {
            *h = h.to_ascii_lowercase();
            if h.is_empty() || h.contains(['/', ':', '@', ' ']) {
                bail!("configuration: registration.cimd_allowed_hosts: {h:?} must be a host name");
            }
        }
        for d in &mut reg.cimd_denied {
            match oauth_core::cimd::denied_entry(d) {
                Ok(normal) => *d = normal,
                Err(why) => bail!("configuration: registration.cimd_denied: {d:?}: {why}"),
            }
        }
        for o in &self.cors.allowed_origins {
            // An origin: scheme, host and optional port, exactly as a browser sends it.
            let ok = url::Url::parse(o).is_ok_and(|u| {
                matches!(u.scheme(), "https" | "http") && u.origin().ascii_serialization() == *o
            });
            if !ok {
                bail!("configuration: cors.allowed_origins: {o:?} must be an origin such as https://app.example.com (no path, no trailing slash)");
            }
        }
        Ok(())
    }

    /// What is wrong with the issuer for a server that others reach: none set while the bind
    /// address reaches beyond this machine (the derived `http://127.0.0.1:...` would send
    /// clients elsewhere to their own machine), or plain http on a host that is not loopback.
    /// The server starts all the same (a test network may want it), and says so.
    pub fn exposure_notice(&self) -> Option<String> {
        match &self.issuer {
            None if !self.bind.ip().is_loopback() => Some(format!(
                "no issuer is set and the server listens on {}, beyond this machine: the issuer is derived as {}, which clients elsewhere cannot reach; set OAUTH_ISSUER (issuer) to the public https URL",
                self.bind,
                self.issuer_for(self.bind)
            )),
            Some(issuer) => {
                let url = url::Url::parse(issuer).ok()?;
                let loopback = url.host().is_some_and(|h| is_loopback_host(&h));
                (url.scheme() == "http" && !loopback).then(|| format!(
                    "the issuer {issuer} is plain http on a host that is not loopback: tokens, codes and secrets would cross the network unencrypted; serve https (a TLS proxy in front) and name it in the issuer"
                ))
            }
            None => None,
        }
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

/// A configuration file that holds a secret itself (the registration token, the key-encryption
/// key) while its group or others may read it: said at start. Not refused, as a secret's own
/// file is, since the file may have been readable that way for as long as it has existed.
fn secret_in_an_open_file(path: &std::path::Path, data: &Dict) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    let holds = |table: &str, key: &str| {
        data.get(table)
            .and_then(|t| t.as_dict())
            .is_some_and(|t| t.contains_key(key))
    };
    let secrets: Vec<&str> = [
        ("registration", "initial_access_token"),
        ("tokens", "key_encryption_key"),
    ]
    .into_iter()
    .filter(|(table, key)| holds(table, key))
    .map(|(_, key)| key)
    .collect();
    (mode & 0o077 != 0 && !secrets.is_empty()).then(|| format!(
        "the configuration file {} holds {} and has mode {mode:04o}: group and others may read it; chmod 0600 it, or move the secret to its own file (the setting's _file form)",
        path.display(),
        secrets.join(" and ")
    ))
}

/// Refuses a secret's file that its group or others may read or write, naming the file and the
/// modes accepted.
pub fn check_owner_only(path: &std::path::Path, what: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("configuration: {} file {}", what, path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "configuration: {} file {} has mode {mode:04o}: group and others may read or write it; \
             make it readable by its owner only (chmod 0600 or 0400)",
            what,
            path.display()
        );
    }
    Ok(())
}

/// `localhost` or a loopback address.
pub fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    }
}

/// A setting that [`Config::load`] reads itself, if a source gives it.
fn read<T: DeserializeOwned>(figment: &Figment, key: &str) -> anyhow::Result<Option<T>> {
    if !figment.contains(key) {
        return Ok(None);
    }
    let value = figment.extract_inner(key);
    value.map(Some).map_err(|e| anyhow!("configuration: {e}"))
}

/// A secret given as a value (`key`) or as a file holding it (`key_file`): never both. The
/// file's content is the secret, one trailing newline removed. `owner_only`: refuse a file that
/// its group or others may read or write.
fn secret_value(
    figment: &Figment,
    key: &str,
    what: &str,
    owner_only: bool,
) -> anyhow::Result<Option<String>> {
    let file = format!("{key}_file");
    let path: PathBuf = match (read(figment, key)?, read(figment, &file)?) {
        (Some(_), Some(_)) => {
            let sources = |key: &str| Setting::named(key).map(Setting::sources);
            bail!(
                "configuration: {what} is given both as a value ({}) and as a file ({}); give one",
                sources(key).unwrap_or_default(),
                sources(&file).unwrap_or_default()
            )
        }
        (value, None) => return Ok(value),
        (None, Some(path)) => path,
    };
    if owner_only {
        check_owner_only(&path, what)?;
    }
    let mut text = std::fs::read_to_string(&path)
        .with_context(|| format!("configuration: reading {} file {}", what, path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        bail!("configuration: {} file {} is empty", what, path.display());
    }
    Ok(Some(text))
}

/// The query parameters of a PostgreSQL URL that the driver does not read, by name: it would
/// ignore them, and its own warning would print their values (the logging setup silences it),
/// which may be a password (`sslpassword=`, a mistyped `passwrd=`).
fn unread_database_parameters(url: &str) -> Option<String> {
    const READ: &[&str] = DRIVER_PARAMETERS;
    if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
        return None;
    }
    // A URL the parser misread may hold part of a password where a parameter's name would be.
    let parsed = readable_url(url)?;
    let unread: Vec<String> = parsed
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .filter(|k| !READ.contains(&k.as_str()) && !k.starts_with("options["))
        .collect();
    if unread.is_empty() {
        return None;
    }
    // An unencoded `&` in a secret parameter's value (`password=ab&cd`) starts what reads as
    // another parameter, named by the rest of the value. With such a parameter in the URL, only
    // the names that themselves read as a secret's (`passwrd`, `sslpassword`) are shown.
    let holds_secret_value = parsed.query_pairs().any(|(k, _)| secret_parameter(&k));
    let (shown, hidden): (Vec<String>, Vec<String>) = unread
        .into_iter()
        .partition(|k| !holds_secret_value || secret_parameter(k));
    let mut notice =
        String::from("database_url has parameters the PostgreSQL driver does not read, ignored:");
    if !shown.is_empty() {
        notice.push(' ');
        notice.push_str(&shown.join(", "));
    }
    if !hidden.is_empty() {
        notice.push_str(&format!(
            "{} {} not named (the URL holds a password parameter, and an unencoded & in its value \
             would read as one)",
            if shown.is_empty() { "" } else { ";" },
            hidden.len()
        ));
    }
    Some(notice)
}

/// Whether the database URL (PostgreSQL) crosses a network with TLS that accepts any certificate
/// (`oauth_store::PostgresRoute::exposed`); said at start, and by `doctor` as a failed check. Not
/// a refusal: the network may be one the operator trusts and has not said so.
pub fn database_route_warning(url: &str) -> Option<String> {
    if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
        return None;
    }
    let route = oauth_store::PostgresRoute::of(url).ok()?;
    let oauth_store::PostgresRoute::Tcp { host, ssl_mode, .. } = &route else {
        return None;
    };
    let host = host_shown(url, host);
    route.exposed().then(|| format!(
        "database_url reaches PostgreSQL at {host} over the network with sslmode={ssl_mode}, which does not check the database's certificate: whoever is on the path can read and change token and secret hashes, grants and the sealed signing keys; add sslmode=verify-full (and sslrootcert=<the CA's certificate file>) to the URL, or sslmode=disable where the network is trusted"
    ))
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
    // The server also serves every route under the issuer's path (routes::router): the path
    // must be plain segments, and its first must not be one of the server's own.
    let path = url.path().trim_matches('/');
    if !path.is_empty() {
        let plain = path.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        });
        if !plain {
            bail!("issuer {issuer:?}: its path may hold only letters, digits and - . _ ~ between slashes");
        }
        let first = path.split('/').next().unwrap_or("");
        if ISSUER_PATHS_TAKEN.contains(&first) {
            bail!("issuer {issuer:?}: its path may not start with /{first}, a path of the server's own");
        }
    }
    Ok(issuer.trim_end_matches('/').to_owned())
}

/// First path segments the server's own routes use, which an issuer's path may not start with.
const ISSUER_PATHS_TAKEN: &[&str] = &[
    "v2",
    "oauth",
    "oauth_clients",
    "oauth_grants",
    ".well-known",
    "login",
    "logout",
    "consent",
    "account",
    "assets",
    "healthz",
    "readyz",
    "openapi.json",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Test sources: a file, environment variables, flags.
    impl ConfigArgs {
        fn file(path: &std::path::Path) -> Self {
            Self {
                config: Some(path.to_owned()),
                ..Default::default()
            }
        }

        fn with_env(mut self, name: &str, value: impl ToString) -> Self {
            self.env.push((name.to_owned(), value.to_string()));
            self
        }

        fn with_flag(mut self, name: &str, value: impl ToString) -> Self {
            self.flags.push((name.to_owned(), value.to_string()));
            self
        }
    }

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
database_max_connections = 6
resources = ["https://api.example"]
[registration]
mode = "token"
initial_access_token = "s3cret-of-16-chars"
[authorization]
allow_plain_pkce = true
client_assertion_accepts_token_endpoint = true
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
        let args = ConfigArgs::file(&path).with_flag("database-url", "sqlite://from-flag.db");
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.database_url, "sqlite://from-flag.db");
        assert_eq!(c.registration.mode, RegistrationMode::Token);
        assert_eq!(c.scopes.names(), vec!["admin", "read"]);
        assert!(c.authorization.allow_plain_pkce);
        assert!(c.authorization.client_assertion_accepts_token_endpoint);
        assert!(
            !Config::default()
                .authorization
                .client_assertion_accepts_token_endpoint
        );
        assert_eq!(c.resources, vec!["https://api.example"]);
        assert!(!c.authorization.skip_consent_if_granted);
        assert_eq!(c.tokens.refresh_token_lifetime_secs, 86_400);
        assert_eq!(c.database_acquire_timeout_ms, 750, "from the file");
        assert_eq!(c.database_max_connections, 6, "from the file");
        assert_eq!(Config::default().database_max_connections, 16);
        assert_eq!(
            Config::default().tokens.refresh_token_lifetime_secs,
            30 * 86_400
        );

        // Flags and OAUTH_* variables win over the file.
        let args = args
            .with_env("OAUTH_ALLOW_PLAIN_PKCE", false)
            .with_flag("skip-consent-if-granted", true)
            .with_env("OAUTH_CONSENT_URL", "https://consent.example/page")
            .with_flag("refresh-token-lifetime-secs", 3600);
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.tokens.refresh_token_lifetime_secs, 3600);
        let slow = args.clone().with_flag("database-acquire-timeout-ms", 5000);
        assert_eq!(
            Config::load(&slow)
                .unwrap_or_else(|e| panic!("{e}"))
                .database_acquire_timeout_ms,
            5000
        );
        for bad in [0, 99, 60_001] {
            let bad = args
                .clone()
                .with_env("OAUTH_DATABASE_ACQUIRE_TIMEOUT_MS", bad);
            assert!(Config::load(&bad).is_err());
        }
        let wide = args.clone().with_flag("database-max-connections", 40);
        assert_eq!(
            Config::load(&wide)
                .unwrap_or_else(|e| panic!("{e}"))
                .database_max_connections,
            40
        );
        for value in ["0", "1001", "-1", "many"] {
            let bad = args
                .clone()
                .with_env("OAUTH_DATABASE_MAX_CONNECTIONS", value);
            assert!(Config::load(&bad).is_err(), "{value}");
        }
        let too_short = args
            .clone()
            .with_env("OAUTH_REFRESH_TOKEN_LIFETIME_SECS", 59);
        let flag_wins = Config::load(&too_short).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(flag_wins.tokens.refresh_token_lifetime_secs, 3600);
        let too_short = ConfigArgs::default().with_env("OAUTH_REFRESH_TOKEN_LIFETIME_SECS", 59);
        assert!(Config::load(&too_short).is_err());
        assert!(!c.authorization.allow_plain_pkce);
        assert!(c.authorization.skip_consent_if_granted);
        assert_eq!(
            c.authorization.consent_url.as_deref(),
            Some("https://consent.example/page")
        );
        let bad = args.with_flag("consent-url", "javascript:alert(1)");
        assert!(Config::load(&bad).is_err());
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "bnd = \"127.0.0.1:1\"\n").unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs::file(&path);
        assert!(Config::load(&args).is_err());
        let args = ConfigArgs::default().with_flag("issuer", "https://a.example/?x=1");
        assert!(Config::load(&args).is_err());
        let args = ConfigArgs::default().with_flag("registration-mode", "token");
        assert!(Config::load(&args).is_err());
    }

    #[test]
    fn an_issuer_path_must_be_plain_and_not_one_of_the_servers_own() {
        for bad in [
            "https://a.example/v2",
            "https://a.example/oauth/x",
            "https://a.example/.well-known",
            "https://a.example/a%7Bb",
            "https://a.example/a*b",
            "https://a.example/a//b",
        ] {
            let args = ConfigArgs::default().with_flag("issuer", bad);
            let err = Config::load(&args)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("issuer"), "{bad}: {err}");
        }
        for good in ["https://a.example/tenant-a", "https://a.example/t/eu.1~x"] {
            let args = ConfigArgs::default().with_flag("issuer", good);
            assert!(Config::load(&args).is_ok(), "{good}");
        }
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
        let args = ConfigArgs::file(&path);
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
        let args = ConfigArgs::default().with_flag("registration-allow-client-credentials", true);
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
        let args = ConfigArgs::file(&path).with_flag("access-token-lifetime-secs", 900);
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

        let bad_kek = ConfigArgs::default().with_flag("key-encryption-key", "c2hvcnQ=");
        assert!(Config::load(&bad_kek).is_err());
        let bad_lifetime = ConfigArgs::default().with_env("OAUTH_ACCESS_TOKEN_LIFETIME_SECS", 5);
        assert!(Config::load(&bad_lifetime).is_err());
        std::fs::write(&path, "[tokens]\nalgorithm = \"HS256\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs::file(&path);
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
register_per_ip_daily = { requests = 50, window_secs = 86400 }
client_auth_failures_per_client_ip = { requests = 3, window_secs = 30 }
authorize_per_ip = { requests = 0, window_secs = 0 }
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs::file(&path);
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
        assert_eq!(
            c.rate_limits.register_per_ip_daily,
            RateLimit {
                requests: 50,
                window_secs: 86_400
            }
        );
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
        // The environment wins over the file.
        let from_env = args.clone().with_env("OAUTH_RATE_LIMIT_BACKEND", "memory");
        assert!(
            Config::load(&from_env).is_err(),
            "a Redis URL without the redis backend is refused"
        );
        let from_env = ConfigArgs::default()
            .with_env("OAUTH_RATE_LIMIT_BACKEND", "redis")
            .with_flag("rate-limit-redis-url", "redis://127.0.0.1");
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
        let args = ConfigArgs::file(&path);
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.audit.retention_days, 30);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(Config::default().audit.retention_days, 90);
        let flag = args
            .clone()
            .with_flag("audit-retention-days", 7)
            .with_flag("log-format", "text");
        let c = Config::load(&flag).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.audit.retention_days, c.log_format), (7, LogFormat::Text));
        let zero = args.clone().with_env("OAUTH_AUDIT_RETENTION_DAYS", 0);
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
            "[server]\nheader_read_timeout_ms = 2500\nbody_read_timeout_ms = 4000\nidle_timeout_secs = 30\nmax_connections = 64\nmax_connections_per_ip = 0\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs::file(&path);
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.server,
            ServerConfig {
                header_read_timeout_ms: 2500,
                body_read_timeout_ms: 4000,
                idle_timeout_secs: 30,
                max_connections: 64,
                max_connections_per_ip: 0,
            }
        );
        // Flags and OAUTH_* variables win over the file.
        let flags = args
            .clone()
            .with_flag("header-read-timeout-ms", 500)
            .with_env("OAUTH_IDLE_TIMEOUT_SECS", 5)
            .with_flag("max-connections", 8);
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
            args.clone().with_flag("header-read-timeout-ms", 99),
            args.clone().with_flag("header-read-timeout-ms", 300_001),
            args.clone().with_flag("body-read-timeout-ms", 99),
            args.clone().with_flag("body-read-timeout-ms", 300_001),
            args.clone().with_flag("idle-timeout-secs", 0),
            args.clone().with_flag("idle-timeout-secs", 3601),
            args.clone().with_flag("max-connections", 0),
            args.clone().with_flag("max-connections", 1_000_001),
        ] {
            assert!(Config::load(&bad).is_err(), "{bad:?}");
        }
        std::fs::write(&path, "[server]\nread_timeout_ms = 1\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(Config::load(&args).is_err(), "unknown keys are rejected");
    }

    #[test]
    fn a_secret_in_a_configuration_file_others_may_read_is_said() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[registration]\nmode = \"token\"\ninitial_access_token = \"sixteen-chars-or-more\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for (mode, said) in [(0o644, true), (0o640, true), (0o600, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("{e}"));
            let c = Config::load(&ConfigArgs::file(&path)).unwrap_or_else(|e| panic!("{e}"));
            let notice = c
                .notices
                .iter()
                .any(|n| n.contains("initial_access_token") && n.contains("chmod 0600"));
            assert_eq!(notice, said, "{mode:o}: {:?}", c.notices);
        }
        // No secret in it: nothing to say, whatever its mode.
        std::fs::write(&path, "bind = \"127.0.0.1:9000\"\n").unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(&ConfigArgs::file(&path)).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.notices.is_empty(), "{:?}", c.notices);
    }

    /// A server reached from elsewhere with no issuer set, or with a plain-http issuer on a host
    /// that is not loopback, starts, and says what is wrong at start.
    #[test]
    fn an_issuer_others_cannot_use_is_said_at_start() {
        let none = ConfigArgs::default();
        for ok in [
            none.clone(),
            none.clone()
                .with_env("OAUTH_ISSUER", "http://localhost:8080"),
            none.clone()
                .with_env("OAUTH_BIND", "0.0.0.0:8080")
                .with_env("OAUTH_ISSUER", "https://auth.example.com"),
            none.clone()
                .with_env("OAUTH_BIND", "0.0.0.0:8080")
                .with_env("OAUTH_ISSUER", "http://localhost:8080"),
        ] {
            let c = Config::load(&ok).unwrap_or_else(|e| panic!("{e}"));
            assert!(c.notices.is_empty(), "{:?}", c.notices);
        }
        let c = Config::load(&none.clone().with_env("OAUTH_BIND", "0.0.0.0:8080"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            c.notices
                .iter()
                .any(|n| n.contains("no issuer is set") && n.contains("http://127.0.0.1:8080")),
            "{:?}",
            c.notices
        );
        let c = Config::load(&none.with_env("OAUTH_ISSUER", "http://auth.example.com"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            c.notices.iter().any(|n| n.contains("plain http")),
            "{:?}",
            c.notices
        );
    }

    /// Values so large that a time computed from them would wrap are refused at start (a
    /// session lifetime near `i64::MAX` made every session expire at once).
    #[test]
    fn huge_durations_and_sizes_are_refused() {
        let none = ConfigArgs::default();
        for (name, value) in [
            (
                "OAUTH_AUTHORIZATION__SESSION_LIFETIME_SECS",
                "9223372036854775807",
            ),
            ("OAUTH_AUTHORIZATION__SESSION_LIFETIME_SECS", "34560001"),
            ("OAUTH_KEY_PUBLISH_DELAY_SECS", "9223372036854775807"),
            ("OAUTH_KEY_PUBLISH_DELAY_SECS", "31622401"),
            ("OAUTH_TOKENS__KEY_RELOAD_SECS", "18446744073709551615"),
            ("OAUTH_TOKENS__PURGE_INTERVAL_SECS", "86401"),
            (
                "OAUTH_REGISTRATION__CIMD_CACHE_MAX_SECS",
                "9223372036854775807",
            ),
            ("OAUTH_MAX_BODY_BYTES", "18446744073709551615"),
        ] {
            let err = Config::load(&none.clone().with_env(name, value))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| panic!("{name}={value} was accepted"));
            assert!(
                err.contains("must be between") || err.contains("at most"),
                "{name}: {err}"
            );
        }
        for (name, value) in [
            ("OAUTH_AUTHORIZATION__SESSION_LIFETIME_SECS", "34560000"),
            ("OAUTH_KEY_PUBLISH_DELAY_SECS", "31622400"),
            ("OAUTH_TOKENS__PURGE_INTERVAL_SECS", "86400"),
            ("OAUTH_MAX_BODY_BYTES", "67108864"),
        ] {
            Config::load(&none.clone().with_env(name, value))
                .unwrap_or_else(|e| panic!("{name}={value}: {e}"));
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        assert!(Config::default().proxies.is_empty());
        let none = ConfigArgs::default();
        let c = Config::load(&none).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.proxies.is_empty() && c.notices.is_empty());
        let listed = none
            .clone()
            .with_env("OAUTH_TRUSTED_PROXIES", r#"["10.0.0.0/8", "fd00::1"]"#);
        let c = Config::load(&listed).unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.proxies.is_empty() && !c.proxies.trusts_a_wide_network());
        let flag = none
            .clone()
            .with_flag("trusted-proxies", r#"["192.0.2.7"]"#);
        let c = Config::load(&flag).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.trusted_proxies, ["192.0.2.7"]);
        let err = Config::load(
            &none
                .clone()
                .with_env("OAUTH_TRUSTED_PROXIES", r#"["proxy.local"]"#),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("trusted_proxies") && err.contains("proxy.local"),
            "{err}"
        );
        // Trusting every address starts, and says what it means.
        let all = none.with_env("OAUTH_TRUSTED_PROXIES", r#"["0.0.0.0/0"]"#);
        let c = Config::load(&all).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            c.notices.iter().any(|n| n.contains("wider than a /8")),
            "{:?}",
            c.notices
        );
    }

    #[test]
    fn tracing_settings_are_checked() {
        let d = Config::default().tracing;
        assert_eq!(
            (d.otlp_endpoint, d.service_name.as_str(), d.sample_ratio),
            (None, "oauth-server", 1.0)
        );
        let err = |args: ConfigArgs| {
            format!(
                "{:#}",
                Config::load(&args)
                    .err()
                    .unwrap_or_else(|| panic!("accepted"))
            )
        };
        for (var, value, says) in [
            ("OAUTH_TRACING__SAMPLE_RATIO", "1.5", "tracing.sample_ratio"),
            (
                "OAUTH_TRACING__SAMPLE_RATIO",
                "-0.1",
                "tracing.sample_ratio",
            ),
            ("OAUTH_TRACING__SERVICE_NAME", " ", "tracing.service_name"),
            ("OAUTH_OTLP_ENDPOINT", "collector:4318", "http or https URL"),
            (
                "OAUTH_OTLP_ENDPOINT",
                "ftp://collector",
                "http or https URL",
            ),
            ("OAUTH_OTLP_ENDPOINT", "http://collector/?k=v", "no query"),
            (
                "OAUTH_OTLP_ENDPOINT",
                "https://user:pw@collector",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ),
        ] {
            let e = err(ConfigArgs::default().with_env(var, value));
            assert!(e.contains(says), "{var}={value}: {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
        let set = ConfigArgs::default()
            .with_env("OAUTH_OTLP_ENDPOINT", "http://127.0.0.1:4318")
            .with_env("OAUTH_TRACING__SAMPLE_RATIO", "0.25");
        if cfg!(feature = "otlp") {
            let c = Config::load(&set).unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(
                c.tracing.otlp_endpoint.as_deref(),
                Some("http://127.0.0.1:4318")
            );
            assert_eq!(c.tracing.sample_ratio, 0.25);
        } else {
            assert!(err(set).contains("--features otlp"));
        }
    }

    #[test]
    fn metrics_section_flag_and_both_variables() {
        assert_eq!(Config::default().metrics.bind, None, "off by default");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[metrics]\nbind = \"127.0.0.1:9464\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let bind = |args: &ConfigArgs| {
            Config::load(args)
                .unwrap_or_else(|e| panic!("{e:#}"))
                .metrics
                .bind
                .map(|a| a.to_string())
        };
        let file = ConfigArgs::file(&path);
        assert_eq!(bind(&file).as_deref(), Some("127.0.0.1:9464"));
        let plain = file
            .clone()
            .with_env("OAUTH_METRICS_BIND", "127.0.0.1:9001");
        assert_eq!(bind(&plain).as_deref(), Some("127.0.0.1:9001"));
        let sectioned = file
            .clone()
            .with_env("OAUTH_METRICS__BIND", "127.0.0.1:9002");
        assert_eq!(bind(&sectioned).as_deref(), Some("127.0.0.1:9002"));
        let flag = sectioned
            .clone()
            .with_flag("metrics-bind", "127.0.0.1:9003");
        assert_eq!(bind(&flag).as_deref(), Some("127.0.0.1:9003"));
        let both = sectioned.with_env("OAUTH_METRICS_BIND", "127.0.0.1:9001");
        let e = format!(
            "{:#}",
            Config::load(&both).err().unwrap_or_else(|| panic!("both"))
        );
        assert!(
            e.contains("OAUTH_METRICS_BIND and OAUTH_METRICS__BIND"),
            "{e}"
        );
        // Never on the public port.
        let same = ConfigArgs::default()
            .with_env("OAUTH_BIND", "0.0.0.0:8080")
            .with_env("OAUTH_METRICS_BIND", "127.0.0.1:8080");
        let e = format!(
            "{:#}",
            Config::load(&same).err().unwrap_or_else(|| panic!("same"))
        );
        assert!(e.contains("metrics.bind"), "{e}");
        let bad = ConfigArgs::default().with_env("OAUTH_METRICS_BIND", "localhost");
        let e = format!(
            "{:#}",
            Config::load(&bad).err().unwrap_or_else(|| panic!("bad"))
        );
        assert!(e.contains("metrics.bind"), "{e}");
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
        let args = ConfigArgs::file(&path);
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.authorization.max_concurrent_password_checks, 2);
        assert_eq!(c.authorization.password_check_wait_ms, 500);
        let flag = args.clone().with_flag("max-concurrent-password-checks", 8);
        let c = Config::load(&flag).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.authorization.max_concurrent_password_checks, 8,
            "the flag wins"
        );
        for bad in [0, 1025] {
            let bad = args
                .clone()
                .with_flag("max-concurrent-password-checks", bad);
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
        let token_file = write("token", "s3cret token of 25 chars\n", 0o600);
        let args = ConfigArgs::default()
            .with_flag("key-encryption-key-file", kek_file.display())
            .with_env("OAUTH_REGISTRATION_TOKEN_FILE", token_file.display())
            .with_flag("registration-mode", "token");
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e}"));
        let from_value = ConfigArgs::default().with_env("OAUTH_KEY_ENCRYPTION_KEY", KEK);
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
            Some(secret::hash_secret("s3cret token of 25 chars"))
        );
        // A token file others may read is refused like a key file; so is a short token.
        let open_token = write("token-open", "s3cret token of 25 chars\n", 0o644);
        let e = format!(
            "{:#}",
            Config::load(
                &ConfigArgs::default()
                    .with_env("OAUTH_REGISTRATION_TOKEN_FILE", open_token.display())
            )
            .err()
            .unwrap_or_else(|| panic!("a 0644 token file was accepted"))
        );
        assert!(e.contains("mode 0644") && e.contains("0600 or 0400"), "{e}");
        for short in [
            "change-me",
            "x",
            "fifteen-chars15",
            "                ",
            " abc\n\n\n\n\n\n\n\n\n\n\n\n\n",
        ] {
            let e = format!(
                "{:#}",
                Config::load(&ConfigArgs::default().with_env("OAUTH_REGISTRATION_TOKEN", short))
                    .err()
                    .unwrap_or_else(|| panic!("{short:?} was accepted"))
            );
            assert!(e.contains("at least 16 characters"), "{e}");
        }
        // 0400 is fine too.
        let read_only = write("kek-ro", KEK, 0o400);
        let ro = ConfigArgs::default().with_flag("key-encryption-key-file", read_only.display());
        assert!(Config::load(&ro).is_ok());

        // A key file others may read is refused, naming the file and the modes expected.
        for mode in [0o644, 0o640, 0o604, 0o660] {
            let open = write("kek-open", KEK, mode);
            let bad =
                ConfigArgs::default().with_env("OAUTH_KEY_ENCRYPTION_KEY_FILE", open.display());
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
        let both = ConfigArgs::default()
            .with_env("OAUTH_KEY_ENCRYPTION_KEY", KEK)
            .with_flag("key-encryption-key-file", kek_file.display());
        let e = format!(
            "{:#}",
            Config::load(&both).err().unwrap_or_else(|| panic!("both"))
        );
        assert!(e.contains("both as a value"), "{e}");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[registration]\ninitial_access_token = \"x\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let both =
            ConfigArgs::file(&path).with_flag("registration-token-file", token_file.display());
        assert!(Config::load(&both).is_err());
        // From the file's [tokens] and [registration] too.
        std::fs::write(
            &path,
            format!(
                "[tokens]\nkey_encryption_key_file = {:?}\n[registration]\nmode = \"token\"\ninitial_access_token_file = {:?}\n",
                kek_file.display().to_string(),
                token_file.display().to_string()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(&ConfigArgs::file(&path)).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.tokens.key_encryption_key.is_some());
        assert!(c.registration.initial_access_token_hash.is_some());
        // A missing file names itself.
        let missing = ConfigArgs::default()
            .with_flag("registration-token-file", dir.path().join("nope").display());
        let e = format!(
            "{:#}",
            Config::load(&missing)
                .err()
                .unwrap_or_else(|| panic!("missing"))
        );
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn every_setting_is_an_environment_variable_named_after_its_key() {
        let env = [
            ("OAUTH_SERVER__MAX_CONNECTIONS", "8"),
            ("OAUTH_TOKENS__KEY_RELOAD_SECS", "5"),
            ("OAUTH_TOKENS__PURGE_INTERVAL_SECS", " 7 "),
            ("OAUTH_AUTHORIZATION__SESSION_LIFETIME_SECS", "120"),
            ("OAUTH_AUTHORIZATION__LOGIN_MAX_FAILURES_PER_IP", "3"),
            ("OAUTH_AUTHORIZATION__PASSWORD_CHECK_WAIT_MS", "250"),
            ("OAUTH_AUTHORIZATION__ALLOW_PLAIN_PKCE", "true"),
            (
                "OAUTH_RATE_LIMITS__LOGIN_PER_IP",
                "{ requests = 5, window_secs = 60 }",
            ),
            (
                "OAUTH_RATE_LIMITS__REGISTER_PER_IP",
                "{requests=0,window_secs=0}",
            ),
            (
                "OAUTH_RESOURCES",
                "[https://api.example, \"https://b.example\"]",
            ),
            (
                "OAUTH_SCOPES",
                r#"[{ name = "admin", description = "All" }, { name = "calls", description = "Calls, and more" }]"#,
            ),
            ("OAUTH_REGISTRATION__DEFAULT_SCOPES", "[calls]"),
            // Text settings stay text, even when they look like a number.
            ("OAUTH_REGISTRATION__MODE", "token"),
            (
                "OAUTH_REGISTRATION__INITIAL_ACCESS_TOKEN",
                "1234567890123456",
            ),
        ];
        let args = env
            .iter()
            .fold(ConfigArgs::default(), |a, (k, v)| a.with_env(k, v));
        let c = Config::load(&args).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(c.server.max_connections, 8);
        assert_eq!(
            (c.tokens.key_reload_secs, c.tokens.purge_interval_secs),
            (5, 7)
        );
        let a = &c.authorization;
        assert_eq!(a.session_lifetime_secs, 120);
        assert_eq!(a.login_max_failures_per_ip, 3);
        assert_eq!(a.password_check_wait_ms, 250);
        assert!(a.allow_plain_pkce);
        assert_eq!(
            c.rate_limits.login_per_ip,
            RateLimit {
                requests: 5,
                window_secs: 60
            }
        );
        assert!(c.rate_limits.register_per_ip.is_off());
        assert_eq!(c.resources, ["https://api.example", "https://b.example"]);
        assert_eq!(c.scopes.names(), ["admin", "calls"]);
        assert_eq!(c.registration.default_scopes, ["calls"]);
        assert_eq!(
            c.registration.initial_access_token_hash,
            Some(secret::hash_secret("1234567890123456"))
        );
        assert!(c.notices.is_empty(), "{:?}", c.notices);

        // A setting with a flag answers to both names; both at once is an error.
        let by_key =
            ConfigArgs::default().with_env("OAUTH_TOKENS__ACCESS_TOKEN_LIFETIME_SECS", 600);
        let c = Config::load(&by_key).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(c.tokens.access_token_lifetime_secs, 600);
        let both = by_key.with_env("OAUTH_ACCESS_TOKEN_LIFETIME_SECS", 600);
        let e = format!(
            "{:#}",
            Config::load(&both).err().unwrap_or_else(|| panic!("both"))
        );
        assert!(
            e.contains(
                "OAUTH_ACCESS_TOKEN_LIFETIME_SECS and OAUTH_TOKENS__ACCESS_TOKEN_LIFETIME_SECS"
            ),
            "{e}"
        );

        // A value of the wrong type names the setting and the variable.
        let bad =
            ConfigArgs::default().with_env("OAUTH_RATE_LIMITS__LOGIN_PER_IP", "{ requests = 5 }");
        let e = format!(
            "{:#}",
            Config::load(&bad).err().unwrap_or_else(|| panic!("bad"))
        );
        assert!(
            e.contains("window_secs") && e.contains("OAUTH_RATE_LIMITS__LOGIN_PER_IP"),
            "{e}"
        );
        let bad = ConfigArgs::default().with_env("OAUTH_MAX_CONNECTIONS", "many");
        let e = format!(
            "{:#}",
            Config::load(&bad).err().unwrap_or_else(|| panic!("bad"))
        );
        assert!(
            e.contains("server.max_connections")
                && e.contains("environment variable OAUTH_MAX_CONNECTIONS"),
            "{e}"
        );

        // Other OAUTH_ variables are not settings; one in the settings' form is said to be
        // ignored, and so is one that is a setting's name mistyped, naming the setting.
        let other = ConfigArgs::default()
            .with_env("OAUTH_LOG", "debug")
            .with_env("OAUTH_TEST_POSTGRES_URL", "postgres://h/db")
            .with_env("OAUTH_TOKENS__LIFETIME", "1")
            .with_env("OAUTH_REGISTRATON_MODE", "token");
        let c = Config::load(&other).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(c.notices.len(), 2, "{:?}", c.notices);
        assert!(
            c.notices[0].contains("OAUTH_TOKENS__LIFETIME"),
            "{:?}",
            c.notices
        );
        assert!(
            c.notices[1].contains("OAUTH_REGISTRATON_MODE")
                && c.notices[1].contains("did you mean OAUTH_REGISTRATION_MODE?"),
            "{:?}",
            c.notices
        );
        assert_eq!(c.registration.mode, RegistrationMode::Open);
        assert_eq!(edit_distance("OAUTH_BIND", "OAUTH_BIND"), 0);
        assert_eq!(edit_distance("OAUTH_BIND", "OAUTH_BNID"), 2);
        assert_eq!(edit_distance("", "abc"), 3);

        // A registration token with open registration is refused: it would not be asked for.
        let e = format!(
            "{:#}",
            Config::load(
                &ConfigArgs::default()
                    .with_env("OAUTH_REGISTRATION_TOKEN", "abcdefabcdefabcdefabcdef")
            )
            .err()
            .unwrap_or_else(|| panic!("a token with open registration was accepted"))
        );
        assert!(
            e.contains("registration mode is `open`")
                && e.contains("OAUTH_REGISTRATION_MODE=token"),
            "{e}"
        );
    }

    #[test]
    fn precedence_default_file_environment_flag() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[tokens]\naccess_token_lifetime_secs = 600\n[rate_limits]\nlogin_per_ip = { requests = 1, window_secs = 2 }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let lifetime = |args: &ConfigArgs| {
            Config::load(args)
                .unwrap_or_else(|e| panic!("{e:#}"))
                .tokens
                .access_token_lifetime_secs
        };
        assert_eq!(lifetime(&ConfigArgs::default()), 3600);
        let file = ConfigArgs::file(&path);
        assert_eq!(lifetime(&file), 600);
        let env = file.with_env("OAUTH_ACCESS_TOKEN_LIFETIME_SECS", 700);
        assert_eq!(lifetime(&env), 700);
        let flag = env.with_flag("access-token-lifetime-secs", 900);
        assert_eq!(lifetime(&flag), 900);
        // A table from the environment is merged over the file's, key by key.
        let env =
            ConfigArgs::file(&path).with_env("OAUTH_RATE_LIMITS__LOGIN_PER_IP", "{ requests = 3 }");
        let c = Config::load(&env).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            c.rate_limits.login_per_ip,
            RateLimit {
                requests: 3,
                window_secs: 2
            }
        );
    }

    #[test]
    fn every_setting_of_the_table_is_read_and_unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        // An array of booleans is no setting's value: each one must refuse it, naming itself.
        for s in SETTINGS {
            std::fs::write(&path, format!("{} = [true]\n", s.key))
                .unwrap_or_else(|e| panic!("{e}"));
            let e = format!(
                "{:#}",
                Config::load(&ConfigArgs::file(&path))
                    .err()
                    .unwrap_or_else(|| panic!("{} is not read", s.key))
            );
            assert!(e.contains(s.key), "{}: {e}", s.key);
        }
        for (text, key) in [
            ("[server]\nread_timeout_ms = 1\n", "server.read_timeout_ms"),
            ("[tokens.lifetimes]\naccess = 1\n", "tokens.lifetimes"),
            (
                "[rate_limits]\nper_moon = { requests = 5, window_secs = 1 }\n",
                "rate_limits.per_moon",
            ),
            ("bindd = 1\n", "bindd"),
        ] {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            let e = format!(
                "{:#}",
                Config::load(&ConfigArgs::file(&path))
                    .err()
                    .unwrap_or_else(|| panic!("{text}"))
            );
            assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
            assert!(e.contains(&path.display().to_string()), "{e}");
        }
    }

    #[test]
    fn the_flags_are_the_tables() {
        use clap::CommandFactory;
        let cmd = crate::cli::Cli::command();
        cmd.clone().debug_assert();
        for s in SETTINGS {
            if let Some(flag) = s.flag {
                let arg = cmd
                    .get_arguments()
                    .find(|a| a.get_long() == Some(flag))
                    .unwrap_or_else(|| panic!("--{flag}"));
                assert!(arg.is_global_set(), "--{flag}");
                assert_eq!(arg.is_hide_set(), s.key == "registration.organization");
            }
        }
        // Flags go before or after the subcommand.
        let m = cmd
            .try_get_matches_from([
                "oauth-server",
                "--config",
                "c.toml",
                "--access-token-lifetime-secs",
                "900",
                "migrate",
                "--bind",
                "127.0.0.1:1",
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        let args = ConfigArgs::from_matches(&m, vec![("OAUTH_BIND".into(), "127.0.0.1:2".into())]);
        assert_eq!(args.config, Some(PathBuf::from("c.toml")));
        assert_eq!(
            args.flags,
            [
                ("bind".to_owned(), "127.0.0.1:1".to_owned()),
                ("access-token-lifetime-secs".to_owned(), "900".to_owned())
            ]
        );
        assert!(
            !format!("{args:?}").contains("127.0.0.1:2"),
            "values are not printed"
        );
    }

    /// The README's configuration table has one row per setting, in the table's order, with its
    /// flag, environment variable and TOML key; a default written as code is the default.
    #[test]
    fn the_readme_table_is_the_settings_table() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## Configuration\n")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap_or_else(|| panic!("a Configuration section"));
        let rows: Vec<Vec<&str>> = section
            .lines()
            .skip_while(|l| !l.starts_with("| flag |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.split('|').map(str::trim).collect())
            .collect();
        let code = |cell: &str| cell.split('`').nth(1).map(str::to_owned);
        let default = format!("{:?}", Config::default());
        assert_eq!(rows.len(), SETTINGS.len());
        for (row, s) in rows.iter().zip(SETTINGS) {
            let [_, flag, env, key, default_cell, ..] = row[..] else {
                panic!("{row:?}")
            };
            assert_eq!(code(key).as_deref(), Some(s.key), "{row:?}");
            let expected_flag = s.flag.map(|f| format!("`--{f}`")).unwrap_or_default();
            assert_eq!(flag, expected_flag, "{row:?}");
            assert_eq!(env, format!("`{}`", s.env_names()[0]), "{row:?}");
            if default_cell.starts_with('`') {
                let value = code(default_cell).unwrap_or_default();
                let args = ConfigArgs::default().with_env(&s.env_names()[0], &value);
                let c = Config::load(&args).unwrap_or_else(|e| panic!("{}: {e:#}", s.key));
                assert_eq!(format!("{c:?}"), default, "{} = {value}", s.key);
            }
        }
    }

    #[test]
    fn the_document_settings_read_their_environment_variables() {
        let args = ConfigArgs::default()
            .with_env("OAUTH_CIMD_ALLOW_HTTP_LOOPBACK", "true")
            .with_env(
                "OAUTH_REGISTRATION__CIMD_ALLOWED_HOSTS",
                "[\"Clients.Example.com\"]",
            );
        let c = Config::load(&args).unwrap();
        assert!(c.registration.cimd_allow_http_loopback);
        assert!(c.registration.cimd_enabled);
        assert_eq!(c.registration.cimd_allowed_hosts, ["clients.example.com"]);
        let args = ConfigArgs::default().with_env(
            "OAUTH_REGISTRATION__CIMD_DENIED",
            "[\"Evil.Example.\", \"https://pages.example.net/a/c.json\"]",
        );
        let c = Config::load(&args).unwrap();
        assert_eq!(
            c.registration.cimd_denied,
            ["evil.example", "https://pages.example.net/a/c.json"]
        );
        // A URL that no client id can be (compared as strings, it would match nothing) and a
        // host with a path are refused at start, not ignored.
        for bad in [
            "HTTPS://pages.example.net/a/c.json",
            "https://pages.example.net:443/a/c.json",
            "https://pages.example.net",
            "pages.example.net/a",
            "*.pages.example.net",
            "",
        ] {
            let args = ConfigArgs::default()
                .with_env("OAUTH_REGISTRATION__CIMD_DENIED", format!("[{bad:?}]"));
            let e = Config::load(&args).unwrap_err();
            assert!(
                format!("{e:#}").contains("registration.cimd_denied"),
                "{bad}: {e:#}"
            );
        }
        let c = Config::load(&ConfigArgs::default()).unwrap();
        assert!(!c.registration.cimd_allow_http_loopback);
        let args = ConfigArgs::default()
            .with_env("OAUTH_REGISTRATION__CIMD_CACHE_MIN_SECS", "600")
            .with_env("OAUTH_REGISTRATION__CIMD_CACHE_MAX_SECS", "60");
        assert!(Config::load(&args).is_err());
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        // Not a URL (an unencoded `#` or `/` in the password): nothing of it is shown.
        for bad in [
            "postgres://postgres:Pg#SECRET/pw1@127.0.0.1:5432/postgres",
            "postgres://postgres:PgSECRETpw123@127.0.0.1:notaport/x",
            // A password that starts with digits reads as a port, with the rest after it.
            "postgres://postgres:2024#WinterSECRET@127.0.0.1:5432/x",
            "postgres://postgres:1234/SECRETpw@127.0.0.1:5432/x",
            "postgres://postgres:80?SECRET@127.0.0.1:5432/x",
            // An `@` in the password before the `/` or `?`: a user, a password's first part
            // and a host are read, and the rest follows them.
            "postgres://postgres:p@ss/wSECRET@127.0.0.1:5432/x",
            "postgres://postgres:p@ss?wSECRET@127.0.0.1:5432/x",
            "postgres://u@srv:1234/SECRET@127.0.0.1:5432/x",
        ] {
            let shown = redact_url(bad);
            assert_eq!(shown, "postgres://*** (not a valid URL, so not shown)");
        }
        assert_eq!(redact_url("not a url"), "not a url");
        for bad in [
            "host=127.0.0.1 user=postgres password=KeyValSECRET1 dbname=x",
            "postgresql:/postgres:SECRET3/127.0.0.1",
        ] {
            let shown = redact_url(bad);
            assert!(!shown.contains("SECRET"), "{shown}");
        }
        // SQLite paths hold no password and are shown as they are.
        for path in ["sqlite://data/oauth.db", "sqlite:///var/lib/oauth/oauth.db"] {
            assert_eq!(redact_url(path), path);
        }
    }

    #[test]
    fn an_error_about_a_database_shows_all_but_its_url_secrets() {
        let url = "postgres://u:p%40ssSECRET@h/db?sslpassword=KeySECRET&application_name=x";
        let text = "cannot reach u:p%40ssSECRET@h, p@ssSECRET, KeySECRET; application x";
        assert_eq!(
            without_url_secrets(text, url),
            "cannot reach u:***@h, ***, ***; application x"
        );
        // A socket URL (an empty authority): only its secret parameter is masked.
        let url = "postgres:///db?host=/var/run/postgresql&user=postgres&password=SockSECRET";
        assert_eq!(
            without_url_secrets("database \"db\" does not exist (SockSECRET)", url),
            "database \"db\" does not exist (***)"
        );
        assert_eq!(
            redact_url(url),
            "postgres:///db?host=%2Fvar%2Frun%2Fpostgresql&user=postgres&password=***"
        );
        // An unencoded `&` in the password: what follows it is masked, name and value.
        let url = "postgres:///db?user=postgres&password=ab&AmpTAIL&sslmode=disable";
        assert_eq!(
            redact_url(url),
            "postgres:///db?user=postgres&password=***&***=***&sslmode=disable"
        );
        assert_eq!(
            without_url_secrets("unknown option AmpTAIL", url),
            "unknown option ***"
        );
        // A SQLite path holds no secret: a message about it is shown whole, colons and all.
        let text = "/data/x.db is another application's database (schema version 7, 1 tables)";
        assert_eq!(without_url_secrets(text, "sqlite:///data/x.db"), text);
        // A URL that cannot be read as one: nothing of the text is shown that could hold it.
        let bad = "postgres://postgres:Pg#SECRET/pw1@127.0.0.1:5432/postgres";
        let shown = without_url_secrets(&format!("failed for {bad}"), bad);
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn a_toml_error_names_the_place_but_not_the_line() {
        for text in [
            "bind = \"127.0.0.1:8080\"\n[registration]\ninitial_access_token = \"TomlSECRETtoken-abc\n",
            "[registration]\ninitial_access_token = \"TomlSECRETtoken-abc\"\ninitial_access_token = \"TomlSECRETtoken-abc\"\n",
            "[tokens]\nkey_encryption_key = 1234TomlSECRET\n",
        ] {
            let e = toml::from_str::<Dict>(text).unwrap_err();
            assert!(e.to_string().contains("TomlSECRET"), "the parser quotes the line");
            let shown = toml_error(text, &e);
            assert!(!shown.contains("TomlSECRET"), "{shown}");
            assert!(shown.starts_with("TOML parse error at line "), "{shown}");
        }
        let text = "a = 1\nb = \"x\n";
        let e = toml::from_str::<Dict>(text).unwrap_err();
        assert!(
            toml_error(text, &e).contains("line 2"),
            "{}",
            toml_error(text, &e)
        );
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=disable&password=QSEKRIT"),
            "postgres://u@h/db?sslmode=disable&password=***"
        );
        assert_eq!(
            redact_url("postgres://u:pw@h/db?PassWord=a&sslpassword=b&application_name=x"),
            "postgres://u:***@h/db?PassWord=***&sslpassword=***&application_name=x"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?passwrd=a&pass=b&api_token=c&client_secret=d"),
            "postgres://u@h/db?passwrd=***&pass=***&api_token=***&client_secret=***"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require"),
            "postgres://u@h/db?sslmode=require"
        );
        // Parameters the driver ignores are named, never their values.
        let notice = unread_database_parameters(
            "postgres://u@h/db?sslmode=disable&sslpassword=SECRET3&passwrd=SECRET4&options[x]=1",
        )
        .unwrap();
        assert!(
            notice.contains("sslpassword, passwrd") && !notice.contains("SECRET"),
            "{notice}"
        );
        assert_eq!(
            unread_database_parameters("postgres://u@h/db?sslmode=disable&application_name=a"),
            None
        );
        assert_eq!(unread_database_parameters("sqlite://x.db?mode=rwc"), None);
        // A password holding an unencoded `&`: what follows it reads as a parameter's name,
        // and is counted, not shown.
        let notice = unread_database_parameters(
            "postgres:///db?host=/run/postgresql&password=ab&AmpTAIL&passwrd=x",
        )
        .unwrap();
        assert!(
            notice.ends_with(
                "ignored: passwrd; 1 not named (the URL holds a password parameter, and an \
                 unencoded & in its value would read as one)"
            ) && !notice.contains("AmpTAIL"),
            "{notice}"
        );
        // Nor is the host of a misread URL named, which may be part of its password.
        assert_eq!(
            host_shown(
                "postgres://postgres:5432@HostSECRET/x@127.0.0.1/db",
                "HostSECRET"
            ),
            "a host not shown (the URL does not read as one)"
        );
        assert_eq!(
            host_shown("postgres://u@db.internal/x", "db.internal"),
            "db.internal"
        );
        // A URL the parser misread is not read for parameters at all.
        assert_eq!(
            unread_database_parameters("postgres://postgres:80?ParamSECRET@127.0.0.1:5432/x"),
            None
        );
    }

    #[test]
    fn a_database_across_a_network_without_a_checked_certificate_is_said_at_start() {
        let warned = |url: &str| {
            let args = ConfigArgs::default().with_env("OAUTH_DATABASE_URL", url);
            let c = Config::load(&args).unwrap_or_else(|e| panic!("{url}: {e:#}"));
            c.notices
                .iter()
                .find(|n| n.starts_with("database_url reaches PostgreSQL"))
                .cloned()
        };
        assert!(warned("postgres://oauth:pw@db.internal/oauth?sslmode=require").is_some());
        let w = warned("postgres://oauth:pw@db.internal/oauth?sslmode=prefer")
            .unwrap_or_else(|| panic!("no notice"));
        assert!(
            w.contains("at db.internal") && w.contains("sslmode=prefer"),
            "{w}"
        );
        assert!(w.contains("add sslmode=verify-full"), "{w}");
        assert!(!w.contains("pw"), "{w}");
        for quiet in [
            "postgres://oauth:pw@db.internal/oauth?sslmode=verify-full",
            "postgres://oauth@localhost/oauth?host=/var/run/postgresql",
            "postgres://oauth@127.0.0.1/oauth?sslmode=disable",
            "postgres://oauth@postgres:5432/oauth?sslmode=disable",
            "sqlite://data/oauth.db",
        ] {
            assert_eq!(warned(quiet), None, "{quiet}");
        }
    }
}
