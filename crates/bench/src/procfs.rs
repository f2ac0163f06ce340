//! What Linux says about a process (`/proc/<pid>/stat`, `/proc/<pid>/status`) and about the
//! machine, plus CPU pinning through `taskset` (util-linux), so that our crates need no `unsafe`.

use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context};
use serde::Serialize;

/// CPU time a process has used so far (user + system), in seconds.
pub fn cpu_seconds(pid: u32, ticks_per_second: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(parse_cpu_ticks(&stat)? as f64 / ticks_per_second)
}

/// Fields 14 (utime) and 15 (stime) of `/proc/<pid>/stat`, in clock ticks (proc(5)). The second
/// field is the command name in parentheses and may itself hold spaces, so counting starts after
/// the last `)`.
fn parse_cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let Some(close) = stat.rfind(')') else {
        bail!("unexpected /proc/<pid>/stat format");
    };
    // After the `)`, the first field is field 3 (state).
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .context("short /proc/<pid>/stat")?
            .parse::<u64>()
            .context("non-numeric /proc/<pid>/stat field")
    };
    Ok(field(14)? + field(15)?)
}

/// The processes whose command name (`/proc/<pid>/comm`) is `name`: every PostgreSQL process
/// on this machine is `postgres` (the postmaster, one backend per connection, the WAL writer,
/// the checkpointer, ...).
pub fn pids_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .collect()
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_status_kib(&status, key).with_context(|| format!("no {key} in /proc/{pid}/status"))
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Resets the peak resident set size (`VmHWM`) to the current one (proc(5), `clear_refs`
/// value 5), so that a scenario's peak is its own, not the seeding's. False when the kernel
/// refuses.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on every Linux port
/// that does not say otherwise).
pub fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The machine, as BENCHMARKS.md reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_mib: u64,
    pub kernel: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpus = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count()
            .max(1);
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mib = parse_status_kib(&meminfo, "MemTotal").unwrap_or(0) / 1024;
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Self {
            cpus,
            cpu_model,
            memory_mib,
            kernel,
        }
    }
}

/// Which CPUs the server under test and the load generator get.
#[derive(Debug, Clone, Serialize)]
pub struct Pinning {
    /// `taskset -c` list for the server (and the peer), e.g. `1`.
    pub server: Option<String>,
    /// `taskset -c` list for this process (the load generator), e.g. `0`.
    pub load: Option<String>,
    pub note: String,
    /// `--cpu-budget`: the CPUs each instance of our server may use, in cores (a control group
    /// per instance, `crate::budget`).
    pub cpu_budget: Option<f64>,
}

impl Pinning {
    /// The last CPU for the server, the others for the load generator; nothing when there is
    /// one CPU or no `taskset`.
    pub fn plan(cpus: usize, disabled: bool) -> Self {
        let none = |note: &str| Self {
            server: None,
            load: None,
            note: note.to_owned(),
            cpu_budget: None,
        };
        if disabled {
            return none("not pinned (--no-pin)");
        }
        if cpus < 2 {
            return none("not pinned (one CPU)");
        }
        if !taskset_available() {
            return none("not pinned (no taskset)");
        }
        let server = (cpus - 1).to_string();
        let load = if cpus == 2 {
            "0".to_owned()
        } else {
            format!("0-{}", cpus - 2)
        };
        Self {
            note: format!("server on CPU {server}, load generator on CPU {load}"),
            server: Some(server),
            load: Some(load),
            cpu_budget: None,
        }
    }

    /// Holds our server's process `pid` to `--cpu-budget` in a control group of its own named
    /// `name`; nothing without the option.
    pub fn confine(&self, name: &str, pid: u32) -> anyhow::Result<Option<crate::budget::Group>> {
        let Some(cores) = self.cpu_budget else {
            return Ok(None);
        };
        let group = crate::budget::Group::create(name, cores)?;
        group.add(pid)?;
        Ok(Some(group))
    }

    /// Pins every thread of this process (the load generator) to its CPUs.
    pub fn pin_self(&self) -> anyhow::Result<()> {
        let Some(cpus) = &self.load else {
            return Ok(());
        };
        let status = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .context("running taskset")?;
        if !status.success() {
            bail!("taskset could not pin the load generator to CPU {cpus}");
        }
        Ok(())
    }

    /// A command that runs `program` on the server's CPUs (through `taskset`, which execs it:
    /// the child's pid is the program's pid).
    pub fn server_command(&self, program: &Path) -> tokio::process::Command {
        match &self.server {
            Some(cpus) => {
                let mut c = tokio::process::Command::new("taskset");
                c.arg("-c").arg(cpus).arg(program);
                c
            }
            None => tokio::process::Command::new(program),
        }
    }
}

fn taskset_available() -> bool {
    std::process::Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_found_by_command_name() {
        let own = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        let own = own.trim_end();
        assert!(!own.is_empty());
        assert!(pids_named(own).contains(&std::process::id()));
        assert!(pids_named("no-such-command").is_empty());
    }

    #[test]
    fn cpu_ticks_skip_a_command_name_with_spaces() {
        let stat =
            "1234 (oauth server) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 5 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat).ok(), Some(325));
    }

    #[test]
    fn status_lines_in_kib() {
        let status = "Name:\toauth-server\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(20480));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(10240));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid, ticks_per_second()).is_ok());
        assert!(status_kib(pid, "VmRSS").is_ok_and(|kib| kib > 0));
    }

    #[test]
    fn pinning_needs_two_cpus() {
        let p = Pinning::plan(1, false);
        assert!(p.server.is_none() && p.load.is_none());
        let p = Pinning::plan(4, true);
        assert!(p.server.is_none());
    }
}
