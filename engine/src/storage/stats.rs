//! Column statistics of stored row versions (all versions, retired or not),
//! kept per data file and per memtable chunk and merged into the inexact
//! statistics a scan reports to DataFusion's optimizer.
//!
//! Min and max are stored as text and parsed back with the column's type,
//! so they survive in the JSON checkpoint. BYTEA columns keep no min/max.

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use serde::{Deserialize, Serialize};

use crate::catalog::{RETIRED_COLUMN, ROWID_COLUMN, SEQ_COLUMN};

/// Statistics of one stored column (`c<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// The stored column name, `c<id>`.
    pub column: String,
    pub null_count: u64,
    pub min: Option<String>,
    pub max: Option<String>,
}

/// Statistics of every user column of a physical batch.
pub fn batch_column_stats(batch: &RecordBatch) -> Vec<ColumnStats> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| ![ROWID_COLUMN, SEQ_COLUMN, RETIRED_COLUMN].contains(&f.name().as_str()))
        .map(|(f, array)| {
            let (min, max) = min_max_text(array).unwrap_or((None, None));
            ColumnStats {
                column: f.name().clone(),
                null_count: array.null_count() as u64,
                min,
                max,
            }
        })
        .collect()
}

fn min_max_text(array: &ArrayRef) -> Option<(Option<String>, Option<String>)> {
    if matches!(
        array.data_type(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    ) {
        return None;
    }
    let mut min = MinAccumulator::try_new(array.data_type()).ok()?;
    let mut max = MaxAccumulator::try_new(array.data_type()).ok()?;
    min.update_batch(std::slice::from_ref(array)).ok()?;
    max.update_batch(std::slice::from_ref(array)).ok()?;
    let text = |v: ScalarValue| (!v.is_null()).then(|| v.to_string());
    Some((text(min.evaluate().ok()?), text(max.evaluate().ok()?)))
}

/// Running merge of column statistics from several sources.
#[derive(Debug, Default)]
pub struct StatsMerger {
    pub null_count: u64,
    pub min: Option<ScalarValue>,
    pub max: Option<ScalarValue>,
    /// A source with non-null values but no usable min/max makes min/max unknown.
    pub bounds_unknown: bool,
}

impl StatsMerger {
    /// Add one source's statistics for this column (`None`: the source lacks the column, all NULL).
    pub fn add(&mut self, stats: Option<&ColumnStats>, rows: u64, data_type: &DataType) {
        let Some(stats) = stats else {
            self.null_count = self.null_count.saturating_add(rows);
            return;
        };
        // Saturating: these are estimates, and a damaged count must not
        // overflow (it only makes a plan worse).
        self.null_count = self.null_count.saturating_add(stats.null_count);
        if stats.null_count >= rows {
            return;
        }
        let parse = |v: &Option<String>| {
            v.as_ref()
                .and_then(|t| ScalarValue::try_from_string(t.clone(), data_type).ok())
        };
        match (parse(&stats.min), parse(&stats.max)) {
            (Some(lo), Some(hi)) => {
                if self
                    .min
                    .as_ref()
                    .is_none_or(|m| lo.partial_cmp(m).is_some_and(|o| o.is_lt()))
                {
                    self.min = Some(lo);
                }
                if self
                    .max
                    .as_ref()
                    .is_none_or(|m| hi.partial_cmp(m).is_some_and(|o| o.is_gt()))
                {
                    self.max = Some(hi);
                }
            }
            _ => self.bounds_unknown = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, StringArray, UInt64Array};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn stats_round_trip_through_text_and_merge() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("c1", DataType::Int32, true),
            Field::new("c2", DataType::Utf8, true),
            Field::new(ROWID_COLUMN, DataType::UInt64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![Some(5), None, Some(-3)])),
                Arc::new(StringArray::from(vec!["b", "a", "c"])),
                Arc::new(UInt64Array::from(vec![1, 2, 3])),
            ],
        )
        .unwrap();
        let stats = batch_column_stats(&batch);
        assert_eq!(stats.len(), 2);
        assert_eq!(
            (stats[0].min.as_deref(), stats[0].max.as_deref()),
            (Some("-3"), Some("5"))
        );
        let mut merged = StatsMerger::default();
        merged.add(Some(&stats[0]), 3, &DataType::Int32);
        merged.add(None, 10, &DataType::Int32);
        assert_eq!(merged.null_count, 11);
        assert_eq!(merged.min, Some(ScalarValue::Int32(Some(-3))));
        assert_eq!(merged.max, Some(ScalarValue::Int32(Some(5))));
    }
}
