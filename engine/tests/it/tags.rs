//! Tags and clones: `CREATE TAG` names a version, every time-travel
//! argument reads it as that version, `VACUUM` keeps what a live tag sees
//! (and nothing else behind the horizon); `CREATE TABLE … CLONE … AS OF`
//! copies a table as it was. Expected answers are the engine's own reads
//! by version number, taken before the tag, the vacuum or the clone.

use std::time::Duration;

use crate::common::{TempDb, text};
use driftdb_engine::{Limits, Session};

async fn code(session: &mut Session, sql: &str) -> String {
    let error = session.execute(sql).await.expect_err(sql);
    error.sqlstate().to_string()
}

async fn churn(session: &mut Session, round: i64) -> u64 {
    let result = session
        .execute_one(&format!(
            "UPDATE t SET v = v + {round} WHERE id % 4 = {}",
            round % 4
        ))
        .await
        .expect("update");
    result.seq.expect("a commit")
}

async fn setup(session: &mut Session) -> Vec<u64> {
    session
        .execute(
            "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL);
             INSERT INTO t SELECT x, x FROM generate_series(1, 200) AS g(x)",
        )
        .await
        .expect("setup");
    let mut seqs = vec![session.db().visible_seq()];
    for round in 1..=6 {
        seqs.push(Box::pin(churn(session, round)).await);
    }
    seqs
}

