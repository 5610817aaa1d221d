//! AS OF a timestamp maps to the last commit at or before it, exactly.

use driftdb_engine::{Database, Session};

async fn count_at(session: &mut Session, clause: &str) -> i64 {
    let result = session
        .execute_one(&format!("SELECT count(*) FROM t {clause}"))
        .await
        .unwrap_or_else(|e| panic!("{clause}: {e}"));
    result.batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("BIGINT")
        .value(0)
}

fn rfc3339(time_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(time_us)
        .expect("valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[tokio::test]
async fn timestamps_resolve_to_the_commit_in_force() {
    let db = Database::open("memory://").await.expect("open");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (n INT)")
        .await
        .expect("create");
    for n in 0..3 {
        session
            .execute(&format!("INSERT INTO t VALUES ({n})"))
            .await
            .expect("insert");
    }
    let commits = db.commits();
    for (i, commit) in commits.iter().enumerate().skip(1) {
        let rows = i as i64; // commit i+1 holds i rows
        let at = rfc3339(commit.time_us);
        assert_eq!(
            count_at(&mut session, &format!("FOR SYSTEM_TIME AS OF '{at}'")).await,
            rows
        );
        assert_eq!(
            count_at(&mut session, &format!("TIMESTAMP AS OF '{at}'")).await,
            rows
        );
        assert_eq!(
            count_at(&mut session, &format!("VERSION AS OF {}", commit.seq)).await,
            rows
        );
        // One microsecond before the commit, the previous state was in force.
        let before = rfc3339(commit.time_us - 1);
        assert_eq!(
            count_at(&mut session, &format!("FOR SYSTEM_TIME AS OF '{before}'")).await,
            rows - 1
        );
    }
}

#[tokio::test]
async fn scans_report_row_counts_and_column_bounds() {
    use datafusion::common::ScalarValue;
    use datafusion::common::stats::Precision;
    use datafusion::datasource::TableProvider;
    use driftdb_engine::temporal::provider::TemporalTable;

    let db = Database::open("memory://").await.expect("open");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (n INT, s TEXT)")
        .await
        .expect("create");
    session
        .execute("INSERT INTO t VALUES (3, 'b'), (NULL, 'a')")
        .await
        .expect("insert");
    db.persist().await.expect("persist");
    session
        .execute("INSERT INTO t VALUES (-7, NULL)")
        .await
        .expect("insert");
    let snapshot = db.table_snapshot("t", db.visible_seq()).expect("table");
    let stats = TemporalTable::new(snapshot, false)
        .statistics()
        .expect("statistics");
    assert_eq!(stats.num_rows, Precision::Inexact(3));
    let n = &stats.column_statistics[0];
    assert_eq!(n.null_count, Precision::Inexact(1));
    assert_eq!(
        n.min_value,
        Precision::Inexact(ScalarValue::Int32(Some(-7)))
    );
    assert_eq!(n.max_value, Precision::Inexact(ScalarValue::Int32(Some(3))));
    let s = &stats.column_statistics[1];
    assert_eq!(
        s.max_value,
        Precision::Inexact(ScalarValue::Utf8(Some("b".into())))
    );
    // The scan operator reports them too, projected to what it reads, so
    // joins can build on their smaller side.
    let snapshot = db.table_snapshot("t", db.visible_seq()).expect("table");
    let state = datafusion::prelude::SessionContext::new().state();
    let scan = TemporalTable::new(snapshot, false)
        .scan(&state, Some(&vec![1]), &[], None)
        .await
        .expect("scan");
    // What DataFusion 55's join selection still reads.
    #[allow(deprecated)]
    let reported = scan.partition_statistics(None).expect("statistics");
    assert_eq!(reported.num_rows, Precision::Inexact(3));
    assert_eq!(reported.column_statistics.len(), 1);
    assert_eq!(reported.column_statistics[0].max_value, s.max_value);
}

#[tokio::test]
async fn query_stream_yields_batches_at_its_snapshot() {
    use futures::TryStreamExt;

    let db = Database::open("memory://").await.expect("open");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (n INT)")
        .await
        .expect("create");
    session
        .execute("INSERT INTO t SELECT * FROM generate_series(1, 10000)")
        .await
        .expect("insert");
    let (seq, stream) = session
        .query_stream("SELECT n FROM t")
        .await
        .expect("stream");
    assert_eq!(seq, 2);
    // A commit after the stream started is not in it.
    session
        .execute("INSERT INTO t VALUES (0)")
        .await
        .expect("insert");
    let batches: Vec<_> = stream.try_collect().await.expect("batches");
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 10_000);
    let refused = session.query_stream("DELETE FROM t").await;
    assert!(refused.is_err(), "a stream is read-only");
}

#[tokio::test]
async fn wholly_retired_files_are_skipped_only_where_nothing_in_them_is_visible() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let db = Database::open(path.to_str().expect("utf-8"))
        .await
        .expect("open");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (n INT)")
        .await
        .expect("create");
    session
        .execute("INSERT INTO t VALUES (1), (2)")
        .await
        .expect("insert");
    db.persist().await.expect("persist"); // file A: rows of commit 2
    session
        .execute("INSERT INTO t VALUES (3)")
        .await
        .expect("insert");
    db.persist().await.expect("persist"); // file B: row of commit 3
    session
        .execute("DELETE FROM t WHERE n < 3")
        .await
        .expect("delete"); // commit 4 retires all of A
    let files_at = |seq| db.table_snapshot("t", seq).expect("table").files.len();
    assert_eq!(files_at(3), 2);
    assert_eq!(files_at(4), 1, "file A has nothing live at 4");
    assert_eq!(count_at(&mut session, "").await, 1);
    assert_eq!(count_at(&mut session, "VERSION AS OF 3").await, 3);
    assert_eq!(count_at(&mut session, "FOR SYSTEM_TIME ALL").await, 3);
    // The same after reopening (file retirement counts rebuilt from the checkpoint and log).
    db.close().await.expect("close");
    let db = Database::open(path.to_str().expect("utf-8"))
        .await
        .expect("reopen");
    assert_eq!(db.table_snapshot("t", 4).expect("table").files.len(), 1);
    assert_eq!(db.table_snapshot("t", 3).expect("table").files.len(), 2);
}

