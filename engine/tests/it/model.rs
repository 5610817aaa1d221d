//! Property test: random inserts, updates, deletes and upserts against an
//! in-memory model. For every commit, the table AS OF that commit must equal
//! the model's state then — before persisting, after persisting, and after
//! reopening the database.

use std::collections::BTreeMap;

use driftdb_engine::{Database, Session};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Insert(i32, i32),
    Update(i32, i32),
    Delete(i32),
    Upsert(i32, i32),
    DeleteWhereValueBelow(i32),
    Persist,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..12i32;
    let value = -50..50i32;
    prop_oneof![
        4 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (key.clone(), value.clone()).prop_map(|(k, v)| Op::Update(k, v)),
        2 => key.clone().prop_map(Op::Delete),
        3 => (key, value.clone()).prop_map(|(k, v)| Op::Upsert(k, v)),
        1 => value.prop_map(Op::DeleteWhereValueBelow),
        1 => Just(Op::Persist),
    ]
}

type State = BTreeMap<i32, i32>;

/// Apply `op` to the model; returns whether the statement should succeed.
fn apply_to_model(model: &mut State, op: &Op) -> bool {
    match op {
        Op::Insert(k, v) => {
            if model.contains_key(k) {
                return false;
            }
            model.insert(*k, *v);
        }
        Op::Update(k, v) => {
            if let Some(old) = model.get_mut(k) {
                *old = *v;
            }
        }
        Op::Delete(k) => {
            model.remove(k);
        }
        Op::Upsert(k, v) => {
            model.insert(*k, *v);
        }
        Op::DeleteWhereValueBelow(limit) => model.retain(|_, v| *v >= *limit),
        Op::Persist => {}
    }
    true
}

fn sql_of(op: &Op) -> Option<String> {
    Some(match op {
        Op::Insert(k, v) => format!("INSERT INTO t VALUES ({k}, {v})"),
        Op::Update(k, v) => format!("UPDATE t SET v = {v} WHERE k = {k}"),
        Op::Delete(k) => format!("DELETE FROM t WHERE k = {k}"),
        Op::Upsert(k, v) => {
            format!("INSERT INTO t VALUES ({k}, {v}) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v")
        }
        Op::DeleteWhereValueBelow(limit) => format!("DELETE FROM t WHERE v < {limit}"),
        Op::Persist => return None,
    })
}

async fn state_at(session: &mut Session, seq: u64) -> State {
    let result = session
        .execute_one(&format!("SELECT k, v FROM t VERSION AS OF {seq}"))
        .await
        .expect("time travel query");
    let mut state = State::new();
    for batch in &result.batches {
        let keys = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int32Array>()
            .expect("k");
        let values = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Int32Array>()
            .expect("v");
        for row in 0..batch.num_rows() {
            assert!(
                state.insert(keys.value(row), values.value(row)).is_none(),
                "duplicate key"
            );
        }
    }
    state
}

async fn check_history(session: &mut Session, history: &[(u64, State)], phase: &str) {
    for (seq, expected) in history {
        let actual = state_at(session, *seq).await;
        assert_eq!(
            &actual, expected,
            "{phase}: state AS OF {seq} differs from the model"
        );
    }
}

async fn run_case(ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let path = path.to_str().expect("utf-8");
    let db = Database::open(path).await.expect("open");
    let mut session = Session::new(&db);
    session
        .execute("CREATE TABLE t (k INT PRIMARY KEY, v INT NOT NULL)")
        .await
        .expect("create");
    let mut model = State::new();
    let mut history: Vec<(u64, State)> = Vec::new();
    for op in &ops {
        let Some(sql) = sql_of(op) else {
            db.persist().await.expect("persist");
            continue;
        };
        let should_succeed = apply_to_model(&mut model, op);
        match session.execute_one(&sql).await {
            Ok(result) => {
                assert!(
                    should_succeed,
                    "{sql} succeeded but the model says it must fail"
                );
                if let Some(seq) = result.seq {
                    history.push((seq, model.clone()));
                }
            }
            Err(e) => {
                assert!(!should_succeed, "{sql} failed: {e}");
                assert_eq!(e.sqlstate(), "23505", "{sql}: wrong error {e}");
            }
        }
    }
    check_history(&mut session, &history, "live").await;
    db.persist().await.expect("persist");
    check_history(&mut session, &history, "persisted").await;
    drop(session);
    db.close().await.expect("close");
    let db = Database::open(path).await.expect("reopen");
    let mut session = Session::new(&db);
    check_history(&mut session, &history, "reopened").await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn as_of_every_commit_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_case(ops));
    }
}
