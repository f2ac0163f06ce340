//! One type per API resource, mirroring the official SDKs (`client.oauth_clients().list(..)`).

mod oauth;
mod oauth_clients;
mod oauth_grants;
mod well_known;

pub use oauth::{AuthorizeParams, AuthorizeRedirect, CodeChallengeMethod, OAuth, ResponseType};
pub use oauth_clients::{ListOAuthClientsParams, OAuthClientFilter, OAuthClients};
pub use oauth_grants::{ListOAuthGrantsParams, OAuthGrants};
pub use well_known::WellKnown;

/// `page[number]` and `page[size]`, when set.
fn page_query(number: Option<u64>, size: Option<u64>) -> Vec<(String, String)> {
    let mut q = Vec::new();
    if let Some(n) = number {
        q.push(("page[number]".to_owned(), n.to_string()));
    }
    if let Some(s) = size {
        q.push(("page[size]".to_owned(), s.to_string()));
    }
    q
}
