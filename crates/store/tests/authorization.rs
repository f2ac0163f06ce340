//! Storage of the authorization code flow: sessions, failed-login counters, consent requests,
//! grants and codes. Each test runs on SQLite, and on PostgreSQL when `OAUTH_TEST_POSTGRES_URL`
//! is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::update;

use oauth_core::{Client, ClientDraft, PageSpec, ScopeCatalogue};
use oauth_store::{
    Approval, AuthorizationCode, CodeDecision, CodeExchange, CodeRedemption, ConsentRequest,
    LoginReservation, NewLoginDevice, NewSecurityEvent, NewSession, NewTokenFamily, NewUser,
    PasswordChange, SecurityEventFilter, Store, User,
};
use oauth_wire::{ClientType, CreateOAuthClient, GrantType};

const NOW: i64 = 1_800_000_000;

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

async fn client(store: &dyn Store, owner: &User) -> Client {
    let req = CreateOAuthClient::new(
        "App",
        ClientType::Confidential,
        [GrantType::AuthorizationCode],
        ["admin", "voice"],
    )
    .redirect_uris(["https://app.example.com/cb"]);
    let c = Client {
        client_id: uuid::Uuid::new_v4().to_string(),
        org_id: owner.org_id.clone(),
        user_id: owner.id.clone(),
        origin: oauth_core::ClientOrigin::Management,
        secret_hash: Some("ab".repeat(32)),
        verified: false,
        created_at: NOW,
        updated_at: NOW,
        settings: ClientDraft::from_create(req, &ScopeCatalogue::default()).unwrap(),
    };
    store.insert_client(&c).await.unwrap();
    c
}

fn consent(token_hash: &str, user: &User, client: &Client, scopes: &[&str]) -> ConsentRequest {
    ConsentRequest {
        token_hash: token_hash.to_owned(),
        user_id: user.id.clone(),
        client_id: client.client_id.clone(),
        redirect_uri: "https://app.example.com/cb".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        state: Some("st".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        code_challenge_method: Some("S256".into()),
        resource: Some("https://api.example".into()),
        created_at: NOW,
        expires_at: NOW + 600,
    }
}

fn approval(code_hash: &str, now: i64) -> Approval {
    Approval {
        new_grant_id: uuid::Uuid::new_v4().to_string(),
        code_hash: code_hash.to_owned(),
        code_expires_at: now + 60,
        now,
        grantable_scopes: [
            "admin",
            "voice",
            "messaging",
            "numbers",
            "billing",
            "profile",
        ]
        .map(String::from)
        .to_vec(),
        pending: None,
        event: None,
    }
}

/// [`approval`] with the request as the caller read it, as the server approves.
fn approval_of(req: &ConsentRequest, code_hash: &str, now: i64) -> Approval {
    Approval {
        pending: Some(req.clone()),
        ..approval(code_hash, now)
    }
}

/// A grant of `u` for `c` covering `admin` and `voice` (with the test resource), made by
/// approving a first request.
async fn covering_grant(store: &dyn Store, u: &User, c: &Client) -> oauth_store::Grant {
    let first = consent("t-first", u, c, &["admin", "voice"]);
    store.create_consent(&first).await.unwrap();
    let (_, grant, _) = store
        .approve_consent("t-first", &u.id, &approval_of(&first, "c-first", NOW))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.scopes, ["admin", "voice"]);
    grant
}

async fn approvals_under_a_covering_grant_run_together(store: &dyn Store) {
    let alice = user(store, "many@x.example").await;
    let c = client(store, &alice).await;
    let grant = covering_grant(store, &alice, &c).await;
    let reqs: Vec<ConsentRequest> = (0..15)
        .map(|i| consent(&format!("t{i:02}"), &alice, &c, &["voice"]))
        .collect();
    for r in &reqs {
        store.create_consent(r).await.unwrap();
    }
    // Two approvals of every request, 30 at once: one of each pair wins.
    let approvals: Vec<(String, Approval)> = reqs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            [0, 1].map(|k| {
                (
                    r.token_hash.clone(),
                    Approval {
                        event: Some(approval_event(r, &format!("{i:02}"))),
                        ..approval_of(r, &format!("c{i:02}-{k}"), NOW)
                    },
                )
            })
        })
        .collect();
    let results = futures_util::future::join_all(
        approvals
            .iter()
            .map(|(t, a)| store.approve_consent(t, &alice.id, a)),
    )
    .await;
    let won: Vec<_> = results
        .into_iter()
        .map(|r| r.unwrap())
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|pair| {
            let wins: Vec<_> = pair.iter().flatten().cloned().collect();
            assert_eq!(wins.len(), 1, "one approval of each request wins");
            wins.into_iter().next().unwrap()
        })
        .collect();
    for (i, (req, g, code)) in won.iter().enumerate() {
        assert_eq!(req, &reqs[i], "the request returned is the one stored");
        assert_eq!(g.id, grant.id, "every code hangs off the one grant");
        assert_eq!(
            g.scopes,
            ["admin", "voice"],
            "a covered request widens nothing"
        );
        assert_eq!(code.grant_id, grant.id);
        assert_eq!(code.scopes, ["voice"]);
        assert_eq!(code.redirect_uri, reqs[i].redirect_uri);
        assert_eq!(code.code_challenge, reqs[i].code_challenge);
        assert_eq!(code.resource, reqs[i].resource);
        assert_eq!(code.expires_at, NOW + 60);
        assert_eq!(
            store
                .get_consent(&req.token_hash, &alice.id, NOW)
                .await
                .unwrap(),
            None
        );
        match store
            .redeem_authorization_code(&code.code_hash, NOW + 1)
            .await
            .unwrap()
        {
            CodeRedemption::Redeemed(stored) => assert_eq!(*stored, *code),
            other => panic!("code {i} did not redeem: {other:?}"),
        }
    }
    let page = store
        .list_grants(&alice.id, PageSpec::default())
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].scopes, ["admin", "voice"]);
    // One event per approved request, none for the approvals that lost.
    let mut events = approval_events(store, &alice.id).await;
    events.sort();
    let expected: Vec<_> = (0..15)
        .map(|i| (Some(grant.id.clone()), format!("{i:02}")))
        .collect();
    assert_eq!(events, expected);
}

/// The event an approval of `req` hands to the store, marked with `mark` in its detail.
fn approval_event(req: &ConsentRequest, mark: &str) -> NewSecurityEvent {
    NewSecurityEvent {
        occurred_at: NOW,
        kind: "consent.approved".into(),
        org_id: Some("org-of-the-event".into()),
        user_id: Some(req.user_id.clone()),
        client_id: Some(req.client_id.clone()),
        grant_id: Some("not-the-grant".into()),
        ip: Some("192.0.2.7".into()),
        detail: serde_json::json!({ "mark": mark }),
    }
}

/// The approvals' events stored for `user_id`: (grant id, mark), oldest first.
async fn approval_events(store: &dyn Store, user_id: &str) -> Vec<(Option<String>, String)> {
    let filter = SecurityEventFilter {
        kind: Some("consent.approved".into()),
        user_id: Some(user_id.to_owned()),
        ..SecurityEventFilter::default()
    };
    let mut events = store.list_security_events(&filter, 100).await.unwrap();
    events.reverse();
    events
        .into_iter()
        .map(|e| {
            assert_eq!(e.ip.as_deref(), Some("192.0.2.7"));
            assert_eq!(e.org_id.as_deref(), Some("org-of-the-event"));
            assert_eq!(e.occurred_at, NOW);
            assert!(e.client_id.is_some());
            (e.grant_id, e.detail["mark"].as_str().unwrap().to_owned())
        })
        .collect()
}

async fn an_approval_stores_its_event_in_its_own_write(store: &dyn Store) {
    let alice = user(store, "event@x.example").await;
    let c = client(store, &alice).await;
    // A first approval creates the grant (the transaction), a second one is under the grant
    // that covers it (the case PostgreSQL approves in one statement): each stores its event,
    // under the grant, with the request's client.
    let first = consent("t-ev-1", &alice, &c, &["admin", "voice"]);
    store.create_consent(&first).await.unwrap();
    let a = Approval {
        event: Some(approval_event(&first, "first")),
        ..approval_of(&first, "c-ev-1", NOW)
    };
    let (_, grant, _) = store
        .approve_consent("t-ev-1", &alice.id, &a)
        .await
        .unwrap()
        .unwrap();
    let second = consent("t-ev-2", &alice, &c, &["voice"]);
    store.create_consent(&second).await.unwrap();
    let a = Approval {
        event: Some(approval_event(&second, "second")),
        ..approval_of(&second, "c-ev-2", NOW)
    };
    store
        .approve_consent("t-ev-2", &alice.id, &a)
        .await
        .unwrap()
        .unwrap();
    let under = Some(grant.id.clone());
    let clients: Vec<_> = store
        .list_security_events(
            &SecurityEventFilter {
                user_id: Some(alice.id.clone()),
                ..SecurityEventFilter::default()
            },
            10,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.client_id)
        .collect();
    assert_eq!(
        clients,
        [Some(c.client_id.clone()), Some(c.client_id.clone())]
    );
    assert_eq!(
        approval_events(store, &alice.id).await,
        [
            (under.clone(), "first".into()),
            (under.clone(), "second".into())
        ]
    );
    // Approving a used request, an unknown one, or one with no grantable scope left approves
    // nothing and stores no event.
    let a = Approval {
        event: Some(approval_event(&second, "again")),
        ..approval_of(&second, "c-ev-3", NOW)
    };
    assert_eq!(
        store
            .approve_consent("t-ev-2", &alice.id, &a)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .approve_consent("t-ev-unknown", &alice.id, &a)
            .await
            .unwrap(),
        None
    );
    let third = consent("t-ev-3", &alice, &c, &["voice"]);
    store.create_consent(&third).await.unwrap();
    let a = Approval {
        event: Some(approval_event(&third, "narrowed away")),
        grantable_scopes: vec!["admin".into()],
        ..approval_of(&third, "c-ev-4", NOW)
    };
    assert_eq!(
        store
            .approve_consent("t-ev-3", &alice.id, &a)
            .await
            .unwrap(),
        None
    );
    assert_eq!(approval_events(store, &alice.id).await.len(), 2);
}

