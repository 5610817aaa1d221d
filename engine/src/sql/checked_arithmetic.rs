//! Integer arithmetic that refuses to overflow, as PostgreSQL's does:
//! `9223372036854775807 + 1` is 22003 ("bigint out of range"), where
//! arrow's default kernels wrap to −9223372036854775808 and DataFusion
//! keeps the wrapped value.
//!
//! Three places, one rule each:
//! - **Operators over columns**: [`CheckedIntegerArithmetic`], a physical
//!   optimizer rule, turns every integer `+`, `-`, `*` in projections,
//!   filters and aggregates (arguments, `FILTER` clauses, `GROUP BY`) into
//!   arrow's checked kernel (DataFusion's `fail_on_overflow`). Done on the
//!   physical plan so planning stays linear: a checked function call per
//!   operator made a 300-term sum take seconds to plan.
//! - **Constants**: DataFusion folds constant arithmetic while optimizing,
//!   with the wrapping kernel. [`folded`] (part of the analyzer pass in
//!   [`super::expr_rules`], so it runs first) folds integer constants
//!   itself, checked; a constant that overflows becomes a call that raises
//!   22003 when it is evaluated (so an arm of a `CASE` never taken stays
//!   harmless, as in PostgreSQL).
//! - **`sum`**: [`WidenedSum`] makes `sum(bigint)` sum as `DECIMAL(38,0)`:
//!   PostgreSQL's `sum(bigint)` is `numeric` and never overflows; 38 digits
//!   hold the sum of more than 10¹⁹ bigints.
//!
//! Unary minus of an integer becomes a checked `0 - x` the same way.
//! Left unchecked: arithmetic inside join conditions, window-function
//! arguments and sort keys that are not computed by a projection below
//! them.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::{Cast, WindowFunction};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility, WindowFunctionDefinition,
};
use datafusion::physical_expr::expressions::{BinaryExpr as PhysicalBinary, Literal, NegativeExpr};
use datafusion::physical_expr::{PhysicalExpr, PhysicalExprRef};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateInputMode, PhysicalGroupBy};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};

/// The operators that can overflow an integer.
fn may_overflow(op: &Operator) -> bool {
    matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply)
}

// ---------------------------------------------------------------------------
// Operators over columns: the physical plan.

/// See the module page.
#[derive(Debug, Default)]
pub struct CheckedIntegerArithmetic;

impl PhysicalOptimizerRule for CheckedIntegerArithmetic {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(checked_node).map(|t| t.data)
    }

    fn name(&self) -> &str {
        "driftdb_checked_integer_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` with its integer arithmetic checked, when it is a node kind
/// whose expressions can be replaced.
fn checked_node(node: Arc<dyn ExecutionPlan>) -> Result<Transformed<Arc<dyn ExecutionPlan>>> {
    let rebuilt: Option<Arc<dyn ExecutionPlan>> =
        if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
            checked_projection(projection)?
        } else if let Some(filter) = node.downcast_ref::<FilterExec>() {
            checked_filter(filter)?
        } else if let Some(aggregate) = node.downcast_ref::<AggregateExec>() {
            checked_aggregate(aggregate)?
        } else {
            None
        };
    Ok(match rebuilt {
        Some(plan) => Transformed::yes(plan),
        None => Transformed::no(node),
    })
}

