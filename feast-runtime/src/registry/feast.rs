//! The registry in Feast's own format, `feast.core.Registry`: the messages
//! (written here with prost, field numbers from Feast 0.67's descriptors)
//! and the conversion of a feast-rs registry into them, so that Feast's
//! SDK, CLI and UI can read a feast-rs repository.
//!
//! How feast-rs definitions appear in Feast's terms:
//!
//! | feast-rs | Feast |
//! |---|---|
//! | `#[entity]` | `Entity` (join key, value type) |
//! | `#[file_source]` | `DataSource` `BATCH_FILE`, `FileOptions` (Parquet, `uri` = the path) |
//! | `#[kinesis_source]` | `DataSource` `STREAM_KINESIS`, `KinesisOptions` with `JsonFormat(schema_json)`, its batch source nested |
//! | `#[push_source]` | `DataSource` `PUSH_SOURCE`, its batch source nested |
//! | a stream or batch view | `FeatureView`, the Kinesis source as `stream_source` (Feast's `StreamFeatureView` refuses Kinesis) |
//! | a view with `aggregations` | `StreamFeatureView` with Feast's `Aggregation` messages, features = the aggregations; its stream source shown as a push source of the same name (the only stream source besides Kafka Feast accepts there) |
//! | `#[feature_service]` | `FeatureService` of `FeatureViewProjection`s |

// The messages' fields are Feast's, named and numbered as in its .proto files.
#![allow(missing_docs)]

use std::collections::HashMap;

use prost::Message;

use super::Registry;
use crate::definition::{
    DataSourceDef, EntityDef, FeastType, FeatureServiceDef, FeatureViewDef, FieldDef, Pairs,
    RecordFormat, SourceKind,
};

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `feast.core.Registry`.
#[derive(Clone, PartialEq, Message)]
pub struct RegistryProto {
    #[prost(message, repeated, tag = "1")]
    pub entities: Vec<Entity>,
    #[prost(message, repeated, tag = "6")]
    pub feature_views: Vec<FeatureView>,
    #[prost(message, repeated, tag = "12")]
    pub data_sources: Vec<DataSource>,
    #[prost(message, repeated, tag = "7")]
    pub feature_services: Vec<FeatureService>,
    #[prost(message, repeated, tag = "14")]
    pub stream_feature_views: Vec<StreamFeatureView>,
    #[prost(message, repeated, tag = "15")]
    pub project_metadata: Vec<ProjectMetadata>,
    #[prost(string, tag = "3")]
    pub registry_schema_version: String,
    #[prost(string, tag = "4")]
    pub version_id: String,
    #[prost(message, optional, tag = "5")]
    pub last_updated: Option<Timestamp>,
    #[prost(message, repeated, tag = "17")]
    pub projects: Vec<Project>,
}

/// `feast.core.ProjectMetadata`.
#[derive(Clone, PartialEq, Message)]
pub struct ProjectMetadata {
    #[prost(string, tag = "1")]
    pub project: String,
    #[prost(string, tag = "2")]
    pub project_uuid: String,
}

/// `feast.core.Project`.
#[derive(Clone, PartialEq, Message)]
pub struct Project {
    #[prost(message, optional, tag = "1")]
    pub spec: Option<ProjectSpec>,
    #[prost(message, optional, tag = "2")]
    pub meta: Option<Meta>,
}

/// `feast.core.ProjectSpec`.
#[derive(Clone, PartialEq, Message)]
pub struct ProjectSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(map = "string, string", tag = "3")]
    pub tags: HashMap<String, String>,
    #[prost(string, tag = "4")]
    pub owner: String,
}

/// The created and last-updated times every `*Meta` message starts with
/// (`EntityMeta`, `FeatureServiceMeta`, `ProjectMeta`).
#[derive(Clone, PartialEq, Message)]
pub struct Meta {
    #[prost(message, optional, tag = "1")]
    pub created_timestamp: Option<Timestamp>,
    #[prost(message, optional, tag = "2")]
    pub last_updated_timestamp: Option<Timestamp>,
}

/// `feast.core.Entity`.
#[derive(Clone, PartialEq, Message)]
pub struct Entity {
    #[prost(message, optional, tag = "1")]
    pub spec: Option<EntitySpec>,
    #[prost(message, optional, tag = "2")]
    pub meta: Option<Meta>,
}

