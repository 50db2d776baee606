//! The record hash: SHA-256 over a canonical byte encoding of a typed record.
//!
//! # The canonical encoding (version 1)
//!
//! The encoding is defined on the *typed* record, never on the XML, so the same data
//! hashes the same whichever dump era's layout it came from (attribute order,
//! self-closing or open/close empties, `<id>0</id>` versus no `<id>`, numeric character
//! references versus literal UTF-8, indentation).
//!
//! * The stream starts with the 18 bytes `discogs-record-v1\0`, then one byte for the
//!   kind (`1` artist, `2` label, `3` master, `4` release).
//! * Then the record's fields in the order they are declared in the struct, recursively:
//!   - an integer is unsigned LEB128 (7 bits per byte, low bits first, high bit set on
//!     every byte but the last), whatever its Rust width;
//!   - a `bool` is one byte, `0` or `1`;
//!   - a string is its UTF-8 length in bytes (LEB128), then its bytes;
//!   - an `Option` is `0` for `None`, or `1` followed by the value;
//!   - a list is its length (LEB128), then each item in order.
//!
//! The parser normalises before the encoding sees anything: text is trimmed, CRLF and
//! lone CR become LF, empty text is `None`, empty lists and absent lists are both empty,
//! id `0` is `None`. Lists keep the dump's order, because order carries meaning (track
//! order, credit order).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::Record;

/// Prefix of every canonical encoding; changing the encoding means a new version here.
pub const CANONICAL_PREFIX: &[u8; 18] = b"discogs-record-v1\0";

/// Appends `n` as unsigned LEB128.
#[inline]
fn leb128(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push(n.to_le_bytes()[0] | 0x80);
        n >>= 7;
    }
    out.push(n.to_le_bytes()[0]);
}

/// A value with a canonical byte encoding (see the [module docs](self)).
pub trait Canonical {
    /// Appends the canonical encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);
}

impl Canonical for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        leb128(*self, out);
    }
}

impl Canonical for u32 {
    fn encode(&self, out: &mut Vec<u8>) {
        u64::from(*self).encode(out);
    }
}

impl Canonical for u16 {
    fn encode(&self, out: &mut Vec<u8>) {
        u64::from(*self).encode(out);
    }
}

impl Canonical for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Canonical for str {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u64).encode(out);
        out.extend_from_slice(self.as_bytes());
    }
}

impl Canonical for Cow<'_, str> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_ref().encode(out);
    }
}

impl<T: Canonical> Canonical for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
}

impl<T: Canonical> Canonical for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u64).encode(out);
        for item in self {
            item.encode(out);
        }
    }
}

/// A record's SHA-256 over its canonical encoding. Shown and serialised as 64 lowercase
/// hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RecordHash(pub [u8; 32]);

impl RecordHash {
    /// Hashes `record` (allocates a scratch buffer; use [`RecordHasher`] in loops).
    #[must_use]
    pub fn of(record: &Record<'_>) -> Self {
        RecordHasher::default().hash(record)
    }

    /// The 32 raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64-digit lowercase hex form.
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// The 64 lowercase hex digits, without allocating.
    fn hex_digits(&self) -> [u8; 64] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(b >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
        }
        out
    }
}

impl fmt::Display for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.hex_digits();
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&digits).unwrap_or_default())
    }
}

impl fmt::Debug for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordHash({self})")
    }
}

/// The text given to [`RecordHash::from_str`] was not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a record hash is 64 hex digits, got {0:?}")]
pub struct InvalidRecordHash(pub String);

impl FromStr for RecordHash {
    type Err = InvalidRecordHash;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(InvalidRecordHash(s.to_owned()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(|| InvalidRecordHash(s.to_owned()))?;
            let lo = hex_value(pair[1]).ok_or_else(|| InvalidRecordHash(s.to_owned()))?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl serde::Serialize for RecordHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let digits = self.hex_digits();
        s.serialize_str(std::str::from_utf8(&digits).unwrap_or_default())
    }
}

impl<'de> serde::Deserialize<'de> for RecordHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Parsed from the input without copying it first (a hash is in every record
        // of every message on the bus).
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RecordHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RecordHash, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Hashes records with a reused scratch buffer, so hashing in a loop allocates nothing.
#[derive(Debug, Default)]
pub struct RecordHasher {
    buf: Vec<u8>,
}

/// Scratch buffers above this size are released after use, so one huge record does not
/// keep memory for the rest of the stream.
const MAX_KEPT_SCRATCH: usize = 1 << 20;

impl RecordHasher {
    /// A hasher with an empty scratch buffer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The canonical encoding of `record` (prefix, kind byte, fields), in the scratch buffer.
    pub fn canonical_bytes(&mut self, record: &Record<'_>) -> &[u8] {
        self.buf.clear();
        self.buf.extend_from_slice(CANONICAL_PREFIX);
        self.buf.push(record.kind().code());
        match record {
            Record::Artist(r) => r.encode(&mut self.buf),
            Record::Label(r) => r.encode(&mut self.buf),
            Record::Master(r) => r.encode(&mut self.buf),
            Record::Release(r) => r.encode(&mut self.buf),
        }
        &self.buf
    }

    /// SHA-256 of the canonical encoding of `record`.
    pub fn hash(&mut self, record: &Record<'_>) -> RecordHash {
        let digest = Sha256::digest(self.canonical_bytes(record));
        if self.buf.capacity() > MAX_KEPT_SCRATCH {
            self.buf = Vec::new();
        }
        RecordHash(digest.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Artist, EntityRef, Record};

    #[test]
    fn leb128_integers() {
        let mut out = Vec::new();
        for n in [0u64, 1, 127, 128, 300, u64::MAX] {
            n.encode(&mut out);
        }
        assert_eq!(
            out,
            [
                0, 1, 127, 0x80, 1, 0xac, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                1
            ]
        );
    }

    /// The exact bytes of a small record: a change here changes every stored hash.
    #[test]
    fn canonical_bytes_are_stable() {
        let artist = Artist {
            id: 300,
            name: "Ab".into(),
            aliases: vec![EntityRef {
                id: Some(2),
                name: "C".into(),
            }],
            ..Artist::default()
        };
        let record = Record::Artist(artist);
        let mut hasher = RecordHasher::new();
        let mut expected = CANONICAL_PREFIX.to_vec();
        expected.extend_from_slice(&[
            1, // kind: artist
            0xac, 2, // id 300
            2, b'A', b'b', // name
            0, 0, 0, // real_name, profile, data_quality: None
            0, 0, // urls, name_variations: empty
            1, 1, 2, 1, b'C', // aliases: [Some(2), "C"]
            0, 0, 0, // members, groups, images: empty
        ]);
        assert_eq!(hasher.canonical_bytes(&record), expected.as_slice());
        // SHA-256 of `expected`, computed independently (Python hashlib).
        assert_eq!(
            hasher.hash(&record).to_hex(),
            "ef3ff8b86509e9a8ccc589c2f1973dd0cfabfebfe22245e7dc7006e05a1c07f3"
        );
    }

    #[test]
    fn hash_hex_round_trip() {
        let h = RecordHash::of(&Record::Artist(Artist::default()));
        assert_eq!(h.to_hex().parse::<RecordHash>().unwrap(), h);
        assert!("xyz".parse::<RecordHash>().is_err());
        assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{h}\""));
    }
}
