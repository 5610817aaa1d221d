//! Fuzzing the Flight SQL surface of a real `driftdb serve` (proptest:
//! cargo-fuzz needs a nightly toolchain). Four targets, each against its
//! own server: GetFlightInfo with random and changed descriptors (every
//! Flight SQL command, SQL from the engine's `.slt` corpus, handles real
//! and made up, unknown Any types, raw bytes, paths), DoGet with random
//! and changed tickets, DoAction with every action type and matching,
//! mismatched or random bodies, and DoPut with ingest, parameter and
//! update descriptors and streams whose messages are changed, dropped or
//! repeated. What the server hands out (prepared statements, transactions,
//! tickets) feeds later cases.
//!
//! Every call must end within [`CALL_TIMEOUT`] in an answer or a gRPC
//! status that is not a broken transport (`Unknown`, `Unavailable`) nor
//! `Internal`, and carries a SQLSTATE (`x-driftdb-sqlstate`) other than
//! XX000; afterwards the server must answer `SELECT 1`, still be running,
//! have logged no panic, and stop cleanly.
//!
//! Case counts: each target has a CI count (`*_CASES_CI`);
//! `DRIFTDB_FUZZ_CASES=<n>` multiplies them (`scripts/fuzz.sh` is the long
//! run). Each run prints its seed; `PROPTEST_RNG_SEED=<seed>` replays it.

mod inputs;

use std::collections::BTreeMap;
use std::future::Future;
use std::process::Stdio;
use std::time::{Duration, Instant};

use arrow::array::Int64Array;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{
    ActionBeginSavepointResult, ActionBeginTransactionResult, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandStatementQuery, ProstMessageExt,
};
use arrow_flight::{Action, FlightData, FlightDescriptor, Ticket};
use futures::{StreamExt, TryStreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};

use crate::harness::{Server, collect, connect};
use inputs::{ActionCase, Known, TicketCase, Upload, Wire};

/// Cases of each target in CI.
const INFO_CASES_CI: u32 = 4_000;
const TICKET_CASES_CI: u32 = 2_000;
const ACTION_CASES_CI: u32 = 4_000;
const PUT_CASES_CI: u32 = 3_000;
/// The environment variable that multiplies every target's case count.
const CASES_ENV: &str = "DRIFTDB_FUZZ_CASES";
/// A call (with reading its whole answer) still running after this long is a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The server's own limit on a query, well inside [`CALL_TIMEOUT`].
const QUERY_TIMEOUT_SECS: &str = "5";
/// Messages of a DoGet answer read before the rest is dropped.
const MESSAGES_READ_MAX: usize = 8;
/// Handles and tickets remembered for later cases.
const KNOWN_MAX: usize = 64;
/// Shrinking steps after a failure (each one is a call to the server).
const SHRINK_ITERS_MAX: u32 = 128;
/// The response header that carries an error's SQLSTATE.
const SQLSTATE_HEADER: &str = "x-driftdb-sqlstate";
/// What the Rust runtime prints when a thread panics.
const PANIC_MARKER: &str = "panicked at";
/// Tables the corpus and the cases refer to.
const SETUP: &[&str] = &[
    "CREATE TABLE t (id INT PRIMARY KEY, name TEXT)",
    "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    "CREATE TABLE users (id INT PRIMARY KEY, email TEXT UNIQUE, team INT, handle TEXT)",
    "INSERT INTO users VALUES (1, 'a@x', 1, 'ann'), (2, 'b@x', 1, 'bob')",
    "CREATE TABLE dept (id INT PRIMARY KEY, name TEXT NOT NULL, parent INT REFERENCES dept (id))",
    "INSERT INTO dept VALUES (1, 'root', NULL), (2, 'eng', 1)",
    "CREATE SEQUENCE s",
];
/// Statements prepared at the start, so cases have real handles to use.
const PREPARED: &[&str] = &[
    "SELECT * FROM t WHERE id = $1",
    "INSERT INTO t VALUES ($1, $2)",
    "UPDATE users SET handle = $2 WHERE id = $1",
    "SELECT name, count(*) FROM dept GROUP BY name",
    "DELETE FROM t WHERE id > ?",
];

fn cases(ci: u32) -> u32 {
    let multiplier = std::env::var(CASES_ENV)
        .ok()
        .map(|v| {
            v.trim()
                .parse::<u32>()
                .unwrap_or_else(|_| panic!("{CASES_ENV} must be a whole number, not {v:?}"))
        })
        .unwrap_or(1);
    ci.saturating_mul(multiplier)
}

