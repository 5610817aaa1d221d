//! Flight SQL metadata: catalogs, schemas, tables, table types, keys,
//! SqlInfo and XDBC type info. Everything reports the latest commit.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int32Builder, RecordBatch, StringArray, StringBuilder, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetTableTypes, CommandGetTables, Nullable,
    Searchable, SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity, SqlSupportedTransaction,
    XdbcDataType,
};
use driftdb_engine::Session;
use driftdb_engine::catalog::{KeyRef, RefAction, logical_schema};
use driftdb_engine::sql::{CATALOG_NAME, SCHEMA_NAME};

use super::error::Result;
use super::results::wire_schema;

/// Table types DriftDB has.
pub const TABLE_TYPES: [&str; 2] = ["TABLE", "VIEW"];

/// What the server says about itself: only what is true.
pub fn sql_info(transactions: bool) -> SqlInfoData {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "DriftDB");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    let level = if transactions {
        SqlSupportedTransaction::Savepoint
    } else {
        SqlSupportedTransaction::None
    };
    b.append(SqlInfo::FlightSqlServerTransaction, level as i32);
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    b.append(
        SqlInfo::FlightSqlServerIngestTransactionsSupported,
        transactions,
    );
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, true);
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(SqlInfo::SqlKeywords, keywords());
    b.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
    b.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
    b.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
    b.append(SqlInfo::SqlSystemFunctions, SYSTEM_FUNCTIONS);
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlTransactionsSupported, transactions);
    b.append(SqlInfo::SqlSavepointsSupported, transactions);
    b.append(SqlInfo::SqlBatchUpdatesSupported, true);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.build().expect("static SqlInfo is well formed")
}

const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs", "acos", "asin", "atan", "atan2", "cbrt", "ceil", "cos", "degrees", "exp", "floor", "ln",
    "log", "log10", "log2", "mod", "pi", "power", "radians", "random", "round", "sign", "sin",
    "sqrt", "tan", "trunc",
];
const STRING_FUNCTIONS: &[&str] = &[
    "ascii",
    "btrim",
    "char_length",
    "chr",
    "concat",
    "concat_ws",
    "initcap",
    "left",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "md5",
    "octet_length",
    "regexp_like",
    "regexp_replace",
    "repeat",
    "replace",
    "reverse",
    "right",
    "rpad",
    "rtrim",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "substring",
    "translate",
    "trim",
    "upper",
];
const DATETIME_FUNCTIONS: &[&str] = &[
    "current_date",
    "current_time",
    "date_bin",
    "date_part",
    "date_trunc",
    "extract",
    "from_unixtime",
    "make_date",
    "now",
    "time_bucket",
    "to_char",
    "to_date",
    "to_timestamp",
];
const SYSTEM_FUNCTIONS: &[&str] = &["coalesce", "nullif", "history", "commits"];

/// Reserved words of DriftDB's parser.
fn keywords() -> Vec<String> {
    sqlparser::keywords::ALL_KEYWORDS
        .iter()
        .map(|k| k.to_string())
        .collect()
}

/// The catalogs: one.
pub fn catalogs() -> Result<RecordBatch> {
    let mut b = arrow_flight::sql::metadata::GetCatalogsBuilder::new();
    b.append(CATALOG_NAME);
    Ok(b.build()?)
}

/// The schemas matching the request.
pub fn db_schemas(query: CommandGetDbSchemas) -> Result<RecordBatch> {
    let mut b = query.into_builder();
    b.append(CATALOG_NAME, SCHEMA_NAME);
    Ok(b.build()?)
}

/// The table types.
pub fn table_types() -> Result<RecordBatch> {
    let mut b = CommandGetTableTypes {}.into_builder();
    for t in TABLE_TYPES {
        b.append(t);
    }
    Ok(b.build()?)
}

/// The schema a GetTables answer has.
pub fn tables_schema(include_schema: bool) -> SchemaRef {
    CommandGetTables {
        include_schema,
        ..Default::default()
    }
    .into_builder()
    .schema()
}

/// Tables and views matching the request (the builder applies the filters).
pub async fn tables(query: CommandGetTables, session: &mut Session) -> Result<RecordBatch> {
    let include_schema = query.include_schema;
    let mut b = query.into_builder();
    let db = session.db().clone();
    let seq = db.visible_seq();
    let (tables, views) = db.relation_names_at(seq);
    let empty = Schema::empty();
    for name in &tables {
        let schema = match db.table_def_at(name, seq).filter(|_| include_schema) {
            Some(def) => wire_schema(&logical_schema(def.columns_at(seq))),
            None => Arc::new(empty.clone()),
        };
        b.append(CATALOG_NAME, SCHEMA_NAME, name, "TABLE", &schema)?;
    }
    for name in &views {
        let schema = match include_schema {
            true => session.view_schema(name).await?.map(|s| wire_schema(&s)),
            false => None,
        };
        let schema = schema.unwrap_or_else(|| Arc::new(empty.clone()));
        b.append(CATALOG_NAME, SCHEMA_NAME, name, "VIEW", &schema)?;
    }
    Ok(b.build()?)
}

