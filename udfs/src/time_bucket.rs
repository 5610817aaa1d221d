//! `time_bucket`: the start of the bucket a time falls into, with
//! TimescaleDB's semantics.
//!
//! - `time_bucket(width, ts)`: `ts` is a `TIMESTAMP`, `TIMESTAMPTZ`
//!   (bucketed in UTC) or `DATE`, `width` an interval (a string such as
//!   `'5 minutes'` is read as one). Buckets shorter than a month are
//!   counted from the origin 2000-01-03 (a Monday, so weeks start on
//!   Mondays); month and year buckets from 2000-01-01, by calendar months.
//!   A width mixing months with days or time is refused, as is a width of
//!   zero or less, and a width below a day for a `DATE`.
//! - a third argument that is an interval is an *offset* (buckets shifted
//!   by it), one that is a time or date is the *origin*, one that is text
//!   is a *time zone* (`TIMESTAMPTZ` only): buckets then start at the
//!   zone's local midnight, and the result is the UTC instant of that
//!   local start. After a time zone may come an origin and an offset.
//! - `time_bucket(width, n [, offset])` on integers: `n` rounded down to
//!   a multiple of `width` (after the offset).
//!
//! NULL in any argument gives NULL.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int64Array, PrimitiveArray, TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
    TimestampMicrosecondType,
};
use chrono::{Datelike, Months, NaiveDateTime, TimeZone};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// µs in a day.
const DAY_US: i64 = 86_400_000_000;
/// The default origin of buckets shorter than a month: 2000-01-03 00:00, a Monday.
const ORIGIN_US: i64 = 946_857_600_000_000;
/// The default origin of month buckets: 2000-01-01 00:00.
const MONTH_ORIGIN_US: i64 = 946_684_800_000_000;

/// The `time_bucket` function.
pub fn time_bucket() -> ScalarUDF {
    ScalarUDF::new_from_impl(TimeBucket {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TimeBucket {
    signature: Signature,
}

/// What the arguments after the time are, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    Offset,
    Origin,
    Zone,
}

fn extras(arg_types: &[DataType]) -> Result<Vec<Extra>> {
    let mut extras = Vec::new();
    for (i, t) in arg_types.iter().enumerate().skip(2) {
        let extra = match t {
            DataType::Interval(_) => Extra::Offset,
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => Extra::Origin,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View if i == 2 => Extra::Zone,
            other => return plan_err!("time_bucket: argument {} may not be {other}", i + 1),
        };
        extras.push(extra);
    }
    let allowed = [
        &[][..],
        &[Extra::Offset],
        &[Extra::Origin],
        &[Extra::Zone],
        &[Extra::Zone, Extra::Origin],
        &[Extra::Zone, Extra::Origin, Extra::Offset],
    ];
    if !allowed.contains(&extras.as_slice()) {
        return plan_err!(
            "time_bucket takes (width, time [, offset | origin | timezone [, origin [, offset]]])"
        );
    }
    Ok(extras)
}

impl ScalarUDFImpl for TimeBucket {
    fn name(&self) -> &str {
        "time_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if !(2..=5).contains(&arg_types.len()) {
            return plan_err!("time_bucket takes 2 to 5 arguments");
        }
        if arg_types[0].is_integer() && arg_types[1].is_integer() {
            if arg_types.len() > 3 || arg_types.get(2).is_some_and(|t| !t.is_integer()) {
                return plan_err!("time_bucket on integers takes (width, value [, offset])");
            }
            // The value's type throughout, as TimescaleDB's overloads.
            return Ok(vec![arg_types[1].clone(); arg_types.len()]);
        }
        let interval = DataType::Interval(IntervalUnit::MonthDayNano);
        let time = match &arg_types[1] {
            DataType::Date32 | DataType::Date64 => DataType::Date32,
            DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            }
            other => return plan_err!("time_bucket cannot bucket {other}"),
        };
        let mut coerced = vec![interval.clone(), time.clone()];
        for (extra, t) in extras(arg_types)?.into_iter().zip(&arg_types[2..]) {
            coerced.push(match extra {
                Extra::Offset => interval.clone(),
                Extra::Zone => DataType::Utf8,
                Extra::Origin if matches!(time, DataType::Date32) => DataType::Date32,
                Extra::Origin => match t {
                    DataType::Timestamp(_, tz) => {
                        DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
                    }
                    _ => DataType::Timestamp(TimeUnit::Microsecond, None),
                },
            });
        }
        Ok(coerced)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[1].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        // Constant arguments: one bucket, not one per row.
        let rows = if all_scalar { 1 } else { args.number_rows };
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<_>>()?;
        let result = if arrays[0].data_type().is_integer() {
            bucket_integers(&arrays)?
        } else {
            let types: Vec<DataType> = arrays.iter().map(|a| a.data_type().clone()).collect();
            bucket_times(&arrays, &extras(&types)?)?
        };
        if all_scalar {
            let scalar = datafusion::common::ScalarValue::try_from_array(&result, 0)?;
            return Ok(ColumnarValue::Scalar(scalar));
        }
        Ok(ColumnarValue::Array(result))
    }
}

