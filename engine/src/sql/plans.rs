//! The reads writes make, as DataFusion logical plans.
//!
//! An UPDATE, DELETE or TRUNCATE reads the rows it changes; ON CONFLICT DO
//! UPDATE reads the rows holding the conflicting keys; a foreign key's
//! action reads the referencing rows; ADD CONSTRAINT reads rows that would
//! violate it. Each read is a plan built from the statement's syntax tree
//! and the catalog with [`LogicalPlanBuilder`] and [`Expr`] — never SQL
//! text — whose first columns are the target's `_rowid` and primary key.
//!
//! The one place a user's FROM / USING list and WHERE clause are planned
//! by DataFusion's SQL planner (they may hold joins and subqueries) is
//! [`write_source`]: the target is marked by where its name is written, and
//! the relation planner scans that reference with its system columns.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::common::{Column, DFSchema, TableReference};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::sql::sqlparser::ast::ExprWithAlias;
use sqlparser::ast::{self, TableFactor, TableWithJoins};

use super::session::Session;
use crate::catalog::TableDef;
use crate::error::{Error, Result};
use crate::temporal::provider::TemporalTable;

/// The qualifier of new values in an UPDATE's read (old values keep the
/// target's own qualifier, so the two never clash).
fn new_values_ref(alias: &str) -> TableReference {
    TableReference::partial("new", alias)
}

/// A column of relation `qualifier`.
pub(crate) fn column(qualifier: &TableReference, name: &str) -> Expr {
    Expr::Column(Column::new(Some(qualifier.clone()), name))
}

/// `_rowid`, then the primary-key columns, of the target under `alias`.
pub(crate) fn rowid_and_key(def: &TableDef, alias: &TableReference) -> Vec<Expr> {
    let mut exprs = vec![column(alias, crate::catalog::ROWID_COLUMN)];
    exprs.extend(
        def.primary_key_columns()
            .iter()
            .map(|c| column(alias, &c.name)),
    );
    exprs
}

/// A scan of `def` as the current statement sees it, under `alias`;
/// `system_columns` adds `_rowid` and `_seq`.
pub(crate) fn table_scan(
    session: &Session,
    def: &TableDef,
    alias: TableReference,
    system_columns: bool,
) -> Result<LogicalPlanBuilder> {
    let snapshot = session
        .table_snapshot(&def.name)
        .ok_or_else(|| Error::UnknownTable {
            name: def.name.clone(),
            context: String::new(),
        })?;
    let provider = TemporalTable::new(snapshot, system_columns);
    Ok(LogicalPlanBuilder::scan(
        alias,
        provider_as_source(Arc::new(provider)),
        None,
    )?)
}

/// A scan of rows held in memory (proposed rows, removed keys) under `alias`.
pub(crate) fn batch_scan(batch: RecordBatch, alias: TableReference) -> Result<LogicalPlanBuilder> {
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    Ok(LogicalPlanBuilder::scan(
        alias,
        provider_as_source(Arc::new(table)),
        None,
    )?)
}

/// The rows an UPDATE or DELETE may change: the target `factor` (with its
/// system columns) joined with the `from` tables and filtered by
/// `selection`, planned by DataFusion from the statement's own tree.
pub(crate) async fn write_source(
    session: &Session,
    factor: &TableFactor,
    from: &[TableWithJoins],
    selection: Option<&ast::Expr>,
) -> Result<LogicalPlan> {
    let target = write_target_at(session, factor)?;
    let mut tables = vec![TableWithJoins {
        relation: factor.clone(),
        joins: Vec::new(),
    }];
    tables.extend(from.iter().cloned());
    let query = select_all(tables, selection.cloned());
    session.plan_write_source(query, target).await
}

/// Where the write target `factor` is named in the statement (the relation
/// planner reads it with its system columns); a target read at another
/// point in time is refused.
fn write_target_at(
    session: &Session,
    factor: &TableFactor,
) -> Result<sqlparser::tokenizer::Location> {
    let TableFactor::Table { name, version, .. } = factor else {
        return Err(Error::unsupported(format!("writing to {factor}")));
    };
    if version.is_some() || session.snapshot.history().for_table(name).is_some() {
        return Err(Error::InvalidArgument {
            message: format!("cannot write to {name} as of another point in time"),
        });
    }
    crate::sql::parser::name_location(name)
        .ok_or_else(|| Error::internal("write target has no position"))
}

