//! `COPY`, PostgreSQL's syntax over server-side files.
//!
//! `COPY t [(cols)] FROM 'path or glob' [WITH (FORMAT csv|parquet|json,
//! HEADER, DELIMITER ',', QUOTE '"', ESCAPE '"', NULL '')]` reads every
//! row first, conforms it to the table's columns as `INSERT` does (a bad
//! value is refused naming the file, the row and the column), and writes
//! them all in one commit: all or nothing, constraints checked set-based,
//! the row count reported. Columns go by position for CSV and Parquet
//! (as in PostgreSQL) and by name for JSON (one object per line).
//!
//! `COPY t [(cols)] | (query) TO 'path' [WITH (…)]` writes a file the way
//! the database writes its own: into a temporary file beside it, fsynced,
//! renamed over the name, the folder fsynced. A reader never sees half a
//! file, and a crash leaves the old file or the whole new one.
//!
//! Without `FORMAT` the path's extension says (`.csv`, `.parquet`,
//! `.json`/`.jsonl`/`.ndjson`). PostgreSQL's text and binary formats and
//! `STDIN`/`STDOUT` (which need its wire protocol) are refused (0A000).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use sqlparser::ast::{
    self, CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident,
    ObjectName,
};

use super::SourceFile;
use super::objects::{self, ObjectUrl};
use super::transfer::OnProgress;
use super::{CsvOptions, FileFormat, single_byte};
use crate::catalog::{TableDef, user_physical_schema};
use crate::error::{Error, Result};
use crate::sql::ddl::{keys_of, normalize_ident, table_name};
use crate::sql::dml::{commit_counted, conform_batch, target_columns, target_table};
use crate::sql::session::{Session, StatementResult};
use crate::txn::{Write, WriteSet};

/// Rows per batch read from a CSV or JSON file.
const READ_BATCH_ROWS: usize = 8_192;

/// A `COPY` statement, as sqlparser reads it.
#[derive(Debug)]
pub struct CopyStatement {
    pub source: CopySource,
    pub to: bool,
    pub target: CopyTarget,
    pub options: Vec<CopyOption>,
    pub legacy_options: Vec<CopyLegacyOption>,
}

/// What a `COPY`'s options ask for.
#[derive(Debug, Default)]
struct CopyOptions {
    format: Option<FileFormat>,
    csv: CsvOptions,
}

pub(crate) async fn copy(session: &Session, statement: CopyStatement) -> Result<StatementResult> {
    let path = match &statement.target {
        CopyTarget::File { filename } => filename.clone(),
        CopyTarget::Stdin | CopyTarget::Stdout => {
            return Err(Error::unsupported(
                "COPY with STDIN or STDOUT: name a server-side file, or use Flight SQL ingest and queries",
            ));
        }
        CopyTarget::Program { .. } => return Err(Error::unsupported("COPY … PROGRAM")),
    };
    let options = copy_options(&statement.options, &statement.legacy_options)?;
    let format = FileFormat::resolve(options.format, &path)?;
    if format != FileFormat::Csv && options.csv != CsvOptions::default() {
        return Err(Error::InvalidArgument {
            message: "HEADER, DELIMITER, QUOTE, ESCAPE and NULL apply to FORMAT csv only".into(),
        });
    }
    match (statement.to, statement.source) {
        (
            false,
            CopySource::Table {
                table_name,
                columns,
            },
        ) => {
            // Boxed, as is the other side: reading objects makes large futures.
            Box::pin(copy_from(
                session,
                &table_name,
                &columns,
                &path,
                format,
                &options.csv,
            ))
            .await
        }
        (false, CopySource::Query(_)) => Err(Error::Syntax {
            message: "COPY … FROM copies into a table, not a query".into(),
        }),
        (true, source) => Box::pin(copy_to(session, source, &path, format, &options.csv)).await,
    }
}

