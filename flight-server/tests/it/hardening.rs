//! No client can crash the server or make it grow without bound: hostile
//! DoPut data, huge series, login floods, too many prepared statements or
//! unread results, and idle HTTP connections are refused with a clear
//! status, and the server answers the next call.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, NullArray, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::sql::{
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    CommandPreparedStatementQuery, CommandStatementIngest, ProstMessageExt, TableDefinitionOptions,
    TableExistsOption, TableNotExistOption,
};
use arrow_flight::{FlightData, FlightDescriptor};
use futures::TryStreamExt;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::harness::{self, Client, Server, collect, connect, start_long_read, status_of};

/// A claimed row count no buffer backs: 2^61.
const HUGE_ROWS: usize = 1 << 61;

/// Flight data for `batch` under `descriptor`, as a client would send it.
async fn flight_data(descriptor: FlightDescriptor, batch: RecordBatch) -> Vec<FlightData> {
    FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(descriptor))
        .with_schema(batch.schema())
        .build(futures::stream::iter([Ok(batch)]))
        .try_collect()
        .await
        .unwrap()
}

fn ingest_descriptor(table: &str) -> FlightDescriptor {
    let command = CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Create as i32,
            if_exists: TableExistsOption::Fail as i32,
        }),
        table: table.into(),
        ..Default::default()
    };
    FlightDescriptor::new_cmd(command.as_any().encode_to_vec())
}

/// Send raw Flight data with DoPut; the gRPC code and message it fails with.
async fn put_refused(client: &mut Client, data: Vec<FlightData>) -> (Code, String) {
    let outcome = match client.do_put(futures::stream::iter(data)).await {
        Ok(mut results) => results.message().await.map_err(|s| s.to_string()),
        Err(err) => Err(err.to_string()),
    };
    match outcome {
        Ok(result) => panic!("the upload was accepted: {result:?}"),
        Err(text) => status_of(&text),
    }
}

/// A batch of no columns that claims `rows` rows.
fn no_columns(rows: usize) -> RecordBatch {
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options).unwrap()
}

async fn assert_table_missing(client: &mut Client, table: &str) {
    let err = client
        .execute(format!("SELECT * FROM {table}"), None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err).0, Code::NotFound, "{err}");
}

