//! The SQL front end: parsing with DriftDB's dialect and routing each
//! statement to DDL ([`ddl`]), DML ([`dml`]) or DataFusion ([`session`]).

pub mod catalog_provider;
pub mod ddl;
pub mod dialect;
pub mod dml;
pub mod ingest;
pub mod params;
pub mod sequence_ddl;
pub mod session;
mod txn_control;

use sqlparser::ast::{Query, Statement};
use sqlparser::parser::Parser;

pub use dialect::DriftDialect;
pub use ingest::IngestMode;
pub use session::{Output, Prepared, Session, StatementResult};

use crate::error::{Error, Result};
use crate::temporal::rewrite::rewrite_history_clauses;

/// The catalog DriftDB tables live in.
pub const CATALOG_NAME: &str = "driftdb";
/// The schema DriftDB tables live in.
pub const SCHEMA_NAME: &str = "public";

/// Parse a script into statements (after rewriting SQL:2011 history clauses).
pub fn parse_statements(sql: &str) -> Result<Vec<Statement>> {
    let dialect = DriftDialect::default();
    let sql = rewrite_history_clauses(&dialect, sql)?;
    Ok(Parser::parse_sql(&dialect, &sql)?)
}

/// Parse exactly one statement.
pub fn parse_statement(sql: &str) -> Result<Statement> {
    let mut statements = parse_statements(sql)?;
    match (statements.pop(), statements.is_empty()) {
        (Some(statement), true) => Ok(statement),
        _ => Err(Error::InvalidArgument {
            message: "expected exactly one statement".into(),
        }),
    }
}

/// Parse exactly one query (a view body, an internal DML read).
pub fn parse_query(sql: &str) -> Result<Query> {
    let mut statements = parse_statements(sql)?;
    match (statements.pop(), statements.is_empty()) {
        (Some(Statement::Query(query)), true) => Ok(*query),
        _ => Err(Error::Syntax {
            message: format!("expected one query: {sql}"),
        }),
    }
}

/// Quote an identifier for SQL text we generate.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
