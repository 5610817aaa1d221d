#!/usr/bin/env bash
# Object-storage figures, each beside its local-disk twin, against a moto S3
# server on loopback (started by flight-server/tests/python/s3server.py):
#   1. single-row durable commits, 1 and 16 writers (foundation --commits-only);
#   2. ingest of TPC-H lineitem (1-, 100-, 1,000-row commits and bulk), beside
#      delta-rs writing the same slices to the same server;
#   3. TPC-H's 22 queries over a copy of the SF database on S3, with the local
#      data-file cache (warm) and without it (every range read from S3).
# Needs release builds of driftdb-benches and the bench data
# (`driftdb-bench data tpch --scale SF`). Usage:
#   bash benches/object_storage.sh [SCALE_TPCH=1] [SCALE_INGEST=0.1]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/driftdb-target}"
VENV="${DRIFTDB_VENV:-$HOME/driftdb-venv}"
TPCH_SCALE="${1:-1}"
INGEST_SCALE="${2:-0.1}"
BIN="$CARGO_TARGET_DIR/release"
DATA="${DRIFTDB_BENCH_DATA:-bench-data}"

echo "== local disk"
"$BIN/foundation" --commits-only
OUT=benches/results/object-storage
"$BIN/driftdb-bench" run ingest --scale "$INGEST_SCALE" --engines driftdb,delta \
    --dir "$DATA" --python "$VENV/bin/python" --out "$OUT/local"

"$VENV/bin/python" flight-server/tests/python/s3server.py -- bash -c '
set -euo pipefail
echo "== S3 (moto on loopback): $AWS_ENDPOINT_URL"
"$0/foundation" --commits-only
"$0/driftdb-bench" run ingest --scale "$2" --engines driftdb,delta --dir "$3" --python "$4/bin/python" --out "$5/s3"
# A copy of the TPC-H database on S3: its checkpoint and data files (a
# cleanly closed database needs no log).
"$4/bin/python" - "$3/tpch-sf$1/driftdb" "${DRIFTDB_BENCH_STORE}/tpch-sf$1" <<EOF
import os, sys, boto3
source, target = sys.argv[1], sys.argv[2]
bucket, prefix = target[len("s3://"):].split("/", 1)
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"])
for root, _, files in os.walk(source):
    for name in files:
        rel = os.path.relpath(os.path.join(root, name), source)
        if rel.startswith(("_checkpoints/", "data/")):
            s3.upload_file(os.path.join(root, name), bucket, f"{prefix}/{rel}")
EOF
DRIFTDB_BENCH_TPCH_DB="${DRIFTDB_BENCH_STORE}/tpch-sf$1" \
    "$0/driftdb-bench" run tpch --scale "$1" --engines driftdb --runs 5 --dir "$3" --python "$4/bin/python" --out "$5/s3-cached"
DRIFTDB_BENCH_TPCH_DB="${DRIFTDB_BENCH_STORE}/tpch-sf$1" DRIFTDB_BENCH_CACHE_MIB=0 \
    "$0/driftdb-bench" run tpch --scale "$1" --engines driftdb --runs 5 --dir "$3" --python "$4/bin/python" --out "$5/s3-uncached"
' "$BIN" "$TPCH_SCALE" "$INGEST_SCALE" "$DATA" "$VENV" "$OUT"
