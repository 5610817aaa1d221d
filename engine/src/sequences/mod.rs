//! Sequence positions: which value each sequence hands out next.
//!
//! A sequence's *definition* is catalog (created and dropped by commits);
//! its *position* is not transactional, as in PostgreSQL: a value handed
//! out is gone even if the transaction that took it rolls back. Positions
//! are made durable ahead of use: before handing out a value past the last
//! reservation, the next [`RESERVE_VALUES`] values are reserved by writing
//! `sequences.json` (write, fsync, rename, fsync the folder; a checksummed
//! envelope, magic `DRIFTSEQ`). After a crash every sequence resumes after
//! its last reservation, so no value is ever handed out twice; the price
//! is a gap of at most one reservation.
//!
//! Reservations are kept by sequence id. A sequence created in a
//! transaction that rolled back (or never became durable) may have reserved
//! values under an id the catalog never committed, and ids not in the
//! catalog are reused after a restart: opening therefore forgets every
//! reservation whose id the catalog does not hold, so a later sequence
//! with that id starts at its own START.
//!
//! - [`functions`]: `nextval`, `currval`, `setval`, `lastval`.

pub mod functions;

pub use functions::sequences_named_by;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, SequenceDef, SqlType};
use crate::db::gate::WriteGate;
use crate::error::{Error, Result};
use crate::storage::durable::DurableFs;
use crate::storage::envelope::{self, FileKind};
use crate::storage::location::{Location, StoreKind};
use object_store::{ObjectStoreExt, PutMode, PutOptions, UpdateVersion};

/// Values reserved (made durable) at a time; a crash skips at most this many.
pub const RESERVE_VALUES: u64 = 1024;
/// The file holding every sequence's reservation.
pub const POSITIONS_FILE: &str = "sequences.json";
/// The envelope of `sequences.json`, at the format version this build writes.
pub const POSITIONS_KIND: FileKind = FileKind {
    magic: *b"DRIFTSEQ",
    version: 1,
};

/// The position of one sequence.
#[derive(Debug, Clone, Copy)]
struct Position {
    /// The value `nextval` returns next; None once a sequence without CYCLE is used up.
    next: Option<i64>,
    /// Values that may still be handed out before the next reservation.
    reserved: u64,
}

/// What the positions file stores per sequence id: where to resume after a restart.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reservations {
    resume_at: HashMap<u64, Option<i64>>,
}

/// Where reservations are kept.
#[derive(Debug)]
enum Keeper {
    /// Nowhere (in-memory databases).
    Nowhere,
    /// `sequences.json` in the database folder, through the durable local I/O.
    Folder {
        fs: Arc<dyn DurableFs>,
        folder: PathBuf,
    },
    /// The `sequences.json` object, one PUT per reservation. The PUT runs
    /// on its own thread (reservations are taken inside synchronous
    /// function calls), blocking the caller for one PUT every
    /// [`RESERVE_VALUES`] values.
    Object {
        store: Arc<dyn object_store::ObjectStore>,
        runtime: tokio::runtime::Handle,
        /// The version this process last read or wrote: every PUT is
        /// conditional on it, so a process that was taken over cannot
        /// overwrite its successor's reservations.
        version: Mutex<Option<UpdateVersion>>,
    },
}

/// The positions of every sequence of one database.
#[derive(Debug)]
pub struct Positions {
    keeper: Keeper,
    /// Checked before every reservation: a process that may no longer
    /// write (fenced, lease lapsed, poisoned) hands out no value past
    /// its last reservation, so it can never repeat another's.
    gate: Arc<WriteGate>,
    inner: Mutex<(HashMap<u64, Position>, Reservations)>,
}

