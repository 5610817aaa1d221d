//! Flight SQL transactions and savepoints on top of the session's SQL
//! transaction block.
//!
//! BeginTransaction opens a block (`BEGIN` with the session's default
//! isolation level) and hands out an id; commands that carry a transaction
//! id must name the open one. EndTransaction commits or rolls back;
//! BeginSavepoint / EndSavepoint map to `SAVEPOINT`, `RELEASE` and
//! `ROLLBACK TO`. A session has at most one open transaction; commands
//! without an id while it is open run inside it.

use bytes::Bytes;
use driftdb_engine::sql::{ParsedStatement, parse_statement};
use sqlparser::ast::{Ident, Statement};

use super::error::{Result, ServerError};
use super::service::DriftFlightSql;
use super::sessions::ClientSession;

/// How a transaction or savepoint ends.
pub enum Ending {
    Commit,
    Rollback,
}

impl DriftFlightSql {
    /// Fail unless `id` is absent or names the client's open transaction.
    pub(super) fn check_transaction(
        &self,
        client: &ClientSession,
        id: Option<&Bytes>,
    ) -> Result<()> {
        let Some(id) = id else { return Ok(()) };
        let open = client.transaction.lock().id;
        match (parse_id(id), open) {
            (Some(id), Some(open)) if id == open => Ok(()),
            _ => Err(unknown("transaction", id)),
        }
    }

    /// BeginTransaction: open a block and return its id.
    pub(super) async fn begin_transaction(&self, client: &ClientSession) -> Result<Bytes> {
        if client.transaction.lock().id.is_some() {
            return Err(driftdb_engine::Error::ActiveTransaction {
                message: "this session already has an open transaction".into(),
            }
            .into());
        }
        let begin = parse_statement("BEGIN").map_err(ServerError::from)?;
        self.run_control(client, begin).await?;
        let id = self.state.queries.add_handle();
        client.transaction.lock().id = Some(id);
        Ok(id.to_string().into())
    }

    /// EndTransaction: COMMIT or ROLLBACK the open block. The block is over
    /// either way, even when COMMIT fails.
    pub(super) async fn end_transaction(
        &self,
        client: &ClientSession,
        id: &Bytes,
        ending: Ending,
    ) -> Result<()> {
        self.check_transaction(client, Some(id))?;
        *client.transaction.lock() = Default::default();
        let statement = match ending {
            Ending::Commit => Statement::Commit {
                chain: false,
                end: false,
                modifier: None,
            },
            Ending::Rollback => Statement::Rollback {
                chain: false,
                savepoint: None,
            },
        };
        let tag = self
            .run_control(client, ParsedStatement::from_statement(statement))
            .await?;
        if matches!(ending, Ending::Commit) && tag == "ROLLBACK" {
            // A failed block: COMMIT rolled it back; the client must know.
            return Err(driftdb_engine::Error::InFailedTransaction.into());
        }
        Ok(())
    }

    /// BeginSavepoint: `SAVEPOINT name` in the open block; returns its id.
    pub(super) async fn begin_savepoint(
        &self,
        client: &ClientSession,
        transaction_id: &Bytes,
        name: &str,
    ) -> Result<Bytes> {
        self.check_transaction(client, Some(transaction_id))?;
        let name_ident = Ident::with_quote('"', name);
        let savepoint = Statement::Savepoint { name: name_ident };
        self.run_control(client, ParsedStatement::from_statement(savepoint))
            .await?;
        let id = self.state.queries.add_handle();
        client
            .transaction
            .lock()
            .savepoints
            .insert(id, name.to_string());
        Ok(id.to_string().into())
    }

    /// EndSavepoint: RELEASE it (Commit) or ROLLBACK TO it (Rollback).
    pub(super) async fn end_savepoint(
        &self,
        client: &ClientSession,
        id: &Bytes,
        ending: Ending,
    ) -> Result<()> {
        let name = parse_id(id)
            .and_then(|id| client.transaction.lock().savepoints.get(&id).cloned())
            .ok_or_else(|| unknown("savepoint", id))?;
        let name = Ident::with_quote('"', name);
        let statement = match ending {
            Ending::Commit => Statement::ReleaseSavepoint { name },
            Ending::Rollback => Statement::Rollback {
                chain: false,
                savepoint: Some(name),
            },
        };
        self.run_control(client, ParsedStatement::from_statement(statement))
            .await?;
        Ok(())
    }

    /// Run one transaction-control statement (built as a tree: a savepoint
    /// name is an identifier, never text spliced into SQL); returns its tag.
    async fn run_control(
        &self,
        client: &ClientSession,
        statement: ParsedStatement,
    ) -> Result<String> {
        let mut session = client.sql.lock().await;
        Ok(session.execute_statement(statement).await?.tag)
    }
}

fn parse_id(id: &Bytes) -> Option<u64> {
    std::str::from_utf8(id).ok()?.parse().ok()
}

fn unknown(kind: &'static str, id: &Bytes) -> ServerError {
    ServerError::UnknownHandle {
        kind,
        handle: String::from_utf8_lossy(id).into_owned(),
    }
}
