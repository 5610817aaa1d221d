"""Time delta-rs (the `deltalake` package) appending rows for driftdb-bench.

Reads lineitem from --parquet and the scenarios from --scenarios
([{name, rows_per_commit, commits}]). Each pass writes into a fresh table
directory: commit i appends rows [i*k, (i+1)*k) with write_deltalake. One
warm-up pass, then --runs timed passes; every pass's row count is checked
from the table afterwards. Prints JSON to stdout:
{"version": ..., "scenarios": {name: {"latencies_ms": [...]}}}
"""

import argparse
import json
import os
import sys
import tempfile
import time
import uuid

import deltalake
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake


# With DRIFTDB_BENCH_STORE=s3://bucket/prefix, tables go to that store
# (endpoint and credentials from the AWS_* variables), committed with S3
# conditional PUTs as DriftDB's log is.
STORE = os.environ.get("DRIFTDB_BENCH_STORE", "").rstrip("/")
STORAGE_OPTIONS = {"conditional_put": "etag"} if STORE else None


def one_pass(rows, scenario):
    size, commits = scenario["rows_per_commit"], scenario["commits"]
    with tempfile.TemporaryDirectory() as local:
        directory = f"{STORE}/delta-{uuid.uuid4().hex}" if STORE else local
        latencies = []
        for commit in range(commits):
            part = rows.slice(commit * size, size)
            started = time.perf_counter()
            write_deltalake(directory, part, mode="append", storage_options=STORAGE_OPTIONS)
            latencies.append((time.perf_counter() - started) * 1e3)
        held = DeltaTable(directory, storage_options=STORAGE_OPTIONS).to_pyarrow_table().num_rows
        if held != size * commits:
            sys.exit(f"{scenario['name']}: delta holds {held} rows, expected {size * commits}")
        return latencies


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parquet", required=True)
    parser.add_argument("--scenarios", required=True)
    parser.add_argument("--runs", type=int, required=True)
    args = parser.parse_args()
    rows = pq.read_table(args.parquet)
    with open(args.scenarios) as f:
        scenarios = json.load(f)
    results = {}
    for scenario in scenarios:
        one_pass(rows, scenario)
        latencies = []
        for _ in range(args.runs):
            latencies.extend(one_pass(rows, scenario))
        results[scenario["name"]] = {"latencies_ms": latencies}
    json.dump({"version": deltalake.__version__, "scenarios": results}, sys.stdout)


if __name__ == "__main__":
    main()
