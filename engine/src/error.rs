//! The engine's one error type. Every error a user can cause carries a
//! SQLSTATE code (see [`Error::sqlstate`]) and a message that names the
//! table, column, constraint or value at fault.

use datafusion::error::DataFusionError;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside DriftDB.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("syntax error: {message}")]
    Syntax { message: String },
    #[error("{message}")]
    TooComplex { message: String },

    /// A subquery or MERGE that had to give one row (or change a row once) gave more.
    #[error("{message}")]
    CardinalityViolation { message: String },

    /// A value of one type where another is needed, with no cast that applies by itself.
    #[error("{message}")]
    DatatypeMismatch { message: String },
    #[error("parameter ${index} {message}")]
    BadParameter { index: usize, message: String },

    /// Text bound to a parameter that does not read as its type.
    #[error("invalid input for parameter ${index}: {message}")]
    BadParameterText { index: usize, message: String },

    #[error(
        "{statement} takes no parameters (found {placeholder}): it stores or runs its text as written"
    )]
    ParameterNotAllowed {
        statement: String,
        placeholder: String,
    },

    #[error("relation \"{name}\" does not exist{context}")]
    UnknownTable { name: String, context: String },

    #[error("relation \"{name}\" already exists")]
    TableExists { name: String },

    #[error("column \"{column}\" of relation \"{table}\" does not exist")]
    UnknownColumn { table: String, column: String },

    #[error("column \"{column}\" of relation \"{table}\" already exists")]
    ColumnExists { table: String, column: String },

    #[error("column name \"{column}\" of relation \"{table}\" conflicts with a system column name")]
    SystemColumnName { table: String, column: String },

    #[error(
        "duplicate key value violates unique constraint \"{constraint}\" on \"{table}\": key {key} already exists"
    )]
    UniqueViolation {
        table: String,
        constraint: String,
        key: String,
    },

    #[error(
        "new row for relation \"{table}\" violates check constraint \"{constraint}\": failing row contains {row}"
    )]
    CheckViolation {
        table: String,
        constraint: String,
        row: String,
    },

    #[error(
        "check constraint \"{constraint}\" of relation \"{table}\" is violated by some row: {row}"
    )]
    CheckViolatedByExistingRow {
        table: String,
        constraint: String,
        row: String,
    },

    #[error(
        "insert or update on table \"{table}\" violates foreign key constraint \"{constraint}\": key {key} is not present in table \"{parent}\""
    )]
    ForeignKeyMissing {
        table: String,
        constraint: String,
        key: String,
        parent: String,
    },

    #[error(
        "update or delete on table \"{parent}\" violates foreign key constraint \"{constraint}\" on table \"{table}\": key {key} is still referenced from table \"{table}\""
    )]
    ForeignKeyReferenced {
        parent: String,
        constraint: String,
        table: String,
        key: String,
    },

    #[error("invalid foreign key \"{constraint}\": {message}")]
    InvalidForeignKey { constraint: String, message: String },

    /// `object` starts with the refused action: `drop table t`, `alter table t`.
    #[error("cannot {object} because other objects depend on it: {detail}")]
    DependentObjects { object: String, detail: String },

    #[error("constraint \"{constraint}\" for relation \"{table}\" already exists")]
    ConstraintExists { table: String, constraint: String },

    #[error("constraint \"{constraint}\" of relation \"{table}\" does not exist")]
    UnknownConstraint { table: String, constraint: String },

    #[error("index \"{name}\" does not exist")]
    UnknownIndex { name: String },
    /// 42704: no tag of that name (`DROP TAG`, `VERSION AS OF 'name'`).
    #[error("tag \"{name}\" does not exist")]
    UnknownTag { name: String },
    /// 42710: `CREATE TAG` with a name a live tag has.
    #[error("tag \"{name}\" already exists")]
    TagExists { name: String },
    /// 42602: a name that cannot be used (e.g. a tag named like a timestamp).
    #[error("invalid name \"{name}\": {message}")]
    InvalidName { name: String, message: String },

    #[error("column reference \"{name}\" is ambiguous")]
    AmbiguousColumn { name: String },

    #[error(
        "null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"
    )]
    NotNullViolation { table: String, column: String },

    #[error("value too long for column \"{column}\" of relation \"{table}\": type {type_name}")]
    ValueTooLong {
        table: String,
        column: String,
        type_name: String,
    },

    #[error("invalid value for column \"{column}\" of relation \"{table}\": {message}")]
    BadValue {
        table: String,
        column: String,
        message: String,
    },

    #[error("value out of range for column \"{column}\" of relation \"{table}\": {message}")]
    ValueOutOfRange {
        table: String,
        column: String,
        message: String,
    },

    #[error("unsupported type {type_name} for column \"{column}\"")]
    UnsupportedType { column: String, type_name: String },

    #[error("unrecognized configuration parameter \"{name}\"")]
    UnknownSetting { name: String },

    #[error("target lists can have at most {max} entries")]
    TooManyColumns { max: usize },

    #[error("schema \"{name}\" does not exist")]
    UnknownSchema { name: String },

    #[error("{message}")]
    InvalidTableDefinition { message: String },

    #[error("could not serialize access due to concurrent update of \"{table}\": {detail}")]
    SerializationFailure { table: String, detail: String },

    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    InFailedTransaction,

    #[error("cannot execute {statement} in a read-only transaction")]
    ReadOnlyTransaction { statement: String },

    #[error("{statement} can only be used in transaction blocks")]
    NoActiveTransaction { statement: String },

    #[error("{message}")]
    ActiveTransaction { message: String },

    #[error("savepoint \"{name}\" does not exist")]
    UnknownSavepoint { name: String },

    #[error("nextval: {detail}")]
    SequenceExhausted { name: String, detail: String },

    #[error("{message}")]
    ObjectNotInPrerequisiteState { message: String },

    /// A backup destination or restore target another process is writing into.
    #[error("{what} is in use: {detail}")]
    Busy { what: String, detail: String },

    /// A database, backup or file that was named does not exist.
    #[error("{what} does not exist")]
    Missing { what: String },

    /// A server-side file outside the folders the session may use.
    #[error("permission denied for file \"{path}\": {detail}")]
    FileAccessDenied { path: String, detail: String },

    /// A file's content does not fit what reads it (`COPY … FROM`, `read_csv`).
    #[error("bad data in file \"{file}\": {detail}")]
    BadFileData { file: String, detail: String },

    /// An error and where it happened (a `COPY`'s file and row); the
    /// SQLSTATE is the inner error's.
    #[error("{inner} ({context})")]
    WithContext { context: String, inner: Box<Error> },

    #[error(
        "cannot insert a non-DEFAULT value into column \"{column}\": it is an identity column defined as GENERATED ALWAYS"
    )]
    GeneratedAlways { column: String },

    #[error("invalid time travel target: {message}")]
    BadSnapshot { message: String },

    #[error("{feature} is not supported yet")]
    Unsupported { feature: String },

    #[error("invalid argument: {message}")]
    InvalidArgument { message: String },

    #[error("{what}: {size} {unit}, over the limit of {limit} ({limit_name})")]
    LimitExceeded {
        what: String,
        size: u64,
        limit: u64,
        unit: &'static str,
        limit_name: &'static str,
    },

    #[error("database at {location} is locked by another process ({detail})")]
    Locked { location: String, detail: String },

    /// Another process took this database over (its writer lease, its
    /// log): this one stops writing and never forks history.
    #[error("this process no longer owns the database for writing: {detail}")]
    Fenced { detail: String },

    /// A commit's log write failed on the way: it may or may not be
    /// durable (a reopened database shows which); writes stop until then.
    #[error(
        "the outcome of this commit is unknown: {detail}; the database refuses writes until it is reopened"
    )]
    OutcomeUnknown { detail: String },

    #[error("invalid database location {location}: {detail}")]
    InvalidLocation { location: String, detail: String },

    #[error("commit log is corrupt in {file} at byte {offset}: {detail}")]
    CorruptLog {
        file: String,
        offset: u64,
        detail: String,
    },

    #[error("stored data is corrupt: {detail}")]
    Corrupt { detail: String },

    #[error("data file {file} is damaged: {detail}")]
    CorruptFile { file: String, detail: String },

    #[error(
        "{file} is in format version {found}, but this build of DriftDB reads versions up to {supported}"
    )]
    FormatVersion {
        file: String,
        found: u32,
        supported: u32,
    },

    #[error(
        "commit too large: its log frame would be {bytes} bytes, over the limit of {limit} bytes (log_frame_bytes_max)"
    )]
    CommitTooLarge { bytes: u64, limit: u64 },

    #[error("the database refuses writes until it is reopened: {detail}")]
    Poisoned { detail: String },

    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// An object-store request failed after its retries; the message
    /// starts with what went wrong in a word ([`StorageFailure`]).
    #[error("object storage: {kind}: {0}", kind = StorageFailure::of(.0))]
    ObjectStore(#[from] object_store::Error),

    /// A read or write of stored data failed on the way (not damage): the
    /// statement failed and may be retried.
    #[error("storage I/O failed: {detail}")]
    StorageIo { detail: String },

    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),

    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),

    #[error("{0}")]
    DataFusion(Box<DataFusionError>),

    #[error("internal error: {0}")]
    Internal(String),
}

