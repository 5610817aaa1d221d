//! `driftdb-bench`: benchmark workloads on DriftDB and its peers, side by side.
//!
//! ```text
//! driftdb-bench data tpch --scale 1            # generate once: Parquet + a DriftDB database
//! driftdb-bench run tpch --scale 1             # 22 queries × {driftdb, driftdb-flight, datafusion, duckdb}
//! driftdb-bench run ingest --scale 0.1         # bulk + small commits × {driftdb, datafusion COPY, delta}
//! driftdb-bench run timetravel --scale 0.1     # AS OF vs current over 10…10k commits × {driftdb, delta}
//! driftdb-bench run flight --scale 1           # fetch lineitem over Flight SQL × {driftdb, pyarrow.flight}
//! driftdb-bench compare OLD.json NEW.json      # new ÷ old, per query and engine
//! ```
//!
//! Results go to `benches/results/<workload>-sf<SF>.{json,md}`. DuckDB runs
//! through the Python in `--python` (`bash scripts/python-env.sh` makes it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use driftdb_benches::harness::{
    self, MIN_RUNS, Result, data, fetch, flight, ingest, report, timetravel, tpch,
};

/// Commits per small-commit scenario in a smoke run.
const SMOKE_COMMITS: usize = 5;

#[derive(Parser)]
#[command(
    name = "driftdb-bench",
    about = "DriftDB benchmarks beside their peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a workload's data (skipped when already there).
    Data {
        #[command(subcommand)]
        workload: Workload,
    },
    /// Run a workload on every engine and write its report.
    Run {
        #[command(subcommand)]
        workload: Workload,
    },
    /// Compare two reports: NEW's median times over OLD's.
    Compare { old: PathBuf, new: PathBuf },
}