async fn an_approval_trusts_the_stored_request_not_the_callers_copy(store: &dyn Store) {
    let alice = user(store, "copy@x.example").await;
    let c = client(store, &alice).await;
    let grant = covering_grant(store, &alice, &c).await;
    let stored = consent("t-copy", &alice, &c, &["voice"]);
    store.create_consent(&stored).await.unwrap();
    let mut copy = stored.clone();
    copy.scopes = vec!["admin".into(), "voice".into()];
    copy.code_challenge = Some("another-challenge-another-challenge-another".into());
    copy.state = Some("forged".into());
    let (req, g, code) = store
        .approve_consent("t-copy", &alice.id, &approval_of(&copy, "c-copy", NOW))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req, stored);
    assert_eq!(g.id, grant.id);
    assert_eq!(code.scopes, ["voice"]);
    assert_eq!(code.code_challenge, stored.code_challenge);
    match store
        .redeem_authorization_code("c-copy", NOW)
        .await
        .unwrap()
    {
        CodeRedemption::Redeemed(kept) => {
            assert_eq!(kept.scopes, ["voice"]);
            assert_eq!(kept.code_challenge, stored.code_challenge);
        }
        other => panic!("{other:?}"),
    }
    // A copy for another user approves nothing of theirs, and leaves the request pending.
    let bob = user(store, "copy-bob@x.example").await;
    let pending = consent("t-bob", &alice, &c, &["voice"]);
    store.create_consent(&pending).await.unwrap();
    assert!(store
        .approve_consent("t-bob", &bob.id, &approval_of(&pending, "c-bob", NOW))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.get_consent("t-bob", &alice.id, NOW).await.unwrap(),
        Some(pending)
    );
    assert_eq!(
        store.redeem_authorization_code("c-bob", NOW).await.unwrap(),
        CodeRedemption::Invalid
    );
}

async fn approvals_racing_a_revocation_leave_no_live_code_on_it(store: &dyn Store) {
    let alice = user(store, "race@x.example").await;
    let c = client(store, &alice).await;
    let grant = covering_grant(store, &alice, &c).await;
    let reqs: Vec<ConsentRequest> = (0..12)
        .map(|i| consent(&format!("r{i:02}"), &alice, &c, &["voice"]))
        .collect();
    for r in &reqs {
        store.create_consent(r).await.unwrap();
    }
    let approvals: Vec<Approval> = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| approval_of(r, &format!("rc{i:02}"), NOW))
        .collect();
    let (results, revoked) = tokio::join!(
        futures_util::future::join_all(
            reqs.iter()
                .zip(&approvals)
                .map(|(r, a)| store.approve_consent(&r.token_hash, &alice.id, a)),
        ),
        store.revoke_grant(&alice.id, &grant.id, NOW),
    );
    assert!(revoked.unwrap().is_some());
    for (i, r) in results.into_iter().enumerate() {
        let (_, g, code) = r
            .unwrap()
            .expect("every request is approved, before or after");
        let redeemed = store
            .redeem_authorization_code(&code.code_hash, NOW)
            .await
            .unwrap();
        if g.id == grant.id {
            assert_eq!(
                redeemed,
                CodeRedemption::Invalid,
                "code {i} outlived its grant"
            );
        } else {
            assert!(
                matches!(redeemed, CodeRedemption::Redeemed(_)),
                "code {i}: {redeemed:?}"
            );
        }
    }
    let live = store
        .list_grants(&alice.id, PageSpec::default())
        .await
        .unwrap();
    assert!(live.items.iter().all(|g| g.id != grant.id));
    assert!(live.total <= 1, "one live grant at most: {:?}", live.items);
}

