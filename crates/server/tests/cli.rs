//! The `oauth-server` binary itself: admin commands with `--json`, the first start's bootstrap
//! output, configuration from the environment and a file, and a clean stop on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");

struct Db {
    _dir: tempfile::TempDir,
    url: String,
}

fn fresh_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    Db { _dir: dir, url }
}

/// Runs an admin command; returns (success, stdout, stderr).
fn admin(db: &Db, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("OAUTH_DATABASE_URL", &db.url)
        .env_remove("OAUTH_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The single JSON object a `--json` command printed.
fn one_json(stdout: &str) -> Value {
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stdout: {stdout:?}");
    let v: Value = serde_json::from_str(lines[0]).unwrap();
    assert!(v.is_object());
    v
}

#[test]
fn admin_commands_print_one_json_object() {
    let db = fresh_db();
    let (ok, out, err) = admin(&db, &["migrate", "--json"], None);
    assert!(ok, "{err}");
    assert_eq!(one_json(&out), serde_json::json!({"migrated": true}));

    let (ok, out, err) = admin(
        &db,
        &[
            "users",
            "create",
            "--email",
            "Ops@Example.com",
            "--org",
            "Acme",
            "--password-stdin",
            "--json",
        ],
        Some("a long enough password\n"),
    );
    assert!(ok, "{err}");
    let user = one_json(&out);
    assert_eq!(user["email"], "ops@example.com");
    assert!(user["user_id"].is_string() && user["org_id"].is_string());
    assert!(
        user.get("password").is_none(),
        "a password from stdin is not echoed"
    );

    let (ok, out, _) = admin(
        &db,
        &[
            "users",
            "create",
            "--email",
            "dev@example.com",
            "--org",
            "Acme",
            "--json",
        ],
        None,
    );
    assert!(ok);
    let dev = one_json(&out);
    assert_eq!(
        dev["org_id"], user["org_id"],
        "same organization name, same organization"
    );
    assert!(
        dev["password"].as_str().unwrap().len() >= 32,
        "a generated password is shown once"
    );

    let (ok, out, err) = admin(
        &db,
        &["users", "create", "--email", "ops@example.com", "--json"],
        None,
    );
    assert!(!ok);
    assert!(out.is_empty());
    assert!(err.contains("already exists"), "{err}");

    let (ok, out, err) = admin(
        &db,
        &[
            "users",
            "create",
            "--email",
            "x@example.com",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("at least 8"), "{err}");

    let (ok, out, err) = admin(
        &db,
        &[
            "api-keys",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "ci",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let key = one_json(&out);
    assert!(key["api_key"].as_str().unwrap().starts_with("KEY"));
    assert_eq!(key["user_id"], user["user_id"]);

    let (ok, _, err) = admin(
        &db,
        &[
            "api-keys",
            "create",
            "--email",
            "nobody@example.com",
            "--json",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("no user"), "{err}");

    let id = key["id"].as_str().unwrap();
    let (ok, out, _) = admin(&db, &["api-keys", "revoke", id, "--json"], None);
    assert!(ok);
    assert_eq!(
        one_json(&out),
        serde_json::json!({"id": id, "revoked": true})
    );
    let (ok, _, err) = admin(&db, &["api-keys", "revoke", id, "--json"], None);
    assert!(!ok, "revoking twice is an error");
    assert!(err.contains("no live API key"), "{err}");

    let (ok, _, err) = admin(
        &db,
        &[
            "clients",
            "verify",
            "00000000-0000-0000-0000-000000000000",
            "--json",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("no client"), "{err}");

    // Human output without --json.
    let (ok, out, _) = admin(
        &db,
        &["api-keys", "create", "--email", "dev@example.com"],
        None,
    );
    assert!(ok);
    assert!(out.contains("shown once") && out.contains("KEY"), "{out}");
}

/// A running `oauth-server serve`, its stdout read line by line.
struct Served {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Served {
    fn start(db: &Db, extra: &[&str]) -> Self {
        let mut child = tokio::process::Command::new(BIN)
            .arg("serve")
            .args(extra)
            .env("OAUTH_DATABASE_URL", &db.url)
            .env("OAUTH_BIND", "127.0.0.1:0")
            .env_remove("OAUTH_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        Served {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Lines up to and including the "listening on" one; returns them and the address.
    async fn until_listening(&mut self) -> (Vec<String>, String) {
        let mut seen = Vec::new();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
                .await
                .expect("the server prints its address")
                .unwrap()
                .expect("stdout open");
            if let Some(rest) = line.strip_prefix("oauth-server listening on ") {
                let addr = rest.split(' ').next().unwrap().to_owned();
                seen.push(line);
                return (seen, addr);
            }
            seen.push(line);
        }
    }

    async fn terminate(mut self) -> (bool, Vec<String>) {
        let pid = self.child.id().unwrap().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let mut rest = Vec::new();
        while let Ok(Some(line)) = self.lines.next_line().await {
            rest.push(line);
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("stops after SIGTERM")
            .unwrap();
        (status.success(), rest)
    }
}

#[tokio::test]
async fn first_start_prints_a_working_api_key_once_and_sigterm_stops_cleanly() {
    let db = fresh_db();
    let mut served = Served::start(&db, &[]);
    let (lines, addr) = served.until_listening().await;
    let text = lines.join("\n");
    assert!(text.contains("email:    admin@localhost"), "{text}");
    let key = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("API key:"))
        .map(|k| k.trim().to_owned())
        .expect("an API key line");
    assert!(key.starts_with("KEY"));

    // The README's curl line, in Rust.
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("http://{addr}/oauth_clients"))
        .bearer_auth(&key)
        .json(&serde_json::json!({
            "name": "My OAuth client", "client_type": "confidential",
            "allowed_grant_types": ["client_credentials"], "allowed_scopes": ["admin"]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = created["data"]["client_id"].as_str().unwrap().to_owned();

    let (ok, rest) = served.terminate().await;
    assert!(ok, "exit status 0 after SIGTERM");
    assert!(rest.iter().any(|l| l == "oauth-server stopped"), "{rest:?}");

    // Second start: nothing printed about the admin; the client is still there; verify works.
    let mut served = Served::start(&db, &[]);
    let (lines, addr) = served.until_listening().await;
    assert!(
        !lines.join("\n").contains("API key"),
        "printed once only: {lines:?}"
    );
    let (ok, out, err) = admin(&db, &["clients", "verify", &client_id, "--json"], None);
    assert!(ok, "{err}");
    assert_eq!(one_json(&out)["verified"], true);
    let list: Value = http
        .get(format!("http://{addr}/oauth_clients?filter[verified]=true"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["client_id"], client_id.as_str());
    let (ok, _) = served.terminate().await;
    assert!(ok);
}

#[tokio::test]
async fn configuration_from_a_toml_file_and_flags() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oauth.toml");
    std::fs::write(
        &path,
        "issuer = \"https://auth.example.com\"\nmax_body_bytes = 4096\n[[scopes]]\nname = \"admin\"\ndescription = \"All\"\n[[scopes]]\nname = \"calls\"\ndescription = \"Calls\"\n",
    )
    .unwrap();
    let mut served = Served::start(&db, &["--config", path.to_str().unwrap()]);
    let (lines, addr) = served.until_listening().await;
    assert!(
        lines
            .last()
            .unwrap()
            .contains("(issuer https://auth.example.com)"),
        "{lines:?}"
    );
    let key = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("API key:"))
        .map(|k| k.trim().to_owned())
        .unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{addr}/oauth_clients"))
        .bearer_auth(&key)
        .json(&serde_json::json!({
            "name": "c", "client_type": "confidential",
            "allowed_grant_types": ["client_credentials"], "allowed_scopes": ["calls", "messaging"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "messaging is not in this catalogue");
    let (ok, _) = served.terminate().await;
    assert!(ok);

    // A bad file stops the start with a clear message.
    std::fs::write(&path, "bindd = 1\n").unwrap();
    let (ok, _, err) = admin(&db, &["--config", path.to_str().unwrap(), "migrate"], None);
    assert!(!ok);
    assert!(err.contains("unknown field"), "{err}");
}
