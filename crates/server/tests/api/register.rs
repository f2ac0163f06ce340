//! `POST /oauth/register` (RFC 7591).

use serde_json::{json, Value};

use crate::oauth_support::{basic, post_form};
use crate::support::TestApp;

/// How many clients the store holds in the organization of third-party clients.
pub async fn third_party_clients(app: &TestApp) -> u64 {
    app.server
        .store
        .list_clients(
            oauth_core::client::THIRD_PARTY_ORG_ID,
            &oauth_store::ClientFilter::default(),
            oauth_core::PageSpec {
                number: 1,
                size: 100,
            },
        )
        .await
        .unwrap()
        .total
}

/// POST /oauth/register with `body` (and `bearer`, the initial access token): status and body.
pub(crate) async fn register(app: &TestApp, bearer: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = app.http.post(app.at("/oauth/register")).json(body);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    crate::support::status_json(req.send().await.unwrap()).await
}

#[tokio::test]
async fn open_registration_applies_the_rfc_defaults() {
    let app = TestApp::spawn().await;
    let (status, r) = register(
        &app,
        None,
        &json!({"client_name": "MCP client", "redirect_uris": ["http://127.0.0.1:33418/callback"],
                "software_id": "ignored-unknown-metadata", "contacts": ["a@b.example"]}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["client_name"], "MCP client");
    assert_eq!(r["grant_types"], json!(["authorization_code"]));
    assert_eq!(r["response_types"], json!(["code"]));
    assert_eq!(r["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        r["redirect_uris"],
        json!(["http://127.0.0.1:33418/callback"])
    );
    assert_eq!(r["client_secret_expires_at"], 0);
    let issued = r["client_id_issued_at"].as_i64().unwrap();
    assert!((issued - app.clock.now()).abs() < 5);
    let secret = r["client_secret"].as_str().unwrap();
    let id = r["client_id"].as_str().unwrap();
    assert_eq!(
        r["scope"].as_str().unwrap().split(' ').collect::<Vec<_>>(),
        // Every scope of the catalogue but the management scope.
        vec!["messaging", "voice", "numbers", "billing", "profile"]
    );

    // A third-party client: no user owns it, no organization's member sees it.
    let (status, _) = app
        .get(&app.admin_key, &format!("/oauth_clients/{id}"))
        .await;
    assert_eq!(status, 404);
    let stored = app.stored_client(id).await;
    assert_eq!(stored.origin, oauth_core::ClientOrigin::Registration);
    assert_eq!(stored.org_id, oauth_core::client::THIRD_PARTY_ORG_ID);
    assert_eq!(stored.user_id, "");
    assert!(stored.is_confidential());
    assert!(oauth_core::secret::verify_secret(
        secret,
        &stored.secret_hash.unwrap()
    ));
}

#[tokio::test]
async fn auth_method_none_registers_a_public_client() {
    let app = TestApp::spawn().await;
    let (status, r) = register(
        &app,
        None,
        &json!({"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"], "scope": "messaging voice",
                "logo_uri": "https://app.example.com/logo.png"}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert!(r.get("client_secret").is_none());
    assert!(r.get("client_secret_expires_at").is_none());
    assert_eq!(r["token_endpoint_auth_method"], "none");
    assert_eq!(r["scope"], "messaging voice");
    assert_eq!(r["logo_uri"], "https://app.example.com/logo.png");
    let got = app.stored_client(r["client_id"].as_str().unwrap()).await;
    assert!(!got.is_confidential());
    assert!(got.settings.require_pkce);
}

#[tokio::test]
async fn invalid_metadata_is_refused_with_rfc7591_codes() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (json!({}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://a;b.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example:0/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1:/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://127.1/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://LOCALHOST/cb"]}),
            "invalid_redirect_uri",
        ),
        // A parameter the authorization response adds would appear twice in it.
        (
            json!({"redirect_uris": ["https://app.example/cb?code=fixed&iss=x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "response_types": ["code"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "scope": "admin root"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "scope": "admin"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "response_types": []}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["magic"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": "https://a.example/cb"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "response_types": [], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
    ];
    for (body, code) in cases {
        let (status, err) = register(&app, None, &body).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"], code, "{body}: {err}");
        assert!(!err["error_description"].as_str().unwrap().is_empty());
    }
    let r = app
        .http
        .post(app.at("/oauth/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"], "invalid_client_metadata");
    assert_eq!(third_party_clients(&app).await, 0, "nothing registered");
}

#[tokio::test]
async fn a_machine_client_registers_only_behind_the_token_when_the_operator_allows_it() {
    let body = json!({"grant_types": ["client_credentials"], "response_types": [], "client_name": "worker", "scope": "admin voice"});
    // Open registration: never, whoever asks.
    let app = TestApp::spawn().await;
    for bearer in [None, Some(app.admin_key.as_str())] {
        let (status, err) = register(&app, bearer, &body).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"], "invalid_client_metadata");
    }
    assert_eq!(third_party_clients(&app).await, 0);

    let app = TestApp::spawn_with(|c| {
        c.registration.mode = oauth_server::config::RegistrationMode::Token;
        c.registration.initial_access_token_hash =
            Some(oauth_core::secret::hash_secret("let-me-in"));
        c.registration.allow_client_credentials = true;
    })
    .await;
    let (status, r) = register(&app, Some("let-me-in"), &body).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["response_types"], json!([]));
    // The management scope was narrowed away.
    assert_eq!(r["scope"], "voice");
    assert!(r["client_secret"].is_string());
}

/// The registration access token keeps what the initial access token allowed, and adds no
/// machine grant: a code-flow client cannot turn itself into one by RFC 7592 `PUT`, even where
/// the operator lets machine clients register behind the initial access token.
#[tokio::test]
async fn an_update_never_adds_the_machine_grant() {
    let app = TestApp::spawn_with(|c| {
        c.registration.mode = oauth_server::config::RegistrationMode::Token;
        c.registration.initial_access_token_hash =
            Some(oauth_core::secret::hash_secret("let-me-in"));
        c.registration.allow_client_credentials = true;
    })
    .await;
    let put = |r: &Value, body: Value| {
        let req = app
            .http
            .put(r["registration_client_uri"].as_str().unwrap())
            .bearer_auth(r["registration_access_token"].as_str().unwrap())
            .json(&body);
        async move { crate::support::status_json(req.send().await.unwrap()).await }
    };
    let code_client = json!({"client_name": "app", "redirect_uris": ["https://a.example/cb"],
                             "scope": "voice"});
    let (status, r) = register(&app, Some("let-me-in"), &code_client).await;
    assert_eq!(status, 201, "{r}");
    let id = r["client_id"].as_str().unwrap().to_owned();
    let secret = r["client_secret"].as_str().unwrap().to_owned();
    for grants in [
        json!(["authorization_code", "client_credentials"]),
        json!(["client_credentials"]),
    ] {
        let mut body = code_client.clone();
        body["grant_types"] = grants.clone();
        if grants.as_array().unwrap().len() == 1 {
            body["response_types"] = json!([]);
        }
        let (status, err) = put(&r, body).await;
        assert_eq!(status, 400, "{grants}: {err}");
        assert_eq!(err["error"], "invalid_client_metadata");
        assert!(
            err["error_description"]
                .as_str()
                .unwrap()
                .contains("client_credentials"),
            "{err}"
        );
    }
    // Nothing changed: no machine grant, and no token without a user.
    let stored = app.stored_client(&id).await;
    assert_eq!(
        stored.settings.grant_types,
        [oauth_wire::GrantType::AuthorizationCode]
    );
    let t = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(t.status, 400, "{}", t.body);
    assert_eq!(t.body["error"], "unauthorized_client");
    // A client registered with the machine grant behind the initial access token keeps it.
    let machine = json!({"grant_types": ["client_credentials"], "response_types": [],
                         "client_name": "worker", "scope": "voice"});
    let (status, m) = register(&app, Some("let-me-in"), &machine).await;
    assert_eq!(status, 201, "{m}");
    let mut renamed = machine.clone();
    renamed["client_name"] = json!("worker 2");
    let (status, updated) = put(&m, renamed).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["grant_types"], json!(["client_credentials"]));
    assert_eq!(updated["client_name"], "worker 2");
}

/// Thirty RFC 7592 updates of one registered client at once, half asking for the machine grant
/// and half renaming it, on SQLite and on PostgreSQL: every request for the grant is refused
/// and changes nothing, every rename is kept whole, and the client never gets the grant.
#[tokio::test]
async fn thirty_updates_at_once_never_add_the_machine_grant() {
    let adjust = |c: &mut oauth_server::Config| {
        c.tokens.key_encryption_key = Some(oauth_core::keys::KeyEncryptionKey::generate(
            &mut rand::rngs::OsRng,
        ));
        c.registration.mode = oauth_server::config::RegistrationMode::Token;
        c.registration.initial_access_token_hash =
            Some(oauth_core::secret::hash_secret("let-me-in"));
        c.registration.allow_client_credentials = true;
        c.rate_limits.register_per_ip = oauth_server::config::RateLimit {
            requests: 1000,
            window_secs: 60,
        };
    };
    let apps = crate::databases::on_both_databases(adjust).await;
    for (app, _guard) in &apps {
        let body = json!({"client_name": "app", "redirect_uris": ["https://a.example/cb"]});
        let (status, r) = register(app, Some("let-me-in"), &body).await;
        assert_eq!(status, 201, "{r}");
        let id = r["client_id"].as_str().unwrap().to_owned();
        let secret = r["client_secret"].as_str().unwrap().to_owned();
        let uri = r["registration_client_uri"].as_str().unwrap();
        let token = r["registration_access_token"].as_str().unwrap();
        let bodies: Vec<Value> = (0..30)
            .map(|i| {
                let mut b = body.clone();
                if i % 2 == 0 {
                    b["grant_types"] = json!(["authorization_code", "client_credentials"]);
                } else {
                    b["client_name"] = json!(format!("app {i}"));
                }
                b
            })
            .collect();
        let answers = futures_util::future::join_all(bodies.iter().map(|b| {
            let req = app.http.put(uri).bearer_auth(token).json(b);
            async move { crate::support::status_json(req.send().await.unwrap()).await }
        }))
        .await;
        let mut names = Vec::new();
        for (i, (status, answer)) in answers.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(*status, 400, "update {i}: {answer}");
                assert_eq!(answer["error"], "invalid_client_metadata");
            } else {
                assert_eq!(*status, 200, "update {i}: {answer}");
                assert_eq!(answer["grant_types"], json!(["authorization_code"]));
                names.push(format!("app {i}"));
            }
        }
        let stored = app.stored_client(&id).await;
        assert_eq!(
            stored.settings.grant_types,
            [oauth_wire::GrantType::AuthorizationCode]
        );
        assert!(
            names.contains(&stored.settings.name),
            "{}",
            stored.settings.name
        );
        let t = post_form(
            app,
            "/oauth/token",
            Some(&basic(&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(t.status, 400, "{}", t.body);
        assert_eq!(t.body["error"], "unauthorized_client");
    }
}

/// A client as registration stores it, registered at `now` from `req` under a policy that
/// allows the machine grant (the operator's switch is the handler's business, not the store's).
fn registered_client(
    id: &str,
    req: oauth_wire::RegistrationRequest,
    now: i64,
) -> oauth_core::Client {
    let catalogue = oauth_core::ScopeCatalogue::default();
    let defaults = catalogue.third_party_names();
    let policy = oauth_core::RegistrationPolicy {
        catalogue: &catalogue,
        default_scopes: &defaults,
        allow_client_credentials: true,
        allow_http_loopback: false,
    };
    let draft = oauth_core::ClientDraft::from_registration(req, &policy).unwrap();
    let (client, _) = oauth_core::Client::new(
        id.into(),
        draft,
        oauth_core::ClientOrigin::Registration,
        (oauth_core::client::THIRD_PARTY_ORG_ID, ""),
        now,
        &mut rand::rngs::OsRng,
    );
    client
}

/// A machine client registered while the operator allowed it keeps its grant through its own
/// updates after the operator stops allowing new ones (here: open registration), and a
/// code-flow client still cannot add it.
#[tokio::test]
async fn a_machine_client_keeps_its_grant_once_the_operator_stops_allowing_new_ones() {
    let app = TestApp::spawn().await;
    let machine = json!({"grant_types": ["client_credentials"], "response_types": [],
                         "client_name": "worker", "scope": "voice"});
    let client = registered_client(
        "earlier-machine",
        serde_json::from_value(machine.clone()).unwrap(),
        app.clock.now(),
    );
    app.server
        .store
        .register_client(&client, &oauth_core::secret::hash_secret("its-token"))
        .await
        .unwrap();
    let put = |id: &str, token: &str, body: &Value| {
        let req = app
            .http
            .put(app.at(&format!("/oauth/register/{id}")))
            .bearer_auth(token)
            .json(body);
        async move { crate::support::status_json(req.send().await.unwrap()).await }
    };
    let mut renamed = machine.clone();
    renamed["client_name"] = json!("worker 2");
    let (status, updated) = put("earlier-machine", "its-token", &renamed).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["grant_types"], json!(["client_credentials"]));
    assert_eq!(updated["client_name"], "worker 2");
    // A code-flow client registered now cannot add it.
    let (status, r) = register(
        &app,
        None,
        &json!({"redirect_uris": ["https://a.example/cb"], "client_name": "app"}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let (status, err) = put(
        r["client_id"].as_str().unwrap(),
        r["registration_access_token"].as_str().unwrap(),
        &json!({"redirect_uris": ["https://a.example/cb"], "client_name": "app",
                "grant_types": ["authorization_code", "client_credentials"]}),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"], "invalid_client_metadata");
    let stored = app.stored_client(r["client_id"].as_str().unwrap()).await;
    assert_eq!(
        stored.settings.grant_types,
        [oauth_wire::GrantType::AuthorizationCode]
    );
}

#[tokio::test]
async fn token_mode_requires_the_initial_access_token() {
    let app = TestApp::spawn_with(|c| {
        c.registration.mode = oauth_server::config::RegistrationMode::Token;
        c.registration.initial_access_token_hash =
            Some(oauth_core::secret::hash_secret("let-me-in"));
    })
    .await;
    let body = json!({"redirect_uris": ["https://a.example/cb"]});
    for bearer in [None, Some("wrong"), Some(app.admin_key.as_str())] {
        let (status, err) = register(&app, bearer, &body).await;
        assert_eq!(status, 401, "{bearer:?}");
        let code = if bearer.is_some() {
            "invalid_token"
        } else {
            "unauthorized"
        };
        assert_eq!(err["error"], code, "{bearer:?}: {err}");
    }
    // RFC 6750 §3.1: without a bearer token (none, or another scheme), no error code in the
    // challenge; with a wrong one, invalid_token.
    for (authorization, challenge) in [
        (None, "Bearer"),
        (Some("Basic eDp5"), "Bearer"),
        (Some("Bearer wrong"), "Bearer error=\"invalid_token\""),
    ] {
        let mut req = app.http.post(app.at("/oauth/register")).json(&body);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()["www-authenticate"],
            challenge,
            "{authorization:?}"
        );
    }
    let (status, r) = register(&app, Some("let-me-in"), &body).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(third_party_clients(&app).await, 1);
    let (_, list) = app.get(&app.admin_key, "/oauth_clients").await;
    assert_eq!(list["meta"]["total_results"], 0);
}

#[tokio::test]
async fn a_configured_registration_organization_gets_no_registered_clients() {
    let args = oauth_server::config::ConfigArgs {
        env: vec![("OAUTH_REGISTRATION_ORG".into(), "mcp".into())],
        ..Default::default()
    };
    let config = oauth_server::config::Config::load(&args).unwrap();
    // An older configuration still starts, and is told that the setting is ignored.
    assert!(
        config
            .notices
            .iter()
            .any(|n| n.contains("registration.organization")),
        "{:?}",
        config.notices
    );
    let app = TestApp::spawn().await;
    let owner = app.user("owner@mcp.example", "mcp").await;
    let (status, r) = register(
        &app,
        None,
        &json!({"redirect_uris": ["https://a.example/cb"]}),
    )
    .await;
    assert_eq!(status, 201);
    let id = r["client_id"].as_str().unwrap();
    for key in [&owner.api_key, &app.admin_key] {
        let (status, _) = app.get(key, &format!("/oauth_clients/{id}")).await;
        assert_eq!(status, 404);
        let (_, list) = app.get(key, "/oauth_clients").await;
        assert_eq!(list["meta"]["total_results"], 0);
    }
}

/// A registrant's update that changes what users see clears the operator's verified mark, and
/// the `client.updated` event says so.
#[tokio::test]
async fn a_registrants_update_that_clears_the_verified_mark_says_so() {
    let app = TestApp::spawn().await;
    let body = json!({"client_name": "MCP client", "token_endpoint_auth_method": "none",
                      "redirect_uris": ["http://127.0.0.1:33418/callback"]});
    let (status, r) = register(&app, None, &body).await;
    assert_eq!(status, 201, "{r}");
    let id = r["client_id"].as_str().unwrap().to_owned();
    assert!(app
        .server
        .store
        .set_client_verified(&id, true, app.clock.now())
        .await
        .unwrap()
        .is_some());
    let mut renamed = body.clone();
    renamed["client_name"] = json!("Renamed");
    let r = app
        .http
        .put(r["registration_client_uri"].as_str().unwrap())
        .bearer_auth(r["registration_access_token"].as_str().unwrap())
        .json(&renamed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!app.stored_client(&id).await.verified);
    let updated = app.events("client.updated").await;
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0].detail["verified_cleared"], true);
}

/// RFC 7592 §2.2: an update repeats the client's `client_id`, and a `client_secret` it sends
/// must be the one issued. Another id, or a secret of the client's choosing, is refused and
/// changes nothing; leaving both out is accepted.
#[tokio::test]
async fn an_update_naming_another_client_or_another_secret_is_refused() {
    let app = TestApp::spawn().await;
    let body = json!({"client_name": "Web app", "token_endpoint_auth_method": "client_secret_basic",
                      "redirect_uris": ["https://app.example.com/cb"]});
    let (status, r) = register(&app, None, &body).await;
    assert_eq!(status, 201, "{r}");
    let id = r["client_id"].as_str().unwrap().to_owned();
    let secret = r["client_secret"].as_str().unwrap().to_owned();
    let token = r["registration_access_token"].as_str().unwrap().to_owned();
    let (_, other) = register(&app, None, &body).await;
    let other_id = other["client_id"].as_str().unwrap();
    let put = |json: Value| {
        let req = app
            .http
            .put(app.at(&format!("/oauth/register/{id}")))
            .bearer_auth(&token)
            .json(&json);
        async move { crate::support::status_json(req.send().await.unwrap()).await }
    };
    let update = |extra: Value| {
        let mut b = json!({"client_name": "Renamed", "token_endpoint_auth_method": "client_secret_basic",
                           "redirect_uris": ["https://app.example.com/cb"]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (extra, needle) in [
        (json!({"client_id": other_id}), "client_id"),
        (json!({"client_id": ""}), "client_id"),
        (
            json!({"client_id": id, "client_secret": "my-own-choice"}),
            "client_secret",
        ),
        (
            json!({"client_secret": other["client_secret"]}),
            "client_secret",
        ),
    ] {
        let (status, e) = put(update(extra.clone())).await;
        assert_eq!(status, 400, "{extra}: {e}");
        assert_eq!(e["error"], "invalid_client_metadata", "{e}");
        assert!(
            e["error_description"].as_str().unwrap().contains(needle),
            "{e}"
        );
        assert_eq!(app.stored_client(&id).await.settings.name, "Web app");
    }
    // A member of the wrong type is named by its pointer, as at registration.
    let (status, e) = put(update(json!({"client_name": 5}))).await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("/client_name"),
        "{e}"
    );
    let (status, e) = put(update(json!({"client_id": 7}))).await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("client_id"),
        "{e}"
    );
    // The issued values, or none at all, are accepted; the secret is not changed by either.
    let (status, e) = put(update(json!({"client_id": id, "client_secret": secret}))).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(app.stored_client(&id).await.settings.name, "Renamed");
    let (status, e) = put(update(json!({"client_name": "Again"}))).await;
    assert_eq!(status, 200, "{e}");
    let stored = app.stored_client(&id).await;
    assert_eq!(stored.settings.name, "Again");
    assert!(oauth_core::secret::verify_secret(
        &secret,
        stored.secret_hash.as_deref().unwrap()
    ));
}

/// RFC 7592: the registrant reads, updates and deletes its client with the registration
/// access token it was given; that token is stored only hashed; any other token is 401 and
/// changes nothing.
#[tokio::test]
async fn the_registrant_manages_its_client_with_the_registration_access_token() {
    let app = TestApp::spawn().await;
    let body = json!({"client_name": "MCP client", "token_endpoint_auth_method": "none",
                      "redirect_uris": ["http://127.0.0.1:33418/callback"]});
    let (status, r) = register(&app, None, &body).await;
    assert_eq!(status, 201, "{r}");
    let id = r["client_id"].as_str().unwrap().to_owned();
    let token = r["registration_access_token"].as_str().unwrap().to_owned();
    let uri = r["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(uri, format!("{}/oauth/register/{id}", app.server.issuer));
    let stored = app
        .server
        .store
        .registration_token_hash(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, oauth_core::secret::hash_secret(&token));
    assert_ne!(stored, token);
    let (_, other) = register(&app, None, &body).await;
    let other_token = other["registration_access_token"].as_str().unwrap();

    let send = |method: reqwest::Method, bearer: Option<&str>, json: Option<&Value>| {
        let mut req = app.http.request(method, &uri);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(j) = json {
            req = req.json(j);
        }
        async move { crate::support::status_json(req.send().await.unwrap()).await }
    };
    let (status, read) = send(reqwest::Method::GET, Some(&token), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["client_id"], id.as_str());
    assert_eq!(read["client_name"], "MCP client");
    assert_eq!(read["registration_client_uri"], uri.as_str());
    // RFC 7592 §3: the token goes with the information; it is not rotated.
    assert_eq!(read["registration_access_token"], token.as_str());
    assert!(read.get("client_secret").is_none());

    // Wrong and another client's tokens: 401 invalid_token, for every method; no token at
    // all: 401 without an error code in the challenge (RFC 6750 §3.1).
    let update = json!({"client_name": "Renamed", "token_endpoint_auth_method": "none",
                        "redirect_uris": ["https://mcp.example.com/cb"]});
    for bearer in [Some("wrong"), None, Some(other_token)] {
        let code = if bearer.is_some() {
            "invalid_token"
        } else {
            "unauthorized"
        };
        for (method, json) in [
            (reqwest::Method::PUT, Some(&update)),
            (reqwest::Method::DELETE, None),
        ] {
            let (status, e) = send(method.clone(), bearer, json).await;
            assert_eq!(status, 401, "{method} {bearer:?}: {e}");
            assert_eq!(e["error"], code, "{method} {bearer:?}: {e}");
        }
        let mut req = app.http.get(&uri);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let r = req.send().await.unwrap();
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        let (status, e) = crate::support::status_json(r).await;
        assert_eq!(status, 401, "GET {bearer:?}: {e}");
        assert_eq!(e["error"], code, "GET {bearer:?}: {e}");
        let expected = if bearer.is_some() {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        };
        assert_eq!(challenge, expected, "{bearer:?}");
    }
    let unchanged = app.stored_client(&id).await;
    assert_eq!(unchanged.settings.name, "MCP client");

    // A body that is not JSON, or too large, keeps its own status (as at registration):
    // 415 and 413, not invalid_client_metadata; malformed JSON is invalid_client_metadata.
    // Nothing changes.
    for (content_type, body, expected, error) in [
        ("text/plain", b"{}".to_vec(), 415, "invalid_request"),
        (
            "application/json",
            vec![b' '; 70_000],
            413,
            "invalid_request",
        ),
        (
            "application/json",
            b"{".to_vec(),
            400,
            "invalid_client_metadata",
        ),
    ] {
        let r = app
            .http
            .put(&uri)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, e) = crate::support::status_json(r).await;
        assert_eq!(status, expected, "{content_type}: {e}");
        assert_eq!(e["error"], error, "{content_type}: {e}");
    }
    assert_eq!(app.stored_client(&id).await, unchanged);

    // An update under the registration rules; the client type cannot change.
    let (status, e) = send(
        reqwest::Method::PUT,
        Some(&token),
        Some(
            &json!({"client_name": "X", "redirect_uris": ["https://mcp.example.com/cb"],
                     "token_endpoint_auth_method": "client_secret_basic"}),
        ),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"], "invalid_client_metadata");
    let (status, e) = send(
        reqwest::Method::PUT,
        Some(&token),
        Some(
            &json!({"client_name": "X", "redirect_uris": ["http://evil.example/cb"],
                     "token_endpoint_auth_method": "none"}),
        ),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"], "invalid_redirect_uri");
    let (status, updated) = send(reqwest::Method::PUT, Some(&token), Some(&update)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["client_name"], "Renamed");
    assert_eq!(updated["registration_access_token"], token.as_str());
    assert_eq!(
        app.server.store.registration_token_hash(&id).await.unwrap(),
        Some(oauth_core::secret::hash_secret(&token))
    );
    let stored = app.stored_client(&id).await;
    assert_eq!(stored.settings.name, "Renamed");
    assert_eq!(
        stored.settings.redirect_uris,
        ["https://mcp.example.com/cb"]
    );
    assert!(!stored.settings.scopes.contains(&"admin".to_owned()));

    let (status, _) = send(reqwest::Method::DELETE, Some(&token), None).await;
    assert_eq!(status, 204);
    assert!(app.server.store.get_client(&id).await.unwrap().is_none());
    assert!(app
        .server
        .store
        .registration_token_hash(&id)
        .await
        .unwrap()
        .is_none());
    let (status, _) = send(reqwest::Method::GET, Some(&token), None).await;
    assert_eq!(status, 401);
    // The other registrant's client stands.
    let other_id = other["client_id"].as_str().unwrap();
    assert!(app
        .server
        .store
        .get_client(other_id)
        .await
        .unwrap()
        .is_some());
}

/// Thirty deletions of one registration at once, with updates among them, on SQLite and on
/// PostgreSQL: one deletion deletes it and records one event; every other request is told the
/// token names no client (401 `invalid_token`), never that it succeeded.
#[tokio::test]
async fn thirty_deletions_at_once_delete_once() {
    let adjust = |c: &mut oauth_server::Config| {
        c.tokens.key_encryption_key = Some(oauth_core::keys::KeyEncryptionKey::generate(
            &mut rand::rngs::OsRng,
        ));
        c.rate_limits.register_per_ip = oauth_server::config::RateLimit {
            requests: 1000,
            window_secs: 60,
        };
    };
    let apps = crate::databases::on_both_databases(adjust).await;
    for (app, _guard) in &apps {
        let body = json!({"client_name": "app", "token_endpoint_auth_method": "none",
                          "redirect_uris": ["https://a.example/cb"]});
        let (status, r) = register(app, None, &body).await;
        assert_eq!(status, 201, "{r}");
        let id = r["client_id"].as_str().unwrap().to_owned();
        let uri = r["registration_client_uri"].as_str().unwrap();
        let token = r["registration_access_token"].as_str().unwrap();
        let answers = futures_util::future::join_all((0..30).map(|i| {
            let req = if i % 5 == 4 {
                app.http.put(uri).json(&body)
            } else {
                app.http.delete(uri)
            };
            let req = req.bearer_auth(token);
            async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                (i, status, text)
            }
        }))
        .await;
        let deleted: Vec<_> = answers
            .iter()
            .filter(|(i, s, _)| i % 5 != 4 && *s == 204)
            .collect();
        assert_eq!(deleted.len(), 1, "{answers:?}");
        for (i, status, text) in &answers {
            match status {
                204 => assert!(i % 5 != 4),
                200 => assert!(i % 5 == 4, "only an update before the deletion: {text}"),
                401 => {
                    let e: Value = serde_json::from_str(text).unwrap();
                    assert_eq!(e["error"], "invalid_token", "{text}");
                }
                other => panic!("{other}: {text}"),
            }
        }
        assert!(app.server.store.get_client(&id).await.unwrap().is_none());
        let events = app.events("client.deleted").await;
        let of_this: Vec<_> = events
            .iter()
            .filter(|e| e.client_id.as_deref() == Some(id.as_str()))
            .collect();
        assert_eq!(of_this.len(), 1, "{events:?}");
    }
}

/// The registration access token's storage on both engines: stored with its client in one
/// write (a reused id writes neither), and gone with it (PostgreSQL when
/// `OAUTH_TEST_POSTGRES_URL` is set).
#[tokio::test]
async fn registration_tokens_are_stored_with_their_client_and_deleted_with_it() {
    let mut stores = vec![crate::db::sqlite().await];
    if let Some(pg) = crate::db::postgres().await {
        stores.push(pg);
    }
    for (store, _guard) in stores {
        let client = registered_client(
            "reg-token-client",
            oauth_wire::RegistrationRequest::new()
                .client_name("Stored")
                .redirect_uris(["https://a.example/cb"])
                .token_endpoint_auth_method(oauth_wire::TokenEndpointAuthMethod::None),
            1_900_000_000,
        );
        assert_eq!(
            store
                .registration_token_hash("reg-token-client")
                .await
                .unwrap(),
            None
        );
        store.register_client(&client, "h1").await.unwrap();
        // The id again: refused whole, the first token's hash stands.
        let again = store.register_client(&client, "h2").await;
        assert!(
            matches!(again, Err(oauth_store::StoreError::Conflict(_))),
            "{again:?}"
        );
        assert_eq!(
            store
                .registration_token_hash("reg-token-client")
                .await
                .unwrap()
                .as_deref(),
            Some("h1")
        );
        assert!(store
            .delete_client(oauth_core::client::THIRD_PARTY_ORG_ID, "reg-token-client")
            .await
            .unwrap());
        assert_eq!(
            store
                .registration_token_hash("reg-token-client")
                .await
                .unwrap(),
            None
        );
        store.close().await;
    }
}

/// `application_type` (OpenID Connect Dynamic Registration): checked against the redirect URIs
/// when sent, kept, and returned by registration and by RFC 7592 reads; a refusal stores
/// nothing.
#[tokio::test]
async fn application_type_must_fit_the_redirect_uris() {
    let app = TestApp::spawn().await;
    let before = third_party_clients(&app).await;
    for (kind, uri, code) in [
        (
            "native",
            "https://app.example.com/cb",
            "invalid_redirect_uri",
        ),
        (
            "native",
            "http://app.example.com/cb",
            "invalid_redirect_uri",
        ),
        ("web", "http://127.0.0.1:33418/cb", "invalid_redirect_uri"),
        ("web", "https://localhost/cb", "invalid_redirect_uri"),
        ("web", "com.example.app:/cb", "invalid_redirect_uri"),
        (
            "desktop",
            "https://app.example.com/cb",
            "invalid_client_metadata",
        ),
    ] {
        let (status, r) = register(
            &app,
            None,
            &json!({"client_name": "Typed", "token_endpoint_auth_method": "none",
                    "application_type": kind, "redirect_uris": [uri]}),
        )
        .await;
        assert_eq!(
            (status, r["error"].as_str()),
            (400, Some(code)),
            "{kind} {uri}: {r}"
        );
        assert!(
            r["error_description"].as_str().unwrap().contains(kind),
            "{r}"
        );
    }
    assert_eq!(third_party_clients(&app).await, before, "nothing stored");

    let (status, r) = register(
        &app,
        None,
        &json!({"client_name": "Desktop", "token_endpoint_auth_method": "none",
                "application_type": "native",
                "redirect_uris": ["http://127.0.0.1:33418/cb", "com.example.app:/cb"]}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["application_type"], "native");
    let id = r["client_id"].as_str().unwrap();
    let stored = app.stored_client(id).await;
    assert_eq!(stored.settings.application_type.as_deref(), Some("native"));
    let read = app
        .http
        .get(r["registration_client_uri"].as_str().unwrap())
        .bearer_auth(r["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["application_type"], "native");

    // Not sent: not checked, and not invented (an MCP client's loopback redirect is fine).
    let (status, r) = register(
        &app,
        None,
        &json!({"client_name": "Plain", "token_endpoint_auth_method": "none",
                "redirect_uris": ["http://127.0.0.1:1/cb", "https://app.example.com/cb"]}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert!(r.get("application_type").is_none(), "{r}");
}
