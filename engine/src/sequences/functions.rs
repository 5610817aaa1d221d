//! `nextval('s')`, `currval('s')`, `setval('s', v [, is_called])` and
//! `lastval()`, registered per session: `currval` and `lastval` report what
//! *this* session last got, as in PostgreSQL. `nextval` takes one batch of
//! values per call, so `INSERT … SELECT nextval('s') …` and `SERIAL`
//! defaults over many rows reserve them together.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;
use parking_lot::Mutex;

use crate::catalog::SequenceDef;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::temporal::StatementSnapshot;

/// What a session's sequence functions share.
#[derive(Debug)]
struct SequenceContext {
    db: Database,
    snapshot: Arc<StatementSnapshot>,
    /// The last value this session got from each sequence, and from any.
    current: Mutex<(HashMap<u64, i64>, Option<i64>)>,
}

impl SequenceContext {
    /// The sequence a `'name'` argument names, as the current statement sees the catalog.
    fn resolve(&self, text: &str) -> Result<SequenceDef> {
        let name = sequence_name(text);
        let view = self.snapshot.view();
        let seq = match &view {
            Some(view) => view.seq,
            None => self.db.visible_seq(),
        };
        self.db
            .sequence_in(&name, seq, view.as_deref())
            .ok_or(Error::UnknownTable {
                name,
                context: String::new(),
            })
    }

    fn remember(&self, def: &SequenceDef, value: i64) {
        let mut current = self.current.lock();
        current.0.insert(def.id, value);
        current.1 = Some(value);
    }
}

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Next,
    Current,
    Set,
    Last,
}

#[derive(Debug)]
struct SequenceFunction {
    kind: Kind,
    context: Arc<SequenceContext>,
    signature: Signature,
}

impl PartialEq for SequenceFunction {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Arc::ptr_eq(&self.context, &other.context)
    }
}

impl Eq for SequenceFunction {}

impl Hash for SequenceFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        (Arc::as_ptr(&self.context) as usize).hash(state);
    }
}

/// Register the four functions on `ctx` for a session reading through `snapshot`.
pub fn register(ctx: &SessionContext, db: &Database, snapshot: Arc<StatementSnapshot>) {
    let context = Arc::new(SequenceContext {
        db: db.clone(),
        snapshot,
        current: Mutex::default(),
    });
    let text = || [DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8];
    let exact = |args: &[&[DataType]]| {
        let mut signatures = Vec::new();
        for name_type in text() {
            for tail in args {
                let mut types = vec![name_type.clone()];
                types.extend(tail.iter().cloned());
                signatures.push(TypeSignature::Exact(types));
            }
        }
        Signature::one_of(signatures, Volatility::Volatile)
    };
    let functions = [
        (Kind::Next, exact(&[&[]])),
        (Kind::Current, exact(&[&[]])),
        (
            Kind::Set,
            exact(&[&[DataType::Int64], &[DataType::Int64, DataType::Boolean]]),
        ),
        (Kind::Last, Signature::exact(vec![], Volatility::Volatile)),
    ];
    for (kind, signature) in functions {
        ctx.register_udf(ScalarUDF::new_from_impl(SequenceFunction {
            kind,
            context: context.clone(),
            signature,
        }));
    }
}

impl ScalarUDFImpl for SequenceFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Next => "nextval",
            Kind::Current => "currval",
            Kind::Set => "setval",
            Kind::Last => "lastval",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let values = match self.kind {
            Kind::Next => self.next_values(&args.args, rows),
            Kind::Current => self.current_values(&args.args, rows),
            Kind::Set => self.set_values(&args.args, rows),
            Kind::Last => self.last_values(rows),
        }
        .map_err(Error::into_datafusion)?;
        Ok(ColumnarValue::Array(Arc::new(Int64Array::from(values))))
    }
}

