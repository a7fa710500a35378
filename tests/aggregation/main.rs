//! Windowed aggregations on both online stores, through the stream pipeline
//! and `materialize` as `ingest` and a user run them.
//!
//! The property: over random event streams (out of order, late, too late,
//! duplicated, part of them history in Parquet), for every function, the
//! online value at time `t` equals the historical value at `t` equals a
//! brute-force reference written here from the README's rule alone.

#![allow(clippy::unwrap_used)] // test code: a failure should stop loudly

mod reference;

use std::sync::Arc;

use feast_runtime::chrono::{DateTime, SecondsFormat, Utc};
use feast_runtime::definition::{FeastType, JoinKeyValue, Value};
use feast_runtime::feature_store::{FeatureStore, Features, FieldStatus};
use feast_runtime::ingest::metrics::Metrics;
use feast_runtime::ingest::pipeline::{Pipeline, RawRecord, Writes};
use feast_runtime::polars::prelude::*;
use feast_runtime::prelude::*;
use feast_runtime::{entity, file_source, kinesis_source};
use feast_tests::{Backend, TempRepo};

use reference::{Event, Rng};

/// A rider of the test's ride service.
#[entity]
pub struct Rider {
    pub rider_id: i64,
}

/// Rides kept in Parquet: history, and the stream's log.
#[file_source(
    path = "data/rides",
    timestamp_field = "event_timestamp",
    schema = [rider_id: Int64, event_timestamp: UnixTimestamp, amount: Float64, qty: Int64, item: String],
)]
pub struct RidesHistory;

/// Rides as JSON records on Kinesis.
#[kinesis_source(
    name = "rides_stream",
    stream_name = "rides",
    region = "us-east-1",
    timestamp_field = "event_timestamp",
    batch_source = RidesHistory,
    record_format = JsonFormat(
        schema_json = "rider_id bigint, event_timestamp timestamp, amount double, qty bigint, item string"
    ),
)]
pub struct RidesStream;

