//! String enumerations that tolerate values added later.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        ///
        /// New values may be added in a minor release, so a `match` needs a wildcard arm.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $(#[doc = concat!("`", $text, "`.")] $variant,)+
            /// A value this version does not know.
            Other(String),
        }

        impl $name {
            /// Every value this version knows, in a stable order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The value as written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s.as_str(),
                }
            }

            /// The value for `s`; one this version does not know is kept as `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Other(other.to_owned()),
                }
            }

            /// True for a value this version knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        /// A string: the known values are listed as examples, not as an `enum`, because an
        /// unknown one is still well-formed on the wire.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .examples([$(serde_json::Value::from($text)),+])
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Ok($name::parse(&s))
            }
        }
    };
}

open_enum! {
    /// OAuth client type (RFC 6749 §2.1).
    ClientType { Public => "public", Confidential => "confidential" }
}

open_enum! {
    /// OAuth 2.0 grant types this API speaks.
    GrantType {
        AuthorizationCode => "authorization_code",
        ClientCredentials => "client_credentials",
        RefreshToken => "refresh_token",
    }
}

open_enum! {
    /// How a client authenticates at the token endpoint (RFC 7591 §2).
    TokenEndpointAuthMethod {
        None => "none",
        ClientSecretBasic => "client_secret_basic",
        ClientSecretPost => "client_secret_post",
        PrivateKeyJwt => "private_key_jwt",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_survive_a_round_trip() {
        let g: GrantType = serde_json::from_str("\"urn:ietf:params:oauth:grant-type:device_code\"")
            .unwrap_or(GrantType::RefreshToken);
        assert_eq!(
            g,
            GrantType::Other("urn:ietf:params:oauth:grant-type:device_code".into())
        );
        assert!(!g.is_known());
        assert_eq!(
            serde_json::to_string(&g).ok().as_deref(),
            Some("\"urn:ietf:params:oauth:grant-type:device_code\"")
        );
        assert_eq!(GrantType::parse("refresh_token"), GrantType::RefreshToken);
        assert!(GrantType::RefreshToken.is_known());
    }
}
