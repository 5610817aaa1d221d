//! The commit pipeline: validate a write set against the latest state,
//! then apply it as the next commit, all or nothing.
//!
//! The caller holds the writer mutex, so no other commit changes the state
//! between the steps, which run in this order:
//! 1. **Validate** under the read lock: concurrency conflicts, table and
//!    name existence, each insert's shape and NOT NULLs, dependent FOREIGN
//!    KEYs of dropped tables, FOREIGN KEY references. Nothing has changed.
//! 2. **Encode** the log record outside any state lock (readers go on);
//!    a frame over `log_frame_bytes_max` is refused here (54000).
//! 3. **Index keys** under the write lock: primary and UNIQUE keys go into
//!    their indexes in write order; a duplicate (23505) takes every change
//!    back ([`super::keys`]). Still nothing visible has changed.
//! 4. **Apply** the record. Every way it could fail was checked above, so
//!    a failure here (error or panic) is a bug: it poisons the database
//!    (writes refused with 58030 until it is reopened, reads go on at the
//!    last durable commit) instead of leaving a half-applied commit live.
//!
//! CHECK constraints are evaluated by the statement that wrote the rows
//! (`Session::commit`), or by [`super::Database::commit_checked`] for write
//! sets that did not come from a statement; the concurrency rules make a
//! definition change after the writes' snapshot a conflict either way.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use super::{CommitChecks, CommitOutcome, DbState, Inner, TableChanges};
use crate::catalog::{Catalog, ColumnDef, SchemaVersion, TableDef};
use crate::error::{Error, Result};
use crate::log::{CommitHeader, CommitRecord, Op};
use crate::storage::TableData;
use crate::storage::memtable::{append_chunk, with_system_columns};
use crate::txn::{KeyColumn, KeyHash, UniqueBuild, Write, WriteSet};
use arrow::record_batch::RecordBatch;

/// Validate `writes` against the latest state, then apply them as the next
/// commit. The caller holds the writer mutex. Returns the outcome and the
/// log frame to make durable (None for in-memory databases).
pub(super) fn validate_and_apply(
    inner: &Inner,
    writes: WriteSet,
    checks: &CommitChecks,
) -> Result<(CommitOutcome, Option<Vec<u8>>)> {
    let (record, first_rowid) = {
        let state = inner.state.read();
        validate_concurrency(&state, &writes, checks)?;
        validate(&state, &writes)?;
        super::foreign::validate_foreign_keys(&state, &writes, checks)?;
        let seq = state.last_seq + 1;
        let time_us = chrono::Utc::now()
            .timestamp_micros()
            .max(state.last_time_us + 1);
        (
            build_record(&writes, state.next_rowid, seq, time_us),
            state.next_rowid,
        )
    };
    let frame = match inner.log {
        Some(_) => Some(record.encode_frame_max(inner.limits.log_frame_bytes_max)?),
        None => None,
    };
    let outcome = CommitOutcome {
        seq: record.header.seq,
        time_us: record.header.time_us,
    };
    let mut state = inner.state.write();
    if state.last_seq + 1 != outcome.seq || state.next_rowid != first_rowid {
        return Err(Error::internal("the state changed under the writer mutex"));
    }
    // 23505 takes every index change back; past this point the commit applies.
    drop(super::keys::apply_key_changes(
        &mut state,
        &writes,
        first_rowid,
    )?);
    apply_or_poison(inner, &mut state, &record, unique_builds(&writes))?;
    // Free the write set's keys (one reference each) after the lock.
    drop(state);
    drop(writes);
    Ok((outcome, frame))
}

/// Apply a validated record; a failure poisons the database (see the module page).
fn apply_or_poison(
    inner: &Inner,
    state: &mut DbState,
    record: &CommitRecord,
    builds: HashMap<u64, UniqueBuild>,
) -> Result<()> {
    let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
        apply_record(state, record)?;
        apply_unique_definitions(state, &record.header.ops, builds);
        Ok::<(), Error>(())
    }));
    let failure = match applied {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => panic_message(panic.as_ref()),
    };
    let detail = format!(
        "commit {} failed while being applied ({failure}); it was not acknowledged",
        record.header.seq
    );
    tracing::error!("{detail}");
    Err(inner.poison(super::Poison::Failed(detail)))
}

