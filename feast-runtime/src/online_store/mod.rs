//! Online stores: the latest feature values per entity, for serving.
//!
//! Every store keeps Feast's layout (entity keys in serialization version 3,
//! values as `feast.types.Value` bytes) and one rule Feast does not: a write
//! never replaces a value with one whose event time is older, comparing event
//! time, then created time, inside the store's own atomic operation.

mod config;
pub mod read;
#[cfg(feature = "redis")]
pub mod redis;
pub mod sqlite;

pub use config::{ConfigError, StoreConfig, open};

use std::collections::HashMap;

use polars::prelude::{DataFrame, IdxCa, IdxSize};

use crate::aggregate::{
    self, TileError,
    stored::{Part, StoredTiles, TileBatch},
};
use crate::definition::{FeatureViewDef, JoinKeyValue, Value, serialize_entity_key};
use crate::transform::frame::{self, FrameError, KeyColumn};

/// The rows of one view ready for an online write: one entity per row, the
/// newest row per entity only, sorted by entity key bytes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OnlineBatch {
    /// Serialized entity keys (version 3), sorted.
    pub entity_keys: Vec<Vec<u8>>,
    /// Event time, microseconds since the epoch.
    pub event_ts: Vec<i64>,
    /// Created time, microseconds since the epoch.
    pub created_ts: Vec<Option<i64>>,
    /// One column per feature of the view, in schema order.
    pub features: Vec<(&'static str, Vec<Value>)>,
    /// For a view with aggregations, its events folded into tiles (and no
    /// rows above).
    pub tiles: Option<TileBatch>,
}

