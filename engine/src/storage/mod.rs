//! Where row versions live: the memtable of recent commits, immutable
//! Parquet files, retirements, and the checkpoints that tie them together;
//! where a database lives ([`location`]: a folder, memory, a bucket), the
//! writer lease on object storage ([`lease`]) and the local disk cache of
//! its data files ([`cache`]);
//! the durable local file I/O every stored file is written through
//! ([`durable`]), the checksummed envelope of checkpoints ([`envelope`]),
//! the check of each data file before its first read ([`verify`]), the
//! offline check of a whole database ([`check`]), fault injection for
//! object storage ([`faults`]) and the simulated disk that power-loss
//! tests cut the power of ([`simfs`]).

pub mod cache;
pub mod check;
pub mod checkpoint;
pub mod durable;
pub mod envelope;
pub mod faults;
pub mod lease;
pub mod location;
pub mod memtable;
pub mod parquet_file;
pub mod simfs;
pub mod stats;
pub mod verify;

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
    /// xxh64 of the whole file, checked with `bytes` before its first read
    /// (None: written before checksums were recorded; length only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xxh64: Option<u64>,
    /// Set for a history-tier file (written by compaction): every version
    /// in it was retired, each at the seq in its `_retired_seq` column, and
    /// these are the lowest and highest of them. The retirement map holds
    /// none of its rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_seqs: Option<(u64, u64)>,
}

impl DataFile {
    /// Whether a version in this file may be live at some snapshot in
    /// `from..=to` (by its seq and retirement ranges; current-tier files
    /// are pruned by the retirement map instead).
    pub fn may_be_live_within(&self, from: u64, to: u64) -> bool {
        self.min_seq <= to && self.retired_seqs.is_none_or(|(_, last)| last > from)
    }
}

/// `_rowid` → the `seq` that retired that row version.
pub type Retirements = HashMap<u64, u64, ahash::RandomState>;

/// Everything stored for one table (all versions, all schema versions).
#[derive(Debug, Default, Clone)]
pub struct TableData {
    pub memtable: Vec<MemBatch>,
    pub files: Vec<Arc<DataFile>>,
    /// For each file (same order), the seqs that retired its rows, ascending;
    /// a file is wholly retired at S once as many as it has rows are <= S.
    pub file_retire_seqs: Vec<Vec<u64>>,
    pub retired: Arc<Retirements>,
    /// History-tier files (retired versions that compaction moved out of
    /// `files`), oldest compaction first; their rowid ranges overlap the
    /// current tier's, so they are kept apart from `files`.
    pub history: Vec<Arc<DataFile>>,
    /// Live row versions at the latest commit.
    pub live_rows: u64,
}

impl TableData {
    /// Add a data file, counting the retirements already recorded for its rows.
    /// Files arrive in `_rowid` order (rowids grow with seq and persists take
    /// the memtable in seq order), so their rowid ranges are disjoint and sorted.
    pub fn add_file(&mut self, file: Arc<DataFile>) {
        debug_assert!(
            self.files
                .last()
                .is_none_or(|f| f.max_rowid < file.min_rowid)
        );
        let seqs = self.retire_seqs_of(&file);
        self.files.push(file);
        self.file_retire_seqs.push(seqs);
    }

    /// The seqs that retired rows in `file`'s `_rowid` range, ascending.
    pub fn retire_seqs_of(&self, file: &DataFile) -> Vec<u64> {
        let mut seqs: Vec<u64> = self
            .retired
            .iter()
            .filter(|(rowid, _)| (file.min_rowid..=file.max_rowid).contains(*rowid))
            .map(|(_, seq)| *seq)
            .collect();
        seqs.sort_unstable();
        seqs
    }

    /// Note that `rowids` were retired at `seq` (seqs arrive in ascending order).
    pub fn retire(&mut self, rowids: &[u64], seq: u64) {
        let retired = Arc::make_mut(&mut self.retired);
        for rowid in rowids {
            retired.insert(*rowid, seq);
            let i = self.files.partition_point(|f| f.max_rowid < *rowid);
            if self.files.get(i).is_some_and(|f| f.min_rowid <= *rowid) {
                self.file_retire_seqs[i].push(seq);
            }
        }
        self.live_rows = self.live_rows.saturating_sub(rowids.len() as u64);
    }

    /// Whether file `i` still has a row version live at snapshot `seq`.
    pub fn file_has_live_rows_at(&self, i: usize, seq: u64) -> bool {
        let retired = self.file_retire_seqs[i].partition_point(|s| *s <= seq) as u64;
        retired < self.files[i].rows
    }

    pub fn memtable_bytes(&self) -> usize {
        self.memtable
            .iter()
            .map(|m| m.batch.get_array_memory_size())
            .sum()
    }
}
