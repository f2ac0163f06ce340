//! What every handler can reach: storage, configuration, the clock, the issuer.

use std::sync::Arc;

use oauth_store::Store;

use crate::clock::Clock;
use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// The resolved issuer identifier, without a trailing slash.
    pub issuer: Arc<str>,
}

impl AppState {
    /// RFC 9728 §3: where this server, as a protected resource, describes itself.
    pub fn protected_resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource", self.issuer)
    }

    /// RFC 8707 resources this server accepts: as configured, else the issuer itself.
    pub fn known_resources(&self) -> Vec<String> {
        if self.config.authorization.resources.is_empty() {
            vec![self.issuer.to_string()]
        } else {
            self.config.authorization.resources.clone()
        }
    }

    /// Cookies get `Secure` when the server is reached over https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}
