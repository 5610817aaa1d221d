//! Casts from a decimal or floating-point number to an integer round, as
//! PostgreSQL's do; arrow's truncate (`CAST(1.7 AS INT)` gave 1,
//! `CAST(-2.5 AS INT)` −2; PostgreSQL gives 2 and −3).
//!
//! [`rounded`] (applied by [`super::expr_rules`] after type coercion, so
//! the casts coercion adds are covered too) wraps the value of every such cast in
//! `round()`, which rounds half away from zero: PostgreSQL's rule for
//! `numeric`. (For `double precision` PostgreSQL rounds half to even; a
//! float exactly halfway between two integers still rounds away from zero
//! here.)

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::functions::math::expr_fn::round;
use datafusion::logical_expr::expr::{Cast, TryCast};
use datafusion::logical_expr::{Expr, ExprSchemable};

/// `expr` with its value rounded first when it casts a number with a
/// fraction to an integer type.
pub(crate) fn rounded(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let (inner, field, try_cast) = match &expr {
        Expr::Cast(Cast { expr, field }) => (expr, field, false),
        Expr::TryCast(TryCast { expr, field }) => (expr, field, true),
        _ => return Ok(Transformed::no(expr)),
    };
    if !field.data_type().is_integer() || is_rounded(inner) {
        return Ok(Transformed::no(expr));
    }
    let Ok(from) = inner.get_type(schema) else {
        return Ok(Transformed::no(expr));
    };
    if !(from.is_floating() || matches!(from, DataType::Decimal128(..) | DataType::Decimal256(..)))
    {
        return Ok(Transformed::no(expr));
    }
    let value = Box::new(round(vec![inner.as_ref().clone()]));
    let field = field.clone();
    Ok(Transformed::yes(match try_cast {
        false => Expr::Cast(Cast::new_from_field(value, field)),
        true => Expr::TryCast(TryCast::new_from_field(value, field)),
    }))
}

/// Whether `expr` is already a `round(…)` call (the rule runs once per
/// plan, but a plan can be analyzed again).
fn is_rounded(expr: &Expr) -> bool {
    matches!(expr, Expr::ScalarFunction(f) if f.func.name() == "round")
}
