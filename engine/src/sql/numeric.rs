//! Exact numbers as PostgreSQL reads them.
//!
//! A number written with a fraction (`0.1`, `1.005`) is an exact decimal,
//! as PostgreSQL's `numeric` literal is: DataFusion reads it so under
//! `parse_float_as_decimal` (set by [`super::session`]); exponents and
//! numbers too long for a 128-bit decimal are handled by the parser
//! (`plain_number` in [`super::parser`]). Two things DataFusion does with
//! decimals are not PostgreSQL's, and are corrected here:
//!
//! - **Where a float meets a decimal** in a comparison or a choice between
//!   values (`=`, `<`, `IN`, `BETWEEN`, `CASE`, `COALESCE`, `NULLIF`,
//!   `GREATEST`, `LEAST`), DataFusion casts the float to `DECIMAL(30,15)`:
//!   `1e-20 > 0.0` is false, and a float over 10^15 fails the cast.
//!   PostgreSQL casts the `numeric` to `double precision` (its preferred
//!   numeric type). [`FloatOverNumeric`] casts the decimal side to a
//!   float before type coercion sees the pair. (In arithmetic DataFusion
//!   already computes a float and a decimal as floats.)
//! - **Decimal division** kept 4 more fractional digits than the dividend
//!   and truncated (`1.0 / 3` = 0.33333, `1.25 / 3` = 0.41666).
//!   PostgreSQL keeps at least 16 significant digits and rounds half away
//!   from zero. [`numeric_division`] (applied after type coercion by
//!   [`super::expr_rules`]) turns every decimal `/` into
//!   [`NumericDivide`], whose scale is fixed by the operand types (a
//!   column has one type; PostgreSQL's scale follows each value):
//!   [`DIVISION_SCALE_MAX`] fractional digits where the quotient's integer
//!   digits leave room, never fewer than [`DIVISION_SCALE_MIN`] nor than
//!   either operand's scale, rounded half away from zero. Division by zero
//!   is 22012, a quotient that does not fit 38 digits 22003.
//! - **`avg` of a decimal** kept 4 more fractional digits, truncated
//!   (`avg` of 1, 2, 2 as `NUMERIC(10,2)` was 1.666666; PostgreSQL
//!   1.6666666666666667). [`WideAverage`] averages the argument cast to
//!   [`AVERAGE_EXTRA_DIGITS`] more fractional digits, as far as the sum
//!   keeps DataFusion's 10 digits of headroom.
//! - **`UNION` of a float and a decimal column** became a decimal (wrong
//!   digits for small floats, 22003 for large ones); PostgreSQL's column is
//!   a float. [`UnionFloats`], an analyzer rule placed before type
//!   coercion, casts the decimal inputs to floats.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, ArrowNativeTypeOp, AsArray, Decimal128Array};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, i256};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result};
use datafusion::logical_expr::expr::{Between, BinaryExpr, Case, InList, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, Projection, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Union, Volatility, cast,
};
use datafusion::optimizer::AnalyzerRule;

use super::checked_arithmetic::with_aggregate_arguments;

/// Digits of a 128-bit decimal.
const DECIMAL_DIGITS_MAX: u8 = 38;

/// Fractional digits of a decimal quotient when its integer digits leave
/// room (PostgreSQL shows 20 for `1.0 / 3`).
pub(crate) const DIVISION_SCALE_MAX: i8 = 20;

/// Fractional digits a decimal quotient always keeps (PostgreSQL keeps at
/// least 16 significant digits), even when its operands' types could
/// hold a quotient wider than the remaining 22 integer digits (such a
/// quotient is 22003).
pub(crate) const DIVISION_SCALE_MIN: i8 = 16;

/// Fractional digits [`WideAverage`] adds to a decimal before averaging.
pub(crate) const AVERAGE_EXTRA_DIGITS: u8 = 12;

/// Digits of headroom DataFusion's decimal `sum` (and `avg`'s sum) keeps
/// over its argument's precision; [`WideAverage`] keeps them.
const SUM_HEADROOM_DIGITS: u8 = 10;

/// See the module page.
#[derive(Debug, Default)]
pub struct FloatOverNumeric;

