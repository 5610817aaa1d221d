//! Set-returning functions in `FROM` as PostgreSQL reads them.
//!
//! - A function in `FROM` sees the items before it (PostgreSQL makes it
//!   implicitly `LATERAL`): `FROM t, generate_series(1, t.n) AS g`.
//!   DataFusion's table functions take constant arguments only, so a call
//!   whose arguments name anything becomes a lateral derived table over
//!   the scalar form, which the dependent join evaluates per row:
//!   `LATERAL (SELECT unnest(generate_series(1, t.n)) AS g) AS g`.
//! - Its one column is named by the alias (`FROM generate_series(1, 3) g`
//!   has a column `g`), or after the function without one.
//!
//! Taken: `generate_series` and `unnest` of one array, without `WITH
//! ORDINALITY` (left to DataFusion as written).
//!
//! And in a select list, where PostgreSQL's `generate_series` returns
//! rows (`SELECT generate_series(1, 3)` is three rows; DataFusion's
//! function returns one list): the call becomes
//! `unnest(generate_series(…))`, which DataFusion expands into rows, two
//! such calls in one list side by side, the shorter padded with NULLs
//! (PostgreSQL's rule since version 10). A bare call keeps its name
//! (`generate_series`).

use std::ops::ControlFlow;

use sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, Ident, ObjectName, SelectItem, Statement, TableAlias,
    TableAliasColumnDef, TableFactor, VisitMut, VisitorMut,
};

use crate::error::{Error, Result};
use crate::sql::plans::select_query;

