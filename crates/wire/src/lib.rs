//! Wire types of the Telnyx-compatible OAuth API: the JSON (and form) bodies that travel between
//! a client and the server, with the contract's exact field names.
//!
//! The server and the `telnyx-oauth` SDK share these definitions, so a field renamed here is
//! renamed on both sides at once. Nothing in this crate does IO or validation beyond the shape of
//! the data: the server validates values in `oauth-core`.
//!
//! Enumerations keep values they do not know (`Other(String)`), so that an SDK built today keeps
//! working when the server adds a grant type tomorrow; the server rejects such values itself.

#![warn(missing_docs)]

/// The README's examples, compiled as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod clients;
pub mod consent;
pub mod discovery;
mod enums;
pub mod error;
pub mod grants;
pub mod page;
mod redact;
pub mod registration;
pub mod timestamp;
pub mod token;

pub use clients::{CreateOAuthClient, OAuthClient, UpdateOAuthClient};
pub use consent::{ConsentDetails, CreateGrantRequest, CreateGrantResponse, RequestedScope};
pub use discovery::{AuthorizationServerMetadata, Jwk, JwkSet, ProtectedResourceMetadata};
pub use enums::{ClientType, GrantType, TokenEndpointAuthMethod};
pub use error::{ErrorBody, ErrorObject, ErrorSource};
pub use grants::OAuthGrant;
pub use page::{Data, List, PageMeta};
/// Debug output of a URL whose query may carry a credential (the SDK's use; not part of the
/// wire format).
#[doc(hidden)]
pub use redact::QueryHidden;
pub use registration::{RegistrationRequest, RegistrationResponse};
/// The type of every timestamp (`created_at`, ...): read and written as RFC 3339.
pub use time::OffsetDateTime;
pub use token::{
    IntrospectRequest, IntrospectResponse, RevokeRequest, TokenRequest, TokenResponse,
};

/// Decodes `null` as the type's default (an empty list), for members an answer may send as `null`.
pub(crate) fn null_as_default<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: Default + serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize as _;
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Serde helper for a field that distinguishes "absent" (`None`) from "null" (`Some(None)`),
/// as a partial update needs: absent leaves a value alone, `null` clears it.
pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Decodes a present member (`null` included) as `Some(..)`; an absent one stays `None`
    /// through `#[serde(default)]`.
    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }

    /// Writes `Some(v)` as `v` (`Some(None)` as `null`); pair with `skip_serializing_if =
    /// "Option::is_none"` to leave `None` out.
    pub fn serialize<T, S>(value: &Option<Option<T>>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize,
        S: Serializer,
    {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }
}

/// `#[serde(default, deserialize_with = "oauth_wire::not_null::deserialize")]` on an
/// `Option<T>` of an update: an absent member leaves the value alone (`None`), and a present
/// one must be a `T`. A `null` is refused (`invalid type: null`) instead of being read as "leave
/// it alone", for a member that cannot be cleared.
pub mod not_null {
    use serde::{Deserialize, Deserializer};

    /// Decodes a present member as `Some(T)`; `null` is an error.
    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        T::deserialize(deserializer).map(Some)
    }
}
