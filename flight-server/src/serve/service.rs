//! The Flight SQL service: arrow-flight's `FlightSqlService`, implemented
//! over DriftDB sessions. Each method authenticates the caller, finds its
//! session and hands the work to the engine; results stream out through
//! [`super::results`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginSavepointResult, ActionBeginTransactionRequest,
    ActionBeginTransactionResult, ActionCancelQueryRequest, ActionCancelQueryResult,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, ActionEndSavepointRequest, ActionEndTransactionRequest,
    Any, CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, EndTransaction, ProstMessageExt, SqlInfo,
    TableExistsOption, TableNotExistOption, TicketStatementQuery,
    metadata::{SqlInfoData, XdbcTypeInfoData},
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor,
    FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc,
    Ticket,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::scalar::ScalarValue;
use driftdb_engine::sql::{IngestMode, ParsedStatement, parse_statement};
use driftdb_engine::{Database, Output, Prepared};
use futures::{Stream, TryFutureExt, TryStreamExt};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{Credentials, LoginGate, Users, parse_authorization};
use super::config::ServerLimits;
use super::error::{Result, ServerError};
use super::ipc_guard::guarded;
use super::metadata;
use super::results::{Guard, encode, encode_batch, wire_schema};
use super::sessions::{ClientSession, PendingQuery, PreparedEntry, Queries, Sessions};
use super::transactions::Ending;

/// Everything the service shares between calls.
pub struct ServerState {
    pub db: Database,
    pub users: Users,
    /// Bounds the password verifications running and waiting.
    pub logins: LoginGate,
    pub sessions: Sessions,
    pub queries: Queries,
    pub limits: ServerLimits,
    pub auth: bool,
    sql_info: SqlInfoData,
    xdbc: XdbcTypeInfoData,
    /// With authentication off: each client connection's session token,
    /// by the connection's remote address (so clients never share a
    /// transaction, a setting or a prepared statement).
    anonymous: parking_lot::Mutex<HashMap<Option<SocketAddr>, String>>,
}

impl ServerState {
    pub fn new(db: Database, users: Users, limits: ServerLimits, auth: bool) -> Self {
        Self {
            sessions: Sessions::new(db.clone(), limits.clone()),
            db,
            users,
            logins: LoginGate::new(limits.login_verifications_max, limits.login_waiters_max),
            queries: Queries::default(),
            limits,
            auth,
            sql_info: metadata::sql_info(true),
            xdbc: metadata::xdbc_type_info(),
            anonymous: parking_lot::Mutex::default(),
        }
    }
}

/// DriftDB's Flight SQL service.
#[derive(Clone)]
pub struct DriftFlightSql {
    pub(super) state: Arc<ServerState>,
}

impl DriftFlightSql {
    pub fn new(state: Arc<ServerState>) -> Self {
        Self { state }
    }

    /// The caller's session, from its bearer token (or its connection's
    /// anonymous session when authentication is off and no token is given).
    fn client<T>(&self, request: &Request<T>) -> Result<Arc<ClientSession>> {
        match bearer_token(request)? {
            Some(token) => self.state.sessions.get(&token).ok_or_else(|| {
                ServerError::Unauthenticated("invalid or expired token: log in again".into())
            }),
            None if self.state.auth => Err(ServerError::Unauthenticated(
                "no bearer token: call Handshake with basic credentials first".into(),
            )),
            None => self.anonymous(request.remote_addr()),
        }
    }

    /// The anonymous session of the connection from `peer`, opened on its
    /// first call (again if it was dropped for being idle).
    fn anonymous(&self, peer: Option<SocketAddr>) -> Result<Arc<ClientSession>> {
        let mut tokens = self.state.anonymous.lock();
        if let Some(session) = tokens.get(&peer).and_then(|t| self.state.sessions.get(t)) {
            return Ok(session);
        }
        // Forget connections whose sessions are gone (closed or idle).
        tokens.retain(|_, token| self.state.sessions.contains(token));
        let (token, session) = self.state.sessions.open("anonymous")?;
        tracing::debug!(?peer, session = session.id, "anonymous session opened");
        tokens.insert(peer, token);
        Ok(session)
    }

