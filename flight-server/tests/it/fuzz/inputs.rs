//! What the Flight fuzz targets send, as proptest strategies: SQL from the
//! engine's `.slt` corpus with bytes changed, prepared-statement and query
//! handles (real ones, changed ones, made-up ones), every Flight SQL
//! command with random fields, Any messages of unknown types, raw bytes,
//! actions with matching and mismatched bodies, and DoPut streams whose
//! messages are changed, dropped or repeated. Every encoding can have its
//! bytes changed after it is built.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array,
    NullArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginTransactionRequest, ActionCancelQueryRequest,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedSubstraitPlanRequest, ActionEndSavepointRequest,
    ActionEndTransactionRequest, Any, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, ProstMessageExt, TableDefinitionOptions,
    TicketStatementQuery,
};
use arrow_flight::{CancelFlightInfoRequest, FlightData, FlightEndpoint, FlightInfo, Ticket};
use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message;

/// Tokens inserted into SQL text.
const SQL_TOKENS: &[&str] = &[
    " FOR SYSTEM_TIME ALL ",
    " FOR SYSTEM_TIME AS OF ",
    " AS OF ",
    " VERSION ",
    "(",
    ")",
    "'",
    "''",
    " $1 ",
    " ? ",
    "\0",
    " 9223372036854775808 ",
    " NULL ",
    ";",
    " BEGIN; ",
    " COMMIT ",
];

/// Names tried as catalogs, schemas, tables and patterns.
const NAMES: &[&str] = &[
    "",
    "t",
    "users",
    "dept",
    "driftdb",
    "public",
    "information_schema",
    "%",
    "_",
    "%%%_%",
    "\\",
    "'",
    "\"",
    "a\0b",
    "t; DROP TABLE t",
    "ingested",
    "Ingested Too",
];

/// Action types: those the service knows, then unknown ones.
pub const ACTIONS: &[&str] = &[
    "CreatePreparedStatement",
    "ClosePreparedStatement",
    "CreatePreparedSubstraitPlan",
    "BeginTransaction",
    "EndTransaction",
    "BeginSavepoint",
    "EndSavepoint",
    "CancelQuery",
    "CancelFlightInfo",
    "CloseSession",
    "RenewFlightEndpoint",
    "SetSessionOptions",
    "GetSessionOptions",
    "",
    "createpreparedstatement",
    "\u{0}",
];

/// What a case knows of the server so far: handles it was given.
#[derive(Debug, Default)]
pub struct Known {
    pub corpus: Vec<String>,
    pub prepared: Vec<Bytes>,
    pub transactions: Vec<Bytes>,
    pub savepoints: Vec<Bytes>,
    pub tickets: Vec<Ticket>,
}

/// A change to bytes after they are encoded.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Overwrite(Index, Vec<u8>),
}

fn byte_edit() -> BoxedStrategy<ByteEdit> {
    let some_bytes = proptest::collection::vec(any::<u8>(), 1..12);
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| ByteEdit::Flip(at, bit)),
        1 => any::<Index>().prop_map(ByteEdit::Truncate),
        1 => (any::<Index>(), some_bytes.clone()).prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        1 => (any::<Index>(), some_bytes).prop_map(|(at, b)| ByteEdit::Overwrite(at, b)),
    ]
    .boxed()
}

/// Up to `max - 1` edits, none half the time.
fn byte_edits(max: usize) -> BoxedStrategy<Vec<ByteEdit>> {
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(byte_edit(), 1..max),
    ]
    .boxed()
}

