//! Foundation figures: bulk insert, single-row commits (1 and 16 writers),
//! AS OF cost against history length, and open time with 10,000 commits
//! (from the log, from a checkpoint, and with the newest checkpoint damaged).
//!
//! Run: `cargo run --release -p driftdb-benches --bin foundation [-- --quick] [--commits-only]`.
//! Prints a markdown table; every figure is the median of several runs.

use driftdb_benches as _; // its global allocator
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use driftdb_engine::{Database, Limits, Session};

struct Config {
    bulk_rows: usize,
    commits_per_writer: usize,
    history_rows: usize,
    open_commits: usize,
    history_commits: Vec<usize>,
    runs: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let config = if quick {
        Config {
            bulk_rows: 20_000,
            commits_per_writer: 20,
            history_rows: 2_000,
            open_commits: 200,
            history_commits: vec![5, 20],
            runs: 1,
        }
    } else {
        Config {
            bulk_rows: 1_000_000,
            commits_per_writer: 300,
            history_rows: 100_000,
            open_commits: 10_000,
            history_commits: vec![10, 100, 1000],
            runs: 5,
        }
    };
    // `--commits-only`: just the single-row commit figures (for a run on
    // object storage, `DRIFTDB_BENCH_STORE=s3://…`).
    let commits_only = std::env::args().any(|a| a == "--commits-only");
    println!("| figure | value |\n| --- | --- |");
    if !commits_only {
        bulk_insert(&config).await?;
    }
    for writers in [1, 16] {
        single_row_commits(&config, writers).await?;
    }
    if commits_only {
        return Ok(());
    }
    for commits in config.history_commits.clone() {
        as_of_ratio(&config, commits).await?;
    }
    open_time(&config).await?;
    Ok(())
}

/// Flip a byte in the middle of the newest checkpoint under `path`.
fn damage_newest_checkpoint(path: &str) -> std::io::Result<()> {
    let dir = std::path::Path::new(path).join(driftdb_engine::storage::checkpoint::CHECKPOINT_DIR);
    let mut names: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    let newest = names
        .last()
        .ok_or_else(|| std::io::Error::other("no checkpoint"))?;
    let mut bytes = std::fs::read(newest)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(newest, bytes)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn temp_db_path() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db").to_str().expect("utf-8").to_string();
    (dir, path)
}

