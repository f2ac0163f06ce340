//! Results: one row per scenario and side, printed as a table and written as JSON.

use serde::Serialize;

use crate::procfs::{Machine, Pinning};

#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub connections: usize,
    pub requests: u64,
    pub throughput_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
    /// Server CPU (user + system) during the measured window, summed over the instances.
    pub server_cpu_s: f64,
    pub server_cpu_us_per_request: f64,
    /// With `--postgres`: CPU (user + system) of every PostgreSQL process on this machine during
    /// the measured window, per request; none when no such process was found (a database on
    /// another host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_cpu_us_per_request: Option<f64>,
    /// Peak resident memory during warm-up and the measured window (`VmHWM`; the largest
    /// instance's).
    pub peak_rss_mib: f64,
    /// Resident memory right after the server started (`VmRSS`).
    pub idle_rss_mib: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Measured(Measurement),
    /// The side has no such operation.
    NotApplicable,
    /// Not run; why.
    Skipped {
        reason: String,
    },
    /// The run failed before it could measure.
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct SideResult {
    pub server: &'static str,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: &'static str,
    pub about: &'static str,
    pub ours: SideResult,
    pub peer: SideResult,
    /// Throughput ours / peer, when both were measured.
    pub ratio: Option<f64>,
    /// The minimal axum server's side, with `--floor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<SideResult>,
}

impl ScenarioResult {
    pub fn new(
        scenario: &'static str,
        about: &'static str,
        ours: SideResult,
        peer: SideResult,
    ) -> Self {
        let ratio = match (&ours.outcome, &peer.outcome) {
            (Outcome::Measured(a), Outcome::Measured(b)) if b.throughput_per_s > 0.0 => {
                Some(a.throughput_per_s / b.throughput_per_s)
            }
            _ => None,
        };
        Self {
            scenario,
            about,
            ours,
            peer,
            ratio,
            floor: None,
        }
    }

    /// Every side that ran or was considered: ours, the peer, and the floor with `--floor`.
    pub fn sides(&self) -> impl Iterator<Item = &SideResult> {
        [&self.ours, &self.peer].into_iter().chain(&self.floor)
    }

    pub fn errors(&self) -> u64 {
        self.sides()
            .map(|s| match &s.outcome {
                Outcome::Measured(m) => m.errors,
                Outcome::Failed { .. } => 1,
                _ => 0,
            })
            .sum()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub duration_s: f64,
    pub warmup_s: f64,
    pub database: &'static str,
    /// Instances of our server on the one database; CPU is their sum, memory the largest
    /// instance's.
    pub instances: u16,
    /// What sent the load: the harness's own generator, or wrk (`--wrk`).
    pub load_generator: &'static str,
    pub server_binary: String,
    pub smoke: bool,
    pub pinning: Pinning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub results: Vec<ScenarioResult>,
}

impl Report {
    pub fn errors(&self) -> u64 {
        self.results.iter().map(ScenarioResult::errors).sum()
    }

    /// Sides measured, over every scenario.
    pub fn measured(&self) -> usize {
        self.results
            .iter()
            .flat_map(ScenarioResult::sides)
            .filter(|s| matches!(s.outcome, Outcome::Measured(_)))
            .count()
    }

    /// The table (Markdown, so that BENCHMARKS.md can take it as it is).
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| scenario | server | conns | req/s | p50 ms | p99 ms | errors | CPU s | CPU µs/req | peak RSS MiB | idle RSS MiB | ours/theirs |\n",
        );
        out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for r in &self.results {
            let ratio = r
                .ratio
                .map(|x| format!("{x:.2}"))
                .unwrap_or_else(|| "n/a".to_owned());
            let floor = r.floor.iter().map(|f| (f, ""));
            for (side, ratio) in [(&r.ours, ratio.as_str()), (&r.peer, "")]
                .into_iter()
                .chain(floor)
            {
                out.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    r.scenario,
                    side.server,
                    cells(&side.outcome),
                    ratio
                ));
            }
        }
        out
    }

    /// Notes under the table: what differs on the peer, what was skipped, error samples.
    pub fn notes(&self) -> String {
        let mut out = String::new();
        for r in &self.results {
            for side in r.sides() {
                if let (Some(n), Outcome::Measured(_)) = (side.note, &side.outcome) {
                    out.push_str(&format!("- {} on {}: {n}\n", r.scenario, side.server));
                }
                match &side.outcome {
                    Outcome::Skipped { reason } => {
                        out.push_str(&format!(
                            "- {} on {}: skipped: {reason}\n",
                            r.scenario, side.server
                        ));
                    }
                    Outcome::Failed { error } => {
                        out.push_str(&format!(
                            "- {} on {}: FAILED: {error}\n",
                            r.scenario, side.server
                        ));
                    }
                    Outcome::Measured(m) => {
                        if let Some(db) = m.database_cpu_us_per_request {
                            out.push_str(&format!(
                                "- {} on {}: PostgreSQL's processes used {db:.1} µs CPU per request\n",
                                r.scenario, side.server
                            ));
                        }
                        for e in &m.error_samples {
                            out.push_str(&format!(
                                "- {} on {}: error: {e}\n",
                                r.scenario, side.server
                            ));
                        }
                    }
                    Outcome::NotApplicable => {}
                }
            }
        }
        out
    }
}

