//! The authorization request (RFC 6749 §4.1.1) and the order in which it is checked.
//!
//! RFC 6749 §4.1.2.1 splits failures in two. While the client or its redirect URI is in doubt,
//! the user is told on a page of this server and the browser is **never** sent anywhere (an
//! unverified redirect URI would make this server an open redirector, RFC 9700 §4.11). Once
//! both are verified, every other failure goes back to the client as `error`,
//! `error_description`, `state` and `iss` (RFC 9207) on the redirect URI.
//!
//! ```text
//! client_id present, once ─no→ page 400      (invalid_request)
//! client known ────────────no→ page 404
//! redirect_uri present, once ─no→ page 400
//! redirect_uri registered ─no→ page 422      (exact match; loopback port may differ)
//! ── from here on, errors redirect ──
//! no parameter repeated ───no→ invalid_request            (RFC 6749 §3.1)
//! response_type = code ────no→ unsupported_response_type  (missing: invalid_request)
//! client may use the code grant ─no→ unauthorized_client
//! scope ⊆ client's scopes ─no→ invalid_scope              (absent: all it may be granted;
//!                                                         a third-party client's request for
//!                                                         a scope closed to third parties is
//!                                                         narrowed, RFC 6749 §3.3)
//! resource known ──────────no→ invalid_target             (RFC 8707 §2)
//! PKCE as required ────────no→ invalid_request            (RFC 7636 §4.4.1)
//! ```

use oauth_wire::GrantType;

use crate::pkce::{self, ChallengeMethod};
use crate::scope::parse_scope_string;
use crate::{Client, ScopeCatalogue};

/// Consent tokens live this long (seconds).
pub const CONSENT_TTL: i64 = 600;
/// Authorization codes live this long (seconds); RFC 6749 §4.1.2 recommends at most 10 minutes,
/// and a code is redeemed within seconds by a working client.
pub const CODE_TTL: i64 = 60;
/// Longest `state` accepted: it is stored with the consent request and echoed back.
pub const MAX_STATE_LEN: usize = 2048;

/// The description of an `invalid_target` for a request naming several resources (RFC 8707
/// §2 allows it; this server issues a token for one audience at a time).
pub const SEVERAL_RESOURCES: &str =
    "this server issues a token for one resource at a time: send resource once";

/// The operator's choices that the checks depend on.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizePolicy<'a> {
    pub allow_plain_pkce: bool,
    /// RFC 8707 resources this server issues tokens for.
    pub resources: &'a [String],
    /// The scopes the server offers now, and which of them third parties may be granted.
    pub catalogue: &'a ScopeCatalogue,
}

/// A request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub client_id: String,
    /// As presented (for a loopback URI, with the port the client chose).
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<ChallengeMethod>,
    pub resource: Option<String>,
}

/// Why a request failed, and how the user learns about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Shown on this server's own page with this HTTP status; never redirected.
    Page { status: u16, message: String },
    /// Sent back to the (verified) redirect URI.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
}

/// The raw query of an authorization request, every value kept (to see repeats).
pub struct AuthorizeQuery<'a>(pub &'a [(String, String)]);

