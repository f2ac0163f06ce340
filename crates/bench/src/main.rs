//! `oauth-bench`: starts oauth-server (and node-oidc-provider as a peer) on 127.0.0.1, seeds
//! them, puts each scenario under keep-alive HTTP load for a bounded time and reports
//! throughput, latency, errors, server CPU and memory. See BENCHMARKS.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

mod budget;
mod load;
mod procfs;
mod report;
mod run;
mod scenarios;
mod target;
mod wrk;

#[derive(Debug, Parser)]
#[command(
    name = "oauth-bench",
    about = "Benchmarks oauth-server against node-oidc-provider on 127.0.0.1"
)]
pub struct Args {
    /// A scenario name, or `all`.
    pub scenario: String,
    /// Seconds of measured load per scenario and server (at most 120).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Concurrent keep-alive connections (default: the scenario's own).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The oauth-server binary [default: target/release/oauth-server; build it first with
    /// `cargo build --release -p oauth-server`].
    #[arg(long)]
    pub server: Option<PathBuf>,
    /// Run on PostgreSQL: a URL whose user may create databases (a fresh one per server start,
    /// dropped after).
    #[arg(long)]
    pub postgres: Option<String>,
    /// A quick check of the harness: 1 s per scenario, 2 connections, exit non-zero on any
    /// error; the peer only with --peer.
    #[arg(long)]
    pub smoke: bool,
    /// Run the node-oidc-provider side in a smoke pass too.
    #[arg(long)]
    pub peer: bool,
    /// Also run `floor` (a minimal axum server doing the same job: src/bin/floor.rs) where a
    /// scenario has it (healthz, client-credentials-es256), as a yardstick for our own cost.
    #[arg(long)]
    pub floor: bool,
    /// Do not run node-oidc-provider.
    #[arg(long, conflicts_with = "peer")]
    pub no_peer: bool,
    /// Do not pin the server and the load generator to separate CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Run this many instances of our server on one database (needs --postgres), sharing the
    /// server's CPUs; the connections are spread over them in turn.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub instances: u16,
    /// Hold each instance of our server to this many cores (0.05 to 64), in a control group of
    /// its own (needs root and the cgroup cpu controller): a two-instance run then gives each
    /// instance what one gets alone, as separate machines would.
    #[arg(long, value_name = "CORES")]
    pub cpu_budget: Option<f64>,
    /// Load with wrk (one thread, on the load generator's CPUs) instead of the harness's own
    /// generator; scenarios that are not one fixed request are skipped.
    #[arg(long)]
    pub wrk: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // One runtime thread per load-generator CPU: the server gets its own CPU (see procfs::Pinning).
    let machine = procfs::Machine::read();
    let workers = machine.cpus.saturating_sub(1).max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::main(args, machine)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
