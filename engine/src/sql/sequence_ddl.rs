//! Sequence DDL: `CREATE SEQUENCE`, `DROP SEQUENCE`, and the sequences
//! behind `SERIAL` / `BIGSERIAL` / `SMALLSERIAL` columns and
//! `GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY` columns (named
//! `<table>_<column>_seq` and dropped with their table, as in PostgreSQL),
//! and `ALTER SEQUENCE` (rewritten to a `CALL` before parsing; see
//! [`rewrite_alter_sequence`]).

use sqlparser::ast::{self, ObjectName, SequenceOptions};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::ddl::table_name;
use super::dialect::DriftDialect;
use super::quote_ident;
use super::session::{Session, StatementResult};
use crate::catalog::{ColumnDef, Identity, SequenceDef, SqlType};
use crate::error::{Error, Result};
use crate::sequences::type_range;
use crate::txn::{Write, WriteSet};

/// `CREATE SEQUENCE [IF NOT EXISTS] name [AS type] [options] [OWNED BY t.c | NONE]`.
pub(crate) async fn create_sequence(
    session: &Session,
    if_not_exists: bool,
    name: &ObjectName,
    data_type: Option<&ast::DataType>,
    options: &[SequenceOptions],
    owned_by: Option<&ObjectName>,
) -> Result<StatementResult> {
    let name = table_name(name)?;
    if session.sequence_def(&name).is_some() && if_not_exists {
        return Ok(StatementResult::done("CREATE SEQUENCE", None, None));
    }
    if session.sequence_def(&name).is_some()
        || session.table_exists(&name)
        || session.view_def(&name).is_some()
    {
        return Err(Error::TableExists { name });
    }
    let sql_type = match data_type {
        Some(data_type) => SqlType::from_sql(&name, data_type)?,
        None => SqlType::BigInt,
    };
    let mut def = sequence_def(session.db().allocate_table_id(), &name, sql_type, options)?;
    def.owner = match owned_by {
        Some(owner) if owner.to_string().eq_ignore_ascii_case("none") => None,
        Some(owner) => Some(owning_table(session, owner)?),
        None => None,
    };
    let mut writes = WriteSet::new("CREATE SEQUENCE");
    writes.push(Write::CreateSequence(def));
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done("CREATE SEQUENCE", None, outcome))
}

/// The table of `OWNED BY table.column`.
fn owning_table(session: &Session, owner: &ObjectName) -> Result<u64> {
    let parts = &owner.0;
    let [.., table, column] = parts.as_slice() else {
        return Err(Error::InvalidArgument {
            message: format!("OWNED BY needs table.column, not {owner}"),
        });
    };
    let table = ObjectName(vec![table.clone()]);
    let table = table_name(&table)?;
    let snapshot = session.table_snapshot(&table).ok_or(Error::UnknownTable {
        name: table.clone(),
        context: String::new(),
    })?;
    let column = column.to_string().trim_matches('"').to_lowercase();
    if snapshot.def.column(&column).is_none() {
        return Err(Error::UnknownColumn { table, column });
    }
    Ok(snapshot.def.id)
}

/// The write dropping sequence `name`, or None when there is none.
pub(crate) fn drop_sequence(session: &Session, name: &str) -> Option<Write> {
    session
        .sequence_def(name)
        .map(|def| Write::DropSequence { id: def.id })
}

