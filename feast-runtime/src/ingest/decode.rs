//! Decoding stream records (JSON objects, Feast's `JsonFormat`) straight into
//! Polars columns, one builder per column of the source's schema. A record
//! that does not fit is returned with the reason, for the dead-letter sink.

use polars::prelude::*;

use crate::definition::{DataSourceDef, FeastType, FieldDef};

/// Why a record was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Index of the record in the batch.
    pub index: usize,
    pub reason: String,
}

/// Records larger than this are rejected before parsing, by default (the
/// default maximum record size of a Kinesis stream).
pub const MAX_RECORD_BYTES: usize = 1 << 20;

enum Builder {
    Int32(Vec<Option<i32>>),
    Int64(Vec<Option<i64>>),
    Float32(Vec<Option<f32>>),
    Float64(Vec<Option<f64>>),
    String(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
    Bool(Vec<Option<bool>>),
    /// Microseconds since the epoch.
    Timestamp(Vec<Option<i64>>),
    /// Arrays are kept as JSON and converted per row at the end.
    Array(FeastType, Vec<Option<serde_json::Value>>),
}

/// One parsed value, checked against its column's type.
enum Cell {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Ts(i64),
    Json(serde_json::Value),
}

impl Builder {
    fn new(ty: FeastType, cap: usize) -> Builder {
        match ty {
            FeastType::Int32 => Builder::Int32(Vec::with_capacity(cap)),
            FeastType::Int64 => Builder::Int64(Vec::with_capacity(cap)),
            FeastType::Float32 => Builder::Float32(Vec::with_capacity(cap)),
            FeastType::Float64 => Builder::Float64(Vec::with_capacity(cap)),
            FeastType::String => Builder::String(Vec::with_capacity(cap)),
            FeastType::Bytes => Builder::Bytes(Vec::with_capacity(cap)),
            FeastType::Bool => Builder::Bool(Vec::with_capacity(cap)),
            FeastType::UnixTimestamp => Builder::Timestamp(Vec::with_capacity(cap)),
            FeastType::Array(_) => Builder::Array(ty, Vec::with_capacity(cap)),
        }
    }

    fn push(&mut self, cell: Option<Cell>) {
        match (self, cell) {
            (Builder::Int32(v), Some(Cell::Int(x))) => v.push(Some(x as i32)),
            (Builder::Int64(v), Some(Cell::Int(x))) => v.push(Some(x)),
            (Builder::Float32(v), Some(Cell::Float(x))) => v.push(Some(x as f32)),
            (Builder::Float64(v), Some(Cell::Float(x))) => v.push(Some(x)),
            (Builder::String(v), Some(Cell::Str(x))) => v.push(Some(x)),
            (Builder::Bytes(v), Some(Cell::Str(x))) => v.push(Some(x.into_bytes())),
            (Builder::Bool(v), Some(Cell::Bool(x))) => v.push(Some(x)),
            (Builder::Timestamp(v), Some(Cell::Ts(x))) => v.push(Some(x)),
            (Builder::Array(_, v), Some(Cell::Json(x))) => v.push(Some(x)),
            (Builder::Int32(v), _) => v.push(None),
            (Builder::Int64(v), _) | (Builder::Timestamp(v), _) => v.push(None),
            (Builder::Float32(v), _) => v.push(None),
            (Builder::Float64(v), _) => v.push(None),
            (Builder::String(v), _) => v.push(None),
            (Builder::Bytes(v), _) => v.push(None),
            (Builder::Bool(v), _) => v.push(None),
            (Builder::Array(_, v), _) => v.push(None),
        }
    }

