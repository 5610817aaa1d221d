//! Where a database lives: a local folder, `memory://`, or a bucket on
//! object storage (`s3://bucket/prefix`, `gs://…`, `az://…`).
//!
//! On a local folder every file change goes through [`DurableFs`] (fsync
//! discipline) and the commit log is a series of segment files; reads of
//! data files and checkpoints go through the object store. On object
//! storage every change is one PUT (durable once it completed), the commit
//! log is a series of objects created with conditional PUTs
//! ([`crate::log::objects`]) and a writer lease fences a second writer
//! ([`crate::storage::lease`]). `memory://` keeps nothing and has no log.
//! Either way reads of data files pass the [`VerifyingStore`].
//!
//! Object storage is configured the way its own tools are: endpoint,
//! region and credentials from the standard environment variables
//! (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ALLOW_HTTP` for a plain-HTTP endpoint;
//! `GOOGLE_SERVICE_ACCOUNT`, …; `AZURE_STORAGE_ACCOUNT_NAME`, …).

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{Error, Result};
use crate::storage::cache::CachedStore;
use crate::storage::durable::{self, DurableFs};
use crate::storage::faults::{FaultPlan, FaultyStore};
use crate::storage::verify::VerifyingStore;

/// Settings for an object store, as `object_store` names them
/// (`aws_endpoint`, `aws_region`, `aws_access_key_id`, `aws_allow_http`,
/// `google_service_account`, `azure_storage_account_name`, …), applied
/// over the environment's: the server's TOML config `[storage]` table.
pub type StorageOptions = std::collections::BTreeMap<String, String>;

/// What kind of place a database lives in, which decides where its commit
/// log goes and how changes are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `memory://`: nothing survives the process; no log.
    Memory,
    /// A local folder: log segments fsynced through [`DurableFs`].
    Local,
    /// Object storage: log objects created with conditional PUTs, a writer lease.
    Object,
}

/// A parsed database location.
#[derive(Debug, Clone)]
pub struct Location {
    /// What the user gave, for messages (credentials never appear in it).
    pub display: String,
    pub kind: StoreKind,
    /// The local folder, when the database is on local disk (the log lives there).
    pub local_root: Option<PathBuf>,
    /// All reads of data files and checkpoints go through this store (the
    /// verifier, over the local folder, memory or the bucket).
    pub store: Arc<dyn ObjectStore>,
    /// The same store, to register what each data file must be.
    pub verifier: Arc<VerifyingStore>,
    /// Every change to a local file goes through this.
    pub fs: Arc<dyn DurableFs>,
    /// The local disk cache of data files, on object storage (see [`Location::with_cache`]).
    pub cache: Option<Arc<CachedStore>>,
}

impl Location {
    /// Parse `memory://`, `file:///path`, a plain path, or an object-store URL.
    pub fn parse(location: &str) -> Result<Self> {
        Self::parse_with(location, durable::local())
    }

    /// Parse a location whose local file changes go through `fs` (a
    /// simulated disk in power-loss tests).
    pub fn parse_with(location: &str, fs: Arc<dyn DurableFs>) -> Result<Self> {
        Self::parse_configured(location, fs, &StorageOptions::new())
    }

