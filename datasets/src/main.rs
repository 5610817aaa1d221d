//! `driftdb-datasets`: generate a dataset into a DriftDB database or Parquet files.
//!
//! ```text
//! driftdb-datasets tpch --scale 1 --db ./tpch-sf1
//! driftdb-datasets tpch --scale 0.1 --parquet ./tpch-sf0.1 --tables orders,lineitem
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use driftdb_datasets::progress::Progress;
use driftdb_datasets::{Result, sink, tpch};
use driftdb_engine::Database;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "driftdb-datasets",
    about = "Generate datasets for DriftDB tests and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    dataset: Dataset,
}

#[derive(Subcommand)]
enum Dataset {
    /// TPC-H: the eight tables at a scale factor (SF 1 ≈ 8.7M rows, 1 GB of text).
    Tpch {
        /// Scale factor (0.01, 0.1, 1, 10, …).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Load into the DriftDB database at this folder (created if missing).
        #[arg(long, conflicts_with = "parquet", required_unless_present = "parquet")]
        db: Option<PathBuf>,
        /// Write `<table>.parquet` files into this folder.
        #[arg(long)]
        parquet: Option<PathBuf>,
        /// Comma-separated tables (default: all eight).
        #[arg(long, default_value = "")]
        tables: String,
        /// No progress lines.
        #[arg(long)]
        quiet: bool,
    },
    /// A shop with history: customers who move, orders that change status; one commit per step.
    Shop {
        /// Load into the DriftDB database at this folder (created if missing).
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 1_000)]
        customers: u64,
        /// Simulation steps (one commit each).
        #[arg(long, default_value_t = 1_000)]
        steps: u64,
        #[arg(long, default_value_t = 100)]
        orders_per_step: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// No progress line.
        #[arg(long)]
        quiet: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("driftdb-datasets: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.dataset {
        Dataset::Tpch {
            scale,
            db,
            parquet,
            tables,
            quiet,
        } => tpch(scale, db, parquet, &tables, quiet).await,
        Dataset::Shop {
            db,
            customers,
            steps,
            orders_per_step,
            seed,
            quiet,
        } => {
            let config = driftdb_datasets::shop::ShopConfig {
                customers,
                steps,
                orders_per_step,
                seed,
            };
            let database = Database::open(&db.to_string_lossy()).await?;
            let mut progress = Progress::start("orders", quiet);
            driftdb_datasets::shop::generate(&database, &config, &mut progress).await?;
            progress.finish();
            database.close().await?;
            Ok(())
        }
    }
}

async fn tpch(
    scale: f64,
    db: Option<PathBuf>,
    parquet: Option<PathBuf>,
    tables: &str,
    quiet: bool,
) -> Result<()> {
    let tables = tpch::tables(tables)?;
    let database = match &db {
        Some(path) => Some(Database::open(&path.to_string_lossy()).await?),
        None => None,
    };
    for table in tables {
        let batches = tpch::batches(table, scale)?;
        let mut progress = Progress::start(table, quiet);
        match (&database, &parquet) {
            (Some(database), _) => {
                sink::into_database(database, table, batches, &mut progress).await?;
            }
            (None, Some(dir)) => {
                sink::to_parquet(dir, table, batches, &mut progress)?;
            }
            (None, None) => unreachable!("clap requires --db or --parquet"),
        }
        progress.finish();
    }
    if let Some(database) = database {
        database.close().await?;
    }
    Ok(())
}
