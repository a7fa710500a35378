//! One stream's run, whatever the stream: the partition list and its lineage
//! (a child is read only after its parents are read to their end), one task
//! per partition reading from its checkpoint at the consumer's pace, the
//! micro-batches handed to the [`Pipeline`], retries with back-off, fresh
//! cursors after an expiry, and a stop that flushes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::consumer::{CallError, Class, Fetched, Partition, StreamConsumer};
use super::pipeline::{self, Pipeline, RawRecord};
use super::{Error, IngestOptions};
use crate::online_store::Checkpoint;
pub(crate) use hold::Hold;

/// Exponential back-off with jitter ("equal jitter": half fixed, half
/// random), from 100 ms up to 10 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    attempt: u32,
    state: u64,
}

impl Backoff {
    pub(crate) fn new(seed: &str) -> Backoff {
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

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    pub(crate) fn next(&mut self) -> Duration {
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

fn checkpoint_of(pipeline: &Pipeline, stream: &str, partition: &str) -> Option<Checkpoint> {
    match pipeline
        .store()
        .online_store()
        .checkpoint(pipeline.consumer(), stream, partition)
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(stream, shard = partition, error = %e, "cannot read the checkpoint");
            None
        }
    }
}

/// How a partition's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Closed, and read to its end: its children may start.
    Finished,
    /// No lag (with `until_caught_up`).
    CaughtUp,
    Stopped,
    /// The partition's lease was taken over (or could not be renewed in
    /// time): nothing more was written for it.
    LeaseLost,
}

/// One stream: lists partitions, starts each once its parents are finished,
/// and ends when stopped or (with `until_caught_up`) when every partition is
/// caught up. Returns how many partitions it read.
pub(crate) struct StreamRun<C: StreamConsumer> {
    pub(crate) consumer: Arc<C>,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) opts: IngestOptions,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) halt: Arc<watch::Sender<bool>>,
}

impl<C: StreamConsumer> StreamRun<C> {
    fn call_error(&self, partition: Option<&str>, error: CallError) -> Error {
        Error::Call {
            stream: self.consumer.stream(),
            partition: partition.map(str::to_owned),
            error,
        }
    }

    fn checkpoint(&self, partition: &str) -> Option<Checkpoint> {
        checkpoint_of(&self.pipeline, self.consumer.stream(), partition)
    }

    pub(crate) async fn run(mut self) -> Result<usize, Error> {
        let result = self.coordinate().await;
        if result.is_err() {
            // Let this stream's other partitions flush and stop.
            let _ = self.halt.send(true);
        }
        result
    }

