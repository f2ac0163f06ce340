//! The storage contract: one suite, run against SQLite always and against PostgreSQL when
//! `OAUTH_TEST_POSTGRES_URL` names a server whose user may create databases. Each test gets a
//! fresh database (a temporary SQLite file, or a new PostgreSQL database dropped afterwards).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::update;

use oauth_core::{Client, ClientDraft, PageSpec, ScopeCatalogue};
use oauth_store::{ClientFilter, NewApiKey, NewUser, Store, StoreError};
use oauth_wire::{ClientType, CreateOAuthClient, GrantType};

fn new_user(email: &str, org: &str, now: i64) -> NewUser {
    NewUser {
        user_id: uuid::Uuid::new_v4().to_string(),
        email: email.to_owned(),
        password_hash: "$argon2id$placeholder".to_owned(),
        org_name: org.to_owned(),
        new_org_id: uuid::Uuid::new_v4().to_string(),
        join_existing_org: true,
        now,
    }
}

fn new_key(user_id: &str, hash: &str, now: i64) -> NewApiKey {
    NewApiKey {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.to_owned(),
        name: Some("k".into()),
        key_hash: hash.to_owned(),
        now,
    }
}

fn client(
    org: &str,
    user: &str,
    name: &str,
    kind: ClientType,
    grants: &[GrantType],
    at: i64,
) -> Client {
    let req = CreateOAuthClient::new(name, kind.clone(), grants.to_vec(), ["admin"])
        .redirect_uris(["https://app.example.com/cb"]);
    let settings = ClientDraft::from_create(req, &ScopeCatalogue::default()).expect("valid");
    Client {
        client_id: uuid::Uuid::new_v4().to_string(),
        org_id: org.to_owned(),
        user_id: user.to_owned(),
        origin: oauth_core::ClientOrigin::Management,
        secret_hash: (kind == ClientType::Confidential).then(|| "ab".repeat(32)),
        verified: false,
        created_at: at,
        updated_at: at,
        settings,
    }
}

