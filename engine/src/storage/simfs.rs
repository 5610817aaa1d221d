//! A simulated disk for power-loss tests: a [`DurableFs`] that works on a
//! real folder (so reads keep going straight to the disk) and keeps, beside
//! it, a model of what would survive a power cut (LazyFS semantics).
//!
//! **What is durable.** A file's bytes as of its last fsync
//! ([`DurableFs::sync_file`], [`AppendFile::sync_data`]); a folder's names
//! as of its last [`DurableFs::sync_dir`]. A new file or folder, a rename
//! and an unlink change only the folder's *live* names until that folder
//! is fsynced. The durable bytes of every file are kept in memory,
//! including files since unlinked or renamed over, because a power cut
//! can bring their names back.
//!
//! **Steps.** The simulator implements only the trait's primitives, so the
//! durable compositions it is driven through (`write_file_atomic`,
//! `create_dir_all`, `truncate`) are the engine's own. Every primitive
//! that changes something is one I/O step. [`SimFs::arm`] picks a step to
//! fail (optionally after its effect landed): with [`FaultKind::PowerCut`]
//! every later call fails too — the process is dead; with
//! [`FaultKind::IoError`] only that call fails (EIO) and the machine goes
//! on. No real fsync is issued: the real folder is the page cache, the
//! model is the platter.
//!
//! **Ending.** [`SimFs::power_cut`] rewrites the real folder to the
//! durable image: unsynced appends are dropped, files whose names never
//! became durable vanish, names whose removal never became durable come
//! back with their durable bytes. With a seed it also tears writes: a
//! random prefix of each file's unsynced bytes survives, with random
//! [`TORN_PAGE_BYTES`] pages of it read back as zeros (never written).
//! [`SimFs::crash`] kills only the process (`kill -9`): the folder keeps
//! every completed change, synced or not, and [`SimFs::restart`] starts
//! the next process on the same machine, whose unsynced changes a later
//! power cut still loses. Handles of a dead process keep failing. Both
//! endings report every file on disk that the model did not see written:
//! a change that bypassed [`DurableFs`].

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use crate::storage::durable::{AppendFile, DurableFs, create_new_private, dir_builder};

/// Granularity at which a torn write reaches the disk or not, in bytes.
pub const TORN_PAGE_BYTES: usize = 4096;
/// One in this many pages of a torn write reads back as zeros.
pub const TORN_ZERO_PAGE_ONE_IN: u64 = 4;

/// A fault armed at one I/O step: step `step` (counted from 1) fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub step: u64,
    /// The step's effect lands before the call fails (an fsync that made
    /// the data durable but could not report it).
    pub lands: bool,
    pub kind: FaultKind,
}

/// What happens at the faulty step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The power goes: this and every later call fails.
    PowerCut,
    /// This call fails (EIO) and the machine goes on: later calls work.
    IoError,
}

/// What a power cut or a crash found.
#[derive(Debug, Default)]
pub struct Stopped {
    /// The step the process died at (the last step taken, if no fault killed it).
    pub at_step: u64,
    /// Paths (relative to the simulated folder) on disk whose existence or
    /// bytes the model did not see come about: changes that bypassed [`DurableFs`].
    pub untracked: Vec<PathBuf>,
}

/// A simulated disk over a real folder, as seen by one process; see the module page.
#[derive(Debug, Clone)]
pub struct SimFs {
    shared: Arc<Shared>,
    /// The process this handle belongs to (see [`SimFs::restart`]).
    process: u64,
}

#[derive(Debug)]
struct Shared {
    /// The folder as given, and canonicalized: paths may come in either form.
    roots: [PathBuf; 2],
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The running process; handles of earlier ones are dead.
    process: u64,
    steps: u64,
    fault: Option<Fault>,
    dead_at: Option<u64>,
    /// What each step did, for messages (`trace[n - 1]` is step `n`).
    trace: Vec<String>,
    inodes: Vec<Inode>,
    /// Relative path (empty for the root) → folder.
    dirs: BTreeMap<PathBuf, Dir>,
}

#[derive(Debug, Default, Clone)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default, Clone)]
struct Dir {
    live: BTreeMap<String, Entry>,
    durable: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(usize),
    Dir,
}

impl SimFs {
    /// A simulated disk over the existing folder `root`, taking everything
    /// in it as durable (a machine that booted).
    pub fn new(root: &Path) -> io::Result<Self> {
        let canonical = root.canonicalize()?;
        let mut state = State::default();
        scan_durable(&canonical, PathBuf::new(), &mut state)?;
        Ok(Self {
            shared: Arc::new(Shared {
                roots: [root.to_path_buf(), canonical],
                state: Mutex::new(state),
            }),
            process: 0,
        })
    }

