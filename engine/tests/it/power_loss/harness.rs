//! One life of a database on the simulated disk: run a workload with a
//! fault armed, end the process (power cut or crash), and check what
//! recovery finds against what was acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use driftdb_engine::storage::check::check_database;
use driftdb_engine::storage::simfs::{Fault, FaultKind, SimFs, Stopped};
use driftdb_engine::{Database, Limits, Session};

use super::model::{Action, History, Model, Op, Version};

/// The only file a database creates outside `DurableFs`: its writer lock (never relied on).
pub(super) const LOCK_FILE: &str = "LOCK";

/// What one life of the workload saw before the power went.
#[derive(Debug, Default)]
pub(super) struct Acknowledged {
    pub(super) history: History,
    /// The state if the commit that failed when the power went is durable after all.
    pub(super) in_doubt: Option<Model>,
    /// Whether every action succeeded (the power never went during the workload).
    pub(super) finished: bool,
    /// The first commit that failed, and why.
    pub(super) failure: Option<String>,
}

/// Limits that make a few dozen commits fill memtable chunks and row groups.
pub(super) fn limits(busy: bool) -> Limits {
    Limits {
        // Busy: a background persist after nearly every commit, beside the next commits.
        memtable_bytes_max: if busy { 512 } else { usize::MAX },
        memtable_age_max: Duration::from_secs(3600),
        parquet_row_group_rows_max: 4,
        memtable_chunk_rows_max: 3,
        ..Limits::default()
    }
}

/// Run actions from `next_action` (given the model so far) until it gives
/// none or the power goes; report what was acknowledged. After an I/O
/// error with the power on the workload goes on: the commit that failed is
/// in doubt, and every later commit must fail (the log refuses after a
/// failed write) and be absent.
pub(super) async fn run_workload(
    db_path: &Path,
    fs: &SimFs,
    limits: Limits,
    history: History,
    next_action: &mut dyn FnMut(&Model) -> Option<Action>,
    what: &str,
) -> Acknowledged {
    let mut acked = Acknowledged {
        history,
        ..Acknowledged::default()
    };
    let Ok(db) = Database::open_with_fs(path_str(db_path), limits, fs.as_durable()).await else {
        return acked; // the power went (or an I/O error struck) while opening
    };
    let mut session = Session::new(&db);
    while let Some(action) = next_action(&acked.history.model) {
        if let Some((op, result)) = attempt(&db, &mut session, action, &mut acked.history).await {
            record(&db, &mut acked, op, result, what);
        }
        if fs.dead_at().is_some() {
            return acked;
        }
    }
    acked.finished = acked.in_doubt.is_none();
    acked
}

/// Run one action; returns the commit it tried and how that went (None if it tried none).
async fn attempt(
    db: &Database,
    session: &mut Session,
    action: Action,
    history: &mut History,
) -> Option<(Op, driftdb_engine::Result<()>)> {
    let op = match action {
        Action::Persist => {
            let _ = db.persist().await; // a failure is seen by the commits after it
            return None;
        }
        Action::Compact(table) => {
            let _ = db.compact_table(&table).await;
            return None;
        }
        Action::Commit(op) => op,
        Action::InsertFromSequence(table) => {
            let value = scalar(session, "SELECT nextval('ids')").await.ok()?;
            history.sequence_values.push(value);
            Op::Insert {
                table,
                ids: vec![value],
            }
        }
    };
    let result = session.execute(&op.sql()).await.map(|_| ());
    Some((op, result))
}

/// Note how one commit went.
fn record(
    db: &Database,
    acked: &mut Acknowledged,
    op: Op,
    result: driftdb_engine::Result<()>,
    what: &str,
) {
    if !acked.history.model.changes(&op) {
        return; // no row to change (an earlier commit failed): no commit either way
    }
    let next = acked.history.model.after(&op);
    match result {
        Err(e) if acked.in_doubt.is_none() => {
            acked.failure = Some(format!("{op:?}: {e}"));
            acked.in_doubt = Some(next);
        }
        Err(_) => {} // after a failed commit the log refuses: this one is absent
        Ok(()) => {
            assert!(
                acked.in_doubt.is_none(),
                "{what}: {op:?} was acknowledged after an earlier commit failed ({:?})",
                acked.failure
            );
            assert_eq!(db.visible_seq(), next.seq, "{what}: {op:?} made one commit");
            acked.history.model = next;
        }
    }
}

