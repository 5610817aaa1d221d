//! # driftdb-benches
//!
//! Benchmark programs for DriftDB. They print markdown tables and never
//! assert timings. See `src/bin/` for the programs.

/// The benchmark programs use the allocator the `driftdb` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod harness;
