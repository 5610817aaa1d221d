//! Backup and restore between local folders: a backup of a database that
//! keeps committing, incremental backups, restores at the newest commit,
//! at a seq and at a time, each compared with the source read `AS OF`
//! that point; refusals of damaged backups, non-empty targets and points
//! the backup cannot reach. (Against a real S3-compatible server:
//! `flight-server/tests/python/test_object_storage.py`.)

use std::path::Path;

use driftdb_engine::backup::{self, BackupOptions, NoProgress, RestorePoint};
use driftdb_engine::{Database, Session};

/// Tables the workload writes (`late` only after the first backup).
const TABLES: [&str; 3] = ["accounts", "events", "late"];

async fn run(db: &Database, sql: &str) {
    Session::new(db)
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Every table's rows at `seq` (None: the latest), as text; a table that
/// does not exist there is named as missing.
async fn contents(db: &Database, seq: Option<u64>) -> String {
    let mut out = String::new();
    for table in TABLES {
        let at = seq.map_or(String::new(), |s| format!(" VERSION AS OF {s}"));
        let sql = format!("SELECT * FROM {table}{at} ORDER BY 1, 2");
        match Session::new(db).execute_one(&sql).await {
            Ok(result) => {
                let text = arrow::util::pretty::pretty_format_batches(&result.batches)
                    .expect("format")
                    .to_string();
                out.push_str(&format!("{table}:\n{text}\n"));
            }
            Err(e) if e.sqlstate() == "42P01" => out.push_str(&format!("{table}: missing\n")),
            Err(e) => panic!("{sql}: {e}"),
        }
    }
    out
}

/// A few commits of inserts, updates and deletes, numbered `round`.
async fn workload(db: &Database, round: u64) {
    let base = round * 100;
    run(
        db,
        &format!(
            "INSERT INTO accounts VALUES ({base}, 'a{base}', {base}.5), ({}, 'b''{round}', NULL)",
            base + 1
        ),
    )
    .await;
    run(
        db,
        &format!("UPDATE accounts SET balance = balance + 1 WHERE id < {base}"),
    )
    .await;
    run(
        db,
        &format!("INSERT INTO events SELECT {base} + g, 'e' || g FROM generate_series(1, 50) g"),
    )
    .await;
    run(
        db,
        &format!("DELETE FROM events WHERE id % 7 = {}", round % 7),
    )
    .await;
}

async fn create(db: &Database) {
    run(
        db,
        "CREATE TABLE accounts (id BIGINT PRIMARY KEY, name TEXT NOT NULL, balance DOUBLE)",
    )
    .await;
    run(db, "CREATE TABLE events (id BIGINT, what TEXT)").await;
    run(db, "CREATE SEQUENCE ids").await;
    run(db, "SELECT nextval('ids')").await;
}

fn text(path: &Path) -> String {
    path.display().to_string()
}

async fn take(source: &str, destination: &str) -> driftdb_engine::Result<backup::BackupReport> {
    backup::backup(source, destination, BackupOptions::default(), &NoProgress).await
}

async fn restored(backup_dir: &Path, target: &Path, point: RestorePoint) -> Database {
    let report = backup::restore(&text(backup_dir), &text(target), point, &NoProgress)
        .await
        .unwrap_or_else(|e| panic!("restore {point:?}: {e}"));
    let db = Database::open(&text(target)).await.expect("open restored");
    assert_eq!(db.visible_seq(), report.seq, "{point:?}");
    db
}

/// A source with a checkpoint in the middle of its history, and its first backup.
async fn backed_up_source() -> (tempfile::TempDir, Database, backup::BackupReport) {
    let dir = tempfile::tempdir().unwrap();
    let (source, backups) = (dir.path().join("source"), dir.path().join("backups"));
    let db = Database::open(&text(&source)).await.unwrap();
    create(&db).await;
    workload(&db, 1).await;
    db.persist().await.unwrap();
    workload(&db, 2).await;
    let report = take(&text(&source), &text(&backups)).await.unwrap();
    assert_eq!(report.through_seq, db.visible_seq());
    (dir, db, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_backups_restore_every_point_they_hold() {
    let (dir, db, first) = backed_up_source().await;
    let (source, backups) = (dir.path().join("source"), dir.path().join("backups"));
    assert!(first.files_copied > 0 && first.files_kept == 0, "{first:?}");

    let mid_seq = db.visible_seq();
    let mid_time = db.commits().last().unwrap().time_us;
    run(&db, "CREATE TABLE late (k INT, v TEXT)").await;
    run(&db, "INSERT INTO late VALUES (1, 'x'), (2, NULL)").await;
    workload(&db, 3).await;
    db.persist().await.unwrap();
    workload(&db, 4).await;
    let second = take(&text(&source), &text(&backups)).await.unwrap();
    assert_eq!(second.number, 2);
    assert!(
        second.files_kept > 0,
        "the first backup's files stay: {second:?}"
    );
    assert_eq!(second.restorable, vec![(1, db.visible_seq())]);

    let latest = restored(&backups, &dir.path().join("r-latest"), RestorePoint::Latest).await;
    assert_eq!(
        contents(&latest, None).await,
        contents(&db, Some(second.through_seq)).await
    );
    // The restored database goes on: it takes commits, enforces its keys
    // and keeps its sequence ahead.
    run(&latest, "INSERT INTO late VALUES (3, 'after')").await;
    let e = Session::new(&latest)
        .execute_one("INSERT INTO accounts VALUES (100, 'again', 0)")
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate(), "23505", "{e}");
    let next = Session::new(&latest)
        .execute_one("SELECT nextval('ids')")
        .await
        .unwrap();
    let value = arrow::util::pretty::pretty_format_batches(&next.batches)
        .unwrap()
        .to_string();
    assert!(
        !value.contains("| 1 "),
        "a restored sequence never hands out a value again: {value}"
    );

    for seq in [
        1,
        3,
        mid_seq - 1,
        mid_seq,
        mid_seq + 2,
        second.through_seq - 3,
    ] {
        let target = dir.path().join(format!("r-seq-{seq}"));
        let restored = restored(&backups, &target, RestorePoint::Seq(seq)).await;
        assert_eq!(
            contents(&restored, None).await,
            contents(&db, Some(seq)).await,
            "seq {seq}"
        );
    }
    let at_time = restored(
        &backups,
        &dir.path().join("r-time"),
        RestorePoint::Time(mid_time),
    )
    .await;
    assert_eq!(at_time.visible_seq(), mid_seq);
    assert_eq!(
        contents(&at_time, None).await,
        contents(&db, Some(mid_seq)).await
    );
    let between = RestorePoint::Time(mid_time + 1);
    let r = restored(&backups, &dir.path().join("r-between"), between).await;
    assert_eq!(
        r.visible_seq(),
        mid_seq,
        "a time between commits restores the earlier one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_database_that_keeps_committing_is_a_consistent_point() {
    let dir = tempfile::tempdir().unwrap();
    let (source, backups) = (dir.path().join("source"), dir.path().join("backups"));
    let db = Database::open(&text(&source)).await.unwrap();
    create(&db).await;
    run(&db, "CREATE TABLE late (k INT, v TEXT)").await;
    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            for round in 1..=40 {
                workload(&db, round).await;
                if round % 9 == 0 {
                    db.persist().await.unwrap();
                }
            }
        })
    };
    let mut reports = Vec::new();
    while !writer.is_finished() {
        reports.push(take(&text(&source), &text(&backups)).await.unwrap());
    }
    writer.await.unwrap();
    assert!(
        reports.len() >= 2,
        "backups ran beside the writer: {}",
        reports.len()
    );
    for report in reports.iter().rev().take(3) {
        let target = dir.path().join(format!("r-{}", report.number));
        let restored = restored(&backups, &target, RestorePoint::Seq(report.through_seq)).await;
        assert_eq!(
            contents(&restored, None).await,
            contents(&db, Some(report.through_seq)).await,
            "backup {}",
            report.number
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_damage_a_non_empty_target_and_points_it_lacks() {
    let (dir, _db, report) = backed_up_source().await;
    let backups = dir.path().join("backups");
    let restore = |target: &str, point| {
        let (from, to) = (text(&backups), text(&dir.path().join(target)));
        async move { backup::restore(&from, &to, point, &NoProgress).await }
    };

    // A target holding anything is refused, and left as it was.
    let busy = dir.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let e = restore("busy", RestorePoint::Latest).await.unwrap_err();
    assert_eq!(e.sqlstate(), "55000", "{e}");
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    // Points outside the backup are named, not guessed.
    let e = restore("beyond", RestorePoint::Seq(report.through_seq + 1))
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate(), "22008", "{e}");
    assert!(
        e.to_string().contains(&format!("1-{}", report.through_seq)),
        "{e}"
    );
    let e = restore("before", RestorePoint::Time(0)).await.unwrap_err();
    assert_eq!(e.sqlstate(), "22008", "{e}");

    // One flipped bit in the log chunk: refused before the target is touched.
    let log_dir = backups.join("log");
    let chunk = std::fs::read_dir(&log_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let good = flip_last_byte(&chunk);
    let e = restore("from-bad-log", RestorePoint::Latest)
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate(), "XX001", "{e}");
    assert!(e.to_string().contains("log/"), "names the file: {e}");
    assert!(
        !dir.path()
            .join("from-bad-log")
            .join("_checkpoints")
            .exists()
    );
    std::fs::write(&chunk, good).unwrap();

    // One flipped bit in a data file: refused, and the half-made target
    // will not open as a database.
    let data_file = walk(&backups.join("data")).into_iter().next().unwrap();
    flip_last_byte(&data_file);
    let e = restore("from-bad-data", RestorePoint::Latest)
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate(), "XX001", "{e}");
    assert!(e.to_string().contains(".parquet"), "names the file: {e}");
    let e = Database::open(&text(&dir.path().join("from-bad-data")))
        .await
        .unwrap_err();
    assert_eq!(
        e.sqlstate(),
        "55000",
        "an unfinished restore does not open: {e}"
    );

    // A destination that backs up another database is refused.
    let other = dir.path().join("other");
    let odb = Database::open(&text(&other)).await.unwrap();
    create(&odb).await;
    let e = take(&text(&other), &text(&backups)).await.unwrap_err();
    assert_eq!(e.sqlstate(), "55000", "{e}");
    // And a folder that is neither empty nor a backup is not written into.
    let e = take(&text(&other), &text(&busy)).await.unwrap_err();
    assert_eq!(e.sqlstate(), "55000", "{e}");
    let e = take(&text(&dir.path().join("nothing")), &text(&other))
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate(), "58P01", "{e}");
    // Nor into itself, or a folder inside it.
    let inside = other.join("backups");
    for dest in [&other, &inside] {
        let e = take(&text(&other), &text(dest)).await.unwrap_err();
        assert_eq!(e.sqlstate(), "22023", "{e}");
    }
    assert!(!inside.exists());
    // However the path is spelled.
    let dotted = format!("{}/nowhere/../backups", text(&other));
    let e = take(&text(&other), &dotted).await.unwrap_err();
    assert_eq!(e.sqlstate(), "22023", "{e}");
    assert!(!other.join("nowhere").exists());
    // A restore does not build a database inside its backup either.
    let e = backup::restore(
        &text(&backups),
        &text(&backups.join("inner")),
        RestorePoint::Latest,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(e.sqlstate(), "22023", "{e}");
    // Nor into memory, which keeps nothing.
    let e = take(&text(&other), "memory://").await.unwrap_err();
    assert_eq!(e.sqlstate(), "22023", "{e}");
    // An unfinished restore is not a database to back up.
    let half = dir.path().join("from-bad-data");
    let e = take(&text(&half), &text(&dir.path().join("half-backup")))
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate(), "55000", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_backup_repairs_what_went_missing_and_offers_only_what_it_holds() {
    let (dir, db, first) = backed_up_source().await;
    let (source, backups) = (dir.path().join("source"), dir.path().join("backups"));
    // Someone deletes a data file and damages the log chunk in the destination.
    let data_file = walk(&backups.join("data")).into_iter().next().unwrap();
    std::fs::remove_file(&data_file).unwrap();
    let chunk = walk(&backups.join("log")).into_iter().next().unwrap();
    std::fs::write(&chunk, b"garbage").unwrap();
    workload(&db, 3).await;
    let second = take(&text(&source), &text(&backups)).await.unwrap();
    assert_eq!(second.repaired.len(), 2, "{second:?}");
    // The data file is back; the commits only that chunk held are no
    // longer offered, the rest still are.
    assert!(data_file.exists());
    let checkpointed = second.restorable[0].0;
    assert!(
        checkpointed > 1 && checkpointed <= first.through_seq,
        "{second:?}"
    );
    assert_eq!(second.restorable.last().unwrap().1, db.visible_seq());
    let r = restored(&backups, &dir.path().join("r"), RestorePoint::Latest).await;
    assert_eq!(
        contents(&r, None).await,
        contents(&db, Some(second.through_seq)).await
    );
    let e = backup::restore(
        &text(&backups),
        &text(&dir.path().join("r1")),
        RestorePoint::Seq(1),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert_eq!(e.sqlstate(), "22008", "{e}");

    // A byte flipped in a kept file is found by --verify and repaired.
    let data_file = walk(&backups.join("data")).into_iter().next().unwrap();
    flip_last_byte(&data_file);
    let verify = BackupOptions { verify: true };
    let third = backup::backup(&text(&source), &text(&backups), verify, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        third.repaired,
        vec![format!(
            "data/{}",
            data_file
                .strip_prefix(backups.join("data"))
                .unwrap()
                .display()
        )]
    );
    let r = restored(&backups, &dir.path().join("r3"), RestorePoint::Latest).await;
    assert_eq!(
        contents(&r, None).await,
        contents(&db, Some(third.through_seq)).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_whose_newest_checkpoint_is_damaged_is_backed_up_from_the_one_before() {
    let (dir, db, _) = backed_up_source().await;
    let source = dir.path().join("source");
    workload(&db, 3).await;
    db.persist().await.unwrap();
    workload(&db, 4).await;
    let expected = contents(&db, None).await;
    let seq = db.visible_seq();
    drop(db);
    let newest = walk(&source.join("_checkpoints"))
        .into_iter()
        .last()
        .unwrap();
    flip_last_byte(&newest);
    let fresh = dir.path().join("fresh-backups");
    let report = take(&text(&source), &text(&fresh)).await.unwrap();
    assert_eq!(report.through_seq, seq);
    let r = restored(&fresh, &dir.path().join("r"), RestorePoint::Latest).await;
    assert_eq!(contents(&r, None).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_restores_into_one_target_do_not_both_go_on() {
    let (dir, _db, _) = backed_up_source().await;
    let (from, to) = (
        text(&dir.path().join("backups")),
        text(&dir.path().join("r")),
    );
    let (a, b) = tokio::join!(
        backup::restore(&from, &to, RestorePoint::Latest, &NoProgress),
        backup::restore(&from, &to, RestorePoint::Seq(3), &NoProgress),
    );
    let failed: Vec<_> = [&a, &b]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert_eq!(failed.len(), 1, "{a:?} {b:?}");
    assert!(
        ["55000", "55006"].contains(&failed[0].sqlstate()),
        "{}",
        failed[0]
    );
    let won = a.as_ref().or(b.as_ref()).unwrap();
    let db = Database::open(&to).await.unwrap();
    assert_eq!(db.visible_seq(), won.seq);
}

fn flip_last_byte(path: &Path) -> Vec<u8> {
    let good = std::fs::read(path).unwrap();
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 0x01;
    std::fs::write(path, bad).unwrap();
    good
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_manifest_is_passed_over_and_the_one_before_still_stands() {
    let (dir, db, first) = backed_up_source().await;
    let (source, backups) = (dir.path().join("source"), dir.path().join("backups"));
    workload(&db, 3).await;
    let second = take(&text(&source), &text(&backups)).await.unwrap();
    let newest = walk(&backups.join("backups")).into_iter().last().unwrap();
    flip_last_byte(&newest);
    let report = backup::restore(
        &text(&backups),
        &text(&dir.path().join("r")),
        RestorePoint::Latest,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.seq, first.through_seq);
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    // The next backup takes the next number and is whole again.
    workload(&db, 4).await;
    let third = take(&text(&source), &text(&backups)).await.unwrap();
    assert_eq!(third.number, second.number + 1);
    assert_eq!(third.skipped.len(), 1);
    let r = restored(
        &backups,
        &dir.path().join("r3"),
        RestorePoint::Seq(second.through_seq),
    )
    .await;
    assert_eq!(
        contents(&r, None).await,
        contents(&db, Some(second.through_seq)).await
    );
}