fn checked_projection(projection: &ProjectionExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let input = projection.input();
    let schema = input.schema();
    let mut changed = false;
    let exprs = projection
        .expr()
        .iter()
        .map(|p| {
            let expr = checked(&p.expr, &schema)?;
            changed |= expr.transformed;
            Ok(ProjectionExpr {
                expr: expr.data,
                alias: p.alias.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if !changed {
        return Ok(None);
    }
    let rebuilt =
        ProjectionExec::try_new_with_schema_metadata(exprs, input.clone(), &projection.schema())?;
    Ok(Some(Arc::new(rebuilt)))
}

fn checked_filter(filter: &FilterExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let predicate = checked(filter.predicate(), &filter.input().schema())?;
    if !predicate.transformed {
        return Ok(None);
    }
    let rebuilt = FilterExecBuilder::from(filter)
        .with_predicate(predicate.data)
        .build()?;
    Ok(Some(Arc::new(rebuilt)))
}

fn checked_aggregate(aggregate: &AggregateExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    // Only the first stage evaluates expressions over input rows; a final
    // stage merges partial states.
    if aggregate.mode().input_mode() != AggregateInputMode::Raw {
        return Ok(None);
    }
    let schema = aggregate.input().schema();
    let mut changed = false;
    let mut check = |expr: &PhysicalExprRef| -> Result<PhysicalExprRef> {
        let expr = checked(expr, &schema)?;
        changed |= expr.transformed;
        Ok(expr.data)
    };
    let mut aggr_expr = Vec::with_capacity(aggregate.aggr_expr().len());
    for function in aggregate.aggr_expr() {
        let args = function
            .expressions()
            .iter()
            .map(&mut check)
            .collect::<Result<_>>()?;
        let order_by = function
            .order_bys()
            .iter()
            .map(|s| check(&s.expr))
            .collect::<Result<_>>()?;
        // `None`: this function does not take new expressions; keep it.
        aggr_expr.push(match function.with_new_expressions(args, order_by) {
            Some(f) => Arc::new(f),
            None => function.clone(),
        });
    }
    let filter_expr = aggregate
        .filter_expr()
        .iter()
        .map(|f| f.as_ref().map(&mut check).transpose())
        .collect::<Result<Vec<_>>>()?;
    let group_by = aggregate.group_expr();
    let group_exprs = group_by
        .expr()
        .iter()
        .map(|(e, name)| Ok((check(e)?, name.clone())))
        .collect::<Result<Vec<_>>>()?;
    if !changed {
        return Ok(None);
    }
    let group_by = PhysicalGroupBy::new(
        group_exprs,
        group_by.null_expr().to_vec(),
        group_by.groups().to_vec(),
        group_by.has_grouping_set(),
    );
    let rebuilt = AggregateExec::try_new(
        *aggregate.mode(),
        group_by,
        aggr_expr,
        filter_expr,
        aggregate.input().clone(),
        aggregate.input_schema(),
    )?
    .with_limit_options(aggregate.limit_options());
    Ok(Some(Arc::new(rebuilt)))
}

/// `expr` with every integer `+`, `-`, `*` in it checked.
fn checked(expr: &PhysicalExprRef, schema: &Schema) -> Result<Transformed<PhysicalExprRef>> {
    Arc::clone(expr).transform_up(|e| {
        if e.downcast_ref::<NegativeExpr>().is_some() {
            return checked_negation(e, schema);
        }
        let Some(binary) = e.downcast_ref::<PhysicalBinary>() else {
            return Ok(Transformed::no(e));
        };
        // A type that cannot be derived here is left alone: the plan's own
        // check reports it.
        let integer = e.data_type(schema).is_ok_and(|t| t.is_integer());
        if !may_overflow(binary.op()) || !integer {
            return Ok(Transformed::no(e));
        }
        let checked =
            PhysicalBinary::new(binary.left().clone(), *binary.op(), binary.right().clone())
                .with_fail_on_overflow(true);
        Ok(Transformed::yes(Arc::new(checked) as Arc<dyn PhysicalExpr>))
    })
}

/// `-x` of an integer as a checked `0 - x` (arrow's negation wraps:
/// `-(-9223372036854775808)` stayed itself).
fn checked_negation(
    expr: PhysicalExprRef,
    schema: &Schema,
) -> Result<Transformed<PhysicalExprRef>> {
    let Some(negative) = expr.downcast_ref::<NegativeExpr>() else {
        return Ok(Transformed::no(expr));
    };
    let arg = negative.arg().clone();
    let signed = arg.data_type(schema).ok().filter(|t| t.is_signed_integer());
    let Some(data_type) = signed else {
        return Ok(Transformed::no(expr));
    };
    let zero = Arc::new(Literal::new(ScalarValue::new_zero(&data_type)?));
    let checked = PhysicalBinary::new(zero, Operator::Minus, arg).with_fail_on_overflow(true);
    Ok(Transformed::yes(Arc::new(checked)))
}

// ---------------------------------------------------------------------------
// Constants: folded here, checked.

/// `expr` folded when it is integer arithmetic on two integer constants
/// of one type (or a cast of an integer constant to another integer
/// type); an overflow becomes a call raising 22003 when evaluated.
pub(crate) fn folded(expr: Expr) -> Result<Transformed<Expr>> {
    match &expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if may_overflow(op) => {
            let (Expr::Literal(l, None), Expr::Literal(r, None)) = (left.as_ref(), right.as_ref())
            else {
                return Ok(Transformed::no(expr));
            };
            if !l.data_type().is_integer()
                || l.data_type() != r.data_type()
                || l.is_null()
                || r.is_null()
            {
                return Ok(Transformed::no(expr));
            }
            Ok(Transformed::yes(match integer_arithmetic(l, *op, r) {
                Some(value) => Expr::Literal(value, None),
                None => out_of_range(l.data_type()),
            }))
        }
        Expr::Cast(Cast { expr: inner, field }) => {
            let Expr::Literal(value, None) = inner.as_ref() else {
                return Ok(Transformed::no(expr));
            };
            let to = field.data_type();
            if !to.is_integer() || !value.data_type().is_integer() || value.is_null() {
                return Ok(Transformed::no(expr));
            }
            Ok(Transformed::yes(match value.cast_to(to) {
                Ok(cast) if !cast.is_null() => Expr::Literal(cast, None),
                _ => out_of_range(to.clone()),
            }))
        }
        _ => Ok(Transformed::no(expr)),
    }
}

/// `l op r` for two integers of one type, or `None` when it overflows.
fn integer_arithmetic(l: &ScalarValue, op: Operator, r: &ScalarValue) -> Option<ScalarValue> {
    macro_rules! arith {
        ($variant:ident, $a:expr, $b:expr) => {{
            let value = match op {
                Operator::Plus => $a.checked_add(*$b),
                Operator::Minus => $a.checked_sub(*$b),
                _ => $a.checked_mul(*$b),
            };
            value.map(|v| ScalarValue::$variant(Some(v)))
        }};
    }
    use ScalarValue::*;
    match (l, r) {
        (Int8(Some(a)), Int8(Some(b))) => arith!(Int8, a, b),
        (Int16(Some(a)), Int16(Some(b))) => arith!(Int16, a, b),
        (Int32(Some(a)), Int32(Some(b))) => arith!(Int32, a, b),
        (Int64(Some(a)), Int64(Some(b))) => arith!(Int64, a, b),
        (UInt8(Some(a)), UInt8(Some(b))) => arith!(UInt8, a, b),
        (UInt16(Some(a)), UInt16(Some(b))) => arith!(UInt16, a, b),
        (UInt32(Some(a)), UInt32(Some(b))) => arith!(UInt32, a, b),
        (UInt64(Some(a)), UInt64(Some(b))) => arith!(UInt64, a, b),
        _ => None,
    }
}

/// A call that raises 22003 for `data_type` when evaluated.
fn out_of_range(data_type: DataType) -> Expr {
    let udf = ScalarUDF::new_from_impl(OutOfRange::new(data_type));
    udf.call(vec![])
}

/// The function [`out_of_range`] calls: volatile, so it is not folded,
/// and evaluated only where the overflowing constant would have been.
#[derive(Debug, PartialEq, Eq, Hash)]
struct OutOfRange {
    signature: Signature,
    data_type: DataType,
}

impl OutOfRange {
    fn new(data_type: DataType) -> Self {
        Self {
            signature: Signature::nullary(Volatility::Volatile),
            data_type,
        }
    }
}

impl ScalarUDFImpl for OutOfRange {
    fn name(&self) -> &str {
        "integer_out_of_range"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.data_type.clone())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(DataFusionError::ArrowError(
            Box::new(ArrowError::ArithmeticOverflow(format!(
                "{} out of range",
                integer_name(&self.data_type)
            ))),
            None,
        ))
    }
}

/// PostgreSQL's name for an integer type, as its range errors say it.
fn integer_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------
// sum(bigint) as numeric.

/// See the module page: `sum` of a 64-bit integer sums as `DECIMAL(38,0)`.
#[derive(Debug, Default)]
pub struct WidenedSum;

/// What `sum` of a 64-bit integer sums as.
const WIDE_SUM: DataType = DataType::Decimal128(38, 0);

impl FunctionRewrite for WidenedSum {
    fn name(&self) -> &str {
        "driftdb_widened_sum"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        Ok(with_aggregate_arguments(expr, "sum", |args| {
            widened(args, schema)
        }))
    }
}

/// `expr` with the arguments `change` gives, when it calls the aggregate
/// function `name` (as an aggregate or over a window) and `change` gives
/// any.
pub(crate) fn with_aggregate_arguments(
    expr: Expr,
    name: &str,
    change: impl Fn(&[Expr]) -> Option<Vec<Expr>>,
) -> Transformed<Expr> {
    match expr {
        Expr::AggregateFunction(mut f) if f.func.name() == name => match change(&f.params.args) {
            Some(args) => {
                f.params.args = args;
                Transformed::yes(Expr::AggregateFunction(f))
            }
            None => Transformed::no(Expr::AggregateFunction(f)),
        },
        Expr::WindowFunction(mut w) if calls(&w, name) => match change(&w.params.args) {
            Some(args) => {
                w.params.args = args;
                Transformed::yes(Expr::WindowFunction(w))
            }
            None => Transformed::no(Expr::WindowFunction(w)),
        },
        other => Transformed::no(other),
    }
}

fn calls(w: &WindowFunction, name: &str) -> bool {
    matches!(&w.fun, WindowFunctionDefinition::AggregateUDF(f) if f.name() == name)
}

/// `args` with a lone 64-bit integer argument cast to [`WIDE_SUM`].
fn widened(args: &[Expr], schema: &DFSchema) -> Option<Vec<Expr>> {
    let [arg] = args else { return None };
    match arg.get_type(schema).ok()? {
        DataType::Int64 | DataType::UInt64 => {
            Some(vec![arg.clone().cast_to(&WIDE_SUM, schema).ok()?])
        }
        _ => None,
    }
}
