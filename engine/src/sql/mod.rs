//! The SQL front end: parsing with DriftDB's dialect and routing each
//! statement to DDL ([`ddl`]), DML ([`dml`]) or DataFusion ([`session`]).

mod apply;
pub mod casts;
pub mod catalog_provider;
pub mod checked_arithmetic;
pub mod ddl;
pub mod decorrelate;
mod dependencies;
pub mod dialect;
pub mod dml;
pub mod expr_rules;
pub mod files;
mod foreign_keys;
mod index_ddl;
pub mod information_schema;
pub mod ingest;
mod maintenance;
mod merge;
pub mod numeric;
pub mod output_names;
pub mod params;
pub mod parser;
mod plan_cache;
mod plans;
pub mod restore;
pub mod sequence_ddl;
pub mod session;
pub mod set_ops;
pub mod settings;
pub mod subqueries;
mod txn_control;
pub mod versions;

pub use dialect::DriftDialect;
pub use ingest::IngestMode;
pub use parser::{ParsedStatement, parse_statement, parse_statements};
pub use session::{Output, Prepared, Session, StatementResult};

/// The catalog DriftDB tables live in.
pub const CATALOG_NAME: &str = "driftdb";
/// The schema DriftDB tables live in.
pub const SCHEMA_NAME: &str = "public";

/// Every row of `batches` with each cell rendered as text (`NULL` for a
/// null), as the sqllogictest suite and the benchmark harness compare them.
pub fn rows_as_text(
    batches: &[arrow::record_batch::RecordBatch],
) -> std::result::Result<Vec<Vec<String>>, arrow::error::ArrowError> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok(rows)
}
