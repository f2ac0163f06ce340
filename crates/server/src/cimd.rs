//! Client ID Metadata Documents: fetching them safely, caching them, and keeping the client
//! they describe in the store.
//!
//! A document client is a third-party public client (docs/threat-model.md), stored as a client
//! row (origin `metadata_document`, the organization of third-party clients) so that grants,
//! codes and refresh tokens hang off it like any other client's. The row is brought up to date
//! from the document at every authorization request; the token endpoint uses the row.
//!
//! Fetching: https only (plain http on loopback hosts when the operator allows it), no proxy,
//! no redirects, short timeouts, at most [`MAX_DOCUMENT_BYTES`], only a 200 counts. The host is
//! resolved once by [`CheckedResolver`], which refuses special-use addresses (RFC 6890 and
//! friends); the connection goes to the addresses it returned, so nothing can rebind in
//! between. A host written as an address literal is checked before the request.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use oauth_core::cimd::{
    classify, draft_from_value, is_loopback_host, ClientIdKind, DocumentError, DocumentPolicy,
    MAX_DOCUMENT_BYTES,
};
use oauth_core::client::THIRD_PARTY_ORG_ID;
use oauth_core::client_assertion::{parse_jwks_text, ClientKeys, MAX_JWKS_BYTES};
use oauth_core::{Client, ClientDraft, ClientOrigin, RegistrationPolicy, UnixSeconds};
use rand::rngs::OsRng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::OnceCell;
use url::Url;

use crate::audit::{self, Event, EventKind};
use crate::config::{Config, RegistrationConfig};
use crate::error::ApiError;
use crate::rate_limit::RateLimiters;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Documents (and key sets) kept in memory at most; past it, expired ones go, then the one used
/// longest ago: a flood of made-up documents pushes out a real one only if it was not used
/// since the flood's oldest entry was kept, whatever lifetimes the flood's documents ask for.
const MAX_CACHED: usize = 10_000;

/// Keeps `value` under `key` in a cache of at most `max` entries; `times` gives an entry's
/// expiry and when it was last used. When a new key finds the cache full, the expired entries
/// go, and if that frees nothing, the entry used longest ago (of those, the one that expires
/// soonest). Not the one that expires soonest alone: documents served with a long `max-age`
/// would then push out every real one with a shorter life.
fn keep_bounded<V>(
    cache: &mut HashMap<String, V>,
    max: usize,
    key: &str,
    value: V,
    now: UnixSeconds,
    times: fn(&V) -> (UnixSeconds, UnixSeconds),
) {
    if !cache.contains_key(key) && cache.len() >= max {
        cache.retain(|_, v| times(v).0 > now);
        if cache.len() >= max {
            let stalest = cache
                .iter()
                .min_by_key(|(_, v)| {
                    let (expires_at, last_used) = times(v);
                    (last_used, expires_at)
                })
                .map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                cache.remove(&k);
            }
        }
    }
    cache.insert(key.to_owned(), value);
}

/// Is `ip` an address no document may be fetched from? Loopback, private, link-local,
/// multicast, unspecified, shared (CGNAT), benchmarking, documentation and reserved ranges,
/// IPv6 unique-local and link-local, and IPv4 addresses embedded in IPv6 that are any of these.
pub fn is_special_use(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => is_special_v6(v6),
    }
}

fn is_special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                   // "this network" (RFC 6890)
        || a == 10                           // private (RFC 1918)
        || (a == 100 && (64..128).contains(&b)) // shared address space, CGNAT (RFC 6598)
        || a == 127                          // loopback
        || (a == 169 && b == 254)            // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)    // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)    // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)  // 6to4 relay anycast
        || (a == 192 && b == 168)            // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)  // TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

fn is_special_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_special_v4(v4);
    }
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6] == [0; 6]                       // IPv4-compatible (deprecated)
        || (s[0] == 0x64 && s[1] == 0xff9b)         // NAT64 (RFC 6052, 8215)
        || (s[0] == 0x100 && s[1..4] == [0; 3])     // discard-only (RFC 6666)
        || (s[0] == 0x2001 && s[1] < 0x200)         // IETF protocol assignments, Teredo
        || (s[0] == 0x2001 && s[1] == 0xdb8)        // documentation
        || s[0] == 0x2002                           // 6to4
        || (s[0] & 0xfe00) == 0xfc00                // unique local
        || (s[0] & 0xffc0) == 0xfe80                // link-local
        || (s[0] & 0xffc0) == 0xfec0                // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

