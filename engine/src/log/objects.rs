//! The commit log on object storage: one object per group commit, created
//! with a conditional PUT, so two writers cannot both extend the log.
//!
//! An object is `_log/<number, 20 digits>-<first seq, 20 digits>.log`
//! and holds a segment header and the group's frames ([`super::segment`]'s
//! format; every frame's `synced_len` is the header's length). Numbers
//! count up by one; an object's name is fixed by the one before it (the
//! next number, and the seq after its last commit), so a writer that is
//! behind always aims at a name that already exists. Objects are created
//! with `PutMode::Create` (S3 `If-None-Match: *`): a commit is
//! acknowledged only when its PUT succeeded, and a writer whose PUT finds
//! the name taken has been overtaken, so it stops writing
//! ([`crate::error::Error::Fenced`], 55006) and never forks history.
//!
//! **Taking over.** Opening lists the log, replays it and then *fences* it:
//! it creates an empty object under the next name. A previous writer that
//! is still running aims its next group at exactly that name, so its next
//! commit fails. If the fence's name is taken (the previous writer
//! committed after the listing), opening reads the log again and retries.
//!
//! **Reading.** A PUT is all or nothing, so there is no torn tail here:
//! any damage in an object (one without its header included) is
//! corruption, named with the object and the offset. Numbers must follow
//! each other without a gap from the first object read (checkpoints let
//! older ones go), and two objects with one number would be a fork: both
//! are errors.
//!
//! **Names stay taken.** Deleting objects a checkpoint covers must not
//! free the name a replaced writer would write next, or its late PUT
//! would succeed there. So fences (empty objects) are kept for
//! [`LOG_FENCE_RETENTION`] after they were placed, and a writer checks
//! its lease before every PUT ([`WriteGate`]): once it may have been taken
//! over it writes nothing, and a PUT it had in flight is bounded by the
//! retry timeout, far shorter than the retention.

use std::io;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::Arc;

use super::segment::{SEGMENT_HEADER_BYTES, read_sealed_segment, segment_header};
use super::{CommitRecord, Sink};
use crate::db::gate::WriteGate;
use crate::error::{Error, Result};
use crate::limits::LOG_FENCE_RETENTION;
use crate::storage::verify::store_error;

/// The folder of log objects, under the database's prefix.
pub const LOG_PREFIX: &str = "_log";

/// One log object, as its name and listing describe it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogObject {
    pub number: u64,
    pub first_seq: u64,
    pub path: Path,
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

impl LogObject {
    /// An empty object: a fence placed when a process took the log over.
    fn is_fence(&self) -> bool {
        self.size == SEGMENT_HEADER_BYTES as u64
    }
}

/// Where the next log object goes: its number and its first commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    pub number: u64,
    pub seq: u64,
}

/// The key of log object `number` whose first commit is `first_seq`.
pub fn object_path(number: u64, first_seq: u64) -> Path {
    Path::from(format!("{LOG_PREFIX}/{number:020}-{first_seq:020}.log"))
}

fn parse_name(path: &Path) -> Option<(u64, u64)> {
    let name = path.filename()?.strip_suffix(".log")?;
    let (number, seq) = name.split_once('-')?;
    if number.len() != 20 || seq.len() != 20 {
        return None;
    }
    Some((number.parse().ok()?, seq.parse().ok()?))
}

/// The log objects of one database.
#[derive(Debug, Clone)]
pub struct ObjectLog {
    store: Arc<dyn ObjectStore>,
    /// Where the writer thread runs its PUTs.
    runtime: tokio::runtime::Handle,
}

