//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009): who may ask,
//! what an active token shows, and every way a token is inactive.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth_core::jwt::{self, AccessTokenClaims};
use oauth_core::keys::{Algorithm, KeyPair};
use oauth_server::clock::{Clock, ManualClock};
use rand::rngs::OsRng;
use serde_json::{json, Value};

use crate::oauth_support::{
    basic, cc_client, cc_client_with, cc_token, inactive, introspect_as, jwt_parts, post_form,
    post_oauth_json,
};
use crate::support::{confidential_client, TestApp};

#[tokio::test]
async fn an_active_token_shows_its_claims() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, Some("messaging")).await;
    let (_, c) = jwt_parts(&token);
    let got = introspect_as(&app, &id, &secret, &token).await;
    assert_eq!(
        got,
        json!({
            "active": true,
            "aud": app.server.issuer,
            "client_id": id,
            "exp": c["exp"],
            "iat": c["iat"],
            "iss": app.server.issuer,
            "scope": "messaging",
            "sub": id,
            "token_type": "Bearer",
            "jti": c["jti"],
        })
    );
    // JSON body with client_secret_post and a stray Bearer, as the Python SDK sends it.
    let r = post_oauth_json(
        &app,
        "/v2/oauth/introspect",
        Some(&format!("Bearer {}", app.admin_key)),
        &json!({"token": token, "client_id": id, "client_secret": secret}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["active"], true);
}

#[tokio::test]
async fn users_see_their_organizations_tokens_and_clients_only_their_own() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let (other_id, other_secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;

    // Another client of the same organization: inactive, nothing more.
    assert_eq!(
        introspect_as(&app, &other_id, &other_secret, &token).await,
        inactive()
    );

    // The organization's user, by API key and by an access token with the admin scope.
    let admin = format!("Bearer {}", app.admin_key);
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some(&admin),
        &[("token", &token)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["active"], true, "{}", r.body);
    let own = cc_token(&app, &other_id, &other_secret, None).await;
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some(&format!("Bearer {own}")),
        &[("token", &token)],
    )
    .await;
    assert_eq!(r.body["active"], true, "{}", r.body);

    // A user of another organization.
    let stranger = app.user("eve@other.example", "other-org").await;
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some(&format!("Bearer {}", stranger.api_key)),
        &[("token", &token)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, inactive());
    // ...and a client of theirs.
    let (sid, ssecret) =
        cc_client_with(&app, &stranger.api_key, confidential_client("Theirs")).await;
    assert_eq!(
        introspect_as(&app, &sid, &ssecret, &token).await,
        inactive()
    );
}

