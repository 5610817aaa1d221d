//! Read snapshots: the row versions of one table visible at a `seq`, or in a
//! range of `seq`s (history), and mapping timestamps onto `seq`s.

use std::ops::RangeInclusive;
use std::sync::Arc;

use super::Database;
use crate::catalog::{Catalog, ColumnDef, TableDef, ViewDef};
use crate::error::{Error, Result};
use crate::storage::{DataFile, MemBatch, Retirements, TableData};
use crate::txn::{KeyColumn, TxnView};

/// Versions live at some snapshot in `from_seq..=to_seq` (`from_seq` 0 = all history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRange {
    pub from_seq: u64,
    pub to_seq: u64,
}

/// What a scan of one table at one snapshot needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct TableSnapshot {
    pub def: Arc<TableDef>,
    /// Columns as of `seq` (the output schema).
    pub columns: Vec<ColumnDef>,
    pub seq: u64,
    pub memtable: Vec<MemBatch>,
    pub files: Vec<Arc<DataFile>>,
    /// For each of `files`, the first seq that retired one of its rows.
    pub first_retire: Vec<Option<u64>>,
    /// History-tier files that may hold a version the scan keeps (their
    /// rows carry their retiring seq in `_retired_seq`).
    pub history_files: Vec<Arc<DataFile>>,
    pub retired: Arc<Retirements>,
    /// Live rows at the latest commit (a statistics estimate).
    pub live_rows: u64,
    /// Set for history scans.
    pub history: Option<HistoryRange>,
    /// Rows the reading transaction retired but has not committed (hidden from it).
    pub own_retired: Option<Arc<std::collections::HashSet<u64>>>,
    /// Commit time of every seq (index = seq - 1), for history scans.
    pub commit_times: Arc<Vec<i64>>,
    /// A live tag names `seq`: its versions outlive the horizon.
    pub tagged: bool,
}

impl TableSnapshot {
    /// 22008 if the scan needs versions `VACUUM` removed: a read `AS OF` a
    /// seq before the table's horizon, or a history range starting there.
    pub fn check_horizon(&self) -> Result<()> {
        let horizon = self.def.history.horizon;
        let (first, what) = match self.history {
            Some(range) => (range.from_seq, "its history from version"),
            None => (self.seq, "it as of version"),
        };
        match first >= horizon || self.tagged && self.history.is_none() {
            true => Ok(()),
            false => Err(horizon_error(&self.def.name, horizon, what, first)),
        }
    }

    /// Whether every stored row version the scan reads is visible at `seq`:
    /// an `AS OF` read of data files only (no memtable, no history tier,
    /// no rows of the reading transaction), each written at or before
    /// `seq` with no row retired by then. Such a scan needs no visibility
    /// filter and no system columns (a freshly compacted or loaded table).
    pub fn all_visible(&self) -> bool {
        self.history.is_none()
            && self.memtable.is_empty()
            && self.history_files.is_empty()
            && self.own_retired.as_ref().is_none_or(|o| o.is_empty())
            && self
                .files
                .iter()
                .zip(&self.first_retire)
                .all(|(f, first)| f.max_seq <= self.seq && first.is_none_or(|s| s > self.seq))
    }

    /// The `_rowid` ranges of the files none of whose rows was retired at or
    /// before `seq`, in file (and so rowid) order.
    pub fn unretired_files(&self, seq: u64) -> Vec<RangeInclusive<u64>> {
        self.files
            .iter()
            .zip(&self.first_retire)
            .filter(|(_, first)| first.is_none_or(|s| s > seq))
            .map(|(file, _)| file.min_rowid..=file.max_rowid)
            .collect()
    }
}

impl Database {
    /// The table called `name` as of `seq`, or None if it did not exist then.
    pub fn table_snapshot(&self, name: &str, seq: u64) -> Option<TableSnapshot> {
        self.snapshot_of(name, seq, None, None)
    }