/// Every function, over two hops. `qty` is not declared: its aggregations
/// read the source's column, typed by the compiler from the source.
#[stream_feature_view(
    entities = [Rider],
    source = RidesStream,
    schema = [amount: Float64, item: String],
    offline = true,
    aggregations = [
        Aggregation(column = "amount", function = "sum", time_window = "1h", slide_interval = "10m", name = "amount_sum_1h"),
        Aggregation(column = "qty", function = "sum", time_window = "1d", slide_interval = "1h", name = "qty_sum_1d"),
        Aggregation(column = "amount", function = "count", time_window = "1h", slide_interval = "10m", name = "rides_1h"),
        Aggregation(column = "amount", function = "avg", time_window = "1d", slide_interval = "1h", name = "amount_mean_1d"),
        Aggregation(column = "qty", function = "min", time_window = "1h", slide_interval = "10m", name = "qty_min_1h"),
        Aggregation(column = "amount", function = "max", time_window = "1d", slide_interval = "1h", name = "amount_max_1d"),
        Aggregation(column = "amount", function = "std", time_window = "1h", slide_interval = "10m", name = "amount_std_1h"),
        Aggregation(column = "qty", function = "std_pop", time_window = "1d", slide_interval = "1h", name = "qty_std_pop_1d"),
        Aggregation(column = "amount", function = "var", time_window = "1d", slide_interval = "1h", name = "amount_var_1d"),
        Aggregation(column = "amount", function = "var_pop", time_window = "1h", slide_interval = "10m", name = "amount_var_pop_1h"),
        Aggregation(column = "item", function = "last(3)", time_window = "1h", slide_interval = "10m", name = "items_1h"),
        Aggregation(column = "item", function = "last_distinct(3)", time_window = "1d", slide_interval = "1h", name = "distinct_items_1d"),
    ],
)]
pub fn rides(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

/// A view whose values expire: an entity's windows are served while its
/// newest event is under two hours old.
#[stream_feature_view(
    entities = [Rider],
    source = RidesStream,
    schema = [],
    ttl = "2h",
    aggregations = [
        Aggregation(column = "amount", function = "count", time_window = "1d", slide_interval = "1h", name = "rides_today"),
    ],
)]
pub fn recent_rides(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

const STREAM: &str = "rides";
const SHARD: &str = "shardId-000000000000";
const HOUR: i64 = 3_600_000_000;
/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000_000;

fn config(
    project: &str,
    backend: Backend,
    redis: Option<&feast_tests::redis::RedisServer>,
) -> String {
    let online = match backend {
        Backend::Sqlite => "  type: sqlite\n  path: data/online.db\n".to_owned(),
        Backend::Redis => format!(
            "  type: redis\n  connection_string: \"{}\"\n",
            redis.expect("a Redis server").connection_string()
        ),
    };
    format!(
        "project: {project}\nregistry: data/registry.db\nonline_store:\n{online}offline_store:\n  type: file\n"
    )
}

/// The batch path of the rides stream and its views, as `ingest` builds it.
fn stream_pipeline(store: Arc<FeatureStore>) -> Pipeline {
    let source = store.registry().data_source("rides_stream").unwrap();
    let views = store
        .registry()
        .feature_views()
        .filter(|v| std::ptr::eq(v.source, source))
        .collect();
    Pipeline::new(
        store,
        source,
        views,
        Writes::Declared,
        Arc::new(Metrics::default()),
    )
}

struct Setup {
    repo: TempRepo,
    redis: Option<feast_tests::redis::RedisServer>,
    store: Arc<FeatureStore>,
    pipeline: Pipeline,
    next_sequence: u64,
}

impl Setup {
    fn new(backend: Backend, project: &str) -> Setup {
        let redis = (backend == Backend::Redis).then(feast_tests::redis::RedisServer::start);
        let repo = TempRepo::with_config(&config(project, backend, redis.as_ref()));
        std::fs::create_dir_all(repo.path().join("data/rides")).unwrap();
        let store = Arc::new(FeatureStore::open(repo.path()).unwrap());
        let pipeline = stream_pipeline(store.clone());
        Setup {
            repo,
            redis,
            store,
            pipeline,
            next_sequence: 1,
        }
    }

    fn records(&mut self, events: &[Event]) -> Vec<RawRecord> {
        events
            .iter()
            .map(|e| {
                let seq = self.next_sequence;
                self.next_sequence += 1;
                RawRecord {
                    sequence_number: format!("{seq:056}"),
                    data: json(e),
                }
            })
            .collect()
    }

    /// Sends `events` through the stream pipeline in batches of `sizes`.
    fn ingest(&mut self, events: &[Event], rng: &mut Rng) -> usize {
        let mut dead = 0;
        let mut rest = events;
        while !rest.is_empty() {
            let n = (1 + rng.below(60) as usize).min(rest.len());
            let records = self.records(&rest[..n]);
            dead += self
                .pipeline
                .process(STREAM, SHARD, &records, false, 0)
                .unwrap()
                .dead_lettered;
            rest = &rest[n..];
        }
        dead
    }

    fn write_history(&self, events: &[Event]) {
        let mut df = frame(events);
        let path = self.repo.path().join("data/rides/history.parquet");
        let file = std::fs::File::create(path).unwrap();
        ParquetWriter::new(file).finish(&mut df).unwrap();
    }

    fn online(&self, riders: &[i64], t_us: i64) -> Vec<Vec<(Value, FieldStatus)>> {
        let refs: Vec<String> = FEATURES.iter().map(|f| format!("rides:{f}")).collect();
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        let features = Features::Refs(&refs);
        let keys: Vec<JoinKeyValue<'_>> = riders.iter().map(|r| JoinKeyValue::Int64(*r)).collect();
        let response = self
            .store
            .get_online_features_at(
                &features,
                &[("rider_id", keys)],
                false,
                DateTime::<Utc>::from_timestamp_micros(t_us).unwrap(),
            )
            .unwrap();
        (0..riders.len())
            .map(|i| {
                FEATURES
                    .iter()
                    .map(|f| {
                        let col = response.column(f).unwrap();
                        (col.values[i].clone(), col.statuses[i])
                    })
                    .collect()
            })
            .collect()
    }

    fn historical(&self, rows: &[(i64, i64)]) -> Vec<Vec<Value>> {
        let entity_df = entity_rows(rows);
        let refs: Vec<String> = FEATURES.iter().map(|f| format!("rides:{f}")).collect();
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        let features = Features::Refs(&refs);
        let df = self
            .store
            .get_historical_features(&entity_df, &features, false, false)
            .unwrap();
        (0..rows.len())
            .map(|i| {
                FEATURES
                    .iter()
                    .map(|f| reference::cell(&df, f, i))
                    .collect()
            })
            .collect()
    }
}

const FEATURES: [&str; 12] = [
    "amount_sum_1h",
    "qty_sum_1d",
    "rides_1h",
    "amount_mean_1d",
    "qty_min_1h",
    "amount_max_1d",
    "amount_std_1h",
    "qty_std_pop_1d",
    "amount_var_1d",
    "amount_var_pop_1h",
    "items_1h",
    "distinct_items_1d",
];

/// Entity rows: (rider, time in microseconds).
fn entity_rows(rows: &[(i64, i64)]) -> DataFrame {
    DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "rider_id".into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ),
            Column::new(
                "event_timestamp".into(),
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )
            .cast(&FeastType::UnixTimestamp.dtype())
            .unwrap(),
        ],
    )
    .unwrap()
}