/// A sequence definition from `CREATE SEQUENCE` options, with PostgreSQL's
/// defaults (ascending from 1 to the type's maximum; descending from -1).
pub(crate) fn sequence_def(
    id: u64,
    name: &str,
    sql_type: SqlType,
    options: &[SequenceOptions],
) -> Result<SequenceDef> {
    let (type_min, type_max) = type_range(&sql_type)?;
    let (mut increment, mut min, mut max, mut start, mut cache, mut cycle) =
        (1, None, None, None, 1, false);
    for option in options {
        match option {
            SequenceOptions::IncrementBy(expr, _) => increment = integer(expr, "INCREMENT")?,
            SequenceOptions::MinValue(expr) => {
                min = expr.as_ref().map(|e| integer(e, "MINVALUE")).transpose()?
            }
            SequenceOptions::MaxValue(expr) => {
                max = expr.as_ref().map(|e| integer(e, "MAXVALUE")).transpose()?
            }
            SequenceOptions::StartWith(expr, _) => start = Some(integer(expr, "START")?),
            SequenceOptions::Cache(expr) => cache = integer(expr, "CACHE")?,
            // sqlparser marks `NO CYCLE` with true.
            SequenceOptions::Cycle(no) => cycle = !*no,
        }
    }
    let bad = |message: String| Err(Error::InvalidArgument { message });
    if increment == 0 {
        return bad("INCREMENT must not be zero".into());
    }
    let min = min.unwrap_or(if increment > 0 { 1 } else { type_min });
    let max = max.unwrap_or(if increment > 0 { type_max } else { -1 });
    let start = start.unwrap_or(if increment > 0 { min } else { max });
    if min < type_min || max > type_max {
        return bad(format!(
            "MINVALUE ({min}) and MAXVALUE ({max}) must fit type {}",
            sql_type.sql_name()
        ));
    }
    if min >= max {
        return bad(format!(
            "MINVALUE ({min}) must be less than MAXVALUE ({max})"
        ));
    }
    if start < min || start > max {
        return bad(format!(
            "START value ({start}) must lie between MINVALUE ({min}) and MAXVALUE ({max})"
        ));
    }
    if cache < 1 {
        return bad(format!("CACHE ({cache}) must be greater than zero"));
    }
    Ok(SequenceDef {
        id,
        name: name.to_string(),
        sql_type,
        start,
        increment,
        min,
        max,
        cycle,
        cache,
        created_seq: 0,
        dropped_seq: None,
        owner: None,
    })
}

fn integer(expr: &ast::Expr, option: &str) -> Result<i64> {
    expr.to_string()
        .replace(' ', "")
        .parse()
        .map_err(|_| Error::InvalidArgument {
            message: format!("{option} must be an integer, not {expr}"),
        })
}

/// The integer type of `SERIAL`-like type names.
pub(crate) fn serial_type(data_type: &ast::DataType) -> Option<SqlType> {
    let ast::DataType::Custom(name, modifiers) = data_type else {
        return None;
    };
    if !modifiers.is_empty() {
        return None;
    }
    match name.to_string().to_ascii_lowercase().as_str() {
        "smallserial" | "serial2" => Some(SqlType::SmallInt),
        "serial" | "serial4" => Some(SqlType::Int),
        "bigserial" | "serial8" => Some(SqlType::BigInt),
        _ => None,
    }
}

/// Make `column` of table `table` (id `table_id`) draw its values from a new
/// owned sequence; returns that sequence.
pub(crate) fn attach_sequence(
    session: &Session,
    table: &str,
    table_id: u64,
    column: &mut ColumnDef,
    identity: Identity,
    options: &[SequenceOptions],
) -> Result<SequenceDef> {
    let name = format!("{table}_{}_seq", column.name);
    if session.sequence_def(&name).is_some() || session.table_exists(&name) {
        return Err(Error::TableExists { name });
    }
    let mut sequence = sequence_def(
        session.db().allocate_table_id(),
        &name,
        column.sql_type.clone(),
        options,
    )?;
    sequence.owner = Some(table_id);
    column.nullable = false;
    column.default = Some(format!(
        "nextval('{}')",
        quote_ident(&name).replace('\'', "''")
    ));
    column.identity = Some(identity);
    Ok(sequence)
}

/// The procedure an `ALTER SEQUENCE` statement is rewritten into before
/// parsing (sqlparser 0.62 has no ALTER SEQUENCE); its one argument is the
/// statement's text after `ALTER SEQUENCE`.
pub(crate) const ALTER_SEQUENCE_CALL: &str = "driftdb_alter_sequence";

/// `ALTER SEQUENCE rest` → `CALL driftdb_alter_sequence('rest')`, for every
/// statement of the script that starts so.
pub(crate) fn rewrite_alter_sequence(dialect: &DriftDialect, sql: &str) -> Result<String> {
    if !super::mentions(sql, "SEQUENCE") {
        return Ok(sql.to_string());
    }
    let tokens = Tokenizer::new(dialect, sql).tokenize()?;
    let mut out = String::with_capacity(sql.len() + 32);
    let mut at_start = true;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        let after_alter = next_word(&tokens, i + 1);
        let is_alter_sequence = at_start
            && is_keyword(token, Keyword::ALTER)
            && after_alter.is_some_and(|(_, t)| is_keyword(t, Keyword::SEQUENCE));
        if let (true, Some((sequence_at, _))) = (is_alter_sequence, after_alter) {
            let end = tokens[sequence_at..]
                .iter()
                .position(|t| *t == Token::SemiColon)
                .map_or(tokens.len(), |p| sequence_at + p);
            let rest: String = tokens[sequence_at + 1..end]
                .iter()
                .map(|t| t.to_string())
                .collect();
            out.push_str(&format!(
                "CALL {ALTER_SEQUENCE_CALL}('{}')",
                rest.trim().replace('\'', "''")
            ));
            i = end;
            continue;
        }
        match token {
            Token::Whitespace(_) => {}
            Token::SemiColon => at_start = true,
            _ => at_start = false,
        }
        out.push_str(&token.to_string());
        i += 1;
    }
    Ok(out)
}

