//! The `const` definition data that the macros emit, and the traits that tie a
//! user's Rust items to it.
//!
//! Everything here is `'static` and built at compile time: a definition is a
//! `static` in the user's crate, submitted to `inventory`, and collected into a
//! [`Registry`](crate::registry::Registry) at start-up.

mod aggregation;
mod entity_key;
mod feast_type;
#[cfg(test)]
pub(crate) mod fixtures;
pub(crate) mod proto;
pub mod time;
mod value;

use std::fmt;

use polars::prelude::DataFrame;

pub use aggregation::{AggFunction, AggregationDef, MAX_LAST_N};
pub use entity_key::{entity_key_text, serialize_entity_key};
pub use feast_type::{FeastType, JoinKey, JoinKeyValue};
pub use proto::DecodeError;
pub use value::Value;

/// The error a view function may return, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A view's transformation, wrapped by the macro around the user's function.
pub type TransformFn = fn(DataFrame) -> Result<DataFrame, BoxError>;

/// Where a definition was written, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The module the definition is in.
    pub module_path: &'static str,
    /// The source file.
    pub file: &'static str,
    /// The line.
    pub line: u32,
    /// The column.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// `key: value` pairs (tags, field mappings).
pub type Pairs = &'static [(&'static str, &'static str)];

/// A named, typed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// The column's name.
    pub name: &'static str,
    /// Its type.
    pub dtype: FeastType,
}

/// An entity (Feast's `Entity`): one join key with its value type.
#[derive(Debug)]
pub struct EntityDef {
    /// The entity's name (the struct's, in snake case, unless given).
    pub name: &'static str,
    /// The join key: the struct's one field.
    pub join_key: &'static str,
    /// The join key's type.
    pub value_type: FeastType,
    /// What it is (the doc comment).
    pub description: &'static str,
    /// Feast tags.
    pub tags: Pairs,
    /// Who owns it.
    pub owner: &'static str,
    /// Where it is defined.
    pub location: Location,
}

/// A data source (Feast's `FileSource`, `KinesisSource`, `PushSource`).
#[derive(Debug)]
pub struct DataSourceDef {
    /// The source's name.
    pub name: &'static str,
    /// What it reads.
    pub kind: SourceKind,
    /// The event-time column; empty for push sources, which use their batch source's.
    pub timestamp_field: &'static str,
    /// The column that settles events with the same event time.
    pub created_timestamp_column: Option<&'static str>,
    /// Source column -> name seen by views.
    pub field_mapping: Pairs,
    /// What it is (the doc comment).
    pub description: &'static str,
    /// Feast tags.
    pub tags: Pairs,
    /// Who owns it.
    pub owner: &'static str,
    /// Where it is defined.
    pub location: Location,
}

/// What a data source reads.
#[derive(Debug)]
pub enum SourceKind {
    /// Parquet files under `path`.
    File {
        /// The file or directory, relative to the repository.
        path: &'static str,
        /// The columns of the files.
        schema: &'static [FieldDef],
    },
    /// A Kinesis stream of JSON records.
    Kinesis {
        /// The Kinesis stream.
        stream_name: &'static str,
        /// The stream's AWS region.
        region: &'static str,
        /// How records are encoded.
        record_format: RecordFormat,
        /// The file source its records are logged to.
        batch_source: &'static DataSourceDef,
    },
    /// Rows pushed through the API.
    Push {
        /// The file source pushed rows are logged to.
        batch_source: &'static DataSourceDef,
    },
}

/// How stream records are encoded.
#[derive(Debug)]
pub enum RecordFormat {
    /// Feast's `JsonFormat(schema_json)`: JSON objects with the columns of a
    /// Spark DDL list, parsed at compile time into `schema`.
    Json {
        /// The Spark DDL string as written.
        schema_json: &'static str,
        /// The columns it declares.
        schema: &'static [FieldDef],
        /// The columns declared `NOT NULL` (as sent, before `field_mapping`):
        /// a record without a value there is dead-lettered. Every other
        /// column is nullable, as in Spark.
        not_null: &'static [&'static str],
    },
}

