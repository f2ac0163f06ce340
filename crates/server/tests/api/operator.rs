//! What the operator does to a user with the admin commands while the server runs: a new
//! password (`users set-password`) and removing the user (`users delete`), on both databases,
//! checked through the running server's HTTP answers and the stored rows.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::databases::{on_both_databases, POSTGRES_KEK};
use crate::flow::*;
use crate::oauth_support::*;
use crate::support::{confidential_client, TestApp};

const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");

/// Runs an admin command against `app`'s database, with the server's key-encryption key as
/// an operator gives it: (success, stdout, stderr).
fn admin(app: &TestApp, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let kek = app
        .database_url
        .starts_with("postgres")
        .then_some(POSTGRES_KEK);
    admin_with(app, args, stdin, kek)
}

/// Runs an admin command with `kek` as `OAUTH_KEY_ENCRYPTION_KEY` (none: on SQLite, the file
/// beside the database).
fn admin_with(
    app: &TestApp,
    args: &[&str],
    stdin: Option<&str>,
    kek: Option<&str>,
) -> (bool, String, String) {
    admin_at(&app.database_url, args, stdin, kek)
}

/// Runs an admin command against the database at `database_url`.
fn admin_at(
    database_url: &str,
    args: &[&str],
    stdin: Option<&str>,
    kek: Option<&str>,
) -> (bool, String, String) {
    let mut command = Command::new(BIN);
    command
        .env_remove("OAUTH_CONFIG")
        .env_remove("OAUTH_KEY_ENCRYPTION_KEY")
        .env("OAUTH_DATABASE_URL", database_url);
    if let Some(kek) = kek {
        command.env("OAUTH_KEY_ENCRYPTION_KEY", kek);
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `users set-password --email EMAIL --password-stdin [more]` with `stdin`.
fn set_password_from_stdin(
    app: &TestApp,
    email: &str,
    stdin: &str,
    more: &[&str],
) -> (bool, String, String) {
    let mut args = vec![
        "users",
        "set-password",
        "--email",
        email,
        "--password-stdin",
    ];
    args.extend_from_slice(more);
    admin(app, &args, Some(stdin))
}

async fn status_with_bearer(app: &TestApp, token: &str, path: &str) -> u16 {
    let r = app
        .http
        .get(app.at(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn deleting_a_user_ends_everything_they_could_reach() {
    for (app, _db) in on_both_databases(|_| {}).await {
        let leaver = app.user("leaver@example.com", "acme").await;
        let stayer = app.user("stayer@example.com", "acme").await;
        let second_key = oauth_server::accounts::create_api_key(
            app.server.store.as_ref(),
            &leaver.email,
            None,
            app.clock.now(),
        )
        .await
        .unwrap()
        .api_key;
        let session = app.session(&leaver).await;
        let (app_id, app_secret, _, tokens) = connected_app(&app, &leaver, "Leaver's app").await;
        let at = tokens["access_token"].as_str().unwrap();
        let rt = tokens["refresh_token"].as_str().unwrap();
        // A machine client the leaver made with their API key: its tokens act for them.
        let (machine_id, machine_secret) = cc_client_with(
            &app,
            &leaver.api_key,
            confidential_client("Leaver's machine"),
        )
        .await;
        let machine_token = cc_token(&app, &machine_id, &machine_secret, None).await;
        assert_eq!(
            status_with_bearer(&app, &machine_token, "/oauth_clients").await,
            200
        );
        assert_eq!(
            app.get_with_cookie("/account/apps", &session)
                .await
                .status(),
            200
        );

        // Someone has been guessing the account's password: it is locked.
        for _ in 0..5 {
            let r = app.post_login(&leaver.email, "a wrong guess", "/").await;
            assert_eq!(r.status(), 401);
        }
        let r = app.post_login(&leaver.email, &leaver.password, "/").await;
        assert_eq!(r.status(), 429);

        let (ok, out, err) = admin(
            &app,
            &["users", "delete", "--email", "Leaver@Example.com", "--json"],
            None,
        );
        assert!(ok, "{err}");
        let printed: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(
            printed,
            json!({
                "user_id": leaver.user_id,
                "email": "leaver@example.com",
                "sessions_ended": 1,
                "api_keys_revoked": 2,
                "grants_revoked": 1,
                "clients_created": 2,
                "org_id": leaver.org_id,
                "members_left": 1,
                "failed_sign_ins_forgotten": true,
            })
        );

        // Every credential of theirs is refused by the running server at once.
        for key in [&leaver.api_key, &second_key] {
            let (status, body) = app.get(key, "/oauth_clients").await;
            assert_eq!(status, 401, "{body}");
        }
        let r = app.get_with_cookie("/account/apps", &session).await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/login"), "{}", location(&r));
        assert_eq!(
            introspect_as(&app, &app_id, &app_secret, at).await,
            inactive()
        );
        assert_eq!(
            introspect_as(&app, &app_id, &app_secret, rt).await,
            inactive()
        );
        let r = refresh_request(&app, &app_id, &app_secret, rt).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        assert_eq!(status_with_bearer(&app, at, "/oauth_grants").await, 401);
        // The machine client stays with the organization, but acts for nobody now.
        let (status, listed) = app.get(&stayer.api_key, "/oauth_clients").await;
        assert_eq!(status, 200);
        let ids: Vec<&str> = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&machine_id.as_str()) && ids.contains(&app_id.as_str()),
            "{listed}"
        );
        let machine_token = cc_token(&app, &machine_id, &machine_secret, None).await;
        assert_ne!(
            status_with_bearer(&app, &machine_token, "/oauth_clients").await,
            200
        );
        // The password no longer signs anyone in.
        let r = app.post_login(&leaver.email, &leaver.password, "/").await;
        assert_eq!(r.status(), 401, "a refused sign-in");
        assert!(set_cookie(&r, "oauth_session").is_none());

        // Stored: no user row, nothing of theirs left, and the event.
        let store = app.server.store.as_ref();
        assert!(store.get_user(&leaver.user_id).await.unwrap().is_none());
        assert!(store
            .find_user_by_email(&leaver.email)
            .await
            .unwrap()
            .is_none());
        let events = app.events("user.deleted").await;
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.user_id.as_deref(), Some(leaver.user_id.as_str()));
        assert_eq!(e.detail["by"], "operator");
        assert_eq!(e.detail["api_keys_revoked"], 2);
        assert_eq!(e.detail["grants_revoked"], 1);
        assert_eq!(e.detail["sessions_ended"], 1);
        assert_eq!(e.detail["clients_created"], 2);

        // Once only; the other member is untouched.
        let (ok, _, err) = admin(&app, &["users", "delete", "--email", &leaver.email], None);
        assert!(!ok);
        assert!(
            err.contains("no user with email leaver@example.com"),
            "{err}"
        );
        assert_eq!(app.get(&stayer.api_key, "/oauth_clients").await.0, 200);
        assert_eq!(app.events("user.deleted").await.len(), 1);

        // The address can be given to someone new, who inherits nothing: not the grants, and
        // not the lock the guesses left on the address.
        let newcomer = app.user("leaver@example.com", "acme").await;
        assert_ne!(newcomer.user_id, leaver.user_id);
        let r = app
            .post_login(&newcomer.email, &newcomer.password, "/")
            .await;
        assert_eq!(r.status(), 303, "not locked");
        let (status, grants) = app.get(&newcomer.api_key, "/oauth_grants").await;
        assert_eq!(status, 200);
        assert_eq!(grants["data"], json!([]), "{grants}");
    }
}

#[tokio::test]
async fn a_new_password_from_the_operator_signs_every_browser_out() {
    for (app, _db) in on_both_databases(|_| {}).await {
        let user = app.user("forgetful@example.com", "acme").await;
        let first = app.session(&user).await;
        let second = app.session(&user).await;
        let (app_id, app_secret, _, tokens) = connected_app(&app, &user, "App").await;
        let at = tokens["access_token"].as_str().unwrap();

        // Someone locks the account guessing its password (from this address: the owner's
        // browser is not one the server knows).
        let limit = 5;
        for _ in 0..limit {
            let r = app.post_login(&user.email, "a wrong guess", "/").await;
            assert_eq!(r.status(), 401);
        }
        let r = app.post_login(&user.email, &user.password, "/").await;
        assert_eq!(r.status(), 429, "locked, even for the right password");

        // Given another key-encryption key than the server's, the command could not forget
        // the account's failures: it refuses, changing nothing.
        let other_key = "b3RoZXIga2V5OiBub3QgdGhlIHNlcnZlcidzIG93biE=";
        let (ok, _, err) = admin_with(
            &app,
            &["users", "set-password", "--email", &user.email],
            None,
            Some(other_key),
        );
        assert!(!ok);
        assert!(
            err.contains("does not open this database's signing keys"),
            "{err}"
        );
        if !app.database_url.starts_with("postgres") {
            // Nor, on SQLite, does it make a key file of its own when the server's is missing.
            let file = format!("{}.kek", app.database_url.trim_start_matches("sqlite://"));
            let aside = format!("{file}.aside");
            std::fs::rename(&file, &aside).unwrap();
            let (ok, _, err) = admin(
                &app,
                &["users", "set-password", "--email", &user.email],
                None,
            );
            assert!(!ok);
            assert!(err.contains("is missing"), "{err}");
            assert!(!std::path::Path::new(&file).exists(), "no key file made");
            std::fs::rename(&aside, &file).unwrap();
        }
        // Passwords the sign-in form could not take, or too short: refused, nothing changed.
        for (unusable, says) in [
            ("with a\u{0}NUL byte", "control characters"),
            ("with a\ttab inside", "control characters"),
            ("esc\u{1b}[0m aped", "control characters"),
            ("short", "at least 8 characters"),
        ] {
            let (ok, _, err) =
                set_password_from_stdin(&app, &user.email, &format!("{unusable}\n"), &[]);
            assert!(!ok, "{unusable:?}");
            assert!(err.contains(says), "{err}");
        }
        assert_eq!(
            app.get_with_cookie("/account/apps", &first).await.status(),
            200
        );

        let (ok, out, err) =
            set_password_from_stdin(&app, &user.email, "a brand new passphrase\n", &["--json"]);
        assert!(ok, "{err}");
        let printed: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(
            printed,
            json!({
                "user_id": user.user_id,
                "email": "forgetful@example.com",
                "sessions_ended": 2,
            })
        );
        for cookie in [&first, &second] {
            let r = app.get_with_cookie("/account/apps", cookie).await;
            assert_eq!(r.status(), 303, "a session from before is signed out");
        }
        let r = app.post_login(&user.email, &user.password, "/").await;
        assert_eq!(r.status(), 401, "the old password is refused");
        let r = app
            .post_login(&user.email, "a brand new passphrase", "/")
            .await;
        assert_eq!(
            r.status(),
            303,
            "the new password signs in: the lock went with the old one"
        );
        // API keys and grants are not the password's: they stay.
        assert_eq!(app.get(&user.api_key, "/oauth_clients").await.0, 200);
        assert_eq!(
            introspect_as(&app, &app_id, &app_secret, at).await["active"],
            true
        );
        let events = app.events("password.changed").await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].detail["by"], "operator");
        assert_eq!(events[0].detail["other_sessions_ended"], 2);

        // Without --password-stdin a password is made and printed once, and it works.
        let (ok, out, err) = admin(
            &app,
            &["users", "set-password", "--email", &user.email, "--json"],
            None,
        );
        assert!(ok, "{err}");
        let printed: Value = serde_json::from_str(out.trim()).unwrap();
        let generated = printed["password"].as_str().unwrap();
        assert!(generated.len() >= 32, "{printed}");
        assert_eq!(printed["sessions_ended"], 1, "the sign-in just above");
        let r = app.post_login(&user.email, generated, "/").await;
        assert_eq!(r.status(), 303);

        let (ok, _, err) = admin(
            &app,
            &["users", "set-password", "--email", "nobody@example.com"],
            None,
        );
        assert!(!ok);
        assert!(
            err.contains("no user with email nobody@example.com"),
            "{err}"
        );
    }
}

