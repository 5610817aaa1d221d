//! The server's error type, and how every error becomes a gRPC status that
//! keeps its SQLSTATE: in the message (`… (SQLSTATE 42P01)`) and in the
//! `x-driftdb-sqlstate` response header.

use std::time::Duration;

use arrow_flight::error::FlightError;
use tonic::{Code, Status};

/// Everything the Flight SQL server can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Engine(#[from] driftdb_engine::Error),

    #[error("authentication failed: {0}")]
    Unauthenticated(String),

    #[error("permission denied: {0}")]
    PermissionDenied(String),

    #[error("too many sessions: the server allows {limit}")]
    TooManySessions { limit: usize },

    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },

    #[error("{what} has no columns")]
    NoColumns { what: &'static str },

    #[error(
        "too many logins at once: {waiting} are waiting to be verified (login_waiters_max); retry later"
    )]
    LoginsBusy { waiting: usize },

    #[error("query exceeded the time limit of {0:?}")]
    QueryTimeout(Duration),

    #[error("query was cancelled")]
    Cancelled,

    #[error("bad request: {0}")]
    BadRequest(String),

    #[error("no {kind} with handle {handle:?} in this session")]
    UnknownHandle { kind: &'static str, handle: String },

    #[error("{0} is not supported yet")]
    Unsupported(String),

    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Result alias for the server.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

impl ServerError {
    /// The SQLSTATE code for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ServerError::Engine(e) => e.sqlstate(),
            ServerError::Unauthenticated(_) => "28P01",
            ServerError::PermissionDenied(_) => "42501",
            ServerError::TooManySessions { .. } => "53300",
            ServerError::TooLarge { .. } => "54000",
            ServerError::NoColumns { .. } => "22023",
            ServerError::LoginsBusy { .. } => "53300",
            ServerError::QueryTimeout(_) | ServerError::Cancelled => "57014",
            ServerError::BadRequest(_) => "08P01",
            ServerError::UnknownHandle { .. } => "26000",
            ServerError::Unsupported(_) => "0A000",
            ServerError::Config(_) => "F0000",
            ServerError::Io(_) => "58030",
            ServerError::Arrow(_) => "22000",
            ServerError::Transport(_) => "08006",
        }
    }

    /// The gRPC code clients see for this error.
    pub fn code(&self) -> Code {
        match self {
            ServerError::Unauthenticated(_) => Code::Unauthenticated,
            ServerError::PermissionDenied(_) => Code::PermissionDenied,
            ServerError::QueryTimeout(_) => Code::DeadlineExceeded,
            ServerError::Cancelled => Code::Cancelled,
            ServerError::UnknownHandle { .. } => Code::NotFound,
            _ => code_for_sqlstate(self.sqlstate()),
        }
    }
}

/// The gRPC code for a SQLSTATE: by class, with a few exact codes first.
pub fn code_for_sqlstate(sqlstate: &str) -> Code {
    match sqlstate {
        // 58P01: a file or object a statement names does not exist.
        "42P01" | "42704" | "3D000" | "3F000" | "3B001" | "58P01" => Code::NotFound,
        "42P07" | "42710" | "23505" => Code::AlreadyExists,
        "40001" | "40P01" => Code::Aborted,
        "42501" => Code::PermissionDenied,
        "0A000" => Code::Unimplemented,
        "55006" | "08006" | "08007" => Code::Unavailable,
        _ => match &sqlstate[..2] {
            "22" | "42" | "26" | "08" => Code::InvalidArgument,
            "23" | "25" | "2B" | "55" => Code::FailedPrecondition,
            "28" => Code::Unauthenticated,
            "53" | "54" => Code::ResourceExhausted,
            "57" => Code::Cancelled,
            _ => Code::Internal,
        },
    }
}

/// Name of the response header that carries the SQLSTATE.
pub const SQLSTATE_HEADER: &str = "x-driftdb-sqlstate";

impl From<ServerError> for Status {
    fn from(err: ServerError) -> Self {
        let sqlstate = err.sqlstate();
        let mut status = Status::new(err.code(), format!("{err} (SQLSTATE {sqlstate})"));
        if let Ok(value) = sqlstate.parse() {
            status.metadata_mut().insert(SQLSTATE_HEADER, value);
        }
        status
    }
}

