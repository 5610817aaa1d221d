//! DDL: CREATE / DROP / ALTER TABLE, CREATE TABLE AS, CREATE / DROP VIEW.
//! Every DDL statement is one commit, so schema changes are time-travelable.

use std::sync::Arc;

use arrow::array::RecordBatch;
use sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, ColumnOption, CreateTable, CreateView,
    GeneratedAs, ObjectName, ObjectType, RenameTableNameKind, Statement, TableConstraint,
};

use super::dml::conform_batch;
use super::foreign_keys::{self, ForeignKeySpec};
use super::sequence_ddl::{attach_sequence, serial_type};
use super::session::{Session, StatementResult};
use crate::catalog::{
    CheckDef, ColumnDef, Identity, SchemaVersion, SequenceDef, SqlType, TableDef, UniqueDef,
    ViewDef,
};
use crate::constraints::check::{validate_check, validate_default};
use crate::constraints::primary_keys;
use crate::error::{Error, Result};
use crate::txn::{UniqueBuild, Write, WriteSet};

/// An identifier as stored: unquoted names fold to lower case, as in PostgreSQL.
pub fn normalize_ident(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The table name in `name` (`t`, `public.t` or `driftdb.public.t`).
/// Another schema is 3F000 (there is only `public`); an empty quoted
/// name is 42601, as in PostgreSQL.
pub fn table_name(name: &ObjectName) -> Result<String> {
    let parts: Vec<&ast::Ident> = name.0.iter().filter_map(|p| p.as_ident()).collect();
    let (qualifiers, last) = match parts.as_slice() {
        [qualifiers @ .., last] if qualifiers.len() <= 2 => (qualifiers, last),
        _ => {
            return Err(Error::Syntax {
                message: format!("bad table name {name}"),
            });
        }
    };
    if let [catalog, _] = qualifiers {
        let catalog = normalize_ident(catalog);
        if catalog != super::CATALOG_NAME {
            return Err(Error::unsupported(format!(
                "cross-database references (\"{catalog}\")"
            )));
        }
    }
    if let [.., schema] = qualifiers {
        let schema = normalize_ident(schema);
        if schema != super::SCHEMA_NAME {
            return Err(Error::UnknownSchema { name: schema });
        }
    }
    let table = normalize_ident(last);
    if table.is_empty() {
        return Err(Error::Syntax {
            message: "zero-length delimited identifier".into(),
        });
    }
    Ok(table)
}

/// 42701 if `column` is the name of a system column.
fn check_column_name(table: &str, column: &str) -> Result<()> {
    match crate::catalog::SYSTEM_COLUMN_NAMES.contains(&column) {
        true => Err(Error::SystemColumnName {
            table: table.into(),
            column: column.into(),
        }),
        false => Ok(()),
    }
}

pub(crate) async fn create_table(
    session: &Session,
    create: CreateTable,
) -> Result<StatementResult> {
    let name = table_name(&create.name)?;
    if create.temporary {
        return Err(Error::unsupported(
            "temporary tables (every DriftDB table is durable and visible to every session)",
        ));
    }
    // Never an empty table standing for a file: a file is read where it is.
    if create.external || create.location.is_some() || create.file_format.is_some() {
        return Err(Error::unsupported(
            "CREATE EXTERNAL TABLE: read files with read_parquet('…'), read_csv('…') or \
             read_json('…') (a view over one names it), or load them with COPY t FROM '…'",
        ));
    }
    if session.table_exists(&name) || session.sequence_def(&name).is_some() {
        if create.if_not_exists {
            return Ok(StatementResult::done("CREATE TABLE", None, None));
        }
        return Err(Error::TableExists { name });
    }
    if let Some(query) = create.query {
        return create_table_as(session, name, *query).await;
    }
    let (def, sequences) = table_def(session, &name, &create.columns, &create.constraints)?;
    let mut writes = WriteSet::new("CREATE TABLE");
    writes.extend(sequences.into_iter().map(Write::CreateSequence));
    validate_expressions(session, &def)?;
    writes.push(Write::CreateTable(def));
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done("CREATE TABLE", None, outcome))
}

