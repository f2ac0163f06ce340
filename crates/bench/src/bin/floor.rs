//! `floor`: the least a server can do for two of the benchmark's scenarios, as a yardstick for
//! oauth-server's own cost (`oauth-bench <scenario> --floor`; BENCHMARKS.md).
//!
//! A plain axum server on tokio, with no middleware, no database, no rate limits and no log:
//!
//! - `GET /healthz` answers `{"status":"ok"}`: loopback TCP, HTTP/1.1 and routing.
//! - `POST /token` does a client_credentials grant's necessary work: it parses the form, checks
//!   HTTP Basic credentials against a SHA-256 digest of the secret (in constant time), checks the
//!   requested scope, builds RFC 9068 claims with a random `jti`, signs them ES256 with aws-lc-rs
//!   (the key parsed once, at start) and answers the token as JSON, `Cache-Control: no-store`.
//!
//! What oauth-server does on top of this is its own: the client read from the database (so that
//! a deleted client or a new secret counts at once), rate limits, request tracing, CORS, limits on
//! connections and bodies, the error contract. The client is `BENCH_CLIENT_ID` with the secret
//! `BENCH_CLIENT_SECRET`, both of characters that form-encoding leaves alone (the harness makes
//! them so), so the credentials are compared as sent. It prints `floor listening on <addr>`
//! once it accepts connections on 127.0.0.1.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// The scope the benchmark asks for, and the only one the floor's client may have.
const SCOPE: &str = "api:read";
const ISSUER: &str = "http://127.0.0.1";
const LIFETIME_S: u64 = 3600;

struct Floor {
    client_id: String,
    secret_digest: digest::Digest,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// `base64url(header) + "."`, encoded once.
    header_dot: String,
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    scope: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
    scope: &'a str,
}

#[derive(Serialize)]
struct TokenAnswer<'a> {
    access_token: String,
    token_type: &'a str,
    expires_in: u64,
    scope: &'a str,
}

fn refuse(status: StatusCode, error: &'static str) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}

/// The Basic credentials, or none when the header is missing or malformed.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Equal bytes, in time that depends on the length only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn token(
    State(floor): State<Arc<Floor>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let Some((id, secret)) = basic(&headers) else {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    let presented = digest::digest(&digest::SHA256, secret.as_bytes());
    if id != floor.client_id || !same(presented.as_ref(), floor.secret_digest.as_ref()) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.grant_type != "client_credentials" {
        return refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    if form.scope.as_deref().is_some_and(|s| s != SCOPE) {
        return refuse(StatusCode::BAD_REQUEST, "invalid_scope");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut jti = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut jti);
    let claims = Claims {
        iss: ISSUER,
        sub: &id,
        aud: ISSUER,
        client_id: &id,
        iat: now,
        exp: now + LIFETIME_S,
        jti: URL_SAFE_NO_PAD.encode(jti),
        scope: SCOPE,
    };
    let Ok(claims) = serde_json::to_vec(&claims) else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    let mut jwt = floor.header_dot.clone();
    URL_SAFE_NO_PAD.encode_string(claims, &mut jwt);
    let Ok(signature) = floor.key.sign(&floor.rng, jwt.as_bytes()) else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jwt);
    let answer = TokenAnswer {
        access_token: jwt,
        token_type: "Bearer",
        expires_in: LIFETIME_S,
        scope: SCOPE,
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let client_id = std::env::var("BENCH_CLIENT_ID").context("BENCH_CLIENT_ID")?;
    let secret = std::env::var("BENCH_CLIENT_SECRET").context("BENCH_CLIENT_SECRET")?;
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("generating the signing key"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("loading the signing key"))?;
    // A key id as long as a typical one, derived from the public key.
    let kid = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, key.public_key().as_ref()));
    let header = serde_json::json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
    let floor = Arc::new(Floor {
        client_id,
        secret_digest: digest::digest(&digest::SHA256, secret.as_bytes()),
        key,
        rng,
        header_dot: format!("{}.", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?)),
    });
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/token", post(token))
        .with_state(floor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("floor listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
