//! `driftdb-datasets`: generate a dataset into a DriftDB database or Parquet files.
//!
//! ```text
//! driftdb-datasets tpch --scale 1 --db ./tpch-sf1
//! driftdb-datasets tpch --scale 0.1 --parquet ./tpch-sf0.1 --tables orders,lineitem
//! driftdb-datasets shop --db ./shop --steps 1000
//! driftdb-datasets sensors --db ./sensors --sensors 100 --steps 1440
//! driftdb-datasets sensors --parquet ./sensors-history
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
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
        /// Load into the DriftDB database at this location: a folder (created
        /// if missing) or an object-store URL (`s3://bucket/prefix`, …).
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
        #[command(flatten)]
        output: HistoryOutput,
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
    /// Sensor readings that arrive late and get corrected; one commit per minute of arrivals.
    Sensors {
        #[command(flatten)]
        output: HistoryOutput,
        #[arg(long, default_value_t = 100)]
        sensors: u64,
        /// Minutes measured (one arrival window and one commit each; at most a month).
        #[arg(long, default_value_t = 1_440)]
        steps: u64,
        /// Share of readings that arrive late.
        #[arg(long, default_value_t = 0.1)]
        late_fraction: f64,
        /// Latest arrival, in minutes after the reading.
        #[arg(long, default_value_t = 10)]
        max_delay: u64,
        /// Share of sensors whose earlier reading is corrected each minute.
        #[arg(long, default_value_t = 0.02)]
        correction_fraction: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// No progress line.
        #[arg(long)]
        quiet: bool,
    },
}

/// Where a simulated history goes: a database, Parquet files, or both.
#[derive(Args)]
struct HistoryOutput {
    /// Load into the DriftDB database at this location: a folder (created
    /// if missing) or an object-store URL (`s3://bucket/prefix`, …).
    #[arg(long, required_unless_present = "parquet")]
    db: Option<PathBuf>,
    /// Write every version of every table (with `_seq`, `_system_from`,
    /// `_system_to`) and the commit log as `<table>.parquet` files here.
    #[arg(long)]
    parquet: Option<PathBuf>,
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
            output,
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
            simulate(
                &output,
                "orders",
                &driftdb_datasets::shop::TABLES,
                quiet,
                async |database, progress| {
                    driftdb_datasets::shop::generate(database, &config, progress).await
                },
            )
            .await
        }
        Dataset::Sensors {
            output,
            sensors,
            steps,
            late_fraction,
            max_delay,
            correction_fraction,
            seed,
            quiet,
        } => {
            let config = driftdb_datasets::sensors::SensorsConfig {
                sensors,
                steps,
                late_fraction,
                max_delay,
                correction_fraction,
                seed,
            };
            simulate(
                &output,
                "readings",
                &driftdb_datasets::sensors::TABLES,
                quiet,
                async |database, progress| {
                    driftdb_datasets::sensors::generate(database, &config, progress).await
                },
            )
            .await
        }
    }
}

/// Run a simulation into the database of `output` (a scratch one when
/// only Parquet is asked for) with a progress line named `label`, then
/// write the history of `tables` to `output.parquet` if given.
async fn simulate(
    output: &HistoryOutput,
    label: &str,
    tables: &[&str],
    quiet: bool,
    generate: impl AsyncFnOnce(&Database, &mut Progress) -> Result<()>,
) -> Result<()> {
    let (path, _scratch) = match &output.db {
        Some(db) => (db.clone(), None),
        None => {
            let scratch = ScratchDir::create()?;
            (scratch.0.clone(), Some(scratch))
        }
    };
    let database = Database::open(&path.to_string_lossy()).await?;
    let mut progress = Progress::start(label, quiet);
    generate(&database, &mut progress).await?;
    progress.finish();
    if let Some(dir) = &output.parquet {
        sink::history_to_parquet(&database, dir, tables, quiet).await?;
    }
    database.close().await?;
    Ok(())
}

/// A database folder under the system's temporary folder, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("driftdb-datasets-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        Ok(Self(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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
