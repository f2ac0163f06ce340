//! Client authentication with a signed JWT (`private_key_jwt`, RFC 7523 §2.2): registered
//! clients with a JWK set, the token, introspection and revocation endpoints, every refusal
//! (each `invalid_client` with its reason, burning nothing), single use of `jti` under
//! concurrency on SQLite and PostgreSQL, key sets behind `jwks_uri`, and Client ID Metadata
//! Documents that carry keys.

use std::sync::Arc;

use oauth_core::jwt::sign_compact;
use oauth_core::keys::{Algorithm, KeyPair};
use oauth_server::clock::{Clock, ManualClock};
use rand::rngs::OsRng;
use serde_json::{json, Value};

use crate::cimd::{document, params, DocServer, CALLBACK};
use crate::flow::*;
use crate::oauth_support::*;
use crate::support::TestApp;

const NOW: i64 = 1_900_000_000;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const IAT: &str = "initial-access";

fn keypair(alg: Algorithm, kid: &str) -> KeyPair {
    KeyPair::generate(alg, &mut OsRng).unwrap().with_kid(kid)
}

fn jwk(key: &KeyPair) -> Value {
    serde_json::to_value(key.public_key().to_jwk()).unwrap()
}

fn jwks(keys: &[&KeyPair]) -> Value {
    json!({"keys": keys.iter().map(|k| jwk(k)).collect::<Vec<_>>()})
}

/// Claims of a valid assertion for `client_id` at `now`.
fn claims(client_id: &str, aud: &str, jti: &str, now: i64) -> Value {
    json!({"iss": client_id, "sub": client_id, "aud": aud, "jti": jti,
           "iat": now, "exp": now + 60})
}

fn sign(key: &KeyPair, claims: &Value) -> String {
    let header = json!({"alg": key.alg().as_str(), "kid": key.kid(), "typ": "JWT"});
    sign_compact(key, &header, claims).unwrap()
}

/// Registration behind an initial access token that allows `client_credentials`, and roomy
/// failure budgets.
fn signers(c: &mut oauth_server::Config) {
    c.tokens.key_encryption_key = Some(oauth_core::keys::KeyEncryptionKey::generate(&mut OsRng));
    c.registration.mode = oauth_server::config::RegistrationMode::Token;
    c.registration.initial_access_token_hash = Some(oauth_core::secret::hash_secret(IAT));
    c.registration.allow_client_credentials = true;
    // Many refusals in a row from one address: the failure budgets are not under test.
    let roomy = oauth_server::config::RateLimit {
        requests: 1000,
        window_secs: 60,
    };
    c.rate_limits.client_auth_failures_per_ip = roomy;
    c.rate_limits.client_auth_failures_per_client_ip = roomy;
}

/// A server with a manual clock, on SQLite, and on PostgreSQL when `OAUTH_TEST_POSTGRES_URL`
/// is set; registration behind an initial access token that allows `client_credentials`.
async fn apps() -> Vec<(TestApp, Arc<ManualClock>, Option<crate::db::TestDb>)> {
    let adjust = signers;
    let clock = Arc::new(ManualClock::new(NOW));
    let mut out = vec![(
        TestApp::spawn_with_clock(clock.clone(), adjust).await,
        clock,
        None,
    )];
    if let Some((url, guard)) = crate::db::postgres_url().await {
        let clock = Arc::new(ManualClock::new(NOW));
        let app = TestApp::spawn_on(tempfile::tempdir().unwrap(), url, adjust, clock.clone()).await;
        out.push((app, clock, Some(guard)));
    }
    out
}

async fn register(app: &TestApp, body: &Value) -> (u16, Value) {
    let r = app
        .http
        .post(app.at("/oauth/register"))
        .bearer_auth(IAT)
        .json(body)
        .send()
        .await
        .unwrap();
    crate::support::status_json(r).await
}

