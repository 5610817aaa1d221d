//! `driftdb serve` settings: command line, then `DRIFTDB_*` environment
//! variables, then a TOML file (`--config`), then the defaults below.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::error::{Result, ServerError};

/// Default Flight SQL listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default largest gRPC message accepted or sent, in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Default most concurrent sessions (authenticated tokens).
pub const DEFAULT_MAX_SESSIONS: usize = 256;
/// Default idle time after which a session and its prepared statements are dropped, in seconds.
pub const DEFAULT_SESSION_IDLE_SECS: u64 = 30 * 60;
/// Default longest a query may run (planning, execution and streaming), in seconds.
pub const DEFAULT_QUERY_TIMEOUT_SECS: u64 = 15 * 60;
/// Default memory one query may hold, in MiB (operators that can spill, do).
pub const DEFAULT_QUERY_MEMORY_MIB: usize = 2048;
/// Default largest bulk ingest held for one atomic commit, in MiB.
pub const DEFAULT_INGEST_MAX_MIB: usize = 1024;
/// How long a failed login waits before it answers, in milliseconds.
pub const LOGIN_FAILURE_DELAY_MS: u64 = 750;
/// Default most parameter sets (rows of parameter values) one DoPut may bind.
pub const DEFAULT_PARAMETER_SETS_MAX: usize = 100_000;
/// Default most prepared statements one session may hold open.
pub const DEFAULT_PREPARED_STATEMENTS_MAX: usize = 1024;
/// Default most results one session may have started and not finished reading.
pub const DEFAULT_PARKED_RESULTS_MAX: usize = 64;
/// Default most password verifications (argon2, ~19 MiB each) running at once.
pub const DEFAULT_LOGIN_VERIFICATIONS_MAX: usize = 4;
/// Default most logins waiting for a verification slot; more are refused at once.
pub const DEFAULT_LOGIN_WAITERS_MAX: usize = 1024;
/// Default most open HTTP admin connections.
pub const DEFAULT_HTTP_CONNECTIONS_MAX: usize = 64;
/// Default time an HTTP admin connection has to send its request head and
/// take the answer, in milliseconds.
pub const DEFAULT_HTTP_REQUEST_TIMEOUT_MS: u64 = 5_000;

