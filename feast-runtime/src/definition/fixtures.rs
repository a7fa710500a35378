//! Definitions for unit tests, built in const context as the macros build
//! theirs: a driver entity, file sources and batch views over it.

use polars::prelude::DataFrame;

use super::{
    BoxError, DataSourceDef, EntityDef, FeastType, FeatureViewDef, FieldDef, Location, SourceKind,
    ViewKind,
};

/// Where every fixture says it is defined.
pub(crate) const AT: Location = Location {
    module_path: "tests",
    file: "fixtures.rs",
    line: 1,
    column: 1,
};

/// A column of a schema.
pub(crate) const fn field(name: &'static str, dtype: FeastType) -> FieldDef {
    FieldDef { name, dtype }
}

/// The entity `driver`, joined on `driver_id` (Int64).
pub(crate) static DRIVER: EntityDef = EntityDef {
    name: "driver",
    join_key: "driver_id",
    value_type: FeastType::Int64,
    description: "",
    tags: &[],
    owner: "",
    location: AT,
};

/// The entities of every fixture view.
const DRIVERS: &[&EntityDef] = &[&DRIVER];

/// A file source at `path` with these columns, timed by `event_timestamp`.
pub(crate) const fn file_source(
    name: &'static str,
    path: &'static str,
    schema: &'static [FieldDef],
) -> DataSourceDef {
    DataSourceDef {
        name,
        kind: SourceKind::File { path, schema },
        timestamp_field: "event_timestamp",
        created_timestamp_column: None,
        field_mapping: &[],
        description: "",
        tags: &[],
        owner: "",
        location: AT,
    }
}

/// A view function that returns its input.
pub(crate) fn identity(df: DataFrame) -> Result<DataFrame, BoxError> {
    Ok(df)
}

/// An online batch view of [`DRIVER`] over `source` whose function returns
/// its input; `ttl_seconds` 0 means its values never expire.
pub(crate) const fn batch_view(
    name: &'static str,
    source: &'static DataSourceDef,
    schema: &'static [FieldDef],
    ttl_seconds: u64,
) -> FeatureViewDef {
    FeatureViewDef {
        name,
        kind: ViewKind::Batch,
        entities: DRIVERS,
        source,
        schema,
        output: schema,
        aggregations: &[],
        ttl_seconds,
        timestamp_field: None,
        online: true,
        offline: false,
        description: "",
        tags: &[],
        owner: "",
        transform: identity,
        location: AT,
    }
}