impl AuthorizeQuery<'_> {
    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of `key`: `Ok(None)` when absent or empty (RFC 6749 §3.1: "parameters
    /// sent without a value MUST be treated as if they were omitted"), `Err(())` when repeated.
    fn one(&self, key: &str) -> Result<Option<&str>, ()> {
        match self.all(key).as_slice() {
            [] | [""] => Ok(None),
            [v] => Ok(Some(v)),
            _ => Err(()),
        }
    }

    /// First stage: the client id, which the caller then looks up.
    pub fn client_id(&self) -> Result<&str, AuthorizeError> {
        match self.one("client_id") {
            Ok(Some(id)) if !id.is_empty() => Ok(id),
            Ok(_) => Err(page(400, "The request has no client_id.")),
            Err(()) => Err(page(400, "The request has more than one client_id.")),
        }
    }

    /// Second stage: every check, in the order of the module documentation. `client` is the
    /// client [`AuthorizeQuery::client_id`] names, `None` when there is none.
    pub fn validate(
        &self,
        client: Option<&Client>,
        policy: AuthorizePolicy<'_>,
    ) -> Result<AuthorizeRequest, AuthorizeError> {
        let client_id = self.client_id()?;
        let Some(client) = client else {
            return Err(page(404, "No application with this client_id exists."));
        };
        let redirect_uri = match self.one("redirect_uri") {
            Ok(Some(r)) if !r.is_empty() => r,
            Ok(_) => return Err(page(400, "The request has no redirect_uri.")),
            Err(()) => return Err(page(400, "The request has more than one redirect_uri.")),
        };
        if !client.accepts_redirect_uri(redirect_uri) {
            return Err(page(
                422,
                "The redirect_uri is not registered for this application.",
            ));
        }

        // The redirect URI is verified: from here on, errors go back to the client.
        let state = self.one("state").ok().flatten().map(str::to_owned);
        let fail = |error: &'static str, description: String| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_owned(),
            error,
            description,
            state: state.clone(),
        };

        // A set, not a pairwise scan: a query of many thousands of parameters stays cheap.
        let mut seen = std::collections::HashSet::new();
        if let Some((k, _)) = self.0.iter().find(|(k, _)| !seen.insert(k.as_str())) {
            // RFC 8707 §2 lets `resource` repeat; a server that will not issue for several at
            // once says `invalid_target`.
            if k == "resource" {
                return Err(fail("invalid_target", SEVERAL_RESOURCES.to_owned()));
            }
            return Err(fail(
                "invalid_request",
                format!("the parameter {k} appears more than once (RFC 6749 §3.1)"),
            ));
        }
        if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
            return Err(fail(
                "invalid_request",
                format!("state must be at most {MAX_STATE_LEN} bytes"),
            ));
        }
        // No parameter is repeated beyond this point, so `one` cannot fail.
        let get = |k: &str| self.one(k).ok().flatten();

        match get("response_type") {
            None => return Err(fail("invalid_request", "response_type is required".into())),
            Some("code") => {}
            Some(other) => {
                return Err(fail(
                    "unsupported_response_type",
                    format!("response_type {other:?} is not supported; use code"),
                ))
            }
        }
        // The metadata says `response_modes_supported: ["query"]`: a client that asked for the
        // code elsewhere (a fragment, a form post) would not find it, and would leave it in
        // the query of a URL it does not expect, so it is told instead.
        if get("response_mode").is_some_and(|m| m != "query") {
            return Err(fail(
                "invalid_request",
                "response_mode must be query, the only one this server supports".into(),
            ));
        }
        if !client
            .settings
            .grant_types
            .contains(&GrantType::AuthorizationCode)
        {
            return Err(fail(
                "unauthorized_client",
                "this client may not use the authorization code grant".into(),
            ));
        }

        let grantable = client.grantable_scopes(policy.catalogue);
        let scopes = match get("scope") {
            // RFC 6749 §3.3: the server may apply a default; ours is the client's own scopes
            // (a third party's registered `scope`) that it may be granted.
            None => client.own_scopes(policy.catalogue),
            Some(s) => {
                let requested =
                    parse_scope_string(s).map_err(|e| fail("invalid_scope", e.to_string()))?;
                // A third party asking for a scope closed to third parties (the management
                // scope) gets the rest: narrowed, not refused, so that a client asking for
                // everything it was told of still succeeds with what it may have.
                let closed = |r: &str| {
                    client.is_third_party()
                        && policy
                            .catalogue
                            .get(r)
                            .is_some_and(|d| !d.allows_third_party())
                };
                let mut kept = Vec::with_capacity(requested.len());
                for r in requested.iter().filter(|r| !closed(r)) {
                    if !grantable.contains(r) {
                        return Err(fail(
                            "invalid_scope",
                            format!("the scope {r:?} is not allowed for this client"),
                        ));
                    }
                    kept.push(r.clone());
                }
                match (kept.is_empty(), requested.is_empty()) {
                    (false, _) => kept,
                    // An empty `scope` is no scope: the same default (a third party's
                    // registered scope, not every scope it could be granted).
                    (true, true) => client.own_scopes(policy.catalogue),
                    (true, false) => {
                        return Err(fail(
                            "invalid_scope",
                            "none of the requested scopes can be granted to this client".into(),
                        ))
                    }
                }
            }
        };
        if scopes.is_empty() {
            return Err(fail(
                "invalid_scope",
                "this client is allowed no scopes".into(),
            ));
        }

        let resource = match get("resource") {
            None => None,
            Some(r) => {
                // RFC 8707 §2: an absolute URI without a fragment, and one this server knows
                // (RFC 3986 §6.2.3: `https://host/` is `https://host`); kept as configured.
                match crate::resource::match_known(r, policy.resources) {
                    Some(known) => Some(known.to_owned()),
                    None => {
                        return Err(fail(
                            "invalid_target",
                            format!("the resource {r:?} is not known to this server"),
                        ))
                    }
                }
            }
        };

        let pkce_required = client.requires_pkce();
        let (code_challenge, code_challenge_method) = match get("code_challenge") {
            Some(challenge) => {
                let method = ChallengeMethod::parse(
                    get("code_challenge_method"),
                    policy.allow_plain_pkce,
                )
                .map_err(|e| fail("invalid_request", e))?;
                pkce::check_challenge(challenge).map_err(|e| fail("invalid_request", e))?;
                (Some(challenge.to_owned()), Some(method))
            }
            None if get("code_challenge_method").is_some() => {
                return Err(fail(
                    "invalid_request",
                    "code_challenge_method was sent without code_challenge".into(),
                ))
            }
            None if pkce_required => {
                return Err(fail(
                    "invalid_request",
                    "this client must use PKCE: send code_challenge and code_challenge_method=S256 (RFC 7636)".into(),
                ))
            }
            None => (None, None),
        };

        Ok(AuthorizeRequest {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            state,
            code_challenge,
            code_challenge_method,
            resource,
        })
    }
}

