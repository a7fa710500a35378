//! Items that generated code names by absolute path. Not a public API.

pub use inventory;
pub use polars::prelude::DataFrame;

pub use crate::definition::*;

use chrono::{DateTime, Utc};

/// A timestamp from microseconds since the epoch.
pub fn timestamp_from_us(us: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A row field's type, read from a stored `Value`.
pub trait FromValue: Sized {
    fn from_value(v: Option<Value>) -> Result<Option<Self>, DecodeError>;
}

macro_rules! from_value {
    ($($t:ty => $variant:ident $(($conv:expr))?),* $(,)?) => {$(
        impl FromValue for $t {
            fn from_value(v: Option<Value>) -> Result<Option<Self>, DecodeError> {
                match v {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::$variant(x)) => Ok(Some(from_value!(@conv x $(, $conv)?))),
                    Some(other) => Err(DecodeError::WrongType {
                        expected: stringify!($variant),
                        found: other.kind_name(),
                    }),
                }
            }
        }
    )*};
    (@conv $x:ident) => { $x };
    (@conv $x:ident, $conv:expr) => { $conv($x) };
}

fn seconds(s: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(s, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn seconds_list(v: Vec<i64>) -> Vec<DateTime<Utc>> {
    v.into_iter().map(seconds).collect()
}

from_value! {
    i32 => Int32,
    i64 => Int64,
    f32 => Float32,
    f64 => Float64,
    String => String,
    Vec<u8> => Bytes,
    bool => Bool,
    DateTime<Utc> => UnixTimestamp(seconds),
    Vec<i32> => Int32List,
    Vec<i64> => Int64List,
    Vec<f32> => Float32List,
    Vec<f64> => Float64List,
    Vec<String> => StringList,
    Vec<Vec<u8>> => BytesList,
    Vec<bool> => BoolList,
    Vec<DateTime<Utc>> => UnixTimestampList(seconds_list),
}

/// `T::DEF` for a stream source (Kinesis or push).
pub const fn stream_source<T: StreamSource>() -> &'static DataSourceDef {
    T::DEF
}

/// `T::DEF` for a batch (file) source.
pub const fn batch_source<T: BatchSource>() -> &'static DataSourceDef {
    T::DEF
}

/// `T::DEF` for a feature view.
pub const fn feature_view<T: FeatureView>() -> &'static FeatureViewDef {
    T::DEF
}

/// The argument type of a view function.
#[diagnostic::on_unimplemented(
    message = "a feature view function takes a polars `DataFrame`, not `{Self}`",
    label = "expected `DataFrame`",
    note = "the shape is `fn name(df: DataFrame) -> PolarsResult<DataFrame>`"
)]
pub trait TransformInput {
    fn from_frame(df: DataFrame) -> Self;
}

impl TransformInput for DataFrame {
    fn from_frame(df: DataFrame) -> Self {
        df
    }
}

/// The return type of a view function.
#[diagnostic::on_unimplemented(
    message = "a feature view function returns `PolarsResult<DataFrame>`, not `{Self}`",
    label = "expected `PolarsResult<DataFrame>`",
    note = "any `Result<DataFrame, E>` works when `E` converts into `Box<dyn Error + Send + Sync>` (PolarsError, anyhow::Error, ...)"
)]
pub trait TransformOutput {
    fn into_result(self) -> Result<DataFrame, BoxError>;
}

impl<E: Into<BoxError>> TransformOutput for Result<DataFrame, E> {
    fn into_result(self) -> Result<DataFrame, BoxError> {
        self.map_err(Into::into)
    }
}

fn invalid_transform(_: DataFrame) -> Result<DataFrame, BoxError> {
    Err("this view failed to compile".into())
}

const NOWHERE: Location = Location {
    module_path: "",
    file: "",
    line: 0,
    column: 0,
};

