//! Transaction control statements: `BEGIN` / `START TRANSACTION`, `COMMIT`,
//! `ROLLBACK [TO SAVEPOINT]`, `SAVEPOINT`, `RELEASE SAVEPOINT`,
//! `SET TRANSACTION`, `SET SESSION CHARACTERISTICS AS TRANSACTION`,
//! `SET [default_]transaction_isolation`, `SHOW [default_]transaction_isolation`.
//!
//! PostgreSQL's rules: BEGIN inside a block and COMMIT/ROLLBACK outside one
//! do nothing; COMMIT of a failed block rolls it back (tag `ROLLBACK`);
//! savepoints need a block (25P01); the isolation level can change only
//! before the block's first statement (25001).

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sqlparser::ast::{self, Statement};

use super::session::{Session, StatementResult};
use crate::error::{Error, Result};
use crate::txn::{IsolationLevel, Transaction, TxnOptions};

/// The setting naming the current transaction's isolation level.
const ISOLATION_SETTING: &str = "transaction_isolation";
/// The setting naming the isolation level new transactions get.
const DEFAULT_ISOLATION_SETTING: &str = "default_transaction_isolation";

impl Session {
    /// Run `statement` if it controls transactions; None for any other statement.
    pub(super) async fn transaction_control(
        &mut self,
        statement: &Statement,
    ) -> Result<Option<StatementResult>> {
        let done = |tag: &str| Ok(Some(StatementResult::done(tag, None, None)));
        match statement {
            Statement::StartTransaction { modes, .. } => {
                self.require_not_aborted()?;
                let mut txn = self.txn.lock();
                if txn.is_none() {
                    *txn = Some(Transaction::new(self.txn_defaults.with_modes(modes)));
                }
                done("BEGIN")
            }
            Statement::Commit { chain: false, .. } => self.commit_transaction().await.map(Some),
            Statement::Rollback {
                chain: false,
                savepoint: None,
            } => {
                self.txn.lock().take();
                self.snapshot.set_view(None);
                done("ROLLBACK")
            }
            Statement::Rollback {
                chain: false,
                savepoint: Some(name),
            } => {
                self.with_block("ROLLBACK TO SAVEPOINT", |t| {
                    t.rollback_to(&super::ddl::normalize_ident(name))
                })?;
                done("ROLLBACK")
            }
            Statement::Savepoint { name } => {
                self.require_not_aborted()?;
                self.with_block("SAVEPOINT", |t| {
                    t.savepoint(&super::ddl::normalize_ident(name));
                    Ok(())
                })?;
                done("SAVEPOINT")
            }
            Statement::ReleaseSavepoint { name } => {
                self.require_not_aborted()?;
                self.with_block("RELEASE SAVEPOINT", |t| {
                    t.release(&super::ddl::normalize_ident(name))
                })?;
                done("RELEASE")
            }
            Statement::Set(ast::Set::SetTransaction { modes, session, .. }) => {
                self.require_not_aborted()?;
                match session {
                    true => self.txn_defaults = self.txn_defaults.with_modes(modes),
                    false => self.set_current_modes(modes)?,
                }
                done("SET")
            }
            Statement::Set(ast::Set::SingleAssignment {
                variable, values, ..
            }) => {
                let name = variable.to_string().to_ascii_lowercase();
                if name != ISOLATION_SETTING && name != DEFAULT_ISOLATION_SETTING {
                    return Ok(None);
                }
                self.require_not_aborted()?;
                let [value] = values.as_slice() else {
                    return Err(Error::InvalidArgument {
                        message: format!("SET {name} takes one value"),
                    });
                };
                let level = IsolationLevel::parse(&value.to_string())?;
                let mode = ast::TransactionMode::IsolationLevel(isolation_ast(level));
                match name == DEFAULT_ISOLATION_SETTING {
                    true => self.txn_defaults = self.txn_defaults.with_modes(&[mode]),
                    false => self.set_current_modes(&[mode])?,
                }
                done("SET")
            }
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                let level = match name.as_str() {
                    "transaction_isolation" | "transaction isolation level" => {
                        self.txn
                            .lock()
                            .as_ref()
                            .map_or(self.txn_defaults, |t| t.options)
                            .isolation
                    }
                    "default_transaction_isolation" => self.txn_defaults.isolation,
                    _ => return Ok(None),
                };
                let column = name.replace(" level", "").replace(' ', "_");
                Ok(Some(setting_result(&column, level.name())?))
            }
            _ => Ok(None),
        }
    }

    /// COMMIT: make the block's writes one commit; a failed block rolls back instead.
    pub(super) async fn commit_transaction(&mut self) -> Result<StatementResult> {
        self.snapshot.set_view(None);
        let Some(txn) = self.txn.lock().take() else {
            return Ok(StatementResult::done("COMMIT", None, None));
        };
        if txn.is_aborted() {
            return Ok(StatementResult::done("ROLLBACK", None, None));
        }
        let (writes, checks) = txn.into_commit()?;
        if writes.is_empty() {
            // Writers are serialized in commit order, so any snapshot is a
            // state of that serial history: a read-only block needs no check.
            return Ok(StatementResult::done("COMMIT", None, None));
        }
        let outcome = self.db.commit_statement(writes, &checks).await?;
        Ok(StatementResult::done("COMMIT", None, Some(outcome.seq)))
    }

    /// Run `f` on the open block, or fail with 25P01 naming `statement`.
    fn with_block(
        &self,
        statement: &str,
        f: impl FnOnce(&mut Transaction) -> Result<()>,
    ) -> Result<()> {
        match self.txn.lock().as_mut() {
            Some(txn) => f(txn),
            None => Err(Error::NoActiveTransaction {
                statement: statement.into(),
            }),
        }
    }

    /// `SET TRANSACTION …` inside a block, before its first statement.
    fn set_current_modes(&self, modes: &[ast::TransactionMode]) -> Result<()> {
        let mut txn = self.txn.lock();
        let Some(txn) = txn.as_mut() else {
            // PostgreSQL: a warning, and no effect outside a block.
            return Ok(());
        };
        if txn.has_started() {
            return Err(Error::ActiveTransaction {
                message: "SET TRANSACTION ISOLATION LEVEL must be called before any query".into(),
            });
        }
        txn.options = txn.options.with_modes(modes);
        Ok(())
    }

    fn require_not_aborted(&self) -> Result<()> {
        match self.txn.lock().as_ref().is_some_and(|t| t.is_aborted()) {
            true => Err(Error::InFailedTransaction),
            false => Ok(()),
        }
    }

    /// Whether a transaction block is open.
    pub fn in_transaction(&self) -> bool {
        self.txn.lock().is_some()
    }

    /// The options `BEGIN` uses in this session.
    pub fn transaction_defaults(&self) -> TxnOptions {
        self.txn_defaults
    }
}

fn isolation_ast(level: IsolationLevel) -> ast::TransactionIsolationLevel {
    match level {
        IsolationLevel::ReadCommitted => ast::TransactionIsolationLevel::ReadCommitted,
        IsolationLevel::RepeatableRead => ast::TransactionIsolationLevel::RepeatableRead,
        IsolationLevel::Serializable => ast::TransactionIsolationLevel::Serializable,
    }
}

/// A one-row, one-column text result (`SHOW setting`).
fn setting_result(name: &str, value: &str) -> Result<StatementResult> {
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec![value]))],
    )?;
    Ok(StatementResult::rows("SHOW", schema, vec![batch], 0))
}
