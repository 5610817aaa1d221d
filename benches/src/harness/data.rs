//! Benchmark datasets on disk, generated once and reused:
//! `<dir>/tpch-sf<SF>/parquet/<table>.parquet` for the peers and
//! `<dir>/tpch-sf<SF>/driftdb/` as a DriftDB database holding the same rows.
//! A `complete` marker is written last, so an interrupted run regenerates.

use std::path::{Path, PathBuf};

use driftdb_datasets::progress::Progress;
use driftdb_datasets::{sink, tpch};
use driftdb_engine::Database;

use super::Result;

const COMPLETE_MARKER: &str = "complete";

/// Where one scale factor of TPC-H lives.
#[derive(Debug, Clone)]
pub struct TpchData {
    pub parquet: PathBuf,
    pub driftdb: PathBuf,
}

/// The TPC-H data at `scale` under `dir`, generated first when missing.
pub async fn tpch_data(dir: &Path, scale: f64, quiet: bool) -> Result<TpchData> {
    let root = dir.join(format!("tpch-sf{scale}"));
    let data = TpchData {
        parquet: root.join("parquet"),
        driftdb: root.join("driftdb"),
    };
    if root.join(COMPLETE_MARKER).exists() {
        return Ok(data);
    }
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&root)?;
    let database = Database::open(&data.driftdb.to_string_lossy()).await?;
    for table in tpch::TABLES {
        let mut progress = Progress::start(&format!("{table} → Parquet"), quiet);
        sink::to_parquet(
            &data.parquet,
            table,
            tpch::batches(table, scale)?,
            &mut progress,
        )?;
        progress.finish();
        let mut progress = Progress::start(&format!("{table} → DriftDB"), quiet);
        sink::into_database(
            &database,
            table,
            tpch::batches(table, scale)?,
            &mut progress,
        )
        .await?;
        progress.finish();
    }
    database.close().await?;
    std::fs::write(root.join(COMPLETE_MARKER), b"")?;
    Ok(data)
}
