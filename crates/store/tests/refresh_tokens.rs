//! Storage of refresh tokens: rotation, reuse revoking the family, one winner among concurrent
//! rotations, grant revocation and expiry. Each test runs on SQLite, and on PostgreSQL when
//! `OAUTH_TEST_POSTGRES_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::future::join_all;
use oauth_core::{Client, ClientDraft, ClientOrigin, ScopeCatalogue};
use oauth_store::{
    AccessTokenRef, Approval, CodeDecision, CodeExchange, CodeRedemption, ConsentRequest, Grant,
    NewRefreshToken, NewTokenFamily, NewUser, RefreshRotation, Store, StoreError, User,
};
use oauth_wire::{ClientType, CreateOAuthClient, GrantType};
use sqlx::Connection as _;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

async fn user(store: &dyn Store, email: &str) -> User {
    let (u, _) = store
        .create_user(NewUser {
            user_id: uuid::Uuid::new_v4().to_string(),
            email: email.to_owned(),
            password_hash: "$argon2id$placeholder".to_owned(),
            org_name: format!("org of {email}"),
            new_org_id: uuid::Uuid::new_v4().to_string(),
            join_existing_org: true,
            now: NOW,
        })
        .await
        .unwrap();
    u
}

/// A user, a client, and the user's grant to it (through a consent approval).
async fn setup(store: &dyn Store) -> (User, Client, Grant) {
    let u = user(store, "rt@x.example").await;
    let c = client_of(store, &u).await;
    let grant = approve(store, &u, &c, "consent", "code").await;
    (u, c, grant)
}

/// A confidential client of `u`'s organization allowed the code and refresh grants.
async fn client_of(store: &dyn Store, u: &User) -> Client {
    let req = CreateOAuthClient::new(
        "App",
        ClientType::Confidential,
        [GrantType::AuthorizationCode, GrantType::RefreshToken],
        ["admin", "voice"],
    )
    .redirect_uris(["https://app.example.com/cb"]);
    let c = Client {
        client_id: uuid::Uuid::new_v4().to_string(),
        org_id: u.org_id.clone(),
        user_id: u.id.clone(),
        origin: ClientOrigin::Management,
        secret_hash: Some("ab".repeat(32)),
        verified: false,
        created_at: NOW,
        updated_at: NOW,
        settings: ClientDraft::from_create(req, &ScopeCatalogue::default()).unwrap(),
    };
    store.insert_client(&c).await.unwrap();
    c
}