/// The deletion racing the user's apps: ten refreshes (one grant each), ten introspections and
/// ten management calls with the user's key, at once with the deletion. Every answer is a
/// success from before it or a refusal, never a server error; and no token issued in the race
/// outlives it.
#[tokio::test]
async fn a_deletion_racing_refreshes_leaves_no_token_behind() {
    for (app, _db) in on_both_databases(|_| {}).await {
        let user = app.user("racer@example.com", "acme").await;
        let mut apps = Vec::new();
        for _ in 0..10 {
            let (id, secret, _, tokens) = connected_app(&app, &user, "App").await;
            let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
            let at = tokens["access_token"].as_str().unwrap().to_owned();
            apps.push((id, secret, rt, at));
        }
        let app = std::sync::Arc::new(app);
        let mut race = tokio::task::JoinSet::new();
        for (id, secret, rt, at) in apps.clone() {
            let a = app.clone();
            let (own_id, own_secret) = (id.clone(), secret.clone());
            race.spawn(async move {
                let r = refresh_request(&a, &id, &secret, &rt).await;
                assert!(
                    r.status == 200 || (r.status == 400 && r.body["error"] == "invalid_grant"),
                    "{} {}",
                    r.status,
                    r.body
                );
                (r.status == 200).then_some((id, secret, r.body))
            });
            let a = app.clone();
            race.spawn(async move {
                let seen = introspect_as(&a, &own_id, &own_secret, &at).await;
                assert!(seen == inactive() || seen["active"] == true, "{seen}");
                None
            });
            let a = app.clone();
            let key = user.api_key.clone();
            race.spawn(async move {
                let (status, body) = a.get(&key, "/oauth_grants").await;
                assert!(status == 200 || status == 401, "{status} {body}");
                None
            });
        }
        let deleted = oauth_server::accounts::delete_user(
            app.server.store.as_ref(),
            None,
            &user.email,
            app.clock.now(),
        )
        .await
        .unwrap();
        let mut issued = Vec::new();
        while let Some(done) = race.join_next().await {
            if let Some(t) = done.unwrap() {
                issued.push(t);
            }
        }
        // Each grant was live when the race began; none ended but by the deletion.
        assert_eq!(deleted.grants_revoked, 10, "{deleted:?}");
        for (id, secret, body) in issued {
            for token in [&body["access_token"], &body["refresh_token"]] {
                let token = token.as_str().unwrap();
                assert_eq!(introspect_as(&app, &id, &secret, token).await, inactive());
            }
            let rt = body["refresh_token"].as_str().unwrap();
            let r = refresh_request(&app, &id, &secret, rt).await;
            assert_eq!(
                (r.status, r.body["error"].as_str()),
                (400, Some("invalid_grant"))
            );
        }
        for (id, secret, rt, at) in &apps {
            assert_eq!(introspect_as(&app, id, secret, at).await, inactive());
            assert_eq!(introspect_as(&app, id, secret, rt).await, inactive());
        }
        assert_eq!(app.get(&user.api_key, "/oauth_grants").await.0, 401);
    }
}

