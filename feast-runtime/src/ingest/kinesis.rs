//! The Kinesis consumer: one polling task per shard, parents read to their
//! end before their children start, checkpoints committed with the rows.
//!
//! Endpoint, region and credentials come from aws-config's standard chain, so
//! `AWS_ENDPOINT_URL_KINESIS` reaches a local emulator and nothing extra is
//! needed on AWS. The SDK's own retries are off: every call goes through
//! this module's pacing (at most five GetRecords calls a second per shard)
//! and back-off, so a retry can never break the rate limit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::metrics::Metrics;
use super::pipeline::{self, Pipeline, RawRecord};
use crate::config::KinesisConfig;
use crate::definition::{DataSourceDef, FeatureViewDef, SourceKind};
use crate::feature_store::{FeatureStore, PushMode};
use crate::online_store::Checkpoint;

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
    pub to: PushMode,
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
    /// How often the shard list is read again to find new shards.
    pub shard_discovery_interval: Duration,
    /// Larger records are dead-lettered.
    pub max_record_bytes: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            views: Vec::new(),
            to: PushMode::Online,
            from: StartFrom::TrimHorizon,
            until_caught_up: false,
            batch_size: 20_000,
            max_batch_latency: Duration::from_millis(1000),
            endpoint_url: None,
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
    #[error("feature view `{view}` ({location}) fails validation: {problems}")]
    Invalid {
        view: &'static str,
        location: String,
        problems: String,
    },
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
    if let Some(url) = flag {
        return Some(url.to_owned());
    }
    let from_env = ["AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if from_env {
        return None;
    }
    config.and_then(|c| c.endpoint_url.clone())
}