    /// Log in with basic credentials; returns a new session's token. The
    /// argon2 verification runs off the async workers, holding one of the
    /// gate's slots; a failure answers after `login_failure_delay` (slot
    /// already given back), whether the user exists or not.
    async fn log_in(&self, user: String, password: String) -> Result<String> {
        let slot = self.state.logins.enter().await?;
        let state = self.state.clone();
        let name = user.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            state.users.verify(&name, &password)
        })
        .await
        .unwrap_or(false);
        if !ok {
            tokio::time::sleep(self.state.limits.login_failure_delay).await;
            return Err(ServerError::Unauthenticated(format!(
                "wrong user name or password for {user:?}"
            )));
        }
        let (token, _) = self.state.sessions.open(&user)?;
        Ok(token)
    }

    /// Run a statement and register its result for DoGet; returns the
    /// FlightInfo whose ticket names it.
    async fn start(
        &self,
        client: &ClientSession,
        work: Work,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo> {
        let (id, schema, seq) = self.park(client, work).await?;
        result_info(id, &schema, seq, descriptor)
    }

    /// Run a statement (or a prepared one with its parameters bound) in
    /// the session `sql` (locked by the caller).
    async fn run(&self, sql: &mut driftdb_engine::Session, work: Work) -> Result<Output> {
        let timeout = self.state.limits.query_timeout;
        let output = off_workers(async {
            match work {
                Work::Statement(statement) => {
                    tokio::time::timeout(timeout, sql.execute_streaming(statement)).await
                }
                Work::Prepared(prepared, params) => {
                    tokio::time::timeout(timeout, sql.execute_prepared(&prepared, &params)).await
                }
            }
        })
        .await;
        Ok(output.map_err(|_| ServerError::QueryTimeout(timeout))??)
    }

    /// Run a statement and park its result stream under a new query id.
    /// Returns the id, the result's wire schema and the snapshot it reads.
    async fn park(
        &self,
        client: &ClientSession,
        work: Work,
    ) -> Result<(u64, SchemaRef, Option<u64>)> {
        let started = Instant::now();
        // Parking happens only under the session's lock, so the count
        // checked here cannot grow before this result is added.
        let mut sql = client.sql.lock().await;
        let limit = self.state.limits.parked_results_max;
        let mut parked = self.state.queries.open_in(client.id);
        // At the limit, the oldest result nobody started reading makes room.
        if parked >= limit && self.state.queries.drop_oldest_unread(client.id) {
            parked -= 1;
        }
        if parked >= limit {
            return Err(driftdb_engine::Error::LimitExceeded {
                what: "this session".into(),
                size: parked as u64 + 1,
                limit: limit as u64,
                unit: "results being read at once",
                limit_name: "parked_results_max",
            }
            .into());
        }
        let output = self.run(&mut sql, work).await?;
        let (seq, stream, live) = match output {
            Output::Rows {
                seq, stream, live, ..
            } => (Some(seq), stream, live),
            Output::Done(result) => {
                let batches = futures::stream::iter(result.batches.into_iter().map(Ok));
                let stream = RecordBatchStreamAdapter::new(result.schema.clone(), batches);
                (result.seq, Box::pin(stream) as _, false)
            }
        };
        let schema = wire_schema(&stream.schema());
        let id = self.state.queries.add(PendingQuery {
            session_id: client.id,
            stream: Some(stream),
            cancel: CancellationToken::new(),
            started,
            live,
        });
        drop(sql);
        Ok((id, schema, seq))
    }

    /// DoGet of parked query `id`: stream it under its cancel token and deadline.
    fn stream_query(&self, client: &ClientSession, id: u64) -> DoGetResponse {
        let (stream, cancel, started) = self.state.queries.take_stream(id, client.id)?;
        let timeout = self.state.limits.query_timeout;
        let guard = Guard {
            cancel,
            deadline: started.map(|s| s + timeout),
            timeout,
        };
        let state = self.state.clone();
        Ok(Response::new(encode(stream, guard, move || {
            state.queries.finish(id)
        })))
    }

    /// Run a statement for its effect; returns the rows it changed.
    async fn update(&self, client: &ClientSession, work: Work) -> Result<i64> {
        let mut sql = client.sql.lock().await;
        match self.run(&mut sql, work).await? {
            Output::Done(result) => Ok(result.rows_affected.map_or(0, |n| n as i64)),
            Output::Rows { stream, .. } => {
                // A query sent as an update runs to completion; its rows are dropped.
                let batches = datafusion::physical_plan::common::collect(stream)
                    .await
                    .map_err(driftdb_engine::Error::from)?;
                Ok(batches.iter().map(|b| b.num_rows() as i64).sum())
            }
        }
    }

    /// Work on the caller's prepared statement `handle`.
    fn with_prepared<T>(
        &self,
        client: &ClientSession,
        handle: &[u8],
        f: impl FnOnce(&mut PreparedEntry) -> T,
    ) -> Result<T> {
        let id = parse_handle(handle, "prepared statement")?;
        match client.prepared.lock().get_mut(&id) {
            Some(entry) => Ok(f(entry)),
            None => Err(ServerError::UnknownHandle {
                kind: "prepared statement",
                handle: id.to_string(),
            }),
        }
    }

    fn prepared(&self, client: &ClientSession, handle: &[u8]) -> Result<PreparedEntry> {
        self.with_prepared(client, handle, |entry| entry.clone())
    }

    /// A DoGet for a result already in memory.
    fn batch_response(
        &self,
        batch: Result<RecordBatch>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(encode_batch(batch?)))
    }

    fn metadata_info(
        &self,
        command: impl ProstMessageExt,
        schema: &Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = Ticket::new(command.as_any().encode_to_vec());
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(ServerError::from)?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    /// FlightInfo for any of the foreign-key commands (imported, exported, cross reference).
    fn foreign_keys_info(
        &self,
        command: impl ProstMessageExt,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        let schema = metadata::foreign_keys_schema();
        self.metadata_info(command, &schema, request.into_inner())
    }

    /// The rows of any foreign-key command.
    async fn foreign_keys_data(
        &self,
        filter: metadata::ForeignKeyFilter,
        scope: [Option<&str>; 2],
        request: &Request<Ticket>,
    ) -> DoGetResponse {
        let client = self.client(request)?;
        let in_scope = scope[0].is_none_or(|c| c == driftdb_engine::sql::CATALOG_NAME)
            && scope[1].is_none_or(|s| s == driftdb_engine::sql::SCHEMA_NAME);
        let sql = client.sql.lock().await;
        self.batch_response(metadata::foreign_keys(&filter, in_scope, &sql))
    }

    /// The limits an ingest upload is held to.
    fn ingest_upload(&self) -> Upload {
        Upload {
            what: "ingest data",
            bytes_max: self.state.limits.ingest_max_bytes,
            rows_max: self.state.limits.ingest_rows_max,
            rows_limit_name: "ingest_rows_max",
            rows_unit: "rows",
            columns_required: true,
        }
    }

    /// The limits bound parameters are held to.
    fn parameter_upload(&self, bytes_max: usize) -> Upload {
        Upload {
            what: "parameter data",
            bytes_max,
            rows_max: self.state.limits.parameter_sets_max,
            rows_limit_name: "parameter_sets_max",
            rows_unit: "parameter sets",
            columns_required: false,
        }
    }

    /// Refuse a new prepared statement when the session holds the most it may.
    fn check_prepared_room(&self, client: &ClientSession) -> Result<()> {
        let open = client.prepared.lock().len();
        self.check_prepared_count(open)
    }

    fn check_prepared_count(&self, open: usize) -> Result<()> {
        let limit = self.state.limits.prepared_statements_max;
        if open < limit {
            return Ok(());
        }
        Err(driftdb_engine::Error::LimitExceeded {
            what: "this session".into(),
            size: open as u64 + 1,
            limit: limit as u64,
            unit: "open prepared statements (close some)",
            limit_name: "prepared_statements_max",
        }
        .into())
    }

    fn cancel_query_in(&self, client: &ClientSession, info: &FlightInfo) -> bool {
        query_id_of(info).is_some_and(|id| self.state.queries.cancel(id, client.id))
    }
}

