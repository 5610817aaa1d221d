#!/usr/bin/env bash
# Object-storage figures, each beside its local-disk twin, against a moto S3
# server on loopback (started by flight-server/tests/python/s3server.py):
#   1. single-row durable commits, 1 and 16 writers (foundation --commits-only);
#   2. ingest of TPC-H lineitem (1-, 100-, 1,000-row commits and bulk), beside
#      delta-rs writing the same slices to the same server;
#   3. TPC-H's 22 queries over a copy of the SF database on S3, with the local
#      data-file cache (warm) and without it (every range read from S3);
#   4. backup and restore of the TPC-H SF database (MB/s, median of 3): local
#      disk to local disk beside `cp -r` of the same folder, and local disk to
#      S3 and S3 to S3 (the restored copy is the one step 3 queries).
# Needs release builds of driftdb-server and driftdb-benches and the bench data
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

OUT=benches/results/object-storage
mkdir -p "$OUT"
TPCH_DB="$DATA/tpch-sf$TPCH_SCALE/driftdb"

# The median of the MB/s figures `driftdb backup`/`restore` print, over the
# lines of $1 that start with $2.
median_rate() {
    grep "^$2" "$1" | sed -E 's/.*\(([0-9.]+) MB\/s\).*/\1/' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
export -f median_rate

echo "== backup and restore, local disk ($TPCH_DB, $(du -sm "$TPCH_DB" | cut -f1) MiB)"
SCRATCH="$(mktemp -d)"
: > "$OUT/backup-local.txt"
for run in 1 2 3; do
    "$BIN/driftdb" backup --data "$TPCH_DB" --to "$SCRATCH/backup-$run" >> "$OUT/backup-local.txt"
    "$BIN/driftdb" restore --from "$SCRATCH/backup-$run" --to "$SCRATCH/restored-$run" >> "$OUT/backup-local.txt"
    sync
    start=$(date +%s.%N)
    cp -r "$TPCH_DB" "$SCRATCH/cp-$run" && sync
    echo "cp -r $(du -sb "$TPCH_DB" | cut -f1) bytes in $(echo "$(date +%s.%N) - $start" | bc) s" >> "$OUT/backup-local.txt"
    rm -rf "$SCRATCH/backup-$run" "$SCRATCH/restored-$run" "$SCRATCH/cp-$run"
done
echo "backup (local -> local): $(median_rate "$OUT/backup-local.txt" backup) MB/s"
echo "restore (local -> local): $(median_rate "$OUT/backup-local.txt" restored) MB/s"
grep '^cp -r' "$OUT/backup-local.txt"

echo "== local disk"
"$BIN/foundation" --commits-only
"$BIN/driftdb-bench" run ingest --scale "$INGEST_SCALE" --engines driftdb,delta \
    --dir "$DATA" --python "$VENV/bin/python" --out "$OUT/local"

"$VENV/bin/python" flight-server/tests/python/s3server.py -- bash -c '
set -euo pipefail
echo "== S3 (moto on loopback): $AWS_ENDPOINT_URL"
"$0/foundation" --commits-only
"$0/driftdb-bench" run ingest --scale "$2" --engines driftdb,delta --dir "$3" --python "$4/bin/python" --out "$5/s3"
# The TPC-H database backed up to S3 and restored from there to S3, three
# times; the last restored copy is what the queries read.
: > "$5/backup-s3.txt"
for run in 1 2 3; do
    "$0/driftdb" backup --data "$3/tpch-sf$1/driftdb" --to "${DRIFTDB_BENCH_STORE}/backup-$run" >> "$5/backup-s3.txt"
    "$0/driftdb" restore --from "${DRIFTDB_BENCH_STORE}/backup-$run" --to "${DRIFTDB_BENCH_STORE}/tpch-sf$1-$run" >> "$5/backup-s3.txt"
done
echo "backup (local -> S3): $(median_rate "$5/backup-s3.txt" backup) MB/s"
echo "restore (S3 -> S3): $(median_rate "$5/backup-s3.txt" restored) MB/s"
DRIFTDB_BENCH_TPCH_DB="${DRIFTDB_BENCH_STORE}/tpch-sf$1-3" \
    "$0/driftdb-bench" run tpch --scale "$1" --engines driftdb --runs 5 --dir "$3" --python "$4/bin/python" --out "$5/s3-cached"
DRIFTDB_BENCH_TPCH_DB="${DRIFTDB_BENCH_STORE}/tpch-sf$1-3" DRIFTDB_BENCH_CACHE_MIB=0 \
    "$0/driftdb-bench" run tpch --scale "$1" --engines driftdb --runs 5 --dir "$3" --python "$4/bin/python" --out "$5/s3-uncached"
' "$BIN" "$TPCH_SCALE" "$INGEST_SCALE" "$DATA" "$VENV" "$OUT"