/// The newest event time of `rider` in `events`.
fn newest_of(events: &[Event], rider: i64) -> i64 {
    events
        .iter()
        .filter(|e| e.rider == rider)
        .map(|e| e.ts_us)
        .max()
        .unwrap()
}

fn json(e: &Event) -> Vec<u8> {
    let ts = DateTime::<Utc>::from_timestamp_micros(e.ts_us)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    serde_json::to_vec(&serde_json::json!({
        "rider_id": e.rider,
        "event_timestamp": ts,
        "amount": e.amount,
        "qty": e.qty,
        "item": e.item,
    }))
    .unwrap()
}

/// History rows in the batch source's columns.
fn frame(events: &[Event]) -> DataFrame {
    let keys: Vec<(i64, i64)> = events.iter().map(|e| (e.rider, e.ts_us)).collect();
    let mut df = entity_rows(&keys);
    df.with_column(Column::new(
        "amount".into(),
        events.iter().map(|e| e.amount).collect::<Vec<_>>(),
    ))
    .unwrap();
    df.with_column(Column::new(
        "qty".into(),
        events.iter().map(|e| e.qty).collect::<Vec<_>>(),
    ))
    .unwrap();
    df.with_column(Column::new(
        "item".into(),
        events.iter().map(|e| e.item.clone()).collect::<Vec<_>>(),
    ))
    .unwrap();
    df
}

feast_tests::on_both_stores!(
    online_equals_historical_equals_the_reference_for_every_function,
    a_replayed_batch_counts_once,
    tiles_out_of_every_window_are_deleted,
    materialize_while_ingesting_counts_each_event_once,
    typed_rows_carry_the_result_types,
    the_ttl_applies_to_the_newest_event,
);

