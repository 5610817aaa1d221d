//! `EXISTS`, `IN`, `NOT IN` and `x op ANY | ALL (subquery)` wherever an
//! expression may stand, with SQL's three-valued answer.
//!
//! DataFusion turns a subquery predicate into a semi, anti or mark join
//! only inside a `WHERE` clause; in a select list (`SELECT a IN (SELECT
//! …)`, `CASE WHEN EXISTS …`) it cannot plan it. And its mark join answers
//! `x IN (…)` with false where SQL answers NULL (`x` NULL, or no match but a
//! NULL in the subquery), which changes the row set once the predicate sits
//! under `NOT`, `IS NULL` or a `CASE`.
//!
//! [`SubqueryPredicates`] (an analyzer rule, after type coercion) rewrites
//! each such predicate into scalar `count(*)` subqueries, which
//! DataFusion decorrelates into joins with aggregates (or, correlated by
//! anything but column equalities, [`super::decorrelate`] does):
//!
//! ```text
//! EXISTS (q)  →  (SELECT count(*) FROM q) > 0
//! x IN (q)    =  x = ANY (q);  x NOT IN (q)  =  x <> ALL (q)
//! x op ANY/ALL (q): see `quantified`
//! ```
//!
//! Each counted subquery gets a name of its own, so a table compared with
//! itself (`sal IN (SELECT sal FROM e)` over `e`) stays two tables once
//! decorrelated. Left to DataFusion, which answers them right: `IN` in a
//! `WHERE` clause reached only through AND and OR (there false and NULL
//! both drop the row), an uncorrelated `NOT IN` conjunct, and `EXISTS`
//! anywhere in a `WHERE` clause.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ExprSchema, Result, ScalarValue};
use datafusion::functions_aggregate::count::count_all;
use datafusion::logical_expr::expr::{Exists, InSubquery, SetComparison, SetQuantifier};
use datafusion::logical_expr::expr_fn::scalar_subquery;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::{conjunction, merge_schema, split_conjunction_owned};
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Expr, ExprSchemable, Filter, LogicalPlan, LogicalPlanBuilder, Operator,
    Projection, Subquery, SubqueryAlias, when,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::lit;

/// See the module page.
#[derive(Debug, Default)]
pub struct SubqueryPredicates;

impl AnalyzerRule for SubqueryPredicates {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| match plan {
            LogicalPlan::Projection(_) => rewrite_projection(plan),
            LogicalPlan::Filter(filter) => rewrite_filter(filter),
            LogicalPlan::Aggregate(aggregate) => rewrite_grouping(aggregate),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "driftdb_subquery_predicates"
    }
}

fn rewrite_projection(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let schema = merge_schema(&plan.inputs());
    let names = NamePreserver::new(&plan);
    plan.map_expressions(|expr| {
        let name = names.save(&expr);
        let rewritten = expr.transform_up(|e| counted(e, &schema, true))?;
        Ok(rewritten.update_data(|e| name.restore(e)))
    })
}

/// An aggregate grouping by a subquery predicate groups by a column a
/// projection below it computes (rewritten as any projection), under the
/// grouping expression's name.
fn rewrite_grouping(aggregate: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let has_predicate = |e: &Expr| {
        e.exists(|e| {
            Ok(matches!(
                e,
                Expr::Exists(_) | Expr::InSubquery(_) | Expr::SetComparison(_)
            ))
        })
        .unwrap_or(false)
    };
    if !aggregate.group_expr.iter().any(has_predicate) {
        return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
    }
    let input = aggregate.input.as_ref();
    let mut computed: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let mut group_expr = Vec::with_capacity(aggregate.group_expr.len());
    for expr in aggregate.group_expr {
        if has_predicate(&expr) {
            let name = expr.schema_name().to_string();
            computed.push(expr.alias(name.clone()));
            group_expr.push(Expr::Column(Column::from_name(name)));
        } else {
            group_expr.push(expr);
        }
    }
    let below = LogicalPlanBuilder::from(Arc::unwrap_or_clone(aggregate.input))
        .project(computed)?
        .build()?;
    let below = rewrite_projection(below)?.data;
    let rebuilt = Aggregate::try_new(Arc::new(below), group_expr, aggregate.aggr_expr)?;
    Ok(Transformed::yes(LogicalPlan::Aggregate(rebuilt)))
}

fn rewrite_filter(filter: Filter) -> Result<Transformed<LogicalPlan>> {
    let schema = filter.input.schema().clone();
    let mut changed = false;
    let mut conjuncts = Vec::new();
    for conjunct in split_conjunction_owned(filter.predicate.clone()) {
        let rewritten = if is_join_predicate(&conjunct) {
            Transformed::no(conjunct)
        } else {
            in_where(conjunct, &schema)?
        };
        changed |= rewritten.transformed;
        conjuncts.push(rewritten.data);
    }
    if !changed {
        return Ok(Transformed::no(LogicalPlan::Filter(filter)));
    }
    let predicate = conjunction(conjuncts).unwrap_or_else(|| lit(true));
    let rebuilt = Filter::try_new(predicate, filter.input)?;
    Ok(Transformed::yes(LogicalPlan::Filter(rebuilt)))
}

