//! Explicit transactions (`BEGIN … COMMIT`).
//!
//! A transaction never touches shared state before COMMIT. Each statement's
//! write set is validated against the latest commits *and* the
//! transaction's earlier writes, then folded into [`TxnWrites`]; its later
//! statements see those writes through a [`TxnView`]. Nobody else can, at
//! any `AS OF`, because they exist nowhere else. COMMIT turns the net
//! effect into one write set and commits it like any other statement (one
//! `seq`, group committed), re-validated against every commit made meanwhile.
//!
//! Isolation levels:
//! - READ COMMITTED: each statement reads the latest commit.
//! - REPEATABLE READ (the default): snapshot isolation. The first statement
//!   pins the snapshot; changing a row a concurrent commit changed is a
//!   write-write conflict (40001), found when the statement runs or at
//!   COMMIT (first committer wins).
//! - SERIALIZABLE: snapshot isolation plus validation of reads at COMMIT:
//!   if a table a writing transaction read was changed by a commit after
//!   its snapshot, COMMIT fails with 40001. A committed serializable writer
//!   thus behaves as if it ran alone at its commit point, so writers are
//!   serialized in commit order and every snapshot is a state of that
//!   serial history: read-only transactions need no check and never fail.
//!   Reads are tracked per table: conservative (more retries), never wrong.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{Array, BooleanArray, UInt64Array};
use arrow::compute::filter_record_batch;
use parking_lot::Mutex;
use sqlparser::ast::{TransactionAccessMode, TransactionIsolationLevel, TransactionMode};

use super::view::{OwnWrites, PROVISIONAL_ROWID_BASE, TxnView};
use super::{KeyColumn, KeyHash, PkKey, Write, WriteSet};
use crate::catalog::{Catalog, TableDef};
use crate::constraints::{check_not_null, unique_violation};
use crate::db::{CommitChecks, Database, apply_catalog_op, schema_op};
use crate::error::{Error, Result};
use crate::storage::MemBatch;
use crate::storage::memtable::with_system_columns;

/// How much a transaction sees of concurrent commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    ReadCommitted,
    #[default]
    RepeatableRead,
    Serializable,
}

impl IsolationLevel {
    /// The name `SHOW transaction_isolation` prints (PostgreSQL's spelling).
    pub fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadCommitted => "read committed",
            IsolationLevel::RepeatableRead => "repeatable read",
            IsolationLevel::Serializable => "serializable",
        }
    }

    /// READ UNCOMMITTED behaves as READ COMMITTED and SNAPSHOT as REPEATABLE READ (PostgreSQL).
    pub fn from_sql(level: TransactionIsolationLevel) -> Self {
        match level {
            TransactionIsolationLevel::ReadUncommitted
            | TransactionIsolationLevel::ReadCommitted => IsolationLevel::ReadCommitted,
            TransactionIsolationLevel::RepeatableRead | TransactionIsolationLevel::Snapshot => {
                IsolationLevel::RepeatableRead
            }
            TransactionIsolationLevel::Serializable => IsolationLevel::Serializable,
        }
    }

    /// Parse a setting value such as `'repeatable read'` or `serializable`.
    pub fn parse(text: &str) -> Result<Self> {
        let words = text
            .trim_matches(|c| c == '\'' || c == '"')
            .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase();
        match words.as_str() {
            "read uncommitted" | "read committed" => Ok(IsolationLevel::ReadCommitted),
            "repeatable read" | "snapshot" | "default" => Ok(IsolationLevel::RepeatableRead),
            "serializable" => Ok(IsolationLevel::Serializable),
            _ => Err(Error::InvalidArgument {
                message: format!("invalid value for parameter \"transaction_isolation\": {text}"),
            }),
        }
    }
}

/// Isolation level and access mode of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxnOptions {
    pub isolation: IsolationLevel,
    pub read_only: bool,
}

