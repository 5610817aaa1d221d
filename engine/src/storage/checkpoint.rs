//! Checkpoints: the catalog, file list, retirements and counters as of one
//! `seq`, so that opening a database replays only the log after it.
//!
//! Stored as `_checkpoints/<seq, 20 digits>.json`: JSON in a checksummed,
//! versioned envelope (magic `DRIFTCKP`, see [`crate::storage::envelope`]).
//! On local disk a checkpoint is written atomically and durably (temp
//! file, fsync, rename, fsync the folder). The newest *readable* one wins:
//! an empty, garbled or checksum-failing newest checkpoint is skipped with
//! a WARN naming it, and the one before it is used (persist keeps the
//! previous checkpoint and the log it needs until the next is durable).
//! A checkpoint in an unknown format version is an error, never skipped.

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, TableDef};
use crate::error::{Error, Result};
use crate::log::CommitInfo;
use crate::storage::DataFile;
use crate::storage::envelope::{self, FileKind};
use crate::storage::location::Location;

/// The folder of checkpoints, under the database folder.
pub const CHECKPOINT_DIR: &str = "_checkpoints";
/// The envelope of checkpoint files, at the format version this build writes.
pub const CHECKPOINT_KIND: FileKind = FileKind {
    magic: *b"DRIFTCKP",
    version: 1,
};

/// The stored part of one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableCheckpoint {
    pub id: u64,
    pub files: Vec<DataFile>,
    /// (`_rowid`, retiring `seq`) pairs, sorted by rowid.
    pub retired: Vec<(u64, u64)>,
    /// History-tier files (see [`DataFile::retired_seqs`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<DataFile>,
}

impl TableCheckpoint {
    /// Every data file it names, current tier then history tier.
    pub fn all_files(&self) -> impl Iterator<Item = &DataFile> {
        self.files.iter().chain(&self.history)
    }
}

/// The database as of `seq`, minus the memtable (which the log after `seq` rebuilds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub time_us: i64,
    pub next_rowid: u64,
    pub catalog: Catalog,
    pub commits: Vec<CommitInfo>,
    pub tables: Vec<TableCheckpoint>,
}

/// The file name of checkpoint `seq`.
pub fn checkpoint_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

/// The seq a checkpoint file is named for.
fn checkpoint_seq(path: &Path) -> Option<u64> {
    path.filename()?.strip_suffix(".json")?.parse().ok()
}

/// The bytes of a checkpoint file.
pub fn encode_checkpoint(checkpoint: &Checkpoint) -> Result<Vec<u8>> {
    let body = serde_json::to_vec(checkpoint).map_err(|e| Error::internal(e.to_string()))?;
    Ok(envelope::seal(CHECKPOINT_KIND, &body))
}

/// A checkpoint from the bytes of `file`, which is named for `seq`.
pub fn decode_checkpoint(file: &str, seq: u64, bytes: &[u8]) -> Result<Checkpoint> {
    let opened = envelope::open(CHECKPOINT_KIND, file, bytes)?;
    let checkpoint: Checkpoint =
        serde_json::from_slice(opened.body()).map_err(|e| Error::Corrupt {
            detail: format!("{file}: {e}"),
        })?;
    if checkpoint.seq != seq {
        return Err(Error::Corrupt {
            detail: format!("{file} holds checkpoint {}", checkpoint.seq),
        });
    }
    check_consistent(&checkpoint).map_err(|detail| Error::Corrupt {
        detail: format!("{file}: {detail}"),
    })?;
    Ok(checkpoint)
}

