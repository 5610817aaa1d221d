//! Taking a backup: a consistent snapshot of a database that may be open
//! in another process, copied to the destination incrementally (see the
//! [module page](super)).

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use std::collections::{HashMap, HashSet};

use super::{
    Copy, Expect, Manifest, Progress, StoredCheckpoint, StoredLog, StoredSide, copy_files,
    existing_location, lasting_location, newest_manifest, put_stored, read_stored, refuse_overlap,
    write_manifest,
};
use crate::db::{Database, lock_folder};
use crate::error::{Error, Result};
use crate::log::objects::ObjectLog;
use crate::log::segment::seal_segment;
use crate::log::{CommitRecord, LOG_DIR, read_log_online};
use crate::storage::checkpoint::{CHECKPOINT_DIR, checkpoint_name, load_newest_checkpoint};
use crate::storage::checkpoint::{Checkpoint, encode_checkpoint, is_not_found};
use crate::storage::checkpoint::{list_checkpoints, read_checkpoint};
use crate::storage::location::{Location, StoreKind};
use crate::storage::verify::store_error;

/// Times a snapshot is read again when the source moved under it (a
/// checkpoint deleted the log being read) before giving up.
const SNAPSHOT_ATTEMPTS_MAX: usize = 8;
/// The files kept beside a database that a backup carries.
pub const SIDE_FILES: [&str; 2] = [crate::sequences::POSITIONS_FILE, super::USERS_FILE];
/// The top-level folders of a backup destination.
const BACKUP_FOLDERS: [&str; 6] = [
    super::MANIFEST_DIR,
    "checkpoints",
    "log",
    "data",
    "side",
    BACKUP_LOCK,
];
/// The lock a backup holds on a local destination folder.
const BACKUP_LOCK: &str = "backup.lock";

/// What a backup did.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub number: u64,
    pub source: String,
    pub destination: String,
    /// The last commit backed up, and its time.
    pub through_seq: u64,
    pub through_time_us: i64,
    pub files_copied: usize,
    pub bytes_copied: u64,
    /// Files the destination held already (from earlier backups).
    pub files_kept: usize,
    pub bytes_kept: u64,
    /// Files earlier backups stored that were missing or damaged: data
    /// files copied again, checkpoints and log chunks left out of the set.
    pub repaired: Vec<String>,
    /// Newer manifests passed over because they are damaged.
    pub skipped: Vec<String>,
    /// The commits the destination can now restore.
    pub restorable: Vec<(u64, u64)>,
}

/// The source as of one commit: its newest checkpoint and the log after it.
struct Snapshot {
    checkpoint: Option<Checkpoint>,
    /// The source's other readable checkpoints, older than `checkpoint`.
    older: Vec<Checkpoint>,
    /// Commits without a gap, from at most `checkpoint.seq + 1` on.
    records: Vec<CommitRecord>,
}

impl Snapshot {
    /// The last commit, and its time.
    fn through(&self) -> (u64, i64) {
        let logged = self
            .records
            .last()
            .map(|r| (r.header.seq, r.header.time_us));
        let checkpointed = self.checkpoint.as_ref().map(|c| (c.seq, c.time_us));
        logged.max(checkpointed).unwrap_or((0, 0))
    }

    /// The time of commit `seq`, if the snapshot reaches it.
    fn time_of(&self, seq: u64) -> Option<i64> {
        if let Some(record) = self.records.iter().find(|r| r.header.seq == seq) {
            return Some(record.header.time_us);
        }
        let commits = &self.checkpoint.as_ref()?.commits;
        let i = commits.partition_point(|c| c.seq < seq);
        commits.get(i).filter(|c| c.seq == seq).map(|c| c.time_us)
    }
}

/// How a backup runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackupOptions {
    /// Read every file earlier backups left in the destination and check
    /// it against its xxh64 (by default only presence and length are).
    pub verify: bool,
}

