//! feast-rs: a compiled, streaming-first feature store.
//!
//! A feature repository is a Rust crate. Its entities, sources, feature views
//! and services are Rust items under the attribute macros re-exported here; the
//! compiler checks them, `inventory` collects them, and [`cli::main`] turns the
//! crate into one binary that lists, validates and applies them, ingests their
//! Kinesis streams, materializes, retrieves training data and serves online
//! features over HTTP.
//!
//! Cargo features: `kinesis` (`ingest`, `produce`), `redis` (the Redis online
//! store), `server` (`serve`). Without them the crate is the definitions, the
//! embedded SQLite and Parquet stores, and the batch commands.
//!
//! ```ignore
//! use feast_runtime::prelude::*;
//!
//! #[entity]
//! pub struct Driver {
//!     driver_id: i64,
//! }
//! ```

#![warn(missing_docs)]

pub mod aggregate;
pub mod cli;
pub mod config;
pub mod definition;
pub mod feature_store;
pub mod ingest;
pub mod offline_store;
pub mod online_store;
pub mod registry;
#[cfg(feature = "server")]
#[doc(hidden)]
pub mod server;
#[doc(hidden)]
pub mod transform;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use chrono;
pub use feast_macros::{
    batch_feature_view, entity, feature_service, file_source, kinesis_source, push_source,
    stream_feature_view,
};
pub use feature_store::{Error, FeatureStore, Result};
pub use polars;

/// What a feature repo needs in scope: the macros, the definition traits and
/// the Polars prelude.
pub mod prelude {
    pub use crate::definition::{DataSource, Entity, FeatureService, FeatureView};
    pub use crate::feature_store::FeatureStore;
    pub use feast_macros::{
        batch_feature_view, entity, feature_service, file_source, kinesis_source, push_source,
        stream_feature_view,
    };
    pub use polars::prelude::*;
}
