//! FOREIGN KEY constraints in SQL: their definitions (`REFERENCES`,
//! `FOREIGN KEY … REFERENCES`, `ALTER TABLE … ADD`), and the referential
//! actions a statement's writes set off.
//!
//! After a statement has computed its writes, [`enforce`] walks them: for
//! every row version it retires from a referenced table whose key then no
//! longer exists, the referencing rows (found with one join against the
//! removed keys) are refused (NO ACTION, RESTRICT: 23503), deleted
//! (CASCADE), re-pointed (ON UPDATE CASCADE) or set to NULL / their
//! DEFAULT. Those writes join the statement's and are walked in turn, so
//! actions cascade through any number of tables. The commit re-checks
//! every referencing row against the latest keys (`db::foreign`).

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, filter_record_batch, take};
use arrow::datatypes::{Field, Schema, UInt64Type};
use datafusion::common::{Column, TableReference};
use datafusion::logical_expr::{JoinType, LogicalPlanBuilder};
use sqlparser::ast;

use super::ddl::{normalize_ident, table_name};
use super::dml::{ChildScan, retire_rows_read, update_rows_read};
use super::plans;
use super::session::Session;
use crate::catalog::{ForeignKeyDef, KeyRef, RefAction, SqlType, TableDef, physical_name};
use crate::constraints::foreign::{
    ChildKeys, child_keys, decode_keys, describe_row, keys_taken, missing,
};
use crate::error::{Error, Result};
use crate::txn::{KeyColumn, PkKey, Write, WriteSet};

/// How the referencing table is named in the reads of this module.
const CHILD: &str = "child";
/// How the referenced table is named in the reads of this module.
const PARENT: &str = "parent";
/// How the removed keys are named in the reads of this module.
const REMOVED: &str = "removed";

/// A FOREIGN KEY as written, until the table's columns are known.
#[derive(Debug, Clone)]
pub(crate) struct ForeignKeySpec {
    name: Option<String>,
    columns: Vec<String>,
    parent: String,
    parent_columns: Vec<String>,
    on_delete: RefAction,
    on_update: RefAction,
}

impl ForeignKeySpec {
    /// `FOREIGN KEY (cols) REFERENCES t (cols)`, or a column's `REFERENCES t (col)` when `column` is set.
    pub(crate) fn from_ast(
        fk: &ast::ForeignKeyConstraint,
        column: Option<&str>,
        option_name: Option<&ast::Ident>,
    ) -> Result<Self> {
        if matches!(
            fk.match_kind,
            Some(
                ast::ConstraintReferenceMatchKind::Full
                    | ast::ConstraintReferenceMatchKind::Partial
            )
        ) {
            return Err(Error::unsupported(
                "MATCH FULL or MATCH PARTIAL foreign keys",
            ));
        }
        if fk
            .characteristics
            .as_ref()
            .is_some_and(|c| c.deferrable == Some(true) || c.initially.is_some())
        {
            return Err(Error::unsupported("deferrable foreign keys"));
        }
        let columns = match column {
            Some(column) => vec![column.to_string()],
            None => fk.columns.iter().map(normalize_ident).collect(),
        };
        Ok(Self {
            name: fk.name.as_ref().or(option_name).map(normalize_ident),
            columns,
            parent: table_name(&fk.foreign_table)?,
            parent_columns: fk.referred_columns.iter().map(normalize_ident).collect(),
            on_delete: action(fk.on_delete),
            on_update: action(fk.on_update),
        })
    }
}

fn action(action: Option<ast::ReferentialAction>) -> RefAction {
    match action {
        None | Some(ast::ReferentialAction::NoAction) => RefAction::NoAction,
        Some(ast::ReferentialAction::Restrict) => RefAction::Restrict,
        Some(ast::ReferentialAction::Cascade) => RefAction::Cascade,
        Some(ast::ReferentialAction::SetNull) => RefAction::SetNull,
        Some(ast::ReferentialAction::SetDefault) => RefAction::SetDefault,
    }
}

