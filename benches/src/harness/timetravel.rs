//! Time travel: how much reading the past costs next to reading the present.
//!
//! The same TPC-H `lineitem` rows are written as a history of 10, 100,
//! 1,000 or 10,000 appending commits (the rows split evenly, so every depth
//! holds the same data and only the history differs). On each history one
//! aggregate is timed three ways: at the current state, `AS OF` the latest
//! version (the same rows, through the time-travel path) and `AS OF` the
//! version half-way through (half the rows). The figure is each `AS OF`
//! time over the current-state time.
//!
//! The peer is delta-rs (Python `deltalake`, `peers/deltalake_timetravel.py`)
//! appending the same slices, then opening the table at the same version
//! and running the same aggregate with its DataFusion `QueryBuilder`, for
//! histories up to [`DELTA_DEPTH_MAX`] commits.
//! Answers must agree across engines (and `AS OF latest` with current)
//! before a time counts.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::record_batch::RecordBatch;
use driftdb_engine::sql::IngestMode;
use driftdb_engine::{Database, Session};
use serde::{Deserialize, Serialize};

use super::answers::Answer;
use super::engines::{DELTA, DRIFTDB, Measured, Query, Runner};
use super::report::{QueryFigures, Report};
use super::{Error, Result};

/// The engines time travel runs on.
pub const ENGINES: [&str; 2] = [DRIFTDB, DELTA];

/// Commits of history, one history per depth.
pub const DEPTHS: [usize; 4] = [10, 100, 1_000, 10_000];

/// Deepest history delta-rs is given: its appends slow to about 4 commits/s
/// past 1,000 log entries on the 2-core benchmark machine, so 10,000 commits
/// would take most of an hour to write.
pub const DELTA_DEPTH_MAX: usize = 1_000;

/// The aggregate every read runs (a full scan of two columns).
const AGGREGATE: &str = "SELECT count(*), sum(l_quantity), sum(l_extendedprice) FROM lineitem";

/// One history: `commits` appends of `rows_per_commit` rows each.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct History {
    pub commits: usize,
    pub rows_per_commit: usize,
}

impl History {
    /// The histories for `rows` rows at each of `depths` that leaves at least one row per commit.
    pub fn for_depths(rows: usize, depths: &[usize]) -> Vec<History> {
        depths
            .iter()
            .filter(|&&commits| commits > 0 && rows / commits > 0)
            .map(|&commits| History {
                commits,
                rows_per_commit: rows / commits,
            })
            .collect()
    }

    /// The commit (1-based) half-way through the history.
    fn halfway(&self) -> usize {
        (self.commits / 2).max(1)
    }
}

/// The three reads of one history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    Current,
    AsOfLatest,
    AsOfHalfway,
}

impl Read {
    pub const ALL: [Read; 3] = [Read::Current, Read::AsOfLatest, Read::AsOfHalfway];

    /// The key the delta script reports this read under.
    fn key(self) -> &'static str {
        match self {
            Read::Current => "current",
            Read::AsOfLatest => "latest",
            Read::AsOfHalfway => "halfway",
        }
    }

    /// The report row for this read of `history`.
    fn row_name(self, history: &History) -> String {
        let read = match self {
            Read::Current => "current state".to_string(),
            Read::AsOfLatest => "AS OF latest".to_string(),
            Read::AsOfHalfway => format!("AS OF commit {}", history.halfway()),
        };
        format!("{} commits: {read}", history.commits)
    }

    /// The commit (1-based) this read sees, None for the current state.
    fn commit(self, history: &History) -> Option<usize> {
        match self {
            Read::Current => None,
            Read::AsOfLatest => Some(history.commits),
            Read::AsOfHalfway => Some(history.halfway()),
        }
    }
}

/// Write `history` into a fresh DriftDB database at `dir` (durable commits,
/// then persisted to Parquet); returns each commit's version.
pub async fn write_driftdb(rows: &RecordBatch, history: &History, dir: &Path) -> Result<Vec<u64>> {
    let db = Database::open(&dir.to_string_lossy()).await?;
    let mut session = Session::new(&db);
    for commit in 0..history.commits {
        let slice = rows.slice(commit * history.rows_per_commit, history.rows_per_commit);
        let mode = if commit == 0 {
            IngestMode::Create
        } else {
            IngestMode::Append
        };
        session
            .ingest("lineitem", mode, &slice.schema(), &[slice])
            .await?;
    }
    db.persist().await?;
    let versions: Vec<u64> = db
        .commits()
        .into_iter()
        .filter(|c| c.rows_written > 0)
        .map(|c| c.seq)
        .collect();
    db.close().await?;
    if versions.len() != history.commits {
        return Err(Error::Usage(format!(
            "{} commits wrote rows, expected {}",
            versions.len(),
            history.commits
        )));
    }
    Ok(versions)
}

/// The SQL of `read` on DriftDB, given each commit's version.
fn driftdb_sql(read: Read, history: &History, versions: &[u64]) -> String {
    match read.commit(history) {
        None => AGGREGATE.to_string(),
        Some(commit) => format!("{AGGREGATE} VERSION AS OF {}", versions[commit - 1]),
    }
}

/// Time the three reads of `history` on DriftDB.
pub async fn driftdb(
    rows: &RecordBatch,
    history: &History,
    runs: usize,
) -> Result<Vec<(Read, Measured)>> {
    let dir = tempfile::tempdir()?;
    let versions = write_driftdb(rows, history, dir.path()).await?;
    let mut runner = Runner::driftdb(dir.path()).await?;
    let mut measured = Vec::new();
    for read in Read::ALL {
        let query = Query {
            name: read.row_name(history),
            sql: driftdb_sql(read, history, &versions),
        };
        measured.push((read, runner.measure(&query, runs).await?));
    }
    runner.close().await?;
    Ok(measured)
}

