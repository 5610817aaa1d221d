//! Log segment files: the header, and reading frames back with the rule
//! that tells a torn tail from corruption.
//!
//! A segment is `_log/<first seq, 20 digits>.log`:
//!
//! ```text
//! [magic "DRIFTLOG"][format version: u32 LE][first seq: u64 LE][crc32 of the previous 20 bytes: u32 LE]
//! [frame][frame]…
//! ```
//!
//! The header is written with the segment, atomically (temp file, fsync,
//! rename, fsync the folder), before any frame. A segment without the
//! magic is from before format 1: frames start at byte 0.
//!
//! **Torn tail or corruption.** Frames are appended in groups and
//! fsynced; a commit is acknowledged after its group's fsync. Every frame
//! records how many bytes of its segment were durable when it was written
//! (`synced_len`, format 2). Scanning stops at the first frame that is
//! incomplete (the file ends inside it), declares an impossible length, or
//! fails a checksum: damage at offset `d`. Then the rest of the file is
//! searched for checksum-valid frames:
//! - a valid frame whose `synced_len` is past `d` proves the damaged bytes
//!   were durable, hence acknowledged, before it was written: the damage
//!   is *corruption*, an error naming the file and offset; nothing is cut;
//! - otherwise, and only in the last segment, it is a *torn tail*: the
//!   write of the final group, which a power cut can leave with any of its
//!   pages unwritten (an earlier frame of the group zeros, a later one
//!   intact). It is cut, loudly (a WARN naming file, offset and length),
//!   and the cut bytes are first saved beside the segment as
//!   `<segment>.torn-<offset>`, so nothing is destroyed.
//!
//! This is PostgreSQL's rule (an invalid record ends the WAL) narrowed by
//! the look-ahead. The one case it cannot tell apart is a bit flip in the
//! final group after its fsync completed, with nothing written after it:
//! on disk that is the same as a power cut during that group's write.
//! Format-1 segments have no `synced_len`: there any valid frame after the
//! damage makes it corruption. A frame whose checksum is right but whose
//! payload does not decode is corruption wherever it is. Segments before
//! the last were fsynced whole before the log moved on, so any damage in
//! them is corruption.

use std::path::Path;

use super::record::{
    self, CommitRecord, FRAME_HEADER_BYTES, FRAME_HEADER_BYTES_V1, FRAME_PAYLOAD_BYTES_MIN,
};
use crate::error::{Error, Result};
use crate::limits::LOG_FRAME_BYTES_MAX;
use crate::storage::envelope::fixed;

/// The first bytes of every segment written since format 1.
pub const SEGMENT_MAGIC: [u8; 8] = *b"DRIFTLOG";
/// The segment format this build writes; it also reads format 1 and the
/// headerless format 0.
pub const SEGMENT_VERSION: u32 = 2;
/// The first format whose frames carry `synced_len` and a header checksum.
const SYNCED_LEN_VERSION: u32 = 2;
/// Bytes of the segment header.
pub const SEGMENT_HEADER_BYTES: usize = 8 + 4 + 8 + 4;

/// The header of a new segment whose first commit is `first_seq`.
pub fn segment_header(first_seq: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    header.extend_from_slice(&SEGMENT_MAGIC);
    header.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header.extend_from_slice(&first_seq.to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header
}

/// The file name of the segment starting at `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.log")
}

/// A whole segment written in one piece (a log object, a backup's log
/// chunk): the header, then `records` as frames each stamped durable
/// through the header (nothing of the piece exists before all of it does).
pub fn seal_segment(first_seq: u64, records: &[CommitRecord]) -> Result<Vec<u8>> {
    let mut bytes = segment_header(first_seq);
    for record in records {
        let mut frame = record.encode_frame()?;
        record::stamp_synced_len(&mut frame, SEGMENT_HEADER_BYTES as u64);
        bytes.extend_from_slice(&frame);
    }
    Ok(bytes)
}

