//! Ingestion benchmarks for the driver-stats stream view. Run with
//! `scripts/bench` (a release build).
//!
//! - **pipeline**: the batch path alone (decode JSON -> view function ->
//!   newest per driver -> SQLite upsert + checkpoint in one transaction),
//!   fed from records held in memory: 1M records over 10k drivers, in
//!   batches. `scripts/bench` runs it with `POLARS_MAX_THREADS=1`, and the
//!   CPU time is reported beside the wall time, so the figure is one core's.
//! - **end to end** (with `--endpoint URL`, a Kinesis emulator): records put
//!   on a 4-shard stream while `ingest` runs, reporting the throughput and
//!   the lag between the last put and its commit. The emulator is the
//!   bottleneck here; the pipeline figure is what the code itself does.

#![allow(clippy::unwrap_used)] // test and benchmark code: a failure should stop loudly

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use feast_example_driver_stats as _;
use feast_runtime::chrono::{DateTime, SecondsFormat, Utc};
use feast_runtime::feature_store::{FeatureStore, PushMode};
use feast_runtime::ingest::kinesis::{self, IngestOptions};
use feast_runtime::ingest::metrics::Metrics;
use feast_runtime::ingest::pipeline::{Pipeline, RawRecord};

const DRIVERS: u64 = 10_000;
const RECORDS: usize = 1_000_000;
const BATCH: usize = 10_000;
const RUNS: usize = 3;
const TARGET: f64 = 300_000.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let endpoint = args
        .iter()
        .position(|a| a == "--endpoint")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let ok = pipeline_bench();
    if let Some(url) = endpoint {
        end_to_end(&url);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Driver-stats JSON records as a producer would send them: driver ids
/// cycling over `DRIVERS`, event times one millisecond apart.
fn records(n: usize, first: usize) -> Vec<(String, Vec<u8>)> {
    let start: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ first as u64;
    (first..first + n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let driver = 1001 + (x % DRIVERS);
            let t = start + feast_runtime::chrono::Duration::milliseconds(i as i64);
            let ts = t.to_rfc3339_opts(SecondsFormat::Millis, true);
            let json = format!(
                r#"{{"driver_id":{driver},"event_timestamp":"{ts}","conv_rate":{:.6},"acc_rate":{:.6},"created":"{ts}"}}"#,
                (x >> 11) as f64 / (1u64 << 53) as f64,
                (x >> 20) as f64 / (1u64 << 44) as f64,
            );
            (driver.to_string(), json.into_bytes())
        })
        .collect()
}

fn repo_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("feast-rs-bench-ingest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("feature_store.yaml"),
        "project: bench\nregistry: data/registry.json\nonline_store:\n  type: sqlite\n  path: data/online.db\n",
    )
    .unwrap();
    dir
}

/// User and system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn open(dir: &Path) -> Arc<FeatureStore> {
    let store = FeatureStore::open(dir).unwrap();
    store.update_infra().unwrap();
    Arc::new(store)
}

fn pipeline_bench() -> bool {
    let input = records(RECORDS, 0);
    let raw: Vec<RawRecord> = input
        .into_iter()
        .enumerate()
        .map(|(i, (_, data))| RawRecord {
            sequence_number: format!("{:056}", i + 1),
            data,
        })
        .collect();
    let bytes: usize = raw.iter().map(|r| r.data.len()).sum();
    println!(
        "feast-rs ingestion benchmarks: pipeline on {RECORDS} records ({:.0} MB of JSON) over {DRIVERS} drivers, batches of {BATCH}; median of {RUNS} runs; POLARS_MAX_THREADS={}",
        bytes as f64 / 1e6,
        std::env::var("POLARS_MAX_THREADS").unwrap_or_else(|_| "(all cores)".into())
    );
    let mut rates = Vec::new();
    let mut cpu_rates = Vec::new();
    for _ in 0..RUNS {
        let dir = repo_dir();
        let store = open(&dir);
        let source = store.registry().data_source("driver_stats_stream").unwrap();
        let views: Vec<_> = store
            .registry()
            .feature_views()
            .filter(|v| std::ptr::eq(v.source, source))
            .collect();
        let pipeline = Pipeline::new(
            store.clone(),
            source,
            views,
            PushMode::Online,
            Arc::new(Metrics::default()),
        );
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        let mut rows = 0;
        for batch in raw.chunks(BATCH) {
            let out = pipeline
                .process("driver_stats", "shardId-000000000000", batch, false, 0)
                .unwrap();
            assert_eq!(out.dead_lettered, 0);
            rows += out.rows_written;
        }
        let (wall, cpu) = (wall0.elapsed(), cpu_time() - cpu0);
        let committed = store
            .online_store()
            .checkpoint("bench", "driver_stats", "shardId-000000000000")
            .unwrap()
            .unwrap();
        assert_eq!(committed.records, RECORDS as u64);
        rates.push(RECORDS as f64 / wall.as_secs_f64());
        cpu_rates.push(RECORDS as f64 / cpu.as_secs_f64().max(1e-9));
        println!(
            "  run: {wall:.2?} wall, {cpu:.2?} CPU, {rows} feature rows written ({} per batch)",
            rows / RECORDS.div_ceil(BATCH)
        );
        drop(pipeline);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (rate, cpu_rate) = (median(rates), median(cpu_rates));
    let ok = rate >= TARGET;
    println!(
        "{:<46} {:<34} target {:<22} {}",
        "pipeline (decode -> view -> SQLite + checkpoint)",
        format!("{rate:.0} records/s ({cpu_rate:.0} per CPU-second)"),
        ">= 300k records/s",
        if ok { "met" } else { "MISSED" }
    );
    ok
}

fn end_to_end(endpoint: &str) {
    const N: usize = 200_000;
    const SHARDS: i32 = 4;
    let dir = repo_dir();
    let store = open(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = kinesis::client("us-east-1", Some(endpoint)).await;
        kinesis::ensure_stream(&client, "driver_stats", SHARDS).await.unwrap();
        let metrics = Arc::new(Metrics::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let opts = IngestOptions {
            batch_size: BATCH,
            max_batch_latency: Duration::from_millis(200),
            endpoint_url: Some(endpoint.to_owned()),
            ..IngestOptions::default()
        };
        let ingest = tokio::spawn(kinesis::ingest(store.clone(), opts, metrics.clone(), stop_rx));
        let started = Instant::now();
        let data = records(N, RECORDS);
        let put = kinesis::put_records(&client, "driver_stats", data).await.unwrap();
        assert_eq!(put, N);
        let put_done = started.elapsed();
        while metrics.totals().0 < N as u64 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let committed = started.elapsed();
        stop_tx.send(true).unwrap();
        ingest.await.unwrap().unwrap();
        println!(
            "{:<46} {:<34} (the emulator's own limit)",
            format!("end to end through kinesalite, {SHARDS} shards"),
            format!(
                "{:.0} records/s, lag {:.2?}",
                N as f64 / committed.as_secs_f64(),
                committed - put_done
            ),
        );
        println!(
            "  {N} records put while ingesting: puts took {put_done:.2?} ({:.0} records/s); the last was committed {:.2?} after it was put",
            N as f64 / put_done.as_secs_f64(),
            committed - put_done
        );
    });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
