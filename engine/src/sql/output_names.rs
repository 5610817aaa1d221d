//! The names of a query's result columns, as PostgreSQL gives them:
//! `count` for `count(*)`, `?column?` for `a + 1`, `x` for `CAST(x AS
//! BIGINT)`, `int8` for `CAST(1 AS BIGINT)`, `case`, `exists`, and the same
//! name as often as the select list has it (`SELECT id, id`; two identical
//! subqueries).
//!
//! DataFusion names an unaliased expression by its text (`count(*)`,
//! `t.a + Int64(1)`) and refuses a select list with two equal names. So
//! before planning a client's query, [`name_outputs`] gives every
//! unaliased expression of its outermost select lists (and every item that
//! would repeat a name) an internal alias: the PostgreSQL name, [`MARK`],
//! the item's position. Users never write such a name, so it resolves
//! nothing in `ORDER BY` or `GROUP BY`. When the rows leave the engine,
//! [`public_schema`] and [`public_stream`] cut each name at the mark.
//!
//! Only the outermost query is named this way (all branches of its set
//! operation). The columns of derived tables, CTEs and views are named by
//! [`name_derived`] with plain aliases (`count`, not `count(*)`), so the
//! rest of the statement refers to them by PostgreSQL's names; an item
//! whose name repeats, or an expression beside a wildcard, gets the marked
//! internal alias instead (DataFusion refuses duplicate names), so a
//! `SELECT *` over it still shows PostgreSQL's names.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use sqlparser::ast::{self, Expr, Ident, Query, Select, SelectItem, SetExpr, VisitMut, VisitorMut};

use super::ddl::normalize_ident;

/// Separates the public name from the position in an internal alias.
pub const MARK: char = '\u{1f}';

/// PostgreSQL's name for a column with no better one.
const NO_NAME: &str = "?column?";

/// [`name_outputs`] for a statement a client runs, when it is a query;
/// [`name_derived`] for the derived tables and CTEs of any statement.
pub(crate) fn name_statement(statement: &mut ast::Statement) {
    let _ = statement.visit(&mut DerivedNames);
    if let ast::Statement::Query(query) = statement {
        name_outputs(query);
    }
}

/// [`name_outputs`] for a query whose rows become a table's (`CREATE
/// TABLE AS`), its derived tables and CTEs named too.
pub(crate) fn name_query(query: &mut Query) {
    let _ = query.visit(&mut DerivedNames);
    name_outputs(query);
}

/// Give a view's query, and the derived tables and CTEs inside it, plain
/// PostgreSQL names (see the module page).
pub(crate) fn name_view(query: &mut Query) {
    let _ = query.visit(&mut DerivedNames);
    name_derived(query);
}

/// Names every derived table and CTE body it visits.
struct DerivedNames;

impl VisitorMut for DerivedNames {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut ast::TableFactor) -> ControlFlow<()> {
        if let ast::TableFactor::Derived {
            subquery, alias, ..
        } = factor
        {
            name_derived(subquery);
            // `AS q (p)` renames the first columns only (DataFusion wants all named).
            if let (Some(alias), Some(names)) = (alias, select_list_names(subquery))
                && !alias.columns.is_empty()
                && alias.columns.len() < names.len()
            {
                let rest =
                    names[alias.columns.len()..]
                        .iter()
                        .map(|name| ast::TableAliasColumnDef {
                            name: Ident::with_quote('"', name),
                            data_type: None,
                        });
                alias.columns.extend(rest);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &mut query.with {
            for cte in &mut with.cte_tables {
                name_derived(&mut cte.query);
            }
        }
        ControlFlow::Continue(())
    }
}

/// PostgreSQL's names for the items of the select lists of `query` (all
/// branches of a set operation); see [`plain_names`].
pub(crate) fn name_derived(query: &mut Query) {
    name_plain(&mut query.body);
}

fn name_plain(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            let renamed = plain_names(select);
            for (item, alias) in select.projection.iter_mut().zip(renamed) {
                let Some(alias) = alias else { continue };
                let alias = Ident::with_quote('"', alias);
                match item {
                    SelectItem::UnnamedExpr(expr) => {
                        let expr = std::mem::replace(expr, Expr::value(ast::Value::Null));
                        *item = SelectItem::ExprWithAlias { expr, alias };
                    }
                    SelectItem::ExprWithAlias { alias: given, .. } => *given = alias,
                    _ => {}
                }
            }
        }
        SetExpr::Query(query) => name_derived(query),
        SetExpr::SetOperation { left, right, .. } => {
            name_plain(left);
            name_plain(right);
        }
        _ => {}
    }
}

