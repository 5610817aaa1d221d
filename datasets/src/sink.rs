//! Where generated batches go: a DriftDB database (one commit per
//! [`COMMIT_ROWS`] rows, the first creating the table) or one Parquet file
//! per table; and a database's whole history out to Parquet files
//! ([`history_to_parquet`]), for the datasets whose point is their history.

use std::fs::File;
use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use driftdb_engine::sql::IngestMode;
use driftdb_engine::{Database, Session};
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::Result;
use crate::progress::Progress;
use crate::tpch::Batches;

/// Rows gathered into one commit when loading a database.
pub const COMMIT_ROWS: usize = 1 << 20;

/// Load `batches` into a new table `table` of `db`; returns the rows written.
pub async fn into_database(
    db: &Database,
    table: &str,
    batches: Batches,
    progress: &mut Progress,
) -> Result<u64> {
    let mut session = Session::new(db);
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut pending_rows = 0;
    let mut mode = IngestMode::Create;
    for batch in batches {
        let batch = batch?;
        pending_rows += batch.num_rows();
        progress.add(batch.num_rows());
        pending.push(batch);
        if pending_rows >= COMMIT_ROWS {
            commit(&mut session, table, mode, &mut pending).await?;
            mode = IngestMode::Append;
            pending_rows = 0;
        }
    }
    if !pending.is_empty() {
        commit(&mut session, table, mode, &mut pending).await?;
    }
    Ok(progress.rows())
}

async fn commit(
    session: &mut Session,
    table: &str,
    mode: IngestMode,
    pending: &mut Vec<RecordBatch>,
) -> Result<()> {
    let schema = pending[0].schema();
    session.ingest(table, mode, &schema, pending).await?;
    pending.clear();
    Ok(())
}

/// Write `batches` to `<dir>/<table>.parquet` (zstd); returns the rows written.
pub fn to_parquet(
    dir: &Path,
    table: &str,
    batches: Batches,
    progress: &mut Progress,
) -> Result<u64> {
    let mut file: Option<ParquetFile> = None;
    for batch in batches {
        let batch = batch?;
        let file = match file.as_mut() {
            Some(file) => file,
            None => file.insert(ParquetFile::create(dir, table, batch.schema())?),
        };
        file.write(&batch)?;
        progress.add(batch.num_rows());
    }
    if let Some(file) = file {
        file.close()?;
    }
    Ok(progress.rows())
}

/// Write the whole history of `tables` in `db` as Parquet, for engines that
/// read files: `<dir>/<table>.parquet` holds every version of every row (the
/// table's columns, then `_rowid`, `_seq`, `_system_from`, `_system_to`, in
/// commit order), and `<dir>/commits.parquet` the commit log. The state AS OF
/// commit `v` is the versions with `_seq <= v` whose `_system_to` is NULL or
/// later than commit `v`'s `commit_time` (commit times strictly increase).
/// Returns the versions written.
pub async fn history_to_parquet(
    db: &Database,
    dir: &Path,
    tables: &[&str],
    quiet: bool,
) -> Result<u64> {
    let mut session = Session::new(db);
    let mut versions = 0;
    for table in tables {
        let sql = format!("SELECT * FROM history('{table}') ORDER BY _seq, _rowid");
        let mut progress = Progress::start(&format!("{table} history"), quiet);
        query_to_parquet(&mut session, &sql, dir, table, &mut progress).await?;
        versions += progress.rows();
        progress.finish();
    }
    let mut progress = Progress::start("commits", true);
    query_to_parquet(&mut session, COMMITS_QUERY, dir, "commits", &mut progress).await?;
    Ok(versions)
}

/// The commit log, oldest first.
const COMMITS_QUERY: &str = "SELECT * FROM commits() ORDER BY seq";

/// Stream the result of `sql` into `<dir>/<name>.parquet`.
async fn query_to_parquet(
    session: &mut Session,
    sql: &str,
    dir: &Path,
    name: &str,
    progress: &mut Progress,
) -> Result<()> {
    let (_, mut stream) = session.query_stream(sql).await?;
    let mut file = ParquetFile::create(dir, name, stream.schema())?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(driftdb_engine::Error::from)?;
        file.write(&batch)?;
        progress.add(batch.num_rows());
    }
    file.close()
}

/// One zstd-compressed Parquet file being written.
struct ParquetFile {
    writer: ArrowWriter<File>,
}

impl ParquetFile {
    /// Create `<dir>/<name>.parquet` (and `dir` if missing).
    fn create(dir: &Path, name: &str, schema: SchemaRef) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .build();
        let file = File::create(dir.join(format!("{name}.parquet")))?;
        Ok(Self {
            writer: ArrowWriter::try_new(file, schema, Some(properties))?,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        Ok(self.writer.write(batch)?)
    }

    fn close(self) -> Result<()> {
        self.writer.close()?;
        Ok(())
    }
}