pub fn edit_bytes(bytes: &mut Vec<u8>, edits: &[ByteEdit]) {
    for edit in edits {
        let len = bytes.len();
        match edit {
            ByteEdit::Flip(at, bit) if len > 0 => bytes[at.index(len)] ^= 1 << bit,
            ByteEdit::Truncate(at) => bytes.truncate(at.index(len + 1)),
            ByteEdit::Insert(at, new) => {
                let at = at.index(len + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            ByteEdit::Overwrite(at, new) if len > 0 => {
                let at = at.index(len);
                let end = (at + new.len()).min(len);
                bytes[at..end].copy_from_slice(&new[..end - at]);
            }
            _ => {}
        }
    }
}

/// SQL text: a corpus statement with bytes changed or tokens inserted, or
/// a soup of tokens.
#[derive(Debug, Clone)]
pub enum Sql {
    Corpus(Index, Vec<ByteEdit>),
    Inserted(Index, Index, &'static str),
    Tokens(Vec<&'static str>),
}

fn sql() -> BoxedStrategy<Sql> {
    prop_oneof![
        3 => (any::<Index>(), byte_edits(3)).prop_map(|(at, e)| Sql::Corpus(at, e)),
        2 => (any::<Index>(), any::<Index>(), proptest::sample::select(SQL_TOKENS))
            .prop_map(|(s, at, t)| Sql::Inserted(s, at, t)),
        1 => proptest::collection::vec(proptest::sample::select(SQL_TOKENS), 1..8).prop_map(Sql::Tokens),
    ]
    .boxed()
}

impl Sql {
    pub fn text(&self, known: &Known) -> String {
        let corpus = &known.corpus;
        match self {
            Sql::Corpus(at, edits) => {
                let mut bytes = corpus[at.index(corpus.len())].clone().into_bytes();
                edit_bytes(&mut bytes, edits);
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Sql::Inserted(statement, at, token) => {
                let mut text = corpus[statement.index(corpus.len())].clone();
                let mut cut = at.index(text.len() + 1);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.insert_str(cut, token);
                text
            }
            Sql::Tokens(tokens) => tokens.concat(),
        }
    }
}

/// A handle: one the server gave (as is or changed), a number it never
/// gave, or random bytes.
#[derive(Debug, Clone)]
pub enum Handle {
    Known(Index),
    Edited(Index, Vec<ByteEdit>),
    Number(u64),
    Random(Vec<u8>),
}

fn handle() -> BoxedStrategy<Handle> {
    prop_oneof![
        3 => any::<Index>().prop_map(Handle::Known),
        1 => (any::<Index>(), byte_edits(3)).prop_map(|(at, e)| Handle::Edited(at, e)),
        1 => any::<u64>().prop_map(Handle::Number),
        1 => proptest::collection::vec(any::<u8>(), 0..24).prop_map(Handle::Random),
    ]
    .boxed()
}

impl Handle {
    pub fn bytes(&self, known: &[Bytes]) -> Bytes {
        let pick = |at: &Index| match known.is_empty() {
            true => Bytes::from_static(b"1"),
            false => known[at.index(known.len())].clone(),
        };
        match self {
            Handle::Known(at) => pick(at),
            Handle::Edited(at, edits) => {
                let mut bytes = pick(at).to_vec();
                edit_bytes(&mut bytes, edits);
                bytes.into()
            }
            Handle::Number(n) => n.to_string().into(),
            Handle::Random(bytes) => bytes.clone().into(),
        }
    }
}

fn name() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(NAMES).prop_map(str::to_string),
        1 => "\\PC{0,16}",
    ]
    .boxed()
}

fn maybe_name() -> BoxedStrategy<Option<String>> {
    proptest::option::of(name()).boxed()
}

/// Every Flight SQL command, with random fields, plus messages the service
/// has no command for.
#[derive(Debug, Clone)]
pub enum Command {
    Query(Sql, Option<Handle>),
    Update(Sql, Option<Handle>),
    Prepared(Handle),
    PreparedUpdate(Handle),
    TicketQuery(Handle),
    Tables(
        Option<String>,
        Option<String>,
        Option<String>,
        Vec<String>,
        bool,
    ),
    Schemas(Option<String>, Option<String>),
    PrimaryKeys(Option<String>, Option<String>, String),
    ExportedKeys(Option<String>, String),
    ImportedKeys(Option<String>, String),
    CrossReference(String, String, Option<String>),
    SqlInfo(Vec<u32>),
    XdbcTypeInfo(Option<i32>),
    Catalogs,
    TableTypes,
    Ingest(Ingest),
    AnyOf(String, Vec<u8>),
    Raw(Vec<u8>),
}

/// A `CommandStatementIngest` with random fields.
#[derive(Debug, Clone)]
pub struct Ingest {
    table: String,
    if_not_exist: i32,
    if_exists: i32,
    temporary: bool,
    schema: Option<String>,
    transaction: Option<Handle>,
}

fn ingest() -> BoxedStrategy<Ingest> {
    (
        name(),
        prop_oneof![4 => 0i32..3, 1 => any::<i32>()],
        prop_oneof![4 => 0i32..4, 1 => any::<i32>()],
        proptest::bool::weighted(0.1),
        maybe_name(),
        proptest::option::weighted(0.1, handle()),
    )
        .prop_map(
            |(table, if_not_exist, if_exists, temporary, schema, transaction)| Ingest {
                table,
                if_not_exist,
                if_exists,
                temporary,
                schema,
                transaction,
            },
        )
        .boxed()
}

fn command() -> BoxedStrategy<Command> {
    let transaction = || proptest::option::weighted(0.15, handle());
    let metadata = prop_oneof![
        (
            maybe_name(),
            maybe_name(),
            maybe_name(),
            proptest::collection::vec(name(), 0..3),
            any::<bool>()
        )
            .prop_map(|(c, s, t, types, schema)| Command::Tables(c, s, t, types, schema)),
        (maybe_name(), maybe_name()).prop_map(|(c, s)| Command::Schemas(c, s)),
        (maybe_name(), maybe_name(), name()).prop_map(|(c, s, t)| Command::PrimaryKeys(c, s, t)),
        (maybe_name(), name()).prop_map(|(c, t)| Command::ExportedKeys(c, t)),
        (maybe_name(), name()).prop_map(|(c, t)| Command::ImportedKeys(c, t)),
        (name(), name(), maybe_name()).prop_map(|(p, f, c)| Command::CrossReference(p, f, c)),
        proptest::collection::vec(prop_oneof![0u32..20, 500u32..520, any::<u32>()], 0..6)
            .prop_map(Command::SqlInfo),
        proptest::option::of(any::<i32>()).prop_map(Command::XdbcTypeInfo),
        Just(Command::Catalogs),
        Just(Command::TableTypes),
    ];
    prop_oneof![
        6 => (sql(), transaction()).prop_map(|(s, t)| Command::Query(s, t)),
        2 => (sql(), transaction()).prop_map(|(s, t)| Command::Update(s, t)),
        3 => handle().prop_map(Command::Prepared),
        1 => handle().prop_map(Command::PreparedUpdate),
        2 => handle().prop_map(Command::TicketQuery),
        4 => metadata,
        1 => ingest().prop_map(Command::Ingest),
        1 => ("\\PC{0,40}", proptest::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(url, value)| Command::AnyOf(url, value)),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Command::Raw),
    ]
    .boxed()
}

impl Command {
    /// The command as the bytes of a descriptor's `cmd` or a ticket.
    pub fn encode(&self, known: &Known) -> Vec<u8> {
        let transaction = |t: &Option<Handle>| t.as_ref().map(|h| h.bytes(&known.transactions));
        let prepared = |h: &Handle| h.bytes(&known.prepared);
        match self {
            Command::Query(sql, t) => CommandStatementQuery {
                query: sql.text(known),
                transaction_id: transaction(t),
            }
            .as_any()
            .encode_to_vec(),
            Command::Update(sql, t) => CommandStatementUpdate {
                query: sql.text(known),
                transaction_id: transaction(t),
            }
            .as_any()
            .encode_to_vec(),
            Command::Prepared(h) => CommandPreparedStatementQuery {
                prepared_statement_handle: prepared(h),
            }
            .as_any()
            .encode_to_vec(),
            Command::PreparedUpdate(h) => CommandPreparedStatementUpdate {
                prepared_statement_handle: prepared(h),
            }
            .as_any()
            .encode_to_vec(),
            Command::TicketQuery(h) => TicketStatementQuery {
                statement_handle: h.bytes(&[]),
            }
            .as_any()
            .encode_to_vec(),
            Command::Ingest(ingest) => ingest.command(known).as_any().encode_to_vec(),
            Command::AnyOf(type_url, value) => Any {
                type_url: type_url.clone(),
                value: value.clone().into(),
            }
            .encode_to_vec(),
            Command::Raw(bytes) => bytes.clone(),
            metadata => metadata.encode_metadata(),
        }
    }

    fn encode_metadata(&self) -> Vec<u8> {
        match self.clone() {
            Command::Tables(catalog, schema, table, table_types, include_schema) => {
                CommandGetTables {
                    catalog,
                    db_schema_filter_pattern: schema,
                    table_name_filter_pattern: table,
                    table_types,
                    include_schema,
                }
                .as_any()
            }
            Command::Schemas(catalog, pattern) => CommandGetDbSchemas {
                catalog,
                db_schema_filter_pattern: pattern,
            }
            .as_any(),
            Command::PrimaryKeys(catalog, db_schema, table) => CommandGetPrimaryKeys {
                catalog,
                db_schema,
                table,
            }
            .as_any(),
            Command::ExportedKeys(catalog, table) => CommandGetExportedKeys {
                catalog,
                db_schema: None,
                table,
            }
            .as_any(),
            Command::ImportedKeys(catalog, table) => CommandGetImportedKeys {
                catalog,
                db_schema: None,
                table,
            }
            .as_any(),
            Command::CrossReference(pk_table, fk_table, fk_catalog) => CommandGetCrossReference {
                pk_catalog: None,
                pk_db_schema: None,
                pk_table,
                fk_catalog,
                fk_db_schema: None,
                fk_table,
            }
            .as_any(),
            Command::SqlInfo(info) => CommandGetSqlInfo { info }.as_any(),
            Command::XdbcTypeInfo(data_type) => CommandGetXdbcTypeInfo { data_type }.as_any(),
            Command::Catalogs => CommandGetCatalogs {}.as_any(),
            _ => CommandGetTableTypes {}.as_any(),
        }
        .encode_to_vec()
    }
}

impl Ingest {
    fn command(&self, known: &Known) -> CommandStatementIngest {
        CommandStatementIngest {
            table_definition_options: Some(TableDefinitionOptions {
                if_not_exist: self.if_not_exist,
                if_exists: self.if_exists,
            }),
            table: self.table.clone(),
            schema: self.schema.clone(),
            catalog: None,
            temporary: self.temporary,
            transaction_id: self
                .transaction
                .as_ref()
                .map(|h| h.bytes(&known.transactions)),
            options: Default::default(),
        }
    }
}

/// A command, encoded, then its bytes changed.
#[derive(Debug, Clone)]
pub struct Wire {
    pub command: Command,
    pub edits: Vec<ByteEdit>,
}

pub fn wire() -> BoxedStrategy<Wire> {
    (command(), byte_edits(4))
        .prop_map(|(command, edits)| Wire { command, edits })
        .boxed()
}

impl Wire {
    pub fn bytes(&self, known: &Known) -> Bytes {
        let mut bytes = self.command.encode(known);
        edit_bytes(&mut bytes, &self.edits);
        bytes.into()
    }
}

/// A ticket: one the server gave (as is or changed) or a command.
#[derive(Debug, Clone)]
pub enum TicketCase {
    Known(Index, Vec<ByteEdit>),
    Command(Wire),
}

pub fn ticket() -> BoxedStrategy<TicketCase> {
    prop_oneof![
        1 => (any::<Index>(), byte_edits(3)).prop_map(|(at, e)| TicketCase::Known(at, e)),
        2 => wire().prop_map(TicketCase::Command),
    ]
    .boxed()
}

impl TicketCase {
    pub fn ticket(&self, known: &Known) -> Ticket {
        match self {
            TicketCase::Known(at, edits) if !known.tickets.is_empty() => {
                let mut bytes = known.tickets[at.index(known.tickets.len())].ticket.to_vec();
                edit_bytes(&mut bytes, edits);
                Ticket::new(bytes)
            }
            TicketCase::Known(..) => Ticket::new(Bytes::new()),
            TicketCase::Command(wire) => Ticket::new(wire.bytes(known)),
        }
    }
}

/// The body of an action, for any of the action types.
#[derive(Debug, Clone)]
pub enum Body {
    CreatePrepared(Sql, Option<Handle>),
    ClosePrepared(Handle),
    Substrait(Vec<u8>),
    BeginTransaction,
    EndTransaction(Handle, i32),
    BeginSavepoint(Handle, String),
    EndSavepoint(Handle, i32),
    CancelQuery(Option<TicketCase>),
    CancelFlightInfo(Option<TicketCase>),
    Random(Vec<u8>),
}

/// An action: a type (the body's own, or any) and a body, its bytes changed.
#[derive(Debug, Clone)]
pub struct ActionCase {
    pub kind: Option<&'static str>,
    pub body: Body,
    pub edits: Vec<ByteEdit>,
}

fn body() -> BoxedStrategy<Body> {
    let maybe_ticket = || proptest::option::of(ticket());
    prop_oneof![
        4 => (sql(), proptest::option::weighted(0.1, handle()))
            .prop_map(|(s, t)| Body::CreatePrepared(s, t)),
        2 => handle().prop_map(Body::ClosePrepared),
        1 => proptest::collection::vec(any::<u8>(), 0..32).prop_map(Body::Substrait),
        2 => Just(Body::BeginTransaction),
        2 => (handle(), -1i32..4).prop_map(|(h, a)| Body::EndTransaction(h, a)),
        1 => (handle(), name()).prop_map(|(h, n)| Body::BeginSavepoint(h, n)),
        1 => (handle(), -1i32..4).prop_map(|(h, a)| Body::EndSavepoint(h, a)),
        1 => maybe_ticket().prop_map(Body::CancelQuery),
        1 => maybe_ticket().prop_map(Body::CancelFlightInfo),
        1 => proptest::collection::vec(any::<u8>(), 0..48).prop_map(Body::Random),
    ]
    .boxed()
}

pub fn action() -> BoxedStrategy<ActionCase> {
    let kind = prop_oneof![
        3 => Just(None),
        1 => proptest::sample::select(ACTIONS).prop_map(Some),
    ];
    (kind, body(), byte_edits(3))
        .prop_map(|(kind, body, edits)| ActionCase { kind, body, edits })
        .boxed()
}

impl ActionCase {
    /// The action type and body bytes to send.
    pub fn encode(&self, known: &Known) -> (String, Bytes) {
        let (own_kind, mut bytes) = self.body.encode(known);
        edit_bytes(&mut bytes, &self.edits);
        (self.kind.unwrap_or(own_kind).to_string(), bytes.into())
    }
}

impl Body {
    fn encode(&self, known: &Known) -> (&'static str, Vec<u8>) {
        let transaction = |h: &Handle| h.bytes(&known.transactions);
        match self {
            Body::CreatePrepared(sql, t) => (
                "CreatePreparedStatement",
                ActionCreatePreparedStatementRequest {
                    query: sql.text(known),
                    transaction_id: t.as_ref().map(transaction),
                }
                .as_any()
                .encode_to_vec(),
            ),
            Body::ClosePrepared(h) => (
                "ClosePreparedStatement",
                ActionClosePreparedStatementRequest {
                    prepared_statement_handle: h.bytes(&known.prepared),
                }
                .as_any()
                .encode_to_vec(),
            ),
            Body::Substrait(plan) => (
                "CreatePreparedSubstraitPlan",
                ActionCreatePreparedSubstraitPlanRequest {
                    plan: Some(arrow_flight::sql::SubstraitPlan {
                        plan: plan.clone().into(),
                        version: "0.1".into(),
                    }),
                    transaction_id: None,
                }
                .as_any()
                .encode_to_vec(),
            ),
            Body::BeginTransaction => (
                "BeginTransaction",
                ActionBeginTransactionRequest {}.as_any().encode_to_vec(),
            ),
            Body::EndTransaction(h, action) => (
                "EndTransaction",
                ActionEndTransactionRequest {
                    transaction_id: transaction(h),
                    action: *action,
                }
                .as_any()
                .encode_to_vec(),
            ),
            Body::BeginSavepoint(h, name) => (
                "BeginSavepoint",
                ActionBeginSavepointRequest {
                    transaction_id: transaction(h),
                    name: name.clone(),
                }
                .as_any()
                .encode_to_vec(),
            ),
            Body::EndSavepoint(h, action) => (
                "EndSavepoint",
                ActionEndSavepointRequest {
                    savepoint_id: h.bytes(&known.savepoints),
                    action: *action,
                }
                .as_any()
                .encode_to_vec(),
            ),
            Body::CancelQuery(ticket) => (
                "CancelQuery",
                ActionCancelQueryRequest {
                    info: flight_info(ticket, known).encode_to_vec().into(),
                }
                .as_any()
                .encode_to_vec(),
            ),
            Body::CancelFlightInfo(ticket) => (
                "CancelFlightInfo",
                CancelFlightInfoRequest {
                    info: Some(flight_info(ticket, known)),
                }
                .encode_to_vec(),
            ),
            Body::Random(bytes) => ("", bytes.clone()),
        }
    }
}

/// A FlightInfo whose one endpoint holds `ticket` (none: no endpoint).
fn flight_info(ticket: &Option<TicketCase>, known: &Known) -> FlightInfo {
    let info = FlightInfo::new();
    match ticket {
        Some(ticket) => info.with_endpoint(FlightEndpoint::new().with_ticket(ticket.ticket(known))),
        None => info,
    }
}

/// Column types a DoPut batch may have.
const COLUMN_TYPES: usize = 9;

/// A small batch: columns of the types picked, `rows` rows.
#[derive(Debug, Clone)]
pub struct BatchCase {
    pub columns: Vec<u8>,
    pub rows: u8,
}

fn batch_case() -> BoxedStrategy<BatchCase> {
    (
        proptest::collection::vec(0u8..COLUMN_TYPES as u8, 0..5),
        0u8..20,
    )
        .prop_map(|(columns, rows)| BatchCase { columns, rows })
        .boxed()
}

impl BatchCase {
    pub fn batch(&self) -> RecordBatch {
        let rows = usize::from(self.rows);
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, kind)| column(i, *kind, rows))
            .unzip();
        let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
            .expect("a batch of matching columns")
    }
}

