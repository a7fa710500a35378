//! Windowed aggregation benchmarks. Run with `scripts/bench aggregate` (a
//! release build, the pipeline on one core).
//!
//! The view: count, sum and mean of a payment amount over 1 h (10-minute
//! hops) and 1 d (1-hour hops): 3 functions x 2 windows, 10k accounts.
//!
//! - **pipeline**: 1M payment records held in memory, event times rising
//!   over a day, through decode -> view function -> fold into tiles ->
//!   merge with the stored tiles + checkpoint in one SQLite transaction, in
//!   batches of 10k, 20k and 50k. Beside it, a bare rusqlite loop doing the
//!   same statements per entity and batch with the states precomputed: the
//!   limit the store sets.
//! - **online read**: the 6 features of one account, in-process through
//!   `FeatureStore::get_online_features_at` (tiles read and merged).
//! - **historical**: the 6 features for 100k entity rows over 1M events in
//!   Parquet, through `get_historical_features`, beside a hand-written
//!   Polars query computing the same windows by the same rule.

#![allow(clippy::unwrap_used)] // benchmark code: a failure should stop loudly

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use feast_benches::cpu_time;
use feast_example_driver_stats as _;
use feast_runtime::chrono::{DateTime, SecondsFormat, Utc};
use feast_runtime::definition::JoinKeyValue;
use feast_runtime::feature_store::{FeatureStore, Features};
use feast_runtime::ingest::metrics::Metrics;
use feast_runtime::ingest::pipeline::{Pipeline, RawRecord, Writes};
use feast_runtime::polars::prelude::*;
use feast_runtime::prelude::*;
use feast_runtime::{entity, file_source, kinesis_source};

/// An account making payments.
#[entity]
pub struct Account {
    pub account_id: i64,
}

/// Payments in Parquet.
#[file_source(
    path = "data/payments",
    timestamp_field = "event_timestamp",
    schema = [account_id: Int64, event_timestamp: UnixTimestamp, amount: Float64],
)]
pub struct PaymentsLog;

/// Payments as JSON records on Kinesis.
#[kinesis_source(
    name = "payments_stream",
    stream_name = "payments",
    region = "us-east-1",
    timestamp_field = "event_timestamp",
    batch_source = PaymentsLog,
    record_format = JsonFormat(schema_json = "account_id bigint, event_timestamp timestamp, amount double"),
)]
pub struct Payments;

/// 3 functions x 2 windows.
#[stream_feature_view(
    entities = [Account],
    source = Payments,
    schema = [amount: Float64],
    aggregations = [
        Aggregation(column = "amount", function = "count", time_window = "1h", slide_interval = "10m", name = "payments_1h"),
        Aggregation(column = "amount", function = "sum", time_window = "1h", slide_interval = "10m", name = "amount_1h"),
        Aggregation(column = "amount", function = "mean", time_window = "1h", slide_interval = "10m", name = "amount_mean_1h"),
        Aggregation(column = "amount", function = "count", time_window = "1d", slide_interval = "1h", name = "payments_1d"),
        Aggregation(column = "amount", function = "sum", time_window = "1d", slide_interval = "1h", name = "amount_1d"),
        Aggregation(column = "amount", function = "mean", time_window = "1d", slide_interval = "1h", name = "amount_mean_1d"),
    ],
)]
pub fn payment_windows(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

const FEATURES: [&str; 6] = [
    "payments_1h",
    "amount_1h",
    "amount_mean_1h",
    "payments_1d",
    "amount_1d",
    "amount_mean_1d",
];
const ACCOUNTS: u64 = 10_000;
const RECORDS: usize = 1_000_000;
const ENTITY_ROWS: usize = 100_000;
const BATCHES: [usize; 3] = [10_000, 20_000, 50_000];
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000_000;
const DAY: i64 = 86_400_000_000;
const SHARD: &str = "shardId-000000000000";

/// (account, event time, amount): times rising evenly over a day.
fn payments(n: usize) -> Vec<(i64, i64, f64)> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let account = 1 + (x % ACCOUNTS) as i64;
            let ts = T0 + (i as i64) * (DAY / n as i64);
            (account, ts, ((x >> 20) % 100_000) as f64 / 100.0)
        })
        .collect()
}

fn repo_dir(what: &str) -> PathBuf {
    let dir = feast_benches::sqlite_repo(&format!("agg-{what}"));
    std::fs::create_dir_all(dir.join("data/payments")).unwrap();
    dir
}

