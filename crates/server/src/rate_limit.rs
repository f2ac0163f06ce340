//! In-process request-rate limits (docs/rate-limits.md).
//!
//! Each limit is a token bucket per key: it holds at most `requests` tokens and refills at
//! `requests / window_secs` tokens per second, so a key may send `requests` at once and then
//! `requests` per window. The buckets live in memory, in shards of `Mutex<HashMap>` (a check
//! locks one shard for a few nanoseconds), so the limits are per server instance.
//!
//! Keys are SHA-256 digests of a kind-prefixed identifier: a bearer credential is never kept in
//! memory, and an attacker-chosen client_id cannot make an entry large. Time comes from the
//! application clock, so tests move it by hand.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use oauth_core::UnixSeconds;
use sha2::{Digest, Sha256};

use crate::config::{RateLimit, RateLimitsConfig};
use crate::error::ApiError;
use crate::extract::bearer_token;
use crate::state::AppState;

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
    limit: RateLimit,
    shards: Vec<Mutex<Shard>>,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    /// Takes one token for `key`; `Err(seconds)` when the bucket is empty, with the whole
    /// seconds until a token is back (1..=60, the `Retry-After` value).
    fn check(&self, key: &Key, now: UnixSeconds) -> Result<(), u64> {
        if self.limit.is_off() {
            return Ok(());
        }
        let capacity = f64::from(self.limit.requests);
        let rate = capacity / f64::from(self.limit.window_secs);
        let idx = usize::from(key[0]) % SHARDS;
        // A poisoned shard only means another request panicked mid-update; the map is still
        // a valid map of buckets.
        let mut shard = match self.shards[idx].lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let window = i64::from(self.limit.window_secs);
        if now - shard.last_sweep >= window || shard.buckets.len() >= MAX_KEYS_PER_SHARD {
            // A bucket untouched for a whole window is full again: the same as no entry.
            shard.buckets.retain(|_, b| now - b.updated < window);
            if shard.buckets.len() >= MAX_KEYS_PER_SHARD {
                shard.buckets.clear();
            }
            shard.last_sweep = now;
        }
        let bucket = shard.buckets.entry(*key).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = (now - bucket.updated).max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = now.max(bucket.updated);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / rate).ceil();
            Err((wait as u64).clamp(1, 60))
        }
    }

    fn check_or_429(&self, key: &Key, now: UnixSeconds, what: &str) -> Result<(), ApiError> {
        self.check(key, now).map_err(|retry_after| {
            tracing::info!(limit = what, "rate limit reached");
            ApiError::rate_limited(retry_after)
        })
    }
}

/// Every limit of one server instance.
#[derive(Debug)]
pub struct RateLimiters {
    management_per_key: Limiter,
    management_per_ip: Limiter,
    oauth_per_client: Limiter,
    register_per_ip: Limiter,
    login_per_ip: Limiter,
}

impl RateLimiters {
    pub fn new(c: &RateLimitsConfig) -> Self {
        Self {
            management_per_key: Limiter::new(c.management_per_key),
            management_per_ip: Limiter::new(c.management_per_ip),
            oauth_per_client: Limiter::new(c.oauth_per_client),
            register_per_ip: Limiter::new(c.register_per_ip),
            login_per_ip: Limiter::new(c.login_per_ip),
        }
    }

    /// Token, introspection and revocation: per client_id, checked after the credentials are
    /// parsed and before the secret is verified, so secret guessing is limited too.
    pub fn oauth_client(&self, client_id: &str, now: UnixSeconds) -> Result<(), ApiError> {
        self.oauth_per_client.check_or_429(
            &digest(b"client", client_id.as_bytes()),
            now,
            "client_id",
        )
    }

    /// The management API's per-credential limit (also used for introspection by a Bearer API
    /// key or access token): keyed by the credential's SHA-256, before it is checked.
    pub fn bearer(&self, credential: &str, now: UnixSeconds) -> Result<(), ApiError> {
        self.management_per_key.check_or_429(
            &digest(b"bearer", credential.as_bytes()),
            now,
            "management per key",
        )
    }

    pub fn register_ip(&self, ip: IpAddr, now: UnixSeconds) -> Result<(), ApiError> {
        self.register_per_ip
            .check_or_429(&ip_key(ip), now, "registration per IP")
    }

    pub fn login_ip(&self, ip: IpAddr, now: UnixSeconds) -> Result<(), ApiError> {
        self.login_per_ip
            .check_or_429(&ip_key(ip), now, "login per IP")
    }
}

fn digest(kind: &[u8], value: &[u8]) -> Key {
    let mut h = Sha256::new();
    h.update(kind);
    h.update([0u8]);
    h.update(value);
    h.finalize().into()
}

fn ip_key(ip: IpAddr) -> Key {
    // An IPv4 client reached over an IPv6 socket counts as the same address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    digest(b"ip", ip.to_string().as_bytes())
}

/// Middleware for the management API: per client address, then per bearer credential (its
/// SHA-256, before authentication, so that guessing API keys is limited as well).
pub async fn management(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let limits = &state.rate_limits;
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>() {
        limits
            .management_per_ip
            .check_or_429(&ip_key(peer.ip()), now, "management per IP")?;
    }
    if let Some(credential) = bearer_token(req.headers()) {
        limits.bearer(credential, now)?;
    }
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refills_at_the_rate() {
        let l = Limiter::new(RateLimit {
            requests: 3,
            window_secs: 6,
        });
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
    fn zero_is_off_and_retry_after_is_capped() {
        let off = Limiter::new(RateLimit {
            requests: 0,
            window_secs: 1,
        });
        let k = digest(b"t", b"a");
        for _ in 0..1000 {
            assert_eq!(off.check(&k, 1), Ok(()));
        }
        let slow = Limiter::new(RateLimit {
            requests: 1,
            window_secs: 3600,
        });
        assert_eq!(slow.check(&k, 1), Ok(()));
        assert_eq!(slow.check(&k, 1), Err(60));
    }

    #[test]
    fn idle_keys_are_swept() {
        let l = Limiter::new(RateLimit {
            requests: 1,
            window_secs: 10,
        });
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
}