impl DataSourceDef {
    /// `"file"`, `"kinesis"` or `"push"`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            SourceKind::File { .. } => "file",
            SourceKind::Kinesis { .. } => "kinesis",
            SourceKind::Push { .. } => "push",
        }
    }

    /// The batch source behind a stream source; `None` for a file source.
    pub fn batch_source(&self) -> Option<&'static DataSourceDef> {
        match self.kind {
            SourceKind::File { .. } => None,
            SourceKind::Kinesis { batch_source, .. } | SourceKind::Push { batch_source } => {
                Some(batch_source)
            }
        }
    }

    /// The columns as stored or sent, before `field_mapping`.
    pub fn raw_schema(&self) -> &'static [FieldDef] {
        match self.kind {
            SourceKind::File { schema, .. } => schema,
            SourceKind::Kinesis {
                record_format: RecordFormat::Json { schema, .. },
                ..
            } => schema,
            SourceKind::Push { batch_source } => batch_source.raw_schema(),
        }
    }

    /// The file source whose files hold this source's rows: itself for a
    /// file source, its `batch_source` for a stream source.
    pub fn offline_source(&'static self) -> &'static DataSourceDef {
        self.batch_source().unwrap_or(self)
    }

    /// The columns declared `NOT NULL`, as sent (before `field_mapping`).
    pub fn not_null_columns(&self) -> &'static [&'static str] {
        match self.kind {
            SourceKind::Kinesis {
                record_format: RecordFormat::Json { not_null, .. },
                ..
            } => not_null,
            _ => &[],
        }
    }

    /// The columns a view reads, after `field_mapping`.
    pub fn schema(&self) -> Vec<FieldDef> {
        let mapping = self.effective_mapping();
        self.raw_schema()
            .iter()
            .map(|f| FieldDef {
                name: mapping
                    .iter()
                    .find(|(from, _)| *from == f.name)
                    .map_or(f.name, |(_, to)| *to),
                dtype: f.dtype,
            })
            .collect()
    }

    fn effective_mapping(&self) -> Pairs {
        match self.kind {
            SourceKind::Push { batch_source } => batch_source.field_mapping,
            _ => self.field_mapping,
        }
    }

    /// The event-time column (a push source's is its batch source's).
    pub fn event_timestamp_field(&self) -> &'static str {
        match self.kind {
            SourceKind::Push { batch_source } => batch_source.event_timestamp_field(),
            _ => self.timestamp_field,
        }
    }

    /// The created-time column: a push source's is its batch source's; a
    /// Kinesis source's is its own, else its batch source's (its records are
    /// logged there, and read back with it).
    pub fn created_timestamp_field(&self) -> Option<&'static str> {
        match self.kind {
            SourceKind::Push { batch_source } => batch_source.created_timestamp_field(),
            SourceKind::Kinesis { batch_source, .. } => self
                .created_timestamp_column
                .or_else(|| batch_source.created_timestamp_field()),
            SourceKind::File { .. } => self.created_timestamp_column,
        }
    }
}

/// Whether a view reads a stream or a batch source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    /// A `#[stream_feature_view]`.
    Stream,
    /// A `#[batch_feature_view]`.
    Batch,
}

impl ViewKind {
    /// `stream` or `batch`.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewKind::Stream => "stream",
            ViewKind::Batch => "batch",
        }
    }
}

/// A feature view (Feast's `StreamFeatureView` / `BatchFeatureView`).
#[derive(Debug)]
pub struct FeatureViewDef {
    /// The view's name (the function's, unless given).
    pub name: &'static str,
    /// Stream or batch.
    pub kind: ViewKind,
    /// The entities whose join keys key its rows.
    pub entities: &'static [&'static EntityDef],
    /// The source its function reads.
    pub source: &'static DataSourceDef,
    /// The features the view serves: for a plain view, the columns its
    /// function declares; for a view with aggregations, the aggregations'.
    pub schema: &'static [FieldDef],
    /// The columns the function declares it outputs, besides join keys and
    /// the event timestamp (for a plain view, `schema` itself).
    pub output: &'static [FieldDef],
    /// Windowed aggregations over the function's output; none for a plain
    /// view.
    pub aggregations: &'static [AggregationDef],
    /// 0 means the values never expire.
    pub ttl_seconds: u64,
    /// Defaults to the source's timestamp field.
    pub timestamp_field: Option<&'static str>,
    /// Whether its features are served online.
    pub online: bool,
    /// Whether `ingest` logs its source's records to the batch source.
    pub offline: bool,
    /// What it is (the doc comment).
    pub description: &'static str,
    /// Feast tags.
    pub tags: Pairs,
    /// Who owns it.
    pub owner: &'static str,
    /// The function, wrapped.
    pub transform: TransformFn,
    /// Where it is defined.
    pub location: Location,
}

