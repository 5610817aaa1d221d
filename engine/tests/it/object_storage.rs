//! A database on object storage, over an in-memory store that keeps
//! conditional PUTs as S3 does: the log objects, recovery, the writer
//! lease and the fence. (The same paths against a real S3-compatible
//! server: `flight-server/tests/python/test_object_storage.py`.)

use std::sync::Arc;
use std::time::Duration;

use driftdb_engine::log::objects::{LOG_PREFIX, ObjectLog, Tail};
use driftdb_engine::storage::location::Location;
use driftdb_engine::{Database, Error, Limits, Session};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};

fn limits(ttl: Duration) -> Limits {
    Limits {
        writer_lease_ttl: ttl,
        ..Limits::default()
    }
}

async fn open(store: &Arc<dyn ObjectStore>, ttl: Duration) -> driftdb_engine::Result<Database> {
    Database::open_at(
        Location::object_store("mem://test", store.clone()),
        limits(ttl),
    )
    .await
}

async fn count(db: &Database, sql: &str) -> i64 {
    let result = Session::new(db)
        .execute_one(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let column = result.batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("int64");
    column.value(0)
}

async fn log_objects(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    let prefix = object_store::path::Path::from(LOG_PREFIX);
    let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await.expect("list");
    let mut names: Vec<String> = metas.into_iter().map(|m| m.location.to_string()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn commits_survive_a_crash_and_a_clean_close_on_object_storage() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let ttl = Duration::from_millis(300);
    let db = open(&store, ttl).await.expect("open");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (k BIGINT PRIMARY KEY, v TEXT)")
        .await
        .expect("create");
    for k in 0..20 {
        session
            .execute(&format!("INSERT INTO t VALUES ({k}, 'v{k}')"))
            .await
            .expect("insert");
    }
    db.persist().await.expect("persist");
    session
        .execute("UPDATE t SET v = 'late' WHERE k < 5")
        .await
        .expect("update");
    // One object per group commit, each named by its number and first seq.
    assert!(log_objects(&store).await.len() >= 2);
    // A crash: the process is gone without closing; its lease lapses.
    drop((session, db));
    let refused = open(&store, ttl)
        .await
        .expect_err("the lease is still held");
    assert_eq!(refused.sqlstate(), "55006", "{refused}");
    tokio::time::sleep(ttl).await;
    let db = open(&store, ttl)
        .await
        .expect("reopen after the lease lapsed");
    assert_eq!(count(&db, "SELECT count(*) FROM t").await, 20);
    assert_eq!(
        count(&db, "SELECT count(*) FROM t WHERE v = 'late'").await,
        5
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM t VERSION AS OF 21").await,
        20
    );
    // A clean close releases the lease: the next opener need not wait.
    db.close().await.expect("close");
    drop(db);
    let db = open(&store, ttl).await.expect("reopen after close");
    assert_eq!(count(&db, "SELECT count(*) FROM t").await, 20);
}

#[tokio::test]
async fn a_writer_overtaken_by_another_stops_and_history_does_not_fork() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let ttl = Duration::from_secs(30);
    let db = open(&store, ttl).await.expect("open");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (k BIGINT)")
        .await
        .expect("create");
    session
        .execute("INSERT INTO t VALUES (1)")
        .await
        .expect("insert");
    session
        .execute("CREATE SEQUENCE s")
        .await
        .expect("sequence");
    // Another process takes over (as after this one was paused past its
    // lease): it reads the log and fences it, commits after the fence, and
    // checkpoints, deleting what the checkpoint covers.
    let log = ObjectLog::new(store.clone()).expect("log");
    let (records, tail) = log.read_after(0).await.expect("read");
    assert_eq!(records.len(), 3);
    assert!(log.fence(tail).await.expect("fence"), "the fence is placed");
    let after_fence = object_store::path::Path::from(format!(
        "{LOG_PREFIX}/{:020}-{:020}.log",
        tail.number + 1,
        tail.seq
    ));
    store
        .put(&after_fence, vec![0u8; 100].into())
        .await
        .expect("a later object");
    log.delete_through(tail.seq + 5).await.expect("delete");
    assert!(
        log_objects(&store)
            .await
            .iter()
            .any(|name| name.contains(&format!("{:020}-", tail.number))),
        "a young fence is kept: it holds the name the replaced writer aims at"
    );
    let e = session
        .execute("INSERT INTO t VALUES (2)")
        .await
        .expect_err("the overtaken writer's commit fails");
    assert_eq!(e.sqlstate(), "55006", "{e}");
    assert!(matches!(e, Error::Fenced { .. }), "{e}");
    // And it stays stopped, also for persists and for sequence values
    // past its reservation (which would repeat its successor's).
    let again = session
        .execute("INSERT INTO t VALUES (3)")
        .await
        .unwrap_err();
    assert_eq!(again.sqlstate(), "55006", "{again}");
    let values = session
        .execute("SELECT nextval('s') FROM generate_series(1, 2000)")
        .await
        .unwrap_err();
    assert_eq!(values.sqlstate(), "55006", "{values}");
    assert_eq!(db.persist().await.unwrap_err().sqlstate(), "55006");
    // After the (simulated) checkpoint at seq 3 the log holds the fence
    // and nothing of the replaced writer's.
    store.delete(&after_fence).await.expect("delete");
    let (records, after) = log.read_after(3).await.expect("read");
    assert!(records.is_empty(), "{records:?}");
    assert_eq!(
        after,
        Tail {
            number: tail.number + 1,
            seq: 4
        }
    );
}

#[tokio::test]
async fn a_second_opener_is_refused_while_the_first_holds_the_lease() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let ttl = Duration::from_secs(30);
    let _first = open(&store, ttl).await.expect("open");
    let e = open(&store, ttl).await.expect_err("second writer");
    assert_eq!(e.sqlstate(), "55006");
    assert!(e.to_string().contains("holds it for writing"), "{e}");
}

