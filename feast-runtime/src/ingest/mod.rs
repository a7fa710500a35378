//! Stream ingestion: records through the views into the stores.
//!
//! The batch path ([`pipeline`]: decode, convert, run the views, write with
//! the checkpoint), the dead-letter sink and the metrics need no stream
//! client and are always built. The run (`run`: partitions, lineage,
//! pacing, retries) is generic over a `consumer::StreamConsumer`; Kinesis
//! is one (`kinesis`, behind the `kinesis` feature). A new kind of stream
//! is a folder beside it and an arm in `ingest()`.

#[doc(hidden)]
pub mod dead_letter;
#[doc(hidden)]
pub mod decode;
pub mod metrics;
pub mod pipeline;

#[cfg(feature = "kinesis")]
pub mod consumer;
#[cfg(feature = "kinesis")]
pub mod kinesis;
#[cfg(feature = "leases")]
pub mod lease;
#[cfg(feature = "kinesis")]
mod plan;
#[cfg(feature = "kinesis")]
mod run;

#[cfg(feature = "kinesis")]
pub use self::stream::{Error, IngestOptions, IngestSummary, StartFrom, ingest};

/// The run of `ingest`: its options, errors and entry point.
#[cfg(feature = "kinesis")]
mod stream {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use tokio::sync::watch;

    use super::consumer::CallError;
    use super::metrics::Metrics;
    use super::pipeline::{self, Pipeline, Writes};
    use super::run::StreamRun;
    use super::{kinesis, plan};
    use crate::config::KinesisConfig;
    use crate::definition::{Location, SourceKind};
    use crate::feature_store::FeatureStore;
    use crate::transform::ViewProblem;