/// The commits of a segment written in one piece: it must have its
/// header and end cleanly, since nothing can tear it; any damage (a
/// missing header included) is [`Error::CorruptLog`] naming `file`.
pub fn read_sealed_segment(file: &str, first_seq: u64, bytes: &[u8]) -> Result<Vec<CommitRecord>> {
    if bytes.len() < SEGMENT_HEADER_BYTES || !bytes.starts_with(&SEGMENT_MAGIC) {
        return Err(Error::CorruptLog {
            file: file.to_string(),
            offset: 0,
            detail: format!("{} bytes without a segment header", bytes.len()),
        });
    }
    let scan = scan_segment(file, first_seq, bytes)?;
    match scan.end {
        SegmentEnd::Clean => Ok(scan.records),
        SegmentEnd::Torn { offset, detail } | SegmentEnd::Corrupt { offset, detail } => {
            Err(Error::CorruptLog {
                file: file.to_string(),
                offset,
                detail,
            })
        }
    }
}

/// How a scanned segment ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Every byte belongs to a valid frame.
    Clean,
    /// Damage from `offset` to the end that no later valid frame proves
    /// was durable: a torn tail if this is the last segment.
    Torn { offset: u64, detail: String },
    /// Damage at `offset` that is not a torn tail.
    Corrupt { offset: u64, detail: String },
}

/// What one segment holds.
#[derive(Debug)]
pub struct SegmentScan {
    /// Format version (0: a segment from before headers).
    pub version: u32,
    pub records: Vec<CommitRecord>,
    pub end: SegmentEnd,
    pub len: u64,
}

/// Scan the bytes of segment `first_seq` (named for messages by `file`).
/// Never fails on damage: that is reported in [`SegmentScan::end`]; only
/// an unknown format version is an error.
pub fn scan_segment(file: &str, first_seq: u64, bytes: &[u8]) -> Result<SegmentScan> {
    let len = bytes.len() as u64;
    let (version, start) = match check_header(file, first_seq, bytes)? {
        Ok(found) => found,
        Err(detail) => {
            return Ok(SegmentScan {
                version: SEGMENT_VERSION,
                records: Vec::new(),
                end: SegmentEnd::Corrupt { offset: 0, detail },
                len,
            });
        }
    };
    let mut records = Vec::new();
    let mut offset = start;
    while offset < bytes.len() {
        match parse_frame(&bytes[offset..], version) {
            Ok((frame, _)) if frame.synced_len.is_some_and(|s| s > offset as u64) => {
                let detail = format!(
                    "the frame of commit {} claims the segment was durable through byte {}, past its own start",
                    frame.record.header.seq,
                    frame.synced_len.unwrap_or_default()
                );
                return Ok(SegmentScan {
                    version,
                    records,
                    end: SegmentEnd::Corrupt {
                        offset: offset as u64,
                        detail,
                    },
                    len,
                });
            }
            Ok((frame, frame_len)) => {
                records.push(frame.record);
                offset += frame_len;
            }
            Err(FrameError::Invalid(detail)) => {
                let end = judge_damage(bytes, offset, version, detail);
                return Ok(SegmentScan {
                    version,
                    records,
                    end,
                    len,
                });
            }
            Err(FrameError::Undecodable(detail)) => {
                return Ok(SegmentScan {
                    version,
                    records,
                    end: SegmentEnd::Corrupt {
                        offset: offset as u64,
                        detail,
                    },
                    len,
                });
            }
        }
    }
    Ok(SegmentScan {
        version,
        records,
        end: SegmentEnd::Clean,
        len,
    })
}

/// Damage at `offset`: corruption if a later valid frame proves the
/// damaged bytes were durable before it was written, else a torn tail
/// (see the module page).
fn judge_damage(bytes: &[u8], offset: usize, version: u32, detail: String) -> SegmentEnd {
    let damaged = offset as u64;
    let mut unsynced = Vec::new();
    for later in valid_frames_after(bytes, offset + 1, version) {
        let (at, seq) = (later.at, later.seq);
        match later.synced_len {
            None => {
                return SegmentEnd::Corrupt {
                    offset: damaged,
                    detail: format!(
                        "{detail}, yet a valid frame (commit {seq}) follows at byte {at}"
                    ),
                };
            }
            // A frame cannot have been written after bytes past its own
            // start were durable: no proof (e.g. a frame inside a payload).
            Some(synced) if synced > at as u64 => {}
            Some(synced) if synced > damaged => {
                return SegmentEnd::Corrupt {
                    offset: damaged,
                    detail: format!(
                        "{detail}, yet the valid frame of commit {seq} at byte {at} was written when the segment was durable through byte {synced}"
                    ),
                };
            }
            Some(_) => unsynced.push(seq),
        }
    }
    let detail = match (unsynced.first(), unsynced.last()) {
        (Some(first), Some(last)) => format!(
            "{detail}; the valid frames after it (commits {first}..={last}) were written in the same unsynced group"
        ),
        _ => detail,
    };
    SegmentEnd::Torn {
        offset: damaged,
        detail,
    }
}