fn column(i: usize, kind: u8, rows: usize) -> (Field, ArrayRef) {
    let n = 0..rows as i64;
    let (data_type, array): (DataType, ArrayRef) = match kind {
        0 => (DataType::Int64, Arc::new(Int64Array::from_iter_values(n))),
        1 => (
            DataType::Int32,
            Arc::new(Int32Array::from_iter(
                n.map(|v| (v % 3 != 0).then_some(v as i32)),
            )),
        ),
        2 => (
            DataType::Utf8,
            Arc::new(StringArray::from_iter_values(n.map(|v| format!("v{v}'\"")))),
        ),
        3 => (
            DataType::Float64,
            Arc::new(Float64Array::from_iter_values(n.map(|v| v as f64 / 7.0))),
        ),
        4 => (
            DataType::Boolean,
            Arc::new(BooleanArray::from_iter(n.map(|v| Some(v % 2 == 0)))),
        ),
        5 => (DataType::Null, Arc::new(NullArray::new(rows))),
        6 => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                n.map(|v| v * 1_000_000),
            )),
        ),
        7 => (
            DataType::Date32,
            Arc::new(Date32Array::from_iter_values(n.map(|v| v as i32))),
        ),
        _ => (
            DataType::Binary,
            Arc::new(BinaryArray::from_iter_values(n.map(|v| v.to_le_bytes()))),
        ),
    };
    (Field::new(format!("c{i}"), data_type, true), array)
}

