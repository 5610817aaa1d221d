//! Scalar aggregate subqueries correlated by any condition, not only by
//! equality: `(SELECT count(*) FROM t AS i WHERE i.x < o.x)`.
//!
//! DataFusion decorrelates a scalar subquery only when its correlation is
//! equalities it can group by; any other condition it cannot plan (and
//! `IN` / `EXISTS` correlated that way reach here too, as counts:
//! [`super::subqueries`]). [`NonEqualityCorrelation`] (an analyzer rule)
//! joins such a subquery with the *domain* of the outer query, the
//! distinct values of the outer columns it refers to, so the subquery is
//! evaluated once per distinct binding rather than per row:
//!
//! ```text
//! D  = SELECT DISTINCT o.x AS d0 FROM outer
//! S  = SELECT d0, <aggregates over CASE WHEN matched THEN arg END>
//!      FROM D LEFT JOIN (SELECT *, true AS matched FROM inner) ON <condition, o.x := d0>
//!      GROUP BY d0
//! outer LEFT JOIN S ON o.x IS NOT DISTINCT FROM d0     -- one S row per outer row
//! ```
//!
//! Every binding keeps a row through the left join, and each aggregate
//! sees only matched rows, so an empty match gives the aggregate of an
//! empty set (count 0, sum NULL): the "count bug" cannot happen.
//!
//! The shapes taken: a subquery that is an aggregate without `GROUP BY`
//! (under projections), over a filter holding every outer reference,
//! with aggregates that skip NULLs. Others are left as they are (and
//! DataFusion reports 0A000 for those it cannot plan either).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, NullEquality, Result, internal_err};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Expr, ExprSchemable, Filter, JoinType, LogicalPlan, LogicalPlanBuilder,
    Operator, Projection, Subquery, when,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::lit;

/// Aggregates whose answer over an empty set equals their answer over
/// rows of NULLs (what the left join gives an unmatched binding).
const NULL_SKIPPING_AGGREGATES: [&str; 5] = ["count", "sum", "min", "max", "avg"];

/// The column marking rows of the subquery's input that matched.
const MATCHED: &str = "__driftdb_matched";

/// See the module page.
#[derive(Debug, Default)]
pub struct NonEqualityCorrelation;

