//! `CREATE INDEX` and `DROP INDEX`.
//!
//! A UNIQUE index is a UNIQUE constraint under the index's name: enforced,
//! and used for key lookups as any UNIQUE constraint is. Any other index is
//! kept in the catalog (its name taken in the namespace tables, views,
//! sequences and indexes share; dropped with its table or with a column it
//! covers) and not built: DriftDB reads by primary key, UNIQUE indexes and
//! Parquet statistics (see ARCHITECTURE.md). Partial indexes, indexes on
//! expressions and `NULLS NOT DISTINCT` are refused (0A000).

use sqlparser::ast::{self, CreateIndex, ObjectName};

use super::ddl::{normalize_ident, table_name, unique_build, unique_defs, uniques_as_specs};
use super::session::{Session, StatementResult};
use crate::catalog::{ColumnDef, IndexDef, TableDef};
use crate::error::{Error, Result};
use crate::txn::{Write, WriteSet};

/// Longest identifier PostgreSQL keeps (NAMEDATALEN - 1), in bytes; a
/// generated index name is cut to it.
const GENERATED_NAME_BYTES_MAX: usize = 63;

pub(crate) async fn create_index(session: &Session, index: CreateIndex) -> Result<StatementResult> {
    let table = table_name(&index.table_name)?;
    let def = session
        .table_snapshot(&table)
        .map(|t| t.def.as_ref().clone())
        .ok_or_else(|| Error::UnknownTable {
            name: table.clone(),
            context: String::new(),
        })?;
    refuse_unsupported(&index)?;
    let columns = def.columns();
    let names = column_names(&index.columns, &table, columns)?;
    let name = match &index.name {
        Some(name) => table_name(name)?,
        None => generated_name(session, &table, &names),
    };
    if name_taken(session, &name) {
        if index.if_not_exists {
            return Ok(StatementResult::done("CREATE INDEX", None, None));
        }
        return Err(Error::TableExists { name });
    }
    let mut writes = WriteSet::new("CREATE INDEX");
    let ids = names
        .iter()
        .filter_map(|n| columns.iter().find(|c| &c.name == n).map(|c| c.id))
        .collect();
    let mut indexes = def.indexes.clone();
    indexes.push(IndexDef {
        name: name.clone(),
        columns: ids,
        unique: index.unique,
    });
    writes.push(Write::SetIndexes {
        table_id: def.id,
        indexes,
    });
    if index.unique {
        let mut specs = uniques_as_specs(columns, &def.uniques);
        specs.push((Some(name), names));
        let uniques = unique_defs(&table, columns, specs, &def.checks)?;
        let mut altered = def.clone();
        altered.uniques = uniques.clone();
        let build = unique_build(session, &altered, &def, &uniques).await?;
        writes.push(Write::SetUniques {
            table_id: def.id,
            uniques,
            build,
        });
    }
    let outcome = session.commit(writes).await?;
    Ok(StatementResult::done("CREATE INDEX", None, outcome))
}

fn refuse_unsupported(index: &CreateIndex) -> Result<()> {
    if index.predicate.is_some() {
        return Err(Error::unsupported(
            "a partial index (CREATE INDEX … WHERE): DriftDB builds no secondary indexes, and a \
             partial UNIQUE constraint is not enforced",
        ));
    }
    if index.nulls_distinct == Some(false) {
        return Err(Error::unsupported(
            "UNIQUE NULLS NOT DISTINCT: a key with a NULL never conflicts",
        ));
    }
    Ok(())
}

/// The indexed columns' names, each an existing column.
fn column_names(
    columns: &[ast::IndexColumn],
    table: &str,
    defs: &[ColumnDef],
) -> Result<Vec<String>> {
    columns
        .iter()
        .map(|c| match &c.column.expr {
            ast::Expr::Identifier(ident) => {
                let name = normalize_ident(ident);
                match defs.iter().any(|d| d.name == name) {
                    true => Ok(name),
                    false => Err(Error::UnknownColumn {
                        table: table.into(),
                        column: name,
                    }),
                }
            }
            other => Err(Error::unsupported(format!(
                "an index on an expression ({other})"
            ))),
        })
        .collect()
}

