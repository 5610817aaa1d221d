//! History lifecycle figures: what a long history of updates costs a read
//! of the present, before and after `COMPACT TABLE`, next to the same rows
//! freshly loaded, and bytes on disk per retained version.
//!
//! A table of 100,000 rows (`id BIGINT PRIMARY KEY, v DOUBLE, note TEXT`)
//! takes N update commits of 1% of its rows each (`v = v + 1` over a range
//! of 1,000 ids). Timed (median of several runs, one warm-up):
//! `SELECT count(*), sum(v) FROM t` at the present and `VERSION AS OF` the
//! commit half-way, before and after compaction; the same aggregate over
//! the present rows loaded into a fresh table in one commit.
//!
//! The peer is delta-rs (`peers/deltalake_updates.py`): the same rows and
//! update commits, the same reads, before and after `optimize.compact()`
//! (for up to [`DELTA_COMMITS_MAX`] commits). Answers must agree.
//!
//! The change feed: every change of the update commits read whole
//! (`SELECT * FROM table_changes('t', first update)`, two rows per updated
//! row: pre- and postimage), in rows per second, after compaction; the
//! peer reads the same history with delta-rs's change data feed
//! (`load_cdf`, the table written with `delta.enableChangeDataFeed`).
//!
//! Run: `cargo run --release -p driftdb-benches --bin history [-- --quick] [--no-delta]`.

use driftdb_benches as _; // its global allocator
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use arrow::util::display::array_value_to_string;
use driftdb_engine::{Database, Limits, Session};

/// Rows in the table.
const ROWS: usize = 100_000;
/// Rows each update commit changes (1%).
const ROWS_PER_UPDATE: usize = ROWS / 100;
/// Most update commits delta-rs is given: each of its updates rewrites the
/// files holding the rows, so 10,000 would take most of an hour here.
const DELTA_COMMITS_MAX: usize = 1_000;
const AGGREGATE: &str = "SELECT count(*), sum(v) FROM t";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let delta = !std::env::args().any(|a| a == "--no-delta");
    let (depths, runs) = match quick {
        true => (vec![100], 3),
        false => (vec![1_000, 10_000], 7),
    };
    println!("| updates | engine | read | time | ratio |\n| --- | --- | --- | --- | --- |");
    for commits in depths {
        let figures = driftdb(commits, runs).await?;
        figures.print(commits, "DriftDB");
        if delta && commits <= DELTA_COMMITS_MAX {
            let peer = delta_rs(commits, runs)?;
            if !same_numbers(&peer.answers, &figures.answers) {
                return Err(format!(
                    "answers differ: DriftDB {:?}, delta-rs {:?}",
                    figures.answers, peer.answers
                )
                .into());
            }
            peer.print(commits, "delta-rs");
            if peer.feed.0 != figures.feed.0 {
                return Err(format!(
                    "change feeds differ: DriftDB {} rows, delta-rs {}",
                    figures.feed.0, peer.feed.0
                )
                .into());
            }
            println!(
                "| {commits} | DriftDB ÷ delta-rs | change feed of every update: {} rows, {:.0} vs {:.0} rows/s | {:.2} / {:.2} ms | {:.2} |",
                figures.feed.0,
                figures.feed_rate(),
                peer.feed_rate(),
                figures.feed.1,
                peer.feed.1,
                figures.feed.1 / peer.feed.1
            );
        }
        println!(
            "| {commits} | DriftDB | bytes on disk per retained version: before / after compaction | {:.0} / {:.0} B | {:.2} |",
            figures.bytes_per_version.0,
            figures.bytes_per_version.1,
            figures.bytes_per_version.1 / figures.bytes_per_version.0
        );
    }
    Ok(())
}

/// One engine's timings (ms) on one history.
#[derive(Debug, Default)]
struct Figures {
    fresh: f64,
    current_before: f64,
    halfway_before: f64,
    current_after: f64,
    halfway_after: f64,
    /// The aggregate's answer now and half-way, as text.
    answers: Vec<String>,
    bytes_per_version: (f64, f64),
    /// The change feed of every update commit: rows and ms to read it.
    feed: (u64, f64),
}

impl Figures {
    fn print(&self, commits: usize, engine: &str) {
        let rows = [
            ("same rows freshly loaded", self.fresh, self.fresh),
            (
                "current, before compaction",
                self.current_before,
                self.fresh,
            ),
            ("current, after compaction", self.current_after, self.fresh),
            (
                "half-way, before compaction",
                self.halfway_before,
                self.current_before,
            ),
            (
                "half-way, after compaction",
                self.halfway_after,
                self.current_after,
            ),
        ];
        for (read, ms, base) in rows {
            println!(
                "| {commits} | {engine} | {read} | {ms:.2} ms | {:.2} |",
                ms / base
            );
        }
    }

    /// Change-feed rows read per second.
    fn feed_rate(&self) -> f64 {
        self.feed.0 as f64 / (self.feed.1 / 1e3)
    }
}