/// Resolve `spec` against `child` (the table being defined or altered) and
/// the table it references. `taken` says whether a constraint name is used.
pub(crate) fn resolve(
    session: &Session,
    child: &TableDef,
    spec: ForeignKeySpec,
    taken: &dyn Fn(&str) -> bool,
) -> Result<ForeignKeyDef> {
    let name = match spec.name.clone() {
        Some(name) if taken(&name) => {
            return Err(Error::ConstraintExists {
                table: child.name.clone(),
                constraint: name,
            });
        }
        Some(name) => name,
        None => free_name(
            &format!("{}_{}_fkey", child.name, spec.columns.join("_")),
            taken,
        ),
    };
    let invalid = |message: String| Error::InvalidForeignKey {
        constraint: name.clone(),
        message,
    };
    let parent = match spec.parent == child.name {
        true => child.clone(),
        false => session
            .table_snapshot(&spec.parent)
            .map(|s| s.def.as_ref().clone())
            .ok_or_else(|| Error::UnknownTable {
                name: spec.parent.clone(),
                context: String::new(),
            })?,
    };
    let parent_names: Vec<String> = match spec.parent_columns.is_empty() {
        false => spec.parent_columns.clone(),
        true if parent.has_primary_key() => parent
            .primary_key_columns()
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        true => {
            return Err(invalid(format!(
                "there is no primary key for referenced table \"{}\"",
                parent.name
            )));
        }
    };
    if parent_names.len() != spec.columns.len() {
        return Err(invalid(
            "number of referencing and referenced columns must match".into(),
        ));
    }
    let child_ids = column_ids(child, &spec.columns)?;
    let parent_ids = column_ids(&parent, &parent_names)?;
    let (key_order, _) = matching_key(&parent, &parent_ids).ok_or_else(|| {
        invalid(format!(
            "there is no unique constraint matching given keys for referenced table \"{}\"",
            parent.name
        ))
    })?;
    // Store both sides in the referenced key's column order.
    let mut columns = Vec::with_capacity(key_order.len());
    for parent_id in &key_order {
        let at = parent_ids.iter().position(|p| p == parent_id).unwrap_or(0);
        columns.push(child_ids[at]);
    }
    for (child_id, parent_id) in columns.iter().zip(&key_order) {
        let (c, p) = (
            column_by_id(child, *child_id),
            column_by_id(&parent, *parent_id),
        );
        if !comparable(&c.sql_type, &p.sql_type) {
            return Err(invalid(format!(
                "key columns \"{}\" and \"{}\" are of incompatible types: {} and {}",
                c.name,
                p.name,
                c.sql_type.sql_name(),
                p.sql_type.sql_name()
            )));
        }
    }
    Ok(ForeignKeyDef {
        name,
        columns,
        parent: parent.id,
        parent_columns: key_order,
        on_delete: spec.on_delete,
        on_update: spec.on_update,
    })
}

fn free_name(base: &str, taken: &dyn Fn(&str) -> bool) -> String {
    let mut candidate = base.to_string();
    let mut n = 0;
    while taken(&candidate) {
        n += 1;
        candidate = format!("{base}{n}");
    }
    candidate
}

fn column_ids(def: &TableDef, names: &[String]) -> Result<Vec<u32>> {
    names
        .iter()
        .map(|n| {
            def.column(n)
                .map(|c| c.id)
                .ok_or_else(|| Error::UnknownColumn {
                    table: def.name.clone(),
                    column: n.clone(),
                })
        })
        .collect()
}

fn column_by_id(def: &TableDef, id: u32) -> &crate::catalog::ColumnDef {
    def.columns_by_id(&[id])[0]
}

/// The key of `parent` made of exactly the columns `ids` (any order), in its key order.
fn matching_key(parent: &TableDef, ids: &[u32]) -> Option<(Vec<u32>, KeyRef)> {
    let same_set = |key: &[u32]| {
        let mut a = key.to_vec();
        let mut b = ids.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    };
    if parent.has_primary_key() && same_set(&parent.primary_key) {
        return Some((parent.primary_key.clone(), KeyRef::Primary));
    }
    let at = parent.uniques.iter().position(|u| same_set(&u.columns))?;
    Some((parent.uniques[at].columns.clone(), KeyRef::Unique(at)))
}

