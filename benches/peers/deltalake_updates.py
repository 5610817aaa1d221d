"""Time delta-rs (the `deltalake` package) over a history of updates, for
the `history` benchmark.

Writes --rows rows (id, v = id * 0.5, note = 'row ' || id) in one commit,
then --commits update commits, commit c setting v = v + 1 for the ids in
[c * 7919 % rows, + --rows-per-update). Times (one warm-up, median of
--runs) `SELECT count(*), sum(v) FROM t` over the current state and the
version after update commits/2, before and after `optimize.compact()`, and
over the same current rows written fresh in one commit, and the change
data feed of every update commit read whole (`load_cdf`; the table is
written with `delta.enableChangeDataFeed`). Prints JSON:
{"fresh": ms, "current_before": ms, ..., "feed": ms, "feed_rows": n,
 "answers": ["count,sum", ...]}
"""

import argparse
import json
import statistics
import tempfile
import time

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder, write_deltalake

AGGREGATE = "SELECT count(*), sum(v) FROM t"


def query(directory, version=None):
    table = DeltaTable(directory) if version is None else DeltaTable(directory, version=version)
    result = QueryBuilder().register("t", table).execute(AGGREGATE).read_all()
    return ",".join(str(result.column(i)[0].as_py()) for i in range(result.num_columns))


def timed(directory, runs, version=None):
    return timed_call(lambda: query(directory, version), runs)


def feed(directory, commits):
    """Read the change data feed of update commits 1..=commits whole; its row count."""
    cdf = DeltaTable(directory).load_cdf(starting_version=1, ending_version=commits)
    return pa.table(cdf.read_all()).num_rows


def timed_call(call, runs):
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--rows-per-update", type=int, required=True)
    parser.add_argument("--commits", type=int, required=True)
    parser.add_argument("--runs", type=int, required=True)
    args = parser.parse_args()
    ids = list(range(args.rows))
    rows = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "v": pa.array([i * 0.5 for i in ids], pa.float64()),
            "note": pa.array([f"row {i}" for i in ids], pa.string()),
        }
    )
    with tempfile.TemporaryDirectory() as root:
        table_dir = f"{root}/t"
        write_deltalake(table_dir, rows, configuration={"delta.enableChangeDataFeed": "true"})
        table = DeltaTable(table_dir)
        for c in range(args.commits):
            start = c * 7919 % args.rows
            table.update(
                predicate=f"id >= {start} AND id < {start + args.rows_per_update}",
                updates={"v": "v + 1"},
            )
        # Version 0 is the load; update c (0-based) is version c + 1.
        halfway = args.commits // 2
        out = {
            "current_before": timed(table_dir, args.runs),
            "halfway_before": timed(table_dir, args.runs, halfway),
            "answers": [query(table_dir), query(table_dir, halfway)],
        }
        DeltaTable(table_dir).optimize.compact()
        out["current_after"] = timed(table_dir, args.runs)
        out["halfway_after"] = timed(table_dir, args.runs, halfway)
        out["feed_rows"] = feed(table_dir, args.commits)
        out["feed"] = timed_call(lambda: feed(table_dir, args.commits), args.runs)
        fresh_dir = f"{root}/fresh"
        write_deltalake(fresh_dir, DeltaTable(table_dir).to_pyarrow_table())
        out["fresh"] = timed(fresh_dir, args.runs)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
