//! One benchmark run: choose the scenarios, build or find the server, install the peer, then for
//! each scenario and side start a fresh server, prepare, load, measure and stop it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::load::{self, LoadSpec, Operation};
use crate::procfs::{self, Machine, Pinning};
use crate::report::{Measurement, Outcome, Report, ScenarioResult, Settings, SideResult};
use crate::scenarios::{self, Plan, Scenario};
use crate::target::{self, Databases, Side, Target};
use crate::Args;

/// The longest measured window a scenario may ask for.
const MAX_DURATION_S: u64 = 120;

struct Ctx {
    bin: PathBuf,
    peer_dir: Option<PathBuf>,
    dbs: Databases,
    pinning: Pinning,
    smoke: bool,
    connections: Option<usize>,
    warmup: Duration,
    duration: Duration,
    ticks_per_second: f64,
    instances: u16,
    floor: bool,
    wrk: bool,
}

pub async fn main(args: Args, machine: Machine) -> anyhow::Result<ExitCode> {
    let selected: Vec<&'static Scenario> = if args.scenario == "all" {
        scenarios::SCENARIOS.iter().collect()
    } else {
        match scenarios::find(&args.scenario) {
            Some(s) => vec![s],
            None => bail!(
                "unknown scenario {:?}; the scenarios are: all, {}",
                args.scenario,
                scenarios::names().join(", ")
            ),
        }
    };
    let (warmup, duration) = if args.smoke {
        (Duration::from_millis(200), Duration::from_secs(1))
    } else {
        (
            Duration::from_secs(1),
            Duration::from_secs(args.duration.clamp(1, MAX_DURATION_S)),
        )
    };
    // wrk counts whole seconds, at least one per run.
    let warmup = if args.wrk {
        warmup.max(Duration::from_secs(1))
    } else {
        warmup
    };
    let connections = if args.smoke {
        Some(2)
    } else {
        args.connections.map(|c| c.clamp(1, 1024))
    };

    if args.instances > 1 && args.postgres.is_none() {
        bail!("--instances {} needs --postgres: instances share one database, and SQLite is one instance's", args.instances);
    }
    if args.wrk {
        if args.instances > 1 {
            bail!("--wrk loads one address: it does not take --instances");
        }
        if !crate::wrk::available() {
            bail!("--wrk needs wrk on the path (apt-get install wrk)");
        }
    }
    let mut pinning = Pinning::plan(machine.cpus, args.no_pin);
    if let Some(cores) = args.cpu_budget {
        crate::budget::check(cores)?;
        pinning.cpu_budget = Some(cores);
        pinning.note = format!(
            "{}; each instance of ours held to {cores} cores",
            pinning.note
        );
    }
    if let Err(e) = pinning.pin_self() {
        eprintln!("warning: {e:#}");
    }

    let root = target::workspace_root();
    // The harness builds nothing: a cargo child inherits `cargo run`'s environment and may
    // rebuild the dependency tree with other settings. `cargo build --release -p oauth-server`
    // comes first.
    let bin = match &args.server {
        Some(p) => p.clone(),
        None => root.join("target/release/oauth-server"),
    };
    if !bin.is_file() {
        bail!(
            "no server binary at {}: run `cargo build --release -p oauth-server` first, or pass --server PATH",
            bin.display()
        );
    }
    let run_peer = !args.no_peer && (!args.smoke || args.peer);
    let peer_dir = if run_peer {
        let dir = root.join("bench/oidc-provider");
        eprintln!("== npm ci in {}", dir.display());
        target::install_peer(&dir).await?;
        Some(dir)
    } else {
        None
    };

    let ctx = Ctx {
        bin,
        peer_dir,
        dbs: Databases::new(args.postgres.clone())?,
        pinning,
        smoke: args.smoke,
        connections,
        warmup,
        duration,
        ticks_per_second: procfs::ticks_per_second(),
        instances: args.instances,
        floor: args.floor,
        wrk: args.wrk,
    };
    eprintln!(
        "== {} scenario(s), {} s each after {} ms warm-up, on {} ({} instance(s) of ours), load from {}; {}",
        selected.len(),
        duration.as_secs(),
        warmup.as_millis(),
        ctx.dbs.engine(),
        ctx.instances,
        ctx.load_generator(),
        ctx.pinning.note
    );

    // Ctrl-C drops the run: every child is killed on drop; the databases are dropped below.
    let results = tokio::select! {
        r = run_all(&ctx, &selected) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    ctx.dbs.drop_all().await;
    let Some(results) = results else {
        bail!("interrupted");
    };

    let report = Report {
        machine,
        settings: Settings {
            duration_s: duration.as_secs_f64(),
            warmup_s: warmup.as_secs_f64(),
            database: ctx.dbs.engine(),
            instances: ctx.instances,
            load_generator: ctx.load_generator(),
            server_binary: ctx.bin.display().to_string(),
            smoke: ctx.smoke,
            pinning: ctx.pinning.clone(),
        },
        results,
    };
    let m = &report.machine;
    println!(
        "\nMachine: {} CPUs, {}, {} MiB, Linux {}. Database: {}, {} instance(s) of ours. Load from {}. {}.\n",
        m.cpus,
        m.cpu_model,
        m.memory_mib,
        m.kernel,
        report.settings.database,
        report.settings.instances,
        report.settings.load_generator,
        report.settings.pinning.note
    );
    println!("{}", report.table());
    let notes = report.notes();
    if !notes.is_empty() {
        println!("{notes}");
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    let errors = report.errors();
    if errors > 0 {
        eprintln!("{errors} error(s): every request must succeed");
        return Ok(ExitCode::FAILURE);
    }
    if args.wrk && report.measured() == 0 {
        eprintln!("--wrk measured nothing: no selected scenario repeats one fixed request");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_all(ctx: &Ctx, selected: &[&'static Scenario]) -> Vec<ScenarioResult> {
    let mut results = Vec::new();
    for s in selected {
        let ours = run_side(ctx, s, Side::Ours).await;
        let peer = run_side(ctx, s, Side::Peer).await;
        let mut result = ScenarioResult::new(s.name, s.about, ours, peer);
        if ctx.floor && matches!(s.floor, Plan::Run(_)) {
            result.floor = Some(run_side(ctx, s, Side::Floor).await);
        }
        results.push(result);
    }
    results
}

async fn run_side(ctx: &Ctx, s: &'static Scenario, side: Side) -> SideResult {
    let (plan, note) = match side {
        Side::Ours => (&s.ours, None),
        Side::Peer => (&s.peer, s.peer_note),
        Side::Floor => (&s.floor, None),
    };
    let outcome = match plan {
        Plan::NotApplicable => Outcome::NotApplicable,
        Plan::Run(prepare) => {
            if side == Side::Peer && ctx.peer_dir.is_none() {
                Outcome::Skipped {
                    reason: "peer not run (smoke pass without --peer, or --no-peer)".to_owned(),
                }
            } else {
                eprintln!("-- {} on {}", s.name, side.label());
                match measure(ctx, s, side, *prepare).await {
                    Ok(m) => {
                        eprintln!(
                            "   {:.0} req/s, p99 {:.2} ms, {} errors, {:.1} µs server CPU per request{}",
                            m.throughput_per_s,
                            m.p99_ms,
                            m.errors,
                            m.server_cpu_us_per_request,
                            m.database_cpu_us_per_request
                                .map(|db| format!(", {db:.1} µs PostgreSQL CPU"))
                                .unwrap_or_default()
                        );
                        Outcome::Measured(m)
                    }
                    Err(e) if e.is::<crate::wrk::NotFixed>() => {
                        eprintln!("   skipped: {e}");
                        Outcome::Skipped {
                            reason: e.to_string(),
                        }
                    }
                    Err(e) => {
                        eprintln!("   failed: {e:#}");
                        Outcome::Failed {
                            error: format!("{e:#}"),
                        }
                    }
                }
            }
        }
    };
    SideResult {
        server: side.label(),
        outcome,
        note,
    }
}

async fn measure(
    ctx: &Ctx,
    s: &'static Scenario,
    side: Side,
    prepare: scenarios::Prepare,
) -> anyhow::Result<Measurement> {
    let target = match side {
        Side::Ours => {
            target::start_ours(
                &ctx.bin,
                &ctx.dbs,
                s.name,
                s.server_env,
                &ctx.pinning,
                ctx.smoke,
                ctx.instances,
            )
            .await?
        }
        Side::Peer => {
            let dir = ctx.peer_dir.as_deref().context("no peer")?;
            target::start_peer(dir, ctx.dbs.dir(), s.name, &ctx.pinning, ctx.smoke).await?
        }
        Side::Floor => target::start_floor(ctx.dbs.dir(), s.name, &ctx.pinning, ctx.smoke).await?,
    };
    let database_cpu = side == Side::Ours && ctx.dbs.engine() == "postgres";
    let result = measure_target(ctx, s, &target, prepare, database_cpu).await;
    let result = result.map_err(|e| {
        if e.is::<crate::wrk::NotFixed>() {
            e
        } else {
            anyhow::anyhow!("{e:#}\nserver log:\n{}", target.log_tail())
        }
    });
    target.stop().await;
    result
}

async fn measure_target(
    ctx: &Ctx,
    s: &'static Scenario,
    target: &Target,
    prepare: scenarios::Prepare,
    database_cpu: bool,
) -> anyhow::Result<Measurement> {
    let pids = target.pids();
    let idle_kib = largest(&pids, "VmRSS")?;
    let op: Arc<dyn Operation> = prepare(target).await.context("preparing")?;
    let fixed = if ctx.wrk {
        Some(op.fixed().await.ok_or(crate::wrk::NotFixed)?)
    } else {
        None
    };
    for &pid in &pids {
        procfs::reset_peak_rss(pid);
    }
    let connections = ctx.connections.unwrap_or(s.connections);
    let spec = LoadSpec {
        addrs: target.addrs(),
        connections,
        warmup: ctx.warmup,
        duration: ctx.duration,
    };
    let mut window = CpuWindow {
        pids: pids.clone(),
        ticks_per_second: ctx.ticks_per_second,
        start: None,
        end: None,
        database: database_cpu.then(DatabaseCpu::default),
    };
    // Seeding is done: the load starts now (scripts/count-instructions waits for this line).
    eprintln!(
        "   load: {connections} connection(s), {} ms warm-up, {} s measured",
        ctx.warmup.as_millis(),
        ctx.duration.as_secs()
    );
    let outcome = match &fixed {
        Some(req) => {
            let addr = spec.addrs.first().context("no server address")?;
            let url = format!("http://{addr}");
            crate::wrk::run(
                req,
                &url,
                ctx.dbs.dir(),
                connections,
                ctx.warmup,
                ctx.duration,
                &mut window,
            )
            .await?
        }
        None => load::run(op, spec, &mut window).await?,
    };
    let peak_kib = largest(&pids, "VmHWM")?;
    let cpu = match (window.start, window.end) {
        (Some(a), Some(b)) => b - a,
        _ => bail!("could not read the server's CPU time"),
    };
    let ops = outcome.ops;
    if ops == 0 {
        bail!(
            "no request completed in the measured window ({} error(s): {:?})",
            outcome.errors,
            outcome.error_samples
        );
    }
    Ok(Measurement {
        connections,
        requests: ops,
        throughput_per_s: outcome.throughput(),
        p50_ms: outcome.p50_ms(),
        p99_ms: outcome.p99_ms(),
        errors: outcome.errors,
        error_samples: outcome.error_samples,
        server_cpu_s: cpu,
        server_cpu_us_per_request: if ops > 0 { cpu * 1e6 / ops as f64 } else { 0.0 },
        database_cpu_us_per_request: window
            .database
            .as_ref()
            .and_then(DatabaseCpu::seconds)
            .filter(|_| ops > 0)
            .map(|db| db * 1e6 / ops as f64),
        peak_rss_mib: peak_kib as f64 / 1024.0,
        idle_rss_mib: idle_kib as f64 / 1024.0,
    })
}

/// The largest `key` (a `/proc/<pid>/status` size) of the processes.
fn largest(pids: &[u32], key: &str) -> anyhow::Result<u64> {
    let mut most = 0;
    for &pid in pids {
        most = most.max(procfs::status_kib(pid, key)?);
    }
    Ok(most)
}

impl Ctx {
    fn load_generator(&self) -> &'static str {
        if self.wrk {
            "wrk (one thread)"
        } else {
            "oauth-bench's generator"
        }
    }
}

/// Samples the server's CPU time (every instance's, summed) at the edges of the measured
/// window, and PostgreSQL's when it is the database.
struct CpuWindow {
    pids: Vec<u32>,
    ticks_per_second: f64,
    start: Option<f64>,
    end: Option<f64>,
    database: Option<DatabaseCpu>,
}

/// CPU time of PostgreSQL's processes on this machine, by pid at the window's start and summed
/// at its end. A process started inside the window (a connection the pool opened late) counts
/// from zero; one that ended inside it is not counted.
#[derive(Default)]
struct DatabaseCpu {
    start: std::collections::HashMap<u32, f64>,
    used: Option<f64>,
}

impl DatabaseCpu {
    fn sample(ticks_per_second: f64) -> std::collections::HashMap<u32, f64> {
        procfs::pids_named("postgres")
            .into_iter()
            .filter_map(|pid| Some((pid, procfs::cpu_seconds(pid, ticks_per_second).ok()?)))
            .collect()
    }

    fn seconds(&self) -> Option<f64> {
        self.used
    }
}

impl CpuWindow {
    fn total(&self) -> Option<f64> {
        self.pids
            .iter()
            .map(|&pid| procfs::cpu_seconds(pid, self.ticks_per_second).ok())
            .sum()
    }
}

impl load::Window for CpuWindow {
    fn start(&mut self) {
        if let Some(db) = &mut self.database {
            db.start = DatabaseCpu::sample(self.ticks_per_second);
        }
        self.start = self.total();
    }
    fn end(&mut self) {
        self.end = self.total();
        if let Some(db) = &mut self.database {
            let end = DatabaseCpu::sample(self.ticks_per_second);
            db.used = (!end.is_empty()).then(|| {
                end.iter()
                    .map(|(pid, t)| t - db.start.get(pid).copied().unwrap_or(0.0))
                    .sum()
            });
        }
    }
}
