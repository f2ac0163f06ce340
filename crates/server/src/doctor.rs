//! `oauth-server doctor`: checks a configuration, and the server running with it, the way its
//! clients read it. Each check is one line of a checklist, `ok` or `FAIL` with what to change.
//!
//! It reads the configuration as `serve` would, opens the database without migrating it, asks
//! Redis when the rate limits live there, and fetches from the running server (at its issuer,
//! or `--url` when the server is reached at another address from where the check runs) the
//! documents that OAuth and MCP clients read: `/healthz`, both `/.well-known/` metadata
//! documents and the JWK set.

use std::time::Duration;

use oauth_store::{Store, StoredSigningKey};
use serde::Serialize;
use serde_json::Value;

use crate::config::{host_shown, is_loopback_host, redact_url, Config, RateLimitBackend};
use crate::routes::discovery::{AS_METADATA_PATH, RESOURCE_METADATA_PATH};

/// How long one request to the server, the database or Redis may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest difference between this clock and the server's `Date` before the check fails.
/// Tokens are checked with a minute of leeway; a clock this far off is already suspect.
pub const MAX_CLOCK_SKEW_SECS: i64 = 10;

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    /// What to change, when the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// `ok   name: detail` or `FAIL name: detail; fix: ...`.
    pub fn line(&self) -> String {
        match &self.fix {
            Some(fix) if !self.ok => format!("FAIL {}: {}; fix: {}", self.check, self.detail, fix),
            _ => format!("ok   {}: {}", self.check, self.detail),
        }
    }
}

/// The issuer clients will see: the configured one, or the one `serve` derives from `bind`.
pub fn expected_issuer(config: &Config) -> String {
    config.issuer_for(config.bind)
}

/// Runs every check. `url`: where to reach the running server (default: the issuer).
pub async fn run(config: &Config, url: Option<&str>, now: i64) -> Vec<Check> {
    let issuer = expected_issuer(config);
    let mut checks = vec![issuer_check(config, &issuer), configuration_check(config)];
    checks.extend(database_route_check(&config.database_url));
    let stored = database_check(config, now, &mut checks).await;
    checks.push(kek_check(config, stored.as_deref()));
    // The key that signs at `now`.
    let kid = stored.as_deref().and_then(|keys| {
        keys.iter()
            .filter(|k| k.active_from <= now)
            .max_by_key(|k| k.active_from)
            .map(|k| k.kid.clone())
    });
    checks.push(redis_check(config).await);
    let base = url.unwrap_or(&issuer).trim_end_matches('/').to_owned();
    server_checks(&issuer, &base, kid.as_deref(), now, &mut checks).await;
    checks
}

fn issuer_check(config: &Config, issuer: &str) -> Check {
    const NAME: &str = "issuer";
    let fix = "set OAUTH_ISSUER (issuer) to the https URL that clients use to reach the server";
    if config.issuer.is_none() && !config.bind.ip().is_loopback() {
        return Check::fail(
            NAME,
            format!("not set, so derived as {issuer}, while the server listens on {}, beyond this machine: clients elsewhere would be sent to their own machine", config.bind),
            fix,
        );
    }
    let Ok(url) = url::Url::parse(issuer) else {
        return Check::fail(NAME, format!("{issuer} is not a URL"), fix);
    };
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => Check::ok(NAME, issuer),
        ("http", Some(host)) if is_loopback_host(&host) => {
            Check::ok(NAME, format!("{issuer} (plain http on a loopback host: local use only)"))
        }
        _ => Check::fail(
            NAME,
            format!("{issuer} is plain http on a host that is not loopback: clients refuse it, and tokens and secrets would cross the network unencrypted"),
            fix,
        ),
    }
}

fn is_postgres(config: &Config) -> bool {
    config.database_url.starts_with("postgres:") || config.database_url.starts_with("postgresql:")
}

