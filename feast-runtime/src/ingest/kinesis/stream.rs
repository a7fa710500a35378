//! One stream: the shard list, the lineage of splits and merges, and a
//! reader per shard started once its parents are read to their end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::SdkError;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::shard::ShardReader;
use super::{
    Backoff, Class, Error, IngestOptions, classify, code_and_message, pause, unless_stopped,
};
use crate::ingest::pipeline::Pipeline;
use crate::online_store::Checkpoint;

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
pub(super) enum ShardEnd {
    /// Closed, and read to its end: its children may start.
    Finished,
    /// No lag (with `until_caught_up`).
    CaughtUp,
    Stopped,
}

/// One stream: discovers shards, starts each once its parents are finished,
/// and ends when stopped or (with `until_caught_up`) when every shard is
/// caught up.
pub(super) struct StreamRun {
    pub(super) client: Client,
    pub(super) stream: &'static str,
    pub(super) pipeline: Arc<Pipeline>,
    pub(super) opts: IngestOptions,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) halt: Arc<watch::Sender<bool>>,
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

    pub(super) async fn run(mut self) -> Result<usize, Error> {
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
            let reader = ShardReader::new(
                self.client.clone(),
                self.stream,
                id.clone(),
                self.pipeline.clone(),
                self.opts.clone(),
                self.stop.clone(),
            );
            tasks.insert(id.clone(), tokio::spawn(reader.run()));
        }
    }
}

pub(super) fn checkpoint_of(pipeline: &Pipeline, stream: &str, shard: &str) -> Option<Checkpoint> {
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
