//! The durable commit log.
//!
//! Commits are appended as checksummed frames to segment files
//! `_log/<first seq, 20 digits>.log` on local disk (format: [`segment`]).
//! One background thread owns the open segment: it takes every frame
//! queued while the previous fsync ran, stamps each with how much of the
//! segment is durable so far, writes them together and fsyncs once (group
//! commit), then acknowledges each. A new segment starts at
//! every memtable persist; it is created whole with its header (temp file,
//! fsync, rename, fsync the folder) before any frame goes into it.
//!
//! Recovery reads the segments a checkpoint needs, in order, and fsyncs
//! the last one (a killed process may have left frames there unsynced).
//! Only a torn tail of the last segment is cut (see [`segment`] for the
//! rule); any other bad frame is corruption and an error naming the file
//! and offset.
//! All file changes go through [`DurableFs`].

pub mod objects;
pub mod record;
pub mod segment;

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::storage::durable::{AppendFile, DurableFs};
pub use record::{CommitHeader, CommitInfo, CommitRecord, Op};
use segment::{
    SEGMENT_HEADER_BYTES, SegmentEnd, quarantine_tail, scan_segment, segment_header, segment_name,
};

/// Name of the folder holding log segments, under the database folder.
pub const LOG_DIR: &str = "_log";

enum Request {
    Append {
        seq: u64,
        frame: Vec<u8>,
        done: oneshot::Sender<std::io::Result<()>>,
    },
    Rotate {
        first_seq: u64,
        done: oneshot::Sender<std::io::Result<()>>,
    },
}

/// Where a group of frames goes: appended to a local segment and fsynced,
/// or put as one new object. The writer thread drives it.
pub(crate) trait Sink: Send {
    /// Bytes of the current segment on stable storage, stamped into each
    /// frame as its `synced_len` (see [`segment`]).
    fn synced_len(&self) -> u64;
    /// Make `frames` (commits `first_seq..=last_seq`, in order) durable.
    fn write_group(&mut self, first_seq: u64, last_seq: u64, frames: &[u8]) -> std::io::Result<()>;
    /// Go on in a new segment whose first commit is `first_seq`.
    fn rotate(&mut self, first_seq: u64) -> std::io::Result<()>;
}

/// Where the log lives, for deleting what checkpoints cover.
#[derive(Debug, Clone)]
enum Place {
    Segments {
        dir: PathBuf,
        fs: Arc<dyn DurableFs>,
    },
    Objects(objects::ObjectLog),
}

/// Handle to the log writer thread (clones share it).
#[derive(Debug, Clone)]
pub struct CommitLog {
    place: Place,
    requests: mpsc::Sender<Request>,
}

impl CommitLog {
    /// Open the log in `dir`, appending to a fresh segment that starts at `next_seq`.
    pub fn open(fs: Arc<dyn DurableFs>, dir: &Path, next_seq: u64) -> Result<Self> {
        fs.create_dir_all(dir)?;
        let sink = SegmentSink {
            dir: dir.to_path_buf(),
            fs: fs.clone(),
            file: create_segment(fs.as_ref(), dir, next_seq)?,
            first_seq: next_seq,
            synced_len: SEGMENT_HEADER_BYTES as u64,
        };
        let place = Place::Segments {
            dir: dir.to_path_buf(),
            fs,
        };
        Self::start(place, Box::new(sink))
    }

    /// Open the log on object storage, writing objects after the fence
    /// `log` placed at open (see [`objects`]).
    pub(crate) fn open_objects(log: objects::ObjectLog, sink: objects::ObjectSink) -> Result<Self> {
        Self::start(Place::Objects(log), Box::new(sink))
    }

    fn start(place: Place, sink: Box<dyn Sink>) -> Result<Self> {
        let (requests, rx) = mpsc::channel();
        let writer = Writer { sink, failed: None };
        std::thread::Builder::new()
            .name("driftdb-log".into())
            .spawn(move || writer.run(rx))?;
        Ok(Self { place, requests })
    }

    /// Queue the frame of commit `seq` for the next group write; await the
    /// receiver with [`wait_durable`]. Frames must come in seq order.
    pub fn submit(&self, seq: u64, frame: Vec<u8>) -> Result<Durable> {
        let (done, wait) = oneshot::channel();
        self.send(Request::Append { seq, frame, done })?;
        Ok(wait)
    }

