//! Write sets and transactions: what a statement or a transaction wants
//! to commit.
//!
//! The SQL layer turns statements into [`Write`]s against a snapshot; the
//! database validates them against the latest state and commits them
//! atomically (see [`crate::db::Database::commit`]). Inside `BEGIN … COMMIT`
//! a [`Transaction`] collects them first and its statements read through a
//! [`TxnView`].

pub mod transaction;
pub mod view;

pub use transaction::{IsolationLevel, Transaction, TxnOptions};
pub use view::{PROVISIONAL_ROWID_BASE, TxnView};

use arrow::record_batch::RecordBatch;

use crate::catalog::{
    CheckDef, ColumnDef, ForeignKeyDef, IndexDef, SequenceDef, TableDef, UniqueDef, ViewDef,
};

pub use crate::constraints::keys::{Key, KeyColumn, KeyHash, KeyIndex, PkKey};

/// One change a statement makes.
#[derive(Debug, Clone)]
pub enum Write {
    /// `created_seq` is filled in at commit.
    CreateTable(TableDef),
    DropTable {
        table_id: u64,
    },
    SetColumns {
        table_id: u64,
        columns: Vec<ColumnDef>,
        next_column_id: u32,
    },
    /// `ALTER TABLE … RENAME TO name`: the table's name from this commit on.
    RenameTable {
        table_id: u64,
        name: String,
    },
    /// The table's CHECK constraints from this commit on.
    SetChecks {
        table_id: u64,
        checks: Vec<CheckDef>,
    },
    /// The table's UNIQUE constraints from this commit on, and how to get their index.
    SetUniques {
        table_id: u64,
        uniques: Vec<UniqueDef>,
        build: UniqueBuild,
    },
    /// The table's FOREIGN KEY constraints from this commit on.
    SetForeignKeys {
        table_id: u64,
        foreign_keys: Vec<ForeignKeyDef>,
    },
    /// The table's secondary indexes from this commit on.
    SetIndexes {
        table_id: u64,
        indexes: Vec<IndexDef>,
    },
    /// The table's history policy from this commit on (`VACUUM`,
    /// `history_retention`); its horizon never moves back.
    SetHistory {
        table_id: u64,
        policy: crate::catalog::HistoryPolicy,
    },
    CreateView(ViewDef),
    DropView {
        name: String,
    },
    /// `created_seq` is filled in at commit.
    CreateSequence(SequenceDef),
    DropSequence {
        id: u64,
    },
    /// `CREATE TAG`: `created_seq` is filled in at commit.
    CreateTag(crate::catalog::TagDef),
    /// `DROP TAG name`.
    DropTag {
        name: String,
    },
    /// New rows in the table's current physical user schema; `keys` are their primary keys.
    Insert {
        table_id: u64,
        batch: RecordBatch,
        keys: KeyColumn,
    },
    /// Row versions to retire; `keys` are their primary keys (empty without one).
    Retire {
        table_id: u64,
        rowids: Vec<u64>,
        keys: KeyColumn,
    },
}

/// How a commit that changes a table's UNIQUE constraints gets their index.
#[derive(Debug, Clone)]
pub enum UniqueBuild {
    /// Keep these constraints' entries of the current index (DROP CONSTRAINT).
    Keep(Vec<usize>),
    /// Built from every live row by the statement (ADD CONSTRAINT).
    Index(std::sync::Arc<crate::constraints::unique::UniqueIndex>),
}

/// Everything one commit will do, in order.
#[derive(Debug, Clone, Default)]
pub struct WriteSet {
    /// Statement kind shown by `commits()`, e.g. `INSERT`.
    pub kind: String,
    pub writes: Vec<Write>,
}

impl WriteSet {
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            writes: Vec::new(),
        }
    }

    pub fn push(&mut self, write: Write) {
        self.writes.push(write);
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The tables this write set drops.
    pub fn dropped_tables(&self) -> Vec<u64> {
        self.writes
            .iter()
            .filter_map(|w| match w {
                Write::DropTable { table_id } => Some(*table_id),
                _ => None,
            })
            .collect()
    }
}

impl Extend<Write> for WriteSet {
    fn extend<I: IntoIterator<Item = Write>>(&mut self, writes: I) {
        self.writes.extend(writes);
    }
}
