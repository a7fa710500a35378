//! Several `ingest` workers sharing one stream through shard leases, as
//! users run them: the feature repo binary with `--lease-table`, a real
//! Kinesis emulator (kinesalite), a real DynamoDB emulator (dynalite), and
//! Redis as the online store. A watcher samples the stores all along and
//! counts what must never happen: a checkpoint moving back (in Redis or in
//! the lease table), a write with an older lease's token landing after a
//! newer one's, an online value replaced by an older one, a child shard
//! leased before its parents finished.
//!
//! The scenarios run one at a time (three worker processes on two cores
//! each, with lease timings under test).

#![allow(clippy::unwrap_used)] // test code: a failure should stop loudly

#[path = "../ingest/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use feast_example_driver_stats as _; // the example's definitions, for the store-level test
use feast_runtime::chrono::{DateTime, Utc};
use feast_runtime::definition::{JoinKeyValue, serialize_entity_key};
use feast_runtime::online_store::sequence_after;
use feast_tests::fault_proxy::{Fault, FaultProxy};
use feast_tests::kinesis::{Emulator, Kinesis};
use feast_tests::redis::RedisServer;
use support::{Rec, Repo, newest_per_driver, wait_exit};

const STREAM: &str = "driver_stats";
const PROJECT: &str = "driver_stats";
const VIEW: &str = "driver_hourly_stats_stream";
const OFFLINE: &str = "data/driver_stats.parquet";
const TABLE: &str = "driver_stats_leases";
/// The lease duration the workers run with, in seconds.
const LEASE_S: u64 = 4;
const LEASE: Duration = Duration::from_secs(LEASE_S);
/// How long a scenario's set-up may take to balance (the bounds under test
/// are two lease durations, asserted where they are measured).
const SETTLE: Duration = Duration::from_secs(4 * LEASE_S);
/// Records a worker writes in one batch at most.
const BATCH: u64 = 100;
/// Drivers per round of records.
const DRIVERS: i64 = 40;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The event time of round 0: an hour ago (within the views' ttl), on a
/// whole minute.
fn base() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let now = feast_runtime::chrono::Utc::now().timestamp();
        now - 3600 - now.rem_euclid(60)
    })
}

/// Round `round` of records: one per driver, event time `base() + round`,
/// so the newest value per driver is the last round's.
fn round(round: usize) -> Vec<Rec> {
    (0..DRIVERS)
        .map(|d| Rec {
            driver: 1001 + d,
            event_s: base() + round as i64,
            created_s: base() + round as i64,
            conv_rate: (round as f64) / 1000.0 + (d as f64) / 1e7,
            id: 1 + (round * DRIVERS as usize + d as usize) as u32,
        })
        .collect()
}

/// Puts rounds of records on the stream from a thread, until stopped.
struct Producer {
    stop: Arc<AtomicBool>,
    put: Arc<Mutex<Vec<Rec>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Producer {
    /// Rounds from `first`, one every `every`.
    fn start(endpoint: &str, first: usize, every: Duration) -> Producer {
        let stop = Arc::new(AtomicBool::new(false));
        let put = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, put, endpoint) = (stop.clone(), put.clone(), endpoint.to_owned());
            std::thread::spawn(move || {
                let kinesis = Kinesis::new(&endpoint);
                let mut r = first;
                while !stop.load(Ordering::SeqCst) {
                    let records = round(r);
                    let entries: Vec<(String, Vec<u8>)> = records.iter().map(Rec::entry).collect();
                    kinesis.put(STREAM, &entries);
                    put.lock().unwrap().extend(records);
                    r += 1;
                    std::thread::sleep(every);
                }
            })
        };
        Producer {
            stop,
            put,
            thread: Some(thread),
        }
    }

    /// Stops, and returns the records put.
    fn finish(mut self) -> Vec<Rec> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.put.lock().unwrap())
    }
}

/// One shard's lease, as `leases --json` prints it.
#[derive(Debug, Clone, PartialEq)]
struct LeaseRow {
    shard: String,
    owner: Option<String>,
    counter: u64,
    checkpoint: String,
    parents: Vec<String>,
}

/// One shard's checkpoint in Redis.
#[derive(Debug, Clone, Default, PartialEq)]
struct CheckpointRow {
    sequence_number: String,
    records: u64,
    finished: bool,
    /// The highest fencing token the shard has seen.
    lease: u64,
    /// The token of the last write that committed.
    written_by: u64,
}

/// What the watcher counted.
#[derive(Debug, Default, Clone)]
struct Watched {
    /// A Redis checkpoint whose sequence number went down.
    checkpoint_backwards: Vec<String>,
    /// A commit with a lower token than one committed before it.
    stale_writes: Vec<String>,
    /// An online value replaced by an older event.
    regressions: Vec<String>,
    /// A lease-table checkpoint that went down.
    lease_backwards: Vec<String>,
    /// A child shard leased while a parent's lease was not at SHARD_END.
    child_before_parent: Vec<String>,
    /// Lease-table samples: (when, leases).
    samples: Vec<(Instant, Vec<LeaseRow>)>,
}

