//! `POST /oauth/token`: client authentication, the client_credentials grant, and every error
//! of RFC 6749 §5.2 with its status and body.

use serde_json::{json, Value};

use crate::oauth_support::{
    basic, cc_client, cc_client_with, jwt_parts, post_form, post_oauth_json, Resp,
};
use crate::support::{confidential_client, public_client, TestApp};

fn assert_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"], error, "{}", r.body);
    assert!(
        r.body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        r.body
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn client_credentials_with_basic_issues_an_rfc9068_token() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let b = &r.body;
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 3600);
    assert_eq!(b["scope"], "admin messaging");
    assert!(b.get("refresh_token").is_none(), "no refresh token: {b}");

    let (h, c) = jwt_parts(b["access_token"].as_str().unwrap());
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["kid"], app.server.keys.kids()[0].as_str());
    assert_eq!(c["iss"], app.server.issuer.as_str());
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["client_id"], id.as_str());
    assert_eq!(c["aud"], app.server.issuer.as_str());
    assert_eq!(c["scope"], "admin messaging");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(c["jti"].as_str().unwrap().len(), 43);
    assert!(c.get("grant_id").is_none(), "{c}");
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_inside_base64() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    // Every character percent-encoded: the server must decode before comparing.
    let pct = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    use base64::Engine;
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", pct(&id), pct(&secret)))
    );
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&header),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Undecodable percent escapes: invalid_client, with the Basic challenge.
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:%zz"))
    );
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&header),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_error(&r, 401, "invalid_client");
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic realm="));
}

#[tokio::test]
async fn body_credentials_in_json_and_form_ignore_a_stray_bearer() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let stray = format!("Bearer {}", app.admin_key);
    let r = post_oauth_json(
        &app,
        "/oauth/token",
        Some(&stray),
        &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret, "scope": "messaging"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scope"], "messaging");
    let r = post_form(
        &app,
        "/oauth/token",
        Some("Bearer KEYnot-even-valid"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["scope"], "admin messaging");
}

#[tokio::test]
async fn two_authentication_methods_are_refused() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("twice"));
    // A different client_id in the body than in Basic.
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "someone-else"),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn failed_client_authentication_is_invalid_client_401() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let cc = ("grant_type", "client_credentials");

    let r = post_form(&app, "/oauth/token", Some(&basic(&id, "wrong")), &[cc]).await;
    assert_error(&r, 401, "invalid_client");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"oauth\", charset=\"UTF-8\"")
    );

    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[cc, ("client_id", &id), ("client_secret", "wrong")],
    )
    .await;
    assert_error(&r, 401, "invalid_client");
    // RFC 9110 §15.5.2: every 401 carries a challenge, Basic tried or not.
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"oauth\", charset=\"UTF-8\"")
    );

    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic("no-such-client", &secret)),
        &[cc],
    )
    .await;
    assert_error(&r, 401, "invalid_client");

    // A confidential client's id without its secret.
    let r = post_form(&app, "/oauth/token", None, &[cc, ("client_id", &id)]).await;
    assert_error(&r, 401, "invalid_client");

    // No client at all (a Bearer API key is not client authentication).
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&format!("Bearer {}", app.admin_key)),
        &[cc],
    )
    .await;
    assert_error(&r, 401, "invalid_client");

    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[cc, ("client_secret", &secret)],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn grant_type_is_required_and_only_supported_ones_are_served() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let auth = basic(&id, &secret);
    let r = post_form(&app, "/oauth/token", Some(&auth), &[("scope", "admin")]).await;
    assert_error(&r, 400, "invalid_request");
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("grant_type"));
    for g in ["password", "urn:x"] {
        let r = post_form(&app, "/oauth/token", Some(&auth), &[("grant_type", g)]).await;
        assert_error(&r, 400, "unsupported_grant_type");
    }
    // The served grants, without their parameters: invalid_request naming the missing one.
    for (g, missing) in [
        ("authorization_code", "code"),
        ("refresh_token", "refresh_token"),
    ] {
        let r = post_form(&app, "/oauth/token", Some(&auth), &[("grant_type", g)]).await;
        assert_error(&r, 400, "invalid_request");
        assert!(r.body["error_description"]
            .as_str()
            .unwrap()
            .contains(missing));
    }
}

#[tokio::test]
async fn scope_may_be_narrowed_never_widened() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let auth = basic(&id, &secret);
    let cc = ("grant_type", "client_credentials");
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&auth),
        &[cc, ("scope", "messaging")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["scope"], "messaging");
    let (_, c) = jwt_parts(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["scope"], "messaging");

    let r = post_form(
        &app,
        "/oauth/token",
        Some(&auth),
        &[cc, ("scope", "admin voice")],
    )
    .await;
    assert_error(&r, 400, "invalid_scope");
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("voice"));
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&auth),
        &[cc, ("scope", "bad\"scope")],
    )
    .await;
    assert_error(&r, 400, "invalid_scope");
}

#[tokio::test]
async fn public_clients_and_clients_without_the_grant_are_unauthorized_client() {
    let app = TestApp::spawn().await;
    let public = app
        .create_client(&app.admin_key, public_client("Mobile"))
        .await;
    let public_id = public["client_id"].as_str().unwrap();
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", public_id),
        ],
    )
    .await;
    assert_error(&r, 400, "unauthorized_client");

    let mut body = confidential_client("Web only");
    body["allowed_grant_types"] = json!(["authorization_code"]);
    let (id, secret) = cc_client_with(&app, &app.admin_key, body).await;
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_error(&r, 400, "unauthorized_client");
}