/// Why object storage could not be used, as far as the error says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFailure {
    /// No answer from the endpoint (refused, DNS, TLS, timeout): 08006.
    Unreachable,
    /// The bucket or container does not exist: 3D000.
    MissingBucket,
    /// Credentials missing or refused: 28000.
    Credentials,
    /// The credentials may not do this: 42501.
    Denied,
    /// The service kept answering "slow down" (429, 503) after every retry: 53000.
    Throttled,
    /// Anything else: 58030.
    Other,
}

impl StorageFailure {
    pub fn sqlstate(self) -> &'static str {
        match self {
            Self::Unreachable => "08006",
            Self::MissingBucket => "3D000",
            Self::Credentials => "28000",
            Self::Denied => "42501",
            Self::Throttled => "53000",
            Self::Other => "58030",
        }
    }

    /// What an object-store error (after its retries) says went wrong.
    pub fn of(err: &object_store::Error) -> Self {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            text.push_str(" / ");
            text.push_str(&inner.to_string());
            source = inner.source();
        }
        let has = |needle: &str| text.contains(needle);
        // S3 refuses unknown keys and bad signatures with 403, as it does
        // a denied action: the error code in the body tells them apart.
        let refused_key = has("InvalidAccessKeyId") || has("SignatureDoesNotMatch");
        match err {
            object_store::Error::Unauthenticated { .. } => return Self::Credentials,
            object_store::Error::PermissionDenied { .. } if refused_key => {
                return Self::Credentials;
            }
            object_store::Error::PermissionDenied { .. } => return Self::Denied,
            _ => {}
        }
        if has("NoSuchBucket") || has("ContainerNotFound") || has("bucket does not exist") {
            Self::MissingBucket
        } else if refused_key || has("401") {
            Self::Credentials
        } else if has("SlowDown") || has("503 Service Unavailable") || has("429") {
            Self::Throttled
        } else if has("error sending request")
            || has("Connection refused")
            || has("dns error")
            || has("timed out")
        {
            Self::Unreachable
        } else {
            Self::Other
        }
    }
}