/// The single value of a one-row, one-column BIGINT query.
async fn query_i64(client: &mut Client, sql: &str) -> i64 {
    let info = client.execute(sql.into(), None).await.unwrap();
    let batches = collect(client, &info).await;
    let column = batches[0].column(0);
    column
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

#[tokio::test]
async fn hostile_ingest_data_is_refused_before_it_touches_state() {
    let server = Server::start(&["--ingest-rows-max", "1000"]).await;
    let mut client = connect(&server).await;

    // A schema of no columns and a batch claiming 2^61 rows (144 bytes).
    let data = flight_data(ingest_descriptor("t"), no_columns(HUGE_ROWS)).await;
    let (code, message) = put_refused(&mut client, data).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(
        message.contains("22023") && message.contains("no columns"),
        "{message}"
    );
    assert_table_missing(&mut client, "t").await;

    // Columns of zero bytes a row (NULL type) are bounded by the row limit.
    let nulls = Schema::new(vec![Field::new("n", DataType::Null, true)]);
    let batch =
        RecordBatch::try_new(Arc::new(nulls), vec![Arc::new(NullArray::new(HUGE_ROWS))]).unwrap();
    let (code, message) = put_refused(
        &mut client,
        flight_data(ingest_descriptor("t"), batch).await,
    )
    .await;
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(
        message.contains("54000") && message.contains("ingest_rows_max"),
        "{message}"
    );
    assert_table_missing(&mut client, "t").await;

    // A column whose claimed length its buffers do not back: the record
    // batch message of one BIGINT row, with the row count (batch and field
    // node) rewritten to 2^61.
    let ints = Schema::new(vec![Field::new("x", DataType::Int64, false)]);
    let batch =
        RecordBatch::try_new(Arc::new(ints), vec![Arc::new(Int64Array::from(vec![7]))]).unwrap();
    let mut data = flight_data(ingest_descriptor("t"), batch).await;
    let message = data.last_mut().unwrap();
    let header = message.data_header.to_vec();
    let (one, huge) = (1i64.to_le_bytes(), (HUGE_ROWS as i64).to_le_bytes());
    let mut patched = header.clone();
    let mut rewritten = 0;
    for at in (0..header.len().saturating_sub(7)).step_by(8) {
        if header[at..at + 8] == one {
            patched[at..at + 8].copy_from_slice(&huge);
            rewritten += 1;
        }
    }
    assert!(
        rewritten >= 2,
        "the row count appears in the batch and its field node"
    );
    message.data_header = patched.into();
    let (code, message) = put_refused(&mut client, data).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert_table_missing(&mut client, "t").await;

    // Within the limits an ingest works, and the server answered throughout.
    let ints = Schema::new(vec![Field::new("x", DataType::Int64, false)]);
    let batch = RecordBatch::try_new(
        Arc::new(ints),
        vec![Arc::new(Int64Array::from_iter_values(0..1000))],
    )
    .unwrap();
    let command = CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Create as i32,
            if_exists: TableExistsOption::Fail as i32,
        }),
        table: "t".into(),
        ..Default::default()
    };
    let rows = client
        .execute_ingest(command, futures::stream::iter([Ok(batch)]))
        .await
        .unwrap();
    assert_eq!(rows, 1000);
    assert_eq!(query_i64(&mut client, "SELECT count(*) FROM t").await, 1000);
    server.stop().await;
}

/// Found by fuzzing: a record batch message whose buffer lies past its
/// body panicked arrow-ipc inside the DoPut task; and a command whose Any
/// names a known message that does not decode was `Internal` without a
/// SQLSTATE. Both are the client's malformed request: 08P01, InvalidArgument.
#[tokio::test]
async fn malformed_arrow_and_protobuf_are_bad_requests_not_crashes() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let stderr = std::process::Stdio::from(log.reopen().unwrap());
    let server = Server::start_with_stderr(&[], stderr).await;
    let mut client = connect(&server).await;
    let ints = Schema::new(vec![Field::new("x", DataType::Int64, false)]);
    let batch =
        RecordBatch::try_new(Arc::new(ints), vec![Arc::new(Int64Array::from(vec![7]))]).unwrap();
    let mut data = flight_data(ingest_descriptor("t"), batch).await;
    // The values buffer: (offset 0, length 8), moved 2^40 bytes along.
    let message = data.last_mut().unwrap();
    let header = message.data_header.to_vec();
    let values = [0i64.to_le_bytes(), 8i64.to_le_bytes()].concat();
    let at = header
        .windows(16)
        .position(|w| w == values)
        .expect("the values buffer");
    let mut patched = header.clone();
    patched[at..at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
    message.data_header = patched.into();
    let (code, message) = put_refused(&mut client, data).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(
        message.contains("08P01") && message.contains("malformed Arrow IPC data"),
        "{message}"
    );
    assert_table_missing(&mut client, "t").await;

    let garbled = arrow_flight::sql::Any {
        type_url: "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery".into(),
        value: vec![0x0a, 0x05, 0xff, 0xfe].into(),
    };
    let descriptor = FlightDescriptor::new_cmd(garbled.encode_to_vec());
    let mut request = tonic::Request::new(descriptor);
    let bearer = format!("Bearer {}", client.token().unwrap())
        .parse()
        .unwrap();
    request.metadata_mut().insert("authorization", bearer);
    let status = client
        .inner_mut()
        .get_flight_info(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert_eq!(
        status.metadata().get("x-driftdb-sqlstate").unwrap(),
        "08P01"
    );

    assert_eq!(query_i64(&mut client, "SELECT CAST(1 AS BIGINT)").await, 1);
    server.stop().await;
    let log = std::fs::read_to_string(log.path()).unwrap();
    assert!(!log.contains("panicked at"), "{log}");
}

#[tokio::test]
async fn parameter_sets_without_columns_or_beyond_the_limit_are_refused() {
    let server = Server::start(&["--parameter-sets-max", "1000"]).await;
    let mut client = connect(&server).await;
    let prepared: ActionCreatePreparedStatementResult = crate::action(
        &mut client,
        "CreatePreparedStatement",
        ActionCreatePreparedStatementRequest {
            query: "SELECT 1".into(),
            transaction_id: None,
        },
    )
    .await
    .unwrap()
    .unwrap();
    let handle = CommandPreparedStatementQuery {
        prepared_statement_handle: prepared.prepared_statement_handle,
    };
    let descriptor = || FlightDescriptor::new_cmd(handle.as_any().encode_to_vec());

    // 3 × 10^7 parameter sets of no values.
    let data = flight_data(descriptor(), no_columns(30_000_000)).await;
    let (code, message) = put_refused(&mut client, data).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(
        message.contains("parameter data has no columns"),
        "{message}"
    );

    // One set more than the limit.
    let schema = Schema::new(vec![Field::new("p", DataType::Int64, true)]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(Int64Array::from_iter_values(0..1001))],
    )
    .unwrap();
    let (code, message) = put_refused(&mut client, flight_data(descriptor(), batch).await).await;
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("parameter_sets_max"), "{message}");
    assert_eq!(query_i64(&mut client, "SELECT CAST(2 AS BIGINT)").await, 2);
    server.stop().await;
}