    /// Parse a location, configuring an object store with `options` on
    /// top of what the environment sets (see [`StorageOptions`]).
    pub fn parse_configured(
        location: &str,
        fs: Arc<dyn DurableFs>,
        options: &StorageOptions,
    ) -> Result<Self> {
        let is_object = location
            .split_once("://")
            .is_some_and(|(scheme, _)| !scheme.eq_ignore_ascii_case("file"));
        if !is_object && !options.is_empty() {
            return Err(Error::InvalidLocation {
                location: location.to_string(),
                detail: "storage options apply to object storage only".into(),
            });
        }
        if location == "memory://" || location == "memory:" {
            return Ok(Self::over(
                location.to_string(),
                StoreKind::Memory,
                None,
                Arc::new(InMemory::new()),
                fs,
            ));
        }
        if let Some((scheme, _)) = location.split_once("://")
            && !scheme.eq_ignore_ascii_case("file")
        {
            let store = object_store_at(&scheme.to_ascii_lowercase(), location, options)?;
            return Ok(Self::over(
                location.to_string(),
                StoreKind::Object,
                None,
                store,
                fs,
            ));
        }
        let path = PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
        fs.create_dir_all(&path)?;
        let root = path.canonicalize()?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self::over(
            root.display().to_string(),
            StoreKind::Local,
            Some(root),
            Arc::new(store),
            fs,
        ))
    }

    /// A database on object storage held by `store` (tests use an
    /// in-memory store, which keeps conditional PUTs as S3 does).
    pub fn object_store(display: &str, store: Arc<dyn ObjectStore>) -> Self {
        Self::over(
            display.to_string(),
            StoreKind::Object,
            None,
            store,
            durable::local(),
        )
    }

    /// The same location with its object store wrapped in a [`FaultyStore`]
    /// (fault-injection tests); returns the wrapper to watch and switch it.
    pub fn with_faults(self, plan: FaultPlan) -> (Self, Arc<FaultyStore>) {
        let faulty = Arc::new(FaultyStore::new(self.verifier.inner(), plan));
        let location = Self::over(
            self.display,
            self.kind,
            self.local_root,
            faulty.clone(),
            self.fs,
        );
        (location, faulty)
    }

    /// The same location with a local disk cache of up to `capacity` bytes
    /// of data files under its verifier (object storage only; a no-op
    /// elsewhere or when `capacity` is 0).
    pub fn with_cache(self, capacity: u64) -> Result<Self> {
        if self.kind != StoreKind::Object || capacity == 0 {
            return Ok(self);
        }
        let cache = Arc::new(CachedStore::new(self.verifier.inner(), capacity)?);
        let mut location = Self::over(
            self.display,
            self.kind,
            self.local_root,
            cache.clone(),
            self.fs,
        );
        location.cache = Some(cache);
        Ok(location)
    }

    /// Store `bytes` at `path` (relative, `/`-separated) durably: on local
    /// disk written atomically (temp file, fsync, rename, fsync the folder,
    /// each missing folder level named durably in its parent); elsewhere
    /// one PUT, durable once it returns.
    pub async fn put_file(&self, path: &str, bytes: bytes::Bytes) -> Result<()> {
        let Some(root) = &self.local_root else {
            let key = object_store::path::Path::from(path);
            self.store.put(&key, bytes.into()).await?;
            return Ok(());
        };
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (root.join(dir), name.to_string()),
            None => (root.clone(), path.to_string()),
        };
        let fs = self.fs.clone();
        let written = tokio::task::spawn_blocking(move || {
            fs.create_dir_all(&dir)?;
            fs.write_file_atomic(&dir, &name, &bytes)
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
        // An I/O error says what went wrong, not where: name the file.
        written.map_err(|e| {
            let file = root.join(path);
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", file.display()),
            ))
        })
    }

    /// Make the names in folder `path` (relative) durable, on local disk
    /// (object storage needs nothing: a completed request is durable).
    pub async fn sync_folder(&self, path: &str) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let (fs, dir) = (self.fs.clone(), root.join(path));
        tokio::task::spawn_blocking(move || fs.sync_dir(&dir))
            .await
            .map_err(|e| Error::internal(e.to_string()))??;
        Ok(())
    }

    /// Delete the file at `path` (relative, `/`-separated); a file already
    /// gone is fine. Its expected checksum is forgotten.
    pub async fn delete_file(&self, path: &str) -> Result<()> {
        let key = object_store::path::Path::from(path);
        match &self.local_root {
            Some(root) => match self.fs.remove_file(&root.join(path)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            },
            None => match self.store.delete(&key).await {
                Err(e) if !matches!(e, object_store::Error::NotFound { .. }) => {
                    return Err(crate::storage::verify::store_error(e));
                }
                _ => {}
            },
        }
        self.verifier.forget(&key);
        Ok(())
    }

    /// Create `path` (at the top of the location) holding `bytes`, durably,
    /// only if nothing is there: false if something already is. On object
    /// storage a conditional PUT (`If-None-Match: *`); on local disk an
    /// exclusive create, then fsync of the file and the folder.
    pub async fn create_file_exclusive(&self, path: &str, bytes: bytes::Bytes) -> Result<bool> {
        let key = object_store::path::Path::from(path);
        let options = object_store::PutOptions::from(object_store::PutMode::Create);
        match self.store.put_opts(&key, bytes.into(), options).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Ok(false),
            Err(e) => return Err(crate::storage::verify::store_error(e)),
        }
        if let Some(root) = &self.local_root {
            let (fs, root, file) = (self.fs.clone(), root.clone(), root.join(path));
            tokio::task::spawn_blocking(move || {
                fs.sync_file(&file)?;
                fs.sync_dir(&root)
            })
            .await
            .map_err(|e| Error::internal(e.to_string()))??;
        }
        Ok(true)
    }

    fn over(
        display: String,
        kind: StoreKind,
        local_root: Option<PathBuf>,
        inner: Arc<dyn ObjectStore>,
        fs: Arc<dyn DurableFs>,
    ) -> Self {
        let verifier = Arc::new(VerifyingStore::new(inner));
        Self {
            display,
            kind,
            local_root,
            store: verifier.clone(),
            verifier,
            fs,
            cache: None,
        }
    }
}