/// The table a `CREATE TABLE` defines, and the sequences its `SERIAL` and
/// identity columns draw from.
fn table_def(
    session: &Session,
    name: &str,
    columns: &[ast::ColumnDef],
    constraints: &[TableConstraint],
) -> Result<(TableDef, Vec<SequenceDef>)> {
    let table_id = session.db().allocate_table_id();
    let mut sequences = Vec::new();
    let mut defs: Vec<ColumnDef> = Vec::with_capacity(columns.len());
    let mut primary_key: Vec<String> = Vec::new();
    let mut checks: Vec<CheckDef> = Vec::new();
    // UNIQUE constraints as (name if given, column names) until the columns exist.
    let mut unique_specs: Vec<(Option<String>, Vec<String>)> = Vec::new();
    let mut foreign_key_specs: Vec<ForeignKeySpec> = Vec::new();
    let column_names: Vec<String> = columns.iter().map(|c| normalize_ident(&c.name)).collect();
    for (i, column) in columns.iter().enumerate() {
        let column_name = normalize_ident(&column.name);
        if column_name.is_empty() {
            return Err(Error::Syntax {
                message: "zero-length delimited identifier".into(),
            });
        }
        check_column_name(name, &column_name)?;
        if defs.iter().any(|d| d.name == column_name) {
            return Err(Error::ColumnExists {
                table: name.into(),
                column: column_name,
            });
        }
        let serial = serial_type(&column.data_type);
        let mut def = ColumnDef {
            id: i as u32 + 1,
            sql_type: match &serial {
                Some(sql_type) => sql_type.clone(),
                None => SqlType::from_sql(&column_name, &column.data_type)?,
            },
            name: column_name.clone(),
            nullable: true,
            default: None,
            identity: None,
            converted_from: None,
        };
        let mut identity = serial.map(|_| (Identity::ByDefault, Vec::new()));
        for option in &column.options {
            match &option.option {
                ColumnOption::NotNull => def.nullable = false,
                ColumnOption::Null => def.nullable = true,
                ColumnOption::PrimaryKey(_) if !primary_key.is_empty() => {
                    return Err(multiple_primary_keys(name));
                }
                ColumnOption::PrimaryKey(_) => primary_key.push(column_name.clone()),
                ColumnOption::Unique(unique) => unique_specs.push((
                    unique
                        .name
                        .as_ref()
                        .or(option.name.as_ref())
                        .map(normalize_ident),
                    vec![column_name.clone()],
                )),
                ColumnOption::Default(expr) => def.default = Some(expr.to_string()),
                ColumnOption::ForeignKey(fk) => foreign_key_specs.push(ForeignKeySpec::from_ast(
                    fk,
                    Some(&column_name),
                    option.name.as_ref(),
                )?),
                ColumnOption::Check(check) => checks.push(CheckDef {
                    name: constraint_name(check.name.as_ref().or(option.name.as_ref()), || {
                        let expr = check.expr.to_string();
                        unused_name(&check_name_base(name, &expr, &column_names), &checks)
                    }),
                    expr: check.expr.to_string(),
                }),
                ColumnOption::Generated {
                    generated_as,
                    sequence_options,
                    generation_expr: None,
                    ..
                } => {
                    let kind = match generated_as {
                        GeneratedAs::Always => Identity::Always,
                        GeneratedAs::ByDefault => Identity::ByDefault,
                        GeneratedAs::ExpStored => {
                            return Err(Error::unsupported("stored generated columns"));
                        }
                    };
                    identity = Some((kind, sequence_options.clone().unwrap_or_default()));
                }
                other => return Err(Error::unsupported(format!("column option {other}"))),
            }
        }
        if let Some((kind, options)) = identity {
            sequences.push(attach_sequence(
                session, name, table_id, &mut def, kind, &options,
            )?);
        }
        defs.push(def);
    }
    for constraint in constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) if primary_key.is_empty() => {
                for column in &pk.columns {
                    primary_key.push(
                        column
                            .column
                            .expr
                            .to_string()
                            .trim_matches('"')
                            .to_lowercase(),
                    );
                }
            }
            TableConstraint::Check(check) => {
                let expr = check.expr.to_string();
                let made_up = || unused_name(&check_name_base(name, &expr, &column_names), &checks);
                checks.push(CheckDef {
                    name: constraint_name(check.name.as_ref(), made_up),
                    expr: check.expr.to_string(),
                });
            }
            TableConstraint::Unique(unique) => unique_specs.push((
                unique.name.as_ref().map(normalize_ident),
                index_column_names(&unique.columns),
            )),
            TableConstraint::ForeignKey(fk) => {
                foreign_key_specs.push(ForeignKeySpec::from_ast(fk, None, None)?)
            }
            TableConstraint::PrimaryKey(_) => return Err(multiple_primary_keys(name)),
            other => return Err(Error::unsupported(format!("table constraint {other}"))),
        }
    }
    let mut pk_ids = Vec::new();
    for key_column in primary_key {
        let def = defs
            .iter_mut()
            .find(|d| d.name == key_column)
            .ok_or_else(|| Error::UnknownColumn {
                table: name.into(),
                column: key_column.clone(),
            })?;
        def.nullable = false;
        pk_ids.push(def.id);
    }
    if let Some(repeated) = checks
        .iter()
        .enumerate()
        .find(|(i, c)| checks[..*i].iter().any(|d| d.name == c.name))
    {
        return Err(Error::ConstraintExists {
            table: name.into(),
            constraint: repeated.1.name.clone(),
        });
    }
    let uniques = unique_defs(name, &defs, unique_specs, &checks)?;
    let mut table = TableDef::new(table_id, name, defs, pk_ids);
    table.checks = checks;
    table.uniques = uniques;
    for spec in foreign_key_specs {
        let fk = resolve_foreign_key(session, &table, spec)?;
        table.foreign_keys.push(fk);
    }
    Ok((table, sequences))
}

/// Resolve a FOREIGN KEY of `table`, its name unique among the table's constraints.
fn resolve_foreign_key(
    session: &Session,
    table: &TableDef,
    spec: ForeignKeySpec,
) -> Result<crate::catalog::ForeignKeyDef> {
    let taken = |name: &str| constraint_name_taken(table, name);
    foreign_keys::resolve(session, table, spec, &taken)
}

/// Whether one of `table`'s constraints is called `name`.
fn constraint_name_taken(table: &TableDef, name: &str) -> bool {
    table.primary_key_name() == name
        || table.checks.iter().any(|c| c.name == name)
        || table.uniques.iter().any(|u| u.name == name)
        || table.foreign_keys.iter().any(|f| f.name == name)
}

/// How the index of `uniques` (replacing `before.uniques`) is obtained: by
/// keeping entries when constraints were only dropped, else by building it
/// from every live row (23505 if two share a key).
pub(super) async fn unique_build(
    session: &Session,
    altered: &TableDef,
    before: &TableDef,
    uniques: &[UniqueDef],
) -> Result<UniqueBuild> {
    let kept: Option<Vec<usize>> = uniques
        .iter()
        .map(|u| before.uniques.iter().position(|b| b == u))
        .collect();
    if let Some(keep) = kept {
        return Ok(UniqueBuild::Keep(keep));
    }
    let index = session.db().build_unique_index(altered).await?;
    Ok(UniqueBuild::Index(Arc::new(index)))
}

