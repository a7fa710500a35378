//! Items that generated code names by absolute path. Not a public API.

pub use inventory;
pub use polars::prelude::DataFrame;

pub use crate::definition::*;

/// `T::DEF` for an entity; the bound gives a spanned error on a wrong path.
pub const fn entity<T: Entity>() -> &'static EntityDef {
    T::DEF
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

static INVALID_SOURCE: DataSourceDef = DataSourceDef {
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
    location: Location {
        module_path: "",
        file: "",
        line: 0,
        column: 0,
    },
};

/// Stands in for a view whose macro reported errors, so that code naming it
/// compiles far enough to show only the real errors. Never registered.
pub static INVALID_VIEW: FeatureViewDef = FeatureViewDef {
    name: "",
    kind: ViewKind::Stream,
    entities: &[],
    source: &INVALID_SOURCE,
    schema: &[],
    ttl_seconds: 0,
    timestamp_field: None,
    online: false,
    offline: false,
    description: "",
    tags: &[],
    owner: "",
    transform: invalid_transform,
    location: Location {
        module_path: "",
        file: "",
        line: 0,
        column: 0,
    },
};
