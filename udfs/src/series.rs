//! `generate_series` and `range` as scalar functions (they return a list),
//! bounded: DataFusion's versions materialise the whole list in one
//! allocation outside every memory pool, and constant folding runs them
//! while planning, so `SELECT generate_series(1, 100000000000)` could take
//! all the memory of the machine. These wrappers count the elements a call
//! would produce first (without producing them) and refuse a call that
//! would produce more than [`SERIES_ELEMENTS_MAX`]; within the limit they
//! hand the call to DataFusion's own implementation, so results are
//! unchanged.
//!
//! The table-function forms (`SELECT * FROM generate_series(…)`) stream in
//! batches of the session's batch size and need no bound.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, TimeUnit,
    TimestampNanosecondType,
};
use datafusion::common::Result;
use datafusion::functions_nested::range::{gen_series_udf, range_udf};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

use crate::error::Error;
use crate::limits::SERIES_ELEMENTS_MAX;

/// Nanoseconds in the shortest day a time zone can have (a day with a
/// daylight-saving jump; no zone has jumped by more than two hours).
const SHORTEST_DAY_NS: i128 = 22 * 3600 * 1_000_000_000;
/// Days in the shortest month.
const SHORTEST_MONTH_DAYS: i128 = 28;
/// Nanoseconds in the longest day (a day with a two-hour jump back).
const LONGEST_DAY_NS: i128 = 26 * 3600 * 1_000_000_000;
/// Days in the longest month.
const LONGEST_MONTH_DAYS: i128 = 31;

/// `generate_series(start, stop[, step])` (upper bound included), bounded.
pub fn generate_series(elements_max: u64) -> ScalarUDF {
    ScalarUDF::new_from_impl(BoundedSeries::new(gen_series_udf(), true, elements_max))
}

/// `range(start, stop[, step])` (upper bound excluded), bounded.
pub fn range(elements_max: u64) -> ScalarUDF {
    ScalarUDF::new_from_impl(BoundedSeries::new(range_udf(), false, elements_max))
}

/// Both functions with the default limit.
pub fn functions() -> [ScalarUDF; 2] {
    [
        generate_series(SERIES_ELEMENTS_MAX),
        range(SERIES_ELEMENTS_MAX),
    ]
}

/// DataFusion's series function behind an element count check.
#[derive(Debug, PartialEq, Eq, Hash)]
struct BoundedSeries {
    inner: Arc<ScalarUDF>,
    include_upper_bound: bool,
    elements_max: u64,
}

impl BoundedSeries {
    fn new(inner: Arc<ScalarUDF>, include_upper_bound: bool, elements_max: u64) -> Self {
        Self {
            inner,
            include_upper_bound,
            elements_max,
        }
    }

    /// Refuse the call if its rows together would produce too many elements.
    fn check(&self, args: &[ColumnarValue]) -> Result<()> {
        if args.iter().any(|a| a.data_type().is_null()) {
            return Ok(()); // the result is NULL
        }
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let mut budget = Budget {
            function: self.inner.name(),
            left: self.elements_max,
            limit: self.elements_max,
        };
        match arrays[0].data_type() {
            DataType::Int64 => self.count_integers(&arrays, &mut budget),
            DataType::Date32 | DataType::Date64 => self.count_dates(&arrays, &mut budget),
            DataType::Timestamp(..) => self.count_timestamps(&arrays, &mut budget),
            // Anything else is refused by DataFusion's implementation.
            _ => Ok(()),
        }
    }

    fn count_integers(&self, arrays: &[ArrayRef], budget: &mut Budget<'_>) -> Result<()> {
        let int64 = |a: &ArrayRef| a.as_primitive_opt::<Int64Type>().cloned();
        let (start, stop, step) = match arrays {
            [stop] => (None, int64(stop), None),
            [start, stop] => (int64(start), int64(stop), None),
            [start, stop, step] => (int64(start), int64(stop), int64(step)),
            _ => return Ok(()), // DataFusion reports the wrong argument count
        };
        let Some(stop) = stop else { return Ok(()) };
        for row in 0..stop.len() {
            let value = |a: &Option<arrow::array::Int64Array>, default| match a {
                None => Some(default),
                Some(a) => a.is_valid(row).then(|| a.value(row)),
            };
            let (Some(start), Some(step)) = (value(&start, 0), value(&step, 1)) else {
                continue;
            };
            if stop.is_null(row) {
                continue;
            }
            budget.take(integer_count(
                start,
                stop.value(row),
                step,
                self.include_upper_bound,
            ))?;
        }
        Ok(())
    }