/// Every row version of `table` as the database holds it, sorted.
pub(super) async fn stored_versions(
    db: &Database,
    session: &mut Session,
    table: &str,
) -> Vec<Version> {
    let seq_at: HashMap<i64, u64> = db.commits().iter().map(|c| (c.time_us, c.seq)).collect();
    let sql = format!("SELECT id, v, note, _seq, _system_to FROM {table} FOR SYSTEM_TIME ALL");
    let result = session
        .execute_one(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut versions = Vec::new();
    for batch in &result.batches {
        let column = |i: usize, to: &DataType| {
            arrow::compute::cast(batch.column(i), to).expect("cast a result column")
        };
        let (id, v, seq, to) = (
            column(0, &DataType::Int64),
            column(1, &DataType::Int64),
            column(3, &DataType::Int64),
            column(4, &DataType::Int64),
        );
        let note = column(2, &DataType::Utf8);
        let (id, v, seq, to) = (
            id.as_primitive::<Int64Type>(),
            v.as_primitive::<Int64Type>(),
            seq.as_primitive::<Int64Type>(),
            to.as_primitive::<Int64Type>(),
        );
        let note = note.as_string::<i32>();
        for row in 0..batch.num_rows() {
            let retired = (!to.is_null(row)).then(|| {
                *seq_at
                    .get(&to.value(row))
                    .unwrap_or_else(|| panic!("{table}: no commit at time {}", to.value(row)))
            });
            versions.push(Version {
                id: id.value(row),
                v: v.value(row),
                note: note.value(row).to_string(),
                from: seq.value(row) as u64,
                to: retired,
            });
        }
    }
    versions.sort();
    versions
}

/// Assert that the open database holds exactly `model`.
pub(super) async fn assert_holds(db: &Database, model: &Model, what: &str) {
    assert_eq!(db.visible_seq(), model.seq, "{what}: last commit");
    let commits: Vec<u64> = db.commits().iter().map(|c| c.seq).collect();
    assert_eq!(
        commits,
        (1..=model.seq).collect::<Vec<_>>(),
        "{what}: every commit once, in order"
    );
    let catalog = db.catalog();
    let tables: BTreeMap<String, Vec<String>> = catalog
        .tables
        .iter()
        .filter(|t| t.exists_at(model.seq))
        .map(|t| {
            let columns = t.columns_at(model.seq).iter().map(|c| c.name.clone());
            (t.name.clone(), columns.skip(3).collect())
        })
        .collect();
    let expected: BTreeMap<String, Vec<String>> = model
        .tables
        .iter()
        .map(|(name, t)| (name.clone(), t.added_columns.clone()))
        .collect();
    assert_eq!(tables, expected, "{what}: tables and their added columns");
    let mut session = Session::new(db);
    for (name, table) in &model.tables {
        let mut expected = table.versions.clone();
        expected.sort();
        let stored = stored_versions(db, &mut session, name).await;
        assert_eq!(stored, expected, "{what}: row versions of {name}");
    }
}

/// Assert that `nextval` after the power cut repeats no value handed out before it.
pub(super) async fn assert_sequence_moves_on(
    session: &mut Session,
    history: &mut History,
    what: &str,
) {
    if !history.model.has_sequence {
        return;
    }
    let value = scalar(session, "SELECT nextval('ids')")
        .await
        .unwrap_or_else(|e| panic!("{what}: nextval after reopening: {e}"));
    let highest = history.sequence_values.iter().max().copied().unwrap_or(0);
    assert!(
        value > highest,
        "{what}: nextval gave {value} after the power cut, but had handed out up to {highest}"
    );
    history.sequence_values.push(value);
}

/// Reopen on `fs` after a life ended and check that the database holds
/// every acknowledged commit and nothing else (the commit in doubt may be
/// there or not) and hands out no sequence value twice; returns what it holds.
pub(super) async fn recover(
    db_path: &Path,
    fs: &SimFs,
    acked: &Acknowledged,
    what: &str,
) -> (Database, History) {
    let db = Database::open_with_fs(path_str(db_path), limits(false), fs.as_durable())
        .await
        .unwrap_or_else(|e| panic!("{what}: reopening failed: {e}"));
    let found = match &acked.in_doubt {
        Some(in_doubt) if db.visible_seq() == in_doubt.seq => in_doubt,
        _ => &acked.history.model,
    };
    assert_holds(&db, found, what).await;
    let mut history = History {
        model: found.clone(),
        sequence_values: acked.history.sequence_values.clone(),
    };
    assert_sequence_moves_on(&mut Session::new(&db), &mut history, what).await;
    (db, history)
}

/// A new commit after reopening is acknowledged; returns the model with it.
pub(super) async fn commit_after_recovery(db: &Database, mut model: Model, what: &str) -> Model {
    let mut session = Session::new(db);
    let name = format!("after_cut_{}", model.seq);
    for op in [
        Op::CreateTable(name.clone()),
        Op::Insert {
            table: name,
            ids: vec![1, 2],
        },
    ] {
        session
            .execute(&op.sql())
            .await
            .unwrap_or_else(|e| panic!("{what}: a commit after reopening: {e}"));
        model = model.after(&op);
    }
    assert_holds(db, &model, &format!("{what}, after a new commit")).await;
    model
}

/// Assert that `driftdb check` finds no damage in the folder.
pub(super) async fn assert_undamaged(db_path: &Path, what: &str) {
    if !db_path.exists() {
        return; // the power went before the database folder was durable
    }
    let report = check_database(db_path)
        .await
        .unwrap_or_else(|e| panic!("{what}: check: {e}"));
    assert!(
        !report.is_damaged(),
        "{what}: check found damage:\n{report}"
    );
}

/// Cut the power, and assert the database changed nothing behind the simulator's back.
pub(super) fn power_cut(fs: &SimFs, torn_seed: Option<u64>, what: &str) {
    if std::env::var_os("DRIFTDB_POWERLOSS_TRACE").is_some() {
        for n in 1..=fs.steps() {
            println!("{what}: step {n}: {}", fs.step_name(n).unwrap_or_default());
        }
    }
    assert_tracked(fs.power_cut(torn_seed), what);
}

/// Assert that the simulator saw every file the database wrote.
pub(super) fn assert_tracked(stopped: std::io::Result<Stopped>, what: &str) {
    let stopped = stopped.unwrap_or_else(|e| panic!("{what}: stopping the simulated disk: {e}"));
    let allowed = PathBuf::from("db").join(LOCK_FILE);
    let bypassed: Vec<&PathBuf> = stopped
        .untracked
        .iter()
        .filter(|p| **p != allowed)
        .collect();
    assert!(
        bypassed.is_empty(),
        "{what}: files changed outside DurableFs: {bypassed:?}"
    );
}

pub(super) fn power_cut_at(step: u64) -> Fault {
    Fault {
        step,
        lands: false,
        kind: FaultKind::PowerCut,
    }
}

/// How one life goes wrong.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Power {
    pub(super) fault: Option<Fault>,
    /// How the life ends once the workload stops.
    pub(super) end: End,
    /// Background persists beside the commits.
    pub(super) busy: bool,
    /// Cut the power again at this step of the first reopening (recovery's own writes).
    pub(super) recovery_cut: Option<u64>,
}

