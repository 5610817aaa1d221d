//! The index of a key over one integer column: key → live `_rowid`.
//!
//! Single rows go into a hash map. A bulk insert becomes a sorted run
//! instead: the batch's own values buffer when its keys already ascend (ids
//! from a sequence, a load in key order), else the keys sorted once with
//! their row positions. Checking a run against the index is a range test
//! per run and a merge where ranges overlap, so loading a million ascending
//! ids allocates nothing and probes nothing per row. Runs are merged,
//! dropping removed keys, whenever the newest is at least half the size of
//! the one before it, so there are O(log n) of them.

use std::collections::HashMap;

use arrow::buffer::ScalarBuffer;

use super::keys::KeyHash;

/// Inserts of at least this many keys become a sorted run; fewer go to the hash map.
const SORTED_RUN_MIN_KEYS: usize = 4096;

/// Key → live `_rowid` for a key over one integer column.
#[derive(Debug, Clone, Default)]
pub struct IntKeyIndex {
    points: HashMap<i64, u64, KeyHash>,
    /// Oldest first.
    runs: Vec<Run>,
}

/// Keys in strictly ascending order with their rows.
#[derive(Debug, Clone)]
struct Run {
    keys: ScalarBuffer<i64>,
    rowids: RunRowids,
    /// Positions whose key was removed; allocated on the first removal.
    removed: Option<Vec<bool>>,
    live: usize,
}

#[derive(Debug, Clone)]
enum RunRowids {
    /// Key `i` is held by `_rowid` `first + i`.
    Consecutive(u64),
    /// Key `i` is held by `_rowid` `first + rows[i]` (a sorted batch).
    Permuted { first: u64, rows: ScalarBuffer<u32> },
    /// Key `i` is held by `_rowid` `rowids[i]`.
    Listed(ScalarBuffer<u64>),
}

impl Run {
    fn rowid(&self, at: usize) -> u64 {
        match &self.rowids {
            RunRowids::Consecutive(first) => first + at as u64,
            RunRowids::Permuted { first, rows } => first + u64::from(rows[at]),
            RunRowids::Listed(rowids) => rowids[at],
        }
    }

    fn is_live(&self, at: usize) -> bool {
        self.removed.as_ref().is_none_or(|r| !r[at])
    }

    /// Position of `key` when it is live here.
    fn find(&self, key: i64) -> Option<usize> {
        let at = self.keys.binary_search(&key).ok()?;
        self.is_live(at).then_some(at)
    }

    fn remove_at(&mut self, at: usize) {
        let len = self.keys.len();
        self.removed.get_or_insert_with(|| vec![false; len])[at] = true;
        self.live -= 1;
    }

    fn first_key(&self) -> i64 {
        self.keys[0]
    }

    fn last_key(&self) -> i64 {
        self.keys[self.keys.len() - 1]
    }

    /// The live keys of both runs in one run.
    fn merge(older: &Run, newer: &Run) -> Run {
        let total = older.live + newer.live;
        let (mut keys, mut rowids) = (Vec::with_capacity(total), Vec::with_capacity(total));
        let (mut a, mut b) = (0, 0);
        while a < older.keys.len() || b < newer.keys.len() {
            let take_older =
                b == newer.keys.len() || (a < older.keys.len() && older.keys[a] < newer.keys[b]);
            let (run, at) = if take_older {
                a += 1;
                (older, a - 1)
            } else {
                b += 1;
                (newer, b - 1)
            };
            if run.is_live(at) {
                keys.push(run.keys[at]);
                rowids.push(run.rowid(at));
            }
        }
        Run {
            live: keys.len(),
            keys: keys.into(),
            rowids: RunRowids::Listed(rowids.into()),
            removed: None,
        }
    }
}

