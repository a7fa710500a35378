//! The online stores, SQLite and Redis, through the `FeatureStore` API: one
//! suite of cases run on both (newer-wins writes, ttl statuses, typed reads,
//! bad frames), and each store's layout checked byte for byte against
//! Feast's reference rows.

use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::views::driver_hourly_stats;
use feast_runtime::chrono::{DateTime, TimeZone, Utc};
use feast_runtime::definition::Entity;
use feast_runtime::definition::JoinKeyValue;
use feast_runtime::definition::Value;
use feast_runtime::feature_store::{FeatureStore, Features, FieldStatus};
use feast_runtime::polars::prelude::*;
use feast_tests::redis::RedisServer;
use feast_tests::{Backend, TempRepo, repo_on, stats_frame, stats_frame_us};

const T: i64 = 1_735_732_800; // 2025-01-01T12:00:00Z

/// A store of `backend` for `project`, with what it lives on.
struct Opened {
    repo: TempRepo,
    redis: Option<RedisServer>,
    store: FeatureStore,
}

fn open_on(backend: Backend, project: &str) -> Opened {
    let (repo, redis) = repo_on(backend, project);
    let store = FeatureStore::open(repo.path()).unwrap();
    Opened { repo, redis, store }
}

fn open_store(project: &str) -> (TempRepo, FeatureStore) {
    let o = open_on(Backend::Sqlite, project);
    (o.repo, o.store)
}

feast_tests::on_both_stores!(
    an_older_event_never_overwrites_a_newer_one_in_any_order,
    sub_second_order_within_a_batch_is_kept,
    statuses_present_null_not_found_and_outside_max_age,
    typed_reads_return_rows,
    bad_frames_name_the_problem,
    materialization_state_and_teardown,
    concurrent_writers_keep_the_newest_event,
    entity_keys_are_those_a_view_holds,
    event_times_come_back_at_the_stores_precision,
);

#[test]
fn sqlite_rows_are_feasts_layout_byte_for_byte() {
    let (repo, store) = open_store("driver_anchor");
    // Event 12:00:00.123456Z, created 12:05:00Z: Feast's reference row.
    let df = stats_frame_us(&[(1001, T, Some(T + 300), 0.5, 0.75, 7)], &[123_456]);
    let stats = store
        .write_to_online_store("driver_hourly_stats", &df)
        .unwrap();
    assert_eq!((stats.rows, stats.values_written), (1, 3));

    let conn = rusqlite_conn(&repo);
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'driver_anchor_driver_hourly_stats'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let columns: Vec<(String, String, i64)> = conn
        .prepare(
            "SELECT name, type, pk FROM pragma_table_info('driver_anchor_driver_hourly_stats')",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        columns,
        [
            ("entity_key".into(), "BLOB".into(), 1),
            ("feature_name".into(), "TEXT".into(), 2),
            ("value".into(), "BLOB".into(), 0),
            ("value_text".into(), "TEXT".into(), 0),
            ("vector_value".into(), "BLOB".into(), 0),
            ("event_ts".into(), "timestamp".into(), 0),
            ("created_ts".into(), "timestamp".into(), 0),
        ]
    );
    assert!(
        sql.contains("PRIMARY KEY(entity_key, feature_name)"),
        "{sql}"
    );

    type Row = (
        String,
        String,
        String,
        Option<String>,
        Option<Vec<u8>>,
        i64,
        i64,
    );
    let rows: Vec<Row> = conn
        .prepare("SELECT hex(entity_key), feature_name, hex(value), value_text, vector_value, event_ts, created_ts FROM driver_anchor_driver_hourly_stats ORDER BY feature_name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key =
        "0100000002000000090000006472697665725F69640400000008000000E903000000000000".to_owned();
    assert_eq!(
        rows,
        [
            (
                key.clone(),
                "acc_rate".into(),
                "350000403F".into(),
                Some("0.75".into()),
                None,
                1_735_732_800,
                1_735_733_100
            ),
            (
                key.clone(),
                "avg_daily_trips".into(),
                "2007".into(),
                Some("7".into()),
                None,
                1_735_732_800,
                1_735_733_100
            ),
            (
                key,
                "conv_rate".into(),
                "350000003F".into(),
                Some("0.5".into()),
                None,
                1_735_732_800,
                1_735_733_100
            ),
        ]
    );
}

fn rusqlite_conn(repo: &TempRepo) -> feast_tests::Sqlite {
    feast_tests::Sqlite::open(repo.path().join("data/online.db")).unwrap()
}

/// `avg_daily_trips` of driver 1001, as stored.
fn stored_marker(store: &FeatureStore) -> Option<i64> {
    markers(store, &[1001])[0]
}

fn an_older_event_never_overwrites_a_newer_one_in_any_order(backend: Backend) {
    // Three versions: older event; newer event; same newer event created later.
    let versions: [feast_tests::StatsRow; 3] = [
        (1001, T - 60, Some(T - 60), 0.1, 0.1, 1),
        (1001, T, Some(T), 0.2, 0.2, 2),
        (1001, T, Some(T + 5), 0.3, 0.3, 3),
    ];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        // One write per version.
        let opened = open_on(backend, "p");
        let store = &opened.store;
        for i in order {
            store
                .write_to_online_store("driver_hourly_stats", &stats_frame(&[versions[i]]))
                .unwrap();
        }
        assert_eq!(
            stored_marker(store),
            Some(3),
            "separate writes in order {order:?}"
        );

        // All versions in one batch.
        let opened = open_on(backend, "p");
        let store = &opened.store;
        let batch: Vec<_> = order.iter().map(|&i| versions[i]).collect();
        let stats = store
            .write_to_online_store("driver_hourly_stats", &stats_frame(&batch))
            .unwrap();
        assert_eq!(stats.rows, 1, "one entity in the batch");
        assert_eq!(
            stored_marker(store),
            Some(3),
            "one batch in order {order:?}"
        );
    }
}

