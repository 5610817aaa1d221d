"""Time queries on DuckDB over Parquet files for driftdb-bench.

Reads {name: sql} from --queries, runs each once to warm up and then --runs
times (execute + fetch as Arrow), and prints JSON to stdout:
{"version": ..., "queries": {name: {"times_ms": [...], "rows": [[cell, ...], ...]}}}
Cells are rendered as text the way the harness renders Arrow values
(NULL for a null, ISO dates, decimals as written).
"""

import argparse
import json
import sys
import time

import duckdb


def render(value):
    if value is None:
        return "NULL"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def fetch_arrow(result):
    """The whole result as an Arrow table (the method's name changed in DuckDB 2)."""
    if hasattr(result, "to_arrow_table"):
        return result.to_arrow_table()
    return result.fetch_arrow_table()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parquet", required=True)
    parser.add_argument("--tables", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--runs", type=int, required=True)
    args = parser.parse_args()
    with open(args.queries) as f:
        queries = json.load(f)
    con = duckdb.connect()
    for table in args.tables.split(","):
        path = f"{args.parquet}/{table}.parquet".replace("'", "''")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    results = {}
    for name, sql in queries.items():
        table = fetch_arrow(con.execute(sql))
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            table = fetch_arrow(con.execute(sql))
            times.append((time.perf_counter() - started) * 1e3)
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        rows = [[render(v) for v in row] for row in zip(*columns)]
        results[name] = {"times_ms": times, "rows": rows}
    json.dump({"version": duckdb.__version__, "queries": results}, sys.stdout)


if __name__ == "__main__":
    main()