/// The key-encryption key is there, kept from others, and opens the database's signing keys
/// (`stored`, when the database could be read), as it must for the server to start.
fn kek_check(config: &Config, stored: Option<&[StoredSigningKey]>) -> Check {
    const NAME: &str = "key-encryption key";
    let fix = "give the server the key its signing keys were sealed with: the file beside the \
               SQLite database as backed up with it, or the OAUTH_KEY_ENCRYPTION_KEY of the other instances";
    if let Some(stored) = stored.filter(|s| !s.is_empty()) {
        match crate::signing::configured_or_file_key(config) {
            Ok(Some(kek)) if !crate::signing::opens_signing_keys(&kek, stored) => {
                return Check::fail(
                    NAME,
                    "does not open the database's signing keys: the server refuses to start",
                    fix,
                );
            }
            Ok(None) if !is_postgres(config) => {
                return Check::fail(
                    NAME,
                    "the key file beside the database is missing, though the database has signing keys sealed with it: the server refuses to start",
                    fix,
                );
            }
            _ => {}
        }
    }
    match (is_postgres(config), config.tokens.key_encryption_key.is_some()) {
        (_, true) => Check::ok(NAME, "set"),
        (false, false) => {
            let file = crate::signing::sqlite_key_file(&config.database_url)
                .filter(|f| f.exists())
                .map(|f| crate::config::check_owner_only(&f, "the key-encryption key"));
            if let Some(Err(e)) = file {
                return Check::fail(
                    NAME,
                    format!("{e}"),
                    "chmod 0600 the key file beside the database",
                );
            }
            Check::ok(
                NAME,
                "not set: SQLite keeps one in a file beside the database (back it up with the database)",
            )
        }
        (true, false) => Check::fail(
            NAME,
            "not set, and the database is PostgreSQL: the server refuses to start",
            "set OAUTH_KEY_ENCRYPTION_KEY (base64 of 32 bytes) or OAUTH_KEY_ENCRYPTION_KEY_FILE, the same on every instance",
        ),
    }
}

/// The warnings `serve` prints at start (a mistyped setting name, a database URL parameter the
/// driver ignores, ...), except those another check reports.
fn configuration_check(config: &Config) -> Check {
    let elsewhere: Vec<String> = config
        .exposure_notice()
        .into_iter()
        .chain(crate::config::database_route_warning(&config.database_url))
        .collect();
    let warnings: Vec<&str> = config
        .notices
        .iter()
        .filter(|n| !elsewhere.contains(n))
        .map(String::as_str)
        .collect();
    if warnings.is_empty() {
        Check::ok("configuration", "no warnings")
    } else {
        Check::fail(
            "configuration",
            warnings.join("; "),
            "change what these warnings name (serve prints them at start too)",
        )
    }
}

/// How a PostgreSQL URL reaches its database (nothing for SQLite, a file on this machine).
fn database_route_check(url: &str) -> Option<Check> {
    use oauth_store::PostgresRoute;
    const NAME: &str = "database connection";
    if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
        return None;
    }
    // An unparsable URL is the database check's to report.
    let route = PostgresRoute::of(url).ok()?;
    let place = match &route {
        PostgresRoute::Socket(dir) => host_shown(url, dir),
        PostgresRoute::Tcp { host, .. } => host_shown(url, host),
    };
    Some(match &route {
        PostgresRoute::Socket(_) => Check::ok(
            NAME,
            format!("a Unix socket in {place}: nothing crosses a network"),
        ),
        PostgresRoute::Tcp {
            loopback: true,
            ssl_mode,
            ..
        } => Check::ok(
            NAME,
            format!("TCP to {place} on this machine (sslmode={ssl_mode}); a Unix socket (host=/var/run/postgresql in the URL) spares each statement TCP and TLS"),
        ),
        PostgresRoute::Tcp { ssl_mode, .. } if *ssl_mode == "disable" => Check::ok(
            NAME,
            format!("unencrypted TCP to {place} (sslmode=disable): for a network you trust only, such as a container network on one host"),
        ),
        PostgresRoute::Tcp { ssl_mode, .. } if !route.exposed() => Check::ok(
            NAME,
            format!("TLS to {place}, the database's certificate checked (sslmode={ssl_mode})"),
        ),
        PostgresRoute::Tcp { ssl_mode, .. } => Check::fail(
            NAME,
            format!("PostgreSQL at {place} over the network with sslmode={ssl_mode}, which does not check the database's certificate: whoever is on the path can read and change what the server stores"),
            "add sslmode=verify-full to OAUTH_DATABASE_URL (and sslrootcert=<the CA's certificate file> unless the database's certificate chains to a public root), or sslmode=disable where the network is trusted",
        ),
    })
}

