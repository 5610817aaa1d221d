#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests, the Flight
# SQL suite with real Python clients, and a smoke run of the benchmark
# programs so they cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/driftdb-target}"
VENV="${DRIFTDB_VENV:-$HOME/driftdb-venv}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# Build everything once with the features the tests use (a `-p` or plain
# `cargo build` would resolve features differently and rebuild DataFusion).
echo "== cargo build"
cargo build --workspace --all-targets

echo "== cargo test"
cargo test --workspace

echo "== Flight SQL suite (ADBC, pandas, polars against driftdb serve)"
bash scripts/python-env.sh "$VENV"
DRIFTDB_BIN="$CARGO_TARGET_DIR/debug/driftdb" \
    "$VENV/bin/python" -m pytest -q flight-server/tests/python

echo "== the sqllogictest and Flight SQL suites again, with the database on S3 (moto on loopback)"
"$VENV/bin/python" flight-server/tests/python/s3server.py -- \
    cargo test -q --workspace --test it sqllogictest_files
DRIFTDB_TEST_STORAGE=s3 DRIFTDB_BIN="$CARGO_TARGET_DIR/debug/driftdb" \
    "$VENV/bin/python" -m pytest -q \
    flight-server/tests/python/test_flight_sql.py flight-server/tests/python/test_statements.py \
    flight-server/tests/python/test_transactions.py flight-server/tests/python/test_constraints.py

echo "== benchmark smoke runs"
"$CARGO_TARGET_DIR/debug/foundation" --quick
"$CARGO_TARGET_DIR/debug/constraints" --quick
"$CARGO_TARGET_DIR/debug/transactions" --quick
DRIFTDB_BENCH_PYTHON="$VENV/bin/python" "$CARGO_TARGET_DIR/debug/history" --quick > /dev/null
"$VENV/bin/python" benches/flight/flight_sql_bench.py --quick --driftdb "$CARGO_TARGET_DIR/debug/driftdb"
smoke="$(mktemp -d)"
"$CARGO_TARGET_DIR/debug/driftdb-datasets" tpch --scale 0.01 --parquet "$smoke/parquet"
"$CARGO_TARGET_DIR/debug/driftdb-datasets" tpch --scale 0.01 --db "$smoke/db" --tables region,nation,orders
"$CARGO_TARGET_DIR/debug/driftdb-datasets" shop --db "$smoke/shop" --customers 100 --steps 20 --orders-per-step 10
# The harness: all 22 TPC-H queries on DriftDB, DataFusion and DuckDB, answers checked equal.
"$CARGO_TARGET_DIR/debug/driftdb-bench" run tpch --scale 0.01 --smoke --runs 1 --quiet \
    --dir "$smoke/bench-data" --python "$VENV/bin/python" > /dev/null
"$CARGO_TARGET_DIR/debug/driftdb-bench" run ingest --scale 0.01 --smoke --runs 1 --quiet \
    --dir "$smoke/bench-data" --python "$VENV/bin/python" > /dev/null
"$CARGO_TARGET_DIR/debug/driftdb-bench" run timetravel --scale 0.01 --depths 10,100 --smoke --runs 1 \
    --quiet --dir "$smoke/bench-data" --python "$VENV/bin/python" > /dev/null
"$CARGO_TARGET_DIR/debug/driftdb-bench" run flight --scale 0.01 --smoke --runs 1 --quiet \
    --dir "$smoke/bench-data" --python "$VENV/bin/python" > /dev/null
# The criterion micro-benchmarks, each run once.
cargo test --workspace --bench hot_paths
rm -rf "$smoke"
