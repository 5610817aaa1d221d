//! Client sessions and the queries they have started.
//!
//! A session belongs to one bearer token and has its own SQL session
//! (settings such as `driftdb.as_of`), prepared statements and parameters.
//! A query started by GetFlightInfo waits in [`Queries`] until DoGet takes
//! its stream; CancelFlightInfo and CancelQuery find it there by ticket.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use datafusion::execution::SendableRecordBatchStream;
use datafusion::scalar::ScalarValue;
use driftdb_engine::{Database, Prepared, Session};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::auth::new_token;
use super::config::ServerLimits;
use super::error::{Result, ServerError};

/// One client's state.
pub struct ClientSession {
    pub id: u64,
    pub user: String,
    /// The SQL session; statements of one client run one at a time.
    pub sql: tokio::sync::Mutex<Session>,
    /// Prepared statements by handle.
    pub prepared: Mutex<HashMap<u64, PreparedEntry>>,
    /// The Flight SQL transaction open in `sql`, and its savepoints by id.
    pub transaction: Mutex<OpenTransaction>,
    last_used: Mutex<Instant>,
}

/// Ids a client uses for its open transaction and savepoints.
#[derive(Debug, Default)]
pub struct OpenTransaction {
    pub id: Option<u64>,
    pub savepoints: HashMap<u64, String>,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("id", &self.id)
            .field("user", &self.user)
            .finish()
    }
}

/// A prepared statement and the parameter rows last bound to it.
#[derive(Debug, Clone)]
pub struct PreparedEntry {
    pub prepared: Prepared,
    pub parameters: Vec<Vec<ScalarValue>>,
}

impl ClientSession {
    fn touch(&self) {
        *self.last_used.lock() = Instant::now();
    }

    fn idle_since(&self) -> Instant {
        *self.last_used.lock()
    }
}

/// Every live session, by token.
pub struct Sessions {
    db: Database,
    limits: ServerLimits,
    by_token: Mutex<HashMap<String, Arc<ClientSession>>>,
    next_id: AtomicU64,
}