/// Command-line options of `driftdb serve`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Database location: a local folder, `memory://`, or object storage
    /// (`s3://bucket/prefix`, `gs://…`, `az://…`; endpoint and credentials
    /// from the standard `AWS_*`/`GOOGLE_*`/`AZURE_*` variables) [default: ./driftdb-data]
    #[arg(long, env = "DRIFTDB_DATA")]
    pub data: Option<String>,
    /// Flight SQL listen address [default: 127.0.0.1:50051]
    #[arg(long, env = "DRIFTDB_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Health and metrics HTTP address (off unless given)
    #[arg(long, env = "DRIFTDB_HTTP")]
    pub http: Option<SocketAddr>,
    /// A TOML file with any of these settings (keys as the long options, `-` → `_`)
    #[arg(long, env = "DRIFTDB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Turn authentication off (only allowed on a loopback address)
    #[arg(long, env = "DRIFTDB_NO_AUTH")]
    pub no_auth: bool,
    /// TLS certificate chain (PEM); needs --tls-key
    #[arg(long, env = "DRIFTDB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, env = "DRIFTDB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Create the demo tables first if the database is empty
    #[arg(long, env = "DRIFTDB_DEMO")]
    pub demo: bool,
    /// Largest gRPC message, bytes [default: 64 MiB]
    #[arg(long, env = "DRIFTDB_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Most concurrent sessions [default: 256]
    #[arg(long, env = "DRIFTDB_MAX_SESSIONS")]
    pub max_sessions: Option<usize>,
    /// Idle seconds before a session is dropped [default: 1800]
    #[arg(long, env = "DRIFTDB_SESSION_IDLE_SECS")]
    pub session_idle_secs: Option<u64>,
    /// Longest a query may run, seconds [default: 900]
    #[arg(long, env = "DRIFTDB_QUERY_TIMEOUT_SECS")]
    pub query_timeout_secs: Option<u64>,
    /// Memory one query may use, MiB [default: 2048]
    #[arg(long, env = "DRIFTDB_QUERY_MEMORY_MIB")]
    pub query_memory_mib: Option<usize>,
    /// Largest bulk ingest, MiB [default: 1024]
    #[arg(long, env = "DRIFTDB_INGEST_MAX_MIB")]
    pub ingest_max_mib: Option<usize>,
    /// Most rows in one bulk ingest [default: 67108864]
    #[arg(long, env = "DRIFTDB_INGEST_ROWS_MAX")]
    pub ingest_rows_max: Option<usize>,
    /// Most parameter sets (rows) bound to a prepared statement at once [default: 100000]
    #[arg(long, env = "DRIFTDB_PARAMETER_SETS_MAX")]
    pub parameter_sets_max: Option<usize>,
    /// Most prepared statements open in one session [default: 1024]
    #[arg(long, env = "DRIFTDB_PREPARED_STATEMENTS_MAX")]
    pub prepared_statements_max: Option<usize>,
    /// Most results a session has started and not finished reading [default: 64]
    #[arg(long, env = "DRIFTDB_PARKED_RESULTS_MAX")]
    pub parked_results_max: Option<usize>,
    /// Most password verifications running at once [default: 4]
    #[arg(long, env = "DRIFTDB_LOGIN_VERIFICATIONS_MAX")]
    pub login_verifications_max: Option<usize>,
    /// Most logins waiting for a verification; more are refused at once [default: 1024]
    #[arg(long, env = "DRIFTDB_LOGIN_WAITERS_MAX")]
    pub login_waiters_max: Option<usize>,
    /// Time an HTTP admin connection has to send its request, ms [default: 5000]
    #[arg(long, env = "DRIFTDB_HTTP_REQUEST_TIMEOUT_MS")]
    pub http_request_timeout_ms: Option<u64>,
    /// On object storage: how long the writer lease lasts unrenewed, ms [default: 30000]
    #[arg(long, env = "DRIFTDB_WRITER_LEASE_TTL_MS")]
    pub writer_lease_ttl_ms: Option<u64>,
    /// On object storage: MiB of data files cached on local disk, 0 for none [default: 1024]
    #[arg(long, env = "DRIFTDB_CACHE_MIB")]
    pub cache_mib: Option<u64>,
    /// Folders (and object-store prefixes, s3://bucket/prefix) whose files
    /// COPY and read_parquet/read_csv/read_json may use, comma-separated
    /// [default: none]
    #[arg(long, env = "DRIFTDB_FILE_ACCESS_DIRS", value_delimiter = ',')]
    pub file_access_dirs: Vec<PathBuf>,
}

/// The same settings as they may appear in the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<String>,
    listen: Option<SocketAddr>,
    http: Option<SocketAddr>,
    no_auth: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    demo: Option<bool>,
    max_message_bytes: Option<usize>,
    max_sessions: Option<usize>,
    session_idle_secs: Option<u64>,
    query_timeout_secs: Option<u64>,
    query_memory_mib: Option<usize>,
    ingest_max_mib: Option<usize>,
    ingest_rows_max: Option<usize>,
    parameter_sets_max: Option<usize>,
    prepared_statements_max: Option<usize>,
    parked_results_max: Option<usize>,
    login_verifications_max: Option<usize>,
    login_waiters_max: Option<usize>,
    http_request_timeout_ms: Option<u64>,
    writer_lease_ttl_ms: Option<u64>,
    cache_mib: Option<u64>,
    file_access_dirs: Option<Vec<PathBuf>>,
    /// Object-store settings (`[storage]`: `aws_endpoint = "…"`, …).
    storage: Option<driftdb_engine::storage::location::StorageOptions>,
}

/// Resolved server settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data: String,
    pub listen: SocketAddr,
    pub http: Option<SocketAddr>,
    pub auth: bool,
    pub tls: Option<TlsFiles>,
    pub demo: bool,
    pub limits: ServerLimits,
    /// Object-store settings from the config file, over the environment's.
    pub storage: driftdb_engine::storage::location::StorageOptions,
}

