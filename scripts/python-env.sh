#!/usr/bin/env bash
# Create (or reuse) the virtualenv with the Python clients the Flight SQL
# tests drive: the ADBC Flight SQL driver, pyarrow, pandas, polars, pytest.
set -euo pipefail
VENV="${1:-$HOME/driftdb-venv}"
REQUIREMENTS="$(dirname "$0")/../flight-server/tests/python/requirements.txt"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