impl TxnOptions {
    /// Apply `ISOLATION LEVEL …`, `READ ONLY`, `READ WRITE` modes.
    pub fn with_modes(mut self, modes: &[TransactionMode]) -> Self {
        for mode in modes {
            match mode {
                TransactionMode::IsolationLevel(level) => {
                    self.isolation = IsolationLevel::from_sql(*level)
                }
                TransactionMode::AccessMode(access) => {
                    self.read_only = *access == TransactionAccessMode::ReadOnly
                }
            }
        }
        self
    }
}

/// Everything a transaction changed so far (cheap to clone: a savepoint).
#[derive(Debug, Clone, Default)]
struct TxnWrites {
    /// Schema changes, in order.
    schema: Vec<Write>,
    tables: HashMap<u64, OwnWrites>,
}

/// An open transaction block.
#[derive(Debug)]
pub struct Transaction {
    pub options: TxnOptions,
    /// The snapshot every statement reads (REPEATABLE READ, SERIALIZABLE), once pinned.
    pinned: Option<u64>,
    /// The oldest snapshot any statement read: the horizon for conflicts.
    first_seq: Option<u64>,
    writes: TxnWrites,
    savepoints: Vec<(String, TxnWrites)>,
    aborted: bool,
    /// Set by a result stream of this block that failed after its statement returned.
    stream_failed: Arc<AtomicBool>,
    reads: Arc<Mutex<HashSet<u64>>>,
    next_rowid: u64,
    /// The private catalog for the snapshot it was built at (schema changes only).
    catalog: Option<(u64, Arc<Catalog>)>,
}

impl Transaction {
    pub fn new(options: TxnOptions) -> Self {
        Self {
            options,
            pinned: None,
            first_seq: None,
            writes: TxnWrites::default(),
            savepoints: Vec::new(),
            aborted: false,
            stream_failed: Arc::default(),
            reads: Arc::default(),
            next_rowid: PROVISIONAL_ROWID_BASE,
            catalog: None,
        }
    }

    /// Whether a statement has run (the snapshot and isolation level are fixed then).
    pub fn has_started(&self) -> bool {
        self.first_seq.is_some()
    }

    pub fn is_aborted(&self) -> bool {
        self.aborted || self.stream_failed.load(Ordering::Acquire)
    }

    /// A flag a streamed result raises when it fails, aborting the block
    /// just as a failed statement does.
    pub fn failure_flag(&self) -> Arc<AtomicBool> {
        self.stream_failed.clone()
    }

    /// A statement failed: everything up to ROLLBACK [TO SAVEPOINT] fails with 25P02.
    pub fn abort(&mut self) {
        self.aborted = true;
    }

    /// The snapshot the next statement reads, given the latest commit.
    pub fn statement_seq(&mut self, latest: u64) -> u64 {
        let seq = match self.options.isolation {
            IsolationLevel::ReadCommitted => latest,
            _ => *self.pinned.get_or_insert(latest),
        };
        self.first_seq.get_or_insert(seq);
        seq
    }

    /// The overlay for a statement reading `seq` (None when there is nothing to overlay).
    pub fn view(&mut self, db: &Database, seq: u64) -> Option<Arc<TxnView>> {
        let serializable = self.options.isolation == IsolationLevel::Serializable;
        if self.writes.schema.is_empty() && self.writes.tables.is_empty() && !serializable {
            return None;
        }
        Some(Arc::new(TxnView {
            seq,
            catalog: self.private_catalog(db, seq),
            tables: self.writes.tables.clone(),
            reads: serializable.then(|| self.reads.clone()),
        }))
    }

