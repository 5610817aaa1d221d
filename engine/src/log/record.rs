//! What one commit looks like in the log, and its byte encoding.
//!
//! A frame (segment format 2) is
//!
//! ```text
//! [payload_len: u32 LE][crc32(payload): u32 LE][synced_len: u64 LE][crc32 of the previous 16 bytes: u32 LE][payload]
//! ```
//!
//! with `payload_len` at most [`LOG_FRAME_BYTES_MAX`] on write and on read.
//! `synced_len` is how many bytes of the segment were durable (fsynced)
//! when the log writer wrote the frame: the reader's proof that damage
//! before it was once acknowledged (see [`super::segment`]). Formats 0 and
//! 1 had only the first two fields ([`FRAME_HEADER_BYTES_V1`]).
//! The payload is `[header_len: u32 LE][header: JSON][batch_len: u32 LE][batch: Arrow IPC stream]…`,
//! with one batch per [`Op::Insert`], in order.

use arrow::buffer::Buffer;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::catalog::{
    CheckDef, ColumnDef, ForeignKeyDef, HistoryPolicy, IndexDef, SequenceDef, TableDef, TagDef,
    UniqueDef, ViewDef,
};
use crate::error::{Error, Result};
use crate::limits::LOG_FRAME_BYTES_MAX;

/// Bytes before the payload in a frame.
pub const FRAME_HEADER_BYTES: usize = 4 + 4 + 8 + 4;
/// Bytes before the payload in a frame of segment formats 0 and 1.
pub const FRAME_HEADER_BYTES_V1: usize = 4 + 4;
/// Every payload starts with its header section, `[len u32]` then this
/// (serde writes `CommitHeader`'s fields in order, `seq` first); the log
/// reader looks for it when it checks for valid frames past damage.
pub const HEADER_JSON_PREFIX: &[u8] = b"{\"seq\":";
/// The smallest payload a real commit has: a header section (`[len]{…}`).
/// A shorter declared length (e.g. zeros where a power cut left a hole) is
/// never a frame, even though crc32 of nothing is 0.
pub const FRAME_PAYLOAD_BYTES_MIN: usize = 4 + 2;

/// One change inside a commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    CreateTable(TableDef),
    DropTable {
        table_id: u64,
    },
    /// A schema change: the table's columns from this commit on.
    SetColumns {
        table_id: u64,
        columns: Vec<ColumnDef>,
        next_column_id: u32,
    },
    /// The table's name from this commit on (its former names stay in the catalog).
    RenameTable {
        table_id: u64,
        name: String,
    },
    /// The table's CHECK constraints from this commit on.
    SetChecks {
        table_id: u64,
        checks: Vec<CheckDef>,
    },
    CreateView(ViewDef),
    /// The table's UNIQUE constraints from this commit on (the index is rebuilt on open).
    SetUniques {
        table_id: u64,
        uniques: Vec<UniqueDef>,
    },
    /// The table's FOREIGN KEY constraints from this commit on.
    SetForeignKeys {
        table_id: u64,
        foreign_keys: Vec<ForeignKeyDef>,
    },
    /// The table's secondary indexes from this commit on.
    SetIndexes {
        table_id: u64,
        indexes: Vec<IndexDef>,
    },
    /// The table's history policy (retention, horizon) from this commit on.
    SetHistory {
        table_id: u64,
        policy: HistoryPolicy,
    },
    CreateSequence(SequenceDef),
    DropSequence {
        id: u64,
    },
    DropView {
        name: String,
    },
    /// A named version (`CREATE TAG`).
    CreateTag(TagDef),
    /// `DROP TAG name`: the live tag of that name ends at this commit.
    DropTag {
        name: String,
    },
    /// New row versions with `_rowid`s `first_rowid..first_rowid + rows`; the batch travels beside the header.
    Insert {
        table_id: u64,
        first_rowid: u64,
        rows: u64,
    },
    /// Row versions retired (updated or deleted) by this commit.
    Retire {
        table_id: u64,
        rowids: Vec<u64>,
    },
}

/// The metadata of a commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitHeader {
    pub seq: u64,
    pub time_us: i64,
    /// Statement kind, e.g. `INSERT`, `CREATE TABLE`.
    pub kind: String,
    pub ops: Vec<Op>,
}

/// A commit as logged: header plus one batch (user columns, physical names) per insert.
#[derive(Debug, Clone)]
pub struct CommitRecord {
    pub header: CommitHeader,
    pub batches: Vec<RecordBatch>,
}