/// The text a panic carried, if it was a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Fail with 40001 when a commit after `checks.since` changed the definition
/// of a table this write set changes the definition of, or (SERIALIZABLE)
/// changed anything in a table the transaction read.
pub(super) fn validate_concurrency(
    state: &DbState,
    writes: &WriteSet,
    checks: &CommitChecks,
) -> Result<()> {
    let changed_after = |table_id: u64, what: fn(&TableChanges) -> u64| {
        state
            .table_changes
            .get(&table_id)
            .is_some_and(|c| what(c) > checks.since)
    };
    for write in &writes.writes {
        if let Some((table_id, detail)) = validated_against_rows(state, write)
            && changed_after(table_id, |c| c.data_seq)
        {
            return Err(concurrent_change(state, table_id, detail));
        }
        let table_id = match write {
            Write::SetUniques { table_id, .. }
            | Write::DropTable { table_id }
            | Write::SetColumns { table_id, .. }
            | Write::RenameTable { table_id, .. }
            | Write::SetChecks { table_id, .. }
            | Write::SetForeignKeys { table_id, .. }
            | Write::SetIndexes { table_id, .. }
            | Write::Insert { table_id, .. } => *table_id,
            _ => continue,
        };
        if changed_after(table_id, |c| c.schema_seq) {
            return Err(concurrent_change(
                state,
                table_id,
                "its definition was changed by a concurrent commit",
            ));
        }
    }
    for table_id in &checks.reads {
        if changed_after(*table_id, |c| c.schema_seq.max(c.data_seq)) {
            return Err(concurrent_change(
                state,
                *table_id,
                "a table this serializable transaction read was changed by a concurrent commit",
            ));
        }
    }
    Ok(())
}

/// A definition change that holds only for the rows its statement saw (a
/// UNIQUE index built from them, a CHECK validated on them, a column added
/// to them or made NOT NULL): rows written since are a conflict. Changes
/// that only relax a definition (drops, renames) hold for any rows.
fn validated_against_rows(state: &DbState, write: &Write) -> Option<(u64, &'static str)> {
    let current = |id: u64| state.catalog.table_by_id(id);
    match write {
        Write::SetUniques {
            table_id,
            build: UniqueBuild::Index(_),
            ..
        } => Some((
            *table_id,
            "rows were written while its UNIQUE index was built",
        )),
        Write::SetChecks { table_id, checks } => {
            let before = current(*table_id)
                .map(|t| t.checks.as_slice())
                .unwrap_or_default();
            checks.iter().any(|c| !before.contains(c)).then_some((
                *table_id,
                "rows were written while its CHECK constraints were validated",
            ))
        }
        Write::SetColumns {
            table_id, columns, ..
        } => {
            let before = current(*table_id).map(|t| t.columns()).unwrap_or_default();
            columns.iter().any(|c| tightens(before, c)).then_some((
                *table_id,
                "rows were written while columns were added or made NOT NULL",
            ))
        }
        _ => None,
    }
}

/// Whether column `column` is new, changed type, or newly NOT NULL against `before`.
fn tightens(before: &[ColumnDef], column: &ColumnDef) -> bool {
    match before.iter().find(|b| b.id == column.id) {
        None => true,
        Some(old) => old.sql_type != column.sql_type || (old.nullable && !column.nullable),
    }
}

pub(super) fn concurrent_change(state: &DbState, table_id: u64, detail: &str) -> Error {
    let table = state
        .catalog
        .table_by_id(table_id)
        .map(|t| t.name.clone())
        .unwrap_or_else(|| format!("#{table_id}"));
    Error::SerializationFailure {
        table,
        detail: detail.into(),
    }
}

