//! Fuzzing the checkpoint reader (`storage::checkpoint::decode_checkpoint`
//! over `storage::envelope`) and opening a database from a damaged
//! checkpoint.
//!
//! Inputs: random bytes (bare, after a valid envelope header, or starting
//! with `{` as a pre-envelope file does); a real checkpoint with bits
//! flipped, bytes overwritten, its length field and version rewritten, cut
//! or extended; and real checkpoints whose JSON was changed and then
//! sealed with a correct checksum (what a writer bug would leave).
//!
//! Every case must: not panic; hold at most [`DECODE_HEAP_BYTES_MAX`] of
//! heap at once while decoding; refuse damaged bytes with XX001 (or an
//! unknown version with 55000), never read them as a different
//! checkpoint; and a database opened over a damaged newest checkpoint
//! either falls back and shows every row or refuses with a SQLSTATE.

use std::path::{Path, PathBuf};

use driftdb_engine::storage::checkpoint::{
    CHECKPOINT_DIR, CHECKPOINT_KIND, decode_checkpoint, encode_checkpoint,
};
use driftdb_engine::storage::envelope::{ENVELOPE_HEADER_BYTES, seal};
use driftdb_engine::{Database, Error, Session};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

use super::{cases, copy_dir, overwrite, passed, runner, timed};

/// Cases of each target in CI (see the module page of `fuzz` for longer runs).
const MUTATED_CASES_CI: u32 = 20_000;
const RANDOM_CASES_CI: u32 = 10_000;
const RESEALED_CASES_CI: u32 = 5_000;
const OPEN_CASES_CI: u32 = 150;

/// The name of the checkpoint in messages.
const FILE: &str = "fuzz.json";
/// The most heap a decode of these (kilobyte-sized) inputs may hold at
/// once: far above what they need, far below the 2^64 a length field can claim.
const DECODE_HEAP_BYTES_MAX: u64 = 16 << 20;
/// Random inputs are at most this long.
const RANDOM_BYTES_MAX: usize = 4096;
/// Statements that give the checkpoint tables with files, retirements,
/// constraints of every kind, a sequence and a view.
const SETUP: &str = "
    CREATE TABLE a (id INT PRIMARY KEY, name TEXT NOT NULL UNIQUE, score DOUBLE CHECK (score >= 0));
    CREATE TABLE b (id INT PRIMARY KEY, a_id INT REFERENCES a (id), note TEXT DEFAULT 'none');
    CREATE SEQUENCE s START 10;
    CREATE VIEW v AS SELECT a.name, b.note FROM a JOIN b ON b.a_id = a.id;
    INSERT INTO a VALUES (1, 'one', 1.5), (2, 'two', 2.5), (3, 'three', 0);
    INSERT INTO b VALUES (10, 1, 'x');
    INSERT INTO b (id, a_id) VALUES (20, 2);
    SELECT nextval('s');
";
/// Statements run between the two persists, so the newest checkpoint retires rows.
const CHANGES: &str = "
    UPDATE a SET score = 9 WHERE id = 1;
    DELETE FROM b WHERE id = 20;
    ALTER TABLE b ADD COLUMN extra BIGINT;
    INSERT INTO b VALUES (30, 3, 'y', 7);
";
/// What `a` and `b` hold at the end, for a database opened by fallback.
const EXPECTED_ROWS: &str = "SELECT (SELECT count(*) FROM a) * 100 + (SELECT count(*) FROM b)";
const EXPECTED_COUNT: i64 = 302;

/// Eight-byte values worth writing over the envelope's length, version or sum.
const WORDS: &[u64] = &[0, 1, 2, u32::MAX as u64, 1 << 40, i64::MAX as u64, u64::MAX];

/// A database with two checkpoints, left open; its folder and the newest checkpoint.
struct Template {
    _dir: tempfile::TempDir,
    root: PathBuf,
    seq: u64,
    bytes: Vec<u8>,
    _db: Database,
}

async fn template() -> Template {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("db");
    let db = Database::open(root.to_str().expect("utf-8"))
        .await
        .expect("open");
    let mut session = Session::new(&db);
    session.execute(SETUP).await.expect("setup");
    db.persist().await.expect("persist");
    session.execute(CHANGES).await.expect("changes");
    let seq = db.persist().await.expect("persist");
    let bytes = std::fs::read(checkpoint_path(&root, seq)).expect("checkpoint");
    Template {
        _dir: dir,
        root,
        seq,
        bytes,
        _db: db,
    }
}

