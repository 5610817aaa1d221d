//! Compaction: rewriting a table's data files into a *current* tier and a
//! *history* tier, so that reads of the present stop paying for the past.
//!
//! At seq `C`, the newest durable commit, each run of adjacent data files
//! (in `_rowid` order) that holds versions retired at or before `C`, or
//! that is made of small files, is rewritten as
//! - one current file: the versions live at `C`, with their `_rowid` and
//!   `_seq`. Retirements after `C` stay in the retirement map, which is
//!   keyed by `_rowid` and so applies to the new file unchanged;
//! - one history file: the versions retired at or before `C`, each with
//!   its retiring seq in `_retired_seq`; their entries leave the map.
//!
//! Every version keeps its identity, and a read at any snapshot sees the
//! same rows before and after. A read of the present skips history files
//! (every version in them was retired by `C`); a read `AS OF` an older
//! snapshot takes the history files whose seq ranges reach it.
//!
//! Order, each step durable before the next: write both files; swap them
//! for the run in memory (under one lock, so a snapshot sees the run or
//! its replacement, never both); write a checkpoint naming them. The
//! replaced files are deleted once no checkpoint on disk names them and
//! no scan holds them ([`Database::delete_obsolete_files`]), so compaction
//! needs at most the rewritten files' size in extra space. Compactions and
//! persists run one at a time (the persist lock); commits go on beside
//! them.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, UInt64Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use object_store::ObjectStoreExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::Database;
use crate::catalog::{RETIRED_COLUMN, ROWID_COLUMN, SEQ_COLUMN};
use crate::error::{Error, Result};
use crate::storage::verify::store_error;
use crate::storage::{DataFile, Retirements, TableData};
use crate::temporal::provider::adapt_batch;

/// What one compaction of one table did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// The commit it compacted at.
    pub seq: u64,
    pub files_rewritten: usize,
    pub current_files: usize,
    pub history_files: usize,
    /// Versions written to current files (live at `seq`).
    pub current_rows: u64,
    /// Versions written to history files (retired at or before `seq`).
    pub history_rows: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Versions retired at or before the table's horizon, removed for good.
    pub versions_removed: u64,
}

/// Files to rewrite together: a run of adjacent current-tier files (into
/// one current and one history file), or one history file to purge.
#[derive(Debug)]
struct Run {
    files: Vec<Arc<DataFile>>,
    history_tier: bool,
}

/// A run rewritten, ready to swap in.
struct Rewritten {
    replaced: Vec<Arc<DataFile>>,
    /// Whether `replaced` is one history file (purged).
    history_tier: bool,
    versions_removed: u64,
    current: Option<DataFile>,
    history: Option<DataFile>,
    /// The rows moved to the history file (their map entries go).
    history_rowids: Vec<u64>,
}

/// The runs of table `data`'s files worth rewriting at `seq`: adjacent
/// files each holding a version retired at or before `seq` or under an
/// eighth of `file_rows_target` rows; a run closes before its live rows
/// pass `file_rows_target` or all its rows pass [`RUN_ROWS_FACTOR`] times
/// that. A lone file with nothing retired is left as it is.
pub(crate) fn runs_to_compact(
    data: &TableData,
    seq: u64,
    file_rows_target: u64,
) -> Vec<Vec<Arc<DataFile>>> {
    let small = small_file_rows(file_rows_target);
    let mut runs: Vec<(Vec<Arc<DataFile>>, bool)> = Vec::new();
    let (mut live_in_run, mut rows_in_run) = (0u64, 0u64);
    let mut open = false;
    for (file, seqs) in data.files.iter().zip(&data.file_retire_seqs) {
        let retired = (seqs.partition_point(|s| *s <= seq) as u64).min(file.rows);
        let live = file.rows - retired;
        if retired == 0 && file.rows >= small {
            open = false;
            continue;
        }
        let full = live_in_run + live > file_rows_target
            || rows_in_run + file.rows > file_rows_target.saturating_mul(RUN_ROWS_FACTOR);
        if !open || full {
            runs.push((Vec::new(), false));
            (live_in_run, rows_in_run, open) = (0, 0, true);
        }
        live_in_run += live;
        rows_in_run += file.rows;
        let run = runs.last_mut().expect("a run was opened");
        run.0.push(file.clone());
        run.1 |= retired > 0;
    }
    runs.into_iter()
        .filter(|(files, any_retired)| files.len() > 1 || *any_retired)
        .map(|(files, _)| files)
        .collect()
}

