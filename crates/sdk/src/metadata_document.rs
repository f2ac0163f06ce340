//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client whose
//! `client_id` is an https URL publishes its metadata as JSON at that URL, instead of
//! registering with each authorization server.

use std::fmt;

use oauth_wire::{GrantType, JwkSet};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::Error;

/// How a client with a metadata document authenticates at the token endpoint. A document cannot
/// hold a shared secret (it is public), so the secret-based methods (`client_secret_basic`,
/// `client_secret_post`, `client_secret_jwt`) have no variant here and a document naming one
/// does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MetadataAuthMethod {
    /// `none`: a public client (PKCE protects its codes).
    None,
    /// `private_key_jwt` (RFC 7523): a JWT signed with a key from `jwks` or `jwks_uri`.
    PrivateKeyJwt,
}

/// A Client ID Metadata Document: what to serve, as `application/json`, at the URL that is the
/// client's `client_id`.
///
/// [`ClientIdMetadataDocument::new`] takes the required members and setters add the optional
/// ones; [`ClientIdMetadataDocument::to_json`] checks the document (see
/// [`ClientIdMetadataDocument::validate`]) before it serializes it, so a document that an
/// authorization server must refuse is never produced.
///
/// ```
/// use telnyx_oauth::{ClientIdMetadataDocument, GrantType, MetadataAuthMethod};
///
/// let doc = ClientIdMetadataDocument::new(
///     "https://app.example.com/oauth/client.json",
///     "Example App",
///     ["https://app.example.com/callback"],
/// )
/// .client_uri("https://app.example.com")
/// .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
/// .response_types(["code"])
/// .token_endpoint_auth_method(MetadataAuthMethod::None)
/// .scope("admin");
/// let json = doc.to_json()?;
/// assert!(json.starts_with(r#"{"client_id":"https://app.example.com/oauth/client.json","#));
///
/// // A client id must be an https URL without a fragment, userinfo or dot segments.
/// let bad = ClientIdMetadataDocument::new("http://app.example.com/c.json", "App", ["https://app.example.com/cb"]);
/// assert!(bad.to_json().is_err());
/// # Ok::<(), telnyx_oauth::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientIdMetadataDocument {
    /// The https URL this document is served at, which is also the client's id.
    pub client_id: String,
    /// The name shown to the user on the consent page.
    pub client_name: String,
    /// Where authorization answers may be sent.
    pub redirect_uris: Vec<String>,
    /// The client's home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// The client's logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// The grant types the client uses (RFC 7591 default: `authorization_code`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types: Vec<GrantType>,
    /// The response types the client uses (RFC 7591 default: `code`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types: Vec<String>,
    /// How the client authenticates at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<MetadataAuthMethod>,
    /// The client's public keys, inline (not together with `jwks_uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// Where the client's public keys are published (not together with `jwks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The scopes the client may ask for, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Whether an `http` client id on a loopback host is accepted (local development only).
    #[serde(skip)]
    allow_http_loopback: bool,
}

impl ClientIdMetadataDocument {
    /// A document with the required members: the URL it is served at (the client id), the
    /// client's name and its redirect URIs.
    pub fn new<I, S>(
        client_id: impl Into<String>,
        client_name: impl Into<String>,
        redirect_uris: I,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientIdMetadataDocument {
            client_id: client_id.into(),
            client_name: client_name.into(),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
            client_uri: None,
            logo_uri: None,
            grant_types: Vec::new(),
            response_types: Vec::new(),
            token_endpoint_auth_method: None,
            jwks: None,
            jwks_uri: None,
            scope: None,
            allow_http_loopback: false,
        }
    }

    /// `client_uri`: the client's home page.
    pub fn client_uri(mut self, uri: impl Into<String>) -> Self {
        self.client_uri = Some(uri.into());
        self
    }

    /// `logo_uri`: the client's logo.
    pub fn logo_uri(mut self, uri: impl Into<String>) -> Self {
        self.logo_uri = Some(uri.into());
        self
    }

    /// `grant_types`.
    pub fn grant_types(mut self, grant_types: impl IntoIterator<Item = GrantType>) -> Self {
        self.grant_types = grant_types.into_iter().collect();
        self
    }

    /// `response_types`.
    pub fn response_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.response_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// `token_endpoint_auth_method`: `none` or `private_key_jwt`.
    pub fn token_endpoint_auth_method(mut self, method: MetadataAuthMethod) -> Self {
        self.token_endpoint_auth_method = Some(method);
        self
    }

    /// `jwks`: the client's public keys, inline.
    pub fn jwks(mut self, jwks: JwkSet) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// `jwks_uri`: where the client's public keys are published.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// `scope`: space-separated scopes.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Accepts an `http` client id whose host is `localhost` or a loopback address, for a
    /// client developed on one machine with a local authorization server. Off by default.
    pub fn allow_http_loopback(mut self, allow: bool) -> Self {
        self.allow_http_loopback = allow;
        self
    }

