//! The database: one global commit sequence over the catalog, the log and
//! the stored row versions.
//!
//! Invariants:
//! - `seq` values are contiguous from 1; commit times strictly increase.
//! - State may hold commits that are not yet durable, but readers only ever
//!   use snapshots at or below `visible_seq`, the highest durable commit,
//!   so an unacknowledged commit is never seen.
//! - Commits are validated and applied one at a time under the writer
//!   mutex; their fsyncs are shared (group commit) outside it.

mod apply;
pub mod compact;
mod foreign;
pub mod gate;
mod keys;
mod persist;
mod recover;
mod references;
mod restore;
mod snapshot;

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::log::objects::{ObjectLog, ObjectSink, Tail};
use crate::log::{CommitInfo, CommitLog};
use crate::storage::TableData;
use crate::storage::lease::Lease;
use crate::storage::location::Location;
use crate::storage::location::StoreKind;
use crate::storage::verify::store_error;
use crate::txn::WriteSet;
use object_store::ObjectStoreExt;

pub(crate) use apply::{apply_catalog_op, schema_op};
pub(crate) use gate::Poison;
use gate::WriteGate;
pub use snapshot::{HistoryRange, TableSnapshot, format_time, horizon_error};

/// The mutable in-memory state, guarded by one lock.
#[derive(Debug, Default)]
pub(crate) struct DbState {
    pub catalog: Catalog,
    pub tables: HashMap<u64, TableData>,
    /// Primary key → live `_rowid`, per table with a primary key, at the latest commit.
    pub pk_index: HashMap<u64, crate::txn::KeyIndex>,
    /// The UNIQUE constraints' index, per table with any, at the latest commit.
    pub unique_index: HashMap<u64, crate::constraints::unique::UniqueIndex>,
    pub commits: Vec<CommitInfo>,
    pub last_seq: u64,
    pub last_time_us: i64,
    pub next_rowid: u64,
    pub memtable_since: Option<Instant>,
    /// Memtable chunks holding commits at or before this are frozen for a persist.
    pub sealed_through: u64,
    /// Copy of `Limits::memtable_chunk_rows_max` for `apply_record`.
    pub chunk_rows_max: usize,
    /// The last commits that changed each table (since this process opened it).
    pub table_changes: HashMap<u64, TableChanges>,
    /// The last commit that changed the catalog (tables, views, sequences).
    pub schema_epoch: u64,
}

/// A data file compaction replaced.
#[derive(Debug)]
pub(crate) struct Obsolete {
    pub file: Arc<crate::storage::DataFile>,
    /// The first durable checkpoint built after it was replaced (so
    /// naming neither it nor any later one): set once written.
    pub unnamed_from: Option<u64>,
}

/// The last commit that changed a table's definition and its rows.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TableChanges {
    pub schema_seq: u64,
    pub data_seq: u64,
}

/// What a commit must re-check against commits made since its writer read.
#[derive(Debug, Clone, Default)]
pub struct CommitChecks {
    /// The oldest snapshot the writes were computed from: a definition
    /// change after it to a table they touch is a conflict (40001).
    pub since: u64,
    /// Tables a SERIALIZABLE transaction read: any change to them after
    /// `since` is a conflict (40001).
    pub reads: Vec<u64>,
}

/// What a successful commit reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOutcome {
    pub seq: u64,
    pub time_us: i64,
}

pub(crate) struct Inner {
    pub location: Location,
    pub limits: Limits,
    pub log: Option<CommitLog>,
    pub writer: tokio::sync::Mutex<()>,
    pub state: RwLock<DbState>,
    pub visible_seq: AtomicU64,
    /// Woken whenever `visible_seq` moves (live change feeds wait on it).
    pub visible_moved: tokio::sync::Notify,
    pub next_table_id: AtomicU64,
    /// Whether this process may still write (shared with the log writer and sequences).
    pub gate: Arc<WriteGate>,
    /// The writer lease, on object storage.
    pub lease: Option<crate::storage::lease::Lease>,
    pub persisting: AtomicBool,
    pub persist_lock: tokio::sync::Mutex<()>,
    /// Where every sequence stands (not transactional; see [`crate::sequences`]).
    pub sequences: crate::sequences::Positions,
    /// The newest checkpoint known durable (loaded at open or written since).
    pub checkpoint_seq: Mutex<Option<u64>>,
    /// Data files compaction replaced, deleted once no checkpoint names them
    /// and no scan holds them (see [`compact`]).
    pub obsolete: Mutex<Vec<Obsolete>>,
    /// No checkpoint older than this is on disk (0: not known yet).
    pub checkpoint_floor: AtomicU64,
    /// Tables with a damaged data file found at open (see `recover`).
    pub damaged_tables: Mutex<HashMap<u64, recover::DamagedTable>>,
    /// Shared by every session (see [`Database::runtime_env`]).
    pub runtime_env: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    /// Evaluates CHECK constraints for write sets that did not come from a statement.
    pub check_ctx: std::sync::OnceLock<datafusion::execution::context::SessionContext>,
    lock_file: Mutex<Option<File>>,
}

