//! Server-side files: which ones a session may touch, and their formats.
//!
//! `COPY t FROM 'path'`, `COPY … TO 'path'` and the `read_parquet`,
//! `read_csv` and `read_json` table functions read and write files on the
//! machine the engine runs on. That is a privilege: a session may touch
//! only files under the folders of its [`FileAccess`]. The Flight SQL
//! server grants none unless started with `--file-access-dirs`; `driftdb
//! sql` grants its working folder; a library [`Session`](super::Session)
//! starts with none. Paths are checked after resolving `..` and symbolic
//! links, so neither leads outside; a path outside is 42501.
//!
//! | module | what |
//! |---|---|
//! | [`read`] | `read_parquet('glob')`, `read_csv(…)`, `read_json(…)` as relations |
//! | [`copy`] | `COPY t [(cols)] FROM 'path'` and `COPY t \| (query) TO 'path'` |
//! | [`pinned`] | checked files pinned by inode, so a file swapped after the check is never read |
//! | [`objects`] | the same on object storage: `s3://bucket/key` wherever a path is accepted |
//! | [`transfer`] | `driftdb load` and `driftdb export`: whole files with progress |

pub mod copy;
pub mod objects;
pub mod pinned;
pub mod read;
pub mod transfer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::{ObjectMeta, ObjectStore};
use objects::ObjectUrl;

use crate::error::{Error, Result, printable};

/// The folders (and object-store prefixes) whose files a session may read
/// and write.
#[derive(Debug, Clone, Default)]
pub struct FileAccess {
    /// Canonical (absolute, links resolved) folders.
    dirs: Vec<PathBuf>,
    /// Object-store prefixes (`s3://bucket/prefix`).
    prefixes: Vec<ObjectUrl>,
    /// Every object the environment's credentials reach (`driftdb sql`:
    /// they are the local user's own).
    any_object: bool,
}

impl FileAccess {
    /// No server-side file access at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Access to the files under each of `dirs` (each folder must exist;
    /// an object-store URL such as `s3://bucket/prefix` grants the objects
    /// under that prefix).
    pub fn under<P: AsRef<Path>>(dirs: impl IntoIterator<Item = P>) -> Result<Self> {
        let mut access = Self::default();
        for dir in dirs {
            let dir = dir.as_ref();
            if let Some(url) = dir.to_str().filter(|d| objects::is_object_url(d)) {
                access.prefixes.push(ObjectUrl::parse(url)?);
                continue;
            }
            match dir.canonicalize() {
                Ok(canonical) if canonical.is_dir() => access.dirs.push(canonical),
                _ => {
                    return Err(Error::Missing {
                        what: format!("folder \"{}\"", printable(&dir.display().to_string())),
                    });
                }
            }
        }
        Ok(access)
    }

    /// The same, and every object the environment's credentials reach.
    pub fn with_any_object(mut self) -> Self {
        self.any_object = true;
        self
    }

