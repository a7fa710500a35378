//! Attribute macros that define a feast-rs feature repository.
//!
//! Users depend on `feast-runtime`, which re-exports these macros and the
//! `__private` module the generated code names. Each macro parses its
//! arguments (every bad one is reported, spanned), checks the rules that
//! involve several arguments, and expands to the user's item, generated types
//! and an `inventory` submission of `const` definition data.

mod common;
mod entity;
mod feature_service;
mod feature_view;
mod source;

use proc_macro::TokenStream;

/// Declares an entity: a struct whose single field is the join key.
///
/// ```ignore
/// /// A driver of the ride-hailing service.
/// #[entity]
/// pub struct Driver {
///     driver_id: i64,
/// }
/// ```
#[proc_macro_attribute]
pub fn entity(args: TokenStream, item: TokenStream) -> TokenStream {
    entity::expand(args.into(), item.into()).into()
}

/// Declares a Parquet batch source (Feast's `FileSource`) on a unit struct.
#[proc_macro_attribute]
pub fn file_source(args: TokenStream, item: TokenStream) -> TokenStream {
    source::expand(source::Kind::File, args.into(), item.into()).into()
}

/// Declares a Kinesis stream source (Feast's `KinesisSource`) on a unit struct.
#[proc_macro_attribute]
pub fn kinesis_source(args: TokenStream, item: TokenStream) -> TokenStream {
    source::expand(source::Kind::Kinesis, args.into(), item.into()).into()
}

/// Declares a push source (Feast's `PushSource`) on a unit struct.
#[proc_macro_attribute]
pub fn push_source(args: TokenStream, item: TokenStream) -> TokenStream {
    source::expand(source::Kind::Push, args.into(), item.into()).into()
}

/// Declares a stream feature view on `fn(DataFrame) -> PolarsResult<DataFrame>`.
#[proc_macro_attribute]
pub fn stream_feature_view(args: TokenStream, item: TokenStream) -> TokenStream {
    feature_view::expand(feature_view::Kind::Stream, args.into(), item.into()).into()
}

/// Declares a batch feature view on `fn(DataFrame) -> PolarsResult<DataFrame>`.
#[proc_macro_attribute]
pub fn batch_feature_view(args: TokenStream, item: TokenStream) -> TokenStream {
    feature_view::expand(feature_view::Kind::Batch, args.into(), item.into()).into()
}

/// Declares a feature service on a unit struct.
#[proc_macro_attribute]
pub fn feature_service(args: TokenStream, item: TokenStream) -> TokenStream {
    feature_service::expand(args.into(), item.into()).into()
}
