//! Log tests: frames round-trip, a torn tail is cut, corruption elsewhere is an error.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};

use super::*;

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

fn write_segment(dir: &Path, first_seq: u64, seqs: std::ops::RangeInclusive<u64>) -> PathBuf {
    let path = dir.join(format!("{first_seq:020}.log"));
    let mut file = File::create(&path).expect("create");
    for seq in seqs {
        file.write_all(&record(seq).encode_frame().expect("encode"))
            .expect("write");
    }
    path
}

#[test]
fn frames_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_segment(dir.path(), 1, 1..=3);
    let commits = read_log(dir.path(), 1 << 20).expect("read");
    assert_eq!(
        commits.iter().map(|c| c.header.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(commits[1].batches[0], record(2).batches[0]);
}

#[test]
fn torn_tail_of_last_segment_is_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_segment(dir.path(), 1, 1..=2);
    let last = write_segment(dir.path(), 3, 3..=4);
    let full = std::fs::metadata(&last).expect("meta").len();
    let file = OpenOptions::new().write(true).open(&last).expect("open");
    file.set_len(full - 5).expect("truncate");
    let commits = read_log(dir.path(), 1 << 20).expect("read");
    assert_eq!(
        commits.iter().map(|c| c.header.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // The cut is durable: the file now ends after commit 3.
    let frame3 = record(3).encode_frame().expect("encode").len() as u64;
    assert_eq!(std::fs::metadata(&last).expect("meta").len(), frame3);
}

#[test]
fn corruption_before_the_tail_names_file_and_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = write_segment(dir.path(), 1, 1..=2);
    write_segment(dir.path(), 3, 3..=3);
    let mut bytes = std::fs::read(&first).expect("read");
    let frame1 = record(1).encode_frame().expect("encode").len();
    bytes[frame1 + 12] ^= 0xff; // flip a payload byte of commit 2
    std::fs::write(&first, &bytes).expect("write");
    match read_log(dir.path(), 1 << 20) {
        Err(Error::CorruptLog { file, offset, .. }) => {
            assert!(file.ends_with("00000000000000000001.log"), "{file}");
            assert_eq!(offset, frame1 as u64);
        }
        other => panic!("expected CorruptLog, got {other:?}"),
    }
}
