//! Table functions of the temporal layer:
//! - `history('t' [, from [, to]])`: every version of `t` live at some point
//!   in `[from, to]` (versions or timestamps; open ends when omitted), with
//!   `_rowid`, `_seq`, `_system_from`, `_system_to`.
//! - `commits()`: the commit log (seq, commit_time, kind, rows_written, rows_retired).
//! - `tags()`: the live tags (name, version, commit_time, created_at).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::ScalarValue;
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::error::Result;

use super::eval_constant;
use super::planner::history_range;
use super::provider::TemporalTable;
use crate::db::Database;
use crate::error::Error;

/// `history('t' [, from [, to]])`.
#[derive(Debug)]
pub struct HistoryFunction {
    pub db: Database,
}

impl TableFunctionImpl for HistoryFunction {
    fn call_with_args(&self, args: TableFunctionArgs<'_, '_>) -> Result<Arc<dyn TableProvider>> {
        let values = args
            .exprs()
            .iter()
            .map(|e| eval_constant(e.clone()))
            .collect::<crate::Result<Vec<_>>>()?;
        let Some(ScalarValue::Utf8(Some(table))) = values
            .first()
            .map(|v| v.cast_to(&DataType::Utf8))
            .transpose()?
        else {
            return Err(Error::InvalidArgument {
                message: "history() takes a table name, then optional from and to".into(),
            }
            .into());
        };
        let range = history_range(&self.db, values.get(1), values.get(2), false)?;
        let snapshot =
            self.db
                .history_snapshot(&table, range)?
                .ok_or_else(|| Error::UnknownTable {
                    name: table.clone(),
                    context: String::new(),
                })?;
        Ok(Arc::new(TemporalTable::new(snapshot, true)))
    }
}

/// `commits()`.
#[derive(Debug)]
pub struct CommitsFunction {
    pub db: Database,
}

impl TableFunctionImpl for CommitsFunction {
    fn call_with_args(&self, _args: TableFunctionArgs<'_, '_>) -> Result<Arc<dyn TableProvider>> {
        let commits = self.db.commits();
        let schema = Arc::new(Schema::new(vec![
            Field::new("seq", DataType::UInt64, false),
            Field::new(
                "commit_time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("kind", DataType::Utf8, false),
            Field::new("rows_written", DataType::UInt64, false),
            Field::new("rows_retired", DataType::UInt64, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(commits.iter().map(|c| c.seq))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(commits.iter().map(|c| c.time_us))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(
                commits.iter().map(|c| c.kind.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                commits.iter().map(|c| c.rows_written),
            )),
            Arc::new(UInt64Array::from_iter_values(
                commits.iter().map(|c| c.rows_retired),
            )),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// `tags()`: each live tag, the version it names, that commit's time, and
/// when the tag was made.
#[derive(Debug)]
pub struct TagsFunction {
    pub db: Database,
}

impl TableFunctionImpl for TagsFunction {
    fn call_with_args(&self, args: TableFunctionArgs<'_, '_>) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return Err(Error::InvalidArgument {
                message: "tags() takes no arguments".into(),
            }
            .into());
        }
        let tags = self.db.tags();
        let time = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("version", DataType::UInt64, false),
            Field::new("commit_time", time.clone(), true),
            Field::new("created_at", time, true),
        ]));
        let times = |seqs: Vec<u64>| -> ArrayRef {
            Arc::new(
                TimestampMicrosecondArray::from_iter(
                    seqs.into_iter().map(|s| self.db.commit_time(s)),
                )
                .with_timezone("UTC"),
            )
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                tags.iter().map(|t| t.name.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                tags.iter().map(|t| t.version),
            )),
            times(tags.iter().map(|t| t.version).collect()),
            times(tags.iter().map(|t| t.created_seq).collect()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
