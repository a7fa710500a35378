//! The offline side: point-in-time retrieval (Feast's named cases and a
//! property test against a brute-force reference), materialization, offline
//! writes and pushes.

use feast_runtime::chrono::{TimeZone, Utc};
use feast_runtime::definition::Value;
use feast_runtime::definition::{
    DataSourceDef, EntityDef, FeastType, FeatureViewDef, FieldDef, JoinKeyValue, Location,
    SourceKind, ViewKind,
};
use feast_runtime::feature_store::{FeatureStore, Features, PushMode};
use feast_runtime::offline_store;
use feast_runtime::offline_store::retrieval::{self, ViewRequest};
use feast_runtime::polars::prelude::*;
use feast_tests::{StatsRow, TempRepo, entity_frame, example_config, stats_frame};

const T0: i64 = 1_736_467_200; // 2025-01-10T00:00:00Z
const H: i64 = 3_600;
const D: i64 = 86_400;

/// Feast's 14-row source (ttl = 1 day, marker = avg_daily_trips).
fn reference_rows() -> Vec<StatsRow> {
    vec![
        (1, T0 - 2 * D, Some(T0 - 2 * D), 0.1, 0.1, 101),
        (1, T0 - D, Some(T0 - D), 0.1, 0.1, 102),
        (1, T0 - H, Some(T0 - H), 0.1, 0.1, 103),
        (1, T0 - H, Some(T0 - 30 * 60), 0.1, 0.1, 104),
        (1, T0, Some(T0 + H), 0.1, 0.1, 105),
        (2, T0 - D - 1, Some(T0 - D - 1), 0.2, 0.2, 201),
        (2, T0 + D, Some(T0 + D), 0.2, 0.2, 202),
        (3, T0 - H, Some(T0 - H), 0.3, 0.3, 301),
        (3, T0 - H, Some(T0 - H), 0.3, 0.3, 302),
        (4, T0 - H, Some(T0 + 5 * H), 0.4, 0.4, 401),
        (4, T0 - 2 * H, Some(T0 - 2 * H), 0.4, 0.4, 402),
        (5, T0 - H, Some(T0 - 2 * H), 0.5, 0.5, 502),
        (5, T0 - H, Some(T0 - 3 * H), 0.5, 0.5, 501),
        (6, T0 - 3 * H, Some(T0 - 3 * H), 0.6, 0.6, 601),
    ]
}

/// The 14 entity rows q1..q14.
fn reference_entities() -> Vec<(i64, i64)> {
    vec![
        (1, T0),
        (1, T0 - 1),
        (1, T0 - H),
        (1, T0 - H - 1),
        (1, T0 - 3 * D),
        (2, T0 - 1),
        (2, T0),
        (2, T0 + 2 * D),
        (3, T0),
        (4, T0),
        (5, T0),
        (99, T0),
        (1, T0),
        (6, T0),
    ]
}

fn repo_with_source(rows: &[StatsRow]) -> (TempRepo, FeatureStore) {
    let repo = TempRepo::with_config(&example_config("pit"));
    offline_store::write_file(
        &repo.path().join("data/driver_stats.parquet/part-0.parquet"),
        &stats_frame(rows),
    )
    .unwrap();
    let store = FeatureStore::open(repo.path()).unwrap();
    (repo, store)
}

fn markers(df: &DataFrame, column: &str) -> Vec<Option<i64>> {
    df.column(column).unwrap().i64().unwrap().iter().collect()
}

