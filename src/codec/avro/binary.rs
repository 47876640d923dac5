//! Avro binary primitives: zig-zag varints, little-endian floats, length-prefixed bytes.

/// Why bytes are not a valid Avro encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvroError {
    /// The input ended inside a value.
    Eof,
    /// A varint is longer than 10 bytes.
    VarintTooLong,
    /// A length or count is negative (or absurd).
    BadLength(i64),
    /// A union branch index is out of range.
    BadUnionIndex(i64),
    /// An enum symbol index is out of range.
    BadEnumIndex(i64),
    /// A boolean byte other than 0 or 1.
    BadBoolean(u8),
    /// A string that is not UTF-8.
    InvalidUtf8,
    /// Nested deeper than the plan allows.
    TooDeep,
}

impl std::fmt::Display for AvroError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AvroError::Eof => write!(f, "the message ends in the middle of a value"),
            AvroError::VarintTooLong => write!(f, "a variable-length integer is over 10 bytes"),
            AvroError::BadLength(n) => write!(f, "invalid length or count {n}"),
            AvroError::BadUnionIndex(i) => write!(f, "union branch {i} does not exist"),
            AvroError::BadEnumIndex(i) => write!(f, "enum symbol {i} does not exist"),
            AvroError::BadBoolean(b) => write!(f, "boolean byte {b} is neither 0 nor 1"),
            AvroError::InvalidUtf8 => write!(f, "a string is not valid UTF-8"),
            AvroError::TooDeep => write!(f, "values nest too deeply"),
        }
    }
}

/// Reads Avro primitives from a byte slice.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// A zig-zag varint `long`.
    #[inline]
    pub fn long(&mut self) -> Result<i64, AvroError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self.bytes.get(self.pos).ok_or(AvroError::Eof)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err(AvroError::VarintTooLong)
    }

    /// `n` raw bytes.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], AvroError> {
        let end = self.pos.checked_add(n).ok_or(AvroError::Eof)?;
        let out = self.bytes.get(self.pos..end).ok_or(AvroError::Eof)?;
        self.pos = end;
        Ok(out)
    }

    /// A little-endian IEEE `double`.
    #[inline]
    pub fn double(&mut self) -> Result<f64, AvroError> {
        let b = self.take(8)?;
        Ok(f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A little-endian IEEE `float`.
    #[inline]
    pub fn float(&mut self) -> Result<f32, AvroError> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    /// A `boolean`.
    #[inline]
    pub fn boolean(&mut self) -> Result<bool, AvroError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(AvroError::BadBoolean(b)),
        }
    }

    /// A length (of bytes, a string, or a block) that must be non-negative.
    #[inline]
    pub fn length(&mut self) -> Result<usize, AvroError> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| AvroError::BadLength(n))
    }

    /// Length-prefixed `bytes` (borrowed).
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], AvroError> {
        let n = self.length()?;
        self.take(n)
    }

    /// Length-prefixed UTF-8 `string` (borrowed).
    #[inline]
    pub fn string(&mut self) -> Result<&'a str, AvroError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| AvroError::InvalidUtf8)
    }
}

/// Appends Avro primitives to a buffer.
#[derive(Debug)]
pub struct Writer<'b>(pub &'b mut Vec<u8>);

impl Writer<'_> {
    /// A zig-zag varint `long` (also `int`, lengths, counts and union indexes).
    #[inline]
    pub fn long(&mut self, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            self.0.push((z as u8) | 0x80);
            z >>= 7;
        }
        self.0.push(z as u8);
    }

    /// A little-endian `double`.
    #[inline]
    pub fn double(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// Consecutive `double` fields of a record, in order (no array framing).
    pub fn double_fields(&mut self, values: &[f64]) {
        for &v in values {
            self.double(v);
        }
    }

    /// A `boolean`: one byte, 0 or 1.
    #[inline]
    pub fn boolean(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }

    /// A length-prefixed string.
    #[inline]
    pub fn string(&mut self, s: &str) {
        self.long(s.len() as i64);
        self.0.extend_from_slice(s.as_bytes());
    }

    /// A `["null", T]` union: branch 0 for `None`, else branch 1 and `write` of the value.
    #[inline]
    pub fn optional<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.long(0),
            Some(v) => {
                self.long(1);
                write(self, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut buf = Vec::new();
            Writer(&mut buf).long(v);
            let mut c = Cursor::new(&buf);
            assert_eq!(c.long(), Ok(v));
            assert_eq!(c.remaining(), 0);
        }
        assert_eq!(
            Cursor::new(&[0xff; 11]).long(),
            Err(AvroError::VarintTooLong)
        );
        assert_eq!(Cursor::new(&[0x80]).long(), Err(AvroError::Eof));
        assert_eq!(Cursor::new(&[0x01]).length(), Err(AvroError::BadLength(-1)));
    }
}
