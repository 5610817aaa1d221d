"""Flight SQL figures for DriftDB, side by side with the transport's ceiling.

Prints, for a release `driftdb serve` started here:
  * adbc_ingest rows/s for 1M lineitem-like rows;
  * DoGet throughput (MB/s, rows/s) for a 10M-row result;
  * p50 / p99 latency of a small prepared point query;
and the same DoGet and point-lookup figures from a `pyarrow.flight` server
that serves the same Arrow table from memory (no SQL, no storage: the
ceiling of gRPC + Arrow IPC on this machine), with DriftDB ÷ ceiling ratios.

Usage: python benches/flight/flight_sql_bench.py [--driftdb PATH] [--rows N] [--quick]
"""

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight

PASSWORD = "bench-password"
# Rows per batch the client uploads with adbc_ingest.
INGEST_CHUNK_ROWS = 65_536


def lineitem(n):
    """A lineitem-like table: keys, quantities, prices, flags, dates, comments
    (built with Arrow compute, so 10M rows take seconds)."""
    idx = pa.array(np.arange(n, dtype=np.int64))
    flags = pa.array(["A", "N", "R", "F"])
    comments = pa.array([f"comment {i}" for i in range(977)])
    return pa.table(
        {
            "l_orderkey": idx,
            "l_partkey": pc.multiply(idx, 7),
            "l_quantity": pa.array((np.arange(n) % 50 + 1).astype(np.int32)),
            "l_extendedprice": pa.array((np.arange(n) % 100_000) / 7.0),
            "l_returnflag": flags.take(pa.array(np.arange(n) % 4)),
            "l_shipdate": pa.array((10_000 + np.arange(n) % 2_500).astype(np.int32)).cast(pa.date32()),
            "l_comment": comments.take(pa.array(np.arange(n) % 977)),
        }
    )


