//! Start a real `driftdb serve` process and connect to it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow_flight::FlightInfo;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tonic::Code;
use tonic::transport::Channel;

pub const PASSWORD: &str = "rust-test-password";

pub struct Server {
    pub address: String,
    /// The HTTP admin address, when started with `--http`.
    pub http_address: Option<String>,
    child: Child,
    _data: tempfile::TempDir,
}

impl Server {
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_with_stderr(extra, Stdio::inherit()).await
    }

    /// Start the server with its log (stderr) going to `stderr`.
    pub async fn start_with_stderr(extra: &[&str], stderr: Stdio) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_driftdb"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .args(extra)
            .env("DRIFTDB_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (address, http_address) = announced(stdout, Duration::from_secs(60))
            .expect("driftdb serve starts and prints its address");
        Self {
            address,
            http_address,
            child,
            _data: data,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, and the server must exit cleanly.
    pub async fn stop(mut self) {
        let pid = self.child.id();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let status =
            tokio::task::spawn_blocking(move || wait_with_timeout(child, Duration::from_secs(30)))
                .await
                .unwrap();
        assert!(status.success(), "clean exit on SIGTERM: {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Flight address the server announces, and the HTTP one (printed
/// before it) if any.
fn announced(
    stdout: std::process::ChildStdout,
    timeout: Duration,
) -> Option<(String, Option<String>)> {
    use std::io::BufRead;
    let (found, addresses) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut http = None;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("Health and metrics on http://").nth(1) {
                http = rest.split('/').next().map(str::to_string);
            }
            if let Some(rest) = line.split("serving Flight SQL on grpc://").nth(1) {
                let _ = found.send((rest.trim().to_string(), http.clone()));
            }
        }
    });
    addresses.recv_timeout(timeout).ok()
}

fn wait_with_timeout(mut child: Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop within {timeout:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Flight SQL client the tests use.
pub type Client = FlightSqlServiceClient<Channel>;

pub async fn raw_client(server: &Server) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", server.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    FlightSqlServiceClient::new(channel)
}

/// A client logged in as the default user.
pub async fn connect(server: &Server) -> FlightSqlServiceClient<Channel> {
    let mut client = raw_client(server).await;
    client.handshake("driftdb", PASSWORD).await.unwrap();
    assert!(client.token().is_some(), "handshake returns a bearer token");
    client
}

/// What reading a query's first batch gave.
pub type FirstBatch = Result<Option<RecordBatch>, arrow_flight::error::FlightError>;

/// Start a query that runs for minutes and begin reading it in the
/// background; returns its FlightInfo and the reader's outcome.
pub async fn start_long_read(
    client: &mut FlightSqlServiceClient<Channel>,
) -> (FlightInfo, tokio::task::JoinHandle<FirstBatch>) {
    let sql = "SELECT count(*) FROM generate_series(1, 20000000000) AS g(x)";
    let info = client.execute(sql.into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut reader = client.do_get(ticket).await.unwrap();
    let reading = tokio::spawn(async move { reader.try_next().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    (info, reading)
}

/// Every batch of every endpoint of `info`.
pub async fn collect(
    client: &mut FlightSqlServiceClient<Channel>,
    info: &FlightInfo,
) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in &info.endpoint {
        let stream = client
            .do_get(endpoint.ticket.clone().unwrap())
            .await
            .unwrap();
        batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    batches
}

/// The gRPC code and message inside a client error.
pub fn status_of(err: &impl std::fmt::Display) -> (Code, String) {
    let text = err.to_string();
    let code = [
        Code::InvalidArgument,
        Code::NotFound,
        Code::AlreadyExists,
        Code::FailedPrecondition,
        Code::Unauthenticated,
        Code::Aborted,
        Code::Cancelled,
        Code::ResourceExhausted,
        Code::DeadlineExceeded,
        Code::Unimplemented,
    ]
    .into_iter()
    .find(|c| text.contains(c.description()))
    .unwrap_or(Code::Unknown);
    (code, text)
}