/// Types a referencing column may have for a referenced one.
fn comparable(child: &SqlType, parent: &SqlType) -> bool {
    use SqlType::*;
    let integer = |t: &SqlType| matches!(t, SmallInt | Int | BigInt);
    child == parent
        || integer(child) && integer(parent)
        || matches!((child, parent), (Text { .. }, Text { .. }))
        || matches!((child, parent), (Decimal { .. }, Decimal { .. }))
}

/// `ALTER TABLE … ADD FOREIGN KEY`: every existing row must reference a key
/// that exists (23503 naming the first that does not).
pub(crate) async fn check_existing_rows(
    session: &Session,
    child: &TableDef,
    fk: &ForeignKeyDef,
) -> Result<()> {
    let parent = match fk.parent == child.id {
        true => child.clone(),
        false => session
            .table_by_id(fk.parent)
            .ok_or_else(|| Error::internal("referenced table vanished"))?,
    };
    let (c, p) = (TableReference::bare(CHILD), TableReference::bare(PARENT));
    let child_columns = child.columns_by_id(&fk.columns);
    let parent_columns = parent.columns_by_id(&fk.parent_columns);
    let keys: (Vec<Column>, Vec<Column>) = child_columns
        .iter()
        .zip(&parent_columns)
        .map(|(cc, pc)| {
            (
                Column::new(Some(c.clone()), &cc.name),
                Column::new(Some(p.clone()), &pc.name),
            )
        })
        .unzip();
    let referencing: Vec<_> = child_columns
        .iter()
        .map(|cc| plans::column(&c, &cc.name))
        .collect();
    let unmatched = plans::column(&p, &parent_columns[0].name).is_null();
    let predicate = match plans::all_not_null(&referencing) {
        Some(not_null) => not_null.and(unmatched),
        None => unmatched,
    };
    let parent_scan = plans::table_scan(session, &parent, p.clone(), false)?.build()?;
    let plan = plans::table_scan(session, child, c.clone(), false)?
        .join(parent_scan, JoinType::Left, keys, None)?
        .filter(predicate)?
        .limit(0, Some(1))?
        .project(referencing)?
        .build()?;
    let batches = session.run_plan(plan).await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(());
    };
    Err(Error::ForeignKeyMissing {
        table: child.name.clone(),
        constraint: fk.name.clone(),
        key: describe_row(&child.columns_by_id(&fk.columns), batch.columns(), 0),
        parent: parent.name.clone(),
    })
}

/// Apply every FOREIGN KEY rule to a statement's `writes` (see the module page).
pub(crate) async fn enforce(session: &Session, writes: &mut WriteSet) -> Result<()> {
    if !session.any_foreign_keys() {
        return Ok(());
    }
    let mut at = 0;
    while at < writes.writes.len() {
        if matches!(writes.writes[at], Write::Retire { .. }) {
            act_on_removed_keys(session, writes, at).await?;
        }
        at += 1;
    }
    // Outside a block the commit checks new referencing rows against the latest keys.
    if session.in_transaction_block() {
        check_new_referencing_rows(session, writes)?;
    }
    Ok(())
}

/// The keys one retirement removes from a referenced table's key.
struct RemovedKeys {
    /// Old keys that no row holds after the statement.
    old: Vec<PkKey>,
    /// For an update: the position of each in the new versions' batch.
    new_rows: Option<Vec<u32>>,
}