async fn driftdb(commits: usize, runs: usize) -> Result<Figures> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("db");
    // Background compaction off: "before" is no compaction at all.
    let limits = Limits {
        compact_retired_percent_min: 0,
        ..Limits::default()
    };
    let db = Database::open_with(path.to_str().ok_or("utf-8 path")?, limits).await?;
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v DOUBLE NOT NULL, note TEXT)")
        .await?;
    session
        .execute(&format!(
            "INSERT INTO t SELECT x, x * 0.5, 'row ' || x FROM generate_series(0, {}) AS g(x)",
            ROWS - 1
        ))
        .await?;
    let (mut halfway, mut first) = (0, 0);
    for c in 0..commits {
        let start = c * 7919 % ROWS;
        let result = session
            .execute_one(&format!(
                "UPDATE t SET v = v + 1 WHERE id >= {start} AND id < {}",
                start + ROWS_PER_UPDATE
            ))
            .await?;
        let seq = result.seq.ok_or("an update commits")?;
        if c == 0 {
            first = seq;
        }
        if c + 1 == commits / 2 {
            halfway = seq;
        }
    }
    db.persist().await?;
    let half = format!("SELECT count(*), sum(v) FROM t VERSION AS OF {halfway}");
    let versions = count(&mut session, "SELECT count(*) FROM history('t')").await? as f64;
    let mut figures = Figures {
        current_before: time(&mut session, AGGREGATE, runs).await?,
        halfway_before: time(&mut session, &half, runs).await?,
        answers: vec![
            answer(&mut session, AGGREGATE).await?,
            answer(&mut session, &half).await?,
        ],
        ..Figures::default()
    };
    let before = folder_bytes(&path.join("data"))? as f64;
    session.execute("COMPACT TABLE t").await?;
    // Two checkpoints on, no checkpoint names the replaced files.
    for n in 0..2 {
        session
            .execute(&format!("CREATE TABLE mark{n} (x INT)"))
            .await?;
        db.persist().await?;
    }
    let after = folder_bytes(&path.join("data"))? as f64;
    figures.bytes_per_version = (before / versions, after / versions);
    figures.current_after = time(&mut session, AGGREGATE, runs).await?;
    figures.halfway_after = time(&mut session, &half, runs).await?;
    let answers = vec![
        answer(&mut session, AGGREGATE).await?,
        answer(&mut session, &half).await?,
    ];
    if answers != figures.answers {
        return Err(format!(
            "compaction changed answers: {answers:?} vs {:?}",
            figures.answers
        )
        .into());
    }
    let feed = format!(
        "SELECT * FROM table_changes('t', {first}, {})",
        first + commits as u64 - 1
    );
    let rows = session
        .execute_one(&feed)
        .await?
        .batches
        .iter()
        .map(|b| b.num_rows() as u64)
        .sum();
    figures.feed = (rows, time(&mut session, &feed, runs).await?);
    session
        .execute("CREATE TABLE fresh (id BIGINT PRIMARY KEY, v DOUBLE NOT NULL, note TEXT)")
        .await?;
    session.execute("INSERT INTO fresh SELECT * FROM t").await?;
    db.persist().await?;
    figures.fresh = time(&mut session, "SELECT count(*), sum(v) FROM fresh", runs).await?;
    db.close().await?;
    Ok(figures)
}

async fn time(session: &mut Session, sql: &str, runs: usize) -> Result<f64> {
    session.execute_one(sql).await?; // warm-up
    let mut samples = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        session.execute_one(sql).await?;
        samples.push(started.elapsed());
    }
    Ok(median(samples).as_secs_f64() * 1e3)
}

async fn answer(session: &mut Session, sql: &str) -> Result<String> {
    let result = session.execute_one(sql).await?;
    let batch = &result.batches[0];
    let values: Vec<String> = (0..batch.num_columns())
        .map(|c| array_value_to_string(batch.column(c), 0))
        .collect::<std::result::Result<_, _>>()?;
    Ok(values.join(","))
}

async fn count(session: &mut Session, sql: &str) -> Result<i64> {
    Ok(answer(session, sql).await?.parse()?)
}

/// Whether two engines' answers hold the same numbers (however printed).
fn same_numbers(a: &[String], b: &[String]) -> bool {
    let numbers =
        |s: &String| -> Vec<Option<f64>> { s.split(',').map(|v| v.parse().ok()).collect() };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| numbers(x) == numbers(y))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn folder_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        total += match entry.file_type()?.is_dir() {
            true => folder_bytes(&entry.path())?,
            false => entry.metadata()?.len(),
        };
    }
    Ok(total)
}

/// Run `peers/deltalake_updates.py` (JSON on stdout).
fn delta_rs(commits: usize, runs: usize) -> Result<Figures> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/deltalake_updates.py");
    let python = std::env::var("DRIFTDB_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(python)
        .arg(script)
        .args([
            "--rows",
            &ROWS.to_string(),
            "--rows-per-update",
            &ROWS_PER_UPDATE.to_string(),
        ])
        .args([
            "--commits",
            &commits.to_string(),
            "--runs",
            &runs.to_string(),
        ])
        .output()?;
    if !output.status.success() {
        return Err(format!("delta-rs: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let ms = |key: &str| {
        json[key]
            .as_f64()
            .ok_or_else(|| format!("delta-rs: no {key}"))
    };
    let answers = json["answers"]
        .as_array()
        .ok_or("delta-rs: no answers")?
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect();
    Ok(Figures {
        fresh: ms("fresh")?,
        current_before: ms("current_before")?,
        halfway_before: ms("halfway_before")?,
        current_after: ms("current_after")?,
        halfway_after: ms("halfway_after")?,
        answers,
        bytes_per_version: (0.0, 0.0),
        feed: (
            json["feed_rows"].as_u64().ok_or("delta-rs: no feed_rows")?,
            ms("feed")?,
        ),
    })
}
