//! `/oauth_clients`: create, list with every filter, get, update, delete; tenant isolation.

use serde_json::{json, Value};

use crate::support::{confidential_client, public_client, TestApp};

#[tokio::test]
async fn create_returns_the_secret_once_and_stores_only_its_hash() {
    let app = TestApp::spawn().await;
    let c = app
        .create_client(&app.admin_key, confidential_client("Billing app"))
        .await;
    assert_eq!(c["record_type"], "oauth_client");
    assert_eq!(c["name"], "Billing app");
    assert_eq!(c["client_type"], "confidential");
    assert_eq!(c["org_id"], app.admin_org.as_str());
    let secret = c["client_secret"].as_str().expect("a secret on create");
    assert_eq!(secret.len(), 43, "256 random bits, base64url");
    let id = c["client_id"].as_str().unwrap();
    // The answer that carries a secret is kept by no cache.
    let r = app
        .http
        .post(app.at("/oauth_clients"))
        .bearer_auth(&app.admin_key)
        .json(&confidential_client("Another"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");

    let (status, got) = app
        .get(&app.admin_key, &format!("/oauth_clients/{id}"))
        .await;
    assert_eq!(status, 200);
    assert!(
        got["data"]["client_secret"].is_null(),
        "never again on read"
    );
    assert_eq!(got["data"]["allowed_scopes"], json!(["admin", "messaging"]));

    let stored = app.server.store.get_client(id).await.unwrap().unwrap();
    let hash = stored.secret_hash.expect("hash stored");
    assert_ne!(hash, secret);
    assert!(oauth_core::secret::verify_secret(secret, &hash));
}

#[tokio::test]
async fn public_clients_get_no_secret_and_always_require_pkce() {
    let app = TestApp::spawn().await;
    let mut body = public_client("SPA");
    body["require_pkce"] = json!(false);
    let c = app.create_client(&app.admin_key, body).await;
    assert!(c["client_secret"].is_null());
    assert_eq!(c["require_pkce"], true);
    let stored = app
        .server
        .store
        .get_client(c["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.secret_hash, None);
}

#[tokio::test]
async fn every_field_of_the_seed_is_present_and_nothing_else() {
    let app = TestApp::spawn().await;
    let c = app
        .create_client(&app.admin_key, confidential_client("Fields"))
        .await;
    let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec![
            "allowed_grant_types",
            "allowed_scopes",
            "client_id",
            "client_secret",
            "client_type",
            "created_at",
            "logo_uri",
            "name",
            "org_id",
            "policy_uri",
            "record_type",
            "redirect_uris",
            "require_pkce",
            "tos_uri",
            "updated_at",
            "user_id"
        ]
    );
    let created = c["created_at"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.len() == 20,
        "RFC 3339 UTC: {created}"
    );
}

#[tokio::test]
async fn get_update_and_delete() {
    let app = TestApp::spawn().await;
    let mut body = confidential_client("Original");
    body["logo_uri"] = json!("https://app.example.com/logo.png");
    body["tos_uri"] = json!("https://app.example.com/tos");
    let c = app.create_client(&app.admin_key, body).await;
    let id = c["client_id"].as_str().unwrap();
    let path = format!("/oauth_clients/{id}");

    // Partial: only what is sent changes; null clears a link.
    let (status, updated) = app
        .put_json(
            &app.admin_key,
            &path,
            &json!({"name": "Renamed", "logo_uri": null, "allowed_scopes": ["messaging"]}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    let u = &updated["data"];
    assert_eq!(u["name"], "Renamed");
    assert!(u["logo_uri"].is_null());
    assert_eq!(u["tos_uri"], "https://app.example.com/tos");
    assert_eq!(u["allowed_scopes"], json!(["messaging"]));
    assert_eq!(u["redirect_uris"], c["redirect_uris"]);
    assert!(u["client_secret"].is_null());
    let stored = app.server.store.get_client(id).await.unwrap().unwrap();
    assert_eq!(stored.settings.name, "Renamed");
    assert_eq!(stored.settings.logo_uri, None);

    // An invalid update changes nothing.
    let (status, err) = app
        .put_json(
            &app.admin_key,
            &path,
            &json!({"name": "Other", "redirect_uris": []}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["errors"][0]["source"]["pointer"], "/redirect_uris");
    let (status, err) = app
        .put_json(&app.admin_key, &path, &json!({"client_type": "public"}))
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["errors"][0]["code"], "unknown_field");
    assert_eq!(err["errors"][0]["source"]["pointer"], "/client_type");
    let (_, got) = app.get(&app.admin_key, &path).await;
    assert_eq!(got["data"]["name"], "Renamed");

    // DELETE answers 204 with no body, also with the JSON content type and an empty body.
    let r = app
        .http
        .delete(app.at(&path))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.text().await.unwrap().is_empty());
    assert!(app.server.store.get_client(id).await.unwrap().is_none());
    let (status, err) = app.get(&app.admin_key, &path).await;
    assert_eq!((status, err["error"].as_str()), (404, Some("not_found")));
    let (status, _) = app.delete(&app.admin_key, &path).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .put_json(&app.admin_key, &path, &json!({"name": "x"}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn every_validation_rule_answers_422_with_a_pointer() {
    let app = TestApp::spawn().await;
    let base = confidential_client("Valid");
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (json!({"name": ""}), "/name"),
        (json!({"name": "   "}), "/name"),
        (json!({"name": "x".repeat(201)}), "/name"),
        (json!({"name": "bad\u{0007}name"}), "/name"),
        (json!({"client_type": "secretive"}), "/client_type"),
        (json!({"allowed_grant_types": []}), "/allowed_grant_types"),
        (
            json!({"allowed_grant_types": ["authorization_code", "implicit"]}),
            "/allowed_grant_types/1",
        ),
        (
            json!({"allowed_grant_types": ["refresh_token"]}),
            "/allowed_grant_types",
        ),
        (json!({"allowed_scopes": []}), "/allowed_scopes"),
        (
            json!({"allowed_scopes": ["admin", "root"]}),
            "/allowed_scopes/1",
        ),
        (json!({"redirect_uris": []}), "/redirect_uris"),
        (
            json!({"redirect_uris": ["http://app.example.com/cb"]}),
            "/redirect_uris/0",
        ),
        (
            json!({"redirect_uris": ["https://app.example.com/cb#frag"]}),
            "/redirect_uris/0",
        ),
        (json!({"redirect_uris": ["/relative"]}), "/redirect_uris/0"),
        (
            json!({"redirect_uris": ["https://app.example.com/cb", "https://app.example.com/cb?state=x"]}),
            "/redirect_uris/1",
        ),
        (
            json!({"redirect_uris": ["https://good.example@evil.example/cb"]}),
            "/redirect_uris/0",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "/redirect_uris/0",
        ),
        (
            json!({"redirect_uris": (0..21).map(|i| format!("https://a.example/{i}")).collect::<Vec<_>>()}),
            "/redirect_uris",
        ),
        (json!({"logo_uri": "ftp://a.example/logo.png"}), "/logo_uri"),
        (json!({"policy_uri": "not a url"}), "/policy_uri"),
        (
            json!({"tos_uri": format!("https://a.example/{}", "x".repeat(2001))}),
            "/tos_uri",
        ),
        (json!({"name": 5}), "/name"),
        (json!({"allowed_scopes": "admin"}), "/allowed_scopes"),
        (json!({"require_pkce": "yes"}), "/require_pkce"),
        (json!({"unexpected": true}), "/unexpected"),
    ];
    for (patch, pointer) in cases {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, err) = app.post_json(&app.admin_key, "/oauth_clients", &body).await;
        assert_eq!(status, 422, "{patch}: {err}");
        assert_eq!(err["error"], "invalid_request");
        let pointers: Vec<&str> = err["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["source"]["pointer"].as_str().unwrap())
            .collect();
        assert!(pointers.contains(&pointer), "{patch}: {pointers:?}");
        assert!(err["error_description"].as_str().unwrap().len() > 10);
    }
    // Public clients may not use client_credentials (RFC 6749 §4.4).
    let mut body = public_client("P");
    body["allowed_grant_types"] = json!(["client_credentials"]);
    let (status, err) = app.post_json(&app.admin_key, "/oauth_clients", &body).await;
    assert_eq!(status, 422);
    assert_eq!(
        err["errors"][0]["source"]["pointer"],
        "/allowed_grant_types"
    );
    // A required field missing points at the field.
    let (status, err) = app
        .post_json(
            &app.admin_key,
            "/oauth_clients",
            &json!({"client_type": "public"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(err["errors"][0]["code"], "required");
    // Nothing was stored by any of these.
    let (_, list) = app.get(&app.admin_key, "/oauth_clients").await;
    assert_eq!(list["meta"]["total_results"], 0);
}

/// An update's `null` clears an optional link; for a field that cannot be cleared it is a 422
/// pointing at the field, not "leave it alone", and nothing changes.
#[tokio::test]
async fn an_update_with_null_for_a_field_that_cannot_be_cleared_is_422() {
    let app = TestApp::spawn().await;
    let mut body = confidential_client("Nulls");
    body["logo_uri"] = json!("https://a.example/logo.png");
    let created = app.create_client(&app.admin_key, body).await;
    let id = created["client_id"].as_str().unwrap();
    let path = format!("/oauth_clients/{id}");
    for field in [
        "name",
        "allowed_scopes",
        "allowed_grant_types",
        "redirect_uris",
        "require_pkce",
    ] {
        // With a valid change beside it, which must not be applied either.
        let mut patch = json!({"name": "Renamed"});
        patch[field] = Value::Null;
        let (status, err) = app.put_json(&app.admin_key, &path, &patch).await;
        assert_eq!(status, 422, "{field}: {err}");
        assert_eq!(
            err["errors"][0]["source"]["pointer"],
            format!("/{field}"),
            "{err}"
        );
        assert!(
            err["errors"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("null"),
            "{err}"
        );
    }
    let stored = app.stored_client(id).await;
    assert_eq!(stored.settings.name, "Nulls");
    // null still clears a link.
    let (status, updated) = app
        .put_json(&app.admin_key, &path, &json!({"logo_uri": null}))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["data"]["logo_uri"], Value::Null);
}

#[tokio::test]
async fn redirect_uris_for_native_apps_are_accepted() {
    let app = TestApp::spawn().await;
    let mut body = public_client("Native");
    body["redirect_uris"] = json!([
        "http://127.0.0.1:8123/cb",
        "http://[::1]/cb",
        "http://localhost:3000/cb",
        "com.example.app:/oauth2redirect"
    ]);
    let c = app.create_client(&app.admin_key, body.clone()).await;
    assert_eq!(c["redirect_uris"], body["redirect_uris"]);
}

async fn list_names(app: &TestApp, key: &str, query: &str) -> Vec<String> {
    let (status, body) = app.get(key, &format!("/oauth_clients?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn list_filters() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    let mut cc = confidential_client("Machine One");
    cc["allowed_grant_types"] = json!(["client_credentials"]);
    let machine = app.create_client(k, cc).await;
    app.create_client(k, confidential_client("Web Portal"))
        .await;
    let spa = app
        .create_client(k, public_client("machine learning SPA"))
        .await;
    oauth_server::cli::run(oauth_server::cli::Cli {
        config: oauth_server::config::ConfigArgs {
            flags: vec![("database-url".into(), app.database_url.clone())],
            ..Default::default()
        },
        json: true,
        command: oauth_server::cli::Command::Clients(oauth_server::cli::ClientsCommand::Verify {
            client_id: spa["client_id"].as_str().unwrap().to_owned(),
        }),
    })
    .await
    .unwrap();

    assert_eq!(
        list_names(&app, k, "filter[client_type]=public").await,
        vec!["machine learning SPA"]
    );
    assert_eq!(
        list_names(&app, k, "filter[client_type]=confidential").await,
        vec!["Machine One", "Web Portal"]
    );
    assert_eq!(
        list_names(&app, k, "filter[verified]=true").await,
        vec!["machine learning SPA"]
    );
    assert_eq!(list_names(&app, k, "filter[verified]=false").await.len(), 2);
    assert_eq!(
        list_names(
            &app,
            k,
            "filter[allowed_grant_types][contains]=client_credentials"
        )
        .await,
        vec!["Machine One", "Web Portal"]
    );
    assert_eq!(
        list_names(
            &app,
            k,
            "filter[allowed_grant_types][contains]=refresh_token"
        )
        .await,
        vec!["Web Portal", "machine learning SPA"]
    );
    assert_eq!(
        list_names(&app, k, "filter[name]=Web%20Portal").await,
        vec!["Web Portal"]
    );
    assert_eq!(
        list_names(&app, k, "filter[name]=Web+Portal").await,
        vec!["Web Portal"]
    );
    assert!(
        list_names(&app, k, "filter[name]=web%20portal")
            .await
            .is_empty(),
        "exact"
    );
    assert_eq!(
        list_names(&app, k, "filter[name][contains]=MACHINE").await,
        vec!["Machine One", "machine learning SPA"]
    );
    assert_eq!(
        list_names(
            &app,
            k,
            &format!(
                "filter[client_id]={}",
                machine["client_id"].as_str().unwrap()
            )
        )
        .await,
        vec!["Machine One"]
    );
    // Percent-encoded brackets, as the official SDKs send them.
    assert_eq!(
        list_names(&app, k, "filter%5Bclient_type%5D=public")
            .await
            .len(),
        1
    );
    // Filters combine.
    assert_eq!(
        list_names(
            &app,
            k,
            "filter[client_type]=confidential&filter[name][contains]=one"
        )
        .await,
        vec!["Machine One"]
    );
    // SQL metacharacters are plain data.
    assert!(
        list_names(&app, k, "filter[name]=%27%20OR%20%271%27%3D%271")
            .await
            .is_empty()
    );
    assert!(list_names(&app, k, "filter[name][contains]=%25")
        .await
        .is_empty());
    assert!(list_names(
        &app,
        k,
        "filter[client_id]=%27%3B%20DROP%20TABLE%20oauth_clients%3B--"
    )
    .await
    .is_empty());
    assert_eq!(list_names(&app, k, "").await.len(), 3);

    for (query, param) in [
        ("filter[client_type]=secret", "filter[client_type]"),
        ("filter[verified]=yes", "filter[verified]"),
        (
            "filter[allowed_grant_types][contains]=implicit",
            "filter[allowed_grant_types][contains]",
        ),
        ("filter[nmae]=x", "filter[nmae]"),
        ("filter[name]=a&filter[name]=b", "filter[name]"),
    ] {
        let (status, err) = app.get(k, &format!("/oauth_clients?{query}")).await;
        assert_eq!(status, 400, "{query}: {err}");
        assert_eq!(err["error"], "invalid_request");
        assert_eq!(err["errors"][0]["source"]["parameter"], param, "{query}");
    }
}

#[tokio::test]
async fn pagination_edges() {
    let app = TestApp::spawn().await;
    let k = &app.admin_key;
    for i in 0..5 {
        app.create_client(k, confidential_client(&format!("Client {i}")))
            .await;
    }
    let (_, p1) = app
        .get(k, "/oauth_clients?page[number]=1&page[size]=2")
        .await;
    assert_eq!(
        p1["meta"],
        json!({"page_number": 1, "page_size": 2, "total_pages": 3, "total_results": 5})
    );
    let (_, p3) = app
        .get(k, "/oauth_clients?page[number]=3&page[size]=2")
        .await;
    assert_eq!(p3["data"].as_array().unwrap().len(), 1);
    assert_eq!(p3["data"][0]["name"], "Client 4");
    let (status, past) = app
        .get(k, "/oauth_clients?page[number]=4&page[size]=2")
        .await;
    assert_eq!(status, 200);
    assert_eq!(past["data"], json!([]));
    assert_eq!(past["meta"]["total_results"], 5);
    let (_, dflt) = app.get(k, "/oauth_clients").await;
    assert_eq!(dflt["meta"]["page_size"], 20);
    assert_eq!(dflt["meta"]["page_number"], 1);
    let (status, _) = app.get(k, "/oauth_clients?page[size]=100").await;
    assert_eq!(status, 200);

    for (query, param) in [
        ("page[size]=0", "page[size]"),
        ("page[size]=101", "page[size]"),
        ("page[size]=abc", "page[size]"),
        ("page[number]=0", "page[number]"),
        ("page[number]=-1", "page[number]"),
        ("page[number]=99999999999999999999", "page[number]"),
    ] {
        let (status, err) = app.get(k, &format!("/oauth_clients?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(
            err["errors"][0]["source"]["parameter"], param,
            "{query}: {err}"
        );
        assert_eq!(err["errors"][0]["code"], "out_of_range");
    }
}

#[tokio::test]
async fn another_organization_can_neither_see_nor_touch_the_clients() {
    let app = TestApp::spawn().await;
    let mine = app
        .create_client(&app.admin_key, confidential_client("Mine"))
        .await;
    let id = mine["client_id"].as_str().unwrap();
    let intruder = app.user("intruder@other.example", "Other Org").await;
    let k = &intruder.api_key;

    let (_, list) = app.get(k, "/oauth_clients").await;
    assert_eq!(list["data"], json!([]));
    assert_eq!(list["meta"]["total_results"], 0);
    assert!(list_names(&app, k, &format!("filter[client_id]={id}"))
        .await
        .is_empty());
    assert!(list_names(&app, k, "filter[name]=Mine").await.is_empty());

    let path = format!("/oauth_clients/{id}");
    let (status, err) = app.get(k, &path).await;
    assert_eq!((status, err["error"].as_str()), (404, Some("not_found")));
    let (status, _) = app.put_json(k, &path, &json!({"name": "Stolen"})).await;
    assert_eq!(status, 404);
    let (status, _) = app.delete(k, &path).await;
    assert_eq!(status, 404);

    let stored = app.server.store.get_client(id).await.unwrap().unwrap();
    assert_eq!(stored.settings.name, "Mine");

    // The intruder's own client is invisible to the first organization in turn.
    let theirs = app.create_client(k, confidential_client("Theirs")).await;
    assert_eq!(theirs["org_id"], intruder.org_id.as_str());
    let (status, _) = app
        .get(
            &app.admin_key,
            &format!("/oauth_clients/{}", theirs["client_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(list_names(&app, &app.admin_key, "").await, vec!["Mine"]);
}

#[tokio::test]
async fn users_of_one_organization_share_its_clients() {
    let app = TestApp::spawn().await;
    let colleague = app.user("colleague@example.com", "default").await;
    assert_eq!(colleague.org_id, app.admin_org);
    let c = app
        .create_client(&app.admin_key, confidential_client("Shared"))
        .await;
    assert_eq!(
        c["user_id"],
        app.server
            .store
            .find_user_by_email("admin@localhost")
            .await
            .unwrap()
            .unwrap()
            .id
            .as_str()
    );
    let (status, got) = app
        .get(
            &colleague.api_key,
            &format!("/oauth_clients/{}", c["client_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["data"]["name"], "Shared");
}

#[tokio::test]
async fn every_route_is_also_served_under_v2() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .post_json(
            &app.admin_key,
            "/v2/oauth_clients",
            &confidential_client("V2"),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["data"]["client_id"].as_str().unwrap();
    let (status, _) = app
        .get(&app.admin_key, &format!("/v2/oauth_clients/{id}"))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .put_json(
            &app.admin_key,
            &format!("/v2/oauth_clients/{id}"),
            &json!({"name": "V2b"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = app.get(&app.admin_key, "/v2/oauth_clients").await;
    assert_eq!(list["data"][0]["name"], "V2b");
    let (status, _) = app
        .delete(&app.admin_key, &format!("/v2/oauth_clients/{id}"))
        .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn api_keys_authenticate_the_management_api() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.at("/oauth_clients")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(
        challenge,
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource\"",
            app.url
        )
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");

    let (status, body) = app.get("KEYnotarealkey", "/oauth_clients").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );

    // The scheme is case-insensitive (RFC 7235 §2.1).
    let r = app
        .http
        .get(app.at("/oauth_clients"))
        .header("authorization", format!("bearer {}", app.admin_key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .get(app.at("/oauth_clients"))
        .header("authorization", format!("Basic {}", app.admin_key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A revoked key stops working at once.
    let user = app.user("revoke@example.com", "r").await;
    let (status, _) = app.get(&user.api_key, "/oauth_clients").await;
    assert_eq!(status, 200);
    let store = app.server.store.as_ref();
    let (key, _) = store
        .authenticate_api_key(&oauth_core::secret::hash_secret(&user.api_key), 0)
        .await
        .unwrap()
        .unwrap();
    assert!(key.last_used_at.is_some(), "the use was recorded");
    assert!(store.revoke_api_key(&key.id, 1).await.unwrap());
    let (status, body) = app.get(&user.api_key, "/oauth_clients").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let app = TestApp::spawn().await;
    let key = app.admin_key.clone();
    let c = app
        .create_client(&key, confidential_client("Durable"))
        .await;
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    let id = c["client_id"].as_str().unwrap().to_owned();
    let user = app.user("durable@example.com", "durable-org").await;
    let (again, _dir) = app.restart().await;
    assert!(
        again.bootstrap.is_none(),
        "the admin is created once per database"
    );

    let http = reqwest::Client::new();
    let got: serde_json::Value = http
        .get(format!("{}/oauth_clients/{id}", again.url()))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["data"]["name"], "Durable");
    let stored = again.store.get_client(&id).await.unwrap().unwrap();
    assert!(oauth_core::secret::verify_secret(
        &secret,
        &stored.secret_hash.unwrap()
    ));
    let r = http
        .get(format!("{}/oauth_clients", again.url()))
        .bearer_auth(&user.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    again.stop().await.unwrap();
}

/// Thirty partial updates at once, each changing one field: every one takes effect (each is
/// applied to the client as stored, not as its request read it), and the client ends with all
/// of them.
#[tokio::test]
async fn concurrent_partial_updates_are_all_kept() {
    let app = TestApp::spawn().await;
    let c = app
        .create_client(&app.admin_key, confidential_client("Before"))
        .await;
    let path = format!("/oauth_clients/{}", c["client_id"].as_str().unwrap());
    let patches = [
        json!({"name": "After"}),
        json!({"logo_uri": "https://app.example.com/new-logo.png"}),
        json!({"policy_uri": "https://app.example.com/new-policy"}),
        json!({"tos_uri": "https://app.example.com/new-tos"}),
        json!({"allowed_scopes": ["messaging"]}),
        json!({"require_pkce": true}),
    ];
    let answers = futures_util::future::join_all(
        (0..30).map(|i| app.put_json(&app.admin_key, &path, &patches[i % patches.len()])),
    )
    .await;
    for (i, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "update {i}: {body}");
    }
    let (status, got) = app.get(&app.admin_key, &path).await;
    assert_eq!(status, 200, "{got}");
    let d = &got["data"];
    assert_eq!(d["name"], "After");
    assert_eq!(d["logo_uri"], "https://app.example.com/new-logo.png");
    assert_eq!(d["policy_uri"], "https://app.example.com/new-policy");
    assert_eq!(d["tos_uri"], "https://app.example.com/new-tos");
    assert_eq!(d["allowed_scopes"], json!(["messaging"]));
    assert_eq!(d["require_pkce"], true);
    assert_eq!(d["redirect_uris"], c["redirect_uris"]);
}

/// An organization holds at most `max_clients_per_organization` clients: a member's key cannot
/// fill the database with them. Past the cap a create is a 422 that stores nothing; 30 creates
/// at once never take it past; another organization is not held back; a deletion makes room.
/// On SQLite, and on PostgreSQL when `OAUTH_TEST_POSTGRES_URL` is set.
#[tokio::test]
async fn an_organization_holds_at_most_its_cap_of_clients() {
    let adjust = |c: &mut oauth_server::Config| {
        c.max_clients_per_organization = 5;
        c.tokens.key_encryption_key = Some(oauth_core::keys::KeyEncryptionKey::generate(
            &mut rand::rngs::OsRng,
        ));
    };
    for (app, _guard) in &crate::databases::on_both_databases(adjust).await {
        let creates = (0..30).map(|i| {
            let body = confidential_client(&format!("Client {i}"));
            async move { app.post_json(&app.admin_key, "/oauth_clients", &body).await }
        });
        let answers = futures_util::future::join_all(creates).await;
        let created = answers.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(created, 5, "{answers:?}");
        for (status, err) in answers.iter().filter(|(s, _)| *s != 201) {
            assert_eq!(*status, 422, "{err}");
            assert_eq!(err["errors"][0]["code"], "limit_reached", "{err}");
            assert!(err["error_description"]
                .as_str()
                .unwrap()
                .contains("5 OAuth clients"));
        }
        let (_, list) = app.get(&app.admin_key, "/oauth_clients").await;
        assert_eq!(list["meta"]["total_results"], 5);
        // Another organization has its own room.
        let other = app.user("other@example.com", "other-org").await;
        let (status, _) = app
            .post_json(
                &other.api_key,
                "/oauth_clients",
                &confidential_client("Theirs"),
            )
            .await;
        assert_eq!(status, 201);
        // A deletion makes room for one more.
        let id = list["data"][0]["client_id"].as_str().unwrap();
        let r = app
            .http
            .delete(app.at(&format!("/oauth_clients/{id}")))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (status, _) = app
            .post_json(
                &app.admin_key,
                "/oauth_clients",
                &confidential_client("Again"),
            )
            .await;
        assert_eq!(status, 201);
        let (status, _) = app
            .post_json(
                &app.admin_key,
                "/oauth_clients",
                &confidential_client("One too many"),
            )
            .await;
        assert_eq!(status, 422);
    }
}
