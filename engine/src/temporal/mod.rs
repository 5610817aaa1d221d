//! The temporal layer: per-table-reference time travel.
//!
//! - [`planner`]: DriftDB's `RelationPlanner`; turns `t [FOR SYSTEM_TIME …
//!   | TIMESTAMP AS OF … | VERSION AS OF …]` and views into scans.
//! - [`provider`] and [`scan`]: the table provider and its visibility filter.
//! - [`functions`]: `history('t' [, from, to])` and `commits()`.
//! - [`changes`]: `table_changes` and `table_diff`; [`live`]: a change feed followed live.
//!
//! **Which table a name means in the past.** A name is looked up in the
//! catalog as of the point the reference reads, then the table is followed
//! by its identity: `t VERSION AS OF 2` and `CREATE TABLE c CLONE t AS OF 2`
//! read the table called `t` at version 2, even if it is called `u` now
//! (and `u VERSION AS OF 2` is 42P01 if no table was called `u` then). A
//! reference to a range (`FOR SYSTEM_TIME BETWEEN a AND b`, `history`,
//! `table_changes`, `table_diff`) looks the name up at its later end. The
//! one exception writes: `RESTORE TABLE t TO …` names the table it changes,
//! so `t` is looked up now and followed back to the point.

pub mod changes;
pub mod functions;
pub mod live;
pub mod planner;
pub mod provider;
pub mod scan;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;

use crate::db::Database;
use crate::error::{Error, Result};
use crate::sql::parser::HistoryClauses;
use crate::txn::TxnView;
use sqlparser::tokenizer::Location;

/// The snapshot the current statement reads (tables without a clause), set
/// per statement, and the open transaction's overlay, if any.
#[derive(Debug, Default)]
pub struct StatementSnapshot {
    seq: AtomicU64,
    view: parking_lot::RwLock<Option<Arc<TxnView>>>,
    /// The history clauses of the statement being planned.
    history: parking_lot::RwLock<Arc<HistoryClauses>>,
    /// Where the table a write changes is named, while its read is planned.
    write_target: parking_lot::RwLock<Option<Location>>,
    /// Set while a view read AS OF a point is planned: its tables are read
    /// at that point, not at the statement's snapshot.
    fixed: std::sync::atomic::AtomicBool,
    /// The values bound to the running statement's `$n` placeholders
    /// (bound to its plans, and read by its history clauses).
    params: parking_lot::RwLock<Arc<[ScalarValue]>>,
}

impl StatementSnapshot {
    pub fn get(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    pub fn set(&self, seq: u64) {
        self.seq.store(seq, Ordering::Release)
    }

    /// The transaction overlay for reads of "now" at the current seq.
    pub fn view(&self) -> Option<Arc<TxnView>> {
        let seq = self.get();
        self.view.read().clone().filter(|v| v.seq == seq)
    }

    /// The history clauses of the statement being planned.
    pub fn history(&self) -> Arc<HistoryClauses> {
        self.history.read().clone()
    }

    /// Install the history clauses of the statement about to be planned;
    /// returns those it replaces.
    pub fn set_history(&self, history: Arc<HistoryClauses>) -> Arc<HistoryClauses> {
        std::mem::replace(&mut *self.history.write(), history)
    }

    /// Where the table the statement writes is named (its read plans that
    /// reference with `_rowid` and `_seq`).
    pub fn write_target(&self) -> Option<Location> {
        *self.write_target.read()
    }

    pub fn set_write_target(&self, at: Option<Location>) {
        *self.write_target.write() = at;
    }

    /// Whether tables planned now are read at a fixed point (inside a view read AS OF one).
    pub fn fixed(&self) -> bool {
        self.fixed.load(Ordering::Acquire)
    }

    /// Set [`StatementSnapshot::fixed`]; returns the previous value.
    pub fn set_fixed(&self, fixed: bool) -> bool {
        self.fixed.swap(fixed, Ordering::AcqRel)
    }

    /// The values bound to the running statement's placeholders.
    pub fn params(&self) -> Arc<[ScalarValue]> {
        self.params.read().clone()
    }

    pub fn set_params(&self, params: Arc<[ScalarValue]>) {
        *self.params.write() = params;
    }

    /// Install (or clear) the open transaction's overlay.
    pub fn set_view(&self, view: Option<Arc<TxnView>>) {
        *self.view.write() = view;
    }
}

/// Fold a constant expression (`'2026-01-01'`, `now() - INTERVAL '1 hour'`, `42`) to a value.
pub fn eval_constant(expr: Expr) -> Result<ScalarValue> {
    let context = SimplifyContext::builder().with_current_time().build();
    let simplified = ExprSimplifier::new(context).simplify(expr)?;
    match simplified {
        Expr::Literal(value, _) => Ok(value),
        other => Err(Error::BadSnapshot {
            message: format!("{other} is not a constant"),
        }),
    }
}

/// Which snapshot a time-travel argument names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Seq(u64),
    TimeUs(i64),
}