def start_driftdb(binary, data):
    env = dict(os.environ, DRIFTDB_PASSWORD=PASSWORD, DRIFTDB_LOG="warn")
    proc = subprocess.Popen(
        [binary, "serve", "--data", data, "--listen", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        m = re.search(r"serving Flight SQL on (grpc\S*)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, m.group(1)
    raise RuntimeError("driftdb serve did not start")


class MemoryServer(flight.FlightServerBase):
    """The ceiling: serve a table from memory, and answer point lookups by key."""

    def __init__(self, table):
        super().__init__("grpc://127.0.0.1:0")
        self.table = table
        self.keys = table.column("l_orderkey")

    def do_get(self, context, ticket):
        request = ticket.ticket.decode()
        if request == "all":
            return flight.RecordBatchStream(self.table)
        key = int(request)
        mask = pc.equal(self.keys, key)
        return flight.RecordBatchStream(self.table.filter(mask).select(["l_orderkey", "l_quantity"]))


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The largest resident set size of a process while a block runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.running = pid, 0.0, True

    def __enter__(self):
        self.before = rss_mib(self.pid)
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def percentile(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def timed_fetch_driftdb(conn, sql):
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(sql)
        table = cur.fetch_arrow_table()
    return time.perf_counter() - started, table


def main():
    parser = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/driftdb-target-release"))
    parser.add_argument("--driftdb", default=os.path.join(target, "release", "driftdb"))
    parser.add_argument("--ingest-rows", type=int, default=1_000_000)
    parser.add_argument("--scan-rows", type=int, default=10_000_000)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the program runs")
    args = parser.parse_args()
    if args.quick:
        args.ingest_rows, args.scan_rows, args.lookups = 20_000, 100_000, 50

    data = tempfile.mkdtemp(prefix="driftdb-bench-")
    proc, uri = start_driftdb(args.driftdb, data)
    conn = flight_sql.connect(uri, db_kwargs={"username": "driftdb", "password": PASSWORD}, autocommit=True)
    try:
        # 1. adbc_ingest of lineitem-like rows.
        small = lineitem(args.ingest_rows)
        with conn.cursor() as cur:
            started = time.perf_counter()
            # ADBC sends each batch as one gRPC message (client limit 16 MiB): stream chunks.
            cur.adbc_ingest("lineitem_ingest", small.to_reader(max_chunksize=INGEST_CHUNK_ROWS), mode="create")
            ingest_s = time.perf_counter() - started
        print(f"adbc_ingest: {args.ingest_rows:,} rows in {ingest_s:.2f} s = {args.ingest_rows / ingest_s:,.0f} rows/s")

        # 2. DoGet of a large result.
        big = lineitem(args.scan_rows)
        with conn.cursor() as cur:
            cur.adbc_ingest("lineitem", big.to_reader(max_chunksize=INGEST_CHUNK_ROWS), mode="create")
        timed_fetch_driftdb(conn, "SELECT * FROM lineitem LIMIT 1000")  # warm-up
        with RssSampler(proc.pid) as rss:
            runs = [timed_fetch_driftdb(conn, "SELECT * FROM lineitem") for _ in range(3)]
        drift_s = statistics.median(r[0] for r in runs)
        result = runs[0][1]
        assert result.num_rows == args.scan_rows
        nbytes = result.nbytes

        # The ceiling serves exactly what DriftDB sent: same rows, same batches.
        memory = MemoryServer(result)
        threading.Thread(target=memory.serve, daemon=True).start()
        client = flight.connect(f"grpc://127.0.0.1:{memory.port}")
        client.do_get(flight.Ticket(b"all")).read_all()  # warm-up
        ceiling_runs = []
        for _ in range(3):
            started = time.perf_counter()
            got = client.do_get(flight.Ticket(b"all")).read_all()
            ceiling_runs.append(time.perf_counter() - started)
        assert got.num_rows == args.scan_rows
        ceiling_s = statistics.median(ceiling_runs)
        mb = nbytes / 1e6
        print(
            f"server RSS while streaming {mb:,.0f} MB results: {rss.before:,.0f} MiB before, "
            f"{rss.peak:,.0f} MiB peak (+{rss.peak - rss.before:,.0f} MiB)"
        )
        print(
            f"DoGet {args.scan_rows:,} rows ({mb:,.0f} MB): DriftDB {mb / drift_s:,.0f} MB/s, "
            f"{args.scan_rows / drift_s:,.0f} rows/s; pyarrow.flight from memory {mb / ceiling_s:,.0f} MB/s; "
            f"ratio {ceiling_s / drift_s:.2f} of the ceiling"
        )

        # 3. Prepared point query latency.
        keys = [(i * 7919) % args.scan_rows for i in range(args.lookups)]
        latencies = []
        with conn.cursor() as cur:
            cur.execute("SELECT l_orderkey, l_quantity FROM lineitem WHERE l_orderkey = ?", (0,))
            cur.fetchall()
            for k in keys:
                started = time.perf_counter()
                cur.execute("SELECT l_orderkey, l_quantity FROM lineitem WHERE l_orderkey = ?", (k,))
                rows = cur.fetchall()
                latencies.append(time.perf_counter() - started)
                assert rows and rows[0][0] == k
        ceiling_lat = []
        for k in keys:
            started = time.perf_counter()
            t = client.do_get(flight.Ticket(str(k).encode())).read_all()
            ceiling_lat.append(time.perf_counter() - started)
            assert t.num_rows == 1
        p50, p99 = percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3
        c50, c99 = percentile(ceiling_lat, 50) * 1e3, percentile(ceiling_lat, 99) * 1e3
        print(
            f"prepared point query ({args.lookups} lookups): DriftDB p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
            f"pyarrow.flight filter-from-memory p50 {c50:.2f} ms, p99 {c99:.2f} ms; "
            f"ratio p50 {p50 / c50:.1f}x, p99 {p99 / c99:.1f}x"
        )
        memory.shutdown()
    finally:
        conn.close()
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
