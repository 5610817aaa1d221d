//! Property test: random inserts, updates, deletes and upserts, with
//! persists and compactions between them, against an in-memory model. For
//! every commit, the table AS OF that commit, and the versions `history()`
//! lists as live then, must equal the model's state then — before
//! persisting, after persisting, after compacting, and after reopening.
//! Between any two commits, `table_changes` applied to the earlier state
//! must give the later one, and `table_diff` must list the keys whose
//! values differ between the two. Then tags name some of the commits and
//! `VACUUM` removes all other history: each tagged commit still reads as
//! the model's state then, every other one is refused (22008).

use std::collections::BTreeMap;

use arrow::array::Array;
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
    Compact,
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
        1 => Just(Op::Compact),
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
        Op::Persist | Op::Compact => {}
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
        Op::Compact => "COMPACT TABLE t".into(),
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
    check_changes(session, history, phase).await;
    let versions = versions(session).await;
    for (seq, expected) in history {
        let actual = state_at(session, *seq).await;
        assert_eq!(
            &actual, expected,
            "{phase}: state AS OF {seq} differs from the model"
        );
        let mut listed = State::new();
        for (k, v, _, _) in versions
            .iter()
            .filter(|(_, _, from, to)| from <= seq && to.is_none_or(|to| to > *seq))
        {
            assert!(
                listed.insert(*k, *v).is_none(),
                "{phase}: {k} twice at {seq}"
            );
        }
        assert_eq!(
            &listed, expected,
            "{phase}: history() at {seq} differs from the model"
        );
    }
}

/// Rows of (i32 | NULL, …) columns and one text column first.
fn rows_of(result: &driftdb_engine::StatementResult) -> Vec<(String, Vec<Option<i32>>)> {
    let mut rows = Vec::new();
    for batch in &result.batches {
        let kind = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>();
        let kind = kind.expect("a text column first");
        for row in 0..batch.num_rows() {
            let values = (1..batch.num_columns())
                .map(|c| {
                    let column = batch
                        .column(c)
                        .as_any()
                        .downcast_ref::<arrow::array::Int32Array>();
                    let column = column.expect("INT columns");
                    column.is_valid(row).then(|| column.value(row))
                })
                .collect();
            rows.push((kind.value(row).to_string(), values));
        }
    }
    rows
}

/// `table_changes` from each commit's state leads to a later one, and
/// `table_diff` between them lists the keys that differ.
async fn check_changes(session: &mut Session, history: &[(u64, State)], phase: &str) {
    for (i, (a, before)) in history.iter().enumerate() {
        let (b, after) = &history[(i * 7 + 3) % history.len()];
        if a >= b {
            continue;
        }
        let changes = session
            .execute_one(&format!(
                "SELECT _change_type, k, v, CAST(_seq AS INT) FROM table_changes('t', {}, {b})",
                a + 1
            ))
            .await
            .expect("table_changes");
        // The feed's order is the query's: by commit, a version's preimage first.
        let mut rows = rows_of(&changes);
        rows.sort_by_key(|(kind, values)| {
            (values[2], kind.ends_with("postimage") || kind == "insert")
        });
        let mut state = before.clone();
        for (kind, values) in rows {
            let (k, v) = (values[0].expect("k"), values[1].expect("v"));
            match kind.as_str() {
                "delete" | "update_preimage" => {
                    assert_eq!(
                        state.remove(&k),
                        Some(v),
                        "{phase}: {kind} of {k} between {a} and {b}"
                    )
                }
                "insert" | "update_postimage" => {
                    assert_eq!(
                        state.insert(k, v),
                        None,
                        "{phase}: {kind} of {k} between {a} and {b}"
                    )
                }
                other => panic!("{phase}: change type {other}"),
            }
        }
        assert_eq!(&state, after, "{phase}: changes {}..={b} replayed", a + 1);
        let diff = session
            .execute_one(&format!(
                "SELECT diff_type, from_k, from_v, to_k, to_v FROM table_diff('t', {a}, {b})"
            ))
            .await
            .expect("table_diff");
        let mut expected = Vec::new();
        let keys: std::collections::BTreeSet<&i32> = before.keys().chain(after.keys()).collect();
        for k in keys {
            let (old, new) = (before.get(k).copied(), after.get(k).copied());
            let kind = match (old, new) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(x), Some(y)) if x != y => "modified",
                _ => continue,
            };
            let from_k = old.map(|_| *k);
            let to_k = new.map(|_| *k);
            expected.push((kind.to_string(), vec![from_k, old, to_k, new]));
        }
        let mut listed = rows_of(&diff);
        listed.sort_by_key(|(_, values)| values[0].or(values[2]));
        assert_eq!(listed, expected, "{phase}: table_diff {a} {b}");
    }
}