/// Kinesis, DynamoDB (behind a fault proxy), Redis, the example repo, and
/// its workers.
struct Cluster {
    _kinesalite: Emulator,
    dynalite: Emulator,
    proxy: FaultProxy,
    kinesis: Kinesis,
    redis: RedisServer,
    repo: Repo,
    workers: BTreeMap<String, Child>,
}

impl Cluster {
    fn start(shards: i32) -> Cluster {
        let kinesalite = Emulator::start();
        let dynalite = Emulator::dynalite();
        let proxy = FaultProxy::start(dynalite.port());
        let kinesis = Kinesis::new(&kinesalite.endpoint());
        kinesis.create_stream(STREAM, shards);
        let redis = RedisServer::start();
        let mut repo = Repo::with_config(
            &feast_tests::example_redis_config(PROJECT, &redis.connection_string()),
            support::EXAMPLE,
            &kinesalite.endpoint(),
        );
        repo.env
            .push(("AWS_ENDPOINT_URL_DYNAMODB", proxy.endpoint()));
        Cluster {
            _kinesalite: kinesalite,
            dynalite,
            proxy,
            kinesis,
            redis,
            repo,
            workers: BTreeMap::new(),
        }
    }

    fn endpoint(&self) -> String {
        self.repo.endpoint.clone()
    }

    /// Puts rounds `rounds` before any worker runs.
    fn backlog(&self, rounds: std::ops::Range<usize>) -> Vec<Rec> {
        let mut all = Vec::new();
        for r in rounds {
            let records = round(r);
            let entries: Vec<(String, Vec<u8>)> = records.iter().map(Rec::entry).collect();
            self.kinesis.put(STREAM, &entries);
            all.extend(records);
        }
        all
    }