    fn finish(self, name: &str) -> PolarsResult<Column> {
        let name = PlSmallStr::from(name);
        Ok(match self {
            Builder::Int32(v) => Column::new(name, v),
            Builder::Int64(v) => Column::new(name, v),
            Builder::Float32(v) => Column::new(name, v),
            Builder::Float64(v) => Column::new(name, v),
            Builder::String(v) => Column::new(name, v),
            Builder::Bytes(v) => Column::new(name, v),
            Builder::Bool(v) => Column::new(name, v),
            Builder::Timestamp(v) => {
                Column::new(name, v).cast(&FeastType::UnixTimestamp.dtype())?
            }
            Builder::Array(ty, v) => {
                let FeastType::Array(inner) = ty else {
                    unreachable!("array builder")
                };
                let series: Vec<Option<Series>> = v
                    .into_iter()
                    .map(|item| item.map(|json| array_series(*inner, &json)))
                    .collect();
                let mut s = Series::new(name.clone(), series);
                s = s.cast(&ty.dtype())?;
                s.into()
            }
        })
    }
}

fn array_series(inner: FeastType, json: &serde_json::Value) -> Series {
    let items = json.as_array().cloned().unwrap_or_default();
    let name = PlSmallStr::EMPTY;
    match inner {
        FeastType::Int32 => Series::new(
            name,
            items
                .iter()
                .map(|v| v.as_i64().map(|x| x as i32))
                .collect::<Vec<_>>(),
        ),
        FeastType::Int64 | FeastType::UnixTimestamp => Series::new(
            name,
            items
                .iter()
                .map(serde_json::Value::as_i64)
                .collect::<Vec<_>>(),
        ),
        FeastType::Float32 => Series::new(
            name,
            items
                .iter()
                .map(|v| v.as_f64().map(|x| x as f32))
                .collect::<Vec<_>>(),
        ),
        FeastType::Float64 => Series::new(
            name,
            items
                .iter()
                .map(serde_json::Value::as_f64)
                .collect::<Vec<_>>(),
        ),
        FeastType::Bool => Series::new(
            name,
            items
                .iter()
                .map(serde_json::Value::as_bool)
                .collect::<Vec<_>>(),
        ),
        _ => Series::new(
            name,
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Vec<_>>(),
        ),
    }
}

/// Reads one field of a record as its column's type.
fn cell(ty: FeastType, v: &serde_json::Value) -> Result<Option<Cell>, String> {
    use serde_json::Value as J;
    Ok(Some(match (ty, v) {
        (_, J::Null) => return Ok(None),
        (FeastType::Int32, J::Number(n)) => {
            let x = n.as_i64().ok_or("not an integer")?;
            i32::try_from(x).map_err(|_| "out of the Int32 range")?;
            Cell::Int(x)
        }
        (FeastType::Int64, J::Number(n)) => Cell::Int(n.as_i64().ok_or("not an integer")?),
        (FeastType::Float32 | FeastType::Float64, J::Number(n)) => {
            Cell::Float(n.as_f64().ok_or("not a number")?)
        }
        (FeastType::String | FeastType::Bytes, J::String(s)) => Cell::Str(s.clone()),
        (FeastType::Bool, J::Bool(b)) => Cell::Bool(*b),
        (FeastType::UnixTimestamp, J::String(s)) => {
            Cell::Ts(parse_time(s).ok_or("not an ISO-8601 timestamp")?)
        }
        (FeastType::UnixTimestamp, J::Number(n)) => {
            Cell::Ts(epoch_to_us(n.as_f64().ok_or("not a number")?))
        }
        (FeastType::Array(_), J::Array(_)) => Cell::Json(v.clone()),
        _ => return Err(format!("expected {ty}, found {}", json_kind(v))),
    }))
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// RFC 3339, or a naive `YYYY-MM-DD[T ]HH:MM:SS[.f]` taken as UTC.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_micros())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_micros())
        })
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_micros())
        })
        .ok()
}

/// An epoch number in seconds, milliseconds or microseconds (by magnitude:
/// values past year 5138 in seconds are read as milliseconds, and so on).
pub fn epoch_to_us(x: f64) -> i64 {
    let a = x.abs();
    if a >= 1e14 {
        x as i64
    } else if a >= 1e11 {
        (x * 1e3) as i64
    } else {
        (x * 1e6) as i64
    }
}

