//! `TemporalTable`: the DataFusion table provider for one table at one
//! snapshot (or over a history range).
//!
//! A scan reads the memtable batches and the Parquet files live at the
//! snapshot, prunes files by their `_seq` range and row groups by
//! statistics (`_seq <= S` plus the pushed-down filters), and puts a
//! [`VisibilityExec`] on top that applies retirements.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{RecordBatch, new_null_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, ColumnStatistics, DFSchema, ScalarValue, Statistics};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, col, lit};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;

use super::scan::{OutputColumn, Visibility, VisibilityExec, VisibilitySpec};
use crate::catalog::{
    ColumnDef, RETIRED_COLUMN, ROWID_COLUMN, SEQ_COLUMN, logical_schema, physical_schema,
};
use crate::db::TableSnapshot;
use crate::storage::DataFile;
use crate::storage::stats::StatsMerger;

/// Column with the commit time of the commit that wrote a version.
pub const SYSTEM_FROM_COLUMN: &str = "_system_from";
/// Column with the commit time of the commit that retired a version (NULL while live).
pub const SYSTEM_TO_COLUMN: &str = "_system_to";

/// URL under which each session registers the database's object store.
pub fn data_store_url() -> ObjectStoreUrl {
    ObjectStoreUrl::parse("driftdb://data/").expect("static URL parses")
}

/// A table as of a snapshot, or its history.
#[derive(Debug)]
pub struct TemporalTable {
    snapshot: TableSnapshot,
    schema: SchemaRef,
    /// What each output field is.
    fields: Vec<OutputColumn>,
    /// Read at the statement's own snapshot (no AS OF clause, not a write's
    /// target): a cached plan may re-bind it to a later statement's snapshot.
    follows_statement: bool,
}

impl TemporalTable {
    /// `system_columns` adds `_rowid` and `_seq` (history scans always have them).
    pub fn new(snapshot: TableSnapshot, system_columns: bool) -> Self {
        let mut fields: Vec<Field> = logical_schema(&snapshot.columns)
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut kinds: Vec<OutputColumn> = (0..fields.len()).map(OutputColumn::User).collect();
        if system_columns || snapshot.history.is_some() {
            fields.push(Field::new(ROWID_COLUMN, DataType::UInt64, false));
            fields.push(Field::new(SEQ_COLUMN, DataType::UInt64, false));
            kinds.extend([OutputColumn::RowId, OutputColumn::Seq]);
        }
        if snapshot.history.is_some() {
            let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
            fields.push(Field::new(SYSTEM_FROM_COLUMN, ts.clone(), true));
            fields.push(Field::new(SYSTEM_TO_COLUMN, ts, true));
            kinds.extend([OutputColumn::SystemFrom, OutputColumn::SystemTo]);
        }
        Self {
            snapshot,
            schema: Arc::new(Schema::new(fields)),
            fields: kinds,
            follows_statement: false,
        }
    }

