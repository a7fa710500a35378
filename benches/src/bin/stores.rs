//! Store benchmarks on the driver-stats data, each figure printed next to its
//! target. Run with `scripts/bench` (a release build).
//!
//! - materialize 1M rows (10k drivers x 100 hours, 3 features);
//! - write_to_online_store of 100k rows, beside a bare rusqlite loop doing the
//!   same upserts;
//! - in-process online reads of 1 and 100 drivers x 3 features;
//! - historical retrieval of 100k entity rows over the 1M rows, with its peak
//!   memory measured in a child process.

#![allow(clippy::unwrap_used)] // test and benchmark code: a failure should stop loudly

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use feast_example_driver_stats::data;
use feast_runtime::chrono::{DateTime, Utc};
use feast_runtime::definition::JoinKeyValue;
use feast_runtime::definition::{Value, serialize_entity_key};
use feast_runtime::feature_store::{FeatureStore, Features};
use feast_runtime::offline_store;
use feast_runtime::online_store::sqlite::value_text;
use feast_runtime::polars::prelude::*;

const DRIVERS: usize = 10_000;
const HOURS: usize = 100;
const RUNS: usize = 5;

fn start() -> DateTime<Utc> {
    "2025-01-01T00:00:00Z".parse().expect("a valid time")
}

fn end() -> DateTime<Utc> {
    start() + feast_runtime::chrono::Duration::hours(HOURS as i64)
}

fn repo(dir: &Path, with_source: bool) -> FeatureStore {
    std::fs::write(
        dir.join("feature_store.yaml"),
        "project: bench\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n",
    )
    .expect("write config");
    if with_source {
        let df = data::driver_stats(DRIVERS, HOURS, start());
        offline_store::write_file(
            &dir.join("data/driver_stats.parquet/part-00000.parquet"),
            &df,
        )
        .expect("write source");
    }
    FeatureStore::open(dir).expect("open the store")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, figure: String, target: &str, ok: bool) {
    println!(
        "{name:<46} {figure:<28} target {target:<22} {}",
        if ok { "met" } else { "MISSED" }
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--historical-child") {
        return historical_child(Path::new(&args[2]));
    }
    let dir = tempfile_dir();
    let store = repo(&dir, true);
    println!(
        "feast-rs store benchmarks: {DRIVERS} drivers x {HOURS} hours = {} rows; median of {RUNS} runs",
        DRIVERS * HOURS
    );

    // materialize: 1M rows -> 10k entities x 3 features.
    let mut times = Vec::new();
    for _ in 0..RUNS {
        store.teardown().expect("teardown");
        let t = Instant::now();
        let stats = store
            .materialize(start(), end(), Some(&["driver_hourly_stats"]))
            .expect("materialize");
        times.push(t.elapsed());
        assert_eq!(stats.rows_read, DRIVERS * HOURS);
    }
    let m = median(times);
    report(
        "materialize 1M rows (3 features)",
        format!("{:.3} s", m.as_secs_f64()),
        "<= 0.2 s",
        m.as_secs_f64() <= 0.2,
    );

    // write_to_online_store: 100k rows of distinct drivers, into an empty table.
    let rows = data::driver_stats(100_000, 1, start());
    let mut ours = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..RUNS {
        store.teardown().expect("teardown");
        let t = Instant::now();
        store
            .write_to_online_store("driver_hourly_stats", &rows)
            .expect("write");
        ours.push(t.elapsed());

        bare.push(bare_rusqlite(&dir.join("data/bare.db"), &rows));
    }
    let (ours, bare) = (median(ours), median(bare));
    let rate = 100_000.0 / ours.as_secs_f64();
    report(
        "write_to_online_store 100k rows",
        format!("{rate:.0} rows/s"),
        ">= 150000 rows/s",
        rate >= 150_000.0,
    );
    let ratio = ours.as_secs_f64() / bare.as_secs_f64();
    report(
        "  vs bare rusqlite upsert loop",
        format!(
            "{:.0} rows/s, ratio {ratio:.2}",
            100_000.0 / bare.as_secs_f64()
        ),
        "ratio <= 1.5",
        ratio <= 1.5,
    );

    // Online reads, from the table just written (100k drivers).
    let now: DateTime<Utc> = start();
    let refs = [
        "driver_hourly_stats:conv_rate",
        "driver_hourly_stats:acc_rate",
        "driver_hourly_stats:avg_daily_trips",
    ];
    for (n, target_us) in [(1usize, 50.0), (100, 1000.0)] {
        let mut lat = Vec::with_capacity(20_000);
        let iterations = if n == 1 { 20_000 } else { 2_000 };
        for i in 0..iterations + 500 {
            let first = data::FIRST_DRIVER_ID + ((i * 7919) % (100_000 - n)) as i64;
            let keys: Vec<JoinKeyValue<'_>> = (0..n as i64)
                .map(|k| JoinKeyValue::Int64(first + k))
                .collect();
            let rows = [("driver_id", keys)];
            let t = Instant::now();
            let r = store
                .get_online_features_at(&Features::Refs(&refs), &rows, false, now)
                .expect("read");
            let e = t.elapsed();
            assert_eq!(r.columns[1].values.len(), n);
            if i >= 500 {
                lat.push(e);
            }
        }
        lat.sort();
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        let p99_us = p99.as_secs_f64() * 1e6;
        report(
            &format!(
                "online read {n} driver{} x 3 features",
                if n == 1 { "" } else { "s" }
            ),
            format!("p50 {:.1} us, p99 {p99_us:.1} us", p50.as_secs_f64() * 1e6),
            &format!("p99 <= {target_us} us"),
            p99_us <= target_us,
        );
    }
    drop(store);

    // Historical retrieval, in a child process so its peak memory is its own.
    let out = Command::new(&args[0])
        .arg("--historical-child")
        .arg(&dir)
        .output()
        .expect("run the child");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    if out.status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn historical_child(dir: &Path) -> ExitCode {
    let store = FeatureStore::open(dir).expect("open the store");
    // 100k entity rows: random drivers at random times within the data.
    let n = 100_000usize;
    let mut ids = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    let start_us = start().timestamp_micros();
    let mut x: u64 = 42;
    for _ in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ids.push(data::FIRST_DRIVER_ID + ((x >> 33) % DRIVERS as u64) as i64);
        ts.push(start_us + ((x >> 13) % (HOURS as u64 * 3_600_000_000)) as i64);
    }
    let entity_df = DataFrame::new(
        n,
        vec![
            Column::new("driver_id".into(), ids),
            Column::new("event_timestamp".into(), ts)
                .cast(&feast_runtime::definition::FeastType::UnixTimestamp.dtype())
                .expect("cast"),
        ],
    )
    .expect("entity frame");
    let refs = [
        "driver_hourly_stats:conv_rate",
        "driver_hourly_stats:acc_rate",
        "driver_hourly_stats:avg_daily_trips",
    ];
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let df = store
            .get_historical_features(&entity_df, &Features::Refs(&refs), false, false)
            .expect("retrieve");
        times.push(t.elapsed());
        assert_eq!(df.height(), n);
    }
    let m = median(times);
    report(
        "historical retrieval 100k entity rows",
        format!("{:.3} s", m.as_secs_f64()),
        "<= 0.3 s",
        m.as_secs_f64() <= 0.3,
    );
    let peak = peak_rss_bytes();
    report(
        "  peak memory (whole process)",
        format!("{:.0} MiB", peak as f64 / (1 << 20) as f64),
        "<= 512 MiB",
        peak <= 512 << 20,
    );
    ExitCode::SUCCESS
}