/// Existing UNIQUE constraints as (name, column names) specs.
pub(super) fn uniques_as_specs(
    columns: &[ColumnDef],
    uniques: &[UniqueDef],
) -> Vec<(Option<String>, Vec<String>)> {
    uniques
        .iter()
        .map(|u| {
            let names = u
                .columns
                .iter()
                .filter_map(|id| columns.iter().find(|c| c.id == *id))
                .map(|c| c.name.clone())
                .collect();
            (Some(u.name.clone()), names)
        })
        .collect()
}

/// The column names of a UNIQUE constraint's column list.
fn index_column_names(columns: &[ast::IndexColumn]) -> Vec<String> {
    columns
        .iter()
        .map(|c| match &c.column.expr {
            ast::Expr::Identifier(ident) => normalize_ident(ident),
            other => other.to_string().to_lowercase(),
        })
        .collect()
}

/// UNIQUE constraint definitions, named as PostgreSQL names them
/// (`<table>_<col>[_<col>…]_key`, made unique against `taken` names).
pub(super) fn unique_defs(
    table: &str,
    columns: &[ColumnDef],
    specs: Vec<(Option<String>, Vec<String>)>,
    checks: &[CheckDef],
) -> Result<Vec<UniqueDef>> {
    let mut uniques: Vec<UniqueDef> = Vec::new();
    for (name, names) in specs {
        let ids = names
            .iter()
            .map(|n| {
                columns
                    .iter()
                    .find(|c| &c.name == n)
                    .map(|c| c.id)
                    .ok_or_else(|| Error::UnknownColumn {
                        table: table.into(),
                        column: n.clone(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let taken =
            |n: &str| checks.iter().any(|c| c.name == n) || uniques.iter().any(|u| u.name == n);
        let name = match name {
            Some(name) if taken(&name) => {
                return Err(Error::ConstraintExists {
                    table: table.into(),
                    constraint: name,
                });
            }
            Some(name) => name,
            None => {
                let base = format!("{table}_{}_key", names.join("_"));
                let mut candidate = base.clone();
                let mut n = 0;
                while taken(&candidate) {
                    n += 1;
                    candidate = format!("{base}{n}");
                }
                candidate
            }
        };
        uniques.push(UniqueDef { name, columns: ids });
    }
    Ok(uniques)
}

/// Refuse a table whose CHECK or DEFAULT expressions cannot be evaluated.
fn validate_expressions(session: &Session, def: &TableDef) -> Result<()> {
    for check in &def.checks {
        validate_check(session.context(), def, check)?;
    }
    // Identity defaults name a sequence created in the same commit: nothing to try yet.
    let defaults = def
        .columns()
        .iter()
        .filter(|c| c.default.is_some() && c.identity.is_none());
    for column in defaults {
        validate_default(session.context(), column)?;
    }
    Ok(())
}

/// A column added without a DEFAULT to a table with rows is NULL in them:
/// refused if it is NOT NULL (23502, as PostgreSQL). (With a DEFAULT, the
/// rows are rewritten with it: see [`Refill`].)
fn check_added_column(table: &str, added: &ColumnDef, has_rows: bool) -> Result<()> {
    match !has_rows || added.nullable {
        true => Ok(()),
        false => Err(Error::NotNullViolation {
            table: table.to_string(),
            column: added.name.clone(),
        }),
    }
}

/// ALTER TABLE … ADD CONSTRAINT … CHECK validates the rows already there.
async fn check_existing_rows(session: &Session, def: &TableDef, check: &CheckDef) -> Result<()> {
    let alias = datafusion::common::TableReference::bare(def.name.clone());
    let scan = super::plans::table_scan(session, def, alias, false)?;
    let predicate = crate::constraints::check::check_expr(session.context(), def, check)?;
    // Rows where the CHECK is FALSE (NULL passes, as in PostgreSQL).
    let plan = scan
        .filter(datafusion::logical_expr::Expr::Not(Box::new(predicate)))?
        .limit(0, Some(1))?
        .build()?;
    let batches = session.run_plan(plan).await?;
    match batches.iter().find(|b| b.num_rows() > 0) {
        Some(batch) => Err(Error::CheckViolatedByExistingRow {
            table: def.name.clone(),
            constraint: check.name.clone(),
            row: crate::constraints::check::render_row(batch, 0),
        }),
        None => Ok(()),
    }
}

/// `base`, or `base1`, `base2`, … : the first no check is called yet.
fn unused_name(base: &str, checks: &[CheckDef]) -> String {
    let taken = |candidate: &str| checks.iter().any(|c| c.name == candidate);
    std::iter::once(base.to_string())
        .chain((1..).map(|n| format!("{base}{n}")))
        .find(|candidate| !taken(candidate))
        .expect("an unused name exists")
}

/// The name PostgreSQL gives an unnamed CHECK: `<table>_<column>_check`
/// when it reads exactly one of the table's columns, else `<table>_check`.
fn check_name_base(table: &str, expr: &str, columns: &[String]) -> String {
    let mut read: Vec<String> = super::parser::identifiers_in(expr)
        .into_iter()
        .filter(|i| columns.contains(i))
        .collect();
    read.sort();
    read.dedup();
    match read.as_slice() {
        [column] => format!("{table}_{column}_check"),
        _ => format!("{table}_check"),
    }
}

/// A constraint's given name, or the one PostgreSQL would make up.
fn constraint_name(given: Option<&ast::Ident>, made_up: impl FnOnce() -> String) -> String {
    given.map(normalize_ident).unwrap_or_else(made_up)
}

/// Whether a table made from an Arrow schema keeps the schema's NOT NULLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nullability {
    /// Every column nullable (CREATE TABLE AS, as in PostgreSQL).
    AllNullable,
    /// Non-nullable fields become NOT NULL columns (bulk ingest).
    FromSchema,
}

/// 42P16, as PostgreSQL names a second PRIMARY KEY.
fn multiple_primary_keys(table: &str) -> Error {
    Error::InvalidTableDefinition {
        message: format!("multiple primary keys for table \"{table}\" are not allowed"),
    }
}

/// A new table definition with one column per field of `schema`.
pub(crate) fn table_def_from_arrow(
    session: &Session,
    name: &str,
    schema: &arrow::datatypes::Schema,
    nullability: Nullability,
) -> Result<TableDef> {
    let mut columns: Vec<ColumnDef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        check_column_name(name, field.name())?;
        if columns.iter().any(|c| &c.name == field.name()) {
            return Err(Error::ColumnExists {
                table: name.into(),
                column: field.name().clone(),
            });
        }
        columns.push(ColumnDef {
            id: i as u32 + 1,
            name: field.name().clone(),
            sql_type: SqlType::from_arrow(field.name(), field.data_type())?,
            nullable: nullability == Nullability::AllNullable || field.is_nullable(),
            default: None,
            identity: None,
            converted_from: None,
        });
    }
    Ok(TableDef::new(
        session.db().allocate_table_id(),
        name,
        columns,
        Vec::new(),
    ))
}

async fn create_table_as(
    session: &Session,
    name: String,
    mut query: ast::Query,
) -> Result<StatementResult> {
    // The new table's columns take PostgreSQL's names (`count`, `?column?`).
    super::output_names::name_query(&mut query);
    let plan = session.plan(Statement::Query(Box::new(query))).await?;
    let (schema, batches) = session.collect_plan(plan).await?;
    let schema = super::output_names::public_schema(&schema).unwrap_or(schema);
    let def = table_def_from_arrow(session, &name, &schema, Nullability::AllNullable)?;
    let targets: Vec<usize> = (0..def.columns().len()).collect();
    let source = arrow::compute::concat_batches(&schema, &batches)?;
    let batch = conform_batch(session, &def, &targets, &source)?;
    let rows = batch.num_rows() as u64;
    let mut writes = WriteSet::new("CREATE TABLE AS");
    let table_id = def.id;
    writes.push(Write::CreateTable(def));
    if rows > 0 {
        writes.push(Write::Insert {
            table_id,
            batch,
            keys: crate::txn::KeyColumn::default(),
        });
    }
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done(
        "CREATE TABLE AS",
        Some(rows),
        outcome,
    ))
}

pub(crate) async fn drop_objects(
    session: &Session,
    object_type: ObjectType,
    if_exists: bool,
    names: Vec<ObjectName>,
    cascade: bool,
) -> Result<StatementResult> {
    if object_type == ObjectType::Index {
        let mut writes = WriteSet::new("DROP INDEX");
        super::index_ddl::drop_indexes(session, &names, if_exists, &mut writes).await?;
        let outcome = match writes.is_empty() {
            true => None,
            false => session.commit(writes).await?,
        };
        return Ok(StatementResult::done("DROP INDEX", None, outcome));
    }
    let (tag, mut writes) = match object_type {
        ObjectType::Table => ("DROP TABLE", WriteSet::new("DROP TABLE")),
        ObjectType::View => ("DROP VIEW", WriteSet::new("DROP VIEW")),
        ObjectType::Sequence => ("DROP SEQUENCE", WriteSet::new("DROP SEQUENCE")),
        other => return Err(Error::unsupported(format!("DROP {other}"))),
    };
    for name in &names {
        let name = table_name(name)?;
        let write = match object_type {
            ObjectType::Table => session
                .table_snapshot(&name)
                .map(|t| Write::DropTable { table_id: t.def.id }),
            ObjectType::Sequence => super::sequence_ddl::drop_sequence(session, &name),
            _ => session
                .view_def(&name)
                .map(|_| Write::DropView { name: name.clone() }),
        };
        match write {
            Some(write) => writes.push(write),
            None if if_exists => {}
            None => {
                return Err(Error::UnknownTable {
                    name,
                    context: String::new(),
                });
            }
        }
    }
    if writes.is_empty() {
        return Ok(StatementResult::done(tag, None, None));
    }
    if object_type == ObjectType::Table {
        drop_dependent_foreign_keys(session, &mut writes, cascade)?;
    }
    let names: Vec<String> = names.iter().map(table_name).collect::<Result<_>>()?;
    if object_type == ObjectType::Sequence {
        super::dependencies::guard_sequences(session, &mut writes, &names, cascade)?;
    }
    let object = format!("{} {}", tag.to_lowercase(), names.join(", "));
    super::dependencies::guard_views(session, &mut writes, cascade, &object).await?;
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done(tag, None, outcome))
}

/// FOREIGN KEYs of other tables referencing a table `writes` drops: with
/// CASCADE they are dropped too, else the DROP is refused (2BP01).
pub(crate) fn drop_dependent_foreign_keys(
    session: &Session,
    writes: &mut WriteSet,
    cascade: bool,
) -> Result<()> {
    let dropped = writes.dropped_tables();
    let mut children: Vec<TableDef> = Vec::new();
    for parent in &dropped {
        for (child, fk) in session.referencing(*parent) {
            if dropped.contains(&child.id) {
                continue;
            }
            if !cascade {
                let parent_name = session.table_by_id(*parent).map(|t| t.name);
                return Err(Error::referenced_table(
                    &parent_name.unwrap_or_default(),
                    &fk.name,
                    &child.name,
                ));
            }
            if !children.iter().any(|c| c.id == child.id) {
                children.push(child);
            }
        }
    }
    for child in children {
        let foreign_keys = child
            .foreign_keys
            .into_iter()
            .filter(|fk| !dropped.contains(&fk.parent))
            .collect();
        writes.push(Write::SetForeignKeys {
            table_id: child.id,
            foreign_keys,
        });
    }
    Ok(())
}

/// Refuse to drop UNIQUE constraint `unique` of `def` while a FOREIGN KEY references it (2BP01).
pub(super) fn refuse_referenced_unique(
    session: &Session,
    def: &TableDef,
    unique: &crate::catalog::UniqueDef,
) -> Result<()> {
    match session
        .referencing(def.id)
        .into_iter()
        .find(|(_, fk)| fk.parent_columns == unique.columns)
    {
        Some((child, fk)) => Err(Error::DependentObjects {
            object: format!("drop constraint {} on table {}", unique.name, def.name),
            detail: format!(
                "constraint {} on table {} depends on it",
                fk.name, child.name
            ),
        }),
        None => Ok(()),
    }
}

pub(crate) async fn alter_table(
    session: &Session,
    alter: ast::AlterTable,
) -> Result<StatementResult> {
    let name = table_name(&alter.name)?;
    let Some(snapshot) = session.table_snapshot(&name) else {
        if alter.if_exists {
            return Ok(StatementResult::done("ALTER TABLE", None, None));
        }
        return Err(Error::UnknownTable {
            name,
            context: String::new(),
        });
    };
    let def = snapshot.def.as_ref();
    let mut columns = def.columns().to_vec();
    let mut next_column_id = def.next_column_id;
    let mut checks = def.checks.clone();
    let mut added_checks: Vec<CheckDef> = Vec::new();
    let mut uniques = def.uniques.clone();
    let mut foreign_keys = def.foreign_keys.clone();
    let mut added_foreign_keys = Vec::new();
    let mut cascade = false;
    let mut object = format!("alter table {name}");
    let mut refills: Vec<(u32, Refill)> = Vec::new();
    let mut rename: Option<String> = None;
    let mut not_null_checks: Vec<u32> = Vec::new();
    let mut retention: Option<Option<i64>> = None;
    for operation in alter.operations {
        match operation {
            AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                ..
            } => {
                let column = normalize_ident(&column_def.name);
                check_column_name(&name, &column)?;
                if columns.iter().any(|c| c.name == column) {
                    if if_not_exists {
                        continue;
                    }
                    return Err(Error::ColumnExists {
                        table: name,
                        column,
                    });
                }
                let mut added = ColumnDef {
                    id: next_column_id,
                    sql_type: SqlType::from_sql(&column, &column_def.data_type)?,
                    name: column.clone(),
                    nullable: true,
                    default: None,
                    identity: None,
                    converted_from: None,
                };
                next_column_id += 1;
                for option in &column_def.options {
                    match &option.option {
                        ColumnOption::Null => added.nullable = true,
                        ColumnOption::NotNull => added.nullable = false,
                        ColumnOption::Default(expr) => added.default = Some(expr.to_string()),
                        other => return Err(Error::unsupported(format!("ADD COLUMN … {other}"))),
                    }
                }
                let has_rows = session.row_count_upper_bound(&snapshot) > 0;
                if has_rows && added.default.is_some() {
                    refills.push((added.id, Refill::Default));
                } else {
                    check_added_column(&name, &added, has_rows)?;
                }
                columns.push(added);
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                drop_behavior,
                ..
            } => {
                cascade |= drop_behavior == Some(ast::DropBehavior::Cascade);
                if let Some(first) = column_names.first() {
                    object = format!("drop column {} of table {name}", normalize_ident(first));
                }
                for ident in column_names {
                    let column = normalize_ident(&ident);
                    let existing = |c: &&ColumnDef| c.name == column && c.id < def.next_column_id;
                    let Some(pos) = columns.iter().position(|c| existing(&c)) else {
                        if if_exists {
                            continue;
                        }
                        return Err(Error::UnknownColumn {
                            table: name,
                            column,
                        });
                    };
                    let id = columns[pos].id;
                    if def.foreign_keys.iter().any(|f| f.columns.contains(&id)) {
                        return Err(Error::unsupported(format!(
                            "dropping column \"{column}\" of \"{name}\" while a FOREIGN KEY uses it"
                        )));
                    }
                    if def.uniques.iter().any(|u| u.columns.contains(&id)) {
                        return Err(Error::unsupported(format!(
                            "dropping column \"{column}\" of \"{name}\" while a UNIQUE constraint uses it"
                        )));
                    }
                    if def.primary_key.contains(&columns[pos].id) {
                        return Err(Error::unsupported(format!(
                            "dropping primary key column \"{column}\" of \"{name}\""
                        )));
                    }
                    columns.remove(pos);
                }
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let old = normalize_ident(&old_column_name);
                let new = normalize_ident(&new_column_name);
                check_column_name(&name, &new)?;
                if columns.iter().any(|c| c.name == new) {
                    return Err(Error::ColumnExists {
                        table: name,
                        column: new,
                    });
                }
                let column = columns.iter_mut().find(|c| c.name == old).ok_or_else(|| {
                    Error::UnknownColumn {
                        table: name.clone(),
                        column: old.clone(),
                    }
                })?;
                column.name = new;
            }
            AlterTableOperation::AddConstraint {
                constraint: TableConstraint::Check(check),
                ..
            } => {
                let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
                let expr = check.expr.to_string();
                let made_up = || unused_name(&check_name_base(&name, &expr, &names), &checks);
                let added = CheckDef {
                    name: constraint_name(check.name.as_ref(), made_up),
                    expr: check.expr.to_string(),
                };
                if checks.iter().any(|c| c.name == added.name) {
                    return Err(Error::ConstraintExists {
                        table: name,
                        constraint: added.name,
                    });
                }
                added_checks.push(added.clone());
                checks.push(added);
            }
            AlterTableOperation::AddConstraint {
                constraint: TableConstraint::Unique(unique),
                ..
            } => {
                let spec = (
                    unique.name.as_ref().map(normalize_ident),
                    index_column_names(&unique.columns),
                );
                let mut all = uniques_as_specs(&columns, &uniques);
                all.push(spec);
                uniques = unique_defs(&name, &columns, all, &checks)?;
            }
            AlterTableOperation::AddConstraint {
                constraint: TableConstraint::ForeignKey(fk),
                ..
            } => {
                let mut current = def.clone();
                current.versions.push(SchemaVersion {
                    seq: u64::MAX,
                    columns: columns.clone(),
                });
                current.checks = checks.clone();
                current.uniques = uniques.clone();
                current.foreign_keys = foreign_keys.clone();
                let spec = ForeignKeySpec::from_ast(&fk, None, None)?;
                let fk = resolve_foreign_key(session, &current, spec)?;
                added_foreign_keys.push(fk.clone());
                foreign_keys.push(fk);
            }
            AlterTableOperation::DropConstraint {
                if_exists,
                name: constraint,
                ..
            } => {
                let constraint = normalize_ident(&constraint);
                // A UNIQUE index is no constraint to drop (PostgreSQL: 42704).
                let index = def.indexes.iter().any(|i| i.unique && i.name == constraint);
                let unique = uniques
                    .iter()
                    .position(|u| u.name == constraint)
                    .filter(|_| !index);
                let foreign = foreign_keys.iter().position(|f| f.name == constraint);
                match checks.iter().position(|c| c.name == constraint) {
                    Some(pos) => {
                        checks.remove(pos);
                    }
                    None if unique.is_some() => {
                        let removed = uniques.remove(unique.unwrap_or_default());
                        refuse_referenced_unique(session, def, &removed)?;
                    }
                    None if foreign.is_some() => {
                        foreign_keys.remove(foreign.unwrap_or_default());
                    }
                    None if if_exists => {}
                    None => {
                        return Err(Error::UnknownConstraint {
                            table: name,
                            constraint,
                        });
                    }
                }
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                let column_name = normalize_ident(&column_name);
                // A type change sees only the columns the table had (PostgreSQL
                // changes types before it adds columns: 42703).
                let retype = matches!(op, AlterColumnOperation::SetDataType { .. });
                let column = columns
                    .iter_mut()
                    .find(|c| c.name == column_name && (!retype || c.id < def.next_column_id))
                    .ok_or_else(|| Error::UnknownColumn {
                        table: name.clone(),
                        column: column_name.clone(),
                    })?;
                match op {
                    AlterColumnOperation::SetDefault { value } => {
                        column.default = Some(value.to_string());
                    }
                    AlterColumnOperation::DropDefault => column.default = None,
                    AlterColumnOperation::SetNotNull => {
                        column.nullable = false;
                        not_null_checks.push(column.id);
                    }
                    AlterColumnOperation::DropNotNull => {
                        refuse_drop_not_null(def, column)?;
                        column.nullable = true;
                    }
                    AlterColumnOperation::SetDataType {
                        data_type, using, ..
                    } => {
                        let sql_type = SqlType::from_sql(&column.name, &data_type)?;
                        if sql_type != column.sql_type || using.is_some() {
                            refuse_retyping_key(def, column)?;
                            if using.is_none() {
                                refuse_explicit_only(column, &sql_type)?;
                            }
                            let from = column.id;
                            column.id = next_column_id;
                            next_column_id += 1;
                            column.sql_type = sql_type;
                            column.converted_from = Some(from);
                            refills.push((column.id, Refill::Convert { from, using }));
                        }
                    }
                    other => {
                        return Err(Error::unsupported(format!("ALTER COLUMN … {other}")));
                    }
                }
            }
            AlterTableOperation::RenameTable {
                table_name: RenameTableNameKind::To(new) | RenameTableNameKind::As(new),
            } => {
                let new = table_name(&new)?;
                object = format!("rename table {name}");
                rename = Some(new);
            }
            AlterTableOperation::SetOptionsParens { options } => {
                retention = Some(super::maintenance::history_retention(&options)?);
            }
            other => return Err(Error::unsupported(format!("ALTER TABLE … {other}"))),
        }
    }
    if columns.is_empty() {
        return Err(Error::InvalidArgument {
            message: format!("table \"{name}\" would have no columns"),
        });
    }
    let mut altered = def.clone();
    altered.versions.push(SchemaVersion {
        seq: u64::MAX,
        columns: columns.clone(),
    });
    altered.checks = checks.clone();
    altered.uniques = uniques.clone();
    validate_expressions(session, &altered)?;
    altered.foreign_keys = foreign_keys.clone();
    for check in &added_checks {
        check_existing_rows(session, &altered, check).await?;
    }
    for fk in &added_foreign_keys {
        foreign_keys::check_existing_rows(session, &altered, fk).await?;
    }
    for id in &not_null_checks {
        check_no_nulls(session, def, *id).await?;
    }
    let mut writes = WriteSet::new("ALTER TABLE");
    if let Some(retention_us) = retention {
        writes.push(Write::SetHistory {
            table_id: def.id,
            policy: crate::catalog::HistoryPolicy {
                retention_us,
                ..def.history
            },
        });
    }
    let indexes = super::index_ddl::indexes_over(&def.indexes, &columns);
    if columns != def.columns() || next_column_id != def.next_column_id {
        writes.push(Write::SetColumns {
            table_id: def.id,
            columns,
            next_column_id,
        });
    }
    if !refills.is_empty() && session.row_count_upper_bound(&snapshot) > 0 {
        rewrite_rows(session, def, &altered, &refills, &mut writes).await?;
    }
    if let Some(new) = rename {
        if session.table_exists(&new)
            || session.view_def(&new).is_some()
            || session.sequence_def(&new).is_some()
        {
            return Err(Error::TableExists { name: new });
        }
        writes.push(Write::RenameTable {
            table_id: def.id,
            name: new,
        });
    }
    if indexes != def.indexes {
        writes.push(Write::SetIndexes {
            table_id: def.id,
            indexes,
        });
    }
    if checks != def.checks {
        writes.push(Write::SetChecks {
            table_id: def.id,
            checks,
        });
    }
    if foreign_keys != def.foreign_keys {
        writes.push(Write::SetForeignKeys {
            table_id: def.id,
            foreign_keys,
        });
    }
    if uniques != def.uniques {
        let build = unique_build(session, &altered, def, &uniques).await?;
        writes.push(Write::SetUniques {
            table_id: def.id,
            uniques,
            build,
        });
    }
    if writes.is_empty() {
        return Ok(StatementResult::done("ALTER TABLE", None, None));
    }
    super::dependencies::guard_views(session, &mut writes, cascade, &object).await?;
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done("ALTER TABLE", None, outcome))
}