/// Files under an eighth of the target are small (merged when adjacent).
fn small_file_rows(file_rows_target: u64) -> u64 {
    (file_rows_target / 8).max(1)
}

/// A run holds at most this many times `compact_file_rows_target` rows
/// (live and retired), which bounds the memory one rewrite takes.
const RUN_ROWS_FACTOR: u64 = 4;

impl Database {
    /// The tables a background compaction should take now: those with at
    /// least `compact_retired_percent_min`% of their stored rows retired,
    /// or `compact_small_files_min` small files.
    pub(crate) fn tables_due_for_compaction(&self) -> Vec<String> {
        let limits = &self.inner.limits;
        if limits.compact_retired_percent_min == 0 {
            return Vec::new();
        }
        let seq = self.visible_seq();
        let small = small_file_rows(limits.compact_file_rows_target);
        let state = self.inner.state.read();
        state
            .catalog
            .tables
            .iter()
            .filter(|def| def.exists_at(seq))
            .filter(|def| {
                let Some(data) = state.tables.get(&def.id) else {
                    return false;
                };
                let rows: u64 = data.files.iter().map(|f| f.rows).sum();
                let retired: u64 = data
                    .file_retire_seqs
                    .iter()
                    .map(|s| s.partition_point(|r| *r <= seq) as u64)
                    .sum();
                let small_files = data.files.iter().filter(|f| f.rows < small).count();
                (rows > 0 && retired * 100 >= rows * limits.compact_retired_percent_min)
                    || small_files >= limits.compact_small_files_min
            })
            .map(|def| def.name.clone())
            .collect()
    }

    /// Compact table `name` now (`COMPACT TABLE`): persist the memtable,
    /// rewrite every run worth it at the newest durable commit, and write
    /// a checkpoint naming the new files.
    pub async fn compact_table(&self, name: &str) -> Result<CompactReport> {
        self.persist().await?;
        let _one_at_a_time = self.inner.persist_lock.lock().await;
        self.check_poisoned()?;
        let seq = self.visible_seq();
        let (table_id, horizon, runs) = {
            let state = self.inner.state.read();
            let def = state
                .catalog
                .table_at(name, seq)
                .ok_or_else(|| Error::UnknownTable {
                    name: name.to_string(),
                    context: String::new(),
                })?;
            let horizon = Horizon {
                seq: def.history.horizon.min(seq),
                tagged: state.catalog.tagged_versions(seq),
            };
            let runs = state
                .tables
                .get(&def.id)
                .map(|d| {
                    let target = self.inner.limits.compact_file_rows_target;
                    let current = runs_to_compact(d, seq, target)
                        .into_iter()
                        .map(|files| Run {
                            files,
                            history_tier: false,
                        });
                    let purged = d
                        .history
                        .iter()
                        .filter(|f| {
                            f.retired_seqs
                                .is_some_and(|(first, _)| first <= horizon.seq)
                        })
                        .map(|f| Run {
                            files: vec![f.clone()],
                            history_tier: true,
                        });
                    current.chain(purged).collect::<Vec<_>>()
                })
                .unwrap_or_default();
            (def.id, horizon, runs)
        };
        let mut report = CompactReport {
            seq,
            ..CompactReport::default()
        };
        if runs.is_empty() {
            return Ok(report);
        }
        for (ordinal, run) in runs.into_iter().enumerate() {
            let rewritten = self
                .rewrite_run(table_id, (seq, &horizon), ordinal, run)
                .await?;
            report.add(&rewritten);
            self.install_rewritten(table_id, rewritten)?;
        }
        self.persist_locked(true).await?;
        Ok(report)
    }

