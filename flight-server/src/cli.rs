//! Command-line interface. Every option also reads a `DRIFTDB_*` variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// DriftDB: a temporal analytical database.
#[derive(Debug, Parser)]
#[command(name = "driftdb", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL on the embedded engine: a script, one command, or an interactive shell.
    Sql(SqlArgs),
    /// Create the demo database (if the folder is empty) and open the shell on it.
    Demo(DemoArgs),
    /// Serve the database over Arrow Flight SQL.
    Serve(crate::serve::ServeArgs),
    /// Verify the log, checkpoints and every data file of a local database
    /// without changing it; exits non-zero when anything is damaged.
    Check(CheckArgs),
    /// Copy a consistent state of a database (open and committing or not)
    /// into a backup folder or bucket; later backups copy only what is new.
    Backup(BackupArgs),
    /// Rebuild a database in an empty location from a backup, at its
    /// newest commit or at an earlier one (`--seq`, `--time`).
    Restore(RestoreArgs),
    /// Load CSV, Parquet or JSON-lines files into a table (created from
    /// the first file if missing), committing every --batch-rows rows.
    Load(LoadArgs),
    /// Write a table or a query's rows to a CSV, Parquet or JSON-lines file.
    Export(ExportArgs),
}

/// How files are read or written (`load`, `export`).
#[derive(Debug, Args, Clone)]
pub struct FileArgs {
    /// File format: csv, parquet or json [default: from the extension]
    #[arg(long)]
    pub format: Option<String>,
    /// CSV: the first line holds the column names (true or false)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub header: bool,
    /// CSV: the field delimiter
    #[arg(long, default_value_t = ',')]
    pub delimiter: char,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub file: FileArgs,
    /// Rows per commit: each chunk is atomic, and a load cut short keeps
    /// whole chunks (resume it with --skip-rows)
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_rows: usize,
    /// Rows (over all files, in order) already loaded: skipped
    #[arg(long, default_value_t = 0)]
    pub skip_rows: u64,
    /// The table to load into.
    pub table: String,
    /// The files to load, in order (local paths, or object-store URLs such
    /// as s3://bucket/sales/*.parquet, reached with the AWS_* variables).
    #[arg(required = true)]
    pub files: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub file: FileArgs,
    /// Export this query's rows instead of a table's.
    #[arg(long)]
    pub query: Option<String>,
    /// Read as of this version, tag or time (as `SET driftdb.as_of`).
    #[arg(long)]
    pub as_of: Option<String>,
    /// TABLE FILE, or FILE with --query: the file is replaced whole,
    /// never left half written.
    #[arg(required = true, num_args = 1..=2, value_names = ["TABLE", "FILE"])]
    pub targets: Vec<String>,
}

/// Where the database lives.
#[derive(Debug, Args, Clone)]
pub struct StorageArgs {
    /// Database location: a local folder, `memory://`, or object storage
    /// (`s3://bucket/prefix`, `gs://…`, `az://…`; endpoint and credentials
    /// from the standard `AWS_*`/`GOOGLE_*`/`AZURE_*` variables).
    #[arg(long = "data", env = "DRIFTDB_DATA", default_value = "./driftdb-data")]
    pub data: String,
    /// On object storage: how long the writer lease lasts unrenewed, ms.
    #[arg(long, env = "DRIFTDB_WRITER_LEASE_TTL_MS", default_value_t = 30_000)]
    pub writer_lease_ttl_ms: u64,
    /// On object storage: MiB of data files cached on local disk (0: none).
    #[arg(long, env = "DRIFTDB_CACHE_MIB", default_value_t = 1024)]
    pub cache_mib: u64,
}

impl StorageArgs {
    /// The engine limits these options set.
    pub fn limits(&self) -> driftdb_engine::Limits {
        driftdb_engine::Limits {
            writer_lease_ttl: std::time::Duration::from_millis(self.writer_lease_ttl_ms),
            data_cache_bytes_max: self.cache_mib << 20,
            ..Default::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Run these statements and exit.
    #[arg(short = 'e', long = "execute", conflicts_with = "file")]
    pub execute: Option<String>,
    /// Run the statements in this file and exit.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Create the demo data and exit instead of opening the shell.
    #[arg(long)]
    pub no_shell: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The local database folder to check.
    #[arg(long = "data", env = "DRIFTDB_DATA", default_value = "./driftdb-data")]
    pub data: PathBuf,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The database to back up: a local folder or an object-store URL.
    #[arg(long = "data", env = "DRIFTDB_DATA", default_value = "./driftdb-data")]
    pub data: String,
    /// Where backups go: a local folder or an object-store URL (empty, or
    /// holding earlier backups of the same database).
    #[arg(long = "to")]
    pub to: String,
    /// Read back every file earlier backups left in the destination and
    /// check its checksum (by default only presence and length); damaged
    /// data files are copied again.
    #[arg(long)]
    pub verify: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup folder or object-store URL (its newest backup is used).
    #[arg(long = "from")]
    pub from: String,
    /// The empty folder or object-store URL to rebuild the database in.
    #[arg(long = "to")]
    pub to: String,
    /// Restore this commit, as numbered in `VERSION AS OF`.
    #[arg(long, conflicts_with = "time")]
    pub seq: Option<u64>,
    /// Restore the last commit at or before this time, as in
    /// `TIMESTAMP AS OF` (for instance `2026-12-01 09:30:00`, UTC unless
    /// an offset is given).
    #[arg(long)]
    pub time: Option<String>,
}