#[tokio::test]
async fn checkpoints_let_old_log_objects_go_but_never_the_newest() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let ttl = Duration::from_secs(30);
    let db = open(&store, ttl).await.expect("open");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (k BIGINT)")
        .await
        .expect("create");
    for round in 0..3 {
        session
            .execute(&format!("INSERT INTO t VALUES ({round})"))
            .await
            .expect("insert");
        db.persist().await.expect("persist");
    }
    let objects = log_objects(&store).await;
    assert!(!objects.is_empty());
    assert!(objects.len() <= 3, "old log objects stay: {objects:?}");
    db.close().await.expect("close");
    drop((session, db));
    let db = open(&store, ttl).await.expect("reopen");
    assert_eq!(count(&db, "SELECT count(*) FROM t").await, 3);
    Session::new(&db)
        .execute("INSERT INTO t VALUES (9)")
        .await
        .expect("commit after reopen");
    assert_eq!(count(&db, "SELECT count(*) FROM t").await, 4);
}

#[tokio::test]
async fn sequences_resume_after_their_reservation_on_object_storage() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let ttl = Duration::from_secs(30);
    let db = open(&store, ttl).await.expect("open");
    let mut session = Session::new(&db);
    session.execute("CREATE SEQUENCE s").await.expect("create");
    let first = count(&db, "SELECT nextval('s')").await;
    db.close().await.expect("close");
    drop((session, db));
    let db = open(&store, ttl).await.expect("reopen");
    let next = count(&db, "SELECT nextval('s')").await;
    assert!(next > first, "sequence went back: {first} then {next}");
}

/// Open over `store` with requests failing at `rate`, retrying opens that
/// fail on a fault or on the lease a failed attempt left behind.
async fn open_flaky(
    store: &Arc<dyn ObjectStore>,
    rate: f64,
    seed: u64,
) -> (Database, Arc<driftdb_engine::storage::faults::FaultyStore>) {
    let ttl = Duration::from_millis(100);
    for attempt in 0..1_000u64 {
        let plan = driftdb_engine::storage::faults::FaultPlan {
            failure_rate: rate,
            latency: Duration::from_micros(100),
            seed: seed + attempt,
            only: None,
        };
        let (location, faulty) =
            Location::object_store("mem://flaky", store.clone()).with_faults(plan);
        match Database::open_at(location, limits(ttl)).await {
            Ok(db) => return (db, faulty),
            Err(e) if e.sqlstate() == "55006" => tokio::time::sleep(ttl / 2).await,
            Err(e) => assert_eq!(e.sqlstate(), "58030", "open: {e}"),
        }
    }
    panic!("opening failed 1000 times in a row");
}

#[tokio::test]
async fn a_flaky_object_store_loses_no_acknowledged_commit() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let (db, faulty) = open_flaky(&store, 0.02, 5).await;
    faulty.set_enabled(false);
    Session::new(&db)
        .execute("CREATE TABLE t (k BIGINT PRIMARY KEY)")
        .await
        .expect("create");
    faulty.set_enabled(true);
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for k in 0..300i64 {
        match Session::new(&db)
            .execute(&format!("INSERT INTO t VALUES ({k})"))
            .await
        {
            Ok(_) => acknowledged.push(k),
            // A failed log PUT stops the writer: the commit's outcome is unknown.
            Err(e) => {
                assert!(matches!(e.sqlstate(), "58030" | "55006" | "08007"), "{e}");
                refused += 1;
            }
        }
        if k % 50 == 0 {
            let _ = db.persist().await;
        }
    }
    assert!(
        refused > 0 && faulty.injected() > 0,
        "no fault: the test tests nothing"
    );
    drop(db);
    let (db, faulty) = open_flaky(&store, 0.0, 99).await;
    faulty.set_enabled(false);
    let result = Session::new(&db)
        .execute_one("SELECT k FROM t ORDER BY k")
        .await
        .expect("read");
    let keys: Vec<i64> = result
        .batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .expect("int64")
                .values()
                .to_vec()
        })
        .collect();
    // A failed PUT here fails before it does anything, so the log holds
    // exactly the acknowledged commits.
    assert_eq!(keys, acknowledged);
}

#[tokio::test]
async fn a_log_object_without_its_header_is_damage_not_an_empty_log() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let db = open(&store, Duration::from_secs(30)).await.expect("open");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (k BIGINT)")
        .await
        .expect("create");
    session
        .execute("INSERT INTO t VALUES (1)")
        .await
        .expect("insert");
    let newest = log_objects(&store).await.pop().expect("an object");
    db.close().await.expect("close");
    drop((session, db));
    let path = object_store::path::Path::from(newest.as_str());
    store
        .put(&path, Vec::<u8>::new().into())
        .await
        .expect("empty the newest log object");
    let e = open(&store, Duration::from_secs(30))
        .await
        .expect_err("a zero-byte log object");
    assert_eq!(e.sqlstate(), "XX001", "{e}");
    assert!(e.to_string().contains(&newest), "{e}");
}