/// Certificate and key files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Every limit the server enforces (see the `DEFAULT_*` constants above).
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub max_message_bytes: usize,
    pub max_sessions: usize,
    pub session_idle: Duration,
    pub query_timeout: Duration,
    pub query_memory_bytes: usize,
    pub ingest_max_bytes: usize,
    /// Rows in one bulk ingest; handed to the engine (`Limits::ingest_rows_max`)
    /// and checked while the upload is decoded.
    pub ingest_rows_max: usize,
    /// Parameter sets (rows) one DoPut may bind to a prepared statement.
    pub parameter_sets_max: usize,
    /// Prepared statements open in one session.
    pub prepared_statements_max: usize,
    /// Results one session has started (GetFlightInfo) and not finished reading (DoGet).
    pub parked_results_max: usize,
    pub login_failure_delay: Duration,
    /// Password verifications running at once.
    pub login_verifications_max: usize,
    /// Logins waiting for a verification slot.
    pub login_waiters_max: usize,
    /// Open HTTP admin connections.
    pub http_connections_max: usize,
    /// Time an HTTP admin connection has to send its request and take the answer.
    pub http_request_timeout: Duration,
    /// On object storage, how long the writer lease lasts unrenewed
    /// (handed to the engine, `Limits::writer_lease_ttl`).
    pub writer_lease_ttl: Duration,
    /// On object storage, bytes of data files cached on local disk
    /// (handed to the engine, `Limits::data_cache_bytes_max`).
    pub data_cache_bytes: u64,
    /// The server-side files sessions may read and write (none by default).
    pub file_access: driftdb_engine::FileAccess,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_sessions: DEFAULT_MAX_SESSIONS,
            session_idle: Duration::from_secs(DEFAULT_SESSION_IDLE_SECS),
            query_timeout: Duration::from_secs(DEFAULT_QUERY_TIMEOUT_SECS),
            query_memory_bytes: DEFAULT_QUERY_MEMORY_MIB << 20,
            ingest_max_bytes: DEFAULT_INGEST_MAX_MIB << 20,
            ingest_rows_max: driftdb_engine::Limits::default().ingest_rows_max,
            parameter_sets_max: DEFAULT_PARAMETER_SETS_MAX,
            prepared_statements_max: DEFAULT_PREPARED_STATEMENTS_MAX,
            parked_results_max: DEFAULT_PARKED_RESULTS_MAX,
            login_failure_delay: Duration::from_millis(LOGIN_FAILURE_DELAY_MS),
            login_verifications_max: DEFAULT_LOGIN_VERIFICATIONS_MAX,
            login_waiters_max: DEFAULT_LOGIN_WAITERS_MAX,
            http_connections_max: DEFAULT_HTTP_CONNECTIONS_MAX,
            http_request_timeout: Duration::from_millis(DEFAULT_HTTP_REQUEST_TIMEOUT_MS),
            writer_lease_ttl: driftdb_engine::limits::WRITER_LEASE_TTL_DEFAULT,
            data_cache_bytes: driftdb_engine::limits::DATA_CACHE_BYTES_DEFAULT,
            file_access: driftdb_engine::FileAccess::none(),
        }
    }
}

