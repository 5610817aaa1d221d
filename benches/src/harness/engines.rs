//! The engines a workload runs on. DriftDB embedded and raw DataFusion run
//! in this process, DriftDB over Flight SQL in a `driftdb serve` child
//! ([`super::flight`]); DuckDB runs in a Python subprocess
//! (`benches/peers/duckdb_tpch.py`) that times the same queries over the
//! same Parquet files and hands back times and answers as JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use driftdb_engine::{Database, Session};
use serde::Deserialize;

use super::answers::Answer;
use super::flight::FlightEngine;
use super::{Error, Result};

/// An engine's name in reports and on the command line.
pub const DRIFTDB: &str = "driftdb";
pub const DRIFTDB_FLIGHT: &str = "driftdb-flight";
pub const DATAFUSION: &str = "datafusion";
pub const DUCKDB: &str = "duckdb";
/// delta-rs through its Python package (`deltalake`).
pub const DELTA: &str = "delta";

/// One named query.
#[derive(Debug, Clone)]
pub struct Query {
    pub name: String,
    pub sql: String,
}

/// Timed runs and the answer of one query on one engine.
#[derive(Debug, Clone)]
pub struct Measured {
    pub times_ms: Vec<f64>,
    pub answer: Answer,
}

/// An engine this process drives query by query.
pub enum Runner {
    DriftDb {
        db: Database,
        session: Session,
    },
    /// DriftDB behind `driftdb serve`, over Flight SQL.
    Flight(FlightEngine),
    DataFusion {
        ctx: SessionContext,
    },
}

impl Runner {
    /// DriftDB over the database in `dir`, or at `DRIFTDB_BENCH_TPCH_DB`
    /// when that names one (a copy on object storage, say), with
    /// `DRIFTDB_BENCH_CACHE_MIB` of local data-file cache (default 1024).
    pub async fn driftdb(dir: &Path) -> Result<Self> {
        let location = match std::env::var("DRIFTDB_BENCH_TPCH_DB") {
            Ok(location) if !location.is_empty() => location,
            _ => dir.to_string_lossy().into_owned(),
        };
        let mut limits = driftdb_engine::Limits::default();
        if let Some(mib) = std::env::var("DRIFTDB_BENCH_CACHE_MIB")
            .ok()
            .and_then(|m| m.parse::<u64>().ok())
        {
            limits.data_cache_bytes_max = mib << 20;
        }
        let db = Database::open_with(&location, limits).await?;
        let session = Session::new(&db);
        Ok(Runner::DriftDb { db, session })
    }