/// May a document be fetched from `ip`?
fn allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    !is_special_use(ip) || (allow_loopback && is_loopback(ip))
}

/// Resolves a host once and hands the HTTP client only addresses that passed the check: the
/// connection goes where the check looked.
#[derive(Debug, Clone, Copy)]
struct CheckedResolver {
    allow_loopback: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            // Any special-use address refuses the host: a name that points (even partly) inside
            // is not fetched.
            if addrs.is_empty() || addrs.iter().any(|a| !allowed(a.ip(), allow_loopback)) {
                return Err(Box::new(SpecialUse) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[derive(Debug)]
struct SpecialUse;

impl std::fmt::Display for SpecialUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the host resolves to a special-use address")
    }
}

impl std::error::Error for SpecialUse {}

/// A document kept in memory.
#[derive(Debug, Clone)]
struct Cached {
    draft: ClientDraft,
    expires_at: UnixSeconds,
    last_used: UnixSeconds,
}

/// A client's JWK set fetched from its `jwks_uri`.
#[derive(Debug, Clone)]
struct CachedKeys {
    keys: ClientKeys,
    fetched_at: UnixSeconds,
    expires_at: UnixSeconds,
    last_used: UnixSeconds,
}

/// A cached JWK set is fetched again before it expires, for a `kid` it lacks, only when it is
/// at least this old: a made-up `kid` cannot make the server fetch on every request.
const MIN_KEYS_REFETCH_SECS: i64 = 60;

/// One fetch (of a document or a key set), awaited by every request that needs its outcome.
type Fetch<T> = OnceCell<Result<T, DocumentError>>;

/// The fetchers and the per-process cache.
pub struct Documents {
    strict: reqwest::Client,
    loopback: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
    keys: Mutex<HashMap<String, CachedKeys>>,
    /// Document fetches under way, by URL: later requests for one wait for its outcome. An
    /// entry lives only while its fetch runs.
    in_flight: InFlightTable<ClientDraft>,
    /// Key-set fetches under way, by `jwks_uri`, likewise.
    keys_in_flight: InFlightTable<ClientKeys>,
    /// Documents whose last fetch failed, by URL, with the failure, held for
    /// [`FAILURE_HOLD_SECS`].
    failures: Mutex<HashMap<String, Failed>>,
    /// Authorization requests waiting for a document fetch, by client address
    /// ([`crate::peer::address_key`]); an entry lives while one waits.
    waiting: Mutex<HashMap<String, usize>>,
}

/// How long a failed fetch of a stored client's document answers for its URL before the
/// document is fetched again. A failure is not kept as a document would be (a fixed document
/// applies at the next request after this), but requests naming a document whose host is down,
/// or answers an error, must not make this server fetch from that host at their rate: a client
/// stored earlier spends no budget for new documents, so anyone could otherwise reflect a flood
/// of requests there. A new document's failure is not held (each try spends the budget).
pub const FAILURE_HOLD_SECS: UnixSeconds = 10;

/// A failed fetch of a document, and until when it answers for its URL.
struct Failed {
    error: DocumentError,
    until: UnixSeconds,
}

/// How many requests of one address may wait at once for fetches: of metadata documents (at
/// `/oauth/authorize`, and at the endpoints where a document client authenticates) and of key
/// sets behind a `jwks_uri`. A fetch may take its whole timeout (5 s); without a bound, a few
/// addresses naming a host that never answers could hold every connection slot in requests
/// that wait (the connection cap's rules for a full server close only connections that are
/// idle or still sending).
pub const MAX_WAITING_PER_ADDRESS: usize = 16;

/// The caller's address has [`MAX_WAITING_PER_ADDRESS`] requests waiting for fetches already:
/// the request is refused at once (429), and no fetch starts for it.
#[derive(Debug)]
pub struct Busy;

impl Busy {
    /// The answer at the token, introspection and revocation endpoints: retry once a fetch
    /// has had its time.
    pub fn api_error(self) -> ApiError {
        tracing::debug!("too many requests of one address wait for fetches");
        ApiError::rate_limited(TOTAL_TIMEOUT.as_secs())
    }
}

/// One request's place among its address's waiting ones, given back when it is dropped.
struct WaitingPlace<'a> {
    documents: &'a Documents,
    key: String,
}

