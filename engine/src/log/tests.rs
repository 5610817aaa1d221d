//! Log tests: frames round-trip; a torn tail is cut (and kept aside);
//! damage followed by a valid frame, or anywhere but the tail, is an error
//! that names the file and offset and changes nothing.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

use super::segment::{SEGMENT_HEADER_BYTES, segment_header};
use super::*;
use crate::storage::durable::LocalFs;

fn record(seq: u64) -> CommitRecord {
    let schema = Arc::new(Schema::new(vec![Field::new("c1", DataType::Int32, true)]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(Int32Array::from(vec![seq as i32; 3]))],
    )
    .expect("batch");
    CommitRecord {
        header: CommitHeader {
            seq,
            time_us: seq as i64 * 10,
            kind: "INSERT".into(),
            ops: vec![Op::Insert {
                table_id: 1,
                first_rowid: seq * 3,
                rows: 3,
            }],
        },
        batches: vec![batch],
    }
}

fn frame(seq: u64) -> Vec<u8> {
    record(seq).encode_frame().expect("encode")
}

/// Commit `seq` as a frame of segment formats 0 and 1 (no `synced_len`).
fn frame_v1(seq: u64) -> Vec<u8> {
    let v2 = frame(seq);
    [&v2[..8], &v2[record::FRAME_HEADER_BYTES..]].concat()
}

/// A segment holding commits `seqs`, each written and fsynced on its own
/// (so each frame's `synced_len` is where it starts).
fn write_segment(dir: &Path, first_seq: u64, seqs: std::ops::RangeInclusive<u64>) -> PathBuf {
    let groups: Vec<_> = seqs.map(|seq| seq..=seq).collect();
    write_groups(dir, first_seq, &groups)
}

/// A segment holding commits in `groups`, each group written by one
/// write and one fsync (its frames' `synced_len` is where it starts).
fn write_groups(dir: &Path, first_seq: u64, groups: &[std::ops::RangeInclusive<u64>]) -> PathBuf {
    let path = dir.join(segment_name(first_seq));
    let mut bytes = segment_header(first_seq);
    for group in groups {
        let synced = bytes.len() as u64;
        for seq in group.clone() {
            let mut frame = frame(seq);
            record::stamp_synced_len(&mut frame, synced);
            bytes.extend_from_slice(&frame);
        }
    }
    std::fs::write(&path, &bytes).expect("write");
    path
}

