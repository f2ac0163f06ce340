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