impl Drop for WaitingPlace<'_> {
    fn drop(&mut self) {
        let mut waiting = self
            .documents
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = waiting.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                waiting.remove(&self.key);
            }
        }
    }
}

type InFlightTable<T> = Mutex<HashMap<String, Arc<Fetch<T>>>>;

/// One request's hold on a single-flight entry. Dropped when the request is done or goes away
/// (a client that hangs up mid-fetch cancels its handler): it removes the entry once the fetch
/// has an outcome, or when no other request holds the entry. Otherwise a request cancelled
/// while fetching a URL never asked for again would leave its entry behind, and made-up URLs
/// would grow the table without bound.
struct InFlight<'a, T> {
    in_flight: &'a InFlightTable<T>,
    url: &'a str,
    cell: Arc<Fetch<T>>,
}

impl<T> Drop for InFlight<'_, T> {
    fn drop(&mut self) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Holders are counted under the lock, where every new holder clones: the table's
        // reference and this one mean nobody else waits.
        let ours = in_flight
            .get(self.url)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell));
        if ours && (self.cell.initialized() || Arc::strong_count(&self.cell) <= 2) {
            in_flight.remove(self.url);
        }
    }
}

/// Runs `fetch` for `url` unless a fetch of it is already under way in `table`, in which case
/// this waits for that one and shares its outcome, a refusal included (a refusal is still never
/// cached: the next request after it fetches again). If the request running the fetch goes
/// away, a waiting one takes it over; if none waits, the entry goes with it (see
/// [`InFlight`]). The outer `Err` is `fetch` declining to start (its caller was not admitted):
/// that is this request's alone, so the next waiting request runs its own `fetch` instead.
async fn single_flight<T, E, F, Fut>(
    table: &InFlightTable<T>,
    url: &str,
    fetch: F,
) -> Result<Result<T, DocumentError>, E>
where
    T: Clone,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Result<T, DocumentError>, E>>,
{
    let cell = table
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(url.to_owned())
        .or_default()
        .clone();
    let entry = InFlight {
        in_flight: table,
        url,
        cell,
    };
    entry.cell.get_or_try_init(fetch).await.cloned()
}

impl Documents {
    pub fn new() -> anyhow::Result<Self> {
        let build = |allow_loopback: bool| {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(TOTAL_TIMEOUT)
                // No connection is kept for later: a document or key set is fetched again only
                // once its cached copy expires, and connections kept idle to the hosts of many
                // made-up documents would hold open files that accepted connections need.
                .pool_max_idle_per_host(0)
                .dns_resolver(Arc::new(CheckedResolver { allow_loopback }))
                .user_agent(concat!("oauth-server/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Ok(Self {
            strict: build(false)?,
            loopback: build(true)?,
            cache: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            keys_in_flight: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
        })
    }

    /// A place for a request of `ip` to wait for a fetch (of a document or a key set), or
    /// [`Busy`] when its address has [`MAX_WAITING_PER_ADDRESS`] waiting already.
    fn waiting_place(&self, ip: IpAddr) -> Result<WaitingPlace<'_>, Busy> {
        let key = crate::peer::address_key(ip);
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let n = waiting.entry(key.clone()).or_insert(0);
        if *n >= MAX_WAITING_PER_ADDRESS {
            return Err(Busy);
        }
        *n += 1;
        Ok(WaitingPlace {
            documents: self,
            key,
        })
    }

