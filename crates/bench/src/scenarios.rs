//! The scenarios: one entry each in [`SCENARIOS`]. A scenario says how to prepare each side (seed
//! data, obtain credentials) and returns the [`Operation`] the load generator repeats. A side
//! the scenario does not apply to is [`Plan::NotApplicable`] ("n/a" in the table).
//!
//! Adding a scenario: write a `prepare_*` function returning an operation (usually a
//! [`Single`] request) and add one entry to [`SCENARIOS`].
//!
//! Flows: an operation may be several requests. [`CodeFlow`] (`authorization-code`) sends
//! authorize → grants → token in order on one connection and fails on the first unexpected
//! response; one completed flow is one operation (flows per second). [`RefreshRotation`]
//! (`refresh-rotation`) redeems one refresh token per operation.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::json;

use crate::load::{check, request, Connection, Operation, Single};
use crate::target::Target;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Prepares a side of a scenario and returns the operation to repeat.
pub type Prepare = for<'a> fn(&'a Target) -> BoxFuture<'a, anyhow::Result<Arc<dyn Operation>>>;

pub enum Plan {
    Run(Prepare),
    /// The side has no such operation (shown as "n/a").
    NotApplicable,
}

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    /// Concurrent connections unless `--connections` says otherwise.
    pub connections: usize,
    /// Extra `OAUTH_*` settings for our server.
    pub server_env: &'static [(&'static str, &'static str)],
    pub ours: Plan,
    pub peer: Plan,
    /// How the peer's side differs, when it does.
    pub peer_note: Option<&'static str>,
    /// The `floor` server's side (`--floor`).
    pub floor: Plan,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "healthz",
        // The floor every other scenario stands on: loopback TCP, HTTP/1.1, routing and the
        // middleware, with no OAuth work and no database.
        about: "GET /healthz: the cost of an HTTP request through the server's stack, nothing else",
        connections: 16,
        server_env: &[],
        ours: Plan::Run(prepare_healthz),
        peer: Plan::NotApplicable,
        peer_note: Some("no equivalent endpoint"),
        floor: Plan::Run(prepare_healthz),
    },
    Scenario {
        name: "clients-list",
        // One connection: the target is the latency of one list call, not a queue of them.
        about: "GET /oauth_clients?page[size]=100 over 10,000 clients, pages 1..100 in turn",
        connections: 1,
        server_env: &[],
        ours: Plan::Run(prepare_clients_list),
        peer: Plan::NotApplicable,
        peer_note: None,
        floor: Plan::NotApplicable,
    },
    Scenario {
        name: "clients-create",
        about: "POST /oauth_clients (a confidential client, secret hashed, one row written)",
        connections: 16,
        server_env: &[],
        ours: Plan::Run(prepare_clients_create),
        peer: Plan::NotApplicable,
        peer_note: None,
        floor: Plan::NotApplicable,
    },
    Scenario {
        name: "register",
        about: "POST /oauth/register (RFC 7591 dynamic registration)",
        connections: 16,
        server_env: &[],
        ours: Plan::Run(prepare_register),
        peer: Plan::Run(prepare_register),
        peer_note: Some("oidc-provider keeps registrations in its in-memory development adapter"),
        floor: Plan::NotApplicable,
    },
    Scenario {
        name: "client-credentials-es256",
        about: "POST /oauth/token grant_type=client_credentials, JWT access token signed ES256",
        connections: 16,
        server_env: &[("OAUTH_TOKEN_ALGORITHM", "es256")],
        ours: Plan::Run(prepare_ours_token),
        peer: Plan::Run(prepare_peer_token_es256),
        peer_note: None,
        floor: Plan::Run(prepare_floor_token),
    },
    Scenario {
        name: "client-credentials-eddsa",
        about: "client_credentials, JWT access token signed EdDSA (Ed25519)",
        connections: 16,
        server_env: &[("OAUTH_TOKEN_ALGORITHM", "eddsa")],
        ours: Plan::Run(prepare_ours_token),
        peer: Plan::Run(prepare_peer_token_eddsa),
        peer_note: None,
        floor: Plan::NotApplicable,
    },
    Scenario {
        name: "client-credentials-rs256",
        about: "client_credentials, JWT access token signed RS256 (2048-bit)",
        connections: 16,
        server_env: &[("OAUTH_TOKEN_ALGORITHM", "rs256")],
        ours: Plan::Run(prepare_ours_token),
        peer: Plan::Run(prepare_peer_token_rs256),
        peer_note: None,
        floor: Plan::NotApplicable,
    },
    Scenario {
        name: "introspect",
        about: "POST /oauth/introspect of a JWT access token (RFC 7662)",
        connections: 16,
        server_env: &[],
        ours: Plan::Run(prepare_ours_introspect),
        peer: Plan::Run(prepare_peer_introspect),
        peer_note: Some("oidc-provider refuses to introspect JWTs: it introspects an opaque token"),
        floor: Plan::NotApplicable,
    },
    Scenario {
        name: "authorization-code",
        about: "authorization code flow with PKCE: GET /oauth/authorize → POST /oauth/grants → \
                POST /oauth/token, one flow per operation on one connection",
        connections: 16,
        server_env: &[],
        ours: Plan::Run(prepare_ours_code_flow),
        peer: Plan::NotApplicable,
        peer_note: Some(
            "oidc-provider's flow goes through its interactive login and consent pages: not scripted",
        ),
        floor: Plan::NotApplicable,
    },
    Scenario {
        name: "refresh-rotation",
        about: "POST /oauth/token grant_type=refresh_token: each operation redeems the current \
                refresh token for a new pair",
        connections: 16,
        server_env: &[],
        ours: Plan::Run(prepare_ours_refresh),
        peer: Plan::NotApplicable,
        peer_note: Some("not scripted for oidc-provider (its refresh tokens come from the interactive flow)"),
        floor: Plan::NotApplicable,
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// Clients seeded for `clients-list` (fewer in a smoke pass).
fn list_clients(target: &Target) -> u64 {
    if target.smoke {
        300
    } else {
        10_000
    }
}

const PAGE_SIZE: u64 = 100;

fn bearer(key: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {key}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer -"))
}

fn basic(id: &str, secret: &str) -> HeaderValue {
    // RFC 6749 §2.3.1: form-urlencode each part, then Base64 of "id:secret".
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    HeaderValue::from_str(&format!("Basic {b64}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic -"))
}

fn create_client_body(seq: u64) -> serde_json::Value {
    json!({
        "name": format!("bench client {seq}"),
        "client_type": "confidential",
        "allowed_grant_types": ["client_credentials"],
        "allowed_scopes": ["admin"],
    })
}

fn prepare_clients_list(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move {
        let total = list_clients(t);
        seed_clients(t, total).await?;
        let auth = bearer(&t.api_key);
        let pages = total.div_ceil(PAGE_SIZE);
        let op = Single {
            build: Box::new(move |seq| {
                let page = seq % pages + 1;
                let mut req = request(
                    Method::GET,
                    &format!("/oauth_clients?page[size]={PAGE_SIZE}&page[number]={page}"),
                    None,
                    Bytes::new(),
                );
                req.headers_mut()
                    .insert(header::AUTHORIZATION, auth.clone());
                req
            }),
            status: StatusCode::OK,
            body_contains: Some(format!("\"total_results\":{total}")),
        };
        Ok(Arc::new(op) as Arc<dyn Operation>)
    })
}