    async fn coordinate(&mut self) -> Result<usize, Error> {
        let stream = self.consumer.stream();
        let mut tasks: BTreeMap<String, tokio::task::JoinHandle<Result<End, Error>>> =
            BTreeMap::new();
        let mut ended: BTreeMap<String, End> = BTreeMap::new();
        let mut backoff = Backoff::new(stream);
        let mut listed_at: Option<Instant> = None;
        let mut partitions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut failure: Option<Error> = None;
        loop {
            // Collect the partition tasks that ended.
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
                        relist |= end == End::Finished;
                        ended.insert(id, end);
                    }
                    Ok(Err(e)) => {
                        let _ = self.halt.send(true);
                        failure.get_or_insert(e);
                    }
                    Err(e) => {
                        let _ = self.halt.send(true);
                        failure.get_or_insert(Error::Task(e));
                    }
                }
            }
            if *self.stop.borrow() {
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
                let consumer = self.consumer.clone();
                match unless_stopped(consumer.list(), &mut self.stop).await {
                    None => continue,
                    Some(Ok(listed)) => {
                        if listed.len() != partitions.len() {
                            tracing::info!(stream, shards = listed.len(), "listed shards");
                        }
                        partitions = listed
                            .into_iter()
                            .map(|Partition { id, parents }| (id, parents))
                            .collect();
                        listed_at = Some(Instant::now());
                        backoff.reset();
                    }
                    Some(Err(e)) if e.class == Class::Fatal => {
                        return Err(self.call_error(None, e));
                    }
                    Some(Err(e)) => {
                        let wait = backoff.next();
                        tracing::warn!(stream, error = %e, retry_in = ?wait, "listing the shards failed");
                        pause(wait, &mut self.stop).await;
                        continue;
                    }
                }
                self.start_ready(&partitions, &mut tasks, &mut ended);
            }
            if self.opts.until_caught_up && tasks.is_empty() && !partitions.is_empty() {
                // Every partition is caught up or finished, and none waits
                // on a parent.
                if partitions.keys().all(|id| ended.contains_key(id)) {
                    return Ok(ended.len());
                }
            }
            pause(Duration::from_millis(100), &mut self.stop).await;
        }
    }

    /// Starts a reader for every listed partition whose parents are finished.
    fn start_ready(
        &self,
        partitions: &BTreeMap<String, Vec<String>>,
        tasks: &mut BTreeMap<String, tokio::task::JoinHandle<Result<End, Error>>>,
        ended: &mut BTreeMap<String, End>,
    ) {
        for (id, parents) in partitions {
            if tasks.contains_key(id) || ended.contains_key(id) {
                continue;
            }
            if self.checkpoint(id).is_some_and(|c| c.finished) {
                ended.insert(id.clone(), End::Finished);
                continue;
            }
            let parents_done = parents.iter().all(|p| {
                // A parent no longer listed has expired: nothing is left to read.
                !partitions.contains_key(p)
                    || ended.get(p) == Some(&End::Finished)
                    || self.checkpoint(p).is_some_and(|c| c.finished)
            });
            if !parents_done {
                continue;
            }
            tracing::info!(stream = self.consumer.stream(), shard = %id, "reading shard");
            let reader = PartitionReader::new(
                self.consumer.clone(),
                id,
                self.pipeline.clone(),
                &self.opts,
                self.stop.clone(),
                None,
            );
            tasks.insert(id.clone(), tokio::spawn(reader.run()));
        }
    }
}

/// Reads one partition: from the checkpoint, micro-batches through the
/// pipeline, until the partition ends, the run stops, (with
/// `until_caught_up`) the partition has no lag, or its lease is lost.
pub(crate) struct PartitionReader<C: StreamConsumer> {
    consumer: Arc<C>,
    partition: String,
    pipeline: Arc<Pipeline>,
    opts: IngestOptions,
    stop: watch::Receiver<bool>,
    backoff: Backoff,
    /// Records fetched but not yet written: at most one batch and one read,
    /// so memory stays bounded however slow the sink.
    pending: Vec<RawRecord>,
    pending_since: Option<Instant>,
    behind_ms: i64,
    /// With shard leases: the lease this reader writes under.
    lease: Option<Arc<Hold>>,
}

/// What a flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flushed {
    Written,
    /// The lease is lost: nothing was written, nothing more will be.
    LeaseLost,
}

/// What reading the next records gave.
enum Step<C> {
    Records {
        next: Option<C>,
        got: usize,
    },
    /// Try again with this cursor (after a back-off), or with a fresh one.
    Retry(Option<C>),
    Stopped,
}

impl<C: StreamConsumer> PartitionReader<C> {
    pub(crate) fn new(
        consumer: Arc<C>,
        partition: &str,
        pipeline: Arc<Pipeline>,
        opts: &IngestOptions,
        stop: watch::Receiver<bool>,
        lease: Option<Arc<Hold>>,
    ) -> Self {
        PartitionReader {
            consumer,
            partition: partition.to_owned(),
            backoff: Backoff::new(partition),
            pipeline,
            opts: opts.clone(),
            stop,
            pending: Vec::new(),
            pending_since: None,
            behind_ms: 0,
            lease,
        }
    }

