//! Object-storage fault injection: with a fraction of store requests
//! failing (5% here, `DRIFTDB_FAULT_RATE=0.2` for a harder run), a workload
//! of commits, updates, deletes, persists and reads loses nothing
//! acknowledged, never returns a wrong answer, and reports every failure
//! with SQLSTATE 58030. Checked on a local folder (data files and
//! checkpoints read through the store) and on `memory://` (written through
//! it too), and on the local folder again after reopening.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::Int64Array;
use driftdb_engine::storage::faults::{FaultPlan, FaultyStore};
use driftdb_engine::storage::location::Location;
use driftdb_engine::{Database, Error, Limits, Session};

/// Fraction of store requests that fail in CI.
const FAULT_RATE_DEFAULT: f64 = 0.05;
/// Rounds of the workload (each: an insert, maybe an update, delete, persist, read).
const ROUNDS: i64 = 48;
/// Rows each round inserts.
const ROWS_PER_ROUND: i64 = 25;
/// How often opening may fail on injected faults before the test gives up
/// (an open reads every checkpoint and key table, and fails on any fault).
const OPEN_ATTEMPTS_MAX: usize = 1_000;

fn plan(seed: u64) -> FaultPlan {
    let failure_rate = std::env::var("DRIFTDB_FAULT_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(FAULT_RATE_DEFAULT);
    FaultPlan {
        failure_rate,
        latency: Duration::from_micros(200),
        seed,
        only: None,
    }
}

fn limits() -> Limits {
    Limits {
        memtable_bytes_max: 16 * 1024,
        ..Limits::default()
    }
}

/// What the table must hold: key → value, for acknowledged statements only.
type Model = BTreeMap<i64, i64>;

/// A statement's failure must be the store's (58030), never a wrong kind.
fn assert_store_failure(what: &str, e: &Error) {
    assert_eq!(e.sqlstate(), "58030", "{what}: {e}");
}

/// Run `sql`; true if it was acknowledged.
async fn write(db: &Database, sql: &str) -> bool {
    match Session::new(db).execute(sql).await {
        Ok(_) => true,
        Err(e) => {
            assert_store_failure(sql, &e);
            false
        }
    }
}

/// (rows, sum of keys, sum of values), or None when the read failed on a fault.
async fn read(db: &Database) -> Option<(i64, i64, i64)> {
    let sql = "SELECT count(*), coalesce(sum(k), 0), coalesce(sum(v), 0) FROM t";
    match Session::new(db).execute_one(sql).await {
        Ok(result) => {
            let value = |i: usize| {
                // sum(bigint) is numeric, as in PostgreSQL: read it as BIGINT.
                let column = arrow::compute::cast(
                    result.batches[0].column(i),
                    &arrow::datatypes::DataType::Int64,
                )
                .expect("a number");
                let column = column
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("BIGINT");
                column.value(0)
            };
            Some((value(0), value(1), value(2)))
        }
        Err(e) => {
            assert_store_failure(sql, &e);
            None
        }
    }
}

fn expected(model: &Model) -> (i64, i64, i64) {
    (model.len() as i64, model.keys().sum(), model.values().sum())
}

async fn round(db: &Database, model: &mut Model, r: i64) {
    let first = r * ROWS_PER_ROUND;
    let values: Vec<String> = (first..first + ROWS_PER_ROUND)
        .map(|k| format!("({k}, {k})"))
        .collect();
    if write(db, &format!("INSERT INTO t VALUES {}", values.join(", "))).await {
        model.extend((first..first + ROWS_PER_ROUND).map(|k| (k, k)));
    }
    if r % 3 == 0
        && write(
            db,
            &format!("UPDATE t SET v = v + 1 WHERE k % 7 = {}", r % 7),
        )
        .await
    {
        for (k, v) in model.iter_mut() {
            if k % 7 == r % 7 {
                *v += 1;
            }
        }
    }
    if r % 5 == 0 && write(db, &format!("DELETE FROM t WHERE k % 11 = {}", r % 11)).await {
        model.retain(|k, _| k % 11 != r % 11);
    }
    if r % 4 == 0
        && let Err(e) = db.persist().await
    {
        assert_store_failure("persist", &e);
    }
    if let Some(seen) = read(db).await {
        assert_eq!(seen, expected(model), "round {r}: a wrong answer");
    }
}

async fn workload(db: &Database) -> Model {
    Session::new(db)
        .execute("CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT)")
        .await
        .expect("create (the log does not go through the store)");
    let mut model = Model::new();
    for r in 0..ROUNDS {
        round(db, &mut model, r).await;
    }
    model
}

/// With faults off, the table holds exactly the model.
async fn assert_holds(db: &Database, faulty: &FaultyStore, model: &Model) {
    faulty.set_enabled(false);
    let seen = read(db).await.expect("no faults");
    assert_eq!(
        seen,
        expected(model),
        "acknowledged writes lost or phantom ones kept"
    );
    faulty.set_enabled(true);
}

/// Open `path` over a faulty store, retrying opens that fail on a fault.
async fn open_faulty(path: &str, seed: u64) -> (Database, Arc<FaultyStore>) {
    for attempt in 0..OPEN_ATTEMPTS_MAX {
        let (location, faulty) = Location::parse(path)
            .expect("location")
            .with_faults(plan(seed + attempt as u64));
        match Database::open_at(location, limits()).await {
            Ok(db) => return (db, faulty),
            Err(e) => assert_store_failure("open", &e),
        }
    }
    panic!("opening failed {OPEN_ATTEMPTS_MAX} times in a row");
}

#[tokio::test]
async fn a_flaky_store_under_a_local_database_loses_nothing_and_never_lies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let path = path.to_str().expect("utf-8");
    let (db, faulty) = open_faulty(path, 7).await;
    let model = workload(&db).await;
    assert_holds(&db, &faulty, &model).await;
    assert!(
        faulty.injected() > 0,
        "no fault was injected: the test tests nothing"
    );
    faulty.set_enabled(false);
    db.close().await.expect("close");
    drop(db);
    let (db, faulty) = open_faulty(path, 1_000).await;
    assert_holds(&db, &faulty, &model).await;
    // Reads keep failing cleanly or answering right after the reopen.
    for _ in 0..20 {
        if let Some(seen) = read(&db).await {
            assert_eq!(seen, expected(&model));
        }
    }
}

