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
//! fsynced; a commit is acknowledged after its group's fsync. Scanning
//! stops at the first frame that is incomplete (the file ends inside it),
//! declares an impossible length, or fails its checksum. Then:
//! - if any checksum-valid frame starts anywhere after it, the damage is
//!   *corruption* (an acknowledged frame would be lost): an error naming
//!   the file and offset; nothing is cut;
//! - otherwise, and only in the last segment, it is a *torn tail*: the
//!   write of an unacknowledged group that a crash interrupted. It is cut.
//!
//! This is PostgreSQL's rule (an invalid record ends the WAL) narrowed by
//! the look-ahead. It includes the one ambiguous case, a complete final
//! frame with a bad checksum and nothing valid after it: a power cut can
//! leave a full-length frame whose blocks were never written (zeros), and
//! that looks the same as a bit flip in an acknowledged last frame. It is
//! treated as torn, loudly (a WARN naming file, offset and length), and
//! the cut bytes are first saved beside the segment as
//! `<segment>.torn-<offset>`, so nothing is destroyed. A frame whose
//! checksum is right but whose payload does not decode is corruption
//! wherever it is.

use std::path::Path;

use super::record::{self, CommitRecord, FRAME_HEADER_BYTES, FRAME_PAYLOAD_BYTES_MIN};
use crate::error::{Error, Result};
use crate::limits::LOG_FRAME_BYTES_MAX;
use crate::storage::envelope::fixed;

/// The first bytes of every segment written since format 1.
pub const SEGMENT_MAGIC: [u8; 8] = *b"DRIFTLOG";
/// The segment format this build writes and reads (besides headerless format 0).
pub const SEGMENT_VERSION: u32 = 1;
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

/// How a scanned segment ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Every byte belongs to a valid frame.
    Clean,
    /// Damage from `offset` to the end with no valid frame after it: a torn
    /// tail if this is the last segment.
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
        match parse_frame(&bytes[offset..]) {
            Ok((record, frame_len)) => {
                records.push(record);
                offset += frame_len;
            }
            Err(FrameError::Invalid(detail)) => {
                let end = match find_valid_frame(bytes, offset + 1) {
                    Some((at, seq)) => SegmentEnd::Corrupt {
                        offset: offset as u64,
                        detail: format!(
                            "{detail}, yet a valid frame (commit {seq}) follows at byte {at}"
                        ),
                    },
                    None => SegmentEnd::Torn {
                        offset: offset as u64,
                        detail,
                    },
                };
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

/// `Ok(Ok((version, first frame offset)))`, `Ok(Err(damage))`, or an
/// unknown version.
fn check_header(
    file: &str,
    first_seq: u64,
    bytes: &[u8],
) -> Result<std::result::Result<(u32, usize), String>> {
    if bytes.len() < SEGMENT_MAGIC.len() || bytes[..SEGMENT_MAGIC.len()] != SEGMENT_MAGIC {
        return Ok(Ok((0, 0))); // format 0: no header
    }
    let Some(header) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        return Ok(Err("segment header cut short".into()));
    };
    // The version first (as PostgreSQL checks pg_control): a later format may lay out the rest differently.
    let version = u32::from_le_bytes(fixed(&header[8..12]));
    if version != SEGMENT_VERSION {
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

enum FrameError {
    /// Incomplete, impossible length, or checksum mismatch: torn or corrupt.
    Invalid(String),
    /// The checksum holds but the payload is not a commit: corrupt.
    Undecodable(String),
}

/// The frame at the start of `bytes` and its length in bytes.
fn parse_frame(bytes: &[u8]) -> std::result::Result<(CommitRecord, usize), FrameError> {
    let payload = checked_payload(bytes)?;
    let record = CommitRecord::decode_payload(payload)
        .map_err(|e| FrameError::Undecodable(format!("checksum holds but {e}")))?;
    Ok((record, FRAME_HEADER_BYTES + payload.len()))
}

/// The checksum-verified payload of the frame at the start of `bytes`.
fn checked_payload(bytes: &[u8]) -> std::result::Result<&[u8], FrameError> {
    let Some(header) = bytes.get(..FRAME_HEADER_BYTES) else {
        return Err(FrameError::Invalid(format!(
            "frame header cut short ({} of {FRAME_HEADER_BYTES} bytes)",
            bytes.len()
        )));
    };
    let len = u32::from_le_bytes(fixed(&header[..4])) as usize;
    let crc = u32::from_le_bytes(fixed(&header[4..8]));
    if !(FRAME_PAYLOAD_BYTES_MIN..=LOG_FRAME_BYTES_MAX).contains(&len) {
        return Err(FrameError::Invalid(format!(
            "frame declares {len} payload bytes, outside {FRAME_PAYLOAD_BYTES_MIN}..={LOG_FRAME_BYTES_MAX}"
        )));
    }
    let Some(payload) = bytes.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len) else {
        return Err(FrameError::Invalid(format!(
            "frame of {len} payload bytes cut short: the file ends {} bytes into it",
            bytes.len() - FRAME_HEADER_BYTES
        )));
    };
    let actual = crc32fast::hash(payload);
    if actual != crc {
        return Err(FrameError::Invalid(format!(
            "frame checksum mismatch (stored crc32 {crc:08x}, computed {actual:08x})"
        )));
    }
    Ok(payload)
}

/// The first checksum-valid frame starting at or after `from`: its offset
/// and commit seq. Candidates are filtered by the header section every
/// real payload starts with, so the scan costs one pass plus a checksum
/// per plausible start.
fn find_valid_frame(bytes: &[u8], from: usize) -> Option<(usize, u64)> {
    let prefix = record::HEADER_JSON_PREFIX;
    let lead = FRAME_HEADER_BYTES + 4; // frame header, then the header section's length
    let last = bytes.len().checked_sub(lead + prefix.len())?;
    (from..=last)
        .filter(|at| bytes[at + lead..].starts_with(prefix))
        .find_map(|at| {
            let payload = checked_payload(&bytes[at..]).ok()?;
            let seq = CommitRecord::decode_payload(payload).ok()?.header.seq;
            Some((at, seq))
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
