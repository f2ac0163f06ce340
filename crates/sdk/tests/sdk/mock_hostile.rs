//! A hostile or broken server: what it answers never panics the client, never makes it buffer
//! without bound or loop forever, and never passes for success when the request was not done.

use futures_util::StreamExt;
use serde_json::json;
use telnyx_oauth::Error;

use crate::mock::{client_json, Mock, Reply};

#[tokio::test]
async fn a_huge_expires_in_neither_panics_nor_keeps_the_token_forever() {
    let mock = Mock::start(|req, _| {
        if req.path.ends_with("/oauth/token") {
            return Reply::json(
                200,
                json!({"access_token": "tok", "token_type": "Bearer", "expires_in": i64::MAX}),
            );
        }
        Reply::json(200, json!({"data": client_json("c1", "one")}))
    })
    .await;
    let client = mock
        .client()
        .client_credentials("my-client", "secret")
        .build()
        .unwrap();
    let found = client.oauth_clients().retrieve("c1").await.unwrap();
    assert_eq!(found.client_id, "c1");
    // Cached: one token request for two calls.
    client.oauth_clients().retrieve("c1").await.unwrap();
    let tokens = mock
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/oauth/token"))
        .count();
    assert_eq!(tokens, 1);
}

#[tokio::test]
async fn a_redirect_is_an_error_where_the_call_does_not_ask_for_one() {
    let mock = Mock::scripted(vec![
        Reply::empty(301).header("location", "https://elsewhere.example/oauth_clients/c1")
    ])
    .await;
    let client = mock.client().max_retries(0).build().unwrap();
    let deleted = client.oauth_clients().delete("c1").await;
    match deleted {
        Err(Error::Status(api)) => assert_eq!(api.status.as_u16(), 301),
        other => panic!("a deletion answered 301 is not done: {other:?}"),
    }
    let revoked = client
        .oauth()
        .revoke(&telnyx_oauth::RevokeRequest::new("tok"))
        .await;
    assert!(
        matches!(&revoked, Err(Error::Status(a)) if a.status.as_u16() == 301),
        "{revoked:?}"
    );
    // Nothing was followed.
    assert!(mock
        .requests()
        .iter()
        .all(|r| !r.path.contains("elsewhere")));
}

#[tokio::test]
async fn an_answer_over_the_limit_fails_without_being_read() {
    let big = "x".repeat(telnyx_oauth::MAX_RESPONSE_BYTES + 1);
    let mock = Mock::start(move |_, _| Reply::json(200, json!({"data": big.clone()}))).await;
    let client = mock.client().max_retries(0).build().unwrap();
    let r = client.oauth_clients().retrieve("c1").await;
    match r {
        Err(Error::Decode { status, source }) => {
            assert_eq!(status.as_u16(), 200);
            assert!(source.to_string().contains("larger than"), "{source}");
        }
        other => panic!("expected a decode error: {other:?}"),
    }
}

#[tokio::test]
async fn an_error_body_is_kept_only_up_to_its_limit() {
    let big = "e".repeat(1024 * 1024);
    let mock = Mock::start(move |_, _| Reply::json(400, json!({"error": big.clone()}))).await;
    let client = mock.client().max_retries(0).build().unwrap();
    let err = client.oauth_clients().retrieve("c1").await.unwrap_err();
    let api = err.api_error().expect("a status error");
    assert_eq!(api.status.as_u16(), 400);
    assert_eq!(api.raw_body.len(), telnyx_oauth::MAX_ERROR_BODY_BYTES);
}

#[tokio::test]
async fn a_server_that_ignores_the_page_number_ends_the_walk() {
    let mock = Mock::start(|_, _| {
        Reply::json(
            200,
            json!({"data": [client_json("c1", "one")], "meta": {"page_number": 1, "page_size": 1, "total_pages": 1_000_000_000u64, "total_results": 1_000_000_000u64}}),
        )
    })
    .await;
    let client = mock.client().build().unwrap();
    let items: Vec<_> = client
        .oauth_clients()
        .list_auto(&Default::default())
        .collect()
        .await;
    // The first page, then the second asked for and answered as page 1 again: the end.
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(Result::is_ok));
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn pages_without_meta_are_walked_until_an_empty_one() {
    let mock = Mock::start(|req, _| {
        let page = req
            .query_pairs()
            .into_iter()
            .find(|(k, _)| k == "page[number]")
            .map_or(1, |(_, v)| v.parse::<u32>().unwrap());
        let data = if page <= 3 {
            vec![client_json(&format!("c{page}"), "one")]
        } else {
            vec![]
        };
        match page {
            // No meta at all, then part of it.
            1 => Reply::json(200, json!({"data": data})),
            _ => Reply::json(
                200,
                json!({"data": data, "meta": {"page_number": page, "total_results": 3}}),
            ),
        }
    })
    .await;
    let client = mock.client().build().unwrap();
    let first = client
        .oauth_clients()
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(first.meta.page_number, 1);
    assert!(first.has_next_page());
    let ids: Vec<String> = first
        .auto_paging_stream()
        .map(|c| c.unwrap().client_id)
        .collect()
        .await;
    assert_eq!(ids, ["c1", "c2", "c3"]);
    assert_eq!(mock.requests().len(), 4);
}

/// A server that ignores `page[number]` and sends no `meta` (or `meta` without a page
/// number) answers page 1 again and again: the walk ends at the repeat, where it used to ask
/// forever. The page methods agree with the stream.
#[tokio::test]
async fn pages_that_name_no_number_and_repeat_end_the_walk() {
    for body in [
        json!({"data": [client_json("c1", "one")]}),
        json!({"data": [client_json("c1", "one")], "meta": {"total_pages": 5}}),
    ] {
        let mock = Mock::scripted(vec![Reply::json(200, body.clone())]).await;
        let client = mock.client().build().unwrap();
        let walk = client
            .oauth_clients()
            .list_auto(&Default::default())
            .take(50)
            .collect::<Vec<_>>();
        let items = tokio::time::timeout(std::time::Duration::from_secs(10), walk)
            .await
            .expect("the walk ends");
        assert_eq!(items.len(), 1, "{body}");
        assert_eq!(mock.requests().len(), 2, "{body}");
        let first = client
            .oauth_clients()
            .list(&Default::default())
            .await
            .unwrap();
        assert!(first.has_next_page());
        assert!(first.next_page().await.unwrap().is_none(), "{body}");
    }
}

#[tokio::test]
async fn errors_never_show_a_credential() {
    // A port with nothing listening: the connection error must not name the URL, whose path
    // holds the consent token.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = telnyx_oauth::Client::builder()
        .api_key("KEYtest")
        .base_url(format!("http://{addr}"))
        .max_retries(0)
        .build()
        .unwrap();
    let err = client.oauth().retrieve("CONSENT-SECRET").await.unwrap_err();
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
    assert!(
        !format!("{err} {err:?}").contains("CONSENT-SECRET"),
        "{err:?}"
    );
    // A consent token read with its newline is refused without being repeated.
    let err = client
        .oauth()
        .retrieve("CONSENT-SECRET\n")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidParameter(_)), "{err:?}");
    assert!(
        !format!("{err} {err:?}").contains("CONSENT-SECRET"),
        "{err:?}"
    );
    // A base URL with a password is refused, and neither the error nor the builder shows it.
    let builder = telnyx_oauth::Client::builder().base_url("http://user:BASEPASS@127.0.0.1:1/v2");
    assert!(!format!("{builder:?}").contains("BASEPASS"));
    let err = builder.build().unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("BASEPASS"), "{err:?}");
}