async fn sessions_expire_and_can_be_deleted(store: &dyn Store) {
    let u = user(store, "s@x.example").await;
    store
        .create_session(NewSession {
            id_hash: "h1".into(),
            user_id: u.id.clone(),
            password_hash: u.password_hash.clone(),
            now: NOW,
            expires_at: NOW + 100,
        })
        .await
        .unwrap();
    assert_eq!(
        store.session_user("h1", NOW + 99).await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(store.session_user("h1", NOW + 100).await.unwrap(), None);
    assert_eq!(store.session_user("other", NOW).await.unwrap(), None);
    assert!(store.delete_session("h1").await.unwrap());
    assert_eq!(store.session_user("h1", NOW).await.unwrap(), None);
    assert!(!store.delete_session("h1").await.unwrap());
}

async fn a_password_change_ends_the_other_sessions_of_its_user_only(store: &dyn Store) {
    let u = user(store, "p@x.example").await;
    let other = user(store, "q@x.example").await;
    for (hash, who) in [("mine", &u), ("my-other", &u), ("theirs", &other)] {
        store
            .create_session(NewSession {
                id_hash: hash.into(),
                user_id: who.id.clone(),
                password_hash: who.password_hash.clone(),
                now: NOW,
                expires_at: NOW + 100,
            })
            .await
            .unwrap();
    }
    // A stale old hash changes nothing.
    assert_eq!(
        store
            .change_password(&change(
                &u.id,
                "$argon2id$stale",
                "$argon2id$new",
                "mine",
                "",
                None
            ))
            .await
            .unwrap(),
        None
    );
    assert!(store.session_user("my-other", NOW).await.unwrap().is_some());
    assert_eq!(
        store.get_user(&u.id).await.unwrap().unwrap().password_hash,
        u.password_hash
    );
    // The current one: changed, the other session of this user ended, nobody else's.
    assert_eq!(
        store
            .change_password(&change(
                &u.id,
                &u.password_hash,
                "$argon2id$new",
                "mine",
                "",
                None
            ))
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        store.get_user(&u.id).await.unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
    assert!(store.session_user("mine", NOW).await.unwrap().is_some());
    assert!(store.session_user("my-other", NOW).await.unwrap().is_none());
    assert!(store.session_user("theirs", NOW).await.unwrap().is_some());
    // With a replacement, the changing session is swapped for it in the same write; a stale
    // change swaps nothing.
    let replacement = NewSession {
        id_hash: "mine-renewed".into(),
        user_id: u.id.clone(),
        password_hash: "$argon2id$newer".into(),
        now: NOW,
        expires_at: NOW + 100,
    };
    let stale = store
        .change_password(&change(
            &u.id,
            &u.password_hash,
            "$argon2id$newer",
            "mine",
            "",
            Some(&replacement),
        ))
        .await
        .unwrap();
    assert_eq!(stale, None);
    assert!(store.session_user("mine", NOW).await.unwrap().is_some());
    assert!(store
        .session_user("mine-renewed", NOW)
        .await
        .unwrap()
        .is_none());
    let swapped = store
        .change_password(&change(
            &u.id,
            "$argon2id$new",
            "$argon2id$newer",
            "mine",
            "",
            Some(&replacement),
        ))
        .await
        .unwrap();
    assert_eq!(swapped, Some(0), "no other session was left");
    assert!(store.session_user("mine", NOW).await.unwrap().is_none());
    let renewed = store
        .session_user("mine-renewed", NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.password_hash, "$argon2id$newer");
    // Signing out the other sessions alone.
    assert_eq!(
        store
            .delete_other_sessions(&other.id, "none", "")
            .await
            .unwrap(),
        1
    );
    assert!(store.session_user("theirs", NOW).await.unwrap().is_none());
    assert_eq!(
        store
            .delete_other_sessions(&u.id, "mine-renewed", "")
            .await
            .unwrap(),
        0
    );
    assert!(store
        .session_user("mine-renewed", NOW)
        .await
        .unwrap()
        .is_some());
}

/// A change swapping the changing session for a new one is made only while that session is
/// live: one signed out meanwhile changes nothing. A change stores its event in the same write,
/// with the number of other sessions it ended.
async fn a_password_change_needs_its_session_and_stores_its_event(store: &dyn Store) {
    let u = user(store, "ev@x.example").await;
    let session = |hash: &str| NewSession {
        id_hash: hash.into(),
        user_id: u.id.clone(),
        password_hash: u.password_hash.clone(),
        now: NOW,
        expires_at: NOW + 100,
    };
    for hash in ["changer", "elsewhere"] {
        assert!(store.create_session(session(hash)).await.unwrap());
    }
    let renewed = session("renewed");
    let event = NewSecurityEvent {
        occurred_at: NOW,
        kind: "password.changed".into(),
        org_id: Some(u.org_id.clone()),
        user_id: Some(u.id.clone()),
        client_id: None,
        grant_id: None,
        ip: Some("192.0.2.1".into()),
        detail: serde_json::json!({}),
    };
    let with_event = |keep: &str| PasswordChange {
        event: Some(event.clone()),
        ..change(
            &u.id,
            &u.password_hash,
            "$argon2id$new",
            keep,
            "",
            Some(&renewed),
        )
    };
    // A session already signed out: nothing changes, no event.
    assert_eq!(
        store
            .change_password(&with_event("signed-out"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.get_user(&u.id).await.unwrap().unwrap().password_hash,
        u.password_hash
    );
    assert!(store
        .session_user("elsewhere", NOW)
        .await
        .unwrap()
        .is_some());
    assert!(store.session_user("renewed", NOW).await.unwrap().is_none());
    let filter = SecurityEventFilter {
        kind: Some("password.changed".into()),
        user_id: Some(u.id.clone()),
        ..SecurityEventFilter::default()
    };
    assert!(store
        .list_security_events(&filter, 10)
        .await
        .unwrap()
        .is_empty());
    // The live one: changed, swapped, and the event stored by the same write.
    assert_eq!(
        store.change_password(&with_event("changer")).await.unwrap(),
        Some(1)
    );
    assert!(store.session_user("changer", NOW).await.unwrap().is_none());
    assert!(store.session_user("renewed", NOW).await.unwrap().is_some());
    let events = store.list_security_events(&filter, 10).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].detail["other_sessions_ended"], 1);
    assert_eq!(events[0].ip.as_deref(), Some("192.0.2.1"));
}

/// A sign-in checked against the old password and stored while the password changes (on
/// PostgreSQL, over several connections at once) never leaves a session or a remembered device
/// behind: stored before the change, the change deletes it; after, it is not stored.
async fn sign_ins_racing_a_password_change_leave_nothing_behind(store: &dyn Store) {
    let u = user(store, "race@x.example").await;
    let session = |i: usize, hash: &str| NewSession {
        id_hash: format!("race-{i}"),
        user_id: u.id.clone(),
        password_hash: hash.to_owned(),
        now: NOW,
        expires_at: NOW + 100,
    };
    assert!(store
        .create_session(session(1000, &u.password_hash))
        .await
        .unwrap());
    let sessions = (0..30).map(|i| store.create_session(session(i, &u.password_hash)));
    let devices = (0..30)
        .map(|i| store.remember_login_device(device(&format!("race-device-{i}"), &u, NOW), 100));
    let (before, after): (Vec<_>, Vec<_>) = sessions.enumerate().partition(|(i, _)| *i < 15);
    let the_change = change(
        &u.id,
        &u.password_hash,
        "$argon2id$new",
        "race-1000",
        "",
        None,
    );
    let (stored_before, changed, stored_after, remembered) = tokio::join!(
        futures_util::future::join_all(before.into_iter().map(|(_, f)| f)),
        store.change_password(&the_change),
        futures_util::future::join_all(after.into_iter().map(|(_, f)| f)),
        futures_util::future::join_all(devices),
    );
    assert!(changed.unwrap().is_some());
    let stored = stored_before
        .into_iter()
        .chain(stored_after)
        .map(Result::unwrap)
        .filter(|s| *s)
        .count();
    let remembered = remembered
        .into_iter()
        .map(Result::unwrap)
        .filter(|r| *r)
        .count();
    for i in 0..30 {
        assert_eq!(
            store.session_user(&format!("race-{i}"), NOW).await.unwrap(),
            None,
            "session {i} outlived the change ({stored} of 30 were stored before it)"
        );
        assert_eq!(
            store
                .login_device_email(&format!("race-device-{i}"), 0)
                .await
                .unwrap(),
            None,
            "device {i} outlived the change ({remembered} of 30 were remembered before it)"
        );
    }
    assert!(store
        .session_user("race-1000", NOW)
        .await
        .unwrap()
        .is_some());
    // Checked against the old password afterwards: not stored; against the new one: stored.
    assert!(!store
        .create_session(session(2000, &u.password_hash))
        .await
        .unwrap());
    assert_eq!(store.session_user("race-2000", NOW).await.unwrap(), None);
    assert!(!store
        .remember_login_device(device("stale-device", &u, NOW), 100)
        .await
        .unwrap());
    assert_eq!(
        store.login_device_email("stale-device", 0).await.unwrap(),
        None
    );
    assert!(store
        .create_session(session(3000, "$argon2id$new"))
        .await
        .unwrap());
    assert!(store
        .session_user("race-3000", NOW)
        .await
        .unwrap()
        .is_some());
}

fn device(hash: &str, user: &User, now: i64) -> NewLoginDevice {
    NewLoginDevice {
        token_hash: hash.into(),
        user_id: user.id.clone(),
        password_hash: user.password_hash.clone(),
        now,
    }
}

async fn login_devices_name_their_user_while_used_recently(store: &dyn Store) {
    let u = user(store, "d@x.example").await;
    let other = user(store, "e@x.example").await;
    store
        .remember_login_device(device("d1", &u, NOW), 20)
        .await
        .unwrap();
    // Found when its last use is after the given time.
    let email = |h: &'static str, after: i64| async move {
        store.login_device_email(h, after).await.unwrap()
    };
    assert_eq!(email("d1", NOW - 1).await.as_deref(), Some("d@x.example"));
    assert_eq!(email("d1", NOW).await, None);
    assert_eq!(email("d2", NOW - 1).await, None);
    // A sign-in through it moves its last use on; never back.
    store.login_device_used("d1", NOW + 50).await.unwrap();
    store.login_device_used("d1", NOW + 10).await.unwrap();
    assert!(email("d1", NOW + 49).await.is_some());
    assert_eq!(email("d1", NOW + 50).await, None);
    // The same hash twice is refused, and the first stays its user's.
    assert!(store
        .remember_login_device(device("d1", &other, NOW), 20)
        .await
        .is_err());
    assert_eq!(email("d1", NOW).await.as_deref(), Some("d@x.example"));
    // The purge forgets devices unused for the retention time only.
    store
        .remember_login_device(device("d3", &u, NOW + 100), 20)
        .await
        .unwrap();
    let retention = oauth_store::LOGIN_DEVICE_RETENTION_SECS;
    store
        .purge_authorization(NOW + 50 + retention, NOW - 900, 100)
        .await
        .unwrap();
    assert_eq!(email("d1", 0).await, None);
    assert_eq!(email("d3", 0).await.as_deref(), Some("d@x.example"));
}

async fn a_user_keeps_only_the_newest_login_devices(store: &dyn Store) {
    let u = user(store, "f@x.example").await;
    let other = user(store, "g@x.example").await;
    store
        .remember_login_device(device("theirs", &other, NOW), 3)
        .await
        .unwrap();
    for i in 0..5 {
        store
            .remember_login_device(device(&format!("mine{i}"), &u, NOW + i), 3)
            .await
            .unwrap();
    }
    let live = |h: String| async move { store.login_device_email(&h, 0).await.unwrap() };
    for i in 0..2 {
        assert_eq!(live(format!("mine{i}")).await, None, "mine{i} is gone");
    }
    for i in 2..5 {
        assert!(live(format!("mine{i}")).await.is_some(), "mine{i} stays");
    }
    assert!(live("theirs".into()).await.is_some());
    // The one used last counts as newest; and a new device always stays, even among others of
    // the same second (whatever their hashes' order).
    store.login_device_used("mine2", NOW + 10).await.unwrap();
    for h in ["zzz", "yyy", "aaa"] {
        store
            .remember_login_device(device(h, &u, NOW + 20), 3)
            .await
            .unwrap();
        assert!(live(h.into()).await.is_some(), "{h} stays");
    }
    for gone in ["mine2", "mine3", "mine4"] {
        assert_eq!(live(gone.into()).await, None, "{gone} is gone");
    }
    // A password change forgets the user's other devices, and nobody else's.
    assert_eq!(
        store
            .change_password(&change(
                &u.id,
                &u.password_hash,
                "$argon2id$new",
                "none",
                "zzz",
                None
            ))
            .await
            .unwrap(),
        Some(0)
    );
    assert!(live("zzz".into()).await.is_some());
    assert_eq!(live("yyy".into()).await, None);
    assert_eq!(live("aaa".into()).await, None);
    assert!(live("theirs".into()).await.is_some());
    // Signing the other sessions out forgets the other devices too.
    let again = NewLoginDevice {
        password_hash: "$argon2id$new".into(),
        ..device("again", &u, NOW + 30)
    };
    assert!(store.remember_login_device(again, 3).await.unwrap());
    let ended = store.delete_other_sessions(&u.id, "none", "again").await;
    assert_eq!(ended.unwrap(), 0);
    assert!(live("again".into()).await.is_some());
    assert_eq!(live("zzz".into()).await, None);
    assert!(live("theirs".into()).await.is_some());
}

async fn concurrent_sign_ins_never_keep_more_devices_than_the_cap(store: &dyn Store) {
    let u = user(store, "h@x.example").await;
    let hashes: Vec<String> = (0..30).map(|i| format!("at-once{i}")).collect();
    let results = futures_util::future::join_all(
        hashes
            .iter()
            .map(|h| store.remember_login_device(device(h, &u, NOW), 20)),
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut live = 0;
    for h in &hashes {
        live += usize::from(store.login_device_email(h, 0).await.unwrap().is_some());
    }
    assert_eq!(live, 20);
}

async fn login_failures_count_within_the_window(store: &dyn Store) {
    let keys = vec!["account:a@x".to_owned(), "ip:127.0.0.1".to_owned()];
    store
        .reserve_login_attempt(&limitless(&keys), NOW, NOW - 900)
        .await
        .unwrap();
    store
        .reserve_login_attempt(&limitless(&keys[..1]), NOW + 10, NOW - 890)
        .await
        .unwrap();
    assert_eq!(
        store
            .login_failures("account:a@x", NOW - 900)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .login_failures("ip:127.0.0.1", NOW - 900)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.login_failures("account:a@x", NOW + 5).await.unwrap(),
        1
    );
    // Recording later forgets what is older than the window.
    store
        .reserve_login_attempt(&limitless(&keys[..1]), NOW + 2000, NOW + 1100)
        .await
        .unwrap();
    assert_eq!(store.login_failures("account:a@x", 0).await.unwrap(), 1);
    store.clear_login_failures("account:a@x").await.unwrap();
    assert_eq!(store.login_failures("account:a@x", 0).await.unwrap(), 0);
    assert_eq!(store.login_failures("ip:127.0.0.1", 0).await.unwrap(), 1);
}

/// `keys`, each with no limit: a reservation that always records.
fn limitless(keys: &[String]) -> Vec<(String, u64)> {
    keys.iter().map(|k| (k.clone(), u64::MAX)).collect()
}

fn attempt_keys(account: &str, account_limit: u64, ip: &str, ip_limit: u64) -> Vec<(String, u64)> {
    vec![
        (format!("account:{account}"), account_limit),
        (format!("ip:{ip}"), ip_limit),
    ]
}

async fn login_attempts_are_reserved_up_to_the_limit(store: &dyn Store) {
    let keys = attempt_keys("a@x", 3, "127.0.0.1", 4);
    for _ in 0..3 {
        assert_eq!(
            store
                .reserve_login_attempt(&keys, NOW, NOW - 900)
                .await
                .unwrap(),
            LoginReservation::Reserved
        );
    }
    // The account is at its limit: refused, and nothing recorded under either key.
    assert_eq!(
        store
            .reserve_login_attempt(&keys, NOW, NOW - 900)
            .await
            .unwrap(),
        LoginReservation::Limited(0)
    );
    assert_eq!(store.login_failures("account:a@x", 0).await.unwrap(), 3);
    assert_eq!(store.login_failures("ip:127.0.0.1", 0).await.unwrap(), 3);
    // Another account from the same address: one more, then the address is at its limit.
    let other = attempt_keys("b@x", 3, "127.0.0.1", 4);
    assert_eq!(
        store
            .reserve_login_attempt(&other, NOW, NOW - 900)
            .await
            .unwrap(),
        LoginReservation::Reserved
    );
    assert_eq!(
        store
            .reserve_login_attempt(&other, NOW, NOW - 900)
            .await
            .unwrap(),
        LoginReservation::Limited(1)
    );
    assert_eq!(store.login_failures("account:b@x", 0).await.unwrap(), 1);
    // An attempt that did not fail gives its reservation back: one row per key.
    store
        .release_login_attempt(&["account:b@x".to_owned(), "ip:127.0.0.1".to_owned()], NOW)
        .await
        .unwrap();
    assert_eq!(store.login_failures("account:b@x", 0).await.unwrap(), 0);
    assert_eq!(store.login_failures("ip:127.0.0.1", 0).await.unwrap(), 3);
    assert_eq!(store.login_failures("account:a@x", 0).await.unwrap(), 3);
    // After the window the old failures are forgotten.
    assert_eq!(
        store
            .reserve_login_attempt(&keys, NOW + 1000, NOW + 100)
            .await
            .unwrap(),
        LoginReservation::Reserved
    );
    assert_eq!(store.login_failures("account:a@x", 0).await.unwrap(), 1);
    assert_eq!(store.login_failures("ip:127.0.0.1", 0).await.unwrap(), 1);
}

async fn concurrent_login_attempts_never_pass_the_limit(store: &dyn Store) {
    let keys = attempt_keys("c@x", 5, "192.0.2.1", 100);
    let outcomes = futures_util::future::join_all(
        (0..30).map(|_| store.reserve_login_attempt(&keys, NOW, NOW - 900)),
    )
    .await;
    let outcomes: Vec<LoginReservation> = outcomes.into_iter().map(Result::unwrap).collect();
    let reserved = outcomes
        .iter()
        .filter(|o| **o == LoginReservation::Reserved)
        .count();
    assert_eq!(reserved, 5, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, LoginReservation::Reserved | LoginReservation::Limited(0))));
    assert_eq!(store.login_failures("account:c@x", 0).await.unwrap(), 5);
    assert_eq!(store.login_failures("ip:192.0.2.1", 0).await.unwrap(), 5);
}