/// Read a time-travel argument: integers are versions (seq), a string
/// naming a tag (`CREATE TAG`) that tag's version, anything else a timestamp.
pub fn target_of(db: &Database, value: &ScalarValue) -> Result<Target> {
    if let Some(name) = tag_name(value) {
        return db.tag_version(name).map(Target::Seq);
    }
    if value.data_type().is_integer() {
        let seq = value
            .cast_to(&DataType::UInt64)
            .ok()
            .and_then(|v| match v {
                ScalarValue::UInt64(Some(seq)) => Some(seq),
                _ => None,
            })
            .ok_or_else(|| Error::BadSnapshot {
                message: format!("bad version {value}"),
            })?;
        return Ok(Target::Seq(seq));
    }
    if matches!(
        value.data_type(),
        DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    ) {
        return Err(Error::BadSnapshot {
            message: format!(
                "bad version {value}: a version is a whole number, a time a timestamp"
            ),
        });
    }
    timestamp_us(value).map(Target::TimeUs)
}

/// A `TIMESTAMP AS OF` argument: a string naming a tag is that tag's
/// version (`VERSION AS OF 'name'` arrives here too, see the parser);
/// anything else a time.
pub fn time_target(db: &Database, value: &ScalarValue) -> Result<Target> {
    if let Some(name) = tag_name(value) {
        return db.tag_version(name).map(Target::Seq);
    }
    timestamp_us(value).map(Target::TimeUs)
}

/// A string argument that can only be a tag's name: tag names start with
/// a letter or `_` (see [`check_tag_name`]), timestamps with a digit.
fn tag_name(value: &ScalarValue) -> Option<&str> {
    let text = match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s,
        _ => return None,
    };
    text.starts_with(|c: char| c.is_alphabetic() || c == '_')
        .then_some(text.as_str())
}

/// The longest tag name, in bytes (PostgreSQL's identifier limit).
pub const MAX_TAG_NAME_BYTES: usize = 63;

/// Words PostgreSQL reads as special timestamps: never tag names.
const TIMESTAMP_WORDS: [&str; 7] = [
    "now",
    "today",
    "tomorrow",
    "yesterday",
    "epoch",
    "infinity",
    "allballs",
];

/// Refuse (42602) a tag name a time-travel argument would read as a
/// timestamp (it must start with a letter or `_`, and not be a special
/// timestamp word such as `now`), or one longer than
/// [`MAX_TAG_NAME_BYTES`].
pub fn check_tag_name(name: &str) -> Result<()> {
    let bad = |message: String| {
        Err(Error::InvalidName {
            name: crate::error::printable(name),
            message,
        })
    };
    if tag_name(&ScalarValue::Utf8(Some(name.to_string()))).is_none() {
        return bad("a tag name starts with a letter or _ (a time-travel argument starting with a digit is a timestamp)".into());
    }
    if TIMESTAMP_WORDS.contains(&name.to_lowercase().as_str()) {
        return bad(format!(
            "\"{name}\" reads as a special timestamp; choose another tag name"
        ));
    }
    if name.len() > MAX_TAG_NAME_BYTES {
        return bad(format!("a tag name is at most {MAX_TAG_NAME_BYTES} bytes"));
    }
    Ok(())
}

/// A value as µs since the epoch (UTC); strings are parsed as timestamps.
pub fn timestamp_us(value: &ScalarValue) -> Result<i64> {
    let wanted = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    match value.cast_to(&wanted) {
        Ok(ScalarValue::TimestampMicrosecond(Some(us), _)) => Ok(us),
        _ => Err(Error::BadSnapshot {
            message: format!(
                "{} is not a timestamp",
                crate::error::printable(&value.to_string())
            ),
        }),
    }
}

/// The seq a target resolves to, checked against the commits that exist.
pub fn resolve_target(db: &Database, target: Target) -> Result<u64> {
    match target {
        Target::Seq(seq) => db.check_version(seq),
        Target::TimeUs(us) => db.seq_at_time(us),
    }
}