    /// Where a partition without a checkpoint starts.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum StartFrom {
        #[default]
        /// The oldest record kept.
        TrimHorizon,
        /// Only records put from now on.
        Latest,
        /// The first record at or after a time.
        AtTimestamp(DateTime<Utc>),
    }

    /// How `ingest` runs.
    #[derive(Debug, Clone)]
    pub struct IngestOptions {
        /// Views to ingest; empty = every stream view on a stream source.
        pub views: Vec<String>,
        /// Which stores this run writes.
        pub writes: Writes,
        /// Where a partition without a checkpoint starts.
        pub from: StartFrom,
        /// Stop once every partition reports no lag.
        pub until_caught_up: bool,
        /// Records per micro-batch; a read asks for what the batch still
        /// lacks, at most what the stream allows (10,000 for Kinesis).
        pub batch_size: usize,
        /// A partial batch is written after this long.
        pub max_batch_latency: Duration,
        /// Overrides the endpoint from the environment.
        pub endpoint_url: Option<String>,
        /// `feature_store.yaml`'s `kinesis:` key (endpoint and timeouts).
        pub kinesis: Option<KinesisConfig>,
        /// How often the partition list is read again to find new ones.
        pub shard_discovery_interval: Duration,
        /// Larger records are dead-lettered.
        pub max_record_bytes: usize,
        /// Share the streams with other workers through shard leases.
        #[cfg(feature = "leases")]
        pub leases: Option<super::lease::LeaseOptions>,
    }

    impl Default for IngestOptions {
        fn default() -> Self {
            IngestOptions {
                views: Vec::new(),
                writes: Writes::Declared,
                from: StartFrom::TrimHorizon,
                until_caught_up: false,
                batch_size: 20_000,
                max_batch_latency: Duration::from_millis(1000),
                endpoint_url: None,
                kinesis: None,
                shard_discovery_interval: Duration::from_secs(10),
                max_record_bytes: super::decode::MAX_RECORD_BYTES,
                #[cfg(feature = "leases")]
                leases: None,
            }
        }
    }

    /// Totals of a run.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct IngestSummary {
        /// Records read and committed.
        pub records: u64,
        /// Of them, dead-lettered.
        pub dead_lettered: u64,
        /// Feature rows written online.
        pub rows_written: u64,
        /// Partitions read.
        pub shards: usize,
    }

    /// Why ingestion stopped with an error.
    #[derive(Debug, thiserror::Error)]
    pub enum Error {
        /// No view reads a stream.
        #[error("no stream feature view to ingest: no view reads a Kinesis source")]
        NoViews,
        /// A `--view` names no stream view.
        #[error("unknown feature view `{name}`; stream views on Kinesis sources: {}", available.join(", "))]
        UnknownView {
            /// The name given.
            name: String,
            /// The stream views there are.
            available: Vec<&'static str>,
        },
        /// A `--view` names a view that reads no stream.
        #[error("feature view `{0}` does not read a Kinesis source")]
        NotAStream(&'static str),
        /// `--only offline` with no view that logs.
        #[error(
            "--only offline logs the records of stream views with `offline = true`, and none of the views to ingest ({}) has it",
            .0.join(", ")
        )]
        NothingOffline(Vec<&'static str>),
        /// A view fails on an empty frame.
        #[error(
            "feature view `{view}` ({location}) fails validation: {}",
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        )]
        Invalid {
            /// The view.
            view: &'static str,
            /// Where it is defined.
            location: Location,
            /// What is wrong.
            problems: Vec<ViewProblem>,
        },
        /// The stream cannot be read at start-up; says what to set.
        #[error(transparent)]
        Start(#[from] kinesis::StartError),
        /// A call the stream refused for good.
        #[error("stream `{stream}`{}: {error} (not retried)", partition.as_deref().map(|p| format!(", shard {p}")).unwrap_or_default())]
        Call {
            /// The stream.
            stream: &'static str,
            /// The partition, if the call was one's.
            partition: Option<String>,
            /// The call's error.
            error: CallError,
        },
        /// A batch could not be written, for good.
        #[error("stream `{stream}`, shard {shard}: {error}")]
        Pipeline {
            /// The stream.
            stream: &'static str,
            /// The shard.
            shard: String,
            /// Why.
            error: Box<pipeline::Error>,
        },
        /// A partition's task panicked or was cancelled.
        #[error("a shard task failed: {0}")]
        Task(#[source] tokio::task::JoinError),
        /// The lease table failed for good (refused credentials, a table
        /// that is not a lease table).
        #[cfg(feature = "leases")]
        #[error("stream `{stream}`: {error}")]
        Leases {
            /// The stream.
            stream: &'static str,
            /// What failed.
            error: super::lease::table::TableError,
        },
        /// Shard leases need an online store several workers share.
        #[cfg(feature = "leases")]
        #[error("--lease-table: {0}")]
        StoreNotShared(#[source] crate::online_store::Error),
        /// Shard leases with an option they cannot honour.
        #[cfg(feature = "leases")]
        #[error("--lease-table cannot be combined with {0}")]
        LeasesWith(&'static str),
    }

    impl Error {
        /// Whether running again could succeed without changing anything (the
        /// stores were unreachable or full); the others need a fix first.
        pub fn is_retryable(&self) -> bool {
            matches!(self, Error::Pipeline { .. } | Error::Task(_))
        }
    }

    /// Ingests every selected view's stream until `stop` turns true (or, with
    /// `until_caught_up`, until every partition has no lag). A fatal error on
    /// one stream stops the others too, after they flush.
    pub async fn ingest(
        store: Arc<FeatureStore>,
        opts: IngestOptions,
        metrics: Arc<Metrics>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<IngestSummary, Error> {
        let plan = plan::plan(&store, &opts.views)?;
        #[cfg(feature = "leases")]
        if opts.leases.is_some() {
            if opts.until_caught_up {
                return Err(Error::LeasesWith(
                    "--until-caught-up (each worker reads only the shards it leases)",
                ));
            }
            // Fencing needs the store's help: one that cannot fence cannot
            // be shared.
            if store.online_store().is_embedded() {
                return Err(Error::StoreNotShared(
                    crate::online_store::Error::NotShared("embedded SQLite"),
                ));
            }
        }
        if opts.writes == Writes::OfflineOnly
            && !plan.iter().flat_map(|(_, v)| v).any(|v| v.offline)
        {
            let names = plan.iter().flat_map(|(_, v)| v).map(|v| v.name).collect();
            return Err(Error::NothingOffline(names));
        }
        // Stops every stream: on the caller's signal, or on a fatal error.
        let (halt_tx, halt_rx) = watch::channel(false);
        let halt_tx = Arc::new(halt_tx);
        let forward = {
            let halt_tx = halt_tx.clone();
            tokio::spawn(async move {
                if stop.wait_for(|s| *s).await.is_ok() {
                    let _ = halt_tx.send(true);
                }
            })
        };
        let mut runs = tokio::task::JoinSet::new();
        for (source, views) in plan {
            let pipeline = Arc::new(Pipeline::with_max_record_bytes(
                store.clone(),
                source,
                views,
                opts.writes,
                metrics.clone(),
                opts.max_record_bytes,
            ));
            match source.kind {
                SourceKind::Kinesis {
                    stream_name,
                    region,
                    ..
                } => {
                    let consumer = Arc::new(
                        kinesis::KinesisConsumer::connect(stream_name, region, &opts).await?,
                    );
                    #[cfg(feature = "leases")]
                    if let Some(lease) = &opts.leases {
                        let table = super::lease::table::LeaseTable::connect(
                            &super::lease::table::TableConfig {
                                name: lease.table.clone(),
                                region: region.to_owned(),
                                call_timeout: lease.duration / 3,
                            },
                        )
                        .await;
                        let run = super::lease::LeaseRun {
                            consumer,
                            pipeline,
                            opts: opts.clone(),
                            lease: lease.clone(),
                            table,
                            stop: halt_rx.clone(),
                            halt: halt_tx.clone(),
                        };
                        runs.spawn(run.run());
                        continue;
                    }
                    let run = StreamRun {
                        consumer,
                        pipeline,
                        opts: opts.clone(),
                        stop: halt_rx.clone(),
                        halt: halt_tx.clone(),
                    };
                    runs.spawn(run.run());
                }
                // The planner takes only sources a consumer reads.
                SourceKind::File { .. } | SourceKind::Push { .. } => {}
            }
        }
        let mut summary = IngestSummary::default();
        let mut first_error = None;
        while let Some(r) = runs.join_next().await {
            match r.unwrap_or_else(|e| Err(Error::Task(e))) {
                Ok(partitions) => summary.shards += partitions,
                Err(e) => {
                    let _ = halt_tx.send(true);
                    first_error.get_or_insert(e);
                }
            }
        }
        forward.abort();
        let (records, dead) = metrics.totals();
        summary.records = records;
        summary.dead_lettered = dead;
        summary.rows_written = metrics.rows_written();
        match first_error {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }
}
