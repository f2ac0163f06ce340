//! Rust SDK for the Telnyx OAuth API, and for any server that speaks it (such as this
//! repository's `oauth-server`).
//!
//! It is shaped like the official Telnyx SDKs: one [`Client`], resources hanging off it
//! (`client.oauth_clients().list(..)`), typed parameters and answers with the API's exact field
//! names, errors classified by status, retries with backoff, and pages that can be walked as a
//! stream.
//!
//! ```no_run
//! use telnyx_oauth::{Client, ClientType, CreateOAuthClient, GrantType};
//!
//! # async fn run() -> Result<(), telnyx_oauth::Error> {
//! // TELNYX_API_KEY, and TELNYX_BASE_URL for a server of your own.
//! let client = Client::from_env()?;
//!
//! let created = client
//!     .oauth_clients()
//!     .create(&CreateOAuthClient::new(
//!         "My OAuth client",
//!         ClientType::Confidential,
//!         [GrantType::ClientCredentials],
//!         ["admin"],
//!     ))
//!     .await?;
//! println!("{} {:?}", created.client_id, created.client_secret);
//! # Ok(()) }
//! ```
//!
//! # Resources
//!
//! | resource | methods |
//! |---|---|
//! | [`Client::well_known`] | `retrieve_authorization_server_metadata`, `retrieve_protected_resource_metadata` |
//! | [`Client::oauth`] | `retrieve_authorize`, `retrieve` (consent token), `grants`, `introspect`, `retrieve_jwks`, `register`, `token`, `revoke` |
//! | [`Client::oauth_clients`] | `list`, `list_auto`, `create`, `retrieve`, `update`, `delete` |
//! | [`Client::oauth_grants`] | `list`, `list_auto`, `retrieve`, `delete` |
//!
//! # Parameters
//!
//! Every parameter type is built with `new(..)`, which takes the required fields, and one setter
//! per optional field; the types are `#[non_exhaustive]`, so a field the API adds later is a new
//! setter and breaks no caller. Fields left unset are left out of the request.
//!
//! ```
//! use telnyx_oauth::{GrantType, ListOAuthClientsParams, OAuthClientFilter, TokenRequest};
//! let token = TokenRequest::new(GrantType::RefreshToken)
//!     .refresh_token("the refresh token")
//!     .scope("admin");
//! let params = ListOAuthClientsParams::new()
//!     .page_size(50)
//!     .filter(OAuthClientFilter::new().name_contains("billing"));
//! # let _ = (token, params);
//! ```
//!
//! # Errors
//!
//! Every call returns [`Error`]. A status error carries an [`ApiError`] with the status, the
//! headers and the decoded body (`error`, `error_description`, `errors[]`):
//!
//! ```no_run
//! # async fn run(client: telnyx_oauth::Client) {
//! use telnyx_oauth::Error;
//! match client.oauth_clients().retrieve("no-such-id").await {
//!     Ok(c) => println!("{}", c.name),
//!     Err(Error::NotFound(e)) => println!("gone: {e}"),
//!     Err(Error::UnprocessableEntity(e)) => {
//!         for field in e.body.iter().flat_map(|b| &b.errors) {
//!             println!("{:?}: {}", field.source, field.title);
//!         }
//!     }
//!     Err(e @ (Error::Connection(_) | Error::Timeout(_))) => println!("network: {e}"),
//!     Err(e) => println!("{e}"),
//! }
//! # }
//! ```
//!
//! # Retries
//!
//! Connection errors, timeouts, 408, 409, 429 and 5xx are retried (twice by default), unless the
//! answer says `x-should-retry: false`; `x-should-retry: true` makes any answer retried. The
//! delay is the server's `retry-after-ms` or `Retry-After` when between 0 and 60 s, otherwise
//! `min(0.5 s × 2ⁿ, 8 s)` times a jitter factor in [0.75, 1]. Every attempt carries
//! `X-Stainless-Retry-Count` (0, 1, 2, ...), counting that call's attempts only. A body cut short
//! is retried like a connection error.
//!
//! # Per-call options and raw responses
//!
//! Every method returns a [`Call`]: await it for the answer, or first give it options of its own
//! ([`RequestOptions`]: timeout, retries, extra headers) or ask for the status and headers too:
//!
//! ```no_run
//! # async fn run(client: telnyx_oauth::Client) -> Result<(), telnyx_oauth::Error> {
//! use std::time::Duration;
//! let response = client
//!     .oauth_clients()
//!     .retrieve("182bd5e5-6e1a-4fe4-a799-aa6d9a6ab26e")
//!     .timeout(Duration::from_secs(5))
//!     .max_retries(0)
//!     .header("x-request-source", "nightly-job")
//!     .with_raw_response()
//!     .await?;
//! println!("{} {}", response.status, response.data.name);
//! # Ok(()) }
//! ```
//!
//! [`Client::with_options`] gives a client whose every call uses the options.
//!
//! # Logging
//!
//! Each call is a `tracing` span `telnyx_oauth.request` at `DEBUG` with `method`, `path` (the
//! template, such as `/oauth_clients/{id}`, never an id), `status` and `retries`; an event
//! `retrying the request` precedes each retry's sleep. Nothing secret is logged.
//!
//! # Blocking
//!
//! The `blocking` feature adds `telnyx_oauth::blocking::Client`, the same resources for
//! programs without an async runtime.
//!
//! # TLS and the HTTP client
//!
//! TLS goes through rustls, never OpenSSL. The `rustls` feature (default) trusts the Mozilla
//! roots built into the crate; `rustls-native-roots` trusts the operating system's store.
//! [`ClientBuilder::http_client`] takes a `reqwest::Client` of your own instead (a proxy, other
//! roots, a shared pool); the SDK's timeout and headers still apply to it. The SDK needs a tokio
//! runtime but enables only tokio's `sync` and `time` features itself.
//!
//! # Pages
//!
//! `list` returns a [`Page`]; [`Page::auto_paging_stream`] and `list_auto` yield every item of
//! every page, repeating the original filters with `page[number]` advanced.

