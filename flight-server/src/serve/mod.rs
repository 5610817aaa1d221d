//! `driftdb serve`: the engine over Arrow Flight SQL.
//!
//! ## Module map
//! - [`config`]: settings from the command line, `DRIFTDB_*` and a TOML file; every limit.
//! - [`auth`]: users with argon2 password hashes, basic → bearer token handshake.
//! - [`sessions`]: one SQL session per token; started queries waiting for DoGet.
//! - [`service`]: the `FlightSqlService` implementation.
//! - [`dispatch`]: the service as registered, a SQLSTATE on every status.
//! - [`results`]: streaming results as Flight data, with cancel and deadline.
//! - [`ipc_guard`]: decoding client Arrow IPC data; a decoder panic is a bad request.
//! - [`metadata`]: catalogs, tables, keys, SqlInfo, XDBC types.
//! - [`http`]: `/health` and `/metrics` over plain HTTP.
//! - [`error`]: the server's error type and its gRPC mapping.

pub mod auth;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod http;
pub mod ipc_guard;
pub mod metadata;
pub mod results;
pub mod service;
pub mod sessions;
pub mod transactions;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use driftdb_engine::{Database, Session};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use config::{ServeArgs, ServeConfig};
pub use error::ServerError;

use auth::{PASSWORD_VARIABLE, Users};
use dispatch::Dispatch;
use service::{DriftFlightSql, ServerState};

/// How often idle sessions and unfetched results are swept (at most; a short
/// idle limit sweeps more often).
const SWEEP_INTERVAL_MAX: Duration = Duration::from_secs(5);

/// Run the server until SIGINT or SIGTERM.
pub async fn run(config: ServeConfig) -> error::Result<()> {
    ipc_guard::install_panic_hook();
    let engine_limits = driftdb_engine::Limits {
        ingest_rows_max: config.limits.ingest_rows_max,
        writer_lease_ttl: config.limits.writer_lease_ttl,
        data_cache_bytes_max: config.limits.data_cache_bytes,
        ..Default::default()
    };
    let db = Database::open_configured(&config.data, engine_limits, &config.storage).await?;
    if config.demo {
        let mut session = Session::new(&db);
        if crate::demo::create_demo(&mut session).await? {
            println!("Created the demo database in {}", db.location());
        }
    }
    let opened = open_users(&db, &config.data).await?;
    if let Some(password) = &opened.generated_password {
        println!(
            "Created user {:?} with password {password:?} (shown once; only its hash is stored)",
            auth::DEFAULT_USER
        );
    }
    let state = Arc::new(ServerState::new(
        db.clone(),
        opened.users,
        config.limits.clone(),
        config.auth,
    ));
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let address = listener.local_addr()?;
    if let Some(http) = config.http {
        http::spawn(http, state.clone()).await?;
    }
    tokio::spawn(sweep(state.clone()));
    print_banner(&config, address);

    let service = FlightServiceServer::new(Dispatch(DriftFlightSql::new(state.clone())))
        .max_decoding_message_size(config.limits.max_message_bytes)
        .max_encoding_message_size(config.limits.max_message_bytes);
    let mut server = Server::builder();
    if let Some(tls) = &config.tls {
        let identity = Identity::from_pem(std::fs::read(&tls.cert)?, std::fs::read(&tls.key)?);
        server = server.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    // TCP_NODELAY per accepted connection (the builder's setting only
    // applies when tonic binds the socket itself).
    let incoming = TcpListenerStream::new(listener);
    let incoming = futures::StreamExt::map(incoming, |conn| {
        conn.inspect(|stream| {
            let _ = stream.set_nodelay(true);
        })
    });
    let stopping = state.clone();
    let shutdown = async move {
        shutdown_signal().await;
        eprintln!("Shutting down: refusing new calls, cancelling running queries");
        stopping.queries.cancel_all();
    };
    server
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    eprintln!("Flushing to Parquet");
    db.persist().await?;
    db.close().await?;
    Ok(())
}

/// The users of the server: `users.json` in the database's local folder,
/// or the `users.json` object beside the data on object storage; kept in
/// memory only for `memory://`.
async fn open_users(db: &Database, data: &str) -> error::Result<auth::UsersOpened> {
    let password = std::env::var(PASSWORD_VARIABLE).ok();
    if !db.is_object_store() {
        return Users::open(local_folder(data), password);
    }
    let stored = db.read_side_object(auth::USERS_FILE).await?;
    let (opened, to_store) = Users::from_stored(stored.as_deref(), auth::USERS_FILE, password)?;
    if let Some(bytes) = to_store {
        db.write_side_object(auth::USERS_FILE, bytes).await?;
    }
    Ok(opened)
}

/// The local folder a database lives in, for the users file.
fn local_folder(data: &str) -> Option<PathBuf> {
    if data.starts_with("memory://") {
        return None;
    }
    Some(PathBuf::from(data.strip_prefix("file://").unwrap_or(data)))
}

/// What the banner says just before the address (`grpc://host:port`).
const BANNER_ADDRESS_PREFIX: &str = "serving Flight SQL on grpc://";

/// The address a `driftdb serve` child announces on `stdout` (plain
/// gRPC), read on a helper thread; None when it exits or `timeout` passes
/// first. For programs that start a server: tests, benchmarks.
pub fn announced_address(stdout: std::process::ChildStdout, timeout: Duration) -> Option<String> {
    use std::io::BufRead;
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split(BANNER_ADDRESS_PREFIX).nth(1) {
                let _ = found.send(rest.trim().to_string());
            }
        }
    });
    address.recv_timeout(timeout).ok()
}

fn print_banner(config: &ServeConfig, address: std::net::SocketAddr) {
    let scheme = if config.tls.is_some() {
        "grpc+tls"
    } else {
        "grpc"
    };
    println!(
        "DriftDB {} serving Flight SQL on {scheme}://{address}",
        env!("CARGO_PKG_VERSION")
    );
    println!("Data: {}", config.data);
    let credentials = if config.auth {
        format!(
            ", db_kwargs={{\"username\": \"{}\", \"password\": \"<password>\"}}",
            auth::DEFAULT_USER
        )
    } else {
        String::new()
    };
    println!("Connect from Python (pip install adbc-driver-flightsql pyarrow):");
    println!("  import adbc_driver_flightsql.dbapi as flight_sql");
    println!("  conn = flight_sql.connect(\"{scheme}://{address}\"{credentials})");
    println!("  conn.cursor().execute(\"SELECT 1\").fetch_arrow_table()");
}

/// Periodically drop idle sessions and results nobody fetched.
async fn sweep(state: Arc<ServerState>) {
    let every = SWEEP_INTERVAL_MAX.min(state.limits.session_idle / 2);
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
    loop {
        ticks.tick().await;
        let dropped = state.sessions.drop_idle();
        if dropped > 0 {
            tracing::info!(dropped, "dropped idle sessions");
        }
        state.queries.drop_stale(state.limits.query_timeout);
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
