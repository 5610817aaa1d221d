//! Validating a write set against the latest state and applying commits.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::{CommitChecks, CommitOutcome, DbState, Inner, TableChanges};
use crate::catalog::{Catalog, SchemaVersion, TableDef};
use crate::error::{Error, Result};
use crate::log::{CommitHeader, CommitRecord, Op};
use crate::storage::TableData;
use crate::storage::memtable::{append_chunk, with_system_columns};
use crate::txn::{KeyHash, UniqueBuild, Write, WriteSet};

/// Validate `writes` against the latest state, then apply them as the next commit.
/// Returns the outcome and the log frame to make durable (None for in-memory databases).
pub(super) fn validate_and_apply(
    inner: &Inner,
    mut writes: WriteSet,
    checks: &CommitChecks,
) -> Result<(CommitOutcome, Option<Vec<u8>>)> {
    let mut state = inner.state.write();
    validate_concurrency(&state, &writes, checks)?;
    validate(&state, &writes)?;
    super::foreign::validate_foreign_keys(&state, &writes, checks)?;
    let builds = unique_builds(&writes);
    let first_rowid = state.next_rowid;
    let key_changes = super::keys::apply_key_changes(&mut state, &writes, first_rowid)?;
    let seq = state.last_seq + 1;
    let time_us = chrono::Utc::now()
        .timestamp_micros()
        .max(state.last_time_us + 1);
    let record = build_record(&state, &mut writes, seq, time_us);
    let frame = match inner.log {
        Some(_) => match record.encode_frame() {
            Ok(frame) => Some(frame),
            Err(e) => {
                key_changes.undo(&mut state, &writes);
                return Err(e);
            }
        },
        None => None,
    };
    drop(key_changes);
    apply_record(&mut state, &record)?;
    apply_unique_definitions(&mut state, &record.header.ops, builds);
    // Free the write set's keys (one reference each) after the lock.
    drop(state);
    drop(writes);
    Ok((CommitOutcome { seq, time_us }, frame))
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
        if let Write::SetUniques { table_id, .. } = write
            && changed_after(*table_id, |c| c.data_seq)
        {
            return Err(concurrent_change(
                state,
                *table_id,
                "rows were written while its UNIQUE index was built",
            ));
        }
        let table_id = match write {
            Write::SetUniques { table_id, .. }
            | Write::DropTable { table_id }
            | Write::SetColumns { table_id, .. }
            | Write::SetChecks { table_id, .. }
            | Write::SetForeignKeys { table_id, .. }
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
    for write in &writes.writes {
        match write {
            Write::CreateTable(def) => {
                let replaced = |id: u64| {
                    writes
                        .writes
                        .iter()
                        .any(|w| matches!(w, Write::DropTable { table_id } if *table_id == id))
                };
                let table_taken = state
                    .catalog
                    .table_at(&def.name, latest)
                    .is_some_and(|t| !replaced(t.id));
                let name_taken = state.catalog.view_at(&def.name, latest).is_some()
                    || state.catalog.sequence_at(&def.name, latest).is_some();
                if table_taken || name_taken {
                    return Err(Error::TableExists {
                        name: def.name.clone(),
                    });
                }
                created.insert(def.id, def);
            }
            Write::DropTable { table_id }
            | Write::SetColumns { table_id, .. }
            | Write::SetChecks { table_id, .. }
            | Write::SetForeignKeys { table_id, .. }
            | Write::SetUniques { table_id, .. } => {
                if !created.contains_key(table_id) {
                    live_table(state, *table_id, latest)?;
                }
            }
            Write::CreateView(view) => {
                if state.catalog.table_at(&view.name, latest).is_some()
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
                    || catalog.table_at(&sequence.name, latest).is_some()
                    || catalog.view_at(&sequence.name, latest).is_some()
                {
                    return Err(Error::TableExists {
                        name: sequence.name.clone(),
                    });
                }
            }
            Write::Insert {
                table_id, batch, ..
            } => {
                let def = match created.get(table_id) {
                    Some(def) => *def,
                    None => live_table(state, *table_id, latest)?,
                };
                crate::constraints::check_not_null(def, batch)?;
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

/// Turn validated writes into a log record, assigning `_rowid`s.
/// The log record of `writes`, assigning `_rowid`s. Leaves the inserts'
/// keys in `writes` (a failure to encode the record must still undo them).
fn build_record(state: &DbState, writes: &mut WriteSet, seq: u64, time_us: i64) -> CommitRecord {
    let mut ops = Vec::with_capacity(writes.writes.len());
    let mut batches = Vec::new();
    let mut next_rowid = state.next_rowid;
    for write in &mut writes.writes {
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
                rowids: std::mem::take(rowids),
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
        Write::SetChecks { table_id, checks } => Op::SetChecks { table_id, checks },
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
        Write::Insert { .. } | Write::Retire { .. } => return None,
    })
}

/// Apply one commit to the in-memory state (live commits and log replay alike).
pub(crate) fn apply_record(state: &mut DbState, record: &CommitRecord) -> Result<()> {
    let seq = record.header.seq;
    debug_assert_eq!(seq, state.last_seq + 1, "commits apply in seq order");
    let mut batches = record.batches.iter();
    for op in &record.header.ops {
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
            | Op::SetColumns { table_id, .. }
            | Op::SetUniques { table_id, .. } => {
                apply_catalog_op(&mut state.catalog, op, seq)?;
                state.table_changes.entry(*table_id).or_default().schema_seq = seq;
            }
            Op::CreateView(_)
            | Op::DropView { .. }
            | Op::CreateSequence(_)
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
