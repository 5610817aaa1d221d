//! TPC-H: the eight tables at any scale factor, as Arrow batches.
//!
//! Rows come from `tpchgen` (the reference `dbgen` output, bit for bit) in
//! batches of [`BATCH_ROWS`]. Keys are BIGINT, money DECIMAL(15,2), dates
//! DATE and text TEXT, as the TPC-H schema gives them.

use arrow::record_batch::RecordBatch;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

use crate::{Error, Result};

/// The tables, referenced ones first (the order they are loaded in).
pub const TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];

/// Rows per generated batch.
pub const BATCH_ROWS: usize = 65_536;

/// A table's batches, in order.
pub type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// The batches of TPC-H table `table` at scale factor `scale`.
pub fn batches(table: &str, scale: f64) -> Result<Batches> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::BadScale(scale));
    }
    fn boxed<I>(batches: I) -> Batches
    where
        I: Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>> + Send + 'static,
    {
        Box::new(batches.map(|b| b.map_err(Error::from)))
    }
    Ok(match table {
        "region" => {
            boxed(RegionArrow::new(RegionGenerator::new(scale, 1, 1)).with_batch_size(BATCH_ROWS))
        }
        "nation" => {
            boxed(NationArrow::new(NationGenerator::new(scale, 1, 1)).with_batch_size(BATCH_ROWS))
        }
        "supplier" => boxed(
            SupplierArrow::new(SupplierGenerator::new(scale, 1, 1)).with_batch_size(BATCH_ROWS),
        ),
        "customer" => boxed(
            CustomerArrow::new(CustomerGenerator::new(scale, 1, 1)).with_batch_size(BATCH_ROWS),
        ),
        "part" => {
            boxed(PartArrow::new(PartGenerator::new(scale, 1, 1)).with_batch_size(BATCH_ROWS))
        }
        "partsupp" => boxed(
            PartSuppArrow::new(PartSuppGenerator::new(scale, 1, 1)).with_batch_size(BATCH_ROWS),
        ),
        "orders" => {
            boxed(OrderArrow::new(OrderGenerator::new(scale, 1, 1)).with_batch_size(BATCH_ROWS))
        }
        "lineitem" => boxed(
            LineItemArrow::new(LineItemGenerator::new(scale, 1, 1)).with_batch_size(BATCH_ROWS),
        ),
        other => return Err(Error::UnknownTable(other.to_string())),
    })
}

/// The tables named in `list` (comma-separated), or all when it is empty.
pub fn tables(list: &str) -> Result<Vec<&'static str>> {
    if list.trim().is_empty() {
        return Ok(TABLES.to_vec());
    }
    list.split(',')
        .map(|name| {
            let name = name.trim().to_ascii_lowercase();
            TABLES
                .iter()
                .find(|t| **t == name)
                .copied()
                .ok_or(Error::UnknownTable(name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_generates_and_bad_input_is_refused() {
        for table in TABLES {
            let rows: usize = batches(table, 0.001)
                .unwrap()
                .map(|b| b.unwrap().num_rows())
                .sum();
            assert!(rows > 0, "{table}");
        }
        assert!(matches!(batches("nope", 1.0), Err(Error::UnknownTable(_))));
        assert!(matches!(batches("region", 0.0), Err(Error::BadScale(_))));
        assert_eq!(tables("Orders, lineitem").unwrap(), ["orders", "lineitem"]);
        assert_eq!(tables("").unwrap().len(), 8);
        assert!(tables("orders,bogus").is_err());
    }
}
