//! Named versions and copies of the past.
//!
//! - `CREATE TAG [IF NOT EXISTS] name [AS OF …]` names a version of the
//!   whole database (default: the latest). `VERSION AS OF 'name'`, the
//!   change feed, the diff and `RESTORE … AS OF 'name'` read it, `tags()`
//!   lists the tags, and `VACUUM` keeps every row version a live tag sees
//!   (see `db::compact`). A tag names a commit of every table at once, as a
//!   git tag names a commit of every file.
//! - `DROP TAG [IF EXISTS] name`: the versions only it kept may go at the
//!   next `VACUUM`.
//! - `CREATE TABLE [IF NOT EXISTS] t2 CLONE t [AS OF …]`: a new table with
//!   `t`'s columns and primary key as of the point, holding its rows then,
//!   in one commit: exactly what `SELECT * FROM t VERSION AS OF …` reads
//!   (`t` is the name the table had then). Other constraints, indexes and identity are not copied
//!   (as `CREATE TABLE … (LIKE t)`); history starts at the clone.
//!
//! Tag names are identifiers (folded to lower case unless quoted) and
//! start with a letter or `_`, so a string in a time-travel argument is a
//! tag when it starts so and a timestamp when it starts with a digit.

use datafusion::logical_expr::LogicalPlanBuilder;
use sqlparser::ast::ObjectName;

use super::ddl::table_name;
use super::dml;
use super::parser::AsOf;
use super::session::Session;
use crate::catalog::{ColumnDef, TableDef, TagDef};
use crate::db::TableSnapshot;
use crate::error::{Error, Result};
use crate::sql::StatementResult;
use crate::temporal::changes::{column, scan};
use crate::temporal::provider::TemporalTable;
use crate::temporal::{check_tag_name, eval_constant, resolve_target, target_of, time_target};
use crate::txn::{Write, WriteSet};

/// A parsed tag or clone statement.
#[derive(Debug, Clone)]
pub enum VersionStatement {
    CreateTag {
        name: ObjectName,
        if_not_exists: bool,
        point: Option<AsOf>,
    },
    DropTag {
        name: ObjectName,
        if_exists: bool,
    },
    Clone {
        name: ObjectName,
        if_not_exists: bool,
        source: ObjectName,
        point: Option<AsOf>,
    },
}

pub(crate) async fn execute(
    session: &Session,
    statement: &VersionStatement,
) -> Result<StatementResult> {
    match statement {
        VersionStatement::CreateTag {
            name,
            if_not_exists,
            point,
        } => create_tag(session, name, *if_not_exists, point.as_ref()).await,
        VersionStatement::DropTag { name, if_exists } => drop_tag(session, name, *if_exists).await,
        VersionStatement::Clone {
            name,
            if_not_exists,
            source,
            point,
        } => clone_table(session, name, *if_not_exists, source, point.as_ref()).await,
    }
}

/// The version an `AS OF` point names (22008 if none does).
pub(crate) fn point_seq(session: &Session, point: &AsOf) -> Result<u64> {
    let expr =
        super::plans::plan_expr(session, &point.expr, &datafusion::common::DFSchema::empty())?;
    let value = eval_constant(expr)?;
    let target = match point.by_time {
        true => time_target(session.db(), &value)?,
        false => target_of(session.db(), &value)?,
    };
    resolve_target(session.db(), target)
}

/// Tags are not transactional (like `VACUUM`): refused in a block (25001).
fn outside_transaction(session: &Session, statement: &str) -> Result<()> {
    match session.in_transaction_block() {
        true => Err(Error::ActiveTransaction {
            message: format!("{statement} cannot run inside a transaction block"),
        }),
        false => Ok(()),
    }
}

