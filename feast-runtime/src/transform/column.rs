//! JSON values into typed Polars columns: one builder per column, and a
//! serde visitor that reads a JSON value straight into its column's type (no
//! JSON tree), for stream records and for HTTP request bodies alike.
//!
//! Values follow Spark's `from_json` for the DDL types of `schema_json`:
//! integers must be whole numbers in range; `float` and `double` take any
//! number; `timestamp` takes a string of the time grammar
//! ([`crate::definition::time`]) or epoch seconds, milliseconds or
//! microseconds (told apart by magnitude); `binary` takes base64; arrays take
//! JSON arrays of their element type.

use std::fmt;

use polars::prelude::*;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::definition::{FeastType, time};

/// One parsed value, already checked against its column's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
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
pub(crate) enum Builder {
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
    pub(crate) fn new(ty: FeastType, cap: usize) -> Builder {
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
    pub(crate) fn push(&mut self, cell: Option<Cell>) {
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

    pub(crate) fn finish(self, name: PlSmallStr) -> PolarsResult<Series> {
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

/// Why a JSON value is not a value of its column's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: FeastType,
        found: &'static str,
    },
    #[error("not an integer")]
    NotInteger,
    #[error("out of the {0} range")]
    OutOfRange(FeastType),
    #[error("not base64")]
    NotBase64,
    #[error("not an ISO-8601 timestamp")]
    NotTimestamp,
}

/// A field's value that does not fit its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {error}")]
pub struct FieldError {
    pub field: &'static str,
    pub error: CellError,
}

/// The first problem met in a record; the serde error itself only carries
/// it out of the visitor.
#[derive(Debug, Default)]
pub(crate) struct Problem(pub(crate) Option<ProblemKind>);

/// What a visitor met.
#[derive(Debug)]
pub(crate) enum ProblemKind {
    Field(FieldError),
    /// A record that is not a JSON object (what it is instead).
    NotObject(&'static str),
}

impl Problem {
    pub(crate) fn set<E: de::Error>(&mut self, problem: ProblemKind) -> E {
        if self.0.is_none() {
            self.0 = Some(problem);
        }
        E::custom("rejected")
    }
}

/// Parses one JSON value as `ty`. `field` names it in errors.
pub(crate) struct CellSeed<'p> {
    pub(crate) ty: FeastType,
    pub(crate) field: &'static str,
    pub(crate) problem: &'p mut Problem,
}

impl CellSeed<'_> {
    fn wrong<E: de::Error>(self, found: &'static str) -> Result<Option<Cell>, E> {
        let expected = self.ty;
        self.fail(CellError::WrongType { expected, found })
    }

    fn fail<E: de::Error>(self, error: CellError) -> Result<Option<Cell>, E> {
        let field = self.field;
        Err(self
            .problem
            .set(ProblemKind::Field(FieldError { field, error })))
    }

    fn int<E: de::Error>(self, x: i128) -> Result<Option<Cell>, E> {
        match self.ty {
            FeastType::Int32 if i32::try_from(x).is_err() => {
                self.fail(CellError::OutOfRange(FeastType::Int32))
            }
            FeastType::Int32 | FeastType::Int64 => match i64::try_from(x) {
                Ok(v) => Ok(Some(Cell::Int(v))),
                Err(_) => self.fail(CellError::OutOfRange(FeastType::Int64)),
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
            FeastType::Int32 | FeastType::Int64 => self.fail(CellError::NotInteger),
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
                None => self.fail(CellError::NotBase64),
            },
            FeastType::UnixTimestamp => match time::parse_us(s) {
                Some(t) => Ok(Some(Cell::Ts(t))),
                None => self.fail(CellError::NotTimestamp),
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

/// A column from JSON values of one type (a request's `df` column), read
/// as a record's field of that type would be; the error names the row.
pub fn column_from_json(
    name: &'static str,
    ty: FeastType,
    values: &[serde_json::Value],
) -> Result<Column, ColumnError> {
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
            Err(_) => {
                return Err(match problem.0 {
                    Some(ProblemKind::Field(f)) => ColumnError::Cell {
                        column: name,
                        row,
                        error: f.error,
                    },
                    // A JSON value is always read, right or wrong.
                    _ => ColumnError::Cell {
                        column: name,
                        row,
                        error: CellError::WrongType {
                            expected: ty,
                            found: "an unreadable value",
                        },
                    },
                });
            }
        }
    }
    Ok(builder.finish(PlSmallStr::from_static(name))?.into())
}

/// A JSON column that cannot be a column of its type.
#[derive(Debug, thiserror::Error)]
pub enum ColumnError {
    #[error("{column}[{row}]: {error}")]
    Cell {
        column: &'static str,
        row: usize,
        error: CellError,
    },
    #[error(transparent)]
    Polars(#[from] PolarsError),
}
