//! What the OAuth endpoints (`/oauth/token`, `/oauth/introspect`, `/oauth/revoke`) share: the
//! request parameters, form-encoded (RFC 6749 §4.1.3) or JSON (what the Python SDK sends), and
//! client authentication (RFC 6749 §2.3): a client secret, or a JWT signed with one of the
//! client's keys (`private_key_jwt`, RFC 7523 §2.2).

use std::net::IpAddr;

use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use oauth_core::client_assertion::{self, Expected, VerifiedAssertion, ASSERTION_TYPE};
use oauth_core::jwt::AccessTokenClaims;
use oauth_core::{secret, Client, ClientOrigin};
use oauth_store::{AuthorizationCode, RefreshToken};

use crate::audit::{self, Event, EventKind};
use crate::error::ApiError;
use crate::extract::{is_form, is_json, read_body};
use crate::form::{FormError, Params};
use crate::json::JsonError;
use crate::state::AppState;

/// The request's parameters, each at most once. An empty value counts as absent (RFC 6749 §3.1);
/// unknown parameters are kept and ignored by the handlers (also §3.1).
#[derive(Debug, Default)]
pub struct OAuthParams(Params);

impl OAuthParams {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).filter(|v| !v.is_empty())
    }

    /// The parameter, or `invalid_request` naming it.
    pub fn require(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key)
            .ok_or_else(|| ApiError::oauth("invalid_request", format!("`{key}` is required")))
    }

    /// From a form body: a repeated parameter is an error (RFC 6749 §3.1).
    pub fn from_form(body: &[u8]) -> Result<Self, ApiError> {
        match Params::parse(body) {
            Ok(params) => Ok(Self(params)),
            Err(FormError::Repeated(k)) if k == "resource" => Err(ApiError::oauth(
                "invalid_target",
                oauth_core::authorize::SEVERAL_RESOURCES,
            )),
            Err(FormError::Repeated(k)) => Err(ApiError::oauth(
                "invalid_request",
                format!("the parameter `{k}` appears more than once"),
            )),
            Err(FormError::NotUtf8) => Err(ApiError::oauth(
                "invalid_request",
                "the form body is not UTF-8 once percent-decoded",
            )),
            Err(FormError::Nul(k)) => Err(ApiError::oauth(
                "invalid_request",
                format!("the parameter `{k}` holds a NUL byte (%00)"),
            )),
        }
    }

    /// From a JSON object whose values are strings (`null` is absent). Numbers and booleans
    /// are refused rather than guessed at; a key given twice is refused like a repeated form
    /// parameter.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        let invalid = |description: String| ApiError::oauth("invalid_request", description);
        let object = match crate::json::parse_value(body) {
            Ok(serde_json::Value::Object(object)) => object,
            Ok(_) => return Err(invalid("the JSON body must be an object".to_owned())),
            Err(JsonError::Malformed(e)) => {
                return Err(invalid(format!("malformed JSON body: {e}")))
            }
            Err(JsonError::Repeated(pointer)) if pointer == "/resource" => {
                return Err(ApiError::oauth(
                    "invalid_target",
                    oauth_core::authorize::SEVERAL_RESOURCES,
                ))
            }
            Err(JsonError::Repeated(pointer)) => {
                return Err(invalid(format!(
                    "the parameter at `{pointer}` appears more than once"
                )))
            }
            Err(JsonError::Nul(pointer)) => {
                return Err(invalid(format!(
                    "the parameter at `{}`: {}",
                    pointer.replace('\0', "\\0"),
                    crate::json::NUL_IN_JSON
                )))
            }
        };
        let mut pairs = Vec::with_capacity(object.len());
        for (k, v) in object {
            match v {
                serde_json::Value::String(s) => pairs.push((k, s)),
                serde_json::Value::Null => {}
                // Several resources in the shape JSON gives a list (RFC 8707 §2 lets a client
                // ask for several): refused as a target, as the repeated form parameter is.
                serde_json::Value::Array(a) if k == "resource" && a.len() > 1 => {
                    return Err(ApiError::oauth(
                        "invalid_target",
                        oauth_core::authorize::SEVERAL_RESOURCES,
                    ))
                }
                _ => return Err(invalid(format!("the parameter `{k}` must be a string"))),
            }
        }
        // The JSON reader has refused repeated member names already.
        Params::from_pairs(pairs)
            .map(Self)
            .map_err(|_| invalid("a parameter appears more than once".to_owned()))
    }
}

impl<S> FromRequest<S> for OAuthParams
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let json = is_json(req.headers());
        let form = is_form(req.headers());
        if !json && !form {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "send the parameters as application/x-www-form-urlencoded or application/json",
            ));
        }
        let bytes = read_body(req.into_body(), &state).await?;
        if json {
            Self::from_json(&bytes)
        } else {
            Self::from_form(&bytes)
        }
    }
}

/// How a client presented itself (RFC 6749 §2.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredentials {
    /// `client_secret_basic`.
    Basic { client_id: String, secret: String },
    /// `client_secret_post`.
    Post { client_id: String, secret: String },
    /// A public client: `client_id` alone in the body (RFC 6749 §3.2.1).
    IdOnly { client_id: String },
    /// `private_key_jwt` (RFC 7523 §2.2): `client_id` is the assertion's `sub`, read before any
    /// verification.
    Assertion {
        client_id: String,
        assertion: String,
    },
}

