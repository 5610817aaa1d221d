//! # driftdb-benches
//!
//! Benchmark programs for DriftDB. They print markdown tables and never
//! assert timings. See `src/bin/` for the programs.
