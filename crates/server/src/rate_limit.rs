//! Request-rate limits (docs/rate-limits.md).
//!
//! Each limit is a token bucket per key: it holds at most `requests` tokens and refills at
//! `requests / window_secs` tokens per second, so a key may send `requests` at once and then
//! `requests` per window. With the `memory` backend the buckets live in memory, in shards of
//! `Mutex<HashMap>` (a check locks one shard for a few nanoseconds), so the limits are per
//! server instance. With the `redis` backend the same bucket is kept in Redis, updated by one
//! Lua script per check (atomic), and shared by every instance using that Redis and key
//! prefix; when Redis cannot answer, the check falls back to the in-memory bucket (fail open to
//! per-instance limits) and a warning is logged.
//!
//! Keys are SHA-256 digests of a kind-prefixed identifier: a bearer credential is never kept in
//! memory, and an attacker-chosen client_id cannot make an entry large. Time comes from the
//! application clock, so tests move it by hand.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use oauth_core::UnixSeconds;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};

use crate::config::{RateLimit, RateLimitBackend, RateLimitsConfig};
use crate::error::ApiError;

const SHARDS: usize = 16;
/// Past this many keys in one shard, idle buckets are swept at once; if the shard is still
/// this full, it is cleared (the per-IP limit still holds for whoever floods it with keys).
const MAX_KEYS_PER_SHARD: usize = 16_384;

type Key = [u8; 32];

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: UnixSeconds,
}

#[derive(Debug, Default)]
struct Shard {
    buckets: HashMap<Key, Bucket>,
    last_sweep: UnixSeconds,
}

/// One limit (for example "per client_id at the token endpoint") over all its keys.
#[derive(Debug)]
pub struct Limiter {
    /// Names the limit in Redis keys.
    name: &'static str,
    limit: RateLimit,
    shards: Vec<Mutex<Shard>>,
}

impl Limiter {
    pub fn new(name: &'static str, limit: RateLimit) -> Self {
        Self {
            name,
            limit,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    /// Takes one token for `key`; `Err(seconds)` when the bucket is empty, with the whole
    /// seconds until a token is back (1..=60, the `Retry-After` value).
    fn check(&self, key: &Key, now: UnixSeconds) -> Result<(), u64> {
        self.take(key, now, false)
    }

    /// Spends one token for `key` even when the bucket is empty: the bucket goes into debt (down
    /// to [`MAX_DEBT_WINDOWS`] times minus its capacity) and refuses until the debt is paid
    /// back. For a budget spent by failures after a [`Limiter::peek`]: the failures that passed
    /// the look together are all charged, one token each, so that they cannot pass again at
    /// every token that comes back, nor as a like wave once a capacity's debt is paid. Answers
    /// as [`Limiter::check`] does.
    fn spend(&self, key: &Key, now: UnixSeconds) -> Result<(), u64> {
        self.take(key, now, true)
    }

    fn take(&self, key: &Key, now: UnixSeconds, into_debt: bool) -> Result<(), u64> {
        if self.limit.is_off() {
            return Ok(());
        }
        let (capacity, rate) = self.shape();
        let mut shard = self.shard(key);
        let window = i64::from(self.limit.window_secs);
        if now - shard.last_sweep >= window || shard.buckets.len() >= MAX_KEYS_PER_SHARD {
            // A full bucket is the same as no entry (one untouched for a whole window is full
            // again, unless it was in debt).
            shard
                .buckets
                .retain(|_, b| refilled(b, now, capacity, rate) < capacity);
            if shard.buckets.len() >= MAX_KEYS_PER_SHARD {
                shard.buckets.clear();
            }
            shard.last_sweep = now;
        }
        let bucket = shard.buckets.entry(*key).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        bucket.tokens = refilled(bucket, now, capacity, rate);
        bucket.updated = now.max(bucket.updated);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            if into_debt {
                bucket.tokens = (bucket.tokens - 1.0).max(-capacity * MAX_DEBT_WINDOWS);
            }
            Err(wait_secs(bucket.tokens, rate))
        }
    }

    /// Whether [`Limiter::check`] would take a token for `key` now, changing nothing (an
    /// absent key stays absent): `Err(seconds)` as there.
    fn peek(&self, key: &Key, now: UnixSeconds) -> Result<(), u64> {
        if self.limit.is_off() {
            return Ok(());
        }
        let (capacity, rate) = self.shape();
        let shard = self.shard(key);
        match shard.buckets.get(key) {
            Some(bucket) => {
                let tokens = refilled(bucket, now, capacity, rate);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(wait_secs(tokens, rate))
                }
            }
            None => Ok(()),
        }
    }

    /// Capacity and refill rate (tokens per second).
    fn shape(&self) -> (f64, f64) {
        let capacity = f64::from(self.limit.requests);
        (capacity, capacity / f64::from(self.limit.window_secs))
    }