/// `feast.core.EntitySpecV2`.
#[derive(Clone, PartialEq, Message)]
pub struct EntitySpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "9")]
    pub project: String,
    #[prost(int32, tag = "2")]
    pub value_type: i32,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub join_key: String,
    #[prost(map = "string, string", tag = "8")]
    pub tags: HashMap<String, String>,
    #[prost(string, tag = "10")]
    pub owner: String,
}

/// `feast.core.FeatureSpecV2`.
#[derive(Clone, PartialEq, Message)]
pub struct FeatureSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub value_type: i32,
    #[prost(map = "string, string", tag = "3")]
    pub tags: HashMap<String, String>,
    #[prost(string, tag = "4")]
    pub description: String,
}

/// `feast.core.DataSource.SourceType`.
pub mod source_type {
    /// A Parquet file source.
    pub const BATCH_FILE: i32 = 1;
    /// A Kinesis stream.
    pub const STREAM_KINESIS: i32 = 4;
    /// A push source.
    pub const PUSH_SOURCE: i32 = 9;
}

/// `feast.core.DataSource`.
#[derive(Clone, PartialEq, Message)]
pub struct DataSource {
    #[prost(string, tag = "20")]
    pub name: String,
    #[prost(string, tag = "21")]
    pub project: String,
    #[prost(string, tag = "23")]
    pub description: String,
    #[prost(map = "string, string", tag = "24")]
    pub tags: HashMap<String, String>,
    #[prost(string, tag = "25")]
    pub owner: String,
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(map = "string, string", tag = "2")]
    pub field_mapping: HashMap<String, String>,
    #[prost(string, tag = "3")]
    pub timestamp_field: String,
    #[prost(string, tag = "4")]
    pub date_partition_column: String,
    #[prost(string, tag = "5")]
    pub created_timestamp_column: String,
    #[prost(string, tag = "17")]
    pub data_source_class_type: String,
    #[prost(message, optional, boxed, tag = "26")]
    pub batch_source: Option<Box<DataSource>>,
    #[prost(oneof = "SourceOptions", tags = "11, 14, 22")]
    pub options: Option<SourceOptions>,
}

/// `DataSource.options`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum SourceOptions {
    #[prost(message, tag = "11")]
    File(FileOptions),
    #[prost(message, tag = "14")]
    Kinesis(KinesisOptions),
    #[prost(message, tag = "22")]
    Push(PushOptions),
}

/// `DataSource.FileOptions`.
#[derive(Clone, PartialEq, Message)]
pub struct FileOptions {
    #[prost(message, optional, tag = "1")]
    pub file_format: Option<FileFormat>,
    #[prost(string, tag = "2")]
    pub uri: String,
    #[prost(string, tag = "3")]
    pub s3_endpoint_override: String,
}

/// `feast.core.FileFormat`, as far as Parquet.
#[derive(Clone, PartialEq, Message)]
pub struct FileFormat {
    #[prost(message, optional, tag = "1")]
    pub parquet_format: Option<Empty>,
}

/// A message without fields (`ParquetFormat`, `PushOptions`).
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Empty {}

/// `DataSource.PushOptions`.
pub type PushOptions = Empty;

/// `DataSource.KinesisOptions`.
#[derive(Clone, PartialEq, Message)]
pub struct KinesisOptions {
    #[prost(string, tag = "1")]
    pub region: String,
    #[prost(string, tag = "2")]
    pub stream_name: String,
    #[prost(message, optional, tag = "3")]
    pub record_format: Option<StreamFormat>,
}

/// `feast.core.StreamFormat`, as far as JSON.
#[derive(Clone, PartialEq, Message)]
pub struct StreamFormat {
    #[prost(message, optional, tag = "3")]
    pub json_format: Option<JsonFormat>,
}

/// `StreamFormat.JsonFormat`.
#[derive(Clone, PartialEq, Message)]
pub struct JsonFormat {
    #[prost(string, tag = "1")]
    pub schema_json: String,
}

/// `feast.core.FeatureView`.
#[derive(Clone, PartialEq, Message)]
pub struct FeatureView {
    #[prost(message, optional, tag = "1")]
    pub spec: Option<FeatureViewSpec>,
    #[prost(message, optional, tag = "2")]
    pub meta: Option<Meta>,
}