/// Act on the rows referencing keys that the retirement `writes[at]` removes.
async fn act_on_removed_keys(session: &Session, writes: &mut WriteSet, at: usize) -> Result<()> {
    let Write::Retire { table_id, .. } = &writes.writes[at] else {
        return Ok(());
    };
    let table_id = *table_id;
    let referencing = session.referencing(table_id);
    if referencing.is_empty() {
        return Ok(());
    }
    let Some(parent) = session.table_by_id(table_id) else {
        return Ok(());
    };
    let updated = updated_rows(writes, at).cloned();
    for (child, fk) in referencing {
        let Some(key) = parent.key_named_by(&fk.parent_columns) else {
            continue;
        };
        let removed = removed_keys(session, writes, at, &parent, key)?;
        if removed.old.is_empty() {
            continue;
        }
        let action = match updated {
            Some(_) => fk.on_update,
            None => fk.on_delete,
        };
        let new_values = match (&removed.new_rows, &updated) {
            (Some(rows), Some(batch)) => Some(new_key_values(&fk, batch, rows)?),
            _ => None,
        };
        let old_values = decode_keys(&parent, key, &removed.old)?;
        let scan = ChildScan {
            def: &child,
            fk: &fk,
            parent: &parent,
            old_values,
            new_values,
        };
        apply_action(session, writes, &scan, action).await?;
    }
    Ok(())
}

/// The new versions' batch when `writes[at]` is the retirement half of an
/// UPDATE (a Retire followed by the Insert of the same rows, in order).
fn updated_rows(writes: &WriteSet, at: usize) -> Option<&RecordBatch> {
    let Write::Retire {
        table_id, rowids, ..
    } = &writes.writes[at]
    else {
        return None;
    };
    match writes.writes.get(at + 1) {
        Some(Write::Insert {
            table_id: t, batch, ..
        }) if t == table_id && batch.num_rows() == rowids.len() => Some(batch),
        _ => None,
    }
}

/// The keys `writes[at]` removes from `parent`'s key `key` that no row of
/// the statement takes again.
fn removed_keys(
    session: &Session,
    writes: &WriteSet,
    at: usize,
    parent: &TableDef,
    key: KeyRef,
) -> Result<RemovedKeys> {
    let Write::Retire { rowids, keys, .. } = &writes.writes[at] else {
        return Err(Error::internal("not a retirement"));
    };
    let old: Vec<Option<PkKey>> = match key {
        KeyRef::Primary => (0..keys.len()).map(|row| keys.encoded(row)).collect(),
        KeyRef::Unique(c) => session.unique_keys_of_rows(parent, c, rowids)?,
    };
    let taken = keys_taken(writes, parent, key)?;
    let updated = updated_rows(writes, at).is_some();
    let mut removed = RemovedKeys {
        old: Vec::new(),
        new_rows: updated.then(Vec::new),
    };
    for (row, old) in old.into_iter().enumerate() {
        let Some(old) = old else { continue };
        if taken.contains(&old) {
            continue;
        }
        removed.old.push(old);
        if let Some(rows) = &mut removed.new_rows {
            rows.push(row as u32);
        }
    }
    Ok(removed)
}

/// The referenced columns' new values (in key order) at `rows` of an UPDATE's new versions.
fn new_key_values(fk: &ForeignKeyDef, batch: &RecordBatch, rows: &[u32]) -> Result<Vec<ArrayRef>> {
    let indices = UInt32Array::from(rows.to_vec());
    fk.parent_columns
        .iter()
        .map(|id| {
            let column = batch
                .column_by_name(&physical_name(*id))
                .ok_or_else(|| Error::internal("key column missing from new versions"))?;
            Ok(take(column.as_ref(), &indices, None)?)
        })
        .collect()
}

/// What a referential action writes into the referencing columns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NewKey {
    /// The referenced key's new value (ON UPDATE CASCADE).
    Cascade,
    Null,
    Default,
}