impl Positions {
    /// Load the reservations of the database at `location`, keeping only
    /// those of sequences in `catalog`.
    pub async fn open(
        location: &Location,
        catalog: &Catalog,
        gate: Arc<WriteGate>,
    ) -> Result<Self> {
        let (keeper, mut reservations) = match (location.kind, &location.local_root) {
            (StoreKind::Local, Some(folder)) => (
                Keeper::Folder {
                    fs: location.fs.clone(),
                    folder: folder.clone(),
                },
                read_reservations(&folder.join(POSITIONS_FILE))?,
            ),
            (StoreKind::Object, _) => {
                let store = location.store.clone();
                let (reservations, version) = read_reservations_object(store.as_ref()).await?;
                let runtime = tokio::runtime::Handle::current();
                let version = Mutex::new(version);
                (
                    Keeper::Object {
                        store,
                        runtime,
                        version,
                    },
                    reservations,
                )
            }
            _ => (Keeper::Nowhere, Reservations::default()),
        };
        reservations
            .resume_at
            .retain(|id, _| catalog.sequences.iter().any(|s| s.id == *id));
        Ok(Self {
            keeper,
            gate,
            inner: Mutex::new((HashMap::new(), reservations)),
        })
    }

    /// The next `count` values of `def`, in order.
    pub fn next_values(&self, def: &SequenceDef, count: usize) -> Result<Vec<i64>> {
        let mut guard = self.inner.lock();
        let (positions, reservations) = &mut *guard;
        let mut position = *positions.entry(def.id).or_insert_with(|| Position {
            next: reservations
                .resume_at
                .get(&def.id)
                .copied()
                .unwrap_or(Some(def.start)),
            reserved: 0,
        });
        let mut values = Vec::with_capacity(count);
        while values.len() < count {
            if position.reserved == 0 {
                let block = RESERVE_VALUES.max((count - values.len()) as u64);
                let resume = advance(def, position.next, block);
                reservations.resume_at.insert(def.id, resume);
                self.write(reservations)?;
                position.reserved = block;
            }
            // After ALTER SEQUENCE narrowed the range the position may lie outside it.
            let value = position
                .next
                .filter(|v| *v >= def.min && *v <= def.max)
                .ok_or_else(|| exhausted(def))?;
            values.push(value);
            position.next = step(def, value);
            position.reserved -= 1;
        }
        positions.insert(def.id, position);
        Ok(values)
    }

    /// `setval`: the next value will be `value` (or the one after it when `is_called`).
    pub fn set(&self, def: &SequenceDef, value: i64, is_called: bool) -> Result<()> {
        if value < def.min || value > def.max {
            return Err(Error::ValueOutOfRange {
                table: def.name.clone(),
                column: "setval".into(),
                message: format!(
                    "value {value} is out of bounds for sequence \"{}\" ({}..{})",
                    def.name, def.min, def.max
                ),
            });
        }
        let next = if is_called {
            step(def, value)
        } else {
            Some(value)
        };
        let mut guard = self.inner.lock();
        let (positions, reservations) = &mut *guard;
        reservations.resume_at.insert(def.id, next);
        self.write(reservations)?;
        positions.insert(def.id, Position { next, reserved: 0 });
        Ok(())
    }

    /// Write the reservations durably (nothing for in-memory databases).
    fn write(&self, reservations: &Reservations) -> Result<()> {
        self.gate.check()?;
        let body = serde_json::to_vec(reservations).map_err(|e| Error::internal(e.to_string()))?;
        let bytes = envelope::seal(POSITIONS_KIND, &body);
        match &self.keeper {
            Keeper::Nowhere => Ok(()),
            Keeper::Folder { fs, folder } => {
                Ok(fs.write_file_atomic(folder, POSITIONS_FILE, &bytes)?)
            }
            Keeper::Object {
                store,
                runtime,
                version,
            } => {
                let mut version = version.lock();
                let mode = match version.clone() {
                    Some(v) => PutMode::Update(v),
                    None => PutMode::Create,
                };
                let path = object_store::path::Path::from(POSITIONS_FILE);
                let put = store.put_opts(&path, bytes.into(), PutOptions::from(mode));
                match wait_for(runtime, put) {
                    Ok(done) => {
                        *version = Some(UpdateVersion {
                            e_tag: done.e_tag,
                            version: done.version,
                        });
                        Ok(())
                    }
                    Err(
                        object_store::Error::Precondition { .. }
                        | object_store::Error::AlreadyExists { .. },
                    ) => Err(self.gate.poison(crate::db::Poison::Fenced(format!(
                        "{POSITIONS_FILE} was changed by another process: it has taken the database over"
                    )))),
                    Err(e) => Err(crate::storage::verify::store_error(e)),
                }
            }
        }
    }
}