/// `feast.core.FeatureViewSpec`.
#[derive(Clone, PartialEq, Message)]
pub struct FeatureViewSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub project: String,
    #[prost(string, repeated, tag = "3")]
    pub entities: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub features: Vec<FeatureSpec>,
    #[prost(map = "string, string", tag = "5")]
    pub tags: HashMap<String, String>,
    #[prost(message, optional, tag = "6")]
    pub ttl: Option<Duration>,
    #[prost(message, optional, tag = "7")]
    pub batch_source: Option<DataSource>,
    #[prost(bool, tag = "8")]
    pub online: bool,
    #[prost(message, optional, tag = "9")]
    pub stream_source: Option<DataSource>,
    #[prost(string, tag = "10")]
    pub description: String,
    #[prost(string, tag = "11")]
    pub owner: String,
    #[prost(message, repeated, tag = "12")]
    pub entity_columns: Vec<FeatureSpec>,
    #[prost(bool, tag = "13")]
    pub offline: bool,
}

/// `feast.core.StreamFeatureView`.
#[derive(Clone, PartialEq, Message)]
pub struct StreamFeatureView {
    #[prost(message, optional, tag = "1")]
    pub spec: Option<StreamFeatureViewSpec>,
    #[prost(message, optional, tag = "2")]
    pub meta: Option<Meta>,
}

/// `feast.core.StreamFeatureViewSpec`.
#[derive(Clone, PartialEq, Message)]
pub struct StreamFeatureViewSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub project: String,
    #[prost(string, repeated, tag = "3")]
    pub entities: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub features: Vec<FeatureSpec>,
    #[prost(message, repeated, tag = "5")]
    pub entity_columns: Vec<FeatureSpec>,
    #[prost(string, tag = "6")]
    pub description: String,
    #[prost(map = "string, string", tag = "7")]
    pub tags: HashMap<String, String>,
    #[prost(string, tag = "8")]
    pub owner: String,
    #[prost(message, optional, tag = "9")]
    pub ttl: Option<Duration>,
    #[prost(message, optional, tag = "10")]
    pub batch_source: Option<DataSource>,
    #[prost(message, optional, tag = "11")]
    pub stream_source: Option<DataSource>,
    #[prost(bool, tag = "12")]
    pub online: bool,
    #[prost(string, tag = "14")]
    pub mode: String,
    #[prost(message, repeated, tag = "15")]
    pub aggregations: Vec<Aggregation>,
    #[prost(string, tag = "16")]
    pub timestamp_field: String,
}

/// `feast.core.Aggregation`.
#[derive(Clone, PartialEq, Message)]
pub struct Aggregation {
    #[prost(string, tag = "1")]
    pub column: String,
    #[prost(string, tag = "2")]
    pub function: String,
    #[prost(message, optional, tag = "3")]
    pub time_window: Option<Duration>,
    #[prost(message, optional, tag = "4")]
    pub slide_interval: Option<Duration>,
    #[prost(string, tag = "5")]
    pub name: String,
}

/// `feast.core.FeatureService`.
#[derive(Clone, PartialEq, Message)]
pub struct FeatureService {
    #[prost(message, optional, tag = "1")]
    pub spec: Option<FeatureServiceSpec>,
    #[prost(message, optional, tag = "2")]
    pub meta: Option<Meta>,
}

/// `feast.core.FeatureServiceSpec`.
#[derive(Clone, PartialEq, Message)]
pub struct FeatureServiceSpec {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub project: String,
    #[prost(message, repeated, tag = "3")]
    pub features: Vec<FeatureViewProjection>,
    #[prost(map = "string, string", tag = "4")]
    pub tags: HashMap<String, String>,
    #[prost(string, tag = "5")]
    pub description: String,
    #[prost(string, tag = "6")]
    pub owner: String,
}

/// `feast.core.FeatureViewProjection`.
#[derive(Clone, PartialEq, Message)]
pub struct FeatureViewProjection {
    #[prost(string, tag = "1")]
    pub feature_view_name: String,
    #[prost(string, tag = "3")]
    pub feature_view_name_alias: String,
    #[prost(message, repeated, tag = "2")]
    pub feature_columns: Vec<FeatureSpec>,
    #[prost(map = "string, string", tag = "4")]
    pub join_key_map: HashMap<String, String>,
}