impl SequenceFunction {
    fn next_values(&self, args: &[ColumnarValue], rows: usize) -> Result<Vec<i64>> {
        match &args[0] {
            ColumnarValue::Scalar(name) => self.take(&name.to_string(), rows),
            ColumnarValue::Array(names) => {
                let mut values = Vec::with_capacity(rows);
                for name in strings(names)? {
                    values.extend(self.take(&name, 1)?);
                }
                Ok(values)
            }
        }
    }

    /// The next `count` values of sequence `name`; the last becomes this session's `currval`.
    fn take(&self, name: &str, count: usize) -> Result<Vec<i64>> {
        let context = &self.context;
        let def = context.resolve(name)?;
        let values = context.db.sequence_positions().next_values(&def, count)?;
        if let Some(last) = values.last() {
            context.remember(&def, *last);
        }
        Ok(values)
    }

    fn current_values(&self, args: &[ColumnarValue], rows: usize) -> Result<Vec<i64>> {
        let names = column_strings(&args[0], rows)?;
        names
            .iter()
            .map(|name| {
                let def = self.context.resolve(name)?;
                let current = self.context.current.lock().0.get(&def.id).copied();
                current.ok_or_else(|| Error::ObjectNotInPrerequisiteState {
                    message: format!(
                        "currval of sequence \"{}\" is not yet defined in this session",
                        def.name
                    ),
                })
            })
            .collect()
    }

    fn set_values(&self, args: &[ColumnarValue], rows: usize) -> Result<Vec<i64>> {
        let names = column_strings(&args[0], rows)?;
        let values = args[1].clone().into_array(rows)?;
        let values = values.as_primitive::<arrow::datatypes::Int64Type>();
        let called = match args.get(2) {
            Some(flag) => Some(flag.clone().into_array(rows)?),
            None => None,
        };
        let mut out = Vec::with_capacity(rows);
        for (row, name) in names.iter().enumerate() {
            if values.is_null(row) {
                return Err(Error::InvalidArgument {
                    message: "setval needs a value".into(),
                });
            }
            let value = values.value(row);
            let is_called = called
                .as_ref()
                .map(|c| c.as_boolean().value(row))
                .unwrap_or(true);
            let def = self.context.resolve(name)?;
            self.context
                .db
                .sequence_positions()
                .set(&def, value, is_called)?;
            if is_called {
                self.context.remember(&def, value);
            }
            out.push(value);
        }
        Ok(out)
    }

    fn last_values(&self, rows: usize) -> Result<Vec<i64>> {
        let last = self.context.current.lock().1;
        let last = last.ok_or_else(|| Error::ObjectNotInPrerequisiteState {
            message: "lastval is not yet defined in this session".into(),
        })?;
        Ok(vec![last; rows])
    }
}

/// A text argument as one string per row.
fn column_strings(value: &ColumnarValue, rows: usize) -> Result<Vec<String>> {
    match value {
        ColumnarValue::Scalar(name) => Ok(vec![name.to_string(); rows]),
        ColumnarValue::Array(names) => strings(names),
    }
}

fn strings(array: &ArrayRef) -> Result<Vec<String>> {
    let utf8 = arrow::compute::cast(array, &DataType::Utf8)?;
    Ok(utf8
        .as_string::<i32>()
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}

/// The sequences a stored DEFAULT takes values from (`nextval('s')`).
pub fn sequences_named_by(default: &str) -> Vec<String> {
    crate::sql::parser::function_string_args(default, "nextval")
        .iter()
        .map(|arg| sequence_name(arg))
        .collect()
}

/// The sequence a text argument names: `s`, `public.s` or `"MixedCase"`
/// (unquoted names fold to lower case, as identifiers do).
fn sequence_name(text: &str) -> String {
    let text = text.trim();
    let text = text.strip_prefix("public.").unwrap_or(text);
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => text.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::sequence_name;

    #[test]
    fn names_fold_like_identifiers() {
        assert_eq!(sequence_name("Orders_ID_seq"), "orders_id_seq");
        assert_eq!(sequence_name("public.s"), "s");
        assert_eq!(sequence_name("\"MixedCase\""), "MixedCase");
    }
}
