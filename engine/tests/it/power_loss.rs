//! Power-loss tests over the simulated disk (`storage::simfs`): a workload
//! of DDL, inserts, updates, deletes, sequence values and persists runs
//! with a fault at one I/O step; the process ends (power cut: the folder
//! goes back to what was fsynced; or `kill -9`: it keeps everything), the
//! database is reopened and must hold every acknowledged commit exactly
//! once and nothing else (the one commit that failed is in doubt: present
//! or absent, at most once). `driftdb check` must find no damage, no
//! sequence value may be handed out twice, and a commit made after
//! reopening must survive another power cut.
//!
//! CI sweeps every I/O step of a fixed workload three ways (power cut; I/O
//! error with the machine going on, then a power cut; `kill -9`), with a
//! stride if it ever grows long. The randomized run,
//! `DRIFTDB_POWERLOSS_TRIALS=2000 cargo test -p driftdb-engine --test it
//! power_loss -- --ignored`, draws from a seed it prints on failure the
//! workload, the fault, whether the faulty step lands, torn writes,
//! background persists beside the commits, a second cut during recovery,
//! up to three lives per folder, and concurrent writers sharing group
//! fsyncs; `DRIFTDB_POWERLOSS_SEED=<seed> DRIFTDB_POWERLOSS_TRIALS=1`
//! reruns one. `DRIFTDB_POWERLOSS_TRACE=1` prints every I/O step.
//! The tests at the end pin the bugs the sweep found.

mod concurrent;
mod harness;
mod model;

use driftdb_engine::Session;
use driftdb_engine::storage::simfs::{Fault, FaultKind, SimFs};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use concurrent::concurrent_trial;
use harness::{
    End, Power, assert_tracked, block_on, end_process, final_check, ids_on_real_disk, live,
    open_over, power_cut, power_cut_at, recover, run,
};
use model::{Action, History, Model, RandomWorkload, scripted, sweep_workload};

/// The sweep cuts at most this many points (a stride past it), to stay well under a minute.
const SWEEP_CUTS_MAX: u64 = 400;
/// Trials of the randomized run when `DRIFTDB_POWERLOSS_TRIALS` is unset.
const RANDOM_TRIALS_DEFAULT: u64 = 200;
/// Lives (run, power cut, recover) of one randomized trial, at most.
const LIVES_MAX: u32 = 3;
/// Actions per life of a randomized trial, at most.
const LIFE_ACTIONS_MAX: usize = 30;
/// A randomized cut lands within this many I/O steps per action (else the life ends uncut).
const STEPS_PER_ACTION_GUESS: u64 = 5;
/// A cut during recovery lands within its first this many I/O steps.
const RECOVERY_STEPS_GUESS: u64 = 12;
/// Every this many randomized trials is a concurrent one (group commit, torn writes).
const CONCURRENT_TRIAL_EVERY: u64 = 4;

/// The ways the sweep makes each step fail.
const SWEEP_FAULTS: [(FaultKind, End); 3] = [
    (FaultKind::PowerCut, End::PowerCut { torn_seed: None }),
    (FaultKind::IoError, End::PowerCut { torn_seed: None }),
    (FaultKind::PowerCut, End::Crash),
];

#[test]
fn every_acknowledged_commit_survives_a_power_cut_at_every_step() {
    let actions = sweep_workload();
    let started = std::time::Instant::now();
    let counted = sweep_once(&actions, Power::default(), "counting run");
    assert!(counted, "the workload runs without a fault");
    let total = counted_steps(&actions);
    let stride = (total * SWEEP_FAULTS.len() as u64).div_ceil(SWEEP_CUTS_MAX);
    let (mut faults, mut in_doubt) = (0, 0);
    for step in (1..=total).step_by(stride as usize) {
        for (kind, end) in SWEEP_FAULTS {
            let lands = false;
            let power = Power {
                fault: Some(Fault { step, lands, kind }),
                end,
                ..Power::default()
            };
            let what = format!("{kind:?} at step {step} of {total}, then {end:?}");
            in_doubt += usize::from(!sweep_once(&actions, power, &what));
            faults += 1;
        }
    }
    println!(
        "power-loss sweep: {faults} faults at {total} I/O steps ({in_doubt} left a commit in doubt) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        total > 100,
        "the workload exercises the I/O paths: {total} steps"
    );
    assert!(in_doubt > 0, "some faults land inside a commit");
}

