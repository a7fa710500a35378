//! Feast's value types and their Polars and wire counterparts.

use std::fmt;

use polars::prelude::{DataType, TimeUnit};

/// A Feast value type (`feast.types`), const-constructible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeastType {
    /// 32-bit integers.
    Int32,
    /// 64-bit integers.
    Int64,
    /// 32-bit floats.
    Float32,
    /// 64-bit floats.
    Float64,
    /// UTF-8 strings.
    String,
    /// Bytes.
    Bytes,
    /// Booleans.
    Bool,
    /// Microseconds since the epoch, UTC (a naive Polars datetime).
    UnixTimestamp,
    /// Lists of one scalar type.
    Array(&'static FeastType),
}

impl FeastType {
    /// The Polars dtype of a column of this type.
    pub fn dtype(self) -> DataType {
        match self {
            FeastType::Int32 => DataType::Int32,
            FeastType::Int64 => DataType::Int64,
            FeastType::Float32 => DataType::Float32,
            FeastType::Float64 => DataType::Float64,
            FeastType::String => DataType::String,
            FeastType::Bytes => DataType::Binary,
            FeastType::Bool => DataType::Boolean,
            // Naive, meaning UTC (as Feast reads tz-naive times). A time
            // zone on a frame's column is accepted on input: the physical
            // values of a zoned datetime are UTC instants already.
            FeastType::UnixTimestamp => DataType::Datetime(TimeUnit::Microseconds, None),
            FeastType::Array(inner) => DataType::List(Box::new(inner.dtype())),
        }
    }

    /// Feast's `ValueType` enum number (`feast/types/Value.proto`).
    pub fn value_type(self) -> u32 {
        match self {
            FeastType::Bytes => 1,
            FeastType::String => 2,
            FeastType::Int32 => 3,
            FeastType::Int64 => 4,
            FeastType::Float64 => 5,
            FeastType::Float32 => 6,
            FeastType::Bool => 7,
            FeastType::UnixTimestamp => 8,
            FeastType::Array(inner) => match inner {
                FeastType::Bytes => 11,
                FeastType::String => 12,
                FeastType::Int32 => 13,
                FeastType::Int64 => 14,
                FeastType::Float64 => 15,
                FeastType::Float32 => 16,
                FeastType::Bool => 17,
                FeastType::UnixTimestamp => 18,
                FeastType::Array(_) => 0,
            },
        }
    }

    /// Whether a column of this type can feed one of `target` without loss
    /// (equal types, or a narrower integer).
    pub fn widens_to(self, target: FeastType) -> bool {
        self == target || matches!((self, target), (FeastType::Int32, FeastType::Int64))
    }

    /// Whether a column of this type converts to `target` the same way on
    /// every path: equal types, a wider integer, or any number to a float
    /// (rounded to the nearest, as a Parquet file of `target` would keep it).
    pub fn casts_to(self, target: FeastType) -> bool {
        use FeastType as T;
        self.widens_to(target)
            || matches!(
                (self, target),
                (
                    T::Int32 | T::Int64 | T::Float32 | T::Float64,
                    T::Float32 | T::Float64
                )
            )
    }
}

impl fmt::Display for FeastType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeastType::Int32 => f.write_str("Int32"),
            FeastType::Int64 => f.write_str("Int64"),
            FeastType::Float32 => f.write_str("Float32"),
            FeastType::Float64 => f.write_str("Float64"),
            FeastType::String => f.write_str("String"),
            FeastType::Bytes => f.write_str("Bytes"),
            FeastType::Bool => f.write_str("Bool"),
            FeastType::UnixTimestamp => f.write_str("UnixTimestamp"),
            FeastType::Array(inner) => write!(f, "Array({inner})"),
        }
    }
}

/// A join-key value, borrowed from an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinKeyValue<'a> {
    /// An `Int32` key.
    Int32(i32),
    /// An `Int64` key.
    Int64(i64),
    /// A `String` key.
    String(&'a str),
    /// A `Bytes` key.
    Bytes(&'a [u8]),
}

/// A Rust type that can be an entity's join key.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a join key",
    label = "not a join-key type",
    note = "a join key is `i64` (Int64), `i32` (Int32), `String` (String) or `Vec<u8>` (Bytes), the key types Feast serializes"
)]
pub trait JoinKey: Clone + fmt::Debug + PartialEq + Eq + std::hash::Hash + 'static {
    /// The key's Feast type.
    const FEAST_TYPE: FeastType;
    /// The key as a join-key value.
    fn value(&self) -> JoinKeyValue<'_>;
}

