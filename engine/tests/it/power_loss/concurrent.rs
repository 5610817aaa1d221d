//! Concurrent writers whose commits share group fsyncs, cut with torn
//! writes: several frames are appended by one write and made durable by
//! one fsync, so a power cut can leave any of their pages unwritten.
//!
//! When the page of an earlier frame of the last, unacknowledged group
//! reads back as zeros and a later frame of the same group is intact, the
//! log reader tells it from corruption by the later frame's `synced_len`
//! (segment format 2): it was written while the damaged bytes were not yet
//! durable, so the damage is a torn tail and is cut.

use std::collections::BTreeSet;
use std::path::Path;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use driftdb_engine::storage::simfs::SimFs;
use driftdb_engine::{Database, Session};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::harness::{assert_undamaged, block_on, limits, path_str, power_cut, power_cut_at};

/// Writers committing at once in the concurrent trials (their frames share group fsyncs).
const CONCURRENT_WRITERS: i64 = 4;
/// Commits each concurrent writer attempts.
const CONCURRENT_COMMITS_MAX: i64 = 12;
/// Bytes of each concurrent commit's payload (a frame spans pages).
const CONCURRENT_PAYLOAD_BYTES: usize = 3000;

/// What the concurrent writers saw: acknowledged `(writer, n)` rows, and
/// the one commit per writer that failed (in doubt).
#[derive(Debug, Default)]
struct ConcurrentAcks {
    acked: BTreeSet<(i64, i64)>,
    in_doubt: BTreeSet<(i64, i64)>,
}

/// One concurrent trial: writers commit beside each other (group commit)
/// until the power goes at a random step, with torn writes; after reopening
/// every acknowledged row is there once and every other row belongs to a
/// commit in doubt.
pub(super) fn concurrent_trial(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("db");
    let fs = SimFs::new(dir.path()).expect("simulated disk");
    let what = format!(
        "concurrent seed {seed} (DRIFTDB_POWERLOSS_SEED={seed} DRIFTDB_POWERLOSS_TRIALS=1 reruns it; thread timing may differ)"
    );
    let steps_max = (CONCURRENT_WRITERS * CONCURRENT_COMMITS_MAX) as u64 * 2;
    fs.arm(power_cut_at(rng.random_range(1..=steps_max)));
    let busy = rng.random_bool(0.5);
    let acks = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(concurrent_writers(&db_path, &fs, busy));
    power_cut(&fs, Some(rng.random()), &what);
    block_on(assert_undamaged(&db_path, &what));
    let rows = block_on(recovered_rows(&db_path, &what));
    let mut present = BTreeSet::new();
    for (w, n, len) in rows {
        assert!(present.insert((w, n)), "{what}: ({w}, {n}) recovered twice");
        assert_eq!(
            len as usize, CONCURRENT_PAYLOAD_BYTES,
            "{what}: torn payload"
        );
        assert!(
            acks.acked.contains(&(w, n)) || acks.in_doubt.contains(&(w, n)),
            "{what}: ({w}, {n}) was never acknowledged nor in doubt"
        );
    }
    let lost: Vec<_> = acks.acked.difference(&present).collect();
    assert!(
        lost.is_empty(),
        "{what}: acknowledged commits lost: {lost:?}"
    );
}

/// Every `(writer, n, payload length)` the reopened database holds.
async fn recovered_rows(db_path: &Path, what: &str) -> Vec<(i64, i64, i64)> {
    let db = Database::open(path_str(db_path))
        .await
        .unwrap_or_else(|e| panic!("{what}: reopening: {e}"));
    if db.catalog().tables.is_empty() {
        return Vec::new(); // the power went before CREATE TABLE was durable
    }
    let result = Session::new(&db)
        .execute_one("SELECT w, n, length(payload) FROM c")
        .await
        .unwrap_or_else(|e| panic!("{what}: select: {e}"));
    let mut rows = Vec::new();
    for batch in &result.batches {
        let cast = |i: usize| arrow::compute::cast(batch.column(i), &DataType::Int64).expect("int");
        let (w, n, len) = (cast(0), cast(1), cast(2));
        let (w, n, len) = (
            w.as_primitive::<Int64Type>(),
            n.as_primitive::<Int64Type>(),
            len.as_primitive::<Int64Type>(),
        );
        rows.extend((0..batch.num_rows()).map(|r| (w.value(r), n.value(r), len.value(r))));
    }
    rows
}

/// Run the concurrent writers until each one's first failure.
async fn concurrent_writers(db_path: &Path, fs: &SimFs, busy: bool) -> ConcurrentAcks {
    let mut acks = ConcurrentAcks::default();
    let Ok(db) = Database::open_with_fs(path_str(db_path), limits(busy), fs.as_durable()).await
    else {
        return acks;
    };
    let create = "CREATE TABLE c (w BIGINT NOT NULL, n BIGINT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (w, n))";
    if Session::new(&db).execute(create).await.is_err() {
        return acks;
    }
    let tasks: Vec<_> = (0..CONCURRENT_WRITERS)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut session = Session::new(&db);
                let payload = "x".repeat(CONCURRENT_PAYLOAD_BYTES);
                let mut acked = Vec::new();
                for n in 0..CONCURRENT_COMMITS_MAX {
                    let sql = format!("INSERT INTO c VALUES ({w}, {n}, '{payload}')");
                    if session.execute(&sql).await.is_err() {
                        return (acked, Some((w, n)));
                    }
                    acked.push((w, n));
                }
                (acked, None)
            })
        })
        .collect();
    for task in tasks {
        let (acked, failed) = task.await.expect("writer task");
        acks.acked.extend(acked);
        acks.in_doubt.extend(failed);
    }
    acks
}
