//! Decimals and floats as PostgreSQL's `numeric` and `double precision`
//! behave. Number literals with a fraction stay DataFusion's binary floats
//! (ARCHITECTURE.md says why); what DataFusion does unlike PostgreSQL
//! around them is corrected here:
//!
//! - **Where a float column meets a decimal** in a comparison or a choice
//!   between values (`=`, `<`, `IN`, `BETWEEN`, `CASE`, `COALESCE`,
//!   `NULLIF`, `GREATEST`, `LEAST`), DataFusion casts the float to
//!   `DECIMAL(30,15)`: a float of 1e-20 equals 0, one over 10^15 fails
//!   the cast. PostgreSQL casts the `numeric` to `double precision` (its
//!   preferred numeric type). [`FloatOverNumeric`] casts the decimal side
//!   to a float before type coercion sees the pair. A number literal
//!   (`n = 0.3`; `numeric` in PostgreSQL) is left to DataFusion, which
//!   casts it to the decimal exactly, from its shortest text
//!   (`exact_decimal` in [`super::casts`]), as PostgreSQL compares two
//!   numerics.
//! - **`UNION` of a float and a decimal column** became a decimal (wrong
//!   digits for small floats, 22003 for large ones); PostgreSQL's column is
//!   a float. [`ColumnTypes`], an analyzer rule placed before type
//!   coercion, casts the decimal inputs to floats (again not for a number
//!   literal). It also casts `VALUES` rows back to their columns' types
//!   where the division below changed a row's type.
//! - **Arithmetic** ([`NumericArithmetic`], before type coercion, so what
//!   contains its result is coerced to its real type):
//!   - a number literal beside a decimal is the exact decimal it spells
//!     (`n * 1.1`, `0.3::numeric / 0.1` = 3, not 2.9999999999999996);
//!   - decimal division kept 4 more fractional digits than the dividend
//!     and truncated (`n / 3` of 1.25 was 0.41666). PostgreSQL keeps at
//!     least 16 significant digits and rounds half away from zero. A
//!     decimal divided by a decimal or an integer is [`NumericDivide`],
//!     whose scale is fixed by the operand types (a column has one type;
//!     PostgreSQL's scale follows each value): [`DIVISION_SCALE_MAX`]
//!     fractional digits where the quotient's integer digits leave room,
//!     never fewer than [`DIVISION_SCALE_MIN`] nor than either operand's
//!     scale, rounded half away from zero. Division by zero is 22012, a
//!     quotient that does not fit 38 digits 22003;
//!   - a `double precision` division by zero gave Infinity or NaN:
//!     [`FloatDivide`] raises 22012 (`NaN / 0` stays NaN).
//! - **Decimal → float casts** ([`exact_float`], after type coercion so
//!   coercion's casts are covered): arrow's missed the nearest double;
//!   [`NumericToFloat`] lands on it.
//! - **`avg` of a decimal** kept 4 more fractional digits, truncated
//!   (`avg` of 1, 2, 2 as `NUMERIC(10,2)` was 1.666666; PostgreSQL
//!   1.6666666666666667). [`WideAverage`] averages the argument cast to
//!   [`AVERAGE_EXTRA_DIGITS`] more fractional digits, as far as the sum
//!   keeps DataFusion's 10 digits of headroom.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, ArrowNativeTypeOp, AsArray, Decimal128Array, Float64Array,
};
use datafusion::arrow::compute::kernels::arity::try_binary;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef, Float64Type, i256};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::{
    Alias, Between, BinaryExpr, Case, Cast, InList, ScalarFunction,
};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, Projection, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Union, Values, Volatility, cast,
};
use datafusion::optimizer::AnalyzerRule;

