//! The bytes of a tile as the online stores keep them.
//!
//! ```text
//! tile   = version:u8 fingerprint:u64le state*   one state per aggregation of the tile's hop
//! state  = count | i128le | exact | count i128le | count exact | 0 | 1 scalar
//!        | count exact exact | count (zigzag-time scalar)*
//! exact  = count f64le* special:f64le             the partials of an exact sum
//! scalar = zigzag | f64le | count bytes | u8      by the column's type
//! ```
//!
//! `count` is a varint. The fingerprint names the aggregations the tile was
//! written for, so a tile of another definition is refused rather than
//! misread.

use super::exact::ExactSum;
use super::state::{AggState, Scalar};
use crate::definition::proto::{DecodeError, Reader, varint};
use crate::definition::{AggregationDef, FeastType};

const VERSION: u8 = 1;

/// Bytes that are not a tile of the aggregations asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The tile was written for other aggregations (the view changed).
    #[error(
        "a stored tile was written for other aggregations than the view now declares; run `teardown` and `apply`, then `materialize` and `ingest` again"
    )]
    OtherDefinition,
    /// The bytes are cut short or malformed.
    #[error("a stored tile is malformed: {0}")]
    Malformed(&'static str),
}

impl From<DecodeError> for TileError {
    fn from(e: DecodeError) -> TileError {
        TileError::Malformed(match e {
            DecodeError::Truncated(what) => what,
            DecodeError::NotUtf8 => "a string that is not UTF-8",
            _ => "a bad varint",
        })
    }
}

/// A stable name for a list of aggregations (FNV-1a over their functions,
/// columns and types).
pub fn fingerprint<'a>(aggs: impl IntoIterator<Item = &'a AggregationDef>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for a in aggs {
        eat(&a.function.to_string());
        eat(a.column);
        eat(&a.input.to_string());
    }
    h
}

/// Encodes the states of one tile.
pub fn encode(fingerprint: u64, states: &[AggState], out: &mut Vec<u8>) {
    out.push(VERSION);
    out.extend_from_slice(&fingerprint.to_le_bytes());
    for s in states {
        match s {
            AggState::Count(n) => varint(out, *n),
            AggState::SumInt(sum) => out.extend_from_slice(&sum.to_le_bytes()),
            AggState::SumFloat(sum) => exact(out, sum),
            AggState::MeanInt { n, sum } => {
                varint(out, *n);
                out.extend_from_slice(&sum.to_le_bytes());
            }
            AggState::MeanFloat { n, sum } => {
                varint(out, *n);
                exact(out, sum);
            }
            AggState::Extreme(None) => out.push(0),
            AggState::Extreme(Some(v)) => {
                out.push(1);
                scalar(out, v);
            }
            AggState::Spread { n, s1, s2 } => {
                varint(out, *n);
                exact(out, s1);
                exact(out, s2);
            }
            AggState::Newest(items) => {
                varint(out, items.len() as u64);
                for (ts, v) in items {
                    varint(out, zigzag(*ts));
                    scalar(out, v);
                }
            }
        }
    }
}

/// Decodes a tile of `aggs` written with `fingerprint`.
pub fn decode(
    fingerprint: u64,
    aggs: &[&AggregationDef],
    bytes: &[u8],
) -> Result<Vec<AggState>, TileError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let [version] = r.fixed::<1>()?;
    let stored = u64::from_le_bytes(r.fixed::<8>()?);
    if version != VERSION || stored != fingerprint {
        return Err(TileError::OtherDefinition);
    }
    let mut states = Vec::with_capacity(aggs.len());
    for agg in aggs {
        let state = match AggState::empty(agg) {
            AggState::Count(_) => AggState::Count(r.varint()?),
            AggState::SumInt(_) => AggState::SumInt(i128::from_le_bytes(r.fixed::<16>()?)),
            AggState::SumFloat(_) => AggState::SumFloat(read_exact(&mut r)?),
            AggState::MeanInt { .. } => AggState::MeanInt {
                n: r.varint()?,
                sum: i128::from_le_bytes(r.fixed::<16>()?),
            },
            AggState::MeanFloat { .. } => AggState::MeanFloat {
                n: r.varint()?,
                sum: read_exact(&mut r)?,
            },
            AggState::Extreme(_) => match r.fixed::<1>()? {
                [0] => AggState::Extreme(None),
                [1] => AggState::Extreme(Some(read_scalar(&mut r, agg.input)?)),
                _ => return Err(TileError::Malformed("an extreme's flag")),
            },
            AggState::Spread { .. } => AggState::Spread {
                n: r.varint()?,
                s1: read_exact(&mut r)?,
                s2: read_exact(&mut r)?,
            },
            AggState::Newest(_) => {
                let len = r.varint()?;
                if len > u64::from(crate::definition::MAX_LAST_N) {
                    return Err(TileError::Malformed("a list's length"));
                }
                let mut items = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    let ts = unzigzag(r.varint()?);
                    items.push((ts, read_scalar(&mut r, agg.input)?));
                }
                AggState::Newest(items)
            }
        };
        states.push(state);
    }
    if !r.done() {
        return Err(TileError::Malformed("bytes after the last state"));
    }
    Ok(states)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn exact(out: &mut Vec<u8>, sum: &ExactSum) {
    let (partials, special) = sum.parts();
    varint(out, partials.len() as u64);
    for p in partials {
        out.extend_from_slice(&p.to_le_bytes());
    }
    out.extend_from_slice(&special.to_le_bytes());
}

fn read_exact(r: &mut Reader<'_>) -> Result<ExactSum, TileError> {
    let len = r.varint()?;
    // A double's exponent range holds at most about 40 non-overlapping parts.
    if len > 64 {
        return Err(TileError::Malformed("an exact sum's length"));
    }
    let mut partials = Vec::with_capacity(len as usize);
    for _ in 0..len {
        partials.push(f64::from_le_bytes(r.fixed::<8>()?));
    }
    let special = f64::from_le_bytes(r.fixed::<8>()?);
    Ok(ExactSum::from_parts(partials, special))
}

fn scalar(out: &mut Vec<u8>, v: &Scalar) {
    match v {
        Scalar::Int(x) => varint(out, zigzag(*x)),
        Scalar::Float(x) => out.extend_from_slice(&x.to_le_bytes()),
        Scalar::Str(s) => {
            varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Scalar::Bytes(b) => {
            varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Scalar::Bool(b) => out.push(u8::from(*b)),
    }
}

fn read_scalar(r: &mut Reader<'_>, ty: FeastType) -> Result<Scalar, TileError> {
    Ok(match ty {
        FeastType::Int32 | FeastType::Int64 | FeastType::UnixTimestamp => {
            Scalar::Int(unzigzag(r.varint()?))
        }
        FeastType::Float32 | FeastType::Float64 => {
            Scalar::Float(f64::from_le_bytes(r.fixed::<8>()?))
        }
        FeastType::String => Scalar::Str(r.string()?),
        FeastType::Bytes => Scalar::Bytes(r.bytes()?.to_vec()),
        FeastType::Bool => Scalar::Bool(r.fixed::<1>()? != [0]),
        FeastType::Array(_) => return Err(TileError::Malformed("an array value")),
    })
}