    fn shard(&self, key: &Key) -> std::sync::MutexGuard<'_, Shard> {
        // A poisoned shard only means another request panicked mid-update; the map is still
        // a valid map of buckets.
        match self.shards[usize::from(key[0]) % SHARDS].lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The tokens `bucket` holds at `now`: refilled for the time elapsed, at most `capacity`.
fn refilled(bucket: &Bucket, now: UnixSeconds, capacity: f64, rate: f64) -> f64 {
    let elapsed = (now - bucket.updated).max(0) as f64;
    (bucket.tokens + elapsed * rate).min(capacity)
}

/// How deep a bucket may go into debt, in capacities: far more than an address's requests in
/// flight at once (`server.max_connections_per_ip`) overdraw a budget by, so each failure of a
/// wave is paid for (when the debt stopped at one capacity, a wave of 120 failures against a
/// budget of 30 passed again once 31 tokens were back, four times the budget's pace), and a
/// floor all the same, should a bucket be spent without a look before it.
const MAX_DEBT_WINDOWS: f64 = 16.0;

/// Whole seconds until a bucket holding `tokens` (< 1) holds one, 1..=60.
fn wait_secs(tokens: f64, rate: f64) -> u64 {
    (((1.0 - tokens) / rate).ceil() as u64).clamp(1, 60)
}

/// The token bucket of [`Limiter::check`], [`Limiter::spend`] and [`Limiter::peek`] as one
/// atomic Redis script. KEYS[1] is the bucket (a hash of `tokens` and `updated`); ARGV is
/// capacity, window in seconds, now (Unix seconds, the application clock), and `1` to take a
/// token, `2` to spend one (into debt, down to 16 times minus the capacity, when the bucket is
/// empty: `MAX_DEBT_WINDOWS`) or
/// `0` to only look. Returns 0 when a token was (or would be) taken, else the seconds until one
/// is back. A bucket expires when it would be full again (an absent bucket is full); looking
/// writes nothing (an absent bucket stays absent).
const BUCKET_SCRIPT: &str = r#"
local capacity = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local take = ARGV[4] == '1' or ARGV[4] == '2'
local into_debt = ARGV[4] == '2'
local rate = capacity / window
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = capacity
  updated = now
end
local elapsed = now - updated
if elapsed < 0 then elapsed = 0 end
tokens = math.min(tokens + elapsed * rate, capacity)
if now > updated then updated = now end
local wait = 0
if tokens >= 1 then
  if take then tokens = tokens - 1 end
else
  if into_debt then tokens = math.max(tokens - 1, -capacity * 16) end
  wait = math.ceil((1 - tokens) / rate)
end
if take then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(updated))
  redis.call('EXPIRE', KEYS[1], math.max(1, math.ceil((capacity - tokens) / rate)))
end
return wait
"#;

/// How long one Redis round trip (or connection attempt) may take before the check falls
/// back to the in-memory bucket.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, Redis is not asked again for this long (requests use the in-memory buckets).
const REDIS_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A connection manager that connects on first use, one attempt per (re)connection: every
/// attempt and every reply is bounded by [`REDIS_TIMEOUT`].
fn connection_manager(client: &redis::Client) -> redis::RedisResult<ConnectionManager> {
    client.get_connection_manager_lazy(
        ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT)),
    )
}

/// The Redis side of the `redis` backend.
struct SharedBuckets {
    client: redis::Client,
    /// One multiplexed connection; it reconnects by itself after an I/O error. A manager keeps
    /// any other failure of its connection attempt (a refused `AUTH` or `SELECT`), so any other
    /// failure replaces it.
    connection: Mutex<ConnectionManager>,
    /// [`BUCKET_SCRIPT`], run by SHA-1 (`EVALSHA`; loaded again if Redis lost it).
    script: redis::Script,
    prefix: String,
    started: Instant,
    /// Milliseconds after `started` before which Redis is not asked (after a failure).
    skip_until_ms: AtomicU64,
    /// Whether the last attempt failed; a change is logged once.
    down: AtomicBool,
}

impl std::fmt::Debug for SharedBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBuckets")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl SharedBuckets {
    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn available(&self) -> bool {
        self.elapsed_ms() >= self.skip_until_ms.load(Ordering::Relaxed)
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, ConnectionManager> {
        // A poisoned lock still holds a usable manager.
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one token from the shared bucket (only looks with `op` [`Op::Peek`]): `Ok(0)`
    /// when taken (or there to take), `Ok(n)` when empty (`n` seconds until a token is back).
    async fn run(
        &self,
        limiter: &Limiter,
        key: &Key,
        now: UnixSeconds,
        op: Op,
    ) -> redis::RedisResult<i64> {
        let mut redis_key = String::with_capacity(self.prefix.len() + limiter.name.len() + 65);
        redis_key.push_str(&self.prefix);
        redis_key.push_str(limiter.name);
        redis_key.push(':');
        for b in key {
            redis_key.push_str(&format!("{b:02x}"));
        }
        let mut connection = self.connection().clone();
        self.script
            .key(redis_key)
            .arg(limiter.limit.requests)
            .arg(limiter.limit.window_secs)
            .arg(now)
            .arg(match op {
                Op::Take => "1",
                Op::Spend => "2",
                Op::Peek => "0",
            })
            .invoke_async(&mut connection)
            .await
    }

    fn succeeded(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("rate limits: Redis answers again; the limits are shared again");
        }
    }

    fn failed(&self, error: &redis::RedisError) {
        if !error.is_io_error() {
            if let Ok(fresh) = connection_manager(&self.client) {
                *self.connection() = fresh;
            }
        }
        let until = self
            .elapsed_ms()
            .saturating_add(REDIS_RETRY_AFTER.as_millis() as u64);
        self.skip_until_ms.store(until, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                %error,
                "rate limits: Redis is unreachable; falling back to per-instance limits until it answers"
            );
        } else {
            tracing::debug!(%error, "rate limits: Redis still unreachable");
        }
    }
}

/// What a check does to its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Take a token, or say how long until there is one.
    Take,
    /// Take a token even when there is none: the bucket goes into debt (see
    /// [`Limiter::spend`]).
    Spend,
    /// Only say whether there is a token (a budget spent only by failures is looked at
    /// before the attempt and spent after it fails).
    Peek,
}

/// Every limit of one server instance.
#[derive(Debug)]
pub struct RateLimiters {
    management_per_key: Limiter,
    management_per_ip: Limiter,
    oauth_per_client: Limiter,
    client_auth_failures_per_ip: Limiter,
    client_auth_failures_per_client_ip: Limiter,
    register_per_ip: Limiter,
    register_per_ip_daily: Limiter,
    documents_per_ip: Limiter,
    login_per_ip: Limiter,
    authorize_per_ip: Limiter,
    /// `Some` with the `redis` backend.
    shared: Option<SharedBuckets>,
}