    /// Checks the document as the draft requires, or says what is wrong with
    /// [`Error::InvalidParameter`]:
    ///
    /// - `client_id` is an `https` URL (or, when allowed, `http` on `localhost` / a loopback
    ///   address) with a path, without a fragment, a user name or password, or `.` / `..` path
    ///   segments;
    /// - `client_name` is not empty and there is at least one redirect URI, each an absolute URL
    ///   without a fragment;
    /// - `client_uri`, `logo_uri` and `jwks_uri` are absolute URLs (`jwks_uri` https);
    /// - `jwks` and `jwks_uri` are not both set, and `private_key_jwt` has one of them.
    pub fn validate(&self) -> Result<(), Error> {
        check_client_id(&self.client_id, self.allow_http_loopback)?;
        if self.client_name.trim().is_empty() {
            return Err(invalid("client_name", "is empty"));
        }
        if self.redirect_uris.is_empty() {
            return Err(invalid("redirect_uris", "is empty"));
        }
        for uri in &self.redirect_uris {
            let url = absolute_url("redirect_uris", uri)?;
            if url.fragment().is_some() {
                return Err(invalid("redirect_uris", "has a URI with a fragment"));
            }
        }
        for (name, value) in [
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
        ] {
            if let Some(v) = value {
                absolute_url(name, v)?;
            }
        }
        if let Some(uri) = &self.jwks_uri {
            if absolute_url("jwks_uri", uri)?.scheme() != "https" {
                return Err(invalid("jwks_uri", "is not an https URL"));
            }
        }
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(invalid("jwks", "and jwks_uri are both set; use one"));
        }
        if self.token_endpoint_auth_method == Some(MetadataAuthMethod::PrivateKeyJwt)
            && self.jwks.is_none()
            && self.jwks_uri.is_none()
        {
            return Err(invalid(
                "token_endpoint_auth_method",
                "is private_key_jwt but neither jwks nor jwks_uri is set",
            ));
        }
        Ok(())
    }

    /// The document as compact JSON, after [`ClientIdMetadataDocument::validate`].
    pub fn to_json(&self) -> Result<String, Error> {
        self.validate()?;
        serde_json::to_string(self)
            .map_err(|e| Error::Config(format!("cannot encode the document: {e}")))
    }

    /// The document as indented JSON, after [`ClientIdMetadataDocument::validate`].
    pub fn to_json_pretty(&self) -> Result<String, Error> {
        self.validate()?;
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Config(format!("cannot encode the document: {e}")))
    }
}

fn invalid(member: &str, problem: impl fmt::Display) -> Error {
    Error::InvalidParameter(format!("{member} {problem}"))
}

fn absolute_url(member: &str, value: &str) -> Result<Url, Error> {
    let url = Url::parse(value).map_err(|e| invalid(member, format_args!("is not a URL: {e}")))?;
    if url.cannot_be_a_base() {
        return Err(invalid(member, "is not a hierarchical URL"));
    }
    Ok(url)
}