    /// Read a run's versions and write them as a current and a history
    /// file, leaving out the versions `horizon` removes.
    async fn rewrite_run(
        &self,
        table_id: u64,
        (seq, horizon): (u64, &Horizon),
        ordinal: usize,
        run: Run,
    ) -> Result<Rewritten> {
        let retired = self
            .inner
            .state
            .read()
            .tables
            .get(&table_id)
            .map(|d| d.retired.clone())
            .unwrap_or_default();
        let mut batches = Vec::new();
        for file in &run.files {
            batches.extend(self.read_data_file(file, None).await?);
        }
        let (current, history, history_rowids, removed) = match run.history_tier {
            true => purge_history(&batches, horizon)?,
            false => split_by_tier(
                &batches,
                &merged_schema(&batches)?,
                &retired,
                (seq, horizon),
            )?,
        };
        let stamp = chrono::Utc::now().timestamp_micros();
        let epoch = self
            .inner
            .lease
            .as_ref()
            .map(|l| format!("-e{}", l.epoch()))
            .unwrap_or_default();
        let write = |tier: &'static str, batches: Vec<RecordBatch>| {
            let name = format!("{seq:020}{epoch}-{tier}{stamp}-{ordinal:04}.parquet");
            async move {
                match batches.iter().any(|b| b.num_rows() > 0) {
                    true => self
                        .store_data_file(table_id, &name, batches)
                        .await
                        .map(Some),
                    false => Ok(None),
                }
            }
        };
        let current = write("c", current).await?;
        let history = write("h", history).await?;
        Ok(Rewritten {
            replaced: run.files,
            history_tier: run.history_tier,
            versions_removed: removed,
            current,
            history,
            history_rowids,
        })
    }

    /// Every row version stored in `file` (checked against its entry),
    /// with only the stored columns named in `columns` if given.
    pub(crate) async fn read_data_file(
        &self,
        file: &DataFile,
        columns: Option<&[String]>,
    ) -> Result<Vec<RecordBatch>> {
        let path = object_store::path::Path::from(file.path.as_str());
        let store = self.object_store();
        let bytes = async { store.get(&path).await?.bytes().await }
            .await
            .map_err(store_error)?;
        let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
        if let Some(columns) = columns {
            let indices = builder
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| columns.contains(f.name()))
                .map(|(i, _)| i);
            let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
            builder = builder.with_projection(mask);
        }
        let reader = builder.build()?;
        Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// Swap a rewritten run for the files it replaces.
    fn install_rewritten(&self, table_id: u64, rewritten: Rewritten) -> Result<()> {
        for file in rewritten.current.iter().chain(&rewritten.history) {
            self.inner.location.verifier.expect(file);
        }
        let mut state = self.inner.state.write();
        let data = state.tables.get_mut(&table_id).ok_or_else(|| {
            Error::internal(format!("table {table_id} went away during its compaction"))
        })?;
        match rewritten.history_tier {
            true => {
                data.replace_history(&rewritten.replaced[0], rewritten.history.map(Arc::new))?
            }
            false => data.replace_run(
                &rewritten.replaced,
                rewritten.current.map(Arc::new),
                rewritten.history.map(Arc::new),
                &rewritten.history_rowids,
            )?,
        }
        drop(state);
        self.inner
            .obsolete
            .lock()
            .extend(rewritten.replaced.into_iter().map(|file| super::Obsolete {
                file,
                unnamed_from: None,
            }));
        Ok(())
    }
}

impl CompactReport {
    fn add(&mut self, run: &Rewritten) {
        self.files_rewritten += run.replaced.len();
        self.versions_removed += run.versions_removed;
        self.bytes_before += run.replaced.iter().map(|f| f.bytes).sum::<u64>();
        for (file, count, rows) in [
            (
                &run.current,
                &mut self.current_files,
                &mut self.current_rows,
            ),
            (
                &run.history,
                &mut self.history_files,
                &mut self.history_rows,
            ),
        ] {
            if let Some(file) = file {
                *count += 1;
                *rows += file.rows;
                self.bytes_after += file.bytes;
            }
        }
    }
}

