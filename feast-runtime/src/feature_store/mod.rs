//! The `FeatureStore` API, mirroring Feast's: online and offline writes,
//! pushes, materialization, online reads and point-in-time retrieval, plus
//! `verify`. A facade: references resolve in the registry, online reads are
//! assembled by `online_store::read`, point-in-time joins run in
//! `offline_store::retrieval`.

#[doc(hidden)]
pub mod json;
mod verify;

pub use verify::{Difference, DifferenceKind, ViewReport};

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use polars::prelude::*;

use crate::config::Repo;
use crate::definition::{DataSourceDef, FeatureView, FeatureViewDef};
use crate::offline_store::retrieval::{self, ViewRequest};
use crate::offline_store::{self, OfflineStore};
pub use crate::online_store::read::{EntityRows, FeatureVector, FieldStatus, OnlineResponse};
pub use crate::registry::{Features, ResolveError};

use crate::online_store::read::{ReadError, read_features};
use crate::online_store::{self, OnlineBatch, OnlineStore, WriteStats};
use crate::registry::{Registry, Resolved};
use crate::transform::frame::FrameError;
use crate::transform::{self, TransformError};

/// A failed `FeatureStore` call; each variant names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `feature_store.yaml` cannot be read.
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    /// The definitions break a rule.
    #[error(transparent)]
    Registry(#[from] crate::registry::Error),
    /// A reference names nothing.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// Two views give a feature of one name.
    #[error("feature `{feature}` is in both `{first}` and `{second}`; ask for full feature names")]
    AmbiguousFeature {
        /// The feature.
        feature: &'static str,
        /// The first view giving it.
        first: &'static str,
        /// The second.
        second: &'static str,
    },
    /// A frame does not fit a view.
    #[error("view `{view}`: {error}")]
    Frame {
        /// The view.
        view: &'static str,
        /// How.
        error: FrameError,
    },
    /// The entity frame of a retrieval does not fit.
    #[error("entity rows: {0}")]
    EntityRows(FrameError),
    /// The point-in-time join failed.
    #[error("point-in-time join: {0}")]
    Retrieval(FrameError),
    /// An online read failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A view's function failed.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// A view's function returned other columns than declared.
    #[error(
        "view `{view}`: the function's output does not match the declaration: {}",
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Output {
        /// The view.
        view: &'static str,
        /// How they differ.
        problems: Vec<transform::OutputProblem>,
    },
    /// Rows written straight to an aggregated view's online store.
    #[error(
        "view `{view}` aggregates its events into windows, which only `ingest` (its stream) and `materialize` (its batch source) write; write the events to the source instead"
    )]
    AggregatedWrite {
        /// The view.
        view: &'static str,
    },
    /// The online store failed.
    #[error(transparent)]
    Online(#[from] online_store::Error),
    /// The offline store failed.
    #[error(transparent)]
    Offline(#[from] offline_store::Error),
}

/// A `FeatureStore` result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where pushed rows go (Feast's `PushMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushMode {
    #[default]
    /// Features online.
    Online,
    /// Rows to the batch source.
    Offline,
    /// Both.
    OnlineAndOffline,
}

/// A push mode that is none of Feast's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown push mode `{0}`; expected online, offline or online_and_offline")]
pub struct UnknownPushMode(pub String);

impl std::str::FromStr for PushMode {
    type Err = UnknownPushMode;
    fn from_str(s: &str) -> Result<Self, UnknownPushMode> {
        match s {
            "online" => Ok(PushMode::Online),
            "offline" => Ok(PushMode::Offline),
            "online_and_offline" | "online-and-offline" => Ok(PushMode::OnlineAndOffline),
            _ => Err(UnknownPushMode(s.to_owned())),
        }
    }
}

/// What a materialization did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaterializeStats {
    /// Per view, what was written.
    pub views: Vec<(String, WriteStats)>,
    /// Offline rows read.
    pub rows_read: usize,
}

/// An opened feature repository: configuration, registry and online store.
pub struct FeatureStore {
    repo: Repo,
    registry: Registry,
    online: Box<dyn OnlineStore>,
    offline: Box<dyn OfflineStore>,
}

impl std::fmt::Debug for FeatureStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureStore")
            .field("repo", &self.repo.dir)
            .finish_non_exhaustive()
    }
}

impl FeatureStore {
    /// Opens the repository in `dir` with the definitions linked into this binary.
    pub fn open(dir: &Path) -> Result<FeatureStore> {
        let repo = Repo::load(dir)?;
        let registry = Registry::load()?;
        FeatureStore::with_registry(repo, registry)
    }