    fn stream(&self) -> &'static str {
        self.consumer.stream()
    }

    fn call_error(&self, error: CallError) -> Error {
        Error::Call {
            stream: self.stream(),
            partition: Some(self.partition.clone()),
            error,
        }
    }

    fn pipeline_error(&self, error: pipeline::Error) -> Error {
        Error::Pipeline {
            stream: self.stream(),
            shard: self.partition.clone(),
            error: Box::new(error),
        }
    }

    pub(crate) async fn run(mut self) -> Result<End, Error> {
        if self.lease.is_some() {
            // Another worker may have moved the shard on since this process
            // last held it.
            self.pipeline.forget(&self.partition);
        }
        let checkpoint = checkpoint_of(&self.pipeline, self.stream(), &self.partition);
        if self.lease.is_some() && checkpoint.as_ref().is_some_and(|c| c.finished) {
            return Ok(End::Finished);
        }
        {
            let (pipeline, stream, partition) =
                (self.pipeline.clone(), self.stream(), self.partition.clone());
            let seq = checkpoint.as_ref().and_then(|c| c.sequence_number.clone());
            tokio::task::spawn_blocking(move || {
                pipeline.discard_uncommitted(stream, &partition, seq.as_deref())
            })
            .await
            .map_err(Error::Task)?
            .map_err(|error| self.pipeline_error(error))?;
        }
        let limit = self.opts.batch_size.max(1);
        let interval = self.consumer.min_read_interval();
        let mut cursor: Option<C::Cursor> = None;
        let mut last_call: Option<Instant> = None;
        loop {
            if self.lease.as_ref().is_some_and(|l| l.is_lost()) {
                return Ok(End::LeaseLost);
            }
            if *self.stop.borrow() {
                return Ok(match self.flush(false).await? {
                    Flushed::Written => End::Stopped,
                    Flushed::LeaseLost => End::LeaseLost,
                });
            }
            let c = match cursor.take() {
                Some(c) => c,
                None => match self.fresh_cursor().await? {
                    Some(c) => c,
                    None => continue, // stopped, or retried after a back-off
                },
            };
            if let Some(t) = last_call {
                let since = t.elapsed();
                if since < interval && pause(interval - since, &mut self.stop).await {
                    continue;
                }
            }
            last_call = Some(Instant::now());
            // A larger batch gathers over several reads.
            let want = limit
                .saturating_sub(self.pending.len())
                .clamp(1, self.consumer.max_read_records());
            let (next, got) = match self.fetch(c, want).await? {
                Step::Records { next, got } => (next, got),
                Step::Retry(c) => {
                    cursor = c;
                    continue;
                }
                Step::Stopped => continue,
            };
            let Some(next) = next else {
                // The partition is closed and read to its end.
                if self.flush(true).await? == Flushed::LeaseLost {
                    return Ok(End::LeaseLost);
                }
                tracing::info!(stream = self.stream(), shard = %self.partition, "shard finished");
                return Ok(End::Finished);
            };
            cursor = Some(next);
            let idle = got == 0 && self.behind_ms == 0;
            let full = self.pending.len() >= limit;
            let late = self
                .pending_since
                .is_some_and(|t| t.elapsed() >= self.opts.max_batch_latency);
            if (full || late || (idle && !self.pending.is_empty()))
                && self.flush(false).await? == Flushed::LeaseLost
            {
                return Ok(End::LeaseLost);
            }
            if idle && self.opts.until_caught_up {
                return Ok(End::CaughtUp);
            }
            if idle {
                // Nothing new: poll at a gentler pace.
                pause(Duration::from_millis(500), &mut self.stop).await;
            }
        }
    }

    /// A cursor just after the checkpoint, or at the run's start without one.
    /// `None` when stopped or after a retryable failure (already waited out).
    async fn fresh_cursor(&mut self) -> Result<Option<C::Cursor>, Error> {
        let after = checkpoint_of(&self.pipeline, self.stream(), &self.partition)
            .and_then(|c| c.sequence_number);
        let consumer = self.consumer.clone();
        let open = consumer.open(&self.partition, after.as_deref());
        match unless_stopped(open, &mut self.stop).await {
            None => Ok(None),
            Some(Ok(c)) => {
                self.backoff.reset();
                Ok(Some(c))
            }
            Some(Err(e)) if e.class == Class::Fatal => Err(self.call_error(e)),
            Some(Err(e)) => {
                let wait = self.backoff.next();
                tracing::warn!(stream = self.stream(), shard = %self.partition, error = %e, retry_in = ?wait, "opening the shard failed");
                pause(wait, &mut self.stop).await;
                Ok(None)
            }
        }
    }

    /// One read; the records join `pending`.
    async fn fetch(&mut self, cursor: C::Cursor, want: usize) -> Result<Step<C::Cursor>, Error> {
        let consumer = self.consumer.clone();
        let read = consumer.read(&self.partition, cursor, want);
        let fetched = match unless_stopped(read, &mut self.stop).await {
            None => return Ok(Step::Stopped),
            Some(Ok(f)) => f,
            Some(Err((e, cursor))) => {
                self.pipeline.metrics().record_error(
                    self.stream(),
                    &self.partition,
                    e.code.as_deref().unwrap_or("transport"),
                );
                return match e.class {
                    Class::Expired => {
                        tracing::warn!(
                            stream = self.stream(),
                            shard = %self.partition,
                            records_dropped = self.pending.len(),
                            "shard iterator expired (unused for 5 minutes: was a batch that slow to write?); reading again from the checkpoint"
                        );
                        // What was fetched but not written is read again
                        // from the checkpoint.
                        self.pending.clear();
                        self.pending_since = None;
                        Ok(Step::Retry(None))
                    }
                    Class::Fatal => Err(self.call_error(e)),
                    Class::Retry => {
                        let wait = self.backoff.next();
                        tracing::warn!(stream = self.stream(), shard = %self.partition, error = %e, retry_in = ?wait, "reading the shard failed");
                        pause(wait, &mut self.stop).await;
                        Ok(Step::Retry(Some(cursor)))
                    }
                };
            }
        };
        let Fetched {
            records,
            next,
            behind_ms,
        } = fetched;
        self.backoff.reset();
        self.behind_ms = behind_ms;
        let got = records.len();
        if got > 0 && self.pending_since.is_none() {
            self.pending_since = Some(Instant::now());
        }
        self.pending.extend(records);
        self.pipeline
            .metrics()
            .record_lag(self.stream(), &self.partition, self.behind_ms);
        Ok(Step::Records { next, got })
    }

    /// Writes the pending records as one batch, with the checkpoint, on a
    /// blocking thread. `finished` records the partition's end (even with no
    /// records left). A store failure that may pass (a locked database, a
    /// full disk, an unreachable Redis) is retried with back-off: the
    /// partition pauses, fetching nothing and checkpointing nothing, until
    /// the batch is written. The shutdown deadline bounds the wait after a
    /// stop.
    ///
    /// Under a lease, a batch is written only while the lease is known to
    /// be held (renewed within the lease duration): a worker that cannot
    /// renew waits here, writing nothing, until it renews or learns the
    /// lease is lost. The store refuses the batch if a newer owner has
    /// written the shard meanwhile.
    async fn flush(&mut self, finished: bool) -> Result<Flushed, Error> {
        if self.pending.is_empty() && !finished {
            return Ok(Flushed::Written);
        }
        let records = Arc::new(std::mem::take(&mut self.pending));
        self.pending_since = None;
        let mut backoff = Backoff::new(&self.partition);
        loop {
            let fence = match &self.lease {
                Some(lease) => match lease.wait_valid().await {
                    Some(token) => Some(token),
                    None => return Ok(Flushed::LeaseLost),
                },
                None => None,
            };
            let (pipeline, stream, partition, behind, batch) = (
                self.pipeline.clone(),
                self.stream(),
                self.partition.clone(),
                self.behind_ms,
                records.clone(),
            );
            let result = tokio::task::spawn_blocking(move || {
                pipeline.process_fenced(stream, &partition, &batch, finished, behind, fence)
            })
            .await
            .map_err(Error::Task)?;
            match result {
                Ok(_) => {
                    if let Some(lease) = &self.lease {
                        lease.committed(
                            records.last().map(|r| r.sequence_number.clone()),
                            self.behind_ms,
                        );
                    }
                    return Ok(Flushed::Written);
                }
                Err(pipeline::Error::Online(crate::online_store::Error::Fenced { .. })) => {
                    tracing::warn!(stream = self.stream(), shard = %self.partition,
                        "the shard's lease was taken over: the store refused this worker's batch; the new owner reads it again");
                    self.pipeline.metrics().record_fenced(self.stream());
                    if let Some(lease) = &self.lease {
                        lease.lose();
                    }
                    return Ok(Flushed::LeaseLost);
                }
                Err(e) if e.is_transient() => {
                    let wait = backoff.next();
                    tracing::warn!(stream = self.stream(), shard = %self.partition, error = %e, retry_in = ?wait,
                        "cannot write a batch; retrying (nothing is checkpointed until it is written)");
                    self.pipeline
                        .metrics()
                        .record_error(self.stream(), &self.partition, "store");
                    sleep(wait).await;
                }
                Err(e) => return Err(self.pipeline_error(e)),
            }
        }
    }
}

