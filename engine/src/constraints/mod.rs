//! Constraint checks: primary keys (encoded with the arrow row format so
//! composite keys of any type compare as bytes), NOT NULL (checked at
//! commit, see `db::apply`), and CHECK / DEFAULT expressions ([`check`]).

pub mod check;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};

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
