//! The dependent join (apply): the general fallback for correlated
//! subqueries no rewrite turns into ordinary joins.
//!
//! DataFusion decorrelates the common shapes, and [`super::subqueries`] and
//! [`super::decorrelate`] add more; what is left after the optimizer (a
//! `LATERAL` subquery with `ORDER BY … LIMIT`, a scalar subquery that is not
//! an aggregate, a correlated subquery inside a correlated subquery) would
//! reach the physical planner still holding outer references, which it
//! cannot plan. Two analyzer rules ([`UndecorrelatableSubqueries`],
//! [`UndecorrelatedLateral`]) take, before the optimizer, what DataFusion
//! would refuse or answer wrong (judged by its own tests, and by the
//! shapes it gets wrong: a correlation under a window, limit or union,
//! two levels out, `HAVING` over an ungrouped aggregate); [`lift`] runs
//! between the optimizer and the physical planner ([`DriftQueryPlanner`])
//! for what is still correlated. Each turns such a construct into a
//! [`DependentJoin`] node:
//!
//! ```text
//! Join(outer, Subquery(q), LATERAL)  →  DependentJoin(outer; q; Lateral)
//! Projection[… (SELECT q) …](input)  →  Projection[… __driftdb_apply_n …](DependentJoin(input; q; Scalar))
//! ```
//!
//! (`EXISTS`, `IN` and quantified comparisons left over become counting
//! scalar subqueries first, as in [`super::subqueries`].) The subquery `q`
//! is kept as a logical plan, not an input: the physical operator
//! ([`exec::ApplyExec`]) evaluates it once per distinct binding of the
//! outer columns it refers to, by putting the binding's values in place of
//! the outer references and planning the result (whose own correlations,
//! now one level shallower, are decorrelated or applied in turn). Results
//! are cached per binding, and the outer input is read a batch at a time.

mod exec;

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::catalog::Session;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{
    Column, DFSchema, DFSchemaRef, DataFusionError, Result, ScalarValue, internal_err,
};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::logical_plan::check_subquery_expr;
use datafusion::logical_expr::utils::{conjunction, merge_schema};
use datafusion::logical_expr::{
    Distinct, Expr, Extension, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Subquery,
    UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::optimizer::decorrelate::PullUpCorrelatedExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

pub(crate) use exec::ApplyPlanner;

/// How a [`DependentJoin`] combines an outer row with its subquery's rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ApplyKind {
    /// `[LEFT] JOIN LATERAL (q) ON filter`: the outer row with each row of
    /// `q` the filter keeps; with `left`, once with NULLs when none is kept.
    Lateral { left: bool, filter: Option<Expr> },
    /// A scalar subquery: its one column's value, NULL for no row, and
    /// 21000 (as in PostgreSQL) for more than one.
    Scalar,
}

/// See the module page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DependentJoin {
    outer: LogicalPlan,
    /// The subquery, still holding references to `bindings`.
    inner: LogicalPlan,
    kind: ApplyKind,
    /// The outer columns `inner` refers to, as it names them.
    bindings: Vec<Column>,
    schema: DFSchemaRef,
}

impl PartialOrd for DependentJoin {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.outer.partial_cmp(&other.outer)? {
            Ordering::Equal => self.inner.partial_cmp(&other.inner),
            unequal => Some(unequal),
        }
    }
}

impl UserDefinedLogicalNodeCore for DependentJoin {
    fn name(&self) -> &str {
        "DependentJoin"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.outer]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    /// A condition on outer columns alone may be applied below: each
    /// outer row keeps or loses its joined rows as a whole.
    fn prevent_predicate_push_down_columns(&self) -> HashSet<String> {
        let outer = self.outer.schema().fields().len();
        self.schema.fields()[outer..]
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bindings: Vec<String> = self.bindings.iter().map(|c| c.flat_name()).collect();
        let kind = match &self.kind {
            ApplyKind::Lateral { left: false, .. } => "lateral",
            ApplyKind::Lateral { left: true, .. } => "left lateral",
            ApplyKind::Scalar => "scalar",
        };
        write!(
            f,
            "DependentJoin: {kind}, bindings=[{}]",
            bindings.join(", ")
        )
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        if inputs.len() != 1 {
            return internal_err!("DependentJoin takes one input");
        }
        Ok(Self {
            outer: inputs.swap_remove(0),
            ..self.clone()
        })
    }
}

