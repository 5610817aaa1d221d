//! # driftdb-datasets
//!
//! Datasets for DriftDB's tests and benchmarks, generated rather than
//! downloaded: TPC-H at any scale factor ([`tpch`], from the `tpchgen`
//! crates), written straight into a DriftDB database or to Parquet files
//! ([`sink`]), and a shop whose customers and orders change over time, one
//! commit per simulation step ([`shop`]), sensor readings that arrive late
//! and get corrected, one commit per arrival window ([`sensors`]), whose
//! whole history can also be written to Parquet ([`sink::history_to_parquet`]);
//! a progress line on long runs ([`progress`]).
//!
//! `datasets/README.md` lists every dataset, its schema and size per scale,
//! and which tests and benchmarks use it.

pub mod progress;
pub mod sensors;
pub mod shop;
pub mod sink;
pub mod tpch;

/// Everything that can go wrong while generating or writing a dataset.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown TPC-H table \"{0}\" (one of: {tables})", tables = tpch::TABLES.join(", "))]
    UnknownTable(String),
    #[error("scale factor must be positive and finite, not {0}")]
    BadScale(f64),
    #[error("{0}")]
    BadConfig(String),
    #[error("generating data: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("writing files: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing to DriftDB: {0}")]
    Engine(#[from] driftdb_engine::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