    /// The simulated folder (canonical).
    pub fn root(&self) -> &Path {
        &self.shared.roots[1]
    }

    /// This simulator as the engine's [`DurableFs`].
    pub fn as_durable(&self) -> Arc<dyn DurableFs> {
        Arc::new(self.clone())
    }

    /// Make step `fault.step` fail.
    pub fn arm(&self, fault: Fault) {
        self.shared.state.lock().fault = Some(fault);
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.shared.state.lock().steps
    }

    /// What step `n` (from 1) did, for messages.
    pub fn step_name(&self, n: u64) -> Option<String> {
        let state = self.shared.state.lock();
        let index = usize::try_from(n.checked_sub(1)?).ok()?;
        state.trace.get(index).cloned()
    }

    /// The step the process died at, once it has.
    pub fn dead_at(&self) -> Option<u64> {
        self.shared.state.lock().dead_at
    }

    /// Cut the power now (if a fault has not already) and rewrite the
    /// folder to its durable image; `torn_seed` tears unsynced writes.
    /// Every later call fails: boot again with [`SimFs::new`].
    pub fn power_cut(&self, torn_seed: Option<u64>) -> io::Result<Stopped> {
        let (state, stopped) = self.stop()?;
        let root = &self.shared.roots[1];
        let image = durable_image(&state, &mut torn_seed.map(SplitMix64));
        for entry in std::fs::read_dir(root)? {
            let path = entry?.path();
            match path.is_dir() {
                true => std::fs::remove_dir_all(&path)?,
                false => std::fs::remove_file(&path)?,
            }
        }
        for (relative, bytes) in &image {
            let path = root.join(relative);
            match bytes {
                None => dir_builder().create(&path)?,
                Some(bytes) => create_new_private(&path)?.write_all(bytes)?,
            }
        }
        Ok(stopped)
    }

    /// Kill the process now (if a fault has not already); the machine
    /// stays up and the folder keeps every completed change.
    pub fn crash(&self) -> io::Result<Stopped> {
        Ok(self.stop()?.1)
    }

    /// Start the next process on the machine after [`SimFs::crash`]: a
    /// handle that works (with no fault armed) while every handle of the
    /// dead process keeps failing. What is durable is unchanged.
    pub fn restart(&self) -> SimFs {
        let mut state = self.shared.state.lock();
        state.process += 1;
        state.fault = None;
        state.dead_at = None;
        SimFs {
            shared: self.shared.clone(),
            process: state.process,
        }
    }

    /// Stop taking calls; report where, and what bypassed the simulator.
    fn stop(&self) -> io::Result<(MutexGuard<'_, State>, Stopped)> {
        let mut state = self.shared.state.lock();
        let steps = state.steps;
        let at_step = *state.dead_at.get_or_insert(steps);
        let mut untracked = Vec::new();
        find_untracked(
            &state,
            &self.shared.roots[1],
            PathBuf::new(),
            &mut untracked,
        )?;
        Ok((state, Stopped { at_step, untracked }))
    }

    /// The path relative to the simulated folder, or an error if outside it.
    fn relative(&self, path: &Path) -> io::Result<PathBuf> {
        let relative = self
            .shared
            .roots
            .iter()
            .find_map(|root| path.strip_prefix(root).ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is outside the simulated folder", path.display()),
                )
            })?;
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a plain path", path.display()),
            ));
        }
        Ok(relative.to_path_buf())
    }

    fn real(&self, relative: &Path) -> PathBuf {
        self.shared.roots[1].join(relative)
    }

    /// The state, if this handle's process is alive.
    fn alive(&self) -> io::Result<MutexGuard<'_, State>> {
        let state = self.shared.state.lock();
        if state.process != self.process {
            return Err(io::Error::other("simulated process was killed"));
        }
        match state.dead_at {
            Some(n) => Err(power_off(n)),
            None => Ok(state),
        }
    }

    /// Take one step: fail if the process is dead or the armed fault
    /// strikes, else `apply` it.
    fn step<T>(
        &self,
        what: impl FnOnce() -> String,
        apply: impl FnOnce(&mut State) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut state = self.alive()?;
        state.steps += 1;
        let n = state.steps;
        state.trace.push(what());
        match state.fault {
            Some(fault) if fault.step == n => {
                if fault.kind == FaultKind::PowerCut {
                    state.dead_at = Some(n);
                }
                if fault.lands {
                    let _ = apply(&mut state);
                }
                Err(match fault.kind {
                    FaultKind::PowerCut => power_off(n),
                    FaultKind::IoError => {
                        io::Error::other(format!("simulated I/O error at step {n}"))
                    }
                })
            }
            _ => apply(&mut state),
        }
    }

    /// A step that makes the live bytes of the file at `relative` durable.
    fn sync_inode(&self, relative: &Path) -> io::Result<()> {
        self.step(
            || format!("fsync {}", shown(relative)),
            |state| {
                let inode = state.lookup(relative)?;
                let file = &mut state.inodes[inode];
                file.durable = file.live.clone();
                Ok(())
            },
        )
    }
}

