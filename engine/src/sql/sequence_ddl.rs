//! Sequence DDL: `CREATE SEQUENCE`, `DROP SEQUENCE`, and the sequences
//! behind `SERIAL` / `BIGSERIAL` / `SMALLSERIAL` columns and
//! `GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY` columns (named
//! `<table>_<column>_seq` and dropped with their table, as in PostgreSQL),
//! and `ALTER SEQUENCE` (parsed by `sql::parser`).

use sqlparser::ast::{self, ObjectName, SequenceOptions};

use super::ddl::table_name;
use super::parser::{AlterSequence, SequenceChanges};
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
    // Stored like any DEFAULT: canonical text, printed by sqlparser (which escapes).
    let regclass = ast::Ident::with_quote('"', name.as_str()).to_string();
    column.default = Some(format!(
        "nextval({})",
        ast::Value::SingleQuotedString(regclass)
    ));
    column.identity = Some(identity);
    Ok(sequence)
}

/// `ALTER SEQUENCE [IF EXISTS] name option…` (options in any order):
/// `AS type`, `INCREMENT [BY] n`, `[NO] MINVALUE n`, `[NO] MAXVALUE n`,
/// `START [WITH] n`, `RESTART [[WITH] n]`, `CACHE n`, `[NO] CYCLE`,
/// `OWNED BY t.c | NONE`, or `RENAME TO new`. The definition change is
/// transactional; `RESTART`, like `setval`, is not.
pub(crate) async fn alter_sequence(
    session: &Session,
    alter: &AlterSequence,
) -> Result<StatementResult> {
    const TAG: &str = "ALTER SEQUENCE";
    let name = table_name(&alter.name)?;
    let changes = &alter.changes;
    let Some(current) = session.sequence_def(&name) else {
        if alter.if_exists {
            return Ok(StatementResult::done(TAG, None, None));
        }
        return Err(Error::UnknownTable {
            name,
            context: String::new(),
        });
    };
    let altered = altered_sequence(session, &current, changes)?;
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

/// The definition after `changes`, validated like `CREATE SEQUENCE`.
fn altered_sequence(
    session: &Session,
    current: &SequenceDef,
    changes: &SequenceChanges,
) -> Result<SequenceDef> {
    let number = |n: i64| ast::Expr::value(ast::Value::Number(n.to_string(), false));
    let sql_type = match &changes.data_type {
        Some(data_type) => SqlType::from_sql("AS", data_type)?,
        None => current.sql_type.clone(),
    };
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
    let renamed = changes.rename.as_ref().map(table_name).transpose()?;
    let name = renamed.as_deref().unwrap_or(&current.name);
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