/// Stands in for a source whose macro reported errors (see [`INVALID_VIEW`]).
pub static INVALID_SOURCE: DataSourceDef = DataSourceDef {
    name: "",
    kind: SourceKind::File {
        path: "",
        schema: &[],
    },
    timestamp_field: "",
    created_timestamp_column: None,
    field_mapping: &[],
    description: "",
    tags: &[],
    owner: "",
    location: NOWHERE,
};

/// Stands in for an entity whose macro reported errors (see [`INVALID_VIEW`]).
pub static INVALID_ENTITY: EntityDef = EntityDef {
    name: "",
    join_key: "",
    value_type: FeastType::Int64,
    description: "",
    tags: &[],
    owner: "",
    location: NOWHERE,
};

/// Stands in for a view whose macro reported errors, so that code naming it
/// compiles far enough to show only the real errors. Never registered.
pub static INVALID_VIEW: FeatureViewDef = FeatureViewDef {
    name: "",
    kind: ViewKind::Stream,
    entities: &[],
    source: &INVALID_SOURCE,
    schema: &[],
    output: &[],
    aggregations: &[],
    ttl_seconds: 0,
    timestamp_field: None,
    online: false,
    offline: false,
    description: "",
    tags: &[],
    owner: "",
    transform: invalid_transform,
    location: NOWHERE,
};

/// The type of column `name` in the rows a view over `source` receives (its
/// batch source's columns, after that source's `field_mapping`), if it has
/// one. Evaluated at compile time for aggregations over source columns.
pub const fn input_column(source: &DataSourceDef, name: &str) -> Option<FeastType> {
    let batch = match source.kind {
        SourceKind::Kinesis { batch_source, .. } | SourceKind::Push { batch_source } => {
            batch_source
        }
        SourceKind::File { .. } => source,
    };
    let SourceKind::File { schema, .. } = batch.kind else {
        return None;
    };
    let mut i = 0;
    while i < schema.len() {
        let mut column = schema[i].name;
        let mut j = 0;
        while j < batch.field_mapping.len() {
            if str_eq(batch.field_mapping[j].0, column) {
                column = batch.field_mapping[j].1;
            }
            j += 1;
        }
        if str_eq(column, name) {
            return Some(schema[i].dtype);
        }
        i += 1;
    }
    None
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A number for each scalar type and each array of one, so that a type
/// computed at compile time can name its Rust type through [`RustOf`].
pub const fn type_code(t: FeastType) -> u8 {
    match t {
        FeastType::Int32 => 1,
        FeastType::Int64 => 2,
        FeastType::Float32 => 3,
        FeastType::Float64 => 4,
        FeastType::String => 5,
        FeastType::Bytes => 6,
        FeastType::Bool => 7,
        FeastType::UnixTimestamp => 8,
        FeastType::Array(inner) => 100 + type_code_scalar(*inner),
    }
}

const fn type_code_scalar(t: FeastType) -> u8 {
    match t {
        FeastType::Array(_) => 0,
        scalar => type_code(scalar),
    }
}

/// The Feast type numbered `C` by [`type_code`].
#[derive(Debug)]
pub struct Typed<const C: u8>;

/// The Rust type of a row field of a [`Typed`] Feast type.
pub trait RustOf {
    /// The field's type.
    type T;
}

macro_rules! rust_of {
    ($($code:literal => $t:ty),* $(,)?) => {$(
        impl RustOf for Typed<$code> {
            type T = $t;
        }
    )*};
}

rust_of! {
    1 => i32, 2 => i64, 3 => f32, 4 => f64, 5 => String, 6 => Vec<u8>, 7 => bool, 8 => DateTime<Utc>,
    101 => Vec<i32>, 102 => Vec<i64>, 103 => Vec<f32>, 104 => Vec<f64>, 105 => Vec<String>,
    106 => Vec<Vec<u8>>, 107 => Vec<bool>, 108 => Vec<DateTime<Utc>>,
}
