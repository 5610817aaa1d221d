"""Time delta-rs (the `deltalake` package) reading the past for driftdb-bench.

Reads lineitem from --parquet and the histories from --histories
([{commits, rows_per_commit}]). For each history, appends the rows as that
many commits (commit i writes rows [i*k, (i+1)*k)) into a fresh table, then
times three reads, each opening the table and running the aggregate below
with delta-rs's own DataFusion (QueryBuilder): the current state (no
version), the latest version, and the version after commit commits/2
(delta versions count from 0: commit c is version c-1). One warm-up per
read, then --runs timed runs. Prints JSON to stdout:
{"version": ..., "histories": {commits: {read: {"times_ms": [...], "rows": [[...]]}}}}
"""

import argparse
import json
import sys
import tempfile
import time

import deltalake
import pyarrow.parquet as pq
from deltalake import DeltaTable, QueryBuilder, write_deltalake

AGGREGATE = "SELECT count(*), sum(l_quantity), sum(l_extendedprice) FROM lineitem"


def render(value):
    return "NULL" if value is None else str(value)


def read_once(directory, version):
    """Open the table (at `version`, or its current state) and run the aggregate."""
    table = DeltaTable(directory) if version is None else DeltaTable(directory, version=version)
    result = QueryBuilder().register("lineitem", table).execute(AGGREGATE).read_all()
    columns = [result.column(i).to_pylist() for i in range(result.num_columns)]
    return [[render(v) for v in row] for row in zip(*columns)]


def timed_reads(directory, version, runs):
    rows = read_once(directory, version)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        rows = read_once(directory, version)
        times.append((time.perf_counter() - started) * 1e3)
    return {"times_ms": times, "rows": rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parquet", required=True)
    parser.add_argument("--histories", required=True)
    parser.add_argument("--runs", type=int, required=True)
    args = parser.parse_args()
    rows = pq.read_table(args.parquet)
    with open(args.histories) as f:
        histories = json.load(f)
    results = {}
    for history in histories:
        commits, size = history["commits"], history["rows_per_commit"]
        with tempfile.TemporaryDirectory() as directory:
            write_deltalake(directory, rows.slice(0, size), mode="append")
            # Appending through one DeltaTable keeps its log state in memory
            # (a path would re-read the log on every commit).
            table = DeltaTable(directory)
            for commit in range(1, commits):
                write_deltalake(table, rows.slice(commit * size, size), mode="append")
            held = DeltaTable(directory).version()
            if held != commits - 1:
                sys.exit(f"{commits} commits left the delta table at version {held}")
            halfway = max(commits // 2, 1)
            results[str(commits)] = {
                "current": timed_reads(directory, None, args.runs),
                "latest": timed_reads(directory, commits - 1, args.runs),
                "halfway": timed_reads(directory, halfway - 1, args.runs),
            }
    json.dump({"version": deltalake.__version__, "histories": results}, sys.stdout)


if __name__ == "__main__":
    main()
