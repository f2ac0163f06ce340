//! The crate's examples, run as a user runs them: the compiled example binaries, configured by
//! TELNYX_BASE_URL and TELNYX_API_KEY, against a fresh server.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::server::{new_client, TestServer};
use telnyx_oauth::ClientType;

/// The example binaries sit next to the test binaries' directory (`target/<profile>/examples`),
/// built by the same `cargo test` or `cargo nextest` run.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A listener standing in for a proxy that the environment names: it counts the connections
/// it is offered. An `http` base URL is reached directly, so an example must offer it none
/// (a proxy would read the API key).
struct ProxyTrap {
    url: String,
    offered: Arc<AtomicUsize>,
}

impl ProxyTrap {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let offered = Arc::new(AtomicUsize::new(0));
        let count = offered.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        ProxyTrap { url, offered }
    }
}

/// Runs the example; its standard output when it succeeds.
fn run(app: &TestServer, proxy: &ProxyTrap, name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name))
        .args(args)
        .env("TELNYX_BASE_URL", &app.url)
        .env("TELNYX_API_KEY", &app.admin_key)
        .env("HTTP_PROXY", &proxy.url)
        .env("http_proxy", &proxy.url)
        .env("ALL_PROXY", &proxy.url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The server runs on the test's runtime while an example blocks a thread: two workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_run_against_a_fresh_server() {
    let app = TestServer::spawn().await;
    // Every example runs with a proxy named in its environment, which it must not use.
    let proxy = ProxyTrap::start().await;
    let quick = tokio::task::block_in_place(|| run(&app, &proxy, "quickstart", &[]));
    assert!(quick.contains("created "), "{quick}");
    for (name, expect) in [
        ("create_client", "client_id"),
        ("list_clients", "total_results: 2"),
        ("jwks", "kty"),
        ("authorization_server_metadata", "issuer"),
        ("protected_resource_metadata", "authorization_servers"),
        ("register", "client_id"),
    ] {
        let out = tokio::task::block_in_place(|| run(&app, &proxy, name, &[]));
        assert!(out.contains(expect), "{name}: {out}");
    }
    let created = app
        .client()
        .oauth_clients()
        .create(&new_client("Example target", ClientType::Confidential))
        .await
        .unwrap();
    let id = created.client_id.as_str();
    let got = tokio::task::block_in_place(|| run(&app, &proxy, "get_client", &[id]));
    assert!(got.contains("Example target"), "{got}");
    tokio::task::block_in_place(|| run(&app, &proxy, "delete_client", &[id]));
    let gone = app.client().oauth_clients().retrieve(id).await.unwrap_err();
    assert!(matches!(gone, telnyx_oauth::Error::NotFound(_)), "{gone:?}");
    assert_eq!(proxy.offered.load(Ordering::SeqCst), 0, "a proxy was used");
}
