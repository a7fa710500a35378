//! Decoding stream records (JSON objects, Feast's `JsonFormat`) straight into
//! Polars columns, one builder per column of the source's schema.
//!
//! Each record is read with a streaming serde visitor: known fields are
//! parsed into their column's type as they are met, unknown ones skipped,
//! and no JSON tree is built. A record that does not fit (not JSON, not an
//! object, a mistyped field, a missing or null join key or event time, too
//! large) is returned with the reason, for the dead-letter sink, and adds
//! nothing to the frame.
//!
//! Values follow Spark's `from_json` for the DDL types of `schema_json`:
//! integers must be whole numbers in range; `float` and `double` take any
//! number; `timestamp` takes an ISO-8601 string (`2025-01-01T00:00:00Z`, an
//! offset, or no zone for UTC) or epoch seconds, milliseconds or
//! microseconds (told apart by magnitude); `binary` takes base64; arrays take
//! JSON arrays of their element type.

use std::fmt;

use polars::prelude::*;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::definition::{DataSourceDef, FeastType, FieldDef, time};

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

/// One parsed value, already checked against its column's type.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Bool(bool),
    /// Microseconds since the epoch.
    Ts(i64),
    List(Vec<Option<Cell>>),
}

/// A column under construction.
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
    /// Each row's elements, built into a list column at the end.
    Array(&'static FeastType, Vec<Option<Vec<Option<Cell>>>>),
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
            FeastType::Array(inner) => Builder::Array(inner, Vec::with_capacity(cap)),
        }
    }

    /// Appends a cell that [`CellSeed`] produced for this builder's type.
    fn push(&mut self, cell: Option<Cell>) {
        match (self, cell) {
            (Builder::Int32(v), Some(Cell::Int(x))) => v.push(i32::try_from(x).ok()),
            (Builder::Int64(v), Some(Cell::Int(x)))
            | (Builder::Timestamp(v), Some(Cell::Ts(x))) => {
                v.push(Some(x));
            }
            (Builder::Float32(v), Some(Cell::Float(x))) => v.push(Some(x as f32)),
            (Builder::Float64(v), Some(Cell::Float(x))) => v.push(Some(x)),
            (Builder::String(v), Some(Cell::Str(x))) => v.push(Some(x)),
            (Builder::Bytes(v), Some(Cell::Bytes(x))) => v.push(Some(x)),
            (Builder::Bool(v), Some(Cell::Bool(x))) => v.push(Some(x)),
            (Builder::Array(_, v), Some(Cell::List(x))) => v.push(Some(x)),
            (b, _) => b.push_null(),
        }
    }

    fn push_null(&mut self) {
        match self {
            Builder::Int32(v) => v.push(None),
            Builder::Int64(v) | Builder::Timestamp(v) => v.push(None),
            Builder::Float32(v) => v.push(None),
            Builder::Float64(v) => v.push(None),
            Builder::String(v) => v.push(None),
            Builder::Bytes(v) => v.push(None),
            Builder::Bool(v) => v.push(None),
            Builder::Array(_, v) => v.push(None),
        }
    }

    fn finish(self, name: PlSmallStr) -> PolarsResult<Series> {
        Ok(match self {
            Builder::Int32(v) => Series::new(name, v),
            Builder::Int64(v) => Series::new(name, v),
            Builder::Float32(v) => Series::new(name, v),
            Builder::Float64(v) => Series::new(name, v),
            Builder::String(v) => Series::new(name, v),
            Builder::Bytes(v) => Series::new(name, v),
            Builder::Bool(v) => Series::new(name, v),
            Builder::Timestamp(v) => {
                Series::new(name, v).cast(&FeastType::UnixTimestamp.dtype())?
            }
            Builder::Array(inner, rows) => {
                let lists = rows
                    .into_iter()
                    .map(|row| {
                        row.map(|cells| {
                            let mut b = Builder::new(*inner, cells.len());
                            for c in cells {
                                b.push(c);
                            }
                            b.finish(PlSmallStr::EMPTY)
                        })
                        .transpose()
                    })
                    .collect::<PolarsResult<Vec<Option<Series>>>>()?;
                Series::new(name, lists).cast(&FeastType::Array(inner).dtype())?
            }
        })
    }
}

