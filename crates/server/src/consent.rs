//! The consent step as a service, for the routes that need it (the authorization request, the
//! consent page and API): storing a pending request behind a consent token, and the user's
//! decision on it.

use oauth_core::authorize::{
    code_redirect, error_redirect, AuthorizeRequest, CODE_TTL, CONSENT_TTL,
};
use oauth_core::entity::{ConsentRequest, User};
use oauth_core::secret;
use oauth_store::Approval;
use rand::rngs::OsRng;

use crate::accounts::new_id;
use crate::audit::{self, Event, EventKind};
use crate::error::ApiError;
use crate::state::AppState;

/// Stores a consent request for a checked authorization request; returns the consent token.
pub async fn create(
    state: &AppState,
    user_id: &str,
    req: &AuthorizeRequest,
) -> Result<String, ApiError> {
    let token = secret::random_token(&mut OsRng);
    let now = state.clock.now();
    state
        .store
        .create_consent(&ConsentRequest {
            token_hash: secret::hash_secret(&token),
            user_id: user_id.to_owned(),
            client_id: req.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            state: req.state.clone(),
            code_challenge: req.code_challenge.clone(),
            code_challenge_method: req.code_challenge_method.map(|m| m.as_str().to_owned()),
            resource: req.resource.clone(),
            created_at: now,
            expires_at: now + CONSENT_TTL,
        })
        .await?;
    Ok(token)
}

/// The user's decision on a consent token; `None` when the token is not live for this user, or
/// when the client changed while the request was pending so that it could no longer be made:
/// its redirect URI removed (never redirected to, not even with an error), or every requested
/// scope taken away. Allowing creates or widens the grant and mints a code in one transaction,
/// with only the scopes the client may still be granted.
pub async fn decide(
    state: &AppState,
    user: &User,
    token: &str,
    allowed: bool,
) -> Result<Option<String>, ApiError> {
    let hash = secret::hash_secret(token);
    let now = state.clock.now();
    let user_id = user.id.as_str();
    let Some((pending, client)) = state
        .store
        .get_consent_and_client(&hash, user_id, now)
        .await?
    else {
        return Ok(None);
    };
    // A document client the configuration no longer accepts (the operator denied it while the
    // request was pending) gets nothing: the request is used up, and not even an error goes to
    // its redirect URI.
    if !crate::cimd::still_accepted(&state.config.registration, &client) {
        state.store.consume_consent(&hash, user_id, now).await?;
        tracing::info!(client_id = %client.client_id, "a consent request was dropped: its client is no longer accepted");
        return Ok(None);
    }
    // A redirect URI no longer registered is judged on the client as it is when the decision is
    // written, not as read here: the request is used up, so that it cannot be tried again, and
    // the browser stays here.
    if !allowed {
        let Some(c) = state.store.consume_consent(&hash, user_id, now).await? else {
            return Ok(None);
        };
        // The decision is made (the request used up); the client as it is now, after it,
        // decides whether its redirect URI may still be sent the answer: one removed meanwhile
        // is not, and the browser stays here.
        let registered = state.store.get_client(&c.client_id).await?;
        if !registered.is_some_and(|client| client.accepts_redirect_uri(&c.redirect_uri)) {
            tracing::info!(client_id = %c.client_id, "a denied consent request was dropped: its redirect URI is no longer registered");
            return Ok(None);
        }
        audit::record(
            state.store.as_ref(),
            now,
            Event::new(EventKind::ConsentDenied)
                .user(user)
                .client_id(&c.client_id),
        )
        .await;
        return Ok(Some(error_redirect(
            &c.redirect_uri,
            "access_denied",
            "the user denied the request",
            c.state.as_deref(),
            &state.issuer,
        )));
    }
    let code = secret::random_token(&mut OsRng);
    let mut approval = Approval {
        new_grant_id: new_id(),
        code_hash: secret::hash_secret(&code),
        code_expires_at: now + CODE_TTL,
        now,
        grantable_scopes: client.grantable_scopes(&state.config.scopes),
        pending: None,
        event: None,
    };
    // Stored by the approval's own write (one commit), with the scopes the store approves.
    let event = audit::StoredWith::new(
        Event::new(EventKind::ConsentApproved)
            .user(user)
            .client_id(&pending.client_id)
            .detail("scopes", approval.approved_scopes(&pending.scopes)),
        now,
    );
    approval.event = Some(event.row().clone());
    approval.pending = Some(pending);
    let Some((c, grant, _)) = state
        .store
        .approve_consent(&hash, user_id, &approval)
        .await?
    else {
        return Ok(None);
    };
    event.stored(Some(&grant.id), &[("scopes", serde_json::json!(c.scopes))]);
    Ok(Some(code_redirect(
        &c.redirect_uri,
        &code,
        c.state.as_deref(),
        &state.issuer,
    )))
}