/// The I/O steps of `actions` run without a fault.
fn counted_steps(actions: &[Action]) -> u64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let fs = SimFs::new(dir.path()).expect("simulated disk");
    let what = "counting steps";
    let life = live(
        dir.path(),
        fs,
        History::default(),
        &mut scripted(actions),
        Power::default(),
        what,
    );
    life.steps
}

/// Run `actions` on a fresh folder with `power`'s fault, recover and check;
/// returns whether no commit was left in doubt.
fn sweep_once(actions: &[Action], power: Power, what: &str) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let fs = SimFs::new(dir.path()).expect("simulated disk");
    let life = live(
        dir.path(),
        fs,
        History::default(),
        &mut scripted(actions),
        power,
        what,
    );
    if let Some(fault) = power.fault {
        let stopped = fault.kind == FaultKind::PowerCut;
        assert!(
            !(stopped && life.acked.finished),
            "{what}: the power cut stopped the workload"
        );
        assert!(life.cut_step.is_some(), "{what}: the fault struck");
    }
    final_check(dir.path(), life.next, &life.acked, what);
    life.acked.in_doubt.is_none()
}

#[test]
#[ignore = "long randomized run: DRIFTDB_POWERLOSS_TRIALS=2000 cargo test -p driftdb-engine --test it power_loss -- --ignored"]
fn randomized_power_cuts() {
    let trials: u64 = env_number("DRIFTDB_POWERLOSS_TRIALS").unwrap_or(RANDOM_TRIALS_DEFAULT);
    let base_seed = env_number("DRIFTDB_POWERLOSS_SEED").unwrap_or_else(|| rand::rng().random());
    println!("power-loss randomized run: {trials} trials from seed {base_seed}");
    let started = std::time::Instant::now();
    let mut lives = 0;
    for trial in 0..trials {
        let seed = base_seed.wrapping_add(trial);
        match trial % CONCURRENT_TRIAL_EVERY {
            0 => concurrent_trial(seed),
            _ => lives += random_trial(seed),
        }
    }
    println!(
        "power-loss randomized run: {trials} trials ({lives} lives of single-writer trials) from seed {base_seed} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// One randomized trial: up to [`LIVES_MAX`] lives on one folder; returns how many.
fn random_trial(seed: u64) -> u32 {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("db");
    let mut workload = RandomWorkload::new(StdRng::seed_from_u64(rng.random()));
    let lives = rng.random_range(1..=LIVES_MAX);
    let mut history = History::default();
    let mut fs = SimFs::new(dir.path()).expect("simulated disk");
    for life in 1..=lives {
        let actions = rng.random_range(1..=LIFE_ACTIONS_MAX);
        workload.start_life(actions);
        let power = random_power(&mut rng, actions);
        let what = format!(
            "seed {seed}, life {life} of {lives}, {power:?} (rerun: DRIFTDB_POWERLOSS_SEED={seed} DRIFTDB_POWERLOSS_TRIALS=1)"
        );
        let mut next = |model: &Model| workload.next_action(model);
        let ended = live(dir.path(), fs, history, &mut next, power, &what);
        if life == lives {
            final_check(dir.path(), ended.next, &ended.acked, &what);
            break;
        }
        history = block_on(async {
            let (db, history) = recover(&db_path, &ended.next, &ended.acked, &what).await;
            drop(db); // no close: the next life recovers from the log again
            history
        });
        fs = end_process(dir.path(), &ended.next, End::Crash, &what);
    }
    lives
}

/// How a life of `actions` actions goes wrong, drawn from `rng`.
fn random_power(rng: &mut StdRng, actions: usize) -> Power {
    Power {
        fault: Some(Fault {
            step: rng.random_range(1..=actions as u64 * STEPS_PER_ACTION_GUESS),
            lands: rng.random_bool(0.3),
            kind: match rng.random_bool(0.2) {
                true => FaultKind::IoError,
                false => FaultKind::PowerCut,
            },
        }),
        end: match rng.random_bool(0.2) {
            true => End::Crash,
            false => End::PowerCut {
                torn_seed: rng.random_bool(0.5).then(|| rng.random()),
            },
        },
        busy: rng.random_bool(0.3),
        recovery_cut: rng
            .random_bool(0.2)
            .then(|| rng.random_range(1..=RECOVERY_STEPS_GUESS)),
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// Regression: recovery read a commit that a killed process had written
/// but not fsynced, and went on from it; after a later power cut the log
/// jumped over the lost commit and the database no longer opened (and the
/// commits acknowledged after the restart were out of reach).
#[test]
fn a_commit_read_back_after_a_crash_is_made_durable_before_new_commits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("db");
    let fs = SimFs::new(dir.path()).expect("simulated disk");
    block_on(async {
        let db = open_over(&db_path, &fs).await.expect("open");
        run(&db, "CREATE TABLE t (id BIGINT PRIMARY KEY)").await;
        run(&db, "INSERT INTO t VALUES (1)").await;
        fs.arm(power_cut_at(fs.steps() + 2)); // the fsync of the next commit
        let failed = Session::new(&db).execute("INSERT INTO t VALUES (2)").await;
        assert!(failed.is_err(), "the commit was not acknowledged");
    });
    assert!(
        fs.step_name(fs.steps())
            .expect("a step")
            .starts_with("fsync db/_log/")
    );
    assert_tracked(fs.crash(), "kill -9 before the fsync");
    let fs = fs.restart();
    block_on(async {
        let db = open_over(&db_path, &fs)
            .await
            .expect("reopen after kill -9");
        run(&db, "INSERT INTO t VALUES (3)").await;
    });
    power_cut(&fs, None, "power cut after the restart");
    assert_eq!(
        ids_on_real_disk(&db_path),
        vec![1, 2, 3],
        "the commit recovery made visible stays, and so does the one after it"
    );
}

/// Regression: a folder made by a process killed before it fsynced the
/// folder's parent was found existing by the next process, which never
/// made its name durable; a later power cut took the folder (here the
/// whole database) with every acknowledged commit in it.
#[test]
fn a_folder_made_by_a_killed_process_is_named_durably_by_the_next() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("db");
    let fs = SimFs::new(dir.path()).expect("simulated disk");
    fs.arm(power_cut_at(2));
    assert!(block_on(open_over(&db_path, &fs)).is_err());
    assert_eq!(fs.step_name(1).as_deref(), Some("mkdir db"));
    assert_eq!(fs.step_name(2).as_deref(), Some("fsync folder ."));
    assert_tracked(fs.crash(), "kill -9 after mkdir");
    let fs = fs.restart();
    block_on(async {
        let db = open_over(&db_path, &fs).await.expect("open after kill -9");
        run(&db, "CREATE TABLE t (id BIGINT PRIMARY KEY)").await;
        run(&db, "INSERT INTO t VALUES (1)").await;
    });
    power_cut(&fs, None, "power cut after the restart");
    assert_eq!(ids_on_real_disk(&db_path), vec![1]);
}

/// Regression: when the fsync that names a new folder failed, persist
/// failed and a later one found the folder existing and never named it
/// durably; after the log was trimmed, a power cut took `_checkpoints`
/// and with it every commit before the log's start.
#[test]
fn a_folder_left_by_a_failed_fsync_is_named_durably_by_the_next_attempt() {
    let workload = |fs: &SimFs, fault: Option<u64>| {
        block_on(async {
            let db = open_over(&fs.root().join("db"), fs).await.expect("open");
            run(&db, "CREATE TABLE t (id BIGINT PRIMARY KEY)").await;
            run(&db, "INSERT INTO t VALUES (1)").await;
            if let Some(step) = fault {
                fs.arm(Fault {
                    step,
                    lands: false,
                    kind: FaultKind::IoError,
                });
            }
            let first = db.persist().await;
            assert_eq!(first.is_err(), fault.is_some(), "{first:?}");
            // Enough persists that the log before them is durably gone.
            for id in 2..=4 {
                run(&db, &format!("INSERT INTO t VALUES ({id})")).await;
                db.persist().await.expect("a later persist");
            }
        })
    };
    // A dry run finds the fsync that names `_checkpoints`.
    let dry = tempfile::tempdir().expect("temp dir");
    let fs = SimFs::new(dry.path()).expect("simulated disk");
    workload(&fs, None);
    let names: Vec<String> = (1..=fs.steps()).filter_map(|n| fs.step_name(n)).collect();
    let mkdir = names
        .iter()
        .position(|n| n == "mkdir db/_checkpoints")
        .expect("persist makes the checkpoint folder");
    assert_eq!(names[mkdir + 1], "fsync folder db");
    let dir = tempfile::tempdir().expect("temp dir");
    let fs = SimFs::new(dir.path()).expect("simulated disk");
    workload(&fs, Some(mkdir as u64 + 2));
    power_cut(&fs, None, "power cut after the failed fsync");
    assert_eq!(ids_on_real_disk(&dir.path().join("db")), vec![1, 2, 3, 4]);
}
