//! The OAuth protocol endpoints through the SDK against the real server: discovery, the JWK
//! set, the token endpoint (client credentials), introspection, revocation, the authorization
//! request and consent, `/oauth_grants`, and client-credentials mode renewing its token.

use std::sync::Arc;

use oauth_server::clock::ManualClock;
use oauth_server::Config;
use telnyx_oauth::{
    AuthorizeParams, Client, ClientType, CreateGrantRequest, CreateOAuthClient, Error, GrantType,
    IntrospectRequest, ListOAuthGrantsParams, RevokeRequest, TokenRequest,
};

use crate::server::{new_client, TestServer};

const REDIRECT: &str = "https://app.example.com/callback";

/// A confidential client that may use every grant, and its secret.
async fn full_client(client: &Client, scopes: &[&str]) -> (String, String) {
    let created = client
        .oauth_clients()
        .create(
            &CreateOAuthClient::new(
                "Every grant",
                ClientType::Confidential,
                [
                    GrantType::AuthorizationCode,
                    GrantType::RefreshToken,
                    GrantType::ClientCredentials,
                ],
                scopes.iter().copied(),
            )
            .redirect_uris([REDIRECT]),
        )
        .await
        .unwrap();
    (created.client_id, created.client_secret.unwrap())
}

fn client_credentials(id: &str, secret: &str, scope: Option<&str>) -> TokenRequest {
    let req = TokenRequest::new(GrantType::ClientCredentials)
        .client_id(id)
        .client_secret(secret);
    match scope {
        Some(scope) => req.scope(scope),
        None => req,
    }
}

#[tokio::test]
async fn discovery_and_the_jwk_set() {
    let app = TestServer::spawn().await;
    for client in [app.client(), app.client_v2()] {
        let meta = client
            .well_known()
            .retrieve_authorization_server_metadata()
            .await
            .unwrap();
        assert_eq!(meta.issuer, app.server.issuer);
        assert_eq!(
            meta.token_endpoint.as_deref(),
            Some(format!("{}/oauth/token", app.server.issuer).as_str())
        );
        assert_eq!(meta.code_challenge_methods_supported, ["S256"]);
        assert!(meta.scopes_supported.iter().any(|s| s == "admin"));
        let resource = client
            .well_known()
            .retrieve_protected_resource_metadata()
            .await
            .unwrap();
        assert_eq!(resource.resource, app.server.issuer);
        assert_eq!(
            resource.authorization_servers,
            vec![app.server.issuer.clone()]
        );
        let jwks = client.oauth().retrieve_jwks().await.unwrap();
        assert!(!jwks.keys.is_empty());
        let key = &jwks.keys[0];
        assert_eq!(
            (key.kty.as_str(), key.alg.as_deref(), key.use_.as_deref()),
            ("EC", Some("ES256"), Some("sig"))
        );
        assert!(key.x.is_some() && key.y.is_some());
        assert!(key.kid.as_ref().is_some_and(|kid| !kid.is_empty()));
    }
}

#[tokio::test]
async fn token_introspect_and_revoke() {
    let app = TestServer::spawn().await;
    let admin = app.client();
    let (id, secret) = full_client(&admin, &["admin", "messaging"]).await;

    let token = admin
        .oauth()
        .token(&client_credentials(&id, &secret, Some("messaging")))
        .await
        .unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.scope.as_deref(), Some("messaging"));
    assert!(token.refresh_token.is_none());
    assert!(token.expires_in > 0);

    // The admin's API key travels as Bearer; the client authenticates in the body.
    let info = admin
        .oauth()
        .introspect(
            &IntrospectRequest::new(token.access_token.clone())
                .client_id(&id)
                .client_secret(&secret),
        )
        .await
        .unwrap();
    assert!(info.active);
    assert_eq!(info.client_id.as_deref(), Some(id.as_str()));
    assert_eq!(info.scope.as_deref(), Some("messaging"));
    assert_eq!(info.iss.as_deref(), Some(app.server.issuer.as_str()));

    admin
        .oauth()
        .revoke(
            &RevokeRequest::new(token.access_token.clone())
                .client_id(&id)
                .client_secret(&secret),
        )
        .await
        .unwrap();
    let info = admin
        .oauth()
        .introspect(
            &IntrospectRequest::new(token.access_token)
                .client_id(&id)
                .client_secret(&secret),
        )
        .await
        .unwrap();
    assert!(!info.active);

    // The token endpoint's errors arrive as their classes.
    let err = admin
        .oauth()
        .token(&client_credentials(&id, "wrong secret", None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");
    assert_eq!(err.body().map(|b| b.error.as_str()), Some("invalid_client"));
    let err = admin
        .oauth()
        .token(&client_credentials(&id, &secret, Some("voice")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)), "{err:?}");
    assert_eq!(err.body().map(|b| b.error.as_str()), Some("invalid_scope"));
}