/// PostgreSQL's name for an unnamed index: `<table>_<col>[_<col>…]_idx`,
/// numbered when taken.
fn generated_name(session: &Session, table: &str, columns: &[String]) -> String {
    let mut base = format!("{table}_{}_idx", columns.join("_"));
    while base.len() > GENERATED_NAME_BYTES_MAX - 3 {
        base.pop();
    }
    std::iter::once(base.clone())
        .chain((1..).map(|n| format!("{base}{n}")))
        .find(|candidate| !name_taken(session, candidate))
        .unwrap_or(base)
}

/// Whether a table, view, sequence or index (a primary key's and a UNIQUE
/// constraint's included) is called `name`.
fn name_taken(session: &Session, name: &str) -> bool {
    session.table_exists(name)
        || session.view_def(name).is_some()
        || session.sequence_def(name).is_some()
        || index_holder(session, name).is_some()
}

/// The live table holding index `name`.
fn index_holder(session: &Session, name: &str) -> Option<TableDef> {
    let seq = session.statement_seq();
    session
        .catalog_now()
        .tables
        .into_iter()
        .filter(|t| t.exists_at(seq))
        .find(|t| {
            t.indexes.iter().any(|i| i.name == name)
                || t.uniques.iter().any(|u| u.name == name)
                || (t.has_primary_key() && t.primary_key_name() == name)
        })
}

/// `DROP INDEX [IF EXISTS] name, …`: the writes that drop them.
pub(crate) async fn drop_indexes(
    session: &Session,
    names: &[ObjectName],
    if_exists: bool,
    writes: &mut WriteSet,
) -> Result<()> {
    for name in names {
        let name = table_name(name)?;
        let Some(def) = index_holder(session, &name) else {
            if if_exists {
                continue;
            }
            return Err(Error::UnknownIndex { name });
        };
        let Some(index) = def.indexes.iter().find(|i| i.name == name) else {
            // The index of a PRIMARY KEY or UNIQUE constraint.
            return Err(Error::DependentObjects {
                object: format!("drop index {name}"),
                detail: format!("constraint {name} on table {} requires it", def.name),
            });
        };
        if index.unique {
            if let Some(unique) = def.uniques.iter().find(|u| u.name == name) {
                super::ddl::refuse_referenced_unique(session, &def, unique)?;
            }
            let uniques: Vec<_> = def
                .uniques
                .iter()
                .filter(|u| u.name != name)
                .cloned()
                .collect();
            let build = unique_build(session, &def, &def, &uniques).await?;
            writes.push(Write::SetUniques {
                table_id: def.id,
                uniques,
                build,
            });
        }
        let indexes = def
            .indexes
            .iter()
            .filter(|i| i.name != name)
            .cloned()
            .collect();
        writes.push(Write::SetIndexes {
            table_id: def.id,
            indexes,
        });
    }
    Ok(())
}

/// `indexes` over `columns` after an `ALTER TABLE`: a column whose type
/// changed is followed to its new id; an index on a dropped column is
/// dropped with it.
pub(crate) fn indexes_over(indexes: &[IndexDef], columns: &[ColumnDef]) -> Vec<IndexDef> {
    indexes
        .iter()
        .filter_map(|index| {
            let ids = index
                .columns
                .iter()
                .map(|id| {
                    columns
                        .iter()
                        .find(|c| c.id == *id || c.converted_from == Some(*id))
                        .map(|c| c.id)
                })
                .collect::<Option<Vec<_>>>()?;
            Some(IndexDef {
                name: index.name.clone(),
                columns: ids,
                unique: index.unique,
            })
        })
        .collect()
}