async fn create_tag(
    session: &Session,
    name: &ObjectName,
    if_not_exists: bool,
    point: Option<&AsOf>,
) -> Result<StatementResult> {
    outside_transaction(session, "CREATE TAG")?;
    let name = table_name(name)?;
    check_tag_name(&name)?;
    let db = session.db();
    if if_not_exists && db.tag_version(&name).is_ok() {
        return Ok(StatementResult::done("CREATE TAG", None, None));
    }
    let version = match point {
        Some(point) => point_seq(session, point)?,
        None => db.check_version(db.visible_seq())?,
    };
    let mut writes = WriteSet::new("CREATE TAG");
    writes.push(Write::CreateTag(TagDef {
        name,
        version,
        created_seq: 0,
        dropped_seq: None,
    }));
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done("CREATE TAG", None, outcome))
}

async fn drop_tag(
    session: &Session,
    name: &ObjectName,
    if_exists: bool,
) -> Result<StatementResult> {
    outside_transaction(session, "DROP TAG")?;
    let name = table_name(name)?;
    if if_exists && session.db().tag_version(&name).is_err() {
        return Ok(StatementResult::done("DROP TAG", None, None));
    }
    let mut writes = WriteSet::new("DROP TAG");
    writes.push(Write::DropTag { name });
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done("DROP TAG", None, outcome))
}

async fn clone_table(
    session: &Session,
    name: &ObjectName,
    if_not_exists: bool,
    source: &ObjectName,
    point: Option<&AsOf>,
) -> Result<StatementResult> {
    let name = table_name(name)?;
    if if_not_exists && session.table_snapshot(&name).is_some() {
        return Ok(StatementResult::done("CREATE TABLE", None, None));
    }
    let then = source_snapshot(session, source, point)?;
    let def = cloned_def(session, &name, &then)?;
    let users: Vec<_> = then
        .columns
        .iter()
        .map(|c| column("source", &c.name))
        .collect();
    let plan = scan(TemporalTable::new(then, false), "source")?
        .project(users)
        .and_then(LogicalPlanBuilder::build)?;
    let batches = session.run_plan(plan).await?;
    let mut writes = WriteSet::new("CREATE TABLE CLONE");
    writes.push(Write::CreateTable(def.clone()));
    let rows = dml::push_batches(session, &mut writes, &def, &batches)?;
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done("CREATE TABLE", Some(rows), outcome))
}

/// Table `source` at `point` (the statement's snapshot without one),
/// followed through renames since by identity.
fn source_snapshot(
    session: &Session,
    source: &ObjectName,
    point: Option<&AsOf>,
) -> Result<TableSnapshot> {
    let name = table_name(source)?;
    let Some(point) = point else {
        return session
            .table_snapshot(&name)
            .ok_or_else(|| Error::UnknownTable {
                name,
                context: String::new(),
            });
    };
    let seq = point_seq(session, point)?;
    // What `SELECT * FROM t VERSION AS OF …` reads: the table the name
    // named then (see `temporal` for the rule).
    let then = session
        .db()
        .table_snapshot(&name, seq)
        .ok_or_else(|| Error::UnknownTable {
            name,
            context: format!(" at version {seq}"),
        })?;
    then.check_horizon()?;
    Ok(then)
}

/// The clone's definition: `then`'s columns (renumbered; no identity) and
/// primary key.
fn cloned_def(session: &Session, name: &str, then: &TableSnapshot) -> Result<TableDef> {
    let columns: Vec<ColumnDef> = then
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| ColumnDef {
            id: i as u32 + 1,
            default: c.default.clone().filter(|_| c.identity.is_none()),
            identity: None,
            converted_from: None,
            ..c.clone()
        })
        .collect();
    let primary_key = then
        .def
        .primary_key
        .iter()
        .map(|id| {
            let position = then.columns.iter().position(|c| c.id == *id);
            position.map(|p| p as u32 + 1).ok_or_else(|| {
                Error::internal(format!("primary key column {id} of a table lacks it"))
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    Ok(TableDef::new(
        session.db().allocate_table_id(),
        name,
        columns,
        primary_key,
    ))
}
