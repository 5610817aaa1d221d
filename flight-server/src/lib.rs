//! # driftdb-server
//!
//! The `driftdb` command line and, later, the Arrow Flight SQL service: a
//! thin adapter from the outside world to `driftdb-engine`.
//!
//! ## Module map
//! - [`cli`]: command-line structs (`clap`), one per concern.
//! - [`repl`]: `driftdb sql`, the interactive shell and script runner.
//! - [`demo`]: the demo database the README's first command opens.

pub mod cli;
pub mod demo;
pub mod repl;