/// A Kinesis client for `region`, from the standard configuration chain,
/// with the SDK's retries off (this module paces and retries every call).
pub async fn client(region: &str, endpoint_url: Option<&str>) -> Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await;
    let mut conf = aws_sdk_kinesis::config::Builder::from(&shared)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(15))
                .build(),
        );
    if let Some(url) = endpoint_url {
        conf = conf.endpoint_url(url);
    }
    Client::from_conf(conf.build())
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
        let report = crate::validate::check_view(view);
        if !report.errors.is_empty() {
            return Err(Error::Invalid {
                view: view.name,
                location: view.location.to_string(),
                problems: report.errors.join("; "),
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
        let client = client(region, opts.endpoint_url.as_deref()).await;
        let pipeline = Arc::new(Pipeline::with_max_record_bytes(
            store.clone(),
            source,
            views,
            opts.to,
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

/// A shard as ListShards reports it.
#[derive(Debug, Clone)]
struct ShardInfo {
    parents: Vec<String>,
}

async fn list_shards(
    client: &Client,
    stream: &str,
) -> Result<
    BTreeMap<String, ShardInfo>,
    SdkError<aws_sdk_kinesis::operation::list_shards::ListShardsError>,
> {
    let mut out = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let req = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(stream),
        };
        let resp = req.send().await?;
        for s in resp.shards() {
            let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            out.insert(s.shard_id().to_owned(), ShardInfo { parents });
        }
        match resp.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return Ok(out),
        }
    }
}

/// How a shard task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShardEnd {
    /// Closed, and read to its end: its children may start.
    Finished,
    /// No lag (with `until_caught_up`).
    CaughtUp,
    Stopped,
}

/// One stream: discovers shards, starts each once its parents are finished,
/// and ends when stopped or (with `until_caught_up`) when every shard is
/// caught up.
struct StreamRun {
    client: Client,
    stream: &'static str,
    pipeline: Arc<Pipeline>,
    opts: IngestOptions,
    stop: watch::Receiver<bool>,
    halt: Arc<watch::Sender<bool>>,
}

impl StreamRun {
    fn fatal(&self, code: Option<String>, message: String) -> Error {
        Error::Fatal {
            stream: self.stream.to_owned(),
            code: code.unwrap_or_else(|| "error".to_owned()),
            message,
        }
    }

    fn checkpoint(&self, shard: &str) -> Option<Checkpoint> {
        checkpoint_of(&self.pipeline, self.stream, shard)
    }

    async fn run(mut self) -> Result<usize, Error> {
        let result = self.coordinate().await;
        if result.is_err() {
            // Let this stream's other shards flush and stop.
            let _ = self.halt.send(true);
        }
        result
    }

    async fn coordinate(&mut self) -> Result<usize, Error> {
        let stream = self.stream;
        let mut tasks: BTreeMap<String, tokio::task::JoinHandle<Result<ShardEnd, Error>>> =
            BTreeMap::new();
        let mut ended: BTreeMap<String, ShardEnd> = BTreeMap::new();
        let mut backoff = Backoff::new(stream);
        let mut listed_at: Option<Instant> = None;
        let mut shards: BTreeMap<String, ShardInfo> = BTreeMap::new();
        let mut failure: Option<Error> = None;
        loop {
            // Collect the shard tasks that ended.
            let done: Vec<String> = tasks
                .iter()
                .filter(|(_, h)| h.is_finished())
                .map(|(k, _)| k.clone())
                .collect();
            let mut relist = false;
            for id in done {
                let Some(handle) = tasks.remove(&id) else {
                    continue;
                };
                match handle.await {
                    Ok(Ok(end)) => {
                        relist |= end == ShardEnd::Finished;
                        ended.insert(id, end);
                    }
                    Ok(Err(e)) => {
                        let _ = self.halt.send(true);
                        failure.get_or_insert(e);
                    }
                    Err(e) => {
                        let _ = self.halt.send(true);
                        failure.get_or_insert(Error::Task(e.to_string()));
                    }
                }
            }
            let stopping = *self.stop.borrow();
            if stopping {
                if tasks.is_empty() {
                    return match failure {
                        Some(e) => Err(e),
                        None => Ok(ended.len()),
                    };
                }
                sleep(Duration::from_millis(20)).await;
                continue;
            }
            let due = listed_at.is_none_or(|t| t.elapsed() >= self.opts.shard_discovery_interval);
            if relist || due {
                match unless_stopped(list_shards(&self.client, stream), &mut self.stop).await {
                    None => continue,
                    Some(Ok(s)) => {
                        if s.len() != shards.len() {
                            tracing::info!(stream, shards = s.len(), "listed shards");
                        }
                        shards = s;
                        listed_at = Some(Instant::now());
                        backoff.reset();
                    }
                    Some(Err(e)) => {
                        let (code, message) = code_and_message(&e);
                        if classify(code.as_deref()) == Class::Fatal {
                            return Err(self.fatal(code, message));
                        }
                        let wait = backoff.next();
                        tracing::warn!(stream, error = %message, retry_in = ?wait, "ListShards failed");
                        pause(wait, &mut self.stop).await;
                        continue;
                    }
                }
                self.start_ready_shards(&shards, &mut tasks, &mut ended);
            }
            if self.opts.until_caught_up && tasks.is_empty() && !shards.is_empty() {
                // Every shard is caught up or finished, and none waits on a parent.
                if shards.keys().all(|id| ended.contains_key(id)) {
                    return Ok(ended.len());
                }
            }
            pause(Duration::from_millis(100), &mut self.stop).await;
        }
    }

    /// Starts a reader for every listed shard whose parents are finished.
    fn start_ready_shards(
        &self,
        shards: &BTreeMap<String, ShardInfo>,
        tasks: &mut BTreeMap<String, tokio::task::JoinHandle<Result<ShardEnd, Error>>>,
        ended: &mut BTreeMap<String, ShardEnd>,
    ) {
        for (id, info) in shards {
            if tasks.contains_key(id) || ended.contains_key(id) {
                continue;
            }
            if self.checkpoint(id).is_some_and(|c| c.finished) {
                ended.insert(id.clone(), ShardEnd::Finished);
                continue;
            }
            let parents_done = info.parents.iter().all(|p| {
                // A parent no longer listed has expired: nothing is left to read.
                !shards.contains_key(p)
                    || ended.get(p) == Some(&ShardEnd::Finished)
                    || self.checkpoint(p).is_some_and(|c| c.finished)
            });
            if !parents_done {
                continue;
            }
            tracing::info!(stream = self.stream, shard = %id, "reading shard");
            let reader = ShardReader {
                client: self.client.clone(),
                stream: self.stream,
                shard: id.clone(),
                pipeline: self.pipeline.clone(),
                opts: self.opts.clone(),
                stop: self.stop.clone(),
                backoff: Backoff::new(id),
                pending: Vec::new(),
                pending_since: None,
                behind_ms: 0,
            };
            tasks.insert(id.clone(), tokio::spawn(reader.run()));
        }
    }
}

fn checkpoint_of(pipeline: &Pipeline, stream: &str, shard: &str) -> Option<Checkpoint> {
    match pipeline
        .store()
        .online_store()
        .checkpoint(pipeline.consumer(), stream, shard)
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(stream, shard, error = %e, "cannot read the checkpoint");
            None
        }
    }
}

