//! [`ApplyExec`]: a [`DependentJoin`] executed, a batch of outer rows at
//! a time, the subquery evaluated once per distinct binding and cached.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, concat, filter, filter_record_batch, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, ScalarValue, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, collect,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;

use super::{ApplyKind, DependentJoin, bound};
use crate::error::Error;
use crate::limits::APPLY_CACHE_BYTES_MAX;

/// Plans a [`DependentJoin`] as an [`ApplyExec`].
#[derive(Debug, Default)]
pub(crate) struct ApplyPlanner;

#[async_trait]
impl ExtensionPlanner for ApplyPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(join) = node.as_any().downcast_ref::<DependentJoin>() else {
            return Ok(None);
        };
        let Some(state) = session.as_any().downcast_ref::<SessionState>() else {
            return internal_err!("a dependent join needs a SessionState to plan its subquery");
        };
        let [outer] = physical_inputs else {
            return internal_err!("DependentJoin takes one input");
        };
        let filter = match &join.kind {
            ApplyKind::Lateral {
                filter: Some(filter),
                ..
            } => Some(planner.create_physical_expr(filter, &join.schema, session, planning_ctx)?),
            _ => None,
        };
        let outer_schema = join.outer.schema();
        let binding_columns = join
            .bindings
            .iter()
            .map(|c| outer_schema.index_of_column(c))
            .collect::<Result<Vec<_>>>()?;
        let spec = ApplySpec {
            volatile: volatile(&join.inner),
            inner: join.inner.clone(),
            bindings: join.bindings.clone(),
            binding_columns,
            kind: join.kind.clone(),
            filter,
            schema: Arc::new(join.schema.as_arrow().clone()),
            state: state.clone(),
        };
        Ok(Some(Arc::new(ApplyExec::new(
            outer.clone(),
            Arc::new(spec),
        ))))
    }
}

/// What every partition of an [`ApplyExec`] shares.
struct ApplySpec {
    inner: LogicalPlan,
    /// The subquery calls a volatile function (`random()`, `nextval`):
    /// evaluated for every outer row, never cached.
    volatile: bool,
    bindings: Vec<datafusion::common::Column>,
    /// Where each binding is in the outer rows.
    binding_columns: Vec<usize>,
    kind: ApplyKind,
    /// A lateral join's `ON` condition, over the output row.
    filter: Option<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    /// The session the statement was planned in, to plan each binding.
    state: SessionState,
}

impl fmt::Debug for ApplySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplySpec")
            .field("kind", &self.kind)
            .field("bindings", &self.bindings)
            .finish()
    }
}

/// See the module page.
#[derive(Debug)]
pub(crate) struct ApplyExec {
    outer: Arc<dyn ExecutionPlan>,
    spec: Arc<ApplySpec>,
    properties: Arc<PlanProperties>,
}

impl ApplyExec {
    fn new(outer: Arc<dyn ExecutionPlan>, spec: Arc<ApplySpec>) -> Self {
        let partitions = outer.properties().output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(spec.schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            outer,
            spec,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for ApplyExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bindings: Vec<String> = self.spec.bindings.iter().map(|c| c.flat_name()).collect();
        write!(f, "ApplyExec: bindings=[{}]", bindings.join(", "))
    }
}

impl ExecutionPlan for ApplyExec {
    fn name(&self) -> &str {
        "ApplyExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.outer]
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
            return internal_err!("ApplyExec takes one child");
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
        let outer = self.outer.execute(partition, context.clone())?;
        let reservation =
            MemoryConsumer::new(format!("ApplyExec[{partition}]")).register(context.memory_pool());
        let applier = Applier {
            spec: self.spec.clone(),
            context: context.clone(),
            cache: HashMap::new(),
            cached_bytes: 0,
            reservation,
        };
        let rows_max = context.session_config().batch_size().max(1);
        let state = (outer, applier, None::<Pending>);
        let stream = futures::stream::unfold(
            state,
            move |(mut outer, mut applier, mut pending)| async move {
                loop {
                    if let Some(mut p) = pending.take() {
                        match applier.next_piece(&mut p, rows_max) {
                            Ok(Some(piece)) => return Some((Ok(piece), (outer, applier, Some(p)))),
                            Ok(None) => {}
                            Err(e) => return Some((Err(e), (outer, applier, None))),
                        }
                    }
                    let started = match outer.next().await? {
                        Ok(batch) => applier.start(batch).await,
                        Err(e) => Err(e),
                    };
                    match started {
                        Ok(Started::Done(out)) => return Some((Ok(out), (outer, applier, None))),
                        Ok(Started::Pending(p)) => pending = Some(p),
                        Err(e) => return Some((Err(e), (outer, applier, None))),
                    }
                }
            },
        );
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.spec.schema.clone(),
            stream,
        )))
    }
}

