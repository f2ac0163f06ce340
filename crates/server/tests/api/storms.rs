//! Thirty token and introspection requests at once, hostile ones among honest ones: unknown and
//! malformed client ids (a NUL byte, SQL text, a value longer than a PostgreSQL index row), wrong
//! secrets, forged, foreign, revoked and malformed tokens. On PostgreSQL, point reads of one
//! statement that arrive together are answered by one statement; a table lock held while the
//! requests arrive makes them wait together, so that the reads of good and bad requests share
//! statements. Each request must get its own answer (a token for its own client, its own
//! token's claims), each bad one its own refusal, and nothing is stored but the refusals the
//! audit log keeps for wrong secrets. The same storms run on SQLite.

use std::sync::Arc;
use std::time::Duration;

use oauth_core::keys::KeyEncryptionKey;
use serde_json::json;
use sqlx::Connection;

use crate::oauth_support::{basic, cc_client, cc_token, into_resp, jwt_parts, post_form, Resp};
use crate::support::TestApp;

/// The key-encryption key of the PostgreSQL test server (PostgreSQL requires one).
const KEK: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// Requests in one storm.
const STORM: usize = 30;

/// Honest clients; the storm's good requests take them in turn.
const CLIENTS: usize = 6;

/// How long the table lock holds the storm's reads back.
const HOLD: Duration = Duration::from_millis(300);

/// What one request of a token storm presents, and so what it must be answered.
#[derive(Debug, Clone)]
enum Presents {
    /// Client `k`'s own credentials in `Basic`: a token for client `k`.
    Own(usize),
    /// Client `k`'s own credentials in the body: a token for client `k`.
    OwnInBody(usize),
    /// Client `k`'s id with a wrong secret: `invalid_client`, stored as a refusal.
    WrongSecret(usize),
    /// Another id in `Basic` (unknown, SQL text, a NUL byte, 3,000 bytes): `invalid_client`.
    Stranger(String),
    /// An unknown id in the body: `invalid_client`.
    StrangerInBody(String),
}

/// The storm's requests: half honest, half hostile, mixed.
fn token_storm() -> Vec<Presents> {
    let strangers = [
        "no-such-client".to_owned(),
        "a\u{0}b".to_owned(),
        "x'; DROP TABLE oauth_clients; --".to_owned(),
        "$1".to_owned(),
        "\\' OR '1'='1".to_owned(),
        "h".repeat(3000),
    ];
    (0..STORM)
        .map(|i| match i % 10 {
            0 | 4 | 8 => Presents::Own(i / 2 % CLIENTS),
            2 | 6 => Presents::OwnInBody(i / 2 % CLIENTS),
            7 if i < 10 => Presents::WrongSecret(i % CLIENTS),
            5 => Presents::StrangerInBody(format!("unknown-{i}")),
            _ => Presents::Stranger(format!("{}{i}", strangers[i / 2 % strangers.len()])),
        })
        .collect()
}

/// Where the storm's requests go: cloned into each request's task.
#[derive(Clone)]
struct Target {
    http: reqwest::Client,
    url: String,
}

impl Target {
    fn of(app: &TestApp) -> Self {
        Self {
            http: app.http.clone(),
            url: app.url.clone(),
        }
    }

    async fn post(&self, path: &str, auth: Option<&str>, form: &[(&str, &str)]) -> Resp {
        let mut req = self.http.post(format!("{}{path}", self.url)).form(form);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        into_resp(req.send().await.unwrap()).await
    }
}