fn copy_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyOptions> {
    let mut out = CopyOptions::default();
    for option in options {
        match option {
            CopyOption::Format(name) => out.format = Some(FileFormat::named(&name.value)?),
            CopyOption::Header(on) => out.csv.header = *on,
            CopyOption::Delimiter(c) => out.csv.delimiter = single_byte("DELIMITER", *c)?,
            CopyOption::Quote(c) => out.csv.quote = single_byte("QUOTE", *c)?,
            CopyOption::Escape(c) => out.csv.escape = Some(single_byte("ESCAPE", *c)?),
            CopyOption::Null(text) => out.csv.null = text.clone(),
            CopyOption::Encoding(name) if is_utf8(name) => {}
            other => return Err(Error::unsupported(format!("COPY option {other}"))),
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Csv(csv) => {
                out.format = Some(FileFormat::Csv);
                for option in csv {
                    match option {
                        CopyLegacyCsvOption::Header => out.csv.header = true,
                        CopyLegacyCsvOption::Quote(c) => {
                            out.csv.quote = single_byte("QUOTE", *c)?;
                        }
                        CopyLegacyCsvOption::Escape(c) => {
                            out.csv.escape = Some(single_byte("ESCAPE", *c)?);
                        }
                        other => return Err(Error::unsupported(format!("COPY option {other}"))),
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => {
                out.csv.delimiter = single_byte("DELIMITER", *c)?;
            }
            CopyLegacyOption::Null(text) => out.csv.null = text.clone(),
            other => return Err(Error::unsupported(format!("COPY option {other}"))),
        }
    }
    if out.csv.escape == Some(out.csv.quote) {
        out.csv.escape = None;
    }
    Ok(out)
}

fn is_utf8(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().replace(['-', '_'], "").as_str(),
        "utf8" | "unicode"
    )
}

// ---------------------------------------------------------------- FROM

async fn copy_from(
    session: &Session,
    table: &ObjectName,
    columns: &[Ident],
    path: &str,
    format: FileFormat,
    csv: &CsvOptions,
) -> Result<StatementResult> {
    let def = target_table(session, table)?;
    let names: Vec<String> = columns.iter().map(normalize_ident).collect();
    let targets = target_columns(&def, &names)?;
    let sources = SourceFile::checked(&session.file_access(), path).await?;
    let limit = session.db().limits().ingest_rows_max as u64;
    let mut rows = Vec::new();
    let mut count = 0u64;
    for source in &sources {
        let (name, opened) = source.open().await?;
        let reader = FileRows::open(opened, &name, format, csv, &def, &targets)?;
        let mut row_in_file = 0usize;
        for batch in reader {
            let batch = batch?;
            let at = |row: usize| {
                format!(
                    "COPY {}, file \"{name}\", row {}",
                    def.name,
                    row_in_file + row + 1
                )
            };
            rows.push(conform_located(session, &def, &targets, &batch, at)?);
            row_in_file += batch.num_rows();
            count += batch.num_rows() as u64;
            if count > limit {
                return Err(Error::LimitExceeded {
                    what: format!("COPY into \"{}\"", def.name),
                    size: count,
                    limit,
                    unit: "rows",
                    limit_name: "ingest_rows_max",
                });
            }
        }
    }
    let schema = user_physical_schema(def.columns());
    let batch = arrow::compute::concat_batches(&schema, &rows)?;
    let mut writes = WriteSet::new("COPY");
    if batch.num_rows() > 0 {
        let keys = keys_of(&def, &batch)?;
        writes.push(Write::Insert {
            table_id: def.id,
            batch,
            keys,
        });
    }
    commit_counted(session, "COPY", writes, count).await
}

/// [`conform_batch`], naming the first row that fails (found by halving,
/// so a good batch costs one pass and a bad one a few more).
fn conform_located(
    session: &Session,
    def: &TableDef,
    targets: &[usize],
    batch: &RecordBatch,
    at: impl Fn(usize) -> String,
) -> Result<RecordBatch> {
    let error = match conform_batch(session, def, targets, batch) {
        Ok(rows) => return Ok(rows),
        Err(error) => error,
    };
    let fails = |from: usize, len: usize| {
        conform_batch(session, def, targets, &batch.slice(from, len)).err()
    };
    let (mut first, mut end) = (0, batch.num_rows());
    while end - first > 1 {
        let middle = first + (end - first) / 2;
        match fails(first, middle - first) {
            Some(_) => end = middle,
            None => first = middle,
        }
    }
    let inner = fails(first, 1).unwrap_or(error);
    Err(Error::WithContext {
        context: at(first),
        inner: Box::new(inner),
    })
}

/// The rows of one file, in batches of the target columns: as text for
/// CSV (conformed like `INSERT`'s text), in the file's types for Parquet,
/// in the columns' types for JSON.
enum FileRows {
    Csv(arrow::csv::Reader<BufReader<File>>, String),
    Json(arrow::json::Reader<BufReader<File>>, String),
    Parquet(
        parquet::arrow::arrow_reader::ParquetRecordBatchReader,
        String,
    ),
}

impl FileRows {
    fn open(
        opened: File,
        name: &str,
        format: FileFormat,
        csv: &CsvOptions,
        def: &TableDef,
        targets: &[usize],
    ) -> Result<Self> {
        let bad = |detail: String| bad_data(name, detail);
        let columns = def.columns();
        match format {
            FileFormat::Csv => {
                let fields: Vec<Field> = targets
                    .iter()
                    .map(|&i| Field::new(&columns[i].name, arrow::datatypes::DataType::Utf8, true))
                    .collect();
                let mut builder = arrow::csv::ReaderBuilder::new(Arc::new(Schema::new(fields)))
                    .with_header(csv.header)
                    .with_delimiter(csv.delimiter)
                    .with_quote(csv.quote)
                    .with_batch_size(READ_BATCH_ROWS);
                if let Some(escape) = csv.escape {
                    builder = builder.with_escape(escape);
                }
                if let Some(null) = csv.null_regex() {
                    builder = builder.with_null_regex(null);
                }
                let reader = builder
                    .build(BufReader::new(opened))
                    .map_err(|e| bad(e.to_string()))?;
                Ok(Self::Csv(reader, name.to_string()))
            }
            FileFormat::Json => {
                // Values as their text, conformed like CSV's: exact decimals,
                // and `1.5` into an integer refused, never truncated. A key
                // naming no target column is refused too (strict).
                let fields: Vec<Field> = targets
                    .iter()
                    .map(|&i| Field::new(&columns[i].name, arrow::datatypes::DataType::Utf8, true))
                    .collect();
                let reader = arrow::json::ReaderBuilder::new(Arc::new(Schema::new(fields)))
                    .with_batch_size(READ_BATCH_ROWS)
                    .with_coerce_primitive(true)
                    .with_strict_mode(true)
                    .build(BufReader::new(opened))
                    .map_err(|e| bad(e.to_string()))?;
                Ok(Self::Json(reader, name.to_string()))
            }
            FileFormat::Parquet => {
                use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
                let builder = ParquetRecordBatchReaderBuilder::try_new(opened)
                    .map_err(|e| bad(format!("not a readable Parquet file: {e}")))?;
                let found = builder.schema().fields().len();
                if found != targets.len() {
                    return Err(bad(format!(
                        "it has {found} columns where COPY into \"{}\" expects {}",
                        def.name,
                        targets.len()
                    )));
                }
                let reader = builder.build().map_err(|e| bad(e.to_string()))?;
                Ok(Self::Parquet(reader, name.to_string()))
            }
        }
    }
}

impl Iterator for FileRows {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let (next, file) = match self {
            Self::Csv(reader, file) => (reader.next(), file),
            Self::Json(reader, file) => (reader.next(), file),
            Self::Parquet(reader, file) => (reader.next(), file),
        };
        Some(next?.map_err(|e| bad_data(file, e.to_string())))
    }
}

fn bad_data(name: &str, detail: String) -> Error {
    Error::BadFileData {
        file: name.to_string(),
        detail,
    }
}

// ------------------------------------------------------------------ TO

async fn copy_to(
    session: &Session,
    source: CopySource,
    path: &str,
    format: FileFormat,
    csv: &CsvOptions,
) -> Result<StatementResult> {
    let access = session.file_access();
    let target = match objects::is_object_url(path) {
        true => Target::Object(access.object_to_write(path)?),
        false => Target::Local(access.file_to_write(path)?),
    };
    let plan = match source {
        CopySource::Query(query) => session.plan(ast::Statement::Query(query)).await?,
        CopySource::Table {
            table_name,
            columns,
        } => table_plan(session, &table_name, &columns)?,
    };
    let stream = session.stream_read_plan(plan).await?;
    let rows = target
        .write(true, (format, csv), stream, &mut |_, _| {})
        .await?;
    Ok(StatementResult::done("COPY", Some(rows), None))
}

/// The rows of table `name` (the listed columns, else all) as the
/// statement sees them.
pub(super) fn table_plan(
    session: &Session,
    name: &ObjectName,
    columns: &[Ident],
) -> Result<datafusion::logical_expr::LogicalPlan> {
    use crate::temporal::changes::{column, scan};
    let table = table_name(name)?;
    let snapshot = session
        .table_snapshot(&table)
        .ok_or_else(|| Error::UnknownTable {
            name: table.clone(),
            context: String::new(),
        })?;
    let names: Vec<String> = match columns.is_empty() {
        true => snapshot.columns.iter().map(|c| c.name.clone()).collect(),
        false => columns.iter().map(normalize_ident).collect(),
    };
    for name in &names {
        if !snapshot.columns.iter().any(|c| &c.name == name) {
            return Err(Error::UnknownColumn {
                table: table.clone(),
                column: name.clone(),
            });
        }
    }
    let projection: Vec<_> = names.iter().map(|n| column("source", n)).collect();
    let table = crate::temporal::provider::TemporalTable::new(snapshot, false);
    Ok(scan(table, "source")?.project(projection)?.build()?)
}

/// Where a `COPY TO` or an export writes.
pub(super) enum Target {
    Local(PathBuf),
    Object(ObjectUrl),
}

impl Target {
    /// Write `stream` here (see [`write_file`] and [`write_object`]);
    /// `checked`: a local target's folder was checked against a
    /// [`FileAccess`](super::FileAccess).
    pub(super) async fn write(
        &self,
        checked: bool,
        format: (FileFormat, &CsvOptions),
        stream: SendableRecordBatchStream,
        progress: OnProgress<'_>,
    ) -> Result<u64> {
        match self {
            Self::Local(path) => write_file(path, checked, format, stream, progress).await,
            Self::Object(url) => write_object(url, format, stream, progress).await,
        }
    }
}

/// Write `stream` as object `url`: into a local temporary file, then
/// uploaded whole.
async fn write_object(
    url: &ObjectUrl,
    (format, csv): (FileFormat, &CsvOptions),
    stream: SendableRecordBatchStream,
    progress: OnProgress<'_>,
) -> Result<u64> {
    let store = url.store()?;
    let (rows, file) = write_rows(tempfile::tempfile()?, format, csv, stream, progress).await?;
    objects::upload(store, url, file).await?;
    Ok(rows)
}

/// Write `stream` to `target` durably (temporary file, fsync, rename,
/// fsync the folder); the number of rows written. `progress` hears the
/// rows and bytes written so far after each batch.
async fn write_file(
    target: &Path,
    checked: bool,
    (format, csv): (FileFormat, &CsvOptions),
    stream: SendableRecordBatchStream,
    progress: OnProgress<'_>,
) -> Result<u64> {
    let io_error = |e: std::io::Error| Error::StorageIo {
        detail: format!("writing \"{}\": {e}", target.display()),
    };
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| io_error(std::io::ErrorKind::InvalidInput.into()))?;
    let dir = open_folder(folder, checked.then_some(folder)).map_err(io_error)?;
    let (temp, file) = create_temp(&dir).map_err(io_error)?;
    let written = write_rows(file, format, csv, stream, progress).await;
    let finished = written.and_then(|(rows, _)| {
        rustix::fs::renameat(&dir, &temp, &dir, name).map_err(std::io::Error::from)?;
        rustix::fs::fsync(&dir).map_err(std::io::Error::from)?;
        Ok(rows)
    });
    if finished.is_err() {
        let _ = rustix::fs::unlinkat(&dir, &temp, rustix::fs::AtFlags::empty());
    }
    finished.map_err(|e| match e {
        Error::Io(io) => io_error(io),
        other => other,
    })
}