    fn count_dates(&self, arrays: &[ArrayRef], budget: &mut Budget<'_>) -> Result<()> {
        let [start, stop, step] = arrays else {
            return Ok(());
        };
        let (start, stop) = (
            cast(start, &DataType::Date32)?,
            cast(stop, &DataType::Date32)?,
        );
        let (start, stop) = (
            start.as_primitive::<Date32Type>(),
            stop.as_primitive::<Date32Type>(),
        );
        let Some(step) = step.as_primitive_opt::<IntervalMonthDayNanoType>() else {
            return Ok(());
        };
        for row in 0..stop.len() {
            if start.is_null(row) || stop.is_null(row) || step.is_null(row) {
                continue;
            }
            let series = DateSeries {
                start: start.value(row),
                stop: stop.value(row),
                step: step.value(row),
                include_upper_bound: self.include_upper_bound,
            };
            budget.take_with(series.bounds(), |cap| series.count(cap))?;
        }
        Ok(())
    }

    fn count_timestamps(&self, arrays: &[ArrayRef], budget: &mut Budget<'_>) -> Result<()> {
        let [start, stop, step] = arrays else {
            return Ok(());
        };
        let (start, stop) = (to_nanoseconds(start)?, to_nanoseconds(stop)?);
        let (start, stop) = (
            start.as_primitive::<TimestampNanosecondType>(),
            stop.as_primitive::<TimestampNanosecondType>(),
        );
        let Some(step) = step.as_primitive_opt::<IntervalMonthDayNanoType>() else {
            return Ok(());
        };
        let Ok(zone) = Tz::from_str(start.timezone().unwrap_or("+00")) else {
            return Ok(()); // DataFusion reports the bad time zone
        };
        for row in 0..start.len() {
            if start.is_null(row) || stop.is_null(row) || step.is_null(row) {
                continue;
            }
            let series = TimestampSeries {
                start: start.value(row),
                stop: stop.value(row),
                step: step.value(row),
                zone,
                include_upper_bound: self.include_upper_bound,
            };
            budget.take_with(series.bounds(), |cap| series.count(cap))?;
        }
        Ok(())
    }
}

impl ScalarUDFImpl for BoundedSeries {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args.args)?;
        self.inner.invoke_with_args(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// Elements one call may still produce.
struct Budget<'a> {
    function: &'a str,
    left: u64,
    limit: u64,
}

impl Budget<'_> {
    fn take(&mut self, elements: u64) -> Result<()> {
        match self.left.checked_sub(elements) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(Error::SeriesTooLong {
                function: self.function.to_string(),
                limit: self.limit,
            }
            .into()),
        }
    }

    /// Take the most elements `bounds` allows if that fits, refuse if the
    /// fewest does not, else take the exact count (counted up to what is
    /// left plus one, so at most that much work).
    fn take_with(&mut self, bounds: Option<Bounds>, count: impl FnOnce(u64) -> u64) -> Result<()> {
        match bounds {
            Some(b) if b.most <= self.left => self.take(b.most),
            Some(b) if b.fewest > self.left => self.take(b.fewest),
            _ => self.take(count(self.left.saturating_add(1))),
        }
    }
}

/// The elements `generate_series` / `range` produce for integers (the same
/// arithmetic as DataFusion's `generate_range_values`).
fn integer_count(start: i64, stop: i64, step: i64, include_upper_bound: bool) -> u64 {
    if step == 0 || (!include_upper_bound && start == stop) {
        return 0; // step 0 is DataFusion's error to report
    }
    let limit = match (include_upper_bound, step > 0) {
        (true, _) => stop,
        (false, true) => stop.saturating_sub(1),
        (false, false) => stop.saturating_add(1),
    };
    if (step > 0 && start > limit) || (step < 0 && start < limit) {
        return 0;
    }
    (start.abs_diff(limit) / step.unsigned_abs()).saturating_add(1)
}

/// Timestamps of other units are counted in nanoseconds, as DataFusion computes them.
fn to_nanoseconds(array: &ArrayRef) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Ok(array.clone()),
        DataType::Timestamp(_, zone) => Ok(cast(
            array,
            &DataType::Timestamp(TimeUnit::Nanosecond, zone.clone()),
        )?),
        other => Err(datafusion::common::DataFusionError::Internal(format!(
            "series of {other} counted as timestamps"
        ))),
    }
}

/// The fewest and the most elements a series can have.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    fewest: u64,
    most: u64,
}