#[test]
fn feasts_fourteen_cases_match_the_duckdb_store() {
    let (_repo, store) = repo_with_source(&reference_rows());
    let entities = entity_frame(&reference_entities());
    let features = Features::Refs(&[
        "driver_hourly_stats:avg_daily_trips",
        "driver_hourly_stats:conv_rate",
    ]);

    let df = store
        .get_historical_features(&entities, &features, false, false)
        .unwrap();
    assert_eq!(
        df.get_column_names(),
        [
            "driver_id",
            "event_timestamp",
            "avg_daily_trips",
            "conv_rate"
        ]
    );
    assert!(
        df.column("driver_id")
            .unwrap()
            .equals(entities.column("driver_id").unwrap()),
        "input order kept"
    );
    assert_eq!(
        markers(&df, "avg_daily_trips"),
        [
            Some(105),
            Some(104),
            Some(104),
            Some(102),
            None,
            Some(201),
            None,
            Some(202),
            Some(302),
            Some(401),
            Some(502),
            None,
            Some(105),
            Some(601)
        ]
    );

    let cut = store
        .get_historical_features(&entities, &features, true, true)
        .unwrap();
    assert_eq!(
        markers(&cut, "driver_hourly_stats__avg_daily_trips"),
        [
            Some(104),
            Some(104),
            Some(103),
            Some(102),
            None,
            Some(201),
            None,
            Some(202),
            Some(302),
            Some(402),
            Some(502),
            None,
            Some(104),
            Some(601)
        ]
    );
}

#[test]
fn retrieval_through_a_stream_views_function_and_a_service() {
    let (_repo, store) = repo_with_source(&reference_rows());
    let entities = entity_frame(&[(6, T0), (1, T0 - 3 * D)]);
    let df = store
        .get_historical_features(
            &entities,
            &Features::Service("driver_activity"),
            true,
            false,
        )
        .unwrap();
    assert_eq!(
        df.get_column_names(),
        [
            "driver_id",
            "event_timestamp",
            "driver_hourly_stats__conv_rate",
            "driver_hourly_stats__acc_rate",
            "driver_hourly_stats__avg_daily_trips",
            "driver_hourly_stats_stream__conv_percentage",
            "driver_hourly_stats_stream__acc_percentage",
        ]
    );
    let pct: Vec<Option<f32>> = df
        .column("driver_hourly_stats_stream__conv_percentage")
        .unwrap()
        .f32()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        pct,
        [
            Some(0.6f32 as f64 as f32 * 100.0).map(|_| (0.6f32 as f64 * 100.0) as f32),
            None
        ]
    );

    let err = store
        .get_historical_features(
            &entities,
            &Features::Refs(&[
                "driver_hourly_stats:conv_rate",
                "driver_hourly_stats_stream:conv_percentage",
                "driver_hourly_stats:nope",
            ]),
            false,
            false,
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unknown feature `nope` in view `driver_hourly_stats`; its features: conv_rate, acc_rate, avg_daily_trips"
    );
    let err = store
        .get_historical_features(
            &entity_frame(&[(1, T0)]).drop("event_timestamp").unwrap(),
            &Features::Refs(&["driver_hourly_stats:conv_rate"]),
            false,
            false,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing column `event_timestamp`"), "{err}");
}

#[test]
fn materialize_bounds_are_inclusive_and_incremental_resumes() {
    let (_repo, store) = repo_with_source(&reference_rows());
    let at = |s: i64| Utc.timestamp_opt(s, 0).unwrap();
    let read = |driver: i64, now: i64| -> Option<i64> {
        let r = store
            .get_online_features_at(
                &Features::Refs(&["driver_hourly_stats:avg_daily_trips"]),
                &[("driver_id", vec![JoinKeyValue::Int64(driver)])],
                false,
                at(now),
            )
            .unwrap();
        match r.columns[1].values[0] {
            Value::Int64(v) => Some(v),
            _ => None,
        }
    };
    // [T0 - 2d, T0 - 1h]: 104 (newest of driver 1 in range, tie by created), not 105.
    let stats = store
        .materialize(at(T0 - 2 * D), at(T0 - H), Some(&["driver_hourly_stats"]))
        .unwrap();
    assert_eq!(stats.views.len(), 1);
    assert_eq!(read(1, T0), Some(104));
    assert_eq!(read(2, T0 - D), Some(201));
    assert_eq!(read(6, T0), Some(601));
    assert_eq!(
        store
            .online_store()
            .materialized_until("driver_hourly_stats")
            .unwrap(),
        Some((T0 - H) * 1_000_000)
    );

    // Incremental: from the previous end (inclusive) to T0 + 1d.
    store
        .materialize_incremental(at(T0 + D), Some(&["driver_hourly_stats"]))
        .unwrap();
    assert_eq!(read(1, T0), Some(105));
    assert_eq!(read(2, T0 + D), Some(202));
    assert_eq!(read(6, T0), Some(601));
    assert_eq!(
        store
            .online_store()
            .materialized_until("driver_hourly_stats")
            .unwrap(),
        Some((T0 + D) * 1_000_000)
    );

    // A first incremental run starts at end - ttl.
    let stats = store
        .materialize_incremental(at(T0), Some(&["driver_hourly_stats_stream"]))
        .unwrap();
    assert_eq!(stats.rows_read, 11, "rows with event time in [T0 - 1d, T0]");
}