#[tokio::test]
async fn huge_scalar_series_are_refused_and_the_server_answers_the_next_query() {
    let server = Server::start(&[]).await;
    let mut client = connect(&server).await;
    for sql in [
        "SELECT generate_series(1, 100000000000)",
        "SELECT range(1, 100000000000)",
        "SELECT unnest(generate_series(1, 100000000000))",
    ] {
        let outcome = match client.execute(sql.into(), None).await {
            Ok(info) => {
                let ticket = info.endpoint[0].ticket.clone().unwrap();
                match client.do_get(ticket).await {
                    Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()),
                    Err(err) => Err(err),
                }
            }
            Err(err) => Err(err),
        };
        let err = outcome.expect_err(sql);
        let (code, message) = status_of(&err);
        assert_eq!(code, Code::ResourceExhausted, "{sql}: {message}");
        assert!(message.contains("series_elements_max"), "{message}");
        assert!(message.contains("53200"), "{message}");
    }
    // The table function streams: a long series is fine there.
    let counted = query_i64(
        &mut client,
        "SELECT count(*) FROM generate_series(1, 3000000) AS g(x)",
    )
    .await;
    assert_eq!(counted, 3_000_000);
    server.stop().await;
}

#[tokio::test]
async fn statements_just_within_the_depth_limit_run_and_deeper_ones_are_refused() {
    let server = Server::start(&[]).await;
    let mut client = connect(&server).await;
    // A thousand set operations, a thousand-term sum, subqueries nested
    // within CALL_NESTING_MAX (with the CAST and its parenthesis):
    // each level is a level of the plan, and all must fit the planner's stack.
    let unions = vec!["SELECT 1 AS x"; 1_000].join(" UNION ALL ");
    let counted = query_i64(
        &mut client,
        &format!("SELECT count(*) FROM ({unions}) AS u"),
    )
    .await;
    assert_eq!(counted, 1_000);
    let sum = vec!["1"; 1_000].join("+");
    assert_eq!(
        query_i64(&mut client, &format!("SELECT CAST({sum} AS BIGINT)")).await,
        1_000
    );
    let nested = format!("SELECT {}1 + 1{}", "(SELECT ".repeat(13), ")".repeat(13));
    assert_eq!(
        query_i64(&mut client, &format!("SELECT CAST(({nested}) AS BIGINT)")).await,
        2
    );
    let deeper = vec!["SELECT 1"; 2_000].join(" UNION ALL ");
    let err = client.execute(deeper, None).await.expect_err("too deep");
    let (code, message) = status_of(&err);
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("54001"), "{message}");
    assert_eq!(query_i64(&mut client, "SELECT CAST(1 AS BIGINT)").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_are_refused_alike() {
    let server = Server::start(&[]).await;
    for (user, password) in [("driftdb", "wrong"), ("nobody", harness::PASSWORD)] {
        let mut client = harness::raw_client(&server).await;
        let err = client.handshake(user, password).await.unwrap_err();
        let (code, message) = status_of(&err);
        assert_eq!(code, Code::Unauthenticated, "{user}: {message}");
        assert!(message.contains("wrong user name or password"), "{message}");
    }
    connect(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_bad_logins_is_refused_and_the_server_stays_up() {
    let server = Server::start(&[
        "--login-verifications-max",
        "2",
        "--login-waiters-max",
        "16",
    ])
    .await;
    let client = harness::raw_client(&server).await;
    let attempts: Vec<_> = (0..200)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let user = if i % 2 == 0 { "driftdb" } else { "nobody" };
                client.handshake(user, "wrong").await.unwrap_err()
            })
        })
        .collect();
    let mut codes = Vec::new();
    for attempt in attempts {
        let err = attempt.await.unwrap();
        let (code, message) = status_of(&err);
        assert!(
            matches!(code, Code::Unauthenticated | Code::ResourceExhausted),
            "{message}"
        );
        codes.push(code);
    }
    assert!(
        codes.contains(&Code::ResourceExhausted),
        "more logins than verification slots and waiters are refused at once"
    );
    assert!(codes.contains(&Code::Unauthenticated));
    // The server is up and a good login works.
    let mut client = connect(&server).await;
    assert_eq!(query_i64(&mut client, "SELECT CAST(1 AS BIGINT)").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn sessions_are_capped_on_prepared_statements_and_unread_results() {
    let server = Server::start(&[
        "--prepared-statements-max",
        "3",
        "--parked-results-max",
        "2",
    ])
    .await;
    let mut client = connect(&server).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(client.prepare("SELECT 1".into(), None).await.unwrap());
    }
    let err = client.prepare("SELECT 1".into(), None).await.unwrap_err();
    let (code, message) = status_of(&err);
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(
        message.contains("prepared_statements_max") && message.contains("54000"),
        "{message}"
    );
    open.pop().unwrap().close().await.unwrap();
    client.prepare("SELECT 1".into(), None).await.unwrap();

    // A result nobody started reading is dropped, oldest first, to make
    // room (a DB-API loop of statements never fetched keeps working).
    let first = client.execute("SELECT 1".into(), None).await.unwrap();
    let second = client.execute("SELECT 2".into(), None).await.unwrap();
    let third = client.execute("SELECT 3".into(), None).await.unwrap();
    let ticket = first.endpoint[0].ticket.clone().unwrap();
    let Err(err) = client.do_get(ticket).await else {
        panic!("the oldest unread result was dropped");
    };
    assert_eq!(status_of(&err).0, Code::NotFound, "{err}");
    assert_eq!(collect(&mut client, &second).await[0].num_rows(), 1);
    assert_eq!(collect(&mut client, &third).await[0].num_rows(), 1);
    // Results being read are never dropped: past the limit, a new one is refused.
    let (_one, _reading_one) = start_long_read(&mut client).await;
    let (_two, _reading_two) = start_long_read(&mut client).await;
    let err = client.execute("SELECT 4".into(), None).await.unwrap_err();
    let (code, message) = status_of(&err);
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    assert!(message.contains("parked_results_max"), "{message}");
    // Another session has its own room.
    let mut other = connect(&server).await;
    other.execute("SELECT 5".into(), None).await.unwrap();
    server.stop().await;
}

