//! Statement parameters: `?` and `$n` placeholders, and binding values to them.
//!
//! Clients write positional `?` (ADBC, JDBC) or numbered `$n` (PostgreSQL)
//! placeholders. [`number_placeholders`] turns every `?` into `$1`, `$2`, …
//! in the order they appear, so the rest of the engine sees one style.
//! The tree keeps its placeholders; [`bind_plan`] binds values to the
//! logical plans built from it, as typed values — a parameter never
//! becomes SQL text, so no value can change what a statement means.

use std::ops::ControlFlow;

use arrow::compute::CastOptions;
use arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::common::metadata::ScalarAndMetadata;
use datafusion::logical_expr::LogicalPlan;
use datafusion::scalar::ScalarValue;
use sqlparser::ast::{self, Statement, Value, VisitMut, VisitorMut};

use crate::error::{Error, Result};

/// Rewrite `?` placeholders to `$1..$n` (in order of appearance) and return
/// how many parameters the statement takes (the highest `$n`).
pub fn number_placeholders(statement: &mut Statement) -> Result<usize> {
    let mut numberer = Numberer::default();
    if let ControlFlow::Break(e) = statement.visit(&mut numberer) {
        return Err(e);
    }
    if numberer.positional > 0 && numberer.numbered_max > 0 {
        return Err(Error::Syntax {
            message: "a statement cannot mix ? and $n placeholders".into(),
        });
    }
    Ok(numberer.positional.max(numberer.numbered_max))
}

#[derive(Default)]
struct Numberer {
    positional: usize,
    numbered_max: usize,
}

impl VisitorMut for Numberer {
    type Break = Error;

    fn pre_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<Error> {
        let ast::Expr::Value(value) = expr else {
            return ControlFlow::Continue(());
        };
        let Value::Placeholder(name) = &mut value.value else {
            return ControlFlow::Continue(());
        };
        if name == "?" {
            self.positional += 1;
            *name = format!("${}", self.positional);
            return ControlFlow::Continue(());
        }
        match name.strip_prefix('$').map(str::parse::<usize>) {
            Some(Ok(n)) if n > 0 => self.numbered_max = self.numbered_max.max(n),
            _ => {
                return ControlFlow::Break(Error::Syntax {
                    message: format!("unsupported placeholder {name}: use ? or $1, $2, …"),
                });
            }
        }
        ControlFlow::Continue(())
    }
}

/// Refuse a parameter set of the wrong size (08P01 in PostgreSQL's
/// protocol; here 42601 naming both counts).
pub fn check_count(expected: usize, given: usize) -> Result<()> {
    if expected == given {
        return Ok(());
    }
    Err(Error::Syntax {
        message: format!("the statement takes {expected} parameters but {given} were bound"),
    })
}

/// Bind `values` to `plan`'s `$n` placeholders, each as a typed value:
/// where the plan gives a placeholder a type, the value is cast to it
/// (text that does not parse is 22P02, any other mismatch 42804).
pub fn bind_plan(plan: LogicalPlan, values: &[ScalarValue]) -> Result<LogicalPlan> {
    if values.is_empty() {
        return Ok(plan);
    }
    let types = plan.get_parameter_types()?;
    let mut bound = values.to_vec();
    for (name, data_type) in types {
        let index = placeholder_index(&name)?;
        let Some(value) = bound.get_mut(index - 1) else {
            return Err(Error::Syntax {
                message: format!(
                    "no value bound for parameter {name} ({} given)",
                    values.len()
                ),
            });
        };
        if let Some(data_type) = data_type {
            *value = typed(index, value, &data_type)?;
        }
    }
    Ok(plan.with_param_values(ParamValues::List(
        bound.into_iter().map(ScalarAndMetadata::from).collect(),
    ))?)
}

fn placeholder_index(name: &str) -> Result<usize> {
    name.strip_prefix('$')
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::Syntax {
            message: format!("unsupported placeholder {name}: use ? or $1, $2, …"),
        })
}

/// `value` as the type `$index` takes.
fn typed(index: usize, value: &ScalarValue, data_type: &DataType) -> Result<ScalarValue> {
    if value.data_type() == *data_type {
        return Ok(value.clone());
    }
    if value.is_null() {
        return Ok(ScalarValue::try_from(data_type)?);
    }
    let options = CastOptions {
        safe: false,
        format_options: Default::default(),
    };
    let cast = value
        .cast_to_with_options(data_type, &options)
        .map_err(|e| {
            let message = format!("expects {data_type}, got {}: {e}", value.data_type());
            match value.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                    Error::BadParameterText { index, message }
                }
                _ => Error::BadParameter { index, message },
            }
        })?;
    if loses_value(value, &cast, data_type) {
        return Err(Error::BadParameter {
            index,
            message: format!(
                "expects {data_type}, got {} {value}, which it cannot hold exactly",
                value.data_type()
            ),
        });
    }
    Ok(cast)
}

/// Whether casting the number `value` to an integer or decimal type lost
/// part of it (1.5 to an INT would match the row 1: refused, not truncated).
fn loses_value(value: &ScalarValue, cast: &ScalarValue, data_type: &DataType) -> bool {
    let exact_target = data_type.is_integer()
        || matches!(
            data_type,
            DataType::Decimal128(..) | DataType::Decimal256(..)
        );
    let numeric_source = value.data_type().is_numeric();
    if !exact_target || !numeric_source {
        return false;
    }
    cast.cast_to(&value.data_type())
        .map_or(true, |back| back != *value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_statement;

    fn one(sql: &str) -> Statement {
        parse_statement(sql).unwrap().sql().unwrap().clone()
    }

    #[test]
    fn question_marks_are_numbered_in_order() {
        let mut statement = one("SELECT * FROM t WHERE a = ? AND b > ?");
        assert_eq!(number_placeholders(&mut statement).unwrap(), 2);
        assert_eq!(
            statement.to_string(),
            "SELECT * FROM t WHERE a = $1 AND b > $2"
        );
    }

    #[test]
    fn mixing_styles_is_refused() {
        let mut statement = one("SELECT ? + $2");
        assert!(number_placeholders(&mut statement).is_err());
    }
}