#[test]
fn offline_writes_check_columns_and_append() {
    let (repo, store) = repo_with_source(&reference_rows()[..2]);
    let extra = stats_frame(&[(7, T0, None, 0.7, 0.7, 701)])
        .lazy()
        .with_column(lit(1).alias("oops"))
        .collect()
        .unwrap();
    let err = store
        .write_to_offline_store("driver_hourly_stats", &extra.drop("created").unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "the frame's columns do not match batch source `driver_stats_source`: missing `created` extra `oops`"
    );

    let path = store
        .write_to_offline_store(
            "driver_hourly_stats",
            &stats_frame(&[(7, T0, None, 0.7, 0.7, 701)]),
        )
        .unwrap();
    assert!(path.starts_with(repo.path().join("data/driver_stats.parquet")));
    let entities = entity_frame(&[(7, T0), (1, T0)]);
    let df = store
        .get_historical_features(
            &entities,
            &Features::Refs(&["driver_hourly_stats:avg_daily_trips"]),
            false,
            false,
        )
        .unwrap();
    assert_eq!(markers(&df, "avg_daily_trips"), [Some(701), Some(102)]);
}

#[test]
fn push_writes_online_through_the_view_functions_and_offline() {
    let (_repo, store) = repo_with_source(&reference_rows()[..1]);
    let now = Utc::now().timestamp();
    let rows = stats_frame(&[(8, now, Some(now), 0.25, 0.5, 801)]);
    let stats = store
        .push("driver_stats_push", &rows, PushMode::OnlineAndOffline)
        .unwrap();
    // No view reads the push source in the example: the online part writes nothing.
    assert!(stats.is_empty());
    let df = store
        .get_historical_features(
            &entity_frame(&[(8, now)]),
            &Features::Refs(&["driver_hourly_stats:avg_daily_trips"]),
            false,
            false,
        )
        .unwrap();
    assert_eq!(markers(&df, "avg_daily_trips"), [Some(801)]);
    let err = store
        .push("driver_stats_source", &rows, PushMode::Online)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unknown push source `driver_stats_source`; push sources: driver_stats_push"
    );
}

// --- property test: the join against a brute-force reference ----------------

fn identity(df: DataFrame) -> Result<DataFrame, feast_runtime::definition::BoxError> {
    Ok(df)
}

