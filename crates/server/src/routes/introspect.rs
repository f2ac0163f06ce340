//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009).
//!
//! Introspection answers `{"active": false}` and nothing else for every token that is not
//! active (§2.2), and also for an active token the caller may not see: a client sees only its
//! own tokens; an organization's credential (an API key, or an access token with the management
//! scope from a first-party client) sees the tokens of the organization's own clients and the
//! tokens its members granted to third-party clients, nothing else.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use oauth_core::entity::User;
use oauth_core::jwt::{self, AccessTokenClaims};
use oauth_core::secret;
use oauth_wire::{ErrorBody, GrantType, IntrospectRequest, IntrospectResponse, RevokeRequest};

use crate::audit::{self, Event, EventKind};
use crate::error::ApiError;
use crate::extract::{bearer_token, MANAGEMENT_SCOPE};
use crate::oauth_request::{
    authenticate_client_and_token, authenticate_client_to_revoke, ClientCredentials, OAuthParams,
};
use crate::respond::no_store;
use crate::state::AppState;
use crate::tokens::{
    active_access_token, still_live, token_user, verify_access_token, ActiveToken,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/introspect", post(introspect))
        .route("/oauth/revoke", post(revoke))
}

/// This module's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(introspect, revoke))]
pub(super) struct Doc;

/// Who asks (RFC 7662 §2.1: the endpoint requires authorization).
enum Introspector {
    /// An authenticated client (its record, already read).
    Client(Box<oauth_core::Client>),
    User(User),
}

#[utoipa::path(
    post,
    path = "/oauth/introspect",
    operation_id = "IntrospectOAuthToken",
    tag = "OAuth",
    summary = "Token introspection (RFC 7662)",
    request_body(content(
        (IntrospectRequest = "application/json"),
        (IntrospectRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "`{\"active\": false}` alone for a token that is not active or not the caller's to see", body = IntrospectResponse),
        (status = 400, description = "No `token`", body = ErrorBody),
        (status = 401, description = "No valid client or organization credential", body = ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = ErrorBody),
    ),
    security(("client_basic" = []), ("bearer" = []), ()),
)]
async fn introspect(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: OAuthParams,
) -> Result<Response, ApiError> {
    let (who, own_token) = introspector(&state, peer.ip(), &headers, &params).await?;
    let token = params.require("token")?;
    // `token_type_hint` may be ignored (§2.1): a JWT is an access token, anything else is
    // looked up as a refresh token.
    let mut body = IntrospectResponse::default();
    if !jwt::looks_like_jwt(token) {
        if let Some(b) = introspect_refresh_token(&state, &who, token).await? {
            body = b;
        }
        return Ok(no_store(Json(body).into_response()));
    }
    // A client sees its own tokens only, judged when it authenticated: another client's token
    // is inactive to it whatever the database says.
    let active = match who {
        Introspector::Client(client) => own_token.and_then(|(claims, live)| {
            live.then_some(ActiveToken {
                claims,
                client: *client,
            })
        }),
        Introspector::User(ref user) => match verify_access_token(&state, token, None).await {
            Some(claims) => match still_live(&state, claims, None).await? {
                Some(a) => {
                    let subject = a.claims.grant_id.as_ref().map(|_| a.claims.sub.as_str());
                    visible_to_org(&state, user, &a.client, subject)
                        .await?
                        .then_some(a)
                }
                None => None,
            },
            None => None,
        },
    };
    // A scope the client has lost since the token was issued is no longer reported (a refresh
    // would no longer issue it); a token left with none is not active.
    // A client-credentials token whose client has lost that grant acts for nobody (the
    // management API refuses it), so it is not active either.
    let active = active.filter(ActiveToken::grant_type_kept).and_then(|a| {
        let mut claims = a.claims;
        let scope = still_granted(&state, &a.client, std::mem::take(&mut claims.scope))?;
        Some((claims, scope))
    });
    if let Some((c, scope)) = active {
        body = IntrospectResponse {
            active: true,
            aud: Some(c.aud),
            client_id: Some(c.client_id),
            exp: Some(c.exp),
            iat: Some(c.iat),
            iss: Some(c.iss),
            scope: Some(scope),
            sub: Some(c.sub),
            token_type: Some("Bearer".to_owned()),
            jti: Some(c.jti),
        };
    }
    Ok(no_store(Json(body).into_response()))
}