/// `folder`, opened once: the temporary file is created, renamed and
/// synced relative to this handle, so a folder swapped for a link after
/// the check changes nothing. When `checked`, the handle must be that
/// folder (its canonical path, as the check approved it).
fn open_folder(folder: &Path, checked: Option<&Path>) -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsRawFd;
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let dir = rustix::fs::open(folder, flags, Mode::empty())?;
    if let Some(checked) = checked {
        let real = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd()))?;
        if real != checked {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the folder was replaced after it was checked",
            ));
        }
    }
    Ok(dir)
}

/// A fresh temporary file in `dir`, created exclusively (never through
/// a link planted at its name), readable as PostgreSQL's exports are.
fn create_temp(dir: &std::os::fd::OwnedFd) -> std::io::Result<(String, File)> {
    use rustix::fs::{Mode, OFlags};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            ".driftdb-copy-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        match rustix::fs::openat(dir, &name, flags, Mode::from_raw_mode(0o644)) {
            Ok(fd) => return Ok((name, File::from(fd))),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

async fn write_rows(
    file: File,
    format: FileFormat,
    csv: &CsvOptions,
    mut stream: SendableRecordBatchStream,
    progress: OnProgress<'_>,
) -> Result<(u64, File)> {
    let size = file.try_clone()?;
    let mut writer = FileWriter::new(BufWriter::new(file), format, csv, stream.schema())?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        writer.write(&batch)?;
        progress(rows, size.metadata().map_or(0, |m| m.len()));
    }
    let file = writer.finish()?;
    file.sync_all()?;
    progress(rows, file.metadata().map_or(0, |m| m.len()));
    Ok((rows, file))
}

