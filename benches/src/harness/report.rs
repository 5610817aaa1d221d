//! Results as JSON (for `compare` and for tools) and as a markdown table
//! (for people), with the machine they were measured on.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Result;
use super::engines::DRIFTDB;
use super::stats::{Summary, geometric_mean, millis};

/// One workload run on several engines.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub workload: String,
    pub scale: f64,
    pub runs: usize,
    pub date: String,
    pub machine: Machine,
    pub engines: Vec<String>,
    /// Engine versions the harness learnt (peers in subprocesses).
    pub versions: BTreeMap<String, String>,
    pub queries: Vec<QueryFigures>,
}

/// One query on every engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryFigures {
    pub name: String,
    /// Rows in the answer.
    pub rows: usize,
    /// Engines whose answer matched, with their times.
    pub times: BTreeMap<String, Summary>,
    /// Engines whose answer did not match, and how.
    pub mismatches: BTreeMap<String, String>,
    /// The row this one is measured against on each engine (time travel:
    /// an `AS OF` read against the current state), if any.
    #[serde(default)]
    pub baseline: Option<String>,
}

impl QueryFigures {
    /// A row named `name` with `rows` rows and no times yet.
    pub fn new(name: String, rows: usize) -> Self {
        Self {
            name,
            rows,
            times: BTreeMap::new(),
            mismatches: BTreeMap::new(),
            baseline: None,
        }
    }

    /// Record `engine`'s samples (ms); nothing when there are none.
    pub fn record(&mut self, engine: &str, samples: &[f64]) {
        if let Some(summary) = Summary::of(samples) {
            self.times.insert(engine.to_string(), summary);
        }
    }
}

/// The machine a report was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
}

impl Machine {
    /// This machine, as far as `/proc` tells.
    pub fn current() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let os = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| format!("Linux {}", r.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.into());
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: memory_kib / (1024.0 * 1024.0),
            os,
        }
    }
}

impl Report {
    pub fn new(
        workload: &str,
        scale: f64,
        runs: usize,
        engines: Vec<String>,
        versions: BTreeMap<String, String>,
        queries: Vec<QueryFigures>,
    ) -> Self {
        Self {
            workload: workload.into(),
            scale,
            runs,
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine: Machine::current(),
            engines,
            versions,
            queries,
        }
    }

    /// Queries whose answers differed between engines.
    pub fn mismatches(&self) -> Vec<String> {
        self.queries
            .iter()
            .flat_map(|q| {
                q.mismatches
                    .iter()
                    .map(move |(engine, why)| format!("{} on {engine}: {why}", q.name))
            })
            .collect()
    }

