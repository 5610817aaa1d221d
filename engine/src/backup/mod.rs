//! Online backup and point-in-time restore.
//!
//! `driftdb backup --data SRC --to DEST` copies a consistent state of a
//! database that may be open and committing in another process;
//! `driftdb restore --from DEST --to DATA [--seq N | --time TS]` rebuilds
//! a database from it, optionally cut at a commit. Both work between any
//! two locations (a folder or a bucket prefix, see [`Location`]).
//!
//! **What a backup destination holds.**
//!
//! ```text
//! backups/<number, 20 digits>.json       manifest (envelope DRIFTBAK): what this backup restores from
//! checkpoints/<seq>-<run>.json           a source checkpoint, as the database stores it
//! log/<first>-<last seq>-<run>.log       commits after a checkpoint, one sealed segment
//! data/t<table>/<file>.parquet           the source's data files, under their own names
//! side/<number>-<run>/<name>             sequences.json and users.json as of that backup
//! ```
//!
//! (`<run>`: the microsecond the backup started, so two backups racing into
//! one destination never write one name with different bytes; data files
//! keep their names, which fix their bytes.) Every file is written
//! durably before the manifest that names it, and the manifest last, with
//! a conditional create (the second of two racing backups fails, 55006): a backup interrupted at any point leaves files no
//! manifest names, never a manifest naming a file that is not there. Each
//! manifest is whole by itself: it lists every file of the set with its
//! length and xxh64, so restore reads one manifest and checks every byte
//! it uses against it.
//!
//! **Consistency** ([`take`]). A backup reads the source's newest
//! readable checkpoint, then its log after it, without changing the
//! source (no lease, no lock). On a local log the final group may be in
//! flight: its torn end stops the read, and what was read is fsynced, so
//! every commit backed up is durable on the source. If a checkpoint
//! covered and deleted the log meanwhile, the read starts again. Data
//! files are immutable, so copying them after the log read is safe.
//!
//! **Incremental.** The previous manifest says what the destination
//! holds: data files and checkpoints already there are not copied again,
//! and the log is copied from after the previous backup's last commit.
//! A source whose history does not continue the previous backup's (a
//! different database, or one restored to an earlier point) is refused.
//!
//! **Restorable points** ([`Manifest::restorable`]). A commit `N` can be
//! restored when some checkpoint `C <= N` (or the empty database, `C = 0`)
//! is in the set and its log chunks cover `C+1..=N` without a gap. The
//! source keeps the log only back to its previous checkpoint, so backups
//! taken further apart than two checkpoints leave gaps: the points in a
//! gap are refused, naming the ranges that can be restored.
//!
//! **Restore** ([`restore`]). Refuses a target that is not empty. Marks the
//! target as an unfinished restore ([`RESTORE_MARKER`]: opening it is
//! refused until the restore finishes), copies the data files of `C`
//! (each checked against its length and xxh64), writes checkpoint `C`,
//! then opens the target and appends the commits `C+1..=N` exactly as
//! they were (same seq, same time, same row ids) through the normal log
//! writer, closes it (which persists and checkpoints at `N`) and removes
//! the marker. Damage in the backup is [`Error::CorruptFile`] or
//! [`Error::CorruptLog`] naming the file; nothing is opened.

pub mod restore;
pub mod take;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::envelope::{self, FileKind, Xxh64};
use crate::storage::location::{Location, StoreKind};
use crate::storage::verify::store_error;

pub use restore::{RestorePoint, RestoreReport, restore};
pub use take::{BackupOptions, BackupReport, backup};

/// The folder of manifests in a backup destination.
pub const MANIFEST_DIR: &str = "backups";
/// The envelope of manifests, at the format version this build writes.
pub const MANIFEST_KIND: FileKind = FileKind {
    magic: *b"DRIFTBAK",
    version: 1,
};
/// The server's users file, kept beside the database.
pub const USERS_FILE: &str = "users.json";
/// An object whose presence marks a database as an unfinished restore.
pub const RESTORE_MARKER: &str = "_restore_in_progress";
/// Files copied at once (each is read whole before it is written).
const COPIES_IN_FLIGHT: usize = 4;
/// Bytes reserved up front for a file being copied (it grows past this as read).
const COPY_PREALLOCATE_BYTES_MAX: u64 = 64 << 20;

