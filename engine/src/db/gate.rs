//! Whether this process may still write: one answer shared by the commit
//! pipeline, the log writer, sequence reservations and the server's side
//! files.
//!
//! Writing stops for good (until the database is reopened) when a commit
//! could not be made durable or applied, or when another process took the
//! database over. On object storage it also stops when the writer lease
//! has not been renewed for its TTL: from then on another process may
//! take over at any moment, so nothing more may be written, even before
//! the renewal task notices. The lease is judged from when its last
//! successful renewal *started* (the store stamps it later), so this
//! process stops no later than another may take over, as long as clocks
//! advance at about the same rate.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, Result};

/// Why a database refuses writes until it is reopened.
#[derive(Debug, Clone)]
pub(crate) enum Poison {
    /// A commit could not be made durable or applied (state unknown).
    Failed(String),
    /// Another process took the database over.
    Fenced(String),
}

impl Poison {
    pub fn error(&self) -> Error {
        match self {
            Poison::Failed(detail) => Error::Poisoned {
                detail: detail.clone(),
            },
            Poison::Fenced(detail) => Error::Fenced {
                detail: detail.clone(),
            },
        }
    }
}

/// The writer lease as this process last knew it valid.
#[derive(Debug)]
struct LeaseClock {
    /// When the last successful renewal (or the acquisition) started.
    renewed: Mutex<Instant>,
    ttl: Duration,
}

/// Whether this process may write (see the module page).
#[derive(Debug, Default)]
pub struct WriteGate {
    poisoned: Mutex<Option<Poison>>,
    lease: Option<LeaseClock>,
}

impl WriteGate {
    /// A gate for a database on object storage, whose lease was acquired
    /// by a request started at `acquired`.
    pub fn with_lease(acquired: Instant, ttl: Duration) -> Self {
        Self {
            poisoned: Mutex::new(None),
            lease: Some(LeaseClock {
                renewed: Mutex::new(acquired),
                ttl,
            }),
        }
    }

    /// Ok if this process may write now.
    pub fn check(&self) -> Result<()> {
        if let Some(poison) = self.poisoned.lock().as_ref() {
            return Err(poison.error());
        }
        if let Some(lease) = &self.lease {
            let age = lease.renewed.lock().elapsed();
            if age >= lease.ttl {
                return Err(self.poison(Poison::Fenced(format!(
                    "the writer lease was last renewed {:.1} s ago, past its {:.1} s TTL: another process may have taken the database over",
                    age.as_secs_f64(),
                    lease.ttl.as_secs_f64()
                ))));
            }
        }
        Ok(())
    }

    /// Whether writes are refused already.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.lock().is_some()
    }

    /// Refuse writes from now on (the first reason stays); the error to report.
    pub(crate) fn poison(&self, poison: Poison) -> Error {
        self.poisoned.lock().get_or_insert(poison).error()
    }

    /// A renewal that started at `started` succeeded.
    pub fn renewed(&self, started: Instant) {
        if let Some(lease) = &self.lease {
            let mut renewed = lease.renewed.lock();
            *renewed = (*renewed).max(started);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_not_renewed_for_its_ttl_closes_the_gate_for_good() {
        let ttl = Duration::from_secs(10);
        let gate = WriteGate::with_lease(Instant::now(), ttl);
        assert!(gate.check().is_ok());
        let gate = WriteGate::with_lease(Instant::now() - ttl, ttl);
        let e = gate.check().unwrap_err();
        assert_eq!(e.sqlstate(), "55006", "{e}");
        gate.renewed(Instant::now());
        assert!(gate.check().is_err(), "a fenced writer stays fenced");
    }
}
