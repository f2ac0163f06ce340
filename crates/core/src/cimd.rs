//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, as the MCP
//! authorization specification uses them): a `client_id` that is an https URL names a JSON
//! document, served at that URL, which is the client's registration.
//!
//! This module decides which client ids are such URLs and turns a fetched document into the
//! settings of a third-party public client, under the rules of dynamic registration. Fetching
//! (and refusing special-use addresses) is the server's part.

use oauth_wire::{GrantType, RegistrationRequest, TokenEndpointAuthMethod};
use serde_json::Value;
use url::Url;

use crate::client::{ClientDraft, RegistrationPolicy};

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Longest client id URL accepted, in bytes: the longest client_id the server reads anywhere, so
/// that a document client accepted here can also be exchanged at the token endpoint.
pub const MAX_CLIENT_ID_LEN: usize = crate::client::MAX_CLIENT_ID_BYTES;

/// What a `client_id` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdKind {
    /// An ordinary id, looked up in the store.
    Registered,
    /// A metadata document URL to fetch.
    Document(Url),
    /// A URL that names a document but is refused without fetching it.
    Refused(String),
}

/// The operator's choices about document client ids.
#[derive(Debug, Clone, Copy)]
pub struct DocumentPolicy<'a> {
    pub enabled: bool,
    /// Hosts (lower case) a client id URL may name; empty: any.
    pub allowed_hosts: &'a [String],
    /// Refused whatever else allows them: a host name (lower case) refuses that host and every
    /// host under it; a URL refuses that one client id.
    pub denied: &'a [String],
    /// Accept `http://` on 127.0.0.1, [::1] and localhost (any port).
    pub allow_http_loopback: bool,
}

/// Does `policy` refuse the client id `client_id`, whose host is `host`? A host written with
/// its final dot (`evil.example.`) is the same host.
fn is_denied(policy: DocumentPolicy<'_>, client_id: &str, host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    policy.denied.iter().any(|d| {
        d == client_id
            || host
                .strip_suffix(d.as_str())
                .is_some_and(|under| under.is_empty() || under.ends_with('.'))
    })
}

/// What an entry of the operator's deny list ([`DocumentPolicy::denied`]) means: a host name
/// in the form client ids' hosts take (lower case, an international name in its `xn--` form, an
/// IPv4 or bracketed IPv6 address as URLs write them, no final dot), or a URL that could be a
/// client id, kept as it is. `Err`: why no client id could match it (a wildcard, a leading dot,
/// a port or a path on a host, a URL in a form no client id takes).
pub fn denied_entry(entry: &str) -> Result<String, &'static str> {
    let lower = entry.get(..8).unwrap_or("").to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        let any = DocumentPolicy {
            enabled: true,
            allowed_hosts: &[],
            denied: &[],
            allow_http_loopback: true,
        };
        return match classify(entry, any) {
            ClientIdKind::Document(_) => Ok(entry.to_owned()),
            _ => Err(
                "a URL must be written as a client id is: https (http only on a loopback \
                      host), lower-case scheme and host, no default port, a path, and no query, \
                      fragment or user information",
            ),
        };
    }
    const HOST: &str = "write a host name alone, such as evil.example (it refuses every host \
                        under it too), or a client id URL";
    let odd = |c: char| c.is_whitespace() || c.is_control() || "/\\?#@%*".contains(c);
    if entry.is_empty() || entry.starts_with('.') || entry.chars().any(odd) {
        return Err(HOST);
    }
    let name = entry.strip_suffix('.').unwrap_or(entry);
    // A port (`:443` included, which a URL would drop) is not part of a host.
    let port = match name.strip_prefix('[') {
        Some(literal) => !literal.ends_with(']'),
        None => name.contains(':'),
    };
    if port {
        return Err(HOST);
    }
    match Url::parse(&format!("https://{name}/")) {
        // One final dot is the same host; a host left with another (`evil.example..`) is none
        // a client id's host, its final dot dropped, could be.
        Ok(url) => url
            .host_str()
            .filter(|host| !host.ends_with('.'))
            .map(str::to_owned)
            .ok_or(HOST),
        Err(_) => Err(HOST),
    }
}

