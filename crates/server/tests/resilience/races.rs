//! Many simultaneous requests for one grant, split across two instances on one PostgreSQL
//! database: one refresh token presented 30 times, one code exchanged 30 times, and a grant
//! revoked while its codes and refresh tokens are being used. Every answer is a decision (200
//! or `invalid_grant`, never a 500 or a 503), exactly one presentation of a single-use
//! credential wins, and the database holds what the answers say.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use oauth_core::secret::hash_secret;
use serde_json::{json, Value};

use crate::instances::{pair, skipped, Pair};
use crate::support::*;

/// How many times each race runs in one test, each on a fresh client and grant.
const ROUNDS: usize = 3;

/// How many simultaneous presentations of one single-use credential.
const STORM: usize = 30;

type Pending = Pin<Box<dyn Future<Output = Resp> + Send>>;

/// Runs `requests` at once: each waits at one barrier, so that they leave together. The
/// answers, in the order given.
async fn all_at_once(requests: Vec<Pending>) -> Vec<Resp> {
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

/// The instance the `i`-th request of a storm goes to: A and B in turn.
fn instance(p: &Pair, i: usize) -> Api {
    if i % 2 == 0 {
        p.api_a.clone()
    } else {
        p.api_b.clone()
    }
}

/// The statuses of `answers`, for failure messages.
fn statuses(answers: &[Resp]) -> Vec<u16> {
    answers.iter().map(|r| r.status).collect()
}

/// Exactly one answer is 200, every other `invalid_grant`: the winner.
fn exactly_one_winner(answers: Vec<Resp>) -> Resp {
    let seen = statuses(&answers);
    let (mut won, lost): (Vec<Resp>, Vec<Resp>) =
        answers.into_iter().partition(|r| r.status == 200);
    assert_eq!(won.len(), 1, "one winner: {seen:?}");
    for r in &lost {
        assert_oauth_error(r, 400, "invalid_grant");
    }
    won.remove(0)
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key}: {v}"))
        .to_owned()
}

/// The ids of the grants `GET /oauth_grants` lists.
async fn listed_grants(api: &Api) -> Vec<String> {
    let r = api.get("/oauth_grants").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| text(g, "id"))
        .collect()
}

/// Asserts that `token` (access or refresh) is inactive at introspection on both instances.
async fn inactive_everywhere(p: &Pair, c: (&str, &str), token: &str) {
    for api in [&p.api_a, &p.api_b] {
        assert_eq!(api.introspect(c, token).await, json!({"active": false}));
    }
}

/// The admin authorizes the client and exchanges the code through `api`: (access token,
/// refresh token).
async fn authorized(api: &Api, c: (&str, &str)) -> (String, String) {
    let code = api.code(c.0).await.unwrap();
    let r = api.exchange(c, &code).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    (
        text(&r.body, "access_token"),
        text(&r.body, "refresh_token"),
    )
}

