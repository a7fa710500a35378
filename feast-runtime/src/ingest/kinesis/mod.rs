//! The Kinesis consumer: one polling task per shard, parents read to their
//! end before their children start, checkpoints committed with the rows.
//!
//! [`ingest`] plans the run (which sources, which views, each validated) and
//! starts a `stream::StreamRun` per stream; it lists the shards and starts a
//! `shard::ShardReader` for each shard whose parents are finished; the
//! reader fetches and hands micro-batches to the [`Pipeline`].
//!
//! Endpoint, region and credentials come from aws-config's standard chain, so
//! `AWS_ENDPOINT_URL_KINESIS` reaches a local emulator and nothing extra is
//! needed on AWS. The SDK's own retries are off: every call goes through
//! this module's pacing (at most five GetRecords calls a second per shard)
//! and back-off, so a retry can never break the rate limit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::sleep;

mod connect;
mod produce;
mod shard;
mod stream;

pub use connect::{Endpoint, check_stream, connect};
pub use produce::{ensure_stream, put_records};

use stream::StreamRun;

use super::metrics::Metrics;
use super::pipeline::{self, Pipeline};
use crate::config::KinesisConfig;
use crate::definition::{DataSourceDef, FeatureViewDef, SourceKind};
use crate::feature_store::FeatureStore;
use crate::ingest::pipeline::Writes;

/// Where a shard without a checkpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    #[default]
    TrimHorizon,
    Latest,
    AtTimestamp(DateTime<Utc>),
}

/// How `ingest` runs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Views to ingest; empty = every stream view on a Kinesis source.
    pub views: Vec<String>,
    /// Which stores this run writes.
    pub writes: Writes,
    pub from: StartFrom,
    /// Stop once every shard reports no lag.
    pub until_caught_up: bool,
    /// Records per micro-batch; GetRecords asks for what the batch still
    /// lacks, at most 10,000 a call.
    pub batch_size: usize,
    /// A partial batch is written after this long.
    pub max_batch_latency: Duration,
    /// Overrides the endpoint from the environment.
    pub endpoint_url: Option<String>,
    /// `feature_store.yaml`'s `kinesis:` key (endpoint and timeouts).
    pub kinesis: Option<KinesisConfig>,
    /// How often the shard list is read again to find new shards.
    pub shard_discovery_interval: Duration,
    /// Larger records are dead-lettered.
    pub max_record_bytes: usize,
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
        }
    }
}

/// Totals of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub records: u64,
    pub dead_lettered: u64,
    pub rows_written: u64,
    pub shards: usize,
}

/// Why ingestion stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no stream feature view to ingest: no view reads a Kinesis source")]
    NoViews,
    #[error("unknown feature view `{name}`; stream views on Kinesis sources: {available}")]
    UnknownView { name: String, available: String },
    #[error("feature view `{0}` does not read a Kinesis source")]
    NotKinesis(String),
    #[error(
        "--only offline logs the records of stream views with `offline = true`, and none of the views to ingest ({0}) has it"
    )]
    NothingOffline(String),
    #[error(
        "feature view `{view}` ({location}) fails validation: {}",
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Invalid {
        view: &'static str,
        location: crate::definition::Location,
        problems: Vec<crate::transform::ViewProblem>,
    },
    /// No credentials in aws-config's chain; says what to set.
    #[error("{0}")]
    Credentials(String),
    /// A stream that cannot be read at start-up; says what to fix.
    #[error("{0}")]
    Start(String),
    #[error("stream `{stream}`: {code}: {message} (not retried)")]
    Fatal {
        stream: String,
        code: String,
        message: String,
    },
    #[error("stream `{stream}`, shard {shard}: {error}")]
    Pipeline {
        stream: String,
        shard: String,
        error: Box<pipeline::Error>,
    },
    #[error("a shard task failed: {0}")]
    Task(String),
}

impl Error {
    /// Whether running again could succeed without changing anything (the
    /// stores were unreachable or full); the others need a fix first.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Pipeline { .. } | Error::Task(_))
    }
}

/// How an AWS error is handled.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// Get a fresh iterator from the checkpoint.
    Expired,
    /// Back off and retry: throttling, 5xx, a connection refused or timed out.
    Retry,
    /// Report and stop: retrying cannot help.
    Fatal,
}