use super::casts::decimal_from_text;
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
/// float other than a number literal (`exprs` comes back in order,
/// whole).
fn floats_where_mixed(exprs: Vec<Expr>, schema: &DFSchema) -> Transformed<Vec<Expr>> {
    let types: Vec<Option<DataType>> = exprs.iter().map(|e| e.get_type(schema).ok()).collect();
    let float_column = exprs
        .iter()
        .zip(&types)
        .any(|(e, t)| t.as_ref().is_some_and(DataType::is_floating) && !is_float_literal(e));
    let decimal = types.iter().flatten().any(DataType::is_decimal);
    if !float_column || !decimal {
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

/// Whether `expr` is a number literal with a fraction as DataFusion reads
/// it (a float; PostgreSQL's is a `numeric`), possibly negated, that the
/// decimal DataFusion would cast it to (`DECIMAL(30,15)`) holds. A larger
/// or smaller one (`1e20`, `1e-20`; also `1e20::float8`, which planning
/// folds into a literal) is taken as a float.
fn is_float_literal(expr: &Expr) -> bool {
    let fits = |v: f64| v == 0.0 || (1e-15..1e15).contains(&v.abs());
    match expr {
        Expr::Literal(ScalarValue::Float64(Some(v)), _) => fits(*v),
        Expr::Literal(ScalarValue::Float32(Some(v)), _) => fits(f64::from(*v)),
        Expr::Literal(ScalarValue::Float64(None) | ScalarValue::Float32(None), _) => true,
        Expr::Negative(inner) | Expr::Alias(Alias { expr: inner, .. }) => is_float_literal(inner),
        _ => false,
    }
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
pub struct ColumnTypes;

impl AnalyzerRule for ColumnTypes {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| match plan {
            LogicalPlan::Union(union) => union_floats(union),
            LogicalPlan::Values(values) => values_as_planned(values),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "driftdb_column_types"
    }
}

/// `union` with each input's decimal column cast to a float where another
/// input has a float in that place.
fn union_floats(union: Union) -> Result<Transformed<LogicalPlan>> {
    let width = union.schema.fields().len();
    let mixed: Vec<bool> = (0..width)
        .map(|i| {
            let types = || union.inputs.iter().map(|p| p.schema().field(i).data_type());
            let float_column = union
                .inputs
                .iter()
                .any(|p| p.schema().field(i).data_type().is_floating() && !constant_at(p, i));
            float_column && types().any(DataType::is_decimal)
        })
        .collect();
    // An input rewritten below (a nested union) may have changed type.
    let stale = union.inputs.first().is_some_and(|first| {
        let types = |fields: &datafusion::arrow::datatypes::Fields| -> Vec<DataType> {
            fields.iter().map(|f| f.data_type().clone()).collect()
        };
        types(first.schema().fields()) != types(union.schema.fields())
    });
    if !mixed.contains(&true) && !stale {
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

/// `values` with each row's expression cast to its column's type where
/// a rewrite before type coercion changed it (`VALUES (1::numeric / 7)`:
/// the column was typed by DataFusion's division).
fn values_as_planned(values: Values) -> Result<Transformed<LogicalPlan>> {
    let schema = Arc::clone(&values.schema);
    let mut changed = false;
    let rows = values
        .values
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(schema.fields())
                .map(|(e, field)| match e.get_type(&DFSchema::empty()) {
                    Ok(t) if &t != field.data_type() && !t.is_null() => {
                        changed = true;
                        cast(e, field.data_type().clone())
                    }
                    _ => e,
                })
                .collect()
        })
        .collect();
    let values = LogicalPlan::Values(Values {
        schema,
        values: rows,
    });
    Ok(Transformed::new_transformed(values, changed))
}

/// Whether column `i` of a union's input is a number literal it selects.
fn constant_at(input: &LogicalPlan, i: usize) -> bool {
    match input {
        LogicalPlan::Projection(p) => p.expr.get(i).is_some_and(is_float_literal),
        _ => false,
    }
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

/// See the module page.
#[derive(Debug, Default)]
pub struct NumericArithmetic;

impl FunctionRewrite for NumericArithmetic {
    fn name(&self) -> &str {
        "driftdb_numeric_arithmetic"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
            return Ok(Transformed::no(expr));
        };
        let (Ok(l), Ok(r)) = (left.get_type(schema), right.get_type(schema)) else {
            return Ok(unchanged(left, op, right, false));
        };
        // A number literal beside a decimal is the exact decimal it spells.
        let exact = |e: Box<Expr>, other: &DataType| match other.is_decimal() {
            true => exact_decimal_literal(&e).map(Box::new).unwrap_or(e),
            false => e,
        };
        let exact_sides = is_arithmetic(&op) && (l.is_decimal() || r.is_decimal());
        let (left, right) = match exact_sides {
            true => (exact(left, &r), exact(right, &l)),
            false => (left, right),
        };
        let (l, r) = (left.get_type(schema)?, right.get_type(schema)?);
        let decimal = l.is_decimal() || r.is_decimal();
        let rewritten = match (op, floats_divided(&l, &r)) {
            (Operator::Divide, true) => {
                let args = vec![
                    cast(*left, DataType::Float64),
                    cast(*right, DataType::Float64),
                ];
                ScalarUDF::new_from_impl(FloatDivide::default()).call(args)
            }
            (Operator::Divide, false) if decimal => {
                match (as_decimal(&left, &l), as_decimal(&right, &r)) {
                    (Some(a), Some(b)) => {
                        ScalarUDF::new_from_impl(NumericDivide::default()).call(vec![a, b])
                    }
                    _ => return Ok(unchanged(left, op, right, exact_sides)),
                }
            }
            _ => return Ok(unchanged(left, op, right, exact_sides)),
        };
        Ok(Transformed::yes(rewritten))
    }
}

/// The operation as it was, its literals perhaps made exact decimals.
fn unchanged(left: Box<Expr>, op: Operator, right: Box<Expr>, exact: bool) -> Transformed<Expr> {
    Transformed::new_transformed(Expr::BinaryExpr(BinaryExpr { left, op, right }), exact)
}

fn is_arithmetic(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo
    )
}

/// A float literal (a number written with a fraction) as the decimal its
/// shortest text spells (`0.1` → 0.1 exactly), when 38 digits hold it.
fn exact_decimal_literal(expr: &Expr) -> Option<Expr> {
    let value = match expr {
        Expr::Literal(ScalarValue::Float64(Some(v)), _) => *v,
        Expr::Negative(inner) => match inner.as_ref() {
            Expr::Literal(ScalarValue::Float64(Some(v)), _) => -*v,
            _ => return None,
        },
        _ => return None,
    };
    if !value.is_finite() {
        return None;
    }
    let text = value.to_string();
    let scale = text.split_once('.').map_or(0, |(_, f)| f.len());
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let precision = u8::try_from(digits.max(scale + 1)).ok()?;
    let scale = i8::try_from(scale).ok()?;
    if precision > DECIMAL_DIGITS_MAX {
        return None;
    }
    let units = decimal_from_text(&text, precision, scale)?;
    Some(Expr::Literal(
        ScalarValue::Decimal128(Some(units), precision, scale),
        None,
    ))
}

/// `expr` with a cast of a decimal to a float as [`NumericToFloat`]
/// (arrow's divides in floating point and can miss the nearest double:
/// `123456789.123` became 123456789.12300001, unequal to the float
/// 123456789.123). Applied after type coercion, so coercion's casts are
/// covered too.
pub(crate) fn exact_float(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if field.data_type() != &DataType::Float64
        || !matches!(inner.get_type(schema), Ok(DataType::Decimal128(..)))
    {
        return Ok(Transformed::no(expr));
    }
    let udf = ScalarUDF::new_from_impl(NumericToFloat::default());
    Ok(Transformed::yes(udf.call(vec![inner.as_ref().clone()])))
}

/// A 128-bit decimal as the nearest `double precision` value.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericToFloat {
    signature: Signature,
}

impl Default for NumericToFloat {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for NumericToFloat {
    fn name(&self) -> &str {
        "numeric_to_float8"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [DataType::Decimal128(..)] => Ok(DataType::Float64),
            other => Err(DataFusionError::Internal(format!(
                "numeric_to_float8 takes a decimal, not {other:?}"
            ))),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        field_nullable_as_arguments(self, args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let DataType::Decimal128(_, scale) = args.args[0].data_type() else {
            return Err(DataFusionError::Internal(
                "numeric_to_float8: not a decimal".into(),
            ));
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let values = arrays[0].as_primitive::<Decimal128Type>();
        let floats: Float64Array = values.unary(|v| nearest_double(v, scale));
        single_or_array(Arc::new(floats), &args.args)
    }
}

/// `units` · 10^-`scale` rounded to the nearest double: one exact division
/// where both operands are exact doubles, else through its text (Rust's
/// parser rounds correctly).
fn nearest_double(units: i128, scale: i8) -> f64 {
    const EXACT_INTEGER: u128 = 1 << 53;
    const EXACT_POWER_OF_TEN: i8 = 22;
    if units.unsigned_abs() < EXACT_INTEGER && (0..=EXACT_POWER_OF_TEN).contains(&scale) {
        return units as f64 / 10f64.powi(i32::from(scale));
    }
    format!("{units}e{}", -i32::from(scale))
        .parse()
        .unwrap_or(f64::NAN)
}

/// Whether a division of these types is a `double precision` one: of
/// numbers, one a `double precision` or a float beside a decimal (two
/// `real`s, or a `real` and an integer, stay DataFusion's).
fn floats_divided(l: &DataType, r: &DataType) -> bool {
    let number = |t: &DataType| t.is_numeric() || t.is_null();
    let double = matches!(l, DataType::Float64) || matches!(r, DataType::Float64);
    let mixed = (l.is_floating() && r.is_decimal()) || (r.is_floating() && l.is_decimal());
    number(l) && number(r) && (double || mixed)
}

/// `double precision` division as PostgreSQL's: 22012 for a zero divisor
/// (arrow's gives infinity or NaN).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FloatDivide {
    signature: Signature,
}

impl Default for FloatDivide {
    fn default() -> Self {
        Self {
            signature: Signature::exact(
                vec![DataType::Float64, DataType::Float64],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for FloatDivide {
    fn name(&self) -> &str {
        "float_div"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        field_nullable_as_arguments(self, args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (a, b) = (
            arrays[0].as_primitive::<Float64Type>(),
            arrays[1].as_primitive::<Float64Type>(),
        );
        let quotient: Float64Array =
            try_binary(a, b, |x: f64, y: f64| match y == 0.0 && !x.is_nan() {
                true => Err(ArrowError::DivideByZero),
                false => Ok(x / y),
            })?;
        single_or_array(Arc::new(quotient), &args.args)
    }
}

/// The result field of a function that returns NULL only for a NULL
/// argument (a cast's nullability, kept when it replaces one).
fn field_nullable_as_arguments(
    udf: &dyn ScalarUDFImpl,
    args: ReturnFieldArgs<'_>,
) -> Result<FieldRef> {
    let types: Vec<DataType> = args
        .arg_fields
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
    Ok(Arc::new(Field::new(
        udf.name(),
        udf.return_type(&types)?,
        nullable,
    )))
}

/// `values` as a function's result: a scalar when every argument was one
/// (`values` then has one row, whatever the batch's length).
fn single_or_array(values: ArrayRef, args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    match scalar && values.len() == 1 {
        true => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &values, 0,
        )?)),
        false => Ok(ColumnarValue::Array(values)),
    }
}

/// `expr` (of type `data_type`) as a 128-bit decimal: itself, or an
/// integer cast to one wide enough; None for any other type.
fn as_decimal(expr: &Expr, data_type: &DataType) -> Option<Expr> {
    let digits = match data_type {
        DataType::Decimal128(..) => return Some(expr.clone()),
        DataType::Int8 | DataType::UInt8 => 3,
        DataType::Int16 | DataType::UInt16 => 5,
        DataType::Int32 | DataType::UInt32 => 10,
        DataType::Int64 | DataType::UInt64 => 20,
        _ => return None,
    };
    Some(cast(expr.clone(), DataType::Decimal128(digits, 0)))
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

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        field_nullable_as_arguments(self, args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
        let (dividend, divisor) = decimal_pair(&types)?;
        let scale = quotient_scale(dividend, divisor);
        let (s1, s2) = (dividend.1, divisor.1);
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
        single_or_array(Arc::new(quotient), &args.args)
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
    fn decimals_become_their_nearest_double() {
        assert_eq!(nearest_double(123456789123, 3), 123456789.123);
        assert_eq!(nearest_double(1, 30), 1e-30);
        assert_eq!(nearest_double(-25, 1), -2.5);
        let wide = 12345678901234567890123456789_i128;
        assert_eq!(nearest_double(wide, 10), 1234567890123456789.0123456789);
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