/// Bounds on the elements of a series from `from` towards `to` whose steps
/// are between `step_min` and `step_max` long (both positive); None when
/// they do not fit in 64 bits (then the elements are counted one by one).
fn steps_bounds(from: i128, to: i128, step_min: i128, step_max: i128) -> Option<Bounds> {
    if step_min <= 0 || step_max < step_min {
        return None;
    }
    if to < from {
        return Some(Bounds { fewest: 0, most: 1 });
    }
    let span = to - from;
    let most = u64::try_from(span / step_min).ok()?.checked_add(1)?;
    // The fewest is not exact at the end (a range may stop one short).
    let fewest = u64::try_from(span / step_max).ok()?;
    Some(Bounds { fewest, most })
}

/// One row of a date series (DataFusion's `gen_range_date`).
struct DateSeries {
    start: i32,
    stop: i32,
    step: IntervalMonthDayNano,
    include_upper_bound: bool,
}

impl DateSeries {
    /// Bounds on the elements, when months and days point the same way.
    fn bounds(&self) -> Option<Bounds> {
        let (months, days) = (i128::from(self.step.months), i128::from(self.step.days));
        let shortest = months * SHORTEST_MONTH_DAYS + days;
        let longest = months * LONGEST_MONTH_DAYS + days;
        let (start, stop) = (i128::from(self.start), i128::from(self.stop));
        match (months >= 0 && days >= 0, months <= 0 && days <= 0) {
            (true, _) => steps_bounds(start, stop, shortest, longest),
            (_, true) => steps_bounds(stop, start, -shortest, -longest),
            _ => None,
        }
    }

    /// The exact count, stopping at `cap`.
    fn count(&self, cap: u64) -> u64 {
        let IntervalMonthDayNano { months, days, .. } = self.step;
        if months == 0 && days == 0 {
            return 0; // DataFusion's error to report
        }
        let stop = match self.include_upper_bound {
            true => Some(self.stop),
            false => Date32Type::subtract_month_day_nano_opt(self.stop, self.step),
        };
        let Some(stop) = stop else { return 0 };
        let backwards = months < 0 || days < 0;
        let mut current = Some(self.start);
        let mut count = 0;
        while let Some(date) = current {
            if count >= cap || (backwards && date < stop) || (!backwards && date > stop) {
                break;
            }
            count += 1;
            current = Date32Type::add_month_day_nano_opt(date, self.step);
        }
        count
    }
}

/// One row of a timestamp series (DataFusion's `gen_range_timestamp`).
struct TimestampSeries {
    start: i64,
    stop: i64,
    step: IntervalMonthDayNano,
    zone: Tz,
    include_upper_bound: bool,
}

impl TimestampSeries {
    /// Bounds on the elements, when every part of the step points the same way.
    fn bounds(&self) -> Option<Bounds> {
        let IntervalMonthDayNano {
            months,
            days,
            nanoseconds,
        } = self.step;
        let (months, days, nanoseconds) = (
            i128::from(months),
            i128::from(days),
            i128::from(nanoseconds),
        );
        let shortest_days = months * SHORTEST_MONTH_DAYS + days;
        let longest_days = months * LONGEST_MONTH_DAYS + days;
        let shortest = shortest_days * SHORTEST_DAY_NS + nanoseconds;
        let longest = longest_days * LONGEST_DAY_NS + nanoseconds;
        let (start, stop) = (i128::from(self.start), i128::from(self.stop));
        let parts = [months, days, nanoseconds];
        match (parts.iter().all(|p| *p >= 0), parts.iter().all(|p| *p <= 0)) {
            (true, _) => steps_bounds(start, stop, shortest, longest),
            (_, true) => steps_bounds(stop, start, -shortest, -longest),
            _ => None,
        }
    }

    /// The exact count, stopping at `cap`.
    fn count(&self, cap: u64) -> u64 {
        let add = |t| TimestampNanosecondType::add_month_day_nano(t, self.step, self.zone);
        let IntervalMonthDayNano {
            months,
            days,
            nanoseconds,
        } = self.step;
        if months == 0 && days == 0 && nanoseconds == 0 {
            return 0; // DataFusion's error to report
        }
        let Some(first_step) = add(self.start) else {
            return 0; // DataFusion's error to report
        };
        let backwards = first_step < self.start;
        let mut current = self.start;
        let mut count = 0;
        while count < cap {
            let ended = match (self.include_upper_bound, backwards) {
                (true, true) => current < self.stop,
                (true, false) => current > self.stop,
                (false, true) => current <= self.stop,
                (false, false) => current >= self.stop,
            };
            if ended {
                break;
            }
            count += 1;
            match add(current) {
                Some(next) => current = next,
                None => break,
            }
        }
        count
    }
}

#[cfg(test)]
mod tests;