#[derive(Debug, Deserialize)]
struct DeltaOutput {
    version: String,
    /// Per history (its commit count as text): per read key, times and rows.
    histories: BTreeMap<String, BTreeMap<String, super::engines::PeerQuery>>,
}

/// delta-rs's reads, by history (commit count) and read key.
type DeltaReads = BTreeMap<(usize, &'static str), Measured>;

/// delta-rs writing every history and timing its reads.
pub fn delta(
    python: &Path,
    parquet: &Path,
    histories: &[History],
    runs: usize,
) -> Result<(String, DeltaReads)> {
    let stdout = super::engines::run_peer_with_plan(
        DELTA,
        python,
        "deltalake_timetravel.py",
        parquet,
        ("--histories", histories),
        runs,
    )?;
    let parsed: DeltaOutput = serde_json::from_slice(&stdout)?;
    let mut measured = BTreeMap::new();
    for history in histories {
        let reads = parsed.histories.get(&history.commits.to_string());
        for read in Read::ALL {
            if let Some(q) = reads.and_then(|r| r.get(read.key())) {
                let answer = Answer {
                    rows: q.rows.clone(),
                };
                let times_ms = q.times_ms.clone();
                measured.insert((history.commits, read.key()), Measured { times_ms, answer });
            }
        }
    }
    Ok((parsed.version, measured))
}

/// What one `run timetravel` invocation runs.
pub struct TimeTravelRun<'a> {
    pub parquet: &'a Path,
    pub scale: f64,
    pub depths: Vec<usize>,
    pub engines: Vec<String>,
    pub runs: usize,
    pub python: &'a Path,
}

/// Every history on every engine; answers checked against DriftDB's.
pub async fn run(plan: TimeTravelRun<'_>) -> Result<Report> {
    let rows = super::ingest::read_rows(plan.parquet)?;
    let histories = History::for_depths(rows.num_rows(), &plan.depths);
    // One row per history and read, in `Read::ALL` order within a history.
    let mut figures: Vec<QueryFigures> = histories
        .iter()
        .flat_map(|h| Read::ALL.map(|read| figure_row(read, h)))
        .collect();
    let mut driftdb_answers: BTreeMap<String, Answer> = BTreeMap::new();
    let mut versions = BTreeMap::new();
    if plan.engines.iter().any(|e| e == DRIFTDB) {
        for (rows_of, history) in figures.chunks_mut(Read::ALL.len()).zip(&histories) {
            let measured = driftdb(&rows, history, plan.runs).await?;
            let current = measured[0].1.answer.clone();
            for (row, (read, m)) in rows_of.iter_mut().zip(measured) {
                match m.answer.difference(&current) {
                    // AS OF latest must see exactly the current state.
                    Some(why) if read == Read::AsOfLatest => {
                        row.mismatches.insert(DRIFTDB.into(), why);
                    }
                    _ => row.record(DRIFTDB, &m.times_ms),
                }
                driftdb_answers.insert(row.name.clone(), m.answer);
            }
        }
    }
    if plan.engines.iter().any(|e| e == DELTA) {
        let within: Vec<History> = histories
            .iter()
            .filter(|h| h.commits <= DELTA_DEPTH_MAX)
            .copied()
            .collect();
        let (version, measured) = delta(plan.python, plan.parquet, &within, plan.runs)?;
        versions.insert(DELTA.to_string(), version);
        for (rows_of, history) in figures.chunks_mut(Read::ALL.len()).zip(&histories) {
            for (row, read) in rows_of.iter_mut().zip(Read::ALL) {
                let Some(m) = measured.get(&(history.commits, read.key())) else {
                    continue;
                };
                match driftdb_answers
                    .get(&row.name)
                    .and_then(|a| a.difference(&m.answer))
                {
                    Some(why) => {
                        row.mismatches.insert(DELTA.into(), why);
                    }
                    None => row.record(DELTA, &m.times_ms),
                }
            }
        }
    }
    Ok(Report::new(
        "timetravel",
        plan.scale,
        plan.runs,
        plan.engines,
        versions,
        figures,
    ))
}

/// An empty report row for `read` of `history`, compared with the current state.
fn figure_row(read: Read, history: &History) -> QueryFigures {
    let rows = read.commit(history).unwrap_or(history.commits) * history.rows_per_commit;
    QueryFigures {
        baseline: (read != Read::Current).then(|| Read::Current.row_name(history)),
        ..QueryFigures::new(read.row_name(history), rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_split_the_rows_evenly_and_skip_depths_too_deep() {
        let histories = History::for_depths(600, &DEPTHS);
        let shapes: Vec<(usize, usize)> = histories
            .iter()
            .map(|h| (h.commits, h.rows_per_commit))
            .collect();
        assert_eq!(shapes, [(10, 60), (100, 6)]);
    }

    #[test]
    fn reads_name_their_version() {
        let history = History {
            commits: 1_000,
            rows_per_commit: 6,
        };
        let versions: Vec<u64> = (1..=1_000).map(|c| c + 2).collect();
        assert_eq!(
            driftdb_sql(Read::AsOfHalfway, &history, &versions),
            format!("{AGGREGATE} VERSION AS OF 502")
        );
        assert_eq!(
            driftdb_sql(Read::AsOfLatest, &history, &versions),
            format!("{AGGREGATE} VERSION AS OF 1002")
        );
        assert_eq!(driftdb_sql(Read::Current, &history, &versions), AGGREGATE);
        assert_eq!(
            Read::AsOfHalfway.row_name(&history),
            "1000 commits: AS OF commit 500"
        );
        assert_eq!(figure_row(Read::AsOfHalfway, &history).rows, 3_000);
    }
}
