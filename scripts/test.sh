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

# Build everything once with the features the tests use (a `-p` or plain
# `cargo build` would resolve features differently and rebuild DataFusion).
echo "== cargo build"
cargo build --workspace --all-targets

echo "== cargo test"
cargo test --workspace

echo "== benchmark smoke run"
"$CARGO_TARGET_DIR/debug/foundation" --quick
