//! # driftdb-server
//!
//! The `driftdb` command line and the Arrow Flight SQL service: a
//! thin adapter from the outside world to `driftdb-engine`.
//!
//! ## Module map
//! - [`cli`]: command-line structs (`clap`), one per concern.
//! - [`repl`]: `driftdb sql`, the interactive shell and script runner.
//! - [`demo`]: the demo database the README's first command opens.
//! - [`backup`]: `driftdb backup` and `driftdb restore`, with progress bars.
//! - [`serve`]: `driftdb serve`, the Arrow Flight SQL server.

pub mod backup;
pub mod cli;
pub mod demo;
pub mod repl;
pub mod serve;
pub mod transfer;
