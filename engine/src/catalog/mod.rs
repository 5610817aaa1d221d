//! The catalog: tables, their schema history and views.
//!
//! Nothing in the catalog is ever forgotten: a dropped table keeps its
//! definition with `dropped_seq`, and every schema change appends a
//! [`SchemaVersion`], so a read AS OF any `seq` finds the table and the
//! columns it had then. Columns are stored under stable physical names
//! (`c<id>`) so renames and drops never rewrite data files.

pub mod types;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

pub use types::SqlType;

/// Name of the system column holding a row version's id.
pub const ROWID_COLUMN: &str = "_rowid";
/// Name of the system column holding the commit that wrote a row version.
pub const SEQ_COLUMN: &str = "_seq";

/// One column as defined at some schema version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Stable id; the column is stored as `c<id>` in every file.
    pub id: u32,
    pub name: String,
    pub sql_type: SqlType,
    pub nullable: bool,
    /// SQL expression filling the column when an insert leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl ColumnDef {
    /// Name of the column in memtable batches and Parquet files.
    pub fn physical_name(&self) -> String {
        physical_name(self.id)
    }

    fn logical_field(&self) -> Field {
        Field::new(&self.name, self.sql_type.arrow_type(), self.nullable)
    }

    fn physical_field(&self) -> Field {
        // Stored columns are always nullable: a column added later is NULL in older rows.
        Field::new(self.physical_name(), self.sql_type.arrow_type(), true)
    }
}

/// Name under which the column with id `id` is stored.
pub fn physical_name(id: u32) -> String {
    format!("c{id}")
}

/// The columns of a table from commit `seq` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaVersion {
    pub seq: u64,
    pub columns: Vec<ColumnDef>,
}

/// A table and its whole schema history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    pub id: u64,
    pub name: String,
    pub created_seq: u64,
    pub dropped_seq: Option<u64>,
    /// Column ids of the primary key, in key order; empty for append-only streams.
    pub primary_key: Vec<u32>,
    pub versions: Vec<SchemaVersion>,
    pub next_column_id: u32,
    /// CHECK constraints every row version written from now on must satisfy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDef>,
}

/// A CHECK constraint: a boolean SQL expression over the row's columns.
/// A row satisfies it unless the expression is FALSE (NULL passes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckDef {
    pub name: String,
    pub expr: String,
}

impl TableDef {
    /// Whether the table exists in snapshot `seq`.
    pub fn exists_at(&self, seq: u64) -> bool {
        self.created_seq <= seq && self.dropped_seq.is_none_or(|d| d > seq)
    }

    /// The columns the table had at snapshot `seq` (its first columns if `seq` precedes it).
    pub fn columns_at(&self, seq: u64) -> &[ColumnDef] {
        let idx = self.versions.partition_point(|v| v.seq <= seq);
        &self.versions[idx.saturating_sub(1)].columns
    }

    /// The current columns.
    pub fn columns(&self) -> &[ColumnDef] {
        &self.versions[self.versions.len() - 1].columns
    }

    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns().iter().find(|c| c.name == name)
    }

    pub fn has_primary_key(&self) -> bool {
        !self.primary_key.is_empty()
    }

    /// Current primary key columns, in key order.
    pub fn primary_key_columns(&self) -> Vec<&ColumnDef> {
        self.primary_key
            .iter()
            .filter_map(|id| self.columns().iter().find(|c| c.id == *id))
            .collect()
    }

    /// Name used for the primary key constraint in messages.
    pub fn primary_key_name(&self) -> String {
        format!("{}_pkey", self.name)
    }
}

/// A persisted view: its SQL is planned afresh on every use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewDef {
    pub name: String,
    pub sql: String,
    pub created_seq: u64,
    pub dropped_seq: Option<u64>,
}

impl ViewDef {
    pub fn exists_at(&self, seq: u64) -> bool {
        self.created_seq <= seq && self.dropped_seq.is_none_or(|d| d > seq)
    }
}

/// All tables and views, including dropped ones (for time travel).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    pub tables: Vec<TableDef>,
    pub views: Vec<ViewDef>,
}

impl Catalog {
    /// The table called `name` in snapshot `seq`.
    pub fn table_at(&self, name: &str, seq: u64) -> Option<&TableDef> {
        self.tables
            .iter()
            .rev()
            .find(|t| t.name == name && t.exists_at(seq))
    }

    pub fn table_by_id(&self, id: u64) -> Option<&TableDef> {
        self.tables.iter().find(|t| t.id == id)
    }

    pub fn table_by_id_mut(&mut self, id: u64) -> Option<&mut TableDef> {
        self.tables.iter_mut().find(|t| t.id == id)
    }

    /// The view called `name` in snapshot `seq`.
    pub fn view_at(&self, name: &str, seq: u64) -> Option<&ViewDef> {
        self.views
            .iter()
            .rev()
            .find(|v| v.name == name && v.exists_at(seq))
    }

    /// Names of the tables that exist in snapshot `seq`, sorted.
    pub fn table_names_at(&self, seq: u64) -> Vec<String> {
        let mut names: Vec<String> = self
            .tables
            .iter()
            .filter(|t| t.exists_at(seq))
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Names of the views that exist in snapshot `seq`, sorted.
    pub fn view_names_at(&self, seq: u64) -> Vec<String> {
        let mut names: Vec<String> = self
            .views
            .iter()
            .filter(|v| v.exists_at(seq))
            .map(|v| v.name.clone())
            .collect();
        names.sort();
        names
    }

    pub fn max_table_id(&self) -> u64 {
        self.tables.iter().map(|t| t.id).max().unwrap_or(0)
    }
}

/// The schema users see: column names and types as defined.
pub fn logical_schema(columns: &[ColumnDef]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(ColumnDef::logical_field)
            .collect::<Vec<_>>(),
    ))
}

/// The schema of stored batches: `c<id>` columns, then `_rowid` and `_seq`.
pub fn physical_schema(columns: &[ColumnDef]) -> SchemaRef {
    let mut fields: Vec<Field> = columns.iter().map(ColumnDef::physical_field).collect();
    fields.extend(system_fields());
    Arc::new(Schema::new(fields))
}

/// The physical schema without the system columns (what a writer supplies).
pub fn user_physical_schema(columns: &[ColumnDef]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(ColumnDef::physical_field)
            .collect::<Vec<_>>(),
    ))
}

/// `_rowid` and `_seq`, in that order.
pub fn system_fields() -> [Field; 2] {
    [
        Field::new(ROWID_COLUMN, DataType::UInt64, false),
        Field::new(SEQ_COLUMN, DataType::UInt64, false),
    ]
}