fn checkpoint_path(root: &Path, seq: u64) -> PathBuf {
    root.join(CHECKPOINT_DIR)
        .join(driftdb_engine::storage::checkpoint::checkpoint_name(seq))
}

/// A change to the bytes of a sealed checkpoint.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        at: Index,
        bit: u8,
    },
    Truncate {
        at: Index,
    },
    Extend {
        bytes: Vec<u8>,
    },
    Overwrite {
        at: Index,
        bytes: Vec<u8>,
    },
    /// One of [`WORDS`] over the version (at 8), length (12) or checksum (20).
    HeaderField {
        field: Index,
        value: u64,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        2 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        1 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(|bytes| Mutation::Extend { bytes }),
        2 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Overwrite { at, bytes }),
        2 => (any::<Index>(), proptest::sample::select(WORDS))
            .prop_map(|(field, value)| Mutation::HeaderField { field, value }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match mutation {
        Mutation::FlipBit { at, bit } => bytes[at.index(len)] ^= 1 << bit,
        Mutation::Truncate { at } => bytes.truncate(at.index(len)),
        Mutation::Extend { bytes: more } => bytes.extend_from_slice(more),
        Mutation::Overwrite { at, bytes: new } => overwrite(bytes, at.index(len), new),
        Mutation::HeaderField { field, value } => {
            let (at, width) = [(8, 4), (12, 8), (20, 8)][field.index(3)];
            overwrite(bytes, at, &value.to_le_bytes()[..width]);
        }
    }
}

/// Decode `bytes` as checkpoint `seq`, measuring the heap held at the peak.
fn measured_decode(seq: u64, bytes: &[u8]) -> (driftdb_engine::Result<Vec<u8>>, u64) {
    let mut result = None;
    let info = allocation_counter::measure(|| {
        result = Some(decode_checkpoint(FILE, seq, bytes).and_then(|c| encode_checkpoint(&c)));
    });
    (result.expect("ran"), info.bytes_max)
}

/// An error the reader may give for damage: XX001, or 55000 for a version.
fn check_refusal(err: &Error) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(err, Error::Corrupt { .. } | Error::FormatVersion { .. }),
        "damage refused as {} ({err})",
        err.sqlstate()
    );
    prop_assert!(!err.to_string().is_empty());
    Ok(())
}

#[test]
fn fuzz_checkpoint_mutated() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let template = runtime.block_on(template());
    let strategy = proptest::collection::vec(mutation(), 1..4);
    let target = "checkpoint mutated";
    timed(target, || {
        let result = runner(target, cases(MUTATED_CASES_CI)).run(&strategy, |mutations| {
            let mut bytes = template.bytes.clone();
            for mutation in &mutations {
                apply(&mut bytes, mutation);
            }
            let (result, heap_bytes) = measured_decode(template.seq, &bytes);
            prop_assert!(
                heap_bytes <= DECODE_HEAP_BYTES_MAX,
                "decoding held {heap_bytes} bytes of heap at once"
            );
            match result {
                Ok(reencoded) => {
                    prop_assert!(bytes == template.bytes, "damage read as a checkpoint");
                    prop_assert!(reencoded == template.bytes);
                }
                Err(e) => {
                    prop_assert!(
                        bytes != template.bytes,
                        "the intact checkpoint is refused: {e}"
                    );
                    check_refusal(&e)?;
                }
            }
            Ok(())
        });
        passed(target, result);
    });
}

#[test]
fn fuzz_checkpoint_random_bytes() {
    let random = proptest::collection::vec(any::<u8>(), 0..RANDOM_BYTES_MAX);
    let strategy = (0u8..3, random);
    let target = "checkpoint random bytes";
    timed(target, || {
        let result = runner(target, cases(RANDOM_CASES_CI)).run(&strategy, |(shape, bytes)| {
            let input = match shape {
                0 => bytes,
                1 => [
                    seal(CHECKPOINT_KIND, b"")[..ENVELOPE_HEADER_BYTES].to_vec(),
                    bytes,
                ]
                .concat(),
                _ => [b"{".to_vec(), bytes].concat(),
            };
            let (result, heap_bytes) = measured_decode(1, &input);
            prop_assert!(
                heap_bytes <= DECODE_HEAP_BYTES_MAX,
                "held {heap_bytes} bytes"
            );
            match result {
                Ok(_) => Err(TestCaseError::fail("random bytes read as a checkpoint")),
                Err(e) => check_refusal(&e),
            }
        });
        passed(target, result);
    });
}

