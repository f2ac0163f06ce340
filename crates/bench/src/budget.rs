//! `--cpu-budget`: each instance of our server in a control group of its own whose CPU time is
//! capped (the kernel's CFS bandwidth control), as if each had a machine of that size to itself.
//!
//! On a machine with fewer cores than the run has processes (instances, PostgreSQL, the load
//! generator), two instances share what one already used, and a two-instance run measures the
//! machine. With a budget per instance well under one core, each instance gets the same CPU
//! whether it runs alone or beside another, and what is left over is the database's and the
//! load's: the ratio then measures what the instances cost one another through the database.
//!
//! Control groups are written through their file system (no `unsafe`, no library): version 2
//! (`cpu.max`) where the `cpu` controller is there, otherwise version 1 (`cpu.cfs_quota_us`).
//! Writing them needs root.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

/// The CFS period the quota is a share of: a tenth of the kernel's default, so that a held
/// instance waits at most a few milliseconds for its next share (the p99 stays a latency).
const PERIOD_US: u64 = 10_000;

/// The smallest and largest budget the option takes, in cores.
const MIN_CORES: f64 = 0.05;
const MAX_CORES: f64 = 64.0;

/// Refuses a budget out of range (or not a number).
pub fn check(cores: f64) -> anyhow::Result<()> {
    if !(MIN_CORES..=MAX_CORES).contains(&cores) {
        bail!("--cpu-budget must be between {MIN_CORES} and {MAX_CORES} cores");
    }
    Ok(())
}

/// Where a version of the control groups keeps its `cpu` controller.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hierarchy {
    /// cgroup v2: `cpu.max` in a group under this directory.
    V2(PathBuf),
    /// cgroup v1: `cpu.cfs_period_us` and `cpu.cfs_quota_us` in a group under this directory.
    V1(PathBuf),
}

impl Hierarchy {
    fn find() -> anyhow::Result<Self> {
        let v2 = Path::new("/sys/fs/cgroup");
        let controllers =
            std::fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "cpu") {
            return Ok(Self::V2(v2.to_path_buf()));
        }
        for dir in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"] {
            let dir = Path::new(dir);
            if dir.join("cpu.cfs_quota_us").is_file() {
                return Ok(Self::V1(dir.to_path_buf()));
            }
        }
        bail!("--cpu-budget needs the cgroup cpu controller (cgroup v2 with `cpu`, or v1 mounted at /sys/fs/cgroup/cpu)")
    }
}

/// A control group holding one server's process, with its quota. Removed when dropped (once
/// its process has exited).
#[derive(Debug)]
pub struct Group {
    dir: PathBuf,
}

impl Group {
    /// Creates the group `name` with a quota of `cores` CPUs per period.
    pub fn create(name: &str, cores: f64) -> anyhow::Result<Self> {
        check(cores)?;
        let quota_us = quota_us(cores);
        let hierarchy = Hierarchy::find()?;
        let (root, files): (&Path, Vec<(&str, String)>) = match &hierarchy {
            Hierarchy::V2(root) => {
                // The root passes `cpu` to its children only when told to; writing it again is
                // harmless.
                std::fs::write(root.join("cgroup.subtree_control"), "+cpu").with_context(|| {
                    format!(
                        "enabling the cpu controller in {} (needs root)",
                        root.display()
                    )
                })?;
                (root, vec![("cpu.max", format!("{quota_us} {PERIOD_US}"))])
            }
            Hierarchy::V1(root) => (
                root,
                vec![
                    ("cpu.cfs_period_us", PERIOD_US.to_string()),
                    ("cpu.cfs_quota_us", quota_us.to_string()),
                ],
            ),
        };
        let dir = root.join(name);
        std::fs::create_dir(&dir).with_context(|| {
            format!("creating the control group {} (needs root)", dir.display())
        })?;
        let group = Self { dir };
        for (file, value) in files {
            std::fs::write(group.dir.join(file), &value).with_context(|| {
                format!("writing {value:?} to {}", group.dir.join(file).display())
            })?;
        }
        Ok(group)
    }

    /// Moves process `pid` (all its threads) into the group, and checks that the kernel says
    /// it is there.
    pub fn add(&self, pid: u32) -> anyhow::Result<()> {
        let procs = self.dir.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string())
            .with_context(|| format!("moving process {pid} into {}", procs.display()))?;
        let name = self
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .with_context(|| format!("reading the control groups of process {pid}"))?;
        if !in_group(&membership, name) {
            bail!("process {pid} is not in the control group {name} after being moved there");
        }
        Ok(())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // A group can be removed once its processes have exited; a killed server takes a
        // moment.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "warning: could not remove the control group {}",
            self.dir.display()
        );
    }
}

/// Whether a `/proc/<pid>/cgroup` text puts the process in a group named `name`, under either
/// version (`0::/name` or `4:cpu:/name`).
fn in_group(membership: &str, name: &str) -> bool {
    membership.lines().any(|line| {
        let mut fields = line.splitn(3, ':');
        let controllers = fields.nth(1).unwrap_or_default();
        let path = fields.next().unwrap_or_default();
        let cpu = controllers.is_empty() || controllers.split(',').any(|c| c == "cpu");
        cpu && path.rsplit('/').next() == Some(name)
    })
}

/// The quota of `cores` CPUs per `PERIOD_US`, at least the kernel's minimum of 1 ms.
fn quota_us(cores: f64) -> u64 {
    ((cores * PERIOD_US as f64).round() as u64).max(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_a_share_of_the_period() {
        assert_eq!(quota_us(0.25), 2_500);
        assert_eq!(quota_us(1.5), 15_000);
        // Below the kernel's 1 ms minimum, the minimum.
        assert_eq!(quota_us(0.001), 1_000);
    }

    #[test]
    fn membership_is_read_from_either_version() {
        let v1 = "4:memory:/other\n1:cpu:/oauth-bench-7-introspect-1\n0::/\n";
        assert!(in_group(v1, "oauth-bench-7-introspect-1"));
        assert!(!in_group(v1, "other"), "a memory group is not a cpu group");
        assert!(in_group(
            "0::/oauth-bench-7-introspect-2\n",
            "oauth-bench-7-introspect-2"
        ));
        assert!(!in_group(
            "0::/oauth-bench-7-introspect-2\n",
            "oauth-bench-7-introspect-1"
        ));
        assert!(in_group("2:cpu,cpuacct:/x\n", "x"));
    }

    #[test]
    fn a_budget_out_of_range_is_refused_before_anything_is_written() {
        let err = Group::create("oauth-bench-never", 0.0).unwrap_err();
        assert!(err.to_string().contains("between"), "{err:#}");
        let err = Group::create("oauth-bench-never", 1000.0).unwrap_err();
        assert!(err.to_string().contains("between"), "{err:#}");
        assert!(check(f64::NAN).is_err());
        assert!(check(0.5).is_ok());
    }
}
