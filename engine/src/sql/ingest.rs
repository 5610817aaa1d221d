//! Bulk ingest of Arrow batches into a table, as one atomic commit.
//!
//! This is what Flight SQL's `CommandStatementIngest` (ADBC's `adbc_ingest`)
//! maps onto: the table may be created from the batches' schema, appended
//! to, or replaced, and in every mode the table change and the rows land in
//! the same commit, so a failed ingest leaves nothing behind.
//!
//! The input is checked before anything else looks at it: data with no
//! columns is refused (its row count is a bare number nothing backs), and so
//! is more than [`Limits::ingest_rows_max`](crate::Limits) rows.

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;

use super::ddl::{Nullability, drop_dependent_foreign_keys, table_def_from_arrow};
use super::dml::push_batches;
use super::session::{Session, StatementResult};
use crate::error::{Error, Result};
use crate::txn::{Write, WriteSet};

/// What to do about the target table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestMode {
    /// Create the table; fail if it exists.
    Create,
    /// Append to the table; fail if it does not exist.
    Append,
    /// Append, creating the table first if it does not exist.
    CreateOrAppend,
    /// Drop the table if it exists and create it anew from the batches' schema.
    Replace,
    /// Like `Replace`, but fail if the table does not exist.
    ReplaceExisting,
}

/// Ingest `batches` (all of `schema`) into `table` in one commit.
pub(crate) async fn ingest(
    session: &Session,
    table: &str,
    mode: IngestMode,
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<StatementResult> {
    check_input(session, table, schema, batches)?;
    let existing = session
        .table_snapshot(table)
        .map(|s| s.def.as_ref().clone());
    let mut writes = WriteSet::new("INGEST");
    let def = match (mode, existing) {
        (IngestMode::Create, Some(_)) => {
            return Err(Error::TableExists { name: table.into() });
        }
        (IngestMode::Append | IngestMode::ReplaceExisting, None) => {
            return Err(Error::UnknownTable {
                name: table.into(),
                context: String::new(),
            });
        }
        (IngestMode::Append | IngestMode::CreateOrAppend, Some(def)) => def,
        (IngestMode::Replace | IngestMode::ReplaceExisting, Some(old)) => {
            writes.push(Write::DropTable { table_id: old.id });
            // As DROP TABLE without CASCADE: a referenced table is not replaced (2BP01).
            drop_dependent_foreign_keys(session, &mut writes, false)?;
            create(session, &mut writes, table, schema)?
        }
        (_, None) => create(session, &mut writes, table, schema)?,
    };
    let rows = push_batches(session, &mut writes, &def, batches)?;
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done("INGEST", Some(rows), outcome))
}

/// Refuse data with no columns, batches whose columns disagree with their
/// row count, and more rows than `ingest_rows_max`.
fn check_input(
    session: &Session,
    table: &str,
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<()> {
    let no_columns = || Error::InvalidArgument {
        message: format!("ingest into \"{table}\": the data has no columns"),
    };
    if schema.fields().is_empty() {
        return Err(no_columns());
    }
    let limit = session.db().limits().ingest_rows_max;
    let mut rows = 0u64;
    for batch in batches {
        if batch.num_columns() == 0 {
            return Err(no_columns());
        }
        if let Some(column) = batch.columns().iter().find(|c| c.len() != batch.num_rows()) {
            return Err(Error::InvalidArgument {
                message: format!(
                    "ingest into \"{table}\": a batch of {} rows has a column of {}",
                    batch.num_rows(),
                    column.len()
                ),
            });
        }
        rows = rows.saturating_add(batch.num_rows() as u64);
    }
    if rows > limit as u64 {
        return Err(Error::LimitExceeded {
            what: format!("ingest into \"{table}\""),
            size: rows,
            limit: limit as u64,
            unit: "rows",
            limit_name: "ingest_rows_max",
        });
    }
    Ok(())
}

fn create(
    session: &Session,
    writes: &mut WriteSet,
    table: &str,
    schema: &Schema,
) -> Result<crate::catalog::TableDef> {
    let def = table_def_from_arrow(session, table, schema, Nullability::FromSchema)?;
    writes.push(Write::CreateTable(def.clone()));
    Ok(def)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field};
    use arrow::record_batch::RecordBatchOptions;

    use super::*;
    use crate::{Database, Limits};

    fn numbers(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let values = Int64Array::from_iter_values(0..n);
        RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap()
    }

    fn exists(session: &Session, table: &str) -> bool {
        session.table_snapshot(table).is_some()
    }

    #[tokio::test]
    async fn data_without_columns_is_refused_and_leaves_nothing() {
        let db = Database::open("memory://").await.unwrap();
        let mut session = Session::new(&db);
        let empty = Arc::new(Schema::empty());
        let claimed = RecordBatchOptions::new().with_row_count(Some(1 << 61));
        let batch = RecordBatch::try_new_with_options(empty.clone(), vec![], &claimed).unwrap();
        for mode in [
            IngestMode::Create,
            IngestMode::CreateOrAppend,
            IngestMode::Replace,
        ] {
            let err = session
                .ingest("t", mode, &empty, std::slice::from_ref(&batch))
                .await
                .unwrap_err();
            assert_eq!(err.sqlstate(), "22023", "{err}");
            assert!(err.to_string().contains("no columns"), "{err}");
            assert!(!exists(&session, "t"), "{mode:?} created the table");
        }
        // A schema with columns but a batch without them is refused too.
        session
            .ingest("u", IngestMode::Create, &numbers(1).schema(), &[numbers(1)])
            .await
            .unwrap();
        let err = session
            .ingest("u", IngestMode::Append, &numbers(1).schema(), &[batch])
            .await
            .unwrap_err();
        assert_eq!(err.sqlstate(), "22023", "{err}");
        let count = session.execute_one("SELECT count(*) FROM u").await.unwrap();
        let counted = count.batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(counted, 1);
    }

    #[tokio::test]
    async fn more_rows_than_the_limit_are_refused() {
        let limits = Limits {
            ingest_rows_max: 10,
            ..Limits::default()
        };
        let db = Database::open_with("memory://", limits).await.unwrap();
        let mut session = Session::new(&db);
        let batches = [numbers(6), numbers(5)];
        let err = session
            .ingest("t", IngestMode::Create, &batches[0].schema(), &batches)
            .await
            .unwrap_err();
        assert_eq!(err.sqlstate(), "54000", "{err}");
        let text = err.to_string();
        assert!(
            text.contains("11 rows") && text.contains("ingest_rows_max"),
            "{text}"
        );
        assert!(!exists(&session, "t"));
        let done = session
            .ingest("t", IngestMode::Create, &batches[0].schema(), &batches[..1])
            .await
            .unwrap();
        assert_eq!(done.rows_affected, Some(6));
    }
}
