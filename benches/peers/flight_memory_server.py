"""A pyarrow.flight server for driftdb-bench's Flight fetch workload.

Loads the record batches of the Arrow IPC file --ipc into memory and
answers every DoGet with all of them, unchanged (same batches, same
boundaries): the ceiling of gRPC + Arrow IPC on this machine, with no SQL
and no storage behind it. Prints "port <n>" and pyarrow's version once it
listens, then serves until killed.
"""

import argparse
import sys

import pyarrow as pa
import pyarrow.flight as flight


class MemoryServer(flight.FlightServerBase):
    def __init__(self, table):
        super().__init__("grpc://127.0.0.1:0")
        self.table = table

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self.table)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ipc", required=True)
    args = parser.parse_args()
    with pa.OSFile(args.ipc) as source:  # reads into memory (no map)
        table = pa.ipc.open_file(source).read_all()
    server = MemoryServer(table)
    print(f"port {server.port}", flush=True)
    print(pa.__version__, flush=True)
    sys.stdout.close()
    server.serve()


if __name__ == "__main__":
    main()
