//! DriftDB over Flight SQL: a real `driftdb serve` process on a loopback
//! port, queried with the `arrow-flight` Flight SQL client (execute, then
//! DoGet every endpoint), so the figure includes planning on the server,
//! Arrow IPC encoding, gRPC and decoding in the client.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tonic::transport::Channel;

use super::{Error, Result};

/// How long `driftdb serve` may take to print its address.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(120);
/// The password the benchmark's server is started with (loopback only).
const PASSWORD: &str = "driftdb-bench";

/// A running `driftdb serve` and a logged-in client.
pub struct FlightEngine {
    server: Child,
    client: FlightSqlServiceClient<Channel>,
}

impl FlightEngine {
    /// Serve the database in `data` with the `driftdb` binary `binary`.
    pub async fn start(binary: &Path, data: &Path) -> Result<Self> {
        if !binary.exists() {
            return Err(flight_error(format!(
                "no driftdb binary at {} (build it: cargo build --release -p driftdb-server, or pass --driftdb)",
                binary.display()
            )));
        }
        let mut server = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("DRIFTDB_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .spawn()?;
        let address = match announced_address(&mut server) {
            Ok(address) => address,
            Err(e) => {
                let _ = server.kill();
                return Err(e);
            }
        };
        let channel = Channel::from_shared(format!("http://{address}"))
            .map_err(|e| flight_error(e.to_string()))?
            .connect()
            .await
            .map_err(|e| flight_error(e.to_string()))?;
        let mut client = FlightSqlServiceClient::new(channel);
        client
            .handshake("driftdb", PASSWORD)
            .await
            .map_err(|e| flight_error(e.to_string()))?;
        Ok(Self { server, client })
    }

    /// Every batch of `sql`'s result.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<RecordBatch>> {
        let info = self
            .client
            .execute(sql.to_string(), None)
            .await
            .map_err(|e| flight_error(e.to_string()))?;
        let mut batches = Vec::new();
        for endpoint in &info.endpoint {
            let ticket = endpoint
                .ticket
                .clone()
                .ok_or_else(|| flight_error("an endpoint without a ticket".into()))?;
            let stream = self
                .client
                .do_get(ticket)
                .await
                .map_err(|e| flight_error(e.to_string()))?;
            let mut read: Vec<RecordBatch> = stream
                .try_collect()
                .await
                .map_err(|e| flight_error(e.to_string()))?;
            batches.append(&mut read);
        }
        Ok(batches)
    }

    /// Stop the server (SIGKILL is fine: the benchmark only read).
    pub fn stop(mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The address `driftdb serve` prints once it listens.
fn announced_address(server: &mut Child) -> Result<String> {
    let stdout = server
        .stdout
        .take()
        .ok_or_else(|| flight_error("no stdout".into()))?;
    driftdb_server::serve::announced_address(stdout, SERVER_START_TIMEOUT)
        .ok_or_else(|| flight_error("driftdb serve did not announce its address".into()))
}

/// The `driftdb` binary next to this program (both land in the same target folder).
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("driftdb")))
        .unwrap_or_else(|| PathBuf::from("driftdb"))
}

fn flight_error(detail: String) -> Error {
    Error::Peer {
        peer: super::engines::DRIFTDB_FLIGHT.into(),
        detail,
    }
}