fn cells(o: &Outcome) -> String {
    match o {
        Outcome::Measured(m) => format!(
            "{} | {:.0} | {:.2} | {:.2} | {} | {:.2} | {:.1} | {:.1} | {:.1}",
            m.connections,
            m.throughput_per_s,
            m.p50_ms,
            m.p99_ms,
            m.errors,
            m.server_cpu_s,
            m.server_cpu_us_per_request,
            m.peak_rss_mib,
            m.idle_rss_mib
        ),
        Outcome::NotApplicable => na_cells("n/a"),
        Outcome::Skipped { .. } => na_cells("skipped"),
        Outcome::Failed { .. } => na_cells("FAILED"),
    }
}

/// The word goes in the throughput column; the others stay empty.
fn na_cells(word: &str) -> String {
    let mut cells = [""; 9];
    cells[1] = word;
    cells.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(throughput: f64, errors: u64) -> SideResult {
        SideResult {
            server: "x",
            outcome: Outcome::Measured(Measurement {
                connections: 2,
                requests: 10,
                throughput_per_s: throughput,
                p50_ms: 1.0,
                p99_ms: 2.0,
                errors,
                error_samples: vec![],
                server_cpu_s: 0.5,
                server_cpu_us_per_request: 50.0,
                database_cpu_us_per_request: None,
                peak_rss_mib: 20.0,
                idle_rss_mib: 10.0,
            }),
            note: None,
        }
    }

    /// A report of one scenario's result.
    fn report_of(r: ScenarioResult) -> Report {
        Report {
            machine: Machine::read(),
            settings: Settings {
                duration_s: 1.0,
                warmup_s: 0.0,
                database: "sqlite",
                instances: 1,
                load_generator: "test",
                server_binary: String::new(),
                smoke: true,
                pinning: Pinning::plan(1, true),
            },
            results: vec![r],
        }
    }

    #[test]
    fn measured_counts_the_sides_that_ran() {
        let skipped = || SideResult {
            server: "x",
            outcome: Outcome::Skipped {
                reason: "not fixed".to_owned(),
            },
            note: None,
        };
        let none = report_of(ScenarioResult::new("a", "", skipped(), skipped()));
        assert_eq!(none.measured(), 0);
        let one = report_of(ScenarioResult::new("a", "", measured(300.0, 0), skipped()));
        assert_eq!(one.measured(), 1);
    }

    #[test]
    fn ratio_only_when_both_sides_ran() {
        let r = ScenarioResult::new("a", "", measured(300.0, 0), measured(100.0, 0));
        assert_eq!(r.ratio, Some(3.0));
        let na = SideResult {
            server: "y",
            outcome: Outcome::NotApplicable,
            note: None,
        };
        let r = ScenarioResult::new("a", "", measured(300.0, 0), na);
        assert_eq!(r.ratio, None);
        assert_eq!(r.errors(), 0);
        let r = ScenarioResult::new("a", "", measured(300.0, 2), measured(1.0, 1));
        assert_eq!(r.errors(), 3);
    }

    #[test]
    fn the_floor_is_a_row_of_its_own_and_counts_its_errors() {
        let mut r = ScenarioResult::new("a", "", measured(300.0, 0), measured(100.0, 0));
        let mut floor = measured(400.0, 2);
        floor.server = "axum-floor";
        r.floor = Some(floor);
        // The ratio stays ours against the peer.
        assert_eq!(r.ratio, Some(3.0));
        assert_eq!(r.errors(), 2);
        let report = report_of(r);
        let table = report.table();
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| a |")).collect();
        assert_eq!(rows.len(), 3, "{table}");
        assert!(
            rows[2].starts_with("| a | axum-floor | 2 | 400 |"),
            "{table}"
        );
    }

    #[test]
    fn table_rows_have_every_column() {
        let na = SideResult {
            server: "y",
            outcome: Outcome::NotApplicable,
            note: None,
        };
        let r = ScenarioResult::new("a", "", measured(300.0, 0), na);
        let report = report_of(r);
        let table = report.table();
        let header_cols = table.lines().next().map(|l| l.matches('|').count());
        for line in table.lines() {
            assert_eq!(Some(line.matches('|').count()), header_cols, "{line}");
        }
    }
}