impl RateLimiters {
    /// The limiters of `c`. Does not connect to Redis: the first check does (and falls back to
    /// the in-memory buckets while Redis does not answer). With the `redis` backend it must be
    /// called inside the Tokio runtime, which runs the connection's tasks.
    pub fn new(c: &RateLimitsConfig) -> Result<Self, String> {
        let shared = match &c.backend {
            RateLimitBackend::Memory => None,
            RateLimitBackend::Redis { url, key_prefix } => {
                let client = crate::redis_url::redis_client(url)?;
                Some(SharedBuckets {
                    connection: Mutex::new(connection_manager(&client).map_err(|e| e.to_string())?),
                    client,
                    script: redis::Script::new(BUCKET_SCRIPT),
                    prefix: key_prefix.clone(),
                    started: Instant::now(),
                    skip_until_ms: AtomicU64::new(0),
                    down: AtomicBool::new(false),
                })
            }
        };
        Ok(Self {
            management_per_key: Limiter::new("management_per_key", c.management_per_key),
            management_per_ip: Limiter::new("management_per_ip", c.management_per_ip),
            oauth_per_client: Limiter::new("oauth_per_client", c.oauth_per_client),
            client_auth_failures_per_ip: Limiter::new(
                "client_auth_failures_per_ip",
                c.client_auth_failures_per_ip,
            ),
            client_auth_failures_per_client_ip: Limiter::new(
                "client_auth_failures_per_client_ip",
                c.client_auth_failures_per_client_ip,
            ),
            register_per_ip: Limiter::new("register_per_ip", c.register_per_ip),
            register_per_ip_daily: Limiter::new("register_per_ip_daily", c.register_per_ip_daily),
            documents_per_ip: Limiter::new("documents_per_ip", c.documents_per_ip),
            login_per_ip: Limiter::new("login_per_ip", c.login_per_ip),
            authorize_per_ip: Limiter::new("authorize_per_ip", c.authorize_per_ip),
            shared,
        })
    }

    /// Takes a token from `limiter`'s bucket for `key`: in Redis with the `redis` backend
    /// (in memory when Redis does not answer), else in memory.
    async fn check_or_429(
        &self,
        limiter: &Limiter,
        key: &Key,
        now: UnixSeconds,
        what: &str,
    ) -> Result<(), ApiError> {
        self.run(limiter, key, now, Op::Take)
            .await
            .map_err(|retry_after| {
                crate::metrics::rate_limited(limiter.name);
                limited(what, retry_after)
            })
    }

    /// `op` on `limiter`'s bucket for `key`, wherever the backend keeps it; `Err(seconds)`
    /// when the bucket is empty.
    async fn run(&self, limiter: &Limiter, key: &Key, now: UnixSeconds, op: Op) -> Result<(), u64> {
        if limiter.limit.is_off() {
            return Ok(());
        }
        let in_memory = || match op {
            Op::Take => limiter.check(key, now),
            Op::Spend => limiter.spend(key, now),
            Op::Peek => limiter.peek(key, now),
        };
        match &self.shared {
            // Boxed: the Redis call's state would otherwise be carried (and copied) in the
            // future of every check, in memory too.
            Some(shared) if shared.available() => {
                match Box::pin(shared.run(limiter, key, now, op)).await {
                    Ok(0) => {
                        shared.succeeded();
                        Ok(())
                    }
                    Ok(wait) => {
                        shared.succeeded();
                        Err(u64::try_from(wait).unwrap_or(1).clamp(1, 60))
                    }
                    Err(error) => {
                        shared.failed(&error);
                        in_memory()
                    }
                }
            }
            _ => in_memory(),
        }
    }