fn grant_of(access_token: &str) -> String {
    text(&jwt_parts(access_token).1, "grant_id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresh_token_presented_thirty_times_rotates_once() {
    let Some(p) = pair().await else {
        return skipped();
    };
    for round in 0..ROUNDS {
        let client = p.api_a.code_client(&format!("Refresh storm {round}")).await;
        let c = (client.0.as_str(), client.1.as_str());
        let (_, rt) = authorized(&p.api_a, c).await;
        // A second authorization of the same client: another family of the same grant, which
        // the reuse below must leave alone.
        let (other_at, other_rt) = authorized(&p.api_b, c).await;
        let grant_id = grant_of(&other_at);
        let of_grant = format!("FROM refresh_tokens WHERE grant_id = '{grant_id}'");
        let rows_before = p.db.scalar(&format!("SELECT count(*) {of_grant}")).await;
        assert_eq!(rows_before, 2);

        let requests = (0..STORM)
            .map(|i| {
                let (api, client, rt) = (instance(&p, i), client.clone(), rt.clone());
                Box::pin(async move { api.refresh((&client.0, &client.1), &rt).await.unwrap() })
                    as Pending
            })
            .collect();
        let win = exactly_one_winner(all_at_once(requests).await);
        let new_at = text(&win.body, "access_token");
        let new_rt = text(&win.body, "refresh_token");
        assert_eq!(grant_of(&new_at), grant_id);

        // The other presentations were reuse: the family is revoked, the winner's new tokens
        // included, whichever instance is asked.
        for token in [&rt, &new_at, &new_rt] {
            inactive_everywhere(&p, c, token).await;
        }
        for api in [&p.api_a, &p.api_b] {
            assert_oauth_error(
                &api.refresh(c, &new_rt).await.unwrap(),
                400,
                "invalid_grant",
            );
        }
        // The grant and its other family stand.
        for api in [&p.api_a, &p.api_b] {
            assert!(listed_grants(api).await.contains(&grant_id));
            assert_eq!(api.introspect(c, &other_rt).await["active"], true);
            assert_eq!(api.introspect(c, &other_at).await["active"], true);
        }

        // The database: the race stored exactly one new refresh token, in the presented token's
        // family, and nothing of that family is unrevoked; the other family is untouched.
        let family = format!(
            "family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = '{}')",
            hash_secret(&rt)
        );
        let sql = |q: &str| format!("SELECT count(*) {of_grant} AND {q}");
        assert_eq!(
            p.db.scalar(&format!("SELECT count(*) {of_grant}")).await,
            rows_before + 1
        );
        assert_eq!(p.db.scalar(&sql(&family)).await, 2);
        assert_eq!(
            p.db.scalar(&sql(&format!("token_hash = '{}'", hash_secret(&new_rt))))
                .await,
            1
        );
        assert_eq!(
            p.db.scalar(&sql(&format!("{family} AND revoked_at IS NULL")))
                .await,
            0
        );
        assert_eq!(
            p.db.scalar(&sql(&format!("{family} AND used_at IS NOT NULL")))
                .await,
            1,
            "only the presented token was used"
        );
        assert_eq!(p.db.scalar(&sql("revoked_at IS NULL")).await, 1);
        assert_eq!(
            p.db.scalar(&format!(
                "SELECT count(*) FROM token_families WHERE grant_id = '{grant_id}' \
                 AND revoked_at IS NULL"
            ))
            .await,
            1
        );
        // One alarm: the first presentation after the winner's found the family live and
        // revoked it; the later ones found it revoked.
        assert_eq!(
            p.db.scalar(&format!(
                "SELECT count(*) FROM security_events \
                 WHERE kind = 'refresh_token.reused' AND grant_id = '{grant_id}'"
            ))
            .await,
            1
        );
    }
    p.a.stop().await;
    p.b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_code_exchanged_thirty_times_is_redeemed_once() {
    let Some(p) = pair().await else {
        return skipped();
    };
    for round in 0..ROUNDS {
        let client = p.api_b.code_client(&format!("Code storm {round}")).await;
        let c = (client.0.as_str(), client.1.as_str());
        let (other_at, other_rt) = authorized(&p.api_a, c).await;
        let grant_id = grant_of(&other_at);
        let code = p.api_b.code(c.0).await.unwrap();

        let requests = (0..STORM)
            .map(|i| {
                let (api, client, code) = (instance(&p, i), client.clone(), code.clone());
                Box::pin(async move { api.exchange((&client.0, &client.1), &code).await.unwrap() })
                    as Pending
            })
            .collect();
        let win = exactly_one_winner(all_at_once(requests).await);
        let at = text(&win.body, "access_token");
        let rt = text(&win.body, "refresh_token");
        assert_eq!(grant_of(&at), grant_id, "the code of the live grant");

        // The replays revoked the family of the one exchange; the grant and its other family
        // stand.
        inactive_everywhere(&p, c, &at).await;
        inactive_everywhere(&p, c, &rt).await;
        for api in [&p.api_a, &p.api_b] {
            assert_oauth_error(&api.refresh(c, &rt).await.unwrap(), 400, "invalid_grant");
            assert!(listed_grants(api).await.contains(&grant_id));
            assert_eq!(api.introspect(c, &other_rt).await["active"], true);
            assert_eq!(api.introspect(c, &other_at).await["active"], true);
        }

        // The database: one exchange started one family with one refresh token, both revoked.
        let families = format!("FROM token_families WHERE grant_id = '{grant_id}'");
        assert_eq!(p.db.scalar(&format!("SELECT count(*) {families}")).await, 2);
        assert_eq!(
            p.db.scalar(&format!(
                "SELECT count(*) {families} AND revoked_at IS NULL"
            ))
            .await,
            1
        );
        let family = format!(
            "family_id = (SELECT family_id FROM authorization_codes WHERE code_hash = '{}')",
            hash_secret(&code)
        );
        let tokens = format!("FROM refresh_tokens WHERE grant_id = '{grant_id}' AND {family}");
        assert_eq!(p.db.scalar(&format!("SELECT count(*) {tokens}")).await, 1);
        assert_eq!(
            p.db.scalar(&format!(
                "SELECT count(*) {tokens} AND token_hash = '{}'",
                hash_secret(&rt)
            ))
            .await,
            1
        );
        assert_eq!(
            p.db.scalar(&format!("SELECT count(*) {tokens} AND revoked_at IS NULL"))
                .await,
            0
        );
        assert!(
            p.db.scalar(&format!(
                "SELECT count(*) FROM security_events \
                 WHERE kind = 'authorization_code.replayed' AND grant_id = '{grant_id}'"
            ))
            .await
                >= 1
        );
    }
    p.a.stop().await;
    p.b.stop().await;
}

/// How many codes and how many refresh tokens race a grant's revocation.
const RACERS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_while_its_codes_and_tokens_are_used_leaves_nothing_live() {
    let Some(p) = pair().await else {
        return skipped();
    };
    for round in 0..ROUNDS {
        let client = p
            .api_a
            .code_client(&format!("Revoked in a race {round}"))
            .await;
        let c = (client.0.as_str(), client.1.as_str());
        // RACERS live refresh tokens (each of its own family), RACERS fresh codes, one grant.
        let mut issued = Vec::new();
        for _ in 0..RACERS {
            issued.push(authorized(&p.api_a, c).await);
        }
        let grant_id = grant_of(&issued[0].0);
        assert!(issued.iter().all(|(at, _)| grant_of(at) == grant_id));
        let mut codes = Vec::new();
        for _ in 0..RACERS {
            codes.push(p.api_b.code(c.0).await.unwrap());
        }

        // Through B: the exchanges and rotations in turn; through A, the revocation, placed
        // first, in the middle or last of the launch order as the rounds go.
        let mut requests: Vec<Pending> = Vec::new();
        for (code, (_, rt)) in codes.iter().zip(&issued) {
            let (api, cl, code) = (p.api_b.clone(), client.clone(), code.clone());
            requests.push(Box::pin(async move {
                api.exchange((&cl.0, &cl.1), &code).await.unwrap()
            }));
            let (api, cl, rt) = (p.api_b.clone(), client.clone(), rt.clone());
            requests.push(Box::pin(async move {
                api.refresh((&cl.0, &cl.1), &rt).await.unwrap()
            }));
        }
        let at = [0, RACERS, 2 * RACERS][round % 3];
        let (api, path) = (p.api_a.clone(), format!("/oauth_grants/{grant_id}"));
        requests.insert(
            at,
            Box::pin(async move { api.delete(&path).await.unwrap() }),
        );
        let mut answers = all_at_once(requests).await;
        let revoked = answers.remove(at);
        assert_eq!(revoked.status, 200, "{}", revoked.text);
        assert_eq!(revoked.body["data"]["id"], grant_id.as_str());

        // Every other answer is a decision: tokens (the request ran before the revocation) or
        // invalid_grant (after it).
        let seen = statuses(&answers);
        let mut tokens: Vec<String> = issued
            .iter()
            .flat_map(|(a, r)| [a.clone(), r.clone()])
            .collect();
        let mut winners = 0;
        for r in &answers {
            if r.status == 200 {
                winners += 1;
                assert_eq!(grant_of(&text(&r.body, "access_token")), grant_id);
                tokens.push(text(&r.body, "access_token"));
                tokens.push(text(&r.body, "refresh_token"));
            } else {
                assert_oauth_error(r, 400, "invalid_grant");
            }
        }
        eprintln!("round {round}: revocation launched at {at}; answers {seen:?}");

        // Nothing of the grant is live, on either instance, whatever won.
        for token in &tokens {
            inactive_everywhere(&p, c, token).await;
        }
        for (_, rt) in issued.iter() {
            assert_oauth_error(&p.api_a.refresh(c, rt).await.unwrap(), 400, "invalid_grant");
        }
        for api in [&p.api_a, &p.api_b] {
            assert!(!listed_grants(api).await.contains(&grant_id));
        }
        // The database: one new refresh token row per winner, none unrevoked; no code left, no
        // family live, the grant revoked.
        let of_grant =
            |table: &str| format!("SELECT count(*) FROM {table} WHERE grant_id = '{grant_id}'");
        assert_eq!(
            p.db.scalar(&of_grant("refresh_tokens")).await,
            (RACERS + winners) as i64
        );
        assert_eq!(
            p.db.scalar(&format!(
                "{} AND revoked_at IS NULL",
                of_grant("refresh_tokens")
            ))
            .await,
            0
        );
        assert_eq!(p.db.scalar(&of_grant("authorization_codes")).await, 0);
        assert_eq!(
            p.db.scalar(&format!(
                "{} AND revoked_at IS NULL",
                of_grant("token_families")
            ))
            .await,
            0
        );
        assert_eq!(
            p.db.scalar(&format!(
                "SELECT count(*) FROM oauth_grants WHERE id = '{grant_id}' AND revoked_at IS NOT NULL"
            ))
            .await,
            1
        );
    }
    p.a.stop().await;
    p.b.stop().await;
}