/// Creates `total` clients through the API, 16 requests at a time.
async fn seed_clients(t: &Target, total: u64) -> anyhow::Result<()> {
    const WORKERS: u64 = 16;
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let http = t.http.clone();
        let url = t.url("/oauth_clients");
        let key = t.api_key.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < total {
                let r = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&create_client_body(i))
                    .send()
                    .await?;
                if r.status() != StatusCode::CREATED {
                    bail!("seeding a client: status {}", r.status());
                }
                i += WORKERS;
            }
            Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a seeding task failed")??;
    }
    Ok(())
}

fn prepare_clients_create(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move {
        let auth = bearer(&t.api_key);
        let op = Single {
            build: Box::new(move |seq| {
                let body = create_client_body(seq).to_string();
                let mut req = request(
                    Method::POST,
                    "/oauth_clients",
                    Some("application/json"),
                    Bytes::from(body),
                );
                req.headers_mut()
                    .insert(header::AUTHORIZATION, auth.clone());
                req
            }),
            status: StatusCode::CREATED,
            body_contains: Some("\"client_secret\"".to_owned()),
        };
        Ok(Arc::new(op) as Arc<dyn Operation>)
    })
}

fn prepare_healthz(_: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move {
        let op = Single {
            build: Box::new(|_| request(Method::GET, "/healthz", None, Bytes::new())),
            status: StatusCode::OK,
            body_contains: Some("\"ok\"".to_owned()),
        };
        Ok(Arc::new(op) as Arc<dyn Operation>)
    })
}

