//! DriftDB's `RelationPlanner`: every table reference becomes a
//! [`TemporalTable`] scan at the snapshot its clause names (or the
//! statement's snapshot), and every view reference is planned from its SQL.

use std::sync::Arc;

use datafusion::common::{DFSchema, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use sqlparser::ast::{self, ObjectName, TableAlias, TableFactor, TableVersion};

use super::provider::TemporalTable;
use super::rewrite::HISTORY_MARKER;
use super::{StatementSnapshot, Target, eval_constant, resolve_target, target_of};
use crate::db::{Database, HistoryRange};
use crate::error::Error;
use crate::txn::TxnView;

/// Marker function in `FOR SYSTEM_TIME AS OF` that asks for `_rowid`/`_seq` (used by DML).
pub const SYSTEM_COLUMNS_MARKER: &str = "__driftdb_system_columns";

/// Plans table and view references against one database.
#[derive(Debug)]
pub struct TemporalPlanner {
    db: Database,
    snapshot: Arc<StatementSnapshot>,
}

impl TemporalPlanner {
    pub fn new(db: Database, snapshot: Arc<StatementSnapshot>) -> Self {
        Self { db, snapshot }
    }
}

/// What a table reference's clause asks for.
enum Reading {
    AsOf(u64),
    SystemColumns(u64),
    History(HistoryRange),
}

impl RelationPlanner for TemporalPlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            version,
            ..
        } = &relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let Some(table) = driftdb_name(context, name)? else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let reading = match version {
            None => Reading::AsOf(self.snapshot.get()),
            Some(version) => self.reading_of(version, context)?,
        };
        // Only reads of "now" see the open transaction's own writes.
        let txn = if version.is_none() || matches!(reading, Reading::SystemColumns(_)) {
            self.snapshot.view()
        } else {
            None
        };
        if let Reading::AsOf(seq) = reading
            && let Some(view) = self.db.view_in(&table, seq, txn.as_deref())
        {
            // A view AS OF a point reads its definition and its tables as of that point.
            let statement_seq = self.snapshot.get();
            self.snapshot.set(seq);
            let planned = plan_view(&table, &view.sql, alias.clone(), context);
            self.snapshot.set(statement_seq);
            return planned;
        }
        let provider = self.provider_for(&table, reading, txn.as_deref())?;
        let Some(provider) = provider else {
            if version.is_none() {
                return Ok(RelationPlanning::Original(Box::new(relation)));
            }
            return Err(Error::UnknownTable {
                name: table,
                context: " at that point in time".into(),
            }
            .into_datafusion());
        };
        let source = provider_as_source(Arc::new(provider));
        let plan = LogicalPlanBuilder::scan(TableReference::bare(table), source, None)?.build()?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}

