//! DriftDB's `RelationPlanner`: every table reference becomes a
//! [`TemporalTable`] scan at the snapshot its clause names (or the
//! statement's snapshot), and every view reference is planned from its SQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
use sqlparser::ast::{self, ObjectName, TableAlias, TableFactor, TableVersion};

use super::provider::TemporalTable;
use super::{StatementSnapshot, Target, eval_constant, resolve_target, target_of};
use crate::catalog::Catalog;
use crate::db::{Database, HistoryRange};
use crate::error::Error;
use crate::sql::information_schema;
use crate::sql::parser::{HistoryClause, HistoryKind};
use crate::txn::TxnView;
use datafusion::datasource::MemTable;

/// Plans table and view references against one database.
#[derive(Debug)]
pub struct TemporalPlanner {
    db: Database,
    snapshot: Arc<StatementSnapshot>,
    /// Set while views are planned to list their columns: a view reading
    /// `information_schema.columns` must not list views again, forever.
    listing_views: AtomicBool,
}

impl TemporalPlanner {
    pub fn new(db: Database, snapshot: Arc<StatementSnapshot>) -> Self {
        Self {
            db,
            snapshot,
            listing_views: AtomicBool::new(false),
        }
    }
}

/// What a table reference's clause asks for.
enum Reading {
    AsOf(u64),
    /// The table a write changes, with `_rowid` and `_seq`, at the statement's snapshot.
    WriteTarget(u64),
    History(HistoryRange),
}