impl ObjectLog {
    /// The log in `store`; PUTs from the writer thread run on the current runtime.
    pub fn new(store: Arc<dyn ObjectStore>) -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::internal(format!("object-store log needs a runtime: {e}")))?;
        Ok(Self { store, runtime })
    }

    /// Every log object, by number.
    pub async fn list(&self) -> Result<Vec<LogObject>> {
        let prefix = Path::from(LOG_PREFIX);
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(store_error)?;
        let mut objects: Vec<LogObject> = metas
            .into_iter()
            .filter_map(|m| {
                let (number, first_seq) = parse_name(&m.location)?;
                Some(LogObject {
                    number,
                    first_seq,
                    path: m.location,
                    size: m.size,
                    last_modified: m.last_modified,
                })
            })
            .collect();
        objects.sort();
        Ok(objects)
    }

    /// Every commit after `after_seq` (plus earlier ones sharing an object
    /// with them), in order, and where the next object goes.
    pub async fn read_after(&self, after_seq: u64) -> Result<(Vec<CommitRecord>, Tail)> {
        let objects = self.list().await?;
        let needed = &objects[first_needed(&objects, after_seq)..];
        check_chain(needed)?;
        let mut records = Vec::new();
        let mut tail = Tail { number: 1, seq: 1 };
        for object in needed {
            let read = self.read_object(object).await?;
            tail = Tail {
                number: object.number + 1,
                seq: read.last().map_or(object.first_seq, |r| r.header.seq + 1),
            };
            records.extend(read);
        }
        Ok((records, tail))
    }

    /// For a reader that takes what is still there (a backup): the commits
    /// after `must_after`, checked as [`ObjectLog::read_after`] checks
    /// them, and before them as many back to `after_seq` as the objects
    /// still hold without a gap (deleting covered objects leaves gaps
    /// around the fences, which are kept longer).
    pub async fn read_back_to(&self, after_seq: u64, must_after: u64) -> Result<Vec<CommitRecord>> {
        let objects = self.list().await?;
        let needed = first_needed(&objects, must_after);
        check_chain(&objects[needed..])?;
        let mut from = first_needed(&objects, after_seq).min(needed);
        while from < needed && check_chain(&objects[from..=needed]).is_err() {
            from += 1;
        }
        let mut records = Vec::new();
        for object in &objects[from..] {
            records.extend(self.read_object(object).await?);
        }
        Ok(records)
    }

    async fn read_object(&self, object: &LogObject) -> Result<Vec<CommitRecord>> {
        let bytes = async { self.store.get(&object.path).await?.bytes().await }
            .await
            .map_err(store_error)?;
        // Every object this engine writes starts with a header (format 2);
        // one without it is damage, never an empty log.
        read_sealed_segment(object.path.as_ref(), object.first_seq, &bytes)
    }

    /// Place an empty object at `tail`: true if it is ours, false if the
    /// name was taken (another writer committed meanwhile).
    pub async fn fence(&self, tail: Tail) -> Result<bool> {
        let path = object_path(tail.number, tail.seq);
        let bytes = Bytes::from(segment_header(tail.seq));
        match create(self.store.as_ref(), &path, bytes).await {
            Ok(Created::Ours) => Ok(true),
            Ok(Created::Taken) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Delete objects whose commits all lie at or before `seq`; never the
    /// newest, and no fence younger than [`LOG_FENCE_RETENTION`]: a fence
    /// holds the name the writer it replaced would write next, and must
    /// outlive any PUT that writer may still have in flight.
    pub async fn delete_through(&self, seq: u64) -> Result<()> {
        let objects = self.list().await?;
        let now = chrono::Utc::now();
        for pair in objects.windows(2) {
            // A modification time ahead of this clock counts as young.
            let young_fence = pair[0].is_fence()
                && (now - pair[0].last_modified)
                    .to_std()
                    .map_or(true, |age| age < LOG_FENCE_RETENTION);
            if pair[1].first_seq <= seq.saturating_add(1) && !young_fence {
                self.store
                    .delete(&pair[0].path)
                    .await
                    .map_err(store_error)?;
            }
        }
        Ok(())
    }
}

/// Numbers follow each other without a gap, and no number appears twice.
/// The first object holding a commit after `after_seq`: those wholly at
/// or before it are not read (a checkpoint covers them; deleting them may
/// leave gaps).
fn first_needed(objects: &[LogObject], after_seq: u64) -> usize {
    objects
        .iter()
        .enumerate()
        .position(|(index, _)| {
            objects
                .get(index + 1)
                .is_none_or(|next| next.first_seq > after_seq.saturating_add(1))
        })
        .unwrap_or(objects.len())
}

fn check_chain(objects: &[LogObject]) -> Result<()> {
    for pair in objects.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.number == b.number {
            return Err(Error::CorruptLog {
                file: b.path.to_string(),
                offset: 0,
                detail: format!("two log objects carry number {} ({})", a.number, a.path),
            });
        }
        if b.number != a.number + 1 || b.first_seq < a.first_seq {
            return Err(Error::CorruptLog {
                file: b.path.to_string(),
                offset: 0,
                detail: format!(
                    "log object {} follows {}: an object is missing or misnamed",
                    b.path, a.path
                ),
            });
        }
    }
    Ok(())
}

enum Created {
    Ours,
    Taken,
}

/// Create `path` holding `bytes` unless it exists. A name that exists
/// holding exactly `bytes` is ours: a retried PUT whose first attempt
/// landed answers "exists" to the retry.
async fn create(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: Bytes,
) -> object_store::Result<Created> {
    let options = PutOptions::from(PutMode::Create);
    match store
        .put_opts(path, PutPayload::from(bytes.clone()), options)
        .await
    {
        Ok(_) => Ok(Created::Ours),
        Err(object_store::Error::AlreadyExists { .. }) => {
            let stored = store.get(path).await?.bytes().await?;
            Ok(if stored == bytes {
                Created::Ours
            } else {
                Created::Taken
            })
        }
        Err(e) => Err(e),
    }
}

