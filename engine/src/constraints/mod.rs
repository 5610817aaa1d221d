//! Constraint checks: primary keys (encoded with the arrow row format so
//! composite keys of any type compare as bytes), NOT NULL (checked at
//! commit, see `db::apply`), and CHECK / DEFAULT expressions ([`check`]).

pub mod check;
pub mod foreign;
pub mod unique;

use arrow::array::{Array, ArrayRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use arrow::util::display::array_value_to_string;

use crate::catalog::{TableDef, physical_name};
use crate::error::{Error, Result};
use crate::txn::PkKey;

/// The encoded primary key of every row of `batch` (physical column names).
/// Empty when the table has no primary key.
pub fn primary_keys(def: &TableDef, batch: &RecordBatch) -> Result<Vec<PkKey>> {
    if !def.has_primary_key() {
        return Ok(Vec::new());
    }
    encode_rows(&key_arrays(&def.primary_key, batch)?)
}

/// Each row of `columns` encoded with the arrow row format (comparable as bytes).
fn encode_rows(columns: &[ArrayRef]) -> Result<Vec<PkKey>> {
    let fields = columns
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(columns)?;
    Ok(rows.iter().map(|row| row.as_ref().into()).collect())
}

/// Per row of `batch` (physical names), its key under each UNIQUE
/// constraint of `def`; None where the key has a NULL (NULLs are distinct).
pub fn unique_keys(def: &TableDef, batch: &RecordBatch) -> Result<Vec<Vec<Option<PkKey>>>> {
    let mut per_row: Vec<Vec<Option<PkKey>>> = vec![Vec::new(); batch.num_rows()];
    for unique in &def.uniques {
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
        let keys = encode_rows(&arrays)?;
        for (row, key) in keys.into_iter().enumerate() {
            let has_null = arrays.iter().any(|a| a.is_null(row));
            per_row[row].push((!has_null).then_some(key));
        }
    }
    Ok(per_row)
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
