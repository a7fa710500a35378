//! Shard leases, with the example binary's `ingest --lease-table` workers
//! (release build) on kinesalite, dynalite and Redis, all local. Run with
//! `scripts/bench leases`, from the repository's root.
//!
//! - **At rest**: three workers hold an 8-shard stream with nothing
//!   flowing; lease-table calls per second per worker, from each worker's
//!   `feast_ingest_lease_table_calls_total` over 30 s.
//! - **Takeover**: one of three workers killed with -9 (10 s leases, the
//!   default): the time until every shard it held is held by another, three
//!   times.
//! - **Throughput**: 200k records put on an 8-shard stream first, then 1, 2
//!   or 3 workers read them: records per second from the workers' start to
//!   the last commit (the Redis checkpoints' record counts).

#![allow(clippy::unwrap_used)] // benchmark code: a failure should stop loudly

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use feast_benches::Redis;
use feast_runtime::feature_store::FeatureStore;

const SHARDS: usize = 8;
const RECORDS: usize = 200_000;
const LEASE_S: u64 = 10;
const TABLE: &str = "bench_leases";

/// An emulator started by `scripts/{name} start`; killed when dropped.
struct Emulator {
    pid: String,
    port: u16,
}

impl Emulator {
    fn start(name: &str) -> Emulator {
        let out = Command::new("bash")
            .arg(format!("scripts/{name}"))
            .arg("start")
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "scripts/{name} start failed");
        let line = String::from_utf8(out.stdout).unwrap();
        let (pid, port) = line.trim().split_once(' ').unwrap();
        Emulator {
            pid: pid.to_owned(),
            port: port.parse().unwrap(),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

/// Kinesis, DynamoDB and Redis, and a repository of the example on them.
struct Local {
    bin: PathBuf,
    dir: PathBuf,
    _kinesalite: Emulator,
    _dynalite: Emulator,
    _redis: Redis,
    env: Vec<(&'static str, String)>,
    workers: Vec<(String, Child)>,
}

impl Local {
    fn start(bin: &Path, run: &str) -> Local {
        let kinesalite = Emulator::start("kinesalite");
        let dynalite = Emulator::start("dynalite");
        let redis = Redis::start();
        let dir = std::env::temp_dir().join(format!(
            "feast-rs-bench-leases-{run}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("feature_store.yaml"),
            format!(
                "project: driver_stats\nregistry: data/registry.db\nonline_store:\n  type: redis\n  connection_string: \"127.0.0.1:{}\"\noffline_store:\n  type: file\nkinesis:\n  lease_table: {TABLE}\n  lease_duration_seconds: {LEASE_S}\n",
                redis.1
            ),
        )
        .unwrap();
        let env = vec![
            (
                "AWS_ENDPOINT_URL_KINESIS",
                format!("http://127.0.0.1:{}", kinesalite.port),
            ),
            (
                "AWS_ENDPOINT_URL_DYNAMODB",
                format!("http://127.0.0.1:{}", dynalite.port),
            ),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "bench".into()),
            ("AWS_SECRET_ACCESS_KEY", "bench".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ];
        let local = Local {
            bin: bin.to_owned(),
            dir,
            _kinesalite: kinesalite,
            _dynalite: dynalite,
            _redis: redis,
            env,
            workers: Vec::new(),
        };
        local.run(&["apply"]);
        local
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .current_dir(&self.dir)
            .env_remove("FEAST_REPO_PATH")
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().cloned());
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn produce(&self, records: usize) {
        self.run(&[
            "produce",
            "--source",
            "driver_stats_stream",
            "--records",
            &records.to_string(),
            "--keys",
            "1000",
            "--shards",
            &SHARDS.to_string(),
        ]);
    }

    fn spawn(&mut self, name: &str) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log"))).unwrap();
        let child = self
            .command(&[
                "ingest",
                "--worker-id",
                name,
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.workers.push((name.to_owned(), child));
    }

    /// Kills worker `name` with SIGKILL.
    fn kill(&mut self, name: &str) {
        let i = self.workers.iter().position(|(n, _)| n == name).unwrap();
        let (_, mut child) = self.workers.remove(i);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Worker `name`'s metrics address, once it has printed it.
    fn metrics_addr(&self, name: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap();
            if let Some(addr) = log
                .lines()
                .find_map(|l| l.strip_prefix("serving Prometheus metrics at http://"))
            {
                return addr.trim_end_matches("/metrics").to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{name} serves no metrics:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Shard -> owner, from `leases --json`.
    fn owners(&self) -> Vec<(String, Option<String>)> {
        let out = self
            .command(&["leases", "--json"])
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        if !out.status.success() {
            return Vec::new();
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["shard"].as_str().unwrap().to_owned(),
                    v["owner"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    fn wait_owned(&self, ok: impl Fn(&[(String, Option<String>)]) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            if ok(&self.owners()) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "leases never settled: {:?}",
                self.owners()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Records committed over every shard.
    fn committed(&self, store: &FeatureStore) -> u64 {
        (0..SHARDS)
            .filter_map(|i| {
                store
                    .online_store()
                    .checkpoint("driver_stats", "driver_stats", &format!("shardId-{i:012}"))
                    .ok()
                    .flatten()
            })
            .map(|c| c.records)
            .sum()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.workers) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Lease-table calls a worker has made, by its metrics.
fn lease_calls(addr: &str) -> u64 {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    body.lines()
        .filter(|l| l.starts_with("feast_ingest_lease_table_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn three_balanced(o: &[(String, Option<String>)]) -> bool {
    let mut loads = std::collections::BTreeMap::new();
    for (_, owner) in o {
        if let Some(w) = owner {
            *loads.entry(w.clone()).or_insert(0) += 1;
        }
    }
    o.len() == SHARDS
        && o.iter().all(|(_, w)| w.is_some())
        && loads.len() == 3
        && loads.values().max().unwrap() - loads.values().min().unwrap() <= 1
}

fn at_rest(bin: &Path) {
    let mut local = Local::start(bin, "rest");
    local.produce(1_000);
    for w in ["a", "b", "c"] {
        local.spawn(w);
    }
    local.wait_owned(three_balanced);
    // Let the start-up calls (table check, first scans, takes) pass.
    std::thread::sleep(Duration::from_secs(LEASE_S));
    let addrs: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|w| local.metrics_addr(w))
        .collect();
    let before: Vec<u64> = addrs.iter().map(|a| lease_calls(a)).collect();
    let window = Duration::from_secs(30);
    std::thread::sleep(window);
    let after: Vec<u64> = addrs.iter().map(|a| lease_calls(a)).collect();
    let rates: Vec<String> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| format!("{:.2}", (a - b) as f64 / window.as_secs_f64()))
        .collect();
    println!(
        "{:<46} {} calls/s per worker (3 workers, {SHARDS} shards, {LEASE_S} s leases, over {window:?})",
        "lease-table calls at rest",
        rates.join(" / ")
    );
}

fn takeover(bin: &Path) {
    let mut local = Local::start(bin, "takeover");
    local.produce(1_000);
    for w in ["a", "b", "c"] {
        local.spawn(w);
    }
    local.wait_owned(three_balanced);
    let mut times = Vec::new();
    for round in 0..3 {
        // A fourth worker takes its share (two shards), then dies.
        let victim = format!("victim-{round}");
        local.spawn(&victim);
        let holds = |o: &[(String, Option<String>)]| {
            o.iter()
                .filter(|(_, w)| w.as_deref() == Some(victim.as_str()))
                .count()
        };
        local.wait_owned(|o| holds(o) == 2);
        // At a different point of the lease rounds each time.
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_millis();
        std::thread::sleep(Duration::from_millis(1000 + u64::from(jitter) * 3));
        local.kill(&victim);
        let t = local.wait_owned(|o| {
            o.len() == SHARDS && o.iter().all(|(_, w)| w.is_some()) && holds(o) == 0
        });
        println!("  kill -9 of a worker holding 2 shards: both taken after {t:.2?}");
        times.push(t);
    }
    times.sort();
    println!(
        "{:<46} median {:.2?}, max {:.2?} ({LEASE_S} s leases: taken after {LEASE_S} s unchanged, rounds every {:.1} s)",
        "takeover after kill -9",
        times[1],
        times[2],
        LEASE_S as f64 / 3.0
    );
}

/// The emulator's own limit: every shard read with GetRecords alone, one
/// task per shard, nothing decoded or written.
fn bare_reads(bin: &Path) {
    use feast_runtime::ingest::consumer::StreamConsumer;
    use feast_runtime::ingest::kinesis::KinesisConsumer;
    let local = Local::start(bin, "bare");
    local.produce(RECORDS);
    let endpoint = local.env[0].1.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (records, took) = rt.block_on(async {
        let opts = feast_runtime::ingest::IngestOptions {
            endpoint_url: Some(endpoint),
            ..Default::default()
        };
        let consumer = std::sync::Arc::new(
            KinesisConsumer::connect("driver_stats", "us-east-1", &opts)
                .await
                .unwrap(),
        );
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for p in consumer.list().await.unwrap() {
            let consumer = consumer.clone();
            tasks.spawn(async move {
                let mut cursor = consumer.open(&p.id, None).await.unwrap();
                let mut n = 0;
                loop {
                    let f = consumer
                        .read(&p.id, cursor, 10_000)
                        .await
                        .map_err(|(e, _)| e)
                        .unwrap();
                    n += f.records.len();
                    match f.next {
                        Some(next) if !(f.records.is_empty() && f.behind_ms == 0) => cursor = next,
                        _ => break n,
                    }
                }
            });
        }
        let mut total = 0;
        while let Some(n) = tasks.join_next().await {
            total += n.unwrap();
        }
        (total, started.elapsed())
    });
    assert_eq!(records, RECORDS);
    println!(
        "{:<46} {:.0} records/s (GetRecords alone, {SHARDS} shards, {took:.2?})",
        "kinesalite's limit on this machine",
        records as f64 / took.as_secs_f64()
    );
}

fn throughput(bin: &Path, workers: usize) -> f64 {
    let mut local = Local::start(bin, &format!("throughput-{workers}"));
    local.produce(RECORDS);
    let store = FeatureStore::open(&local.dir).unwrap();
    let started = Instant::now();
    for w in ["a", "b", "c"].iter().take(workers) {
        local.spawn(w);
    }
    while local.committed(&store) < RECORDS as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {RECORDS} committed",
            local.committed(&store)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rate = RECORDS as f64 / started.elapsed().as_secs_f64();
    println!(
        "{:<46} {rate:.0} records/s ({RECORDS} records on {SHARDS} shards, start to last commit in {:.2?})",
        format!("end to end, {workers} worker(s)"),
        started.elapsed()
    );
    rate
}

fn main() {
    let bin = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: bench-leases PATH/TO/driver-stats"),
    );
    println!("shard leases (scripts/bench leases): kinesalite, dynalite and Redis on this machine");
    at_rest(&bin);
    takeover(&bin);
    for workers in 1..=3 {
        throughput(&bin, workers);
    }
    bare_reads(&bin);
}
