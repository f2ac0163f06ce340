//! Storage of the audit trail: recording security events, listing them newest first with
//! filters and a cursor, and purging old ones. Each test runs on SQLite, and on PostgreSQL when
//! `OAUTH_TEST_POSTGRES_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use oauth_store::{NewSecurityEvent, SecurityEventFilter, Store};
use serde_json::json;

const NOW: i64 = 1_800_000_000;

fn event(kind: &str, at: i64) -> NewSecurityEvent {
    NewSecurityEvent {
        occurred_at: at,
        kind: kind.to_owned(),
        org_id: None,
        user_id: None,
        client_id: None,
        grant_id: None,
        ip: None,
        detail: json!({}),
    }
}

async fn list(store: &dyn Store, filter: SecurityEventFilter, limit: i64) -> Vec<(i64, String)> {
    store
        .list_security_events(&filter, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.kind))
        .collect()
}

async fn events_round_trip_with_every_field(store: &dyn Store) {
    let full = NewSecurityEvent {
        occurred_at: NOW,
        kind: "login.failed".to_owned(),
        org_id: Some("org-1".to_owned()),
        user_id: Some("user-1".to_owned()),
        client_id: Some("client-1".to_owned()),
        grant_id: Some("grant-1".to_owned()),
        ip: Some("192.0.2.7".to_owned()),
        detail: json!({"endpoint": "/login", "nested": {"n": 1}}),
    };
    let id = store.record_security_event(&full).await.unwrap();
    let bare_id = store
        .record_security_event(&event("signing_key.rotated", NOW + 1))
        .await
        .unwrap();
    assert!(bare_id > id, "ids increase");

    let all = store
        .list_security_events(&SecurityEventFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let got = &all[1];
    assert_eq!(got.id, id);
    assert_eq!(got.occurred_at, NOW);
    assert_eq!(got.kind, "login.failed");
    assert_eq!(got.org_id.as_deref(), Some("org-1"));
    assert_eq!(got.user_id.as_deref(), Some("user-1"));
    assert_eq!(got.client_id.as_deref(), Some("client-1"));
    assert_eq!(got.grant_id.as_deref(), Some("grant-1"));
    assert_eq!(got.ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(
        got.detail,
        json!({"endpoint": "/login", "nested": {"n": 1}})
    );
    let bare = &all[0];
    assert_eq!(bare.id, bare_id);
    assert_eq!((bare.user_id.as_deref(), bare.ip.as_deref()), (None, None));
    assert_eq!(bare.detail, json!({}));
}

async fn listing_filters_and_pages_newest_first(store: &dyn Store) {
    let mut ids = Vec::new();
    for (i, kind) in [
        "login.succeeded",
        "login.failed",
        "login.failed",
        "consent.approved",
    ]
    .iter()
    .enumerate()
    {
        let mut e = event(kind, NOW + i as i64 * 10);
        e.user_id = Some(if i % 2 == 0 { "alice" } else { "bob" }.to_owned());
        e.client_id = (i >= 2).then(|| "client-a".to_owned());
        e.org_id = Some("org-a".to_owned());
        ids.push(store.record_security_event(&e).await.unwrap());
    }
    let mut other = event("login.failed", NOW + 100);
    other.org_id = Some("org-b".to_owned());
    let other_id = store.record_security_event(&other).await.unwrap();

    // Everything, newest first.
    let all = list(store, SecurityEventFilter::default(), 100).await;
    let all_ids: Vec<i64> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(all_ids, vec![other_id, ids[3], ids[2], ids[1], ids[0]]);

    let by_kind = list(
        store,
        SecurityEventFilter {
            kind: Some("login.failed".into()),
            ..Default::default()
        },
        100,
    )
    .await;
    assert_eq!(
        by_kind.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![other_id, ids[2], ids[1]]
    );

    let alice_in_org_a = list(
        store,
        SecurityEventFilter {
            user_id: Some("alice".into()),
            org_id: Some("org-a".into()),
            ..Default::default()
        },
        100,
    )
    .await;
    assert_eq!(
        alice_in_org_a,
        vec![
            (ids[2], "login.failed".to_owned()),
            (ids[0], "login.succeeded".to_owned())
        ]
    );

    let client_since = list(
        store,
        SecurityEventFilter {
            client_id: Some("client-a".into()),
            since: Some(NOW + 30),
            ..Default::default()
        },
        100,
    )
    .await;
    assert_eq!(client_since, vec![(ids[3], "consent.approved".to_owned())]);

    // Pages of two, following the cursor, with a filter: no event twice, none missed.
    let filter = SecurityEventFilter {
        org_id: Some("org-a".into()),
        ..Default::default()
    };
    let first = list(store, filter.clone(), 2).await;
    assert_eq!(
        first.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![ids[3], ids[2]]
    );
    let second = list(
        store,
        SecurityEventFilter {
            before_id: Some(first[1].0),
            ..filter.clone()
        },
        2,
    )
    .await;
    assert_eq!(
        second.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![ids[1], ids[0]]
    );
    let third = list(
        store,
        SecurityEventFilter {
            before_id: Some(second[1].0),
            ..filter
        },
        2,
    )
    .await;
    assert!(third.is_empty());

    // Filter values are bound, never spliced into the SQL.
    let hostile = list(
        store,
        SecurityEventFilter {
            kind: Some("x' OR '1'='1".into()),
            user_id: Some("\"; DROP TABLE security_events; --".into()),
            ..Default::default()
        },
        100,
    )
    .await;
    assert!(hostile.is_empty());
    assert_eq!(
        list(store, SecurityEventFilter::default(), 100).await.len(),
        5
    );
}

async fn purge_deletes_only_old_events_in_batches(store: &dyn Store) {
    for i in 0..5 {
        store
            .record_security_event(&event("login.failed", NOW - 1000 + i))
            .await
            .unwrap();
    }
    let recent = store
        .record_security_event(&event("login.failed", NOW))
        .await
        .unwrap();
    assert_eq!(store.purge_security_events(NOW, 3).await.unwrap(), 3);
    assert_eq!(store.purge_security_events(NOW, 3).await.unwrap(), 2);
    assert_eq!(store.purge_security_events(NOW, 3).await.unwrap(), 0);
    let left = list(store, SecurityEventFilter::default(), 100).await;
    assert_eq!(left, vec![(recent, "login.failed".to_owned())]);
}

storage_tests!(
    events_round_trip_with_every_field,
    listing_filters_and_pages_newest_first,
    purge_deletes_only_old_events_in_batches,
);
