//! The writer lease of a database on object storage: at most one process
//! writes to a prefix at a time.
//!
//! A lease is an object `_lease/<epoch, 20 digits>.json`; the newest epoch
//! is the holder. Opening lists the leases: if the newest was renewed
//! within [`Limits::writer_lease_ttl`](crate::limits::Limits) and not
//! released, the database is in use and opening is refused (55006, naming
//! the holder; the holder's own TTL, recorded in its lease, decides).
//! Otherwise the opener creates the next epoch with a
//! conditional PUT (two openers racing: one wins, the other is refused)
//! and then fences the log ([`crate::log::objects`]).
//!
//! The holder renews its lease (a plain PUT of its own object, which moves
//! its modification time) every quarter of the TTL, and at each renewal
//! checks for a newer epoch: finding one means it was taken over (its
//! process was paused past the TTL, say), and it stops writing (55006).
//! The log fence stops it independently at its next commit. Ages are
//! measured against the store's modification times, so the clocks of
//! the process and the store should roughly agree (as S3 request signing
//! requires anyway).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::verify::store_error;

/// The folder of lease objects, under the database's prefix.
pub const LEASE_PREFIX: &str = "_lease";

/// What a lease object says about its holder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub epoch: u64,
    pub host: String,
    pub pid: u32,
    /// Set when the holder closed the database: the next opener need not wait.
    #[serde(default)]
    pub released: bool,
    /// The holder's TTL: an opener judges the lease by it, not by its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

/// A writer lease this process holds.
#[derive(Debug, Clone)]
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    record: LeaseRecord,
    display: String,
}

fn lease_path(epoch: u64) -> Path {
    Path::from(format!("{LEASE_PREFIX}/{epoch:020}.json"))
}

fn lease_epoch(path: &Path) -> Option<u64> {
    let name = path.filename()?.strip_suffix(".json")?;
    (name.len() == 20).then(|| name.parse().ok()).flatten()
}

