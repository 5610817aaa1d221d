//! Fuzzing the commit-log frame decoder (`log::segment::scan_segment`,
//! `CommitRecord::decode_payload`) and recovery from a damaged log.
//!
//! Inputs: random bytes; a valid segment of real frames with bits flipped,
//! bytes overwritten or zeroed (a power-cut hole), frames dropped or
//! duplicated, length prefixes rewritten (up to 2^32 - 1), the file cut or
//! extended; and frames whose checksum is right but whose payload is
//! damaged (what a writer bug or a checksum collision would leave).
//!
//! Every case must: not panic; hold at most [`DECODE_HEAP_BYTES_MAX`] of
//! heap at once while decoding (a length prefix is never trusted for an
//! allocation); end in a clean result (`Clean`, `Torn` or `Corrupt` at an
//! offset inside the file) or a format-version error; and decode only
//! frames that are byte for byte ones that were written: damage is never
//! read as a different valid commit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use driftdb_engine::limits::LOG_FRAME_BYTES_MAX;
use driftdb_engine::log::record::{
    CommitHeader, CommitRecord, FRAME_HEADER_BYTES, Op, seal_payload, stamp_synced_len,
};
use driftdb_engine::log::segment::{
    SEGMENT_HEADER_BYTES, SegmentEnd, SegmentScan, scan_segment, segment_header,
};
use driftdb_engine::{Database, Error, Session};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use super::{cases, copy_dir, overwrite, passed, runner, timed};

/// Cases of each target in CI (see the module page of `fuzz` for longer runs).
const MUTATED_CASES_CI: u32 = 20_000;
const BIT_FLIP_CASES_CI: u32 = 10_000;
const RANDOM_CASES_CI: u32 = 10_000;
const CHECKSUMMED_CASES_CI: u32 = 20_000;
const RECOVERY_CASES_CI: u32 = 200;
const TORN_GROUP_CASES_CI: u32 = 5_000;

/// Commits in the valid segment the mutations start from.
const COMMITS: u64 = 6;
/// The first commit of that segment.
const FIRST_SEQ: u64 = 1;
/// The name of the segment in messages.
const FILE: &str = "fuzz.log";
/// The most heap a decode of these (kilobyte-sized) inputs may hold at
/// once: far above what decoding them needs, far below what any length
/// prefix can claim (up to 4 GiB).
const DECODE_HEAP_BYTES_MAX: u64 = 16 << 20;
/// Random inputs are at most this long.
const RANDOM_BYTES_MAX: usize = 4096;

/// Length prefixes worth trying: the edges of the accepted range and beyond.
const LENGTHS: &[u32] = &[
    0,
    1,
    5,
    6,
    7,
    8,
    4096,
    LOG_FRAME_BYTES_MAX as u32,
    LOG_FRAME_BYTES_MAX as u32 + 1,
    1 << 31,
    u32::MAX - 1,
    u32::MAX,
];

/// Eight-byte values worth writing over an Arrow IPC message (its lengths
/// and offsets are i32 and i64 little-endian).
const WORDS: &[i64] = &[
    0,
    1,
    -1,
    8,
    i32::MAX as i64,
    i32::MIN as i64,
    u32::MAX as i64,
    1 << 40,
    1 << 62,
    i64::MAX,
    i64::MIN,
];

/// A valid segment of [`COMMITS`] frames, each written and fsynced on its
/// own (its `synced_len` is where it starts), and where each frame starts.
struct Fixture {
    frames: Vec<Vec<u8>>,
    offsets: Vec<usize>,
    segment: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let mut frames = Vec::new();
        let mut segment = segment_header(FIRST_SEQ);
        let mut offsets = Vec::new();
        for i in 0..COMMITS {
            let mut frame = record(FIRST_SEQ + i).encode_frame().expect("encode");
            stamp_synced_len(&mut frame, segment.len() as u64);
            offsets.push(segment.len());
            segment.extend_from_slice(&frame);
            frames.push(frame);
        }
        Self {
            frames,
            offsets,
            segment,
        }
    }

    /// The index of the frame holding byte `at` (which is past the header).
    fn frame_at(&self, at: usize) -> usize {
        self.offsets.partition_point(|&start| start <= at) - 1
    }

    fn frame_range(&self, frame: usize) -> std::ops::Range<usize> {
        self.offsets[frame]..self.offsets[frame] + self.frames[frame].len()
    }
}