/// `ActionCancelQueryResult.CancelResult` values (the enum is not re-exported).
const CANCEL_RESULT_CANCELLED: i32 = 1;
const CANCEL_RESULT_NOT_CANCELLABLE: i32 = 3;

/// The FlightInfo of a started query: its wire schema, one endpoint whose
/// ticket names the query, and the snapshot it reads as app metadata.
fn result_info(
    id: u64,
    schema: &Schema,
    seq: Option<u64>,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo> {
    let ticket = TicketStatementQuery {
        statement_handle: id.to_string().into(),
    };
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
    let metadata = serde_json::json!({ "seq": seq }).to_string();
    Ok(FlightInfo::new()
        .try_with_schema(schema)?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor)
        .with_total_records(-1)
        .with_total_bytes(-1)
        .with_app_metadata(metadata.into_bytes()))
}

/// The query a FlightInfo's first ticket names.
fn query_id_of(info: &FlightInfo) -> Option<u64> {
    let ticket = info.endpoint.first()?.ticket.as_ref()?;
    let any = Any::decode(ticket.ticket.as_ref()).ok()?;
    let statement: TicketStatementQuery = any.unpack().ok()??;
    parse_handle(&statement.statement_handle, "query").ok()
}

fn parse_handle(handle: &[u8], kind: &'static str) -> Result<u64> {
    std::str::from_utf8(handle)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ServerError::UnknownHandle {
            kind,
            handle: String::from_utf8_lossy(handle).into_owned(),
        })
}