    /// Add `_retired_seq`: the seq that retired each version (NULL while
    /// live), for the change feed.
    pub fn with_retired_seq(mut self) -> Self {
        let mut fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(RETIRED_COLUMN, DataType::UInt64, true));
        self.schema = Arc::new(Schema::new(fields));
        self.fields.push(OutputColumn::RetiredSeq);
        self
    }

    /// Mark the table as read at the statement's own snapshot.
    pub fn following_statement(mut self) -> Self {
        self.follows_statement = true;
        self
    }

    /// Whether the table is read at the statement's own snapshot.
    pub fn follows_statement(&self) -> bool {
        self.follows_statement
    }

    pub fn snapshot(&self) -> &TableSnapshot {
        &self.snapshot
    }

    /// Whether every version the scan reads is visible (see
    /// `TableSnapshot::all_visible`) and no earlier read was refused.
    fn all_visible(&self) -> bool {
        self.snapshot.all_visible() && self.snapshot.check_horizon().is_ok()
    }

    fn visibility(&self) -> Visibility {
        match self.snapshot.history {
            Some(range) => Visibility::History(range),
            None => Visibility::AsOf(self.snapshot.seq),
        }
    }

    /// Physical schema of what the inner scans yield: needed user columns, `_rowid`, `_seq`.
    fn scan_columns(&self, projection: &[usize]) -> (Vec<ColumnDef>, Vec<OutputColumn>) {
        let needed: BTreeSet<usize> = projection
            .iter()
            .filter_map(|i| match self.fields[*i] {
                OutputColumn::User(u) => Some(u),
                _ => None,
            })
            .collect();
        let needed: Vec<usize> = needed.into_iter().collect();
        let columns = needed
            .iter()
            .map(|u| self.snapshot.columns[*u].clone())
            .collect();
        let output = projection
            .iter()
            .map(|i| match self.fields[*i] {
                OutputColumn::User(u) => {
                    OutputColumn::User(needed.iter().position(|n| *n == u).unwrap_or(0))
                }
                other => other,
            })
            .collect();
        (columns, output)
    }

    fn memtable_exec(
        &self,
        scan_schema: &SchemaRef,
        partitions: usize,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let limit = self.snapshot.memtable.len();
        if limit == 0 {
            return Ok(None);
        }
        let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions.clamp(1, limit)];
        for (i, mem) in self.snapshot.memtable.iter().enumerate() {
            let n = parts.len();
            parts[i % n].push(adapt_batch(&mem.batch, scan_schema)?);
        }
        let exec = MemorySourceConfig::try_new_exec(&parts, scan_schema.clone(), None)?;
        Ok(Some(exec))
    }

    /// A scan of `files`, one tier: the history tier's rows also prune
    /// (by row group) on their `_retired_seq`.
    fn parquet_exec(
        &self,
        state: &dyn Session,
        files: &[Arc<DataFile>],
        history_tier: bool,
        scan_schema: &SchemaRef,
        filters: &[Expr],
        partitions: usize,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if files.is_empty() {
            return Ok(None);
        }
        let mut groups: Vec<Vec<PartitionedFile>> =
            vec![Vec::new(); partitions.clamp(1, files.len())];
        for (i, file) in files.iter().enumerate() {
            let n = groups.len();
            groups[i % n].push(PartitionedFile::new(file.path.clone(), file.bytes));
        }
        let mut source = ParquetSource::new(scan_schema.clone());
        if let Some(predicate) = self.pruning_predicate(state, scan_schema, filters, history_tier) {
            source = source.with_predicate(predicate);
        }
        let config = FileScanConfigBuilder::new(data_store_url(), Arc::new(source))
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .build();
        Ok(Some(DataSourceExec::from_data_source(config)))
    }

    /// `_seq <= S` (and, in the history tier, `_retired_seq > S`) and
    /// every pushed filter that maps onto the scanned columns.
    fn pruning_predicate(
        &self,
        state: &dyn Session,
        scan_schema: &SchemaRef,
        filters: &[Expr],
        history_tier: bool,
    ) -> Option<Arc<dyn PhysicalExpr>> {
        let df_schema = DFSchema::try_from(scan_schema.as_ref().clone()).ok()?;
        let mut conjuncts: Vec<Expr> = Vec::new();
        let visibility = self.visibility();
        if let Visibility::AsOf(seq) = visibility {
            conjuncts.push(col(SEQ_COLUMN).lt_eq(lit(seq)));
        }
        if history_tier {
            if let Visibility::History(range) = visibility {
                conjuncts.push(col(SEQ_COLUMN).lt_eq(lit(range.to_seq)));
            }
            conjuncts.push(col(RETIRED_COLUMN).gt(lit(visibility.lowest_retire())));
        }
        for filter in filters {
            if let Some(physical) = self.to_physical_names(filter.clone())
                && physical
                    .column_refs()
                    .iter()
                    .all(|c| df_schema.has_column_with_unqualified_name(&c.name))
            {
                conjuncts.push(physical);
            }
        }
        let predicate = conjuncts.into_iter().reduce(Expr::and)?;
        state.create_physical_expr(predicate, &df_schema).ok()
    }

    /// Inexact statistics of one column over every stored version (files and memtable).
    fn column_statistics(&self, column: &ColumnDef) -> ColumnStatistics {
        let name = column.physical_name();
        let data_type = column.sql_type.arrow_type();
        let mut merged = StatsMerger::default();
        for file in &self.snapshot.files {
            if file.column_stats.is_empty() {
                return ColumnStatistics::new_unknown();
            }
            merged.add(
                file.column_stats.iter().find(|s| s.column == name),
                file.rows,
                &data_type,
            );
        }
        for mem in &self.snapshot.memtable {
            let rows = mem.batch.num_rows() as u64;
            merged.add(
                mem.column_stats().iter().find(|s| s.column == name),
                rows,
                &data_type,
            );
        }
        let bound = |value: Option<ScalarValue>| match (value, merged.bounds_unknown) {
            (Some(v), false) => Precision::Inexact(v),
            _ => Precision::Absent,
        };
        ColumnStatistics {
            null_count: Precision::Inexact(merged.null_count as usize),
            min_value: bound(merged.min.clone()),
            max_value: bound(merged.max.clone()),
            ..ColumnStatistics::new_unknown()
        }
    }

    /// Rewrite a filter over user column names to stored (`c<id>`) names.
    fn to_physical_names(&self, expr: Expr) -> Option<Expr> {
        let mut ok = true;
        let rewritten = expr
            .transform(|e| match e {
                Expr::Column(c) => match self.snapshot.columns.iter().find(|d| d.name == c.name) {
                    Some(def) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                        def.physical_name(),
                    )))),
                    None => {
                        ok = false;
                        Ok(Transformed::no(Expr::Column(c)))
                    }
                },
                other => Ok(Transformed::no(other)),
            })
            .ok()?
            .data;
        ok.then_some(rewritten)
    }
}

