//! Helpers for the authorization code flow tests: a browser-like login (cookies by hand), the
//! authorize request, and reading what comes back.

use oauth_core::secret;
use oauth_store::CodeRedemption;
use serde_json::{json, Value};

use crate::oauth_support::{basic, cc_client_with, post_form};
use crate::support::{TestApp, TestUser};

/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub const REDIRECT: &str = "https://app.example.com/callback";

/// A confidential client for the code flow, with PKCE required.
pub fn code_client(name: &str) -> Value {
    json!({
        "name": name,
        "client_type": "confidential",
        "allowed_grant_types": ["authorization_code", "refresh_token"],
        "allowed_scopes": ["admin", "messaging", "voice"],
        "redirect_uris": [REDIRECT, "http://127.0.0.1/cb"],
        "require_pkce": true,
        "policy_uri": "https://app.example.com/privacy",
        "tos_uri": "https://app.example.com/terms"
    })
}

/// `/oauth/authorize?...` with these parameters, form-encoded.
pub fn authorize_path(params: &[(&str, &str)]) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/oauth/authorize?{q}")
}

/// The usual parameters for `client_id`, with PKCE S256 and a state.
pub fn standard_params(client_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client_id.to_owned()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "admin messaging".into()),
        ("state", "st-123".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

pub fn path_of(params: &[(&'static str, String)]) -> String {
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    authorize_path(&p)
}

/// The query of a URL as pairs.
pub fn query_of(location: &str) -> Vec<(String, String)> {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param(location: &str, key: &str) -> Option<String> {
    query_of(location)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The value a `Set-Cookie` header gives cookie `name`, and the whole header line.
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<(String, String)> {
    r.headers().get_all("set-cookie").iter().find_map(|v| {
        let line = v.to_str().ok()?.to_owned();
        let first = line.split(';').next()?;
        let (k, val) = first.split_once('=')?;
        (k == name).then(|| (val.to_owned(), line.clone()))
    })
}

/// The `value` of the hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_owned()
}

impl TestApp {
    /// GET with a `Cookie` header.
    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> reqwest::Response {
        self.http
            .get(self.at(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }

    /// The login form: the CSRF cookie value and the page.
    pub async fn login_form(&self) -> (String, String) {
        let r = self.http.get(self.at("/login")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let (cookie, _) = set_cookie(&r, "oauth_login_csrf").expect("login CSRF cookie");
        (cookie, r.text().await.unwrap())
    }

    /// Posts the login form as a browser would (CSRF cookie and field).
    pub async fn post_login(
        &self,
        email: &str,
        password: &str,
        return_to: &str,
    ) -> reqwest::Response {
        let (csrf, page) = self.login_form().await;
        assert_eq!(hidden(&page, "csrf_token"), csrf);
        self.http
            .post(self.at("/login"))
            .header("cookie", format!("oauth_login_csrf={csrf}"))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf_token", csrf.as_str()),
                ("return_to", return_to),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Signs `user` in; returns the `Cookie` header value of the session.
    pub async fn session(&self, user: &TestUser) -> String {
        let r = self.post_login(&user.email, &user.password, "/").await;
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
        let (value, _) = set_cookie(&r, "oauth_session").expect("session cookie");
        format!("oauth_session={value}")
    }

    /// Runs the authorize request with an API key and returns the consent token.
    pub async fn consent_token(&self, key: &str, path: &str) -> String {
        let r = self
            .http
            .get(self.at(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let loc = location(&r);
        assert!(loc.starts_with("/consent?consent_token="), "{loc}");
        param(&loc, "consent_token").unwrap()
    }

    /// `POST /oauth/grants` (JSON, API key).
    pub async fn decide(&self, key: &str, token: &str, allowed: bool) -> (u16, Value) {
        self.post_json(
            key,
            "/oauth/grants",
            &json!({"allowed": allowed, "consent_token": token}),
        )
        .await
    }

    /// Redeems a code through the store, as the token endpoint will.
    pub async fn redeem(&self, code: &str) -> CodeRedemption {
        self.server
            .store
            .redeem_authorization_code(&secret::hash_secret(code), self.clock.now())
            .await
            .unwrap()
    }
}

/// `user` creates a code-flow client, consents to it and exchanges the code: (client id,
/// client secret, grant id, token response).
pub async fn connected_app(
    app: &TestApp,
    user: &TestUser,
    name: &str,
) -> (String, String, String, Value) {
    let (id, secret) = cc_client_with(app, &user.api_key, code_client(name)).await;
    let tokens = approved_tokens(app, user, &id, &secret, &standard_params(&id)).await;
    let (status, grants) = app.get(&user.api_key, "/oauth_grants").await;
    assert_eq!(status, 200);
    let grant_id = grants["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["client_id"] == id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, secret, grant_id, tokens)
}

/// `user` approves the authorization request `params` (with their API key) and the client
/// exchanges the code (PKCE, [`REDIRECT`]): the token response, asserting success.
pub async fn approved_tokens(
    app: &TestApp,
    user: &TestUser,
    id: &str,
    secret: &str,
    params: &[(&'static str, String)],
) -> Value {
    let token = app.consent_token(&user.api_key, &path_of(params)).await;
    let (status, body) = app.decide(&user.api_key, &token, true).await;
    assert_eq!(status, 200, "{body}");
    let code = param(body["redirect_uri"].as_str().unwrap(), "code").unwrap();
    let r = post_form(
        app,
        "/oauth/token",
        Some(&basic(id, secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}