impl std::fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unreachable => "endpoint unreachable",
            Self::MissingBucket => "bucket does not exist",
            Self::Credentials => "credentials refused",
            Self::Denied => "permission denied",
            Self::Throttled => "throttled",
            Self::Other => "request failed",
        })
    }
}

impl From<DataFusionError> for Error {
    fn from(err: DataFusionError) -> Self {
        match err {
            // Our own errors travel through DataFusion as `External`; unwrap them.
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => datafusion_error(DataFusionError::External(other)),
            },
            // An error shared between partitions: ours again if no one else holds it.
            DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
                Ok(inner) => Error::from(inner),
                Err(shared) => datafusion_error(DataFusionError::Shared(shared)),
            },
            DataFusionError::Context(ctx, inner) => match Error::from(*inner) {
                Error::DataFusion(df) => {
                    Error::DataFusion(Box::new(DataFusionError::Context(ctx, df)))
                }
                ours => ours,
            },
            other => datafusion_error(other),
        }
    }
}

/// A DataFusion error, unless it carries a damaged data file somewhere in
/// its chain of sources (a read through the verifying object store wrapped
/// in Parquet and Arrow errors): then that, so it keeps its SQLSTATE.
/// The name of a column reference that is not found because two columns
/// of a derived table share it (each under an internal alias, see
/// `sql::output_names`): PostgreSQL's ambiguous reference.
fn ambiguous_reference(err: &DataFusionError) -> Option<String> {
    match err {
        DataFusionError::SchemaError(e, _) => match e.as_ref() {
            datafusion::common::SchemaError::FieldNotFound {
                field,
                valid_fields,
            } => {
                let sharing = valid_fields
                    .iter()
                    .filter(|c| crate::sql::output_names::public_name(&c.name) == field.name)
                    .count();
                (sharing > 1).then(|| field.name.clone())
            }
            _ => None,
        },
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            ambiguous_reference(inner)
        }
        _ => None,
    }
}