impl ClientCredentials {
    pub fn client_id(&self) -> &str {
        match self {
            ClientCredentials::Basic { client_id, .. }
            | ClientCredentials::Post { client_id, .. }
            | ClientCredentials::IdOnly { client_id }
            | ClientCredentials::Assertion { client_id, .. } => client_id,
        }
    }

    /// The `token_endpoint_auth_method` this presentation amounts to (RFC 7591 §2).
    pub fn method(&self) -> &'static str {
        match self {
            ClientCredentials::Basic { .. } => "client_secret_basic",
            ClientCredentials::Post { .. } => "client_secret_post",
            ClientCredentials::IdOnly { .. } => "none",
            ClientCredentials::Assertion { .. } => "private_key_jwt",
        }
    }

    fn secret(&self) -> Option<&str> {
        match self {
            ClientCredentials::Basic { secret, .. } | ClientCredentials::Post { secret, .. } => {
                Some(secret)
            }
            ClientCredentials::IdOnly { .. } | ClientCredentials::Assertion { .. } => None,
        }
    }

    /// The client's credentials in this request, if any. An `Authorization: Bearer` header is
    /// not client authentication and is ignored here (the official SDKs send their API key on
    /// every call). Basic together with a body secret is two methods at once: refused
    /// (RFC 6749 §2.3).
    pub fn from_request(
        headers: &HeaderMap,
        params: &OAuthParams,
    ) -> Result<Option<Self>, ApiError> {
        let body_id = params.get("client_id");
        let body_secret = params.get("client_secret");
        if body_id.is_some_and(|id| !is_client_id_shaped(id)) {
            return Err(ApiError::oauth(
                "invalid_request",
                format!(
                    "`client_id` names no client: it holds a control character or is longer than {MAX_CLIENT_ID_BYTES} bytes"
                ),
            ));
        }
        let basic = basic_credentials(headers)?;
        let assertion_type = params.get("client_assertion_type");
        let assertion = params.get("client_assertion");
        if assertion_type.is_some() || assertion.is_some() {
            if basic.is_some() || body_secret.is_some() {
                return Err(ApiError::oauth(
                    "invalid_request",
                    "the client authenticated twice: a client_assertion goes alone, without client_secret or HTTP Basic",
                ));
            }
            return Self::assertion(body_id, assertion_type, assertion).map(Some);
        }
        if let Some((client_id, secret)) = basic {
            if body_secret.is_some() {
                return Err(ApiError::oauth(
                    "invalid_request",
                    "the client authenticated twice: use HTTP Basic or client_secret in the body, not both",
                ));
            }
            if body_id.is_some_and(|id| id != client_id) {
                return Err(ApiError::oauth(
                    "invalid_request",
                    "client_id in the body differs from the one in HTTP Basic",
                ));
            }
            return Ok(Some(ClientCredentials::Basic { client_id, secret }));
        }
        match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Some(ClientCredentials::Post {
                client_id: id.to_owned(),
                secret: secret.to_owned(),
            })),
            (Some(id), None) => Ok(Some(ClientCredentials::IdOnly {
                client_id: id.to_owned(),
            })),
            (None, Some(_)) => Err(ApiError::oauth(
                "invalid_request",
                "client_secret was sent without client_id",
            )),
            (None, None) => Ok(None),
        }
    }
}

impl ClientCredentials {
    /// RFC 7521 §4.2: both parameters, the JWT bearer type, and a `client_id`, if sent, equal
    /// to the assertion's `sub`.
    fn assertion(
        body_id: Option<&str>,
        assertion_type: Option<&str>,
        assertion: Option<&str>,
    ) -> Result<Self, ApiError> {
        let (Some(assertion_type), Some(assertion)) = (assertion_type, assertion) else {
            return Err(ApiError::oauth(
                "invalid_request",
                "client_assertion and client_assertion_type go together",
            ));
        };
        if assertion_type != ASSERTION_TYPE {
            return Err(ApiError::invalid_client(format!(
                "client_assertion_type must be {ASSERTION_TYPE}"
            )));
        }
        let client_id = client_assertion::claimed_client_id(assertion)
            .map_err(|e| ApiError::invalid_client(e.description))?;
        if !is_client_id_shaped(&client_id) {
            return Err(ApiError::invalid_client(
                "the client_assertion's sub names no client",
            ));
        }
        if body_id.is_some_and(|id| id != client_id) {
            return Err(ApiError::invalid_client(
                "client_id differs from the client_assertion's sub",
            ));
        }
        Ok(ClientCredentials::Assertion {
            client_id,
            assertion: assertion.to_owned(),
        })
    }
}

/// `Authorization: Basic` → (client_id, secret), each form-urlencoded inside the base64
/// (RFC 6749 §2.3.1) and decoded here. Another scheme is `None`; a broken Basic header is
/// `invalid_client`.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Ok(value) = value.to_str() else {
        return Ok(None);
    };
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bad = || ApiError::invalid_client("the HTTP Basic credentials are malformed");
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let id = form_decode(id).ok_or_else(bad)?;
    let secret = form_decode(secret).ok_or_else(bad)?;
    if id.is_empty() || !is_client_id_shaped(&id) || secret.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(Some((id, secret)))
}

