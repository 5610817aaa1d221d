//! `INTERSECT ALL` and `EXCEPT ALL` with SQL's multiplicities.
//!
//! DataFusion plans both as a semi (anti) join of the two sides on every
//! column, nulls equal, which keeps every copy of a left row that has a
//! match: `VALUES (1),(1),(1) INTERSECT ALL VALUES (1)` gives three rows
//! where SQL (and PostgreSQL) give one, the smaller count; `EXCEPT ALL`
//! gives none where SQL gives the difference of the counts.
//!
//! [`SetOpMultiplicity`] (an analyzer rule, so it runs before the
//! optimizer makes semi joins of its own out of `IN` and `EXISTS`) numbers
//! the copies of each distinct row on both sides with `row_number()` and
//! joins on that number too: copy k of a left row matches iff the right
//! side has at least k copies. Projecting the number away leaves
//! min(left, right) copies for `INTERSECT ALL` and max(left − right, 0)
//! for `EXCEPT ALL`. The distinct forms give the same answer either way
//! (their left side is already distinct), so every such join is rewritten.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality, Result};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{
    Expr, ExprFunctionExt, Join, JoinType, LogicalPlan, LogicalPlanBuilder,
};
use datafusion::optimizer::AnalyzerRule;

/// The column holding each row's copy number while the rule's join runs.
const COPY_COLUMN: &str = "__driftdb_copy";

/// See the module page.
#[derive(Debug, Default)]
pub struct SetOpMultiplicity;

impl AnalyzerRule for SetOpMultiplicity {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| match plan {
            LogicalPlan::Join(join) if is_set_operation(&join) => {
                Ok(Transformed::yes(with_multiplicity(join)?))
            }
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "driftdb_set_operation_multiplicity"
    }
}

/// Whether `join` is how DataFusion plans INTERSECT or EXCEPT: semi or
/// anti, nulls equal, no filter, on every column of both sides in order.
fn is_set_operation(join: &Join) -> bool {
    let columns = join.left.schema().columns();
    matches!(join.join_type, JoinType::LeftSemi | JoinType::LeftAnti)
        && join.null_equality == NullEquality::NullEqualsNull
        && join.filter.is_none()
        && !join.null_aware
        && columns.len() == join.on.len()
        && columns.len() == join.right.schema().columns().len()
        && !columns.iter().any(|c| c.name == COPY_COLUMN)
        && join
            .on
            .iter()
            .zip(&columns)
            .all(|((left, _), column)| matches!(left, Expr::Column(c) if c.name == column.name))
}

/// The same join, also on each row's copy number, projected back to the
/// left side's columns.
fn with_multiplicity(join: Join) -> Result<LogicalPlan> {
    let left_columns = join.left.schema().columns();
    let left = numbered(Arc::unwrap_or_clone(join.left))?;
    let right = numbered(Arc::unwrap_or_clone(join.right))?;
    let (mut left_keys, mut right_keys): (Vec<Column>, Vec<Column>) = join
        .on
        .iter()
        .filter_map(|(l, r)| match (l, r) {
            (Expr::Column(l), Expr::Column(r)) => Some((l.clone(), r.clone())),
            _ => None,
        })
        .unzip();
    left_keys.push(Column::from_name(COPY_COLUMN));
    right_keys.push(Column::from_name(COPY_COLUMN));
    LogicalPlanBuilder::from(left)
        .join_detailed(
            right,
            join.join_type,
            (left_keys, right_keys),
            None,
            NullEquality::NullEqualsNull,
        )?
        .project(left_columns.into_iter().map(Expr::Column))?
        .build()
}

/// `plan` with a column numbering the copies of each distinct row.
fn numbered(plan: LogicalPlan) -> Result<LogicalPlan> {
    let partition = plan
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let copy = row_number()
        .partition_by(partition)
        .build()?
        .alias(COPY_COLUMN);
    LogicalPlanBuilder::from(plan).window(vec![copy])?.build()
}
