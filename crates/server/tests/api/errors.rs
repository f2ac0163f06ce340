//! Bodies, content types, limits and unknown routes: a client's mistake is a clear 4xx, never a
//! 500, and changes nothing.

use serde_json::Value;

use crate::support::{confidential_client, TestApp};

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.at(path))
        .bearer_auth(&app.admin_key)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = req.send().await.unwrap();
    crate::support::status_json(r).await
}

async fn assert_nothing_stored(app: &TestApp) {
    let (_, list) = app.get(&app.admin_key, "/oauth_clients").await;
    assert_eq!(list["meta"]["total_results"], 0);
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let app = TestApp::spawn().await;
    let body = serde_json::to_vec(&confidential_client("x")).unwrap();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let (status, err) = post_raw(&app, "/oauth_clients", ct, body.clone()).await;
        assert_eq!(status, 415, "{ct:?}");
        assert_eq!(err["error"], "invalid_request");
        assert!(err["error_description"]
            .as_str()
            .unwrap()
            .contains("application/json"));
    }
    // The consent decision serves a page's form too, but an API caller's mistake there is
    // still answered in JSON.
    for ct in [Some("text/plain"), None] {
        let (status, err) = post_raw(&app, "/oauth/grants", ct, b"{}".to_vec()).await;
        assert_eq!(status, 415, "{ct:?}: {err}");
        assert_eq!(err["error"], "invalid_request", "{err}");
    }
    // Parameters on the media type are fine.
    let (status, _) = post_raw(
        &app,
        "/oauth_clients",
        Some("application/json; charset=utf-8"),
        body,
    )
    .await;
    assert_eq!(status, 201);
}

