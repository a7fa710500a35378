//! Ingestion benchmarks for the driver-stats stream view. Run with
//! `scripts/bench` (a release build).
//!
//! - **pipeline**: the batch path alone (decode JSON -> view function ->
//!   newest per driver -> SQLite upsert + checkpoint in one transaction),
//!   fed from records held in memory: 1M records over 10k drivers, in
//!   batches of 10k, 20k and 50k records. `scripts/bench` runs it with
//!   `POLARS_MAX_THREADS=1`, and the CPU time is reported beside the wall
//!   time, so the figure is one core's. Beside each, a bare rusqlite loop
//!   doing only the same upserts: the limit the store's layout sets.
//! - **end to end** (with `--endpoint URL`, a Kinesis emulator): records put
//!   on a 4-shard stream while `ingest` runs, reporting the throughput and
//!   the lag between the last put and its commit. The emulator is the
//!   bottleneck here; the pipeline figure is what the code itself does.

#![allow(clippy::unwrap_used)] // test and benchmark code: a failure should stop loudly

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use feast_benches::cpu_time;
use feast_example_driver_stats as _;
use feast_runtime::chrono::{DateTime, SecondsFormat, Utc};
use feast_runtime::feature_store::FeatureStore;
use feast_runtime::ingest::IngestOptions;
use feast_runtime::ingest::kinesis;
use feast_runtime::ingest::metrics::Metrics;
use feast_runtime::ingest::pipeline::Writes;
use feast_runtime::ingest::pipeline::{Pipeline, RawRecord};

const DRIVERS: u64 = 10_000;
const RECORDS: usize = 1_000_000;
/// Batch sizes measured: one full GetRecords response, two (`ingest`'s
/// default `--batch-size`), and five.
const BATCHES: [usize; 3] = [10_000, 20_000, 50_000];
/// The batch size the target is judged at: `ingest`'s default.
const DEFAULT_BATCH: usize = 20_000;
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

/// One generated event: driver, conv_rate, acc_rate, event time (ms after
/// 2025-01-01).
#[derive(Debug, Clone, Copy)]
struct Event {
    driver: i64,
    conv_rate: f64,
    acc_rate: f64,
    ms: i64,
}

/// Driver-stats events: driver ids drawn over `DRIVERS`, event times one
/// millisecond apart.
fn events(n: usize, first: usize) -> Vec<Event> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ first as u64;
    (first..first + n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Event {
                driver: 1001 + (x % DRIVERS) as i64,
                // Six decimals, as the JSON carries them.
                conv_rate: ((x >> 11) % 1_000_000) as f64 / 1e6,
                acc_rate: ((x >> 31) % 1_000_000) as f64 / 1e6,
                ms: i as i64,
            }
        })
        .collect()
}

/// The JSON record a producer sends for an event.
fn json(e: &Event) -> Vec<u8> {
    let start: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap();
    let t = start + feast_runtime::chrono::Duration::milliseconds(e.ms);
    let ts = t.to_rfc3339_opts(SecondsFormat::Millis, true);
    format!(
        r#"{{"driver_id":{},"event_timestamp":"{ts}","conv_rate":{:.6},"acc_rate":{:.6},"created":"{ts}"}}"#,
        e.driver, e.conv_rate, e.acc_rate,
    )
    .into_bytes()
}

fn repo_dir() -> PathBuf {
    feast_benches::sqlite_repo("ingest")
}