fn is_keyword(token: &Token, keyword: Keyword) -> bool {
    matches!(token, Token::Word(w) if w.keyword == keyword && w.quote_style.is_none())
}

/// The first token at or after `from` that is not whitespace, with its position.
fn next_word(tokens: &[Token], from: usize) -> Option<(usize, &Token)> {
    tokens
        .iter()
        .enumerate()
        .skip(from)
        .find(|(_, t)| !matches!(t, Token::Whitespace(_)))
}

/// What an `ALTER SEQUENCE` asks for, on top of the current definition.
#[derive(Default)]
struct SequenceChanges {
    rename: Option<String>,
    owned_by: Option<Option<ObjectName>>,
    sql_type: Option<SqlType>,
    increment: Option<i64>,
    /// `Some(None)`: `NO MINVALUE` (back to the default).
    min: Option<Option<i64>>,
    max: Option<Option<i64>>,
    start: Option<i64>,
    /// `Some(None)`: `RESTART` (at the start value).
    restart: Option<Option<i64>>,
    cache: Option<i64>,
    cycle: Option<bool>,
}

/// `ALTER SEQUENCE [IF EXISTS] name option…` (options in any order):
/// `AS type`, `INCREMENT [BY] n`, `[NO] MINVALUE n`, `[NO] MAXVALUE n`,
/// `START [WITH] n`, `RESTART [[WITH] n]`, `CACHE n`, `[NO] CYCLE`,
/// `OWNED BY t.c | NONE`, or `RENAME TO new`. The definition change is
/// transactional; `RESTART`, like `setval`, is not.
pub(crate) async fn alter_sequence(session: &Session, text: &str) -> Result<StatementResult> {
    const TAG: &str = "ALTER SEQUENCE";
    let (if_exists, name, changes) = parse_alter_sequence(text)?;
    let Some(current) = session.sequence_def(&name) else {
        if if_exists {
            return Ok(StatementResult::done(TAG, None, None));
        }
        return Err(Error::UnknownTable {
            name,
            context: String::new(),
        });
    };
    let altered = altered_sequence(session, &current, &changes)?;
    let mut writes = WriteSet::new(TAG);
    writes.push(Write::DropSequence { id: current.id });
    writes.push(Write::CreateSequence(altered.clone()));
    let outcome = session.commit(writes).await?;
    if let Some(restart) = changes.restart {
        let value = restart.unwrap_or(altered.start);
        session
            .db()
            .sequence_positions()
            .set(&altered, value, false)?;
    }
    Ok(StatementResult::done(TAG, None, outcome))
}

/// `[IF EXISTS] name option…` (the parser is not `Send`: it never lives across an await).
fn parse_alter_sequence(text: &str) -> Result<(bool, String, SequenceChanges)> {
    let dialect = DriftDialect::default();
    let mut parser = Parser::new(&dialect).try_with_sql(text)?;
    let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let name = table_name(&parser.parse_object_name(false)?)?;
    let changes = parse_sequence_changes(&mut parser)?;
    Ok((if_exists, name, changes))
}

