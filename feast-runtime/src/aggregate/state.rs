//! Intermediate values: what a tile keeps per aggregation, how two merge,
//! and the feature value they give.
//!
//! Every state merges exactly and in any order: counts and integer sums are
//! integers, float sums [`ExactSum`]s, minima and maxima compare totally,
//! and the newest-n lists order by event time, then by value, so that ties
//! do not depend on arrival order.

use std::cmp::Ordering;

use super::exact::{self, ExactSum};
use crate::definition::{AggFunction, AggregationDef, FeastType, Value};

/// One value of an aggregated column. Timestamps are microseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// Int32, Int64 and UnixTimestamp values.
    Int(i64),
    /// Float32 and Float64 values.
    Float(f64),
    /// Strings.
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// Booleans.
    Bool(bool),
}

impl Scalar {
    /// A total order: by kind, then by value (floats by their total order).
    pub fn total_cmp(&self, other: &Scalar) -> Ordering {
        fn rank(s: &Scalar) -> u8 {
            match s {
                Scalar::Int(_) => 0,
                Scalar::Float(_) => 1,
                Scalar::Str(_) => 2,
                Scalar::Bytes(_) => 3,
                Scalar::Bool(_) => 4,
            }
        }
        match (self, other) {
            (Scalar::Int(a), Scalar::Int(b)) => a.cmp(b),
            (Scalar::Float(a), Scalar::Float(b)) => a.total_cmp(b),
            (Scalar::Str(a), Scalar::Str(b)) => a.cmp(b),
            (Scalar::Bytes(a), Scalar::Bytes(b)) => a.cmp(b),
            (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            Scalar::Int(v) => *v as f64,
            Scalar::Float(v) => *v,
            _ => f64::NAN,
        }
    }
}

/// An event in a newest-n list: its time (microseconds) and value.
pub type Stamped = (i64, Scalar);

/// Newest first; equal times by value, so the order is total.
fn newest_first(a: &Stamped, b: &Stamped) -> Ordering {
    b.0.cmp(&a.0).then_with(|| a.1.total_cmp(&b.1))
}

/// The intermediate value of one aggregation over some events.
#[derive(Debug, Clone, PartialEq)]
pub enum AggState {
    /// `count`: values seen.
    Count(u64),
    /// `sum` over integers, exactly.
    SumInt(i128),
    /// `sum` over floats, exactly.
    SumFloat(ExactSum),
    /// `mean` over integers.
    MeanInt {
        /// Values seen.
        n: u64,
        /// Their exact sum.
        sum: i128,
    },
    /// `mean` over floats.
    MeanFloat {
        /// Values seen.
        n: u64,
        /// Their exact sum.
        sum: ExactSum,
    },
    /// `min` or `max` (the function says which): the extreme so far.
    Extreme(Option<Scalar>),
    /// `std` and `var`: count, exact sum and exact sum of squares.
    Spread {
        /// Values seen.
        n: u64,
        /// Their exact sum.
        s1: ExactSum,
        /// The exact sum of their squares.
        s2: ExactSum,
    },
    /// `last(n)` and `last_distinct(n)`: the newest events, newest first.
    Newest(Vec<Stamped>),
}

impl AggState {
    /// The state of no events for `agg`.
    pub fn empty(agg: &AggregationDef) -> AggState {
        let int = matches!(agg.input, FeastType::Int32 | FeastType::Int64);
        match agg.function {
            AggFunction::Count => AggState::Count(0),
            AggFunction::Sum if int => AggState::SumInt(0),
            AggFunction::Sum => AggState::SumFloat(ExactSum::default()),
            AggFunction::Mean if int => AggState::MeanInt { n: 0, sum: 0 },
            AggFunction::Mean => AggState::MeanFloat {
                n: 0,
                sum: ExactSum::default(),
            },
            AggFunction::Min | AggFunction::Max => AggState::Extreme(None),
            AggFunction::Std | AggFunction::StdPop | AggFunction::Var | AggFunction::VarPop => {
                AggState::Spread {
                    n: 0,
                    s1: ExactSum::default(),
                    s2: ExactSum::default(),
                }
            }
            AggFunction::Last(_) | AggFunction::LastDistinct(_) => AggState::Newest(Vec::new()),
        }
    }

