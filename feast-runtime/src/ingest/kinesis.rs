//! The Kinesis consumer: one polling task per shard, parents read to their
//! end before their children start, checkpoints committed with the rows.
//!
//! Endpoint, region and credentials come from aws-config's standard chain, so
//! `AWS_ENDPOINT_URL_KINESIS` reaches a local emulator and nothing extra is
//! needed on AWS.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::metrics::Metrics;
use super::pipeline::{self, BatchOutcome, Pipeline, RawRecord};
use crate::definition::{DataSourceDef, FeatureViewDef, SourceKind};
use crate::feature_store::{FeatureStore, PushMode};

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
    /// Records per micro-batch (and per GetRecords call, at most 10,000).
    pub batch_size: usize,
    /// A partial batch is written after this long.
    pub max_batch_latency: Duration,
    /// Overrides the endpoint from the environment.
    pub endpoint_url: Option<String>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            views: Vec::new(),
            to: PushMode::Online,
            from: StartFrom::TrimHorizon,
            until_caught_up: false,
            batch_size: 1000,
            max_batch_latency: Duration::from_millis(1000),
            endpoint_url: None,
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
    #[error("no stream feature view to ingest{0}")]
    NoViews(String),
    #[error("unknown feature view `{0}`")]
    UnknownView(String),
    #[error("feature view `{0}` does not read a Kinesis source")]
    NotKinesis(String),
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
        error: pipeline::Error,
    },
    #[error("a shard task failed: {0}")]
    Task(String),
}

/// How an AWS error is handled.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// Get a fresh iterator from the checkpoint.
    Expired,
    /// Back off and retry.
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
            | "InvalidArgumentException"
            | "ValidationException",
        ) => Class::Fatal,
        _ => Class::Retry,
    }
}

/// A Kinesis client for `region`, from the standard configuration chain.
pub async fn client(region: &str, endpoint_url: Option<&str>) -> Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await;
    let mut conf = aws_sdk_kinesis::config::Builder::from(&shared);
    if let Some(url) = endpoint_url {
        conf = conf.endpoint_url(url);
    }
    Client::from_conf(conf.build())
}

/// Exponential back-off with full jitter, from 100 ms to 10 s.
struct Backoff {
    attempt: u32,
    seed: u64,
}

impl Backoff {
    fn new(seed: u64) -> Backoff {
        Backoff {
            attempt: 0,
            seed: seed | 1,
        }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next(&mut self) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let cap = 100u64.saturating_mul(1 << self.attempt.min(7)).min(10_000);
        self.attempt += 1;
        Duration::from_millis(cap / 2 + self.seed % (cap / 2 + 1))
    }
}

