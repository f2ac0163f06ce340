//! `/.well-known/*`: the discovery documents.

use oauth_wire::{AuthorizationServerMetadata, ProtectedResourceMetadata};

use crate::call::{self, Call};
use crate::client::{Client, Request};

/// The discovery documents, fetched from `<base>/.well-known/...` as the official SDKs do.
#[derive(Debug, Clone, Copy)]
pub struct WellKnown<'a> {
    client: &'a Client,
}

impl<'a> WellKnown<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        WellKnown { client }
    }

    /// `GET /.well-known/oauth-authorization-server`: authorization server metadata (RFC 8414).
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let response = client.well_known().retrieve_authorization_server_metadata().await?;
    /// println!("{}", response.issuer);
    /// # Ok(()) }
    /// ```
    pub fn retrieve_authorization_server_metadata(&self) -> Call<'a, AuthorizationServerMetadata> {
        let req = Request::get(
            "/.well-known/oauth-authorization-server",
            &[".well-known", "oauth-authorization-server"],
        );
        Call::new(self.client, Ok(req), call::json)
    }

    /// `GET /.well-known/oauth-protected-resource`: protected resource metadata (RFC 9728).
    ///
    /// ```no_run
    /// # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
    /// let response = client.well_known().retrieve_protected_resource_metadata().await?;
    /// println!("{} {:?}", response.resource, response.authorization_servers);
    /// # Ok(()) }
    /// ```
    pub fn retrieve_protected_resource_metadata(&self) -> Call<'a, ProtectedResourceMetadata> {
        let req = Request::get(
            "/.well-known/oauth-protected-resource",
            &[".well-known", "oauth-protected-resource"],
        );
        Call::new(self.client, Ok(req), call::json)
    }
}
