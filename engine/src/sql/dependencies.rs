//! What depends on what: views on the tables, views and columns they read,
//! column defaults on the sequences they draw from.
//!
//! A view is stored as its SQL and planned on every use, so DriftDB keeps
//! no dependency list that could go stale. Instead, before a statement that
//! drops or reshapes a table or view commits, [`guard_views`] plans the
//! views that could be affected (those naming a changed object, directly or
//! through other views) against the catalog as the statement would leave
//! it. A view that no longer plans, or whose columns would change (names or
//! types: `SELECT *` over a dropped column), depends on the change: the
//! statement is refused with 2BP01 naming the view, or with `CASCADE` the
//! view is dropped too (and the views on it, in turn).
//!
//! Deviations from PostgreSQL, by design: renaming a column a view reads is
//! refused (PostgreSQL rewrites the view; DriftDB keeps the view's SQL as
//! written), and a `SELECT *` view shows columns added to its table later
//! (PostgreSQL expands the `*` once, at creation).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::DataType;

use super::Session;
use crate::catalog::Catalog;
use crate::db::{apply_catalog_op, schema_op};
use crate::error::{Error, Result};
use crate::txn::{Write, WriteSet};

/// A view's output columns: names and types.
type Columns = Vec<(String, DataType)>;

/// Refuse `writes` if they would break or reshape a view (2BP01); with
/// `cascade`, drop such views too. `object` names what the statement
/// changes, with the action (`drop table t`).
pub(crate) async fn guard_views(
    session: &Session,
    writes: &mut WriteSet,
    cascade: bool,
    object: &str,
) -> Result<()> {
    if !writes.writes.iter().any(reshapes) {
        return Ok(());
    }
    let seq = session.statement_seq();
    let current = session.catalog_now();
    let mut before: HashMap<String, Option<Columns>> = HashMap::new();
    loop {
        let after = Arc::new(catalog_after(&current, writes, seq)?);
        let mut broken = Vec::new();
        for name in candidates(&current, &after, writes, seq) {
            if !before.contains_key(&name) {
                let columns = session.view_columns(&name, None).await.ok();
                before.insert(name.clone(), columns);
            }
            // A view that was already broken is not this statement's doing.
            let Some(Some(was)) = before.get(&name) else {
                continue;
            };
            let now = session.view_columns(&name, Some(after.clone())).await;
            // Gaining trailing columns (`SELECT *` over an added column) breaks no reader.
            if !now.is_ok_and(|now| now.starts_with(was)) {
                broken.push(name);
            }
        }
        let Some(first) = broken.first() else {
            return Ok(());
        };
        if !cascade {
            let hint = match object.starts_with("drop ") {
                true => " (use CASCADE to drop it too)",
                false => "",
            };
            return Err(Error::DependentObjects {
                object: object.to_string(),
                detail: format!("view {first} depends on it{hint}"),
            });
        }
        for name in broken {
            writes.push(Write::DropView { name });
        }
    }
}

/// Whether `write` can change what an existing view reads.
fn reshapes(write: &Write) -> bool {
    matches!(
        write,
        Write::DropTable { .. }
            | Write::DropView { .. }
            | Write::SetColumns { .. }
            | Write::RenameTable { .. }
    )
}

/// The catalog as `writes` would leave it at `seq`.
fn catalog_after(current: &Catalog, writes: &WriteSet, seq: u64) -> Result<Catalog> {
    let mut after = current.clone();
    for write in &writes.writes {
        if let Some(op) = schema_op(write.clone(), seq) {
            apply_catalog_op(&mut after, &op, seq)?;
        }
    }
    Ok(after)
}

/// Views live before and after `writes` (not ones they create or replace)
/// that name a changed table or view, directly or through another view.
fn candidates(current: &Catalog, after: &Catalog, writes: &WriteSet, seq: u64) -> Vec<String> {
    let mut changed: HashSet<String> = HashSet::new();
    for write in &writes.writes {
        match write {
            Write::DropTable { table_id }
            | Write::SetColumns { table_id, .. }
            | Write::RenameTable { table_id, .. } => {
                if let Some(table) = current.table_by_id(*table_id) {
                    changed.insert(table.name.clone());
                }
            }
            Write::DropView { name } => {
                changed.insert(name.clone());
            }
            Write::CreateView(view) => {
                changed.insert(view.name.clone());
            }
            _ => {}
        }
    }
    let created: HashSet<&str> = writes
        .writes
        .iter()
        .filter_map(|w| match w {
            Write::CreateView(view) => Some(view.name.as_str()),
            _ => None,
        })
        .collect();
    let views: Vec<(String, HashSet<String>)> = current
        .view_names_at(seq)
        .into_iter()
        .filter(|name| after.view_at(name, seq).is_some() && !created.contains(name.as_str()))
        .filter_map(|name| {
            let sql = &current.view_at(&name, seq)?.sql;
            let named = super::parser::identifiers_in(sql).into_iter().collect();
            Some((name, named))
        })
        .collect();
    let mut affected: Vec<String> = Vec::new();
    let mut grew = true;
    while grew {
        grew = false;
        for (name, named) in &views {
            if !affected.contains(name) && named.iter().any(|n| changed.contains(n)) {
                affected.push(name.clone());
                changed.insert(name.clone());
                grew = true;
            }
        }
    }
    affected
}

/// Refuse to drop sequences `dropped` while a column default draws from
/// one (2BP01); with `cascade`, those defaults are dropped instead.
pub(crate) fn guard_sequences(
    session: &Session,
    writes: &mut WriteSet,
    dropped: &[String],
    cascade: bool,
) -> Result<()> {
    let seq = session.statement_seq();
    let catalog = session.catalog_now();
    let dropped_tables = writes.dropped_tables();
    for table in catalog.tables.iter().filter(|t| t.exists_at(seq)) {
        if dropped_tables.contains(&table.id) {
            continue;
        }
        let mut columns = table.columns().to_vec();
        let mut changed = false;
        for column in &mut columns {
            let Some(default) = &column.default else {
                continue;
            };
            let Some(sequence) = crate::sequences::sequences_named_by(default)
                .into_iter()
                .find(|s| dropped.contains(s))
            else {
                continue;
            };
            if !cascade {
                return Err(Error::DependentObjects {
                    object: format!("drop sequence {sequence}"),
                    detail: format!(
                        "default value for column {} of table {} depends on it",
                        column.name, table.name
                    ),
                });
            }
            column.default = None;
            column.identity = None;
            changed = true;
        }
        if changed {
            writes.push(Write::SetColumns {
                table_id: table.id,
                columns,
                next_column_id: table.next_column_id,
            });
        }
    }
    Ok(())
}
