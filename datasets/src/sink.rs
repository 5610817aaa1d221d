//! Where generated batches go: a DriftDB database (one commit per
//! [`COMMIT_ROWS`] rows, the first creating the table) or one Parquet file
//! per table.

use std::fs::File;
use std::path::Path;

use arrow::record_batch::RecordBatch;
use driftdb_engine::sql::IngestMode;
use driftdb_engine::{Database, Session};
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
    std::fs::create_dir_all(dir)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .build();
    let mut writer: Option<ArrowWriter<File>> = None;
    for batch in batches {
        let batch = batch?;
        if writer.is_none() {
            let file = File::create(dir.join(format!("{table}.parquet")))?;
            writer = Some(ArrowWriter::try_new(
                file,
                batch.schema(),
                Some(properties.clone()),
            )?);
        }
        if let Some(writer) = writer.as_mut() {
            writer.write(&batch)?;
        }
        progress.add(batch.num_rows());
    }
    if let Some(writer) = writer {
        writer.close()?;
    }
    Ok(progress.rows())
}