    /// Make everything queued durable and go on in a new segment starting
    /// at `first_seq` (a no-op switch when the open segment starts there:
    /// it holds no frame yet).
    pub async fn rotate(&self, first_seq: u64) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.send(Request::Rotate { first_seq, done })?;
        Ok(wait.await.map_err(|_| closed())??)
    }

    fn send(&self, request: Request) -> Result<()> {
        self.requests.send(request).map_err(|_| closed())
    }

    /// Delete segments (or log objects) whose commits are all at or before
    /// `seq` (a durable checkpoint at or after `seq` no longer needs them).
    /// The open segment, and the newest log object, are never deleted.
    pub async fn delete_through(&self, seq: u64) -> Result<()> {
        match &self.place {
            Place::Segments { dir, fs } => {
                let (dir, fs) = (dir.clone(), fs.clone());
                tokio::task::spawn_blocking(move || delete_segments_through(fs.as_ref(), &dir, seq))
                    .await
                    .map_err(|e| Error::internal(e.to_string()))?
            }
            Place::Objects(log) => log.delete_through(seq).await,
        }
    }
}

/// Delete the segments in `dir` whose commits all lie at or before `seq`.
fn delete_segments_through(fs: &dyn DurableFs, dir: &Path, seq: u64) -> Result<()> {
    let segments = list_segments(dir)?;
    // A segment's commits end where the next segment begins.
    for pair in segments.windows(2) {
        if pair[1].0 <= seq.saturating_add(1) {
            fs.remove_file(&pair[0].1)?;
        }
    }
    Ok(())
}

/// Resolves when a submitted frame is on stable storage.
pub type Durable = oneshot::Receiver<std::io::Result<()>>;

/// Wait until a submitted frame is durable. A write refused because
/// another writer took the database over is [`Error::Fenced`]; a log PUT
/// that failed after its retries is [`Error::OutcomeUnknown`].
pub async fn wait_durable(durable: Durable) -> Result<()> {
    durable
        .await
        .map_err(|_| closed())?
        .map_err(objects::commit_error)
}

fn closed() -> Error {
    Error::Poisoned {
        detail: "commit log writer has stopped".into(),
    }
}

/// Create segment `first_seq` whole with its header, durably, replacing
/// an empty one of that name left by an earlier run; open it for appending.
fn create_segment(fs: &dyn DurableFs, dir: &Path, first_seq: u64) -> Result<Box<dyn AppendFile>> {
    let name = segment_name(first_seq);
    fs.write_file_atomic(dir, &name, &segment_header(first_seq))?;
    Ok(fs.open_append(&dir.join(name))?)
}

/// The open segment file on local disk.
struct SegmentSink {
    dir: PathBuf,
    fs: Arc<dyn DurableFs>,
    file: Box<dyn AppendFile>,
    /// First seq of the open segment.
    first_seq: u64,
    /// Bytes of the open segment on stable storage (header included).
    synced_len: u64,
}

impl Sink for SegmentSink {
    fn synced_len(&self) -> u64 {
        self.synced_len
    }

    fn write_group(&mut self, _first: u64, _last: u64, frames: &[u8]) -> std::io::Result<()> {
        self.file.append(frames)?;
        self.file.sync_data()?;
        self.synced_len += frames.len() as u64;
        Ok(())
    }

    fn rotate(&mut self, first_seq: u64) -> std::io::Result<()> {
        if first_seq == self.first_seq {
            return Ok(());
        }
        self.file = create_segment(self.fs.as_ref(), &self.dir, first_seq)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.first_seq = first_seq;
        self.synced_len = SEGMENT_HEADER_BYTES as u64;
        Ok(())
    }
}

/// The state of the log writer thread.
struct Writer {
    sink: Box<dyn Sink>,
    /// After a failed write the log's state is unknown: every later request
    /// fails (with the first failure, so a fenced writer stays fenced).
    failed: Option<std::io::Error>,
}

/// The frames of one group write, and the commits they hold.
#[derive(Default)]
struct Group {
    frames: Vec<u8>,
    seqs: Option<(u64, u64)>,
    waiters: Vec<oneshot::Sender<std::io::Result<()>>>,
}

impl Writer {
    /// Write everything queued as one group, acknowledge all; repeat.
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut group = Group::default();
            for request in std::iter::once(first).chain(rx.try_iter()) {
                match request {
                    Request::Append {
                        seq,
                        mut frame,
                        done,
                    } => {
                        record::stamp_synced_len(&mut frame, self.sink.synced_len());
                        group.frames.extend_from_slice(&frame);
                        group.seqs = Some((group.seqs.map_or(seq, |(first, _)| first), seq));
                        group.waiters.push(done);
                    }
                    Request::Rotate { first_seq, done } => {
                        let result = self
                            .flush(std::mem::take(&mut group))
                            .and_then(|()| self.switch_segment(first_seq));
                        let _ = done.send(result);
                    }
                }
            }
            let _ = self.flush(group);
        }
    }

    /// Write one group and acknowledge its commits with the outcome.
    fn flush(&mut self, group: Group) -> std::io::Result<()> {
        let result = match (&self.failed, group.seqs) {
            (Some(e), _) => Err(objects::copy_io_error(e)),
            (None, None) => Ok(()),
            (None, Some((first, last))) => self.sink.write_group(first, last, &group.frames),
        };
        if let Err(e) = &result
            && self.failed.is_none()
        {
            self.failed = Some(objects::copy_io_error(e));
        }
        for waiter in group.waiters {
            let _ = waiter.send(result.as_ref().map(|_| ()).map_err(objects::copy_io_error));
        }
        result
    }

    fn switch_segment(&mut self, first_seq: u64) -> std::io::Result<()> {
        if let Some(e) = &self.failed {
            return Err(objects::copy_io_error(e));
        }
        let result = self.sink.rotate(first_seq);
        if let Err(e) = &result {
            self.failed = Some(objects::copy_io_error(e));
        }
        result
    }
}

