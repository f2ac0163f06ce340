//! Request and answer shapes of the endpoints the real server does not serve yet (discovery,
//! authorize, consent, grants, token, introspection, revocation, JWKS, /oauth_grants). The lead
//! replaces these with real-server tests once those endpoints land.

use futures_util::StreamExt;
use serde_json::json;
use telnyx_oauth::{
    AuthorizeParams, BodyEncoding, ClientType, CodeChallengeMethod, CreateGrantRequest, Error,
    GrantType, IntrospectRequest, ListOAuthGrantsParams, RevokeRequest, TokenRequest,
};

use crate::mock::{client_json, grant_json, Mock, Reply};

#[tokio::test]
async fn discovery_documents_are_read_under_the_base_url() {
    let mock = Mock::start(|req, _| match req.path.as_str() {
        "/v2/.well-known/oauth-authorization-server" => Reply::json(
            200,
            json!({
                "issuer": "http://issuer.test",
                "authorization_endpoint": "http://issuer.test/oauth/authorize",
                "token_endpoint": "http://issuer.test/oauth/token",
                "jwks_uri": "http://issuer.test/oauth/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["admin"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "a_field_added_later": true
            }),
        ),
        "/v2/.well-known/oauth-protected-resource" => Reply::json(
            200,
            json!({"resource": "http://issuer.test", "authorization_servers": ["http://issuer.test"]}),
        ),
        _ => Reply::error(404, "not_found"),
    })
    .await;
    let client = mock
        .client()
        .base_url(format!("{}/v2/", mock.url))
        .build()
        .unwrap();
    let meta = client
        .well_known()
        .retrieve_authorization_server_metadata()
        .await
        .unwrap();
    assert_eq!(meta.issuer, "http://issuer.test");
    assert_eq!(meta.code_challenge_methods_supported, ["S256"]);
    assert_eq!(
        meta.jwks_uri.as_deref(),
        Some("http://issuer.test/oauth/jwks")
    );
    let res = client
        .well_known()
        .retrieve_protected_resource_metadata()
        .await
        .unwrap();
    assert_eq!(res.authorization_servers, ["http://issuer.test"]);
    let paths: Vec<_> = mock
        .requests()
        .into_iter()
        .map(|r| r.method + " " + &r.path)
        .collect();
    assert_eq!(
        paths,
        [
            "GET /v2/.well-known/oauth-authorization-server",
            "GET /v2/.well-known/oauth-protected-resource"
        ]
    );
}

#[tokio::test]
async fn authorize_returns_the_redirect_without_following_it() {
    let mock = Mock::start(|req, _| {
        if req.path == "/oauth/authorize" {
            Reply::empty(302).header("location", "/consent?consent_token=ct-1")
        } else {
            Reply::error(500, "followed_the_redirect")
        }
    })
    .await;
    let client = mock.client().build().unwrap();
    let result = client
        .oauth()
        .retrieve_authorize(
            &AuthorizeParams::new(
                "550e8400-e29b-41d4-a716-446655440000",
                "https://example.com/cb?x=1",
            )
            .scope("admin messaging")
            .state("st&te")
            .code_challenge(
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                CodeChallengeMethod::S256,
            ),
        )
        .await
        .unwrap();
    assert_eq!(result.status.as_u16(), 302);
    assert_eq!(
        result.location.as_deref(),
        Some("/consent?consent_token=ct-1")
    );
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1, "the redirect is not followed");
    assert_eq!(reqs[0].header("accept"), Some("text/html"));
    assert_eq!(
        reqs[0].query_pairs(),
        [
            ("response_type", "code"),
            ("client_id", "550e8400-e29b-41d4-a716-446655440000"),
            ("redirect_uri", "https://example.com/cb?x=1"),
            ("scope", "admin messaging"),
            ("state", "st&te"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
            ),
            ("code_challenge_method", "S256"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
}

#[tokio::test]
async fn authorize_error_pages_are_status_errors_with_the_page_kept() {
    let mock = Mock::scripted(vec![Reply {
        status: 422,
        headers: vec![("content-type".into(), "text/html".into())],
        body: "<html>redirect_uri is not registered</html>".into(),
        delay: None,
    }])
    .await;
    let err = mock
        .client()
        .build()
        .unwrap()
        .oauth()
        .retrieve_authorize(&AuthorizeParams::new("c", "https://evil.example"))
        .await
        .unwrap_err();
    let Error::UnprocessableEntity(api) = &err else {
        panic!("{err:?}")
    };
    assert!(api.body.is_none());
    assert!(api.raw_body.contains("not registered"));
    assert_eq!(
        mock.requests()[0].query_pairs().len(),
        3,
        "absent optional parameters are left out"
    );
}

#[tokio::test]
async fn consent_details_and_the_decision() {
    let mock = Mock::start(|req, _| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/oauth/consent/ct%201%3F") => Reply::json(
            200,
            json!({"data": {
                "client_id": "c1", "name": "Billing", "logo_uri": null, "policy_uri": null,
                "tos_uri": "https://example.com/tos", "redirect_uri": "https://example.com/cb",
                "verified": false,
                "requested_scopes": [{"id": "admin", "name": "Admin", "description": "Everything"}]
            }}),
        ),
        ("POST", "/oauth/grants") => Reply::json(
            200,
            json!({"redirect_uri": "https://example.com/cb?code=abc&state=s"}),
        ),
        _ => Reply::error(404, "not_found"),
    })
    .await;
    let client = mock.client().build().unwrap();
    let details = client.oauth().retrieve("ct 1?").await.unwrap();
    assert_eq!(details.name.as_deref(), Some("Billing"));
    assert_eq!(details.verified, Some(false));
    assert_eq!(
        details.requested_scopes[0].description.as_deref(),
        Some("Everything")
    );
    assert_eq!(details.tos_uri.as_deref(), Some("https://example.com/tos"));

    let decision = client
        .oauth()
        .grants(&CreateGrantRequest::new(true, "ct/1"))
        .await
        .unwrap();
    assert_eq!(
        decision.redirect_uri,
        "https://example.com/cb?code=abc&state=s"
    );
    let post = &mock.requests()[1];
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert_eq!(
        post.json(),
        json!({"allowed": true, "consent_token": "ct/1"})
    );
}

