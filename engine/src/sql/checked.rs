//! Integer arithmetic that overflows is an error (22003), as in
//! PostgreSQL; DataFusion's `+`, `-` and `*` on integers wrap
//! (`9223372036854775807 + 1` gave −9223372036854775808).
//!
//! [`CheckedIntegerArithmetic`] (an analyzer rule, after type coercion)
//! turns each such operator whose operands are integers of one type into a
//! call of [`CheckedArithmetic`], which runs arrow's checked kernel.
//! (`sum` over integers still wraps: that is an aggregate of its own.)

use std::sync::Arc;

use arrow::compute::kernels::numeric;
use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use super::casts::rewrite_expressions;

/// See the module page.
#[derive(Debug, Default)]
pub struct CheckedIntegerArithmetic;

impl AnalyzerRule for CheckedIntegerArithmetic {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        rewrite_expressions(plan, checked)
    }

    fn name(&self) -> &str {
        "driftdb_checked_integer_arithmetic"
    }
}

fn checked(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let op = match op {
        Operator::Plus => ArithmeticOp::Add,
        Operator::Minus => ArithmeticOp::Subtract,
        Operator::Multiply => ArithmeticOp::Multiply,
        _ => return Ok(Transformed::no(expr)),
    };
    let (Ok(left_type), Ok(right_type)) = (left.get_type(schema), right.get_type(schema)) else {
        return Ok(Transformed::no(expr));
    };
    if !left_type.is_integer() || left_type != right_type {
        return Ok(Transformed::no(expr));
    }
    let udf = Arc::new(ScalarUDF::new_from_impl(CheckedArithmetic::new(op)));
    let args = vec![left.as_ref().clone(), right.as_ref().clone()];
    Ok(Transformed::yes(Expr::ScalarFunction(
        ScalarFunction::new_udf(udf, args),
    )))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ArithmeticOp {
    Add,
    Subtract,
    Multiply,
}

/// `a + b`, `a - b` or `a * b` over integers of one type, refusing overflow.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CheckedArithmetic {
    op: ArithmeticOp,
    signature: Signature,
}

impl CheckedArithmetic {
    fn new(op: ArithmeticOp) -> Self {
        Self {
            op,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for CheckedArithmetic {
    fn name(&self) -> &str {
        match self.op {
            ArithmeticOp::Add => "driftdb_checked_add",
            ArithmeticOp::Subtract => "driftdb_checked_subtract",
            ArithmeticOp::Multiply => "driftdb_checked_multiply",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (left, right) = (&arrays[0], &arrays[1]);
        let result = match self.op {
            ArithmeticOp::Add => numeric::add(left, right)?,
            ArithmeticOp::Subtract => numeric::sub(left, right)?,
            ArithmeticOp::Multiply => numeric::mul(left, right)?,
        };
        Ok(match scalar {
            true => ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?),
            false => ColumnarValue::Array(result),
        })
    }
}
