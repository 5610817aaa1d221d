//! Taking a backup: a consistent snapshot of a database that may be open
//! in another process, copied to the destination incrementally (see the
//! [module page](super)).

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::{
    Copy, Expect, Manifest, Progress, StoredCheckpoint, StoredLog, StoredSide, copy_files,
    existing_location, list_manifests, put_stored, read_manifest, write_manifest,
};
use crate::error::{Error, Result};
use crate::log::objects::ObjectLog;
use crate::log::segment::seal_segment;
use crate::log::{CommitRecord, LOG_DIR, read_log_online};
use crate::storage::checkpoint::{Checkpoint, encode_checkpoint, is_not_found};
use crate::storage::checkpoint::{checkpoint_name, load_newest_checkpoint};
use crate::storage::location::{Location, StoreKind};
use crate::storage::verify::store_error;

/// Times a snapshot is read again when the source moved under it (a
/// checkpoint deleted the log being read) before giving up.
const SNAPSHOT_ATTEMPTS_MAX: usize = 8;
/// The files kept beside a database that a backup carries.
pub const SIDE_FILES: [&str; 2] = [crate::sequences::POSITIONS_FILE, super::USERS_FILE];
/// The top-level folders of a backup destination.
const BACKUP_FOLDERS: [&str; 5] = [super::MANIFEST_DIR, "checkpoints", "log", "data", "side"];

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
    /// The commits the destination can now restore.
    pub restorable: Vec<(u64, u64)>,
}

/// The source as of one commit: its newest checkpoint and the log after it.
struct Snapshot {
    checkpoint: Option<Checkpoint>,
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

/// Back up the database at `source` into `destination` (see the module page).
pub async fn backup(
    source: &str,
    destination: &str,
    progress: &dyn Progress,
) -> Result<BackupReport> {
    let from = existing_location(source, "database")?;
    // Checked before the destination is made: nothing is created inside the source.
    let planned = planned_display(destination);
    if nested(&from.display, &planned) || nested(&planned, &from.display) {
        return Err(Error::InvalidArgument {
            message: format!(
                "cannot back up {} into {planned}: one lies inside the other",
                from.display
            ),
        });
    }
    let to = Location::parse(destination)?;
    let previous = match list_manifests(&to).await?.last() {
        Some((number, _)) => Some(read_manifest(&to, *number).await?),
        None => {
            refuse_foreign_destination(&to).await?;
            None
        }
    };
    // The log is read back to where the previous backup ended, as far as
    // the source still has it, so the backups join without a gap.
    let wanted_after = previous.as_ref().map_or(0, |p| p.through_seq);
    let snapshot = snapshot(&from, wanted_after).await?;
    let (through_seq, through_time_us) = snapshot.through();
    if through_seq == 0 {
        return Err(Error::Missing {
            what: format!("a database with commits at {source}"),
        });
    }
    if let Some(previous) = &previous {
        check_continues(previous, &snapshot, source, destination)?;
    }
    let mut manifest = match previous {
        Some(previous) => previous,
        None => Manifest {
            number: 0,
            created_us: 0,
            source: String::new(),
            through_seq: 0,
            through_time_us: 0,
            checkpoints: Vec::new(),
            logs: Vec::new(),
            data: Vec::new(),
            side: Vec::new(),
        },
    };
    let after = manifest.through_seq;
    manifest.number += 1;
    manifest.created_us = chrono::Utc::now().timestamp_micros();
    manifest.source = from.display.clone();
    manifest.through_seq = through_seq;
    manifest.through_time_us = through_time_us;

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
        restorable: Vec::new(),
    };
    copy_data_files(&from, &to, &snapshot, &mut manifest, &mut report, progress).await?;
    if let Some(checkpoint) = &snapshot.checkpoint
        && !manifest.checkpoints.iter().any(|c| c.seq == checkpoint.seq)
    {
        let bytes = Bytes::from(encode_checkpoint(checkpoint)?);
        let path = format!("checkpoints/{}", checkpoint_name(checkpoint.seq));
        let file = put_stored(&to, path, bytes).await?;
        report.count_copied(file.bytes);
        manifest.checkpoints.push(StoredCheckpoint {
            seq: checkpoint.seq,
            time_us: checkpoint.time_us,
            file,
        });
        manifest.checkpoints.sort_by_key(|c| c.seq);
    }
    let fresh: Vec<CommitRecord> = snapshot
        .records
        .into_iter()
        .filter(|r| r.header.seq > after)
        .collect();
    if let (Some(first), Some(last)) = (fresh.first(), fresh.last()) {
        let (first, last) = (first.header.seq, last.header.seq);
        let bytes = Bytes::from(seal_segment(first, &fresh)?);
        let path = format!("log/{first:020}-{last:020}.log");
        let file = put_stored(&to, path, bytes).await?;
        report.count_copied(file.bytes);
        manifest.logs.push(StoredLog {
            first_seq: first,
            last_seq: last,
            file,
        });
        manifest.logs.sort_by_key(|l| l.first_seq);
    }
    manifest.side = copy_side_files(&from, &to, manifest.number, &mut report).await?;
    write_manifest(&to, &manifest).await?;
    report.restorable = manifest.restorable();
    Ok(report)
}