/// A body said to be compressed, or in a charset other than UTF-8, is 415 and stores nothing:
/// nothing here decompresses or converts a body, and reading it as it is would read something
/// other than what its sender meant. UTF-8 said any usual way, and `identity`, are fine.
#[tokio::test]
async fn a_content_coding_or_a_charset_other_than_utf8_is_415() {
    let app = TestApp::spawn().await;
    let body = serde_json::to_vec(&confidential_client("x")).unwrap();
    for coding in ["gzip", "br", "x-unknown", "identity, gzip"] {
        let r = app
            .http
            .post(app.at("/oauth_clients"))
            .bearer_auth(&app.admin_key)
            .header("content-type", "application/json")
            .header("content-encoding", coding)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{coding}");
        assert_eq!(r.headers()["accept-encoding"], "identity");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"], "invalid_request", "{err}");
        let d = err["error_description"].as_str().unwrap();
        assert!(
            d.contains("content coding") && d.contains("uncompressed"),
            "{d}"
        );
    }
    for ct in [
        "application/json; charset=utf-16",
        "application/json;charset=ISO-8859-1",
        "application/json; charset=\"windows-1252\"",
    ] {
        let (status, err) = post_raw(&app, "/oauth_clients", Some(ct), body.clone()).await;
        assert_eq!(status, 415, "{ct}: {err}");
        let d = err["error_description"].as_str().unwrap();
        assert!(d.contains("charset") && d.contains("UTF-8"), "{d}");
    }
    assert_nothing_stored(&app).await;
    // An unreadable charset value is quoted in printable ASCII, and cut short.
    let long = format!("application/json; charset={}", "x".repeat(100));
    let (status, err) = post_raw(&app, "/oauth_clients", Some(&long), body.clone()).await;
    assert_eq!(status, 415);
    let d = err["error_description"].as_str().unwrap();
    assert!(d.contains(&format!("'{}...'", "x".repeat(40))), "{d}");
    assert_nothing_stored(&app).await;

    let mut created = 0;
    for ct in [
        "application/json; charset=UTF-8",
        "application/json; charset=\"utf-8\"",
        "application/json;charset=utf8",
    ] {
        let (status, err) = post_raw(&app, "/oauth_clients", Some(ct), body.clone()).await;
        assert_eq!(status, 201, "{ct}: {err}");
        created += 1;
    }
    let r = app
        .http
        .post(app.at("/oauth_clients"))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .header("content-encoding", "identity")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    created += 1;
    let (_, list) = app.get(&app.admin_key, "/oauth_clients").await;
    assert_eq!(list["meta"]["total_results"], created);

    // A form's charset is not looked at: the form encoding is ASCII with UTF-8 escapes, whatever
    // a client writes there (Apache HttpClient writes ISO-8859-1 by default).
    let (id, secret) = crate::oauth_support::cc_client(&app).await;
    for ct in [
        "application/x-www-form-urlencoded; charset=ISO-8859-1",
        "application/x-www-form-urlencoded; charset=utf-16",
    ] {
        let r = app
            .http
            .post(app.at("/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .header("content-type", ct)
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ct}");
        let body: Value = r.json().await.unwrap();
        assert!(body["access_token"].is_string(), "{body}");
    }
    // Escapes that are not UTF-8 are refused when the form is read.
    let r = app
        .http
        .post(app.at("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=ISO-8859-1",
        )
        .body("grant_type=client_credentials&scope=caf%E9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
}

#[tokio::test]
async fn malformed_json_is_400_with_a_clear_message() {
    let app = TestApp::spawn().await;
    for body in [
        &b"{"[..],
        b"{\"name\": }",
        b"not json",
        b"",
        b"{\"name\":\"a\"} trailing",
        b"{\"name\": \"\xff\xfe\"}",
    ] {
        let (status, err) = post_raw(
            &app,
            "/oauth_clients",
            Some("application/json"),
            body.to_vec(),
        )
        .await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(err["error"], "invalid_request");
        let d = err["error_description"].as_str().unwrap();
        assert!(d.starts_with("malformed JSON body"), "{d}");
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn deeply_nested_json_is_refused() {
    let app = TestApp::spawn().await;
    let body = format!("{{\"name\": {}{}}}", "[".repeat(5000), "]".repeat(5000));
    let (status, err) = post_raw(
        &app,
        "/oauth_clients",
        Some("application/json"),
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_json_value_of_the_wrong_shape_is_422() {
    let app = TestApp::spawn().await;
    let (status, err) = post_raw(
        &app,
        "/oauth_clients",
        Some("application/json"),
        b"[1,2]".to_vec(),
    )
    .await;
    assert_eq!(status, 422);
    let d = err["error_description"].as_str().unwrap();
    assert!(d.contains("expected a JSON object"), "{d}");
    assert!(!d.contains("CreateOAuthClient"), "no Rust type names: {d}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = TestApp::spawn().await;
    let mut body = confidential_client("big");
    body["name"] = Value::String("x".repeat(70 * 1024));
    let (status, err) = post_raw(
        &app,
        "/oauth_clients",
        Some("application/json"),
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(err["error"], "invalid_request");
    let (status, _) = post_raw(
        &app,
        "/oauth/register",
        Some("application/json"),
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 2048).await;
    let mut body = confidential_client("medium");
    body["name"] = Value::String("x".repeat(3000));
    let (status, _) = post_raw(
        &app,
        "/oauth_clients",
        Some("application/json"),
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.at("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_found");

    let r = app
        .http
        .patch(app.at("/oauth_clients"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let r = app
        .http
        .get(app.at("/oauth/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // The health checks and the OpenAPI document answer a wrong method in JSON too, and say
    // which methods they serve.
    for path in ["/healthz", "/readyz", "/openapi.json", "/v2/oauth/register"] {
        for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
            let r = app
                .http
                .request(method.clone(), app.at(path))
                .send()
                .await
                .unwrap();
            if path.ends_with("register") && method == reqwest::Method::POST {
                continue;
            }
            assert_eq!(r.status(), 405, "{method} {path}");
            assert!(r.headers().contains_key("allow"), "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "invalid_request", "{method} {path}");
            assert_eq!(
                body["error_description"],
                format!("{method} is not allowed on {path}"),
            );
        }
    }
}

#[tokio::test]
async fn unknown_headers_are_ignored() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.at("/v2/oauth_clients?page%5Bnumber%5D=1&page%5Bsize%5D=20"))
        .bearer_auth(&app.admin_key)
        .header("User-Agent", "Telnyx/Python 4.189.0")
        .header("X-Stainless-Lang", "python")
        .header("X-Stainless-Retry-Count", "0")
        .header("x-stainless-read-timeout", "60")
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn health_and_readiness_probes() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.at("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    let r = app.http.get(app.at("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ready");

    // With the database closed, readiness fails with 503 and Retry-After; liveness still answers.
    app.server.store.close().await;
    let r = app.http.get(app.at("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let r = app.http.get(app.at("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = app.get(&app.admin_key, "/oauth_clients").await;
    assert_eq!(status, 503, "{body}");
}

/// RFC 6749 §4.1.2.1 and §5.2: `error_description` holds printable ASCII but `"` and `\` only,
/// in an error redirect and in a token error, whatever the caller sent to be echoed.
#[tokio::test]
async fn error_descriptions_hold_only_the_characters_rfc_6749_allows() {
    use crate::flow::{code_client, location, param, path_of, standard_params};
    use crate::oauth_support::{basic, cc_client, cc_client_with, post_form};
    let allowed = |d: &str| {
        !d.is_empty()
            && d.chars()
                .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E'))
    };
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    for scope in ["é\"x\\", "nope", "admin\u{202e}"] {
        let r = post_form(
            &app,
            "/oauth/token",
            Some(&basic(&id, &secret)),
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["error"], "invalid_scope");
        let d = r.body["error_description"].as_str().unwrap();
        assert!(allowed(d), "{scope:?}: {d:?}");
    }

    // An error sent back to the client's redirect URI (signed in by API key).
    let (code_id, _) = cc_client_with(&app, &app.admin_key, code_client("App")).await;
    let mut params = standard_params(&code_id);
    params.push(("scope", "voice".to_owned()));
    let mut quoted = standard_params(&code_id);
    quoted.retain(|(k, _)| *k != "response_type");
    quoted.push(("response_type", "\"é".to_owned()));
    for params in [params, quoted] {
        let r = app
            .http
            .get(app.at(&path_of(&params)))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let loc = location(&r);
        assert!(param(&loc, "error").is_some(), "{loc}");
        let d = param(&loc, "error_description").unwrap();
        assert!(allowed(&d), "{d:?}");
    }
}