/// A status made before DriftDB saw the request (by arrow-flight's Flight
/// SQL dispatch), with the SQLSTATE its refusal stands for: a request that
/// does not decode is 08P01 (InvalidArgument; arrow-flight says Internal
/// for a known message that does not decode), an unimplemented one 0A000.
/// Statuses DriftDB made keep theirs.
pub fn with_sqlstate(status: Status) -> Status {
    if status.metadata().contains_key(SQLSTATE_HEADER) {
        return status;
    }
    let (code, sqlstate) = match status.code() {
        Code::Internal | Code::InvalidArgument => (Code::InvalidArgument, "08P01"),
        Code::Unimplemented => (Code::Unimplemented, "0A000"),
        _ => return status,
    };
    let message = format!("{} (SQLSTATE {sqlstate})", status.message());
    let mut status = Status::new(code, message);
    if let Ok(value) = sqlstate.parse() {
        status.metadata_mut().insert(SQLSTATE_HEADER, value);
    }
    status
}

impl From<datafusion::error::DataFusionError> for ServerError {
    fn from(err: datafusion::error::DataFusionError) -> Self {
        ServerError::Engine(err.into())
    }
}

impl From<FlightError> for ServerError {
    fn from(err: FlightError) -> Self {
        match err {
            FlightError::Arrow(e) => ServerError::Arrow(e),
            other => ServerError::BadRequest(other.to_string()),
        }
    }
}

/// A status as a [`FlightError`], for streams that carry errors to the encoder.
pub fn flight_error(err: ServerError) -> FlightError {
    FlightError::Tonic(Box::new(err.into()))
}

/// The status a [`FlightError`] from the encoder stands for.
pub fn status_of(err: FlightError) -> Status {
    match err {
        FlightError::Tonic(status) => *status,
        other => ServerError::from(other).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_the_codes_drivers_expect() {
        assert_eq!(code_for_sqlstate("42601"), Code::InvalidArgument);
        assert_eq!(code_for_sqlstate("22P02"), Code::InvalidArgument);
        assert_eq!(code_for_sqlstate("42P01"), Code::NotFound);
        assert_eq!(code_for_sqlstate("23505"), Code::AlreadyExists);
        assert_eq!(code_for_sqlstate("23502"), Code::FailedPrecondition);
        assert_eq!(code_for_sqlstate("40001"), Code::Aborted);
        assert_eq!(code_for_sqlstate("53200"), Code::ResourceExhausted);
        assert_eq!(code_for_sqlstate("XX000"), Code::Internal);
        // Found by fuzzing: ROLLBACK TO an unknown savepoint was Internal.
        assert_eq!(code_for_sqlstate("3B001"), Code::NotFound);
        assert_eq!(code_for_sqlstate("58P01"), Code::NotFound);
    }

    #[test]
    fn refusals_made_before_driftdb_get_a_sqlstate() {
        let undecodable = with_sqlstate(Status::internal("Unable to decode Any value"));
        assert_eq!(undecodable.code(), Code::InvalidArgument);
        assert_eq!(
            undecodable.metadata().get(SQLSTATE_HEADER).unwrap(),
            "08P01"
        );
        let unsupported = with_sqlstate(Status::unimplemented("Not yet implemented"));
        assert_eq!(unsupported.code(), Code::Unimplemented);
        assert!(unsupported.message().ends_with("(SQLSTATE 0A000)"));
        let ours: Status = ServerError::Cancelled.into();
        let kept = with_sqlstate(ours.clone());
        assert_eq!((kept.code(), kept.message()), (ours.code(), ours.message()));
    }

    #[test]
    fn status_keeps_the_sqlstate() {
        let status: Status = ServerError::Engine(driftdb_engine::Error::UnknownTable {
            name: "nope".into(),
            context: String::new(),
        })
        .into();
        assert_eq!(status.code(), Code::NotFound);
        assert!(
            status.message().contains("SQLSTATE 42P01"),
            "{}",
            status.message()
        );
        assert_eq!(status.metadata().get(SQLSTATE_HEADER).unwrap(), "42P01");
    }
}
