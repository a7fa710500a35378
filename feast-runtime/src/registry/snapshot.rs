//! The registry as data: what `list --json` prints, and (built from Feast's
//! format by `feast::describe`) what `plan` compares.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Registry;
use crate::definition::{
    DataSourceDef, EntityDef, FeatureServiceDef, FeatureViewDef, FieldDef, Pairs, RecordFormat,
    SourceKind,
};

/// The format version of the registry file.
pub const FORMAT_VERSION: u32 = 1;

/// Every definition as JSON, each kind keyed by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub feast_rs_registry: u32,
    pub project: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    pub entities: BTreeMap<String, Value>,
    pub data_sources: BTreeMap<String, Value>,
    pub feature_views: BTreeMap<String, Value>,
    pub feature_services: BTreeMap<String, Value>,
}

fn fields(schema: &[FieldDef]) -> Value {
    Value::Array(
        schema
            .iter()
            .map(|f| json!({"name": f.name, "dtype": f.dtype.to_string()}))
            .collect(),
    )
}

fn pairs(p: Pairs) -> Value {
    Value::Object(
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect(),
    )
}

fn entity(e: &EntityDef) -> Value {
    json!({
        "name": e.name,
        "join_key": e.join_key,
        "value_type": e.value_type.to_string(),
        "description": e.description,
        "tags": pairs(e.tags),
        "owner": e.owner,
    })
}

fn source(s: &DataSourceDef) -> Value {
    let mut v = json!({
        "name": s.name,
        "type": s.kind_name(),
        "description": s.description,
        "tags": pairs(s.tags),
        "owner": s.owner,
    });
    let obj = v.as_object_mut().expect("json! object");
    if !matches!(s.kind, SourceKind::Push { .. }) {
        obj.insert("timestamp_field".into(), s.timestamp_field.into());
        obj.insert(
            "created_timestamp_column".into(),
            s.created_timestamp_column.into(),
        );
        obj.insert("field_mapping".into(), pairs(s.field_mapping));
    }
    match s.kind {
        SourceKind::File { path, schema } => {
            obj.insert("path".into(), path.into());
            obj.insert("schema".into(), fields(schema));
        }
        SourceKind::Kinesis {
            stream_name,
            region,
            record_format:
                RecordFormat::Json {
                    schema_json,
                    schema,
                    not_null: _,
                },
            batch_source,
        } => {
            obj.insert("stream_name".into(), stream_name.into());
            obj.insert("region".into(), region.into());
            obj.insert(
                "record_format".into(),
                json!({"json_format": {"schema_json": schema_json}}),
            );
            obj.insert("schema".into(), fields(schema));
            obj.insert("batch_source".into(), batch_source.name.into());
        }
        SourceKind::Push { batch_source } => {
            obj.insert("batch_source".into(), batch_source.name.into());
        }
    }
    v
}

fn view(v: &FeatureViewDef) -> Value {
    let mut out = plain_view(v);
    if v.is_aggregated() {
        let obj = out.as_object_mut().expect("json! object");
        obj.insert("output".into(), fields(v.output));
        obj.insert(
            "aggregations".into(),
            v.aggregations
                .iter()
                .map(|a| {
                    json!({
                        "name": a.name,
                        "column": a.column,
                        "function": a.function.to_string(),
                        "time_window_seconds": a.window_seconds,
                        "slide_interval_seconds": a.slide_seconds,
                    })
                })
                .collect::<Vec<_>>()
                .into(),
        );
    }
    out
}

fn plain_view(v: &FeatureViewDef) -> Value {
    json!({
        "name": v.name,
        "type": v.kind.as_str(),
        "entities": v.entities.iter().map(|e| e.name).collect::<Vec<_>>(),
        "source": v.source.name,
        "schema": fields(v.schema),
        "ttl_seconds": v.ttl_seconds,
        "timestamp_field": v.event_timestamp_field(),
        "online": v.online,
        "offline": v.offline,
        "description": v.description,
        "tags": pairs(v.tags),
        "owner": v.owner,
    })
}

fn service(s: &FeatureServiceDef) -> Value {
    json!({
        "name": s.name,
        "features": s.features.iter().map(|p| {
            let names: Vec<&str> = if p.features.is_empty() {
                p.view.schema.iter().map(|f| f.name).collect()
            } else {
                p.features.to_vec()
            };
            json!({"feature_view": p.view.name, "features": names})
        }).collect::<Vec<_>>(),
        "description": s.description,
        "tags": pairs(s.tags),
        "owner": s.owner,
    })
}

impl Snapshot {
    /// The registry's definitions for `project`.
    pub fn of(registry: &Registry, project: &str) -> Snapshot {
        Snapshot {
            feast_rs_registry: FORMAT_VERSION,
            project: project.to_owned(),
            last_updated: None,
            entities: registry
                .entities()
                .map(|e| (e.name.to_owned(), entity(e)))
                .collect(),
            data_sources: registry
                .data_sources()
                .map(|s| (s.name.to_owned(), source(s)))
                .collect(),
            feature_views: registry
                .feature_views()
                .map(|v| (v.name.to_owned(), view(v)))
                .collect(),
            feature_services: registry
                .feature_services()
                .map(|s| (s.name.to_owned(), service(s)))
                .collect(),
        }
    }

    /// What applying `self` over `old` would change.
    pub fn diff(&self, old: Option<&Snapshot>) -> Vec<Change> {
        let empty = Snapshot::default();
        let old = old.unwrap_or(&empty);
        let mut out = Vec::new();
        if !old.project.is_empty() && old.project != self.project {
            out.push(Change {
                kind: "project",
                name: self.project.clone(),
                action: Action::Changed(vec![format!(
                    "project: {} -> {}",
                    old.project, self.project
                )]),
            });
        }
        for (kind, new, old) in [
            ("entity", &self.entities, &old.entities),
            ("data source", &self.data_sources, &old.data_sources),
            ("feature view", &self.feature_views, &old.feature_views),
            (
                "feature service",
                &self.feature_services,
                &old.feature_services,
            ),
        ] {
            for (name, v) in new {
                let action = match old.get(name) {
                    None => Action::Added,
                    Some(o) if o == v => Action::Unchanged,
                    Some(o) => Action::Changed(changed_keys(o, v)),
                };
                out.push(Change {
                    kind,
                    name: name.clone(),
                    action,
                });
            }
            for name in old.keys().filter(|n| !new.contains_key(*n)) {
                out.push(Change {
                    kind,
                    name: name.clone(),
                    action: Action::Removed,
                });
            }
        }
        out
    }
}

fn changed_keys(old: &Value, new: &Value) -> Vec<String> {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return vec![format!("{old} -> {new}")];
    };
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or_else(|| "(none)".to_owned(), Value::to_string);
            format!("{k}: {} -> {}", show(o.get(k)), show(n.get(k)))
        })
        .collect()
}

/// One definition in a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: &'static str,
    pub name: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Added,
    /// The keys that differ, as `key: old -> new`.
    Changed(Vec<String>),
    Removed,
    Unchanged,
}

/// A registry file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("registry file {path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("registry file {path} is not a Feast registry (feast.core.Registry)")]
    Format {
        path: std::path::PathBuf,
        #[source]
        source: prost::DecodeError,
    },
}
