//! The bank workload: concurrent sessions move money between accounts in
//! transactions, retrying serialization failures, for `DRIFTDB_BANK_SECS`
//! seconds (30 by default) under SERIALIZABLE and under REPEATABLE READ,
//! and once more in a child process that is SIGKILLed in the middle and
//! reopened. Afterwards:
//! - the total is what it was, and no balance is below zero (a CHECK);
//! - every balance equals its opening balance plus the transfers recorded;
//! - every acknowledged transfer is in the table and in the history exactly
//!   once, and each committed transfer was exactly one commit.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, Int64Array};
use driftdb_engine::{Database, Session};
use rand::{Rng, SeedableRng};

const ACCOUNTS: i64 = 32;
const OPENING_BALANCE: i64 = 1_000;
const SESSIONS: u64 = 8;
const AMOUNT_MAX: i64 = 300;
const SECONDS_ENV: &str = "DRIFTDB_BANK_SECS";
const DEFAULT_SECONDS: u64 = 30;
const CHILD_ENV: &str = "DRIFTDB_BANK_CHILD_DIR";
/// How long the child runs before the kill.
const CHILD_RUN: Duration = Duration::from_secs(8);

fn run_time() -> Duration {
    let secs = std::env::var(SECONDS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECONDS);
    Duration::from_secs(secs)
}

/// What the workers did.
#[derive(Debug, Default)]
struct Tally {
    committed: Vec<i64>,
    retries: u64,
    refused_by_check: u64,
    insufficient: u64,
}

async fn create_bank(db: &Database) {
    let mut session = Session::new(db);
    session
        .execute(&format!(
            "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0));
             CREATE TABLE transfers (id BIGINT PRIMARY KEY, src BIGINT NOT NULL, dst BIGINT NOT NULL, amount BIGINT NOT NULL);
             INSERT INTO accounts SELECT x, {OPENING_BALANCE} FROM generate_series(1, {ACCOUNTS}) AS g(x)"
        ))
        .await
        .expect("create the bank");
}

async fn scalar(session: &mut Session, sql: &str) -> i64 {
    let result = session.execute_one(sql).await.expect(sql);
    // sum(bigint) is numeric, as in PostgreSQL: read any integer or decimal as BIGINT.
    let column = arrow::compute::cast(
        result.batches[0].column(0),
        &arrow::datatypes::DataType::Int64,
    )
    .expect(sql);
    let values = column
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap_or_else(|| panic!("{sql}: not BIGINT"));
    assert!(!values.is_null(0), "{sql}: NULL");
    values.value(0)
}

enum Outcome {
    Committed,
    Insufficient,
}

/// One transfer as one transaction. A quarter of them skip the balance
/// check and rely on the CHECK constraint instead.
async fn transfer(
    session: &mut Session,
    level: &str,
    id: i64,
    (src, dst, amount): (i64, i64, i64),
    trust_check: bool,
) -> driftdb_engine::Result<Outcome> {
    session
        .execute_one(&format!("START TRANSACTION ISOLATION LEVEL {level}"))
        .await?;
    let body = async {
        if !trust_check {
            let balance = session
                .execute_one(&format!("SELECT balance FROM accounts WHERE id = {src}"))
                .await?;
            let balance = balance.batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("bigint")
                .value(0);
            if balance < amount {
                return Ok(Outcome::Insufficient);
            }
        }
        session
            .execute(&format!(
                "UPDATE accounts SET balance = balance - {amount} WHERE id = {src};
                 UPDATE accounts SET balance = balance + {amount} WHERE id = {dst};
                 INSERT INTO transfers VALUES ({id}, {src}, {dst}, {amount})"
            ))
            .await?;
        let commit = session.execute_one("COMMIT").await?;
        assert_eq!(commit.tag, "COMMIT", "a healthy transaction commits");
        Ok(Outcome::Committed)
    };
    let outcome = body.await;
    if !matches!(outcome, Ok(Outcome::Committed)) {
        session.execute_one("ROLLBACK").await?;
    }
    outcome
}

/// One session's loop until `deadline`; transfer ids are `worker * 10^9 + n`.
async fn worker(
    db: Database,
    level: &'static str,
    worker: u64,
    deadline: Instant,
    print_acks: bool,
) -> Tally {
    let mut session = Session::new(&db);
    let mut tally = Tally::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(worker ^ rand::rng().random::<u64>());
    let mut n = 0;
    while Instant::now() < deadline {
        let src = rng.random_range(1..=ACCOUNTS);
        let dst = (src + rng.random_range(1..ACCOUNTS) - 1) % ACCOUNTS + 1;
        let amount = rng.random_range(1..=AMOUNT_MAX);
        let trust_check = rng.random_range(0..4) == 0;
        n += 1;
        let id = worker as i64 * 1_000_000_000 + n;
        loop {
            match transfer(&mut session, level, id, (src, dst, amount), trust_check).await {
                Ok(Outcome::Committed) => {
                    if print_acks {
                        println!("ACK {id}");
                    }
                    tally.committed.push(id);
                }
                Ok(Outcome::Insufficient) => tally.insufficient += 1,
                Err(e) if e.sqlstate() == "40001" => {
                    tally.retries += 1;
                    continue;
                }
                Err(e) if e.sqlstate() == "23514" => tally.refused_by_check += 1,
                Err(e) => panic!("transfer {id} failed: {e} ({})", e.sqlstate()),
            }
            break;
        }
    }
    tally
}