fn parse_sequence_changes(parser: &mut Parser<'_>) -> Result<SequenceChanges> {
    let mut changes = SequenceChanges::default();
    loop {
        if parser.consume_token(&Token::EOF) || parser.peek_token().token == Token::EOF {
            return Ok(changes);
        }
        if parser.parse_keywords(&[Keyword::RENAME, Keyword::TO]) {
            changes.rename = Some(table_name(&parser.parse_object_name(false)?)?);
        } else if parser.parse_keywords(&[Keyword::OWNED, Keyword::BY]) {
            let owner = parser.parse_object_name(false)?;
            let none = owner.to_string().eq_ignore_ascii_case("none");
            changes.owned_by = Some((!none).then_some(owner));
        } else if parser.parse_keyword(Keyword::AS) {
            let data_type = parser.parse_data_type()?;
            changes.sql_type = Some(SqlType::from_sql("AS", &data_type)?);
        } else if parser.parse_keyword(Keyword::INCREMENT) {
            let _optional_by = parser.parse_keyword(Keyword::BY);
            changes.increment = Some(signed_integer(parser)?);
        } else if parser.parse_keywords(&[Keyword::NO, Keyword::MINVALUE]) {
            changes.min = Some(None);
        } else if parser.parse_keywords(&[Keyword::NO, Keyword::MAXVALUE]) {
            changes.max = Some(None);
        } else if parser.parse_keywords(&[Keyword::NO, Keyword::CYCLE]) {
            changes.cycle = Some(false);
        } else if parser.parse_keyword(Keyword::MINVALUE) {
            changes.min = Some(Some(signed_integer(parser)?));
        } else if parser.parse_keyword(Keyword::MAXVALUE) {
            changes.max = Some(Some(signed_integer(parser)?));
        } else if parser.parse_keyword(Keyword::START) {
            let _optional_with = parser.parse_keyword(Keyword::WITH);
            changes.start = Some(signed_integer(parser)?);
        } else if parser.parse_keyword(Keyword::RESTART) {
            let with = parser.parse_keyword(Keyword::WITH);
            let number_next = matches!(parser.peek_token().token, Token::Number(..) | Token::Minus);
            changes.restart = Some(match with || number_next {
                true => Some(signed_integer(parser)?),
                false => None,
            });
        } else if parser.parse_keyword(Keyword::CACHE) {
            changes.cache = Some(signed_integer(parser)?);
        } else if parser.parse_keyword(Keyword::CYCLE) {
            changes.cycle = Some(true);
        } else {
            return Err(Error::Syntax {
                message: format!("unexpected {} in ALTER SEQUENCE", parser.peek_token().token),
            });
        }
    }
}

fn signed_integer(parser: &mut Parser<'_>) -> Result<i64> {
    let negative = parser.consume_token(&Token::Minus);
    let token = parser.next_token().token;
    let Token::Number(digits, _) = &token else {
        return Err(Error::Syntax {
            message: format!("expected an integer in ALTER SEQUENCE, found {token}"),
        });
    };
    let value: i64 = digits.parse().map_err(|_| Error::InvalidArgument {
        message: format!("{digits} is not a valid bigint"),
    })?;
    Ok(if negative { -value } else { value })
}

/// The definition after `changes`, validated like `CREATE SEQUENCE`.
fn altered_sequence(
    session: &Session,
    current: &SequenceDef,
    changes: &SequenceChanges,
) -> Result<SequenceDef> {
    let number = |n: i64| ast::Expr::value(ast::Value::Number(n.to_string(), false));
    let sql_type = changes
        .sql_type
        .clone()
        .unwrap_or_else(|| current.sql_type.clone());
    // Bounds that were the old type's own follow a type change, as in PostgreSQL.
    let (old_min, old_max) = type_range(&current.sql_type)?;
    let retyped = sql_type != current.sql_type;
    let min = changes
        .min
        .unwrap_or((!(retyped && current.min == old_min)).then_some(current.min));
    let max = changes
        .max
        .unwrap_or((!(retyped && current.max == old_max)).then_some(current.max));
    let options = vec![
        SequenceOptions::IncrementBy(
            number(changes.increment.unwrap_or(current.increment)),
            false,
        ),
        SequenceOptions::MinValue(min.map(number)),
        SequenceOptions::MaxValue(max.map(number)),
        SequenceOptions::StartWith(number(changes.start.unwrap_or(current.start)), false),
        SequenceOptions::Cache(number(changes.cache.unwrap_or(current.cache))),
        SequenceOptions::Cycle(!changes.cycle.unwrap_or(current.cycle)),
    ];
    let name = changes.rename.as_deref().unwrap_or(&current.name);
    if name != current.name
        && (session.sequence_def(name).is_some()
            || session.table_exists(name)
            || session.view_def(name).is_some())
    {
        return Err(Error::TableExists { name: name.into() });
    }
    let mut altered = sequence_def(current.id, name, sql_type, &options)?;
    altered.owner = match &changes.owned_by {
        Some(Some(owner)) => Some(owning_table(session, owner)?),
        Some(None) => None,
        None => current.owner,
    };
    if let Some(Some(restart)) = changes.restart
        && (restart < altered.min || restart > altered.max)
    {
        return Err(Error::InvalidArgument {
            message: format!(
                "RESTART value ({restart}) must lie between MINVALUE ({}) and MAXVALUE ({})",
                altered.min, altered.max
            ),
        });
    }
    Ok(altered)
}
