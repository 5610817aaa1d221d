//! Restoring a database from a backup, at its newest commit or at an
//! earlier one (see the [module page](super)).

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::{
    Copy, Expect, Manifest, Progress, RESTORE_MARKER, RestorePlan, copy_files, describe,
    existing_location, lasting_location, newest_manifest, read_stored, refuse_overlap,
};
use crate::db::{Database, format_time};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::log::CommitRecord;
use crate::log::segment::read_sealed_segment;
use crate::storage::checkpoint::{Checkpoint, decode_checkpoint, write_checkpoint};
use crate::storage::location::Location;
use crate::storage::verify::store_error;

/// Which commit to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePoint {
    /// The newest commit of the newest backup.
    Latest,
    /// This commit (seq).
    Seq(u64),
    /// The last commit at or before this time (µs since the epoch, UTC).
    Time(i64),
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub backup: u64,
    pub target: String,
    /// The commit restored, and its time.
    pub seq: u64,
    pub time_us: i64,
    /// The checkpoint it started from (0: the empty database).
    pub checkpoint_seq: u64,
    pub commits_replayed: usize,
    pub files_copied: usize,
    pub bytes_copied: u64,
    /// Newer backups passed over because their manifests are damaged.
    pub skipped: Vec<String>,
}

/// Restore the newest backup in `backup` into the empty location `target`.
pub async fn restore(
    backup: &str,
    target: &str,
    point: RestorePoint,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let from = existing_location(backup, "backup")?;
    let newest = newest_manifest(&from).await?;
    let Some(manifest) = newest.manifest else {
        return match newest.damaged.into_iter().next() {
            Some(damage) => Err(Error::Corrupt { detail: damage }),
            None => Err(Error::Missing {
                what: format!("a backup in {backup}"),
            }),
        };
    };
    let number = manifest.number;
    refuse_overlap(&from, target, "restore")?;
    let to = lasting_location(target, "restore target")?;
    refuse_non_empty(&to).await?;
    let seq = match point {
        RestorePoint::Latest => manifest.through_seq,
        RestorePoint::Seq(seq) => seq,
        RestorePoint::Time(time_us) => seq_at_time(&from, &manifest, time_us).await?,
    };
    let plan = manifest.plan(seq)?;
    // Everything small is read and checked before the target is touched.
    let checkpoint = read_plan_checkpoint(&from, &plan).await?;
    let records = read_plan_log(&from, &plan).await?;
    let time_us = match (records.last(), &checkpoint) {
        (Some(last), _) => last.header.time_us,
        (None, Some(c)) => c.time_us,
        (None, None) => 0,
    };

    let mut side = Vec::with_capacity(manifest.side.len());
    for stored in &manifest.side {
        side.push((stored.name.clone(), read_stored(&from, &stored.file).await?));
    }

    // The marker is created only where nothing is: of two restores racing
    // into one target, one goes on.
    let marker = Bytes::from(format!(
        "restore of backup {number} from {}\n",
        from.display
    ));
    if !to.create_file_exclusive(RESTORE_MARKER, marker).await? {
        return Err(Error::Busy {
            what: format!("restore target {}", to.display),
            detail: "another restore is writing into it".into(),
        });
    }
    let (files_copied, bytes_copied) =
        copy_checkpoint_files(&from, &to, &manifest, checkpoint.as_ref(), progress).await?;
    for (name, bytes) in side {
        to.put_file(&name, bytes).await?;
    }
    if let Some(checkpoint) = &checkpoint {
        write_checkpoint(&to, checkpoint).await?;
    }
    let commits_replayed = records.len();
    let db = Database::open_restoring(to.clone(), Limits::default()).await?;
    db.append_recorded(records).await?;
    db.close().await?;
    remove_marker(&to).await?;
    Ok(RestoreReport {
        backup: number,
        target: to.display,
        seq,
        time_us,
        checkpoint_seq: plan.checkpoint.map_or(0, |c| c.seq),
        commits_replayed,
        files_copied,
        bytes_copied,
        skipped: newest.damaged,
    })
}

/// A restore writes only into an empty location.
async fn refuse_non_empty(to: &Location) -> Result<()> {
    let first = to.store.list(None).try_next().await.map_err(store_error)?;
    match first {
        Some(meta) => Err(Error::ObjectNotInPrerequisiteState {
            message: format!(
                "restore target {} is not empty (it holds {}): restore into an empty folder or prefix",
                to.display, meta.location
            ),
        }),
        None => Ok(()),
    }
}

/// The last commit at or before `time_us` that the backup holds.
async fn seq_at_time(from: &Location, manifest: &Manifest, time_us: i64) -> Result<u64> {
    let mut times: Vec<(u64, i64)> = Vec::new();
    let newest = manifest.checkpoints.last();
    if let Some(stored) = newest {
        let checkpoint = read_checkpoint(from, stored.seq, &stored.file).await?;
        times.extend(checkpoint.commits.iter().map(|c| (c.seq, c.time_us)));
    }
    let start = newest.map_or(0, |c| c.seq);
    for log in manifest.logs.iter().filter(|l| l.last_seq > start) {
        for record in read_log_chunk(from, log).await? {
            times.push((record.header.seq, record.header.time_us));
        }
    }
    times.sort_unstable();
    times.dedup();
    let count = times.partition_point(|(_, t)| *t <= time_us);
    let Some(&(seq, _)) = count.checked_sub(1).and_then(|i| times.get(i)) else {
        return Err(Error::BadSnapshot {
            message: match times.first() {
                Some((_, first)) => format!(
                    "timestamp {} is before the first commit in the backup ({})",
                    format_time(time_us),
                    format_time(*first)
                ),
                None => "the backup holds no commit times".into(),
            },
        });
    };
    // A later commit the backup has no time for could still be at or before `time_us`.
    let next_known = times.get(count).map(|(s, _)| *s);
    if seq < manifest.through_seq && next_known != Some(seq + 1) {
        return Err(Error::BadSnapshot {
            message: format!(
                "timestamp {} falls where backup {} holds no log after commit {seq}",
                format_time(time_us),
                manifest.number
            ),
        });
    }
    Ok(seq)
}

