//! Windowed aggregations as a view declares them (Feast's `Aggregation`).

use std::fmt;

use super::FeastType;

/// What an aggregation computes over the events of its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggFunction {
    /// The sum of the non-null values; 0 over no values.
    Sum,
    /// How many values are not null.
    Count,
    /// The arithmetic mean; null over no values.
    Mean,
    /// The smallest value (NaN ignored); null over no values.
    Min,
    /// The largest value (NaN ignored); null over no values.
    Max,
    /// The sample standard deviation; null under two values.
    Std,
    /// The population standard deviation; null over no values.
    StdPop,
    /// The sample variance; null under two values.
    Var,
    /// The population variance; null over no values.
    VarPop,
    /// The newest `n` values, newest first.
    Last(u16),
    /// The newest `n` distinct values, newest first.
    LastDistinct(u16),
}

/// The largest `n` of `last(n)` and `last_distinct(n)`.
pub const MAX_LAST_N: u16 = 1000;

impl AggFunction {
    /// Whether a column of type `input` can be aggregated this way: sums,
    /// means and spreads need numbers, min and max numbers or times,
    /// `count` and `last` any scalar.
    pub const fn accepts(self, input: FeastType) -> bool {
        let numeric = matches!(
            input,
            FeastType::Int32 | FeastType::Int64 | FeastType::Float32 | FeastType::Float64
        );
        match self {
            AggFunction::Sum
            | AggFunction::Mean
            | AggFunction::Std
            | AggFunction::StdPop
            | AggFunction::Var
            | AggFunction::VarPop => numeric,
            AggFunction::Min | AggFunction::Max => {
                numeric || matches!(input, FeastType::UnixTimestamp)
            }
            AggFunction::Count | AggFunction::Last(_) | AggFunction::LastDistinct(_) => {
                !matches!(input, FeastType::Array(_))
            }
        }
    }

    /// The type of the feature over a column of type `input`: `count` is
    /// Int64; `mean` and the spreads Float64; `sum` Int64 over integers and
    /// Float64 over floats; `min` and `max` the column's; `last` an array of it.
    pub const fn output(self, input: FeastType) -> FeastType {
        match self {
            AggFunction::Count => FeastType::Int64,
            AggFunction::Mean
            | AggFunction::Std
            | AggFunction::StdPop
            | AggFunction::Var
            | AggFunction::VarPop => FeastType::Float64,
            AggFunction::Sum => match input {
                FeastType::Int32 | FeastType::Int64 => FeastType::Int64,
                _ => FeastType::Float64,
            },
            AggFunction::Min | AggFunction::Max => input,
            AggFunction::Last(_) | AggFunction::LastDistinct(_) => match input {
                FeastType::Int32 => FeastType::Array(&FeastType::Int32),
                FeastType::Int64 => FeastType::Array(&FeastType::Int64),
                FeastType::Float32 => FeastType::Array(&FeastType::Float32),
                FeastType::Float64 => FeastType::Array(&FeastType::Float64),
                FeastType::String => FeastType::Array(&FeastType::String),
                FeastType::Bytes => FeastType::Array(&FeastType::Bytes),
                FeastType::Bool => FeastType::Array(&FeastType::Bool),
                FeastType::UnixTimestamp => FeastType::Array(&FeastType::UnixTimestamp),
                FeastType::Array(_) => input,
            },
        }
    }
}

impl fmt::Display for AggFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggFunction::Sum => f.write_str("sum"),
            AggFunction::Count => f.write_str("count"),
            AggFunction::Mean => f.write_str("mean"),
            AggFunction::Min => f.write_str("min"),
            AggFunction::Max => f.write_str("max"),
            AggFunction::Std => f.write_str("std"),
            AggFunction::StdPop => f.write_str("std_pop"),
            AggFunction::Var => f.write_str("var"),
            AggFunction::VarPop => f.write_str("var_pop"),
            AggFunction::Last(n) => write!(f, "last({n})"),
            AggFunction::LastDistinct(n) => write!(f, "last_distinct({n})"),
        }
    }
}

/// One aggregation of a view: a feature computed over a sliding window of
/// the events of each entity (Feast's `Aggregation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregationDef {
    /// The feature it gives (by default `{function}_{column}_{window}s`).
    pub name: &'static str,
    /// The column of the view function's output it reads.
    pub column: &'static str,
    /// That column's type.
    pub input: FeastType,
    /// What it computes.
    pub function: AggFunction,
    /// How far back the window reaches, seconds.
    pub window_seconds: u64,
    /// The hop: the window's old edge moves in steps of this, and events
    /// are kept in tiles of this size. Divides `window_seconds`.
    pub slide_seconds: u64,
}

impl AggregationDef {
    /// The feature's type.
    pub const fn output(&self) -> FeastType {
        self.function.output(self.input)
    }

    /// The window, microseconds.
    pub fn window_us(&self) -> i64 {
        seconds_to_us(self.window_seconds)
    }

    /// The hop, microseconds.
    pub fn hop_us(&self) -> i64 {
        seconds_to_us(self.slide_seconds)
    }
}

fn seconds_to_us(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000)
}