fn online_equals_historical_equals_the_reference_for_every_function(backend: Backend) {
    for seed in 0..6u64 {
        let mut rng = Rng::new(seed);
        let mut setup = Setup::new(backend, &format!("agg{seed}"));
        let (stream, history) = reference::events(&mut rng, 400, 150);
        setup.write_history(&history);
        let dead = setup.ingest(&stream, &mut rng);
        let too_late = reference::too_late(&stream).len();
        assert_eq!(
            dead, too_late,
            "seed {seed}: each too-late event dead-lettered once"
        );
        let end = stream.iter().map(|e| e.ts_us).max().unwrap();
        setup
            .store
            .materialize(
                DateTime::<Utc>::from_timestamp_micros(T0 - 10 * 24 * HOUR).unwrap(),
                DateTime::<Utc>::from_timestamp_micros(end).unwrap(),
                Some(&["rides"]),
            )
            .unwrap();

        let late = reference::too_late(&stream);
        assert!(!late.is_empty(), "seed {seed}: some events too late");
        // Too-late events are in the offline log, but out of every window
        // from the shard's watermark on, as at every time compared here.
        let all: Vec<Event> = stream.iter().chain(&history).cloned().collect();
        let riders: Vec<i64> = (1..=reference::RIDERS + 1).collect();
        let times = [
            end,
            end + 7 * 60_000_000,
            end + 50 * 60_000_000,
            end + 3 * HOUR,
            end + 23 * HOUR + 1,
            end + 2 * 24 * HOUR,
        ];
        let rows: Vec<(i64, i64)> = times
            .iter()
            .flat_map(|&t| riders.iter().map(move |&r| (r, t)))
            .collect();
        let offline = setup.historical(&rows);
        let (mut hour, mut day) = (0, 0);
        for (i, &(rider, t)) in rows.iter().enumerate() {
            let expected = reference::values(&all, rider, t);
            let online = &setup.online(&[rider], t)[0];
            let what = format!("seed {seed}, rider {rider}, t = {t}");
            match &expected {
                None => {
                    assert!(
                        online.iter().all(|(_, s)| *s == FieldStatus::NotFound),
                        "{what}: an entity without events is not found online: {online:?}"
                    );
                    assert!(
                        offline[i].iter().all(|v| *v == Value::Null),
                        "{what}: offline nulls: {:?}",
                        offline[i]
                    );
                }
                Some(values) => {
                    hour += usize::from(values[2] != Value::Int64(0));
                    day += usize::from(values[3] != Value::Null);
                    for (f, name) in FEATURES.iter().enumerate() {
                        assert_eq!(online[f].0, values[f], "{what}: {name} online");
                        assert_eq!(offline[i][f], values[f], "{what}: {name} offline");
                    }
                }
            }
        }
        assert!(
            hour >= 3 && day >= 10,
            "seed {seed}: windows held events ({hour} hour, {day} day)"
        );
    }
}

fn a_replayed_batch_counts_once(backend: Backend) {
    let mut rng = Rng::new(99);
    let mut setup = Setup::new(backend, "replay");
    let (stream, _) = reference::events(&mut rng, 200, 0);
    let end = stream.iter().map(|e| e.ts_us).max().unwrap();
    setup.ingest(&stream[..150], &mut rng);
    let before = setup.next_sequence;
    let tail = setup.records(&stream[150..]);
    setup
        .pipeline
        .process(STREAM, SHARD, &tail, false, 0)
        .unwrap();
    let once = setup.online(&[1, 2, 3], end);
    // The same records again, as a consumer that lost its reply would send them.
    setup
        .pipeline
        .process(STREAM, SHARD, &tail, false, 0)
        .unwrap();
    setup
        .pipeline
        .process(STREAM, SHARD, &tail[..10], false, 0)
        .unwrap();
    assert_eq!(setup.online(&[1, 2, 3], end), once);
    let expected: Vec<_> = [1, 2, 3]
        .iter()
        .map(|&r| reference::values(&stream, r, end).unwrap())
        .collect();
    for (got, want) in once.iter().zip(&expected) {
        let got: Vec<Value> = got.iter().map(|(v, _)| v.clone()).collect();
        assert_eq!(&got, want);
    }
    let committed = setup
        .store
        .online_store()
        .checkpoint("replay", STREAM, SHARD)
        .unwrap()
        .unwrap();
    assert_eq!(committed.records, 200, "records counted once");
    assert_eq!(
        committed.sequence_number.as_deref(),
        Some(format!("{:056}", before + 49).as_str())
    );
}

