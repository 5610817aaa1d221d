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

use std::fs::File;
use std::io::BufReader;
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
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, lit, when};
use parking_lot::RwLock;
use sqlparser::ast::{
    FunctionArg, FunctionArgExpr, Ident, ObjectNamePart, TableFactor, TableFunctionArgs,
};

use super::{CsvOptions, FileAccess, FileFormat, single_byte};
use crate::error::{Error, Result, printable};
use crate::temporal::eval_constant;

/// Rows of a CSV or JSON file read to infer its columns' types.
pub const INFER_ROWS: usize = 1_000;

/// Plans `read_parquet`, `read_csv` and `read_json` in `FROM`.
#[derive(Debug)]
pub struct FilePlanner {
    pub access: Arc<RwLock<FileAccess>>,
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
        let format = match function.as_str() {
            "read_parquet" => FileFormat::Parquet,
            "read_csv" => FileFormat::Csv,
            "read_json" => FileFormat::Json,
            _ => return Ok(RelationPlanning::Original(Box::new(relation))),
        };
        let call = FileCall::parse(&function, format, args, context)?;
        let (provider, typed) = file_table(&self.access.read(), &call)?;
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

/// A listing table over the files `call` names, and for a CSV with a NULL
/// text the types its columns are cast to (the table then reads text).
pub fn file_table(
    access: &FileAccess,
    call: &FileCall,
) -> Result<(Arc<dyn TableProvider>, Option<Schema>)> {
    let files = access.files_to_read(&call.pattern)?;
    let first = super::pinned::open_pinned(&files[0]).map_err(|e| Error::BadFileData {
        file: printable(&files[0].display().to_string()),
        detail: e.to_string(),
    })?;
    let mut schema = file_schema(&files[0], first, call.format, &call.csv)?;
    let mut typed = None;
    if call.format == FileFormat::Csv && !call.csv.null.is_empty() {
        let text: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect();
        typed = Some(std::mem::replace(&mut schema, Schema::new(text)));
    }
    let schema = Arc::new(schema);
    let format: Arc<dyn DfFileFormat> = match call.format {
        FileFormat::Parquet => Arc::new(ParquetFormat::default()),
        FileFormat::Json => Arc::new(JsonFormat::default()),
        FileFormat::Csv => Arc::new(csv_format(&call.csv)),
    };
    let urls = files
        .iter()
        .map(|file| file_url(file))
        .collect::<Result<Vec<_>>>()?;
    let options = ListingOptions::new(format).with_file_extension("");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok((Arc::new(ListingTable::try_new(config)?), typed))
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

/// The columns of `file` (open as `opened`): its Parquet schema, or those inferred from its
/// first [`INFER_ROWS`] rows.
pub fn file_schema(
    file: &Path,
    opened: File,
    format: FileFormat,
    csv: &CsvOptions,
) -> Result<Schema> {
    let bad = |detail: String| Error::BadFileData {
        file: file.display().to_string(),
        detail,
    };
    let mut opened = Some(opened);
    let mut open = || opened.take().ok_or_else(|| bad("read twice".into()));
    match format {
        FileFormat::Parquet => {
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open()?)
                    .map_err(|e| bad(format!("not a readable Parquet file: {e}")))?;
            Ok(builder.schema().as_ref().clone())
        }
        FileFormat::Json => {
            let reader = BufReader::new(open()?);
            arrow::json::reader::infer_json_schema_from_seekable(reader, Some(INFER_ROWS))
                .map(|(schema, _)| schema)
                .map_err(|e| bad(e.to_string()))
        }
        FileFormat::Csv => {
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
                .infer_schema(open()?, Some(INFER_ROWS))
                .map(|(schema, _)| schema)
                .map_err(|e| bad(e.to_string()))
        }
    }
}