impl CommitRecord {
    /// Encode as one checksummed frame, refusing (54000) a payload over
    /// [`LOG_FRAME_BYTES_MAX`].
    pub fn encode_frame(&self) -> Result<Vec<u8>> {
        self.encode_frame_max(LOG_FRAME_BYTES_MAX)
    }

    /// Encode as one checksummed frame whose payload is at most
    /// `frame_bytes_max` bytes (never more than [`LOG_FRAME_BYTES_MAX`]).
    pub fn encode_frame_max(&self, frame_bytes_max: usize) -> Result<Vec<u8>> {
        debug_assert_eq!(
            self.header
                .ops
                .iter()
                .filter(|op| matches!(op, Op::Insert { .. }))
                .count(),
            self.batches.len(),
            "one batch per insert op"
        );
        let limit = frame_bytes_max.min(LOG_FRAME_BYTES_MAX);
        let header =
            serde_json::to_vec(&self.header).map_err(|e| Error::internal(e.to_string()))?;
        // The frame is built in one buffer sized up front: a bulk commit's
        // batches are hundreds of MB, and growing (and copying) a buffer
        // that large costs more than encoding it.
        let estimate = self.batches.iter().fold(header.len() + 4, |bytes, batch| {
            bytes.saturating_add(batch_bytes_estimate(batch) + 4)
        });
        let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + estimate.min(limit));
        frame.resize(FRAME_HEADER_BYTES, 0);
        push_section(&mut frame, &header);
        // Past the limit, the rest is only counted (for the message).
        let too_large = |frame: &[u8], rest: &[RecordBatch]| -> Result<Vec<u8>> {
            let rest = rest.iter().try_fold(0usize, |bytes, batch| {
                Ok::<_, Error>(bytes.saturating_add(4 + encode_batch(batch)?.len()))
            })?;
            Err(Error::CommitTooLarge {
                bytes: frame.len().saturating_add(rest) as u64,
                limit: limit as u64,
            })
        };
        if frame.len() - FRAME_HEADER_BYTES > limit {
            return too_large(&frame, &self.batches);
        }
        for (i, batch) in self.batches.iter().enumerate() {
            let at = frame.len();
            frame.extend_from_slice(&[0; 4]);
            write_batch(&mut frame, batch)?;
            if frame.len() - FRAME_HEADER_BYTES > limit {
                return too_large(&frame, &self.batches[i + 1..]);
            }
            // `limit` <= LOG_FRAME_BYTES_MAX < 4 GiB, so the length fits a u32.
            let section = (frame.len() - at - 4) as u32;
            frame[at..at + 4].copy_from_slice(&section.to_le_bytes());
        }
        debug_assert!(frame.len() - FRAME_HEADER_BYTES >= FRAME_PAYLOAD_BYTES_MIN);
        seal_in_place(&mut frame);
        Ok(frame)
    }

    /// Decode a payload whose checksum has already been verified.
    pub fn decode_payload(payload: &[u8]) -> Result<Self> {
        let mut sections = Sections {
            bytes: payload,
            pos: 0,
        };
        let header: CommitHeader = serde_json::from_slice(sections.next_section()?)?;
        let inserts = header
            .ops
            .iter()
            .filter(|op| matches!(op, Op::Insert { .. }))
            .count();
        let batches = (0..inserts)
            .map(|_| decode_batch(sections.next_section()?))
            .collect::<Result<Vec<_>>>()?;
        for (op, batch) in header
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Insert { rows, .. } => Some(rows),
                _ => None,
            })
            .zip(&batches)
        {
            if *op != batch.num_rows() as u64 {
                return Err(Error::Corrupt {
                    detail: "insert row count mismatch".into(),
                });
            }
        }
        Ok(Self { header, batches })
    }
}

/// Append `[len u32][bytes]` to `out` (a section shorter than 4 GiB).
fn push_section(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// About the bytes `batch` takes as an IPC stream: its buffers as sliced,
/// and room for the schema and message headers.
fn batch_bytes_estimate(batch: &RecordBatch) -> usize {
    let buffers = batch.columns().iter().fold(0usize, |bytes, column| {
        let sliced = column.to_data().get_slice_memory_size().unwrap_or(0);
        bytes.saturating_add(sliced)
    });
    buffers.saturating_add(1024 + 256 * batch.num_columns())
}

struct Sections<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Sections<'a> {
    fn next_section(&mut self) -> Result<&'a [u8]> {
        let corrupt = || Error::Corrupt {
            detail: "truncated commit payload".into(),
        };
        let len_bytes = self.bytes.get(self.pos..self.pos + 4).ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(len_bytes.try_into().map_err(|_| corrupt())?) as usize;
        let start = self.pos + 4;
        let section = self.bytes.get(start..start + len).ok_or_else(corrupt)?;
        self.pos = start + len;
        Ok(section)
    }
}