/// One partition's state: the subquery's rows per binding seen so far.
struct Applier {
    spec: Arc<ApplySpec>,
    context: Arc<TaskContext>,
    cache: HashMap<Vec<ScalarValue>, Arc<Rows>>,
    cached_bytes: usize,
    reservation: MemoryReservation,
}

/// The subquery's rows for one binding, a column each (kept apart from
/// the columns, so a subquery with no columns still has rows).
struct Rows {
    columns: Vec<ArrayRef>,
    rows: usize,
}

/// What starting on an outer batch gives.
enum Started {
    Done(RecordBatch),
    Pending(Pending),
}

/// An outer batch a lateral join is part way through: the next pair is
/// inner row `within` of outer row `row`.
struct Pending {
    batch: RecordBatch,
    slots: Slots,
    pool: Pool,
    row: usize,
    within: u32,
    /// Outer rows that kept a pair so far.
    matched: Vec<bool>,
    /// The NULL-extended rows (`LEFT`) have been given.
    extended: bool,
}

impl Pending {
    /// Up to `rows_max` more (outer row, inner row) pairs.
    fn next_pairs(&mut self, rows_max: usize) -> (Vec<u32>, Vec<Option<u32>>) {
        let mut outer_rows = Vec::new();
        let mut inner_rows = Vec::new();
        while self.row < self.slots.of_row.len() && outer_rows.len() < rows_max {
            let slot = self.slots.of_row[self.row];
            let len = self.pool.len[slot];
            let take = (len - self.within).min((rows_max - outer_rows.len()) as u32);
            for i in self.within..self.within + take {
                outer_rows.push(self.row as u32);
                inner_rows.push(Some(self.pool.start[slot] + i));
            }
            self.within += take;
            if self.within == len {
                self.row += 1;
                self.within = 0;
            }
        }
        (outer_rows, inner_rows)
    }
}

/// A batch's rows grouped by binding: each row's slot, and each slot's rows.
struct Slots {
    of_row: Vec<usize>,
    results: Vec<Arc<Rows>>,
}

impl Applier {
    /// Start on an outer batch: a scalar join's whole output, or a lateral
    /// join's output still to be cut into pieces.
    async fn start(&mut self, batch: RecordBatch) -> Result<Started> {
        let slots = self.slots(&batch).await?;
        let pool = Pool::new(&slots.results, self.inner_types())?;
        if let ApplyKind::Scalar = self.spec.kind {
            return Ok(Started::Done(self.scalar(&batch, &slots, &pool)?));
        }
        let matched = vec![false; batch.num_rows()];
        Ok(Started::Pending(Pending {
            batch,
            slots,
            pool,
            row: 0,
            within: 0,
            matched,
            extended: false,
        }))
    }

    /// The inner columns' types in the output (its last columns: one for
    /// a scalar subquery, the subquery's own for a lateral join).
    fn inner_types(&self) -> Vec<DataType> {
        let fields = self.spec.schema.fields();
        let width = match self.spec.kind {
            ApplyKind::Scalar => 1,
            ApplyKind::Lateral { .. } => self.spec.inner.schema().fields().len(),
        };
        fields[fields.len() - width..]
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    }