fn tiles_out_of_every_window_are_deleted(backend: Backend) {
    // One rider riding every 20 minutes for 10 days: the tiles kept stay
    // within the windows (1 h over 10 min hops, 1 d over 1 h hops).
    let mut setup = Setup::new(backend, "retention");
    let events: Vec<Event> = (0..720)
        .map(|i| {
            let ts = T0 + i * 20 * 60_000_000;
            Event {
                rider: 1,
                ts_us: ts,
                amount: 1.0,
                qty: 1,
                item: format!("i{}", i % 4),
            }
        })
        .collect();
    let mut rng = Rng::new(7);
    setup.ingest(&events, &mut rng);
    let tiles = reference::stored_tiles(&setup.repo, backend, setup.redis.as_ref(), "retention");
    // 10-minute hop: the window's 6 tiles and the one before its edge at
    // most, 1-hour hop: 24 and one; SQLite deletes by epochs of 3 tiles, so
    // it may keep up to 2 more of each.
    let slack = if backend == Backend::Sqlite { 2 } else { 0 };
    let short = tiles.iter().filter(|(hop, _)| *hop == 600).count();
    let long = tiles.iter().filter(|(hop, _)| *hop == 3600).count();
    assert!(
        (1..=7 + slack).contains(&short),
        "10-minute tiles kept: {short}"
    );
    assert!(
        (1..=25 + slack).contains(&long),
        "1-hour tiles kept: {long}"
    );
    let last = events.last().unwrap().ts_us;
    assert!(
        tiles.iter().all(|(hop, index)| {
            (index + 1 + slack as i64) * hop * 1_000_000 > last - 24 * HOUR
        }),
        "every tile kept is inside the day's window: {tiles:?}"
    );
    let online = setup.online(&[1], last);
    assert_eq!(online[0][2].0, Value::Int64(3), "rides in the last hour");
    assert_eq!(online[0][1].0, Value::Int64(72), "qty over the last day");
}

fn materialize_while_ingesting_counts_each_event_once(backend: Backend) {
    let mut rng = Rng::new(5);
    let mut setup = Setup::new(backend, "race");
    let (stream, history) = reference::events(&mut rng, 300, 200);
    setup.write_history(&history);
    let end = stream.iter().map(|e| e.ts_us).max().unwrap();
    let until = DateTime::<Utc>::from_timestamp_micros(end).unwrap();
    let since = DateTime::<Utc>::from_timestamp_micros(T0 - 10 * 24 * HOUR).unwrap();
    // A materialization loops on another thread for as long as the stream
    // is ingested here, each run replacing the backfill part while batches
    // merge into the stream part.
    let store = setup.store.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let materializer = std::thread::spawn(move || {
        let mut runs = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) || runs == 0 {
            store.materialize(since, until, Some(&["rides"])).unwrap();
            runs += 1;
        }
        runs
    });
    setup.ingest(&stream, &mut rng);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = materializer.join().unwrap();
    assert!(runs >= 1);

    let all: Vec<Event> = stream.iter().chain(&history).cloned().collect();
    let riders: Vec<i64> = (1..=reference::RIDERS).collect();
    for t in [end, end + 30 * 60_000_000, end + 20 * HOUR] {
        let online = setup.online(&riders, t);
        for (rider, got) in riders.iter().zip(online) {
            let want = reference::values(&all, *rider, t).unwrap();
            let got: Vec<Value> = got.into_iter().map(|(v, _)| v).collect();
            assert_eq!(
                got, want,
                "rider {rider} at {t} after {runs} materializations"
            );
        }
    }
}