/// The store for an object-store URL, configured from the environment,
/// rooted at the URL's path (`s3://bucket/a/b` keeps everything under `a/b/`).
pub(crate) fn object_store_at(
    scheme: &str,
    url: &str,
    options: &StorageOptions,
) -> Result<Arc<dyn ObjectStore>> {
    let invalid = |detail: String| Error::InvalidLocation {
        location: url.to_string(),
        detail,
    };
    let prefix = url_prefix(url).map_err(invalid)?;
    let built = |e: object_store::Error| invalid(e.to_string());
    let unknown = |key: &str| invalid(format!("unknown storage option {key:?} for {scheme}://"));
    let retry = crate::limits::object_store_retry();
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env().with_url(url).with_retry(retry);
            for (key, value) in options {
                let key_parsed = key.to_ascii_lowercase().parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(key_parsed, value);
            }
            Arc::new(builder.build().map_err(built)?)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_retry(retry);
            for (key, value) in options {
                let key_parsed = key.to_ascii_lowercase().parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(key_parsed, value);
            }
            Arc::new(builder.build().map_err(built)?)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let mut builder = MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry);
            for (key, value) in options {
                let key_parsed = key.to_ascii_lowercase().parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(key_parsed, value);
            }
            Arc::new(builder.build().map_err(built)?)
        }
        other => return Err(Error::unsupported(format!("storage scheme {other}://"))),
    };
    Ok(match prefix {
        Some(prefix) => Arc::new(PrefixStore::new(store, prefix)),
        None => store,
    })
}

/// The key prefix a location URL names, exactly as written after the
/// bucket: no query or fragment, no empty, `.` or `..` segment (a URL
/// parser would resolve or drop them, silently naming another database).
fn url_prefix(url: &str) -> std::result::Result<Option<object_store::path::Path>, String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    if rest.contains(['?', '#']) {
        return Err("a query string or fragment is not part of a database location".into());
    }
    let path = rest.split_once('/').map_or("", |(_, path)| path);
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Ok(None);
    }
    if path
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(format!(
            "the prefix {path:?} has an empty, `.` or `..` segment"
        ));
    }
    object_store::path::Path::parse(path)
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_options_configure_object_stores_and_nothing_else() {
        let options = |pairs: &[(&str, &str)]| -> StorageOptions {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let fs = durable::local();
        let set = options(&[
            ("AWS_REGION", "eu-west-1"),
            ("aws_endpoint_url", "http://h:1"),
        ]);
        let parsed = Location::parse_configured("s3://b/p", fs.clone(), &set).unwrap();
        assert_eq!(parsed.kind, StoreKind::Object);
        let bogus = options(&[("aws_endpoint_urll", "x")]);
        let e = Location::parse_configured("s3://b/p", fs.clone(), &bogus).unwrap_err();
        assert_eq!(e.sqlstate(), "22023");
        assert!(e.to_string().contains("aws_endpoint_urll"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().display().to_string();
        let e = Location::parse_configured(&local, fs, &set).unwrap_err();
        assert_eq!(e.sqlstate(), "22023", "{e}");
    }

    #[test]
    fn a_location_names_its_prefix_exactly() {
        let prefix = |url: &str| url_prefix(url).map(|p| p.map(|p| p.to_string()));
        assert_eq!(prefix("s3://b"), Ok(None));
        assert_eq!(prefix("s3://b/"), Ok(None));
        assert_eq!(prefix("s3://b/x/y/"), Ok(Some("x/y".into())));
        assert_eq!(prefix("s3://b/ünï"), Ok(Some("ünï".into())));
        for bad in [
            "s3://b//x",
            "s3://b/p/../other",
            "s3://b/./x",
            "s3://b/x?y=1",
            "s3://b/x#f",
        ] {
            assert!(prefix(bad).is_err(), "{bad}");
        }
    }
}
