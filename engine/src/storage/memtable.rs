//! The memtable: row versions of recent commits, queryable at once.
//!
//! Each insert of a commit becomes one [`MemBatch`] in the physical schema
//! of the table at that commit (user columns as `c<id>`, then `_rowid`, `_seq`).

use std::sync::{Arc, OnceLock};

use crate::storage::stats::{ColumnStats, batch_column_stats};

use arrow::array::{ArrayRef, UInt64Array};
use arrow::record_batch::RecordBatch;

use crate::catalog::{ColumnDef, physical_schema};
use crate::error::Result;

/// Row versions written by the inserts of commits `min_seq..=max_seq`.
#[derive(Debug, Clone)]
pub struct MemBatch {
    pub min_seq: u64,
    pub max_seq: u64,
    pub batch: RecordBatch,
    /// Column statistics, computed on first use and shared by snapshots.
    stats: Arc<OnceLock<Vec<ColumnStats>>>,
}

impl MemBatch {
    pub fn new(min_seq: u64, max_seq: u64, batch: RecordBatch) -> Self {
        Self {
            min_seq,
            max_seq,
            batch,
            stats: Arc::default(),
        }
    }

    /// Statistics of the chunk's user columns.
    pub fn column_stats(&self) -> &[ColumnStats] {
        self.stats.get_or_init(|| batch_column_stats(&self.batch))
    }
}

/// Append a commit's batch to a table's memtable, merging it into the last
/// chunk when that chunk is small, has the same schema, and is not frozen
/// for a persist (`min_seq > sealed_through`).
pub fn append_chunk(
    memtable: &mut Vec<MemBatch>,
    batch: RecordBatch,
    seq: u64,
    sealed_through: u64,
    chunk_rows_max: usize,
) -> Result<()> {
    if let Some(last) = memtable.last_mut()
        && last.min_seq > sealed_through
        && last.batch.schema() == batch.schema()
        && last.batch.num_rows() + batch.num_rows() <= chunk_rows_max
    {
        last.batch = arrow::compute::concat_batches(&batch.schema(), [&last.batch, &batch])?;
        last.max_seq = seq;
        last.stats = Arc::default();
        return Ok(());
    }
    memtable.push(MemBatch::new(seq, seq, batch));
    Ok(())
}

/// Add `_rowid` (`first_rowid..`) and `_seq` columns to a batch of user columns.
pub fn with_system_columns(
    columns: &[ColumnDef],
    user_batch: &RecordBatch,
    first_rowid: u64,
    seq: u64,
) -> Result<RecordBatch> {
    let rows = user_batch.num_rows() as u64;
    let rowids: ArrayRef = Arc::new(UInt64Array::from_iter_values(
        first_rowid..first_rowid + rows,
    ));
    let seqs: ArrayRef = Arc::new(UInt64Array::from_iter_values(std::iter::repeat_n(
        seq,
        rows as usize,
    )));
    let mut arrays = user_batch.columns().to_vec();
    arrays.push(rowids);
    arrays.push(seqs);
    let batch = RecordBatch::try_new(physical_schema(columns), arrays)?;
    debug_assert_eq!(batch.num_columns(), columns.len() + 2);
    Ok(batch)
}
