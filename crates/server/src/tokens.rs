//! Access tokens as a service: issuing one (RFC 9068), and deciding whether a presented one is
//! active — signature, issuer, time, revocation, and its client still existing.
//!
//! Revocation is an indexed lookup: `revoked_tokens` is keyed by `jti`, so the check is one
//! primary-key read, and a revocation made on any instance holds on every instance at once.

use oauth_core::entity::User;
use oauth_core::jwt::{self, AccessTokenClaims, Expect};
use oauth_core::scope::MANAGEMENT_SCOPE;
use oauth_core::{secret, Client, ScopeCatalogue};
use oauth_store::AccessTokenRef;
use oauth_wire::GrantType;

use crate::error::ApiError;
use crate::signing::CLOCK_LEEWAY_SECS;
use crate::state::AppState;

/// A freshly signed access token.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
    pub claims: AccessTokenClaims,
}

/// What a token is issued for. The grant handlers fill this in.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    /// The user, or the client id for `client_credentials`.
    pub subject: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    /// RFC 8707 resource; `None` means the server itself (the issuer).
    pub audience: Option<&'a str>,
    /// The grant behind the token; `None` for `client_credentials`.
    pub grant_id: Option<&'a str>,
    /// The token family (the tokens of one authorization code); `None` for
    /// `client_credentials`.
    pub family_id: Option<&'a str>,
    /// The grant type of the request (RFC 6749 `grant_type`), for the metrics.
    pub grant_type: &'static str,
}

/// Signs an access token with the current key. Writes nothing.
pub fn issue_access_token(
    state: &AppState,
    req: &TokenRequest<'_>,
) -> Result<IssuedToken, ApiError> {
    let now = state.clock.now();
    let lifetime = state.config.tokens.access_token_lifetime_secs;
    let key = state
        .keys
        .signing_key(now)
        .ok_or_else(|| ApiError::internal("no signing key is loaded"))?;
    let claims = AccessTokenClaims {
        iss: state.issuer.to_string(),
        sub: req.subject.to_owned(),
        aud: req.audience.unwrap_or(&state.issuer).to_owned(),
        client_id: req.client_id.to_owned(),
        scope: req.scopes.join(" "),
        iat: now,
        exp: now + lifetime,
        // An identifier, not a secret (the token carries it): the thread's CSPRNG (ChaCha,
        // reseeded from the OS) serves it without a system call per token; secrets come from
        // the OS generator.
        jti: secret::random_token(&mut rand::thread_rng()),
        grant_id: req.grant_id.map(str::to_owned),
        family_id: req.family_id.map(str::to_owned),
    };
    let access_token = jwt::encode_access_token(&key, &claims).map_err(ApiError::internal)?;
    crate::metrics::token_issued(req.grant_type, key.alg().as_str());
    Ok(IssuedToken {
        access_token,
        expires_in: lifetime,
        claims,
    })
}

/// An access token that is active now, and its client.
#[derive(Debug, Clone)]
pub struct ActiveToken {
    pub claims: AccessTokenClaims,
    pub client: Client,
}

impl ActiveToken {
    /// Does its client still have the grant type the token came from? A user's token (one with
    /// a grant) needs `authorization_code`, which every user's grant starts from (a client
    /// with `refresh_token` has it too); a client-credentials token needs `client_credentials`.
    /// Taking a grant type away thus takes effect at once, as taking a scope away does.
    pub fn grant_type_kept(&self) -> bool {
        let origin = match self.claims.grant_id {
            Some(_) => GrantType::AuthorizationCode,
            None => GrantType::ClientCredentials,
        };
        self.client.allows_grant(&origin)
    }

    /// May this token act on the management API? It must carry the management scope, and its
    /// client must still be one that may be granted it: first-party, with the scope among its
    /// allowed scopes and in the catalogue. A token issued before its client lost the scope (or
    /// before the operator removed it) no longer manages anything, as a refresh would no longer
    /// issue the scope.
    pub fn may_manage(&self, catalogue: &ScopeCatalogue) -> bool {
        self.claims.has_scope(MANAGEMENT_SCOPE)
            && !self.client.is_third_party()
            && self.client.may_be_granted(MANAGEMENT_SCOPE, catalogue)
    }
}

