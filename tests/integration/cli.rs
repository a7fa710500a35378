//! The CLI run as a user runs it: a feature repo binary in a repo directory.

use feast_runtime::registry::feast;
use feast_tests::{TempRepo, run};

const EXAMPLE: &str = env!("CARGO_BIN_EXE_example-repo");
const MISMATCHED: &str = env!("CARGO_BIN_EXE_mismatched-repo");
const DUPLICATE: &str = env!("CARGO_BIN_EXE_duplicate-repo");

#[test]
fn list_shows_every_definition_with_its_schema() {
    let repo = TempRepo::example();
    let r = run(EXAMPLE, repo.path(), &["list"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for header in [
        "Entities (1)",
        "Data sources (3)",
        "Feature views (3)",
        "Feature services (1)",
    ] {
        assert!(
            r.stdout.contains(header),
            "missing {header:?} in\n{}",
            r.stdout
        );
    }
    let start = r
        .stdout
        .find("  driver_hourly_stats_stream ")
        .expect("the stream view is listed");
    let end = r
        .stdout
        .find("\n  driver_trip_windows ")
        .expect("the windowed view is listed");
    let view = &r.stdout[start..end];
    assert_eq!(
        view.lines()
            .map(str::split_whitespace)
            .map(Iterator::collect::<Vec<_>>)
            .collect::<Vec<_>>(),
        [
            vec![
                "driver_hourly_stats_stream",
                "stream",
                "source",
                "driver_stats_stream,",
                "entities",
                "driver,",
                "ttl",
                "1d,",
                "online",
                "+",
                "offline"
            ],
            vec![
                "Conversion",
                "and",
                "acceptance",
                "rates",
                "as",
                "percentages,",
                "fresh",
                "from",
                "the",
                "stream."
            ],
            vec!["driver_id", "Int64", "(join", "key)"],
            vec!["event_timestamp", "UnixTimestamp", "(event", "time)"],
            vec!["conv_percentage", "Float32"],
            vec!["acc_percentage", "Float32"],
        ]
    );
    // A windowed view lists its function's columns, then its aggregations.
    let windows = &r.stdout[end + 1..r.stdout.find("\nFeature services").unwrap()];
    let lines: Vec<&str> = windows.lines().map(str::trim).collect();
    assert_eq!(
        lines[lines.len() - 5..],
        [
            "trips_1h                 Int64          count(conv_rate) over 1h, every 10m",
            "trips_7d                 Int64          count(conv_rate) over 1w, every 1d",
            "conv_rate_mean_1h        Float64        mean(conv_rate) over 1h, every 10m",
            "conv_rate_mean_7d        Float64        mean(conv_rate) over 1w, every 1d",
            "recent_conv_bands        Array(String)  last_distinct(3)(conv_band) over 1w, every 1d",
        ]
    );
}

#[test]
fn list_json_is_machine_readable() {
    let repo = TempRepo::example();
    let r = run(EXAMPLE, repo.path(), &["list", "--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("entities"), ["driver"]);
    assert_eq!(
        names("data_sources"),
        [
            "driver_stats_push",
            "driver_stats_source",
            "driver_stats_stream"
        ]
    );
    assert_eq!(
        names("feature_views"),
        [
            "driver_hourly_stats",
            "driver_hourly_stats_stream",
            "driver_trip_windows"
        ]
    );
    assert_eq!(
        v["feature_views"][2]["aggregations"][0],
        serde_json::json!({
            "name": "trips_1h", "column": "conv_rate", "function": "count",
            "time_window_seconds": 3600, "slide_interval_seconds": 600,
        })
    );
    assert_eq!(names("feature_services"), ["driver_activity"]);
    let stream = &v["data_sources"][2];
    assert_eq!(
        stream["record_format"]["json_format"]["schema_json"],
        "driver_id integer, event_timestamp timestamp, conv_rate double, acc_rate double, created timestamp"
    );
    assert_eq!(
        v["feature_views"][1]["schema"],
        serde_json::json!([
            {"name": "conv_percentage", "dtype": "Float32"},
            {"name": "acc_percentage", "dtype": "Float32"},
        ])
    );
    assert_eq!(v["feature_views"][0]["ttl_seconds"], 86_400);
}

#[test]
fn validate_passes_on_the_example() {
    let repo = TempRepo::example();
    let r = run(EXAMPLE, repo.path(), &["validate"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "ok      feature_store.yaml (project driver_stats, online store sqlite data/online.db)\n\
         ok      feature view driver_hourly_stats (5 columns)\n\
         ok      feature view driver_hourly_stats_stream (4 columns)\n\
         ok      feature view driver_trip_windows (4 columns)\n\
         -       batch source driver_stats_source: no files at data/driver_stats.parquet yet, not checked\n\
         valid: 1 entity, 3 data sources, 3 feature views, 1 feature service\n"
    );
    assert_eq!(r.stderr, "");
}

#[test]
fn validate_checks_feature_store_yaml() {
    let repo = TempRepo::with_config(
        "project: driver_stats\nonline_store:\n  type: sqlite\n  paht: data/online.db\n",
    );
    let r = run(EXAMPLE, repo.path(), &["validate"]);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert!(
        r.stderr.starts_with(
            "error: ./feature_store.yaml: online_store: unknown field `paht`, expected one of"
        ) && r.stderr.contains("at line 4 column 3"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("valid:"), "{}", r.stdout);

    let repo = TempRepo::with_config(
        "project: driver_stats\nonline_store:\n  type: redis\n  connection_string: \"localhost:6379,sll=true\"\n",
    );
    let r = run(EXAMPLE, repo.path(), &["validate"]);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert_eq!(
        r.stderr,
        "error: ./feature_store.yaml: redis connection string: unknown option `sll`; expected db, password, username, ssl or ssl_ca_certs\n"
    );
}

#[test]
fn validate_checks_the_batch_sources_files_against_their_declared_types() {
    use feast_runtime::polars::prelude::*;
    let repo = TempRepo::example();
    let dir = repo.path().join("data/driver_stats.parquet");
    // The generated data matches the declaration.
    let start = feast_runtime::chrono::DateTime::from_timestamp(1_735_689_600, 0).unwrap();
    let good = feast_example_driver_stats::data::driver_stats(3, 2, start);
    feast_runtime::offline_store::write_file(&dir.join("part-0.parquet"), &good).unwrap();
    let r = run(EXAMPLE, repo.path(), &["validate"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "ok      batch source driver_stats_source (1 file at data/driver_stats.parquet)\n"
        ),
        "{}",
        r.stdout
    );

    // Two files with avg_daily_trips as Float32 and no acc_rate: what
    // get-historical would fail on.
    let bad = good
        .clone()
        .lazy()
        .with_column(col("avg_daily_trips").cast(DataType::Float32))
        .drop(Selector::ByName {
            names: ["acc_rate".into()].into(),
            strict: true,
        })
        .collect()
        .unwrap();
    for name in ["part-1.parquet", "part-2.parquet"] {
        feast_runtime::offline_store::write_file(&dir.join(name), &bad).unwrap();
    }
    let r = run(EXAMPLE, repo.path(), &["validate"]);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    let errors: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{}", r.stderr);
    assert!(
        errors[0].starts_with("error: batch source `driver_stats_source` (")
            && errors[0].ends_with(
                "column `acc_rate` (Float32) is missing (2 of 3 files, first ./data/driver_stats.parquet/part-1.parquet)"
            ),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].ends_with(
            "column `avg_daily_trips` is f32, which does not convert to Int64 (2 of 3 files, first ./data/driver_stats.parquet/part-1.parquet)"
        ),
        "{}",
        errors[1]
    );
}

#[test]
fn validate_names_each_mismatched_column() {
    let repo = TempRepo::example();
    let r = run(MISMATCHED, repo.path(), &["validate"]);
    assert_eq!(
        r.code,
        Some(1),
        "stdout: {}\nstderr: {}",
        r.stdout,
        r.stderr
    );
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 5, "{}", r.stderr);
    assert!(
        errors[0].starts_with(
            "error: feature view `mismatched_stats` (tests/src/bin/mismatched_repo.rs:"
        ),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].ends_with(
            "output column `conv_percentage` is f64, but the view declares Float32 (f32)"
        ),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].ends_with("output column `acc_percentage` (Float32) is missing"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].ends_with(
            "the function of view `panicking_stats` panicked: boom in the view function"
        ),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].starts_with("error: feature view `tie_blind_stats` (")
            && errors[3].ends_with(
                "output column `created` (UnixTimestamp) is missing: it is the source's created timestamp, which settles events with the same event time on every path (online, materialization, training data); keep it in the output"
            ),
        "{}",
        errors[3]
    );
    assert_eq!(errors[4], "error: 3 feature views failed validation");
}

#[test]
fn duplicate_names_fail_with_both_locations() {
    let repo = TempRepo::example();
    let r = run(DUPLICATE, repo.path(), &["validate"]);
    assert_eq!(r.code, Some(1));
    let first = r.stderr.lines().next().unwrap_or_default();
    assert_eq!(
        first, "error: 1 problem in the feature definitions",
        "{}",
        r.stderr
    );
    let problem = r.stderr.lines().nth(1).unwrap_or_default().trim();
    // The second definition (by link order) is reported, naming the first.
    assert!(problem.contains("entity `driver`: the name is also used by the entity defined at tests/src/bin/duplicate_repo.rs:"), "{problem}");
    assert_eq!(
        problem.matches("tests/src/bin/duplicate_repo.rs:").count(),
        2,
        "{problem}"
    );
    // `list` refuses too.
    assert_eq!(run(DUPLICATE, repo.path(), &["list"]).code, Some(1));
}

#[test]
fn plan_then_apply_then_plan_again() {
    let repo = TempRepo::example();
    let registry = repo.path().join("data/registry.db");

    let r = run(EXAMPLE, repo.path(), &["plan"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "+ entity driver\n\
         + data source driver_stats_push\n\
         + data source driver_stats_source\n\
         + data source driver_stats_stream\n\
         + feature view driver_hourly_stats\n\
         + feature view driver_hourly_stats_stream\n\
         + feature view driver_trip_windows\n\
         + feature service driver_activity\n\
         Plan: 8 to add, 0 to change, 0 to remove, 0 unchanged.\n"
    );
    assert!(!registry.exists(), "plan must not write");

    let r = run(EXAMPLE, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.ends_with("Applied: 8 to add, 0 to change, 0 to remove, 0 unchanged; registry written to ./data/registry.db, online store ready for 3 feature views.\n"), "{}", r.stdout);
    // The online store's tables exist, in Feast's layout, before any write
    // (and the windowed view's tiles table beside them).
    let db = rusqlite::Connection::open(repo.path().join("data/online.db")).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE 'driver_stats_%' OR name LIKE 'feast_rs_tiles_%') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        tables,
        [
            "driver_stats_driver_hourly_stats",
            "driver_stats_driver_hourly_stats_stream",
            "feast_rs_tiles_driver_stats_driver_trip_windows"
        ]
    );
    // Feast's own format: the registry's project and the view's ttl.
    let written = feast::read_file(&registry).unwrap().unwrap();
    assert_eq!(written.project_metadata[0].project, "driver_stats");
    let view = |r: &feast::RegistryProto, name: &str| {
        r.feature_views
            .iter()
            .position(|v| v.spec.as_ref().unwrap().name == name)
            .unwrap()
    };
    let hourly = view(&written, "driver_hourly_stats");
    let ttl = written.feature_views[hourly]
        .spec
        .as_ref()
        .unwrap()
        .ttl
        .unwrap();
    assert_eq!(ttl.seconds, 86_400);

    let r = run(EXAMPLE, repo.path(), &["plan"]);
    assert_eq!(
        r.stdout,
        "Plan: 0 to add, 0 to change, 0 to remove, 8 unchanged.\n"
    );

    // Someone else's registry: a different ttl and an entity we no longer define.
    let mut edited = written.clone();
    edited.feature_views[hourly].spec.as_mut().unwrap().ttl = Some(feast::Duration {
        seconds: 3600,
        nanos: 0,
    });
    edited.entities.push(feast::Entity {
        spec: Some(feast::EntitySpec {
            name: "rider".into(),
            ..feast::EntitySpec::default()
        }),
        meta: None,
    });
    feast::write_file(&registry, &edited).unwrap();
    let r = run(EXAMPLE, repo.path(), &["plan"]);
    assert_eq!(
        r.stdout,
        "- entity rider\n\
         ~ feature view driver_hourly_stats\n      ttl_seconds: 3600 -> 86400\n\
         Plan: 0 to add, 1 to change, 1 to remove, 7 unchanged.\n"
    );
    let r = run(EXAMPLE, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0));
    let r = run(EXAMPLE, repo.path(), &["plan"]);
    assert_eq!(
        r.stdout,
        "Plan: 0 to add, 0 to change, 0 to remove, 8 unchanged.\n"
    );

    // A registry whose windowed view had other windows: its stored tiles
    // would not decode, so apply drops them and says so.
    let mut edited = feast::read_file(&registry).unwrap().unwrap();
    let windows = edited
        .stream_feature_views
        .iter_mut()
        .find(|v| v.spec.as_ref().unwrap().name == "driver_trip_windows")
        .unwrap();
    windows.spec.as_mut().unwrap().aggregations[0].time_window = Some(feast::Duration {
        seconds: 7200,
        nanos: 0,
    });
    feast::write_file(&registry, &edited).unwrap();
    let r = run(EXAMPLE, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout.contains("~ feature view driver_trip_windows\n")
            && r.stdout.contains(
                "dropped the stored windows of driver_trip_windows: its aggregations changed"
            ),
        "{}",
        r.stdout
    );
}

