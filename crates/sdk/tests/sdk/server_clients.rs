//! Every method the real server serves today, through the SDK: `/oauth_clients` and
//! `/oauth/register`.

use std::collections::BTreeSet;

use futures_util::{StreamExt, TryStreamExt};
use telnyx_oauth::{
    ClientType, Error, GrantType, ListOAuthClientsParams, OAuthClientFilter, RegistrationRequest,
    TokenEndpointAuthMethod, UpdateOAuthClient,
};

use crate::server::{new_client, TestServer};

#[tokio::test]
async fn create_retrieve_update_delete_round_trip() {
    let app = TestServer::spawn().await;
    for client in [app.client(), app.client_v2()] {
        let mut params = new_client("Round trip", ClientType::Confidential);
        params.logo_uri = Some("https://example.com/logo.png".into());
        let created = client.oauth_clients().create(&params).await.unwrap();
        assert_eq!(created.record_type, "oauth_client");
        assert_eq!(created.name, "Round trip");
        assert_eq!(created.client_type, ClientType::Confidential);
        assert_eq!(created.allowed_grant_types, [GrantType::ClientCredentials]);
        assert_eq!(created.allowed_scopes, ["admin"]);
        assert!(created
            .client_secret
            .as_deref()
            .is_some_and(|s| s.len() >= 32));
        assert_eq!(
            created.logo_uri.as_deref(),
            Some("https://example.com/logo.png")
        );

        let found = client
            .oauth_clients()
            .retrieve(&created.client_id)
            .await
            .unwrap();
        assert_eq!(found.client_id, created.client_id);
        assert_eq!(found.client_secret, None, "the secret is shown only once");
        assert_eq!(found.created_at, created.created_at);

        let updated = client
            .oauth_clients()
            .update(
                &created.client_id,
                &UpdateOAuthClient::new()
                    .name("Renamed")
                    .allowed_scopes(["admin", "messaging"])
                    .clear_logo_uri(),
            )
            .await
            .unwrap();
        assert_eq!(updated.name, "Renamed");
        assert_eq!(updated.allowed_scopes, ["admin", "messaging"]);
        assert_eq!(updated.logo_uri, None, "null clears the link");
        assert_eq!(updated.client_type, ClientType::Confidential, "untouched");

        let again = client
            .oauth_clients()
            .retrieve(&created.client_id)
            .await
            .unwrap();
        assert_eq!(again.name, "Renamed");

        client
            .oauth_clients()
            .delete(&created.client_id)
            .await
            .unwrap();
        let err = client
            .oauth_clients()
            .retrieve(&created.client_id)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
        let err = client
            .oauth_clients()
            .delete(&created.client_id)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    }
}

#[tokio::test]
async fn auto_paging_walks_every_page_keeping_the_filter() {
    let app = TestServer::spawn().await;
    let client = app.client();
    let mut expected = BTreeSet::new();
    for i in 0..7 {
        let c = client
            .oauth_clients()
            .create(&new_client(&format!("pager {i}"), ClientType::Confidential))
            .await
            .unwrap();
        expected.insert(c.client_id);
    }
    for i in 0..4 {
        client
            .oauth_clients()
            .create(&new_client(&format!("other {i}"), ClientType::Confidential))
            .await
            .unwrap();
    }
    let params = ListOAuthClientsParams::new()
        .page_size(2)
        .filter(OAuthClientFilter::new().name_contains("pager"));

    let first = client.oauth_clients().list(&params).await.unwrap();
    assert_eq!(first.data.len(), 2);
    assert_eq!(first.meta.page_number, 1);
    assert_eq!(first.meta.total_pages, 4);
    assert_eq!(first.meta.total_results, 7);
    assert!(first.has_next_page());

    // By hand, page after page.
    let mut pages = vec![first.clone()];
    while let Some(next) = pages.last().unwrap().next_page().await.unwrap() {
        pages.push(next);
    }
    assert_eq!(
        pages.iter().map(|p| p.data.len()).collect::<Vec<_>>(),
        [2, 2, 2, 1]
    );
    assert!(!pages.last().unwrap().has_next_page());

    // As a stream from the first page, and straight from the parameters.
    let from_page: Vec<_> = first.auto_paging_stream().try_collect().await.unwrap();
    let from_params: Vec<_> = client
        .oauth_clients()
        .list_auto(&params)
        .try_collect()
        .await
        .unwrap();
    for all in [&from_page, &from_params] {
        assert_eq!(all.len(), 7);
        let ids: BTreeSet<_> = all.iter().map(|c| c.client_id.clone()).collect();
        assert_eq!(ids, expected, "every matching client exactly once");
        assert!(all.iter().all(|c| c.name.starts_with("pager")));
    }

    // Starting from page 3 keeps going from there.
    let tail: Vec<_> = client
        .oauth_clients()
        .list_auto(&params.clone().page_number(3))
        .collect()
        .await;
    assert_eq!(tail.len(), 3);
}

