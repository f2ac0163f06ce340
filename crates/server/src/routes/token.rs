//! `POST /oauth/token` (RFC 6749 §3.2): authenticate the client, then hand the request to the
//! grant it names.
//!
//! ```text
//!  client ── POST /oauth/token ──► OAuthParams (form or JSON, §3.2)
//!                                   ClientCredentials (Basic | body | id alone, §2.3)
//!                                   authenticate_client (and, for the code and refresh
//!                                     grants, the presented code or token read in the
//!                                     client's statement)
//!                                   match grant_type ──► authorization_code (§4.1.3)
//!                                                   ├─► refresh_token (§6)
//!                                                   ├─► client_credentials (§4.4)
//!                                                   └─► anything else: unsupported_grant_type
//! ```

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use oauth_core::entity::{AuthorizationCode, RefreshToken};
use oauth_core::secret;
use oauth_core::token::{granted_scopes, CodeRefusal, PresentedCode};
use oauth_core::UnixSeconds;
use oauth_store::{
    CodeDecision, CodeExchange, Decide, NewRefreshToken, NewTokenFamily, RefreshRotation,
};
use oauth_wire::{ErrorBody, GrantType, TokenResponse};
use rand::rngs::OsRng;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use crate::audit::{self, Event, EventKind};
use crate::error::ApiError;
use crate::oauth_request::{
    authenticate_client, authenticate_client_and_code, authenticate_client_and_refresh_token,
    AuthenticatedClient, ClientCredentials, OAuthParams,
};
use crate::state::AppState;
use crate::tokens::{issue_access_token, TokenRequest};

pub fn router() -> Router<AppState> {
    Router::new().route("/oauth/token", post(token))
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(token))]
pub(super) struct Doc;

#[utoipa::path(
    post,
    path = "/oauth/token",
    operation_id = "ExchangeOAuthToken",
    tag = "OAuth",
    summary = "The token endpoint (RFC 6749 §3.2)",
    request_body(content(
        (oauth_wire::TokenRequest = "application/json"),
        (oauth_wire::TokenRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Tokens", body = TokenResponse),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `invalid_scope`, `unsupported_grant_type`, ...", body = ErrorBody),
        (status = 401, description = "`invalid_client`", body = ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = ErrorBody),
    ),
    security(("client_basic" = []), ()),
)]
async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: OAuthParams,
) -> Result<Response, ApiError> {
    let creds = ClientCredentials::from_request(&headers, &params)?;
    let grant_type = params.require("grant_type")?;
    let Some(creds) = creds else {
        return Err(ApiError::invalid_client("client authentication is required: HTTP Basic, client_id (and client_secret) in the body, or a client_assertion (private_key_jwt)",
        ));
    };
    // The presented refresh token or code is read in the client's statement: one round trip
    // before the rotation or exchange.
    let mut stored_refresh = None;
    let mut unused_code = None;
    let client = match grant_type {
        "refresh_token" if params.get("refresh_token").is_some() => {
            let hash = secret::hash_secret(params.require("refresh_token")?);
            let (client, stored) =
                authenticate_client_and_refresh_token(&state, &creds, peer.ip(), &hash).await?;
            stored_refresh = stored;
            client
        }
        "authorization_code" if params.get("code").is_some() => {
            let hash = secret::hash_secret(params.require("code")?);
            let (client, unused) =
                authenticate_client_and_code(&state, &creds, peer.ip(), &hash).await?;
            unused_code = unused;
            client
        }
        _ => authenticate_client(&state, &creds, peer.ip()).await?,
    };
    let response = match grant_type {
        "authorization_code" => {
            authorization_code(&state, &client, &params, unused_code, peer.ip()).await?
        }
        "refresh_token" => {
            refresh_token(&state, &client, &params, stored_refresh, peer.ip()).await?
        }
        "client_credentials" => client_credentials(&state, &client, &params)?,
        other => {
            return Err(ApiError::oauth(
                "unsupported_grant_type",
                format!("grant_type `{}` is not supported here", truncate(other)),
            ))
        }
    };
    Ok(crate::respond::no_store(Json(response).into_response()))
}