#[tokio::test]
async fn authorize_consent_and_grants() {
    let app = TestServer::spawn().await;
    let admin = app.client();
    let (id, _) = full_client(&admin, &["admin", "messaging"]).await;
    let params = AuthorizeParams::new(&id, REDIRECT)
        .scope("messaging")
        .state("xyz-state");

    let consent_token = |location: Option<String>| {
        let location = location.expect("a Location");
        let (_, token) = location
            .split_once("consent_token=")
            .expect("a consent page");
        token.to_owned()
    };

    // Deny first.
    let redirect = admin.oauth().retrieve_authorize(&params).await.unwrap();
    assert_eq!(redirect.status.as_u16(), 302);
    let token = consent_token(redirect.location);
    let details = admin.oauth().retrieve(&token).await.unwrap();
    assert_eq!(details.client_id.as_deref(), Some(id.as_str()));
    assert_eq!(details.name.as_deref(), Some("Every grant"));
    assert_eq!(details.redirect_uri.as_deref(), Some(REDIRECT));
    assert_eq!(details.verified, Some(false));
    assert_eq!(details.requested_scopes.len(), 1);
    assert_eq!(
        details.requested_scopes[0].name.as_deref(),
        Some("messaging")
    );
    let denied = admin
        .oauth()
        .grants(&CreateGrantRequest::new(false, &token))
        .await
        .unwrap();
    assert!(denied.redirect_uri.starts_with(REDIRECT));
    assert!(denied.redirect_uri.contains("error=access_denied"));
    assert!(denied.redirect_uri.contains("state=xyz-state"));
    // A consent token is single-use: 422.
    let err = admin.oauth().retrieve(&token).await.unwrap_err();
    assert!(matches!(err, Error::UnprocessableEntity(_)), "{err:?}");

    // Then allow.
    let token = consent_token(
        admin
            .oauth()
            .retrieve_authorize(&params)
            .await
            .unwrap()
            .location,
    );
    let allowed = admin
        .oauth()
        .grants(&CreateGrantRequest::new(true, token))
        .await
        .unwrap();
    assert!(allowed.redirect_uri.contains("code="));
    assert!(allowed.redirect_uri.contains("state=xyz-state"));
    assert!(allowed.redirect_uri.contains("iss="));

    let page = admin
        .oauth_grants()
        .list(&ListOAuthGrantsParams::default())
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    let grant = &page.data[0];
    assert_eq!(grant.record_type, "oauth_grant");
    assert_eq!(grant.client_id, id);
    assert_eq!(grant.scopes, ["messaging"]);
    let found = admin.oauth_grants().retrieve(&grant.id).await.unwrap();
    assert_eq!(found.id, grant.id);
    let revoked = admin.oauth_grants().delete(&grant.id).await.unwrap();
    assert_eq!(revoked.id, grant.id);
    let err = admin.oauth_grants().retrieve(&grant.id).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(admin
        .oauth_grants()
        .list(&ListOAuthGrantsParams::default())
        .await
        .unwrap()
        .data
        .is_empty());
}

#[tokio::test]
async fn client_credentials_mode_fetches_and_renews_its_token() {
    // The server's clock is moved by hand: once the cached token has expired on the server, the
    // next call answers 401 and the SDK fetches a new token once and succeeds.
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", dir.path().join("oauth.db").display()),
        ..Default::default()
    };
    config.check().unwrap();
    let server = oauth_server::start_with_clock(config, clock.clone(), std::future::pending())
        .await
        .unwrap();
    let admin_key = server.bootstrap.clone().unwrap().api_key;
    let admin = Client::builder()
        .api_key(&admin_key)
        .base_url(server.url())
        .build()
        .unwrap();
    let created = admin
        .oauth_clients()
        .create(&new_client("Machine", ClientType::Confidential))
        .await
        .unwrap();

    let machine = Client::builder()
        .client_credentials(
            &created.client_id,
            created.client_secret.as_deref().unwrap(),
        )
        .base_url(server.url())
        .build()
        .unwrap();
    // An admin-scoped token acts for the client's owner on the management API.
    let page = machine
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(page.data[0].client_id, created.client_id);

    clock.advance(2 * 3600);
    let page = machine
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(page.meta.total_results, 1, "renewed after the 401");

    // A token without `admin` is refused by the management API with 403.
    let limited = admin
        .oauth_clients()
        .create(&CreateOAuthClient::new(
            "Limited",
            ClientType::Confidential,
            [GrantType::ClientCredentials],
            ["messaging"],
        ))
        .await
        .unwrap();
    let limited = Client::builder()
        .client_credentials(
            &limited.client_id,
            limited.client_secret.as_deref().unwrap(),
        )
        .base_url(server.url())
        .build()
        .unwrap();
    let err = limited
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    assert_eq!(
        err.body().map(|b| b.error.as_str()),
        Some("insufficient_scope")
    );
    server.stop().await.unwrap();
}
