//! # driftdb-datasets
//!
//! Dataset generators and loaders for DriftDB's tests and benchmarks
//! (TPC-H and mutable business data with history). The generators arrive
//! with the benchmarks issue; this crate fixes their place in the workspace.
