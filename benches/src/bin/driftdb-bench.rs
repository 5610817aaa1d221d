//! `driftdb-bench`: benchmark workloads on DriftDB and its peers, side by side.
//!
//! ```text
//! driftdb-bench data tpch --scale 1            # generate once: Parquet + a DriftDB database
//! driftdb-bench run tpch --scale 1             # 22 queries × {driftdb, driftdb-flight, datafusion, duckdb}
//! driftdb-bench compare OLD.json NEW.json      # new ÷ old, per query and engine
//! ```
//!
//! Results go to `benches/results/<workload>-sf<SF>.{json,md}`. DuckDB runs
//! through the Python in `--python` (`bash scripts/python-env.sh` makes it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use driftdb_benches::harness::{self, MIN_RUNS, Result, data, engines, flight, report, tpch};

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
    Tpch(TpchArgs),
}

#[derive(clap::Args)]
struct TpchArgs {
    /// Scale factor (1 = 8.66M rows).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Where generated data lives.
    #[arg(long, default_value = "bench-data", env = "DRIFTDB_BENCH_DATA")]
    dir: PathBuf,
    /// Timed runs per query after one warm-up.
    #[arg(long, default_value_t = MIN_RUNS)]
    runs: usize,
    /// A quick check that everything runs and agrees (fewer runs allowed; not a figure).
    #[arg(long)]
    smoke: bool,
    /// Engines, comma-separated (driftdb, driftdb-flight, datafusion, duckdb).
    #[arg(long, default_value = "driftdb,driftdb-flight,datafusion,duckdb")]
    engines: String,
    /// Queries, comma-separated numbers (default: all 22).
    #[arg(long)]
    queries: Option<String>,
    /// Python with the peers installed.
    #[arg(
        long,
        default_value = "~/driftdb-venv/bin/python",
        env = "DRIFTDB_BENCH_PYTHON"
    )]
    python: String,
    /// The `driftdb` binary for driftdb-flight (default: next to this program).
    #[arg(long)]
    driftdb: Option<PathBuf>,
    /// Where reports go.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out: PathBuf,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
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
        Command::Data {
            workload: Workload::Tpch(args),
        } => {
            let data = data::tpch_data(&args.dir, args.scale, args.quiet).await?;
            println!("{}\n{}", data.parquet.display(), data.driftdb.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            workload: Workload::Tpch(args),
        } => run_tpch(args).await,
        Command::Compare { old, new } => {
            let (old, new) = (report::Report::read(&old)?, report::Report::read(&new)?);
            print!("{}", report::compare(&old, &new));
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_tpch(args: TpchArgs) -> Result<ExitCode> {
    if args.runs == 0 || (args.runs < MIN_RUNS && !args.smoke) {
        return Err(harness::Error::Usage(format!(
            "a figure needs at least {MIN_RUNS} runs (use --smoke for a quick check)"
        )));
    }
    let engines: Vec<String> = args
        .engines
        .split(',')
        .map(|e| e.trim().to_string())
        .collect();
    if let Some(unknown) = engines.iter().find(|e| !engines::ALL.contains(&e.as_str())) {
        return Err(harness::Error::Usage(format!(
            "unknown engine \"{unknown}\""
        )));
    }
    let numbers = parse_queries(args.queries.as_deref())?;
    let data = data::tpch_data(&args.dir, args.scale, args.quiet).await?;
    let python = expand_home(&args.python);
    let driftdb_binary = args.driftdb.unwrap_or_else(flight::default_binary);
    let report = tpch::run(tpch::TpchRun {
        data: &data,
        scale: args.scale,
        queries: tpch::queries(&numbers, args.scale)?,
        engines,
        runs: args.runs,
        python: &python,
        driftdb_binary: &driftdb_binary,
    })
    .await?;
    print!("{}", report.markdown());
    let out = if args.smoke {
        std::env::temp_dir().join("driftdb-bench-smoke")
    } else {
        args.out
    };
    report.write(&out, &format!("tpch-sf{}", args.scale))?;
    eprintln!("report: {}", out.display());
    let mismatches = report.mismatches();
    Ok(if mismatches.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn parse_queries(list: Option<&str>) -> Result<Vec<usize>> {
    match list {
        None => Ok((1..=22).collect()),
        Some(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .map_err(|_| harness::Error::Usage(format!("not a query number: \"{n}\"")))
            })
            .collect(),
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}