    /// Like [`Self::table_snapshot`], as a transaction sees it through `view`
    /// (its own schema changes and rows; only when `seq` is the view's).
    pub fn table_snapshot_in(
        &self,
        name: &str,
        seq: u64,
        view: Option<&TxnView>,
    ) -> Option<TableSnapshot> {
        self.snapshot_of(name, seq, None, view.filter(|v| v.seq == seq))
    }

    /// The current definition of table `id`.
    pub fn table_def_by_id(&self, id: u64) -> Option<TableDef> {
        self.inner.state.read().catalog.table_by_id(id).cloned()
    }

    /// The definition of table `name` as of `seq` (cheap: no data files).
    pub fn table_def_at(&self, name: &str, seq: u64) -> Option<crate::catalog::TableDef> {
        self.inner.state.read().catalog.table_at(name, seq).cloned()
    }

    /// The current definition of table `id` if it has CHECK constraints
    /// (tables without any are not cloned: this runs on every commit).
    pub fn checked_table_def(&self, id: u64, view: Option<&TxnView>) -> Option<TableDef> {
        let find = |c: &Catalog| c.table_by_id(id).filter(|d| !d.checks.is_empty()).cloned();
        match view.and_then(|v| v.catalog.as_deref()) {
            Some(catalog) => find(catalog),
            None => find(&self.inner.state.read().catalog),
        }
    }

    /// The table as of `seq`, with the files holding a version live at
    /// `seq`, or (for a history scan) at some seq of `history`; everything
    /// read under one lock, so a compaction never shows half done.
    fn snapshot_of(
        &self,
        name: &str,
        seq: u64,
        history: Option<HistoryRange>,
        view: Option<&TxnView>,
    ) -> Option<TableSnapshot> {
        let prune_retired = history.is_none();
        let (from, to) = history.map_or((seq, seq), |r| (r.from_seq, r.to_seq));
        let state = self.inner.state.read();
        let catalog = view
            .and_then(|v| v.catalog.as_deref())
            .unwrap_or(&state.catalog);
        let def = catalog.table_at(name, seq)?;
        let empty = TableData::default();
        let data = state.tables.get(&def.id).unwrap_or(&empty);
        let own = view.and_then(|v| {
            v.note_read(def.id);
            v.own(def.id)
        });
        let mut snapshot = TableSnapshot {
            def: Arc::new(def.clone()),
            columns: def.columns_at(seq).to_vec(),
            seq,
            memtable: data
                .memtable
                .iter()
                .filter(|m| m.min_seq <= seq)
                .cloned()
                .collect(),
            files: Vec::new(),
            first_retire: Vec::new(),
            history_files: Vec::new(),
            retired: data.retired.clone(),
            live_rows: data.live_rows,
            history: None,
            own_retired: None,
            commit_times: Arc::new(Vec::new()),
            tagged: seq < def.history.horizon
                && state
                    .catalog
                    .tagged_versions(self.visible_seq())
                    .contains(&seq),
        };
        for (i, file) in data.files.iter().enumerate() {
            if file.min_seq <= seq && (!prune_retired || data.file_has_live_rows_at(i, seq)) {
                snapshot.files.push(file.clone());
                snapshot
                    .first_retire
                    .push(data.file_retire_seqs[i].first().copied());
            }
        }
        snapshot.history_files = data
            .history
            .iter()
            .filter(|f| f.may_be_live_within(from, to))
            .cloned()
            .collect();
        if history.is_some() {
            snapshot.commit_times = Arc::new(state.commits.iter().map(|c| c.time_us).collect());
        }
        if let Some(own) = own {
            snapshot.memtable.extend(own.rows.iter().cloned());
            snapshot.own_retired = Some(own.retired.clone());
        }
        Some(snapshot)
    }