fn runner(target: &str, cases: u32) -> TestRunner {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("fuzz {target}: {cases} cases, seed {seed} (replay with PROPTEST_RNG_SEED={seed})");
    TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: SHRINK_ITERS_MAX,
        ..Config::default()
    })
}

/// A running server, a logged-in client, and what the cases learned.
struct Fuzzer {
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
    log: tempfile::NamedTempFile,
    flight: FlightServiceClient<Channel>,
    token: String,
    known: Known,
    codes: BTreeMap<String, u64>,
}

impl Fuzzer {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let log = tempfile::NamedTempFile::new().expect("log file");
        let stderr = Stdio::from(log.reopen().expect("log file"));
        let flags = ["--query-timeout-secs", QUERY_TIMEOUT_SECS];
        let server = runtime.block_on(Box::pin(Server::start_with_stderr(&flags, stderr)));
        let (flight, token) = runtime.block_on(Box::pin(async {
            let mut client = connect(&server).await;
            for sql in SETUP {
                client
                    .execute_update(sql.to_string(), None)
                    .await
                    .expect(sql);
            }
            let token = client.token().cloned().expect("token");
            (client.inner_mut().clone(), token)
        }));
        let mut fuzzer = Self {
            runtime,
            server: Some(server),
            log,
            flight,
            token,
            known: Known {
                corpus: inputs::corpus(),
                ..Known::default()
            },
            codes: BTreeMap::new(),
        };
        for sql in PREPARED {
            let request = ActionCreatePreparedStatementRequest {
                query: sql.to_string(),
                transaction_id: None,
            };
            let body = request.as_any().encode_to_vec().into();
            fuzzer
                .action("CreatePreparedStatement".into(), body)
                .expect(sql);
        }
        assert_eq!(
            fuzzer.known.prepared.len(),
            PREPARED.len(),
            "prepared at the start"
        );
        fuzzer
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    /// `message` with the session's bearer token.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let value = format!("Bearer {}", self.token).parse().expect("header");
        request.metadata_mut().insert("authorization", value);
        request
    }

    /// Run one call to its end; a hang fails the case.
    fn call<T>(
        &mut self,
        what: &str,
        call: impl Future<Output = Result<T, Status>>,
    ) -> Result<Option<T>, TestCaseError> {
        // Boxed: a debug build's gRPC futures are too large for a test thread's stack.
        let call = Box::pin(call);
        let outcome = self
            .runtime
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT, call).await });
        let Ok(outcome) = outcome else {
            eprintln!("fuzz flight: HANG: {what}");
            return Err(TestCaseError::fail(format!(
                "no answer within {CALL_TIMEOUT:?}: {what}"
            )));
        };
        match outcome {
            Ok(value) => {
                *self.codes.entry("Ok".into()).or_default() += 1;
                Ok(Some(value))
            }
            Err(status) => self.check_status(what, &status).map(|()| None),
        }
    }

    /// A status is fine when the transport held, it is not Internal, and it
    /// carries a SQLSTATE that is not XX000; after Unauthenticated, log in again.
    fn check_status(&mut self, what: &str, status: &Status) -> Result<(), TestCaseError> {
        *self
            .codes
            .entry(format!("{:?}", status.code()))
            .or_default() += 1;
        let sqlstate = status
            .metadata()
            .get(SQLSTATE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Internal is for internal errors; no request here should cause one.
        let broken = matches!(
            status.code(),
            Code::Unknown | Code::Unavailable | Code::Internal
        );
        if broken || sqlstate.len() != 5 || sqlstate == "XX000" {
            eprintln!(
                "fuzz flight: {:?} [{sqlstate}] {} from {what}",
                status.code(),
                status.message()
            );
            return Err(TestCaseError::fail(format!("{status} from {what}")));
        }
        if status.code() == Code::Unauthenticated {
            self.log_in();
        }
        Ok(())
    }

    fn log_in(&mut self) {
        let mut client = self.runtime.block_on(Box::pin(connect(self.server())));
        self.token = client.token().cloned().expect("token");
        self.flight = client.inner_mut().clone();
    }

    /// GetFlightInfo, then DoGet of every endpoint it names.
    fn flight_info(&mut self, descriptor: FlightDescriptor) -> Result<(), TestCaseError> {
        let what = format!("GetFlightInfo {descriptor:?}");
        let request = self.request(descriptor);
        let mut flight = self.flight.clone();
        let info = self.call(&what, async move {
            Ok(flight.get_flight_info(request).await?.into_inner())
        })?;
        for ticket in info
            .iter()
            .flat_map(|i| &i.endpoint)
            .filter_map(|e| e.ticket.clone())
        {
            remember(&mut self.known.tickets, ticket.clone());
            self.read(ticket)?;
        }
        Ok(())
    }

    /// GetSchema or PollFlightInfo (`poll`) of `descriptor`.
    fn schema_or_poll(
        &mut self,
        descriptor: FlightDescriptor,
        poll: bool,
    ) -> Result<(), TestCaseError> {
        let what = format!("GetSchema/PollFlightInfo {descriptor:?}");
        let request = self.request(descriptor);
        let mut flight = self.flight.clone();
        self.call(&what, async move {
            match poll {
                true => flight.poll_flight_info(request).await.map(drop),
                false => flight.get_schema(request).await.map(drop),
            }
        })?;
        Ok(())
    }

    /// DoGet `ticket` and read up to [`MESSAGES_READ_MAX`] messages.
    fn read(&mut self, ticket: Ticket) -> Result<(), TestCaseError> {
        let what = format!("DoGet {ticket:?}");
        let request = self.request(ticket);
        let mut flight = self.flight.clone();
        self.call(&what, async move {
            let stream = flight.do_get(request).await?.into_inner();
            drain(stream, MESSAGES_READ_MAX).await
        })?;
        Ok(())
    }

    /// DoAction, reading every result; remembers handles it hands out.
    fn action(&mut self, kind: String, body: bytes::Bytes) -> Result<(), TestCaseError> {
        let what = format!("DoAction {kind:?} {body:?}");
        let request = self.request(Action {
            r#type: kind.clone(),
            body,
        });
        let mut flight = self.flight.clone();
        let results = self.call(&what, async move {
            let stream = flight.do_action(request).await?.into_inner();
            stream.try_collect::<Vec<_>>().await
        })?;
        for result in results.unwrap_or_default() {
            self.learn(&kind, &result.body);
        }
        Ok(())
    }

    fn learn(&mut self, kind: &str, body: &[u8]) {
        let Ok(any) = Any::decode(body) else { return };
        let known = &mut self.known;
        match kind {
            "CreatePreparedStatement" => {
                if let Ok(Some(r)) = any.unpack::<ActionCreatePreparedStatementResult>() {
                    remember(&mut known.prepared, r.prepared_statement_handle);
                }
            }
            "BeginTransaction" => {
                if let Ok(Some(r)) = any.unpack::<ActionBeginTransactionResult>() {
                    remember(&mut known.transactions, r.transaction_id);
                }
            }
            "BeginSavepoint" => {
                if let Ok(Some(r)) = any.unpack::<ActionBeginSavepointResult>() {
                    remember(&mut known.savepoints, r.savepoint_id);
                }
            }
            _ => {}
        }
    }

    /// DoPut `messages`, reading every result.
    fn put(&mut self, messages: Vec<FlightData>) -> Result<(), TestCaseError> {
        let what = format!("DoPut of {} messages", messages.len());
        let request = self.request(futures::stream::iter(messages));
        let mut flight = self.flight.clone();
        self.call(&what, async move {
            let stream = flight.do_put(request).await?.into_inner();
            stream.try_collect::<Vec<_>>().await
        })?;
        Ok(())
    }

    /// The server answers `SELECT 1`, runs, logged no panic and stops cleanly.
    fn finish(mut self, target: &str) {
        eprintln!("fuzz {target}: answers by code {:?}", self.codes);
        let mut server = self.server.take().expect("running");
        assert!(server.is_running(), "{target}: the server died");
        let one = self.runtime.block_on(Box::pin(async {
            let mut client = connect(&server).await;
            let info = client
                .execute("SELECT CAST(1 AS BIGINT)".into(), None)
                .await
                .expect("SELECT 1");
            let batches = collect(&mut client, &info).await;
            batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.value(0))
        }));
        assert_eq!(one, Some(1), "{target}: SELECT 1 after the fuzzing");
        self.runtime.block_on(Box::pin(server.stop()));
        let log = std::fs::read_to_string(self.log.path()).expect("server log");
        assert!(
            !log.contains(PANIC_MARKER),
            "{target}: the server panicked:\n{log}"
        );
    }
}