/// `avg_daily_trips` (the tests' marker) of each driver.
fn markers(store: &FeatureStore, drivers: &[i64]) -> Vec<Option<i64>> {
    let r = store
        .get_online_features_at(
            &Features::Refs(&["driver_hourly_stats:avg_daily_trips"]),
            &[(
                "driver_id",
                drivers.iter().map(|&d| JoinKeyValue::Int64(d)).collect(),
            )],
            false,
            Utc.timestamp_opt(T, 0).unwrap(),
        )
        .unwrap();
    r.columns[1]
        .values
        .iter()
        .map(|v| match v {
            Value::Int64(v) => Some(*v),
            _ => None,
        })
        .collect()
}

fn concurrent_writers_keep_the_newest_event(backend: Backend) {
    // Two writers, each with its own store, start together on the same
    // 3,000 drivers (six script calls on Redis, in the same order), one with
    // a newer event than the other; eight times, on fresh drivers each
    // time. A store that read the stored time and then wrote would, now and
    // then, let the older write land on top of the newer one.
    const TRIALS: i64 = 8;
    const DRIVERS: i64 = 3000;
    let opened = open_on(backend, "p");
    let frame = |trial: i64, newer: bool| {
        let t = T - 60 + i64::from(newer);
        let rows: Vec<feast_tests::StatsRow> = (0..DRIVERS)
            .map(|d| (trial * DRIVERS + d, t, Some(t), 0.5, 0.5, i64::from(newer)))
            .collect();
        stats_frame(&rows)
    };
    let frames: Vec<[DataFrame; 2]> = (0..TRIALS)
        .map(|trial| [frame(trial, false), frame(trial, true)])
        .collect();
    let start = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for which in [0, 1] {
            let store = FeatureStore::open(opened.repo.path()).unwrap();
            let (frames, start) = (&frames, &start);
            s.spawn(move || {
                for trial in frames {
                    start.wait();
                    store
                        .write_to_online_store("driver_hourly_stats", &trial[which])
                        .unwrap();
                }
            });
        }
    });
    let drivers: Vec<i64> = (0..TRIALS * DRIVERS).collect();
    let markers = markers(&opened.store, &drivers);
    let older: Vec<i64> = drivers
        .iter()
        .zip(&markers)
        .filter(|(_, m)| **m != Some(1))
        .map(|(d, _)| *d)
        .collect();
    assert!(
        older.is_empty(),
        "{} drivers left with the older event, the first {:?}",
        older.len(),
        &older[..older.len().min(10)]
    );
}

