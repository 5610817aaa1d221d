//! `driftdb load` and `driftdb export`: the engine's file transfers
//! ([`driftdb_engine::sql::files::transfer`]) with a progress bar (rows,
//! rows/s and bytes/s, on a terminal) and a summary line on stdout. A load
//! also prints a line per committed chunk, so a load cut short says where
//! to resume (`--skip-rows`).

use std::time::Instant;

use driftdb_engine::sql::files::transfer::{self, ExportSource, LoadOptions};
use driftdb_engine::sql::files::{CsvOptions, FileFormat};
use driftdb_engine::{Database, Error, Session};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{ExportArgs, FileArgs, LoadArgs};

fn bar(message: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{msg:>8} {spinner} {human_pos} rows ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(message.to_string());
    bar
}

fn formats(args: &FileArgs) -> Result<(Option<FileFormat>, CsvOptions), Error> {
    let format = args.format.as_deref().map(FileFormat::named).transpose()?;
    let delimiter = u8::try_from(args.delimiter)
        .ok()
        .filter(|b| b.is_ascii())
        .ok_or_else(|| Error::InvalidArgument {
            message: "--delimiter must be one ASCII character".into(),
        })?;
    let csv = CsvOptions {
        header: args.header,
        delimiter,
        ..CsvOptions::default()
    };
    Ok((format, csv))
}

/// `driftdb load`.
pub async fn run_load(args: LoadArgs) -> Result<(), Error> {
    let (format, csv) = formats(&args.file)?;
    let options = LoadOptions {
        format,
        csv,
        batch_rows: args.batch_rows,
        skip_rows: args.skip_rows,
    };
    let db = Database::open_with(&args.storage.data, args.storage.limits()).await?;
    let mut session = Session::new(&db);
    let started = Instant::now();
    let progress = bar("loading");
    let mut bytes = 0;
    let loaded = transfer::load(
        &mut session,
        &args.table,
        &args.files,
        &options,
        &mut |chunk| {
            bytes = chunk.bytes_read;
            progress.set_position(chunk.rows_done);
            // On stdout, terminal or not: where a load cut short resumes.
            // A line that cannot be printed stops the load (never a panic).
            progress.suspend(|| report_chunk(chunk.rows_done, chunk.seq))
        },
    )
    .await;
    progress.finish_and_clear();
    let closed = db.close().await;
    let loaded = loaded?;
    closed?;
    say(&summary(
        "loaded",
        loaded,
        bytes,
        started.elapsed().as_secs_f64(),
    ));
    Ok(())
}

/// Print that rows `1..=rows` are committed as version `seq`.
fn report_chunk(rows: u64, seq: Option<u64>) -> Result<(), Error> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let seq = seq.map_or("-".into(), |s| s.to_string());
    writeln!(out, "committed rows 1..={rows} as version {seq}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::StorageIo {
            detail: format!(
                "cannot report on stdout that rows 1..={rows} are committed ({e}): \
                 resume after the rows the table holds"
            ),
        })
}

/// `driftdb export`.
pub async fn run_export(args: ExportArgs) -> Result<(), Error> {
    let (format, csv) = formats(&args.file)?;
    let (source, output) = match (&args.query, args.targets.as_slice()) {
        (Some(sql), [file]) => (ExportSource::Query(sql), file.as_str()),
        (None, [table, file]) => (ExportSource::Table(table), file.as_str()),
        _ => {
            return Err(Error::InvalidArgument {
                message: "export takes TABLE FILE, or --query SQL FILE".into(),
            });
        }
    };
    let format = FileFormat::resolve(format, output)?;
    let db = Database::open_with(&args.storage.data, args.storage.limits()).await?;
    let mut session = Session::new(&db);
    let started = Instant::now();
    let progress = bar("exporting");
    let mut bytes = 0;
    let written = async {
        session.read_as_of(args.as_of.as_deref())?;
        transfer::export(
            &mut session,
            source,
            output,
            format,
            &csv,
            &mut |rows, b| {
                bytes = b;
                progress.set_position(rows);
            },
        )
        .await
    }
    .await;
    progress.finish_and_clear();
    let closed = db.close().await;
    let written = written?;
    closed?;
    say(&summary(
        "exported",
        written,
        bytes,
        started.elapsed().as_secs_f64(),
    ));
    Ok(())
}

/// The summary line on stdout (a closed stdout is not an error: the work is done).
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn summary(verb: &str, rows: u64, bytes: u64, secs: f64) -> String {
    let secs = secs.max(1e-6);
    format!(
        "{verb} {rows} rows ({}) in {secs:.2} s: {:.0} rows/s, {}/s",
        HumanBytes(bytes),
        rows as f64 / secs,
        HumanBytes((bytes as f64 / secs) as u64)
    )
}