/// Segments in `dir` as (first seq, path), oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(segments),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let path = entry?.path();
        let first_seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first_seq) = first_seq {
            segments.push((first_seq, path));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Every commit in the log after `after_seq`, in order (plus any earlier
/// ones that share a segment with them). Segments wholly at or before
/// `after_seq` are not read. A torn tail of the last segment is saved
/// aside and cut; any other damage is [`Error::CorruptLog`].
pub fn read_log(fs: &dyn DurableFs, dir: &Path, after_seq: u64) -> Result<Vec<CommitRecord>> {
    let mut commits = Vec::new();
    for (first_seq, path, is_last) in segments_after(dir, after_seq)? {
        read_segment(fs, &path, first_seq, is_last, &mut commits)?;
    }
    Ok(commits)
}

/// The segments holding commits after `after_seq`, as (first seq, path,
/// whether it is the last segment); those wholly at or before it are left out.
fn segments_after(dir: &Path, after_seq: u64) -> Result<Vec<(u64, PathBuf, bool)>> {
    let segments = list_segments(dir)?;
    let count = segments.len();
    let next_firsts: Vec<Option<u64>> = segments
        .iter()
        .skip(1)
        .map(|(seq, _)| Some(*seq))
        .chain([None])
        .collect();
    Ok(segments
        .into_iter()
        .zip(next_firsts)
        .enumerate()
        .filter(|(_, (_, next))| next.is_none_or(|next| next > after_seq.saturating_add(1)))
        .map(|(index, ((first_seq, path), _))| (first_seq, path, index + 1 == count))
        .collect())
}

/// The durable commits after `after_seq` in the local log of a database
/// that may be open in another process, read without changing anything
/// (a backup's read). The final group may be in flight: a torn or
/// incomplete frame at the end of the last segment ends the read, as it
/// would recovery (that group was not acknowledged). What was read is
/// then fsynced, so every commit returned is durable on the source.
/// Damage anywhere else is [`Error::CorruptLog`]; a segment deleted while
/// reading (a checkpoint covered it) is an `io::ErrorKind::NotFound`.
pub fn read_log_online(dir: &Path, after_seq: u64) -> Result<Vec<CommitRecord>> {
    let mut commits = Vec::new();
    for (first_seq, path, is_last) in segments_after(dir, after_seq)? {
        let bytes = std::fs::read(&path)?;
        let file = path.display().to_string();
        let scan = scan_segment(&file, first_seq, &bytes)?;
        commits.extend(scan.records);
        match scan.end {
            SegmentEnd::Clean | SegmentEnd::Torn { .. } if is_last => {
                std::fs::File::open(&path)?.sync_all()?;
            }
            SegmentEnd::Clean => {}
            SegmentEnd::Torn { offset, detail } | SegmentEnd::Corrupt { offset, detail } => {
                return Err(Error::CorruptLog {
                    file,
                    offset,
                    detail,
                });
            }
        }
    }
    Ok(commits)
}

fn read_segment(
    fs: &dyn DurableFs,
    path: &Path,
    first_seq: u64,
    is_last: bool,
    out: &mut Vec<CommitRecord>,
) -> Result<()> {
    let bytes = std::fs::read(path)?;
    let file = path.display().to_string();
    let scan = scan_segment(&file, first_seq, &bytes)?;
    out.extend(scan.records);
    match scan.end {
        // The frames were read from the page cache: a process that crashed
        // may have written them without its fsync. Make them durable before
        // anything (a new segment, a new commit) relies on them.
        SegmentEnd::Clean if is_last => Ok(fs.sync_file(path)?),
        SegmentEnd::Clean => Ok(()),
        SegmentEnd::Torn { offset, detail } if is_last => {
            let cut = bytes.len() as u64 - offset;
            tracing::warn!(
                file = %file,
                offset,
                bytes_cut = cut,
                %detail,
                "cutting a torn tail off the commit log (an interrupted, unacknowledged write); the cut bytes are kept in {file}.torn-{offset}"
            );
            quarantine_tail(fs, path, &bytes, offset)?;
            fs.truncate(path, offset)?;
            Ok(())
        }
        SegmentEnd::Torn { offset, detail } | SegmentEnd::Corrupt { offset, detail } => {
            Err(Error::CorruptLog {
                file,
                offset,
                detail,
            })
        }
    }
}

#[cfg(test)]
mod tests;