/// The alias each item of `select` takes (None: it keeps its name): its
/// PostgreSQL name, marked with its position where that name repeats or
/// sits beside a wildcard (cut back to the name where rows leave).
fn plain_names(select: &Select) -> Vec<Option<String>> {
    let ItemNames {
        has_wildcard,
        names,
        uses,
    } = ItemNames::of(select);
    select
        .projection
        .iter()
        .zip(&names)
        .enumerate()
        .map(|(position, (item, name))| {
            let name = name.as_ref()?;
            let unique = uses.get(name.as_str()) == Some(&1);
            let expression = matches!(item, SelectItem::UnnamedExpr(expr) if !is_column(expr));
            match (unique, expression) {
                // Beside a wildcard, whose columns' names are not known here.
                (true, true) if has_wildcard => Some(format!("{name}{MARK}{position}")),
                (true, true) => Some(name.clone()),
                (true, false) => None,
                // A repeated name: PostgreSQL allows it (a reference to it
                // is ambiguous), DataFusion does not.
                (false, _) => Some(format!("{name}{MARK}{position}")),
            }
        })
        .collect()
}

/// Give the outermost select lists of `query` their output names (see the
/// module page).
pub(crate) fn name_outputs(query: &mut Query) {
    let aliased = name_set_expr(&mut query.body);
    // An ORDER BY expression equal to an item now aliased sorts by that
    // item (as PostgreSQL matches them; DataFusion would not see through
    // the alias, and refuses the ORDER BY of a SELECT DISTINCT).
    let Some(ast::OrderBy {
        kind: ast::OrderByKind::Expressions(order),
        ..
    }) = &mut query.order_by
    else {
        return;
    };
    for order_expr in order {
        if let Some((_, alias)) = aliased.iter().find(|(expr, _)| *expr == order_expr.expr) {
            order_expr.expr = Expr::Identifier(Ident::with_quote('"', alias.clone()));
        }
    }
}

/// Names the select lists of `body`; returns the unaliased expressions of
/// a plain SELECT that were given an alias, with it.
fn name_set_expr(body: &mut SetExpr) -> Vec<(Expr, String)> {
    match body {
        SetExpr::Select(select) => name_select(select),
        SetExpr::Query(query) => {
            name_outputs(query);
            Vec::new()
        }
        SetExpr::SetOperation { left, right, .. } => {
            name_set_expr(left);
            name_set_expr(right);
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn name_select(select: &mut Select) -> Vec<(Expr, String)> {
    let ItemNames {
        has_wildcard,
        names,
        uses,
    } = ItemNames::of(select);
    let mut renamed = Vec::with_capacity(select.projection.len());
    for (position, item) in select.projection.iter().enumerate() {
        let Some(name) = &names[position] else {
            renamed.push(None);
            continue;
        };
        let repeated = uses.get(name.as_str()).is_some_and(|n| *n > 1);
        // Beside a wildcard, whose columns' names are not known here, an
        // unaliased item is always given one (an explicit alias is kept,
        // for ORDER BY).
        let needs_alias = match item {
            SelectItem::UnnamedExpr(expr) => repeated || has_wildcard || !is_column(expr),
            _ => repeated,
        };
        renamed.push(needs_alias.then(|| format!("{name}{MARK}{position}")));
    }
    let mut aliased = Vec::new();
    for (item, alias) in select.projection.iter_mut().zip(renamed) {
        let Some(alias) = alias else { continue };
        let expr = match std::mem::replace(item, SelectItem::Wildcard(Default::default())) {
            SelectItem::UnnamedExpr(expr) => {
                aliased.push((expr.clone(), alias.clone()));
                expr
            }
            SelectItem::ExprWithAlias { expr, .. } => expr,
            other => {
                *item = other;
                continue;
            }
        };
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', alias),
        };
    }
    aliased
}

/// The output names of `query` when it is one SELECT without a wildcard.
pub(crate) fn select_list_names(query: &Query) -> Option<Vec<String>> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    select.projection.iter().map(item_name).collect()
}

/// The PostgreSQL names of a select list's items.
struct ItemNames {
    has_wildcard: bool,
    /// Each item's name (None for a wildcard).
    names: Vec<Option<String>>,
    /// How often each name occurs.
    uses: HashMap<String, usize>,
}

impl ItemNames {
    fn of(select: &Select) -> Self {
        let has_wildcard = select.projection.iter().any(|item| {
            matches!(
                item,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        });
        let names: Vec<Option<String>> = select.projection.iter().map(item_name).collect();
        let mut uses: HashMap<String, usize> = HashMap::new();
        for name in names.iter().flatten() {
            *uses.entry(name.clone()).or_default() += 1;
        }
        Self {
            has_wildcard,
            names,
            uses,
        }
    }
}

/// The output name of a select item (None for a wildcard).
pub(crate) fn item_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::UnnamedExpr(expr) => Some(expr_name(expr).unwrap_or_else(|| NO_NAME.into())),
        SelectItem::ExprWithAlias { alias, .. } => Some(normalize_ident(alias)),
        _ => None,
    }
}