/// What a request runs: a statement, or a prepared one with its parameters.
enum Work {
    Statement(ParsedStatement),
    Prepared(Prepared, Vec<ScalarValue>),
}

/// A prepared query with its bound parameter row (a query runs with one).
fn bound_query(entry: &PreparedEntry) -> Result<Work> {
    let prepared = entry.prepared.clone();
    match entry.parameters.as_slice() {
        [] => Ok(Work::Prepared(prepared, Vec::new())),
        [row] => Ok(Work::Prepared(prepared, row.clone())),
        rows => Err(ServerError::BadRequest(format!(
            "a query runs with one parameter row; {} were bound",
            rows.len()
        ))),
    }
}

/// The bearer token of a request, if it carries one; other credentials are refused.
fn bearer_token<T>(request: &Request<T>) -> Result<Option<String>> {
    let Some(header) = request.metadata().get("authorization") else {
        return Ok(None);
    };
    let value = header
        .to_str()
        .map_err(|_| ServerError::Unauthenticated("unreadable authorization header".into()))?;
    match parse_authorization(value)? {
        Credentials::Bearer(token) => Ok(Some(token)),
        Credentials::Basic { .. } => Err(ServerError::Unauthenticated(
            "basic credentials are only accepted by Handshake".into(),
        )),
    }
}

/// What a DoPut's data is for, and the limits it is held to while it is
/// decoded, before any of it reaches a session.
struct Upload {
    /// What the data is, for messages ("ingest data", "parameter data").
    what: &'static str,
    /// Arrow data as sent (message bodies), in bytes.
    bytes_max: usize,
    /// Rows over all batches.
    rows_max: usize,
    /// The name of `rows_max` and what a row is, for messages.
    rows_limit_name: &'static str,
    rows_unit: &'static str,
    /// Whether a schema without columns is refused even with no rows.
    columns_required: bool,
}

