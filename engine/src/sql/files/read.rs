//! Files read as relations, with DuckDB's function names:
//! `read_parquet('path or glob')`, `read_csv('path' [, header => true,
//! delim => ',', quote => '"', escape => '"', nullstr => ''])` and
//! `read_json('path')` (newline-delimited objects).
//!
//! Each is planned here, from the statement's syntax (so options keep
//! their names), into a DataFusion listing table over exactly the files
//! the pattern matched when the statement was planned, each checked
//! against the session's [`FileAccess`]. The schema comes from the first
//! file: a Parquet footer, or the first [`INFER_ROWS`] rows of a CSV or
//! JSON file. A file has no history: read in a time-travelling query it
//! is read as it is now.
//!
//! An object-store path (`s3://bucket/key*.parquet`) must be a string
//! literal: listing objects and reading a footer are asynchronous, and a
//! relation is planned synchronously, so [`FilePlanner::resolve_objects`]
//! lists them (and reads the first one's footer, or its first
//! [`OBJECT_SAMPLE_BYTES`]) before the statement is planned.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::common::{Column, DFSchema, ScalarValue, TableReference};
use datafusion::datasource::file_format::FileFormat as DfFileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result as DfResult;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, lit, when};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use parking_lot::{Mutex, RwLock};
use sqlparser::ast::{
    FunctionArg, FunctionArgExpr, Ident, ObjectNamePart, Statement, TableFactor, TableFunctionArgs,
    Value, Visit, Visitor,
};

use super::objects::is_object_url;
use super::{CsvOptions, FileAccess, FileFormat, single_byte};
use crate::error::{Error, Result, printable};
use crate::temporal::eval_constant;

/// Rows of a CSV or JSON file read to infer its columns' types.
pub const INFER_ROWS: usize = 1_000;

/// Bytes read from the start of a CSV or JSON object to infer its columns.
pub const OBJECT_SAMPLE_BYTES: u64 = 4 * 1024 * 1024;

/// Plans `read_parquet`, `read_csv` and `read_json` in `FROM`.
#[derive(Debug)]
pub struct FilePlanner {
    access: Arc<RwLock<FileAccess>>,
    /// The object-store paths of the statement being planned, resolved.
    objects: Mutex<HashMap<(String, FileFormat), Arc<ObjectFiles>>>,
}

/// The objects one `read_*` path names, listed before planning.
#[derive(Debug)]
struct ObjectFiles {
    /// The first object's URL, for messages.
    name: String,
    urls: Vec<url::Url>,
    first: Sample,
}

/// What the first object's columns are read from.
#[derive(Debug)]
enum Sample {
    /// A Parquet footer's.
    Columns(Schema),
    /// The first whole lines of a CSV or JSON object.
    Head(bytes::Bytes),
}

/// The format a table function's name reads, if it is one of ours.
fn format_of(function: &str) -> Option<FileFormat> {
    match function {
        "read_parquet" => Some(FileFormat::Parquet),
        "read_csv" => Some(FileFormat::Csv),
        "read_json" => Some(FileFormat::Json),
        _ => None,
    }
}

impl FilePlanner {
    pub fn new(access: Arc<RwLock<FileAccess>>) -> Self {
        Self {
            access,
            objects: Mutex::new(HashMap::new()),
        }
    }

    /// List the objects each `read_*` call of `statement` names by a
    /// string-literal object-store path (checked against the session's
    /// access), so the calls can be planned; the buckets' stores are
    /// registered in `runtime` for the scans.
    pub async fn resolve_objects(&self, statement: &Statement, runtime: &RuntimeEnv) -> Result<()> {
        self.objects.lock().clear();
        for (pattern, format) in object_calls(statement) {
            let key = (pattern, format);
            if self.objects.lock().contains_key(&key) {
                continue;
            }
            let url = self.access.read().objects_to_read(&key.0)?;
            let store = url.store()?;
            let found = url.matching(store.as_ref()).await?;
            let name = url.name_of(&found[0].location)?;
            let first = sample(&store, &found[0], (&name, format)).await?;
            let urls = found
                .iter()
                .map(|meta| url.object_url(&meta.location))
                .collect::<Result<Vec<_>>>()?;
            runtime.register_object_store(
                &url.object_url(&object_store::path::Path::default())?,
                store,
            );
            let files = ObjectFiles { name, urls, first };
            self.objects.lock().insert(key, Arc::new(files));
        }
        Ok(())
    }
}

