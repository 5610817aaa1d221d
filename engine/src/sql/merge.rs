//! `MERGE INTO target USING source ON condition WHEN [NOT] MATCHED [AND
//! predicate] THEN UPDATE SET … | DELETE | INSERT [(columns)] VALUES (…)`.
//!
//! One read, then the writes UPDATE, DELETE and INSERT would make: the
//! source `LEFT JOIN`ed with the target's live rows (with their `_rowid`)
//! on the condition, and one projection that gives each joined row the
//! number of the first WHEN clause that applies to it (MATCHED clauses to
//! rows with a target row, NOT MATCHED ones to rows without; none: the row
//! is left alone), each UPDATE clause's new values and each INSERT
//! clause's values. A target row that two source rows would change is
//! 21000, as in PostgreSQL. The target may not carry an `AS OF`; the
//! source may (it is any table factor, read as a query reads it).

use std::collections::HashSet;

use arrow::array::{AsArray, BooleanArray, UInt64Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Int32Type;
use arrow::record_batch::RecordBatch;
use datafusion::common::{DFSchema, TableReference};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, lit, when};
use sqlparser::ast::{self, MergeAction, MergeClauseKind, MergeInsertKind};

use super::ddl::{keys_of, table_name};
use super::dml;
use super::plans;
use super::{Session, StatementResult};
use crate::catalog::{ROWID_COLUMN, TableDef};
use crate::error::{Error, Result};
use crate::txn::{Write, WriteSet};

/// One WHEN clause, planned: what it does with the rows that take it.
enum Action {
    /// New values of every column, in the projection from `first` on.
    Update {
        first: usize,
    },
    Delete,
    /// Values of columns `targets`, in the projection from `first` on.
    Insert {
        first: usize,
        targets: Vec<usize>,
    },
}

pub(crate) async fn merge(session: &Session, merge: ast::Merge) -> Result<StatementResult> {
    let (name, alias) = dml::relation_of(&merge.table)?;
    let def = dml::target_table(session, &name)?;
    let alias = TableReference::bare(alias.unwrap_or_else(|| def.name.clone()));
    let joined = plans::merge_source(session, &merge.table, &merge.source, &merge.on).await?;
    let input = joined.schema().clone();
    // NOT MATCHED clauses see the source only (the target row is not there).
    let source_only = without_qualifier(&input, &alias)?;
    let matched = plans::column(&alias, ROWID_COLUMN).is_not_null();
    let mut exprs = plans::rowid_and_key(&def, &alias);
    let key_len = exprs.len();
    exprs.push(Expr::Literal(
        datafusion::common::ScalarValue::Int32(None),
        None,
    ));
    let mut branches: Vec<(Expr, Expr)> = Vec::new();
    let mut actions = Vec::with_capacity(merge.clauses.len());
    for (number, clause) in merge.clauses.iter().enumerate() {
        let applies = match clause.clause_kind {
            MergeClauseKind::Matched => matched.clone(),
            MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget => {
                plans::column(&alias, ROWID_COLUMN).is_null()
            }
            MergeClauseKind::NotMatchedBySource => {
                return Err(Error::unsupported("MERGE … WHEN NOT MATCHED BY SOURCE"));
            }
        };
        let sees = match clause.clause_kind {
            MergeClauseKind::Matched => &input,
            _ => &source_only,
        };
        let condition = match &clause.predicate {
            Some(predicate) => applies.and(plans::plan_expr(session, predicate, sees)?),
            None => applies,
        };
        branches.push((condition, lit(number as i32)));
        let first = exprs.len();
        let action = match (&clause.clause_kind, &clause.action) {
            (MergeClauseKind::Matched, MergeAction::Update(update)) => {
                let assigned = dml::assigned_values(&def, &update.assignments)?;
                let values = dml::plan_values(session, &def, &assigned, &input)?;
                for (column, value) in def.columns().iter().zip(values) {
                    exprs.push(value.unwrap_or_else(|| plans::column(&alias, &column.name)));
                }
                Action::Update { first }
            }
            (MergeClauseKind::Matched, MergeAction::Delete { .. }) => Action::Delete,
            (MergeClauseKind::Matched, MergeAction::Insert(_)) => {
                return Err(Error::Syntax {
                    message: "INSERT is not allowed in a WHEN MATCHED clause of MERGE".into(),
                });
            }
            (_, MergeAction::Insert(insert)) => {
                let names = insert
                    .columns
                    .iter()
                    .map(table_name)
                    .collect::<Result<Vec<_>>>()?;
                let mut targets = dml::target_columns(&def, &names)?;
                let MergeInsertKind::Values(values) = &insert.kind else {
                    return Err(Error::unsupported("MERGE … INSERT ROW"));
                };
                let [row] = values.rows.as_slice() else {
                    return Err(Error::Syntax {
                        message: "MERGE … INSERT takes one VALUES row".into(),
                    });
                };
                // Without a column list, the values fill the first columns.
                if names.is_empty() && row.len() < targets.len() {
                    targets.truncate(row.len());
                }
                if row.len() != targets.len() {
                    return Err(Error::Syntax {
                        message: format!(
                            "MERGE … INSERT gives {} values for {} columns",
                            row.len(),
                            targets.len()
                        ),
                    });
                }
                // `DEFAULT` is allowed for a GENERATED ALWAYS column.
                let given: Vec<usize> = row
                    .iter()
                    .zip(&targets)
                    .filter(|(value, _)| !dml::is_default_keyword(value))
                    .map(|(_, target)| *target)
                    .collect();
                dml::refuse_generated_always(&def, &given)?;
                for (value, target) in row.iter().zip(&targets) {
                    let column = &def.columns()[*target];
                    exprs.push(match dml::is_default_keyword(value) {
                        true => dml::default_assignment(session, column)?,
                        false => plans::plan_expr(session, value, &source_only)?,
                    });
                }
                Action::Insert { first, targets }
            }
            (_, _) => {
                return Err(Error::Syntax {
                    message:
                        "UPDATE and DELETE are not allowed in a WHEN NOT MATCHED clause of MERGE"
                            .into(),
                });
            }
        };
        actions.push(action);
    }
    if let Some(((condition, number), rest)) = branches.split_first() {
        let mut case = when(condition.clone(), number.clone());
        for (condition, number) in rest {
            case = case.when(condition.clone(), number.clone());
        }
        exprs[key_len] = case.end()?;
    }
    let exprs: Vec<Expr> = exprs
        .into_iter()
        .enumerate()
        .map(|(i, e)| match i < key_len {
            true => e,
            false => e.alias(format!("merge{}{i}", super::output_names::MARK)),
        })
        .collect();
    let plan = LogicalPlanBuilder::from(joined).project(exprs)?.build()?;
    let batches = session.run_plan(plan).await?;
    let mut writes = WriteSet::new("MERGE");
    let mut count = 0;
    let mut changed: HashSet<u64> = HashSet::new();
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        count += apply_clauses(
            session,
            &def,
            batch,
            key_len,
            &actions,
            &mut changed,
            &mut writes,
        )?;
    }
    dml::commit_counted(session, "MERGE", writes, count).await
}

