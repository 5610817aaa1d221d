//! Writing memtable batches as one Parquet file (zstd, row groups sized for
//! pruning), with the length and xxh64 its checkpoint entry records.

use arrow::array::{Array, UInt64Array};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::catalog::{RETIRED_COLUMN, ROWID_COLUMN, SEQ_COLUMN};
use crate::error::{Error, Result};
use crate::storage::DataFile;

/// Encode `batches` (all in `schema`; sorted by `_rowid`, history-tier rows by `_retired_seq`) as Parquet bytes
/// plus their file entry; batches with a `_retired_seq` column make a
/// history-tier file.
pub fn encode_parquet(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    path: String,
    row_group_rows_max: usize,
) -> Result<(Vec<u8>, DataFile)> {
    let batch = concat_batches(schema, batches)?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(row_group_rows_max))
        .set_statistics_enabled(EnabledStatistics::Page);
    // `_rowid` ascends and `_seq` is nearly constant: delta encoding stores
    // them in a few bits per row. A dictionary (the default) would hold every
    // distinct rowid and then fall back to plain values, which made decoding
    // the two system columns cost more than a TPC-H query's own columns.
    for system in [ROWID_COLUMN, SEQ_COLUMN, RETIRED_COLUMN] {
        let column = ColumnPath::from(system);
        props = props
            .set_column_dictionary_enabled(column.clone(), false)
            .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED);
    }
    let props = props.build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema.clone(), Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    let (min_rowid, max_rowid) = min_max(&batch, ROWID_COLUMN)?;
    let (min_seq, max_seq) = min_max(&batch, SEQ_COLUMN)?;
    let retired_seqs = match batch.column_by_name(RETIRED_COLUMN) {
        Some(_) => Some(min_max(&batch, RETIRED_COLUMN)?),
        None => None,
    };
    let file = DataFile {
        path,
        rows: batch.num_rows() as u64,
        bytes: bytes.len() as u64,
        min_seq,
        max_seq,
        min_rowid,
        max_rowid,
        column_stats: crate::storage::stats::batch_column_stats(&batch),
        xxh64: Some(crate::storage::envelope::xxh64(&bytes)),
        retired_seqs,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    #[test]
    fn system_columns_are_delta_encoded_and_read_back_exactly() {
        let rows = 50_000_u64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("c1", DataType::Int64, false),
            Field::new(ROWID_COLUMN, DataType::UInt64, false),
            Field::new(SEQ_COLUMN, DataType::UInt64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    (0..rows as i64).map(|i| i % 7),
                )),
                Arc::new(UInt64Array::from_iter_values(1_000..1_000 + rows)),
                Arc::new(UInt64Array::from_iter_values(
                    (0..rows).map(|i| 5 + i / 20_000),
                )),
            ],
        )
        .unwrap();
        let (bytes, file) =
            encode_parquet(&schema, std::slice::from_ref(&batch), "t".into(), 16_384).unwrap();
        assert_eq!((file.min_rowid, file.max_rowid), (1_000, 1_000 + rows - 1));
        assert_eq!((file.min_seq, file.max_seq), (5, 7));
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let metadata = reader.metadata().clone();
        for group in metadata.row_groups() {
            for column in &group.columns()[1..] {
                let encodings: Vec<Encoding> = column.encodings().collect();
                assert!(
                    encodings.contains(&Encoding::DELTA_BINARY_PACKED),
                    "{encodings:?}"
                );
                assert!(
                    !encodings.contains(&Encoding::RLE_DICTIONARY),
                    "{encodings:?}"
                );
            }
        }
        let read: Vec<RecordBatch> = reader.build().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(concat_batches(&schema, &read).unwrap(), batch);
    }
}