/// One file being written, in its format.
enum FileWriter {
    Csv(arrow::csv::Writer<BufWriter<File>>),
    Json(arrow::json::LineDelimitedWriter<BufWriter<File>>),
    Parquet(parquet::arrow::ArrowWriter<BufWriter<File>>),
}

impl FileWriter {
    fn new(
        out: BufWriter<File>,
        format: FileFormat,
        csv: &CsvOptions,
        schema: SchemaRef,
    ) -> Result<Self> {
        Ok(match format {
            FileFormat::Csv => {
                let mut builder = arrow::csv::WriterBuilder::new()
                    .with_header(csv.header)
                    .with_delimiter(csv.delimiter)
                    .with_quote(csv.quote)
                    .with_null(csv.null.clone());
                if let Some(escape) = csv.escape {
                    builder = builder.with_escape(escape).with_double_quote(false);
                }
                Self::Csv(builder.build(out))
            }
            FileFormat::Json => Self::Json(arrow::json::LineDelimitedWriter::new(out)),
            FileFormat::Parquet => {
                let properties = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                    .build();
                Self::Parquet(parquet::arrow::ArrowWriter::try_new(
                    out,
                    schema,
                    Some(properties),
                )?)
            }
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Self::Csv(w) => w.write(batch)?,
            Self::Json(w) => w.write(batch)?,
            Self::Parquet(w) => w.write(batch)?,
        }
        Ok(())
    }

    fn finish(self) -> Result<File> {
        let mut out = match self {
            Self::Csv(w) => w.into_inner(),
            Self::Json(mut w) => {
                w.finish()?;
                w.into_inner()
            }
            Self::Parquet(w) => w.into_inner()?,
        };
        out.flush()?;
        out.into_inner().map_err(|e| Error::Io(e.into_error()))
    }
}