fn sub_second_order_within_a_batch_is_kept(backend: Backend) {
    let opened = open_on(backend, "p");
    let store = &opened.store;
    let rows = [(1001, T, None, 0.1, 0.1, 1), (1001, T, None, 0.2, 0.2, 2)];
    // The second row is 1 µs older: the first must win.
    store
        .write_to_online_store("driver_hourly_stats", &stats_frame_us(&rows, &[1, 0]))
        .unwrap();
    assert_eq!(stored_marker(store), Some(1));
}

fn statuses_present_null_not_found_and_outside_max_age(backend: Backend) {
    let opened = open_on(backend, "p");
    let store = &opened.store;
    let ts_type = feast_runtime::definition::FeastType::UnixTimestamp.dtype();
    let df = DataFrame::new(
        2,
        vec![
            Column::new("driver_id".into(), [1001i64, 1002]),
            Column::new(
                "event_timestamp".into(),
                [T * 1_000_000, (T - 86_400 - 1) * 1_000_000],
            )
            .cast(&ts_type)
            .unwrap(),
            Column::new("conv_rate".into(), [None, Some(0.5f32)]),
            Column::new("acc_rate".into(), [Some(0.25f32), Some(0.5)]),
            Column::new("avg_daily_trips".into(), [Some(3i64), Some(4)]),
        ],
    )
    .unwrap();
    store
        .write_to_online_store("driver_hourly_stats", &df)
        .unwrap();
    let now: DateTime<Utc> = Utc.timestamp_opt(T, 0).unwrap();
    let r = store
        .get_online_features_at(
            &Features::Refs(&[
                "driver_hourly_stats:acc_rate",
                "driver_hourly_stats:conv_rate",
            ]),
            &[(
                "driver_id",
                vec![
                    JoinKeyValue::Int64(1001),
                    JoinKeyValue::Int64(1002),
                    JoinKeyValue::Int64(99),
                ],
            )],
            false,
            now,
        )
        .unwrap();
    let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["driver_id", "acc_rate", "conv_rate"],
        "entity first, then request order"
    );
    assert_eq!(
        r.columns[0].values,
        [Value::Int64(1001), Value::Int64(1002), Value::Int64(99)]
    );
    assert_eq!(r.columns[0].statuses, [FieldStatus::Present; 3]);
    assert_eq!(
        r.columns[1].values,
        [Value::Float32(0.25), Value::Null, Value::Null]
    );
    assert_eq!(
        r.columns[1].statuses,
        [
            FieldStatus::Present,
            FieldStatus::OutsideMaxAge,
            FieldStatus::NotFound
        ]
    );
    assert_eq!(
        r.columns[1].event_timestamps_us,
        [T * 1_000_000, (T - 86_400 - 1) * 1_000_000, 0]
    );
    assert_eq!(
        r.columns[2].statuses,
        [
            FieldStatus::NullValue,
            FieldStatus::OutsideMaxAge,
            FieldStatus::NotFound
        ]
    );

    // Exactly ttl old is still fresh.
    let r = store
        .get_online_features_at(
            &Features::Refs(&["driver_hourly_stats:acc_rate"]),
            &[("driver_id", vec![JoinKeyValue::Int64(1002)])],
            true,
            Utc.timestamp_opt(T - 1, 0).unwrap(),
        )
        .unwrap();
    assert_eq!(r.columns[1].name, "driver_hourly_stats__acc_rate");
    assert_eq!(r.columns[1].statuses, [FieldStatus::Present]);
}