async fn ask_token(to: &Target, clients: &[(String, String)], p: &Presents) -> Resp {
    let cc = ("grant_type", "client_credentials");
    let path = "/oauth/token";
    match p {
        Presents::Own(k) => {
            let (id, secret) = &clients[*k];
            to.post(path, Some(&basic(id, secret)), &[cc]).await
        }
        Presents::OwnInBody(k) => {
            let (id, secret) = &clients[*k];
            let form = [cc, ("client_id", id), ("client_secret", secret)];
            to.post(path, None, &form).await
        }
        Presents::WrongSecret(k) => {
            let id = &clients[*k].0;
            to.post(path, Some(&basic(id, "wrong")), &[cc]).await
        }
        Presents::Stranger(id) => to.post(path, Some(&basic(id, "secret")), &[cc]).await,
        Presents::StrangerInBody(id) => {
            let form = [cc, ("client_id", id.as_str()), ("client_secret", "secret")];
            to.post(path, None, &form).await
        }
    }
}

fn assert_refused(r: &Resp, what: &Presents) {
    assert_eq!(r.status, 401, "{what:?}: {}", r.body);
    assert_eq!(r.body["error"], "invalid_client", "{what:?}: {}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what:?}");
    assert!(r.body.get("access_token").is_none(), "{what:?}: {}", r.body);
}

/// What an introspection must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Active, a token of client `k`.
    Active(usize),
    Inactive,
    /// 400 `invalid_request` (a NUL byte in the token).
    Invalid,
}

/// One request of an introspection storm: the introspecting client, the token, the answer.
struct Asks {
    client: usize,
    token: String,
    answer: Answer,
}

/// The honest clients' tokens introspected by their own client (active) and by another
/// client of the organization (inactive), beside forged, revoked and malformed tokens.
fn introspection_storm(tokens: &[String], revoked: &[String]) -> Vec<Asks> {
    // The signature's first character changed: a forgery of a real token.
    let forged = |t: &str| {
        let (signed, sig) = t.rsplit_once('.').unwrap();
        let first = if sig.starts_with('A') { "B" } else { "A" };
        format!("{signed}.{first}{}", &sig[1..])
    };
    (0..STORM)
        .map(|i| {
            let k = i % CLIENTS;
            let (client, token, answer) = match i % 6 {
                0 | 3 => (k, tokens[k].clone(), Answer::Active(k)),
                1 => ((k + 1) % CLIENTS, tokens[k].clone(), Answer::Inactive),
                2 => (k, forged(&tokens[k]), Answer::Inactive),
                4 => (k, revoked[k].clone(), Answer::Inactive),
                _ if i % 4 == 1 => (k, "a\u{0}b.c.d".to_owned(), Answer::Invalid),
                _ => {
                    let junk = ["not-a-token", "e30.e30.", "'; --"][i % 3];
                    (k, junk.to_owned(), Answer::Inactive)
                }
            };
            Asks {
                client,
                token,
                answer,
            }
        })
        .collect()
}

