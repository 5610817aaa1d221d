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
use sqlparser::ast::{self, Statement, Value, Visit, VisitMut, Visitor, VisitorMut};
use sqlparser::tokenizer::Location;

use super::parser::HistoryClauses;
use crate::error::{Error, Result};

/// The placeholders of a statement, once numbered.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placeholders {
    /// How many parameters the statement takes (the highest `$n`).
    pub count: usize,
    /// Whether a placeholder names a point or range in history (`AS OF $1`,
    /// `FOR SYSTEM_TIME BETWEEN $1 AND $2`): which snapshot the statement
    /// reads then depends on the values, so it is planned per execution.
    pub in_history: bool,
}

/// Rewrite `?` placeholders to `$1..$n` in the order they are written (in
/// the statement and its history clauses alike) and say how many
/// parameters the statement takes.
pub fn number_placeholders(
    statement: &mut Statement,
    history: &mut HistoryClauses,
) -> Result<Placeholders> {
    // Pass 1: where each placeholder is written, in visiting order.
    let mut finder = Finder::default();
    let _ = Visit::visit(&*statement, &mut finder);
    finder.history_depth += 1;
    for bound in history.bounds_mut() {
        let _ = Visit::visit(&*bound, &mut finder);
    }
    let mut order: Vec<usize> = (0..finder.positional.len()).collect();
    order.sort_by_key(|&i| (finder.positional[i], i));
    let mut rank = vec![0; order.len()];
    for (number, &visit) in order.iter().enumerate() {
        rank[visit] = number + 1;
    }
    // Pass 2: the same visiting order, numbering each `?` by its rank.
    let mut numberer = Numberer {
        rank,
        visited: 0,
        numbered_max: 0,
    };
    if let ControlFlow::Break(e) = VisitMut::visit(statement, &mut numberer) {
        return Err(e);
    }
    for bound in history.bounds_mut() {
        if let ControlFlow::Break(e) = VisitMut::visit(bound, &mut numberer) {
            return Err(e);
        }
    }
    if !finder.positional.is_empty() && numberer.numbered_max > 0 {
        return Err(Error::Syntax {
            message: "a statement cannot mix ? and $n placeholders".into(),
        });
    }
    Ok(Placeholders {
        count: finder.positional.len().max(numberer.numbered_max),
        in_history: finder.in_history,
    })
}

/// Refuse placeholders in a statement that cannot bind them: anything but
/// a query or a row write (DDL stores expressions such as a view's query
/// or a DEFAULT as text, where a placeholder would mean nothing later).
/// PostgreSQL refuses them there too (42P02).
pub fn refuse_placeholders_in_ddl(statement: &Statement, history: &HistoryClauses) -> Result<()> {
    if matches!(
        statement,
        Statement::Query(_)
            | Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Merge(_)
            | Statement::Explain { .. }
    ) {
        return Ok(());
    }
    let mut finder = Finder::default();
    let _ = Visit::visit(statement, &mut finder);
    let found = finder.first.or_else(|| {
        history.bounds().find_map(|bound| {
            let mut finder = Finder::default();
            let _ = Visit::visit(bound, &mut finder);
            finder.first
        })
    });
    match found {
        None => Ok(()),
        Some(placeholder) => Err(Error::ParameterNotAllowed {
            statement: super::session::statement_tag(statement),
            placeholder,
        }),
    }
}

/// Finds placeholders: where each `?` is written, and whether any
/// placeholder sits in a history clause or a table's `AS OF`.
#[derive(Default)]
struct Finder {
    positional: Vec<Location>,
    /// Above 0 while inside a table version or a history clause.
    history_depth: usize,
    in_history: bool,
    /// The first placeholder seen, as written.
    first: Option<String>,
}

impl Visitor for Finder {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &ast::TableFactor) -> ControlFlow<()> {
        self.history_depth += usize::from(has_version(factor));
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &ast::TableFactor) -> ControlFlow<()> {
        self.history_depth -= usize::from(has_version(factor));
        ControlFlow::Continue(())
    }

    fn pre_visit_value(&mut self, value: &ast::ValueWithSpan) -> ControlFlow<()> {
        if let Value::Placeholder(name) = &value.value {
            self.in_history |= self.history_depth > 0;
            self.first.get_or_insert_with(|| name.clone());
            if name == "?" {
                self.positional.push(value.span.start);
            }
        }
        ControlFlow::Continue(())
    }
}