/// How a life ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum End {
    /// The folder keeps only what was durable (unsynced writes torn, with a seed).
    PowerCut { torn_seed: Option<u64> },
    /// The process is killed; the folder keeps every completed change.
    Crash,
}

impl Default for End {
    fn default() -> Self {
        End::PowerCut { torn_seed: None }
    }
}

/// What one life observed.
#[derive(Debug)]
pub(super) struct Life {
    pub(super) steps: u64,
    pub(super) acked: Acknowledged,
    /// What the step the fault struck at did.
    pub(super) cut_step: Option<String>,
    /// The simulated disk the next process runs on.
    pub(super) next: SimFs,
}

/// One life of the database in `dir`, a process on `fs`: run the workload
/// with the fault `power` arms, end it (power cut or crash), cut recovery
/// short too if asked, and check the folder.
pub(super) fn live(
    dir: &Path,
    fs: SimFs,
    history: History,
    next_action: &mut dyn FnMut(&Model) -> Option<Action>,
    power: Power,
    what: &str,
) -> Life {
    let db_path = dir.join("db");
    if let Some(fault) = power.fault {
        fs.arm(fault);
    }
    let workload_limits = limits(power.busy);
    let acked = block_on(run_workload(
        &db_path,
        &fs,
        workload_limits,
        history,
        next_action,
        what,
    ));
    let steps = fs.steps();
    let cut_step = power.fault.and_then(|f| fs.step_name(f.step));
    let what = format!("{what}, failed at {cut_step:?}");
    let mut next = end_process(dir, &fs, power.end, &what);
    if let Some(step) = power.recovery_cut {
        next.arm(power_cut_at(step));
        let opened = block_on(Database::open_with_fs(
            path_str(&db_path),
            limits(false),
            next.as_durable(),
        ));
        drop(opened); // it may fail: the power went again
        next = end_process(dir, &next, End::PowerCut { torn_seed: None }, &what);
    }
    block_on(assert_undamaged(&db_path, &what));
    Life {
        steps,
        acked,
        cut_step,
        next,
    }
}

