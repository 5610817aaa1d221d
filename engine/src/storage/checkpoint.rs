//! Checkpoints: the catalog, file list, retirements and counters as of one
//! `seq`, so that opening a database replays only the log after it.
//!
//! Stored as `_checkpoints/<seq, 20 digits>.json`; the highest readable one wins.

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::error::Result;
use crate::log::CommitInfo;
use crate::storage::DataFile;

const CHECKPOINT_DIR: &str = "_checkpoints";

/// The stored part of one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableCheckpoint {
    pub id: u64,
    pub files: Vec<DataFile>,
    /// (`_rowid`, retiring `seq`) pairs, sorted by rowid.
    pub retired: Vec<(u64, u64)>,
}

/// The database as of `seq`, minus the memtable (which the log after `seq` rebuilds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub time_us: i64,
    pub next_rowid: u64,
    pub catalog: Catalog,
    pub commits: Vec<CommitInfo>,
    pub tables: Vec<TableCheckpoint>,
}

fn checkpoint_path(seq: u64) -> Path {
    Path::from(format!("{CHECKPOINT_DIR}/{seq:020}.json"))
}

/// Write a checkpoint (atomically on local disk: the store writes a temp file and renames).
pub async fn write_checkpoint(store: &dyn ObjectStore, checkpoint: &Checkpoint) -> Result<()> {
    let bytes =
        serde_json::to_vec(checkpoint).map_err(|e| crate::Error::internal(e.to_string()))?;
    store
        .put(&checkpoint_path(checkpoint.seq), PutPayload::from(bytes))
        .await?;
    Ok(())
}

/// The newest checkpoint, if any.
pub async fn read_latest_checkpoint(store: &dyn ObjectStore) -> Result<Option<Checkpoint>> {
    let mut paths = list_checkpoints(store).await?;
    paths.sort();
    let Some(latest) = paths.pop() else {
        return Ok(None);
    };
    let bytes = store.get(&latest).await?.bytes().await?;
    Ok(Some(serde_json::from_slice(&bytes)?))
}

/// Delete checkpoints older than `seq`.
pub async fn delete_checkpoints_before(store: &dyn ObjectStore, seq: u64) -> Result<()> {
    let keep = checkpoint_path(seq);
    for path in list_checkpoints(store).await? {
        if path < keep {
            store.delete(&path).await?;
        }
    }
    Ok(())
}

async fn list_checkpoints(store: &dyn ObjectStore) -> Result<Vec<Path>> {
    let prefix = Path::from(CHECKPOINT_DIR);
    let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
    Ok(metas
        .into_iter()
        .map(|m| m.location)
        .filter(|p| p.as_ref().ends_with(".json"))
        .collect())
}