/// Keep `item` among the last [`KNOWN_MAX`] remembered.
fn remember<T>(items: &mut Vec<T>, item: T) {
    if items.len() >= KNOWN_MAX {
        items.remove(0);
    }
    items.push(item);
}

/// Read up to `max` messages of a stream, surfacing its error.
async fn drain<T>(stream: Streaming<T>, max: usize) -> Result<(), Status> {
    let mut stream = stream.take(max);
    while let Some(message) = stream.next().await {
        message?;
    }
    Ok(())
}

/// Run `cases` cases of `strategy` through `case` on a fresh server.
fn fuzz<S: Strategy>(
    target: &str,
    ci_cases: u32,
    strategy: S,
    case: impl Fn(&mut Fuzzer, S::Value) -> Result<(), TestCaseError>,
) {
    let started = Instant::now();
    let fuzzer = std::cell::RefCell::new(Fuzzer::start());
    let result = runner(target, cases(ci_cases))
        .run(&strategy, |value| case(&mut fuzzer.borrow_mut(), value));
    if let Err(e) = result {
        panic!("fuzz {target} found a failure: {e}");
    }
    fuzzer.into_inner().finish(target);
    eprintln!("fuzz {target}: done in {:.1?}", started.elapsed());
}

/// A descriptor for `wire`, or (one time in eight) a path of names.
fn descriptor(wire: &Wire, path: Option<Vec<String>>, known: &Known) -> FlightDescriptor {
    match path {
        Some(path) => FlightDescriptor::new_path(path),
        None => FlightDescriptor::new_cmd(wire.bytes(known)),
    }
}