/// Refuse, delete or rewrite the rows of `scan.def` referencing the removed keys.
async fn apply_action(
    session: &Session,
    writes: &mut WriteSet,
    scan: &ChildScan<'_>,
    action: RefAction,
) -> Result<()> {
    let retired = retired_rowids(writes, scan.def.id);
    let new_key = match action {
        RefAction::NoAction | RefAction::Restrict => {
            let found = referencing_rows(session, scan, None, &retired).await?;
            return match found {
                Some(batch) => Err(still_referenced(scan, &batch)),
                None => Ok(()),
            };
        }
        RefAction::Cascade if scan.new_values.is_none() => None,
        RefAction::Cascade => Some(NewKey::Cascade),
        RefAction::SetNull => Some(NewKey::Null),
        RefAction::SetDefault => Some(NewKey::Default),
    };
    let Some(rows) = referencing_rows(session, scan, new_key, &retired).await? else {
        return Ok(());
    };
    match new_key {
        None => retire_rows_read(scan.def, rows, writes),
        Some(NewKey::Default) => {
            let rows = with_defaults(session, scan, rows)?;
            update_rows_read(session, scan.def, rows, writes)
        }
        Some(_) => update_rows_read(session, scan.def, rows, writes),
    }
}

/// `rows` (`_rowid`, key, every column) with the FOREIGN KEY's columns set to their DEFAULT.
fn with_defaults(
    session: &Session,
    scan: &ChildScan<'_>,
    rows: RecordBatch,
) -> Result<RecordBatch> {
    let offset = 1 + scan.def.primary_key.len();
    let mut columns = rows.columns().to_vec();
    for (index, column) in scan.def.columns().iter().enumerate() {
        if scan.fk.columns.contains(&column.id) {
            columns[offset + index] = crate::constraints::check::default_values(
                session.context(),
                column,
                rows.num_rows(),
            )?;
        }
    }
    let fields: Vec<Field> = rows
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| Field::new(f.name(), c.data_type().clone(), true))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Row versions of `table_id` the statement already retires.
fn retired_rowids(writes: &WriteSet, table_id: u64) -> HashSet<u64> {
    writes
        .writes
        .iter()
        .filter_map(|w| match w {
            Write::Retire {
                table_id: t,
                rowids,
                ..
            } if *t == table_id => Some(rowids.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The live rows of `scan.def` referencing a removed key and not retired
/// yet: `_rowid`, primary key, then every column — with the FOREIGN KEY's
/// columns replaced as `new_key` says (None: as they are).
async fn referencing_rows(
    session: &Session,
    scan: &ChildScan<'_>,
    new_key: Option<NewKey>,
    retired: &HashSet<u64>,
) -> Result<Option<RecordBatch>> {
    let (child, removed) = (TableReference::bare(CHILD), TableReference::bare(REMOVED));
    let keys = plans::batch_scan(keys_batch(scan)?, removed.clone())?.build()?;
    let on: (Vec<Column>, Vec<Column>) = scan
        .def
        .columns_by_id(&scan.fk.columns)
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                Column::new(Some(child.clone()), &c.name),
                Column::new(Some(removed.clone()), format!("old{i}")),
            )
        })
        .unzip();
    let source = plans::table_scan(session, scan.def, child.clone(), true)?.join(
        keys,
        JoinType::Inner,
        on,
        None,
    )?;
    let values = scan
        .def
        .columns()
        .iter()
        .map(|c| {
            let position = scan.fk.columns.iter().position(|id| *id == c.id)?;
            match new_key? {
                NewKey::Cascade => Some(plans::column(&removed, &format!("new{position}"))),
                NewKey::Null | NewKey::Default => Some(plans::null()),
            }
        })
        .collect();
    let plan = plans::project_updated(
        scan.def,
        &child,
        LogicalPlanBuilder::from(source.build()?),
        values,
    )?;
    let batches = session.run_plan(plan).await?;
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let batch = concat_batches(&first.schema(), &batches)?;
    let rowids = batch.column(0).as_primitive::<UInt64Type>();
    let keep: arrow::array::BooleanArray = rowids
        .values()
        .iter()
        .map(|r| Some(!retired.contains(r)))
        .collect();
    let batch = filter_record_batch(&batch, &keep)?;
    Ok((batch.num_rows() > 0).then_some(batch))
}

/// The removed keys as a batch: `old0…` (and `new0…` for ON UPDATE CASCADE).
fn keys_batch(scan: &ChildScan<'_>) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, array) in scan.old_values.iter().enumerate() {
        fields.push(Field::new(
            format!("old{i}"),
            array.data_type().clone(),
            true,
        ));
        arrays.push(array.clone());
    }
    for (i, array) in scan.new_values.iter().flatten().enumerate() {
        fields.push(Field::new(
            format!("new{i}"),
            array.data_type().clone(),
            true,
        ));
        arrays.push(array.clone());
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// The 23503 error for the first row of `found` (whose columns after the
/// `_rowid` and primary key are every column of the referencing table).
fn still_referenced(scan: &ChildScan<'_>, found: &RecordBatch) -> Error {
    let offset = 1 + scan.def.primary_key.len();
    let parent_columns = scan.parent.columns_by_id(&scan.fk.parent_columns);
    let referencing: Vec<ArrayRef> = scan
        .fk
        .columns
        .iter()
        .filter_map(|id| scan.def.columns().iter().position(|c| c.id == *id))
        .map(|index| found.column(offset + index).clone())
        .collect();
    Error::ForeignKeyReferenced {
        parent: scan.parent.name.clone(),
        constraint: scan.fk.name.clone(),
        table: scan.def.name.clone(),
        key: describe_row(&parent_columns, &referencing, 0),
    }
}

/// In a transaction block, refuse at the statement a new referencing row
/// whose key the statement cannot see (outside one, the commit does it).
fn check_new_referencing_rows(session: &Session, writes: &WriteSet) -> Result<()> {
    for write in &writes.writes {
        let Write::Insert {
            table_id, batch, ..
        } = write
        else {
            continue;
        };
        let Some(child) = session
            .table_by_id(*table_id)
            .or_else(|| created(writes, *table_id))
        else {
            continue;
        };
        for fk in &child.foreign_keys {
            let parent = match fk.parent == child.id {
                true => child.clone(),
                false => match session.table_by_id(fk.parent) {
                    Some(parent) => parent,
                    None => continue,
                },
            };
            let Some(key) = parent.key_named_by(&fk.parent_columns) else {
                continue;
            };
            let keys = child_keys(&child, fk, &parent, batch)?;
            let held = keys_held(session, writes, &parent, key, &keys)?;
            if let Some(row) = held.iter().position(|h| !h) {
                return Err(missing(&child, fk, &parent, &keys, row));
            }
        }
    }
    Ok(())
}

fn created(writes: &WriteSet, table_id: u64) -> Option<TableDef> {
    writes.writes.iter().find_map(|w| match w {
        Write::CreateTable(def) if def.id == table_id => Some(def.clone()),
        _ => None,
    })
}

/// Per row of `keys`: true when it has a NULL or its key is held after the statement.
fn keys_held(
    session: &Session,
    writes: &WriteSet,
    parent: &TableDef,
    key: KeyRef,
    keys: &ChildKeys,
) -> Result<Vec<bool>> {
    let taken = keys_taken(writes, parent, key)?;
    let mut freed: HashSet<PkKey> = HashSet::new();
    for (at, write) in writes.writes.iter().enumerate() {
        if matches!(write, Write::Retire { table_id, .. } if *table_id == parent.id) {
            freed.extend(removed_keys(session, writes, at, parent, key)?.old);
        }
    }
    let wanted: Vec<(usize, PkKey)> = (0..keys.len())
        .filter_map(|row| keys.key(row).map(|k| (row, k.to_encoded())))
        .collect();
    let committed: Vec<bool> = match key {
        KeyRef::Primary => {
            let lookup = KeyColumn::from_encoded(wanted.iter().map(|(_, k)| k.clone()).collect());
            session
                .lookup_primary_keys(parent.id, &lookup)
                .iter()
                .map(Option::is_some)
                .collect()
        }
        KeyRef::Unique(c) => {
            let lookup: Vec<&[u8]> = wanted.iter().map(|(_, k)| k.as_ref()).collect();
            session.unique_keys_held(parent, c, &lookup)?
        }
    };
    let mut held = vec![true; keys.len()];
    for ((row, k), in_index) in wanted.iter().zip(committed) {
        held[*row] = taken.contains(k) || (in_index && !freed.contains(k));
    }
    Ok(held)
}