/// `Ok(None)` for any token that is not active: malformed, forged, foreign, expired, not yet
/// valid, revoked, for a deleted client, or (with `audience`) meant for another resource.
/// `Err` only when the database cannot answer.
pub async fn active_access_token(
    state: &AppState,
    token: &str,
    audience: Option<&str>,
) -> Result<Option<ActiveToken>, ApiError> {
    match verify_access_token(state, token, audience).await {
        Some(claims) => still_live(state, claims, None).await,
        None => Ok(None),
    }
}

/// The signature and claim checks alone: no database read (a key reload on an unknown kid at
/// most). `None` for anything that is not a valid access token of this server. Every caller
/// has already told a JWT from the other credentials by its shape (`jwt::looks_like_jwt`), so
/// the shape is not checked again here; anything else fails verification as malformed.
pub async fn verify_access_token(
    state: &AppState,
    token: &str,
    audience: Option<&str>,
) -> Option<AccessTokenClaims> {
    let expect = Expect {
        issuer: &state.issuer,
        now: state.clock.now(),
        leeway: CLOCK_LEEWAY_SECS,
        audience,
        max_lifetime: state.config.tokens.access_token_lifetime_secs,
    };
    match state.keys.verify(token, &expect).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(token = %secret::log_label(token), reason = %e, "inactive access token");
            None
        }
    }
}

/// What the store needs to decide whether a verified token is still live.
pub fn token_ref(claims: &AccessTokenClaims) -> AccessTokenRef<'_> {
    AccessTokenRef {
        jti: &claims.jti,
        family_id: claims.family_id.as_deref(),
        grant_id: claims.grant_id.as_deref(),
    }
}

/// The revocation checks of a verified token, in one statement. A token from a grant dies with
/// its family (a replayed code, a reused or revoked refresh token) and with the grant
/// (`DELETE /oauth_grants/{id}`); a token from before families checks its grant alone. No
/// cache: a revocation on any instance holds on every instance at once. A deleted client's
/// tokens die with it, and so, for as long as it lasts, does a token whose client no longer has
/// the grant type it came from ([`ActiveToken::grant_type_kept`]). `client`: the token's client
/// when the caller already loaded it in this request (it must be the one named by
/// `claims.client_id`), the same freshness as a read here.
pub async fn still_live(
    state: &AppState,
    claims: AccessTokenClaims,
    client: Option<Client>,
) -> Result<Option<ActiveToken>, ApiError> {
    let client = match client.filter(|c| c.client_id == claims.client_id) {
        Some(c) => state
            .store
            .access_token_live(&token_ref(&claims))
            .await?
            .then_some(c),
        None => state
            .store
            .client_and_token_state(&claims.client_id, &token_ref(&claims))
            .await?
            .and_then(|(c, live)| live.then_some(c)),
    };
    Ok(client
        .map(|client| ActiveToken { claims, client })
        .filter(ActiveToken::grant_type_kept))
}

/// The user a token acts for: its subject (a user's grant), or for a client-credentials token
/// (no grant) the member who created the client, and only when the client is a first-party
/// client of that member's organization that still has the client-credentials grant (taking
/// the grant away takes effect at once, as taking the scope away does). A third-party client's
/// client-credentials token acts for no user.
pub async fn token_user(state: &AppState, active: &ActiveToken) -> Result<Option<User>, ApiError> {
    // `still_live` already refuses such a token; an `ActiveToken` built elsewhere is judged too.
    if !active.grant_type_kept() {
        return Ok(None);
    }
    if active.claims.grant_id.is_some() {
        return Ok(state.store.get_user(&active.claims.sub).await?);
    }
    let client = &active.client;
    if client.is_third_party() || client.user_id.is_empty() {
        return Ok(None);
    }
    Ok(state
        .store
        .get_user(&client.user_id)
        .await?
        .filter(|u| u.org_id == client.org_id))
}
