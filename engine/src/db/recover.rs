//! Opening a database: load the newest readable checkpoint, replay the log
//! after it, rebuild the primary-key indexes from live rows. A table whose
//! data file is damaged is marked so (reads fail with XX001 naming the
//! file, writes are refused) and the rest of the database opens.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::UInt64Array;
use arrow::record_batch::RecordBatch;

use super::{Database, DbState, Inner, apply::apply_record};
use crate::catalog::{ROWID_COLUMN, SEQ_COLUMN, TableDef, physical_name};
use crate::constraints::unique::UniqueIndex;
use crate::constraints::{primary_key_index, primary_keys};
use crate::constraints::{unique_constraint_violation, unique_keys};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::log::objects::{ObjectLog, Tail};
use crate::log::{CommitRecord, LOG_DIR, read_log};
use crate::storage::checkpoint::{
    Checkpoint, list_checkpoints, load_newest_checkpoint, read_checkpoint,
};
use crate::storage::location::{Location, StoreKind};
use crate::storage::{DataFile, Retirements, TableData};
use crate::txn::{KeyIndex, Write, WriteSet};

/// What opening found: the state as of the last durable commit, and the
/// checkpoint it started from.
pub(super) struct Recovered {
    pub state: DbState,
    pub checkpoint_seq: Option<u64>,
    /// On object storage: where the next log object goes.
    pub tail: Option<Tail>,
}

/// The state as of the last durable commit: the newest readable
/// checkpoint (falling back past unreadable ones) plus the log after it.
pub(super) async fn recover_state(
    location: &Location,
    limits: &Limits,
    objects: Option<&ObjectLog>,
) -> Result<Recovered> {
    let loaded = load_newest_checkpoint(location).await?;
    let checkpoint_seq = loaded.checkpoint.as_ref().map(|c| c.seq);
    let mut state = match loaded.checkpoint {
        Some(checkpoint) => state_from_checkpoint(checkpoint),
        None => DbState {
            next_rowid: 1,
            ..Default::default()
        },
    };
    for file in state
        .tables
        .values()
        .flat_map(|t| t.files.iter().chain(&t.history))
    {
        location.verifier.expect(file);
    }
    state.chunk_rows_max = limits.memtable_chunk_rows_max;
    let after = state.last_seq;
    let (records, mut tail) = match (location.kind, objects) {
        (StoreKind::Object, Some(objects)) => {
            let (records, tail) = objects.read_after(after).await?;
            (records, Some(tail))
        }
        (StoreKind::Local, _) => (read_local_log(location, after).await?, None),
        _ => {
            return Ok(Recovered {
                state,
                checkpoint_seq,
                tail: None,
            });
        }
    };
    let fell_back = |detail: String| match loaded.unreadable.first() {
        Some(newest) => Error::Corrupt {
            detail: format!(
                "{detail}; the newest checkpoint {} is unreadable ({})",
                newest.file, newest.reason
            ),
        },
        None => Error::Corrupt { detail },
    };
    let mut previous: Option<u64> = None;
    for record in records {
        let seq = record.header.seq;
        // The log itself counts up by one, also where a checkpoint covers it
        // (as `driftdb check` requires): a repeated commit is damage.
        if let Some(previous) = previous
            && seq != previous + 1
        {
            return Err(fell_back(format!(
                "the commit log holds commit {seq} right after commit {previous}"
            )));
        }
        previous = Some(seq);
        if seq <= state.last_seq {
            continue; // already in the checkpoint
        }
        if seq != state.last_seq + 1 {
            return Err(fell_back(format!(
                "commit log jumps from seq {} to {seq}",
                state.last_seq
            )));
        }
        apply_record(&mut state, &record)?;
    }
    // A skipped checkpoint must be covered by the log replayed instead.
    if let Some(newest) = loaded.unreadable.first()
        && state.last_seq < newest.seq
    {
        return Err(fell_back(format!(
            "the log after checkpoint {} ends at seq {}, before {}",
            checkpoint_seq.map_or("none".to_string(), |s| s.to_string()),
            state.last_seq,
            newest.seq
        )));
    }
    // A log that holds nothing after the checkpoint goes on right after it.
    if let Some(tail) = &mut tail {
        tail.seq = tail.seq.max(state.last_seq + 1);
    }
    Ok(Recovered {
        state,
        checkpoint_seq,
        tail,
    })
}

/// The commits in the local log's segments after `after` (plus earlier
/// ones that share a segment with them).
async fn read_local_log(location: &Location, after: u64) -> Result<Vec<CommitRecord>> {
    let Some(root) = &location.local_root else {
        return Ok(Vec::new());
    };
    let dir = root.join(LOG_DIR);
    let fs = location.fs.clone();
    tokio::task::spawn_blocking(move || read_log(fs.as_ref(), &dir, after))
        .await
        .map_err(|e| Error::internal(e.to_string()))?
}