impl TableData {
    /// Replace history file `old` by `new` (its versions past the horizon).
    pub(crate) fn replace_history(
        &mut self,
        old: &Arc<DataFile>,
        new: Option<Arc<DataFile>>,
    ) -> Result<()> {
        let i = self
            .history
            .iter()
            .position(|f| f.path == old.path)
            .ok_or_else(|| Error::internal("the history file a purge rewrote went away"))?;
        match new {
            Some(new) => self.history[i] = new,
            None => {
                self.history.remove(i);
            }
        }
        Ok(())
    }

    /// Replace the adjacent files `run` by `current` (in their place) and
    /// add `history`; the rows of `history_rowids` leave the retirement map.
    pub(crate) fn replace_run(
        &mut self,
        run: &[Arc<DataFile>],
        current: Option<Arc<DataFile>>,
        history: Option<Arc<DataFile>>,
        history_rowids: &[u64],
    ) -> Result<()> {
        let start = self
            .files
            .iter()
            .position(|f| f.path == run[0].path)
            .filter(|i| {
                self.files[*i..]
                    .iter()
                    .zip(run)
                    .filter(|(a, b)| a.path == b.path)
                    .count()
                    == run.len()
            })
            .ok_or_else(|| Error::internal("the files a compaction rewrote changed under it"))?;
        let retired = Arc::make_mut(&mut self.retired);
        for rowid in history_rowids {
            retired.remove(rowid);
        }
        let seqs = current.as_ref().map(|file| self.retire_seqs_of(file));
        let end = start + run.len();
        self.files.splice(start..end, current);
        self.file_retire_seqs.splice(start..end, seqs);
        self.history.extend(history);
        Ok(())
    }
}

/// One schema for a run's batches: every stored column of any of them (a
/// file from before `ADD COLUMN` lacks the new one, which reads as NULL),
/// then `_rowid` and `_seq`.
fn merged_schema(batches: &[RecordBatch]) -> Result<SchemaRef> {
    let mut fields: Vec<Field> = Vec::new();
    for batch in batches {
        for field in batch.schema().fields() {
            if [ROWID_COLUMN, SEQ_COLUMN].contains(&field.name().as_str()) {
                continue;
            }
            match fields.iter().find(|f| f.name() == field.name()) {
                Some(seen) if seen.data_type() != field.data_type() => {
                    return Err(Error::internal(format!(
                        "stored column {} has two types ({} and {})",
                        field.name(),
                        seen.data_type(),
                        field.data_type()
                    )));
                }
                Some(_) => {}
                None => fields.push(field.as_ref().clone().with_nullable(true)),
            }
        }
    }
    fields.extend(crate::catalog::system_fields());
    Ok(Arc::new(Schema::new(fields)))
}

