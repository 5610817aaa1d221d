//! Persisting the memtable to Parquet and writing checkpoints.
//!
//! Runs in the background when the memtable passes `memtable_bytes_max` or
//! `memtable_age_max`. Commits are held off only while the memtable is
//! frozen at `P` and the log rotated; encoding and upload run beside them.
//!
//! Order, each step durable before the next (on local disk: temp file,
//! fsync, rename, fsync the folder; on object storage: a completed PUT):
//! 1. rotate the log at `P + 1` (every commit <= `P` is fsynced);
//! 2. write the Parquet files, with their length and xxh64;
//! 3. write checkpoint `P`;
//! 4. only then delete what nothing needs any more: checkpoints older than
//!    the *previous* one, and log segments that one does not need. The
//!    previous checkpoint and the log after it stay, so an unreadable
//!    checkpoint `P` falls back to them at open.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::record_batch::RecordBatch;

use super::Database;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::log::CommitInfo;
use crate::storage::checkpoint::{
    CHECKPOINT_DIR, Checkpoint, TableCheckpoint, delete_checkpoints_before, write_checkpoint,
};
use crate::storage::parquet_file::encode_parquet;
use crate::storage::{DataFile, MemBatch};

/// The folder of data files (one folder per table in it), under the database folder.
pub(super) const DATA_DIR: &str = "data";

/// The database frozen at seq `P`.
struct Frozen {
    seq: u64,
    time_us: i64,
    next_rowid: u64,
    catalog: Catalog,
    commits: Vec<CommitInfo>,
    memtables: Vec<(u64, Vec<MemBatch>)>,
}

impl Database {
    /// Start a background persist if the memtable is over its size limit.
    pub(crate) fn maybe_persist(&self) {
        let bytes: usize = {
            let state = self.inner.state.read();
            state.tables.values().map(|t| t.memtable_bytes()).sum()
        };
        if bytes >= self.inner.limits.memtable_bytes_max {
            self.maybe_persist_now();
        }
    }

    /// Start a background persist unless one is running.
    pub(crate) fn maybe_persist_now(&self) {
        if self.inner.persisting.swap(true, Ordering::AcqRel) {
            return;
        }
        let db = self.clone();
        tokio::spawn(async move {
            match db.persist().await {
                Ok(_) => db.compact_due_tables().await,
                Err(e) => tracing::error!(error = %e, "background persist failed"),
            }
            db.inner.persisting.store(false, Ordering::Release);
        });
    }

    /// Write the whole memtable to Parquet and checkpoint; returns the checkpoint seq.
    pub async fn persist(&self) -> Result<u64> {
        let _one_at_a_time = self.inner.persist_lock.lock().await;
        self.persist_locked(false).await
    }

    /// [`Self::persist`] under the persist lock; `rewrite` writes the
    /// checkpoint even when one at the same seq is durable (its file list
    /// changed: a compaction).
    pub(super) async fn persist_locked(&self, rewrite: bool) -> Result<u64> {
        self.check_poisoned()?;
        let frozen = self.freeze().await?;
        let previous = *self.inner.checkpoint_seq.lock();
        if previous == Some(frozen.seq) && frozen.memtables.is_empty() && !rewrite {
            // Checkpoint P is already durable; files scans held may be free now.
            let floor = self.inner.checkpoint_floor.load(Ordering::Acquire);
            self.delete_obsolete_files(floor).await?;
            return Ok(frozen.seq);
        }
        let mut written: Vec<(u64, DataFile)> = Vec::new();
        for (table_id, batches) in &frozen.memtables {
            for group in group_by_schema(batches) {
                let file = self
                    .write_file(*table_id, frozen.seq, written.len(), group)
                    .await?;
                written.push((*table_id, file));
            }
        }
        self.install_files(frozen.seq, written);
        let checkpoint = self.checkpoint_of(frozen);
        self.check_lease().await?;
        write_checkpoint(&self.inner.location, &checkpoint).await?;
        *self.inner.checkpoint_seq.lock() = Some(checkpoint.seq);
        self.note_unnamed_from(checkpoint.seq);
        if let Some(previous) = previous.filter(|p| *p < checkpoint.seq) {
            self.delete_before(previous).await?;
        }
        Ok(checkpoint.seq)
    }

