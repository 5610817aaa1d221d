//! Primary-key and UNIQUE checks at commit, done by applying the commit's
//! key changes to the indexes directly, in write order, and undoing them if
//! a key turns out to be taken.
//!
//! One pass per row instead of "check against a scratch set, then insert":
//! a key freed by an earlier write of the commit is free, a key taken by an
//! earlier row of the commit is taken. The writer lock is held throughout,
//! so no reader ever sees a half-applied index.

use std::collections::HashMap;

use super::DbState;
use crate::catalog::{Catalog, TableDef};
use crate::constraints::unique::{RemovedRow, UniqueIndex};
use crate::constraints::{
    primary_key_index, unique_constraint_violation, unique_keys, unique_violation,
};
use crate::error::{Error, Result};
use crate::txn::{KeyColumn, KeyIndex, Write, WriteSet};

/// How to take one index change back.
enum Undo {
    /// The first `count` primary keys of insert number `write` (in the write set).
    PkInserted {
        table: u64,
        write: usize,
        count: usize,
    },
    /// Row `row` of retirement number `write` freed its primary key, held by `rowid`.
    PkRemoved {
        table: u64,
        write: usize,
        row: usize,
        rowid: u64,
    },
    /// The run of rows from `first_rowid` on this commit added to a UNIQUE index.
    UniqueInserted { table: u64, first_rowid: u64 },
    /// A row this commit removed from a UNIQUE index.
    UniqueRemoved { table: u64, removed: RemovedRow },
    /// An index this commit created for a new table.
    IndexCreated { table: u64 },
}

/// The index changes of a commit being applied; [`KeyChanges::undo`] takes them back.
#[derive(Default)]
pub(super) struct KeyChanges {
    log: Vec<Undo>,
}

impl KeyChanges {
    /// Take every change back, newest first (`writes` made them).
    pub(super) fn undo(self, state: &mut DbState, writes: &WriteSet) {
        for change in self.log.into_iter().rev() {
            match change {
                Undo::PkInserted {
                    table,
                    write,
                    count,
                } => {
                    let (Some(keys), Some(index)) =
                        (write_keys(writes, write), state.pk_index.get_mut(&table))
                    else {
                        continue;
                    };
                    for key in keys.iter().take(count).flatten() {
                        index.remove(key);
                    }
                }
                Undo::PkRemoved {
                    table,
                    write,
                    row,
                    rowid,
                } => {
                    let key = write_keys(writes, write).and_then(|k| k.get(row));
                    if let (Some(key), Some(index)) = (key, state.pk_index.get_mut(&table)) {
                        index.insert(key, rowid);
                    }
                }
                Undo::UniqueInserted { table, first_rowid } => {
                    if let Some(index) = state.unique_index.get_mut(&table) {
                        index.remove_run(first_rowid);
                    }
                }
                Undo::UniqueRemoved { table, removed } => {
                    if let Some(index) = state.unique_index.get_mut(&table) {
                        index.restore_row(removed);
                    }
                }
                Undo::IndexCreated { table } => {
                    state.pk_index.remove(&table);
                    state.unique_index.remove(&table);
                }
            }
        }
    }
}

/// The primary keys carried by write number `write` (an insert or a retirement).
fn write_keys(writes: &WriteSet, write: usize) -> Option<&KeyColumn> {
    match writes.writes.get(write)? {
        Write::Insert { keys, .. } | Write::Retire { keys, .. } => Some(keys),
        _ => None,
    }
}

/// Apply the key changes of `writes` (whose inserts get `_rowid`s from
/// `first_rowid` on, in order) to the primary-key and UNIQUE indexes.
/// On a duplicate key every change is taken back and 23505 names it.
pub(super) fn apply_key_changes(
    state: &mut DbState,
    writes: &WriteSet,
    first_rowid: u64,
) -> Result<KeyChanges> {
    let mut changes = KeyChanges::default();
    match apply_in_order(state, writes, first_rowid, &mut changes) {
        Ok(()) => Ok(changes),
        Err(e) => {
            changes.undo(state, writes);
            Err(e)
        }
    }
}