/// A reader's side of a shard lease (`ingest::lease` keeps the other).
mod hold {
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::time::Instant;

    /// A lease a worker holds: its fencing token, until when it is known to
    /// be held, and what the reader has committed under it (which the
    /// renewals record in the table).
    #[derive(Debug)]
    pub(crate) struct Hold {
        token: u64,
        state: Mutex<State>,
    }

    #[derive(Debug)]
    struct State {
        valid_until: Instant,
        lost: bool,
        committed: Option<String>,
        behind_ms: i64,
    }

    impl Hold {
        pub(crate) fn new(token: u64, valid_until: Instant) -> Hold {
            Hold {
                token,
                state: Mutex::new(State {
                    valid_until,
                    lost: false,
                    committed: None,
                    behind_ms: 0,
                }),
            }
        }

        fn state(&self) -> std::sync::MutexGuard<'_, State> {
            self.state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        /// The fencing token: the lease counter when it was taken.
        pub(crate) fn token(&self) -> u64 {
            self.token
        }

        /// A renewal sent at `sent` succeeded: held until `valid_until`.
        pub(crate) fn renewed(&self, valid_until: Instant) {
            let mut s = self.state();
            s.valid_until = s.valid_until.max(valid_until);
        }

        /// The lease is gone: nothing more is written under it.
        pub(crate) fn lose(&self) {
            self.state().lost = true;
        }

        pub(crate) fn is_lost(&self) -> bool {
            self.state().lost
        }

        /// Records a committed batch: its last sequence number and the lag.
        pub(crate) fn committed(&self, sequence_number: Option<String>, behind_ms: i64) {
            let mut s = self.state();
            if sequence_number.is_some() {
                s.committed = sequence_number;
            }
            s.behind_ms = behind_ms;
        }

        /// The last committed sequence number and lag.
        pub(crate) fn progress(&self) -> (Option<String>, i64) {
            let s = self.state();
            (s.committed.clone(), s.behind_ms)
        }

        /// Waits while the lease is neither known held nor known lost; the
        /// token when held, `None` when lost.
        pub(crate) async fn wait_valid(&self) -> Option<u64> {
            loop {
                {
                    let s = self.state();
                    if s.lost {
                        return None;
                    }
                    if Instant::now() < s.valid_until {
                        return Some(self.token);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
