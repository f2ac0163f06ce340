//! `/oauth/jwks`, signing keys and their rotation: tokens verified by a standard JWT library
//! against the published keys, for every algorithm; rotation keeps old tokens valid until they
//! expire; keys survive a restart; the key-encryption key.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use oauth_server::clock::{Clock, ManualClock};
use oauth_server::config::TokenAlgorithm;
use oauth_server::signing::Schedule;
use serde_json::Value;

use crate::oauth_support::{cc_client, cc_token, inactive, introspect_as, jwt_parts};
use crate::support::TestApp;

async fn jwks(app: &TestApp) -> Value {
    let r = app.http.get(app.at("/oauth/jwks")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

/// Verifies `token` with `jsonwebtoken` against the key of the JWK set with its kid.
fn verify_with_library(app: &TestApp, set: &Value, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.clone().unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(set.clone()).unwrap();
    let jwk = set.find(&kid).expect("the token's kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[app.server.issuer.as_str()]);
    v.set_audience(&[app.server.issuer.as_str()]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("a standard library verifies the token")
        .claims
}

#[tokio::test]
async fn the_jwk_set_verifies_tokens_with_a_standard_library() {
    let app = TestApp::spawn().await;
    let set = jwks(&app).await;
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["use"], "sig");
    assert!(k["x"].is_string() && k["y"].is_string() && k["kid"].is_string());
    assert!(k.get("d").is_none(), "no private material");
    // Also under /v2.
    let v2: Value = app
        .http
        .get(app.at("/v2/oauth/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2, set);

    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;
    let claims = verify_with_library(&app, &set, &token);
    assert_eq!(claims["client_id"], id.as_str());
}

#[tokio::test]
async fn rs256_and_eddsa_are_selectable() {
    for (alg, kty, name) in [
        (TokenAlgorithm::Rs256, "RSA", "RS256"),
        (TokenAlgorithm::Eddsa, "OKP", "EdDSA"),
    ] {
        let app = TestApp::spawn_with(|c| c.tokens.algorithm = alg).await;
        let set = jwks(&app).await;
        assert_eq!(set["keys"][0]["kty"], kty);
        assert_eq!(set["keys"][0]["alg"], name);
        let (id, secret) = cc_client(&app).await;
        let token = cc_token(&app, &id, &secret, None).await;
        assert_eq!(jwt_parts(&token).0["alg"], name);
        verify_with_library(&app, &set, &token);
        assert_eq!(
            introspect_as(&app, &id, &secret, &token).await["active"],
            true
        );
    }
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_until_they_expire() {
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let (id, secret) = cc_client(&app).await;
    let old_kid = app.server.keys.kids()[0].clone();
    let old_token = cc_token(&app, &id, &secret, None).await;

    // Published now, signing after the publish delay.
    let r = app
        .server
        .keys
        .rotate(
            clock.now(),
            Schedule::Planned {
                publish_delay_secs: 600,
                access_token_lifetime_secs: 3600,
                key_reload_secs: 60,
            },
        )
        .await
        .unwrap();
    assert_ne!(r.kid, old_kid);
    assert_eq!(r.active_from, clock.now() + 600);
    assert_eq!(r.previous_retire_after, clock.now() + 600 + 3600);
    let set = jwks(&app).await;
    let kids: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [old_kid.as_str(), r.kid.as_str()]);
    let t = cc_token(&app, &id, &secret, None).await;
    assert_eq!(
        jwt_parts(&t).0["kid"],
        old_kid.as_str(),
        "still the old key during the delay"
    );

    clock.advance(600);
    let new_token = cc_token(&app, &id, &secret, None).await;
    assert_eq!(jwt_parts(&new_token).0["kid"], r.kid.as_str());
    let set = jwks(&app).await;
    verify_with_library(&app, &set, &new_token);
    assert_eq!(
        introspect_as(&app, &id, &secret, &old_token).await["active"],
        true
    );
    assert_eq!(
        introspect_as(&app, &id, &secret, &new_token).await["active"],
        true
    );
    let (status, _) = app.get(&old_token, "/oauth_clients").await;
    assert_eq!(status, 200);

    // The last token the old key signed expires at the retire time; then the key is gone.
    clock.advance(3600);
    app.server.keys.reload(clock.now()).await.unwrap();
    assert_eq!(app.server.keys.kids(), vec![r.kid.clone()]);
    assert_eq!(jwks(&app).await["keys"].as_array().unwrap().len(), 1);
    assert_eq!(introspect_as(&app, &id, &secret, &t).await, inactive());
    let counts =
        oauth_server::maintenance::purge_once(app.server.store.as_ref(), clock.now()).await;
    assert!(counts.contains(&("signing_keys", 1)), "{counts:?}");
}

#[tokio::test]
async fn a_key_rotated_in_elsewhere_is_picked_up_on_first_sight() {
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let (id, secret) = cc_client(&app).await;
    // Another instance (or the CLI) rotates with no delay: this instance has not reloaded.
    let kek = oauth_core::keys::KeyEncryptionKey::from_base64(
        &std::fs::read_to_string(app.dir.path().join("oauth.db.kek")).unwrap(),
    )
    .unwrap();
    let r = oauth_server::signing::rotate(
        app.server.store.as_ref(),
        &kek,
        oauth_core::keys::Algorithm::Es256,
        clock.now(),
        Schedule::Planned {
            publish_delay_secs: 0,
            access_token_lifetime_secs: 3600,
            key_reload_secs: 60,
        },
    )
    .await
    .unwrap();
    assert_eq!(app.server.keys.kids().len(), 1, "not reloaded yet");
    // A token signed with the new key (as the other instance would), verified here.
    let store_keys = app
        .server
        .store
        .list_signing_keys(clock.now())
        .await
        .unwrap();
    let row = store_keys.iter().find(|k| k.kid == r.kid).unwrap();
    let der = kek.open(&row.kid, &row.sealed_private_key).unwrap();
    let pair = oauth_core::keys::KeyPair::from_pkcs8_der(
        oauth_core::keys::Algorithm::Es256,
        &row.kid,
        &der,
    )
    .unwrap();
    let old = cc_token(&app, &id, &secret, None).await;
    let mut claims: oauth_core::jwt::AccessTokenClaims =
        serde_json::from_value(jwt_parts(&old).1).unwrap();
    claims.jti = "other-instance".into();
    let token = oauth_core::jwt::encode_access_token(&pair, &claims).unwrap();
    assert_eq!(
        introspect_as(&app, &id, &secret, &token).await["active"],
        true
    );
    assert_eq!(
        app.server.keys.kids().len(),
        2,
        "reloaded on the unknown kid"
    );
}

#[tokio::test]
async fn keys_survive_a_restart_and_the_generated_kek_file_is_private() {
    let app = TestApp::spawn().await;
    let kid = app.server.keys.kids();
    let kek_file = app.dir.path().join("oauth.db.kek");
    let mode = std::fs::metadata(&kek_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (again, _dir) = app.restart().await;
    // The same key, unsealed with the key file, served by the new process.
    assert_eq!(again.keys.kids(), kid);
    let set: Value = reqwest::get(format!("{}/oauth/jwks", again.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["keys"][0]["kid"], kid[0].as_str());
    again.stop().await.unwrap();
}

#[tokio::test]
async fn a_configured_kek_is_used_and_a_wrong_one_is_refused() {
    use base64::Engine;
    let kek = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let parsed = oauth_core::keys::KeyEncryptionKey::from_base64(&kek).unwrap();
    let app = TestApp::spawn_with(|c| c.tokens.key_encryption_key = Some(parsed.clone())).await;
    assert!(!app.dir.path().join("oauth.db.kek").exists());
    let database_url = app.database_url.clone();

    let mut config = oauth_server::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url,
        ..Default::default()
    };
    config.tokens.key_encryption_key =
        Some(oauth_core::keys::KeyEncryptionKey::from_bytes([8u8; 32]));
    let err = oauth_server::start(config, std::future::pending())
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}").contains("OAUTH_KEY_ENCRYPTION_KEY"),
        "{err:#}"
    );
}

#[tokio::test]
async fn postgres_requires_a_configured_kek() {
    let config = oauth_server::Config {
        database_url: "postgres://db.example/oauth".into(),
        ..Default::default()
    };
    // Refused before the database is asked anything (here another one, empty).
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("other.db").display());
    let store = oauth_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let err = oauth_server::signing::load_key_encryption_key(&config, store.as_ref(), 0)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("OAUTH_KEY_ENCRYPTION_KEY"),
        "{err}"
    );
}

#[tokio::test]
async fn jwks_and_discovery_answer_while_the_database_is_down() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;
    let before = jwks(&app).await;
    app.server.store.close().await;
    assert_eq!(jwks(&app).await, before);
    let r = app
        .http
        .get(app.at("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Introspection needs the revocation lookup: 503 with Retry-After, no internals.
    let r = app
        .http
        .post(app.at("/oauth/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn a_token_verified_before_dies_with_its_key() {
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, None).await;
    // Verified (and remembered as verified) by introspection and by the management API.
    for _ in 0..2 {
        assert_eq!(
            introspect_as(&app, &id, &secret, &token).await["active"],
            true
        );
    }
    let (status, _) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 200);

    // Retire the key at once (a leaked key): the token has not expired, but the key that
    // signed it is no longer published, so the remembered verification is void.
    let old_kid = app.server.keys.kids()[0].clone();
    let r = app
        .server
        .keys
        .rotate(clock.now(), Schedule::AtOnce)
        .await
        .unwrap();
    assert_eq!(
        (r.active_from, r.previous_retire_after),
        (clock.now(), clock.now())
    );
    app.server.keys.reload(clock.now()).await.unwrap();
    assert_eq!(app.server.keys.kids(), vec![r.kid.clone()]);
    assert_ne!(r.kid, old_kid);
    assert_eq!(introspect_as(&app, &id, &secret, &token).await, inactive());
    let (status, _) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 401);

    // A token from the new key is verified and active.
    let fresh = cc_token(&app, &id, &secret, None).await;
    assert_eq!(jwt_parts(&fresh).0["kid"], r.kid.as_str());
    assert_eq!(
        introspect_as(&app, &id, &secret, &fresh).await["active"],
        true
    );
}
