//! Following a change feed live.
//!
//! In a session that follows feeds (the Flight SQL server's), a query over
//! `table_changes('t', from)` with no end does not stop at the latest
//! commit. It streams the changes up to it, then waits, and streams each
//! new commit's changes as they become visible, until the reader cancels
//! or goes away. Each step's rows come in `_seq` order, and steps follow
//! one another, so a live feed delivers changes in commit order.
//!
//! Only queries that can stream follow: projections, filters and `LIMIT`
//! over the one feed. Any other query (an aggregate, a sort, a join) reads
//! the feed up to the latest commit and ends, as it does embedded, so a
//! query that needs all its input still finishes ([`settle`]).
//!
//! Filters are applied inside each step (the provider takes them as
//! exact), so no operator above the feed holds back rows to fill a batch.
//! A step per wake-up covers every commit made visible since the last, so
//! a burst of commits costs one step. The feed ends with an error when the
//! table's columns change (its rows would change shape), when the table is
//! dropped or renamed (a table created again under its name is another
//! table: the feed never crosses over to it), or when `VACUUM` removes versions it has yet to read.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DataFusionError};
use datafusion::datasource::{TableProvider, TableType, provider_as_source};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown, col,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;

use super::changes::changes_plan;
use crate::catalog::SEQ_COLUMN;
use crate::db::Database;
use crate::error::Error;

/// An open-ended `table_changes` in a following session.
#[derive(Debug)]
pub struct LiveChanges {
    follow: Arc<Follow>,
    /// The same feed up to the latest commit, for queries that cannot stream.
    finite: Arc<dyn TableProvider>,
}

/// What a live feed reads: table `table` (the one with id `table_id`)
/// from commit `from`, the first step ending at `first_to`.
#[derive(Debug)]
struct Follow {
    db: Database,
    table: String,
    table_id: u64,
    from: u64,
    first_to: u64,
    schema: SchemaRef,
}

impl LiveChanges {
    pub fn new(
        db: Database,
        (table, table_id): (String, u64),
        (from, first_to): (u64, u64),
        finite: Arc<dyn TableProvider>,
    ) -> Self {
        let follow = Follow {
            db,
            table,
            table_id,
            from,
            first_to,
            schema: finite.schema(),
        };
        Self {
            follow: Arc::new(follow),
            finite,
        }
    }
}

#[async_trait::async_trait]
impl TableProvider for LiveChanges {
    fn schema(&self) -> SchemaRef {
        self.follow.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| DataFusionError::Internal("a live feed needs a SessionState".into()))?
            .clone();
        let columns: Vec<String> = match projection {
            Some(p) => p
                .iter()
                .map(|i| self.follow.schema.field(*i).name().clone())
                .collect(),
            None => self
                .follow
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        };
        let schema = Arc::new(
            self.follow.schema.project(
                &projection
                    .cloned()
                    .unwrap_or_else(|| (0..columns.len()).collect()),
            )?,
        );
        let filter = conjunction(filters.iter().map(unqualified));
        Ok(Arc::new(LiveChangesExec::new(
            self.follow.clone(),
            Arc::new(Step {
                state,
                filter,
                columns,
            }),
            schema,
        )))
    }
}

/// A filter of the feed's scan with its columns unqualified (a step's plan
/// names them without the query's alias).
fn unqualified(expr: &Expr) -> Expr {
    expr.clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| expr.clone())
}

/// How each step is planned: the query's filter and columns.
struct Step {
    state: SessionState,
    filter: Option<Expr>,
    columns: Vec<String>,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Step({:?}, {:?})", self.filter, self.columns)
    }
}

