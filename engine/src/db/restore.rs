//! What a restore needs of a database: opening a target marked as an
//! unfinished restore, and appending commits recorded elsewhere exactly
//! as they were (see [`crate::backup`]).

use object_store::ObjectStoreExt;

use super::Database;
use super::apply::apply_record;
use crate::backup::RESTORE_MARKER;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::log::{CommitRecord, wait_durable};
use crate::storage::location::Location;
use crate::storage::verify::store_error;

impl Database {
    /// Refuse (55000) a location a restore has not finished.
    pub(crate) async fn refuse_unfinished_restore(location: &Location) -> Result<()> {
        let marker = object_store::path::Path::from(RESTORE_MARKER);
        // A GET, not a HEAD: a refusal's body says why (a HEAD's has none).
        match location.store.get(&marker).await {
            Ok(_) => Err(Error::ObjectNotInPrerequisiteState {
                message: format!(
                    "{} is an unfinished restore ({RESTORE_MARKER} is there): restore again into an empty location",
                    location.display
                ),
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Open the target of a restore in progress (its marker is expected).
    pub(crate) async fn open_restoring(location: Location, limits: Limits) -> Result<Self> {
        Self::open_unchecked(location, limits).await
    }

    /// Append `records` as the next commits, exactly as recorded (seq,
    /// time, row ids), each durable in this database's log before this
    /// returns. Each must follow the one before it.
    pub(crate) async fn append_recorded(&self, records: Vec<CommitRecord>) -> Result<()> {
        let Some(log) = &self.inner.log else {
            return Err(Error::internal("a restore target keeps no log"));
        };
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            let seq = record.header.seq;
            let _writer = self.inner.writer.lock().await;
            let frame = record.encode_frame()?;
            {
                let mut state = self.inner.state.write();
                if seq != state.last_seq + 1 || record.header.time_us <= state.last_time_us {
                    return Err(Error::Corrupt {
                        detail: format!(
                            "commit {seq} does not follow commit {} in the log being restored",
                            state.last_seq
                        ),
                    });
                }
                apply_record(&mut state, &record)?;
            }
            pending.push((seq, log.submit(seq, frame)?));
        }
        for (seq, durable) in pending {
            wait_durable(durable).await?;
            self.publish_visible(seq);
        }
        Ok(())
    }
}
