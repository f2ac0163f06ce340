//! The servers under test, as child processes: oauth-server on a fresh database (seeded through
//! its admin CLI) and node-oidc-provider. Both listen on 127.0.0.1 with a random port and print
//! one line naming the address once they accept connections. Children are killed when dropped
//! (`kill_on_drop`), so an error, a panic or Ctrl-C never leaves one behind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine as _;
use rand::Rng;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::budget::Group;
use crate::procfs::Pinning;

/// How long a server may take to say it is listening (a debug build migrating PostgreSQL is the
/// slow case).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The email and organization of the benchmark's user (`users create`).
pub const BENCH_EMAIL: &str = "bench@example.com";
pub const BENCH_ORG: &str = "bench";

/// Which implementation a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ours,
    Peer,
    /// `floor` (src/bin/floor.rs): a minimal axum server doing the same job.
    Floor,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Ours => "oauth-server",
            Side::Peer => "oidc-provider",
            Side::Floor => "axum-floor",
        }
    }
}

/// A running server and what the scenarios need to talk to it.
pub struct Target {
    pub side: Side,
    pub addr: SocketAddr,
    pub pid: u32,
    /// Ours: an API key of the benchmark user.
    pub api_key: String,
    /// The peer: its statically configured confidential client.
    pub peer_client: Option<(String, String)>,
    /// For seeding (not for the load).
    pub http: reqwest::Client,
    pub smoke: bool,
    child: Child,
    log: PathBuf,
    /// Further instances of our server on the same database (`--instances`).
    more: Vec<Instance>,
    /// The first instance's control group (`--cpu-budget`), removed after the child is gone.
    group: Option<Group>,
}

/// A further instance: the same server, settings and database as the target's first.
struct Instance {
    addr: SocketAddr,
    pid: u32,
    child: Child,
    group: Option<Group>,
}

