//! Writing memtable batches as one Parquet file (zstd, row groups sized for pruning).

use arrow::array::{Array, UInt64Array};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::catalog::{ROWID_COLUMN, SEQ_COLUMN};
use crate::error::{Error, Result};
use crate::storage::DataFile;

/// Encode `batches` (all in `schema`, sorted by `_rowid`) as Parquet bytes plus their file entry.
pub fn encode_parquet(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    path: String,
    row_group_rows_max: usize,
) -> Result<(Vec<u8>, DataFile)> {
    let batch = concat_batches(schema, batches)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(row_group_rows_max))
        .set_statistics_enabled(EnabledStatistics::Page)
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema.clone(), Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    let (min_rowid, max_rowid) = min_max(&batch, ROWID_COLUMN)?;
    let (min_seq, max_seq) = min_max(&batch, SEQ_COLUMN)?;
    let file = DataFile {
        path,
        rows: batch.num_rows() as u64,
        bytes: bytes.len() as u64,
        min_seq,
        max_seq,
        min_rowid,
        max_rowid,
        column_stats: crate::storage::stats::batch_column_stats(&batch),
    };
    Ok((bytes, file))
}

fn min_max(batch: &RecordBatch, column: &str) -> Result<(u64, u64)> {
    let array = batch
        .column_by_name(column)
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .ok_or_else(|| Error::internal(format!("batch lacks {column}")))?;
    debug_assert_eq!(array.null_count(), 0);
    let min = arrow::compute::min(array).unwrap_or(0);
    let max = arrow::compute::max(array).unwrap_or(0);
    Ok((min, max))
}
