//! Constraint checks: primary keys (encoded with the arrow row format so
//! composite keys of any type compare as bytes), NOT NULL (checked at
//! commit, see `db::apply`), and CHECK / DEFAULT expressions ([`check`]).

pub mod check;
pub mod foreign;
pub mod int_keys;
pub mod keys;
pub mod unique;

use arrow::array::{Array, ArrayRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;

use crate::catalog::{TableDef, physical_name};
use crate::error::{Error, Result};
use keys::{KeyColumn, KeyIndex};

/// The primary key of every row of `batch` (physical column names).
/// Empty when the table has no primary key.
pub fn primary_keys(def: &TableDef, batch: &RecordBatch) -> Result<KeyColumn> {
    if !def.has_primary_key() {
        return Ok(KeyColumn::default());
    }
    KeyColumn::encode(&key_arrays(&def.primary_key, batch)?)
}

/// An empty primary-key index for `def`.
pub fn primary_key_index(def: &TableDef) -> KeyIndex {
    let types: Vec<_> = def
        .columns_by_id(&def.primary_key)
        .iter()
        .map(|c| c.sql_type.arrow_type())
        .collect();
    KeyIndex::for_types(&types)
}

/// Per UNIQUE constraint of `def`, the key of every row of `batch`
/// (physical names); a row whose key has a NULL holds none (NULLs are distinct).
pub fn unique_keys(def: &TableDef, batch: &RecordBatch) -> Result<Vec<KeyColumn>> {
    def.uniques
        .iter()
        .map(|unique| {
            // A column added after the batch was written reads as NULL.
            let arrays: Vec<ArrayRef> = def
                .unique_columns(unique)
                .iter()
                .map(|c| {
                    batch
                        .column_by_name(&c.physical_name())
                        .cloned()
                        .unwrap_or_else(|| {
                            arrow::array::new_null_array(&c.sql_type.arrow_type(), batch.num_rows())
                        })
                })
                .collect();
            KeyColumn::encode(&arrays)
        })
        .collect()
}

fn key_arrays(column_ids: &[u32], batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    column_ids
        .iter()
        .map(|id| {
            batch
                .column_by_name(&physical_name(*id))
                .cloned()
                .ok_or_else(|| Error::internal(format!("key column c{id} missing from batch")))
        })
        .collect()
}

/// Every NOT NULL column of `def` is free of NULLs in `batch` (user physical schema).
pub(crate) fn check_not_null(def: &TableDef, batch: &RecordBatch) -> Result<()> {
    for (column, array) in def.columns().iter().zip(batch.columns()) {
        if !column.nullable && array.null_count() > 0 {
            return Err(Error::NotNullViolation {
                table: def.name.clone(),
                column: column.name.clone(),
            });
        }
    }
    Ok(())
}

/// The 23505 error for row `row` of `batch`, naming the primary key and its value.
pub(crate) fn unique_violation(def: &TableDef, batch: &RecordBatch, row: usize) -> Error {
    key_violation(def, &def.primary_key_name(), &def.primary_key, batch, row)
}

/// The 23505 error for row `row` of `batch` under `def`'s UNIQUE constraint number `c`.
pub(crate) fn unique_constraint_violation(
    def: &TableDef,
    c: usize,
    batch: &RecordBatch,
    row: usize,
) -> Error {
    let unique = &def.uniques[c];
    key_violation(def, &unique.name, &unique.columns, batch, row)
}

/// The 23505 error for row `row` of `batch` (user physical schema) under
/// constraint `constraint` over columns `column_ids`.
pub(crate) fn key_violation(
    def: &TableDef,
    constraint: &str,
    column_ids: &[u32],
    batch: &RecordBatch,
    row: usize,
) -> Error {
    let columns = def.columns();
    let mut names = Vec::new();
    let mut values = Vec::new();
    for id in column_ids {
        if let Some(pos) = columns.iter().position(|c| c.id == *id) {
            names.push(columns[pos].name.clone());
            values
                .push(array_value_to_string(batch.column(pos), row).unwrap_or_else(|_| "?".into()));
        }
    }
    Error::UniqueViolation {
        table: def.name.clone(),
        constraint: constraint.to_string(),
        key: format!("({})=({})", names.join(", "), values.join(", ")),
    }
}