fn page(status: u16, message: &str) -> AuthorizeError {
    AuthorizeError::Page {
        status,
        message: message.to_owned(),
    }
}

/// `redirect_uri` with `params` added to its query, leaving the registered part untouched
/// (RFC 6749 §3.1.2: keep the existing query). Values are form-encoded.
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let query = ser.finish();
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{sep}{query}")
}

/// `text` in the characters RFC 6749 allows in an `error_description` (§4.1.2.1, §5.2:
/// `%x20-21 / %x23-5B / %x5D-7E`, printable ASCII but `"` and `\`): a double quote becomes a
/// single one, a backslash a slash, `§` the word "section", a tab or line break a space, and
/// any other character (a caller's non-ASCII input, a control character) a `?`.
pub fn error_description(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push('\''),
            '\\' => out.push('/'),
            '§' => out.push_str("section "),
            '\t' | '\n' | '\r' => out.push(' '),
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// The error response of RFC 6749 §4.1.2.1 with `iss` (RFC 9207 §2).
pub fn error_redirect(
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let description = error_description(description);
    let mut params = vec![
        ("error", error),
        ("error_description", description.as_str()),
    ];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    redirect_with(redirect_uri, &params)
}

/// The success response of RFC 6749 §4.1.2 with `iss` (RFC 9207 §2).
pub fn code_redirect(redirect_uri: &str, code: &str, state: Option<&str>, issuer: &str) -> String {
    let mut params = vec![("code", code)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    redirect_with(redirect_uri, &params)
}

/// May a live grant answer an authorization request without asking the user
/// (`authorization.skip_consent_if_granted`)? Not when a public client sends the user back to
/// a loopback address or a private-use URI scheme: its `client_id` is public, and any program
/// on the device can listen on a loopback port or claim the scheme, so it could pose as the app
/// the user approved and get a code of its own with its own PKCE verifier (RFC 8252 §8.6). That
/// holds whoever created the client: a member's public client is as public as a registered
/// one. A confidential client (a code is useless without its credentials) and an https
/// redirect URI on a real host may skip.
pub fn may_skip_consent(client: &Client, redirect_uri: &str) -> bool {
    if client.is_confidential() {
        return true;
    }
    url::Url::parse(redirect_uri).is_ok_and(|u| {
        u.scheme() == "https" && !u.host_str().is_some_and(crate::cimd::is_loopback_host)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_descriptions_hold_only_the_characters_rfc_6749_allows() {
        let allowed = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E');
        assert_eq!(
            super::error_description("the parameter scope appears more than once (RFC 6749 §3.1)"),
            "the parameter scope appears more than once (RFC 6749 section 3.1)"
        );
        assert_eq!(
            super::error_description("response_type \"\\\"é\" is\nnot supported\u{0}"),
            "response_type '/'?' is not supported?"
        );
        let every: String = (0..=0x3000u32).filter_map(char::from_u32).collect();
        assert!(super::error_description(&every).chars().all(allowed));
        let plain = "invalid_grant: the code is invalid, expired or already used";
        assert_eq!(super::error_description(plain), plain);
    }

    use super::*;
    use crate::ClientDraft;
    use oauth_wire::{ClientType, TokenEndpointAuthMethod};

    fn client(kind: ClientType) -> Client {
        Client {
            client_id: "c1".into(),
            org_id: "o".into(),
            user_id: "u".into(),
            origin: crate::client::ClientOrigin::Management,
            secret_hash: None,
            verified: false,
            created_at: 0,
            updated_at: 0,
            settings: ClientDraft {
                name: "App".into(),
                client_type: kind,
                require_pkce: false,
                grant_types: vec![GrantType::AuthorizationCode],
                scopes: vec!["admin".into(), "voice".into()],
                redirect_uris: vec![
                    "https://app.example/cb".into(),
                    "http://127.0.0.1/cb".into(),
                ],
                logo_uri: None,
                policy_uri: None,
                tos_uri: None,
                token_endpoint_auth_method: TokenEndpointAuthMethod::None,
                jwks: None,
                jwks_uri: None,
                application_type: None,
            },
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn base() -> Vec<(String, String)> {
        q(&[
            ("response_type", "code"),
            ("client_id", "c1"),
            ("redirect_uri", "https://app.example/cb"),
            ("state", "xyz"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
    }

    fn with(mut pairs: Vec<(String, String)>, k: &str, v: Option<&str>) -> Vec<(String, String)> {
        pairs.retain(|(key, _)| key != k);
        if let Some(v) = v {
            pairs.push((k.to_owned(), v.to_owned()));
        }
        pairs
    }

    fn run(
        pairs: &[(String, String)],
        c: Option<&Client>,
    ) -> Result<AuthorizeRequest, AuthorizeError> {
        let resources = vec!["https://api.example".to_owned()];
        let catalogue = ScopeCatalogue::default();
        AuthorizeQuery(pairs).validate(
            c,
            AuthorizePolicy {
                allow_plain_pkce: false,
                resources: &resources,
                catalogue: &catalogue,
            },
        )
    }

    fn status(r: Result<AuthorizeRequest, AuthorizeError>) -> u16 {
        match r {
            Err(AuthorizeError::Page { status, .. }) => status,
            other => panic!("expected a page, got {other:?}"),
        }
    }

    fn redirect_error(r: Result<AuthorizeRequest, AuthorizeError>) -> &'static str {
        match r {
            Err(AuthorizeError::Redirect { error, state, .. }) => {
                assert_eq!(state.as_deref(), Some("xyz"));
                error
            }
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    /// RFC 6749 §3.1: a parameter sent without a value is as if omitted, at every stage.
    #[test]
    fn empty_parameters_are_omitted_ones() {
        let c = client(ClientType::Confidential);
        let r =
            run(&with(base(), "resource", Some("")), Some(&c)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.resource, None);
        let r = run(&with(base(), "scope", Some("")), Some(&c)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            r.scopes,
            vec!["admin", "voice"],
            "the default, as with no scope"
        );
        let r = run(&with(base(), "state", Some("")), Some(&c)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.state, None, "no empty state echoed");
        let no_pkce = with(
            with(base(), "code_challenge", Some("")),
            "code_challenge_method",
            Some(""),
        );
        let r = run(&no_pkce, Some(&c)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.code_challenge, None);
        assert_eq!(
            status(run(&with(base(), "client_id", Some("")), Some(&c))),
            400
        );
        assert_eq!(
            status(run(&with(base(), "redirect_uri", Some("")), Some(&c))),
            400
        );
        // Repeated stays repeated, empty or not.
        let mut twice = base();
        twice.push(("scope".into(), String::new()));
        twice.push(("scope".into(), "voice".into()));
        assert_eq!(redirect_error(run(&twice, Some(&c))), "invalid_request");
    }

    /// Only the query carries the code: another `response_mode` is refused, none or `query`
    /// accepted.
    #[test]
    fn only_the_query_response_mode_is_served() {
        let c = client(ClientType::Public);
        for mode in ["fragment", "form_post", "Query", "bogus"] {
            let r = run(&with(base(), "response_mode", Some(mode)), Some(&c));
            assert_eq!(redirect_error(r), "invalid_request", "{mode}");
        }
        for mode in [None, Some("query"), Some("")] {
            assert!(
                run(&with(base(), "response_mode", mode), Some(&c)).is_ok(),
                "{mode:?}"
            );
        }
    }

    #[test]
    fn a_valid_request_defaults_to_all_scopes() {
        let c = client(ClientType::Public);
        let r = run(&base(), Some(&c)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.scopes, vec!["admin", "voice"]);
        assert_eq!(r.code_challenge_method, Some(ChallengeMethod::S256));
        assert_eq!(r.state.as_deref(), Some("xyz"));
    }

    #[test]
    fn client_and_redirect_failures_never_redirect() {
        let c = client(ClientType::Public);
        assert_eq!(status(run(&with(base(), "client_id", None), Some(&c))), 400);
        assert_eq!(status(run(&base(), None)), 404);
        assert_eq!(
            status(run(&with(base(), "redirect_uri", None), Some(&c))),
            400
        );
        for bad in [
            "https://evil.example/cb",
            "https://app.example/cb/extra",
            "https://app.example/cb?x=1",
        ] {
            assert_eq!(
                status(run(&with(base(), "redirect_uri", Some(bad)), Some(&c))),
                422
            );
        }
        let mut twice = base();
        twice.push(("redirect_uri".into(), "https://app.example/cb".into()));
        assert_eq!(status(run(&twice, Some(&c))), 400);
        // Even with a broken response_type, an unknown client gets the page.
        assert_eq!(
            status(run(&with(base(), "response_type", Some("token")), None)),
            404
        );
    }

    #[test]
    fn loopback_port_may_differ() {
        let c = client(ClientType::Public);
        let r = run(
            &with(base(), "redirect_uri", Some("http://127.0.0.1:43117/cb")),
            Some(&c),
        );
        assert_eq!(
            r.map(|r| r.redirect_uri).ok().as_deref(),
            Some("http://127.0.0.1:43117/cb")
        );
    }

    #[test]
    fn later_failures_redirect_with_the_right_code() {
        let c = client(ClientType::Public);
        let mut rep = base();
        rep.push(("scope".into(), "admin".into()));
        rep.push(("scope".into(), "voice".into()));
        assert_eq!(redirect_error(run(&rep, Some(&c))), "invalid_request");
        assert_eq!(
            redirect_error(run(&with(base(), "response_type", Some("token")), Some(&c))),
            "unsupported_response_type"
        );
        assert_eq!(
            redirect_error(run(&with(base(), "response_type", None), Some(&c))),
            "invalid_request"
        );
        assert_eq!(
            redirect_error(run(&with(base(), "scope", Some("admin billing")), Some(&c))),
            "invalid_scope"
        );
        assert_eq!(
            redirect_error(run(
                &with(base(), "resource", Some("https://other.example")),
                Some(&c)
            )),
            "invalid_target"
        );
        assert_eq!(
            redirect_error(run(&with(base(), "code_challenge", None), Some(&c))),
            "invalid_request"
        );
        assert_eq!(
            redirect_error(run(
                &with(base(), "code_challenge", Some("short")),
                Some(&c)
            )),
            "invalid_request"
        );
        assert_eq!(
            redirect_error(run(
                &with(base(), "code_challenge_method", Some("plain")),
                Some(&c)
            )),
            "invalid_request"
        );
        assert_eq!(
            redirect_error(run(
                &with(base(), "code_challenge_method", Some("S512")),
                Some(&c)
            )),
            "invalid_request"
        );
        let mut no_code = client(ClientType::Confidential);
        no_code.settings.grant_types = vec![GrantType::ClientCredentials];
        assert_eq!(
            redirect_error(run(&base(), Some(&no_code))),
            "unauthorized_client"
        );
    }

    #[test]
    fn pkce_is_optional_only_for_confidential_clients_without_require_pkce() {
        let mut c = client(ClientType::Confidential);
        let no_pkce = with(
            with(base(), "code_challenge", None),
            "code_challenge_method",
            None,
        );
        let r = run(&no_pkce, Some(&c)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.code_challenge, None);
        c.settings.require_pkce = true;
        assert_eq!(redirect_error(run(&no_pkce, Some(&c))), "invalid_request");
        // A third party's confidential client needs PKCE whatever its record says.
        for origin in [
            crate::client::ClientOrigin::Registration,
            crate::client::ClientOrigin::MetadataDocument,
        ] {
            let mut third = client(ClientType::Confidential);
            third.origin = origin;
            assert!(!third.settings.require_pkce);
            assert_eq!(
                redirect_error(run(&no_pkce, Some(&third))),
                "invalid_request"
            );
        }
        let r = run(
            &with(base(), "resource", Some("https://api.example")),
            Some(&c),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.resource.as_deref(), Some("https://api.example"));
    }

    #[test]
    fn redirects_keep_the_registered_query() {
        assert_eq!(
            error_redirect("https://a.example/cb?x=1", "access_denied", "no", Some("s t"), "https://i"),
            "https://a.example/cb?x=1&error=access_denied&error_description=no&state=s+t&iss=https%3A%2F%2Fi"
        );
        assert_eq!(
            code_redirect("https://a.example/cb", "abc", None, "https://i"),
            "https://a.example/cb?code=abc&iss=https%3A%2F%2Fi"
        );
    }

    #[test]
    fn a_third_party_request_for_the_management_scope_is_narrowed() {
        let mut c = client(ClientType::Public);
        c.origin = crate::client::ClientOrigin::Registration;
        let scopes = |scope: Option<&str>| run(&with(base(), "scope", scope), Some(&c));
        // Asked for with another scope: the other is granted.
        assert_eq!(
            scopes(Some("admin voice")).map(|r| r.scopes),
            Ok(vec!["voice".to_owned()])
        );
        // No scope: its own scopes that it may be granted, never admin.
        assert_eq!(scopes(None).map(|r| r.scopes), Ok(vec!["voice".to_owned()]));
        // Only the management scope: nothing left to grant.
        assert_eq!(redirect_error(scopes(Some("admin"))), "invalid_scope");
        // A scope open to third parties beyond its registered ones may be asked for (a step
        // up; the user decides); one the catalogue does not have is an error, not narrowed.
        assert_eq!(
            scopes(Some("voice billing")).map(|r| r.scopes),
            Ok(vec!["voice".to_owned(), "billing".to_owned()])
        );
        assert_eq!(
            redirect_error(scopes(Some("voice unheard-of"))),
            "invalid_scope"
        );
        // A first-party client is held to its allowed scopes.
        let first = client(ClientType::Public);
        assert_eq!(
            redirect_error(run(
                &with(base(), "scope", Some("voice billing")),
                Some(&first)
            )),
            "invalid_scope"
        );
        // A first-party client keeps asking for admin as before.
        let first = client(ClientType::Public);
        assert_eq!(
            run(&with(base(), "scope", Some("admin voice")), Some(&first)).map(|r| r.scopes),
            Ok(vec!["admin".to_owned(), "voice".to_owned()])
        );
    }

    #[test]
    fn sixteen_thousand_scopes_are_refused_at_once() {
        let many: Vec<String> = (0..16_000).map(|i| format!("s{i}")).collect();
        let c = client(ClientType::Public);
        let r = run(&with(base(), "scope", Some(&many.join(" "))), Some(&c));
        assert_eq!(redirect_error(r), "invalid_scope");
    }
}