#[tokio::test]
async fn introspection_requires_authentication_and_a_token() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;
    let r = post_form(&app, "/oauth/introspect", None, &[("token", &token)]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_client");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"oauth\", charset=\"UTF-8\""),
        "RFC 9110: a 401 names how to authenticate"
    );
    // An unknown bearer: the token is the fault (RFC 7662 §2.3, RFC 6750 §3.1), in the
    // challenge and the body.
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some("Bearer KEYnope"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_token");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer error=\"invalid_token\", resource_metadata=")),
        "{:?}",
        r.header("www-authenticate")
    );
    // A client id alone is no authentication here.
    let r = post_form(
        &app,
        "/oauth/introspect",
        None,
        &[("token", &token), ("client_id", &id)],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some(&basic(&id, "nope")),
        &[("token", &token)],
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_client");
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some("Bearer KEYunknown"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = post_form(&app, "/oauth/introspect", Some(&basic(&id, &secret)), &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_request");
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn forged_foreign_and_malformed_tokens_are_inactive() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let good = cc_token(&app, &id, &secret, None).await;
    let (header, claims) = jwt_parts(&good);
    let kid = header["kid"].as_str().unwrap();
    let payload = b64(&claims);

    let mut forged: Vec<(&str, String)> = Vec::new();
    // alg: none, with and without an empty signature.
    let none = b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid}));
    forged.push(("alg none", format!("{none}.{payload}.")));
    // HS256 "signed" with the public key (the JWK as published), the classic confusion attack.
    let jwks: Value = app
        .http
        .get(app.at("/oauth/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = serde_json::to_vec(&jwks["keys"][0]).unwrap();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.to_owned());
    hs_header.typ = Some("at+jwt".into());
    let hs = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    forged.push(("HS256 with the public key", hs));
    // A key the server does not know, under its own kid, and claiming the server's kid.
    let stranger = KeyPair::generate(Algorithm::Es256, &mut OsRng).unwrap();
    let c: AccessTokenClaims = serde_json::from_value(claims.clone()).unwrap();
    forged.push((
        "unknown kid",
        jwt::encode_access_token(&stranger, &c).unwrap(),
    ));
    let impostor = KeyPair::generate(Algorithm::Es256, &mut OsRng)
        .unwrap()
        .with_kid(kid);
    forged.push((
        "known kid, wrong key",
        jwt::encode_access_token(&impostor, &c).unwrap(),
    ));
    // The server's own key, but another issuer.
    let real = app.server.keys.signing_key(app.clock.now()).unwrap();
    let mut foreign = c.clone();
    foreign.iss = "https://other-issuer.example".into();
    forged.push((
        "wrong iss",
        jwt::encode_access_token(&real, &foreign).unwrap(),
    ));
    // The server's own key without the at+jwt type.
    forged.push((
        "no typ",
        jwt::sign_compact(&real, &json!({"alg": "ES256", "kid": kid}), &c).unwrap(),
    ));
    // A payload swapped under a valid signature.
    let mut widened = claims.clone();
    widened["scope"] = json!("admin messaging voice");
    let parts: Vec<&str> = good.split('.').collect();
    forged.push((
        "tampered",
        format!("{}.{}.{}", parts[0], b64(&widened), parts[2]),
    ));
    for junk in ["", "garbage", "a.b.c", "KEYsomething"] {
        forged.push(("junk", junk.to_owned()));
    }

    for (what, token) in &forged {
        let r = post_form(
            &app,
            "/oauth/introspect",
            Some(&basic(&id, &secret)),
            &[("token", token)],
        )
        .await;
        if token.is_empty() {
            assert_eq!(r.status, 400, "{what}: empty token is a missing parameter");
            continue;
        }
        assert_eq!(r.status, 200, "{what}");
        assert_eq!(r.body, inactive(), "{what}");
        // Nor do they open the management API.
        let (status, _) = app.get(token, "/oauth_clients").await;
        assert_eq!(status, 401, "{what}");
    }
    // The genuine token still is active.
    assert_eq!(
        introspect_as(&app, &id, &secret, &good).await["active"],
        true
    );
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_inactive() {
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;
    clock.advance(3599);
    assert_eq!(
        introspect_as(&app, &id, &secret, &token).await["active"],
        true
    );
    clock.advance(1);
    assert_eq!(introspect_as(&app, &id, &secret, &token).await, inactive());
    // Issued "in the future" beyond the allowed clock difference.
    clock.set(1_900_000_000 - 61);
    assert_eq!(introspect_as(&app, &id, &secret, &token).await, inactive());
    clock.set(1_900_000_000 - 60);
    assert_eq!(
        introspect_as(&app, &id, &secret, &token).await["active"],
        true
    );
}

#[tokio::test]
async fn revocation_makes_a_token_inactive_everywhere() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;
    let (_, c) = jwt_parts(&token);
    let (status, _) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 200);

    let r = post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&id, &secret)),
        &[("token", &token), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, Value::Null, "empty body");
    assert!(app
        .server
        .store
        .is_access_token_revoked(c["jti"].as_str().unwrap())
        .await
        .unwrap());

    assert_eq!(introspect_as(&app, &id, &secret, &token).await, inactive());
    let (status, body) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");

    // Again, and unknown tokens: still 200.
    for t in [token.as_str(), "not-a-token", "a.b.c"] {
        let r = post_form(
            &app,
            "/oauth/revoke",
            Some(&basic(&id, &secret)),
            &[("token", t)],
        )
        .await;
        assert_eq!(r.status, 200, "{t}");
    }
    // JSON body, client_secret_post.
    let t2 = cc_token(&app, &id, &secret, None).await;
    let r = post_oauth_json(
        &app,
        "/oauth/revoke",
        None,
        &json!({"token": t2, "client_id": id, "client_secret": secret}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(introspect_as(&app, &id, &secret, &t2).await, inactive());
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let (other, other_secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;
    let r = post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&other, &other_secret)),
        &[("token", &token)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        introspect_as(&app, &id, &secret, &token).await["active"],
        true
    );

    let r = post_form(&app, "/oauth/revoke", None, &[("token", &token)]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_client");
    let r = post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&id, "wrong")),
        &[("token", &token)],
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    assert_eq!(
        introspect_as(&app, &id, &secret, &token).await["active"],
        true
    );
}

#[tokio::test]
async fn deleting_the_client_deactivates_its_tokens() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let (watcher, watcher_secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;
    let (status, _) = app
        .delete(&app.admin_key, &format!("/oauth_clients/{id}"))
        .await;
    assert_eq!(status, 204);
    let r = post_form(
        &app,
        "/oauth/introspect",
        Some(&format!("Bearer {}", app.admin_key)),
        &[("token", &token)],
    )
    .await;
    assert_eq!(r.body, inactive());
    assert_eq!(
        introspect_as(&app, &watcher, &watcher_secret, &token).await,
        inactive()
    );
    let (status, _) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_purge_removes_revocations_once_the_token_has_expired() {
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;
    let (_, c) = jwt_parts(&token);
    let jti = c["jti"].as_str().unwrap();
    post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&id, &secret)),
        &[("token", &token)],
    )
    .await;
    let store = app.server.store.as_ref();
    let counts = oauth_server::maintenance::purge_once(store, clock.now()).await;
    assert_eq!(
        counts,
        vec![
            ("revoked_tokens", 0),
            ("signing_keys", 0),
            ("authorization", 0),
            ("refresh_tokens", 0),
            ("security_events", 0),
            ("client_assertion_jtis", 0),
            ("unused_clients", 0)
        ]
    );
    assert!(store.is_access_token_revoked(jti).await.unwrap());
    clock.advance(3600);
    let counts = oauth_server::maintenance::purge_once(store, clock.now()).await;
    assert_eq!(counts[0], ("revoked_tokens", 1));
    assert!(!store.is_access_token_revoked(jti).await.unwrap());
    // Expired anyway: still inactive.
    assert_eq!(introspect_as(&app, &id, &secret, &token).await, inactive());
}
