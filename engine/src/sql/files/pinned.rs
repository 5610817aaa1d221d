//! Files pinned when they were checked, so a later open reads the same file.
//!
//! [`FileAccess`](super::FileAccess) checks a path when a statement is
//! planned; the file is opened later (a Flight SQL client plans with one
//! call and fetches with another). Whoever may write in an allowed folder
//! could swap the checked file for a link to one outside in between. So
//! each checked file is pinned by its device and inode, and every open,
//! `COPY`'s and the `read_*` scans' (through [`PinnedStore`], the
//! `file://` object store of every session), is refused unless the opened
//! handle is that same file: a swap after the check reads nothing.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, LazyLock};

use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use parking_lot::Mutex;

/// Device and inode of each pinned file, by canonical path.
static PINS: LazyLock<Mutex<HashMap<PathBuf, (u64, u64)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Pin the file at canonical path `file` (checked to be inside) as it is
/// now: opened, and its handle's inode taken only if the path still
/// resolves to itself, through no link, to that same inode. False when
/// the path changed under the check (a component swapped for a link).
pub(super) fn pin(file: &FsPath) -> std::io::Result<bool> {
    let opened = File::open(file)?.metadata()?;
    let ids = (opened.dev(), opened.ino());
    let still = file.canonicalize()? == file && {
        let now = std::fs::metadata(file)?;
        (now.dev(), now.ino()) == ids
    };
    if still {
        PINS.lock().insert(file.to_path_buf(), ids);
    }
    Ok(still)
}

/// Whether `opened` is the file pinned at `path`.
fn is_pinned(path: &FsPath, opened: &File) -> bool {
    let pinned = PINS.lock().get(path).copied();
    match (pinned, opened.metadata()) {
        (Some(pin), Ok(meta)) => pin == (meta.dev(), meta.ino()),
        _ => false,
    }
}

fn swapped(path: &FsPath) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        format!(
            "\"{}\" is no longer the file that was checked (it was replaced after the statement was planned)",
            path.display()
        ),
    )
}

/// Open the pinned file at `path`, refusing any other file found there.
pub(super) fn open_pinned(path: &FsPath) -> std::io::Result<File> {
    let file = File::open(path)?;
    match is_pinned(path, &file) {
        true => Ok(file),
        false => Err(swapped(path)),
    }
}

/// The `file://` store of every session: reads of pinned files only.
#[derive(Debug)]
pub struct PinnedStore {
    inner: LocalFileSystem,
}

impl PinnedStore {
    /// The one store (it holds no state of its own).
    pub fn shared() -> Arc<Self> {
        static STORE: LazyLock<Arc<PinnedStore>> = LazyLock::new(|| {
            Arc::new(PinnedStore {
                inner: LocalFileSystem::new(),
            })
        });
        STORE.clone()
    }
}

impl fmt::Display for PinnedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pinned({})", self.inner)
    }
}

fn read_only() -> object_store::Error {
    object_store::Error::NotSupported {
        source: "server-side files are written by COPY … TO only".into(),
    }
}

#[async_trait::async_trait]
impl ObjectStore for PinnedStore {
    async fn put_opts(
        &self,
        _: &Path,
        _: PutPayload,
        _: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(read_only())
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(read_only())
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let result = self.inner.get_opts(location, options).await?;
        let denied = |path: &FsPath| object_store::Error::PermissionDenied {
            path: location.to_string(),
            source: Box::new(swapped(path)),
        };
        match &result.payload {
            GetResultPayload::File(file, path) if is_pinned(path, file) => Ok(result),
            GetResultPayload::File(_, path) => Err(denied(path)),
            GetResultPayload::Stream(_) => Err(denied(FsPath::new(location.as_ref()))),
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        use futures::StreamExt;
        locations.map(|_| Err(read_only())).boxed()
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

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> object_store::Result<()> {
        Err(read_only())
    }
}
