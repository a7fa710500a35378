//! The CLI run as a user runs it: a feature repo binary in a repo directory.

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
        "Feature views (2)",
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
        .find("\nFeature services")
        .expect("services are listed");
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
                "online"
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
        ["driver_hourly_stats", "driver_hourly_stats_stream"]
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
        "ok      feature view driver_hourly_stats (5 columns)\n\
         ok      feature view driver_hourly_stats_stream (4 columns)\n\
         valid: 1 entity, 3 data sources, 2 feature views, 1 feature service\n"
    );
    assert_eq!(r.stderr, "");
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
    assert_eq!(errors.len(), 4, "{}", r.stderr);
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
    assert_eq!(errors[3], "error: 2 feature views failed validation");
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
    let registry = repo.path().join("data/registry.json");

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
         + feature service driver_activity\n\
         Plan: 7 to add, 0 to change, 0 to remove, 0 unchanged.\n"
    );
    assert!(!registry.exists(), "plan must not write");

    let r = run(EXAMPLE, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.ends_with("Applied: 7 to add, 0 to change, 0 to remove, 0 unchanged; registry written to ./data/registry.json.\n"), "{}", r.stdout);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&registry).unwrap()).unwrap();
    assert_eq!(written["project"], "driver_stats");
    assert_eq!(written["feast_rs_registry"], 1);
    assert_eq!(
        written["feature_views"]["driver_hourly_stats"]["ttl_seconds"],
        86_400
    );

    let r = run(EXAMPLE, repo.path(), &["plan"]);
    assert_eq!(
        r.stdout,
        "Plan: 0 to add, 0 to change, 0 to remove, 7 unchanged.\n"
    );

    // Someone else's registry: a different ttl and an entity we no longer define.
    let mut edited = written.clone();
    edited["feature_views"]["driver_hourly_stats"]["ttl_seconds"] = 3600.into();
    edited["entities"]["rider"] = serde_json::json!({"name": "rider"});
    std::fs::write(&registry, serde_json::to_vec(&edited).unwrap()).unwrap();
    let r = run(EXAMPLE, repo.path(), &["plan"]);
    assert_eq!(
        r.stdout,
        "- entity rider\n\
         ~ feature view driver_hourly_stats\n      ttl_seconds: 3600 -> 86400\n\
         Plan: 0 to add, 1 to change, 1 to remove, 6 unchanged.\n"
    );
    let r = run(EXAMPLE, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0));
    let r = run(EXAMPLE, repo.path(), &["plan"]);
    assert_eq!(
        r.stdout,
        "Plan: 0 to add, 0 to change, 0 to remove, 7 unchanged.\n"
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
    assert!(!repo.path().join("data/registry.json").exists());
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
    assert!(repo.path().join("data/registry.json").exists());
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
