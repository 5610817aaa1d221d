//! Where row versions live: the memtable of recent commits, immutable
//! Parquet files, retirements, and the checkpoints that tie them together.

pub mod checkpoint;
pub mod location;
pub mod memtable;
pub mod parquet_file;
pub mod stats;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use memtable::MemBatch;

/// One immutable Parquet file of row versions (sorted by `_rowid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path inside the database's object store.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub min_seq: u64,
    pub max_seq: u64,
    pub min_rowid: u64,
    pub max_rowid: u64,
    /// Statistics of the user columns stored in the file.
    #[serde(default)]
    pub column_stats: Vec<stats::ColumnStats>,
}

/// `_rowid` → the `seq` that retired that row version.
pub type Retirements = HashMap<u64, u64>;

/// Everything stored for one table (all versions, all schema versions).
#[derive(Debug, Default, Clone)]
pub struct TableData {
    pub memtable: Vec<MemBatch>,
    pub files: Vec<Arc<DataFile>>,
    pub retired: Arc<Retirements>,
    /// Live row versions at the latest commit.
    pub live_rows: u64,
}

impl TableData {
    pub fn memtable_bytes(&self) -> usize {
        self.memtable
            .iter()
            .map(|m| m.batch.get_array_memory_size())
            .sum()
    }
}
