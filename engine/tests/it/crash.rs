//! Crash recovery: a child process commits in a loop from several tasks and
//! is killed with SIGKILL at a random point; reopening must show every
//! acknowledged commit exactly once and nothing torn.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use driftdb_engine::{Database, Limits, Session};
use rand::Rng;

const CHILD_ENV: &str = "DRIFTDB_CRASH_CHILD_DIR";
const START_ENV: &str = "DRIFTDB_CRASH_CHILD_START";
const TRIALS: usize = 20;
const WRITERS: u64 = 4;

/// Limits that make the child persist and checkpoint often, so kills land in every phase.
fn busy_limits() -> Limits {
    Limits {
        memtable_bytes_max: 16 * 1024,
        ..Limits::default()
    }
}

/// The child process of `kill_9_loses_no_acknowledged_commit`; ignored in
/// normal runs, started with `--ignored` and `DRIFTDB_CRASH_CHILD_DIR` set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of kill_9_loses_no_acknowledged_commit"]
async fn crash_child_writer() {
    let dir = std::env::var(CHILD_ENV).expect("run by the crash test, which sets the folder");
    let db = Database::open_with(&dir, busy_limits())
        .await
        .expect("child opens");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE IF NOT EXISTS acked (writer INT NOT NULL, n BIGINT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (writer, n))")
        .await
        .expect("create");
    let start: i64 = std::env::var(START_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut session = Session::new(&db);
            for n in start.. {
                let payload = "x".repeat((n % 50) as usize + 1);
                let sql = format!("INSERT INTO acked VALUES ({writer}, {n}, '{payload}'), ({writer}, -{n} - 1, '{payload}')");
                session.execute(&sql).await.expect("insert");
                println!("ACK {writer} {n}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_commit() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let mut acked: HashSet<(i64, i64)> = HashSet::new();
    let mut rng = rand::rng();
    for trial in 0..TRIALS {
        let kill_after = rng.random_range(1..300);
        let this_trial = run_child_until(&path, kill_after, trial as i64 * 1_000_000);
        assert_eq!(
            this_trial.len(),
            kill_after,
            "trial {trial}: the child stopped before the kill"
        );
        acked.extend(this_trial);
        check_recovered(&path, &acked, trial).await;
    }
}

/// Start the child, read `ACK` lines until `kill_after` of them, SIGKILL it; return what it acked.
fn run_child_until(path: &std::path::Path, kill_after: usize, start: i64) -> Vec<(i64, i64)> {
    let start = start.to_string();
    let envs = [(CHILD_ENV, path.as_os_str()), (START_ENV, start.as_ref())];
    run_child("crash::crash_child_writer", &envs, kill_after)
        .iter()
        .map(|ack| {
            let mut parts = ack.split(' ').map(|p| p.parse::<i64>().expect("number"));
            (parts.next().expect("writer"), parts.next().expect("n"))
        })
        .collect()
}

/// Run the ignored test `test` of this binary as a child with `envs`, read
/// its `ACK …` lines until `kill_after` of them, SIGKILL it; return the acks.
pub fn run_child(test: &str, envs: &[(&str, &std::ffi::OsStr)], kill_after: usize) -> Vec<String> {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.split("ACK ").nth(1) {
            acked.push(rest.to_string());
            if acked.len() >= kill_after {
                child.kill().expect("SIGKILL");
                break;
            }
        }
    }
    let _ = child.wait();
    acked
}

async fn check_recovered(path: &std::path::Path, acked: &HashSet<(i64, i64)>, trial: usize) {
    let db = Database::open(path.to_str().expect("utf-8"))
        .await
        .expect("reopen after kill");
    let mut session = Session::new(&db);
    let result = session
        .execute_one("SELECT writer, n, payload FROM acked")
        .await
        .expect("query");
    let mut seen: HashSet<(i64, i64)> = HashSet::new();
    for batch in &result.batches {
        let writers = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int32Array>()
            .expect("int");
        let ns = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .expect("bigint");
        let payloads = batch
            .column(2)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("text");
        for row in 0..batch.num_rows() {
            let key = (writers.value(row) as i64, ns.value(row));
            assert!(
                seen.insert(key),
                "trial {trial}: row {key:?} recovered twice"
            );
            let n = if key.1 < 0 { -key.1 - 1 } else { key.1 };
            assert_eq!(
                payloads.value(row).len() as i64,
                n % 50 + 1,
                "trial {trial}: torn payload"
            );
        }
    }
    for (writer, n) in acked {
        assert!(
            seen.contains(&(*writer, *n)),
            "trial {trial}: acked ({writer}, {n}) lost"
        );
        assert!(
            seen.contains(&(*writer, -n - 1)),
            "trial {trial}: half of commit ({writer}, {n}) lost"
        );
    }
    // Both rows of a commit are there or neither is.
    for (writer, n) in &seen {
        let partner = -n - 1; // pairs n with -n - 1, both ways
        assert!(
            seen.contains(&(*writer, partner)),
            "trial {trial}: half-applied commit ({writer}, {n})"
        );
    }
    db.close().await.expect("close");
}

const SEQUENCE_CHILD_ENV: &str = "DRIFTDB_SEQUENCE_CHILD_DIR";

/// The child of `sequence_values_never_repeat_across_kill_9`: takes values
/// from one sequence in several sessions and prints each as `ACK v`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of sequence_values_never_repeat_across_kill_9"]
async fn sequence_child() {
    let dir = std::env::var(SEQUENCE_CHILD_ENV).expect("run by the sequence crash test");
    let db = Database::open(&dir).await.expect("child opens");
    let mut session = Session::new(&db);
    session
        .execute("CREATE SEQUENCE IF NOT EXISTS ids")
        .await
        .expect("create");
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut session = Session::new(&db);
                loop {
                    let result = session
                        .execute_one("SELECT nextval('ids') FROM generate_series(1, 7)")
                        .await
                        .expect("nextval");
                    for batch in &result.batches {
                        let values = batch
                            .column(0)
                            .as_any()
                            .downcast_ref::<arrow::array::Int64Array>()
                            .expect("bigint");
                        for v in values.values() {
                            println!("ACK {v}");
                        }
                    }
                }
            })
        })
        .collect();
    // The takers loop until the parent kills this process.
    futures::future::join_all(tasks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_values_never_repeat_across_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let mut seen: HashSet<i64> = HashSet::new();
    let mut rng = rand::rng();
    for trial in 0..5 {
        let kill_after = rng.random_range(1..5000);
        let envs = [(SEQUENCE_CHILD_ENV, path.as_os_str())];
        for ack in run_child("crash::sequence_child", &envs, kill_after) {
            let value: i64 = ack.parse().expect("value");
            assert!(
                seen.insert(value),
                "trial {trial}: value {value} handed out twice"
            );
        }
    }
    let db = Database::open(path.to_str().expect("utf-8"))
        .await
        .expect("reopen");
    let mut session = Session::new(&db);
    let result = session
        .execute_one("SELECT nextval('ids')")
        .await
        .expect("nextval");
    let next = result.batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("bigint")
        .value(0);
    let highest = seen.iter().max().copied().unwrap_or(0);
    assert!(
        next > highest,
        "{next} after a crash repeats values up to {highest}"
    );
}