impl ServeConfig {
    /// Merge the command line (with its environment variables) over the TOML file.
    pub fn resolve(args: ServeArgs) -> Result<Self> {
        let file = match &args.config {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        let defaults = ServerLimits::default();
        let listen = match args.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse().expect("valid default address"),
        };
        let auth = !(args.no_auth || file.no_auth.unwrap_or(false));
        if !auth && !listen.ip().is_loopback() {
            return Err(ServerError::Config(format!(
                "--no-auth is only allowed on a loopback address, not {listen}"
            )));
        }
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(ServerError::Config(
                    "TLS needs both a certificate and a key".into(),
                ));
            }
        };
        let secs = |v: Option<u64>, d: Duration| v.map(Duration::from_secs).unwrap_or(d);
        let limits = ServerLimits {
            max_message_bytes: args
                .max_message_bytes
                .or(file.max_message_bytes)
                .unwrap_or(defaults.max_message_bytes),
            max_sessions: args
                .max_sessions
                .or(file.max_sessions)
                .unwrap_or(defaults.max_sessions),
            session_idle: secs(
                args.session_idle_secs.or(file.session_idle_secs),
                defaults.session_idle,
            ),
            query_timeout: secs(
                args.query_timeout_secs.or(file.query_timeout_secs),
                defaults.query_timeout,
            ),
            query_memory_bytes: args
                .query_memory_mib
                .or(file.query_memory_mib)
                .map_or(defaults.query_memory_bytes, |m| m << 20),
            ingest_max_bytes: args
                .ingest_max_mib
                .or(file.ingest_max_mib)
                .map_or(defaults.ingest_max_bytes, |m| m << 20),
            ingest_rows_max: args
                .ingest_rows_max
                .or(file.ingest_rows_max)
                .unwrap_or(defaults.ingest_rows_max),
            parameter_sets_max: args
                .parameter_sets_max
                .or(file.parameter_sets_max)
                .unwrap_or(defaults.parameter_sets_max),
            prepared_statements_max: args
                .prepared_statements_max
                .or(file.prepared_statements_max)
                .unwrap_or(defaults.prepared_statements_max),
            parked_results_max: args
                .parked_results_max
                .or(file.parked_results_max)
                .unwrap_or(defaults.parked_results_max),
            login_failure_delay: defaults.login_failure_delay,
            login_verifications_max: args
                .login_verifications_max
                .or(file.login_verifications_max)
                .unwrap_or(defaults.login_verifications_max)
                .max(1),
            login_waiters_max: args
                .login_waiters_max
                .or(file.login_waiters_max)
                .unwrap_or(defaults.login_waiters_max),
            http_connections_max: defaults.http_connections_max,
            http_request_timeout: args
                .http_request_timeout_ms
                .or(file.http_request_timeout_ms)
                .map_or(defaults.http_request_timeout, Duration::from_millis),
            writer_lease_ttl: args
                .writer_lease_ttl_ms
                .or(file.writer_lease_ttl_ms)
                .map_or(defaults.writer_lease_ttl, Duration::from_millis),
            data_cache_bytes: args
                .cache_mib
                .or(file.cache_mib)
                .map_or(defaults.data_cache_bytes, |m| m << 20),
            file_access: file_access(args.file_access_dirs, file.file_access_dirs)?,
        };
        Ok(Self {
            data: args
                .data
                .or(file.data)
                .unwrap_or_else(|| "./driftdb-data".into()),
            listen,
            http: args.http.or(file.http),
            auth,
            tls,
            demo: args.demo || file.demo.unwrap_or(false),
            limits,
            storage: file.storage.unwrap_or_default(),
        })
    }
}

fn read_file_config(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))
}

/// The folders (and object-store prefixes) of `--file-access-dirs` (else
/// the file's), each folder checked to exist.
fn file_access(
    args: Vec<PathBuf>,
    file: Option<Vec<PathBuf>>,
) -> Result<driftdb_engine::FileAccess> {
    let dirs = match args.is_empty() {
        true => file.unwrap_or_default(),
        false => args,
    };
    driftdb_engine::FileAccess::under(&dirs)
        .map_err(|e| ServerError::Config(format!("--file-access-dirs: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_wins_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("driftdb.toml");
        std::fs::write(
            &path,
            "data = \"/srv/db\"\nmax_sessions = 7\nquery_timeout_secs = 5\n",
        )
        .unwrap();
        let config = ServeConfig::resolve(ServeArgs {
            config: Some(path),
            max_sessions: Some(9),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.data, "/srv/db");
        assert_eq!(config.limits.max_sessions, 9);
        assert_eq!(config.limits.query_timeout, Duration::from_secs(5));
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert!(config.auth);
    }

    #[test]
    fn no_auth_is_refused_off_loopback() {
        let refused = ServeConfig::resolve(ServeArgs {
            no_auth: true,
            listen: Some("0.0.0.0:50051".parse().unwrap()),
            ..Default::default()
        });
        assert!(matches!(refused, Err(ServerError::Config(_))));
        let loopback = ServeConfig::resolve(ServeArgs {
            no_auth: true,
            ..Default::default()
        });
        assert!(!loopback.unwrap().auth);
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("driftdb.toml");
        std::fs::write(&path, "max_sesions = 7\n").unwrap();
        let err = ServeConfig::resolve(ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("max_sesions"), "{err}");
    }
}