/// Is `host` a loopback host name or literal?
pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// Classifies a `client_id`. Anything that starts with `https://` or `http://` is a document
/// URL, accepted only in its safe form: https (or http on a loopback host when allowed), a
/// host, a path other than `/`, no user information, query, fragment or dot segments, and
/// written exactly as it parses (URLs are compared as strings).
pub fn classify(client_id: &str, policy: DocumentPolicy<'_>) -> ClientIdKind {
    let lower = client_id.get(..8).unwrap_or("").to_ascii_lowercase();
    let is_url = lower.starts_with("https://") || lower.starts_with("http://");
    if !is_url {
        return ClientIdKind::Registered;
    }
    let refused = |why: &str| ClientIdKind::Refused(why.to_owned());
    if !policy.enabled {
        return refused("this server does not accept client metadata documents");
    }
    if client_id.len() > MAX_CLIENT_ID_LEN {
        return refused("the client_id URL is longer than 255 bytes");
    }
    let Ok(url) = Url::parse(client_id) else {
        return refused("the client_id is not a valid URL");
    };
    let Some(host) = url.host_str().map(str::to_owned) else {
        return refused("the client_id URL has no host");
    };
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http_loopback && is_loopback_host(&host) => {}
        _ => return refused("a client_id URL must use https"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refused("a client_id URL must not hold user information");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return refused("a client_id URL must not have a query or a fragment");
    }
    let raw_path = client_id
        .find("://")
        .map(|i| &client_id[i + 3..])
        .and_then(|rest| rest.find('/').map(|j| &rest[j..]))
        .unwrap_or("");
    if raw_path.split('/').any(|seg| {
        matches!(
            seg.to_ascii_lowercase().as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        )
    }) {
        return refused("a client_id URL must not have dot segments");
    }
    if url.path() == "/" || url.path().is_empty() {
        return refused("a client_id URL must have a path");
    }
    // String comparison is the rule: the id must be written as it parses (lower-case scheme
    // and host, no default port, nothing percent-encoded differently).
    if url.as_str() != client_id {
        return refused("the client_id URL is not in its normal form");
    }
    if is_denied(policy, client_id, &host) {
        return refused("this server does not accept this client");
    }
    if !policy.allowed_hosts.is_empty() && !policy.allowed_hosts.iter().any(|h| h.as_str() == host)
    {
        return refused("this server does not accept client metadata documents from that host");
    }
    ClientIdKind::Document(url)
}

/// Which installation of a client an authorization belongs to: its grant is kept apart from
/// the grants of the client's other installations, so that revoking one leaves the others.
///
/// One metadata-document client id is shared by every installation of an app (a web app and a
/// desktop app, or two deployments), each with its own redirect URI, so for such a client the
/// installation is the redirect URI: with the port of a loopback `http` URI left out, since a
/// native app picks a new port on each run (RFC 8252 §7.3). Any other client is one
/// installation (the empty string): one grant per user and client.
pub fn installation(client_id: &str, redirect_uri: &str) -> String {
    let lower = client_id.get(..8).unwrap_or("").to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return String::new();
    }
    match Url::parse(redirect_uri) {
        Ok(mut url) if url.scheme() == "http" && url.host_str().is_some_and(is_loopback_host) => {
            let _ = url.set_port(None);
            url.to_string()
        }
        _ => redirect_uri.to_owned(),
    }
}

/// A document refused, and why (shown on the authorization error page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError(pub String);

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse<T>(why: impl Into<String>) -> Result<T, DocumentError> {
    Err(DocumentError(why.into()))
}