/// Whether DataFusion turns this whole conjunct into a semi or anti join
/// and answers it right (its null-aware anti join, for `NOT IN`, takes
/// no correlation).
fn is_join_predicate(conjunct: &Expr) -> bool {
    let answered_right =
        |s: &InSubquery, not_in: bool| !not_in || s.subquery.outer_ref_columns.is_empty();
    match conjunct {
        Expr::InSubquery(s) => answered_right(s, s.negated),
        Expr::Exists(_) => true,
        Expr::Not(inner) => match inner.as_ref() {
            Expr::InSubquery(s) => answered_right(s, !s.negated),
            Expr::Exists(_) => true,
            _ => false,
        },
        _ => false,
    }
}

/// `expr`, a `WHERE` condition, with the `IN` subqueries DataFusion would
/// answer wrong rewritten: `NOT IN`, and `IN` reached through anything but
/// AND and OR.
fn in_where(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::And | Operator::Or) =>
        {
            let left = in_where(*left, schema)?;
            let right = in_where(*right, schema)?;
            let changed = left.transformed || right.transformed;
            let expr = Expr::BinaryExpr(BinaryExpr::new(
                Box::new(left.data),
                op,
                Box::new(right.data),
            ));
            Ok(Transformed::new_transformed(expr, changed))
        }
        Expr::InSubquery(InSubquery { negated: false, .. }) | Expr::Exists(_) => {
            Ok(Transformed::no(expr))
        }
        other => other.transform_up(|e| counted(e, schema, false)),
    }
}

/// `expr` rewritten into counting subqueries when it is an `IN` subquery
/// (or, with `exists_too`, an `EXISTS`).
pub(super) fn counted(
    expr: Expr,
    schema: &DFSchema,
    exists_too: bool,
) -> Result<Transformed<Expr>> {
    match expr {
        Expr::Exists(Exists { subquery, negated }) if exists_too => {
            let plan = Arc::unwrap_or_clone(subquery.subquery);
            let count = row_count(plan, None)?;
            Ok(Transformed::yes(match negated {
                false => count.gt(lit(0i64)),
                true => count.eq(lit(0i64)),
            }))
        }
        Expr::InSubquery(in_subquery) => {
            let InSubquery {
                expr,
                subquery,
                negated,
            } = &in_subquery;
            // IN is `= ANY`, NOT IN is `<> ALL`.
            let (op, quantifier) = match negated {
                false => (Operator::Eq, SetQuantifier::Any),
                true => (Operator::NotEq, SetQuantifier::All),
            };
            match quantified(expr, op, quantifier, subquery, schema)? {
                Some(answer) => Ok(Transformed::yes(answer)),
                None => Ok(Transformed::no(Expr::InSubquery(in_subquery))),
            }
        }
        Expr::SetComparison(comparison) => {
            let SetComparison {
                expr,
                subquery,
                op,
                quantifier,
            } = &comparison;
            match quantified(expr, *op, *quantifier, subquery, schema)? {
                Some(answer) => Ok(Transformed::yes(answer)),
                None => Ok(Transformed::no(Expr::SetComparison(comparison))),
            }
        }
        other => Ok(Transformed::no(other)),
    }
}

/// The three-valued answer of `x op ANY (q)` / `x op ALL (q)` (`IN` and
/// `NOT IN` among them), or `None` when `x` is not an expression over
/// the outer row alone. With `y` the subquery's column:
///
/// ```text
/// ANY: CASE WHEN (SELECT count(*) FROM q WHERE x op y) > 0       THEN true
///           WHEN <x NULL and q not empty, or a NULL y in q>        THEN NULL ELSE false END
/// ALL: CASE WHEN (SELECT count(*) FROM q WHERE NOT (x op y)) > 0 THEN false
///           WHEN <the same>                                        THEN NULL ELSE true END
/// ```
fn quantified(
    expr: &Expr,
    op: Operator,
    quantifier: SetQuantifier,
    subquery: &Subquery,
    schema: &DFSchema,
) -> Result<Option<Expr>> {
    let Some(outer) = as_outer_reference(expr, schema)? else {
        return Ok(None);
    };
    let plan = subquery.subquery.as_ref().clone();
    let (qualifier, field) = plan.schema().qualified_field(0);
    let y = Expr::Column(Column::new(qualifier.cloned(), field.name()));
    let compared = Expr::BinaryExpr(BinaryExpr::new(Box::new(outer), op, Box::new(y.clone())));
    let (decisive, decided, otherwise) = match quantifier {
        SetQuantifier::Any => (compared, true, false),
        SetQuantifier::All => (Expr::Not(Box::new(compared)), false, true),
    };
    let decides = row_count(plan.clone(), Some(decisive))?.gt(lit(0i64));
    let unknown = lit(ScalarValue::Boolean(None));
    let mut answer = when(decides, lit(decided));
    if expr.nullable(schema)? {
        let any_row = row_count(plan.clone(), None)?.gt(lit(0i64));
        let x_null = when(any_row, unknown.clone()).otherwise(lit(otherwise))?;
        answer = answer.when(expr.clone().is_null(), x_null);
    }
    if field.is_nullable() {
        let y_null = row_count(plan, Some(y.is_null()))?.gt(lit(0i64));
        answer = answer.when(y_null, unknown);
    }
    Ok(Some(answer.otherwise(lit(otherwise))?))
}