    /// Each row's binding, evaluating the subquery for bindings not seen yet.
    async fn slots(&mut self, batch: &RecordBatch) -> Result<Slots> {
        let mut index: HashMap<Vec<ScalarValue>, usize> = HashMap::new();
        let mut slots = Slots {
            of_row: Vec::with_capacity(batch.num_rows()),
            results: Vec::new(),
        };
        for row in 0..batch.num_rows() {
            let key = self
                .spec
                .binding_columns
                .iter()
                .map(|&c| ScalarValue::try_from_array(batch.column(c), row))
                .collect::<Result<Vec<_>>>()?;
            if let Some(&slot) = index.get(&key) {
                slots.of_row.push(slot);
                continue;
            }
            let rows = match self.spec.volatile {
                true => Arc::new(self.evaluate(&key).await?),
                false => self.rows_for(&key).await?,
            };
            if !self.spec.volatile {
                index.insert(key, slots.results.len());
            }
            slots.of_row.push(slots.results.len());
            slots.results.push(rows);
        }
        Ok(slots)
    }

    /// The subquery's rows for one binding, from the cache or evaluated.
    async fn rows_for(&mut self, key: &[ScalarValue]) -> Result<Arc<Rows>> {
        if let Some(rows) = self.cache.get(key) {
            return Ok(rows.clone());
        }
        let rows = Arc::new(self.evaluate(key).await?);
        let bytes: usize = rows
            .columns
            .iter()
            .map(|c| c.get_array_memory_size())
            .sum::<usize>()
            + key.iter().map(ScalarValue::size).sum::<usize>();
        if self.cached_bytes + bytes > APPLY_CACHE_BYTES_MAX {
            self.cache.clear();
            self.reservation.free();
            self.cached_bytes = 0;
        }
        self.reservation.try_grow(bytes)?;
        self.cached_bytes += bytes;
        self.cache.insert(key.to_vec(), rows.clone());
        Ok(rows)
    }

    /// The subquery planned and run with `key` in place of its references.
    async fn evaluate(&self, key: &[ScalarValue]) -> Result<Rows> {
        let plan = bound(&self.spec.inner, &self.spec.bindings, key)?;
        let state = &self.spec.state;
        let plan = state.optimizer().optimize(plan, state, |_, _| {})?;
        let physical = state
            .query_planner()
            .create_physical_plan(&plan, state)
            .await?;
        let schema = physical.schema();
        let batches = collect(physical, self.context.clone()).await?;
        Ok(Rows {
            columns: columns_of(&schema, &batches)?,
            rows: batches.iter().map(RecordBatch::num_rows).sum(),
        })
    }

    fn scalar(&self, batch: &RecordBatch, slots: &Slots, pool: &Pool) -> Result<RecordBatch> {
        let mut picks = Vec::with_capacity(batch.num_rows());
        for &slot in &slots.of_row {
            picks.push(match pool.len[slot] {
                0 => None,
                1 => Some(pool.start[slot]),
                _ => {
                    return Err(DataFusionError::External(Box::new(
                        Error::CardinalityViolation {
                            message: "more than one row returned by a subquery used as an \
                                      expression"
                                .into(),
                        },
                    )));
                }
            });
        }
        let mut columns = batch.columns().to_vec();
        columns.push(take(&pool.columns[0], &UInt32Array::from(picks), None)?);
        Ok(RecordBatch::try_new(self.spec.schema.clone(), columns)?)
    }