/// Where a column's values come from when `ALTER TABLE` rewrites the rows.
enum Refill {
    /// `ADD COLUMN … DEFAULT` on a table with rows: the default, per row.
    Default,
    /// `ALTER COLUMN … TYPE`: column `from` converted (or `USING` computed).
    Convert { from: u32, using: Option<ast::Expr> },
}

/// Give every live row of `old` a new version under `altered`'s columns
/// (in the same commit as the column change): existing columns carry
/// over by id, refilled ones take their [`Refill`]. Like PostgreSQL's
/// table rewrite; the old versions stay in history.
async fn rewrite_rows(
    session: &Session,
    old: &TableDef,
    altered: &TableDef,
    refills: &[(u32, Refill)],
    writes: &mut WriteSet,
) -> Result<()> {
    if session.in_transaction_block() {
        // A transaction's own rows keep the columns they were written with.
        return Err(Error::unsupported(
            "an ALTER TABLE that rewrites the table's rows (ADD COLUMN … DEFAULT on a table \
             with rows, ALTER COLUMN … TYPE) inside a transaction block",
        ));
    }
    let alias = datafusion::common::TableReference::bare(old.name.clone());
    let scan = super::plans::table_scan(session, old, alias.clone(), true)?;
    let input = scan.schema().clone();
    let old_name = |id: u32| {
        old.columns()
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
    };
    let mut exprs = super::plans::rowid_and_key(old, &alias);
    for (i, column) in altered.columns().iter().enumerate() {
        let refill = refills
            .iter()
            .find(|(id, _)| *id == column.id)
            .map(|(_, r)| r);
        let value = match (refill, old_name(column.id)) {
            (
                Some(Refill::Convert {
                    using: Some(expr), ..
                }),
                _,
            ) => super::plans::plan_expr(session, expr, &input)?,
            (Some(Refill::Convert { from, using: None }), _) => {
                let name =
                    old_name(*from).ok_or_else(|| Error::internal("converted column vanished"))?;
                super::plans::column(&alias, &name)
            }
            (None, Some(name)) => super::plans::column(&alias, &name),
            (Some(Refill::Default), _) | (None, None) => {
                super::dml::default_assignment(session, column)?
            }
        };
        exprs.push(value.alias(format!("refill{}{i}", super::output_names::MARK)));
    }
    let batches = session.run_plan(scan.project(exprs)?.build()?).await?;
    for batch in batches.into_iter().filter(|b| b.num_rows() > 0) {
        super::dml::update_rows_read(session, altered, batch, writes)?;
    }
    Ok(())
}