    /// The folders, canonical.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    fn denied(&self, path: &str) -> Error {
        let granted: Vec<String> = (self.dirs.iter().map(|d| d.display().to_string()))
            .chain(self.prefixes.iter().map(|p| p.to_string()))
            .collect();
        let detail = match granted.is_empty() && !self.any_object {
            true => "this session has no server-side file access (a server grants it with --file-access-dirs)".to_string(),
            false => format!(
                "it is outside the folders this session may use ({})",
                granted.join(", ")
            ),
        };
        Error::FileAccessDenied {
            path: printable(path),
            detail,
        }
    }

    fn inside(&self, canonical: &Path) -> bool {
        self.dirs.iter().any(|dir| canonical.starts_with(dir))
    }

    /// The files `pattern` names, sorted: one path, or a glob (`*`, `?`,
    /// `[…]`). Each must be a regular file inside the allowed folders.
    pub fn files_to_read(&self, pattern: &str) -> Result<Vec<PathBuf>> {
        let pattern = pattern.strip_prefix("file://").unwrap_or(pattern);
        if self.dirs.is_empty() {
            return Err(self.denied(pattern));
        }
        let missing = || Error::Missing {
            what: format!("file \"{}\"", printable(pattern)),
        };
        let is_glob = pattern.contains(['*', '?', '[']);
        let climbs = Path::new(pattern)
            .components()
            .any(|c| c == std::path::Component::ParentDir);
        if is_glob && climbs {
            return Err(Error::InvalidArgument {
                message: format!(
                    "a file pattern may not contain \"..\": \"{}\"",
                    printable(pattern)
                ),
            });
        }
        // Nothing outside is looked at, not even whether it exists.
        if !self.inside(&lexical(&literal_prefix(pattern))) {
            return Err(self.denied(pattern));
        }
        let candidates: Vec<PathBuf> = match is_glob {
            false => vec![PathBuf::from(pattern)],
            true => glob::glob(pattern)
                .map_err(|e| Error::InvalidArgument {
                    message: format!("bad file pattern \"{}\": {e}", printable(pattern)),
                })?
                .filter_map(|entry| entry.ok())
                .collect(),
        };
        let mut files = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            let canonical = match candidate.canonicalize() {
                Ok(canonical) => canonical,
                Err(_) if is_glob => continue,
                Err(_) => return Err(missing()),
            };
            // A match that leads outside is no match (nothing is told of it).
            if !self.inside(&canonical) && is_glob {
                continue;
            }
            if !self.inside(&canonical) {
                return Err(self.denied(pattern));
            }
            if canonical.is_dir() && !is_glob {
                return Err(Error::InvalidArgument {
                    message: format!(
                        "\"{}\" is a folder: name its files with a pattern such as '{}/*.parquet'",
                        printable(pattern),
                        printable(pattern.trim_end_matches('/'))
                    ),
                });
            }
            if canonical.is_file() {
                files.push(canonical);
            }
        }
        if files.is_empty() {
            return Err(missing());
        }
        files.sort();
        files.dedup();
        for file in &files {
            match pinned::pin(file) {
                Ok(true) => {}
                Ok(false) => return Err(self.denied(pattern)),
                Err(_) => return Err(missing()),
            }
        }
        Ok(files)
    }

    /// The objects `pattern` (`s3://bucket/key`, a key pattern allowed) may
    /// name, if this session may read them.
    pub fn objects_to_read(&self, pattern: &str) -> Result<ObjectUrl> {
        let url = ObjectUrl::parse(pattern)?;
        match self.any_object || self.prefixes.iter().any(|p| p.covers(&url)) {
            true => Ok(url),
            false => Err(self.denied(pattern)),
        }
    }

    /// Object `path`, if this session may write it.
    pub fn object_to_write(&self, path: &str) -> Result<ObjectUrl> {
        self.objects_to_read(path)?.one_object(path)
    }

    /// Where a file written to `path` goes: its folder must exist and be
    /// inside the allowed folders; an existing file there is replaced
    /// (never followed through a symbolic link).
    pub fn file_to_write(&self, path: &str) -> Result<PathBuf> {
        let path = path.strip_prefix("file://").unwrap_or(path);
        if self.dirs.is_empty() {
            return Err(self.denied(path));
        }
        if !self.inside(&lexical(Path::new(path))) {
            return Err(self.denied(path));
        }
        let given = Path::new(path);
        let bad = |message: &str| Error::InvalidArgument {
            message: format!("cannot write \"{}\": {message}", printable(path)),
        };
        let name = match given.file_name() {
            Some(name) if !path.ends_with('/') => name.to_owned(),
            _ => return Err(bad("it names no file")),
        };
        let parent = match given.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let folder = parent.canonicalize().map_err(|_| Error::Missing {
            what: format!("folder \"{}\"", printable(&parent.display().to_string())),
        })?;
        if !self.inside(&folder) {
            return Err(self.denied(path));
        }
        let target = folder.join(name);
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.file_type().is_symlink() => Err(self.denied(path)),
            Ok(meta) if meta.is_dir() => Err(bad("it is a folder")),
            _ => Ok(target),
        }
    }
}

/// One file a `COPY FROM` or a load reads.
pub(crate) enum SourceFile {
    /// A local file checked against a [`FileAccess`] and pinned.
    Pinned(PathBuf),
    /// A local file of the user running the command line.
    Local(PathBuf),
    Object(Arc<dyn ObjectStore>, ObjectUrl, ObjectMeta),
}

