//! Feast's own tools on a feast-rs repository: Feast 0.67 (installed by
//! `scripts/feast`) reading the registry `apply` writes in Feast's format,
//! with only `feature_store.yaml` and the registry, no Python definitions.

#![allow(clippy::unwrap_used)] // test code: a failure should stop loudly

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use feast_tests::{TempRepo, run, workspace_root};

const EXAMPLE: &str = env!("CARGO_BIN_EXE_example-repo");

/// The virtual environment `scripts/feast install` made.
fn feast_env() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new("bash")
            .arg(workspace_root().join("scripts/feast"))
            .arg("install")
            .output()
            .expect("run scripts/feast install");
        assert!(
            out.status.success(),
            "scripts/feast install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// Runs Feast's CLI in `repo`; its stdout.
fn feast(repo: &Path, args: &[&str]) -> String {
    let out = Command::new(feast_env().join("bin/feast"))
        .args(args)
        .current_dir(repo)
        .env("FEAST_USAGE", "False")
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run feast");
    assert!(
        out.status.success(),
        "feast {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The example's repository, applied by its feast-rs binary: Feast's
/// `feature_store.yaml` and the registry `apply` wrote, nothing else.
fn feast_repo() -> TempRepo {
    let repo = TempRepo::with_config(&config("  type: sqlite\n  path: data/online.db\n"));
    let r = run(EXAMPLE, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    repo
}

/// The first column of a `feast ... list` table, header excluded.
fn names(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn feasts_cli_lists_every_definition_of_the_registry() {
    let repo = feast_repo();
    assert_eq!(
        names(&feast(repo.path(), &["entities", "list"])),
        ["driver"]
    );
    let mut sources = names(&feast(repo.path(), &["data-sources", "list"]));
    sources.sort();
    assert_eq!(
        sources,
        [
            "driver_stats_push",
            "driver_stats_source",
            "driver_stats_stream"
        ]
    );
    let mut views = names(&feast(repo.path(), &["feature-views", "list"]));
    views.sort();
    assert_eq!(views, ["driver_hourly_stats", "driver_hourly_stats_stream"]);
    // The windowed view, with Feast's Aggregation messages.
    assert_eq!(
        names(&feast(repo.path(), &["stream-feature-views", "list"])),
        ["driver_trip_windows"]
    );
    let described = feast(
        repo.path(),
        &["stream-feature-views", "describe", "driver_trip_windows"],
    );
    for line in [
        "name: trips_1h",
        "function: count",
        "timeWindow: 3600s",
        "slideInterval: 600s",
    ] {
        assert!(described.contains(line), "no `{line}` in\n{described}");
    }
    assert_eq!(
        names(&feast(repo.path(), &["feature-services", "list"])),
        ["driver_activity"]
    );
}

/// `feature_store.yaml` for Feast and feast-rs alike, on `online`.
fn config(online: &str) -> String {
    format!(
        "project: driver_stats\nprovider: local\nregistry: data/registry.db\nonline_store:\n{online}offline_store:\n  type: file\nentity_key_serialization_version: 3\n"
    )
}

/// The example applied on `online`, with 3 drivers' stats from an hour
/// ago materialized by feast-rs.
fn materialized(online: &str) -> TempRepo {
    use feast_runtime::polars::prelude::*;
    let repo = TempRepo::with_config(&config(online));
    let r = run(EXAMPLE, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let hour_ago = feast_runtime::chrono::Utc::now().timestamp() - 3600;
    // Binary fractions: the same double in Python and in Rust's JSON.
    let mut df = feast_tests::stats_frame(&[
        (1001, hour_ago, Some(hour_ago), 0.25, 0.5, 10),
        (1002, hour_ago, Some(hour_ago), 0.75, 0.125, 20),
        (1002, hour_ago - 60, Some(hour_ago), 0.5, 0.5, 30),
        (1003, hour_ago - 30, Some(hour_ago), 0.375, 0.0625, 40),
    ]);
    let file = std::fs::File::create(repo.path().join("data/driver_stats.parquet")).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();
    let r = run(EXAMPLE, repo.path(), &["materialize-incremental", "now"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    repo
}

const FEATURES: [&str; 3] = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:avg_daily_trips",
];

/// Feast's `FeatureStore.get_online_features(...).to_dict()` for drivers
/// 1001-1003 and 99, as JSON.
fn feast_online(repo: &Path) -> serde_json::Value {
    let script = format!(
        "import json\nfrom feast import FeatureStore\nstore = FeatureStore(repo_path='.')\nrows = [{{'driver_id': d}} for d in (1001, 1002, 1003, 99)]\nout = store.get_online_features(features={FEATURES:?}, entity_rows=rows).to_dict()\nprint(json.dumps(out))\n"
    );
    python(repo, &script)
}

/// Runs `script` with the Feast environment's Python in `repo`; its stdout
/// as JSON.
fn python(repo: &Path, script: &str) -> serde_json::Value {
    let out = Command::new(feast_env().join("bin/python"))
        .arg("-c")
        .arg(script)
        .current_dir(repo)
        .env("FEAST_USAGE", "False")
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// feast-rs's `get-online --json` for the same, as feature -> values.
fn feast_rs_online(repo: &Path) -> serde_json::Map<String, serde_json::Value> {
    let r = run(
        EXAMPLE,
        repo,
        &[
            "get-online",
            "--features",
            &FEATURES.join(","),
            "--entity",
            "driver_id=1001,1002,1003,99",
            "--json",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names = v["metadata"]["feature_names"].as_array().unwrap();
    names
        .iter()
        .zip(v["results"].as_array().unwrap())
        .map(|(n, r)| (n.as_str().unwrap().to_owned(), r["values"].clone()))
        .collect()
}

fn feasts_sdk_reads_the_online_store(online: &str) {
    let repo = materialized(online);
    let feast = feast_online(repo.path());
    let ours = feast_rs_online(repo.path());
    for (name, want) in [
        ("driver_id", serde_json::json!([1001, 1002, 1003, 99])),
        ("conv_rate", serde_json::json!([0.25, 0.75, 0.375, null])),
        ("acc_rate", serde_json::json!([0.5, 0.125, 0.0625, null])),
        ("avg_daily_trips", serde_json::json!([10, 20, 40, null])),
    ] {
        assert_eq!(feast[name], want, "Feast's {name}: {feast}");
        assert_eq!(ours[name], want, "feast-rs's {name}");
    }
}

#[test]
fn feasts_sdk_reads_what_feast_rs_wrote_to_sqlite() {
    feasts_sdk_reads_the_online_store("  type: sqlite\n  path: data/online.db\n");
}

#[test]
fn feasts_sdk_reads_what_feast_rs_wrote_to_redis() {
    let redis = feast_tests::redis::RedisServer::start();
    feasts_sdk_reads_the_online_store(&format!(
        "  type: redis\n  connection_string: \"{}\"\n",
        redis.connection_string()
    ));
}

/// A process and the workers it starts in its own process group: stopped
/// together (SIGTERM, then SIGKILL after 15 s) when dropped.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &group])
            .stderr(std::process::Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while self.0.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Whatever is left of the group (usually nothing, hence no message).
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

/// Feast's `command` (`serve`, `ui`) in `repo` on a free loopback port,
/// once it listens: its process group and address.
fn feast_server(repo: &Path, command: &str, extra: &[&str]) -> (Group, String) {
    use std::os::unix::process::CommandExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut server = Group(
        Command::new(feast_env().join("bin/feast"))
            .args([command, "-h", "127.0.0.1", "-p", &port])
            .args(extra)
            .current_dir(repo)
            .env("FEAST_USAGE", "False")
            .env("PYTHONWARNINGS", "ignore")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let addr = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "feast {command} exited at start"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "feast {command} did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (server, addr)
}

/// Each feature's values and statuses in a `/get-online-features` answer,
/// by name (Feast's order of features varies from one start to the next).
fn by_feature(
    answer: &serde_json::Value,
) -> BTreeMap<String, (serde_json::Value, serde_json::Value)> {
    answer["metadata"]["feature_names"]
        .as_array()
        .unwrap()
        .iter()
        .zip(answer["results"].as_array().unwrap())
        .map(|(name, r)| {
            (
                name.as_str().unwrap().to_owned(),
                (r["values"].clone(), r["statuses"].clone()),
            )
        })
        .collect()
}

/// `feast serve` and the example's `serve` answer one
/// `/get-online-features` request alike: feature names, values, statuses.
#[test]
fn feast_serve_answers_like_feast_rs_serve() {
    let repo = materialized("  type: sqlite\n  path: data/online.db\n");
    let (_feast, addr) = feast_server(repo.path(), "serve", &["--no-access-log"]);
    let body = serde_json::json!({
        "features": FEATURES,
        "entities": {"driver_id": [1001, 1002, 1003, 99]},
    })
    .to_string();
    let theirs = feast_tests::http::post(&addr, "/get-online-features", &body);
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    let ours_server = feast_tests::http::Server::start(EXAMPLE, repo.path(), &[]);
    let ours = feast_tests::http::post(&ours_server.addr, "/get-online-features", &body);
    assert_eq!(ours.status, 200, "{}", ours.body);
    let (theirs, ours) = (by_feature(&theirs.json()), by_feature(&ours.json()));
    assert_eq!(ours, theirs);
    assert_eq!(
        theirs["conv_rate"].0,
        serde_json::json!([0.25, 0.75, 0.375, null])
    );
}

/// Feast's `get_historical_features` through its file offline store, over
/// the Parquet feast-rs reads, equals feast-rs's `get-historical` on every
/// row Feast answers: each driver at the time of its stats and before any.
#[test]
fn feasts_historical_retrieval_equals_feast_rs() {
    let repo = materialized("  type: sqlite\n  path: data/online.db\n");
    let hour_ago = feast_runtime::chrono::Utc::now().timestamp() - 3600;
    let at = |s: i64| {
        feast_runtime::chrono::DateTime::from_timestamp(s, 0)
            .unwrap()
            .to_rfc3339_opts(feast_runtime::chrono::SecondsFormat::Secs, true)
    };
    let rows = [
        (1001, hour_ago + 10),
        (1002, hour_ago + 10),
        (1002, hour_ago - 30),
        (1003, hour_ago),
        (1003, hour_ago - 7200),
    ];
    let mut csv = String::from("driver_id,event_timestamp\n");
    for (d, t) in rows {
        csv.push_str(&format!("{d},{}\n", at(t)));
    }
    std::fs::write(repo.path().join("entities.csv"), &csv).unwrap();
    let r = run(
        EXAMPLE,
        repo.path(),
        &[
            "get-historical",
            "--entities",
            "entities.csv",
            "--features",
            &FEATURES.join(","),
            "--output",
            "ours.csv",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let script = "import json, pandas as pd\n\
        from feast import FeatureStore\n\
        store = FeatureStore(repo_path='.')\n\
        entities = pd.read_csv('entities.csv')\n\
        entities['event_timestamp'] = pd.to_datetime(entities['event_timestamp'], utc=True)\n\
        features = json.loads(open('features.json').read())\n\
        df = store.get_historical_features(entity_df=entities, features=features).to_df()\n\
        df['event_timestamp'] = df['event_timestamp'].map(lambda t: t.strftime('%Y-%m-%dT%H:%M:%SZ'))\n\
        print(df.to_json(orient='records'))\n";
    std::fs::write(
        repo.path().join("features.json"),
        serde_json::to_string(&FEATURES).unwrap(),
    )
    .unwrap();
    let answer = python(repo.path(), script);
    let theirs = answer.as_array().unwrap();
    let key = |driver: i64, t: &str| (driver, t.to_owned());
    let theirs: BTreeMap<(i64, String), Vec<Option<f64>>> = theirs
        .iter()
        .map(|r| {
            (
                key(
                    r["driver_id"].as_i64().unwrap(),
                    r["event_timestamp"].as_str().unwrap(),
                ),
                ["conv_rate", "acc_rate", "avg_daily_trips"]
                    .iter()
                    .map(|f| r[*f].as_f64())
                    .collect(),
            )
        })
        .collect();
    let ours_text = std::fs::read_to_string(repo.path().join("ours.csv")).unwrap();
    let mut lines = ours_text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let ours: BTreeMap<(i64, String), Vec<Option<f64>>> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (
                key(
                    cells[col("driver_id")].parse().unwrap(),
                    cells[col("event_timestamp")],
                ),
                ["conv_rate", "acc_rate", "avg_daily_trips"]
                    .iter()
                    .map(|f| cells[col(f)].parse().ok())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(ours.len(), rows.len());
    // Feast's file offline store leaves out an entity row that no feature
    // row precedes; feast-rs keeps it, with nulls, as Feast's DuckDB store
    // does. Every row Feast answers is feast-rs's.
    let mut kept = ours.clone();
    kept.retain(|k, _| theirs.contains_key(k));
    assert_eq!(kept, theirs);
    let left_out: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    assert_eq!(left_out, [&key(1003, &at(hour_ago - 7200))]);
    assert_eq!(
        ours[&key(1002, &at(hour_ago + 10))],
        [Some(0.75), Some(0.125), Some(20.0)]
    );
    assert_eq!(ours[&key(1003, &at(hour_ago - 7200))], [None, None, None]);
}

/// `feast ui` on a feast-rs repository: headless Chromium renders its
/// feature-view page (a screenshot is kept beside the repository while the
/// test runs) and the rendered page names every view.
#[test]
fn feasts_ui_shows_the_views() {
    let repo = feast_repo();
    let (_ui, addr) = feast_server(repo.path(), "ui", &[]);
    let url = format!("http://{addr}/p/driver_stats/feature-view/");
    let browser = |extra: &[&str]| {
        let out = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--window-size=1400,1000",
                "--virtual-time-budget=20000",
            ])
            .args(extra)
            .arg(&url)
            .current_dir(repo.path())
            .output()
            .expect("run chromium (scripts/test installs it from Debian)");
        assert!(
            out.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shot = repo.path().join("feature-views.png");
    browser(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    let dom = browser(&["--dump-dom"]);
    for view in [
        "driver_hourly_stats",
        "driver_hourly_stats_stream",
        "driver_trip_windows",
    ] {
        assert!(dom.contains(view), "the page does not name {view}:\n{dom}");
    }
}

/// `plan` against the registry Feast itself wrote (`feast apply`) for the
/// same definitions (`driver_stats/definitions.py`): the one difference
/// left, and why.
#[test]
fn plan_against_the_registry_feast_wrote_lists_the_one_difference_and_why() {
    let repo = TempRepo::with_config(&config("  type: sqlite\n  path: data/online.db\n"));
    std::fs::copy(
        workspace_root().join("tests/feast/driver_stats/definitions.py"),
        repo.path().join("definitions.py"),
    )
    .unwrap();
    std::fs::create_dir_all(repo.path().join("data")).unwrap();
    feast(repo.path(), &["apply"]);
    let r = run(EXAMPLE, repo.path(), &["plan"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "~ feature view driver_trip_windows\n      \
         source: \"driver_stats_push\" -> \"driver_stats_stream\"\n        \
         (why: Feast's stream feature views take only Kafka and push sources; feast-rs writes this view's Kinesis source there as a push source of the same name)\n\
         Plan: 0 to add, 1 to change, 0 to remove, 7 unchanged.\n"
    );
    // After apply, Feast's registry is feast-rs's, and Feast still reads it.
    let r = run(EXAMPLE, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = run(EXAMPLE, repo.path(), &["plan"]);
    assert_eq!(
        r.stdout,
        "Plan: 0 to add, 0 to change, 0 to remove, 8 unchanged.\n"
    );
    assert_eq!(
        names(&feast(repo.path(), &["stream-feature-views", "list"])),
        ["driver_trip_windows"]
    );
}