fn typed_reads_return_rows(backend: Backend) {
    let opened = open_on(backend, "p");
    let store = &opened.store;
    let now = Utc::now().timestamp();
    store
        .write_to_online_store(
            "driver_hourly_stats",
            &stats_frame(&[(1001, now, Some(now), 0.5, 0.75, 7)]),
        )
        .unwrap();
    let rows = store
        .get_online::<driver_hourly_stats>(&[Driver::from_key(1001), Driver::from_key(1002)])
        .unwrap();
    assert_eq!(rows.len(), 2);
    let row = rows[0].as_ref().expect("driver 1001 was written");
    assert_eq!(row.driver, Driver { driver_id: 1001 });
    assert_eq!(row.event_timestamp, Utc.timestamp_opt(now, 0).unwrap());
    assert_eq!(
        (row.conv_rate, row.acc_rate, row.avg_daily_trips),
        (Some(0.5), Some(0.75), Some(7))
    );
    assert!(rows[1].is_none());
}

fn bad_frames_name_the_problem(backend: Backend) {
    let opened = open_on(backend, "p");
    let store = &opened.store;
    let good = stats_frame(&[(1001, T, None, 0.5, 0.5, 1)]);

    let err = store
        .write_to_online_store("driver_hourly_stat", &good)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unknown feature view `driver_hourly_stat`; feature views: driver_hourly_stats, driver_hourly_stats_stream, driver_trip_windows"
    );

    let no_ts = good.drop("event_timestamp").unwrap();
    let err = store
        .write_to_online_store("driver_hourly_stats", &no_ts)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "view `driver_hourly_stats`: missing column `event_timestamp` (UnixTimestamp); the frame has: driver_id, created, conv_rate, acc_rate, avg_daily_trips"
    );

    let mut wrong = good.clone();
    wrong
        .with_column(Column::new("avg_daily_trips".into(), ["seven"]))
        .unwrap();
    let err = store
        .write_to_online_store("driver_hourly_stats", &wrong)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "view `driver_hourly_stats`: column `avg_daily_trips` is str, which does not convert to Int64"
    );

    let mut null_key = good.clone();
    null_key
        .with_column(Column::new("driver_id".into(), [None::<i64>]))
        .unwrap();
    let err = store
        .write_to_online_store("driver_hourly_stats", &null_key)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "view `driver_hourly_stats`: column `driver_id` has a null at row 0; a join key cannot be null"
    );

    // Nothing above was written.
    assert_eq!(stored_marker(store), None);
}

fn materialization_state_and_teardown(backend: Backend) {
    let opened = open_on(backend, "p");
    let store = &opened.store;
    let online = store.online_store();
    assert_eq!(
        online.materialized_until("driver_hourly_stats").unwrap(),
        None
    );
    online
        .set_materialized_until("driver_hourly_stats", 1_234_567)
        .unwrap();
    assert_eq!(
        online.materialized_until("driver_hourly_stats").unwrap(),
        Some(1_234_567)
    );
    store
        .write_to_online_store(
            "driver_hourly_stats",
            &stats_frame(&[(1001, T, None, 0.5, 0.5, 7)]),
        )
        .unwrap();
    assert_eq!(stored_marker(store), Some(7));
    store.teardown().unwrap();
    assert_eq!(stored_marker(store), None, "teardown removes the values");
    assert_eq!(
        online.materialized_until("driver_hourly_stats").unwrap(),
        None
    );
}

fn event_times_come_back_at_the_stores_precision(backend: Backend) {
    let opened = open_on(backend, "p");
    let store = &opened.store;
    let df = stats_frame_us(&[(1001, T, Some(T), 0.5, 0.5, 7)], &[123_456]);
    store
        .write_to_online_store("driver_hourly_stats", &df)
        .unwrap();
    let now: DateTime<Utc> = Utc.timestamp_opt(T, 0).unwrap();
    let r = store
        .get_online_features_at(
            &Features::Refs(&["driver_hourly_stats:conv_rate"]),
            &[("driver_id", vec![JoinKeyValue::Int64(1001)])],
            false,
            now,
        )
        .unwrap();
    // Feast's Redis keeps the Timestamp's nanoseconds, its SQLite whole
    // seconds; Feast's JSON prints them as protobuf does.
    let (us, text) = match backend {
        Backend::Sqlite => (T * 1_000_000, "2025-01-01T12:00:00Z"),
        Backend::Redis => (T * 1_000_000 + 123_456, "2025-01-01T12:00:00.123456Z"),
    };
    assert_eq!(r.columns[1].event_timestamps_us, [us]);
    let json = feast_runtime::feature_store::json::feast_json(&r);
    assert_eq!(json["results"][1]["event_timestamps"][0], text);
    assert_eq!(
        json["results"][0]["event_timestamps"][0],
        "1970-01-01T00:00:00Z"
    );
}