pub use oauth_core::client::MAX_CLIENT_ID_BYTES;

/// Whether `id` could be a client_id: at most [`MAX_CLIENT_ID_BYTES`], no control character
/// (a NUL cannot even be looked up in PostgreSQL).
fn is_client_id_shaped(id: &str) -> bool {
    id.len() <= MAX_CLIENT_ID_BYTES && !id.chars().any(char::is_control)
}

/// `application/x-www-form-urlencoded` decoding of one credential (RFC 6749 §2.3.1): `+` is a
/// space, `%XX` a byte. `None` for a broken escape or invalid UTF-8.
fn form_decode(s: &str) -> Option<String> {
    crate::form::percent_decode(s.as_bytes(), true, crate::form::BrokenEscape::Refuse)
}

/// A client whose credentials checked out.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: Client,
    /// `true` when the client proved itself (a secret or a signed assertion); `false` for a
    /// public client that sent its id alone.
    pub authenticated: bool,
}

/// The audiences a client assertion may name: the issuer. RFC 7523 §3 lets a client name the
/// token endpoint's URL instead, but a client that signs assertions for any server it discovers
/// (an MCP client, say) can be handed this server's token endpoint as another server's, and its
/// assertion then replayed here; the working group's update (draft-ietf-oauth-rfc7523bis) names
/// the issuer alone. `authorization.client_assertion_accepts_token_endpoint` keeps the URLs (at
/// the root and under `/v2`) for older clients.
fn assertion_audiences(state: &AppState) -> Vec<String> {
    let issuer = &*state.issuer;
    let mut audiences = vec![issuer.to_owned()];
    if state
        .config
        .authorization
        .client_assertion_accepts_token_endpoint
    {
        audiences.push(format!("{issuer}/oauth/token"));
        audiences.push(format!("{issuer}/v2/oauth/token"));
    }
    audiences
}

