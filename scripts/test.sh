#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests, and a smoke
# run of the benchmark programs so they cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/driftdb-target}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test"
cargo test --workspace

echo "== benchmark smoke run"
cargo run -q -p driftdb-benches --bin foundation -- --quick
