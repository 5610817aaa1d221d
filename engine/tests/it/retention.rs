//! History retention: `ALTER TABLE … SET (history_retention = …)` and
//! `VACUUM` move a table's horizon and remove the versions retired before
//! it. Every read the horizon still allows answers as before; every read
//! it does not is refused (22008) naming the horizon, never a partial answer.

use std::time::Duration;

use crate::common::{TempDb, text};
use driftdb_engine::{Limits, Session};

async fn answers(session: &mut Session, seqs: &[u64]) -> Vec<String> {
    let mut out = Vec::new();
    for seq in seqs {
        out.push(
            text(
                session,
                &format!("SELECT * FROM t VERSION AS OF {seq} ORDER BY id"),
            )
            .await,
        );
    }
    out
}

async fn churn(session: &mut Session, round: i64) -> u64 {
    let result = session
        .execute_one(&format!(
            "UPDATE t SET v = v + {round} WHERE id % 3 = {}",
            round % 3
        ))
        .await
        .expect("update");
    result.seq.expect("a commit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_removes_what_the_window_lets_go_and_refuses_reads_behind_it() {
    let temp = TempDb::new();
    let db = temp.open(Limits::default()).await;
    let mut session = Session::new(&db);
    session
        .execute(
            "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL);
             INSERT INTO t SELECT x, x FROM generate_series(1, 300) AS g(x)",
        )
        .await
        .expect("setup");
    let mut old = vec![db.visible_seq()];
    for round in 1..=4 {
        old.push(churn(&mut session, round).await);
    }
    db.persist().await.expect("persist");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut recent = Vec::new();
    for round in 5..=8 {
        recent.push(churn(&mut session, round).await);
    }
    let horizon = *old.last().expect("old commits");
    let kept = [&[horizon][..], &recent].concat();
    let before = answers(&mut session, &kept).await;
    let history_before = text(
        &mut session,
        &format!("SELECT * FROM history('t', {horizon}) ORDER BY _rowid"),
    )
    .await;
    let changes_before = text(
        &mut session,
        &format!(
            "SELECT * FROM table_changes('t', {}) ORDER BY _seq, id, _change_type",
            horizon + 1
        ),
    )
    .await;

    session
        .execute("ALTER TABLE t SET (history_retention = '1 second')")
        .await
        .expect("retention");
    let result = session.execute_one("VACUUM t").await.expect("vacuum");
    let report = arrow::util::pretty::pretty_format_batches(&result.batches)
        .expect("format")
        .to_string();
    assert!(
        report.contains(&format!("| {horizon} ")),
        "horizon at the last old commit: {report}"
    );
    // Rows 1..=300, a third updated per round: four old rounds retired 400 versions.
    assert!(report.contains("| 400 "), "versions removed: {report}");

    assert_eq!(
        answers(&mut session, &kept).await,
        before,
        "reads at or after the horizon"
    );
    let all = text(&mut session, "SELECT * FROM history('t') ORDER BY _rowid").await;
    assert_eq!(all, history_before, "history() starts at the horizon");
    let changes = text(
        &mut session,
        &format!(
            "SELECT * FROM table_changes('t', {}) ORDER BY _seq, id, _change_type",
            horizon + 1
        ),
    )
    .await;
    assert_eq!(changes, changes_before);
    for sql in [
        format!("SELECT * FROM t VERSION AS OF {}", old[0]),
        format!("SELECT * FROM history('t', {}, {horizon})", old[1]),
        format!("SELECT * FROM table_changes('t', {horizon})"),
        format!("SELECT * FROM table_diff('t', {}, {horizon})", old[0]),
        format!("RESTORE TABLE t TO VERSION AS OF {}", old[2]),
    ] {
        let error = session.execute(&sql).await.expect_err(&sql);
        assert_eq!(error.sqlstate(), "22008", "{sql}: {error}");
        assert!(
            error
                .to_string()
                .contains(&format!("from version {horizon}")),
            "{sql}: {error}"
        );
    }
    drop(session);
    db.close().await.expect("close");

    let db = temp.open(Limits::default()).await;
    let mut session = Session::new(&db);
    assert_eq!(answers(&mut session, &kept).await, before, "reopened");
    let error = session
        .execute(&format!("SELECT * FROM t VERSION AS OF {}", old[1]))
        .await
        .expect_err("the horizon is durable");
    assert_eq!(error.sqlstate(), "22008");
    let again = session
        .execute_one("VACUUM TABLE t RETAIN 1 HOURS")
        .await
        .expect("vacuum");
    let again = arrow::util::pretty::pretty_format_batches(&again.batches)
        .expect("format")
        .to_string();
    assert!(
        again.contains(&format!("| {horizon} ")),
        "a wider window never moves the horizon back: {again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_settings_and_refusals() {
    let temp = TempDb::new();
    let db = temp.open(Limits::default()).await;
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, 1); UPDATE t SET v = 2")
        .await
        .expect("setup");
    // No window at all: VACUUM keeps everything.
    session.execute("VACUUM t").await.expect("vacuum");
    let first = text(&mut session, "SELECT v FROM t VERSION AS OF 2").await;
    assert!(first.contains("| 1 "), "{first}");
    session
        .execute("ALTER TABLE t SET (history_retention = 'forever')")
        .await
        .expect("forever");
    for (sql, state) in [
        ("ALTER TABLE t SET (history_retention = 'soon')", "22023"),
        ("ALTER TABLE t SET (history_retention = 30)", "22023"),
        ("ALTER TABLE t SET (fillfactor = 70)", "0A000"),
        ("VACUUM nope", "42P01"),
        ("VACUUM t RETAIN 3 MONTHS", "42601"),
        ("VACUUM t RETAIN -1 DAYS", "42601"),
    ] {
        let error = session.execute(sql).await.expect_err(sql);
        assert_eq!(error.sqlstate(), state, "{sql}: {error}");
    }
    session.execute("BEGIN").await.expect("begin");
    let error = session.execute("VACUUM t").await.expect_err("in a block");
    assert_eq!(error.sqlstate(), "25001", "{error}");
}