impl DurableFs for SimFs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let relative = self.relative(dir)?;
        let (parent, name) = split(&relative)?;
        let real = self.real(&relative);
        self.step(
            || format!("mkdir {}", shown(&relative)),
            |state| {
                state.dir_mut(&parent)?;
                dir_builder().create(&real)?;
                state.dir_mut(&parent)?.live.insert(name, Entry::Dir);
                state.dirs.insert(relative.clone(), Dir::default());
                Ok(())
            },
        )
    }

    fn create_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let relative = self.relative(path)?;
        let (parent, name) = split(&relative)?;
        let real = self.real(&relative);
        self.step(
            || format!("create {} ({} bytes)", shown(&relative), bytes.len()),
            |state| {
                state.dir_mut(&parent)?;
                create_new_private(&real)?.write_all(bytes)?;
                state.inodes.push(Inode {
                    live: bytes.to_vec(),
                    durable: Vec::new(),
                });
                let inode = state.inodes.len() - 1;
                state
                    .dir_mut(&parent)?
                    .live
                    .insert(name, Entry::File(inode));
                Ok(())
            },
        )
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.sync_inode(&self.relative(path)?)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (self.relative(from)?, self.relative(to)?);
        let ((from_dir, from_name), (to_dir, to_name)) = (split(&from)?, split(&to)?);
        let (real_from, real_to) = (self.real(&from), self.real(&to));
        self.step(
            || format!("rename {} over {}", shown(&from), shown(&to)),
            |state| {
                let inode = state.lookup(&from)?;
                state.dir_mut(&to_dir)?;
                std::fs::rename(&real_from, &real_to)?;
                state.dir_mut(&from_dir)?.live.remove(&from_name);
                let entry = Entry::File(inode);
                state.dir_mut(&to_dir)?.live.insert(to_name, entry);
                Ok(())
            },
        )
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let relative = self.relative(path)?;
        let (parent, name) = split(&relative)?;
        // Removing what is not there changes nothing: no step.
        self.alive()?.lookup(&relative)?;
        let real = self.real(&relative);
        self.step(
            || format!("unlink {}", shown(&relative)),
            |state| {
                state.lookup(&relative)?;
                std::fs::remove_file(&real)?;
                state.dir_mut(&parent)?.live.remove(&name);
                Ok(())
            },
        )
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        let relative = self.relative(path)?;
        let real = self.real(&relative);
        self.step(
            || format!("truncate {} to {len} bytes", shown(&relative)),
            |state| {
                let inode = state.lookup(&relative)?;
                OpenOptions::new().write(true).open(&real)?.set_len(len)?;
                let len = usize::try_from(len).map_err(io::Error::other)?;
                state.inodes[inode].live.resize(len, 0);
                Ok(())
            },
        )
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let relative = self.relative(dir)?;
        self.step(
            || format!("fsync folder {}", shown(&relative)),
            |state| {
                let dir = state.dir_mut(&relative)?;
                dir.durable = dir.live.clone();
                Ok(())
            },
        )
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let relative = self.relative(path)?;
        let inode = self.alive()?.lookup(&relative)?;
        let file = OpenOptions::new().append(true).open(self.real(&relative))?;
        Ok(Box::new(SimAppendFile {
            fs: self.clone(),
            relative,
            inode,
            file,
        }))
    }
}

/// A file opened for appending on the simulated disk.
#[derive(Debug)]
struct SimAppendFile {
    fs: SimFs,
    relative: PathBuf,
    inode: usize,
    file: std::fs::File,
}

impl AppendFile for SimAppendFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let (relative, inode, file) = (&self.relative, self.inode, &mut self.file);
        self.fs.step(
            || format!("append {} bytes to {}", bytes.len(), shown(relative)),
            |state| {
                file.write_all(bytes)?;
                state.inodes[inode].live.extend_from_slice(bytes);
                Ok(())
            },
        )
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let inode = self.inode;
        self.fs.step(
            || format!("fsync {}", shown(&self.relative)),
            |state| {
                let file = &mut state.inodes[inode];
                file.durable = file.live.clone();
                Ok(())
            },
        )
    }
}