/// `Ok(Ok((version, first frame offset)))`, `Ok(Err(damage))`, or an
/// unknown version.
fn check_header(
    file: &str,
    first_seq: u64,
    bytes: &[u8],
) -> Result<std::result::Result<(u32, usize), String>> {
    if !bytes.starts_with(&SEGMENT_MAGIC) {
        return Ok(match is_format_0(bytes) {
            true => Ok((0, 0)), // no header: frames from byte 0
            false => {
                Err("segment header damaged (no DRIFTLOG magic, and no format-0 frame)".into())
            }
        });
    }
    let Some(header) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        return Ok(Err("segment header cut short".into()));
    };
    // The version first (as PostgreSQL checks pg_control): a later format may lay out the rest differently.
    let version = u32::from_le_bytes(fixed(&header[8..12]));
    if !(1..=SEGMENT_VERSION).contains(&version) {
        return Err(Error::FormatVersion {
            file: file.to_string(),
            found: version,
            supported: SEGMENT_VERSION,
        });
    }
    let crc = u32::from_le_bytes(fixed(&header[20..24]));
    if crc32fast::hash(&header[..20]) != crc {
        return Ok(Err("segment header checksum mismatch".into()));
    }
    let header_seq = u64::from_le_bytes(fixed(&header[12..20]));
    if header_seq != first_seq {
        return Ok(Err(format!(
            "segment header says it starts at commit {header_seq}, its name says {first_seq}"
        )));
    }
    Ok(Ok((version, SEGMENT_HEADER_BYTES)))
}

/// Whether `bytes`, which lack the magic, are a segment from before
/// headers: those start with a frame whose payload starts with the header
/// section. A damaged magic must not pass for one: then the whole segment
/// would read as a torn tail. (A file too short to tell is format 0: a
/// headed segment is created whole with its header, never shorter.)
fn is_format_0(bytes: &[u8]) -> bool {
    let lead = FRAME_HEADER_BYTES_V1 + 4;
    match bytes.get(lead..lead + record::HEADER_JSON_PREFIX.len()) {
        Some(start) => start == record::HEADER_JSON_PREFIX,
        None => true,
    }
}

enum FrameError {
    /// Incomplete, impossible length, or checksum mismatch: torn or corrupt.
    Invalid(String),
    /// The checksums hold but the payload is not a commit: corrupt.
    Undecodable(String),
}

/// A decoded frame.
struct Frame {
    record: CommitRecord,
    /// Bytes of the segment durable when it was written (format 2 on).
    synced_len: Option<u64>,
}

/// The frame at the start of `bytes` and its length in bytes.
fn parse_frame(bytes: &[u8], version: u32) -> std::result::Result<(Frame, usize), FrameError> {
    let checked = checked_frame(bytes, version)?;
    let record = CommitRecord::decode_payload(checked.payload)
        .map_err(|e| FrameError::Undecodable(format!("checksum holds but {e}")))?;
    let frame_len = checked.header_len + checked.payload.len();
    let frame = Frame {
        record,
        synced_len: checked.synced_len,
    };
    Ok((frame, frame_len))
}

/// A frame whose checksums hold, not yet decoded.
struct CheckedFrame<'a> {
    header_len: usize,
    synced_len: Option<u64>,
    payload: &'a [u8],
}

