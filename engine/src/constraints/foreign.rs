//! FOREIGN KEY keys: a referencing row's key is computed exactly as the
//! referenced table computes its own key (the child's columns cast to the
//! parent's types, then a [`KeyColumn`]), so "is this key present?" is one
//! lookup in the parent's primary-key or UNIQUE index.
//!
//! Checks are MATCH SIMPLE: a key with a NULL in any column references
//! nothing and is never checked. The SQL layer applies the referential
//! actions at each statement (`sql::foreign_keys`); the commit re-checks
//! every new referencing row against the latest keys (`db::apply`).

use arrow::array::{Array, ArrayRef, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::catalog::{ColumnDef, ForeignKeyDef, KeyRef, TableDef};
use crate::error::{Error, Result};
use crate::txn::{Key, KeyColumn, PkKey};

/// The referencing keys of a batch, in the parent's key types.
pub struct ChildKeys {
    keys: KeyColumn,
    arrays: Vec<ArrayRef>,
}

impl ChildKeys {
    /// Row `row`'s key, None when it has a NULL (the row references nothing).
    pub fn key(&self, row: usize) -> Option<Key<'_>> {
        self.keys.get(row)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `(a, b)=(1, 2)` for row `row`, as PostgreSQL shows a key.
    pub fn describe(&self, child: &TableDef, fk: &ForeignKeyDef, row: usize) -> String {
        describe_row(&child.columns_by_id(&fk.columns), &self.arrays, row)
    }
}

/// The FOREIGN KEY `fk` of `child`: each row's key in `batch` (physical
/// names; a column the batch lacks reads as NULL), in `parent`'s encoding.
pub fn child_keys(
    child: &TableDef,
    fk: &ForeignKeyDef,
    parent: &TableDef,
    batch: &RecordBatch,
) -> Result<ChildKeys> {
    let rows = batch.num_rows();
    let parent_columns = parent.columns_by_id(&fk.parent_columns);
    let mut arrays = Vec::with_capacity(fk.columns.len());
    for (column, target) in child.columns_by_id(&fk.columns).iter().zip(&parent_columns) {
        let array = batch
            .column_by_name(&column.physical_name())
            .cloned()
            .unwrap_or_else(|| new_null_array(&column.sql_type.arrow_type(), rows));
        arrays.push(cast_to_parent(child, fk, parent, column, target, &array)?);
    }
    Ok(ChildKeys {
        keys: KeyColumn::encode(&arrays)?,
        arrays,
    })
}

/// A referencing value that cannot even be represented in the parent's type is missing there.
fn cast_to_parent(
    child: &TableDef,
    fk: &ForeignKeyDef,
    parent: &TableDef,
    column: &ColumnDef,
    target: &ColumnDef,
    array: &ArrayRef,
) -> Result<ArrayRef> {
    let to = target.sql_type.arrow_type();
    if array.data_type() == &to {
        return Ok(array.clone());
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    cast_with_options(array, &to, &options).map_err(|e| Error::ForeignKeyMissing {
        table: child.name.clone(),
        constraint: fk.name.clone(),
        key: format!("({}): {e}", column.name),
        parent: parent.name.clone(),
    })
}

fn converter(types: impl Iterator<Item = arrow::datatypes::DataType>) -> Result<RowConverter> {
    Ok(RowConverter::new(types.map(SortField::new).collect())?)
}

/// Decode keys of `table`'s key `key` back into one array per key column.
pub fn decode_keys(table: &TableDef, key: KeyRef, keys: &[PkKey]) -> Result<Vec<ArrayRef>> {
    let columns = table.columns_by_id(key_columns(table, key));
    let converter = converter(columns.iter().map(|c| c.sql_type.arrow_type()))?;
    let parser = converter.parser();
    Ok(converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?)
}

/// The column ids of `table`'s key `key`, in key order.
pub fn key_columns(table: &TableDef, key: KeyRef) -> &[u32] {
    match key {
        KeyRef::Primary => &table.primary_key,
        KeyRef::Unique(c) => &table.uniques[c].columns,
    }
}

/// Every key of `table`'s key `key` the inserts of `writes` into it take.
pub fn keys_taken(
    writes: &crate::txn::WriteSet,
    table: &TableDef,
    key: KeyRef,
) -> Result<std::collections::HashSet<PkKey, crate::txn::KeyHash>> {
    let mut taken = std::collections::HashSet::default();
    for write in &writes.writes {
        let crate::txn::Write::Insert {
            table_id,
            batch,
            keys,
        } = write
        else {
            continue;
        };
        if *table_id != table.id {
            continue;
        }
        match key {
            KeyRef::Primary => taken.extend(keys.encoded_keys()),
            KeyRef::Unique(c) => {
                taken.extend(super::unique_keys(table, batch)?[c].encoded_keys());
            }
        }
    }
    Ok(taken)
}

/// `(a, b)=(1, 2)`: row `row` of `arrays`, named by `columns`, as PostgreSQL shows a key.
pub fn describe_row(columns: &[&ColumnDef], arrays: &[ArrayRef], row: usize) -> String {
    format!("({})=({})", column_names(columns), render_row(arrays, row))
}

fn column_names(columns: &[&ColumnDef]) -> String {
    columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_row(arrays: &[ArrayRef], row: usize) -> String {
    let options = FormatOptions::default().with_null("NULL");
    arrays
        .iter()
        .map(|a| {
            ArrayFormatter::try_new(a.as_ref(), &options)
                .map(|f| f.value(row).to_string())
                .unwrap_or_else(|_| "?".into())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The 23503 error for row `row` of `keys`, whose key `parent` lacks.
pub fn missing(
    child: &TableDef,
    fk: &ForeignKeyDef,
    parent: &TableDef,
    keys: &ChildKeys,
    row: usize,
) -> Error {
    Error::ForeignKeyMissing {
        table: child.name.clone(),
        constraint: fk.name.clone(),
        key: keys.describe(child, fk, row),
        parent: parent.name.clone(),
    }
}