/// One file in a backup: where, how long, its xxh64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    pub path: String,
    pub bytes: u64,
    pub xxh64: u64,
}

/// A checkpoint of the source, as of commit `seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    pub seq: u64,
    pub time_us: i64,
    pub file: StoredFile,
}

/// Commits `first_seq..=last_seq` of the source's log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredLog {
    pub first_seq: u64,
    pub last_seq: u64,
    pub file: StoredFile,
}

/// A file kept beside the database (sequence positions, the server's users).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSide {
    pub name: String,
    pub file: StoredFile,
}

/// What one backup restores from: every file of the set it needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub number: u64,
    pub created_us: i64,
    /// The source location, for messages.
    pub source: String,
    /// The last commit this backup holds, and its time.
    pub through_seq: u64,
    pub through_time_us: i64,
    /// Oldest first.
    pub checkpoints: Vec<StoredCheckpoint>,
    /// By `first_seq`.
    pub logs: Vec<StoredLog>,
    pub data: Vec<StoredFile>,
    pub side: Vec<StoredSide>,
}

/// How a restore reaches commit `seq`: from a checkpoint (None: the empty
/// database) through these log chunks.
#[derive(Debug)]
pub struct RestorePlan<'a> {
    pub seq: u64,
    pub checkpoint: Option<&'a StoredCheckpoint>,
    pub logs: Vec<&'a StoredLog>,
}

impl Manifest {
    /// The commits that can be restored, as inclusive ranges, ascending.
    pub fn restorable(&self) -> Vec<(u64, u64)> {
        let mut starts: Vec<u64> = self.checkpoints.iter().map(|c| c.seq).collect();
        starts.push(0);
        starts.sort_unstable();
        starts.dedup();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for start in starts {
            let end = self.covered_from(start).min(self.through_seq);
            match ranges.last_mut() {
                Some(last) if start <= last.1 + 1 => last.1 = last.1.max(end),
                _ if start == 0 && end == 0 => {}
                _ => ranges.push((start.max(1), end)),
            }
        }
        ranges
    }

    /// The last commit the log chunks reach without a gap from `start + 1`.
    fn covered_from(&self, start: u64) -> u64 {
        let mut reached = start;
        for log in &self.logs {
            if log.first_seq <= reached + 1 && log.last_seq > reached {
                reached = log.last_seq;
            }
        }
        reached
    }

    /// How to restore commit `seq`: the newest checkpoint at or before it
    /// from which the log reaches it. Refused (22008) outside the
    /// restorable ranges, naming them.
    pub fn plan(&self, seq: u64) -> Result<RestorePlan<'_>> {
        let candidates = self
            .checkpoints
            .iter()
            .rev()
            .filter(|c| c.seq <= seq)
            .map(Some)
            .chain([None]);
        for checkpoint in candidates {
            let start = checkpoint.map_or(0, |c| c.seq);
            if (1..=self.through_seq).contains(&seq) && self.covered_from(start) >= seq {
                let logs = self
                    .logs
                    .iter()
                    .filter(|l| l.last_seq > start && l.first_seq <= seq)
                    .collect();
                return Ok(RestorePlan {
                    seq,
                    checkpoint,
                    logs,
                });
            }
        }
        Err(Error::BadSnapshot {
            message: format!(
                "commit {seq} cannot be restored from backup {}: it holds commits {}",
                self.number,
                describe_ranges(&self.restorable())
            ),
        })
    }
}