fn datafusion_error(err: DataFusionError) -> Error {
    if let Some(name) = ambiguous_reference(&err) {
        return Error::AmbiguousColumn { name };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(current) = source {
        if let Some(Error::CorruptFile { file, detail }) = current.downcast_ref::<Error>() {
            return Error::CorruptFile {
                file: file.clone(),
                detail: detail.clone(),
            };
        }
        source = current.source();
    }
    // DataFusion formats some sources into text (e.g. "Failed to fetch
    // metadata for file …: {e}"): recognise our own message there.
    let text = err.to_string();
    if let Some((_, rest)) = text.split_once("data file ")
        && let Some((file, detail)) = rest.split_once(" is damaged: ")
    {
        return Error::CorruptFile {
            file: file.to_string(),
            detail: detail.to_string(),
        };
    }
    if is_storage_io(&err) {
        return Error::StorageIo { detail: text };
    }
    Error::DataFusion(Box::new(err))
}

/// Whether a read or write of stored data failed on the way: an object
/// store or I/O error anywhere in the chain, or formatted into a Parquet
/// reader's message.
fn is_storage_io(err: &DataFusionError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if current.is::<object_store::Error>() || current.is::<std::io::Error>() {
            return true;
        }
        source = current.source();
    }
    matches!(err.find_root(), DataFusionError::ParquetError(_))
        && err.to_string().contains("Object Store error")
}

impl From<Error> for DataFusionError {
    fn from(err: Error) -> Self {
        err.into_datafusion()
    }
}

impl From<sqlparser::parser::ParserError> for Error {
    fn from(err: sqlparser::parser::ParserError) -> Self {
        Error::Syntax {
            message: err.to_string(),
        }
    }
}