/// Commit `seq`: retires a row and inserts a few of several types.
fn record(seq: u64) -> CommitRecord {
    let rows = (seq % 4 + 1) as usize;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
    ]));
    let ids = (0..rows as i64).map(|r| seq as i64 * 100 + r);
    let names = (0..rows).map(|r| (r % 2 == 0).then(|| format!("name {seq}.{r} 'quoted'")));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(ids)),
            Arc::new(StringArray::from_iter(names)),
            Arc::new(Float64Array::from_iter(
                (0..rows).map(|r| Some(r as f64 / 3.0)),
            )),
            Arc::new(BooleanArray::from_iter((0..rows).map(|r| Some(r % 3 == 0)))),
        ],
    )
    .expect("batch");
    CommitRecord {
        header: CommitHeader {
            seq,
            time_us: 1_700_000_000_000_000 + seq as i64,
            kind: "INSERT".into(),
            ops: vec![
                Op::Retire {
                    table_id: 7,
                    rowids: vec![seq, seq + 1],
                },
                Op::Insert {
                    table_id: 7,
                    first_rowid: seq * 100,
                    rows: rows as u64,
                },
            ],
        },
        batches: vec![batch],
    }
}

/// A change to whole frames of the valid segment (applied first).
#[derive(Debug, Clone)]
enum FrameMutation {
    None,
    /// Rewrite the frame's length prefix with one of [`LENGTHS`] or its
    /// own length plus a small delta.
    SetLength {
        frame: Index,
        len: Length,
    },
    Duplicate {
        frame: Index,
    },
    Drop {
        frame: Index,
    },
    Swap {
        a: Index,
        b: Index,
    },
}

#[derive(Debug, Clone)]
enum Length {
    Fixed(u32),
    Delta(i8),
}

/// A change to bytes anywhere.
#[derive(Debug, Clone)]
enum ByteMutation {
    FlipBit {
        at: Index,
        bit: u8,
    },
    Truncate {
        at: Index,
    },
    Extend {
        bytes: Vec<u8>,
    },
    Overwrite {
        at: Index,
        bytes: Vec<u8>,
    },
    /// A hole of zeros, as a power cut leaves unwritten blocks.
    Zero {
        at: Index,
        len: u16,
    },
    Word {
        at: Index,
        value: i64,
    },
}

fn frame_mutation() -> impl Strategy<Value = FrameMutation> {
    let length = prop_oneof![
        proptest::sample::select(LENGTHS).prop_map(Length::Fixed),
        any::<i8>().prop_map(Length::Delta),
    ];
    prop_oneof![
        1 => Just(FrameMutation::None),
        2 => (any::<Index>(), length).prop_map(|(frame, len)| FrameMutation::SetLength { frame, len }),
        1 => any::<Index>().prop_map(|frame| FrameMutation::Duplicate { frame }),
        1 => any::<Index>().prop_map(|frame| FrameMutation::Drop { frame }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| FrameMutation::Swap { a, b }),
    ]
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| ByteMutation::FlipBit { at, bit }),
        2 => any::<Index>().prop_map(|at| ByteMutation::Truncate { at }),
        1 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(|bytes| ByteMutation::Extend { bytes }),
        2 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| ByteMutation::Overwrite { at, bytes }),
        1 => (any::<Index>(), 1u16..2048).prop_map(|(at, len)| ByteMutation::Zero { at, len }),
        2 => (any::<Index>(), proptest::sample::select(WORDS))
            .prop_map(|(at, value)| ByteMutation::Word { at, value }),
    ]
}

fn apply_frame_mutation(fixture: &Fixture, mutation: &FrameMutation) -> Vec<u8> {
    let frames = &fixture.frames;
    let mut out: Vec<Vec<u8>> = frames.clone();
    match mutation {
        FrameMutation::None => {}
        FrameMutation::SetLength { frame, len } => {
            let frame = &mut out[frame.index(frames.len())];
            let own = (frame.len() - FRAME_HEADER_BYTES) as u32;
            let len = match len {
                Length::Fixed(len) => *len,
                Length::Delta(delta) => own.wrapping_add_signed(i32::from(*delta)),
            };
            frame[..4].copy_from_slice(&len.to_le_bytes());
        }
        FrameMutation::Duplicate { frame } => {
            let at = frame.index(frames.len());
            out.insert(at, frames[at].clone());
        }
        FrameMutation::Drop { frame } => {
            out.remove(frame.index(frames.len()));
        }
        FrameMutation::Swap { a, b } => out.swap(a.index(frames.len()), b.index(frames.len())),
    }
    let mut segment = segment_header(FIRST_SEQ);
    segment.extend(out.concat());
    segment
}