    /// A place to wait for the document at `url` when no fresh copy is cached (`Ok(None)`:
    /// nothing to wait for).
    fn place_for_document(
        &self,
        url: &str,
        now: UnixSeconds,
        caller: IpAddr,
    ) -> Result<Option<WaitingPlace<'_>>, Busy> {
        if self.is_cached(url, now) {
            return Ok(None);
        }
        self.waiting_place(caller).map(Some)
    }

    /// How many document fetches are under way (entries of the single-flight table).
    pub fn fetches_under_way(&self) -> usize {
        let documents = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        let keys = self
            .keys_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        documents + keys
    }

    /// The JWK set a client publishes at `url` (RFC 7591 `jwks_uri`): from the cache while
    /// fresh, else fetched with the document fetcher's rules (https, special-use addresses
    /// refused, size and time bounded) and checked; kept like a document, and never when the
    /// fetch or the set failed. `unknown_kid` fetches again a set that lacks a key the
    /// assertion names, at most once a minute. A request that would wait for a fetch waits
    /// among at most a few of its address's (`caller`): `Err(Busy)` beyond them.
    pub async fn client_keys_at(
        &self,
        reg: &RegistrationConfig,
        url: &Url,
        (now, caller): (UnixSeconds, IpAddr),
        unknown_kid: bool,
    ) -> Result<Result<ClientKeys, DocumentError>, Busy> {
        let key = url.as_str();
        {
            let mut cache = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = cache.get_mut(key).filter(|c| c.expires_at > now) {
                if !unknown_kid || now - c.fetched_at < MIN_KEYS_REFETCH_SECS {
                    c.last_used = now;
                    return Ok(Ok(c.keys.clone()));
                }
            }
        }
        let _place = self.waiting_place(caller)?;
        // Requests that need the set at once (a cold cache, or one refetch for an unknown
        // kid) share one fetch, as documents do.
        let Ok(fetched) = single_flight(&self.keys_in_flight, key, || async {
            Ok::<_, std::convert::Infallible>(self.fetch_keys(reg, url, now).await)
        })
        .await;
        if fetched.is_err() && unknown_kid {
            // A failed refetch counts as one: assertions naming made-up kids wait the minute
            // too, rather than make the server fetch at their rate while the set is down.
            let mut cache = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = cache.get_mut(key) {
                c.fetched_at = now;
            }
        }
        Ok(fetched)
    }

    /// Fetches and checks the JWK set at `url`, and keeps it.
    async fn fetch_keys(
        &self,
        reg: &RegistrationConfig,
        url: &Url,
        now: UnixSeconds,
    ) -> Result<ClientKeys, DocumentError> {
        let key = url.as_str();
        let (body, max_age) = self
            .fetch(
                url,
                reg.cimd_allow_http_loopback,
                "the client's jwks_uri",
                MAX_JWKS_BYTES,
            )
            .await?;
        let keys = parse_jwks_text(&body)
            .map_err(|e| DocumentError(format!("the JWK set at the client's jwks_uri: {e}")))?;
        let ttl = max_age
            .unwrap_or(reg.cimd_cache_min_secs)
            .clamp(reg.cimd_cache_min_secs, reg.cimd_cache_max_secs);
        if ttl > 0 {
            let mut cache = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = CachedKeys {
                keys: keys.clone(),
                fetched_at: now,
                expires_at: now + ttl,
                last_used: now,
            };
            keep_bounded(&mut cache, MAX_CACHED, key, entry, now, |c| {
                (c.expires_at, c.last_used)
            });
        }
        Ok(keys)
    }

    /// The failure of the last fetch of `url`, while it still answers for it.
    fn recent_failure(&self, url: &str, now: UnixSeconds) -> Option<DocumentError> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures
            .get(url)
            .filter(|f| f.until > now)
            .map(|f| f.error.clone())
    }

    /// Notes how the fetch of `url` went: a failure answers for it for [`FAILURE_HOLD_SECS`].
    fn note_outcome(
        &self,
        url: &str,
        outcome: &Result<ClientDraft, DocumentError>,
        now: UnixSeconds,
    ) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(_) => {
                failures.remove(url);
            }
            Err(error) => {
                let until = now + FAILURE_HOLD_SECS;
                let failed = Failed {
                    error: error.clone(),
                    until,
                };
                keep_bounded(&mut failures, MAX_CACHED, url, failed, now, |f| {
                    (f.until, f.until)
                });
            }
        }
    }

    /// Is a fresh copy of the document at `url` cached? (Looks without copying it.)
    fn is_cached(&self, url: &str, now: UnixSeconds) -> bool {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.get(url).is_some_and(|c| c.expires_at > now)
    }

    fn cached(&self, url: &str, now: UnixSeconds) -> Option<ClientDraft> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let c = cache.get_mut(url).filter(|c| c.expires_at > now)?;
        c.last_used = now;
        Some(c.draft.clone())
    }

    fn keep(&self, url: &str, draft: ClientDraft, expires_at: UnixSeconds, now: UnixSeconds) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = Cached {
            draft,
            expires_at,
            last_used: now,
        };
        keep_bounded(&mut cache, MAX_CACHED, url, entry, now, |c| {
            (c.expires_at, c.last_used)
        });
    }

    /// Fetches the document at `url`: its body and how long it may be kept (`max-age`).
    /// `what` names it in errors; `limit` is its largest size in bytes.
    async fn fetch(
        &self,
        url: &Url,
        allow_http_loopback: bool,
        what: &str,
        limit: usize,
    ) -> Result<(Vec<u8>, Option<i64>), DocumentError> {
        let host = url.host_str().unwrap_or("");
        let loopback_ok = allow_http_loopback && is_loopback_host(host);
        // An address literal never reaches the resolver: check it here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if literal.is_some_and(|ip| !allowed(ip, loopback_ok)) {
            return Err(special_use(what));
        }
        let client = if loopback_ok {
            &self.loopback
        } else {
            &self.strict
        };
        let mut resp = client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                if refused_by_resolver(&e) {
                    // Said to the caller as any failed fetch: "this name points inside" versus
                    // "this name does not resolve" would map the server's network and
                    // resolver for anyone. The operator's log says which.
                    tracing::info!(host = %host, "a document's host resolves to a special-use address; not fetched");
                    DocumentError(format!("{what} could not be fetched"))
                } else if e.is_timeout() {
                    DocumentError(format!("fetching {what} timed out"))
                } else {
                    DocumentError(format!("{what} could not be fetched"))
                }
            })?;
        if resp.status() != reqwest::StatusCode::OK {
            // Redirects are not followed: a 3xx is a refusal like any other status.
            return Err(DocumentError(format!(
                "fetching {what} answered HTTP {} (only 200 is accepted)",
                resp.status().as_u16()
            )));
        }
        let too_large = || DocumentError(format!("{what} is larger than {limit} bytes"));
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let max_age = resp
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(max_age);
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(_) => return Err(DocumentError(format!("{what} could not be read"))),
            }
        }
        Ok((body, max_age))
    }
}