/// A source's decoder: its columns after `field_mapping`, the join keys that
/// may not be null, and the timestamp that must be present.
#[derive(Debug)]
pub struct Decoder {
    /// (JSON field name, column name, type).
    columns: Vec<(&'static str, &'static str, FeastType)>,
    required: Vec<&'static str>,
    max_record_bytes: usize,
}

impl Decoder {
    /// A decoder for `source`; `required` columns (join keys, event time)
    /// must be present and non-null in every record.
    pub fn new(source: &DataSourceDef, required: Vec<&'static str>) -> Decoder {
        let mapped = source.schema();
        let columns = source
            .raw_schema()
            .iter()
            .zip(mapped)
            .map(|(raw, m): (&FieldDef, FieldDef)| (raw.name, m.name, raw.dtype))
            .collect();
        Decoder {
            columns,
            required,
            max_record_bytes: MAX_RECORD_BYTES,
        }
    }

    /// Rejects records larger than `bytes`.
    pub fn with_max_record_bytes(mut self, bytes: usize) -> Decoder {
        self.max_record_bytes = bytes;
        self
    }

    /// Decodes a batch of records. Good records become rows of the frame (in
    /// order); bad ones are returned with their index and reason.
    pub fn decode<'a>(
        &self,
        records: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> (DataFrame, Vec<Rejected>) {
        let n = records.len();
        let mut builders: Vec<Builder> = self
            .columns
            .iter()
            .map(|(_, _, t)| Builder::new(*t, n))
            .collect();
        let mut rejected = Vec::new();
        let mut row: Vec<Option<Cell>> = Vec::with_capacity(self.columns.len());
        let mut height = 0;
        'records: for (index, bytes) in records.enumerate() {
            if bytes.len() > self.max_record_bytes {
                rejected.push(Rejected {
                    index,
                    reason: format!(
                        "record of {} bytes is over the {}-byte limit",
                        bytes.len(),
                        self.max_record_bytes
                    ),
                });
                continue;
            }
            let obj: serde_json::Map<String, serde_json::Value> =
                match serde_json::from_slice(bytes) {
                    Ok(serde_json::Value::Object(o)) => o,
                    Ok(other) => {
                        rejected.push(Rejected {
                            index,
                            reason: format!("expected a JSON object, found {}", json_kind(&other)),
                        });
                        continue;
                    }
                    Err(e) => {
                        rejected.push(Rejected {
                            index,
                            reason: format!("not JSON: {e}"),
                        });
                        continue;
                    }
                };
            row.clear();
            for (field, column, ty) in &self.columns {
                let value = obj.get(*field).unwrap_or(&serde_json::Value::Null);
                let c = match cell(*ty, value) {
                    Ok(c) => c,
                    Err(why) => {
                        rejected.push(Rejected {
                            index,
                            reason: format!("field `{field}`: {why}"),
                        });
                        continue 'records;
                    }
                };
                if c.is_none() && self.required.contains(column) {
                    let what = if value.is_null() && !obj.contains_key(*field) {
                        "missing"
                    } else {
                        "null"
                    };
                    rejected.push(Rejected {
                        index,
                        reason: format!("field `{field}` is {what}; it is required"),
                    });
                    continue 'records;
                }
                row.push(c);
            }
            for (b, c) in builders.iter_mut().zip(row.drain(..)) {
                b.push(c);
            }
            height += 1;
        }
        let columns: PolarsResult<Vec<Column>> = builders
            .into_iter()
            .zip(&self.columns)
            .map(|(b, (_, name, _))| b.finish(name))
            .collect();
        let df = columns
            .and_then(|c| DataFrame::new(height, c))
            .unwrap_or_else(|_| DataFrame::empty());
        (df, rejected)
    }
}