/// Whether `plan` follows live feeds, after settling the feeds of a query
/// that cannot stream onto their finite reading. Call on every plan a
/// following session runs.
pub fn settle(plan: LogicalPlan) -> Result<(LogicalPlan, bool)> {
    let mut feeds = 0;
    let mut streams = true;
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) if live_of(scan).is_some() => feeds += 1,
            LogicalPlan::TableScan(_) => streams = false,
            LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Limit(_) => {}
            _ => streams = false,
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if feeds == 0 {
        return Ok((plan, false));
    }
    if streams && feeds == 1 {
        return Ok((plan, true));
    }
    let settled = plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::TableScan(mut scan) => match live_of(&scan) {
            Some(live) => {
                scan.source = provider_as_source(live.finite.clone());
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            }
            None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
        },
        other => Ok(Transformed::no(other)),
    })?;
    Ok((settled.data, false))
}

fn live_of(scan: &datafusion::logical_expr::TableScan) -> Option<&LiveChanges> {
    let source = scan
        .source
        .as_ref()
        .downcast_ref::<datafusion::datasource::DefaultTableSource>()?;
    let provider: &dyn Any = source.table_provider.as_ref();
    provider.downcast_ref::<LiveChanges>()
}

/// The physical live feed: one partition, unbounded.
#[derive(Debug)]
pub struct LiveChangesExec {
    follow: Arc<Follow>,
    step: Arc<Step>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl LiveChangesExec {
    fn new(follow: Arc<Follow>, step: Arc<Step>, schema: SchemaRef) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Unbounded {
                requires_infinite_memory: false,
            },
        );
        Self {
            follow,
            step,
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for LiveChangesExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LiveChangesExec: table={} from={}",
            self.follow.table, self.follow.from
        )
    }
}

impl ExecutionPlan for LiveChangesExec {
    fn name(&self) -> &str {
        "LiveChangesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let (follow, step) = (self.follow.clone(), self.step.clone());
        let first = Some((follow.from, Some(follow.first_to)));
        let steps = futures::stream::unfold(first, move |range| {
            let (follow, step) = (follow.clone(), step.clone());
            async move {
                let (from, to) = range?;
                let to = match to {
                    Some(to) => to,
                    None => follow.db.wait_visible_after(from - 1).await,
                };
                match follow.run_step(&step, from, to).await {
                    Ok(stream) => Some((stream, Some((to + 1, None)))),
                    Err(e) => Some((error_stream(e, follow.schema.clone()), None)),
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            steps.flatten(),
        )))
    }
}

fn error_stream(error: DataFusionError, schema: SchemaRef) -> SendableRecordBatchStream {
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::once(async move { Err(error) }),
    ))
}

impl Follow {
    /// The changes of commits `from..=to`, filtered, in `_seq` order.
    async fn run_step(&self, step: &Step, from: u64, to: u64) -> Result<SendableRecordBatchStream> {
        let (plan, id) = changes_plan(&self.db, &self.table, from, to)?;
        if id != self.table_id {
            return Err(Error::ObjectNotInPrerequisiteState {
                message: format!(
                    "\"{}\" was dropped and created again by version {to}: \
                     follow the new table's changes with a new query",
                    self.table
                ),
            }
            .into());
        }
        let same_shape = plan.schema().fields().len() == self.schema.fields().len()
            && plan
                .schema()
                .fields()
                .iter()
                .zip(self.schema.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !same_shape {
            return Err(Error::ObjectNotInPrerequisiteState {
                message: format!(
                    "the columns of \"{}\" changed by version {to}: follow its changes again from there",
                    self.table
                ),
            }
            .into());
        }
        let mut builder = LogicalPlanBuilder::from(plan);
        if let Some(filter) = &step.filter {
            builder = builder.filter(filter.clone())?;
        }
        let plan = builder
            .sort(vec![col(SEQ_COLUMN).sort(true, false)])?
            .project(
                step.columns
                    .iter()
                    .map(|c| Expr::Column(Column::new_unqualified(c))),
            )?
            .build()?;
        let physical = step.state.create_physical_plan(&plan).await?;
        datafusion::physical_plan::execute_stream(physical, step.state.task_ctx())
    }
}