/// RFC 6749 §4.4: a confidential client gets a token for itself. Nothing is written: the token
/// is self-contained.
fn client_credentials(
    state: &AppState,
    auth: &AuthenticatedClient,
    params: &OAuthParams,
) -> Result<TokenResponse, ApiError> {
    let client = &auth.client;
    // §4.4: confidential clients only.
    if !client.is_confidential() || !auth.authenticated {
        return Err(ApiError::oauth(
            "unauthorized_client",
            "only a confidential client may use the client_credentials grant",
        ));
    }
    if !client
        .settings
        .grant_types
        .contains(&GrantType::ClientCredentials)
    {
        return Err(ApiError::oauth(
            "unauthorized_client",
            "this client is not allowed the client_credentials grant",
        ));
    }
    // No user consents here: the client's own scopes are the most it gets. A third-party
    // client (one allowed client_credentials behind the initial access token) never gets a
    // scope closed to third parties; its token acts for no user.
    let own = client.own_scopes(&state.config.scopes);
    let scopes = scopes_for(params.get("scope"), &own)?;
    let audience = resource(state, params.get("resource"))?;
    let issued = issue_access_token(
        state,
        &TokenRequest {
            subject: &client.client_id,
            client_id: &client.client_id,
            scopes: &scopes,
            audience: audience.as_deref(),
            grant_id: None,
            family_id: None,
            grant_type: "client_credentials",
        },
    )?;
    // Debug, not info: this is the hot path, and the issuance of a self-contained token is no
    // security event (failures and revocations are logged at info).
    tracing::debug!(client_id = %client.client_id, jti_label = %oauth_core::secret::log_label(&issued.claims.jti), "issued a client_credentials token");
    Ok(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in,
        refresh_token: None,
        scope: Some(issued.claims.scope).filter(|s| !s.is_empty()),
    })
}

/// A client presented another client's code or refresh token, or a public client a code with the
/// wrong verifier or redirect URI: one of the address's client authentication failures is spent
/// (and one of this client's from the address), as for a wrong secret. The owner's credential is
/// left alone; the presenter pays, and what its attempts cost the server (a stored security
/// event, a verifier tried) is bounded by the failure budget rather than by the request budget.
async fn spend_a_failure(
    state: &AppState,
    client: &oauth_core::Client,
    peer: IpAddr,
    now: UnixSeconds,
) {
    state
        .rate_limits
        .client_authentication_failed(Some(&client.client_id), peer, now)
        .await;
}

fn invalid_grant(description: &'static str) -> ApiError {
    ApiError::oauth("invalid_grant", description)
}

fn require_grant_type(auth: &AuthenticatedClient, grant: GrantType) -> Result<(), ApiError> {
    if auth.client.allows_grant(&grant) {
        return Ok(());
    }
    Err(ApiError::oauth(
        "unauthorized_client",
        format!("this client is not allowed the {} grant", grant.as_str()),
    ))
}