#[tokio::test]
async fn list_filters_reach_the_server() {
    let app = TestServer::spawn().await;
    let client = app.client();
    let cc = client
        .oauth_clients()
        .create(&new_client("machine", ClientType::Confidential))
        .await
        .unwrap();
    let mut web = new_client("web app", ClientType::Public);
    web.allowed_grant_types = vec![GrantType::AuthorizationCode];
    web.redirect_uris = Some(vec!["https://example.com/cb".into()]);
    let web = client.oauth_clients().create(&web).await.unwrap();

    let names = |f: OAuthClientFilter| {
        let client = client.clone();
        async move {
            let page = client
                .oauth_clients()
                .list(&ListOAuthClientsParams::new().filter(f))
                .await
                .unwrap();
            page.data.into_iter().map(|c| c.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names(OAuthClientFilter::new().client_type(ClientType::Public)).await,
        ["web app"]
    );
    assert_eq!(
        names(OAuthClientFilter::new().allowed_grant_types_contains(GrantType::ClientCredentials))
            .await,
        ["machine"]
    );
    assert_eq!(
        names(OAuthClientFilter::new().client_id(web.client_id.clone())).await,
        ["web app"]
    );
    assert_eq!(
        names(OAuthClientFilter::new().name("machine").verified(false)).await,
        ["machine"]
    );
    assert!(names(OAuthClientFilter::new().verified(true))
        .await
        .is_empty());
    let _ = cc;
}

#[tokio::test]
async fn another_organization_sees_none_of_it() {
    let app = TestServer::spawn().await;
    let created = app
        .client()
        .oauth_clients()
        .create(&new_client("private", ClientType::Confidential))
        .await
        .unwrap();
    let outsider = app.client_with_key(&app.user_key("eve@example.com", "other-org").await);
    let err = outsider
        .oauth_clients()
        .retrieve(&created.client_id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let err = outsider
        .oauth_clients()
        .delete(&created.client_id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let page = outsider
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap();
    assert!(page.data.is_empty());
    assert!(!page.has_next_page());
    // Still there for its owner.
    app.client()
        .oauth_clients()
        .retrieve(&created.client_id)
        .await
        .unwrap();
}

#[tokio::test]
async fn dynamic_registration() {
    let app = TestServer::spawn().await;
    let client = app.client_v2();
    let registered = client
        .oauth()
        .register(
            &RegistrationRequest::new()
                .client_name("Registered app")
                .redirect_uris(["https://example.com/callback"])
                .token_endpoint_auth_method(TokenEndpointAuthMethod::ClientSecretBasic),
        )
        .await
        .unwrap();
    assert_eq!(registered.client_name.as_deref(), Some("Registered app"));
    assert_eq!(registered.redirect_uris, ["https://example.com/callback"]);
    assert!(registered.client_secret.is_some());
    assert!(registered.client_id_issued_at > 1_700_000_000);
    assert_eq!(
        registered.token_endpoint_auth_method,
        Some(TokenEndpointAuthMethod::ClientSecretBasic)
    );

    let err = client
        .oauth()
        .register(&RegistrationRequest::new().redirect_uris(["not a uri"]))
        .await
        .unwrap_err();
    let Error::BadRequest(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.body.as_ref().unwrap().error, "invalid_redirect_uri");
}

/// RFC 7592 against the real server: the registrant reads, updates and deletes its client with
/// the registration access token; any other token is refused and changes nothing.
#[tokio::test]
async fn the_registrant_manages_its_registration() {
    let app = TestServer::spawn().await;
    let client = app.client_v2();
    let registered = client
        .oauth()
        .register(
            &RegistrationRequest::new()
                .client_name("Managed app")
                .redirect_uris(["https://example.com/callback"])
                .token_endpoint_auth_method(TokenEndpointAuthMethod::None),
        )
        .await
        .unwrap();
    let id = registered.client_id.clone();
    let token = registered.registration_access_token.clone().unwrap();
    assert!(registered
        .registration_client_uri
        .as_deref()
        .unwrap()
        .ends_with(&format!("/oauth/register/{id}")));

    let read = client
        .oauth()
        .retrieve_registration(&id, &token)
        .await
        .unwrap();
    assert_eq!(read.client_name.as_deref(), Some("Managed app"));

    let err = client
        .oauth()
        .retrieve_registration(&id, "not-the-token")
        .await
        .unwrap_err();
    let Error::Authentication(api) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(api.body.as_ref().unwrap().error, "invalid_token");
    let err = client
        .oauth()
        .delete_registration(&id, "not-the-token")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");

    let updated = client
        .oauth()
        .update_registration(
            &id,
            &token,
            &RegistrationRequest::new()
                .client_name("Renamed app")
                .redirect_uris(["https://example.com/other"])
                .token_endpoint_auth_method(TokenEndpointAuthMethod::None),
        )
        .await
        .unwrap();
    assert_eq!(updated.client_name.as_deref(), Some("Renamed app"));
    assert_eq!(updated.redirect_uris, ["https://example.com/other"]);

    client
        .oauth()
        .delete_registration(&id, &token)
        .await
        .unwrap();
    let err = client
        .oauth()
        .retrieve_registration(&id, &token)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");

    // An id that would change the path is refused before anything is sent.
    let err = client
        .oauth()
        .retrieve_registration("..", &token)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidParameter(_)), "{err:?}");
}