impl FunctionRewrite for FloatOverNumeric {
    fn name(&self) -> &str {
        "driftdb_float_over_numeric"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        let floats = |exprs: Vec<Expr>| floats_where_mixed(exprs, schema);
        Ok(match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) if compares(&op) => {
                floats(vec![*left, *right]).update_data(|pair| {
                    let [left, right] = exact::<2>(pair);
                    Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)))
                })
            }
            Expr::InList(InList {
                expr,
                list,
                negated,
            }) => floats([vec![*expr], list].concat()).update_data(|mut all| {
                let list = all.split_off(1);
                let [expr] = exact::<1>(all);
                Expr::InList(InList::new(Box::new(expr), list, negated))
            }),
            Expr::Between(Between {
                expr,
                negated,
                low,
                high,
            }) => floats(vec![*expr, *low, *high]).update_data(|all| {
                let [expr, low, high] = exact::<3>(all).map(Box::new);
                Expr::Between(Between::new(expr, negated, low, high))
            }),
            Expr::Case(case) => floats_in_case(case, schema)?,
            Expr::ScalarFunction(f) if chooses_among_arguments(f.func.name()) => {
                let func = f.func;
                floats(f.args)
                    .update_data(|args| Expr::ScalarFunction(ScalarFunction::new_udf(func, args)))
            }
            other => Transformed::no(other),
        })
    }
}

/// Comparisons.
fn compares(op: &Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        Eq | NotEq | Lt | LtEq | Gt | GtEq | IsDistinctFrom | IsNotDistinctFrom
    )
}

/// The `N` expressions a rewrite of `N` gave back.
fn exact<const N: usize>(exprs: Vec<Expr>) -> [Expr; N] {
    exprs
        .try_into()
        .unwrap_or_else(|_| unreachable!("a rewrite keeps its expressions' count"))
}

/// Functions whose result is one of their arguments, so the arguments
/// are unified to one type.
fn chooses_among_arguments(name: &str) -> bool {
    matches!(
        name,
        "coalesce" | "nullif" | "greatest" | "least" | "nvl" | "ifnull"
    )
}

/// `exprs` with each decimal cast to a float when another of them is a
/// float (`exprs` comes back in order, whole).
fn floats_where_mixed(exprs: Vec<Expr>, schema: &DFSchema) -> Transformed<Vec<Expr>> {
    let types: Vec<Option<DataType>> = exprs.iter().map(|e| e.get_type(schema).ok()).collect();
    let has = |wanted: fn(&DataType) -> bool| types.iter().flatten().any(wanted);
    if !has(DataType::is_floating) || !has(DataType::is_decimal) {
        return Transformed::no(exprs);
    }
    let exprs = exprs
        .into_iter()
        .zip(&types)
        .map(|(e, t)| match t {
            Some(t) if t.is_decimal() => cast(e, DataType::Float64),
            _ => e,
        })
        .collect();
    Transformed::yes(exprs)
}

/// A `CASE` with floats in place of decimals among its results, and among
/// its operand and the values it is compared with.
fn floats_in_case(case: Case, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Case {
        expr,
        when_then_expr,
        else_expr,
    } = case;
    let (whens, thens): (Vec<Expr>, Vec<Expr>) =
        when_then_expr.into_iter().map(|(w, t)| (*w, *t)).unzip();
    let count = whens.len();
    let (whens, operand, compared) = match expr {
        Some(operand) => {
            let mut all = floats_where_mixed([whens, vec![*operand]].concat(), schema);
            let operand = all.data.pop();
            (all.data, operand, all.transformed)
        }
        None => (whens, None, false),
    };
    let results = match else_expr {
        Some(e) => [thens, vec![*e]].concat(),
        None => thens,
    };
    let mut results = floats_where_mixed(results, schema);
    let else_expr = (results.data.len() > count).then(|| results.data.pop().expect("else"));
    let case = Case::new(
        operand.map(Box::new),
        whens
            .into_iter()
            .zip(results.data)
            .map(|(w, t)| (Box::new(w), Box::new(t)))
            .collect(),
        else_expr.map(Box::new),
    );
    Ok(match compared || results.transformed {
        true => Transformed::yes(Expr::Case(case)),
        false => Transformed::no(Expr::Case(case)),
    })
}