/// The live consent request of `token` for `user_id`, as both reads see it: they must agree,
/// and the joined read's client must be the request's, as stored.
async fn live_consent(
    store: &dyn Store,
    token: &str,
    user_id: &str,
    now: i64,
) -> Option<ConsentRequest> {
    let alone = store.get_consent(token, user_id, now).await.unwrap();
    let joined = store
        .get_consent_and_client(token, user_id, now)
        .await
        .unwrap();
    match (&alone, joined) {
        (Some(req), Some((read, client))) => {
            assert_eq!(&read, req);
            assert_eq!(
                Some(client),
                store.get_client(&req.client_id).await.unwrap()
            );
        }
        (None, None) => {}
        (alone, joined) => panic!("the reads disagree: {alone:?} against {joined:?}"),
    }
    alone
}

async fn events_of_kind(store: &dyn Store, kind: &str) -> Vec<oauth_store::SecurityEvent> {
    let filter = SecurityEventFilter {
        kind: Some(kind.into()),
        ..Default::default()
    };
    store.list_security_events(&filter, 10).await.unwrap()
}

/// Removing a user takes everything of theirs in one write, with its event, and a consent
/// request stored for them afterwards (an authorization read while the removal ran) is not
/// stored: the foreign key would refuse it as a server error.
async fn a_removed_user_leaves_nothing_and_gets_no_consent_request(store: &dyn Store) {
    let alice = user(store, "leaving@x.example").await;
    let bob = user(store, "staying@x.example").await;
    let c = client(store, &alice).await;
    for (u, cookie) in [(&alice, "sa"), (&bob, "sb")] {
        let session = NewSession {
            id_hash: cookie.into(),
            user_id: u.id.clone(),
            password_hash: u.password_hash.clone(),
            now: NOW,
            expires_at: NOW + 3600,
        };
        assert!(store.create_session(session).await.unwrap());
    }
    store
        .create_consent(&consent("pending", &alice, &c, &["admin"]))
        .await
        .unwrap();
    store
        .create_consent(&consent("approved", &alice, &c, &["admin"]))
        .await
        .unwrap();
    assert!(store
        .approve_consent("approved", &alice.id, &approval("code", NOW))
        .await
        .unwrap()
        .is_some());
    let event = NewSecurityEvent {
        occurred_at: NOW,
        kind: "user.deleted".into(),
        org_id: Some(alice.org_id.clone()),
        user_id: Some(alice.id.clone()),
        client_id: None,
        grant_id: None,
        ip: None,
        detail: serde_json::json!({"by": "operator"}),
    };

    let ended = store
        .delete_user(&alice.id, None, Some(event.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ended,
        oauth_store::DeletedUser {
            sessions: 1,
            api_keys: 0,
            grants: 1,
            clients_created: 1,
        }
    );
    assert!(store.get_user(&alice.id).await.unwrap().is_none());
    assert!(store.session_user("sa", NOW).await.unwrap().is_none());
    assert_eq!(live_consent(store, "pending", &alice.id, NOW).await, None);
    assert_eq!(
        store.redeem_authorization_code("code", NOW).await.unwrap(),
        CodeRedemption::Invalid
    );
    // Stored with its counts; the client stays with the organization.
    let events = events_of_kind(store, "user.deleted").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].detail["grants_revoked"], 1);
    assert_eq!(events[0].detail["sessions_ended"], 1);
    assert!(store.get_client(&c.client_id).await.unwrap().is_some());
    // The other user keeps their session.
    assert_eq!(
        store.session_user("sb", NOW).await.unwrap().map(|u| u.id),
        Some(bob.id.clone())
    );

    // An authorization read before the removal stores nothing after it, and fails nothing.
    store
        .create_consent(&consent("late", &alice, &c, &["admin"]))
        .await
        .unwrap();
    assert_eq!(live_consent(store, "late", &alice.id, NOW).await, None);
    // Once only: nothing written the second time, no second event.
    assert_eq!(
        store
            .delete_user(&alice.id, None, Some(event))
            .await
            .unwrap(),
        None
    );
    let events = events_of_kind(store, "user.deleted").await;
    assert_eq!(events.len(), 1);
}