/// The schema of a GetPrimaryKeys answer.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The primary key columns of the requested table.
pub fn primary_keys(query: &CommandGetPrimaryKeys, session: &Session) -> Result<RecordBatch> {
    let db = session.db();
    let seq = db.visible_seq();
    let (mut catalog, mut schema, mut table, mut column, mut key, mut sequence) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        Int32Builder::new(),
    );
    let in_scope = query.catalog.as_deref().is_none_or(|c| c == CATALOG_NAME)
        && query.db_schema.as_deref().is_none_or(|s| s == SCHEMA_NAME);
    if let Some(def) = db.table_def_at(&query.table, seq).filter(|_| in_scope) {
        let columns = def.columns_at(seq);
        for (i, id) in def.primary_key.iter().enumerate() {
            let Some(c) = columns.iter().find(|c| c.id == *id) else {
                continue;
            };
            catalog.append_value(CATALOG_NAME);
            schema.append_value(SCHEMA_NAME);
            table.append_value(&def.name);
            column.append_value(&c.name);
            key.append_value(format!("{}_pkey", def.name));
            sequence.append_value(i as i32 + 1);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(catalog.finish()),
        Arc::new(schema.finish()),
        Arc::new(table.finish()),
        Arc::new(column.finish()),
        Arc::new(key.finish()),
        Arc::new(sequence.finish()),
    ];
    Ok(RecordBatch::try_new(primary_keys_schema(), columns)?)
}