impl AnalyzerRule for NonEqualityCorrelation {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let mut next = 0usize;
        plan.transform_up_with_subqueries(|plan| match &plan {
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) => rewrite_node(plan, &mut next),
            _ => Ok(Transformed::no(plan)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "driftdb_non_equality_correlation"
    }
}

/// A subquery taken apart: the aggregate on top (with the projections
/// over it, outermost first), the correlated conjuncts, and the input.
struct Parts {
    projections: Vec<Projection>,
    aggregate: Aggregate,
    correlated: Vec<Expr>,
    uncorrelated: Option<Expr>,
    input: Arc<LogicalPlan>,
    outer_columns: Vec<Column>,
}

/// `plan` (a projection or filter) with each such subquery in it joined
/// in; a filter keeps its columns.
fn rewrite_node(plan: LogicalPlan, next: &mut usize) -> Result<Transformed<LogicalPlan>> {
    let keep = match &plan {
        LogicalPlan::Filter(filter) => Some(filter.input.schema().columns()),
        _ => None,
    };
    let mut plan = plan;
    let mut changed = false;
    loop {
        let step = rewrite_one(plan, next)?;
        plan = step.data;
        if !step.transformed {
            break;
        }
        changed = true;
    }
    if !changed {
        return Ok(Transformed::no(plan));
    }
    if let Some(keep) = keep {
        plan = LogicalPlanBuilder::from(plan)
            .project(keep.into_iter().map(Expr::Column))?
            .build()?;
    }
    Ok(Transformed::yes(plan))
}

/// `plan` with its first such subquery joined in (a filter stays a filter
/// over more columns).
fn rewrite_one(plan: LogicalPlan, next: &mut usize) -> Result<Transformed<LogicalPlan>> {
    let mut found = None;
    let outer_schema = plan.inputs()[0].schema().clone();
    plan.apply_expressions(|expr| {
        expr.apply(|e| {
            if let Expr::ScalarSubquery(subquery) = e
                && let Some(parts) = take_apart(subquery)
                && parts
                    .outer_columns
                    .iter()
                    .all(|c| outer_schema.has_column(c))
            {
                found = Some((subquery.clone(), parts));
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
    })?;
    let Some((subquery, parts)) = found else {
        return Ok(Transformed::no(plan));
    };
    *next += 1;
    let value = format!("__driftdb_sq{next}");
    let (new_input, value_column) = joined_with_domain(&plan, parts, &value, *next)?;
    let replace = |expr: Expr| {
        expr.transform_up(|e| match e {
            Expr::ScalarSubquery(s) if s == subquery => {
                Ok(Transformed::yes(Expr::Column(value_column.clone())))
            }
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    };
    let rebuilt = match plan {
        LogicalPlan::Projection(projection) => {
            let exprs = projection
                .expr
                .into_iter()
                .map(replace)
                .collect::<Result<Vec<_>>>()?;
            LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(new_input))?)
        }
        LogicalPlan::Filter(filter) => {
            let predicate = replace(filter.predicate)?;
            LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(new_input))?)
        }
        other => return Ok(Transformed::no(other)),
    };
    Ok(Transformed::yes(rebuilt))
}

/// `subquery` as [`Parts`], when it has the shape this rule takes and a
/// correlation DataFusion cannot decorrelate itself.
fn take_apart(subquery: &Subquery) -> Option<Parts> {
    if subquery.outer_ref_columns.is_empty() {
        return None;
    }
    let mut projections = Vec::new();
    let mut node = subquery.subquery.as_ref();
    while let LogicalPlan::Projection(p) = node {
        projections.push(p.clone());
        node = p.input.as_ref();
    }
    let LogicalPlan::Aggregate(aggregate) = node else {
        return None;
    };
    let input_schema = aggregate.input.schema();
    let takes = |e: &Expr| skips_nulls(e, input_schema);
    if !aggregate.group_expr.is_empty() || !aggregate.aggr_expr.iter().all(takes) {
        return None;
    }
    // The filters right below the aggregate (a subquery's own WHERE and a
    // condition added over it).
    let mut conjuncts = Vec::new();
    let mut below = aggregate.input.as_ref();
    while let LogicalPlan::Filter(filter) = below {
        conjuncts.extend(split_conjunction_owned(filter.predicate.clone()));
        below = filter.input.as_ref();
    }
    let (correlated, uncorrelated): (Vec<Expr>, Vec<Expr>) =
        conjuncts.into_iter().partition(has_outer_reference);
    if correlated.is_empty() || correlated.iter().all(datafusion_decorrelates) {
        return None;
    }
    // Every outer reference must sit in those conjuncts.
    let elsewhere = projections
        .iter()
        .any(|p| p.expr.iter().any(has_outer_reference))
        || aggregate.aggr_expr.iter().any(has_outer_reference)
        || plan_has_outer_reference(below);
    if elsewhere {
        return None;
    }
    let mut outer_columns = BTreeSet::new();
    for expr in &correlated {
        let _ = expr.apply(|e| {
            if let Expr::OuterReferenceColumn(_, column) = e {
                outer_columns.insert(column.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
    Some(Parts {
        projections,
        aggregate: aggregate.clone(),
        correlated,
        uncorrelated: conjunction(uncorrelated),
        input: Arc::new(below.clone()),
        outer_columns: outer_columns.into_iter().collect(),
    })
}

/// The input of `node` left-joined with the subquery's answer per
/// binding; returns it and the column holding the answer.
fn joined_with_domain(
    node: &LogicalPlan,
    parts: Parts,
    value: &str,
    id: usize,
) -> Result<(LogicalPlan, Column)> {
    let outer = node.inputs()[0].clone();
    let domain_names: Vec<String> = (0..parts.outer_columns.len())
        .map(|k| format!("__driftdb_d{id}_{k}"))
        .collect();
    let domain = LogicalPlanBuilder::from(outer.clone())
        .project(
            parts
                .outer_columns
                .iter()
                .zip(&domain_names)
                .map(|(c, name)| Expr::Column(c.clone()).alias(name)),
        )?
        .distinct()?
        .build()?;
    let mut inner = LogicalPlanBuilder::from(Arc::unwrap_or_clone(parts.input));
    if let Some(filter) = parts.uncorrelated {
        inner = inner.filter(filter)?;
    }
    let mut inner_columns: Vec<Expr> = inner
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    inner_columns.push(lit(true).alias(MATCHED));
    let inner = inner.project(inner_columns)?.build()?;
    let condition = parts
        .correlated
        .into_iter()
        .map(|e| bound_to_domain(e, &parts.outer_columns, &domain_names))
        .collect::<Result<Vec<_>>>()?;
    let grouped = LogicalPlanBuilder::from(domain)
        .join_on(inner, JoinType::Left, condition)?
        .aggregate(
            domain_names
                .iter()
                .map(|n| Expr::Column(Column::from_name(n))),
            parts
                .aggregate
                .aggr_expr
                .into_iter()
                .map(only_matched)
                .collect::<Result<Vec<_>>>()?,
        )?
        .build()?;
    let answered = reapply_projections(grouped, parts.projections, &domain_names, value)?;
    let joined = LogicalPlanBuilder::from(outer)
        .join_detailed(
            answered,
            JoinType::Left,
            (
                parts.outer_columns.clone(),
                domain_names.iter().map(Column::from_name).collect(),
            ),
            None,
            NullEquality::NullEqualsNull,
        )?
        .build()?;
    Ok((joined, Column::from_name(value)))
}

/// The subquery's projections over the grouped rows, carrying the domain
/// columns; its single output column named `value`.
fn reapply_projections(
    grouped: LogicalPlan,
    projections: Vec<Projection>,
    domain_names: &[String],
    value: &str,
) -> Result<LogicalPlan> {
    let carried = || {
        domain_names
            .iter()
            .map(|n| Expr::Column(Column::from_name(n)))
    };
    let mut plan = grouped;
    for projection in projections.into_iter().rev() {
        let exprs: Vec<Expr> = carried().chain(projection.expr).collect();
        plan = LogicalPlanBuilder::from(plan).project(exprs)?.build()?;
    }
    let Some(answer) = plan.schema().columns().into_iter().nth(domain_names.len()) else {
        return internal_err!("a scalar subquery without a column");
    };
    LogicalPlanBuilder::from(plan)
        .project(carried().chain([Expr::Column(answer).alias(value)]))?
        .build()
}

/// `expr` with each outer reference replaced by its domain column.
fn bound_to_domain(expr: Expr, outer: &[Column], names: &[String]) -> Result<Expr> {
    expr.transform_up(|e| match e {
        Expr::OuterReferenceColumn(_, column) => {
            let k = outer.iter().position(|c| *c == column).unwrap_or_default();
            Ok(Transformed::yes(Expr::Column(Column::from_name(&names[k]))))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

/// An aggregate that sees its arguments only on matched rows, under its
/// own name.
fn only_matched(expr: Expr) -> Result<Expr> {
    let name = expr.schema_name().to_string();
    let matched = Expr::Column(Column::from_name(MATCHED)).is_true();
    let guarded = expr.transform_up(|e| match e {
        Expr::AggregateFunction(mut f) => {
            f.params.args = f
                .params
                .args
                .into_iter()
                .map(|arg| when(matched.clone(), arg).end())
                .collect::<Result<_>>()?;
            Ok(Transformed::new(
                Expr::AggregateFunction(f),
                true,
                TreeNodeRecursion::Jump,
            ))
        }
        other => Ok(Transformed::no(other)),
    })?;
    guarded.data.alias_if_changed(name)
}

/// Whether every aggregate in `expr` skips NULLs and takes no boolean
/// argument (a guarded boolean argument trips DataFusion's nullability
/// check between its logical and physical plans).
fn skips_nulls(expr: &Expr, schema: &DFSchema) -> bool {
    let mut all = true;
    let _ = expr.apply(|e| {
        if let Expr::AggregateFunction(AggregateFunction { func, params }) = e {
            let boolean = params
                .args
                .iter()
                .any(|a| a.get_type(schema).map_or(true, |t| t == DataType::Boolean));
            all &= NULL_SKIPPING_AGGREGATES.contains(&func.name())
                && params.order_by.is_empty()
                && !boolean;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    all
}

/// An equality DataFusion decorrelates itself: a column of the subquery
/// equal to an expression of the outer row (`i.k = o.k`); one with an
/// expression on the subquery's side (`i.v / 10 = o.x`, `1 = o.x`) it
/// cannot group by.
fn datafusion_decorrelates(expr: &Expr) -> bool {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = expr
    else {
        return false;
    };
    let outer_only = |e: &Expr| {
        has_outer_reference(e)
            && !e
                .exists(|n| Ok(matches!(n, Expr::Column(_))))
                .unwrap_or(true)
    };
    match (left.as_ref(), right.as_ref()) {
        (Expr::Column(_), other) | (other, Expr::Column(_)) => outer_only(other),
        _ => false,
    }
}

fn has_outer_reference(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::OuterReferenceColumn(..))))
        .unwrap_or(true)
}

fn plan_has_outer_reference(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        let _ = node.apply_expressions(|e| {
            found |= has_outer_reference(e);
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}