    /// The table called `name` (as named at `range.to_seq`) with every
    /// version in `range`. A range across a change of a column's type is
    /// refused (0A000): versions before it hold the column under its old
    /// type, and showing them as NULL would alter them.
    pub fn history_snapshot(
        &self,
        name: &str,
        mut range: HistoryRange,
    ) -> Result<Option<TableSnapshot>> {
        // A range open at its start begins at the horizon (what is left).
        if range.from_seq == 0
            && let Some(def) = self.table_def_at(name, range.to_seq)
        {
            range.from_seq = def.history.horizon.min(range.to_seq);
        }
        let Some(mut snapshot) = self.snapshot_of(name, range.to_seq, Some(range), None) else {
            return Ok(None);
        };
        if let Some(seq) = snapshot.def.conversion_within(range.from_seq, range.to_seq) {
            return Err(Error::unsupported(format!(
                "history of \"{name}\" across commit {seq}, which changed a column's type \
                 (read the versions before it, or from {seq} on)"
            )));
        }
        snapshot.history = Some(range);
        Ok(Some(snapshot))
    }

    /// Whether a table called `name` exists in snapshot `seq` (no snapshot is built).
    pub fn table_exists_at(&self, name: &str, seq: u64) -> bool {
        self.table_exists_in(name, seq, None)
    }

    /// Whether a table called `name` exists in snapshot `seq` as `view`'s transaction sees it.
    pub fn table_exists_in(&self, name: &str, seq: u64, view: Option<&TxnView>) -> bool {
        self.with_catalog(seq, view, |c| c.table_at(name, seq).is_some())
    }

    /// The view called `name` as of `seq`.
    pub fn view_at(&self, name: &str, seq: u64) -> Option<ViewDef> {
        self.view_in(name, seq, None)
    }

    /// The view called `name` as of `seq` as `view`'s transaction sees it.
    pub fn view_in(&self, name: &str, seq: u64, view: Option<&TxnView>) -> Option<ViewDef> {
        self.with_catalog(seq, view, |c| c.view_at(name, seq).cloned())
    }

    /// Names of tables and views at `seq`.
    pub fn relation_names_at(&self, seq: u64) -> (Vec<String>, Vec<String>) {
        self.relation_names_in(seq, None)
    }

    /// Names of tables and views at `seq` as `view`'s transaction sees them.
    pub fn relation_names_in(
        &self,
        seq: u64,
        view: Option<&TxnView>,
    ) -> (Vec<String>, Vec<String>) {
        self.with_catalog(seq, view, |c| (c.table_names_at(seq), c.view_names_at(seq)))
    }

    /// The sequence called `name` as of `seq` as `view`'s transaction sees it.
    pub fn sequence_in(
        &self,
        name: &str,
        seq: u64,
        view: Option<&TxnView>,
    ) -> Option<crate::catalog::SequenceDef> {
        self.with_catalog(seq, view, |c| c.sequence_at(name, seq).cloned())
    }

    /// A copy of the catalog a reader of `seq` through `view` sees.
    pub fn catalog_in(&self, seq: u64, view: Option<&TxnView>) -> Catalog {
        self.with_catalog(seq, view, Catalog::clone)
    }

    /// Run `f` on the catalog a reader of `seq` through `view` sees.
    pub(super) fn with_catalog<T>(
        &self,
        seq: u64,
        view: Option<&TxnView>,
        f: impl FnOnce(&Catalog) -> T,
    ) -> T {
        if let Some(catalog) = view
            .filter(|v| v.seq == seq)
            .and_then(|v| v.catalog.as_deref())
        {
            return f(catalog);
        }
        f(&self.inner.state.read().catalog)
    }

    /// The version the live tag `name` names (42704 if there is none).
    pub fn tag_version(&self, name: &str) -> Result<u64> {
        let state = self.inner.state.read();
        let seq = self.visible_seq();
        // Exactly as written, else as an unquoted name would fold.
        let tag = state
            .catalog
            .tag_at(name, seq)
            .or_else(|| state.catalog.tag_at(&name.to_lowercase(), seq));
        match tag {
            Some(tag) => Ok(tag.version),
            None => Err(Error::UnknownTag {
                name: crate::error::printable(name),
            }),
        }
    }

    /// The live tags, by name.
    pub fn tags(&self) -> Vec<crate::catalog::TagDef> {
        let state = self.inner.state.read();
        let tags = state.catalog.tags_at(self.visible_seq());
        tags.into_iter().cloned().collect()
    }