/// Registers a `client_credentials` client that signs with `keys`: its id.
async fn register_signer(app: &TestApp, keys: &Value) -> String {
    let (status, r) = register(
        app,
        &json!({"client_name": "Signer", "grant_types": ["client_credentials"],
                "response_types": [], "token_endpoint_auth_method": "private_key_jwt",
                "jwks": keys}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(&r["jwks"], keys);
    assert!(r.get("client_secret").is_none(), "{r}");
    r["client_id"].as_str().unwrap().to_owned()
}

async fn cc_with(app: &TestApp, assertion: &str, extra: &[(&str, &str)]) -> Resp {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    post_form(app, "/oauth/token", None, &form).await
}

#[track_caller]
fn assert_refused(r: &Resp, needle: &str) {
    assert_eq!(r.status, 401, "{needle}: {}", r.body);
    assert_eq!(r.body["error"], "invalid_client", "{needle}");
    let d = r.body["error_description"].as_str().unwrap_or("");
    assert!(d.contains(needle), "{needle:?} not in {d:?}");
}

#[tokio::test]
async fn signed_assertions_authenticate_and_each_refusal_names_its_rule() {
    for (app, clock, _guard) in apps().await {
        let now = clock.now();
        let es = keypair(Algorithm::Es256, "es-1");
        let ed = keypair(Algorithm::EdDsa, "ed-1");
        let rs = keypair(Algorithm::Rs256, "rs-1");
        let keys = jwks(&[&es, &ed, &rs]);
        let id = register_signer(&app, &keys).await;
        let issuer = app.server.issuer.clone();
        let token_endpoint = format!("{issuer}/oauth/token");

        // The metadata lists the method and its algorithms.
        let (_, meta) = app.get("", "/.well-known/oauth-authorization-server").await;
        assert!(meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt")));
        assert_eq!(
            meta["token_endpoint_auth_signing_alg_values_supported"],
            json!(["ES256", "RS256", "PS256", "EdDSA"])
        );

        // ES256 with the issuer as audience, EdDSA with the issuer alone in a list.
        let r = cc_with(&app, &sign(&es, &claims(&id, &issuer, "ok-1", now)), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let token = r.body["access_token"].as_str().unwrap().to_owned();
        let (_, c) = jwt_parts(&token);
        assert_eq!(c["client_id"], id.as_str());
        let mut c = claims(&id, &issuer, "ok-2", now);
        c["aud"] = json!([issuer]);
        let r = cc_with(&app, &sign(&ed, &c), &[("client_id", &id)]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        // RS256.
        let r = cc_with(&app, &sign(&rs, &claims(&id, &issuer, "ok-3", now)), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);

        // Introspection and revocation authenticate the same way.
        let a = sign(&es, &claims(&id, &issuer, "introspect-1", now));
        let r = post_form(
            &app,
            "/oauth/introspect",
            None,
            &[
                ("token", &token),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &a),
            ],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["active"], true, "{}", r.body);
        let a = sign(&es, &claims(&id, &issuer, "revoke-1", now));
        let r = post_form(
            &app,
            "/oauth/revoke",
            None,
            &[
                ("token", &token),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &a),
            ],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);

        // Each refusal, with the jti "burn-me": none of them spends it.
        let jti = "burn-me";
        let valid = claims(&id, &issuer, jti, now);
        let with = |k: &str, v: Value| {
            let mut c = valid.clone();
            c[k] = v;
            c
        };
        let without = |k: &str| {
            let mut c = valid.clone();
            c.as_object_mut().unwrap().remove(k);
            c
        };
        // Another key under a kid of the client's: the signature does not verify.
        let impostor = keypair(Algorithm::Es256, "es-1");
        assert_refused(
            &cc_with(&app, &sign(&impostor, &valid), &[]).await,
            "signature",
        );
        // A kid the client does not have.
        let stranger = keypair(Algorithm::Es256, "es-9");
        assert_refused(&cc_with(&app, &sign(&stranger, &valid), &[]).await, "kid");
        // alg none, unsigned.
        let b64 = |v: &Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let none = format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&valid));
        assert_refused(&cc_with(&app, &none, &[]).await, "alg 'none'");
        // HS256 keyed with the client's public key.
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &valid,
            &jsonwebtoken::EncodingKey::from_secret(jwk(&es).to_string().as_bytes()),
        )
        .unwrap();
        assert_refused(&cc_with(&app, &hs, &[]).await, "alg 'HS256'");
        // An algorithm off the list, signed by the right key.
        let es384 = sign_compact(&es, &json!({"alg": "ES384", "kid": "es-1"}), &valid).unwrap();
        assert_refused(&cc_with(&app, &es384, &[]).await, "alg 'ES384'");
        // An extension marked critical, which this server cannot understand (RFC 7515
        // §4.1.11), signed by the right key; an empty list is no better.
        for crit in [json!(["urn:example:must-understand"]), json!([])] {
            let header = json!({"alg": "ES256", "kid": "es-1", "crit": crit});
            let a = sign_compact(&es, &header, &valid).unwrap();
            assert_refused(&cc_with(&app, &a, &[]).await, "crit");
        }
        // The claims.
        let cases = [
            (with("iss", json!("someone-else")), "iss"),
            (with("aud", json!("https://other.example")), "aud"),
            // The token endpoint's URL, which another server could have handed the client
            // as its own (audience injection), and a list that names another audience too.
            (with("aud", json!(token_endpoint)), "server alone"),
            (
                with("aud", json!(format!("{issuer}/v2/oauth/token"))),
                "server alone",
            ),
            (
                with("aud", json!([issuer, "https://elsewhere.example"])),
                "server alone",
            ),
            (with("aud", json!([token_endpoint])), "server alone"),
            (with("exp", json!(now - 1)), "expired"),
            (with("exp", json!(now + 3600)), "ahead"),
            (with("nbf", json!(now + 600)), "nbf"),
            (without("exp"), "no exp"),
            (without("jti"), "no jti"),
        ];
        for (c, needle) in cases {
            assert_refused(&cc_with(&app, &sign(&es, &c), &[]).await, needle);
        }
        // sub names another client: that client is unknown.
        let other = with("sub", json!("not-a-client"));
        assert_refused(
            &cc_with(&app, &sign(&es, &other), &[]).await,
            "authentication failed",
        );
        // A client_id that is not the assertion's.
        assert_refused(
            &cc_with(&app, &sign(&es, &valid), &[("client_id", "other")]).await,
            "differs",
        );
        // Two methods at once: a malformed request.
        let r = cc_with(&app, &sign(&es, &valid), &[("client_secret", "x")]).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["error"], "invalid_request");
        let r = post_form(
            &app,
            "/oauth/token",
            Some(&basic(&id, "x")),
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &sign(&es, &valid)),
            ],
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["error"], "invalid_request");
        // The client must sign: its id alone is not enough.
        let r = post_form(
            &app,
            "/oauth/token",
            None,
            &[("grant_type", "client_credentials"), ("client_id", &id)],
        )
        .await;
        assert_refused(&r, "private_key_jwt");

        // Nothing above spent "burn-me": it works once, then is a replay.
        let good = sign(&es, &valid);
        assert_eq!(cc_with(&app, &good, &[]).await.status, 200);
        assert_refused(&cc_with(&app, &good, &[]).await, "used before");
        let again = sign(&ed, &valid);
        assert_refused(&cc_with(&app, &again, &[]).await, "used before");

        // After the assertion expired the jti may be used again (it is purged), and the
        // stored record is a digest, never the jti itself.
        if app.database_url.starts_with("sqlite:") {
            let db = crate::support::sqlite(&app.database_url);
            let stored: Vec<String> = db
                .prepare("SELECT jti_hash FROM client_assertion_jtis")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(stored.len(), 6, "{stored:?}");
            assert!(stored.iter().all(|h| h.len() == 64 && !h.contains(jti)));
        }
        clock.advance(61);
        let purged =
            oauth_server::maintenance::purge_once(app.server.store.as_ref(), clock.now()).await;
        assert!(purged.contains(&("client_assertion_jtis", 6)), "{purged:?}");
        let later = sign(&es, &claims(&id, &issuer, jti, clock.now()));
        assert_eq!(cc_with(&app, &later, &[]).await.status, 200);
    }
}

