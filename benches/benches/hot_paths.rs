//! Criterion micro-benchmarks of DriftDB's hot paths:
//!
//! - `commit`: one durable commit (log frame, fsync, apply) of 1 and 1,000 rows;
//! - `memtable_append`: merging a commit's batch into the memtable's last chunk;
//! - `visibility`: a scan's visibility filter over 1M row versions, half of
//!   them retired, at the current state and `AS OF` half-way through; and
//!   over 1M rows in ten Parquet files with 100,000 rows updated, either the
//!   newest (nine files untouched skip the retirement map) or spread over
//!   every file (each pays a lookup per row);
//! - `persist`: writing 100,000 memtable rows to Parquet.
//!
//! `cargo bench -p driftdb-benches --bench hot_paths` measures;
//! `cargo test -p driftdb-benches --benches` runs each once as a check.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use driftdb_engine::sql::IngestMode;
use driftdb_engine::storage::memtable::{MemBatch, append_chunk};
use driftdb_engine::{Database, Limits, Session};
use tokio::runtime::Runtime;

/// Rows in the visibility benchmark's table (each updated once: 2× versions).
const VISIBILITY_ROWS: i64 = 500_000;
/// Rows in the persisted visibility benchmark, and per data file.
const PERSISTED_ROWS: i64 = 1_000_000;
const PERSISTED_FILE_ROWS: i64 = 100_000;
/// Rows the persisted visibility benchmark updates.
const PERSISTED_UPDATES: i64 = 100_000;
/// Rows the persist benchmark writes to Parquet.
const PERSIST_ROWS: i64 = 100_000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
    ]))
}

/// `rows` rows starting at id `first`.
fn rows(first: i64, rows: i64) -> RecordBatch {
    let ids = Int64Array::from_iter_values(first..first + rows);
    let names = StringArray::from_iter_values((first..first + rows).map(|i| format!("name {i}")));
    RecordBatch::try_new(schema(), vec![Arc::new(ids), Arc::new(names)]).expect("valid batch")
}

fn runtime() -> Runtime {
    Runtime::new().expect("tokio runtime")
}

/// Limits that never persist on their own (the benchmark decides when).
fn memtable_only() -> Limits {
    Limits {
        memtable_bytes_max: usize::MAX,
        memtable_age_max: std::time::Duration::from_secs(24 * 3600),
        ..Limits::default()
    }
}

async fn open(dir: &std::path::Path) -> (Database, Session) {
    let db = Database::open_with(&dir.to_string_lossy(), memtable_only())
        .await
        .expect("open database");
    let mut session = Session::new(&db);
    let empty = rows(0, 0);
    session
        .ingest("t", IngestMode::Create, &schema(), &[empty])
        .await
        .expect("create table");
    (db, session)
}

fn commit(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let (_db, mut session) = rt.block_on(open(dir.path()));
    let mut group = c.benchmark_group("commit");
    for size in [1_i64, 1_000] {
        let batch = rows(0, size);
        group.bench_function(format!("{size} rows, durable"), |b| {
            b.iter(|| {
                rt.block_on(session.ingest(
                    "t",
                    IngestMode::Append,
                    &schema(),
                    std::slice::from_ref(&batch),
                ))
                .expect("commit")
            })
        });
    }
    group.finish();
}

fn memtable_append(c: &mut Criterion) {
    let limits = Limits::default();
    let chunk = rows(0, 100);
    c.bench_function(
        "memtable_append/100-row commits into 8192-row chunks",
        |b| {
            b.iter_batched(
                Vec::<MemBatch>::new,
                |mut memtable| {
                    for seq in 1..=(limits.memtable_chunk_rows_max as u64 / 100) {
                        append_chunk(
                            &mut memtable,
                            chunk.clone(),
                            seq,
                            0,
                            limits.memtable_chunk_rows_max,
                        )
                        .expect("append");
                    }
                    memtable
                },
                BatchSize::SmallInput,
            )
        },
    );
}

