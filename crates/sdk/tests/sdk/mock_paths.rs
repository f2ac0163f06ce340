//! Path parameters: an id that would change the request's path is refused before anything is
//! sent; anything else is percent-encoded into exactly one segment.

use telnyx_oauth::{Error, UpdateOAuthClient};

use crate::mock::{client_json, grant_json, Mock, Reply};

const BAD: [&str; 7] = ["", ".", "..", "a/b", "../oauth_grants", "/", "x\\y"];

fn assert_refused<T: std::fmt::Debug>(result: Result<T, Error>, id: &str) {
    match result {
        Err(Error::InvalidParameter(message)) => {
            assert!(message.contains("no request was sent"), "{message}");
        }
        other => panic!("{id:?}: {other:?}"),
    }
}

#[tokio::test]
async fn ids_that_would_change_the_path_are_refused_without_a_request() {
    let mock = Mock::start(|_, _| Reply::json(200, serde_json::json!({"data": {}}))).await;
    let client = mock.client().max_retries(0).build().unwrap();
    for id in BAD {
        assert_refused(client.oauth_clients().retrieve(id).await, id);
        assert_refused(
            client
                .oauth_clients()
                .update(id, &UpdateOAuthClient::new().name("x"))
                .await,
            id,
        );
        assert_refused(client.oauth_clients().delete(id).await, id);
        assert_refused(client.oauth_grants().retrieve(id).await, id);
        assert_refused(client.oauth_grants().delete(id).await, id);
        assert_refused(client.oauth().retrieve(id).await, id);
    }
    assert!(
        mock.requests().is_empty(),
        "nothing reaches the server: {:?}",
        mock.requests()
    );
}

#[tokio::test]
async fn other_ids_are_one_percent_encoded_segment() {
    let mock = Mock::start(|req, _| {
        if req.path.starts_with("/oauth_grants/") {
            Reply::json(200, serde_json::json!({"data": grant_json("g")}))
        } else {
            Reply::json(200, serde_json::json!({"data": client_json("c", "n")}))
        }
    })
    .await;
    let client = mock.client().build().unwrap();
    client.oauth_clients().retrieve("a b?c#d%2F").await.unwrap();
    client.oauth_clients().retrieve("...").await.unwrap();
    client.oauth_grants().retrieve(".hidden").await.unwrap();
    let paths: Vec<String> = mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/oauth_clients/a%20b%3Fc%23d%252F",
            "/oauth_clients/...",
            "/oauth_grants/.hidden"
        ]
    );
}