    /// Deletes the lease table under the workers (straight at dynalite).
    fn drop_lease_table(&self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "test", "test", None, None, "tests",
                ))
                .endpoint_url(self.dynalite.endpoint())
                .load()
                .await;
            aws_sdk_dynamodb::Client::new(&shared)
                .delete_table()
                .table_name(TABLE)
                .send()
                .await
                .unwrap();
        });
    }

    fn log(&self, name: &str) -> std::path::PathBuf {
        self.repo.path().join(format!("{name}.log"))
    }

    /// Starts worker `name`.
    fn spawn(&mut self, name: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(name))
            .unwrap();
        let child = self
            .repo
            .command(&[
                "ingest",
                "--lease-table",
                TABLE,
                "--lease-duration-secs",
                &LEASE_S.to_string(),
                "--worker-id",
                name,
                "--batch-size",
                &BATCH.to_string(),
                "--max-batch-latency-ms",
                "100",
                "--shard-discovery-interval-secs",
                "1",
            ])
            .env("RUST_LOG", "warn,feast_runtime::ingest::lease=info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        assert!(self.workers.insert(name.to_owned(), child).is_none());
    }

    fn signal(&self, name: &str, signal: &str) {
        let pid = self.workers[name].id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// SIGTERM, then the exit: the worker's `ingested N records`.
    fn stop(&mut self, name: &str) -> u64 {
        self.signal(name, "-TERM");
        let child = self.workers.remove(name).unwrap();
        let (code, _, _) = wait_exit(child, Duration::from_secs(30));
        let log = std::fs::read_to_string(self.log(name)).unwrap();
        assert_eq!(code, Some(0), "worker {name}:\n{log}");
        support::ingested(
            log.lines()
                .rev()
                .find(|l| l.starts_with("ingested "))
                .unwrap_or_else(|| panic!("no summary from {name}:\n{log}")),
        )
    }

    /// kill -9.
    fn kill(&mut self, name: &str) {
        let mut child = self.workers.remove(name).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Asserts no two takes of a lease got the same counter: the table let
    /// one worker at a time own each lease (from every worker's log). A
    /// table dropped at `dropped` starts its counters again: takes before
    /// and after are told apart by the log lines' times.
    fn assert_takes_exclusive(&self) {
        self.assert_takes_exclusive_around(None);
    }

    fn assert_takes_exclusive_around(&self, dropped: Option<DateTime<Utc>>) {
        let mut takes: BTreeMap<(String, String, bool), String> = BTreeMap::new();
        let field = |line: &str, name: &str| -> String {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned()
        };
        let mut n = 0;
        for entry in std::fs::read_dir(self.repo.path()).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "log") {
                continue;
            }
            let worker = path.file_stem().unwrap().to_string_lossy().into_owned();
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if !line.contains("took the lease") {
                    continue;
                }
                n += 1;
                let at: Option<DateTime<Utc>> =
                    line.split_whitespace().next().and_then(|t| t.parse().ok());
                let after = dropped.is_some_and(|d| at.is_some_and(|t| t > d));
                let key = (field(line, "shard"), field(line, "counter"), after);
                if let Some(other) = takes.insert(key.clone(), worker.clone()) {
                    panic!("{key:?} taken by both {other} and {worker}");
                }
            }
        }
        assert!(n > 0, "no lease was taken");
    }

    fn worker_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log(name)).unwrap_or_default()
    }

    /// The lease table, through `leases --json` (empty while it cannot be
    /// read).
    fn leases(&self) -> Vec<LeaseRow> {
        self.lease_reader().read().unwrap_or_default()
    }

    fn lease_reader(&self) -> LeaseReader {
        LeaseReader {
            bin: self.repo.bin,
            dir: self.repo.path().to_owned(),
            env: feast_tests::kinesis::aws_env(&self.repo.endpoint)
                .into_iter()
                .chain(self.repo.env.clone())
                .collect(),
        }
    }

    /// Owner -> leases held, over the shards not finished.
    fn loads(leases: &[LeaseRow]) -> BTreeMap<String, usize> {
        let mut loads = BTreeMap::new();
        for l in leases.iter().filter(|l| l.checkpoint != "SHARD_END") {
            if let Some(o) = &l.owner {
                *loads.entry(o.clone()).or_default() += 1;
            }
        }
        loads
    }

    /// Waits until `ok` holds for the lease table; how long it took.
    fn wait_leases(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&[LeaseRow]) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let leases = self.leases();
            if ok(&leases) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "{what}: not within {timeout:?}; leases: {leases:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Records committed over every shard (the Redis checkpoints).
    fn committed(&self) -> u64 {
        checkpoints(&mut self.redis.client())
            .values()
            .map(|c| c.records)
            .sum()
    }

    fn wait_committed(&self, n: u64, timeout: Duration) {
        let start = Instant::now();
        loop {
            let got = self.committed();
            if got >= n {
                assert_eq!(got, n, "more records committed than were put");
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "only {got} of {n} records committed after {timeout:?}; leases: {:#?}",
                self.leases()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts the online values are the newest record per driver (through
    /// `get-online`), and the offline log holds each record once.
    fn assert_ground_truth(&self, records: &[Rec]) {
        let want = newest_per_driver(records);
        let drivers: Vec<i64> = want.keys().copied().collect();
        let got = self.repo.served_conv_percentages(&drivers);
        let expected: Vec<Option<f32>> = want.values().map(|r| Some(r.conv_percentage())).collect();
        assert_eq!(got, expected, "online values");
        let all: Vec<&Rec> = records.iter().collect();
        self.repo.assert_offline_exactly(OFFLINE, &all);
    }

    /// The windowed view's tiles equal their recomputation from the offline
    /// log (which holds each record once): every event counted once.
    fn assert_windows_exact(&self) {
        let at = feast_runtime::chrono::DateTime::from_timestamp(base() + 1800, 0)
            .unwrap()
            .to_rfc3339();
        let r = self
            .repo
            .run(&["verify", "--views", "driver_trip_windows", "--at", &at]);
        assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
        assert!(
            r.stdout
                .contains(&format!("driver_trip_windows: {DRIVERS} entities agree")),
            "{}",
            r.stdout
        );
    }

    /// Samples the stores until the returned guard stops.
    fn watch(&self) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Watched::default()));
        let mut threads = Vec::new();
        {
            let (stop, seen) = (stop.clone(), seen.clone());
            let mut client = self.redis.client();
            threads.push(std::thread::spawn(move || {
                let mut last_cp: BTreeMap<String, CheckpointRow> = BTreeMap::new();
                let mut last_event: BTreeMap<i64, i64> = BTreeMap::new();
                while !stop.load(Ordering::SeqCst) {
                    // Redis goes with a failing test's cluster.
                    let (Ok(cps), Ok(events)) =
                        (try_checkpoints(&mut client), driver_events(&mut client))
                    else {
                        break;
                    };
                    let mut w = seen.lock().unwrap();
                    for (shard, cp) in &cps {
                        if let Some(prev) = last_cp.get(shard) {
                            if sequence_after(&prev.sequence_number, &cp.sequence_number) {
                                w.checkpoint_backwards
                                    .push(format!("{shard}: {prev:?} -> {cp:?}"));
                            }
                            if cp.written_by < prev.written_by {
                                w.stale_writes.push(format!("{shard}: {prev:?} -> {cp:?}"));
                            }
                        }
                    }
                    for (driver, event) in &events {
                        if last_event.get(driver).is_some_and(|prev| event < prev) {
                            w.regressions.push(format!(
                                "driver {driver}: {} -> {event}",
                                last_event[driver]
                            ));
                        }
                    }
                    drop(w);
                    last_cp = cps;
                    last_event.extend(events);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }));
        }
        {
            let (stop, seen) = (stop.clone(), seen.clone());
            let reader = self.lease_reader();
            threads.push(std::thread::spawn(move || {
                let mut last: BTreeMap<String, String> = BTreeMap::new();
                while !stop.load(Ordering::SeqCst) {
                    if let Some(leases) = reader.read() {
                        let mut w = seen.lock().unwrap();
                        let by_shard: BTreeMap<&str, &LeaseRow> =
                            leases.iter().map(|l| (l.shard.as_str(), l)).collect();
                        for l in &leases {
                            if let Some(prev) = last.get(&l.shard)
                                && lease_position(prev) > lease_position(&l.checkpoint)
                            {
                                w.lease_backwards
                                    .push(format!("{}: {prev} -> {}", l.shard, l.checkpoint));
                            }
                            for p in &l.parents {
                                if by_shard
                                    .get(p.as_str())
                                    .is_some_and(|p| p.checkpoint != "SHARD_END")
                                {
                                    w.child_before_parent
                                        .push(format!("{l:?} while {:?}", by_shard[p.as_str()]));
                                }
                            }
                        }
                        last = leases
                            .iter()
                            .map(|l| (l.shard.clone(), l.checkpoint.clone()))
                            .collect();
                        w.samples.push((Instant::now(), leases));
                    }
                    std::thread::sleep(Duration::from_millis(150));
                }
            }));
        }
        Watcher {
            stop,
            seen,
            threads,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.workers) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            // What each worker said, for the failure's report.
            let mut logs: Vec<_> = std::fs::read_dir(self.repo.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .collect();
            logs.sort();
            for log in logs {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!("--- {} (last 60 lines)", log.display());
                for l in &lines[lines.len().saturating_sub(60)..] {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// Reads the lease table through the binary's `leases --json`.
#[derive(Debug, Clone)]
struct LeaseReader {
    bin: &'static str,
    dir: std::path::PathBuf,
    env: Vec<(&'static str, String)>,
}

impl LeaseReader {
    /// `None` while the table cannot be read (not created yet, or the proxy
    /// failing calls).
    fn read(&self) -> Option<Vec<LeaseRow>> {
        let out = Command::new(self.bin)
            .args(["leases", "--lease-table", TABLE, "--json"])
            .current_dir(&self.dir)
            .env_remove("FEAST_REPO_PATH")
            .env("RUST_LOG", "error")
            .envs(self.env.iter().cloned())
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        let rows = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                LeaseRow {
                    shard: v["shard"].as_str().unwrap().to_owned(),
                    owner: v["owner"].as_str().map(str::to_owned),
                    counter: v["lease_counter"].as_u64().unwrap(),
                    checkpoint: v["checkpoint"].as_str().unwrap().to_owned(),
                    parents: v["parents"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_str().unwrap().to_owned())
                        .collect(),
                }
            })
            .collect();
        Some(rows)
    }
}

/// A lease checkpoint's place in its shard: start positions first, then
/// sequence numbers in order, SHARD_END last.
fn lease_position(checkpoint: &str) -> (u8, usize, String) {
    match checkpoint {
        "TRIM_HORIZON" | "LATEST" | "AT_TIMESTAMP" => (0, 0, String::new()),
        "SHARD_END" => (2, 0, String::new()),
        seq => (1, seq.len(), seq.to_owned()),
    }
}

/// Samples of the stores taken while a scenario runs.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Watched>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// Stops sampling; asserts nothing that must never happen did.
    fn finish(self) -> Watched {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        let w = self.seen.lock().unwrap().clone();
        for (what, found) in [
            ("checkpoints moved back", &w.checkpoint_backwards),
            (
                "a lost lease's write landed after the new owner's",
                &w.stale_writes,
            ),
            ("online values regressed", &w.regressions),
            ("lease checkpoints moved back", &w.lease_backwards),
            (
                "a child leased before its parents ended",
                &w.child_before_parent,
            ),
        ] {
            assert!(found.is_empty(), "{what}: {found:#?}");
        }
        assert!(
            w.samples.len() > 5,
            "too few lease samples: {}",
            w.samples.len()
        );
        w
    }
}

/// Every shard's checkpoint in Redis.
fn checkpoints(client: &mut redis::Connection) -> BTreeMap<String, CheckpointRow> {
    try_checkpoints(client).unwrap()
}

fn try_checkpoints(
    client: &mut redis::Connection,
) -> redis::RedisResult<BTreeMap<String, CheckpointRow>> {
    let prefix = format!("feast_rs:{PROJECT}:checkpoint:{PROJECT}:{STREAM}:");
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(client)?;
    keys.into_iter()
        .map(|k| {
            let h: BTreeMap<String, String> = redis::cmd("HGETALL").arg(&k).query(client)?;
            let n = |f: &str| h.get(f).and_then(|v| v.parse().ok()).unwrap_or(0);
            Ok((
                k[prefix.len()..].to_owned(),
                CheckpointRow {
                    sequence_number: h.get("sequence_number").cloned().unwrap_or_default(),
                    records: n("records"),
                    finished: h.get("finished").is_some_and(|f| f == "1"),
                    lease: n("lease"),
                    written_by: n("written_by"),
                },
            ))
        })
        .collect()
}

/// Each driver's stored event time (microseconds) in the stream view.
fn driver_events(client: &mut redis::Connection) -> redis::RedisResult<BTreeMap<i64, i64>> {
    let field = feast_runtime::online_store::redis::layout::created_field(VIEW);
    let mut pipe = redis::pipe();
    for d in 0..DRIVERS {
        let mut key = Vec::new();
        serialize_entity_key(&mut key, &[("driver_id", JoinKeyValue::Int64(1001 + d))]);
        key.extend_from_slice(PROJECT.as_bytes());
        pipe.cmd("HGET").arg(key).arg(&field);
    }
    let values: Vec<Option<String>> = pipe.query(client)?;
    Ok(values
        .into_iter()
        .enumerate()
        .filter_map(|(d, v)| {
            // `created@event`, microseconds.
            let event = v?.split_once('@')?.1.parse().ok()?;
            Some((1001 + d as i64, event))
        })
        .collect())
}

/// Three workers on an 8-shard stream: every shard owned by one of them
/// within two lease durations, loads within one; one killed with -9 mid
/// stream: its shards taken within two lease durations, and nothing lost
/// or applied twice.
#[test]
fn three_workers_share_eight_shards_and_take_over_from_a_killed_one() {
    let _serial = serial();
    let mut c = Cluster::start(8);
    let backlog = c.backlog(0..20);
    let watch = c.watch();
    for w in ["a", "b", "c"] {
        c.spawn(w);
    }
    let balanced = c.wait_leases("all 8 shards owned, loads within one", 2 * LEASE, |l| {
        let loads = Cluster::loads(l);
        l.len() == 8
            && l.iter().all(|l| l.owner.is_some())
            && loads.len() == 3
            && loads.values().max().unwrap() - loads.values().min().unwrap() <= 1
    });
    eprintln!("balanced in {balanced:?}");
    let producer = Producer::start(&c.endpoint(), 20, Duration::from_millis(100));
    c.wait_committed(backlog.len() as u64, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let had: Vec<String> = c
        .leases()
        .into_iter()
        .filter(|l| l.owner.as_deref() == Some("b"))
        .map(|l| l.shard)
        .collect();
    assert!(!had.is_empty());
    c.kill("b");
    let taken = c.wait_leases("the killed worker's shards taken", 2 * LEASE, |l| {
        l.len() == 8
            && l.iter()
                .all(|l| l.owner.is_some() && l.owner.as_deref() != Some("b"))
    });
    eprintln!(
        "the killed worker's {} shards taken in {taken:?}",
        had.len()
    );
    std::thread::sleep(Duration::from_secs(2));
    let live = producer.finish();
    let all: Vec<Rec> = backlog.into_iter().chain(live).collect();
    c.wait_committed(all.len() as u64, Duration::from_secs(90));
    let watched = watch.finish();
    c.assert_takes_exclusive();
    let loads = Cluster::loads(&watched.samples.last().unwrap().1);
    assert_eq!(loads.values().sum::<usize>(), 8, "{loads:?}");
    assert!(
        loads.values().max().unwrap() - loads.values().min().unwrap() <= 1,
        "{loads:?}"
    );
    c.assert_ground_truth(&all);
    c.assert_windows_exact();
    for w in ["a", "c"] {
        c.stop(w);
    }
}

/// A worker paused (SIGSTOP) past its lease: another takes its shards;
/// resumed (SIGCONT), it writes nothing after the new owner, no checkpoint
/// goes back, and the windowed sums count every event once.
#[test]
fn a_paused_worker_writes_nothing_after_its_leases_are_taken() {
    let _serial = serial();
    let mut c = Cluster::start(4);
    let watch = c.watch();
    c.spawn("a");
    c.spawn("b");
    c.wait_leases("both workers hold two shards", SETTLE, |l| {
        let loads = Cluster::loads(l);
        l.len() == 4 && loads.get("a") == Some(&2) && loads.get("b") == Some(&2)
    });
    let producer = Producer::start(&c.endpoint(), 0, Duration::from_millis(50));
    std::thread::sleep(Duration::from_secs(2));
    c.signal("a", "-STOP");
    let paused = Instant::now();
    let taken = c.wait_leases("the paused worker's shards taken", 3 * LEASE, |l| {
        l.iter().all(|l| l.owner.as_deref() == Some("b"))
    });
    eprintln!("taken {taken:?} after the pause");
    // The new owner writes for a while; then the zombie wakes up with a
    // batch in hand.
    std::thread::sleep(Duration::from_secs(2));
    c.signal("a", "-CONT");
    eprintln!("resumed after {:?}", paused.elapsed());
    std::thread::sleep(LEASE + LEASE / 2);
    let records = producer.finish();
    c.wait_committed(records.len() as u64, Duration::from_secs(90));
    let watched = watch.finish();
    c.assert_takes_exclusive();
    let log = c.worker_log("a");
    eprintln!(
        "the resumed worker: {} lease(s) found lost, {} batch(es) refused by the store; lease samples {}",
        log.matches("lease lost").count() + log.matches("taken by another worker").count(),
        log.matches("the store refused this worker's batch").count(),
        watched.samples.len()
    );
    assert!(
        log.contains("taken by another worker") || log.contains("lease lost"),
        "the resumed worker never noticed its leases were taken:\n{log}"
    );
    c.assert_ground_truth(&records);
    c.assert_windows_exact();
    c.stop("a");
    c.stop("b");
}

/// The online store refuses a write with a lost lease's token, rows and
/// checkpoint alike, once the new owner has fenced the shard.
#[test]
fn the_store_refuses_a_stale_lease_token() {
    use feast_runtime::online_store::{CheckpointUpdate, Error};
    let (repo, redis) = feast_tests::repo_on(feast_tests::Backend::Redis, PROJECT);
    let redis = redis.unwrap();
    let store = feast_runtime::FeatureStore::open(repo.path()).unwrap();
    let online = store.online_store();
    let cp = |seq: &'static str, fence| CheckpointUpdate {
        consumer: PROJECT,
        stream: STREAM,
        shard: "shardId-000000000000",
        sequence_number: Some(seq),
        finished: false,
        records: 1,
        watermarks: &[],
        fence: Some(fence),
    };
    online
        .fence(PROJECT, STREAM, "shardId-000000000000", 5)
        .unwrap();
    online.write_batches(&[], Some(&cp("100", 5))).unwrap();
    // A take must bring a token above the shard's: an equal one may be an
    // earlier owner's (a lease table made anew counts from 0 again).
    let again = online.fence(PROJECT, STREAM, "shardId-000000000000", 5);
    assert!(
        matches!(
            again,
            Err(Error::Fenced {
                token: 5,
                current: Some(5),
                ..
            })
        ),
        "{again:?}"
    );
    // A new owner fences with 7: the old owner's next commit is refused.
    online
        .fence(PROJECT, STREAM, "shardId-000000000000", 7)
        .unwrap();
    let refused = online.write_batches(&[], Some(&cp("200", 5)));
    assert!(
        matches!(refused, Err(Error::Fenced { token: 5, .. })),
        "{refused:?}"
    );
    // Its rows too: nothing of the batch lands.
    let view = store
        .registry()
        .feature_view("driver_hourly_stats")
        .unwrap();
    let now = Utc::now().timestamp();
    let rows = feast_runtime::online_store::OnlineBatch::from_frame(
        view,
        &feast_tests::stats_frame(&[(1001, now, Some(now), 0.5, 0.25, 3)]),
    )
    .unwrap();
    let refused = online.write_batches(&[(view, &rows)], Some(&cp("300", 5)));
    assert!(
        matches!(refused, Err(Error::Fenced { token: 5, .. })),
        "{refused:?}"
    );
    let mut key = Vec::new();
    serialize_entity_key(&mut key, &[("driver_id", JoinKeyValue::Int64(1001))]);
    let keys = [key];
    assert_eq!(online.read(view, &keys, &["conv_rate"]).unwrap(), [None]);
    let stale = online.fence(PROJECT, STREAM, "shardId-000000000000", 6);
    assert!(
        matches!(
            stale,
            Err(Error::Fenced {
                token: 6,
                current: Some(7),
                ..
            })
        ),
        "{stale:?}"
    );
    let got = online
        .checkpoint(PROJECT, STREAM, "shardId-000000000000")
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.sequence_number.as_deref(), got.records),
        (Some("100"), 1)
    );
    online.write_batches(&[], Some(&cp("200", 7))).unwrap();
    // The new owner's rows land.
    online
        .write_batches(&[(view, &rows)], Some(&cp("300", 7)))
        .unwrap();
    assert!(online.read(view, &keys, &["conv_rate"]).unwrap()[0].is_some());
    let row = checkpoints(&mut redis.client())["shardId-000000000000"].clone();
    assert_eq!(
        (row.sequence_number.as_str(), row.lease, row.written_by),
        ("300", 7, 7)
    );
}

/// Split and merge while three workers run: every shard is read, children
/// only after their parents, each driver's rounds in order.
#[test]
fn split_and_merge_while_three_workers_run() {
    let _serial = serial();
    let mut c = Cluster::start(2);
    let mut all = c.backlog(0..10);
    let watch = c.watch();
    for w in ["a", "b", "c"] {
        c.spawn(w);
    }
    c.wait_committed(all.len() as u64, Duration::from_secs(60));
    c.kinesis.split(STREAM, "shardId-000000000000");
    all.extend(c.backlog(10..15));
    c.kinesis
        .merge(STREAM, "shardId-000000000002", "shardId-000000000003");
    all.extend(c.backlog(15..25));
    c.wait_committed(all.len() as u64, Duration::from_secs(90));
    let open: BTreeSet<String> = c
        .kinesis
        .shards(STREAM)
        .into_iter()
        .filter(|s| s.open)
        .map(|s| s.id)
        .collect();
    c.wait_leases(
        "every open shard owned, the closed ones at SHARD_END",
        2 * LEASE,
        |l| {
            l.iter().all(|l| {
                if open.contains(&l.shard) {
                    l.owner.is_some()
                } else {
                    l.checkpoint == "SHARD_END"
                }
            }) && open.iter().all(|s| l.iter().any(|l| &l.shard == s))
        },
    );
    let watched = watch.finish();
    c.assert_takes_exclusive();
    assert!(
        watched
            .samples
            .iter()
            .any(|(_, l)| l.iter().any(|l| !l.parents.is_empty())),
        "no child shard was leased"
    );
    c.assert_ground_truth(&all);
    c.assert_windows_exact();
    for w in ["a", "b", "c"] {
        c.stop(w);
    }
}

/// One worker, then three, then one again, records flowing all along.
#[test]
fn scale_one_to_three_to_one_under_load() {
    let _serial = serial();
    let mut c = Cluster::start(6);
    let watch = c.watch();
    c.spawn("a");
    c.wait_leases("one worker holds all six", SETTLE, |l| {
        l.len() == 6 && l.iter().all(|l| l.owner.as_deref() == Some("a"))
    });
    let producer = Producer::start(&c.endpoint(), 0, Duration::from_millis(100));
    std::thread::sleep(Duration::from_secs(2));
    c.spawn("b");
    c.spawn("c");
    let t = c.wait_leases("three workers hold two each", 4 * LEASE, |l| {
        let loads = Cluster::loads(l);
        loads.len() == 3 && loads.values().all(|n| *n == 2)
    });
    eprintln!("scaled out in {t:?}");
    let ingested_b = c.stop("b");
    let ingested_c = c.stop("c");
    let t = c.wait_leases("the one left holds all six", 2 * LEASE, |l| {
        l.iter().all(|l| l.owner.as_deref() == Some("a"))
    });
    eprintln!(
        "scaled in {t:?} after the two stopped (they committed {ingested_b} and {ingested_c})"
    );
    std::thread::sleep(Duration::from_secs(2));
    let records = producer.finish();
    c.wait_committed(records.len() as u64, Duration::from_secs(90));
    watch.finish();
    c.assert_takes_exclusive();
    c.assert_ground_truth(&records);
    c.assert_windows_exact();
    c.stop("a");
}

/// Every worker restarted in turn (SIGTERM, then a new process): the
/// leases are handed over with their checkpoints, so at most one batch per
/// shard is read twice.
#[test]
fn a_rolling_restart_replays_at_most_one_batch_per_shard() {
    let _serial = serial();
    let shards = 4;
    let mut c = Cluster::start(shards);
    let watch = c.watch();
    for w in ["a", "b", "c"] {
        c.spawn(w);
    }
    let producer = Producer::start(&c.endpoint(), 0, Duration::from_millis(100));
    c.wait_leases("every shard owned", SETTLE, |l| {
        l.len() == shards as usize && l.iter().all(|l| l.owner.is_some())
    });
    std::thread::sleep(Duration::from_secs(2));
    let mut ingested = 0;
    for (old, new) in [("a", "a2"), ("b", "b2"), ("c", "c2")] {
        ingested += c.stop(old);
        c.spawn(new);
        std::thread::sleep(Duration::from_secs(3));
    }
    let records = producer.finish();
    c.wait_committed(records.len() as u64, Duration::from_secs(90));
    for w in ["a2", "b2", "c2"] {
        ingested += c.stop(w);
    }
    watch.finish();
    c.assert_takes_exclusive();
    let replayed = ingested - records.len() as u64;
    eprintln!(
        "{} records, {ingested} ingested over the workers: {replayed} read twice",
        records.len()
    );
    assert!(
        replayed <= BATCH * shards as u64,
        "{replayed} records read twice (at most one batch of {BATCH} per shard)"
    );
    c.assert_ground_truth(&records);
}

/// The lease table throttled, then unreachable, each for longer than a
/// lease: the workers stop writing within a lease duration and keep their
/// leases (no lease changes hands for an outage alone), then resume.
#[test]
fn the_lease_table_throttled_or_unreachable_stops_writes_never_double_owns() {
    let _serial = serial();
    let mut c = Cluster::start(4);
    let watch = c.watch();
    c.spawn("a");
    c.spawn("b");
    c.wait_leases("both workers hold two shards", SETTLE, |l| {
        let loads = Cluster::loads(l);
        l.len() == 4 && loads.get("a") == Some(&2) && loads.get("b") == Some(&2)
    });
    let producer = Producer::start(&c.endpoint(), 0, Duration::from_millis(100));
    std::thread::sleep(Duration::from_secs(2));
    for fault in ["throttled", "unreachable"] {
        let before = c.leases();
        let owners = |l: &[LeaseRow]| -> BTreeMap<String, Option<String>> {
            l.iter()
                .map(|l| (l.shard.clone(), l.owner.clone()))
                .collect()
        };
        match fault {
            "throttled" => {
                for op in ["UpdateItem", "Scan", "PutItem", "DescribeTable"] {
                    c.proxy.fail_all(op, Fault::THROTTLED);
                }
            }
            _ => c.proxy.partition(),
        }
        std::thread::sleep(LEASE + Duration::from_millis(500));
        let frozen = checkpoints(&mut c.redis.client());
        std::thread::sleep(LEASE + LEASE / 2);
        let still = checkpoints(&mut c.redis.client());
        assert_eq!(
            frozen, still,
            "{fault}: a worker wrote more than a lease duration after its last renewal"
        );
        c.proxy.clear();
        let committed = c.committed();
        let start = Instant::now();
        while c.committed() == committed {
            assert!(
                start.elapsed() < 3 * LEASE,
                "{fault}: ingestion did not resume"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "{fault}: resumed {:?} after the lease table came back",
            start.elapsed()
        );
        assert_eq!(
            owners(&c.leases()),
            owners(&before),
            "{fault}: leases changed hands"
        );
    }
    let records = producer.finish();
    c.wait_committed(records.len() as u64, Duration::from_secs(90));
    watch.finish();
    c.assert_takes_exclusive();
    c.assert_ground_truth(&records);
    c.stop("a");
    c.stop("b");
}

/// The embedded SQLite store is refused with leases: it cannot fence the
/// writes of several processes.
#[test]
fn leases_refuse_the_embedded_store() {
    let kinesalite = Emulator::start();
    let repo = Repo::example(&kinesalite.endpoint());
    let r = repo.run(&["ingest", "--lease-table", TABLE]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("online_store type redis") && r.stderr.contains("embedded SQLite"),
        "{}",
        r.stderr
    );
}

/// A lease table nobody answers for: one line that says where and what to
/// set, after a few seconds of retries, not an endless loop.
#[test]
fn an_unreachable_lease_table_is_a_clear_error_at_start() {
    let kinesalite = Emulator::start();
    Kinesis::new(&kinesalite.endpoint()).create_stream(STREAM, 1);
    let redis = RedisServer::start();
    let mut repo = Repo::with_config(
        &feast_tests::example_redis_config(PROJECT, &redis.connection_string()),
        support::EXAMPLE,
        &kinesalite.endpoint(),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    repo.env
        .push(("AWS_ENDPOINT_URL_DYNAMODB", endpoint.clone()));
    let started = Instant::now();
    let r = repo.run(&["ingest", "--lease-table", TABLE]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("cannot reach DynamoDB at {endpoint}"))
            && r.stderr.contains("AWS_ENDPOINT_URL_DYNAMODB"),
        "{}",
        r.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// The lease table dropped while two workers run: they make it anew, take
/// the new leases (counters from 0), and raise each counter above the
/// token Redis last saw before writing; nothing is lost or written twice.
#[test]
fn a_dropped_lease_table_is_made_anew_and_the_fence_still_holds() {
    let _serial = serial();
    let mut c = Cluster::start(4);
    let watch = c.watch();
    c.spawn("a");
    c.spawn("b");
    c.wait_leases("both workers hold two shards", SETTLE, |l| {
        let loads = Cluster::loads(l);
        l.len() == 4 && loads.get("a") == Some(&2) && loads.get("b") == Some(&2)
    });
    let producer = Producer::start(&c.endpoint(), 0, Duration::from_millis(100));
    std::thread::sleep(Duration::from_secs(3));
    let tokens: BTreeMap<String, u64> = checkpoints(&mut c.redis.client())
        .into_iter()
        .map(|(shard, cp)| (shard, cp.lease))
        .collect();
    let dropped = Utc::now();
    c.drop_lease_table();
    let back = c.wait_leases("every shard leased again", 4 * LEASE, |l| {
        l.len() == 4 && l.iter().all(|l| l.owner.is_some())
    });
    eprintln!("leased again {back:?} after the table was dropped");
    let committed = c.committed();
    let start = Instant::now();
    while c.committed() == committed {
        assert!(start.elapsed() < 3 * LEASE, "ingestion did not resume");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let records = producer.finish();
    c.wait_committed(records.len() as u64, Duration::from_secs(90));
    watch.finish();
    c.assert_takes_exclusive_around(Some(dropped));
    // Every shard's token went on rising past what it was before the drop.
    for (shard, cp) in checkpoints(&mut c.redis.client()) {
        assert!(
            cp.lease > tokens[&shard],
            "{shard}: {} after {}",
            cp.lease,
            tokens[&shard]
        );
    }
    let logs = c.worker_log("a") + &c.worker_log("b");
    assert!(logs.contains("the lease table is gone"), "{logs}");
    assert!(logs.contains("raised it"), "{logs}");
    c.assert_ground_truth(&records);
    c.assert_windows_exact();
    c.stop("a");
    c.stop("b");
}