impl Sessions {
    pub fn new(db: Database, limits: ServerLimits) -> Self {
        Self {
            db,
            limits,
            by_token: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Open a session for `user`; returns its token.
    pub fn open(&self, user: &str) -> Result<(String, Arc<ClientSession>)> {
        let mut map = self.by_token.lock();
        if map.len() >= self.limits.max_sessions {
            return Err(ServerError::TooManySessions {
                limit: self.limits.max_sessions,
            });
        }
        let mut sql = Session::new(&self.db);
        sql.set_query_memory_limit(Some(self.limits.query_memory_bytes));
        sql.follow_change_feeds(true);
        sql.set_file_access(self.limits.file_access.clone());
        let session = Arc::new(ClientSession {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user: user.into(),
            sql: tokio::sync::Mutex::new(sql),
            prepared: Mutex::new(HashMap::new()),
            transaction: Mutex::default(),
            last_used: Mutex::new(Instant::now()),
        });
        let token = new_token();
        map.insert(token.clone(), session.clone());
        Ok((token, session))
    }

    /// The session of `token`, marked as used now.
    pub fn get(&self, token: &str) -> Option<Arc<ClientSession>> {
        let session = self.by_token.lock().get(token).cloned()?;
        session.touch();
        Some(session)
    }

    /// Whether the session of `token` is open (without counting as a use).
    pub fn contains(&self, token: &str) -> bool {
        self.by_token.lock().contains_key(token)
    }

    /// End the session of `token` (the client said goodbye); returns whether it existed.
    pub fn close(&self, token: &str) -> bool {
        self.by_token.lock().remove(token).is_some()
    }

    /// Drop sessions idle for longer than the limit; returns how many.
    pub fn drop_idle(&self) -> usize {
        let now = Instant::now();
        let mut map = self.by_token.lock();
        let before = map.len();
        map.retain(|_, s| now.duration_since(s.idle_since()) < self.limits.session_idle);
        before - map.len()
    }

    pub fn len(&self) -> usize {
        self.by_token.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A query waiting for (or being read by) DoGet.
pub struct PendingQuery {
    pub session_id: u64,
    /// Taken by the DoGet that reads it.
    pub stream: Option<SendableRecordBatchStream>,
    pub cancel: CancellationToken,
    pub started: Instant,
    /// A live change feed: no deadline (it runs until cancelled).
    pub live: bool,
}

/// Every started query, by id (the ticket's handle).
#[derive(Default)]
pub struct Queries {
    by_id: Mutex<HashMap<u64, PendingQuery>>,
    next_id: AtomicU64,
}

impl Queries {
    /// Register a started query; returns its id.
    pub fn add(&self, query: PendingQuery) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.by_id.lock().insert(id, query);
        id
    }

    /// A fresh handle (for prepared statements), never equal to a query id.
    pub fn add_handle(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Take the stream of query `id` for `session_id`, with its cancel
    /// token and start (None for a live feed, which has no deadline).
    pub fn take_stream(
        &self,
        id: u64,
        session_id: u64,
    ) -> Result<(
        SendableRecordBatchStream,
        CancellationToken,
        Option<Instant>,
    )> {
        let mut map = self.by_id.lock();
        let unknown = || ServerError::UnknownHandle {
            kind: "query",
            handle: id.to_string(),
        };
        let query = map
            .get_mut(&id)
            .filter(|q| q.session_id == session_id)
            .ok_or_else(unknown)?;
        let stream = query.stream.take().ok_or_else(unknown)?;
        let started = (!query.live).then_some(query.started);
        Ok((stream, query.cancel.clone(), started))
    }

    /// Forget query `id` (its DoGet finished or it was cancelled).
    pub fn finish(&self, id: u64) {
        self.by_id.lock().remove(&id);
    }

    /// Cancel query `id` if `session_id` owns it; returns whether it was found.
    pub fn cancel(&self, id: u64, session_id: u64) -> bool {
        let mut map = self.by_id.lock();
        match map.get(&id) {
            Some(q) if q.session_id == session_id => {
                q.cancel.cancel();
                map.remove(&id);
                true
            }
            _ => false,
        }
    }

    /// Cancel every query (shutdown): running streams end with 57014.
    pub fn cancel_all(&self) {
        for query in self.by_id.lock().values() {
            query.cancel.cancel();
        }
    }

    /// Drop queries nobody fetched within `max_age`.
    pub fn drop_stale(&self, max_age: std::time::Duration) {
        let now = Instant::now();
        self.by_id
            .lock()
            .retain(|_, q| q.stream.is_none() || now.duration_since(q.started) < max_age);
    }

    /// Results session `session_id` has started and not finished reading
    /// (waiting for DoGet or being read).
    /// Drop the oldest result of `session_id` that no DoGet has started
    /// reading (a client that ran a newer statement without fetching it
    /// abandoned it, as a DB-API cursor does); returns whether there was one.
    pub fn drop_oldest_unread(&self, session_id: u64) -> bool {
        let mut map = self.by_id.lock();
        let oldest = map
            .iter()
            .filter(|(_, q)| q.session_id == session_id && q.stream.is_some())
            .map(|(id, _)| *id)
            .min();
        match oldest.and_then(|id| map.remove(&id)) {
            Some(query) => {
                query.cancel.cancel();
                true
            }
            None => false,
        }
    }

    pub fn open_in(&self, session_id: u64) -> usize {
        self.by_id
            .lock()
            .values()
            .filter(|q| q.session_id == session_id)
            .count()
    }

    /// (queries a DoGet is reading now, results no DoGet has taken yet).
    pub fn running_and_waiting(&self) -> (usize, usize) {
        let map = self.by_id.lock();
        let waiting = map.values().filter(|q| q.stream.is_some()).count();
        (map.len() - waiting, waiting)
    }
}
