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

/// Command-line options of `driftdb serve`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Database location: a local folder or `memory://` [default: ./driftdb-data]
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
}

/// Certificate and key files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Every limit the server enforces.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub max_message_bytes: usize,
    pub max_sessions: usize,
    pub session_idle: Duration,
    pub query_timeout: Duration,
    pub query_memory_bytes: usize,
    pub ingest_max_bytes: usize,
    pub login_failure_delay: Duration,
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
            login_failure_delay: Duration::from_millis(LOGIN_FAILURE_DELAY_MS),
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
            login_failure_delay: defaults.login_failure_delay,
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
        })
    }
}

fn read_file_config(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServerError::Config(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))
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
