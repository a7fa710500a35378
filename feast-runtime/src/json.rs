//! Feast's JSON: the feature server's column-major online response, its
//! request shapes (entity rows as `{join_key: [values]}`, frames as
//! `{column: [values]}`), and values as Feast prints them.

use chrono::{DateTime, Utc};
use polars::prelude::{Column, DataFrame};

use crate::definition::Value;
use crate::definition::{FeastType, FieldDef, JoinKeyValue};
use crate::feature_store::{FeatureStore, OnlineResponse};

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

/// Entity rows from Feast's `entities` object (`{"driver_id": [1001, 1002]}`),
/// each join key's values read as its entity's type. The strings of string
/// and bytes keys are borrowed from `entities`.
pub fn entity_rows<'a>(
    store: &FeatureStore,
    entities: &'a serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<(&'a str, Vec<JoinKeyValue<'a>>)>, String> {
    if entities.is_empty() {
        return Err("`entities` is empty; expected {\"join_key\": [values]}".into());
    }
    let mut rows = Vec::with_capacity(entities.len());
    let mut len = None;
    for (key, values) in entities {
        let entity = store
            .registry()
            .entities()
            .find(|e| e.join_key == key)
            .ok_or_else(|| {
                let keys: Vec<&str> = store.registry().entities().map(|e| e.join_key).collect();
                format!(
                    "no entity has the join key `{key}`; join keys: {}",
                    keys.join(", ")
                )
            })?;
        let values = array_of_len(values, &format!("entities.{key}"), &mut len, "join keys")?;
        let parsed = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let wrong = || {
                    format!(
                        "entities.{key}[{i}]: expected {}, found {v}",
                        entity.value_type
                    )
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
            .collect::<Result<Vec<_>, String>>()?;
        rows.push((key.as_str(), parsed));
    }
    Ok(rows)
}

/// `value` (at `path`) as an array as long as its `others` seen so far
/// (`len`, set by the first).
fn array_of_len<'v>(
    value: &'v serde_json::Value,
    path: &str,
    len: &mut Option<usize>,
    others: &str,
) -> Result<&'v Vec<serde_json::Value>, String> {
    let values = value
        .as_array()
        .ok_or_else(|| format!("{path}: expected an array of values"))?;
    let expected = *len.get_or_insert(values.len());
    if expected != values.len() {
        return Err(format!(
            "{path} has {} values, but the other {others} have {expected}",
            values.len()
        ));
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
) -> Result<DataFrame, String> {
    let mut columns: Vec<Column> = Vec::with_capacity(df.len());
    let mut height = None;
    for (name, values) in df {
        let field = schema.iter().find(|f| f.name == name).ok_or_else(|| {
            let names: Vec<&str> = schema.iter().map(|f| f.name).collect();
            format!(
                "df: unknown column `{name}`; expected columns: {}",
                names.join(", ")
            )
        })?;
        let values = array_of_len(values, &format!("df.{name}"), &mut height, "columns")?;
        columns.push(
            crate::transform::column::column_from_json(field.name, field.dtype, values)
                .map_err(|e| format!("df.{e}"))?,
        );
    }
    DataFrame::new(height.unwrap_or(0), columns).map_err(|e| format!("df: {e}"))
}