    /// Compact the tables due for it (see `compact`), one at a time.
    async fn compact_due_tables(&self) {
        for table in self.tables_due_for_compaction() {
            match self.compact_table(&table).await {
                Ok(report) => tracing::info!(
                    table = %table,
                    files = report.files_rewritten,
                    history_rows = report.history_rows,
                    "compacted"
                ),
                Err(e) => {
                    tracing::warn!(table = %table, error = %e, "background compaction failed")
                }
            }
        }
    }

    /// Delete checkpoints older than checkpoint `keep` and the log segments
    /// it does not need (it and every later checkpoint are durable).
    async fn delete_before(&self, keep: u64) -> Result<()> {
        self.check_lease().await?;
        if let Some(log) = &self.inner.log {
            log.delete_through(keep).await?;
        }
        delete_checkpoints_before(&self.inner.location, keep).await?;
        self.inner.checkpoint_floor.store(keep, Ordering::Release);
        self.delete_obsolete_files(keep).await
    }

    /// Checkpoint `seq` (durable) names none of the files compaction has
    /// replaced so far: compactions replace files under the persist lock,
    /// which this checkpoint was built and written under.
    fn note_unnamed_from(&self, seq: u64) {
        let mut obsolete = self.inner.obsolete.lock();
        for entry in obsolete.iter_mut().filter(|o| o.unnamed_from.is_none()) {
            entry.unnamed_from = Some(seq);
        }
    }

    /// Delete the files compaction replaced that no checkpoint on disk
    /// names (all are at or after `oldest`) and no scan holds.
    async fn delete_obsolete_files(&self, oldest: u64) -> Result<()> {
        let deletable: Vec<Arc<DataFile>> = {
            let mut obsolete = self.inner.obsolete.lock();
            let (go, stay): (Vec<_>, Vec<_>) = obsolete.drain(..).partition(|o| {
                o.unnamed_from.is_some_and(|s| s <= oldest) && Arc::strong_count(&o.file) == 1
            });
            *obsolete = stay;
            go.into_iter().map(|o| o.file).collect()
        };
        if deletable.is_empty() {
            return Ok(());
        }
        // The checkpoints that named them must be gone for good first.
        self.inner.location.sync_folder(CHECKPOINT_DIR).await?;
        for file in deletable {
            self.inner.location.delete_file(&file.path).await?;
        }
        Ok(())
    }

    /// On object storage, make sure no other process has taken the
    /// database over before writing a checkpoint or deleting anything
    /// (55006, and writes refused from then on, if one has).
    async fn check_lease(&self) -> Result<()> {
        let Some(lease) = &self.inner.lease else {
            return Ok(());
        };
        self.inner.gate.check()?;
        let started = std::time::Instant::now();
        match lease.renew().await {
            Ok(()) => {
                self.inner.gate.renewed(started);
                Ok(())
            }
            Err(Error::Fenced { detail }) => Err(self.inner.poison(super::Poison::Fenced(detail))),
            Err(e) => Err(e),
        }
    }

    /// Freeze the state at the latest commit and start a new log segment after it.
    async fn freeze(&self) -> Result<Frozen> {
        let _no_commits = self.inner.writer.lock().await;
        let frozen = {
            let mut state = self.inner.state.write();
            // No commit after P may merge into a chunk that is being persisted.
            state.sealed_through = state.last_seq;
            Frozen {
                seq: state.last_seq,
                time_us: state.last_time_us,
                next_rowid: state.next_rowid,
                catalog: state.catalog.clone(),
                commits: state.commits.clone(),
                memtables: state
                    .tables
                    .iter()
                    .filter(|(_, t)| !t.memtable.is_empty())
                    .map(|(id, t)| (*id, t.memtable.clone()))
                    .collect(),
            }
        };
        if let Some(log) = &self.inner.log {
            // Rotation fsyncs everything queued before it: all commits <= P are durable after it.
            log.rotate(frozen.seq + 1).await?;
        }
        Ok(frozen)
    }