/// Back up the database at `source` into `destination` (see the module page).
pub async fn backup(
    source: &str,
    destination: &str,
    options: BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupReport> {
    let from = existing_location(source, "database")?;
    Database::refuse_unfinished_restore(&from).await?;
    // Checked before the destination is made: nothing is created inside the source.
    refuse_overlap(&from, destination, "back up")?;
    let to = lasting_location(destination, "backup destination")?;
    let _lock = lock_destination(&to)?;
    let newest = newest_manifest(&to).await?;
    if newest.next_number == 1 {
        refuse_foreign_destination(&to).await?;
    }
    let mut manifest = newest.manifest.unwrap_or_else(|| empty_manifest(&from));
    let mut repaired = Vec::new();
    if manifest.number > 0 {
        repaired = check_kept(&from, &to, &mut manifest, options, progress).await?;
    }
    // The log is read back to where the commits the set can restore end,
    // as far as the source still has it, so backups join without a gap.
    let after = manifest.restorable().last().map_or(0, |r| r.1);
    let snapshot = snapshot(&from, after).await?;
    let (through_seq, through_time_us) = snapshot.through();
    if through_seq == 0 {
        return Err(Error::ObjectNotInPrerequisiteState {
            message: format!("{} has no commits to back up", from.display),
        });
    }
    if manifest.number > 0 {
        check_continues(&manifest, &snapshot, source, destination)?;
    }
    manifest.number = newest.next_number;
    manifest.created_us = chrono::Utc::now().timestamp_micros();
    manifest.source = from.display.clone();
    manifest.through_seq = through_seq;
    manifest.through_time_us = through_time_us;
    let run = format!("{:020}-{}", manifest.number, manifest.created_us);

    let mut report = BackupReport {
        number: manifest.number,
        source: from.display.clone(),
        destination: to.display.clone(),
        through_seq,
        through_time_us,
        files_copied: 0,
        bytes_copied: 0,
        files_kept: 0,
        bytes_kept: 0,
        repaired,
        skipped: newest.damaged,
        restorable: Vec::new(),
    };
    // Every checkpoint the source still has (its newest and the one
    // before), so the log read back past the newest can be restored from.
    let checkpoints: Vec<&Checkpoint> = snapshot.older.iter().chain(&snapshot.checkpoint).collect();
    copy_data_files(
        &from,
        &to,
        &checkpoints,
        &mut manifest,
        &mut report,
        progress,
    )
    .await?;
    for checkpoint in checkpoints {
        store_checkpoint(&to, checkpoint, &run, &mut manifest, &mut report).await?;
    }
    let fresh: Vec<CommitRecord> = snapshot
        .records
        .into_iter()
        .filter(|r| r.header.seq > after)
        .collect();
    store_log(&to, &fresh, &run, &mut manifest, &mut report).await?;
    manifest.side = copy_side_files(&from, &to, &run, &mut report).await?;
    write_manifest(&to, &manifest).await?;
    report.restorable = manifest.restorable();
    Ok(report)
}

/// One backup at a time writes into a local folder (their temporary
/// files share names); on object storage the manifest's conditional
/// create lets only one of two racing backups finish.
fn lock_destination(to: &Location) -> Result<Option<std::fs::File>> {
    let Some(root) = &to.local_root else {
        return Ok(None);
    };
    let locked = lock_folder(root, BACKUP_LOCK, "").map_err(|e| match e {
        Error::Locked { .. } => Error::Busy {
            what: format!("backup destination {}", to.display),
            detail: "another backup is writing into it".into(),
        },
        other => other,
    })?;
    Ok(Some(locked))
}

/// Everything stored under `location`.
async fn list_everything(location: &Location) -> Result<Vec<object_store::ObjectMeta>> {
    location
        .store
        .list(None)
        .try_collect()
        .await
        .map_err(store_error)
}

fn empty_manifest(from: &Location) -> Manifest {
    Manifest {
        number: 0,
        created_us: 0,
        source: from.display.clone(),
        through_seq: 0,
        through_time_us: 0,
        checkpoints: Vec::new(),
        logs: Vec::new(),
        data: Vec::new(),
        side: Vec::new(),
    }
}

/// Copy the snapshot's checkpoint unless the destination holds it.
async fn store_checkpoint(
    to: &Location,
    checkpoint: &Checkpoint,
    run: &str,
    manifest: &mut Manifest,
    report: &mut BackupReport,
) -> Result<()> {
    if manifest.checkpoints.iter().any(|c| c.seq == checkpoint.seq) {
        return Ok(());
    }
    let bytes = Bytes::from(encode_checkpoint(checkpoint)?);
    let path = format!("checkpoints/{:020}-{run}.json", checkpoint.seq);
    let file = put_stored(to, path, bytes).await?;
    report.count_copied(file.bytes);
    manifest.checkpoints.push(StoredCheckpoint {
        seq: checkpoint.seq,
        time_us: checkpoint.time_us,
        file,
    });
    manifest.checkpoints.sort_by_key(|c| c.seq);
    Ok(())
}

/// Store the commits the destination lacks as one log chunk.
async fn store_log(
    to: &Location,
    fresh: &[CommitRecord],
    run: &str,
    manifest: &mut Manifest,
    report: &mut BackupReport,
) -> Result<()> {
    let (Some(first), Some(last)) = (fresh.first(), fresh.last()) else {
        return Ok(());
    };
    let (first, last) = (first.header.seq, last.header.seq);
    let bytes = Bytes::from(seal_segment(first, fresh)?);
    let path = format!("log/{first:020}-{last:020}-{run}.log");
    let file = put_stored(to, path, bytes).await?;
    report.count_copied(file.bytes);
    manifest.logs.push(StoredLog {
        first_seq: first,
        last_seq: last,
        file,
    });
    manifest.logs.sort_by_key(|l| l.first_seq);
    Ok(())
}

/// Check what earlier backups left (presence and length; with
/// `options.verify` every byte). A damaged data file is copied again from
/// the source; a damaged checkpoint or log chunk leaves the set (the
/// points that needed it are no longer offered).
async fn check_kept(
    from: &Location,
    to: &Location,
    manifest: &mut Manifest,
    options: BackupOptions,
    progress: &dyn Progress,
) -> Result<Vec<String>> {
    let sizes: HashMap<String, u64> = list_everything(to)
        .await?
        .into_iter()
        .map(|m| (m.location.to_string(), m.size))
        .collect();
    let mut bad = HashSet::new();
    let all = manifest
        .data
        .iter()
        .chain(manifest.checkpoints.iter().map(|c| &c.file))
        .chain(manifest.logs.iter().map(|l| &l.file));
    let mut to_read = Vec::new();
    for file in all {
        match sizes.get(&file.path) {
            Some(size) if *size == file.bytes => to_read.push(file.clone()),
            _ => {
                bad.insert(file.path.clone());
            }
        }
    }
    if options.verify {
        progress.begin("verify", to_read.iter().map(|f| f.bytes).sum());
        for file in to_read {
            let read = read_stored(to, &file).await;
            progress.advance(file.bytes);
            if read.is_err() {
                bad.insert(file.path);
            }
        }
        progress.finish();
    }
    if bad.is_empty() {
        return Ok(Vec::new());
    }
    let mut again = Vec::new();
    for file in manifest.data.iter().filter(|f| bad.contains(&f.path)) {
        again.push(Copy {
            from: file.path.clone(),
            to: file.path.clone(),
            expect: Expect {
                bytes: file.bytes,
                xxh64: Some(file.xxh64),
            },
        });
    }
    progress.begin("repair", again.iter().map(|c| c.expect.bytes).sum());
    let copied = copy_files(from, to, again, progress).await;
    progress.finish();
    copied.map_err(|e| Error::ObjectNotInPrerequisiteState {
        message: format!(
            "{} holds a damaged file that cannot be copied again from {} ({e}); back up to a new destination",
            to.display, from.display
        ),
    })?;
    manifest.checkpoints.retain(|c| !bad.contains(&c.file.path));
    manifest.logs.retain(|l| !bad.contains(&l.file.path));
    let mut repaired: Vec<String> = bad.into_iter().collect();
    repaired.sort();
    for path in &repaired {
        tracing::warn!(file = %path, "a file an earlier backup stored was missing or damaged: copied again or left out of the set");
    }
    Ok(repaired)
}

impl BackupReport {
    fn count_copied(&mut self, bytes: u64) {
        self.files_copied += 1;
        self.bytes_copied += bytes;
    }
}

/// Copy the data files of the snapshot's checkpoint the destination lacks.
async fn copy_data_files(
    from: &Location,
    to: &Location,
    checkpoints: &[&Checkpoint],
    manifest: &mut Manifest,
    report: &mut BackupReport,
    progress: &dyn Progress,
) -> Result<()> {
    let held: HashMap<&str, &super::StoredFile> =
        manifest.data.iter().map(|d| (d.path.as_str(), d)).collect();
    let mut seen = HashSet::new();
    let mut copies: Vec<Copy> = Vec::new();
    let files = checkpoints
        .iter()
        .flat_map(|c| c.tables.iter().flat_map(|t| t.all_files()));
    for file in files {
        if !seen.insert(file.path.as_str()) {
            continue;
        }
        match held.get(file.path.as_str()) {
            Some(held)
                if held.bytes == file.bytes && file.xxh64.is_none_or(|x| x == held.xxh64) =>
            {
                report.files_kept += 1;
                report.bytes_kept += held.bytes;
            }
            Some(held) => {
                return Err(Error::ObjectNotInPrerequisiteState {
                    message: format!(
                        "{} holds another file under {} ({} bytes, xxh64 {:016x}) than {} ({} bytes): it backs up another database",
                        to.display, held.path, held.bytes, held.xxh64, from.display, file.bytes
                    ),
                });
            }
            None => copies.push(Copy {
                from: file.path.clone(),
                to: file.path.clone(),
                expect: Expect {
                    bytes: file.bytes,
                    xxh64: file.xxh64,
                },
            }),
        }
    }
    progress.begin("data files", copies.iter().map(|c| c.expect.bytes).sum());
    let copied = copy_files(from, to, copies, progress).await;
    progress.finish();
    for file in copied? {
        report.count_copied(file.bytes);
        manifest.data.push(file);
    }
    Ok(())
}

/// Copy the side files the source has, under `side/<run>/`.
async fn copy_side_files(
    from: &Location,
    to: &Location,
    run: &str,
    report: &mut BackupReport,
) -> Result<Vec<StoredSide>> {
    let mut side = Vec::new();
    for name in SIDE_FILES {
        let path = object_store::path::Path::from(name);
        let bytes = match from.store.get(&path).await {
            Ok(got) => got.bytes().await.map_err(store_error)?,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(store_error(e)),
        };
        let file = put_stored(to, format!("side/{run}/{name}"), bytes).await?;
        report.count_copied(file.bytes);
        side.push(StoredSide {
            name: name.to_string(),
            file,
        });
    }
    Ok(side)
}

/// A destination without manifests must be empty or hold only what an
/// interrupted first backup left: never a database or someone's folder.
async fn refuse_foreign_destination(to: &Location) -> Result<()> {
    let metas = list_everything(to).await?;
    let foreign = metas.iter().find(|m| {
        let top = m.location.parts().next();
        !top.is_some_and(|p| BACKUP_FOLDERS.contains(&p.as_ref()))
    });
    match foreign {
        Some(meta) => Err(Error::ObjectNotInPrerequisiteState {
            message: format!(
                "{} is not a backup destination: it holds {} and no backup; back up to an empty folder or prefix",
                to.display, meta.location
            ),
        }),
        None => Ok(()),
    }
}

/// The source must continue the history the destination holds.
fn check_continues(
    previous: &Manifest,
    snapshot: &Snapshot,
    source: &str,
    destination: &str,
) -> Result<()> {
    let (through, _) = snapshot.through();
    let found = snapshot.time_of(previous.through_seq);
    if through >= previous.through_seq && found == Some(previous.through_time_us) {
        return Ok(());
    }
    let what = match found {
        Some(time) => format!(
            "has commit {} at {}",
            previous.through_seq,
            crate::db::format_time(time)
        ),
        None => format!("is at commit {through}"),
    };
    Err(Error::ObjectNotInPrerequisiteState {
        message: format!(
            "{destination} holds backups of another history: its backup {} ends at commit {} of {}, but {source} {what}; back it up to a new destination",
            previous.number,
            previous.through_seq,
            crate::db::format_time(previous.through_time_us),
        ),
    })
}

/// Read a consistent snapshot, again while the source moves under it.
async fn snapshot(from: &Location, wanted_after: u64) -> Result<Snapshot> {
    let mut attempt = 1;
    loop {
        match read_snapshot(from, wanted_after).await? {
            Ok(snapshot) => return Ok(snapshot),
            Err(moved) if attempt < SNAPSHOT_ATTEMPTS_MAX => {
                tracing::info!(attempt, %moved, "the source changed while being read; reading it again");
                attempt += 1;
            }
            Err(moved) => {
                return Err(Error::ObjectNotInPrerequisiteState {
                    message: format!(
                        "{} kept changing while it was read ({SNAPSHOT_ATTEMPTS_MAX} attempts): {moved}",
                        from.display
                    ),
                });
            }
        }
    }
}

/// The newest checkpoint and the log after it (back to `wanted_after`
/// where the source still has it), or why to read again.
async fn read_snapshot(
    from: &Location,
    wanted_after: u64,
) -> Result<std::result::Result<Snapshot, String>> {
    let loaded = load_newest_checkpoint(from).await?;
    // A checkpoint deleted between listing and reading: read again. One
    // that is there but unreadable is damage, which opening falls back
    // past when the log covers it: so does a backup.
    let must_reach = match loaded.unreadable.first() {
        Some(newest) => {
            let name = checkpoint_name(newest.seq);
            let path = object_store::path::Path::from(format!("{CHECKPOINT_DIR}/{name}"));
            match from.store.head(&path).await {
                Err(object_store::Error::NotFound { .. }) => {
                    return Ok(Err(format!("checkpoint {} vanished", newest.file)));
                }
                Err(e) => return Err(store_error(e)),
                Ok(_) => Some(newest.clone()),
            }
        }
        None => None,
    };
    let checkpoint_seq = loaded.checkpoint.as_ref().map_or(0, |c| c.seq);
    let after = wanted_after.min(checkpoint_seq);
    let records = match read_log_after(from, after, checkpoint_seq).await {
        Ok(records) => records,
        Err(e) if is_not_found(&e) => return Ok(Err(format!("a log file vanished: {e}"))),
        Err(e) => return Err(e),
    };
    let records: Vec<CommitRecord> = records
        .into_iter()
        .filter(|r| r.header.seq > after)
        .collect();
    if let Some(first) = records.first()
        && first.header.seq > checkpoint_seq + 1
    {
        return Ok(Err(format!(
            "the log after checkpoint {checkpoint_seq} starts at commit {}",
            first.header.seq
        )));
    }
    if let Some(pair) = records
        .windows(2)
        .find(|p| p[1].header.seq != p[0].header.seq + 1)
    {
        return Err(Error::Corrupt {
            detail: format!(
                "the commit log of {} holds commit {} right after commit {}",
                from.display, pair[1].header.seq, pair[0].header.seq
            ),
        });
    }
    let reached = records.last().map_or(checkpoint_seq, |r| r.header.seq);
    if let Some(newest) = must_reach
        && reached < newest.seq
    {
        return Err(Error::Corrupt {
            detail: format!(
                "checkpoint {} is unreadable ({}), and the log after checkpoint {checkpoint_seq} ends at commit {reached}, before it",
                newest.file, newest.reason
            ),
        });
    }
    let older = older_checkpoints(from, checkpoint_seq).await?;
    Ok(Ok(Snapshot {
        checkpoint: loaded.checkpoint,
        older,
        records,
    }))
}

/// The source's readable checkpoints before `newest` (one that vanished
/// or cannot be read is left out: nothing depends on it).
async fn older_checkpoints(from: &Location, newest: u64) -> Result<Vec<Checkpoint>> {
    let mut older = Vec::new();
    for (seq, path) in list_checkpoints(from.store.as_ref()).await? {
        if seq >= newest {
            continue;
        }
        match read_checkpoint(from, seq, &path).await {
            Ok(checkpoint) => older.push(checkpoint),
            Err(e) => {
                tracing::info!(seq, error = %e, "an older checkpoint of the source is left out")
            }
        }
    }
    Ok(older)
}

/// The commits in the source's log after `after` (as far back as it still
/// holds them; certainly those after `checkpoint_seq`), read without changing it.
async fn read_log_after(
    from: &Location,
    after: u64,
    checkpoint_seq: u64,
) -> Result<Vec<CommitRecord>> {
    match from.kind {
        StoreKind::Local => {
            let root = from
                .local_root
                .clone()
                .ok_or_else(|| Error::internal("a local location without its folder"))?;
            tokio::task::spawn_blocking(move || read_log_online(&root.join(LOG_DIR), after))
                .await
                .map_err(|e| Error::internal(e.to_string()))?
        }
        StoreKind::Object => {
            ObjectLog::new(from.store.clone())?
                .read_back_to(after, checkpoint_seq)
                .await
        }
        StoreKind::Memory => Ok(Vec::new()),
    }
}
