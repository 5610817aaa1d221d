//! `information_schema` as PostgreSQL shows it, built from DriftDB's catalog.
//!
//! DataFusion's own `information_schema` lists views as base tables, names
//! column types the Arrow way (`Utf8`) and has no constraint tables, so the
//! relation planner answers these relations itself (see
//! [`crate::temporal::planner`]): `tables`, `views`, `columns`, `schemata`,
//! `table_constraints`, `key_column_usage`, `referential_constraints`,
//! `check_constraints`, `constraint_column_usage` and `sequences`, with
//! PostgreSQL's columns in PostgreSQL's order. DataFusion still answers
//! `df_settings`, `routines` and `parameters`.
//!
//! The catalog keeps its history, so `information_schema.columns VERSION AS
//! OF 3` shows the columns as they were at commit 3.
//!
//! Deviations, by design: PostgreSQL's `NOT NULL` pseudo-constraints (named
//! after object ids DriftDB does not have) are not listed; `check_clause`
//! and `column_default` show the expression as it was written, not
//! PostgreSQL's deparsed form.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;

use super::{CATALOG_NAME, SCHEMA_NAME};
use crate::catalog::{Catalog, ColumnDef, Identity, KeyRef, SqlType, TableDef};
use crate::error::Result;

/// The schema these relations live in.
pub const SCHEMA: &str = "information_schema";

/// The relations DriftDB answers (DataFusion answers the rest).
const RELATIONS: [&str; 10] = [
    "tables",
    "views",
    "columns",
    "schemata",
    "table_constraints",
    "key_column_usage",
    "referential_constraints",
    "check_constraints",
    "constraint_column_usage",
    "sequences",
];

/// Relations of the schema DataFusion answers, listed in `tables` too.
const DATAFUSION_RELATIONS: [&str; 3] = ["df_settings", "parameters", "routines"];

/// Whether DriftDB answers `information_schema.<name>`.
pub fn answers(name: &str) -> bool {
    RELATIONS.contains(&name)
}

/// One view's output columns (None when the view no longer plans).
pub type ViewColumns = Vec<(String, DataType)>;

/// What a relation is built from: the catalog as of one commit.
pub struct Source<'a> {
    pub catalog: &'a Catalog,
    pub seq: u64,
    /// The columns of each live view, by name, in `catalog.view_names_at(seq)` order.
    pub view_columns: &'a [(String, Option<ViewColumns>)],
}

/// The rows of `information_schema.<name>` (one of [`answers`]).
pub fn relation(name: &str, source: &Source<'_>) -> Result<RecordBatch> {
    // Each live table under the name it had then.
    let named: Vec<TableDef> = source
        .catalog
        .tables
        .iter()
        .filter(|t| t.exists_at(source.seq))
        .map(|t| TableDef {
            name: t.name_at(source.seq).to_string(),
            ..t.clone()
        })
        .collect();
    let mut tables: Vec<&TableDef> = named.iter().collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let (columns, rows) = match name {
        "tables" => (TABLES, tables_rows(source, &tables)),
        "views" => (VIEWS, views_rows(source)),
        "columns" => (COLUMNS, columns_rows(source, &tables)),
        "schemata" => (SCHEMATA, schemata_rows()),
        "table_constraints" => (TABLE_CONSTRAINTS, table_constraints_rows(&tables)),
        "key_column_usage" => (KEY_COLUMN_USAGE, key_column_usage_rows(&tables)),
        "referential_constraints" => (
            REFERENTIAL_CONSTRAINTS,
            referential_rows(source.catalog, &tables),
        ),
        "check_constraints" => (CHECK_CONSTRAINTS, check_rows(&tables)),
        "constraint_column_usage" => (
            CONSTRAINT_COLUMN_USAGE,
            constraint_column_rows(source.catalog, &tables),
        ),
        "sequences" => (SEQUENCES, sequences_rows(source)),
        other => {
            return Err(crate::Error::internal(format!(
                "information_schema.{other} is not DriftDB's"
            )));
        }
    };
    batch(columns, rows)
}