fn classify(code: Option<&str>) -> Class {
    match code {
        Some("ExpiredIteratorException") => Class::Expired,
        Some(
            "ResourceNotFoundException"
            | "AccessDeniedException"
            | "KMSAccessDeniedException"
            | "KMSDisabledException"
            | "KMSNotFoundException"
            | "KMSInvalidStateException"
            | "KMSOptInRequired"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignatureException"
            | "InvalidArgumentException"
            | "ValidationException",
        ) => Class::Fatal,
        _ => Class::Retry,
    }
}

/// The endpoint a client should be given in code: `--endpoint-url` first;
/// then nothing when aws-config's chain has one of its own (it reads
/// `AWS_ENDPOINT_URL_KINESIS` and `AWS_ENDPOINT_URL`); then
/// `feature_store.yaml`'s `kinesis.endpoint_url`.
pub fn endpoint_url(flag: Option<&str>, config: Option<&KinesisConfig>) -> Option<String> {
    endpoint_url_with(flag, config, |name| std::env::var_os(name))
}

fn endpoint_url_with(
    flag: Option<&str>,
    config: Option<&KinesisConfig>,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<String> {
    if let Some(url) = flag {
        return Some(url.to_owned());
    }
    let from_env = ["AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| env(v).is_some_and(|s| !s.is_empty()));
    if from_env {
        return None;
    }
    config.and_then(|c| c.endpoint_url.clone())
}

/// Exponential back-off with jitter ("equal jitter": half fixed, half
/// random), from 100 ms up to 10 s.
#[derive(Debug)]
struct Backoff {
    attempt: u32,
    state: u64,
}

impl Backoff {
    fn new(seed: &str) -> Backoff {
        let nanos = u64::from(Utc::now().timestamp_subsec_nanos());
        let state = seed
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64 ^ nanos, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        Backoff {
            attempt: 0,
            state: state | 1,
        }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next(&mut self) -> Duration {
        // xorshift64
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let cap = (100u64 << self.attempt.min(7)).min(10_000);
        self.attempt += 1;
        Duration::from_millis(cap / 2 + self.state % (cap / 2 + 1))
    }
}

/// Sleeps for `d`, returning early (with `true`) when the run is stopped.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = sleep(d) => *stop.borrow(),
        changed = stop.changed() => {
            if changed.is_err() {
                // Nobody can stop the run any more: an ordinary sleep.
                sleep(d).await;
            }
            *stop.borrow()
        }
    }
}

/// Runs `call` unless the run is stopped first (`None`).
async fn unless_stopped<T>(
    call: impl std::future::Future<Output = T>,
    stop: &mut watch::Receiver<bool>,
) -> Option<T> {
    if *stop.borrow() {
        return None;
    }
    let mut call = std::pin::pin!(call);
    let stopped = tokio::select! {
        out = &mut call => return Some(out),
        r = stop.wait_for(|s| *s) => r.is_ok(),
    };
    if stopped {
        None
    } else {
        // Nobody can stop the run any more.
        Some(call.await)
    }
}

fn code_and_message<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E>,
) -> (Option<String>, String) {
    let code = e.code().map(str::to_owned);
    let message = match e.message() {
        Some(m) => m.to_owned(),
        None => {
            // Transport errors carry their cause in the source chain.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    };
    (code, message)
}

type SourcePlan = Vec<(&'static DataSourceDef, Vec<&'static FeatureViewDef>)>;

/// The Kinesis sources of the selected views, each with its views; every
/// selected view must pass `validate` (its function run on an empty frame).
fn plan(store: &FeatureStore, views: &[String]) -> Result<SourcePlan, Error> {
    let on_kinesis = |v: &FeatureViewDef| matches!(v.source.kind, SourceKind::Kinesis { .. });
    let selected: Vec<&'static FeatureViewDef> = if views.is_empty() {
        store
            .registry()
            .feature_views()
            .filter(|v| on_kinesis(v))
            .collect()
    } else {
        views
            .iter()
            .map(|n| {
                let v = store
                    .registry()
                    .feature_view(n)
                    .ok_or_else(|| Error::UnknownView {
                        name: n.clone(),
                        available: store
                            .registry()
                            .feature_views()
                            .filter(|v| on_kinesis(v))
                            .map(|v| v.name)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                if on_kinesis(v) {
                    Ok(v)
                } else {
                    Err(Error::NotKinesis(n.clone()))
                }
            })
            .collect::<Result<_, _>>()?
    };
    if selected.is_empty() {
        return Err(Error::NoViews);
    }
    for &view in &selected {
        let report = crate::transform::check_view(view);
        if !report.errors.is_empty() {
            return Err(Error::Invalid {
                view: view.name,
                location: view.location,
                problems: report.errors,
            });
        }
    }
    let mut by_source: BTreeMap<
        &'static str,
        (&'static DataSourceDef, Vec<&'static FeatureViewDef>),
    > = BTreeMap::new();
    for v in selected {
        by_source
            .entry(v.source.name)
            .or_insert((v.source, Vec::new()))
            .1
            .push(v);
    }
    Ok(by_source.into_values().collect())
}

/// Ingests every selected view's stream until `stop` turns true (or, with
/// `until_caught_up`, until every shard has no lag). A fatal error on one
/// stream stops the others too, after they flush.
pub async fn ingest(
    store: Arc<FeatureStore>,
    opts: IngestOptions,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> Result<IngestSummary, Error> {
    let plan = plan(&store, &opts.views)?;
    if opts.writes == Writes::OfflineOnly && !plan.iter().flat_map(|(_, v)| v).any(|v| v.offline) {
        let names: Vec<&str> = plan.iter().flat_map(|(_, v)| v).map(|v| v.name).collect();
        return Err(Error::NothingOffline(names.join(", ")));
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
        let SourceKind::Kinesis {
            stream_name,
            region,
            ..
        } = source.kind
        else {
            continue;
        };
        let endpoint = Endpoint::new(region, opts.endpoint_url.clone(), opts.kinesis.as_ref());
        let client = connect(&endpoint).await?;
        check_stream(&client, stream_name, &endpoint).await?;
        let pipeline = Arc::new(Pipeline::with_max_record_bytes(
            store.clone(),
            source,
            views,
            opts.writes,
            metrics.clone(),
            opts.max_record_bytes,
        ));
        let stream = StreamRun {
            client,
            stream: stream_name,
            pipeline,
            opts: opts.clone(),
            stop: halt_rx.clone(),
            halt: halt_tx.clone(),
        };
        runs.spawn(stream.run());
    }
    let mut summary = IngestSummary::default();
    let mut first_error = None;
    while let Some(r) = runs.join_next().await {
        let outcome = r.unwrap_or_else(|e| Err(Error::Task(e.to_string())));
        match outcome {
            Ok(shards) => summary.shards += shards,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_the_flag_then_the_environment_then_the_config() {
        let config = KinesisConfig {
            endpoint_url: Some("http://config".into()),
            ..KinesisConfig::default()
        };
        let none = |_: &str| None;
        let kinesis_var =
            |name: &str| (name == "AWS_ENDPOINT_URL_KINESIS").then(|| "http://env".into());
        let empty_var = |_: &str| Some(std::ffi::OsString::new());
        assert_eq!(
            endpoint_url_with(Some("http://flag"), Some(&config), kinesis_var).as_deref(),
            Some("http://flag")
        );
        // aws-config reads the variable itself: nothing is set in code.
        assert_eq!(endpoint_url_with(None, Some(&config), kinesis_var), None);
        assert_eq!(
            endpoint_url_with(None, Some(&config), empty_var).as_deref(),
            Some("http://config")
        );
        assert_eq!(
            endpoint_url_with(None, Some(&config), none).as_deref(),
            Some("http://config")
        );
        assert_eq!(endpoint_url_with(None, None, none), None);
    }

    #[test]
    fn errors_are_classified_by_code() {
        assert_eq!(classify(Some("ExpiredIteratorException")), Class::Expired);
        for code in [
            "ProvisionedThroughputExceededException",
            "InternalFailure",
            "ServiceUnavailable",
            "KMSThrottlingException",
            "LimitExceededException",
        ] {
            assert_eq!(classify(Some(code)), Class::Retry, "{code}");
        }
        assert_eq!(classify(None), Class::Retry, "a transport error");
        for code in [
            "ResourceNotFoundException",
            "AccessDeniedException",
            "KMSDisabledException",
            "InvalidArgumentException",
        ] {
            assert_eq!(classify(Some(code)), Class::Fatal, "{code}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_ten_seconds() {
        let mut b = Backoff::new("shardId-000000000000");
        let waits: Vec<Duration> = (0..12).map(|_| b.next()).collect();
        for (attempt, w) in waits.iter().enumerate() {
            let cap = Duration::from_millis((100u64 << attempt.min(7)).min(10_000));
            assert!(
                *w >= cap / 2 && *w <= cap,
                "attempt {attempt}: {w:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
        }
        b.reset();
        assert!(b.next() <= Duration::from_millis(100));
    }
}
