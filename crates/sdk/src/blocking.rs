//! A blocking client, for programs without an async runtime (feature `blocking`).
//!
//! It wraps the async [`crate::Client`] and runs each call on an internal tokio runtime of one
//! worker thread, so it behaves exactly like the async client (retries, client-credentials
//! tokens, errors). Methods return a [`Call`]; [`Call::send`] sends it.
//!
//! ```no_run
//! use telnyx_oauth::blocking::Client;
//!
//! let client = Client::new("KEY0123456789")?;
//! let page = client.oauth_clients().list(&Default::default()).send()?;
//! for c in &page.data {
//!     println!("{}", c.client_id);
//! }
//! # Ok::<(), telnyx_oauth::Error>(())
//! ```
//!
//! Like `reqwest::blocking`, it must not be used from inside an async runtime: calling it (or
//! dropping it) there panics. Use the async client there.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use oauth_wire::{
    AuthorizationServerMetadata, ConsentDetails, CreateGrantRequest, CreateGrantResponse,
    CreateOAuthClient, IntrospectRequest, IntrospectResponse, JwkSet, OAuthClient, OAuthGrant,
    ProtectedResourceMetadata, RegistrationRequest, RegistrationResponse, RevokeRequest,
    TokenRequest, TokenResponse, UpdateOAuthClient,
};
use serde::de::DeserializeOwned;
use tokio::runtime::Runtime;

use crate::{
    AuthorizeParams, AuthorizeRedirect, Error, ListOAuthClientsParams, ListOAuthGrantsParams, Page,
    RequestOptions, Response,
};

/// A blocking Telnyx OAuth API client. Cheap to clone: clones share the connection pool, the
/// cached client-credentials token and the runtime.
#[derive(Debug, Clone)]
pub struct Client {
    inner: crate::Client,
    runtime: Arc<Runtime>,
}

impl Client {
    /// A client that authenticates with an API key; see [`crate::Client::new`].
    pub fn new(api_key: impl Into<String>) -> Result<Client, Error> {
        Client::from_async(crate::Client::new(api_key)?)
    }

    /// A client configured from the environment; see [`crate::Client::from_env`].
    pub fn from_env() -> Result<Client, Error> {
        Client::from_async(crate::Client::from_env()?)
    }

    /// A client in client-credentials mode; see [`crate::Client::with_client_credentials`].
    pub fn with_client_credentials(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Client, Error> {
        Client::from_async(crate::Client::with_client_credentials(
            client_id,
            client_secret,
        )?)
    }

    /// A blocking client over an async one built with [`crate::Client::builder`]; the two share
    /// the connection pool and the cached token.
    ///
    /// ```no_run
    /// let client = telnyx_oauth::blocking::Client::from_async(
    ///     telnyx_oauth::Client::builder()
    ///         .api_key("KEY0123456789")
    ///         .base_url("http://127.0.0.1:8080")
    ///         .build()?,
    /// )?;
    /// # Ok::<(), telnyx_oauth::Error>(())
    /// ```
    pub fn from_async(client: crate::Client) -> Result<Client, Error> {
        // A worker thread of its own, always running: the connections this client opens go
        // into the pool it shares with the async client, and one of them taken up by the async
        // client must be driven while no blocking call runs (a current-thread runtime drives
        // its connections only inside `block_on`, so the async call would wait until its
        // timeout).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("telnyx-oauth-blocking")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::Config(format!("cannot start the blocking client's runtime: {e}"))
            })?;
        Ok(Client {
            inner: client,
            runtime: Arc::new(runtime),
        })
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// A client whose every call uses `options`; see [`crate::Client::with_options`].
    pub fn with_options(&self, options: RequestOptions) -> Client {
        Client {
            inner: self.inner.with_options(options),
            runtime: self.runtime.clone(),
        }
    }

    /// The base URL every path is appended to.
    pub fn base_url(&self) -> &str {
        self.inner.base_url()
    }

    /// The discovery documents.
    pub fn well_known(&self) -> WellKnown<'_> {
        WellKnown { client: self }
    }

    /// The OAuth protocol endpoints.
    pub fn oauth(&self) -> OAuth<'_> {
        OAuth { client: self }
    }

    /// The organization's OAuth clients.
    pub fn oauth_clients(&self) -> OAuthClients<'_> {
        OAuthClients { client: self }
    }

    /// The user's OAuth grants.
    pub fn oauth_grants(&self) -> OAuthGrants<'_> {
        OAuthGrants { client: self }
    }

    /// The page after `page`, or `None` after the last one.
    pub fn next_page<T: DeserializeOwned + Send + 'static>(
        &self,
        page: &Page<T>,
    ) -> Result<Option<Page<T>>, Error> {
        self.runtime.block_on(page.next_page())
    }

    fn call<'a, T: Send + 'a>(&'a self, call: crate::Call<'a, T>) -> Call<'a, T> {
        Call {
            call,
            runtime: &self.runtime,
        }
    }
}

