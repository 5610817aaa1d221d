//! FOREIGN KEY checks at commit, under the writer lock.
//!
//! The statement that wrote the rows already applied the referential
//! actions against its snapshot (`sql::foreign_keys`). Here, against the
//! latest state:
//! - every row this commit inserts into a referencing table must find its
//!   key held once the commit is applied (latest index, minus keys this
//!   commit frees, plus keys it takes), else 23503;
//! - a key this commit frees in a referenced table is a conflict (40001)
//!   when the referencing table was written after the statement's snapshot:
//!   the statement could not have seen those rows.
//! - adding a FOREIGN KEY (ALTER TABLE or CREATE TABLE) is a conflict when
//!   the table it references was dropped meanwhile, or when either table was
//!   written after the snapshot its existing rows were validated in;
//! - a key freed in a referenced table is also a conflict when a FOREIGN KEY
//!   referencing it was added after the statement's snapshot.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::apply::concurrent_change;
use super::{CommitChecks, DbState};
use crate::catalog::{ForeignKeyDef, KeyRef, TableDef};
use crate::constraints::foreign::{child_keys, keys_taken, missing};
use crate::error::{Error, Result};
use crate::txn::{Key, KeyHash, KeyIndex, PkKey, Write, WriteSet};

/// How one commit changes one key of one table.
#[derive(Default)]
struct KeyDelta {
    added: HashSet<PkKey, KeyHash>,
    removed: HashSet<PkKey, KeyHash>,
}

impl KeyDelta {
    /// Whether `key` is held once the commit is applied.
    fn holds(&self, index: Option<&KeyIndex>, key: Key<'_>) -> bool {
        if self.added.is_empty() && self.removed.is_empty() {
            return index.is_some_and(|i| i.get(key).is_some());
        }
        let encoded = key.to_encoded();
        self.added.contains(&encoded)
            || (index.is_some_and(|i| i.get(key).is_some()) && !self.removed.contains(&encoded))
    }

    /// Whether the commit frees a key without taking it again.
    fn frees_any(&self) -> bool {
        self.removed.iter().any(|k| !self.added.contains(k))
    }
}

/// The table definitions a commit is checked against: its own new ones first.
struct CommitDefs<'a> {
    state: &'a DbState,
    created: HashMap<u64, &'a TableDef>,
    foreign_keys: HashMap<u64, &'a [ForeignKeyDef]>,
}

impl<'a> CommitDefs<'a> {
    fn new(state: &'a DbState, writes: &'a WriteSet) -> Self {
        let mut created = HashMap::new();
        let mut foreign_keys = HashMap::new();
        for write in &writes.writes {
            match write {
                Write::CreateTable(def) => {
                    created.insert(def.id, def);
                }
                Write::SetForeignKeys {
                    table_id,
                    foreign_keys: fks,
                } => {
                    foreign_keys.insert(*table_id, fks.as_slice());
                }
                _ => {}
            }
        }
        Self {
            state,
            created,
            foreign_keys,
        }
    }

    fn table(&self, id: u64) -> Option<&'a TableDef> {
        self.created.get(&id).copied().or_else(|| {
            let def = self.state.catalog.table_by_id(id)?;
            def.exists_at(self.state.last_seq).then_some(def)
        })
    }

    fn foreign_keys(&self, def: &'a TableDef) -> &'a [ForeignKeyDef] {
        self.foreign_keys
            .get(&def.id)
            .copied()
            .unwrap_or(&def.foreign_keys)
    }

    /// Every (child, FOREIGN KEY) referencing table `parent` after the commit.
    fn referencing(&self, parent: u64) -> Vec<(&'a TableDef, &'a ForeignKeyDef)> {
        let live = self
            .state
            .catalog
            .tables
            .iter()
            .filter(|t| t.exists_at(self.state.last_seq));
        live.chain(self.created.values().copied())
            .flat_map(|t| self.foreign_keys(t).iter().map(move |fk| (t, fk)))
            .filter(|(_, fk)| fk.parent == parent)
            .collect()
    }
}