impl RelationPlanner for TemporalPlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        if let TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(alias),
            sample: None,
        } = &relation
        {
            return plan_derived(subquery, alias, context);
        }
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
        if let Some(relation) = information_schema_name(context, name)? {
            let clause = self.snapshot.history().for_table(name).is_some();
            return self.plan_information_schema(
                &relation,
                version.as_ref(),
                clause,
                alias,
                context,
            );
        }
        let Some(table) = driftdb_name(context, name)? else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let history = self.snapshot.history();
        let clause = history.for_table(name);
        let write_target = self.snapshot.write_target().is_some()
            && self.snapshot.write_target() == crate::sql::parser::name_location(name);
        if version.is_none() && clause.is_none() && !write_target && history.names_cte(name) {
            // A CTE of that name is in scope: DataFusion plans it.
            return Ok(RelationPlanning::Original(Box::new(relation)));
        }
        let reading = match (version, clause) {
            (None, None) if write_target => Reading::WriteTarget(self.snapshot.get()),
            (None, None) => Reading::AsOf(self.snapshot.get()),
            (Some(version), None) => self.reading_of(version, context)?,
            (_, Some(clause)) => Reading::History(self.history_reading(clause, context)?),
        };
        // Only reads of "now" see the open transaction's own writes.
        let now = version.is_none() && clause.is_none();
        let txn = if now { self.snapshot.view() } else { None };
        if let Reading::AsOf(seq) = reading
            && let Some(view) = self.db.view_in(&table, seq, txn.as_deref())
        {
            // A view AS OF a point reads its definition and its tables as of that point.
            let statement_seq = self.snapshot.get();
            self.snapshot.set(seq);
            let was_fixed = self.snapshot.set_fixed(self.snapshot.fixed() || !now);
            let planned = plan_view(&self.snapshot, &table, &view.sql, alias.clone(), context);
            self.snapshot.set_fixed(was_fixed);
            self.snapshot.set(statement_seq);
            return planned;
        }
        let follows = now && !write_target && !self.snapshot.fixed();
        let provider = self
            .provider_for(&table, reading, txn.as_deref())?
            .map(|t| if follows { t.following_statement() } else { t });
        let Some(provider) = provider else {
            if now {
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
    /// `information_schema.<relation>` as of the statement's snapshot (or
    /// the point its `AS OF` names), built from the catalog then.
    fn plan_information_schema(
        &self,
        relation: &str,
        version: Option<&TableVersion>,
        history_clause: bool,
        alias: &Option<TableAlias>,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        if history_clause {
            return Err(
                Error::unsupported("history clauses on information_schema").into_datafusion()
            );
        }
        let (seq, txn) = match version {
            Some(version) => match self.reading_of(version, context)? {
                Reading::AsOf(seq) => (seq, None),
                _ => return Err(Error::internal("unexpected reading").into_datafusion()),
            },
            None => (self.snapshot.get(), self.snapshot.view()),
        };
        let catalog = self.db.catalog_in(seq, txn.as_deref());
        let view_columns = match relation == "columns" {
            true => self.view_columns(&catalog, seq, context),
            false => catalog
                .view_names_at(seq)
                .into_iter()
                .map(|v| (v, None))
                .collect(),
        };
        let source = information_schema::Source {
            catalog: &catalog,
            seq,
            view_columns: &view_columns,
        };
        let batch =
            information_schema::relation(relation, &source).map_err(Error::into_datafusion)?;
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        let reference = TableReference::partial(information_schema::SCHEMA, relation);
        let source = provider_as_source(Arc::new(table));
        let plan = LogicalPlanBuilder::scan(reference, source, None)?.build()?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }

    /// Each view live at `seq` with its columns (None for a view that no
    /// longer plans, and while views are already being listed).
    fn view_columns(
        &self,
        catalog: &Catalog,
        seq: u64,
        context: &mut dyn RelationPlannerContext,
    ) -> Vec<(String, Option<information_schema::ViewColumns>)> {
        let names = catalog.view_names_at(seq);
        if self.listing_views.swap(true, Ordering::SeqCst) {
            return names.into_iter().map(|v| (v, None)).collect();
        }
        let statement_seq = self.snapshot.get();
        self.snapshot.set(seq);
        let was_fixed = self.snapshot.set_fixed(true);
        let listed = names
            .into_iter()
            .map(|name| {
                let columns = catalog.view_at(&name, seq).and_then(|view| {
                    match plan_view(&self.snapshot, &name, &view.sql, None, context) {
                        Ok(RelationPlanning::Planned(planned)) => Some(
                            crate::sql::output_names::public_columns(planned.plan.schema()),
                        ),
                        _ => None,
                    }
                });
                (name, columns)
            })
            .collect();
        self.snapshot.set_fixed(was_fixed);
        self.snapshot.set(statement_seq);
        self.listing_views.store(false, Ordering::SeqCst);
        listed
    }

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
        let value = self.constant(expr, context)?;
        let target = match by_time {
            true => super::time_target(&self.db, &value),
            false => target_of(&self.db, &value),
        }
        .map_err(Error::into_datafusion)?;
        let seq = resolve_target(&self.db, target).map_err(Error::into_datafusion)?;
        Ok(Reading::AsOf(seq))
    }

    /// The seq range a history clause covers.
    fn history_reading(
        &self,
        clause: &HistoryClause,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<HistoryRange> {
        let mut bound = |expr: &Option<ast::Expr>| -> Result<Option<ScalarValue>> {
            let Some(expr) = expr else { return Ok(None) };
            Ok(Some(self.constant(expr, context)?))
        };
        let from = bound(&clause.from)?;
        let to = bound(&clause.to)?;
        let end_exclusive = clause.kind == HistoryKind::FromTo;
        history_range(&self.db, from.as_ref(), to.as_ref(), end_exclusive)
            .map_err(Error::into_datafusion)
    }

    /// A clause's point in history as a value: `expr` folded, with the
    /// statement's parameter values in place of its placeholders.
    fn constant(
        &self,
        expr: &ast::Expr,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<ScalarValue> {
        let expr = context.sql_to_expr(expr.clone(), &DFSchema::empty())?;
        let params = self.snapshot.params();
        let bound = expr.transform(|e| match e {
            Expr::Placeholder(placeholder) => {
                let value = crate::sql::params::value_of(&placeholder.id, &params)
                    .map_err(Error::into_datafusion)?;
                Ok(Transformed::yes(Expr::Literal(value, None)))
            }
            other => Ok(Transformed::no(other)),
        })?;
        eval_constant(bound.data).map_err(Error::into_datafusion)
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
            Reading::WriteTarget(seq) => self
                .db
                .table_snapshot_in(table, seq, txn)
                .map(|s| TemporalTable::new(s, true)),
            Reading::History(range) => self
                .db
                .history_snapshot(table, range)
                .map_err(Error::into_datafusion)?
                .map(|s| TemporalTable::new(s, true)),
        })
    }
}