impl TemporalPlanner {
    fn reading_of(
        &self,
        version: &TableVersion,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<Reading> {
        let (expr, by_time) = match version {
            TableVersion::ForSystemTimeAsOf(expr) | TableVersion::TimestampAsOf(expr) => {
                (expr, true)
            }
            TableVersion::VersionAsOf(expr) => (expr, false),
            _ => return Err(Error::unsupported("this table version clause").into_datafusion()),
        };
        if let Some((marker, args)) = marker_call(expr) {
            if marker == SYSTEM_COLUMNS_MARKER {
                return Ok(Reading::SystemColumns(self.snapshot.get()));
            }
            if marker == HISTORY_MARKER {
                return self.history_reading(args, context).map(Reading::History);
            }
        }
        let value = eval_constant(context.sql_to_expr(expr.clone(), &DFSchema::empty())?)
            .map_err(Error::into_datafusion)?;
        let target = match by_time {
            true => super::timestamp_us(&value).map(Target::TimeUs),
            false => target_of(&value),
        }
        .map_err(Error::into_datafusion)?;
        let seq = resolve_target(&self.db, target).map_err(Error::into_datafusion)?;
        Ok(Reading::AsOf(seq))
    }

    /// `__driftdb_history(from, to, kind)` → the seq range it covers.
    fn history_reading(
        &self,
        args: Vec<ast::Expr>,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<HistoryRange> {
        let mut bounds = Vec::new();
        for arg in args {
            let expr = context.sql_to_expr(arg, &DFSchema::empty())?;
            bounds.push(eval_constant(expr).map_err(Error::into_datafusion)?);
        }
        history_range(&self.db, &bounds).map_err(Error::into_datafusion)
    }

    fn provider_for(
        &self,
        table: &str,
        reading: Reading,
        txn: Option<&TxnView>,
    ) -> Result<Option<TemporalTable>> {
        Ok(match reading {
            Reading::AsOf(seq) => self
                .db
                .table_snapshot_in(table, seq, txn)
                .map(|s| TemporalTable::new(s, false)),
            Reading::SystemColumns(seq) => self
                .db
                .table_snapshot_in(table, seq, txn)
                .map(|s| TemporalTable::new(s, true)),
            Reading::History(range) => self
                .db
                .history_snapshot(table, range)
                .map(|s| TemporalTable::new(s, true)),
        })
    }
}

/// The seq range for history bounds `[from, to, kind]` (NULL = open end).
/// `kind` is `between` (both ends inclusive) or `from_to` (end exclusive).
pub fn history_range(
    db: &Database,
    bounds: &[datafusion::common::ScalarValue],
) -> crate::Result<HistoryRange> {
    let latest = db.visible_seq();
    let bound = |i: usize, end: bool| -> crate::Result<Option<u64>> {
        let Some(value) = bounds.get(i).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let exclusive = end && bounds.get(2).is_some_and(|k| k.to_string() == "from_to");
        Ok(Some(match target_of(value)? {
            Target::Seq(seq) if exclusive => seq.saturating_sub(1),
            Target::Seq(seq) => seq,
            Target::TimeUs(us) => db.seq_at_time_or_zero(if exclusive { us - 1 } else { us })?,
        }))
    };
    let from_seq = bound(0, false)?.unwrap_or(0);
    let to_seq = bound(1, true)?.unwrap_or(latest).min(latest);
    if from_seq > to_seq {
        return Err(crate::Error::BadSnapshot {
            message: format!("history range starts after it ends ({from_seq} > {to_seq})"),
        });
    }
    Ok(HistoryRange { from_seq, to_seq })
}

/// If `expr` calls one of our marker functions, its name and arguments.
fn marker_call(expr: &ast::Expr) -> Option<(String, Vec<ast::Expr>)> {
    let ast::Expr::Function(function) = expr else {
        return None;
    };
    let name = function.name.to_string().to_lowercase();
    if !name.starts_with("__driftdb_") {
        return None;
    }
    let args = match &function.args {
        ast::FunctionArguments::List(list) => list
            .args
            .iter()
            .filter_map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some((name, args))
}

/// The table name if `name` refers to DriftDB's schema (unqualified, `public.t` or `driftdb.public.t`).
fn driftdb_name(
    context: &mut dyn RelationPlannerContext,
    name: &ObjectName,
) -> Result<Option<String>> {
    let reference = context.object_name_to_table_reference(name.clone())?;
    let ours = match &reference {
        TableReference::Bare { .. } => true,
        TableReference::Partial { schema, .. } => schema.as_ref() == crate::sql::SCHEMA_NAME,
        TableReference::Full {
            catalog, schema, ..
        } => {
            catalog.as_ref() == crate::sql::CATALOG_NAME
                && schema.as_ref() == crate::sql::SCHEMA_NAME
        }
    };
    Ok(ours.then(|| reference.table().to_string()))
}

/// Plan a view reference as the derived table `(view SQL) AS alias`.
fn plan_view(
    name: &str,
    sql: &str,
    alias: Option<TableAlias>,
    context: &mut dyn RelationPlannerContext,
) -> Result<RelationPlanning> {
    let query = crate::sql::parse_query(sql).map_err(Error::into_datafusion)?;
    let alias = alias.unwrap_or(TableAlias {
        explicit: true,
        name: ast::Ident::new(name),
        columns: vec![],
        at: None,
    });
    let derived = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(query),
        alias: Some(alias),
        sample: None,
    };
    let plan = context.plan(derived)?;
    Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
        plan, None,
    ))))
}