impl Inner {
    /// Refuse writes from now on (the first reason stays); the error to report.
    pub(crate) fn poison(&self, poison: Poison) -> Error {
        self.gate.poison(poison)
    }
}

/// An open DriftDB database. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Database {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("location", &self.inner.location.display)
            .finish()
    }
}

impl Database {
    /// Open (or create) the database at `location` with default limits.
    pub async fn open(location: &str) -> Result<Self> {
        Self::open_with(location, Limits::default()).await
    }

    /// Open (or create) the database at `location`, recovering every durable commit.
    pub async fn open_with(location: &str, limits: Limits) -> Result<Self> {
        Self::open_with_fs(location, limits, crate::storage::durable::local()).await
    }

    /// Open (or create) the database at `location`, an object store
    /// configured with `options` over the environment's settings.
    pub async fn open_configured(
        location: &str,
        limits: Limits,
        options: &crate::storage::location::StorageOptions,
    ) -> Result<Self> {
        let fs = crate::storage::durable::local();
        Self::open_at(Location::parse_configured(location, fs, options)?, limits).await
    }

    /// Open (or create) the database at `location` with every change to
    /// its local files going through `fs` (a simulated disk in power-loss
    /// tests, see [`crate::storage::simfs`]).
    pub async fn open_with_fs(
        location: &str,
        limits: Limits,
        fs: Arc<dyn crate::storage::durable::DurableFs>,
    ) -> Result<Self> {
        Self::open_at(Location::parse_with(location, fs)?, limits).await
    }

    /// Open (or create) the database at a parsed `location` (for instance
    /// one whose store injects faults), recovering every durable commit.
    pub async fn open_at(location: Location, limits: Limits) -> Result<Self> {
        Self::refuse_unfinished_restore(&location).await?;
        Self::open_unchecked(location, limits).await
    }