/// The object-store paths `statement`'s `read_*` calls name as string literals.
fn object_calls(statement: &Statement) -> Vec<(String, FileFormat)> {
    struct Calls(Vec<(String, FileFormat)>);
    impl Visitor for Calls {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name,
                args: Some(args),
                ..
            } = factor
                && let [ObjectNamePart::Identifier(ident)] = name.0.as_slice()
                && let Some(format) = format_of(&match ident.quote_style {
                    None => ident.value.to_lowercase(),
                    Some(_) => ident.value.clone(),
                })
                && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(
                    sqlparser::ast::Expr::Value(value),
                ))) = args.args.first()
                && let Value::SingleQuotedString(path) = &value.value
                && is_object_url(path)
            {
                self.0.push((path.clone(), format));
            }
            ControlFlow::Continue(())
        }
    }
    let mut calls = Calls(Vec::new());
    let _ = statement.visit(&mut calls);
    calls.0
}

/// The first object's (called `name`) columns, or the bytes to infer them from.
async fn sample(
    store: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
    (name, format): (&str, FileFormat),
) -> Result<Sample> {
    let bad = |detail: String| Error::BadFileData {
        file: name.to_string(),
        detail,
    };
    if format == FileFormat::Parquet {
        return parquet_columns(store, meta)
            .await
            .map(Sample::Columns)
            .map_err(bad);
    }
    if meta.size == 0 {
        return Ok(Sample::Head(bytes::Bytes::new()));
    }
    let end = meta.size.min(OBJECT_SAMPLE_BYTES);
    let head = store.get_range(&meta.location, 0..end).await?;
    if end == meta.size {
        return Ok(Sample::Head(head));
    }
    // Whole lines only: a cut one would be read as a short row.
    match head.iter().rposition(|&b| b == b'\n') {
        Some(at) => Ok(Sample::Head(head.slice(0..at + 1))),
        None => Err(bad(format!(
            "its first line is longer than the {} MiB read to infer its columns",
            OBJECT_SAMPLE_BYTES >> 20
        ))),
    }
}

/// The columns of a Parquet object, from its footer; what is wrong with it if not.
async fn parquet_columns(
    store: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
) -> std::result::Result<Schema, String> {
    use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
    use futures::FutureExt;
    let malformed = || "not a readable Parquet file: its footer is malformed".to_string();
    // A footer claiming more bytes than the object holds panics the
    // decoder: checked first (and any other panic caught and named).
    if meta.size < 12 {
        return Err(malformed());
    }
    let tail = store
        .get_range(&meta.location, meta.size - 8..meta.size)
        .await
        .map_err(|e| e.to_string())?;
    let footer = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if &tail[4..] != b"PAR1" || footer + 12 > meta.size {
        return Err(malformed());
    }
    let fetched =
        std::panic::AssertUnwindSafe(DFParquetMetadata::new(store.as_ref(), meta).fetch_schema())
            .catch_unwind()
            .await;
    match fetched {
        Ok(Ok(schema)) => Ok(schema),
        Ok(Err(e)) => Err(format!("not a readable Parquet file: {e}")),
        Err(_) => Err(malformed()),
    }
}

impl RelationPlanner for FilePlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> DfResult<RelationPlanning> {
        let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = &relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let function = match name.0.as_slice() {
            [ObjectNamePart::Identifier(ident)] => context.normalize_ident(ident.clone()),
            _ => return Ok(RelationPlanning::Original(Box::new(relation))),
        };
        let Some(format) = format_of(&function) else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let call = FileCall::parse(&function, format, args, context)?;
        let (provider, typed) = self.file_table(&function, &call)?;
        let scan = LogicalPlanBuilder::scan(
            TableReference::bare(function),
            provider_as_source(provider),
            None,
        )?;
        let plan = match typed {
            Some(typed) => scan.project(null_text_as_null(&typed, &call.csv.null)?)?,
            None => scan,
        }
        .build()?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}

/// A `read_*` call: which files, in which format, read how.
#[derive(Debug)]
pub struct FileCall {
    pub pattern: String,
    pub format: FileFormat,
    pub csv: CsvOptions,
}

