//! Datasets end to end. TPC-H at SF 0.01 into a DriftDB database and into
//! Parquet files: every table has the cardinality TPC-H specifies, and a
//! TPC-H query gives the same answer over both. The shop and sensor
//! histories: their commits, AS OF answers, and the same history exported to
//! Parquet rebuilding each commit's state outside DriftDB.

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

/// The one value of a one-row, one-column query.
async fn scalar(session: &mut Session, sql: &str) -> String {
    let result = session.execute_one(sql).await.unwrap();
    arrow::util::display::array_value_to_string(result.batches[0].column(0), 0).unwrap()
}

#[tokio::test]
async fn shop_history_has_one_commit_per_step_and_only_valid_transitions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().to_str().unwrap()).await.unwrap();
    let config = driftdb_datasets::shop::ShopConfig {
        customers: 50,
        steps: 30,
        orders_per_step: 20,
        seed: 7,
    };
    let mut progress = Progress::start("orders", true);
    driftdb_datasets::shop::generate(&db, &config, &mut progress)
        .await
        .unwrap();
    let mut s = Session::new(&db);
    // Two CREATE TABLEs, the customers, then one commit per step.
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM commits()").await, "33");
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM orders").await, "600");
    // After step k the shop had 20 k orders.
    assert_eq!(
        scalar(&mut s, "SELECT count(*) FROM orders VERSION AS OF 13").await,
        "200"
    );
    // Every status change follows the lifecycle.
    let bad = "SELECT count(*) FROM (SELECT status, lag(status) OVER (PARTITION BY id ORDER BY _seq) AS before \
        FROM history('orders')) WHERE NOT (before IS NULL AND status = 'new' \
        OR before = 'new' AND status IN ('paid', 'cancelled') \
        OR before = 'paid' AND status = 'shipped' OR before = 'shipped' AND status = 'delivered')";
    assert_eq!(scalar(&mut s, bad).await, "0");
    for status in ["paid", "delivered", "cancelled"] {
        let sql = format!("SELECT count(*) > 0 FROM history('orders') WHERE status = '{status}'");
        assert_eq!(scalar(&mut s, &sql).await, "true", "{status}");
    }
    // Customers moved, and every order references a customer.
    let versions = scalar(&mut s, "SELECT count(*) FROM history('customers')").await;
    assert!(versions.parse::<u64>().unwrap() > 50, "{versions}");
    let orphans = "SELECT count(*) FROM orders o LEFT JOIN customers c ON o.customer_id = c.id WHERE c.id IS NULL";
    assert_eq!(scalar(&mut s, orphans).await, "0");
    db.close().await.unwrap();
    // Deterministic: the same seed gives the same shop.
    let again = tempfile::tempdir().unwrap();
    let db2 = Database::open(again.path().to_str().unwrap())
        .await
        .unwrap();
    let mut progress = Progress::start("orders", true);
    driftdb_datasets::shop::generate(&db2, &config, &mut progress)
        .await
        .unwrap();
    let mut s2 = Session::new(&db2);
    let digest = "SELECT sum(id * length(status)) + sum(amount) FROM orders";
    let db = Database::open(dir.path().to_str().unwrap()).await.unwrap();
    let mut s = Session::new(&db);
    assert_eq!(scalar(&mut s, digest).await, scalar(&mut s2, digest).await);
    db.close().await.unwrap();
    db2.close().await.unwrap();
}

#[tokio::test]
async fn sensor_readings_arrive_late_and_are_corrected() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().to_str().unwrap()).await.unwrap();
    let config = driftdb_datasets::sensors::SensorsConfig {
        sensors: 20,
        steps: 30,
        late_fraction: 0.2,
        max_delay: 3,
        correction_fraction: 0.1,
        seed: 3,
    };
    let mut progress = Progress::start("readings", true);
    driftdb_datasets::sensors::generate(&db, &config, &mut progress)
        .await
        .unwrap();
    let mut s = Session::new(&db);
    // Every reading arrived in the end, once.
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM readings").await, "600");
    // Two CREATE TABLEs, the sensors, one commit per minute, then the stragglers.
    assert_eq!(scalar(&mut s, "SELECT count(*) FROM commits()").await, "34");
    let timestamp = driftdb_datasets::sensors::timestamp;
    let mut late_somewhere = false;
    for step in 0..30u64 {
        let commit = scalar(
            &mut s,
            &format!(
                "SELECT seq FROM commits() ORDER BY seq LIMIT 1 OFFSET {}",
                3 + step
            ),
        )
        .await;
        let known = |upto: u64| {
            format!(
                "SELECT count(*) FROM readings VERSION AS OF {commit} \
                 WHERE measured_at <= TIMESTAMP '{}'",
                timestamp(upto)
            )
        };
        // At minute k the readings up to k were not all in yet ...
        let so_far: u64 = scalar(&mut s, &known(step)).await.parse().unwrap();
        assert!(so_far <= 20 * (step + 1), "step {step}: {so_far}");
        late_somewhere |= so_far < 20 * (step + 1);
        // ... but everything older than the longest delay was.
        if step >= 3 {
            let settled: u64 = scalar(&mut s, &known(step - 3)).await.parse().unwrap();
            assert_eq!(settled, 20 * (step - 2), "step {step}");
        }
    }
    assert!(late_somewhere, "no reading arrived late");
    // Corrections left more than one version of some readings.
    let versions: u64 = scalar(&mut s, "SELECT count(*) FROM history('readings')")
        .await
        .parse()
        .unwrap();
    assert!(versions > 600, "{versions}");
    db.close().await.unwrap();
}