/// Feast's registry schema version, as Feast 0.67 writes it.
const SCHEMA_VERSION: &str = "1";

fn tags(p: Pairs) -> HashMap<String, String> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn feature(name: &str, dtype: FeastType) -> FeatureSpec {
    FeatureSpec {
        name: name.to_owned(),
        value_type: dtype.value_type() as i32,
        ..FeatureSpec::default()
    }
}

fn features(schema: &[FieldDef]) -> Vec<FeatureSpec> {
    schema.iter().map(|f| feature(f.name, f.dtype)).collect()
}

fn entity(e: &EntityDef, project: &str, at: Timestamp) -> Entity {
    Entity {
        spec: Some(EntitySpec {
            name: e.name.to_owned(),
            project: project.to_owned(),
            value_type: e.value_type.value_type() as i32,
            description: e.description.to_owned(),
            join_key: e.join_key.to_owned(),
            tags: tags(e.tags),
            owner: e.owner.to_owned(),
        }),
        meta: Some(meta(at)),
    }
}

fn meta(at: Timestamp) -> Meta {
    Meta {
        created_timestamp: Some(at),
        last_updated_timestamp: Some(at),
    }
}

fn source(s: &DataSourceDef, project: &str) -> DataSource {
    let mut out = DataSource {
        name: s.name.to_owned(),
        project: project.to_owned(),
        description: s.description.to_owned(),
        tags: tags(s.tags),
        owner: s.owner.to_owned(),
        field_mapping: tags(s.field_mapping),
        timestamp_field: s.timestamp_field.to_owned(),
        created_timestamp_column: s.created_timestamp_column.unwrap_or_default().to_owned(),
        ..DataSource::default()
    };
    match s.kind {
        SourceKind::File { path, .. } => {
            out.r#type = source_type::BATCH_FILE;
            out.data_source_class_type = "feast.infra.offline_stores.file_source.FileSource".into();
            out.options = Some(SourceOptions::File(FileOptions {
                file_format: Some(FileFormat {
                    parquet_format: Some(Empty {}),
                }),
                uri: path.to_owned(),
                s3_endpoint_override: String::new(),
            }));
        }
        SourceKind::Kinesis {
            stream_name,
            region,
            record_format: RecordFormat::Json { schema_json, .. },
            batch_source,
        } => {
            out.r#type = source_type::STREAM_KINESIS;
            out.data_source_class_type = "feast.data_source.KinesisSource".into();
            out.batch_source = Some(Box::new(source(batch_source, project)));
            out.options = Some(SourceOptions::Kinesis(KinesisOptions {
                region: region.to_owned(),
                stream_name: stream_name.to_owned(),
                record_format: Some(StreamFormat {
                    json_format: Some(JsonFormat {
                        schema_json: schema_json.to_owned(),
                    }),
                }),
            }));
        }
        SourceKind::Push { batch_source } => {
            // As Feast records a push source: with its batch source's times.
            out.timestamp_field = batch_source.timestamp_field.to_owned();
            out.created_timestamp_column = batch_source
                .created_timestamp_column
                .unwrap_or_default()
                .to_owned();
            out.r#type = source_type::PUSH_SOURCE;
            out.data_source_class_type = "feast.data_source.PushSource".into();
            out.batch_source = Some(Box::new(source(batch_source, project)));
            out.options = Some(SourceOptions::Push(Empty {}));
        }
    }
    out
}

/// The features a view serves: an aggregated view's aggregations, else its
/// schema.
fn served(v: &FeatureViewDef) -> Vec<FeatureSpec> {
    if v.is_aggregated() {
        v.aggregations
            .iter()
            .map(|a| feature(a.name, a.output()))
            .collect()
    } else {
        features(v.schema)
    }
}