/// A change to a DoPut stream's messages.
#[derive(Debug, Clone)]
pub enum StreamEdit {
    Header(Index, Vec<ByteEdit>),
    Body(Index, Vec<ByteEdit>),
    AppMetadata(Index, Vec<u8>),
    Drop(Index),
    Repeat(Index),
    Extra(Vec<u8>, Vec<u8>),
}

fn stream_edit() -> BoxedStrategy<StreamEdit> {
    let random = || proptest::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        3 => (any::<Index>(), proptest::collection::vec(byte_edit(), 1..3))
            .prop_map(|(at, e)| StreamEdit::Header(at, e)),
        2 => (any::<Index>(), proptest::collection::vec(byte_edit(), 1..3))
            .prop_map(|(at, e)| StreamEdit::Body(at, e)),
        1 => (any::<Index>(), random()).prop_map(|(at, m)| StreamEdit::AppMetadata(at, m)),
        1 => any::<Index>().prop_map(StreamEdit::Drop),
        1 => any::<Index>().prop_map(StreamEdit::Repeat),
        1 => (random(), random()).prop_map(|(h, b)| StreamEdit::Extra(h, b)),
    ]
    .boxed()
}

/// A DoPut: a descriptor, a batch to encode after it, and changes to the
/// encoded messages.
#[derive(Debug, Clone)]
pub struct Upload {
    pub descriptor: Wire,
    pub batch: BatchCase,
    pub edits: Vec<StreamEdit>,
}