/// 10 columns: 4 BIGINT, 3 DOUBLE, 3 TEXT.
fn wide_batch(rows: usize, offset: i64) -> RecordBatch {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for i in 0..4 {
        fields.push(Field::new(format!("i{i}"), DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from_iter_values(
            (0..rows as i64).map(|r| r * (i + 1) + offset),
        )));
    }
    for i in 0..3 {
        fields.push(Field::new(format!("f{i}"), DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from_iter_values(
            (0..rows).map(|r| r as f64 * 0.5 + i as f64),
        )));
    }
    for i in 0..3 {
        fields.push(Field::new(format!("s{i}"), DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(
            (0..rows).map(|r| format!("value-{i}-{}", r % 1000)),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
}

const WIDE_TABLE: &str = "CREATE TABLE wide (i0 BIGINT PRIMARY KEY, i1 BIGINT, i2 BIGINT, i3 BIGINT, f0 DOUBLE, f1 DOUBLE, f2 DOUBLE, s0 TEXT, s1 TEXT, s2 TEXT)";

async fn bulk_insert(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let batch = wide_batch(config.bulk_rows, 0);
    let mut insert = Vec::new();
    let mut persist = Vec::new();
    for _ in 0..config.runs {
        let (_dir, path) = temp_db_path();
        let db = Database::open(&path).await?;
        let mut session = Session::new(&db);
        session.execute(WIDE_TABLE).await?;
        let started = Instant::now();
        session.append("wide", std::slice::from_ref(&batch)).await?;
        insert.push(config.bulk_rows as f64 / started.elapsed().as_secs_f64());
        let started = Instant::now();
        db.persist().await?;
        persist.push(config.bulk_rows as f64 / started.elapsed().as_secs_f64());
        db.close().await?;
    }
    println!(
        "| bulk insert, {} rows x 10 columns, one durable commit | {:.0} rows/s |",
        config.bulk_rows,
        median(insert)
    );
    println!(
        "| persist those rows to Parquet (zstd) + checkpoint | {:.0} rows/s |",
        median(persist)
    );
    Ok(())
}

async fn single_row_commits(
    config: &Config,
    writers: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rates = Vec::new();
    for _ in 0..config.runs {
        let (dir, path) = temp_db_path();
        // DRIFTDB_BENCH_STORE=s3://… puts these databases on object storage.
        let location = driftdb_benches::harness::engines::bench_location(
            std::path::Path::new(&path),
            &format!("commits-{writers}"),
        );
        let db = Database::open(&location).await?;
        let _dir = dir;
        Session::new(&db)
            .execute("CREATE TABLE kv (k BIGINT PRIMARY KEY, v BIGINT)")
            .await?;
        let started = Instant::now();
        insert_from_writers(&db, writers, config.commits_per_writer).await?;
        let commits = writers * config.commits_per_writer;
        rates.push(commits as f64 / started.elapsed().as_secs_f64());
        db.close().await?;
    }
    println!(
        "| single-row durable commits, {writers} writer(s) | {:.0} commits/s |",
        median(rates)
    );
    Ok(())
}

/// `writers` sessions each commit `per_writer` single-row inserts into `kv`.
async fn insert_from_writers(
    db: &Database,
    writers: usize,
    per_writer: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut session = Session::new(&db);
            for n in 0..per_writer {
                let k = (writer * per_writer + n) as i64;
                let sql = format!("INSERT INTO kv VALUES ({k}, {n})");
                session.execute(&sql).await.expect("insert");
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok(())
}

async fn time_query(
    session: &mut Session,
    sql: &str,
    runs: usize,
) -> Result<Duration, Box<dyn std::error::Error>> {
    session.execute_one(sql).await?; // warm-up
    let mut samples = Vec::new();
    for _ in 0..runs.max(3) {
        let started = Instant::now();
        session.execute_one(sql).await?;
        samples.push(started.elapsed().as_secs_f64());
    }
    Ok(Duration::from_secs_f64(median(samples)))
}

/// A table loaded in one commit, then `commits` update commits; compare AS OF the load with now.
async fn as_of_ratio(config: &Config, commits: usize) -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, path) = temp_db_path();
    let db = Database::open_with(
        &path,
        Limits {
            memtable_bytes_max: 8 * 1024 * 1024,
            ..Limits::default()
        },
    )
    .await?;
    let mut session = Session::new(&db);
    session.execute(WIDE_TABLE).await?;
    session
        .append("wide", &[wide_batch(config.history_rows, 0)])
        .await?;
    let loaded = db.visible_seq();
    let rows_per_update = (config.history_rows / 100).max(1);
    for c in 0..commits {
        let start = (c * 7919 % config.history_rows) as i64;
        session
            .execute(&format!(
                "UPDATE wide SET f0 = f0 + 1 WHERE i0 >= {start} AND i0 < {}",
                start + rows_per_update as i64
            ))
            .await?;
    }
    db.persist().await?;
    let current = time_query(
        &mut session,
        "SELECT sum(f0), count(*) FROM wide",
        config.runs,
    )
    .await?;
    let old = time_query(
        &mut session,
        &format!("SELECT sum(f0), count(*) FROM wide VERSION AS OF {loaded}"),
        config.runs,
    )
    .await?;
    println!(
        "| AS OF the load after {commits} update commits vs current ({} rows) | {:.2} ({:.1} ms vs {:.1} ms) |",
        config.history_rows,
        old.as_secs_f64() / current.as_secs_f64(),
        old.as_secs_f64() * 1e3,
        current.as_secs_f64() * 1e3
    );
    db.close().await?;
    Ok(())
}

async fn open_time(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, path) = temp_db_path();
    {
        let limits = Limits {
            memtable_bytes_max: usize::MAX,
            memtable_age_max: Duration::from_secs(3600),
            ..Limits::default()
        };
        let db = Database::open_with(&path, limits).await?;
        Session::new(&db)
            .execute("CREATE TABLE kv (k BIGINT PRIMARY KEY, v BIGINT)")
            .await?;
        insert_from_writers(&db, 16, config.open_commits / 16).await?;
        // Drop without closing: every commit stays in the log only.
    }
    let started = Instant::now();
    let db = Database::open(&path).await?;
    let from_log = started.elapsed();
    let commits = db.visible_seq();
    db.close().await?;
    let started = Instant::now();
    let db = Database::open(&path).await?;
    let from_checkpoint = started.elapsed();
    // One more commit and checkpoint; then damage the newest, so opening
    // falls back to the one before it and replays the log since.
    Session::new(&db)
        .execute("INSERT INTO kv VALUES (-1, -1)")
        .await?;
    db.close().await?;
    damage_newest_checkpoint(&path)?;
    let started = Instant::now();
    let db = Database::open(&path).await?;
    let fallback = started.elapsed();
    let after_fallback = db.visible_seq();
    db.close().await?;
    if after_fallback != commits + 1 {
        return Err(format!("fell back to {after_fallback} commits, not {}", commits + 1).into());
    }
    println!(
        "| open with {after_fallback} commits, newest checkpoint damaged (falls back to the previous) | {:.1} ms |",
        fallback.as_secs_f64() * 1e3
    );
    println!(
        "| open with {commits} commits, all replayed from the log | {:.1} ms |",
        from_log.as_secs_f64() * 1e3
    );
    println!(
        "| open with {commits} commits, from a checkpoint | {:.1} ms |",
        from_checkpoint.as_secs_f64() * 1e3
    );
    Ok(())
}
