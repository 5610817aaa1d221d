//! [`PkKey`]: one row's encoded key (arrow row format). Keys as long as
//! most keys are (a BIGINT encodes to 9 bytes) live inline, so indexing a
//! million rows allocates nothing per key; longer keys are shared.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// Keys of at most this many bytes are stored inline (the whole key is 24 bytes).
pub const INLINE_KEY_BYTES: usize = 22;

/// Encoded key of one row; compares and hashes as its bytes.
#[derive(Clone)]
pub struct PkKey(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_BYTES],
    },
    Shared(Arc<[u8]>),
}

impl From<&[u8]> for PkKey {
    fn from(key: &[u8]) -> Self {
        if key.len() <= INLINE_KEY_BYTES {
            let mut bytes = [0; INLINE_KEY_BYTES];
            bytes[..key.len()].copy_from_slice(key);
            return PkKey(Repr::Inline {
                len: key.len() as u8,
                bytes,
            });
        }
        PkKey(Repr::Shared(key.into()))
    }
}

impl Deref for PkKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..*len as usize],
            Repr::Shared(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for PkKey {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Borrow<[u8]> for PkKey {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl Hash for PkKey {
    // As `[u8]` hashes, so maps keyed by PkKey can be probed with `&[u8]`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl PartialEq for PkKey {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for PkKey {}

impl std::fmt::Debug for PkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PkKey({:02x?})", &**self)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn short_and_long_keys_compare_and_probe_as_bytes() {
        let short: &[u8] = &[1, 2, 3];
        let long: Vec<u8> = (0..40).collect();
        let mut map: HashMap<PkKey, u32> = HashMap::new();
        map.insert(PkKey::from(short), 1);
        map.insert(PkKey::from(long.as_slice()), 2);
        assert_eq!(map.get(short), Some(&1));
        assert_eq!(map.get(long.as_slice()), Some(&2));
        assert_eq!(map.get(&[1u8, 2][..]), None);
        assert_eq!(PkKey::from(short), PkKey::from(short));
        assert_ne!(PkKey::from(short), PkKey::from(long.as_slice()));
        assert_eq!(&*PkKey::from(long.as_slice()), long.as_slice());
        assert_eq!(std::mem::size_of::<PkKey>(), 24);
    }
}