/// Reads one shard: GetRecords from the checkpoint, micro-batches through
/// the pipeline, until the shard ends, the run stops, or (with
/// `until_caught_up`) the shard has no lag.
struct ShardReader {
    client: Client,
    stream: &'static str,
    shard: String,
    pipeline: Arc<Pipeline>,
    opts: IngestOptions,
    stop: watch::Receiver<bool>,
    backoff: Backoff,
    /// Records fetched but not yet written: at most one batch and one
    /// GetRecords response, so memory stays bounded however slow the sink.
    pending: Vec<RawRecord>,
    pending_since: Option<Instant>,
    behind_ms: i64,
}

/// What reading the next records gave.
enum Fetch {
    Records {
        next: Option<String>,
        got: usize,
    },
    /// Try again with this iterator (after a back-off), or with a fresh one.
    Retry(Option<String>),
    Stopped,
}

impl ShardReader {
    fn fatal(&self, code: Option<String>, message: String) -> Error {
        Error::Fatal {
            stream: self.stream.to_owned(),
            code: code.unwrap_or_else(|| "error".to_owned()),
            message: format!("shard {}: {message}", self.shard),
        }
    }

    async fn run(mut self) -> Result<ShardEnd, Error> {
        let checkpoint = checkpoint_of(&self.pipeline, self.stream, &self.shard);
        {
            let (pipeline, stream, shard) =
                (self.pipeline.clone(), self.stream, self.shard.clone());
            let seq = checkpoint.as_ref().and_then(|c| c.sequence_number.clone());
            tokio::task::spawn_blocking(move || {
                pipeline.discard_uncommitted(stream, &shard, seq.as_deref())
            })
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map_err(|error| self.pipeline_error(error))?;
        }
        let limit = self.opts.batch_size.max(1);
        let mut iterator: Option<String> = None;
        // Pacing: at most five GetRecords calls a second.
        let mut last_call: Option<Instant> = None;
        loop {
            if *self.stop.borrow() {
                self.flush(false).await?;
                return Ok(ShardEnd::Stopped);
            }
            let it = match iterator.take() {
                Some(it) => it,
                None => match self.fresh_iterator().await? {
                    Some(it) => it,
                    None => continue, // stopped, or retried after a back-off
                },
            };
            if let Some(t) = last_call {
                let since = t.elapsed();
                if since < Duration::from_millis(200)
                    && pause(Duration::from_millis(200) - since, &mut self.stop).await
                {
                    continue;
                }
            }
            last_call = Some(Instant::now());
            // GetRecords returns at most 10,000 records a call; a larger
            // batch gathers over several calls.
            let want = limit.saturating_sub(self.pending.len()).clamp(1, 10_000);
            let (next, got) = match self.fetch(it, want).await? {
                Fetch::Records { next, got } => (next, got),
                Fetch::Retry(it) => {
                    iterator = it;
                    continue;
                }
                Fetch::Stopped => continue,
            };
            let Some(next) = next else {
                // The shard is closed and read to its end.
                self.flush(true).await?;
                tracing::info!(stream = self.stream, shard = %self.shard, "shard finished");
                return Ok(ShardEnd::Finished);
            };
            iterator = Some(next);
            let idle = got == 0 && self.behind_ms == 0;
            let full = self.pending.len() >= limit;
            let late = self
                .pending_since
                .is_some_and(|t| t.elapsed() >= self.opts.max_batch_latency);
            if full || late || (idle && !self.pending.is_empty()) {
                self.flush(false).await?;
            }
            if idle && self.opts.until_caught_up {
                return Ok(ShardEnd::CaughtUp);
            }
            if idle {
                // Nothing new: poll at a gentler pace.
                pause(Duration::from_millis(500), &mut self.stop).await;
            }
        }
    }