impl From<sqlparser::tokenizer::TokenizerError> for Error {
    fn from(err: sqlparser::tokenizer::TokenizerError) -> Self {
        Error::Syntax {
            message: err.to_string(),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Corrupt {
            detail: err.to_string(),
        }
    }
}

impl Error {
    /// The SQLSTATE code for this error (PostgreSQL's codes where one fits).
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::Syntax { .. } => "42601",
            Error::TooComplex { .. } => "54001",
            Error::BadParameter { .. } | Error::DatatypeMismatch { .. } => "42804",
            Error::CardinalityViolation { .. } => "21000",
            Error::BadParameterText { .. } => "22P02",
            Error::ParameterNotAllowed { .. } => "42P02",
            Error::UnknownTable { .. } => "42P01",
            Error::TableExists { .. } => "42P07",
            Error::UnknownColumn { .. } => "42703",
            Error::ColumnExists { .. } | Error::SystemColumnName { .. } => "42701",
            Error::UniqueViolation { .. } => "23505",
            Error::NotNullViolation { .. } => "23502",
            Error::CheckViolation { .. } | Error::CheckViolatedByExistingRow { .. } => "23514",
            Error::ConstraintExists { .. } | Error::TagExists { .. } => "42710",
            Error::InvalidName { .. } => "42602",
            Error::ForeignKeyMissing { .. } | Error::ForeignKeyReferenced { .. } => "23503",
            Error::InvalidForeignKey { .. } => "42830",
            Error::DependentObjects { .. } => "2BP01",
            Error::UnknownConstraint { .. }
            | Error::UnknownIndex { .. }
            | Error::UnknownTag { .. } => "42704",
            Error::AmbiguousColumn { .. } => "42702",
            Error::ValueTooLong { .. } => "22001",
            Error::BadValue { .. } => "22P02",
            Error::ValueOutOfRange { .. } => "22003",
            Error::UnsupportedType { .. } => "42704",
            Error::UnknownSetting { .. } => "42704",
            Error::TooManyColumns { .. } => "54011",
            Error::UnknownSchema { .. } => "3F000",
            Error::InvalidTableDefinition { .. } => "42P16",
            Error::SerializationFailure { .. } => "40001",
            Error::InFailedTransaction => "25P02",
            Error::ReadOnlyTransaction { .. } => "25006",
            Error::NoActiveTransaction { .. } => "25P01",
            Error::ActiveTransaction { .. } => "25001",
            Error::UnknownSavepoint { .. } => "3B001",
            Error::SequenceExhausted { .. } => "2200H",
            Error::ObjectNotInPrerequisiteState { .. } => "55000",
            Error::Missing { .. } => "58P01",
            Error::FileAccessDenied { .. } => "42501",
            Error::BadFileData { .. } => "22P04",
            Error::WithContext { inner, .. } => inner.sqlstate(),
            Error::GeneratedAlways { .. } => "428C9",
            Error::BadSnapshot { .. } => "22008",
            Error::Unsupported { .. } => "0A000",
            Error::InvalidArgument { .. } => "22023",
            Error::LimitExceeded { .. } => "54000",
            Error::Locked { .. } | Error::Fenced { .. } | Error::Busy { .. } => "55006",
            Error::InvalidLocation { .. } => "22023",
            Error::OutcomeUnknown { .. } => "08007",
            Error::CorruptLog { .. } | Error::Corrupt { .. } | Error::CorruptFile { .. } => "XX001",
            Error::FormatVersion { .. } => "55000",
            Error::CommitTooLarge { .. } => "54000",
            Error::Poisoned { .. } => "58030",
            Error::ObjectStore(e) => StorageFailure::of(e).sqlstate(),
            Error::Io(_) | Error::StorageIo { .. } => "58030",
            Error::Arrow(e) => arrow_sqlstate(e),
            Error::Parquet(_) => "XX001",
            Error::DataFusion(df) => datafusion_sqlstate(df),
            Error::Internal(_) => "XX000",
        }
    }

    /// Wrap this error so it can travel through DataFusion and come back out.
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// An internal error with a message (for adapters outside the engine).
    pub fn internal_message(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// 2BP01: dropping table `parent` while FOREIGN KEY `constraint` of `child` references it.
    pub(crate) fn referenced_table(parent: &str, constraint: &str, child: &str) -> Self {
        Error::DependentObjects {
            object: format!("drop table {parent}"),
            detail: format!(
                "constraint {constraint} on table {child} depends on it (use DROP … CASCADE)"
            ),
        }
    }

    pub(crate) fn unsupported(feature: impl Into<String>) -> Self {
        Error::Unsupported {
            feature: feature.into(),
        }
    }
}