/// The writer thread's end of the object log: where its next group goes.
pub struct ObjectSink {
    log: ObjectLog,
    tail: Tail,
    /// Checked before every PUT: a writer whose lease may have lapsed
    /// writes nothing (the fence it would run into may be gone by now).
    gate: Arc<WriteGate>,
}

impl ObjectSink {
    /// Write groups from `tail` on (just after the fence opening placed).
    pub fn new(log: ObjectLog, tail: Tail, gate: Arc<WriteGate>) -> Self {
        Self { log, tail, gate }
    }
}

impl Sink for ObjectSink {
    fn synced_len(&self) -> u64 {
        SEGMENT_HEADER_BYTES as u64
    }

    fn write_group(&mut self, first_seq: u64, last_seq: u64, frames: &[u8]) -> io::Result<()> {
        if first_seq != self.tail.seq {
            return Err(io::Error::other(format!(
                "log group starts at commit {first_seq}, expected {}",
                self.tail.seq
            )));
        }
        if let Err(e) = self.gate.check() {
            return Err(match e {
                Error::Fenced { detail } => fenced_io_error(detail),
                other => io::Error::other(other.to_string()),
            });
        }
        let mut bytes = segment_header(first_seq);
        bytes.extend_from_slice(frames);
        let path = object_path(self.tail.number, first_seq);
        let store = self.log.store.clone();
        let created = self.log.runtime.block_on(async move {
            create(store.as_ref(), &path, Bytes::from(bytes))
                .await
                .map(|c| (c, path))
        });
        match created {
            Ok((Created::Ours, _)) => {
                self.tail = Tail {
                    number: self.tail.number + 1,
                    seq: last_seq + 1,
                };
                Ok(())
            }
            Ok((Created::Taken, path)) => Err(fenced_io_error(format!(
                "log object {path} was written by another writer: this process no longer owns the database and stops writing"
            ))),
            Err(e) => Err(io::Error::other(LogFailure::Unknown(format!(
                "the PUT of its log object failed ({}): {e}",
                crate::error::StorageFailure::of(&e)
            )))),
        }
    }

    fn rotate(&mut self, _first_seq: u64) -> io::Result<()> {
        Ok(()) // every group is an object of its own
    }
}

/// Why a log write failed, carried inside an `io::Error` to the waiting commits.
#[derive(Debug, Clone)]
enum LogFailure {
    /// Another process took the database over.
    Fenced(String),
    /// The PUT failed after its retries: it may or may not have landed.
    Unknown(String),
}

impl std::fmt::Display for LogFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogFailure::Fenced(detail) | LogFailure::Unknown(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for LogFailure {}

/// An `io::Error` saying this writer was fenced.
pub(crate) fn fenced_io_error(detail: String) -> io::Error {
    io::Error::other(LogFailure::Fenced(detail))
}

fn log_failure(e: &io::Error) -> Option<&LogFailure> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<LogFailure>())
}

/// The same error again (io errors cannot be cloned), keeping what it says.
pub(crate) fn copy_io_error(e: &io::Error) -> io::Error {
    match log_failure(e) {
        Some(failure) => io::Error::other(failure.clone()),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// What a failed log write means for the commits that waited on it:
/// fenced (55006), outcome unknown (08007), or a plain I/O error.
pub(crate) fn commit_error(e: io::Error) -> Error {
    match log_failure(&e) {
        Some(LogFailure::Fenced(detail)) => Error::Fenced {
            detail: detail.clone(),
        },
        Some(LogFailure::Unknown(detail)) => Error::OutcomeUnknown {
            detail: detail.clone(),
        },
        None => Error::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_number() {
        let path = object_path(12, 345);
        assert_eq!(
            path.as_ref(),
            "_log/00000000000000000012-00000000000000000345.log"
        );
        assert_eq!(parse_name(&path), Some((12, 345)));
        assert_eq!(
            parse_name(&Path::from("_log/00000000000000000012.log")),
            None
        );
    }

    #[test]
    fn a_gap_or_a_repeated_number_is_damage() {
        let object = |number, first_seq| LogObject {
            number,
            first_seq,
            path: object_path(number, first_seq),
            size: 100,
            last_modified: chrono::Utc::now(),
        };
        assert!(check_chain(&[object(3, 10), object(4, 12), object(5, 12)]).is_ok());
        assert!(check_chain(&[object(3, 10), object(5, 12)]).is_err());
        assert!(check_chain(&[object(3, 10), object(3, 11)]).is_err());
    }
}
