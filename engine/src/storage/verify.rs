//! Data files are checked before their bytes are used: [`VerifyingStore`]
//! wraps the database's object store, and the first read of a data file
//! the checkpoint (or a persist) describes reads the whole file once and
//! compares its length and xxh64 with the recorded ones. A mismatch is
//! [`Error::CorruptFile`] (XX001) naming the file, returned for every read
//! of that file from then on; other files are unaffected. Scans, key-index
//! rebuilds and internal queries all read through this store, so none of
//! them can use a damaged byte.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use crate::error::Error;
use crate::storage::DataFile;
use crate::storage::envelope::Xxh64;

/// What a data file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub bytes: u64,
    /// None for files written before checksums were recorded (length only).
    pub xxh64: Option<u64>,
}

impl Expected {
    pub fn of(file: &DataFile) -> Self {
        Self {
            bytes: file.bytes,
            xxh64: file.xxh64,
        }
    }
}

/// The verdict on one file: fine, or what is wrong with it.
type Verdict = Result<(), String>;

/// An object store that verifies each registered data file on its first read.
#[derive(Debug)]
pub struct VerifyingStore {
    inner: Arc<dyn ObjectStore>,
    files: Mutex<HashMap<Path, Expected>>,
    verdicts: Mutex<HashMap<Path, Arc<OnceCell<Verdict>>>>,
}

impl VerifyingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            files: Mutex::default(),
            verdicts: Mutex::default(),
        }
    }

    /// The store it verifies reads from.
    pub fn inner(&self) -> Arc<dyn ObjectStore> {
        self.inner.clone()
    }

    /// Check `file` against its entry before its first read.
    pub fn expect(&self, file: &DataFile) {
        self.files
            .lock()
            .insert(Path::from(file.path.as_str()), Expected::of(file));
    }

    /// Forget a data file that was deleted.
    pub fn forget(&self, location: &Path) {
        self.files.lock().remove(location);
        self.verdicts.lock().remove(location);
    }

    /// Verify `location` if it is a registered data file and not yet verified.
    pub async fn ensure_verified(&self, location: &Path) -> object_store::Result<()> {
        let Some(expected) = self.files.lock().get(location).copied() else {
            return Ok(());
        };
        let cell = self
            .verdicts
            .lock()
            .entry(location.clone())
            .or_default()
            .clone();
        // Only a definite verdict is kept; an I/O error is retried next time.
        let verdict = cell
            .get_or_try_init(|| verify_file(self.inner.as_ref(), location, expected))
            .await?;
        verdict.clone().map_err(|detail| damaged(location, detail))
    }
}

/// Read `location` whole and compare it with `expected`. `Ok(Err(..))` is
/// damage (including a missing file); `Err` is a failure to read.
pub async fn verify_file(
    store: &dyn ObjectStore,
    location: &Path,
    expected: Expected,
) -> object_store::Result<Verdict> {
    let result = match store.get_opts(location, GetOptions::default()).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => {
            return Ok(Err("the file is missing".into()));
        }
        Err(e) => return Err(e),
    };
    let (bytes, sum) = match result.payload {
        GetResultPayload::File(file, _) => tokio::task::spawn_blocking(move || hash_file(file))
            .await
            .map_err(|e| generic(e.to_string()))?
            .map_err(|e| generic(e.to_string()))?,
        GetResultPayload::Stream(mut stream) => {
            let (mut bytes, mut sum) = (0u64, Xxh64::default());
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                bytes += chunk.len() as u64;
                sum.update(&chunk);
            }
            (bytes, sum.finish())
        }
    };
    if bytes != expected.bytes {
        return Ok(Err(format!(
            "it is {bytes} bytes long, the checkpoint recorded {}",
            expected.bytes
        )));
    }
    match expected.xxh64 {
        Some(want) if want != sum => Ok(Err(format!(
            "checksum mismatch (recorded xxh64 {want:016x}, computed {sum:016x})"
        ))),
        _ => Ok(Ok(())),
    }
}