fn open(dir: &Path) -> Arc<FeatureStore> {
    let store = FeatureStore::open(dir).unwrap();
    store.update_infra().unwrap();
    Arc::new(store)
}

fn records(events: &[(i64, i64, f64)]) -> Vec<RawRecord> {
    events
        .iter()
        .enumerate()
        .map(|(i, (account, ts, amount))| {
            let t = DateTime::<Utc>::from_timestamp_micros(*ts)
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Micros, true);
            RawRecord {
                sequence_number: format!("{:056}", i + 1),
                data: format!(
                    r#"{{"account_id":{account},"event_timestamp":"{t}","amount":{amount}}}"#
                )
                .into_bytes(),
            }
        })
        .collect()
}

/// The pipeline over `raw` in batches of `batch`: (records/s of wall time,
/// records per CPU-second), and the store left behind.
fn pipeline_run(raw: &[RawRecord], batch: usize) -> (f64, f64, PathBuf, Arc<FeatureStore>) {
    let dir = repo_dir("pipeline");
    let store = open(&dir);
    let source = store.registry().data_source("payments_stream").unwrap();
    let view = store.registry().feature_view("payment_windows").unwrap();
    let pipeline = Pipeline::new(
        store.clone(),
        source,
        vec![view],
        Writes::OnlineOnly,
        Arc::new(Metrics::default()),
    );
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    for chunk in raw.chunks(batch) {
        let out = pipeline
            .process("payments", SHARD, chunk, false, 0)
            .unwrap();
        assert_eq!(out.dead_lettered, 0);
    }
    let (wall, cpu) = (wall0.elapsed(), cpu_time() - cpu0);
    (
        raw.len() as f64 / wall.as_secs_f64(),
        raw.len() as f64 / cpu.as_secs_f64().max(1e-9),
        dir,
        store,
    )
}

