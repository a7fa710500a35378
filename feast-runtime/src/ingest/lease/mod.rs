//! Several `ingest` workers on one stream: shard leases in a DynamoDB
//! table, and fencing in the online store.
//!
//! The lease table ([`table`]) is the only coordinator: every change is a
//! single-item conditional write on the lease's counter and owner (a steal:
//! on its owner alone), so two workers never both succeed in taking,
//! renewing or releasing one lease. Each
//! worker runs one loop per stream, a third of a lease duration apart:
//!
//! 1. **Renew** every lease it holds (counter + 1, the committed sequence
//!    number and lag recorded). A renewal that finds the counter or owner
//!    changed means the lease was taken: the shard's reader stops at once,
//!    writing nothing more. A renewal that fails (throttled, unreachable)
//!    changes nothing, but the reader writes only until a lease duration
//!    after the last renewal that succeeded; then it waits. Other workers
//!    take a lease only after seeing its counter stand still for a lease
//!    duration, by their own clocks, so a worker that stopped writing and
//!    a worker that took over never both write.
//! 2. **Sync** the shard list now and then, and whenever a shard ends:
//!    a lease is created for a shard once every parent's lease is at
//!    `SHARD_END` (or the parent is gone from the stream), so children are
//!    read only after their parents.
//! 3. **Balance** ([`balance`]): take free or expired leases up to its
//!    share, or steal one lease a round from a worker with two more.
//!
//! Before reading a shard it has taken, a worker fences it in the online
//! store with its new lease counter ([`OnlineStore::fence`]): the store
//! refuses every later write carrying a lower counter, checked in the same
//! atomic script as the write (rows, tiles and the checkpoint). So a
//! worker that lost its lease without knowing it (paused, partitioned)
//! cannot move the checkpoint back or write anything after the new owner
//! has; the new owner reads on from the checkpoint the store holds after
//! the fence, which no earlier owner can move any more. On SIGTERM a
//! worker flushes, checkpoints, and releases its leases, which others take
//! at their next round: a rolling deploy reads nothing twice.
//!
//! [`OnlineStore::fence`]: crate::online_store::OnlineStore::fence

mod balance;
pub mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::balance::{Observed, choose};
use self::table::{Lease, LeaseTable, TableError};
use super::consumer::{Class, StreamConsumer};
use super::pipeline::Pipeline;
use super::run::{End, Hold, PartitionReader};
use super::{Error, IngestOptions, StartFrom};

/// How a worker shares its streams with others.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// The DynamoDB table (created if missing).
    pub table: String,
    /// This worker's name in the table.
    pub worker: String,
    /// How long a lease lasts without a renewal; renewals are a third of it
    /// apart.
    pub duration: Duration,
}

impl LeaseOptions {
    /// A worker name unique on this machine: host and process id.
    pub fn default_worker() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".into());
        format!("{host}:{}", std::process::id())
    }

    fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// How long after sending a renewal that succeeded the lease counts as
    /// held: a sixth of a lease duration short of when others may take it.
    fn held_for(&self) -> Duration {
        self.duration - self.duration / 6
    }
}

/// A number in [0, 1), different each call.
fn jitter(seed: &str) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let h = seed.bytes().fold(u64::from(nanos) | 1, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h % 1_000_000) as f64 / 1_000_000.0
}

/// The start position recorded in a new lease.
fn start_name(from: StartFrom) -> &'static str {
    match from {
        StartFrom::TrimHorizon => "TRIM_HORIZON",
        StartFrom::Latest => "LATEST",
        StartFrom::AtTimestamp(_) => "AT_TIMESTAMP",
    }
}

/// A lease this worker holds.
#[derive(Debug)]
struct Held {
    counter: u64,
    hold: Arc<Hold>,
    /// Stops the reader (it flushes first, unless the lease is lost).
    stop: watch::Sender<bool>,
    /// The reader; `None` until the shard is fenced in the store.
    task: Option<JoinHandle<Result<End, Error>>>,
    stolen: bool,
}