/// RFC 6749 §4.1.3: exchanges an authorization code for tokens. `unused` is the code with the
/// presented one's hash if it was unused when read with the client.
async fn authorization_code(
    state: &AppState,
    auth: &AuthenticatedClient,
    params: &OAuthParams,
    unused: Option<AuthorizationCode>,
    peer: IpAddr,
) -> Result<TokenResponse, ApiError> {
    let client = &auth.client;
    require_grant_type(auth, GrantType::AuthorizationCode)?;
    let code = params.require("code")?;
    let presented = Arc::new(PresentedCode {
        client_id: client.client_id.clone(),
        pkce_required: client.requires_pkce(),
        redirect_uri: params.require("redirect_uri")?.to_owned(),
        verifier: params.get("code_verifier").map(str::to_owned),
        // A known resource in its configured spelling, as the code stored it; anything else
        // as sent, which then matches nothing.
        resource: params
            .get("resource")
            .map(|r| state.canonical_resource(r).unwrap_or_else(|| r.to_owned())),
        default_resource: state.issuer.to_string(),
        known_resources: state.known_resources(),
        grantable: client.grantable_scopes(&state.config.scopes),
    });
    let now = state.clock.now();
    let refresh_token = client
        .settings
        .grant_types
        .contains(&GrantType::RefreshToken)
        .then(|| secret::random_token(&mut OsRng));
    // One transaction marks the code used and, when the checks pass, starts its token family
    // and stores the refresh token: a code presented by its own authenticated client with the
    // wrong redirect URI or verifier is burned, never retried (RFC 6749 §4.1.2: single use); a
    // public client's such request, and a code presented by another client, change nothing
    // (the presenter may be an attacker, and the code is not theirs to burn); two concurrent
    // exchanges cannot both succeed; and a crash never leaves a used code whose tokens were
    // lost.
    let refresh_lifetime = state.config.tokens.refresh_token_lifetime_secs;
    let family = NewTokenFamily {
        id: secret::random_token(&mut OsRng),
        expires_at: now + state.config.tokens.refresh_family_lifetime_secs,
    };
    // The decision's reason, for the answer when it refuses (the store may run the decision
    // again after a deadlock: the last run's reason is the one that counted).
    let refusal: Arc<Mutex<Option<CodeRefusal>>> = Arc::default();
    let authenticated = auth.authenticated;
    let decide: Decide = {
        let presented = presented.clone();
        let refresh_token = refresh_token.clone();
        let refusal = refusal.clone();
        Box::new(
            move |code: &AuthorizationCode| match presented.check(code) {
                Ok(()) => CodeDecision::Accept {
                    refresh_token: refresh_token.as_deref().map(|token| {
                        new_refresh_token(
                            now,
                            refresh_lifetime,
                            token,
                            &code.grant_id,
                            &code.client_id,
                            &code.user_id,
                            &presented.scopes(code),
                            code.resource.as_deref(),
                        )
                    }),
                },
                Err(reason) => {
                    *refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
                    // An authenticated client spends its own code; a public client's request
                    // spends nothing unless it proved it holds the verifier and redirect URI.
                    if authenticated || reason.after_proof() {
                        CodeDecision::Reject
                    } else {
                        CodeDecision::Refuse
                    }
                }
            },
        )
    };
    let exchanged = match &unused {
        Some(read) => {
            state
                .store
                .exchange_unused_authorization_code(read, &client.client_id, &family, now, decide)
                .await?
        }
        None => {
            state
                .store
                .exchange_authorization_code(
                    &secret::hash_secret(code),
                    &client.client_id,
                    &family,
                    now,
                    decide,
                )
                .await?
        }
    };
    let code = match exchanged {
        CodeExchange::Exchanged(code) => code,
        CodeExchange::Rejected(_) => {
            // A public client's refused exchange spent nothing of the code's; it spends one of
            // the presenter's failures, so that whoever holds a leaked code cannot try
            // verifiers at the request rate.
            if !auth.authenticated {
                spend_a_failure(state, client, peer, now).await;
            }
            let reason = refusal
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            return Err(match reason {
                Some(CodeRefusal::StoredChallengeMethod) | None => {
                    ApiError::internal("a code was refused without a reason, or its stored challenge method is unknown")
                }
                Some(r) => ApiError::oauth(r.error(), r.description()),
            });
        }
        CodeExchange::WrongClient {
            issued_to,
            grant_id,
        } => {
            spend_a_failure(state, client, peer, now).await;
            audit::record(
                state.store.as_ref(),
                now,
                Event::new(EventKind::AuthorizationCodeWrongClient)
                    .client(client)
                    .grant_id(&grant_id)
                    .detail("issued_to", issued_to),
            )
            .await;
            return Err(invalid_grant(
                "the authorization code is invalid, expired or already used",
            ));
        }
        CodeExchange::AlreadyUsed {
            grant_id,
            user_id,
            revoked,
        } => {
            // §4.1.2: a replayed code revokes the tokens issued from it: the store has revoked
            // the family of its first exchange (access tokens check their family on use).
            audit::record_replay(
                state.store.as_ref(),
                now,
                EventKind::AuthorizationCodeReplayed,
                client,
                &grant_id,
                Some(user_id.as_str()).filter(|u| !u.is_empty()),
                revoked,
            )
            .await;
            return Err(invalid_grant(
                "the authorization code is invalid, expired or already used",
            ));
        }
        CodeExchange::Invalid => {
            return Err(invalid_grant(
                "the authorization code is invalid, expired or already used",
            ))
        }
    };
    let scopes = presented.scopes(&code);
    let issued = issue_access_token(
        state,
        &TokenRequest {
            subject: &code.user_id,
            client_id: &client.client_id,
            scopes: &scopes,
            audience: code.resource.as_deref(),
            grant_id: Some(&code.grant_id),
            family_id: code.family_id.as_deref(),
            grant_type: "authorization_code",
        },
    )?;
    tracing::info!(client_id = %client.client_id, grant_id = %code.grant_id, jti_label = %secret::log_label(&issued.claims.jti), "exchanged an authorization code");
    Ok(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in,
        refresh_token,
        scope: Some(issued.claims.scope),
    })
}

#[allow(clippy::too_many_arguments)]
fn new_refresh_token(
    now: UnixSeconds,
    lifetime_secs: i64,
    token: &str,
    grant_id: &str,
    client_id: &str,
    user_id: &str,
    scopes: &[String],
    resource: Option<&str>,
) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: secret::hash_secret(token),
        grant_id: grant_id.to_owned(),
        client_id: client_id.to_owned(),
        user_id: user_id.to_owned(),
        scopes: scopes.to_vec(),
        resource: resource.map(str::to_owned),
        created_at: now,
        expires_at: now + lifetime_secs,
        // The store puts the token in its family (and caps its expiry by the family's).
        family_id: None,
    }
}