/// The SQLSTATE of an error DataFusion carries from elsewhere: ours (in
/// whatever wraps it), or DataFusion's own again; otherwise internal.
fn external_sqlstate(err: &(dyn std::error::Error + 'static)) -> &'static str {
    if let Some(ours) = err.downcast_ref::<Error>() {
        return ours.sqlstate();
    }
    if let Some(theirs) = err.downcast_ref::<DataFusionError>() {
        return datafusion_sqlstate(theirs);
    }
    err.source().map_or("XX000", external_sqlstate)
}

/// Map DataFusion's own errors onto SQLSTATE classes.
fn datafusion_sqlstate(err: &DataFusionError) -> &'static str {
    match err {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::Plan(msg) if msg.contains("not found") => "42P01",
        // `SHOW nosuch`: PostgreSQL's unrecognized configuration parameter.
        DataFusionError::Plan(msg) if msg.contains("is not a variable") => "42704",
        DataFusionError::SchemaError(..) if ambiguous_reference(err).is_some() => "42702",
        DataFusionError::SchemaError(e, _)
            if matches!(
                e.as_ref(),
                datafusion::common::SchemaError::FieldNotFound { .. }
            ) =>
        {
            "42703"
        }
        DataFusionError::SchemaError(..) => "42000",
        DataFusionError::Plan(_) => "42000",
        DataFusionError::ArrowError(e, _) => arrow_sqlstate(e),
        // DataFusion names this case only in its message.
        DataFusionError::Execution(msg) if msg.contains("subquery returned more than one row") => {
            "21000"
        }
        DataFusionError::Execution(_) => "22000",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::Context(_, inner) => datafusion_sqlstate(inner),
        DataFusionError::Diagnostic(_, inner) => datafusion_sqlstate(inner),
        DataFusionError::Shared(inner) => datafusion_sqlstate(inner),
        DataFusionError::External(inner) => external_sqlstate(inner.as_ref()),
        // Several planning errors at once (e.g. every unknown column of a
        // SELECT list): the first one's.
        DataFusionError::Collection(errors) => errors.first().map_or("XX000", datafusion_sqlstate),
        // PostgreSQL: unrecognized configuration parameter.
        DataFusionError::Configuration(msg)
            if msg.to_ascii_lowercase().contains("could not find config")
                || msg.contains("not found") =>
        {
            "42704"
        }
        DataFusionError::Configuration(_) => "22023",
        DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => "58030",
        DataFusionError::ParquetError(_) => "XX001",
        _ => "XX000",
    }
}

/// The SQLSTATE of an Arrow kernel's error, as PostgreSQL names the case.
fn arrow_sqlstate(err: &arrow::error::ArrowError) -> &'static str {
    use arrow::error::ArrowError;
    match err {
        ArrowError::DivideByZero => "22012",
        ArrowError::ArithmeticOverflow(_) => "22003",
        // A value too large for its type, as arrow's kernels word it
        // (`abs` of the smallest integer, a decimal that does not fit).
        ArrowError::ComputeError(m)
        | ArrowError::InvalidArgumentError(m)
        | ArrowError::CastError(m)
            if m.contains("overflow") || m.contains("too large to store") =>
        {
            "22003"
        }
        ArrowError::ExternalError(inner) => external_sqlstate(inner.as_ref()),
        _ => "22000",
    }
}

/// Characters of a client's value an error message shows at most.
pub const MESSAGE_VALUE_CHARS_MAX: usize = 100;

/// `text` (a client's value) as an error message may show it: control
/// characters escaped (a NUL would end the message in C clients), cut
/// after [`MESSAGE_VALUE_CHARS_MAX`] characters.
pub fn printable(text: &str) -> String {
    let mut shown = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MESSAGE_VALUE_CHARS_MAX {
            shown.push('…');
            break;
        }
        match c.is_control() {
            true => shown.extend(c.escape_default()),
            false => shown.push(c),
        }
    }
    shown
}
