//! `VisibilityExec`: keeps the row versions visible at a snapshot (or in a
//! history range) and shapes them into the table's output columns.
//!
//! Its input yields the scan schema: the needed user columns (physical
//! names), then `_rowid`, then `_seq`, then (when history-tier files are
//! read) `_retired_seq`. Visibility is a per-row check of `_seq` and of the
//! retiring seq, applied as one boolean mask per batch: a history-tier row
//! carries its retiring seq, any other is looked up in the retirement map.
//! A batch from a data file none of whose rows was retired early enough to
//! matter skips the retirement map; the `retirement_lookups` metric
//! (`EXPLAIN ANALYZE`) counts the rows that did not.

use std::collections::HashSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBufferBuilder, TimestampMicrosecondArray, UInt64Array,
};
use arrow::compute::{filter, max, min};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::Statistics;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

use crate::db::HistoryRange;
use crate::storage::Retirements;

/// One output column of a temporal scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputColumn {
    /// Index into the scan schema.
    User(usize),
    RowId,
    Seq,
    SystemFrom,
    SystemTo,
    /// The seq that retired the version (NULL while live).
    RetiredSeq,
}

/// Which versions a scan keeps.
#[derive(Debug, Clone, Copy)]
pub enum Visibility {
    AsOf(u64),
    History(HistoryRange),
}

impl Visibility {
    /// Versions retired at or before this seq are hidden: at S, live means
    /// not retired by S; in a history range, live at some point of it means
    /// retired after its start.
    pub fn lowest_retire(self) -> u64 {
        match self {
            Visibility::AsOf(s) => s,
            Visibility::History(r) => r.from_seq,
        }
    }

    /// Versions written after this seq are hidden.
    fn highest_seq(self) -> u64 {
        match self {
            Visibility::AsOf(s) => s,
            Visibility::History(r) => r.to_seq,
        }
    }
}

/// Everything the visibility filter needs, shared by all partitions.
#[derive(Debug)]
pub struct VisibilitySpec {
    pub visibility: Visibility,
    pub retired: Arc<Retirements>,
    /// `_rowid` ranges of data files with no version retired at or before
    /// [`Visibility::lowest_retire`], sorted and disjoint: batches inside
    /// one skip the retirement map.
    pub unretired: Vec<RangeInclusive<u64>>,
    /// Rows the reading transaction retired itself (not committed yet).
    pub own_retired: Option<Arc<HashSet<u64>>>,
    pub commit_times: Arc<Vec<i64>>,
    pub output: Vec<OutputColumn>,
    pub output_schema: SchemaRef,
    /// Stop after this many visible rows per partition (a pushed-down LIMIT).
    pub fetch: Option<usize>,
    /// Inexact statistics of the output columns (live rows, column bounds),
    /// for DataFusion's join ordering; None for history reads.
    pub statistics: Option<Statistics>,
    /// Whether the input's last column is `_retired_seq` (history-tier files are read).
    pub retired_column: bool,
    /// Every input row is visible and the input has no system columns
    /// (see `TableSnapshot::all_visible`): rows pass through, reshaped.
    pub all_visible: bool,
    /// The data files the input reads, held while the scan runs: a file
    /// compaction replaced is deleted only once no scan holds it.
    pub pins: Vec<Arc<crate::storage::DataFile>>,
}

/// Where the system columns sit in a scan batch.
struct SystemColumns<'a> {
    rowid: usize,
    seq: usize,
    rowids: &'a UInt64Array,
    seqs: &'a UInt64Array,
    /// The retiring seq of history-tier rows (NULL for every other row).
    retired: Option<&'a UInt64Array>,
}

impl<'a> SystemColumns<'a> {
    fn of(spec: &VisibilitySpec, batch: &'a RecordBatch) -> Result<Self> {
        let n = batch.num_columns();
        let first = n - 2 - usize::from(spec.retired_column);
        let retired = match spec.retired_column {
            true => Some(as_u64(batch.column(n - 1))?).filter(|r| r.null_count() < r.len()),
            false => None,
        };
        Ok(Self {
            rowid: first,
            seq: first + 1,
            rowids: as_u64(batch.column(first))?,
            seqs: as_u64(batch.column(first + 1))?,
            retired,
        })
    }