/// The operator deletes a client of any organization: a dynamically registered one (which no
/// member of any organization can delete) and one of a member's organization. Its grants and
/// tokens end with it, on both databases.
#[tokio::test]
async fn the_operator_deletes_a_client_of_any_organization() {
    for (app, _db) in on_both_databases(|_| {}).await {
        let user = app.user("approver@example.com", "acme").await;
        let (status, registered) = crate::register::register(
            &app,
            None,
            &json!({"client_name": "Lookalike", "redirect_uris": [REDIRECT]}),
        )
        .await;
        assert_eq!(status, 201, "{registered}");
        let id = registered["client_id"].as_str().unwrap().to_owned();
        let secret = registered["client_secret"].as_str().unwrap().to_owned();
        let mut params = standard_params(&id);
        params.retain(|(k, _)| *k != "scope");
        params.push(("scope", "messaging".into()));
        let tokens = approved_tokens(&app, &user, &id, &secret, &params).await;
        let at = tokens["access_token"].as_str().unwrap().to_owned();
        let (own_id, own_secret) =
            cc_client_with(&app, &user.api_key, confidential_client("Own machine")).await;
        let own_token = cc_token(&app, &own_id, &own_secret, None).await;
        assert_eq!(
            status_with_bearer(&app, &own_token, "/oauth_clients").await,
            200
        );
        // The user who approved it sees the token active.
        let (status, body) = app
            .post_json(&user.api_key, "/oauth/introspect", &json!({"token": at}))
            .await;
        assert_eq!((status, &body["active"]), (200, &json!(true)), "{body}");

        for client in [&id, &own_id] {
            let (ok, out, err) = admin(&app, &["clients", "delete", client, "--json"], None);
            assert!(ok, "{err}");
            let printed: Value = serde_json::from_str(out.trim()).unwrap();
            assert_eq!(printed["client_id"], client.as_str());
            assert_eq!(printed["deleted"], true);
            assert!(app.server.store.get_client(client).await.unwrap().is_none());
        }
        // Its grant and tokens are gone with it.
        let (status, grants) = app.get(&user.api_key, "/oauth_grants").await;
        assert_eq!(status, 200);
        assert_eq!(grants["data"], json!([]), "{grants}");
        let (status, _) = app.get(&user.api_key, "/oauth_clients").await;
        assert_eq!(status, 200);
        assert_eq!(
            app.get(&user.api_key, &format!("/oauth_clients/{own_id}"))
                .await
                .0,
            404
        );
        assert_eq!(
            status_with_bearer(&app, &own_token, "/oauth_clients").await,
            401
        );
        assert_eq!(status_with_bearer(&app, &at, "/oauth_grants").await, 401);
        let (status, body) = app
            .post_json(&user.api_key, "/oauth/introspect", &json!({"token": at}))
            .await;
        assert_eq!((status, &body["active"]), (200, &json!(false)), "{body}");
        let events = app.events("client.deleted").await;
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.detail["by"] == "operator"));

        let (ok, _, err) = admin(&app, &["clients", "delete", &id], None);
        assert!(!ok);
        assert!(err.contains("no client with id"), "{err}");
        assert_eq!(app.events("client.deleted").await.len(), 2);
    }
}