fn at(seq: impl std::fmt::Display) -> String {
    format!("SELECT * FROM t VERSION AS OF {seq} ORDER BY id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_reads_as_its_version_everywhere() {
    let temp = TempDb::new();
    let db = temp.open(Limits::default()).await;
    let mut session = Session::new(&db);
    let seqs = Box::pin(setup(&mut session)).await;
    let (v2, v4) = (seqs[2], seqs[4]);
    session
        .execute(&format!("CREATE TAG q3_close AS OF {v2}"))
        .await
        .expect("tag");
    session.execute("CREATE TAG Latest").await.expect("tag");
    let tags = text(&mut session, "SELECT name, version FROM tags()").await;
    let latest = db.visible_seq() - 1;
    assert!(tags.contains(&format!("| latest   | {latest} ")), "{tags}");
    assert!(tags.contains(&format!("| q3_close | {v2} ")), "{tags}");

    assert_eq!(
        text(&mut session, &at("'q3_close'")).await,
        text(&mut session, &at(v2)).await
    );
    for (by_tag, by_version) in [
        (
            "SELECT * FROM table_diff('t', 'q3_close', 'latest') ORDER BY to_id".to_string(),
            format!("SELECT * FROM table_diff('t', {v2}, {latest}) ORDER BY to_id"),
        ),
        (
            "SELECT * FROM table_changes('t', 'q3_close') ORDER BY _seq, id, _change_type"
                .to_string(),
            format!("SELECT * FROM table_changes('t', {v2}) ORDER BY _seq, id, _change_type"),
        ),
    ] {
        assert_eq!(
            text(&mut session, &by_tag).await,
            text(&mut session, &by_version).await,
            "{by_tag}"
        );
    }
    session
        .execute("CREATE TAG by_time TIMESTAMP AS OF now()")
        .await
        .expect("tag by TIMESTAMP AS OF");
    session
        .execute(&format!("CREATE TAG mid VERSION AS OF {v4}"))
        .await
        .expect("tag by VERSION AS OF");
    session
        .execute("RESTORE TABLE t TO VERSION AS OF 'q3_close'")
        .await
        .expect("restore to a tag");
    assert_eq!(
        text(&mut session, "SELECT * FROM t ORDER BY id").await,
        text(&mut session, &at(v2)).await,
        "restored to the tagged version"
    );

    for (sql, state) in [
        ("CREATE TAG q3_close", "42710"),
        ("DROP TAG nope", "42704"),
        ("SELECT * FROM t VERSION AS OF 'nope'", "42704"),
        ("CREATE TAG \"2026-01-01\"", "42602"),
        ("CREATE TAG far AS OF 999999", "22008"),
        ("SELECT * FROM tags(1)", "22023"),
    ] {
        assert_eq!(code(&mut session, sql).await, state, "{sql}");
    }
    session
        .execute("CREATE TAG IF NOT EXISTS q3_close")
        .await
        .expect("if not exists");
    session
        .execute("DROP TAG IF EXISTS nope")
        .await
        .expect("if exists");
    session.execute("BEGIN").await.expect("begin");
    assert_eq!(code(&mut session, "CREATE TAG inside").await, "25001");
    session.execute("ROLLBACK").await.expect("rollback");

    // Tags are durable: after a reopen (log replay) and after a checkpoint.
    drop(session);
    db.close().await.expect("close");
    let db = temp.open(Limits::default()).await;
    let mut session = Session::new(&db);
    assert_eq!(
        text(&mut session, &at("'q3_close'")).await,
        text(&mut session, &at(v2)).await
    );
    session.execute("DROP TAG q3_close").await.expect("drop");
    db.persist().await.expect("persist");
    drop(session);
    db.close().await.expect("close");
    let db = temp.open(Limits::default()).await;
    let mut session = Session::new(&db);
    assert_eq!(code(&mut session, &at("'q3_close'")).await, "42704");
    let tags = text(&mut session, "SELECT name FROM tags() ORDER BY name").await;
    assert!(tags.contains("latest") && tags.contains("mid"), "{tags}");
    session
        .execute("CREATE TAG q3_close")
        .await
        .expect("a dropped name is free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_keeps_what_a_live_tag_sees_and_only_that() {
    let temp = TempDb::new();
    let db = temp.open(Limits::default()).await;
    let mut session = Session::new(&db);
    let seqs = Box::pin(setup(&mut session)).await;
    let tagged = seqs[3];
    session
        .execute(&format!("CREATE TAG keep AS OF {tagged}"))
        .await
        .expect("tag");
    let before = text(&mut session, &at(tagged)).await;
    let first = text(&mut session, &at(seqs[0])).await;
    db.persist().await.expect("persist");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    session
        .execute("UPDATE t SET v = 0 WHERE id = 1")
        .await
        .expect("recent");
    session
        .execute("ALTER TABLE t SET (history_retention = '1 second')")
        .await
        .expect("retention");
    session.execute("VACUUM t").await.expect("vacuum");

    assert_eq!(
        text(&mut session, &at("'keep'")).await,
        before,
        "tagged version kept"
    );
    assert_eq!(
        text(&mut session, &at(tagged)).await,
        before,
        "by number too"
    );
    for seq in [seqs[0], seqs[2], seqs[5]] {
        let sql = at(seq);
        assert_eq!(code(&mut session, &sql).await, "22008", "{sql}");
    }
    // A new tag cannot name a version that is gone, but may name a kept one.
    assert_eq!(
        code(&mut session, &format!("CREATE TAG gone AS OF {}", seqs[1])).await,
        "22008"
    );
    session
        .execute(&format!("CREATE TAG again AS OF {tagged}"))
        .await
        .expect("a kept version");

    // Reopened, the tag still holds its versions.
    drop(session);
    db.close().await.expect("close");
    let db = temp.open(Limits::default()).await;
    let mut session = Session::new(&db);
    assert_eq!(text(&mut session, &at("'keep'")).await, before, "reopened");

    // Drop both tags: the next VACUUM removes what they kept.
    session.execute("DROP TAG keep").await.expect("drop");
    session.execute("DROP TAG again").await.expect("drop");
    let result = session.execute_one("VACUUM t").await.expect("vacuum");
    let report = arrow::util::pretty::pretty_format_batches(&result.batches)
        .expect("format")
        .to_string();
    assert!(!report.contains("| 0 "), "versions removed: {report}");
    assert_eq!(code(&mut session, &at(tagged)).await, "22008");
    assert_ne!(first, before, "the churn changed the table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_copies_a_table_as_it_was() {
    let temp = TempDb::new();
    let db = temp.open(Limits::default()).await;
    let mut session = Session::new(&db);
    let seqs = Box::pin(setup(&mut session)).await;
    let then = seqs[2];
    session
        .execute(&format!("CREATE TAG then_tag AS OF {then}"))
        .await
        .expect("tag");
    let expected = text(&mut session, &at(then)).await;
    session
        .execute("ALTER TABLE t RENAME TO t_now")
        .await
        .expect("rename");
    // The name as it was then, as `VERSION AS OF` reads it.
    session
        .execute(&format!("CREATE TABLE c CLONE t AS OF {then}"))
        .await
        .expect("clone by version under the name then");
    assert_eq!(
        text(&mut session, "SELECT * FROM c ORDER BY id").await,
        expected
    );
    session
        .execute("CREATE TABLE d CLONE t VERSION AS OF 'then_tag'")
        .await
        .expect("clone by tag");
    assert_eq!(
        text(&mut session, "SELECT * FROM d ORDER BY id").await,
        expected
    );
    let now = text(&mut session, "SELECT * FROM t_now ORDER BY id").await;
    session
        .execute("CREATE TABLE e CLONE t_now")
        .await
        .expect("clone now");
    assert_eq!(text(&mut session, "SELECT * FROM e ORDER BY id").await, now);

    // The clone is a table of its own with the primary key and NOT NULL.
    assert_eq!(
        code(&mut session, "INSERT INTO c VALUES (1, 1)").await,
        "23505"
    );
    assert_eq!(
        code(&mut session, "INSERT INTO c VALUES (999, NULL)").await,
        "23502"
    );
    session
        .execute("UPDATE c SET v = -1")
        .await
        .expect("update the clone");
    assert_eq!(
        text(&mut session, "SELECT * FROM d ORDER BY id").await,
        expected
    );
    assert_eq!(
        text(&mut session, "SELECT * FROM t_now ORDER BY id").await,
        now
    );

    let renamed_later = format!("CREATE TABLE x CLONE t_now AS OF {then}");
    for (sql, state) in [
        ("CREATE TABLE c CLONE t_now", "42P07"),
        ("CREATE TABLE x CLONE nope", "42P01"),
        ("CREATE TABLE x CLONE t_now AS OF 0", "22008"),
        ("CREATE TABLE x CLONE c AS OF 1", "42P01"),
        // Not the name then: the rename came later.
        (renamed_later.as_str(), "42P01"),
    ] {
        assert_eq!(code(&mut session, sql).await, state, "{sql}");
    }
    session
        .execute("CREATE TABLE IF NOT EXISTS c CLONE t_now")
        .await
        .expect("if not exists");
}