/// Run [`SESSIONS`] workers numbered from `first_worker` (transfer ids stay unique across runs).
async fn run_workload(
    db: &Database,
    levels: &[&'static str],
    run: Duration,
    acks: bool,
    first_worker: u64,
) -> Tally {
    let deadline = Instant::now() + run;
    let tasks: Vec<_> = (0..SESSIONS)
        .map(|w| {
            let level = levels[w as usize % levels.len()];
            tokio::spawn(worker(db.clone(), level, first_worker + w, deadline, acks))
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("worker");
        total.committed.extend(tally.committed);
        total.retries += tally.retries;
        total.refused_by_check += tally.refused_by_check;
        total.insufficient += tally.insufficient;
    }
    total
}

/// Check every invariant; `acked` must all be present, and with `exact`
/// nothing else may be.
async fn check_invariants(db: &Database, acked: &HashSet<i64>, exact: bool) {
    let mut session = Session::new(db);
    let total = scalar(&mut session, "SELECT sum(balance) FROM accounts").await;
    assert_eq!(
        total,
        ACCOUNTS * OPENING_BALANCE,
        "money was created or lost"
    );
    let lowest = scalar(&mut session, "SELECT min(balance) FROM accounts").await;
    assert!(lowest >= 0, "a balance went below zero: {lowest}");
    let wrong = scalar(
        &mut session,
        &format!(
            "WITH moves AS (SELECT src AS id, -amount AS delta FROM transfers
                            UNION ALL SELECT dst, amount FROM transfers),
                  net AS (SELECT id, sum(delta) AS delta FROM moves GROUP BY id)
             SELECT count(*) FROM accounts a LEFT JOIN net n ON a.id = n.id
             WHERE a.balance <> {OPENING_BALANCE} + coalesce(n.delta, 0)"
        ),
    )
    .await;
    assert_eq!(wrong, 0, "balances disagree with the recorded transfers");
    let twice = scalar(
        &mut session,
        "SELECT count(*) FROM (SELECT id FROM history('transfers') GROUP BY id HAVING count(*) <> 1)",
    )
    .await;
    assert_eq!(twice, 0, "a transfer appears more than once in the history");
    let result = session
        .execute_one("SELECT id FROM transfers")
        .await
        .expect("transfers");
    let mut stored = HashSet::new();
    for batch in &result.batches {
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("bigint");
        stored.extend(ids.values().iter().copied());
    }
    let lost: Vec<_> = acked.difference(&stored).take(5).collect();
    assert!(lost.is_empty(), "acknowledged transfers lost: {lost:?}");
    if exact {
        assert_eq!(stored.len(), acked.len(), "unacknowledged transfers stored");
        let commits = scalar(
            &mut session,
            "SELECT count(*) FROM commits() WHERE kind = 'COMMIT'",
        )
        .await;
        assert_eq!(commits as usize, acked.len(), "one commit per transfer");
    }
}

async fn bank_run(level: &'static str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open(dir.path().join("db").to_str().expect("utf-8"))
        .await
        .expect("open");
    create_bank(&db).await;
    // An overdraft that skips the balance read is stopped by the CHECK alone.
    let mut session = Session::new(&db);
    let overdraft = (1, 2, OPENING_BALANCE + 1);
    let refused = transfer(&mut session, level, 0, overdraft, true).await;
    assert_eq!(refused.err().map(|e| e.sqlstate()), Some("23514"));
    let tally = run_workload(&db, &[level], run_time(), false, 1).await;
    println!(
        "bank {level}: {} committed, {} retries, {} refused by CHECK, {} insufficient",
        tally.committed.len(),
        tally.retries,
        tally.refused_by_check,
        tally.insufficient
    );
    assert!(
        tally.committed.len() >= SESSIONS as usize,
        "too few transfers committed"
    );
    let acked: HashSet<i64> = tally.committed.iter().copied().collect();
    check_invariants(&db, &acked, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_serializable() {
    bank_run("SERIALIZABLE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_repeatable_read() {
    bank_run("REPEATABLE READ").await;
}

/// The child process of `bank_survives_kill_9`: runs the workload and prints `ACK id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of bank_survives_kill_9"]
async fn bank_child() {
    let dir = std::env::var(CHILD_ENV).expect("run by bank_survives_kill_9");
    let db = Database::open(&dir).await.expect("child opens");
    create_bank(&db).await;
    println!("READY");
    run_workload(
        &db,
        &["SERIALIZABLE", "REPEATABLE READ"],
        Duration::from_secs(3600),
        true,
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let acked = run_child_and_kill(&path);
    assert!(
        !acked.is_empty(),
        "the child committed nothing before the kill"
    );
    let db = Database::open(path.to_str().expect("utf-8"))
        .await
        .expect("reopen after kill");
    check_invariants(&db, &acked, false).await;
    // The reopened database takes more transfers and still adds up.
    let tally = run_workload(
        &db,
        &["SERIALIZABLE", "REPEATABLE READ"],
        Duration::from_secs(3),
        false,
        1 + SESSIONS,
    )
    .await;
    let mut all = acked;
    all.extend(tally.committed);
    check_invariants(&db, &all, false).await;
}

/// Run the child for [`CHILD_RUN`], SIGKILL it, return the transfers it acknowledged.
fn run_child_and_kill(path: &std::path::Path) -> HashSet<i64> {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "bank::bank_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = HashSet::new();
    let mut deadline = None;
    loop {
        let wait = deadline.map_or(Duration::from_secs(120), |d: Instant| {
            d.saturating_duration_since(Instant::now())
        });
        match lines_rx.recv_timeout(wait) {
            Ok(line) if line.ends_with("READY") => deadline = Some(Instant::now() + CHILD_RUN),
            Ok(line) => {
                if let Some(id) = line.strip_prefix("ACK ") {
                    acked.insert(id.parse().expect("transfer id"));
                }
            }
            Err(_) => break,
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // Acks printed before the kill but not yet read still count.
    while let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) {
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.insert(id.parse().expect("transfer id"));
        }
    }
    acked
}
