//! Constrained-insert figure (issue 4): inserting N rows into a table with a
//! primary key, a UNIQUE column, a FOREIGN KEY (to a 1,000-row table),
//! NOT NULL, a DEFAULT and two CHECK constraints, against the same insert
//! into a table with none. The goal is a ratio ≤ 2. Keys come in
//! `generate_series` order (ascending per batch) and, as a third setup, in
//! shuffled order.
//!
//! Run: `cargo run --release -p driftdb-benches --bin constraints [-- --quick]`.

use driftdb_benches as _; // its global allocator
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
    let (rows, runs) = if quick { (20_000, 1) } else { (1_000_000, 11) };
    // Interleaved, so all sides meet the same disk weather; each round gives one ratio per order.
    let (mut plain, mut constrained, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut shuffled, mut shuffled_ratios) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let p = insert_seconds(PLAIN, rows, ASCENDING_ID).await?;
        let c = insert_seconds(CONSTRAINED, rows, ASCENDING_ID).await?;
        let s = insert_seconds(CONSTRAINED, rows, SHUFFLED_ID).await?;
        plain.push(p);
        constrained.push(c);
        ratios.push(c / p);
        shuffled.push(s);
        shuffled_ratios.push(s / p);
    }
    let rate = |samples: &mut Vec<f64>| {
        let [min, median, max] = spread(samples);
        format!(
            "{:.0} rows/s (min {:.0}, max {:.0})",
            rows as f64 / median,
            rows as f64 / max,
            rows as f64 / min
        )
    };
    println!("| figure (median of {runs} interleaved rounds) | value |\n| --- | --- |");
    println!(
        "| insert {rows} rows, no constraints | {} |",
        rate(&mut plain)
    );
    println!(
        "| insert {rows} rows, PRIMARY KEY + UNIQUE + FOREIGN KEY + 2 NOT NULL + 2 CHECK + DEFAULT | {} |",
        rate(&mut constrained)
    );
    println!(
        "| the same, keys in shuffled order | {} |",
        rate(&mut shuffled)
    );
    let [min, median, max] = spread(&mut ratios);
    println!(
        "| constrained ÷ unconstrained time, per round (goal ≤ 2) | {median:.2} (min {min:.2}, max {max:.2}) |"
    );
    let [min, median, max] = spread(&mut shuffled_ratios);
    println!(
        "| shuffled keys: constrained ÷ unconstrained time, per round | {median:.2} (min {min:.2}, max {max:.2}) |"
    );
    Ok(())
}

/// Minimum, median and maximum of `samples`.
fn spread(samples: &mut [f64]) -> [f64; 3] {
    samples.sort_by(|a, b| a.total_cmp(b));
    [
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
    ]
}

/// `id` in the order `generate_series` produces it.
const ASCENDING_ID: &str = "x";
/// `id` as a permutation of 1..=1,000,002 (1,000,003 is prime): the same
/// distinct keys in no useful order.
const SHUFFLED_ID: &str = "(x * 611953) % 1000003";

/// Wall time of one durable `INSERT … SELECT` of `rows` rows (`id` given
/// by the expression `id` over `x`) into a fresh table.
async fn insert_seconds(
    create: &str,
    rows: usize,
    id: &str,
) -> Result<f64, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Database::open(dir.path().to_str().expect("utf-8 path")).await?;
    let mut session = Session::new(&db);
    session.execute(STORES).await?;
    session.execute(STORE_ROWS).await?;
    session.execute(create).await?;
    let insert = format!(
        "INSERT INTO t (id, code, store, qty, price) \
         SELECT {id}, ({id}) * 7, CAST(x % 1000 + 1 AS INT), CAST(x % 50 + 1 AS INT), CAST(x % 1000 AS DOUBLE) \
         FROM generate_series(1, {rows}) AS g(x)"
    );
    let started = Instant::now();
    let result = session.execute_one(&insert).await?;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(result.rows_affected, Some(rows as u64));
    db.close().await?;
    Ok(seconds)
}