fn entity_keys_are_those_a_view_holds(backend: Backend) {
    let opened = open_on(backend, "p");
    let store = &opened.store;
    let view = store.view("driver_hourly_stats").unwrap();
    let other = store.view("driver_hourly_stats_stream").unwrap();
    assert_eq!(
        store.online_store().entity_keys(view).unwrap(),
        Vec::<Vec<u8>>::new()
    );
    store
        .write_to_online_store(
            "driver_hourly_stats",
            &stats_frame(&[
                (1003, T, None, 0.5, 0.5, 7),
                (1001, T, None, 0.5, 0.5, 7),
                (1001, T + 1, None, 0.5, 0.5, 7),
            ]),
        )
        .unwrap();
    let mut keys = store.online_store().entity_keys(view).unwrap();
    keys.sort();
    let key = |id: i64| {
        let mut k = Vec::new();
        feast_runtime::definition::serialize_entity_key(
            &mut k,
            &[("driver_id", JoinKeyValue::Int64(id))],
        );
        k
    };
    assert_eq!(keys, [key(1001), key(1003)]);
    // Another view of the same entity (one Redis hash per entity) has none.
    assert_eq!(
        store.online_store().entity_keys(other).unwrap(),
        Vec::<Vec<u8>>::new()
    );
}

#[test]
fn checkpoints_advance_once_on_both_stores() {
    use feast_runtime::online_store::CheckpointUpdate;
    for backend in [Backend::Sqlite, Backend::Redis] {
        let opened = open_on(backend, "p");
        let store = &opened.store;
        let online = store.online_store();
        let cp = |seq: &'static str, records| CheckpointUpdate {
            consumer: "p",
            stream: "s",
            shard: "shardId-0",
            sequence_number: Some(seq),
            finished: false,
            records,
            watermarks: &[("v", 1_000)],
            fence: None,
        };
        assert_eq!(online.checkpoint("p", "s", "shardId-0").unwrap(), None);
        online.write_batches(&[], Some(&cp("100", 10))).unwrap();
        online.write_batches(&[], Some(&cp("200", 5))).unwrap();
        let got = online.checkpoint("p", "s", "shardId-0").unwrap().unwrap();
        assert_eq!(
            (got.sequence_number.as_deref(), got.records, got.finished),
            (Some("200"), 15, false),
            "{backend:?}"
        );
        assert_eq!(got.watermarks, [("v".to_owned(), 1_000)], "{backend:?}");
        // A batch sent again (its reply lost) changes nothing: the count
        // stays exact, and the batch's rows and tiles are not applied twice.
        online.write_batches(&[], Some(&cp("200", 5))).unwrap();
        online.write_batches(&[], Some(&cp("99", 1))).unwrap();
        let got = online.checkpoint("p", "s", "shardId-0").unwrap().unwrap();
        assert_eq!(
            (got.sequence_number.as_deref(), got.records),
            (Some("200"), 15),
            "{backend:?}"
        );
        let done = CheckpointUpdate {
            sequence_number: None,
            finished: true,
            records: 0,
            ..cp("0", 0)
        };
        online.write_batches(&[], Some(&done)).unwrap();
        let got = online.checkpoint("p", "s", "shardId-0").unwrap().unwrap();
        assert!(got.finished, "{backend:?}");
        assert_eq!(got.sequence_number.as_deref(), Some("200"), "{backend:?}");
    }
}

