//! Concurrent writers while background persists run: every committed row is
//! visible exactly once, live and after reopening; a second opener is refused.

use driftdb_engine::{Database, Limits, Session};

const WRITERS: usize = 4;
const ROWS_PER_WRITER: usize = 150;

async fn count_rows(session: &mut Session) -> (i64, i64) {
    let result = session
        .execute_one("SELECT count(*), count(DISTINCT k) FROM t")
        .await
        .expect("count");
    let batch = &result.batches[0];
    let column = |i: usize| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .expect("count is BIGINT")
            .value(0)
    };
    (column(0), column(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_appear_once_while_persists_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let path = path.to_str().expect("utf-8");
    let limits = Limits {
        memtable_bytes_max: 8 * 1024,
        ..Limits::default()
    };
    let db = Database::open_with(path, limits).await.expect("open");
    Session::new(&db)
        .execute("CREATE TABLE t (k BIGINT PRIMARY KEY, writer INT)")
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut session = Session::new(&db);
            for n in 0..ROWS_PER_WRITER {
                let k = writer * ROWS_PER_WRITER + n;
                let sql = format!("INSERT INTO t VALUES ({k}, {writer})");
                session.execute(&sql).await.expect("insert");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let expected = (WRITERS * ROWS_PER_WRITER) as i64;
    let mut session = Session::new(&db);
    assert_eq!(count_rows(&mut session).await, (expected, expected), "live");
    db.persist().await.expect("persist");
    assert_eq!(
        count_rows(&mut session).await,
        (expected, expected),
        "persisted"
    );

    let second = Database::open(path).await;
    assert_eq!(
        second
            .expect_err("a second writer must be refused")
            .sqlstate(),
        "55006"
    );

    db.close().await.expect("close");
    let db = Database::open(path).await.expect("reopen");
    let mut session = Session::new(&db);
    assert_eq!(
        count_rows(&mut session).await,
        (expected, expected),
        "reopened"
    );
    let commits = db.commits();
    assert_eq!(commits.len(), WRITERS * ROWS_PER_WRITER + 1);
    assert!(
        commits
            .windows(2)
            .all(|w| w[0].seq + 1 == w[1].seq && w[0].time_us < w[1].time_us),
        "seqs contiguous, commit times strictly increasing"
    );
}