/// The refusal of an address literal: the caller wrote the address, so saying why tells it
/// nothing it did not know.
fn special_use(what: &str) -> DocumentError {
    DocumentError(format!(
        "the host of {what} is a special-use address (loopback, private, link-local, ...), which is never fetched"
    ))
}

/// Did the resolver refuse the host? Its error is somewhere in the chain of sources (by type,
/// or by its message once wrapped).
fn refused_by_resolver(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<SpecialUse>() || err.to_string() == SpecialUse.to_string() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// `max-age` of one `Cache-Control` value; `no-store` and `no-cache` count as 0.
fn max_age(value: &str) -> Option<i64> {
    value.split(',').map(str::trim).find_map(|d| {
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        lower
            .strip_prefix("max-age=")
            .and_then(|n| n.trim_matches('"').parse::<i64>().ok())
    })
}

/// The operator's rules for document client ids.
pub fn document_policy(reg: &RegistrationConfig) -> DocumentPolicy<'_> {
    DocumentPolicy {
        enabled: reg.cimd_enabled,
        allowed_hosts: &reg.cimd_allowed_hosts,
        denied: &reg.cimd_denied,
        allow_http_loopback: reg.cimd_allow_http_loopback,
    }
}

/// May this stored client still be used? A document client only while the configuration still
/// accepts its id (documents turned off, a host no longer allowed, loopback http no longer
/// allowed: its tokens can no longer be refreshed).
pub fn still_accepted(reg: &RegistrationConfig, client: &Client) -> bool {
    client.origin != ClientOrigin::MetadataDocument
        || matches!(
            classify(&client.client_id, document_policy(reg)),
            ClientIdKind::Document(_)
        )
}

/// Why a document client cannot be used now.
pub enum Refusal {
    /// The document was refused or could not be had; shown on the authorization error page.
    Document(DocumentError),
    /// An answer to send as it is: the store's error, or a request refused while the store
    /// and the document were fine (a purge raced it, or its address waits too much already).
    Answer(ApiError),
}

/// Why [`describe`] gave no client: refused, or the caller's budget for new documents is spent
/// (the answer to send, a 429 page).
pub enum NotDescribed {
    Refused(Refusal),
    Limited(axum::response::Response),
}

impl From<Refusal> for NotDescribed {
    fn from(r: Refusal) -> Self {
        NotDescribed::Refused(r)
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Answer(e)
    }
}

impl From<oauth_store::StoreError> for Refusal {
    fn from(e: oauth_store::StoreError) -> Self {
        Refusal::Answer(e.into())
    }
}