impl OnlineBatch {
    /// Rows (entities) in the batch.
    pub fn len(&self) -> usize {
        self.entity_keys.len() + self.tiles.as_ref().map_or(0, |t| t.folded.entities.len())
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Folds the rows of an aggregated view's output into tiles of `part`.
    pub fn from_events(
        view: &FeatureViewDef,
        df: &DataFrame,
        part: Part,
    ) -> Result<OnlineBatch, FrameError> {
        let folded = aggregate::fold(view, &aggregate::Plan::of(view), df)?;
        Ok(OnlineBatch {
            tiles: Some(TileBatch { part, folded }),
            ..OnlineBatch::default()
        })
    }

    /// Prepares a frame with the view's join keys, event timestamp, features
    /// and (optionally) the source's created timestamp. Several rows for one
    /// entity keep the newest (event time, then created time, then the later
    /// row).
    pub fn from_frame(view: &FeatureViewDef, df: &DataFrame) -> Result<OnlineBatch, FrameError> {
        let keys: Vec<(&str, KeyColumn)> = view
            .entities
            .iter()
            .map(|e| Ok((e.join_key, frame::key_column(df, e.join_key, e.value_type)?)))
            .collect::<Result<_, FrameError>>()?;
        let event =
            frame::required_timestamps_us(df, view.event_timestamp_field(), "an event timestamp")?;
        let created: Vec<Option<i64>> = match view.source.created_timestamp_field() {
            Some(name) if df.column(name).is_ok() => frame::timestamps_us(df, name)?,
            _ => vec![None; df.height()],
        };
        // Check every feature column before doing any work.
        for f in view.schema {
            frame::check_feature_column(df, f)?;
        }

        // Newest row per entity key, decided on keys and timestamps alone.
        let rank = |row: usize| (event[row], created[row], row);
        let rows: Vec<usize> = match keys.as_slice() {
            [(_, KeyColumn::Int64(ids))] => newest_per_key(ids.iter().copied(), rank),
            [(_, KeyColumn::Int32(ids))] => newest_per_key(ids.iter().copied(), rank),
            _ => {
                let mut pairs: Vec<(&str, JoinKeyValue<'_>)> = Vec::with_capacity(keys.len());
                let encoded = (0..df.height()).map(|row| {
                    pairs.clear();
                    pairs.extend(keys.iter().map(|(name, col)| (*name, col.value(row))));
                    let mut buf = Vec::with_capacity(40);
                    serialize_entity_key(&mut buf, &pairs);
                    buf
                });
                newest_per_key(encoded, rank)
            }
        };
        let mut chosen: Vec<(Vec<u8>, usize)> = rows
            .into_iter()
            .map(|row| {
                let pairs: Vec<(&str, JoinKeyValue<'_>)> = keys
                    .iter()
                    .map(|(name, col)| (*name, col.value(row)))
                    .collect();
                let mut buf = Vec::with_capacity(40);
                serialize_entity_key(&mut buf, &pairs);
                (buf, row)
            })
            .collect();
        chosen.sort_unstable();

        // Only the chosen rows' features are read.
        let idx = IdxCa::from_vec(
            "row".into(),
            chosen.iter().map(|(_, row)| *row as IdxSize).collect(),
        );
        let picked = df.take(&idx)?;
        let features = view
            .schema
            .iter()
            .map(|f| Ok((f.name, frame::feature_values(&picked, f)?)))
            .collect::<Result<_, FrameError>>()?;
        let (entity_keys, rows): (Vec<Vec<u8>>, Vec<usize>) = chosen.into_iter().unzip();
        Ok(OnlineBatch {
            entity_keys,
            event_ts: rows.iter().map(|&r| event[r]).collect(),
            created_ts: rows.iter().map(|&r| created[r]).collect(),
            features,
            tiles: None,
        })
    }
}

/// The row with the highest rank for each distinct key.
fn newest_per_key<K: std::hash::Hash + Eq>(
    keys: impl Iterator<Item = K>,
    rank: impl Fn(usize) -> (i64, Option<i64>, usize),
) -> Vec<usize> {
    let mut best: HashMap<K, usize, foldhash::fast::RandomState> = HashMap::default();
    for (row, key) in keys.enumerate() {
        best.entry(key)
            .and_modify(|prev| {
                if rank(row) > rank(*prev) {
                    *prev = row;
                }
            })
            .or_insert(row);
    }
    best.into_values().collect()
}

/// One entity's stored values for one view, in the requested feature order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// Event time, microseconds since the epoch (whole seconds on SQLite, as
    /// Feast stores it).
    pub event_ts: i64,
    /// `None` for a feature the entity has no value for.
    pub values: Vec<Option<Value>>,
}

/// What a write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// Entity rows offered to the store (after keeping the newest per entity).
    pub rows: usize,
    /// Feature values written or replaced.
    pub values_written: usize,
}

/// An online store failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database cannot be opened.
    #[error("online store: cannot open {path}: {source}")]
    Open {
        /// Its file.
        path: std::path::PathBuf,
        #[source]
        /// Why.
        source: rusqlite::Error,
    },
    /// A SQLite call failed.
    #[error("online store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Redis answered with an error.
    #[cfg(feature = "redis")]
    #[error("online store: redis: {0}")]
    Redis(#[source] ::redis::RedisError),
    /// Redis cannot be reached: refused, dropped or timed out.
    #[cfg(feature = "redis")]
    #[error("online store unavailable: {0}")]
    Unavailable(#[source] ::redis::RedisError),
    /// Redis was unreachable a moment ago; the next attempt waits.
    #[error(
        "online store unavailable: redis was unreachable; the next connection is tried after {0:?}"
    )]
    BackingOff(std::time::Duration),
    /// A stored value is not a `Value`.
    #[error("online store: {0}")]
    Decode(#[from] crate::definition::DecodeError),
    /// The settings are wrong.
    #[error("feature_store.yaml: {0}")]
    Config(#[from] ConfigError),
    /// A stored aggregation tile cannot be used.
    #[error("online store: view `{view}`: {error}")]
    Tile {
        /// The view.
        view: &'static str,
        /// What is wrong.
        #[source]
        error: TileError,
    },
    /// Another writer changed the tiles this write merged into, again and
    /// again.
    #[error("online store: view `{0}`: tiles kept changing under the write; try again")]
    Contended(&'static str),
    /// A write of a shard whose lease another worker has taken since: its
    /// fencing token is below the shard's. Nothing of the write landed
    /// after the new owner's writes.
    #[error(
        "shard {shard}: the lease was taken over (this worker's fencing token {token} is below the shard's{}); nothing more is written for it",
        current.map(|c| format!(" {c}")).unwrap_or_default()
    )]
    Fenced {
        /// The shard.
        shard: String,
        /// The writer's token.
        token: u64,
        /// The shard's token, when known.
        current: Option<u64>,
    },
    /// The store cannot fence writes of several workers.
    #[error(
        "the {0} online store is written by one process, which keeps its own checkpoints; several ingest workers (--lease-table) need a shared store that fences stale writers: online_store type redis"
    )]
    NotShared(&'static str),
}