/// The database answers; returns its signing keys, if they could be read.
async fn database_check(
    config: &Config,
    now: i64,
    checks: &mut Vec<Check>,
) -> Option<Vec<StoredSigningKey>> {
    const NAME: &str = "database";
    let shown = redact_url(&config.database_url);
    let fix = "check OAUTH_DATABASE_URL (database_url) and that the database is running and reachable from here";
    // Opening a missing SQLite file would make an empty one: a check makes nothing.
    if let Some(file) = crate::signing::sqlite_database_file(&config.database_url) {
        if !file.exists() {
            checks.push(Check::fail(
                NAME,
                format!("no database at {}", file.display()),
                "check OAUTH_DATABASE_URL (database_url), or start the server once to make it",
            ));
            return None;
        }
    }
    let pool = oauth_store::PoolSettings {
        acquire_timeout: Duration::from_millis(config.database_acquire_timeout_ms),
        max_connections: config.database_max_connections,
    };
    let store = match tokio::time::timeout(
        TIMEOUT,
        oauth_store::connect_with(&config.database_url, pool),
    )
    .await
    {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => {
            checks.push(Check::fail(
                NAME,
                format!(
                    "cannot open {shown}: {}",
                    crate::app::store_error_line(e, &config.database_url)
                ),
                fix,
            ));
            return None;
        }
        Err(_) => {
            checks.push(Check::fail(
                NAME,
                format!("{shown} did not answer within 5 s"),
                fix,
            ));
            return None;
        }
    };
    let stored = ask_database(store.as_ref(), &shown, now, fix, checks).await;
    store.close().await;
    stored
}

async fn ask_database(
    store: &dyn Store,
    shown: &str,
    now: i64,
    fix: &str,
    checks: &mut Vec<Check>,
) -> Option<Vec<StoredSigningKey>> {
    const NAME: &str = "database";
    if let Err(e) = store.ping().await {
        checks.push(Check::fail(
            NAME,
            format!("{shown} does not answer: {e}"),
            fix,
        ));
        return None;
    }
    match store.list_signing_keys(now).await {
        Ok(keys) => {
            checks.push(Check::ok(NAME, format!("{shown} answers")));
            Some(keys)
        }
        Err(e) => {
            checks.push(Check::fail(
                NAME,
                format!("{shown} answers but its signing keys cannot be read: {e}"),
                "run `oauth-server migrate` (or start the server once) with this configuration",
            ));
            None
        }
    }
}

async fn redis_check(config: &Config) -> Check {
    const NAME: &str = "redis";
    let RateLimitBackend::Redis { url, .. } = &config.rate_limits.backend else {
        return Check::ok(
            NAME,
            "not used: rate limits are kept in memory, per instance",
        );
    };
    let shown = redact_url(url);
    let fix = "check OAUTH_RATE_LIMIT_REDIS_URL and that Redis is running and reachable from here";
    let client = match crate::redis_url::redis_client(url) {
        Ok(c) => c,
        Err(e) => return Check::fail(NAME, format!("{shown} {e}"), fix),
    };
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(TIMEOUT, ping).await {
        Ok(Ok(_)) => Check::ok(NAME, format!("{shown} answers")),
        Ok(Err(e)) => Check::fail(NAME, format!("{shown} does not answer: {e}"), fix),
        Err(_) => Check::fail(NAME, format!("{shown} did not answer within 5 s"), fix),
    }
}

/// GET `url`, as JSON; `Err` is a sentence.
async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url} answered {status}"));
    }
    response
        .json::<Value>()
        .await
        .map_err(|e| format!("GET {url}: not JSON: {e}"))
}

/// `url` as reached from here: the issuer's prefix replaced by `base`.
fn reachable(url: &str, issuer: &str, base: &str) -> String {
    match url.strip_prefix(issuer) {
        Some(rest) => format!("{base}{rest}"),
        None => url.to_owned(),
    }
}

