//! The whole story, end to end, through the `telnyx-oauth` SDK: a client registers, a user
//! authorizes and consents, the client exchanges the code, refreshes and introspects; the user
//! revokes the grant; the tokens stop working.

use telnyx_oauth::{
    AuthorizeParams, CodeChallengeMethod, CreateGrantRequest, GrantType, IntrospectRequest,
    RegistrationRequest, TokenRequest,
};

use crate::flow::{param, CHALLENGE, VERIFIER};
use crate::support::TestApp;

const CALLBACK: &str = "https://story.example.com/callback";

fn sdk(app: &TestApp, api_key: &str) -> telnyx_oauth::Client {
    telnyx_oauth::Client::builder()
        .api_key(api_key)
        .base_url(&app.url)
        .max_retries(0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn register_authorize_exchange_refresh_introspect_revoke() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@story.example", "story").await;
    let user = sdk(&app, &alice.api_key);

    // 1. The client registers itself (RFC 7591).
    let reg = user
        .oauth()
        .register(
            &RegistrationRequest::new()
                .client_name("Story app")
                .redirect_uris([CALLBACK])
                .grant_types([GrantType::AuthorizationCode, GrantType::RefreshToken])
                .scope("messaging"),
        )
        .await
        .unwrap();
    let client_id = reg.client_id.clone();
    let client_secret = reg.client_secret.clone().expect("a confidential client");

    // 2. The user authorizes (signed in with an API key) and consents.
    let redirect = user
        .oauth()
        .retrieve_authorize(
            &AuthorizeParams::new(&client_id, CALLBACK)
                .scope("messaging")
                .state("story-state")
                .code_challenge(CHALLENGE, CodeChallengeMethod::S256),
        )
        .await
        .unwrap();
    assert_eq!(redirect.status.as_u16(), 302);
    let location = redirect.location.unwrap();
    let consent_token = param(&location, "consent_token").expect("consent page");
    let details = user.oauth().retrieve(&consent_token).await.unwrap();
    assert_eq!(details.client_id.as_deref(), Some(client_id.as_str()));
    let decision = user
        .oauth()
        .grants(&CreateGrantRequest::new(true, consent_token))
        .await
        .unwrap();
    assert!(decision.redirect_uri.starts_with(CALLBACK));
    assert_eq!(
        param(&decision.redirect_uri, "state").as_deref(),
        Some("story-state")
    );
    let code = param(&decision.redirect_uri, "code").expect("code");

    // 3. The client exchanges the code (client_secret_post; the SDK's API key rides along as
    // a Bearer header and does not interfere).
    let tokens = user
        .oauth()
        .token(
            &TokenRequest::new(GrantType::AuthorizationCode)
                .client_id(&client_id)
                .client_secret(&client_secret)
                .code(code)
                .code_verifier(VERIFIER)
                .redirect_uri(CALLBACK),
        )
        .await
        .unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.scope.as_deref(), Some("messaging"));
    let first_refresh = tokens.refresh_token.clone().expect("a refresh token");

    // 4. It refreshes: a new access token and a new refresh token.
    let refreshed = user
        .oauth()
        .token(
            &TokenRequest::new(GrantType::RefreshToken)
                .client_id(&client_id)
                .client_secret(&client_secret)
                .refresh_token(&first_refresh),
        )
        .await
        .unwrap();
    let refresh_token = refreshed.refresh_token.clone().unwrap();
    assert_ne!(refresh_token, first_refresh);

    // 5. Introspection (as the client): active, for the user.
    let introspect = |token: String| {
        let (user, client_id, client_secret) =
            (user.clone(), client_id.clone(), client_secret.clone());
        async move {
            user.oauth()
                .introspect(
                    &IntrospectRequest::new(token)
                        .client_id(client_id)
                        .client_secret(client_secret),
                )
                .await
                .unwrap()
        }
    };
    let at = introspect(refreshed.access_token.clone()).await;
    assert!(at.active);
    assert_eq!(at.sub.as_deref(), Some(alice.user_id.as_str()));
    assert_eq!(at.client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(at.scope.as_deref(), Some("messaging"));
    let rt = introspect(refresh_token.clone()).await;
    assert!(rt.active);
    assert_eq!(rt.token_type.as_deref(), Some("refresh_token"));

    // 6. The user revokes the grant.
    let grants = user.oauth_grants().list(&Default::default()).await.unwrap();
    let grant = grants
        .data
        .iter()
        .find(|g| g.client_id == client_id)
        .expect("the grant is listed");
    user.oauth_grants().delete(&grant.id).await.unwrap();

    // 7. Every token of the grant is inactive; the refresh token fails with invalid_grant.
    assert!(!introspect(refreshed.access_token.clone()).await.active);
    assert!(!introspect(tokens.access_token.clone()).await.active);
    assert!(!introspect(refresh_token.clone()).await.active);
    let err = user
        .oauth()
        .token(
            &TokenRequest::new(GrantType::RefreshToken)
                .client_id(&client_id)
                .client_secret(&client_secret)
                .refresh_token(refresh_token),
        )
        .await
        .unwrap_err();
    let api = err.api_error().expect("an API error");
    assert_eq!(api.status.as_u16(), 400);
    assert_eq!(api.body.as_ref().unwrap().error, "invalid_grant");
}