/// `--json` output of an admin command that must succeed.
fn admin_json(app: &TestApp, args: &[&str]) -> Value {
    let (ok, out, err) = admin(app, args, None);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// The values of `field` in the rows under `list`, sorted.
fn column(printed: &Value, list: &str, field: &str) -> Vec<String> {
    let mut values: Vec<String> = printed[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {printed}"))
        .iter()
        .map(|row| row[field].as_str().unwrap().to_owned())
        .collect();
    values.sort();
    values
}

/// The list commands show the operator who and what is there, a page at a time: users (of
/// one organization or all), a user's API keys without the keys, and an organization's
/// clients, the registered ones under the organization of third-party clients.
#[tokio::test]
async fn the_operator_lists_users_their_keys_and_clients() {
    for (app, _db) in on_both_databases(|_| {}).await {
        let a = app.user("a@example.com", "acme").await;
        let b = app.user("b@example.com", "acme").await;
        let c = app.user("c@example.com", "other").await;
        let everyone = admin_json(&app, &["users", "list", "--json"]);
        assert_eq!(everyone["total"], 4, "{everyone}");
        let emails = column(&everyone, "users", "email");
        assert_eq!(emails.len(), 4);
        for u in [&a, &b, &c] {
            assert!(emails.contains(&u.email), "{everyone}");
        }
        assert!(
            !everyone.to_string().contains("argon2"),
            "no password hash: {everyone}"
        );
        let acme = admin_json(&app, &["users", "list", "--org", &a.org_id, "--json"]);
        assert_eq!(acme["total"], 2);
        assert_eq!(
            column(&acme, "users", "email"),
            [a.email.as_str(), b.email.as_str()]
        );
        assert_eq!(
            column(&acme, "users", "org_id"),
            [a.org_id.as_str(), a.org_id.as_str()]
        );
        // Pages: one at a time, all four seen once; past the end, none.
        let mut paged = Vec::new();
        for page in ["1", "2", "3", "4"] {
            let one = admin_json(
                &app,
                &["users", "list", "--size", "1", "--page", page, "--json"],
            );
            assert_eq!(one["total"], 4);
            paged.extend(column(&one, "users", "email"));
        }
        paged.sort();
        assert_eq!(paged, emails);
        let past = admin_json(
            &app,
            &["users", "list", "--size", "1", "--page", "5", "--json"],
        );
        assert_eq!((&past["users"], &past["total"]), (&json!([]), &json!(4)));
        for bad in [["--size", "0"], ["--size", "101"], ["--page", "0"]] {
            let (ok, out, err) = admin(&app, &["users", "list", bad[0], bad[1]], None);
            assert!(!ok && out.is_empty(), "{bad:?}: {out}");
            assert!(err.contains(bad[0]), "{bad:?}: {err}");
        }
        let (ok, text, _) = admin(&app, &["users", "list", "--org", &c.org_id], None);
        assert!(ok);
        assert!(
            text.contains("c@example.com") && text.contains("(1-1 of 1)"),
            "{text}"
        );
        assert!(!text.contains("a@example.com"), "{text}");

        // API keys: a second key, revoked; the keys themselves are never shown.
        assert_eq!(app.get(&a.api_key, "/oauth_clients").await.0, 200);
        let second = admin_json(
            &app,
            &[
                "api-keys", "create", "--email", &a.email, "--name", "second", "--json",
            ],
        );
        let second_id = second["id"].as_str().unwrap().to_owned();
        let second_key = second["api_key"].as_str().unwrap().to_owned();
        admin_json(&app, &["api-keys", "revoke", &second_id, "--json"]);
        let keys = admin_json(
            &app,
            &["api-keys", "list", "--email", " A@Example.COM ", "--json"],
        );
        assert_eq!(keys["total"], 2, "{keys}");
        let listed = keys["api_keys"].as_array().unwrap();
        let revoked: Vec<&Value> = listed
            .iter()
            .filter(|k| k["id"] == second_id.as_str())
            .collect();
        assert_eq!(revoked.len(), 1, "{keys}");
        assert_eq!(revoked[0]["name"], "second");
        assert!(revoked[0]["revoked_at"].is_string(), "{keys}");
        assert!(revoked[0]["last_used_at"].is_null(), "{keys}");
        let first = listed
            .iter()
            .find(|k| k["id"] != second_id.as_str())
            .unwrap();
        assert!(
            first["revoked_at"].is_null() && first["last_used_at"].is_string(),
            "{keys}"
        );
        let (ok, text, _) = admin(&app, &["api-keys", "list", "--email", &a.email], None);
        assert!(ok);
        for printed in [keys.to_string(), text] {
            assert!(!printed.contains(&second_key) && !printed.contains(&a.api_key));
        }
        let none = admin_json(
            &app,
            &[
                "api-keys", "list", "--email", &b.email, "--size", "1", "--json",
            ],
        );
        assert_eq!(none["total"], 1);
        let (ok, _, err) = admin(
            &app,
            &["api-keys", "list", "--email", "nobody@example.com"],
            None,
        );
        assert!(!ok);
        assert!(err.contains("no user with email"), "{err}");

        // Clients: a member's, and a registered one among the third parties'.
        let (own_id, _) =
            cc_client_with(&app, &a.api_key, confidential_client("Own machine")).await;
        let (status, registered) = crate::register::register(
            &app,
            None,
            &json!({"client_name": "Registered", "redirect_uris": [REDIRECT]}),
        )
        .await;
        assert_eq!(status, 201, "{registered}");
        let listed = admin_json(&app, &["clients", "list", "--org", &a.org_id, "--json"]);
        assert_eq!(listed["total"], 1);
        assert_eq!(column(&listed, "clients", "client_id"), [own_id.as_str()]);
        assert_eq!(listed["clients"][0]["origin"], "management");
        assert!(!listed.to_string().contains("secret"), "{listed}");
        let third = admin_json(
            &app,
            &[
                "clients",
                "list",
                "--org",
                oauth_core::client::THIRD_PARTY_ORG_ID,
                "--json",
            ],
        );
        assert_eq!(
            column(&third, "clients", "client_id"),
            [registered["client_id"].as_str().unwrap()]
        );
        assert_eq!(third["clients"][0]["name"], "Registered");
        let (ok, text, _) = admin(&app, &["clients", "list", "--org", "org_nobody"], None);
        assert!(ok);
        assert!(
            text.starts_with("no clients in the organization with id \"org_nobody\""),
            "{text}"
        );

        // The last member of an organization leaves: the deletion says what stays behind.
        let (other_id, other_secret) =
            cc_client_with(&app, &c.api_key, confidential_client("Other's")).await;
        let (ok, text, err) = admin(&app, &["users", "delete", "--email", &c.email], None);
        assert!(ok, "{err}");
        let hint = format!("see `oauth-server clients list --org {}`", c.org_id);
        assert!(
            text.contains("has no member left") && text.contains(&hint),
            "{text}"
        );
        let left = admin_json(&app, &["clients", "list", "--org", &c.org_id, "--json"]);
        assert_eq!(column(&left, "clients", "client_id"), [other_id.as_str()]);
        assert!(!cc_token(&app, &other_id, &other_secret, None)
            .await
            .is_empty());
        let (ok, text, err) = admin(&app, &["users", "delete", "--email", &b.email], None);
        assert!(ok, "{err}");
        assert!(
            !text.contains("no member left"),
            "a remains in acme: {text}"
        );
    }
}

/// The commands that read or remove refuse a database this server never ran on (a URL naming
/// another application's database, an empty file) and give it none of their tables.
#[tokio::test]
async fn admin_commands_leave_a_foreign_database_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.db");
    std::fs::write(&file, b"").unwrap();
    let mut databases = vec![(format!("sqlite://{}", file.display()), None)];
    if let Some((url, guard)) = crate::db::postgres_url().await {
        databases.push((url, Some(guard)));
    }
    for (url, _guard) in &databases {
        let commands: [&[&str]; 6] = [
            &["users", "list"],
            &["api-keys", "list", "--email", "a@example.com"],
            &["clients", "delete", "c"],
            &["users", "delete", "--email", "a@example.com"],
            &["events", "list"],
            &["keys", "list"],
        ];
        for args in commands {
            let (ok, out, err) = admin_at(url, args, None, Some(POSTGRES_KEK));
            assert!(!ok && out.is_empty(), "{args:?}: {out}");
            assert!(
                err.contains("holds no oauth-server tables"),
                "{args:?}: {err}"
            );
        }
    }
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        0,
        "no table in the file"
    );
    if let Some((url, _)) = databases.get(1) {
        assert_eq!(
            pg_tables(url, "public").await,
            0,
            "no table in the database"
        );
    }

    // Another application's SQLite file, with a schema version of its own: refused, and left
    // exactly as it was (its version, its journal mode, its tables).
    let other = dir.path().join("other.db");
    let url = format!("sqlite://{}", other.display());
    let conn = crate::support::sqlite(&url);
    conn.execute_batch(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); PRAGMA user_version = 7;",
    )
    .unwrap();
    let (ok, _, err) = admin_at(&url, &["users", "list"], None, None);
    assert!(!ok);
    assert!(err.contains("holds no oauth-server tables"), "{err}");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tables, ["notes"]);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!((version, journal.as_str()), (7, "delete"));
    // `migrate`, which may write, refuses it too: the migrations would trust version 7, skip
    // the first seven and fail on the eighth, with the file switched to WAL.
    let (ok, out, err) = admin_at(&url, &["migrate"], None, None);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("is another application's database (schema version 7, 1 objects"),
        "{err}"
    );
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!((journal.as_str(), count), ("delete", 1), "left as it was");
    // Held by another process's write lock, it cannot be read: the command stops rather than
    // migrate it on the chance that it is ours.
    conn.execute_batch("BEGIN EXCLUSIVE; INSERT INTO notes (body) VALUES ('pending');")
        .unwrap();
    let (ok, out, err) = admin_at(&url, &["users", "list"], None, None);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("reading the SQLite database"), "{err}");
    conn.execute_batch("ROLLBACK").unwrap();
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1, "still only its own table");
    // Tables that happen to bear our names, without the record of our migrations: refused,
    // before the migrations could try to run on them.
    conn.execute_batch(
        "PRAGMA user_version = 0; CREATE TABLE server_state (x); CREATE TABLE oauth_clients (y);",
    )
    .unwrap();
    let (ok, _, err) = admin_at(&url, &["users", "list"], None, None);
    assert!(!ok);
    assert!(err.contains("holds no oauth-server tables"), "{err}");
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete");

    // Another application that records its migrations as sqlx does: its record is not taken
    // for ours, by `migrate` or by any other command.
    let sqlx_app = dir.path().join("sqlx-app.db");
    let url = format!("sqlite://{}", sqlx_app.display());
    let conn = crate::support::sqlite(&url);
    conn.execute_batch(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, \
             installed_on TEXT, success BOOLEAN, checksum BLOB, execution_time BIGINT); \
         INSERT INTO _sqlx_migrations (version, description, success) VALUES \
             (1, 'orders', TRUE), (2, 'items', TRUE); \
         CREATE TABLE orders (id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    let (ok, out, err) = admin_at(&url, &["users", "list"], None, None);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("holds no oauth-server tables"), "{err}");
    let (ok, out, err) = admin_at(&url, &["migrate"], None, None);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("is another application's database"), "{err}");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((version, tables), (0, 2), "its record was not adopted");

    // An application that records its schema some other way (as Django and Rails do, in a
    // table of their own, `user_version` left at 0): `migrate` adds nothing to it.
    let app = dir.path().join("app.sqlite3");
    let url = format!("sqlite://{}", app.display());
    let conn = crate::support::sqlite(&url);
    conn.execute_batch(
        "CREATE TABLE django_migrations (id INTEGER PRIMARY KEY, app TEXT, name TEXT); \
         INSERT INTO django_migrations (app, name) VALUES ('blog', '0001_initial'); \
         CREATE TABLE blog_post (id INTEGER PRIMARY KEY, title TEXT);",
    )
    .unwrap();
    let (ok, out, err) = admin_at(&url, &["migrate"], None, None);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("is another application's database (schema version 0, 2 objects"),
        "{err}"
    );
    let (journal, tables): (String, i64) = (
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap(),
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap(),
    );
    assert_eq!((journal.as_str(), tables), ("delete", 2));

    // Files with something of their own other than a table, or with two of our table names:
    // refused. A file whose only object is an empty `_sqlx_migrations` (what the earlier
    // runner left when its first migration failed) is migrated.
    for (name, setup, refused) in [
        ("view.db", "CREATE VIEW answer AS SELECT 42;", true),
        ("app-id.db", "PRAGMA application_id = 1234;", true),
        (
            "names.db",
            "CREATE TABLE server_state (x); CREATE TABLE oauth_clients (y); \
             PRAGMA user_version = 2;",
            true,
        ),
        (
            "sqlx-failed.db",
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, success BOOLEAN); \
             INSERT INTO _sqlx_migrations VALUES (1, FALSE);",
            true,
        ),
        (
            "sqlx-view.db",
            "CREATE VIEW _sqlx_migrations AS SELECT 1 AS version, TRUE AS success;",
            true,
        ),
        (
            "sqlx-empty.db",
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, success BOOLEAN);",
            false,
        ),
    ] {
        let url = format!("sqlite://{}", dir.path().join(name).display());
        let conn = crate::support::sqlite(&url);
        conn.execute_batch(setup).unwrap();
        let (ok, out, err) = admin_at(&url, &["migrate"], None, None);
        if refused {
            assert!(!ok && out.is_empty(), "{name}: {out}");
            assert!(
                err.contains("is another application's database"),
                "{name}: {err}"
            );
            let journal: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(journal, "delete", "{name}");
        } else {
            assert!(ok, "{name}: {err}");
            let version: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert!(version > 0, "{name}");
        }
    }

    // A file that is not SQLite at all, however short, is not taken for a new database.
    for (name, bytes) in [
        ("one.db", &b"x"[..]),
        ("text.db", b"hello, not a database\n"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (ok, _, err) = admin_at(
            &format!("sqlite://{}", path.display()),
            &["migrate"],
            None,
            None,
        );
        assert!(!ok);
        assert!(err.contains("is not a SQLite database"), "{name}: {err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} unchanged");
    }
}