/// Fetches and validates the document at `url`, and keeps a valid one in the cache.
async fn fetch_document(
    documents: &Documents,
    config: &Config,
    now: UnixSeconds,
    url: &Url,
) -> Result<ClientDraft, DocumentError> {
    let reg = &config.registration;
    let id = url.as_str();
    let (body, max_age) = documents
        .fetch(
            url,
            reg.cimd_allow_http_loopback,
            "the client metadata document",
            MAX_DOCUMENT_BYTES,
        )
        .await?;
    let policy = RegistrationPolicy {
        catalogue: &config.scopes,
        default_scopes: &reg.default_scopes,
        allow_client_credentials: false,
        allow_http_loopback: reg.cimd_allow_http_loopback,
    };
    // A member named twice means two readers of the document (someone vetting it, and this
    // server, which would take the last) may see different clients: refused, as in a request
    // body. So is a NUL, which no member may hold.
    // Read once, by that reader; the fetch already bounded its size.
    let doc = match crate::json::parse_value(&body) {
        Ok(doc) => doc,
        Err(crate::json::JsonError::Repeated(at)) => {
            return Err(DocumentError(format!(
                "the client metadata document names a member twice (at {at})"
            )));
        }
        Err(crate::json::JsonError::Nul(at)) => {
            return Err(DocumentError(format!(
                "the client metadata document holds a NUL character (at {at})"
            )));
        }
        // Refused as not a JSON object.
        Err(crate::json::JsonError::Malformed(_)) => serde_json::Value::Null,
    };
    let draft = draft_from_value(id, doc, &policy)?;
    // Only a valid document is kept, between the configured bounds.
    let ttl = max_age
        .unwrap_or(reg.cimd_cache_min_secs)
        .clamp(reg.cimd_cache_min_secs, reg.cimd_cache_max_secs);
    if ttl > 0 {
        documents.keep(id, draft.clone(), now + ttl, now);
    }
    Ok(draft)
}

/// A document client as an authorization request sees it: the stored row, brought up to date,
/// or, for a document no stored row has yet, the client it would be, **not stored**. An
/// anonymous caller can name any number of document URLs; only a signed-in user's valid request
/// stores one ([`Described::stored`]), so naming URLs adds no rows.
pub enum Described {
    Stored(Client),
    New(Client),
}

impl Described {
    pub fn client(&self) -> &Client {
        match self {
            Described::Stored(client) | Described::New(client) => client,
        }
    }

    /// The client as stored: created now (with its `client.registered` event) if it was new.
    /// `Created::ByThisCall` only for the call whose insert stored the row: of several requests
    /// that described the same new document at once, one stores it and the others read it.
    pub async fn stored(
        self,
        store: &dyn oauth_store::Store,
        now: UnixSeconds,
    ) -> Result<(Client, Created), Refusal> {
        match self {
            Described::Stored(client) => Ok((client, Created::Before)),
            Described::New(client) => insert(store, client, now).await,
        }
    }
}

/// Whether [`Described::stored`] stored the client's row, or found it stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    ByThisCall,
    Before,
}

/// The client the document at `url` describes (from the cache while fresh, else fetched and
/// validated): its stored row brought up to date, or the client it would be, not stored (see
/// [`Described`]). A document that is neither stored nor cached is fetched only once `admit`
/// lets the caller spend for it (`RateLimiters::document_ip`): every new URL would otherwise
/// make this server fetch from, and once someone signs in store, whatever a caller names.
pub async fn describe<F, Fut>(
    documents: &Documents,
    store: &dyn oauth_store::Store,
    config: &Config,
    now: UnixSeconds,
    (url, caller): (&Url, IpAddr),
    admit: F,
) -> Result<Described, NotDescribed>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), axum::response::Response>>,
{
    // Read first; an update is judged against the row as stored when it is written, and an
    // insert that finds a row already there takes that row.
    let stored = store
        .get_client(url.as_str())
        .await
        .map_err(Refusal::from)?;
    let new = stored.is_none();
    // A request that would wait for a fetch waits among at most a few of its address's.
    let Ok(_place) = documents.place_for_document(url.as_str(), now, caller) else {
        return Err(NotDescribed::Limited(RateLimiters::page_429(
            "Too many sign-in requests from your network are waiting for applications' documents.",
            TOTAL_TIMEOUT.as_secs(),
        )));
    };
    // A new document's failure is not held: each try is fetched again, at the budget's pace
    // (the draft: a server must not cache error answers or invalid documents).
    let hold = if new { Hold::No } else { Hold::Failures };
    let draft = current_draft(documents, config, now, (url, hold), || async move {
        if new {
            admit().await
        } else {
            Ok(())
        }
    })
    .await
    .map_err(NotDescribed::Limited)??;
    match stored {
        Some(stored) => Ok(Described::Stored(
            reconcile(store, url.as_str(), Some(stored), draft, now).await?,
        )),
        None => Ok(Described::New(new_document_client(
            url.as_str(),
            draft,
            now,
        ))),
    }
}