/// Rows a query checked against the retirement map (`EXPLAIN ANALYZE`'s
/// `retirement_lookups`, summed over partitions).
async fn retirement_lookups(session: &mut Session, sql: &str) -> u64 {
    let result = session
        .execute_one(&format!("EXPLAIN ANALYZE {sql}"))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let text = driftdb_engine::sql::rows_as_text(&result.batches)
        .expect("render")
        .concat()
        .join("\n");
    let counts: Vec<u64> = text
        .split("retirement_lookups=")
        .skip(1)
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().expect("a count")
        })
        .collect();
    assert!(!counts.is_empty(), "no retirement_lookups in {text}");
    counts.iter().sum()
}

#[tokio::test]
async fn only_files_with_early_enough_retirements_pay_for_the_lookup() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open(dir.path().to_str().expect("utf-8"))
        .await
        .expect("open");
    let mut session = Session::new(&db);
    let mut run = async |sql: &str| session.execute(sql).await.expect(sql);
    run("CREATE TABLE t (n INT)").await;
    run("INSERT INTO t SELECT * FROM generate_series(1, 100)").await;
    db.persist().await.expect("persist"); // file A: 100 rows of commit 2
    run("INSERT INTO t SELECT * FROM generate_series(101, 130)").await;
    db.persist().await.expect("persist"); // file B: 30 rows of commit 3
    run("UPDATE t SET n = n + 1000 WHERE n = 120").await; // commit 4 retires one row of B
    let sum = |clause: &str| format!("SELECT sum(n) FROM t {clause}");
    // Now: A is untouched, B has a retirement (30 lookups), the new version sits in the memtable (1).
    assert_eq!(retirement_lookups(&mut session, &sum("")).await, 31);
    // As of commit 3 nothing was retired yet: no file pays, and the memtable row is not in the snapshot.
    assert_eq!(
        retirement_lookups(&mut session, &sum("VERSION AS OF 3")).await,
        0
    );
    // The answers are the same as with a lookup for every row.
    let value = async |session: &mut Session, sql: &str| {
        let result = session.execute_one(sql).await.expect("sum");
        driftdb_engine::sql::rows_as_text(&result.batches).expect("render")
    };
    assert_eq!(value(&mut session, &sum("")).await, [["9515"]]);
    assert_eq!(
        value(&mut session, &sum("VERSION AS OF 3")).await,
        [["8515"]]
    );
    assert_eq!(
        value(
            &mut session,
            "SELECT count(*) FROM t FOR SYSTEM_TIME ALL WHERE n >= 120"
        )
        .await,
        [["12"]]
    );
    db.close().await.expect("close");
}