fn typed_rows_carry_the_result_types(backend: Backend) {
    let mut rng = Rng::new(11);
    let mut setup = Setup::new(backend, "typed");
    let (stream, _) = reference::events(&mut rng, 50, 0);
    setup.ingest(&stream, &mut rng);
    let newest = newest_of(&stream, 1);
    // Read now: long after the events, so every window is empty, but the
    // rider is known (no ttl on the view).
    let rows = setup
        .store
        .get_online::<RidesView>(&[Rider { rider_id: 1 }, Rider { rider_id: 99 }])
        .unwrap();
    let row: &RidesRow = rows[0].as_ref().unwrap();
    assert_eq!(row.rider.rider_id, 1);
    assert_eq!(row.event_timestamp.timestamp_micros(), newest);
    let count: Option<i64> = row.rides_1h;
    let sum: Option<f64> = row.amount_sum_1h;
    let int_sum: Option<i64> = row.qty_sum_1d;
    let mean: Option<f64> = row.amount_mean_1d;
    let min: Option<i64> = row.qty_min_1h;
    let items: Option<Vec<String>> = row.items_1h.clone();
    assert_eq!(
        (count, sum, int_sum, mean, min, items),
        (Some(0), Some(0.0), Some(0), None, None, Some(Vec::new()))
    );
    assert!(rows[1].is_none(), "an entity without events has no row");
}

fn the_ttl_applies_to_the_newest_event(backend: Backend) {
    let mut rng = Rng::new(13);
    let mut setup = Setup::new(backend, "ttl");
    let (stream, _) = reference::events(&mut rng, 120, 0);
    setup.ingest(&stream, &mut rng);
    let newest = newest_of(&stream, 1);
    let count_at = |t: i64| {
        let start = (t.div_euclid(HOUR) + 1) * HOUR - 24 * HOUR;
        let late = reference::too_late(&stream);
        stream
            .iter()
            .enumerate()
            .filter(|(i, e)| e.rider == 1 && e.ts_us >= start && e.ts_us <= t && !late.contains(i))
            .count() as i64
    };
    let refs = ["recent_rides:rides_today"];
    let read = |t: i64| {
        let r = setup
            .store
            .get_online_features_at(
                &Features::Refs(&refs),
                &[("rider_id", vec![JoinKeyValue::Int64(1)])],
                false,
                DateTime::<Utc>::from_timestamp_micros(t).unwrap(),
            )
            .unwrap();
        let c = r.column("rides_today").unwrap();
        (c.values[0].clone(), c.statuses[0], c.event_timestamps_us[0])
    };
    // Fresh: served, its event time the newest event's.
    let t = newest + HOUR;
    assert_eq!(
        read(t),
        (Value::Int64(count_at(t)), FieldStatus::Present, newest)
    );
    // Two hours and more after it: expired, online and in training data.
    let t = newest + 2 * HOUR + 1;
    assert_eq!(read(t), (Value::Null, FieldStatus::OutsideMaxAge, newest));
    let entity_df = entity_rows(&[(1, newest + HOUR), (1, t)]);
    let df = setup
        .store
        .get_historical_features(&entity_df, &Features::Refs(&refs), false, false)
        .unwrap();
    assert_eq!(
        reference::cell(&df, "rides_today", 0),
        Value::Int64(count_at(newest + HOUR))
    );
    assert_eq!(reference::cell(&df, "rides_today", 1), Value::Null);
}