impl SourceFile {
    /// The files `path` (a path, glob, object URL or key pattern) names,
    /// each allowed by `access`.
    pub(crate) async fn checked(access: &FileAccess, path: &str) -> Result<Vec<Self>> {
        match objects::is_object_url(path) {
            true => Self::objects(access.objects_to_read(path)?).await,
            false => Ok(access
                .files_to_read(path)?
                .into_iter()
                .map(Self::Pinned)
                .collect()),
        }
    }

    /// The files `names` name, in order, unchecked: the command line's own.
    pub(crate) async fn unchecked(names: &[String]) -> Result<Vec<Self>> {
        let mut sources = Vec::with_capacity(names.len());
        for name in names {
            match objects::is_object_url(name) {
                true => sources.extend(Self::objects(ObjectUrl::parse(name)?).await?),
                false => sources.push(Self::Local(PathBuf::from(name))),
            }
        }
        Ok(sources)
    }

    async fn objects(url: ObjectUrl) -> Result<Vec<Self>> {
        let store = url.store()?;
        let found = url.matching(store.as_ref()).await?;
        Ok(found
            .into_iter()
            .map(|meta| Self::Object(store.clone(), url.clone(), meta))
            .collect())
    }

    /// Its name for messages, and the file opened (an object through a
    /// local temporary copy).
    pub(crate) async fn open(&self) -> Result<(String, File)> {
        let name_of = |path: &Path| printable(&path.display().to_string());
        match self {
            Self::Pinned(path) => {
                let opened = pinned::open_pinned(path).map_err(|e| Error::BadFileData {
                    file: name_of(path),
                    detail: e.to_string(),
                })?;
                Ok((name_of(path), opened))
            }
            Self::Local(path) if path.is_file() => Ok((name_of(path), File::open(path)?)),
            Self::Local(path) => Err(Error::Missing {
                what: format!("file \"{}\"", name_of(path)),
            }),
            Self::Object(store, url, meta) => {
                let opened = objects::spool(store.as_ref(), meta).await?;
                Ok((url.name_of(&meta.location)?, opened))
            }
        }
    }
}

/// `path` made absolute (against the working folder) with `.` and `..`
/// resolved by name alone, touching nothing on disk.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = match path.is_absolute() {
        true => path.to_path_buf(),
        false => std::env::current_dir().unwrap_or_default().join(path),
    };
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The folders of a glob before its first pattern character (the whole
/// path when it has none).
fn literal_prefix(pattern: &str) -> PathBuf {
    let mut prefix = PathBuf::new();
    for component in Path::new(pattern).components() {
        if component
            .as_os_str()
            .to_string_lossy()
            .contains(['*', '?', '['])
        {
            break;
        }
        prefix.push(component);
    }
    prefix
}

/// A file format DriftDB reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    Csv,
    Parquet,
    /// Newline-delimited JSON: one object per line.
    Json,
}

impl FileFormat {
    /// The format called `name` (`csv`, `parquet`, `json`).
    pub fn named(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "parquet" => Ok(Self::Parquet),
            "json" | "ndjson" | "jsonl" => Ok(Self::Json),
            "text" | "binary" => Err(Error::unsupported(format!(
                "COPY format {name}: use FORMAT csv, parquet or json"
            ))),
            other => Err(Error::InvalidArgument {
                message: format!(
                    "unknown file format \"{}\" (csv, parquet or json)",
                    printable(other)
                ),
            }),
        }
    }

    /// The format a path's extension names, if any.
    pub fn of_path(path: &str) -> Option<Self> {
        let extension = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" | "tsv" => Some(Self::Csv),
            "parquet" | "pq" => Some(Self::Parquet),
            "json" | "jsonl" | "ndjson" => Some(Self::Json),
            _ => None,
        }
    }

    /// The given format, else the path's; 22023 when neither says.
    pub fn resolve(given: Option<Self>, path: &str) -> Result<Self> {
        given
            .or_else(|| Self::of_path(path))
            .ok_or_else(|| Error::InvalidArgument {
                message: format!(
                    "cannot tell the format of \"{}\": name it (FORMAT csv, parquet or json)",
                    printable(path)
                ),
            })
    }
}

