//! Flight fetch: how fast a large result leaves `driftdb serve`.
//!
//! DriftDB serves the TPC-H database and the harness fetches
//! `SELECT * FROM lineitem` over Flight SQL (execute, then DoGet every
//! endpoint) with the `arrow-flight` client. The peer is a `pyarrow.flight`
//! server (`peers/flight_memory_server.py`) holding exactly the batches
//! DriftDB sent, in memory, fetched by the same client with one DoGet: the
//! ceiling of gRPC + Arrow IPC on this machine, with no SQL and no storage.
//! Both results must hold the same rows before a time counts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use arrow::compute::concat_batches;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use arrow_flight::{FlightClient, Ticket};
use futures::TryStreamExt;
use tonic::transport::Channel;

use super::engines::DRIFTDB;
use super::flight::FlightEngine;
use super::report::{QueryFigures, Report};
use super::{Error, Result};

/// The peer's name in reports.
pub const PYARROW_FLIGHT: &str = "pyarrow-flight";

/// The large result fetched.
const FETCH_SQL: &str = "SELECT * FROM lineitem";

/// What one `run flight` invocation runs.
pub struct FetchRun<'a> {
    /// The DriftDB database to serve.
    pub database: &'a Path,
    pub scale: f64,
    pub runs: usize,
    pub python: &'a Path,
    pub driftdb_binary: &'a Path,
}

/// Time the fetch from DriftDB, then the same batches from the peer.
pub async fn run(plan: FetchRun<'_>) -> Result<Report> {
    let mut engine = FlightEngine::start(plan.driftdb_binary, plan.database).await?;
    let measured = time_fetches(&mut Source::DriftDb(&mut engine), plan.runs).await;
    engine.stop();
    let (driftdb_times, batches) = measured?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let work = tempfile::tempdir()?;
    let ipc = work.path().join("result.arrow");
    write_ipc(&ipc, &batches)?;
    // The result's size as Arrow IPC: about what crosses the wire.
    let bytes = std::fs::metadata(&ipc)?.len();
    let mut peer = MemoryServer::start(plan.python, &ipc)?;
    let measured = match peer.client().await {
        Ok(mut client) => time_fetches(&mut Source::Peer(&mut client), plan.runs).await,
        Err(e) => Err(e),
    };
    peer.stop();
    let (peer_times, peer_batches) = measured?;

    let mut figures = QueryFigures::new(
        format!("{FETCH_SQL} ({:.0} MB as Arrow IPC)", bytes as f64 / 1e6),
        rows,
    );
    figures.record(DRIFTDB, &driftdb_times);
    match same_rows(&batches, &peer_batches)? {
        Some(why) => {
            figures.mismatches.insert(PYARROW_FLIGHT.into(), why);
        }
        None => figures.record(PYARROW_FLIGHT, &peer_times),
    }
    let versions = BTreeMap::from([(PYARROW_FLIGHT.to_string(), peer.version.clone())]);
    Ok(Report::new(
        "flight-fetch",
        plan.scale,
        plan.runs,
        vec![DRIFTDB.into(), PYARROW_FLIGHT.into()],
        versions,
        vec![figures],
    ))
}

/// Where a fetch goes.
enum Source<'a> {
    DriftDb(&'a mut FlightEngine),
    Peer(&'a mut FlightClient),
}

impl Source<'_> {
    async fn fetch(&mut self) -> Result<Vec<RecordBatch>> {
        match self {
            Source::DriftDb(engine) => engine.query(FETCH_SQL).await,
            Source::Peer(client) => fetch_all(client).await,
        }
    }
}

/// One warm-up fetch and `runs` timed ones (ms), with the last fetch's batches.
async fn time_fetches(
    source: &mut Source<'_>,
    runs: usize,
) -> Result<(Vec<f64>, Vec<RecordBatch>)> {
    let mut batches = source.fetch().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        batches = source.fetch().await?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok((times, batches))
}

/// Every batch of one DoGet from the peer.
async fn fetch_all(client: &mut FlightClient) -> Result<Vec<RecordBatch>> {
    let stream = client
        .do_get(Ticket::new("all"))
        .await
        .map_err(|e| peer_error(e.to_string()))?;
    stream
        .try_collect()
        .await
        .map_err(|e| peer_error(e.to_string()))
}

fn write_ipc(path: &Path, batches: &[RecordBatch]) -> Result<()> {
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| Error::Usage(format!("{FETCH_SQL} returned no batches")))?;
    let mut writer = FileWriter::try_new(std::fs::File::create(path)?, &schema)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(())
}

/// Why `theirs` does not hold the same rows as `ours`, in order; None when it does.
fn same_rows(ours: &[RecordBatch], theirs: &[RecordBatch]) -> Result<Option<String>> {
    let count = |b: &[RecordBatch]| b.iter().map(|b| b.num_rows()).sum::<usize>();
    if count(ours) != count(theirs) {
        return Ok(Some(format!("{} rows vs {}", count(theirs), count(ours))));
    }
    let (Some(first), Some(_)) = (ours.first(), theirs.first()) else {
        return Ok(None);
    };
    let ours = concat_batches(&first.schema(), ours)?;
    let theirs = concat_batches(&theirs[0].schema(), theirs)?;
    let differing = ours
        .columns()
        .iter()
        .zip(theirs.columns())
        .position(|(a, b)| a.to_data() != b.to_data());
    Ok(differing.map(|c| format!("column {} differs", first.schema().field(c).name())))
}

/// The `pyarrow.flight` peer, serving one IPC file.
struct MemoryServer {
    process: Child,
    port: u16,
    version: String,
}

impl MemoryServer {
    fn start(python: &Path, ipc: &Path) -> Result<Self> {
        let mut process = Command::new(python)
            .arg(super::engines::peer_script("flight_memory_server.py"))
            .arg("--ipc")
            .arg(ipc)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| peer_error(format!("cannot run {}: {e}", python.display())))?;
        let stdout = process
            .stdout
            .take()
            .ok_or_else(|| peer_error("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut announced = || lines.next().and_then(|l| l.ok()).unwrap_or_default();
        let port = announced()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok());
        let version = announced();
        match port {
            Some(port) => Ok(Self {
                process,
                port,
                version,
            }),
            None => {
                let _ = process.kill();
                Err(peer_error("the server did not announce its port".into()))
            }
        }
    }

    async fn client(&self) -> Result<FlightClient> {
        let channel = Channel::from_shared(format!("http://127.0.0.1:{}", self.port))
            .map_err(|e| peer_error(e.to_string()))?
            .connect()
            .await
            .map_err(|e| peer_error(e.to_string()))?;
        Ok(FlightClient::new(channel))
    }

    fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn peer_error(detail: String) -> Error {
    Error::Peer {
        peer: PYARROW_FLIGHT.into(),
        detail,
    }
}