/// A change to one node of the checkpoint's JSON.
#[derive(Debug, Clone)]
enum JsonMutation {
    Replace { node: Index, value: JsonValue },
    Remove { node: Index },
}

#[derive(Debug, Clone)]
enum JsonValue {
    Null,
    Number(i128),
    Float(f64),
    Text(String),
    EmptyArray,
    EmptyObject,
}

impl JsonValue {
    fn to_json(&self) -> Value {
        match self {
            JsonValue::Null => Value::Null,
            JsonValue::Number(n) => serde_json::from_str(&n.to_string()).unwrap_or(Value::Null),
            JsonValue::Float(f) => serde_json::json!(f),
            JsonValue::Text(s) => Value::String(s.clone()),
            JsonValue::EmptyArray => Value::Array(Vec::new()),
            JsonValue::EmptyObject => Value::Object(Default::default()),
        }
    }
}

fn json_mutation() -> impl Strategy<Value = JsonMutation> {
    let numbers = prop_oneof![
        proptest::sample::select(
            &[0i128, 1, -1, 2, 1 << 32, i64::MAX as i128, u64::MAX as i128][..]
        ),
        any::<i64>().prop_map(i128::from),
    ];
    let value = prop_oneof![
        Just(JsonValue::Null),
        numbers.prop_map(JsonValue::Number),
        any::<f64>().prop_map(JsonValue::Float),
        "[a-z_ .'/]{0,12}".prop_map(JsonValue::Text),
        Just(JsonValue::EmptyArray),
        Just(JsonValue::EmptyObject),
    ];
    prop_oneof![
        3 => (any::<Index>(), value).prop_map(|(node, value)| JsonMutation::Replace { node, value }),
        1 => any::<Index>().prop_map(|node| JsonMutation::Remove { node }),
    ]
}

/// Every node under `value` (depth first), as JSON pointers.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(item, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
}

fn apply_json(root: &mut Value, mutation: &JsonMutation) {
    let mut all = Vec::new();
    pointers(root, String::new(), &mut all);
    let pick = |node: &Index| all[1 + node.index(all.len() - 1)].clone();
    match mutation {
        JsonMutation::Replace { node, value } => {
            if let Some(slot) = root.pointer_mut(&pick(node)) {
                *slot = value.to_json();
            }
        }
        JsonMutation::Remove { node } => {
            let pointer = pick(node);
            let (parent, key) = pointer.rsplit_once('/').expect("not the root");
            match root.pointer_mut(parent) {
                Some(Value::Array(items)) => {
                    if let Ok(i) = key.parse::<usize>() {
                        items.remove(i);
                    }
                }
                Some(Value::Object(fields)) => {
                    fields.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
                _ => {}
            }
        }
    }
}

/// The template's checkpoint with its JSON changed and sealed again.
fn resealed(template: &Template, mutations: &[JsonMutation]) -> Vec<u8> {
    let body = &template.bytes[ENVELOPE_HEADER_BYTES..];
    let mut json: Value = serde_json::from_slice(body).expect("json");
    for mutation in mutations {
        apply_json(&mut json, mutation);
    }
    seal(
        CHECKPOINT_KIND,
        &serde_json::to_vec(&json).expect("serialise"),
    )
}

/// Checkpoints changed and sealed again decode or are refused with XX001.
#[test]
fn fuzz_checkpoint_resealed() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let template = runtime.block_on(template());
    let strategy = proptest::collection::vec(json_mutation(), 1..4);
    let target = "checkpoint resealed";
    timed(target, || {
        let result = runner(target, cases(RESEALED_CASES_CI)).run(&strategy, |mutations| {
            let bytes = resealed(&template, &mutations);
            let (result, heap_bytes) = measured_decode(template.seq, &bytes);
            prop_assert!(
                heap_bytes <= DECODE_HEAP_BYTES_MAX,
                "held {heap_bytes} bytes"
            );
            if let Err(e) = result {
                check_refusal(&e)?;
            }
            Ok(())
        });
        passed(target, result);
    });
}

