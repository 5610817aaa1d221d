//! `driftdb backup` and `driftdb restore`: the engine's backup and
//! restore ([`driftdb_engine::backup`]) with progress bars (bytes and
//! bytes/s, on a terminal) and a summary line on stdout.

use std::time::Instant;

use driftdb_engine::Error;
use driftdb_engine::backup::{
    self, BackupOptions, BackupReport, Progress, RestorePoint, RestoreReport,
};
use driftdb_engine::db::format_time;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;

use crate::cli::{BackupArgs, RestoreArgs};

/// One bar per phase, drawn on stderr (hidden when it is not a terminal).
#[derive(Default)]
struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn begin(&self, phase: &str, total_bytes: u64) {
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg:>10} [{bar:32}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(phase.to_string());
        *self.bar.lock() = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &*self.bar.lock() {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().take() {
            bar.finish_and_clear();
        }
    }
}

/// `driftdb backup`.
pub async fn run_backup(args: BackupArgs) -> Result<(), Error> {
    let started = Instant::now();
    let options = BackupOptions {
        verify: args.verify,
    };
    let report = backup::backup(&args.data, &args.to, options, &Bars::default()).await?;
    for damage in &report.skipped {
        eprintln!("WARNING: passed over a damaged manifest: {damage}");
    }
    for file in &report.repaired {
        eprintln!(
            "WARNING: {file} was missing or damaged in the destination: copied again, or left out of the set"
        );
    }
    println!(
        "{}",
        describe_backup(&report, started.elapsed().as_secs_f64())
    );
    Ok(())
}

/// `driftdb restore`.
pub async fn run_restore(args: RestoreArgs) -> Result<(), Error> {
    let point = match (args.seq, &args.time) {
        (Some(seq), _) => RestorePoint::Seq(seq),
        (None, Some(time)) => RestorePoint::Time(parse_time(time)?),
        (None, None) => RestorePoint::Latest,
    };
    let started = Instant::now();
    let report = backup::restore(&args.from, &args.to, point, &Bars::default()).await?;
    for damage in &report.skipped {
        eprintln!("WARNING: passed over a damaged manifest: {damage}");
    }
    println!(
        "{}",
        describe_restore(&report, started.elapsed().as_secs_f64())
    );
    Ok(())
}

/// A time as `TIMESTAMP AS OF` reads it.
fn parse_time(text: &str) -> Result<i64, Error> {
    let value = datafusion::scalar::ScalarValue::Utf8(Some(text.to_string()));
    driftdb_engine::temporal::timestamp_us(&value)
}

fn describe_backup(r: &BackupReport, seconds: f64) -> String {
    format!(
        "backup {} of {} in {}: through commit {} ({}); copied {} file(s), {} ({}), kept {} file(s), {} already there; restorable commits {}",
        r.number,
        r.source,
        r.destination,
        r.through_seq,
        format_time(r.through_time_us),
        r.files_copied,
        megabytes(r.bytes_copied),
        rate(r.bytes_copied, seconds),
        r.files_kept,
        megabytes(r.bytes_kept),
        backup::describe_ranges(&r.restorable),
    )
}

fn describe_restore(r: &RestoreReport, seconds: f64) -> String {
    format!(
        "restored {} at commit {} ({}) from backup {}: checkpoint {} plus {} commit(s) replayed; copied {} data file(s), {} ({})",
        r.target,
        r.seq,
        format_time(r.time_us),
        r.backup,
        r.checkpoint_seq,
        r.commits_replayed,
        r.files_copied,
        megabytes(r.bytes_copied),
        rate(r.bytes_copied, seconds),
    )
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn rate(bytes: u64, seconds: f64) -> String {
    format!("{:.1} MB/s", bytes as f64 / 1e6 / seconds.max(1e-6))
}
