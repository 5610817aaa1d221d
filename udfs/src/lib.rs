//! # driftdb-udfs
//!
//! Pure DataFusion functions for DriftDB: they know DataFusion's function
//! traits and nothing of the engine's state. Time-series helpers
//! (`time_bucket`, gap filling, `first`/`last` by time) land here.
//!
//! ## Module map
//! - [`series`]: `generate_series` and `range` as scalar (list) functions,
//!   bounded by [`limits::SERIES_ELEMENTS_MAX`]; they replace DataFusion's.
//! - [`limits`]: every limit the functions enforce.
//! - [`error`]: the crate's error type.
//!
//! ## Invariants
//! - No function allocates in proportion to a number the user typed
//!   without first checking it against a named limit.

pub mod error;
pub mod limits;
pub mod series;

use datafusion::prelude::SessionContext;

/// Register every DriftDB function with a session. Call it after
/// DataFusion's defaults: a function of the same name replaces theirs.
pub fn register_all(ctx: &SessionContext) {
    for function in series::functions() {
        ctx.register_udf(function);
    }
}