    async fn open_unchecked(location: Location, limits: Limits) -> Result<Self> {
        let location = location.with_cache(limits.data_cache_bytes_max)?;
        let lock_file = lock_writer(&location)?;
        let (lease, gate) = match location.kind {
            StoreKind::Object => {
                let started = std::time::Instant::now();
                let ttl = limits.writer_lease_ttl;
                let lease = Lease::acquire(location.store.clone(), &location.display, ttl).await?;
                (Some(lease), Arc::new(WriteGate::with_lease(started, ttl)))
            }
            _ => (None, Arc::new(WriteGate::default())),
        };
        let (recovered, log) = open_log(&location, &limits, &gate).await?;
        let recover::Recovered {
            state,
            checkpoint_seq,
            ..
        } = recovered;
        let next_table_id = state.catalog.max_table_id() + 1;
        let sequences =
            crate::sequences::Positions::open(&location, &state.catalog, gate.clone()).await?;
        let visible = state.last_seq;
        let inner = Arc::new(Inner {
            location,
            limits,
            log,
            writer: tokio::sync::Mutex::new(()),
            state: RwLock::new(state),
            visible_seq: AtomicU64::new(visible),
            visible_moved: tokio::sync::Notify::new(),
            next_table_id: AtomicU64::new(next_table_id),
            gate,
            lease,
            persisting: AtomicBool::new(false),
            persist_lock: tokio::sync::Mutex::new(()),
            sequences,
            checkpoint_seq: Mutex::new(checkpoint_seq),
            damaged_tables: Mutex::default(),
            obsolete: Mutex::default(),
            checkpoint_floor: AtomicU64::new(0),
            runtime_env: Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default()),
            check_ctx: std::sync::OnceLock::new(),
            lock_file: Mutex::new(lock_file),
        });
        let db = Self { inner };
        recover::rebuild_indexes(&db).await?;
        recover::delete_unnamed_files(&db.inner.location).await?;
        spawn_age_persister(Arc::downgrade(&db.inner));
        if db.inner.lease.is_some() {
            spawn_lease_renewal(Arc::downgrade(&db.inner));
        }
        Ok(db)
    }

    /// The highest durable commit: the default snapshot for reads.
    pub fn visible_seq(&self) -> u64 {
        self.inner.visible_seq.load(Ordering::Acquire)
    }

    /// Make commits up to `seq` visible and wake whoever waits for them.
    pub(crate) fn publish_visible(&self, seq: u64) {
        self.inner.visible_seq.fetch_max(seq, Ordering::AcqRel);
        self.inner.visible_moved.notify_waiters();
    }

    /// Wait until a commit after `seq` is visible; returns the newest visible.
    pub async fn wait_visible_after(&self, seq: u64) -> u64 {
        loop {
            let moved = self.inner.visible_moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            let visible = self.visible_seq();
            if visible > seq {
                return visible;
            }
            moved.await;
        }
    }

    /// The last commit that changed the catalog: a plan made at this epoch
    /// stays valid while it holds (see `sql::plan_cache`).
    pub fn schema_epoch(&self) -> u64 {
        self.inner.state.read().schema_epoch
    }

    /// A fresh table id (ids are never reused; gaps are harmless).
    pub fn allocate_table_id(&self) -> u64 {
        self.inner.next_table_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The UNIQUE index of table `def` built from its live rows (23505 on a duplicate).
    pub(crate) async fn build_unique_index(
        &self,
        def: &crate::catalog::TableDef,
    ) -> Result<crate::constraints::unique::UniqueIndex> {
        recover::build_unique_index(self, def).await
    }

    /// Sequence positions (`nextval`, `setval`).
    pub fn sequence_positions(&self) -> &crate::sequences::Positions {
        &self.inner.sequences
    }

    /// Where the database lives, for messages.
    pub fn location(&self) -> &str {
        &self.inner.location.display
    }

    /// Whether the database lives on object storage.
    pub fn is_object_store(&self) -> bool {
        self.inner.location.kind == StoreKind::Object
    }

    /// A small object kept beside the data on object storage (the server's
    /// users), None if there is none.
    pub async fn read_side_object(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = object_store::path::Path::from(name);
        match self.inner.location.store.get(&path).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(store_error)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Store a small object beside the data (one PUT, durable once it
    /// returns); refused once this process may no longer write.
    pub async fn write_side_object(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.check_poisoned()?;
        let path = object_store::path::Path::from(name);
        self.inner
            .location
            .store
            .put(&path, bytes.into())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// What the local disk cache of data files did so far (object storage).
    pub fn cache_stats(&self) -> Option<crate::storage::cache::CacheStats> {
        self.inner.location.cache.as_ref().map(|c| c.stats())
    }

    /// The runtime every session's queries run in: shared, so Parquet
    /// footers and page indexes read once are cached for all of them.
    pub fn runtime_env(&self) -> Arc<datafusion::execution::runtime_env::RuntimeEnv> {
        self.inner.runtime_env.clone()
    }

    /// The object store holding data files, for scans.
    pub fn object_store(&self) -> Arc<dyn object_store::ObjectStore> {
        self.inner.location.store.clone()
    }

    /// The commit time of commit `seq`, if it is durable.
    pub fn commit_time(&self, seq: u64) -> Option<i64> {
        if seq == 0 || seq > self.visible_seq() {
            return None;
        }
        let state = self.inner.state.read();
        state.commits.get(seq as usize - 1).map(|c| c.time_us)
    }

    /// Every commit so far (including not-yet-durable ones past `visible_seq`).
    pub fn commits(&self) -> Vec<CommitInfo> {
        let visible = self.visible_seq();
        let state = self.inner.state.read();
        state
            .commits
            .iter()
            .take_while(|c| c.seq <= visible)
            .cloned()
            .collect()
    }

    /// A copy of the catalog (it keeps its own history).
    pub fn catalog(&self) -> Catalog {
        self.inner.state.read().catalog.clone()
    }

    /// Commit `writes` atomically; returns once the commit is durable.
    /// The writes were computed from the latest commit.
    pub async fn commit(&self, writes: WriteSet) -> Result<CommitOutcome> {
        let since = self.inner.state.read().last_seq;
        self.commit_checked(
            writes,
            &CommitChecks {
                since,
                reads: Vec::new(),
            },
        )
        .await
    }

    /// Commit `writes` atomically after re-checking `checks` against the
    /// commits made meanwhile; returns once the commit is durable. The
    /// CHECK constraints of the tables it inserts into are evaluated here
    /// (a statement's writes come through [`Database::commit_statement`],
    /// whose statement evaluated them already).
    pub async fn commit_checked(
        &self,
        writes: WriteSet,
        checks: &CommitChecks,
    ) -> Result<CommitOutcome> {
        self.evaluate_checks(&writes)?;
        self.commit_statement(writes, checks).await
    }

    /// [`Database::commit_checked`] for writes whose CHECK constraints the
    /// statement that made them evaluated at snapshot `checks.since` (a
    /// later definition change is a conflict, see `apply`).
    pub(crate) async fn commit_statement(
        &self,
        writes: WriteSet,
        checks: &CommitChecks,
    ) -> Result<CommitOutcome> {
        self.check_poisoned()?;
        recover::refuse_writes_to_damaged(&self.inner, &writes)?;
        let guard = self.inner.writer.lock().await;
        let (outcome, frame) = apply::validate_and_apply(&self.inner, writes, checks)?;
        // Queue the frame before letting the next writer in, so frames reach the log in seq order.
        let durable = match (&self.inner.log, frame) {
            (Some(log), Some(frame)) => Some(log.submit(outcome.seq, frame)),
            _ => None,
        };
        drop(guard);
        if let Some(durable) = durable {
            let result = match durable {
                Ok(wait) => crate::log::wait_durable(wait).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                // The first failure is what this commit reports; later
                // statements get the poison it left.
                self.inner.poison(match &e {
                    Error::Fenced { detail } => Poison::Fenced(detail.clone()),
                    other => Poison::Failed(other.to_string()),
                });
                return Err(match e {
                    e @ (Error::Fenced { .. } | Error::OutcomeUnknown { .. }) => e,
                    other => Error::Poisoned {
                        detail: other.to_string(),
                    },
                });
            }
        }
        self.publish_visible(outcome.seq);
        self.maybe_persist();
        Ok(outcome)
    }

    /// Fail with 23514 if a row `writes` inserts breaks a CHECK constraint
    /// of its table (as the commit defines it, else as it stands now).
    fn evaluate_checks(&self, writes: &WriteSet) -> Result<()> {
        for write in &writes.writes {
            let crate::txn::Write::Insert {
                table_id, batch, ..
            } = write
            else {
                continue;
            };
            let created = writes.writes.iter().find_map(|w| match w {
                crate::txn::Write::CreateTable(def) if def.id == *table_id => Some(def.clone()),
                _ => None,
            });
            let def = created.or_else(|| {
                self.inner
                    .state
                    .read()
                    .catalog
                    .table_by_id(*table_id)
                    .cloned()
            });
            if let Some(def) = def.filter(|d| !d.checks.is_empty()) {
                let ctx = self
                    .inner
                    .check_ctx
                    .get_or_init(crate::constraints::check::context);
                crate::constraints::check::check_rows(ctx, &def, batch)?;
            }
        }
        Ok(())
    }

    /// The first of `rowids` of table `table_id` that some commit already retired.
    pub fn first_retired(&self, table_id: u64, rowids: &[u64]) -> Option<u64> {
        let state = self.inner.state.read();
        let data = state.tables.get(&table_id)?;
        rowids
            .iter()
            .copied()
            .find(|r| data.retired.contains_key(r))
    }

    /// Persist everything, checkpoint, and release the database for another opener.
    /// Later commits through any clone of this handle fail.
    pub async fn close(&self) -> Result<()> {
        self.persist().await?;
        let _no_commits = self.inner.writer.lock().await;
        self.inner
            .poison(Poison::Failed("the database was closed".into()));
        self.inner.lock_file.lock().take();
        if let Some(lease) = &self.inner.lease {
            lease.release().await?;
        }
        Ok(())
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        self.inner.gate.check()
    }
}

/// Take the single-writer lock on a local database folder.
fn lock_writer(location: &Location) -> Result<Option<File>> {
    let Some(root) = &location.local_root else {
        return Ok(None);
    };
    let holder = "another DriftDB process has it open for writing";
    lock_folder(root, "LOCK", holder).map(Some)
}

/// Hold an exclusive lock on `root/name` (created if missing) for as long
/// as the returned file lives; the kernel lets go when the process dies.
/// Refused with [`Error::Locked`] (55006) saying `holder` when another
/// process keeps it past a short wait.
pub(crate) fn lock_folder(root: &std::path::Path, name: &str, holder: &str) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, crate::storage::durable::FILE_MODE);
    let file = options.open(root.join(name))?;
    // A lock can outlive its holder by a moment: a process being forked
    // shares the descriptor until it execs. Retry briefly before refusing.
    let deadline = std::time::Instant::now() + LOCK_WAIT_MAX;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY_INTERVAL);
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    location: root.display().to_string(),
                    detail: holder.into(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
}

/// How long opening waits for another holder of the writer lock to let go.
const LOCK_WAIT_MAX: std::time::Duration = std::time::Duration::from_millis(1000);
/// Pause between attempts to take the writer lock.
const LOCK_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// The recovered state and the commit log to append to: segment files on
/// local disk; on object storage the log objects, fenced against the
/// previous writer (retried while it keeps committing); none in memory.
async fn open_log(
    location: &Location,
    limits: &Limits,
    gate: &Arc<WriteGate>,
) -> Result<(recover::Recovered, Option<CommitLog>)> {
    match location.kind {
        StoreKind::Memory => Ok((recover::recover_state(location, limits, None).await?, None)),
        StoreKind::Local => {
            let recovered = recover::recover_state(location, limits, None).await?;
            let root = location
                .local_root
                .as_ref()
                .ok_or_else(|| Error::internal("a local database without a folder"))?;
            let log = CommitLog::open(
                location.fs.clone(),
                &root.join(crate::log::LOG_DIR),
                recovered.state.last_seq + 1,
            )?;
            Ok((recovered, Some(log)))
        }
        StoreKind::Object => {
            let objects = ObjectLog::new(location.store.clone())?;
            for _ in 0..FENCE_ATTEMPTS_MAX {
                let recovered = recover::recover_state(location, limits, Some(&objects)).await?;
                let tail = recovered
                    .tail
                    .ok_or_else(|| Error::internal("object log read without a tail"))?;
                if objects.fence(tail).await? {
                    let next = Tail {
                        number: tail.number + 1,
                        seq: tail.seq,
                    };
                    let sink = ObjectSink::new(objects.clone(), next, gate.clone());
                    return Ok((recovered, Some(CommitLog::open_objects(objects, sink)?)));
                }
            }
            Err(Error::Locked {
                location: location.display.clone(),
                detail: format!(
                    "the previous writer kept committing through {FENCE_ATTEMPTS_MAX} attempts to fence its log"
                ),
            })
        }
    }
}

/// Attempts to fence the object log at open before giving up.
const FENCE_ATTEMPTS_MAX: usize = 16;

/// Renew the writer lease every quarter of its TTL until the database is
/// dropped; finding it taken over, refuse writes from then on (55006).
fn spawn_lease_renewal(inner: Weak<Inner>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let Some(period) = inner.upgrade().map(|i| i.limits.writer_lease_ttl / 4) else {
            return;
        };
        let mut tick = tokio::time::interval(period.max(std::time::Duration::from_millis(10)));
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(inner) = inner.upgrade() else { return };
            if inner.gate.is_poisoned() {
                return;
            }
            let Some(lease) = inner.lease.clone() else {
                return;
            };
            let started = std::time::Instant::now();
            match lease.renew().await {
                Ok(()) => inner.gate.renewed(started),
                Err(Error::Fenced { detail }) => {
                    tracing::error!(%detail, "writer lease taken over: refusing writes");
                    inner.poison(Poison::Fenced(detail));
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "renewing the writer lease failed; retrying"),
            }
        }
    });
}

/// Persist the memtable when its oldest commit gets too old, until the database is dropped.
fn spawn_age_persister(inner: Weak<Inner>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(inner) = inner.upgrade() else { return };
            let db = Database { inner };
            let too_old = db
                .inner
                .state
                .read()
                .memtable_since
                .is_some_and(|since| since.elapsed() >= db.inner.limits.memtable_age_max);
            if too_old {
                db.maybe_persist_now();
            }
        }
    });
}