/// One stream's run in coordinated mode.
pub(crate) struct LeaseRun<C: StreamConsumer> {
    pub(crate) consumer: Arc<C>,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) opts: IngestOptions,
    pub(crate) lease: LeaseOptions,
    pub(crate) table: LeaseTable,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) halt: Arc<watch::Sender<bool>>,
}

impl<C: StreamConsumer> LeaseRun<C> {
    fn stream(&self) -> &'static str {
        self.consumer.stream()
    }

    fn count(&self, op: &'static str) {
        self.pipeline.metrics().record_lease_call(self.stream(), op);
    }

    fn table_error(&self, e: TableError) -> Error {
        Error::Leases {
            stream: self.stream(),
            error: e,
        }
    }

    /// Runs until stopped; returns how many shards this worker read.
    pub(crate) async fn run(mut self) -> Result<usize, Error> {
        let result = self.coordinate().await;
        if result.is_err() {
            let _ = self.halt.send(true);
        }
        result
    }

    async fn coordinate(&mut self) -> Result<usize, Error> {
        let stream = self.stream();
        self.count("DescribeTable");
        self.table.ensure().await.map_err(|e| self.table_error(e))?;
        let mut held: BTreeMap<String, Held> = BTreeMap::new();
        let mut observed = Observed::default();
        let mut read: BTreeSet<String> = BTreeSet::new();
        let mut synced_at: Option<Instant> = None;
        let mut sync_now = true;
        let mut failure: Option<Error> = None;
        loop {
            let round = Instant::now();
            // Readers that ended.
            let ended: Vec<String> = held
                .iter()
                .filter(|(_, h)| h.task.as_ref().is_some_and(JoinHandle::is_finished))
                .map(|(s, _)| s.clone())
                .collect();
            for shard in ended {
                let Some(mut h) = held.remove(&shard) else {
                    continue;
                };
                let Some(task) = h.task.take() else { continue };
                match task.await {
                    Ok(Ok(End::Finished)) => {
                        self.finish(&shard, &h).await;
                        sync_now = true;
                    }
                    Ok(Ok(End::LeaseLost)) => {
                        tracing::info!(stream, shard = %shard, "lease lost");
                        self.pipeline.metrics().record_lease_lost(stream);
                    }
                    Ok(Ok(End::Stopped | End::CaughtUp)) => {
                        // Stopped by this loop: put back for the release.
                        held.insert(shard, h);
                    }
                    Ok(Err(e)) => {
                        failure.get_or_insert(e);
                        let _ = self.halt.send(true);
                    }
                    Err(e) => {
                        failure.get_or_insert(Error::Task(e));
                        let _ = self.halt.send(true);
                    }
                }
            }
            if *self.stop.borrow() {
                break;
            }
            self.renew(&mut held).await;
            // Find new shards now and then, and as soon as one ends.
            let due = synced_at.is_none_or(|t| t.elapsed() >= self.opts.shard_discovery_interval);
            let leases = if sync_now || due {
                match self.sync().await {
                    Ok(leases) => {
                        synced_at = Some(Instant::now());
                        sync_now = false;
                        Some(leases)
                    }
                    Err(e) => {
                        if let Some(fatal) = e {
                            failure.get_or_insert(fatal);
                            let _ = self.halt.send(true);
                            break;
                        }
                        None
                    }
                }
            } else {
                self.count("Scan");
                match self.table.scan(Some(stream)).await {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::warn!(stream, error = %e, "cannot read the lease table");
                        None
                    }
                }
            };
            match leases {
                Some(leases) => {
                    observed.observe(&leases, Instant::now().into_std());
                    self.balance(&leases, &observed, &mut held).await;
                }
                None => observed.blind(Instant::now().into_std()),
            }
            self.start_readers(&mut held, &mut read).await;
            self.pipeline
                .metrics()
                .record_leases_held(stream, held.len());
            // Up to a tenth shorter at random: workers started together
            // drift apart instead of keeping step round after round.
            let next = round
                + self
                    .lease
                    .renew_every()
                    .mul_f64(1.0 - jitter(&self.lease.worker) / 10.0);
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                _ = self.stop.wait_for(|s| *s) => {}
            }
        }
        self.shut_down(held).await;
        match failure {
            Some(e) => Err(e),
            None => Ok(read.len()),
        }
    }

    /// Renews every lease held, concurrently.
    async fn renew(&self, held: &mut BTreeMap<String, Held>) {
        let stream = self.stream();
        let mut calls = tokio::task::JoinSet::new();
        for (shard, h) in held.iter() {
            if h.hold.is_lost() {
                continue;
            }
            let (table, worker, shard, counter) = (
                self.table.clone(),
                self.lease.worker.clone(),
                shard.clone(),
                h.counter,
            );
            let (checkpoint, behind_ms) = h.hold.progress();
            self.count("UpdateItem");
            calls.spawn(async move {
                let sent = Instant::now();
                let r = table
                    .renew(
                        stream,
                        &shard,
                        &worker,
                        counter,
                        checkpoint.as_deref(),
                        behind_ms,
                    )
                    .await;
                (shard, sent, r)
            });
        }
        while let Some(done) = calls.join_next().await {
            let Ok((shard, sent, result)) = done else {
                continue;
            };
            let Some(h) = held.get_mut(&shard) else {
                continue;
            };
            match result {
                Ok(counter) => {
                    h.counter = counter;
                    h.hold.renewed(sent + self.lease.held_for());
                    self.pipeline
                        .metrics()
                        .record_renewal(stream, sent.elapsed().as_secs_f64());
                }
                Err(TableError::Changed) => {
                    tracing::info!(stream, shard = %shard, "the lease was taken by another worker");
                    h.hold.lose();
                    let _ = h.stop.send(true);
                    if h.task.is_none() {
                        held.remove(&shard);
                        self.pipeline.metrics().record_lease_lost(stream);
                    }
                }
                Err(e) => {
                    tracing::warn!(stream, shard = %shard, error = %e,
                        "cannot renew the lease; the shard is written only while the last renewal is under a lease duration old");
                }
            }
        }
    }

    /// Lists the stream's shards and creates the leases of those ready to
    /// be read; returns the table's leases. `Err(None)` after a failure
    /// worth retrying, `Err(Some(..))` after one that is not.
    async fn sync(&self) -> Result<Vec<Lease>, Option<Error>> {
        let stream = self.stream();
        let listed = match self.consumer.list().await {
            Ok(l) => l,
            Err(e) if e.class == Class::Fatal => {
                return Err(Some(Error::Call {
                    stream,
                    partition: None,
                    error: e,
                }));
            }
            Err(e) => {
                tracing::warn!(stream, error = %e, "listing the shards failed");
                return Err(None);
            }
        };
        self.count("Scan");
        let mut leases = match self.table.scan(Some(stream)).await {
            Ok(l) => l,
            Err(e @ TableError::Fatal { .. }) => return Err(Some(self.table_error(e))),
            Err(TableError::Missing { .. }) => {
                // Dropped under the workers: made anew, its leases come back
                // from the shard list. Redis still holds the shards' highest
                // tokens, so each new owner raises its counter above them
                // before it writes.
                tracing::warn!(
                    stream,
                    table = self.table.name(),
                    "the lease table is gone; creating it again"
                );
                self.count("CreateTable");
                if let Err(e) = self.table.ensure().await {
                    tracing::warn!(stream, error = %e, "cannot create the lease table");
                }
                return Err(None);
            }
            Err(e) => {
                tracing::warn!(stream, error = %e, "cannot read the lease table");
                return Err(None);
            }
        };
        let listed_ids: BTreeSet<&str> = listed.iter().map(|p| p.id.as_str()).collect();
        let mut created = false;
        for p in &listed {
            if leases.iter().any(|l| l.shard == p.id) {
                continue;
            }
            let parents_done = p.parents.iter().all(|parent| {
                match leases.iter().find(|l| &l.shard == parent) {
                    Some(l) => l.is_finished(),
                    // A parent gone from the stream has nothing left to read.
                    None => !listed_ids.contains(parent.as_str()),
                }
            });
            if !parents_done {
                continue;
            }
            let lease = Lease::new(stream, &p.id, p.parents.clone(), start_name(self.opts.from));
            self.count("PutItem");
            match self.table.create(&lease).await {
                Ok(()) => created = true,
                Err(e) => {
                    tracing::warn!(stream, shard = %p.id, error = %e, "cannot create the lease")
                }
            }
        }
        for l in leases.iter().filter(|l| l.is_finished()) {
            if !listed_ids.contains(l.shard.as_str()) {
                self.count("DeleteItem");
                if let Err(e) = self.table.delete_finished(stream, &l.shard).await {
                    tracing::debug!(stream, shard = %l.shard, error = %e, "cannot delete a finished lease");
                }
            }
        }
        if created {
            self.count("Scan");
            leases = self.table.scan(Some(stream)).await.map_err(|e| {
                tracing::warn!(stream, error = %e, "cannot read the lease table");
                None
            })?;
        }
        Ok(leases)
    }

    /// Takes the leases this round's decision names.
    async fn balance(
        &self,
        leases: &[Lease],
        observed: &Observed,
        held: &mut BTreeMap<String, Held>,
    ) {
        let stream = self.stream();
        let now = Instant::now().into_std();
        let mine: BTreeSet<String> = held.keys().cloned().collect();
        let choice = choose(leases, &self.lease.worker, &mine, |l| {
            observed.expired(l, now, self.lease.duration)
        });
        let wanted = choice
            .take
            .iter()
            .map(|s| (s, false))
            .chain(choice.steal.iter().map(|s| (s, true)));
        for (shard, stolen) in wanted {
            let Some(lease) = leases.iter().find(|l| &l.shard == shard) else {
                continue;
            };
            self.count("UpdateItem");
            let sent = Instant::now();
            match self.table.take(lease, &self.lease.worker, stolen).await {
                Ok(counter) => {
                    tracing::info!(stream, shard = %shard, counter, stolen,
                        from = lease.owner.as_deref().unwrap_or("nobody"), "took the lease");
                    self.pipeline.metrics().record_lease_taken(stream, stolen);
                    let (stop, _) = watch::channel(false);
                    held.insert(
                        shard.clone(),
                        Held {
                            counter,
                            hold: Arc::new(Hold::new(counter, sent + self.lease.held_for())),
                            stop,
                            task: None,
                            stolen,
                        },
                    );
                }
                Err(TableError::Changed) => {
                    tracing::debug!(stream, shard = %shard, "another worker took the lease first");
                }
                Err(e) => {
                    tracing::warn!(stream, shard = %shard, error = %e, "cannot take the lease")
                }
            }
        }
    }

    /// Fences each newly taken shard in the online store and starts its
    /// reader.
    async fn start_readers(&self, held: &mut BTreeMap<String, Held>, read: &mut BTreeSet<String>) {
        let stream = self.stream();
        let mut dropped = Vec::new();
        for (shard, h) in held.iter_mut().filter(|(_, h)| h.task.is_none()) {
            if h.hold.is_lost() {
                dropped.push(shard.clone());
                continue;
            }
            match self.fence(shard, h).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(()) => {
                    dropped.push(shard.clone());
                    continue;
                }
            }
            let reader = PartitionReader::new(
                self.consumer.clone(),
                shard,
                self.pipeline.clone(),
                &self.opts,
                h.stop.subscribe(),
                Some(h.hold.clone()),
            );
            tracing::info!(stream, shard = %shard, token = h.hold.token(), stolen = h.stolen, "reading shard");
            h.task = Some(tokio::spawn(reader.run()));
            read.insert(shard.clone());
        }
        for shard in dropped {
            held.remove(&shard);
            self.pipeline.metrics().record_lease_lost(stream);
        }
    }

    /// Fences `shard` with the lease's counter. `Ok(false)`: the store is
    /// unreachable, try next round; `Err(())`: the lease is lost.
    async fn fence(&self, shard: &str, h: &mut Held) -> Result<bool, ()> {
        let stream = self.stream();
        let pipeline = self.pipeline.clone();
        let (s, token) = (shard.to_owned(), h.hold.token());
        let fenced = tokio::task::spawn_blocking(move || {
            pipeline
                .store()
                .online_store()
                .fence(pipeline.consumer(), stream, &s, token)
        })
        .await;
        match fenced {
            Ok(Ok(())) => Ok(true),
            Ok(Err(crate::online_store::Error::Fenced {
                current: Some(current),
                ..
            })) => {
                // The store has seen a higher token than the table: the
                // table was made anew. Raise this lease's counter above it
                // and fence again next round.
                self.count("UpdateItem");
                match self
                    .table
                    .raise(stream, shard, &self.lease.worker, h.counter, current)
                    .await
                {
                    Ok(counter) => {
                        tracing::warn!(
                            stream,
                            shard,
                            counter,
                            store = current,
                            "the online store had seen a higher lease counter than the table holds; raised it"
                        );
                        h.counter = counter;
                        h.hold = Arc::new(Hold::new(counter, Instant::now()));
                        Ok(false)
                    }
                    Err(_) => Err(()),
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(stream, shard, error = %e, "cannot fence the shard in the online store; trying again next round");
                Ok(false)
            }
            Err(_) => Ok(false),
        }
    }

    /// Records a shard read to its end, and frees its lease.
    async fn finish(&self, shard: &str, h: &Held) {
        let stream = self.stream();
        self.count("UpdateItem");
        match self
            .table
            .finish(stream, shard, &self.lease.worker, h.counter)
            .await
        {
            Ok(_) => tracing::info!(stream, shard, "shard finished; its children may be leased"),
            // Whoever holds it now finds the store's checkpoint finished and
            // records the end itself.
            Err(e) => tracing::warn!(stream, shard, error = %e, "cannot record the shard's end"),
        }
    }

    /// Stops every reader (each flushes and checkpoints), renewing the
    /// leases meanwhile, then releases them.
    async fn shut_down(&self, mut held: BTreeMap<String, Held>) {
        let stream = self.stream();
        for h in held.values() {
            let _ = h.stop.send(true);
        }
        let mut ends: BTreeMap<String, End> = BTreeMap::new();
        loop {
            let mut running = false;
            for (shard, h) in held.iter_mut() {
                match &h.task {
                    Some(t) if t.is_finished() => {
                        if let Some(t) = h.task.take()
                            && let Ok(Ok(end)) = t.await
                        {
                            ends.insert(shard.clone(), end);
                        }
                    }
                    Some(_) => running = true,
                    None => {}
                }
            }
            if !running {
                break;
            }
            let next = Instant::now() + self.lease.renew_every();
            while Instant::now() < next
                && held
                    .values()
                    .any(|h| h.task.as_ref().is_some_and(|t| !t.is_finished()))
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if Instant::now() >= next {
                self.renew(&mut held).await;
            }
        }
        for (shard, h) in &held {
            if h.hold.is_lost() || ends.get(shard) == Some(&End::LeaseLost) {
                continue;
            }
            if ends.get(shard) == Some(&End::Finished) {
                self.finish(shard, h).await;
                continue;
            }
            let (checkpoint, _) = h.hold.progress();
            self.count("UpdateItem");
            match self
                .table
                .release(
                    stream,
                    shard,
                    &self.lease.worker,
                    h.counter,
                    checkpoint.as_deref(),
                )
                .await
            {
                Ok(_) => tracing::info!(stream, shard = %shard, "released the lease"),
                Err(e) => tracing::warn!(stream, shard = %shard, error = %e,
                    "cannot release the lease; another worker takes it once it expires"),
            }
        }
        self.pipeline.metrics().record_leases_held(stream, 0);
    }
}