/// Integer buckets, in the value's own type: a bucket outside it (or an
/// offset that takes the value outside it) is refused.
fn bucket_integers(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let kind = arrays[1].data_type().clone();
    let (low, high) = integer_range(&kind)?;
    let wide: Vec<ArrayRef> = arrays
        .iter()
        .map(|a| cast(a, &DataType::Int64))
        .collect::<std::result::Result<_, _>>()?;
    let width = wide[0].as_primitive::<Int64Type>();
    let value = wide[1].as_primitive::<Int64Type>();
    let offset = wide.get(2).map(|a| a.as_primitive::<Int64Type>());
    let mut out = Vec::with_capacity(value.len());
    for i in 0..value.len() {
        if width.is_null(i) || value.is_null(i) || offset.is_some_and(|o| o.is_null(i)) {
            out.push(None);
            continue;
        }
        let (w, v) = (width.value(i) as i128, value.value(i) as i128);
        let o = offset.map_or(0, |o| o.value(i) as i128);
        if w <= 0 {
            return exec_err!("time_bucket: the bucket width must be greater than 0");
        }
        let shifted = v - o;
        let bucket = shifted.div_euclid(w) * w + o;
        if !(low..=high).contains(&shifted) || !(low..=high).contains(&bucket) {
            return exec_err!("time_bucket: the bucket of {v} is out of range for {kind}");
        }
        out.push(Some(bucket as i64));
    }
    Ok(cast(&Int64Array::from(out), &kind)?)
}

fn integer_range(kind: &DataType) -> Result<(i128, i128)> {
    Ok(match kind {
        DataType::Int8 => (i8::MIN as i128, i8::MAX as i128),
        DataType::Int16 => (i16::MIN as i128, i16::MAX as i128),
        DataType::Int32 => (i32::MIN as i128, i32::MAX as i128),
        DataType::Int64 => (i64::MIN as i128, i64::MAX as i128),
        DataType::UInt8 => (0, u8::MAX as i128),
        DataType::UInt16 => (0, u16::MAX as i128),
        DataType::UInt32 => (0, u32::MAX as i128),
        other => return exec_err!("time_bucket cannot bucket {other}"),
    })
}

/// What one row asks for, times in µs of local wall time.
struct Row {
    width: IntervalMonthDayNano,
    time: i64,
    origin: Option<i64>,
    offset: Option<IntervalMonthDayNano>,
}