/// `SET NOT NULL` is refused while a live row holds a NULL there (23502).
async fn check_no_nulls(session: &Session, def: &TableDef, id: u32) -> Result<()> {
    // A column this statement adds was checked as it was added.
    let Some(column) = def.columns().iter().find(|c| c.id == id) else {
        return Ok(());
    };
    let alias = datafusion::common::TableReference::bare(def.name.clone());
    let scan = super::plans::table_scan(session, def, alias.clone(), false)?;
    let plan = scan
        .filter(super::plans::column(&alias, &column.name).is_null())?
        .limit(0, Some(1))?
        .build()?;
    let batches = session.run_plan(plan).await?;
    match batches.iter().any(|b| b.num_rows() > 0) {
        true => Err(Error::NotNullViolation {
            table: def.name.clone(),
            column: column.name.clone(),
        }),
        false => Ok(()),
    }
}

/// `ALTER COLUMN … TYPE` without `USING` converts only where PostgreSQL
/// has a cast that applies on assignment: not from text to another type,
/// nor between booleans and numbers (42804).
fn refuse_explicit_only(column: &ColumnDef, to: &SqlType) -> Result<()> {
    let text = |t: &SqlType| matches!(t, SqlType::Text { .. });
    let boolean = |t: &SqlType| matches!(t, SqlType::Boolean);
    let from = &column.sql_type;
    let explicit_only = (text(from) && !text(to)) || boolean(from) != boolean(to);
    match explicit_only {
        true => Err(Error::DatatypeMismatch {
            message: format!(
                "column \"{}\" cannot be cast automatically to type {} (give USING expression)",
                column.name,
                to.sql_name()
            ),
        }),
        false => Ok(()),
    }
}

