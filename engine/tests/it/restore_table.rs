//! `RESTORE TABLE … TO VERSION | TIMESTAMP AS OF`: one new commit after
//! which the table reads as it did then (checked against the table's own
//! `VERSION AS OF` read), writing only the difference, keeping history,
//! and going through every constraint check.

use crate::common::{TempDb, text};
use driftdb_engine::{Database, Limits, Session};

async fn open() -> (TempDb, Database, Session) {
    let temp = TempDb::new();
    let db = temp.open(Limits::default()).await;
    let session = Session::new(&db);
    (temp, db, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_brings_back_a_version_in_one_commit() {
    let (_dir, db, mut session) = open().await;
    session
        .execute(
            "CREATE TABLE t (id INT PRIMARY KEY, name TEXT NOT NULL, v INT CHECK (v >= 0));
             INSERT INTO t VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30), (4, 'd', 40)",
        )
        .await
        .expect("setup");
    let point = db.visible_seq();
    let then = text(
        &mut session,
        &format!("SELECT * FROM t VERSION AS OF {point} ORDER BY id"),
    )
    .await;
    session
        .execute(
            "UPDATE t SET v = v + 1 WHERE id <= 2;
             DELETE FROM t WHERE id = 3;
             INSERT INTO t VALUES (5, 'e', 50);
             UPDATE t SET name = 'd' WHERE id = 4",
        )
        .await
        .expect("changes");
    db.persist().await.expect("persist");
    let before = db.visible_seq();
    let result = session
        .execute_one(&format!("RESTORE TABLE t TO VERSION AS OF {point}"))
        .await
        .expect("restore");
    assert_eq!(
        result.rows_affected,
        Some(4),
        "two updated back, one deleted, one inserted"
    );
    assert_eq!(db.visible_seq(), before + 1, "one commit");
    assert_eq!(
        text(&mut session, "SELECT * FROM t ORDER BY id").await,
        then
    );
    let kind = text(
        &mut session,
        &format!("SELECT kind FROM commits() WHERE seq = {}", before + 1),
    )
    .await;
    assert!(kind.contains("RESTORE"), "{kind}");
    // History is kept: the state before the restore is still there.
    let last = text(
        &mut session,
        &format!("SELECT count(*) FROM t VERSION AS OF {before}"),
    )
    .await;
    assert!(last.contains("| 4 "), "{last}");
    // Row 4 was updated to the same values: nothing to write for it.
    let unchanged = session
        .execute_one(&format!("RESTORE TABLE t TO VERSION AS OF {point}"))
        .await
        .expect("restore again");
    assert_eq!(unchanged.rows_affected, Some(0));
    assert_eq!(
        db.visible_seq(),
        before + 1,
        "nothing to restore, no commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_by_time_across_an_added_column() {
    let (_dir, db, mut session) = open().await;
    session
        .execute(
            "CREATE TABLE t (id INT PRIMARY KEY, v INT);
             INSERT INTO t VALUES (1, 1), (2, 2)",
        )
        .await
        .expect("setup");
    let time = text(
        &mut session,
        "SELECT CAST(max(commit_time) AS TEXT) FROM commits()",
    )
    .await;
    let time = time
        .lines()
        .nth(3)
        .expect("a row")
        .trim_matches(|c| c == '|' || c == ' ')
        .to_string();
    let point = db.visible_seq();
    session
        .execute(
            "ALTER TABLE t ADD COLUMN w INT NOT NULL DEFAULT 7;
             UPDATE t SET v = 10, w = 8 WHERE id = 1;
             DELETE FROM t WHERE id = 2;
             INSERT INTO t VALUES (3, 3, 3)",
        )
        .await
        .expect("changes");
    session
        .execute(&format!("RESTORE TABLE t TO TIMESTAMP AS OF '{time}'"))
        .await
        .expect("restore");
    let then = text(
        &mut session,
        &format!("SELECT id, v FROM t VERSION AS OF {point} ORDER BY id"),
    )
    .await;
    assert_eq!(
        text(&mut session, "SELECT id, v FROM t ORDER BY id").await,
        then
    );
    // The added column keeps its value in the row updated back, takes its
    // DEFAULT in the row inserted again.
    let w = text(&mut session, "SELECT id, w FROM t ORDER BY id").await;
    assert!(w.contains("| 1  | 8 |") && w.contains("| 2  | 7 |"), "{w}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_checks_constraints_and_keyless_tables() {
    let (_dir, db, mut session) = open().await;
    session
        .execute(
            "CREATE TABLE parent (id INT PRIMARY KEY);
             CREATE TABLE child (id INT PRIMARY KEY, p INT REFERENCES parent (id));
             INSERT INTO parent VALUES (1)",
        )
        .await
        .expect("setup");
    let point = db.visible_seq();
    session
        .execute("INSERT INTO parent VALUES (2); INSERT INTO child VALUES (1, 2)")
        .await
        .expect("child");
    let before = db.visible_seq();
    let refused = session
        .execute(&format!("RESTORE TABLE parent TO VERSION AS OF {point}"))
        .await
        .expect_err("a child references a row the restore removes");
    assert_eq!(refused.sqlstate(), "23503", "{refused}");
    assert_eq!(db.visible_seq(), before, "nothing applied");

    session
        .execute("CREATE TABLE events (kind TEXT, n INT); INSERT INTO events VALUES ('a', 1), ('a', 1), ('b', 2)")
        .await
        .expect("events");
    let point = db.visible_seq();
    let then = text(&mut session, "SELECT kind, n FROM events ORDER BY kind, n").await;
    session
        .execute("DELETE FROM events WHERE kind = 'a'; INSERT INTO events VALUES ('c', 3); UPDATE events SET n = 9")
        .await
        .expect("changes");
    session
        .execute(&format!("RESTORE TABLE events TO VERSION AS OF {point}"))
        .await
        .expect("restore a keyless table");
    assert_eq!(
        text(&mut session, "SELECT kind, n FROM events ORDER BY kind, n").await,
        then
    );

    for (sql, state) in [
        ("RESTORE TABLE nope TO VERSION AS OF 1".to_string(), "42P01"),
        (
            "RESTORE TABLE events TO VERSION AS OF 1".to_string(),
            "42P01",
        ),
        (
            "RESTORE TABLE events TO VERSION AS OF 999999".to_string(),
            "22008",
        ),
        (
            "RESTORE TABLE events TO TIMESTAMP AS OF '2999-01-01'".to_string(),
            "22008",
        ),
        ("RESTORE TABLE events VERSION AS OF 3".to_string(), "42601"),
    ] {
        let error = session.execute(&sql).await.expect_err(&sql);
        assert_eq!(error.sqlstate(), state, "{sql}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_and_restore_follow_renames_by_identity() {
    let (_dir, db, mut session) = open().await;
    session
        .execute(
            "CREATE TABLE a (id INT PRIMARY KEY, v TEXT);
             INSERT INTO a VALUES (1, 'x'), (2, 'y')",
        )
        .await
        .expect("setup");
    let point = db.visible_seq();
    session
        .execute(
            "ALTER TABLE a RENAME COLUMN v TO w;
             UPDATE a SET w = 'x2' WHERE id = 1;
             ALTER TABLE a RENAME TO b;
             CREATE TABLE a (id TEXT PRIMARY KEY, v TEXT);
             INSERT INTO a VALUES ('1', 'other')",
        )
        .await
        .expect("changes");
    let now = db.visible_seq();
    let diff = text(
        &mut session,
        &format!("SELECT * FROM table_diff('b', {point}, {now})"),
    )
    .await;
    assert!(
        diff.contains("modified") && diff.contains("| x2 "),
        "a renamed column is the same column: {diff}"
    );
    let other = session
        .execute(&format!("SELECT * FROM table_diff('a', {point}, {now})"))
        .await
        .expect_err("the name a now is another table");
    assert_eq!(other.sqlstate(), "42P01", "{other}");
    session
        .execute(&format!("RESTORE TABLE b TO VERSION AS OF {point}"))
        .await
        .expect("restore through the rename");
    let restored = text(&mut session, "SELECT id, w FROM b ORDER BY id").await;
    assert!(
        restored.contains("| x ") && !restored.contains("x2"),
        "{restored}"
    );
    for column in ["_seq", "_rowid", "_retired_seq", "_change_type"] {
        let error = session
            .execute(&format!("CREATE TABLE s (id INT, {column} INT)"))
            .await
            .expect_err("a system column name");
        assert_eq!(error.sqlstate(), "42701", "{column}: {error}");
    }
    let fraction = session
        .execute("SELECT * FROM b VERSION AS OF 1.5")
        .await
        .expect_err("a version is whole");
    assert_eq!(fraction.sqlstate(), "22008", "{fraction}");
}
