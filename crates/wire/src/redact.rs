//! `Debug` for the types that carry credentials (secrets, tokens, codes): every field as a
//! derived `Debug` would show it, except the credentials, which show as `"[redacted]"` (an
//! absent one as `None`). A type's value is then safe in a log line or a panic message.

use std::fmt;

/// A credential's place in `Debug` output.
pub(crate) struct Hidden(Shown);

enum Shown {
    Plain,
    Some,
    None,
}

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Shown::Plain => f.write_str("\"[redacted]\""),
            Shown::Some => f.write_str("Some(\"[redacted]\")"),
            Shown::None => f.write_str("None"),
        }
    }
}

/// A field that holds a credential.
pub(crate) trait Credential {
    fn hidden(&self) -> Hidden;
}

impl Credential for String {
    fn hidden(&self) -> Hidden {
        Hidden(Shown::Plain)
    }
}

impl Credential for Option<String> {
    fn hidden(&self) -> Hidden {
        Hidden(if self.is_some() {
            Shown::Some
        } else {
            Shown::None
        })
    }
}

/// `impl Debug for $ty`, showing the `shown` fields and hiding the `hidden` ones. Every field
/// must be named in one list or the other: the pattern has no `..`, so a field added to the type
/// and not here does not compile.
macro_rules! debug_hiding_credentials {
    ($ty:ident { $($shown:ident),* $(,)? } hidden { $($hidden:ident),* $(,)? }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let $ty { $($shown,)* $($hidden,)* } = self;
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($shown), $shown))*
                    $(.field(
                        stringify!($hidden),
                        &$crate::redact::Credential::hidden($hidden),
                    ))*
                    .finish()
            }
        }
    };
}

pub(crate) use debug_hiding_credentials;

/// A URL whose query and fragment may carry a credential (an authorization code, a consent
/// token): debug output shows what comes before them, and that something was left out.
pub struct QueryHidden<'a>(pub &'a str);

impl std::fmt::Debug for QueryHidden<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.find(['?', '#']) {
            Some(at) => write!(f, "\"{}?<hidden>\"", &self.0[..at]),
            None => write!(f, "{:?}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        CreateGrantRequest, GrantType, IntrospectRequest, RevokeRequest, TokenRequest,
        TokenResponse,
    };

    #[test]
    fn credentials_never_show_in_debug_output() {
        let shown = [
            format!(
                "{:?}",
                TokenRequest::new(GrantType::RefreshToken)
                    .client_secret("CS-SECRET")
                    .refresh_token("RT-SECRET")
                    .code("CODE-SECRET")
                    .code_verifier("VERIFIER-SECRET")
                    .scope("admin")
            ),
            format!(
                "{:?}",
                TokenResponse {
                    access_token: "AT-SECRET".into(),
                    token_type: "Bearer".into(),
                    expires_in: 3600,
                    refresh_token: Some("RT-SECRET".into()),
                    scope: Some("admin".into()),
                }
            ),
            format!(
                "{:?}",
                IntrospectRequest::new("AT-SECRET").client_secret("CS-SECRET")
            ),
            format!(
                "{:?}",
                RevokeRequest::new("RT-SECRET").client_secret("CS-SECRET")
            ),
            format!("{:?}", CreateGrantRequest::new(true, "CONSENT-SECRET")),
        ];
        for s in &shown {
            assert!(!s.contains("SECRET"), "{s}");
            assert!(s.contains("[redacted]"), "{s}");
        }
        assert!(shown[0].contains("scope: Some(\"admin\")"), "{}", shown[0]);
        assert!(shown[0].contains("client_id: None"), "{}", shown[0]);
        assert!(shown[1].contains("expires_in: 3600"), "{}", shown[1]);
    }
}
