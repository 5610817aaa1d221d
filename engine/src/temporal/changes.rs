//! The change feed and the diff, as table functions planned over the
//! temporal scans (logical plans built as trees, never SQL text):
//!
//! - `table_changes('t', from [, to])`: every change made by the commits
//!   `from..=to` (versions, or times: `from` is the first commit at or
//!   after it, `to` the last at or before it; `to` defaults to the latest).
//!   One row per changed version: the table's columns (as of `to`), then
//!   `_change_type` (`insert`, `update_preimage`, `update_postimage`,
//!   `delete`), `_seq` (the commit) and `_commit_time`. Delta's change data
//!   feed shape, always on. A version written by a commit pairs with one
//!   retired by the same commit under the same primary key as an update;
//!   a table without a primary key shows an update as a delete and an
//!   insert. Like any table, it has no order of its own: `ORDER BY _seq`
//!   (and the key, preimages before postimages) to replay it.
//! - `table_diff('t', a, b)`: the net difference between the table at `a`
//!   and at `b` by primary key (by `_rowid` without one), one row per key
//!   that differs: `diff_type` (`added`, `removed`, `modified`), then
//!   `from_<column>` for the columns at `a` and `to_<column>` for those at
//!   `b` (Dolt's `dolt_diff` shape). A key is modified when a column that
//!   exists at both ends differs (`IS DISTINCT FROM`).

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::ViewTable;
use datafusion::datasource::{TableProvider, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan, LogicalPlanBuilder, col, lit, when};

use super::provider::{SYSTEM_FROM_COLUMN, SYSTEM_TO_COLUMN, TemporalTable};
use super::{Target, eval_constant, target_of};
use crate::catalog::{RETIRED_COLUMN, ROWID_COLUMN, SEQ_COLUMN};
use crate::db::{Database, HistoryRange, TableSnapshot};
use crate::error::Error;

/// Output column naming the kind of change.
pub const CHANGE_TYPE_COLUMN: &str = "_change_type";
/// Output column with the commit time of the change.
pub const COMMIT_TIME_COLUMN: &str = "_commit_time";
/// Internal: set where a version pairs with one of the other side.
const PAIRED_COLUMN: &str = "__paired";

/// `table_changes('t', from [, to])`.
#[derive(Debug)]
pub struct TableChangesFunction {
    pub db: Database,
    /// Set for sessions that follow open-ended feeds live (see [`super::live`]).
    pub follow: Arc<std::sync::atomic::AtomicBool>,
}

/// `table_diff('t', a, b)`.
#[derive(Debug)]
pub struct TableDiffFunction {
    pub db: Database,
}

impl TableFunctionImpl for TableChangesFunction {
    fn call_with_args(&self, args: TableFunctionArgs<'_, '_>) -> Result<Arc<dyn TableProvider>> {
        let usage =
            "table_changes() takes a table name, a first version or time, and an optional last";
        let (table, values) = arguments(&args, 2..=3, usage)?;
        let (from, to) = change_range(&self.db, &values[0], values.get(1))?;
        let (plan, table_id) = changes_plan(&self.db, &table, from, to)?;
        let finite = Arc::new(ViewTable::new(plan, None));
        let open_end = values.len() == 1;
        match open_end && self.follow.load(std::sync::atomic::Ordering::Relaxed) {
            true => Ok(Arc::new(super::live::LiveChanges::new(
                self.db.clone(),
                (table, table_id),
                (from, to),
                finite,
            ))),
            false => Ok(finite),
        }
    }
}

