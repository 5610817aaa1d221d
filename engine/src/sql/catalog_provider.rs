//! DataFusion catalog over DriftDB: `driftdb.public` lists the tables and
//! views of the statement's snapshot (for `information_schema`, `DESCRIBE`
//! and `SHOW TABLES`) and holds session-local temporary tables (the
//! `excluded` rows of `INSERT … ON CONFLICT`).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use parking_lot::RwLock;

use super::SCHEMA_NAME;
use crate::db::Database;
use crate::temporal::StatementSnapshot;
use crate::temporal::provider::TemporalTable;

/// The `driftdb` catalog with its single `public` schema.
#[derive(Debug)]
pub struct DriftCatalog {
    schema: Arc<DriftSchema>,
}

impl DriftCatalog {
    pub fn new(db: Database, snapshot: Arc<StatementSnapshot>) -> Self {
        Self {
            schema: Arc::new(DriftSchema {
                db,
                snapshot,
                temporary: RwLock::default(),
            }),
        }
    }
}

impl CatalogProvider for DriftCatalog {
    fn schema_names(&self) -> Vec<String> {
        vec![SCHEMA_NAME.to_string()]
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        (name == SCHEMA_NAME).then(|| self.schema.clone() as Arc<dyn SchemaProvider>)
    }
}

/// Tables of one database at the statement's snapshot, plus temporary tables.
#[derive(Debug)]
pub struct DriftSchema {
    db: Database,
    snapshot: Arc<StatementSnapshot>,
    temporary: RwLock<HashMap<String, Arc<dyn TableProvider>>>,
}

#[async_trait]
impl SchemaProvider for DriftSchema {
    fn table_names(&self) -> Vec<String> {
        let view = self.snapshot.view();
        let (tables, _views) = self
            .db
            .relation_names_in(self.snapshot.get(), view.as_deref());
        tables
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if let Some(table) = self.temporary.read().get(name) {
            return Ok(Some(table.clone()));
        }
        let view = self.snapshot.view();
        Ok(self
            .db
            .table_snapshot_in(name, self.snapshot.get(), view.as_deref())
            .map(|s| Arc::new(TemporalTable::new(s, false)) as Arc<dyn TableProvider>))
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.temporary.write().insert(name, table))
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.temporary.write().remove(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.temporary.read().contains_key(name)
            || self
                .db
                .table_exists_in(name, self.snapshot.get(), self.snapshot.view().as_deref())
    }
}