#[test]
fn redis_hashes_are_feasts_layout_byte_for_byte() {
    let Opened {
        store,
        repo: _repo,
        redis,
    } = open_on(Backend::Redis, "driver_anchor");
    // Feast's reference row: event 12:00:00.123456Z, created 12:05:00Z.
    let df = stats_frame_us(&[(1001, T, Some(T + 300), 0.5, 0.75, 7)], &[123_456]);
    store
        .write_to_online_store("driver_hourly_stats", &df)
        .unwrap();
    let mut c = redis.as_ref().unwrap().client();
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let entity_key = "0100000002000000090000006472697665725f69640400000008000000e903000000000000";
    let project = hex(b"driver_anchor");
    assert_eq!(
        keys.iter().map(|k| hex(k)).collect::<Vec<_>>(),
        [format!("{entity_key}{project}")]
    );
    let fields: std::collections::BTreeMap<Vec<u8>, Vec<u8>> =
        redis::cmd("HGETALL").arg(&keys[0]).query(&mut c).unwrap();
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (hex(k), hex(v))).collect();
    assert_eq!(
        fields,
        [
            ("18a5e5a3".to_owned(), "2007".to_owned()), // avg_daily_trips = 7
            // `_created:driver_hourly_stats` (feast-rs's own; Feast ignores
            // it): `created@event`, µs.
            (
                hex(b"_created:driver_hourly_stats"),
                hex(b"1735733100000000@1735732800123456")
            ),
            // `_ts:driver_hourly_stats`: Timestamp {seconds 1735732800, nanos 123456000}.
            (
                hex(b"_ts:driver_hourly_stats"),
                "08c0dcd4bb06108094ef3a".to_owned()
            ),
            ("6160e3da".to_owned(), "350000003f".to_owned()), // conv_rate = 0.5
            ("fa5e58ad".to_owned(), "350000403f".to_owned()), // acc_rate = 0.75
        ]
    );
    let ttl: i64 = redis::cmd("TTL").arg(&keys[0]).query(&mut c).unwrap();
    assert_eq!(ttl, -1, "no expiry without key_ttl_seconds");
}

#[test]
fn redis_over_tls_trusts_the_named_ca_only() {
    let server = RedisServer::start_tls();
    let ca = server.ca_file().unwrap();
    let open = |connection_string: &str| {
        let config = feast_tests::example_redis_config("tls", connection_string);
        let repo = TempRepo::with_config(&config);
        let store = FeatureStore::open(repo.path());
        (repo, store)
    };

    // `ssl=true` with the server's CA: the store works as over plain TCP
    // (and the server has no plain port at all).
    let (_repo, store) = open(&server.connection_string());
    let store = store.unwrap();
    store
        .write_to_online_store(
            "driver_hourly_stats",
            &stats_frame(&[(1001, T, Some(T), 0.5, 0.5, 7)]),
        )
        .unwrap();
    assert_eq!(stored_marker(&store), Some(7));

    // Without the CA, the system's roots do not vouch for the server.
    let (_repo, store) = open(&format!("127.0.0.1:{},ssl=true", server.port()));
    let err = store
        .unwrap()
        .write_to_online_store(
            "driver_hourly_stats",
            &stats_frame(&[(1001, T, Some(T), 0.5, 0.5, 8)]),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate"), "{err}");

    // A CA file that is not there is named.
    let missing = ca.with_file_name("missing.pem");
    let (_repo, store) = open(&format!(
        "127.0.0.1:{},ssl=true,ssl_ca_certs={}",
        server.port(),
        missing.display()
    ));
    let err = store.unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "ssl_ca_certs {:?} cannot be read",
            missing.display().to_string()
        )),
        "{err}"
    );
}