fn bucket_times(arrays: &[ArrayRef], extras: &[Extra]) -> Result<ArrayRef> {
    let width = arrays[0].as_primitive::<IntervalMonthDayNanoType>();
    let is_date = matches!(arrays[1].data_type(), DataType::Date32);
    let times = micros(&arrays[1])?;
    let find = |e: Extra| {
        extras
            .iter()
            .position(|x| *x == e)
            .map(|p| arrays[p + 2].clone())
    };
    let offsets = find(Extra::Offset);
    let offsets = offsets
        .as_ref()
        .map(|a| a.as_primitive::<IntervalMonthDayNanoType>());
    let origins = find(Extra::Origin).map(|a| micros(&a)).transpose()?;
    let zones = find(Extra::Zone);
    let zones = zones.as_ref().map(|a| a.as_string::<i32>());
    let mut out: Vec<Option<i64>> = Vec::with_capacity(times.len());
    let mut parsed: Option<(String, Tz)> = None;
    for i in 0..times.len() {
        let nulls = [
            width.is_null(i),
            times.is_null(i),
            offsets.is_some_and(|o| o.is_null(i)),
            origins.as_ref().is_some_and(|o| o.is_null(i)),
            zones.is_some_and(|z| z.is_null(i)),
        ];
        if nulls.contains(&true) {
            out.push(None);
            continue;
        }
        // Zones repeat (usually one per call): each name is parsed once.
        let zone = match zones.map(|z| z.value(i)) {
            Some(name) if parsed.as_ref().is_none_or(|(n, _)| n != name) => {
                parsed = Some((name.to_string(), parse_zone(name)?));
                parsed.as_ref().map(|(_, tz)| *tz)
            }
            Some(_) => parsed.as_ref().map(|(_, tz)| *tz),
            None => None,
        };
        let local = |us: i64| zone.as_ref().map_or(Ok(us), |tz| to_local(tz, us));
        let row = Row {
            width: width.value(i),
            time: local(times.value(i))?,
            origin: origins.as_ref().map(|o| local(o.value(i))).transpose()?,
            offset: offsets.map(|o| o.value(i)),
        };
        if is_date && (row.width.nanoseconds != 0) {
            return exec_err!("time_bucket: a bucket width for dates must be whole days");
        }
        let start = bucket(&row)?;
        out.push(Some(match &zone {
            Some(tz) => from_local(tz, start)?,
            None => start,
        }));
    }
    if is_date {
        let days: Date32Array = out
            .into_iter()
            .map(|us| us.map(|us| us.div_euclid(DAY_US) as i32))
            .collect();
        return Ok(Arc::new(days));
    }
    let timestamps: TimestampMicrosecondArray = out.into_iter().collect();
    Ok(Arc::new(
        timestamps.with_data_type(arrays[1].data_type().clone()),
    ))
}

/// A time or date column as µs since the epoch.
fn micros(array: &ArrayRef) -> Result<PrimitiveArray<TimestampMicrosecondType>> {
    let as_us = match array.data_type() {
        DataType::Date32 => {
            let days = array.as_primitive::<arrow::datatypes::Date32Type>();
            let us: TimestampMicrosecondArray =
                days.iter().map(|d| d.map(|d| d as i64 * DAY_US)).collect();
            Arc::new(us) as ArrayRef
        }
        _ => cast(array, &DataType::Timestamp(TimeUnit::Microsecond, None))?,
    };
    Ok(as_us.as_primitive::<TimestampMicrosecondType>().clone())
}

/// The start of the bucket `row.time` falls into.
fn bucket(row: &Row) -> Result<i64> {
    let width = row.width;
    if width.months < 0 || width.days < 0 || width.nanoseconds < 0 {
        return exec_err!("time_bucket: the bucket width must be greater than 0");
    }
    let offset = match row.offset {
        Some(o) if o.months != 0 => {
            return exec_err!("time_bucket: an offset in months is not supported");
        }
        Some(o) => o.days as i128 * DAY_US as i128 + o.nanoseconds as i128 / 1000,
        None => 0,
    };
    let time = row.time as i128 - offset;
    let start = if width.months != 0 {
        if width.days != 0 || width.nanoseconds != 0 {
            return exec_err!("time_bucket: a month interval cannot have a day or time component");
        }
        let origin = row.origin.unwrap_or(MONTH_ORIGIN_US) as i128;
        month_bucket(width.months, clamp(time)?, clamp(origin)?)? as i128
    } else {
        let width_us = width.days as i128 * DAY_US as i128 + width.nanoseconds as i128 / 1000;
        if width_us <= 0 {
            return exec_err!("time_bucket: the bucket width must be greater than 0");
        }
        let origin = row.origin.unwrap_or(ORIGIN_US) as i128;
        origin + (time - origin).div_euclid(width_us) * width_us
    };
    clamp(start + offset)
}

