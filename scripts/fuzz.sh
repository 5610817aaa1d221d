#!/usr/bin/env bash
# The long fuzz run: every fuzz target (engine and Flight server) with
# DRIFTDB_FUZZ_CASES times its CI case count (100 unless set). Each target
# prints its seed; PROPTEST_RNG_SEED=<seed> replays a run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/driftdb-target}"
export DRIFTDB_FUZZ_CASES="${DRIFTDB_FUZZ_CASES:-100}"
cargo test -p driftdb-engine --test it fuzz -- --nocapture
cargo test -p driftdb-server --test it fuzz -- --nocapture