/// Arrow IPC stream bytes of one batch.
pub fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(batch_bytes_estimate(batch));
    write_batch(&mut out, batch)?;
    Ok(out)
}

/// Append the Arrow IPC stream of one batch to `out`.
fn write_batch(out: &mut Vec<u8>, batch: &RecordBatch) -> Result<()> {
    let mut writer = StreamWriter::try_new(out, batch.schema_ref())?;
    writer.write(batch)?;
    writer.finish()?;
    Ok(())
}

/// The one batch in an Arrow IPC stream, decoded from the bytes in place:
/// nothing is allocated by a length read from them (arrow's `StreamReader`
/// allocates whatever a message header claims, up to 2^63 bytes). A
/// malformed stream is [`Error::Corrupt`]: arrow-ipc panics on some
/// malformed messages (a buffer offset past the message body, a field of
/// type NONE), so that panic is caught here and named.
pub fn decode_batch(bytes: &[u8]) -> Result<RecordBatch> {
    std::panic::catch_unwind(|| decode_stream(bytes)).unwrap_or_else(|_| {
        Err(Error::Corrupt {
            detail: "malformed Arrow IPC data (the Arrow decoder panicked on it)".into(),
        })
    })
}

fn decode_stream(bytes: &[u8]) -> Result<RecordBatch> {
    let mut decoder = StreamDecoder::new();
    let mut buffer = Buffer::from(bytes);
    let mut batches = Vec::new();
    while let Some(batch) = decoder.decode(&mut buffer)? {
        batches.push(batch);
    }
    decoder.finish()?;
    let schema = decoder.schema().ok_or_else(|| Error::Corrupt {
        detail: "Arrow IPC stream without a schema".into(),
    })?;
    match batches.len() {
        0 => Ok(RecordBatch::new_empty(schema)),
        1 => Ok(batches.remove(0)),
        _ => Ok(arrow::compute::concat_batches(&schema, &batches)?),
    }
}

/// What `commits()` shows of one commit; kept for every commit ever made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub seq: u64,
    pub time_us: i64,
    pub kind: String,
    pub rows_written: u64,
    pub rows_retired: u64,
}

impl CommitHeader {
    /// The summary of this commit for the commit index.
    pub fn info(&self) -> CommitInfo {
        let mut info = CommitInfo {
            seq: self.seq,
            time_us: self.time_us,
            kind: self.kind.clone(),
            rows_written: 0,
            rows_retired: 0,
        };
        for op in &self.ops {
            match op {
                Op::Insert { rows, .. } => info.rows_written += rows,
                Op::Retire { rowids, .. } => info.rows_retired += rowids.len() as u64,
                _ => {}
            }
        }
        info
    }
}

/// A frame around `payload` (of `len` bytes), stamped as written with
/// nothing of its segment durable yet; the log writer stamps the real
/// figure with [`stamp_synced_len`].
pub fn seal_payload(len: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + FRAME_HEADER_BYTES);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    frame.extend_from_slice(&[0; FRAME_HEADER_BYTES - 8]);
    frame.extend_from_slice(payload);
    stamp_synced_len(&mut frame, 0);
    frame
}

/// Seal a frame built in place: `frame` is a zeroed header followed by
/// the payload (shorter than 4 GiB); writes the length and checksums.
fn seal_in_place(frame: &mut [u8]) {
    let payload = &frame[FRAME_HEADER_BYTES..];
    let (len, crc) = (payload.len() as u32, crc32fast::hash(payload));
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    stamp_synced_len(frame, 0);
}

/// Record in `frame`'s header that its segment was durable through byte
/// `synced_len` when the frame was written, and re-seal the header.
pub fn stamp_synced_len(frame: &mut [u8], synced_len: u64) {
    frame[8..16].copy_from_slice(&synced_len.to_le_bytes());
    let crc = crc32fast::hash(&frame[..16]);
    frame[16..FRAME_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
}
