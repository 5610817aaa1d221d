//! TPC-H: the 22 queries (`benches/tpch/queries/`, written from the
//! specification with its validation parameters) on every engine, over
//! the same generated data.

use std::collections::BTreeMap;
use std::path::Path;

use driftdb_datasets::tpch::TABLES;

use super::answers::Answer;
use super::data::TpchData;
use super::engines::{self, DATAFUSION, DRIFTDB, DRIFTDB_FLIGHT, DUCKDB, Measured, Query, Runner};
use super::flight::FlightEngine;
use super::report::{QueryFigures, Report};
use super::{Error, Result};

/// The query texts, in order.
const QUERIES: [&str; 22] = [
    include_str!("../../tpch/queries/q01.sql"),
    include_str!("../../tpch/queries/q02.sql"),
    include_str!("../../tpch/queries/q03.sql"),
    include_str!("../../tpch/queries/q04.sql"),
    include_str!("../../tpch/queries/q05.sql"),
    include_str!("../../tpch/queries/q06.sql"),
    include_str!("../../tpch/queries/q07.sql"),
    include_str!("../../tpch/queries/q08.sql"),
    include_str!("../../tpch/queries/q09.sql"),
    include_str!("../../tpch/queries/q10.sql"),
    include_str!("../../tpch/queries/q11.sql"),
    include_str!("../../tpch/queries/q12.sql"),
    include_str!("../../tpch/queries/q13.sql"),
    include_str!("../../tpch/queries/q14.sql"),
    include_str!("../../tpch/queries/q15.sql"),
    include_str!("../../tpch/queries/q16.sql"),
    include_str!("../../tpch/queries/q17.sql"),
    include_str!("../../tpch/queries/q18.sql"),
    include_str!("../../tpch/queries/q19.sql"),
    include_str!("../../tpch/queries/q20.sql"),
    include_str!("../../tpch/queries/q21.sql"),
    include_str!("../../tpch/queries/q22.sql"),
];

/// The engines TPC-H runs on.
pub const ENGINES: [&str; 4] = [DRIFTDB, DRIFTDB_FLIGHT, DATAFUSION, DUCKDB];

/// Q11's FRACTION at scale factor 1; the specification divides it by SF.
const Q11_FRACTION_AT_SF1: f64 = 0.0001;

/// Queries `numbers` (1-based) with the parameters for `scale`.
pub fn queries(numbers: &[usize], scale: f64) -> Result<Vec<Query>> {
    numbers
        .iter()
        .map(|n| {
            let text = QUERIES
                .get(n.wrapping_sub(1))
                .ok_or_else(|| Error::Usage(format!("TPC-H has queries 1 to 22, not {n}")))?;
            let sql = match n {
                11 => text.replace(
                    &format!("* {Q11_FRACTION_AT_SF1}"),
                    &format!("* {}", Q11_FRACTION_AT_SF1 / scale),
                ),
                _ => text.to_string(),
            };
            Ok(Query {
                name: format!("q{n:02}"),
                sql,
            })
        })
        .collect()
}

/// What one `run tpch` invocation runs.
pub struct TpchRun<'a> {
    pub data: &'a TpchData,
    pub scale: f64,
    pub queries: Vec<Query>,
    pub engines: Vec<String>,
    pub runs: usize,
    pub python: &'a Path,
    /// The `driftdb` binary for the Flight SQL engine.
    pub driftdb_binary: &'a Path,
}

/// Run every query on every engine and check each answer against DriftDB's.
pub async fn run(plan: TpchRun<'_>) -> Result<Report> {
    let mut measured: BTreeMap<String, BTreeMap<String, Measured>> = BTreeMap::new();
    let mut versions = BTreeMap::new();
    for engine in &plan.engines {
        let results = match engine.as_str() {
            DRIFTDB => {
                let runner = Runner::driftdb(&plan.data.driftdb).await?;
                measure_all(runner, &plan.queries, plan.runs).await?
            }
            DRIFTDB_FLIGHT => {
                let server = FlightEngine::start(plan.driftdb_binary, &plan.data.driftdb).await?;
                measure_all(Runner::Flight(server), &plan.queries, plan.runs).await?
            }
            DATAFUSION => {
                let runner = Runner::datafusion(&plan.data.parquet, &TABLES).await?;
                measure_all(runner, &plan.queries, plan.runs).await?
            }
            DUCKDB => {
                let (version, results) = engines::duckdb(
                    plan.python,
                    &plan.data.parquet,
                    &TABLES,
                    &plan.queries,
                    plan.runs,
                )?;
                versions.insert(DUCKDB.to_string(), version);
                results
            }
            other => return Err(Error::Usage(format!("unknown engine \"{other}\""))),
        };
        for (query, m) in results {
            measured.entry(query).or_default().insert(engine.clone(), m);
        }
    }
    let queries = plan
        .queries
        .iter()
        .map(|q| figures(&q.name, measured.remove(&q.name).unwrap_or_default()))
        .collect();
    Ok(Report::new(
        "tpch",
        plan.scale,
        plan.runs,
        plan.engines,
        versions,
        queries,
    ))
}

async fn measure_all(
    mut runner: Runner,
    queries: &[Query],
    runs: usize,
) -> Result<BTreeMap<String, Measured>> {
    let mut results = BTreeMap::new();
    for query in queries {
        results.insert(query.name.clone(), runner.measure(query, runs).await?);
    }
    runner.close().await?;
    Ok(results)
}

/// One query's summaries, each engine's answer checked against the first engine's.
fn figures(name: &str, by_engine: BTreeMap<String, Measured>) -> QueryFigures {
    let reference: Option<Answer> = by_engine
        .get(DRIFTDB)
        .or_else(|| by_engine.values().next())
        .map(|m| m.answer.clone());
    let rows = reference.as_ref().map_or(0, |a| a.rows.len());
    let mut figures = QueryFigures::new(name.to_string(), rows);
    for (engine, m) in by_engine {
        match reference.as_ref().and_then(|r| r.difference(&m.answer)) {
            Some(why) => {
                figures.mismatches.insert(engine, why);
            }
            None => figures.record(&engine, &m.times_ms),
        }
    }
    figures
}