fn apply_byte_mutation(bytes: &mut Vec<u8>, mutation: &ByteMutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match mutation {
        ByteMutation::FlipBit { at, bit } => bytes[at.index(len)] ^= 1 << bit,
        ByteMutation::Truncate { at } => bytes.truncate(at.index(len)),
        ByteMutation::Extend { bytes: more } => bytes.extend_from_slice(more),
        ByteMutation::Overwrite { at, bytes: new } => overwrite(bytes, at.index(len), new),
        ByteMutation::Zero { at, len: hole } => {
            let start = at.index(len);
            let end = (start + usize::from(*hole)).min(len);
            bytes[start..end].fill(0);
        }
        ByteMutation::Word { at, value } => overwrite(bytes, at.index(len), &value.to_le_bytes()),
    }
}

/// Scan `bytes` measuring the heap the decode held at its peak.
fn measured_scan(bytes: &[u8]) -> (driftdb_engine::Result<SegmentScan>, u64) {
    let mut result = None;
    let info = allocation_counter::measure(|| {
        result = Some(scan_segment(FILE, FIRST_SEQ, bytes));
    });
    (result.expect("ran"), info.bytes_max)
}

/// The assertions every scanned input must meet; returns the scan.
fn check_scan(fixture: &Fixture, bytes: &[u8]) -> Result<Option<SegmentScan>, TestCaseError> {
    let (result, heap_bytes) = measured_scan(bytes);
    prop_assert!(
        heap_bytes <= DECODE_HEAP_BYTES_MAX,
        "decoding {} bytes held {heap_bytes} bytes of heap at once",
        bytes.len()
    );
    let scan = match result {
        Ok(scan) => scan,
        Err(Error::FormatVersion { .. }) => return Ok(None),
        Err(other) => return Err(TestCaseError::fail(format!("unexpected error: {other}"))),
    };
    for record in &scan.records {
        let frame = record.encode_frame().expect("a decoded record encodes");
        prop_assert!(
            fixture
                .frames
                .iter()
                .any(|written| written[FRAME_HEADER_BYTES..] == frame[FRAME_HEADER_BYTES..]),
            "damage decoded as a commit never written: {:?}",
            record.header
        );
    }
    if let SegmentEnd::Torn { offset, .. } | SegmentEnd::Corrupt { offset, .. } = &scan.end {
        prop_assert!(*offset <= bytes.len() as u64, "damage offset past the end");
    }
    if bytes == fixture.segment.as_slice() {
        prop_assert_eq!(&scan.end, &SegmentEnd::Clean);
        prop_assert_eq!(scan.records.len(), fixture.frames.len());
    }
    Ok(Some(scan))
}

#[test]
fn fuzz_log_mutated_segments() {
    let fixture = Fixture::new();
    let strategy = (
        frame_mutation(),
        proptest::collection::vec(byte_mutation(), 0..4),
    );
    let target = "log mutated segments";
    timed(target, || {
        let result = runner(target, cases(MUTATED_CASES_CI)).run(&strategy, |(frame, bytes)| {
            let mut segment = apply_frame_mutation(&fixture, &frame);
            for mutation in &bytes {
                apply_byte_mutation(&mut segment, mutation);
            }
            check_scan(&fixture, &segment).map(drop)
        });
        passed(target, result);
    });
}

/// One flipped bit is always caught where it is: the frames before it are
/// read, the damaged one and everything after are not.
#[test]
fn fuzz_log_single_bit_flips() {
    let fixture = Fixture::new();
    let len = fixture.segment.len();
    let target = "log single bit flips";
    timed(target, || {
        let result =
            runner(target, cases(BIT_FLIP_CASES_CI)).run(&(0..len, 0u8..8), |(at, bit)| {
                let mut bytes = fixture.segment.clone();
                bytes[at] ^= 1 << bit;
                let Some(scan) = check_scan(&fixture, &bytes)? else {
                    prop_assert!((8..12).contains(&at), "format error from byte {at}");
                    return Ok(());
                };
                if at < SEGMENT_HEADER_BYTES {
                    prop_assert!(scan.records.is_empty());
                    prop_assert!(
                        matches!(scan.end, SegmentEnd::Corrupt { .. }),
                        "{:?}",
                        scan.end
                    );
                    return Ok(());
                }
                let frame = fixture.frame_at(at);
                prop_assert!(fixture.frame_range(frame).contains(&at));
                prop_assert_eq!(
                    scan.records.len(),
                    frame,
                    "frames before byte {} are read",
                    at
                );
                let offset = fixture.offsets[frame] as u64;
                let expected = match frame + 1 == fixture.frames.len() {
                    true => matches!(scan.end, SegmentEnd::Torn { offset: o, .. } if o == offset),
                    false => {
                        matches!(scan.end, SegmentEnd::Corrupt { offset: o, .. } if o == offset)
                    }
                };
                prop_assert!(
                    expected,
                    "flip in frame {} at byte {}: {:?}",
                    frame,
                    at,
                    scan.end
                );
                Ok(())
            });
        passed(target, result);
    });
}