impl Target {
    /// Every instance's address, the first instance's first.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(self.addr)
            .chain(self.more.iter().map(|i| i.addr))
            .collect()
    }

    /// Every instance's process id, the first instance's first.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.pid)
            .chain(self.more.iter().map(|i| i.pid))
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's stderr so far (for error messages).
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Stops the server (SIGKILL: nothing it holds outlives the run).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        for i in &mut self.more {
            let _ = i.child.start_kill();
        }
        let _ = self.child.wait().await;
        for i in &mut self.more {
            let _ = i.child.wait().await;
        }
        // The processes are gone: their control groups can go too.
        drop(self.group.take());
        for i in &mut self.more {
            drop(i.group.take());
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Where our server's databases come from.
pub struct Databases {
    dir: tempfile::TempDir,
    /// A PostgreSQL URL whose user may create databases; SQLite files otherwise.
    postgres: Option<String>,
    created: Mutex<Vec<String>>,
}

impl Databases {
    pub fn new(postgres: Option<String>) -> anyhow::Result<Self> {
        Ok(Self {
            dir: tempfile::Builder::new()
                .prefix("oauth-bench-")
                .tempdir()
                .context("creating a temporary directory")?,
            postgres,
            created: Mutex::new(Vec::new()),
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn engine(&self) -> &'static str {
        if self.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// The URL of a new, empty database.
    pub async fn fresh(&self, label: &str) -> anyhow::Result<String> {
        let suffix: u32 = rand::thread_rng().gen();
        let name = format!("oauth_bench_{}_{suffix:08x}", label.replace('-', "_"));
        match &self.postgres {
            None => Ok(format!(
                "sqlite://{}",
                self.dir.path().join(format!("{name}.db")).display()
            )),
            Some(admin) => {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(admin)
                    .await
                    .context("connecting to PostgreSQL (--postgres)")?;
                // The name is ours (letters, digits, underscores), not input.
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .with_context(|| format!("creating database {name}"))?;
                let _ = conn.close().await;
                if let Ok(mut c) = self.created.lock() {
                    c.push(name.clone());
                }
                let mut url = url::Url::parse(admin).context("--postgres is not a URL")?;
                url.set_path(&format!("/{name}"));
                Ok(url.to_string())
            }
        }
    }

    /// Drops every PostgreSQL database this run created.
    pub async fn drop_all(&self) {
        let Some(admin) = &self.postgres else { return };
        let names = self
            .created
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        if names.is_empty() {
            return;
        }
        use sqlx::Connection as _;
        let Ok(mut conn) = sqlx::PgConnection::connect(admin).await else {
            eprintln!("warning: could not connect to drop the databases {names:?}");
            return;
        };
        for name in names {
            // WITH (FORCE): a killed server's sessions may not be gone yet (PostgreSQL 13+).
            if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
            {
                eprintln!("warning: could not drop database {name}: {e}");
            }
        }
        let _ = conn.close().await;
    }
}

#[derive(Deserialize)]
struct CreatedKey {
    api_key: String,
}

/// `[rate_limits]` with every limit off (`requests = 0`), no cap on connections per client
/// address (every connection of the load generator comes from 127.0.0.1, as behind a proxy),
/// and room for the clients `clients-create` makes in one organization.
const NO_RATE_LIMITS: &str = "max_clients_per_organization = 1000000

[server]
max_connections_per_ip = 0

[rate_limits]
management_per_key = { requests = 0, window_secs = 0 }
management_per_ip = { requests = 0, window_secs = 0 }
oauth_per_client = { requests = 0, window_secs = 0 }
register_per_ip = { requests = 0, window_secs = 0 }
register_per_ip_daily = { requests = 0, window_secs = 0 }
documents_per_ip = { requests = 0, window_secs = 0 }
login_per_ip = { requests = 0, window_secs = 0 }
client_auth_failures_per_ip = { requests = 0, window_secs = 0 }
client_auth_failures_per_client_ip = { requests = 0, window_secs = 0 }
authorize_per_ip = { requests = 0, window_secs = 0 }
";

/// Starts oauth-server on a fresh database with the benchmark user and an API key (made by the
/// admin CLI before the server starts, so no bootstrap admin is created). `env` adds `OAUTH_*`
/// settings for the scenario. `instances` servers share the database, started one after the
/// other (each runs the migrations, which the first has applied).
pub async fn start_ours(
    bin: &Path,
    dbs: &Databases,
    label: &str,
    env: &[(&str, &str)],
    pinning: &Pinning,
    smoke: bool,
    instances: u16,
) -> anyhow::Result<Target> {
    let database_url = dbs.fresh(label).await?;
    // Encrypts the signing keys at rest; required on PostgreSQL. Random per server: the database
    // does not outlive it.
    let kek =
        base64::engine::general_purpose::STANDARD.encode(rand::thread_rng().gen::<[u8; 32]>());
    let admin = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.args(args)
            .arg("--json")
            .env("OAUTH_DATABASE_URL", &database_url)
            .env("OAUTH_KEY_ENCRYPTION_KEY", &kek)
            .env("OAUTH_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    };
    let out = admin(&[
        "users",
        "create",
        "--email",
        BENCH_EMAIL,
        "--org",
        BENCH_ORG,
    ])
    .output()
    .await
    .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "users create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = admin(&["api-keys", "create", "--email", BENCH_EMAIL])
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "api-keys create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let key: CreatedKey =
        serde_json::from_slice(&out.stdout).context("api-keys create --json output")?;

    // The benchmark drives one client and one key far past the default per-instance rate
    // limits, which would turn the measurement into one of 429s: they are off here.
    let config = dbs.dir().join(format!("{label}.toml"));
    std::fs::write(&config, NO_RATE_LIMITS)
        .with_context(|| format!("writing {}", config.display()))?;
    let serve = || {
        let mut cmd = pinning.server_command(bin);
        cmd.arg("serve")
            .env("OAUTH_CONFIG", &config)
            .env("OAUTH_DATABASE_URL", &database_url)
            .env("OAUTH_KEY_ENCRYPTION_KEY", &kek)
            .env("OAUTH_BIND", "127.0.0.1:0")
            .env("OAUTH_REGISTRATION_ORG", BENCH_ORG);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    };
    let log = dbs.dir().join(format!("{label}.server.log"));
    let (child, addr) = spawn_listening(serve(), &log, "oauth-server listening on ").await?;
    let pid = child.id().context("server pid")?;
    // Unique per run and instance: several harnesses may run at once.
    let group_name = |n: u16| format!("oauth-bench-{}-{label}-{n}", std::process::id());
    let group = pinning.confine(&group_name(1), pid)?;
    let mut more = Vec::new();
    for n in 2..=instances {
        let log = dbs.dir().join(format!("{label}.server{n}.log"));
        // One issuer for all, as behind one public name: a token any instance issued names
        // the first's address, and every instance must accept it.
        let mut cmd = serve();
        cmd.env("OAUTH_ISSUER", format!("http://{addr}"));
        let (child, addr) = spawn_listening(cmd, &log, "oauth-server listening on ").await?;
        let pid = child.id().context("server pid")?;
        let group = pinning.confine(&group_name(n), pid)?;
        more.push(Instance {
            addr,
            pid,
            child,
            group,
        });
    }
    Ok(Target {
        side: Side::Ours,
        addr,
        pid,
        api_key: key.api_key,
        peer_client: None,
        http: seeding_client()?,
        smoke,
        child,
        log,
        more,
        group,
    })
}

/// `npm ci` in the peer's folder (its package-lock.json pins oidc-provider).
pub async fn install_peer(dir: &Path) -> anyhow::Result<()> {
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running npm ci (is Node.js installed?)")?;
    if !out.status.success() {
        bail!(
            "npm ci in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Starts node-oidc-provider (`provider.js` in `dir`) with a fresh in-memory state.
pub async fn start_peer(
    dir: &Path,
    log_dir: &Path,
    label: &str,
    pinning: &Pinning,
    smoke: bool,
) -> anyhow::Result<Target> {
    let log = log_dir.join(format!("{label}.peer.log"));
    let mut cmd = pinning.server_command(Path::new("node"));
    cmd.arg("provider.js")
        .current_dir(dir)
        .env("NODE_ENV", "production");
    start_with_client(Side::Peer, cmd, log, "oidc-provider listening on ", smoke).await
}

/// Starts `floor`, the minimal axum server built beside this harness (`cargo build [--release]
/// -p oauth-bench --bins`; `cargo run` builds the harness alone), with a client of its own.
pub async fn start_floor(
    log_dir: &Path,
    label: &str,
    pinning: &Pinning,
    smoke: bool,
) -> anyhow::Result<Target> {
    let bin = std::env::current_exe()
        .context("finding this harness's binary")?
        .with_file_name("floor");
    if !bin.is_file() {
        bail!(
            "no floor binary at {}: build it with `cargo build -p oauth-bench --bins` (with `--release` for a release harness)",
            bin.display()
        );
    }
    let log = log_dir.join(format!("{label}.floor.log"));
    let cmd = pinning.server_command(&bin);
    start_with_client(Side::Floor, cmd, log, "floor listening on ", smoke).await
}

/// Starts a server (the peer or the floor) whose one client comes from `BENCH_CLIENT_ID` and
/// `BENCH_CLIENT_SECRET`, and waits for its `<ready><addr>` line.
async fn start_with_client(
    side: Side,
    mut cmd: Command,
    log: PathBuf,
    ready: &str,
    smoke: bool,
) -> anyhow::Result<Target> {
    // Hexadecimal: form-encoding leaves it alone, as the floor expects.
    let client_id = "bench".to_owned();
    let client_secret = format!("{:032x}", rand::thread_rng().gen::<u128>());
    cmd.env("BENCH_CLIENT_ID", &client_id)
        .env("BENCH_CLIENT_SECRET", &client_secret);
    let (child, addr) = spawn_listening(cmd, &log, ready).await?;
    Ok(Target {
        side,
        addr,
        pid: child.id().context("server pid")?,
        api_key: String::new(),
        peer_client: Some((client_id, client_secret)),
        http: seeding_client()?,
        smoke,
        child,
        log,
        more: Vec::new(),
        group: None,
    })
}

fn seeding_client() -> anyhow::Result<reqwest::Client> {
    // Never through a proxy from the environment: the load stays on 127.0.0.1.
    Ok(reqwest::Client::builder().no_proxy().build()?)
}

/// Spawns `cmd` (stderr to `log`, stdout read until the line `<prefix><addr>`), then keeps
/// draining stdout so the child never blocks on a full pipe.
async fn spawn_listening(
    mut cmd: Command,
    log: &Path,
    prefix: &str,
) -> anyhow::Result<(Child, SocketAddr)> {
    let stderr =
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("starting the server")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let found = tokio::time::timeout(START_TIMEOUT, wait_for_line(stdout, prefix)).await;
    match found {
        Ok(Ok(addr)) => Ok((child, addr)),
        Ok(Err(e)) => {
            let _ = child.start_kill();
            bail!("{e}; its stderr:\n{}", tail(log))
        }
        Err(_) => {
            let _ = child.start_kill();
            bail!(
                "the server did not start within {}s; its stderr:\n{}",
                START_TIMEOUT.as_secs(),
                tail(log)
            )
        }
    }
}

async fn wait_for_line(stdout: ChildStdout, prefix: &str) -> anyhow::Result<SocketAddr> {
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix(prefix) {
            let addr = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .parse::<SocketAddr>()
                .with_context(|| format!("unexpected line {line:?}"))?;
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(addr);
        }
    }
    bail!("the server exited before it was listening")
}

/// The default server binary: `target/release/oauth-server` of this workspace.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}