/// RFC 6749 §6: a refresh token for a new access token and a new refresh token (rotation,
/// RFC 9700 §4.14.2). The old token is used up in the same transaction that stores the new one.
/// `stored` is the token with the presented one's hash, read with the client.
async fn refresh_token(
    state: &AppState,
    auth: &AuthenticatedClient,
    params: &OAuthParams,
    stored: Option<RefreshToken>,
    peer: IpAddr,
) -> Result<TokenResponse, ApiError> {
    let client = &auth.client;
    require_grant_type(auth, GrantType::RefreshToken)?;
    let presented = params.require("refresh_token")?;
    let hash = secret::hash_secret(presented);
    let now = state.clock.now();
    const INVALID: &str = "the refresh token is invalid, expired or revoked";
    // These fields never change, so checking them before the atomic rotation is race-free.
    let Some(stored) = stored else {
        return Err(invalid_grant(INVALID));
    };
    // §6: the token was issued to the authenticated client. Another client's attempt changes
    // nothing.
    if stored.client_id != client.client_id {
        spend_a_failure(state, client, peer, now).await;
        audit::record(
            state.store.as_ref(),
            now,
            Event::new(EventKind::RefreshTokenWrongClient)
                .client(client)
                .grant_id(&stored.grant_id)
                .detail("issued_to", stored.client_id.clone()),
        )
        .await;
        return Err(invalid_grant(INVALID));
    }
    // §6: the scope may be narrowed, never widened; none requested keeps the original scope,
    // less any scope removed from the client (or the catalogue) since: a change to a client
    // applies to every later refresh. The new refresh token keeps the whole of that scope, not
    // the narrowed one: a narrower access token now does not narrow the next refresh.
    let still: Vec<String> = stored
        .scopes
        .iter()
        .filter(|s| client.may_be_granted(s, &state.config.scopes))
        .cloned()
        .collect();
    let scopes = scopes_for(params.get("scope"), &still)?;
    // A resource taken out of the configuration mints no more tokens (RFC 8707 §2), as a scope
    // taken out of the catalogue is not granted again.
    if let Some(r) = stored.resource.as_deref() {
        if state.canonical_resource(r).as_deref() != Some(r) {
            return Err(ApiError::oauth(
                "invalid_target",
                "the resource this refresh token was issued for is no longer served by this server",
            ));
        }
    }
    if let Some(r) = params.get("resource") {
        // A token issued for no resource is for the issuer (its `aud`), so naming the issuer
        // names it.
        let held = stored.resource.as_deref().unwrap_or(&state.issuer);
        if state.canonical_resource(r).as_deref() != Some(held) {
            return Err(ApiError::oauth(
                "invalid_target",
                "the resource does not match the one this refresh token was issued for",
            ));
        }
    }
    let new_token = secret::random_token(&mut OsRng);
    let new = new_refresh_token(
        state.clock.now(),
        state.config.tokens.refresh_token_lifetime_secs,
        &new_token,
        &stored.grant_id,
        &client.client_id,
        &stored.user_id,
        &still,
        stored.resource.as_deref(),
    );
    let old = match state.store.rotate_refresh_token(&hash, &new, now).await? {
        RefreshRotation::Rotated(old) => old,
        RefreshRotation::Reused { grant_id, revoked } => {
            audit::record_replay(
                state.store.as_ref(),
                now,
                EventKind::RefreshTokenReused,
                client,
                &grant_id,
                Some(stored.user_id.as_str()),
                revoked,
            )
            .await;
            return Err(invalid_grant(INVALID));
        }
        RefreshRotation::Invalid => return Err(invalid_grant(INVALID)),
    };
    let issued = issue_access_token(
        state,
        &TokenRequest {
            subject: &old.user_id,
            client_id: &client.client_id,
            scopes: &scopes,
            audience: old.resource.as_deref(),
            grant_id: Some(&old.grant_id),
            family_id: old.family_id.as_deref(),
            grant_type: "refresh_token",
        },
    )?;
    tracing::info!(client_id = %client.client_id, grant_id = %old.grant_id, jti_label = %secret::log_label(&issued.claims.jti), "refreshed an access token");
    Ok(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer".to_owned(),
        expires_in: issued.expires_in,
        refresh_token: Some(new_token),
        scope: Some(issued.claims.scope),
    })
}

/// The scope of a token request, as `oauth_core::token::granted_scopes` decides it.
fn scopes_for(requested: Option<&str>, allowed: &[String]) -> Result<Vec<String>, ApiError> {
    granted_scopes(requested, allowed).map_err(|e| ApiError::oauth("invalid_scope", e.to_string()))
}

/// RFC 8707 §2: a `resource` must be the issuer or one of the configured `resources`; `None` is the
/// default (the issuer itself).
pub fn resource(state: &AppState, requested: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(r) = requested else {
        return Ok(None);
    };
    match state.canonical_resource(r) {
        Some(known) => Ok(Some(known)),
        None => Err(ApiError::oauth(
            "invalid_target",
            "the requested resource is unknown to this server",
        )),
    }
}

/// Caller-supplied text echoed in an error, cut short.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
