//! Bulk ingest of Arrow batches into a table, as one atomic commit.
//!
//! This is what Flight SQL's `CommandStatementIngest` (ADBC's `adbc_ingest`)
//! maps onto: the table may be created from the batches' schema, appended
//! to, or replaced, and in every mode the table change and the rows land in
//! the same commit, so a failed ingest leaves nothing behind.

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;

use super::ddl::{Nullability, table_def_from_arrow};
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
            create(session, &mut writes, table, schema)?
        }
        (_, None) => create(session, &mut writes, table, schema)?,
    };
    let rows = push_batches(session, &mut writes, &def, batches)?;
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done("INGEST", Some(rows), outcome))
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