fn prepare_register(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    let path = match t.side {
        crate::target::Side::Ours => "/oauth/register",
        // The floor has no registration; its plan here is `NotApplicable`.
        crate::target::Side::Peer | crate::target::Side::Floor => "/reg",
    };
    Box::pin(async move {
        let op = Single {
            build: Box::new(move |seq| {
                let body = json!({
                    "client_name": format!("bench app {seq}"),
                    "redirect_uris": ["https://app.bench.example/callback"],
                })
                .to_string();
                request(
                    Method::POST,
                    path,
                    Some("application/json"),
                    Bytes::from(body),
                )
            }),
            status: StatusCode::CREATED,
            body_contains: Some("\"client_id\"".to_owned()),
        };
        Ok(Arc::new(op) as Arc<dyn Operation>)
    })
}

/// A confidential client_credentials client of ours: (client_id, client_secret).
async fn ours_client(t: &Target) -> anyhow::Result<(String, String)> {
    let created: serde_json::Value = t
        .http
        .post(t.url("/oauth_clients"))
        .bearer_auth(&t.api_key)
        .json(&create_client_body(0))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = created["data"]["client_id"]
        .as_str()
        .context("no client_id")?;
    let secret = created["data"]["client_secret"]
        .as_str()
        .context("no client_secret")?;
    Ok((id.to_owned(), secret.to_owned()))
}

/// Our token endpoint; the signing algorithm is the scenario's `OAUTH_TOKEN_ALGORITHM`.
fn prepare_ours_token(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move {
        let (id, secret) = ours_client(t).await?;
        let form = "grant_type=client_credentials&scope=admin".to_owned();
        Ok(
            Arc::new(token_request("/oauth/token", basic(&id, &secret), form))
                as Arc<dyn Operation>,
        )
    })
}

/// Introspection of one of our JWT access tokens by the client it was issued to.
fn prepare_ours_introspect(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move {
        let (id, secret) = ours_client(t).await?;
        let token: serde_json::Value = t
            .http
            .post(t.url("/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let access = token["access_token"]
            .as_str()
            .context("no access_token from our server")?;
        if access.split('.').count() != 3 {
            bail!("our access token is not a JWT");
        }
        Ok(introspect_request(
            "/oauth/introspect",
            basic(&id, &secret),
            access,
        ))
    })
}

/// An introspection request with HTTP Basic client authentication; the token must be active.
fn introspect_request(path: &'static str, auth: HeaderValue, token: &str) -> Arc<dyn Operation> {
    let form = format!(
        "token={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    Arc::new(Single {
        build: Box::new(move |_| {
            let mut req = request(
                Method::POST,
                path,
                Some("application/x-www-form-urlencoded"),
                Bytes::from(form.clone()),
            );
            req.headers_mut()
                .insert(header::AUTHORIZATION, auth.clone());
            req
        }),
        status: StatusCode::OK,
        body_contains: Some("\"active\":true".to_owned()),
    })
}

/// RFC 7636 Appendix B.
const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CODE_REDIRECT: &str = "https://app.bench.example/callback";

/// The authorization code flow of one confidential client (PKCE required) for the benchmark
/// user, who approves with the API key (as a consent front end would).
struct CodeFlow {
    client_id: String,
    client_auth: HeaderValue,
    user_auth: HeaderValue,
}

