//! Ingest: the same Arrow rows (TPC-H `lineitem`) written durably as one
//! bulk commit and as streams of small commits (1, 100, 1,000 and 100,000
//! rows each), with each commit's latency; beside delta-rs (Python
//! `deltalake`, `peers/deltalake_ingest.py`) appending the same slices, and
//! DataFusion's `COPY … TO` Parquet as the ceiling for the bulk write.
//!
//! Every pass starts from an empty table; one warm-up pass, then the timed
//! ones. A pass's row count is checked afterwards on every engine. With
//! `DRIFTDB_BENCH_STORE=s3://bucket/prefix` (and the `AWS_*` variables)
//! DriftDB and delta-rs both write to that object store instead of local disk.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::prelude::SessionContext;
use driftdb_engine::sql::IngestMode;
use driftdb_engine::{Database, Session};
use serde::Deserialize;

use super::engines::{DATAFUSION, DELTA, DRIFTDB};
use super::report::{QueryFigures, Report};
use super::{Error, Result};

/// One way of writing the rows: `commits` commits of `rows_per_commit` rows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scenario {
    pub name: String,
    pub rows_per_commit: usize,
    pub commits: usize,
}

/// The engines ingest runs on (DataFusion only for its bulk `COPY … TO`).
pub const ENGINES: [&str; 3] = [DRIFTDB, DATAFUSION, DELTA];

/// Small-commit sizes, and how many commits of each a pass makes.
const SMALL_COMMITS: [(usize, usize); 4] = [(1, 200), (100, 200), (1_000, 100), (100_000, 10)];

/// The scenarios for `rows` rows: the bulk commit, then small commits that
/// fit, at most `max_commits` of each.
pub fn scenarios(rows: usize, max_commits: usize) -> Vec<Scenario> {
    let mut all = vec![Scenario {
        name: format!("bulk {rows} rows"),
        rows_per_commit: rows,
        commits: 1,
    }];
    for (size, commits) in SMALL_COMMITS {
        let commits = commits.min(rows / size).min(max_commits);
        if commits > 0 {
            all.push(Scenario {
                name: format!("{size}-row commits"),
                rows_per_commit: size,
                commits,
            });
        }
    }
    all
}

/// `lineitem` from the Parquet file, as one batch.
pub fn read_rows(parquet: &Path) -> Result<RecordBatch> {
    let file = std::fs::File::open(parquet)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::Usage(format!("{}: {e}", parquet.display())))?
        .build()
        .map_err(|e| Error::Usage(format!("{}: {e}", parquet.display())))?;
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::Usage(format!("{} has no rows", parquet.display())))?;
    Ok(concat_batches(&schema, &batches)?)
}

/// Every commit's latency (ms) over `runs` timed passes of `scenario` on DriftDB.
pub async fn driftdb(rows: &RecordBatch, scenario: &Scenario, runs: usize) -> Result<Vec<f64>> {
    let mut latencies = Vec::new();
    for pass in 0..=runs {
        let dir = tempfile::tempdir()?;
        let location = super::engines::bench_location(dir.path(), &format!("ingest-{pass}"));
        let db = Database::open(&location).await?;
        let mut session = Session::new(&db);
        let mut timed = Vec::with_capacity(scenario.commits);
        for commit in 0..scenario.commits {
            let slice = rows.slice(commit * scenario.rows_per_commit, scenario.rows_per_commit);
            let mode = if commit == 0 {
                IngestMode::Create
            } else {
                IngestMode::Append
            };
            let started = Instant::now();
            session
                .ingest("lineitem", mode, &slice.schema(), &[slice])
                .await?;
            timed.push(started.elapsed().as_secs_f64() * 1e3);
        }
        check_count(&mut session, scenario).await?;
        db.close().await?;
        if pass > 0 {
            latencies.extend(timed);
        }
    }
    Ok(latencies)
}

async fn check_count(session: &mut Session, scenario: &Scenario) -> Result<()> {
    let result = session.execute("SELECT count(*) FROM lineitem").await?;
    let rows = super::answers::Answer::from_batches(&result[0].batches)?.rows;
    let expected = (scenario.rows_per_commit * scenario.commits).to_string();
    if rows != vec![vec![expected.clone()]] {
        return Err(Error::Usage(format!(
            "{}: DriftDB holds {rows:?} rows after ingest, expected {expected}",
            scenario.name
        )));
    }
    Ok(())
}