async fn read_checkpoint(
    from: &Location,
    seq: u64,
    file: &super::StoredFile,
) -> Result<Checkpoint> {
    let bytes = read_stored(from, file).await?;
    decode_checkpoint(&describe(from, &file.path), seq, &bytes)
}

async fn read_plan_checkpoint(
    from: &Location,
    plan: &RestorePlan<'_>,
) -> Result<Option<Checkpoint>> {
    match plan.checkpoint {
        Some(stored) => Ok(Some(read_checkpoint(from, stored.seq, &stored.file).await?)),
        None => Ok(None),
    }
}

/// The commits after the plan's checkpoint through its seq, checked.
async fn read_plan_log(from: &Location, plan: &RestorePlan<'_>) -> Result<Vec<CommitRecord>> {
    let start = plan.checkpoint.map_or(0, |c| c.seq);
    let mut records: Vec<CommitRecord> = Vec::new();
    for log in &plan.logs {
        for record in read_log_chunk(from, log).await? {
            let seq = record.header.seq;
            let next = records.last().map_or(start + 1, |r| r.header.seq + 1);
            if seq > start && seq <= plan.seq && seq >= next {
                if seq != next {
                    return Err(Error::CorruptFile {
                        file: describe(from, &log.file.path),
                        detail: format!("commit {seq} where commit {next} was due"),
                    });
                }
                records.push(record);
            }
        }
    }
    let reached = records.last().map_or(start, |r| r.header.seq);
    if reached != plan.seq {
        return Err(Error::Corrupt {
            detail: format!(
                "the log in {} reaches commit {reached}, not {}",
                from.display, plan.seq
            ),
        });
    }
    Ok(records)
}

/// One log chunk, its bytes checked against the manifest and its frames
/// against their checksums, holding exactly the commits it is named for.
async fn read_log_chunk(from: &Location, log: &super::StoredLog) -> Result<Vec<CommitRecord>> {
    let bytes = read_stored(from, &log.file).await?;
    let file = describe(from, &log.file.path);
    let records = read_sealed_segment(&file, log.first_seq, &bytes)?;
    let first = records.first().map(|r| r.header.seq);
    let last = records.last().map(|r| r.header.seq);
    if first != Some(log.first_seq) || last != Some(log.last_seq) {
        return Err(Error::CorruptFile {
            file,
            detail: format!(
                "holds commits {first:?} to {last:?}, the manifest says {} to {}",
                log.first_seq, log.last_seq
            ),
        });
    }
    Ok(records)
}

/// Copy the data files `checkpoint` names, each checked against the manifest.
async fn copy_checkpoint_files(
    from: &Location,
    to: &Location,
    manifest: &Manifest,
    checkpoint: Option<&Checkpoint>,
    progress: &dyn Progress,
) -> Result<(usize, u64)> {
    let held: std::collections::HashMap<&str, &super::StoredFile> =
        manifest.data.iter().map(|d| (d.path.as_str(), d)).collect();
    let mut copies = Vec::new();
    for file in checkpoint
        .iter()
        .flat_map(|c| c.tables.iter().flat_map(|t| t.all_files()))
    {
        let stored = held.get(file.path.as_str()).copied();
        let agrees = |s: &&super::StoredFile| {
            s.bytes == file.bytes && file.xxh64.is_none_or(|x| x == s.xxh64)
        };
        let Some(stored) = stored.filter(agrees) else {
            return Err(Error::Corrupt {
                detail: format!(
                    "backup {} in {} does not hold data file {} as its checkpoint describes it",
                    manifest.number, from.display, file.path
                ),
            });
        };
        copies.push(Copy {
            from: stored.path.clone(),
            to: file.path.clone(),
            expect: Expect {
                bytes: stored.bytes,
                xxh64: Some(stored.xxh64),
            },
        });
    }
    let total: u64 = copies.iter().map(|c| c.expect.bytes).sum();
    progress.begin("data files", total);
    let copied = copy_files(from, to, copies, progress).await;
    progress.finish();
    let copied = copied?;
    Ok((copied.len(), copied.iter().map(|f| f.bytes).sum()))
}

/// The restore finished: the target may be opened.
async fn remove_marker(to: &Location) -> Result<()> {
    match &to.local_root {
        Some(root) => {
            let fs = to.fs.clone();
            let root = root.clone();
            tokio::task::spawn_blocking(move || {
                fs.remove_file(&root.join(RESTORE_MARKER))?;
                fs.sync_dir(&root)
            })
            .await
            .map_err(|e| Error::internal(e.to_string()))??;
        }
        None => {
            let marker = object_store::path::Path::from(RESTORE_MARKER);
            to.store.delete(&marker).await.map_err(store_error)?;
        }
    }
    Ok(())
}