impl TableFunctionImpl for TableDiffFunction {
    fn call_with_args(&self, args: TableFunctionArgs<'_, '_>) -> Result<Arc<dyn TableProvider>> {
        let usage = "table_diff() takes a table name and two versions or times";
        let (table, values) = arguments(&args, 3..=3, usage)?;
        let seq =
            |value: &ScalarValue| super::resolve_target(&self.db, target_of(&self.db, value)?);
        let (a, b) = (seq(&values[0])?, seq(&values[1])?);
        // The table `table` names at the later point, followed by identity.
        let def = self
            .db
            .table_def_at(&table, a.max(b))
            .ok_or_else(|| unknown_table_at(&table, a.max(b)))?;
        let at = |seq: u64| -> crate::Result<TableSnapshot> {
            self.db
                .table_snapshot(def.name_at(seq), seq)
                .filter(|s| s.def.id == def.id)
                .ok_or_else(|| unknown_table_at(&table, seq))
        };
        let plan = diff_plan(at(a)?, at(b)?)?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

/// The table name and the other arguments, evaluated as constants.
fn arguments(
    args: &TableFunctionArgs<'_, '_>,
    count: std::ops::RangeInclusive<usize>,
    usage: &str,
) -> Result<(String, Vec<ScalarValue>)> {
    let bad = || Error::InvalidArgument {
        message: usage.to_string(),
    };
    if !count.contains(&args.exprs().len()) {
        return Err(bad().into());
    }
    let mut values = args
        .exprs()
        .iter()
        .map(|e| eval_constant(e.clone()))
        .collect::<crate::Result<Vec<_>>>()?;
    let table = match values.remove(0).cast_to(&DataType::Utf8) {
        Ok(ScalarValue::Utf8(Some(name))) => name,
        _ => return Err(bad().into()),
    };
    if values.iter().any(ScalarValue::is_null) {
        return Err(bad().into());
    }
    Ok((table, values))
}

fn unknown_table(name: &str) -> Error {
    Error::UnknownTable {
        name: name.to_string(),
        context: String::new(),
    }
}

fn unknown_table_at(name: &str, seq: u64) -> Error {
    Error::UnknownTable {
        name: name.to_string(),
        context: format!(" at version {seq}"),
    }
}

/// The commits `from..=to` a change feed covers (22008 if none exist).
fn change_range(
    db: &Database,
    from: &ScalarValue,
    to: Option<&ScalarValue>,
) -> crate::Result<(u64, u64)> {
    let latest = db.visible_seq();
    let from = match target_of(db, from)? {
        Target::Seq(seq) => seq.max(1),
        // The first commit at or after the time.
        Target::TimeUs(us) => match db.seq_at_time_or_zero(us)? {
            0 => 1,
            seq if db.commit_time(seq).is_some_and(|t| t == us) => seq,
            seq => seq + 1,
        },
    };
    let to = match to.map(|to| target_of(db, to)).transpose()? {
        None => latest,
        Some(Target::Seq(seq)) => seq.min(latest),
        Some(Target::TimeUs(us)) => db.seq_at_time_or_zero(us)?,
    };
    if from > to {
        return Err(Error::BadSnapshot {
            message: format!(
                "no commits between {from} and {to} (versions run from 1 to {latest})"
            ),
        });
    }
    Ok((from, to))
}

/// The user columns of a snapshot, by output name.
fn user_columns(snapshot: &TableSnapshot) -> Vec<String> {
    snapshot.columns.iter().map(|c| c.name.clone()).collect()
}

/// The columns a version is matched by: the primary key, else `_rowid`.
fn key_columns(snapshot: &TableSnapshot) -> Vec<String> {
    let def = &snapshot.def;
    let keys: Vec<String> = def
        .primary_key
        .iter()
        .filter_map(|id| snapshot.columns.iter().find(|c| c.id == *id))
        .map(|c| c.name.clone())
        .collect();
    match keys.len() == def.primary_key.len() && !keys.is_empty() {
        true => keys,
        false => vec![ROWID_COLUMN.to_string()],
    }
}

/// A scan of `table` under `alias`.
pub(crate) fn scan(table: TemporalTable, alias: &str) -> Result<LogicalPlanBuilder> {
    LogicalPlanBuilder::scan(alias, provider_as_source(Arc::new(table)), None)
}

/// `a IS DISTINCT FROM b`.
pub(crate) fn distinct(a: Expr, b: Expr) -> Expr {
    datafusion::logical_expr::binary_expr(a, datafusion::logical_expr::Operator::IsDistinctFrom, b)
}

/// Column `name` of `relation`.
pub(crate) fn column(relation: &str, name: &str) -> Expr {
    Expr::Column(Column::new(Some(relation), name))
}

/// The change feed of table `table` over the commits `from..=to`
/// (22008 if it reaches behind the table's horizon), and the id of the
/// table `table` names at `to`.
pub(crate) fn changes_plan(
    db: &Database,
    table: &str,
    from: u64,
    to: u64,
) -> Result<(LogicalPlan, u64)> {
    let range = HistoryRange {
        from_seq: from - 1,
        to_seq: to,
    };
    let snapshot = db
        .history_snapshot(table, range)?
        .ok_or_else(|| unknown_table(table))?;
    let horizon = snapshot.def.history.horizon;
    if from - 1 < horizon {
        let what = "its changes from version";
        return Err(crate::db::horizon_error(table, horizon, what, from).into());
    }
    let id = snapshot.def.id;
    Ok((snapshot_changes(snapshot, from, to)?, id))
}

/// The change feed of `snapshot` (a history scan of `from - 1..=to`).
fn snapshot_changes(snapshot: TableSnapshot, from: u64, to: u64) -> Result<LogicalPlan> {
    let users = user_columns(&snapshot);
    let keys = key_columns(&snapshot);
    let paired = keys[0] != ROWID_COLUMN;
    let versions = || {
        scan(
            TemporalTable::new(snapshot.clone(), true).with_retired_seq(),
            "v",
        )
    };
    let retired = col(RETIRED_COLUMN);
    let written = versions()?
        .filter(
            col(SEQ_COLUMN).gt_eq(lit(from)).and(
                retired
                    .clone()
                    .is_null()
                    .or(retired.clone().not_eq(col(SEQ_COLUMN))),
            ),
        )?
        .build()?;
    let dropped = versions()?
        .filter(
            retired
                .clone()
                .lt_eq(lit(to))
                .and(retired.clone().not_eq(col(SEQ_COLUMN))),
        )?
        .build()?;
    let side = |plan: LogicalPlan, at: &str, time: &str, other: &LogicalPlan, other_at: &str| {
        change_side(plan, at, time, other, other_at, (&users, &keys, paired))
    };
    let post = side(
        written.clone(),
        SEQ_COLUMN,
        SYSTEM_FROM_COLUMN,
        &dropped,
        RETIRED_COLUMN,
    )?;
    let pre = side(
        dropped,
        RETIRED_COLUMN,
        SYSTEM_TO_COLUMN,
        &written,
        SEQ_COLUMN,
    )?;
    LogicalPlanBuilder::from(post).union(pre)?.build()
}

/// One side of the feed: `plan`'s versions at the seq in column `at`,
/// each classified by whether `other` has a version of the same key at
/// the same seq (an update) or not (an insert or a delete).
fn change_side(
    plan: LogicalPlan,
    at: &str,
    time: &str,
    other: &LogicalPlan,
    other_at: &str,
    (users, keys, paired): (&[String], &[String], bool),
) -> Result<LogicalPlan> {
    let postimage = at == SEQ_COLUMN;
    let (alone, updated) = match postimage {
        true => ("insert", "update_postimage"),
        false => ("delete", "update_preimage"),
    };
    let mut builder = LogicalPlanBuilder::from(plan).alias("c")?;
    let mut kind = lit(alone);
    if paired {
        let mut matches: Vec<Expr> = keys.iter().map(|k| col(k.as_str())).collect();
        matches.push(col(other_at).alias("__at"));
        matches.push(lit(true).alias(PAIRED_COLUMN));
        let partners = LogicalPlanBuilder::from(other.clone())
            .project(matches)?
            .distinct()?
            .alias("p")?
            .build()?;
        let mut left: Vec<Column> = keys.iter().map(|k| Column::new(Some("c"), k)).collect();
        left.push(Column::new(Some("c"), at));
        let mut right: Vec<Column> = keys.iter().map(|k| Column::new(Some("p"), k)).collect();
        right.push(Column::new(Some("p"), "__at"));
        builder = builder.join(partners, JoinType::Left, (left, right), None)?;
        kind =
            when(column("p", PAIRED_COLUMN).is_not_null(), lit(updated)).otherwise(lit(alone))?;
    }
    let mut output: Vec<Expr> = users
        .iter()
        .map(|c| column("c", c).alias(c.as_str()))
        .collect();
    output.extend([
        kind.alias(CHANGE_TYPE_COLUMN),
        column("c", at).alias(SEQ_COLUMN),
        column("c", time).alias(COMMIT_TIME_COLUMN),
    ]);
    builder.project(output)?.build()
}

/// The net difference between two snapshots of one table.
fn diff_plan(from: TableSnapshot, to: TableSnapshot) -> Result<LogicalPlan> {
    // Columns are matched by id: a renamed column is the same column.
    let name_then = |id: u32| {
        from.columns
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
    };
    let both: Vec<(String, String)> = to
        .columns
        .iter()
        .filter_map(|c| Some((name_then(c.id)?, c.name.clone())))
        .collect();
    let keys: Vec<(String, String)> = match key_columns(&to).as_slice() {
        [rowid] if rowid == ROWID_COLUMN => vec![(rowid.clone(), rowid.clone())],
        names => names
            .iter()
            .filter_map(|n| both.iter().find(|(_, to)| to == n).cloned())
            .collect(),
    };
    if keys.is_empty() {
        return Err(Error::unsupported("table_diff across a change of the primary key").into());
    }
    let (before, after) = (user_columns(&from), user_columns(&to));
    let left: Vec<Column> = keys
        .iter()
        .map(|(f, _)| Column::new(Some("f"), f))
        .collect();
    let right: Vec<Column> = keys
        .iter()
        .map(|(_, t)| Column::new(Some("t"), t))
        .collect();
    let joined = scan(TemporalTable::new(from, true), "f")?.join(
        scan(TemporalTable::new(to, true), "t")?.build()?,
        JoinType::Full,
        (left, right),
        None,
    )?;
    let absent = |side: &str| column(side, ROWID_COLUMN).is_null();
    let changed = both
        .iter()
        .map(|(f, t)| distinct(column("f", f), column("t", t)))
        .fold(lit(false), Expr::or);
    let differs = absent("f").or(absent("t")).or(changed);
    let diff_type = when(absent("f"), lit("added"))
        .when(absent("t"), lit("removed"))
        .otherwise(lit("modified"))?;
    let mut output = vec![diff_type.alias("diff_type")];
    output.extend(
        before
            .iter()
            .map(|c| column("f", c).alias(format!("from_{c}"))),
    );
    output.extend(
        after
            .iter()
            .map(|c| column("t", c).alias(format!("to_{c}"))),
    );
    joined.filter(differs)?.project(output)?.build()
}
