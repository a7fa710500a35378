//! One value per record, online and offline, over the quickstart's data:
//! what `ingest` writes online is what materialization and `verify`
//! recompute from the offline log, and `verify` names any difference.

use feast_runtime::chrono::{DateTime, Utc};
use feast_tests::kinesis::{Emulator, Kinesis};

use super::support::Repo;

const STREAM_VIEW: &str = "driver_hourly_stats_stream";

/// The stream view's online values of drivers 1001..=1100 as Feast's JSON.
fn stream_values(repo: &Repo) -> serde_json::Value {
    let ids: Vec<String> = (1001..=1100).map(|d: i64| d.to_string()).collect();
    let r = repo.run(&[
        "get-online",
        "--features",
        "driver_hourly_stats_stream:conv_percentage,driver_hourly_stats_stream:acc_percentage",
        "--entity",
        &format!("driver_id={}", ids.join(",")),
        "--json",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v["results"].clone()
}

#[test]
fn the_quickstarts_records_give_the_same_values_online_and_offline() {
    let emu = Emulator::start();
    Kinesis::new(&emu.endpoint()).create_stream("driver_stats", 2);
    let repo = Repo::example(&emu.endpoint());

    // The quickstart's data: 100 drivers over the last 48 hours, then 5,000
    // records on the stream.
    let now = Utc::now().timestamp();
    let start = DateTime::from_timestamp(now - now.rem_euclid(3600) - 47 * 3600, 0).unwrap();
    let history = feast_example_driver_stats::data::driver_stats(100, 48, start);
    feast_runtime::offline_store::write_file(
        &repo
            .path()
            .join("data/driver_stats.parquet/part-00000.parquet"),
        &history,
    )
    .unwrap();
    let r = repo.run(&[
        "produce",
        "--source",
        "driver_stats_stream",
        "--records",
        "5000",
        "--keys",
        "100",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    repo.ingest_until_caught_up(&["--batch-size", "500"]);

    let r = repo.run(&["verify", "--views", STREAM_VIEW]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .starts_with("driver_hourly_stats_stream: 100 entities agree\n"),
        "{}",
        r.stdout
    );
    let ingested = stream_values(&repo);

    // Materialization recomputes the same rows from the log: nothing moves.
    let r = repo.run(&["materialize-incremental", "now"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(stream_values(&repo), ingested);
    let r = repo.run(&["verify"]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with(
            "driver_hourly_stats: 100 entities agree\ndriver_hourly_stats_stream: 100 entities agree\n"
        ),
        "{}",
        r.stdout
    );

    // A value written online only is skew, and `verify` names it: here the
    // same event, created later, with other values.
    let conv = ingested[1]["values"][1].as_f64().unwrap() as f32;
    let ts = ingested[1]["event_timestamps"][1].as_str().unwrap();
    std::fs::write(
        repo.path().join("skewed.csv"),
        format!(
            "driver_id,event_timestamp,created,conv_percentage,acc_percentage\n1002,{ts},2100-01-01T00:00:00Z,{},1.5\n",
            conv + 1.0
        ),
    )
    .unwrap();
    let r = repo.run(&["write-online", STREAM_VIEW, "skewed.csv"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = repo.run(&["verify", "--views", STREAM_VIEW]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "driver_hourly_stats_stream: 1 of 100 entities differ",
            &format!(
                "  driver_id=1002: `conv_percentage` is {} offline, {} online",
                ingested[1]["values"][1],
                f64::from(conv + 1.0)
            ),
            &format!(
                "  driver_id=1002: `acc_percentage` is {} offline, 1.5 online",
                ingested[2]["values"][1]
            ),
        ]
    );
}