#[test]
fn a_created_time_left_by_an_earlier_event_refuses_nothing_on_redis() {
    let Opened {
        store,
        repo: _repo,
        redis,
    } = open_on(Backend::Redis, "p");
    // feast-rs writes an event created late...
    store
        .write_to_online_store(
            "driver_hourly_stats",
            &stats_frame(&[(1001, T, Some(T + 3600), 0.5, 0.5, 1)]),
        )
        .unwrap();
    // ...then another writer (Feast's, which knows no `_created`) writes a
    // newer event: `_ts` moves, `_created` stays.
    let mut c = redis.as_ref().unwrap().client();
    let mut key = Vec::new();
    feast_runtime::definition::serialize_entity_key(
        &mut key,
        &[("driver_id", JoinKeyValue::Int64(1001))],
    );
    key.extend_from_slice(b"p");
    let t2 = T + 60;
    let mut ts = vec![0x08];
    let mut v = t2 as u64;
    while v >= 0x80 {
        ts.push((v as u8) | 0x80);
        v >>= 7;
    }
    ts.push(v as u8);
    redis::cmd("HSET")
        .arg(&key)
        .arg("_ts:driver_hourly_stats")
        .arg(&ts)
        .query::<()>(&mut c)
        .unwrap();
    // A write of that same event, created before the stale created time,
    // replaces it (the stored event has no created time of its own).
    store
        .write_to_online_store(
            "driver_hourly_stats",
            &stats_frame(&[(1001, t2, Some(T + 120), 0.5, 0.5, 2)]),
        )
        .unwrap();
    assert_eq!(stored_marker(&store), Some(2));
    // And the created time now belongs to that event: an equal event
    // created earlier is refused, one created later wins.
    for (created, marker, want) in [(T + 100, 3, 2), (T + 130, 4, 4)] {
        store
            .write_to_online_store(
                "driver_hourly_stats",
                &stats_frame(&[(1001, t2, Some(created), 0.5, 0.5, marker)]),
            )
            .unwrap();
        assert_eq!(stored_marker(&store), Some(want), "created {created}");
    }
}

#[test]
fn redis_errors_say_whether_trying_again_can_help() {
    use feast_runtime::feature_store::Error as E;
    let Opened {
        store,
        repo,
        mut redis,
    } = open_on(Backend::Redis, "p");
    let transient = |e: &E| match e {
        E::Online(o) => o.is_transient(),
        other => panic!("not a store error: {other}"),
    };
    let write = |store: &FeatureStore| {
        store.write_to_online_store(
            "driver_hourly_stats",
            &stats_frame(&[(1001, T, None, 0.5, 0.5, 7)]),
        )
    };
    write(&store).unwrap();

    // A key of another type where the entity's hash belongs: WRONGTYPE,
    // the same however often it is tried.
    let mut c = redis.as_ref().unwrap().client();
    let mut key = Vec::new();
    feast_runtime::definition::serialize_entity_key(
        &mut key,
        &[("driver_id", JoinKeyValue::Int64(1001))],
    );
    key.extend_from_slice(b"p");
    redis::cmd("DEL").arg(&key).query::<()>(&mut c).unwrap();
    redis::cmd("SET")
        .arg(&key)
        .arg("not a hash")
        .query::<()>(&mut c)
        .unwrap();
    let e = write(&store).unwrap_err();
    assert!(!transient(&e), "{e}");
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");

    // A password the store does not send: refused, not retried.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret")
        .query::<()>(&mut c)
        .unwrap();
    let fresh = FeatureStore::open(repo.path()).unwrap();
    let e = write(&fresh).unwrap_err();
    assert!(!transient(&e), "{e}");
    assert!(e.to_string().contains("NOAUTH"), "{e}");

    // The server gone: unavailable, and worth trying again.
    redis.as_mut().unwrap().stop();
    let e = write(&fresh).unwrap_err();
    assert!(transient(&e), "{e}");
    assert!(
        e.to_string().starts_with("online store unavailable: "),
        "{e}"
    );
}

#[test]
fn redis_writes_survive_a_flushed_script_cache() {
    let Opened {
        store,
        repo: _repo,
        redis,
    } = open_on(Backend::Redis, "p");
    let write = |marker: i64| {
        let t = T + marker;
        store.write_to_online_store(
            "driver_hourly_stats",
            &stats_frame(&[(1001, t, Some(t), 0.5, 0.5, marker)]),
        )
    };
    write(1).unwrap();
    // What a restarted or failed-over server looks like to a kept
    // connection: the same data, no scripts.
    let mut c = redis.as_ref().unwrap().client();
    redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query::<()>(&mut c)
        .unwrap();
    write(2).unwrap();
    assert_eq!(stored_marker(&store), Some(2));
}