pub fn upload() -> BoxedStrategy<Upload> {
    let descriptor = prop_oneof![
        3 => ingest().prop_map(Command::Ingest),
        2 => handle().prop_map(Command::Prepared),
        2 => handle().prop_map(Command::PreparedUpdate),
        1 => (sql(), Just(None)).prop_map(|(s, t)| Command::Update(s, t)),
        1 => command(),
    ];
    let wire = (descriptor, byte_edits(2)).prop_map(|(command, edits)| Wire { command, edits });
    let edits = prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(stream_edit(), 1..4),
    ];
    (wire, batch_case(), edits)
        .prop_map(|(descriptor, batch, edits)| Upload {
            descriptor,
            batch,
            edits,
        })
        .boxed()
}

/// Apply `edits` to encoded messages.
pub fn edit_stream(messages: &mut Vec<FlightData>, edits: &[StreamEdit]) {
    for edit in edits {
        let len = messages.len();
        match edit {
            StreamEdit::Extra(header, body) => messages.push(FlightData {
                data_header: header.clone().into(),
                data_body: body.clone().into(),
                ..Default::default()
            }),
            _ if len == 0 => {}
            StreamEdit::Header(at, e) => edit_field(&mut messages[at.index(len)].data_header, e),
            StreamEdit::Body(at, e) => edit_field(&mut messages[at.index(len)].data_body, e),
            StreamEdit::AppMetadata(at, m) => {
                messages[at.index(len)].app_metadata = m.clone().into();
            }
            StreamEdit::Drop(at) => {
                messages.remove(at.index(len));
            }
            StreamEdit::Repeat(at) => {
                let at = at.index(len);
                messages.insert(at, messages[at].clone());
            }
        }
    }
}

fn edit_field(field: &mut Bytes, edits: &[ByteEdit]) {
    let mut bytes = field.to_vec();
    edit_bytes(&mut bytes, edits);
    *field = bytes.into();
}

/// The SQL of every record in the engine's `tests/slt` files.
pub fn corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the engine's slt folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    let mut statements = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("read slt");
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if !(line.starts_with("statement ") || line.starts_with("query")) {
                continue;
            }
            let sql: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.trim().is_empty() && l.trim() != "----")
                .collect();
            statements.push(sql.join("\n"));
        }
    }
    statements.retain(|s| !s.is_empty() && s != "REOPEN" && s != "PERSIST");
    assert!(statements.len() > 100, "a corpus of {}", statements.len());
    statements
}