impl FileCall {
    fn parse(
        function: &str,
        format: FileFormat,
        args: &TableFunctionArgs,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<Self> {
        let usage = || Error::InvalidArgument {
            message: format!(
                "{function}() takes a file path or pattern, then options by name (header => true)"
            ),
        };
        let mut call = Self {
            pattern: String::new(),
            format,
            // DuckDB's default: a CSV file starts with its column names.
            csv: CsvOptions {
                header: true,
                ..CsvOptions::default()
            },
        };
        for (i, arg) in args.args.iter().enumerate() {
            match (i, arg) {
                (0, FunctionArg::Unnamed(FunctionArgExpr::Expr(expr))) => {
                    call.pattern = text(constant(context, expr)?, "the path")?;
                }
                (
                    1..,
                    FunctionArg::Named {
                        name,
                        arg: FunctionArgExpr::Expr(expr),
                        ..
                    }
                    | FunctionArg::ExprNamed {
                        name: sqlparser::ast::Expr::Identifier(name),
                        arg: FunctionArgExpr::Expr(expr),
                        ..
                    },
                ) => {
                    let value = constant(context, expr)?;
                    call.option(function, name, value)?;
                }
                _ => return Err(usage()),
            }
        }
        match call.pattern.is_empty() {
            true => Err(usage()),
            false => Ok(call),
        }
    }

    fn option(&mut self, function: &str, name: &Ident, value: ScalarValue) -> Result<()> {
        let key = name.value.to_ascii_lowercase();
        let csv = self.format == FileFormat::Csv;
        let one_char = |value: ScalarValue, option: &str| -> Result<u8> {
            let text = text(value, option)?;
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => single_byte(option, c),
                _ => single_byte(option, '\n'),
            }
        };
        match key.as_str() {
            "header" if csv => self.csv.header = flag(value, "header")?,
            "delim" | "delimiter" | "sep" if csv => {
                self.csv.delimiter = one_char(value, "delim")?;
            }
            "quote" if csv => self.csv.quote = one_char(value, "quote")?,
            "escape" if csv => self.csv.escape = Some(one_char(value, "escape")?),
            "nullstr" | "null" if csv => self.csv.null = text(value, "nullstr")?,
            _ => {
                return Err(Error::InvalidArgument {
                    message: format!("{function}() has no option \"{}\"", printable(&key)),
                });
            }
        }
        Ok(())
    }
}

/// An argument evaluated as a constant.
fn constant(
    context: &mut dyn RelationPlannerContext,
    expr: &sqlparser::ast::Expr,
) -> Result<ScalarValue> {
    let expr = context.sql_to_expr(expr.clone(), &DFSchema::empty())?;
    eval_constant(expr)
}

fn text(value: ScalarValue, what: &str) -> Result<String> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Ok(s),
        other => Err(Error::InvalidArgument {
            message: format!("{what} must be text, not {other}"),
        }),
    }
}

fn flag(value: ScalarValue, what: &str) -> Result<bool> {
    match value {
        ScalarValue::Boolean(Some(b)) => Ok(b),
        other => Err(Error::InvalidArgument {
            message: format!("{what} must be true or false, not {other}"),
        }),
    }
}

/// Each column of a CSV read as text: NULL where it is exactly `null`,
/// else the text cast to the type inferred for it (DataFusion's CSV scan
/// applies no NULL text of its own).
fn null_text_as_null(typed: &Schema, null: &str) -> DfResult<Vec<Expr>> {
    typed
        .fields()
        .iter()
        .map(|field| {
            let text = Expr::Column(Column::new_unqualified(field.name()));
            let value = when(text.clone().eq(lit(null)), lit(ScalarValue::Null)).otherwise(text)?;
            Ok(cast(value, field.data_type().clone()).alias(field.name()))
        })
        .collect()
}