/// Read every batch of a DoPut stream, refusing more bytes or rows than
/// `upload` allows and batches that have rows but no columns (their row
/// count is a bare number nothing backs). Batches with columns were
/// validated against their buffers by the IPC decoder.
async fn read_batches(
    stream: PeekableFlightDataStream,
    upload: &Upload,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut received = 0usize;
    let max_bytes = upload.bytes_max;
    // The first message may carry only the command (no schema, no data).
    let messages = stream
        .map_err(FlightError::from)
        .try_filter(|data| std::future::ready(!data.data_header.is_empty()))
        .and_then(move |data| {
            received += data.data_body.len();
            let result = match received > max_bytes {
                true => Err(FlightError::ExternalError(Box::new(
                    ServerError::TooLarge {
                        what: "uploaded data",
                        size: received,
                        limit: max_bytes,
                    },
                ))),
                false => Ok(data),
            };
            std::future::ready(result)
        });
    let mut decoded = FlightRecordBatchStream::new_from_flight_data(messages);
    let mut batches = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = guarded(decoded.try_next().map_err(tunnelled)).await? {
        let no_columns = batch.num_columns() == 0;
        if no_columns && (upload.columns_required || batch.num_rows() > 0) {
            return Err(ServerError::NoColumns { what: upload.what });
        }
        debug_assert!(batch.columns().iter().all(|c| c.len() == batch.num_rows()));
        rows = rows.saturating_add(batch.num_rows());
        if rows > upload.rows_max {
            return Err(driftdb_engine::Error::LimitExceeded {
                what: upload.what.into(),
                size: rows as u64,
                limit: upload.rows_max as u64,
                unit: upload.rows_unit,
                limit_name: upload.rows_limit_name,
            }
            .into());
        }
        batches.push(batch);
    }
    let schema = decoded
        .schema()
        .cloned()
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    if upload.columns_required && schema.fields().is_empty() {
        return Err(ServerError::NoColumns { what: upload.what });
    }
    Ok((schema, batches))
}

/// A server error that travelled through a Flight stream, back as itself.
fn tunnelled(err: FlightError) -> ServerError {
    match err {
        FlightError::ExternalError(inner) => match inner.downcast::<ServerError>() {
            Ok(ours) => *ours,
            Err(other) => ServerError::BadRequest(other.to_string()),
        },
        other => other.into(),
    }
}

/// Parameter rows from bound batches: one row of values per statement run.
fn parameter_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<ScalarValue>>> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|c| ScalarValue::try_from_array(c, row))
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(values);
        }
    }
    Ok(rows)
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes> {
    let IpcMessage(bytes) =
        SchemaAsIpc::new(schema, &arrow::ipc::writer::IpcWriteOptions::default()).try_into()?;
    Ok(bytes)
}

fn ingest_mode(command: &CommandStatementIngest) -> Result<IngestMode> {
    let options = command.table_definition_options.unwrap_or_default();
    let if_missing = TableNotExistOption::try_from(options.if_not_exist)
        .unwrap_or(TableNotExistOption::Unspecified);
    let if_exists =
        TableExistsOption::try_from(options.if_exists).unwrap_or(TableExistsOption::Unspecified);
    use TableExistsOption as E;
    use TableNotExistOption as N;
    Ok(match (if_missing, if_exists) {
        (N::Create, E::Fail | E::Unspecified) => IngestMode::Create,
        (N::Fail | N::Unspecified, E::Append) => IngestMode::Append,
        (N::Create, E::Append) => IngestMode::CreateOrAppend,
        (N::Create, E::Replace) => IngestMode::Replace,
        (N::Fail | N::Unspecified, E::Replace) => IngestMode::ReplaceExisting,
        (missing, exists) => {
            return Err(ServerError::BadRequest(format!(
                "unsupported ingest options: if_not_exist={missing:?}, if_exists={exists:?}"
            )));
        }
    })
}

type HandshakeStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;
type DoGetResponse = Result<Response<<DriftFlightSql as FlightService>::DoGetStream>, Status>;
type ActionResponse = Result<Response<<DriftFlightSql as FlightService>::DoActionStream>, Status>;

