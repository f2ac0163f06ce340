//! The access-token signing keys of a running server: loaded from the database once, kept in
//! memory as parsed key objects, reloaded periodically (and when a token names a kid this
//! instance has not seen yet), rotated by `oauth-server keys rotate`.
//!
//! Every instance on one database signs with the same keys: the private halves are stored
//! sealed with the key-encryption key (see [`load_key_encryption_key`]), which every instance
//! is configured with.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use oauth_core::jwt::{self, AccessTokenClaims, Expect, JwtError};
use oauth_core::keys::{Algorithm, KeyEncryptionKey, KeyPair};
use oauth_core::UnixSeconds;
use oauth_store::{Store, StoreError, StoredSigningKey};
use oauth_wire::JwkSet;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use crate::config::Config;

/// Tolerated clock difference between instances, for a token's `iat` in the future.
pub const CLOCK_LEEWAY_SECS: i64 = 60;

/// At most one reload per this interval is caused by tokens naming an unknown kid, so that
/// garbage tokens cannot hammer the database.
pub const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

struct LoadedKey {
    pair: Arc<KeyPair>,
    active_from: UnixSeconds,
    retire_after: Option<UnixSeconds>,
}

impl LoadedKey {
    fn published_at(&self, now: UnixSeconds) -> bool {
        self.retire_after.is_none_or(|r| r > now)
    }
}

/// Access tokens whose signature has been verified, by the SHA-256 of the whole token: a
/// resource server introspects the same token on every call it receives, and an ECDSA
/// verification costs more than the rest of an introspection. Only a token that passed every
/// check is remembered; a hit still requires its key to be published and checks expiry, issuer
/// and audience again, and revocation is always read from the database (`tokens::still_live`).
/// Bounded: when full, the whole set is dropped and refilled by the next requests.
struct VerifiedTokens {
    seen: Mutex<HashMap<[u8; 32], Arc<Verified>>>,
}

struct Verified {
    kid: String,
    claims: AccessTokenClaims,
}

/// About 2 MB at most.
const VERIFIED_TOKENS_CAPACITY: usize = 4096;

impl VerifiedTokens {
    fn new() -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Verified>>> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, digest: &[u8; 32]) -> Option<Arc<Verified>> {
        self.lock().get(digest).cloned()
    }

    fn insert(&self, digest: [u8; 32], kid: String, claims: AccessTokenClaims) {
        let entry = Arc::new(Verified { kid, claims });
        let mut seen = self.lock();
        if seen.len() >= VERIFIED_TOKENS_CAPACITY {
            seen.clear();
        }
        seen.insert(digest, entry);
    }
}

/// One consistent view of the keys; replaced whole on reload.
struct Snapshot {
    /// Oldest `active_from` first.
    keys: Vec<LoadedKey>,
    /// `/oauth/jwks`, serialized once per reload.
    jwks: Bytes,
}

impl Snapshot {
    /// The key named `kid`, if it is published at `now`.
    fn published(&self, kid: &str, now: UnixSeconds) -> Option<&LoadedKey> {
        self.keys
            .iter()
            .find(|k| k.pair.kid() == kid && k.published_at(now))
    }
}

/// The keys of this instance.
pub struct KeyRing {
    store: Arc<dyn Store>,
    kek: KeyEncryptionKey,
    algorithm: Algorithm,
    snapshot: RwLock<Arc<Snapshot>>,
    last_unknown_kid_reload: tokio::sync::Mutex<Option<Instant>>,
    verified: VerifiedTokens,
}