/// The Kinesis sources of the selected views, each with its views.
fn plan(
    store: &FeatureStore,
    views: &[String],
) -> Result<Vec<(&'static DataSourceDef, Vec<&'static FeatureViewDef>)>, Error> {
    let selected: Vec<&'static FeatureViewDef> = if views.is_empty() {
        store
            .registry()
            .feature_views()
            .filter(|v| matches!(v.source.kind, SourceKind::Kinesis { .. }))
            .collect()
    } else {
        views
            .iter()
            .map(|n| {
                let v = store
                    .registry()
                    .feature_view(n)
                    .ok_or_else(|| Error::UnknownView(n.clone()))?;
                if matches!(v.source.kind, SourceKind::Kinesis { .. }) {
                    Ok(v)
                } else {
                    Err(Error::NotKinesis(n.clone()))
                }
            })
            .collect::<Result<_, _>>()?
    };
    if selected.is_empty() {
        return Err(Error::NoViews(" (no view reads a Kinesis source)".into()));
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

/// Ingests every selected view's stream until stopped (or caught up).
pub async fn ingest(
    store: Arc<FeatureStore>,
    opts: IngestOptions,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> Result<IngestSummary, Error> {
    let mut runs = Vec::new();
    for (source, views) in plan(&store, &opts.views)? {
        let SourceKind::Kinesis {
            stream_name,
            region,
            ..
        } = source.kind
        else {
            continue;
        };
        let client = client(region, opts.endpoint_url.as_deref()).await;
        let pipeline = Arc::new(Pipeline::new(
            store.clone(),
            source,
            views,
            opts.to,
            metrics.clone(),
        ));
        runs.push(tokio::spawn(run_stream(
            client,
            stream_name,
            pipeline,
            opts.clone(),
            stop.clone(),
        )));
    }
    let mut summary = IngestSummary::default();
    let mut first_error = None;
    for r in runs {
        match r.await {
            Ok(Ok(shards)) => summary.shards += shards,
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(Error::Task(e.to_string()));
            }
        }
    }
    let (records, dead) = metrics.totals();
    summary.records = records;
    summary.dead_lettered = dead;
    summary.rows_written = metrics.rows_written();
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

#[derive(Debug, Clone)]
struct ShardInfo {
    parents: Vec<String>,
}

async fn list_shards(
    client: &Client,
    stream: &str,
) -> Result<
    BTreeMap<String, ShardInfo>,
    aws_sdk_kinesis::error::SdkError<aws_sdk_kinesis::operation::list_shards::ListShardsError>,
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
    Finished,
    CaughtUp,
    Stopped,
}

/// Coordinates one stream: discovers shards, starts each once its parents
/// are finished, and ends when stopped or (with `until_caught_up`) when every
/// shard is caught up.
async fn run_stream(
    client: Client,
    stream: &'static str,
    pipeline: Arc<Pipeline>,
    opts: IngestOptions,
    stop: watch::Receiver<bool>,
) -> Result<usize, Error> {
    let store_finished = |shard: &str| -> bool {
        pipeline_checkpoint(&pipeline, stream, shard).is_some_and(|c| c.finished)
    };
    let mut tasks: BTreeMap<String, tokio::task::JoinHandle<Result<ShardEnd, Error>>> =
        BTreeMap::new();
    let mut ended: BTreeMap<String, ShardEnd> = BTreeMap::new();
    let mut backoff = Backoff::new(stream.len() as u64 * 7919);
    let mut last_list = Instant::now() - Duration::from_secs(3600);
    let mut shards: BTreeMap<String, ShardInfo> = BTreeMap::new();
    loop {
        // Collect tasks that ended.
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
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(Error::Task(e.to_string())),
            }
        }
        let stopping = *stop.borrow();
        if stopping && tasks.is_empty() {
            return Ok(ended.len());
        }
        if !stopping && (relist || last_list.elapsed() >= Duration::from_secs(10)) {
            match list_shards(&client, stream).await {
                Ok(s) => {
                    shards = s;
                    last_list = Instant::now();
                    backoff.reset();
                }
                Err(e) => match classify(e.code()) {
                    Class::Fatal => {
                        return Err(Error::Fatal {
                            stream: stream.to_owned(),
                            code: e.code().unwrap_or("error").to_owned(),
                            message: e.message().map_or_else(|| e.to_string(), str::to_owned),
                        });
                    }
                    _ => {
                        tracing::warn!(stream, error = %e, "ListShards failed; retrying");
                        sleep(backoff.next()).await;
                        continue;
                    }
                },
            }
            // Start every shard whose parents are done.
            for (id, info) in &shards {
                if tasks.contains_key(id) || ended.contains_key(id) {
                    continue;
                }
                if store_finished(id) {
                    ended.insert(id.clone(), ShardEnd::Finished);
                    continue;
                }
                let parents_done = info.parents.iter().all(|p| {
                    !shards.contains_key(p)
                        || ended.get(p) == Some(&ShardEnd::Finished)
                        || store_finished(p)
                });
                if !parents_done {
                    continue;
                }
                tracing::info!(stream, shard = %id, "reading shard");
                let task = read_shard(
                    client.clone(),
                    stream,
                    id.clone(),
                    pipeline.clone(),
                    opts.clone(),
                    stop.clone(),
                );
                tasks.insert(id.clone(), tokio::spawn(task));
            }
        }
        if !stopping
            && opts.until_caught_up
            && tasks.is_empty()
            && last_list.elapsed() < Duration::from_secs(10)
        {
            // Every shard is caught up or finished, and none waits on a parent.
            let waiting = shards.keys().any(|id| !ended.contains_key(id));
            if !waiting {
                return Ok(ended.len());
            }
        }
        sleep(Duration::from_millis(100)).await;
    }
}