    /// The seq that retired row `i`, if any.
    fn retired_at(&self, spec: &VisibilitySpec, i: usize) -> Option<u64> {
        match self.retired {
            Some(r) if r.is_valid(i) => Some(r.value(i)),
            _ => spec.retired.get(&self.rowids.value(i)).copied(),
        }
    }
}

/// Filters its input down to the visible versions.
#[derive(Debug)]
pub struct VisibilityExec {
    input: Arc<dyn ExecutionPlan>,
    spec: Arc<VisibilitySpec>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl VisibilityExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, spec: Arc<VisibilitySpec>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(spec.output_schema.clone()),
            input.properties().output_partitioning().clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            input,
            spec,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for VisibilityExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.spec.visibility {
            Visibility::AsOf(seq) => write!(f, "VisibilityExec: as_of={seq}"),
            Visibility::History(r) => {
                write!(f, "VisibilityExec: history={}..={}", r.from_seq, r.to_seq)
            }
        }
    }
}

impl ExecutionPlan for VisibilityExec {
    fn name(&self) -> &str {
        "VisibilityExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "VisibilityExec takes one child".into(),
            ));
        }
        Ok(Arc::new(Self::new(
            children.swap_remove(0),
            self.spec.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let spec = self.spec.clone();
        let lookups = MetricBuilder::new(&self.metrics).counter("retirement_lookups", partition);
        let visible = input.map(move |batch| batch.and_then(|b| visible_rows(&spec, &b, &lookups)));
        let remaining = self.spec.fetch.unwrap_or(usize::MAX);
        let limited = visible.scan(remaining, |remaining, batch| {
            let out = match batch {
                Ok(_) if *remaining == 0 => None,
                Ok(batch) => {
                    let keep = batch.num_rows().min(*remaining);
                    *remaining -= keep;
                    Some(Ok(batch.slice(0, keep)))
                }
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(out)
        });
        let schema = self.spec.output_schema.clone();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, limited)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    /// The table's inexact statistics for the whole scan, so joins build
    /// on their smaller side; unknown per partition.
    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        let schema = self.spec.output_schema.as_ref();
        let statistics = match (&self.spec.statistics, partition) {
            (Some(statistics), None) => {
                let statistics = statistics.clone();
                let partitions = self.properties.output_partitioning().partition_count();
                match self.spec.fetch {
                    Some(fetch) => statistics.with_fetch(Some(fetch), 0, partitions)?,
                    None => statistics,
                }
            }
            _ => Statistics::new_unknown(schema),
        };
        Ok(Arc::new(statistics))
    }
}

/// Keep the visible rows of one scan batch and build the output columns.
fn visible_rows(
    spec: &VisibilitySpec,
    batch: &RecordBatch,
    lookups: &Count,
) -> Result<RecordBatch> {
    if spec.all_visible {
        return passed_through(spec, batch);
    }
    let system = SystemColumns::of(spec, batch)?;
    let check_retired = system.retired.is_none() && needs_retirement_lookups(spec, system.rowids);
    if check_retired {
        lookups.add(system.rowids.len());
    }
    let mask = visibility_mask(spec, &system, check_retired);
    let kept = mask.true_count();
    let mut columns = Vec::with_capacity(spec.output.len());
    for out in &spec.output {
        let column = match out {
            OutputColumn::User(i) => filter(batch.column(*i), &mask)?,
            OutputColumn::RowId => filter(batch.column(system.rowid), &mask)?,
            OutputColumn::Seq => filter(batch.column(system.seq), &mask)?,
            OutputColumn::SystemFrom => system_from(spec, system.seqs, &mask),
            OutputColumn::SystemTo => system_to(spec, &system, &mask),
            OutputColumn::RetiredSeq => retired_seqs(spec, &system, &mask),
        };
        columns.push(column);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(kept));
    Ok(RecordBatch::try_new_with_options(
        spec.output_schema.clone(),
        columns,
        &options,
    )?)
}

/// A batch every row of which is visible, shaped into the output columns.
fn passed_through(spec: &VisibilitySpec, batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = spec
        .output
        .iter()
        .map(|out| match out {
            OutputColumn::User(i) => Ok(batch.column(*i).clone()),
            other => Err(DataFusionError::Internal(format!(
                "{other:?} asked of a scan without system columns"
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        spec.output_schema.clone(),
        columns,
        &options,
    )?)
}

fn as_u64(array: &ArrayRef) -> Result<&UInt64Array> {
    array
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| DataFusionError::Internal("system column is not UInt64".into()))
}

/// Whether any row of a batch may have been retired early enough to be
/// hidden: false when nothing is retired, or when all its rowids lie in one
/// range of [`VisibilitySpec::unretired`] (a batch never spans data files).
fn needs_retirement_lookups(spec: &VisibilitySpec, rowids: &UInt64Array) -> bool {
    if spec.retired.is_empty() {
        return false;
    }
    if spec.unretired.is_empty() {
        return true;
    }
    let (Some(lowest), Some(highest)) = (min(rowids), max(rowids)) else {
        return false;
    };
    let i = spec.unretired.partition_point(|r| *r.end() < lowest);
    !spec
        .unretired
        .get(i)
        .is_some_and(|r| *r.start() <= lowest && highest <= *r.end())
}

/// Which rows are visible: written at or before the highest seq, not
/// retired at or before the lowest (by their own `_retired_seq`, else
/// looked up in the map, only when `check_retired`), and not retired by
/// the reading transaction itself.
fn visibility_mask(
    spec: &VisibilitySpec,
    system: &SystemColumns<'_>,
    check_retired: bool,
) -> BooleanArray {
    let rows = system.rowids.len();
    let mut mask = BooleanBufferBuilder::new(rows);
    let lowest_retire = spec.visibility.lowest_retire();
    let highest_seq = spec.visibility.highest_seq();
    let own_retired = spec.own_retired.as_deref().filter(|o| !o.is_empty());
    let rowids = system.rowids.values();
    let seqs = system.seqs.values();
    for i in 0..rows {
        let retired = match system.retired {
            Some(_) => system.retired_at(spec, i),
            None if check_retired => spec.retired.get(&rowids[i]).copied(),
            None => None,
        };
        let visible = seqs[i] <= highest_seq
            && retired.is_none_or(|r| r > lowest_retire)
            && own_retired.is_none_or(|o| !o.contains(&rowids[i]));
        mask.append(visible);
    }
    BooleanArray::new(mask.finish(), None)
}

fn commit_time(spec: &VisibilitySpec, seq: u64) -> Option<i64> {
    spec.commit_times
        .get((seq as usize).checked_sub(1)?)
        .copied()
}

fn system_from(spec: &VisibilitySpec, seqs: &UInt64Array, mask: &BooleanArray) -> ArrayRef {
    let values = seqs
        .values()
        .iter()
        .zip(mask.values().iter())
        .filter(|(_, keep)| *keep)
        .map(|(seq, _)| commit_time(spec, *seq));
    Arc::new(TimestampMicrosecondArray::from_iter(values).with_timezone("UTC"))
}

/// When each kept version was retired: a fact of the version, the same
/// whatever window it is read through (a version live at the end of
/// `FOR SYSTEM_TIME FROM 3 TO 4` and retired by commit 6 shows commit 6's
/// time, as `ALL` does). Only commits the scan knows the time of count
/// (those committed when its snapshot was taken).
fn system_to(spec: &VisibilitySpec, system: &SystemColumns<'_>, mask: &BooleanArray) -> ArrayRef {
    let values = mask
        .values()
        .set_indices()
        .map(|i| commit_time(spec, system.retired_at(spec, i)?));
    Arc::new(TimestampMicrosecondArray::from_iter(values).with_timezone("UTC"))
}

fn retired_seqs(
    spec: &VisibilitySpec,
    system: &SystemColumns<'_>,
    mask: &BooleanArray,
) -> ArrayRef {
    let values = mask
        .values()
        .set_indices()
        .map(|i| system.retired_at(spec, i));
    Arc::new(UInt64Array::from_iter(values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};

    fn spec(visibility: Visibility, retired: &[(u64, u64)]) -> VisibilitySpec {
        VisibilitySpec {
            visibility,
            retired: Arc::new(retired.iter().copied().collect()),
            unretired: Vec::new(),
            own_retired: None,
            commit_times: Arc::new(vec![10, 20, 30, 40]),
            output: vec![OutputColumn::RowId],
            fetch: None,
            statistics: None,
            retired_column: false,
            all_visible: false,
            pins: Vec::new(),
            output_schema: Arc::new(Schema::new(vec![Field::new(
                "_rowid",
                DataType::UInt64,
                false,
            )])),
        }
    }

    fn mask(
        spec: &VisibilitySpec,
        rowids: &UInt64Array,
        seqs: &UInt64Array,
        retired: Option<&UInt64Array>,
    ) -> BooleanArray {
        let system = SystemColumns {
            rowid: 0,
            seq: 1,
            rowids,
            seqs,
            retired,
        };
        visibility_mask(spec, &system, true)
    }

    #[test]
    fn as_of_hides_later_writes_and_earlier_retirements() {
        let rowids = UInt64Array::from(vec![1, 2, 3]);
        let seqs = UInt64Array::from(vec![1, 2, 3]);
        let spec = spec(Visibility::AsOf(2), &[(1, 2)]);
        let mask = mask(&spec, &rowids, &seqs, None);
        assert_eq!(mask, BooleanArray::from(vec![false, true, false]));
    }

    #[test]
    fn history_tier_rows_carry_their_retirement() {
        let rowids = UInt64Array::from(vec![1, 2, 3]);
        let seqs = UInt64Array::from(vec![1, 1, 2]);
        let retired = UInt64Array::from(vec![2, 4, 3]);
        // The map's entries do not apply to rows that carry their own.
        let spec = spec(Visibility::AsOf(2), &[(2, 2)]);
        let mask = mask(&spec, &rowids, &seqs, Some(&retired));
        assert_eq!(mask, BooleanArray::from(vec![false, true, true]));
        let from_three = super::tests::spec(
            Visibility::History(HistoryRange {
                from_seq: 3,
                to_seq: 4,
            }),
            &[],
        );
        let mask = super::tests::mask(&from_three, &rowids, &seqs, Some(&retired));
        assert_eq!(mask, BooleanArray::from(vec![false, true, false]));
    }

    #[test]
    fn history_keeps_versions_overlapping_the_range() {
        let rowids = UInt64Array::from(vec![1, 2, 3]);
        let seqs = UInt64Array::from(vec![1, 2, 4]);
        let spec = spec(
            Visibility::History(HistoryRange {
                from_seq: 2,
                to_seq: 3,
            }),
            &[(1, 2)],
        );
        let mask = mask(&spec, &rowids, &seqs, None);
        assert_eq!(mask, BooleanArray::from(vec![false, true, false]));
    }

    #[test]
    fn batches_inside_an_unretired_file_skip_the_retirement_map() {
        let mut spec = spec(Visibility::AsOf(4), &[(25, 3)]);
        spec.unretired = vec![0..=9, 30..=39];
        let lookups = |ids: Vec<u64>| needs_retirement_lookups(&spec, &UInt64Array::from(ids));
        assert!(!lookups(vec![2, 3, 9]), "inside the first file");
        assert!(!lookups(vec![31, 30]), "inside the second file, unsorted");
        assert!(lookups(vec![20, 25]), "a file with a retirement");
        assert!(lookups(vec![8, 12]), "not within one file");
        assert!(lookups(vec![45]), "past every file (the memtable)");
        let nothing_retired = super::tests::spec(Visibility::AsOf(4), &[]);
        assert!(!needs_retirement_lookups(
            &nothing_retired,
            &UInt64Array::from(vec![25])
        ));
    }
}