/// An aggregated view, as the `StreamFeatureView` that carries Feast's
/// `Aggregation` messages. Feast accepts only Kafka and push sources in a
/// stream feature view, so its stream source appears as a push source of
/// the same name and batch source (the registry's own list keeps the
/// Kinesis source as it is).
fn aggregated_view(v: &FeatureViewDef, project: &str, at: Timestamp) -> StreamFeatureView {
    let duration = |seconds: u64| Duration {
        seconds: seconds as i64,
        nanos: 0,
    };
    let batch = source(v.source.offline_source(), project);
    let mut stream = source(v.source, project);
    if matches!(v.source.kind, SourceKind::Kinesis { .. }) {
        stream.r#type = source_type::PUSH_SOURCE;
        stream.data_source_class_type = "feast.data_source.PushSource".into();
        stream.options = Some(SourceOptions::Push(Empty {}));
    }
    StreamFeatureView {
        spec: Some(StreamFeatureViewSpec {
            name: v.name.to_owned(),
            project: project.to_owned(),
            entities: v.entities.iter().map(|e| e.name.to_owned()).collect(),
            features: served(v),
            entity_columns: v
                .entities
                .iter()
                .map(|e| feature(e.join_key, e.value_type))
                .collect(),
            description: v.description.to_owned(),
            tags: tags(v.tags),
            owner: v.owner.to_owned(),
            ttl: Some(duration(v.ttl_seconds)),
            batch_source: Some(batch),
            stream_source: Some(stream),
            online: v.online,
            mode: String::new(),
            aggregations: v
                .aggregations
                .iter()
                .map(|a| Aggregation {
                    column: a.column.to_owned(),
                    function: a.function.to_string(),
                    time_window: Some(duration(a.window_seconds)),
                    slide_interval: Some(duration(a.slide_seconds)),
                    name: a.name.to_owned(),
                })
                .collect(),
            timestamp_field: v.event_timestamp_field().to_owned(),
        }),
        meta: Some(meta(at)),
    }
}

fn view(v: &FeatureViewDef, project: &str, at: Timestamp) -> FeatureView {
    let (batch, stream) = match v.source.batch_source() {
        Some(b) => (source(b, project), Some(source(v.source, project))),
        None => (source(v.source, project), None),
    };
    FeatureView {
        spec: Some(FeatureViewSpec {
            name: v.name.to_owned(),
            project: project.to_owned(),
            entities: v.entities.iter().map(|e| e.name.to_owned()).collect(),
            features: served(v),
            tags: tags(v.tags),
            ttl: Some(Duration {
                seconds: v.ttl_seconds as i64,
                nanos: 0,
            }),
            batch_source: Some(batch),
            online: v.online,
            stream_source: stream,
            description: v.description.to_owned(),
            owner: v.owner.to_owned(),
            entity_columns: v
                .entities
                .iter()
                .map(|e| feature(e.join_key, e.value_type))
                .collect(),
            offline: v.offline,
        }),
        meta: Some(meta(at)),
    }
}

fn service(s: &FeatureServiceDef, project: &str, at: Timestamp) -> FeatureService {
    FeatureService {
        spec: Some(FeatureServiceSpec {
            name: s.name.to_owned(),
            project: project.to_owned(),
            features: s
                .features
                .iter()
                .map(|p| {
                    let all = served(p.view);
                    FeatureViewProjection {
                        feature_view_name: p.view.name.to_owned(),
                        feature_columns: if p.features.is_empty() {
                            all
                        } else {
                            all.into_iter()
                                .filter(|f| p.features.contains(&f.name.as_str()))
                                .collect()
                        },
                        ..FeatureViewProjection::default()
                    }
                })
                .collect(),
            tags: tags(s.tags),
            description: s.description.to_owned(),
            owner: s.owner.to_owned(),
        }),
        meta: Some(meta(at)),
    }
}

/// The registry of `project` in Feast's format, stamped `at` (created and
/// updated times of every object, and the registry's own).
pub fn to_proto(registry: &Registry, project: &str, at: Timestamp) -> RegistryProto {
    RegistryProto {
        entities: registry
            .entities()
            .map(|e| entity(e, project, at))
            .collect(),
        feature_views: registry
            .feature_views()
            .filter(|v| !v.is_aggregated())
            .map(|v| view(v, project, at))
            .collect(),
        stream_feature_views: registry
            .feature_views()
            .filter(|v| v.is_aggregated())
            .map(|v| aggregated_view(v, project, at))
            .collect(),
        data_sources: registry
            .data_sources()
            .map(|s| source(s, project))
            .collect(),
        feature_services: registry
            .feature_services()
            .map(|s| service(s, project, at))
            .collect(),
        project_metadata: vec![ProjectMetadata {
            project: project.to_owned(),
            project_uuid: String::new(),
        }],
        registry_schema_version: SCHEMA_VERSION.to_owned(),
        version_id: format!("{:x}", at.seconds),
        last_updated: Some(at),
        projects: vec![Project {
            spec: Some(ProjectSpec {
                name: project.to_owned(),
                ..ProjectSpec::default()
            }),
            meta: Some(meta(at)),
        }],
    }
}