/// DataFusion's physical planner, after [`lift`], with [`ApplyPlanner`].
#[derive(Debug, Default)]
pub(crate) struct DriftQueryPlanner;

#[async_trait]
impl QueryPlanner for DriftQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let lifted = lift(logical_plan.clone())?;
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(ApplyPlanner)])
            .create_physical_plan(&lifted, session_state)
            .await
    }
}

/// `plan` with every subquery still correlated (or otherwise unplanned)
/// turned into a [`DependentJoin`]. Subqueries inside those are left to
/// the planning of each binding.
pub(crate) fn lift(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| match node {
        LogicalPlan::Join(join) => lateral(join),
        node if holds_subquery(&node) && node.inputs().len() == 1 => {
            // DataFusion runs the uncorrelated ones itself.
            scalar_applies(node, &|e| subquery_of(e).is_some_and(correlated))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

fn holds_subquery(node: &LogicalPlan) -> bool {
    node.expressions().iter().any(|expr| {
        expr.exists(|e| {
            Ok(matches!(
                e,
                Expr::ScalarSubquery(_)
                    | Expr::Exists(_)
                    | Expr::InSubquery(_)
                    | Expr::SetComparison(_)
            ))
        })
        .unwrap_or(false)
    })
}

/// Correlated subqueries DataFusion's optimizer would refuse or answer
/// wrong, as dependent joins before it sees them:
///
/// - a subquery holding one that refers past it, to the query around
///   both (`(SELECT … FROM b WHERE b.v > (SELECT min(v) FROM c WHERE c.k =
///   a.k))` over `a`): decorrelation cannot pull such a reference up
///   through two levels. Each binding of the outer subquery leaves the
///   inner one correlated to its parent alone, which is decorrelated;
/// - a correlation under a window, a limit, a union or `DISTINCT ON`,
///   which decorrelation would pull above it, changing its answer;
/// - a scalar subquery DataFusion does not take (not an aggregate).
#[derive(Debug, Default)]
pub(crate) struct UndecorrelatableSubqueries;

impl AnalyzerRule for UndecorrelatableSubqueries {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            if !holds_subquery(&node) || node.inputs().len() != 1 {
                return Ok(Transformed::no(node));
            }
            let outer = node.clone();
            let chosen = |e: &Expr| subquery_of(e).is_some_and(|s| needs_apply(&outer, e, s));
            let any = node
                .expressions()
                .iter()
                .any(|e| e.exists(|e| Ok(chosen(e))).unwrap_or(false));
            match any {
                true => scalar_applies(node, &chosen),
                false => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "driftdb_undecorrelatable_subqueries"
    }
}

/// Whether `subquery` refers to a query around it.
fn correlated(subquery: &Subquery) -> bool {
    !subquery.outer_ref_columns.is_empty()
        || outer_columns(&subquery.subquery).is_ok_and(|c| !c.is_empty())
}

fn needs_apply(node: &LogicalPlan, expr: &Expr, subquery: &Subquery) -> bool {
    if !correlated(subquery) {
        return false;
    }
    // DataFusion decorrelates subqueries in projections and filters only.
    let elsewhere = !matches!(node, LogicalPlan::Projection(_) | LogicalPlan::Filter(_));
    let refused = matches!(subquery.subquery.schema().fields().len(), 1)
        && check_subquery_expr(node, &subquery.subquery, expr).is_err();
    elsewhere
        || refused
        || deeply_correlated(subquery)
        || correlated_under_barrier(&subquery.subquery)
}

/// Whether an outer reference sits under a node a correlated condition
/// cannot be pulled above without changing the answer.
fn correlated_under_barrier(plan: &LogicalPlan) -> bool {
    let barrier = |p: &LogicalPlan| {
        matches!(
            p,
            LogicalPlan::Window(_)
                | LogicalPlan::Limit(_)
                | LogicalPlan::Union(_)
                | LogicalPlan::Distinct(Distinct::On(_))
        )
    };
    plan.exists(|p| Ok(barrier(p) && holds_outer_reference(p)))
        .unwrap_or(false)
}

/// Whether `plan` filters the one row of an aggregate without `GROUP BY`
/// (`HAVING`): decorrelated, the row would come back as the count bug's
/// empty-group row (a lateral join would keep rows `HAVING` removes).
fn filters_ungrouped_aggregate(plan: &LogicalPlan) -> bool {
    plan.exists(|p| {
        Ok(matches!(p, LogicalPlan::Filter(filter)
            if matches!(filter.input.as_ref(), LogicalPlan::Aggregate(a) if a.group_expr.is_empty())))
    })
    .unwrap_or(false)
}

fn holds_outer_reference(plan: &LogicalPlan) -> bool {
    let found = plan.apply_with_subqueries(|p| {
        Ok(match p.contains_outer_reference() {
            true => TreeNodeRecursion::Stop,
            false => TreeNodeRecursion::Continue,
        })
    });
    matches!(found, Ok(TreeNodeRecursion::Stop))
}

fn subquery_of(expr: &Expr) -> Option<&Subquery> {
    match expr {
        Expr::ScalarSubquery(subquery) => Some(subquery),
        Expr::Exists(e) => Some(&e.subquery),
        Expr::InSubquery(e) => Some(&e.subquery),
        Expr::SetComparison(e) => Some(&e.subquery),
        _ => None,
    }
}

/// Whether a subquery nested in `subquery` refers past it.
fn deeply_correlated(subquery: &Subquery) -> bool {
    free_references(&subquery.subquery).is_ok_and(|refs| refs.iter().any(|r| r.depth > 0))
}

/// Lateral joins DataFusion's optimizer would not decorrelate (its test,
/// run ahead), as dependent joins before the optimizer sees them: left to
/// it, the projection pruning drops the outer columns such a subquery
/// refers to from a projection or a limit.
#[derive(Debug, Default)]
pub(crate) struct UndecorrelatedLateral;

impl AnalyzerRule for UndecorrelatedLateral {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Join(join) if !decorrelatable(&join)? => lateral(join),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "driftdb_undecorrelated_lateral"
    }
}

/// Whether DataFusion's lateral decorrelation takes this join (or it is
/// no lateral join at all).
fn decorrelatable(join: &Join) -> Result<bool> {
    let mut right = join.right.as_ref();
    while let LogicalPlan::SubqueryAlias(alias) = right {
        right = alias.input.as_ref();
    }
    let LogicalPlan::Subquery(subquery) = right else {
        return Ok(true);
    };
    let mut pull_up = PullUpCorrelatedExpr::new().with_need_handle_count_bug(true);
    subquery.subquery.as_ref().clone().rewrite(&mut pull_up)?;
    Ok(pull_up.can_pull_up
        && pull_up.pull_up_having_expr.is_none()
        && !correlated_under_barrier(&subquery.subquery)
        && !filters_ungrouped_aggregate(&subquery.subquery)
        && !deeply_correlated(subquery))
}

/// A join whose right side refers to its left (`LATERAL`) as a dependent join.
fn lateral(join: Join) -> Result<Transformed<LogicalPlan>> {
    let left = match join.join_type {
        JoinType::Inner => false,
        JoinType::Left => true,
        _ => return Ok(Transformed::no(LogicalPlan::Join(join))),
    };
    let bindings = outer_references(&join.right, join.left.schema())?;
    if bindings.is_empty() {
        return Ok(Transformed::no(LogicalPlan::Join(join)));
    }
    // `USING` / `NATURAL` pairs are conditions like any other.
    let pairs = join.on.into_iter().map(|(l, r)| l.eq(r));
    let filter = conjunction(pairs.chain(join.filter));
    let node = DependentJoin {
        outer: Arc::unwrap_or_clone(join.left),
        inner: Arc::unwrap_or_clone(join.right),
        kind: ApplyKind::Lateral { left, filter },
        bindings,
        schema: join.schema,
    };
    Ok(Transformed::yes(extension_plan(node)))
}

fn extension_plan(node: DependentJoin) -> LogicalPlan {
    LogicalPlan::Extension(Extension {
        node: Arc::new(node),
    })
}

/// `node` (one input) with each subquery of its expressions computed by
/// a scalar dependent join under it, and its output as before.
fn scalar_applies(
    node: LogicalPlan,
    chosen: &dyn Fn(&Expr) -> bool,
) -> Result<Transformed<LogicalPlan>> {
    let before = node.schema().clone();
    let scope = merge_schema(&node.inputs());
    let mut input = node.inputs()[0].clone();
    let names = NamePreserver::new(&node);
    let rewritten = node.map_expressions(|expr| {
        let name = names.save(&expr);
        let replaced = expr.transform_down(|e| {
            if !chosen(&e) {
                return Ok(Transformed::no(e));
            }
            // A predicate becomes counting scalar subqueries first.
            let e = match e {
                Expr::ScalarSubquery(_) => e,
                other => super::subqueries::counted(other, &scope, true)?.data,
            };
            let lifted = e.transform_up(|e| match e {
                Expr::ScalarSubquery(subquery) => {
                    let (joined, column) = scalar_apply(input.clone(), subquery)?;
                    input = joined;
                    Ok(Transformed::yes(column))
                }
                other => Ok(Transformed::no(other)),
            })?;
            Ok(Transformed::new(lifted.data, true, TreeNodeRecursion::Jump))
        })?;
        Ok(replaced.update_data(|e| name.restore(e)))
    })?;
    if !rewritten.transformed {
        return Ok(rewritten);
    }
    let node = rewritten.data;
    let rebuilt = node.with_new_exprs(node.expressions(), vec![input])?;
    Ok(Transformed::yes(keep_columns(rebuilt, &before)?))
}

/// `input` joined with `subquery`'s value, and the column holding it.
fn scalar_apply(input: LogicalPlan, subquery: Subquery) -> Result<(LogicalPlan, Expr)> {
    let inner = Arc::unwrap_or_clone(subquery.subquery);
    if inner.schema().fields().len() != 1 {
        return Err(DataFusionError::External(Box::new(
            crate::error::Error::Syntax {
                message: "subquery must return only one column".into(),
            },
        )));
    }
    let (input, inner) = widened(input, inner)?;
    let bindings = outer_references(&inner, input.schema())?;
    // Unique across every rule and nesting level that names one.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "__driftdb_apply_{}",
        NEXT.fetch_add(1, AtomicOrdering::Relaxed)
    );
    let data_type = match inner.schema().fields().first() {
        Some(field) => field.data_type().clone(),
        None => DataType::Null,
    };
    let value = DFSchema::from_unqualified_fields(
        vec![Field::new(&name, data_type, true)].into(),
        Default::default(),
    )?;
    let schema = Arc::new(input.schema().join(&value)?);
    let node = DependentJoin {
        outer: input,
        inner,
        kind: ApplyKind::Scalar,
        bindings,
        schema,
    };
    Ok((extension_plan(node), Expr::Column(Column::from_name(name))))
}

/// `input`, when it is a projection that drops columns `inner` refers to
/// (`ORDER BY (SELECT … WHERE u.a = t.a)` with `t.a` not selected), with
/// those columns added under names of their own (an alias in the select
/// list may take theirs), and `inner` referring to them so; the caller
/// projects them away again.
fn widened(input: LogicalPlan, inner: LogicalPlan) -> Result<(LogicalPlan, LogicalPlan)> {
    let LogicalPlan::Projection(projection) = &input else {
        return Ok((input, inner));
    };
    let below = projection.input.schema();
    let missing = distinct_columns(&inner, |c| {
        !input.schema().has_column(c) && below.has_column(c)
    })?;
    if missing.is_empty() {
        return Ok((input, inner));
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let renamed: Vec<(Column, Column)> = missing
        .into_iter()
        .map(|c| {
            let n = NEXT.fetch_add(1, AtomicOrdering::Relaxed);
            (c, Column::from_name(format!("__driftdb_outer_{n}")))
        })
        .collect();
    let mut exprs = projection.expr.clone();
    exprs.extend(
        renamed
            .iter()
            .map(|(c, r)| Expr::Column(c.clone()).alias(r.name.clone())),
    );
    let widened = LogicalPlanBuilder::from(projection.input.as_ref().clone())
        .project(exprs)?
        .build()?;
    let mut rename = |field: &FieldRef, column: &Column, _: usize| {
        Ok(renamed
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, r)| Expr::OuterReferenceColumn(field.clone(), r.clone())))
    };
    let inner = rebind(inner, &mut Vec::new(), &mut rename)?;
    Ok((widened, inner))
}