    /// The next piece of a lateral join's output for `p`, at most
    /// `rows_max` pairs before the `ON` condition; `None` when done. Kept
    /// pairs come in outer order; with `LEFT`, the outer rows that kept
    /// none follow, once each with NULLs.
    fn next_piece(&self, p: &mut Pending, rows_max: usize) -> Result<Option<RecordBatch>> {
        let left = matches!(self.spec.kind, ApplyKind::Lateral { left: true, .. });
        while p.row < p.slots.of_row.len() {
            let (outer_rows, inner_rows) = p.next_pairs(rows_max);
            let joined = self.joined(&p.batch, &p.pool, &outer_rows, inner_rows)?;
            let (joined, kept_rows) = match &self.spec.filter {
                Some(condition) => {
                    let keep = condition.evaluate(&joined)?.into_array(joined.num_rows())?;
                    let Some(keep) = keep.as_any().downcast_ref::<BooleanArray>() else {
                        return internal_err!("a lateral join condition that is not boolean");
                    };
                    let rows = filter(&UInt32Array::from(outer_rows), keep)?;
                    let rows = rows
                        .as_any()
                        .downcast_ref::<UInt32Array>()
                        .map(|a| a.values().to_vec())
                        .unwrap_or_default();
                    (filter_record_batch(&joined, keep)?, rows)
                }
                None => (joined, outer_rows),
            };
            for row in kept_rows {
                p.matched[row as usize] = true;
            }
            if joined.num_rows() > 0 {
                return Ok(Some(joined));
            }
        }
        if !left || p.extended {
            return Ok(None);
        }
        p.extended = true;
        let unmatched: Vec<u32> = (0..p.matched.len() as u32)
            .filter(|&r| !p.matched[r as usize])
            .collect();
        if unmatched.is_empty() {
            return Ok(None);
        }
        let nulls = vec![None; unmatched.len()];
        Ok(Some(self.joined(&p.batch, &p.pool, &unmatched, nulls)?))
    }

    /// Outer rows beside inner rows (`None`: NULLs), pairwise.
    fn joined(
        &self,
        batch: &RecordBatch,
        pool: &Pool,
        outer_rows: &[u32],
        inner_rows: Vec<Option<u32>>,
    ) -> Result<RecordBatch> {
        let outer_rows = UInt32Array::from(outer_rows.to_vec());
        let inner_rows = UInt32Array::from(inner_rows);
        let mut columns = Vec::with_capacity(self.spec.schema.fields().len());
        for column in batch.columns() {
            columns.push(take(column.as_ref(), &outer_rows, None)?);
        }
        for column in &pool.columns {
            columns.push(take(column.as_ref(), &inner_rows, None)?);
        }
        Ok(RecordBatch::try_new(self.spec.schema.clone(), columns)?)
    }
}

/// The rows of every slot of a batch, one after another.
struct Pool {
    columns: Vec<ArrayRef>,
    start: Vec<u32>,
    len: Vec<u32>,
}

impl Pool {
    fn new(results: &[Arc<Rows>], types: Vec<DataType>) -> Result<Self> {
        let mut start = Vec::with_capacity(results.len());
        let mut len = Vec::with_capacity(results.len());
        let mut total = 0u32;
        for rows in results {
            let n = rows.rows as u32;
            start.push(total);
            len.push(n);
            total += n;
        }
        let mut columns = Vec::with_capacity(types.len());
        for (i, data_type) in types.iter().enumerate() {
            let parts = results
                .iter()
                .map(|rows| match rows.columns.get(i) {
                    Some(c) if c.data_type() == data_type => Ok(c.clone()),
                    Some(c) => cast(c.as_ref(), data_type),
                    None => Ok(datafusion::arrow::array::new_empty_array(data_type)),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let refs: Vec<&dyn Array> = parts.iter().map(|c| c.as_ref()).collect();
            columns.push(match refs.is_empty() {
                true => datafusion::arrow::array::new_empty_array(data_type),
                false => concat(&refs)?,
            });
        }
        Ok(Self {
            columns,
            start,
            len,
        })
    }
}

/// Whether `plan` calls a volatile function anywhere.
fn volatile(plan: &LogicalPlan) -> bool {
    let found = plan.apply_with_subqueries(|node| {
        let volatile = node.expressions().iter().any(Expr::is_volatile);
        Ok(match volatile {
            true => TreeNodeRecursion::Stop,
            false => TreeNodeRecursion::Continue,
        })
    });
    matches!(found, Ok(TreeNodeRecursion::Stop))
}

/// `batches` as one array per column.
fn columns_of(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<ArrayRef>> {
    (0..schema.fields().len())
        .map(|i| {
            let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            match parts.is_empty() {
                true => Ok(datafusion::arrow::array::new_empty_array(
                    schema.field(i).data_type(),
                )),
                false => Ok(concat(&parts)?),
            }
        })
        .collect()
}
