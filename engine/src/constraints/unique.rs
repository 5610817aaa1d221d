//! The index behind a table's UNIQUE constraints: per constraint, key →
//! live `_rowid`, and the keys of every indexed row, so retiring a row
//! frees them. Keys with a NULL are never indexed (NULLs are distinct).
//!
//! Rows are indexed a run at a time (an insert's rows have consecutive
//! `_rowid`s), and each run keeps its [`KeyColumn`]s as they were computed:
//! no per-row bookkeeping beyond one "removed" flag.

use std::collections::BTreeMap;

use super::keys::{KeyColumn, KeyIndex, PkKey};
use crate::catalog::TableDef;

/// The UNIQUE index of one table at the latest commit.
#[derive(Debug, Clone, Default)]
pub struct UniqueIndex {
    /// One map per constraint, in `TableDef::uniques` order.
    pub keys: Vec<KeyIndex>,
    /// Runs of indexed rows by their first `_rowid`.
    runs: BTreeMap<u64, Run>,
}

/// Consecutive rows and their keys under each constraint.
#[derive(Debug, Clone)]
pub struct Run {
    keys: Vec<KeyColumn>,
    removed: Vec<bool>,
    live: usize,
}

/// What [`UniqueIndex::remove_row`] did, so it can be taken back.
#[derive(Debug)]
pub struct RemovedRow {
    rowid: u64,
    /// The run, when this was its last live row (it is dropped with it).
    dropped: Option<(u64, Run)>,
}

impl UniqueIndex {
    /// An empty index for `def`'s UNIQUE constraints.
    pub fn new(def: &TableDef) -> Self {
        let keys = def
            .uniques
            .iter()
            .map(|u| {
                let types: Vec<_> = def
                    .unique_columns(u)
                    .iter()
                    .map(|c| c.sql_type.arrow_type())
                    .collect();
                KeyIndex::for_types(&types)
            })
            .collect();
        Self {
            keys,
            runs: BTreeMap::new(),
        }
    }

    /// The live row holding row `row` of `keys` under constraint `constraint`.
    pub fn holder(&self, constraint: usize, keys: &KeyColumn, row: usize) -> Option<u64> {
        self.keys.get(constraint)?.get(keys.get(row)?)
    }

    /// Row `rowid`'s key under constraint `constraint` in the row format;
    /// None when the row is not indexed or its key has a NULL.
    pub fn key_of(&self, constraint: usize, rowid: u64) -> Option<PkKey> {
        let (first, run) = self.runs.range(..=rowid).next_back()?;
        let at = usize::try_from(rowid - first).ok()?;
        if at >= run.removed.len() {
            return None;
        }
        run.keys.get(constraint)?.encoded(at)
    }

    /// Index rows `first_rowid..` with `keys` (one column per constraint).
    /// On a key some row already holds, returns its row and constraint;
    /// the run is recorded either way, so [`Self::remove_run`] takes it back.
    pub fn insert_rows(
        &mut self,
        first_rowid: u64,
        keys: Vec<KeyColumn>,
    ) -> Option<(usize, usize)> {
        let rows = keys.first().map_or(0, KeyColumn::len);
        let duplicate =
            self.keys
                .iter_mut()
                .zip(&keys)
                .enumerate()
                .find_map(|(c, (index, column))| {
                    let (_, duplicate) = index.insert_column(column, first_rowid);
                    duplicate.map(|row| (row, c))
                });
        self.runs.insert(
            first_rowid,
            Run {
                keys,
                removed: vec![false; rows],
                live: rows,
            },
        );
        duplicate
    }

    /// Forget every key of the run starting at `first_rowid` (undoing [`Self::insert_rows`]).
    pub fn remove_run(&mut self, first_rowid: u64) {
        let Some(run) = self.runs.remove(&first_rowid) else {
            return;
        };
        for (index, column) in self.keys.iter_mut().zip(&run.keys) {
            for (row, key) in column.iter().enumerate() {
                if let Some(key) = key {
                    index.remove_if_held_by(key, first_rowid + row as u64);
                }
            }
        }
    }

    /// Forget a retired row's keys; None when it is not indexed.
    pub fn remove_row(&mut self, rowid: u64) -> Option<RemovedRow> {
        let (first, run) = run_of(&mut self.runs, rowid)?;
        let at = (rowid - first) as usize;
        if run.removed[at] {
            return None;
        }
        run.removed[at] = true;
        run.live -= 1;
        let last = run.live == 0;
        for (index, column) in self.keys.iter_mut().zip(&run.keys) {
            if let Some(key) = column.get(at) {
                index.remove_if_held_by(key, rowid);
            }
        }
        let dropped = last.then(|| (first, self.runs.remove(&first).expect("run just found")));
        Some(RemovedRow { rowid, dropped })
    }

    /// Take a [`Self::remove_row`] back.
    pub fn restore_row(&mut self, removed: RemovedRow) {
        if let Some((first, run)) = removed.dropped {
            self.runs.insert(first, run);
        }
        let rowid = removed.rowid;
        let Some((first, run)) = run_of(&mut self.runs, rowid) else {
            return;
        };
        let at = (rowid - first) as usize;
        run.removed[at] = false;
        run.live += 1;
        for (index, column) in self.keys.iter_mut().zip(&run.keys) {
            if let Some(key) = column.get(at) {
                index.insert(key, rowid);
            }
        }
    }

    /// Keep only the constraints at positions `keep` (after DROP CONSTRAINT).
    pub fn retain_constraints(&mut self, keep: &[usize]) {
        self.keys = keep.iter().map(|i| self.keys[*i].clone()).collect();
        for run in self.runs.values_mut() {
            run.keys = keep.iter().map(|i| run.keys[*i].clone()).collect();
        }
    }
}

/// The run of `runs` holding `rowid`, and its first rowid.
fn run_of(runs: &mut BTreeMap<u64, Run>, rowid: u64) -> Option<(u64, &mut Run)> {
    let (first, run) = runs.range_mut(..=rowid).next_back()?;
    let at = rowid - *first;
    (at < run.removed.len() as u64).then_some((*first, run))
}