/// A power cut during a group commit: the first commits each fsynced on
/// their own, the rest written by one write whose fsync never finished,
/// with any pages of that write lost (zeros) or cut off. Never corruption:
/// the commits before the group are all read, and a prefix of the group.
#[test]
fn fuzz_log_torn_groups() {
    const ALONE: usize = 2;
    let mut segment = segment_header(FIRST_SEQ);
    let mut group_at = 0;
    for i in 0..COMMITS as usize {
        if i == ALONE {
            group_at = segment.len();
        }
        let synced = if i < ALONE { segment.len() } else { group_at };
        let mut frame = record(FIRST_SEQ + i as u64).encode_frame().expect("encode");
        stamp_synced_len(&mut frame, synced as u64);
        segment.extend_from_slice(&frame);
    }
    let page = 512usize;
    let pages = (segment.len() - group_at).div_ceil(page);
    let strategy = (
        proptest::collection::vec(any::<bool>(), pages),
        any::<Index>(),
        any::<bool>(),
    );
    let target = "log torn groups";
    timed(target, || {
        let result =
            runner(target, cases(TORN_GROUP_CASES_CI)).run(&strategy, |(lost, cut, cut_short)| {
                let mut bytes = segment.clone();
                for (n, lost) in lost.iter().enumerate() {
                    let start = group_at + n * page;
                    let end = (start + page).min(bytes.len());
                    if *lost {
                        bytes[start..end].fill(0);
                    }
                }
                if cut_short {
                    bytes.truncate(group_at + cut.index(segment.len() - group_at + 1));
                }
                let scan = scan_segment(FILE, FIRST_SEQ, &bytes)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(
                    !matches!(scan.end, SegmentEnd::Corrupt { .. }),
                    "a torn group read as corruption: {:?}",
                    scan.end
                );
                prop_assert!(scan.records.len() >= ALONE, "an fsynced commit was lost");
                for (i, record) in scan.records.iter().enumerate() {
                    prop_assert_eq!(record.header.seq, FIRST_SEQ + i as u64);
                }
                Ok(())
            });
        passed(target, result);
    });
}

/// Random bytes: bare, after a valid header, or as checksummed frames of
/// random payloads.
#[test]
fn fuzz_log_random_bytes() {
    let fixture = Fixture::new();
    let random = proptest::collection::vec(any::<u8>(), 0..RANDOM_BYTES_MAX);
    let strategy = (0u8..3, random);
    let target = "log random bytes";
    timed(target, || {
        let result = runner(target, cases(RANDOM_CASES_CI)).run(&strategy, |(shape, bytes)| {
            let input = match shape {
                0 => bytes,
                1 => [segment_header(FIRST_SEQ), bytes].concat(),
                _ => [segment_header(FIRST_SEQ), checksummed(&bytes)].concat(),
            };
            let scan = check_scan(&fixture, &input)?;
            prop_assert!(
                scan.is_none_or(|s| s.records.is_empty()),
                "random bytes read as a commit"
            );
            Ok(())
        });
        passed(target, result);
    });
}

/// Whether decoding ended in a panic of the Arrow decoder, caught and
/// named by the engine. Reporting a panic allocates for itself (with
/// `RUST_BACKTRACE` set, symbolizing the backtrace takes ~100 MiB), which
/// says nothing of the input, so such a case's heap is not held to
/// [`DECODE_HEAP_BYTES_MAX`].
fn caught_panic(message: &str) -> bool {
    message.contains("the Arrow decoder panicked")
}

/// A frame around `payload` with its correct checksums.
fn checksummed(payload: &[u8]) -> Vec<u8> {
    seal_payload(payload.len() as u32, payload)
}

