//! # driftdb-udfs
//!
//! Pure DataFusion functions for DriftDB: they know DataFusion's function
//! traits and nothing of the engine's state. Time-series helpers
//! (`time_bucket`, gap filling, `first`/`last` by time) land here.

use datafusion::prelude::SessionContext;

/// Register every DriftDB function with a session.
pub fn register_all(_ctx: &SessionContext) {}