/// The draft's rules for a client id URL (section 3). They are checked on the text as written:
/// URL parsing would resolve dot segments and hide them.
fn check_client_id(client_id: &str, allow_http_loopback: bool) -> Result<(), Error> {
    let url = absolute_url("client_id", client_id)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http_loopback && is_loopback(&url) => {}
        "http" if allow_http_loopback => {
            return Err(invalid(
                "client_id",
                "is an http URL whose host is not localhost or a loopback address",
            ))
        }
        _ => return Err(invalid("client_id", "is not an https URL")),
    }
    if client_id.contains('#') {
        return Err(invalid("client_id", "has a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("client_id", "has a user name or password"));
    }
    // The path as written: after the authority, before a query.
    let after_scheme = client_id
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or("");
    let path_start = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
    let path = after_scheme[path_start..].split('?').next().unwrap_or("");
    if path.is_empty() || path == "/" {
        return Err(invalid("client_id", "has no path"));
    }
    let dot_segment = path.split('/').any(|segment| {
        let decoded = segment.replace("%2e", ".").replace("%2E", ".");
        decoded == "." || decoded == ".."
    });
    if dot_segment {
        return Err(invalid("client_id", "has a . or .. path segment"));
    }
    // The id is compared as text: an authorization server refuses one not written as it parses
    // (a lower-case host, no default port, nothing escaped differently, no backslash).
    if url.as_str() != client_id {
        return Err(invalid(
            "client_id",
            "is not in its normal form (write it as a URL parser writes it back: a lower-case \
             host, no default port, spaces and other special characters percent-encoded)",
        ));
    }
    Ok(())
}

/// Whether `url`'s host is `localhost` or a loopback address.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(client_id: &str) -> ClientIdMetadataDocument {
        ClientIdMetadataDocument::new(client_id, "App", ["https://app.example.com/cb"])
    }

    fn refused(d: &ClientIdMetadataDocument) -> String {
        match d.to_json() {
            Err(Error::InvalidParameter(m)) => m,
            other => panic!("{:?} was not refused: {other:?}", d.client_id),
        }
    }

    #[test]
    fn a_minimal_document_serializes_its_required_members_only() {
        let json = doc("https://app.example.com/client.json")
            .to_json()
            .unwrap();
        assert_eq!(
            json,
            r#"{"client_id":"https://app.example.com/client.json","client_name":"App","redirect_uris":["https://app.example.com/cb"]}"#
        );
    }

    #[test]
    fn every_optional_member_is_serialized_under_its_name() {
        let d = doc("https://app.example.com/client.json?v=2")
            .client_uri("https://app.example.com")
            .logo_uri("https://app.example.com/logo.png")
            .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
            .response_types(["code"])
            .token_endpoint_auth_method(MetadataAuthMethod::PrivateKeyJwt)
            .jwks_uri("https://app.example.com/jwks.json")
            .scope("admin read");
        let v: serde_json::Value = serde_json::from_str(&d.to_json().unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "client_id": "https://app.example.com/client.json?v=2",
                "client_name": "App",
                "redirect_uris": ["https://app.example.com/cb"],
                "client_uri": "https://app.example.com",
                "logo_uri": "https://app.example.com/logo.png",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": "https://app.example.com/jwks.json",
                "scope": "admin read"
            })
        );
        // What is served decodes back to the same document.
        let back: ClientIdMetadataDocument = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn client_ids_the_draft_forbids_are_refused() {
        for (id, why) in [
            ("http://app.example.com/c.json", "https"),
            ("ftp://app.example.com/c.json", "https"),
            ("app.example.com/c.json", "URL"),
            ("https://app.example.com", "no path"),
            ("https://app.example.com/", "no path"),
            ("https://app.example.com/c.json#x", "fragment"),
            ("https://app.example.com/c.json#", "fragment"),
            ("https://user@app.example.com/c.json", "user name"),
            ("https://user:pw@app.example.com/c.json", "user name"),
            ("https://app.example.com/a/../c.json", ". or .."),
            ("https://app.example.com/./c.json", ". or .."),
            ("https://app.example.com/a/%2e%2E/c.json", ". or .."),
            ("https://app.example.com/a/..", ". or .."),
            ("https://app.example.com/a\\..\\client.json", "normal form"),
            ("https://APP.example.com/client.json", "normal form"),
            ("https://app.example.com:443/client.json", "normal form"),
            ("https://app.example.com/a b.json", "normal form"),
        ] {
            let m = refused(&doc(id));
            assert!(m.starts_with("client_id ") && m.contains(why), "{id}: {m}");
        }
        // Dots inside a segment are fine.
        doc("https://app.example.com/a..b/.well/c.json")
            .to_json()
            .unwrap();
    }

    #[test]
    fn http_is_accepted_only_on_loopback_and_only_when_allowed() {
        for id in [
            "http://localhost:8080/c.json",
            "http://127.0.0.1/c.json",
            "http://[::1]:3000/c.json",
        ] {
            assert!(refused(&doc(id)).contains("https"), "{id}");
            doc(id).allow_http_loopback(true).to_json().unwrap();
        }
        let m = refused(&doc("http://app.example.com/c.json").allow_http_loopback(true));
        assert!(m.contains("loopback"), "{m}");
        // Allowing http never allows the other rules' failures.
        let m = refused(&doc("http://localhost/a/../c.json").allow_http_loopback(true));
        assert!(m.contains(". or .."), "{m}");
    }

    #[test]
    fn shared_secret_auth_methods_cannot_be_expressed_or_decoded() {
        for method in [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
        ] {
            let json = serde_json::json!({
                "client_id": "https://app.example.com/c.json",
                "client_name": "App",
                "redirect_uris": ["https://app.example.com/cb"],
                "token_endpoint_auth_method": method,
            });
            assert!(
                serde_json::from_value::<ClientIdMetadataDocument>(json).is_err(),
                "{method}"
            );
        }
    }

    #[test]
    fn other_members_are_checked() {
        let base = doc("https://app.example.com/c.json");
        let cases = [
            (
                ClientIdMetadataDocument::new(
                    "https://app.example.com/c.json",
                    " ",
                    ["https://a.example/cb"],
                ),
                "client_name",
            ),
            (
                ClientIdMetadataDocument::new(
                    "https://app.example.com/c.json",
                    "App",
                    Vec::<String>::new(),
                ),
                "redirect_uris",
            ),
            (
                ClientIdMetadataDocument::new(
                    "https://app.example.com/c.json",
                    "App",
                    ["/relative"],
                ),
                "redirect_uris",
            ),
            (base.clone().logo_uri("not a url"), "logo_uri"),
            (
                base.clone().jwks_uri("http://app.example.com/jwks"),
                "jwks_uri",
            ),
            (
                base.clone()
                    .jwks(JwkSet { keys: Vec::new() })
                    .jwks_uri("https://app.example.com/jwks"),
                "jwks",
            ),
            (
                base.clone()
                    .token_endpoint_auth_method(MetadataAuthMethod::PrivateKeyJwt),
                "token_endpoint_auth_method",
            ),
        ];
        for (d, member) in cases {
            let m = refused(&d);
            assert!(m.starts_with(member), "{member}: {m}");
        }
    }
}
