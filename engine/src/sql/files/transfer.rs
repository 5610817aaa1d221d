//! Whole files in and out, with progress: what `driftdb load` and
//! `driftdb export` run. These are the local user's own files (the command
//! line runs as that user), so no [`FileAccess`](super::FileAccess) check
//! applies here; over Flight SQL only `COPY` and `read_*` touch files.
//! A path may be an object-store URL (`s3://bucket/key`, a key pattern
//! when loading), reached with the environment's credentials.
//!
//! A load reads each file in its own types (a Parquet file's schema, or
//! the types inferred from the first [`INFER_ROWS`](super::read::INFER_ROWS)
//! rows of CSV or JSON), matches columns by name, creates the table from
//! the first file if it does not exist, and commits every `batch_rows`
//! rows as one atomic ingest. A load cut short leaves whole chunks only;
//! `skip_rows` resumes it after the rows already acknowledged.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use sqlparser::ast::{Ident, ObjectName};

use super::SourceFile;
use super::copy::{Target, table_plan};
use super::objects::{self, ObjectUrl};
use super::read::file_schema;
use super::{CsvOptions, FileFormat};
use crate::error::{Error, Result, printable};
use crate::sql::IngestMode;
use crate::sql::session::Session;

/// Rows per batch read from a file.
const LOAD_READ_BATCH_ROWS: usize = 8_192;

/// What `driftdb export` writes.
#[derive(Debug, Clone, Copy)]
pub enum ExportSource<'a> {
    /// A table's rows (as the session sees them: `set_as_of` applies).
    Table(&'a str),
    /// A query's rows.
    Query(&'a str),
}

/// How progress is reported: rows and bytes so far.
pub type OnProgress<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

/// Write `source` to `path` (a local file, or an object-store URL)
/// durably; the number of rows written.
pub async fn export(
    session: &mut Session,
    source: ExportSource<'_>,
    path: &str,
    format: FileFormat,
    csv: &CsvOptions,
    progress: OnProgress<'_>,
) -> Result<u64> {
    let stream = match source {
        ExportSource::Table(name) => {
            session.begin_read()?;
            let name = ObjectName::from(vec![Ident::new(name)]);
            let plan = table_plan(session, &name, &[])?;
            session.stream_read_plan(plan).await?
        }
        ExportSource::Query(sql) => session.query_stream(sql).await?.1,
    };
    let target = match objects::is_object_url(path) {
        true => Target::Object(ObjectUrl::parse(path)?.one_object(path)?),
        false => Target::Local(PathBuf::from(path)),
    };
    target.write(false, (format, csv), stream, progress).await
}

/// How `driftdb load` reads and commits.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The format of every file (else each file's extension says).
    pub format: Option<FileFormat>,
    pub csv: CsvOptions,
    /// Rows per commit.
    pub batch_rows: usize,
    /// Rows (over all files, in order) already loaded: skipped.
    pub skip_rows: u64,
}

/// One committed chunk of a load.
#[derive(Debug, Clone, Copy)]
pub struct LoadChunk {
    /// Rows of the files read so far, skipped ones included.
    pub rows_done: u64,
    /// Bytes of the files read so far.
    pub bytes_read: u64,
    /// The commit that made the chunk durable.
    pub seq: Option<u64>,
}

/// Load `files` (local paths, or object-store URLs or key patterns) into
/// `table`, committing every `options.batch_rows` rows; `on_chunk` hears
/// of each commit. Returns the rows loaded (not skipped).
pub async fn load(
    session: &mut Session,
    table: &str,
    files: &[String],
    options: &LoadOptions,
    on_chunk: &mut (dyn FnMut(LoadChunk) -> Result<()> + Send),
) -> Result<u64> {
    if options.batch_rows == 0 {
        return Err(Error::InvalidArgument {
            message: "batch_rows must be at least 1".into(),
        });
    }
    let batch_rows = options.batch_rows;
    let bytes = Arc::new(AtomicU64::new(0));
    let (mut seen, mut loaded) = (0u64, 0u64);
    let mut chunk: Vec<RecordBatch> = Vec::new();
    let mut chunk_rows = 0usize;
    for source in SourceFile::unchecked(files).await? {
        let (file, opened) = source.open().await?;
        let file = file.as_str();
        let format = FileFormat::resolve(options.format, file)?;
        let (schema, reader) = open_typed(file, opened, format, &options.csv, bytes.clone())?;
        let mut commit = async |chunk: &mut Vec<RecordBatch>, seen: u64| -> Result<u64> {
            let (rows, seq) = commit_chunk(session, (table, &schema), chunk, (file, seen)).await?;
            on_chunk(LoadChunk {
                rows_done: seen,
                bytes_read: bytes.load(Ordering::Relaxed),
                seq,
            })?;
            Ok(rows)
        };
        for batch in reader {
            let batch = batch?;
            let rows = batch.num_rows();
            let skip = (options.skip_rows.saturating_sub(seen) as usize).min(rows);
            seen += skip as u64;
            let mut rest = batch.slice(skip, rows - skip);
            // Exactly `batch_rows` rows per commit, whatever the batch sizes.
            while rest.num_rows() > 0 {
                let take = (batch_rows - chunk_rows).min(rest.num_rows());
                chunk.push(rest.slice(0, take));
                rest = rest.slice(take, rest.num_rows() - take);
                (chunk_rows, seen) = (chunk_rows + take, seen + take as u64);
                if chunk_rows == batch_rows {
                    loaded += commit(&mut chunk, seen).await?;
                    chunk_rows = 0;
                }
            }
        }
        if !chunk.is_empty() {
            loaded += commit(&mut chunk, seen).await?;
            chunk_rows = 0;
        }
    }
    Ok(loaded)
}