/// Split a run's rows into the live ones at `seq` (in `_rowid` order) and
/// the retired ones (with their retiring seq, in retirement order); also
/// the retired rowids.
fn split_by_tier(
    batches: &[RecordBatch],
    schema: &SchemaRef,
    retired: &Retirements,
    (seq, horizon): (u64, &Horizon),
) -> Result<Split> {
    let mut history_fields: Vec<Field> =
        schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    history_fields.push(Field::new(RETIRED_COLUMN, DataType::UInt64, false));
    let history_schema = Arc::new(Schema::new(history_fields));
    let (mut current, mut history, mut history_rowids) = (Vec::new(), Vec::new(), Vec::new());
    // The run's files are in `_rowid` order, and so are the rows of each.
    for batch in batches {
        let batch = adapt_batch(batch, schema)?;
        let rowids = batch
            .column_by_name(ROWID_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
            .ok_or_else(|| Error::Corrupt {
                detail: "a data file without _rowid".into(),
            })?;
        let retired_at: Vec<Option<u64>> = rowids
            .values()
            .iter()
            .map(|r| retired.get(r).copied().filter(|s| *s <= seq))
            .collect();
        let is_retired = BooleanArray::from_iter(retired_at.iter().map(|r| Some(r.is_some())));
        let is_live = arrow::compute::not(&is_retired)?;
        current.push(filter_record_batch(&batch, &is_live)?);
        let moved = filter_record_batch(&batch, &is_retired)?;
        let seqs: ArrayRef = Arc::new(UInt64Array::from_iter_values(
            retired_at.iter().flatten().copied(),
        ));
        history_rowids.extend(
            rowids
                .values()
                .iter()
                .zip(&retired_at)
                .filter(|(_, r)| r.is_some())
                .map(|(rowid, _)| *rowid),
        );
        let mut columns = moved.columns().to_vec();
        columns.push(seqs);
        history.push(RecordBatch::try_new(history_schema.clone(), columns)?);
    }
    let history = by_retirement(&history_schema, &history)?;
    let (history, removed) = past_horizon(history, horizon)?;
    Ok((current, history, history_rowids, removed))
}

/// Which retired versions survive a compaction: those retired after the
/// table's horizon, and those a live tag's version sees.
struct Horizon {
    seq: u64,
    /// The versions live tags name, ascending.
    tagged: Vec<u64>,
}

impl Horizon {
    /// Whether the version written at `written` and retired at `retired` stays.
    fn keeps(&self, written: u64, retired: u64) -> bool {
        if retired > self.seq {
            return true;
        }
        // The first tag at or after the write: it sees the version if the
        // version was not yet retired then.
        let first = self.tagged.partition_point(|t| *t < written);
        self.tagged.get(first).is_some_and(|t| *t < retired)
    }
}

/// A run split: current rows, history rows, the rowids that left the
/// retirement map, and how many versions the horizon removed.
type Split = (Vec<RecordBatch>, Vec<RecordBatch>, Vec<u64>, u64);

/// A history file's rows without those `horizon` removes.
fn purge_history(batches: &[RecordBatch], horizon: &Horizon) -> Result<Split> {
    let (history, removed) = past_horizon(batches.to_vec(), horizon)?;
    Ok((Vec::new(), history, Vec::new(), removed))
}

/// History rows `horizon` keeps, and how many it removed.
fn past_horizon(batches: Vec<RecordBatch>, horizon: &Horizon) -> Result<(Vec<RecordBatch>, u64)> {
    let mut kept = Vec::with_capacity(batches.len());
    let mut removed = 0;
    for batch in batches {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                .ok_or_else(|| Error::internal(format!("history rows lack {name}")))
        };
        let (written, retired) = (column(SEQ_COLUMN)?, column(RETIRED_COLUMN)?);
        let keep = BooleanArray::from_iter(
            written
                .values()
                .iter()
                .zip(retired.values())
                .map(|(w, r)| Some(horizon.keeps(*w, *r))),
        );
        removed += (batch.num_rows() - keep.true_count()) as u64;
        kept.push(filter_record_batch(&batch, &keep)?);
    }
    Ok((kept, removed))
}

/// History rows ordered by `_retired_seq` (then `_rowid`): a read `AS OF`
/// S skips by row-group statistics the versions retired at or before S.
fn by_retirement(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    let all = arrow::compute::concat_batches(schema, batches)?;
    if all.num_rows() == 0 {
        return Ok(Vec::new());
    }
    let column = |name: &str| -> Result<ArrayRef> {
        all.column_by_name(name)
            .cloned()
            .ok_or_else(|| Error::internal(format!("history rows lack {name}")))
    };
    let order = arrow::compute::lexsort_to_indices(
        &[
            arrow::compute::SortColumn {
                values: column(RETIRED_COLUMN)?,
                options: None,
            },
            arrow::compute::SortColumn {
                values: column(ROWID_COLUMN)?,
                options: None,
            },
        ],
        None,
    )?;
    Ok(vec![arrow::compute::take_record_batch(&all, &order)?])
}