fn pipeline_checkpoint(
    pipeline: &Pipeline,
    stream: &str,
    shard: &str,
) -> Option<crate::online_store::Checkpoint> {
    pipeline_store(pipeline)
        .checkpoint(pipeline.consumer(), stream, shard)
        .ok()
        .flatten()
}

fn pipeline_store(pipeline: &Pipeline) -> &dyn crate::online_store::OnlineStore {
    pipeline.store().online_store()
}

/// Reads one shard until it ends, the run stops, or (with `until_caught_up`)
/// it has no lag.
async fn read_shard(
    client: Client,
    stream: &'static str,
    shard: String,
    pipeline: Arc<Pipeline>,
    opts: IngestOptions,
    stop: watch::Receiver<bool>,
) -> Result<ShardEnd, Error> {
    let mut backoff = Backoff::new(
        shard
            .bytes()
            .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
    );
    let fatal = |code: Option<&str>, message: String| Error::Fatal {
        stream: stream.to_owned(),
        code: code.unwrap_or("error").to_owned(),
        message,
    };
    let limit = opts.batch_size.clamp(1, 10_000);
    let mut iterator: Option<String> = None;
    let mut pending: Vec<RawRecord> = Vec::new();
    let mut pending_since: Option<Instant> = None;
    let mut last_call = Instant::now() - Duration::from_secs(1);
    let mut behind: i64 = 0;
    loop {
        if *stop.borrow() {
            flush(&pipeline, stream, &shard, &mut pending, false, behind).await?;
            return Ok(ShardEnd::Stopped);
        }
        // A fresh iterator from the checkpoint (at start, and after expiry).
        let it = match iterator.take() {
            Some(it) => it,
            None => {
                let checkpoint = pipeline_checkpoint(&pipeline, stream, &shard);
                let mut req = client
                    .get_shard_iterator()
                    .stream_name(stream)
                    .shard_id(&shard);
                req = match (checkpoint.and_then(|c| c.sequence_number), opts.from) {
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
                match req.send().await {
                    Ok(r) => match r.shard_iterator() {
                        Some(it) => it.to_owned(),
                        None => return Err(fatal(None, format!("no iterator for shard {shard}"))),
                    },
                    Err(e) => match classify(e.code()) {
                        Class::Fatal => {
                            return Err(fatal(
                                e.code(),
                                e.message().map_or_else(|| e.to_string(), str::to_owned),
                            ));
                        }
                        _ => {
                            tracing::warn!(stream, shard = %shard, error = %e, "GetShardIterator failed; retrying");
                            sleep(backoff.next()).await;
                            continue;
                        }
                    },
                }
            }
        };
        // At most five GetRecords calls a second per shard.
        let since = last_call.elapsed();
        if since < Duration::from_millis(200) {
            sleep(Duration::from_millis(200) - since).await;
        }
        last_call = Instant::now();
        let want = (limit - pending.len().min(limit - 1)) as i32;
        let resp = match client
            .get_records()
            .shard_iterator(&it)
            .limit(want)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                match classify(e.code()) {
                    Class::Expired => {
                        // Records fetched but not written are read again from the checkpoint.
                        tracing::info!(stream, shard = %shard, "iterator expired; resuming from the checkpoint");
                        pending.clear();
                        pending_since = None;
                        iterator = None;
                    }
                    Class::Fatal => {
                        return Err(fatal(
                            e.code(),
                            e.message().map_or_else(|| e.to_string(), str::to_owned),
                        ));
                    }
                    Class::Retry => {
                        tracing::warn!(stream, shard = %shard, error = %e, "GetRecords failed; backing off");
                        sleep(backoff.next()).await;
                        iterator = Some(it);
                    }
                }
                continue;
            }
        };
        backoff.reset();
        behind = resp.millis_behind_latest().unwrap_or(0);
        let got = resp.records().len();
        if got > 0 && pending_since.is_none() {
            pending_since = Some(Instant::now());
        }
        pending.extend(resp.records().iter().map(|r| RawRecord {
            sequence_number: r.sequence_number().to_owned(),
            data: r.data().as_ref().to_vec(),
        }));
        pipeline.metrics().record_lag(stream, &shard, behind);
        match resp.next_shard_iterator() {
            None => {
                // The shard is closed and read to its end.
                flush(&pipeline, stream, &shard, &mut pending, true, behind).await?;
                tracing::info!(stream, shard = %shard, "shard finished");
                return Ok(ShardEnd::Finished);
            }
            Some(next) => iterator = Some(next.to_owned()),
        }
        let full = pending.len() >= limit;
        let late = pending_since.is_some_and(|t| t.elapsed() >= opts.max_batch_latency);
        let idle = got == 0 && behind == 0;
        if full || late || (idle && !pending.is_empty()) {
            flush(&pipeline, stream, &shard, &mut pending, false, behind).await?;
            pending_since = None;
        }
        if idle && pending.is_empty() && opts.until_caught_up {
            return Ok(ShardEnd::CaughtUp);
        }
        if idle {
            // Nothing new: poll at a gentler pace.
            sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Writes the pending records as one batch (on a blocking thread).
async fn flush(
    pipeline: &Arc<Pipeline>,
    stream: &'static str,
    shard: &str,
    pending: &mut Vec<RawRecord>,
    finished: bool,
    behind: i64,
) -> Result<Option<BatchOutcome>, Error> {
    if pending.is_empty() && !finished {
        return Ok(None);
    }
    let records = std::mem::take(pending);
    let p = pipeline.clone();
    let shard_id = shard.to_owned();
    let result = tokio::task::spawn_blocking(move || {
        p.process(stream, &shard_id, &records, finished, behind)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?;
    match result {
        Ok(o) => Ok(Some(o)),
        Err(error) => Err(Error::Pipeline {
            stream: stream.to_owned(),
            shard: shard.to_owned(),
            error,
        }),
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
            .map_err(|e| {
                format!(
                    "CreateStream {stream}: {}",
                    e.message().unwrap_or(&e.to_string())
                )
            })?;
    }
    for _ in 0..300 {
        if let Ok(r) = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
        {
            if r.stream_description_summary()
                .is_some_and(|d| d.stream_status().as_str() == "ACTIVE")
            {
                return Ok(());
            }
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
    let mut backoff = Backoff::new(42);
    for chunk in records.chunks(500) {
        let mut todo: Vec<&(String, Vec<u8>)> = chunk.iter().collect();
        while !todo.is_empty() {
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
                    let failed: Vec<&(String, Vec<u8>)> = resp
                        .records()
                        .iter()
                        .zip(&todo)
                        .filter(|(r, _)| r.error_code().is_some())
                        .map(|(_, t)| *t)
                        .collect();
                    put += todo.len() - failed.len();
                    if !failed.is_empty() {
                        sleep(backoff.next()).await;
                    } else {
                        backoff.reset();
                    }
                    todo = failed;
                }
                Err(e) if classify(e.code()) == Class::Fatal => {
                    return Err(format!(
                        "PutRecords {stream}: {}",
                        e.message().unwrap_or(&e.to_string())
                    ));
                }
                Err(_) => sleep(backoff.next()).await,
            }
        }
    }
    Ok(put)
}
