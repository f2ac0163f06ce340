//! The database goes away under a running server and comes back: every route that needs it
//! answers 503 with `Retry-After` and the error JSON (never a 500, nothing internal), the routes
//! served from memory keep answering, and the server recovers by itself.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

/// The body of every 503: nothing about the database, the pool or the query. The pages a
/// browser goes to (authorize, the login form) answer with a page that says the same.
fn assert_unavailable(what: &str, r: &Resp) {
    assert_eq!(r.status, 503, "{what}: {}", r.text);
    assert_eq!(r.header("retry-after"), Some("1"), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    let page = ["GET /oauth/authorize", "POST /login"].contains(&what);
    if page {
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{what}: {:?}",
            r.header("content-type")
        );
        assert!(r.header("content-security-policy").is_some(), "{what}");
        assert!(
            r.text.contains("The service is busy")
                && r.text
                    .contains("the service is temporarily unavailable; retry shortly"),
            "{what}: {}",
            r.text
        );
    }
    let lower = r.text.to_lowercase();
    for leak in [
        "sql",
        "pool",
        "postgres",
        "connection",
        "timed out",
        "127.0.0.1",
    ] {
        assert!(!lower.contains(leak), "{what} leaks {leak:?}: {}", r.text);
    }
    if page {
        return;
    }
    assert_eq!(
        r.body["error"], "temporarily_unavailable",
        "{what}: {}",
        r.text
    );
    assert_eq!(
        r.body["error_description"], "the service is temporarily unavailable; retry shortly",
        "{what}"
    );
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| ["error", "error_description", "errors"].contains(&k.as_str())),
        "{what}: {}",
        r.text
    );
}

/// Everything a test sends while the database is away, and again once it is back.
struct Probes {
    api: Api,
    client: (String, String),
    code: String,
    access_token: String,
    refresh_token: String,
    grant_id: String,
    consent_token: String,
    login_csrf: String,
}

impl Probes {
    async fn prepare(api: &Api) -> Self {
        let client = api.code_client("Probe").await;
        let c = (client.0.as_str(), client.1.as_str());
        let first = api.code(&client.0).await.unwrap();
        let r = api.exchange(c, &first).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
        let access_token = r.body["access_token"].as_str().unwrap().to_owned();
        let refresh_token = r.body["refresh_token"].as_str().unwrap().to_owned();
        let grant_id = jwt_parts(&access_token).1["grant_id"]
            .as_str()
            .unwrap()
            .to_owned();
        // An unused code, and a pending consent request.
        let code = api.code(&client.0).await.unwrap();
        let r = api.get(&Api::authorize_path(&client.0)).await.unwrap();
        assert_eq!(r.status, 302);
        let consent_token = param(r.header("location").unwrap(), "consent_token").unwrap();
        // The login form needs no database: its CSRF cookie (`__Host-`: the issuer is https).
        let r = api.http.get(api.at("/login")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let login_csrf = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .find_map(|v| {
                v.to_str()
                    .ok()?
                    .split(';')
                    .next()?
                    .strip_prefix("__Host-oauth_login_csrf=")
                    .map(str::to_owned)
            })
            .expect("login CSRF cookie");
        Probes {
            api: api.clone(),
            client,
            code,
            access_token,
            refresh_token,
            grant_id,
            consent_token,
            login_csrf,
        }
    }

    fn c(&self) -> (&str, &str) {
        (self.client.0.as_str(), self.client.1.as_str())
    }

    /// Each route that needs the database, by name, with its response.
    async fn database_routes(&self) -> Vec<(&'static str, Resp)> {
        let api = &self.api;
        let c = self.c();
        let mut out = vec![
            ("GET /readyz", api.get("/readyz").await.unwrap()),
            ("GET /oauth_clients", api.get("/oauth_clients").await.unwrap()),
            (
                "GET /oauth_clients/{id}",
                api.get(&format!("/oauth_clients/{}", c.0)).await.unwrap(),
            ),
            (
                "PUT /oauth_clients/{id}",
                api.put_json(
                    &format!("/oauth_clients/{}", c.0),
                    &json!({"name": "Probe, renamed"}),
                )
                .await
                .unwrap(),
            ),
            ("GET /oauth_grants", api.get("/oauth_grants").await.unwrap()),
            (
                "client_credentials",
                api.post_form(
                    "/oauth/token",
                    c,
                    &[("grant_type", "client_credentials"), ("scope", "messaging")],
                )
                .await
                .unwrap(),
            ),
            ("authorization_code", api.exchange(c, &self.code).await.unwrap()),
            (
                "refresh_token",
                api.refresh(c, &self.refresh_token).await.unwrap(),
            ),
            (
                "POST /oauth/introspect",
                api.post_form("/oauth/introspect", c, &[("token", &self.access_token)])
                    .await
                    .unwrap(),
            ),
            (
                "POST /oauth/revoke",
                api.post_form("/oauth/revoke", c, &[("token", "not-a-token")])
                    .await
                    .unwrap(),
            ),
            (
                "POST /oauth/register",
                api.send(api.http.post(api.at("/oauth/register")).json(
                    &json!({"client_name": "Registered", "redirect_uris": ["https://r.example/cb"]}),
                ))
                .await
                .unwrap(),
            ),
            (
                "GET /oauth/authorize",
                api.get(&Api::authorize_path(c.0)).await.unwrap(),
            ),
            (
                "GET /oauth/consent/{token}",
                api.get(&format!("/oauth/consent/{}", self.consent_token))
                    .await
                    .unwrap(),
            ),
            (
                "POST /oauth/grants",
                api.post_json(
                    "/oauth/grants",
                    &json!({"allowed": false, "consent_token": self.consent_token}),
                )
                .await
                .unwrap(),
            ),
        ];
        let login = api
            .send(
                api.http
                    .post(api.at("/login"))
                    .header(
                        "cookie",
                        format!("__Host-oauth_login_csrf={}", self.login_csrf),
                    )
                    .form(&[
                        ("email", "admin@localhost"),
                        ("password", "not the password"),
                        ("csrf_token", self.login_csrf.as_str()),
                        ("return_to", "/"),
                    ]),
            )
            .await
            .unwrap();
        out.push(("POST /login", login));
        out
    }

    /// The routes answered from memory.
    async fn memory_routes(&self) -> Vec<(&'static str, Resp)> {
        let api = &self.api;
        let mut out = Vec::new();
        for path in [
            "/healthz",
            "/oauth/jwks",
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-protected-resource",
        ] {
            let r = api.send(api.http.get(api.at(path))).await.unwrap();
            out.push((path, r));
        }
        out
    }
}

#[tokio::test]
async fn postgres_unreachable_gives_503_then_recovers_without_a_restart() {
    let Some(db) = FreshDb::postgres().await else {
        eprintln!("skipped: set {POSTGRES_ENV} to run the PostgreSQL fault test");
        return;
    };
    let relay = Relay::start(&db.url).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "oauth.toml",
        "database_acquire_timeout_ms = 1000",
    );
    let server = Server::start(&db.via(&relay), &config).await;
    let api = Api::new(&server, server.api_key.as_deref().unwrap());
    let probes = Probes::prepare(&api).await;
    let before: Vec<(&str, Value)> = probes
        .memory_routes()
        .await
        .into_iter()
        .map(|(p, r)| (p, r.body))
        .collect();
    assert_eq!(api.get("/readyz").await.unwrap().status, 200);