/// Run `io` to completion from synchronous code (a reservation is taken
/// inside a function call of a running query). On a multi-thread runtime
/// the worker hands its other tasks off while it waits
/// (`block_in_place`), so the runtime keeps driving I/O; on a
/// current-thread runtime (tests over an in-memory store) it runs on a
/// helper thread.
fn wait_for<F>(runtime: &tokio::runtime::Handle, io: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    use tokio::runtime::RuntimeFlavor;
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| runtime.block_on(io)),
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(io))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
        Err(_) => runtime.block_on(io),
    }
}

/// The reservations in the `sequences.json` object (none if it does not exist).
/// The reservations in the `sequences.json` object and the version read
/// (none if it does not exist).
async fn read_reservations_object(
    store: &dyn object_store::ObjectStore,
) -> Result<(Reservations, Option<UpdateVersion>)> {
    let path = object_store::path::Path::from(POSITIONS_FILE);
    let got = match store.get(&path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok((Reservations::default(), None)),
        Err(e) => return Err(crate::storage::verify::store_error(e)),
    };
    let version = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    let bytes = got
        .bytes()
        .await
        .map_err(crate::storage::verify::store_error)?;
    Ok((decode_reservations(POSITIONS_FILE, &bytes)?, Some(version)))
}

/// The reservations stored in `path` (none if it does not exist); damage
/// is an error naming the file.
pub fn read_reservations(path: &std::path::Path) -> Result<Reservations> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Reservations::default()),
        Err(e) => return Err(e.into()),
    };
    decode_reservations(&path.display().to_string(), &bytes)
}

fn decode_reservations(file: &str, bytes: &[u8]) -> Result<Reservations> {
    let opened = envelope::open(POSITIONS_KIND, file, bytes)?;
    serde_json::from_slice(opened.body()).map_err(|e| Error::Corrupt {
        detail: format!("{file}: {e}"),
    })
}

/// The value after `value`, wrapping for CYCLE; None past the end otherwise.
fn step(def: &SequenceDef, value: i64) -> Option<i64> {
    match value.checked_add(def.increment) {
        Some(next) if next >= def.min && next <= def.max => Some(next),
        _ if def.cycle => Some(if def.increment > 0 { def.min } else { def.max }),
        _ => None,
    }
}

/// Where the sequence stands after handing out `count` values from `next`.
fn advance(def: &SequenceDef, mut next: Option<i64>, count: u64) -> Option<i64> {
    for _ in 0..count {
        next = step(def, next?);
    }
    next
}

fn exhausted(def: &SequenceDef) -> Error {
    let (end, limit) = match def.increment > 0 {
        true => ("maximum", def.max),
        false => ("minimum", def.min),
    };
    Error::SequenceExhausted {
        name: def.name.clone(),
        detail: format!("reached {end} value of sequence \"{}\" ({limit})", def.name),
    }
}

/// The range of values a sequence of `sql_type` may take.
pub fn type_range(sql_type: &SqlType) -> Result<(i64, i64)> {
    match sql_type {
        SqlType::SmallInt => Ok((i16::MIN as i64, i16::MAX as i64)),
        SqlType::Int => Ok((i32::MIN as i64, i32::MAX as i64)),
        SqlType::BigInt => Ok((i64::MIN, i64::MAX)),
        other => Err(Error::InvalidArgument {
            message: format!(
                "sequence type must be smallint, integer, or bigint, not {}",
                other.sql_name()
            ),
        }),
    }
}