fn apply_in_order(
    state: &mut DbState,
    writes: &WriteSet,
    mut next_rowid: u64,
    changes: &mut KeyChanges,
) -> Result<()> {
    for (at, write) in writes.writes.iter().enumerate() {
        match write {
            Write::CreateTable(def) => create_indexes(state, def, changes),
            Write::Retire {
                table_id,
                rowids,
                keys,
            } => retire_keys(state, *table_id, at, keys, rowids, changes),
            Write::Insert {
                table_id,
                batch,
                keys,
            } => {
                // Borrow the definition and the index maps as separate fields (no clone per commit).
                let def = table_def(&state.catalog, writes, *table_id)?;
                let inserted = InsertedRows {
                    write: at,
                    batch,
                    first_rowid: next_rowid,
                };
                insert_primary_keys(&mut state.pk_index, def, &inserted, keys, changes)?;
                insert_unique_keys(&mut state.unique_index, def, &inserted, changes)?;
                next_rowid += batch.num_rows() as u64;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The definition rows of `table_id` are checked against (a table created
/// by this same commit included).
fn table_def<'a>(
    catalog: &'a Catalog,
    writes: &'a WriteSet,
    table_id: u64,
) -> Result<&'a TableDef> {
    let created = writes.writes.iter().find_map(|w| match w {
        Write::CreateTable(def) if def.id == table_id => Some(def),
        _ => None,
    });
    created
        .or_else(|| catalog.table_by_id(table_id))
        .ok_or_else(|| Error::internal(format!("insert into unknown table #{table_id}")))
}

fn create_indexes(state: &mut DbState, def: &TableDef, changes: &mut KeyChanges) {
    if def.has_primary_key() {
        state.pk_index.insert(def.id, primary_key_index(def));
    }
    if !def.uniques.is_empty() {
        state.unique_index.insert(def.id, UniqueIndex::new(def));
    }
    changes.log.push(Undo::IndexCreated { table: def.id });
}

/// Free the keys of retired rows `rowids`, whose primary keys are
/// `keys` (carried by write number `write`).
fn retire_keys(
    state: &mut DbState,
    table: u64,
    write: usize,
    keys: &KeyColumn,
    rowids: &[u64],
    changes: &mut KeyChanges,
) {
    if let Some(index) = state.pk_index.get_mut(&table) {
        for (row, key) in keys.iter().enumerate() {
            if let Some(rowid) = key.and_then(|k| index.remove(k)) {
                changes.log.push(Undo::PkRemoved {
                    table,
                    write,
                    row,
                    rowid,
                });
            }
        }
    }
    if let Some(index) = state.unique_index.get_mut(&table) {
        for rowid in rowids {
            if let Some(removed) = index.remove_row(*rowid) {
                changes.log.push(Undo::UniqueRemoved { table, removed });
            }
        }
    }
}

/// One insert of the write set: its position, its rows and their first `_rowid`.
struct InsertedRows<'a> {
    write: usize,
    batch: &'a arrow::record_batch::RecordBatch,
    first_rowid: u64,
}

fn insert_primary_keys(
    pk_index: &mut HashMap<u64, KeyIndex>,
    def: &TableDef,
    rows: &InsertedRows<'_>,
    keys: &KeyColumn,
    changes: &mut KeyChanges,
) -> Result<()> {
    if !def.has_primary_key() {
        return Ok(());
    }
    let index = pk_index
        .entry(def.id)
        .or_insert_with(|| primary_key_index(def));
    let (inserted, duplicate) = index.insert_column(keys, rows.first_rowid);
    changes.log.push(Undo::PkInserted {
        table: def.id,
        write: rows.write,
        count: inserted,
    });
    match duplicate {
        Some(row) => Err(unique_violation(def, rows.batch, row)),
        None => Ok(()),
    }
}

fn insert_unique_keys(
    unique_index: &mut HashMap<u64, UniqueIndex>,
    def: &TableDef,
    rows: &InsertedRows<'_>,
    changes: &mut KeyChanges,
) -> Result<()> {
    if def.uniques.is_empty() {
        return Ok(());
    }
    let keys = unique_keys(def, rows.batch)?;
    let index = unique_index
        .entry(def.id)
        .or_insert_with(|| UniqueIndex::new(def));
    let duplicate = index.insert_rows(rows.first_rowid, keys);
    changes.log.push(Undo::UniqueInserted {
        table: def.id,
        first_rowid: rows.first_rowid,
    });
    match duplicate {
        Some((row, c)) => Err(unique_constraint_violation(def, c, rows.batch, row)),
        None => Ok(()),
    }
}