/// Read until the peer closes; fails if it does not within `limit`.
async fn closed_by_peer(stream: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 256];
    let read_to_end = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_to_end).await.is_ok()
}

async fn http_get(address: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn the_http_endpoint_drops_idle_and_slow_connections_and_keeps_answering() {
    let server =
        Server::start(&["--http", "127.0.0.1:0", "--http-request-timeout-ms", "300"]).await;
    let address = server
        .http_address
        .clone()
        .expect("the HTTP address is printed");
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /hea").await.unwrap();
    // Others are answered while those two hang.
    assert!(http_get(&address, "/health").await.ends_with("ok\n"));
    assert!(
        closed_by_peer(&mut idle, Duration::from_secs(10)).await,
        "idle connection closed"
    );
    assert!(
        closed_by_peer(&mut slow, Duration::from_secs(10)).await,
        "slow connection closed"
    );
    let metrics = http_get(&address, "/metrics").await;
    assert!(metrics.contains("driftdb_logins_waiting 0"), "{metrics}");
    server.stop().await;
}

/// A `/proc/<pid>/status` figure, in KiB.
fn proc_status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Peak server memory under 1,000 concurrent bad logins (half for unknown
/// users), and the median answer time of each kind. Prints figures; run with
/// `cargo test -p driftdb-server --test it measure_bad_logins -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement: prints figures"]
async fn measure_bad_logins() {
    let server = Server::start(&[]).await;
    let before = proc_status_kib(server.pid(), "VmRSS:");
    let mut attempts = Vec::new();
    for channel in 0..10 {
        let client = harness::raw_client(&server).await;
        for i in 0..100 {
            let mut client = client.clone();
            attempts.push(tokio::spawn(async move {
                let unknown = (channel + i) % 2 == 0;
                let user = if unknown { "nobody" } else { "driftdb" };
                let started = std::time::Instant::now();
                let err = client.handshake(user, "wrong").await.unwrap_err();
                (unknown, status_of(&err).0, started.elapsed())
            }));
        }
    }
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut codes = std::collections::BTreeMap::new();
    for attempt in attempts {
        let (unknown, code, took) = attempt.await.unwrap();
        assert!(matches!(
            code,
            Code::Unauthenticated | Code::ResourceExhausted
        ));
        *codes.entry(format!("{code:?}")).or_insert(0) += 1;
        times[usize::from(unknown)].push(took);
    }
    let peak = proc_status_kib(server.pid(), "VmHWM:");
    let after = proc_status_kib(server.pid(), "VmRSS:");
    // Sequential, uncontended: the cost of one bad login of each kind.
    let mut alone: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut client = harness::raw_client(&server).await;
    for i in 0..20 {
        let unknown = i % 2 == 0;
        let user = if unknown { "nobody" } else { "driftdb" };
        let started = std::time::Instant::now();
        client.handshake(user, "wrong").await.unwrap_err();
        alone[usize::from(unknown)].push(started.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!("| figure | value |\n| --- | --- |");
    println!("| RSS before | {} MiB |", before / 1024);
    println!(
        "| peak RSS (VmHWM) under 1,000 bad logins | {} MiB |",
        peak / 1024
    );
    println!("| RSS after | {} MiB |", after / 1024);
    println!("| answers | {codes:?} |");
    println!(
        "| median answer, flood, known user | {:?} |",
        median(&mut times[0])
    );
    println!(
        "| median answer, flood, unknown user | {:?} |",
        median(&mut times[1])
    );
    println!(
        "| median answer, alone, known user | {:?} |",
        median(&mut alone[0])
    );
    println!(
        "| median answer, alone, unknown user | {:?} |",
        median(&mut alone[1])
    );
    connect(&server).await;
    server.stop().await;
}