/// One API call of the blocking client: [`Call::send`] sends it.
#[must_use = "a call sends nothing until `send` is called"]
#[derive(Debug)]
pub struct Call<'a, T> {
    call: crate::Call<'a, T>,
    runtime: &'a Runtime,
}

impl<'a, T: Send + 'a> Call<'a, T> {
    /// Sends this call with `options` over the client's; see [`crate::Call::with_options`].
    pub fn with_options(self, options: RequestOptions) -> Self {
        Call {
            call: self.call.with_options(options),
            runtime: self.runtime,
        }
    }

    /// How long each attempt of this call may take.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with_options(RequestOptions::new().timeout(timeout))
    }

    /// How many times this call is retried after a transient failure.
    pub fn max_retries(self, retries: u32) -> Self {
        self.with_options(RequestOptions::new().max_retries(retries))
    }

    /// A header sent with this call only.
    pub fn header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_options(RequestOptions::new().header(name, value))
    }

    /// Sends the call and returns the decoded answer.
    pub fn send(self) -> Result<T, Error> {
        self.runtime.block_on(self.call.send())
    }

    /// Sends the call and returns the decoded answer with its status and headers.
    pub fn with_raw_response(self) -> Result<Response<T>, Error> {
        self.runtime.block_on(self.call.with_raw_response())
    }
}

/// The discovery documents; see [`crate::WellKnown`].
#[derive(Debug, Clone, Copy)]
pub struct WellKnown<'a> {
    client: &'a Client,
}

impl<'a> WellKnown<'a> {
    /// `GET /.well-known/oauth-authorization-server`.
    pub fn retrieve_authorization_server_metadata(&self) -> Call<'a, AuthorizationServerMetadata> {
        let c = self.client;
        c.call(
            c.inner
                .well_known()
                .retrieve_authorization_server_metadata(),
        )
    }

    /// `GET /.well-known/oauth-protected-resource`.
    pub fn retrieve_protected_resource_metadata(&self) -> Call<'a, ProtectedResourceMetadata> {
        let c = self.client;
        c.call(c.inner.well_known().retrieve_protected_resource_metadata())
    }
}

/// The OAuth protocol endpoints; see [`crate::OAuth`].
#[derive(Debug, Clone, Copy)]
pub struct OAuth<'a> {
    client: &'a Client,
}

impl<'a> OAuth<'a> {
    /// `GET /oauth/authorize`, the redirect not followed.
    pub fn retrieve_authorize(&self, params: &AuthorizeParams) -> Call<'a, AuthorizeRedirect> {
        let c = self.client;
        c.call(c.inner.oauth().retrieve_authorize(params))
    }

    /// `GET /oauth/consent/{consent_token}`.
    pub fn retrieve(&self, consent_token: &str) -> Call<'a, ConsentDetails> {
        let c = self.client;
        c.call(c.inner.oauth().retrieve(consent_token))
    }

    /// `POST /oauth/grants`.
    pub fn grants(&self, params: &CreateGrantRequest) -> Call<'a, CreateGrantResponse> {
        let c = self.client;
        c.call(c.inner.oauth().grants(params))
    }

    /// `POST /oauth/introspect`.
    pub fn introspect(&self, params: &IntrospectRequest) -> Call<'a, IntrospectResponse> {
        let c = self.client;
        c.call(c.inner.oauth().introspect(params))
    }

    /// `GET /oauth/jwks`.
    pub fn retrieve_jwks(&self) -> Call<'a, JwkSet> {
        let c = self.client;
        c.call(c.inner.oauth().retrieve_jwks())
    }

    /// `POST /oauth/register`.
    pub fn register(&self, params: &RegistrationRequest) -> Call<'a, RegistrationResponse> {
        let c = self.client;
        c.call(c.inner.oauth().register(params))
    }

    /// `GET /oauth/register/{client_id}` (RFC 7592).
    pub fn retrieve_registration(
        &self,
        client_id: &str,
        registration_access_token: &str,
    ) -> Call<'a, RegistrationResponse> {
        let c = self.client;
        c.call(
            c.inner
                .oauth()
                .retrieve_registration(client_id, registration_access_token),
        )
    }

    /// `PUT /oauth/register/{client_id}` (RFC 7592).
    pub fn update_registration(
        &self,
        client_id: &str,
        registration_access_token: &str,
        params: &RegistrationRequest,
    ) -> Call<'a, RegistrationResponse> {
        let c = self.client;
        c.call(
            c.inner
                .oauth()
                .update_registration(client_id, registration_access_token, params),
        )
    }

    /// `DELETE /oauth/register/{client_id}` (RFC 7592).
    pub fn delete_registration(
        &self,
        client_id: &str,
        registration_access_token: &str,
    ) -> Call<'a, ()> {
        let c = self.client;
        c.call(
            c.inner
                .oauth()
                .delete_registration(client_id, registration_access_token),
        )
    }

    /// `POST /oauth/token`.
    pub fn token(&self, params: &TokenRequest) -> Call<'a, TokenResponse> {
        let c = self.client;
        c.call(c.inner.oauth().token(params))
    }

    /// `POST /oauth/revoke`.
    pub fn revoke(&self, params: &RevokeRequest) -> Call<'a, ()> {
        let c = self.client;
        c.call(c.inner.oauth().revoke(params))
    }
}