#[tokio::test]
async fn token_introspect_and_revoke_are_form_encoded_by_default() {
    let mock = Mock::start(|req, _| match req.path.as_str() {
        "/oauth/token" => Reply::json(
            200,
            json!({"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt", "scope": "admin"}),
        ),
        "/oauth/introspect" => Reply::json(
            200,
            json!({"active": true, "aud": "api", "client_id": "c1", "exp": 1_900_000_000, "iat": 1_899_996_400, "iss": "http://issuer.test", "scope": "admin"}),
        ),
        "/oauth/revoke" => Reply::empty(200),
        _ => Reply::error(404, "not_found"),
    })
    .await;
    let client = mock.client().build().unwrap();
    let token = client
        .oauth()
        .token(
            &TokenRequest::new(GrantType::AuthorizationCode)
                .code("the code")
                .code_verifier("verifier")
                .redirect_uri("https://example.com/cb")
                .client_id("c1"),
        )
        .await
        .unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 3600);
    assert_eq!(token.refresh_token.as_deref(), Some("rt"));

    let info = client
        .oauth()
        .introspect(&IntrospectRequest::new("at"))
        .await
        .unwrap();
    assert!(info.active);
    assert_eq!(info.exp, Some(1_900_000_000));

    client
        .oauth()
        .revoke(&RevokeRequest::new("rt").token_type_hint("refresh_token"))
        .await
        .unwrap();

    let reqs = mock.requests();
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
    }
    let pairs = |i: usize| -> Vec<(String, String)> { reqs[i].form() };
    let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        pairs(0),
        owned(&[
            ("grant_type", "authorization_code"),
            ("client_id", "c1"),
            ("code", "the code"),
            ("code_verifier", "verifier"),
            ("redirect_uri", "https://example.com/cb"),
        ])
    );
    assert_eq!(pairs(1), owned(&[("token", "at")]));
    assert_eq!(
        pairs(2),
        owned(&[("token", "rt"), ("token_type_hint", "refresh_token")])
    );
}

#[tokio::test]
async fn token_bodies_can_be_json() {
    let mock = Mock::scripted(vec![Reply::json(200, json!({"active": false}))]).await;
    let client = mock
        .client()
        .body_encoding(BodyEncoding::Json)
        .build()
        .unwrap();
    let info = client
        .oauth()
        .introspect(&IntrospectRequest::new("gone"))
        .await
        .unwrap();
    assert!(!info.active);
    assert_eq!(info.client_id, None);
    let r = &mock.requests()[0];
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!({"token": "gone"}));
}