fn open(dir: &Path) -> Arc<FeatureStore> {
    let store = FeatureStore::open(dir).unwrap();
    store.update_infra().unwrap();
    Arc::new(store)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pipeline_bench() -> bool {
    let input = events(RECORDS, 0);
    let raw: Vec<RawRecord> = input
        .iter()
        .enumerate()
        .map(|(i, e)| RawRecord {
            sequence_number: format!("{:056}", i + 1),
            data: json(e),
        })
        .collect();
    let bytes: usize = raw.iter().map(|r| r.data.len()).sum();
    println!(
        "feast-rs ingestion benchmarks: the pipeline on {RECORDS} records ({:.0} MB of JSON) over {DRIVERS} drivers; median of {RUNS} runs; POLARS_MAX_THREADS={}",
        bytes as f64 / 1e6,
        std::env::var("POLARS_MAX_THREADS").unwrap_or_else(|_| "(all cores)".into())
    );
    let mut default_met = false;
    for batch in BATCHES {
        let (mut rates, mut cpu_rates, mut rows) = (Vec::new(), Vec::new(), 0);
        for _ in 0..RUNS {
            let (rate, cpu_rate, written) = pipeline_run(&raw, batch);
            rates.push(rate);
            cpu_rates.push(cpu_rate);
            rows = written;
        }
        let (rate, cpu_rate) = (median(rates), median(cpu_rates));
        let bare = median((0..RUNS).map(|_| bare_sqlite_run(&input, batch)).collect());
        let ok = rate >= TARGET;
        if batch == DEFAULT_BATCH {
            default_met = ok;
        }
        let default = if batch == DEFAULT_BATCH {
            " (default)"
        } else {
            ""
        };
        println!(
            "{:<46} {:<36} target {:<18} {}",
            format!("pipeline, batches of {batch}{default}"),
            format!("{rate:.0} records/s ({cpu_rate:.0}/CPU-s)"),
            ">= 300k records/s",
            if ok { "met" } else { "MISSED" }
        );
        println!(
            "  {} feature rows per batch ({:.2} SQLite upserts per record); a bare rusqlite loop doing only those upserts: {bare:.0} records/s",
            rows / RECORDS.div_ceil(batch),
            (rows * 2) as f64 / RECORDS as f64,
        );
    }
    default_met
}

/// One pass of every record through the pipeline in batches of `batch`:
/// (records/s of wall time, records per CPU-second, feature rows written).
fn pipeline_run(raw: &[RawRecord], batch: usize) -> (f64, f64, usize) {
    let dir = repo_dir();
    let store = open(&dir);
    let source = store.registry().data_source("driver_stats_stream").unwrap();
    let views: Vec<_> = store
        .registry()
        .feature_views()
        // The stateless views: windowed ones have their own benchmark.
        .filter(|v| std::ptr::eq(v.source, source) && !v.is_aggregated())
        .collect();
    let pipeline = Pipeline::new(
        store.clone(),
        source,
        views,
        Writes::OnlineOnly,
        Arc::new(Metrics::default()),
    );
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let mut rows = 0;
    for chunk in raw.chunks(batch) {
        let out = pipeline
            .process("driver_stats", "shardId-000000000000", chunk, false, 0)
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
    assert_eq!(committed.records, raw.len() as u64);
    drop(pipeline);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    (
        raw.len() as f64 / wall.as_secs_f64(),
        raw.len() as f64 / cpu.as_secs_f64().max(1e-9),
        rows,
    )
}

/// The limit reference: only the SQLite work of the pipeline (the newest
/// event per driver of each batch, upserted with the newer-wins condition
/// as two feature rows, plus the checkpoint row, one transaction a batch),
/// with keys and values encoded beforehand. In records/s.
fn bare_sqlite_run(events: &[Event], batch: usize) -> f64 {
    use feast_runtime::definition::JoinKeyValue;
    use feast_runtime::definition::{Value, serialize_entity_key};
    use feast_runtime::online_store::sqlite::value_text;
    type Row = (Vec<u8>, [(&'static str, Vec<u8>, Option<String>); 2], i64);
    let batches: Vec<Vec<Row>> = events
        .chunks(batch)
        .map(|chunk| {
            let mut newest: std::collections::HashMap<i64, &Event> = Default::default();
            for e in chunk {
                newest.insert(e.driver, e);
            }
            let mut rows: Vec<Row> = newest
                .into_values()
                .map(|e| {
                    let mut key = Vec::new();
                    serialize_entity_key(&mut key, &[("driver_id", JoinKeyValue::Int64(e.driver))]);
                    let v = |name, x: f64| {
                        let val = Value::Float32((x * 100.0) as f32);
                        (name, val.to_bytes(), value_text(&val))
                    };
                    let ts = 1_735_689_600 + e.ms / 1000;
                    (
                        key,
                        [
                            v("conv_percentage", e.conv_rate),
                            v("acc_percentage", e.acc_rate),
                        ],
                        ts,
                    )
                })
                .collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            rows
        })
        .collect();
    let dir = repo_dir();
    let mut conn = rusqlite::Connection::open(dir.join("bare.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "cache_size", -200_000).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)
        .unwrap();
    conn.execute_batch(
        "CREATE TABLE t (entity_key BLOB, feature_name TEXT, value BLOB, value_text TEXT, vector_value BLOB, event_ts timestamp, created_ts timestamp, PRIMARY KEY(entity_key, feature_name)) WITHOUT ROWID;
         CREATE TABLE c (shard TEXT PRIMARY KEY, seq TEXT, records INTEGER)",
    )
    .unwrap();
    let started = Instant::now();
    for (i, rows) in batches.iter().enumerate() {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO t (entity_key, feature_name, value, value_text, event_ts, created_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, created_ts = excluded.created_ts
                     WHERE excluded.event_ts > t.event_ts OR (excluded.event_ts = t.event_ts AND coalesce(excluded.created_ts, -1) >= coalesce(t.created_ts, -1))",
                )
                .unwrap();
            for (key, features, ts) in rows {
                for (name, bytes, text) in features {
                    stmt.execute(rusqlite::params![key, name, bytes, text, ts, ts])
                        .unwrap();
                }
            }
            tx.execute(
                "INSERT INTO c VALUES ('s', ?1, ?2) ON CONFLICT(shard) DO UPDATE SET seq = excluded.seq, records = c.records + excluded.records",
                rusqlite::params![format!("{:056}", (i + 1) * batch), batch as i64],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let rate = events.len() as f64 / started.elapsed().as_secs_f64();
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
    rate
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
        let client = kinesis::connect(&kinesis::Endpoint::new(
            "us-east-1",
            Some(endpoint.to_owned()),
            None,
        ))
        .await
        .unwrap();
        kinesis::ensure_stream(&client, "driver_stats", SHARDS).await.unwrap();
        let metrics = Arc::new(Metrics::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let opts = IngestOptions {
            batch_size: 10_000,
            max_batch_latency: Duration::from_millis(200),
            endpoint_url: Some(endpoint.to_owned()),
            ..IngestOptions::default()
        };
        let ingest = tokio::spawn(feast_runtime::ingest::ingest(store.clone(), opts, metrics.clone(), stop_rx));
        let started = Instant::now();
        let data: Vec<(String, Vec<u8>)> = events(N, RECORDS)
            .iter()
            .map(|e| (e.driver.to_string(), json(e)))
            .collect();
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