/// The rows a MERGE reads: `source LEFT JOIN target ON on`, the target
/// (with its system columns) at the statement's snapshot.
pub(crate) async fn merge_source(
    session: &Session,
    target: &TableFactor,
    source: &TableFactor,
    on: &ast::Expr,
) -> Result<LogicalPlan> {
    let at = write_target_at(session, target)?;
    let join = ast::Join {
        relation: target.clone(),
        global: false,
        join_operator: ast::JoinOperator::LeftOuter(ast::JoinConstraint::On(on.clone())),
    };
    let tables = vec![TableWithJoins {
        relation: source.clone(),
        joins: vec![join],
    }];
    session
        .plan_write_source(select_all(tables, None), at)
        .await
}

/// `SELECT * FROM tables [WHERE selection]` as a tree.
fn select_all(from: Vec<TableWithJoins>, selection: Option<ast::Expr>) -> ast::Query {
    let everything = vec![ast::SelectItem::Wildcard(Default::default())];
    select_query(everything, from, selection)
}

/// `SELECT projection FROM from [WHERE selection]` as a tree.
pub(crate) fn select_query(
    projection: Vec<ast::SelectItem>,
    from: Vec<TableWithJoins>,
    selection: Option<ast::Expr>,
) -> ast::Query {
    let select = ast::Select {
        select_token: ast::helpers::attached_token::AttachedToken::empty(),
        optimizer_hints: Vec::new(),
        distinct: None,
        select_modifiers: None,
        top: None,
        top_before_distinct: false,
        projection,
        exclude: None,
        into: None,
        from,
        lateral_views: Vec::new(),
        prewhere: None,
        selection,
        connect_by: Vec::new(),
        group_by: ast::GroupByExpr::Expressions(Vec::new(), Vec::new()),
        cluster_by: Vec::new(),
        distribute_by: Vec::new(),
        sort_by: Vec::new(),
        having: None,
        named_window: Vec::new(),
        qualify: None,
        window_before_qualify: false,
        value_table_mode: None,
        flavor: ast::SelectFlavor::Standard,
    };
    ast::Query {
        with: None,
        body: Box::new(ast::SetExpr::Select(Box::new(select))),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: Vec::new(),
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: Vec::new(),
    }
}

/// An expression of the statement's tree planned against `schema`.
pub(crate) fn plan_expr(session: &Session, expr: &ast::Expr, schema: &DFSchema) -> Result<Expr> {
    let state = session.context().state();
    let with_alias = ExprWithAlias {
        expr: expr.clone(),
        alias: None,
    };
    Ok(state.create_logical_expr_from_sql_expr(with_alias, schema)?)
}

/// `_rowid` and primary key of the rows `source` reads.
pub(crate) fn project_retired(
    def: &TableDef,
    alias: &TableReference,
    source: LogicalPlanBuilder,
) -> Result<LogicalPlan> {
    Ok(source.project(rowid_and_key(def, alias))?.build()?)
}

/// `_rowid`, primary key, then every column (the rows a `DELETE …
/// RETURNING` removes).
pub(crate) fn project_retired_rows(
    def: &TableDef,
    alias: &TableReference,
    source: LogicalPlanBuilder,
) -> Result<LogicalPlan> {
    let mut exprs = rowid_and_key(def, alias);
    for c in def.columns() {
        exprs.push(column(alias, &c.name).alias(format!("{RETURNED_PREFIX}{}", c.name)));
    }
    Ok(source.project(exprs)?.build()?)
}

/// Prefix of the columns [`project_retired_rows`] adds (the key columns
/// carry the plain names already).
const RETURNED_PREFIX: &str = "returned\u{1f}";

/// `_rowid`, primary key, then every column's new value: `values[i]` where
/// given, else the old value.
pub(crate) fn project_updated(
    def: &TableDef,
    alias: &TableReference,
    source: LogicalPlanBuilder,
    values: Vec<Option<Expr>>,
) -> Result<LogicalPlan> {
    let new = new_values_ref(&alias.to_string());
    let mut exprs = rowid_and_key(def, alias);
    for (c, value) in def.columns().iter().zip(values) {
        let value = value.unwrap_or_else(|| column(alias, &c.name));
        exprs.push(value.alias_qualified(Some(new.clone()), &c.name));
    }
    Ok(source.project(exprs)?.build()?)
}

/// The NULL a SET NULL action writes (cast to the column's type when conformed).
pub(crate) fn null() -> Expr {
    lit(datafusion::common::ScalarValue::Null)
}

/// `col IS NOT NULL` for every column, ANDed.
pub(crate) fn all_not_null(columns: &[Expr]) -> Option<Expr> {
    columns
        .iter()
        .map(|c| c.clone().is_not_null())
        .reduce(Expr::and)
}