/// `expr` with its columns as references to the outer query, or `None`
/// when it holds something that cannot move into a subquery (a subquery,
/// an outer reference of its own, an aggregate or window function).
fn as_outer_reference(expr: &Expr, schema: &DFSchema) -> Result<Option<Expr>> {
    let movable = !expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::AggregateFunction(_)
                | Expr::WindowFunction(_)
                | Expr::Placeholder(_)
        ))
    })?;
    if !movable {
        return Ok(None);
    }
    let outer = expr.clone().transform_up(|e| match e {
        Expr::Column(column) => {
            let field = schema.field_from_column(&column)?;
            Ok(Transformed::yes(Expr::OuterReferenceColumn(
                field.clone(),
                column,
            )))
        }
        other => Ok(Transformed::no(other)),
    })?;
    Ok(Some(outer.data))
}

/// `(SELECT count(*) FROM plan [WHERE filter])` as a scalar subquery.
/// A plain projection on top of `plan` is looked through (the count does
/// not need it), so the correlation stays next to the aggregate, where
/// [`super::decorrelate`] finds it.
fn row_count(plan: LogicalPlan, filter: Option<Expr>) -> Result<Expr> {
    let (plan, filter) = match plan {
        LogicalPlan::Projection(projection) => {
            let filter = filter
                .map(|f| below_projection(f, &projection))
                .transpose()?;
            (Arc::unwrap_or_clone(projection.input), filter)
        }
        other => (other, filter),
    };
    // One filter under the aggregate (DataFusion decorrelates one).
    let (plan, filter) = match (plan, filter) {
        (LogicalPlan::Filter(below), Some(filter)) => (
            Arc::unwrap_or_clone(below.input),
            Some(below.predicate.and(filter)),
        ),
        (LogicalPlan::Filter(below), None) => {
            (Arc::unwrap_or_clone(below.input), Some(below.predicate))
        }
        (plan, filter) => (plan, filter),
    };
    let (plan, filter) = own_qualifier(plan, filter)?;
    let mut builder = LogicalPlanBuilder::from(plan);
    if let Some(filter) = filter {
        builder = builder.filter(filter)?;
    }
    let counted = builder
        .aggregate(Vec::<Expr>::new(), vec![count_all()])?
        .build()?;
    Ok(scalar_subquery(Arc::new(counted)))
}

/// `plan` under a name of its own, with `filter`'s columns of it
/// renamed to match. The condition added here compares the subquery's
/// column with the outer one; when both come from one table
/// (`sal IN (SELECT sal FROM e)` over `e`), both would be `e.sal` once
/// decorrelated, and the join would match every row with every row. A
/// plan whose columns' names repeat keeps its own qualifiers.
fn own_qualifier(plan: LogicalPlan, filter: Option<Expr>) -> Result<(LogicalPlan, Option<Expr>)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let alias = format!("__driftdb_sq_{n}");
    let schema = plan.schema().clone();
    let Ok(aliased) = SubqueryAlias::try_new(Arc::new(plan.clone()), alias.as_str()) else {
        return Ok((plan, filter));
    };
    let renamed = |column: &Column| {
        schema
            .has_column(column)
            .then(|| Column::new(Some(alias.as_str()), column.name.clone()))
    };
    let requalified = filter
        .map(|f| {
            let f = f
                .transform_up(|e| match e {
                    Expr::Column(column) => match renamed(&column) {
                        Some(c) => Ok(Transformed::yes(Expr::Column(c))),
                        None => Ok(Transformed::no(Expr::Column(column))),
                    },
                    other => Ok(Transformed::no(other)),
                })?
                .data;
            super::apply::rename_outer_references(f, &renamed)
        })
        .transpose()?;
    Ok((LogicalPlan::SubqueryAlias(aliased), requalified))
}

/// `expr`, over the output of `projection`, rewritten over its input.
fn below_projection(expr: Expr, projection: &Projection) -> Result<Expr> {
    let schema = projection.schema.clone();
    expr.transform_up(|e| match e {
        Expr::Column(column) => match schema.index_of_column(&column) {
            Ok(i) => Ok(Transformed::yes(projection.expr[i].clone().unalias())),
            Err(_) => Ok(Transformed::no(Expr::Column(column))),
        },
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}
