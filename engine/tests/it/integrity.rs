//! Nothing acknowledged is lost, nothing stored is silently wrong: damage
//! to the log, checkpoints and data files is found, named (file and
//! offset, SQLSTATE XX001) and never guessed around; a torn log tail and
//! an unreadable newest checkpoint are recovered from without losing an
//! acknowledged commit.

use std::path::{Path, PathBuf};

use arrow::array::{Array, Int64Array};
use driftdb_engine::storage::check::check_database;
use driftdb_engine::{Database, Error, Limits, Session};

/// A database folder inside a temp dir that lives as long as the value.
struct Folder {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Folder {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("db");
        Self { _dir: dir, path }
    }

    fn url(&self) -> &str {
        self.path.to_str().expect("utf-8")
    }

    async fn open(&self) -> Result<Database, Error> {
        Database::open(self.url()).await
    }
}

async fn run(db: &Database, sql: &str) {
    Session::new(db)
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The single BIGINT a query returns (0 for NULL).
async fn scalar(db: &Database, sql: &str) -> Result<i64, Error> {
    let result = Session::new(db).execute_one(sql).await?;
    // sum(bigint) is numeric, as in PostgreSQL: read it as BIGINT.
    let column = arrow::compute::cast(
        result.batches[0].column(0),
        &arrow::datatypes::DataType::Int64,
    )
    .expect("a number");
    let column = column
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("BIGINT")
        .clone();
    Ok(if column.is_null(0) {
        0
    } else {
        column.value(0)
    })
}

/// The log segments of a local database, oldest first.
fn segments(db_path: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(db_path.join("_log"))
        .expect("log folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    paths
}

/// Byte offsets of the frames in a segment of the current format.
fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    use driftdb_engine::log::record::FRAME_HEADER_BYTES;
    let mut offsets = Vec::new();
    let mut at = driftdb_engine::log::segment::SEGMENT_HEADER_BYTES;
    while at + FRAME_HEADER_BYTES <= bytes.len() {
        offsets.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += FRAME_HEADER_BYTES + len;
    }
    offsets
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= 0x20;
    std::fs::write(path, &bytes).expect("write");
}

/// Commits 1 (CREATE TABLE) and 2..=n+1 (one row each, n = rows), all in the log.
async fn logged_rows(folder: &Folder, rows: i64) {
    let db = folder.open().await.expect("open");
    run(&db, "CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)").await;
    for id in 1..=rows {
        run(&db, &format!("INSERT INTO t VALUES ({id}, {id})")).await;
    }
}

#[tokio::test]
async fn a_bit_flip_mid_log_with_valid_frames_after_is_corruption_not_a_torn_tail() {
    let folder = Folder::new();
    logged_rows(&folder, 3).await;
    let segment = segments(&folder.path).pop().expect("a segment");
    let bytes = std::fs::read(&segment).expect("read");
    let frames = frame_offsets(&bytes);
    assert_eq!(frames.len(), 4, "CREATE TABLE and three inserts");
    let damaged_frame = frames[2]; // commit 3; commit 4 follows intact
    flip_byte(&segment, damaged_frame + 30);
    let damaged = std::fs::read(&segment).expect("read");

    let err = folder
        .open()
        .await
        .expect_err("a corrupt log must not open");
    assert_eq!(err.sqlstate(), "XX001", "{err}");
    let message = err.to_string();
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(message.contains(name), "names the file: {message}");
    assert!(
        message.contains(&format!("at byte {damaged_frame}")),
        "names the offset: {message}"
    );
    assert_eq!(
        std::fs::read(&segment).expect("read"),
        damaged,
        "the file is not truncated or changed"
    );
    // Opening again gives the same answer: nothing was cut the first time.
    assert!(folder.open().await.is_err());
}

#[tokio::test]
async fn a_torn_last_frame_is_cut_and_earlier_commits_survive() {
    let folder = Folder::new();
    logged_rows(&folder, 3).await;
    let segment = segments(&folder.path).pop().expect("a segment");
    let full = std::fs::metadata(&segment).expect("meta").len();
    let frames = frame_offsets(&std::fs::read(&segment).expect("read"));
    // The write of the last frame (commit 4) was interrupted halfway.
    let torn_at = frames[3] as u64;
    let cut_to = torn_at + (full - torn_at) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open")
        .set_len(cut_to)
        .expect("truncate");

    let db = folder.open().await.expect("a torn tail is not damage");
    assert_eq!(scalar(&db, "SELECT count(*) FROM t").await.unwrap(), 2);
    assert_eq!(scalar(&db, "SELECT sum(v) FROM t").await.unwrap(), 3);
    assert_eq!(
        std::fs::metadata(&segment).expect("meta").len(),
        torn_at,
        "cut at the start of the torn frame"
    );
    // The database goes on from commit 4.
    run(&db, "INSERT INTO t VALUES (10, 10)").await;
    drop(db);
    let db = folder.open().await.expect("reopen");
    assert_eq!(scalar(&db, "SELECT sum(v) FROM t").await.unwrap(), 13);
}

#[tokio::test]
async fn a_commit_over_the_frame_limit_is_refused_before_it_is_acknowledged() {
    let folder = Folder::new();
    let limits = Limits {
        log_frame_bytes_max: 64 * 1024,
        ..Limits::default()
    };
    let db = Database::open_with(folder.url(), limits.clone())
        .await
        .expect("open");
    run(&db, "CREATE TABLE t (id BIGINT PRIMARY KEY, s TEXT)").await;
    run(&db, "INSERT INTO t VALUES (1, 'small')").await;
    let big = "x".repeat(100 * 1024);
    let err = Session::new(&db)
        .execute(&format!("INSERT INTO t VALUES (2, '{big}')"))
        .await
        .expect_err("over the limit");
    assert_eq!(err.sqlstate(), "54000", "{err}");
    let message = err.to_string();
    assert!(message.contains("65536"), "names the limit: {message}");
    match &err {
        Error::CommitTooLarge { bytes, limit } => {
            assert!(*bytes > 100 * 1024, "names the size: {message}");
            assert_eq!(*limit, 65536);
        }
        other => panic!("expected CommitTooLarge, got {other:?}"),
    }
    // Nothing of it was applied; the key is free and the database goes on.
    assert_eq!(scalar(&db, "SELECT count(*) FROM t").await.unwrap(), 1);
    run(&db, "INSERT INTO t VALUES (2, 'fits')").await;
    drop(db);
    let db = Database::open_with(folder.url(), limits)
        .await
        .expect("reopen");
    assert_eq!(scalar(&db, "SELECT sum(id) FROM t").await.unwrap(), 3);
}

/// Two checkpoints (after rows 1..=2 and 1..=4), then rows 5..=6 only in the log.
async fn two_checkpoints(folder: &Folder) {
    let db = folder.open().await.expect("open");
    run(&db, "CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)").await;
    for id in 1..=6 {
        run(&db, &format!("INSERT INTO t VALUES ({id}, {id})")).await;
        if id % 2 == 0 && id <= 4 {
            db.persist().await.expect("persist");
        }
    }
}

fn checkpoints(db_path: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(db_path.join("_checkpoints"))
        .expect("checkpoint folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn an_unreadable_newest_checkpoint_falls_back_to_the_previous_one() {
    let folder = Folder::new();
    two_checkpoints(&folder).await;
    let kept = checkpoints(&folder.path);
    assert_eq!(kept.len(), 2, "the previous checkpoint is kept: {kept:?}");
    let newest = kept[1].clone();
    let original = std::fs::read(&newest).expect("read");
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    for (what, damage) in [
        ("empty", Vec::new()),
        ("garbage", b"not a checkpoint at all".to_vec()),
        ("bit flip", flipped),
    ] {
        std::fs::write(&newest, &damage).expect("damage");
        let db = folder
            .open()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            scalar(&db, "SELECT count(*) FROM t").await.unwrap(),
            6,
            "{what}: every acknowledged commit is there"
        );
        assert_eq!(scalar(&db, "SELECT sum(v) FROM t").await.unwrap(), 21);
        assert_eq!(db.visible_seq(), 7, "{what}");
        drop(db);
        std::fs::write(&newest, &original).expect("restore");
    }
    // After a fallback the next persist goes on normally.
    std::fs::write(&newest, b"").expect("damage");
    let db = folder.open().await.expect("open");
    run(&db, "INSERT INTO t VALUES (7, 7)").await;
    db.close().await.expect("close persists");
    drop(db);
    let db = folder.open().await.expect("reopen");
    assert_eq!(scalar(&db, "SELECT sum(v) FROM t").await.unwrap(), 28);
    let report = check_database(&folder.path).await.expect("check");
    assert!(!report.is_damaged(), "{report}");
}

#[tokio::test]
async fn an_unreadable_only_checkpoint_whose_log_is_gone_is_an_error() {
    let folder = Folder::new();
    two_checkpoints(&folder).await;
    let kept = checkpoints(&folder.path);
    for path in &kept {
        std::fs::write(path, b"").expect("damage");
    }
    let err = folder.open().await.expect_err("nothing to fall back to");
    assert_eq!(err.sqlstate(), "XX001", "{err}");
    assert!(err.to_string().contains("checkpoint"), "{err}");
}

/// Tables `hit` and `ok`, both persisted; returns the path of hit's data file.
async fn two_persisted_tables(folder: &Folder, hit_ddl: &str) -> PathBuf {
    let db = folder.open().await.expect("open");
    run(&db, hit_ddl).await;
    run(&db, "CREATE TABLE ok (id BIGINT PRIMARY KEY, v BIGINT)").await;
    let values: Vec<String> = (1..=2000).map(|i| format!("({i}, {i})")).collect();
    for table in ["hit", "ok"] {
        run(
            &db,
            &format!("INSERT INTO {table} VALUES {}", values.join(", ")),
        )
        .await;
    }
    db.close().await.expect("close persists");
    let hit_id = db
        .catalog()
        .tables
        .iter()
        .find(|t| t.name == "hit")
        .expect("hit")
        .id;
    let dir = folder.path.join(format!("data/t{hit_id}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("data folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.pop().expect("one file")
}

async fn assert_only_hit_is_damaged(folder: &Folder, file: &Path) {
    let db = folder
        .open()
        .await
        .expect("a damaged data file does not stop the database opening");
    let err = scalar(&db, "SELECT sum(v) FROM hit")
        .await
        .expect_err("no answer from a damaged file");
    assert_eq!(err.sqlstate(), "XX001", "{err}");
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(err.to_string().contains(name), "names the file: {err}");
    assert_eq!(
        scalar(&db, "SELECT sum(v) FROM ok").await.unwrap(),
        2001000,
        "the other table still answers"
    );
    run(&db, "INSERT INTO ok VALUES (5000, 0)").await;
    let err = Session::new(&db)
        .execute("INSERT INTO hit VALUES (5000, 0)")
        .await
        .expect_err("writes to the damaged table are refused");
    assert_eq!(err.sqlstate(), "XX001", "{err}");
    let report = check_database(&folder.path).await.expect("check");
    assert!(report.is_damaged(), "{report}");
    assert!(report.to_string().contains(name), "{report}");
}

#[tokio::test]
async fn a_flipped_byte_mid_parquet_fails_that_table_only() {
    let folder = Folder::new();
    let file = two_persisted_tables(
        &folder,
        "CREATE TABLE hit (id BIGINT PRIMARY KEY, v BIGINT)",
    )
    .await;
    let len = std::fs::metadata(&file).expect("meta").len() as usize;
    flip_byte(&file, len / 2);
    assert_only_hit_is_damaged(&folder, &file).await;
}

#[tokio::test]
async fn a_flipped_footer_byte_fails_that_table_only() {
    let folder = Folder::new();
    let file = two_persisted_tables(
        &folder,
        "CREATE TABLE hit (id BIGINT PRIMARY KEY, v BIGINT)",
    )
    .await;
    let len = std::fs::metadata(&file).expect("meta").len() as usize;
    flip_byte(&file, len - 12); // inside the footer's metadata
    assert_only_hit_is_damaged(&folder, &file).await;
}

#[tokio::test]
async fn a_damaged_file_of_a_table_without_keys_fails_at_read() {
    let folder = Folder::new();
    let file = two_persisted_tables(&folder, "CREATE TABLE hit (id BIGINT, v BIGINT)").await;
    let len = std::fs::metadata(&file).expect("meta").len() as usize;
    flip_byte(&file, len / 3);
    let db = folder.open().await.expect("open");
    let err = scalar(&db, "SELECT count(*) FROM hit WHERE v > 0")
        .await
        .expect_err("damaged");
    assert_eq!(err.sqlstate(), "XX001", "{err}");
    assert_eq!(scalar(&db, "SELECT count(*) FROM ok").await.unwrap(), 2000);
}

#[tokio::test]
async fn check_finds_damage_in_the_log_checkpoints_and_data() {
    let folder = Folder::new();
    let file = two_persisted_tables(
        &folder,
        "CREATE TABLE hit (id BIGINT PRIMARY KEY, v BIGINT)",
    )
    .await;
    let healthy = check_database(&folder.path).await.expect("check");
    assert!(!healthy.is_damaged(), "{healthy}");

    let truncated = std::fs::read(&file).expect("read");
    std::fs::write(&file, &truncated[..truncated.len() - 1]).expect("truncate");
    let report = check_database(&folder.path).await.expect("check");
    assert_eq!(report.damage_count(), 1, "{report}");
    std::fs::write(&file, &truncated).expect("restore");

    let newest = checkpoints(&folder.path).pop().expect("checkpoint");
    let original = std::fs::read(&newest).expect("read");
    flip_byte(&newest, original.len() / 2);
    let report = check_database(&folder.path).await.expect("check");
    assert!(report.is_damaged(), "{report}");
    std::fs::write(&newest, &original).expect("restore");

    logged_rows_into(&folder).await;
    let segment = segments(&folder.path).pop().expect("segment");
    let frames = frame_offsets(&std::fs::read(&segment).expect("read"));
    flip_byte(&segment, frames[0] + 20);
    let report = check_database(&folder.path).await.expect("check");
    assert!(report.to_string().contains("corrupt at byte"), "{report}");
    assert!(report.is_damaged(), "{report}");
}

/// Two more commits into `ok`, left in the log.
async fn logged_rows_into(folder: &Folder) {
    let db = folder.open().await.expect("open");
    run(&db, "INSERT INTO ok VALUES (9001, 1)").await;
    run(&db, "INSERT INTO ok VALUES (9002, 1)").await;
}

#[cfg(unix)]
#[tokio::test]
async fn every_file_the_database_writes_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let folder = Folder::new();
    let db = folder.open().await.expect("open");
    run(&db, "CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT)").await;
    run(&db, "CREATE SEQUENCE s").await;
    run(&db, "SELECT nextval('s')").await;
    run(&db, "INSERT INTO t VALUES (1, 1)").await;
    db.close().await.expect("close");
    let mut seen = 0;
    let mut stack = vec![folder.path.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            if path.is_dir() {
                assert_eq!(mode, 0o700, "{}", path.display());
                stack.push(path);
            } else {
                assert_eq!(mode, 0o600, "{}", path.display());
                seen += 1;
            }
        }
    }
    // LOCK, a log segment, a checkpoint, a data file, sequences.json.
    assert!(seen >= 5, "only {seen} files");
}

#[tokio::test]
async fn a_sequence_id_reused_after_a_rollback_and_restart_starts_afresh() {
    let folder = Folder::new();
    {
        let db = folder.open().await.expect("open");
        let mut session = Session::new(&db);
        session.execute("BEGIN").await.expect("begin");
        session
            .execute("CREATE SEQUENCE s")
            .await
            .expect("create in the transaction");
        let first = session
            .execute_one("SELECT nextval('s')")
            .await
            .expect("nextval in the transaction");
        assert_eq!(first.batches[0].num_rows(), 1);
        session.execute("ROLLBACK").await.expect("rollback");
        assert!(
            folder.path.join("sequences.json").exists(),
            "the rolled-back sequence reserved values"
        );
    }
    let db = folder.open().await.expect("reopen");
    run(&db, "CREATE SEQUENCE s2").await;
    assert_eq!(scalar(&db, "SELECT nextval('s2')").await.unwrap(), 1);
    drop(db);
    let db = folder.open().await.expect("reopen again");
    assert_eq!(
        scalar(&db, "SELECT nextval('s2')").await.unwrap(),
        1025,
        "a committed sequence resumes after its reservation"
    );
}

#[tokio::test]
async fn a_commit_repeated_in_the_log_is_corruption_when_opening_as_in_check() {
    let folder = Folder::new();
    logged_rows(&folder, 2).await;
    let segment = segments(&folder.path).pop().expect("a segment");
    let bytes = std::fs::read(&segment).expect("read");
    let frames = frame_offsets(&bytes);
    let last = bytes[*frames.last().expect("frames")..].to_vec();
    std::fs::write(&segment, [bytes, last].concat()).expect("append a copy");
    let err = folder
        .open()
        .await
        .expect_err("a repeated commit must not open");
    assert_eq!(err.sqlstate(), "XX001", "{err}");
    assert!(err.to_string().contains("right after commit 3"), "{err}");
}