async fn consent_tokens_are_single_use_and_bound_to_their_user(store: &dyn Store) {
    let alice = user(store, "alice@x.example").await;
    let bob = user(store, "bob@x.example").await;
    let c = client(store, &alice).await;
    let req = consent("t1", &alice, &c, &["admin"]);
    store.create_consent(&req).await.unwrap();
    assert_eq!(
        live_consent(store, "t1", &alice.id, NOW).await,
        Some(req.clone())
    );
    // Another user's token is unknown to them, and they cannot use it up.
    assert_eq!(live_consent(store, "t1", &bob.id, NOW).await, None);
    assert_eq!(
        store.consume_consent("t1", &bob.id, NOW).await.unwrap(),
        None
    );
    assert_eq!(
        store.consume_consent("t1", &alice.id, NOW).await.unwrap(),
        Some(req)
    );
    assert_eq!(
        store.consume_consent("t1", &alice.id, NOW).await.unwrap(),
        None
    );
    assert_eq!(live_consent(store, "t1", &alice.id, NOW).await, None);
    assert!(store
        .approve_consent("t1", &alice.id, &approval("c1", NOW))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.redeem_authorization_code("c1", NOW).await.unwrap(),
        CodeRedemption::Invalid
    );

    // Expired at exactly expires_at.
    store
        .create_consent(&consent("t2", &alice, &c, &["admin"]))
        .await
        .unwrap();
    assert_eq!(live_consent(store, "t2", &alice.id, NOW + 600).await, None);
    assert_eq!(
        store
            .consume_consent("t2", &alice.id, NOW + 600)
            .await
            .unwrap(),
        None
    );
    assert!(live_consent(store, "t2", &alice.id, NOW + 599)
        .await
        .is_some());
    // A request goes with its client.
    assert!(store
        .delete_client(&alice.org_id, &c.client_id)
        .await
        .unwrap());
    assert_eq!(live_consent(store, "t2", &alice.id, NOW + 599).await, None);
}

async fn concurrent_approvals_of_one_token_succeed_once(store: &dyn Store) {
    let alice = user(store, "alice@x.example").await;
    let c = client(store, &alice).await;
    store
        .create_consent(&consent("t", &alice, &c, &["admin"]))
        .await
        .unwrap();
    let (a1, a2, a3) = (
        approval("c1", NOW),
        approval("c2", NOW),
        approval("c3", NOW),
    );
    let (r1, r2, r3, r4) = tokio::join!(
        store.approve_consent("t", &alice.id, &a1),
        store.approve_consent("t", &alice.id, &a2),
        store.approve_consent("t", &alice.id, &a3),
        store.consume_consent("t", &alice.id, NOW),
    );
    let wins = [
        r1.unwrap().is_some(),
        r2.unwrap().is_some(),
        r3.unwrap().is_some(),
        r4.unwrap().is_some(),
    ];
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
}

async fn approving_creates_then_widens_one_grant_and_mints_a_code(store: &dyn Store) {
    let alice = user(store, "alice@x.example").await;
    let c = client(store, &alice).await;
    store
        .create_consent(&consent("t1", &alice, &c, &["admin"]))
        .await
        .unwrap();
    let (req, grant, code) = store
        .approve_consent("t1", &alice.id, &approval("c1", NOW))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.scopes, ["admin"]);
    assert_eq!(grant.resources, ["https://api.example"]);
    assert_eq!(grant.client_id, c.client_id);
    assert_eq!(code.grant_id, grant.id);
    assert_eq!(code.code_challenge, req.code_challenge);
    assert_eq!(code.expires_at, NOW + 60);

    let mut wider = consent("t2", &alice, &c, &["voice"]);
    wider.resource = None;
    store.create_consent(&wider).await.unwrap();
    let (_, widened, code2) = store
        .approve_consent("t2", &alice.id, &approval("c2", NOW + 5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(widened.id, grant.id, "one grant per user and client");
    assert_eq!(widened.scopes, ["admin", "voice"]);
    assert_eq!(
        code2.scopes,
        ["voice"],
        "the code carries what this request asked"
    );
    let page = store
        .list_grants(&alice.id, PageSpec::default())
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].scopes, ["admin", "voice"]);
    assert_eq!(
        store
            .find_client_grant(&alice.id, &c.client_id, "")
            .await
            .unwrap()
            .map(|g| g.id),
        Some(grant.id)
    );
}

async fn codes_redeem_once_and_not_after_expiry(store: &dyn Store) {
    let alice = user(store, "alice@x.example").await;
    let c = client(store, &alice).await;
    store
        .create_consent(&consent("t1", &alice, &c, &["admin"]))
        .await
        .unwrap();
    let (_, grant, code) = store
        .approve_consent("t1", &alice.id, &approval("c1", NOW))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .redeem_authorization_code("c1", NOW + 59)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(Box::new(code))
    );
    assert_eq!(
        store
            .redeem_authorization_code("c1", NOW + 59)
            .await
            .unwrap(),
        CodeRedemption::AlreadyUsed { grant_id: grant.id }
    );
    assert_eq!(
        store.redeem_authorization_code("nope", NOW).await.unwrap(),
        CodeRedemption::Invalid
    );

    store
        .create_consent(&consent("t2", &alice, &c, &["admin"]))
        .await
        .unwrap();
    store
        .approve_consent("t2", &alice.id, &approval("c2", NOW))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .redeem_authorization_code("c2", NOW + 60)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
}

async fn revoking_a_grant_kills_its_codes_and_hides_it(store: &dyn Store) {
    let alice = user(store, "alice@x.example").await;
    let bob = user(store, "bob@x.example").await;
    let c = client(store, &alice).await;
    store
        .create_consent(&consent("t1", &alice, &c, &["admin"]))
        .await
        .unwrap();
    let (_, grant, _) = store
        .approve_consent("t1", &alice.id, &approval("c1", NOW))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.revoke_grant(&bob.id, &grant.id, NOW).await.unwrap(),
        None
    );
    assert!(store
        .get_user_grant(&bob.id, &grant.id)
        .await
        .unwrap()
        .is_none());
    let revoked = store
        .revoke_grant(&alice.id, &grant.id, NOW + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW + 1));
    assert_eq!(
        store
            .redeem_authorization_code("c1", NOW + 2)
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert!(store
        .get_user_grant(&alice.id, &grant.id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .list_grants(&alice.id, PageSpec::default())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        store
            .revoke_grant(&alice.id, &grant.id, NOW + 3)
            .await
            .unwrap(),
        None
    );
    // Consenting again makes a new grant: nothing tied to the old id comes back.
    store
        .create_consent(&consent("t2", &alice, &c, &["admin"]))
        .await
        .unwrap();
    let (_, again, _) = store
        .approve_consent("t2", &alice.id, &approval("c2", NOW + 4))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(again.id, grant.id);
}

async fn grants_are_listed_per_user_in_pages(store: &dyn Store) {
    let alice = user(store, "alice@x.example").await;
    let bob = user(store, "bob@x.example").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let c = client(store, &alice).await;
        let t = format!("t{i}");
        store
            .create_consent(&consent(&t, &alice, &c, &["admin"]))
            .await
            .unwrap();
        let (_, g, _) = store
            .approve_consent(&t, &alice.id, &approval(&format!("c{i}"), NOW))
            .await
            .unwrap()
            .unwrap();
        ids.push(g.id);
    }
    let p1 = store
        .list_grants(&alice.id, PageSpec { number: 1, size: 2 })
        .await
        .unwrap();
    let p2 = store
        .list_grants(&alice.id, PageSpec { number: 2, size: 2 })
        .await
        .unwrap();
    assert_eq!(p1.total, 3);
    let got: Vec<String> = p1
        .items
        .iter()
        .chain(&p2.items)
        .map(|g| g.id.clone())
        .collect();
    assert_eq!(got, ids, "oldest first, in creation order");
    assert_eq!(
        store
            .list_grants(&bob.id, PageSpec::default())
            .await
            .unwrap()
            .total,
        0
    );
}

async fn deleting_a_client_removes_its_grants_codes_and_consents(store: &dyn Store) {
    let alice = user(store, "alice@x.example").await;
    let c = client(store, &alice).await;
    store
        .create_consent(&consent("t1", &alice, &c, &["admin"]))
        .await
        .unwrap();
    store
        .create_consent(&consent("t2", &alice, &c, &["admin"]))
        .await
        .unwrap();
    store
        .approve_consent("t1", &alice.id, &approval("c1", NOW))
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .delete_client(&alice.org_id, &c.client_id)
        .await
        .unwrap());
    assert_eq!(
        store
            .list_grants(&alice.id, PageSpec::default())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        store.redeem_authorization_code("c1", NOW).await.unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(store.get_consent("t2", &alice.id, NOW).await.unwrap(), None);
}

async fn live_grants_are_found_by_id_and_touched(store: &dyn Store) {
    let alice = user(store, "alice@x.example").await;
    let c = client(store, &alice).await;
    store
        .create_consent(&consent("t1", &alice, &c, &["admin"]))
        .await
        .unwrap();
    let (_, grant, _) = store
        .approve_consent("t1", &alice.id, &approval("c1", NOW))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.live_grant(&grant.id).await.unwrap(),
        Some(grant.clone())
    );
    // The code's exchange records the grant's use.
    let family = NewTokenFamily {
        id: "fam-1".into(),
        expires_at: NOW + 1000,
    };
    let accept = |_: &AuthorizationCode| CodeDecision::Accept {
        refresh_token: None,
    };
    let code = store
        .exchange_authorization_code("c1", &c.client_id, &family, NOW + 7, Box::new(accept))
        .await
        .unwrap();
    assert!(matches!(code, CodeExchange::Exchanged(_)), "{code:?}");
    let touched = store
        .get_user_grant(&alice.id, &grant.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.last_used_at, Some(NOW + 7));
    store
        .revoke_grant(&alice.id, &grant.id, NOW + 8)
        .await
        .unwrap();
    assert_eq!(store.live_grant(&grant.id).await.unwrap(), None);
    assert_eq!(store.live_grant("unknown").await.unwrap(), None);
}