    /// Adds one non-null value of event time `ts_us`.
    pub fn add(&mut self, function: AggFunction, ts_us: i64, value: Scalar) {
        match self {
            AggState::Count(n) => *n += 1,
            AggState::SumInt(sum) => {
                if let Scalar::Int(v) = value {
                    *sum += i128::from(v);
                }
            }
            AggState::SumFloat(sum) => sum.add(value.as_f64()),
            AggState::MeanInt { n, sum } => {
                if let Scalar::Int(v) = value {
                    *n += 1;
                    *sum += i128::from(v);
                }
            }
            AggState::MeanFloat { n, sum } => {
                *n += 1;
                sum.add(value.as_f64());
            }
            AggState::Extreme(current) => keep_extreme(function, current, value),
            AggState::Spread { n, s1, s2 } => {
                let x = value.as_f64();
                *n += 1;
                s1.add(x);
                exact::add_square(s2, x);
            }
            AggState::Newest(items) => insert_newest(function, items, (ts_us, value)),
        }
    }

    /// Adds the events of `other`, a state of the same aggregation.
    pub fn merge(&mut self, function: AggFunction, other: &AggState) {
        match (self, other) {
            (AggState::Count(a), AggState::Count(b)) => *a += b,
            (AggState::SumInt(a), AggState::SumInt(b)) => *a += b,
            (AggState::SumFloat(a), AggState::SumFloat(b)) => a.merge(b),
            (AggState::MeanInt { n, sum }, AggState::MeanInt { n: m, sum: s }) => {
                *n += m;
                *sum += s;
            }
            (AggState::MeanFloat { n, sum }, AggState::MeanFloat { n: m, sum: s }) => {
                *n += m;
                sum.merge(s);
            }
            (AggState::Extreme(a), AggState::Extreme(Some(b))) => {
                keep_extreme(function, a, b.clone());
            }
            (AggState::Extreme(_), AggState::Extreme(None)) => {}
            (
                AggState::Spread { n, s1, s2 },
                AggState::Spread {
                    n: m,
                    s1: t1,
                    s2: t2,
                },
            ) => {
                *n += m;
                s1.merge(t1);
                s2.merge(t2);
            }
            (AggState::Newest(a), AggState::Newest(b)) => {
                for item in b {
                    insert_newest(function, a, item.clone());
                }
            }
            // States of one definition always match; a mismatch is a
            // stored tile of another definition, refused when decoded.
            _ => {}
        }
    }

