//! Helpers for the OAuth endpoints: form and JSON posts with client authentication, and
//! decoding a JWT's parts for assertions.

#![allow(dead_code)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use crate::support::{confidential_client, status_json, TestApp};

/// `Basic base64(id:secret)`, each part form-urlencoded first (RFC 6749 §2.3.1).
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// One response: status, headers, JSON body (`Null` when empty).
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn into_resp(r: reqwest::Response) -> Resp {
    let headers = r.headers().clone();
    let (status, body) = status_json(r).await;
    Resp {
        status,
        headers,
        body,
    }
}

/// POSTs a form body with an optional `Authorization` header value.
pub async fn post_form(
    app: &TestApp,
    path: &str,
    auth: Option<&str>,
    form: &[(&str, &str)],
) -> Resp {
    let mut req = app.http.post(app.at(path)).form(form);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    into_resp(req.send().await.expect("request")).await
}

/// POSTs a JSON body with an optional `Authorization` header value.
pub async fn post_oauth_json(app: &TestApp, path: &str, auth: Option<&str>, body: &Value) -> Resp {
    let mut req = app.http.post(app.at(path)).json(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    into_resp(req.send().await.expect("request")).await
}

/// A confidential client (admin and messaging, every grant) of the admin's organization:
/// (client_id, client_secret).
pub async fn cc_client(app: &TestApp) -> (String, String) {
    cc_client_with(app, &app.admin_key, confidential_client("Service")).await
}

pub async fn cc_client_with(app: &TestApp, key: &str, body: Value) -> (String, String) {
    let c = app.create_client(key, body).await;
    (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A client_credentials token request (Basic, form): the answer, whatever it is.
pub async fn cc_request(app: &TestApp, id: &str, secret: &str, scope: Option<&str>) -> Resp {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    post_form(app, "/oauth/token", Some(&basic(id, secret)), &form).await
}

/// A client_credentials access token (Basic, form), asserting success.
pub async fn cc_token(app: &TestApp, id: &str, secret: &str, scope: Option<&str>) -> String {
    let r = cc_request(app, id, secret, scope).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["access_token"].as_str().unwrap().to_owned()
}

/// Header and claims of a JWT, unverified.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let mut part = || {
        let bytes = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    let h = part();
    let c = part();
    (h, c)
}

/// Introspects `token` as the client (Basic).
pub async fn introspect_as(app: &TestApp, id: &str, secret: &str, token: &str) -> Value {
    let r = post_form(
        app,
        "/oauth/introspect",
        Some(&basic(id, secret)),
        &[("token", token)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.body
}

pub fn inactive() -> Value {
    json!({"active": false})
}

/// A refresh token request (Basic, form): the answer, whatever it is.
pub async fn refresh_request(app: &TestApp, id: &str, secret: &str, rt: &str) -> Resp {
    post_form(
        app,
        "/oauth/token",
        Some(&basic(id, secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}
