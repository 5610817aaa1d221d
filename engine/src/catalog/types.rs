//! SQL column types and their Arrow representation.

use arrow::datatypes::{DataType, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::limits::DECIMAL_DIGITS_MAX;

/// The column types DriftDB stores. Each maps to exactly one Arrow type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SqlType {
    Boolean,
    SmallInt,
    Int,
    BigInt,
    Real,
    Double,
    Decimal { precision: u8, scale: i8 },
    Text { max_len: Option<u32> },
    Bytea,
    Date,
    Time,
    Timestamp,
    TimestampTz,
}

impl SqlType {
    /// The Arrow type values of this SQL type are stored as.
    pub fn arrow_type(&self) -> DataType {
        match self {
            SqlType::Boolean => DataType::Boolean,
            SqlType::SmallInt => DataType::Int16,
            SqlType::Int => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Real => DataType::Float32,
            SqlType::Double => DataType::Float64,
            SqlType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            SqlType::Text { .. } => DataType::Utf8,
            SqlType::Bytea => DataType::Binary,
            SqlType::Date => DataType::Date32,
            SqlType::Time => DataType::Time64(TimeUnit::Microsecond),
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            SqlType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }

    /// The SQL type a query result column of `data_type` is stored as (CREATE TABLE AS).
    pub fn from_arrow(column: &str, data_type: &DataType) -> Result<Self> {
        Ok(match data_type {
            DataType::Boolean => SqlType::Boolean,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => SqlType::SmallInt,
            DataType::Int32 | DataType::UInt16 => SqlType::Int,
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 | DataType::Null => {
                SqlType::BigInt
            }
            DataType::Float16 | DataType::Float32 => SqlType::Real,
            DataType::Float64 => SqlType::Double,
            DataType::Decimal128(p, s) => SqlType::Decimal {
                precision: *p,
                scale: *s,
            },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                SqlType::Text { max_len: None }
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Bytea,
            DataType::Date32 | DataType::Date64 => SqlType::Date,
            DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
            DataType::Timestamp(_, None) => SqlType::Timestamp,
            DataType::Timestamp(_, Some(_)) => SqlType::TimestampTz,
            DataType::Dictionary(_, values) => SqlType::from_arrow(column, values)?,
            other => {
                return Err(Error::UnsupportedType {
                    column: column.to_string(),
                    type_name: other.to_string(),
                });
            }
        })
    }

    /// Map a parsed SQL type onto a DriftDB type.
    pub fn from_sql(column: &str, sql: &sqlparser::ast::DataType) -> Result<Self> {
        // NUMERIC(p, s) as stored: 128-bit decimals, at most 38 digits.
        let decimal_type = |precision: u64, scale: i64| {
            if precision == 0 || precision > 1000 {
                return Err(Error::InvalidArgument {
                    message: format!("NUMERIC precision {precision} must be between 1 and 1000"),
                });
            }
            if precision > u64::from(DECIMAL_DIGITS_MAX) || scale < 0 || scale as u64 > precision {
                return Err(Error::unsupported(format!(
                    "NUMERIC({precision},{scale}) for column \"{column}\": DriftDB stores at most \
                     {DECIMAL_DIGITS_MAX} digits, with a scale from 0 to the precision"
                )));
            }
            Ok(SqlType::Decimal {
                precision: precision as u8,
                scale: scale as i8,
            })
        };
        use sqlparser::ast::{CharacterLength, DataType as S, ExactNumberInfo, TimezoneInfo};
        let char_len = |len: &Option<CharacterLength>| match len {
            Some(CharacterLength::IntegerLength { length, .. }) => Some(*length as u32),
            _ => None,
        };
        Ok(match sql {
            S::Boolean | S::Bool => SqlType::Boolean,
            S::SmallInt(_) | S::Int2(_) | S::TinyInt(_) => SqlType::SmallInt,
            S::Int(_) | S::Integer(_) | S::Int4(_) | S::MediumInt(_) => SqlType::Int,
            S::BigInt(_) | S::Int8(_) | S::Int64 => SqlType::BigInt,
            S::Real | S::Float4 | S::Float32 => SqlType::Real,
            S::Double(_) | S::DoublePrecision | S::Float8 | S::Float64 | S::Float(_) => {
                SqlType::Double
            }
            S::Decimal(info) | S::Numeric(info) | S::Dec(info) => match info {
                ExactNumberInfo::PrecisionAndScale(p, s) => decimal_type(*p, *s)?,
                ExactNumberInfo::Precision(p) => decimal_type(*p, 0)?,
                ExactNumberInfo::None => SqlType::Decimal {
                    precision: 38,
                    scale: 10,
                },
            },
            S::Text | S::String(_) => SqlType::Text { max_len: None },
            S::Varchar(len) | S::CharacterVarying(len) | S::CharVarying(len) | S::Nvarchar(len) => {
                SqlType::Text {
                    max_len: char_len(len),
                }
            }
            S::Char(len) | S::Character(len) => SqlType::Text {
                max_len: char_len(len),
            },
            S::Bytea | S::Blob(_) | S::Varbinary(_) | S::Binary(_) => SqlType::Bytea,
            S::Date => SqlType::Date,
            S::Time(_, _) => SqlType::Time,
            S::Timestamp(_, TimezoneInfo::Tz | TimezoneInfo::WithTimeZone) => SqlType::TimestampTz,
            S::Timestamp(_, _) | S::Datetime(_) => SqlType::Timestamp,
            S::TimestampNtz(_) => SqlType::Timestamp,
            other => {
                return Err(Error::UnsupportedType {
                    column: column.to_string(),
                    type_name: other.to_string(),
                });
            }
        })
    }

    /// The type's name as SQL prints it.
    pub fn sql_name(&self) -> String {
        match self {
            SqlType::Boolean => "BOOLEAN".into(),
            SqlType::SmallInt => "SMALLINT".into(),
            SqlType::Int => "INT".into(),
            SqlType::BigInt => "BIGINT".into(),
            SqlType::Real => "REAL".into(),
            SqlType::Double => "DOUBLE".into(),
            SqlType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            SqlType::Text { max_len: Some(n) } => format!("VARCHAR({n})"),
            SqlType::Text { max_len: None } => "TEXT".into(),
            SqlType::Bytea => "BYTEA".into(),
            SqlType::Date => "DATE".into(),
            SqlType::Time => "TIME".into(),
            SqlType::Timestamp => "TIMESTAMP".into(),
            SqlType::TimestampTz => "TIMESTAMPTZ".into(),
        }
    }
}