/// A primary-key or identity column stays NOT NULL (42P16, as in PostgreSQL).
fn refuse_drop_not_null(def: &TableDef, column: &ColumnDef) -> Result<()> {
    let why = match () {
        _ if def.primary_key.contains(&column.id) => "is in a primary key",
        _ if column.identity.is_some() => "is an identity column",
        _ => return Ok(()),
    };
    Err(Error::InvalidTableDefinition {
        message: format!(
            "column \"{}\" of relation \"{}\" {why}",
            column.name, def.name
        ),
    })
}

/// A column a key, constraint or identity uses keeps its type (its
/// values are found by column id).
fn refuse_retyping_key(def: &TableDef, column: &ColumnDef) -> Result<()> {
    let id = column.id;
    let used = def.primary_key.contains(&id)
        || def.uniques.iter().any(|u| u.columns.contains(&id))
        || def.foreign_keys.iter().any(|f| f.columns.contains(&id))
        || column.identity.is_some()
        || !def.checks.is_empty();
    match used {
        true => Err(Error::unsupported(format!(
            "ALTER COLUMN \"{}\" TYPE while a key, CHECK constraint or identity of \"{}\" uses it",
            column.name, def.name
        ))),
        false => Ok(()),
    }
}

/// `CREATE VIEW`; the definition is stored as `text`, the statement as written.
pub(crate) async fn create_view(
    session: &Session,
    view: CreateView,
    text: &str,
) -> Result<StatementResult> {
    if view.materialized {
        return Err(Error::unsupported("materialized views"));
    }
    let name = table_name(&view.name)?;
    if session.table_exists(&name) {
        return Err(Error::TableExists { name });
    }
    let exists = session.view_def(&name).is_some();
    if exists && view.if_not_exists {
        return Ok(StatementResult::done("CREATE VIEW", None, None));
    }
    if exists && !view.or_replace {
        return Err(Error::TableExists { name });
    }
    let columns = check_view_columns(session, &name, &view).await?;
    if exists && let Ok(old) = session.view_columns(&name, None).await {
        check_replacement(&name, &old, &columns)?;
    }
    let sql = match text.is_empty() {
        true => view.query.to_string(),
        false => text.to_string(),
    };
    let mut writes = WriteSet::new("CREATE VIEW");
    if exists {
        writes.push(Write::DropView { name: name.clone() });
    }
    writes.push(Write::CreateView(ViewDef {
        name: name.clone(),
        sql,
        created_seq: 0,
        dropped_seq: None,
    }));
    let object = format!("replace view {name}");
    super::dependencies::guard_views(session, &mut writes, false, &object).await?;
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done("CREATE VIEW", None, outcome))
}

