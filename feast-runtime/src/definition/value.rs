//! Feast's `feast.types.Value`: a feature value as every online store keeps
//! it, with its protobuf encoding.

use super::proto::{
    DecodeError, FIXED32, FIXED64, LEN, Reader, VARINT, len_prefixed, packed, tag, varint,
};

/// A feature value, as stored online (`feast.types.Value`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An empty `Value` message: no value.
    Null,
    /// `bytes_val`.
    Bytes(Vec<u8>),
    /// `string_val`.
    String(String),
    /// `int32_val`.
    Int32(i32),
    /// `int64_val`.
    Int64(i64),
    /// `double_val`.
    Float64(f64),
    /// `float_val`.
    Float32(f32),
    /// `bool_val`.
    Bool(bool),
    /// Seconds since the epoch (Feast's `unix_timestamp_val`).
    UnixTimestamp(i64),
    /// `bytes_list_val`.
    BytesList(Vec<Vec<u8>>),
    /// `string_list_val`.
    StringList(Vec<String>),
    /// `int32_list_val`.
    Int32List(Vec<i32>),
    /// `int64_list_val`.
    Int64List(Vec<i64>),
    /// `double_list_val`.
    Float64List(Vec<f64>),
    /// `float_list_val`.
    Float32List(Vec<f32>),
    /// `bool_list_val`.
    BoolList(Vec<bool>),
    /// `unix_timestamp_list_val`, seconds.
    UnixTimestampList(Vec<i64>),
}

impl Value {
    /// The name of this value's kind, as Feast's `Value` oneof calls it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bytes(_) => "bytes",
            Value::String(_) => "string",
            Value::Int32(_) => "int32",
            Value::Int64(_) => "int64",
            Value::Float64(_) => "double",
            Value::Float32(_) => "float",
            Value::Bool(_) => "bool",
            Value::UnixTimestamp(_) => "unix_timestamp",
            Value::BytesList(_) => "bytes_list",
            Value::StringList(_) => "string_list",
            Value::Int32List(_) => "int32_list",
            Value::Int64List(_) => "int64_list",
            Value::Float64List(_) => "double_list",
            Value::Float32List(_) => "float_list",
            Value::BoolList(_) => "bool_list",
            Value::UnixTimestampList(_) => "unix_timestamp_list",
        }
    }

    /// Appends this value's `feast.types.Value` protobuf encoding. A oneof
    /// member is written even at its default (`int64_val 0` is `20 00`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => {}
            Value::Bytes(b) => len_prefixed(out, 1, b),
            Value::String(s) => len_prefixed(out, 2, s.as_bytes()),
            Value::Int32(v) => {
                tag(out, 3, VARINT);
                varint(out, i64::from(*v) as u64);
            }
            Value::Int64(v) => {
                tag(out, 4, VARINT);
                varint(out, *v as u64);
            }
            Value::Float64(v) => {
                tag(out, 5, FIXED64);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Float32(v) => {
                tag(out, 6, FIXED32);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Value::Bool(v) => {
                tag(out, 7, VARINT);
                out.push(u8::from(*v));
            }
            Value::UnixTimestamp(v) => {
                tag(out, 8, VARINT);
                varint(out, *v as u64);
            }
            Value::BytesList(items) => {
                let mut inner = Vec::new();
                for b in items {
                    len_prefixed(&mut inner, 1, b);
                }
                len_prefixed(out, 11, &inner);
            }
            Value::StringList(items) => {
                let mut inner = Vec::new();
                for s in items {
                    len_prefixed(&mut inner, 1, s.as_bytes());
                }
                len_prefixed(out, 12, &inner);
            }
            Value::Int32List(items) => {
                packed(out, 13, items, |o, x| varint(o, i64::from(x) as u64))
            }
            Value::Int64List(items) => packed(out, 14, items, |o, x| varint(o, x as u64)),
            Value::Float64List(items) => {
                packed(out, 15, items, |o, x| o.extend_from_slice(&x.to_le_bytes()))
            }
            Value::Float32List(items) => {
                packed(out, 16, items, |o, x| o.extend_from_slice(&x.to_le_bytes()))
            }
            Value::BoolList(items) => packed(out, 17, items, |o, x| o.push(u8::from(x))),
            Value::UnixTimestampList(items) => packed(out, 18, items, |o, x| varint(o, x as u64)),
        }
    }

    /// The encoding as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes `feast.types.Value` bytes. Empty bytes (and an explicit
    /// `null_val`) are [`Value::Null`].
    pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        let mut value = Value::Null;
        while !r.done() {
            let key = r.varint()?;
            let (field, wire) = ((key >> 3) as u32, (key & 7) as u8);
            value = match (field, wire) {
                (1, LEN) => Value::Bytes(r.bytes()?.to_vec()),
                (2, LEN) => Value::String(r.string()?),
                (3, VARINT) => Value::Int32(r.varint()? as i64 as i32),
                (4, VARINT) => Value::Int64(r.varint()? as i64),
                (5, FIXED64) => Value::Float64(f64::from_le_bytes(r.fixed::<8>()?)),
                (6, FIXED32) => Value::Float32(f32::from_le_bytes(r.fixed::<4>()?)),
                (7, VARINT) => Value::Bool(r.varint()? != 0),
                (8, VARINT) => Value::UnixTimestamp(r.varint()? as i64),
                (11..=18, LEN) => decode_list(field, r.bytes()?)?,
                (19, VARINT) => {
                    r.varint()?;
                    Value::Null
                }
                _ => {
                    return Err(DecodeError::UnexpectedField {
                        message: "feast.types.Value",
                        field: u64::from(field),
                        wire,
                    });
                }
            };
        }
        Ok(value)
    }
}