    /// Before client authentication at the token, introspection and revocation endpoints:
    /// 429 when the client address, or this client_id from this address, has used its budget
    /// of failed authentications. Nothing is spent here (see
    /// [`RateLimiters::client_authentication_failed`]), so a client that authenticates is
    /// never limited by someone else's failures from another address.
    pub async fn client_authentication_allowed(
        &self,
        client_id: &str,
        ip: IpAddr,
        now: UnixSeconds,
    ) -> Result<(), ApiError> {
        let ip = ip_key(ip);
        let per_ip = self
            .run(&self.client_auth_failures_per_ip, &ip, now, Op::Peek)
            .await;
        let pair = &self.client_auth_failures_per_client_ip;
        let per_pair = self
            .run(pair, &client_ip_key(client_id, &ip), now, Op::Peek)
            .await;
        // Both looked at: `Retry-After` is the longer of the refusing budgets' waits, so that a
        // client that waits that long is not refused again by the other.
        match (per_ip, per_pair) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(ip_wait), pair_wait) if ip_wait >= pair_wait.err().unwrap_or(0) => {
                crate::metrics::rate_limited(self.client_auth_failures_per_ip.name);
                Err(limited("client authentication failures per IP", ip_wait))
            }
            (_, pair_wait) => {
                crate::metrics::rate_limited(pair.name);
                Err(limited(
                    "client authentication failures per client_id and IP",
                    pair_wait.err().unwrap_or(1),
                ))
            }
        }
    }

    /// Before a Bearer credential stands in for client authentication (introspection): 429 when
    /// the client address has used its budget of failed client authentications. A made-up
    /// credential has no bucket of its own worth looking at, so only the address's is.
    pub async fn bearer_authentication_allowed(
        &self,
        ip: IpAddr,
        now: UnixSeconds,
    ) -> Result<(), ApiError> {
        self.run(
            &self.client_auth_failures_per_ip,
            &ip_key(ip),
            now,
            Op::Peek,
        )
        .await
        .map_err(|wait| {
            crate::metrics::rate_limited(self.client_auth_failures_per_ip.name);
            limited("client authentication failures per IP", wait)
        })
    }

    /// After a failed client authentication: spends one of the address's failures and, for a
    /// client that exists (`Some` client_id), one of that client_id's from this address. An
    /// unknown client_id spends the address's only, so that made-up ids make no new buckets.
    pub async fn client_authentication_failed(
        &self,
        existing_client_id: Option<&str>,
        ip: IpAddr,
        now: UnixSeconds,
    ) {
        // An empty bucket here means that concurrent failures got past the look before it:
        // each is charged all the same (the bucket goes into debt), so that they are paid back
        // before the look lets any more through, not again at every token that comes back.
        let ip = ip_key(ip);
        let _ = self
            .run(&self.client_auth_failures_per_ip, &ip, now, Op::Spend)
            .await;
        if let Some(client_id) = existing_client_id {
            let _ = self
                .run(
                    &self.client_auth_failures_per_client_ip,
                    &client_ip_key(client_id, &ip),
                    now,
                    Op::Spend,
                )
                .await;
        }
    }

    /// Token, introspection and revocation, once the client has authenticated with its secret:
    /// per client_id. Only a holder of the secret can spend this budget.
    pub async fn oauth_client(&self, client_id: &str, now: UnixSeconds) -> Result<(), ApiError> {
        self.check_or_429(
            &self.oauth_per_client,
            &client_key(client_id),
            now,
            "client_id",
        )
        .await
    }

    /// A look at [`RateLimiters::oauth_client`]'s budget without spending it: 429 when the
    /// client has none left. Taken before a signed client assertion's `jti` is stored, so that
    /// a client over its budget (an attacker's own, sending valid assertions) writes nothing.
    pub async fn oauth_client_allowed(
        &self,
        client_id: &str,
        now: UnixSeconds,
    ) -> Result<(), ApiError> {
        self.run(
            &self.oauth_per_client,
            &client_key(client_id),
            now,
            Op::Peek,
        )
        .await
        .map_err(|wait| {
            crate::metrics::rate_limited(self.oauth_per_client.name);
            limited("client_id", wait)
        })
    }

    /// The same budget for a public client, which authenticates by its id alone (anyone may
    /// send it): per client_id and client address, so that one address cannot spend the
    /// budget of the client's every user.
    pub async fn oauth_public_client(
        &self,
        client_id: &str,
        ip: IpAddr,
        now: UnixSeconds,
    ) -> Result<(), ApiError> {
        self.check_or_429(
            &self.oauth_per_client,
            &client_ip_key(client_id, &ip_key(ip)),
            now,
            "public client_id per IP",
        )
        .await
    }

    /// The management API's per-credential limit (also used for introspection by a Bearer API
    /// key or access token): keyed by the credential's SHA-256, before it is checked.
    pub async fn bearer(&self, credential: &str, now: UnixSeconds) -> Result<(), ApiError> {
        self.check_or_429(
            &self.management_per_key,
            &digest(b"bearer", credential.as_bytes()),
            now,
            "management per key",
        )
        .await
    }

    /// `POST /oauth/register` and RFC 7592 calls, per client address, before anything is read.
    pub async fn register_ip(&self, ip: IpAddr, now: UnixSeconds) -> Result<(), ApiError> {
        self.check_or_429(
            &self.register_per_ip,
            &ip_key(ip),
            now,
            "registration per IP",
        )
        .await
    }

    /// Before a client is stored for the address (a registration, or a metadata document's
    /// client named for the first time by a signed-in user): is some of its day's budget
    /// (`register_per_ip_daily`) left? Only looks: [`RateLimiters::client_stored`] spends, once
    /// the client is stored, so that refused and unauthenticated requests spend nothing. `Err`
    /// is the seconds to wait.
    pub async fn storing_client_allowed(&self, ip: IpAddr, now: UnixSeconds) -> Result<(), u64> {
        let result = self
            .run(&self.register_per_ip_daily, &ip_key(ip), now, Op::Peek)
            .await;
        if result.is_err() {
            crate::metrics::rate_limited(self.register_per_ip_daily.name);
            tracing::debug!(limit = "register_per_ip_daily", "rate limit reached");
        }
        result
    }

    /// A client was stored for the address: one of its day's budget is spent (into debt when
    /// stores that looked at once outran it, so that they are paid back).
    pub async fn client_stored(&self, ip: IpAddr, now: UnixSeconds) {
        let _ = self
            .run(&self.register_per_ip_daily, &ip_key(ip), now, Op::Spend)
            .await;
    }

    pub async fn login_ip(&self, ip: IpAddr, now: UnixSeconds) -> Result<(), ApiError> {
        self.check_or_429(&self.login_per_ip, &ip_key(ip), now, "login per IP")
            .await
    }

    /// `GET /oauth/authorize`, per client address. `Err` is the answer when the address is
    /// over its limit: a page (this is a browser route), 429 with `Retry-After`.
    pub async fn authorize_ip(&self, ip: IpAddr, now: UnixSeconds) -> Result<(), Response> {
        self.page_or_429(
            &self.authorize_per_ip,
            ip,
            now,
            "Too many sign-in requests came from your network.",
        )
        .await
    }

    /// `GET /oauth/authorize` naming a Client ID Metadata Document that is neither stored nor
    /// cached, for the request that fetches it (`documents_per_ip`): each new URL is a request
    /// to a host the caller names. A page on refusal, as [`RateLimiters::authorize_ip`].
    pub async fn document_ip(&self, ip: IpAddr, now: UnixSeconds) -> Result<(), Response> {
        self.page_or_429(
            &self.documents_per_ip,
            ip,
            now,
            "Too many new applications were named from your network.",
        )
        .await
    }

    /// The 429 page of a sign-in request refused for `wait` seconds.
    pub fn page_429(what: &str, wait: u64) -> Response {
        let wait = wait.clamp(1, 60);
        let mut page = crate::html::message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            &format!("{what} Wait {wait} seconds, then try again."),
        );
        let h = page.headers_mut();
        h.insert(header::RETRY_AFTER, HeaderValue::from(wait));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        page
    }

    async fn page_or_429(
        &self,
        limiter: &Limiter,
        ip: IpAddr,
        now: UnixSeconds,
        what: &str,
    ) -> Result<(), Response> {
        match self.run(limiter, &ip_key(ip), now, Op::Take).await {
            Ok(()) => Ok(()),
            Err(wait) => {
                crate::metrics::rate_limited(limiter.name);
                tracing::debug!(limit = limiter.name, "rate limit reached");
                Err(Self::page_429(what, wait))
            }
        }
    }
}