    relay.cut();
    let started = Instant::now();
    let answers = probes.database_routes().await;
    let took = started.elapsed();
    for (what, r) in &answers {
        assert_unavailable(what, r);
    }
    // Every request above waited at most the acquire timeout (1 s); the bound here only
    // catches a hang, it is not a measurement.
    eprintln!("{} requests answered 503 in {took:?}", answers.len());
    assert!(took < Duration::from_secs(10 * answers.len() as u64));
    for ((path, r), (_, was)) in probes.memory_routes().await.iter().zip(&before) {
        assert_eq!(r.status, 200, "{path} answers from memory: {}", r.text);
        assert_eq!(&r.body, was, "{path} unchanged");
    }
    // The login form itself needs no database either.
    let r = api.http.get(api.at("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = api.get("/readyz").await.unwrap();
        if r.status == 200 {
            assert_eq!(r.body, json!({"status": "ready"}));
            break;
        }
        assert_unavailable("GET /readyz while recovering", &r);
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same requests succeed now, on the same process: nothing was spent by the 503s.
    let answers = probes.database_routes().await;
    let status = |name: &str| -> &Resp {
        &answers
            .iter()
            .find(|(w, _)| *w == name)
            .unwrap_or_else(|| panic!("{name}"))
            .1
    };
    for (what, r) in &answers {
        assert!(r.status < 500, "{what}: {} {}", r.status, r.text);
    }
    assert_eq!(status("GET /readyz").status, 200);
    assert_eq!(status("GET /oauth_clients").status, 200);
    assert_eq!(
        status("PUT /oauth_clients/{id}").body["data"]["name"],
        "Probe, renamed"
    );
    assert_eq!(status("GET /oauth_grants").status, 200);
    assert_eq!(status("client_credentials").status, 200);
    let exchanged = status("authorization_code");
    assert_eq!(exchanged.status, 200, "the code was not spent by the 503");
    let rotated = status("refresh_token");
    assert_eq!(
        rotated.status, 200,
        "the refresh token was not spent by the 503: {}",
        rotated.text
    );
    assert_eq!(
        status("POST /oauth/introspect").body["active"],
        true,
        "{}",
        status("POST /oauth/introspect").text
    );
    assert_eq!(status("POST /oauth/revoke").status, 200);
    assert_eq!(status("POST /oauth/register").status, 201);
    assert_eq!(status("GET /oauth/authorize").status, 302);
    assert_eq!(status("GET /oauth/consent/{token}").status, 200);
    assert_eq!(status("POST /oauth/grants").status, 200);
    // A wrong password: the login form again, with its error, not a 503.
    assert_eq!(
        status("POST /login").status,
        401,
        "{}",
        status("POST /login").text
    );
    let grant = api
        .get(&format!("/oauth_grants/{}", probes.grant_id))
        .await
        .unwrap();
    assert_eq!(grant.status, 200, "{}", grant.text);

    // A database restart ends every session of the server: the pool notices on its next use
    // and opens new connections, so no request sees the dead ones.
    let admin_url = std::env::var(POSTGRES_ENV).unwrap();
    let name = url::Url::parse(&db.url).unwrap().path()[1..].to_owned();
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
        )
        .bind(&name)
        .fetch_all(&mut c)
        .await
        .unwrap();
        assert!(!ended.is_empty(), "the server had sessions open");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
                    .bind(&name)
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            if left == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "sessions did not end");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.close().await.unwrap();
    }
    // A restart takes longer than this; the pool checks a connection idle that long.
    tokio::time::sleep(oauth_store::CHECK_IF_IDLE_FOR * 4).await;
    let r = api.get("/oauth_clients").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let r = api
        .post_form(
            "/oauth/token",
            probes.c(),
            &[("grant_type", "client_credentials")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);

    // A session ended in the middle of a query (an administrator, a failover): that request
    // gets the 503 too. The test holds the client's row lock so that the server's update
    // waits inside PostgreSQL, then ends the waiting session.
    {
        use sqlx::Connection;
        let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
        sqlx::query("SELECT client_id FROM oauth_clients WHERE client_id = $1 FOR UPDATE")
            .bind(&probes.client.0)
            .fetch_one(&mut holder)
            .await
            .unwrap();
        let blocked = {
            let (api, id) = (api.clone(), probes.client.0.clone());
            tokio::spawn(async move {
                api.put_json(&format!("/oauth_clients/{id}"), &json!({"name": "Blocked"}))
                    .await
                    .unwrap()
            })
        };
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let waiting: Vec<i32> = loop {
            let pids: Vec<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            )
            .bind(&name)
            .fetch_all(&mut admin)
            .await
            .unwrap();
            if !pids.is_empty() {
                break pids;
            }
            assert!(
                Instant::now() < deadline,
                "the update never waited on the lock"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        for pid in waiting {
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(&mut admin)
                .await
                .unwrap();
        }
        assert_unavailable("a session terminated mid-query", &blocked.await.unwrap());
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        holder.close().await.unwrap();
        admin.close().await.unwrap();
    }
    let r = api
        .get(&format!("/oauth_clients/{}", probes.client.0))
        .await
        .unwrap();
    assert_eq!(
        r.body["data"]["name"], "Probe, renamed",
        "the update did not happen"
    );
    server.stop().await;
}

/// SQLite has no network to lose. Its outage is another process holding the write lock (a
/// backup, a migration, a `sqlite3` shell): writes wait for the busy timeout and then answer
/// 503, reads keep working (WAL), and the server carries on once the lock is released.
#[tokio::test]
async fn sqlite_locked_by_another_process_gives_503_on_writes_only() {
    let db = FreshDb::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "oauth.toml", "");
    let server = Server::start(&db.url, &config).await;
    let api = Api::new(&server, server.api_key.as_deref().unwrap());
    let register =
        || async {
            api.send(api.http.post(api.at("/oauth/register")).json(
                &json!({"client_name": "Registered", "redirect_uris": ["https://r.example/cb"]}),
            ))
            .await
            .unwrap()
        };
    assert_eq!(register().await.status, 201);
    // Registered clients are third parties, listed by no member: count them in the database.
    let registered =
        || db.scalar("SELECT COUNT(*) FROM oauth_clients WHERE origin = 'registration'");
    // The API key's first use records it (a write, then at most once a minute), and a client
    // of the admin's own: done here, so that the reads below are reads only.
    let r = api
        .post_json(
            "/oauth_clients",
            &json!({"name": "Own", "client_type": "confidential",
                    "allowed_grant_types": ["client_credentials"], "allowed_scopes": ["admin"]}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text);

    let holder = db.open_sqlite();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_unavailable("POST /oauth/register while locked", &register().await);
    let r = api.get("/oauth_clients").await.unwrap();
    assert_eq!(r.status, 200, "reads go on: {}", r.text);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(registered().await, 1);
    assert_eq!(api.get("/readyz").await.unwrap().status, 200);
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);

    let r = register().await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        registered().await,
        2,
        "the refused registration left nothing behind"
    );
    server.stop().await;
}
