//! Compaction into current and history tiers (`COMPACT TABLE`): every
//! version stays readable with its identity, a read of the present reads
//! only the current tier, replaced files leave the disk once no checkpoint
//! names them and no scan holds them, and commits and scans running beside
//! a compaction see nothing change.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{TempDb, text};
use arrow::array::{Array, Int64Array, UInt64Array};
use driftdb_engine::sql::parser::parse_statements;
use driftdb_engine::sql::session::Output;
use driftdb_engine::{Database, Limits, Session};
use futures::StreamExt;

/// Background compaction off: these tests decide when it runs.
fn manual() -> Limits {
    Limits {
        compact_retired_percent_min: 0,
        ..Limits::default()
    }
}

/// The table at sampled versions and its whole history, as text.
async fn answers(session: &mut Session, last: u64) -> Vec<String> {
    let mut out = Vec::new();
    for seq in (1..=last).step_by(5).chain([last]) {
        out.push(
            text(
                session,
                &format!("SELECT * FROM t VERSION AS OF {seq} ORDER BY id"),
            )
            .await,
        );
    }
    out.push(
        text(
            session,
            "SELECT *, _rowid, _seq, _system_from, _system_to FROM history('t') ORDER BY _rowid",
        )
        .await,
    );
    out.push(
        text(
            session,
            "SELECT * FROM history('t', 20, 40) ORDER BY _rowid",
        )
        .await,
    );
    out
}

/// `COMPACT TABLE t`'s report row by column name.
async fn compact(session: &mut Session) -> BTreeMap<String, u64> {
    let result = session
        .execute_one("COMPACT TABLE t")
        .await
        .expect("compact");
    let batch = &result.batches[0];
    let schema = batch.schema();
    schema
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let column = batch.column(i).as_any().downcast_ref::<UInt64Array>()?;
            Some((f.name().clone(), column.value(0)))
        })
        .collect()
}