/// The floor the store sets: per batch and entity, only the writes any
/// tiled design makes (each touched tile and the marker upserted, states
/// precomputed), plus the checkpoint, one transaction a batch; none of the
/// reads a merge needs, no decoding, no folding.
fn bare_sqlite(events: &[(i64, i64, f64)], batch: usize) -> f64 {
    let dir = repo_dir("bare");
    let mut conn = rusqlite::Connection::open(dir.join("bare.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-200000; PRAGMA wal_autocheckpoint=10000;
         CREATE TABLE t (entity_key BLOB NOT NULL, part INTEGER NOT NULL, hop INTEGER NOT NULL, epoch INTEGER NOT NULL,
            tile INTEGER NOT NULL, state BLOB NOT NULL, PRIMARY KEY (part, hop, epoch, entity_key, tile)) WITHOUT ROWID;
         CREATE TABLE cp (shard TEXT PRIMARY KEY, seq TEXT);",
    )
    .unwrap();
    // The entities of each batch and the tiles they touch, as the fold
    // finds them: computed before the clock starts.
    type Touched = Vec<(Vec<u8>, i64, Vec<(i64, i64)>)>;
    let batches: Vec<Touched> = events
        .chunks(batch)
        .map(|chunk| {
            let mut touched: std::collections::BTreeMap<i64, (i64, Vec<(i64, i64)>)> =
                Default::default();
            for (account, ts, _) in chunk {
                let e = touched.entry(*account).or_insert((*ts, Vec::new()));
                e.0 = e.0.max(*ts);
                for (hop, hop_us) in [(600, 600_000_000), (3600, 3_600_000_000)] {
                    let tile = (hop, ts.div_euclid(hop_us));
                    if !e.1.contains(&tile) {
                        e.1.push(tile);
                    }
                }
            }
            let mut keyed: Touched = touched
                .into_iter()
                .map(|(account, (newest, tiles))| {
                    let mut key = Vec::with_capacity(40);
                    feast_runtime::definition::serialize_entity_key(
                        &mut key,
                        &[("account_id", JoinKeyValue::Int64(account))],
                    );
                    (key, newest, tiles)
                })
                .collect();
            // In key order, as the pipeline writes them.
            keyed.sort_unstable();
            keyed
        })
        .collect();
    let state = [7u8; 32];
    let started = Instant::now();
    for touched in &batches {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        {
            let mut put = tx
                .prepare_cached("INSERT INTO t (entity_key, part, hop, epoch, tile, state) VALUES (?1, 1, ?2, ?3 / 3, ?3, ?4) ON CONFLICT DO UPDATE SET state = excluded.state")
                .unwrap();
            for (key, newest, tiles) in touched {
                for (hop, tile) in tiles {
                    put.execute(rusqlite::params![key, hop, tile, &state[..]])
                        .unwrap();
                }
                put.execute(rusqlite::params![key, 0, 0, &newest.to_le_bytes()[..]])
                    .unwrap();
            }
            tx.execute(
                "INSERT INTO cp VALUES ('s', 'x') ON CONFLICT DO UPDATE SET seq = excluded.seq",
                [],
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn online_read(store: &FeatureStore, at_us: i64) -> (f64, f64) {
    let refs: Vec<String> = FEATURES
        .iter()
        .map(|f| format!("payment_windows:{f}"))
        .collect();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let now = DateTime::<Utc>::from_timestamp_micros(at_us).unwrap();
    let mut x: u64 = 12345;
    let mut micros = Vec::with_capacity(20_000);
    for i in 0..22_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let account = 1 + (x % ACCOUNTS) as i64;
        let started = Instant::now();
        let r = store
            .get_online_features_at(
                &Features::Refs(&refs),
                &[("account_id", vec![JoinKeyValue::Int64(account)])],
                false,
                now,
            )
            .unwrap();
        let took = started.elapsed().as_secs_f64() * 1e6;
        assert_eq!(r.columns.len(), 7);
        if i >= 2_000 {
            micros.push(took);
        }
    }
    micros.sort_by(f64::total_cmp);
    (percentile(&micros, 0.5), percentile(&micros, 0.99))
}

fn events_frame(events: &[(i64, i64, f64)]) -> DataFrame {
    DataFrame::new(
        events.len(),
        vec![
            Column::new(
                "account_id".into(),
                events.iter().map(|e| e.0).collect::<Vec<_>>(),
            ),
            Column::new(
                "event_timestamp".into(),
                events.iter().map(|e| e.1).collect::<Vec<_>>(),
            )
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap(),
            Column::new(
                "amount".into(),
                events.iter().map(|e| e.2).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap()
}

fn entity_rows(n: usize) -> DataFrame {
    let mut x: u64 = 777;
    let (mut ids, mut ts) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids.push(1 + (x % ACCOUNTS) as i64);
        ts.push(T0 + ((x >> 17) % (DAY as u64 + 3_600_000_000)) as i64);
    }
    DataFrame::new(
        n,
        vec![
            Column::new("account_id".into(), ids),
            Column::new("event_timestamp".into(), ts)
                .cast(&DataType::Datetime(
                    TimeUnit::Microseconds,
                    Some(TimeZone::UTC),
                ))
                .unwrap(),
        ],
    )
    .unwrap()
}

/// The same six windows by hand in Polars: each entity row joined to its
/// account's events, the day's window filtered, the hour's inside it.
fn polars_windows(events: &DataFrame, rows: &DataFrame) -> DataFrame {
    let us = |c: &str| col(c).cast(DataType::Int64);
    let start = |window: i64, hop: i64| us("t") - us("t") % lit(hop) + lit(hop - window);
    let rows = rows
        .clone()
        .lazy()
        .with_row_index("row", None)
        .rename(["event_timestamp"], ["t"], true)
        .with_columns([
            start(3_600_000_000, 600_000_000).alias("start_1h"),
            start(86_400_000_000, 3_600_000_000).alias("start_1d"),
        ]);
    let in_hour = us("event_timestamp").gt_eq(col("start_1h"));
    let windows = rows
        .clone()
        .join(
            events.clone().lazy(),
            [col("account_id")],
            [col("account_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(
            us("event_timestamp")
                .gt_eq(col("start_1d"))
                .and(us("event_timestamp").lt_eq(us("t"))),
        )
        .group_by([col("row")])
        .agg([
            col("amount")
                .filter(in_hour.clone())
                .count()
                .alias("payments_1h"),
            col("amount")
                .filter(in_hour.clone())
                .sum()
                .alias("amount_1h"),
            col("amount").filter(in_hour).mean().alias("amount_mean_1h"),
            col("amount").count().alias("payments_1d"),
            col("amount").sum().alias("amount_1d"),
            col("amount").mean().alias("amount_mean_1d"),
        ]);
    rows.join(
        windows,
        [col("row")],
        [col("row")],
        JoinArgs::new(JoinType::Left),
    )
    .sort(["row"], Default::default())
    .collect()
    .unwrap()
}

fn main() {
    let part = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    println!(
        "feast-rs windowed aggregation benchmarks: count, sum and mean over 1 h (10 min hops) and 1 d (1 h hops), {ACCOUNTS} accounts; POLARS_MAX_THREADS={}",
        std::env::var("POLARS_MAX_THREADS").unwrap_or_else(|_| "(all cores)".into())
    );
    let events = payments(RECORDS);
    if part == "all" || part == "pipeline" {
        pipeline_and_reads(&events);
    }
    if part == "all" || part == "historical" {
        historical(&events);
    }
}

/// The pipeline at each batch size, then online reads of what it wrote.
fn pipeline_and_reads(events: &[(i64, i64, f64)]) {
    let raw = records(events);
    println!(
        "\npipeline: {RECORDS} records, decode -> function -> tiles -> SQLite with the checkpoint"
    );
    let mut last_store = None;
    for batch in BATCHES {
        let (wall, cpu, dir, store) = pipeline_run(&raw, batch);
        let bare = bare_sqlite(events, batch);
        println!(
            "  batch {batch:>6}: {:>8.0} records/s ({:>8.0} per CPU-second)   target >= 250000   bare SQLite, the tile writes alone: {bare:>8.0} records/s",
            wall, cpu
        );
        if let Some((old, _)) = last_store.replace((dir, store)) {
            let _ = std::fs::remove_dir_all::<PathBuf>(old);
        }
    }
    let (dir, store) = last_store.unwrap();

    let end = events.last().unwrap().1;
    let (p50, p99) = online_read(&store, end);
    println!(
        "\nonline read, 6 features of one account, in-process: p50 {p50:.1} us, p99 {p99:.1} us   target p99 <= 100 us"
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Historical retrieval beside the hand-written Polars query.
fn historical(events: &[(i64, i64, f64)]) {
    let dir = repo_dir("historical");
    let mut frame = events_frame(events);
    let file = std::fs::File::create(dir.join("data/payments/history.parquet")).unwrap();
    ParquetWriter::new(file).finish(&mut frame).unwrap();
    let store = open(&dir);
    let rows = entity_rows(ENTITY_ROWS);
    let refs: Vec<String> = FEATURES
        .iter()
        .map(|f| format!("payment_windows:{f}"))
        .collect();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let mut ours = Vec::new();
    let mut hand = Vec::new();
    let mut checked = false;
    for _ in 0..3 {
        let started = Instant::now();
        let a = store
            .get_historical_features(&rows, &Features::Refs(&refs), false, false)
            .unwrap();
        ours.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let b = polars_windows(&frame, &rows);
        hand.push(started.elapsed().as_secs_f64());
        if !checked {
            // The same answers: counts exactly, sums and means to rounding.
            let count = |df: &DataFrame, c: &str| -> Vec<i64> {
                df.column(c)
                    .unwrap()
                    .cast(&DataType::Int64)
                    .unwrap()
                    .i64()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap_or(0))
                    .collect()
            };
            assert_eq!(count(&a, "payments_1h"), count(&b, "payments_1h"));
            assert_eq!(count(&a, "payments_1d"), count(&b, "payments_1d"));
            let sums = |df: &DataFrame, c: &str| -> Vec<f64> {
                df.column(c)
                    .unwrap()
                    .f64()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap_or(0.0))
                    .collect()
            };
            for c in ["amount_1h", "amount_1d"] {
                for (x, y) in sums(&a, c).iter().zip(sums(&b, c)) {
                    assert!((x - y).abs() <= 1e-6 * x.abs().max(1.0), "{c}: {x} vs {y}");
                }
            }
            checked = true;
        }
    }
    ours.sort_by(f64::total_cmp);
    hand.sort_by(f64::total_cmp);
    println!(
        "\nhistorical: {ENTITY_ROWS} entity rows over {RECORDS} events (Parquet), 6 features: {:.3} s (median of 3)   target <= 1 s\n  hand-written Polars query, same windows: {:.3} s   ratio {:.2}   target <= 2",
        ours[1],
        hand[1],
        ours[1] / hand[1]
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
