//! Query answers in a form every engine can produce — rows of rendered
//! cells — and the check that two engines gave the same one.
//!
//! Numbers compare with a relative tolerance: engines legitimately differ
//! in the last digits of an average or a decimal division (DataFusion keeps
//! `avg` of a decimal as a decimal, DuckDB as a double).

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::Result;

/// Largest relative difference between two numbers that still counts as equal.
const RELATIVE_TOLERANCE: f64 = 1e-4;

/// A query's rows, each cell rendered as text (`NULL` for a null).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub rows: Vec<Vec<String>>,
}

impl Answer {
    /// The rows of `batches`, in order.
    pub fn from_batches(batches: &[RecordBatch]) -> Result<Self> {
        Ok(Self {
            rows: driftdb_engine::sql::rows_as_text(batches)?,
        })
    }

    /// Why `other` is not the same answer; None when it is. Rows are
    /// compared as sorted multisets: ties in ORDER BY may come in any order.
    pub fn difference(&self, other: &Answer) -> Option<String> {
        if self.rows.len() != other.rows.len() {
            return Some(format!("{} rows vs {}", self.rows.len(), other.rows.len()));
        }
        let (mut mine, mut theirs) = (self.rows.clone(), other.rows.clone());
        mine.sort();
        theirs.sort();
        for (a, b) in mine.iter().zip(&theirs) {
            if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| !cells_equal(x, y)) {
                return Some(format!("row {a:?} vs {b:?}"));
            }
        }
        None
    }
}

fn cells_equal(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => {
            let scale = x.abs().max(y.abs()).max(1.0);
            (x - y).abs() <= RELATIVE_TOLERANCE * scale
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rows: &[&[&str]]) -> Answer {
        Answer {
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect(),
        }
    }

    #[test]
    fn numbers_match_within_tolerance_and_rows_in_any_order() {
        let a = answer(&[&["A", "25.522005"], &["B", "1"]]);
        let b = answer(&[&["B", "1.0"], &["A", "25.52200585325"]]);
        assert_eq!(a.difference(&b), None);
    }

    #[test]
    fn different_values_or_row_counts_are_reported() {
        let a = answer(&[&["A", "25.5"]]);
        assert!(a.difference(&answer(&[&["A", "25.6"]])).is_some());
        assert!(a.difference(&answer(&[&["a", "25.5"]])).is_some());
        assert!(a.difference(&answer(&[])).is_some());
    }
}
