//! # driftdb-engine
//!
//! The embedded DriftDB engine: an append-only, temporal, Arrow-native
//! database with a full SQL surface from Apache DataFusion.
//!
//! ## Module map (the write path top to bottom, then the read path)
//! - [`sql`]: sessions; parse SQL with DriftDB's dialect and route each
//!   statement to DDL, DML or DataFusion.
//! - [`txn`]: write sets, what a statement asks to commit.
//! - [`constraints`]: primary keys and NOT NULL.
//! - [`db`]: the database: validation and commit (one global `seq`),
//!   snapshots, recovery, background persist and checkpoints.
//! - [`log`]: the durable, checksummed, group-committed commit log.
//! - [`storage`]: memtable, Parquet data files, checkpoints, locations.
//! - [`catalog`]: tables with their schema history, views, SQL types.
//! - [`temporal`]: the relation planner for `AS OF` clauses, the temporal
//!   table provider and scan, `history()` and `commits()`.
//! - [`sequences`]: sequence positions and `nextval` and friends.
//! - [`backup`]: online backup of a database and point-in-time restore.
//! - [`limits`]: every tunable, with units.
//!
//! ## Invariants
//! - Every commit gets the next `seq` and a strictly larger commit time.
//! - A row version is visible at snapshot `S` iff `_seq <= S` and it is not
//!   retired at or before `S`. Data files are immutable.
//! - A commit is acknowledged only once it is durable; readers never see a
//!   commit past the highest durable one.

pub mod backup;
pub mod catalog;
pub mod constraints;
pub mod db;
pub mod error;
pub mod limits;
pub mod log;
pub mod sequences;
pub mod sql;
pub mod storage;
pub mod temporal;
pub mod txn;

pub use db::{CommitOutcome, Database};
pub use error::{Error, Result};
pub use limits::Limits;
pub use sql::files::FileAccess;
pub use sql::{Output, Prepared, Session, StatementResult};
