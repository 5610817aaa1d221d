//! A versioned, checksummed envelope for the small files the database
//! reads back whole (checkpoints, `sequences.json`):
//!
//! ```text
//! [magic: 8 bytes][format version: u32 LE][body length: u64 LE][xxh64(body): u64 LE][body]
//! ```
//!
//! Opening checks the magic, the version (an unknown one is refused with
//! its number, never guessed at), the length and the checksum. A file
//! written before the envelope existed is plain JSON and starts with `{`;
//! it is still read, without a checksum.

use std::hash::Hasher as _;

use crate::error::{Error, Result};

/// Bytes before the body.
pub const ENVELOPE_HEADER_BYTES: usize = 8 + 4 + 8 + 8;

/// What kind of file an envelope holds, and the format version this build writes.
#[derive(Debug, Clone, Copy)]
pub struct FileKind {
    pub magic: [u8; 8],
    pub version: u32,
}

/// The body of an opened envelope.
#[derive(Debug)]
pub enum Opened<'a> {
    /// A checked body at this build's format version.
    Checked(&'a [u8]),
    /// A file from before the envelope: plain JSON, no checksum.
    Legacy(&'a [u8]),
}

impl Opened<'_> {
    pub fn body(&self) -> &[u8] {
        match self {
            Opened::Checked(body) | Opened::Legacy(body) => body,
        }
    }
}

/// xxh64 (seed 0) of `bytes`: the checksum of envelopes and data files.
pub fn xxh64(bytes: &[u8]) -> u64 {
    twox_hash::XxHash64::oneshot(0, bytes)
}

/// A running xxh64 for files read in pieces.
#[derive(Default)]
pub struct Xxh64 {
    hasher: twox_hash::XxHash64,
}

impl Xxh64 {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.write(bytes);
    }

    pub fn finish(&self) -> u64 {
        self.hasher.finish()
    }
}

/// Wrap `body` in an envelope of `kind`.
pub fn seal(kind: FileKind, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_HEADER_BYTES + body.len());
    out.extend_from_slice(&kind.magic);
    out.extend_from_slice(&kind.version.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxh64(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Check an envelope of `kind` read from `file` and return its body.
/// Damage is [`Error::Corrupt`] naming the file; an unknown version is
/// [`Error::FormatVersion`].
pub fn open<'a>(kind: FileKind, file: &str, bytes: &'a [u8]) -> Result<Opened<'a>> {
    let corrupt = |detail: String| Error::Corrupt {
        detail: format!("{file}: {detail}"),
    };
    if bytes.first() == Some(&b'{') {
        return Ok(Opened::Legacy(bytes));
    }
    if bytes.is_empty() {
        return Err(corrupt("the file is empty".into()));
    }
    let header = bytes.get(..ENVELOPE_HEADER_BYTES).ok_or_else(|| {
        corrupt(format!(
            "{} bytes, shorter than the {ENVELOPE_HEADER_BYTES}-byte header",
            bytes.len()
        ))
    })?;
    if header[..8] != kind.magic {
        return Err(corrupt(format!(
            "bad magic {:?} (expected {:?})",
            String::from_utf8_lossy(&header[..8]),
            String::from_utf8_lossy(&kind.magic)
        )));
    }
    let version = u32::from_le_bytes(fixed(&header[8..12]));
    if version != kind.version {
        return Err(Error::FormatVersion {
            file: file.to_string(),
            found: version,
            supported: kind.version,
        });
    }
    let len = u64::from_le_bytes(fixed(&header[12..20]));
    let sum = u64::from_le_bytes(fixed(&header[20..28]));
    let body = &bytes[ENVELOPE_HEADER_BYTES..];
    if body.len() as u64 != len {
        return Err(corrupt(format!(
            "body is {} bytes, the header says {len}",
            body.len()
        )));
    }
    let actual = xxh64(body);
    if actual != sum {
        return Err(corrupt(format!(
            "checksum mismatch (stored xxh64 {sum:016x}, computed {actual:016x})"
        )));
    }
    Ok(Opened::Checked(body))
}

/// The first `N` bytes of `bytes` as an array (callers pass exactly `N`).
pub(crate) fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: FileKind = FileKind {
        magic: *b"DRIFTTST",
        version: 1,
    };

    #[test]
    fn sealed_bodies_open_and_damage_is_named() {
        let sealed = seal(KIND, b"{\"a\":1}");
        assert_eq!(open(KIND, "f", &sealed).unwrap().body(), b"{\"a\":1}");
        for at in [0, 15, 21, ENVELOPE_HEADER_BYTES + 2] {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            let err = open(KIND, "f", &bad).unwrap_err();
            assert_eq!(err.sqlstate(), "XX001", "byte {at}: {err}");
            assert!(err.to_string().contains("f:"), "{err}");
        }
        assert!(open(KIND, "f", &sealed[..sealed.len() - 1]).is_err());
        assert!(open(KIND, "f", b"").is_err());
        let mut newer = sealed.clone();
        newer[8] = 2;
        match open(KIND, "f", &newer) {
            Err(Error::FormatVersion { found: 2, .. }) => {}
            other => panic!("expected FormatVersion, got {other:?}"),
        }
        assert!(matches!(
            open(KIND, "f", b"{\"legacy\":true}"),
            Ok(Opened::Legacy(_))
        ));
    }
}