/// A database of ours in rollback-journal mode, left with a hot journal by a crash mid-write:
/// the foreign-file check reads it as any SQLite reader does, rolling the journal back first,
/// and the commands go on.
#[tokio::test]
async fn a_crashed_write_is_rolled_back_before_the_foreign_file_check() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let live_url = format!("sqlite://{}", live.display());
    let (ok, _, err) = admin_at(&live_url, &["migrate"], None, None);
    assert!(ok, "{err}");
    let conn = crate::support::sqlite(&live_url);
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    // A write whose pages spill into the file before it commits, with the originals in the
    // journal; a copy of both taken now is what a crash at this moment leaves.
    conn.execute_batch(
        "PRAGMA cache_size = 2; BEGIN; CREATE TABLE spill (x BLOB); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) \
         INSERT INTO spill SELECT randomblob(500) FROM n;",
    )
    .unwrap();
    let crashed = dir.path().join("crashed.db");
    std::fs::copy(&live, &crashed).unwrap();
    let journal = dir.path().join("live.db-journal");
    assert!(journal.exists(), "the write has a journal");
    std::fs::copy(&journal, dir.path().join("crashed.db-journal")).unwrap();
    conn.execute_batch("ROLLBACK").unwrap();

    let url = format!("sqlite://{}", crashed.display());
    let (ok, out, err) = admin_at(&url, &["migrate"], None, None);
    assert!(ok, "{err}");
    assert!(out.contains("up to date"), "{out}");
    let conn = crate::support::sqlite(&url);
    let spill: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'spill'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(spill, 0, "the crashed write was rolled back");
}