async fn server_checks(
    issuer: &str,
    base: &str,
    kid: Option<&str>,
    now: i64,
    checks: &mut Vec<Check>,
) {
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            checks.push(Check::fail(
                "server",
                format!("no HTTP client: {e}"),
                "report this",
            ));
            return;
        }
    };
    // Reachable, and its clock.
    let health = format!("{base}/healthz");
    let response = match client.get(&health).send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            checks.push(Check::fail(
                "server",
                format!("GET {health} answered {}", r.status()),
                "check that this address is the oauth-server (or pass --url with the address it listens on)",
            ));
            return;
        }
        Err(e) => {
            checks.push(Check::fail(
                "server",
                format!("cannot reach {health}: {}", error_chain(&e)),
                "start the server, or pass --url with the address where it listens (the issuer may be a public address this machine does not reach)",
            ));
            return;
        }
    };
    checks.push(Check::ok("server", format!("{health} answers")));
    checks.push(clock_check(response.headers(), now));

    // RFC 8414 metadata.
    let as_url = format!("{base}{AS_METADATA_PATH}");
    let mut jwks_uri = None;
    match get_json(&client, &as_url).await {
        Err(e) => checks.push(Check::fail(
            "authorization server metadata",
            e,
            "check that the server is an oauth-server of this version",
        )),
        Ok(meta) => {
            let got = meta["issuer"].as_str().unwrap_or_default();
            if got == issuer {
                checks.push(Check::ok(
                    "authorization server metadata",
                    format!("issuer {got} agrees"),
                ));
            } else {
                checks.push(Check::fail(
                    "authorization server metadata",
                    format!("the server says its issuer is {got:?}, this configuration says {issuer:?}: tokens and metadata would not match what clients expect"),
                    "give the server and this check the same OAUTH_ISSUER: the public URL in front of every instance",
                ));
            }
            let methods = &meta["code_challenge_methods_supported"];
            let s256 = methods
                .as_array()
                .is_some_and(|m| m.iter().any(|v| v == "S256"));
            checks.push(if s256 {
                Check::ok("MCP: PKCE", "code_challenge_methods_supported lists S256")
            } else {
                Check::fail(
                    "MCP: PKCE",
                    format!("code_challenge_methods_supported is {methods}, without S256"),
                    "serve an oauth-server of this version: MCP clients refuse a server without PKCE S256",
                )
            });
            checks.push(match meta["registration_endpoint"].as_str() {
                Some(r) => Check::ok("MCP: registration", format!("registration_endpoint {r}")),
                None => Check::fail(
                    "MCP: registration",
                    "no registration_endpoint in the metadata",
                    "serve an oauth-server of this version: MCP clients register themselves (RFC 7591)",
                ),
            });
            jwks_uri = meta["jwks_uri"].as_str().map(str::to_owned);
        }
    }

    // RFC 9728 metadata.
    let pr_url = format!("{base}{RESOURCE_METADATA_PATH}");
    checks.push(match get_json(&client, &pr_url).await {
        Err(e) => Check::fail(
            "MCP: protected resource metadata",
            e,
            "check that the server is an oauth-server of this version",
        ),
        Ok(meta) => {
            let servers = meta["authorization_servers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if servers.iter().any(|s| s == issuer) {
                Check::ok(
                    "MCP: protected resource metadata",
                    format!("authorization_servers names {issuer}"),
                )
            } else {
                Check::fail(
                    "MCP: protected resource metadata",
                    format!(
                        "authorization_servers is {}, without {issuer}",
                        meta["authorization_servers"]
                    ),
                    "give the server and this check the same OAUTH_ISSUER",
                )
            }
        }
    });

    // The JWK set holds the key that signs.
    let jwks_url = reachable(
        jwks_uri
            .as_deref()
            .unwrap_or(&format!("{issuer}/oauth/jwks")),
        issuer,
        base,
    );
    checks.push(match get_json(&client, &jwks_url).await {
        Err(e) => Check::fail("JWK set", e, "check that the server is an oauth-server of this version"),
        Ok(set) => {
            let kids: Vec<&str> = set["keys"]
                .as_array()
                .map(|keys| keys.iter().filter_map(|k| k["kid"].as_str()).collect())
                .unwrap_or_default();
            match kid {
                Some(kid) if kids.contains(&kid) => {
                    Check::ok("JWK set", format!("holds the signing key {kid}"))
                }
                Some(kid) => Check::fail(
                    "JWK set",
                    format!("the signing key {kid} of the database is not among the published kids {kids:?}"),
                    "point the server and this check at the same database; a key rotated in a moment ago is published within tokens.key_reload_secs",
                ),
                None if kids.is_empty() => Check::fail(
                    "JWK set",
                    "publishes no key",
                    "check the server's log: it could not load its signing keys",
                ),
                None => Check::ok(
                    "JWK set",
                    format!("publishes {} key(s) (the database's signing key could not be read to compare)", kids.len()),
                ),
            }
        }
    });
}

fn clock_check(headers: &reqwest::header::HeaderMap, now: i64) -> Check {
    const NAME: &str = "clock";
    let date = headers
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok());
    let Some(server) = date else {
        return Check::fail(
            NAME,
            "the server sent no readable Date header",
            "check what stands in front of the server: a proxy dropped the Date header",
        );
    };
    let skew = server - now;
    if skew.abs() <= MAX_CLOCK_SKEW_SECS {
        Check::ok(
            NAME,
            format!("the server's clock is {skew:+} s from this one"),
        )
    } else {
        Check::fail(
            NAME,
            format!("the server's clock is {skew:+} s from this one: tokens would look expired or not yet valid"),
            "synchronize the clocks (NTP) of the server and its clients",
        )
    }
}