/// Frames whose checksum holds but whose payload was damaged before it was
/// summed: decoding them must fail cleanly (or give some record), never
/// panic or allocate by a length it read.
#[test]
fn fuzz_log_checksummed_garbage() {
    let fixture = Fixture::new();
    let strategy = (
        any::<Index>(),
        proptest::collection::vec(byte_mutation(), 1..4),
    );
    let target = "log checksummed garbage";
    timed(target, || {
        let result =
            runner(target, cases(CHECKSUMMED_CASES_CI)).run(&strategy, |(frame, mutations)| {
                let frame = &fixture.frames[frame.index(fixture.frames.len())];
                let mut payload = frame[FRAME_HEADER_BYTES..].to_vec();
                for mutation in &mutations {
                    apply_byte_mutation(&mut payload, mutation);
                }
                let mut decoded = None;
                let heap_bytes = allocation_counter::measure(|| {
                    decoded = Some(CommitRecord::decode_payload(&payload));
                })
                .bytes_max;
                let panicked =
                    decoded.is_some_and(|d| d.is_err_and(|e| caught_panic(&e.to_string())));
                prop_assert!(
                    panicked || heap_bytes <= DECODE_HEAP_BYTES_MAX,
                    "decoding a {}-byte payload held {heap_bytes} bytes of heap at once",
                    payload.len()
                );
                let segment = [segment_header(FIRST_SEQ), checksummed(&payload)].concat();
                let (scan, heap_bytes) = measured_scan(&segment);
                let scan = scan.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let panicked =
                    matches!(&scan.end, SegmentEnd::Corrupt { detail, .. } if caught_panic(detail));
                prop_assert!(
                    panicked || heap_bytes <= DECODE_HEAP_BYTES_MAX,
                    "scan held {heap_bytes} bytes"
                );
                if scan.records.is_empty() {
                    prop_assert!(
                        scan.end != SegmentEnd::Clean,
                        "a damaged frame read as nothing"
                    );
                }
                Ok(())
            });
        passed(target, result);
    });
}

/// A database whose log holds [`COMMITS`] single-row inserts into `t`,
/// left open (as after a crash); its folder and last segment.
struct Template {
    _dir: tempfile::TempDir,
    root: PathBuf,
    _db: Database,
}

async fn template() -> Template {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("db");
    let db = Database::open(root.to_str().expect("utf-8"))
        .await
        .expect("open");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        .await
        .expect("create");
    for id in 1..=COMMITS {
        session
            .execute(&format!("INSERT INTO t VALUES ({id}, 'row {id}')"))
            .await
            .expect("insert");
    }
    Template {
        _dir: dir,
        root,
        _db: db,
    }
}

fn last_segment(root: &Path) -> PathBuf {
    let segments = driftdb_engine::log::list_segments(&root.join(driftdb_engine::log::LOG_DIR))
        .expect("segments");
    segments.last().expect("a segment").1.clone()
}

/// The ids in `t`, or none when the table's creation was cut.
async fn ids(db: &Database) -> Result<Vec<i64>, Error> {
    let mut session = Session::new(db);
    let result = match session.execute_one("SELECT id FROM t ORDER BY id").await {
        Ok(result) => result,
        Err(e) if e.sqlstate() == "42P01" => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(result
        .batches
        .iter()
        .flat_map(|b| {
            let ids = b
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("ids");
            ids.values().to_vec()
        })
        .collect())
}

/// Opening a database whose last segment was damaged either recovers a
/// prefix of its commits (a torn tail cut) or refuses with XX001 / 55000.
#[test]
fn fuzz_log_recovery() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let template = runtime.block_on(template());
    let original = std::fs::read(last_segment(&template.root)).expect("segment");
    let strategy = proptest::collection::vec(byte_mutation(), 1..4);
    let target = "log recovery";
    timed(target, || {
        let result = runner(target, cases(RECOVERY_CASES_CI)).run(&strategy, |mutations| {
            let dir = tempfile::tempdir().expect("temp dir");
            let root = dir.path().join("db");
            copy_dir(&template.root, &root);
            let mut bytes = original.clone();
            for mutation in &mutations {
                apply_byte_mutation(&mut bytes, mutation);
            }
            std::fs::write(last_segment(&root), &bytes).expect("write segment");
            runtime.block_on(check_recovery(&root))
        });
        passed(target, result);
    });
}

async fn check_recovery(root: &Path) -> Result<(), TestCaseError> {
    let db = match Database::open(root.to_str().expect("utf-8")).await {
        Ok(db) => db,
        Err(e) => {
            prop_assert!(
                matches!(e.sqlstate(), "XX001" | "55000"),
                "{} {e}",
                e.sqlstate()
            );
            return Ok(());
        }
    };
    let found = ids(&db)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let prefix: Vec<i64> = (1..=found.len() as i64).collect();
    prop_assert_eq!(found, prefix, "recovered rows are a prefix of the commits");
    db.close()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    Ok(())
}
