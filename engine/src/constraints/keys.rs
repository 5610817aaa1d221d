//! Keys of rows under a primary key or UNIQUE constraint, and the hash
//! indexes over them.
//!
//! A key over one signed integer column (SMALLINT, INT, BIGINT — by far the
//! most common) is kept as a plain `i64`: a [`KeyColumn`] then borrows the
//! batch's own values buffer and a [`KeyIndex`] is an [`IntKeyIndex`]
//! (a hash map for single rows, sorted runs for bulk inserts), so a bulk
//! insert allocates nothing per row. Every other key (composite,
//! text, decimal, …) is encoded with the arrow row format, which compares
//! as bytes, and each row's encoding is a shared [`PkKey`].
//!
//! Both forms meet in [`Key`]: an index accepts either, so code that
//! only has row-format bytes (a FOREIGN KEY's referencing key, a key read
//! back from a transaction's own writes) looks up an integer index too.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, SortField};

use super::int_keys::IntKeyIndex;
use crate::error::Result;

/// Encoded key of one row (arrow row format); shared, so indexes clone it cheaply.
pub type PkKey = Arc<[u8]>;

/// Hash state for key maps and sets: SipHash dominated bulk inserts into
/// keyed tables; ahash is several times faster on short keys.
pub type KeyHash = ahash::RandomState;

/// The row-format byte that marks a present (non-NULL) value, ascending order.
const ROW_VALID: u8 = 1;

/// One row's key, in whichever form it was computed.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// A single signed integer column `width` bytes wide, widened to i64.
    Int { value: i64, width: u8 },
    /// Arrow row format.
    Encoded(&'a [u8]),
    /// Arrow row format, already shared (indexing it clones no bytes).
    Shared(&'a PkKey),
}

impl Key<'_> {
    /// The key as an integer, when it is one (decoding the row format if need be).
    fn as_int(&self) -> Option<i64> {
        match self {
            Key::Int { value, .. } => Some(*value),
            Key::Encoded(bytes) => decode_int(bytes),
            Key::Shared(key) => decode_int(key),
        }
    }

    /// The key in the arrow row format.
    pub fn to_encoded(&self) -> PkKey {
        match self {
            Key::Int { value, width } => encode_int(*value, *width),
            Key::Encoded(bytes) => PkKey::from(*bytes),
            Key::Shared(key) => PkKey::clone(key),
        }
    }
}

/// The row-format encoding of a signed integer `width` bytes wide:
/// the valid marker, then big-endian with the sign bit flipped.
fn encode_int(value: i64, width: u8) -> PkKey {
    let width = usize::from(width);
    let mut bytes = vec![ROW_VALID; 1 + width];
    bytes[1..].copy_from_slice(&value.to_be_bytes()[8 - width..]);
    bytes[1] ^= 0x80;
    bytes.into()
}

/// The integer behind a row-format encoding of one signed integer column;
/// None for anything else (a NULL, a composite or non-integer key).
fn decode_int(bytes: &[u8]) -> Option<i64> {
    let width = bytes.len().checked_sub(1)?;
    if bytes[0] != ROW_VALID || !matches!(width, 1 | 2 | 4 | 8) {
        return None;
    }
    let mut raw = [0u8; 8];
    raw[8 - width..].copy_from_slice(&bytes[1..]);
    raw[8 - width] ^= 0x80;
    // Sign-extend from `width` bytes.
    let shift = 64 - 8 * width as u32;
    Some((i64::from_be_bytes(raw) << shift) >> shift)
}

/// Byte width of a signed integer type that keys as an `i64`.
fn int_width(data_type: &DataType) -> Option<u8> {
    match data_type {
        DataType::Int8 => Some(1),
        DataType::Int16 => Some(2),
        DataType::Int32 => Some(4),
        DataType::Int64 => Some(8),
        _ => None,
    }
}

/// The keys of a run of rows under one key, computed once per batch.
#[derive(Debug, Clone)]
pub struct KeyColumn {
    keys: Keys,
    /// Rows whose key has a NULL (they hold no key: NULLs are distinct).
    nulls: Option<NullBuffer>,
}

#[derive(Debug, Clone)]
enum Keys {
    Int {
        values: ScalarBuffer<i64>,
        width: u8,
    },
    Encoded(Arc<[PkKey]>),
}

impl Default for KeyColumn {
    fn default() -> Self {
        Self::from_encoded(Vec::new())
    }
}

impl KeyColumn {
    /// The keys of every row of `columns` (the key's columns, in key order).
    pub fn encode(columns: &[ArrayRef]) -> Result<Self> {
        if let [column] = columns
            && let Some(width) = int_width(column.data_type())
        {
            let widened = cast(column, &DataType::Int64)?;
            let values = widened.as_primitive::<Int64Type>();
            return Ok(Self {
                keys: Keys::Int {
                    values: values.values().clone(),
                    width,
                },
                nulls: values.nulls().cloned(),
            });
        }
        let fields = columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect();
        let rows = RowConverter::new(fields)?.convert_columns(columns)?;
        let nulls = columns
            .iter()
            .fold(None, |acc, c| NullBuffer::union(acc.as_ref(), c.nulls()));
        Ok(Self {
            keys: Keys::Encoded(rows.iter().map(|row| row.as_ref().into()).collect()),
            nulls,
        })
    }