/// The schema of GetImportedKeys, GetExportedKeys and GetCrossReference answers.
pub fn foreign_keys_schema() -> SchemaRef {
    let name = |n: &str, nullable| Field::new(n, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        name("pk_catalog_name", true),
        name("pk_db_schema_name", true),
        name("pk_table_name", false),
        name("pk_column_name", false),
        name("fk_catalog_name", true),
        name("fk_db_schema_name", true),
        name("fk_table_name", false),
        name("fk_column_name", false),
        Field::new("key_sequence", DataType::Int32, false),
        name("fk_key_name", true),
        name("pk_key_name", true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

/// Which foreign keys a GetImportedKeys / GetExportedKeys / GetCrossReference wants.
#[derive(Debug, Clone)]
pub enum ForeignKeyFilter {
    /// The keys `table` references other tables with.
    Imported { table: String },
    /// The keys of other tables referencing `table`.
    Exported { table: String },
    /// The keys of `fk_table` referencing `pk_table`.
    Cross { pk_table: String, fk_table: String },
}

impl ForeignKeyFilter {
    fn wants(&self, parent: &str, child: &str) -> bool {
        match self {
            ForeignKeyFilter::Imported { table } => child == table,
            ForeignKeyFilter::Exported { table } => parent == table,
            ForeignKeyFilter::Cross { pk_table, fk_table } => {
                parent == pk_table && child == fk_table
            }
        }
    }
}

/// Flight SQL's `UpdateDeleteRules` value for a referential action.
fn rule(action: RefAction) -> u8 {
    match action {
        RefAction::Cascade => 0,
        RefAction::Restrict => 1,
        RefAction::SetNull => 2,
        RefAction::NoAction => 3,
        RefAction::SetDefault => 4,
    }
}

/// One column of one foreign key, as a metadata row.
struct ForeignKeyColumn {
    pk_table: String,
    pk_column: String,
    fk_table: String,
    fk_column: String,
    sequence: i32,
    fk_name: String,
    pk_name: String,
    on_update: RefAction,
    on_delete: RefAction,
}

/// The foreign keys `filter` asks for (`in_scope`: the catalog and schema
/// named are ours), one row per column, ordered as Flight SQL documents
/// (by the other side's table, then key sequence).
pub fn foreign_keys(
    filter: &ForeignKeyFilter,
    in_scope: bool,
    session: &Session,
) -> Result<RecordBatch> {
    let db = session.db();
    let seq = db.visible_seq();
    let catalog = db.catalog();
    let mut rows: Vec<ForeignKeyColumn> = Vec::new();
    let tables = catalog
        .tables
        .iter()
        .filter(|t| t.exists_at(seq) && in_scope);
    for child in tables {
        for fk in &child.foreign_keys {
            let Some(parent) = catalog.table_by_id(fk.parent) else {
                continue;
            };
            if !filter.wants(&parent.name, &child.name) {
                continue;
            }
            let pk_name = match parent.key_named_by(&fk.parent_columns) {
                Some(KeyRef::Unique(c)) => parent.uniques[c].name.clone(),
                _ => parent.primary_key_name(),
            };
            let pairs = parent
                .columns_by_id(&fk.parent_columns)
                .into_iter()
                .zip(child.columns_by_id(&fk.columns));
            for (i, (p, c)) in pairs.enumerate() {
                rows.push(ForeignKeyColumn {
                    pk_table: parent.name.clone(),
                    pk_column: p.name.clone(),
                    fk_table: child.name.clone(),
                    fk_column: c.name.clone(),
                    sequence: i as i32 + 1,
                    fk_name: fk.name.clone(),
                    pk_name: pk_name.clone(),
                    on_update: fk.on_update,
                    on_delete: fk.on_delete,
                });
            }
        }
    }
    match filter {
        ForeignKeyFilter::Exported { .. } => rows.sort_by(|a, b| {
            (&a.fk_table, &a.fk_name, a.sequence).cmp(&(&b.fk_table, &b.fk_name, b.sequence))
        }),
        _ => rows.sort_by(|a, b| {
            (&a.pk_table, &a.fk_name, a.sequence).cmp(&(&b.pk_table, &b.fk_name, b.sequence))
        }),
    }
    let text = |f: fn(&ForeignKeyColumn) -> &str| -> ArrayRef {
        Arc::new(rows.iter().map(|r| Some(f(r))).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        text(|_| CATALOG_NAME),
        text(|_| SCHEMA_NAME),
        text(|r| &r.pk_table),
        text(|r| &r.pk_column),
        text(|_| CATALOG_NAME),
        text(|_| SCHEMA_NAME),
        text(|r| &r.fk_table),
        text(|r| &r.fk_column),
        Arc::new(rows.iter().map(|r| r.sequence).collect::<Int32Array>()),
        text(|r| &r.fk_name),
        text(|r| &r.pk_name),
        Arc::new(
            rows.iter()
                .map(|r| rule(r.on_update))
                .collect::<UInt8Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| rule(r.on_delete))
                .collect::<UInt8Array>(),
        ),
    ];
    Ok(RecordBatch::try_new(foreign_keys_schema(), columns)?)
}

/// The SQL types DriftDB has, for GetXdbcTypeInfo.
pub fn xdbc_type_info() -> XdbcTypeInfoData {
    let mut b = XdbcTypeInfoDataBuilder::new();
    let types: [(&str, XdbcDataType, Option<i32>, Option<&str>); 12] = [
        ("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None),
        ("SMALLINT", XdbcDataType::XdbcSmallint, Some(5), None),
        ("INTEGER", XdbcDataType::XdbcInteger, Some(10), None),
        ("BIGINT", XdbcDataType::XdbcBigint, Some(19), None),
        ("REAL", XdbcDataType::XdbcReal, Some(7), None),
        ("DOUBLE PRECISION", XdbcDataType::XdbcDouble, Some(15), None),
        (
            "DECIMAL",
            XdbcDataType::XdbcDecimal,
            Some(38),
            Some("precision,scale"),
        ),
        (
            "VARCHAR",
            XdbcDataType::XdbcVarchar,
            None,
            Some("max length"),
        ),
        ("BYTEA", XdbcDataType::XdbcVarbinary, None, None),
        ("DATE", XdbcDataType::XdbcDate, Some(10), None),
        ("TIME", XdbcDataType::XdbcTime, Some(15), None),
        ("TIMESTAMP", XdbcDataType::XdbcTimestamp, Some(26), None),
    ];
    for (name, data_type, size, params) in types {
        let quoted = matches!(
            data_type,
            XdbcDataType::XdbcVarchar
                | XdbcDataType::XdbcDate
                | XdbcDataType::XdbcTime
                | XdbcDataType::XdbcTimestamp
        );
        b.append(XdbcTypeInfo {
            type_name: name.into(),
            data_type,
            column_size: size,
            literal_prefix: quoted.then(|| "'".into()),
            literal_suffix: quoted.then(|| "'".into()),
            create_params: params.map(|p| p.split(',').map(String::from).collect()),
            nullable: Nullable::NullabilityNullable,
            case_sensitive: data_type == XdbcDataType::XdbcVarchar,
            searchable: Searchable::Full,
            unsigned_attribute: Some(false),
            fixed_prec_scale: data_type == XdbcDataType::XdbcDecimal,
            auto_increment: Some(false),
            local_type_name: Some(name.into()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: data_type,
            datetime_subcode: None,
            num_prec_radix: None,
            interval_precision: None,
        });
    }
    b.build().expect("static type info is well formed")
}
