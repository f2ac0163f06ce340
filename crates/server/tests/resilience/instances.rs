//! Two server processes on one PostgreSQL database: the races that matter are decided by the
//! database, and whatever one instance changes the other sees, with the bounds the
//! documentation states (docs/operations.md).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

/// Two instances, A and B, on one fresh database. A reloads the signing keys every second, B
/// once an hour: B sees a rotated key only through the reload on an unknown kid.
pub struct Pair {
    pub db: FreshDb,
    pub database_url: String,
    _dir: tempfile::TempDir,
    pub a: Server,
    pub b: Server,
    pub api_a: Api,
    pub api_b: Api,
}

pub async fn pair() -> Option<Pair> {
    let db = FreshDb::postgres().await?;
    let dir = tempfile::tempdir().unwrap();
    let fast = config_file(dir.path(), "a.toml", "[tokens]\nkey_reload_secs = 1");
    let slow = config_file(dir.path(), "b.toml", "[tokens]\nkey_reload_secs = 3600");
    let a = Server::start(&db.url, &fast).await;
    let key = a.api_key.clone().expect("the first start bootstraps");
    let b = Server::start(&db.url, &slow).await;
    assert!(b.api_key.is_none(), "one bootstrap per database");
    let (api_a, api_b) = (Api::new(&a, &key), Api::new(&b, &key));
    Some(Pair {
        database_url: db.url.clone(),
        db,
        _dir: dir,
        a,
        b,
        api_a,
        api_b,
    })
}

pub fn skipped() {
    eprintln!(
        "skipped: set {POSTGRES_ENV} to run the several-instances tests (they need PostgreSQL)"
    );
}

/// Sends one request to each instance at once.
async fn both<F, Fut>(p: &Pair, f: F) -> (Resp, Resp)
where
    F: Fn(Api) -> Fut,
    Fut: std::future::Future<Output = Resp> + Send + 'static,
{
    let (ra, rb) = tokio::join!(
        tokio::spawn(f(p.api_a.clone())),
        tokio::spawn(f(p.api_b.clone()))
    );
    (ra.unwrap(), rb.unwrap())
}

