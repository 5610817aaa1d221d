//! Constrained-insert figure (issue 4): inserting N rows into a table with a
//! primary key, a UNIQUE column, a FOREIGN KEY (to a 1,000-row table),
//! NOT NULL, a DEFAULT and two CHECK constraints, against the same insert
//! into a table with none. The goal is a ratio ≤ 2.
//!
//! Run: `cargo run --release -p driftdb-benches --bin constraints [-- --quick]`.

use std::time::Instant;

use driftdb_engine::{Database, Session};

const PLAIN: &str =
    "CREATE TABLE t (id BIGINT, code BIGINT, store INT, qty INT, price DOUBLE, status TEXT)";
const CONSTRAINED: &str = "CREATE TABLE t (id BIGINT PRIMARY KEY, code BIGINT UNIQUE, \
     store INT REFERENCES stores, \
     qty INT NOT NULL CHECK (qty > 0), price DOUBLE CHECK (price >= 0 AND price < 1000000), \
     status TEXT NOT NULL DEFAULT 'new')";
/// The referenced table, created (and filled) in both setups.
const STORES: &str = "CREATE TABLE stores (id INT PRIMARY KEY, name TEXT)";
const STORE_ROWS: &str =
    "INSERT INTO stores SELECT CAST(x AS INT), 'store' FROM generate_series(1, 1000) AS g(x)";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rows, runs) = if quick { (20_000, 1) } else { (1_000_000, 5) };
    let plain = median_seconds(PLAIN, rows, runs).await?;
    let constrained = median_seconds(CONSTRAINED, rows, runs).await?;
    println!("| figure | value |\n| --- | --- |");
    println!(
        "| insert {rows} rows, no constraints | {:.0} rows/s |",
        rows as f64 / plain
    );
    println!(
        "| insert {rows} rows, PRIMARY KEY + UNIQUE + FOREIGN KEY + 2 NOT NULL + 2 CHECK + DEFAULT | {:.0} rows/s |",
        rows as f64 / constrained
    );
    println!(
        "| constrained ÷ unconstrained time (goal ≤ 2) | {:.2} |",
        constrained / plain
    );
    Ok(())
}

/// Median wall time of one durable `INSERT … SELECT` of `rows` rows into a fresh table.
async fn median_seconds(
    create: &str,
    rows: usize,
    runs: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let dir = tempfile::tempdir()?;
        let db = Database::open(dir.path().to_str().expect("utf-8 path")).await?;
        let mut session = Session::new(&db);
        session.execute(STORES).await?;
        session.execute(STORE_ROWS).await?;
        session.execute(create).await?;
        let insert = format!(
            "INSERT INTO t (id, code, store, qty, price) \
             SELECT x, x * 7, CAST(x % 1000 + 1 AS INT), CAST(x % 50 + 1 AS INT), CAST(x % 1000 AS DOUBLE) \
             FROM generate_series(1, {rows}) AS g(x)"
        );
        let started = Instant::now();
        let result = session.execute_one(&insert).await?;
        samples.push(started.elapsed().as_secs_f64());
        assert_eq!(result.rows_affected, Some(rows as u64));
        db.close().await?;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    Ok(samples[samples.len() / 2])
}