#[tokio::test]
async fn the_token_endpoint_as_audience_is_accepted_only_when_the_operator_keeps_it() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        signers(c);
        c.authorization.client_assertion_accepts_token_endpoint = true;
    })
    .await;
    let es = keypair(Algorithm::Es256, "es-1");
    let id = register_signer(&app, &jwks(&[&es])).await;
    let issuer = app.server.issuer.clone();
    let now = clock.now();
    for (i, aud) in [
        json!(issuer),
        json!(format!("{issuer}/oauth/token")),
        json!(format!("{issuer}/v2/oauth/token")),
        json!([format!("{issuer}/oauth/token")]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = claims(&id, &issuer, &format!("legacy-{i}"), now);
        c["aud"] = aud.clone();
        let r = cc_with(&app, &sign(&es, &c), &[]).await;
        assert_eq!(r.status, 200, "{aud}: {}", r.body);
    }
    // A list naming another audience too stays refused, and spends nothing.
    let mut c = claims(&id, &issuer, "several", now);
    c["aud"] = json!([format!("{issuer}/oauth/token"), "https://elsewhere.example"]);
    assert_refused(&cc_with(&app, &sign(&es, &c), &[]).await, "server alone");
    c["aud"] = json!(issuer);
    assert_eq!(cc_with(&app, &sign(&es, &c), &[]).await.status, 200);
}

