//! `RESTORE TABLE t TO {VERSION | TIMESTAMP} AS OF point`: one new commit
//! that makes `t` hold what it held at `point`; history is kept.
//!
//! The table now and at `point` are matched by primary key (by `_rowid`
//! without one). Rows that differ are updated back to their old values,
//! rows added since are deleted, rows deleted since are inserted again;
//! rows that are the same are left alone, so the commit writes only the
//! difference. The writes go through the one commit pipeline: keys,
//! NOT NULL, CHECK and foreign keys (with their actions) are checked as
//! for any DML. Columns are matched by id: a column added since `point`
//! keeps its current value in updated rows and takes its DEFAULT in
//! inserted ones; a dropped column stays dropped.

use datafusion::common::{Column, TableReference};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlanBuilder, lit};

use super::dml;
use super::plans;
use super::session::Session;
use crate::catalog::{ColumnDef, ROWID_COLUMN, TableDef};
use crate::db::TableSnapshot;
use crate::error::{Error, Result};
use crate::sql::StatementResult;
use crate::temporal::changes::{column, distinct, scan};
use crate::temporal::provider::TemporalTable;
use crate::txn::{Write, WriteSet};

/// A parsed `RESTORE TABLE`.
#[derive(Debug, Clone)]
pub struct RestoreTable {
    pub name: sqlparser::ast::ObjectName,
    pub point: super::parser::AsOf,
}

const NOW: &str = "now";
const THEN: &str = "then";

pub(crate) async fn restore_table(
    session: &Session,
    restore: &RestoreTable,
) -> Result<StatementResult> {
    let def = dml::target_table(session, &restore.name)?;
    let seq = super::versions::point_seq(session, &restore.point)?;
    let then = session
        .db()
        .table_snapshot(def.name_at(seq), seq)
        .filter(|s| s.def.id == def.id)
        .ok_or_else(|| Error::UnknownTable {
            name: def.name.clone(),
            context: format!(" at version {seq}"),
        })?;
    let pairs = column_pairs(&def, &then);
    let keys = match def.primary_key_columns() {
        keys if keys.is_empty() => vec![(ROWID_COLUMN.to_string(), ROWID_COLUMN.to_string())],
        keys => keys
            .iter()
            .map(|k| {
                let old = pairs
                    .iter()
                    .find(|(c, _)| c.id == k.id)
                    .and_then(|(_, o)| o.clone());
                old.map(|o| (k.name.clone(), o)).ok_or_else(|| {
                    Error::unsupported(format!(
                        "RESTORE TABLE across a change of key column \"{}\"",
                        k.name
                    ))
                })
            })
            .collect::<Result<_>>()?,
    };
    let restore = Restoring {
        session,
        def: &def,
        then: &then,
        pairs: &pairs,
        keys: &keys,
    };
    let mut writes = WriteSet::new("RESTORE");
    let mut count = restore.updated_back(&mut writes).await?;
    count += restore.deleted_since(&mut writes).await?;
    count += restore.inserted_again(&mut writes).await?;
    dml::commit_counted(session, "RESTORE", writes, count).await
}

/// Each current column with its name at the restore point (None: added since).
fn column_pairs(def: &TableDef, then: &TableSnapshot) -> Vec<(ColumnDef, Option<String>)> {
    def.columns()
        .iter()
        .map(|c| {
            let old = then
                .columns
                .iter()
                .find(|o| o.id == c.id)
                .map(|o| o.name.clone());
            (c.clone(), old)
        })
        .collect()
}

fn now_scan(session: &Session, def: &TableDef) -> Result<LogicalPlanBuilder> {
    plans::table_scan(session, def, TableReference::bare(NOW), true)
}

fn then_scan(then: &TableSnapshot) -> Result<LogicalPlanBuilder> {
    Ok(scan(TemporalTable::new(then.clone(), true), THEN)?)
}

/// One `RESTORE TABLE` under way: the table now and at the restore point.
struct Restoring<'a> {
    session: &'a Session,
    def: &'a TableDef,
    then: &'a TableSnapshot,
    /// Each current column with its name at the restore point.
    pairs: &'a [(ColumnDef, Option<String>)],
    /// (name now, name then) of the columns rows are matched by.
    keys: &'a [(String, String)],
}

impl Restoring<'_> {
    /// `now` joined with `then` by key (`join_type` picks which rows stay).
    fn joined(&self, join_type: JoinType, then_first: bool) -> Result<LogicalPlanBuilder> {
        let now_keys: Vec<Column> = self
            .keys
            .iter()
            .map(|(n, _)| Column::new(Some(NOW), n))
            .collect();
        let then_keys: Vec<Column> = self
            .keys
            .iter()
            .map(|(_, o)| Column::new(Some(THEN), o))
            .collect();
        let (now, then) = (now_scan(self.session, self.def)?, then_scan(self.then)?);
        Ok(match then_first {
            false => now.join(then.build()?, join_type, (now_keys, then_keys), None)?,
            true => then.join(now.build()?, join_type, (then_keys, now_keys), None)?,
        })
    }

    /// Rows under a key both ends hold whose values differ: back to the old ones.
    async fn updated_back(&self, writes: &mut WriteSet) -> Result<u64> {
        if self.keys[0].0 == ROWID_COLUMN {
            return Ok(0); // a version under one `_rowid` never changes
        }
        let differs = self
            .pairs
            .iter()
            .filter_map(|(c, old)| {
                Some(distinct(column(NOW, &c.name), column(THEN, old.as_ref()?)))
            })
            .fold(lit(false), Expr::or);
        let source = self.joined(JoinType::Inner, false)?.filter(differs)?;
        let values = self
            .pairs
            .iter()
            .map(|(_, old)| old.as_ref().map(|o| column(THEN, o)))
            .collect();
        let plan = plans::project_updated(self.def, &TableReference::bare(NOW), source, values)?;
        let batches = self.session.run_plan(plan).await?;
        dml::update_writes(self.session, self.def, batches, writes)
    }

    /// Rows whose key the restore point did not hold: retired.
    async fn deleted_since(&self, writes: &mut WriteSet) -> Result<u64> {
        let source = self.joined(JoinType::LeftAnti, false)?;
        let plan = plans::project_retired(self.def, &TableReference::bare(NOW), source)?;
        let batches = self.session.run_plan(plan).await?;
        dml::retire_writes(self.def, batches, writes)
    }

    /// Rows the restore point held under a key that is gone: inserted again.
    async fn inserted_again(&self, writes: &mut WriteSet) -> Result<u64> {
        let (targets, values): (Vec<usize>, Vec<Expr>) = self
            .pairs
            .iter()
            .enumerate()
            .filter_map(|(i, (c, old))| {
                Some((i, column(THEN, old.as_ref()?).alias(c.name.as_str())))
            })
            .unzip();
        let plan = self
            .joined(JoinType::LeftAnti, true)?
            .project(values)?
            .build()?;
        let mut count = 0;
        for batch in self.session.run_plan(plan).await? {
            if batch.num_rows() == 0 {
                continue;
            }
            let rows = dml::conform_batch(self.session, self.def, &targets, &batch)?;
            count += rows.num_rows() as u64;
            writes.push(Write::Insert {
                table_id: self.def.id,
                keys: super::ddl::keys_of(self.def, &rows)?,
                batch: rows,
            });
        }
        Ok(count)
    }
}
