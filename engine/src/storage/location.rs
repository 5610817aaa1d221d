//! Where a database lives: a local folder or `memory://`.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

use crate::error::{Error, Result};

/// A parsed database location.
#[derive(Debug, Clone)]
pub struct Location {
    /// What the user gave, for messages.
    pub display: String,
    /// The local folder, when the database is on local disk (the log lives there).
    pub local_root: Option<PathBuf>,
    /// All data and checkpoint I/O goes through this store.
    pub store: Arc<dyn ObjectStore>,
}

impl Location {
    /// Parse `memory://`, `file:///path` or a plain path.
    pub fn parse(location: &str) -> Result<Self> {
        if location == "memory://" || location == "memory:" {
            return Ok(Self {
                display: location.to_string(),
                local_root: None,
                store: Arc::new(InMemory::new()),
            });
        }
        if let Some((scheme, _)) = location.split_once("://")
            && scheme != "file"
        {
            return Err(Error::unsupported(format!("storage scheme {scheme}://")));
        }
        let path = PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
        std::fs::create_dir_all(&path)?;
        let root = path.canonicalize()?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self {
            display: root.display().to_string(),
            local_root: Some(root),
            store: Arc::new(store),
        })
    }
}