/// Rewrite every set-returning function in `statement`'s `FROM` lists.
/// An alias list naming more columns than the function's one is 42601.
pub(super) fn set_returning_in_from(statement: &mut Statement) -> Result<()> {
    match statement.visit(&mut InFrom) {
        ControlFlow::Break(err) => Err(err),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct InFrom;

/// Rewrite every `generate_series` call in `statement`'s select lists (see
/// the module page). One anywhere else in a query (`WHERE`, `GROUP BY`,
/// `ORDER BY`, …) is 0A000: PostgreSQL refuses some of those places and
/// multiplies rows in others, where DataFusion would silently keep one
/// row per list. Runs before [`set_returning_in_from`].
pub(super) fn set_returning_in_select_lists(statement: &mut Statement) -> Result<()> {
    match statement.visit(&mut InSelectLists) {
        ControlFlow::Break(err) => Err(err),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct InSelectLists;

impl VisitorMut for InSelectLists {
    type Break = Error;

    fn post_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<Error> {
        if let Some(order_by) = &query.order_by
            && let ast::OrderByKind::Expressions(keys) = &order_by.kind
            && keys.iter().any(|k| calls_series(&k.expr))
        {
            return ControlFlow::Break(series_refused("ORDER BY"));
        }
        for select in selects(query.body.as_mut()) {
            if let Some(place) = series_outside_select_list(select) {
                return ControlFlow::Break(series_refused(place));
            }
            for item in &mut select.projection {
                rows_from_series(item);
            }
        }
        ControlFlow::Continue(())
    }
}

fn series_refused(place: &str) -> Error {
    Error::unsupported(format!("set-returning function generate_series in {place}"))
}

/// Where in `select`, outside its select list, `generate_series` is
/// called (outside subqueries), if anywhere.
fn series_outside_select_list(select: &ast::Select) -> Option<&'static str> {
    let group_by = match &select.group_by {
        ast::GroupByExpr::Expressions(exprs, _) => exprs.as_slice(),
        ast::GroupByExpr::All(_) => &[],
    };
    let distinct_on = match &select.distinct {
        Some(ast::Distinct::On(exprs)) => exprs.as_slice(),
        _ => &[],
    };
    let places: [(&'static str, Vec<&Expr>); 4] = [
        ("WHERE", select.selection.iter().collect()),
        ("HAVING", select.having.iter().collect()),
        ("GROUP BY", group_by.iter().collect()),
        ("DISTINCT ON", distinct_on.iter().collect()),
    ];
    places
        .into_iter()
        .find(|(_, exprs)| exprs.iter().any(|e| calls_series(e)))
        .map(|(place, _)| place)
}

/// Whether `expr` calls `generate_series` outside subqueries.
fn calls_series(expr: &Expr) -> bool {
    struct Finds {
        depth: usize,
    }
    impl ast::Visitor for Finds {
        type Break = ();
        fn pre_visit_query(&mut self, _query: &ast::Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _query: &ast::Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Function(f) if self.depth == 0 && is_named(&f.name, "generate_series") => {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    ast::Visit::visit(expr, &mut Finds { depth: 0 }).is_break()
}

/// The `SELECT`s of a query body, through its set operations (not into
/// nested queries, which are visited on their own).
fn selects(body: &mut ast::SetExpr) -> Vec<&mut ast::Select> {
    match body {
        ast::SetExpr::Select(select) => vec![select.as_mut()],
        ast::SetExpr::SetOperation { left, right, .. } => {
            let mut all = selects(left);
            all.extend(selects(right));
            all
        }
        _ => Vec::new(),
    }
}

/// `item` with its `generate_series` calls (outside subqueries) expanded
/// into rows.
fn rows_from_series(item: &mut SelectItem) {
    if let SelectItem::UnnamedExpr(expr @ Expr::Function(_)) = item
        && matches!(expr, Expr::Function(f) if is_named(&f.name, "generate_series"))
    {
        let expr = std::mem::replace(expr, Expr::value(ast::Value::Null));
        let alias = Ident::new("generate_series");
        *item = SelectItem::ExprWithAlias { expr, alias };
    }
    if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
        let _ = expr.visit(&mut SeriesAsRows { depth: 0 });
    }
}

/// Wraps `generate_series` calls outside subqueries in `unnest`.
struct SeriesAsRows {
    depth: usize,
}

impl VisitorMut for SeriesAsRows {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &mut ast::Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &mut ast::Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = expr else {
            return ControlFlow::Continue(());
        };
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        if is_named(&f.name, "generate_series") {
            let series = std::mem::replace(expr, Expr::value(ast::Value::Null));
            *expr = call_of("unnest", series);
        } else if is_named(&f.name, "unnest")
            && let Some(Expr::Function(inner)) = only_argument(f)
            && is_named(&inner.name, "unnest")
        {
            // `unnest(generate_series(…))` as written: one unnest, not two.
            let inner = only_argument(f).cloned().expect("matched above");
            *expr = inner;
        }
        ControlFlow::Continue(())
    }
}

/// The one plain argument of a call, if it has exactly one.
fn only_argument(f: &ast::Function) -> Option<&Expr> {
    match &f.args {
        ast::FunctionArguments::List(list) if list.args.len() == 1 => plain_expr(&list.args[0]),
        _ => None,
    }
}

impl VisitorMut for InFrom {
    type Break = Error;

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<Error> {
        match rewrite(factor) {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => ControlFlow::Break(err),
        }
    }
}

fn rewrite(factor: &mut TableFactor) -> Result<()> {
    let (function, args, alias) = match factor {
        TableFactor::Table {
            name,
            args: Some(args),
            alias,
            with_ordinality: false,
            ..
        } if is_named(name, "generate_series") => {
            let exprs = args.args.iter().filter_map(plain_expr).cloned().collect();
            ("generate_series", exprs, alias)
        }
        TableFactor::Function {
            name,
            args,
            alias,
            with_ordinality: false,
            ..
        } if is_named(name, "generate_series") || is_named(name, "unnest") => {
            let function = match is_named(name, "unnest") {
                true => "unnest",
                false => "generate_series",
            };
            let exprs: Vec<Expr> = args.iter().filter_map(plain_expr).cloned().collect();
            if function == "unnest" && exprs.len() != 1 {
                return Ok(());
            }
            (function, exprs, alias)
        }
        TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } if array_exprs.len() == 1 => ("unnest", array_exprs.clone(), alias),
        _ => return Ok(()),
    };
    if let Some(alias) = alias.as_ref().filter(|a| a.columns.len() > 1) {
        return Err(Error::Syntax {
            message: format!(
                "table \"{}\" has 1 columns available but {} columns specified",
                alias.name.value,
                alias.columns.len()
            ),
        });
    }
    let column = column_name(alias.as_ref(), function);
    let name = alias
        .as_ref()
        .map_or_else(|| Ident::new(function), |a| a.name.clone());
    if !args.iter().any(names_something) {
        *alias = Some(single_column(alias.take(), name, column));
        return Ok(());
    }
    let call = match function {
        "unnest" => args
            .into_iter()
            .next()
            .unwrap_or(Expr::value(ast::Value::Null)),
        _ => call(function, args),
    };
    let item = SelectItem::ExprWithAlias {
        expr: call_of("unnest", call),
        alias: column.clone(),
    };
    *factor = TableFactor::Derived {
        lateral: true,
        subquery: Box::new(select_query(vec![item], Vec::new(), None)),
        alias: Some(single_column(None, name, column)),
        sample: None,
    };
    Ok(())
}

fn is_named(name: &ObjectName, function: &str) -> bool {
    matches!(&name.0[..], [part] if part.as_ident().is_some_and(|i| i.value.eq_ignore_ascii_case(function)))
}

fn plain_expr(arg: &FunctionArg) -> Option<&Expr> {
    match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
        _ => None,
    }
}

/// Whether `expr` names a column (of an earlier `FROM` item or an outer
/// query); constants and parameters do not.
fn names_something(expr: &Expr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(expr, |e| {
        found |= matches!(
            e,
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Subquery(_)
        );
        ControlFlow::<()>::Continue(())
    });
    found
}

/// The function's one column: the alias's column list, else the alias,
/// else the function's name.
fn column_name(alias: Option<&TableAlias>, function: &str) -> Ident {
    match alias {
        Some(alias) => match alias.columns.first() {
            Some(column) => column.name.clone(),
            None => alias.name.clone(),
        },
        None => Ident::new(function),
    }
}

fn single_column(alias: Option<TableAlias>, name: Ident, column: Ident) -> TableAlias {
    match alias {
        Some(alias) if !alias.columns.is_empty() => alias,
        Some(alias) => TableAlias {
            columns: vec![TableAliasColumnDef {
                name: column,
                data_type: None,
            }],
            ..alias
        },
        None => TableAlias {
            explicit: true,
            name,
            columns: vec![TableAliasColumnDef {
                name: column,
                data_type: None,
            }],
            at: None,
        },
    }
}

/// `function(args)` as a tree.
pub(super) fn call(function: &str, args: Vec<Expr>) -> Expr {
    let args = args
        .into_iter()
        .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
        .collect();
    Expr::Function(ast::Function {
        name: ObjectName::from(vec![Ident::new(function)]),
        uses_odbc_syntax: false,
        parameters: ast::FunctionArguments::None,
        args: ast::FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args,
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

fn call_of(function: &str, arg: Expr) -> Expr {
    call(function, vec![arg])
}
