//! Named limits and tunables, each with its unit last and a documented default.

use std::time::Duration;

/// Largest payload of one commit-log frame, in bytes: the one limit that
/// writing and reading share. A frame declaring more is damage, never a
/// commit; a commit that would need more is refused before it is
/// acknowledged. (Frames store their length as a u32.)
pub const LOG_FRAME_BYTES_MAX: usize = 1024 * 1024 * 1024;

/// Tunables for one open database.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Persist the memtable to Parquet once it holds this many bytes.
    pub memtable_bytes_max: usize,
    /// Persist the memtable once its oldest unpersisted commit is this old.
    pub memtable_age_max: Duration,
    /// Rows per Parquet row group (smaller groups prune better, larger compress better).
    pub parquet_row_group_rows_max: usize,
    /// Largest commit this database accepts, as the payload of one log
    /// frame; a larger commit is refused (54000) before anything changes.
    /// At most [`LOG_FRAME_BYTES_MAX`], the format's limit, which reading
    /// enforces; lower it to refuse smaller commits (tests do).
    pub log_frame_bytes_max: usize,
    /// Small commits are merged into memtable chunks of up to this many rows,
    /// so scans see few large batches rather than one per commit.
    pub memtable_chunk_rows_max: usize,
    /// Most rows one bulk ingest (`Session::ingest`, Flight SQL's
    /// `CommandStatementIngest`) may carry; every row costs bookkeeping in
    /// the commit whatever its width, so this bounds columns of zero bytes too.
    pub ingest_rows_max: usize,
    /// On object storage: how long the writer lease lasts without renewal.
    /// The holder renews it every quarter of this; an opener takes over a
    /// lease not renewed for this long (a crashed holder), so a database
    /// whose writer died is writable again after at most this.
    pub writer_lease_ttl: Duration,
    /// On object storage: bytes of data files kept on local disk
    /// (`--cache-mib`; least recently used first out; 0 turns it off).
    pub data_cache_bytes_max: u64,
    /// Compaction writes current files of up to about this many live rows;
    /// files under an eighth of it count as small and are merged.
    pub compact_file_rows_target: u64,
    /// Compact a table in the background once this percentage of the rows
    /// in its data files is retired (0 turns background compaction off;
    /// `COMPACT TABLE` runs whatever this says).
    pub compact_retired_percent_min: u64,
    /// Compact a table in the background once it has this many small files.
    pub compact_small_files_min: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memtable_bytes_max: 64 * 1024 * 1024,
            memtable_age_max: Duration::from_secs(60),
            parquet_row_group_rows_max: 128 * 1024,
            log_frame_bytes_max: LOG_FRAME_BYTES_MAX,
            memtable_chunk_rows_max: 8192,
            ingest_rows_max: 64 * 1024 * 1024,
            writer_lease_ttl: WRITER_LEASE_TTL_DEFAULT,
            data_cache_bytes_max: DATA_CACHE_BYTES_DEFAULT,
            compact_file_rows_target: 1 << 20,
            compact_retired_percent_min: 20,
            compact_small_files_min: 16,
        }
    }
}

/// Default [`Limits::data_cache_bytes_max`]: 1 GiB.
pub const DATA_CACHE_BYTES_DEFAULT: u64 = 1 << 30;

/// Default [`Limits::writer_lease_ttl`].
pub const WRITER_LEASE_TTL_DEFAULT: Duration = Duration::from_secs(30);

/// How long a fence in the object-store log (the empty object a process
/// places when it takes a database over) is kept after it was placed: it
/// holds the name the replaced writer would write next, so it must outlive
/// any write that writer may still have in flight (at most
/// [`OBJECT_STORE_RETRY_TIMEOUT`] once its lease lapsed).
pub const LOG_FENCE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Retries of a failed object-store request (5xx, 429, connection
/// errors) before it is reported, with exponential backoff and jitter.
pub const OBJECT_STORE_RETRIES_MAX: usize = 8;
/// Longest time one object-store request keeps being retried.
pub const OBJECT_STORE_RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// First backoff before retrying an object-store request (doubling each time).
pub const OBJECT_STORE_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
/// Longest backoff between two attempts of an object-store request.
pub const OBJECT_STORE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How object-store requests are retried (see the constants above).
pub fn object_store_retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: OBJECT_STORE_BACKOFF_INITIAL,
            max_backoff: OBJECT_STORE_BACKOFF_MAX,
            base: 2.0,
        },
        max_retries: OBJECT_STORE_RETRIES_MAX,
        retry_timeout: OBJECT_STORE_RETRY_TIMEOUT,
    }
}

/// Deepest nesting of parentheses, subqueries and unary operators the
/// parser follows (its recursion limit); deeper is 54001.
pub const STATEMENT_NESTING_MAX: usize = 64;

/// Stack of every thread that plans or runs statements (the server's and
/// the shell's runtime threads). The planner and optimizer recurse once
/// per plan and expression level, and a debug build spends tens of KiB of
/// stack per level: a statement just within [`EXPRESSION_DEPTH_MAX`] must
/// fit. Address space is reserved up front; only pages used are backed.
pub const STATEMENT_THREAD_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Deepest nesting of function calls and subqueries (together) a statement
/// may have: planning time doubles with each level (DataFusion re-derives
/// argument types and re-optimizes subqueries level by level), so 16
/// levels plan in about 0.1 s (a debug build) and 24 would take minutes.
/// Deeper is 54001.
pub const CALL_NESTING_MAX: usize = 16;

/// Expressions the parser may start per token of a statement, beyond
/// [`PARSE_STEPS_MIN`]; more is 54001. sqlparser reads some nested
/// constructs twice (a keyword that fails as an expression, `CAST(…`, is
/// read again as a function name; a nested subquery is tried as one
/// thing, then another), so each level of nesting can double the work: 16
/// nested subqueries take about 65,000 steps, and a failing statement
/// nested 60 deep parsed for hours before this budget.
pub const PARSE_STEPS_PER_TOKEN_MAX: usize = 16;
/// Parse steps every statement may take, however short: enough for
/// statements nested as deep as [`CALL_NESTING_MAX`] allows.
pub const PARSE_STEPS_MIN: usize = 1 << 20;

/// Deepest expression tree a statement may build: nesting plus operators
/// chained at one level (`1 + 1 + … + 1` is one level per `+`). Deeper
/// trees would exhaust the stack of the planner and optimizer, which walk
/// them recursively; refused with 54001 before parsing.
pub const EXPRESSION_DEPTH_MAX: usize = 1024;

/// Most digits a NUMERIC column holds (a 128-bit decimal); a wider
/// declared precision is refused (0A000) rather than stored unreadable.
pub const DECIMAL_DIGITS_MAX: u8 = 38;

/// Most entries a select list may have (PostgreSQL's limit, 54011 beyond
/// it): planning a projection costs more than linearly in its width.
pub const SELECT_ITEMS_MAX: usize = 1664;

/// Most bytes of subquery results one dependent join (a `LATERAL` or
/// correlated subquery no rewrite decorrelates) keeps cached per
/// partition, in bytes; beyond it the cache starts over. The bytes also
/// count against the query's memory limit.
pub const APPLY_CACHE_BYTES_MAX: usize = 64 * 1024 * 1024;