impl Lease {
    /// Take the writer lease of the database in `store` (shown as `display`).
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        display: &str,
        ttl: Duration,
    ) -> Result<Self> {
        let newest = newest_lease(store.as_ref()).await?;
        let epoch = match &newest {
            None => 1,
            Some((meta, record)) => {
                refuse_if_held(display, meta, record.as_ref(), ttl)?;
                lease_epoch(&meta.location)
                    .and_then(|e| e.checked_add(1))
                    .ok_or_else(|| Error::Corrupt {
                        detail: format!(
                            "writer lease {} leaves no room for the next epoch",
                            meta.location
                        ),
                    })?
            }
        };
        let record = LeaseRecord {
            epoch,
            host: hostname(),
            pid: std::process::id(),
            released: false,
            ttl_ms: Some(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        };
        let body =
            Bytes::from(serde_json::to_vec(&record).map_err(|e| Error::internal(e.to_string()))?);
        let options = PutOptions::from(PutMode::Create);
        match store
            .put_opts(&lease_path(epoch), PutPayload::from(body), options)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                return Err(Error::Locked {
                    location: display.to_string(),
                    detail: format!("another process took writer lease {epoch} at the same moment"),
                });
            }
            Err(e) => return Err(store_error(e)),
        }
        let lease = Self {
            store,
            record,
            display: display.to_string(),
        };
        lease.forget_older().await;
        Ok(lease)
    }

    pub fn epoch(&self) -> u64 {
        self.record.epoch
    }

    /// Renew the lease, or learn that a newer epoch took the database over.
    pub async fn renew(&self) -> Result<()> {
        if let Some((meta, _)) = newest_lease(self.store.as_ref()).await? {
            let newest = lease_epoch(&meta.location).unwrap_or(0);
            if newest > self.record.epoch {
                return Err(Error::Fenced {
                    detail: format!(
                        "writer lease {newest} on {} replaced this process's lease {}",
                        self.display, self.record.epoch
                    ),
                });
            }
        }
        self.write(&self.record).await
    }

    /// Mark the lease released, so the next opener need not wait out the TTL.
    pub async fn release(&self) -> Result<()> {
        let mut record = self.record.clone();
        record.released = true;
        self.write(&record).await
    }

    async fn write(&self, record: &LeaseRecord) -> Result<()> {
        let body = serde_json::to_vec(record).map_err(|e| Error::internal(e.to_string()))?;
        self.store
            .put(&lease_path(record.epoch), PutPayload::from(body))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Delete leases older than the one before ours (best effort: they
    /// decide nothing; the one before stays so its holder sees ours is newer).
    async fn forget_older(&self) {
        let Ok(metas) = list_leases(self.store.as_ref()).await else {
            return;
        };
        for meta in metas {
            if lease_epoch(&meta.location).is_some_and(|e| e + 1 < self.record.epoch) {
                let _ = self.store.delete(&meta.location).await;
            }
        }
    }
}

/// 55006 if the newest lease is held: renewed within `ttl` and not released.
fn refuse_if_held(
    display: &str,
    meta: &object_store::ObjectMeta,
    record: Option<&LeaseRecord>,
    ttl: Duration,
) -> Result<()> {
    if record.is_some_and(|r| r.released) {
        return Ok(());
    }
    let ttl = record
        .and_then(|r| r.ttl_ms)
        .map_or(ttl, Duration::from_millis);
    let age = (chrono::Utc::now() - meta.last_modified)
        .to_std()
        .unwrap_or(Duration::ZERO);
    if age >= ttl {
        return Ok(());
    }
    let holder = record.map_or_else(
        || "an unreadable lease".to_string(),
        |r| format!("process {} on {} (writer lease {})", r.pid, r.host, r.epoch),
    );
    Err(Error::Locked {
        location: display.to_string(),
        detail: format!(
            "{holder} holds it for writing, renewed {:.1} s ago; a lease not renewed for {} s lapses",
            age.as_secs_f64(),
            ttl.as_secs_f64()
        ),
    })
}

async fn list_leases(store: &dyn ObjectStore) -> Result<Vec<object_store::ObjectMeta>> {
    let prefix = Path::from(LEASE_PREFIX);
    let metas: Vec<_> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(store_error)?;
    Ok(metas
        .into_iter()
        .filter(|m| lease_epoch(&m.location).is_some())
        .collect())
}

/// The newest lease and what it says (None if unreadable).
async fn newest_lease(
    store: &dyn ObjectStore,
) -> Result<Option<(object_store::ObjectMeta, Option<LeaseRecord>)>> {
    let Some(meta) = list_leases(store)
        .await?
        .into_iter()
        .max_by_key(|m| lease_epoch(&m.location))
    else {
        return Ok(None);
    };
    let record = match store.get(&meta.location).await {
        Ok(got) => got
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => return Err(store_error(e)),
    };
    Ok(Some((meta, record)))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn a_held_lease_refuses_a_second_writer_and_a_released_one_does_not() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let ttl = Duration::from_secs(30);
        let first = Lease::acquire(store.clone(), "mem", ttl).await.unwrap();
        assert_eq!(first.epoch(), 1);
        let refused = Lease::acquire(store.clone(), "mem", ttl).await.unwrap_err();
        assert_eq!(refused.sqlstate(), "55006");
        assert!(refused.to_string().contains("writer lease 1"), "{refused}");
        first.release().await.unwrap();
        let second = Lease::acquire(store.clone(), "mem", ttl).await.unwrap();
        assert_eq!(second.epoch(), 2);
        // The first holder learns it was replaced.
        let fenced = first.renew().await.unwrap_err();
        assert!(matches!(fenced, Error::Fenced { .. }), "{fenced}");
        second.renew().await.unwrap();
    }

    #[tokio::test]
    async fn a_lapsed_lease_is_taken_over() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let ttl = Duration::from_millis(50);
        let first = Lease::acquire(store.clone(), "mem", ttl).await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        let second = Lease::acquire(store.clone(), "mem", ttl).await.unwrap();
        assert_eq!(second.epoch(), first.epoch() + 1);
    }
}
