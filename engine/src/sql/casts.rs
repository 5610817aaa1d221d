//! Casts from a decimal or floating-point number to an integer round, as
//! PostgreSQL's do; arrow's truncate (`CAST(1.7 AS INT)` gave 1,
//! `CAST(-2.5 AS INT)` −2; PostgreSQL gives 2 and −3).
//!
//! A number written with a fraction is a binary float to DataFusion
//! (`1.005` is 1.00499999…), so its cast to a decimal rounded the wrong
//! way (`CAST(1.005 AS DECIMAL(5,2))` gave 1.00; PostgreSQL, whose
//! literal is exact, 1.01). [`exact_decimal`] casts such a constant from
//! its shortest decimal text (what was written), rounding half away from
//! zero. (A float *column* cast to a decimal keeps arrow's rounding of
//! the binary value.)
//!
//! The same two rules hold where rows are stored, not cast:
//! [`decimals_from_floats`] and [`rounded_for_integer`] (called by
//! `sql/dml.rs` for a column of another type).
//!
//! [`rounded`] (applied by [`super::expr_rules`] after type coercion, so
//! the casts coercion adds are covered too) wraps the value of every such cast in
//! `round()`, which rounds half away from zero: PostgreSQL's rule for
//! `numeric`. (For `double precision` PostgreSQL rounds half to even; a
//! float exactly halfway between two integers still rounds away from zero
//! here.)

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
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

/// A float constant cast to a decimal, as the decimal its shortest text
/// spells, rounded half away from zero to the decimal's scale; left as
/// it is when the value does not fit (the cast then reports it).
pub(crate) fn exact_decimal(expr: Expr) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let (DataType::Decimal128(precision, scale), Expr::Literal(value, None)) =
        (field.data_type(), inner.as_ref())
    else {
        return Ok(Transformed::no(expr));
    };
    let text = match value {
        ScalarValue::Float64(Some(v)) if v.is_finite() => v.to_string(),
        ScalarValue::Float32(Some(v)) if v.is_finite() => v.to_string(),
        _ => return Ok(Transformed::no(expr)),
    };
    match decimal_from_text(&text, *precision, *scale) {
        Some(units) => Ok(Transformed::yes(Expr::Literal(
            ScalarValue::Decimal128(Some(units), *precision, *scale),
            None,
        ))),
        None => Ok(Transformed::no(expr)),
    }
}

/// `text` (plain digits, a sign, a point; no exponent) in units of
/// 10^-`scale`, rounded half away from zero; None when it does not fit
/// `precision` digits.
pub(crate) fn decimal_from_text(text: &str, precision: u8, scale: i8) -> Option<i128> {
    let scale = usize::try_from(scale).ok()?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let kept: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(scale)
        .collect();
    let mut units: i128 = format!("{whole}{kept}").parse().ok()?;
    if fraction.as_bytes().get(scale).is_some_and(|d| *d >= b'5') {
        units = units.checked_add(1)?;
    }
    let limit = 10i128.checked_pow(u32::from(precision))?;
    (units < limit).then_some(if negative { -units } else { units })
}

/// Floats stored into a decimal column, each as the decimal its shortest
/// text spells, rounded half away from zero (`1.005` into `DECIMAL(5,2)`
/// is 1.01, as PostgreSQL stores its exact literal); None when the input
/// is not floats; Err names a value that does not fit.
pub(crate) fn decimals_from_floats(
    array: &dyn arrow::array::Array,
    precision: u8,
    scale: i8,
) -> Option<std::result::Result<arrow::array::ArrayRef, String>> {
    use arrow::array::{AsArray, Decimal128Array};
    use arrow::datatypes::{Float32Type, Float64Type};
    let texts: Vec<Option<String>> = match array.data_type() {
        DataType::Float64 => array
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.map(|v| v.to_string()))
            .collect(),
        DataType::Float32 => array
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map(|v| v.to_string()))
            .collect(),
        _ => return None,
    };
    let mut units = Vec::with_capacity(texts.len());
    for text in texts {
        let Some(text) = text else {
            units.push(None);
            continue;
        };
        match decimal_from_text(&text, precision, scale) {
            Some(value) => units.push(Some(value)),
            None => {
                return Some(Err(format!(
                    "{text} does not fit NUMERIC({precision},{scale})"
                )));
            }
        }
    }
    let decimals = Decimal128Array::from(units).with_precision_and_scale(precision, scale);
    Some(
        decimals
            .map(|d| std::sync::Arc::new(d) as arrow::array::ArrayRef)
            .map_err(|e| e.to_string()),
    )
}

/// A float or decimal column stored into an integer column, rounded
/// first, half away from zero, as PostgreSQL stores `2.5` into an `int`
/// as 3 (arrow's cast truncates); None for any other input.
pub(crate) fn rounded_for_integer(
    array: &arrow::array::ArrayRef,
) -> std::result::Result<Option<arrow::array::ArrayRef>, arrow::error::ArrowError> {
    use arrow::array::{ArrayRef, AsArray};
    use arrow::datatypes::{Float32Type, Float64Type};
    use std::sync::Arc;
    Ok(Some(match array.data_type() {
        DataType::Float64 => Arc::new(
            array
                .as_primitive::<Float64Type>()
                .unary::<_, Float64Type>(f64::round),
        ) as ArrayRef,
        DataType::Float32 => Arc::new(
            array
                .as_primitive::<Float32Type>()
                .unary::<_, Float32Type>(f32::round),
        ),
        // arrow rescales a decimal rounding half away from zero.
        DataType::Decimal128(precision, scale) if *scale > 0 => {
            arrow::compute::cast(array, &DataType::Decimal128(*precision, 0))?
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::decimal_from_text;

    #[test]
    fn decimal_text_rounds_half_away_from_zero() {
        assert_eq!(decimal_from_text("1.005", 5, 2), Some(101));
        assert_eq!(decimal_from_text("-1.005", 5, 2), Some(-101));
        assert_eq!(decimal_from_text("1.004", 5, 2), Some(100));
        assert_eq!(decimal_from_text("2.5", 5, 0), Some(3));
        assert_eq!(decimal_from_text("7", 5, 2), Some(700));
        assert_eq!(decimal_from_text("999.995", 5, 2), None);
        assert_eq!(decimal_from_text("0.1", 3, 3), Some(100));
    }
}