/// What the inner scans yield: the stored `columns`, `_rowid`, `_seq`, and
/// `_retired_seq` when history-tier files are read (NULL in other rows).
fn scan_schema(columns: &[ColumnDef], retired_column: bool) -> SchemaRef {
    let schema = physical_schema(columns);
    if !retired_column {
        return schema;
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(RETIRED_COLUMN, DataType::UInt64, true));
    Arc::new(Schema::new(fields))
}

/// Reorder `batch` to `schema` by column name; columns it lacks become NULL.
pub fn adapt_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => c.clone(),
            None => new_null_array(f.data_type(), rows),
        })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[async_trait]
impl TableProvider for TemporalTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.snapshot.check_horizon()?;
        let all: Vec<usize> = (0..self.fields.len()).collect();
        let projection = projection.unwrap_or(&all);
        let (columns, output) = self.scan_columns(projection);
        let snapshot = &self.snapshot;
        let retired_column = !snapshot.history_files.is_empty();
        let all_visible =
            self.all_visible() && output.iter().all(|o| matches!(o, OutputColumn::User(_)));
        let scan_schema = match all_visible {
            true => crate::catalog::user_physical_schema(&columns),
            false => scan_schema(&columns, retired_column),
        };
        let partitions = state.config().target_partitions();
        let inputs: Vec<Arc<dyn ExecutionPlan>> = [
            self.memtable_exec(&scan_schema, partitions)?,
            self.parquet_exec(
                state,
                &snapshot.files,
                false,
                &scan_schema,
                filters,
                partitions,
            )?,
            self.parquet_exec(
                state,
                &snapshot.history_files,
                true,
                &scan_schema,
                filters,
                partitions,
            )?,
        ]
        .into_iter()
        .flatten()
        .collect();
        let input = match inputs.len() {
            0 => MemorySourceConfig::try_new_exec(&[vec![]], scan_schema.clone(), None)?,
            _ => UnionExec::try_new(inputs)?,
        };
        let output_schema = Arc::new(self.schema.project(projection)?);
        let visibility = self.visibility();
        let spec = VisibilitySpec {
            visibility,
            retired: self.snapshot.retired.clone(),
            unretired: self.snapshot.unretired_files(visibility.lowest_retire()),
            own_retired: self.snapshot.own_retired.clone(),
            commit_times: self.snapshot.commit_times.clone(),
            output,
            output_schema,
            fetch: limit,
            statistics: self.statistics().map(|s| s.project(Some(projection))),
            retired_column,
            all_visible,
            pins: snapshot
                .files
                .iter()
                .chain(&snapshot.history_files)
                .cloned()
                .collect(),
        };
        Ok(Arc::new(VisibilityExec::new(input, Arc::new(spec))))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters prune files and row groups; DataFusion still applies them exactly above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    fn statistics(&self) -> Option<Statistics> {
        if self.snapshot.history.is_some() {
            return None;
        }
        // Every stored version visible: the count is exact (and answers count(*)).
        let rows = match self.all_visible() {
            true => Precision::Exact(self.snapshot.files.iter().map(|f| f.rows as usize).sum()),
            false => Precision::Inexact(self.snapshot.live_rows as usize),
        };
        let mut stats = Statistics::new_unknown(&self.schema).with_num_rows(rows);
        for (field, kind) in stats.column_statistics.iter_mut().zip(&self.fields) {
            if let OutputColumn::User(u) = kind {
                *field = self.column_statistics(&self.snapshot.columns[*u]);
            }
        }
        Some(stats)
    }
}