/// A format-1 segment holding commits `seqs`.
fn write_segment_v1(dir: &Path, first_seq: u64, seqs: std::ops::RangeInclusive<u64>) -> PathBuf {
    let path = dir.join(segment_name(first_seq));
    let mut header = segment_header(first_seq);
    header[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&header[..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    let frames: Vec<u8> = seqs.flat_map(frame_v1).collect();
    std::fs::write(&path, [header, frames].concat()).expect("write");
    path
}

fn read(dir: &Path) -> Result<Vec<u64>> {
    Ok(read_log(&LocalFs, dir, 0)?
        .iter()
        .map(|c| c.header.seq)
        .collect())
}

/// Reading the log in `dir` fails with corruption at `offset`, naming `needle`.
fn assert_corrupt_at(dir: &Path, offset: usize, needle: &str) {
    match read(dir) {
        Err(Error::CorruptLog {
            offset: found,
            detail,
            ..
        }) => {
            assert_eq!(found, offset as u64, "{detail}");
            assert!(detail.contains(needle), "{detail}");
        }
        other => panic!("expected CorruptLog, got {other:?}"),
    }
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= 0x10;
    std::fs::write(path, &bytes).expect("write");
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("meta").len()
}

#[test]
fn frames_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_segment(dir.path(), 1, 1..=3);
    let commits = read_log(&LocalFs, dir.path(), 0).expect("read");
    assert_eq!(
        commits.iter().map(|c| c.header.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(commits[1].batches[0], record(2).batches[0]);
}

#[test]
fn segments_a_checkpoint_covers_are_not_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = write_segment(dir.path(), 1, 1..=2);
    write_segment(dir.path(), 3, 3..=4);
    flip(&old, SEGMENT_HEADER_BYTES + 12); // damage that only a read would see
    assert_eq!(read_log(&LocalFs, dir.path(), 2).expect("read").len(), 2);
    assert!(read(dir.path()).is_err());
}

#[test]
fn headerless_segments_from_format_0_still_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut file = std::fs::File::create(dir.path().join(segment_name(1))).expect("create");
    for seq in 1..=2 {
        file.write_all(&frame_v1(seq)).expect("write");
    }
    assert_eq!(read(dir.path()).expect("read"), vec![1, 2]);
}

#[test]
fn format_1_segments_still_read_and_any_valid_frame_after_damage_is_corruption() {
    let dir = tempfile::tempdir().expect("temp dir");
    let last = write_segment_v1(dir.path(), 1, 1..=3);
    assert_eq!(read(dir.path()).expect("read"), vec![1, 2, 3]);
    let frame2_at = SEGMENT_HEADER_BYTES + frame_v1(1).len();
    flip(&last, frame2_at + 20);
    assert_corrupt_at(dir.path(), frame2_at, "commit 3");
}

#[test]
fn a_torn_group_with_a_later_frame_intact_is_a_torn_tail() {
    // Commits 1 and 2 each fsynced; 3..=5 written by one write whose fsync
    // the power cut: the page of commit 3 never reached the disk (zeros),
    // those of 4 and 5 did. None of 3..=5 was acknowledged.
    let dir = tempfile::tempdir().expect("temp dir");
    let last = write_groups(dir.path(), 1, &[1..=1, 2..=2, 3..=5]);
    let frame3_at = SEGMENT_HEADER_BYTES + frame(1).len() + frame(2).len();
    let mut bytes = std::fs::read(&last).expect("read");
    bytes[frame3_at..frame3_at + frame(3).len()].fill(0);
    std::fs::write(&last, &bytes).expect("write");
    assert_eq!(read(dir.path()).expect("read"), vec![1, 2]);
    assert_eq!(len(&last), frame3_at as u64);
    let kept = dir
        .path()
        .join(format!("{}.torn-{frame3_at}", segment_name(1)));
    assert_eq!(len(&kept), (bytes.len() - frame3_at) as u64);
}

#[test]
fn damage_in_a_group_that_a_later_group_saw_durable_is_corruption() {
    // Commit 4 was written after the group 2..=3 was fsynced: damage in
    // commit 2 is in acknowledged bytes.
    let dir = tempfile::tempdir().expect("temp dir");
    let last = write_groups(dir.path(), 1, &[1..=1, 2..=3, 4..=5]);
    let frame2_at = SEGMENT_HEADER_BYTES + frame(1).len();
    flip(&last, frame2_at + 2); // commit 2's length
    assert_corrupt_at(dir.path(), frame2_at, "commit 4");
}

#[test]
fn a_flipped_synced_len_fails_the_frame_header_checksum() {
    let dir = tempfile::tempdir().expect("temp dir");
    let last = write_segment(dir.path(), 1, 1..=3);
    let frame2_at = SEGMENT_HEADER_BYTES + frame(1).len();
    flip(&last, frame2_at + 9);
    assert_corrupt_at(dir.path(), frame2_at, "header checksum");
}

#[test]
fn torn_tail_of_last_segment_is_cut_and_kept_aside() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_segment(dir.path(), 1, 1..=2);
    let last = write_segment(dir.path(), 3, 3..=4);
    let full = len(&last);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open");
    file.set_len(full - 5).expect("truncate");
    assert_eq!(read(dir.path()).expect("read"), vec![1, 2, 3]);
    // The cut is durable: the file now ends after commit 3 ...
    let end_of_3 = (SEGMENT_HEADER_BYTES + frame(3).len()) as u64;
    assert_eq!(len(&last), end_of_3);
    // ... and the cut bytes are kept.
    let kept = dir
        .path()
        .join(format!("{}.torn-{end_of_3}", segment_name(3)));
    assert_eq!(len(&kept), full - 5 - end_of_3);
    // Reading again finds a clean log.
    assert_eq!(read(dir.path()).expect("read again"), vec![1, 2, 3]);
}

