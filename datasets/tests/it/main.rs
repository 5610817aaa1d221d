//! TPC-H generation end to end: SF 0.01 into a DriftDB database and into
//! Parquet files; every table has the cardinality TPC-H specifies, and a
//! TPC-H query gives the same answer over both.

use driftdb_datasets::progress::Progress;
use driftdb_datasets::{sink, tpch};
use driftdb_engine::{Database, Session};

const SCALE: f64 = 0.01;

/// Rows per table at SF 0.01 (TPC-H specification; lineitem as dbgen makes it).
const ROWS: [(&str, u64); 8] = [
    ("region", 5),
    ("nation", 25),
    ("supplier", 100),
    ("customer", 1_500),
    ("part", 2_000),
    ("partsupp", 8_000),
    ("orders", 15_000),
    ("lineitem", 60_175),
];

/// TPC-H Q6 (forecasting revenue change).
const Q6: &str = "SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem \
    WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' \
    AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24";

#[tokio::test]
async fn tpch_into_a_database_and_parquet_agree() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("db");
    let parquet = dir.path().join("parquet");
    let db = Database::open(db_path.to_str().unwrap()).await.unwrap();
    for (table, rows) in ROWS {
        let mut progress = Progress::start(table, true);
        let written = sink::into_database(
            &db,
            table,
            tpch::batches(table, SCALE).unwrap(),
            &mut progress,
        )
        .await
        .unwrap();
        assert_eq!(written, rows, "{table} into the database");
        let mut progress = Progress::start(table, true);
        let written = sink::to_parquet(
            &parquet,
            table,
            tpch::batches(table, SCALE).unwrap(),
            &mut progress,
        )
        .unwrap();
        assert_eq!(written, rows, "{table} into Parquet");
    }
    let mut session = Session::new(&db);
    for (table, rows) in ROWS {
        let result = session
            .execute_one(&format!("SELECT count(*) FROM {table}"))
            .await
            .unwrap();
        let count =
            arrow::util::display::array_value_to_string(result.batches[0].column(0), 0).unwrap();
        assert_eq!(count, rows.to_string(), "{table}");
    }
    let in_db = session.execute_one(Q6).await.unwrap();
    let in_db = arrow::util::display::array_value_to_string(in_db.batches[0].column(0), 0).unwrap();
    // The same query over the Parquet files, through DataFusion directly.
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_parquet(
        "lineitem",
        parquet.join("lineitem.parquet").to_str().unwrap(),
        Default::default(),
    )
    .await
    .unwrap();
    let from_files = ctx.sql(Q6).await.unwrap().collect().await.unwrap();
    let from_files =
        arrow::util::display::array_value_to_string(from_files[0].column(0), 0).unwrap();
    assert_eq!(in_db, from_files);
    assert!(!in_db.is_empty() && in_db != "0", "{in_db}");
    // One commit per table at this size; the data survives a restart.
    db.close().await.unwrap();
    let db = Database::open(db_path.to_str().unwrap()).await.unwrap();
    let mut session = Session::new(&db);
    let commits = session
        .execute_one("SELECT count(*) FROM commits()")
        .await
        .unwrap();
    let commits =
        arrow::util::display::array_value_to_string(commits.batches[0].column(0), 0).unwrap();
    assert_eq!(commits, "8");
    db.close().await.unwrap();
}