/// Runs `requests` at once, each spawned: the answers, in order.
async fn all_at_once<T: Send + 'static>(
    requests: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>>,
) -> Vec<T> {
    let barrier = Arc::new(tokio::sync::Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|r| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                r.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Most reads of one statement text that run at once while others of it wait (the store's
/// `MOST_RUNNING`), plus the storms' reads that never share (a NUL byte).
const MOST_BLOCKED: i64 = 4 + 2;

/// Holds `oauth_clients` locked against every read while `storm` runs (on PostgreSQL), so
/// that the storm's reads queue up behind the first ones: until some read waits on the lock,
/// then [`HOLD`] longer. The answers, and the most backends seen waiting on the lock at once
/// (0 on SQLite). Without the sharing every request's read would take a pooled connection of
/// its own and wait there: 16, the pool's size.
async fn held_back<T>(
    pg_url: Option<&str>,
    storm: impl std::future::Future<Output = T>,
) -> (T, i64) {
    let Some(url) = pg_url else {
        return (storm.await, 0);
    };
    let mut lock = sqlx::PgConnection::connect(url).await.unwrap();
    let mut look = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("LOCK TABLE oauth_clients IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let release = async {
        let mut most = 0;
        let mut held_since = None;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let blocked: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut look)
            .await
            .unwrap();
            most = most.max(blocked);
            let now = tokio::time::Instant::now();
            if blocked > 0 && held_since.is_none() {
                held_since = Some(now);
            }
            if held_since.is_some_and(|t| now - t >= HOLD) || now >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
        most
    };
    let (out, most) = tokio::join!(storm, release);
    lock.close().await.unwrap();
    look.close().await.unwrap();
    (out, most)
}

fn assert_shared(blocked: i64, pg_url: Option<&str>) {
    if pg_url.is_some() {
        assert!(
            (1..=MOST_BLOCKED).contains(&blocked),
            "{blocked} reads waited on the lock at once"
        );
    }
}

/// The number of rows of each table a token or introspection request could write to.
async fn stored(app: &TestApp, pg_url: Option<&str>) -> Vec<(&'static str, i64)> {
    const TABLES: &[&str] = &[
        "oauth_clients",
        "oauth_grants",
        "authorization_codes",
        "revoked_tokens",
        "refresh_tokens",
        "security_events",
    ];
    let mut counts = Vec::new();
    match pg_url {
        None => {
            let c = crate::support::sqlite(&app.database_url);
            for t in TABLES {
                let sql = format!("SELECT COUNT(*) FROM {t}");
                counts.push((*t, c.query_row(&sql, [], |r| r.get(0)).unwrap()));
            }
        }
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            for t in TABLES {
                let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
                counts.push((*t, n));
            }
            c.close().await.unwrap();
        }
    }
    counts
}

async fn storms(app: &TestApp, pg_url: Option<&str>) {
    let to = Target::of(app);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(cc_client(app).await);
    }
    let clients = Arc::new(clients);

    // Tokens: the honest get their own, the hostile are refused.
    let presented = token_storm();
    let before = stored(app, pg_url).await;
    let requests = presented
        .iter()
        .map(|p| {
            let (to, clients, p) = (to.clone(), clients.clone(), p.clone());
            Box::pin(async move { ask_token(&to, &clients, &p).await }) as _
        })
        .collect();
    let (answers, blocked): (Vec<Resp>, _) = held_back(pg_url, all_at_once(requests)).await;
    assert_shared(blocked, pg_url);
    for (p, r) in presented.iter().zip(&answers) {
        match p {
            Presents::Own(k) | Presents::OwnInBody(k) => {
                assert_eq!(r.status, 200, "{p:?}: {}", r.body);
                let (_, claims) = jwt_parts(r.body["access_token"].as_str().unwrap());
                assert_eq!(claims["client_id"], json!(clients[*k].0), "{p:?}");
                assert_eq!(claims["sub"], json!(clients[*k].0), "{p:?}");
            }
            _ => assert_refused(r, p),
        }
    }
    let wrong_secrets = presented
        .iter()
        .filter(|p| matches!(p, Presents::WrongSecret(_)))
        .count();
    let mut expected = before.clone();
    for (t, n) in &mut expected {
        if *t == "security_events" {
            *n += i64::try_from(wrong_secrets).unwrap();
        }
    }
    assert_eq!(stored(app, pg_url).await, expected, "only the refusals");
    // The client whose secret was guessed at still gets tokens, as do the others.
    for (id, secret) in clients.iter() {
        cc_token(app, id, secret, None).await;
    }

    // Introspection: each client sees its own token active, nothing else.
    let mut tokens = Vec::new();
    let mut revoked = Vec::new();
    for (id, secret) in clients.iter() {
        tokens.push(cc_token(app, id, secret, Some("messaging")).await);
        let gone = cc_token(app, id, secret, None).await;
        let r = post_form(
            app,
            "/oauth/revoke",
            Some(&basic(id, secret)),
            &[("token", &gone)],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        revoked.push(gone);
    }
    let asked = Arc::new(introspection_storm(&tokens, &revoked));
    let before = stored(app, pg_url).await;
    let requests = (0..asked.len())
        .map(|i| {
            let (to, clients, asked) = (to.clone(), clients.clone(), asked.clone());
            Box::pin(async move {
                let (id, secret) = &clients[asked[i].client];
                let form = [("token", asked[i].token.as_str())];
                to.post("/oauth/introspect", Some(&basic(id, secret)), &form)
                    .await
            }) as _
        })
        .collect();
    let (answers, blocked): (Vec<Resp>, _) = held_back(pg_url, all_at_once(requests)).await;
    assert_shared(blocked, pg_url);
    for (a, r) in asked.iter().zip(&answers) {
        let what = format!("{:?} by client {}: {}", a.token, a.client, r.body);
        match a.answer {
            Answer::Active(k) => {
                assert_eq!(r.status, 200, "{what}");
                assert_eq!(r.body["active"], true, "{what}");
                assert_eq!(r.body["client_id"], json!(clients[k].0), "{what}");
                assert_eq!(r.body["scope"], "messaging", "{what}");
                let (_, claims) = jwt_parts(&a.token);
                assert_eq!(r.body["jti"], claims["jti"], "its own token: {what}");
            }
            Answer::Inactive => {
                assert_eq!(r.status, 200, "{what}");
                assert_eq!(r.body, json!({"active": false}), "{what}");
            }
            Answer::Invalid => {
                assert_eq!(r.status, 400, "{what}");
                assert_eq!(r.body["error"], "invalid_request", "{what}");
            }
        }
    }
    assert_eq!(
        stored(app, pg_url).await,
        before,
        "introspection writes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_hostile_and_honest_requests_at_once_on_sqlite() {
    let app = TestApp::spawn().await;
    storms(&app, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_hostile_and_honest_requests_at_once_on_postgres() {
    let Some((url, guard)) = crate::db::postgres_url().await else {
        eprintln!(
            "skipped: set {} to run this test on PostgreSQL",
            crate::db::POSTGRES_ENV
        );
        return;
    };
    let kek = KeyEncryptionKey::from_base64(KEK).unwrap();
    let app = TestApp::spawn_on(
        tempfile::tempdir().unwrap(),
        url.clone(),
        |c| c.tokens.key_encryption_key = Some(kek),
        Arc::new(oauth_server::clock::SystemClock),
    )
    .await;
    storms(&app, Some(&url)).await;
    let TestApp { server, .. } = app;
    server.stop().await.unwrap();
    drop(guard);
}

#[test]
fn the_storms_mix_every_kind_of_request() {
    let presented = token_storm();
    let count = |f: fn(&Presents) -> bool| presented.iter().filter(|p| f(p)).count();
    assert_eq!(
        count(|p| matches!(p, Presents::Own(_) | Presents::OwnInBody(_))),
        15
    );
    assert_eq!(count(|p| matches!(p, Presents::WrongSecret(_))), 1);
    assert_eq!(count(|p| matches!(p, Presents::StrangerInBody(_))), 3);
    for mark in ["\u{0}", "'", "$1", "\\", "hhhhhhhhhh"] {
        assert!(
            presented
                .iter()
                .any(|p| matches!(p, Presents::Stranger(id) if id.contains(mark))),
            "{mark:?}"
        );
    }
    let tokens: Vec<String> = (0..CLIENTS).map(|k| format!("h.p.sig{k}")).collect();
    let revoked: Vec<String> = (0..CLIENTS).map(|k| format!("h.p.gone{k}")).collect();
    let asked = introspection_storm(&tokens, &revoked);
    let answers = |want: Answer| asked.iter().filter(|a| a.answer == want).count();
    assert_eq!(
        (0..CLIENTS)
            .map(|k| answers(Answer::Active(k)))
            .sum::<usize>(),
        10
    );
    assert!(answers(Answer::Invalid) >= 1);
    assert!(asked.iter().any(|a| a.answer == Answer::Inactive
        && tokens
            .iter()
            .position(|t| *t == a.token)
            .is_some_and(|k| k != a.client)));
    assert!(asked.iter().any(|a| revoked.contains(&a.token)));
}