const LOC: Location = Location {
    module_path: "t",
    file: "t.rs",
    line: 1,
    column: 1,
};
static E: EntityDef = EntityDef {
    name: "e",
    join_key: "k",
    value_type: FeastType::Int64,
    description: "",
    tags: &[],
    owner: "",
    location: LOC,
};
static SRC: DataSourceDef = DataSourceDef {
    name: "s",
    kind: SourceKind::File {
        path: "s",
        schema: &[
            FieldDef {
                name: "k",
                dtype: FeastType::Int64,
            },
            FieldDef {
                name: "ts",
                dtype: FeastType::UnixTimestamp,
            },
            FieldDef {
                name: "cr",
                dtype: FeastType::UnixTimestamp,
            },
            FieldDef {
                name: "v",
                dtype: FeastType::Int64,
            },
        ],
    },
    timestamp_field: "ts",
    created_timestamp_column: Some("cr"),
    field_mapping: &[],
    description: "",
    tags: &[],
    owner: "",
    location: LOC,
};
static SHORT: FeatureViewDef = FeatureViewDef {
    name: "short",
    kind: ViewKind::Batch,
    entities: &[&E],
    source: &SRC,
    schema: &[FieldDef {
        name: "v",
        dtype: FeastType::Int64,
    }],
    output: &[FieldDef {
        name: "v",
        dtype: FeastType::Int64,
    }],
    aggregations: &[],
    ttl_seconds: 5,
    timestamp_field: None,
    online: true,
    offline: false,
    description: "",
    tags: &[],
    owner: "",
    transform: identity,
    location: LOC,
};
static FOREVER: FeatureViewDef = FeatureViewDef {
    name: "forever",
    ttl_seconds: 0,
    ..SHORT
};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

fn frame(cols: Vec<(&str, Vec<i64>, bool)>) -> DataFrame {
    let ts = FeastType::UnixTimestamp.dtype();
    let n = cols[0].1.len();
    DataFrame::new(
        n,
        cols.into_iter()
            .map(|(name, v, is_ts)| {
                let c = Column::new(
                    name.into(),
                    v.into_iter()
                        .map(|x| if is_ts { x * 1_000_000 } else { x })
                        .collect::<Vec<_>>(),
                );
                if is_ts { c.cast(&ts).unwrap() } else { c }
            })
            .collect(),
    )
    .unwrap()
}

#[test]
fn point_in_time_join_matches_brute_force_on_random_data() {
    for seed in 0..300u64 {
        let mut rng = Rng(seed);
        // Few keys and few distinct times, so ties, ttl edges and duplicates are common.
        let n = rng.below(30) as usize;
        let rows: Vec<(i64, i64, i64, i64)> = (0..n)
            .map(|i| (rng.below(4), rng.below(20), rng.below(20), i as i64))
            .collect();
        let m = 1 + rng.below(20) as usize;
        let ents: Vec<(i64, i64)> = (0..m).map(|_| (rng.below(5), rng.below(25) - 2)).collect();
        let filter_created = seed % 2 == 1;

        let feature_rows = frame(vec![
            ("k", rows.iter().map(|r| r.0).collect(), false),
            ("ts", rows.iter().map(|r| r.1).collect(), true),
            ("cr", rows.iter().map(|r| r.2).collect(), true),
            ("v", rows.iter().map(|r| r.3).collect(), false),
        ]);
        let entity_df = frame(vec![
            ("k", ents.iter().map(|e| e.0).collect(), false),
            ("event_timestamp", ents.iter().map(|e| e.1).collect(), true),
        ]);
        let out = retrieval::point_in_time_join(
            &entity_df,
            &[
                ViewRequest {
                    view: &SHORT,
                    rows: &feature_rows,
                    features: vec!["v"],
                },
                ViewRequest {
                    view: &FOREVER,
                    rows: &feature_rows,
                    features: vec!["v"],
                },
            ],
            retrieval::Options {
                full_feature_names: true,
                filter_by_created_timestamp: filter_created,
            },
        )
        .unwrap();

        for (view, ttl) in [("short__v", 5), ("forever__v", 0)] {
            let got: Vec<Option<i64>> = out.column(view).unwrap().i64().unwrap().iter().collect();
            let want: Vec<Option<i64>> = ents
                .iter()
                .map(|&(k, t)| {
                    rows.iter()
                        .filter(|r| {
                            r.0 == k
                                && r.1 <= t
                                && (ttl == 0 || r.1 >= t - ttl)
                                && (!filter_created || r.2 <= t)
                        })
                        .max_by_key(|r| (r.1, r.2, r.3))
                        .map(|r| r.3)
                })
                .collect();
            assert_eq!(
                got, want,
                "seed {seed}, {view}, rows {rows:?}, entities {ents:?}"
            );
        }
    }
}