/// The first problem met in a record; the serde error itself only carries
/// it out of the visitor.
#[derive(Default)]
struct Problem(Option<String>);

impl Problem {
    fn set<E: de::Error>(&mut self, reason: String) -> E {
        if self.0.is_none() {
            self.0 = Some(reason);
        }
        E::custom("rejected")
    }
}

/// Parses one JSON value as `ty`. `field` names it in errors.
struct CellSeed<'p> {
    ty: FeastType,
    field: &'static str,
    problem: &'p mut Problem,
}

impl CellSeed<'_> {
    fn wrong<E: de::Error>(self, found: &str) -> Result<Option<Cell>, E> {
        let (field, ty) = (self.field, self.ty);
        Err(self
            .problem
            .set(format!("field `{field}`: expected {ty}, found {found}")))
    }

    fn fail<E: de::Error>(self, why: &str) -> Result<Option<Cell>, E> {
        let field = self.field;
        Err(self.problem.set(format!("field `{field}`: {why}")))
    }

    fn int<E: de::Error>(self, x: i128) -> Result<Option<Cell>, E> {
        match self.ty {
            FeastType::Int32 if i32::try_from(x).is_err() => self.fail("out of the Int32 range"),
            FeastType::Int32 | FeastType::Int64 => match i64::try_from(x) {
                Ok(v) => Ok(Some(Cell::Int(v))),
                Err(_) => self.fail("out of the Int64 range"),
            },
            FeastType::Float32 | FeastType::Float64 => Ok(Some(Cell::Float(x as f64))),
            FeastType::UnixTimestamp => Ok(Some(Cell::Ts(time::epoch_to_us(x as f64)))),
            _ => self.wrong("a number"),
        }
    }
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_> {
    type Value = Option<Cell>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Cell>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CellSeed<'_> {
    type Value = Option<Cell>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value of type {}", self.ty)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Cell>, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, x: i64) -> Result<Option<Cell>, E> {
        self.int(i128::from(x))
    }

    fn visit_u64<E: de::Error>(self, x: u64) -> Result<Option<Cell>, E> {
        self.int(i128::from(x))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Option<Cell>, E> {
        match self.ty {
            FeastType::Float32 | FeastType::Float64 => Ok(Some(Cell::Float(x))),
            FeastType::UnixTimestamp if x.is_finite() => Ok(Some(Cell::Ts(time::epoch_to_us(x)))),
            FeastType::Int32 | FeastType::Int64 => self.fail("not an integer"),
            _ => self.wrong("a number"),
        }
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Option<Cell>, E> {
        match self.ty {
            FeastType::Bool => Ok(Some(Cell::Bool(b))),
            _ => self.wrong("a boolean"),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<Cell>, E> {
        match self.ty {
            FeastType::String => Ok(Some(Cell::Str(s.to_owned()))),
            FeastType::Bytes => match super::base64::decode(s) {
                Some(b) => Ok(Some(Cell::Bytes(b))),
                None => self.fail("not base64"),
            },
            FeastType::UnixTimestamp => match time::parse_us(s) {
                Some(t) => Ok(Some(Cell::Ts(t))),
                None => self.fail("not an ISO-8601 timestamp"),
            },
            _ => self.wrong("a string"),
        }
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Option<Cell>, E> {
        match self.ty {
            FeastType::String => Ok(Some(Cell::Str(s))),
            _ => self.visit_str(&s),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Cell>, A::Error> {
        let FeastType::Array(inner) = self.ty else {
            return self.wrong("an array");
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element_seed(CellSeed {
            ty: *inner,
            field: self.field,
            problem: &mut *self.problem,
        })? {
            items.push(item);
        }
        Ok(Some(Cell::List(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Option<Cell>, A::Error> {
        self.wrong("an object")
    }
}

/// Finds a record's key among the decoder's fields (`None`: not one of them).
struct KeySeed<'a>(&'a [(&'static str, &'static str, FeastType)]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|(field, _, _)| *field == s))
    }
}

/// Reads one record (a JSON object) into `row`, one slot per column, and
/// marks in `seen` the fields it has.
struct RecordSeed<'a> {
    columns: &'a [(&'static str, &'static str, FeastType)],
    row: &'a mut [Option<Cell>],
    seen: &'a mut [bool],
    problem: &'a mut Problem,
}

impl RecordSeed<'_> {
    fn not_object<E: de::Error>(self, found: &str) -> Result<(), E> {
        Err(self
            .problem
            .set(format!("expected a JSON object, found {found}")))
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed(self.columns))? {
            match key {
                Some(i) => {
                    self.seen[i] = true;
                    self.row[i] = map.next_value_seed(CellSeed {
                        ty: self.columns[i].2,
                        field: self.columns[i].0,
                        problem: &mut *self.problem,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_object("null")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_object("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_object("a number")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_object("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_object("a number")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_object("a string")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.not_object("an array")
    }
}

/// A column from JSON values of one type (a request's `df` column), read
/// as a record's field of that type would be; the error names the row.
pub fn column_from_json(
    name: &'static str,
    ty: FeastType,
    values: &[serde_json::Value],
) -> Result<Column, String> {
    let mut builder = Builder::new(ty, values.len());
    for (row, v) in values.iter().enumerate() {
        let mut problem = Problem::default();
        let cell = CellSeed {
            ty,
            field: name,
            problem: &mut problem,
        }
        .deserialize(v);
        match cell {
            Ok(c) => builder.push(c),
            Err(e) => {
                let reason = problem.0.unwrap_or_else(|| e.to_string());
                // `field `x`: why` -> `x[row]: why`
                let why = reason
                    .strip_prefix(&format!("field `{name}`: "))
                    .unwrap_or(&reason);
                return Err(format!("{name}[{row}]: {why}"));
            }
        }
    }
    Ok(builder
        .finish(PlSmallStr::from_static(name))
        .map_err(|e| e.to_string())?
        .into())
}

/// Why a column must have a value in every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Required {
    No,
    /// A join key or the event time: a row cannot be keyed without it.
    Key,
    /// Declared `NOT NULL` in `schema_json`.
    NotNull,
}

/// A source's decoder: its columns after `field_mapping`, and those that may
/// not be missing or null (join keys, the event time, `NOT NULL` columns).
#[derive(Debug)]
pub struct Decoder {
    /// (JSON field name, column name, type).
    columns: Vec<(&'static str, &'static str, FeastType)>,
    /// Per column: whether, and why, it must be present and non-null.
    required: Vec<Required>,
    max_record_bytes: usize,
}

impl Decoder {
    /// A decoder for `source`; `keys` (join keys, event time, named after
    /// `field_mapping`) and the source's `NOT NULL` columns must be present
    /// and non-null in every record.
    pub fn new(source: &DataSourceDef, keys: Vec<&'static str>) -> Decoder {
        let mapped = source.schema();
        let columns: Vec<(&'static str, &'static str, FeastType)> = source
            .raw_schema()
            .iter()
            .zip(mapped)
            .map(|(raw, m): (&FieldDef, FieldDef)| (raw.name, m.name, raw.dtype))
            .collect();
        let not_null = source.not_null_columns();
        let required = columns
            .iter()
            .map(|(field, name, _)| {
                if keys.contains(name) {
                    Required::Key
                } else if not_null.contains(field) {
                    Required::NotNull
                } else {
                    Required::No
                }
            })
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

    /// Reads one record into `row`, or says why it does not fit.
    fn record(
        &self,
        bytes: &[u8],
        row: &mut [Option<Cell>],
        seen: &mut [bool],
    ) -> Result<(), String> {
        if bytes.len() > self.max_record_bytes {
            return Err(format!(
                "record of {} bytes is over the {}-byte limit",
                bytes.len(),
                self.max_record_bytes
            ));
        }
        row.iter_mut().for_each(|c| *c = None);
        seen.iter_mut().for_each(|s| *s = false);
        let mut problem = Problem::default();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = de
            .deserialize_any(RecordSeed {
                columns: &self.columns,
                row,
                seen: &mut *seen,
                problem: &mut problem,
            })
            .and_then(|()| de.end());
        if let Err(e) = parsed {
            return Err(match problem.0 {
                Some(reason) => reason,
                None => format!("not JSON: {e}"),
            });
        }
        for (i, (field, _, _)) in self.columns.iter().enumerate() {
            if self.required[i] != Required::No && row[i].is_none() {
                let what = if seen[i] { "null" } else { "missing" };
                let why = match self.required[i] {
                    Required::NotNull => "it is declared NOT NULL",
                    _ => "it is required",
                };
                return Err(format!("field `{field}` is {what}; {why}"));
            }
        }
        Ok(())
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
        let mut row: Vec<Option<Cell>> = vec![None; self.columns.len()];
        let mut seen = vec![false; self.columns.len()];
        let mut height = 0;
        for (index, bytes) in records.enumerate() {
            match self.record(bytes, &mut row, &mut seen) {
                Ok(()) => {
                    for (b, c) in builders.iter_mut().zip(row.iter_mut()) {
                        b.push(c.take());
                    }
                    height += 1;
                }
                Err(reason) => rejected.push(Rejected { index, reason }),
            }
        }
        let columns: PolarsResult<Vec<Column>> = builders
            .into_iter()
            .zip(&self.columns)
            .map(|(b, (_, name, _))| Ok(b.finish(PlSmallStr::from_static(name))?.into()))
            .collect();
        let df = match columns.and_then(|c| DataFrame::new(height, c)) {
            Ok(df) => df,
            Err(e) => {
                // Not expected: every builder holds `height` cells of its
                // own type. Reject the batch rather than lose it silently.
                let reason = format!("cannot build the batch's columns: {e}");
                return (
                    DataFrame::empty(),
                    (0..n)
                        .map(|index| Rejected {
                            index,
                            reason: reason.clone(),
                        })
                        .collect(),
                );
            }
        };
        (df, rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{Location, RecordFormat, SourceKind};

    const LOCATION: Location = Location {
        module_path: "tests",
        file: "decode.rs",
        line: 1,
        column: 1,
    };

    static HISTORY: DataSourceDef = DataSourceDef {
        name: "history",
        kind: SourceKind::File {
            path: "data/history.parquet",
            schema: &[],
        },
        timestamp_field: "event_timestamp",
        created_timestamp_column: None,
        field_mapping: &[],
        description: "",
        tags: &[],
        owner: "",
        location: LOCATION,
    };

    static EVERY_TYPE: DataSourceDef = DataSourceDef {
        name: "every_type",
        kind: SourceKind::Kinesis {
            stream_name: "s",
            region: "us-east-1",
            record_format: RecordFormat::Json {
                schema_json: "",
                schema: &[
                    FieldDef {
                        name: "id",
                        dtype: FeastType::Int32,
                    },
                    FieldDef {
                        name: "big",
                        dtype: FeastType::Int64,
                    },
                    FieldDef {
                        name: "f",
                        dtype: FeastType::Float32,
                    },
                    FieldDef {
                        name: "d",
                        dtype: FeastType::Float64,
                    },
                    FieldDef {
                        name: "s",
                        dtype: FeastType::String,
                    },
                    FieldDef {
                        name: "b",
                        dtype: FeastType::Bool,
                    },
                    FieldDef {
                        name: "raw",
                        dtype: FeastType::Bytes,
                    },
                    FieldDef {
                        name: "ts",
                        dtype: FeastType::UnixTimestamp,
                    },
                    FieldDef {
                        name: "xs",
                        dtype: FeastType::Array(&FeastType::Float64),
                    },
                    FieldDef {
                        name: "names",
                        dtype: FeastType::Array(&FeastType::String),
                    },
                ],
                not_null: &[],
            },
            batch_source: &HISTORY,
        },
        timestamp_field: "ts",
        created_timestamp_column: None,
        // `id` in the records is `driver_id` for the views.
        field_mapping: &[("id", "driver_id")],
        description: "",
        tags: &[],
        owner: "",
        location: LOCATION,
    };

    fn decoder() -> Decoder {
        Decoder::new(&EVERY_TYPE, vec!["driver_id", "ts"])
    }

    fn decode(records: &[&str]) -> (DataFrame, Vec<Rejected>) {
        decoder().decode(records.iter().map(|r| r.as_bytes()))
    }

    /// 2025-01-01T00:00:00Z in microseconds.
    const T: i64 = 1_735_689_600_000_000;

    fn micros(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
        df.column(name)
            .unwrap()
            .cast(&DataType::Int64)
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect()
    }

    #[test]
    fn every_type_lands_in_its_column_with_field_mapping() {
        let (df, rejected) = decode(&[
            r#"{"id": 7, "big": 9007199254740993, "f": 0.5, "d": 1e-3, "s": "héllo\n", "b": true,
                "raw": "AAEC/w==", "ts": "2025-01-01T00:00:00Z", "xs": [1, 2.5, null], "names": ["a"],
                "ignored": {"nested": [1, 2]}}"#,
            r#"{"ts": "2025-01-01T01:00:00+01:00", "id": -3}"#,
        ]);
        assert_eq!(rejected, []);
        assert_eq!(
            df.get_column_names(),
            [
                "driver_id",
                "big",
                "f",
                "d",
                "s",
                "b",
                "raw",
                "ts",
                "xs",
                "names"
            ]
        );
        let schema = df.schema();
        assert_eq!(schema.get("driver_id"), Some(&DataType::Int32));
        assert_eq!(schema.get("ts"), Some(&FeastType::UnixTimestamp.dtype()));
        assert_eq!(
            schema.get("xs"),
            Some(&FeastType::Array(&FeastType::Float64).dtype())
        );
        let ids: Vec<Option<i32>> = df
            .column("driver_id")
            .unwrap()
            .i32()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(ids, [Some(7), Some(-3)]);
        let big: Vec<Option<i64>> = df.column("big").unwrap().i64().unwrap().iter().collect();
        assert_eq!(big, [Some(9_007_199_254_740_993), None]);
        assert_eq!(df.column("f").unwrap().f32().unwrap().get(0), Some(0.5));
        assert_eq!(df.column("d").unwrap().f64().unwrap().get(0), Some(0.001));
        assert_eq!(
            df.column("s").unwrap().str().unwrap().get(0),
            Some("héllo\n")
        );
        assert_eq!(df.column("b").unwrap().bool().unwrap().get(1), None);
        assert_eq!(
            df.column("raw").unwrap().binary().unwrap().get(0),
            Some(&[0u8, 1, 2, 255][..])
        );
        assert_eq!(micros(&df, "ts"), [Some(T), Some(T)]);
        let xs = df
            .column("xs")
            .unwrap()
            .list()
            .unwrap()
            .get_as_series(0)
            .unwrap();
        assert_eq!(
            xs.f64().unwrap().iter().collect::<Vec<_>>(),
            [Some(1.0), Some(2.5), None]
        );
        assert!(
            df.column("xs")
                .unwrap()
                .list()
                .unwrap()
                .get_as_series(1)
                .is_none()
        );
    }

    #[test]
    fn timestamps_are_iso_strings_or_epoch_numbers_of_any_unit() {
        let (df, rejected) = decode(&[
            r#"{"id": 1, "ts": "2025-01-01T00:00:00.25Z"}"#,
            r#"{"id": 1, "ts": "2025-01-01 00:00:00"}"#,
            r#"{"id": 1, "ts": "2025-01-01T00:00:00.000001"}"#,
            r#"{"id": 1, "ts": 1735689600}"#,
            r#"{"id": 1, "ts": 1735689600.5}"#,
            r#"{"id": 1, "ts": 1735689600123}"#,
            r#"{"id": 1, "ts": 1735689600123456}"#,
        ]);
        assert_eq!(rejected, []);
        assert_eq!(
            micros(&df, "ts"),
            [
                Some(T + 250_000),
                Some(T),
                Some(T + 1),
                Some(T),
                Some(T + 500_000),
                Some(T + 123_000),
                Some(T + 123_456),
            ]
        );
    }

    #[test]
    fn bad_records_are_rejected_with_the_reason_and_the_rest_kept_in_order() {
        let records = [
            r#"{"id": 1, "ts": 1735689600, "s": "first"}"#,
            r#"{"id": 1, "ts": 1735689600"#,
            r#"[1, 2]"#,
            r#"{"id": 1.5, "ts": 1735689600}"#,
            r#"{"id": 2147483648, "ts": 1735689600}"#,
            r#"{"id": null, "ts": 1735689600}"#,
            r#"{"ts": 1735689600}"#,
            r#"{"id": 1}"#,
            r#"{"id": 1, "ts": "noon"}"#,
            r#"{"id": 1, "ts": 1735689600, "f": "fast"}"#,
            r#"{"id": 1, "ts": 1735689600, "raw": "not base64!"}"#,
            r#"{"id": 1, "ts": 1735689600, "xs": [1, "two"]}"#,
            r#"{"id": 1, "ts": 1735689600, "names": "solo"}"#,
            r#"{"id": 1, "ts": 1735689600, "b": {}}"#,
            r#"{"id": 1, "ts": 1735689600} trailing"#,
            r#"{"id": 2, "ts": 1735689600, "s": "last"}"#,
        ];
        let (df, rejected) = decode(&records);
        let reasons: Vec<(usize, &str)> = rejected
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    1,
                    "not JSON: EOF while parsing an object at line 1 column 26"
                ),
                (2, "expected a JSON object, found an array"),
                (3, "field `id`: not an integer"),
                (4, "field `id`: out of the Int32 range"),
                (5, "field `id` is null; it is required"),
                (6, "field `id` is missing; it is required"),
                (7, "field `ts` is missing; it is required"),
                (8, "field `ts`: not an ISO-8601 timestamp"),
                (9, "field `f`: expected Float32, found a string"),
                (10, "field `raw`: not base64"),
                (11, "field `xs`: expected Float64, found a string"),
                (12, "field `names`: expected Array(String), found a string"),
                (13, "field `b`: expected Bool, found an object"),
                (14, "not JSON: trailing characters at line 1 column 29"),
            ]
        );
        let s: Vec<Option<&str>> = df.column("s").unwrap().str().unwrap().iter().collect();
        assert_eq!(s, [Some("first"), Some("last")]);
    }

    static CARDS: DataSourceDef = DataSourceDef {
        name: "cards",
        kind: SourceKind::Kinesis {
            stream_name: "s",
            region: "us-east-1",
            record_format: RecordFormat::Json {
                schema_json: "card string, amount double not null, merchant string, ts timestamp",
                schema: &[
                    FieldDef {
                        name: "card",
                        dtype: FeastType::String,
                    },
                    FieldDef {
                        name: "amount",
                        dtype: FeastType::Float64,
                    },
                    FieldDef {
                        name: "merchant",
                        dtype: FeastType::String,
                    },
                    FieldDef {
                        name: "ts",
                        dtype: FeastType::UnixTimestamp,
                    },
                ],
                not_null: &["amount"],
            },
            batch_source: &HISTORY,
        },
        timestamp_field: "ts",
        created_timestamp_column: None,
        // NOT NULL names the field as sent, whatever views call it.
        field_mapping: &[("amount", "value")],
        description: "",
        tags: &[],
        owner: "",
        location: LOCATION,
    };

    #[test]
    fn a_not_null_field_missing_or_null_rejects_the_record_and_others_may_be_null() {
        let (df, rejected) = Decoder::new(&CARDS, vec!["card", "ts"]).decode(
            [
                r#"{"card": "c1", "amount": 12.5, "ts": 1735689600}"#,
                r#"{"card": "c2", "ts": 1735689600, "merchant": "m"}"#,
                r#"{"card": "c3", "amount": null, "ts": 1735689600}"#,
                r#"{"card": "c4", "amount": "12", "ts": 1735689600}"#,
                r#"{"card": "c5", "amount": 0, "merchant": null, "ts": 1735689600}"#,
            ]
            .into_iter()
            .map(str::as_bytes),
        );
        let reasons: Vec<(usize, &str)> = rejected
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (1, "field `amount` is missing; it is declared NOT NULL"),
                (2, "field `amount` is null; it is declared NOT NULL"),
                (3, "field `amount`: expected Float64, found a string"),
            ]
        );
        let value: Vec<Option<f64>> = df.column("value").unwrap().f64().unwrap().iter().collect();
        assert_eq!(value, [Some(12.5), Some(0.0)]);
        let merchant: Vec<Option<&str>> = df
            .column("merchant")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(merchant, [None, None]);
    }

    #[test]
    fn oversize_records_are_rejected_before_parsing() {
        let d = decoder().with_max_record_bytes(32);
        let long = format!(
            r#"{{"id": 1, "ts": 1735689600, "s": "{}"}}"#,
            "x".repeat(40)
        );
        let (df, rejected) = d.decode([long.as_bytes()].into_iter());
        assert_eq!(df.height(), 0);
        assert_eq!(
            rejected,
            [Rejected {
                index: 0,
                reason: format!("record of {} bytes is over the 32-byte limit", long.len())
            }]
        );
    }
}