#[tonic::async_trait]
impl FlightSqlService for DriftFlightSql {
    type FlightService = DriftFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().map(str::to_string));
        let token = match header {
            Some(Ok(value)) => match parse_authorization(&value)? {
                Credentials::Basic { user, password } => self.log_in(user, password).await?,
                Credentials::Bearer(token) => {
                    // JDBC calls Handshake again with the token it holds.
                    self.state.sessions.get(&token).ok_or_else(|| {
                        ServerError::Unauthenticated("invalid or expired token".into())
                    })?;
                    token
                }
            },
            Some(Err(_)) => {
                return Err(
                    ServerError::Unauthenticated("unreadable authorization header".into()).into(),
                );
            }
            None if self.state.auth => {
                return Err(ServerError::Unauthenticated(
                    "send basic credentials (user and password)".into(),
                )
                .into());
            }
            None => self.state.sessions.open("anonymous")?.0,
        };
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let mut response =
            Response::new(Box::pin(futures::stream::iter([Ok(response)])) as HandshakeStream);
        let value: MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("token is not a header value"))?;
        response.metadata_mut().insert("authorization", value);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let client = self.client(&request)?;
        self.check_transaction(&client, query.transaction_id.as_ref())?;
        let statement = parse_statement(&query.query).map_err(ServerError::from)?;
        let info = self
            .start(&client, Work::Statement(statement), request.into_inner())
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let client = self.client(&request)?;
        let entry = self.prepared(&client, &query.prepared_statement_handle)?;
        let statement = bound_query(&entry)?;
        let info = self.start(&client, statement, request.into_inner()).await?;
        Ok(Response::new(info))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        let client = self.client(&request)?;
        let id = parse_handle(&ticket.statement_handle, "query")?;
        self.stream_query(&client, id)
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        // Tickets we hand out always name a started query; a client that
        // sends the command itself gets it run now.
        let client = self.client(&request)?;
        let entry = self.prepared(&client, &query.prepared_statement_handle)?;
        let (id, _, _) = self.park(&client, bound_query(&entry)?).await?;
        self.stream_query(&client, id)
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        let schema = query.into_builder().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        _query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        self.client(&request)?;
        self.batch_response(metadata::catalogs())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        let schema = query.clone().into_builder().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        self.client(&request)?;
        self.batch_response(metadata::db_schemas(query))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        let schema = metadata::tables_schema(query.include_schema);
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        let client = self.client(&request)?;
        let mut sql = client.sql.lock().await;
        let batch = metadata::tables(query, &mut sql).await;
        self.batch_response(batch)
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        let schema = query.into_builder().schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        self.client(&request)?;
        self.batch_response(metadata::table_types())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        let schema = query.clone().into_builder(&self.state.sql_info).schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        self.client(&request)?;
        let batch = query.into_builder(&self.state.sql_info).build();
        self.batch_response(batch.map_err(ServerError::from))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        self.metadata_info(
            query,
            &metadata::primary_keys_schema(),
            request.into_inner(),
        )
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        let client = self.client(&request)?;
        let sql = client.sql.lock().await;
        self.batch_response(metadata::primary_keys(&query, &sql))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.foreign_keys_info(query, request)
    }

    async fn do_get_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        let filter = metadata::ForeignKeyFilter::Exported {
            table: query.table.clone(),
        };
        let scope = [query.catalog.as_deref(), query.db_schema.as_deref()];
        self.foreign_keys_data(filter, scope, &request).await
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.foreign_keys_info(query, request)
    }

    async fn do_get_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        let filter = metadata::ForeignKeyFilter::Imported {
            table: query.table.clone(),
        };
        let scope = [query.catalog.as_deref(), query.db_schema.as_deref()];
        self.foreign_keys_data(filter, scope, &request).await
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.foreign_keys_info(query, request)
    }

    async fn do_get_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        let filter = metadata::ForeignKeyFilter::Cross {
            pk_table: query.pk_table.clone(),
            fk_table: query.fk_table.clone(),
        };
        let scope = [query.fk_catalog.as_deref(), query.fk_db_schema.as_deref()];
        self.foreign_keys_data(filter, scope, &request).await
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.client(&request)?;
        let schema = query.into_builder(&self.state.xdbc).schema();
        self.metadata_info(query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> DoGetResponse {
        self.client(&request)?;
        let batch = query.into_builder(&self.state.xdbc).build();
        self.batch_response(batch.map_err(ServerError::from))
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let client = self.client(&request)?;
        self.check_transaction(&client, command.transaction_id.as_ref())?;
        let statement = parse_statement(&command.query).map_err(ServerError::from)?;
        Ok(self.update(&client, Work::Statement(statement)).await?)
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let client = self.client(&request)?;
        if command.temporary {
            return Err(ServerError::Unsupported("ingest into a temporary table".into()).into());
        }
        self.check_transaction(&client, command.transaction_id.as_ref())?;
        check_namespace(command.catalog.as_deref(), command.schema.as_deref())?;
        let mode = ingest_mode(&command)?;
        let (schema, batches) = read_batches(request.into_inner(), &self.ingest_upload()).await?;
        let mut sql = client.sql.lock().await;
        let result = sql
            .ingest(&command.table, mode, &schema, &batches)
            .await
            .map_err(ServerError::from)?;
        Ok(result.rows_affected.map_or(0, |n| n as i64))
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let client = self.client(&request)?;
        let upload = self.parameter_upload(self.state.limits.max_message_bytes);
        let (_, batches) = read_batches(request.into_inner(), &upload).await?;
        let rows = parameter_rows(&batches)?;
        self.with_prepared(&client, &query.prepared_statement_handle, |entry| {
            entry.parameters = rows
        })?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(query.prepared_statement_handle),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let client = self.client(&request)?;
        let mut entry = self.prepared(&client, &query.prepared_statement_handle)?;
        let upload = self.parameter_upload(self.state.limits.ingest_max_bytes);
        let (_, batches) = read_batches(request.into_inner(), &upload).await?;
        if !batches.is_empty() {
            entry.parameters = parameter_rows(&batches)?;
        }
        let prepared = entry.prepared;
        let rows = match (entry.parameters.len(), prepared.parameter_count) {
            (0, 0) => {
                return Ok(self
                    .update(&client, Work::Prepared(prepared, Vec::new()))
                    .await?);
            }
            (0, n) => {
                return Err(ServerError::BadRequest(format!(
                    "the statement takes {n} parameter(s) and none were bound"
                ))
                .into());
            }
            _ => entry.parameters,
        };
        // Many rows for one INSERT … VALUES become one multi-row insert: one commit.
        let timeout = self.state.limits.query_timeout;
        let mut sql = client.sql.lock().await;
        let count = tokio::time::timeout(timeout, sql.execute_prepared_rows(&prepared, &rows))
            .await
            .map_err(|_| ServerError::QueryTimeout(timeout))?
            .map_err(ServerError::from)?;
        Ok(count as i64)
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let client = self.client(&request)?;
        self.check_transaction(&client, query.transaction_id.as_ref())?;
        self.check_prepared_room(&client)?;
        let prepared = {
            let mut sql = client.sql.lock().await;
            let timeout = self.state.limits.query_timeout;
            off_workers(tokio::time::timeout(timeout, sql.prepare(&query.query)))
                .await
                .map_err(|_| ServerError::QueryTimeout(timeout))?
                .map_err(ServerError::from)?
        };
        let dataset_schema = ipc_schema(&wire_schema(&prepared.schema))?;
        let parameter_fields: Vec<arrow::datatypes::Field> = prepared
            .parameter_types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let data_type = t.clone().unwrap_or(arrow::datatypes::DataType::Null);
                arrow::datatypes::Field::new(format!("${}", i + 1), data_type, true)
            })
            .collect();
        let parameter_schema = ipc_schema(&Schema::new(parameter_fields))?;
        let id = self.state.queries.add_handle();
        {
            let mut open = client.prepared.lock();
            // Checked again: another call of this session may have prepared meanwhile.
            self.check_prepared_count(open.len())?;
            open.insert(
                id,
                PreparedEntry {
                    prepared,
                    parameters: Vec::new(),
                },
            );
        }
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: id.to_string().into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let client = self.client(&request)?;
        let id = parse_handle(&query.prepared_statement_handle, "prepared statement")?;
        client.prepared.lock().remove(&id);
        Ok(())
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        let client = self.client(&request)?;
        let transaction_id = self.begin_transaction(&client).await?;
        Ok(ActionBeginTransactionResult { transaction_id })
    }

    async fn do_action_end_transaction(
        &self,
        query: ActionEndTransactionRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let client = self.client(&request)?;
        let ending = match query.action() {
            EndTransaction::Commit => Ending::Commit,
            EndTransaction::Rollback => Ending::Rollback,
            EndTransaction::Unspecified => {
                return Err(
                    ServerError::BadRequest("EndTransaction needs an action".into()).into(),
                );
            }
        };
        Ok(self
            .end_transaction(&client, &query.transaction_id, ending)
            .await?)
    }

    async fn do_action_begin_savepoint(
        &self,
        query: ActionBeginSavepointRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginSavepointResult, Status> {
        let client = self.client(&request)?;
        let savepoint_id = self
            .begin_savepoint(&client, &query.transaction_id, &query.name)
            .await?;
        Ok(ActionBeginSavepointResult { savepoint_id })
    }

    async fn do_action_end_savepoint(
        &self,
        query: ActionEndSavepointRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let client = self.client(&request)?;
        // arrow-flight does not re-export the `EndSavepoint` enum: 1 = RELEASE, 2 = ROLLBACK.
        let ending = match query.action {
            1 => Ending::Commit,
            2 => Ending::Rollback,
            _ => {
                return Err(ServerError::BadRequest("EndSavepoint needs an action".into()).into());
            }
        };
        Ok(self
            .end_savepoint(&client, &query.savepoint_id, ending)
            .await?)
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let client = self.client(&request)?;
        let info = FlightInfo::decode(query.info.as_ref())
            .map_err(|e| ServerError::BadRequest(format!("CancelQuery: {e}")))?;
        let result = if self.cancel_query_in(&client, &info) {
            CANCEL_RESULT_CANCELLED
        } else {
            CANCEL_RESULT_NOT_CANCELLABLE
        };
        Ok(ActionCancelQueryResult { result })
    }

    async fn do_action_fallback(&self, request: Request<Action>) -> ActionResponse {
        match request.get_ref().r#type.as_str() {
            "CancelFlightInfo" => self.cancel_flight_info(request),
            "CloseSession" => self.close_session(request),
            other => Err(ServerError::BadRequest(format!("unknown action {other:?}")).into()),
        }
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl DriftFlightSql {
    /// The standard `CancelFlightInfo` action: stop the query a FlightInfo names.
    fn cancel_flight_info(&self, request: Request<Action>) -> ActionResponse {
        let client = self.client(&request)?;
        let cancel = CancelFlightInfoRequest::decode(request.get_ref().body.as_ref())
            .map_err(|e| ServerError::BadRequest(format!("CancelFlightInfo: {e}")))?;
        let status = match cancel.info {
            Some(info) if self.cancel_query_in(&client, &info) => CancelStatus::Cancelled,
            _ => CancelStatus::NotCancellable,
        };
        let body = CancelFlightInfoResult::new(status).encode_to_vec();
        let result = arrow_flight::Result::new(body);
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(result)]))))
    }

    /// The standard `CloseSession` action: forget the caller's session now
    /// rather than when it times out.
    fn close_session(&self, request: Request<Action>) -> ActionResponse {
        self.client(&request)?;
        if let Some(token) = bearer_token(&request)? {
            self.state.sessions.close(&token);
        }
        // CloseSessionResult { status: CLOSED (1) }, field 1 as a varint.
        let body = bytes::Bytes::from_static(&[0x08, 0x01]);
        let result = arrow_flight::Result::new(body);
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(result)]))))
    }
}

/// Only the one catalog and schema exist.
fn check_namespace(catalog: Option<&str>, schema: Option<&str>) -> Result<()> {
    use driftdb_engine::sql::{CATALOG_NAME, SCHEMA_NAME};
    if catalog.is_some_and(|c| !c.is_empty() && c != CATALOG_NAME)
        || schema.is_some_and(|s| !s.is_empty() && s != SCHEMA_NAME)
    {
        return Err(ServerError::Engine(driftdb_engine::Error::UnknownTable {
            name: format!("{}.{}", catalog.unwrap_or(""), schema.unwrap_or("")),
            context: format!(" (the only schema is {CATALOG_NAME}.{SCHEMA_NAME})"),
        }));
    }
    Ok(())
}

/// Run `future` (a statement's planning and, for a write, its commit) on
/// this thread after handing the thread's other tasks to the rest of the
/// runtime. Planning is CPU work that does not yield (DataFusion's
/// analysis of a large arithmetic predicate can take seconds), so the
/// query timeout cannot interrupt it; this keeps it from stalling other
/// clients' calls queued on the same worker.
async fn off_workers<F: std::future::Future>(future: F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::current().runtime_flavor() {
        RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| Handle::current().block_on(future))
        }
        _ => future.await,
    }
}