#[test]
fn zeros_where_a_power_cut_left_unwritten_blocks_are_a_torn_tail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let last = write_segment(dir.path(), 1, 1..=2);
    let end = len(&last);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .expect("open");
    file.write_all(&vec![0u8; 4096]).expect("zeros");
    assert_eq!(read(dir.path()).expect("read"), vec![1, 2]);
    assert_eq!(len(&last), end);
}

#[test]
fn a_bad_checksum_followed_by_valid_frames_is_corruption_and_nothing_is_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let last = write_segment(dir.path(), 1, 1..=3);
    let frame2_at = SEGMENT_HEADER_BYTES + frame(1).len();
    flip(&last, frame2_at + 20); // a payload byte of commit 2; commit 3 is intact
    let before = std::fs::read(&last).expect("read");
    match read(dir.path()) {
        Err(e @ Error::CorruptLog { .. }) => {
            assert_eq!(e.sqlstate(), "XX001");
            let Error::CorruptLog {
                file,
                offset,
                detail,
            } = &e
            else {
                unreachable!()
            };
            assert!(file.ends_with(&segment_name(1)), "{file}");
            assert_eq!(*offset, frame2_at as u64);
            assert!(detail.contains("commit 3"), "{detail}");
        }
        other => panic!("expected CorruptLog, got {other:?}"),
    }
    assert_eq!(std::fs::read(&last).expect("read"), before, "file changed");
}

#[test]
fn a_damaged_length_followed_by_valid_frames_is_corruption() {
    let dir = tempfile::tempdir().expect("temp dir");
    let last = write_segment(dir.path(), 1, 1..=3);
    let frame2_at = SEGMENT_HEADER_BYTES + frame(1).len();
    flip(&last, frame2_at + 3); // the high byte of commit 2's length
    match read(dir.path()) {
        Err(Error::CorruptLog { offset, .. }) => assert_eq!(offset, frame2_at as u64),
        other => panic!("expected CorruptLog, got {other:?}"),
    }
}

#[test]
fn a_complete_last_frame_with_a_bad_checksum_and_nothing_after_is_cut() {
    // The ambiguous case (see `segment`): treated as torn, loudly, bytes kept.
    let dir = tempfile::tempdir().expect("temp dir");
    let last = write_segment(dir.path(), 1, 1..=2);
    let frame2_at = SEGMENT_HEADER_BYTES + frame(1).len();
    flip(&last, frame2_at + 20);
    assert_eq!(read(dir.path()).expect("read"), vec![1]);
    assert_eq!(len(&last), frame2_at as u64);
    let kept = dir
        .path()
        .join(format!("{}.torn-{frame2_at}", segment_name(1)));
    assert!(kept.exists());
}

#[test]
fn corruption_before_the_last_segment_names_file_and_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = write_segment(dir.path(), 1, 1..=2);
    write_segment(dir.path(), 3, 3..=3);
    let frame2_at = SEGMENT_HEADER_BYTES + frame(1).len();
    flip(&first, frame2_at + 12); // commit 2, the last frame of a sealed segment
    match read(dir.path()) {
        Err(Error::CorruptLog { file, offset, .. }) => {
            assert!(file.ends_with(&segment_name(1)), "{file}");
            assert_eq!(offset, frame2_at as u64);
        }
        other => panic!("expected CorruptLog, got {other:?}"),
    }
}

#[test]
fn segment_headers_are_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_segment(dir.path(), 1, 1..=1);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[8] = 9; // format version 9
    std::fs::write(&path, &bytes).expect("write");
    match read(dir.path()) {
        Err(e @ Error::FormatVersion { found: 9, .. }) => assert_eq!(e.sqlstate(), "55000"),
        other => panic!("expected FormatVersion, got {other:?}"),
    }
    // A header for another segment (renamed file) is corruption.
    std::fs::remove_file(&path).expect("remove");
    let mut file = std::fs::File::create(dir.path().join(segment_name(7))).expect("create");
    file.write_all(&segment_header(1)).expect("header");
    match read(dir.path()) {
        Err(Error::CorruptLog { offset: 0, .. }) => {}
        other => panic!("expected CorruptLog at 0, got {other:?}"),
    }
}

