//! CHECK constraints and DEFAULT expressions, evaluated by DataFusion over
//! whole batches (set-based: one evaluation per statement, not per row).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use arrow::datatypes::Schema;
use arrow::util::display::array_value_to_string;
use datafusion::common::DFSchema;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;

use crate::catalog::{CheckDef, ColumnDef, TableDef, logical_schema};
use crate::error::{Error, Result};

/// Fail with 23514 if any row of `batch` (the table's user columns, in
/// order) makes one of the table's CHECK expressions FALSE.
pub fn check_rows(ctx: &SessionContext, def: &TableDef, batch: &RecordBatch) -> Result<()> {
    if def.checks.is_empty() || batch.num_rows() == 0 {
        return Ok(());
    }
    let logical = logical_batch(def.columns(), batch)?;
    for check in &def.checks {
        let verdict = evaluate(ctx, check, &logical)?;
        let failing = (0..verdict.len()).find(|&i| verdict.is_valid(i) && !verdict.value(i));
        if let Some(row) = failing {
            return Err(Error::CheckViolation {
                table: def.name.clone(),
                constraint: check.name.clone(),
                row: render_row(&logical, row),
            });
        }
    }
    Ok(())
}

/// A context that can evaluate any CHECK expression (DriftDB's scalar
/// functions registered), for write sets that come without a session.
pub fn context() -> SessionContext {
    let ctx = SessionContext::new();
    driftdb_udfs::register_all(&ctx);
    ctx
}

/// Make sure a CHECK expression is a boolean over the table's columns.
pub fn validate_check(ctx: &SessionContext, def: &TableDef, check: &CheckDef) -> Result<()> {
    let schema = logical_schema(def.columns());
    let empty = RecordBatch::new_empty(schema);
    evaluate(ctx, check, &empty).map(|_| ())
}

/// A CHECK constraint's stored expression over the table's columns.
pub fn check_expr(
    ctx: &SessionContext,
    def: &TableDef,
    check: &CheckDef,
) -> Result<datafusion::logical_expr::Expr> {
    let schema = logical_schema(def.columns());
    let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
    Ok(ctx.parse_sql_expr(&check.expr, &df_schema)?)
}

fn evaluate(
    ctx: &SessionContext,
    check: &CheckDef,
    batch: &RecordBatch,
) -> Result<arrow::array::BooleanArray> {
    let df_schema = DFSchema::try_from(batch.schema().as_ref().clone())?;
    let expr = ctx.parse_sql_expr(&check.expr, &df_schema)?;
    let physical = ctx.create_physical_expr(expr, &df_schema)?;
    let result = physical.evaluate(batch)?.into_array(batch.num_rows())?;
    result
        .as_boolean_opt()
        .cloned()
        .ok_or_else(|| Error::InvalidArgument {
            message: format!(
                "CHECK constraint \"{}\" must be a boolean expression, not {}",
                check.name,
                result.data_type()
            ),
        })
}

/// The batch with the columns' logical names, so expressions can name them.
fn logical_batch(columns: &[ColumnDef], batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = logical_schema(columns);
    let relaxed = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    Ok(RecordBatch::try_new(relaxed, batch.columns().to_vec())?)
}

/// `(v1, v2, …)` as PostgreSQL shows a failing row.
pub fn render_row(batch: &RecordBatch, row: usize) -> String {
    let values: Vec<String> = batch
        .columns()
        .iter()
        .map(|c| {
            if c.is_null(row) {
                "null".into()
            } else {
                array_value_to_string(c, row).unwrap_or_else(|_| "?".into())
            }
        })
        .collect();
    format!("({})", values.join(", "))
}

/// The values of `column`'s DEFAULT expression for `rows` new rows. A
/// value the column's type cannot hold is an error, never NULL.
pub fn default_values(ctx: &SessionContext, column: &ColumnDef, rows: usize) -> Result<ArrayRef> {
    let target = column.sql_type.arrow_type();
    let Some(expr) = default_expr(ctx, column)? else {
        return Ok(arrow::array::new_null_array(&target, rows));
    };
    let df_schema = DFSchema::empty();
    let physical = ctx.create_physical_expr(expr, &df_schema)?;
    let input = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?;
    let values = physical.evaluate(&input)?.into_array(rows)?;
    Ok(arrow::compute::cast_with_options(
        &values,
        &target,
        &STRICT_CAST,
    )?)
}

/// Refuse a DEFAULT that cannot fill `column`: one that does not plan,
/// or a constant its type cannot hold (`INT DEFAULT 'x'`). Nothing is
/// evaluated that has effects (a `nextval` default hands out no value).
pub fn validate_default(ctx: &SessionContext, column: &ColumnDef) -> Result<()> {
    match default_expr(ctx, column)? {
        Some(Expr::Literal(value, _)) => {
            let array = value.to_array_of_size(1)?;
            let target = column.sql_type.arrow_type();
            arrow::compute::cast_with_options(&array, &target, &STRICT_CAST)?;
            Ok(())
        }
        Some(_) => default_values(ctx, column, 0).map(drop),
        None => Ok(()),
    }
}

/// Casts that fail on a value the target type cannot hold.
const STRICT_CAST: arrow::compute::CastOptions<'static> = arrow::compute::CastOptions {
    safe: false,
    format_options: arrow::util::display::FormatOptions::new(),
};

/// `column`'s DEFAULT planned and folded (`now()` to this statement's time).
pub(crate) fn default_expr(ctx: &SessionContext, column: &ColumnDef) -> Result<Option<Expr>> {
    let Some(text) = &column.default else {
        return Ok(None);
    };
    let df_schema = DFSchema::empty();
    let expr = ctx.parse_sql_expr(text, &df_schema)?;
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(Arc::new(df_schema))
            .with_current_time()
            .build(),
    );
    Ok(Some(simplifier.simplify(expr)?))
}