fn decode_list(field: u32, body: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader { buf: body, pos: 0 };
    let mut out = match field {
        11 => Value::BytesList(Vec::new()),
        12 => Value::StringList(Vec::new()),
        13 => Value::Int32List(Vec::new()),
        14 => Value::Int64List(Vec::new()),
        15 => Value::Float64List(Vec::new()),
        16 => Value::Float32List(Vec::new()),
        17 => Value::BoolList(Vec::new()),
        _ => Value::UnixTimestampList(Vec::new()),
    };
    while !r.done() {
        let key = r.varint()?;
        if key >> 3 != 1 {
            return Err(DecodeError::UnexpectedField {
                message: "a feast.types.Value list",
                field: key >> 3,
                wire: (key & 7) as u8,
            });
        }
        let wire = (key & 7) as u8;
        // Numbers are packed (LEN) but a writer may also send them one by one.
        let packed_body =
            if wire == LEN && !matches!(out, Value::BytesList(_) | Value::StringList(_)) {
                Some(r.bytes()?)
            } else {
                None
            };
        let mut items = match packed_body {
            Some(b) => Reader { buf: b, pos: 0 },
            None => Reader { buf: &[], pos: 0 },
        };
        let one = |r: &mut Reader<'_>, out: &mut Value| -> Result<(), DecodeError> {
            match out {
                Value::BytesList(v) => v.push(r.bytes()?.to_vec()),
                Value::StringList(v) => v.push(r.string()?),
                Value::Int32List(v) => v.push(r.varint()? as i64 as i32),
                Value::Int64List(v) => v.push(r.varint()? as i64),
                Value::Float64List(v) => v.push(f64::from_le_bytes(r.fixed::<8>()?)),
                Value::Float32List(v) => v.push(f32::from_le_bytes(r.fixed::<4>()?)),
                Value::BoolList(v) => v.push(r.varint()? != 0),
                Value::UnixTimestampList(v) => v.push(r.varint()? as i64),
                _ => {}
            }
            Ok(())
        };
        if packed_body.is_some() {
            while !items.done() {
                one(&mut items, &mut out)?;
            }
        } else {
            one(&mut r, &mut out)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn values_encode_like_feast() {
        let cases: &[(Value, &str)] = &[
            (Value::Float32(0.5), "350000003f"),
            (Value::Float32(0.75), "350000403f"),
            (Value::Int64(7), "2007"),
            (Value::Int64(300), "20ac02"),
            (Value::Int64(0), "2000"),
            (Value::Float64(0.5), "29000000000000e03f"),
            (Value::String("ab".into()), "12026162"),
            (Value::Bool(true), "3801"),
            (Value::UnixTimestamp(1_735_732_800), "40c0dcd4bb06"),
            (Value::Null, ""),
            (Value::Int32(-1), "18ffffffffffffffffff01"),
            (Value::Int64List(vec![1, 300]), "72050a0301ac02"),
            (Value::StringList(vec!["a".into()]), "62030a0161"),
            (Value::Float32List(vec![2.5]), "8201060a0400002040"),
        ];
        for (v, want) in cases {
            assert_eq!(hex(&v.to_bytes()), *want, "{v:?}");
        }
    }

    #[test]
    fn values_round_trip() {
        let values = [
            Value::Null,
            Value::Bytes(vec![0, 1, 255]),
            Value::String("héllo".into()),
            Value::Int32(i32::MIN),
            Value::Int64(i64::MIN),
            Value::Float64(-1.5e300),
            Value::Float32(0.1),
            Value::Bool(false),
            Value::UnixTimestamp(-5),
            Value::BytesList(vec![vec![], vec![1]]),
            Value::StringList(vec!["a".into(), String::new()]),
            Value::Int32List(vec![-1, 2]),
            Value::Int64List(vec![]),
            Value::Float64List(vec![1.0, -0.0]),
            Value::Float32List(vec![2.5]),
            Value::BoolList(vec![true, false]),
            Value::UnixTimestampList(vec![1_735_732_800]),
        ];
        for v in values {
            assert_eq!(Value::decode(&v.to_bytes()), Ok(v.clone()), "{v:?}");
        }
    }

    #[test]
    fn malformed_bytes_are_an_error_not_a_panic() {
        assert!(Value::decode(&[0x20]).is_err());
        assert!(Value::decode(&[0x12, 0x05, b'a']).is_err());
        assert!(Value::decode(&[0xff; 12]).is_err());
        assert!(Value::decode(&[0x7a, 0x05, 0x01]).is_err());
        assert_eq!(Value::decode(&[0x7a, 0x00]), Ok(Value::Float64List(vec![])));
    }
}
