#!/usr/bin/env bash
# Create (or reuse) the virtualenv with the Python clients the Flight SQL
# tests drive (the ADBC Flight SQL driver, pyarrow, pandas, polars, pytest)
# and the peers driftdb-bench runs beside DriftDB (DuckDB).
set -euo pipefail
VENV="${1:-$HOME/driftdb-venv}"
HERE="$(dirname "$0")"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    -r "$HERE/../flight-server/tests/python/requirements.txt" \
    -r "$HERE/../benches/peers/requirements.txt"
