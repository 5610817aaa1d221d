//! # driftdb-udfs
//!
//! Pure DataFusion functions for DriftDB: they know DataFusion's function
//! traits and nothing of the engine's state: time-series helpers
//! (`time_bucket`, `first`/`last` by time; gap filling to come) and
//! bounded series.
//!
//! ## Module map
//! - [`series`]: `generate_series` and `range` as scalar (list) functions,
//!   bounded by [`limits::SERIES_ELEMENTS_MAX`]; they replace DataFusion's.
//! - [`time_bucket`]: `time_bucket` with TimescaleDB's semantics.
//! - [`bookends`]: the `first(value, time)` and `last(value, time)` aggregates.
//! - [`limits`]: every limit the functions enforce.
//! - [`error`]: the crate's error type.
//!
//! ## Invariants
//! - No function allocates in proportion to a number the user typed
//!   without first checking it against a named limit.

pub mod bookends;
pub mod error;
pub mod limits;
pub mod series;
pub mod time_bucket;

use datafusion::prelude::SessionContext;

/// Register every DriftDB function with a session. Call it after
/// DataFusion's defaults: a function of the same name replaces theirs.
pub fn register_all(ctx: &SessionContext) {
    for function in series::functions() {
        ctx.register_udf(function);
    }
    ctx.register_udf(time_bucket::time_bucket());
    ctx.register_udaf(bookends::first());
    ctx.register_udaf(bookends::last());
}