    /// Keys already in the row format, none NULL.
    pub fn from_encoded(keys: Vec<PkKey>) -> Self {
        Self {
            keys: Keys::Encoded(keys.into()),
            nulls: None,
        }
    }

    pub fn len(&self) -> usize {
        match &self.keys {
            Keys::Int { values, .. } => values.len(),
            Keys::Encoded(keys) => keys.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `row`'s key; None when it has a NULL (or there is no such row).
    pub fn get(&self, row: usize) -> Option<Key<'_>> {
        if row >= self.len() || self.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
            return None;
        }
        Some(match &self.keys {
            Keys::Int { values, width } => Key::Int {
                value: values[row],
                width: *width,
            },
            Keys::Encoded(keys) => Key::Shared(&keys[row]),
        })
    }

    /// Every row's key in order (None where it has a NULL).
    pub fn iter(&self) -> impl Iterator<Item = Option<Key<'_>>> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }

    /// Row `row`'s key in the row format; None when it has a NULL.
    pub fn encoded(&self, row: usize) -> Option<PkKey> {
        self.get(row).map(|k| k.to_encoded())
    }

    /// Every key that is not NULL, in the row format.
    pub fn encoded_keys(&self) -> impl Iterator<Item = PkKey> + '_ {
        (0..self.len()).filter_map(|row| self.encoded(row))
    }

    /// Rows `offset..offset + len`.
    pub fn slice(&self, offset: usize, len: usize) -> Self {
        let keys = match &self.keys {
            Keys::Int { values, width } => Keys::Int {
                values: values.slice(offset, len),
                width: *width,
            },
            Keys::Encoded(keys) => Keys::Encoded(keys[offset..offset + len].into()),
        };
        Self {
            keys,
            nulls: self.nulls.as_ref().map(|n| n.slice(offset, len)),
        }
    }

    /// The keys of the rows `rows` picks, in that order.
    pub fn select(&self, rows: impl Iterator<Item = usize>) -> Self {
        let rows: Vec<usize> = rows.collect();
        let keys = match &self.keys {
            Keys::Int { values, width } => Keys::Int {
                values: rows.iter().map(|row| values[*row]).collect(),
                width: *width,
            },
            Keys::Encoded(keys) => {
                Keys::Encoded(rows.iter().map(|row| keys[*row].clone()).collect())
            }
        };
        let nulls = self
            .nulls
            .as_ref()
            .map(|n| NullBuffer::from_iter(rows.iter().map(|row| n.is_valid(*row))));
        Self { keys, nulls }
    }
}

/// Key → live `_rowid` of one primary key or UNIQUE constraint.
#[derive(Debug, Clone)]
pub enum KeyIndex {
    /// A single signed integer column.
    Int(IntKeyIndex),
    /// Any other key, in the row format.
    Encoded(HashMap<PkKey, u64, KeyHash>),
}

