//! The command line: `serve`, `migrate`, and the admin commands. With `--json`, every admin
//! command prints exactly one JSON object on stdout (scripts rely on this).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use oauth_store::SecurityEventFilter;
use serde_json::json;
use tracing_subscriber::EnvFilter;

pub use crate::app::error_line;

use crate::accounts;
use crate::app::{open_store, shutdown_signal, start};
use crate::audit::{self, Event, EventKind};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigArgs, LogFormat};
use crate::signing;

#[derive(Debug, Parser)]
#[command(
    name = "oauth-server",
    version,
    about = "A self-hostable OAuth 2.0 authorization server, wire-compatible with the Telnyx OAuth API"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print exactly one JSON object on stdout (admin commands).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrations run first).
    Serve,
    /// Run the database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage the access-token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit trail: security events stored in the database.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Check this configuration and the server running with it, as clients see it: the issuer,
    /// the database, Redis, the key-encryption key, the clock, the metadata documents and the
    /// JWK set. Prints one line per check; exits non-zero when one fails.
    Doctor {
        /// Where to reach the running server from here [default: the issuer].
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List security events, newest first. With --json: `{"events": [...], "next_before": ID}`;
    /// pass `--before ID` to get the next (older) page.
    List(EventsListArgs),
}

#[derive(Debug, clap::Args)]
pub struct EventsListArgs {
    /// Only events of this kind (e.g. `login.failed`; see the README for the list).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only events naming this user id.
    #[arg(long)]
    pub user: Option<String>,
    /// Only events naming this client id.
    #[arg(long)]
    pub client: Option<String>,
    /// Only events of this organization id.
    #[arg(long)]
    pub org: Option<String>,
    /// Only events at or after this time: RFC 3339 (`2026-01-31T12:00:00Z`) or Unix seconds.
    #[arg(long)]
    pub since: Option<String>,
    /// Only events older than the event with this id (the `next_before` of the last page).
    #[arg(long)]
    pub before: Option<i64>,
    /// At most this many events (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key: published in /oauth/jwks now, signing after the publish delay
    /// (`tokens.key_publish_delay_secs`); the previous keys stay published until every token
    /// they signed has expired.
    Rotate {
        /// The previous keys are compromised (a leaked private key): the new key signs at once,
        /// and the previous keys leave the JWK set and stop verifying at once, so every token
        /// they signed stops working. Each instance follows within `tokens.key_reload_secs`
        /// (restart them to make it immediate).
        #[arg(long)]
        now: bool,
    },
    /// List the published signing keys.
    List,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; without --org, the user gets a new organization of their own (refused when
    /// one of that name exists).
    Create {
        #[arg(long)]
        email: String,
        /// Organization name: joined if it exists, created otherwise.
        #[arg(long)]
        org: Option<String>,
        /// Read the password from the first line of standard input (otherwise one is generated
        /// and printed).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Give a user a new password (forgotten or leaked): every session of the user ends and
    /// every remembered browser is forgotten; API keys and grants stay.
    SetPassword {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input (otherwise one is generated
        /// and printed).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user: their sessions, API keys and grants (with the grants' tokens) end now, on
    /// every instance. The clients they created stay with the organization.
    Delete {
        #[arg(long)]
        email: String,
    },
    /// List users, oldest first: of one organization, or of all.
    List {
        /// Only the users of this organization id.
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

/// One page of a list.
#[derive(Debug, clap::Args)]
pub struct PageArgs {
    /// The page to show, from 1.
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=oauth_core::page::MAX_PAGE_NUMBER))]
    pub page: u64,
    /// Entries per page.
    #[arg(long, default_value_t = oauth_core::page::DEFAULT_PAGE_SIZE,
          value_parser = clap::value_parser!(u64).range(1..=oauth_core::page::MAX_PAGE_SIZE))]
    pub size: u64,
}

impl PageArgs {
    fn spec(&self) -> oauth_core::PageSpec {
        oauth_core::PageSpec {
            number: self.page,
            size: self.size,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create an API key for a user; the key is printed once.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke an API key by its id.
    Revoke { id: String },
    /// List a user's API keys (never the keys themselves), revoked ones included, oldest first.
    List {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Mark a client verified (the consent page shows a badge).
    Verify { client_id: String },
    /// Delete a client of any organization (a registered one included, which no member can
    /// delete): its grants, codes and tokens end with it.
    Delete { client_id: String },
    /// List an organization's clients, oldest first. The clients registered through
    /// `/oauth/register` and those met through their metadata documents are in the
    /// organization `org_third_party_clients`.
    List {
        #[arg(long)]
        org: String,
        #[command(flatten)]
        page: PageArgs,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.config)?;
    init_logging(&config, matches!(cli.command, Command::Serve))?;
    let clock = SystemClock;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            // What was applied before, to say what this run did (an unreadable database is
            // reported by opening it just after).
            let before = oauth_store::applied_migrations(&config.database_url)
                .await
                .unwrap_or_default();
            let store = open_store(&config).await?;
            store.close().await;
            let after = oauth_store::applied_migrations(&config.database_url).await?;
            let ran: Vec<String> = after
                .iter()
                .filter(|m| !before.contains(m))
                .map(|m| format!("{:04} {}", m.version, m.description))
                .collect();
            let engine = database_engine(&config.database_url);
            let text = if ran.is_empty() {
                format!(
                    "{engine} database up to date ({} migrations applied before)",
                    after.len()
                )
            } else {
                format!(
                    "{engine} database migrated; ran {}:\n  {}",
                    ran.len(),
                    ran.join("\n  ")
                )
            };
            output(cli.json, json!({"migrated": true}), &text)
        }
        Command::Doctor { url } => doctor(&config, cli.json, url.as_deref()).await,
        Command::Users(UsersCommand::Create {
            email,
            org,
            password_stdin,
        }) => {
            let password = password_stdin.then(read_password).transpose()?;
            let store = open_store(&config).await?;
            let created = accounts::create_user(
                store.as_ref(),
                &email,
                org.as_deref(),
                password,
                clock.now(),
            )
            .await;
            store.close().await;
            let created = created?;
            let mut text = format!(
                "created user {} ({}) in organization {}",
                created.email, created.user_id, created.org_id
            );
            if let Some(p) = &created.password {
                text.push_str(&format!("\npassword: {p}"));
            }
            output(cli.json, serde_json::to_value(&created)?, &text)
        }
        Command::Users(UsersCommand::SetPassword {
            email,
            password_stdin,
        }) => {
            let password = password_stdin.then(read_password).transpose()?;
            let store = open_existing_store(&config).await?;
            let set = async {
                // The account's failed sign-ins are counted under a key derived from the
                // server's key-encryption key; with another key nothing is changed.
                let kek =
                    signing::existing_key_encryption_key(&config, store.as_ref(), clock.now())
                        .await?;
                let login_keys = kek.as_ref().map(crate::app::login_failure_keys);
                accounts::set_password(
                    store.as_ref(),
                    login_keys.as_ref(),
                    &email,
                    password,
                    clock.now(),
                )
                .await
            }
            .await;
            store.close().await;
            let set = set?;
            let mut text = format!(
                "set the password of {} ({}); {} session(s) signed out",
                set.email, set.user_id, set.sessions_ended
            );
            if let Some(p) = &set.password {
                text.push_str(&format!("\npassword: {p}"));
            }
            output(cli.json, serde_json::to_value(&set)?, &text)
        }
        Command::Users(UsersCommand::Delete { email }) => {
            let store = open_existing_store(&config).await?;
            // The account's failed sign-ins are counted under a key derived from the server's
            // key-encryption key: without it they stay (for their window) and the user goes
            // all the same.
            let kek =
                signing::existing_key_encryption_key(&config, store.as_ref(), clock.now()).await;
            let login_keys = match &kek {
                Ok(kek) => kek.as_ref().map(crate::app::login_failure_keys),
                Err(_) => None,
            };
            let deleted =
                accounts::delete_user(store.as_ref(), login_keys.as_ref(), &email, clock.now())
                    .await;
            store.close().await;
            let d = deleted?;
            let mut text = format!(
                "deleted user {} ({}): {} session(s) signed out, {} API key(s) and {} grant(s) \
                 revoked; {} client(s) they created stay with the organization",
                d.email,
                d.user_id,
                d.sessions_ended,
                d.api_keys_revoked,
                d.grants_revoked,
                d.clients_created
            );
            if let Err(why) = &kek {
                text.push_str(&format!(
                    "\nthe account's failed sign-ins stay for their window (the address, given \
                     to someone again, may find it locked until then): {why}"
                ));
            }
            if d.members_left == 0 {
                text.push_str(&format!(
                    "\norganization {} has no member left; its clients stay, and those using \
                     client_credentials still get tokens: see `oauth-server clients list --org {}`",
                    d.org_id, d.org_id
                ));
            }
            output(cli.json, serde_json::to_value(&d)?, &text)
        }
        Command::Users(UsersCommand::List { org, page }) => {
            list_users(&config, cli.json, org.as_deref(), &page).await
        }
        Command::ApiKeys(ApiKeysCommand::List { email, page }) => {
            list_api_keys(&config, cli.json, &email, &page).await
        }
        Command::Clients(ClientsCommand::List { org, page }) => {
            list_clients(&config, cli.json, &org, &page).await
        }
        Command::ApiKeys(ApiKeysCommand::Create { email, name }) => {
            let store = open_existing_store(&config).await?;
            let created = accounts::create_api_key(store.as_ref(), &email, name, clock.now()).await;
            store.close().await;
            let created = created?;
            let text = format!(
                "API key {} (shown once, store it now):\n{}",
                created.id, created.api_key
            );
            output(cli.json, serde_json::to_value(&created)?, &text)
        }
        Command::ApiKeys(ApiKeysCommand::Revoke { id }) => {
            let store = open_existing_store(&config).await?;
            let revoked = store.revoke_api_key(&id, clock.now()).await;
            if matches!(revoked, Ok(true)) {
                audit::record(
                    store.as_ref(),
                    clock.now(),
                    Event::new(EventKind::ApiKeyRevoked).detail("api_key_id", id.clone()),
                )
                .await;
            }
            store.close().await;
            if !revoked? {
                bail!("no live API key with id {id}");
            }
            output(
                cli.json,
                json!({"id": id, "revoked": true}),
                &format!("revoked API key {id}"),
            )
        }
        Command::Keys(KeysCommand::Rotate { now: at_once }) => {
            let store = open_existing_store(&config).await?;
            let kek = match signing::load_key_encryption_key(&config, store.as_ref(), clock.now())
                .await
            {
                Ok(kek) => kek,
                Err(e) => {
                    store.close().await;
                    return Err(e);
                }
            };
            let previous: Vec<String> = match store.list_signing_keys(clock.now()).await {
                Ok(keys) => keys.into_iter().map(|k| k.kid).collect(),
                Err(_) => Vec::new(),
            };
            let schedule = if at_once {
                signing::Schedule::AtOnce
            } else {
                signing::Schedule::Planned {
                    publish_delay_secs: config.tokens.key_publish_delay_secs,
                    access_token_lifetime_secs: config.tokens.access_token_lifetime_secs,
                    key_reload_secs: i64::try_from(config.tokens.key_reload_secs).unwrap_or(86_400),
                }
            };
            let rotated = signing::rotate(
                store.as_ref(),
                &kek,
                config.tokens.algorithm.algorithm(),
                clock.now(),
                schedule,
            )
            .await;
            store.close().await;
            let r = rotated?;
            let retiring = if previous.is_empty() {
                "no previous key".to_owned()
            } else if at_once {
                format!(
                    "previous keys {} retired now: every token they signed stops working, on \
                     each instance when it next reloads the keys (within tokens.key_reload_secs)",
                    previous.join(", ")
                )
            } else {
                format!(
                    "previous keys {} retire at {}",
                    previous.join(", "),
                    oauth_core::timefmt::rfc3339(r.previous_retire_after)
                )
            };
            let text = format!(
                "created signing key {} ({}): published now, signs from {}; {retiring}",
                r.kid,
                r.alg,
                oauth_core::timefmt::rfc3339(r.active_from),
            );
            output(cli.json, serde_json::to_value(&r)?, &text)
        }
        Command::Keys(KeysCommand::List) => {
            let store = open_existing_store(&config).await?;
            let keys = store.list_signing_keys(clock.now()).await;
            store.close().await;
            let keys: Vec<_> = keys?
                .into_iter()
                .map(|k| {
                    json!({
                        "kid": k.kid,
                        "alg": k.alg,
                        "created_at": k.created_at,
                        "active_from": k.active_from,
                        "retire_after": k.retire_after,
                    })
                })
                .collect();
            let text = keys
                .iter()
                .map(|k| {
                    format!(
                        "{} {} active_from={} retire_after={}",
                        k["kid"].as_str().unwrap_or_default(),
                        k["alg"].as_str().unwrap_or_default(),
                        k["active_from"],
                        k["retire_after"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            output(cli.json, json!({ "keys": keys }), &text)
        }
        Command::Events(EventsCommand::List(args)) => list_events(&config, cli.json, args).await,
        Command::Clients(ClientsCommand::Delete { client_id }) => {
            let store = open_existing_store(&config).await?;
            let deleted = async {
                let Some(client) = store.get_client(&client_id).await? else {
                    return Ok(None);
                };
                let gone = store.delete_client(&client.org_id, &client_id).await?;
                if gone {
                    audit::record(
                        store.as_ref(),
                        clock.now(),
                        Event::new(EventKind::ClientDeleted)
                            .client_id(&client_id)
                            .org_id(&client.org_id)
                            .detail("by", "operator"),
                    )
                    .await;
                }
                anyhow::Ok(gone.then_some(client))
            }
            .await;
            store.close().await;
            let Some(client) = deleted? else {
                bail!("no client with id {client_id}");
            };
            output(
                cli.json,
                json!({"client_id": client_id, "org_id": client.org_id, "deleted": true}),
                &format!(
                    "deleted client {client_id} ({}) of organization {}; its grants and tokens \
                     ended with it",
                    client.settings.name, client.org_id
                ),
            )
        }
        Command::Clients(ClientsCommand::Verify { client_id }) => {
            let store = open_existing_store(&config).await?;
            let done = store
                .set_client_verified(&client_id, true, clock.now())
                .await;
            if matches!(done, Ok(Some(_))) {
                audit::record(
                    store.as_ref(),
                    clock.now(),
                    Event::new(EventKind::ClientVerified).client_id(&client_id),
                )
                .await;
            }
            store.close().await;
            let Some(client) = done? else {
                bail!("no client with id {client_id}");
            };
            // What the mark vouches for, read by the statement that set it: a change the
            // registrant made after the operator looked shows here (and any change after this
            // clears the mark).
            let s = &client.settings;
            let optional = |v: &Option<String>| v.as_deref().unwrap_or("(none)").to_owned();
            output(
                cli.json,
                json!({
                    "client_id": client_id,
                    "verified": true,
                    "name": s.name,
                    "redirect_uris": s.redirect_uris,
                    "logo_uri": s.logo_uri,
                    "policy_uri": s.policy_uri,
                    "tos_uri": s.tos_uri,
                    "updated_at": client.updated_at,
                }),
                &format!(
                    "client {client_id} is now verified, as it now reads:\n  name:          {}\n  redirect URIs: {}\n  logo:          {}\n  policy:        {}\n  terms:         {}\nAny later change to these clears the mark.",
                    s.name,
                    s.redirect_uris.join(" "),
                    optional(&s.logo_uri),
                    optional(&s.policy_uri),
                    optional(&s.tos_uri),
                ),
            )
        }
    }
}

/// `events list`: one page of the audit trail.
async fn list_events(
    config: &Config,
    json_output: bool,
    args: EventsListArgs,
) -> anyhow::Result<()> {
    let EventsListArgs {
        kind,
        user,
        client,
        org,
        since,
        before,
        limit,
    } = args;
    if let Some(k) = &kind {
        if EventKind::parse(k).is_none() {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            bail!(
                "unknown event kind {k:?}; the kinds are: {}",
                known.join(", ")
            );
        }
    }
    if !(1..=1000).contains(&limit) {
        bail!("--limit must be between 1 and 1000");
    }
    let since = since.as_deref().map(parse_time).transpose()?;
    let filter = SecurityEventFilter {
        kind,
        org_id: org,
        user_id: user,
        client_id: client,
        since,
        before_id: before,
    };
    let store = open_existing_store(config).await?;
    let events = store.list_security_events(&filter, limit).await;
    store.close().await;
    let events = events?;
    // A full page may have more behind it.
    let next_before = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let rows: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "occurred_at": oauth_core::timefmt::rfc3339(e.occurred_at),
                "kind": e.kind,
                "org_id": e.org_id,
                "user_id": e.user_id,
                "client_id": e.client_id,
                "grant_id": e.grant_id,
                "ip": e.ip,
                "detail": e.detail,
            })
        })
        .collect();
    let mut text = String::new();
    if events.is_empty() {
        text.push_str("no security events");
    } else {
        text.push_str(&format!(
            "{:<8} {:<20} {:<32} {:<36} {:<36} {:<15} DETAIL",
            "ID", "TIME", "KIND", "USER", "CLIENT", "IP"
        ));
    }
    for e in &events {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        text.push_str(&format!(
            "\n{:<8} {:<20} {:<32} {:<36} {:<36} {:<15} {}",
            e.id,
            oauth_core::timefmt::rfc3339(e.occurred_at),
            e.kind,
            dash(&e.user_id),
            dash(&e.client_id),
            dash(&e.ip),
            e.detail
        ));
    }
    if let Some(id) = next_before {
        text.push_str(&format!("\n(more: --before {id})"));
    }
    output(
        json_output,
        json!({"events": rows, "next_before": next_before}),
        &text,
    )
}

/// `users list`: one page of users.
async fn list_users(
    config: &Config,
    json_output: bool,
    org: Option<&str>,
    page: &PageArgs,
) -> anyhow::Result<()> {
    let spec = page.spec();
    let store = open_existing_store(config).await?;
    let users = store.list_users(org, spec).await;
    store.close().await;
    let users = users?;
    let rows: Vec<serde_json::Value> = users
        .items
        .iter()
        .map(|u| {
            json!({
                "user_id": u.id,
                "email": u.email,
                "org_id": u.org_id,
                "created_at": oauth_core::timefmt::rfc3339(u.created_at),
            })
        })
        .collect();
    let lines = users.items.iter().map(|u| {
        format!(
            "{:<36} {:<20} {:<36} {}",
            u.id,
            oauth_core::timefmt::rfc3339(u.created_at),
            u.org_id,
            u.email
        )
    });
    let header = format!(
        "{:<36} {:<20} {:<36} EMAIL",
        "ID", "CREATED", "ORGANIZATION"
    );
    // `users create --org` takes a name; these lists take the id.
    let empty = match org {
        Some(org) => format!("no users in the organization with id {org:?} (--org takes an id, as `users list` shows it)"),
        None => "no users".to_owned(),
    };
    let text = table(header, lines, &empty, spec, users.total);
    output(
        json_output,
        json!({"users": rows, "total": users.total, "page": spec.number}),
        &text,
    )
}

/// `api-keys list`: one page of a user's API keys.
async fn list_api_keys(
    config: &Config,
    json_output: bool,
    email: &str,
    page: &PageArgs,
) -> anyhow::Result<()> {
    let spec = page.spec();
    let store = open_existing_store(config).await?;
    let keys = async {
        let email = accounts::normalize_email(email)?;
        let Some(user) = store.find_user_by_email(&email).await? else {
            bail!("no user with email {email}");
        };
        Ok(store.list_api_keys(&user.id, spec).await?)
    }
    .await;
    store.close().await;
    let keys = keys?;
    let time = |t: Option<i64>| t.map(oauth_core::timefmt::rfc3339);
    let rows: Vec<serde_json::Value> = keys
        .items
        .iter()
        .map(|k| {
            json!({
                "id": k.id,
                "name": k.name,
                "created_at": oauth_core::timefmt::rfc3339(k.created_at),
                "last_used_at": time(k.last_used_at),
                "revoked_at": time(k.revoked_at),
            })
        })
        .collect();
    let dash = |t: Option<i64>| time(t).unwrap_or_else(|| "-".to_owned());
    let lines = keys.items.iter().map(|k| {
        format!(
            "{:<36} {:<20} {:<20} {:<20} {}",
            k.id,
            oauth_core::timefmt::rfc3339(k.created_at),
            dash(k.last_used_at),
            dash(k.revoked_at),
            k.name.as_deref().unwrap_or("-")
        )
    });
    let header = format!(
        "{:<36} {:<20} {:<20} {:<20} NAME",
        "ID", "CREATED", "LAST USED", "REVOKED"
    );
    let text = table(header, lines, "no API keys", spec, keys.total);
    output(
        json_output,
        json!({"api_keys": rows, "total": keys.total, "page": spec.number}),
        &text,
    )
}

/// `clients list`: one page of an organization's clients.
async fn list_clients(
    config: &Config,
    json_output: bool,
    org: &str,
    page: &PageArgs,
) -> anyhow::Result<()> {
    let spec = page.spec();
    let store = open_existing_store(config).await?;
    let clients = store
        .list_clients(org, &oauth_store::ClientFilter::default(), spec)
        .await;
    store.close().await;
    let clients = clients?;
    let rows: Vec<serde_json::Value> = clients
        .items
        .iter()
        .map(|c| {
            json!({
                "client_id": c.client_id,
                "name": c.settings.name,
                "origin": c.origin.as_str(),
                "client_type": c.settings.client_type.as_str(),
                "verified": c.verified,
                "created_at": oauth_core::timefmt::rfc3339(c.created_at),
                "redirect_uris": c.settings.redirect_uris,
            })
        })
        .collect();
    let lines = clients.items.iter().map(|c| {
        format!(
            "{:<36} {:<20} {:<18} {:<8} {}",
            c.client_id,
            oauth_core::timefmt::rfc3339(c.created_at),
            c.origin.as_str(),
            if c.verified { "yes" } else { "no" },
            c.settings.name
        )
    });
    let header = format!(
        "{:<36} {:<20} {:<18} {:<8} NAME",
        "CLIENT ID", "CREATED", "ORIGIN", "VERIFIED"
    );
    let empty = format!(
        "no clients in the organization with id {org:?} (--org takes an id, as `users list` shows it)"
    );
    let text = table(header, lines, &empty, spec, clients.total);
    output(
        json_output,
        json!({"clients": rows, "total": clients.total, "page": spec.number}),
        &text,
    )
}

/// A list's text: the header and its lines, or `empty`; and where the page stands.
fn table(
    header: String,
    lines: impl Iterator<Item = String>,
    empty: &str,
    spec: oauth_core::PageSpec,
    total: u64,
) -> String {
    let mut text = header;
    let mut shown = 0u64;
    for line in lines {
        text.push('\n');
        text.push_str(line.trim_end());
        shown += 1;
    }
    if shown == 0 {
        return if total == 0 {
            empty.to_owned()
        } else {
            format!("{empty} on page {} ({total} in all)", spec.number)
        };
    }
    let first = (spec.number - 1) * spec.size + 1;
    text.push_str(&format!("\n({first}-{} of {total}", first + shown - 1));
    if first + shown - 1 < total {
        text.push_str(&format!("; more: --page {}", spec.number + 1));
    }
    text.push(')');
    text
}

/// RFC 3339 (`2026-01-31T12:00:00Z`) or Unix seconds.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| anyhow::anyhow!("{s:?} is neither an RFC 3339 time nor Unix seconds"))
}

/// The database engine of `url`, for messages: never the URL, which may hold a password.
fn database_engine(url: &str) -> &'static str {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// `doctor`: the checklist, one line per check (or one JSON object); an error when one failed.
async fn doctor(config: &Config, json_output: bool, url: Option<&str>) -> anyhow::Result<()> {
    let checks = crate::doctor::run(config, url, SystemClock.now()).await;
    let failed = checks.iter().filter(|c| !c.ok).count();
    let text = checks
        .iter()
        .map(crate::doctor::Check::line)
        .collect::<Vec<_>>()
        .join("\n");
    output(
        json_output,
        json!({"ok": failed == 0, "checks": checks}),
        &text,
    )?;
    if failed > 0 {
        bail!("{failed} of {} checks failed", checks.len());
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    crate::app::raise_open_file_limit(config.server.max_connections);
    let engine = database_engine(&config.database_url);
    let config_traces = config.tracing.otlp_endpoint.clone();
    let server = start(config, shutdown_signal()).await?;
    if let Some(b) = &server.bootstrap {
        // Printed once, on the first start of an empty database; never logged.
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "\nFirst start: created the admin user.\n  email:    {}\n  password: {}\n  API key:  {}\n\
             Store these now; they are not shown again. Try:\n  curl -H 'Authorization: Bearer {}' {}/oauth_clients\n",
            b.email,
            b.password,
            b.api_key,
            b.api_key,
            server.url()
        )?;
        out.flush()?;
    }
    let traces = match &config_traces {
        Some(endpoint) => endpoint.as_str(),
        None => "off",
    };
    let metrics = match server.metrics_addr {
        Some(a) => format!("http://{a}/metrics"),
        None => "off".to_owned(),
    };
    // The OpenAPI document is served at the root only: the issuer's origin, without its path.
    let openapi = url::Url::parse(&server.issuer)
        .ok()
        .and_then(|u| u.join("/openapi.json").ok())
        .map_or_else(|| format!("{}/openapi.json", server.issuer), String::from);
    println!(
        "oauth-server listening on {} (issuer {}, database {}, metrics {}, traces {}, OpenAPI {})",
        server.addr, server.issuer, engine, metrics, traces, openapi
    );
    let stopped = server.wait().await;
    // Spans still queued are sent before the process ends.
    crate::telemetry::shutdown().await;
    stopped?;
    println!("oauth-server stopped");
    Ok(())
}

/// The store of a database that exists. The commands that act on what a database holds do not
/// make an empty one where the URL was mistyped or not set, only to report what was asked for
/// missing ("no client with id ..."), as if it had been deleted already; `serve`, `migrate` and
/// `users create` make one. Nor do they give this server's tables to a database it never ran on
/// (a URL naming another application's database, or an empty file).
async fn open_existing_store(
    config: &Config,
) -> anyhow::Result<std::sync::Arc<dyn oauth_store::Store>> {
    let url = &config.database_url;
    if let Some(file) = signing::sqlite_database_file(url) {
        if !file.exists() {
            bail!(
                "no database at {}: check OAUTH_DATABASE_URL (database_url); this command makes none",
                file.display()
            );
        }
    }
    // Read without changing anything; a database that cannot be read stops the command too,
    // rather than be migrated on the chance that it is ours.
    let holds = oauth_store::holds_server_tables(url).await.map_err(|e| {
        anyhow::anyhow!(
            "reading the {} database named by OAUTH_DATABASE_URL (database_url): {}",
            database_engine(url),
            crate::app::store_error_line(e, url)
        )
    })?;
    if !holds {
        bail!(
            "the {} database named by OAUTH_DATABASE_URL (database_url) holds no oauth-server \
             tables: check the URL; `oauth-server migrate` makes them in a new database",
            database_engine(url)
        );
    }
    open_store(config).await
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

fn output(json: bool, value: serde_json::Value, text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "{text}")?;
    }
    Ok(())
}