/// The 429 of a limit named `what`.
fn limited(what: &str, retry_after: u64) -> ApiError {
    // Debug: a flood of refused requests must not become a flood of log lines; the
    // metric counts them (`oauth_rate_limited_total`).
    tracing::debug!(limit = what, "rate limit reached");
    ApiError::rate_limited(retry_after)
}

/// The bucket of an authenticated client's request budget (`oauth_per_client`).
fn client_key(client_id: &str) -> Key {
    digest(b"client", client_id.as_bytes())
}

fn digest(kind: &[u8], value: &[u8]) -> Key {
    digest_of_parts(kind, &[value])
}

/// The bucket name of `kind` over a value given in parts: SHA-256 of the kind, a zero byte and
/// the parts one after the other, the same as [`digest`] of their concatenation (the caller
/// makes the joined value unambiguous, for example with a fixed-length first part).
fn digest_of_parts(kind: &[u8], parts: &[&[u8]]) -> Key {
    let mut h = Sha256::new();
    h.update(kind);
    h.update([0u8]);
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// The bucket of a client address: an IPv4 address (also IPv4-mapped) as itself, an IPv6 address
/// by its /64 (`peer::address_key`).
pub(crate) fn ip_key(ip: IpAddr) -> Key {
    digest(b"ip", crate::peer::address_key(ip).as_bytes())
}

/// A client_id from one address (`ip`, the address's [`ip_key`]): the digest of `ip` and the
/// client_id, as [`digest`] makes it of `client-ip`. The address's digest has a fixed length, so
/// no two pairs give the same input. The caller passes the address's key it already has.
fn client_ip_key(client_id: &str, ip: &Key) -> Key {
    digest_of_parts(b"client-ip", &[ip, client_id.as_bytes()])
}

impl RateLimiters {
    /// The management API's limits: per client address, then per bearer credential (its
    /// SHA-256, before authentication, so that guessing API keys is limited as well).
    pub async fn management(
        &self,
        peer: Option<IpAddr>,
        credential: Option<&str>,
        now: UnixSeconds,
    ) -> Result<(), ApiError> {
        if let Some(ip) = peer {
            self.check_or_429(
                &self.management_per_ip,
                &ip_key(ip),
                now,
                "management per IP",
            )
            .await?;
        }
        if let Some(credential) = credential {
            self.bearer(credential, now).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills_at_the_rate() {
        let l = Limiter::new(
            "t",
            RateLimit {
                requests: 3,
                window_secs: 6,
            },
        );
        let k = digest(b"t", b"a");
        for _ in 0..3 {
            assert_eq!(l.check(&k, 100), Ok(()));
        }
        // One token every 2 s.
        assert_eq!(l.check(&k, 100), Err(2));
        assert_eq!(l.check(&k, 101), Err(1));
        assert_eq!(l.check(&k, 102), Ok(()));
        assert_eq!(l.check(&k, 102), Err(2));
        // Another key has its own bucket.
        assert_eq!(l.check(&digest(b"t", b"b"), 102), Ok(()));
    }

    #[test]
    fn peek_answers_as_check_would_and_changes_nothing() {
        let l = Limiter::new(
            "t",
            RateLimit {
                requests: 2,
                window_secs: 4,
            },
        );
        let k = digest(b"t", b"a");
        // An absent key has a token, and stays absent.
        for _ in 0..5 {
            assert_eq!(l.peek(&k, 100), Ok(()));
        }
        assert!(l
            .shards
            .iter()
            .all(|s| s.lock().unwrap().buckets.is_empty()));
        assert_eq!(l.check(&k, 100), Ok(()));
        assert_eq!(l.peek(&k, 100), Ok(()));
        assert_eq!(l.check(&k, 100), Ok(()));
        // Empty: peek gives check's wait, and does not spend what refills.
        assert_eq!(l.peek(&k, 100), Err(2));
        assert_eq!(l.peek(&k, 101), Err(1));
        assert_eq!(l.peek(&k, 102), Ok(()));
        assert_eq!(l.peek(&k, 102), Ok(()));
        assert_eq!(l.check(&k, 102), Ok(()));
        assert_eq!(l.check(&k, 102), Err(2));
        let off = Limiter::new(
            "t",
            RateLimit {
                requests: 0,
                window_secs: 0,
            },
        );
        assert_eq!(off.peek(&k, 1), Ok(()));
    }

    /// Failures that passed the look together are all charged, one token each: the bucket goes
    /// into debt and the look refuses until the debt is paid back, instead of letting another
    /// such wave through at every token that comes back. A sweep keeps a bucket in debt.
    #[test]
    fn spent_failures_past_the_look_leave_a_debt() {
        let l = Limiter::new(
            "t",
            RateLimit {
                requests: 3,
                window_secs: 6,
            },
        );
        let k = digest(b"t", b"a");
        assert_eq!(l.peek(&k, 100), Ok(()));
        for i in 0..10 {
            let spent = l.spend(&k, 100);
            assert_eq!(spent.is_ok(), i < 3, "{i}: {spent:?}");
        }
        // One token every 2 s: without the debt the look would pass again at 102. Seven tokens
        // owed: one is back at 116.
        assert_eq!(l.peek(&k, 102), Err(14));
        // Another key of the same shard, at a window's end, sweeps the shard.
        let same_shard = (0u32..)
            .map(|i| digest(b"t", &i.to_be_bytes()))
            .find(|o| *o != k && usize::from(o[0]) % SHARDS == usize::from(k[0]) % SHARDS)
            .unwrap();
        assert_eq!(l.check(&same_shard, 107), Ok(()));
        assert_eq!(l.peek(&k, 107), Err(9));
        assert_eq!(l.peek(&k, 115), Err(1));
        assert_eq!(l.peek(&k, 116), Ok(()));
        // Spending from a bucket that has tokens takes one, as `check` does.
        assert_eq!(l.spend(&k, 116), Ok(()));
        assert_eq!(l.peek(&k, 116), Err(2));
        // The debt has a floor: sixteen capacities.
        for _ in 0..1000 {
            let _ = l.spend(&k, 116);
        }
        assert_eq!(l.peek(&k, 116 + 2 * 48), Err(2));
        assert_eq!(l.peek(&k, 116 + 2 * 49), Ok(()));
    }

    #[test]
    fn client_ip_keys_differ_by_client_and_by_address() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let key = |c: &str, ip: IpAddr| client_ip_key(c, &ip_key(ip));
        assert_ne!(key("c1", a), key("c2", a));
        assert_ne!(key("c1", a), key("c1", b));
        assert_eq!(key("c1", a), key("c1", mapped));
        assert_ne!(key("c1", a), ip_key(a));
        // The same bucket names as before the address's key was passed in (buckets kept on
        // Redis survive an upgrade): the digest of `client-ip` over the address's key and the id.
        let mut value = ip_key(a).to_vec();
        value.extend_from_slice(b"c1");
        assert_eq!(key("c1", a), digest(b"client-ip", &value));
    }

    #[test]
    fn zero_is_off_and_retry_after_is_capped() {
        let off = Limiter::new(
            "t",
            RateLimit {
                requests: 0,
                window_secs: 1,
            },
        );
        let k = digest(b"t", b"a");
        for _ in 0..1000 {
            assert_eq!(off.check(&k, 1), Ok(()));
        }
        let slow = Limiter::new(
            "t",
            RateLimit {
                requests: 1,
                window_secs: 3600,
            },
        );
        assert_eq!(slow.check(&k, 1), Ok(()));
        assert_eq!(slow.check(&k, 1), Err(60));
    }

    #[test]
    fn idle_keys_are_swept() {
        let l = Limiter::new(
            "t",
            RateLimit {
                requests: 1,
                window_secs: 10,
            },
        );
        for i in 0u32..1000 {
            let _ = l.check(&digest(b"t", &i.to_be_bytes()), 0);
        }
        let _ = l.check(&digest(b"t", b"late"), 10);
        let total: usize = l
            .shards
            .iter()
            .map(|s| s.lock().map(|s| s.buckets.len()).unwrap_or(0))
            .sum();
        assert!(total < 1000, "{total} keys left");
    }

    fn test_redis_url() -> String {
        std::env::var("OAUTH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    fn redis_limits(prefix: &str) -> RateLimiters {
        redis_limits_at(&test_redis_url(), prefix)
    }

    fn redis_limits_at(url: &str, prefix: &str) -> RateLimiters {
        let url = url.to_owned();
        let config = RateLimitsConfig {
            oauth_per_client: RateLimit {
                requests: 3,
                window_secs: 6,
            },
            backend: RateLimitBackend::Redis {
                url,
                key_prefix: prefix.to_owned(),
            },
            ..RateLimitsConfig::default()
        };
        RateLimiters::new(&config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The Lua script's look (`0`) answers as the in-memory peek, and writes nothing: an
    /// absent bucket stays absent, an empty one is not spent or refilled by looking.
    #[tokio::test]
    async fn redis_peek_matches_the_memory_peek() {
        let prefix = format!("oauth-test:{}:", uuid::Uuid::new_v4());
        let l = redis_limits(&prefix);
        let shared = l.shared.as_ref().unwrap_or_else(|| panic!("redis backend"));
        let k = digest(b"t", b"peek");
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("{prefix}oauth_per_client:{hex}");
        let peek = |now| l.run(&l.oauth_per_client, &k, now, Op::Peek);
        for _ in 0..5 {
            assert_eq!(peek(100).await, Ok(()));
        }
        let mut con = test_connection(shared).await;
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&name)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(exists, 0, "looking created no bucket");
        for _ in 0..3 {
            assert_eq!(take(&l, &k, 100).await, Ok(()));
        }
        assert_eq!(peek(100).await, Err(2));
        assert_eq!(peek(101).await, Err(1));
        assert_eq!(peek(102).await, Ok(()));
        assert_eq!(peek(102).await, Ok(()));
        assert_eq!(take(&l, &k, 102).await, Ok(()));
        assert_eq!(peek(102).await, Err(2));
        assert!(!shared.down.load(Ordering::Relaxed), "Redis answered");
        let deleted: i64 = redis::cmd("DEL")
            .arg(&name)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(deleted, 1);
    }

    /// The Lua script's spend (`2`) leaves the debt the in-memory one does, and the bucket lives
    /// in Redis until it would be full again, not one window only.
    #[tokio::test]
    async fn redis_spend_matches_the_memory_spend() {
        let prefix = format!("oauth-test:{}:", uuid::Uuid::new_v4());
        let l = redis_limits(&prefix);
        let shared = l.shared.as_ref().unwrap_or_else(|| panic!("redis backend"));
        let k = digest(b"t", b"spend");
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("{prefix}oauth_per_client:{hex}");
        for i in 0..10 {
            let spent = l.run(&l.oauth_per_client, &k, 100, Op::Spend).await;
            assert_eq!(spent.is_ok(), i < 3, "{i}: {spent:?}");
        }
        let peek = |now| l.run(&l.oauth_per_client, &k, now, Op::Peek);
        assert_eq!(peek(102).await, Err(14));
        assert_eq!(peek(107).await, Err(9));
        assert_eq!(peek(115).await, Err(1));
        assert_eq!(peek(116).await, Ok(()));
        let mut con = test_connection(shared).await;
        let ttl: i64 = redis::cmd("TTL")
            .arg(&name)
            .query_async(&mut con)
            .await
            .unwrap();
        // From minus seven tokens to three at one every 2 s: 20 s.
        assert!((15..=20).contains(&ttl), "{ttl}");
        assert!(!shared.down.load(Ordering::Relaxed), "Redis answered");
        let deleted: i64 = redis::cmd("DEL")
            .arg(&name)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(deleted, 1);
    }

    /// A connection of the test's own to the Redis of `shared`.
    async fn test_connection(shared: &SharedBuckets) -> redis::aio::MultiplexedConnection {
        shared
            .client
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    async fn take(l: &RateLimiters, key: &Key, now: UnixSeconds) -> Result<(), u64> {
        match l.check_or_429(&l.oauth_per_client, key, now, "t").await {
            Ok(()) => Ok(()),
            Err(e) => {
                let r = axum::response::IntoResponse::into_response(e);
                assert_eq!(r.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
                Err(r.headers()[axum::http::header::RETRY_AFTER]
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0))
            }
        }
    }

    /// The Lua bucket in the real Redis gives the answers of the in-memory one, and is used
    /// (no fallback happened); a flushed script cache is recovered.
    #[tokio::test]
    async fn redis_bucket_matches_the_memory_bucket() {
        let prefix = format!("oauth-test:{}:", uuid::Uuid::new_v4());
        let l = redis_limits(&prefix);
        let k = digest(b"t", b"a");
        for _ in 0..3 {
            assert_eq!(take(&l, &k, 100).await, Ok(()));
        }
        assert_eq!(take(&l, &k, 100).await, Err(2));
        assert_eq!(take(&l, &k, 101).await, Err(1));
        assert_eq!(take(&l, &k, 102).await, Ok(()));
        // Redis loses its scripts (a restart, SCRIPT FLUSH): NOSCRIPT, then the script is
        // loaded again. Every client of this Redis recovers the same way.
        let shared = l.shared.as_ref().unwrap_or_else(|| panic!("redis backend"));
        let mut con = test_connection(shared).await;
        let () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(take(&l, &k, 102).await, Err(2));
        assert_eq!(take(&l, &digest(b"t", b"b"), 102).await, Ok(()));
        assert!(
            !shared.down.load(Ordering::Relaxed),
            "Redis answered every check"
        );
        // A second set of limiters on the same prefix (another instance) sees the same bucket.
        let other = redis_limits(&prefix);
        assert_eq!(take(&other, &k, 102).await, Err(2));
        // Clean up: the two keys of this test.
        for key in [digest(b"t", b"a"), digest(b"t", b"b")] {
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            let name = format!("{prefix}oauth_per_client:{hex}");
            let deleted: i64 = redis::cmd("DEL")
                .arg(&name)
                .query_async(&mut con)
                .await
                .unwrap();
            assert_eq!(deleted, 1);
        }
    }

    #[test]
    fn redis_urls() {
        let info = |url: &str| {
            let client =
                crate::redis_url::redis_client(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            let info = client.get_connection_info().clone();
            let (tls, host, port) = match info.addr() {
                redis::ConnectionAddr::Tcp(host, port) => (false, host.clone(), *port),
                redis::ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: false,
                    ..
                } => (true, host.clone(), *port),
                other => panic!("{other:?}"),
            };
            let r = info.redis_settings();
            let user = r.username().map(str::to_owned);
            let password = r.password().map(str::to_owned);
            (tls, host, port, r.db(), user, password)
        };
        assert_eq!(
            info("redis://127.0.0.1"),
            (false, "127.0.0.1".into(), 6379, 0, None, None)
        );
        assert_eq!(
            info("redis://me:p%40ss@cache.internal:6380/2"),
            (
                false,
                "cache.internal".into(),
                6380,
                2,
                Some("me".into()),
                Some("p@ss".into())
            )
        );
        assert_eq!(
            info("redis://:secret@[::1]"),
            (false, "::1".into(), 6379, 0, None, Some("secret".into()))
        );
        // TLS, with the certificate checked against the system's roots.
        assert_eq!(
            info("rediss://me:pw@cache.internal:6380/1"),
            (
                true,
                "cache.internal".into(),
                6380,
                1,
                Some("me".into()),
                Some("pw".into())
            )
        );
        for bad in [
            "http://127.0.0.1",
            "valkey://127.0.0.1",
            "redis:///0",
            "redis://127.0.0.1/x",
            "redis://127.0.0.1/-1",
            "redis://127.0.0.1/0?protocol=resp3",
            "rediss://127.0.0.1/#insecure",
            "127.0.0.1:6379",
            // Not UTF-8 once percent-decoded.
            "redis://:%FF@127.0.0.1",
            "redis://%C3%28:pw@127.0.0.1",
        ] {
            assert!(crate::redis_url::redis_client(bad).is_err(), "{bad}");
        }
    }

    /// What the stand-in in front of the test Redis does with a connection.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Door {
        /// Closes it at once.
        Shut,
        /// Answers its first write (the `AUTH` of the handshake and what comes with it) with
        /// `WRONGPASS` errors.
        WrongPassword,
        /// Passes it on to the test Redis.
        Open,
    }

    /// A listener on loopback that treats each connection as `door` says when it arrives; its
    /// port. It stops when the test's runtime does.
    async fn stand_in(door: std::sync::Arc<Mutex<Door>>) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = url::Url::parse(&test_redis_url()).unwrap();
        let upstream = (
            upstream.host_str().unwrap().to_owned(),
            upstream.port().unwrap_or(6379),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let now = *door.lock().unwrap();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    match now {
                        Door::Shut => {}
                        Door::WrongPassword => {
                            let mut buf = [0u8; 4096];
                            if socket.read(&mut buf).await.is_ok() {
                                let wrong = "-WRONGPASS invalid username-password pair\r\n";
                                let _ = socket.write_all(wrong.repeat(3).as_bytes()).await;
                                let _ = socket.read(&mut buf).await;
                            }
                        }
                        Door::Open => {
                            let mut redis = tokio::net::TcpStream::connect(upstream).await.unwrap();
                            let _ = tokio::io::copy_bidirectional(&mut socket, &mut redis).await;
                        }
                    }
                });
            }
        });
        port
    }

    /// Checks through the stand-in until Redis answers again (or 5 tries, one a second).
    async fn recovers(l: &RateLimiters, key: &Key) {
        let shared = l.shared.as_ref().unwrap_or_else(|| panic!("redis backend"));
        for _ in 0..5 {
            tokio::time::sleep(REDIS_RETRY_AFTER + Duration::from_millis(100)).await;
            assert_eq!(take(l, key, 100).await, Ok(()));
            if !shared.down.load(Ordering::Relaxed) {
                return;
            }
        }
        panic!("the limits were not shared again");
    }

    /// While connections to Redis fail, checks fall back to the in-memory bucket; once they
    /// succeed, the bucket in Redis is used again.
    #[tokio::test]
    async fn redis_is_used_again_once_it_answers() {
        let door = std::sync::Arc::new(Mutex::new(Door::Shut));
        let port = stand_in(door.clone()).await;
        let prefix = format!("oauth-test:{}:", uuid::Uuid::new_v4());
        let l = redis_limits_at(&format!("redis://127.0.0.1:{port}"), &prefix);
        let shared = l.shared.as_ref().unwrap_or_else(|| panic!("redis backend"));
        let k = digest(b"t", b"back");
        assert_eq!(take(&l, &k, 100).await, Ok(()));
        assert!(shared.down.load(Ordering::Relaxed), "fell back");
        *door.lock().unwrap() = Door::Open;
        recovers(&l, &k).await;
        bucket_is_in_redis(shared, &prefix, &k).await;
    }

    /// The `oauth_per_client` bucket of `k` is in Redis (and is deleted, to leave no trace).
    async fn bucket_is_in_redis(shared: &SharedBuckets, prefix: &str, k: &Key) {
        let mut con = test_connection(shared).await;
        let name = format!("{prefix}oauth_per_client:{}", hex(k));
        let deleted: i64 = redis::cmd("DEL")
            .arg(&name)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(deleted, 1, "the bucket is in Redis");
    }

    /// A connection whose `AUTH` was refused is not the end: the next attempt after the pause
    /// connects anew (with the same credentials), and the limits are shared again.
    #[tokio::test]
    async fn redis_is_used_again_after_a_refused_authentication() {
        let door = std::sync::Arc::new(Mutex::new(Door::WrongPassword));
        let port = stand_in(door.clone()).await;
        let prefix = format!("oauth-test:{}:", uuid::Uuid::new_v4());
        // The test Redis's `default` user takes any password.
        let l = redis_limits_at(&format!("redis://default:pw@127.0.0.1:{port}"), &prefix);
        let shared = l.shared.as_ref().unwrap_or_else(|| panic!("redis backend"));
        let k = digest(b"t", b"auth");
        let refused = shared.run(&l.oauth_per_client, &k, 100, Op::Take).await;
        assert!(
            matches!(&refused, Err(e) if e.kind() == redis::ErrorKind::AuthenticationFailed),
            "{refused:?}"
        );
        shared.failed(&refused.unwrap_err());
        *door.lock().unwrap() = Door::Open;
        recovers(&l, &k).await;
        bucket_is_in_redis(shared, &prefix, &k).await;
    }

    /// A `rediss://` URL makes a TLS connection: its first bytes are a TLS handshake record.
    /// The listener then closes it, and the check falls back to the in-memory bucket.
    #[tokio::test]
    async fn rediss_speaks_tls() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let first_bytes = tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut record = [0u8; 3];
                // On a loaded machine a connection can reach its timeout before its first
                // record is sent: the next attempt, after the pause, sends it.
                if socket.read_exact(&mut record).await.is_ok() {
                    return record;
                }
            }
        });
        let l = redis_limits_at(&format!("rediss://127.0.0.1:{port}"), "oauth-test:");
        let k = digest(b"t", b"tls");
        let shared = l.shared.as_ref().unwrap_or_else(|| panic!("redis backend"));
        for _ in 0..10 {
            assert_eq!(take(&l, &k, 100).await, Ok(()));
            assert!(shared.down.load(Ordering::Relaxed), "fell back");
            if first_bytes.is_finished() {
                break;
            }
            tokio::time::sleep(REDIS_RETRY_AFTER + Duration::from_millis(100)).await;
        }
        // A handshake record (22), TLS (3.x).
        assert_eq!(first_bytes.await.unwrap()[..2], [22, 3]);
    }

    fn hex(key: &Key) -> String {
        key.iter().map(|b| format!("{b:02x}")).collect()
    }
}
