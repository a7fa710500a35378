//! Reading typed values out of Polars frames: join keys, timestamps and
//! feature values, with errors that name the column and the row.

use polars::prelude::*;

use crate::definition::{FeastType, FeatureViewDef, FieldDef, Value, time};

/// A frame whose columns do not fit what a view or source expects.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FrameError {
    #[error("missing column `{column}` ({expected}); the frame has: {}", present.join(", "))]
    MissingColumn {
        column: String,
        expected: FeastType,
        present: Vec<String>,
    },
    #[error("column `{column}` is {found}, which does not convert to {expected}")]
    WrongType {
        column: String,
        expected: FeastType,
        found: Box<DataType>,
    },
    #[error("column `{column}` has a null at row {row}; {what} cannot be null")]
    Null {
        column: String,
        row: usize,
        what: &'static str,
    },
    #[error(
        "column `{column}` row {row}: `{value}` is not a timestamp (expected RFC 3339, like 2025-01-01T00:00:00Z)"
    )]
    BadTimestamp {
        column: String,
        row: usize,
        value: String,
    },
    #[error(
        "column `{column}` row {row}: `{value}` has digits below a microsecond; times are kept to the microsecond (as in Feast's offline stores), so round them first"
    )]
    SubMicrosecond {
        column: String,
        row: usize,
        value: String,
    },
    #[error("column `{column}` is {ty}, which cannot be a join key")]
    NotAJoinKey { column: String, ty: FeastType },
    #[error("{0}")]
    Polars(std::sync::Arc<PolarsError>),
}

impl From<PolarsError> for FrameError {
    fn from(e: PolarsError) -> Self {
        FrameError::Polars(std::sync::Arc::new(e))
    }
}

/// The column names of a frame, for messages.
pub(crate) fn names_of(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect()
}

fn column<'a>(
    df: &'a DataFrame,
    name: &str,
    expected: FeastType,
) -> Result<&'a Column, FrameError> {
    df.column(name).map_err(|_| FrameError::MissingColumn {
        column: name.to_owned(),
        expected,
        present: names_of(df),
    })
}

/// Casts a column to `ty`, refusing lossy or nonsensical conversions.
pub fn cast_to(col: &Column, ty: FeastType) -> Result<Column, FrameError> {
    let want = ty.dtype();
    let got = col.dtype();
    let wrong = || FrameError::WrongType {
        column: col.name().to_string(),
        expected: ty,
        found: Box::new(got.clone()),
    };
    let ok = match (ty, got) {
        (_, g) if *g == want => return Ok(col.clone()),
        (_, DataType::Null) => true,
        (FeastType::Int64, g) => matches!(
            g,
            DataType::Int32
                | DataType::Int16
                | DataType::Int8
                | DataType::UInt32
                | DataType::UInt16
                | DataType::UInt8
        ),
        (FeastType::Int32, g) => matches!(
            g,
            DataType::Int16 | DataType::Int8 | DataType::UInt16 | DataType::UInt8
        ),
        (FeastType::Float64, g) => g.is_primitive_numeric(),
        (FeastType::Float32, g) => g.is_primitive_numeric(),
        (FeastType::UnixTimestamp, DataType::Datetime(_, _)) => true,
        (FeastType::UnixTimestamp, DataType::Date) => true,
        (FeastType::UnixTimestamp, DataType::String) => return parse_timestamps(col),
        (FeastType::Array(_), DataType::List(_)) => true,
        _ => false,
    };
    if !ok {
        return Err(wrong());
    }
    col.cast(&want).map_err(|_| wrong())
}

/// Parses strings of the one time grammar ([`crate::definition::time`]).
fn parse_timestamps(col: &Column) -> Result<Column, FrameError> {
    let ca = col.str()?;
    let mut out: Vec<Option<i64>> = Vec::with_capacity(ca.len());
    for (row, s) in ca.iter().enumerate() {
        let Some(s) = s else {
            out.push(None);
            continue;
        };
        match time::parse_us(s.trim()) {
            Some(us) => out.push(Some(us)),
            None => {
                return Err(FrameError::BadTimestamp {
                    column: col.name().to_string(),
                    row,
                    value: s.trim().to_owned(),
                });
            }
        }
    }
    Ok(Column::new(col.name().clone(), out).cast(&FeastType::UnixTimestamp.dtype())?)
}

