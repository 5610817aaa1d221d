//! Statement parameters: `?` and `$n` placeholders, and binding values to them.
//!
//! Clients write positional `?` (ADBC, JDBC) or numbered `$n` (PostgreSQL)
//! placeholders. [`number_placeholders`] turns every `?` into `$1`, `$2`, …
//! in the order they appear, so the rest of the engine sees one style.
//! [`bind`] replaces each `$n` with the literal for the n-th value; the bound
//! statement then runs like any other, so parameters work the same for
//! queries, DML and DDL.

use std::ops::ControlFlow;

use datafusion::logical_expr::Expr;
use datafusion::scalar::ScalarValue;
use datafusion::sql::unparser::Unparser;
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

/// Replace `$n` placeholders by the literals of `values[n - 1]`.
pub fn bind(statement: &Statement, values: &[ScalarValue]) -> Result<Statement> {
    let literals = values
        .iter()
        .map(literal_of)
        .collect::<Result<Vec<ast::Expr>>>()?;
    let mut bound = statement.clone();
    let mut binder = Binder {
        literals: &literals,
    };
    if let ControlFlow::Break(e) = bound.visit(&mut binder) {
        return Err(e);
    }
    Ok(bound)
}

/// For `INSERT … VALUES (<one row with placeholders>)` and many parameter
/// rows: one multi-row insert with a VALUES row per parameter row, so the
/// whole batch is a single commit. `None` for any other statement.
pub fn bind_insert_rows(
    statement: &Statement,
    rows: &[Vec<ScalarValue>],
) -> Result<Option<Statement>> {
    let Statement::Insert(insert) = statement else {
        return Ok(None);
    };
    let Some(source) = &insert.source else {
        return Ok(None);
    };
    let ast::SetExpr::Values(values) = source.body.as_ref() else {
        return Ok(None);
    };
    let [template] = values.rows.as_slice() else {
        return Ok(None);
    };
    let mut bound_rows = Vec::with_capacity(rows.len());
    for row in rows {
        let literals = row.iter().map(literal_of).collect::<Result<Vec<_>>>()?;
        let mut binder = Binder {
            literals: &literals,
        };
        let mut exprs = template.clone();
        if let ControlFlow::Break(e) = exprs.visit(&mut binder) {
            return Err(e);
        }
        bound_rows.push(exprs);
    }
    let mut bound = insert.clone();
    let mut body = source.clone();
    body.body = Box::new(ast::SetExpr::Values(ast::Values {
        rows: bound_rows,
        ..values.clone()
    }));
    bound.source = Some(body);
    Ok(Some(Statement::Insert(bound)))
}

struct Binder<'a> {
    literals: &'a [ast::Expr],
}

impl VisitorMut for Binder<'_> {
    type Break = Error;

    fn pre_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<Error> {
        let ast::Expr::Value(value) = expr else {
            return ControlFlow::Continue(());
        };
        let Value::Placeholder(name) = &value.value else {
            return ControlFlow::Continue(());
        };
        let index = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0);
        match index.and_then(|n| self.literals.get(n - 1)) {
            Some(literal) => {
                *expr = literal.clone();
                ControlFlow::Continue(())
            }
            None => ControlFlow::Break(Error::InvalidArgument {
                message: format!(
                    "no value bound for parameter {name} ({} given)",
                    self.literals.len()
                ),
            }),
        }
    }
}

/// A SQL literal expression for one value, typed so it reads back as the same value.
fn literal_of(value: &ScalarValue) -> Result<ast::Expr> {
    let literal = Unparser::default()
        .expr_to_sql(&Expr::Literal(value.clone(), None))
        .map_err(|e| Error::InvalidArgument {
            message: format!("cannot use {value:?} as a parameter: {e}"),
        })?;
    // Parenthesise so a negative number or a cast binds as one operand.
    Ok(ast::Expr::Nested(Box::new(literal)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_statements;

    fn one(sql: &str) -> Statement {
        parse_statements(sql).unwrap().pop().unwrap()
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

    #[test]
    fn binding_puts_typed_literals_in_place() {
        let mut statement = one("INSERT INTO t VALUES (?, ?, ?)");
        number_placeholders(&mut statement).unwrap();
        let bound = bind(
            &statement,
            &[
                ScalarValue::Int64(Some(-7)),
                ScalarValue::Utf8(Some("it's".into())),
                ScalarValue::Null,
            ],
        )
        .unwrap();
        assert_eq!(
            bound.to_string(),
            "INSERT INTO t VALUES ((-7), ('it''s'), (NULL))"
        );
        assert!(bind(&statement, &[ScalarValue::Int64(Some(1))]).is_err());
    }

    #[test]
    fn many_rows_for_one_insert_become_one_statement() {
        let mut statement = one("INSERT INTO t (a, b) VALUES (?, ?)");
        number_placeholders(&mut statement).unwrap();
        let rows: Vec<Vec<ScalarValue>> = (1..=3)
            .map(|i| {
                vec![
                    ScalarValue::Int32(Some(i)),
                    ScalarValue::Boolean(Some(i % 2 == 0)),
                ]
            })
            .collect();
        let bound = bind_insert_rows(&statement, &rows).unwrap().unwrap();
        assert_eq!(
            bound.to_string(),
            "INSERT INTO t (a, b) VALUES ((1), (false)), ((2), (true)), ((3), (false))"
        );
        let update = one("UPDATE t SET a = $1");
        assert!(bind_insert_rows(&update, &rows).unwrap().is_none());
    }
}