async fn count(session: &mut Session, sql: &str) -> i64 {
    let result = session
        .execute_one(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let column = result.batches[0].column(0);
    column
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("count")
        .value(0)
}

fn parquet_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for table in std::fs::read_dir(dir.join("data")).expect("data folder") {
        for file in std::fs::read_dir(table.expect("entry").path()).expect("table folder") {
            let name = file
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name.ends_with(".parquet") {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

/// Updates, deletes and an added column over four persisted files.
async fn churn(db: &Database, session: &mut Session, rounds: u64) {
    for round in 0..rounds {
        let id = |k: u64| (round * 37 + k * 101) % 400;
        session
            .execute(&format!(
                "UPDATE t SET v = v + {round} WHERE id IN ({}, {}, {}, {})",
                id(1),
                id(2),
                id(3),
                id(4)
            ))
            .await
            .expect("update");
        if round % 9 == 4 {
            session
                .execute(&format!("DELETE FROM t WHERE id = {}", id(5)))
                .await
                .expect("delete");
        }
        if round % 10 == 9 {
            db.persist().await.expect("persist");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_every_version_and_frees_what_it_replaced() {
    let temp = TempDb::new();
    let path = &temp.folder;
    let db = temp.open(manual()).await;
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, note TEXT)")
        .await
        .expect("create");
    for part in 0..4 {
        session
            .execute(&format!(
                "INSERT INTO t SELECT x, x * 10, 'row ' || x FROM generate_series({}, {}) AS g(x)",
                part * 100,
                part * 100 + 99
            ))
            .await
            .expect("insert");
        db.persist().await.expect("persist");
    }
    churn(&db, &mut session, 30).await;
    session
        .execute("ALTER TABLE t ADD COLUMN extra BIGINT")
        .await
        .expect("add column");
    session
        .execute("UPDATE t SET extra = id WHERE id % 7 = 0")
        .await
        .expect("update extra");
    churn(&db, &mut session, 20).await;
    let last = db.visible_seq();
    let before = answers(&mut session, last).await;
    let live = count(&mut session, "SELECT count(*) FROM t").await as u64;
    let versions = count(&mut session, "SELECT count(*) FROM history('t')").await as u64;

    let report = compact(&mut session).await;
    assert!(report["files_rewritten"] >= 4, "{report:?}");
    assert_eq!(report["current_files"], 1, "{report:?}");
    assert_eq!(report["history_files"], 1, "{report:?}");
    assert_eq!(report["current_rows"], live, "{report:?}");
    assert_eq!(
        report["current_rows"] + report["history_rows"],
        versions,
        "{report:?}"
    );
    assert_eq!(
        answers(&mut session, last).await,
        before,
        "after compacting"
    );

    let now = db.table_snapshot("t", db.visible_seq()).expect("t");
    assert_eq!(now.files.len(), 1, "the present reads one current file");
    assert!(now.history_files.is_empty(), "and no history file");
    let past = db.table_snapshot("t", 3).expect("t");
    assert_eq!(
        past.history_files.len(),
        1,
        "an old snapshot reads the history tier"
    );
    drop((now, past));

    // The checkpoint before the compaction still names the replaced files;
    // two more checkpoints later, none does, and they are gone.
    let on_disk = parquet_files(path).len();
    assert!(
        on_disk >= 6,
        "replaced files wait for the older checkpoint: {on_disk}"
    );
    for round in 0..2 {
        session
            .execute(&format!(
                "INSERT INTO t (id, v, note) VALUES ({}, 1, 'late')",
                1000 + round
            ))
            .await
            .expect("insert");
        db.persist().await.expect("persist");
    }
    assert_eq!(
        parquet_files(path).len(),
        4,
        "current, history and two new files"
    );
    let last = db.visible_seq();
    let before = answers(&mut session, last).await;

    // A second round rewrites the current file, with its new retirements.
    churn(&db, &mut session, 15).await;
    let last = db.visible_seq();
    let before_second = answers(&mut session, last).await;
    let report = compact(&mut session).await;
    assert_eq!(report["history_files"], 1, "{report:?}");
    assert_eq!(
        answers(&mut session, last).await,
        before_second,
        "second compaction"
    );
    assert_eq!(
        answers(&mut session, last - 15).await[..2],
        before[..2],
        "versions from before the second round"
    );
    drop(session);
    db.close().await.expect("close");
    // A file a crash left unnamed (a compaction's output before its
    // checkpoint): opening deletes it, and only it.
    let table_dir = std::fs::read_dir(path.join("data"))
        .expect("data folder")
        .next()
        .expect("a table folder")
        .expect("entry")
        .path();
    let stray = table_dir.join("00000000000000000002-c1-0000.parquet");
    std::fs::write(&stray, b"left by a crash").expect("stray file");
    let before_open = parquet_files(path);

    let db = temp.open(manual()).await;
    assert!(!stray.exists(), "an unnamed file is deleted at open");
    let after_open = parquet_files(path);
    assert!(
        after_open.iter().all(|f| before_open.contains(f)) && after_open.len() >= 2,
        "only unnamed files go: {before_open:?} -> {after_open:?}"
    );
    let mut session = Session::new(&db);
    assert_eq!(answers(&mut session, last).await, before_second, "reopened");
    session
        .execute("INSERT INTO t (id, v) VALUES (1, 0)")
        .await
        .expect_err("the key index sees the current tier");
    let nothing = compact(&mut session).await;
    assert_eq!(
        nothing["files_rewritten"], 0,
        "nothing left to compact: {nothing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_keeps_reading_the_files_it_started_with() {
    let temp = TempDb::new();
    let path = &temp.folder;
    let limits = Limits {
        parquet_row_group_rows_max: 1024,
        ..manual()
    };
    let db = temp.open(limits).await;
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
        .await
        .expect("create");
    session
        .execute("INSERT INTO t SELECT x, x + 0 FROM generate_series(1, 50000) AS g(x)")
        .await
        .expect("insert");
    session
        .execute("UPDATE t SET v = 0 WHERE id % 3 = 0")
        .await
        .expect("update");
    db.persist().await.expect("persist");
    let expected = count(&mut session, "SELECT CAST(sum(v) AS BIGINT) FROM t").await;
    let original = parquet_files(path);

    let statement = parse_statements("SELECT v FROM t")
        .expect("parse")
        .remove(0);
    let Output::Rows { mut stream, .. } = session.execute_streaming(statement).await.expect("scan")
    else {
        panic!("a query gives rows");
    };
    let first = stream.next().await.expect("a batch").expect("no error");
    let mut sum = sum_of(&first);

    let mut other = Session::new(&db);
    compact(&mut other).await;
    for round in 0..3 {
        other
            .execute(&format!("UPDATE t SET v = v + 1 WHERE id = {}", round + 1))
            .await
            .expect("update");
        db.persist().await.expect("persist");
    }
    let on_disk = parquet_files(path);
    assert!(
        original.iter().all(|f| on_disk.contains(f)),
        "a scan holds the files it reads: {original:?} in {on_disk:?}"
    );
    while let Some(batch) = stream.next().await {
        sum += sum_of(&batch.expect("the files the scan started with are still there"));
    }
    assert_eq!(sum, expected, "the scan's snapshot, whole");
    drop(stream);
    db.persist().await.expect("persist");
    let on_disk = parquet_files(path);
    assert!(
        original.iter().all(|f| !on_disk.contains(f)),
        "released, they go at the next checkpoint: {on_disk:?}"
    );
}

fn sum_of(batch: &arrow::record_batch::RecordBatch) -> i64 {
    let values = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("v");
    values.iter().flatten().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_beside_a_compaction_are_kept() {
    let temp = TempDb::new();
    let db = temp.open(manual()).await;
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
        .await
        .expect("create");
    session
        .execute("INSERT INTO t SELECT x, 0 FROM generate_series(0, 999) AS g(x)")
        .await
        .expect("insert");
    db.persist().await.expect("persist");
    let start = db.visible_seq();

    // The writer sets one key per commit and notes (seq, id, v).
    let writer_db = db.clone();
    let writer = tokio::spawn(async move {
        let mut session = Session::new(&writer_db);
        let mut log = Vec::new();
        for n in 1..=300i64 {
            let id = (n * 7919) % 1000;
            let result = session
                .execute_one(&format!("UPDATE t SET v = {n} WHERE id = {id}"))
                .await
                .expect("update");
            log.push((result.seq.expect("a commit"), id, n));
        }
        log
    });
    let mut compactions = 0;
    while !writer.is_finished() {
        compact(&mut session).await;
        compactions += 1;
    }
    let log = writer.await.expect("writer");
    assert!(compactions >= 2, "compactions ran beside the writer");
    compact(&mut session).await;

    let mut model: BTreeMap<i64, i64> = (0..1000).map(|id| (id, 0)).collect();
    let mut checks = 0;
    for (i, (seq, id, v)) in log.iter().enumerate() {
        model.insert(*id, *v);
        if i % 37 != 0 && i != log.len() - 1 {
            continue;
        }
        let result = session
            .execute_one(&format!(
                "SELECT id, v FROM t VERSION AS OF {seq} ORDER BY id"
            ))
            .await
            .expect("as of");
        let mut seen = BTreeMap::new();
        for batch in &result.batches {
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("id");
            let vs = batch
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("v");
            for row in 0..batch.num_rows() {
                seen.insert(ids.value(row), vs.value(row));
            }
        }
        assert_eq!(seen, model, "AS OF {seq} (writes began after {start})");
        checks += 1;
    }
    assert!(checks > 5);
    drop(session);
    db.close().await.expect("close");
    let db = temp.open(manual()).await;
    let mut session = Session::new(&db);
    assert_eq!(
        count(&mut session, "SELECT count(*) FROM history('t')").await,
        1000 + 300,
        "every version once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_refuses_what_it_cannot_do() {
    let temp = TempDb::new();
    let db = temp.open(manual()).await;
    let mut session = Session::new(&db);
    let missing = session
        .execute("COMPACT TABLE nope")
        .await
        .expect_err("no table");
    assert_eq!(missing.sqlstate(), "42P01", "{missing}");
    session
        .execute("CREATE TABLE t (id INT)")
        .await
        .expect("create");
    session.execute("BEGIN").await.expect("begin");
    let in_block = session
        .execute("COMPACT TABLE t")
        .await
        .expect_err("in a block");
    assert_eq!(in_block.sqlstate(), "25001", "{in_block}");
    session.execute("ROLLBACK").await.expect("rollback");
    let syntax = session
        .execute("COMPACT t")
        .await
        .expect_err("TABLE is required");
    assert_eq!(syntax.sqlstate(), "42601", "{syntax}");
    let quoted = session
        .execute("\"COMPACT\" TABLE t")
        .await
        .expect_err("a quoted word is a name");
    assert_eq!(quoted.sqlstate(), "42601", "{quoted}");
    let empty = compact(&mut session).await;
    assert_eq!(empty["files_rewritten"], 0);
}