/// The client settings a fetched document describes, or why it is refused. `client_id` is the
/// URL it was fetched from.
pub fn draft_from_document(
    client_id: &str,
    body: &[u8],
    policy: &RegistrationPolicy<'_>,
) -> Result<ClientDraft, DocumentError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return refuse(format!(
            "the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"
        ));
    }
    let doc = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    draft_from_value(client_id, doc, policy)
}

/// [`draft_from_document`] for a document already read as JSON (by a reader that also refuses
/// what serde_json lets through, such as a member named twice); anything but an object is
/// refused.
pub fn draft_from_value(
    client_id: &str,
    doc: Value,
    policy: &RegistrationPolicy<'_>,
) -> Result<ClientDraft, DocumentError> {
    let Value::Object(doc) = doc else {
        return refuse("the client metadata document is not a JSON object");
    };
    if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return refuse("the client metadata document's client_id is not its URL");
    }
    // A document is public: it can hold no shared secret, and cannot ask for one.
    if doc.contains_key("client_secret") || doc.contains_key("client_secret_expires_at") {
        return refuse("a client metadata document must not hold a client_secret");
    }
    let text = |key: &str| -> Result<Option<String>, DocumentError> {
        match doc.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => refuse(format!(
                "{key} in the client metadata document must be a string"
            )),
        }
    };
    let list = |key: &str| -> Result<Option<Vec<String>>, DocumentError> {
        match doc.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => refuse(format!(
                        "{key} in the client metadata document must be a list of strings"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => refuse(format!(
                "{key} in the client metadata document must be a list of strings"
            )),
        }
    };
    let Some(client_name) = text("client_name")?.filter(|n| !n.trim().is_empty()) else {
        return refuse("the client metadata document has no client_name");
    };
    let redirect_uris = match list("redirect_uris")? {
        Some(r) if !r.is_empty() => r,
        _ => return refuse("the client metadata document has no redirect_uris"),
    };
    let method = match text("token_endpoint_auth_method")?.as_deref() {
        None | Some("none") => TokenEndpointAuthMethod::None,
        Some("private_key_jwt") => TokenEndpointAuthMethod::PrivateKeyJwt,
        Some(m @ ("client_secret_basic" | "client_secret_post" | "client_secret_jwt")) => {
            return refuse(format!(
                "token_endpoint_auth_method {m} needs a shared secret, which a client metadata document cannot have; use none or private_key_jwt"
            ))
        }
        Some(m) => {
            return refuse(format!(
                "token_endpoint_auth_method {m:?} is not supported for client metadata documents; use none or private_key_jwt"
            ))
        }
    };
    // The client's public keys (RFC 7523): inline, or at an https URL fetched like the
    // document itself.
    let jwks = match doc.get("jwks") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    };
    let jwks_uri = text("jwks_uri")?;
    if jwks.is_some() && jwks_uri.is_some() {
        return refuse("the client metadata document has both jwks and jwks_uri; use one");
    }
    if method == TokenEndpointAuthMethod::PrivateKeyJwt && jwks.is_none() && jwks_uri.is_none() {
        return refuse("private_key_jwt needs the client's public keys: add jwks or jwks_uri to the client metadata document");
    }
    // Grant types this server does not offer a document client are ignored, not refused.
    let grant_types: Vec<GrantType> = list("grant_types")?
        .unwrap_or_else(|| vec!["authorization_code".to_owned()])
        .iter()
        .map(|g| GrantType::parse(g))
        .filter(|g| matches!(g, GrantType::AuthorizationCode | GrantType::RefreshToken))
        .collect();
    if !grant_types.contains(&GrantType::AuthorizationCode) {
        return refuse("the client metadata document does not allow authorization_code");
    }
    // Remote logos are never shown for document clients (no fetch of an address the document
    // chose, from anyone's browser): `logo_uri` is left out.
    let mut request = RegistrationRequest::new()
        .client_name(client_name)
        .grant_types(grant_types)
        .redirect_uris(redirect_uris)
        .token_endpoint_auth_method(method);
    if let Some(jwks) = jwks {
        request = request.jwks(jwks);
    }
    if let Some(uri) = jwks_uri {
        request = request.jwks_uri(uri);
    }
    if let Some(scope) = text("scope")? {
        request = request.scope(scope);
    }
    if let Some(kind) = text("application_type")? {
        request = request.application_type(kind);
    }
    if let Some(uri) = text("policy_uri")? {
        request = request.policy_uri(uri);
    }
    if let Some(uri) = text("tos_uri")? {
        request = request.tos_uri(uri);
    }
    let policy = RegistrationPolicy {
        allow_client_credentials: false,
        ..*policy
    };
    let mut draft = ClientDraft::from_registration(request, &policy)
        .map_err(|e| DocumentError(e.description))?;
    // A document client always uses PKCE, whether or not it signs its token requests.
    draft.require_pkce = true;
    Ok(draft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installations_of_a_document_client_are_its_redirect_uris() {
        let id = "https://app.example/client.json";
        assert_eq!(installation("0b7c2f0e-uuid", "https://a.example/cb"), "");
        assert_eq!(
            installation(id, "https://a.example/cb"),
            "https://a.example/cb"
        );
        assert_ne!(
            installation(id, "https://a.example/cb"),
            installation(id, "https://b.example/cb")
        );
        // A native app's loopback port changes from run to run: one installation.
        assert_eq!(
            installation(id, "http://127.0.0.1:33418/callback"),
            installation(id, "http://127.0.0.1:50001/callback")
        );
        assert_eq!(
            installation(id, "http://127.0.0.1:33418/callback"),
            "http://127.0.0.1/callback"
        );
        assert_eq!(
            installation(id, "http://localhost:9/cb"),
            "http://localhost/cb"
        );
        assert_eq!(
            installation(id, "com.example.app:/cb"),
            "com.example.app:/cb"
        );
        assert_eq!(
            installation("http://127.0.0.1:8/c.json", "https://a.example/cb"),
            "https://a.example/cb"
        );
    }
    use crate::ScopeCatalogue;
    use oauth_wire::ClientType;

    const ID: &str = "https://client.example.com/oauth/client.json";

    fn policy() -> DocumentPolicy<'static> {
        DocumentPolicy {
            enabled: true,
            allowed_hosts: &[],
            denied: &[],
            allow_http_loopback: false,
        }
    }

    #[test]
    fn a_document_url_is_at_most_as_long_as_any_client_id() {
        let base = "https://client.example.com/";
        let fits = format!("{base}{}", "a".repeat(MAX_CLIENT_ID_LEN - base.len()));
        assert_eq!(fits.len(), 255);
        assert!(matches!(
            classify(&fits, policy()),
            ClientIdKind::Document(_)
        ));
        let long = format!("{fits}b");
        assert_eq!(
            classify(&long, policy()),
            ClientIdKind::Refused("the client_id URL is longer than 255 bytes".into())
        );
    }

    #[test]
    fn only_the_safe_form_of_an_https_url_is_a_document() {
        assert!(matches!(classify(ID, policy()), ClientIdKind::Document(_)));
        assert_eq!(classify("abc123", policy()), ClientIdKind::Registered);
        for bad in [
            "http://client.example.com/c.json",
            "https://client.example.com",
            "https://client.example.com/",
            "https://client.example.com/c.json?x=1",
            "https://client.example.com/c.json#f",
            "https://user:pw@client.example.com/c.json",
            "https://client.example.com/a/../c.json",
            "https://client.example.com/a/./c.json",
            "https://client.example.com/a/%2E%2E/c.json",
            "https://Client.example.com/c.json",
            "https://client.example.com:443/c.json",
            "HTTPS://client.example.com/c.json",
            "http://127.0.0.1:8080/c.json",
        ] {
            assert!(
                matches!(classify(bad, policy()), ClientIdKind::Refused(_)),
                "{bad}"
            );
        }
        let loopback = DocumentPolicy {
            allow_http_loopback: true,
            ..policy()
        };
        for ok in [
            "http://127.0.0.1:8080/c.json",
            "http://localhost:1/c",
            "http://[::1]:9/c",
        ] {
            assert!(
                matches!(classify(ok, loopback), ClientIdKind::Document(_)),
                "{ok}"
            );
        }
        assert!(matches!(
            classify("http://client.example.com/c.json", loopback),
            ClientIdKind::Refused(_)
        ));
        let off = DocumentPolicy {
            enabled: false,
            ..policy()
        };
        assert!(matches!(classify(ID, off), ClientIdKind::Refused(_)));
        let hosts = vec!["other.example".to_owned()];
        let listed = DocumentPolicy {
            allowed_hosts: &hosts,
            ..policy()
        };
        assert!(matches!(classify(ID, listed), ClientIdKind::Refused(_)));
    }

    #[test]
    fn a_denied_host_refuses_its_own_ids_and_those_under_it_and_a_denied_url_one_id() {
        let denied = vec![
            "example.com".to_owned(),
            "https://pages.example.net/evil/client.json".to_owned(),
        ];
        let hosts = vec![
            "client.example.com".to_owned(),
            "pages.example.net".to_owned(),
        ];
        let policy = DocumentPolicy {
            denied: &denied,
            allowed_hosts: &hosts,
            ..policy()
        };
        let why = ClientIdKind::Refused("this server does not accept this client".into());
        for refused in [
            ID,
            "https://example.com/c.json",
            "https://example.com./c.json",
            "https://a.b.example.com./c.json",
            "https://example.com:8443/c.json",
            "https://a.b.example.com/c.json",
            "https://pages.example.net/evil/client.json",
        ] {
            assert_eq!(classify(refused, policy), why, "{refused}");
        }
        for kept in [
            "https://pages.example.net/good/client.json",
            "https://pages.example.net/evil/client.json2",
        ] {
            assert!(
                matches!(classify(kept, policy), ClientIdKind::Document(_)),
                "{kept}"
            );
        }
        // A name that merely ends in the denied one is another host.
        let denied = vec!["example.com".to_owned()];
        let policy = DocumentPolicy {
            denied: &denied,
            ..self::policy()
        };
        assert!(matches!(
            classify("https://notexample.com/c.json", policy),
            ClientIdKind::Document(_)
        ));
        // Refused before anything is asked of the host.
        let loopback = vec!["127.0.0.1".to_owned()];
        let policy = DocumentPolicy {
            denied: &loopback,
            allow_http_loopback: true,
            ..self::policy()
        };
        assert_eq!(classify("http://127.0.0.1:8080/c.json", policy), why);
    }

    #[test]
    fn deny_list_entries_take_the_form_client_ids_are_matched_in() {
        for (entry, normal) in [
            ("Evil.Example.", "evil.example"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("127.000.000.001", "127.0.0.1"),
            ("0x7f.0.0.1", "127.0.0.1"),
            ("[::1]", "[::1]"),
            (
                "https://pages.example.net/a/c.json",
                "https://pages.example.net/a/c.json",
            ),
            (
                "http://localhost:8080/c.json",
                "http://localhost:8080/c.json",
            ),
        ] {
            assert_eq!(denied_entry(entry).as_deref(), Ok(normal), "{entry}");
        }
        // The normal form refuses what the entry names.
        let denied = vec![denied_entry("bücher.example").unwrap()];
        let policy = DocumentPolicy {
            denied: &denied,
            ..policy()
        };
        assert!(matches!(
            classify("https://a.xn--bcher-kva.example/c.json", policy),
            ClientIdKind::Refused(_)
        ));
        for dead in [
            "",
            ".sub.example",
            "*.wild.example",
            "evil.example\t",
            "evil example",
            "evil.example:8443",
            "evil.example:443",
            "evil.example:",
            "[::1]:443",
            "evil.example..",
            "evil.example/c.json",
            "a%2eexample",
            "::1",
            "user@evil.example",
            "http://evil.example/c.json",
            "HTTPS://evil.example/c.json",
            "https://evil.example:443/c.json",
            "https://evil.example",
            "https://evil.example/c.json?x=1",
            "https://evil.example/c.json#f",
            "https://u:p@evil.example/c.json",
        ] {
            assert!(denied_entry(dead).is_err(), "{dead:?}");
        }
    }

    fn draft(doc: serde_json::Value) -> Result<ClientDraft, DocumentError> {
        let catalogue = ScopeCatalogue::default();
        let defaults = catalogue.third_party_names();
        let p = RegistrationPolicy {
            catalogue: &catalogue,
            default_scopes: &defaults,
            allow_client_credentials: false,
            allow_http_loopback: false,
        };
        draft_from_document(ID, doc.to_string().as_bytes(), &p)
    }

    #[test]
    fn a_document_becomes_a_public_client() {
        let d = draft(serde_json::json!({
            "client_id": ID, "client_name": "Example MCP client",
            "redirect_uris": ["http://127.0.0.1:3000/callback"],
            "grant_types": ["authorization_code", "refresh_token", "urn:x:device"],
            "token_endpoint_auth_method": "none",
            "logo_uri": "https://10.0.0.1/logo.png",
            "scope": "admin voice"
        }))
        .unwrap();
        assert_eq!(d.client_type, ClientType::Public);
        assert!(d.require_pkce);
        assert_eq!(
            d.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(d.scopes, ["voice"]);
        assert_eq!(d.logo_uri, None);
    }

    #[test]
    fn refusals() {
        let base = serde_json::json!({"client_id": ID, "client_name": "C",
            "redirect_uris": ["https://client.example.com/cb"]});
        assert!(draft(base.clone()).is_ok());
        let with = |k: &str, v: serde_json::Value| {
            let mut d = base.clone();
            d[k] = v;
            draft(d)
        };
        assert!(with("client_id", "https://other.example/c".into()).is_err());
        assert!(with("client_secret", "s".into()).is_err());
        for m in [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
        ] {
            assert!(with("token_endpoint_auth_method", m.into()).is_err(), "{m}");
        }
        // private_key_jwt with keys, inline or by URL (one of the two).
        let key = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let mut signed = base.clone();
        signed["token_endpoint_auth_method"] = "private_key_jwt".into();
        signed["jwks"] = serde_json::json!({"keys": [key]});
        let d = draft(signed.clone()).unwrap();
        assert_eq!(d.client_type, ClientType::Confidential);
        assert!(d.require_pkce && d.jwks.is_some());
        signed["jwks_uri"] = "https://client.example.com/jwks.json".into();
        assert!(draft(signed.clone()).is_err(), "both");
        signed.as_object_mut().unwrap().remove("jwks");
        assert_eq!(
            draft(signed).unwrap().jwks_uri.as_deref(),
            Some("https://client.example.com/jwks.json")
        );
        assert!(with("jwks_uri", "http://client.example.com/jwks.json".into()).is_err());
        assert!(with("redirect_uris", serde_json::json!([])).is_err());
        assert!(with(
            "redirect_uris",
            serde_json::json!(["http://evil.example/cb"])
        )
        .is_err());
        assert!(with("client_name", 3.into()).is_err());
        assert!(with("grant_types", serde_json::json!(["client_credentials"])).is_err());
        let mut no_redirects = base.clone();
        no_redirects
            .as_object_mut()
            .unwrap()
            .remove("redirect_uris");
        assert!(draft(no_redirects).is_err());
        let catalogue = ScopeCatalogue::default();
        let p = RegistrationPolicy {
            catalogue: &catalogue,
            default_scopes: &[],
            allow_client_credentials: false,
            allow_http_loopback: false,
        };
        assert!(draft_from_document(ID, b"not json", &p).is_err());
        assert!(draft_from_document(ID, &[b' '; MAX_DOCUMENT_BYTES + 1], &p).is_err());
    }
}