/// Refuses a time below the microsecond in column `name` (nanosecond
/// datetimes or strings with more than six fractional digits), which
/// reading would otherwise truncate without a word.
pub fn check_microseconds(df: &DataFrame, name: &str) -> Result<(), FrameError> {
    let Ok(col) = df.column(name) else {
        return Ok(());
    };
    let err = |row: usize, value: String| FrameError::SubMicrosecond {
        column: name.to_owned(),
        row,
        value,
    };
    match col.dtype() {
        DataType::Datetime(TimeUnit::Nanoseconds, _) => {
            let ca = col.datetime()?;
            if let Some((row, ns)) =
                ca.physical().iter().enumerate().find_map(|(row, v)| {
                    v.filter(|ns| ns.rem_euclid(1000) != 0).map(|ns| (row, ns))
                })
            {
                let text = chrono::DateTime::from_timestamp_nanos(ns)
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                return Err(err(row, text));
            }
        }
        DataType::String => {
            for (row, v) in col.str()?.iter().enumerate() {
                let Some(v) = v else { continue };
                // The fraction after the seconds: `.` then digits.
                let fraction = v
                    .split_once('.')
                    .map(|(_, f)| {
                        f.bytes()
                            .take_while(u8::is_ascii_digit)
                            .collect::<Vec<u8>>()
                    })
                    .unwrap_or_default();
                if fraction.len() > 6 && fraction[6..].iter().any(|&d| d != b'0') {
                    return Err(err(row, v.to_owned()));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A timestamp column as microseconds since the epoch (UTC).
pub fn timestamps_us(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>, FrameError> {
    let col = cast_to(
        column(df, name, FeastType::UnixTimestamp)?,
        FeastType::UnixTimestamp,
    )?;
    let ca = col.datetime()?;
    Ok(ca.physical().iter().collect())
}

/// A timestamp column with no nulls.
pub fn required_timestamps_us(
    df: &DataFrame,
    name: &str,
    what: &'static str,
) -> Result<Vec<i64>, FrameError> {
    let ts = timestamps_us(df, name)?;
    ts.into_iter()
        .enumerate()
        .map(|(row, v)| {
            v.ok_or_else(|| FrameError::Null {
                column: name.to_owned(),
                row,
                what,
            })
        })
        .collect()
}

/// A join-key column, typed as its entity declares.
#[derive(Debug)]
pub enum KeyColumn {
    Int64(Vec<i64>),
    Int32(Vec<i32>),
    String(Vec<String>),
    Bytes(Vec<Vec<u8>>),
}

impl KeyColumn {
    pub fn value(&self, i: usize) -> crate::definition::JoinKeyValue<'_> {
        use crate::definition::JoinKeyValue as K;
        match self {
            KeyColumn::Int64(v) => K::Int64(v[i]),
            KeyColumn::Int32(v) => K::Int32(v[i]),
            KeyColumn::String(v) => K::String(&v[i]),
            KeyColumn::Bytes(v) => K::Bytes(&v[i]),
        }
    }
}

/// Reads a join-key column; a null key is an error naming the row.
pub fn key_column(df: &DataFrame, name: &str, ty: FeastType) -> Result<KeyColumn, FrameError> {
    let col = cast_to(column(df, name, ty)?, ty)?;
    let null = |row| FrameError::Null {
        column: name.to_owned(),
        row,
        what: "a join key",
    };
    fn collect<T, E>(
        it: impl Iterator<Item = Option<T>>,
        null: impl Fn(usize) -> E,
    ) -> Result<Vec<T>, E> {
        it.enumerate()
            .map(|(i, v)| v.ok_or_else(|| null(i)))
            .collect()
    }
    Ok(match ty {
        FeastType::Int64 => KeyColumn::Int64(collect(col.i64()?.iter(), null)?),
        FeastType::Int32 => KeyColumn::Int32(collect(col.i32()?.iter(), null)?),
        FeastType::String => KeyColumn::String(collect(
            col.str()?.iter().map(|o| o.map(str::to_owned)),
            null,
        )?),
        FeastType::Bytes => KeyColumn::Bytes(collect(
            col.binary()?.iter().map(|o| o.map(<[u8]>::to_vec)),
            null,
        )?),
        other => {
            return Err(FrameError::NotAJoinKey {
                column: name.to_owned(),
                ty: other,
            });
        }
    })
}

/// Checks that a feature column exists and converts to its declared type.
pub fn check_feature_column(df: &DataFrame, field: &FieldDef) -> Result<(), FrameError> {
    let col = column(df, field.name, field.dtype)?;
    if col.dtype() == &field.dtype.dtype() {
        return Ok(());
    }
    cast_to(&col.slice(0, 0), field.dtype).map(|_| ())
}

/// Reads a feature column as online values; nulls become [`Value::Null`].
pub fn feature_values(df: &DataFrame, field: &FieldDef) -> Result<Vec<Value>, FrameError> {
    values_of(&typed_column(df, field)?, field.dtype)
}

/// A column converted to its declared type.
pub fn typed_column(df: &DataFrame, field: &FieldDef) -> Result<Column, FrameError> {
    cast_to(column(df, field.name, field.dtype)?, field.dtype)
}

/// Each row's serialized entity key (version 3) from the view's join-key
/// columns.
pub fn entity_keys(df: &DataFrame, view: &FeatureViewDef) -> Result<Vec<Vec<u8>>, FrameError> {
    let keys: Vec<(&str, KeyColumn)> = view
        .entities
        .iter()
        .map(|e| Ok((e.join_key, key_column(df, e.join_key, e.value_type)?)))
        .collect::<Result<_, FrameError>>()?;
    let mut pairs = Vec::with_capacity(keys.len());
    Ok((0..df.height())
        .map(|row| {
            pairs.clear();
            pairs.extend(keys.iter().map(|(name, col)| (*name, col.value(row))));
            let mut buf = Vec::with_capacity(40);
            crate::definition::serialize_entity_key(&mut buf, &pairs);
            buf
        })
        .collect())
}

/// A column of `ty` from online values ([`Value::Null`] is null).
pub fn values_column(name: &str, ty: FeastType, values: &[Value]) -> Result<Column, FrameError> {
    use crate::transform::column::{Builder, Cell};
    fn cell(v: &Value) -> Option<Cell> {
        Some(match v {
            Value::Null => return None,
            Value::Bytes(b) => Cell::Bytes(b.clone()),
            Value::String(s) => Cell::Str(s.clone()),
            Value::Int32(x) => Cell::Int(i64::from(*x)),
            Value::Int64(x) => Cell::Int(*x),
            Value::Float64(x) => Cell::Float(*x),
            Value::Float32(x) => Cell::Float(f64::from(*x)),
            Value::Bool(x) => Cell::Bool(*x),
            Value::UnixTimestamp(s) => Cell::Ts(s.saturating_mul(1_000_000)),
            Value::BytesList(l) => list(l, |b| Cell::Bytes(b.clone())),
            Value::StringList(l) => list(l, |s| Cell::Str(s.clone())),
            Value::Int32List(l) => list(l, |x| Cell::Int(i64::from(*x))),
            Value::Int64List(l) => list(l, |x| Cell::Int(*x)),
            Value::Float64List(l) => list(l, |x| Cell::Float(*x)),
            Value::Float32List(l) => list(l, |x| Cell::Float(f64::from(*x))),
            Value::BoolList(l) => list(l, |x| Cell::Bool(*x)),
            Value::UnixTimestampList(l) => list(l, |s| Cell::Ts(s.saturating_mul(1_000_000))),
        })
    }
    fn list<T>(items: &[T], f: impl Fn(&T) -> Cell) -> Cell {
        Cell::List(items.iter().map(|x| Some(f(x))).collect())
    }
    let mut b = Builder::new(ty, values.len());
    for v in values {
        b.push(cell(v));
    }
    Ok(b.finish(PlSmallStr::from(name))?.into_column())
}

fn values_of(col: &Column, ty: FeastType) -> Result<Vec<Value>, FrameError> {
    fn map<T>(it: impl Iterator<Item = Option<T>>, f: impl Fn(T) -> Value) -> Vec<Value> {
        it.map(|v| v.map_or(Value::Null, &f)).collect()
    }
    Ok(match ty {
        FeastType::Int32 => map(col.i32()?.iter(), Value::Int32),
        FeastType::Int64 => map(col.i64()?.iter(), Value::Int64),
        FeastType::Float32 => map(col.f32()?.iter(), Value::Float32),
        FeastType::Float64 => map(col.f64()?.iter(), Value::Float64),
        FeastType::String => map(col.str()?.iter(), |s| Value::String(s.to_owned())),
        FeastType::Bytes => map(col.binary()?.iter(), |b| Value::Bytes(b.to_vec())),
        FeastType::Bool => map(col.bool()?.iter(), Value::Bool),
        FeastType::UnixTimestamp => map(col.datetime()?.physical().iter(), |us| {
            Value::UnixTimestamp(us.div_euclid(1_000_000))
        }),
        FeastType::Array(inner) => {
            let ca = col.list()?;
            let mut out = Vec::with_capacity(ca.len());
            for item in ca.series_iter() {
                let Some(series) = item else {
                    out.push(Value::Null);
                    continue;
                };
                let inner_col = Column::from(series);
                let items = values_of(&inner_col, *inner)?;
                out.push(list_value(*inner, items));
            }
            out
        }
    })
}

/// Packs scalar values into the list `Value` of `inner` (nulls inside a list
/// have no protobuf form and are dropped, as Feast does).
fn list_value(inner: FeastType, items: Vec<Value>) -> Value {
    macro_rules! pick {
        ($variant:ident, $list:ident) => {
            Value::$list(
                items
                    .into_iter()
                    .filter_map(|v| {
                        if let Value::$variant(x) = v {
                            Some(x)
                        } else {
                            None
                        }
                    })
                    .collect(),
            )
        };
    }
    match inner {
        FeastType::Int32 => pick!(Int32, Int32List),
        FeastType::Int64 => pick!(Int64, Int64List),
        FeastType::Float32 => pick!(Float32, Float32List),
        FeastType::Float64 => pick!(Float64, Float64List),
        FeastType::String => pick!(String, StringList),
        FeastType::Bytes => pick!(Bytes, BytesList),
        FeastType::Bool => pick!(Bool, BoolList),
        FeastType::UnixTimestamp => pick!(UnixTimestamp, UnixTimestampList),
        FeastType::Array(_) => Value::Null,
    }
}

/// A zero-row frame with one column per field.
pub fn empty_frame(schema: &[FieldDef]) -> DataFrame {
    let columns: Vec<Column> = schema
        .iter()
        .map(|f| Column::new_empty(PlSmallStr::from_static(f.name), &f.dtype.dtype()))
        .collect();
    DataFrame::new(0, columns).unwrap_or_else(|_| DataFrame::empty())
}

/// Selects `schema`'s columns in order, cast to their declared types; a column
/// the frame lacks becomes all nulls.
pub fn conform(df: &DataFrame, schema: &[FieldDef]) -> Result<DataFrame, FrameError> {
    let height = df.height();
    let mut cols = Vec::with_capacity(schema.len());
    for f in schema {
        match df.column(f.name) {
            Ok(c) => cols.push(cast_to(c, f.dtype)?),
            Err(_) => cols.push(Column::full_null(
                PlSmallStr::from_static(f.name),
                height,
                &f.dtype.dtype(),
            )),
        }
    }
    Ok(DataFrame::new(height, cols)?)
}