/// End the process on `fs` as `end` says; returns the disk of the next process.
pub(super) fn end_process(dir: &Path, fs: &SimFs, end: End, what: &str) -> SimFs {
    match end {
        End::PowerCut { torn_seed } => {
            power_cut(fs, torn_seed, what);
            SimFs::new(dir).expect("simulated disk")
        }
        End::Crash => {
            assert_tracked(fs.crash(), what);
            fs.restart()
        }
    }
}

/// After the last life: recover on `fs`, commit, and cut the power without
/// closing; reopen, check, close, cut the power again (closing made
/// everything durable) and reopen on the real disk.
pub(super) fn final_check(dir: &Path, fs: SimFs, acked: &Acknowledged, what: &str) {
    let db_path = dir.join("db");
    let model = block_on(async {
        let (db, history) = recover(&db_path, &fs, acked, what).await;
        commit_after_recovery(&db, history.model, what).await
    });
    let fs = end_process(dir, &fs, End::default(), what);
    block_on(async {
        let db = Database::open_with_fs(path_str(&db_path), limits(false), fs.as_durable())
            .await
            .unwrap_or_else(|e| panic!("{what}: reopening after the commit: {e}"));
        let what = format!("{what}, reopened after a commit and a power cut");
        assert_holds(&db, &model, &what).await;
        db.close()
            .await
            .unwrap_or_else(|e| panic!("{what}: close: {e}"));
    });
    power_cut(&fs, None, what);
    block_on(assert_undamaged(&db_path, what));
    block_on(async {
        let db = Database::open(path_str(&db_path))
            .await
            .unwrap_or_else(|e| panic!("{what}: reopening on the real disk: {e}"));
        assert_holds(&db, &model, &format!("{what}, reopened after close")).await;
    });
}

/// The single BIGINT a query returns.
pub(super) async fn scalar(session: &mut Session, sql: &str) -> driftdb_engine::Result<i64> {
    let result = session.execute_one(sql).await?;
    let column = arrow::compute::cast(result.batches[0].column(0), &DataType::Int64)
        .expect("an integer result");
    Ok(column.as_primitive::<Int64Type>().value(0))
}

pub(super) fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Run `future` on a runtime of its own, so that dropping it ends every
/// task (and with them every handle on the database) before the power cut.
pub(super) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Run `sql` on `db`; panics with the statement on error.
pub(super) async fn run(db: &Database, sql: &str) {
    Session::new(db)
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Open the database in `db_path` over `fs`.
pub(super) async fn open_over(db_path: &Path, fs: &SimFs) -> driftdb_engine::Result<Database> {
    Database::open_with_fs(path_str(db_path), limits(false), fs.as_durable()).await
}

/// The ids in table `t` of the database in `db_path`, opened on the real disk.
pub(super) fn ids_on_real_disk(db_path: &Path) -> Vec<i64> {
    block_on(async {
        let db = Database::open(path_str(db_path))
            .await
            .unwrap_or_else(|e| panic!("reopening on the real disk: {e}"));
        let result = Session::new(&db)
            .execute_one("SELECT id FROM t ORDER BY id")
            .await
            .expect("select");
        let mut ids = Vec::new();
        for batch in &result.batches {
            let column = arrow::compute::cast(batch.column(0), &DataType::Int64).expect("ids");
            ids.extend(column.as_primitive::<Int64Type>().values().iter().copied());
        }
        ids
    })
}