/// A live refresh token the caller may see: unused, unrevoked, unexpired, its grant live and its
/// client existing.
async fn introspect_refresh_token(
    state: &AppState,
    who: &Introspector,
    token: &str,
) -> Result<Option<IntrospectResponse>, ApiError> {
    let now = state.clock.now();
    let Some(t) = state
        .store
        .find_refresh_token(&secret::hash_secret(token))
        .await?
    else {
        return Ok(None);
    };
    if t.used_at.is_some() || t.revoked_at.is_some() || t.expires_at <= now {
        return Ok(None);
    }
    // Visibility before the remaining reads: a client sees only its own tokens (and its own
    // record was read when it authenticated); a user, those of their organization's clients.
    let stored;
    let client = match who {
        Introspector::Client(c) => (c.client_id == t.client_id).then_some(c.as_ref()),
        Introspector::User(user) => {
            stored = state.store.get_client(&t.client_id).await?;
            match &stored {
                Some(client) => visible_to_org(state, user, client, Some(&t.user_id))
                    .await?
                    .then_some(client),
                None => None,
            }
        }
    };
    // A client no longer allowed the refresh grant cannot use the token (the token endpoint
    // refuses it), so it is not active either.
    let Some(client) = client.filter(|c| c.allows_grant(&GrantType::RefreshToken)) else {
        return Ok(None);
    };
    let Some(scope) = still_granted(state, client, t.scopes.join(" ")) else {
        return Ok(None);
    };
    if state.store.live_grant(&t.grant_id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(IntrospectResponse {
        active: true,
        aud: t.resource,
        client_id: Some(t.client_id),
        exp: Some(t.expires_at),
        iat: Some(t.created_at),
        iss: Some(state.issuer.to_string()),
        scope: Some(scope),
        sub: Some(t.user_id),
        token_type: Some("refresh_token".to_owned()),
        jti: None,
    }))
}

/// The scopes of a token (`scope`, space-separated) that `client` may still be granted, as
/// given when it may be granted them all; `None` when the token had some and none is left.
fn still_granted(state: &AppState, client: &oauth_core::Client, scope: String) -> Option<String> {
    let granted = |s: &&str| client.may_be_granted(s, &state.config.scopes);
    if scope.split_whitespace().all(|s| granted(&s)) {
        return Some(scope);
    }
    let left: Vec<&str> = scope.split_whitespace().filter(granted).collect();
    (!left.is_empty()).then(|| left.join(" "))
}

/// May an organization's credential (acting for `user`) see a token of `client` whose subject
/// (for a token from a user's grant) is `subject`? Its own organization's first-party clients'
/// tokens, and the tokens its own members granted to third-party clients.
async fn visible_to_org(
    state: &AppState,
    user: &User,
    client: &oauth_core::Client,
    subject: Option<&str>,
) -> Result<bool, ApiError> {
    if !client.is_third_party() {
        return Ok(client.org_id == user.org_id);
    }
    let Some(subject) = subject else {
        return Ok(false);
    };
    if subject == user.id {
        return Ok(true);
    }
    Ok(state
        .store
        .get_user(subject)
        .await?
        .is_some_and(|s| s.org_id == user.org_id))
}

/// Client authentication (Basic or body with a secret, or a client assertion) if present; otherwise a Bearer API key,
/// or an access token of this server with the management scope from a first-party client,
/// acting for its user.
/// For a client, also its own access token if that was presented (a JWT whose signature
/// verified and which names it), and whether it is still live.
async fn introspector(
    state: &AppState,
    peer: IpAddr,
    headers: &HeaderMap,
    params: &OAuthParams,
) -> Result<(Introspector, Option<(AccessTokenClaims, bool)>), ApiError> {
    let creds = ClientCredentials::from_request(headers, params)?;
    if let Some(
        c @ (ClientCredentials::Basic { .. }
        | ClientCredentials::Post { .. }
        | ClientCredentials::Assertion { .. }),
    ) = &creds
    {
        let token = params.get("token").filter(|t| jwt::looks_like_jwt(t));
        let (client, own) = authenticate_client_and_token(state, c, peer, token).await?;
        return Ok((Introspector::Client(Box::new(client.client)), own));
    }
    if let Some(credential) = bearer_token(headers) {
        // A made-up credential costs the address's failure budget, as a made-up client_id
        // does: per-credential buckets alone would let one address guess without end.
        state
            .rate_limits
            .bearer_authentication_allowed(peer, state.clock.now())
            .await?;
        state
            .rate_limits
            .bearer(credential, state.clock.now())
            .await?;
        let user = if jwt::looks_like_jwt(credential) {
            match active_access_token(state, credential, Some(&state.issuer)).await? {
                // The management scope, and never from a third-party client or one that lost
                // the scope: a client's own token must not reveal other clients' tokens.
                Some(active) if !active.may_manage(&state.config.scopes) => {
                    return Err(ApiError::insufficient_scope(
                        MANAGEMENT_SCOPE,
                        &state.protected_resource_metadata_url(),
                    ));
                }
                Some(active) => token_user(state, &active).await?,
                None => None,
            }
        } else {
            state
                .store
                .authenticate_api_key(&secret::hash_secret(credential), state.clock.now())
                .await?
                .map(|(_, user)| user)
        };
        if user.is_none() {
            state
                .rate_limits
                .client_authentication_failed(None, peer, state.clock.now())
                .await;
        }
        return match user {
            Some(u) => Ok((Introspector::User(u), None)),
            // RFC 7662 §2.3: a bad bearer is answered as RFC 6750 §3 says, invalid_token (in
            // the challenge and the body alike), as on the management API.
            None => Err(ApiError::unauthorized(
                "invalid_token",
                "the bearer credential is unknown, expired or revoked",
                &state.protected_resource_metadata_url(),
            )),
        };
    }
    Err(ApiError::invalid_client("introspection requires client authentication (HTTP Basic, client_id and client_secret, or a client_assertion) or a bearer API key",
    ))
}

