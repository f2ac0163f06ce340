//! The consent step: `GET /oauth/consent/{consent_token}` and `POST /oauth/grants`.

use serde::{Deserialize, Serialize};

/// What a consent page shows about a pending authorization request.
///
/// Every member is optional, as in the official SDKs' models: an answer that leaves one out (or
/// sends `null`) still decodes. This server always sends all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentDetails {
    /// The client asking for access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The client's name, to show the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The client's logo.
    #[serde(default)]
    pub logo_uri: Option<String>,
    /// The client's privacy policy.
    #[serde(default)]
    pub policy_uri: Option<String>,
    /// The client's terms of service.
    #[serde(default)]
    pub tos_uri: Option<String>,
    /// Where the answer will be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Whether the operator has verified the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// The scopes asked for; empty when the answer lists none (absent or `null`).
    #[serde(default, deserialize_with = "crate::null_as_default")]
    pub requested_scopes: Vec<RequestedScope>,
    /// What the access is for (RFC 8707): the resource the request names, or the authorization
    /// server's issuer (its own management API) when it names none. Not in Telnyx's answer;
    /// a consent screen built on this answer should show it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// One scope the client asks for, with the text a user reads. Every member is optional, as in the
/// official SDKs' models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestedScope {
    /// The scope's identifier, as a token carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A short name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the scope allows, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `POST /oauth/grants`: the user's decision on a pending authorization request.
///
/// ```
/// use oauth_wire::CreateGrantRequest;
/// let decision = CreateGrantRequest::new(true, "consent-token");
/// assert!(decision.allowed);
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CreateGrantRequest {
    /// `true` grants the requested scopes, `false` denies them.
    pub allowed: bool,
    /// The token that named the request on the consent page.
    pub consent_token: String,
}

crate::redact::debug_hiding_credentials!(CreateGrantRequest {
    allowed,
} hidden {
    consent_token,
});

impl CreateGrantRequest {
    /// A decision on the request `consent_token` names.
    pub fn new(allowed: bool, consent_token: impl Into<String>) -> Self {
        CreateGrantRequest {
            allowed,
            consent_token: consent_token.into(),
        }
    }
}

/// The answer to a consent decision: where to send the user's browser.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateGrantResponse {
    /// Where to send the browser: the client's redirect URI with `code` and `state`, or with `error`.
    pub redirect_uri: String,
}

/// The redirect URI without its query, which carries the authorization code.
impl std::fmt::Debug for CreateGrantResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateGrantResponse")
            .field(
                "redirect_uri",
                &crate::redact::QueryHidden(&self.redirect_uri),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_details_decode_with_members_missing() {
        let sparse: Option<ConsentDetails> =
            serde_json::from_str(r#"{"name":"App","requested_scopes":[{"id":"admin"}]}"#).ok();
        let sparse = sparse.unwrap_or_default();
        assert_eq!(sparse.name.as_deref(), Some("App"));
        assert_eq!(sparse.client_id, None);
        assert_eq!(sparse.verified, None);
        assert_eq!(sparse.requested_scopes[0].id.as_deref(), Some("admin"));
        assert_eq!(sparse.requested_scopes[0].description, None);
        let empty: Option<ConsentDetails> =
            serde_json::from_str(r#"{"requested_scopes":null}"#).ok();
        assert_eq!(empty, Some(ConsentDetails::default()));
    }
}