/// `1-40, 52-97` (or `none`).
pub fn describe_ranges(ranges: &[(u64, u64)]) -> String {
    if ranges.is_empty() {
        return "none".into();
    }
    ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a long copy reports how far it got (the command line draws bars).
pub trait Progress: Send + Sync {
    /// A phase begins that will move `total_bytes`.
    fn begin(&self, phase: &str, total_bytes: u64);
    /// `bytes` more were moved.
    fn advance(&self, bytes: u64);
    /// The phase is done.
    fn finish(&self);
}

/// Progress nobody watches.
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _phase: &str, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// A location that must already exist (a backup's source, a restore's
/// backup): a local folder is not created by looking at it.
pub(crate) fn existing_location(url: &str, what: &str) -> Result<Location> {
    let is_url = url.contains("://") && !url.starts_with("file://");
    if !is_url {
        let path = std::path::Path::new(url.strip_prefix("file://").unwrap_or(url));
        if path.exists() && !path.is_dir() {
            return Err(Error::InvalidLocation {
                location: url.into(),
                detail: format!("a {what} is a folder, and this is a file"),
            });
        }
        if !path.is_dir() {
            return Err(Error::Missing {
                what: format!("{what} {url}"),
            });
        }
    }
    lasting_location(url, what)
}

/// A location that keeps what is written to it (not `memory://`).
pub(crate) fn lasting_location(url: &str, what: &str) -> Result<Location> {
    if url.is_empty() {
        return Err(Error::InvalidLocation {
            location: url.into(),
            detail: format!("no {what} given"),
        });
    }
    let location = Location::parse(url)?;
    if location.kind == StoreKind::Memory {
        return Err(Error::InvalidLocation {
            location: url.into(),
            detail: format!("memory:// keeps nothing, so it cannot be a {what}"),
        });
    }
    Ok(location)
}

/// Refuse (22023) to `verb` from `from` into `url` when one lies inside
/// the other; checked before `url` is created.
pub(crate) fn refuse_overlap(from: &Location, url: &str, verb: &str) -> Result<()> {
    let (a, b) = (normal_form(&from.display), normal_form(url));
    if nested(&a, &b) || nested(&b, &a) {
        return Err(Error::InvalidArgument {
            message: format!(
                "cannot {verb} {} into {url}: one lies inside the other",
                from.display
            ),
        });
    }
    Ok(())
}

/// A location as one spelling: object-store URLs with the scheme in lower
/// case (`s3a` as `s3`) and no trailing `/`; a local folder as the
/// filesystem resolves the part of it that exists (links included) with
/// `.` and `..` resolved in the rest.
fn normal_form(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && !scheme.eq_ignore_ascii_case("file")
    {
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "s3a" => "s3".to_string(),
            other => other.to_string(),
        };
        return format!("{scheme}://{}", rest.trim_end_matches('/'));
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    let Ok(absolute) = std::path::absolute(path) else {
        return url.to_string();
    };
    // The longest prefix that exists, resolved by the filesystem; the rest lexically.
    let parts: Vec<_> = absolute.components().collect();
    let mut split = parts.len();
    while split > 1
        && !parts[..split]
            .iter()
            .collect::<std::path::PathBuf>()
            .exists()
    {
        split -= 1;
    }
    let existing: std::path::PathBuf = parts[..split].iter().collect();
    let mut resolved = existing.canonicalize().unwrap_or(existing);
    for part in &parts[split..] {
        match part {
            std::path::Component::ParentDir => {
                resolved.pop();
            }
            std::path::Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    resolved.display().to_string()
}

/// Whether location `inner` is `outer` or lies under it.
fn nested(outer: &str, inner: &str) -> bool {
    let outer = outer.trim_end_matches('/');
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Every manifest in a backup destination, as (number, path), ascending.
pub(crate) async fn list_manifests(location: &Location) -> Result<Vec<(u64, Path)>> {
    let prefix = Path::from(MANIFEST_DIR);
    let metas: Vec<_> = location
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(store_error)?;
    let mut manifests: Vec<(u64, Path)> = metas
        .into_iter()
        .filter_map(|m| {
            let name = m.location.filename()?.strip_suffix(".json")?;
            Some((name.parse().ok()?, m.location))
        })
        .collect();
    manifests.sort();
    Ok(manifests)
}

/// The newest manifest that reads back whole, the number the next backup
/// takes, and the newer ones that are damaged (each named with why; a
/// WARN for each): a damaged manifest never blocks the set, the one
/// before it still stands.
pub(crate) async fn newest_manifest(location: &Location) -> Result<NewestManifest> {
    let listed = list_manifests(location).await?;
    let next_number = listed.last().map_or(1, |(n, _)| n + 1);
    let mut damaged = Vec::new();
    for (number, _) in listed.iter().rev() {
        match read_manifest(location, *number).await {
            Ok(manifest) => {
                return Ok(NewestManifest {
                    manifest: Some(manifest),
                    next_number,
                    damaged,
                });
            }
            Err(e @ (Error::Corrupt { .. } | Error::FormatVersion { .. })) => {
                tracing::warn!(error = %e, "a backup manifest is damaged; using the one before it");
                damaged.push(e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(NewestManifest {
        manifest: None,
        next_number,
        damaged,
    })
}

/// What [`newest_manifest`] found.
pub(crate) struct NewestManifest {
    pub manifest: Option<Manifest>,
    pub next_number: u64,
    /// Newer manifests that are damaged, as messages.
    pub damaged: Vec<String>,
}

/// The path of manifest `number`.
fn manifest_path(number: u64) -> String {
    format!("{MANIFEST_DIR}/{number:020}.json")
}

/// Read and check a manifest.
pub(crate) async fn read_manifest(location: &Location, number: u64) -> Result<Manifest> {
    let path = manifest_path(number);
    let bytes = get_all(location.store.as_ref(), &path).await?;
    let file = describe(location, &path);
    let opened = envelope::open(MANIFEST_KIND, &file, &bytes)?;
    let manifest: Manifest = serde_json::from_slice(opened.body()).map_err(|e| Error::Corrupt {
        detail: format!("{file}: {e}"),
    })?;
    if manifest.number != number {
        return Err(Error::Corrupt {
            detail: format!("{file} holds manifest {}", manifest.number),
        });
    }
    Ok(manifest)
}

/// Store a manifest (after every file it names), only if no other backup
/// took its number meanwhile (55006 then).
pub(crate) async fn write_manifest(location: &Location, manifest: &Manifest) -> Result<()> {
    let body = serde_json::to_vec(manifest).map_err(|e| Error::internal(e.to_string()))?;
    let bytes = envelope::seal(MANIFEST_KIND, &body);
    let path = manifest_path(manifest.number);
    if let Some(root) = &location.local_root {
        let dir = root.join(MANIFEST_DIR);
        let fs = location.fs.clone();
        tokio::task::spawn_blocking(move || fs.create_dir_all(&dir))
            .await
            .map_err(|e| Error::internal(e.to_string()))??;
    }
    if location.create_file_exclusive(&path, bytes.into()).await? {
        return Ok(());
    }
    Err(Error::Busy {
        what: format!("backup destination {}", location.display),
        detail: format!(
            "another backup wrote backup {} meanwhile; run this one again",
            manifest.number
        ),
    })
}

/// `path` in `location`, for messages.
pub(crate) fn describe(location: &Location, path: &str) -> String {
    format!("{}/{path}", location.display.trim_end_matches('/'))
}

/// The whole object at `path`.
async fn get_all(store: &dyn ObjectStore, path: &str) -> Result<Bytes> {
    let path = Path::from(path);
    let got = store.get(&path).await.map_err(store_error)?;
    got.bytes().await.map_err(store_error)
}

/// A small file of the backup, checked against its manifest entry.
pub(crate) async fn read_stored(location: &Location, file: &StoredFile) -> Result<Bytes> {
    let bytes = match get_all(location.store.as_ref(), &file.path).await {
        Err(e) if crate::storage::checkpoint::is_not_found(&e) => {
            return Err(damaged(location, file, "it is missing".into()));
        }
        other => other?,
    };
    check_stored(location, file, &bytes)?;
    Ok(bytes)
}

fn check_stored(location: &Location, file: &StoredFile, bytes: &[u8]) -> Result<()> {
    let found = envelope::xxh64(bytes);
    if bytes.len() as u64 != file.bytes || found != file.xxh64 {
        return Err(damaged(
            location,
            file,
            format!(
                "{} bytes with xxh64 {found:016x}, the manifest says {} bytes with xxh64 {:016x}",
                bytes.len(),
                file.bytes,
                file.xxh64
            ),
        ));
    }
    Ok(())
}

fn damaged(location: &Location, file: &StoredFile, detail: String) -> Error {
    Error::Corrupt {
        detail: format!("{} is damaged: {detail}", describe(location, &file.path)),
    }
}

/// What a copied file must be (None: unknown, recorded as found).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    pub bytes: u64,
    pub xxh64: Option<u64>,
}

/// One file to copy: from `from` in the source to `to` in the destination.
#[derive(Debug, Clone)]
pub(crate) struct Copy {
    pub from: String,
    pub to: String,
    pub expect: Expect,
}

/// Copy `copies` from one location to another, `COPIES_IN_FLIGHT` at a
/// time, each checked against what it must be while it streams through;
/// returns what was written.
pub(crate) async fn copy_files(
    from: &Location,
    to: &Location,
    copies: Vec<Copy>,
    progress: &dyn Progress,
) -> Result<Vec<StoredFile>> {
    futures::stream::iter(copies)
        .map(|copy| copy_file(from, to, copy, progress))
        .buffered(COPIES_IN_FLIGHT)
        .try_collect()
        .await
}

async fn copy_file(
    from: &Location,
    to: &Location,
    copy: Copy,
    progress: &dyn Progress,
) -> Result<StoredFile> {
    let source = describe(from, &copy.from);
    let got = match from.store.get(&Path::from(copy.from.as_str())).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::CorruptFile {
                file: source,
                detail: "it is missing".into(),
            });
        }
        Err(e) => return Err(store_error(e)),
    };
    let mut stream = got.into_stream();
    let mut hash = Xxh64::default();
    // The expected length only sizes the first allocation, within reason.
    let mut bytes = Vec::with_capacity(copy.expect.bytes.min(COPY_PREALLOCATE_BYTES_MAX) as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(store_error)?;
        hash.update(&chunk);
        bytes.extend_from_slice(&chunk);
        progress.advance(chunk.len() as u64);
    }
    let found = StoredFile {
        path: copy.to.clone(),
        bytes: bytes.len() as u64,
        xxh64: hash.finish(),
    };
    let expected_hash = copy.expect.xxh64.unwrap_or(found.xxh64);
    if found.bytes != copy.expect.bytes || found.xxh64 != expected_hash {
        return Err(Error::CorruptFile {
            file: source,
            detail: format!(
                "{} bytes with xxh64 {:016x}, expected {} bytes with xxh64 {expected_hash:016x}",
                found.bytes, found.xxh64, copy.expect.bytes
            ),
        });
    }
    to.put_file(&copy.to, bytes.into()).await?;
    Ok(found)
}

/// Store small `bytes` at `path` and describe them for a manifest.
pub(crate) async fn put_stored(to: &Location, path: String, bytes: Bytes) -> Result<StoredFile> {
    let file = StoredFile {
        bytes: bytes.len() as u64,
        xxh64: envelope::xxh64(&bytes),
        path,
    };
    to.put_file(&file.path, bytes).await?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> StoredFile {
        StoredFile {
            path: path.into(),
            bytes: 0,
            xxh64: 0,
        }
    }

    fn manifest(checkpoints: &[u64], logs: &[(u64, u64)], through: u64) -> Manifest {
        Manifest {
            number: 1,
            created_us: 0,
            source: "src".into(),
            through_seq: through,
            through_time_us: 0,
            checkpoints: checkpoints
                .iter()
                .map(|s| StoredCheckpoint {
                    seq: *s,
                    time_us: 0,
                    file: file("c"),
                })
                .collect(),
            logs: logs
                .iter()
                .map(|(a, b)| StoredLog {
                    first_seq: *a,
                    last_seq: *b,
                    file: file("l"),
                })
                .collect(),
            data: Vec::new(),
            side: Vec::new(),
        }
    }

    #[test]
    fn restorable_points_follow_checkpoints_and_unbroken_log() {
        // Backup 1 from the empty database through 40; backup 2 found the
        // log gone back to checkpoint 50 and took 51..=97 after it.
        let m = manifest(&[30, 50], &[(1, 40), (51, 97)], 97);
        assert_eq!(m.restorable(), vec![(1, 40), (50, 97)]);
        assert_eq!(describe_ranges(&m.restorable()), "1-40, 50-97");
        assert!(m.plan(45).is_err());
        assert_eq!(m.plan(50).unwrap().checkpoint.unwrap().seq, 50);
        assert!(m.plan(50).unwrap().logs.is_empty());
        let p = m.plan(35).unwrap();
        assert_eq!(p.checkpoint.unwrap().seq, 30);
        assert_eq!(p.logs.len(), 1);
        assert!(m.plan(20).unwrap().checkpoint.is_none());
        assert!(m.plan(98).is_err());
        assert!(m.plan(0).is_err());
    }

    #[test]
    fn a_set_without_log_restores_only_its_checkpoints() {
        let m = manifest(&[12], &[], 12);
        assert_eq!(m.restorable(), vec![(12, 12)]);
        assert!(m.plan(11).is_err());
        assert!(m.plan(12).is_ok());
    }
}