    /// DataFusion with default settings over `<table>.parquet` files in `dir`.
    pub async fn datafusion(dir: &Path, tables: &[&str]) -> Result<Self> {
        let ctx = SessionContext::new();
        for table in tables {
            let path = dir.join(format!("{table}.parquet"));
            ctx.register_parquet(
                *table,
                path.to_string_lossy().as_ref(),
                ParquetReadOptions::default(),
            )
            .await?;
        }
        Ok(Runner::DataFusion { ctx })
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<RecordBatch>> {
        match self {
            Runner::DriftDb { session, .. } => {
                let mut results = session.execute(sql).await?;
                Ok(results.pop().map(|r| r.batches).unwrap_or_default())
            }
            Runner::Flight(engine) => engine.query(sql).await,
            Runner::DataFusion { ctx } => Ok(ctx.sql(sql).await?.collect().await?),
        }
    }

    /// One warm-up run, then `runs` timed runs (planning, execution and
    /// collecting every batch); the answer is the last run's.
    pub async fn measure(&mut self, query: &Query, runs: usize) -> Result<Measured> {
        let mut batches = self.query(&query.sql).await?;
        let mut times_ms = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            batches = self.query(&query.sql).await?;
            times_ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        Ok(Measured {
            times_ms,
            answer: Answer::from_batches(&batches)?,
        })
    }

    /// Release the engine (DriftDB closes its database, the server stops).
    pub async fn close(self) -> Result<()> {
        match self {
            Runner::DriftDb { db, .. } => db.close().await?,
            Runner::Flight(engine) => engine.stop(),
            Runner::DataFusion { .. } => {}
        }
        Ok(())
    }
}

/// What the DuckDB script prints.
#[derive(Debug, Deserialize)]
pub struct PeerOutput {
    pub version: String,
    pub queries: BTreeMap<String, PeerQuery>,
}

#[derive(Debug, Deserialize)]
pub struct PeerQuery {
    pub times_ms: Vec<f64>,
    pub rows: Vec<Vec<String>>,
}

/// Run `queries` on DuckDB over the Parquet files in `parquet`, with the
/// same warm-up and run count, through `python`.
pub fn duckdb(
    python: &Path,
    parquet: &Path,
    tables: &[&str],
    queries: &[Query],
    runs: usize,
) -> Result<(String, BTreeMap<String, Measured>)> {
    let work = tempfile::tempdir()?;
    let input = work.path().join("queries.json");
    let listed: BTreeMap<&str, &str> = queries
        .iter()
        .map(|q| (q.name.as_str(), q.sql.as_str()))
        .collect();
    std::fs::write(&input, serde_json::to_vec(&listed)?)?;
    let tables = tables.join(",");
    let runs = runs.to_string();
    let stdout = run_peer(
        DUCKDB,
        python,
        "duckdb_tpch.py",
        &[
            "--parquet".as_ref(),
            parquet.as_os_str(),
            "--tables".as_ref(),
            tables.as_ref(),
            "--queries".as_ref(),
            input.as_os_str(),
            "--runs".as_ref(),
            runs.as_ref(),
        ],
    )?;
    let parsed: PeerOutput = serde_json::from_slice(&stdout)?;
    let measured = parsed
        .queries
        .into_iter()
        .map(|(name, q)| {
            let answer = Answer { rows: q.rows };
            let times_ms = q.times_ms;
            (name, Measured { times_ms, answer })
        })
        .collect();
    Ok((parsed.version, measured))
}

/// Run the peer script `script` (under `benches/peers/`) with `args`
/// through `python`; returns what it printed.
pub fn run_peer(
    peer: &str,
    python: &Path,
    script: &str,
    args: &[&std::ffi::OsStr],
) -> Result<Vec<u8>> {
    let peer_error = |detail: String| Error::Peer {
        peer: peer.into(),
        detail,
    };
    let output = std::process::Command::new(python)
        .arg(peer_script(script))
        .args(args)
        .output()
        .map_err(|e| peer_error(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(peer_error(format!(
            "exited with {}: {stderr}",
            output.status
        )));
    }
    Ok(output.stdout)
}

/// Run a peer script over the Parquet file `parquet` with a plan it reads
/// from a JSON file (`(flag, plan)`: `--scenarios`, `--histories`, …) and
/// `--runs`; returns its standard output.
pub fn run_peer_with_plan(
    peer: &str,
    python: &Path,
    script: &str,
    parquet: &Path,
    (flag, plan): (&str, &(impl serde::Serialize + ?Sized)),
    runs: usize,
) -> Result<Vec<u8>> {
    let work = tempfile::tempdir()?;
    let plan_file = work.path().join("plan.json");
    std::fs::write(&plan_file, serde_json::to_vec(plan)?)?;
    run_peer(
        peer,
        python,
        script,
        &[
            "--parquet".as_ref(),
            parquet.as_os_str(),
            flag.as_ref(),
            plan_file.as_os_str(),
            "--runs".as_ref(),
            runs.to_string().as_ref(),
        ],
    )
}

/// A script under `benches/peers/`.
pub fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join(name)
}

/// Where a benchmark database named `name` goes: under
/// `DRIFTDB_BENCH_STORE` (an object-store URL such as `s3://bucket/prefix`)
/// when it is set, in a fresh prefix per run, else in the folder `dir`.
pub fn bench_location(dir: &std::path::Path, name: &str) -> String {
    match std::env::var("DRIFTDB_BENCH_STORE") {
        Ok(store) if !store.is_empty() => format!(
            "{}/{name}-{}-{}",
            store.trim_end_matches('/'),
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ),
        _ => dir.to_string_lossy().into_owned(),
    }
}