/// Exactly one 200; the other is `invalid_grant`. Returns the winner.
fn one_winner((ra, rb): (Resp, Resp)) -> Resp {
    let (win, lose) = match (ra.status, rb.status) {
        (200, _) => (ra, rb),
        (_, 200) => (rb, ra),
        _ => panic!("no winner: {} / {}", ra.text, rb.text),
    };
    assert_oauth_error(&lose, 400, "invalid_grant");
    win
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn races_across_instances_have_exactly_one_winner() {
    let Some(p) = pair().await else {
        return skipped();
    };
    for round in 0..5 {
        // Code redemption: one code, sent to both instances at once.
        let client = p.api_a.code_client(&format!("Race {round}")).await;
        let code = p.api_a.code(&client.0).await.unwrap();
        let c = client.clone();
        let win = one_winner(
            both(&p, move |api| {
                let (c, code) = (c.clone(), code.clone());
                async move { api.exchange((&c.0, &c.1), &code).await.unwrap() }
            })
            .await,
        );
        // The losing redemption was a replay: the grant and everything from it is revoked,
        // whichever instance is asked.
        let c = (client.0.as_str(), client.1.as_str());
        let at = win.body["access_token"].as_str().unwrap();
        let rt = win.body["refresh_token"].as_str().unwrap();
        for api in [&p.api_a, &p.api_b] {
            assert_eq!(api.introspect(c, at).await, json!({"active": false}));
            assert_oauth_error(&api.refresh(c, rt).await.unwrap(), 400, "invalid_grant");
        }

        // Refresh rotation: one refresh token, sent to both at once.
        let client = p.api_b.code_client(&format!("Rotation {round}")).await;
        let code = p.api_b.code(&client.0).await.unwrap();
        let c = (client.0.as_str(), client.1.as_str());
        let first = p.api_b.exchange(c, &code).await.unwrap();
        assert_eq!(first.status, 200, "{}", first.text);
        let rt = first.body["refresh_token"].as_str().unwrap().to_owned();
        let cc = client.clone();
        let win = one_winner(
            both(&p, move |api| {
                let (cc, rt) = (cc.clone(), rt.clone());
                async move { api.refresh((&cc.0, &cc.1), &rt).await.unwrap() }
            })
            .await,
        );
        // The loser presented a used token: reuse, so the family is revoked, the winner's
        // new tokens included, on both instances.
        let new_rt = win.body["refresh_token"].as_str().unwrap();
        let new_at = win.body["access_token"].as_str().unwrap();
        for api in [&p.api_a, &p.api_b] {
            assert_eq!(api.introspect(c, new_at).await, json!({"active": false}));
            assert_oauth_error(&api.refresh(c, new_rt).await.unwrap(), 400, "invalid_grant");
        }
    }
    p.a.stop().await;
    p.b.stop().await;
}

fn authorize_with(client_id: &str, redirect_uri: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", "messaging"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    format!("/oauth/authorize?{q}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_instance_are_seen_by_the_other_at_once() {
    let Some(p) = pair().await else {
        return skipped();
    };
    let (a, b) = (&p.api_a, &p.api_b);

    // A client update on A: B uses the new redirect URIs and name on its next request.
    let client = a.code_client("Shared").await;
    let c = (client.0.as_str(), client.1.as_str());
    let moved = "https://moved.example/cb";
    let unregistered = "The redirect_uri is not registered for this application.";
    let r = b.get(&authorize_with(c.0, moved)).await.unwrap();
    assert_eq!(r.status, 422, "not registered yet: {}", r.text);
    assert!(r.text.contains(unregistered), "{}", r.text);
    let r = a
        .put_json(
            &format!("/oauth_clients/{}", c.0),
            &json!({"name": "Shared, renamed", "redirect_uris": [moved]}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let r = b.get(&authorize_with(c.0, moved)).await.unwrap();
    assert_eq!(r.status, 302, "{}", r.text);
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("/consent?consent_token="));
    let r = b.get(&authorize_with(c.0, REDIRECT)).await.unwrap();
    assert_eq!(r.status, 422, "the old redirect URI is gone: {}", r.text);
    assert!(r.text.contains(unregistered), "{}", r.text);
    let r = b.get(&format!("/oauth_clients/{}", c.0)).await.unwrap();
    assert_eq!(r.body["data"]["name"], "Shared, renamed");

    // A grant revoked through A: B's introspection and refresh see it on the next request
    // (bound 0: validation reads the grant by its key every time, nothing is cached).
    let client = a.code_client("Revoked").await;
    let c = (client.0.as_str(), client.1.as_str());
    let code = a.code(c.0).await.unwrap();
    let r = a.exchange(c, &code).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let at = r.body["access_token"].as_str().unwrap().to_owned();
    let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
    let grant_id = jwt_parts(&at).1["grant_id"].as_str().unwrap().to_owned();
    assert_eq!(b.introspect(c, &at).await["active"], true);
    let r = a
        .delete(&format!("/oauth_grants/{grant_id}"))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["id"], grant_id.as_str());
    assert_eq!(b.introspect(c, &at).await, json!({"active": false}));
    assert_oauth_error(&b.refresh(c, &rt).await.unwrap(), 400, "invalid_grant");

    // A client deleted through A: B refuses its credentials on the next request.
    let r = b
        .post_form("/oauth/token", c, &[("grant_type", "client_credentials")])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let r = a.delete(&format!("/oauth_clients/{}", c.0)).await.unwrap();
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    let r = b
        .post_form("/oauth/token", c, &[("grant_type", "client_credentials")])
        .await
        .unwrap();
    assert_oauth_error(&r, 401, "invalid_client");
    assert_eq!(
        b.get(&format!("/oauth_clients/{}", c.0))
            .await
            .unwrap()
            .status,
        404
    );
    p.a.stop().await;
    p.b.stop().await;
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn cc_token(api: &Api, c: (&str, &str)) -> String {
    let r = api
        .post_form("/oauth/token", c, &[("grant_type", "client_credentials")])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["access_token"].as_str().unwrap().to_owned()
}

fn kid_of(token: &str) -> String {
    jwt_parts(token).0["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_reaches_both_instances() {
    let Some(p) = pair().await else {
        return skipped();
    };
    let (a, b) = (&p.api_a, &p.api_b);
    let client = a.code_client("Keys").await;
    let c = (client.0.as_str(), client.1.as_str());
    let jwks = |api: &Api| {
        let api = api.clone();
        async move { api.get("/oauth/jwks").await.unwrap().body }
    };
    let old_kids = kids(&jwks(a).await);
    assert_eq!(old_kids.len(), 1);
    assert_eq!(kids(&jwks(b).await), old_kids);
    let old_token = cc_token(b, c).await;

    // Rotate with the CLI on the same database; the new key signs at once (no publish delay),
    // the old one stays published.
    let (ok, out, err) = admin(
        &p.database_url,
        &["keys", "rotate", "--key-publish-delay-secs", "0", "--json"],
    );
    assert!(ok, "{err}");
    let rotation: Value = serde_json::from_str(out.trim()).unwrap();
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();
    assert!(!old_kids.contains(&new_kid));

    // A reloads every second: within that, it publishes and signs with the new key.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kids(&jwks(a).await).contains(&new_kid) {
        assert!(Instant::now() < deadline, "A never loaded the new key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let from_a = cc_token(a, c).await;
    assert_eq!(kid_of(&from_a), new_kid);
    // B (hourly reload) has not loaded it yet: its JWK set still lacks it...
    assert_eq!(kids(&jwks(b).await), old_kids);
    // ...but a token naming the new kid makes it reload at once, and verify.
    let seen = b.introspect(c, &from_a).await;
    assert_eq!(seen["active"], true, "{seen}");
    let mut both_kids = kids(&jwks(b).await);
    both_kids.sort();
    let mut expected = vec![old_kids[0].clone(), new_kid.clone()];
    expected.sort();
    assert_eq!(both_kids, expected, "B publishes both keys now");
    // B signs with the new key too, and A verifies it; tokens of the old key stay valid on
    // both until they expire.
    let from_b = cc_token(b, c).await;
    assert_eq!(kid_of(&from_b), new_kid);
    assert_eq!(a.introspect(c, &from_b).await["active"], true);
    assert_eq!(kid_of(&old_token), old_kids[0]);
    for api in [a, b] {
        assert_eq!(api.introspect(c, &old_token).await["active"], true);
    }
    p.a.stop().await;
    p.b.stop().await;
}
