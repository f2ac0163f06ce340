//! What every handler can reach: storage, configuration, the clock, the issuer, the signing keys.

use std::sync::Arc;

use oauth_store::Store;

use crate::clock::Clock;
use crate::config::Config;
use crate::passwords::PasswordChecks;
use crate::rate_limit::RateLimiters;
use crate::signing::KeyRing;

/// Cheap to clone (one reference count): axum clones the state for every extractor and layer
/// that takes it, several times per request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// The resolved issuer identifier, without a trailing slash.
    pub issuer: Arc<str>,
    /// The access-token signing keys, in memory.
    pub keys: Arc<KeyRing>,
    /// In-process request-rate limits.
    pub rate_limits: Arc<RateLimiters>,
    /// The sign-in form's password checks, bounded in number.
    pub passwords: Arc<PasswordChecks>,
    /// Client ID Metadata Documents: the fetchers and the per-process cache.
    pub documents: Arc<crate::cimd::Documents>,
    /// The sign-in lockouts whose event has been stored in this failure window.
    pub lockouts: Arc<crate::lockouts::LockoutEvents>,
    /// What the failed-login counters key an account by: a keyed digest of what was typed as
    /// its email (derived from the key-encryption key, so the same on every instance).
    pub login_keys: Arc<oauth_core::secret::DigestKey>,
    /// Log lines any caller can cause at the request rate, kept to a pace.
    pub log_paces: Arc<crate::log_pace::LogPaces>,
}

impl Shared {
    /// RFC 9728 §3: where this server, as a protected resource, describes itself.
    pub fn protected_resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource", self.issuer)
    }

    /// RFC 8707 resources this server accepts: the issuer itself (the management API, and the
    /// default audience) and the configured `resources`.
    pub fn known_resources(&self) -> Vec<String> {
        let mut known = vec![self.issuer.to_string()];
        known.extend(
            self.config
                .resources
                .iter()
                .filter(|r| r.as_str() != &*self.issuer)
                .cloned(),
        );
        known
    }

    /// The known resource `resource` names, spelled as configured (RFC 3986 §6.2.3: a trailing
    /// slash on a path-less URI, scheme and host case do not make another resource).
    pub fn canonical_resource(&self, resource: &str) -> Option<String> {
        oauth_core::resource::match_known(resource, &self.known_resources()).map(str::to_owned)
    }

    /// Cookies get `Secure` when the server is reached over https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}