/// The writes of the rows of `batch` (`_rowid`, key, clause number, then
/// the clauses' values), clause by clause.
fn apply_clauses(
    session: &Session,
    def: &TableDef,
    batch: &RecordBatch,
    key_len: usize,
    actions: &[Action],
    changed: &mut HashSet<u64>,
    writes: &mut WriteSet,
) -> Result<u64> {
    let numbers = batch.column(key_len).as_primitive::<Int32Type>();
    let rowids = batch
        .column(0)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| Error::internal("MERGE read lacks _rowid"))?;
    let mut count = 0;
    for (number, action) in actions.iter().enumerate() {
        let takes: BooleanArray = numbers
            .iter()
            .map(|n| Some(n == Some(number as i32)))
            .collect();
        let rows = takes.true_count();
        if rows == 0 {
            continue;
        }
        count += rows as u64;
        let keep = |columns: Vec<usize>| -> Result<RecordBatch> {
            Ok(filter_record_batch(&batch.project(&columns)?, &takes)?)
        };
        let key: Vec<usize> = (0..key_len).collect();
        match action {
            Action::Update { first } => {
                once_each(rowids, &takes, changed)?;
                let values = *first..*first + def.columns().len();
                let columns = key.into_iter().chain(values).collect();
                dml::update_rows_read(session, def, keep(columns)?, writes)?;
            }
            Action::Delete => {
                once_each(rowids, &takes, changed)?;
                dml::retire_rows_read(def, keep(key)?, writes)?;
            }
            Action::Insert { first, targets } => {
                let values = keep((*first..*first + targets.len()).collect())?;
                let rows = dml::conform_batch(session, def, targets, &values)?;
                let keys = keys_of(def, &rows)?;
                writes.push(Write::Insert {
                    table_id: def.id,
                    batch: rows,
                    keys,
                });
            }
        }
    }
    Ok(count)
}

/// `schema` without the columns of relation `qualifier`.
fn without_qualifier(schema: &DFSchema, qualifier: &TableReference) -> Result<DFSchema> {
    let fields = schema
        .iter()
        .filter(|(q, _)| *q != Some(qualifier))
        .map(|(q, f)| (q.cloned(), f.clone()))
        .collect();
    Ok(DFSchema::new_with_metadata(fields, Default::default())?)
}

/// A target row changes at most once per MERGE (21000, as in PostgreSQL).
fn once_each(rowids: &UInt64Array, takes: &BooleanArray, changed: &mut HashSet<u64>) -> Result<()> {
    for (i, rowid) in rowids.iter().enumerate() {
        if takes.value(i) && !changed.insert(rowid.unwrap_or_default()) {
            return Err(Error::CardinalityViolation {
                message: "MERGE command cannot affect row a second time".into(),
            });
        }
    }
    Ok(())
}
