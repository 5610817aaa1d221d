//! Single-row transaction throughput (issue 4): N concurrent sessions each
//! run `BEGIN; INSERT one row; COMMIT` as fast as they can for a fixed
//! time, with every commit durable (fsync'd, group-committed). Prints
//! transactions per second for 1, 8 and 32 sessions.
//!
//! The PostgreSQL side of the comparison is `benches/transactions/postgres.sh`
//! (pgbench with the same script, `synchronous_commit = on`).
//!
//! Run: `cargo run --release -p driftdb-benches --bin transactions [-- --quick]`.

use driftdb_benches as _; // its global allocator
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use driftdb_engine::{Database, Session};

/// Session counts the figure asks for.
const SESSION_COUNTS: [usize; 3] = [1, 8, 32];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let run = Duration::from_secs(if quick { 1 } else { 10 });
    println!("| sessions | DriftDB single-row transactions/s (embedded, durable) |");
    println!("| --- | --- |");
    for sessions in SESSION_COUNTS {
        let rate = transactions_per_second(sessions, run).await?;
        println!("| {sessions} | {rate:.0} |");
    }
    Ok(())
}

/// Run `sessions` writers for `run`; returns committed transactions per second.
async fn transactions_per_second(
    sessions: usize,
    run: Duration,
) -> Result<f64, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Database::open(dir.path().to_str().expect("utf-8 path")).await?;
    Session::new(&db)
        .execute("CREATE TABLE tx_bench (session INT NOT NULL, n BIGINT NOT NULL, note TEXT)")
        .await?;
    let committed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + run;
    let writers: Vec<_> = (0..sessions)
        .map(|s| {
            let db = db.clone();
            let committed = committed.clone();
            tokio::spawn(async move {
                let mut session = Session::new(&db);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    session.execute_one("BEGIN").await?;
                    session
                        .execute_one(&format!(
                            "INSERT INTO tx_bench VALUES ({s}, {n}, 'single-row transaction')"
                        ))
                        .await?;
                    session.execute_one("COMMIT").await?;
                    committed.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, driftdb_engine::Error>(())
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    db.close().await?;
    Ok(committed.load(Ordering::Relaxed) as f64 / elapsed)
}
