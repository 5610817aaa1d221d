//! The engine's one integration-test binary (each binary links DataFusion,
//! so all suites live here as modules).

mod backup;
mod bank;
mod common;
mod compaction;
mod concurrency;
mod crash;
mod faults;
mod fuzz;
mod integrity;
mod model;
mod object_storage;
mod pipeline;
mod power_loss;
mod restore_table;
mod retention;
mod slt;
mod statement_limits;
mod statements;
mod tags;
mod temporal;