#[test]
fn apply_refuses_a_repo_that_fails_validation() {
    let repo = TempRepo::example();
    let r = run(MISMATCHED, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .contains("output column `acc_percentage` (Float32) is missing"),
        "{}",
        r.stderr
    );
    assert!(!repo.path().join("data/registry.db").exists());
}

#[test]
fn bad_configuration_is_reported_with_its_position() {
    let repo = TempRepo::with_config(
        "project: driver_stats\nonline_store:\n  type: sqlite\n  paht: data/online.db\n",
    );
    let r = run(EXAMPLE, repo.path(), &["plan"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.starts_with(
            "error: ./feature_store.yaml: online_store: unknown field `paht`, expected one of"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("at line 4 column 3"), "{}", r.stderr);

    let empty = tempfile::tempdir().unwrap();
    let r = run(EXAMPLE, empty.path(), &["plan"]);
    assert_eq!(r.code, Some(1));
    assert_eq!(
        r.stderr,
        "error: no feature_store.yaml in . (run from the feature repository, or pass --chdir)\n"
    );
}

#[test]
fn chdir_selects_the_repository() {
    let repo = TempRepo::example();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = repo.path().to_str().unwrap();
    let r = run(EXAMPLE, elsewhere.path(), &["--chdir", path, "apply"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(repo.path().join("data/registry.db").exists());
}

#[test]
fn usage_errors_exit_2() {
    let repo = TempRepo::example();
    let r = run(EXAMPLE, repo.path(), &["lst"]);
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr.contains("unrecognized subcommand 'lst'"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_store_commands_end_to_end() {
    use feast_tests::stats_frame;
    let repo = TempRepo::example();
    let t0 = 1_736_467_200i64; // 2025-01-10T00:00:00Z
    let rows = [
        (1001, t0 - 7200, Some(t0 - 7200), 0.25f32, 0.5f32, 11i64),
        (1001, t0 - 3600, Some(t0 - 3600), 0.5, 0.75, 12),
        (1002, t0 - 3600, Some(t0 - 3600), 0.125, 0.25, 21),
    ];
    feast_runtime::offline_store::write_file(
        &repo.path().join("data/driver_stats.parquet/part-0.parquet"),
        &stats_frame(&rows),
    )
    .unwrap();

    assert_eq!(run(EXAMPLE, repo.path(), &["apply"]).code, Some(0));
    let r = run(
        EXAMPLE,
        repo.path(),
        &[
            "materialize",
            "2025-01-09",
            "2025-01-10T00:00:00Z",
            "--views",
            "driver_hourly_stats",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.starts_with("  driver_hourly_stats: 2 entities, 6 values written\nmaterialized 1 view up to 2025-01-10T00:00:00Z: 3 rows read in "), "{}", r.stdout);

    // Far past the data, ttl (1 day) makes every value stale; Feast would still say PRESENT.
    let r = run(
        EXAMPLE,
        repo.path(),
        &[
            "get-online",
            "--features",
            "driver_hourly_stats:avg_daily_trips",
            "--entity",
            "driver_id=1001,1002,7",
            "--json",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        v["metadata"]["feature_names"],
        serde_json::json!(["driver_id", "avg_daily_trips"])
    );
    assert_eq!(
        v["results"][1]["statuses"],
        serde_json::json!(["OUTSIDE_MAX_AGE", "OUTSIDE_MAX_AGE", "NOT_FOUND"])
    );
    assert_eq!(
        v["results"][1]["event_timestamps"][0],
        "2025-01-09T23:00:00Z"
    );

    // Fresh rows written from CSV are served.
    let now = feast_runtime::chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let csv = repo.path().join("fresh.csv");
    std::fs::write(
        &csv,
        format!(
            "driver_id,event_timestamp,conv_rate,acc_rate,avg_daily_trips\n1002,{now},0.5,0.5,99\n"
        ),
    )
    .unwrap();
    let r = run(
        EXAMPLE,
        repo.path(),
        &["write-online", "driver_hourly_stats", "fresh.csv"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = run(
        EXAMPLE,
        repo.path(),
        &[
            "get-online",
            "--features",
            "driver_hourly_stats:avg_daily_trips,driver_hourly_stats:conv_rate",
            "--entity",
            "driver_id=1002",
        ],
    );
    assert_eq!(
        r.stdout,
        "driver_id  avg_daily_trips  conv_rate\n1002       99               0.5\n"
    );

    // Training data from a CSV entity file.
    std::fs::write(repo.path().join("entities.csv"), "driver_id,event_timestamp\n1001,2025-01-09T23:30:00Z\n1001,2025-01-09T22:59:59Z\n1003,2025-01-09T23:30:00Z\n").unwrap();
    let r = run(
        EXAMPLE,
        repo.path(),
        &[
            "get-historical",
            "--entities",
            "entities.csv",
            "--features",
            "driver_hourly_stats:avg_daily_trips",
            "--output",
            "out.parquet",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let out = feast_runtime::offline_store::read_file(&repo.path().join("out.parquet")).unwrap();
    let got: Vec<Option<i64>> = out
        .column("avg_daily_trips")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(got, [Some(12), Some(11), None]);

    // Bad input is named, and exits 1.
    let r = run(
        EXAMPLE,
        repo.path(),
        &[
            "get-online",
            "--features",
            "driver_hourly_stats:nope",
            "--entity",
            "driver_id=1",
        ],
    );
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            Some(1),
            "error: unknown feature `nope` in view `driver_hourly_stats`; its features: conv_rate, acc_rate, avg_daily_trips\n"
        )
    );
    let r = run(EXAMPLE, repo.path(), &["materialize", "yesterday", "now"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.starts_with("error: invalid time `yesterday`"),
        "{}",
        r.stderr
    );

    let r = run(EXAMPLE, repo.path(), &["teardown"]);
    assert_eq!(r.stdout, "dropped the online tables of 3 feature views\n");
    let r = run(
        EXAMPLE,
        repo.path(),
        &[
            "get-online",
            "--features",
            "driver_hourly_stats:avg_daily_trips",
            "--entity",
            "driver_id=1002",
        ],
    );
    assert_eq!(
        r.stdout,
        "driver_id  avg_daily_trips\n1002       NOT_FOUND\n"
    );
}

#[test]
fn get_historical_names_files_picks_formats_and_keeps_times_exact() {
    use feast_tests::stats_frame;
    let repo = TempRepo::example();
    let t0 = 1_736_467_200i64; // 2025-01-10T00:00:00Z
    feast_runtime::offline_store::write_file(
        &repo.path().join("data/driver_stats.parquet/part-0.parquet"),
        &stats_frame(&[(1001, t0 - 3600, Some(t0 - 3600), 0.5, 0.75, 12)]),
    )
    .unwrap();
    let historical = |entities: &str, output: &str| {
        run(
            EXAMPLE,
            repo.path(),
            &[
                "get-historical",
                "--entities",
                entities,
                "--features",
                "driver_hourly_stats:avg_daily_trips",
                "--output",
                output,
            ],
        )
    };

    // A missing entity file is named.
    let r = historical("nowhere.csv", "out.csv");
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.starts_with("error: cannot read nowhere.csv: "),
        "{}",
        r.stderr
    );
    let r = historical("nowhere.parquet", "out.csv");
    assert!(
        r.stderr.starts_with("error: cannot read nowhere.parquet: "),
        "{}",
        r.stderr
    );

    // The output format comes from the extension; another one is refused
    // before any work, and nothing is written.
    std::fs::write(
        repo.path().join("entities.csv"),
        "driver_id,event_timestamp\n1001,2025-01-09T23:30:00.25Z\n",
    )
    .unwrap();
    let r = historical("entities.csv", "out.json");
    assert_eq!(r.code, Some(1));
    assert_eq!(
        r.stderr,
        "error: out.json: expected a .parquet or .csv file (the format is taken from the extension)\n"
    );
    assert!(!repo.path().join("out.json").exists());

    // CSV times are RFC 3339 in UTC, with their `Z`.
    let entities = feast_runtime::polars::prelude::DataFrame::new(
        1,
        vec![
            feast_runtime::polars::prelude::Column::new("driver_id".into(), [1001i64]),
            feast_runtime::polars::prelude::Column::new(
                "event_timestamp".into(),
                [(t0 - 1800) * 1_000_000 + 250_000],
            )
            .cast(&feast_runtime::definition::FeastType::UnixTimestamp.dtype())
            .unwrap(),
        ],
    )
    .unwrap();
    feast_runtime::offline_store::write_file(&repo.path().join("entities.parquet"), &entities)
        .unwrap();
    let r = historical("entities.parquet", "out.csv");
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(repo.path().join("out.csv")).unwrap(),
        "driver_id,event_timestamp,avg_daily_trips\n1001,2025-01-09T23:30:00.250Z,12\n"
    );

    // Times below the microsecond are refused, not truncated.
    std::fs::write(
        repo.path().join("fine.csv"),
        "driver_id,event_timestamp\n1001,2025-01-09T23:30:00Z\n1001,2025-01-09T23:30:00.123456789Z\n",
    )
    .unwrap();
    let r = historical("fine.csv", "out.csv");
    assert_eq!(r.code, Some(1));
    assert_eq!(
        r.stderr,
        "error: entity rows: column `event_timestamp` row 1: `2025-01-09T23:30:00.123456789Z` has digits below a microsecond; times are kept to the microsecond (as in Feast's offline stores), so round them first\n"
    );
    std::fs::write(
        repo.path().join("exact.csv"),
        "driver_id,event_timestamp\n1001,2025-01-09T23:30:00.123456000Z\n",
    )
    .unwrap();
    assert_eq!(historical("exact.csv", "out.parquet").code, Some(0));
}
