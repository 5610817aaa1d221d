//! The crate's one error type. Errors leave as DataFusion errors; each
//! variant picks the DataFusion kind the engine maps to the right SQLSTATE
//! (`ResourcesExhausted` → 53200).

use datafusion::error::DataFusionError;

/// Everything a DriftDB function can refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{function} would produce more than {limit} elements (series_elements_max); \
         for long series use the table function, which streams: SELECT * FROM {function}(…)"
    )]
    SeriesTooLong { function: String, limit: u64 },
}

impl From<Error> for DataFusionError {
    fn from(err: Error) -> Self {
        match err {
            Error::SeriesTooLong { .. } => DataFusionError::ResourcesExhausted(err.to_string()),
        }
    }
}