fn is_column(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// PostgreSQL's name for `expr` (its `FigureColname`), or None where it
/// says `?column?`.
fn expr_name(expr: &Expr) -> Option<String> {
    figure(expr).map(|(name, _)| name)
}

/// How sure a name is, as PostgreSQL ranks them: a `CASE` takes its
/// `ELSE` value's name only if that is [`STRONG`]; a cast takes its
/// argument's name the same way, else its type's.
const STRONG: u8 = 2;
const WEAK: u8 = 1;

fn figure(expr: &Expr) -> Option<(String, u8)> {
    let strong = |name: &str| Some((name.to_string(), STRONG));
    match expr {
        Expr::Identifier(ident) => Some((normalize_ident(ident), STRONG)),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| (normalize_ident(p), STRONG)),
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => figure(inner),
        Expr::Function(function) => function.name.0.last().and_then(|part| match part {
            ast::ObjectNamePart::Identifier(ident) => Some((normalize_ident(ident), STRONG)),
            ast::ObjectNamePart::Function(_) => None,
        }),
        Expr::Cast {
            expr, data_type, ..
        } => match figure(expr) {
            Some(named) if named.1 >= STRONG => Some(named),
            _ => Some((type_name(data_type), WEAK)),
        },
        Expr::TypedString(typed) => Some((type_name(&typed.data_type), WEAK)),
        Expr::Case { else_result, .. } => match else_result.as_deref().and_then(figure) {
            Some(named) if named.1 >= STRONG => Some(named),
            _ => Some(("case".into(), WEAK)),
        },
        Expr::Exists { negated: false, .. } => strong("exists"),
        Expr::Subquery(query) => first_output_name(query).map(|n| (n, STRONG)),
        Expr::Array(_) => strong("array"),
        Expr::Interval(_) => strong("interval"),
        Expr::Extract { .. } => strong("extract"),
        Expr::Substring { .. } => strong("substring"),
        Expr::Position { .. } => strong("position"),
        Expr::Trim { .. } => strong("btrim"),
        Expr::Ceil { .. } => strong("ceil"),
        Expr::Floor { .. } => strong("floor"),
        Expr::Overlay { .. } => strong("overlay"),
        _ => None,
    }
}

/// The name of a scalar subquery's column, as PostgreSQL takes it.
fn first_output_name(query: &Query) -> Option<String> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::Select(select) => return select.projection.first().and_then(item_name),
            SetExpr::Query(inner) => body = inner.body.as_ref(),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            _ => return None,
        }
    }
}

/// PostgreSQL's internal name of a type, as a cast of a constant shows it.
fn type_name(data_type: &ast::DataType) -> String {
    use ast::DataType as T;
    match data_type {
        T::BigInt(_) | T::Int8(_) | T::Int64 => "int8",
        T::Int(_) | T::Integer(_) | T::Int4(_) | T::Int32 => "int4",
        T::SmallInt(_) | T::Int2(_) | T::Int16 => "int2",
        T::Text | T::String(_) => "text",
        T::Varchar(_) | T::CharacterVarying(_) | T::CharVarying(_) => "varchar",
        T::Char(_) | T::Character(_) => "bpchar",
        T::Boolean | T::Bool => "bool",
        T::Decimal(_) | T::Numeric(_) | T::Dec(_) => "numeric",
        T::Real | T::Float4 => "float4",
        T::Double(_) | T::DoublePrecision | T::Float8 | T::Float64 => "float8",
        T::Date => "date",
        T::Timestamp(_, ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz) => "timestamptz",
        T::Timestamp(..) => "timestamp",
        T::Time(..) => "time",
        T::Interval { .. } => "interval",
        T::Bytea => "bytea",
        T::Uuid => "uuid",
        T::JSON => "json",
        T::JSONB => "jsonb",
        other => return other.to_string().to_lowercase(),
    }
    .into()
}

/// A column name with an internal alias's mark and position cut off.
pub fn public_name(name: &str) -> &str {
    name.split(MARK).next().unwrap_or(name)
}

/// A plan's columns under their public names, with their types (a view's
/// columns as its users see them).
pub fn public_columns(
    schema: &datafusion::common::DFSchema,
) -> Vec<(String, arrow::datatypes::DataType)> {
    schema
        .fields()
        .iter()
        .map(|f| (public_name(f.name()).to_string(), f.data_type().clone()))
        .collect()
}

/// `schema` with each internal alias cut at [`MARK`]; None when it has
/// none.
pub fn public_schema(schema: &Schema) -> Option<SchemaRef> {
    if !schema.fields().iter().any(|f| f.name().contains(MARK)) {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.name().split_once(MARK) {
            Some((public, _)) => field.as_ref().clone().with_name(public),
            None => field.as_ref().clone(),
        })
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// `stream` with its columns under their public names.
pub fn public_stream(stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
    let Some(schema) = public_schema(&stream.schema()) else {
        return stream;
    };
    let renamed_schema = schema.clone();
    let renamed = stream.map(move |batch| {
        let batch = batch?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            renamed_schema.clone(),
            batch.columns().to_vec(),
            &options,
        )?)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, renamed))
}