/// An assertion refused: a reason for the audit trail, a description for the client.
type Refused = (&'static str, String);

/// Verifies a client assertion with the client's keys: inline, or fetched from its `jwks_uri`
/// (fetched again once for a `kid` the cached set lacks). The outer error is a request of
/// `peer` that may not wait for a fetch (its address waits in too many already).
async fn verify_assertion(
    state: &AppState,
    client: &Client,
    assertion: &str,
    peer: IpAddr,
) -> Result<Result<VerifiedAssertion, Refused>, ApiError> {
    let now = state.clock.now();
    let audiences = assertion_audiences(state);
    let expected = Expected {
        client_id: &client.client_id,
        audiences: &audiences,
    };
    let refused = |e: client_assertion::AssertionError| (e.reason, e.description);
    let s = &client.settings;
    if let Some(text) = &s.jwks {
        return Ok(client_assertion::parse_jwks_text(text.as_bytes())
            .map_err(|e| ("keys", format!("the client's jwks: {e}")))
            .and_then(|keys| {
                client_assertion::verify(assertion, &keys, expected, now).map_err(refused)
            }));
    }
    let Some(uri) = &s.jwks_uri else {
        return Ok(Err((
            "no_keys",
            "this client has no keys to verify a client_assertion".into(),
        )));
    };
    let reg = &state.config.registration;
    let url = match client_assertion::check_jwks_uri(uri, reg.cimd_allow_http_loopback) {
        Ok(url) => url,
        Err(e) => return Ok(Err(("keys", e))),
    };
    let keys_at = async |unknown_kid: bool| {
        let keys = state
            .documents
            .client_keys_at(reg, &url, (now, peer), unknown_kid)
            .await
            .map_err(crate::cimd::Busy::api_error)?;
        Ok::<_, ApiError>(keys.map_err(|e| ("keys_unavailable", e.0)))
    };
    let keys = match keys_at(false).await? {
        Ok(keys) => keys,
        Err(unavailable) => return Ok(Err(unavailable)),
    };
    Ok(
        match client_assertion::verify(assertion, &keys, expected, now) {
            Err(e) if e.is_unknown_key() => keys_at(true).await?.and_then(|keys| {
                client_assertion::verify(assertion, &keys, expected, now).map_err(refused)
            }),
            other => other.map_err(refused),
        },
    )
}

/// How the presented credentials fare against the stored client: `Ok(Ok(()))` when they prove
/// it (or it is public and sent its id alone), `Ok(Err(..))` with why not. A verified
/// assertion's `jti` is spent here, and only then; the outer error is an answer of its own
/// (the store's error, a spent request budget, or too many requests of `peer` waiting for
/// key sets), which spends no failure budget.
async fn check_credentials(
    state: &AppState,
    client: &Client,
    creds: &ClientCredentials,
    peer: IpAddr,
) -> Result<Result<(), Refused>, ApiError> {
    let ClientCredentials::Assertion { assertion, .. } = creds else {
        return Ok(check_secret(state, client, creds));
    };
    if !crate::cimd::still_accepted(&state.config.registration, client) {
        return Ok(Err((
            "metadata_document_refused",
            "client authentication failed".to_owned(),
        )));
    }
    if !client.accepts_assertions() {
        return Ok(Err((
            "unexpected_assertion",
            "this client has registered no keys: it cannot authenticate with a client_assertion"
                .to_owned(),
        )));
    }
    let verified = match verify_assertion(state, client, assertion, peer).await? {
        Ok(v) => v,
        Err(refused) => return Ok(Err(refused)),
    };
    // Only the key's holder gets this far. A client with no request budget left is answered
    // 429 before its jti is stored: otherwise every refused request of a client sending valid
    // assertions as fast as it can would still leave a row behind.
    state
        .rate_limits
        .oauth_client_allowed(&client.client_id, state.clock.now())
        .await?;
    let digest = client_assertion::jti_digest(&client.client_id, &verified.jti);
    let first_use = state
        .store
        .use_assertion_jti(&digest, verified.expires_at, state.clock.now())
        .await?;
    if !first_use {
        return Ok(Err((
            "replayed_assertion",
            "this client_assertion was used before: each jti may be used once".to_owned(),
        )));
    }
    Ok(Ok(()))
}

/// A secret, or a public client's id alone, against the stored client.
fn check_secret(
    state: &AppState,
    client: &Client,
    creds: &ClientCredentials,
) -> Result<(), Refused> {
    let generic = |reason: &'static str| (reason, "client authentication failed".to_owned());
    if !crate::cimd::still_accepted(&state.config.registration, client) {
        return Err(generic("metadata_document_refused"));
    }
    match (&client.secret_hash, creds.secret()) {
        (Some(hash), Some(presented)) => {
            if secret::verify_secret(presented, hash) {
                Ok(())
            } else {
                Err(generic("wrong_secret"))
            }
        }
        (None, None) if client.requires_assertion() => Err((
            "missing_assertion",
            "this client authenticates with private_key_jwt: send client_assertion_type and client_assertion".to_owned(),
        )),
        (None, None) => Ok(()),
        (Some(_), None) => Err(generic("missing_secret")),
        (None, Some(_)) => Err(generic("unexpected_secret")),
    }
}

/// Checks the credentials against the stored client: a confidential client must present its
/// secret (verified in constant time against the stored hash), or, for `private_key_jwt`, an
/// assertion signed with one of its keys (whose `jti` is then spent); a public client must not
/// present a secret (one with keys may present an assertion). `peer` is the client address.
///
/// Rate limits (docs/rate-limits.md): failures are limited per address and per client_id and
/// address, looked at before the lookup and the secret check (so guessing stays limited) and
/// spent only when the authentication fails, so that someone without the secret, elsewhere,
/// cannot make the client's own requests answer 429. The client's request budget is spent once
/// it has authenticated.
pub async fn authenticate_client(
    state: &AppState,
    creds: &ClientCredentials,
    peer: IpAddr,
) -> Result<AuthenticatedClient, ApiError> {
    Ok(authenticate_client_and_token(state, creds, peer, None)
        .await?
        .0)
}

/// [`authenticate_client`] for a revocation (RFC 7009), which only takes access away: a public
/// metadata-document client whose document cannot be had now is judged on its stored copy
/// rather than refused, so that it can still sign out while its document's host is down.
pub async fn authenticate_client_to_revoke(
    state: &AppState,
    creds: &ClientCredentials,
    peer: IpAddr,
) -> Result<AuthenticatedClient, ApiError> {
    let read = async || {
        Ok(state
            .store
            .get_client(creds.client_id())
            .await?
            .map(|c| (c, ())))
    };
    Ok(
        authenticate_reading(state, creds, peer, DocumentGone::KeepStored, read)
            .await?
            .0,
    )
}

/// What a public document client's authentication does when its document cannot be had now.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DocumentGone {
    /// Refuse it (it asks for access).
    Refuse,
    /// Judge it on the copy stored at its last authorization (it gives access up).
    KeepStored,
}

/// [`authenticate_client`], which also judges `token`, a presented access token (a JWT):
/// when its signature verifies and it is this client's own, the client and whether the token is
/// still live ([`crate::tokens::still_live`]) come from one statement, and the answer holds the
/// token's claims and that verdict. The signature is checked after the rate limits looked at,
/// so an address over its failure budget costs no verification.
pub async fn authenticate_client_and_token(
    state: &AppState,
    creds: &ClientCredentials,
    peer: IpAddr,
    token: Option<&str>,
) -> Result<(AuthenticatedClient, Option<(AccessTokenClaims, bool)>), ApiError> {
    authenticate_reading(state, creds, peer, DocumentGone::Refuse, async || {
        let own = match token {
            Some(t) => crate::tokens::verify_access_token(state, t, None)
                .await
                .filter(|c| c.client_id == creds.client_id()),
            None => None,
        };
        Ok(match own {
            None => state
                .store
                .get_client(creds.client_id())
                .await?
                .map(|c| (c, None)),
            Some(claims) => state
                .store
                .client_and_token_state(creds.client_id(), &crate::tokens::token_ref(&claims))
                .await?
                .map(|(client, live)| (client, Some((claims, live)))),
        })
    })
    .await
}

/// [`authenticate_client`], which also reads the refresh token whose hash is `token_hash`
/// (whoever it was issued to; the refresh grant judges it) in the client's statement.
pub async fn authenticate_client_and_refresh_token(
    state: &AppState,
    creds: &ClientCredentials,
    peer: IpAddr,
    token_hash: &str,
) -> Result<(AuthenticatedClient, Option<RefreshToken>), ApiError> {
    authenticate_reading(state, creds, peer, DocumentGone::Refuse, async || {
        Ok(state
            .store
            .client_and_refresh_token(creds.client_id(), token_hash)
            .await?)
    })
    .await
}