impl KeyRing {
    /// Loads the keys, generating and storing the first one when the database has none that can
    /// sign at `now`.
    pub async fn open(
        store: Arc<dyn Store>,
        kek: KeyEncryptionKey,
        algorithm: Algorithm,
        now: UnixSeconds,
    ) -> anyhow::Result<Self> {
        let ring = Self {
            store,
            kek,
            algorithm,
            snapshot: RwLock::new(Arc::new(Snapshot {
                keys: Vec::new(),
                jwks: Bytes::new(),
            })),
            last_unknown_kid_reload: tokio::sync::Mutex::new(None),
            verified: VerifiedTokens::new(),
        };
        ring.reload(now).await?;
        let can_sign = ring.current().keys.iter().any(|k| k.active_from <= now);
        if !can_sign {
            let stored = new_stored_key(&ring.kek, algorithm, now, now, None)?;
            if ring.store.insert_first_signing_key(&stored, now).await? {
                tracing::info!(kid = %stored.kid, alg = %algorithm, "generated the first signing key");
            }
            ring.reload(now).await?;
        }
        if ring.current().keys.is_empty() {
            bail!("no signing key could be loaded or created");
        }
        Ok(ring)
    }

    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the keys from the database. Keys already loaded are reused, not re-parsed; a
    /// new key is unsealed and parsed once here.
    pub async fn reload(&self, now: UnixSeconds) -> Result<(), ReloadError> {
        let rows = self.store.list_signing_keys(now).await?;
        let previous = self.current();
        let known: HashMap<&str, &Arc<KeyPair>> = previous
            .keys
            .iter()
            .map(|k| (k.pair.kid(), &k.pair))
            .collect();
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let pair = match known.get(row.kid.as_str()) {
                Some(p) => Arc::clone(p),
                None => Arc::new(unseal(&self.kek, &row)?),
            };
            keys.push(LoadedKey {
                pair,
                active_from: row.active_from,
                retire_after: row.retire_after,
            });
        }
        let set = JwkSet {
            keys: keys.iter().map(|k| k.pair.public_key().to_jwk()).collect(),
        };
        let jwks = Bytes::from(
            serde_json::to_vec(&set)
                .map_err(|e| ReloadError::Key(format!("serializing the JWK set: {e}")))?,
        );
        let next = Arc::new(Snapshot { keys, jwks });
        match self.snapshot.write() {
            Ok(mut g) => *g = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(())
    }

    /// The key to sign with at `now`: the one most recently become active. When the clock
    /// reads earlier than every key's activation (another instance's clock runs ahead), the
    /// oldest key.
    pub fn signing_key(&self, now: UnixSeconds) -> Option<Arc<KeyPair>> {
        let snap = self.current();
        let live = || snap.keys.iter().filter(|k| k.published_at(now));
        live()
            .rfind(|k| k.active_from <= now)
            .or_else(|| live().next())
            .map(|k| Arc::clone(&k.pair))
    }

    /// When the key that signs at `now` started signing (for the key-age metric).
    pub fn signing_since(&self, now: UnixSeconds) -> Option<UnixSeconds> {
        let snap = self.current();
        let live = || snap.keys.iter().filter(|k| k.published_at(now));
        live()
            .rfind(|k| k.active_from <= now)
            .or_else(|| live().next())
            .map(|k| k.active_from)
    }

    /// `/oauth/jwks` as served: from memory, whatever the database's state.
    pub fn jwks_json(&self) -> Bytes {
        self.current().jwks.clone()
    }

    /// The kids published now, oldest first.
    pub fn kids(&self) -> Vec<String> {
        self.current()
            .keys
            .iter()
            .map(|k| k.pair.kid().to_owned())
            .collect()
    }

    /// Signature, header and claims of an access token (not revocation: see `tokens`). A kid
    /// this instance does not know causes one reload (rate-limited) and a second attempt, so
    /// that a key rotated in by another instance is picked up at once.
    pub async fn verify(
        &self,
        token: &str,
        expect: &Expect<'_>,
    ) -> Result<AccessTokenClaims, JwtError> {
        match self.verify_now(token, expect) {
            Err(JwtError::UnknownKey) => {}
            other => return other,
        }
        let kid = jwt::peek_kid(token)?;
        {
            let mut last = self.last_unknown_kid_reload.lock().await;
            // Another request may have reloaded while this one waited.
            if !self.has_kid(&kid, expect.now)
                && last.is_none_or(|t| t.elapsed() >= UNKNOWN_KID_RELOAD_INTERVAL)
            {
                *last = Some(Instant::now());
                if let Err(e) = self.reload(expect.now).await {
                    tracing::warn!(error = %e, "reloading signing keys failed");
                }
            }
        }
        self.verify_now(token, expect)
    }