impl FilePlanner {
    /// A listing table over the files `call` names, and for a CSV with a
    /// NULL text the types its columns are cast to (the table then reads text).
    fn file_table(
        &self,
        function: &str,
        call: &FileCall,
    ) -> Result<(Arc<dyn TableProvider>, Option<Schema>)> {
        let (mut schema, urls) = match is_object_url(&call.pattern) {
            true => self.object_files(function, call)?,
            false => local_files(&self.access.read(), call)?,
        };
        let mut typed = None;
        if call.format == FileFormat::Csv && !call.csv.null.is_empty() {
            let text: Vec<_> = schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), DataType::Utf8, true))
                .collect();
            typed = Some(std::mem::replace(&mut schema, Schema::new(text)));
        }
        let format: Arc<dyn DfFileFormat> = match call.format {
            FileFormat::Parquet => Arc::new(ParquetFormat::default()),
            FileFormat::Json => Arc::new(JsonFormat::default()),
            FileFormat::Csv => Arc::new(csv_format(&call.csv)),
        };
        let options = ListingOptions::new(format).with_file_extension("");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(Arc::new(schema));
        Ok((Arc::new(ListingTable::try_new(config)?), typed))
    }

    /// The columns and URLs of the objects `call` names, resolved before planning.
    fn object_files(
        &self,
        function: &str,
        call: &FileCall,
    ) -> Result<(Schema, Vec<ListingTableUrl>)> {
        let key = (call.pattern.clone(), call.format);
        let resolved =
            self.objects
                .lock()
                .get(&key)
                .cloned()
                .ok_or_else(|| Error::InvalidArgument {
                    message: format!(
                        "{function}() reads object storage from a path written as a string literal in the statement itself (not through a view or a parameter)"
                    ),
                })?;
        let schema = match &resolved.first {
            Sample::Columns(schema) => schema.clone(),
            Sample::Head(head) => text_schema(
                &resolved.name,
                Cursor::new(head.clone()),
                call.format,
                &call.csv,
            )?,
        };
        let urls = resolved
            .urls
            .iter()
            .map(|url| ListingTableUrl::try_new(url.clone(), None))
            .collect::<DfResult<Vec<_>>>()?;
        Ok((schema, urls))
    }
}

/// The columns and URLs of the local files `call` names (checked, pinned).
fn local_files(access: &FileAccess, call: &FileCall) -> Result<(Schema, Vec<ListingTableUrl>)> {
    let files = access.files_to_read(&call.pattern)?;
    let name = printable(&files[0].display().to_string());
    let first = super::pinned::open_pinned(&files[0]).map_err(|e| Error::BadFileData {
        file: name.clone(),
        detail: e.to_string(),
    })?;
    let schema = file_schema(&name, first, call.format, &call.csv)?;
    let urls = files
        .iter()
        .map(|file| file_url(file))
        .collect::<Result<Vec<_>>>()?;
    Ok((schema, urls))
}

fn csv_format(options: &CsvOptions) -> CsvFormat {
    let null = options.null_regex().map(|r| r.as_str().to_string());
    CsvFormat::default()
        .with_has_header(options.header)
        .with_delimiter(options.delimiter)
        .with_quote(options.quote)
        .with_escape(options.escape)
        .with_null_regex(null)
        .with_newlines_in_values(true)
}

/// The URL of a local file, taken as a name (never as a pattern).
fn file_url(file: &Path) -> Result<ListingTableUrl> {
    let url = url::Url::from_file_path(file).map_err(|()| Error::InvalidArgument {
        message: format!("\"{}\" is not an absolute path", file.display()),
    })?;
    Ok(ListingTableUrl::try_new(url, None)?)
}

/// The columns of `opened` (called `file` in messages): its Parquet
/// schema, or those inferred from its first [`INFER_ROWS`] rows.
pub fn file_schema(
    file: &str,
    opened: File,
    format: FileFormat,
    csv: &CsvOptions,
) -> Result<Schema> {
    match format {
        FileFormat::Parquet => {
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(opened)
                    .map_err(|e| Error::BadFileData {
                        file: file.to_string(),
                        detail: format!("not a readable Parquet file: {e}"),
                    })?;
            Ok(builder.schema().as_ref().clone())
        }
        FileFormat::Csv | FileFormat::Json => {
            text_schema(file, BufReader::new(opened), format, csv)
        }
    }
}

/// The columns of a CSV or JSON file, inferred from its first [`INFER_ROWS`] rows.
fn text_schema<R: BufRead + Seek>(
    file: &str,
    reader: R,
    format: FileFormat,
    csv: &CsvOptions,
) -> Result<Schema> {
    let bad = |detail: String| Error::BadFileData {
        file: file.to_string(),
        detail,
    };
    if format == FileFormat::Json {
        return arrow::json::reader::infer_json_schema_from_seekable(reader, Some(INFER_ROWS))
            .map(|(schema, _)| schema)
            .map_err(|e| bad(e.to_string()));
    }
    let mut csv_format = arrow::csv::reader::Format::default()
        .with_header(csv.header)
        .with_delimiter(csv.delimiter)
        .with_quote(csv.quote);
    if let Some(escape) = csv.escape {
        csv_format = csv_format.with_escape(escape);
    }
    if let Some(null) = csv.null_regex() {
        csv_format = csv_format.with_null_regex(null);
    }
    csv_format
        .infer_schema(reader, Some(INFER_ROWS))
        .map(|(schema, _)| schema)
        .map_err(|e| bad(e.to_string()))
}