/// [`authenticate_client`], which also reads the authorization code whose hash is `code_hash`,
/// if it is unused (whoever it was issued to; the code grant judges it), in the client's
/// statement.
pub async fn authenticate_client_and_code(
    state: &AppState,
    creds: &ClientCredentials,
    peer: IpAddr,
    code_hash: &str,
) -> Result<(AuthenticatedClient, Option<AuthorizationCode>), ApiError> {
    authenticate_reading(state, creds, peer, DocumentGone::Refuse, async || {
        Ok(state
            .store
            .client_and_unused_code(creds.client_id(), code_hash)
            .await?)
    })
    .await
}

/// Client authentication, with the client read by `read` (together with whatever else the
/// caller needs from the same statement), after the rate limits were looked at. What `read`
/// found besides the client is handed back only when the client authenticated.
async fn authenticate_reading<T: Default>(
    state: &AppState,
    creds: &ClientCredentials,
    peer: IpAddr,
    gone: DocumentGone,
    read: impl AsyncFnOnce() -> Result<Option<(Client, T)>, ApiError>,
) -> Result<(AuthenticatedClient, T), ApiError> {
    let limits = &state.rate_limits;
    limits
        .client_authentication_allowed(creds.client_id(), peer, state.clock.now())
        .await?;
    let failed = || ApiError::invalid_client("client authentication failed");
    let (found, alongside) = match read().await? {
        Some((client, alongside)) => (Some(client), alongside),
        None => (None, T::default()),
    };
    let Some(client) = found else {
        // Logged, not stored: made-up ids cost an attacker nothing (see `audit`). Only in the
        // shape of an id this server knows (a UUID, or a metadata document's URL): a caller
        // who swapped id and secret must not find the secret in the log, so anything else is
        // logged as a hash label.
        let id = logged_client_id(creds.client_id());
        audit::log_only(
            Event::new(EventKind::ClientAuthenticationFailed)
                .client_id(&id)
                .detail("reason", "unknown_client"),
        );
        limits
            .client_authentication_failed(None, peer, state.clock.now())
            .await;
        return Err(failed());
    };
    // A document client is judged on its document as fresh as the cache allows, whatever it
    // presents: a signed JWT is checked against the document's keys now (a rotated key set
    // applies once the cached copy expires), and a client that sends its id alone is refused
    // once its document is gone or asks for private_key_jwt. Without this, a refresh token
    // outlived a withdrawn document (the stored copy was read only at /oauth/authorize).
    // Boxed: the fetch's state is several kilobytes, which every other authentication would
    // otherwise carry (and copy) in its future.
    let client = if client.origin == ClientOrigin::MetadataDocument
        && crate::cimd::still_accepted(&state.config.registration, &client)
    {
        let stored = (gone == DocumentGone::KeepStored
            && matches!(creds, ClientCredentials::IdOnly { .. }))
        .then(|| client.clone());
        Box::pin(refreshed_document_client(
            state,
            client,
            peer,
            creds.method(),
            stored,
        ))
        .await?
    } else {
        client
    };
    if let Err((reason, description)) = check_credentials(state, &client, creds, peer).await? {
        audit::record(
            state.store.as_ref(),
            state.clock.now(),
            Event::new(EventKind::ClientAuthenticationFailed)
                .client(&client)
                .detail("reason", reason)
                .detail("method", creds.method()),
        )
        .await;
        limits
            .client_authentication_failed(Some(&client.client_id), peer, state.clock.now())
            .await;
        return Err(ApiError::invalid_client(description));
    }
    let authenticated = !matches!(creds, ClientCredentials::IdOnly { .. });
    if authenticated {
        limits
            .oauth_client(&client.client_id, state.clock.now())
            .await?;
    } else {
        limits
            .oauth_public_client(&client.client_id, peer, state.clock.now())
            .await?;
    }
    Ok((
        AuthenticatedClient {
            authenticated,
            client,
        },
        alongside,
    ))
}

/// A presented client id that names no client, as the log may show it: itself when it has the
/// shape of an id this server issues (a UUID) or of a metadata document's URL (without user
/// name, password, query or fragment), cut to 64
/// characters; otherwise `label:` and a short hash label (it may be a secret sent in the
/// wrong field).
fn logged_client_id(presented: &str) -> String {
    let uuid = presented.len() == 36
        && presented.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if uuid {
        return presented.to_owned();
    }
    // A document's URL without what may hold a secret (a user name and password, a query, a
    // fragment), which no document client id this server accepts has.
    match url::Url::parse(presented) {
        Ok(mut u) if matches!(u.scheme(), "https" | "http") && u.has_host() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.as_str().chars().take(64).collect()
        }
        _ => format!("label:{}", secret::log_label(presented)),
    }
}