    /// An iterator just after the checkpoint, or at `--from` without one.
    /// `None` when stopped or after a retryable failure (already waited out).
    async fn fresh_iterator(&mut self) -> Result<Option<String>, Error> {
        let checkpoint = checkpoint_of(&self.pipeline, self.stream, &self.shard);
        let req = self
            .client
            .get_shard_iterator()
            .stream_name(self.stream)
            .shard_id(&self.shard);
        let req = match (checkpoint.and_then(|c| c.sequence_number), self.opts.from) {
            (Some(seq), _) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            (None, StartFrom::TrimHorizon) => {
                req.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            (None, StartFrom::Latest) => req.shard_iterator_type(ShardIteratorType::Latest),
            (None, StartFrom::AtTimestamp(t)) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(aws_sdk_kinesis::primitives::DateTime::from_millis(
                    t.timestamp_millis(),
                )),
        };
        match unless_stopped(req.send(), &mut self.stop).await {
            None => Ok(None),
            Some(Ok(r)) => match r.shard_iterator() {
                Some(it) => {
                    self.backoff.reset();
                    Ok(Some(it.to_owned()))
                }
                None => Err(self.fatal(None, "GetShardIterator returned no iterator".into())),
            },
            Some(Err(e)) => {
                let (code, message) = code_and_message(&e);
                if classify(code.as_deref()) == Class::Fatal {
                    return Err(self.fatal(code, message));
                }
                let wait = self.backoff.next();
                tracing::warn!(stream = self.stream, shard = %self.shard, error = %message, retry_in = ?wait, "GetShardIterator failed");
                pause(wait, &mut self.stop).await;
                Ok(None)
            }
        }
    }

    /// One GetRecords call; the records join `pending`.
    async fn fetch(&mut self, it: String, want: usize) -> Result<Fetch, Error> {
        let call = self
            .client
            .get_records()
            .shard_iterator(&it)
            .limit(i32::try_from(want).unwrap_or(10_000))
            .send();
        let resp = match unless_stopped(call, &mut self.stop).await {
            None => return Ok(Fetch::Stopped),
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                let (code, message) = code_and_message(&e);
                self.pipeline.metrics().record_error(
                    self.stream,
                    &self.shard,
                    code.as_deref().unwrap_or("transport"),
                );
                return match classify(code.as_deref()) {
                    Class::Expired => {
                        // What was fetched but not written is read again
                        // from the checkpoint.
                        tracing::info!(stream = self.stream, shard = %self.shard, "iterator expired; resuming from the checkpoint");
                        self.pending.clear();
                        self.pending_since = None;
                        Ok(Fetch::Retry(None))
                    }
                    Class::Fatal => Err(self.fatal(code, message)),
                    Class::Retry => {
                        let wait = self.backoff.next();
                        tracing::warn!(stream = self.stream, shard = %self.shard, error = %message, retry_in = ?wait, "GetRecords failed");
                        pause(wait, &mut self.stop).await;
                        Ok(Fetch::Retry(Some(it)))
                    }
                };
            }
        };
        self.backoff.reset();
        self.behind_ms = resp.millis_behind_latest().unwrap_or(0);
        let got = resp.records().len();
        if got > 0 && self.pending_since.is_none() {
            self.pending_since = Some(Instant::now());
        }
        self.pending
            .extend(resp.records().iter().map(|r| RawRecord {
                sequence_number: r.sequence_number().to_owned(),
                data: r.data().as_ref().to_vec(),
            }));
        self.pipeline
            .metrics()
            .record_lag(self.stream, &self.shard, self.behind_ms);
        Ok(Fetch::Records {
            next: resp.next_shard_iterator().map(str::to_owned),
            got,
        })
    }

