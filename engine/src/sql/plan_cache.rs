//! Prepared queries plan once.
//!
//! `Session::prepare` plans a query to learn its result schema and
//! parameter types; that plan (placeholders unbound) is kept when every
//! table it reads is read at the statement's own snapshot (no `AS OF` or
//! history clause, directly or through a view), so nothing in it depends
//! on a point in time except those scans. Each execution re-binds the
//! scans to a fresh snapshot of the same tables at the executing
//! statement's seq, binds the parameter values, and runs it: no parsing,
//! no SQL-to-plan step.
//!
//! The plan is used only while the catalog is unchanged (its schema epoch,
//! the last commit that changed any table, view or sequence) and only
//! outside transaction blocks and `driftdb.as_of`; otherwise the statement
//! is planned afresh, as any other.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::datasource::{DefaultTableSource, provider_as_source};
use datafusion::logical_expr::{LogicalPlan, TableScan};

use crate::db::Database;
use crate::error::Result;
use crate::temporal::provider::TemporalTable;

/// A prepared query's plan, kept while the catalog is unchanged.
#[derive(Debug)]
pub(crate) struct CachedPlan {
    plan: LogicalPlan,
    schema_epoch: u64,
}

impl CachedPlan {
    /// Keep `plan` (made at `schema_epoch`) if every table it reads,
    /// subqueries included, is read at the statement's snapshot.
    pub(crate) fn new(plan: &LogicalPlan, schema_epoch: u64) -> Option<Self> {
        let mut reusable = true;
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && !temporal_table(scan).is_some_and(TemporalTable::follows_statement)
            {
                reusable = false;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .ok()?;
        reusable.then(|| Self {
            plan: plan.clone(),
            schema_epoch,
        })
    }

    /// The plan with its tables read at snapshot `seq`; None when the
    /// catalog changed since it was made (plan the statement afresh).
    pub(crate) fn at(&self, db: &Database, seq: u64) -> Result<Option<LogicalPlan>> {
        if db.schema_epoch() != self.schema_epoch {
            return Ok(None);
        }
        let mut stale = false;
        let plan = self.plan.clone().transform_up_with_subqueries(|node| {
            let LogicalPlan::TableScan(mut scan) = node else {
                return Ok(Transformed::no(node));
            };
            match rebound(&scan, db, seq) {
                Some(table) => {
                    scan.source = provider_as_source(Arc::new(table));
                    Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                }
                None => {
                    stale = true;
                    Ok(Transformed::no(LogicalPlan::TableScan(scan)))
                }
            }
        })?;
        Ok((!stale).then_some(plan.data))
    }
}

/// The table `scan` reads, at snapshot `seq`, if it still has the columns
/// the plan was made with.
fn rebound(scan: &TableScan, db: &Database, seq: u64) -> Option<TemporalTable> {
    let planned = temporal_table(scan)?.snapshot();
    let snapshot = db.table_snapshot_in(&planned.def.name, seq, None)?;
    (snapshot.def.id == planned.def.id && snapshot.columns == planned.columns)
        .then(|| TemporalTable::new(snapshot, false).following_statement())
}

/// The DriftDB table behind a scan, if it is one.
fn temporal_table(scan: &TableScan) -> Option<&TemporalTable> {
    let source = scan.source.as_ref().downcast_ref::<DefaultTableSource>()?;
    let provider: &dyn std::any::Any = source.table_provider.as_ref();
    provider.downcast_ref::<TemporalTable>()
}
