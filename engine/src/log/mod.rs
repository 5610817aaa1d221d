//! The durable commit log.
//!
//! Commits are appended as checksummed frames to segment files
//! `_log/<first seq, 20 digits>.log` on local disk. One background thread
//! owns the open segment: it takes every frame queued while the previous
//! fsync ran, writes them together and fsyncs once (group commit), then
//! acknowledges each. A new segment starts at every memtable persist, so
//! segments wholly covered by a checkpoint can be deleted.
//!
//! Recovery reads segments in order. A bad frame at the end of the last
//! segment is a torn write: it is cut. A bad frame anywhere else is
//! corruption and an error that names the file and offset.

pub mod record;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::error::{Error, Result};
pub use record::{CommitHeader, CommitInfo, CommitRecord, Op};

/// Name of the folder holding log segments, under the database folder.
pub const LOG_DIR: &str = "_log";

enum Request {
    Append {
        frame: Vec<u8>,
        done: oneshot::Sender<std::io::Result<()>>,
    },
    Rotate {
        first_seq: u64,
        done: oneshot::Sender<std::io::Result<()>>,
    },
}

/// Handle to the log writer thread.
#[derive(Debug)]
pub struct CommitLog {
    dir: PathBuf,
    requests: mpsc::Sender<Request>,
}

impl CommitLog {
    /// Open the log in `dir`, appending to a fresh segment that starts at `next_seq`.
    pub fn open(dir: &Path, next_seq: u64) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = create_segment(dir, next_seq)?;
        let (requests, rx) = mpsc::channel();
        let thread_dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("driftdb-log".into())
            .spawn(move || run_writer(thread_dir, file, rx))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            requests,
        })
    }

    /// Queue one frame for the next group fsync; await the receiver with [`wait_durable`].
    pub fn submit(&self, frame: Vec<u8>) -> Result<Durable> {
        let (done, wait) = oneshot::channel();
        self.send(Request::Append { frame, done })?;
        Ok(wait)
    }

    /// Close the current segment and start a new one at `first_seq`.
    pub async fn rotate(&self, first_seq: u64) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.send(Request::Rotate { first_seq, done })?;
        Ok(wait.await.map_err(|_| closed())??)
    }

    fn send(&self, request: Request) -> Result<()> {
        self.requests.send(request).map_err(|_| closed())
    }

    /// Delete segments whose commits are all at or before `seq` (covered by a checkpoint).
    pub fn delete_segments_through(&self, seq: u64) -> Result<()> {
        let segments = list_segments(&self.dir)?;
        // A segment's commits end where the next segment begins.
        for pair in segments.windows(2) {
            if pair[1].0 <= seq + 1 {
                std::fs::remove_file(&pair[0].1)?;
            }
        }
        Ok(())
    }
}

/// Resolves when a submitted frame is on stable storage.
pub type Durable = oneshot::Receiver<std::io::Result<()>>;

/// Wait until a submitted frame is durable.
pub async fn wait_durable(durable: Durable) -> Result<()> {
    Ok(durable.await.map_err(|_| closed())??)
}

fn closed() -> Error {
    Error::Poisoned {
        detail: "commit log writer has stopped".into(),
    }
}

fn create_segment(dir: &Path, first_seq: u64) -> Result<File> {
    let path = dir.join(format!("{first_seq:020}.log"));
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The writer thread: write everything queued, fsync once, acknowledge all.
fn run_writer(dir: PathBuf, mut file: File, rx: mpsc::Receiver<Request>) {
    let mut failed: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        group.extend(rx.try_iter());
        let mut waiters = Vec::with_capacity(group.len());
        let mut buffer = Vec::new();
        for request in group {
            match request {
                Request::Append { frame, done } => {
                    buffer.extend_from_slice(&frame);
                    waiters.push(done);
                }
                Request::Rotate { first_seq, done } => {
                    let result = flush(&mut file, &mut buffer, &mut failed).and_then(|_| {
                        create_segment(&dir, first_seq)
                            .map_err(|e| std::io::Error::other(e.to_string()))
                    });
                    let result = result.map(|new_file| file = new_file);
                    acknowledge(std::mem::take(&mut waiters), &result);
                    let _ = done.send(result);
                }
            }
        }
        let result = flush(&mut file, &mut buffer, &mut failed);
        acknowledge(waiters, &result);
    }
}

fn flush(
    file: &mut File,
    buffer: &mut Vec<u8>,
    failed: &mut Option<String>,
) -> std::io::Result<()> {
    if let Some(reason) = failed {
        // After a failed fsync the file's state is unknown: refuse all further writes.
        return Err(std::io::Error::other(reason.clone()));
    }
    if buffer.is_empty() {
        return Ok(());
    }
    let result = file.write_all(buffer).and_then(|_| file.sync_data());
    buffer.clear();
    if let Err(e) = &result {
        *failed = Some(format!("log write failed: {e}"));
    }
    result
}

fn acknowledge(waiters: Vec<oneshot::Sender<std::io::Result<()>>>, result: &std::io::Result<()>) {
    for waiter in waiters {
        let reply = match result {
            Ok(()) => Ok(()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        };
        let _ = waiter.send(reply);
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

/// Read every commit in the log, in order, cutting a torn tail off the last segment.
pub fn read_log(dir: &Path, record_bytes_max: usize) -> Result<Vec<CommitRecord>> {
    let segments = list_segments(dir)?;
    let mut commits = Vec::new();
    for (index, (_, path)) in segments.iter().enumerate() {
        let is_last = index + 1 == segments.len();
        read_segment(path, is_last, record_bytes_max, &mut commits)?;
    }
    Ok(commits)
}

fn read_segment(
    path: &Path,
    is_last: bool,
    record_bytes_max: usize,
    out: &mut Vec<CommitRecord>,
) -> Result<()> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut offset = 0usize;
    while offset < bytes.len() {
        match parse_frame(&bytes[offset..], record_bytes_max) {
            Ok((record, frame_len)) => {
                out.push(record);
                offset += frame_len;
            }
            Err(detail) if is_last => {
                tracing::warn!(file = %path.display(), offset, %detail, "cutting torn log tail");
                let file = OpenOptions::new().write(true).open(path)?;
                file.set_len(offset as u64)?;
                file.sync_all()?;
                return Ok(());
            }
            Err(detail) => {
                return Err(Error::CorruptLog {
                    file: path.display().to_string(),
                    offset: offset as u64,
                    detail,
                });
            }
        }
    }
    Ok(())
}

fn parse_frame(
    bytes: &[u8],
    record_bytes_max: usize,
) -> std::result::Result<(CommitRecord, usize), String> {
    if bytes.len() < record::FRAME_HEADER_BYTES {
        return Err("short frame header".into());
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if len > record_bytes_max {
        return Err(format!("frame length {len} exceeds limit"));
    }
    let end = record::FRAME_HEADER_BYTES + len;
    let payload = bytes
        .get(record::FRAME_HEADER_BYTES..end)
        .ok_or("short frame payload")?;
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let record = CommitRecord::decode_payload(payload).map_err(|e| e.to_string())?;
    Ok((record, end))
}

#[cfg(test)]
mod tests;
