//! Maintenance statements: `COMPACT TABLE t` rewrites a table's files into
//! its current and history tiers now (see [`crate::db::compact`]) and
//! reports what it did as one row.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::physical_plan::memory::MemoryStream;
use sqlparser::ast::ObjectName;

use super::session::{Output, Session};
use crate::error::{Error, Result};

/// `COMPACT TABLE name`: like `VACUUM`, not inside a transaction block (25001).
pub(crate) async fn compact(session: &mut Session, name: &ObjectName) -> Result<Output> {
    if session.in_transaction_block() {
        return Err(Error::ActiveTransaction {
            message: "COMPACT TABLE cannot run inside a transaction block".into(),
        });
    }
    let table = super::ddl::table_name(name)?;
    let report = session.db().compact_table(&table).await?;
    let counts = [
        ("files_rewritten", report.files_rewritten as u64),
        ("current_files", report.current_files as u64),
        ("history_files", report.history_files as u64),
        ("current_rows", report.current_rows),
        ("history_rows", report.history_rows),
        ("bytes_before", report.bytes_before),
        ("bytes_after", report.bytes_after),
    ];
    let mut fields = vec![
        Field::new("table_name", DataType::Utf8, false),
        Field::new("seq", DataType::UInt64, false),
    ];
    fields.extend(
        counts
            .iter()
            .map(|(n, _)| Field::new(*n, DataType::UInt64, false)),
    );
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![table])),
        Arc::new(UInt64Array::from(vec![report.seq])),
    ];
    columns.extend(
        counts
            .iter()
            .map(|(_, v)| Arc::new(UInt64Array::from(vec![*v])) as ArrayRef),
    );
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Output::Rows {
        tag: "COMPACT".into(),
        seq: report.seq,
        stream: Box::pin(MemoryStream::try_new(vec![batch], schema, None)?),
    })
}
