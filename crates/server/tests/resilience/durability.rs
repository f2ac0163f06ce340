//! `kill -9` in the middle of a write load (registrations, code exchanges, refresh rotations),
//! then a restart on the same database: every answer the clients got a 2xx for is there, and
//! nothing is half-written.
//!
//! A request in flight when the process died has no answer: it may or may not have been
//! committed, and the checks accept both, but only those two outcomes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// Registrations that got a 201: (client_id, client_secret, client_name).
type Registered = Arc<Mutex<Vec<(String, String, String)>>>;

/// One refresh-token chain, on its own client (so its own grant and family).
struct Chain {
    client: (String, String),
    /// Every refresh token this chain received, in order; the last one is current.
    tokens: Vec<String>,
    /// The process died while a rotation of the last token was in flight (sent, no answer).
    in_flight: bool,
}

/// A code exchange that got a 200.
struct Exchanged {
    client: (String, String),
    code: String,
    access_token: String,
    refresh_token: String,
}

const REGISTER_WORKERS: usize = 2;
const CODE_WORKERS: usize = 2;
const CHAINS: usize = 3;

async fn kill9_in_the_middle_of_writes(db: FreshDb) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "oauth.toml", "");
    let server = Server::start(&db.url, &config).await;
    let admin_key = server.api_key.clone().unwrap();
    let api = Api::new(&server, &admin_key);

    // Setup: chain clients with their first tokens, and the code workers' clients.
    let mut chains = Vec::new();
    for i in 0..CHAINS {
        let client = api.code_client(&format!("Chain {i}")).await;
        let code = api.code(&client.0).await.unwrap();
        let r = api.exchange((&client.0, &client.1), &code).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        let rt = r.body["refresh_token"].as_str().unwrap().to_owned();
        chains.push(Chain {
            client,
            tokens: vec![rt],
            in_flight: false,
        });
    }
    let mut code_clients = Vec::new();
    for i in 0..CODE_WORKERS {
        code_clients.push(api.code_client(&format!("Codes {i}")).await);
    }

    let successes = Arc::new(AtomicUsize::new(0));
    let registered: Registered = Arc::default();
    let exchanged: Arc<Mutex<Vec<Exchanged>>> = Arc::default();
    let rotations: Arc<Vec<AtomicUsize>> =
        Arc::new((0..CHAINS).map(|_| AtomicUsize::new(0)).collect());

    let mut register_tasks = Vec::new();
    for w in 0..REGISTER_WORKERS {
        let (api, registered, successes) = (api.clone(), registered.clone(), successes.clone());
        register_tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("Registered {w}-{i}");
                let sent = api
                    .send(api.http.post(api.at("/oauth/register")).json(&json!({
                        "client_name": name,
                        "redirect_uris": ["https://r.example/cb"],
                        "grant_types": ["authorization_code", "refresh_token"]
                    })))
                    .await;
                let Ok(r) = sent else { break };
                assert_eq!(r.status, 201, "{}", r.text);
                registered.lock().unwrap().push((
                    r.body["client_id"].as_str().unwrap().to_owned(),
                    r.body["client_secret"].as_str().unwrap().to_owned(),
                    name,
                ));
                successes.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let mut code_tasks = Vec::new();
    for client in code_clients {
        let (api, exchanged, successes) = (api.clone(), exchanged.clone(), successes.clone());
        code_tasks.push(tokio::spawn(async move {
            let c = (client.0.as_str(), client.1.as_str());
            loop {
                let Ok(code) = api.code(c.0).await else { break };
                let Ok(r) = api.exchange(c, &code).await else {
                    break;
                };
                assert_eq!(r.status, 200, "{}", r.text);
                exchanged.lock().unwrap().push(Exchanged {
                    client: client.clone(),
                    code,
                    access_token: r.body["access_token"].as_str().unwrap().to_owned(),
                    refresh_token: r.body["refresh_token"].as_str().unwrap().to_owned(),
                });
                successes.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let mut chain_tasks = Vec::new();
    for (i, mut chain) in chains.into_iter().enumerate() {
        let (api, successes, rotations) = (api.clone(), successes.clone(), rotations.clone());
        chain_tasks.push(tokio::spawn(async move {
            loop {
                let c = (chain.client.0.as_str(), chain.client.1.as_str());
                let current = chain.tokens.last().unwrap().clone();
                match api.refresh(c, &current).await {
                    Ok(r) => {
                        assert_eq!(r.status, 200, "{}", r.text);
                        chain
                            .tokens
                            .push(r.body["refresh_token"].as_str().unwrap().to_owned());
                        rotations[i].fetch_add(1, Ordering::SeqCst);
                        successes.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        // Refused: never reached the server. Anything else: it may have.
                        chain.in_flight = !e.is_connect();
                        break;
                    }
                }
            }
            chain
        }));
    }

    // Kill once the load is well under way: every chain has rotated twice and 40 writes
    // were answered. The trigger is progress, not time.
    let deadline = Instant::now() + Duration::from_secs(120);
    while successes.load(Ordering::SeqCst) < 40
        || rotations.iter().any(|r| r.load(Ordering::SeqCst) < 2)
    {
        assert!(Instant::now() < deadline, "the load made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9().await;
    for t in register_tasks.into_iter().chain(code_tasks) {
        t.await.unwrap();
    }
    let mut chains = Vec::new();
    for t in chain_tasks {
        chains.push(t.await.unwrap());
    }
    let registered = registered.lock().unwrap().clone();
    let exchanged = std::mem::take(&mut *exchanged.lock().unwrap());
    eprintln!(
        "killed after {} registrations, {} code exchanges, rotations {:?}",
        registered.len(),
        exchanged.len(),
        chains
            .iter()
            .map(|c| c.tokens.len() - 1)
            .collect::<Vec<_>>()
    );

    // The database as the crash left it, before any restart touches it.
    check_invariants(&db, &chains).await;

    let server = Server::start(&db.url, &config).await;
    assert!(server.api_key.is_none(), "not a first start");
    let api = Api::new(&server, &admin_key);

    // Every registration answered 201 exists, with its data, and its secret works.
    // (A registered client is a third party: no member's API key sees it, so the row is read
    // from the database.)
    for (id, secret, name) in &registered {
        let stored = db
            .scalar(&format!(
                "SELECT COUNT(*) FROM oauth_clients WHERE client_id = '{id}' AND name = '{name}' \
                 AND client_type = 'confidential' AND origin = 'registration' \
                 AND redirect_uris = '[\"https://r.example/cb\"]'"
            ))
            .await;
        assert_eq!(stored, 1, "{id}");
        let r = api
            .post_form("/oauth/introspect", (id, secret), &[("token", "x")])
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{id} authenticates: {}", r.text);
        assert_eq!(r.body, json!({"active": false}));
    }
    if let Some((id, _, _)) = registered.first() {
        let r = api
            .post_form("/oauth/introspect", (id, "wrong"), &[("token", "x")])
            .await
            .unwrap();
        assert_oauth_error(&r, 401, "invalid_client");
    }
    let stored = db
        .scalar("SELECT COUNT(*) FROM oauth_clients WHERE name LIKE 'Registered %'")
        .await as usize;
    assert!(
        (registered.len()..=registered.len() + REGISTER_WORKERS).contains(&stored),
        "{stored} registered clients stored, {} answered",
        registered.len()
    );

    // Each code answered 200: its access token is live and its refresh token works.
    for e in &exchanged {
        let c = (e.client.0.as_str(), e.client.1.as_str());
        let seen = api.introspect(c, &e.access_token).await;
        assert_eq!(seen["active"], true, "{seen}");
    }
    for e in &exchanged {
        let c = (e.client.0.as_str(), e.client.1.as_str());
        let r = api.refresh(c, &e.refresh_token).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // ...and is spent: a replay is refused and revokes its grant.
    if let Some(e) = exchanged.first() {
        let c = (e.client.0.as_str(), e.client.1.as_str());
        assert_oauth_error(
            &api.exchange(c, &e.code).await.unwrap(),
            400,
            "invalid_grant",
        );
        assert_eq!(api.introspect(c, &e.access_token).await["active"], false);
    }
    for e in &exchanged {
        let c = (e.client.0.as_str(), e.client.1.as_str());
        assert_oauth_error(
            &api.exchange(c, &e.code).await.unwrap(),
            400,
            "invalid_grant",
        );
    }

    // Each chain: the last refresh token answered works, unless a rotation of it was in
    // flight and committed; the one before it is spent, and presenting it is reuse.
    for chain in &chains {
        let c = (chain.client.0.as_str(), chain.client.1.as_str());
        let last = chain.tokens.last().unwrap();
        let r = api.refresh(c, last).await.unwrap();
        let newest = match r.status {
            200 => Some(r.body["refresh_token"].as_str().unwrap().to_owned()),
            _ => {
                assert_oauth_error(&r, 400, "invalid_grant");
                assert!(
                    chain.in_flight,
                    "the last refresh token answered was spent, with no rotation in flight"
                );
                None
            }
        };
        let previous = &chain.tokens[chain.tokens.len() - 2];
        assert_oauth_error(
            &api.refresh(c, previous).await.unwrap(),
            400,
            "invalid_grant",
        );
        if let Some(newest) = newest {
            // The reuse revoked the family, the token just issued included.
            assert_oauth_error(
                &api.refresh(c, &newest).await.unwrap(),
                400,
                "invalid_grant",
            );
        }
    }
    server.stop().await;
}

/// What must hold in the database whatever moment the process died at.
async fn check_invariants(db: &FreshDb, chains: &[Chain]) {
    if !db.is_postgres() {
        assert_eq!(db.sqlite_texts("PRAGMA integrity_check").await, vec!["ok"]);
        assert_eq!(
            db.sqlite_texts("PRAGMA foreign_key_check").await,
            Vec::<String>::new()
        );
    }
    let zero = [
        // A confidential client has its secret's hash, a public one none.
        "SELECT COUNT(*) FROM oauth_clients \
         WHERE (client_type = 'confidential') <> (secret_hash IS NOT NULL)",
        // A refresh token exists only for a grant whose code was spent.
        "SELECT COUNT(*) FROM refresh_tokens r WHERE NOT EXISTS \
         (SELECT 1 FROM authorization_codes c WHERE c.grant_id = r.grant_id AND c.used_at IS NOT NULL)",
        // A code exchange spends the code and stores its refresh token in one transaction: no
        // spent code of a client allowed refresh tokens is without one (this load sends no
        // exchange that its checks would reject).
        "SELECT COUNT(*) FROM authorization_codes c JOIN oauth_clients cl ON cl.client_id = c.client_id \
         WHERE c.used_at IS NOT NULL AND cl.grant_types LIKE '%refresh_token%' \
         AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = c.grant_id)",
        // A refresh token belongs to its grant's client and user.
        "SELECT COUNT(*) FROM refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id \
         WHERE g.client_id <> r.client_id OR g.user_id <> r.user_id",
        // A code belongs to its grant's client and user.
        "SELECT COUNT(*) FROM authorization_codes c JOIN oauth_grants g ON g.id = c.grant_id \
         WHERE g.client_id <> c.client_id OR g.user_id <> c.user_id",
        // One live grant per user and client.
        "SELECT COUNT(*) FROM (SELECT user_id, client_id FROM oauth_grants \
         WHERE revoked_at IS NULL GROUP BY user_id, client_id HAVING COUNT(*) > 1) t",
    ];
    for sql in zero {
        assert_eq!(db.scalar(sql).await, 0, "{sql}");
    }
    for chain in chains {
        let id = &chain.client.0;
        // A rotation uses up the old token and stores the new one in one transaction: a
        // chain has exactly one live token, and as many used ones as answered rotations (one
        // more when the last was in flight and committed).
        let live = db
            .scalar(&format!(
                "SELECT COUNT(*) FROM refresh_tokens WHERE client_id = '{id}' \
                 AND used_at IS NULL AND revoked_at IS NULL"
            ))
            .await;
        assert_eq!(live, 1, "chain of {id}: one live refresh token");
        let used = db
            .scalar(&format!(
                "SELECT COUNT(*) FROM refresh_tokens WHERE client_id = '{id}' AND used_at IS NOT NULL"
            ))
            .await as usize;
        let answered = chain.tokens.len() - 1;
        let allowed = if chain.in_flight {
            answered..=answered + 1
        } else {
            answered..=answered
        };
        assert!(
            allowed.contains(&used),
            "chain of {id}: {used} used, {answered} rotations answered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill9_loses_no_acknowledged_write() {
    kill9_in_the_middle_of_writes(FreshDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill9_loses_no_acknowledged_write() {
    let Some(db) = FreshDb::postgres().await else {
        eprintln!("skipped: set {POSTGRES_ENV} to run the PostgreSQL durability test");
        return;
    };
    kill9_in_the_middle_of_writes(db).await;
}