/// The log directive that silences the PostgreSQL driver's warning about URL parameters.
const SILENCED_DRIVER_WARNINGS: &str = "sqlx_postgres::options::parse=error";

/// Logs go to stderr; `OAUTH_LOG` (or `RUST_LOG`) sets the filter. Admin commands log warnings
/// only, so their stdout stays clean. Colours only on a terminal: a log file or a collector gets
/// plain text (and the server skips formatting the escape codes on every request's span).
fn init_logging(config: &Config, serving: bool) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;

    let default = if serving { "info" } else { "warn" };
    let filter = std::env::var("OAUTH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default))
        // The PostgreSQL driver warns of a URL parameter it ignores with its value, which may
        // be a password; the configuration names such parameters itself, without values.
        .add_directive(SILENCED_DRIVER_WARNINGS.parse()?);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = match config.log_format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt
            .fmt_fields(crate::telemetry::BufferedFields::default())
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(fmt);
    // Spans are exported only by the server itself, not by the admin commands.
    #[cfg(feature = "otlp")]
    let registry = registry.with(if serving {
        crate::telemetry::layer(&config.tracing)?
    } else {
        None
    });
    let _ = registry.try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::error_line;

    /// An error that quotes its source in its own text, as sqlx's do.
    #[derive(Debug)]
    struct Quoting(std::io::Error);

    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error returned from database: {}", self.0)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::other("database \"nope\" does not exist");
        let e = anyhow::Error::new(Quoting(io)).context("reading the PostgreSQL database");
        assert_eq!(
            error_line(&e),
            "reading the PostgreSQL database: error returned from database: \
             database \"nope\" does not exist"
        );
        // A cause the line does not end with is kept.
        let e = anyhow::anyhow!("connection refused").context("opening the database");
        assert_eq!(error_line(&e), "opening the database: connection refused");
        // A cause that is only the end of a word is a cause of its own.
        let e = anyhow::anyhow!("locked").context("the database is locked");
        assert_eq!(error_line(&e), "the database is locked: locked");
    }
}