impl IntKeyIndex {
    pub fn len(&self) -> usize {
        self.points.len() + self.runs.iter().map(|r| r.live).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live row holding `key`.
    pub fn get(&self, key: i64) -> Option<u64> {
        if let Some(rowid) = self.points.get(&key) {
            return Some(*rowid);
        }
        self.runs
            .iter()
            .rev()
            .find_map(|run| run.find(key).map(|at| run.rowid(at)))
    }

    /// Let `rowid` hold `key` unless a row already does; false when taken.
    pub fn try_insert(&mut self, key: i64, rowid: u64) -> bool {
        if self.get(key).is_some() {
            return false;
        }
        self.points.insert(key, rowid);
        true
    }

    /// Let `rowid` hold `key`, whoever held it before.
    pub fn insert(&mut self, key: i64, rowid: u64) {
        self.remove(key);
        self.points.insert(key, rowid);
    }

    /// Forget `key`; returns the row that held it.
    pub fn remove(&mut self, key: i64) -> Option<u64> {
        if let Some(rowid) = self.points.remove(&key) {
            return Some(rowid);
        }
        self.runs.iter_mut().rev().find_map(|run| {
            let at = run.find(key)?;
            run.remove_at(at);
            Some(run.rowid(at))
        })
    }

    /// Index `keys[i]` (None: a NULL, holds nothing) as held by
    /// `first_rowid + i`. Returns how many leading rows were indexed and
    /// the first row whose key is taken; a bulk insert indexes all or none.
    pub fn insert_all(
        &mut self,
        keys: &ScalarBuffer<i64>,
        valid: impl Fn(usize) -> bool,
        first_rowid: u64,
    ) -> (usize, Option<usize>) {
        // Row positions in a run are u32; a larger batch goes row by row.
        if keys.len() < SORTED_RUN_MIN_KEYS || u32::try_from(keys.len()).is_err() {
            return self.insert_each(keys, valid, first_rowid);
        }
        let run = sorted_run(keys, &valid, first_rowid);
        let run = match run {
            Ok(run) => run,
            Err(row) => return (0, Some(row)),
        };
        // Every key NULL: nothing to hold.
        if run.keys.is_empty() {
            return (keys.len(), None);
        }
        if let Some(at) = self.first_taken(&run) {
            return (0, Some((run.rowid(at) - first_rowid) as usize));
        }
        self.runs.push(run);
        self.compact();
        (keys.len(), None)
    }

    fn insert_each(
        &mut self,
        keys: &ScalarBuffer<i64>,
        valid: impl Fn(usize) -> bool,
        first_rowid: u64,
    ) -> (usize, Option<usize>) {
        self.points.reserve(keys.len());
        for (row, key) in keys.iter().enumerate() {
            if valid(row) && !self.try_insert(*key, first_rowid + row as u64) {
                return (row, Some(row));
            }
        }
        (keys.len(), None)
    }

    /// The first position of `run` whose key the index already holds.
    fn first_taken(&self, run: &Run) -> Option<usize> {
        let mut taken: Option<usize> = None;
        let mut note = |at: usize| taken = Some(taken.map_or(at, |t| t.min(at)));
        if self.points.len() < run.keys.len() {
            for key in self.points.keys() {
                if let Some(at) = run.find(*key) {
                    note(at);
                }
            }
        } else {
            for at in 0..run.keys.len() {
                if self.points.contains_key(&run.keys[at]) {
                    note(at);
                }
            }
        }
        for old in &self.runs {
            if let Some(at) = first_shared(old, run) {
                note(at);
            }
        }
        taken
    }

    /// Merge the newest runs while the newest is at least half the size of the one before.
    fn compact(&mut self) {
        while let [.., older, newer] = self.runs.as_slice() {
            if older.live > 2 * newer.live {
                break;
            }
            let merged = Run::merge(older, newer);
            self.runs.truncate(self.runs.len() - 2);
            if merged.live > 0 {
                self.runs.push(merged);
            }
        }
    }
}

/// The rows of `keys` as one sorted run, or the row of a key that occurs twice.
fn sorted_run(
    keys: &ScalarBuffer<i64>,
    valid: &dyn Fn(usize) -> bool,
    first_rowid: u64,
) -> Result<Run, usize> {
    let all_valid = (0..keys.len()).all(valid);
    if all_valid && keys.windows(2).all(|w| w[0] < w[1]) {
        return Ok(Run {
            keys: keys.clone(),
            rowids: RunRowids::Consecutive(first_rowid),
            removed: None,
            live: keys.len(),
        });
    }
    // Row positions in key order. A stable sort finds the ascending stretches
    // a batch is usually made of (partitions of one ordered source) and merges them.
    let mut order: Vec<u32> = (0..keys.len() as u32)
        .filter(|row| valid(*row as usize))
        .collect();
    order.sort_by_key(|row| keys[*row as usize]);
    let sorted: Vec<i64> = order.iter().map(|row| keys[*row as usize]).collect();
    if let Some(at) = sorted.windows(2).position(|w| w[0] == w[1]) {
        return Err(order[at].max(order[at + 1]) as usize);
    }
    Ok(Run {
        live: sorted.len(),
        keys: sorted.into(),
        rowids: RunRowids::Permuted {
            first: first_rowid,
            rows: order.into(),
        },
        removed: None,
    })
}

/// The first position of `new` whose key is live in `old`.
fn first_shared(old: &Run, new: &Run) -> Option<usize> {
    if old.live == 0 || old.last_key() < new.first_key() || new.last_key() < old.first_key() {
        return None;
    }
    let (mut a, mut b) = (0, 0);
    while a < old.keys.len() && b < new.keys.len() {
        match old.keys[a].cmp(&new.keys[b]) {
            std::cmp::Ordering::Less => a += 1,
            std::cmp::Ordering::Greater => b += 1,
            std::cmp::Ordering::Equal if old.is_live(a) => return Some(b),
            std::cmp::Ordering::Equal => (a, b) = (a + 1, b + 1),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(keys: &[i64]) -> ScalarBuffer<i64> {
        keys.to_vec().into()
    }

    fn ascending(from: i64, count: usize) -> ScalarBuffer<i64> {
        (from..from + count as i64).collect::<Vec<_>>().into()
    }

    #[test]
    fn an_ascending_bulk_insert_is_one_run_and_answers_lookups() {
        let mut index = IntKeyIndex::default();
        let keys = ascending(1, 10_000);
        assert_eq!(index.insert_all(&keys, |_| true, 100), (10_000, None));
        assert_eq!(index.runs.len(), 1);
        assert!(matches!(index.runs[0].rowids, RunRowids::Consecutive(100)));
        assert_eq!(index.get(1), Some(100));
        assert_eq!(index.get(10_000), Some(10_099));
        assert_eq!(index.get(10_001), None);
        assert_eq!(index.len(), 10_000);
    }

    #[test]
    fn unsorted_bulk_inserts_keep_each_key_with_its_row() {
        let mut index = IntKeyIndex::default();
        let keys: Vec<i64> = (0..5_000).map(|i| (i * 7919) % 5_003).collect();
        let (count, dup) = index.insert_all(&buffer(&keys), |row| row != 3, 0);
        assert_eq!((count, dup), (5_000, None));
        for (row, key) in keys.iter().enumerate() {
            let expected = (row != 3).then_some(row as u64);
            assert_eq!(index.get(*key), expected, "key {key}");
        }
    }

    #[test]
    fn a_bulk_insert_of_null_keys_holds_nothing() {
        let mut index = IntKeyIndex::default();
        let earlier = ascending(100_000, 5_000);
        assert_eq!(index.insert_all(&earlier, |_| true, 0), (5_000, None));
        let nulls = ascending(0, 5_000);
        assert_eq!(index.insert_all(&nulls, |_| false, 10_000), (5_000, None));
        assert_eq!(index.len(), 5_000);
        assert_eq!(
            index.insert_all(&nulls, |row| row == 2, 10_000),
            (5_000, None)
        );
        assert_eq!(index.get(2), Some(10_002));
        assert_eq!(index.len(), 5_001);
    }

    #[test]
    fn duplicates_inside_a_bulk_insert_or_against_the_index_index_nothing() {
        let mut index = IntKeyIndex::default();
        let mut keys: Vec<i64> = (0..5_000).collect();
        keys[4_000] = 17;
        assert_eq!(
            index.insert_all(&buffer(&keys), |_| true, 0),
            (0, Some(4_000))
        );
        assert!(index.is_empty());
        assert!(index.try_insert(4_321, 9));
        assert_eq!(
            index.insert_all(&ascending(0, 5_000), |_| true, 10),
            (0, Some(4_321))
        );
        assert_eq!(
            index.insert_all(&ascending(5_000, 5_000), |_| true, 10),
            (5_000, None)
        );
        assert_eq!(
            index.insert_all(&ascending(9_999, 5_000), |_| true, 0).1,
            Some(0)
        );
        assert_eq!(index.len(), 5_001);
    }

    #[test]
    fn removed_keys_are_free_again_and_runs_merge_without_them() {
        let mut index = IntKeyIndex::default();
        for batch in 0..5 {
            let keys = ascending(batch * 10_000, 10_000);
            let first = batch as u64 * 10_000;
            assert_eq!(index.insert_all(&keys, |_| true, first), (10_000, None));
        }
        assert!(index.runs.len() < 5, "equal-sized runs merge");
        assert_eq!(index.remove(12_345), Some(12_345));
        assert_eq!(index.get(12_345), None);
        assert!(index.try_insert(12_345, 7));
        assert_eq!(index.get(12_345), Some(7));
        assert_eq!(index.remove(12_345), Some(7));
        for key in 0..4_096 {
            index.remove(key);
        }
        let again = ascending(0, 4_096);
        assert_eq!(index.insert_all(&again, |_| true, 90_000), (4_096, None));
        assert_eq!(index.get(0), Some(90_000));
        assert_eq!(index.get(4_096), Some(4_096));
        assert_eq!(index.len(), 50_000 - 1);
    }
}