/// The seq range from `from` to `to` (None = open end; each a version
/// or a time); with `end_exclusive` the range stops before `to`.
pub fn history_range(
    db: &Database,
    from: Option<&ScalarValue>,
    to: Option<&ScalarValue>,
    end_exclusive: bool,
) -> crate::Result<HistoryRange> {
    let latest = db.visible_seq();
    let bound = |value: Option<&ScalarValue>, end: bool| -> crate::Result<Option<u64>> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let exclusive = end && end_exclusive;
        Ok(Some(match target_of(db, value)? {
            Target::Seq(seq) if exclusive => seq.saturating_sub(1),
            Target::Seq(seq) => seq,
            Target::TimeUs(us) => db.seq_at_time_or_zero(if exclusive { us - 1 } else { us })?,
        }))
    };
    let from_seq = bound(from, false)?.unwrap_or(0);
    let to_seq = bound(to, true)?.unwrap_or(latest).min(latest);
    if from_seq > to_seq {
        return Err(crate::Error::BadSnapshot {
            message: format!("history range starts after it ends ({from_seq} > {to_seq})"),
        });
    }
    Ok(HistoryRange { from_seq, to_seq })
}

/// The schema `name` names in DriftDB's catalog (None: unqualified) and
/// its relation; None when it names another catalog.
fn schema_and_relation(
    context: &mut dyn RelationPlannerContext,
    name: &ObjectName,
) -> Result<Option<(Option<String>, String)>> {
    let reference = context.object_name_to_table_reference(name.clone())?;
    let schema = match &reference {
        TableReference::Bare { .. } => None,
        TableReference::Partial { schema, .. } => Some(schema.to_string()),
        TableReference::Full {
            catalog, schema, ..
        } if catalog.as_ref() == crate::sql::CATALOG_NAME => Some(schema.to_string()),
        TableReference::Full { .. } => return Ok(None),
    };
    Ok(Some((schema, reference.table().to_string())))
}

/// The table name if `name` refers to DriftDB's schema (unqualified, `public.t` or `driftdb.public.t`).
fn driftdb_name(
    context: &mut dyn RelationPlannerContext,
    name: &ObjectName,
) -> Result<Option<String>> {
    Ok(match schema_and_relation(context, name)? {
        Some((None, table)) => Some(table),
        Some((Some(schema), table)) if schema == crate::sql::SCHEMA_NAME => Some(table),
        _ => None,
    })
}

/// The relation's name if `name` is `information_schema.<relation>` and DriftDB answers it.
fn information_schema_name(
    context: &mut dyn RelationPlannerContext,
    name: &ObjectName,
) -> Result<Option<String>> {
    Ok(match schema_and_relation(context, name)? {
        Some((Some(schema), relation))
            if schema == information_schema::SCHEMA && information_schema::answers(&relation) =>
        {
            Some(relation)
        }
        _ => None,
    })
}