/// Length and xxh64 of a local file, read in 1 MiB pieces.
fn hash_file(mut file: std::fs::File) -> std::io::Result<(u64, u64)> {
    use std::io::{Read, Seek};
    file.rewind()?;
    let mut buffer = vec![0u8; 1 << 20];
    let (mut bytes, mut sum) = (0u64, Xxh64::default());
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok((bytes, sum.finish()));
        }
        bytes += n as u64;
        sum.update(&buffer[..n]);
    }
}

/// The object-store error that carries a damaged file out through
/// DataFusion (see `Error`'s conversion from `DataFusionError`).
fn damaged(location: &Path, detail: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "DriftDB",
        source: Box::new(Error::CorruptFile {
            file: location.to_string(),
            detail,
        }),
    }
}

fn generic(detail: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "DriftDB",
        source: detail.into(),
    }
}

/// An object-store error as an engine error, unwrapping a damaged file.
pub fn store_error(err: object_store::Error) -> Error {
    match err {
        object_store::Error::Generic { source, .. } if source.is::<Error>() => {
            match source.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Error::ObjectStore(object_store::Error::Generic {
                    store: "DriftDB",
                    source: other,
                }),
            }
        }
        other => Error::ObjectStore(other),
    }
}

impl fmt::Display for VerifyingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifying({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for VerifyingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if !options.head {
            self.ensure_verified(location).await?;
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.ensure_verified(location).await?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;
    use crate::storage::envelope::xxh64;

    fn entry(path: &str, bytes: &[u8]) -> DataFile {
        DataFile {
            path: path.into(),
            rows: 1,
            bytes: bytes.len() as u64,
            min_seq: 1,
            max_seq: 1,
            min_rowid: 1,
            max_rowid: 1,
            column_stats: Vec::new(),
            xxh64: Some(xxh64(bytes)),
            retired_seqs: None,
        }
    }

    #[tokio::test]
    async fn a_damaged_file_is_refused_and_others_still_read() {
        let inner = Arc::new(InMemory::new());
        let store = VerifyingStore::new(inner.clone());
        let good = b"good file".to_vec();
        let bad = b"bad file!".to_vec();
        for (path, bytes) in [("a", &good), ("b", &bad)] {
            inner
                .put(&Path::from(path), PutPayload::from(bytes.clone()))
                .await
                .unwrap();
            store.expect(&entry(path, bytes));
        }
        // Damage b after its entry was recorded: flip one bit.
        let mut flipped = bad.clone();
        flipped[3] ^= 0x01;
        inner
            .put(&Path::from("b"), PutPayload::from(flipped))
            .await
            .unwrap();
        let read_a = store.get_range(&Path::from("a"), 0..4).await.unwrap();
        assert_eq!(&read_a[..], b"good");
        for _ in 0..2 {
            let err = store_error(store.get(&Path::from("b")).await.unwrap_err());
            assert_eq!(err.sqlstate(), "XX001");
            match err {
                Error::CorruptFile { file, detail } => {
                    assert_eq!(file, "b");
                    assert!(detail.contains("checksum mismatch"), "{detail}");
                }
                other => panic!("expected CorruptFile, got {other:?}"),
            }
        }
        // A file the store does not know passes through.
        inner
            .put(&Path::from("c"), PutPayload::from(b"x".to_vec()))
            .await
            .unwrap();
        assert!(store.get(&Path::from("c")).await.is_ok());
    }

    #[tokio::test]
    async fn a_short_or_missing_file_is_damage() {
        let inner = Arc::new(InMemory::new());
        let store = VerifyingStore::new(inner.clone());
        let mut file = entry("short", b"0123456789");
        inner
            .put(&Path::from("short"), PutPayload::from(b"01234".to_vec()))
            .await
            .unwrap();
        store.expect(&file);
        let err = store_error(store.get(&Path::from("short")).await.unwrap_err());
        assert!(err.to_string().contains("5 bytes long"), "{err}");
        file.path = "gone".into();
        store.expect(&file);
        let err = store_error(store.get(&Path::from("gone")).await.unwrap_err());
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