/// How the newest checkpoint of an opened copy is damaged.
#[derive(Debug, Clone)]
enum Damage {
    Bytes(Vec<Mutation>),
    Resealed(Vec<JsonMutation>),
}

/// A database over a damaged newest checkpoint opens (falling back to the
/// one before and the log) with every row, or is refused with a SQLSTATE
/// that is not an internal error; it never panics.
#[test]
fn fuzz_checkpoint_open() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let template = runtime.block_on(template());
    let strategy = prop_oneof![
        proptest::collection::vec(mutation(), 1..4).prop_map(Damage::Bytes),
        proptest::collection::vec(json_mutation(), 1..4).prop_map(Damage::Resealed),
    ];
    let target = "checkpoint open";
    timed(target, || {
        let result = runner(target, cases(OPEN_CASES_CI)).run(&strategy, |damage| {
            let dir = tempfile::tempdir().expect("temp dir");
            let root = dir.path().join("db");
            copy_dir(&template.root, &root);
            let bytes = match &damage {
                Damage::Bytes(mutations) => {
                    let mut bytes = template.bytes.clone();
                    mutations.iter().for_each(|m| apply(&mut bytes, m));
                    bytes
                }
                Damage::Resealed(mutations) => resealed(&template, mutations),
            };
            std::fs::write(checkpoint_path(&root, template.seq), &bytes).expect("write");
            let checked = matches!(damage, Damage::Bytes(_));
            runtime.block_on(check_open(&root, checked))
        });
        passed(target, result);
    });
}

/// Open `root`; with `checked` damage (caught by the checksum) an open
/// database must hold every row.
async fn check_open(root: &Path, checked: bool) -> Result<(), TestCaseError> {
    let db = match Database::open(root.to_str().expect("utf-8")).await {
        Ok(db) => db,
        Err(e) => {
            prop_assert!(e.sqlstate() != "XX000", "open failed as XX000: {e}");
            return Ok(());
        }
    };
    let mut session = Session::new(&db);
    match session.execute_one(EXPECTED_ROWS).await {
        Ok(result) => {
            let rows = result.batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .map(|a| a.value(0));
            if checked {
                prop_assert_eq!(rows, Some(EXPECTED_COUNT), "rows after a fallback");
            }
        }
        Err(e) => {
            prop_assert!(!checked, "query after a fallback failed: {e}");
            prop_assert!(e.sqlstate() != "XX000", "query failed as XX000: {e}");
        }
    }
    drop(session);
    let _ = db.close().await;
    Ok(())
}

/// Values written over each field in turn by
/// [`fuzz_checkpoint_every_field_damaged_in_turn`].
fn sweep_values() -> [Value; 4] {
    [
        serde_json::json!([]),
        serde_json::json!(0),
        serde_json::json!(u64::MAX),
        serde_json::json!("x"),
    ]
}

/// Every field of a real checkpoint, in turn, replaced by each of
/// [`sweep_values`] and sealed again: opening the database never panics
/// (found this way: empty schema versions or key columns, duplicate column
/// ids, ids of u64::MAX, row counts that overflow, files out of order).
#[test]
fn fuzz_checkpoint_every_field_damaged_in_turn() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let template = runtime.block_on(template());
    let body = &template.bytes[ENVELOPE_HEADER_BYTES..];
    let json: Value = serde_json::from_slice(body).expect("json");
    let mut all = Vec::new();
    pointers(&json, String::new(), &mut all);
    timed("checkpoint every field", || {
        for pointer in &all[1..] {
            for value in sweep_values() {
                let mut changed = json.clone();
                *changed.pointer_mut(pointer).expect("a node") = value.clone();
                let bytes = seal(
                    CHECKPOINT_KIND,
                    &serde_json::to_vec(&changed).expect("json"),
                );
                let dir = tempfile::tempdir().expect("temp dir");
                let root = dir.path().join("db");
                copy_dir(&template.root, &root);
                std::fs::write(checkpoint_path(&root, template.seq), &bytes).expect("write");
                let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    runtime.block_on(check_open(&root, false))
                }));
                match opened {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => panic!("{pointer} = {value}: {e}"),
                    Err(_) => panic!("{pointer} = {value}: opening the database panicked"),
                }
            }
        }
    });
}
