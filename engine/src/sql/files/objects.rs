//! Files on object storage: `s3://bucket/key` (and `gs://`, `az://`)
//! wherever a path is accepted — `COPY … FROM` and `TO`, `read_parquet`,
//! `read_csv`, `read_json`, `driftdb load` and `driftdb export`.
//!
//! A bucket's store is configured as a database's is, from the standard
//! environment variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, …; see
//! [`crate::storage::location`]). A key may hold `*`, `?` and `[…]` within
//! its segments (`s3://b/sales/*.parquet`): the objects under its literal
//! folders are listed (at most [`OBJECTS_LISTED_MAX`]) and matched segment
//! by segment. The server grants object access as it grants folders
//! (`--file-access-dirs s3://bucket/prefix`); a path outside is 42501.
//!
//! `read_*` scans objects in place with ranged reads. `COPY FROM` and
//! `driftdb load` read each object through a local temporary file (in
//! `TMPDIR`; removed when read), so the readers are the local files'.
//! `COPY TO` and `driftdb export` write a local temporary file and upload
//! it (in parts when large): the object appears whole, or not at all.

use std::fmt;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::error::{Error, Result, printable};
use crate::storage::location::{StorageOptions, object_store_at};

/// Most objects one pattern may list (the listing is held while matched).
pub const OBJECTS_LISTED_MAX: usize = 100_000;

/// Bytes buffered per part of an upload (a smaller object is one PUT).
const UPLOAD_PART_BYTES: usize = 16 * 1024 * 1024;

/// The schemes of object stores DriftDB can reach.
const SCHEMES: [&str; 7] = ["s3", "s3a", "gs", "az", "azure", "abfs", "abfss"];

/// Whether `path` is an object-store URL rather than a local path
/// (`file://` names a local path).
pub fn is_object_url(path: &str) -> bool {
    path.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && !scheme.eq_ignore_ascii_case("file")
            && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// An object, a key pattern or a key prefix in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    /// Lower case (`s3`, `gs`, …).
    scheme: String,
    bucket: String,
    /// Without a leading `/`; empty for the whole bucket.
    key: String,
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.scheme, self.bucket, self.key)
    }
}