/// A document client has no secret.
fn new_document_client(id: &str, draft: ClientDraft, now: UnixSeconds) -> Client {
    let (client, _) = Client::new(
        id.to_owned(),
        draft,
        ClientOrigin::MetadataDocument,
        (THIRD_PARTY_ORG_ID, ""),
        now,
        &mut OsRng,
    );
    client
}

/// Does this server know nothing of the document at `url`: no fresh copy cached, and no client
/// stored for it? (Then using it means fetching it.)
pub async fn is_new(
    documents: &Documents,
    store: &dyn oauth_store::Store,
    url: &Url,
    now: UnixSeconds,
) -> Result<bool, ApiError> {
    if documents.is_cached(url.as_str(), now) {
        return Ok(false);
    }
    Ok(store.get_client(url.as_str()).await?.is_none())
}

/// The client the document at `url` describes, for a document client the caller has just read
/// from the store: its row brought up to date.
pub async fn refresh(
    documents: &Documents,
    store: &dyn oauth_store::Store,
    config: &Config,
    now: UnixSeconds,
    (url, caller): (&Url, IpAddr),
    stored: Client,
) -> Result<Client, Refusal> {
    // As at `/oauth/authorize`, a request that would wait for a fetch waits among at most a
    // few of its address's.
    let _place = documents
        .place_for_document(url.as_str(), now, caller)
        .map_err(|busy| Refusal::Answer(busy.api_error()))?;
    let Ok(draft) = current_draft(documents, config, now, (url, Hold::Failures), || async {
        Ok::<_, std::convert::Infallible>(())
    })
    .await;
    reconcile(store, url.as_str(), Some(stored), draft?, now).await
}

/// Whether a recent failure to fetch a document answers for it ([`FAILURE_HOLD_SECS`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Yes: a stored client's document, which is fetched again without spending a budget, so
    /// a failing host must not be fetched from at the rate of the requests naming it.
    Failures,
    /// No: a new document, fetched again at its budget's pace, each try paying.
    No,
}

/// The settings the document at `url` gives now: from the cache while fresh, else fetched once
/// `admit` lets this request run the fetch (`Err`: it may not; a request that waits for another's
/// fetch spends nothing).
async fn current_draft<E, A, AFut>(
    documents: &Documents,
    config: &Config,
    now: UnixSeconds,
    (url, hold): (&Url, Hold),
    admit: A,
) -> Result<Result<ClientDraft, Refusal>, E>
where
    A: FnOnce() -> AFut,
    AFut: std::future::Future<Output = Result<(), E>>,
{
    let id = url.as_str();
    if let Some(d) = documents.cached(id, now) {
        return Ok(Ok(d));
    }
    if hold == Hold::Failures {
        if let Some(failed) = documents.recent_failure(id, now) {
            return Ok(Err(Refusal::Document(failed)));
        }
    }
    // Requests that miss the cache at once share one fetch: a burst of first authorizations
    // makes the server fetch a third party's document once, not once each.
    Ok(single_flight(&documents.in_flight, id, || async {
        admit().await?;
        let fetched = fetch_document(documents, config, now, url).await;
        documents.note_outcome(id, &fetched, now);
        Ok(fetched)
    })
    .await?
    .map_err(Refusal::Document))
}

/// Stores a new document client, with its `client.registered` event; if another request stored
/// it first, that row.
async fn insert(
    store: &dyn oauth_store::Store,
    client: Client,
    now: UnixSeconds,
) -> Result<(Client, Created), Refusal> {
    match store.insert_client(&client).await {
        Ok(()) => {
            audit::record(
                store,
                now,
                Event::new(EventKind::ClientRegistered)
                    .client(&client)
                    .detail("origin", "metadata_document"),
            )
            .await;
            Ok((client, Created::ByThisCall))
        }
        Err(oauth_store::StoreError::Conflict(_)) => store
            .get_client(&client.client_id)
            .await?
            .map(|stored| (stored, Created::Before))
            .ok_or_else(|| Refusal::Answer(ApiError::internal("a client vanished"))),
        Err(e) => Err(e.into()),
    }
}

