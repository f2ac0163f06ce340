//! The trust model (docs/threat-model.md), principal by principal: what an anonymous caller, a
//! registered (third-party) client, a first-party client, a user and an organization's
//! credential can reach, and the side effects of an attack that must stay with the attacker.

use oauth_core::jwt::{self, AccessTokenClaims};
use serde_json::{json, Value};

use crate::flow::{location, param, path_of, standard_params, REDIRECT, VERIFIER};
use crate::oauth_support::{basic, cc_client, cc_request, cc_token, inactive, post_form, Resp};
use crate::register::{register, third_party_clients};
use crate::support::TestApp;

/// Signs `claims` with the server's own current key, as if the server had issued them.
fn sign(app: &TestApp, claims: &AccessTokenClaims) -> String {
    let key = app.server.keys.signing_key(app.clock.now()).unwrap();
    jwt::encode_access_token(&key, claims).unwrap()
}

fn claims(app: &TestApp, client_id: &str, sub: &str, scope: &str) -> AccessTokenClaims {
    let now = app.clock.now();
    AccessTokenClaims {
        iss: app.server.issuer.clone(),
        sub: sub.to_owned(),
        aud: app.server.issuer.clone(),
        client_id: client_id.to_owned(),
        scope: scope.to_owned(),
        iat: now,
        exp: now + 600,
        jti: uuid::Uuid::new_v4().to_string(),
        grant_id: None,
        family_id: None,
    }
}

/// A consent token for `client_id` with these scopes, the user acting through `key`.
async fn consent_for(app: &TestApp, key: &str, client_id: &str, scope: &str) -> String {
    let mut params = standard_params(client_id);
    params.retain(|(k, _)| *k != "scope");
    params.push(("scope", scope.to_owned()));
    app.consent_token(key, &path_of(&params)).await
}

/// The code of an approved consent.
async fn approve(app: &TestApp, key: &str, consent: &str) -> String {
    let (status, r) = app.decide(key, consent, true).await;
    assert_eq!(status, 200, "{r}");
    param(r["redirect_uri"].as_str().unwrap(), "code").unwrap()
}