/// Two workers on one shard, in one process: the first loses its lease to
/// the second, which fences the shard and carries on from the checkpoint.
/// The first's next batch (a zombie's) is refused whole: no tile, no row,
/// no checkpoint, no offline file; every event counts once.
#[test]
fn a_zombie_batch_is_refused_whole_after_the_new_owner_fences() {
    use feast_runtime::online_store::Error as StoreError;
    let mut rng = Rng::new(5);
    let mut setup = Setup::new(Backend::Redis, "zombie");
    let (stream, _) = reference::events(&mut rng, 160, 0);
    let end = stream.iter().map(|e| e.ts_us).max().unwrap();
    let records = setup.records(&stream);
    let online = setup.store.online_store();
    // The first owner, token 1, commits records 0..60.
    online.fence("zombie", STREAM, SHARD, 1).unwrap();
    setup
        .pipeline
        .process_fenced(STREAM, SHARD, &records[..60], false, 0, Some(1))
        .unwrap();
    // The second takes the lease (token 2) in another process: it fences
    // the shard, then reads on from the checkpoint.
    let other = Arc::new(FeatureStore::open(setup.repo.path()).unwrap());
    let owner = stream_pipeline(other.clone());
    other
        .online_store()
        .fence("zombie", STREAM, SHARD, 2)
        .unwrap();
    let from = other
        .online_store()
        .checkpoint("zombie", STREAM, SHARD)
        .unwrap()
        .unwrap();
    assert_eq!(
        from.sequence_number.as_deref(),
        Some(records[59].sequence_number.as_str())
    );
    owner
        .process_fenced(STREAM, SHARD, &records[60..80], false, 0, Some(2))
        .unwrap();
    // The zombie wakes up with the batch it had read, which reaches past
    // the new owner's checkpoint.
    let refused =
        setup
            .pipeline
            .process_fenced(STREAM, SHARD, &records[60..100], false, 0, Some(1));
    assert!(
        matches!(
            refused,
            Err(feast_runtime::ingest::pipeline::Error::Online(
                StoreError::Fenced { token: 1, .. }
            ))
        ),
        "{refused:?}"
    );
    // The same refusal inside the store's own script, for a write that
    // reached the store (its check before the write passed, then the
    // lease was taken): tiles and checkpoint refused together.
    let view = setup.store.registry().feature_view("rides").unwrap();
    let out = setup
        .store
        .transform(view, &frame(&stream[80..100]))
        .unwrap();
    let tiles = feast_runtime::online_store::OnlineBatch::from_events(
        view,
        &out,
        feast_runtime::aggregate::stored::Part::Stream,
    )
    .unwrap();
    let late_commit = feast_runtime::online_store::CheckpointUpdate {
        consumer: "zombie",
        stream: STREAM,
        shard: SHARD,
        sequence_number: Some(&records[99].sequence_number),
        finished: false,
        records: 20,
        watermarks: &[],
        fence: Some(1),
    };
    let refused = online.write_batches(&[(view, &tiles)], Some(&late_commit));
    assert!(
        matches!(refused, Err(StoreError::Fenced { token: 1, .. })),
        "{refused:?}"
    );
    owner
        .process_fenced(STREAM, SHARD, &records[80..], false, 0, Some(2))
        .unwrap();
    let committed = online.checkpoint("zombie", STREAM, SHARD).unwrap().unwrap();
    assert_eq!(committed.records, stream.len() as u64);
    // The log: the first owner's file and the second's, nothing of the
    // zombie's batch.
    let mut files: Vec<String> = std::fs::read_dir(setup.repo.path().join("data/rides"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let name = |from: usize, to: usize, token: u64| {
        format!(
            "{STREAM}-{SHARD}-{}-{}-L{token}.parquet",
            records[from].sequence_number, records[to].sequence_number
        )
    };
    assert_eq!(
        files,
        [name(0, 59, 1), name(60, 79, 2), name(80, 159, 2)],
        "offline log"
    );
    let expected: Vec<_> = [1, 2, 3]
        .iter()
        .map(|&r| reference::values(&stream, r, end).unwrap())
        .collect();
    for (got, want) in setup.online(&[1, 2, 3], end).iter().zip(&expected) {
        let got: Vec<Value> = got.iter().map(|(v, _)| v.clone()).collect();
        assert_eq!(&got, want);
    }
}
