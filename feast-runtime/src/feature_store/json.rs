//! Feast's JSON: the feature server's column-major online response, its
//! request shapes (entity rows as `{join_key: [values]}`, frames as
//! `{column: [values]}`), and values as Feast prints them.

use chrono::{DateTime, Utc};
use polars::prelude::{Column, DataFrame};

use crate::definition::{FeastType, FieldDef, JoinKeyValue, Value};
use crate::feature_store::{FeatureStore, OnlineResponse};
use crate::transform::column::{ColumnError, column_from_json};

/// A value as JSON, as Feast's server prints it.
pub fn value_json(v: &Value) -> serde_json::Value {
    use serde_json::json;
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bytes(b) => json!(b),
        Value::String(s) => json!(s),
        Value::Int32(i) => json!(i),
        Value::Int64(i) => json!(i),
        Value::Float64(f) => json!(f),
        Value::Float32(f) => json!(f64::from(*f)),
        Value::Bool(b) => json!(b),
        Value::UnixTimestamp(s) => json!(s),
        Value::BytesList(v) => json!(v),
        Value::StringList(v) => json!(v),
        Value::Int32List(v) => json!(v),
        Value::Int64List(v) => json!(v),
        Value::Float64List(v) => json!(v),
        Value::Float32List(v) => json!(v.iter().map(|f| f64::from(*f)).collect::<Vec<_>>()),
        Value::BoolList(v) => json!(v),
        Value::UnixTimestampList(v) => json!(v),
    }
}

/// Feast's column-major JSON response. Event times are protobuf JSON
/// `Timestamp`s, as Feast prints them: 0, 3, 6 or 9 fractional digits, `Z`.
pub fn feast_json(r: &OnlineResponse) -> serde_json::Value {
    let ts = |us: i64| {
        DateTime::<Utc>::from_timestamp_micros(us)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    };
    serde_json::json!({
        "metadata": {"feature_names": r.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()},
        "results": r.columns.iter().map(|c| serde_json::json!({
            "values": c.values.iter().map(value_json).collect::<Vec<_>>(),
            "statuses": c.statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "event_timestamps": c.event_timestamps_us.iter().map(|t| ts(*t)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// A request body that does not fit Feast's shapes; each names the field.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("`entities` is empty; expected {{\"join_key\": [values]}}")]
    NoEntities,
    #[error("no entity has the join key `{key}`; join keys: {}", join_keys.join(", "))]
    UnknownJoinKey {
        key: String,
        join_keys: Vec<&'static str>,
    },
    #[error("{path}: expected an array of values")]
    NotAnArray { path: String },
    #[error("{path} has {found} values, but the other {others} have {expected}")]
    Length {
        path: String,
        found: usize,
        others: &'static str,
        expected: usize,
    },
    #[error("entities.{key}[{row}]: expected {expected}, found {found}")]
    JoinKey {
        key: String,
        row: usize,
        expected: FeastType,
        found: serde_json::Value,
    },
    #[error("df: unknown column `{name}`; expected columns: {}", expected.join(", "))]
    UnknownColumn {
        name: String,
        expected: Vec<&'static str>,
    },
    #[error("df.{0}")]
    Column(#[source] ColumnError),
    #[error("df: {0}")]
    Frame(#[source] polars::prelude::PolarsError),
}

/// Entity rows from Feast's `entities` object (`{"driver_id": [1001, 1002]}`),
/// each join key's values read as its entity's type. The strings of string
/// and bytes keys are borrowed from `entities`.
pub fn entity_rows<'a>(
    store: &FeatureStore,
    entities: &'a serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<(&'a str, Vec<JoinKeyValue<'a>>)>, RequestError> {
    if entities.is_empty() {
        return Err(RequestError::NoEntities);
    }
    let mut rows = Vec::with_capacity(entities.len());
    let mut len = None;
    for (key, values) in entities {
        let entity = store
            .registry()
            .entities()
            .find(|e| e.join_key == key)
            .ok_or_else(|| RequestError::UnknownJoinKey {
                key: key.clone(),
                join_keys: store.registry().entities().map(|e| e.join_key).collect(),
            })?;
        let values = array_of_len(values, || format!("entities.{key}"), &mut len, "join keys")?;
        let parsed = values
            .iter()
            .enumerate()
            .map(|(row, v)| {
                let wrong = || RequestError::JoinKey {
                    key: key.clone(),
                    row,
                    expected: entity.value_type,
                    found: v.clone(),
                };
                Ok(match entity.value_type {
                    FeastType::Int64 => JoinKeyValue::Int64(v.as_i64().ok_or_else(wrong)?),
                    FeastType::Int32 => JoinKeyValue::Int32(
                        v.as_i64()
                            .and_then(|x| i32::try_from(x).ok())
                            .ok_or_else(wrong)?,
                    ),
                    FeastType::Bytes => {
                        JoinKeyValue::Bytes(v.as_str().ok_or_else(wrong)?.as_bytes())
                    }
                    _ => JoinKeyValue::String(v.as_str().ok_or_else(wrong)?),
                })
            })
            .collect::<Result<Vec<_>, RequestError>>()?;
        rows.push((key.as_str(), parsed));
    }
    Ok(rows)
}

/// `value` (at `path`) as an array as long as its `others` seen so far
/// (`len`, set by the first).
fn array_of_len<'v>(
    value: &'v serde_json::Value,
    path: impl Fn() -> String,
    len: &mut Option<usize>,
    others: &'static str,
) -> Result<&'v Vec<serde_json::Value>, RequestError> {
    let values = value
        .as_array()
        .ok_or_else(|| RequestError::NotAnArray { path: path() })?;
    let expected = *len.get_or_insert(values.len());
    if expected != values.len() {
        return Err(RequestError::Length {
            path: path(),
            found: values.len(),
            others,
            expected,
        });
    }
    Ok(values)
}

/// A frame from Feast's `df` object (`{"column": [values]}`), each column
/// read as its type in `schema`: timestamps as ISO-8601 strings or epoch
/// numbers, as stream records are. A column `schema` does not name is an
/// error, as is one of another length; a missing column is left out.
pub fn frame(
    df: &serde_json::Map<String, serde_json::Value>,
    schema: &[FieldDef],
) -> Result<DataFrame, RequestError> {
    let mut columns: Vec<Column> = Vec::with_capacity(df.len());
    let mut height = None;
    for (name, values) in df {
        let field =
            schema
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| RequestError::UnknownColumn {
                    name: name.clone(),
                    expected: schema.iter().map(|f| f.name).collect(),
                })?;
        let values = array_of_len(values, || format!("df.{name}"), &mut height, "columns")?;
        columns
            .push(column_from_json(field.name, field.dtype, values).map_err(RequestError::Column)?);
    }
    DataFrame::new(height.unwrap_or(0), columns).map_err(RequestError::Frame)
}