async fn exchange(app: &TestApp, auth: &str, code: &str) -> Resp {
    post_form(
        app,
        "/oauth/token",
        Some(auth),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

async fn refresh(app: &TestApp, auth: &str, token: &str) -> Resp {
    post_form(
        app,
        "/oauth/token",
        Some(auth),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn introspect_bearer(app: &TestApp, bearer: &str, token: &str) -> Resp {
    post_form(
        app,
        "/oauth/introspect",
        Some(&format!("Bearer {bearer}")),
        &[("token", token)],
    )
    .await
}

/// A third-party confidential code-flow client registered anonymously: (id, Basic header).
async fn registered_code_client(app: &TestApp, scope: Option<&str>) -> (String, String) {
    let mut body = json!({
        "client_name": "Third party",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
    });
    if let Some(s) = scope {
        body["scope"] = json!(s);
    }
    let (status, r) = register(app, None, &body).await;
    assert_eq!(status, 201, "{r}");
    let id = r["client_id"].as_str().unwrap().to_owned();
    let secret = r["client_secret"].as_str().unwrap();
    let auth = basic(&id, secret);
    (id, auth)
}

/// A first-party code-flow client of the admin's organization: (id, Basic header).
async fn first_party_code_client(app: &TestApp) -> (String, String) {
    let c = app
        .create_client(&app.admin_key, crate::flow::code_client("First party"))
        .await;
    let id = c["client_id"].as_str().unwrap().to_owned();
    let auth = basic(&id, c["client_secret"].as_str().unwrap());
    (id, auth)
}

/// A registered client's `scope` is what it asks for by default, not a ceiling: when a
/// resource asks for more (MCP's step-up), the client asks the user again for any scope open to
/// third parties and needs no new registration. The token, its refreshes and introspection all
/// carry what the user approved; the management scope stays out of reach; a scope the catalogue
/// does not have is refused.
#[tokio::test]
async fn a_registered_client_steps_up_beyond_its_registered_scope() {
    let app = TestApp::spawn().await;
    let (id, auth) = registered_code_client(&app, Some("messaging")).await;
    let secret = auth.clone();
    let consent = consent_for(&app, &app.admin_key, &id, "messaging voice").await;
    let code = approve(&app, &app.admin_key, &consent).await;
    let issued = exchange(&app, &auth, &code).await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert_eq!(issued.body["scope"], "messaging voice");
    let refreshed = refresh(&app, &auth, issued.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(refreshed.body["scope"], "messaging voice");
    let seen = post_form(
        &app,
        "/oauth/introspect",
        Some(&secret),
        &[("token", refreshed.body["access_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(seen.body["active"], true, "{}", seen.body);
    assert_eq!(seen.body["scope"], "messaging voice");
    // Its registration is unchanged: the step up is the user's grant, not the client's.
    assert_eq!(app.stored_client(&id).await.settings.scopes, ["messaging"]);
    // admin is narrowed away as always, and an unknown scope is an error.
    let mut params = standard_params(&id);
    params.retain(|(k, _)| *k != "scope");
    let ask = |scope: &str| {
        let mut p = params.clone();
        p.push(("scope", scope.to_owned()));
        path_of(&p)
    };
    let consent = app.consent_token(&app.admin_key, &ask("admin voice")).await;
    let code = approve(&app, &app.admin_key, &consent).await;
    let issued = exchange(&app, &auth, &code).await;
    assert_eq!(issued.body["scope"], "voice", "{}", issued.body);
    // An empty `scope` is no scope: the registered one, not every scope it could ask for.
    for empty in ["", "  "] {
        let consent = app.consent_token(&app.admin_key, &ask(empty)).await;
        let code = approve(&app, &app.admin_key, &consent).await;
        let issued = exchange(&app, &auth, &code).await;
        assert_eq!(
            issued.body["scope"], "messaging",
            "{empty:?}: {}",
            issued.body
        );
    }
    let r = app
        .http
        .get(app.at(&ask("voice unheard-of")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    // An unverified third party: a page that offers the way back, with the error.
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("invalid_scope"), "{page}");
    assert!(page.contains("error=invalid_scope"), "{page}");
}

#[tokio::test]
async fn the_reported_attack_gets_nothing() {
    // Anonymous registration of a client_credentials client with the management scope, then a
    // token with that scope: the way in that the default configuration used to leave open.
    let app = TestApp::spawn().await;
    let victim = app
        .create_client(
            &app.admin_key,
            crate::support::confidential_client("Victim"),
        )
        .await;
    let victim_id = victim["client_id"].as_str().unwrap();
    let (status, err) = register(
        &app,
        None,
        &json!({"grant_types": ["client_credentials"], "response_types": [], "scope": "admin"}),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"], "invalid_client_metadata");
    assert_eq!(third_party_clients(&app).await, 0);

    // The nearest thing open registration allows: a code-flow client asking for admin gets
    // everything but admin.
    let (status, r) = register(
        &app,
        None,
        &json!({"redirect_uris": [REDIRECT], "scope": "admin messaging"}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["scope"], "messaging");
    let id = r["client_id"].as_str().unwrap();
    let auth = basic(id, r["client_secret"].as_str().unwrap());
    let t = post_form(
        &app,
        "/oauth/token",
        Some(&auth),
        &[("grant_type", "client_credentials"), ("scope", "admin")],
    )
    .await;
    assert_eq!(t.status, 400, "{}", t.body);
    assert_eq!(t.body["error"], "unauthorized_client");

    // The victim's client is untouched.
    let (status, got) = app
        .get(&app.admin_key, &format!("/oauth_clients/{victim_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["data"]["name"], "Victim");
    let events = app
        .server
        .store
        .list_security_events(
            &oauth_store::SecurityEventFilter {
                kind: Some("client.updated".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
}

#[tokio::test]
async fn a_third_party_token_never_acts_on_the_management_api() {
    let app = TestApp::spawn().await;
    let (id, auth) = registered_code_client(&app, None).await;
    // A real authorization of the third party by the admin, with the scopes it may have.
    let consent = consent_for(&app, &app.admin_key, &id, "messaging").await;
    let code = approve(&app, &app.admin_key, &consent).await;
    let issued = exchange(&app, &auth, &code).await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let (_, real) = crate::oauth_support::jwt_parts(issued.body["access_token"].as_str().unwrap());
    // Even a token that carries admin (as one issued before the trust model could) with that
    // live grant and family: 403 insufficient_scope, on the management API and at
    // introspection. With no grant at all it would be a client-credentials token, and this
    // client has no such grant: not active, 401. Nothing is listed, nothing introspected.
    for from_grant in [true, false] {
        let mut c = claims(&app, &id, real["sub"].as_str().unwrap(), "admin messaging");
        if from_grant {
            c.grant_id = real["grant_id"].as_str().map(str::to_owned);
            c.family_id = real["family_id"].as_str().map(str::to_owned);
        }
        // Introspection answers an unknown bearer as the management API does (RFC 7662 §2.3).
        let (status, error, at_introspection) = match from_grant {
            true => (403, "insufficient_scope", "insufficient_scope"),
            false => (401, "invalid_token", "invalid_token"),
        };
        let token = sign(&app, &c);
        let (got, err) = app.get(&token, "/oauth_clients").await;
        assert_eq!(got, status, "{err}");
        assert_eq!(err["error"], error, "{err}");
        assert!(err.get("data").is_none());
        let r = introspect_bearer(&app, &token, &token).await;
        assert_eq!(r.status, status, "{}", r.body);
        assert_eq!(r.body["error"], at_introspection, "{}", r.body);
        assert!(r.body.get("active").is_none());
    }
    // A client_credentials token of a third-party client (allowed behind the initial access
    // token) acts for no user.
    let app = TestApp::spawn_with(|c| {
        c.registration.mode = oauth_server::config::RegistrationMode::Token;
        c.registration.initial_access_token_hash = Some(oauth_core::secret::hash_secret("iat"));
        c.registration.allow_client_credentials = true;
    })
    .await;
    let (status, r) = register(
        &app,
        Some("iat"),
        &json!({"grant_types": ["client_credentials"], "response_types": [], "scope": "voice"}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let id = r["client_id"].as_str().unwrap();
    let token = cc_token(&app, id, r["client_secret"].as_str().unwrap(), None).await;
    let (_, claims) = crate::oauth_support::jwt_parts(&token);
    assert_eq!(claims["scope"], "voice");
    assert_eq!(claims["sub"], id);
    let (status, _) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 403);
    let forged = sign(&app, &self::claims(&app, id, id, "admin voice"));
    let (status, _) = app.get(&forged, "/oauth_clients").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn first_party_client_credentials_act_for_their_creator() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let token = cc_token(&app, &id, &secret, Some("admin")).await;
    let (status, list) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["meta"]["total_results"], 1);
    // Without the management scope: 403.
    let token = cc_token(&app, &id, &secret, Some("messaging")).await;
    let (status, _) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn only_its_creator_may_let_a_clients_secret_act_for_them() {
    let app = TestApp::spawn().await;
    let other = app.user("colleague@example.com", "default").await;
    // The admin creates a web app with the management scope, for users' grants only.
    let web = app
        .create_client(
            &app.admin_key,
            json!({"name": "Web app", "client_type": "confidential",
                   "allowed_grant_types": ["authorization_code"],
                   "allowed_scopes": ["admin", "messaging"],
                   "redirect_uris": ["https://app.example.com/cb"]}),
        )
        .await;
    let (id, secret) = (
        web["client_id"].as_str().unwrap().to_owned(),
        web["client_secret"].as_str().unwrap().to_owned(),
    );
    let path = format!("/oauth_clients/{id}");
    let machine = json!({"allowed_grant_types": ["authorization_code", "client_credentials"]});
    // Another member of the organization may not add client_credentials: the secret would
    // then act for the admin.
    let (status, body) = app.put_json(&other.api_key, &path, &machine).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["errors"][0]["source"]["pointer"], "/allowed_grant_types",
        "{body}"
    );
    assert_eq!(body["errors"][0]["code"], "creator_only", "{body}");
    let (_, got) = app.get(&app.admin_key, &path).await;
    assert_eq!(
        got["data"]["allowed_grant_types"],
        json!(["authorization_code"])
    );
    let r = cc_request(&app, &id, &secret, Some("admin")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"], "unauthorized_client", "{}", r.body);
    assert!(app.events("client.updated").await.is_empty());
    // Nor may they add the management scope to a machine client without it.
    let (svc, svc_secret) = crate::oauth_support::cc_client_with(
        &app,
        &app.admin_key,
        json!({"name": "Service", "client_type": "confidential",
               "allowed_grant_types": ["client_credentials"], "allowed_scopes": ["messaging"]}),
    )
    .await;
    let svc_path = format!("/oauth_clients/{svc}");
    let (status, body) = app
        .put_json(
            &other.api_key,
            &svc_path,
            &json!({"allowed_scopes": ["admin", "messaging"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["errors"][0]["source"]["pointer"], "/allowed_scopes",
        "{body}"
    );
    let r = cc_request(&app, &svc, &svc_secret, Some("admin")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_scope", "{}", r.body);
    // The creator may; the token then acts for the creator.
    let (status, body) = app.put_json(&app.admin_key, &path, &machine).await;
    assert_eq!(status, 200, "{body}");
    let token = cc_token(&app, &id, &secret, Some("admin")).await;
    let (status, list) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 200, "{list}");
    // Once it has the power, another member may still change the client and take it away.
    let (status, body) = app
        .put_json(&other.api_key, &path, &json!({"name": "Web app (renamed)"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .put_json(
            &other.api_key,
            &path,
            &json!({"allowed_scopes": ["messaging"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.get(&token, "/oauth_clients").await;
    assert_eq!(status, 403);
}

/// A user of organization B approves organization A's app for the management scope. The app,
/// with B's token, may manage B's clients while the grant lasts, but may not make itself a
/// machine client of B's (a secret it would keep after B revokes the grant): neither by
/// creating one nor by adding `client_credentials` to one. B's own API key may; so may it
/// rename a client with the token, and a machine token may not make another.
#[tokio::test]
async fn an_access_token_cannot_make_a_credential_that_outlives_its_grant() {
    let app = TestApp::spawn().await;
    let (app_a, app_a_auth) = first_party_code_client(&app).await;
    let b = app.user("b@b.example", "B").await;
    let consent = consent_for(&app, &b.api_key, &app_a, "admin").await;
    let code = approve(&app, &b.api_key, &consent).await;
    let tokens = exchange(&app, &app_a_auth, &code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let b_token = tokens.body["access_token"].as_str().unwrap().to_owned();
    let (status, list) = app.get(&b_token, "/oauth_clients").await;
    assert_eq!(status, 200, "{list}");
    let before = list["meta"]["total_results"].clone();

    let backdoor = json!({"name": "backdoor", "client_type": "confidential",
        "allowed_grant_types": ["client_credentials"], "allowed_scopes": ["admin"]});
    for path in ["/oauth_clients", "/v2/oauth_clients"] {
        let (status, body) = app.post_json(&b_token, path, &backdoor).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["errors"][0]["code"], "api_key_required", "{body}");
        assert_eq!(
            body["errors"][0]["source"]["pointer"], "/allowed_grant_types",
            "{body}"
        );
        assert!(body.get("data").is_none(), "{body}");
    }
    // Nor a machine client without the management scope, nor one that can do both.
    for grants in [
        json!(["client_credentials"]),
        json!(["authorization_code", "client_credentials"]),
    ] {
        let mut body = crate::flow::code_client("also a backdoor");
        body["allowed_grant_types"] = grants;
        body["allowed_scopes"] = json!(["messaging"]);
        let (status, r) = app.post_json(&b_token, "/oauth_clients", &body).await;
        assert_eq!(status, 422, "{r}");
    }
    let (_, list) = app.get(&b.api_key, "/oauth_clients").await;
    assert_eq!(list["meta"]["total_results"], before, "{list}");
    assert!(app
        .events("client.created")
        .await
        .iter()
        .all(|e| e.user_id.as_deref() != Some(b.user_id.as_str())));

    // A web client of B's, made with the token (nothing it can use alone: every token of it
    // needs a user's consent), may not be turned into a machine client with the token either.
    let (status, web) = app
        .post_json(
            &b_token,
            "/oauth_clients",
            &crate::flow::code_client("B web"),
        )
        .await;
    assert_eq!(status, 201, "{web}");
    let web_path = format!(
        "/oauth_clients/{}",
        web["data"]["client_id"].as_str().unwrap()
    );
    let machine = json!({"allowed_grant_types": ["authorization_code", "client_credentials"]});
    let (status, body) = app.put_json(&b_token, &web_path, &machine).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "api_key_required", "{body}");
    let (_, got) = app.get(&b.api_key, &web_path).await;
    assert_eq!(
        got["data"]["allowed_grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    // Other changes go through with the token.
    let (status, body) = app
        .put_json(&b_token, &web_path, &json!({"name": "B web, renamed"}))
        .await;
    assert_eq!(status, 200, "{body}");
    // The trail tells the app's changes from B's own.
    let updated = app.events("client.updated").await;
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0].user_id.as_deref(), Some(b.user_id.as_str()));
    assert_eq!(updated[0].detail["via_client"], app_a.as_str());

    // B's own API key may make a machine client; its machine token may not make another.
    let (svc, svc_secret) =
        crate::oauth_support::cc_client_with(&app, &b.api_key, backdoor.clone()).await;
    let machine_token = cc_token(&app, &svc, &svc_secret, Some("admin")).await;
    let (status, body) = app
        .post_json(&machine_token, "/oauth_clients", &backdoor)
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "api_key_required", "{body}");

    // B revokes the grant: app A has nothing of B's left.
    let grants = app.get(&b.api_key, "/oauth_grants").await.1;
    let grant = grants["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["client_id"] == app_a.as_str())
        .unwrap_or_else(|| panic!("{grants}"));
    let (status, _) = app
        .delete(
            &b.api_key,
            &format!("/oauth_grants/{}", grant["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.get(&b_token, "/oauth_clients").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_token_stops_managing_once_its_client_loses_the_management_scope() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let manager = cc_token(&app, &id, &secret, Some("admin")).await;
    let own = cc_token(&app, &id, &secret, Some("messaging")).await;
    let (status, list) = app.get(&manager, "/oauth_clients").await;
    assert_eq!(status, 200, "{list}");
    // A member takes the management scope away from the client.
    let (status, updated) = app
        .put_json(
            &app.admin_key,
            &format!("/oauth_clients/{id}"),
            &json!({"allowed_scopes": ["messaging"]}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["allowed_scopes"], json!(["messaging"]));
    // The token issued before still says `admin`, and is refused on the management API...
    let (status, body) = app.get(&manager, "/oauth_clients").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("insufficient_scope"), "{body}");
    let (status, body) = app
        .put_json(
            &manager,
            &format!("/oauth_clients/{id}"),
            &json!({"allowed_scopes": ["admin", "messaging"]}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // ...and as a bearer at introspection: it reveals nothing.
    let r = introspect_bearer(&app, &manager, &own).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["error"], "insufficient_scope");
    // Nothing changed: the client still lacks the scope, and a new token cannot have it.
    let (status, got) = app
        .get(&app.admin_key, &format!("/oauth_clients/{id}"))
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["data"]["allowed_scopes"], json!(["messaging"]));
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[("grant_type", "client_credentials"), ("scope", "admin")],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"], "invalid_scope");
    // Introspection reports what a token may still do: the manager token, left with no
    // scope, is not active; the client's other token keeps its scope.
    let r = introspect_bearer(&app, &app.admin_key, &manager).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"active": false}));
    let r = introspect_bearer(&app, &app.admin_key, &own).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], true, "{}", r.body);
    assert_eq!(r.body["scope"], "messaging");
}

#[tokio::test]
async fn the_mcp_journey_succeeds_with_the_advertised_scopes() {
    let app = TestApp::spawn().await;
    let prm: Value = app
        .http
        .get(app.at("/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let advertised: Vec<String> = prm["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert!(!advertised.is_empty());
    assert!(!advertised.contains(&"admin".to_owned()), "{advertised:?}");
    // A public client registers with what was advertised (and admin, which it may not have).
    let (status, r) = register(
        &app,
        None,
        &json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                "scope": format!("{} admin", advertised.join(" "))}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["scope"], advertised.join(" "));
    let id = r["client_id"].as_str().unwrap();
    // It asks for every advertised scope, and for admin too: narrowed, not refused.
    let consent = consent_for(
        &app,
        &app.admin_key,
        id,
        &format!("admin {}", advertised.join(" ")),
    )
    .await;
    let (status, details) = app
        .get(&app.admin_key, &format!("/oauth/consent/{consent}"))
        .await;
    assert_eq!(status, 200, "{details}");
    let asked: Vec<&str> = details["data"]["requested_scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(asked, advertised);
    let code = approve(&app, &app.admin_key, &consent).await;
    let t = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.body["scope"], advertised.join(" "));
}

#[tokio::test]
async fn introspection_by_bearer_needs_the_management_scope_and_sees_its_organization_only() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let own = cc_token(&app, &id, &secret, Some("messaging")).await;
    let manager = cc_token(&app, &id, &secret, Some("admin")).await;
    // A client's own non-management token reveals nothing, not even itself.
    let r = introspect_bearer(&app, &own, &manager).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body["error"], "insufficient_scope");
    // With the management scope (or an API key): its organization's tokens.
    for cred in [manager.as_str(), app.admin_key.as_str()] {
        let r = introspect_bearer(&app, cred, &own).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["active"], true, "{}", r.body);
    }
    // Another organization's first-party token: inactive to it.
    let other = app.user("other@b.example", "B").await;
    let (oid, osecret) = crate::oauth_support::cc_client_with(
        &app,
        &other.api_key,
        crate::support::confidential_client("B's"),
    )
    .await;
    let theirs = cc_token(&app, &oid, &osecret, Some("messaging")).await;
    let r = introspect_bearer(&app, &manager, &theirs).await;
    assert_eq!(r.body, inactive());

    // Tokens members granted to a third-party client: visible to the member's organization
    // only.
    let (tp, tp_auth) = registered_code_client(&app, Some("messaging voice")).await;
    let consent = consent_for(&app, &app.admin_key, &tp, "messaging").await;
    let code = approve(&app, &app.admin_key, &consent).await;
    let admins = exchange(&app, &tp_auth, &code).await;
    assert_eq!(admins.status, 200, "{}", admins.body);
    let consent = consent_for(&app, &other.api_key, &tp, "voice").await;
    let code = approve(&app, &other.api_key, &consent).await;
    let others = exchange(&app, &tp_auth, &code).await;
    assert_eq!(others.status, 200, "{}", others.body);
    for (token, mine) in [
        (admins.body["access_token"].as_str().unwrap(), true),
        (admins.body["refresh_token"].as_str().unwrap(), true),
        (others.body["access_token"].as_str().unwrap(), false),
        (others.body["refresh_token"].as_str().unwrap(), false),
    ] {
        let r = introspect_bearer(&app, &app.admin_key, token).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["active"], mine, "{}", r.body);
        let r = introspect_bearer(&app, &other.api_key, token).await;
        assert_eq!(r.body["active"], !mine, "{}", r.body);
    }
}

#[tokio::test]
async fn a_code_presented_by_another_client_is_not_burned() {
    let app = TestApp::spawn().await;
    let (id, auth) = first_party_code_client(&app).await;
    let (_, intruder) = registered_code_client(&app, None).await;
    let consent = consent_for(&app, &app.admin_key, &id, "messaging").await;
    let code = approve(&app, &app.admin_key, &consent).await;
    for _ in 0..3 {
        let r = exchange(&app, &intruder, &code).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.body["error"], "invalid_grant");
    }
    // Its owner still exchanges it, and its grant was never revoked.
    let r = exchange(&app, &auth, &code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.events("authorization_code.wrong_client").await.len(), 3);
}

/// Presenting another client's code or refresh token spends the presenter's client
/// authentication failures, as a wrong secret does: after the (client_id, address) budget (10 at
/// once) the presenter is answered 429 before anything is read, so the security events its
/// attempts store are bounded by that budget; the owner exchanges its code all the same.
#[tokio::test]
async fn presenting_another_clients_code_spends_the_presenters_failures() {
    let app = TestApp::spawn().await;
    let (id, auth) = first_party_code_client(&app).await;
    let (_, intruder) = registered_code_client(&app, None).await;
    let consent = consent_for(&app, &app.admin_key, &id, "messaging").await;
    let code = approve(&app, &app.admin_key, &consent).await;
    for i in 0..10 {
        let r = exchange(&app, &intruder, &code).await;
        assert_eq!(r.status, 400, "attempt {i}: {}", r.body);
        assert_eq!(r.body["error"], "invalid_grant");
    }
    let r = exchange(&app, &intruder, &code).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(
        app.events("authorization_code.wrong_client").await.len(),
        10
    );
    let r = exchange(&app, &auth, &code).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// The same for a refresh token: another client presenting it spends its own failures, and is
/// answered 429 after 10; the owner still refreshes.
#[tokio::test]
async fn presenting_another_clients_refresh_token_spends_the_presenters_failures() {
    let app = TestApp::spawn().await;
    let (id, auth) = first_party_code_client(&app).await;
    let (_, intruder) = registered_code_client(&app, None).await;
    let consent = consent_for(&app, &app.admin_key, &id, "messaging").await;
    let code = approve(&app, &app.admin_key, &consent).await;
    let r = exchange(&app, &auth, &code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    for i in 0..10 {
        let r = refresh(&app, &intruder, &rt).await;
        assert_eq!(r.status, 400, "attempt {i}: {}", r.body);
        assert_eq!(r.body["error"], "invalid_grant");
    }
    let r = refresh(&app, &intruder, &rt).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(app.events("refresh_token.wrong_client").await.len(), 10);
    let r = refresh(&app, &auth, &rt).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn replay_and_reuse_revoke_one_family_and_leave_the_others() {
    let app = TestApp::spawn().await;
    let (id, auth) = first_party_code_client(&app).await;
    // Two authorizations of one client by one user (say, two devices).
    let mut tokens = Vec::new();
    let mut codes = Vec::new();
    for _ in 0..2 {
        let consent = consent_for(&app, &app.admin_key, &id, "messaging").await;
        let code = approve(&app, &app.admin_key, &consent).await;
        let r = exchange(&app, &auth, &code).await;
        assert_eq!(r.status, 200, "{}", r.body);
        tokens.push(r.body);
        codes.push(code);
    }
    let access = |i: usize| tokens[i]["access_token"].as_str().unwrap().to_owned();
    let refresh_of = |i: usize| tokens[i]["refresh_token"].as_str().unwrap().to_owned();
    let (_, a) = crate::oauth_support::jwt_parts(&access(0));
    let (_, b) = crate::oauth_support::jwt_parts(&access(1));
    assert_eq!(a["grant_id"], b["grant_id"]);
    assert_ne!(a["family_id"], b["family_id"]);

    // The first code replayed by its own client: the first family ends.
    let r = exchange(&app, &auth, &codes[0]).await;
    assert_eq!(r.body["error"], "invalid_grant");
    let active = |t: String| {
        let app = &app;
        async move {
            introspect_bearer(app, &app.admin_key, &t).await.body["active"] == Value::Bool(true)
        }
    };
    assert!(!active(access(0)).await);
    assert!(!active(refresh_of(0)).await);
    assert!(active(access(1)).await);
    assert!(active(refresh_of(1)).await);

    // The second family rotates; its used token presented again ends it, and only it.
    let consent = consent_for(&app, &app.admin_key, &id, "messaging").await;
    let code = approve(&app, &app.admin_key, &consent).await;
    let third = exchange(&app, &auth, &code).await;
    let rotated = refresh(&app, &auth, &refresh_of(1)).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let reused = refresh(&app, &auth, &refresh_of(1)).await;
    assert_eq!(reused.body["error"], "invalid_grant");
    assert!(!active(rotated.body["access_token"].as_str().unwrap().to_owned()).await);
    assert!(active(third.body["access_token"].as_str().unwrap().to_owned()).await);
    let again = refresh(&app, &auth, third.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    // The user's grant stands through all of it.
    let (_, grants) = app.get(&app.admin_key, "/oauth_grants").await;
    assert_eq!(grants["meta"]["total_results"], 1, "{grants}");
}

#[tokio::test]
async fn a_removed_redirect_uri_is_never_redirected_to_even_for_a_pending_consent() {
    let app = TestApp::spawn().await;
    let (id, _) = first_party_code_client(&app).await;
    let allow = consent_for(&app, &app.admin_key, &id, "messaging").await;
    let deny = consent_for(&app, &app.admin_key, &id, "messaging").await;
    let (status, _) = app
        .put_json(
            &app.admin_key,
            &format!("/oauth_clients/{id}"),
            &json!({"redirect_uris": ["http://127.0.0.1/cb"]}),
        )
        .await;
    assert_eq!(status, 200);
    for (token, allowed) in [(&allow, true), (&deny, false)] {
        let (status, r) = app.decide(&app.admin_key, token, allowed).await;
        assert_eq!(status, 422, "{r}");
        assert!(r.get("redirect_uri").is_none());
        // Used up: it does not come back.
        let (status, _) = app
            .get(&app.admin_key, &format!("/oauth/consent/{token}"))
            .await;
        assert_eq!(status, 422);
    }
    assert_eq!(
        app.get(&app.admin_key, "/oauth_grants").await.1["meta"]["total_results"],
        0
    );
}

/// A scope taken from a first-party client leaves its pending consent requests, their pages and
/// what they grant, and later refreshes; given back, it does not return to a request made
/// before: what the user is shown after the change is all an approval can grant (otherwise the
/// client's owner could hide the management scope from the page and give it back before the
/// click). On SQLite and PostgreSQL.
#[tokio::test]
async fn a_removed_scope_leaves_pending_consents_and_later_refreshes() {
    for (app, _guard) in &crate::databases::on_both_databases(|_| {}).await {
        let (id, auth) = first_party_code_client(app).await;
        let pending = consent_for(app, &app.admin_key, &id, "admin messaging").await;
        let earlier = consent_for(app, &app.admin_key, &id, "admin messaging").await;
        let code = approve(app, &app.admin_key, &earlier).await;
        let tokens = exchange(app, &auth, &code).await;
        assert_eq!(tokens.body["scope"], "admin messaging");
        let set_scopes = |scopes: Value| {
            let path = format!("/oauth_clients/{id}");
            async move {
                let body = json!({ "allowed_scopes": scopes });
                let (status, r) = app.put_json(&app.admin_key, &path, &body).await;
                assert_eq!(status, 200, "{r}");
            }
        };
        set_scopes(json!(["messaging", "voice"])).await;
        // The pending request now asks for messaging alone, on its page and in the JSON API.
        let (_, details) = app
            .get(&app.admin_key, &format!("/oauth/consent/{pending}"))
            .await;
        let shown: Vec<&str> = details["data"]["requested_scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(shown, ["messaging"], "{details}");
        // Given back before the decision, the management scope is neither shown nor granted.
        set_scopes(json!(["admin", "messaging", "voice"])).await;
        let (_, details) = app
            .get(&app.admin_key, &format!("/oauth/consent/{pending}"))
            .await;
        assert_eq!(
            details["data"]["requested_scopes"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "{details}"
        );
        let code = approve(app, &app.admin_key, &pending).await;
        let r = exchange(app, &auth, &code).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["scope"], "messaging");
        // A request left with no scope goes: its token names nothing any more.
        let only_admin = consent_for(app, &app.admin_key, &id, "admin").await;
        set_scopes(json!(["messaging"])).await;
        let (status, r) = app
            .get(&app.admin_key, &format!("/oauth/consent/{only_admin}"))
            .await;
        assert_eq!(status, 422, "{r}");
        // A refresh of the earlier authorization drops admin too.
        let r = refresh(app, &auth, tokens.body["refresh_token"].as_str().unwrap()).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["scope"], "messaging");
        let (_, claims) = crate::oauth_support::jwt_parts(r.body["access_token"].as_str().unwrap());
        assert_eq!(claims["scope"], "messaging");
    }
}

#[tokio::test]
async fn changing_what_users_see_clears_the_verified_mark() {
    let app = TestApp::spawn().await;
    let (id, _) = first_party_code_client(&app).await;
    let verify = || async {
        assert!(app
            .server
            .store
            .set_client_verified(&id, true, app.clock.now())
            .await
            .unwrap()
            .is_some());
    };
    for (patch, clears) in [
        (json!({"allowed_scopes": ["messaging"]}), false),
        (
            json!({"policy_uri": "https://app.example.com/privacy2"}),
            true,
        ),
        (json!({"tos_uri": "https://app.example.com/terms2"}), true),
        (json!({"name": "Renamed"}), true),
        (json!({"logo_uri": "https://app.example.com/new.png"}), true),
        (
            json!({"redirect_uris": [REDIRECT, "https://app.example.com/other"]}),
            true,
        ),
    ] {
        verify().await;
        let (status, r) = app
            .put_json(&app.admin_key, &format!("/oauth_clients/{id}"), &patch)
            .await;
        assert_eq!(status, 200, "{r}");
        let stored = app.server.store.get_client(&id).await.unwrap().unwrap();
        assert_eq!(stored.verified, !clears, "{patch}");
    }
}

/// An unverified third party's errors are never sent to its redirect URI automatically, signed
/// in or not (RFC 9700 §4.11.2): a page says what was refused and offers the way back to the
/// application, naming its host. Otherwise a link to this server, through the sign-in page,
/// bounced the user to whatever address the client's maker registered right after they signed
/// in here. A verified client's errors redirect; an unverified first-party client's do for
/// users of its own organization only.
#[tokio::test]
async fn an_unverified_third_partys_errors_are_a_page_with_a_way_back() {
    let app = TestApp::spawn().await;
    let (id, _) = registered_code_client(&app, None).await;
    let mut params = standard_params(&id);
    params.retain(|(k, _)| *k != "response_type");
    params.push(("response_type", "token".into()));
    let path = path_of(&params);
    let user = app.user("alice@example.com", "alice-org").await;
    let cookie = app.session(&user).await;
    let by_admin = |path: String| {
        let request = app.http.get(app.at(&path)).bearer_auth(&app.admin_key);
        async move { request.send().await.unwrap() }
    };
    let anonymous = app.http.get(app.at(&path)).send().await.unwrap();
    let by_key = by_admin(path.clone()).await;
    let by_session = app.get_with_cookie(&path, &cookie).await;
    // Through the sign-in page, as a link sent to a signed-out user leads there.
    let r = app.post_login(&user.email, &user.password, &path).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), path);
    for r in [anonymous, by_key, by_session] {
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
        let page = r.text().await.unwrap();
        assert!(page.contains("unsupported_response_type"), "{page}");
        let link = page
            .split("<a href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a link back")
            .replace("&#38;", "&")
            .replace("&amp;", "&");
        assert!(link.starts_with(REDIRECT), "{link}");
        assert_eq!(
            param(&link, "error").as_deref(),
            Some("unsupported_response_type")
        );
        assert_eq!(param(&link, "state").as_deref(), Some("st-123"));
        assert!(page.contains("Go back to app.example.com"), "{page}");
    }
    // A verified client's errors redirect.
    app.server
        .store
        .set_client_verified(&id, true, app.clock.now())
        .await
        .unwrap();
    let r = app.http.get(app.at(&path)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with(REDIRECT));
    // An unverified first-party client's: a redirect for a user of its own organization only;
    // anyone else (nobody signed in, or a user of another organization) gets the page.
    let (first, _) = first_party_code_client(&app).await;
    let mut params = standard_params(&first);
    params.retain(|(k, _)| *k != "response_type");
    params.push(("response_type", "token".into()));
    let path = path_of(&params);
    let anonymous = app.http.get(app.at(&path)).send().await.unwrap();
    let elsewhere = app.get_with_cookie(&path, &cookie).await;
    for r in [anonymous, elsewhere] {
        assert_eq!(r.status(), 400);
        let page = r.text().await.unwrap();
        assert!(page.contains("Go back to app.example.com"), "{page}");
    }
    let r = by_admin(path).await;
    assert_eq!(r.status(), 302);
    assert!(location(&r).starts_with(REDIRECT));
}

#[tokio::test]
async fn a_token_living_longer_than_the_server_issues_is_refused() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let admin = app
        .server
        .store
        .find_user_by_email("admin@localhost")
        .await
        .unwrap()
        .unwrap();
    let mut c = claims(&app, &id, &id, "admin");
    let lifetime = oauth_server::config::DEFAULT_ACCESS_TOKEN_LIFETIME_SECS;
    c.exp = c.iat + lifetime + 1;
    let long = sign(&app, &c);
    let r = crate::oauth_support::introspect_as(&app, &id, &secret, &long).await;
    assert_eq!(r, inactive());
    let (status, _) = app.get(&long, "/oauth_clients").await;
    assert_eq!(status, 401);
    // The same token within the lifetime is fine.
    c.exp = c.iat + lifetime;
    c.sub = admin.id;
    let ok = sign(&app, &c);
    let r = crate::oauth_support::introspect_as(&app, &id, &secret, &ok).await;
    assert_eq!(r["active"], true);
}

#[tokio::test]
async fn sixteen_thousand_scopes_are_refused_everywhere() {
    // A body limit that lets the whole list reach the scope parser (it is about 110 KB).
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 1 << 20).await;
    let (id, secret) = cc_client(&app).await;
    // 16,000 distinct three-letter tokens: short enough for a URL (the authorize request).
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let many = (0..16_000usize)
        .map(|i| {
            let n = letters.len();
            [letters[i / (n * n)], letters[(i / n) % n], letters[i % n]]
                .iter()
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let (status, err) = register(
        &app,
        None,
        &json!({"redirect_uris": [REDIRECT], "scope": many}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_client_metadata");
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, &secret)),
        &[("grant_type", "client_credentials"), ("scope", &many)],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_scope");
    // At /oauth/authorize (a first-party client, signed in): the scope error goes back.
    let (code_id, _) = first_party_code_client(&app).await;
    let mut params = standard_params(&code_id);
    params.retain(|(k, _)| *k != "scope");
    params.push(("scope", many.clone()));
    let r = app
        .http
        .get(app.at(&path_of(&params)))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .expect("the request is sent");
    assert_eq!(r.status(), 302);
    assert_eq!(
        param(&location(&r), "error").as_deref(),
        Some("invalid_scope")
    );
}

#[tokio::test]
async fn invisible_characters_and_hostless_uris_are_refused() {
    let app = TestApp::spawn().await;
    // Also a pile of accents on one letter, which draws over the consent page's badge.
    let piled = format!("Acme{}", "\u{0301}\u{0336}".repeat(20));
    // And padding, and a check mark that reads as the verified badge.
    for name in [
        "Good\u{202E}lppA",
        "Pay\u{200B}Pal",
        "\u{0336}Acme",
        &piled,
        "Acme\u{3164}\u{3164}\u{3164}",
        "Acme\u{00A0}\u{00A0}\u{00A0}\u{00A0}",
        "Telnyx \u{2713} Verified application",
    ] {
        let mut body = crate::support::confidential_client("x");
        body["name"] = json!(name);
        let (status, err) = app.post_json(&app.admin_key, "/oauth_clients", &body).await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["errors"][0]["source"]["pointer"], "/name");
        let (status, err) = register(
            &app,
            None,
            &json!({"client_name": name, "redirect_uris": [REDIRECT]}),
        )
        .await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"], "invalid_client_metadata", "{err}");
    }
    // Accents as languages write them are names like any other.
    let mut body = crate::support::confidential_client("x");
    body["name"] = json!("Vie\u{0323}\u{0302}t Cre\u{0300}me");
    let (status, err) = app.post_json(&app.admin_key, "/oauth_clients", &body).await;
    assert_eq!(status, 201, "{err}");
    let (status, err) = register(&app, None, &json!({"redirect_uris": ["https:///cb"]})).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_redirect_uri");
    assert_eq!(third_party_clients(&app).await, 0);
}

#[tokio::test]
async fn a_family_ends_at_its_absolute_lifetime() {
    let clock = std::sync::Arc::new(oauth_server::clock::ManualClock::new(1_800_000_000));
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.tokens.refresh_family_lifetime_secs = 600;
    })
    .await;
    let (id, auth) = first_party_code_client(&app).await;
    let consent = consent_for(&app, &app.admin_key, &id, "messaging").await;
    let code = approve(&app, &app.admin_key, &consent).await;
    let mut r = exchange(&app, &auth, &code).await;
    for _ in 0..2 {
        clock.advance(250);
        r = refresh(&app, &auth, r.body["refresh_token"].as_str().unwrap()).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    clock.advance(101);
    let late = refresh(&app, &auth, r.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(late.status, 400);
    assert_eq!(late.body["error"], "invalid_grant");
}

#[tokio::test]
async fn thirty_intruders_at_once_do_not_take_the_owners_code() {
    // Every presentation spends a failure of the intruder's address, which here is the owner's
    // too: budgets large enough that all 30 are answered (the budget has a test of its own).
    let app = std::sync::Arc::new(
        TestApp::spawn_with(|c| {
            let many = oauth_server::config::RateLimit {
                requests: 1000,
                window_secs: 60,
            };
            c.rate_limits.client_auth_failures_per_ip = many;
            c.rate_limits.client_auth_failures_per_client_ip = many;
        })
        .await,
    );
    let (id, auth) = first_party_code_client(&app).await;
    let (_, intruder) = registered_code_client(&app, None).await;
    let consent = consent_for(&app, &app.admin_key, &id, "messaging").await;
    let code = approve(&app, &app.admin_key, &consent).await;
    // 30 presentations by another client and the owner's own, all at once.
    let mut tasks = Vec::new();
    for i in 0..31 {
        let (app, code) = (app.clone(), code.clone());
        let who = if i == 15 {
            auth.clone()
        } else {
            intruder.clone()
        };
        tasks.push(tokio::spawn(
            async move { exchange(&app, &who, &code).await },
        ));
    }
    let mut owner = None;
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        if i == 15 {
            owner = Some(r);
        } else {
            assert_eq!(r.status, 400, "{}", r.body);
            assert_eq!(r.body["error"], "invalid_grant");
            assert!(r.body.get("access_token").is_none());
        }
    }
    let owner = owner.unwrap();
    assert_eq!(owner.status, 200, "{}", owner.body);
    let (_, claims) = crate::oauth_support::jwt_parts(owner.body["access_token"].as_str().unwrap());
    assert!(app
        .server
        .store
        .live_token_family(claims["family_id"].as_str().unwrap())
        .await
        .unwrap());
    assert_eq!(
        app.events("authorization_code.wrong_client").await.len(),
        30
    );
}

/// A client made to use PKCE, or no longer allowed the code flow, while a request of it is
/// pending: approving that request gives no code and makes or widens no grant, on both
/// databases; and a code issued without a challenge before the client had to send one is not
/// exchanged.
#[tokio::test]
async fn a_client_changed_while_a_consent_is_pending_gets_only_what_it_may_now() {
    for (app, _guard) in &crate::databases::on_both_databases(|_| {}).await {
        let mut body = crate::flow::code_client("No PKCE yet");
        body["require_pkce"] = json!(false);
        let c = app.create_client(&app.admin_key, body).await;
        let id = c["client_id"].as_str().unwrap().to_owned();
        let auth = basic(&id, c["client_secret"].as_str().unwrap());
        let mut no_pkce = standard_params(&id);
        no_pkce.retain(|(k, _)| !k.starts_with("code_challenge"));
        let path = path_of(&no_pkce);
        let pending = app.consent_token(&app.admin_key, &path).await;
        let issued = approve(
            app,
            &app.admin_key,
            &app.consent_token(&app.admin_key, &path).await,
        )
        .await;
        let before = grants_of(app).await;
        assert_eq!(before["meta"]["total_results"], 1, "{before}");

        let (status, _) = app
            .put_json(
                &app.admin_key,
                &format!("/oauth_clients/{id}"),
                &json!({"require_pkce": true}),
            )
            .await;
        assert_eq!(status, 200);
        let (status, r) = app.decide(&app.admin_key, &pending, true).await;
        assert_eq!(status, 422, "{r}");
        assert!(r.get("redirect_uri").is_none(), "{r}");
        assert_eq!(grants_of(app).await, before, "no grant made or widened");

        let r = exchange_without_verifier(app, &auth, &issued).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["error"], "invalid_grant");
        assert_eq!(
            r.body["error_description"],
            "this client must use PKCE: the authorization request had no code_challenge"
        );
        // The client's own code, useless to it now: spent, so that it cannot be tried later.
        let r = exchange_without_verifier(app, &auth, &issued).await;
        assert_eq!(
            r.body["error_description"],
            "the authorization code is invalid, expired or already used",
            "{}",
            r.body
        );

        // The code flow taken away: a pending request (with PKCE this time) approves nothing.
        let pending = app
            .consent_token(&app.admin_key, &path_of(&standard_params(&id)))
            .await;
        let (status, _) = app
            .put_json(
                &app.admin_key,
                &format!("/oauth_clients/{id}"),
                &json!({"allowed_grant_types": ["client_credentials"]}),
            )
            .await;
        assert_eq!(status, 200);
        let before = grants_of(app).await;
        let (status, r) = app.decide(&app.admin_key, &pending, true).await;
        assert_eq!(status, 422, "{r}");
        assert_eq!(grants_of(app).await, before, "no grant made or widened");
    }
}

/// The admin's grants, as listed.
async fn grants_of(app: &TestApp) -> Value {
    app.get(&app.admin_key, "/oauth_grants").await.1
}

/// `exchange` with no `code_verifier`.
async fn exchange_without_verifier(app: &TestApp, auth: &str, code: &str) -> Resp {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    post_form(app, "/oauth/token", Some(auth), &form).await
}
