//! Where a database lives: a local folder or `memory://`.
//!
//! On a local folder every file change goes through [`DurableFs`] (fsync
//! discipline); reads of data files and checkpoints go through the object
//! store. Either way reads of data files pass the [`VerifyingStore`].

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

use crate::error::{Error, Result};
use crate::storage::durable::{self, DurableFs};
use crate::storage::faults::{FaultPlan, FaultyStore};
use crate::storage::verify::VerifyingStore;

/// A parsed database location.
#[derive(Debug, Clone)]
pub struct Location {
    /// What the user gave, for messages.
    pub display: String,
    /// The local folder, when the database is on local disk (the log lives there).
    pub local_root: Option<PathBuf>,
    /// All reads of data files and checkpoints go through this store (the
    /// verifier, over the local folder or memory).
    pub store: Arc<dyn ObjectStore>,
    /// The same store, to register what each data file must be.
    pub verifier: Arc<VerifyingStore>,
    /// Every change to a local file goes through this.
    pub fs: Arc<dyn DurableFs>,
}

impl Location {
    /// Parse `memory://`, `file:///path` or a plain path.
    pub fn parse(location: &str) -> Result<Self> {
        Self::parse_with(location, durable::local())
    }

    /// Parse a location whose local file changes go through `fs` (a
    /// simulated disk in power-loss tests).
    pub fn parse_with(location: &str, fs: Arc<dyn DurableFs>) -> Result<Self> {
        if location == "memory://" || location == "memory:" {
            return Ok(Self::over(
                location.to_string(),
                None,
                Arc::new(InMemory::new()),
                fs,
            ));
        }
        if let Some((scheme, _)) = location.split_once("://")
            && scheme != "file"
        {
            return Err(Error::unsupported(format!("storage scheme {scheme}://")));
        }
        let path = PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
        fs.create_dir_all(&path)?;
        let root = path.canonicalize()?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self::over(
            root.display().to_string(),
            Some(root),
            Arc::new(store),
            fs,
        ))
    }

    /// The same location with its object store wrapped in a [`FaultyStore`]
    /// (fault-injection tests); returns the wrapper to watch and switch it.
    pub fn with_faults(self, plan: FaultPlan) -> (Self, Arc<FaultyStore>) {
        let faulty = Arc::new(FaultyStore::new(self.verifier.inner(), plan));
        let location = Self::over(self.display, self.local_root, faulty.clone(), self.fs);
        (location, faulty)
    }

    fn over(
        display: String,
        local_root: Option<PathBuf>,
        inner: Arc<dyn ObjectStore>,
        fs: Arc<dyn DurableFs>,
    ) -> Self {
        let verifier = Arc::new(VerifyingStore::new(inner));
        Self {
            display,
            local_root,
            store: verifier.clone(),
            verifier,
            fs,
        }
    }
}
