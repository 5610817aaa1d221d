"""`driftdb load` and `driftdb export` of TPC-H lineitem beside DuckDB and PostgreSQL.

Prints a Markdown table (and writes it to benches/results/load-export-sf<SF>.md):
rows/s of
- `driftdb load` from the Parquet file and from the same rows as CSV,
  beside DuckDB's `COPY lineitem FROM` each into a DuckDB database file
  and PostgreSQL's `COPY lineitem FROM` the CSV (server-side, fsync on);
- `driftdb export` of the table to Parquet beside DuckDB's `COPY lineitem
  TO` Parquet (both zstd).
Every figure is the median of --runs runs, each into a fresh database;
DriftDB is timed end to end as a user runs it (process start, open, every
durable commit, close); DuckDB and PostgreSQL are timed around the
statement (their connection is already open). After every load the row
count is checked; a run that loaded the wrong number of rows stops the
benchmark.

Usage (release binaries; the Parquet file from `driftdb-bench data tpch`):
    python benches/load/load_export.py --driftdb $CARGO_TARGET_DIR/release/driftdb \\
        --parquet bench-data/tpch-sf1/parquet/lineitem.parquet [--runs 3]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "flight-server", "tests", "python"))
from postgres import Postgres  # noqa: E402


def timed(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median_run(runs, prepare, action, check):
    times = []
    for _ in range(runs):
        state = prepare()
        times.append(timed(lambda: action(state)))
        check(state)
    return statistics.median(times), min(times), max(times)


def pg_type(t):
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_decimal(t):
        return f"NUMERIC({t.precision},{t.scale})"
    if pa.types.is_date32(t):
        return "DATE"
    if pa.types.is_floating(t):
        return "DOUBLE PRECISION"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "TEXT"
    raise ValueError(f"no PostgreSQL type for {t}")


class DriftDB:
    def __init__(self, binary, work):
        self.binary, self.work = binary, work

    def fresh(self):
        data = os.path.join(self.work, "driftdb-db")
        shutil.rmtree(data, ignore_errors=True)
        return data

    def run(self, *args):
        done = subprocess.run([self.binary, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"driftdb {' '.join(args)}: {done.stderr}")
        return done.stdout

    def load(self, data, file, *options):
        self.run("load", "--data", data, *options, "lineitem", file)

    def count(self, data):
        out = self.run("sql", "--data", data, "-e", "SELECT count(*) AS n FROM lineitem")
        return int([w for w in out.replace("|", " ").split() if w.isdigit()][-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driftdb", required=True)
    parser.add_argument("--parquet", required=True, help="lineitem as one Parquet file")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=None, help="scratch folder (default: beside the Parquet file)")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "results"))
    args = parser.parse_args()

    parquet = os.path.abspath(args.parquet)
    work = tempfile.mkdtemp(prefix="load-export-", dir=args.work or os.path.dirname(parquet))
    os.chmod(work, 0o755)  # PostgreSQL reads the CSV server-side
    try:
        report = run(args, parquet, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report)
    scale = os.path.basename(os.path.dirname(os.path.dirname(parquet))).removeprefix("tpch-")
    with open(os.path.join(args.out, f"load-export-{scale}.md"), "w") as f:
        f.write(report + "\n")


def run(args, parquet, work):
    rows = pq.ParquetFile(parquet).metadata.num_rows
    schema = pq.read_schema(parquet)
    csv = os.path.join(work, "lineitem.csv")
    duckdb.sql(f"COPY (SELECT * FROM read_parquet('{parquet}')) TO '{csv}' (FORMAT csv, HEADER true)")
    os.chmod(csv, 0o644)
    drift = DriftDB(args.driftdb, work)
    figures = {}

    def expect(n, what):
        if n != rows:
            raise RuntimeError(f"{what} loaded {n} rows, not {rows}")

    for kind, file in [("parquet", parquet), ("csv", csv)]:
        options = ()  # a CSV starts with its header line by default
        figures[f"driftdb load {kind}"] = median_run(
            args.runs,
            drift.fresh,
            lambda data, file=file, options=options: drift.load(data, file, *options),
            lambda data, kind=kind: expect(drift.count(data), f"driftdb load {kind}"),
        )

    def duck_fresh():
        path = os.path.join(work, "duck.db")
        for leftover in (path, path + ".wal"):
            if os.path.exists(leftover):
                os.remove(leftover)
        con = duckdb.connect(path)
        con.execute(f"CREATE TABLE lineitem AS SELECT * FROM read_parquet('{parquet}') LIMIT 0")
        return con

    def duck_copy(con, source, options=""):
        con.execute(f"COPY lineitem FROM '{source}' {options}")
        con.execute("CHECKPOINT")

    def duck_count(con):
        expect(con.execute("SELECT count(*) FROM lineitem").fetchone()[0], "DuckDB")
        con.close()

    figures["duckdb copy from parquet"] = median_run(
        args.runs, duck_fresh, lambda con: duck_copy(con, parquet), duck_count
    )
    figures["duckdb copy from csv"] = median_run(
        args.runs, duck_fresh, lambda con: duck_copy(con, csv, "(HEADER true)"), duck_count
    )

    pg = Postgres(durable=True)
    try:
        con = pg.connect()
        columns = ", ".join(f"{f.name} {pg_type(f.type)}" for f in schema)

        def pg_fresh():
            con.execute("DROP TABLE IF EXISTS lineitem")
            con.execute(f"CREATE TABLE lineitem ({columns})")
            con.execute("CHECKPOINT")
            return con

        figures["postgresql copy from csv"] = median_run(
            args.runs,
            pg_fresh,
            lambda c: c.execute(f"COPY lineitem FROM '{csv}' WITH (FORMAT csv, HEADER true)"),
            lambda c: expect(c.execute("SELECT count(*) FROM lineitem").fetchone()[0], "PostgreSQL"),
        )
        pg_version = con.execute("SHOW server_version").fetchone()[0]
        con.close()
    finally:
        pg.stop()

    # Exports: from a loaded DriftDB database and a loaded DuckDB file.
    data = drift.fresh()
    drift.load(data, parquet)
    out = os.path.join(work, "export.parquet")

    def export_check(_):
        expect(pq.ParquetFile(out).metadata.num_rows, "export")
        os.remove(out)

    figures["driftdb export parquet"] = median_run(
        args.runs, lambda: data, lambda d: drift.run("export", "--data", d, "lineitem", out), export_check
    )
    con = duck_fresh()
    duck_copy(con, parquet)
    figures["duckdb copy to parquet"] = median_run(
        args.runs,
        lambda: con,
        lambda c: c.execute(f"COPY lineitem TO '{out}' (FORMAT parquet, COMPRESSION zstd)"),
        export_check,
    )
    con.close()
    return table(figures, rows, args.runs, pg_version, os.path.getsize(parquet), os.path.getsize(csv))


def table(figures, rows, runs, pg_version, parquet_bytes, csv_bytes):
    def cell(name):
        median, low, high = figures[name]
        return f"{median:.2f} s ({rows / median / 1e6:.2f}M rows/s; min {low:.2f}, max {high:.2f})"

    def ratio(ours, peer):
        return f"**{figures[ours][0] / figures[peer][0]:.2f}**"

    lines = [
        f"lineitem: {rows:,} rows; Parquet {parquet_bytes / 1e6:.0f} MB, CSV {csv_bytes / 1e6:.0f} MB. "
        f"Median of {runs} runs. DuckDB {duckdb.__version__}, PostgreSQL {pg_version} (fsync on). "
        "Ratio: DriftDB's time ÷ the peer's (below 1: DriftDB faster).",
        "",
        "| workload | DriftDB | peer | DriftDB ÷ peer |",
        "| --- | --- | --- | --- |",
        f"| load from Parquet | {cell('driftdb load parquet')} | DuckDB `COPY FROM` {cell('duckdb copy from parquet')} "
        f"| {ratio('driftdb load parquet', 'duckdb copy from parquet')} |",
        f"| load from CSV | {cell('driftdb load csv')} | DuckDB `COPY FROM` {cell('duckdb copy from csv')} "
        f"| {ratio('driftdb load csv', 'duckdb copy from csv')} |",
        f"| load from CSV | {cell('driftdb load csv')} | PostgreSQL `COPY FROM` {cell('postgresql copy from csv')} "
        f"| {ratio('driftdb load csv', 'postgresql copy from csv')} |",
        f"| export to Parquet (zstd) | {cell('driftdb export parquet')} | DuckDB `COPY TO` {cell('duckdb copy to parquet')} "
        f"| {ratio('driftdb export parquet', 'duckdb copy to parquet')} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