/// See the module page.
#[derive(Debug, Default)]
pub struct WideAverage;

impl FunctionRewrite for WideAverage {
    fn name(&self) -> &str {
        "driftdb_wide_average"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        Ok(with_aggregate_arguments(expr, "avg", |args| {
            widened_average(args, schema)
        }))
    }
}

/// `args` with a lone 128-bit decimal argument given more fractional
/// digits (see the module page).
fn widened_average(args: &[Expr], schema: &DFSchema) -> Option<Vec<Expr>> {
    let [arg] = args else { return None };
    let DataType::Decimal128(precision, scale) = arg.get_type(schema).ok()? else {
        return None;
    };
    let room = DECIMAL_DIGITS_MAX.checked_sub(precision + SUM_HEADROOM_DIGITS)?;
    let extra = room.min(AVERAGE_EXTRA_DIGITS);
    let wide = DataType::Decimal128(precision + extra, scale + extra as i8);
    (extra > 0).then(|| vec![cast(arg.clone(), wide)])
}

/// See the module page.
#[derive(Debug, Default)]
pub struct UnionFloats;

impl AnalyzerRule for UnionFloats {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| match plan {
            LogicalPlan::Union(union) => union_floats(union),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "driftdb_union_floats"
    }
}

/// `union` with each input's decimal column cast to a float where another
/// input has a float in that place.
fn union_floats(union: Union) -> Result<Transformed<LogicalPlan>> {
    let width = union.schema.fields().len();
    let mixed: Vec<bool> = (0..width)
        .map(|i| {
            let types = || union.inputs.iter().map(|p| p.schema().field(i).data_type());
            types().any(DataType::is_floating) && types().any(DataType::is_decimal)
        })
        .collect();
    if !mixed.contains(&true) {
        return Ok(Transformed::no(LogicalPlan::Union(union)));
    }
    let inputs = union
        .inputs
        .into_iter()
        .map(|input| floats_in_place(input, &mixed))
        .collect::<Result<Vec<_>>>()?;
    // The union's own column types were the first input's: derived again.
    Union::try_new_with_loose_types(inputs).map(|union| Transformed::yes(LogicalPlan::Union(union)))
}

/// `input` with its decimal columns cast to floats where `mixed` says so.
fn floats_in_place(input: Arc<LogicalPlan>, mixed: &[bool]) -> Result<Arc<LogicalPlan>> {
    let schema = Arc::clone(input.schema());
    let cast_here = |i: usize| mixed[i] && schema.field(i).data_type().is_decimal();
    if !(0..mixed.len()).any(cast_here) {
        return Ok(input);
    }
    let exprs = schema
        .columns()
        .into_iter()
        .enumerate()
        .map(|(i, column)| match cast_here(i) {
            true => cast(Expr::Column(column), DataType::Float64).alias(schema.field(i).name()),
            false => Expr::Column(column),
        })
        .collect::<Vec<_>>();
    Projection::try_new(exprs, input).map(|p| Arc::new(LogicalPlan::Projection(p)))
}

/// `expr` as [`NumericDivide`] when it divides two 128-bit decimals.
pub(crate) fn numeric_division(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Divide,
        right,
    }) = &expr
    else {
        return Ok(Transformed::no(expr));
    };
    let (Ok(DataType::Decimal128(..)), Ok(DataType::Decimal128(..))) =
        (left.get_type(schema), right.get_type(schema))
    else {
        return Ok(Transformed::no(expr));
    };
    let udf = ScalarUDF::new_from_impl(NumericDivide::default());
    Ok(Transformed::yes(
        udf.call(vec![left.as_ref().clone(), right.as_ref().clone()]),
    ))
}

/// The scale of a quotient of decimals of these types (see the module
/// page).
pub(crate) fn quotient_scale(dividend: (u8, i8), divisor: (u8, i8)) -> i8 {
    let ((p1, s1), (_, s2)) = (dividend, divisor);
    let integer_digits = (p1 as i8 - s1).max(0) + s2.max(0);
    let room = DECIMAL_DIGITS_MAX as i8 - integer_digits;
    room.clamp(DIVISION_SCALE_MIN, DIVISION_SCALE_MAX)
        .max(s1)
        .max(s2)
        .min(DECIMAL_DIGITS_MAX as i8)
}

