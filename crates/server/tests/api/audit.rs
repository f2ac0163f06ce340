//! The audit trail: real sign-ins, consents, bad client secrets, refresh token reuse, code
//! replay and grant revocations, read back from the database. Each event names the right
//! kind, ids and address, and no event holds a secret used in the test.

use oauth_store::{SecurityEvent, SecurityEventFilter};
use serde_json::{json, Value};

use crate::flow::*;
use crate::oauth_support::*;
use crate::support::{TestApp, TestUser};

/// Every stored event, oldest first.
async fn events(app: &TestApp) -> Vec<SecurityEvent> {
    let mut all = app
        .server
        .store
        .list_security_events(&SecurityEventFilter::default(), 1000)
        .await
        .unwrap();
    all.reverse();
    all
}

async fn of_kind(app: &TestApp, kind: &str) -> Vec<SecurityEvent> {
    events(app)
        .await
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// No stored event contains any of `secrets`, in any field.
async fn assert_no_secrets(app: &TestApp, secrets: &[&str]) {
    let all = events(app).await;
    assert!(!all.is_empty());
    let text = format!("{all:?}");
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !text.contains(s),
            "an event contains the secret {s:?}: {text}"
        );
    }
}

fn endpoint(e: &SecurityEvent) -> &str {
    e.detail["endpoint"].as_str().unwrap_or_default()
}

/// `user` consents to `client_id` with the standard parameters; returns the code.
async fn code_for(app: &TestApp, user: &TestUser, client_id: &str) -> String {
    let token = app
        .consent_token(&user.api_key, &path_of(&standard_params(client_id)))
        .await;
    let (status, body) = app.decide(&user.api_key, &token, true).await;
    assert_eq!(status, 200, "{body}");
    param(body["redirect_uri"].as_str().unwrap(), "code").unwrap()
}