#[tokio::test]
async fn jwks() {
    let mock = Mock::scripted(vec![Reply::json(
        200,
        json!({"keys": [
            {"kid": "k1", "kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256", "x": "xx", "y": "yy"},
            // RFC 7517 §4: only kty is required; other servers publish keys without alg or use.
            {"kty": "RSA", "kid": "r1", "n": "0vx7agoebGcQSuuPiLJXZpt", "e": "AQAB", "x5t": "added"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]}),
    )])
    .await;
    let jwks = mock
        .client()
        .build()
        .unwrap()
        .oauth()
        .retrieve_jwks()
        .await
        .unwrap();
    assert_eq!(jwks.keys.len(), 3);
    assert_eq!(jwks.keys[0].kid.as_deref(), Some("k1"));
    assert_eq!(jwks.keys[0].use_.as_deref(), Some("sig"));
    assert_eq!(jwks.keys[0].crv.as_deref(), Some("P-256"));
    let rsa = &jwks.keys[1];
    assert_eq!((rsa.kty.as_str(), rsa.alg.as_deref()), ("RSA", None));
    assert_eq!(rsa.e.as_deref(), Some("AQAB"));
    let bare = &jwks.keys[2];
    assert_eq!(bare.kty, "OKP");
    assert_eq!((&bare.kid, &bare.alg, &bare.use_), (&None, &None, &None));
    assert_eq!(mock.requests()[0].path, "/oauth/jwks");
}

#[tokio::test]
async fn oauth_grants_list_retrieve_and_revoke() {
    let mock = Mock::start(|req, _| {
        let page: u64 = req
            .query_pairs()
            .iter()
            .find(|(k, _)| k == "page[number]")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(1);
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/oauth_grants") => {
                let data: Vec<_> = if page <= 3 {
                    vec![grant_json(&format!("g{page}a")), grant_json(&format!("g{page}b"))]
                } else {
                    vec![]
                };
                Reply::json(
                    200,
                    json!({"data": data, "meta": {"page_number": page, "page_size": 2, "total_pages": 3, "total_results": 6}}),
                )
            }
            ("GET", "/oauth_grants/g1a") => Reply::json(200, json!({"data": grant_json("g1a")})),
            ("DELETE", "/oauth_grants/g1a") => {
                Reply::json(200, json!({"data": grant_json("g1a")}))
            }
            _ => Reply::error(404, "not_found"),
        }
    })
    .await;
    let client = mock.client().build().unwrap();
    let params = ListOAuthGrantsParams::new().page_size(2);
    let first = client.oauth_grants().list(&params).await.unwrap();
    assert_eq!(first.data.len(), 2);
    assert!(first.has_next_page());
    let all: Vec<String> = client
        .oauth_grants()
        .list_auto(&params)
        .map(|g| g.unwrap().id)
        .collect()
        .await;
    assert_eq!(all, ["g1a", "g1b", "g2a", "g2b", "g3a", "g3b"]);

    let grant = client.oauth_grants().retrieve("g1a").await.unwrap();
    assert_eq!(grant.record_type, "oauth_grant");
    assert_eq!(grant.last_used_at, None);
    let revoked = client.oauth_grants().delete("g1a").await.unwrap();
    assert_eq!(revoked.id, "g1a");
    let err = client.oauth_grants().retrieve("other").await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));

    // The listing pages: 1 (list), then 1, 2, 3 (stream); each with the original page size.
    let list_queries: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path == "/oauth_grants")
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert_eq!(
        list_queries,
        [
            "page%5Bsize%5D=2",
            "page%5Bsize%5D=2",
            "page%5Bsize%5D=2&page%5Bnumber%5D=2",
            "page%5Bsize%5D=2&page%5Bnumber%5D=3",
        ]
    );
    let reqs = mock.requests();
    assert_eq!(reqs[reqs.len() - 2].method, "DELETE");
}

#[tokio::test]
async fn paging_stops_at_an_empty_page_even_when_meta_promises_more() {
    let mock = Mock::start(|req, _| {
        let later = req.query.as_deref().unwrap_or("").contains("page%5Bnumber%5D");
        let data = if later { vec![] } else { vec![client_json("c1", "one")] };
        Reply::json(
            200,
            json!({"data": data, "meta": {"page_number": if later { 2 } else { 1 }, "page_size": 1, "total_pages": 50, "total_results": 50}}),
        )
    })
    .await;
    let client = mock.client().build().unwrap();
    let page = client
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap();
    let items: Vec<_> = page.auto_paging_stream().collect().await;
    assert_eq!(items.len(), 1);
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn enum_values_added_later_are_kept() {
    let mut c = client_json("c1", "one");
    c["client_type"] = json!("hybrid");
    c["allowed_grant_types"] = json!(["urn:ietf:params:oauth:grant-type:device_code"]);
    let mock = Mock::scripted(vec![Reply::json(200, json!({"data": c}))]).await;
    let found = mock
        .client()
        .build()
        .unwrap()
        .oauth_clients()
        .retrieve("c1")
        .await
        .unwrap();
    assert_eq!(found.client_type, ClientType::Other("hybrid".into()));
    assert!(!found.allowed_grant_types[0].is_known());
}

#[tokio::test]
async fn a_stream_error_ends_the_stream() {
    let mock = Mock::start(|req, _| {
        if req.query.as_deref().unwrap_or("").contains("page%5Bnumber%5D=2") {
            Reply::error(400, "invalid_request")
        } else {
            Reply::json(
                200,
                json!({"data": [client_json("c1", "one")], "meta": {"page_number": 1, "page_size": 1, "total_pages": 2, "total_results": 2}}),
            )
        }
    })
    .await;
    let client = mock.client().build().unwrap();
    let items: Vec<_> = client
        .oauth_clients()
        .list_auto(&Default::default())
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    assert!(matches!(items[1], Err(Error::BadRequest(_))));
}