    /// Check that `seq` names a commit that exists.
    pub fn check_version(&self, seq: u64) -> Result<u64> {
        let latest = self.visible_seq();
        if seq == 0 || seq > latest {
            return Err(Error::BadSnapshot {
                message: format!("version {seq} does not exist (versions run from 1 to {latest})"),
            });
        }
        Ok(seq)
    }

    /// The last commit at or before `time_us` (µs since the epoch, UTC).
    pub fn seq_at_time(&self, time_us: i64) -> Result<u64> {
        let now = chrono::Utc::now().timestamp_micros();
        if time_us > now {
            return Err(Error::BadSnapshot {
                message: format!("timestamp {} is in the future", format_time(time_us)),
            });
        }
        let visible = self.visible_seq();
        let state = self.inner.state.read();
        let commits = &state.commits[..(visible as usize).min(state.commits.len())];
        let count = commits.partition_point(|c| c.time_us <= time_us);
        match count {
            0 => Err(Error::BadSnapshot {
                message: match commits.first() {
                    Some(first) => format!(
                        "timestamp {} is before the first commit ({})",
                        format_time(time_us),
                        format_time(first.time_us)
                    ),
                    None => "the database has no commits yet".into(),
                },
            }),
            n => Ok(commits[n - 1].seq),
        }
    }

    /// Like [`Self::seq_at_time`], but a time before the first commit gives 0 (for range bounds).
    pub fn seq_at_time_or_zero(&self, time_us: i64) -> Result<u64> {
        match self.seq_at_time(time_us) {
            Err(Error::BadSnapshot { .. }) if time_us <= chrono::Utc::now().timestamp_micros() => {
                Ok(0)
            }
            other => other,
        }
    }
}

/// 22008: table `name` cannot be read `what` `first`, before its horizon.
pub fn horizon_error(name: &str, horizon: u64, what: &str, first: u64) -> Error {
    Error::BadSnapshot {
        message: format!(
            "table \"{name}\" keeps its history from version {horizon} on (VACUUM removed the versions retired before it): cannot read {what} {first}"
        ),
    }
}

/// A µs timestamp as RFC 3339 text.
pub fn format_time(time_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(time_us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| time_us.to_string())
}

impl Database {
    /// The `_rowid` holding each key in table `table_id` as `view`'s
    /// transaction sees it (its own inserts and deletes over the latest commit).
    pub fn lookup_primary_keys_in(
        &self,
        table_id: u64,
        keys: &KeyColumn,
        view: Option<&TxnView>,
    ) -> Vec<Option<u64>> {
        let mut holders = self.lookup_primary_keys(table_id, keys);
        if let Some(view) = view {
            for (row, holder) in holders.iter_mut().enumerate() {
                let own = keys
                    .encoded(row)
                    .and_then(|key| view.key_holder(table_id, &key));
                if let Some(own) = own {
                    *holder = own;
                }
            }
        }
        holders
    }

    /// Per UNIQUE constraint of table `table_id`, the live `_rowid` holding
    /// each row's key in `keys` (see [`crate::constraints::unique_keys`]) at
    /// the latest commit.
    pub fn unique_holders(&self, table_id: u64, keys: &[KeyColumn]) -> Vec<Vec<Option<u64>>> {
        let state = self.inner.state.read();
        let index = state.unique_index.get(&table_id);
        keys.iter()
            .enumerate()
            .map(|(c, column)| {
                (0..column.len())
                    .map(|row| index.and_then(|i| i.holder(c, column, row)))
                    .collect()
            })
            .collect()
    }

    /// The live `_rowid` holding each key in table `table_id`, at the latest commit.
    pub fn lookup_primary_keys(&self, table_id: u64, keys: &KeyColumn) -> Vec<Option<u64>> {
        let state = self.inner.state.read();
        let index = state.pk_index.get(&table_id);
        keys.iter().map(|k| index.and_then(|i| i.get(k?))).collect()
    }
}
