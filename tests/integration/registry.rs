use feast_runtime::definition::{
    DataSourceDef, Definition, EntityDef, FeastType, FeatureProjection, FeatureServiceDef,
    FeatureViewDef, FieldDef, Location, RecordFormat, SourceKind, ViewKind,
};
use feast_runtime::registry::Registry;
use feast_runtime::transform;

#[test]
fn example_registers_exactly_its_definitions() {
    let reg = Registry::load().expect("the example's definitions are valid");
    fn names(it: impl Iterator<Item = &'static str>) -> Vec<&'static str> {
        it.collect()
    }
    assert_eq!(names(reg.entities().map(|e| e.name)), ["driver"]);
    assert_eq!(
        names(reg.data_sources().map(|s| s.name)),
        [
            "driver_stats_push",
            "driver_stats_source",
            "driver_stats_stream"
        ]
    );
    assert_eq!(
        names(reg.feature_views().map(|v| v.name)),
        [
            "driver_hourly_stats",
            "driver_hourly_stats_stream",
            "driver_trip_windows"
        ]
    );
    assert_eq!(
        names(reg.feature_services().map(|s| s.name)),
        ["driver_activity"]
    );
}

#[test]
fn example_definitions_carry_their_arguments() {
    let reg = Registry::load().unwrap();
    let driver = reg.entity("driver").unwrap();
    assert_eq!(
        (driver.join_key, driver.value_type),
        ("driver_id", FeastType::Int64)
    );
    assert_eq!(driver.description, "A driver of the ride-hailing service.");
    assert!(
        driver.location.file.ends_with("examples/src/entities.rs"),
        "{}",
        driver.location
    );

    let stream = reg.data_source("driver_stats_stream").unwrap();
    let SourceKind::Kinesis {
        stream_name,
        region,
        batch_source,
        ..
    } = stream.kind
    else {
        panic!("driver_stats_stream is a Kinesis source: {:?}", stream.kind);
    };
    assert_eq!(
        (stream_name, region, batch_source.name),
        ("driver_stats", "us-east-1", "driver_stats_source")
    );
    assert_eq!(
        stream.raw_schema(),
        [
            FieldDef {
                name: "driver_id",
                dtype: FeastType::Int32
            },
            FieldDef {
                name: "event_timestamp",
                dtype: FeastType::UnixTimestamp
            },
            FieldDef {
                name: "conv_rate",
                dtype: FeastType::Float64
            },
            FieldDef {
                name: "acc_rate",
                dtype: FeastType::Float64
            },
            FieldDef {
                name: "created",
                dtype: FeastType::UnixTimestamp
            },
        ]
    );

    let push = reg.data_source("driver_stats_push").unwrap();
    assert_eq!(push.event_timestamp_field(), "event_timestamp");
    assert_eq!(push.created_timestamp_field(), Some("created"));

    let view = reg.feature_view("driver_hourly_stats_stream").unwrap();
    assert_eq!(view.kind, ViewKind::Stream);
    assert_eq!(view.ttl_seconds, 86_400);
    assert!(view.online && view.offline);
    assert_eq!(view.tags, [("team", "driver_performance")]);
    assert_eq!(view.owner, "driver-team@example.com");
    assert_eq!(
        view.output_schema(),
        [
            FieldDef {
                name: "driver_id",
                dtype: FeastType::Int64
            },
            FieldDef {
                name: "event_timestamp",
                dtype: FeastType::UnixTimestamp
            },
            FieldDef {
                name: "conv_percentage",
                dtype: FeastType::Float32
            },
            FieldDef {
                name: "acc_percentage",
                dtype: FeastType::Float32
            },
        ]
    );

    let batch = reg.feature_view("driver_hourly_stats").unwrap();
    assert_eq!(
        (batch.kind, batch.ttl_seconds, batch.source.name),
        (ViewKind::Batch, 86_400, "driver_stats_source")
    );

    let service = reg.feature_service("driver_activity").unwrap();
    let projections: Vec<(&str, &[&str])> = service
        .features
        .iter()
        .map(|p| (p.view.name, p.features))
        .collect();
    assert_eq!(
        projections,
        [
            ("driver_hourly_stats", &[][..]),
            (
                "driver_hourly_stats_stream",
                &["conv_percentage", "acc_percentage"][..]
            ),
        ]
    );
}

#[test]
fn example_view_functions_produce_their_declared_schema() {
    let reg = Registry::load().unwrap();
    for view in reg.feature_views() {
        let report = transform::check_view(view);
        assert!(
            report.errors.is_empty(),
            "{}: {:?}",
            view.name,
            report.errors
        );
        assert!(report.extra.is_empty(), "{}: {:?}", view.name, report.extra);
    }
}

#[test]
fn stream_view_computes_percentages() {
    use feast_runtime::polars::prelude::*;
    let reg = Registry::load().unwrap();
    let view = reg.feature_view("driver_hourly_stats_stream").unwrap();
    let ts = Column::new(
        "event_timestamp".into(),
        [1_700_000_000_000_000i64, 1_700_000_360_000_000],
    )
    .cast(&FeastType::UnixTimestamp.dtype())
    .unwrap();
    let df = DataFrame::new(
        2,
        vec![
            Column::new("driver_id".into(), [1001i64, 1002]),
            ts.clone(),
            Column::new("conv_rate".into(), [0.5f32, 0.25]),
            Column::new("acc_rate".into(), [0.75f32, 1.0]),
            ts.with_name("created".into()),
        ],
    )
    .unwrap();
    let out = transform::run_transform(view, df).unwrap();
    assert_eq!(
        out.get_column_names(),
        [
            "driver_id",
            "event_timestamp",
            "created",
            "conv_percentage",
            "acc_percentage"
        ]
    );
    let conv: Vec<Option<f32>> = out
        .column("conv_percentage")
        .unwrap()
        .f32()
        .unwrap()
        .iter()
        .collect();
    let acc: Vec<Option<f32>> = out
        .column("acc_percentage")
        .unwrap()
        .f32()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(conv, [Some(50.0), Some(25.0)]);
    assert_eq!(acc, [Some(75.0), Some(100.0)]);
}

// --- registry checks on hand-built definitions -------------------------------

const fn at(line: u32) -> Location {
    Location {
        module_path: "fixtures",
        file: "fixtures.rs",
        line,
        column: 1,
    }
}

fn identity(
    df: feast_runtime::polars::prelude::DataFrame,
) -> Result<feast_runtime::polars::prelude::DataFrame, feast_runtime::definition::BoxError> {
    Ok(df)
}

static DRIVER: EntityDef = EntityDef {
    name: "driver",
    join_key: "driver_id",
    value_type: FeastType::Int64,
    description: "",
    tags: &[],
    owner: "",
    location: at(1),
};

static OTHER_DRIVER: EntityDef = EntityDef {
    location: at(2),
    ..DRIVER
};

static FILE: DataSourceDef = DataSourceDef {
    name: "stats",
    kind: SourceKind::File {
        path: "stats.parquet",
        schema: &[
            FieldDef {
                name: "driver_id",
                dtype: FeastType::Int64,
            },
            FieldDef {
                name: "event_timestamp",
                dtype: FeastType::UnixTimestamp,
            },
            FieldDef {
                name: "conv_rate",
                dtype: FeastType::Float32,
            },
            FieldDef {
                name: "trips",
                dtype: FeastType::Int64,
            },
        ],
    },
    timestamp_field: "event_timestamp",
    created_timestamp_column: None,
    field_mapping: &[("trips", "avg_daily_trips")],
    description: "",
    tags: &[],
    owner: "",
    location: at(10),
};

static KEYLESS_FILE: DataSourceDef = DataSourceDef {
    name: "keyless",
    kind: SourceKind::File {
        path: "k.parquet",
        schema: &[
            FieldDef {
                name: "driver",
                dtype: FeastType::String,
            },
            FieldDef {
                name: "event_timestamp",
                dtype: FeastType::UnixTimestamp,
            },
        ],
    },
    location: at(11),
    ..FILE
};

static PUSH: DataSourceDef = DataSourceDef {
    name: "pushed",
    kind: SourceKind::Push {
        batch_source: &FILE,
    },
    timestamp_field: "",
    location: at(12),
    ..FILE
};

const VIEW_SCHEMA: &[FieldDef] = &[
    FieldDef {
        name: "conv_rate",
        dtype: FeastType::Float32,
    },
    FieldDef {
        name: "avg_daily_trips",
        dtype: FeastType::Int64,
    },
];

static VIEW: FeatureViewDef = FeatureViewDef {
    name: "stats_view",
    kind: ViewKind::Batch,
    entities: &[&DRIVER],
    source: &FILE,
    schema: VIEW_SCHEMA,
    output: VIEW_SCHEMA,
    aggregations: &[],
    ttl_seconds: 3600,
    timestamp_field: None,
    online: true,
    offline: false,
    description: "",
    tags: &[],
    owner: "",
    transform: identity,
    location: at(20),
};

const BAD_VIEW_SCHEMA: &[FieldDef] = &[
    FieldDef {
        name: "conv_rate",
        dtype: FeastType::Float32,
    },
    FieldDef {
        name: "driver",
        dtype: FeastType::Float64,
    },
];

static BAD_VIEW: FeatureViewDef = FeatureViewDef {
    name: "bad_view",
    source: &KEYLESS_FILE,
    schema: BAD_VIEW_SCHEMA,
    output: BAD_VIEW_SCHEMA,
    location: at(21),
    ..VIEW
};

/// Records whose columns do not all fit the batch source they are logged to.
static STREAM: DataSourceDef = DataSourceDef {
    name: "events",
    kind: SourceKind::Kinesis {
        stream_name: "events",
        region: "us-east-1",
        record_format: RecordFormat::Json {
            schema_json: "driver_id int, event_timestamp timestamp, conv_rate string, merchant string",
            schema: &[
                FieldDef {
                    name: "driver_id",
                    dtype: FeastType::Int32,
                },
                FieldDef {
                    name: "event_timestamp",
                    dtype: FeastType::UnixTimestamp,
                },
                FieldDef {
                    name: "conv_rate",
                    dtype: FeastType::String,
                },
                FieldDef {
                    name: "merchant",
                    dtype: FeastType::String,
                },
            ],
            not_null: &[],
        },
        batch_source: &FILE,
    },
    field_mapping: &[],
    location: at(13),
    ..FILE
};

static SERVICE: FeatureServiceDef = FeatureServiceDef {
    name: "svc",
    features: &[FeatureProjection {
        view: &VIEW,
        features: &["conv_rate", "nope"],
    }],
    description: "",
    tags: &[],
    owner: "",
    location: at(30),
};

#[test]
fn hand_built_definitions_are_sorted_and_mapped() {
    let reg = Registry::from_definitions([
        Definition::FeatureView(&VIEW),
        Definition::DataSource(&PUSH),
        Definition::DataSource(&FILE),
        Definition::Entity(&DRIVER),
    ])
    .unwrap();
    assert_eq!(
        reg.data_sources().map(|s| s.name).collect::<Vec<_>>(),
        ["pushed", "stats"]
    );
    // field_mapping renames `trips`, and the push source sees the same columns.
    assert_eq!(FILE.schema()[3].name, "avg_daily_trips");
    assert_eq!(PUSH.schema(), FILE.schema());
}

#[test]
fn duplicate_names_name_both_locations() {
    let err = Registry::from_definitions([
        Definition::Entity(&DRIVER),
        Definition::Entity(&OTHER_DRIVER),
    ])
    .unwrap_err();
    assert_eq!(
        err.problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "fixtures.rs:2:1: entity `driver`: the name is also used by the entity defined at fixtures.rs:1:1"
        ]
    );
}

