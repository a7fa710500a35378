//! The protobuf wire format, as far as Feast's messages here need it:
//! varints, tags, length-delimited fields, fixed-width numbers. One codec
//! for `feast.types.Value` and `google.protobuf.Timestamp` (the Redis
//! store's event times).

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

pub(crate) fn tag(out: &mut Vec<u8>, field: u8, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn len_prefixed(out: &mut Vec<u8>, field: u8, body: &[u8]) {
    tag(out, field, LEN);
    varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// A list message (`Int64List` and friends): `repeated <scalar> val = 1`,
/// packed for numbers as proto3 does.
pub(crate) fn packed<T: Copy>(
    out: &mut Vec<u8>,
    field: u8,
    items: &[T],
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    let mut inner = Vec::new();
    if !items.is_empty() {
        let mut data = Vec::new();
        for &x in items {
            write(&mut data, x);
        }
        len_prefixed(&mut inner, 1, &data);
    }
    len_prefixed(out, field, &inner);
}

/// Reads protobuf fields from a buffer; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(DecodeError::Truncated("varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::LongVarint)
    }

    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let end = self.pos + N;
        let b = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated("fixed-width value"))?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()? as usize;
        let end = self
            .pos
            .checked_add(len)
            .ok_or(DecodeError::Truncated("length-delimited value"))?;
        let b = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated("length-delimited value"))?;
        self.pos = end;
        Ok(b)
    }

    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| DecodeError::NotUtf8)
    }
}

/// Bytes that are not the protobuf message expected, or a value of another
/// type than the one asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end inside this.
    #[error("malformed protobuf: a truncated {0}")]
    Truncated(&'static str),
    /// A varint runs past 10 bytes.
    #[error("malformed protobuf: a varint longer than 10 bytes")]
    LongVarint,
    /// A string is not UTF-8.
    #[error("malformed protobuf: a string that is not UTF-8")]
    NotUtf8,
    /// A field the message does not have.
    #[error("malformed protobuf: field {field} (wire type {wire}) is not part of {message}")]
    UnexpectedField {
        /// The message read.
        message: &'static str,
        /// The field's number.
        field: u64,
        /// Its wire type.
        wire: u8,
    },
    /// A value of another kind than asked for.
    #[error("expected a {expected} value, found a {found} value")]
    WrongType {
        /// The kind asked for.
        expected: &'static str,
        /// The kind stored.
        found: &'static str,
    },
}

/// Appends a `google.protobuf.Timestamp` (field 1 seconds, field 2 nanos,
/// zero fields left out as protobuf writes them) for `micros` since the epoch.
#[cfg(any(feature = "redis", test))]
pub(crate) fn write_timestamp(out: &mut Vec<u8>, micros: i64) {
    let seconds = micros.div_euclid(1_000_000);
    let nanos = micros.rem_euclid(1_000_000) * 1000;
    if seconds != 0 {
        tag(out, 1, VARINT);
        varint(out, seconds as u64);
    }
    if nanos != 0 {
        tag(out, 2, VARINT);
        varint(out, nanos as u64);
    }
}

/// Reads a `google.protobuf.Timestamp`, in microseconds since the epoch
/// (sub-microsecond nanos dropped).
#[cfg(any(feature = "redis", test))]
pub(crate) fn read_timestamp(bytes: &[u8]) -> Result<i64, DecodeError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let (mut seconds, mut nanos) = (0i64, 0i64);
    while !r.done() {
        let key = r.varint()?;
        match (key >> 3, (key & 7) as u8) {
            (1, VARINT) => seconds = r.varint()? as i64,
            (2, VARINT) => nanos = r.varint()? as i64,
            (field, wire) => {
                return Err(DecodeError::UnexpectedField {
                    message: "google.protobuf.Timestamp",
                    field,
                    wire,
                });
            }
        }
    }
    Ok(seconds * 1_000_000 + nanos.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_reject_junk() {
        for micros in [0, 1, 1_735_732_800_123_456, -1_500_000] {
            let mut b = Vec::new();
            write_timestamp(&mut b, micros);
            assert_eq!(read_timestamp(&b), Ok(micros), "{micros}");
        }
        // Feast's reference: {seconds 1735732800, nanos 123456000}.
        let mut b = Vec::new();
        write_timestamp(&mut b, 1_735_732_800_123_456);
        assert_eq!(
            b,
            [
                0x08, 0xc0, 0xdc, 0xd4, 0xbb, 0x06, 0x10, 0x80, 0x94, 0xef, 0x3a
            ]
        );
        assert_eq!(
            read_timestamp(&[0x08]),
            Err(DecodeError::Truncated("varint"))
        );
        assert!(matches!(
            read_timestamp(&[0x1a, 0x00]),
            Err(DecodeError::UnexpectedField { field: 3, .. })
        ));
    }
}