fn has_version(factor: &ast::TableFactor) -> bool {
    matches!(
        factor,
        ast::TableFactor::Table {
            version: Some(_),
            ..
        }
    )
}

/// Numbers `?` placeholders by the rank [`Finder`] gave them and checks `$n` ones.
struct Numberer {
    rank: Vec<usize>,
    visited: usize,
    numbered_max: usize,
}

impl VisitorMut for Numberer {
    type Break = Error;

    fn pre_visit_value(&mut self, value: &mut ast::ValueWithSpan) -> ControlFlow<Error> {
        let Value::Placeholder(name) = &mut value.value else {
            return ControlFlow::Continue(());
        };
        if name == "?" {
            *name = format!("${}", self.rank[self.visited]);
            self.visited += 1;
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
            return Err(unbound(&name, values.len()));
        };
        if let Some(data_type) = data_type {
            *value = typed(index, value, &data_type)?;
        }
    }
    Ok(plan.with_param_values(ParamValues::List(
        bound.into_iter().map(ScalarAndMetadata::from).collect(),
    ))?)
}

/// The value bound to placeholder `name` (`$n`) among `values`.
pub fn value_of(name: &str, values: &[ScalarValue]) -> Result<ScalarValue> {
    let index = placeholder_index(name)?;
    values
        .get(index - 1)
        .cloned()
        .ok_or_else(|| unbound(name, values.len()))
}

fn unbound(name: &str, given: usize) -> Error {
    Error::Syntax {
        message: format!("no value bound for parameter {name} ({given} given)"),
    }
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
            let message = crate::error::printable(&format!(
                "expects {data_type}, got {}: {e}",
                value.data_type()
            ));
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

    /// `sql` with its placeholders numbered: the statement as text, the
    /// history clauses' bounds, and what numbering found.
    fn numbered(sql: &str) -> Result<(String, Vec<String>, Placeholders)> {
        let parsed = parse_statement(sql)?;
        let mut statement = parsed.sql().expect("a tree").clone();
        let mut history = (*parsed.history).clone();
        let found = number_placeholders(&mut statement, &mut history)?;
        let bounds = history.bounds_mut().map(|b| b.to_string()).collect();
        Ok((statement.to_string(), bounds, found))
    }

    #[test]
    fn question_marks_are_numbered_in_order() {
        let (text, _, found) = numbered("SELECT * FROM t WHERE a = ? AND b > ?").unwrap();
        assert_eq!(found.count, 2);
        assert!(!found.in_history);
        assert_eq!(text, "SELECT * FROM t WHERE a = $1 AND b > $2");
    }

    #[test]
    fn question_marks_in_history_clauses_are_numbered_where_they_are_written() {
        let sql = "SELECT ? FROM t FOR SYSTEM_TIME BETWEEN ? AND ? JOIN u FOR SYSTEM_TIME AS OF ? ON t.a = u.a WHERE t.b = ?";
        let (text, bounds, found) = numbered(sql).unwrap();
        assert_eq!(found.count, 5);
        assert!(found.in_history);
        assert_eq!(bounds, vec!["$2", "$3"]);
        assert!(text.starts_with("SELECT $1 FROM t"), "{text}");
        assert!(text.contains("AS OF $4"), "{text}");
        assert!(text.ends_with("t.b = $5"), "{text}");
    }

    #[test]
    fn numbered_placeholders_in_as_of_are_history_parameters() {
        let (_, _, found) = numbered("SELECT * FROM t FOR SYSTEM_TIME AS OF $1").unwrap();
        assert_eq!(found.count, 1);
        assert!(found.in_history);
        let (_, _, found) = numbered("SELECT * FROM t FOR SYSTEM_TIME FROM $2 TO $1").unwrap();
        assert_eq!(found.count, 2);
        assert!(found.in_history);
    }

    #[test]
    fn mixing_styles_is_refused() {
        assert!(numbered("SELECT ? + $2").is_err());
        assert!(numbered("SELECT * FROM t FOR SYSTEM_TIME BETWEEN ? AND $1").is_err());
    }
}