    /// Opens the configured online store for `registry`.
    pub fn with_registry(repo: Repo, registry: Registry) -> Result<FeatureStore> {
        let online = online_store::open(&repo)?;
        let offline = offline_store::open(&repo);
        Ok(FeatureStore {
            repo,
            registry,
            online,
            offline,
        })
    }

    /// The project name from `feature_store.yaml`.
    pub fn project(&self) -> &str {
        &self.repo.config.project
    }

    /// The definitions.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The repository's `feature_store.yaml`.
    pub fn config(&self) -> &crate::config::RepoConfig {
        &self.repo.config
    }

    /// The repository's directory.
    pub fn repo_dir(&self) -> &Path {
        &self.repo.dir
    }

    /// The online store.
    pub fn online_store(&self) -> &dyn OnlineStore {
        self.online.as_ref()
    }

    /// The offline store.
    pub fn offline_store(&self) -> &dyn OfflineStore {
        self.offline.as_ref()
    }

    /// The view named `name`.
    pub fn view(&self, name: &str) -> Result<&'static FeatureViewDef> {
        Ok(self.registry.view_named(name)?)
    }

    /// Creates the online tables of every view.
    pub fn update_infra(&self) -> Result<()> {
        let views: Vec<&FeatureViewDef> = self.registry.feature_views().collect();
        Ok(self.online.update(&views)?)
    }

    /// Drops the online tables of every view.
    pub fn teardown(&self) -> Result<()> {
        let views: Vec<&FeatureViewDef> = self.registry.feature_views().collect();
        Ok(self.online.teardown(&views)?)
    }

    /// Writes feature rows (join keys, event timestamp, features) of `view` to
    /// the online store; an older event never replaces a newer one.
    pub fn write_to_online_store(&self, view: &str, df: &DataFrame) -> Result<WriteStats> {
        let view = self.view(view)?;
        self.write_online(view, df)
    }

    fn write_online(&self, view: &'static FeatureViewDef, df: &DataFrame) -> Result<WriteStats> {
        if view.is_aggregated() {
            return Err(Error::AggregatedWrite { view: view.name });
        }
        let batch = OnlineBatch::from_frame(view, df).map_err(|source| Error::Frame {
            view: view.name,
            error: source,
        })?;
        Ok(self.online.write(view, &batch)?)
    }

    /// Appends rows in the schema of `view`'s batch source to it (columns
    /// must match the source's as a set). Returns the file written.
    pub fn write_to_offline_store(&self, view: &str, df: &DataFrame) -> Result<PathBuf> {
        let view = self.view(view)?;
        let batch = view.source.offline_source();
        let df = offline_store::check_columns(batch, df)?;
        let name = format!("write-{}", unique_suffix());
        Ok(self.offline.append(batch, &df, &name)?)
    }

    /// The push source named `name`.
    pub fn push_source(&self, name: &str) -> Result<&'static DataSourceDef> {
        Ok(self.registry.push_source_named(name)?)
    }

    /// Pushes rows in the push source's schema: online, each view reading the
    /// source runs its function and writes; offline, the rows are appended to
    /// the source's batch source.
    pub fn push(
        &self,
        push_source: &str,
        df: &DataFrame,
        to: PushMode,
    ) -> Result<Vec<(String, WriteStats)>> {
        let source = self.push_source(push_source)?;
        let batch_source = source.offline_source();
        let rows = offline_store::check_columns(batch_source, df)?;
        let mut stats = Vec::new();
        if matches!(to, PushMode::Online | PushMode::OnlineAndOffline) {
            for view in self
                .registry
                .feature_views()
                .filter(|v| std::ptr::eq(v.source, source) && v.online)
            {
                let features = self.transform(view, &rows)?;
                stats.push((view.name.to_owned(), self.write_online(view, &features)?));
            }
        }
        if matches!(to, PushMode::Offline | PushMode::OnlineAndOffline) {
            self.offline
                .append(batch_source, &rows, &format!("push-{}", unique_suffix()))?;
        }
        Ok(stats)
    }

    /// Runs a view's function over rows of its source and checks the output.
    pub fn transform(&self, view: &'static FeatureViewDef, rows: &DataFrame) -> Result<DataFrame> {
        let input = crate::transform::frame::conform(rows, &transform::input_schema(view))
            .map_err(|source| Error::Frame {
                view: view.name,
                error: source,
            })?;
        // Keep columns the input schema does not name (a batch source's extra
        // columns, such as its created timestamp).
        let mut input = input;
        for col in rows.columns() {
            if input.column(col.name()).is_err() {
                input.with_column(col.clone()).map_err(|e| Error::Frame {
                    view: view.name,
                    error: e.into(),
                })?;
            }
        }
        let out = transform::run_transform(view, input)?;
        let check = transform::check_output(view, &out);
        if !check.errors.is_empty() {
            return Err(Error::Output {
                view: view.name,
                problems: check.errors,
            });
        }
        Ok(out)
    }

    /// A view's feature rows over its offline data: the batch source's rows
    /// through the view's function.
    pub fn offline_rows(&self, view: &'static FeatureViewDef) -> Result<DataFrame> {
        let source: &'static DataSourceDef = view.source.offline_source();
        let raw = self.offline.read(source)?;
        self.transform(view, &raw)
    }

    /// Copies the newest row per entity with event time in `[start, end]`
    /// (both inclusive) from each view's offline data to the online store.
    pub fn materialize(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        views: Option<&[&str]>,
    ) -> Result<MaterializeStats> {
        let views = self.online_views(views)?;
        let (start_us, end_us) = (start.timestamp_micros(), end.timestamp_micros());
        let mut stats = MaterializeStats::default();
        for view in views {
            if view.is_aggregated() {
                let (read, written) = self.backfill(view, end_us)?;
                stats.rows_read += read;
                self.online.set_materialized_until(view.name, end_us)?;
                stats.views.push((view.name.to_owned(), written));
                continue;
            }
            let rows = self.offline_rows(view)?;
            let rows = filter_time(&rows, view.event_timestamp_field(), start_us, end_us).map_err(
                |source| Error::Frame {
                    view: view.name,
                    error: source,
                },
            )?;
            stats.rows_read += rows.height();
            let written = self.write_online(view, &rows)?;
            self.online.set_materialized_until(view.name, end_us)?;
            stats.views.push((view.name.to_owned(), written));
        }
        Ok(stats)
    }

    /// Recomputes the backfill part of an aggregated view's tiles from its
    /// batch source up to `end_us`: every event a window at `end_us` or
    /// later can count, leaving out the stream's own offline log, whose
    /// events `ingest` counted (so no event counts twice, whichever runs
    /// first). Rows read and the write.
    fn backfill(&self, view: &'static FeatureViewDef, end_us: i64) -> Result<(usize, WriteStats)> {
        let source = view.source.offline_source();
        let raw = match view.source.kind {
            crate::definition::SourceKind::Kinesis { stream_name, .. } => {
                self.offline.read_parts(source, &|part| {
                    !offline_store::is_stream_log(stream_name, part)
                })?
            }
            _ => self.offline.read(source)?,
        };
        let rows = self.transform(view, &raw)?;
        let plan = crate::aggregate::Plan::of(view);
        let oldest = plan
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| plan.first_live_tile(g, end_us).saturating_mul(group.hop_us))
            .min()
            .unwrap_or(end_us);
        let frame_err = |error| Error::Frame {
            view: view.name,
            error,
        };
        let rows =
            filter_time(&rows, view.event_timestamp_field(), oldest, end_us).map_err(frame_err)?;
        let batch = OnlineBatch::from_events(view, &rows, crate::aggregate::stored::Part::Backfill)
            .map_err(frame_err)?;
        Ok((rows.height(), self.online.write(view, &batch)?))
    }

    /// Materializes each view from the end of its previous materialization
    /// (or `end - ttl`, or the beginning of time for a view without ttl) to `end`.
    pub fn materialize_incremental(
        &self,
        end: DateTime<Utc>,
        views: Option<&[&str]>,
    ) -> Result<MaterializeStats> {
        let mut total = MaterializeStats::default();
        for view in self.online_views(views)? {
            let start_us = match self.online.materialized_until(view.name)? {
                Some(prev) => prev,
                None if view.ttl_seconds > 0 => {
                    end.timestamp_micros() - (view.ttl_seconds as i64) * 1_000_000
                }
                None => i64::MIN / 2,
            };
            let start = DateTime::<Utc>::from_timestamp_micros(start_us)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            let s = self.materialize(start, end, Some(&[view.name]))?;
            total.rows_read += s.rows_read;
            total.views.extend(s.views);
        }
        Ok(total)
    }

    /// The views named, or every online view.
    pub(crate) fn online_views(
        &self,
        names: Option<&[&str]>,
    ) -> Result<Vec<&'static FeatureViewDef>> {
        match names {
            Some(names) => names.iter().map(|n| self.view(n)).collect(),
            None => Ok(self.registry.feature_views().filter(|v| v.online).collect()),
        }
    }

    /// Resolves `view:feature` references or a service into (view, features).
    pub fn resolve(&self, features: &Features<'_>) -> Result<Resolved> {
        Ok(self.registry.resolve(features)?)
    }

    /// Reads online features for entity rows, Feast-style: the entity columns
    /// first, then each feature in request order, with statuses. A value older
    /// than its view's ttl is `OUTSIDE_MAX_AGE` (Feast does not check).
    pub fn get_online_features(
        &self,
        features: &Features<'_>,
        entity_rows: EntityRows<'_>,
        full_feature_names: bool,
    ) -> Result<OnlineResponse> {
        self.get_online_features_at(features, entity_rows, full_feature_names, Utc::now())
    }

    /// [`Self::get_online_features`] with ttl checked against `now`.
    pub fn get_online_features_at(
        &self,
        features: &Features<'_>,
        entity_rows: EntityRows<'_>,
        full_feature_names: bool,
        now: DateTime<Utc>,
    ) -> Result<OnlineResponse> {
        let resolved = self.resolve(features)?;
        Ok(read_features(
            self.online.as_ref(),
            &resolved,
            entity_rows,
            full_feature_names,
            now.timestamp_micros(),
        )?)
    }

    /// Typed online read: one `{View}Row` per key, `None` where the entity has
    /// no row (or its values are older than the view's ttl).
    pub fn get_online<V: FeatureView>(&self, keys: &[V::Key]) -> Result<Vec<Option<V::Row>>> {
        let view = V::DEF;
        let names: Vec<&str> = view.schema.iter().map(|f| f.name).collect();
        let encoded: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| {
                let mut buf = Vec::new();
                V::serialize_key(k, &mut buf);
                buf
            })
            .collect();
        let now_us = Utc::now().timestamp_micros();
        let stored =
            online_store::read::stored_rows(self.online.as_ref(), view, &encoded, &names, now_us)?;
        let mut out = Vec::with_capacity(keys.len());
        for (key, row) in keys.iter().zip(stored) {
            let row = match row {
                Some(r) if view.is_fresh(r.event_ts, now_us) => Some(
                    V::make_row(key.clone(), r.event_ts, r.values)
                        .map_err(online_store::Error::from)?,
                ),
                _ => None,
            };
            out.push(row);
        }
        Ok(out)
    }

    /// Point-in-time correct training data: `entity_df` (join keys and an
    /// `event_timestamp` column) with the requested features joined on.
    pub fn get_historical_features(
        &self,
        entity_df: &DataFrame,
        features: &Features<'_>,
        full_feature_names: bool,
        filter_by_created_timestamp: bool,
    ) -> Result<DataFrame> {
        let resolved = self.resolve(features)?;
        crate::transform::frame::check_microseconds(entity_df, retrieval::ENTITY_TIMESTAMP)
            .map_err(Error::EntityRows)?;
        crate::transform::frame::required_timestamps_us(
            entity_df,
            retrieval::ENTITY_TIMESTAMP,
            "an entity row's timestamp",
        )
        .map_err(Error::EntityRows)?;
        if !full_feature_names {
            let mut seen: Vec<(&'static str, &'static str)> = Vec::new();
            for (view, names) in &resolved {
                for n in names {
                    if let Some((_, first)) = seen.iter().find(|(f, _)| f == n) {
                        return Err(Error::AmbiguousFeature {
                            feature: n,
                            first,
                            second: view.name,
                        });
                    }
                    seen.push((n, view.name));
                }
            }
        }
        let mut frames = Vec::with_capacity(resolved.len());
        for (view, _) in &resolved {
            frames.push(self.offline_rows(view)?);
        }
        let requests: Vec<ViewRequest<'_>> = resolved
            .iter()
            .zip(&frames)
            .map(|((view, names), rows)| ViewRequest {
                view,
                rows,
                features: names.clone(),
            })
            .collect();
        retrieval::point_in_time_join(
            entity_df,
            &requests,
            retrieval::Options {
                full_feature_names,
                filter_by_created_timestamp,
            },
        )
        .map_err(Error::Retrieval)
    }
}

/// Rows of `df` whose `column` is within `[start, end]` (microseconds).
fn filter_time(
    df: &DataFrame,
    column: &str,
    start: i64,
    end: i64,
) -> Result<DataFrame, FrameError> {
    let ts = crate::transform::frame::timestamps_us(df, column)?;
    let mask: BooleanChunked = ts
        .iter()
        .map(|t| t.is_some_and(|t| t >= start && t <= end))
        .collect();
    Ok(df.filter(&mask)?)
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.6f"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