impl JoinKey for i64 {
    const FEAST_TYPE: FeastType = FeastType::Int64;
    fn value(&self) -> JoinKeyValue<'_> {
        JoinKeyValue::Int64(*self)
    }
}

impl JoinKey for i32 {
    const FEAST_TYPE: FeastType = FeastType::Int32;
    fn value(&self) -> JoinKeyValue<'_> {
        JoinKeyValue::Int32(*self)
    }
}

impl JoinKey for String {
    const FEAST_TYPE: FeastType = FeastType::String;
    fn value(&self) -> JoinKeyValue<'_> {
        JoinKeyValue::String(self)
    }
}

impl JoinKey for Vec<u8> {
    const FEAST_TYPE: FeastType = FeastType::Bytes;
    fn value(&self) -> JoinKeyValue<'_> {
        JoinKeyValue::Bytes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_types_match_feast_wire_numbers() {
        let cases = [
            (FeastType::Bytes, 1),
            (FeastType::String, 2),
            (FeastType::Int32, 3),
            (FeastType::Int64, 4),
            (FeastType::Float64, 5),
            (FeastType::Float32, 6),
            (FeastType::Bool, 7),
            (FeastType::UnixTimestamp, 8),
            (FeastType::Array(&FeastType::Bytes), 11),
            (FeastType::Array(&FeastType::String), 12),
            (FeastType::Array(&FeastType::Int32), 13),
            (FeastType::Array(&FeastType::Int64), 14),
            (FeastType::Array(&FeastType::Float64), 15),
            (FeastType::Array(&FeastType::Float32), 16),
            (FeastType::Array(&FeastType::Bool), 17),
            (FeastType::Array(&FeastType::UnixTimestamp), 18),
        ];
        for (t, n) in cases {
            assert_eq!(t.value_type(), n, "{t}");
        }
    }

    #[test]
    fn dtypes_map_one_to_one() {
        assert_eq!(FeastType::Int32.dtype(), DataType::Int32);
        assert_eq!(FeastType::Int64.dtype(), DataType::Int64);
        assert_eq!(FeastType::Float32.dtype(), DataType::Float32);
        assert_eq!(FeastType::Float64.dtype(), DataType::Float64);
        assert_eq!(FeastType::String.dtype(), DataType::String);
        assert_eq!(FeastType::Bytes.dtype(), DataType::Binary);
        assert_eq!(FeastType::Bool.dtype(), DataType::Boolean);
        assert_eq!(
            FeastType::UnixTimestamp.dtype(),
            DataType::Datetime(TimeUnit::Microseconds, None)
        );
        assert_eq!(
            FeastType::Array(&FeastType::Float64).dtype(),
            DataType::List(Box::new(DataType::Float64))
        );
    }

    #[test]
    fn displays_like_feast() {
        assert_eq!(
            FeastType::Array(&FeastType::Int64).to_string(),
            "Array(Int64)"
        );
        assert_eq!(FeastType::UnixTimestamp.to_string(), "UnixTimestamp");
    }

    #[test]
    fn numbers_cast_to_floats_and_integers_only_widen() {
        assert!(FeastType::Float64.casts_to(FeastType::Float32));
        assert!(FeastType::Int64.casts_to(FeastType::Float64));
        assert!(FeastType::Int32.casts_to(FeastType::Int64));
        assert!(!FeastType::Float64.casts_to(FeastType::Int64));
        assert!(!FeastType::Int64.casts_to(FeastType::Int32));
        assert!(!FeastType::String.casts_to(FeastType::Int64));
        assert!(FeastType::String.casts_to(FeastType::String));
    }

    #[test]
    fn only_lossless_widening_is_allowed() {
        assert!(FeastType::Int32.widens_to(FeastType::Int64));
        assert!(FeastType::Int64.widens_to(FeastType::Int64));
        assert!(!FeastType::Int64.widens_to(FeastType::Int32));
        assert!(!FeastType::Float32.widens_to(FeastType::Float64));
    }
}