fn visibility(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, mut session) = rt.block_on(open(dir.path()));
    let halfway = rt.block_on(async {
        session
            .ingest(
                "t",
                IngestMode::Append,
                &schema(),
                &[rows(0, VISIBILITY_ROWS)],
            )
            .await
            .expect("load");
        let loaded = db.visible_seq();
        session
            .execute("UPDATE t SET name = 'renamed'")
            .await
            .expect("update every row");
        loaded
    });
    let mut group = c.benchmark_group("visibility");
    for (name, sql) in [
        ("current state", "SELECT sum(id) FROM t".to_string()),
        (
            "AS OF before the update",
            format!("SELECT sum(id) FROM t VERSION AS OF {halfway}"),
        ),
    ] {
        // Both states hold every id once: the filter must keep exactly one version of each.
        let answer = rt.block_on(session.execute_one(&sql)).expect("sum");
        let text = driftdb_engine::sql::rows_as_text(&answer.batches).expect("render");
        let expected = (VISIBILITY_ROWS * (VISIBILITY_ROWS - 1) / 2).to_string();
        assert_eq!(text, [[expected]], "{sql}");
        group.bench_function(format!("{name}, 1M versions"), |b| {
            b.iter(|| black_box(rt.block_on(session.execute_one(&sql)).expect("sum")))
        });
    }
    group.finish();
}

fn visibility_persisted(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("visibility");
    let stride = PERSISTED_ROWS / PERSISTED_UPDATES;
    for (name, updated) in [
        (
            "1M persisted rows, newest 100k updated",
            format!("id >= {}", PERSISTED_ROWS - PERSISTED_UPDATES),
        ),
        (
            "1M persisted rows, 100k updated across all files",
            format!("id % {stride} = 0"),
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, mut session) = rt.block_on(open(dir.path()));
        rt.block_on(async {
            for first in (0..PERSISTED_ROWS).step_by(PERSISTED_FILE_ROWS as usize) {
                let batch = rows(first, PERSISTED_FILE_ROWS);
                session
                    .ingest("t", IngestMode::Append, &schema(), &[batch])
                    .await
                    .expect("load");
                db.persist().await.expect("persist");
            }
            let sql = format!("UPDATE t SET name = 'renamed' WHERE {updated}");
            let result = session.execute_one(&sql).await.expect("update");
            assert_eq!(
                result.rows_affected,
                Some(PERSISTED_UPDATES as u64),
                "{sql}"
            );
        });
        let sql = "SELECT sum(id) FROM t";
        let answer = rt.block_on(session.execute_one(sql)).expect("sum");
        let text = driftdb_engine::sql::rows_as_text(&answer.batches).expect("render");
        let expected = (PERSISTED_ROWS * (PERSISTED_ROWS - 1) / 2).to_string();
        assert_eq!(text, [[expected]], "{name}");
        group.bench_function(name, |b| {
            b.iter(|| black_box(rt.block_on(session.execute_one(sql)).expect("sum")))
        });
        rt.block_on(db.close()).expect("close");
    }
    group.finish();
}

fn persist(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let (db, mut session) = rt.block_on(open(dir.path()));
    let batch = rows(0, PERSIST_ROWS);
    c.bench_function("persist/100k rows to Parquet", |b| {
        b.iter_batched(
            || {
                rt.block_on(session.ingest(
                    "t",
                    IngestMode::Append,
                    &schema(),
                    std::slice::from_ref(&batch),
                ))
                .expect("fill the memtable")
            },
            |_| rt.block_on(db.persist()).expect("persist"),
            BatchSize::PerIteration,
        )
    });
}

criterion_group! {
    name = hot_paths;
    config = Criterion::default().sample_size(20);
    targets = commit, memtable_append, visibility, visibility_persisted, persist
}
criterion_main!(hot_paths);