/// RFC 7009 §2: the client revokes one of its own tokens. The answer is 200 whether or not the
/// token was known, valid, or the client's (§2.2), so that it reveals nothing about tokens.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    operation_id = "RevokeOAuthToken",
    tag = "OAuth",
    summary = "Token revocation (RFC 7009)",
    request_body(content(
        (RevokeRequest = "application/json"),
        (RevokeRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke: the answer is the same"),
        (status = 400, description = "No `token`", body = ErrorBody),
        (status = 401, description = "No valid client authentication", body = ErrorBody),
        (status = 429, description = "Rate limited; see `Retry-After`", body = ErrorBody),
    ),
    security(("client_basic" = []), ()),
)]
async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: OAuthParams,
) -> Result<Response, ApiError> {
    let Some(creds) = ClientCredentials::from_request(&headers, &params)? else {
        return Err(ApiError::invalid_client("client authentication is required: HTTP Basic, client_id (and client_secret) in the body, or a client_assertion (private_key_jwt)",
        ));
    };
    let client = authenticate_client_to_revoke(&state, &creds, peer.ip())
        .await?
        .client;
    let token = params.require("token")?;
    if jwt::looks_like_jwt(token) {
        let now = state.clock.now();
        // An expired or forged token needs no revoking.
        if let Some(claims) = verify_access_token(&state, token, None).await {
            if claims.client_id == client.client_id {
                if state
                    .store
                    .revoke_access_token(&claims.jti, claims.exp, now)
                    .await?
                {
                    let mut event = Event::new(EventKind::AccessTokenRevoked)
                        .client(&client)
                        .detail("jti", claims.jti.clone());
                    // A user's token (with a grant) names the user; a client_credentials
                    // token's subject is the client itself.
                    if let Some(g) = &claims.grant_id {
                        event = event.grant_id(g).user_id(&claims.sub);
                    }
                    audit::record(state.store.as_ref(), now, event).await;
                }
            } else if let Some(not_logged) =
                state.log_paces.foreign_revocation.admit(state.clock.now())
            {
                tracing::info!(client_id = %client.client_id, not_logged, "revocation of another client's token ignored");
            }
        }
    } else {
        // §2.1: a refresh token takes its family with it (the tokens descending from the same
        // authorization code), access tokens included: they check their family on use. The
        // user's other authorizations of the client stand.
        let hash = secret::hash_secret(token);
        if let Some(t) = state.store.find_refresh_token(&hash).await? {
            if t.client_id == client.client_id {
                let now = state.clock.now();
                // Only a revocation that ended something is an event: a client repeating one
                // with a dead token writes nothing (RFC 7009 §2.2 answers it 200 all the same).
                if state.store.revoke_refresh_token_family(&hash, now).await? {
                    audit::record(
                        state.store.as_ref(),
                        now,
                        Event::new(EventKind::TokenFamilyRevoked)
                            .user_id(&t.user_id)
                            .client(&client)
                            .grant_id(&t.grant_id)
                            .detail("by", "client"),
                    )
                    .await;
                }
            } else if let Some(not_logged) =
                state.log_paces.foreign_revocation.admit(state.clock.now())
            {
                tracing::info!(client_id = %client.client_id, not_logged, "revocation of another client's refresh token ignored");
            }
        }
    }
    Ok(no_store(().into_response()))
}