/// `plan` under a projection back to `schema`'s columns when it gained
/// some (a filter or sort passes its input's columns through).
fn keep_columns(plan: LogicalPlan, schema: &DFSchemaRef) -> Result<LogicalPlan> {
    if plan.schema().fields().len() == schema.fields().len() {
        return Ok(plan);
    }
    let columns: Vec<Expr> = schema.columns().into_iter().map(Expr::Column).collect();
    LogicalPlanBuilder::from(plan).project(columns)?.build()
}

/// The outer columns `plan` refers to that `outer` provides, in order of
/// first reference.
fn outer_references(plan: &LogicalPlan, outer: &DFSchemaRef) -> Result<Vec<Column>> {
    distinct_columns(plan, |c| outer.has_column(c))
}

/// A free outer reference of a plan: one no scope inside the plan binds.
struct FreeReference {
    field: FieldRef,
    column: Column,
    /// How many subquery scopes inside the plan enclose it.
    depth: usize,
}

/// Every free outer reference of `plan`, nested subqueries included, in
/// order (a column as often as it is referred to).
fn free_references(plan: &LogicalPlan) -> Result<Vec<FreeReference>> {
    let mut found = Vec::new();
    let mut visit = |field: &FieldRef, column: &Column, depth: usize| {
        found.push(FreeReference {
            field: field.clone(),
            column: column.clone(),
            depth,
        });
        Ok(None)
    };
    rebind(plan.clone(), &mut Vec::new(), &mut visit)?;
    Ok(found)
}