/// The registry's bytes, as Feast stores them in `registry.db`.
pub fn encode(registry: &Registry, project: &str, at: Timestamp) -> Vec<u8> {
    to_proto(registry, project, at).encode_to_vec()
}

/// Reads a registry's bytes.
pub fn decode(bytes: &[u8]) -> Result<RegistryProto, prost::DecodeError> {
    RegistryProto::decode(bytes)
}

/// A registry's bytes.
pub fn encode_proto(registry: &RegistryProto) -> Vec<u8> {
    registry.encode_to_vec()
}

/// The name of a Feast value type (`Int64`, `Array(String)`), or its number
/// when feast-rs has no type for it.
fn type_name(value_type: i32) -> serde_json::Value {
    static SCALARS: [FeastType; 8] = [
        FeastType::Bytes,
        FeastType::String,
        FeastType::Int32,
        FeastType::Int64,
        FeastType::Float64,
        FeastType::Float32,
        FeastType::Bool,
        FeastType::UnixTimestamp,
    ];
    SCALARS
        .iter()
        .flat_map(|t| [*t, FeastType::Array(t)])
        .find(|t| t.value_type() as i32 == value_type)
        .map_or_else(
            || serde_json::Value::from(value_type),
            |t| serde_json::Value::from(t.to_string()),
        )
}

fn tag_object(tags: &HashMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        tags.iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect(),
    )
}

/// A view's features by name, without its entities' join keys (Feast
/// lists them among a stream feature view's features).
fn feature_list(features: &[FeatureSpec], join_keys: &[&str]) -> serde_json::Value {
    let mut named: Vec<(&str, serde_json::Value)> = features
        .iter()
        .filter(|f| !join_keys.contains(&f.name.as_str()))
        .map(|f| (f.name.as_str(), type_name(f.value_type)))
        .collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    named
        .into_iter()
        .map(|(name, dtype)| serde_json::json!({"name": name, "dtype": dtype}))
        .collect::<Vec<_>>()
        .into()
}

fn seconds(d: Option<&Duration>) -> i64 {
    d.map_or(0, |d| d.seconds)
}

fn describe_source(s: &DataSource) -> serde_json::Value {
    let kind = match s.r#type {
        source_type::BATCH_FILE => "file".into(),
        source_type::STREAM_KINESIS => "kinesis".into(),
        source_type::PUSH_SOURCE => "push".into(),
        other => format!("Feast source type {other}"),
    };
    let mut v = serde_json::json!({
        "name": s.name,
        "type": kind,
        "description": s.description,
        "tags": tag_object(&s.tags),
        "owner": s.owner,
        "timestamp_field": s.timestamp_field,
        "created_timestamp_column": s.created_timestamp_column,
        "field_mapping": tag_object(&s.field_mapping),
    });
    let obj = v.as_object_mut().expect("json! object");
    if let Some(b) = &s.batch_source {
        obj.insert("batch_source".into(), b.name.clone().into());
    }
    match &s.options {
        Some(SourceOptions::File(f)) => {
            obj.insert("path".into(), f.uri.clone().into());
        }
        Some(SourceOptions::Kinesis(k)) => {
            obj.insert("stream_name".into(), k.stream_name.clone().into());
            obj.insert("region".into(), k.region.clone().into());
            let schema_json = k
                .record_format
                .as_ref()
                .and_then(|f| f.json_format.as_ref())
                .map(|j| j.schema_json.clone());
            obj.insert(
                "record_format".into(),
                serde_json::json!({"json_format": {"schema_json": schema_json}}),
            );
        }
        Some(SourceOptions::Push(_)) | None => {}
    }
    v
}