/// Check what the engine takes for granted of a checkpoint it opens, which
/// a checksum does not prove (a damaged file from before the envelope, or
/// a writer bug, could break it; found by fuzzing, each was a panic): every
/// table has a schema version whose column ids are distinct; its keys and
/// constraints name columns it has; ids leave room for the next one; each
/// table's files hold disjoint `_rowid` ranges in order; row and byte
/// counts add up without overflow.
fn check_consistent(checkpoint: &Checkpoint) -> std::result::Result<(), String> {
    for table in &checkpoint.catalog.tables {
        check_table(table)?;
    }
    if checkpoint.catalog.max_table_id() == u64::MAX {
        return Err("an id leaves no room for the next one".into());
    }
    let (mut rows, mut bytes) = (0u64, 0u64);
    for table in &checkpoint.tables {
        let mut previous_max: Option<u64> = None;
        for file in &table.files {
            let ordered = file.min_rowid <= file.max_rowid
                && previous_max.is_none_or(|max| max < file.min_rowid);
            rows = rows.checked_add(file.rows).ok_or("row counts overflow")?;
            bytes = bytes
                .checked_add(file.bytes)
                .ok_or("byte counts overflow")?;
            if !ordered {
                return Err(format!("data file {} is out of _rowid order", file.path));
            }
            previous_max = Some(file.max_rowid);
        }
        for file in &table.history {
            match file.retired_seqs {
                Some((first, last)) if first <= last && last <= checkpoint.seq => {}
                _ => {
                    return Err(format!(
                        "history file {} has no valid retirements",
                        file.path
                    ));
                }
            }
            rows = rows.checked_add(file.rows).ok_or("row counts overflow")?;
        }
    }
    Ok(())
}

fn check_table(table: &TableDef) -> std::result::Result<(), String> {
    let name = &table.name;
    let Some(current) = table.versions.last() else {
        return Err(format!("table {name} has no schema version"));
    };
    for version in &table.versions {
        let mut ids: Vec<u32> = version.columns.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("table {name} has two columns with one id"));
        }
    }
    let has = |id: &u32| current.columns.iter().any(|c| c.id == *id);
    let constraints = table
        .uniques
        .iter()
        .map(|u| &u.columns)
        .chain(table.foreign_keys.iter().map(|f| &f.columns));
    for columns in constraints {
        if columns.is_empty() || !columns.iter().all(has) {
            return Err(format!(
                "a constraint of table {name} names columns it does not have"
            ));
        }
    }
    if !table.primary_key.iter().all(has) {
        return Err(format!(
            "the primary key of table {name} names columns it does not have"
        ));
    }
    Ok(())
}

/// Write a checkpoint: atomically and durably on local disk, one PUT on object storage.
pub async fn write_checkpoint(location: &Location, checkpoint: &Checkpoint) -> Result<()> {
    let bytes = encode_checkpoint(checkpoint)?;
    let path = format!("{CHECKPOINT_DIR}/{}", checkpoint_name(checkpoint.seq));
    location.put_file(&path, bytes.into()).await
}

/// A checkpoint that could not be read.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub seq: u64,
    pub file: String,
    pub reason: String,
}

/// The newest readable checkpoint, and the newer ones that were not.
#[derive(Debug, Default)]
pub struct LoadedCheckpoint {
    pub checkpoint: Option<Checkpoint>,
    /// Newest first.
    pub unreadable: Vec<Unreadable>,
}