#[cfg(feature = "redis")]
impl From<redis::ConfigError> for Error {
    fn from(e: redis::ConfigError) -> Self {
        Error::Config(ConfigError::Redis(e))
    }
}

impl Error {
    /// Whether a later call may succeed, decided where the error arose: the
    /// store was unreachable, busy, short of space or failing over; not a
    /// refused password, a value of the wrong type or bad settings, which
    /// fail the same way however often they are tried.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                C::DatabaseBusy | C::DatabaseLocked | C::SystemIoFailure | C::DiskFull
            ),
            Error::Sqlite(_)
            | Error::Open { .. }
            | Error::Decode(_)
            | Error::Config(_)
            | Error::Tile { .. }
            | Error::Fenced { .. }
            | Error::NotShared(_) => false,
            Error::Contended(_) => true,
            #[cfg(feature = "redis")]
            Error::Redis(e) => matches!(
                e.kind(),
                ::redis::ErrorKind::Server(
                    ::redis::ServerErrorKind::BusyLoading
                        | ::redis::ServerErrorKind::TryAgain
                        | ::redis::ServerErrorKind::MasterDown
                        | ::redis::ServerErrorKind::ClusterDown
                        | ::redis::ServerErrorKind::ReadOnly
                )
            ),
            #[cfg(feature = "redis")]
            Error::Unavailable(_) => true,
            Error::BackingOff(_) => true,
        }
    }

    /// Whether the store could not be reached at all (for health checks and
    /// HTTP 503s), as opposed to answering with an error.
    pub fn is_unavailable(&self) -> bool {
        match self {
            #[cfg(feature = "redis")]
            Error::Unavailable(_) => true,
            Error::BackingOff(_) => true,
            _ => false,
        }
    }
}

/// An online store result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether sequence number `a` comes after `b` in one shard: decimal
/// strings too long for any integer type, so the longer is the larger and
/// equal lengths compare digit by digit.
pub fn sequence_after(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

/// A stream position to commit together with a batch's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointUpdate<'a> {
    /// The ingesting application (the project).
    pub consumer: &'a str,
    /// The stream.
    pub stream: &'a str,
    /// The shard.
    pub shard: &'a str,
    /// The last sequence number the batch covers.
    pub sequence_number: Option<&'a str>,
    /// The shard is closed and read to its end.
    pub finished: bool,
    /// Records the batch covers, dead-lettered ones included.
    pub records: u64,
    /// Per aggregated view, the newest event time the shard has shown so
    /// far (the shard's watermark), committed with the position so that a
    /// replay judges late events as the first run did.
    pub watermarks: &'a [(&'a str, i64)],
    /// With shard leases, the writer's fencing token (its lease counter):
    /// the store refuses the write, rows included, once a higher token has
    /// written the shard. `None`: a single ingest process, nothing checked.
    pub fence: Option<u64>,
}

/// Where a shard's reading stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last sequence number whose effects are committed.
    pub sequence_number: Option<String>,
    /// The shard is closed and was read to its end.
    pub finished: bool,
    /// Records committed so far (dead-lettered ones included): each batch
    /// adds its count in the transaction that commits it, so the total is
    /// exactly the records read, once each.
    pub records: u64,
    /// Per aggregated view, the shard's watermark (newest event time).
    pub watermarks: Vec<(String, i64)>,
}