    /// The catalog with this transaction's schema changes applied at `seq`.
    fn private_catalog(&mut self, db: &Database, seq: u64) -> Option<Arc<Catalog>> {
        if self.writes.schema.is_empty() {
            return None;
        }
        if let Some((built_at, catalog)) = &self.catalog
            && *built_at == seq
        {
            return Some(catalog.clone());
        }
        let mut catalog = db.catalog();
        for write in &self.writes.schema {
            if let Some(op) = schema_op(write.clone(), seq) {
                // A table a concurrent commit dropped fails at COMMIT; reads just skip the op.
                let _ = apply_catalog_op(&mut catalog, &op, seq);
            }
        }
        let catalog = Arc::new(catalog);
        self.catalog = Some((seq, catalog.clone()));
        Some(catalog)
    }

    /// Validate one statement's writes against the latest commits and this
    /// transaction's earlier writes, then fold them in. All or nothing.
    pub fn absorb(&mut self, db: &Database, writes: WriteSet, tag: &str) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        if self.options.read_only {
            return Err(Error::ReadOnlyTransaction {
                statement: tag.into(),
            });
        }
        let catalog = self.catalog.as_ref().map(|(_, c)| c.clone());
        let created: HashMap<u64, TableDef> = writes
            .writes
            .iter()
            .filter_map(|w| match w {
                Write::CreateTable(def) => Some((def.id, def.clone())),
                _ => None,
            })
            .collect();
        let def_of = |table_id: u64| -> Result<TableDef> {
            created
                .get(&table_id)
                .cloned()
                .or_else(|| match &catalog {
                    Some(catalog) => catalog.table_by_id(table_id).cloned(),
                    None => db.table_def_by_id(table_id),
                })
                .ok_or_else(|| Error::internal(format!("unknown table #{table_id}")))
        };
        self.validate(db, &writes, &def_of)?;
        for write in writes.writes {
            self.fold(write, &def_of)?;
        }
        self.catalog = None;
        Ok(())
    }

    fn validate(
        &self,
        db: &Database,
        writes: &WriteSet,
        def_of: &dyn Fn(u64) -> Result<TableDef>,
    ) -> Result<()> {
        // Keys taken (true) or freed (false) by this statement's earlier writes.
        let mut statement_keys: HashMap<(u64, PkKey), bool> = HashMap::new();
        let mut statement_retired: HashSet<(u64, u64), KeyHash> = HashSet::default();
        for write in &writes.writes {
            match write {
                Write::Insert {
                    table_id,
                    batch,
                    keys,
                } => {
                    let def = def_of(*table_id)?;
                    check_not_null(&def, batch)?;
                    let committed = db.lookup_primary_keys(*table_id, keys);
                    let own = self.writes.tables.get(table_id);
                    for (row, key) in keys.encoded_keys().enumerate() {
                        let taken = match statement_keys.get(&(*table_id, key.clone())) {
                            Some(taken) => *taken,
                            None => match own.and_then(|o| o.keys.get(&key)) {
                                Some(holder) => holder.is_some(),
                                None => committed[row].is_some(),
                            },
                        };
                        if taken {
                            return Err(unique_violation(&def, batch, row));
                        }
                        statement_keys.insert((*table_id, key), true);
                    }
                    let retired_by_us = |rowid: u64| {
                        statement_retired.contains(&(*table_id, rowid))
                            || own.is_some_and(|o| o.retired.contains(&rowid))
                    };
                    check_committed_uniques(db, &def, batch, retired_by_us)?;
                }
                Write::Retire {
                    table_id,
                    rowids,
                    keys,
                } => {
                    let committed: Vec<u64> = rowids
                        .iter()
                        .copied()
                        .filter(|r| *r < PROVISIONAL_ROWID_BASE)
                        .collect();
                    if let Some(rowid) = db.first_retired(*table_id, &committed) {
                        return Err(Error::SerializationFailure {
                            table: def_of(*table_id)?.name,
                            detail: format!("row version {rowid} was changed by another commit"),
                        });
                    }
                    for key in keys.encoded_keys() {
                        statement_keys.insert((*table_id, key), false);
                    }
                    statement_retired.extend(rowids.iter().map(|r| (*table_id, *r)));
                }
                Write::SetUniques { .. } => {
                    return Err(Error::unsupported(
                        "adding or dropping a UNIQUE constraint inside a transaction block",
                    ));
                }
                Write::SetColumns { table_id, .. }
                    if self
                        .writes
                        .tables
                        .get(table_id)
                        .is_some_and(|o| !o.rows.is_empty()) =>
                {
                    return Err(Error::unsupported(
                        "changing the columns of a table this transaction already inserted into",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn fold(&mut self, write: Write, def_of: &dyn Fn(u64) -> Result<TableDef>) -> Result<()> {
        match write {
            Write::Insert {
                table_id,
                batch,
                keys,
            } => {
                let def = def_of(table_id)?;
                let first = self.next_rowid;
                self.next_rowid += batch.num_rows() as u64;
                let own = self.writes.tables.entry(table_id).or_default();
                let key_map = Arc::make_mut(&mut own.keys);
                for (i, key) in keys.encoded_keys().enumerate() {
                    key_map.insert(key, Some(first + i as u64));
                }
                let rows = with_system_columns(def.columns(), &batch, first, 0)?;
                own.rows.push(MemBatch::new(0, 0, rows));
                own.row_keys.push(keys);
            }
            Write::Retire {
                table_id,
                rowids,
                keys,
            } => {
                let own = self.writes.tables.entry(table_id).or_default();
                let retired = Arc::make_mut(&mut own.retired);
                let committed = Arc::make_mut(&mut own.retired_committed);
                let committed_keys = Arc::make_mut(&mut own.retired_keys);
                for (i, rowid) in rowids.iter().enumerate() {
                    retired.insert(*rowid);
                    if *rowid < PROVISIONAL_ROWID_BASE {
                        committed.push(*rowid);
                        committed_keys.extend(keys.encoded(i));
                    }
                }
                let key_map = Arc::make_mut(&mut own.keys);
                for key in keys.encoded_keys() {
                    key_map.insert(key, None);
                }
            }
            schema => self.writes.schema.push(schema),
        }
        Ok(())
    }

    /// `SAVEPOINT name` (a name may repeat; the newest wins, as in PostgreSQL).
    pub fn savepoint(&mut self, name: &str) {
        self.savepoints
            .push((name.to_string(), self.writes.clone()));
    }

    /// `RELEASE SAVEPOINT name`: forget it and every later savepoint.
    pub fn release(&mut self, name: &str) -> Result<()> {
        let at = self.savepoint_index(name)?;
        self.savepoints.truncate(at);
        Ok(())
    }

    /// `ROLLBACK TO SAVEPOINT name`: undo later writes, keep the savepoint, clear the abort.
    pub fn rollback_to(&mut self, name: &str) -> Result<()> {
        let at = self.savepoint_index(name)?;
        self.savepoints.truncate(at + 1);
        self.writes = self.savepoints[at].1.clone();
        self.catalog = None;
        self.aborted = false;
        self.stream_failed.store(false, Ordering::Release);
        Ok(())
    }

    fn savepoint_index(&self, name: &str) -> Result<usize> {
        self.savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| Error::UnknownSavepoint { name: name.into() })
    }

    /// The one write set COMMIT makes, and what it must re-check.
    pub fn into_commit(self) -> Result<(WriteSet, CommitChecks)> {
        let checks = CommitChecks {
            since: self.first_seq.unwrap_or(0),
            reads: match self.options.isolation {
                IsolationLevel::Serializable => self.reads.lock().iter().copied().collect(),
                _ => Vec::new(),
            },
        };
        let mut writes = WriteSet::new("COMMIT");
        let created: HashSet<u64> = self.writes.schema.iter().filter_map(created_id).collect();
        let dropped: HashSet<u64> = self.writes.schema.iter().filter_map(dropped_id).collect();
        // A table created and dropped inside the transaction never existed for anyone else.
        let transient =
            |id: Option<u64>| id.is_some_and(|id| created.contains(&id) && dropped.contains(&id));
        for write in self.writes.schema {
            if !transient(touched_id(&write)) {
                writes.push(write);
            }
        }
        let mut tables: Vec<(u64, OwnWrites)> = self.writes.tables.into_iter().collect();
        tables.sort_by_key(|(id, _)| *id);
        for (table_id, own) in tables {
            if !dropped.contains(&table_id) {
                push_net_writes(&mut writes, table_id, own)?;
            }
        }
        Ok((writes, checks))
    }
}

/// Fail with 23505 when a row of `batch` takes a UNIQUE key a committed
/// row holds, unless that row is retired (by this statement or transaction).
/// Duplicates among the transaction's own rows are caught at COMMIT.
fn check_committed_uniques(
    db: &Database,
    def: &TableDef,
    batch: &arrow::record_batch::RecordBatch,
    retired_by_us: impl Fn(u64) -> bool,
) -> Result<()> {
    if def.uniques.is_empty() {
        return Ok(());
    }
    let keys = crate::constraints::unique_keys(def, batch)?;
    let holders = db.unique_holders(def.id, &keys);
    for (c, column_holders) in holders.iter().enumerate() {
        for (row, holder) in column_holders.iter().enumerate() {
            if holder.is_some_and(|h| !retired_by_us(h)) {
                return Err(crate::constraints::unique_constraint_violation(
                    def, c, batch, row,
                ));
            }
        }
    }
    Ok(())
}

/// The committed rows `own` retired, then the inserted rows still live.
fn push_net_writes(writes: &mut WriteSet, table_id: u64, own: OwnWrites) -> Result<()> {
    if !own.retired_committed.is_empty() {
        writes.push(Write::Retire {
            table_id,
            rowids: own.retired_committed.as_ref().clone(),
            keys: KeyColumn::from_encoded(own.retired_keys.as_ref().clone()),
        });
    }
    for (rows, keys) in own.rows.into_iter().zip(own.row_keys) {
        let batch = rows.batch;
        let n = batch.num_columns();
        let rowids = batch
            .column(n - 2)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| Error::internal("provisional rows lack _rowid"))?;
        let live: BooleanArray = rowids
            .values()
            .iter()
            .map(|r| Some(!own.retired.contains(r)))
            .collect();
        if live.true_count() == 0 {
            continue;
        }
        let user = batch.project(&(0..n - 2).collect::<Vec<_>>())?;
        let user = filter_record_batch(&user, &live)?;
        let keys = keys.select((0..keys.len()).filter(|row| live.value(*row)));
        writes.push(Write::Insert {
            table_id,
            batch: user,
            keys,
        });
    }
    Ok(())
}

fn created_id(write: &Write) -> Option<u64> {
    match write {
        Write::CreateTable(def) => Some(def.id),
        _ => None,
    }
}

fn dropped_id(write: &Write) -> Option<u64> {
    match write {
        Write::DropTable { table_id } => Some(*table_id),
        _ => None,
    }
}

fn touched_id(write: &Write) -> Option<u64> {
    match write {
        Write::CreateTable(def) => Some(def.id),
        Write::DropTable { table_id }
        | Write::SetColumns { table_id, .. }
        | Write::RenameTable { table_id, .. }
        | Write::SetChecks { table_id, .. }
        | Write::SetUniques { table_id, .. }
        | Write::SetForeignKeys { table_id, .. }
        | Write::SetIndexes { table_id, .. }
        | Write::SetHistory { table_id, .. }
        | Write::Insert { table_id, .. }
        | Write::Retire { table_id, .. } => Some(*table_id),
        Write::CreateView(_)
        | Write::DropView { .. }
        | Write::CreateSequence(_)
        | Write::DropSequence { .. }
        | Write::CreateTag(_)
        | Write::DropTag { .. } => None,
    }
}