#[test]
fn every_reference_and_column_is_checked() {
    let err = Registry::from_definitions([
        Definition::FeatureView(&BAD_VIEW),
        Definition::DataSource(&STREAM),
        Definition::FeatureService(&SERVICE),
        Definition::DataSource(&KEYLESS_FILE),
        Definition::DataSource(&PUSH),
    ])
    .unwrap_err();
    let got: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "fixtures.rs:11:1: data source `keyless`: field_mapping renames `trips`, which is not a column",
            "fixtures.rs:12:1: data source `pushed`: its batch source `stats` is not registered (is the crate that defines it linked?)",
            "fixtures.rs:13:1: data source `events`: column `conv_rate` is String here but Float32 in its batch source `stats`, which String does not convert to",
            "fixtures.rs:13:1: data source `events`: column `merchant` (String) is not in its batch source `stats`, where its records are logged and from which views recompute their features (columns: driver_id, event_timestamp, conv_rate, avg_daily_trips)",
            "fixtures.rs:13:1: data source `events`: its batch source `stats` is not registered (is the crate that defines it linked?)",
            "fixtures.rs:21:1: feature view `bad_view`: feature `conv_rate` is not a column of batch source `keyless` (columns: driver, event_timestamp)",
            "fixtures.rs:21:1: feature view `bad_view`: feature `driver` is declared Float64 but is String in batch source `keyless`",
            "fixtures.rs:21:1: feature view `bad_view`: its entity `driver` is not registered (is the crate that defines it linked?)",
            "fixtures.rs:21:1: feature view `bad_view`: join key `driver_id` of entity `driver` is not a column of source `keyless` (columns: driver, event_timestamp)",
            "fixtures.rs:30:1: feature service `svc`: feature `nope` is not in view `stats_view` (features: conv_rate, avg_daily_trips)",
            "fixtures.rs:30:1: feature service `svc`: its view `stats_view` is not registered (is the crate that defines it linked?)",
        ]
    );
    assert!(
        err.to_string()
            .starts_with("11 problems in the feature definitions\n  fixtures.rs:11:1")
    );
}