/// The newest readable checkpoint, skipping (with a WARN) unreadable newer ones.
pub async fn load_newest_checkpoint(location: &Location) -> Result<LoadedCheckpoint> {
    let mut loaded = LoadedCheckpoint::default();
    for (seq, path) in list_checkpoints(location.store.as_ref())
        .await?
        .into_iter()
        .rev()
    {
        match read_checkpoint(location, seq, &path).await {
            Ok(checkpoint) => {
                loaded.checkpoint = Some(checkpoint);
                return Ok(loaded);
            }
            Err(e @ Error::FormatVersion { .. }) => return Err(e),
            // A read that failed on the way says nothing about the file:
            // falling back would replay from an older point for no reason.
            Err(e @ (Error::Io(_) | Error::ObjectStore(_))) if !is_not_found(&e) => return Err(e),
            Err(e) => {
                let file = display_path(location, &path);
                tracing::warn!(
                    file = %file,
                    error = %e,
                    "checkpoint {seq} is unreadable; falling back to the one before it and replaying the log from there"
                );
                loaded.unreadable.push(Unreadable {
                    seq,
                    file,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(loaded)
}

pub(crate) fn is_not_found(e: &Error) -> bool {
    match e {
        Error::ObjectStore(object_store::Error::NotFound { .. }) => true,
        Error::Io(io) => io.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

/// Read and check checkpoint `seq` at `path`.
pub async fn read_checkpoint(location: &Location, seq: u64, path: &Path) -> Result<Checkpoint> {
    let bytes = location.store.get(path).await?.bytes().await?;
    decode_checkpoint(&display_path(location, path), seq, &bytes)
}

/// Delete checkpoints older than `seq`.
pub async fn delete_checkpoints_before(location: &Location, seq: u64) -> Result<()> {
    for (_, path) in list_checkpoints(location.store.as_ref())
        .await?
        .into_iter()
        .filter(|(s, _)| *s < seq)
    {
        match &location.local_root {
            Some(root) => location.fs.remove_file(&root.join(path.as_ref()))?,
            None => location.store.delete(&path).await?,
        }
    }
    Ok(())
}

/// Every checkpoint file as (seq, path), oldest first.
pub async fn list_checkpoints(store: &dyn ObjectStore) -> Result<Vec<(u64, Path)>> {
    let prefix = Path::from(CHECKPOINT_DIR);
    let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
    let mut checkpoints: Vec<(u64, Path)> = metas
        .into_iter()
        .filter_map(|m| Some((checkpoint_seq(&m.location)?, m.location)))
        .collect();
    checkpoints.sort();
    Ok(checkpoints)
}

/// A stored path as the user finds it (a file under the folder, or the key).
fn display_path(location: &Location, path: &Path) -> String {
    match &location.local_root {
        Some(root) => root.join(path.as_ref()).display().to_string(),
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(seq: u64) -> Checkpoint {
        Checkpoint {
            seq,
            time_us: 7,
            next_rowid: 1,
            catalog: Catalog::default(),
            commits: Vec::new(),
            tables: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_newest_readable_checkpoint_wins() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::parse(dir.path().to_str().unwrap()).unwrap();
        for seq in [3, 5] {
            write_checkpoint(&location, &checkpoint(seq)).await.unwrap();
        }
        let newest = dir.path().join(CHECKPOINT_DIR).join(checkpoint_name(5));
        for damage in [Vec::new(), b"{\"seq\":".to_vec(), {
            let mut bytes = std::fs::read(&newest).unwrap();
            let last = bytes.len() - 2;
            bytes[last] ^= 0x04;
            bytes
        }] {
            std::fs::write(&newest, &damage).unwrap();
            let loaded = load_newest_checkpoint(&location).await.unwrap();
            assert_eq!(loaded.checkpoint.map(|c| c.seq), Some(3));
            assert_eq!(loaded.unreadable.len(), 1);
            assert!(loaded.unreadable[0].file.ends_with(&checkpoint_name(5)));
        }
        // An unknown format version is an error, not a fallback.
        let mut newer = encode_checkpoint(&checkpoint(5)).unwrap();
        newer[8] = 2;
        std::fs::write(&newest, &newer).unwrap();
        assert!(matches!(
            load_newest_checkpoint(&location).await,
            Err(Error::FormatVersion { found: 2, .. })
        ));
        // A checkpoint under another checkpoint's name is damage.
        std::fs::write(&newest, encode_checkpoint(&checkpoint(4)).unwrap()).unwrap();
        let loaded = load_newest_checkpoint(&location).await.unwrap();
        assert_eq!(loaded.checkpoint.map(|c| c.seq), Some(3));
        delete_checkpoints_before(&location, 5).await.unwrap();
        let left = list_checkpoints(location.store.as_ref()).await.unwrap();
        assert_eq!(left.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![5]);
    }
}