    fn pipeline_error(&self, error: pipeline::Error) -> Error {
        Error::Pipeline {
            stream: self.stream.to_owned(),
            shard: self.shard.clone(),
            error: Box::new(error),
        }
    }

    /// Writes the pending records as one batch, with the checkpoint, on a
    /// blocking thread. `finished` records the shard's end (even with no
    /// records left). A store failure that may pass (a locked database, a
    /// full disk) is retried with back-off: the shard pauses, fetching
    /// nothing and checkpointing nothing, until the batch is written. The
    /// shutdown deadline bounds the wait after a stop.
    async fn flush(&mut self, finished: bool) -> Result<(), Error> {
        if self.pending.is_empty() && !finished {
            return Ok(());
        }
        let records = Arc::new(std::mem::take(&mut self.pending));
        self.pending_since = None;
        let mut backoff = Backoff::new(&self.shard);
        loop {
            let (pipeline, stream, shard, behind, batch) = (
                self.pipeline.clone(),
                self.stream,
                self.shard.clone(),
                self.behind_ms,
                records.clone(),
            );
            let result = tokio::task::spawn_blocking(move || {
                pipeline.process(stream, &shard, &batch, finished, behind)
            })
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
            match result {
                Ok(_) => return Ok(()),
                Err(e) if e.is_transient() => {
                    let wait = backoff.next();
                    tracing::warn!(stream = self.stream, shard = %self.shard, error = %e, retry_in = ?wait,
                        "cannot write a batch; retrying (nothing is checkpointed until it is written)");
                    self.pipeline
                        .metrics()
                        .record_error(self.stream, &self.shard, "store");
                    sleep(wait).await;
                }
                Err(e) => return Err(self.pipeline_error(e)),
            }
        }
    }
}

/// Creates a stream with `shards` shards (if missing) and waits until it is active.
pub async fn ensure_stream(client: &Client, stream: &str, shards: i32) -> Result<(), String> {
    let exists = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .is_ok();
    if !exists {
        client
            .create_stream()
            .stream_name(stream)
            .shard_count(shards)
            .send()
            .await
            .map_err(|e| format!("CreateStream {stream}: {}", code_and_message(&e).1))?;
    }
    for _ in 0..300 {
        let summary = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await;
        if let Ok(r) = summary
            && r.stream_description_summary()
                .is_some_and(|d| d.stream_status().as_str() == "ACTIVE")
        {
            return Ok(());
        }
        sleep(Duration::from_millis(100)).await;
    }
    Err(format!("stream {stream} did not become active"))
}

/// Puts records (partition key, data), 500 per PutRecords call, retrying the
/// entries that fail. Returns how many were put.
pub async fn put_records(
    client: &Client,
    stream: &str,
    records: Vec<(String, Vec<u8>)>,
) -> Result<usize, String> {
    let mut put = 0;
    let mut backoff = Backoff::new(stream);
    for chunk in records.chunks(500) {
        let mut todo: Vec<&(String, Vec<u8>)> = chunk.iter().collect();
        let mut attempts = 0;
        while !todo.is_empty() {
            attempts += 1;
            let entries = todo
                .iter()
                .map(|(k, d)| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(k)
                        .data(Blob::new(d.clone()))
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            match client
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries))
                .send()
                .await
            {
                Ok(resp) => {
                    // Entries fail one by one (throttled, internal failure):
                    // put those again, in their order.
                    let failed: Vec<&(String, Vec<u8>)> = resp
                        .records()
                        .iter()
                        .zip(&todo)
                        .filter(|(r, _)| r.error_code().is_some())
                        .map(|(_, t)| *t)
                        .collect();
                    put += todo.len() - failed.len();
                    if failed.is_empty() {
                        backoff.reset();
                    } else {
                        sleep(backoff.next()).await;
                    }
                    todo = failed;
                }
                Err(e) => {
                    let (code, message) = code_and_message(&e);
                    if classify(code.as_deref()) == Class::Fatal || attempts >= 20 {
                        return Err(format!("PutRecords {stream}: {message}"));
                    }
                    sleep(backoff.next()).await;
                }
            }
        }
    }
    Ok(put)
}