    /// Write `<stem>.json` and `<stem>.md` into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{stem}.json")),
            serde_json::to_vec_pretty(self)?,
        )?;
        std::fs::write(dir.join(format!("{stem}.md")), self.markdown())?;
        Ok(())
    }

    pub fn read(path: &Path) -> Result<Self> {
        Ok(serde_json::from_slice(&std::fs::read(path)?)?)
    }

    /// The report as a markdown page: machine, then one row per query with
    /// each engine's median (min–max) in ms and DriftDB's time as a ratio to each peer.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# {} at scale factor {}\n", self.workload, self.scale);
        let method = if self.is_ingest() {
            "Per commit: median (p50) and p99 latency over every commit of the timed passes, and rows/s at the median; \
             each pass starts from an empty table and its row count is checked afterwards. \
             The ratio compares median latencies"
        } else if self.has_baselines() {
            "Median of the timed runs, min–max in brackets, milliseconds. \
             A time counts only when the engine's answer equals DriftDB's. \
             \"÷ current\" is a read's median over the same engine's current-state read of the same history"
        } else {
            "Median of the timed runs, min–max in brackets, milliseconds. \
             A time counts only when the engine's answer equals DriftDB's"
        };
        let _ = writeln!(
            out,
            "{}; {} cores, {:.0} GiB, {}. {} timed runs after one warm-up. {method}.\n",
            self.date, self.machine.cores, self.machine.memory_gib, self.machine.os, self.runs
        );
        let _ = writeln!(out, "CPU: {}.", self.machine.cpu);
        for (engine, version) in &self.versions {
            let _ = writeln!(out, "{engine} {version}.");
        }
        let peers: Vec<&String> = self.engines.iter().filter(|e| *e != DRIFTDB).collect();
        let (what, unit) = if self.is_ingest() {
            ("scenario | rows per commit", "p50 / p99 ms, rows/s")
        } else {
            ("query | rows", "ms")
        };
        let _ = write!(out, "\n| {what} |");
        for engine in &self.engines {
            let _ = write!(out, " {engine} {unit} |");
        }
        let baseline_columns: &[String] = if self.has_baselines() {
            &self.engines
        } else {
            &[]
        };
        for engine in baseline_columns {
            let _ = write!(out, " {engine} ÷ current |");
        }
        for peer in &peers {
            let _ = write!(out, " DriftDB ÷ {peer} |");
        }
        let _ = write!(out, "\n| --- | --- |");
        for _ in 0..self.engines.len() + baseline_columns.len() + peers.len() {
            let _ = write!(out, " --- |");
        }
        out.push('\n');
        for q in &self.queries {
            let _ = write!(out, "| {} | {} |", q.name, q.rows);
            for engine in &self.engines {
                let cell = match (q.times.get(engine), q.mismatches.get(engine)) {
                    (Some(s), _) if self.is_ingest() => format!(
                        "{} / {}, {:.0}",
                        millis(s.median_ms),
                        millis(s.p99_ms),
                        q.rows as f64 / (s.median_ms / 1e3)
                    ),
                    (Some(s), _) => s.render(),
                    (None, Some(_)) => "answer differs".into(),
                    (None, None) => "—".into(),
                };
                let _ = write!(out, " {cell} |");
            }
            for engine in baseline_columns {
                let cell = self
                    .baseline_ratio(q, engine)
                    .map_or("—".into(), |r| format!("{r:.2}"));
                let _ = write!(out, " {cell} |");
            }
            for peer in &peers {
                let cell = self
                    .ratio(q, peer)
                    .map_or("—".into(), |r| format!("{r:.2}"));
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        if !self.is_ingest() && !self.has_baselines() {
            self.geometric_means(&mut out, &peers);
        }
        for mismatch in self.mismatches() {
            let _ = writeln!(out, "\nAnswer differs: {mismatch}");
        }
        out
    }

    /// The last row: each engine's geometric mean time and DriftDB's mean ratio to each peer.
    fn geometric_means(&self, out: &mut String, peers: &[&String]) {
        let _ = write!(out, "| **geometric mean** | |");
        for engine in &self.engines {
            let medians: Vec<f64> = self
                .queries
                .iter()
                .filter_map(|q| q.times.get(engine).map(|s| s.median_ms))
                .collect();
            let _ = write!(out, " {} |", millis(geometric_mean(&medians)));
        }
        for peer in peers {
            let ratios: Vec<f64> = self
                .queries
                .iter()
                .filter_map(|q| self.ratio(q, peer))
                .collect();
            let _ = write!(out, " **{:.2}** |", geometric_mean(&ratios));
        }
        out.push('\n');
    }

    fn is_ingest(&self) -> bool {
        self.workload == "ingest"
    }

    fn has_baselines(&self) -> bool {
        self.queries.iter().any(|q| q.baseline.is_some())
    }

    /// `q`'s median over its baseline row's on `engine`.
    fn baseline_ratio(&self, q: &QueryFigures, engine: &str) -> Option<f64> {
        let baseline = self
            .queries
            .iter()
            .find(|b| Some(&b.name) == q.baseline.as_ref())?;
        Some(q.times.get(engine)?.median_ms / baseline.times.get(engine)?.median_ms)
    }

    /// DriftDB's median over `peer`'s for query `q`, when both answered alike.
    fn ratio(&self, q: &QueryFigures, peer: &str) -> Option<f64> {
        Some(q.times.get(DRIFTDB)?.median_ms / q.times.get(peer)?.median_ms)
    }
}

/// A markdown table of `new`'s medians over `old`'s, per query and engine.
pub fn compare(old: &Report, new: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {} SF {} ({}) vs SF {} ({}): new ÷ old median time\n",
        new.workload, new.scale, new.date, old.scale, old.date
    );
    let engines: Vec<&String> = new
        .engines
        .iter()
        .filter(|e| old.engines.contains(e))
        .collect();
    let _ = write!(out, "| query |");
    for engine in &engines {
        let _ = write!(out, " {engine} |");
    }
    let _ = write!(out, "\n| --- |");
    for _ in &engines {
        let _ = write!(out, " --- |");
    }
    out.push('\n');
    let mut per_engine: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for q in &new.queries {
        let Some(before) = old.queries.iter().find(|o| o.name == q.name) else {
            continue;
        };
        let _ = write!(out, "| {} |", q.name);
        for engine in &engines {
            let ratio = q
                .times
                .get(*engine)
                .zip(before.times.get(*engine))
                .map(|(n, o)| n.median_ms / o.median_ms);
            if let Some(r) = ratio {
                per_engine.entry(engine.as_str()).or_default().push(r);
            }
            let cell = ratio.map_or("—".into(), |r| format!("{r:.2}"));
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    let _ = write!(out, "| **geometric mean** |");
    for engine in &engines {
        let ratios = per_engine.get(engine.as_str()).cloned().unwrap_or_default();
        let _ = write!(out, " **{:.2}** |", geometric_mean(&ratios));
    }
    out.push('\n');
    out
}
