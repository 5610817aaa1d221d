//! A local disk cache of data files for databases on object storage.
//!
//! Data files never change once written, so a copy on local disk is as
//! good as the object. [`CachedStore`] sits between the verifier and the
//! remote store: the first read of a data file fetches it whole (the
//! verifier reads every file whole once anyway, to check its checksum)
//! and keeps it in a private temporary folder; later reads, byte ranges
//! included, are served from there. The folder holds at most
//! `data_cache_bytes_max` (`--cache-mib`); the least recently used files
//! go first, and a file larger than the whole cache is read by byte
//! ranges from the store every time. Files a persist writes are cached as
//! they are uploaded. Everything else (log, checkpoints, leases) passes
//! straight through. Footers and page indexes are cached in memory by
//! DataFusion's file-metadata cache, which the database shares between
//! sessions.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use parking_lot::Mutex;
use tokio::sync::OnceCell;

/// Counters of the cache, for benchmarks and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads of data files served from local disk.
    pub hits: u64,
    /// Data files fetched from the store into the cache.
    pub fills: u64,
    /// Reads that went to the store (a file larger than the cache, or none).
    pub misses: u64,
    /// Bytes held now.
    pub bytes: u64,
}

/// What the cache holds: each file's size and when it was last used.
#[derive(Debug, Default)]
struct Held {
    files: HashMap<Path, (u64, u64)>,
    bytes: u64,
    clock: u64,
}

/// An object store with a local disk cache of data files (see the module page).
pub struct CachedStore {
    remote: Arc<dyn ObjectStore>,
    local: LocalFileSystem,
    _folder: tempfile::TempDir,
    capacity: u64,
    held: Mutex<Held>,
    filling: Mutex<HashMap<Path, Arc<OnceCell<bool>>>>,
    hits: AtomicU64,
    fills: AtomicU64,
    misses: AtomicU64,
}

impl fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStore")
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

impl fmt::Display for CachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cached({})", self.remote)
    }
}

/// Whether `path` names a data file (immutable once written).
fn cacheable(path: &Path) -> bool {
    path.as_ref().starts_with("data/") && path.as_ref().ends_with(".parquet")
}

impl CachedStore {
    /// Cache up to `capacity` bytes of `remote`'s data files in a new temporary folder.
    pub fn new(remote: Arc<dyn ObjectStore>, capacity: u64) -> std::io::Result<Self> {
        let folder = tempfile::Builder::new()
            .prefix("driftdb-cache-")
            .tempdir()?;
        let local = LocalFileSystem::new_with_prefix(folder.path())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Self {
            remote,
            local,
            _folder: folder,
            capacity,
            held: Mutex::default(),
            filling: Mutex::default(),
            hits: AtomicU64::new(0),
            fills: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            fills: self.fills.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes: self.held.lock().bytes,
        }
    }

    /// Mark `path` used; whether it is held.
    fn touch(&self, path: &Path) -> bool {
        let mut held = self.held.lock();
        held.clock += 1;
        let now = held.clock;
        match held.files.get_mut(path) {
            Some(entry) => {
                entry.1 = now;
                true
            }
            None => false,
        }
    }

    /// Make sure `path` is on local disk; false when it cannot be (too large).
    async fn ensure_cached(&self, path: &Path) -> object_store::Result<bool> {
        if self.touch(path) {
            return Ok(true);
        }
        let cell = self.filling.lock().entry(path.clone()).or_default().clone();
        let result = cell
            .get_or_try_init(|| async {
                let bytes = self.remote.get(path).await?.bytes().await?;
                self.keep(path, bytes).await
            })
            .await
            .copied();
        self.filling.lock().remove(path);
        result
    }

    /// Write `bytes` of `path` into the cache, evicting the least recently
    /// used files to make room; false if it is larger than the cache.
    async fn keep(&self, path: &Path, bytes: Bytes) -> object_store::Result<bool> {
        let size = bytes.len() as u64;
        if size > self.capacity {
            return Ok(false);
        }
        for victim in self.make_room(size) {
            let _ = self.local.delete(&victim).await;
        }
        self.local.put(path, PutPayload::from(bytes)).await?;
        let mut held = self.held.lock();
        held.clock += 1;
        let now = held.clock;
        if held.files.insert(path.clone(), (size, now)).is_none() {
            held.bytes += size;
        }
        self.fills.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Forget the least recently used files until `size` more bytes fit; returns them.
    fn make_room(&self, size: u64) -> Vec<Path> {
        let mut held = self.held.lock();
        let mut victims = Vec::new();
        while held.bytes + size > self.capacity {
            let Some(oldest) = held
                .files
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(path, _)| path.clone())
            else {
                break;
            };
            if let Some((bytes, _)) = held.files.remove(&oldest) {
                held.bytes -= bytes;
            }
            victims.push(oldest);
        }
        victims
    }