    async fn write_file(
        &self,
        table_id: u64,
        seq: u64,
        ordinal: usize,
        batches: Vec<RecordBatch>,
    ) -> Result<DataFile> {
        // On object storage the lease epoch keeps the names of two
        // processes apart (one may be a writer that was taken over).
        let name = match &self.inner.lease {
            Some(lease) => format!("{seq:020}-e{}-{ordinal:04}.parquet", lease.epoch()),
            None => format!("{seq:020}-{ordinal:04}.parquet"),
        };
        self.store_data_file(table_id, &name, batches).await
    }

    /// Encode `batches` (one schema, sorted by `_rowid`) as the Parquet
    /// file `name` of table `table_id` and store it durably; its entry.
    pub(super) async fn store_data_file(
        &self,
        table_id: u64,
        name: &str,
        batches: Vec<RecordBatch>,
    ) -> Result<DataFile> {
        let path = format!("{DATA_DIR}/t{table_id}/{name}");
        let row_group_rows = self.inner.limits.parquet_row_group_rows_max;
        let (bytes, file) = tokio::task::spawn_blocking(move || {
            let schema = batches[0].schema();
            encode_parquet(&schema, &batches, path, row_group_rows)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
        self.inner
            .location
            .put_file(&file.path, bytes::Bytes::from(bytes))
            .await?;
        Ok(file)
    }

    /// Swap memtable batches at or before `seq` for the files that now hold them.
    fn install_files(&self, seq: u64, written: Vec<(u64, DataFile)>) {
        let mut state = self.inner.state.write();
        for data in state.tables.values_mut() {
            data.memtable.retain(|m| m.min_seq > seq);
        }
        for (table_id, file) in written {
            self.inner.location.verifier.expect(&file);
            state
                .tables
                .entry(table_id)
                .or_default()
                .add_file(Arc::new(file));
        }
        if state.tables.values().all(|t| t.memtable.is_empty()) {
            state.memtable_since = None;
        }
    }

    fn checkpoint_of(&self, frozen: Frozen) -> Checkpoint {
        let state = self.inner.state.read();
        let tables = frozen
            .catalog
            .tables
            .iter()
            .map(|def| {
                let data = state.tables.get(&def.id);
                let files = data
                    .map(|d| {
                        d.files
                            .iter()
                            .filter(|f| f.max_seq <= frozen.seq)
                            .map(|f| (**f).clone())
                            .collect()
                    })
                    .unwrap_or_default();
                let mut retired: Vec<(u64, u64)> = data
                    .map(|d| {
                        d.retired
                            .iter()
                            .filter(|(_, s)| **s <= frozen.seq)
                            .map(|(r, s)| (*r, *s))
                            .collect()
                    })
                    .unwrap_or_default();
                retired.sort_unstable();
                let history = data
                    .map(|d| d.history.iter().map(|f| (**f).clone()).collect())
                    .unwrap_or_default();
                TableCheckpoint {
                    id: def.id,
                    files,
                    retired,
                    history,
                }
            })
            .collect();
        Checkpoint {
            seq: frozen.seq,
            time_us: frozen.time_us,
            next_rowid: frozen.next_rowid,
            catalog: frozen.catalog,
            commits: frozen.commits,
            tables,
        }
    }
}

/// Runs of consecutive batches that share one schema (a schema change starts a new file).
fn group_by_schema(batches: &[MemBatch]) -> Vec<Vec<RecordBatch>> {
    let mut groups: Vec<Vec<RecordBatch>> = Vec::new();
    for mem in batches {
        match groups.last_mut() {
            Some(group) if group[0].schema() == mem.batch.schema() => group.push(mem.batch.clone()),
            _ => groups.push(vec![mem.batch.clone()]),
        }
    }
    groups
}