/// The first row of a query over files, through DataFusion directly, as text.
async fn row_from_files(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Vec<String> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    (0..batches[0].num_columns())
        .map(|c| arrow::util::display::array_value_to_string(batches[0].column(c), 0).unwrap())
        .collect()
}

/// Register `<dir>/<table>.parquet` for each table under its own name.
async fn register_files(
    dir: &std::path::Path,
    tables: &[&str],
) -> datafusion::prelude::SessionContext {
    let ctx = datafusion::prelude::SessionContext::new();
    for table in tables {
        let path = dir.join(format!("{table}.parquet"));
        ctx.register_parquet(*table, path.to_str().unwrap(), Default::default())
            .await
            .unwrap();
    }
    ctx
}

#[tokio::test]
async fn shop_history_in_parquet_answers_as_of_like_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("db").to_str().unwrap())
        .await
        .unwrap();
    let config = driftdb_datasets::shop::ShopConfig {
        customers: 40,
        steps: 25,
        orders_per_step: 15,
        seed: 11,
    };
    let mut progress = Progress::start("orders", true);
    driftdb_datasets::shop::generate(&db, &config, &mut progress)
        .await
        .unwrap();
    let files = dir.path().join("parquet");
    let versions = sink::history_to_parquet(&db, &files, &driftdb_datasets::shop::TABLES, true)
        .await
        .unwrap();
    let mut s = Session::new(&db);
    let in_db: u64 = scalar(&mut s, "SELECT count(*) FROM history('customers')")
        .await
        .parse::<u64>()
        .unwrap()
        + scalar(&mut s, "SELECT count(*) FROM history('orders')")
            .await
            .parse::<u64>()
            .unwrap();
    assert_eq!(versions, in_db);
    let ctx = register_files(&files, &["customers", "orders", "commits"]).await;
    assert_eq!(
        row_from_files(&ctx, "SELECT count(*) FROM commits").await,
        [scalar(&mut s, "SELECT count(*) FROM commits()").await]
    );
    // Every commit's state, rebuilt from the files, is the database's AS OF it.
    let digest = "count(*), sum(o.id * length(o.status)) + sum(o.amount), count(DISTINCT c.city)";
    for version in [4, 5, 10, 17, 28] {
        let as_of = |table: &str| {
            format!(
                "(SELECT * FROM {table} WHERE _seq <= {version} AND (_system_to IS NULL OR \
                 _system_to > (SELECT commit_time FROM commits WHERE seq = {version})))"
            )
        };
        let from_files = row_from_files(
            &ctx,
            &format!(
                "SELECT {digest} FROM {} o JOIN {} c ON o.customer_id = c.id",
                as_of("orders"),
                as_of("customers")
            ),
        )
        .await;
        let result = s
            .execute_one(&format!(
                "SELECT {digest} FROM orders VERSION AS OF {version} o \
                 JOIN customers VERSION AS OF {version} c ON o.customer_id = c.id"
            ))
            .await
            .unwrap();
        let from_db: Vec<String> = (0..3)
            .map(|c| {
                arrow::util::display::array_value_to_string(result.batches[0].column(c), 0).unwrap()
            })
            .collect();
        assert_eq!(from_files, from_db, "AS OF {version}");
        assert_ne!(from_db[0], "0", "AS OF {version}");
    }
    db.close().await.unwrap();
}

#[tokio::test]
async fn sensors_cli_writes_parquet_history_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_driftdb-datasets"))
        .args(["sensors", "--sensors", "5", "--steps", "20", "--quiet"])
        .args(["--correction-fraction", "0.2", "--parquet"])
        .arg(dir.path())
        .spawn()
        .unwrap();
    let scratch = std::env::temp_dir().join(format!("driftdb-datasets-{}", child.id()));
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(!scratch.exists(), "the scratch database is left behind");
    let ctx = register_files(dir.path(), &["sensors", "readings", "commits"]).await;
    // Every reading arrived once and is current; corrections retired others.
    let current = "SELECT count(*) FROM readings WHERE _system_to IS NULL";
    assert_eq!(row_from_files(&ctx, current).await, ["100"]);
    let distinct = "SELECT count(*) FROM (SELECT DISTINCT sensor_id, measured_at FROM readings)";
    assert_eq!(row_from_files(&ctx, distinct).await, ["100"]);
    let retired = "SELECT count(*) > 0 FROM readings WHERE _system_to IS NOT NULL";
    assert_eq!(row_from_files(&ctx, retired).await, ["true"]);
    assert_eq!(
        row_from_files(&ctx, "SELECT count(*) FROM sensors").await,
        ["5"]
    );
}