/// VmHWM from /proc: the process's peak resident set.
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("feast-rs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The limit reference: the same upserts (newer-wins condition included) from
/// a prepared statement in one transaction, with keys and values encoded
/// beforehand, into a fresh table with the same layout.
fn bare_rusqlite(path: &Path, df: &DataFrame) -> Duration {
    let _ = std::fs::remove_file(path);
    let ids: Vec<i64> = df
        .column("driver_id")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    let conv: Vec<f32> = df
        .column("conv_rate")
        .unwrap()
        .f32()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    let acc: Vec<f32> = df
        .column("acc_rate")
        .unwrap()
        .f32()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    let trips: Vec<i64> = df
        .column("avg_daily_trips")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    /// A feature's name, `Value` bytes and `value_text`.
    type Encoded = (&'static str, Vec<u8>, Option<String>);
    let mut rows: Vec<(Vec<u8>, [Encoded; 3])> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut key = Vec::new();
            serialize_entity_key(&mut key, &[("driver_id", JoinKeyValue::Int64(*id))]);
            let v = |name, val: Value| (name, val.to_bytes(), value_text(&val));
            (
                key,
                [
                    v("conv_rate", Value::Float32(conv[i])),
                    v("acc_rate", Value::Float32(acc[i])),
                    v("avg_daily_trips", Value::Int64(trips[i])),
                ],
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    conn.pragma_update(None, "cache_size", -200_000).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (entity_key BLOB, feature_name TEXT, value BLOB, value_text TEXT, vector_value BLOB, event_ts timestamp, created_ts timestamp, PRIMARY KEY(entity_key, feature_name)) WITHOUT ROWID",
    )
    .unwrap();
    let t = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO t (entity_key, feature_name, value, value_text, event_ts, created_ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, created_ts = excluded.created_ts
                 WHERE excluded.event_ts > t.event_ts OR (excluded.event_ts = t.event_ts AND coalesce(excluded.created_ts, -1) >= coalesce(t.created_ts, -1))",
            )
            .unwrap();
        for (key, features) in &rows {
            for (name, bytes, text) in features {
                stmt.execute(rusqlite::params![
                    key,
                    name,
                    bytes,
                    text,
                    1_735_689_600i64,
                    1_735_689_600i64
                ])
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    t.elapsed()
}
