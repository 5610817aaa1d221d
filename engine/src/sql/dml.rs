//! DML: INSERT (with ON CONFLICT), UPDATE [FROM], DELETE [USING], TRUNCATE.
//!
//! Each statement reads the rows it changes with an internal query that
//! scans the target with its system columns (`_rowid`), turns the result
//! into a write set (new versions and retirements) and commits it as one
//! commit. The commit re-validates keys and retirements against the
//! latest state, so a concurrent change is caught, never overwritten.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt64Array};
use arrow::compute::{CastOptions, cast_with_options, concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::FormatOptions;
use datafusion::common::{Column, ScalarValue, TableReference};
use datafusion::logical_expr::{ExprSchemable, JoinType, LogicalPlanBuilder};
use sqlparser::ast::{
    self, Assignment, AssignmentTarget, FromTable, OnConflictAction, OnInsert, TableFactor,
};

use super::ddl::{keys_of, normalize_ident, table_name};
use super::plans;
use super::session::{Session, StatementResult};
use crate::catalog::{ForeignKeyDef, KeyRef, SqlType, TableDef, user_physical_schema};
use crate::constraints::check::default_values;
use crate::error::{Error, Result};
use crate::sql::parser::Overriding;
use crate::txn::{KeyColumn, PkKey, Write, WriteSet};

/// The current definition of a table that is about to be written.
pub(crate) fn target_table(session: &Session, name: &ast::ObjectName) -> Result<TableDef> {
    let name = table_name(name)?;
    if let Some(snapshot) = session.table_snapshot(&name) {
        return Ok(snapshot.def.as_ref().clone());
    }
    if session.view_def(&name).is_some() {
        return Err(Error::unsupported(format!(
            "writing through view \"{name}\" (views are read-only: write to its table)"
        )));
    }
    Err(Error::UnknownTable {
        name,
        context: String::new(),
    })
}

/// Rows to retire read by an internal query whose first columns are `_rowid`, then the key.
struct Retired {
    rowids: Vec<u64>,
    keys: KeyColumn,
}

fn retired_rows(def: &TableDef, batch: &RecordBatch) -> Result<Retired> {
    let rowids = batch
        .column(0)
        .as_primitive_opt::<arrow::datatypes::UInt64Type>()
        .ok_or_else(|| Error::internal("internal read lacks _rowid"))?;
    let key_count = def.primary_key.len();
    let keys = if key_count > 0 {
        let key_batch = key_batch(def, batch, 1)?;
        keys_of(def, &key_batch)?
    } else {
        KeyColumn::default()
    };
    Ok(Retired {
        rowids: rowids.values().to_vec(),
        keys,
    })
}

/// The primary-key columns found at `offset..` of `batch`, named physically.
fn key_batch(def: &TableDef, batch: &RecordBatch, offset: usize) -> Result<RecordBatch> {
    let key_columns = def.primary_key_columns();
    let fields: Vec<Field> = key_columns
        .iter()
        .map(|c| Field::new(c.physical_name(), c.sql_type.arrow_type(), true))
        .collect();
    let arrays = key_columns
        .iter()
        .enumerate()
        .map(|(i, c)| cast_column(def, &c.name, &c.sql_type, batch.column(offset + i)))
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

fn cast_column(
    def: &TableDef,
    column: &str,
    sql_type: &SqlType,
    array: &ArrayRef,
) -> Result<ArrayRef> {
    let target = sql_type.arrow_type();
    if array.data_type() == &target {
        return Ok(array.clone());
    }
    if *sql_type == SqlType::Bytea
        && matches!(array.data_type(), DataType::Utf8 | DataType::Utf8View)
    {
        return bytea_from_text(def, column, array);
    }
    if let DataType::Decimal128(precision, scale) = target
        && let Some(decimals) = super::casts::decimals_from_floats(array, precision, scale)
    {
        return decimals.map_err(|message| Error::ValueOutOfRange {
            table: def.name.clone(),
            column: column.to_string(),
            message,
        });
    }
    let rounded = match target.is_integer() {
        true => super::casts::rounded_for_integer(array)?,
        false => None,
    };
    let array = rounded.as_ref().unwrap_or(array);
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    let from_text = matches!(
        array.data_type(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    );
    cast_with_options(array, &target, &options).map_err(|e| {
        let (table, column, message) = (def.name.clone(), column.to_string(), e.to_string());
        // Text that does not parse is bad input (22P02); a number that does not fit is 22003.
        match from_text {
            true => Error::BadValue {
                table,
                column,
                message,
            },
            false => Error::ValueOutOfRange {
                table,
                column,
                message,
            },
        }
    })
}

/// Text to BYTEA the PostgreSQL way: `\x0102` is hex; anything else is its UTF-8 bytes.
fn bytea_from_text(def: &TableDef, column: &str, array: &ArrayRef) -> Result<ArrayRef> {
    let text = cast_with_options(array, &DataType::Utf8, &CastOptions::default())?;
    let bad = |value: &str| Error::BadValue {
        table: def.name.clone(),
        column: column.into(),
        message: format!("invalid hexadecimal bytea {value:?}"),
    };
    let mut out = arrow::array::BinaryBuilder::new();
    for value in text.as_string::<i32>().iter() {
        match value {
            None => out.append_null(),
            Some(value) => match value.strip_prefix("\\x") {
                Some(hex) if hex.len() % 2 == 0 => {
                    let bytes = (0..hex.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                        .collect::<Result<Vec<u8>, _>>()
                        .map_err(|_| bad(value))?;
                    out.append_value(bytes);
                }
                Some(_) => return Err(bad(value)),
                None => out.append_value(value.as_bytes()),
            },
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Shape `source` (one column per target, in order) into a full row batch of `def`.
/// Columns not targeted get their DEFAULT (else NULL). Values are cast to the
/// column types and length-checked.
pub(crate) fn conform_batch(
    session: &Session,
    def: &TableDef,
    targets: &[usize],
    source: &RecordBatch,
) -> Result<RecordBatch> {
    let columns = def.columns();
    if source.num_columns() != targets.len() {
        let more = match source.num_columns() > targets.len() {
            true => "expressions than target columns",
            false => "target columns than expressions",
        };
        return Err(Error::Syntax {
            message: format!(
                "INSERT into \"{}\" has more {more} ({} target columns, {} values)",
                def.name,
                targets.len(),
                source.num_columns()
            ),
        });
    }
    let rows = source.num_rows();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (index, column) in columns.iter().enumerate() {
        let array = match targets.iter().position(|t| *t == index) {
            Some(value_index) => cast_column(
                def,
                &column.name,
                &column.sql_type,
                source.column(value_index),
            )?,
            None => default_values(session.context(), column, rows)?,
        };
        // A DEFAULT too long for the column is refused like a value (22001).
        check_length(def, &column.name, &column.sql_type, &array)?;
        arrays.push(array);
    }
    let schema = user_physical_schema(columns);
    Ok(RecordBatch::try_new_with_options(
        schema,
        arrays,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

fn check_length(def: &TableDef, column: &str, sql_type: &SqlType, array: &ArrayRef) -> Result<()> {
    let SqlType::Text { max_len: Some(max) } = sql_type else {
        return Ok(());
    };
    let Some(strings) = array.as_string_opt::<i32>() else {
        return Ok(());
    };
    if strings
        .iter()
        .flatten()
        .any(|s| s.chars().count() > *max as usize)
    {
        return Err(Error::ValueTooLong {
            table: def.name.clone(),
            column: column.into(),
            type_name: sql_type.sql_name(),
        });
    }
    Ok(())
}

/// `INSERT … VALUES` with `DEFAULT` for a column: in every row, that
/// column is left out of the insert (filled as an omitted column is: its
/// default, identity or NULL); in some rows only, 0A000. Returns the
/// number of rows when every column was left out.
fn leave_out_defaults(source: &mut ast::Query, targets: &mut Vec<usize>) -> Result<Option<usize>> {
    let ast::SetExpr::Values(values) = source.body.as_mut() else {
        return Ok(None);
    };
    let width = values
        .rows
        .iter()
        .map(|r| r.content.len())
        .max()
        .unwrap_or(0);
    let mut keep = vec![true; width];
    for (position, kept) in keep.iter_mut().enumerate() {
        let defaults = values
            .rows
            .iter()
            .filter(|row| row.content.get(position).is_some_and(is_default_keyword))
            .count();
        if defaults == values.rows.len() {
            *kept = false;
        } else if defaults > 0 {
            return Err(Error::unsupported(
                "DEFAULT for a column in some rows of a VALUES list but not in others",
            ));
        }
    }
    if keep.iter().all(|k| *k) {
        return Ok(None);
    }
    if keep.iter().all(|k| !*k) {
        targets.clear();
        return Ok(Some(values.rows.len()));
    }
    for row in &mut values.rows {
        let mut kept = keep.iter();
        row.content.retain(|_| kept.next().copied().unwrap_or(true));
    }
    let mut kept = keep.iter();
    targets.retain(|_| kept.next().copied().unwrap_or(true));
    Ok(None)
}

/// `rows` rows of no columns: every column then takes its default.
fn default_rows(rows: usize) -> Result<RecordBatch> {
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &options,
    )?)
}

/// Numbers written into a NUMERIC column of `INSERT … VALUES` keep every
/// digit: each is given as its text, which the column's type parses
/// exactly (DataFusion would read `12345678901234567.55` as a binary
/// float of about 17 digits).
fn exact_decimal_values(source: &mut ast::Query, def: &TableDef, targets: &[usize]) {
    let ast::SetExpr::Values(values) = source.body.as_mut() else {
        return;
    };
    let columns = def.columns();
    let decimal = |position: usize| {
        targets
            .get(position)
            .and_then(|t| columns.get(*t))
            .is_some_and(|c| matches!(c.sql_type, SqlType::Decimal { .. }))
    };
    for row in &mut values.rows {
        for (position, value) in row.content.iter_mut().enumerate() {
            if decimal(position)
                && let Some(text) = super::parser::number_text(value)
            {
                *value = ast::Expr::value(ast::Value::SingleQuotedString(text));
            }
        }
    }
}

/// Index of each named column (or all columns when `names` is empty).
pub(crate) fn target_columns(def: &TableDef, names: &[String]) -> Result<Vec<usize>> {
    if names.is_empty() {
        return Ok((0..def.columns().len()).collect());
    }
    let mut seen = HashSet::new();
    names
        .iter()
        .map(|name| {
            let index = def
                .columns()
                .iter()
                .position(|c| &c.name == name)
                .ok_or_else(|| Error::UnknownColumn {
                    table: def.name.clone(),
                    column: name.clone(),
                })?;
            if !seen.insert(index) {
                return Err(Error::InvalidArgument {
                    message: format!("column \"{name}\" specified more than once"),
                });
            }
            Ok(index)
        })
        .collect()
}

fn assignment_column(def: &TableDef, assignment: &Assignment) -> Result<usize> {
    let AssignmentTarget::ColumnName(name) = &assignment.target else {
        return Err(Error::unsupported("tuple assignments"));
    };
    // `SET t.col`: PostgreSQL reads `t` as the column (of a composite
    // type), so a qualified target names a column that is not there.
    let column = match name.0.as_slice() {
        [part] => part.as_ident().map(normalize_ident),
        [first, ..] => {
            return Err(Error::UnknownColumn {
                table: def.name.clone(),
                column: first.as_ident().map(normalize_ident).unwrap_or_default(),
            });
        }
        [] => None,
    };
    let Some(column) = column else {
        return Err(Error::Syntax {
            message: format!("bad column name {name}"),
        });
    };
    def.columns()
        .iter()
        .position(|c| c.name == column)
        .ok_or(Error::UnknownColumn {
            table: def.name.clone(),
            column,
        })
}

/// Each column's assigned expression (None: keeps its value), checked:
/// every target exists, is assigned once, and is not GENERATED ALWAYS.
pub(crate) fn assigned_values<'a>(
    def: &TableDef,
    assignments: &'a [Assignment],
) -> Result<Vec<Option<&'a ast::Expr>>> {
    let mut values: Vec<Option<&ast::Expr>> = vec![None; def.columns().len()];
    for assignment in assignments {
        let index = assignment_column(def, assignment)?;
        let column = &def.columns()[index];
        // `SET id = DEFAULT` takes the identity's next value, as in PostgreSQL.
        let always = column.identity == Some(crate::catalog::Identity::Always);
        if always && !is_default_keyword(&assignment.value) {
            return Err(Error::GeneratedAlways {
                column: column.name.clone(),
            });
        }
        if values[index].replace(&assignment.value).is_some() {
            return Err(Error::InvalidArgument {
                message: format!("multiple assignments to column \"{}\"", column.name),
            });
        }
    }
    Ok(values)
}

/// Plan each assigned expression against the rows the statement reads
/// (`SET col = DEFAULT`: the column's default, or NULL).
pub(crate) fn plan_values(
    session: &Session,
    def: &TableDef,
    values: &[Option<&ast::Expr>],
    schema: &datafusion::common::DFSchema,
) -> Result<Vec<Option<datafusion::logical_expr::Expr>>> {
    values
        .iter()
        .zip(def.columns())
        .map(|(value, column)| match value {
            Some(e) if is_default_keyword(e) => default_assignment(session, column).map(Some),
            Some(e) => plans::plan_expr(session, e, schema).map(Some),
            None => Ok(None),
        })
        .collect()
}

/// The bare keyword `DEFAULT` (as sqlparser reads it in a value position).
pub(crate) fn is_default_keyword(expr: &ast::Expr) -> bool {
    matches!(expr, ast::Expr::Identifier(i)
        if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

/// What `SET column = DEFAULT` stores: the column's default (an identity
/// column's next value), or a NULL of its type.
pub(crate) fn default_assignment(
    session: &Session,
    column: &crate::catalog::ColumnDef,
) -> Result<datafusion::logical_expr::Expr> {
    let target = column.sql_type.arrow_type();
    Ok(
        match crate::constraints::check::default_expr(session.context(), column)? {
            Some(expr) => expr.cast_to(&target, &datafusion::common::DFSchema::empty())?,
            None => datafusion::logical_expr::lit(ScalarValue::try_from(&target)?),
        },
    )
}

/// Retire the rows read, and write their new versions (columns after `_rowid` and the key).
/// The rows an internal read found, one per `_rowid`; None when there are none.
fn target_rows(batches: Vec<RecordBatch>) -> Result<Option<RecordBatch>> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let batch = dedupe_by_rowid(concat_batches(&first.schema(), &batches)?)?;
    Ok((batch.num_rows() > 0).then_some(batch))
}

pub(crate) fn update_writes(
    session: &Session,
    def: &TableDef,
    batches: Vec<RecordBatch>,
    writes: &mut WriteSet,
) -> Result<u64> {
    let Some(batch) = target_rows(batches)? else {
        return Ok(0);
    };
    let retired = retired_rows(def, &batch)?;
    let offset = 1 + def.primary_key.len();
    let values = batch.project(&(offset..batch.num_columns()).collect::<Vec<_>>())?;
    let targets: Vec<usize> = (0..def.columns().len()).collect();
    let new_rows = conform_batch(session, def, &targets, &values)?;
    let keys = keys_of(def, &new_rows)?;
    let count = retired.rowids.len() as u64;
    writes.push(Write::Retire {
        table_id: def.id,
        rowids: retired.rowids,
        keys: retired.keys,
    });
    writes.push(Write::Insert {
        table_id: def.id,
        batch: new_rows,
        keys,
    });
    Ok(count)
}

/// Keep the first row per `_rowid` (an UPDATE … FROM may match a row more than once).
fn dedupe_by_rowid(batch: RecordBatch) -> Result<RecordBatch> {
    let rowids = batch
        .column(0)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .ok_or_else(|| Error::internal("internal read lacks _rowid"))?;
    let mut seen = HashSet::with_capacity(rowids.len());
    let keep: arrow::array::BooleanArray = rowids
        .values()
        .iter()
        .map(|r| Some(seen.insert(*r)))
        .collect();
    if keep.true_count() == batch.num_rows() {
        return Ok(batch);
    }
    Ok(filter_record_batch(&batch, &keep)?)
}

pub(crate) fn relation_of(factor: &TableFactor) -> Result<(ast::ObjectName, Option<String>)> {
    match factor {
        TableFactor::Table { name, alias, .. } => Ok((
            name.clone(),
            alias.as_ref().map(|a| normalize_ident(&a.name)),
        )),
        other => Err(Error::unsupported(format!("writing to {other}"))),
    }
}

pub(crate) async fn update(session: &Session, update: ast::Update) -> Result<StatementResult> {
    if !update.table.joins.is_empty() {
        return Err(Error::unsupported("UPDATE of a join"));
    }
    let (name, alias) = relation_of(&update.table.relation)?;
    let def = target_table(session, &name)?;
    let alias = TableReference::bare(alias.unwrap_or_else(|| def.name.clone()));
    let assigned = assigned_values(&def, &update.assignments)?;
    let from = match &update.from {
        Some(ast::UpdateTableFromKind::AfterSet(f) | ast::UpdateTableFromKind::BeforeSet(f)) => {
            f.as_slice()
        }
        None => &[],
    };
    let source = plans::write_source(
        session,
        &update.table.relation,
        from,
        update.selection.as_ref(),
    )
    .await?;
    let values = plan_values(session, &def, &assigned, source.schema())?;
    let plan = plans::project_updated(&def, &alias, LogicalPlanBuilder::from(source), values)?;
    let batches = session.run_plan(plan).await?;
    let mut writes = WriteSet::new("UPDATE");
    let count = update_writes(session, &def, batches, &mut writes)?;
    let returning = Returning::new(&def, &alias, update.returning);
    commit_returning(session, "UPDATE", writes, count, returning, None).await
}

pub(crate) async fn delete(session: &Session, delete: ast::Delete) -> Result<StatementResult> {
    let tables = match &delete.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let [target] = tables.as_slice() else {
        return Err(Error::unsupported("DELETE from several tables"));
    };
    let (name, alias) = relation_of(&target.relation)?;
    let def = target_table(session, &name)?;
    let alias = TableReference::bare(alias.unwrap_or_else(|| def.name.clone()));
    let using = delete.using.as_deref().unwrap_or_default();
    let source =
        plans::write_source(session, &target.relation, using, delete.selection.as_ref()).await?;
    let returning = Returning::new(&def, &alias, delete.returning);
    let source = LogicalPlanBuilder::from(source);
    let plan = match returning {
        Some(_) => plans::project_retired_rows(&def, &alias, source)?,
        None => plans::project_retired(&def, &alias, source)?,
    };
    let batches = session.run_plan(plan).await?;
    let mut writes = WriteSet::new("DELETE");
    let removed = match (&returning, target_rows(batches.clone())?) {
        (Some(_), Some(rows)) => {
            let offset = 1 + def.primary_key.len();
            Some(rows.project(&(offset..rows.num_columns()).collect::<Vec<_>>())?)
        }
        (Some(_), None) => Some(RecordBatch::new_empty(crate::catalog::logical_schema(
            def.columns(),
        ))),
        (None, _) => None,
    };
    let count = retire_writes(&def, batches, &mut writes)?;
    commit_returning(session, "DELETE", writes, count, returning, removed).await
}

pub(crate) fn retire_writes(
    def: &TableDef,
    batches: Vec<RecordBatch>,
    writes: &mut WriteSet,
) -> Result<u64> {
    let Some(batch) = target_rows(batches)? else {
        return Ok(0);
    };
    let retired = retired_rows(def, &batch)?;
    let count = retired.rowids.len() as u64;
    writes.push(Write::Retire {
        table_id: def.id,
        rowids: retired.rowids,
        keys: retired.keys,
    });
    Ok(count)
}

/// A referencing table read for its rows whose referenced key a statement
/// removes (see `foreign_keys`): joined with the removed keys.
pub(crate) struct ChildScan<'a> {
    pub def: &'a TableDef,
    pub fk: &'a ForeignKeyDef,
    pub parent: &'a TableDef,
    /// The removed keys, one array per key column.
    pub old_values: Vec<ArrayRef>,
    /// ON UPDATE: the keys that replace them, row for row.
    pub new_values: Option<Vec<ArrayRef>>,
}

/// Retire the rows a [`ChildScan`] read.
pub(crate) fn retire_rows_read(
    def: &TableDef,
    rows: RecordBatch,
    writes: &mut WriteSet,
) -> Result<()> {
    retire_writes(def, vec![rows], writes).map(|_| ())
}

/// Write the new versions a [`ChildScan`] read (its values are every column's new value).
pub(crate) fn update_rows_read(
    session: &Session,
    def: &TableDef,
    rows: RecordBatch,
    writes: &mut WriteSet,
) -> Result<()> {
    update_writes(session, def, vec![rows], writes).map(|_| ())
}

pub(crate) async fn truncate(
    session: &Session,
    truncate: ast::Truncate,
) -> Result<StatementResult> {
    let mut writes = WriteSet::new("TRUNCATE");
    let mut count = 0;
    for target in &truncate.table_names {
        let def = target_table(session, &target.name)?;
        let alias = TableReference::bare(def.name.clone());
        let scan = plans::table_scan(session, &def, alias.clone(), true)?;
        let batches = session
            .run_plan(plans::project_retired(&def, &alias, scan)?)
            .await?;
        count += retire_writes(&def, batches, &mut writes)?;
    }
    commit_counted(session, "TRUNCATE", writes, count).await
}

pub(crate) async fn commit_counted(
    session: &Session,
    tag: &str,
    mut writes: WriteSet,
    count: u64,
) -> Result<StatementResult> {
    super::foreign_keys::enforce(session, &mut writes).await?;
    if writes.is_empty() {
        return Ok(StatementResult::done(tag, Some(0), None));
    }
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done(tag, Some(count), outcome))
}

/// Commit a write and answer its `RETURNING` list (if any) over `rows`:
/// the row versions it wrote, or for DELETE the ones it removed (None:
/// the rows are those `writes` inserts into `returning.def`).
async fn commit_returning(
    session: &Session,
    tag: &str,
    writes: WriteSet,
    count: u64,
    returning: Option<Returning<'_>>,
    removed: Option<RecordBatch>,
) -> Result<StatementResult> {
    let Some(returning) = returning else {
        return commit_counted(session, tag, writes, count).await;
    };
    // Evaluated before cascades add writes, and before the commit: a
    // RETURNING that fails writes nothing.
    let rows = match (removed, &returning.proposed) {
        (Some(rows), _) => vec![rows],
        (None, Some(proposed)) => {
            proposed.arrange(returning.def, inserted_rows(&writes, returning.def))?
        }
        (None, None) => inserted_rows(&writes, returning.def),
    };
    let (schema, batches) = returning.rows(session, rows).await?;
    let mut result = commit_counted(session, tag, writes, count).await?;
    result.schema = schema;
    result.batches = batches;
    Ok(result)
}

/// The rows `writes` inserts into `def` (physical columns, in table order).
fn inserted_rows(writes: &WriteSet, def: &TableDef) -> Vec<RecordBatch> {
    writes
        .writes
        .iter()
        .filter_map(|w| match w {
            Write::Insert {
                table_id, batch, ..
            } if *table_id == def.id => Some(batch.clone()),
            _ => None,
        })
        .collect()
}

/// The proposed rows of an `INSERT … ON CONFLICT`, by their key under the
/// conflict target: `RETURNING` lists the rows it wrote (inserted ones
/// first, updated ones after) in the order they were proposed, as
/// PostgreSQL does.
struct ProposedOrder {
    target: KeyRef,
    keys: Vec<Option<PkKey>>,
}

impl ProposedOrder {
    /// `written` rearranged into the order of the proposed rows they came from.
    fn arrange(&self, def: &TableDef, written: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
        let Some(first) = written.first() else {
            return Ok(written);
        };
        let batch = concat_batches(&first.schema(), &written)?;
        let mut position: HashMap<&PkKey, usize> = HashMap::new();
        for (i, key) in self.keys.iter().enumerate() {
            if let Some(key) = key {
                position.entry(key).or_insert(i);
            }
        }
        // Rows whose key has a NULL never conflict: inserted, in proposed order.
        let mut keyless = self
            .keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.is_none())
            .map(|(i, _)| i);
        let mut order: Vec<(usize, u32)> = Vec::with_capacity(batch.num_rows());
        for (row, key) in target_keys(def, self.target, &batch)?.iter().enumerate() {
            let at = match key {
                Some(key) => position.get(key).copied(),
                None => keyless.next(),
            };
            order.push((at.unwrap_or(usize::MAX), row as u32));
        }
        order.sort_by_key(|(at, _)| *at);
        let indices =
            arrow::array::UInt32Array::from_iter_values(order.into_iter().map(|(_, r)| r));
        Ok(vec![arrow::compute::take_record_batch(&batch, &indices)?])
    }
}

/// Each row's key under `target` (None where it has a NULL).
fn target_keys(def: &TableDef, target: KeyRef, rows: &RecordBatch) -> Result<Vec<Option<PkKey>>> {
    let column = match target {
        KeyRef::Primary => keys_of(def, rows)?,
        KeyRef::Unique(c) => crate::constraints::unique_keys(def, rows)?.swap_remove(c),
    };
    Ok((0..column.len()).map(|row| column.encoded(row)).collect())
}

/// A write's `RETURNING` list and the table it names.
struct Returning<'a> {
    def: &'a TableDef,
    /// The target's alias, or its name.
    alias: TableReference,
    items: Vec<ast::SelectItem>,
    /// For `INSERT … ON CONFLICT`: the order to list written rows in.
    proposed: Option<ProposedOrder>,
}

impl<'a> Returning<'a> {
    fn new(
        def: &'a TableDef,
        alias: &TableReference,
        items: Option<Vec<ast::SelectItem>>,
    ) -> Option<Self> {
        Some(Self {
            def,
            alias: alias.clone(),
            items: items?,
            proposed: None,
        })
    }

    /// The list evaluated over `rows` (every column of the table, by name),
    /// under PostgreSQL's output names (repeats allowed).
    async fn rows(
        &self,
        session: &Session,
        rows: Vec<RecordBatch>,
    ) -> Result<(arrow::datatypes::SchemaRef, Vec<RecordBatch>)> {
        let schema = crate::catalog::logical_schema(self.def.columns());
        let rows = concat_batches(&schema, &rows)?;
        let scan = plans::batch_scan(rows, self.alias.clone())?;
        let input = scan.schema().clone();
        let mut exprs = Vec::new();
        for (position, item) in self.items.iter().enumerate() {
            let mark = super::output_names::MARK;
            match item {
                ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
                    for (i, column) in self.def.columns().iter().enumerate() {
                        let name = format!("{}{mark}{position}.{i}", column.name);
                        exprs.push(plans::column(&self.alias, &column.name).alias(name));
                    }
                }
                ast::SelectItem::UnnamedExpr(expr) => {
                    let name = super::output_names::item_name(item).unwrap_or_default();
                    let planned = plans::plan_expr(session, expr, &input)?;
                    exprs.push(planned.alias(format!("{name}{mark}{position}")));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let name = normalize_ident(alias);
                    let planned = plans::plan_expr(session, expr, &input)?;
                    exprs.push(planned.alias(format!("{name}{mark}{position}")));
                }
                other => return Err(Error::unsupported(format!("RETURNING {other}"))),
            }
        }
        let plan = session.bind(scan.project(exprs)?.build()?)?;
        let (schema, batches) = session.collect_plan(plan).await?;
        let public = super::output_names::public_schema(&schema).unwrap_or(schema);
        let batches = batches
            .into_iter()
            .map(|b| RecordBatch::try_new(public.clone(), b.columns().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((public, batches))
    }
}

pub(crate) async fn insert(
    session: &Session,
    insert: ast::Insert,
    overriding: Option<Overriding>,
) -> Result<StatementResult> {
    insert_sourced(session, insert, None, overriding).await
}

/// Whether `insert` is `INSERT … VALUES` with one row (a template for many parameter sets).
pub(crate) fn is_single_row_values(insert: &ast::Insert) -> bool {
    let Some(source) = &insert.source else {
        return false;
    };
    matches!(source.body.as_ref(), ast::SetExpr::Values(v) if v.rows.len() == 1)
}

/// `INSERT … VALUES (<placeholders>)` once per parameter set in `rows`, as one insert.
pub(crate) async fn insert_rows(
    session: &Session,
    insert: ast::Insert,
    rows: &[Vec<ScalarValue>],
    overriding: Option<Overriding>,
) -> Result<StatementResult> {
    insert_sourced(session, insert, Some(rows), overriding).await
}

/// The rows of an INSERT's source: its query planned once, then run with
/// each parameter set of `param_rows` bound (or once with the session's).
async fn insert_source(
    session: &Session,
    source: Box<ast::Query>,
    param_rows: Option<&[Vec<ScalarValue>]>,
) -> Result<RecordBatch> {
    // Columns go by position: `SELECT x, x` is two of them, as in PostgreSQL.
    let mut source = source;
    super::output_names::name_query(&mut source);
    let Some(param_rows) = param_rows else {
        let plan = session.plan(ast::Statement::Query(source)).await?;
        return source_rows(session, plan).await;
    };
    let template = session.plan_unbound_query(source).await?;
    let schema = Arc::new(template.schema().as_arrow().clone());
    let mut batches = Vec::with_capacity(param_rows.len());
    for values in param_rows {
        let plan = super::params::bind_plan(template.clone(), values)?;
        batches.push(source_rows(session, plan).await?);
    }
    // Each set's batch says its own values are not null; together they may
    // be (a NOT NULL column is checked later, with its name: 23502).
    let schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
    let fields = schema
        .fields()
        .iter()
        .map(|f| Arc::new(f.as_ref().clone().with_nullable(true)) as arrow::datatypes::FieldRef);
    let nullable = Arc::new(arrow::datatypes::Schema::new(fields.collect::<Vec<_>>()));
    Ok(concat_batches(&nullable, &batches)?)
}

/// Run an INSERT's planned source (a literal VALUES list is built directly).
async fn source_rows(
    session: &Session,
    plan: datafusion::logical_expr::LogicalPlan,
) -> Result<RecordBatch> {
    if let Some(batch) = literal_values(&plan)? {
        return Ok(batch);
    }
    let (source_schema, batches) = session.collect_plan(plan).await?;
    Ok(concat_batches(&source_schema, &batches)?)
}

async fn insert_sourced(
    session: &Session,
    insert: ast::Insert,
    param_rows: Option<&[Vec<ScalarValue>]>,
    overriding: Option<Overriding>,
) -> Result<StatementResult> {
    let ast::TableObject::TableName(name) = &insert.table else {
        return Err(Error::unsupported("INSERT INTO TABLE FUNCTION"));
    };
    let def = target_table(session, name)?;
    let names = insert
        .columns
        .iter()
        .map(table_name)
        .collect::<Result<Vec<_>>>()?;
    let mut targets = target_columns(&def, &names)?;
    let source = match insert.source {
        Some(mut source) => match leave_out_defaults(&mut source, &mut targets)? {
            Some(rows) => default_rows(rows)?,
            None => {
                exact_decimal_values(&mut source, &def, &targets);
                insert_source(session, source, param_rows).await?
            }
        },
        // DEFAULT VALUES: one row of every column's default.
        None => {
            targets.clear();
            default_rows(1)?
        }
    };
    // Without a column list, N values fill the first N columns (PostgreSQL).
    if names.is_empty() && source.num_columns() < targets.len() {
        targets.truncate(source.num_columns());
    }
    let given = targets.len().min(source.num_columns());
    let mut source = source;
    match overriding {
        Some(Overriding::System) => {}
        Some(Overriding::User) if targets.len() == source.num_columns() => {
            source = without_identity_values(&def, &mut targets, &source)?
        }
        // A count mismatch is refused when the rows are conformed.
        Some(Overriding::User) => {}
        None => refuse_generated_always(&def, &targets[..given])?,
    }
    let rows = conform_batch(session, &def, &targets, &source)?;
    let keys = keys_of(&def, &rows)?;
    let mut writes = WriteSet::new("INSERT");
    let mut proposed = None;
    let count = match insert.on {
        None => {
            let count = rows.num_rows() as u64;
            if count > 0 {
                writes.push(Write::Insert {
                    table_id: def.id,
                    batch: rows,
                    keys,
                });
            }
            count
        }
        Some(OnInsert::OnConflict(on_conflict)) => {
            let target = match (&on_conflict.conflict_target, &on_conflict.action) {
                // Any key: rows are skipped, never updated, so RETURNING
                // lists the inserted ones in the order proposed.
                (None, OnConflictAction::DoNothing) => None,
                (target, _) => Some(conflict_key(&def, target.as_ref())?),
            };
            if let Some(target) = target
                && insert.returning.is_some()
            {
                let keys = target_keys(&def, target, &rows)?;
                proposed = Some(ProposedOrder { target, keys });
            }
            let alias = insert
                .table_alias
                .as_ref()
                .map(|a| normalize_ident(&a.alias))
                .unwrap_or_else(|| def.name.clone());
            upsert(
                session,
                &def,
                Upsert {
                    alias: &alias,
                    target,
                    action: on_conflict.action,
                },
                rows,
                keys,
                &mut writes,
            )
            .await?
        }
        Some(OnInsert::DuplicateKeyUpdate(_)) => {
            return Err(Error::unsupported(
                "ON DUPLICATE KEY UPDATE (use ON CONFLICT)",
            ));
        }
        Some(other) => return Err(Error::unsupported(format!("INSERT … {other}"))),
    };
    let alias = insert
        .table_alias
        .as_ref()
        .map(|a| normalize_ident(&a.alias))
        .unwrap_or_else(|| def.name.clone());
    let returning = Returning::new(&def, &TableReference::bare(alias), insert.returning)
        .map(|r| Returning { proposed, ..r });
    commit_returning(session, "INSERT", writes, count, returning, None).await
}

/// The rows of a `VALUES` list made only of literals, built directly (no
/// optimizer, physical plan or execution: the common single-row INSERT).
/// None for anything else.
fn literal_values(plan: &datafusion::logical_expr::LogicalPlan) -> Result<Option<RecordBatch>> {
    use datafusion::logical_expr::{Expr, LogicalPlan};
    let LogicalPlan::Values(values) = plan else {
        return Ok(None);
    };
    let schema = Arc::new(values.schema.as_arrow().clone());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (j, field) in schema.fields().iter().enumerate() {
        let mut scalars = Vec::with_capacity(values.values.len());
        for row in &values.values {
            let Some(Expr::Literal(value, _)) = row.get(j) else {
                return Ok(None);
            };
            scalars.push(value.cast_to(field.data_type())?);
        }
        columns.push(datafusion::common::ScalarValue::iter_to_array(scalars)?);
    }
    let options =
        arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(values.values.len()));
    Ok(Some(RecordBatch::try_new_with_options(
        schema, columns, &options,
    )?))
}

/// `GENERATED ALWAYS AS IDENTITY` columns take no explicit values (428C9).
/// `OVERRIDING USER VALUE`: the values given for identity columns are
/// dropped (the columns take their sequence's values).
fn without_identity_values(
    def: &TableDef,
    targets: &mut Vec<usize>,
    source: &RecordBatch,
) -> Result<RecordBatch> {
    let columns = def.columns();
    let kept: Vec<usize> = (0..targets.len())
        .filter(|&i| columns[targets[i]].identity.is_none())
        .collect();
    *targets = kept.iter().map(|&i| targets[i]).collect();
    Ok(source.project(&kept)?)
}

pub(crate) fn refuse_generated_always(def: &TableDef, targets: &[usize]) -> Result<()> {
    let columns = def.columns();
    match targets
        .iter()
        .map(|t| &columns[*t])
        .find(|c| c.identity == Some(crate::catalog::Identity::Always))
    {
        Some(column) => Err(Error::GeneratedAlways {
            column: column.name.clone(),
        }),
        None => Ok(()),
    }
}

/// The key an `ON CONFLICT` target names: the primary key or a UNIQUE
/// constraint, by its columns (any order) or `ON CONSTRAINT name`. `DO
/// UPDATE` without a target is 42601, as in PostgreSQL.
fn conflict_key(def: &TableDef, target: Option<&ast::ConflictTarget>) -> Result<KeyRef> {
    let no_match = |what: String| Error::InvalidArgument {
        message: format!(
            "there is no unique or primary key constraint matching the ON CONFLICT specification {what} of \"{}\"",
            def.name
        ),
    };
    match target {
        None => Err(Error::Syntax {
            message: "ON CONFLICT DO UPDATE requires inference specification or constraint name"
                .into(),
        }),
        Some(ast::ConflictTarget::OnConstraint(name)) => {
            let name = table_name(name)?;
            if def.has_primary_key() && name == def.primary_key_name() {
                return Ok(KeyRef::Primary);
            }
            def.uniques
                .iter()
                .position(|u| u.name == name)
                .map(KeyRef::Unique)
                .ok_or_else(|| no_match(format!("ON CONSTRAINT {name}")))
        }
        Some(ast::ConflictTarget::Columns(columns)) => {
            let mut named: Vec<String> = columns.iter().map(normalize_ident).collect();
            named.sort();
            let same = |ids: &[u32]| {
                let mut names: Vec<String> = def
                    .columns_by_id(ids)
                    .iter()
                    .map(|c| c.name.clone())
                    .collect();
                names.sort();
                names == named
            };
            if def.has_primary_key() && same(&def.primary_key) {
                return Ok(KeyRef::Primary);
            }
            def.uniques
                .iter()
                .position(|u| same(&u.columns))
                .map(KeyRef::Unique)
                .ok_or_else(|| no_match(format!("({})", named.join(", "))))
        }
    }
}

/// How an `INSERT … ON CONFLICT` resolves conflicts.
struct Upsert<'a> {
    alias: &'a str,
    /// None: `DO NOTHING` without a target, over every key.
    target: Option<KeyRef>,
    action: OnConflictAction,
}

/// INSERT … ON CONFLICT: insert rows whose target key is free; skip or
/// update the rows holding the others.
async fn upsert(
    session: &Session,
    def: &TableDef,
    upsert: Upsert<'_>,
    rows: RecordBatch,
    keys: KeyColumn,
    writes: &mut WriteSet,
) -> Result<u64> {
    let (fresh, conflicting) = match upsert.target {
        Some(target) => {
            let updating = matches!(upsert.action, OnConflictAction::DoUpdate(_));
            free_under_key(session, def, target, &rows, &keys, updating)?
        }
        None => {
            let fresh = free_under_every_key(session, def, &rows, &keys)?;
            (fresh, vec![false; rows.num_rows()])
        }
    };
    let fresh_mask = arrow::array::BooleanArray::from(fresh);
    let fresh_rows = filter_record_batch(&rows, &fresh_mask)?;
    let fresh_keys = keys.select((0..keys.len()).filter(|row| fresh_mask.value(*row)));
    let mut count = fresh_rows.num_rows() as u64;
    if count > 0 {
        writes.push(Write::Insert {
            table_id: def.id,
            batch: fresh_rows,
            keys: fresh_keys,
        });
    }
    if let OnConflictAction::DoUpdate(update) = upsert.action {
        let conflict_rows =
            filter_record_batch(&rows, &arrow::array::BooleanArray::from(conflicting))?;
        if conflict_rows.num_rows() > 0 {
            let key = upsert.target.expect("DO UPDATE has a target");
            let target = def.columns_by_id(crate::constraints::foreign::key_columns(def, key));
            let on: Vec<String> = target.iter().map(|c| c.name.clone()).collect();
            count += update_conflicts(
                session,
                def,
                upsert.alias,
                &on,
                conflict_rows,
                &update,
                writes,
            )
            .await?;
        }
    }
    Ok(count)
}

/// Which proposed rows are free to insert under `target`, and which hold
/// a live row's key (the first proposal of a key only; a later one is
/// skipped, or 21000 when `updating`).
fn free_under_key(
    session: &Session,
    def: &TableDef,
    target: KeyRef,
    rows: &RecordBatch,
    keys: &KeyColumn,
    updating: bool,
) -> Result<(Vec<bool>, Vec<bool>)> {
    let (target_keys, held) = conflict_holders(session, def, target, rows, keys)?;
    let mut seen = HashSet::with_capacity(target_keys.len());
    let mut fresh = Vec::with_capacity(target_keys.len());
    let mut conflicting = Vec::new();
    for (key, held) in target_keys.iter().zip(held) {
        // A key with a NULL never conflicts (NULLs are distinct).
        let first_time = key.as_ref().is_none_or(|k| seen.insert(k.clone()));
        if !first_time && updating {
            return Err(Error::InvalidArgument {
                message: "ON CONFLICT DO UPDATE command cannot affect row a second time".into(),
            });
        }
        fresh.push(first_time && !held);
        conflicting.push(first_time && held);
    }
    Ok((fresh, conflicting))
}

/// `ON CONFLICT DO NOTHING` without a target, as PostgreSQL reads it: a
/// proposed row is inserted only when none of its keys (primary key, each
/// UNIQUE constraint) is held by a live row or by a row this statement
/// inserts before it.
fn free_under_every_key(
    session: &Session,
    def: &TableDef,
    rows: &RecordBatch,
    keys: &KeyColumn,
) -> Result<Vec<bool>> {
    let every_key = def
        .has_primary_key()
        .then_some(KeyRef::Primary)
        .into_iter()
        .chain((0..def.uniques.len()).map(KeyRef::Unique));
    let holders = every_key
        .map(|key| conflict_holders(session, def, key, rows, keys))
        .collect::<Result<Vec<_>>>()?;
    let mut taken: Vec<HashSet<PkKey>> = vec![HashSet::new(); holders.len()];
    let free = (0..rows.num_rows())
        .map(|row| {
            let free = holders.iter().zip(&taken).all(|((keys, held), taken)| {
                !held[row] && keys[row].as_ref().is_none_or(|k| !taken.contains(k))
            });
            if free {
                for ((keys, _), taken) in holders.iter().zip(&mut taken) {
                    taken.extend(keys[row].clone());
                }
            }
            free
        })
        .collect();
    Ok(free)
}

/// Each proposed row's key under `target` (None with a NULL) and whether
/// a row live for the statement holds it.
fn conflict_holders(
    session: &Session,
    def: &TableDef,
    target: KeyRef,
    rows: &RecordBatch,
    keys: &KeyColumn,
) -> Result<(Vec<Option<PkKey>>, Vec<bool>)> {
    match target {
        KeyRef::Primary => {
            let held = session
                .lookup_primary_keys(def.id, keys)
                .iter()
                .map(Option::is_some)
                .collect();
            Ok(((0..keys.len()).map(|row| keys.encoded(row)).collect(), held))
        }
        KeyRef::Unique(c) => {
            let target_keys = target_keys(def, target, rows)?;
            let probe: Vec<&[u8]> = target_keys.iter().flatten().map(|k| k.as_ref()).collect();
            let mut found = session.unique_keys_held(def, c, &probe)?.into_iter();
            let held = target_keys
                .iter()
                .map(|k| k.is_some() && found.next().unwrap_or(false))
                .collect();
            Ok((target_keys, held))
        }
    }
}

/// The name ON CONFLICT DO UPDATE gives the proposed rows.
const EXCLUDED: &str = "excluded";

/// ON CONFLICT DO UPDATE: the rows holding the conflicting keys, joined
/// with the proposed rows (`excluded`) on the conflict key, filtered by
/// the action's WHERE, with the action's new values.
async fn update_conflicts(
    session: &Session,
    def: &TableDef,
    alias: &str,
    on_columns: &[String],
    proposed: RecordBatch,
    update: &ast::DoUpdate,
    writes: &mut WriteSet,
) -> Result<u64> {
    if alias == EXCLUDED {
        return Err(Error::InvalidArgument {
            message: format!(
                "table name \"{EXCLUDED}\" specified more than once: give \"{}\" an alias",
                def.name
            ),
        });
    }
    let logical = crate::catalog::logical_schema(def.columns());
    let logical = Arc::new(Schema::new(
        logical
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    let excluded_ref = TableReference::bare(EXCLUDED);
    let excluded = RecordBatch::try_new(logical, proposed.columns().to_vec())?;
    let excluded = plans::batch_scan(excluded, excluded_ref.clone())?.build()?;
    let target = TableReference::bare(alias);
    let keys: (Vec<Column>, Vec<Column>) = on_columns
        .iter()
        .map(|name| {
            (
                Column::new(Some(target.clone()), name),
                Column::new(Some(excluded_ref.clone()), name),
            )
        })
        .unzip();
    let scan = plans::table_scan(session, def, target.clone(), true)?;
    let mut source = scan.join(excluded, JoinType::Inner, keys, None)?;
    if let Some(selection) = &update.selection {
        let predicate = plans::plan_expr(session, selection, source.schema())?;
        source = source.filter(predicate)?;
    }
    let assigned = assigned_values(def, &update.assignments)?;
    let values = plan_values(session, def, &assigned, source.schema())?;
    let plan = plans::project_updated(def, &target, source, values)?;
    let batches = session.run_plan(plan).await?;
    update_writes(session, def, batches, writes)
}

/// Append Arrow batches to `table` as one commit. Columns are matched by
/// name; table columns a batch lacks are NULL.
pub(crate) async fn append_batches(
    session: &Session,
    table: &str,
    batches: &[RecordBatch],
) -> Result<StatementResult> {
    let def = session
        .table_snapshot(table)
        .map(|s| s.def.as_ref().clone())
        .ok_or_else(|| Error::UnknownTable {
            name: table.into(),
            context: String::new(),
        })?;
    let mut writes = WriteSet::new("INSERT");
    let count = push_batches(session, &mut writes, &def, batches)?;
    commit_counted(session, "INSERT", writes, count).await
}

/// Conform `batches` to `def` (columns matched by name) and add them to
/// `writes` as one insert. Returns the number of rows.
pub(crate) fn push_batches(
    session: &Session,
    writes: &mut WriteSet,
    def: &TableDef,
    batches: &[RecordBatch],
) -> Result<u64> {
    let mut rows = Vec::with_capacity(batches.len());
    for batch in batches {
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let targets = target_columns(def, &names)?;
        rows.push(conform_batch(session, def, &targets, batch)?);
    }
    let schema = user_physical_schema(def.columns());
    let batch = concat_batches(&schema, &rows)?;
    let keys = keys_of(def, &batch)?;
    let count = batch.num_rows() as u64;
    if count > 0 {
        writes.push(Write::Insert {
            table_id: def.id,
            batch,
            keys,
        });
    }
    Ok(count)
}