impl FeatureViewDef {
    /// The event-time column of the view's output.
    pub fn event_timestamp_field(&self) -> &'static str {
        self.timestamp_field
            .unwrap_or_else(|| self.source.event_timestamp_field())
    }

    /// The columns the function receives: its batch source's, after
    /// `field_mapping`. A stream view's records are converted to them before
    /// the function runs, so a record gives the same features whether it
    /// arrives on the stream or is read back from the offline store.
    pub fn input_schema(&self) -> Vec<FieldDef> {
        self.source.batch_source().unwrap_or(self.source).schema()
    }

    /// The columns the function must return: join keys, the event timestamp,
    /// the declared columns, then the source columns its aggregations read
    /// without declaring them.
    pub fn output_schema(&self) -> Vec<FieldDef> {
        let mut out: Vec<FieldDef> = self
            .entities
            .iter()
            .map(|e| FieldDef {
                name: e.join_key,
                dtype: e.value_type,
            })
            .collect();
        out.push(FieldDef {
            name: self.event_timestamp_field(),
            dtype: FeastType::UnixTimestamp,
        });
        out.extend_from_slice(self.output);
        for a in self.aggregations {
            if !out.iter().any(|f| f.name == a.column) {
                out.push(FieldDef {
                    name: a.column,
                    dtype: a.input,
                });
            }
        }
        out
    }

    /// Whether a value of event time `event_us` is within the view's ttl
    /// at `now_us` (both microseconds); a view without ttl never expires.
    /// The one ttl rule of online reads, typed reads and `verify`.
    pub fn is_fresh(&self, event_us: i64, now_us: i64) -> bool {
        self.ttl_seconds == 0
            || now_us.saturating_sub(event_us)
                <= i64::try_from(self.ttl_seconds)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000)
    }

    /// Whether the view's features are windowed aggregations.
    pub fn is_aggregated(&self) -> bool {
        !self.aggregations.is_empty()
    }

    /// The served feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&'static FieldDef> {
        self.schema.iter().find(|f| f.name == name)
    }
}

/// The features of one view that a service selects; empty `features` = all.
#[derive(Debug)]
pub struct FeatureProjection {
    /// The view.
    pub view: &'static FeatureViewDef,
    /// Its features the service selects.
    pub features: &'static [&'static str],
}

/// A feature service (Feast's `FeatureService`).
#[derive(Debug)]
pub struct FeatureServiceDef {
    /// The service's name.
    pub name: &'static str,
    /// The features it selects, view by view.
    pub features: &'static [FeatureProjection],
    /// What it is (the doc comment).
    pub description: &'static str,
    /// Feast tags.
    pub tags: Pairs,
    /// Who owns it.
    pub owner: &'static str,
    /// Where it is defined.
    pub location: Location,
}

/// One submitted definition.
#[derive(Debug, Clone, Copy)]
pub enum Definition {
    /// An entity.
    Entity(&'static EntityDef),
    /// A data source.
    DataSource(&'static DataSourceDef),
    /// A feature view.
    FeatureView(&'static FeatureViewDef),
    /// A feature service.
    FeatureService(&'static FeatureServiceDef),
}

inventory::collect!(Definition);

/// An entity type: a struct under `#[entity]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a feast entity",
    label = "not an `#[entity]`",
    note = "entities are structs with one join-key field under `#[entity]`, as in `#[entity] pub struct Driver {{ driver_id: i64 }}`"
)]
pub trait Entity: Clone + fmt::Debug + PartialEq + 'static {
    /// The join key's Rust type.
    type Key: JoinKey;
    /// The entity's definition.
    const DEF: &'static EntityDef;
    /// The join key's value.
    fn key(&self) -> &Self::Key;
    /// The entity with this join key.
    fn from_key(key: Self::Key) -> Self;
}

/// A data source type: a unit struct under a source macro.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a feast data source",
    label = "not a data source",
    note = "data sources are unit structs under `#[file_source]`, `#[kinesis_source]` or `#[push_source]`"
)]
pub trait DataSource: 'static {
    /// The source's definition.
    const DEF: &'static DataSourceDef;
}

/// A source that batch views and `batch_source = ...` accept.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a batch source",
    label = "expected a `#[file_source]` here",
    note = "batch feature views and `batch_source = ...` take a `#[file_source]`; Kinesis and push sources are stream sources, read by `#[stream_feature_view]`"
)]
pub trait BatchSource: DataSource {}

/// A source that stream views accept.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a stream source",
    label = "expected a `#[kinesis_source]` or `#[push_source]` here",
    note = "stream feature views read a `#[kinesis_source]` or `#[push_source]`; a `#[file_source]` is read by `#[batch_feature_view]`"
)]
pub trait StreamSource: DataSource {}

/// A feature view type, generated for each view function as `{Name}View`
/// and under the function's own name.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a feature view",
    label = "not a feature view",
    note = "feature views are functions under `#[stream_feature_view]` or `#[batch_feature_view]`; name them by the function's path"
)]
pub trait FeatureView: 'static {
    /// The typed row read back from the online store.
    type Row;
    /// The entity (or tuple of entities) that identifies a row.
    type Key: Clone;
    /// The view's definition.
    const DEF: &'static FeatureViewDef;

    /// Appends the entity key's serialization (version 3).
    fn serialize_key(key: &Self::Key, out: &mut Vec<u8>);

    /// Builds a row from a key, an event time (microseconds) and the stored
    /// values of the view's features in schema order.
    fn make_row(
        key: Self::Key,
        event_ts_us: i64,
        values: Vec<Option<Value>>,
    ) -> Result<Self::Row, DecodeError>;
}

/// A feature service type: a unit struct under `#[feature_service]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a feature service",
    label = "not a `#[feature_service]`"
)]
pub trait FeatureService: 'static {
    /// The service's definition.
    const DEF: &'static FeatureServiceDef;
}
