//! Named limits of the crate's functions, each with its unit last.

/// Most elements one call of the scalar `generate_series` / `range` may
/// produce, summed over the rows of a batch (16 Mi elements: 128 MiB of
/// `BIGINT`s). The table-function forms stream and are not bounded.
pub const SERIES_ELEMENTS_MAX: u64 = 16 * 1024 * 1024;