    fn has_kid(&self, kid: &str, now: UnixSeconds) -> bool {
        self.current().published(kid, now).is_some()
    }

    fn verify_now(&self, token: &str, expect: &Expect<'_>) -> Result<AccessTokenClaims, JwtError> {
        let snap = self.current();
        let published = |kid: &str| snap.published(kid, expect.now);
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(seen) = self.verified.get(&digest) {
            // The signature was checked before; the key that checked it must still be
            // published, and the claims are checked against this request's expectations.
            if published(&seen.kid).is_some() {
                jwt::check_claims(&seen.claims, expect)?;
                return Ok(seen.claims.clone());
            }
        }
        let (kid, claims) =
            jwt::verify_signature(token, |kid| published(kid).map(|k| k.pair.public_key()))?;
        jwt::check_claims(&claims, expect)?;
        self.verified.insert(digest, kid, claims.clone());
        Ok(claims)
    }

    /// Rotates (see [`rotate`]) with this ring's key and algorithm, then reloads.
    pub async fn rotate(&self, now: UnixSeconds, schedule: Schedule) -> anyhow::Result<Rotation> {
        let r = rotate(
            self.store.as_ref(),
            &self.kek,
            self.algorithm,
            now,
            schedule,
        )
        .await?;
        self.reload(now).await?;
        Ok(r)
    }
}

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    pub kid: String,
    pub alg: String,
    /// The new key signs from this time on.
    pub active_from: UnixSeconds,
    /// The previous keys leave the JWK set at this time: when the last token they signed has
    /// expired.
    pub previous_retire_after: UnixSeconds,
}

/// When a rotation's new key starts signing and the keys before it retire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// The new key signs from `now + publish_delay_secs` (so that every instance and every
    /// resource server has it before it is used); the previous keys retire once every token
    /// they may still sign has expired. An instance goes on signing with them until it reloads
    /// the keys (at most `key_reload_secs` after the rotation) or until the new key's start,
    /// whichever is later, and a token lives `access_token_lifetime_secs`.
    Planned {
        publish_delay_secs: i64,
        access_token_lifetime_secs: i64,
        key_reload_secs: i64,
    },
    /// The previous keys are compromised: the new key signs from now, and the previous keys
    /// retire now, so every token they signed stops working. Instances pick this up when they
    /// next reload (at most `key_reload_secs` later, or at once when they meet a token of the
    /// new key).
    AtOnce,
}

impl Schedule {
    /// The new key's start, and when the previous keys retire, for a rotation at `now`.
    fn at(self, now: UnixSeconds) -> (UnixSeconds, UnixSeconds) {
        match self {
            Schedule::Planned {
                publish_delay_secs,
                access_token_lifetime_secs,
                key_reload_secs,
            } => {
                let active_from = now + publish_delay_secs;
                let last_old_signature = active_from.max(now + key_reload_secs);
                (active_from, last_old_signature + access_token_lifetime_secs)
            }
            Schedule::AtOnce => (now, now),
        }
    }
}

/// Adds a new key, published now and signing from the start `schedule` gives it; every other
/// key retires when `schedule` says.
pub async fn rotate(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    algorithm: Algorithm,
    now: UnixSeconds,
    schedule: Schedule,
) -> anyhow::Result<Rotation> {
    // A key sealed under another key-encryption key would stop every instance from loading
    // the keys: check that this one opens the stored keys first.
    for row in store.list_signing_keys(now).await? {
        unseal(kek, &row)?;
    }
    let (active_from, previous_retire_after) = schedule.at(now);
    let stored = new_stored_key(kek, algorithm, now, active_from, None)?;
    store
        .rotate_signing_key(&stored, previous_retire_after)
        .await
        .context("storing the new signing key")?;
    crate::audit::record(
        store,
        now,
        crate::audit::Event::new(crate::audit::EventKind::SigningKeyRotated)
            .detail("kid", stored.kid.clone())
            .detail("alg", stored.alg.clone())
            .detail("active_from", active_from)
            .detail("previous_retire_after", previous_retire_after)
            .detail("at_once", schedule == Schedule::AtOnce),
    )
    .await;
    Ok(Rotation {
        kid: stored.kid,
        alg: stored.alg,
        active_from,
        previous_retire_after,
    })
}