async fn purging_removes_only_what_can_no_longer_matter(store: &dyn Store) {
    let alice = user(store, "alice@x.example").await;
    let c = client(store, &alice).await;
    for (hash, expires_at) in [("old", NOW - 1), ("live", NOW + 100)] {
        store
            .create_session(NewSession {
                id_hash: hash.into(),
                user_id: alice.id.clone(),
                password_hash: alice.password_hash.clone(),
                now: NOW - 1000,
                expires_at,
            })
            .await
            .unwrap();
    }
    let mut expired = consent("t-old", &alice, &c, &["admin"]);
    expired.expires_at = NOW - 1;
    store.create_consent(&expired).await.unwrap();
    store
        .create_consent(&consent("t-live", &alice, &c, &["admin"]))
        .await
        .unwrap();
    store
        .create_consent(&consent("t-code", &alice, &c, &["admin"]))
        .await
        .unwrap();
    store
        .approve_consent("t-code", &alice.id, &approval("c1", NOW))
        .await
        .unwrap()
        .unwrap();
    store
        .reserve_login_attempt(&limitless(&["account:a".to_owned()]), NOW - 2000, 0)
        .await
        .unwrap();
    store
        .reserve_login_attempt(&limitless(&["account:b".to_owned()]), NOW, 0)
        .await
        .unwrap();

    // The approved consent "t-code" went when it was used.
    assert!(store
        .get_consent("t-code", &alice.id, NOW)
        .await
        .unwrap()
        .is_none());
    // Now: the old session, the expired consent and the old failure go.
    let n = store
        .purge_authorization(NOW, NOW - 900, 100)
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert!(store.session_user("live", NOW).await.unwrap().is_some());
    assert!(store
        .get_consent("t-live", &alice.id, NOW)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.login_failures("account:b", 0).await.unwrap(), 1);
    // The code is kept for an hour after its expiry, so that a replay is still seen as reuse.
    store.redeem_authorization_code("c1", NOW).await.unwrap();
    // An hour later the other session and consent have expired too; the code stays until an
    // hour after its own expiry.
    assert_eq!(
        store
            .purge_authorization(NOW + 60 + 3599, 0, 100)
            .await
            .unwrap(),
        2
    );
    assert!(matches!(
        store
            .redeem_authorization_code("c1", NOW + 60 + 3599)
            .await
            .unwrap(),
        CodeRedemption::AlreadyUsed { .. }
    ));
    store
        .purge_authorization(NOW + 60 + 3600, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        store.redeem_authorization_code("c1", NOW).await.unwrap(),
        CodeRedemption::Invalid
    );
}

/// A third-party client registered at `created_at` with `origin`, as registration or a metadata
/// document stores it.
async fn registered(
    store: &dyn Store,
    client_id: &str,
    origin: oauth_core::ClientOrigin,
    grants: &[GrantType],
    created_at: i64,
) -> Client {
    let client_type = if grants.contains(&GrantType::ClientCredentials) {
        ClientType::Confidential
    } else {
        ClientType::Public
    };
    let req = CreateOAuthClient::new(
        "Shared app",
        client_type.clone(),
        grants.to_vec(),
        ["voice"],
    )
    .redirect_uris([
        "https://a.example/cb",
        "https://b.example/cb",
        "http://127.0.0.1/cb",
    ]);
    let c = Client {
        client_id: client_id.to_owned(),
        org_id: oauth_core::client::THIRD_PARTY_ORG_ID.to_owned(),
        user_id: String::new(),
        origin,
        secret_hash: (client_type == ClientType::Confidential).then(|| "cd".repeat(32)),
        verified: false,
        created_at,
        updated_at: created_at,
        settings: ClientDraft::from_create(req, &ScopeCatalogue::default()).unwrap(),
    };
    store.insert_client(&c).await.unwrap();
    c
}

async fn approve_at(
    store: &dyn Store,
    u: &User,
    c: &Client,
    token: &str,
    redirect: &str,
) -> oauth_store::Grant {
    let mut req = consent(token, u, c, &["voice"]);
    req.redirect_uri = redirect.to_owned();
    store.create_consent(&req).await.unwrap();
    let (_, grant, _) = store
        .approve_consent(token, &u.id, &approval(&format!("code-{token}"), NOW))
        .await
        .unwrap()
        .unwrap();
    grant
}

async fn a_shared_client_gets_a_grant_per_installation(store: &dyn Store) {
    let alice = user(store, "inst@x.example").await;
    let doc = registered(
        store,
        "https://app.example/client.json",
        oauth_core::ClientOrigin::MetadataDocument,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        NOW,
    )
    .await;
    let web = approve_at(store, &alice, &doc, "i1", "https://a.example/cb").await;
    let other = approve_at(store, &alice, &doc, "i2", "https://b.example/cb").await;
    let desktop = approve_at(store, &alice, &doc, "i3", "http://127.0.0.1:33418/cb").await;
    let desktop_again = approve_at(store, &alice, &doc, "i4", "http://127.0.0.1:50001/cb").await;
    let web_again = approve_at(store, &alice, &doc, "i5", "https://a.example/cb").await;
    assert_eq!(web.installation, "https://a.example/cb");
    assert_eq!(desktop.installation, "http://127.0.0.1/cb");
    assert_ne!(web.id, other.id, "two installations, two grants");
    assert_eq!(
        desktop_again.id, desktop.id,
        "a loopback port is not an installation"
    );
    assert_eq!(web_again.id, web.id);
    assert_eq!(
        store
            .list_grants(&alice.id, PageSpec::default())
            .await
            .unwrap()
            .total,
        3
    );
    assert_eq!(
        store
            .find_client_grant(&alice.id, &doc.client_id, "https://b.example/cb")
            .await
            .unwrap()
            .map(|g| g.id),
        Some(other.id.clone())
    );
    assert_eq!(
        store
            .find_client_grant(&alice.id, &doc.client_id, "")
            .await
            .unwrap(),
        None
    );

    // Revoking one installation leaves the others live.
    store
        .revoke_grant(&alice.id, &web.id, NOW + 1)
        .await
        .unwrap()
        .unwrap();
    assert!(store.live_grant(&web.id).await.unwrap().is_none());
    assert!(store.live_grant(&other.id).await.unwrap().is_some());
    assert!(store.live_grant(&desktop.id).await.unwrap().is_some());
    // A new authorization of the revoked installation starts a new grant.
    let renewed = approve_at(store, &alice, &doc, "i6", "https://a.example/cb").await;
    assert_ne!(renewed.id, web.id);

    // A registered (non-document) client keeps one grant whatever the redirect URI.
    let plain = client(store, &alice).await;
    let mut two = plain.settings.clone();
    two.redirect_uris.push("https://other.example/cb".into());
    update(store, &plain.org_id, &plain.client_id, &two, false, NOW)
        .await
        .unwrap();
    let g1 = approve_at(store, &alice, &plain, "p1", "https://app.example.com/cb").await;
    let g2 = approve_at(store, &alice, &plain, "p2", "https://other.example/cb").await;
    assert_eq!(
        (g1.id.as_str(), g1.installation.as_str()),
        (g2.id.as_str(), "")
    );
}