/// An error and its causes, on one line (reqwest's own message omits the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start-up warnings are doctor's too (a mistyped setting name would otherwise pass
    /// every check), except those another check already reports.
    #[test]
    fn configuration_warnings_fail_the_configuration_check() {
        let clean = Config::default();
        assert!(configuration_check(&clean).ok);
        let mut warned = Config {
            bind: "0.0.0.0:8080".parse().unwrap_or_else(|e| panic!("{e}")),
            ..Config::default()
        };
        warned.notices = warned.exposure_notice().into_iter().collect();
        assert!(
            configuration_check(&warned).ok,
            "reported by the issuer check"
        );
        warned.notices.push(
            "the environment variable OAUTH_REGISTRATON_MODE names no setting and is ignored; did you mean OAUTH_REGISTRATION_MODE?".into(),
        );
        let c = configuration_check(&warned);
        assert!(!c.ok);
        assert!(
            c.line()
                .starts_with("FAIL configuration: the environment variable OAUTH_REGISTRATON_MODE"),
            "{}",
            c.line()
        );
    }

    #[test]
    fn a_database_across_a_network_needs_its_certificate_checked() {
        assert!(database_route_check("sqlite://data/oauth.db").is_none());
        for url in [
            "postgres://u@localhost/db?host=/var/run/postgresql",
            "postgres://u@127.0.0.1:5432/db?sslmode=disable",
            "postgresql://u@db.internal/db?sslmode=verify-full",
            "postgres://u@postgres:5432/db?sslmode=disable",
        ] {
            let c = database_route_check(url).unwrap_or_else(|| panic!("{url}"));
            assert!(c.ok, "{url}: {}", c.line());
        }
        let c = database_route_check("postgres://u:pw@db.internal/db?sslmode=require")
            .unwrap_or_else(|| panic!("no check"));
        assert!(!c.ok);
        assert_eq!(
            c.line(),
            "FAIL database connection: PostgreSQL at db.internal over the network with sslmode=require, \
             which does not check the database's certificate: whoever is on the path can read and \
             change what the server stores; fix: add sslmode=verify-full to OAUTH_DATABASE_URL \
             (and sslrootcert=<the CA's certificate file> unless the database's certificate chains \
             to a public root), or sslmode=disable where the network is trusted"
        );
        assert!(!c.line().contains("pw"));
    }

    #[test]
    fn issuers_clients_accept() {
        let local = Config::default();
        assert!(issuer_check(&local, "https://auth.example.com").ok);
        assert!(issuer_check(&local, "http://127.0.0.1:8080").ok);
        assert!(issuer_check(&local, "http://localhost:8080").ok);
        assert!(issuer_check(&local, "http://[::1]:8080").ok);
        let c = issuer_check(&local, "http://auth.example.com");
        assert!(!c.ok);
        assert!(c
            .line()
            .starts_with("FAIL issuer: http://auth.example.com is plain http"));
        assert!(c.line().contains("fix: set OAUTH_ISSUER"));
        // Listening beyond this machine with the issuer derived from the bind address (the
        // container's 0.0.0.0): clients elsewhere would be sent to their own loopback.
        let exposed = Config {
            bind: "0.0.0.0:8080".parse().unwrap_or_else(|e| panic!("{e}")),
            ..Config::default()
        };
        let derived = exposed.issuer_for(exposed.bind);
        let c = issuer_check(&exposed, &derived);
        assert!(!c.ok, "{}", c.line());
        assert!(c.line().contains("listens on 0.0.0.0:8080"), "{}", c.line());
        let named = Config {
            issuer: Some("https://auth.example.com".into()),
            ..exposed
        };
        assert!(issuer_check(&named, "https://auth.example.com").ok);
    }

    #[test]
    fn a_url_of_the_issuer_is_reached_at_the_base() {
        assert_eq!(
            reachable(
                "https://a.example/oauth/jwks",
                "https://a.example",
                "http://127.0.0.1:1"
            ),
            "http://127.0.0.1:1/oauth/jwks"
        );
        assert_eq!(
            reachable("https://b.example/j", "https://a.example", "http://x"),
            "https://b.example/j"
        );
    }
}