fn new_stored_key(
    kek: &KeyEncryptionKey,
    algorithm: Algorithm,
    now: UnixSeconds,
    active_from: UnixSeconds,
    retire_after: Option<UnixSeconds>,
) -> anyhow::Result<StoredSigningKey> {
    let pair = KeyPair::generate(algorithm, &mut OsRng)?;
    let der = pair.to_pkcs8_der()?;
    let sealed = kek.seal(pair.kid(), &der, &mut OsRng)?;
    Ok(StoredSigningKey {
        kid: pair.kid().to_owned(),
        alg: algorithm.as_str().to_owned(),
        public_jwk: serde_json::to_string(&pair.public_key().to_jwk())?,
        sealed_private_key: sealed,
        created_at: now,
        active_from,
        retire_after,
    })
}

fn unseal(kek: &KeyEncryptionKey, row: &StoredSigningKey) -> Result<KeyPair, ReloadError> {
    let alg = Algorithm::parse(&row.alg).ok_or_else(|| {
        ReloadError::Key(format!(
            "signing key {} has unknown alg {:?}",
            row.kid, row.alg
        ))
    })?;
    let der = kek.open(&row.kid, &row.sealed_private_key).map_err(|e| {
        ReloadError::Key(format!(
            "signing key {}: {e} (is OAUTH_KEY_ENCRYPTION_KEY the one the keys were created with?)",
            row.kid
        ))
    })?;
    KeyPair::from_pkcs8_der(alg, &row.kid, &der)
        .map_err(|e| ReloadError::Key(format!("signing key {}: {e}", row.kid)))
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Key(String),
}

/// The key-encryption key: configured (`OAUTH_KEY_ENCRYPTION_KEY`, `tokens.key_encryption_key`),
/// or, for SQLite only, read from (or created in) the file `<database file>.kek`, mode 0600.
/// PostgreSQL deployments must configure it: every instance needs the same one. A key file is
/// made only for a database without signing keys: when the database has some, the key that
/// sealed them is missing, and a new one would only stand in the way of restoring it.
pub async fn load_key_encryption_key(
    config: &Config,
    store: &dyn Store,
    now: UnixSeconds,
) -> anyhow::Result<KeyEncryptionKey> {
    if let Some(k) = configured_or_file_key(config)? {
        return Ok(k);
    }
    let Some(path) = sqlite_key_file(&config.database_url) else {
        bail!(
            "configuration: a key-encryption key is required with this database: set OAUTH_KEY_ENCRYPTION_KEY \
             (or tokens.key_encryption_key) to the base64 of 32 random bytes, e.g. `openssl rand -base64 32`, \
             the same on every instance"
        );
    };
    if !store.list_signing_keys(now).await?.is_empty() {
        bail!(missing_key_file(&path));
    }
    let kek = KeyEncryptionKey::generate(&mut OsRng);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{}\n", kek.to_base64()).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(
        file = %path.display(),
        "no key-encryption key configured: generated one into this file (mode 0600); \
         back it up with the database, or set OAUTH_KEY_ENCRYPTION_KEY to its content"
    );
    Ok(kek)
}