async fn clients_are_read_together(store: &dyn Store) {
    let owner = user(store, "many@x.example").await;
    let a = client(store, &owner).await;
    let b = client(store, &owner).await;
    let ids = [
        a.client_id.clone(),
        b.client_id.clone(),
        "no-such-client".to_owned(),
    ];
    let mut got: Vec<String> = store
        .get_clients(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    got.sort();
    let mut want = vec![a.client_id.clone(), b.client_id.clone()];
    want.sort();
    assert_eq!(got, want);
    assert!(store.get_clients(&[]).await.unwrap().is_empty());
    let too_many: Vec<String> = (0..=oauth_store::MAX_CLIENTS_PER_READ)
        .map(|i| i.to_string())
        .collect();
    assert!(matches!(
        store.get_clients(&too_many).await,
        Err(oauth_store::StoreError::InvalidInput(_))
    ));
}

async fn unused_registered_clients_are_purged_and_nothing_else(store: &dyn Store) {
    use oauth_core::ClientOrigin::{Management, MetadataDocument, Registration};
    let alice = user(store, "purge-clients@x.example").await;
    let code = [GrantType::AuthorizationCode];
    let old = NOW - 1000;
    let unused_reg = registered(store, "reg-unused", Registration, &code, old).await;
    let unused_doc = registered(
        store,
        "https://x.example/c.json",
        MetadataDocument,
        &code,
        old,
    )
    .await;
    let young = registered(store, "reg-young", Registration, &code, NOW).await;
    let used = registered(store, "reg-used", Registration, &code, old).await;
    let revoked = registered(store, "reg-revoked", Registration, &code, old).await;
    let machine = registered(
        store,
        "reg-cc",
        Registration,
        &[GrantType::ClientCredentials],
        old,
    )
    .await;
    let managed = registered(store, "managed", Management, &code, old).await;
    approve_at(store, &alice, &used, "u1", "https://a.example/cb").await;
    let g = approve_at(store, &alice, &revoked, "u2", "https://a.example/cb").await;
    store
        .revoke_grant(&alice.id, &g.id, NOW)
        .await
        .unwrap()
        .unwrap();
    // An authorization under way (a consent request kept) holds its client.
    let pending = registered(store, "reg-pending", Registration, &code, old).await;
    store
        .create_consent(&consent("pending", &alice, &pending, &["voice"]))
        .await
        .unwrap();

    assert_eq!(store.purge_unused_clients(NOW - 500, 100).await.unwrap(), 2);
    for gone in [&unused_reg, &unused_doc] {
        assert!(
            store.get_client(&gone.client_id).await.unwrap().is_none(),
            "{}",
            gone.client_id
        );
    }
    for kept in [&young, &used, &revoked, &machine, &managed, &pending] {
        assert!(
            store.get_client(&kept.client_id).await.unwrap().is_some(),
            "{}",
            kept.client_id
        );
    }
    // Once the request is gone (answered, or purged after its expiry), the client goes too.
    store.purge_authorization(NOW + 601, 0, 100).await.unwrap();
    assert_eq!(store.purge_unused_clients(NOW - 500, 100).await.unwrap(), 1);
    assert!(store
        .get_client(&pending.client_id)
        .await
        .unwrap()
        .is_none());
    // Bounded: a limit of 1 deletes one; nothing left afterwards.
    registered(store, "reg-a", Registration, &code, old).await;
    registered(store, "reg-b", Registration, &code, old).await;
    assert_eq!(store.purge_unused_clients(NOW - 500, 1).await.unwrap(), 1);
    assert_eq!(store.purge_unused_clients(NOW - 500, 100).await.unwrap(), 1);
    assert_eq!(store.purge_unused_clients(NOW - 500, 100).await.unwrap(), 0);
}

/// Approvals that widen a grant (each one locks and updates it) while the grant is revoked
/// again and again: every approval ends under some live grant, never in an error. On
/// PostgreSQL a revocation can commit between the approval's insert, which saw the live grant,
/// and its lock on that grant; the approval then makes a new grant.
async fn approvals_widening_a_grant_being_revoked_never_fail(store: &dyn Store) {
    let alice = user(store, "widen@x.example").await;
    let c = client(store, &alice).await;
    let first = consent("w-first", &alice, &c, &["voice"]);
    store.create_consent(&first).await.unwrap();
    let (_, first, _) = store
        .approve_consent("w-first", &alice.id, &approval("wc-first", NOW))
        .await
        .unwrap()
        .unwrap();
    // As many as a user may have pending at once.
    let reqs: Vec<ConsentRequest> = (0..oauth_store::MAX_CONSENTS_PER_USER)
        .map(|i| {
            let scopes: &[&str] = if i % 2 == 0 {
                &["voice"]
            } else {
                &["admin", "voice"]
            };
            consent(&format!("w{i:02}"), &alice, &c, scopes)
        })
        .collect();
    for r in &reqs {
        store.create_consent(r).await.unwrap();
    }
    // No `pending`: each approval goes through the transaction that creates or widens.
    let approvals: Vec<Approval> = (0..reqs.len())
        .map(|i| approval(&format!("wc{i:02}"), NOW))
        .collect();
    let revoker = async {
        let mut revoked = 0;
        for _ in 0..60 {
            let live = store
                .list_grants(&alice.id, PageSpec::default())
                .await
                .unwrap();
            for g in live.items {
                if store
                    .revoke_grant(&alice.id, &g.id, NOW)
                    .await
                    .unwrap()
                    .is_some()
                {
                    revoked += 1;
                }
            }
            tokio::task::yield_now().await;
        }
        revoked
    };
    let (results, revoked) = tokio::join!(
        futures_util::future::join_all(
            reqs.iter()
                .zip(&approvals)
                .map(|(r, a)| store.approve_consent(&r.token_hash, &alice.id, a)),
        ),
        revoker,
    );
    assert!(revoked > 0);
    assert!(store.live_grant(&first.id).await.unwrap().is_none());
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(Some((consent, grant, code))) => {
                assert_eq!(code.grant_id, grant.id);
                assert!(consent.scopes.iter().all(|s| grant.scopes.contains(s)));
                assert!(grant.revoked_at.is_none(), "approval {i}: {grant:?}");
                assert_eq!(
                    live_consent(store, &consent.token_hash, &alice.id, NOW).await,
                    None
                );
            }
            // A grant revoked under every attempt (three revocations within the instants of
            // one approval): "retry", which the server answers 503, and nothing written. Never
            // an internal error, never nothing approved.
            Err(oauth_store::StoreError::Unavailable(_)) => {
                let req = &reqs[i];
                assert_eq!(
                    live_consent(store, &req.token_hash, &alice.id, NOW).await,
                    Some(req.clone()),
                    "approval {i} failed but used its request up"
                );
            }
            other => panic!("approval {i}: {other:?}"),
        }
    }
}

/// A client deleted while its requests are being made and approved: each write either happens
/// before the deletion (and is then removed with the client) or finds nothing, and none fails.
/// On PostgreSQL the deletion locks the client and then the rows that hang off it; a write
/// under the client that locked those rows first and the client's key second would deadlock
/// with it.
async fn deleting_a_client_while_its_requests_are_approved_never_fails(store: &dyn Store) {
    for round in 0..3 {
        let alice = user(store, &format!("gone{round}@x.example")).await;
        let c = client(store, &alice).await;
        let grant = covering_grant(store, &alice, &c).await;
        let reqs: Vec<ConsentRequest> = (0..20)
            .map(|i| {
                let scopes: &[&str] = if i % 2 == 0 {
                    &["voice"]
                } else {
                    &["admin", "voice"]
                };
                consent(&format!("d{round}-{i:02}"), &alice, &c, scopes)
            })
            .collect();
        for r in &reqs[..15] {
            store.create_consent(r).await.unwrap();
        }
        let approvals: Vec<Approval> = reqs[..15]
            .iter()
            .enumerate()
            .map(|(i, r)| {
                // Half through the one-statement path under the covering grant, half through
                // the transaction.
                if i % 2 == 0 {
                    approval_of(r, &format!("dc{round}-{i:02}"), NOW)
                } else {
                    approval(&format!("dc{round}-{i:02}"), NOW)
                }
            })
            .collect();
        let (approved, created, deleted) = tokio::join!(
            futures_util::future::join_all(
                reqs[..15]
                    .iter()
                    .zip(&approvals)
                    .map(|(r, a)| store.approve_consent(&r.token_hash, &alice.id, a)),
            ),
            futures_util::future::join_all(reqs[15..].iter().map(|r| store.create_consent(r))),
            store.delete_client(&alice.org_id, &c.client_id),
        );
        assert!(
            deleted.unwrap(),
            "round {round}: the client was not deleted"
        );
        for (i, r) in approved.into_iter().enumerate() {
            r.unwrap_or_else(|e| panic!("round {round}: approval {i} failed: {e}"));
        }
        for (i, r) in created.into_iter().enumerate() {
            // Made after the deletion, a request is written as nothing.
            r.unwrap_or_else(|e| panic!("round {round}: request {i} failed: {e}"));
        }
        // Nothing of the client is left.
        assert!(store.get_client(&c.client_id).await.unwrap().is_none());
        assert!(store.live_grant(&grant.id).await.unwrap().is_none());
        let live = store
            .list_grants(&alice.id, PageSpec::default())
            .await
            .unwrap();
        assert_eq!(live.total, 0, "round {round}: {:?}", live.items);
        for r in &reqs {
            assert_eq!(
                live_consent(store, &r.token_hash, &alice.id, NOW).await,
                None
            );
        }
        for i in 0..15 {
            assert_eq!(
                store
                    .redeem_authorization_code(&format!("dc{round}-{i:02}"), NOW)
                    .await
                    .unwrap(),
                CodeRedemption::Invalid
            );
        }
    }
}