#[derive(Subcommand)]
enum Workload {
    /// TPC-H: the 22 queries over generated data.
    Tpch {
        /// Scale factor (1 = 8.66M rows).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Engines, comma-separated (driftdb, driftdb-flight, datafusion, duckdb).
        #[arg(long, default_value = "driftdb,driftdb-flight,datafusion,duckdb")]
        engines: String,
        /// Queries, comma-separated numbers (default: all 22).
        #[arg(long)]
        queries: Option<String>,
        /// The `driftdb` binary for driftdb-flight (default: next to this program).
        #[arg(long)]
        driftdb: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Ingest: TPC-H lineitem as one bulk commit and as small commits.
    Ingest {
        /// Scale factor of the lineitem rows written (0.1 = 600k rows).
        #[arg(long, default_value_t = 0.1)]
        scale: f64,
        /// Engines, comma-separated (driftdb, datafusion = its COPY … TO ceiling, delta).
        #[arg(long, default_value = "driftdb,datafusion,delta")]
        engines: String,
        #[command(flatten)]
        common: Common,
    },
    /// Time travel: AS OF reads over histories of 10 to 10,000 commits.
    Timetravel {
        /// Scale factor of the lineitem rows the history holds (0.1 = 600k rows).
        #[arg(long, default_value_t = 0.1)]
        scale: f64,
        /// Commits of history, comma-separated.
        #[arg(long, default_value = "10,100,1000,10000")]
        depths: String,
        /// Engines, comma-separated (driftdb, delta).
        #[arg(long, default_value = "driftdb,delta")]
        engines: String,
        #[command(flatten)]
        common: Common,
    },
    /// Flight fetch: all of TPC-H lineitem from `driftdb serve`, beside a
    /// pyarrow.flight server sending the same batches from memory.
    Flight {
        /// Scale factor (1 = 6M lineitem rows).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// The `driftdb` binary to serve with (default: next to this program).
        #[arg(long)]
        driftdb: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

/// Options every workload takes.
#[derive(clap::Args)]
struct Common {
    /// Where generated data lives.
    #[arg(long, default_value = "bench-data", env = "DRIFTDB_BENCH_DATA")]
    dir: PathBuf,
    /// Timed runs per figure after one warm-up.
    #[arg(long, default_value_t = MIN_RUNS)]
    runs: usize,
    /// A quick check that everything runs and agrees (fewer runs allowed; not a figure).
    #[arg(long)]
    smoke: bool,
    /// Python with the peers installed.
    #[arg(
        long,
        default_value = "~/driftdb-venv/bin/python",
        env = "DRIFTDB_BENCH_PYTHON"
    )]
    python: String,
    /// Where reports go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out: PathBuf,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

impl Common {
    fn check_runs(&self) -> Result<()> {
        if self.runs == 0 || (self.runs < MIN_RUNS && !self.smoke) {
            return Err(harness::Error::Usage(format!(
                "a figure needs at least {MIN_RUNS} runs (use --smoke for a quick check)"
            )));
        }
        Ok(())
    }

    fn python(&self) -> PathBuf {
        expand_home(&self.python)
    }

    /// Print `report`, write it, and fail when answers differed.
    fn finish(&self, report: &report::Report, stem: &str) -> Result<ExitCode> {
        print!("{}", report.markdown());
        let out = if self.smoke {
            std::env::temp_dir().join("driftdb-bench-smoke")
        } else {
            self.out.clone()
        };
        report.write(&out, stem)?;
        eprintln!("report: {}", out.join(stem).display());
        Ok(if report.mismatches().is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

/// `list` split at commas, each one of `known`.
fn engine_list(list: &str, known: &[&str]) -> Result<Vec<String>> {
    let engines: Vec<String> = list.split(',').map(|e| e.trim().to_string()).collect();
    match engines.iter().find(|e| !known.contains(&e.as_str())) {
        Some(unknown) => Err(harness::Error::Usage(format!(
            "unknown engine \"{unknown}\" (one of: {})",
            known.join(", ")
        ))),
        None => Ok(engines),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("driftdb-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Data { workload } => {
            let (Workload::Tpch { scale, common, .. }
            | Workload::Ingest { scale, common, .. }
            | Workload::Timetravel { scale, common, .. }
            | Workload::Flight { scale, common, .. }) = workload;
            let data = data::tpch_data(&common.dir, scale, common.quiet).await?;
            println!("{}\n{}", data.parquet.display(), data.driftdb.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            workload:
                Workload::Tpch {
                    scale,
                    engines,
                    queries,
                    driftdb,
                    common,
                },
        } => {
            common.check_runs()?;
            let engines = engine_list(&engines, &tpch::ENGINES)?;
            let numbers = parse_queries(queries.as_deref())?;
            let data = data::tpch_data(&common.dir, scale, common.quiet).await?;
            let driftdb_binary = driftdb.unwrap_or_else(flight::default_binary);
            let report = tpch::run(tpch::TpchRun {
                data: &data,
                scale,
                queries: tpch::queries(&numbers, scale)?,
                engines,
                runs: common.runs,
                python: &common.python(),
                driftdb_binary: &driftdb_binary,
            })
            .await?;
            common.finish(&report, &format!("tpch-sf{scale}"))
        }
        Command::Run {
            workload:
                Workload::Ingest {
                    scale,
                    engines,
                    common,
                },
        } => {
            common.check_runs()?;
            let engines = engine_list(&engines, &ingest::ENGINES)?;
            let data = data::tpch_data(&common.dir, scale, common.quiet).await?;
            let report = ingest::run(ingest::IngestRun {
                parquet: &data.parquet.join("lineitem.parquet"),
                scale,
                engines,
                runs: common.runs,
                python: &common.python(),
                max_commits: if common.smoke {
                    SMOKE_COMMITS
                } else {
                    usize::MAX
                },
            })
            .await?;
            common.finish(&report, &format!("ingest-sf{scale}"))
        }
        Command::Run {
            workload:
                Workload::Timetravel {
                    scale,
                    depths,
                    engines,
                    common,
                },
        } => {
            common.check_runs()?;
            let engines = engine_list(&engines, &timetravel::ENGINES)?;
            let data = data::tpch_data(&common.dir, scale, common.quiet).await?;
            let report = timetravel::run(timetravel::TimeTravelRun {
                parquet: &data.parquet.join("lineitem.parquet"),
                scale,
                depths: parse_numbers(&depths, "commit count")?,
                engines,
                runs: common.runs,
                python: &common.python(),
            })
            .await?;
            common.finish(&report, &format!("timetravel-sf{scale}"))
        }
        Command::Run {
            workload:
                Workload::Flight {
                    scale,
                    driftdb,
                    common,
                },
        } => {
            common.check_runs()?;
            let data = data::tpch_data(&common.dir, scale, common.quiet).await?;
            let report = fetch::run(fetch::FetchRun {
                database: &data.driftdb,
                scale,
                runs: common.runs,
                python: &common.python(),
                driftdb_binary: &driftdb.unwrap_or_else(flight::default_binary),
            })
            .await?;
            common.finish(&report, &format!("flight-fetch-sf{scale}"))
        }
        Command::Compare { old, new } => {
            let (old, new) = (report::Report::read(&old)?, report::Report::read(&new)?);
            print!("{}", report::compare(&old, &new));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_queries(list: Option<&str>) -> Result<Vec<usize>> {
    match list {
        None => Ok((1..=22).collect()),
        Some(list) => parse_numbers(list, "query number"),
    }
}

/// `list` split at commas, each a whole number (`what` names one in errors).
fn parse_numbers(list: &str, what: &str) -> Result<Vec<usize>> {
    list.split(',')
        .map(|n| {
            n.trim()
                .parse()
                .map_err(|_| harness::Error::Usage(format!("not a {what}: \"{n}\"")))
        })
        .collect()
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}