/// The checksum-verified frame at the start of `bytes`.
fn checked_frame(bytes: &[u8], version: u32) -> std::result::Result<CheckedFrame<'_>, FrameError> {
    let (header_len, synced_len) = frame_header(bytes, version)?;
    let len = u32::from_le_bytes(fixed(&bytes[..4])) as usize;
    let crc = u32::from_le_bytes(fixed(&bytes[4..8]));
    if !(FRAME_PAYLOAD_BYTES_MIN..=LOG_FRAME_BYTES_MAX).contains(&len) {
        return Err(FrameError::Invalid(format!(
            "frame declares {len} payload bytes, outside {FRAME_PAYLOAD_BYTES_MIN}..={LOG_FRAME_BYTES_MAX}"
        )));
    }
    let Some(payload) = bytes.get(header_len..header_len + len) else {
        return Err(FrameError::Invalid(format!(
            "frame of {len} payload bytes cut short: the file ends {} bytes into it",
            bytes.len() - header_len
        )));
    };
    let actual = crc32fast::hash(payload);
    if actual != crc {
        return Err(FrameError::Invalid(format!(
            "frame checksum mismatch (stored crc32 {crc:08x}, computed {actual:08x})"
        )));
    }
    Ok(CheckedFrame {
        header_len,
        synced_len,
        payload,
    })
}

/// The frame header's length and (format 2 on) its verified `synced_len`.
fn frame_header(
    bytes: &[u8],
    version: u32,
) -> std::result::Result<(usize, Option<u64>), FrameError> {
    let header_len = frame_header_len(version);
    let Some(header) = bytes.get(..header_len) else {
        return Err(FrameError::Invalid(format!(
            "frame header cut short ({} of {header_len} bytes)",
            bytes.len()
        )));
    };
    if version < SYNCED_LEN_VERSION {
        return Ok((header_len, None));
    }
    let crc = u32::from_le_bytes(fixed(&header[16..20]));
    if crc32fast::hash(&header[..16]) != crc {
        return Err(FrameError::Invalid("frame header checksum mismatch".into()));
    }
    Ok((header_len, Some(u64::from_le_bytes(fixed(&header[8..16])))))
}

/// Bytes before the payload in a frame of segment format `version`.
fn frame_header_len(version: u32) -> usize {
    match version >= SYNCED_LEN_VERSION {
        true => FRAME_HEADER_BYTES,
        false => FRAME_HEADER_BYTES_V1,
    }
}

/// A checksum-valid frame found past damage.
struct LaterFrame {
    at: usize,
    seq: u64,
    synced_len: Option<u64>,
}

/// Every checksum-valid frame that starts at or after `from`, with the
/// commit seq its header section begins with (payloads are not decoded:
/// this looks at up to a whole unsynced group). Candidates are filtered by
/// the header section every real payload starts with, so the scan costs
/// one pass plus checksums per plausible start.
fn valid_frames_after(
    bytes: &[u8],
    from: usize,
    version: u32,
) -> impl Iterator<Item = LaterFrame> + '_ {
    let prefix = record::HEADER_JSON_PREFIX;
    let lead = frame_header_len(version) + 4; // frame header, then the header section's length
    let last = bytes.len().checked_sub(lead + prefix.len());
    let candidates = match last {
        Some(last) if from <= last => from..last + 1,
        _ => 0..0,
    };
    candidates
        .filter(move |at| bytes[at + lead..].starts_with(prefix))
        .filter_map(move |at| {
            let frame = checked_frame(&bytes[at..], version).ok()?;
            let digits = &frame.payload[4 + prefix.len()..];
            let end = digits.iter().position(|b| !b.is_ascii_digit())?;
            let seq = std::str::from_utf8(&digits[..end]).ok()?.parse().ok()?;
            Some(LaterFrame {
                at,
                seq,
                synced_len: frame.synced_len,
            })
        })
}

/// Save the bytes from `offset` to the end of `path` as `<path>.torn-<offset>`
/// (durably), so cutting a torn tail destroys nothing.
pub fn quarantine_tail(
    fs: &dyn crate::storage::durable::DurableFs,
    path: &Path,
    bytes: &[u8],
    offset: u64,
) -> std::io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(());
    };
    let tail = &bytes[offset as usize..];
    fs.write_file_atomic(dir, &format!("{name}.torn-{offset}"), tail)
}