/// The stored row for document client `id` (`stored`, as read) made to match `draft`: created,
/// updated, or left as it is.
async fn reconcile(
    store: &dyn oauth_store::Store,
    id: &str,
    stored: Option<Client>,
    draft: ClientDraft,
    now: UnixSeconds,
) -> Result<Client, Refusal> {
    match stored {
        None => insert(store, new_document_client(id, draft, now), now)
            .await
            .map(|(client, _)| client),
        Some(existing) if existing.origin != ClientOrigin::MetadataDocument => {
            Err(Refusal::Document(DocumentError(
                "this client_id belongs to another client".into(),
            )))
        }
        Some(existing) if existing.settings == draft => Ok(existing),
        Some(_) => {
            // Judged against the client as stored when the update is written: if what the user
            // saw and where they were sent changed, any verified mark goes.
            let edit: oauth_store::ClientEdit = Box::new(move |current: &Client| {
                let clear = current.settings.changes_what_users_see(&draft);
                Ok((draft.clone(), clear))
            });
            match store.edit_client(THIRD_PARTY_ORG_ID, id, edit, now).await? {
                // Only a cleared verified mark is an event: the operator vouched for what
                // changed. (Other changes of a document are the document's, read again.)
                Some(Ok(edited)) => {
                    if edited.verified_cleared {
                        audit::record(
                            store,
                            now,
                            Event::new(EventKind::ClientUpdated)
                                .client(&edited.client)
                                .detail("origin", "metadata_document")
                                .detail("verified_cleared", true),
                        )
                        .await;
                    }
                    Ok(edited.client)
                }
                // Deleted meanwhile (the purge of unused clients): worth a retry.
                None => Err(Refusal::Answer(ApiError::unavailable())),
                Some(Err(_)) => Err(Refusal::Answer(ApiError::internal(
                    "an edit that refuses nothing refused",
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_addresses() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2002:a00:1::1",
            "100::1",
            "fec0::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_special_use(ip), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.169.0.1",
            "93.184.216.34",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_special_use(ip), "{ip}");
        }
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(allowed(lo, true) && !allowed(lo, false));
        let private: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(!allowed(private, true));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_special_use_addresses() {
        let strict = CheckedResolver {
            allow_loopback: false,
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(strict.resolve(name).await.is_err());
        let loose = CheckedResolver {
            allow_loopback: true,
        };
        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = loose.resolve(name).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn a_full_cache_makes_room_for_a_new_entry() {
        // (expires at, last used)
        let mut cache: HashMap<String, (i64, i64)> = HashMap::new();
        let times = |v: &(i64, i64)| *v;
        let keys = |cache: &HashMap<String, (i64, i64)>| {
            let mut keys: Vec<String> = cache.keys().cloned().collect();
            keys.sort_unstable();
            keys
        };
        for (k, exp) in [("a", 150), ("b", 120), ("c", 200)] {
            keep_bounded(&mut cache, 3, k, (exp, 100), 100, times);
        }
        // Full, nothing expired, all used alike: the entry expiring soonest (b) makes room.
        keep_bounded(&mut cache, 3, "d", (300, 100), 100, times);
        assert_eq!(keys(&cache), ["a", "c", "d"]);
        // A key already kept is replaced in place, nothing else goes.
        keep_bounded(&mut cache, 3, "a", (400, 100), 100, times);
        assert_eq!((cache.len(), cache["a"]), (3, (400, 100)));
        // Past an expiry, the expired entries go (c), and nothing else.
        keep_bounded(&mut cache, 3, "e", (500, 250), 250, times);
        assert_eq!(keys(&cache), ["a", "d", "e"]);
        // A flood of entries that ask to live long does not push out one in use: the entry
        // used longest ago goes, even though the one in use (a) expires sooner than any.
        keep_bounded(&mut cache, 3, "flood0", (100_000, 330), 330, times);
        cache.get_mut("a").unwrap().1 = 335;
        keep_bounded(&mut cache, 3, "flood1", (100_000, 340), 340, times);
        assert_eq!(keys(&cache), ["a", "flood0", "flood1"]);
        cache.get_mut("a").unwrap().1 = 345;
        keep_bounded(&mut cache, 3, "flood2", (100_000, 350), 350, times);
        assert_eq!(keys(&cache), ["a", "flood1", "flood2"]);
    }

    #[test]
    fn cache_control() {
        assert_eq!(max_age("public, max-age=600"), Some(600));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("public"), None);
    }
}