    /// The feature value these events give.
    pub fn finish(&self, agg: &AggregationDef) -> Value {
        let float = |x: f64| Value::Float64(x);
        match self {
            AggState::Count(n) => Value::Int64(i64::try_from(*n).unwrap_or(i64::MAX)),
            AggState::SumInt(sum) => i64::try_from(*sum).map_or(Value::Null, Value::Int64),
            AggState::SumFloat(sum) => float(sum.value()),
            AggState::MeanInt { n: 0, .. } | AggState::MeanFloat { n: 0, .. } => Value::Null,
            AggState::MeanInt { n, sum } => float(*sum as f64 / *n as f64),
            AggState::MeanFloat { n, sum } => float(sum.value() / *n as f64),
            AggState::Extreme(None) => Value::Null,
            AggState::Extreme(Some(v)) => scalar_value(agg.input, v),
            AggState::Spread { n, s1, s2 } => {
                let sample = matches!(agg.function, AggFunction::Std | AggFunction::Var);
                let need = if sample { 2 } else { 1 };
                if *n < need {
                    return Value::Null;
                }
                let nf = *n as f64;
                let divisor = if sample { nf * (nf - 1.0) } else { nf * nf };
                let var = exact::spread(*n, s1, s2) / divisor;
                match agg.function {
                    AggFunction::Std | AggFunction::StdPop => float(var.sqrt()),
                    _ => float(var),
                }
            }
            AggState::Newest(items) => list_value(agg.input, items),
        }
    }
}

fn keep_extreme(function: AggFunction, current: &mut Option<Scalar>, value: Scalar) {
    if matches!(value, Scalar::Float(x) if x.is_nan()) {
        return;
    }
    let better = match current {
        None => true,
        Some(c) => {
            let ord = value.total_cmp(c);
            match function {
                AggFunction::Min => ord == Ordering::Less,
                _ => ord == Ordering::Greater,
            }
        }
    };
    if better {
        *current = Some(value);
    }
}

fn insert_newest(function: AggFunction, items: &mut Vec<Stamped>, item: Stamped) {
    let (n, distinct) = match function {
        AggFunction::Last(n) => (usize::from(n), false),
        AggFunction::LastDistinct(n) => (usize::from(n), true),
        _ => return,
    };
    if let Some(at) = items
        .iter()
        .position(|(_, v)| v.total_cmp(&item.1) == Ordering::Equal)
        .filter(|_| distinct)
    {
        if items[at].0 >= item.0 {
            return;
        }
        items.remove(at);
    }
    let at = items
        .binary_search_by(|probe| newest_first(probe, &item))
        .unwrap_or_else(|i| i);
    if at < n {
        items.insert(at, item);
        items.truncate(n);
    }
}

/// A scalar as a value of the column's type.
fn scalar_value(input: FeastType, v: &Scalar) -> Value {
    match (input, v) {
        (FeastType::Int32, Scalar::Int(x)) => i32::try_from(*x).map_or(Value::Null, Value::Int32),
        (FeastType::Int64, Scalar::Int(x)) => Value::Int64(*x),
        (FeastType::UnixTimestamp, Scalar::Int(x)) => Value::UnixTimestamp(x.div_euclid(1_000_000)),
        (FeastType::Float32, Scalar::Float(x)) => Value::Float32(*x as f32),
        (FeastType::Float64, Scalar::Float(x)) => Value::Float64(*x),
        (FeastType::String, Scalar::Str(s)) => Value::String(s.clone()),
        (FeastType::Bytes, Scalar::Bytes(b)) => Value::Bytes(b.clone()),
        (FeastType::Bool, Scalar::Bool(b)) => Value::Bool(*b),
        _ => Value::Null,
    }
}

/// A newest-first list as an array value of the column's type.
fn list_value(input: FeastType, items: &[Stamped]) -> Value {
    fn all<T>(items: &[Stamped], f: impl Fn(&Scalar) -> Option<T>) -> Vec<T> {
        items.iter().filter_map(|(_, v)| f(v)).collect()
    }
    match input {
        FeastType::Int32 => Value::Int32List(all(items, |v| match v {
            Scalar::Int(x) => i32::try_from(*x).ok(),
            _ => None,
        })),
        FeastType::Int64 => Value::Int64List(all(items, |v| match v {
            Scalar::Int(x) => Some(*x),
            _ => None,
        })),
        FeastType::UnixTimestamp => Value::UnixTimestampList(all(items, |v| match v {
            Scalar::Int(x) => Some(x.div_euclid(1_000_000)),
            _ => None,
        })),
        FeastType::Float32 => Value::Float32List(all(items, |v| match v {
            Scalar::Float(x) => Some(*x as f32),
            _ => None,
        })),
        FeastType::Float64 => Value::Float64List(all(items, |v| match v {
            Scalar::Float(x) => Some(*x),
            _ => None,
        })),
        FeastType::String => Value::StringList(all(items, |v| match v {
            Scalar::Str(s) => Some(s.clone()),
            _ => None,
        })),
        FeastType::Bytes => Value::BytesList(all(items, |v| match v {
            Scalar::Bytes(b) => Some(b.clone()),
            _ => None,
        })),
        FeastType::Bool => Value::BoolList(all(items, |v| match v {
            Scalar::Bool(b) => Some(*b),
            _ => None,
        })),
        FeastType::Array(_) => Value::Null,
    }
}
