//! Maintenance statements, each answering one row of what it did:
//! `COMPACT TABLE t` rewrites a table's files into its current and history
//! tiers now (see [`crate::db::compact`]); `VACUUM t [RETAIN …]` moves the
//! table's history horizon and removes the versions retired before it;
//! `ALTER TABLE t SET (history_retention = '…')` is parsed here too.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::physical_plan::memory::MemoryStream;
use sqlparser::ast::{self, ObjectName, SqlOption};

use super::parser::Vacuum;
use super::session::{Output, Session};
use crate::catalog::HistoryPolicy;
use crate::error::{Error, Result};
use crate::txn::{Write, WriteSet};

/// `COMPACT TABLE name`: like `VACUUM`, not inside a transaction block (25001).
pub(crate) async fn compact(session: &mut Session, name: &ObjectName) -> Result<Output> {
    if session.in_transaction_block() {
        return Err(Error::ActiveTransaction {
            message: "COMPACT TABLE cannot run inside a transaction block".into(),
        });
    }
    let table = super::ddl::table_name(name)?;
    let report = session.db().compact_table(&table).await?;
    one_row(
        "COMPACT",
        report.seq,
        &table,
        &[
            ("files_rewritten", report.files_rewritten as u64),
            ("current_files", report.current_files as u64),
            ("history_files", report.history_files as u64),
            ("current_rows", report.current_rows),
            ("history_rows", report.history_rows),
            ("bytes_before", report.bytes_before),
            ("bytes_after", report.bytes_after),
            ("versions_removed", report.versions_removed),
        ],
    )
}

/// `VACUUM t [RETAIN n {DAYS | HOURS}]`: move the table's horizon to the
/// last commit at or before now minus the window (`RETAIN`, else the
/// table's `history_retention`; with neither, the horizon stays), in one
/// commit, then compact: versions retired at or before the horizon are
/// removed from the data files. Answers one row.
pub(crate) async fn vacuum(session: &mut Session, vacuum: &Vacuum) -> Result<Output> {
    if session.in_transaction_block() {
        return Err(Error::ActiveTransaction {
            message: "VACUUM cannot run inside a transaction block".into(),
        });
    }
    let table = super::ddl::table_name(&vacuum.name)?;
    let db = session.db().clone();
    let def = db
        .table_def_at(&table, db.visible_seq())
        .ok_or_else(|| Error::UnknownTable {
            name: table.clone(),
            context: String::new(),
        })?;
    if let Some(window) = vacuum.retain_us.or(def.history.retention_us) {
        let cutoff = chrono::Utc::now().timestamp_micros().saturating_sub(window);
        let horizon = db.seq_at_time_or_zero(cutoff)?;
        if horizon > def.history.horizon {
            let mut writes = WriteSet::new("VACUUM");
            writes.push(Write::SetHistory {
                table_id: def.id,
                policy: HistoryPolicy {
                    horizon,
                    ..def.history
                },
            });
            session.commit(writes).await?;
        }
    }
    let horizon = db
        .table_def_at(&table, db.visible_seq())
        .map_or(0, |d| d.history.horizon);
    // Nothing is behind a horizon that never moved: nothing to rewrite.
    let report = match horizon {
        0 => crate::db::compact::CompactReport {
            seq: db.visible_seq(),
            ..Default::default()
        },
        _ => db.compact_table(&table).await?,
    };
    one_row(
        "VACUUM",
        report.seq,
        &table,
        &[
            ("horizon", horizon),
            ("versions_removed", report.versions_removed),
            ("files_rewritten", report.files_rewritten as u64),
            ("bytes_before", report.bytes_before),
            ("bytes_after", report.bytes_after),
        ],
    )
}

/// The `history_retention` option of `ALTER TABLE … SET (…)`: `'30 days'`,
/// `'12 hours'` (also minutes, seconds, weeks), or `'forever'`; in µs.
pub(crate) fn history_retention(options: &[SqlOption]) -> Result<Option<i64>> {
    let mut retention = None;
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(Error::unsupported(format!("ALTER TABLE … SET ({option})")));
        };
        if !key.value.eq_ignore_ascii_case("history_retention") {
            return Err(Error::unsupported(format!(
                "table option \"{}\" (DriftDB knows history_retention)",
                key.value
            )));
        }
        let text = match value {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => s.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        retention = Some(retention_us(&text).ok_or_else(|| Error::InvalidArgument {
            message: format!(
                "history_retention takes a text like '30 days' or 'forever', not {value}"
            ),
        })?);
    }
    retention.ok_or_else(|| Error::Syntax {
        message: "ALTER TABLE … SET takes (history_retention = '…')".into(),
    })
}

/// `'<n> <unit>'` in µs (Some(None) for `'forever'`).
fn retention_us(text: &str) -> Option<Option<i64>> {
    let text = text.trim().to_ascii_lowercase();
    if text == "forever" {
        return Some(None);
    }
    let (count, unit) = text.split_once(char::is_whitespace)?;
    let count: i64 = count.parse().ok().filter(|c| *c >= 0)?;
    let unit_us: i64 = match unit.trim().trim_end_matches('s') {
        "second" => 1_000_000,
        "minute" => 60_000_000,
        "hour" => 3_600_000_000,
        "day" => 86_400_000_000,
        "week" => 604_800_000_000,
        _ => return None,
    };
    Some(Some(count.checked_mul(unit_us)?))
}

/// One row: `table_name`, `seq`, then the named counts.
fn one_row(tag: &str, seq: u64, table: &str, counts: &[(&str, u64)]) -> Result<Output> {
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
        Arc::new(StringArray::from(vec![table.to_string()])),
        Arc::new(UInt64Array::from(vec![seq])),
    ];
    columns.extend(
        counts
            .iter()
            .map(|(_, v)| Arc::new(UInt64Array::from(vec![*v])) as ArrayRef),
    );
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Output::Rows {
        tag: tag.into(),
        seq,
        stream: Box::pin(MemoryStream::try_new(vec![batch], schema, None)?),
        live: false,
    })
}