/// The stored document client brought up to date from its document (from the cache while
/// fresh). A document that cannot be had now refuses the authentication.
/// A failed fetch counts against the failure budgets, so that requests naming a client whose
/// document cannot be fetched cannot make the server fetch without end (failures are never
/// cached).
async fn refreshed_document_client(
    state: &AppState,
    client: Client,
    peer: IpAddr,
    method: &'static str,
    stored: Option<Client>,
) -> Result<Client, ApiError> {
    let policy = crate::cimd::document_policy(&state.config.registration);
    let oauth_core::cimd::ClientIdKind::Document(url) =
        oauth_core::cimd::classify(&client.client_id, policy)
    else {
        return Ok(client);
    };
    // The row was just read: bring it up to date without reading it again.
    let (client_id, org_id) = (client.client_id.clone(), client.org_id.clone());
    match crate::cimd::refresh(
        &state.documents,
        state.store.as_ref(),
        &state.config,
        state.clock.now(),
        (&url, peer),
        client,
    )
    .await
    {
        Ok(fresh) => Ok(fresh),
        Err(crate::cimd::Refusal::Answer(e)) => Err(e),
        Err(crate::cimd::Refusal::Document(e)) => {
            // The failed fetch spends the failure budgets either way: a caller naming a client
            // whose document's host is down must not make the server fetch without bound,
            // revocations included (failures are never cached).
            state
                .rate_limits
                .client_authentication_failed(Some(&client_id), peer, state.clock.now())
                .await;
            if let Some(stored) = stored {
                tracing::info!(client_id = %client_id, error = %e, "metadata document unavailable; the stored copy answers this revocation");
                return Ok(stored);
            }
            audit::record(
                state.store.as_ref(),
                state.clock.now(),
                Event::new(EventKind::ClientAuthenticationFailed)
                    .client_id(&client_id)
                    .org_id(&org_id)
                    .detail("reason", "metadata_document_unavailable")
                    .detail("method", method),
            )
            .await;
            Err(ApiError::invalid_client(format!(
                "the client metadata document cannot be used now: {e}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unknown_client_id_is_logged_only_in_the_shape_of_an_id() {
        let uuid = "0b7c6f2e-3f1a-4c5d-9e8f-1a2b3c4d5e6f";
        assert_eq!(super::logged_client_id(uuid), uuid);
        let doc = "https://app.example/client.json";
        assert_eq!(super::logged_client_id(doc), doc);
        let hiding = "https://u:UserinfoSECRET1@ex.example/c?tok=QuerySECRET2#FragSECRET3";
        assert_eq!(super::logged_client_id(hiding), "https://ex.example/c");
        let secret = "9YJrwO1Jkn0YGKEA1DRZcEq6PNLiTS76iMGspFaVxco";
        let logged = super::logged_client_id(secret);
        assert!(
            logged.starts_with("label:") && !logged.contains(&secret[..8]),
            "{logged}"
        );
        assert!(
            super::logged_client_id("0b7c6f2e-3f1a-4c5d-9e8f-1a2b3c4d5e6g").starts_with("label:")
        );
    }

    use super::*;
    use axum::http::HeaderValue;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let params = OAuthParams::default();
        let c = ClientCredentials::from_request(&basic("my%20id", "a%2Bb+c%3A"), &params).unwrap();
        assert_eq!(
            c,
            Some(ClientCredentials::Basic {
                client_id: "my id".into(),
                secret: "a+b c:".into()
            })
        );
        assert!(ClientCredentials::from_request(&basic("id", "%zz"), &params).is_err());
        // No control character in either part, no id longer than any client's.
        for (id, secret) in [("a%00b", "s"), ("a", "s%00"), ("a%0Ab", "s"), ("a", "%7F")] {
            let e = ClientCredentials::from_request(&basic(id, secret), &params).unwrap_err();
            assert_eq!(e.error_code(), "invalid_client", "{id}:{secret}");
        }
        let long = "x".repeat(MAX_CLIENT_ID_BYTES + 1);
        let e = ClientCredentials::from_request(&basic(&long, "s"), &params).unwrap_err();
        assert_eq!(e.error_code(), "invalid_client");
        let fits = "x".repeat(MAX_CLIENT_ID_BYTES);
        assert!(ClientCredentials::from_request(&basic(&fits, "s"), &params).is_ok());
        // In the body, the same ids are a malformed request.
        for body in [&b"client_id=a%01b"[..], b"client_id=%7F&client_secret=s"] {
            let params = OAuthParams::from_form(body).unwrap();
            let e = ClientCredentials::from_request(&HeaderMap::new(), &params).unwrap_err();
            assert_eq!(e.error_code(), "invalid_request");
        }
        // `%` takes two hex digits, never a sign (found by the property below).
        assert!(ClientCredentials::from_request(&basic("%+A", ""), &params).is_err());
    }

    #[test]
    fn bearer_is_ignored_and_two_methods_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer KEYabc"),
        );
        let params = OAuthParams::from_form(b"client_id=c&client_secret=s").unwrap();
        assert_eq!(
            ClientCredentials::from_request(&h, &params).unwrap(),
            Some(ClientCredentials::Post {
                client_id: "c".into(),
                secret: "s".into()
            })
        );
        let e = ClientCredentials::from_request(&basic("c", "s"), &params).unwrap_err();
        assert_eq!(e.error_code(), "invalid_request");
    }

    #[test]
    fn params_reject_repeats_and_non_strings() {
        assert!(OAuthParams::from_form(b"a=1&a=2").is_err());
        assert!(OAuthParams::from_json(br#"{"a": 1}"#).is_err());
        assert!(OAuthParams::from_json(b"[1]").is_err());
        assert!(OAuthParams::from_json(br#"{"a": "x", "a": "y"}"#).is_err());
        assert!(OAuthParams::from_json(br#"{"a": null, "a": "y"}"#).is_err());
        let p = OAuthParams::from_json(br#"{"a": "x", "b": null, "c": ""}"#).unwrap();
        assert_eq!(p.get("a"), Some("x"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), None, "empty is absent");
    }

    /// Property tests (bounded fuzzing) of the parameter parsers of `/oauth/token`,
    /// `/oauth/introspect` and `/oauth/revoke`; cases as in `crates/core/tests/props.rs`
    /// (512, or `PROPTEST_CASES`).
    mod props {
        use super::*;
        use proptest::prelude::*;

        fn config() -> proptest::test_runner::Config {
            let mut c = proptest::test_runner::Config {
                // Beside this file: src/oauth_request.proptest-regressions.
                failure_persistence: Some(Box::new(
                    proptest::test_runner::FileFailurePersistence::WithSource(
                        "proptest-regressions",
                    ),
                )),
                ..proptest::test_runner::Config::default()
            };
            if std::env::var_os("PROPTEST_CASES").is_none() {
                c.cases = 512;
            }
            // The same cases on every normal run; other seeds from PROPTEST_RNG_SEED.
            if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
                c.rng_seed = proptest::test_runner::RngSeed::Fixed(0x7e1e_0a17_5eed_0002);
            }
            c
        }

        /// The reference decoder: `+` is a space, `%` must be followed by two hex digits.
        fn strict_form_decode(s: &str) -> Option<String> {
            let b = s.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'+' => out.push(b' '),
                    b'%' => {
                        let h = b.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
                        let l = b.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            String::from_utf8(out).ok()
        }

        /// Encodes `s` with a random mix of escapes: each byte as itself, `%XX` (either case)
        /// or, for a space, `+`.
        fn encode(s: &str, choices: &[u8]) -> String {
            let mut out = String::new();
            for (i, b) in s.bytes().enumerate() {
                let c = choices.get(i % choices.len().max(1)).copied().unwrap_or(0);
                match (b, c % 3) {
                    (b' ', 0) => out.push('+'),
                    (b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.', 0) => {
                        out.push(b as char)
                    }
                    (_, 1) => out.push_str(&format!("%{b:02x}")),
                    _ => out.push_str(&format!("%{b:02X}")),
                }
            }
            out
        }

        /// Any text without NUL (which is refused wherever it appears; see
        /// `a_nul_anywhere_is_refused`).
        fn text() -> impl Strategy<Value = String> {
            any::<String>().prop_map(|s| s.replace('\0', ""))
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("grant_type".to_owned()),
                Just("code".to_owned()),
                Just("client_id".to_owned()),
                Just("client_secret".to_owned()),
                Just("redirect_uri".to_owned()),
                Just("code_verifier".to_owned()),
                Just("refresh_token".to_owned()),
                Just("scope".to_owned()),
                "[a-z_]{1,6}",
                text(),
            ]
        }

        proptest! {
            #![proptest_config(config())]

            /// Arbitrary bytes never panic, as a form or as JSON; a refusal is always a 400
            /// `invalid_request`.
            #[test]
            fn arbitrary_bodies_never_panic(body in prop_oneof![
                any::<Vec<u8>>(),
                "[a-z=&%+0-9A-F]{0,40}".prop_map(String::into_bytes),
                "\\{[\"a-z:, 0-9\\[\\]{}nul]{0,40}\\}?".prop_map(String::into_bytes),
            ]) {
                for parsed in [OAuthParams::from_form(&body), OAuthParams::from_json(&body)] {
                    if let Err(e) = parsed {
                        prop_assert_eq!(e.status(), StatusCode::BAD_REQUEST);
                        prop_assert_eq!(e.error_code(), "invalid_request");
                    }
                }
            }

            /// Distinct parameters, however each is encoded, come back decoded; the same
            /// parameters with one repeated (under any encoding of its name) are refused.
            #[test]
            fn repeated_form_parameters_are_refused(
                pairs in proptest::collection::btree_map(key(), text(), 1..6),
                choices in proptest::collection::vec(any::<u8>(), 1..16),
                repeat in any::<prop::sample::Index>(),
                other_value in text(),
                at in any::<prop::sample::Index>(),
            ) {
                let mut encoded: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}={}", encode(k, &choices), encode(v, &choices[1..])))
                    .collect();
                let parsed = OAuthParams::from_form(encoded.join("&").as_bytes()).unwrap();
                for (k, v) in &pairs {
                    let expected = (!v.is_empty()).then_some(v.as_str());
                    prop_assert_eq!(parsed.get(k), expected);
                }
                let (k, _) = pairs.iter().nth(repeat.index(pairs.len())).unwrap();
                let rotated: Vec<u8> = choices.iter().map(|c| c.wrapping_add(1)).collect();
                let dup = format!("{}={}", encode(k, &rotated), encode(&other_value, &choices));
                encoded.insert(at.index(encoded.len() + 1), dup);
                let e = OAuthParams::from_form(encoded.join("&").as_bytes()).unwrap_err();
                prop_assert_eq!(e.error_code(), "invalid_request");
                prop_assert!(e.description().contains("more than once"), "{}", e.description());
            }

            /// The same for JSON bodies: a key given twice is refused, whatever the values.
            #[test]
            fn repeated_json_members_are_refused(
                pairs in proptest::collection::btree_map(key(), text(), 1..6),
                repeat in any::<prop::sample::Index>(),
                dup_value in prop_oneof![
                    text().prop_map(serde_json::Value::String),
                    Just(serde_json::Value::Null),
                ],
            ) {
                let members: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}:{}", serde_json::json!(k), serde_json::json!(v)))
                    .collect();
                let body = format!("{{{}}}", members.join(","));
                let parsed = OAuthParams::from_json(body.as_bytes()).unwrap();
                for (k, v) in &pairs {
                    prop_assert_eq!(parsed.get(k), (!v.is_empty()).then_some(v.as_str()));
                }
                let (k, _) = pairs.iter().nth(repeat.index(pairs.len())).unwrap();
                let body = format!("{{{},{}:{}}}", members.join(","), serde_json::json!(k), dup_value);
                let e = OAuthParams::from_json(body.as_bytes()).unwrap_err();
                prop_assert!(e.description().contains("more than once"), "{}", e.description());
            }

            /// A NUL in any name or value, however it is escaped, refuses the whole body as
            /// a form (`%00`) and as JSON (`\u0000`): 400 `invalid_request` naming the
            /// parameter, never a value that could reach the database.
            #[test]
            fn a_nul_anywhere_is_refused(
                pairs in proptest::collection::btree_map(key(), text(), 1..6),
                choices in proptest::collection::vec(any::<u8>(), 1..16),
                which in any::<prop::sample::Index>(),
                at in any::<prop::sample::Index>(),
                in_name in any::<bool>(),
            ) {
                let (k, v) = pairs.iter().nth(which.index(pairs.len())).unwrap();
                let with_nul = |s: &str| {
                    let cut = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect::<Vec<_>>();
                    let i = cut[at.index(cut.len())];
                    format!("{}\0{}", &s[..i], &s[i..])
                };
                let (bad_k, bad_v) = if in_name { (with_nul(k), v.clone()) } else { (k.clone(), with_nul(v)) };
                let mut form: Vec<String> = pairs
                    .iter()
                    .filter(|(pk, _)| *pk != k)
                    .map(|(pk, pv)| format!("{}={}", encode(pk, &choices), encode(pv, &choices[1..])))
                    .collect();
                form.push(format!("{}={}", encode(&bad_k, &choices), encode(&bad_v, &choices[1..])));
                let e = OAuthParams::from_form(form.join("&").as_bytes()).unwrap_err();
                prop_assert_eq!(e.status(), StatusCode::BAD_REQUEST);
                prop_assert_eq!(e.error_code(), "invalid_request");
                prop_assert!(e.description().contains("NUL"), "{}", e.description());
                let mut object = serde_json::Map::new();
                for (pk, pv) in &pairs {
                    if pk != k {
                        object.insert(pk.clone(), serde_json::Value::String(pv.clone()));
                    }
                }
                object.insert(bad_k, serde_json::Value::String(bad_v));
                let body = serde_json::to_vec(&object).unwrap();
                let e = OAuthParams::from_json(&body).unwrap_err();
                prop_assert_eq!(e.error_code(), "invalid_request");
                prop_assert!(e.description().contains("NUL"), "{}", e.description());
            }

            /// `Authorization` headers never panic; Basic credentials decode exactly as the
            /// form-urlencoding rules say, and a decoded id or secret with a control character,
            /// or an id longer than `MAX_CLIENT_ID_BYTES`, is refused like a broken escape
            /// (`invalid_client`).
            #[test]
            fn basic_credentials_decode_strictly(
                id in prop_oneof![any::<String>(), "[a-zA-Z0-9%+:]{0,12}"],
                secret in prop_oneof![any::<String>(), "[a-zA-Z0-9%+:]{0,12}"],
                raw in any::<Vec<u8>>(),
            ) {
                let params = OAuthParams::default();
                let text = format!("{id}:{secret}");
                let mut h = HeaderMap::new();
                let value = format!("Basic {}", STANDARD.encode(&text));
                h.insert(header::AUTHORIZATION, axum::http::HeaderValue::from_str(&value).unwrap());
                let got = ClientCredentials::from_request(&h, &params);
                // The first colon separates the id, which may not contain one (it is encoded).
                let (rid, rsecret) = text.split_once(':').unwrap();
                let acceptable = |i: &str, s: &str| {
                    !i.is_empty()
                        && i.len() <= MAX_CLIENT_ID_BYTES
                        && !i.chars().chain(s.chars()).any(char::is_control)
                };
                match (strict_form_decode(rid), strict_form_decode(rsecret)) {
                    (Some(i), Some(s)) if acceptable(&i, &s) => prop_assert_eq!(
                        got.unwrap(),
                        Some(ClientCredentials::Basic { client_id: i, secret: s })
                    ),
                    _ => prop_assert_eq!(got.unwrap_err().error_code(), "invalid_client"),
                }
                if let Ok(v) = axum::http::HeaderValue::from_bytes(&raw) {
                    let mut h = HeaderMap::new();
                    h.insert(header::AUTHORIZATION, v);
                    let _ = ClientCredentials::from_request(&h, &params);
                }
            }
        }
    }
}