/// Every version `history('t')` lists: key, value, the seq that wrote it
/// and the seq that retired it (from its `_system_to` and `commits()`).
async fn versions(session: &mut Session) -> Vec<(i32, i32, u64, Option<u64>)> {
    let commits = session
        .execute_one("SELECT seq, CAST(commit_time AS BIGINT) FROM commits()")
        .await
        .expect("commits()");
    let mut seq_at = std::collections::HashMap::new();
    for batch in &commits.batches {
        let seqs = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::UInt64Array>();
        let times = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>();
        let (seqs, times) = (seqs.expect("seq"), times.expect("time"));
        for row in 0..batch.num_rows() {
            seq_at.insert(times.value(row), seqs.value(row));
        }
    }
    let result = session
        .execute_one("SELECT k, v, _seq, CAST(_system_to AS BIGINT) FROM history('t')")
        .await
        .expect("history()");
    let mut out = Vec::new();
    for batch in &result.batches {
        let int = |c: usize| {
            batch
                .column(c)
                .as_any()
                .downcast_ref::<arrow::array::Int32Array>()
                .cloned()
        };
        let (keys, values) = (int(0).expect("k"), int(1).expect("v"));
        let seqs = batch
            .column(2)
            .as_any()
            .downcast_ref::<arrow::array::UInt64Array>();
        let to = batch
            .column(3)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>();
        let (seqs, to) = (seqs.expect("_seq"), to.expect("_system_to"));
        for row in 0..batch.num_rows() {
            let retired = to.is_valid(row).then(|| seq_at[&to.value(row)]);
            out.push((keys.value(row), values.value(row), seqs.value(row), retired));
        }
    }
    out
}

async fn run_case(ops: Vec<Op>, tags: Vec<prop::sample::Index>) {
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
                // COMPACT answers with the commit it compacted at, not a new one.
                if let Some(seq) = result.seq.filter(|_| !matches!(op, Op::Compact)) {
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
    session.execute("COMPACT TABLE t").await.expect("compact");
    check_history(&mut session, &history, "compacted").await;
    drop(session);
    db.close().await.expect("close");
    let db = Database::open(path).await.expect("reopen");
    let mut session = Session::new(&db);
    check_history(&mut session, &history, "reopened").await;
    if history.is_empty() {
        return;
    }
    let tagged: std::collections::BTreeSet<usize> =
        tags.iter().map(|t| t.index(history.len())).collect();
    for i in &tagged {
        let sql = format!("CREATE TAG v{i} AS OF {}", history[*i].0);
        session.execute(&sql).await.expect(&sql);
    }
    let horizon = db.visible_seq();
    session
        .execute("VACUUM t RETAIN 0 HOURS")
        .await
        .expect("vacuum");
    check_tags(&mut session, &history, &tagged, horizon).await;
    drop(session);
    db.close().await.expect("close");
    let db = Database::open(path).await.expect("reopen");
    let mut session = Session::new(&db);
    check_tags(&mut session, &history, &tagged, horizon).await;
}

/// After a `VACUUM` to `horizon`: tagged commits read as the model's
/// state (by number and by tag), others before the horizon are refused.
async fn check_tags(
    session: &mut Session,
    history: &[(u64, State)],
    tagged: &std::collections::BTreeSet<usize>,
    horizon: u64,
) {
    for (i, (seq, expected)) in history.iter().enumerate() {
        if tagged.contains(&i) {
            assert_eq!(&state_at(session, *seq).await, expected, "tagged {seq}");
            let by_tag = format!("SELECT k, v FROM t VERSION AS OF 'v{i}'");
            let result = session.execute_one(&by_tag).await.expect(&by_tag);
            let rows: usize = result.batches.iter().map(|b| b.num_rows()).sum();
            assert_eq!(rows, expected.len(), "{by_tag}");
        } else if *seq < horizon {
            let sql = format!("SELECT k, v FROM t VERSION AS OF {seq}");
            let error = session.execute(&sql).await.expect_err(&sql);
            assert_eq!(error.sqlstate(), "22008", "{sql}: {error}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn as_of_every_commit_matches_the_model(
        ops in prop::collection::vec(op(), 1..40),
        tags in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_case(ops, tags));
    }
}