#![warn(missing_docs)]

/// The README's examples, compiled as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(feature = "blocking")]
pub mod blocking;
mod call;
mod client;
mod error;
mod metadata_document;
mod pagination;
mod pkce;
mod platform;
mod resources;
mod retry;

pub use call::{Call, RequestOptions, Response};
pub use client::{
    BodyEncoding, Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT,
    MAX_ERROR_BODY_BYTES, MAX_RESPONSE_BYTES,
};
pub use error::{ApiError, Error};
pub use metadata_document::{ClientIdMetadataDocument, MetadataAuthMethod};
pub use pagination::Page;
pub use pkce::{random_state, Pkce};
pub use resources::{
    AuthorizeParams, AuthorizeRedirect, CodeChallengeMethod, ListOAuthClientsParams,
    ListOAuthGrantsParams, OAuth, OAuthClientFilter, OAuthClients, OAuthGrants, ResponseType,
    WellKnown,
};

/// The wire types, re-exported so that callers need no second dependency.
pub use oauth_wire::{
    AuthorizationServerMetadata, ClientType, ConsentDetails, CreateGrantRequest,
    CreateGrantResponse, CreateOAuthClient, ErrorBody, ErrorObject, ErrorSource, GrantType,
    IntrospectRequest, IntrospectResponse, Jwk, JwkSet, OAuthClient, OAuthGrant, PageMeta,
    ProtectedResourceMetadata, RegistrationRequest, RegistrationResponse, RequestedScope,
    RevokeRequest, TokenEndpointAuthMethod, TokenRequest, TokenResponse, UpdateOAuthClient,
};

/// The date-time type of `created_at` and the other timestamps (from the `time` crate).
pub use oauth_wire::OffsetDateTime;