    /// The answer of a read of the local copy of `path`: counted as a hit,
    /// or None when the copy went missing under the reader (evicted
    /// meanwhile: forget it and read from the store).
    fn local_answer<T>(
        &self,
        path: &Path,
        read: object_store::Result<T>,
    ) -> object_store::Result<Option<T>> {
        match read {
            Ok(result) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Ok(Some(result))
            }
            Err(object_store::Error::NotFound { .. }) => {
                self.forget(path);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Forget `path` (its local copy went missing under a reader).
    fn forget(&self, path: &Path) {
        let mut held = self.held.lock();
        if let Some((bytes, _)) = held.files.remove(path) {
            held.bytes -= bytes;
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for CachedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let copy = cacheable(location).then(|| Bytes::from(payload.clone()));
        let result = self.remote.put_opts(location, payload, opts).await?;
        if let Some(bytes) = copy {
            // Best effort: a failed local write only means a later fetch.
            let _ = self.keep(location, bytes).await;
        }
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.remote.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.head || !cacheable(location) {
            return self.remote.get_opts(location, options).await;
        }
        if self.ensure_cached(location).await?
            && let Some(result) = self.local_answer(
                location,
                self.local.get_opts(location, options.clone()).await,
            )?
        {
            return Ok(result);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.remote.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        if cacheable(location)
            && self.ensure_cached(location).await?
            && let Some(result) =
                self.local_answer(location, self.local.get_ranges(location, ranges).await)?
        {
            return Ok(result);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.remote.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.remote.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.remote.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.remote.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.remote.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.remote.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.remote.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    async fn put(store: &dyn ObjectStore, name: &str, len: usize) {
        store
            .put(&Path::from(name), PutPayload::from(vec![7u8; len]))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn reads_come_from_disk_after_the_first_and_the_oldest_file_goes_first() {
        let remote: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for name in ["a", "b", "c"] {
            put(remote.as_ref(), &format!("data/t1/{name}.parquet"), 400).await;
        }
        put(remote.as_ref(), "data/t1/huge.parquet", 5_000).await;
        put(remote.as_ref(), "_checkpoints/1.json", 10).await;
        let cache = CachedStore::new(remote, 1_000).unwrap();
        let a = Path::from("data/t1/a.parquet");
        assert_eq!(cache.get_range(&a, 10..20).await.unwrap().len(), 10);
        assert_eq!(cache.get_range(&a, 0..400).await.unwrap().len(), 400);
        let stats = cache.stats();
        assert_eq!((stats.fills, stats.hits, stats.bytes), (1, 2, 400));
        // b and c do not both fit beside a: a, the least recently used, goes.
        for name in ["b", "c"] {
            let path = Path::from(format!("data/t1/{name}.parquet"));
            cache.get(&path).await.unwrap().bytes().await.unwrap();
        }
        assert_eq!(cache.stats().bytes, 800);
        assert!(!cache.touch(&a));
        // A file larger than the cache, and anything not a data file, pass through.
        let huge = Path::from("data/t1/huge.parquet");
        assert_eq!(cache.get_range(&huge, 0..5).await.unwrap().len(), 5);
        cache.get(&Path::from("_checkpoints/1.json")).await.unwrap();
        assert_eq!(cache.stats().misses, 1);
        assert_eq!(cache.stats().fills, 3);
    }

    #[tokio::test]
    async fn a_written_data_file_is_cached_on_the_way_up() {
        let remote: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let cache = CachedStore::new(remote.clone(), 1_000).unwrap();
        put(&cache, "data/t1/new.parquet", 100).await;
        assert!(
            remote
                .head(&Path::from("data/t1/new.parquet"))
                .await
                .is_ok()
        );
        cache
            .get_range(&Path::from("data/t1/new.parquet"), 0..100)
            .await
            .unwrap();
        assert_eq!(cache.stats().fills, 1);
        assert_eq!(cache.stats().hits, 1);
    }
}