/// The index each SetUniques write brings, by table.
fn unique_builds(writes: &WriteSet) -> HashMap<u64, UniqueBuild> {
    writes
        .writes
        .iter()
        .filter_map(|w| match w {
            Write::SetUniques {
                table_id, build, ..
            } => Some((*table_id, build.clone())),
            _ => None,
        })
        .collect()
}

/// Bring the UNIQUE indexes up to date with a commit's definition changes
/// (rows were indexed by `keys::apply_key_changes`).
fn apply_unique_definitions(
    state: &mut DbState,
    ops: &[Op],
    mut builds: HashMap<u64, UniqueBuild>,
) {
    for op in ops {
        match op {
            Op::DropTable { table_id } => {
                state.unique_index.remove(table_id);
            }
            Op::SetUniques { table_id, uniques } => match builds.remove(table_id) {
                Some(UniqueBuild::Index(index)) => {
                    state.unique_index.insert(*table_id, index.as_ref().clone());
                }
                Some(UniqueBuild::Keep(keep)) => {
                    if let Some(index) = state.unique_index.get_mut(table_id) {
                        index.retain_constraints(&keep);
                    }
                    if uniques.is_empty() {
                        state.unique_index.remove(table_id);
                    }
                }
                None => {}
            },
            _ => {}
        }
    }
}

