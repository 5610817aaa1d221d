use super::*;
use crate::storage::durable::temp_name;

/// A simulated folder over a fresh temp dir, with `db/` already durable.
fn booted() -> (tempfile::TempDir, SimFs, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let fs = SimFs::new(dir.path()).unwrap();
    (dir, fs, db)
}

fn power_cut_at(step: u64) -> Fault {
    Fault {
        step,
        lands: false,
        kind: FaultKind::PowerCut,
    }
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

#[test]
fn only_synced_appends_survive() {
    let (_dir, fs, db) = booted();
    fs.write_file_atomic(&db, "log", b"head").unwrap();
    let mut file = fs.open_append(&db.join("log")).unwrap();
    file.append(b"-synced").unwrap();
    file.sync_data().unwrap();
    file.append(b"-lost").unwrap();
    assert_eq!(read(&db.join("log")).unwrap(), b"head-synced-lost");
    let cut = fs.power_cut(None).unwrap();
    assert!(cut.untracked.is_empty(), "{:?}", cut.untracked);
    assert_eq!(read(&db.join("log")).unwrap(), b"head-synced");
}

#[test]
fn an_atomic_write_cut_at_any_step_leaves_the_old_or_the_new_file() {
    // Steps: remove the leftover temp, create and write the temp, fsync it,
    // rename it, fsync the folder; step 6 is never reached.
    for lands in [false, true] {
        for step in 1..=6 {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("db");
            std::fs::create_dir(&db).unwrap();
            std::fs::write(db.join("f"), b"old").unwrap();
            std::fs::write(db.join(temp_name("f")), b"leftover").unwrap();
            let fs = SimFs::new(dir.path()).unwrap();
            fs.arm(Fault {
                step,
                lands,
                kind: FaultKind::PowerCut,
            });
            let result = fs.write_file_atomic(&db, "f", b"new");
            assert_eq!(result.is_ok(), step == 6, "step {step}");
            let cut = fs.power_cut(None).unwrap();
            assert!(cut.untracked.is_empty(), "{:?}", cut.untracked);
            let folder_synced = step == 6 || (step == 5 && lands);
            let after = read(&db.join("f")).unwrap();
            let expected: &[u8] = if folder_synced { b"new" } else { b"old" };
            assert_eq!(after, expected, "step {step}, lands {lands}");
            // The unlink of the leftover is durable only with the folder.
            assert_eq!(
                read(&db.join(temp_name("f"))).is_some(),
                !folder_synced,
                "step {step}, lands {lands}"
            );
        }
    }
}

#[test]
fn an_unlink_is_undone_unless_the_folder_was_synced() {
    let (_dir, fs, db) = booted();
    fs.write_file_atomic(&db, "a", b"a").unwrap();
    fs.write_file_atomic(&db, "b", b"b").unwrap();
    fs.remove_file(&db.join("a")).unwrap();
    fs.remove_file(&db.join("b")).unwrap();
    fs.sync_dir(&db).unwrap();
    fs.write_file_atomic(&db, "c", b"c").unwrap();
    fs.remove_file(&db.join("c")).unwrap();
    fs.power_cut(None).unwrap();
    assert_eq!(read(&db.join("a")), None);
    assert_eq!(read(&db.join("b")), None);
    assert_eq!(read(&db.join("c")).unwrap(), b"c");
}

#[test]
fn a_folder_whose_parent_was_not_synced_vanishes_with_its_files() {
    let (dir, fs, db) = booted();
    let first_mkdir = fs.steps() + 1;
    fs.arm(power_cut_at(first_mkdir + 1)); // the fsync of db/ that would name db/new
    assert!(fs.create_dir_all(&db.join("new/deeper")).is_err());
    assert_eq!(fs.step_name(first_mkdir).unwrap(), "mkdir db/new");
    assert!(db.join("new").is_dir(), "the real folder is the page cache");
    fs.power_cut(None).unwrap();
    assert!(!db.join("new").exists());
    assert!(dir.path().join("db").is_dir());
}

#[test]
fn every_call_after_the_cut_fails_and_changes_nothing() {
    let (_dir, fs, db) = booted();
    fs.write_file_atomic(&db, "f", b"one").unwrap();
    let mut file = fs.open_append(&db.join("f")).unwrap();
    fs.arm(power_cut_at(fs.steps() + 1));
    assert!(file.append(b"two").is_err());
    assert_eq!(fs.dead_at(), Some(fs.steps()));
    assert!(file.append(b"three").is_err());
    assert!(file.sync_data().is_err());
    assert!(fs.write_file_atomic(&db, "g", b"g").is_err());
    assert!(fs.open_append(&db.join("f")).is_err());
    assert!(fs.remove_file(&db.join("f")).is_err());
    assert!(fs.create_dir_all(&db.join("x")).is_err());
    assert_eq!(read(&db.join("f")).unwrap(), b"one");
    assert!(!db.join("g").exists() && !db.join("x").exists());
}

#[test]
fn a_change_that_bypasses_the_simulator_is_reported() {
    let (_dir, fs, db) = booted();
    fs.write_file_atomic(&db, "f", b"one").unwrap();
    std::fs::write(db.join("f"), b"changed behind its back").unwrap();
    std::fs::write(db.join("stray"), b"?").unwrap();
    let cut = fs.power_cut(None).unwrap();
    assert_eq!(
        cut.untracked,
        vec![PathBuf::from("db/f"), PathBuf::from("db/stray")]
    );
    assert_eq!(read(&db.join("f")).unwrap(), b"one");
    assert!(!db.join("stray").exists());
}

#[test]
fn torn_writes_keep_a_seeded_prefix_with_zeroed_pages() {
    let unsynced: Vec<u8> = (0..5 * TORN_PAGE_BYTES)
        .map(|i| (i % 251 + 1) as u8)
        .collect();
    let mut images = Vec::new();
    for seed in [7, 7, 8] {
        let (_dir, fs, db) = booted();
        fs.write_file_atomic(&db, "log", b"synced").unwrap();
        let mut file = fs.open_append(&db.join("log")).unwrap();
        file.append(&unsynced).unwrap();
        fs.power_cut(Some(seed)).unwrap();
        let bytes = read(&db.join("log")).unwrap();
        assert!(bytes.starts_with(b"synced"));
        let tail = &bytes[6..];
        assert!(tail.len() <= unsynced.len());
        for (i, byte) in tail.iter().enumerate() {
            assert!(*byte == 0 || *byte == unsynced[i], "byte {i}");
        }
        images.push(bytes);
    }
    assert_eq!(images[0], images[1], "a seed reproduces the image");
}

#[test]
fn a_boot_takes_the_folder_as_durable() {
    let (dir, fs, db) = booted();
    fs.write_file_atomic(&db, "f", b"one").unwrap();
    fs.power_cut(None).unwrap();
    let fs = SimFs::new(dir.path()).unwrap();
    let mut file = fs.open_append(&db.join("f")).unwrap();
    file.append(b"+").unwrap();
    fs.truncate(&db.join("f"), 2).unwrap();
    fs.power_cut(None).unwrap();
    assert_eq!(read(&db.join("f")).unwrap(), b"on");
    assert!(
        fs.write_file_atomic(&db, "g", b"g").is_err(),
        "dead after the cut"
    );
}

#[test]
fn an_io_error_fails_one_call_and_the_machine_goes_on() {
    let (_dir, fs, db) = booted();
    fs.write_file_atomic(&db, "f", b"one").unwrap();
    let mut file = fs.open_append(&db.join("f")).unwrap();
    fs.arm(Fault {
        step: fs.steps() + 2,
        lands: false,
        kind: FaultKind::IoError,
    });
    file.append(b"-two").unwrap();
    assert!(file.sync_data().is_err(), "the armed fsync fails");
    assert_eq!(fs.dead_at(), None);
    file.sync_data().unwrap();
    fs.write_file_atomic(&db, "g", b"g").unwrap();
    fs.power_cut(None).unwrap();
    assert_eq!(read(&db.join("f")).unwrap(), b"one-two");
    assert_eq!(read(&db.join("g")).unwrap(), b"g");
}

#[test]
fn a_crash_keeps_every_completed_change() {
    let (_dir, fs, db) = booted();
    fs.write_file_atomic(&db, "f", b"one").unwrap();
    let mut file = fs.open_append(&db.join("f")).unwrap();
    file.append(b"-unsynced").unwrap();
    fs.remove_file(&db.join("f")).unwrap();
    fs.write_file_atomic(&db, "g", b"g").unwrap();
    let mut other = fs.open_append(&db.join("g")).unwrap();
    other.append(b"+").unwrap();
    let crash = fs.crash().unwrap();
    assert!(crash.untracked.is_empty(), "{:?}", crash.untracked);
    assert_eq!(read(&db.join("f")), None);
    assert_eq!(read(&db.join("g")).unwrap(), b"g+");
    assert!(other.append(b"after").is_err(), "the process is dead");
}

#[test]
fn after_a_crash_the_next_process_sees_unsynced_changes_that_a_power_cut_still_loses() {
    let (_dir, fs, db) = booted();
    fs.write_file_atomic(&db, "log", b"head").unwrap();
    let mut old = fs.open_append(&db.join("log")).unwrap();
    old.append(b"+unsynced").unwrap();
    fs.crash().unwrap();
    let next = fs.restart();
    assert!(
        old.append(b"zombie").is_err(),
        "the dead process's handles fail"
    );
    assert!(fs.sync_dir(&db).is_err(), "so does its file system handle");
    assert_eq!(read(&db.join("log")).unwrap(), b"head+unsynced");
    next.write_file_atomic(&db, "other", b"x").unwrap();
    next.power_cut(None).unwrap();
    assert_eq!(read(&db.join("log")).unwrap(), b"head");
    assert_eq!(read(&db.join("other")).unwrap(), b"x");
}

#[test]
fn create_dir_all_names_a_folder_left_unsynced_by_an_earlier_attempt() {
    let (dir, fs, db) = booted();
    let folder = db.join("made");
    fs.arm(Fault {
        step: fs.steps() + 2, // the fsync of db/ after mkdir db/made
        lands: false,
        kind: FaultKind::IoError,
    });
    assert!(fs.create_dir_all(&folder).is_err());
    assert!(folder.is_dir(), "made, but its name is not durable");
    fs.create_dir_all(&folder).unwrap();
    let steps: Vec<String> = (1..=fs.steps()).filter_map(|n| fs.step_name(n)).collect();
    assert_eq!(
        steps,
        ["mkdir db/made", "fsync folder db", "fsync folder db"],
        "the retry fsyncs the parent of the folder it found"
    );
    fs.power_cut(None).unwrap();
    assert!(dir.path().join("db/made").is_dir());
}