impl ObjectUrl {
    /// Parse `scheme://bucket/key`. A segment that is empty, `.` or `..`
    /// is refused (a URL parser would resolve or drop it, naming another
    /// object), as are a query string and a fragment.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidArgument {
            message: format!("bad object-store path \"{}\": {why}", printable(text)),
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if !SCHEMES.contains(&scheme.as_str()) {
            return Err(Error::unsupported(format!(
                "object-store scheme {}:// (s3, gs or az)",
                printable(&scheme)
            )));
        }
        // `?` is a pattern character here (as in a local glob), never a query.
        if rest.contains('#') {
            return Err(bad("a fragment is not part of a path"));
        }
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("it names no bucket"));
        }
        let segments = key.strip_suffix('/').unwrap_or(key);
        if !segments.is_empty()
            && segments
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(bad("a segment of its key is empty, \".\" or \"..\""));
        }
        Ok(Self {
            scheme,
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// This URL, if it names one object to write (no pattern, no folder).
    pub fn one_object(self, path: &str) -> Result<Self> {
        match self.is_glob() || self.key.is_empty() || self.key.ends_with('/') {
            true => Err(Error::InvalidArgument {
                message: format!(
                    "cannot write \"{}\": it names no one object",
                    printable(path)
                ),
            }),
            false => Ok(self),
        }
    }

    /// Whether the key is a pattern.
    pub fn is_glob(&self) -> bool {
        self.key.contains(['*', '?', '['])
    }

    /// `scheme://bucket`: what the bucket's store is registered under.
    pub fn root(&self) -> String {
        format!("{}://{}", self.scheme, self.bucket)
    }

    /// The key as a store path, exactly as written.
    pub fn path(&self) -> Result<Path> {
        Self::key_path(&self.key)
    }

    /// The URL of object `location` in this bucket, for a listing table:
    /// each segment percent-encoded whole (a `%` too), so the URL decodes
    /// back to exactly that key and never to another (`%2E%2E` stays a
    /// name, never becomes `..`).
    pub fn object_url(&self, location: &Path) -> Result<url::Url> {
        let bad = |detail: String| Error::InvalidArgument {
            message: format!(
                "bad object-store path \"{}\": {detail}",
                printable(&self.to_string())
            ),
        };
        let mut url =
            url::Url::parse(&format!("{}/", self.root())).map_err(|e| bad(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| bad("it has no path".into()))?
            .pop_if_empty()
            .extend(location.as_ref().split('/'));
        Ok(url)
    }

    /// The key as a store path, taken as written (never re-encoded).
    fn key_path(key: &str) -> Result<Path> {
        Path::parse(key).map_err(|e| Error::InvalidArgument {
            message: format!("bad object key \"{}\": {e}", printable(key)),
        })
    }

    /// Object `location` of this bucket as a URL, for messages.
    pub fn name_of(&self, location: &Path) -> Result<String> {
        Ok(printable(self.object_url(location)?.as_str()))
    }

    /// The key's folders before its first pattern character (the whole
    /// key when it has none).
    fn literal_prefix(&self) -> &str {
        match self.key.find(['*', '?', '[']) {
            None => &self.key,
            Some(at) => &self.key[..self.key[..at].rfind('/').map_or(0, |slash| slash + 1)],
        }
    }

    /// Whether everything `other` may name lies under this prefix (same
    /// bucket, whole segments; the prefix is a folder, not an object).
    pub fn covers(&self, other: &ObjectUrl) -> bool {
        let mine = self.key.trim_end_matches('/');
        self.scheme == other.scheme
            && self.bucket == other.bucket
            && (mine.is_empty() || other.literal_prefix().starts_with(&format!("{mine}/")))
    }

    /// The bucket's store, configured from the environment.
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>> {
        object_store_at(&self.scheme, &self.root(), &StorageOptions::new())
    }

    /// The objects this names, sorted by key: the object itself, or those
    /// matching the pattern. 58P01 when there are none.
    pub async fn matching(&self, store: &dyn ObjectStore) -> Result<Vec<ObjectMeta>> {
        let missing = || Error::Missing {
            what: format!("object \"{}\"", printable(&self.to_string())),
        };
        if !self.is_glob() {
            if self.key.is_empty() || self.key.ends_with('/') {
                return Err(Error::InvalidArgument {
                    message: format!(
                        "\"{}\" names a folder: name its objects with a pattern such as '{}/*.parquet'",
                        printable(&self.to_string()),
                        printable(self.to_string().trim_end_matches('/'))
                    ),
                });
            }
            return match store.head(&self.path()?).await {
                Ok(meta) => Ok(vec![meta]),
                Err(object_store::Error::NotFound { .. }) => Err(missing()),
                Err(e) => Err(e.into()),
            };
        }
        let pattern = glob::Pattern::new(&self.key).map_err(|e| Error::InvalidArgument {
            message: format!("bad pattern \"{}\": {e}", printable(&self.to_string())),
        })?;
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let literal = self.literal_prefix();
        let prefix = Self::key_path(literal)?;
        // A pattern within one folder lists that folder only (`*` never
        // crosses a `/`); one with folders below lists recursively.
        let mut listed = match self.key[literal.len()..].contains('/') {
            true => store.list(Some(&prefix)),
            false => {
                let objects = store.list_with_delimiter(Some(&prefix)).await?.objects;
                futures::stream::iter(objects.into_iter().map(Ok)).boxed()
            }
        };
        let (mut found, mut seen) = (Vec::new(), 0usize);
        while let Some(meta) = listed.next().await {
            let meta = meta?;
            seen += 1;
            if seen > OBJECTS_LISTED_MAX {
                return Err(Error::LimitExceeded {
                    what: format!("the listing of \"{}\"", printable(&self.to_string())),
                    size: seen as u64,
                    limit: OBJECTS_LISTED_MAX as u64,
                    unit: "objects",
                    limit_name: "OBJECTS_LISTED_MAX",
                });
            }
            if pattern.matches_with(meta.location.as_ref(), options) {
                found.push(meta);
            }
        }
        if found.is_empty() {
            return Err(missing());
        }
        found.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(found)
    }
}

/// Object `meta` copied into an anonymous local temporary file, read from
/// its start.
pub async fn spool(store: &dyn ObjectStore, meta: &ObjectMeta) -> Result<File> {
    let mut out = tokio::fs::File::from_std(tempfile::tempfile()?);
    let mut body = store.get(&meta.location).await?.into_stream();
    while let Some(chunk) = body.next().await {
        out.write_all(&chunk?).await?;
    }
    out.flush().await?;
    let mut file = out.into_std().await;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// Upload the whole of `file` as object `url`: it appears whole or not at all.
pub async fn upload(store: Arc<dyn ObjectStore>, url: &ObjectUrl, file: File) -> Result<()> {
    let mut from = tokio::fs::File::from_std(file);
    from.seek(SeekFrom::Start(0)).await?;
    let mut to =
        object_store::buffered::BufWriter::with_capacity(store, url.path()?, UPLOAD_PART_BYTES);
    let failed = |e: std::io::Error| Error::StorageIo {
        detail: format!("uploading \"{}\": {e}", printable(&url.to_string())),
    };
    if let Err(e) = tokio::io::copy(&mut from, &mut to).await {
        // Nothing was completed: abandon the parts uploaded so far (best
        // effort: the writer panics if a failed write already ended it).
        let _ = std::panic::AssertUnwindSafe(to.abort())
            .catch_unwind()
            .await;
        return Err(failed(e));
    }
    // Completing the upload (or its one PUT) makes the object appear; if
    // that fails there is no object, and the writer is shut down either
    // way (it must not be aborted after).
    to.shutdown().await.map_err(failed)
}
