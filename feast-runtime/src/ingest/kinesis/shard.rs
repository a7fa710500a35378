//! One shard: GetRecords from the checkpoint at most five times a second,
//! micro-batches through the pipeline, retries and fresh iterators.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::ShardIteratorType;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::stream::{ShardEnd, checkpoint_of};
use super::{
    Backoff, Class, Error, IngestOptions, StartFrom, classify, code_and_message, pause,
    unless_stopped,
};
use crate::ingest::pipeline::{self, Pipeline, RawRecord};

/// Reads one shard: GetRecords from the checkpoint, micro-batches through
/// the pipeline, until the shard ends, the run stops, or (with
/// `until_caught_up`) the shard has no lag.
pub(super) struct ShardReader {
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
    pub(super) fn new(
        client: Client,
        stream: &'static str,
        shard: String,
        pipeline: Arc<Pipeline>,
        opts: IngestOptions,
        stop: watch::Receiver<bool>,
    ) -> ShardReader {
        ShardReader {
            client,
            stream,
            backoff: Backoff::new(&shard),
            shard,
            pipeline,
            opts,
            stop,
            pending: Vec::new(),
            pending_since: None,
            behind_ms: 0,
        }
    }

    fn fatal(&self, code: Option<String>, message: String) -> Error {
        Error::Fatal {
            stream: self.stream.to_owned(),
            code: code.unwrap_or_else(|| "error".to_owned()),
            message: format!("shard {}: {message}", self.shard),
        }
    }

    pub(super) async fn run(mut self) -> Result<ShardEnd, Error> {
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
                        tracing::warn!(
                            stream = self.stream,
                            shard = %self.shard,
                            records_dropped = self.pending.len(),
                            "shard iterator expired (unused for 5 minutes: was a batch that slow to write?); reading again from the checkpoint"
                        );
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