/// Watermarks as a checkpoint stores them: a JSON object of view names to
/// microseconds.
pub(crate) fn watermarks_text(w: &[(&str, i64)]) -> Option<String> {
    (!w.is_empty()).then(|| {
        serde_json::Value::Object(
            w.iter()
                .map(|(view, us)| ((*view).to_owned(), serde_json::Value::from(*us)))
                .collect(),
        )
        .to_string()
    })
}

/// Watermarks from their stored text; none from text that is not theirs.
pub(crate) fn parse_watermarks(text: Option<&str>) -> Vec<(String, i64)> {
    let Some(serde_json::Value::Object(map)) = text.and_then(|t| serde_json::from_str(t).ok())
    else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(view, us)| Some((view, us.as_i64()?)))
        .collect()
}

/// The refusal of a store that cannot fence the writes of several workers.
fn not_shared(embedded: bool) -> Error {
    Error::NotShared(if embedded {
        "embedded SQLite"
    } else {
        "configured"
    })
}

/// The operations every online store provides.
pub trait OnlineStore: Send + Sync {
    /// Writes a batch; a value is only replaced by a newer one.
    fn write(&self, view: &FeatureViewDef, batch: &OnlineBatch) -> Result<WriteStats>;

    /// Writes several views' batches and, if given, a checkpoint, so that the
    /// checkpoint never runs ahead of the rows (on SQLite: one transaction).
    fn write_batches(
        &self,
        writes: &[(&FeatureViewDef, &OnlineBatch)],
        checkpoint: Option<&CheckpointUpdate<'_>>,
    ) -> Result<Vec<WriteStats>>;

    /// A shard's committed position.
    fn checkpoint(&self, consumer: &str, stream: &str, shard: &str) -> Result<Option<Checkpoint>>;

    /// Fences a shard for a new lease owner whose token is `token`: from
    /// this call on, the store refuses every write of the shard with a lower
    /// token, so the checkpoint read after it is the last one an earlier
    /// owner can commit. [`Error::Fenced`] unless `token` is above every
    /// token the shard has seen. A store written by one process only
    /// refuses ([`Error::NotShared`]).
    fn fence(&self, _consumer: &str, _stream: &str, _shard: &str, _token: u64) -> Result<()> {
        Err(not_shared(self.is_embedded()))
    }

    /// [`Error::Fenced`] if a token above `token` has fenced the shard:
    /// a cheap check before work that the write scripts check again,
    /// atomically.
    fn check_fence(&self, _consumer: &str, _stream: &str, _shard: &str, _token: u64) -> Result<()> {
        Err(not_shared(self.is_embedded()))
    }

    /// Reads `features` of `view` for each serialized entity key, in order.
    fn read(
        &self,
        view: &FeatureViewDef,
        keys: &[Vec<u8>],
        features: &[&str],
    ) -> Result<Vec<Option<StoredRow>>>;

    /// The stored tiles and markers of an aggregated view for each entity
    /// key, in order: those a read at `at_us` needs, at least.
    fn read_tiles(
        &self,
        view: &FeatureViewDef,
        keys: &[Vec<u8>],
        at_us: i64,
    ) -> Result<Vec<StoredTiles>>;

    /// The serialized entity keys `view` has values for, in no set order
    /// (a scan of the whole view: for checks such as `verify`, not serving).
    fn entity_keys(&self, view: &FeatureViewDef) -> Result<Vec<Vec<u8>>>;

    /// Creates what `views` need (tables); idempotent.
    fn update(&self, views: &[&FeatureViewDef]) -> Result<()>;

    /// Drops everything stored for `views`.
    fn teardown(&self, views: &[&FeatureViewDef]) -> Result<()>;

    /// The end of the last materialization of `view`, microseconds.
    fn materialized_until(&self, view: &str) -> Result<Option<i64>>;

    /// Records the end of a materialization of `view`.
    fn set_materialized_until(&self, view: &str, end_us: i64) -> Result<()>;

    /// Whether the store answers now (for a readiness check).
    fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// Whether every call finishes within the process, in microseconds to
    /// milliseconds, with no network to wait on (an embedded database).
    fn is_embedded(&self) -> bool {
        false
    }
}