#[tokio::test]
async fn of_thirty_concurrent_uses_of_one_assertion_exactly_one_wins() {
    for (app, clock, _guard) in apps().await {
        let es = keypair(Algorithm::Es256, "es-1");
        let id = register_signer(&app, &jwks(&[&es])).await;
        let issuer = app.server.issuer.clone();
        let a = sign(&es, &claims(&id, &issuer, "race", clock.now()));
        let app = Arc::new(app);
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let (app, a) = (app.clone(), a.clone());
                tokio::spawn(async move { cc_with(&app, &a, &[]).await })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            let r = t.await.unwrap();
            match r.status {
                200 => won += 1,
                401 => assert_refused(&r, "used before"),
                s => panic!("unexpected {s}: {}", r.body),
            }
        }
        assert_eq!(won, 1);
    }
}

#[tokio::test]
async fn registration_refuses_unusable_key_sets_and_keeps_them_in_rfc7592() {
    let (app, _clock, _g) = apps().await.into_iter().next().unwrap();
    let es = keypair(Algorithm::Es256, "es-1");
    let mut private = jwk(&es);
    private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
    let base = json!({"client_name": "Signer", "redirect_uris": ["https://a.example/cb"],
                      "token_endpoint_auth_method": "private_key_jwt"});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (body, needle) in [
        (with(json!({"jwks": {"keys": [private]}})), "'d'"),
        (with(json!({})), "jwks or jwks_uri"),
        (
            with(json!({"jwks": jwks(&[&es]), "jwks_uri": "https://a.example/jwks"})),
            "exclusive",
        ),
        (with(json!({"jwks_uri": "http://a.example/jwks"})), "https"),
        (
            with(json!({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}})),
            "'k'",
        ),
        (with(json!({"jwks": {"keys": []}})), "no keys"),
        // An Ed25519 key of one byte, and a P-256 point off the curve.
        (
            with(json!({"jwks": {"keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "k1"}]}})),
            "no usable",
        ),
        (
            with(json!({"jwks": {"keys": [
                {"kty": "EC", "crv": "P-256", "kid": "k1",
                 "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                 "y": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}})),
            "no usable",
        ),
        (
            with(
                json!({"token_endpoint_auth_method": "client_secret_basic", "jwks": jwks(&[&es])}),
            ),
            "private_key_jwt",
        ),
    ] {
        let (status, r) = register(&app, &body).await;
        assert_eq!(status, 400, "{body}: {r}");
        assert_eq!(r["error"], "invalid_client_metadata");
        let d = r["error_description"].as_str().unwrap();
        assert!(d.contains(needle), "{needle:?} not in {d:?}");
    }
    assert_eq!(
        crate::register::third_party_clients(&app).await,
        0,
        "no refused registration stored"
    );
    // Accepted, read back and replaced under RFC 7592; the method's kind cannot change.
    let (status, r) = register(&app, &with(json!({"jwks": jwks(&[&es])}))).await;
    assert_eq!(status, 201, "{r}");
    let uri = r["registration_client_uri"].as_str().unwrap().to_owned();
    let rat = r["registration_access_token"].as_str().unwrap().to_owned();
    let read = app.http.get(&uri).bearer_auth(&rat).send().await.unwrap();
    let (status, read) = crate::support::status_json(read).await;
    assert_eq!(status, 200);
    assert_eq!(read["jwks"], jwks(&[&es]));
    let es2 = keypair(Algorithm::Es256, "es-2");
    let put = |body: Value| app.http.put(&uri).bearer_auth(&rat).json(&body).send();
    let (status, updated) =
        crate::support::status_json(put(with(json!({"jwks": jwks(&[&es2])}))).await.unwrap()).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["jwks"], jwks(&[&es2]));
    let (status, err) = crate::support::status_json(
        put(json!({"redirect_uris": ["https://a.example/cb"],
                   "token_endpoint_auth_method": "client_secret_basic"}))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error_description"]
        .as_str()
        .unwrap()
        .contains("cannot change"));
}

#[tokio::test]
async fn a_jwks_uri_at_a_special_use_address_is_never_fetched() {
    let docs = DocServer::start().await;
    let port = docs.base.rsplit(':').next().unwrap().to_owned();
    let (app, clock, _g) = apps().await.into_iter().next().unwrap();
    let es = keypair(Algorithm::Es256, "es-1");
    docs.serve_doc("/jwks", &jwks(&[&es]));
    for uri in [
        format!("https://127.0.0.1:{port}/jwks"),
        format!("https://localhost:{port}/jwks"),
        "https://169.254.169.254/jwks".to_owned(),
    ] {
        let (status, r) = register(
            &app,
            &json!({"client_name": "Remote keys", "grant_types": ["client_credentials"],
                    "response_types": [], "token_endpoint_auth_method": "private_key_jwt",
                    "jwks_uri": uri}),
        )
        .await;
        assert_eq!(status, 201, "{r}");
        assert_eq!(r["jwks_uri"], uri.as_str());
        let id = r["client_id"].as_str().unwrap();
        let a = sign(&es, &claims(id, &app.server.issuer, "remote", clock.now()));
        // A literal is named as such; a name resolving inside reads as any failed fetch.
        let why = if uri.contains("localhost") {
            "could not be fetched"
        } else {
            "special-use address"
        };
        assert_refused(&cc_with(&app, &a, &[]).await, why);
    }
    assert_eq!(docs.total(), 0);
}

/// Runs the code flow for document client `id` as a new user: the code.
async fn code_for(app: &TestApp, id: &str, email: &str) -> String {
    let user = app.user(email, "cimd-org").await;
    let cookie = app.session(&user).await;
    let r = app
        .get_with_cookie(&path_of(&params(id, CALLBACK)), &cookie)
        .await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    let token = param(&location(&r), "consent_token").unwrap();
    let page = app
        .get_with_cookie(&format!("/consent?consent_token={token}"), &cookie)
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token");
    let r = app
        .http
        .post(app.at("/oauth/grants"))
        .header("cookie", &cookie)
        .form(&[
            ("consent_token", token.as_str()),
            ("csrf_token", csrf.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    param(&location(&r), "code").unwrap()
}

async fn spawn_documents(clock: Arc<ManualClock>) -> TestApp {
    TestApp::spawn_with_clock(clock, |c| {
        c.registration.cimd_allow_http_loopback = true;
    })
    .await
}

#[tokio::test]
async fn a_document_client_signs_with_keys_from_its_jwks_uri() {
    let docs = DocServer::start().await;
    let id = docs.url("/clients/signed.json");
    let es = keypair(Algorithm::Es256, "doc-1");
    docs.serve_doc("/keys.json", &jwks(&[&es]));
    let mut doc = document(&id);
    doc["token_endpoint_auth_method"] = json!("private_key_jwt");
    doc["jwks_uri"] = json!(docs.url("/keys.json"));
    docs.serve_doc("/clients/signed.json", &doc);
    let clock = Arc::new(ManualClock::new(NOW));
    let app = spawn_documents(clock.clone()).await;
    let code = code_for(&app, &id, "signed@example.com").await;

    let exchange = |extra: Vec<(&'static str, String)>| {
        let mut form: Vec<(&'static str, String)> = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", CALLBACK.to_owned()),
            ("code_verifier", VERIFIER.to_owned()),
        ];
        form.extend(extra);
        let app = &app;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(app, "/oauth/token", None, &pairs).await
        }
    };
    // The id alone does not do for a client that signs (and burns nothing).
    let r = exchange(vec![("client_id", id.clone())]).await;
    assert_refused(&r, "private_key_jwt");
    let a = sign(&es, &claims(&id, &app.server.issuer, "doc-a", NOW));
    let r = exchange(vec![
        ("client_assertion_type", ASSERTION_TYPE.to_owned()),
        ("client_assertion", a),
    ])
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["refresh_token"].is_string());
    assert_eq!(docs.hits("/keys.json"), 1);
    let stored = app.server.store.get_client(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.settings.jwks_uri.as_deref(),
        Some(docs.url("/keys.json").as_str())
    );

    // An unknown kid fetches the set again, at most once a minute, even when that fetch
    // fails: made-up kids cannot make the server fetch at their rate while the set is down.
    docs.serve("/keys.json", 500, String::new(), vec![]);
    let stranger = keypair(Algorithm::Es256, "made-up");
    clock.advance(61);
    for (jti, hits) in [("u-1", 2), ("u-2", 2)] {
        let a = sign(&stranger, &claims(&id, &app.server.issuer, jti, NOW + 61));
        let r = exchange(vec![
            ("client_assertion_type", ASSERTION_TYPE.to_owned()),
            ("client_assertion", a),
        ])
        .await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(docs.hits("/keys.json"), hits, "{jti}");
    }
    clock.advance(61);
    let a = sign(
        &stranger,
        &claims(&id, &app.server.issuer, "u-3", NOW + 122),
    );
    let r = exchange(vec![
        ("client_assertion_type", ASSERTION_TYPE.to_owned()),
        ("client_assertion", a),
    ])
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(docs.hits("/keys.json"), 3, "a minute later, one more try");
}

#[tokio::test]
async fn a_document_with_keys_and_none_works_both_ways_and_rotates_its_keys() {
    let docs = DocServer::start().await;
    let id = docs.url("/clients/rotating.json");
    let old = keypair(Algorithm::Es256, "old");
    let new = keypair(Algorithm::EdDsa, "new");
    let mut doc = document(&id);
    doc["jwks"] = jwks(&[&old]);
    docs.serve_doc("/clients/rotating.json", &doc);
    let clock = Arc::new(ManualClock::new(NOW));
    let app = spawn_documents(clock.clone()).await;
    let issuer = app.server.issuer.clone();

    // `none`: a public client with PKCE...
    let code = code_for(&app, &id, "rotating@example.com").await;
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String, a: String| {
        let app = &app;
        async move {
            post_form(
                app,
                "/oauth/token",
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &a),
                ],
            )
            .await
        }
    };
    // ...that may also prove itself with its key.
    let r = refresh(rt.clone(), sign(&old, &claims(&id, &issuer, "r-1", NOW))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    rt = r.body["refresh_token"].as_str().unwrap().to_owned();

    // The document now publishes another key: while the cached copy is fresh, the old key
    // still holds and the new one is unknown.
    doc["jwks"] = jwks(&[&new]);
    docs.serve_doc("/clients/rotating.json", &doc);
    clock.advance(1);
    let r = refresh(
        rt.clone(),
        sign(&new, &claims(&id, &issuer, "r-2", NOW + 1)),
    )
    .await;
    assert_refused(&r, "kid");
    assert_eq!(docs.hits("/clients/rotating.json"), 1);
    // Nothing was written to the client while its document did not change.
    let stored = app.server.store.get_client(&id).await.unwrap().unwrap();
    assert_eq!(stored.updated_at, NOW);

    // Once the cache expires (300 s at least), the document is fetched again: the new key
    // works, the old one no longer does.
    clock.advance(300);
    let now = clock.now();
    let r = refresh(rt.clone(), sign(&old, &claims(&id, &issuer, "r-3", now))).await;
    assert_refused(&r, "kid");
    assert_eq!(docs.hits("/clients/rotating.json"), 2);
    let r = refresh(rt.clone(), sign(&new, &claims(&id, &issuer, "r-4", now))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = app.server.store.get_client(&id).await.unwrap().unwrap();
    assert!(stored.settings.jwks.unwrap().contains("\"new\""));
}

/// A key that registration would refuse can still come from a `jwks_uri` (or from a database
/// written before registration refused it): an assertion naming it is refused like any unknown
/// key, at every endpoint, and counted as a failure; the set's good key still works. A one-byte
/// Ed25519 key used to make the signature library panic (500) at the first assertion naming it.
#[tokio::test]
async fn a_key_of_the_wrong_size_at_a_jwks_uri_is_never_used() {
    let docs = DocServer::start().await;
    let es = keypair(Algorithm::Es256, "good");
    let ed = keypair(Algorithm::EdDsa, "short");
    let mut set = jwks(&[&es]);
    set["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "short"}));
    docs.serve_doc("/mixed-keys.json", &set);
    docs.serve_doc(
        "/short-keys.json",
        &json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "short"}]}),
    );
    let app = TestApp::spawn_with_clock(Arc::new(ManualClock::new(NOW)), |c| {
        c.registration.mode = oauth_server::config::RegistrationMode::Token;
        c.registration.initial_access_token_hash = Some(oauth_core::secret::hash_secret(IAT));
        c.registration.allow_client_credentials = true;
        c.registration.cimd_allow_http_loopback = true;
    })
    .await;
    let signer = |path: &str| {
        json!({"client_name": "Signer", "grant_types": ["client_credentials"],
               "response_types": [], "token_endpoint_auth_method": "private_key_jwt",
               "jwks_uri": docs.url(path)})
    };
    let (status, r) = register(&app, &signer("/mixed-keys.json")).await;
    assert_eq!(status, 201, "{r}");
    let mixed = r["client_id"].as_str().unwrap().to_owned();
    let (status, r) = register(&app, &signer("/short-keys.json")).await;
    assert_eq!(status, 201, "{r}");
    let short = r["client_id"].as_str().unwrap().to_owned();
    let issuer = app.server.issuer.clone();
    for (i, path) in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"]
        .into_iter()
        .enumerate()
    {
        for (id, needle) in [(&mixed, "kid"), (&short, "no usable")] {
            let a = sign(&ed, &claims(id, &issuer, &format!("short-{i}-{id}"), NOW));
            let r = post_form(
                &app,
                path,
                None,
                &[
                    ("grant_type", "client_credentials"),
                    ("token", "anything"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &a),
                ],
            )
            .await;
            assert_refused(&r, needle);
        }
    }
    let failures = app.events("client.authentication_failed").await;
    assert_eq!(failures.len(), 6, "each refusal counted: {failures:?}");
    let r = cc_with(
        &app,
        &sign(&es, &claims(&mixed, &issuer, "good-1", NOW)),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A server with a `client_credentials` client whose key set (`key`'s) is served at a
/// `jwks_uri` of `docs` that answers after `delay_ms`, with `limits` adjusted: the server and
/// the client id.
async fn slow_key_set_client(
    docs: &DocServer,
    key: &KeyPair,
    delay_ms: u64,
    limits: impl FnOnce(&mut oauth_server::config::RateLimitsConfig),
) -> (Arc<TestApp>, String) {
    let path = format!("/keys-{}.json", key.kid());
    docs.serve_doc(&path, &jwks(&[key]));
    docs.slow(&path, std::time::Duration::from_millis(delay_ms));
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock, |c| {
        c.registration.mode = oauth_server::config::RegistrationMode::Token;
        c.registration.initial_access_token_hash = Some(oauth_core::secret::hash_secret(IAT));
        c.registration.allow_client_credentials = true;
        c.registration.cimd_allow_http_loopback = true;
        limits(&mut c.rate_limits);
    })
    .await;
    let (status, r) = register(
        &app,
        &json!({"client_name": "Keys elsewhere", "grant_types": ["client_credentials"],
                "response_types": [], "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": docs.url(&path)}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let id = r["client_id"].as_str().unwrap().to_owned();
    (Arc::new(app), id)
}

/// As many token requests at once as one address may have waiting, from a client whose key set
/// is not cached yet, while its `jwks_uri` is slow: one fetch of the set, and every request is
/// answered.
#[tokio::test]
async fn concurrent_requests_share_one_key_set_fetch() {
    let docs = DocServer::start().await;
    let es = keypair(Algorithm::Es256, "burst-1");
    let (app, id) = slow_key_set_client(&docs, &es, 400, |limits| {
        limits.oauth_per_client = oauth_server::config::RateLimit {
            requests: 0,
            window_secs: 0,
        };
    })
    .await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..oauth_server::cimd::MAX_WAITING_PER_ADDRESS {
        let app = app.clone();
        let a = sign(
            &es,
            &claims(&id, &app.server.issuer, &format!("burst-{i}"), NOW),
        );
        set.spawn(async move { cc_with(&app, &a, &[]).await });
    }
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
        assert_eq!(claims["client_id"], id.as_str());
    }
    assert_eq!(
        docs.hits("/keys-burst-1.json"),
        1,
        "one fetch for the burst"
    );
}

/// A `jwks_uri` whose host is slow holds the token requests that wait for it: one address has
/// at most a few of them waiting at once, the rest refused at once with 429 (spending neither
/// their assertion's `jti` nor the failure budgets), so that a few addresses cannot hold every
/// connection this way; another address waits beside them.
#[tokio::test]
async fn an_address_waits_for_a_key_set_in_a_few_requests_at_once() {
    use std::time::{Duration, Instant};
    let docs = DocServer::start().await;
    let es = keypair(Algorithm::Es256, "slow-1");
    let (app, id) = slow_key_set_client(&docs, &es, 1500, |limits| {
        // One failure would show: the refused requests must spend none.
        let one = oauth_server::config::RateLimit {
            requests: 1,
            window_secs: 3600,
        };
        limits.client_auth_failures_per_ip = one;
        limits.client_auth_failures_per_client_ip = one;
    })
    .await;
    let max = oauth_server::cimd::MAX_WAITING_PER_ADDRESS;
    let assertion = |i: usize| {
        sign(
            &es,
            &claims(&id, &app.server.issuer, &format!("slow-{i}"), NOW),
        )
    };
    let mut set = tokio::task::JoinSet::new();
    for i in 0..=max + 4 {
        let http = if i == max + 4 {
            crate::rate_limits::client_from(crate::rate_limits::ATTACKER)
        } else {
            app.http.clone()
        };
        let (app, a) = (app.clone(), assertion(i));
        set.spawn(async move {
            let started = Instant::now();
            let form = [
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", a.as_str()),
            ];
            let (status, retry_after, body) =
                crate::rate_limits::post_form_with(&http, &app, "/oauth/token", None, &form).await;
            (i, status, retry_after, body, started.elapsed())
        });
    }
    let (mut waited, mut refused) = (0, Vec::new());
    while let Some(r) = set.join_next().await {
        let (i, status, retry_after, body, took) = r.unwrap();
        match status {
            200 => waited += usize::from(i != max + 4),
            429 => {
                assert_ne!(i, max + 4, "the other address is not refused");
                assert_eq!(body["error"], "rate_limited", "{body}");
                assert_eq!(retry_after.as_deref(), Some("5"));
                assert!(
                    took < Duration::from_millis(1000),
                    "refused at once: {took:?}"
                );
                refused.push(i);
            }
            s => panic!("unexpected {s}: {body}"),
        }
    }
    assert_eq!((waited, refused.len()), (max, 4));
    assert_eq!(docs.hits("/keys-slow-1.json"), 1, "one fetch for all");
    // The set cached, nobody waits; a refused request's assertion was not spent, and no
    // failure was counted (the budget of one would refuse the second of them).
    for i in refused {
        let r = cc_with(&app, &assertion(i), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = cc_with(
        &app,
        &sign(&es, &claims(&id, "https://elsewhere.example", "x", NOW)),
        &[],
    )
    .await;
    assert_refused(&r, "aud");
    let r = cc_with(
        &app,
        &sign(&es, &claims(&id, "https://elsewhere.example", "y", NOW)),
        &[],
    )
    .await;
    assert_eq!(r.status, 429, "the budget of one failure: {}", r.body);
}

/// A client sending valid assertions past its request budget gets 429 before its `jti` is
/// stored: an attacker's own registered client cannot fill the table of used assertion ids
/// faster than its budget lets it, however many requests it sends.
#[tokio::test]
async fn a_client_over_its_budget_stores_no_assertion_id() {
    let clock = Arc::new(ManualClock::new(NOW));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.registration.mode = oauth_server::config::RegistrationMode::Token;
        c.registration.initial_access_token_hash = Some(oauth_core::secret::hash_secret(IAT));
        c.registration.allow_client_credentials = true;
        c.rate_limits.oauth_per_client = oauth_server::config::RateLimit {
            requests: 3,
            window_secs: 60,
        };
    })
    .await;
    let es = keypair(Algorithm::Es256, "es-1");
    let id = register_signer(&app, &jwks(&[&es])).await;
    let issuer = app.server.issuer.clone();
    let mut statuses = Vec::new();
    for i in 0..10 {
        let assertion = sign(&es, &claims(&id, &issuer, &format!("jti-{i}"), clock.now()));
        statuses.push(cc_with(&app, &assertion, &[]).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
    let stored: i64 = crate::support::sqlite(&app.database_url)
        .query_row("SELECT COUNT(*) FROM client_assertion_jtis", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, 3);
}

/// A purge run deletes every expired row, however many there are, in short batches: a table
/// an attacker grows faster than a fixed number of batches per run could delete still empties.
#[tokio::test]
async fn a_purge_run_deletes_every_expired_row() {
    let app = TestApp::spawn().await;
    // Expiring later than the server's own purges look (they run on the real clock), so that
    // only the run below can delete them.
    let later = oauth_server::clock::SystemClock.now() + 10_000;
    {
        let mut db = crate::support::sqlite(&app.database_url);
        let tx = db.transaction().unwrap();
        for i in 0..12_345 {
            tx.execute(
                "INSERT INTO client_assertion_jtis (jti_hash, expires_at) VALUES (?1, ?2)",
                rusqlite::params![format!("{i:064}"), later],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO client_assertion_jtis (jti_hash, expires_at) VALUES ('live', ?1)",
            rusqlite::params![i64::MAX],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let purged = oauth_server::maintenance::purge_once(app.server.store.as_ref(), later + 1).await;
    assert!(
        purged.contains(&("client_assertion_jtis", 12_345)),
        "{purged:?}"
    );
    let left: i64 = crate::support::sqlite(&app.database_url)
        .query_row("SELECT COUNT(*) FROM client_assertion_jtis", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(left, 1);
}