#[test]
fn the_writer_appends_after_a_header_and_rotates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let log = CommitLog::open(crate::storage::durable::local(), dir.path(), 1).expect("open");
        wait_durable(log.submit(1, frame(1)).expect("submit"))
            .await
            .expect("durable");
        log.rotate(2).await.expect("rotate");
        log.rotate(2)
            .await
            .expect("rotating to the open segment is a no-op");
        wait_durable(log.submit(2, frame(2)).expect("submit"))
            .await
            .expect("durable");
        log.delete_through(1).await.expect("delete");
    });
    assert_eq!(read(dir.path()).expect("read"), vec![2]);
    let segments = list_segments(dir.path()).expect("list");
    assert_eq!(segments.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&segments[0].1)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn oversized_commits_are_refused_at_encode() {
    let small = frame(1).len();
    let payload = small - record::FRAME_HEADER_BYTES;
    match record(1).encode_frame_max(payload - 1) {
        Err(e @ Error::CommitTooLarge { .. }) => {
            assert_eq!(e.sqlstate(), "54000");
            let Error::CommitTooLarge { bytes, limit } = e else {
                unreachable!()
            };
            assert_eq!((bytes, limit), (small as u64, payload as u64 - 1));
        }
        other => panic!("expected CommitTooLarge, got {other:?}"),
    }
    // The format's own limit is far above this frame.
    assert_eq!(record(1).encode_frame().expect("encode").len(), small);
}

#[test]
fn payloads_start_with_the_header_prefix_the_reader_looks_for() {
    let bytes = frame(42);
    assert!(bytes[record::FRAME_HEADER_BYTES + 4..].starts_with(record::HEADER_JSON_PREFIX));
}

#[test]
fn the_writer_stamps_how_much_of_the_segment_was_durable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let log = CommitLog::open(crate::storage::durable::local(), dir.path(), 1).expect("open");
        for seq in 1..=2 {
            wait_durable(log.submit(seq, frame(seq)).expect("submit"))
                .await
                .expect("durable");
        }
    });
    let bytes = std::fs::read(dir.path().join(segment_name(1))).expect("read");
    let synced = |at: usize| u64::from_le_bytes(bytes[at + 8..at + 16].try_into().expect("8"));
    let frame2_at = SEGMENT_HEADER_BYTES + frame(1).len();
    assert_eq!(synced(SEGMENT_HEADER_BYTES), SEGMENT_HEADER_BYTES as u64);
    assert_eq!(synced(frame2_at), frame2_at as u64);
    assert_eq!(read(dir.path()).expect("read"), vec![1, 2]);
}

#[test]
fn frames_queued_together_share_their_group_s_synced_len() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let log = CommitLog::open(crate::storage::durable::local(), dir.path(), 1).expect("open");
        let waits: Vec<_> = (1..=20)
            .map(|seq| log.submit(seq, frame(seq)).expect("submit"))
            .collect();
        for wait in waits {
            wait_durable(wait).await.expect("durable");
        }
    });
    // Each frame says either that everything before it was durable (it
    // starts a group) or the same as the frame before it (same group).
    let bytes = std::fs::read(dir.path().join(segment_name(1))).expect("read");
    let synced = |at: usize| u64::from_le_bytes(bytes[at + 8..at + 16].try_into().expect("8"));
    let mut at = SEGMENT_HEADER_BYTES;
    let mut previous = None;
    while at < bytes.len() {
        let stamp = synced(at);
        assert!(
            stamp == at as u64 || Some(stamp) == previous,
            "frame at {at} stamped {stamp}, previous {previous:?}"
        );
        previous = Some(stamp);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
        at += record::FRAME_HEADER_BYTES + len;
    }
    assert_eq!(
        read(dir.path()).expect("read"),
        (1..=20).collect::<Vec<_>>()
    );
}

#[test]
fn a_damaged_magic_is_corruption_not_a_headerless_segment_cut_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let last = write_segment(dir.path(), 1, 1..=3);
    flip(&last, 2);
    let before = std::fs::read(&last).expect("read");
    match read(dir.path()) {
        Err(Error::CorruptLog {
            offset: 0, detail, ..
        }) => {
            assert!(detail.contains("magic"), "{detail}")
        }
        other => panic!("expected CorruptLog at 0, got {other:?}"),
    }
    assert_eq!(std::fs::read(&last).expect("read"), before, "file changed");
}