pub(super) fn validate_foreign_keys(
    state: &DbState,
    writes: &WriteSet,
    checks: &CommitChecks,
) -> Result<()> {
    let defs = CommitDefs::new(state, writes);
    let mut deltas: HashMap<(u64, KeyRef), KeyDelta> = HashMap::new();
    validate_added_foreign_keys(state, &defs, writes, checks)?;
    for write in &writes.writes {
        match write {
            Write::Insert {
                table_id, batch, ..
            } => {
                let Some(child) = defs.table(*table_id) else {
                    continue;
                };
                for fk in defs.foreign_keys(child) {
                    let (parent, key) = referenced(&defs, child, fk)?;
                    let delta = cached_delta(&mut deltas, state, writes, parent, key)?;
                    let index = parent_index(state, parent.id, key);
                    let keys = child_keys(child, fk, parent, batch)?;
                    for row in 0..keys.len() {
                        if let Some(k) = keys.key(row)
                            && !delta.holds(index, k)
                        {
                            return Err(missing(child, fk, parent, &keys, row));
                        }
                    }
                }
            }
            Write::Retire { table_id, .. } => {
                for (child, fk) in defs.referencing(*table_id) {
                    // Rows written, or a FOREIGN KEY added, after the statement's
                    // snapshot: its referential actions could not see them.
                    let changed_since = state
                        .table_changes
                        .get(&child.id)
                        .is_some_and(|c| c.data_seq.max(c.schema_seq) > checks.since);
                    if !changed_since {
                        continue;
                    }
                    let Some(parent) = defs.table(*table_id) else {
                        continue;
                    };
                    let (_, key) = referenced(&defs, child, fk)?;
                    let delta = cached_delta(&mut deltas, state, writes, parent, key)?;
                    if delta.frees_any() {
                        return Err(concurrent_change(
                            state,
                            child.id,
                            "rows referencing a removed key may have been written by a concurrent commit",
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A FOREIGN KEY added by this commit had its existing rows validated at
/// `checks.since`: rows written to either table since then were not.
fn validate_added_foreign_keys(
    state: &DbState,
    defs: &CommitDefs<'_>,
    writes: &WriteSet,
    checks: &CommitChecks,
) -> Result<()> {
    for write in &writes.writes {
        if let Write::CreateTable(def) = write {
            for fk in &def.foreign_keys {
                referenced(defs, def, fk)?;
            }
        }
        let Write::SetForeignKeys {
            table_id,
            foreign_keys,
        } = write
        else {
            continue;
        };
        let before = defs
            .table(*table_id)
            .map(|t| t.foreign_keys.as_slice())
            .unwrap_or_default();
        for fk in foreign_keys.iter().filter(|fk| !before.contains(fk)) {
            if let Some(child) = defs.table(*table_id) {
                referenced(defs, child, fk)?;
            }
            for table in [*table_id, fk.parent] {
                let written = state
                    .table_changes
                    .get(&table)
                    .is_some_and(|c| c.data_seq > checks.since);
                if written {
                    return Err(concurrent_change(
                        state,
                        table,
                        "rows were written while a FOREIGN KEY was validated",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The table `fk` references and which of its keys.
fn referenced<'a>(
    defs: &CommitDefs<'a>,
    child: &TableDef,
    fk: &ForeignKeyDef,
) -> Result<(&'a TableDef, KeyRef)> {
    let parent = defs
        .table(fk.parent)
        .ok_or_else(|| Error::SerializationFailure {
            table: child.name.clone(),
            detail: format!(
                "the table foreign key \"{}\" references was dropped by a concurrent commit",
                fk.name
            ),
        })?;
    let key = parent
        .key_named_by(&fk.parent_columns)
        .ok_or_else(|| Error::internal(format!("foreign key {} lost its key", fk.name)))?;
    Ok((parent, key))
}

/// The latest index of `table`'s key `key`.
fn parent_index(state: &DbState, table: u64, key: KeyRef) -> Option<&KeyIndex> {
    match key {
        KeyRef::Primary => state.pk_index.get(&table),
        KeyRef::Unique(c) => state.unique_index.get(&table)?.keys.get(c),
    }
}

/// The delta of `table`'s key `key`, computed once per commit.
fn cached_delta<'d>(
    deltas: &'d mut HashMap<(u64, KeyRef), KeyDelta>,
    state: &DbState,
    writes: &WriteSet,
    table: &TableDef,
    key: KeyRef,
) -> Result<&'d KeyDelta> {
    Ok(match deltas.entry((table.id, key)) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => entry.insert(key_delta(state, writes, table, key)?),
    })
}

/// The keys of `table`'s key `key` this commit takes and frees.
fn key_delta(
    state: &DbState,
    writes: &WriteSet,
    table: &TableDef,
    key: KeyRef,
) -> Result<KeyDelta> {
    let mut delta = KeyDelta {
        added: keys_taken(writes, table, key)?,
        removed: HashSet::default(),
    };
    for write in &writes.writes {
        let Write::Retire {
            table_id,
            rowids,
            keys,
        } = write
        else {
            continue;
        };
        if *table_id != table.id {
            continue;
        }
        match key {
            KeyRef::Primary => {
                delta.removed.extend(keys.encoded_keys());
            }
            KeyRef::Unique(c) => {
                if let Some(index) = state.unique_index.get(table_id) {
                    delta
                        .removed
                        .extend(rowids.iter().filter_map(|r| index.key_of(c, *r)));
                }
            }
        }
    }
    Ok(delta)
}
