//! The offline store: the history of every batch source, read for
//! materialization, point-in-time retrieval and `verify`, appended to by
//! pushes and ingestion. [`OfflineStore`] is the seam a backend implements
//! (Parquet files today, [`parquet`]); point-in-time joins run over what it
//! reads ([`retrieval`]).

pub mod parquet;
pub mod retrieval;

use std::path::PathBuf;

use polars::prelude::DataFrame;

use crate::config::{OfflineStoreType, Repo};
use crate::definition::DataSourceDef;
use crate::transform::frame::FrameError;

pub use parquet::{ParquetStore, read_file, write_file};

/// An offline store failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source has no data yet.
    #[error("batch source `{source_name}`: {path} does not exist (generate or write data first)")]
    Missing {
        /// The source.
        source_name: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A part cannot be read.
    #[error("batch source `{source_name}`: cannot read {path}: {source}")]
    Read {
        /// The source.
        source_name: &'static str,
        /// The part.
        path: PathBuf,
        #[source]
        /// Why.
        source: crate::definition::BoxError,
    },
    /// A part cannot be written.
    #[error("batch source `{source_name}`: cannot write {path}: {source}")]
    Write {
        /// The source.
        source_name: &'static str,
        /// The part.
        path: PathBuf,
        #[source]
        /// Why.
        source: crate::definition::BoxError,
    },
    /// Appending needs a directory.
    #[error(
        "batch source `{source_name}`: {path} is a single Parquet file; appending needs a directory of files (move it to {path}/part-0.parquet)"
    )]
    NotADirectory {
        /// The source.
        source_name: &'static str,
        /// Its single file.
        path: PathBuf,
    },
    /// Rows with other columns than the source's.
    #[error(
        "the frame's columns do not match batch source `{source_name}`:{}{}",
        list(" missing", missing),
        list(" extra", extra)
    )]
    Columns {
        /// The source.
        source_name: &'static str,
        /// Columns it lacks.
        missing: Vec<String>,
        /// Columns it has beyond the source's.
        extra: Vec<String>,
    },
    /// Rows whose columns do not convert.
    #[error("batch source `{source_name}`: {error}")]
    Frame {
        /// The source.
        source_name: &'static str,
        /// How.
        error: FrameError,
    },
}

fn list(label: &str, items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(
            "{label} {}",
            items
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// What the stored data of a batch source holds, against its declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaCheck {
    /// Parts read (their schemas only).
    pub files: usize,
    /// Each problem once, with how many parts have it and the first of them.
    pub problems: Vec<(String, usize, PathBuf)>,
}

/// What an offline store does: the rows of batch sources, kept as parts
/// (files) named by their writer, so that a replay rewrites rather than
/// duplicates. Rows are in the source's declared schema, after
/// `field_mapping`.
pub trait OfflineStore: Send + Sync + std::fmt::Debug {
    /// Every row of `source` (a file source); no rows yet reads as an empty
    /// frame.
    fn read(&self, source: &'static DataSourceDef) -> Result<DataFrame, Error> {
        self.read_parts(source, &|_| true)
    }

    /// The rows of the parts of `source` whose names `keep` picks.
    fn read_parts(
        &self,
        source: &'static DataSourceDef,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<DataFrame, Error>;

    /// Adds `df` to `source` as the part `name`; writing the same name
    /// again replaces it. Returns where it went.
    fn append(
        &self,
        source: &'static DataSourceDef,
        df: &DataFrame,
        name: &str,
    ) -> Result<PathBuf, Error>;

    /// Removes the parts of `source` whose names `doomed` picks; how many.
    fn remove(
        &self,
        source: &'static DataSourceDef,
        doomed: &dyn Fn(&str) -> bool,
    ) -> Result<usize, Error>;

    /// Each part's schema against the declared columns; `None` when the
    /// source has no data yet.
    fn check_schema(&self, source: &'static DataSourceDef) -> Result<Option<SchemaCheck>, Error>;
}

/// Whether a part of a batch source is the offline log `ingest` keeps of a
/// Kinesis stream: `{stream}-{shard}-{first}-{last}`, shard ids being
/// `shardId-…`.
pub fn is_stream_log(stream: &str, part: &str) -> bool {
    part.strip_prefix(stream)
        .is_some_and(|rest| rest.starts_with("-shardId-"))
}

/// Checks that `df` has exactly the batch source's columns (as a set), as
/// Feast's `write_to_offline_store` does, and returns it in schema order.
pub fn check_columns(source: &'static DataSourceDef, df: &DataFrame) -> Result<DataFrame, Error> {
    let schema = source.schema();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let missing: Vec<String> = schema
        .iter()
        .filter(|f| !names.iter().any(|n| n == f.name))
        .map(|f| f.name.to_owned())
        .collect();
    let extra: Vec<String> = names
        .iter()
        .filter(|n| !schema.iter().any(|f| f.name == n.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(Error::Columns {
            source_name: source.name,
            missing,
            extra,
        });
    }
    crate::transform::frame::conform(df, &schema).map_err(|error| Error::Frame {
        source_name: source.name,
        error,
    })
}

/// The offline store `feature_store.yaml` configures.
pub fn open(repo: &Repo) -> Box<dyn OfflineStore> {
    match repo.config.offline_store.store_type {
        OfflineStoreType::File => Box::new(ParquetStore::new(&repo.dir)),
    }
}