/// The key-encryption key configured, or in the SQLite key file; `None` when neither is there.
/// Never makes one.
pub fn configured_or_file_key(config: &Config) -> anyhow::Result<Option<KeyEncryptionKey>> {
    if let Some(k) = &config.tokens.key_encryption_key {
        return Ok(Some(k.clone()));
    }
    let Some(path) = sqlite_key_file(&config.database_url) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            // Created 0600; one others may read now (restored from a backup, say) is refused,
            // as a configured key file is.
            crate::config::check_owner_only(&path, "the key-encryption key")?;
            KeyEncryptionKey::from_base64(&text)
                .map(Some)
                .with_context(|| format!("key-encryption key file {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn missing_key_file(path: &std::path::Path) -> String {
    format!(
        "the key-encryption key file {} is missing, though the database has signing keys sealed \
         with it: restore it (it is backed up with the database), or set \
         OAUTH_KEY_ENCRYPTION_KEY to its content",
        path.display()
    )
}

/// Whether `kek` opens the stored signing keys (it must, for the server to start); true when
/// there are none.
pub fn opens_signing_keys(kek: &KeyEncryptionKey, stored: &[StoredSigningKey]) -> bool {
    stored.first().is_none_or(|row| unseal(kek, row).is_ok())
}

/// The key-encryption key the server uses with this database, for an admin command that only
/// needs what is derived from it: the configured one, or on SQLite the file the server made
/// beside the database. Unlike [`load_key_encryption_key`] it never makes one, and it must open
/// the database's signing keys, as it must for the server to start: a command given another
/// key (or none) stops before it changes anything. `None`: the database has no signing key and
/// no key is configured or in a file, so no server has run on it yet.
pub async fn existing_key_encryption_key(
    config: &Config,
    store: &dyn Store,
    now: UnixSeconds,
) -> anyhow::Result<Option<KeyEncryptionKey>> {
    let stored = store.list_signing_keys(now).await?;
    match configured_or_file_key(config)? {
        Some(kek) if opens_signing_keys(&kek, &stored) => Ok(Some(kek)),
        Some(_) => bail!(
            "the key-encryption key given does not open this database's signing keys: give the \
             command the server's key (OAUTH_KEY_ENCRYPTION_KEY or its file)"
        ),
        None if stored.is_empty() => Ok(None),
        None => match sqlite_key_file(&config.database_url) {
            Some(path) => bail!(missing_key_file(&path)),
            None => bail!(
                "configuration: this command needs the server's key-encryption key: set \
                 OAUTH_KEY_ENCRYPTION_KEY (or tokens.key_encryption_key) as for the server"
            ),
        },
    }
}

pub(crate) fn sqlite_key_file(database_url: &str) -> Option<PathBuf> {
    let file = sqlite_database_file(database_url)?;
    Some(PathBuf::from(format!("{}.kek", file.display())))
}

/// The file of an `sqlite:` URL; `None` for another engine or an in-memory database.
pub(crate) fn sqlite_database_file(database_url: &str) -> Option<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path.starts_with(":memory:") {
        return None;
    }
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The previous keys retire when the last token an instance may sign with them expires: an
    /// instance that has not reloaded since the rotation signs with them until it does, even
    /// past the new key's start when the publish delay is shorter than the reload interval.
    #[test]
    fn previous_keys_outlive_the_last_token_any_instance_signs_with_them() {
        let planned = |publish_delay_secs, key_reload_secs| Schedule::Planned {
            publish_delay_secs,
            access_token_lifetime_secs: 3600,
            key_reload_secs,
        };
        assert_eq!(planned(600, 60).at(1000), (1600, 1600 + 3600));
        assert_eq!(planned(0, 60).at(1000), (1000, 1060 + 3600));
        assert_eq!(planned(30, 60).at(1000), (1030, 1060 + 3600));
        assert_eq!(Schedule::AtOnce.at(1000), (1000, 1000));
    }

    #[test]
    fn key_file_sits_beside_the_sqlite_database() {
        assert_eq!(
            sqlite_key_file("sqlite://data/oauth.db"),
            Some(PathBuf::from("data/oauth.db.kek"))
        );
        assert_eq!(
            sqlite_key_file("sqlite:///var/lib/o.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/o.db.kek"))
        );
        assert_eq!(sqlite_key_file("sqlite::memory:"), None);
        assert_eq!(sqlite_key_file("postgres://h/db"), None);
    }
}