/// A consent request of `u` for `c`, approved: a code `code_hash` under the user's grant.
async fn approve(store: &dyn Store, u: &User, c: &Client, consent: &str, code_hash: &str) -> Grant {
    store
        .create_consent(&ConsentRequest {
            token_hash: consent.into(),
            user_id: u.id.clone(),
            client_id: c.client_id.clone(),
            redirect_uri: "https://app.example.com/cb".into(),
            scopes: vec!["admin".into(), "voice".into()],
            state: None,
            code_challenge: None,
            code_challenge_method: None,
            resource: None,
            created_at: NOW,
            expires_at: NOW + 600,
        })
        .await
        .unwrap();
    let (_, grant, _) = store
        .approve_consent(
            consent,
            &u.id,
            &Approval {
                new_grant_id: uuid::Uuid::new_v4().to_string(),
                code_hash: code_hash.into(),
                code_expires_at: NOW + 60,
                now: NOW,
                grantable_scopes: vec!["admin".into(), "voice".into()],
                pending: None,
                event: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    grant
}

fn family(id: &str, expires_at: i64) -> NewTokenFamily {
    NewTokenFamily {
        id: id.to_owned(),
        expires_at,
    }
}

/// Exchanges `code` as `client_id`, starting `fam` with refresh token `rt` (accepting).
async fn exchange(
    store: &dyn Store,
    code: &str,
    client_id: &str,
    fam: &NewTokenFamily,
    rt: NewRefreshToken,
    now: i64,
) -> CodeExchange {
    let accept = move |_: &oauth_store::AuthorizationCode| CodeDecision::Accept {
        refresh_token: Some(rt.clone()),
    };
    store
        .exchange_authorization_code(code, client_id, fam, now, Box::new(accept))
        .await
        .unwrap()
}

fn token(hash: &str, grant: &Grant, scopes: &[&str], now: i64) -> NewRefreshToken {
    NewRefreshToken {
        token_hash: hash.to_owned(),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        user_id: grant.user_id.clone(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        resource: Some("https://api.example".into()),
        created_at: now,
        expires_at: now + 30 * DAY,
        family_id: None,
    }
}

async fn rotation_uses_the_old_token_and_stores_the_new_one(store: &dyn Store) {
    let (u, c, grant) = setup(store).await;
    store
        .insert_refresh_token(&token("r1", &grant, &["admin", "voice"], NOW))
        .await
        .unwrap();
    let r1 = store.find_refresh_token("r1").await.unwrap().unwrap();
    assert_eq!(r1.client_id, c.client_id);
    assert_eq!(r1.user_id, u.id);
    assert_eq!(r1.scopes, vec!["admin".to_owned(), "voice".to_owned()]);
    assert_eq!(r1.resource.as_deref(), Some("https://api.example"));
    assert_eq!((r1.used_at, r1.revoked_at), (None, None));

    // Narrowed scopes on the new token; the grant id of `new` is ignored (the old one's holds).
    let mut new = token("r2", &grant, &["voice"], NOW + 10);
    new.grant_id = "ignored".into();
    let out = store
        .rotate_refresh_token("r1", &new, NOW + 10)
        .await
        .unwrap();
    let RefreshRotation::Rotated(old) = out else {
        panic!("{out:?}")
    };
    assert_eq!(old.token_hash, "r1");
    assert_eq!(old.used_at, Some(NOW + 10));
    let r2 = store.find_refresh_token("r2").await.unwrap().unwrap();
    assert_eq!(r2.grant_id, grant.id);
    assert_eq!(r2.scopes, vec!["voice".to_owned()]);
    assert_eq!(r2.used_at, None);
    assert_eq!(
        store
            .find_refresh_token("r1")
            .await
            .unwrap()
            .unwrap()
            .used_at,
        Some(NOW + 10)
    );
    // The rotation records a use of the grant.
    let g = store.live_grant(&grant.id).await.unwrap().unwrap();
    assert_eq!(g.last_used_at, Some(NOW + 10));
    // Unknown token: invalid, nothing stored.
    assert_eq!(
        store
            .rotate_refresh_token("nope", &token("r9", &grant, &["admin"], NOW), NOW)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    );
    assert!(store.find_refresh_token("r9").await.unwrap().is_none());
}

async fn a_refresh_token_is_read_with_the_client_presenting_it(store: &dyn Store) {
    let (u, c, grant) = setup(store).await;
    store
        .insert_refresh_token(&token("j1", &grant, &["admin", "voice"], NOW))
        .await
        .unwrap();
    let stored = store.find_refresh_token("j1").await.unwrap().unwrap();
    let (client, found) = store
        .client_and_refresh_token(&c.client_id, "j1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        client,
        store.get_client(&c.client_id).await.unwrap().unwrap()
    );
    assert_eq!(found, Some(stored.clone()));
    // Unknown token: the client alone.
    let (client, found) = store
        .client_and_refresh_token(&c.client_id, "nope")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.client_id, c.client_id);
    assert_eq!(found, None);
    // Another client presenting it still reads it (the caller refuses and records that), with
    // that client's own row.
    let other = client_of(store, &u).await;
    let (client, found) = store
        .client_and_refresh_token(&other.client_id, "j1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.client_id, other.client_id);
    assert_eq!(found.map(|t| t.client_id), Some(c.client_id.clone()));
    // Unknown client: nothing, whatever the token.
    assert_eq!(
        store
            .client_and_refresh_token("no-such-client", "j1")
            .await
            .unwrap(),
        None
    );
    // A used token reads as used: the rotation that follows judges it.
    store
        .rotate_refresh_token("j1", &token("j2", &grant, &["admin"], NOW + 1), NOW + 1)
        .await
        .unwrap();
    let (_, found) = store
        .client_and_refresh_token(&c.client_id, "j1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.and_then(|t| t.used_at), Some(NOW + 1));
}

async fn reuse_revokes_the_grant_and_its_family(store: &dyn Store) {
    let (_, _, grant) = setup(store).await;
    store
        .insert_refresh_token(&token("r1", &grant, &["admin"], NOW))
        .await
        .unwrap();
    let out = store
        .rotate_refresh_token("r1", &token("r2", &grant, &["admin"], NOW), NOW + 1)
        .await
        .unwrap();
    assert!(matches!(out, RefreshRotation::Rotated(_)), "{out:?}");
    let out = store
        .rotate_refresh_token("r1", &token("r3", &grant, &["admin"], NOW), NOW + 2)
        .await
        .unwrap();
    assert_eq!(
        out,
        RefreshRotation::Reused {
            grant_id: grant.id.clone(),
            revoked: true,
        }
    );
    assert!(store.find_refresh_token("r3").await.unwrap().is_none());
    assert_eq!(
        store
            .find_refresh_token("r2")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(NOW + 2)
    );
    assert!(store.live_grant(&grant.id).await.unwrap().is_none());
    // The family's newest token is dead.
    assert_eq!(
        store
            .rotate_refresh_token("r2", &token("r4", &grant, &["admin"], NOW), NOW + 3)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    );
}

async fn concurrent_rotations_have_one_winner(store: &dyn Store) {
    let (_, _, grant) = setup(store).await;
    store
        .insert_refresh_token(&token("r1", &grant, &["admin"], NOW))
        .await
        .unwrap();
    let (a, b, c) = (
        token("a", &grant, &["admin"], NOW),
        token("b", &grant, &["admin"], NOW),
        token("c", &grant, &["admin"], NOW),
    );
    // Three rotations in flight at once, each on its own connection.
    let (ra, rb, rc) = tokio::join!(
        store.rotate_refresh_token("r1", &a, NOW + 1),
        store.rotate_refresh_token("r1", &b, NOW + 1),
        store.rotate_refresh_token("r1", &c, NOW + 1),
    );
    let outs = [ra.unwrap(), rb.unwrap(), rc.unwrap()];
    let wins = outs
        .iter()
        .filter(|o| matches!(o, RefreshRotation::Rotated(_)))
        .count();
    assert_eq!(wins, 1, "{outs:?}");
    // The first loser saw a used token: reuse, which ends the family (the winner's new token
    // too); a loser after it finds the family (here, a token from before families: the grant)
    // already over.
    for o in &outs {
        assert!(
            matches!(
                o,
                RefreshRotation::Rotated(_)
                    | RefreshRotation::Reused { .. }
                    | RefreshRotation::Invalid
            ),
            "{o:?}"
        );
    }
    assert!(
        outs.iter()
            .any(|o| matches!(o, RefreshRotation::Reused { .. })),
        "{outs:?}"
    );
    let stored = [
        store.find_refresh_token("a").await.unwrap(),
        store.find_refresh_token("b").await.unwrap(),
        store.find_refresh_token("c").await.unwrap(),
    ];
    assert_eq!(stored.iter().filter(|s| s.is_some()).count(), 1);
}

async fn revoking_the_grant_revokes_its_refresh_tokens(store: &dyn Store) {
    let (u, _, grant) = setup(store).await;
    store
        .insert_refresh_token(&token("r1", &grant, &["admin"], NOW))
        .await
        .unwrap();
    store
        .insert_refresh_token(&token("r2", &grant, &["admin"], NOW))
        .await
        .unwrap();
    assert!(store
        .revoke_grant(&u.id, &grant.id, NOW + 5)
        .await
        .unwrap()
        .is_some());
    for h in ["r1", "r2"] {
        assert_eq!(
            store
                .find_refresh_token(h)
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(NOW + 5)
        );
        assert_eq!(
            store
                .rotate_refresh_token(h, &token("new", &grant, &["admin"], NOW), NOW + 6)
                .await
                .unwrap(),
            RefreshRotation::Invalid
        );
    }
    assert!(store.find_refresh_token("new").await.unwrap().is_none());
}

async fn revoking_a_family_by_one_token(store: &dyn Store) {
    let (_, _, grant) = setup(store).await;
    store
        .insert_refresh_token(&token("r1", &grant, &["admin"], NOW))
        .await
        .unwrap();
    store
        .insert_refresh_token(&token("r2", &grant, &["admin"], NOW))
        .await
        .unwrap();
    assert!(store
        .revoke_refresh_token_family("r1", NOW + 1)
        .await
        .unwrap());
    assert!(store.live_grant(&grant.id).await.unwrap().is_none());
    assert!(store
        .find_refresh_token("r2")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert!(!store
        .revoke_refresh_token_family("unknown", NOW)
        .await
        .unwrap());
    // Again, by either token of the revoked grant: nothing left to revoke.
    for again in ["r1", "r2"] {
        assert!(!store
            .revoke_refresh_token_family(again, NOW + 2)
            .await
            .unwrap());
    }
}

async fn expired_tokens_do_not_rotate_and_are_purged(store: &dyn Store) {
    let (_, _, grant) = setup(store).await;
    let mut t = token("r1", &grant, &["admin"], NOW);
    t.expires_at = NOW + 100;
    store.insert_refresh_token(&t).await.unwrap();
    store
        .insert_refresh_token(&token("live", &grant, &["admin"], NOW))
        .await
        .unwrap();
    // Exactly at expires_at it is expired.
    assert_eq!(
        store
            .rotate_refresh_token("r1", &token("r2", &grant, &["admin"], NOW), NOW + 100)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    );
    assert!(store.find_refresh_token("r2").await.unwrap().is_none());
    assert_eq!(store.purge_refresh_tokens(NOW + 99, 10).await.unwrap(), 0);
    assert_eq!(store.purge_refresh_tokens(NOW + 100, 10).await.unwrap(), 1);
    assert!(store.find_refresh_token("r1").await.unwrap().is_none());
    assert!(store.find_refresh_token("live").await.unwrap().is_some());
}

async fn deleting_the_client_deletes_its_refresh_tokens(store: &dyn Store) {
    let (u, c, grant) = setup(store).await;
    store
        .insert_refresh_token(&token("r1", &grant, &["admin"], NOW))
        .await
        .unwrap();
    assert!(store.delete_client(&u.org_id, &c.client_id).await.unwrap());
    assert!(store.find_refresh_token("r1").await.unwrap().is_none());
}

async fn concurrent_code_redemptions_have_one_winner(store: &dyn Store) {
    let (_, _, grant) = setup(store).await;
    let (a, b, c) = tokio::join!(
        store.redeem_authorization_code("code", NOW + 1),
        store.redeem_authorization_code("code", NOW + 1),
        store.redeem_authorization_code("code", NOW + 1),
    );
    let outs = [a.unwrap(), b.unwrap(), c.unwrap()];
    let wins = outs
        .iter()
        .filter(|o| matches!(o, CodeRedemption::Redeemed(_)))
        .count();
    assert_eq!(wins, 1, "{outs:?}");
    // The first loser replays a used code, which (with no family to end) ends the grant; a
    // loser after it finds the grant revoked.
    for o in &outs {
        if !matches!(o, CodeRedemption::Redeemed(_)) {
            assert!(
                *o == CodeRedemption::AlreadyUsed {
                    grant_id: grant.id.clone()
                } || *o == CodeRedemption::Invalid,
                "{o:?}"
            );
        }
    }
    assert!(outs
        .iter()
        .any(|o| matches!(o, CodeRedemption::AlreadyUsed { .. })));
}

async fn an_accepted_exchange_stores_its_refresh_token_with_the_code_use(store: &dyn Store) {
    let (_, _, grant) = setup(store).await;
    let new = token("rt-from-code", &grant, &["admin"], NOW + 1);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen_inside = seen.clone();
    let decide = move |code: &oauth_store::AuthorizationCode| {
        *seen_inside.lock().unwrap() = Some(code.grant_id.clone());
        CodeDecision::Accept {
            refresh_token: Some(new.clone()),
        }
    };
    let c = grant.client_id.clone();
    let fam = family("fam-1", NOW + 90 * DAY);
    let out = store
        .exchange_authorization_code("code", &c, &fam, NOW + 1, Box::new(decide))
        .await
        .unwrap();
    let CodeExchange::Exchanged(code) = out else {
        panic!("{out:?}")
    };
    assert_eq!(code.grant_id, grant.id);
    assert_eq!(seen.lock().unwrap().as_deref(), Some(grant.id.as_str()));
    let stored = store
        .find_refresh_token("rt-from-code")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.grant_id, grant.id);
    assert_eq!(stored.scopes, vec!["admin".to_owned()]);
    assert_eq!(stored.family_id.as_deref(), Some("fam-1"));
    assert_eq!(code.family_id.as_deref(), Some("fam-1"));
    assert!(store.live_token_family("fam-1").await.unwrap());
    assert_eq!(
        store
            .live_grant(&grant.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(NOW + 1),
        "the grant's use is noted with the exchange"
    );
    // Spent: a second exchange is a replay. Its decision is asked only whether the replay
    // proves it comes from the code's client (it does not refuse here), and nothing is issued.
    fn never(_: &oauth_store::AuthorizationCode) -> CodeDecision {
        panic!("this code is not decided on")
    }
    let replay = |_: &oauth_store::AuthorizationCode| CodeDecision::Reject;
    assert_eq!(
        store
            .exchange_authorization_code(
                "code",
                &c,
                &family("fam-2", NOW + DAY),
                NOW + 2,
                Box::new(replay)
            )
            .await
            .unwrap(),
        CodeExchange::AlreadyUsed {
            grant_id: grant.id.clone(),
            user_id: grant.user_id.clone(),
            revoked: true,
        }
    );
    // Detected once: the code is gone, and presenting it again is an unknown code.
    assert_eq!(
        store
            .exchange_authorization_code(
                "code",
                &c,
                &family("fam-2", NOW + DAY),
                NOW + 3,
                Box::new(replay)
            )
            .await
            .unwrap(),
        CodeExchange::Invalid
    );
    // The replay by its own client ended the family of the first exchange, not the grant.
    assert!(!store.live_token_family("fam-1").await.unwrap());
    assert!(store
        .find_refresh_token("rt-from-code")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert!(store.live_grant(&grant.id).await.unwrap().is_some());
    assert_eq!(
        store
            .exchange_authorization_code(
                "unknown",
                &c,
                &family("fam-3", NOW + DAY),
                NOW + 2,
                Box::new(never)
            )
            .await
            .unwrap(),
        CodeExchange::Invalid
    );
}

async fn a_rejected_exchange_burns_the_code_and_stores_nothing(store: &dyn Store) {
    let (_, _, grant) = setup(store).await;
    let reject = |_: &oauth_store::AuthorizationCode| CodeDecision::Reject;
    let c = grant.client_id.clone();
    let out = store
        .exchange_authorization_code(
            "code",
            &c,
            &family("f1", NOW + DAY),
            NOW + 1,
            Box::new(reject),
        )
        .await
        .unwrap();
    assert!(matches!(out, CodeExchange::Rejected(_)), "{out:?}");
    assert_eq!(
        store
            .live_grant(&grant.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        None,
        "a rejected exchange does not touch the grant"
    );
    // Burned: presenting it again (say, with the right verifier) is a replay.
    let late = token("late", &grant, &["admin"], NOW + 2);
    let accept = move |_: &oauth_store::AuthorizationCode| CodeDecision::Accept {
        refresh_token: Some(late.clone()),
    };
    assert_eq!(
        store
            .exchange_authorization_code(
                "code",
                &c,
                &family("f2", NOW + DAY),
                NOW + 2,
                Box::new(accept)
            )
            .await
            .unwrap(),
        CodeExchange::AlreadyUsed {
            grant_id: grant.id.clone(),
            user_id: grant.user_id.clone(),
            // The rejected exchange started no family: there is nothing to revoke.
            revoked: false,
        }
    );
    assert_eq!(store.find_refresh_token("late").await.unwrap(), None);
}

async fn a_refused_exchange_writes_nothing_and_a_refused_replay_revokes_nothing(store: &dyn Store) {
    let (_, _, grant) = setup(store).await;
    // Exchanges "code" under a decision that is always `decision`, starting family `fam`.
    let decided = async |fam: &str, now: i64, decision: CodeDecision| {
        let decide = move |_: &oauth_store::AuthorizationCode| decision.clone();
        let fam = family(fam, NOW + DAY);
        store
            .exchange_authorization_code("code", &grant.client_id, &fam, now, Box::new(decide))
            .await
            .unwrap()
    };
    let out = decided("f1", NOW + 1, CodeDecision::Refuse).await;
    assert!(matches!(out, CodeExchange::Rejected(_)), "{out:?}");
    assert!(!store.live_token_family("f1").await.unwrap());
    // Not burned: its owner exchanges it afterwards.
    let first = Some(token("first", &grant, &["admin"], NOW + 2));
    let out = decided(
        "f2",
        NOW + 2,
        CodeDecision::Accept {
            refresh_token: first,
        },
    )
    .await;
    assert!(matches!(out, CodeExchange::Exchanged(_)), "{out:?}");
    // A replay the decision refuses is invalid and ends nothing.
    let out = decided("f3", NOW + 3, CodeDecision::Refuse).await;
    assert_eq!(out, CodeExchange::Invalid);
    assert!(store.live_token_family("f2").await.unwrap());
    let stored = store.find_refresh_token("first").await.unwrap().unwrap();
    assert_eq!(stored.revoked_at, None);
    // The same replay, not refused, ends the family of the first exchange.
    let out = decided("f4", NOW + 4, CodeDecision::Reject).await;
    assert!(matches!(out, CodeExchange::AlreadyUsed { .. }), "{out:?}");
    assert!(!store.live_token_family("f2").await.unwrap());
}

/// Reuse and replay are recognized for as long as their rows are kept, and not past that, so
/// that the answer never depends on when the purge last ran: a used refresh token until it
/// expires, a used code until an hour after it expires.
async fn reuse_and_replay_are_recognized_until_a_fixed_time(store: &dyn Store) {
    let (_, _, grant) = setup(store).await;
    store
        .insert_refresh_token(&token("r1", &grant, &["admin"], NOW))
        .await
        .unwrap();
    let out = store
        .rotate_refresh_token("r1", &token("r2", &grant, &["admin"], NOW + DAY), NOW + 1)
        .await
        .unwrap();
    assert!(matches!(out, RefreshRotation::Rotated(_)), "{out:?}");
    // r1 expired (at NOW + 30 days): presenting it is just invalid, and r2 lives on.
    let expired = NOW + 30 * DAY;
    let out = store
        .rotate_refresh_token("r1", &token("r3", &grant, &["admin"], expired), expired)
        .await
        .unwrap();
    assert_eq!(out, RefreshRotation::Invalid);
    let out = store
        .rotate_refresh_token("r2", &token("r4", &grant, &["admin"], expired), expired)
        .await
        .unwrap();
    assert!(matches!(out, RefreshRotation::Rotated(_)), "{out:?}");

    // The setup's code expires at NOW + 60; exchanged, then replayed.
    let first = token("first", &grant, &["admin"], NOW + 2);
    let out = exchange(
        store,
        "code",
        &grant.client_id,
        &family("f1", NOW + DAY),
        first,
        NOW + 2,
    )
    .await;
    assert!(matches!(out, CodeExchange::Exchanged(_)), "{out:?}");
    let replay = async |fam: &str, now: i64| {
        let reject = |_: &oauth_store::AuthorizationCode| CodeDecision::Reject;
        store
            .exchange_authorization_code(
                "code",
                &grant.client_id,
                &family(fam, NOW + DAY),
                now,
                Box::new(reject),
            )
            .await
            .unwrap()
    };
    assert_eq!(replay("f2", NOW + 60 + 3600).await, CodeExchange::Invalid);
    assert!(
        store.live_token_family("f1").await.unwrap(),
        "past the hour: nothing ended"
    );
    let out = replay("f3", NOW + 60 + 3599).await;
    assert!(matches!(out, CodeExchange::AlreadyUsed { .. }), "{out:?}");
    assert!(
        !store.live_token_family("f1").await.unwrap(),
        "within it: the family ends"
    );
}

async fn hot_path_writes_and_other_writes_interleave(store: &dyn Store) {
    let (_, _, grant) = setup(store).await;
    for i in 0..20 {
        store
            .insert_refresh_token(&token(&format!("old{i}"), &grant, &["admin"], NOW))
            .await
            .unwrap();
    }
    // Rotations (on a SQLite file, the writer thread's transactions) and plain inserts (the
    // pool's connections) all in flight at once: every one succeeds, none waits forever.
    let rotations = (0..20).map(|i| {
        let new = token(&format!("new{i}"), &grant, &["admin"], NOW + 1);
        async move {
            store
                .rotate_refresh_token(&format!("old{i}"), &new, NOW + 1)
                .await
        }
    });
    let inserts = (0..20).map(|i| {
        let extra = token(&format!("extra{i}"), &grant, &["admin"], NOW);
        async move { store.insert_refresh_token(&extra).await }
    });
    let (rotated, inserted) = tokio::join!(join_all(rotations), join_all(inserts));
    for r in rotated {
        assert!(matches!(r.unwrap(), RefreshRotation::Rotated(_)));
    }
    for r in inserted {
        r.unwrap();
    }
    for i in 0..20 {
        let old = store
            .find_refresh_token(&format!("old{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.used_at, Some(NOW + 1), "old{i}");
        for name in [format!("new{i}"), format!("extra{i}")] {
            let t = store.find_refresh_token(&name).await.unwrap().unwrap();
            assert_eq!(t.used_at, None, "{name}");
        }
    }
}

async fn a_closed_store_refuses_reads_and_writes_as_unavailable(store: &dyn Store) {
    let (_, c, grant) = setup(store).await;
    store
        .insert_refresh_token(&token("r1", &grant, &["admin"], NOW))
        .await
        .unwrap();
    store.close().await;
    let err = store
        .rotate_refresh_token("r1", &token("r2", &grant, &["admin"], NOW + 1), NOW + 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store.get_client(&c.client_id).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

async fn a_failing_write_leaves_the_writes_around_it(store: &dyn Store) {
    let (_, c, grant) = setup(store).await;
    for name in ["r0", "r1"] {
        store
            .insert_refresh_token(&token(name, &grant, &["admin"], NOW))
            .await
            .unwrap();
    }
    // A conflicting insert (the client exists) in flight together with two good writes: on a
    // SQLite file they may share one transaction, and the conflict must undo only itself.
    let (n0, n1) = (
        token("n0", &grant, &["admin"], NOW + 1),
        token("n1", &grant, &["admin"], NOW + 1),
    );
    let (a, dup, b) = tokio::join!(
        store.rotate_refresh_token("r0", &n0, NOW + 1),
        store.insert_client(&c),
        store.rotate_refresh_token("r1", &n1, NOW + 1),
    );
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(matches!(a.unwrap(), RefreshRotation::Rotated(_)));
    assert!(matches!(b.unwrap(), RefreshRotation::Rotated(_)));
    for name in ["n0", "n1"] {
        assert!(
            store.find_refresh_token(name).await.unwrap().is_some(),
            "{name}"
        );
    }
    for name in ["r0", "r1"] {
        let old = store.find_refresh_token(name).await.unwrap().unwrap();
        assert_eq!(old.used_at, Some(NOW + 1), "{name}");
    }
    assert_eq!(store.get_client(&c.client_id).await.unwrap(), Some(c));
}

async fn another_clients_code_is_refused_and_left_alone(store: &dyn Store) {
    let (_, c, grant) = setup(store).await;
    fn never(_: &oauth_store::AuthorizationCode) -> CodeDecision {
        panic!("another client's code is not decided on")
    }
    // Presented by another client, even twice: nothing is written.
    for _ in 0..2 {
        assert_eq!(
            store
                .exchange_authorization_code(
                    "code",
                    "intruder",
                    &family("fx", NOW + DAY),
                    NOW + 1,
                    Box::new(never)
                )
                .await
                .unwrap(),
            CodeExchange::WrongClient {
                issued_to: c.client_id.clone(),
                grant_id: grant.id.clone(),
            }
        );
    }
    assert!(!store.live_token_family("fx").await.unwrap());
    // Its own client still exchanges it.
    let out = exchange(
        store,
        "code",
        &c.client_id,
        &family("f1", NOW + DAY),
        token("rt", &grant, &["admin"], NOW + 2),
        NOW + 2,
    )
    .await;
    assert!(matches!(out, CodeExchange::Exchanged(_)), "{out:?}");
    assert!(store.live_grant(&grant.id).await.unwrap().is_some());
}

async fn reuse_and_replay_revoke_one_family_not_the_grant(store: &dyn Store) {
    let (u, c, grant) = setup(store).await;
    // Two authorizations of the same client by the same user: two codes, one grant.
    let again = approve(store, &u, &c, "consent-2", "code-2").await;
    assert_eq!(again.id, grant.id);
    let out = exchange(
        store,
        "code",
        &c.client_id,
        &family("fam-a", NOW + DAY),
        token("a1", &grant, &["admin"], NOW + 1),
        NOW + 1,
    )
    .await;
    assert!(matches!(out, CodeExchange::Exchanged(_)), "{out:?}");
    let out = exchange(
        store,
        "code-2",
        &c.client_id,
        &family("fam-b", NOW + DAY),
        token("b1", &grant, &["admin"], NOW + 1),
        NOW + 1,
    )
    .await;
    assert!(matches!(out, CodeExchange::Exchanged(_)), "{out:?}");
    // Family A rotates, then its first token is presented again: reuse.
    assert!(matches!(
        store
            .rotate_refresh_token("a1", &token("a2", &grant, &["admin"], NOW + 2), NOW + 2)
            .await
            .unwrap(),
        RefreshRotation::Rotated(_)
    ));
    assert_eq!(
        store
            .find_refresh_token("a2")
            .await
            .unwrap()
            .unwrap()
            .family_id
            .as_deref(),
        Some("fam-a")
    );
    assert_eq!(
        store
            .rotate_refresh_token("a1", &token("a3", &grant, &["admin"], NOW + 3), NOW + 3)
            .await
            .unwrap(),
        RefreshRotation::Reused {
            grant_id: grant.id.clone(),
            revoked: true,
        }
    );
    // Presented again, it is a token of a revoked family: refused, and nothing more revoked.
    assert_eq!(
        store
            .rotate_refresh_token("a1", &token("a4", &grant, &["admin"], NOW + 4), NOW + 4)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    );
    // Family A is over; family B and the grant stand.
    assert!(!store.live_token_family("fam-a").await.unwrap());
    assert!(store
        .find_refresh_token("a2")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert!(store.live_token_family("fam-b").await.unwrap());
    assert!(store.live_grant(&grant.id).await.unwrap().is_some());
    assert!(matches!(
        store
            .rotate_refresh_token("b1", &token("b2", &grant, &["admin"], NOW + 4), NOW + 4)
            .await
            .unwrap(),
        RefreshRotation::Rotated(_)
    ));
    // Revoking by one token (RFC 7009) ends its family only.
    assert!(store
        .revoke_refresh_token_family("b2", NOW + 5)
        .await
        .unwrap());
    // Revoking by it again, or by the token it replaced, finds the family revoked already.
    for again in ["b2", "b1"] {
        assert!(!store
            .revoke_refresh_token_family(again, NOW + 6)
            .await
            .unwrap());
    }
    assert!(!store.live_token_family("fam-b").await.unwrap());
    assert!(store.live_grant(&grant.id).await.unwrap().is_some());
    // Revoking the grant ends every family under it.
    let third = approve(store, &u, &c, "consent-3", "code-3").await;
    let out = exchange(
        store,
        "code-3",
        &c.client_id,
        &family("fam-c", NOW + DAY),
        token("c1", &third, &["admin"], NOW + 6),
        NOW + 6,
    )
    .await;
    assert!(matches!(out, CodeExchange::Exchanged(_)), "{out:?}");
    assert!(store.live_token_family("fam-c").await.unwrap());
    store
        .revoke_grant(&u.id, &grant.id, NOW + 7)
        .await
        .unwrap()
        .unwrap();
    assert!(!store.live_token_family("fam-c").await.unwrap());
}

async fn a_family_has_an_absolute_lifetime(store: &dyn Store) {
    let (_, c, grant) = setup(store).await;
    let end = NOW + 100;
    let out = exchange(
        store,
        "code",
        &c.client_id,
        &family("fam", end),
        token("r1", &grant, &["admin"], NOW),
        NOW,
    )
    .await;
    assert!(matches!(out, CodeExchange::Exchanged(_)), "{out:?}");
    // The first token already ends with the family, though its own lifetime is 30 days.
    assert_eq!(
        store
            .find_refresh_token("r1")
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        end
    );
    assert!(matches!(
        store
            .rotate_refresh_token("r1", &token("r2", &grant, &["admin"], NOW + 50), NOW + 50)
            .await
            .unwrap(),
        RefreshRotation::Rotated(_)
    ));
    assert_eq!(
        store
            .find_refresh_token("r2")
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        end
    );
    assert_eq!(
        store
            .rotate_refresh_token("r2", &token("r3", &grant, &["admin"], end), end)
            .await
            .unwrap(),
        RefreshRotation::Invalid
    );
    assert!(store.find_refresh_token("r3").await.unwrap().is_none());
    // A day past its end, the family row goes with the purge.
    store.purge_refresh_tokens(end + DAY, 10).await.unwrap();
    assert!(!store.live_token_family("fam").await.unwrap());
}

async fn rotations_and_revocations_racing_never_fail(store: &dyn Store) {
    // Many rotations, exchanges and a grant revocation at once: on PostgreSQL they lock the
    // grant first, so none dies of a deadlock; every call answers.
    let (u, c, grant) = setup(store).await;
    for i in 0..10 {
        approve(store, &u, &c, &format!("consent-{i}"), &format!("code-{i}")).await;
        store
            .insert_refresh_token(&token(&format!("old{i}"), &grant, &["admin"], NOW))
            .await
            .unwrap();
    }
    let rotations = (0..10).map(|i| {
        let new = token(&format!("new{i}"), &grant, &["admin"], NOW + 1);
        async move {
            store
                .rotate_refresh_token(&format!("old{i}"), &new, NOW + 1)
                .await
                .map(|_| ())
        }
    });
    let client_id = c.client_id.clone();
    let exchanges = (0..10).map(|i| {
        let fam = family(&format!("fam{i}"), NOW + DAY);
        let rt = token(&format!("rt{i}"), &grant, &["admin"], NOW + 1);
        let client_id = client_id.clone();
        async move {
            let accept = move |_: &oauth_store::AuthorizationCode| CodeDecision::Accept {
                refresh_token: Some(rt.clone()),
            };
            store
                .exchange_authorization_code(
                    &format!("code-{i}"),
                    &client_id,
                    &fam,
                    NOW + 1,
                    Box::new(accept),
                )
                .await
                .map(|_| ())
        }
    });
    let (rotated, exchanged, revoked) = tokio::join!(
        join_all(rotations),
        join_all(exchanges),
        store.revoke_grant(&u.id, &grant.id, NOW + 1),
    );
    for r in rotated.into_iter().chain(exchanged) {
        r.unwrap();
    }
    assert!(revoked.unwrap().is_some());
    // Whatever ran before the revocation is revoked by it.
    for i in 0..10 {
        assert!(!store.live_token_family(&format!("fam{i}")).await.unwrap());
        if let Some(t) = store.find_refresh_token(&format!("new{i}")).await.unwrap() {
            assert!(t.revoked_at.is_some());
        }
    }
}

/// A pending consent request of `u` for `c`, made at `created_at`.
fn consent_request(u: &User, c: &Client, token_hash: String, created_at: i64) -> ConsentRequest {
    ConsentRequest {
        token_hash,
        user_id: u.id.clone(),
        client_id: c.client_id.clone(),
        redirect_uri: "https://app.example.com/cb".into(),
        scopes: vec!["voice".into()],
        state: None,
        code_challenge: None,
        code_challenge_method: None,
        resource: None,
        created_at,
        expires_at: NOW + 600,
    }
}

async fn a_users_pending_consents_are_bounded(store: &dyn Store) {
    let (u, c, _) = setup(store).await;
    let n = oauth_store::MAX_CONSENTS_PER_USER + 5;
    for i in 0..n {
        store
            .create_consent(&consent_request(&u, &c, format!("pending-{i:03}"), NOW + i))
            .await
            .unwrap();
    }
    let mut live = 0;
    for i in 0..n {
        if store
            .get_consent(&format!("pending-{i:03}"), &u.id, NOW + 1)
            .await
            .unwrap()
            .is_some()
        {
            live += 1;
            assert!(i >= 5, "the oldest go first ({i})");
        }
    }
    assert_eq!(live, oauth_store::MAX_CONSENTS_PER_USER);
}

/// Thirty exchanges of one code at once: one is issued its family and refresh token, capped
/// by the family's end; every other is a replay, which ends the winner's family.
/// 29 presentations that prove nothing (refused) racing the owner's own: the owner gets the code
/// whatever the order, and nothing the refused ones did ends its family.
async fn refused_exchanges_racing_the_owners_leave_it_the_code(store: &dyn Store) {
    let (_, c, grant) = setup(store).await;
    let attempts = (0..30).map(|i| {
        let fam = family(&format!("fam-{i}"), NOW + 100);
        let rt = token(&format!("rt-{i}"), &grant, &["admin"], NOW + 1);
        let client_id = c.client_id.clone();
        let decision = if i == 15 {
            CodeDecision::Accept {
                refresh_token: Some(rt),
            }
        } else {
            CodeDecision::Refuse
        };
        let decide = move |_: &oauth_store::AuthorizationCode| decision.clone();
        async move {
            store
                .exchange_authorization_code("code", &client_id, &fam, NOW + 1, Box::new(decide))
                .await
                .unwrap()
        }
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    for (i, o) in outcomes.iter().enumerate() {
        match i {
            15 => assert!(matches!(o, CodeExchange::Exchanged(_)), "{o:?}"),
            _ => assert!(
                matches!(o, CodeExchange::Rejected(_) | CodeExchange::Invalid),
                "{i}: {o:?}"
            ),
        }
    }
    assert!(store.live_token_family("fam-15").await.unwrap());
    let stored = store.find_refresh_token("rt-15").await.unwrap().unwrap();
    assert_eq!(stored.revoked_at, None);
}

async fn concurrent_exchanges_of_one_code_have_one_winner(store: &dyn Store) {
    let (_, c, grant) = setup(store).await;
    let attempts = (0..30).map(|i| {
        let fam = family(&format!("fam-{i}"), NOW + 100);
        let rt = token(&format!("rt-{i}"), &grant, &["admin"], NOW + 1);
        let client_id = c.client_id.clone();
        async move { exchange(store, "code", &client_id, &fam, rt, NOW + 1).await }
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, CodeExchange::Exchanged(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let w = winners[0];
    // The first replay ended the winner's family and deleted the code; the others found no
    // such code.
    for (i, o) in outcomes.iter().enumerate() {
        if i != w {
            assert!(
                matches!(o, CodeExchange::Invalid)
                    || matches!(o, CodeExchange::AlreadyUsed { grant_id, user_id, revoked: true } if *grant_id == grant.id && *user_id == grant.user_id),
                "{o:?}"
            );
        }
    }
    let replays = outcomes
        .iter()
        .filter(|o| matches!(o, CodeExchange::AlreadyUsed { .. }))
        .count();
    assert_eq!(replays, 1, "{outcomes:?}");
    for i in 0..30 {
        let stored = store.find_refresh_token(&format!("rt-{i}")).await.unwrap();
        if i != w {
            assert!(stored.is_none(), "a loser's refresh token was stored ({i})");
            assert!(!store.live_token_family(&format!("fam-{i}")).await.unwrap());
            continue;
        }
        let stored = stored.unwrap();
        assert_eq!(stored.family_id, Some(format!("fam-{w}")));
        assert_eq!(stored.expires_at, NOW + 100, "capped by the family's end");
        assert!(stored.revoked_at.is_some(), "the replays ended the family");
    }
    assert!(!store.live_token_family(&format!("fam-{w}")).await.unwrap());
    // The grant itself stands (RFC 9700: the family goes, not the user's authorization).
    assert!(store.live_grant(&grant.id).await.unwrap().is_some());
}

/// Exchanges `code` as read with its client, as `client_id`, starting `fam` with refresh token
/// `rt` (accepting).
async fn exchange_read(
    store: &dyn Store,
    code: &oauth_store::AuthorizationCode,
    client_id: &str,
    fam: &NewTokenFamily,
    rt: NewRefreshToken,
    now: i64,
) -> CodeExchange {
    let accept = move |_: &oauth_store::AuthorizationCode| CodeDecision::Accept {
        refresh_token: Some(rt.clone()),
    };
    store
        .exchange_unused_authorization_code(code, client_id, fam, now, Box::new(accept))
        .await
        .unwrap()
}

async fn a_code_read_with_its_client_is_exchanged_once(store: &dyn Store) {
    let (u, c, grant) = setup(store).await;
    let (client, read) = store
        .client_and_unused_code(&c.client_id, "code")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        client,
        store.get_client(&c.client_id).await.unwrap().unwrap()
    );
    let read = read.expect("the unused code is read with its client");
    assert_eq!(
        (read.code_hash.as_str(), &read.grant_id, &read.client_id),
        ("code", &grant.id, &c.client_id)
    );
    assert_eq!(read.expires_at, NOW + 60);
    let (_, none) = store
        .client_and_unused_code(&c.client_id, "no-such-code")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(none, None);
    assert_eq!(
        store
            .client_and_unused_code("no-such-client", "code")
            .await
            .unwrap(),
        None
    );
    // Another client reads it too (the grant judges), but exchanging it changes nothing.
    let other = client_of(store, &u).await;
    let (_, seen) = store
        .client_and_unused_code(&other.client_id, "code")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.as_ref(), Some(&read));
    let out = exchange_read(
        store,
        &read,
        &other.client_id,
        &family("fam-other", NOW + DAY),
        token("rt-other", &grant, &["admin"], NOW + 1),
        NOW + 1,
    )
    .await;
    assert!(matches!(out, CodeExchange::WrongClient { .. }), "{out:?}");
    assert!(store
        .find_refresh_token("rt-other")
        .await
        .unwrap()
        .is_none());
    // 30 exchanges of the read code at once: one wins, the next is the replay (detected once),
    // and the code is unknown to the others.
    let attempts = (0..30).map(|i| {
        let fam = family(&format!("fam-{i}"), NOW + 100);
        let rt = token(&format!("rt-{i}"), &grant, &["admin"], NOW + 1);
        let (read, client_id) = (read.clone(), c.client_id.clone());
        async move { exchange_read(store, &read, &client_id, &fam, rt, NOW + 1).await }
    });
    let outcomes = futures_util::future::join_all(attempts).await;
    let winners: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, CodeExchange::Exchanged(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let w = winners[0];
    let CodeExchange::Exchanged(won) = &outcomes[w] else {
        unreachable!()
    };
    assert_eq!(won.family_id.as_deref(), Some(format!("fam-{w}").as_str()));
    let replays = outcomes
        .iter()
        .filter(|o| matches!(o, CodeExchange::AlreadyUsed { .. }))
        .count();
    assert_eq!(replays, 1, "{outcomes:?}");
    for (i, o) in outcomes.iter().enumerate().filter(|(i, _)| *i != w) {
        assert!(
            matches!(o, CodeExchange::AlreadyUsed { .. } | CodeExchange::Invalid),
            "{i}: {o:?}"
        );
        assert!(store
            .find_refresh_token(&format!("rt-{i}"))
            .await
            .unwrap()
            .is_none());
    }
    let kept = store.find_refresh_token(&format!("rt-{w}")).await.unwrap();
    assert_eq!(kept.map(|t| t.grant_id), Some(grant.id.clone()));
    // Used now: no longer read with the client.
    let (_, gone) = store
        .client_and_unused_code(&c.client_id, "code")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone, None);

    // A code read before it expired is not exchanged after.
    approve(store, &u, &c, "consent-2", "code-2").await;
    let (_, read2) = store
        .client_and_unused_code(&c.client_id, "code-2")
        .await
        .unwrap()
        .unwrap();
    let out = exchange_read(
        store,
        &read2.unwrap(),
        &c.client_id,
        &family("fam-late", NOW + DAY),
        token("rt-late", &grant, &["admin"], NOW + 60),
        NOW + 60,
    )
    .await;
    assert!(!matches!(out, CodeExchange::Exchanged(_)), "{out:?}");
    assert!(store.find_refresh_token("rt-late").await.unwrap().is_none());
    assert!(!store.live_token_family("fam-late").await.unwrap());
}

/// Requests already used do not count against the bound: a user who completes many
/// authorizations in one second keeps the one still waiting on its consent page.
async fn used_consents_do_not_push_out_a_pending_one(store: &dyn Store) {
    let (u, c, _) = setup(store).await;
    let request = |token_hash: String, created_at| consent_request(&u, &c, token_hash, created_at);
    store
        .create_consent(&request("waiting".into(), NOW))
        .await
        .unwrap();
    for i in 0..oauth_store::MAX_CONSENTS_PER_USER * 2 {
        let hash = format!("done-{i:03}");
        store
            .create_consent(&request(hash.clone(), NOW + 1))
            .await
            .unwrap();
        let used = store.consume_consent(&hash, &u.id, NOW + 1).await.unwrap();
        assert_eq!(used.map(|r| r.token_hash), Some(hash.clone()));
        // A used request is spent: neither readable nor usable again.
        assert!(store
            .get_consent(&hash, &u.id, NOW + 1)
            .await
            .unwrap()
            .is_none());
        assert!(store
            .consume_consent(&hash, &u.id, NOW + 1)
            .await
            .unwrap()
            .is_none());
    }
    let waiting = store.get_consent("waiting", &u.id, NOW + 1).await.unwrap();
    assert_eq!(waiting.map(|r| r.token_hash).as_deref(), Some("waiting"));
}

/// The token's state read with its client, and the client checked to be the whole row.
async fn token_state(store: &dyn Store, c: &Client, t: AccessTokenRef<'_>) -> bool {
    let (client, live) = store
        .client_and_token_state(&c.client_id, &t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&client, c, "the whole client row");
    live
}

/// An access token's revocation state, alone and with its client, for each shape of token:
/// client credentials (a `jti` alone), from a family, and from a grant before families.
async fn an_access_tokens_state_is_read_with_its_client(store: &dyn Store) {
    let (u, c, grant) = setup(store).await;
    let rt = token("rt-1", &grant, &["admin"], NOW);
    let out = exchange(
        store,
        "code",
        &c.client_id,
        &family("fam-1", NOW + DAY),
        rt,
        NOW,
    )
    .await;
    assert!(matches!(out, CodeExchange::Exchanged(_)), "{out:?}");
    let cc = AccessTokenRef {
        jti: "j-cc",
        family_id: None,
        grant_id: None,
    };
    let fam = AccessTokenRef {
        jti: "j-f",
        family_id: Some("fam-1"),
        grant_id: Some(&grant.id),
    };
    let old = AccessTokenRef {
        jti: "j-g",
        family_id: None,
        grant_id: Some(&grant.id),
    };
    let state = |t| token_state(store, &c, t);
    // Every shape is live at first; an unknown client is none at all.
    for t in [cc, fam, old] {
        assert!(store.access_token_live(&t).await.unwrap(), "{t:?}");
        assert!(state(t).await, "{t:?}");
    }
    assert!(store
        .client_and_token_state("no-such-client", &cc)
        .await
        .unwrap()
        .is_none());
    // A revoked jti, whatever else holds.
    assert!(store
        .revoke_access_token("j-cc", NOW + 3600, NOW)
        .await
        .unwrap());
    assert!(!store.access_token_live(&cc).await.unwrap());
    assert!(!state(cc).await);
    assert!(state(fam).await && state(old).await);
    // An unknown family is not live.
    let stray = AccessTokenRef {
        jti: "j-x",
        family_id: Some("no-such-family"),
        grant_id: None,
    };
    assert!(!store.access_token_live(&stray).await.unwrap());
    // A replayed code ends its family, not the grant: the family's token dies, the grant's
    // older token lives.
    let replay = exchange(
        store,
        "code",
        &c.client_id,
        &family("fam-2", NOW + DAY),
        token("rt-2", &grant, &["admin"], NOW),
        NOW + 1,
    )
    .await;
    assert!(
        matches!(replay, CodeExchange::AlreadyUsed { .. }),
        "{replay:?}"
    );
    assert!(!store.access_token_live(&fam).await.unwrap());
    assert!(!state(fam).await);
    assert!(state(old).await);
    // The grant revoked: every token from it dies.
    assert!(store
        .revoke_grant(&u.id, &grant.id, NOW + 2)
        .await
        .unwrap()
        .is_some());
    assert!(!store.access_token_live(&old).await.unwrap());
    assert!(!state(old).await);
}

/// Thirty token states read at once, many of them sharing a statement on PostgreSQL: each read
/// gets its own token's state and its own client (or none), and a revocation made before the
/// reads is seen by every one of them.
async fn thirty_token_states_read_at_once_each_get_their_own(store: &dyn Store) {
    let (_, c, _) = setup(store).await;
    let jtis: Vec<String> = (0..30).map(|i| format!("j-{i}")).collect();
    for jti in jtis.iter().step_by(2) {
        assert!(store
            .revoke_access_token(jti, NOW + 3600, NOW)
            .await
            .unwrap());
    }
    let token = |i: usize| AccessTokenRef {
        jti: &jtis[i],
        family_id: None,
        grant_id: None,
    };
    // Every fifth read names a client that does not exist.
    let reads = (0..30).map(|i| {
        let client_id = if i % 5 == 0 {
            "no-such-client"
        } else {
            &c.client_id
        };
        async move { (i, store.client_and_token_state(client_id, &token(i)).await) }
    });
    for (i, answer) in join_all(reads).await {
        let answer = answer.unwrap();
        if i % 5 == 0 {
            assert!(answer.is_none(), "read {i}: {answer:?}");
            continue;
        }
        let (client, live) = answer.unwrap();
        assert_eq!(client, c, "read {i}");
        assert_eq!(live, i % 2 == 1, "read {i}");
    }
    let lives = join_all(
        (0..30).map(|i| async move { (i, store.access_token_live(&token(i)).await.unwrap()) }),
    )
    .await;
    for (i, live) in lives {
        assert_eq!(live, i % 2 == 1, "read {i}");
    }
}

storage_tests! {
    reuse_and_replay_are_recognized_until_a_fixed_time,
    thirty_token_states_read_at_once_each_get_their_own,
    an_access_tokens_state_is_read_with_its_client,
    another_clients_code_is_refused_and_left_alone,
    reuse_and_replay_revoke_one_family_not_the_grant,
    a_family_has_an_absolute_lifetime,
    rotations_and_revocations_racing_never_fail,
    a_users_pending_consents_are_bounded,
    used_consents_do_not_push_out_a_pending_one,
    a_failing_write_leaves_the_writes_around_it,
    hot_path_writes_and_other_writes_interleave,
    a_closed_store_refuses_reads_and_writes_as_unavailable,
    an_accepted_exchange_stores_its_refresh_token_with_the_code_use,
    a_rejected_exchange_burns_the_code_and_stores_nothing,
    a_refused_exchange_writes_nothing_and_a_refused_replay_revokes_nothing,
    concurrent_code_redemptions_have_one_winner,
    concurrent_exchanges_of_one_code_have_one_winner,
    refused_exchanges_racing_the_owners_leave_it_the_code,
    a_code_read_with_its_client_is_exchanged_once,
    rotation_uses_the_old_token_and_stores_the_new_one,
    a_refresh_token_is_read_with_the_client_presenting_it,
    reuse_revokes_the_grant_and_its_family,
    concurrent_rotations_have_one_winner,
    revoking_the_grant_revokes_its_refresh_tokens,
    revoking_a_family_by_one_token,
    expired_tokens_do_not_rotate_and_are_purged,
    deleting_the_client_deletes_its_refresh_tokens,
}

/// On a fresh PostgreSQL database (never analyzed, as just after installation), codes are
/// exchanged and refresh tokens rotated through their keys' indexes only: never through the
/// index of the client, the grant, the family or the expiry, which would read every code of the
/// client or every token of the grant to find one (`shared`, "a row found by its key"). The
/// statements name those columns too, and without statistics the planner judged their smaller
/// indexes cheaper. Read from `pg_stat_user_indexes`, which a backend updates within a second of
/// going idle.
#[tokio::test]
async fn postgres_finds_codes_and_refresh_tokens_by_their_keys() {
    let Some((url, _db)) = support::postgres_url().await else {
        eprintln!(
            "skipped: set {} to run the PostgreSQL suite",
            support::POSTGRES_ENV
        );
        return;
    };
    let store = oauth_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let store = store.as_ref();
    let u = user(store, "plans@x.example").await;
    let c = client_of(store, &u).await;
    const N: usize = 12;
    let mut grant = None;
    for i in 0..N {
        grant = Some(approve(store, &u, &c, &format!("consent-{i}"), &format!("code-{i}")).await);
    }
    let grant = grant.unwrap();
    for i in 0..N {
        let out = exchange(
            store,
            &format!("code-{i}"),
            &c.client_id,
            &family(&format!("fam-{i}"), NOW + DAY),
            token(&format!("rt-{i}"), &grant, &["admin"], NOW + 1),
            NOW + 1,
        )
        .await;
        assert!(matches!(out, CodeExchange::Exchanged(_)), "{out:?}");
    }
    for i in 0..N {
        let new = token(&format!("rt-{i}-next"), &grant, &["admin"], NOW + 2);
        let out = store
            .rotate_refresh_token(&format!("rt-{i}"), &new, NOW + 2)
            .await
            .unwrap();
        assert!(matches!(out, RefreshRotation::Rotated(_)), "{out:?}");
    }
    let mut stats = sqlx::PgConnection::connect(&url).await.unwrap();
    let read = async |stats: &mut sqlx::PgConnection| -> std::collections::HashMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT indexrelname::text, idx_scan FROM pg_stat_user_indexes \
             WHERE relname IN ('authorization_codes', 'refresh_tokens')",
        )
        .fetch_all(stats)
        .await
        .unwrap()
        .into_iter()
        .collect()
    };
    // Wait for the store's connections to report: every exchange read its code by its key.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let scans = loop {
        let scans = read(&mut stats).await;
        let reported = |index: &str| scans.get(index).copied().unwrap_or(0);
        if reported("authorization_codes_pkey") >= N as i64
            && reported("refresh_tokens_pkey") >= N as i64
        {
            break scans;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "statistics never reported: {scans:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    for index in [
        "authorization_codes_client",
        "authorization_codes_grant",
        "refresh_tokens_grant",
        "refresh_tokens_family",
        "refresh_tokens_expiry",
    ] {
        assert_eq!(scans.get(index), Some(&0), "{index} was read: {scans:?}");
    }
    store.close().await;
}