impl KeyIndex {
    /// An empty index for a key over columns of `types`, in key order.
    pub fn for_types(types: &[DataType]) -> Self {
        match types {
            [one] if int_width(one).is_some() => KeyIndex::Int(IntKeyIndex::default()),
            _ => KeyIndex::Encoded(HashMap::default()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            KeyIndex::Int(index) => index.len(),
            KeyIndex::Encoded(map) => map.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index every key of `keys` (NULLs hold nothing) as held by
    /// `first_rowid + row`. Returns how many leading rows were indexed and
    /// the first row whose key some row already holds.
    pub fn insert_column(&mut self, keys: &KeyColumn, first_rowid: u64) -> (usize, Option<usize>) {
        match (self, &keys.keys) {
            (KeyIndex::Int(index), Keys::Int { values, .. }) => {
                let valid = |row: usize| keys.nulls.as_ref().is_none_or(|n| n.is_valid(row));
                index.insert_all(values, valid, first_rowid)
            }
            (index, _) => {
                if let KeyIndex::Encoded(map) = index {
                    map.reserve(keys.len());
                }
                for (row, key) in keys.iter().enumerate() {
                    if key.is_some_and(|k| !index.try_insert(k, first_rowid + row as u64)) {
                        return (row, Some(row));
                    }
                }
                (keys.len(), None)
            }
        }
    }

    /// The live row holding `key`.
    pub fn get(&self, key: Key<'_>) -> Option<u64> {
        match self {
            KeyIndex::Int(index) => index.get(key.as_int()?),
            KeyIndex::Encoded(map) => match key {
                Key::Encoded(bytes) => map.get(bytes).copied(),
                Key::Shared(key) => map.get(key).copied(),
                int => map.get(&*int.to_encoded()).copied(),
            },
        }
    }

    /// Let `rowid` hold `key` unless some row already does; false when taken.
    pub fn try_insert(&mut self, key: Key<'_>, rowid: u64) -> bool {
        match self {
            KeyIndex::Int(index) => key.as_int().is_some_and(|k| index.try_insert(k, rowid)),
            KeyIndex::Encoded(map) => match map.entry(key.to_encoded()) {
                Entry::Occupied(_) => false,
                Entry::Vacant(slot) => {
                    slot.insert(rowid);
                    true
                }
            },
        }
    }

    /// Let `rowid` hold `key`, whoever held it before.
    pub fn insert(&mut self, key: Key<'_>, rowid: u64) {
        match self {
            KeyIndex::Int(index) => {
                if let Some(value) = key.as_int() {
                    index.insert(value, rowid);
                }
            }
            KeyIndex::Encoded(map) => {
                map.insert(key.to_encoded(), rowid);
            }
        }
    }

    /// Forget `key`; returns the row that held it.
    pub fn remove(&mut self, key: Key<'_>) -> Option<u64> {
        match self {
            KeyIndex::Int(index) => index.remove(key.as_int()?),
            KeyIndex::Encoded(map) => match key {
                Key::Encoded(bytes) => map.remove(bytes),
                Key::Shared(key) => map.remove(key),
                int => map.remove(&*int.to_encoded()),
            },
        }
    }

    /// Forget `key` only if `rowid` holds it.
    pub fn remove_if_held_by(&mut self, key: Key<'_>, rowid: u64) {
        if self.get(key) == Some(rowid) {
            self.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int8Array, Int16Array, Int32Array, Int64Array, StringArray};

    fn arrow_encoding(array: ArrayRef, row: usize) -> Vec<u8> {
        let converter = RowConverter::new(vec![SortField::new(array.data_type().clone())]).unwrap();
        let rows = converter.convert_columns(&[array]).unwrap();
        rows.row(row).as_ref().to_vec()
    }

    #[test]
    fn integer_keys_encode_exactly_as_the_row_format() {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(Int8Array::from(vec![i8::MIN, -1, 0, 1, i8::MAX])),
            Arc::new(Int16Array::from(vec![i16::MIN, -300, 0, 300, i16::MAX])),
            Arc::new(Int32Array::from(vec![
                i32::MIN,
                -70_000,
                0,
                70_000,
                i32::MAX,
            ])),
            Arc::new(Int64Array::from(vec![
                i64::MIN,
                -1 << 40,
                0,
                1 << 40,
                i64::MAX,
            ])),
        ];
        for array in arrays {
            let keys = KeyColumn::encode(std::slice::from_ref(&array)).unwrap();
            for row in 0..array.len() {
                let expected = arrow_encoding(array.clone(), row);
                assert_eq!(&*keys.encoded(row).unwrap(), expected.as_slice());
                let Key::Int { value, .. } = keys.get(row).unwrap() else {
                    panic!("integer key not kept as an integer");
                };
                assert_eq!(decode_int(&expected), Some(value));
            }
        }
    }

    #[test]
    fn an_integer_index_answers_row_format_lookups() {
        let ids: ArrayRef = Arc::new(Int32Array::from(vec![Some(-5), None, Some(7)]));
        let keys = KeyColumn::encode(std::slice::from_ref(&ids)).unwrap();
        let mut index = KeyIndex::for_types(&[DataType::Int32]);
        for (row, key) in keys.iter().enumerate() {
            if let Some(key) = key {
                assert!(index.try_insert(key, row as u64));
            }
        }
        assert_eq!(index.len(), 2);
        let seven = arrow_encoding(ids.clone(), 2);
        assert_eq!(index.get(Key::Encoded(&seven)), Some(2));
        assert!(!index.try_insert(Key::Encoded(&seven), 9));
        assert!(keys.get(1).is_none());
        let picked = keys.select([2, 1].into_iter());
        assert!(matches!(
            picked.get(0),
            Some(Key::Int { value: 7, width: 4 })
        ));
        assert!(picked.get(1).is_none());
        assert_eq!(index.remove(Key::Encoded(&seven)), Some(2));
        assert_eq!(index.get(keys.get(2).unwrap()), None);
    }

    #[test]
    fn other_keys_use_the_row_format_and_keep_nulls() {
        let names: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None, Some("a")]));
        let keys = KeyColumn::encode(&[names]).unwrap();
        let mut index = KeyIndex::for_types(&[DataType::Utf8]);
        assert!(index.try_insert(keys.get(0).unwrap(), 0));
        assert!(keys.get(1).is_none());
        assert!(!index.try_insert(keys.get(2).unwrap(), 2));
        let picked = keys.select([2, 1].into_iter());
        assert_eq!(picked.len(), 2);
        assert_eq!(index.get(picked.get(0).unwrap()), Some(0));
        assert!(picked.get(1).is_none());
    }
}
