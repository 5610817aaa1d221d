//! Constraint checks: primary keys (encoded with the arrow row format so
//! composite keys of any type compare as bytes), NOT NULL (checked at
//! commit, see `db::apply`), and CHECK / DEFAULT expressions ([`check`]).

pub mod check;

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
    let columns = pk_arrays(def, batch)?;
    let fields = columns
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(&columns)?;
    Ok(rows.iter().map(|row| row.as_ref().into()).collect())
}

fn pk_arrays(def: &TableDef, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    def.primary_key
        .iter()
        .map(|id| {
            batch
                .column_by_name(&physical_name(*id))
                .cloned()
                .ok_or_else(|| {
                    Error::internal(format!("primary key column c{id} missing from batch"))
                })
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
    let columns = def.columns();
    let mut names = Vec::new();
    let mut values = Vec::new();
    for pk_id in &def.primary_key {
        if let Some(pos) = columns.iter().position(|c| c.id == *pk_id) {
            names.push(columns[pos].name.clone());
            values
                .push(array_value_to_string(batch.column(pos), row).unwrap_or_else(|_| "?".into()));
        }
    }
    Error::UniqueViolation {
        table: def.name.clone(),
        constraint: def.primary_key_name(),
        key: format!("({})=({})", names.join(", "), values.join(", ")),
    }
}