/// An approval decided on a client that changed after the caller read it: the store judges the
/// client as stored. A redirect URI removed meanwhile gets no code (the request is used up); a
/// scope removed meanwhile is not granted. Both under a covering grant (PostgreSQL's one
/// statement) and without one (the transaction).
async fn an_approval_judges_the_client_as_stored(store: &dyn Store) {
    let alice = user(store, "stale@x.example").await;
    let c = client(store, &alice).await;
    let grant = covering_grant(store, &alice, &c).await;
    let covered = consent("t-covered", &alice, &c, &["voice"]);
    let widening = consent("t-widening", &alice, &c, &["admin", "voice"]);
    for r in [&covered, &widening] {
        store.create_consent(r).await.unwrap();
    }
    // Read as the caller reads, before the client changes.
    let stale = [
        approval_of(&covered, "c-covered", NOW),
        approval("c-widening", NOW),
    ];
    let mut moved = c.settings.clone();
    moved.redirect_uris = vec!["https://app.example.com/elsewhere".into()];
    update(store, &c.org_id, &c.client_id, &moved, false, NOW)
        .await
        .unwrap();
    for (r, a) in [&covered, &widening].into_iter().zip(&stale) {
        let approved = store
            .approve_consent(&r.token_hash, &alice.id, a)
            .await
            .unwrap();
        assert!(approved.is_none(), "{}: {approved:?}", r.token_hash);
        // Used up, and no code was minted.
        assert_eq!(
            live_consent(store, &r.token_hash, &alice.id, NOW).await,
            None
        );
        assert_eq!(
            store
                .redeem_authorization_code(&a.code_hash, NOW)
                .await
                .unwrap(),
            CodeRedemption::Invalid
        );
    }
    // The redirect URI back, `admin` gone: a request for both gets `voice` alone, and the grant
    // is not widened.
    let mut narrowed = c.settings.clone();
    narrowed.scopes = vec!["voice".into()];
    let both = [
        consent("t-both-1", &alice, &c, &["admin", "voice"]),
        consent("t-both-2", &alice, &c, &["admin", "voice"]),
    ];
    for r in &both {
        store.create_consent(r).await.unwrap();
    }
    // Each with its event, which lists the scopes the caller expected to approve.
    let stale = [
        approval_of(&both[0], "c-both-1", NOW),
        approval("c-both-2", NOW),
    ]
    .map(|a| {
        let mut event = approval_event(&both[0], "stale");
        event.detail["scopes"] = serde_json::json!(["admin", "voice"]);
        Approval {
            event: Some(event),
            ..a
        }
    });
    update(store, &c.org_id, &c.client_id, &narrowed, false, NOW)
        .await
        .unwrap();
    for (r, a) in both.iter().zip(&stale) {
        let (consent, g, code) = store
            .approve_consent(&r.token_hash, &alice.id, a)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(consent.scopes, ["voice"]);
        assert_eq!(code.scopes, ["voice"]);
        assert_eq!(g.id, grant.id);
    }
    let live = store.live_grant(&grant.id).await.unwrap().unwrap();
    assert_eq!(
        live.scopes,
        ["admin", "voice"],
        "granted before the change, kept"
    );
    // The events say what was approved, not what the caller expected.
    let filter = SecurityEventFilter {
        kind: Some("consent.approved".into()),
        user_id: Some(alice.id.clone()),
        ..SecurityEventFilter::default()
    };
    let events = store.list_security_events(&filter, 100).await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    for e in events {
        assert_eq!(e.detail["scopes"], serde_json::json!(["voice"]), "{e:?}");
    }
}

/// A consent request names scopes the authorization judged against the client as it read it:
/// a first-party client's scope taken away since then (the edit has narrowed the pending
/// requests already) keeps the request from being stored, and taking a scope away narrows the
/// requests stored before. A third party's registered scope bounds nothing.
async fn a_consent_request_is_bounded_by_its_clients_scopes_as_they_are(store: &dyn Store) {
    let alice = user(store, "bounded@x.example").await;
    let c = client(store, &alice).await;
    let stored_before = consent("t-before", &alice, &c, &["admin", "voice"]);
    store.create_consent(&stored_before).await.unwrap();
    let edit: oauth_store::ClientEdit = Box::new(|current: &Client| {
        let mut s = current.settings.clone();
        s.scopes = vec!["voice".into()];
        Ok((s, false))
    });
    store
        .edit_client(&c.org_id, &c.client_id, edit, NOW)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let before = live_consent(store, "t-before", &alice.id, NOW)
        .await
        .unwrap();
    assert_eq!(before.scopes, ["voice"], "narrowed by the edit");
    // Judged before the edit, stored after it: not stored.
    store
        .create_consent(&consent("t-late", &alice, &c, &["admin", "voice"]))
        .await
        .unwrap();
    assert_eq!(live_consent(store, "t-late", &alice.id, NOW).await, None);
    store
        .create_consent(&consent("t-fits", &alice, &c, &["voice"]))
        .await
        .unwrap();
    assert!(live_consent(store, "t-fits", &alice.id, NOW)
        .await
        .is_some());
    // A third party may be asked for more than it registered.
    use oauth_core::ClientOrigin::Registration;
    let third = registered(
        store,
        "reg-bounded",
        Registration,
        &[GrantType::AuthorizationCode],
        NOW,
    )
    .await;
    store
        .create_consent(&consent("t-third", &alice, &third, &["voice", "messaging"]))
        .await
        .unwrap();
    let stored = live_consent(store, "t-third", &alice.id, NOW)
        .await
        .unwrap();
    assert_eq!(stored.scopes, ["voice", "messaging"]);
}

storage_tests! {
    a_removed_user_leaves_nothing_and_gets_no_consent_request,
    a_consent_request_is_bounded_by_its_clients_scopes_as_they_are,
    a_password_change_needs_its_session_and_stores_its_event,
    concurrent_sign_ins_never_keep_more_devices_than_the_cap,
    a_shared_client_gets_a_grant_per_installation,
    clients_are_read_together,
    unused_registered_clients_are_purged_and_nothing_else,
    live_grants_are_found_by_id_and_touched,
    purging_removes_only_what_can_no_longer_matter,
    sessions_expire_and_can_be_deleted,
    login_devices_name_their_user_while_used_recently,
    a_user_keeps_only_the_newest_login_devices,
    a_password_change_ends_the_other_sessions_of_its_user_only,
    sign_ins_racing_a_password_change_leave_nothing_behind,
    login_failures_count_within_the_window,
    login_attempts_are_reserved_up_to_the_limit,
    concurrent_login_attempts_never_pass_the_limit,
    consent_tokens_are_single_use_and_bound_to_their_user,
    concurrent_approvals_of_one_token_succeed_once,
    approvals_under_a_covering_grant_run_together,
    an_approval_stores_its_event_in_its_own_write,
    an_approval_trusts_the_stored_request_not_the_callers_copy,
    approvals_racing_a_revocation_leave_no_live_code_on_it,
    an_approval_judges_the_client_as_stored,
    approvals_widening_a_grant_being_revoked_never_fail,
    deleting_a_client_while_its_requests_are_approved_never_fails,
    approving_creates_then_widens_one_grant_and_mints_a_code,
    codes_redeem_once_and_not_after_expiry,
    revoking_a_grant_kills_its_codes_and_hides_it,
    grants_are_listed_per_user_in_pages,
    deleting_a_client_removes_its_grants_codes_and_consents,
}

/// PostgreSQL: the purge of unused clients leaves alone a client that a write under way holds
/// (here a transaction that has locked the client's key, as storing its first consent request
/// does, and then stores one), instead of waiting for it and deleting the client with what the
/// write just stored.
#[tokio::test]
async fn the_purge_leaves_a_client_whose_first_use_is_under_way() {
    use sqlx::Connection;
    let Some((url, _guard)) = support::postgres_url().await else {
        eprintln!("skipped: set {} to run it", support::POSTGRES_ENV);
        return;
    };
    let store = oauth_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let store = store.as_ref();
    let alice = user(store, "first-use@x.example").await;
    let code = [GrantType::AuthorizationCode];
    let old = NOW - 1000;
    use oauth_core::ClientOrigin::Registration;
    let busy = registered(store, "reg-busy", Registration, &code, old).await;
    registered(store, "reg-idle", Registration, &code, old).await;

    let mut writer = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut writer).await.unwrap();
    sqlx::query("SELECT client_id FROM oauth_clients WHERE client_id = $1 FOR KEY SHARE")
        .bind(&busy.client_id)
        .execute(&mut writer)
        .await
        .unwrap();
    // The purge does not wait for the writer: it takes the idle client alone.
    let purged = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.purge_unused_clients(NOW - 500, 100),
    )
    .await
    .expect("the purge waited for a write under way")
    .unwrap();
    assert_eq!(purged, 1);
    assert!(store.get_client("reg-idle").await.unwrap().is_none());
    // The writer stores the first consent request and commits: the client is in use now, and
    // a later purge keeps it and the request.
    let req = consent("first", &alice, &busy, &["voice"]);
    sqlx::query(
        "INSERT INTO consent_requests (token_hash, user_id, client_id, redirect_uri, scopes, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, '[\"voice\"]', $5, $6)",
    )
    .bind(&req.token_hash)
    .bind(&req.user_id)
    .bind(&req.client_id)
    .bind(&req.redirect_uri)
    .bind(req.created_at)
    .bind(req.expires_at)
    .execute(&mut writer)
    .await
    .unwrap();
    sqlx::query("COMMIT").execute(&mut writer).await.unwrap();
    assert_eq!(store.purge_unused_clients(NOW - 500, 100).await.unwrap(), 0);
    assert!(store.get_client("reg-busy").await.unwrap().is_some());
    assert!(store
        .get_consent("first", &alice.id, NOW)
        .await
        .unwrap()
        .is_some());
    writer.close().await.unwrap();
    store.close().await;
}

/// The password change of `user_id` from `old` to `new` by the session `keep` (and the device
/// `device`), swapping that session for `replacement` if given; no event.
fn change(
    user_id: &str,
    old: &str,
    new: &str,
    keep: &str,
    device: &str,
    replacement: Option<&NewSession>,
) -> PasswordChange {
    PasswordChange {
        user_id: user_id.to_owned(),
        old_hash: old.to_owned(),
        new_hash: new.to_owned(),
        keep_session: keep.to_owned(),
        keep_device: device.to_owned(),
        replacement: replacement.cloned(),
        event: None,
        forget_failures: None,
    }
}
