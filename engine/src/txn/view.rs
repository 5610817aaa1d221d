//! What a transaction's own statements see on top of their snapshot: its
//! schema changes (a private copy of the catalog), the rows it inserted and
//! the rows it retired. Only that transaction's reads of "now" (no `AS OF`)
//! at exactly [`TxnView::seq`] use it; nobody else ever does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::catalog::Catalog;
use crate::storage::MemBatch;

use super::{KeyColumn, KeyHash, PkKey};

/// `_rowid`s at or above this are provisional: rows a transaction inserted
/// and has not committed yet (real ids are assigned at commit).
pub const PROVISIONAL_ROWID_BASE: u64 = 1 << 62;

/// A transaction's net changes to one table.
#[derive(Debug, Clone, Default)]
pub struct OwnWrites {
    /// Rows it inserted, with provisional `_rowid`s and `_seq` 0.
    pub rows: Vec<MemBatch>,
    /// The primary keys of `rows`, batch by batch.
    pub row_keys: Vec<KeyColumn>,
    /// Every row it retired (committed and provisional ones).
    pub retired: Arc<HashSet<u64>>,
    /// The committed rows it retired, in order, and their keys (empty without one).
    pub retired_committed: Arc<Vec<u64>>,
    pub retired_keys: Arc<Vec<PkKey>>,
    /// Keys it took (`Some(provisional rowid)`) or freed (`None`).
    pub keys: Arc<HashMap<PkKey, Option<u64>, KeyHash>>,
}

impl OwnWrites {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.retired.is_empty()
    }
}

/// The overlay a transaction's statements read through.
#[derive(Debug)]
pub struct TxnView {
    /// The snapshot it sits on.
    pub seq: u64,
    /// The catalog with the transaction's schema changes applied at `seq`.
    pub catalog: Option<Arc<Catalog>>,
    pub tables: HashMap<u64, OwnWrites>,
    /// Tables read, recorded for SERIALIZABLE validation at commit.
    pub reads: Option<Arc<Mutex<HashSet<u64>>>>,
}

impl TxnView {
    /// The transaction's writes to `table_id`, if any.
    pub fn own(&self, table_id: u64) -> Option<&OwnWrites> {
        self.tables.get(&table_id).filter(|o| !o.is_empty())
    }

    /// Record that the transaction read `table_id`.
    pub fn note_read(&self, table_id: u64) {
        if let Some(reads) = &self.reads {
            reads.lock().insert(table_id);
        }
    }

    /// Who holds `key` in `table_id` as far as this transaction decided:
    /// `Some(Some(rowid))` it inserted it, `Some(None)` it freed it, `None` undecided.
    pub fn key_holder(&self, table_id: u64, key: &PkKey) -> Option<Option<u64>> {
        self.tables.get(&table_id)?.keys.get(key).copied()
    }
}