/// A column of a relation: its name and whether it holds text or a number.
type Col = (&'static str, Kind);

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
}

use Kind::{Int, Text};

/// One cell.
type Cell = ScalarValue;

fn text(value: impl Into<String>) -> Cell {
    ScalarValue::Utf8(Some(value.into()))
}

fn int(value: impl TryInto<i32>) -> Cell {
    ScalarValue::Int32(value.try_into().ok())
}

fn no_text() -> Cell {
    ScalarValue::Utf8(None)
}

fn no_int() -> Cell {
    ScalarValue::Int32(None)
}

fn yes_no(yes: bool) -> Cell {
    text(if yes { "YES" } else { "NO" })
}

fn batch(columns: &[Col], rows: Vec<Vec<Cell>>) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, kind)| {
            let data_type = match kind {
                Text => DataType::Utf8,
                Int => DataType::Int32,
            };
            Field::new(*name, data_type, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (i, field) in schema.fields().iter().enumerate() {
        let cells = rows.iter().map(|row| row[i].clone());
        arrays.push(match rows.is_empty() {
            true => arrow::array::new_empty_array(field.data_type()),
            false => ScalarValue::iter_to_array(cells)?,
        });
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// `catalog, schema` as the first two cells of most rows.
fn place() -> [Cell; 2] {
    [text(CATALOG_NAME), text(SCHEMA_NAME)]
}

/// `constraint_catalog, constraint_schema, constraint_name, table_catalog,
/// table_schema` (or the referenced key's catalog and schema): how the
/// constraint relations start.
fn constraint_place(name: &str) -> Vec<Cell> {
    let mut row = place().to_vec();
    row.push(text(name));
    row.extend(place());
    row
}

const TABLES: &[Col] = &[
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("table_type", Text),
    ("self_referencing_column_name", Text),
    ("reference_generation", Text),
    ("user_defined_type_catalog", Text),
    ("user_defined_type_schema", Text),
    ("user_defined_type_name", Text),
    ("is_insertable_into", Text),
    ("is_typed", Text),
    ("commit_action", Text),
];

fn tables_rows(source: &Source<'_>, tables: &[&TableDef]) -> Vec<Vec<Cell>> {
    let relation = |schema: &str, name: &str, kind: &str, insertable: bool| {
        let mut row = vec![text(CATALOG_NAME), text(schema), text(name), text(kind)];
        row.extend([no_text(), no_text(), no_text(), no_text(), no_text()]);
        row.extend([yes_no(insertable), yes_no(false), no_text()]);
        row
    };
    let mut rows: Vec<Vec<Cell>> = tables
        .iter()
        .map(|t| relation(SCHEMA_NAME, &t.name, "BASE TABLE", true))
        .collect();
    for (view, _) in source.view_columns {
        rows.push(relation(SCHEMA_NAME, view, "VIEW", false));
    }
    let mut own: Vec<&str> = RELATIONS
        .iter()
        .chain(&DATAFUSION_RELATIONS)
        .copied()
        .collect();
    own.sort_unstable();
    for name in own {
        rows.push(relation(SCHEMA, name, "VIEW", false));
    }
    rows
}

const VIEWS: &[Col] = &[
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("view_definition", Text),
    ("check_option", Text),
    ("is_updatable", Text),
    ("is_insertable_into", Text),
    ("is_trigger_updatable", Text),
    ("is_trigger_deletable", Text),
    ("is_trigger_insertable_into", Text),
];

fn views_rows(source: &Source<'_>) -> Vec<Vec<Cell>> {
    source
        .view_columns
        .iter()
        .filter_map(|(name, _)| source.catalog.view_at(name, source.seq))
        .map(|view| {
            let mut row = place().to_vec();
            let definition = crate::sql::parser::view_query_text(&view.sql);
            row.extend([text(&view.name), text(definition), text("NONE")]);
            row.extend((0..5).map(|_| yes_no(false)));
            row
        })
        .collect()
}

const COLUMNS: &[Col] = &[
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("column_name", Text),
    ("ordinal_position", Int),
    ("column_default", Text),
    ("is_nullable", Text),
    ("data_type", Text),
    ("character_maximum_length", Int),
    ("character_octet_length", Int),
    ("numeric_precision", Int),
    ("numeric_precision_radix", Int),
    ("numeric_scale", Int),
    ("datetime_precision", Int),
    ("interval_type", Text),
    ("interval_precision", Int),
    ("character_set_catalog", Text),
    ("character_set_schema", Text),
    ("character_set_name", Text),
    ("collation_catalog", Text),
    ("collation_schema", Text),
    ("collation_name", Text),
    ("domain_catalog", Text),
    ("domain_schema", Text),
    ("domain_name", Text),
    ("udt_catalog", Text),
    ("udt_schema", Text),
    ("udt_name", Text),
    ("scope_catalog", Text),
    ("scope_schema", Text),
    ("scope_name", Text),
    ("maximum_cardinality", Int),
    ("dtd_identifier", Text),
    ("is_self_referencing", Text),
    ("is_identity", Text),
    ("identity_generation", Text),
    ("identity_start", Text),
    ("identity_increment", Text),
    ("identity_maximum", Text),
    ("identity_minimum", Text),
    ("identity_cycle", Text),
    ("is_generated", Text),
    ("generation_expression", Text),
    ("is_updatable", Text),
];

/// How PostgreSQL describes a type in `information_schema.columns`.
struct TypeFacts {
    data_type: &'static str,
    udt_name: &'static str,
    char_max: Option<u32>,
    octet_len: Option<u32>,
    precision: Option<u32>,
    radix: Option<u32>,
    scale: Option<i32>,
    datetime_precision: Option<u32>,
}

/// Octet length PostgreSQL reports for unbounded text (1 GiB).
const TEXT_OCTETS_MAX: u32 = 1 << 30;
/// Bytes per character PostgreSQL assumes for UTF-8 text.
const UTF8_BYTES_PER_CHAR_MAX: u32 = 4;

fn type_facts(sql_type: &SqlType) -> TypeFacts {
    let plain = |data_type, udt_name| TypeFacts {
        data_type,
        udt_name,
        char_max: None,
        octet_len: None,
        precision: None,
        radix: None,
        scale: None,
        datetime_precision: None,
    };
    let binary = |data_type, udt_name, bits, scale| TypeFacts {
        precision: Some(bits),
        radix: Some(2),
        scale,
        ..plain(data_type, udt_name)
    };
    let dated = |data_type, udt_name, precision| TypeFacts {
        datetime_precision: Some(precision),
        ..plain(data_type, udt_name)
    };
    match sql_type {
        SqlType::Boolean => plain("boolean", "bool"),
        SqlType::SmallInt => binary("smallint", "int2", 16, Some(0)),
        SqlType::Int => binary("integer", "int4", 32, Some(0)),
        SqlType::BigInt => binary("bigint", "int8", 64, Some(0)),
        SqlType::Real => binary("real", "float4", 24, None),
        SqlType::Double => binary("double precision", "float8", 53, None),
        SqlType::Decimal { precision, scale } => TypeFacts {
            precision: Some(u32::from(*precision)),
            radix: Some(10),
            scale: Some(i32::from(*scale)),
            ..plain("numeric", "numeric")
        },
        SqlType::Text { max_len: Some(n) } => TypeFacts {
            char_max: Some(*n),
            octet_len: Some(n.saturating_mul(UTF8_BYTES_PER_CHAR_MAX)),
            ..plain("character varying", "varchar")
        },
        SqlType::Text { max_len: None } => TypeFacts {
            octet_len: Some(TEXT_OCTETS_MAX),
            ..plain("text", "text")
        },
        SqlType::Bytea => plain("bytea", "bytea"),
        SqlType::Date => dated("date", "date", 0),
        SqlType::Time => dated("time without time zone", "time", 6),
        SqlType::Timestamp => dated("timestamp without time zone", "timestamp", 6),
        SqlType::TimestampTz => dated("timestamp with time zone", "timestamptz", 6),
    }
}

/// What a column row needs beyond its type.
struct ColumnFacts<'a> {
    table: &'a str,
    name: &'a str,
    position: usize,
    default: Option<&'a str>,
    nullable: bool,
    /// `(generation, start, increment, max, min, cycle)` of an identity column.
    identity: Option<[Cell; 6]>,
    updatable: bool,
}

fn column_row(facts: ColumnFacts<'_>, sql_type: Option<&SqlType>) -> Vec<Cell> {
    let types = sql_type.map(type_facts);
    let t = types.as_ref();
    let num = |f: fn(&TypeFacts) -> Option<u32>| t.and_then(f).map_or_else(no_int, int);
    let mut row = place().to_vec();
    row.extend([
        text(facts.table),
        text(facts.name),
        int(facts.position),
        facts.default.map_or_else(no_text, text),
        yes_no(facts.nullable),
        t.map_or_else(no_text, |t| text(t.data_type)),
        num(|t| t.char_max),
        num(|t| t.octet_len),
        num(|t| t.precision),
        num(|t| t.radix),
        t.and_then(|t| t.scale).map_or_else(no_int, int),
        num(|t| t.datetime_precision),
        no_text(),
        no_int(),
    ]);
    row.extend((0..9).map(|_| no_text()));
    row.extend([
        text(CATALOG_NAME),
        text("pg_catalog"),
        t.map_or_else(no_text, |t| text(t.udt_name)),
    ]);
    row.extend([no_text(), no_text(), no_text(), no_int()]);
    row.extend([text(facts.position.to_string()), yes_no(false)]);
    let identity = facts.identity.is_some();
    row.push(yes_no(identity));
    match facts.identity {
        Some(cells) => row.extend(cells),
        None => row.extend([
            no_text(),
            no_text(),
            no_text(),
            no_text(),
            no_text(),
            yes_no(false),
        ]),
    }
    row.extend([text("NEVER"), no_text(), yes_no(facts.updatable)]);
    row
}

fn columns_rows(source: &Source<'_>, tables: &[&TableDef]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in tables {
        for (i, column) in table.columns_at(source.seq).iter().enumerate() {
            let identity = identity_cells(source, table, column);
            let facts = ColumnFacts {
                table: &table.name,
                name: &column.name,
                position: i + 1,
                default: column
                    .default
                    .as_deref()
                    .filter(|d| identity.is_none() && !d.eq_ignore_ascii_case("null")),
                nullable: column.nullable,
                identity,
                updatable: true,
            };
            rows.push(column_row(facts, Some(&column.sql_type)));
        }
    }
    for (view, columns) in source.view_columns {
        for (i, (name, data_type)) in columns.iter().flatten().enumerate() {
            let sql_type = SqlType::from_arrow(name, data_type).ok();
            let facts = ColumnFacts {
                table: view,
                name,
                position: i + 1,
                default: None,
                nullable: true,
                identity: None,
                updatable: false,
            };
            rows.push(column_row(facts, sql_type.as_ref()));
        }
    }
    rows
}

/// The identity cells of `column` (None unless it is an identity column).
fn identity_cells(source: &Source<'_>, table: &TableDef, column: &ColumnDef) -> Option<[Cell; 6]> {
    let identity = column.identity?;
    let sequence = column
        .default
        .as_deref()
        .and_then(|d| crate::sequences::sequences_named_by(d).into_iter().next())
        .and_then(|name| source.catalog.sequence_at(&name, source.seq))
        .filter(|s| s.owner == Some(table.id))?;
    let generation = match identity {
        Identity::Always => "ALWAYS",
        Identity::ByDefault => "BY DEFAULT",
    };
    Some([
        text(generation),
        text(sequence.start.to_string()),
        text(sequence.increment.to_string()),
        text(sequence.max.to_string()),
        text(sequence.min.to_string()),
        yes_no(sequence.cycle),
    ])
}

const SCHEMATA: &[Col] = &[
    ("catalog_name", Text),
    ("schema_name", Text),
    ("schema_owner", Text),
    ("default_character_set_catalog", Text),
    ("default_character_set_schema", Text),
    ("default_character_set_name", Text),
    ("sql_path", Text),
];

fn schemata_rows() -> Vec<Vec<Cell>> {
    [SCHEMA, SCHEMA_NAME]
        .into_iter()
        .map(|schema| {
            let mut row = vec![text(CATALOG_NAME), text(schema), text(CATALOG_NAME)];
            row.extend((0..4).map(|_| no_text()));
            row
        })
        .collect()
}

/// Every constraint of a table: (name, type, columns).
fn constraints(table: &TableDef) -> Vec<(String, &'static str, Vec<&ColumnDef>)> {
    let mut all = Vec::new();
    if table.has_primary_key() {
        all.push((
            table.primary_key_name(),
            "PRIMARY KEY",
            table.primary_key_columns(),
        ));
    }
    for unique in &table.uniques {
        all.push((unique.name.clone(), "UNIQUE", table.unique_columns(unique)));
    }
    for fk in &table.foreign_keys {
        all.push((
            fk.name.clone(),
            "FOREIGN KEY",
            table.columns_by_id(&fk.columns),
        ));
    }
    for check in &table.checks {
        all.push((check.name.clone(), "CHECK", Vec::new()));
    }
    all
}

const TABLE_CONSTRAINTS: &[Col] = &[
    ("constraint_catalog", Text),
    ("constraint_schema", Text),
    ("constraint_name", Text),
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("constraint_type", Text),
    ("is_deferrable", Text),
    ("initially_deferred", Text),
    ("enforced", Text),
    ("nulls_distinct", Text),
];

fn table_constraints_rows(tables: &[&TableDef]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in tables {
        for (name, kind, _) in constraints(table) {
            let mut row = constraint_place(&name);
            row.extend([text(&table.name), text(kind), yes_no(false), yes_no(false)]);
            // Only UNIQUE constraints say whether NULLs are distinct.
            let nulls_distinct = if kind == "UNIQUE" {
                yes_no(true)
            } else {
                no_text()
            };
            row.extend([yes_no(true), nulls_distinct]);
            rows.push(row);
        }
    }
    rows
}

const KEY_COLUMN_USAGE: &[Col] = &[
    ("constraint_catalog", Text),
    ("constraint_schema", Text),
    ("constraint_name", Text),
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("column_name", Text),
    ("ordinal_position", Int),
    ("position_in_unique_constraint", Int),
];

fn key_column_usage_rows(tables: &[&TableDef]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in tables {
        for (name, kind, columns) in constraints(table) {
            for (i, column) in columns.iter().enumerate() {
                let mut row = constraint_place(&name);
                row.extend([text(&table.name), text(&column.name), int(i + 1)]);
                // A foreign key's columns are stored in the referenced key's order.
                row.push(match kind {
                    "FOREIGN KEY" => int(i + 1),
                    _ => no_int(),
                });
                rows.push(row);
            }
        }
    }
    rows
}

const REFERENTIAL_CONSTRAINTS: &[Col] = &[
    ("constraint_catalog", Text),
    ("constraint_schema", Text),
    ("constraint_name", Text),
    ("unique_constraint_catalog", Text),
    ("unique_constraint_schema", Text),
    ("unique_constraint_name", Text),
    ("match_option", Text),
    ("update_rule", Text),
    ("delete_rule", Text),
];

fn referential_rows(catalog: &Catalog, tables: &[&TableDef]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in tables {
        for fk in &table.foreign_keys {
            let parent = catalog.table_by_id(fk.parent);
            let key = parent.and_then(|p| match p.key_named_by(&fk.parent_columns)? {
                KeyRef::Primary => Some(p.primary_key_name()),
                KeyRef::Unique(n) => Some(p.uniques[n].name.clone()),
            });
            let mut row = constraint_place(&fk.name);
            row.extend([key.map_or_else(no_text, text), text("NONE")]);
            row.extend([text(fk.on_update.sql()), text(fk.on_delete.sql())]);
            rows.push(row);
        }
    }
    rows
}

const CHECK_CONSTRAINTS: &[Col] = &[
    ("constraint_catalog", Text),
    ("constraint_schema", Text),
    ("constraint_name", Text),
    ("check_clause", Text),
];

fn check_rows(tables: &[&TableDef]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for table in tables {
        for check in &table.checks {
            let mut row = place().to_vec();
            row.extend([text(&check.name), text(format!("(({}))", check.expr))]);
            rows.push(row);
        }
    }
    rows
}

const CONSTRAINT_COLUMN_USAGE: &[Col] = &[
    ("table_catalog", Text),
    ("table_schema", Text),
    ("table_name", Text),
    ("column_name", Text),
    ("constraint_catalog", Text),
    ("constraint_schema", Text),
    ("constraint_name", Text),
];

/// Key columns under their own table; a foreign key's under the table it
/// references (as PostgreSQL lists them); a CHECK's under its table.
fn constraint_column_rows(catalog: &Catalog, tables: &[&TableDef]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    let mut push = |table: &str, column: &str, constraint: &str| {
        let mut row = place().to_vec();
        row.extend([text(table), text(column)]);
        row.extend(place());
        row.push(text(constraint));
        rows.push(row);
    };
    for table in tables {
        for (name, kind, columns) in constraints(table) {
            if kind != "FOREIGN KEY" {
                for column in columns {
                    push(&table.name, &column.name, &name);
                }
            }
        }
        for fk in &table.foreign_keys {
            if let Some(parent) = catalog.table_by_id(fk.parent) {
                for column in parent.columns_by_id(&fk.parent_columns) {
                    push(&parent.name, &column.name, &fk.name);
                }
            }
        }
        for check in &table.checks {
            let named = crate::sql::parser::identifiers_in(&check.expr);
            for column in table.columns().iter().filter(|c| named.contains(&c.name)) {
                push(&table.name, &column.name, &check.name);
            }
        }
    }
    rows
}

const SEQUENCES: &[Col] = &[
    ("sequence_catalog", Text),
    ("sequence_schema", Text),
    ("sequence_name", Text),
    ("data_type", Text),
    ("numeric_precision", Int),
    ("numeric_precision_radix", Int),
    ("numeric_scale", Int),
    ("start_value", Text),
    ("minimum_value", Text),
    ("maximum_value", Text),
    ("increment", Text),
    ("cycle_option", Text),
];

/// Sequences, except those behind identity columns (PostgreSQL hides them).
fn sequences_rows(source: &Source<'_>) -> Vec<Vec<Cell>> {
    let identity_sequences: Vec<String> = source
        .catalog
        .tables
        .iter()
        .filter(|t| t.exists_at(source.seq))
        .flat_map(|t| t.columns_at(source.seq))
        .filter(|c| c.identity == Some(Identity::Always))
        .filter_map(|c| c.default.as_deref())
        .flat_map(crate::sequences::sequences_named_by)
        .collect();
    let mut live: Vec<_> = source
        .catalog
        .sequences
        .iter()
        .filter(|s| s.exists_at(source.seq) && !identity_sequences.contains(&s.name))
        .collect();
    live.sort_by(|a, b| a.name.cmp(&b.name));
    live.into_iter()
        .map(|s| {
            let facts = type_facts(&s.sql_type);
            let mut row = place().to_vec();
            row.extend([text(&s.name), text(facts.data_type)]);
            row.extend([facts.precision, facts.radix].map(|v| v.map_or_else(no_int, int)));
            row.push(int(0));
            row.extend([s.start, s.min, s.max, s.increment].map(|v| text(v.to_string())));
            row.push(yes_no(s.cycle));
            row
        })
        .collect()
}