fn state_from_checkpoint(checkpoint: Checkpoint) -> DbState {
    let mut tables = HashMap::new();
    for table in checkpoint.tables {
        let retired: Retirements = table.retired.into_iter().collect();
        let rows: u64 = table.files.iter().map(|f| f.rows).sum();
        let mut data = TableData {
            live_rows: rows.saturating_sub(retired.len() as u64),
            retired: Arc::new(retired),
            ..TableData::default()
        };
        for file in table.files {
            data.add_file(Arc::new(file));
        }
        data.history = table.history.into_iter().map(Arc::new).collect();
        tables.insert(table.id, data);
    }
    DbState {
        schema_epoch: checkpoint.seq,
        catalog: checkpoint.catalog,
        tables,
        pk_index: HashMap::new(),
        unique_index: HashMap::new(),
        commits: checkpoint.commits,
        last_seq: checkpoint.seq,
        last_time_us: checkpoint.time_us,
        next_rowid: checkpoint.next_rowid,
        memtable_since: None,
        sealed_through: checkpoint.seq,
        chunk_rows_max: 0,
        table_changes: HashMap::new(),
    }
}

/// Delete the data files no checkpoint on disk names: those a compaction
/// replaced (deleted in the process that replaced them only while it
/// ran), and those a persist or compaction wrote before a crash stopped it
/// naming them. Only when every checkpoint on disk is readable (an
/// unreadable one may name files a fallback would need).
pub(super) async fn delete_unnamed_files(location: &Location) -> Result<()> {
    if location.kind == StoreKind::Memory {
        return Ok(());
    }
    let mut named = std::collections::HashSet::new();
    for (seq, path) in list_checkpoints(location.store.as_ref()).await? {
        match read_checkpoint(location, seq, &path).await {
            Ok(checkpoint) => named.extend(
                checkpoint
                    .tables
                    .iter()
                    .flat_map(|t| t.all_files())
                    .map(|f| f.path.clone()),
            ),
            Err(e) => {
                tracing::warn!(checkpoint = seq, error = %e, "unreadable checkpoint: unnamed data files are kept");
                return Ok(());
            }
        }
    }
    let prefix = object_store::path::Path::from(super::persist::DATA_DIR);
    let listed: Vec<object_store::ObjectMeta> =
        futures::TryStreamExt::try_collect(location.store.list(Some(&prefix))).await?;
    let mut deleted = 0usize;
    for meta in listed {
        let path = meta.location.to_string();
        if path.ends_with(".parquet") && !named.contains(&path) {
            location.delete_file(&path).await?;
            deleted += 1;
        }
    }
    if deleted > 0 {
        tracing::info!(files = deleted, "deleted data files no checkpoint names");
    }
    Ok(())
}