/// A registry in Feast's format as the data `plan` compares, keyed by
/// Feast's fields: what both a registry feast-rs wrote and one Feast wrote
/// for the same definitions hold.
pub fn describe(registry: &RegistryProto) -> super::snapshot::Snapshot {
    use serde_json::json;
    let project = registry
        .project_metadata
        .first()
        .map(|p| p.project.clone())
        .unwrap_or_default();
    let mut snap = super::snapshot::Snapshot {
        feast_rs_registry: super::snapshot::FORMAT_VERSION,
        project,
        ..super::snapshot::Snapshot::default()
    };
    // Feast adds `__dummy` for views without entities; it is none of ours.
    let entities: Vec<&EntitySpec> = registry
        .entities
        .iter()
        .filter_map(|e| e.spec.as_ref())
        .filter(|e| e.name != "__dummy")
        .collect();
    let join_keys = |names: &[String]| -> Vec<&str> {
        entities
            .iter()
            .filter(|e| names.contains(&e.name))
            .map(|e| e.join_key.as_str())
            .collect()
    };
    for e in &entities {
        snap.entities.insert(
            e.name.clone(),
            json!({
                "name": e.name,
                "join_key": e.join_key,
                "value_type": type_name(e.value_type),
                "description": e.description,
                "tags": tag_object(&e.tags),
                "owner": e.owner,
            }),
        );
    }
    for s in &registry.data_sources {
        snap.data_sources.insert(s.name.clone(), describe_source(s));
    }
    for v in registry
        .feature_views
        .iter()
        .filter_map(|v| v.spec.as_ref())
    {
        let source = v.stream_source.as_ref().or(v.batch_source.as_ref());
        snap.feature_views.insert(
            v.name.clone(),
            json!({
                "name": v.name,
                "type": if v.stream_source.is_some() { "stream" } else { "batch" },
                "entities": v.entities,
                "source": source.map(|s| s.name.clone()),
                "features": feature_list(&v.features, &join_keys(&v.entities)),
                "ttl_seconds": seconds(v.ttl.as_ref()),
                "online": v.online,
                "offline": v.offline,
                "description": v.description,
                "tags": tag_object(&v.tags),
                "owner": v.owner,
            }),
        );
    }
    for v in registry
        .stream_feature_views
        .iter()
        .filter_map(|v| v.spec.as_ref())
    {
        snap.feature_views.insert(
            v.name.clone(),
            json!({
                "name": v.name,
                "type": "stream",
                "entities": v.entities,
                "source": v.stream_source.as_ref().map(|s| s.name.clone()),
                "features": feature_list(&v.features, &join_keys(&v.entities)),
                "ttl_seconds": seconds(v.ttl.as_ref()),
                "online": v.online,
                "timestamp_field": v.timestamp_field,
                "aggregations": v.aggregations.iter().map(|a| json!({
                    "name": a.name,
                    "column": a.column,
                    "function": a.function,
                    "time_window_seconds": seconds(a.time_window.as_ref()),
                    "slide_interval_seconds": seconds(a.slide_interval.as_ref()),
                })).collect::<Vec<_>>(),
                "description": v.description,
                "tags": tag_object(&v.tags),
                "owner": v.owner,
            }),
        );
    }
    for s in registry
        .feature_services
        .iter()
        .filter_map(|s| s.spec.as_ref())
    {
        snap.feature_services.insert(
            s.name.clone(),
            json!({
                "name": s.name,
                "features": s.features.iter().map(|p| json!({
                    "feature_view": p.feature_view_name,
                    "features": p.feature_columns.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "description": s.description,
                "tags": tag_object(&s.tags),
                "owner": s.owner,
            }),
        );
    }
    snap
}

/// Reads the registry file at `path`; `None` when there is none yet, or
/// when it holds feast-rs's earlier JSON registry (which `apply` replaces).
pub fn read_file(
    path: &std::path::Path,
) -> Result<Option<RegistryProto>, super::snapshot::FileError> {
    use super::snapshot::FileError;
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FileError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if bytes.trim_ascii_start().starts_with(b"{") {
        tracing::warn!(path = %path.display(), "the registry file holds feast-rs's earlier JSON registry; apply rewrites it in Feast's format");
        return Ok(None);
    }
    decode(&bytes)
        .map(Some)
        .map_err(|source| FileError::Format {
            path: path.to_owned(),
            source,
        })
}

/// Writes the registry file atomically: a temporary file, synced, renamed.
pub fn write_file(
    path: &std::path::Path,
    registry: &RegistryProto,
) -> Result<(), super::snapshot::FileError> {
    use std::io::Write;
    let io = |source| super::snapshot::FileError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&encode_proto(registry)).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// Now, as a protobuf timestamp.
pub fn now() -> Timestamp {
    let t = chrono::Utc::now();
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}
