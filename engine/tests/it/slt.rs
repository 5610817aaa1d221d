//! sqllogictest suites: every `tests/slt/*.slt` file runs against its own
//! fresh database in a temporary folder.
//!
//! Extra commands understood by this harness (as `statement ok` bodies):
//! - `REOPEN`: persist nothing extra, close the database, open it again
//!   (recovery from checkpoint + log), and give every connection a new session.
//! - `PERSIST`: write the memtable to Parquet and checkpoint now.
//!
//! Errors are reported as `<SQLSTATE>: <message>` so `statement error 23505`
//! asserts the code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use driftdb_engine::{Database, Session};
use sqllogictest::{DBOutput, DefaultColumnType};
use tokio::sync::RwLock;

#[derive(Debug, thiserror::Error)]
#[error("{sqlstate}: {message}")]
struct SltError {
    sqlstate: String,
    message: String,
}

impl From<driftdb_engine::Error> for SltError {
    fn from(e: driftdb_engine::Error) -> Self {
        Self {
            sqlstate: e.sqlstate().to_string(),
            message: e.to_string(),
        }
    }
}

/// The database of one test file, shared by its connections.
struct Shared {
    location: String,
    db: RwLock<(u64, Database)>,
}

struct Connection {
    shared: Arc<Shared>,
    session: Option<(u64, Session)>,
}

impl Connection {
    async fn session(&mut self) -> &mut Session {
        let (generation, db) = {
            let guard = self.shared.db.read().await;
            (guard.0, guard.1.clone())
        };
        if self.session.as_ref().is_none_or(|(g, _)| *g != generation) {
            self.session = Some((generation, Session::new(&db)));
        }
        &mut self.session.as_mut().expect("just set").1
    }

    async fn reopen(&mut self) -> Result<(), SltError> {
        self.session = None;
        let mut guard = self.shared.db.write().await;
        guard.1.close().await?;
        let db = Database::open(&self.shared.location).await?;
        *guard = (guard.0 + 1, db);
        Ok(())
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for Connection {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        match sql.trim().trim_end_matches(';') {
            "REOPEN" => {
                self.reopen().await?;
                return Ok(DBOutput::StatementComplete(0));
            }
            "PERSIST" => {
                self.session().await.db().persist().await?;
                return Ok(DBOutput::StatementComplete(0));
            }
            _ => {}
        }
        let result = self.session().await.execute_one(sql).await?;
        if result.schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(
                result.rows_affected.unwrap_or(0),
            ));
        }
        let types = vec![DefaultColumnType::Any; result.schema.fields().len()];
        Ok(DBOutput::Rows {
            types,
            rows: render_rows(&result.batches)?,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "driftdb"
    }

    fn error_sql_state(err: &Self::Error) -> Option<String> {
        Some(err.sqlstate.clone())
    }
}

fn render_rows(batches: &[arrow::array::RecordBatch]) -> Result<Vec<Vec<String>>, SltError> {
    driftdb_engine::sql::rows_as_text(batches).map_err(|e| SltError {
        sqlstate: "XX000".into(),
        message: e.to_string(),
    })
}

/// `DRIFTDB_SLT_DATA=s3://bucket/prefix` runs every file with its
/// database on object storage (a fresh prefix per file; endpoint and
/// credentials from the `AWS_*` variables), else in a temporary folder.
async fn run_file(file: &Path) {
    let dir = tempfile::tempdir().expect("temp dir");
    let location = match std::env::var("DRIFTDB_SLT_DATA") {
        Ok(base) => format!(
            "{}/{}-{}",
            base.trim_end_matches('/'),
            file.file_stem().and_then(|s| s.to_str()).unwrap_or("slt"),
            std::process::id()
        ),
        Err(_) => dir
            .path()
            .join("db")
            .to_str()
            .expect("utf-8 path")
            .to_string(),
    };
    let db = Database::open(&location)
        .await
        .unwrap_or_else(|e| panic!("open {location}: {e}"));
    let shared = Arc::new(Shared {
        location,
        db: RwLock::new((0, db)),
    });
    let mut runner = sqllogictest::Runner::new(move || {
        let shared = shared.clone();
        async move {
            Ok::<_, SltError>(Connection {
                shared,
                session: None,
            })
        }
    });
    if let Err(e) = runner.run_file_async(file).await {
        panic!("{}: {}", file.display(), e.display(true));
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    // `DRIFTDB_SLT=name` runs only the files whose path contains it (while iterating).
    let only = std::env::var("DRIFTDB_SLT").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| {
            only.as_ref()
                .is_none_or(|o| p.to_string_lossy().contains(o.as_str()))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files() {
    for file in slt_files() {
        run_file(&file).await;
    }
}