/// Plan a view reference as the derived table `(view query) AS alias`,
/// with the view's own history clauses in force while it is planned.
fn plan_view(
    snapshot: &StatementSnapshot,
    name: &str,
    sql: &str,
    alias: Option<TableAlias>,
    context: &mut dyn RelationPlannerContext,
) -> Result<RelationPlanning> {
    let crate::sql::parser::ViewQuery {
        mut query,
        columns,
        history,
    } = crate::sql::parser::parse_view_query(sql).map_err(Error::into_datafusion)?;
    crate::sql::output_names::name_view(&mut query);
    let mut alias = alias.unwrap_or(TableAlias {
        explicit: true,
        name: ast::Ident::new(name),
        columns: vec![],
        at: None,
    });
    // The first columns take the names the reference gives, else the
    // view's column list (either may name fewer than all).
    let renamed: Vec<String> = match alias.columns.is_empty() {
        true => columns
            .iter()
            .map(crate::sql::ddl::normalize_ident)
            .collect(),
        false => alias
            .columns
            .iter()
            .map(|c| crate::sql::ddl::normalize_ident(&c.name))
            .collect(),
    };
    alias.columns.clear();
    let qualifier = TableReference::bare(crate::sql::ddl::normalize_ident(&alias.name));
    let derived = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(query),
        alias: Some(alias),
        sample: None,
    };
    let statement_history = snapshot.set_history(history);
    let plan = context.plan(derived);
    snapshot.set_history(statement_history);
    let plan = rename_columns(plan?, &qualifier, &renamed)?;
    Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
        plan, None,
    ))))
}

/// A derived table `(query) AS alias [(columns)]`, its columns named as
/// PostgreSQL names them: two columns of one name (`SELECT *` over a join
/// of tables that share a column name) keep that name, and a reference
/// to it is ambiguous (42702). DataFusion would rename the second
/// (`id:1`) and let `id` mean the first: a wrong answer without an error.
/// Repeated names get internal aliases ([`MARK`](crate::sql::output_names::MARK)),
/// cut back to the name as rows leave.
fn plan_derived(
    subquery: &ast::Query,
    alias: &TableAlias,
    context: &mut dyn RelationPlannerContext,
) -> Result<RelationPlanning> {
    let unaliased = TableFactor::Derived {
        lateral: false,
        subquery: Box::new(subquery.clone()),
        alias: None,
        sample: None,
    };
    let plan = context.plan(unaliased)?;
    let qualifier = TableReference::bare(crate::sql::ddl::normalize_ident(&alias.name));
    // The alias list names the first columns; the rest keep their names.
    let given: Vec<String> = alias
        .columns
        .iter()
        .map(|c| crate::sql::ddl::normalize_ident(&c.name))
        .collect();
    let mut names: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| given.get(i).cloned().unwrap_or_else(|| f.name().clone()))
        .collect();
    if given.len() > names.len() {
        return Err(Error::Syntax {
            message: format!(
                "table \"{}\" has {} columns available but {} columns specified",
                qualifier,
                names.len(),
                given.len()
            ),
        }
        .into_datafusion());
    }
    // Names as the user sees them (the select list's own repeats come
    // marked already); a name two columns share is marked, any other plain.
    let public: Vec<String> = names
        .iter()
        .map(|n| crate::sql::output_names::public_name(n).to_string())
        .collect();
    for (i, name) in names.iter_mut().enumerate() {
        *name = match public.iter().filter(|n| **n == public[i]).count() > 1 {
            true => format!("{}{}{i}", public[i], crate::sql::output_names::MARK),
            false => public[i].clone(),
        };
    }
    let plan = rename_columns(plan, &qualifier, &names)?;
    let plan = LogicalPlanBuilder::from(plan).alias(qualifier)?.build()?;
    Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
        plan, None,
    ))))
}

/// `plan` with its first columns renamed to `names` (under `qualifier`).
fn rename_columns(
    plan: datafusion::logical_expr::LogicalPlan,
    qualifier: &TableReference,
    names: &[String],
) -> Result<datafusion::logical_expr::LogicalPlan> {
    if names.is_empty() {
        return Ok(plan);
    }
    let fields = plan.schema().columns();
    if names.len() > fields.len() {
        return Err(Error::Syntax {
            message: format!(
                "{} column names given for a relation of {} columns",
                names.len(),
                fields.len()
            ),
        }
        .into_datafusion());
    }
    let exprs: Vec<Expr> = fields
        .into_iter()
        .enumerate()
        .map(|(i, column)| {
            let name = names.get(i).cloned().unwrap_or_else(|| column.name.clone());
            Expr::Column(column).alias_qualified(Some(qualifier.clone()), name)
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}