/// The columns `plan` refers to freely that `keep` takes, each once, in
/// order of first reference.
fn distinct_columns(plan: &LogicalPlan, keep: impl Fn(&Column) -> bool) -> Result<Vec<Column>> {
    let mut columns: Vec<Column> = Vec::new();
    for reference in free_references(plan)? {
        if keep(&reference.column) && !columns.contains(&reference.column) {
            columns.push(reference.column);
        }
    }
    Ok(columns)
}

/// `inner` with `bindings` replaced by `values`, ready to plan on its own.
pub(crate) fn bound(
    inner: &LogicalPlan,
    bindings: &[Column],
    values: &[ScalarValue],
) -> Result<LogicalPlan> {
    let mut substitute = |field: &FieldRef, column: &Column, _: usize| {
        let Some(i) = bindings.iter().position(|b| b == column) else {
            return Ok(None);
        };
        let value = match values[i].data_type() == *field.data_type() {
            true => values[i].clone(),
            false => values[i].cast_to(field.data_type())?,
        };
        Ok(Some(Expr::Literal(value, None)))
    };
    let plan = rebind(inner.clone(), &mut Vec::new(), &mut substitute)?;
    plain_laterals(plan)
}

/// `plan` with each `LATERAL` subquery in it whose references are all
/// bound now as the plain plan it wraps (the physical planner takes no
/// `Subquery` node).
fn plain_laterals(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| match node {
        LogicalPlan::Subquery(subquery) if outer_columns(&subquery.subquery)?.is_empty() => {
            Ok(Transformed::yes(Arc::unwrap_or_clone(subquery.subquery)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// Called on each outer reference no enclosing scope inside the plan
/// binds; `Some` replaces it.
/// Also given how many subquery scopes inside the plan enclose it.
type Rebinder<'a> = dyn FnMut(&FieldRef, &Column, usize) -> Result<Option<Expr>> + 'a;

/// `plan` with its free outer references (those not bound by a scope
/// inside it, listed in `shadow`) passed through `f`, nested subqueries
/// included.
fn rebind(
    plan: LogicalPlan,
    shadow: &mut Vec<DFSchemaRef>,
    f: &mut Rebinder<'_>,
) -> Result<LogicalPlan> {
    if let LogicalPlan::Subquery(mut subquery) = plan {
        // A level of its own: its references reach past the plan holding it.
        shadow.push(Arc::new(DFSchema::empty()));
        let inner = rebind(Arc::unwrap_or_clone(subquery.subquery), shadow, f);
        shadow.pop();
        let inner = inner?;
        let mut kept = Vec::with_capacity(subquery.outer_ref_columns.len());
        for reference in subquery.outer_ref_columns {
            let replaced = match &reference {
                Expr::OuterReferenceColumn(field, column) if !shadowed(shadow, column) => {
                    f(field, column, shadow.len())?.is_some()
                }
                _ => false,
            };
            if !replaced {
                kept.push(reference);
            }
        }
        subquery.subquery = Arc::new(inner);
        subquery.outer_ref_columns = kept;
        return Ok(LogicalPlan::Subquery(subquery));
    }
    let scope = Arc::new(merge_schema(&plan.inputs()));
    // A `LATERAL` child (rooted in a subquery) sees its left sibling.
    let left = match &plan {
        LogicalPlan::Join(join) => Some(join.left.schema().clone()),
        _ => None,
    };
    let plan = plan
        .map_children(|child| {
            let lateral = rooted_in_subquery(&child) && left.is_some();
            if let (true, Some(left)) = (lateral, &left) {
                shadow.push(left.clone());
            }
            let rebound = rebind(child, shadow, f);
            if lateral {
                shadow.pop();
            }
            rebound.map(Transformed::yes)
        })?
        .data;
    // A dependent join made by an earlier rule holds its subquery apart.
    let plan = match plan {
        LogicalPlan::Extension(extension) => {
            match extension.node.as_any().downcast_ref::<DependentJoin>() {
                Some(join) => {
                    let mut join = join.clone();
                    shadow.push(join.outer.schema().clone());
                    let inner = rebind(join.inner, shadow, f);
                    shadow.pop();
                    join.inner = inner?;
                    extension_plan(join)
                }
                None => LogicalPlan::Extension(extension),
            }
        }
        other => other,
    };
    let plan = plan
        .map_subqueries(|subquery| {
            shadow.push(scope.clone());
            let rebound = rebind(subquery, shadow, f);
            shadow.pop();
            rebound.map(Transformed::yes)
        })?
        .data;
    // Names stay as they were, so the plan's schema does too.
    let names = NamePreserver::new(&plan);
    plan.map_expressions(|expr| {
        let name = names.save(&expr);
        let rebound = expr.transform_up(|e| match e {
            Expr::OuterReferenceColumn(field, column) if !shadowed(shadow, &column) => {
                match f(&field, &column, shadow.len())? {
                    Some(replacement) => Ok(Transformed::yes(replacement)),
                    None => Ok(Transformed::no(Expr::OuterReferenceColumn(field, column))),
                }
            }
            other => Ok(Transformed::no(other)),
        })?;
        Ok(rebound.update_data(|e| name.restore(e)))
    })
    .map(|t| t.data)
}

/// `expr` with the outer references its subqueries make to columns
/// `rename` names renamed (a plan gaining an alias takes the references
/// to it along).
pub(super) fn rename_outer_references(
    expr: Expr,
    rename: &dyn Fn(&Column) -> Option<Column>,
) -> Result<Expr> {
    let mut renamed = |field: &FieldRef, column: &Column, _: usize| {
        Ok(rename(column).map(|c| Expr::OuterReferenceColumn(field.clone(), c)))
    };
    let mut rename_subquery = |subquery: Subquery| -> Result<Subquery> {
        let plan = LogicalPlan::Subquery(subquery);
        match rebind(plan, &mut Vec::new(), &mut renamed)? {
            LogicalPlan::Subquery(mut subquery) => {
                subquery.outer_ref_columns = outer_columns(&subquery.subquery)?;
                Ok(subquery)
            }
            _ => internal_err!("a subquery rebound into something else"),
        }
    };
    expr.transform_down(|e| {
        Ok(match e {
            Expr::ScalarSubquery(s) => Transformed::yes(Expr::ScalarSubquery(rename_subquery(s)?)),
            Expr::Exists(mut e) => {
                e.subquery = rename_subquery(e.subquery)?;
                Transformed::yes(Expr::Exists(e))
            }
            Expr::InSubquery(mut e) => {
                e.subquery = rename_subquery(e.subquery)?;
                Transformed::yes(Expr::InSubquery(e))
            }
            Expr::SetComparison(mut e) => {
                e.subquery = rename_subquery(e.subquery)?;
                Transformed::yes(Expr::SetComparison(e))
            }
            other => Transformed::no(other),
        })
    })
    .map(|t| t.data)
}

/// The free outer references of `plan`, as a subquery lists them.
fn outer_columns(plan: &LogicalPlan) -> Result<Vec<Expr>> {
    let mut found: Vec<Expr> = Vec::new();
    for r in free_references(plan)? {
        let reference = Expr::OuterReferenceColumn(r.field, r.column);
        if !found.contains(&reference) {
            found.push(reference);
        }
    }
    Ok(found)
}

/// Whether `plan` is a subquery (under aliases): a `LATERAL` right side.
fn rooted_in_subquery(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Subquery(_) => true,
        LogicalPlan::SubqueryAlias(alias) => rooted_in_subquery(&alias.input),
        _ => false,
    }
}

fn shadowed(shadow: &[DFSchemaRef], column: &Column) -> bool {
    shadow.iter().any(|scope| scope.has_column(column))
}