fn clamp(us: i128) -> Result<i64> {
    match i64::try_from(us) {
        Ok(us) => Ok(us),
        Err(_) => exec_err!("time_bucket: the bucket is out of range"),
    }
}

/// Calendar-month buckets of `months` counted from `origin`.
fn month_bucket(months: i32, time: i64, origin: i64) -> Result<i64> {
    let (Some(t), Some(o)) = (naive(time), naive(origin)) else {
        return exec_err!("time_bucket: the time is out of range");
    };
    let mut delta =
        (t.year() as i64 * 12 + t.month0() as i64) - (o.year() as i64 * 12 + o.month0() as i64);
    if add_months(o, delta).is_some_and(|c| c > t) {
        delta -= 1;
    }
    let start = add_months(o, delta.div_euclid(months as i64) * months as i64);
    match start {
        Some(start) => Ok(start.and_utc().timestamp_micros()),
        None => exec_err!("time_bucket: the bucket is out of range"),
    }
}

fn naive(us: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.naive_utc())
}

fn add_months(t: NaiveDateTime, months: i64) -> Option<NaiveDateTime> {
    let count = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    if months >= 0 {
        t.checked_add_months(count)
    } else {
        t.checked_sub_months(count)
    }
}

fn parse_zone(name: &str) -> Result<Tz> {
    match Tz::from_str(name) {
        Ok(tz) => Ok(tz),
        Err(_) => exec_err!("time_bucket: unknown time zone {name:?}"),
    }
}

/// The local wall time in `tz` of the UTC instant `us`, as µs.
fn to_local(tz: &Tz, us: i64) -> Result<i64> {
    let Some(utc) = chrono::DateTime::from_timestamp_micros(us) else {
        return exec_err!("time_bucket: the time is out of range");
    };
    Ok(utc
        .with_timezone(tz)
        .naive_local()
        .and_utc()
        .timestamp_micros())
}

/// The UTC instant of local wall time `us` in `tz`: the earlier of two
/// (a clock turned back), or the first after a gap (a clock turned forward).
fn from_local(tz: &Tz, us: i64) -> Result<i64> {
    let Some(local) = naive(us) else {
        return exec_err!("time_bucket: the bucket is out of range");
    };
    for shift in [0, 1, 2] {
        let candidate = local + chrono::Duration::hours(shift);
        if let Some(t) = tz.from_local_datetime(&candidate).earliest() {
            return Ok(t.timestamp_micros());
        }
    }
    exec_err!("time_bucket: {local} does not exist in the time zone")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    fn row(width: IntervalMonthDayNano, time: &str) -> Row {
        Row {
            width,
            time: at(time),
            origin: None,
            offset: None,
        }
    }

    #[test]
    fn origins_are_timescaledbs() {
        assert_eq!(ORIGIN_US, at("2000-01-03 00:00:00"));
        assert_eq!(MONTH_ORIGIN_US, at("2000-01-01 00:00:00"));
    }

    #[test]
    fn months_count_from_the_origin_month() {
        let quarter = IntervalMonthDayNano::new(3, 0, 0);
        let got = bucket(&row(quarter, "2021-08-01 00:00:00")).unwrap();
        assert_eq!(got, at("2021-07-01 00:00:00"));
        let year = IntervalMonthDayNano::new(12, 0, 0);
        let got = bucket(&row(year, "1999-12-31 23:59:59")).unwrap();
        assert_eq!(got, at("1999-01-01 00:00:00"));
        let mixed = IntervalMonthDayNano::new(1, 1, 0);
        assert!(bucket(&row(mixed, "2021-08-01 00:00:00")).is_err());
    }
}