fn validate(state: &DbState, writes: &WriteSet) -> Result<()> {
    let latest = state.last_seq;
    let mut retired_here: HashSet<(u64, u64), KeyHash> = HashSet::default();
    let mut created: HashMap<u64, &TableDef> = HashMap::new();
    // Columns as changed by this commit so far, for the inserts after the change.
    let mut columns_now: HashMap<u64, &[ColumnDef]> = HashMap::new();
    let mut names = TableNames::new(state, latest);
    validate_dependents(state, writes)?;
    for write in &writes.writes {
        match write {
            Write::CreateTable(def) => {
                if def.versions.is_empty() {
                    return Err(Error::internal(format!(
                        "table \"{}\" has no columns",
                        def.name
                    )));
                }
                let replaced = |id: u64| {
                    writes
                        .writes
                        .iter()
                        .any(|w| matches!(w, Write::DropTable { table_id } if *table_id == id))
                };
                let table_taken = names.holder(&def.name).is_some_and(|id| !replaced(id));
                let name_taken = state.catalog.view_at(&def.name, latest).is_some()
                    || state.catalog.sequence_at(&def.name, latest).is_some()
                    || state.catalog.index_at(&def.name, latest);
                if table_taken || name_taken {
                    return Err(Error::TableExists {
                        name: def.name.clone(),
                    });
                }
                names.take(def.id, &def.name);
                created.insert(def.id, def);
            }
            Write::SetColumns {
                table_id, columns, ..
            } => {
                if !created.contains_key(table_id) {
                    live_table(state, *table_id, latest)?;
                }
                columns_now.insert(*table_id, columns.as_slice());
            }
            Write::RenameTable { table_id, name } => {
                if !created.contains_key(table_id) {
                    live_table(state, *table_id, latest)?;
                }
                let catalog = &state.catalog;
                if names.holder(name).is_some_and(|id| id != *table_id)
                    || catalog.view_at(name, latest).is_some()
                    || catalog.sequence_at(name, latest).is_some()
                    || catalog.index_at(name, latest)
                {
                    return Err(Error::TableExists { name: name.clone() });
                }
                names.take(*table_id, name);
            }
            Write::DropTable { table_id } => {
                if !created.contains_key(table_id) {
                    live_table(state, *table_id, latest)?;
                }
                names.free(*table_id);
            }
            Write::SetChecks { table_id, .. }
            | Write::SetForeignKeys { table_id, .. }
            | Write::SetIndexes { table_id, .. }
            | Write::SetHistory { table_id, .. }
            | Write::SetUniques { table_id, .. } => {
                if !created.contains_key(table_id) {
                    live_table(state, *table_id, latest)?;
                }
            }
            Write::CreateView(view) => {
                if state.catalog.table_at(&view.name, latest).is_some()
                    || state.catalog.index_at(&view.name, latest)
                    || state.catalog.view_at(&view.name, latest).is_some()
                        && !writes
                            .writes
                            .iter()
                            .any(|w| matches!(w, Write::DropView { name } if name == &view.name))
                {
                    return Err(Error::TableExists {
                        name: view.name.clone(),
                    });
                }
            }
            Write::DropView { .. } | Write::DropSequence { .. } => {}
            Write::CreateTag(tag) => {
                let dropped_first = writes
                    .writes
                    .iter()
                    .any(|w| matches!(w, Write::DropTag { name } if name == &tag.name));
                if state.catalog.tag_at(&tag.name, latest).is_some() && !dropped_first {
                    return Err(Error::TagExists {
                        name: tag.name.clone(),
                    });
                }
                // A tag names a version every table can still be read at.
                let kept = state.catalog.tagged_versions(latest).contains(&tag.version);
                if let Some(table) = state
                    .catalog
                    .tables
                    .iter()
                    .find(|t| t.exists_at(tag.version) && t.history.horizon > tag.version)
                    .filter(|_| !kept)
                {
                    return Err(crate::db::horizon_error(
                        table.name_at(tag.version),
                        table.history.horizon,
                        "it as of version",
                        tag.version,
                    ));
                }
            }
            Write::DropTag { name } => {
                if state.catalog.tag_at(name, latest).is_none() {
                    return Err(Error::UnknownTag { name: name.clone() });
                }
            }
            Write::CreateSequence(sequence) => {
                let catalog = &state.catalog;
                // ALTER SEQUENCE replaces a sequence by one with its id.
                let replaced = |id: u64| {
                    writes
                        .writes
                        .iter()
                        .any(|w| matches!(w, Write::DropSequence { id: d } if *d == id))
                };
                if catalog
                    .sequence_at(&sequence.name, latest)
                    .is_some_and(|s| !replaced(s.id))
                    || catalog.index_at(&sequence.name, latest)
                    || catalog.table_at(&sequence.name, latest).is_some()
                    || catalog.view_at(&sequence.name, latest).is_some()
                {
                    return Err(Error::TableExists {
                        name: sequence.name.clone(),
                    });
                }
            }
            Write::Insert {
                table_id,
                batch,
                keys,
            } => {
                let def = match created.get(table_id) {
                    Some(def) => *def,
                    None => live_table(state, *table_id, latest)?,
                };
                let columns = columns_now.get(table_id).copied();
                check_insert(def, columns.unwrap_or(def.columns()), batch, keys)?;
            }
            Write::Retire {
                table_id, rowids, ..
            } => {
                let def = live_table(state, *table_id, latest)?;
                let data = state.tables.get(table_id);
                for rowid in rowids {
                    let already = data.is_some_and(|d| d.retired.contains_key(rowid));
                    if already || !retired_here.insert((*table_id, *rowid)) {
                        return Err(Error::SerializationFailure {
                            table: def.name.clone(),
                            detail: format!("row version {rowid} was changed by another commit"),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// An insert's batch must have the table's columns, in order and of their
/// types, one primary key per row when the table has one, and no NULL in a
/// NOT NULL column (23502).
fn check_insert(
    def: &TableDef,
    columns: &[ColumnDef],
    batch: &RecordBatch,
    keys: &KeyColumn,
) -> Result<()> {
    let mismatch = || {
        Error::internal(format!(
            "rows for table \"{}\" do not match its {} columns, their types and its key",
            def.name,
            columns.len()
        ))
    };
    let keys_expected = if def.has_primary_key() {
        batch.num_rows()
    } else {
        0
    };
    if batch.num_columns() != columns.len() || keys.len() != keys_expected {
        return Err(mismatch());
    }
    for (column, array) in columns.iter().zip(batch.columns()) {
        if array.data_type() != &column.sql_type.arrow_type() {
            return Err(mismatch());
        }
        if !column.nullable && array.null_count() > 0 {
            return Err(Error::NotNullViolation {
                table: def.name.clone(),
                column: column.name.clone(),
            });
        }
    }
    Ok(())
}

/// A table this commit drops must not stay referenced by a FOREIGN KEY of
/// a table it keeps (2BP01): the statement that dropped it dropped those
/// FOREIGN KEYs too (CASCADE) or was refused, unless a concurrent commit
/// added one since.
fn validate_dependents(state: &DbState, writes: &WriteSet) -> Result<()> {
    let dropped: HashSet<u64> = writes.dropped_tables().into_iter().collect();
    if dropped.is_empty() {
        return Ok(());
    }
    let latest = state.last_seq;
    let kept = state
        .catalog
        .tables
        .iter()
        .filter(|t| t.exists_at(latest) && !dropped.contains(&t.id));
    for child in kept {
        // The commit's own SetForeignKeys replaces the child's list.
        let foreign_keys = writes
            .writes
            .iter()
            .rev()
            .find_map(|w| match w {
                Write::SetForeignKeys {
                    table_id,
                    foreign_keys,
                } if *table_id == child.id => Some(foreign_keys.as_slice()),
                _ => None,
            })
            .unwrap_or(&child.foreign_keys);
        if let Some(fk) = foreign_keys.iter().find(|fk| dropped.contains(&fk.parent)) {
            let parent = state.catalog.table_by_id(fk.parent);
            let parent = parent.map(|t| t.name.as_str()).unwrap_or("?");
            return Err(Error::referenced_table(parent, &fk.name, &child.name));
        }
    }
    Ok(())
}

/// Which table holds each name as a write set goes: over the latest
/// catalog, a rename or a create takes a name and a rename or a drop
/// frees one, so `a → tmp, b → a, tmp → b` in one commit is a swap.
struct TableNames<'a> {
    state: &'a DbState,
    latest: u64,
    /// Names this write set changed: held by a table, or freed.
    changed: HashMap<String, Option<u64>>,
    /// Tables this write set named.
    named: HashMap<u64, String>,
}

impl<'a> TableNames<'a> {
    fn new(state: &'a DbState, latest: u64) -> Self {
        Self {
            state,
            latest,
            changed: HashMap::new(),
            named: HashMap::new(),
        }
    }

    /// The table holding `name` at this point of the write set.
    fn holder(&self, name: &str) -> Option<u64> {
        match self.changed.get(name) {
            Some(holder) => *holder,
            None => self.state.catalog.table_at(name, self.latest).map(|t| t.id),
        }
    }

    fn name_of(&self, table_id: u64) -> Option<String> {
        self.named.get(&table_id).cloned().or_else(|| {
            let table = self.state.catalog.table_by_id(table_id)?;
            table
                .exists_at(self.latest)
                .then(|| table.name_at(self.latest).to_string())
        })
    }

    fn take(&mut self, table_id: u64, name: &str) {
        self.free(table_id);
        self.changed.insert(name.to_string(), Some(table_id));
        self.named.insert(table_id, name.to_string());
    }

    fn free(&mut self, table_id: u64) {
        if let Some(old) = self.name_of(table_id) {
            self.changed.insert(old, None);
        }
    }
}

fn live_table(state: &DbState, table_id: u64, latest: u64) -> Result<&TableDef> {
    state
        .catalog
        .table_by_id(table_id)
        .filter(|t| t.exists_at(latest))
        .ok_or_else(|| Error::SerializationFailure {
            table: format!("#{table_id}"),
            detail: "the table was dropped by a concurrent commit".into(),
        })
}

/// The log record of validated `writes`, whose inserts get `_rowid`s
/// from `next_rowid` on.
fn build_record(writes: &WriteSet, mut next_rowid: u64, seq: u64, time_us: i64) -> CommitRecord {
    let mut ops = Vec::with_capacity(writes.writes.len());
    let mut batches = Vec::new();
    for write in &writes.writes {
        match write {
            Write::Insert {
                table_id, batch, ..
            } => {
                let rows = batch.num_rows() as u64;
                let first_rowid = next_rowid;
                next_rowid += rows;
                ops.push(Op::Insert {
                    table_id: *table_id,
                    first_rowid,
                    rows,
                });
                batches.push(batch.clone());
            }
            Write::Retire {
                table_id, rowids, ..
            } => ops.push(Op::Retire {
                table_id: *table_id,
                rowids: rowids.clone(),
            }),
            schema => ops.extend(schema_op(schema.clone(), seq)),
        }
    }
    let header = CommitHeader {
        seq,
        time_us,
        kind: writes.kind.clone(),
        ops,
    };
    CommitRecord { header, batches }
}

/// The log op of a schema write (None for data writes), stamped with `seq`.
pub(crate) fn schema_op(write: Write, seq: u64) -> Option<Op> {
    Some(match write {
        Write::CreateTable(mut def) => {
            def.created_seq = seq;
            for version in &mut def.versions {
                version.seq = seq;
            }
            Op::CreateTable(def)
        }
        Write::DropTable { table_id } => Op::DropTable { table_id },
        Write::RenameTable { table_id, name } => Op::RenameTable { table_id, name },
        Write::SetChecks { table_id, checks } => Op::SetChecks { table_id, checks },
        Write::SetIndexes { table_id, indexes } => Op::SetIndexes { table_id, indexes },
        Write::SetHistory { table_id, policy } => Op::SetHistory { table_id, policy },
        Write::SetForeignKeys {
            table_id,
            foreign_keys,
        } => Op::SetForeignKeys {
            table_id,
            foreign_keys,
        },
        Write::SetUniques {
            table_id, uniques, ..
        } => Op::SetUniques { table_id, uniques },
        Write::SetColumns {
            table_id,
            columns,
            next_column_id,
        } => Op::SetColumns {
            table_id,
            columns,
            next_column_id,
        },
        Write::CreateView(mut view) => {
            view.created_seq = seq;
            Op::CreateView(view)
        }
        Write::DropView { name } => Op::DropView { name },
        Write::CreateSequence(mut sequence) => {
            sequence.created_seq = seq;
            Op::CreateSequence(sequence)
        }
        Write::DropSequence { id } => Op::DropSequence { id },
        Write::CreateTag(mut tag) => {
            tag.created_seq = seq;
            Op::CreateTag(tag)
        }
        Write::DropTag { name } => Op::DropTag { name },
        Write::Insert { .. } | Write::Retire { .. } => return None,
    })
}

/// Apply one commit to the in-memory state (live commits and log replay alike).
pub(crate) fn apply_record(state: &mut DbState, record: &CommitRecord) -> Result<()> {
    let seq = record.header.seq;
    debug_assert_eq!(seq, state.last_seq + 1, "commits apply in seq order");
    let mut batches = record.batches.iter();
    for op in &record.header.ops {
        if !matches!(op, Op::Insert { .. } | Op::Retire { .. }) {
            state.schema_epoch = seq;
        }
        match op {
            Op::CreateTable(def) => {
                state.tables.insert(def.id, TableData::default());
                if def.has_primary_key() {
                    // Live commits indexed their rows already (keys.rs); replay starts empty.
                    state
                        .pk_index
                        .entry(def.id)
                        .or_insert_with(|| crate::constraints::primary_key_index(def));
                }
                apply_catalog_op(&mut state.catalog, op, seq)?;
                state.table_changes.entry(def.id).or_default().schema_seq = seq;
            }
            Op::DropTable { table_id } => {
                apply_catalog_op(&mut state.catalog, op, seq)?;
                state.pk_index.remove(table_id);
                state.table_changes.entry(*table_id).or_default().schema_seq = seq;
            }
            Op::SetChecks { table_id, .. }
            | Op::SetForeignKeys { table_id, .. }
            | Op::SetIndexes { table_id, .. }
            | Op::RenameTable { table_id, .. }
            | Op::SetColumns { table_id, .. }
            | Op::SetUniques { table_id, .. } => {
                apply_catalog_op(&mut state.catalog, op, seq)?;
                state.table_changes.entry(*table_id).or_default().schema_seq = seq;
            }
            // No schema change: a concurrent writer of the table is not
            // refused for it (a reader before the horizon is).
            Op::CreateView(_)
            | Op::DropView { .. }
            | Op::CreateSequence(_)
            | Op::SetHistory { .. }
            | Op::CreateTag(_)
            | Op::DropTag { .. }
            | Op::DropSequence { .. } => apply_catalog_op(&mut state.catalog, op, seq)?,
            Op::Insert {
                table_id,
                first_rowid,
                rows,
            } => {
                let user_batch = batches
                    .next()
                    .ok_or_else(|| Error::internal("missing batch"))?;
                let columns = table_def_mut(state, *table_id)?.columns_at(seq).to_vec();
                let batch = with_system_columns(&columns, user_batch, *first_rowid, seq)?;
                let (sealed_through, chunk_rows_max) = (state.sealed_through, state.chunk_rows_max);
                let data = state.tables.entry(*table_id).or_default();
                append_chunk(
                    &mut data.memtable,
                    batch,
                    seq,
                    sealed_through,
                    chunk_rows_max,
                )?;
                data.live_rows += rows;
                state.table_changes.entry(*table_id).or_default().data_seq = seq;
                state.next_rowid = state.next_rowid.max(first_rowid + rows);
                state.memtable_since.get_or_insert_with(Instant::now);
            }
            Op::Retire { table_id, rowids } => {
                state
                    .tables
                    .entry(*table_id)
                    .or_default()
                    .retire(rowids, seq);
                state.table_changes.entry(*table_id).or_default().data_seq = seq;
            }
        }
    }
    state.commits.push(record.header.info());
    state.last_seq = seq;
    state.last_time_us = record.header.time_us;
    Ok(())
}

/// Apply a schema op to a catalog (the shared one at commit, or a
/// transaction's private one for its own statements).
pub(crate) fn apply_catalog_op(catalog: &mut Catalog, op: &Op, seq: u64) -> Result<()> {
    match op {
        Op::CreateTable(def) => catalog.tables.push(def.clone()),
        Op::DropTable { table_id } => {
            catalog_table_mut(catalog, *table_id)?.dropped_seq = Some(seq);
            // Sequences a column of the table owns go with it.
            for sequence in &mut catalog.sequences {
                if sequence.owner == Some(*table_id) && sequence.dropped_seq.is_none() {
                    sequence.dropped_seq = Some(seq);
                }
            }
        }
        Op::SetChecks { table_id, checks } => {
            catalog_table_mut(catalog, *table_id)?.checks = checks.clone();
        }
        Op::SetIndexes { table_id, indexes } => {
            catalog_table_mut(catalog, *table_id)?.indexes = indexes.clone();
        }
        Op::SetHistory { table_id, policy } => {
            let def = catalog_table_mut(catalog, *table_id)?;
            let horizon = def.history.horizon.max(policy.horizon);
            def.history = crate::catalog::HistoryPolicy { horizon, ..*policy };
        }
        Op::RenameTable { table_id, name } => {
            catalog_table_mut(catalog, *table_id)?.rename(name, seq);
        }
        Op::SetUniques { table_id, uniques } => {
            catalog_table_mut(catalog, *table_id)?.uniques = uniques.clone();
        }
        Op::SetForeignKeys {
            table_id,
            foreign_keys,
        } => {
            catalog_table_mut(catalog, *table_id)?.foreign_keys = foreign_keys.clone();
        }
        Op::SetColumns {
            table_id,
            columns,
            next_column_id,
        } => {
            let def = catalog_table_mut(catalog, *table_id)?;
            def.versions.push(SchemaVersion {
                seq,
                columns: columns.clone(),
            });
            def.next_column_id = *next_column_id;
        }
        Op::CreateView(view) => catalog.views.push(view.clone()),
        Op::DropView { name } => {
            if let Some(view) = catalog
                .views
                .iter_mut()
                .rev()
                .find(|v| &v.name == name && v.dropped_seq.is_none())
            {
                view.dropped_seq = Some(seq);
            }
        }
        Op::CreateSequence(sequence) => catalog.sequences.push(sequence.clone()),
        Op::DropSequence { id } => {
            // ALTER SEQUENCE leaves dropped versions with the same id behind.
            let live = catalog
                .sequences
                .iter_mut()
                .find(|s| s.id == *id && s.dropped_seq.is_none());
            if let Some(sequence) = live {
                sequence.dropped_seq = Some(seq);
            }
        }
        Op::CreateTag(tag) => catalog.tags.push(tag.clone()),
        Op::DropTag { name } => {
            if let Some(tag) = catalog
                .tags
                .iter_mut()
                .find(|t| &t.name == name && t.dropped_seq.is_none())
            {
                tag.dropped_seq = Some(seq);
            }
        }
        Op::Insert { .. } | Op::Retire { .. } => {}
    }
    Ok(())
}

fn table_def_mut(state: &mut DbState, table_id: u64) -> Result<&mut TableDef> {
    catalog_table_mut(&mut state.catalog, table_id)
}

fn catalog_table_mut(catalog: &mut Catalog, table_id: u64) -> Result<&mut TableDef> {
    catalog
        .table_by_id_mut(table_id)
        .ok_or_else(|| Error::Corrupt {
            detail: format!("commit names unknown table #{table_id}"),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::apply_or_poison;
    use crate::log::{CommitHeader, CommitRecord, Op};
    use crate::{Database, Session};

    async fn database() -> Database {
        let db = Database::open("memory://").await.expect("open");
        Session::new(&db)
            .execute("CREATE TABLE t (k BIGINT PRIMARY KEY)")
            .await
            .expect("create");
        Session::new(&db)
            .execute("INSERT INTO t VALUES (1)")
            .await
            .expect("insert");
        db
    }

    /// A record that passed no validation: `ops` at the next seq.
    fn record(db: &Database, seq_ahead: u64, ops: Vec<Op>) -> CommitRecord {
        let state = db.inner.state.read();
        CommitRecord {
            header: CommitHeader {
                seq: state.last_seq + seq_ahead,
                time_us: state.last_time_us + 1,
                kind: "TEST".into(),
                ops,
            },
            batches: Vec::new(),
        }
    }

    async fn assert_poisoned_but_readable(db: &Database) {
        let write = Session::new(db).execute("INSERT INTO t VALUES (2)").await;
        let e = write.expect_err("writes are refused");
        assert_eq!(e.sqlstate(), "58030", "{e}");
        assert!(e.to_string().contains("reopened"), "{e}");
        let read = Session::new(db)
            .execute_one("SELECT count(*) FROM t")
            .await
            .expect("reads go on");
        assert_eq!(read.batches[0].num_rows(), 1);
    }

    #[tokio::test]
    async fn a_failure_while_applying_poisons_the_database() {
        let db = database().await;
        // An insert with no batch: apply_record fails after validation would have passed.
        let bad = record(
            &db,
            1,
            vec![Op::Insert {
                table_id: db.catalog().max_table_id(),
                first_rowid: 1_000,
                rows: 1,
            }],
        );
        let e = {
            let mut state = db.inner.state.write();
            apply_or_poison(&db.inner, &mut state, &bad, HashMap::new()).expect_err("fails")
        };
        assert_eq!(e.sqlstate(), "58030", "{e}");
        assert_poisoned_but_readable(&db).await;
    }

    #[cfg(debug_assertions)]
    #[tokio::test]
    async fn a_panic_while_applying_poisons_the_database() {
        let db = database().await;
        // Out of seq order: apply_record's debug assertion panics.
        let bad = record(&db, 5, Vec::new());
        let e = {
            let mut state = db.inner.state.write();
            apply_or_poison(&db.inner, &mut state, &bad, HashMap::new()).expect_err("panics")
        };
        assert!(e.to_string().contains("commits apply in seq order"), "{e}");
        assert_poisoned_but_readable(&db).await;
    }
}
