//! Helpers shared by the suites.

use driftdb_engine::Session;

/// A query's answer as a pretty-printed table (panics naming the query on an error).
pub async fn text(session: &mut Session, sql: &str) -> String {
    let result = session
        .execute_one(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    arrow::util::pretty::pretty_format_batches(&result.batches)
        .expect("format")
        .to_string()
}

/// A database folder inside a fresh temporary directory (gone on drop).
pub struct TempDb {
    _dir: tempfile::TempDir,
    /// The database folder.
    pub folder: std::path::PathBuf,
    /// The same, as the location `Database::open` takes.
    pub path: String,
}

impl TempDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("db");
        let path = folder.to_str().expect("utf-8").to_string();
        Self {
            _dir: dir,
            folder,
            path,
        }
    }

    /// Open (or reopen) the database with `limits`.
    pub async fn open(&self, limits: driftdb_engine::Limits) -> driftdb_engine::Database {
        driftdb_engine::Database::open_with(&self.path, limits)
            .await
            .expect("open")
    }
}
