//! The attack suite's cross-cutting cases (docs/security-tests.md maps every attack to its
//! tests): redirect URI tricks, tenant isolation on every management route, SQL metacharacters
//! in every filter, invalid UTF-8 and repeated parameters on every endpoint that reads them,
//! markup in every client-controlled field the pages show, oversized and deeply nested JSON on
//! the OAuth endpoints.

use serde_json::{json, Value};

use crate::flow::*;
use crate::oauth_support::{basic, cc_client, post_form, post_oauth_json, Resp};
use crate::support::{confidential_client, status_json, TestApp};

/// Every response to a client's mistake: 4xx with the JSON error body, never `server_error`.
fn assert_client_error(status: u16, body: &Value, what: &str) {
    assert!((400..500).contains(&status), "{what}: {status} {body}");
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {body}"));
    assert_ne!(error, "server_error", "{what}");
}

type Headers = Vec<(&'static str, Vec<u8>)>;

fn hdr(name: &'static str, value: &[u8]) -> (&'static str, Vec<u8>) {
    (name, value.to_vec())
}

async fn raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &[u8])],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut rb = app.http.request(method, app.at(path)).body(body);
    for (k, v) in headers {
        rb = rb.header(*k, reqwest::header::HeaderValue::from_bytes(v).unwrap());
    }
    rb.send().await.unwrap()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn redirect_uri_tricks_are_never_redirected_to() {
    let app = TestApp::spawn().await;
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let id = c["client_id"].as_str().unwrap();
    // Registered: https://app.example.com/callback and http://127.0.0.1/cb.
    for trick in [
        // Case changes.
        "https://APP.example.com/callback",
        "https://app.example.com/Callback",
        "HTTPS://app.example.com/callback",
        // Trailing slash, extra path, dot segments.
        "https://app.example.com/callback/",
        "https://app.example.com/callback/extra",
        "https://app.example.com/callback/../callback",
        "https://app.example.com/x/../callback",
        // Query and fragment.
        "https://app.example.com/callback?next=https://evil.example",
        "https://app.example.com/callback#https://evil.example",
        // Userinfo.
        "https://app.example.com@evil.example/callback",
        "https://user@app.example.com/callback",
        "https://app.example.com:443@evil.example/callback",
        // Percent-encoding.
        "https://app.example.com/%63allback",
        "https://app.example.com/callback%2F",
        "https://app.example.com%2Fcallback",
        "https://app%2Eexample.com/callback",
        // Another port on a non-loopback host, including the default one spelled out.
        "https://app.example.com:8443/callback",
        "https://app.example.com:443/callback",
        // Another scheme or host.
        "http://app.example.com/callback",
        "https://app.example.com.evil.example/callback",
        "https://evil.example/https://app.example.com/callback",
        // Loopback: another host spelling, another path, userinfo.
        "http://localhost/cb",
        "http://127.0.0.2/cb",
        "http://127.0.0.1:8080/cb/",
        "http://127.0.0.1:8080@evil.example/cb",
        "https://127.0.0.1/cb",
    ] {
        let path = authorize_path(&[
            ("response_type", "code"),
            ("client_id", id),
            ("redirect_uri", trick),
            ("scope", "admin"),
            ("state", "st-123"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        let r = app
            .http
            .get(app.at(&path))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{trick}");
        assert!(r.headers().get("location").is_none(), "{trick}");
        let page = r.text().await.unwrap();
        assert!(page.contains("not registered"), "{trick}: {page}");
    }
    // The genuine one, and the loopback one on another port, go on to consent.
    for fine in [REDIRECT, "http://127.0.0.1:8080/cb"] {
        let p = authorize_path(&[
            ("response_type", "code"),
            ("client_id", id),
            ("redirect_uri", fine),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        app.consent_token(&app.admin_key, &p).await;
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn tenant_isolation_on_every_management_route() {
    let app = TestApp::spawn().await;
    let admin = app.admin_key.clone();
    let c = app.create_client(&admin, code_client("Victim App")).await;
    let client_id = c["client_id"].as_str().unwrap().to_owned();
    // A grant of the admin, and a pending consent of the admin.
    let token = app
        .consent_token(&admin, &path_of(&standard_params(&client_id)))
        .await;
    let (status, _) = app.decide(&admin, &token, true).await;
    assert_eq!(status, 200);
    let (_, grants) = app.get(&admin, "/oauth_grants").await;
    let grant_id = grants["data"][0]["id"].as_str().unwrap().to_owned();
    let pending = app
        .consent_token(&admin, &path_of(&standard_params(&client_id)))
        .await;

    let intruder = app.user("mallory@other.example", "Other Org").await;
    let k = intruder.api_key.as_str();
    for prefix in ["", "/v2"] {
        // Lists and every filter: nothing of the other organization.
        for query in [
            String::new(),
            format!("?filter[client_id]={client_id}"),
            "?filter[name]=Victim%20App".to_owned(),
            "?filter[name][contains]=Victim".to_owned(),
            "?filter[client_type]=confidential".to_owned(),
            "?filter[verified]=false".to_owned(),
            "?filter[allowed_grant_types][contains]=authorization_code".to_owned(),
            "?page[size]=100".to_owned(),
        ] {
            let (status, list) = app.get(k, &format!("{prefix}/oauth_clients{query}")).await;
            assert_eq!(status, 200, "{query}: {list}");
            assert_eq!(list["data"], json!([]), "{query}");
            assert_eq!(list["meta"]["total_results"], 0, "{query}");
        }
        let (status, list) = app.get(k, &format!("{prefix}/oauth_grants")).await;
        assert_eq!(status, 200);
        assert_eq!(list["data"], json!([]));
        assert_eq!(list["meta"]["total_results"], 0);

        // Another organization's ids answer 404, as if they did not exist.
        let client_path = format!("{prefix}/oauth_clients/{client_id}");
        let grant_path = format!("{prefix}/oauth_grants/{grant_id}");
        for (status, body, what) in [
            {
                let (s, b) = app.get(k, &client_path).await;
                (s, b, "GET client")
            },
            {
                let (s, b) = app
                    .put_json(
                        k,
                        &client_path,
                        &json!({"name": "Stolen", "redirect_uris": ["https://evil.example/cb"]}),
                    )
                    .await;
                (s, b, "PUT client")
            },
            {
                let (s, b) = app.delete(k, &client_path).await;
                (s, b, "DELETE client")
            },
            {
                let (s, b) = app.get(k, &grant_path).await;
                (s, b, "GET grant")
            },
            {
                let (s, b) = app.delete(k, &grant_path).await;
                (s, b, "DELETE grant")
            },
        ] {
            assert_eq!(
                (status, body["error"].as_str()),
                (404, Some("not_found")),
                "{prefix} {what}: {body}"
            );
        }
        // Another user's consent token is unknown (422, like any unknown token).
        let (status, body) = app
            .get(k, &format!("{prefix}/oauth/consent/{pending}"))
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("invalid_request"))
        );
        let (status, body) = app
            .post_json(
                k,
                &format!("{prefix}/oauth/grants"),
                &json!({"allowed": true, "consent_token": pending}),
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("invalid_request"))
        );
    }
    // Creating a client cannot name another organization.
    let mut body = confidential_client("Planted");
    body["org_id"] = json!(app.admin_org);
    let (status, created) = app.post_json(k, "/oauth_clients", &body).await;
    assert_eq!(status, 422, "{created}");
    assert_eq!(created["errors"][0]["source"]["pointer"], "/org_id");

    // Nothing of the victim changed: the client, the grant, the pending consent.
    let stored = app
        .server
        .store
        .get_client(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.settings.name, "Victim App");
    assert_eq!(stored.settings.redirect_uris[0], REDIRECT);
    let (status, _) = app.get(&admin, &format!("/oauth_grants/{grant_id}")).await;
    assert_eq!(status, 200);
    let (status, body) = app.decide(&admin, &pending, true).await;
    assert_eq!(status, 200, "{body}");
    let (_, mine) = app.get(&admin, "/oauth_clients").await;
    assert_eq!(mine["meta"]["total_results"], 1, "nothing planted: {mine}");
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sql_metacharacters_in_every_filter_are_data() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    let weird = "a_b%c'd\"e;--f\\g";
    app.create_client(k, confidential_client(weird)).await;
    app.create_client(k, confidential_client("aXbYc plain"))
        .await;

    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let names = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // Text filters: exact and substring matches take every character literally.
    for (query, expected) in [
        (format!("filter[name]={}", enc(weird)), vec![weird]),
        ("filter[name][contains]=_".to_owned(), vec![weird]),
        ("filter[name][contains]=%25".to_owned(), vec![weird]),
        ("filter[name][contains]=b%25c".to_owned(), vec![weird]),
        ("filter[name][contains]=a_b".to_owned(), vec![weird]),
        ("filter[name][contains]=%5C".to_owned(), vec![weird]),
        ("filter[name][contains]=%27".to_owned(), vec![weird]),
        ("filter[name][contains]=%22e%3B--".to_owned(), vec![weird]),
        ("filter[name][contains]=%5B".to_owned(), vec![]),
        ("filter[name][contains]=a%25c".to_owned(), vec![]),
        ("filter[name][contains]=X_Y".to_owned(), vec![]),
        ("filter[name]=%25".to_owned(), vec![]),
        ("filter[name]=a_b%25".to_owned(), vec![]),
        ("filter[name]=%27%20OR%20%271%27%3D%271".to_owned(), vec![]),
        (
            "filter[name][contains]=%27%20OR%201%3D1%20--".to_owned(),
            vec![],
        ),
        ("filter[client_id]=%25".to_owned(), vec![]),
        ("filter[client_id]=_%25".to_owned(), vec![]),
        (
            "filter[client_id]=%27%20OR%20%27%27%3D%27".to_owned(),
            vec![],
        ),
        (
            "filter[client_id]=x%27%3B%20DELETE%20FROM%20oauth_clients%3B--".to_owned(),
            vec![],
        ),
    ] {
        let (status, body) = app.get(k, &format!("/oauth_clients?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(names(&body), expected, "{query}");
    }
    // Filters with a fixed vocabulary, and pagination, refuse anything else by name.
    for (query, param) in [
        (
            "filter[client_type]=public%27%20OR%20%271",
            "filter[client_type]",
        ),
        ("filter[client_type]=%25", "filter[client_type]"),
        ("filter[verified]=true%20OR%201%3D1", "filter[verified]"),
        (
            "filter[allowed_grant_types][contains]=client_credentials%27--",
            "filter[allowed_grant_types][contains]",
        ),
        (
            "page[size]=1%3B%20DROP%20TABLE%20oauth_clients",
            "page[size]",
        ),
        ("page[number]=1%20OR%201%3D1", "page[number]"),
    ] {
        let (status, body) = app.get(k, &format!("/oauth_clients?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["errors"][0]["source"]["parameter"], param, "{query}");
    }
    let (status, body) = app.get(k, "/oauth_grants?page[size]=1%27--").await;
    assert_eq!(status, 400, "{body}");
    // Both clients are still there.
    let (_, all) = app.get(k, "/oauth_clients").await;
    assert_eq!(all["meta"]["total_results"], 2);
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_utf8_never_breaks_an_endpoint() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let auth = basic(&id, &secret);
    let bearer = format!("Bearer {}", app.admin_key);
    let form = hdr("content-type", b"application/x-www-form-urlencoded");
    let json_ct = hdr("content-type", b"application/json");
    let client = hdr("authorization", auth.as_bytes());
    let admin = hdr("authorization", bearer.as_bytes());
    let cases: Vec<(&str, Headers, &[u8])> = vec![
        (
            "/oauth/token",
            vec![form.clone(), client.clone()],
            b"grant_type=client_credentials&scope=\xff\xfe".as_slice(),
        ),
        (
            "/oauth/token",
            vec![form.clone(), client.clone()],
            b"grant_type=client_%FF&scope=%C3%28".as_slice(),
        ),
        (
            "/oauth/token",
            vec![json_ct.clone(), client.clone()],
            b"{\"grant_type\": \"\xff\"}".as_slice(),
        ),
        (
            "/oauth/token",
            vec![form.clone(), hdr("authorization", b"Basic \xff\xfe")],
            b"grant_type=client_credentials".as_slice(),
        ),
        (
            "/oauth/introspect",
            vec![form.clone(), client.clone()],
            b"token=\xff%FF".as_slice(),
        ),
        (
            "/oauth/revoke",
            vec![json_ct.clone(), client.clone()],
            b"{\"token\": \"\xc3\x28\"}".as_slice(),
        ),
        (
            "/oauth/register",
            vec![json_ct.clone()],
            b"{\"client_name\": \"\xff\", \"redirect_uris\": [\"http://127.0.0.1/cb\"]}".as_slice(),
        ),
        (
            "/oauth_clients",
            vec![json_ct.clone(), admin.clone()],
            b"{\"name\": \"\xed\xa0\x80\"}".as_slice(),
        ),
        (
            "/oauth/grants",
            vec![json_ct.clone(), admin.clone()],
            b"{\"allowed\": true, \"consent_token\": \"\xff\"}".as_slice(),
        ),
    ];
    for (path, headers, body) in cases {
        let h: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let r = raw(&app, reqwest::Method::POST, path, &h, body.to_vec()).await;
        let (status, json) = status_json(r).await;
        let what = format!("{path} {}", String::from_utf8_lossy(body));
        // A body that is not UTF-8 once decoded is malformed: refused, never read with
        // replacement characters.
        assert_client_error(status, &json, &what);
        let form_body = headers
            .iter()
            .any(|(_, v)| v == b"application/x-www-form-urlencoded");
        let lossy = url::form_urlencoded::parse(body).any(|(k, v)| {
            k.contains(char::REPLACEMENT_CHARACTER) || v.contains(char::REPLACEMENT_CHARACTER)
        });
        if form_body && lossy {
            assert_eq!(json["error"], "invalid_request", "{what}: {json}");
        }
    }
    // A bearer credential that is not UTF-8.
    let r = raw(
        &app,
        reqwest::Method::GET,
        "/oauth_clients",
        &[("authorization", b"Bearer \xff\xfe".as_slice())],
        Vec::new(),
    )
    .await;
    let (status, json) = status_json(r).await;
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("unauthorized")),
        "{json}"
    );
    // Query strings: the management list, the authorization endpoint (an HTML page).
    // Not UTF-8 once decoded: refused, not patched with replacement characters.
    let (status, body) = app
        .get(&app.admin_key, "/oauth_clients?filter[name]=%FF%FE")
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not UTF-8"),
        "{body}"
    );
    // Path parameters: a JSON 404, like an unknown id (not the framework's plain-text 400).
    for path in [
        "/oauth_clients/%FF",
        "/oauth_grants/%C3%28",
        "/oauth/consent/%FF",
        "/.well-known/oauth-authorization-server/%FF",
    ] {
        let (status, body) = app.get(&app.admin_key, path).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    let (status, body) = app.delete(&app.admin_key, "/oauth_clients/%FF").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let r = app
        .http
        .get(app.at("/oauth/authorize?client_id=%FF&redirect_uri=%C3%28"))
        .send()
        .await
        .unwrap();
    assert!((400..500).contains(&r.status().as_u16()), "{}", r.status());
    assert!(r.headers().get("location").is_none());
    // The login form.
    let r = raw(
        &app,
        reqwest::Method::POST,
        "/login",
        &[(
            "content-type",
            b"application/x-www-form-urlencoded".as_slice(),
        )],
        b"email=\xff&password=%FF&csrf_token=\xfe".to_vec(),
    )
    .await;
    // Unreadable: the form again, and no session.
    assert_eq!(r.status(), 400);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap().starts_with("oauth_session=")));
    // Nothing was created by any of it.
    let (_, all) = app.get(&app.admin_key, "/oauth_clients").await;
    assert_eq!(all["meta"]["total_results"], 1);
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn repeated_parameters_are_refused_on_every_endpoint() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let auth = basic(&id, &secret);
    let good = crate::oauth_support::cc_token(&app, &id, &secret, None).await;

    let refused = |r: &Resp, name: &str, what: &str| {
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_eq!(r.body["error"], "invalid_request", "{what}");
        let d = r.body["error_description"].as_str().unwrap();
        assert!(
            d.contains(name) && d.contains("more than once"),
            "{what}: {d}"
        );
    };
    // The OAuth endpoints, as forms and as JSON.
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let r = post_form(
            &app,
            path,
            Some(&auth),
            &[
                ("grant_type", "client_credentials"),
                ("token", &good),
                ("token", "other"),
            ],
        )
        .await;
        refused(&r, "token", path);
        let r = app
            .http
            .post(app.at(path))
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"grant_type": "client_credentials", "token": "{good}", "token": null}}"#
            ))
            .send()
            .await
            .unwrap();
        let headers = r.headers().clone();
        let (status, body) = status_json(r).await;
        refused(
            &Resp {
                status,
                headers,
                body,
            },
            "token",
            path,
        );
    }
    // Client credentials in the body, repeated (the one a naive parser would keep differs).
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "wrong"),
            ("client_secret", &secret),
        ],
    )
    .await;
    refused(&r, "client_secret", "client_secret twice");
    // The token is still active: the refused revocations changed nothing.
    let body = crate::oauth_support::introspect_as(&app, &id, &secret, &good).await;
    assert_eq!(body["active"], true);

    // The authorization endpoint: a repeated parameter goes back to the client as an error
    // (a repeated client_id or redirect_uri is a page, tested in authorize.rs).
    let c = app.create_client(&app.admin_key, code_client("App")).await;
    let cid = c["client_id"].as_str().unwrap();
    for key in [
        "scope",
        "state",
        "code_challenge",
        "response_type",
        "resource",
    ] {
        let mut p = standard_params(cid);
        let value = match p.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => v.clone(),
            None => {
                p.push((key, "https://x.example".into()));
                "https://x.example".into()
            }
        };
        p.push((key, value));
        let r = app
            .http
            .get(app.at(&path_of(&p)))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{key}");
        let loc = location(&r);
        assert!(loc.starts_with(REDIRECT), "{key}: {loc}");
        // RFC 8707 §2 lets `resource` repeat: refused as a target, not as a malformed request.
        let expected = if key == "resource" {
            "invalid_target"
        } else {
            "invalid_request"
        };
        assert_eq!(
            param(&loc, "error").as_deref(),
            Some(expected),
            "{key}: {loc}"
        );
        assert!(param(&loc, "code").is_none());
    }

    // Management list queries.
    for query in [
        "/oauth_clients?page[size]=1&page[size]=100",
        "/oauth_clients?filter[client_type]=public&filter%5Bclient_type%5D=confidential",
        "/oauth_grants?page[number]=1&page[number]=2",
    ] {
        let (status, body) = app.get(&app.admin_key, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["errors"][0]["code"], "repeated", "{query}: {body}");
    }

    // The login form: a repeated field is refused before anything else.
    let (csrf, _) = app.login_form().await;
    let r = app
        .http
        .post(app.at("/login"))
        .header("cookie", format!("oauth_login_csrf={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email=admin%40example.com&email=x%40example.com&password=p&csrf_token={csrf}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|v| !v.to_str().unwrap().starts_with("oauth_session=")));
    assert!(r.text().await.unwrap().contains("repeated field"));

    // The consent form: a repeated decision records nothing.
    let user = app.user("alice@example.com", "alice-org").await;
    let cookie = app.session(&user).await;
    let r = app
        .get_with_cookie(&path_of(&standard_params(cid)), &cookie)
        .await;
    let token = param(&location(&r), "consent_token").unwrap();
    let page = app
        .get_with_cookie(&format!("/consent?consent_token={token}"), &cookie)
        .await
        .text()
        .await
        .unwrap();
    let form_csrf = hidden(&page, "csrf_token");
    let r = app
        .http
        .post(app.at("/oauth/grants"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "consent_token={token}&csrf_token={form_csrf}&decision=deny&decision=allow"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("could not be read"));
    let (_, grants) = app.get(&user.api_key, "/oauth_grants").await;
    assert_eq!(grants["meta"]["total_results"], 0);
    // The consent token is still usable.
    let (status, _) = app.decide(&user.api_key, &token, true).await;
    assert_eq!(status, 200);
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn markup_in_every_client_controlled_field_is_inert() {
    let app = TestApp::spawn().await;
    let evil = "<img src=x onerror=alert(1)>\"'&<script>alert(2)</script>";
    let mut body = code_client(evil);
    body["redirect_uris"] = json!(["https://app.example.com/cb?x=<script>alert(3)</script>\"'"]);
    body["policy_uri"] = json!("https://app.example.com/p\"onmouseover=\"alert(4)");
    body["tos_uri"] = json!("https://app.example.com/t'><script>alert(5)</script>");
    let c = app.create_client(&app.admin_key, body).await;
    let id = c["client_id"].as_str().unwrap();
    let user = app.user("alice@example.com", "alice-org").await;
    let cookie = app.session(&user).await;
    let path = authorize_path(&[
        ("response_type", "code"),
        ("client_id", id),
        (
            "redirect_uri",
            "https://app.example.com/cb?x=<script>alert(3)</script>\"'",
        ),
        ("state", "<script>alert(6)</script>"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let r = app.get_with_cookie(&path, &cookie).await;
    assert_eq!(r.status(), 302);
    let token = param(&location(&r), "consent_token").unwrap();
    let r = app
        .get_with_cookie(&format!("/consent?consent_token={token}"), &cookie)
        .await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("<script") && !csp.contains('"'), "{csp}");
    let page = r.text().await.unwrap();
    // The page's own script is its only one (allowed by its hash); nothing of the client's is.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    let own = format!("<script>{}</script>", oauth_server::html::CONSENT_SCRIPT);
    let page = page.replace(&own, "");
    for raw in [
        "<img src=x",
        "<script>",
        "alert(1)>\"",
        "\"onmouseover=\"",
        "'><script",
        "<script>alert(3)",
        "<script>alert(6)",
    ] {
        assert!(!page.contains(raw), "{raw} appears unescaped:\n{page}");
    }
    // The name and the links are shown, escaped.
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt;")
            || page.contains("&#60;img src=x onerror=alert(1)&#62;"),
        "{page}"
    );
    assert!(
        page.contains("onmouseover=&quot;alert(4)") || page.contains("onmouseover=&#34;alert(4)")
    );
    // The placeholder logo shows the first letter or digit of the name.
    assert!(page.contains(">I</div>"), "initial: {page}");

    // A `return_to` with markup on the login page stays inert too.
    let r = app
        .http
        .get(app.at("/login?return_to=%2F%22%3E%3Cscript%3Ealert(7)%3C%2Fscript%3E"))
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(!page.contains("<script>alert(7)"), "{page}");
    assert!(!page.contains("\"><script"), "{page}");
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_and_deeply_nested_json_on_the_oauth_endpoints() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let auth = basic(&id, &secret);
    let nested = format!(
        "{{\"grant_type\": \"client_credentials\", \"x\": {}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let deep_object = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let big = serde_json::to_vec(&json!({
        "grant_type": "client_credentials",
        "pad": "x".repeat(70 * 1024)
    }))
    .unwrap();
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        for (body, status) in [
            (nested.clone().into_bytes(), 400),
            (deep_object.clone().into_bytes(), 400),
            (big.clone(), 413),
        ] {
            let r = app
                .http
                .post(app.at(path))
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let (got, json) = status_json(r).await;
            assert_eq!(got, status, "{path}: {json}");
            assert_eq!(json["error"], "invalid_request", "{path}");
        }
    }
    // Registration and the consent decision.
    for (path, key) in [
        ("/oauth/register", None),
        ("/oauth/grants", Some(&app.admin_key)),
    ] {
        for (body, status) in [
            (deep_object.clone().into_bytes(), 400),
            (
                format!(
                    "{{\"client_name\": {}{}}}",
                    "[".repeat(10_000),
                    "]".repeat(10_000)
                )
                .into_bytes(),
                400,
            ),
            (big.clone(), 413),
        ] {
            let mut rb = app
                .http
                .post(app.at(path))
                .header("content-type", "application/json")
                .body(body);
            if let Some(k) = key {
                rb = rb.bearer_auth(k);
            }
            let (got, json) = status_json(rb.send().await.unwrap()).await;
            assert_eq!(got, status, "{path}: {json}");
            assert_client_error(got, &json, path);
        }
    }
    // Oversized JSON for client_credentials (1 MB of scope) on a small limit: 413 as well.
    let r = post_oauth_json(
        &app,
        "/oauth/token",
        Some(&auth),
        &json!({"grant_type": "client_credentials", "scope": "a ".repeat(512 * 1024)}),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.body);
    // Only the one client exists.
    let (_, all) = app.get(&app.admin_key, "/oauth_clients").await;
    assert_eq!(all["meta"]["total_results"], 1);
}

#[tokio::test]
async fn repeated_json_member_names_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let bearer = format!("Bearer {}", app.admin_key);
    let json_ct: &[(&str, &[u8])] = &[
        ("content-type", b"application/json"),
        ("authorization", bearer.as_bytes()),
    ];
    // Which name wins would depend on the reader; the server refuses to guess.
    let body = br#"{"name":"Benign","client_type":"confidential","allowed_grant_types":["client_credentials"],"allowed_scopes":["admin"],"name":"<script>"}"#;
    let r = raw(
        &app,
        reqwest::Method::POST,
        "/oauth_clients",
        json_ct,
        body.to_vec(),
    )
    .await;
    let (status, json) = status_json(r).await;
    assert_eq!(status, 422, "{json}");
    assert_eq!(json["errors"][0]["source"]["pointer"], "/name", "{json}");
    assert_eq!(json["errors"][0]["code"], "duplicate_member", "{json}");
    let (_, list) = app.get(&app.admin_key, "/oauth_clients").await;
    assert_eq!(
        list["meta"]["total_results"], 0,
        "nothing was created: {list}"
    );

    // An update with a repeated name leaves the client as it was.
    let client = app
        .create_client(&app.admin_key, confidential_client("Original"))
        .await;
    let id = client["client_id"].as_str().unwrap();
    let body = br#"{"name":"A","redirect_uris":["https://a.example/cb"],"name":"B"}"#;
    let path = format!("/oauth_clients/{id}");
    let r = raw(&app, reqwest::Method::PUT, &path, json_ct, body.to_vec()).await;
    let (status, json) = status_json(r).await;
    assert_eq!(status, 422, "{json}");
    let (_, after) = app.get(&app.admin_key, &path).await;
    assert_eq!(after["data"]["name"], "Original");
    assert_eq!(
        after["data"]["redirect_uris"],
        json!(["https://app.example.com/callback"])
    );

    // Dynamic registration reads JSON the same way.
    let body = br#"{"redirect_uris":["https://a.example/cb"],"client_name":"x","client_name":"y"}"#;
    let r = raw(
        &app,
        reqwest::Method::POST,
        "/oauth/register",
        &[("content-type", b"application/json")],
        body.to_vec(),
    )
    .await;
    let status = r.status().as_u16();
    let json: Value = r.json().await.unwrap();
    assert_client_error(status, &json, "register with a repeated member");
    let (_, list) = app.get(&app.admin_key, "/oauth_clients").await;
    assert_eq!(list["meta"]["total_results"], 1, "{list}");
}