/// How CSV is read and written (PostgreSQL's `COPY … CSV` options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// The first line names the columns (skipped on read, written on write).
    pub header: bool,
    pub delimiter: u8,
    pub quote: u8,
    /// The escape byte inside quotes; None doubles the quote (the default).
    pub escape: Option<u8>,
    /// The text that stands for NULL (unquoted); by default the empty string.
    pub null: String,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            header: false,
            delimiter: b',',
            quote: b'"',
            escape: None,
            null: String::new(),
        }
    }
}

impl CsvOptions {
    /// What matches the NULL text exactly (None: the empty field, arrow's default).
    pub fn null_regex(&self) -> Option<regex::Regex> {
        match self.null.is_empty() {
            true => None,
            // An escaped literal always compiles.
            false => regex::Regex::new(&format!("^{}$", regex::escape(&self.null))).ok(),
        }
    }
}

/// One byte of a CSV option (a delimiter, quote or escape is one ASCII character).
pub(crate) fn single_byte(option: &str, c: char) -> Result<u8> {
    match u8::try_from(c) {
        Ok(b) if c.is_ascii() && b != b'\n' && b != b'\r' => Ok(b),
        _ => Err(Error::InvalidArgument {
            message: format!("{option} must be a single one-byte character other than a newline"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(result: Result<impl std::fmt::Debug>) -> &'static str {
        result.expect_err("refused").sqlstate()
    }

    #[test]
    fn access_stays_inside_the_folders_granted() {
        let granted = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let (inside_file, secret) = (granted.path().join("a.csv"), outside.path().join("s.csv"));
        std::fs::write(&inside_file, "1\n").unwrap();
        std::fs::write(&secret, "2\n").unwrap();
        std::os::unix::fs::symlink(&secret, granted.path().join("link.csv")).unwrap();
        let access = FileAccess::under([granted.path()]).unwrap();
        let path = |p: &Path| p.display().to_string();

        assert_eq!(access.files_to_read(&path(&inside_file)).unwrap().len(), 1);
        assert_eq!(state(access.files_to_read(&path(&secret))), "42501");
        let outside_name = outside.path().file_name().unwrap().to_string_lossy();
        let escape = format!("{}/../{outside_name}/s.csv", path(granted.path()));
        assert_eq!(state(access.files_to_read(&escape)), "42501");
        let link = granted.path().join("link.csv");
        assert_eq!(state(access.files_to_read(&path(&link))), "42501");
        let glob = format!("{}/*.csv", path(granted.path()));
        let only_inside = vec![inside_file.canonicalize().unwrap()];
        assert_eq!(
            access.files_to_read(&glob).unwrap(),
            only_inside,
            "a link out is no match"
        );
        let climbing = format!("{}/*/../x.csv", path(granted.path()));
        assert_eq!(state(access.files_to_read(&climbing)), "22023");
        let missing = granted.path().join("none.csv");
        assert_eq!(state(access.files_to_read(&path(&missing))), "58P01");
        assert_eq!(state(access.files_to_read(&path(granted.path()))), "22023");

        assert!(
            access
                .file_to_write(&path(&granted.path().join("out.csv")))
                .is_ok()
        );
        assert_eq!(
            state(access.file_to_write(&path(&link))),
            "42501",
            "never through a link"
        );
        assert_eq!(
            state(access.file_to_write(&path(&outside.path().join("o.csv")))),
            "42501"
        );
        std::fs::create_dir(granted.path().join("sub")).unwrap();
        assert_eq!(
            state(access.file_to_write(&path(&granted.path().join("sub")))),
            "22023"
        );

        let none = FileAccess::none();
        assert_eq!(state(none.files_to_read(&path(&inside_file))), "42501");
        assert_eq!(state(none.file_to_write(&path(&inside_file))), "42501");
        assert_eq!(
            FileAccess::under([granted.path().join("nope")])
                .unwrap_err()
                .sqlstate(),
            "58P01"
        );
    }
}