/// Ingest `chunk` (emptied), the rows of `file` up to row `through`, in
/// one commit; its rows and commit.
async fn commit_chunk(
    session: &mut Session,
    (table, schema): (&str, &SchemaRef),
    chunk: &mut Vec<RecordBatch>,
    (file, through): (&str, u64),
) -> Result<(u64, Option<u64>)> {
    let batches = std::mem::take(chunk);
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let done = session
        .ingest(table, IngestMode::CreateOrAppend, schema, &batches)
        .await
        .map_err(|e| Error::WithContext {
            context: format!(
                "loading \"{}\", rows {}..={through} of all files",
                printable(file),
                through + 1 - rows
            ),
            inner: Box::new(e),
        })?;
    Ok((done.rows_affected.unwrap_or(0), done.seq))
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// The rows of `opened` (called `file`) in its own types, counting the
/// bytes read into `bytes`.
fn open_typed(
    file: &str,
    mut opened: File,
    format: FileFormat,
    csv: &CsvOptions,
    bytes: Arc<AtomicU64>,
) -> Result<(SchemaRef, Batches)> {
    let schema = Arc::new(file_schema(file, opened.try_clone()?, format, csv)?);
    opened.seek(SeekFrom::Start(0))?;
    let name = file.to_string();
    let bad = move |e: arrow::error::ArrowError| Error::BadFileData {
        file: name.clone(),
        detail: e.to_string(),
    };
    let file_bytes = opened.metadata().map(|m| m.len()).unwrap_or(0);
    let read = bytes.clone();
    let reader: Batches = match format {
        FileFormat::Csv => {
            let mut builder = arrow::csv::ReaderBuilder::new(schema.clone())
                .with_header(csv.header)
                .with_delimiter(csv.delimiter)
                .with_quote(csv.quote)
                .with_batch_size(LOAD_READ_BATCH_ROWS);
            if let Some(escape) = csv.escape {
                builder = builder.with_escape(escape);
            }
            let reader = builder
                .build(Counted::buffered(opened, bytes))
                .map_err(&bad)?;
            Box::new(reader.map(move |b| b.map_err(&bad)))
        }
        FileFormat::Json => {
            let reader = arrow::json::ReaderBuilder::new(schema.clone())
                .with_batch_size(LOAD_READ_BATCH_ROWS)
                .build(Counted::buffered(opened, bytes))
                .map_err(&bad)?;
            Box::new(reader.map(move |b| b.map_err(&bad)))
        }
        FileFormat::Parquet => {
            use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
            let builder = ParquetRecordBatchReaderBuilder::try_new(opened)?;
            let total = builder.metadata().file_metadata().num_rows().max(1) as u64;
            let reader = builder.with_batch_size(LOAD_READ_BATCH_ROWS).build()?;
            let mut rows = 0u64;
            Box::new(reader.map(move |batch| {
                let batch = batch.map_err(&bad)?;
                rows += batch.num_rows() as u64;
                read.store(file_bytes * rows / total, Ordering::Relaxed);
                Ok(batch)
            }))
        }
    };
    Ok((schema, reader))
}

/// A reader that adds the bytes it reads to a counter.
struct Counted<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Counted<R> {
    fn buffered(inner: R, bytes: Arc<AtomicU64>) -> BufReader<Self> {
        BufReader::new(Self { inner, bytes })
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
