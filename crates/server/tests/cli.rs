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
    assert!(
        err.contains("a user with email ops@example.com already exists"),
        "{err}"
    );

    // An organization someone named after an email is not where that email's user lands
    // without --org: refused, and nobody was added to it.
    let (ok, out, err) = admin(
        &db,
        &[
            "users",
            "create",
            "--email",
            "mallory@example.com",
            "--org",
            "carol@example.com",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let mallory = one_json(&out);
    let (ok, out, err) = admin(
        &db,
        &["users", "create", "--email", "carol@example.com", "--json"],
        None,
    );
    assert!(!ok, "{out}");
    assert!(out.is_empty());
    assert!(
        err.contains("an organization named carol@example.com already exists"),
        "{err}"
    );
    let conn = rusqlite::Connection::open(db.url.trim_start_matches("sqlite://")).unwrap();
    let members: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM users WHERE org_id = ?1",
            [mallory["org_id"].as_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(members, 1, "mallory alone");
    let carol: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM users WHERE email = 'carol@example.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(carol, 0);

    // Nobody joins the organization of third-party clients, and the refusal says so.
    let (ok, out, err) = admin(
        &db,
        &[
            "users",
            "create",
            "--email",
            "joiner@example.com",
            "--org",
            oauth_core::client::THIRD_PARTY_ORG_NAME,
            "--json",
        ],
        None,
    );
    assert!(!ok);
    assert!(out.is_empty());
    assert!(err.contains("is reserved for third-party clients"), "{err}");

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
/// The value a start printed after `label` (the first start's `API key:`, say).
fn printed(lines: &[String], label: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("a {label} line in {lines:?}"))
}

/// A confidential `client_credentials` client with the management scope, created with `key`:
/// the management API's answer.
async fn machine_client(http: &reqwest::Client, base: &str, key: &str, name: &str) -> Value {
    http.post(format!("{base}/oauth_clients"))
        .bearer_auth(key)
        .json(&serde_json::json!({
            "name": name, "client_type": "confidential",
            "allowed_grant_types": ["client_credentials"], "allowed_scopes": ["admin"]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

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

    /// `serve` with these arguments, its log (stderr) written to `log`, at the level `filter`
    /// names (`None`: the default, `info`).
    fn logging_to(db: &Db, args: &[&str], log: &std::path::Path, filter: Option<&str>) -> Self {
        let mut command = tokio::process::Command::new(BIN);
        command
            .arg("serve")
            .args(args)
            .env("OAUTH_DATABASE_URL", &db.url)
            .env("OAUTH_BIND", "127.0.0.1:0")
            .env_remove("OAUTH_LOG")
            .env_remove("RUST_LOG")
            .env_remove("OAUTH_CONFIG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true);
        if let Some(filter) = filter {
            command.env("OAUTH_LOG", filter);
        }
        let mut child = command.spawn().unwrap();
        Served {
            lines: BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
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

/// The server says it is listening before its serving task first runs; a SIGTERM sent the
/// moment it says so must find the handler in place and stop it cleanly, not end the process
/// with the signal's default action (a loaded machine made that window wide enough to hit).
/// The first start creates the database's directory, the database (and SQLite's `-wal` and
/// `-shm` beside it) and the key-encryption key file for the owner alone, whatever the umask;
/// a key file that others may read later (restored from a backup, say) is refused.
#[tokio::test]
async fn a_first_start_keeps_its_files_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").join("oauth");
    let path = data.join("oauth.db");
    let db = Db {
        url: format!("sqlite://{}", path.display()),
        _dir: dir,
    };
    let mut served = Served::start(&db, &[]);
    served.until_listening().await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for d in [data.parent().unwrap(), data.as_path()] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    let kek = std::path::PathBuf::from(format!("{}.kek", path.display()));
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    let shm = std::path::PathBuf::from(format!("{}-shm", path.display()));
    for f in [&path, &kek, &wal, &shm] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    let (ok, rest) = served.terminate().await;
    assert!(ok, "{rest:?}");

    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = admin(&db, &["keys", "rotate"], None);
    assert!(!ok);
    assert!(err.contains(&kek.display().to_string()), "{err}");
    assert!(
        err.contains("mode 0644") && err.contains("0600 or 0400"),
        "{err}"
    );
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, _, err) = admin(&db, &["keys", "rotate"], None);
    assert!(ok, "{err}");

    // A database path that is a link to a file not made yet: the file is made 0600 too.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere.db");
    let link = dir.path().join("oauth.db");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let linked = Db {
        url: format!("sqlite://{}", link.display()),
        _dir: dir,
    };
    let mut served = Served::start(&linked, &[]);
    served.until_listening().await;
    assert_eq!(mode(&target), 0o600);
    let (ok, rest) = served.terminate().await;
    assert!(ok, "{rest:?}");
}

/// `keys rotate --now`, for a leaked key: the new key signs at once and the previous ones leave
/// the key set at once; a later plain rotation schedules as before.
#[tokio::test]
async fn keys_rotate_now_retires_the_previous_keys_at_once() {
    let db = fresh_db();
    let mut served = Served::start(&db, &[]);
    served.until_listening().await;
    let (ok, rest) = served.terminate().await;
    assert!(ok, "{rest:?}");
    let kids = |out: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    let (ok, before, err) = admin(&db, &["keys", "list"], None);
    assert!(ok, "{err}");
    assert_eq!(kids(&before).len(), 1, "{before}");
    let (ok, out, err) = admin(&db, &["keys", "rotate", "--now", "--json"], None);
    assert!(ok, "{err}");
    let r = one_json(&out);
    assert_eq!(r["active_from"], r["previous_retire_after"], "{r}");
    let (ok, after, err) = admin(&db, &["keys", "list"], None);
    assert!(ok, "{err}");
    assert_eq!(kids(&after), [r["kid"].as_str().unwrap()], "{after}");
    // Said in words too; a plain rotation keeps the previous key published.
    let (ok, out, err) = admin(&db, &["keys", "rotate", "--now"], None);
    assert!(ok, "{err}");
    assert!(out.contains("retired now"), "{out}");
    let (ok, out, err) = admin(&db, &["keys", "rotate"], None);
    assert!(ok, "{err}");
    assert!(out.contains("retire at"), "{out}");
    let (ok, listed, err) = admin(&db, &["keys", "list"], None);
    assert!(ok, "{err}");
    assert_eq!(kids(&listed).len(), 2, "{listed}");
}

#[tokio::test]
async fn sigterm_right_after_listening_stops_cleanly() {
    let db = fresh_db();
    for round in 0..10 {
        let mut served = Served::start(&db, &[]);
        served.until_listening().await;
        let (ok, rest) = served.terminate().await;
        assert!(ok, "round {round}: exit status 0 after SIGTERM ({rest:?})");
        assert!(
            rest.iter().any(|l| l == "oauth-server stopped"),
            "round {round}: {rest:?}"
        );
    }
}

/// A first start that fails (here: its port is taken) makes no admin: the admin's password is
/// shown only by the start that makes it, so the next start that succeeds makes and shows it.
#[tokio::test]
async fn a_failed_first_start_leaves_the_admin_to_the_next_one() {
    let db = fresh_db();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let (ok, out, err) = admin(&db, &["serve", "--bind", &bind], None);
    assert!(!ok, "{out}");
    assert!(err.contains("binding"), "{err}");
    assert!(!out.contains("API key"), "{out}");
    drop(taken);
    let mut served = Served::start(&db, &[]);
    let (lines, _) = served.until_listening().await;
    let text = lines.join("\n");
    assert!(
        text.contains("email:    admin@localhost") && text.contains("API key:"),
        "{text}"
    );
    let (ok, rest) = served.terminate().await;
    assert!(ok, "{rest:?}");
}

#[tokio::test]
async fn first_start_prints_a_working_api_key_once_and_sigterm_stops_cleanly() {
    let db = fresh_db();
    let mut served = Served::start(&db, &[]);
    let (lines, addr) = served.until_listening().await;
    let text = lines.join("\n");
    assert!(text.contains("email:    admin@localhost"), "{text}");
    let key = printed(&lines, "API key:");
    assert!(key.starts_with("KEY"));

    // The README's curl line, in Rust.
    let http = reqwest::Client::new();
    let created = machine_client(&http, &format!("http://{addr}"), &key, "My OAuth client").await;
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
    let verified = one_json(&out);
    assert_eq!(verified["verified"], true);
    // What the mark vouches for, as the verification read it.
    assert_eq!(verified["name"], "My OAuth client");
    assert_eq!(verified["redirect_uris"], serde_json::json!([]));
    let (ok, out, err) = admin(&db, &["clients", "verify", &client_id], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("name:          My OAuth client") && out.contains("clears the mark"),
        "{out}"
    );
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
            .contains("(issuer https://auth.example.com, database SQLite,"),
        "{lines:?}"
    );
    let key = printed(&lines, "API key:");
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

/// Every line a JSON log writer produced, parsed; panics on a line that is not a JSON object or
/// that contains one of `secrets`.
fn json_log_lines(text: &str, secrets: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        for s in secrets {
            assert!(!line.contains(s), "a log line contains a secret: {line}");
        }
        out.push(v);
    }
    out
}

/// Made-up bearer credentials are refused at the request rate with no failure budget spent, and
/// a client may name another's token at the revocation endpoint at its request budget's pace:
/// their log lines keep to a pace (a few per window of seconds, the API's and the
/// authorization endpoint's alike), so one caller cannot fill the operator's disk with them.
#[tokio::test]
async fn rejected_bearer_credentials_are_logged_at_a_pace() {
    use oauth_server::log_pace::LINES_PER_WINDOW;
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut served = Served::logging_to(&db, &[], &log_path, None);
    let (lines, addr) = served.until_listening().await;
    let api_key = printed(&lines, "API key:");
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for i in 0..60 {
        let key = format!("KEY{i:043}");
        let path = if i % 2 == 0 {
            "/oauth_clients"
        } else {
            "/oauth/authorize?response_type=code&client_id=x"
        };
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 200, "{path}");
        assert_ne!(r.status(), 429, "{path}: within the request-rate limits");
    }
    let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    for _ in 0..30 {
        let r = http
            .get(format!("{base}/oauth_clients"))
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // An openly registered public client naming another client's token at the revocation
    // endpoint, again and again: 200 each (RFC 7009), the token untouched.
    let created = machine_client(&http, &base, &api_key, "Machine").await;
    let issued: Value = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(
            created["data"]["client_id"].as_str().unwrap(),
            created["data"]["client_secret"].as_str(),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let victim = issued["access_token"].as_str().unwrap().to_owned();
    let public: Value = http
        .post(format!("{base}/oauth/register"))
        .json(&serde_json::json!({
            "redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_id = public["client_id"].as_str().unwrap().to_owned();
    for _ in 0..30 {
        let r = http
            .post(format!("{base}/oauth/revoke"))
            .form(&[
                ("client_id", public_id.as_str()),
                ("token", victim.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http
        .get(format!("{base}/oauth_clients"))
        .bearer_auth(&victim)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the token was not revoked");
    // Give the log writer a moment; then count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    let keys = log.matches("rejected API key").count();
    let tokens = log.matches("rejected access token").count();
    let revocations = log.matches("revocation of another client's token").count();
    // Two windows at most, if the requests straddled a boundary.
    let most = 2 * LINES_PER_WINDOW as usize;
    assert!(
        (LINES_PER_WINDOW as usize..=most).contains(&keys),
        "{keys}:\n{log}"
    );
    assert!(
        (LINES_PER_WINDOW as usize..=most).contains(&tokens),
        "{tokens}:\n{log}"
    );
    assert!(
        (LINES_PER_WINDOW as usize..=most).contains(&revocations),
        "{revocations}:\n{log}"
    );
    assert!(log.contains("not_logged=0"), "{log}");
    assert!(!log.contains("KEY000"), "no credential is logged: {log}");
    assert!(!log.contains(&victim), "no token is logged");
    drop(served);
}

#[tokio::test]
async fn json_logs_hold_no_secrets_and_events_list_shows_the_audit_trail() {
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    // Everything down to debug: request spans, storage, token checks.
    let mut served = Served::logging_to(&db, &["--log-format", "json"], &log_path, Some("debug"));
    let (lines, addr) = served.until_listening().await;
    let api_key = printed(&lines, "API key:");
    let admin_password = printed(&lines, "password:");
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A client, a client_credentials token, and a wrong secret.
    let redirect = "https://app.example.com/cb";
    let created: Value = http
        .post(format!("{base}/oauth_clients"))
        .bearer_auth(&api_key)
        .json(&serde_json::json!({
            "name": "App", "client_type": "confidential",
            "allowed_grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "allowed_scopes": ["admin"], "redirect_uris": [redirect]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = created["data"]["client_id"].as_str().unwrap().to_owned();
    let secret = created["data"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = |form: Vec<(&'static str, String)>, secret: String| {
        let http = http.clone();
        let url = format!("{base}/oauth/token");
        let id = client_id.clone();
        async move {
            let r = http
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, cc) = token(
        vec![("grant_type", "client_credentials".into())],
        secret.clone(),
    )
    .await;
    assert_eq!(status, 200, "{cc}");
    let access_token = cc["access_token"].as_str().unwrap().to_owned();
    let wrong_secret = "wrong-secret-for-the-log-test";
    let (status, _) = token(
        vec![("grant_type", "client_credentials".into())],
        wrong_secret.into(),
    )
    .await;
    assert_eq!(status, 401);

    // The code flow with the admin's API key; the code is then replayed.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let authorize = format!(
        "{base}/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=admin&state=xyz&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let r = http
        .get(&authorize)
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let consent_token = location.split_once("consent_token=").unwrap().1.to_owned();
    let decided: Value = http
        .post(format!("{base}/oauth/grants"))
        .bearer_auth(&api_key)
        .json(&serde_json::json!({"allowed": true, "consent_token": consent_token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let back = url::Url::parse(decided["redirect_uri"].as_str().unwrap()).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let exchange = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.clone()),
        ("redirect_uri", redirect.to_owned()),
        ("code_verifier", verifier.to_owned()),
    ];
    let (status, tokens) = token(exchange.clone(), secret.clone()).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, _) = token(exchange, secret.clone()).await;
    assert_eq!(status, 400, "a replayed code");

    // A failed sign-in.
    let bad_password = "not-the-admin-password-42";
    let r = http.get(format!("{base}/login")).send().await.unwrap();
    let csrf = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            let v = v.to_str().ok()?;
            v.strip_prefix("oauth_login_csrf=")
                .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        })
        .unwrap();
    let r = http
        .post(format!("{base}/login"))
        .header("cookie", format!("oauth_login_csrf={csrf}"))
        .form(&[
            ("email", "admin@localhost"),
            ("password", bad_password),
            ("csrf_token", &csrf),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // With the events table gone, a failed authentication still answers 401, and its event is
    // still in the log, with a warning that it could not be stored.
    let rename = |from: &'static str, to: &'static str| {
        let url = db.url.clone();
        async move {
            let path = url.trim_start_matches("sqlite://");
            rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(&format!("ALTER TABLE {from} RENAME TO {to}"))
                .unwrap();
        }
    };
    rename("security_events", "security_events_away").await;
    let (status, _) = token(
        vec![("grant_type", "client_credentials".into())],
        wrong_secret.into(),
    )
    .await;
    assert_eq!(status, 401);
    rename("security_events_away", "security_events").await;

    let (ok, _) = served.terminate().await;
    assert!(ok);

    let secrets = [
        api_key.as_str(),
        admin_password.as_str(),
        secret.as_str(),
        wrong_secret,
        access_token.as_str(),
        consent_token.as_str(),
        code.as_str(),
        refresh_token.as_str(),
        tokens["access_token"].as_str().unwrap(),
        bad_password,
    ];
    let log = std::fs::read_to_string(&log_path).unwrap();
    let logs = json_log_lines(&log, &secrets);
    assert!(logs.len() > 10, "{log}");
    let security: Vec<&Value> = logs
        .iter()
        .filter(|l| l["target"] == "oauth::security")
        .collect();
    let logged_kinds: Vec<&str> = security
        .iter()
        .map(|l| l["fields"]["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "api_key.created",
        "client.created",
        "client.authentication_failed",
        "consent.approved",
        "authorization_code.replayed",
        "token_family.revoked",
        "login.failed",
    ] {
        assert!(logged_kinds.contains(&kind), "{kind} in {logged_kinds:?}");
    }
    let replay = security
        .iter()
        .find(|l| l["fields"]["kind"] == "authorization_code.replayed")
        .unwrap();
    assert_eq!(replay["level"], "WARN");
    assert_eq!(replay["fields"]["client_id"], client_id.as_str());
    assert_eq!(replay["fields"]["ip"], "127.0.0.1");
    let unstored = logs
        .iter()
        .position(|l| {
            l["target"] == "oauth::security"
                && l["level"] == "WARN"
                && l["fields"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("storing a security event failed")
        })
        .expect("a warning for the event that could not be stored");
    assert_eq!(
        logs[unstored]["fields"]["kind"],
        "client.authentication_failed"
    );
    assert!(
        logs[..unstored].iter().rev().any(|l| {
            l["target"] == "oauth::security"
                && l["fields"]["kind"] == "client.authentication_failed"
        }),
        "the event itself is logged before the warning"
    );

    // The same events, from the database.
    let (ok, out, err) = admin(&db, &["events", "list", "--json"], None);
    assert!(ok, "{err}");
    let listed = one_json(&out);
    let events = listed["events"].as_array().unwrap();
    let stored_kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        stored_kinds,
        vec![
            "login.failed",
            "token_family.revoked",
            "authorization_code.replayed",
            "consent.approved",
            "client.authentication_failed",
            "client.created",
            "api_key.created",
        ],
        "newest first"
    );
    assert_eq!(listed["next_before"], Value::Null);
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    assert!(!out.contains(&secret) && !out.contains(&api_key) && !out.contains(&code));

    let (ok, out, _) = admin(
        &db,
        &[
            "events",
            "list",
            "--kind",
            "client.authentication_failed",
            "--client",
            &client_id,
            "--json",
        ],
        None,
    );
    assert!(ok);
    let failed = one_json(&out);
    let failed = failed["events"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["client_id"], client_id.as_str());
    assert_eq!(failed[0]["ip"], "127.0.0.1");
    assert_eq!(failed[0]["detail"]["reason"], "wrong_secret");
    assert_eq!(failed[0]["detail"]["endpoint"], "/oauth/token");
    assert!(failed[0]["occurred_at"].as_str().unwrap().ends_with('Z'));

    // Pages: two at a time, following `next_before`.
    let (ok, out, _) = admin(&db, &["events", "list", "--limit", "2", "--json"], None);
    assert!(ok);
    let page = one_json(&out);
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_before"], ids[1]);
    let before = ids[1].to_string();
    let (ok, out, _) = admin(
        &db,
        &[
            "events", "list", "--limit", "2", "--before", &before, "--json",
        ],
        None,
    );
    assert!(ok);
    assert_eq!(one_json(&out)["events"][0]["id"], ids[2]);

    // --since, as RFC 3339 and as Unix seconds.
    for since in ["2999-01-01T00:00:00Z", "32503680000"] {
        let (ok, out, err) = admin(&db, &["events", "list", "--since", since, "--json"], None);
        assert!(ok, "{err}");
        assert_eq!(one_json(&out)["events"], serde_json::json!([]));
    }
    let (ok, out, _) = admin(
        &db,
        &[
            "events",
            "list",
            "--since",
            "2000-01-01T00:00:00Z",
            "--json",
        ],
        None,
    );
    assert!(ok);
    assert_eq!(one_json(&out)["events"].as_array().unwrap().len(), 7);

    // Mistakes are refused with a clear message.
    let (ok, out, err) = admin(&db, &["events", "list", "--kind", "login", "--json"], None);
    assert!(!ok && out.is_empty());
    assert!(
        err.contains("unknown event kind") && err.contains("login.failed"),
        "{err}"
    );
    let (ok, _, err) = admin(&db, &["events", "list", "--since", "yesterday"], None);
    assert!(!ok);
    assert!(err.contains("RFC 3339"), "{err}");
    let (ok, _, err) = admin(&db, &["events", "list", "--limit", "0"], None);
    assert!(!ok);
    assert!(err.contains("--limit"), "{err}");

    // A key rotation is an event; so are API key creation and revocation.
    let (ok, out, err) = admin(&db, &["keys", "rotate", "--json"], None);
    assert!(ok, "{err}");
    let kid = one_json(&out)["kid"].as_str().unwrap().to_owned();
    let (ok, out, err) = admin(
        &db,
        &["api-keys", "create", "--email", "admin@localhost", "--json"],
        None,
    );
    assert!(ok, "{err}");
    let key = one_json(&out);
    let key_id = key["id"].as_str().unwrap();
    let (ok, _, _) = admin(&db, &["api-keys", "revoke", key_id, "--json"], None);
    assert!(ok);
    let (ok, out, _) = admin(&db, &["events", "list", "--limit", "3", "--json"], None);
    assert!(ok);
    let latest = one_json(&out);
    let latest = latest["events"].as_array().unwrap();
    assert_eq!(latest[0]["kind"], "api_key.revoked");
    assert_eq!(latest[0]["detail"]["api_key_id"], key_id);
    assert_eq!(latest[1]["kind"], "api_key.created");
    assert_eq!(latest[1]["user_id"], key["user_id"]);
    assert_eq!(latest[2]["kind"], "signing_key.rotated");
    assert_eq!(latest[2]["detail"]["kid"], kid.as_str());
    assert_eq!(latest[2]["ip"], Value::Null, "not from an HTTP request");
    assert!(!out.contains(key["api_key"].as_str().unwrap()));

    // The human table.
    let (ok, out, _) = admin(
        &db,
        &["events", "list", "--kind", "signing_key.rotated"],
        None,
    );
    assert!(ok);
    assert!(out.starts_with("ID"), "{out}");
    assert!(
        out.contains("signing_key.rotated") && out.contains(&kid),
        "{out}"
    );
}

#[tokio::test]
async fn secrets_from_files_stay_out_of_the_environment() {
    use std::os::unix::fs::PermissionsExt;
    const KEK: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    let db = fresh_db();
    let dir = tempfile::tempdir().unwrap();
    let kek = dir.path().join("kek");
    std::fs::write(&kek, format!("{KEK}\n")).unwrap();
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = dir.path().join("registration-token");
    std::fs::write(&token, "registration-s3cret\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();

    let mut served = Served::start(
        &db,
        &[
            "--key-encryption-key-file",
            kek.to_str().unwrap(),
            "--registration-mode",
            "token",
            "--registration-token-file",
            token.to_str().unwrap(),
        ],
    );
    let (_, addr) = served.until_listening().await;
    let http = reqwest::Client::new();
    let register = |bearer: Option<&'static str>| {
        let mut r = http
            .post(format!("http://{addr}/oauth/register"))
            .json(&serde_json::json!({
                "client_name": "MCP client",
                "redirect_uris": ["http://127.0.0.1:33418/callback"],
                "token_endpoint_auth_method": "none"
            }));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.send()
    };
    // The token is the file's content, without its trailing newline.
    let r = register(Some("registration-s3cret")).await.unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert!(created["client_id"].is_string(), "{created}");
    let r = register(Some("registration-s3cret\n")).await;
    assert!(r.is_err() || r.unwrap().status() == 401);
    let r = register(None).await.unwrap();
    assert_eq!(r.status(), 401);
    let (ok, _) = served.terminate().await;
    assert!(ok);
    // The signing keys were sealed with the file's key: no key file was generated beside the
    // database, the same key given as a value opens them, and another key does not.
    let database = db.url.strip_prefix("sqlite://").unwrap();
    assert!(!std::path::Path::new(&format!("{database}.kek")).exists());
    let mut served = Served::start(&db, &["--key-encryption-key", KEK]);
    served.until_listening().await;
    let (ok, _) = served.terminate().await;
    assert!(ok);
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("OAUTH_DATABASE_URL", &db.url)
            .env("OAUTH_BIND", "127.0.0.1:0")
            .env_remove("OAUTH_CONFIG")
            .env_remove("OAUTH_KEY_ENCRYPTION_KEY")
            .env_remove("OAUTH_KEY_ENCRYPTION_KEY_FILE")
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8(out.stderr).unwrap())
    };
    let other = "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=";
    let (ok, err) = run(&["serve"], &[("OAUTH_KEY_ENCRYPTION_KEY", other)]);
    assert!(!ok);
    assert!(err.contains("signing keys"), "{err}");

    // A key file that others may read is refused, naming the file and the modes expected.
    let kek_path = kek.to_str().unwrap();
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, err) = run(&["migrate"], &[("OAUTH_KEY_ENCRYPTION_KEY_FILE", kek_path)]);
    assert!(!ok);
    assert!(err.contains(kek_path), "{err}");
    assert!(err.contains("mode 0644"), "{err}");
    assert!(err.contains("0600 or 0400"), "{err}");
    // 0400 is accepted.
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o400)).unwrap();
    let (ok, err) = run(&["migrate"], &[("OAUTH_KEY_ENCRYPTION_KEY_FILE", kek_path)]);
    assert!(ok, "{err}");
    // Both a value and a file: a configuration error.
    let (ok, err) = run(
        &["migrate"],
        &[
            ("OAUTH_KEY_ENCRYPTION_KEY", KEK),
            ("OAUTH_KEY_ENCRYPTION_KEY_FILE", kek_path),
        ],
    );
    assert!(!ok);
    assert!(err.contains("both as a value"), "{err}");
    let (ok, err) = run(
        &["migrate", "--registration-token", "x"],
        &[("OAUTH_REGISTRATION_TOKEN_FILE", token.to_str().unwrap())],
    );
    assert!(!ok);
    assert!(err.contains("both as a value"), "{err}");
}

/// The line of `doctor`'s output about `check`.
fn doctor_line(out: &str, check: &str) -> String {
    out.lines()
        .find(|l| l.contains(&format!(" {check}: ")))
        .unwrap_or_else(|| panic!("no {check} line in {out}"))
        .to_owned()
}

/// A database whose key-encryption key file went missing (not restored with it) or was
/// replaced: every command names it, none makes a new key file (which would only stand in the
/// way of restoring the right one), and `doctor` fails the check. A command that acts on what a
/// database holds makes no database where there is none.
#[test]
fn a_missing_or_wrong_key_file_is_named_and_never_replaced() {
    let db = fresh_db();
    let (ok, _, err) = admin(&db, &["migrate"], None);
    assert!(ok, "{err}");
    // A signing key sealed with the key file made now.
    let (ok, _, err) = admin(&db, &["keys", "rotate"], None);
    assert!(ok, "{err}");
    let (ok, _, err) = admin(
        &db,
        &[
            "users",
            "create",
            "--email",
            "k@example.com",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(ok, "{err}");
    let file = format!("{}.kek", db.url.trim_start_matches("sqlite://"));
    let right = std::fs::read_to_string(&file).unwrap();
    let (_, out, _) = admin(&db, &["doctor"], None);
    assert!(
        doctor_line(&out, "key-encryption key").starts_with("ok"),
        "{out}"
    );

    std::fs::remove_file(&file).unwrap();
    for args in [
        &["keys", "rotate"][..],
        &["users", "set-password", "--email", "k@example.com"][..],
    ] {
        let (ok, out, err) = admin(&db, args, None);
        assert!(!ok, "{args:?}: {out}");
        assert!(err.contains("is missing") && err.contains(".kek"), "{err}");
        assert!(
            !std::path::Path::new(&file).exists(),
            "{args:?} made a key file"
        );
    }
    let (ok, out, _) = admin(&db, &["doctor"], None);
    assert!(!ok);
    let line = doctor_line(&out, "key-encryption key");
    assert!(
        line.starts_with("FAIL") && line.contains("missing"),
        "{line}"
    );
    assert!(
        !std::path::Path::new(&file).exists(),
        "doctor made a key file"
    );

    // Another key in its place.
    std::fs::write(&file, "b3RoZXIga2V5OiBub3QgdGhlIHNlcnZlcidzIG93biE=\n").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (ok, out, _) = admin(&db, &["doctor"], None);
    assert!(!ok);
    let line = doctor_line(&out, "key-encryption key");
    assert!(
        line.starts_with("FAIL") && line.contains("does not open"),
        "{line}"
    );
    let (ok, _, err) = admin(
        &db,
        &["users", "set-password", "--email", "k@example.com"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("does not open"), "{err}");

    // The right one back: all is well, and the password could be set all along.
    std::fs::write(&file, right).unwrap();
    let (_, out, _) = admin(&db, &["doctor"], None);
    assert!(
        doctor_line(&out, "key-encryption key").starts_with("ok"),
        "{out}"
    );
    let (ok, _, err) = admin(
        &db,
        &["users", "set-password", "--email", "k@example.com"],
        None,
    );
    assert!(ok, "{err}");

    // No database there: refused, and none made.
    let missing = fresh_db();
    let path = missing.url.trim_start_matches("sqlite://").to_owned();
    for args in [
        &["clients", "delete", "some-client"][..],
        &["users", "delete", "--email", "k@example.com"][..],
        &["events", "list"][..],
        &["api-keys", "revoke", "some-key"][..],
        &["keys", "list"][..],
    ] {
        let (ok, _, err) = admin(&missing, args, None);
        assert!(!ok, "{args:?}");
        assert!(err.contains("no database at"), "{args:?}: {err}");
        assert!(
            !std::path::Path::new(&path).exists(),
            "{args:?} made a database"
        );
    }
    let (ok, out, _) = admin(&missing, &["doctor"], None);
    assert!(!ok);
    let line = doctor_line(&out, "database");
    assert!(
        line.starts_with("FAIL") && line.contains("no database at"),
        "{line}"
    );
    assert!(
        !std::path::Path::new(&path).exists(),
        "doctor made a database"
    );
}
