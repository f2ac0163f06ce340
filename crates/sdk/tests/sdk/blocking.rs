//! The blocking client (feature `blocking`) against the real server, from a thread that runs no
//! async runtime (the server runs on its own runtime).

use std::collections::BTreeSet;

use telnyx_oauth::{blocking, ClientType, Error, ListOAuthClientsParams, UpdateOAuthClient};

use crate::server::{new_client, TestServer};

#[test]
fn the_blocking_client_creates_lists_updates_and_deletes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestServer::spawn());
    let client = blocking::Client::from_async(
        telnyx_oauth::Client::builder()
            .api_key(&app.admin_key)
            .base_url(&app.url)
            .build()
            .unwrap(),
    )
    .unwrap();

    let created = client
        .oauth_clients()
        .create(&new_client("Blocking one", ClientType::Confidential))
        .with_raw_response()
        .unwrap();
    assert_eq!(created.status, 201);
    let id = created.data.client_id.clone();
    assert!(created.data.client_secret.is_some());
    client
        .oauth_clients()
        .create(&new_client("Blocking two", ClientType::Confidential))
        .send()
        .unwrap();

    let found = client.oauth_clients().retrieve(&id).send().unwrap();
    assert_eq!(found.name, "Blocking one");
    assert_eq!(found.created_at, created.data.created_at);

    let page = client
        .oauth_clients()
        .list(&ListOAuthClientsParams::new().page_size(1))
        .send()
        .unwrap();
    assert_eq!(page.meta.total_results, 2);
    let second = client.next_page(&page).unwrap().unwrap();
    assert_eq!(second.meta.page_number, 2);
    let names: BTreeSet<String> = client
        .oauth_clients()
        .list_auto(&ListOAuthClientsParams::new().page_size(1))
        .map(|c| c.unwrap().name)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["Blocking one".to_owned(), "Blocking two".to_owned()])
    );

    let renamed = client
        .oauth_clients()
        .update(&id, &UpdateOAuthClient::new().name("Renamed"))
        .send()
        .unwrap();
    assert_eq!(renamed.name, "Renamed");
    client.oauth_clients().delete(&id).send().unwrap();
    let err = client.oauth_clients().retrieve(&id).send().unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");

    // The server's state agrees: one client left.
    let left = client
        .oauth_clients()
        .list(&Default::default())
        .send()
        .unwrap();
    assert_eq!(left.meta.total_results, 1);
    assert_eq!(left.data[0].name, "Blocking two");

    // A bad key is the same error class as with the async client.
    let stranger = client.with_options(
        telnyx_oauth::RequestOptions::new().header("authorization", "Bearer KEYnope"),
    );
    let err = stranger
        .oauth_clients()
        .list(&Default::default())
        .send()
        .unwrap_err();
    assert!(matches!(err, Error::Authentication(_)), "{err:?}");
    drop(client);
    drop(stranger);
}

/// A blocking client over an async one shares its connection pool: a connection the blocking
/// client opened and left idle serves the async client's next calls at once, while no blocking
/// call runs.
#[test]
fn the_async_client_uses_a_connection_the_blocking_one_opened() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestServer::spawn());
    let client = telnyx_oauth::Client::builder()
        .api_key(&app.admin_key)
        .base_url(&app.url)
        .timeout(std::time::Duration::from_secs(5))
        .max_retries(0)
        .build()
        .unwrap();
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let shared = client.clone();
    // The pool is empty: the blocking client's call opens its connection.
    let thread = std::thread::spawn(move || {
        let blocking = blocking::Client::from_async(shared).unwrap();
        let created = blocking
            .oauth_clients()
            .create(&new_client("Shared pool", ClientType::Confidential))
            .send()
            .unwrap();
        opened_tx.send(created.client_id).unwrap();
        // Idle, not inside a call, until the async calls below have their answers.
        done_rx.recv().unwrap();
    });
    let id = opened_rx.recv().unwrap();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let found = runtime
            .block_on(client.oauth_clients().retrieve(&id).send())
            .unwrap();
        assert_eq!(found.name, "Shared pool");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    done_tx.send(()).unwrap();
    thread.join().unwrap();
}