fn maybe_path() -> impl Strategy<Value = Option<Vec<String>>> {
    proptest::option::weighted(0.125, proptest::collection::vec("\\PC{0,12}", 0..3))
}

/// GetFlightInfo mostly; GetSchema and PollFlightInfo of the same descriptors now and then.
#[test]
fn fuzz_flight_get_flight_info() {
    let strategy = (inputs::wire(), maybe_path(), 0u8..10);
    fuzz(
        "flight GetFlightInfo",
        INFO_CASES_CI,
        strategy,
        |f, (wire, path, method)| {
            let descriptor = descriptor(&wire, path, &f.known);
            match method {
                0 => f.schema_or_poll(descriptor, false),
                1 => f.schema_or_poll(descriptor, true),
                _ => f.flight_info(descriptor),
            }
        },
    );
}

#[test]
fn fuzz_flight_do_get() {
    fuzz(
        "flight DoGet",
        TICKET_CASES_CI,
        inputs::ticket(),
        |f, ticket: TicketCase| {
            // A real query first, so there are tickets to change.
            if f.known.tickets.is_empty() {
                let query = CommandStatementQuery {
                    query: "SELECT * FROM t".into(),
                    transaction_id: None,
                };
                f.flight_info(FlightDescriptor::new_cmd(query.as_any().encode_to_vec()))?;
            }
            let ticket = ticket.ticket(&f.known);
            f.read(ticket)
        },
    );
}

#[test]
fn fuzz_flight_do_action() {
    fuzz(
        "flight DoAction",
        ACTION_CASES_CI,
        inputs::action(),
        |f, action: ActionCase| {
            let (kind, body) = action.encode(&f.known);
            f.action(kind, body)
        },
    );
}

#[test]
fn fuzz_flight_do_put() {
    fuzz(
        "flight DoPut",
        PUT_CASES_CI,
        inputs::upload(),
        |f, upload: Upload| {
            let descriptor = FlightDescriptor::new_cmd(upload.descriptor.bytes(&f.known));
            let batch = upload.batch.batch();
            let mut messages: Vec<FlightData> = f
                .runtime
                .block_on(
                    FlightDataEncoderBuilder::new()
                        .with_flight_descriptor(Some(descriptor))
                        .with_schema(batch.schema())
                        .build(futures::stream::iter([Ok(batch)]))
                        .try_collect(),
                )
                .map_err(|e| TestCaseError::fail(format!("encoding: {e}")))?;
            inputs::edit_stream(&mut messages, &upload.edits);
            f.put(messages)
        },
    );
}