/// DataFusion writing `rows` to one Parquet file with `COPY … TO`, per pass (ms).
pub async fn datafusion_copy(rows: &RecordBatch, runs: usize) -> Result<Vec<f64>> {
    let ctx = SessionContext::new();
    let table = MemTable::try_new(rows.schema(), vec![vec![rows.clone()]])?;
    ctx.register_table("lineitem", Arc::new(table))?;
    let mut times = Vec::new();
    for pass in 0..=runs {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("lineitem.parquet");
        let sql = format!(
            "COPY (SELECT * FROM lineitem) TO '{}' STORED AS PARQUET",
            target.display()
        );
        let started = Instant::now();
        ctx.sql(&sql).await?.collect().await?;
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        if pass > 0 {
            times.push(elapsed);
        }
    }
    Ok(times)
}

#[derive(Debug, Deserialize)]
struct DeltaOutput {
    version: String,
    scenarios: BTreeMap<String, DeltaScenario>,
}

#[derive(Debug, Deserialize)]
struct DeltaScenario {
    latencies_ms: Vec<f64>,
}

/// delta-rs appending the same slices of the Parquet file `parquet`.
pub fn delta(
    python: &Path,
    parquet: &Path,
    scenarios: &[Scenario],
    runs: usize,
) -> Result<(String, BTreeMap<String, Vec<f64>>)> {
    let stdout = super::engines::run_peer_with_plan(
        DELTA,
        python,
        "deltalake_ingest.py",
        parquet,
        ("--scenarios", scenarios),
        runs,
    )?;
    let parsed: DeltaOutput = serde_json::from_slice(&stdout)?;
    let latencies = parsed
        .scenarios
        .into_iter()
        .map(|(name, s)| (name, s.latencies_ms))
        .collect();
    Ok((parsed.version, latencies))
}

/// What one `run ingest` invocation runs.
pub struct IngestRun<'a> {
    pub parquet: &'a Path,
    pub scale: f64,
    pub engines: Vec<String>,
    pub runs: usize,
    pub python: &'a Path,
    /// At most this many commits per small-commit scenario (a smoke run needs few).
    pub max_commits: usize,
}

/// Run every scenario on every engine.
pub async fn run(plan: IngestRun<'_>) -> Result<Report> {
    let rows = read_rows(plan.parquet)?;
    let scenarios = scenarios(rows.num_rows(), plan.max_commits);
    let mut figures: Vec<QueryFigures> = scenarios
        .iter()
        .map(|s| QueryFigures::new(s.name.clone(), s.rows_per_commit))
        .collect();
    let mut versions = BTreeMap::new();
    for engine in &plan.engines {
        match engine.as_str() {
            DRIFTDB => {
                for (scenario, f) in scenarios.iter().zip(&mut figures) {
                    let latencies = driftdb(&rows, scenario, plan.runs).await?;
                    f.record(engine, &latencies);
                }
            }
            DATAFUSION => {
                let times = datafusion_copy(&rows, plan.runs).await?;
                figures[0].record(engine, &times);
            }
            DELTA => {
                let (version, latencies) = delta(plan.python, plan.parquet, &scenarios, plan.runs)?;
                versions.insert(DELTA.to_string(), version);
                for f in &mut figures {
                    if let Some(l) = latencies.get(&f.name) {
                        f.record(engine, l);
                    }
                }
            }
            other => {
                return Err(Error::Usage(format!(
                    "the ingest workload runs on driftdb, datafusion (COPY ceiling) and delta, not \"{other}\""
                )));
            }
        }
    }
    Ok(Report::new(
        "ingest",
        plan.scale,
        plan.runs,
        plan.engines,
        versions,
        figures,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_commit_scenarios_fit_the_rows() {
        let names: Vec<String> = scenarios(60_175, usize::MAX)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            [
                "bulk 60175 rows",
                "1-row commits",
                "100-row commits",
                "1000-row commits"
            ]
        );
        let large = scenarios(6_001_215, usize::MAX);
        assert_eq!(large.len(), 5);
        assert_eq!(large[4].rows_per_commit * large[4].commits, 1_000_000);
        assert!(
            scenarios(6_001_215, 3)
                .iter()
                .skip(1)
                .all(|s| s.commits == 3)
        );
    }
}
