//! Decoding stream records (JSON objects, Feast's `JsonFormat`) straight into
//! Polars columns, one builder per column of the source's schema
//! ([`crate::transform::column`]).
//!
//! Each record is read with a streaming serde visitor: known fields are
//! parsed into their column's type as they are met, unknown ones skipped,
//! and no JSON tree is built. A record that does not fit (not JSON, not an
//! object, a mistyped field, a missing or null join key, event time or `NOT
//! NULL` field, too large) is returned with the reason, for the dead-letter
//! sink, and adds nothing to the frame.

use std::fmt;

use polars::prelude::*;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::definition::{DataSourceDef, FeastType, FieldDef};
use crate::transform::column::{Builder, Cell, CellSeed, FieldError, Problem, ProblemKind};

/// A record that was rejected, and why.
#[derive(Debug)]
pub struct Rejected {
    /// Index of the record in the batch.
    pub index: usize,
    pub reason: RecordError,
}

/// Why a record cannot be ingested.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record of {bytes} bytes is over the {limit}-byte limit")]
    TooLarge { bytes: usize, limit: usize },
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("expected a JSON object, found {0}")]
    NotObject(&'static str),
    #[error(transparent)]
    Field(FieldError),
    #[error(
        "field `{field}` is {}; {}",
        if *null { "null" } else { "missing" },
        if *declared_not_null { "it is declared NOT NULL" } else { "it is required" }
    )]
    Absent {
        field: &'static str,
        null: bool,
        declared_not_null: bool,
    },
    #[error("cannot build the batch's columns: {0}")]
    Columns(std::sync::Arc<PolarsError>),
}

/// Records larger than this are rejected before parsing, by default (the
/// default maximum record size of a Kinesis stream).
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// Finds a record's key among the decoder's fields (`None`: not one of them).
pub(crate) struct KeySeed<'a>(&'a [(&'static str, &'static str, FeastType)]);

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
    fn not_object<E: de::Error>(self, found: &'static str) -> Result<(), E> {
        Err(self.problem.set(ProblemKind::NotObject(found)))
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
    ) -> Result<(), RecordError> {
        if bytes.len() > self.max_record_bytes {
            return Err(RecordError::TooLarge {
                bytes: bytes.len(),
                limit: self.max_record_bytes,
            });
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
                Some(ProblemKind::Field(f)) => RecordError::Field(f),
                Some(ProblemKind::NotObject(found)) => RecordError::NotObject(found),
                None => RecordError::NotJson(e),
            });
        }
        for (i, (field, _, _)) in self.columns.iter().enumerate() {
            if self.required[i] != Required::No && row[i].is_none() {
                return Err(RecordError::Absent {
                    field,
                    null: seen[i],
                    declared_not_null: self.required[i] == Required::NotNull,
                });
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
                let e = std::sync::Arc::new(e);
                return (
                    DataFrame::empty(),
                    (0..n)
                        .map(|index| Rejected {
                            index,
                            reason: RecordError::Columns(e.clone()),
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
    use crate::definition::fixtures::{self, AT};
    use crate::definition::{RecordFormat, SourceKind};

    static HISTORY: DataSourceDef = fixtures::file_source("history", "data/history.parquet", &[]);

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
        location: AT,
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
        assert!(rejected.is_empty(), "{rejected:?}");
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
        assert!(rejected.is_empty(), "{rejected:?}");
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
        let reasons: Vec<(usize, String)> = rejected
            .iter()
            .map(|r| (r.index, r.reason.to_string()))
            .collect();
        let reasons: Vec<(usize, &str)> = reasons.iter().map(|(i, r)| (*i, r.as_str())).collect();
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
        location: AT,
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
        let reasons: Vec<(usize, String)> = rejected
            .iter()
            .map(|r| (r.index, r.reason.to_string()))
            .collect();
        let reasons: Vec<(usize, &str)> = reasons.iter().map(|(i, r)| (*i, r.as_str())).collect();
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
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].index, 0);
        assert_eq!(
            rejected[0].reason.to_string(),
            format!("record of {} bytes is over the 32-byte limit", long.len())
        );
    }
}