#[tokio::test]
async fn a_flaky_store_under_a_memory_database_loses_nothing_and_never_lies() {
    let (location, faulty) = Location::parse("memory://")
        .expect("location")
        .with_faults(plan(42));
    let db = Database::open_at(location, limits()).await.expect("open");
    let model = workload(&db).await;
    assert_holds(&db, &faulty, &model).await;
    assert!(
        faulty.injected() > 0,
        "no fault was injected: the test tests nothing"
    );
    // A persist that gets through at last keeps every row.
    faulty.set_enabled(false);
    db.persist().await.expect("persist without faults");
    assert_holds(&db, &faulty, &model).await;
}

#[tokio::test]
async fn a_failed_checkpoint_read_is_an_io_error_not_a_reason_to_fall_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let path = path.to_str().expect("utf-8");
    let db = Database::open(path).await.expect("open");
    let mut session = Session::new(&db);
    for round in 0..3 {
        session
            .execute(&format!("CREATE TABLE t{round} (k BIGINT)"))
            .await
            .expect("create");
        db.persist().await.expect("persist");
    }
    db.close().await.expect("close");
    drop((session, db));
    // Listing works; every read of a checkpoint fails on the way.
    let every_get_fails = FaultPlan {
        failure_rate: 1.0,
        only: Some("get"),
        ..plan(3)
    };
    let (location, _) = Location::parse(path)
        .expect("location")
        .with_faults(every_get_fails);
    let e = Database::open_at(location, limits())
        .await
        .expect_err("nothing can be read");
    assert_store_failure("open", &e);
    let db = Database::open(path)
        .await
        .expect("opens once the store answers");
    assert_eq!(db.catalog().tables.len(), 3);
}