#[tokio::test]
async fn bodies_must_be_form_or_json_within_the_limit_without_repeats() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let auth = basic(&id, &secret);

    let r = app
        .http
        .post(app.at("/oauth/token"))
        .header("authorization", &auth)
        .header("content-type", "text/plain")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    let big = "x".repeat(70 * 1024);
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&auth),
        &[("grant_type", "client_credentials"), ("pad", &big)],
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.body);

    let r = post_form(
        &app,
        "/oauth/token",
        Some(&auth),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "admin"),
            ("scope", "messaging"),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("scope"));

    let r = post_oauth_json(&app, "/oauth/token", Some(&auth), &json!({"grant_type": 5})).await;
    assert_error(&r, 400, "invalid_request");
    let r = post_oauth_json(&app, "/oauth/token", Some(&auth), &json!(["grant_type"])).await;
    assert_error(&r, 400, "invalid_request");

    // Both official SDK prefixes work.
    let r = post_form(
        &app,
        "/v2/oauth/token",
        Some(&auth),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn resource_indicators_set_the_audience() {
    let app = TestApp::spawn_with(|c| {
        c.resources = vec!["https://api.example.com".into()];
    })
    .await;
    let (id, secret) = cc_client(&app).await;
    let auth = basic(&id, &secret);
    let cc = ("grant_type", "client_credentials");
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&auth),
        &[cc, ("resource", "https://api.example.com")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let (_, c) = jwt_parts(&token);
    assert_eq!(c["aud"], "https://api.example.com");
    // A token for another resource does not open this server's management API.
    let (status, body) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");

    let issuer = app.server.issuer.clone();
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&auth),
        &[cc, ("resource", &issuer)],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&auth),
        &[cc, ("resource", "https://evil.example")],
    )
    .await;
    assert_error(&r, 400, "invalid_target");
    // Two resources at once (RFC 8707 §2 allows asking): one at a time here, as a form and
    // as JSON.
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&auth),
        &[
            cc,
            ("resource", "https://api.example.com"),
            ("resource", &issuer),
        ],
    )
    .await;
    assert_error(&r, 400, "invalid_target");
    // As JSON: the member twice, or a list of several; a list of one is no list of
    // resources, but not a string either.
    let two = format!(r#""https://api.example.com","resource":"{issuer}""#);
    for (resource, error) in [
        (two, "invalid_target"),
        (
            format!(r#"["https://api.example.com","{issuer}"]"#),
            "invalid_target",
        ),
        (format!(r#"["{issuer}"]"#), "invalid_request"),
    ] {
        let r = app
            .http
            .post(app.at("/oauth/token"))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"grant_type":"client_credentials","resource":{resource}}}"#
            ))
            .send()
            .await
            .unwrap();
        let (status, body) = crate::support::status_json(r).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{resource}: {body}"
        );
    }
}

#[tokio::test]
async fn client_credentials_writes_nothing() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let before = std::fs::metadata(app.dir.path().join("oauth.db-wal"))
        .map(|m| m.len())
        .ok();
    let store = app.server.store.clone();
    let token = crate::oauth_support::cc_token(&app, &id, &secret, None).await;
    let (_, c) = jwt_parts(&token);
    assert!(!store
        .is_access_token_revoked(c["jti"].as_str().unwrap())
        .await
        .unwrap());
    let after = std::fs::metadata(app.dir.path().join("oauth.db-wal"))
        .map(|m| m.len())
        .ok();
    assert_eq!(before, after, "the write-ahead log did not grow");
}

/// Two `Authorization` fields are refused before any route reads one: a good and a bad Basic
/// header get no token whichever comes first, and Basic beside a bearer gets no introspection.
#[tokio::test]
async fn two_authorization_headers_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let good = basic(&id, &secret);
    let bad = basic(&id, "wrong");
    let token = crate::oauth_support::cc_token(&app, &id, &secret, None).await;
    let bearer = format!("Bearer {}", app.admin_key);
    for (path, pair, form) in [
        (
            "/oauth/token",
            [&good, &bad],
            vec![("grant_type", "client_credentials")],
        ),
        (
            "/oauth/token",
            [&bad, &good],
            vec![("grant_type", "client_credentials")],
        ),
        (
            "/oauth/introspect",
            [&good, &bearer],
            vec![("token", token.as_str())],
        ),
        (
            "/v2/oauth/introspect",
            [&bearer, &good],
            vec![("token", token.as_str())],
        ),
        ("/oauth_clients", [&bearer, &bearer], vec![]),
    ] {
        let mut headers = reqwest::header::HeaderMap::new();
        for value in pair {
            headers.append(
                reqwest::header::AUTHORIZATION,
                reqwest::header::HeaderValue::from_str(value).unwrap(),
            );
        }
        let r = app
            .http
            .post(app.at(path))
            .headers(headers)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        // A public endpoint's refusal is readable from a browser, as its other errors are.
        let cors = r.headers().get("access-control-allow-origin").cloned();
        assert_eq!(cors.is_some(), path == "/oauth/token", "{path}: {cors:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "invalid_request", "{path}: {body}");
        assert!(body.get("access_token").is_none() && body.get("active").is_none());
    }
}
