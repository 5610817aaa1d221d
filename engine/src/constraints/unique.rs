//! The index behind a table's UNIQUE constraints: per constraint, key →
//! live `_rowid`, and per live row its keys, so retiring a row frees them.
//! Keys with a NULL are never indexed (NULLs are distinct).

use std::collections::HashMap;

use crate::txn::{KeyHash, PkIndex, PkKey};

/// The UNIQUE index of one table at the latest commit.
#[derive(Debug, Clone, Default)]
pub struct UniqueIndex {
    /// One map per constraint, in `TableDef::uniques` order.
    pub keys: Vec<PkIndex>,
    /// Live rowid → its key under each constraint.
    pub rows: HashMap<u64, Vec<Option<PkKey>>, KeyHash>,
}

impl UniqueIndex {
    /// An empty index for `constraints` UNIQUE constraints.
    pub fn new(constraints: usize) -> Self {
        Self {
            keys: vec![PkIndex::default(); constraints],
            rows: HashMap::default(),
        }
    }

    /// The live row holding `key` under constraint `constraint`.
    pub fn holder(&self, constraint: usize, key: &PkKey) -> Option<u64> {
        self.keys.get(constraint)?.get(key).copied()
    }

    /// Make room for `rows` more rows.
    pub fn reserve(&mut self, rows: usize) {
        for index in &mut self.keys {
            index.reserve(rows);
        }
        self.rows.reserve(rows);
    }

    /// Index a new live row.
    pub fn insert_row(&mut self, rowid: u64, keys: Vec<Option<PkKey>>) {
        for (index, key) in self.keys.iter_mut().zip(&keys) {
            if let Some(key) = key {
                index.insert(key.clone(), rowid);
            }
        }
        self.rows.insert(rowid, keys);
    }

    /// Forget a retired row's keys; returns them (None when it had none indexed).
    pub fn remove_row(&mut self, rowid: u64) -> Option<Vec<Option<PkKey>>> {
        let keys = self.rows.remove(&rowid)?;
        for (index, key) in self.keys.iter_mut().zip(&keys) {
            if let Some(key) = key
                && index.get(key) == Some(&rowid)
            {
                index.remove(key);
            }
        }
        Some(keys)
    }

    /// Keep only the constraints at positions `keep` (after DROP CONSTRAINT).
    pub fn retain_constraints(&mut self, keep: &[usize]) {
        self.keys = keep.iter().map(|i| self.keys[*i].clone()).collect();
        for keys in self.rows.values_mut() {
            *keys = keep.iter().map(|i| keys[*i].clone()).collect();
        }
    }
}
