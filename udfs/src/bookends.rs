//! `first(value, time)` and `last(value, time)`: the value at the
//! earliest (latest) time of the group, as TimescaleDB's aggregates of
//! those names. Rows whose time is NULL are passed over; a group with no
//! such row gives NULL. Of rows tied on the time, which one gives the
//! value is not defined (nor is it in TimescaleDB).
//! The time may be of any ordered type.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::SortOptions;
use arrow::compute::kernels::sort::sort_to_indices;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};

/// `first(value, time)`.
pub fn first() -> AggregateUDF {
    AggregateUDF::new_from_impl(Bookend::new(false))
}

/// `last(value, time)`.
pub fn last() -> AggregateUDF {
    AggregateUDF::new_from_impl(Bookend::new(true))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bookend {
    signature: Signature,
    /// `last` (the latest time) rather than `first`.
    latest: bool,
}

impl Bookend {
    fn new(latest: bool) -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
            latest,
        }
    }
}

impl AggregateUDFImpl for Bookend {
    fn name(&self) -> &str {
        if self.latest { "last" } else { "first" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() != 2 {
            return plan_err!("{}(value, time) takes two arguments", self.name());
        }
        Ok(arg_types[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs<'_>) -> Result<Box<dyn Accumulator>> {
        let value_type = args.expr_fields[0].data_type();
        let time_type = args.expr_fields[1].data_type();
        Ok(Box::new(BookendAccumulator {
            value: ScalarValue::try_from(value_type)?,
            time: ScalarValue::try_from(time_type)?,
            latest: self.latest,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs<'_>) -> Result<Vec<FieldRef>> {
        let time = args.input_fields[1].data_type().clone();
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[value]", args.name),
                args.return_type().clone(),
                true,
            )),
            Arc::new(Field::new(format!("{}[time]", args.name), time, true)),
        ])
    }
}

/// The best row so far: its value and time (NULL time: none yet).
#[derive(Debug)]
struct BookendAccumulator {
    value: ScalarValue,
    time: ScalarValue,
    latest: bool,
}

impl BookendAccumulator {
    /// Take the best row of `values`/`times` if it beats the one held.
    fn offer(&mut self, values: &ArrayRef, times: &ArrayRef) -> Result<()> {
        let options = SortOptions {
            descending: self.latest,
            nulls_first: false,
        };
        let best = sort_to_indices(times, Some(options), Some(1))?;
        if best.is_empty() || times.is_null(best.value(0) as usize) {
            return Ok(());
        }
        let row = best.value(0) as usize;
        let time = ScalarValue::try_from_array(times, row)?;
        let better = match time.partial_cmp(&self.time) {
            _ if self.time.is_null() => true,
            Some(std::cmp::Ordering::Less) => !self.latest,
            Some(std::cmp::Ordering::Greater) => self.latest,
            _ => false,
        };
        if better {
            self.time = time;
            self.value = ScalarValue::try_from_array(values, row)?;
        }
        Ok(())
    }
}

impl Accumulator for BookendAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.offer(&values[0], &values[1])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.offer(&states[0], &states[1])
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value.clone(), self.time.clone()])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size() + self.time.size()
    }
}