impl CodeFlow {
    async fn new(t: &Target) -> anyhow::Result<Self> {
        let created: serde_json::Value = t
            .http
            .post(t.url("/oauth_clients"))
            .bearer_auth(&t.api_key)
            .json(&json!({
                "name": "bench code client",
                "client_type": "confidential",
                "allowed_grant_types": ["authorization_code", "refresh_token"],
                "allowed_scopes": ["admin"],
                "redirect_uris": [CODE_REDIRECT],
                "require_pkce": true,
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["data"]["client_id"]
            .as_str()
            .context("no client_id")?;
        let secret = created["data"]["client_secret"]
            .as_str()
            .context("no client_secret")?;
        Ok(Self {
            client_id: id.to_owned(),
            client_auth: basic(id, secret),
            user_auth: bearer(&t.api_key),
        })
    }

    /// One whole flow; the token response.
    async fn flow(&self, conn: &mut Connection, seq: u64) -> Result<serde_json::Value, String> {
        // 1. The authorization request: a consent token in the redirect to the consent page.
        let state = format!("s{seq}");
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", CODE_REDIRECT)
            .append_pair("scope", "admin")
            .append_pair("state", &state)
            .append_pair("code_challenge", PKCE_CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let mut req = request(
            Method::GET,
            &format!("/oauth/authorize?{query}"),
            None,
            Bytes::new(),
        );
        req.headers_mut()
            .insert(header::AUTHORIZATION, self.user_auth.clone());
        let (status, headers, body) = conn.exchange(req).await?;
        check(status, &body, StatusCode::FOUND, None)?;
        let location = headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let consent_token = query_param(location, "consent_token")
            .ok_or_else(|| format!("authorize: no consent_token in {location:?}"))?;

        // 2. The user approves: the redirect back to the client carries the code.
        let body = json!({"allowed": true, "consent_token": consent_token}).to_string();
        let mut req = request(
            Method::POST,
            "/oauth/grants",
            Some("application/json"),
            Bytes::from(body),
        );
        req.headers_mut()
            .insert(header::AUTHORIZATION, self.user_auth.clone());
        let (status, body) = conn.send(req).await?;
        check(status, &body, StatusCode::OK, Some("\"redirect_uri\""))?;
        let decided: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("grants: {e}"))?;
        let back = decided["redirect_uri"].as_str().unwrap_or("");
        if query_param(back, "state").as_deref() != Some(state.as_str()) {
            return Err(format!("grants: state not echoed in {back:?}"));
        }
        let code =
            query_param(back, "code").ok_or_else(|| format!("grants: no code in {back:?}"))?;

        // 3. The client redeems the code with its secret and the PKCE verifier.
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", &code)
            .append_pair("redirect_uri", CODE_REDIRECT)
            .append_pair("code_verifier", PKCE_VERIFIER)
            .finish();
        token_exchange(conn, &self.client_auth, form).await
    }
}

/// POST /oauth/token with the client's Basic credentials; the token response, which must hold
/// an access token and a refresh token.
async fn token_exchange(
    conn: &mut Connection,
    client_auth: &HeaderValue,
    form: String,
) -> Result<serde_json::Value, String> {
    let mut req = request(
        Method::POST,
        "/oauth/token",
        Some("application/x-www-form-urlencoded"),
        Bytes::from(form),
    );
    req.headers_mut()
        .insert(header::AUTHORIZATION, client_auth.clone());
    let (status, body) = conn.send(req).await?;
    check(status, &body, StatusCode::OK, Some("\"refresh_token\""))?;
    let tokens: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("token: {e}"))?;
    if tokens["access_token"].as_str().is_none_or(str::is_empty) {
        return Err("token: no access_token".to_owned());
    }
    Ok(tokens)
}

fn query_param(url: &str, key: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[async_trait::async_trait]
impl Operation for CodeFlow {
    async fn run(&self, conn: &mut Connection, seq: u64) -> Result<(), String> {
        self.flow(conn, seq).await.map(drop)
    }
}

fn prepare_ours_code_flow(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move { Ok(Arc::new(CodeFlow::new(t).await?) as Arc<dyn Operation>) })
}

/// Refresh-token rotation: each operation takes a current refresh token from the pool,
/// redeems it, and puts the new one back. The pool starts empty; an operation that finds it
/// empty first runs a code flow for a new chain (once per connection, in the warm-up).
struct RefreshRotation {
    flow: CodeFlow,
    current: Mutex<Vec<String>>,
}

impl RefreshRotation {
    fn take(&self) -> Option<String> {
        match self.current.lock() {
            Ok(mut g) => g.pop(),
            Err(p) => p.into_inner().pop(),
        }
    }

    fn put(&self, token: String) {
        match self.current.lock() {
            Ok(mut g) => g.push(token),
            Err(p) => p.into_inner().push(token),
        }
    }
}

fn refresh_token_of(tokens: &serde_json::Value) -> Result<String, String> {
    tokens["refresh_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "token: no refresh_token".to_owned())
}

#[async_trait::async_trait]
impl Operation for RefreshRotation {
    async fn run(&self, conn: &mut Connection, seq: u64) -> Result<(), String> {
        let current = match self.take() {
            Some(t) => t,
            None => refresh_token_of(&self.flow.flow(conn, seq).await?)?,
        };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", &current)
            .finish();
        let tokens = token_exchange(conn, &self.flow.client_auth, form).await?;
        let next = refresh_token_of(&tokens)?;
        if next == current {
            return Err("refresh: the refresh token was not rotated".to_owned());
        }
        self.put(next);
        Ok(())
    }
}

fn prepare_ours_refresh(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move {
        Ok(Arc::new(RefreshRotation {
            flow: CodeFlow::new(t).await?,
            current: Mutex::new(Vec::new()),
        }) as Arc<dyn Operation>)
    })
}

/// The peer's resource servers (bench/oidc-provider/provider.js): the default one signs ES256.
const PEER_RESOURCE_EDDSA: &str = "https://api.bench.example/eddsa";
const PEER_RESOURCE_RS256: &str = "https://api.bench.example/rs256";
const PEER_RESOURCE_OPAQUE: &str = "https://api.bench.example/opaque";

fn peer_credentials(t: &Target) -> anyhow::Result<HeaderValue> {
    let (id, secret) = t.peer_client.as_ref().context("the peer's client")?;
    Ok(basic(id, secret))
}

/// A client_credentials token request with HTTP Basic client authentication.
fn token_request(path: &'static str, auth: HeaderValue, form: String) -> Single {
    Single {
        build: Box::new(move |_| {
            let mut req = request(
                Method::POST,
                path,
                Some("application/x-www-form-urlencoded"),
                Bytes::from(form.clone()),
            );
            req.headers_mut()
                .insert(header::AUTHORIZATION, auth.clone());
            req
        }),
        status: StatusCode::OK,
        body_contains: Some("\"access_token\"".to_owned()),
    }
}

fn peer_token(t: &Target, resource: Option<&str>) -> anyhow::Result<Arc<dyn Operation>> {
    let mut form = "grant_type=client_credentials&scope=api%3Aread".to_owned();
    if let Some(r) = resource {
        form.push_str("&resource=");
        form.extend(url::form_urlencoded::byte_serialize(r.as_bytes()));
    }
    Ok(Arc::new(token_request(
        "/token",
        peer_credentials(t)?,
        form,
    )))
}

fn prepare_peer_token_es256(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move { peer_token(t, None) })
}

/// The floor's token request is the peer's default one (ES256), at the same path.
fn prepare_floor_token(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move { peer_token(t, None) })
}

fn prepare_peer_token_eddsa(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move { peer_token(t, Some(PEER_RESOURCE_EDDSA)) })
}

fn prepare_peer_token_rs256(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move { peer_token(t, Some(PEER_RESOURCE_RS256)) })
}

fn prepare_peer_introspect(t: &Target) -> BoxFuture<'_, anyhow::Result<Arc<dyn Operation>>> {
    Box::pin(async move {
        let (id, secret) = t.peer_client.clone().context("the peer's client")?;
        let token: serde_json::Value = t
            .http
            .post(t.url("/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "api:read"),
                ("resource", PEER_RESOURCE_OPAQUE),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let access = token["access_token"]
            .as_str()
            .context("no access_token from the peer")?;
        Ok(introspect_request(
            "/token/introspection",
            basic(&id, &secret),
            access,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_not_all() {
        let mut names = names();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(!names.contains(&"all"));
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let v = basic("a b", "c:d");
        let b64 = base64::engine::general_purpose::STANDARD.encode("a+b:c%3Ad");
        assert_eq!(v.to_str().ok(), Some(format!("Basic {b64}").as_str()));
    }
}
