//! The domain of the OAuth server, without IO: what a client is and which clients are valid,
//! scopes and their catalogue, redirect URIs and how they match, secrets and how they are
//! checked, pagination, the authorization request with PKCE, signing keys and JWT access
//! tokens.
//!
//! Time and randomness are parameters: every function that needs "now" takes it, and every
//! function that makes a secret takes the random number generator, so that tests fix both.

pub mod authorize;
pub mod cimd;
pub mod client;
pub mod client_assertion;
pub mod entity;
pub mod jwt;
pub mod keys;
pub mod page;
pub mod pkce;
pub mod redirect_uri;
pub mod resource;
pub mod return_to;
pub mod scope;
pub mod secret;
pub mod timefmt;
pub mod token;
pub mod validation;

pub use client::{Client, ClientDraft, ClientOrigin, ClientPatch, RegistrationPolicy};
pub use page::{PageRequest, PageSpec};
pub use redirect_uri::RedirectUri;
pub use scope::{ScopeCatalogue, ScopeDef};
pub use validation::{FieldError, ValidationErrors};

/// Seconds since the Unix epoch, UTC. Every stored time is one of these.
pub type UnixSeconds = i64;