/// Rebuild every live table's primary-key and UNIQUE indexes from its live rows.
pub(super) async fn rebuild_indexes(db: &Database) -> Result<()> {
    let tables: Vec<(TableDef, TableData)> = {
        let state = db.inner.state.read();
        let latest = state.last_seq;
        state
            .catalog
            .tables
            .iter()
            .filter(|t| t.exists_at(latest) && (t.has_primary_key() || !t.uniques.is_empty()))
            .map(|t| {
                (
                    t.clone(),
                    state.tables.get(&t.id).cloned().unwrap_or_default(),
                )
            })
            .collect()
    };
    for (def, data) in tables {
        let (pk, unique) = match build_indexes(db, &def, &data, def.has_primary_key()).await {
            Ok(indexes) => indexes,
            Err(Error::CorruptFile { file, detail }) => {
                tracing::error!(
                    table = %def.name,
                    file = %file,
                    %detail,
                    "a data file of this table is damaged: its reads fail (XX001) and writes to it are refused until the file is restored; other tables are unaffected"
                );
                db.inner
                    .damaged_tables
                    .lock()
                    .insert(def.id, DamagedTable { file, detail });
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut state = db.inner.state.write();
        if def.has_primary_key() {
            state.pk_index.insert(def.id, pk);
        }
        if !def.uniques.is_empty() {
            state.unique_index.insert(def.id, unique);
        }
    }
    Ok(())
}

/// The UNIQUE index of `def` over its rows at the latest commit; 23505 if
/// two live rows share a key (for ALTER TABLE … ADD CONSTRAINT … UNIQUE).
pub(crate) async fn build_unique_index(db: &Database, def: &TableDef) -> Result<UniqueIndex> {
    let data = {
        let state = db.inner.state.read();
        state.tables.get(&def.id).cloned().unwrap_or_default()
    };
    Ok(build_indexes(db, def, &data, false).await?.1)
}

/// The primary-key index (empty unless `with_pk`) and the UNIQUE index of `def`.
async fn build_indexes(
    db: &Database,
    def: &TableDef,
    data: &TableData,
    with_pk: bool,
) -> Result<(KeyIndex, UniqueIndex)> {
    let mut pk = primary_key_index(def);
    let mut unique = UniqueIndex::new(def);
    for mem in &data.memtable {
        index_live_rows(
            def,
            &mem.batch,
            &data.retired,
            with_pk.then_some(&mut pk),
            &mut unique,
        )?;
    }
    for file in &data.files {
        for batch in read_key_columns(db, def, file).await? {
            index_live_rows(
                def,
                &batch,
                &data.retired,
                with_pk.then_some(&mut pk),
                &mut unique,
            )?;
        }
    }
    Ok((pk, unique))
}

fn index_live_rows(
    def: &TableDef,
    batch: &RecordBatch,
    retired: &Retirements,
    pk: Option<&mut KeyIndex>,
    unique: &mut UniqueIndex,
) -> Result<()> {
    let rowids = batch
        .column_by_name(ROWID_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .ok_or_else(|| Error::Corrupt {
            detail: "batch without _rowid".into(),
        })?;
    let live = |row: usize| !retired.contains_key(&rowids.value(row));
    if let Some(pk) = pk {
        let keys = primary_keys(def, batch)?;
        for (row, key) in keys.iter().enumerate() {
            if let (true, Some(key)) = (live(row), key) {
                pk.insert(key, rowids.value(row));
            }
        }
    }
    if def.uniques.is_empty() {
        return Ok(());
    }
    let keys = unique_keys(def, batch)?;
    for (start, len) in live_runs(rowids, &live) {
        let run = keys.iter().map(|k| k.slice(start, len)).collect();
        if let Some((row, c)) = unique.insert_rows(rowids.value(start), run) {
            let named = user_columns(def, batch)?;
            return Err(unique_constraint_violation(def, c, &named, start + row));
        }
    }
    Ok(())
}

/// Runs `(start, len)` of live rows with consecutive `_rowid`s.
fn live_runs(rowids: &UInt64Array, live: &dyn Fn(usize) -> bool) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for row in (0..rowids.len()).filter(|r| live(*r)) {
        match runs.last_mut() {
            Some((start, len))
                if *start + *len == row && rowids.value(row - 1) + 1 == rowids.value(row) =>
            {
                *len += 1
            }
            _ => runs.push((row, 1)),
        }
    }
    runs
}

/// `batch` (any subset of physical columns) widened to the table's user
/// columns in order, missing ones NULL, for error messages.
fn user_columns(def: &TableDef, batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = crate::catalog::user_physical_schema(def.columns());
    let arrays = schema
        .fields()
        .iter()
        .map(|f| {
            batch
                .column_by_name(f.name())
                .cloned()
                .unwrap_or_else(|| arrow::array::new_null_array(f.data_type(), batch.num_rows()))
        })
        .collect();
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// The key columns (primary key and UNIQUE) and `_rowid` of one data file.
async fn read_key_columns(
    db: &Database,
    def: &TableDef,
    file: &DataFile,
) -> Result<Vec<RecordBatch>> {
    let mut wanted: Vec<String> = def
        .primary_key
        .iter()
        .chain(def.uniques.iter().flat_map(|u| u.columns.iter()))
        .map(|id| physical_name(*id))
        .collect();
    wanted.push(ROWID_COLUMN.to_string());
    wanted.push(SEQ_COLUMN.to_string());
    db.read_data_file(file, Some(&wanted)).await
}

/// A table with a damaged data file: its key indexes could not be built.
#[derive(Debug, Clone)]
pub(crate) struct DamagedTable {
    pub file: String,
    pub detail: String,
}

/// Refuse (XX001) a write set that writes to a table with a damaged data
/// file, or to a table whose foreign keys reference one: their key indexes
/// are incomplete, so no key check could be trusted. Dropping such a table
/// is allowed.
pub(super) fn refuse_writes_to_damaged(inner: &Inner, writes: &WriteSet) -> Result<()> {
    let damaged = inner.damaged_tables.lock();
    if damaged.is_empty() {
        return Ok(());
    }
    let state = inner.state.read();
    for write in &writes.writes {
        let table_id = match write {
            Write::Insert { table_id, .. }
            | Write::Retire { table_id, .. }
            | Write::SetColumns { table_id, .. }
            | Write::SetChecks { table_id, .. }
            | Write::SetUniques { table_id, .. }
            | Write::SetForeignKeys { table_id, .. } => *table_id,
            _ => continue,
        };
        let parents = state
            .catalog
            .tables
            .iter()
            .find(|t| t.id == table_id)
            .map(|t| {
                t.foreign_keys
                    .iter()
                    .map(|fk| fk.parent)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let Some((id, table)) = std::iter::once(table_id)
            .chain(parents)
            .find_map(|id| damaged.get(&id).map(|t| (id, t)))
        else {
            continue;
        };
        let name = state
            .catalog
            .tables
            .iter()
            .find(|t| t.id == id)
            .map_or_else(|| id.to_string(), |t| t.name.clone());
        return Err(Error::CorruptFile {
            file: table.file.clone(),
            detail: format!(
                "{}; writes that depend on table \"{name}\" are refused until the file is restored",
                table.detail
            ),
        });
    }
    Ok(())
}
