//! The `driftdb-bench` harness: datasets on disk ([`data`]), engines that
//! run the same SQL ([`engines`]), timing summaries ([`stats`]), result
//! checks across engines ([`answers`]), and reports as JSON and markdown
//! ([`report`]). The workloads: [`tpch`], [`ingest`], [`timetravel`] and
//! [`fetch`] (Flight SQL fetch throughput).
//!
//! Every figure is the median of at least [`MIN_RUNS`] timed runs after
//! one warm-up run, with min and max; the peers run in the same invocation
//! on the same files; a query's times count only when every engine's
//! answer equals DriftDB's.

pub mod answers;
pub mod data;
pub mod engines;
pub mod fetch;
pub mod flight;
pub mod ingest;
pub mod report;
pub mod stats;
pub mod timetravel;
pub mod tpch;

/// Fewest timed runs per figure.
pub const MIN_RUNS: usize = 5;

/// Everything the harness can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("DriftDB: {0}")]
    Engine(#[from] driftdb_engine::Error),
    #[error("DataFusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("Arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("dataset: {0}")]
    Dataset(#[from] driftdb_datasets::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("peer {peer}: {detail}")]
    Peer { peer: String, detail: String },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