/// What `Location::parse` will call `url` once it exists: for a local
/// folder, its path with the part that exists resolved as the filesystem
/// resolves it (links included).
fn planned_display(url: &str) -> String {
    if url.contains("://") && !url.starts_with("file://") {
        return url.to_string();
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    let Ok(absolute) = std::path::absolute(path) else {
        return url.to_string();
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute.display().to_string(),
        }
    }
    let mut resolved = existing
        .canonicalize()
        .unwrap_or_else(|_| existing.to_path_buf());
    resolved.extend(rest.iter().rev());
    resolved.display().to_string()
}

/// Whether location `inner` is `outer` or lies under it.
fn nested(outer: &str, inner: &str) -> bool {
    let outer = outer.trim_end_matches('/');
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
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
    snapshot: &Snapshot,
    manifest: &mut Manifest,
    report: &mut BackupReport,
    progress: &dyn Progress,
) -> Result<()> {
    let Some(checkpoint) = &snapshot.checkpoint else {
        return Ok(());
    };
    let mut copies = Vec::new();
    for file in checkpoint.tables.iter().flat_map(|t| t.files.iter()) {
        match manifest.data.iter().find(|d| d.path == file.path) {
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

/// Copy the side files the source has, under `side/<number>/`.
async fn copy_side_files(
    from: &Location,
    to: &Location,
    number: u64,
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
        let file = put_stored(to, format!("side/{number:020}/{name}"), bytes).await?;
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
    let metas: Vec<_> = to
        .store
        .list(None)
        .try_collect()
        .await
        .map_err(store_error)?;
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
    if let Some(newest) = loaded.unreadable.first() {
        // A checkpoint deleted between listing and reading looks the same.
        return Ok(Err(format!(
            "checkpoint {} is unreadable ({})",
            newest.file, newest.reason
        )));
    }
    let checkpoint_seq = loaded.checkpoint.as_ref().map_or(0, |c| c.seq);
    let after = wanted_after.min(checkpoint_seq);
    let records = match read_log_after(from, after).await {
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
    Ok(Ok(Snapshot {
        checkpoint: loaded.checkpoint,
        records,
    }))
}

/// The commits in the source's log after `after`, read without changing it.
async fn read_log_after(from: &Location, after: u64) -> Result<Vec<CommitRecord>> {
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
        StoreKind::Object => Ok(ObjectLog::new(from.store.clone())?
            .read_after(after)
            .await?
            .0),
        StoreKind::Memory => Ok(Vec::new()),
    }
}