async fn exchange(app: &TestApp, id: &str, secret: &str, code: &str) -> Resp {
    post_form(
        app,
        "/oauth/token",
        Some(&basic(id, secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

#[tokio::test]
async fn sign_ins_failures_and_lockouts_are_recorded_without_emails_or_passwords() {
    let app = TestApp::spawn_with(|c| c.authorization.login_max_failures_per_account = 2).await;
    let alice = app.user("alice@example.com", "acme").await;
    let bob = app.user("bob@example.com", "acme").await;

    let r = app
        .post_login("nobody@example.com", "guessed-password-1", "/")
        .await;
    assert_eq!(r.status(), 401);
    for _ in 0..2 {
        let r = app.post_login(&alice.email, "wrong-password-2", "/").await;
        assert_eq!(r.status(), 401);
    }
    // The account's limit is reached: even the right password is refused now, and so is
    // every attempt after it; the lockout is stored once for its window (checked below).
    let r = app.post_login(&alice.email, &alice.password, "/").await;
    assert_eq!(r.status(), 429);
    for _ in 0..5 {
        let r = app.post_login(&alice.email, "wrong-password-3", "/").await;
        assert_eq!(r.status(), 429);
    }
    let session = app.session(&bob).await;
    let session_value = session.trim_start_matches("oauth_session=").to_owned();

    let failed = of_kind(&app, "login.failed").await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert_eq!(failed[0].user_id, None, "an unknown email names nobody");
    assert_eq!(failed[0].org_id, None);
    assert_eq!(failed[0].detail["reason"], "unknown_account");
    for e in &failed[1..] {
        assert_eq!(e.user_id.as_deref(), Some(alice.user_id.as_str()));
        assert_eq!(e.org_id.as_deref(), Some(alice.org_id.as_str()));
        assert_eq!(e.detail["reason"], "wrong_password");
    }
    for e in &failed {
        assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(endpoint(e), "/login");
        assert_eq!(e.client_id, None);
    }

    let locked = of_kind(&app, "login.locked").await;
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(locked[0].detail["limit"], "account");
    assert_eq!(locked[0].ip.as_deref(), Some("127.0.0.1"));

    let ok = of_kind(&app, "login.succeeded").await;
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0].user_id.as_deref(), Some(bob.user_id.as_str()));
    assert_eq!(ok[0].org_id.as_deref(), Some(bob.org_id.as_str()));
    assert_eq!(ok[0].ip.as_deref(), Some("127.0.0.1"));
    assert!(ok[0].occurred_at >= failed[2].occurred_at);

    assert_no_secrets(
        &app,
        &[
            "nobody@example.com",
            "alice@example.com",
            "bob@example.com",
            "guessed-password-1",
            "wrong-password-2",
            &alice.password,
            &alice.api_key,
            &bob.api_key,
            &session_value,
        ],
    )
    .await;
}

#[tokio::test]
async fn consents_clients_and_grant_revocations_are_recorded() {
    let app = TestApp::spawn().await;
    let user = app.user("carol@example.com", "carol-org").await;
    let (client_id, secret) = cc_client_with(&app, &app.admin_key, code_client("App")).await;

    let created = of_kind(&app, "client.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(created[0].org_id.as_deref(), Some(app.admin_org.as_str()));
    assert!(created[0].user_id.is_some());
    assert_eq!(endpoint(&created[0]), "/oauth_clients");

    let code = code_for(&app, &user, &client_id).await;
    let denied_token = app
        .consent_token(&user.api_key, &path_of(&standard_params(&client_id)))
        .await;
    let (status, _) = app.decide(&user.api_key, &denied_token, false).await;
    assert_eq!(status, 200);

    let grant_id = {
        let (status, body) = app.get(&user.api_key, "/oauth_grants").await;
        assert_eq!(status, 200, "{body}");
        body["data"][0]["id"].as_str().unwrap().to_owned()
    };
    let approved = of_kind(&app, "consent.approved").await;
    assert_eq!(approved.len(), 1, "{approved:?}");
    let a = &approved[0];
    assert_eq!(a.user_id.as_deref(), Some(user.user_id.as_str()));
    assert_eq!(a.org_id.as_deref(), Some(user.org_id.as_str()));
    assert_eq!(a.client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(a.grant_id.as_deref(), Some(grant_id.as_str()));
    assert_eq!(a.detail["scopes"], json!(["admin", "messaging"]));
    assert_eq!(a.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(endpoint(a), "/oauth/grants");

    let denied = of_kind(&app, "consent.denied").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].user_id.as_deref(), Some(user.user_id.as_str()));
    assert_eq!(denied[0].client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(denied[0].grant_id, None);

    let (status, _) = app
        .delete(&user.api_key, &format!("/oauth_grants/{grant_id}"))
        .await;
    assert_eq!(status, 200);
    let revoked = of_kind(&app, "grant.revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    let r = &revoked[0];
    assert_eq!(r.grant_id.as_deref(), Some(grant_id.as_str()));
    assert_eq!(r.user_id.as_deref(), Some(user.user_id.as_str()));
    assert_eq!(r.client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(r.detail["by"], "user");
    assert_eq!(endpoint(r), "/oauth_grants/{id}");

    let (status, _) = app
        .delete(&app.admin_key, &format!("/oauth_clients/{client_id}"))
        .await;
    assert_eq!(status, 204);
    let deleted = of_kind(&app, "client.deleted").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].client_id.as_deref(), Some(client_id.as_str()));

    assert_no_secrets(
        &app,
        &[&code, &denied_token, &secret, &user.api_key, &app.admin_key],
    )
    .await;
}

#[tokio::test]
async fn failed_client_authentication_is_recorded_at_each_oauth_endpoint() {
    let app = TestApp::spawn().await;
    let (id, secret) = cc_client(&app).await;
    let wrong = "not-the-secret-0123456789";

    // A success on the client_credentials hot path writes nothing.
    let before = events(&app).await.len();
    let token = cc_token(&app, &id, &secret, None).await;
    assert_eq!(events(&app).await.len(), before);

    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let r = post_form(
            &app,
            path,
            Some(&basic(&id, wrong)),
            &[("grant_type", "client_credentials"), ("token", &token)],
        )
        .await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(r.body["error"], "invalid_client");
    }
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", wrong),
        ],
    )
    .await;
    assert_eq!(r.status, 401);
    // A confidential client without its secret.
    let r = post_form(
        &app,
        "/oauth/token",
        None,
        &[("grant_type", "client_credentials"), ("client_id", &id)],
    )
    .await;
    assert_eq!(r.status, 401);
    // An unknown client id is logged only (see `audit`): nothing stored for it.
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic("no-such-client", wrong)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.status, 401);

    let failed = of_kind(&app, "client.authentication_failed").await;
    let seen: Vec<(&str, &str, &str)> = failed
        .iter()
        .map(|e| {
            (
                endpoint(e),
                e.detail["reason"].as_str().unwrap(),
                e.detail["method"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("/oauth/token", "wrong_secret", "client_secret_basic"),
            ("/oauth/introspect", "wrong_secret", "client_secret_basic"),
            ("/oauth/revoke", "wrong_secret", "client_secret_basic"),
            ("/oauth/token", "wrong_secret", "client_secret_post"),
            ("/oauth/token", "missing_secret", "none"),
        ]
    );
    for e in &failed {
        assert_eq!(e.client_id.as_deref(), Some(id.as_str()));
        assert_eq!(e.org_id.as_deref(), Some(app.admin_org.as_str()));
        assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
    }
    assert!(events(&app)
        .await
        .iter()
        .all(|e| e.client_id.as_deref() != Some("no-such-client")));
    assert_no_secrets(&app, &[wrong, &secret, &token, &app.admin_key]).await;
}

#[tokio::test]
async fn refresh_reuse_code_replay_and_client_revocation_are_recorded() {
    let app = TestApp::spawn().await;
    let user = app.user("dave@example.com", "dave-org").await;
    let (id, secret) = cc_client_with(&app, &app.admin_key, code_client("App")).await;
    let (other_id, other_secret) = cc_client_with(&app, &app.admin_key, code_client("Other")).await;
    let mut secrets: Vec<String> = vec![secret.clone(), other_secret.clone()];

    // 1. A refresh token used twice: its token family is revoked (the grant stands).
    let code = code_for(&app, &user, &id).await;
    let t = exchange(&app, &id, &secret, &code).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let first_rt = t.body["refresh_token"].as_str().unwrap().to_owned();
    let r = refresh_request(&app, &id, &secret, &first_rt).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second_rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    // Another client presenting the live token changes nothing, but is recorded.
    let r = refresh_request(&app, &other_id, &other_secret, &second_rt).await;
    assert_eq!(r.body["error"], "invalid_grant");
    let r = refresh_request(&app, &id, &secret, &first_rt).await;
    assert_eq!(r.body["error"], "invalid_grant");
    let grant1 = of_kind(&app, "consent.approved").await[0]
        .grant_id
        .clone()
        .unwrap();
    secrets.extend([
        code,
        first_rt,
        second_rt,
        t.body["access_token"].as_str().unwrap().to_owned(),
    ]);

    let wrong_client = of_kind(&app, "refresh_token.wrong_client").await;
    assert_eq!(wrong_client.len(), 1, "{wrong_client:?}");
    assert_eq!(
        wrong_client[0].client_id.as_deref(),
        Some(other_id.as_str())
    );
    assert_eq!(wrong_client[0].grant_id.as_deref(), Some(grant1.as_str()));
    assert_eq!(wrong_client[0].detail["issued_to"], json!(id));

    let reused = of_kind(&app, "refresh_token.reused").await;
    assert_eq!(reused.len(), 1, "{reused:?}");
    let e = &reused[0];
    assert_eq!(e.client_id.as_deref(), Some(id.as_str()));
    assert_eq!(e.grant_id.as_deref(), Some(grant1.as_str()));
    assert_eq!(e.user_id.as_deref(), Some(user.user_id.as_str()));
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(endpoint(e), "/oauth/token");

    // 2. A code redeemed twice by its client: the family of its first exchange is revoked.
    let code = code_for(&app, &user, &id).await;
    let t = exchange(&app, &id, &secret, &code).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let r = exchange(&app, &id, &secret, &code).await;
    assert_eq!(r.body["error"], "invalid_grant");
    let grant2 = of_kind(&app, "consent.approved").await[1]
        .grant_id
        .clone()
        .unwrap();
    // One live grant per user and client, through every family revocation.
    assert_eq!(grant1, grant2);
    let replayed = of_kind(&app, "authorization_code.replayed").await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0].grant_id.as_deref(), Some(grant2.as_str()));
    assert_eq!(replayed[0].client_id.as_deref(), Some(id.as_str()));
    assert_eq!(replayed[0].detail["family_revoked"], true);
    // Presented again, the spent code revokes nothing more and stores nothing more: its client
    // cannot grow the trail by replaying it at its request budget's pace.
    let families_revoked = of_kind(&app, "token_family.revoked").await.len();
    for _ in 0..5 {
        let r = exchange(&app, &id, &secret, &code).await;
        assert_eq!(r.body["error"], "invalid_grant", "{}", r.body);
    }
    assert_eq!(of_kind(&app, "authorization_code.replayed").await.len(), 1);
    assert_eq!(
        of_kind(&app, "token_family.revoked").await.len(),
        families_revoked
    );
    // A replay after the client revoked the family itself (its refresh token, RFC 7009) revokes
    // nothing, and is stored all the same: it is the sign that the code was used twice.
    let other_code = code_for(&app, &user, &id).await;
    let t2 = exchange(&app, &id, &secret, &other_code).await;
    assert_eq!(t2.status, 200, "{}", t2.body);
    let rt2 = t2.body["refresh_token"].as_str().unwrap().to_owned();
    let r = post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&id, &secret)),
        &[("token", &rt2)],
    )
    .await;
    assert_eq!(r.status, 200);
    let families_revoked = of_kind(&app, "token_family.revoked").await.len();
    let r = exchange(&app, &id, &secret, &other_code).await;
    assert_eq!(r.body["error"], "invalid_grant");
    let replayed = of_kind(&app, "authorization_code.replayed").await;
    assert_eq!(replayed.len(), 2, "{replayed:?}");
    assert_eq!(replayed[1].detail["family_revoked"], false, "{replayed:?}");
    assert_eq!(replayed[1].client_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        of_kind(&app, "token_family.revoked").await.len(),
        families_revoked
    );
    secrets.extend([other_code, rt2]);
    let refresh_token = t.body["refresh_token"].as_str().unwrap().to_owned();
    secrets.extend([code, refresh_token.clone()]);

    // 3. A code presented by another client.
    let code = code_for(&app, &user, &id).await;
    let r = exchange(&app, &other_id, &other_secret, &code).await;
    assert_eq!(r.body["error"], "invalid_grant");
    let wrong = of_kind(&app, "authorization_code.wrong_client").await;
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert_eq!(wrong[0].client_id.as_deref(), Some(other_id.as_str()));
    assert_eq!(wrong[0].detail["issued_to"], json!(id));
    secrets.push(code);

    // 4. The client revokes its refresh token (RFC 7009): its family goes with it.
    let code = code_for(&app, &user, &id).await;
    let t = exchange(&app, &id, &secret, &code).await;
    let rt = t.body["refresh_token"].as_str().unwrap().to_owned();
    let access = t.body["access_token"].as_str().unwrap().to_owned();
    let r = post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&id, &secret)),
        &[("token", &access)],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = post_form(
        &app,
        "/oauth/revoke",
        Some(&basic(&id, &secret)),
        &[("token", &rt)],
    )
    .await;
    assert_eq!(r.status, 200);
    // Repeating both revocations answers the same (RFC 7009 §2.2) and records nothing more:
    // a client replaying its dead tokens cannot fill the trail (checked below).
    for _ in 0..5 {
        for token in [&rt, &access] {
            let r = post_form(
                &app,
                "/oauth/revoke",
                Some(&basic(&id, &secret)),
                &[("token", token)],
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    let grant4 = of_kind(&app, "consent.approved").await[3]
        .grant_id
        .clone()
        .unwrap();
    let access_revoked = of_kind(&app, "access_token.revoked").await;
    assert_eq!(access_revoked.len(), 1);
    assert_eq!(access_revoked[0].grant_id.as_deref(), Some(grant4.as_str()));
    assert_eq!(
        access_revoked[0].user_id.as_deref(),
        Some(user.user_id.as_str())
    );
    assert_eq!(access_revoked[0].detail["jti"], jwt_parts(&access).1["jti"]);
    secrets.extend([code, rt, access]);

    // Every family revocation, whoever made it; no grant was revoked.
    assert!(of_kind(&app, "grant.revoked").await.is_empty());
    let revoked: Vec<(String, Value, Value)> = of_kind(&app, "token_family.revoked")
        .await
        .into_iter()
        .map(|e| {
            assert_eq!(e.user_id.as_deref(), Some(user.user_id.as_str()));
            assert_eq!(e.client_id.as_deref(), Some(id.as_str()));
            (
                e.grant_id.unwrap(),
                e.detail["by"].clone(),
                e.detail["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        revoked,
        vec![
            (grant1, json!("server"), json!("refresh_token.reused")),
            (
                grant2,
                json!("server"),
                json!("authorization_code.replayed")
            ),
            // The client's revocation before the second replay.
            (grant4.clone(), json!("client"), Value::Null),
            (grant4, json!("client"), Value::Null),
        ]
    );

    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_no_secrets(&app, &refs).await;
}

/// Renames the events table away (so that every insert fails) or back.
async fn break_the_events_table(app: &TestApp, broken: bool) {
    let sql = if broken {
        "ALTER TABLE security_events RENAME TO security_events_away"
    } else {
        "ALTER TABLE security_events_away RENAME TO security_events"
    };
    crate::support::sqlite(&app.database_url)
        .execute_batch(sql)
        .unwrap();
}

#[tokio::test]
async fn a_failing_event_insert_does_not_fail_the_request() {
    let app = TestApp::spawn().await;
    let user = app.user("erin@example.com", "erin-org").await;
    let (id, _) = cc_client_with(&app, &app.admin_key, code_client("App")).await;
    code_for(&app, &user, &id).await;
    let (_, grants) = app.get(&user.api_key, "/oauth_grants").await;
    let grant_id = grants["data"][0]["id"].as_str().unwrap().to_owned();
    let before = events(&app).await.len();

    break_the_events_table(&app, true).await;
    // Each request answers as it would with a working trail.
    let r = post_form(
        &app,
        "/oauth/token",
        Some(&basic(&id, "wrong-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let r = app.post_login(&user.email, "wrong-password-3", "/").await;
    assert_eq!(r.status(), 401);
    let (status, body) = app
        .delete(&user.api_key, &format!("/oauth_grants/{grant_id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["id"], grant_id.as_str());
    let session = app.session(&user).await;
    assert!(session.starts_with("oauth_session="));
    break_the_events_table(&app, false).await;

    // The revocation happened; the events of those requests are only in the log.
    let (_, grants) = app.get(&user.api_key, "/oauth_grants").await;
    assert_eq!(grants["data"], json!([]));
    assert_eq!(events(&app).await.len(), before);
}

#[tokio::test]
async fn an_approval_whose_event_cannot_be_stored_changes_nothing() {
    let app = TestApp::spawn().await;
    let user = app.user("fay@example.com", "fay-org").await;
    let (id, _) = cc_client_with(&app, &app.admin_key, code_client("App")).await;
    let token = app
        .consent_token(&user.api_key, &path_of(&standard_params(&id)))
        .await;

    // The approval and its event are one write: without the table, neither is stored.
    break_the_events_table(&app, true).await;
    let (status, body) = app.decide(&user.api_key, &token, true).await;
    break_the_events_table(&app, false).await;
    assert_eq!(status, 500, "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("security_events") && !text.contains("no such table"),
        "an internal message reached the caller: {text}"
    );
    let (_, grants) = app.get(&user.api_key, "/oauth_grants").await;
    assert_eq!(grants["data"], json!([]));
    assert!(of_kind(&app, "consent.approved").await.is_empty());

    // The request is still pending: approving it again works, once, with its event.
    let (status, body) = app.decide(&user.api_key, &token, true).await;
    assert_eq!(status, 200, "{body}");
    assert!(param(body["redirect_uri"].as_str().unwrap(), "code").is_some());
    let (_, grants) = app.get(&user.api_key, "/oauth_grants").await;
    let grant_id = grants["data"][0]["id"].as_str().unwrap();
    let approved = of_kind(&app, "consent.approved").await;
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(approved[0].grant_id.as_deref(), Some(grant_id));
    let (status, _) = app.decide(&user.api_key, &token, true).await;
    assert_ne!(status, 200);
}
