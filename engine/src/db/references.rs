//! What the SQL layer asks while it applies FOREIGN KEY rules to a
//! statement: who references a table, and which keys rows hold — as the
//! statement sees them (its transaction's own rows and schema included).

use arrow::array::AsArray;
use arrow::datatypes::UInt64Type;

use super::Database;
use crate::catalog::{ForeignKeyDef, TableDef};
use crate::error::Result;
use crate::txn::{Key, PROVISIONAL_ROWID_BASE, PkKey, TxnView};

impl Database {
    /// Whether any table live at `seq` has a FOREIGN KEY (the common fast path: none).
    pub(crate) fn any_foreign_keys_in(&self, seq: u64, view: Option<&TxnView>) -> bool {
        self.with_catalog(seq, view, |c| {
            c.tables
                .iter()
                .any(|t| !t.foreign_keys.is_empty() && t.exists_at(seq))
        })
    }

    /// Every (table, FOREIGN KEY) referencing table `parent` at `seq`.
    pub(crate) fn referencing_in(
        &self,
        parent: u64,
        seq: u64,
        view: Option<&TxnView>,
    ) -> Vec<(TableDef, ForeignKeyDef)> {
        self.with_catalog(seq, view, |c| {
            c.referencing(parent, seq)
                .into_iter()
                .map(|(t, fk)| (t.clone(), fk.clone()))
                .collect()
        })
    }

    /// Table `id` as a statement at `seq` sees it.
    pub(crate) fn table_by_id_in(
        &self,
        id: u64,
        seq: u64,
        view: Option<&TxnView>,
    ) -> Option<TableDef> {
        self.with_catalog(seq, view, |c| {
            c.table_by_id(id).filter(|t| t.exists_at(seq)).cloned()
        })
    }

    /// The key of each row `rowids` of `def` under its UNIQUE constraint `c`
    /// (None for a key with a NULL): committed rows from the index, the
    /// transaction's own rows from its overlay.
    pub(crate) fn unique_keys_of_rows_in(
        &self,
        def: &TableDef,
        c: usize,
        rowids: &[u64],
        view: Option<&TxnView>,
    ) -> Result<Vec<Option<PkKey>>> {
        let mut keys: Vec<Option<PkKey>> = {
            let state = self.inner.state.read();
            let index = state.unique_index.get(&def.id);
            rowids
                .iter()
                .map(|r| index.and_then(|i| i.key_of(c, *r)))
                .collect()
        };
        if rowids.iter().any(|r| *r >= PROVISIONAL_ROWID_BASE)
            && let Some(own) = view.and_then(|v| v.own(def.id))
        {
            let wanted: std::collections::HashMap<u64, usize> = rowids
                .iter()
                .enumerate()
                .filter(|(_, r)| **r >= PROVISIONAL_ROWID_BASE)
                .map(|(i, r)| (*r, i))
                .collect();
            for mem in &own.rows {
                let batch_keys = crate::constraints::unique_keys(def, &mem.batch)?;
                let ids = mem
                    .batch
                    .column_by_name(crate::catalog::ROWID_COLUMN)
                    .and_then(|a| a.as_primitive_opt::<UInt64Type>().cloned());
                let Some(ids) = ids else { continue };
                for (row, rowid) in ids.values().iter().enumerate() {
                    if let Some(at) = wanted.get(rowid) {
                        keys[*at] = batch_keys[c].encoded(row);
                    }
                }
            }
        }
        Ok(keys)
    }

    /// Whether each key (encoded as `def`'s UNIQUE constraint `c` encodes
    /// it) is held by a row live for the statement: a committed row the
    /// transaction did not retire, or one of the transaction's own rows.
    pub(crate) fn unique_keys_held_in(
        &self,
        def: &TableDef,
        c: usize,
        keys: &[&[u8]],
        view: Option<&TxnView>,
    ) -> Result<Vec<bool>> {
        let own = view.and_then(|v| v.own(def.id));
        let mut held: Vec<bool> = {
            let state = self.inner.state.read();
            let index = state.unique_index.get(&def.id).and_then(|u| u.keys.get(c));
            keys.iter()
                .map(|k| {
                    index
                        .and_then(|i| i.get(Key::Encoded(k)))
                        .is_some_and(|r| own.is_none_or(|o| !o.retired.contains(&r)))
                })
                .collect()
        };
        let Some(own) = own else {
            return Ok(held);
        };
        let mut own_keys = std::collections::HashSet::new();
        for mem in &own.rows {
            let ids = mem
                .batch
                .column_by_name(crate::catalog::ROWID_COLUMN)
                .and_then(|a| a.as_primitive_opt::<UInt64Type>().cloned());
            let column = &crate::constraints::unique_keys(def, &mem.batch)?[c];
            for row in 0..column.len() {
                let live = ids
                    .as_ref()
                    .is_some_and(|ids| !own.retired.contains(&ids.value(row)));
                if let (true, Some(key)) = (live, column.encoded(row)) {
                    own_keys.insert(key);
                }
            }
        }
        for (h, key) in held.iter_mut().zip(keys) {
            *h |= own_keys.contains(*key);
        }
        Ok(held)
    }
}