/// The organization's OAuth clients; see [`crate::OAuthClients`].
#[derive(Debug, Clone, Copy)]
pub struct OAuthClients<'a> {
    client: &'a Client,
}

impl<'a> OAuthClients<'a> {
    /// `GET /oauth_clients`: one page; [`Client::next_page`] fetches the next.
    pub fn list(&self, params: &ListOAuthClientsParams) -> Call<'a, Page<OAuthClient>> {
        let c = self.client;
        c.call(c.inner.oauth_clients().list(params))
    }

    /// Every matching client, across all pages, fetched as the iterator is consumed. An error
    /// ends the iteration after it is yielded.
    pub fn list_auto(
        &self,
        params: &ListOAuthClientsParams,
    ) -> impl Iterator<Item = Result<OAuthClient, Error>> + 'a {
        let c = self.client;
        let mut stream = Box::pin(c.inner.oauth_clients().list_auto(params));
        std::iter::from_fn(move || c.runtime.block_on(stream.next()))
    }

    /// `POST /oauth_clients`.
    pub fn create(&self, params: &CreateOAuthClient) -> Call<'a, OAuthClient> {
        let c = self.client;
        c.call(c.inner.oauth_clients().create(params))
    }

    /// `GET /oauth_clients/{id}`.
    pub fn retrieve(&self, id: &str) -> Call<'a, OAuthClient> {
        let c = self.client;
        c.call(c.inner.oauth_clients().retrieve(id))
    }

    /// `PUT /oauth_clients/{id}`.
    pub fn update(&self, id: &str, params: &UpdateOAuthClient) -> Call<'a, OAuthClient> {
        let c = self.client;
        c.call(c.inner.oauth_clients().update(id, params))
    }

    /// `DELETE /oauth_clients/{id}`.
    pub fn delete(&self, id: &str) -> Call<'a, ()> {
        let c = self.client;
        c.call(c.inner.oauth_clients().delete(id))
    }
}

/// The user's OAuth grants; see [`crate::OAuthGrants`].
#[derive(Debug, Clone, Copy)]
pub struct OAuthGrants<'a> {
    client: &'a Client,
}

impl<'a> OAuthGrants<'a> {
    /// `GET /oauth_grants`: one page; [`Client::next_page`] fetches the next.
    pub fn list(&self, params: &ListOAuthGrantsParams) -> Call<'a, Page<OAuthGrant>> {
        let c = self.client;
        c.call(c.inner.oauth_grants().list(params))
    }

    /// Every grant, across all pages, fetched as the iterator is consumed.
    pub fn list_auto(
        &self,
        params: &ListOAuthGrantsParams,
    ) -> impl Iterator<Item = Result<OAuthGrant, Error>> + 'a {
        let c = self.client;
        let mut stream = Box::pin(c.inner.oauth_grants().list_auto(params));
        std::iter::from_fn(move || c.runtime.block_on(stream.next()))
    }

    /// `GET /oauth_grants/{id}`.
    pub fn retrieve(&self, id: &str) -> Call<'a, OAuthGrant> {
        let c = self.client;
        c.call(c.inner.oauth_grants().retrieve(id))
    }

    /// `DELETE /oauth_grants/{id}`: revokes the grant and returns it.
    pub fn delete(&self, id: &str) -> Call<'a, OAuthGrant> {
        let c = self.client;
        c.call(c.inner.oauth_grants().delete(id))
    }
}