/// Plan a new view's query as every use of it will be planned (so a broken
/// view is refused at creation) and check its columns: names from the
/// column list, else PostgreSQL's, each once (42701). Returns them, with
/// their types.
async fn check_view_columns(
    session: &Session,
    name: &str,
    view: &CreateView,
) -> Result<Vec<(String, arrow::datatypes::DataType)>> {
    let mut query = view.query.as_ref().clone();
    if let Some(names) = super::output_names::select_list_names(&query) {
        refuse_repeated_names(name, &names, &view.columns)?;
    }
    super::output_names::name_view(&mut query);
    let plan = session.plan(Statement::Query(Box::new(query))).await?;
    let mut columns = super::output_names::public_columns(plan.schema());
    if view.columns.len() > columns.len() {
        return Err(Error::Syntax {
            message: format!(
                "CREATE VIEW {name} specifies {} column names but its query has {} columns",
                view.columns.len(),
                columns.len()
            ),
        });
    }
    let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    refuse_repeated_names(name, &names, &view.columns)?;
    for (slot, column) in columns.iter_mut().zip(&view.columns) {
        slot.0 = normalize_ident(&column.name);
    }
    Ok(columns)
}

/// `CREATE OR REPLACE VIEW` keeps the view's columns, in order, with their
/// names and types; it may add columns after them (42P16 otherwise).
fn check_replacement(
    name: &str,
    old: &[(String, arrow::datatypes::DataType)],
    new: &[(String, arrow::datatypes::DataType)],
) -> Result<()> {
    let refuse = |message: String| Err(Error::InvalidTableDefinition { message });
    if new.len() < old.len() {
        return refuse(format!("cannot drop columns from view \"{name}\""));
    }
    for ((old_name, old_type), (new_name, new_type)) in old.iter().zip(new) {
        if old_name != new_name {
            return refuse(format!(
                "cannot change name of view column \"{old_name}\" to \"{new_name}\""
            ));
        }
        if old_type != new_type {
            return refuse(format!(
                "cannot change data type of view column \"{old_name}\" from {old_type} to {new_type}"
            ));
        }
    }
    Ok(())
}

/// A view's column names, `names` renamed by its column list, must differ (42701).
fn refuse_repeated_names(
    name: &str,
    names: &[String],
    columns: &[ast::ViewColumnDef],
) -> Result<()> {
    let mut names = names.to_vec();
    for (slot, column) in names.iter_mut().zip(columns) {
        *slot = normalize_ident(&column.name);
    }
    for (i, column) in names.iter().enumerate() {
        if names[..i].contains(column) {
            return Err(Error::ColumnExists {
                table: name.to_string(),
                column: column.clone(),
            });
        }
    }
    Ok(())
}

/// Primary keys for an insert batch of `def` (empty without a primary key).
pub(crate) fn keys_of(def: &TableDef, batch: &RecordBatch) -> Result<crate::txn::KeyColumn> {
    primary_keys(def, batch)
}