impl State {
    fn dir_mut(&mut self, relative: &Path) -> io::Result<&mut Dir> {
        self.dirs
            .get_mut(relative)
            .ok_or_else(|| not_found(relative))
    }

    /// The inode the live name `relative` points at.
    fn lookup(&self, relative: &Path) -> io::Result<usize> {
        let (parent, name) = split(relative)?;
        match self.dirs.get(&parent).and_then(|d| d.live.get(&name)) {
            Some(Entry::File(inode)) => Ok(*inode),
            _ => Err(not_found(relative)),
        }
    }
}

/// Record every folder and file under `root/relative` as durable.
fn scan_durable(root: &Path, relative: PathBuf, state: &mut State) -> io::Result<()> {
    let mut dir = Dir::default();
    for entry in std::fs::read_dir(root.join(&relative))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = relative.join(&name);
        if entry.file_type()?.is_dir() {
            scan_durable(root, child, state)?;
            dir.live.insert(name, Entry::Dir);
        } else {
            let bytes = std::fs::read(entry.path())?;
            state.inodes.push(Inode {
                live: bytes.clone(),
                durable: bytes,
            });
            dir.live.insert(name, Entry::File(state.inodes.len() - 1));
        }
    }
    dir.durable = dir.live.clone();
    state.dirs.insert(relative, dir);
    Ok(())
}

/// Paths under `root/relative` whose existence or bytes the live model does not explain.
fn find_untracked(
    state: &State,
    root: &Path,
    relative: PathBuf,
    out: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let live = state.dirs.get(&relative).map(|d| &d.live);
    for entry in std::fs::read_dir(root.join(&relative))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = relative.join(&name);
        match (live.and_then(|l| l.get(&name)), entry.file_type()?.is_dir()) {
            (Some(Entry::Dir), true) => find_untracked(state, root, child, out)?,
            (Some(Entry::File(inode)), false)
                if std::fs::read(entry.path())? == state.inodes[*inode].live => {}
            _ => out.push(child),
        }
    }
    Ok(())
}

/// Every durable folder (None) and file (its bytes) reachable from the
/// root through durable names, parents before children.
fn durable_image(state: &State, rng: &mut Option<SplitMix64>) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut image = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let Some(dir) = state.dirs.get(&relative) else {
            continue;
        };
        for (name, entry) in &dir.durable {
            let child = relative.join(name);
            match entry {
                Entry::Dir => {
                    image.push((child.clone(), None));
                    pending.push(child);
                }
                Entry::File(inode) => {
                    let bytes = surviving_bytes(&state.inodes[*inode], rng);
                    image.push((child, Some(bytes)));
                }
            }
        }
    }
    image
}

/// The bytes of a file after a power cut: its durable bytes, plus, when
/// tearing, a random prefix of what was appended after them with random
/// pages never written (zeros).
fn surviving_bytes(inode: &Inode, rng: &mut Option<SplitMix64>) -> Vec<u8> {
    let mut bytes = inode.durable.clone();
    let Some(rng) = rng else { return bytes };
    let Some(unsynced) = inode.live.strip_prefix(inode.durable.as_slice()) else {
        return bytes;
    };
    if unsynced.is_empty() {
        return bytes;
    }
    let keep = (rng.next() % (unsynced.len() as u64 + 1)) as usize;
    let start = bytes.len();
    bytes.extend_from_slice(&unsynced[..keep]);
    // Pages are aligned to file offsets, as the page cache writes them back.
    let mut page_start = start - start % TORN_PAGE_BYTES;
    while page_start < bytes.len() {
        let page_end = (page_start + TORN_PAGE_BYTES).min(bytes.len());
        if rng.next() % TORN_ZERO_PAGE_ONE_IN == 0 {
            bytes[page_start.max(start)..page_end].fill(0);
        }
        page_start = page_end;
    }
    bytes
}

/// A small deterministic generator, so a seed reproduces a torn image.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn power_off(step: u64) -> io::Error {
    io::Error::other(format!("simulated power cut at I/O step {step}"))
}

fn not_found(relative: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} is not in the simulated folder", shown(relative)),
    )
}

/// A relative path's folder and name.
fn split(relative: &Path) -> io::Result<(PathBuf, String)> {
    let name = relative
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| not_found(relative))?;
    let parent = relative.parent().unwrap_or(Path::new(""));
    Ok((parent.to_path_buf(), name.to_string()))
}

fn shown(relative: &Path) -> String {
    match relative.as_os_str().is_empty() {
        true => ".".to_string(),
        false => relative.display().to_string(),
    }
}

#[cfg(test)]
mod tests;
