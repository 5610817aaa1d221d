//! Durable local file I/O: the one narrow interface through which the
//! engine changes files on local disk (log segments, data files,
//! checkpoints, `sequences.json`, and the server's `users.json`).
//!
//! Every file the database relies on is made durable the way PostgreSQL
//! and SQLite do it: write a temporary file, fsync it, rename it over the
//! final name, fsync the directory ([`DurableFs::write_file_atomic`]).
//! A new folder is fsynced into its parent before anything is put in it.
//! Files are created `0600` and folders `0700` (before the umask).
//!
//! **Seam for power-loss tests.** Every *change* to a local file goes
//! through [`DurableFs`]; [`LocalFs`] is the real disk. The trait's
//! required methods are primitives (create, fsync, rename, unlink, …);
//! the durable compositions (`write_file_atomic`, `create_dir_all`,
//! `truncate`) are written once on top of them. A simulated
//! implementation records which bytes and which names were made durable
//! (an fsync of the file, an fsync of the folder that names it) and, at a
//! "power cut" after any primitive, puts the folder back to its durable
//! image (LazyFS semantics). Reads go straight to the disk, so such a simulator
//! needs no read hook ([`crate::storage::simfs`] is that simulator).
//! Object storage (`memory://`, later S3) does not use
//! this interface: a completed PUT is durable there.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// Mode of every file the engine creates (owner read/write only).
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder the engine creates.
pub const DIR_MODE: u32 = 0o700;

/// Every way the engine changes local files: a few primitives, each one
/// system call's worth of change, and the durable compositions built on
/// them once for every implementation (so a simulated disk that
/// implements the primitives tests the compositions the engine really runs).
pub trait DurableFs: Send + Sync + Debug {
    /// Create the folder `dir` (mode 0700) in an existing parent. Its name
    /// is durable once the parent is synced.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;

    /// Create the new file `path` (mode 0600; an error if it exists)
    /// holding `bytes`. Nothing of it is durable yet.
    fn create_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;

    /// fsync the file `path`: its bytes and length are durable (its name
    /// is once its folder is synced).
    fn sync_file(&self, path: &Path) -> io::Result<()>;

    /// Rename `from` over `to`. Durable once the folder is synced.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Unlink `path`. Not durable by itself: follow with [`DurableFs::sync_dir`]
    /// when the removal matters (it never does for the engine: it only
    /// removes what nothing durable relies on any more).
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Cut or extend `path` to `len` bytes. Durable after [`DurableFs::sync_file`].
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()>;

    /// fsync a folder, making the names in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Open an existing file for appending (its name is already durable).
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;

    /// Create `dir` and its missing parents, fsyncing each new entry into
    /// its parent, and make `dir`'s own name durable even if it existed:
    /// an earlier attempt (or a process that crashed) may have created it
    /// and failed before fsyncing its parent. Call it for each folder level
    /// that must be durably named, outermost first.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut missing: Vec<&Path> = Vec::new();
        let mut cursor = Some(dir);
        while let Some(path) = cursor {
            if path.as_os_str().is_empty() || path.is_dir() {
                break;
            }
            missing.push(path);
            cursor = path.parent();
        }
        let existed = missing.is_empty();
        for path in missing.into_iter().rev() {
            match self.create_dir(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
                Err(e) => return Err(e),
            }
            sync_parent(self, path)?;
        }
        if existed {
            sync_parent(self, dir)?;
        }
        Ok(())
    }

    /// Replace (or create) `dir/name` with `bytes` atomically and durably:
    /// write a temporary file (mode 0600), fsync it, rename it over
    /// `name`, fsync `dir`. After a crash the file is either the old one
    /// or the new one, never a mix or empty.
    fn write_file_atomic(&self, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        let temp = dir.join(temp_name(name));
        // A leftover from a crash may carry other permissions: start afresh.
        match self.remove_file(&temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.create_file(&temp, bytes)?;
        self.sync_file(&temp)?;
        self.rename(&temp, &dir.join(name))?;
        self.sync_dir(dir)
    }

    /// Cut `path` to `len` bytes and fsync it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.set_len(path, len)?;
        self.sync_file(path)
    }
}

/// A file opened for appending; [`AppendFile::sync_data`] makes what was appended durable.
pub trait AppendFile: Send + Debug {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
}

/// fsync the folder holding `path` (the working folder for a bare name).
fn sync_parent<F: DurableFs + ?Sized>(fs: &F, path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if parent.as_os_str().is_empty() => fs.sync_dir(Path::new(".")),
        Some(parent) => fs.sync_dir(parent),
        None => Ok(()),
    }
}

/// The real local disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalFs;

/// The real local disk as a shared [`DurableFs`].
pub fn local() -> Arc<dyn DurableFs> {
    Arc::new(LocalFs)
}

/// [`DurableFs::write_file_atomic`] on the real disk.
pub fn write_file_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    LocalFs.write_file_atomic(dir, name, bytes)
}

/// [`DurableFs::sync_dir`] on the real disk.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    LocalFs.sync_dir(dir)
}

/// The temporary name `write_file_atomic` writes `name` under first.
pub fn temp_name(name: &str) -> String {
    format!("{name}.tmp")
}

impl DurableFs for LocalFs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        dir_builder().create(dir)
    }

    fn create_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        create_new_private(path)?.write_all(bytes)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        OpenOptions::new().write(true).open(path)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        OpenOptions::new().write(true).open(path)?.set_len(len)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(())
        }
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(LocalAppendFile { file }))
    }
}

#[derive(Debug)]
struct LocalAppendFile {
    file: File,
}

impl AppendFile for LocalAppendFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Create a new file only its owner can read and write.
pub(crate) fn create_new_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options.open(path)
}

/// A folder builder that creates folders only their owner can enter.
pub(crate) fn dir_builder() -> std::fs::DirBuilder {
    #[allow(unused_mut)]
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs;
        let nested = dir.path().join("a/b");
        fs.create_dir_all(&nested).unwrap();
        fs.write_file_atomic(&nested, "f.json", b"one").unwrap();
        fs.write_file_atomic(&nested, "f.json", b"two").unwrap();
        assert_eq!(std::fs::read(nested.join("f.json")).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&nested)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.json")]);
        #[cfg(unix)]
        {
            assert_eq!(mode(&nested.join("f.json")), 0o600);
            assert_eq!(mode(&nested), 0o700);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_leftover_temp_file_does_not_lend_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join(temp_name("users.json"));
        std::fs::write(&temp, b"old").unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_file_atomic(dir.path(), "users.json", b"new").unwrap();
        assert_eq!(mode(&dir.path().join("users.json")), 0o600);
        assert!(!temp.exists());
    }

    #[test]
    fn append_then_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs;
        fs.write_file_atomic(dir.path(), "log", b"head").unwrap();
        let mut file = fs.open_append(&dir.path().join("log")).unwrap();
        file.append(b"-tail").unwrap();
        file.sync_data().unwrap();
        assert_eq!(std::fs::read(dir.path().join("log")).unwrap(), b"head-tail");
        fs.truncate(&dir.path().join("log"), 4).unwrap();
        assert_eq!(std::fs::read(dir.path().join("log")).unwrap(), b"head");
    }
}