/// Decimal division as PostgreSQL's `numeric` divides (see the module
/// page).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericDivide {
    signature: Signature,
}

impl Default for NumericDivide {
    fn default() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for NumericDivide {
    fn name(&self) -> &str {
        "numeric_div"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let (dividend, divisor) = decimal_pair(args)?;
        Ok(DataType::Decimal128(
            DECIMAL_DIGITS_MAX,
            quotient_scale(dividend, divisor),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
        let (dividend, divisor) = decimal_pair(&types)?;
        let scale = quotient_scale(dividend, divisor);
        let (s1, s2) = (dividend.1, divisor.1);
        let rows = args.number_rows;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (a, b) = (
            arrays[0].as_primitive::<Decimal128Type>(),
            arrays[1].as_primitive::<Decimal128Type>(),
        );
        let shift = i256::from_i128(10)
            .pow_checked((scale - s1 + s2) as u32)
            .ok();
        let quotient: Decimal128Array = a
            .iter()
            .zip(b.iter())
            .map(|pair| match pair {
                (Some(a), Some(b)) => divide(a, b, shift).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(DECIMAL_DIGITS_MAX, scale)?;
        let quotient: ArrayRef = Arc::new(quotient);
        match scalar && rows <= 1 && quotient.len() == 1 {
            true => Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&quotient, 0)?,
            )),
            false => Ok(ColumnarValue::Array(quotient)),
        }
    }
}

/// The (precision, scale) of two 128-bit decimal arguments.
fn decimal_pair(args: &[DataType]) -> Result<((u8, i8), (u8, i8))> {
    match args {
        [DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)] => {
            Ok(((*p1, *s1), (*p2, *s2)))
        }
        other => Err(DataFusionError::Internal(format!(
            "numeric_div takes two decimals, not {other:?}"
        ))),
    }
}

/// `a · shift / b`, rounded half away from zero, as a 38-digit decimal.
fn divide(a: i128, b: i128, shift: Option<i256>) -> Result<i128> {
    if b == 0 {
        return Err(ArrowError::DivideByZero.into());
    }
    let overflow = || ArrowError::ArithmeticOverflow("numeric field overflow".into());
    let dividend = i256::from_i128(a)
        .checked_mul(shift.ok_or_else(overflow)?)
        .ok_or_else(overflow)?;
    let divisor = i256::from_i128(b);
    let (mut quotient, remainder) = (dividend / divisor, dividend % divisor);
    let twice = remainder.wrapping_abs().wrapping_mul(i256::from_i128(2));
    if twice >= divisor.wrapping_abs() {
        let away = match (a < 0) == (b < 0) {
            true => i256::ONE,
            false => i256::MINUS_ONE,
        };
        quotient = quotient.wrapping_add(away);
    }
    let limit = i256::from_i128(10).wrapping_pow(DECIMAL_DIGITS_MAX as u32);
    match quotient.wrapping_abs() < limit {
        true => Ok(quotient.as_i128()),
        false => Err(overflow().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotient_keeps_sixteen_to_twenty_fractional_digits() {
        // 1.0 / 3 (the 3 coerced to DECIMAL(20,0)).
        assert_eq!(quotient_scale((2, 1), (20, 0)), 20);
        // A sum of bigints over a count: 22 integer digits left.
        assert_eq!(quotient_scale((38, 0), (20, 0)), 16);
        // An operand's own scale is never cut.
        assert_eq!(quotient_scale((38, 30), (5, 2)), 30);
    }

    #[test]
    fn division_rounds_half_away_from_zero() {
        let shift = |digits: u32| i256::from_i128(10).pow_checked(digits).ok();
        // 1.25 / 3 at scale 4: 0.41666… → 0.4167.
        assert_eq!(divide(125, 3, shift(2)).unwrap(), 4167);
        assert_eq!(divide(-125, 3, shift(2)).unwrap(), -4167);
        // 1 / 8 at scale 2: 0.125 → 0.13, and −0.13.
        assert_eq!(divide(1, 8, shift(2)).unwrap(), 13);
        assert_eq!(divide(1, -8, shift(2)).unwrap(), -13);
        assert!(divide(1, 0, shift(2)).is_err());
    }
}