/// Tables in `schema` of the PostgreSQL database at `url`.
async fn pg_tables(url: &str, schema: &str) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let (tables,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = $1")
            .bind(schema)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    tables
}

/// On PostgreSQL the tables are looked for where the migrations would make them: the first
/// schema of the `search_path`, not one further along it that holds them already.
#[tokio::test]
async fn admin_commands_look_for_the_tables_in_the_first_schema_of_the_path() {
    let Some((url, _guard)) = crate::db::postgres_url().await else {
        eprintln!("skipped: OAUTH_TEST_POSTGRES_URL is not set");
        return;
    };
    let (ok, _, err) = admin_at(&url, &["migrate"], None, Some(POSTGRES_KEK));
    assert!(ok, "{err}");
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE SCHEMA empty")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let with_path = |path: &str| {
        let mut u = url::Url::parse(&url).unwrap();
        u.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={path}"));
        u.to_string()
    };
    let shadowed = with_path("empty,public");
    let (ok, out, err) = admin_at(&shadowed, &["users", "list"], None, Some(POSTGRES_KEK));
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("holds no oauth-server tables"), "{err}");
    assert_eq!(pg_tables(&url, "empty").await, 0);
    // Nor is a schema whose tables merely bear our names, without our migrations' record.
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for sql in [
            "CREATE SCHEMA foreign_app",
            "CREATE TABLE foreign_app.server_state (x int)",
            "CREATE TABLE foreign_app.oauth_clients (y int)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
    }
    let named = with_path("foreign_app");
    let (ok, _, err) = admin_at(&named, &["users", "list"], None, Some(POSTGRES_KEK));
    assert!(!ok);
    assert!(err.contains("holds no oauth-server tables"), "{err}");
    assert_eq!(pg_tables(&url, "foreign_app").await, 2);
    // Where the path starts with the schema that holds them, the command runs.
    let direct = with_path("public,empty");
    let (ok, out, err) = admin_at(&direct, &["users", "list"], None, Some(POSTGRES_KEK));
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "no users");
    assert_eq!(pg_tables(&url, "empty").await, 0);
}