async fn migrations_are_idempotent(store: &dyn Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

async fn users_join_or_create_organizations(store: &dyn Store) {
    let (a, org_a) = store
        .create_user(new_user("a@x.example", "acme", 100))
        .await
        .unwrap();
    let (b, org_b) = store
        .create_user(new_user("b@x.example", "acme", 200))
        .await
        .unwrap();
    let (_, org_c) = store
        .create_user(new_user("c@x.example", "other", 300))
        .await
        .unwrap();
    assert_eq!(
        org_a.id, org_b.id,
        "the same name joins the same organization"
    );
    assert_ne!(org_a.id, org_c.id);
    assert_eq!(a.org_id, org_a.id);

    let dup = store
        .create_user(new_user("a@x.example", "elsewhere", 400))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(
        store
            .find_organization_by_name("elsewhere")
            .await
            .unwrap()
            .is_none(),
        "a failed creation leaves no organization behind"
    );

    assert_eq!(
        store.find_user_by_email("b@x.example").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(store.get_user(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_user("nope").await.unwrap(), None);
    assert_eq!(a.org_id, org_a.id);
    assert_eq!(
        store.find_organization_by_name(&org_c.name).await.unwrap(),
        Some(org_c)
    );
}

async fn bootstrap_happens_once(store: &dyn Store) {
    let u = new_user("admin@localhost", "default", 10);
    let k = new_key(&u.user_id, &"11".repeat(32), 10);
    assert!(store.bootstrap_admin(u, k).await.unwrap());
    let u2 = new_user("admin2@localhost", "default2", 20);
    let k2 = new_key(&u2.user_id, &"22".repeat(32), 20);
    assert!(!store.bootstrap_admin(u2, k2).await.unwrap());
    assert!(store
        .find_user_by_email("admin2@localhost")
        .await
        .unwrap()
        .is_none());
    let (_, user) = store
        .authenticate_api_key(&"11".repeat(32), 30)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, "admin@localhost");
}

async fn bootstrap_skips_a_database_with_users(store: &dyn Store) {
    store
        .create_user(new_user("someone@x.example", "x", 1))
        .await
        .unwrap();
    let u = new_user("admin@localhost", "default", 10);
    let k = new_key(&u.user_id, &"11".repeat(32), 10);
    assert!(!store.bootstrap_admin(u, k).await.unwrap());
    assert!(store
        .find_user_by_email("admin@localhost")
        .await
        .unwrap()
        .is_none());
}

async fn api_keys_authenticate_until_revoked(store: &dyn Store) {
    let (user, _) = store
        .create_user(new_user("k@x.example", "k", 100))
        .await
        .unwrap();
    let hash = "cd".repeat(32);
    let key = store
        .create_api_key(new_key(&user.id, &hash, 100))
        .await
        .unwrap();
    assert_eq!(key.last_used_at, None);

    let (k, u) = store
        .authenticate_api_key(&hash, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (k.id.as_str(), u.id.as_str()),
        (key.id.as_str(), user.id.as_str())
    );
    // The first use is recorded; a use within the next minute is not written again.
    store
        .authenticate_api_key(&hash, 1_030)
        .await
        .unwrap()
        .unwrap();
    let (k, _) = store
        .authenticate_api_key(&hash, 1_031)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(k.last_used_at, Some(1_000));
    store
        .authenticate_api_key(&hash, 1_100)
        .await
        .unwrap()
        .unwrap();
    let (k, _) = store
        .authenticate_api_key(&hash, 1_101)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(k.last_used_at, Some(1_100));

    assert!(store
        .authenticate_api_key(&"ef".repeat(32), 1_200)
        .await
        .unwrap()
        .is_none());
    assert!(store.revoke_api_key(&key.id, 1_300).await.unwrap());
    assert!(
        !store.revoke_api_key(&key.id, 1_301).await.unwrap(),
        "already revoked"
    );
    assert!(!store.revoke_api_key("unknown", 1_301).await.unwrap());
    assert!(store
        .authenticate_api_key(&hash, 1_400)
        .await
        .unwrap()
        .is_none());
}

async fn clients_round_trip_and_stay_in_their_organization(store: &dyn Store) {
    let (user, org) = store
        .create_user(new_user("c@x.example", "c", 1))
        .await
        .unwrap();
    let (_, other) = store
        .create_user(new_user("d@x.example", "d", 1))
        .await
        .unwrap();
    let c = client(
        &org.id,
        &user.id,
        "App",
        ClientType::Confidential,
        &[GrantType::AuthorizationCode],
        50,
    );
    store.insert_client(&c).await.unwrap();
    assert_eq!(
        store.get_client(&c.client_id).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        store.get_org_client(&org.id, &c.client_id).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        store.get_org_client(&other.id, &c.client_id).await.unwrap(),
        None
    );

    let dup = store.insert_client(&c).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    let mut changed = c.settings.clone();
    changed.name = "Renamed".into();
    changed.logo_uri = Some("https://app.example.com/logo.png".into());
    assert_eq!(
        update(store, &other.id, &c.client_id, &changed, false, 60).await,
        None
    );
    let updated = update(store, &org.id, &c.client_id, &changed, false, 60)
        .await
        .unwrap();
    assert_eq!(updated.settings, changed);
    assert_eq!((updated.created_at, updated.updated_at), (50, 60));
    assert_eq!(
        updated.secret_hash, c.secret_hash,
        "an update keeps the secret"
    );

    // The client as the mark was set on it: what the mark vouches for.
    let marked = store
        .set_client_verified(&c.client_id, true, 70)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(marked.client_id, c.client_id);
    assert!(marked.verified);
    assert_eq!(marked.updated_at, 70);
    assert!(
        store
            .get_client(&c.client_id)
            .await
            .unwrap()
            .unwrap()
            .verified
    );
    assert!(store
        .set_client_verified("unknown", true, 70)
        .await
        .unwrap()
        .is_none());
    // An update that keeps the mark, then one that clears it.
    let kept = update(store, &org.id, &c.client_id, &changed, false, 71)
        .await
        .unwrap();
    assert!(kept.verified);
    let cleared = update(store, &org.id, &c.client_id, &changed, true, 72)
        .await
        .unwrap();
    assert!(!cleared.verified);
    assert_eq!(cleared.origin, oauth_core::ClientOrigin::Management);

    assert!(!store.delete_client(&other.id, &c.client_id).await.unwrap());
    assert!(store.get_client(&c.client_id).await.unwrap().is_some());
    assert!(store.delete_client(&org.id, &c.client_id).await.unwrap());
    assert!(!store.delete_client(&org.id, &c.client_id).await.unwrap());
    assert_eq!(store.get_client(&c.client_id).await.unwrap(), None);
}

async fn client_lists_filter_and_page(store: &dyn Store) {
    let (user, org) = store
        .create_user(new_user("l@x.example", "l", 1))
        .await
        .unwrap();
    let (other_user, other) = store
        .create_user(new_user("m@x.example", "m", 1))
        .await
        .unwrap();
    use ClientType::*;
    use GrantType::*;
    let specs: [(&str, ClientType, &[GrantType]); 5] = [
        ("Alpha", Confidential, &[ClientCredentials]),
        (
            "alphabet soup",
            Confidential,
            &[AuthorizationCode, RefreshToken],
        ),
        ("Beta", Public, &[AuthorizationCode]),
        (
            "50% off_sale's",
            Confidential,
            &[ClientCredentials, AuthorizationCode],
        ),
        ("Gamma", Public, &[AuthorizationCode, RefreshToken]),
    ];
    let mut ids = Vec::new();
    for (i, (name, kind, grants)) in specs.iter().enumerate() {
        let c = client(
            &org.id,
            &user.id,
            name,
            kind.clone(),
            grants,
            100 + i as i64,
        );
        store.insert_client(&c).await.unwrap();
        ids.push(c.client_id);
    }
    let foreign = client(
        &other.id,
        &other_user.id,
        "Alpha",
        Confidential,
        &[ClientCredentials],
        1,
    );
    store.insert_client(&foreign).await.unwrap();
    store.set_client_verified(&ids[2], true, 200).await.unwrap();

    let page = |n, s| PageSpec { number: n, size: s };

    assert_eq!(
        names(store, &org.id, ClientFilter::default()).await.len(),
        5,
        "only this organization's"
    );
    assert_eq!(
        names(
            store,
            &org.id,
            ClientFilter {
                client_type: Some(Public),
                ..Default::default()
            }
        )
        .await,
        vec!["Beta", "Gamma"]
    );
    assert_eq!(
        names(
            store,
            &org.id,
            ClientFilter {
                verified: Some(true),
                ..Default::default()
            }
        )
        .await,
        vec!["Beta"]
    );
    assert_eq!(
        names(
            store,
            &org.id,
            ClientFilter {
                verified: Some(false),
                ..Default::default()
            }
        )
        .await
        .len(),
        4
    );
    assert_eq!(
        names(
            store,
            &org.id,
            ClientFilter {
                grant_type: Some(ClientCredentials),
                ..Default::default()
            }
        )
        .await,
        vec!["Alpha", "50% off_sale's"]
    );
    assert_eq!(
        names(
            store,
            &org.id,
            ClientFilter {
                grant_type: Some(RefreshToken),
                ..Default::default()
            }
        )
        .await,
        vec!["alphabet soup", "Gamma"]
    );
    assert_eq!(
        names(
            store,
            &org.id,
            ClientFilter {
                name: Some("Alpha".into()),
                ..Default::default()
            }
        )
        .await,
        vec!["Alpha"]
    );
    assert_eq!(
        names(
            store,
            &org.id,
            ClientFilter {
                name_contains: Some("ALPHA".into()),
                ..Default::default()
            }
        )
        .await,
        vec!["Alpha", "alphabet soup"]
    );
    // SQL metacharacters are data, not syntax or wildcards.
    assert_eq!(
        names(
            store,
            &org.id,
            ClientFilter {
                name_contains: Some("%".into()),
                ..Default::default()
            }
        )
        .await,
        vec!["50% off_sale's"]
    );
    assert!(names(
        store,
        &org.id,
        ClientFilter {
            name_contains: Some("a_p".into()),
            ..Default::default()
        }
    )
    .await
    .is_empty());
    assert!(names(
        store,
        &org.id,
        ClientFilter {
            name: Some("' OR '1'='1".into()),
            ..Default::default()
        }
    )
    .await
    .is_empty());
    assert_eq!(
        names(
            store,
            &org.id,
            ClientFilter {
                client_id: Some(ids[4].clone()),
                ..Default::default()
            }
        )
        .await,
        vec!["Gamma"]
    );
    assert!(names(
        store,
        &org.id,
        ClientFilter {
            client_id: Some(foreign.client_id.clone()),
            ..Default::default()
        }
    )
    .await
    .is_empty());
    assert_eq!(
        names(
            store,
            &org.id,
            ClientFilter {
                client_type: Some(Confidential),
                grant_type: Some(AuthorizationCode),
                name_contains: Some("a".into()),
                ..Default::default()
            }
        )
        .await,
        vec!["alphabet soup", "50% off_sale's"]
    );

    // Pages: oldest first, stable, past the end empty with the right total.
    let mut seen = Vec::new();
    for n in 1..=3 {
        let p = store
            .list_clients(&org.id, &ClientFilter::default(), page(n, 2))
            .await
            .unwrap();
        assert_eq!(p.total, 5);
        seen.extend(p.items.into_iter().map(|c| c.client_id));
    }
    assert_eq!(seen, ids);
    let past = store
        .list_clients(&org.id, &ClientFilter::default(), page(4, 2))
        .await
        .unwrap();
    assert!(past.items.is_empty());
    assert_eq!(past.total, 5);
}

/// Names of `org_id`'s clients that pass `f`, all on one page.
/// `filter[name][contains]` folds the case of ASCII letters only, on both engines alike
/// (PostgreSQL's `lower` would fold every letter, SQLite's folds ASCII ones only): one filter
/// finds the same clients whichever engine runs.
async fn name_filters_fold_ascii_letters_only(store: &dyn Store) {
    let (user, org) = store
        .create_user(new_user("u@x.example", "u", 1))
        .await
        .unwrap();
    for (i, name) in ["F-ünïcode", "F-Ünïcode", "F-İstanbul", "MIXED Case"]
        .iter()
        .enumerate()
    {
        let c = client(
            &org.id,
            &user.id,
            name,
            ClientType::Public,
            &[GrantType::AuthorizationCode],
            100 + i as i64,
        );
        store.insert_client(&c).await.unwrap();
    }
    let contains = |needle: &str| {
        names(
            store,
            &org.id,
            ClientFilter {
                name_contains: Some(needle.into()),
                ..Default::default()
            },
        )
    };
    assert_eq!(contains("ü").await, vec!["F-ünïcode"]);
    assert_eq!(contains("Ü").await, vec!["F-Ünïcode"]);
    assert!(contains("istanbul").await.is_empty());
    assert_eq!(contains("İSTANBUL").await, vec!["F-İstanbul"]);
    assert_eq!(contains("f-").await.len(), 3);
    assert_eq!(contains("mixed CASE").await, vec!["MIXED Case"]);
}

async fn names(store: &dyn Store, org_id: &str, f: ClientFilter) -> Vec<String> {
    let p = store
        .list_clients(
            org_id,
            &f,
            PageSpec {
                number: 1,
                size: 100,
            },
        )
        .await
        .unwrap();
    assert_eq!(p.total as usize, p.items.len());
    p.items.into_iter().map(|c| c.settings.name).collect()
}

/// An edit that appends `mark` to the client's name, clearing the verified mark.
fn append_to_name(mark: &'static str) -> oauth_store::ClientEdit {
    Box::new(move |c: &Client| {
        let mut s = c.settings.clone();
        s.name.push_str(mark);
        Ok((s, true))
    })
}

async fn client_edits_apply_to_the_client_as_stored(store: &dyn Store) {
    let (user, org) = store
        .create_user(new_user("e@x.example", "e", 1))
        .await
        .unwrap();
    let (_, other) = store
        .create_user(new_user("f@x.example", "f", 1))
        .await
        .unwrap();
    let c = client(
        &org.id,
        &user.id,
        "App",
        ClientType::Confidential,
        &[GrantType::AuthorizationCode],
        50,
    );
    store.insert_client(&c).await.unwrap();
    // Another organization's client, an unknown one: nothing.
    for (org_id, id) in [
        (other.id.as_str(), c.client_id.as_str()),
        (org.id.as_str(), "unknown"),
    ] {
        let r = store.edit_client(org_id, id, append_to_name("!"), 60).await;
        assert!(r.unwrap().is_none());
    }
    // A refused edit changes nothing.
    let refuse: oauth_store::ClientEdit = Box::new(|_: &Client| {
        Err(oauth_core::validation::ValidationErrors(vec![
            oauth_core::FieldError::new("/name", "invalid", "refused"),
        ]))
    });
    let refused = store
        .edit_client(&org.id, &c.client_id, refuse, 60)
        .await
        .unwrap()
        .unwrap();
    assert!(refused.is_err());
    assert_eq!(
        store.get_client(&c.client_id).await.unwrap(),
        Some(c.clone())
    );
    // Thirty edits at once, each appending to the name it finds: none is lost.
    assert!(store
        .set_client_verified(&c.client_id, true, 55)
        .await
        .unwrap()
        .is_some());
    let edits = futures_util::future::join_all(
        (0..30).map(|_| store.edit_client(&org.id, &c.client_id, append_to_name("+"), 70)),
    )
    .await;
    let mut cleared = 0;
    for r in edits {
        let edited = r.unwrap().unwrap().unwrap();
        assert!(!edited.client.verified);
        cleared += usize::from(edited.verified_cleared);
    }
    assert_eq!(cleared, 1, "only the first edit found the mark to clear");
    let stored = store.get_client(&c.client_id).await.unwrap().unwrap();
    assert_eq!(stored.settings.name, format!("App{}", "+".repeat(30)));
    assert_eq!(stored.updated_at, 70);
    assert_eq!(stored.secret_hash, c.secret_hash);
}

/// A user meant to get an organization of their own never lands in one of the same name made
/// before; users joining one new organization at once all land in it, none refused.
async fn an_own_organization_is_new_and_a_joined_one_is_shared(store: &dyn Store) {
    let (_, squatted) = store
        .create_user(new_user("mallory@x.example", "carol@x.example", 100))
        .await
        .unwrap();
    let own = NewUser {
        join_existing_org: false,
        ..new_user("carol@x.example", "carol@x.example", 200)
    };
    let refused = store.create_user(own.clone()).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.find_user_by_email("carol@x.example").await.unwrap(),
        None
    );
    let (_, fresh) = store
        .create_user(NewUser {
            org_name: "carol-own".into(),
            ..own
        })
        .await
        .unwrap();
    assert_ne!(fresh.id, squatted.id);
    assert_eq!(fresh.name, "carol-own");

    let joins =
        (0..30).map(|i| store.create_user(new_user(&format!("u{i}@x.example"), "new-org", 300)));
    let orgs: Vec<String> = futures_util::future::join_all(joins)
        .await
        .into_iter()
        .map(|r| r.unwrap().1.id)
        .collect();
    assert!(orgs.iter().all(|o| *o == orgs[0]), "{orgs:?}");
    let found = store.find_organization_by_name("new-org").await.unwrap();
    assert_eq!(found.map(|o| o.id).as_ref(), Some(&orgs[0]));
}

storage_tests! {
    an_own_organization_is_new_and_a_joined_one_is_shared,
    client_edits_apply_to_the_client_as_stored,
    migrations_are_idempotent,
    users_join_or_create_organizations,
    bootstrap_happens_once,
    bootstrap_skips_a_database_with_users,
    api_keys_authenticate_until_revoked,
    clients_round_trip_and_stay_in_their_organization,
    client_lists_filter_and_page,
    name_filters_fold_ascii_letters_only,
}
