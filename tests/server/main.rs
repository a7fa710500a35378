//! `serve` tested as Feast's clients use it: the example's binary serving on
//! loopback, on SQLite and on Redis, with real HTTP requests (and curl);
//! then the hostile cases: bad bodies, huge bodies, slow and idle clients,
//! too many connections, and the online store going away.

#![allow(clippy::unwrap_used)] // test code: a failure should stop loudly

// Links the example's definitions, for writing test data in-process.
use feast_example_driver_stats as _;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use feast_runtime::chrono::{DateTime, SecondsFormat, Utc};
use feast_runtime::feature_store::FeatureStore;
use feast_tests::http::{Server, get, post, read_response, send};
use feast_tests::redis::RedisServer;
use feast_tests::{Backend, TempRepo, repo_on, run, stats_frame};

const EXAMPLE: &str = env!("CARGO_BIN_EXE_example-repo");

/// A repository on `backend`, applied, with its server running.
struct Served {
    repo: TempRepo,
    redis: Option<RedisServer>,
    server: Server,
}

fn serve(backend: Backend, extra: &[&str]) -> Served {
    let (repo, redis) = repo_on(backend, "srv");
    let r = run(EXAMPLE, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let server = Server::start(EXAMPLE, repo.path(), extra);
    Served {
        repo,
        redis,
        server,
    }
}

fn iso(s: i64) -> String {
    DateTime::<Utc>::from_timestamp(s, 0)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Two drivers of the batch view written in-process: 1001 (0.5, 0.75, 7)
/// and 1002 (no conv_rate, 0.25, 3); returns their event times.
fn write_two_drivers(repo: &TempRepo) -> (i64, i64) {
    let now = Utc::now().timestamp();
    let (t1, t2) = (now - 60, now - 120);
    let store = FeatureStore::open(repo.path()).unwrap();
    let mut df = stats_frame(&[
        (1001, t1, Some(t1), 0.5, 0.75, 7),
        (1002, t2, Some(t2), 0.0, 0.25, 3),
    ]);
    use feast_runtime::polars::prelude::*;
    df.with_column(Column::new("conv_rate".into(), [Some(0.5f32), None]))
        .unwrap();
    store
        .write_to_online_store("driver_hourly_stats", &df)
        .unwrap();
    (t1, t2)
}

const EPOCH: &str = "1970-01-01T00:00:00Z";

fn online_features_in_feasts_json(backend: Backend) {
    let s = serve(backend, &[]);
    let (t1, t2) = write_two_drivers(&s.repo);
    let body = r#"{"features": ["driver_hourly_stats:avg_daily_trips", "driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001, 1002, 99]}}"#;
    let r = post(&s.server.addr, "/get-online-features", body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({
            "metadata": {"feature_names": ["driver_id", "avg_daily_trips", "conv_rate"]},
            "results": [
                {"values": [1001, 1002, 99], "statuses": ["PRESENT", "PRESENT", "PRESENT"],
                 "event_timestamps": [EPOCH, EPOCH, EPOCH]},
                {"values": [7, 3, null], "statuses": ["PRESENT", "PRESENT", "NOT_FOUND"],
                 "event_timestamps": [iso(t1), iso(t2), EPOCH]},
                {"values": [0.5, null, null], "statuses": ["PRESENT", "NULL_VALUE", "NOT_FOUND"],
                 "event_timestamps": [iso(t1), iso(t2), EPOCH]},
            ]
        }),
        "{backend:?}"
    );

    // A feature service, with full names; the stream view has nothing yet.
    let body = r#"{"feature_service": "driver_activity", "entities": {"driver_id": [1001]}, "full_feature_names": true, "allow_registry_cache": true}"#;
    let r = post(&s.server.addr, "/get-online-features", body);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["metadata"]["feature_names"],
        serde_json::json!([
            "driver_id",
            "driver_hourly_stats__conv_rate",
            "driver_hourly_stats__acc_rate",
            "driver_hourly_stats__avg_daily_trips",
            "driver_hourly_stats_stream__conv_percentage",
            "driver_hourly_stats_stream__acc_percentage"
        ])
    );
    assert_eq!(v["results"][3]["values"], serde_json::json!([7]));
    assert_eq!(
        v["results"][4]["statuses"],
        serde_json::json!(["NOT_FOUND"])
    );

    // Feast's documented curl, without a content type (Feast 0.67 answers 422).
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            &format!("http://{}/get-online-features", s.server.addr),
        ])
        .args([
            "-d",
            r#"{"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}"#,
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"][1]["values"], serde_json::json!([0.5]), "{v}");
}

fn writes_pushes_and_materializations_through_the_endpoints(backend: Backend) {
    let s = serve(backend, &[]);
    let addr = &s.server.addr;
    let now = Utc::now().timestamp();
    let read = |features: &str, driver: i64| -> serde_json::Value {
        let r = post(
            addr,
            "/get-online-features",
            &format!(r#"{{"features": [{features}], "entities": {{"driver_id": [{driver}]}}}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };

    // Feature rows straight to the online store.
    let body = format!(
        r#"{{"feature_view_name": "driver_hourly_stats", "df": {{"driver_id": [2001, 2002], "event_timestamp": ["{}", {}], "conv_rate": [0.25, 0.5], "acc_rate": [0.5, null], "avg_daily_trips": [11, 12]}}}}"#,
        iso(now - 10),
        now - 20
    );
    let r = post(addr, "/write-to-online-store", &body);
    assert_eq!((r.status, r.body.as_str()), (200, "null"), "{backend:?}");
    let v = read(r#""driver_hourly_stats:avg_daily_trips""#, 2002);
    assert_eq!(v["results"][1]["values"], serde_json::json!([12]));
    assert_eq!(
        v["results"][1]["event_timestamps"],
        serde_json::json!([iso(now - 20)])
    );

    // A push to the offline store, then materialized from it.
    let body = format!(
        r#"{{"push_source_name": "driver_stats_push", "to": "offline", "df": {{"driver_id": [3001], "event_timestamp": ["{}"], "created": ["{}"], "conv_rate": [0.125], "acc_rate": [0.375], "avg_daily_trips": [42]}}}}"#,
        iso(now - 30),
        iso(now - 30)
    );
    let r = post(addr, "/push", &body);
    assert_eq!((r.status, r.body.as_str()), (200, "null"), "{}", r.body);
    let v = read(r#""driver_hourly_stats:avg_daily_trips""#, 3001);
    assert_eq!(
        v["results"][1]["statuses"],
        serde_json::json!(["NOT_FOUND"]),
        "not online yet"
    );
    let body = format!(
        r#"{{"start_ts": "{}", "end_ts": "{}", "feature_views": ["driver_hourly_stats"]}}"#,
        iso(now - 3600),
        iso(now)
    );
    let r = post(addr, "/materialize", &body);
    assert_eq!((r.status, r.body.as_str()), (200, "null"), "{}", r.body);
    let v = read(
        r#""driver_hourly_stats:avg_daily_trips", "driver_hourly_stats:conv_rate""#,
        3001,
    );
    assert_eq!(v["results"][1]["values"], serde_json::json!([42]));
    assert_eq!(v["results"][2]["values"], serde_json::json!([0.125]));

    let r = post(
        addr,
        "/materialize-incremental",
        &format!(r#"{{"end_ts": "{}"}}"#, iso(now)),
    );
    assert_eq!((r.status, r.body.as_str()), (200, "null"), "{}", r.body);
}

feast_tests::on_both_stores!(
    online_features_in_feasts_json,
    writes_pushes_and_materializations_through_the_endpoints,
    windowed_features_in_feasts_json,
);

/// The windowed view through the server: three hourly records of each of
/// two drivers in the Parquet history, materialized through the endpoint,
/// then read with Feast's request and response.
fn windowed_features_in_feasts_json(backend: Backend) {
    let s = serve(backend, &[]);
    let now = Utc::now().timestamp();
    let start = DateTime::<Utc>::from_timestamp(now - 150 * 60, 0).unwrap();
    let history = feast_example_driver_stats::data::driver_stats(2, 3, start);
    feast_runtime::offline_store::parquet::write_file(
        &s.repo.path().join("data/driver_stats.parquet"),
        &history,
    )
    .unwrap();
    let r = post(
        &s.server.addr,
        "/materialize-incremental",
        &format!(
            r#"{{"end_ts": "{}", "feature_views": ["driver_trip_windows"]}}"#,
            iso(now)
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let body = r#"{"features": ["driver_trip_windows:trips_1h", "driver_trip_windows:trips_7d", "driver_trip_windows:conv_rate_mean_7d", "driver_trip_windows:recent_conv_bands"], "entities": {"driver_id": [1001, 1002, 99]}}"#;
    let r = post(&s.server.addr, "/get-online-features", body);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    // The mean of each driver's three Float32 rates, as a double.
    let conv = history.column("conv_rate").unwrap().f32().unwrap();
    let mean = |d: usize| {
        (0..3)
            .map(|h| f64::from(conv.get(2 * h + d).unwrap()))
            .sum::<f64>()
            / 3.0
    };
    let newest = iso(now - 150 * 60 + 2 * 3600);
    let present = serde_json::json!(["PRESENT", "PRESENT", "NOT_FOUND"]);
    let times = serde_json::json!([newest, newest, EPOCH]);
    assert_eq!(
        v["results"][1]["values"],
        serde_json::json!([1, 1, null]),
        "{backend:?}"
    );
    assert_eq!(
        v["results"][2]["values"],
        serde_json::json!([3, 3, null]),
        "{backend:?}"
    );
    assert_eq!(
        v["results"][3]["values"],
        serde_json::json!([mean(0), mean(1), null])
    );
    for f in 1..=4 {
        assert_eq!(v["results"][f]["statuses"], present, "{backend:?}");
        assert_eq!(v["results"][f]["event_timestamps"], times, "{backend:?}");
    }
    let bands = v["results"][4]["values"][0].as_array().unwrap();
    assert!(
        (1..=3).contains(&bands.len())
            && bands
                .iter()
                .all(|b| ["low", "mid", "high"].contains(&b.as_str().unwrap())),
        "{bands:?}"
    );

    // Rows written straight to a windowed view are refused, with the reason.
    let write = r#"{"feature_view_name": "driver_trip_windows", "df": {"driver_id": [1001], "event_timestamp": ["2025-01-01T00:00:00Z"], "conv_rate": [0.5], "conv_band": ["low"]}}"#;
    let r = post(&s.server.addr, "/write-to-online-store", write);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("aggregates its events into windows"),
        "{}",
        r.body
    );
}

#[test]
fn bad_requests_get_4xx_json_errors_that_name_the_problem() {
    let s = serve(Backend::Sqlite, &[]);
    let addr = &s.server.addr;
    let ok_entities = r#""entities": {"driver_id": [1001]}"#;
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("POST", "/get-online-features", "{".into(), 400, "invalid request body: EOF while parsing an object at line 1 column 1"),
        ("POST", "/get-online-features", "[]".into(), 400, "invalid request body: expected a JSON object, found an array"),
        ("POST", "/get-online-features", r#"{"features": ["driver_hourly_stats:conv_rate"]}"#.into(), 400, "invalid request body: missing field `entities`"),
        ("POST", "/get-online-features", format!("{{{ok_entities}}}"), 400, "give `features` (a list of \"view:feature\") or `feature_service`"),
        ("POST", "/get-online-features", format!(r#"{{"features": "driver_hourly_stats:conv_rate", {ok_entities}}}"#), 400, "invalid request body: features: invalid type: string \"driver_hourly_stats:conv_rate\", expected a sequence at line 1 column 44"),
        ("POST", "/get-online-features", r#"{"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": ["x"]}}"#.into(), 400, "entities.driver_id[0]: expected Int64, found \"x\""),
        ("POST", "/get-online-features", r#"{"features": ["driver_hourly_stats:conv_rate"], "entities": {"drv": [1]}}"#.into(), 400, "no entity has the join key `drv`; join keys: driver_id"),
        ("POST", "/get-online-features", r#"{"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": 1001}}"#.into(), 400, "entities.driver_id: expected an array of values"),
        ("POST", "/materialize-incremental", r#"{"end_ts": "2025-01-01T00:00:00Z", "feature_views": ["nope"]}"#.into(), 404, "unknown feature view `nope`"),
        ("POST", "/get-online-features", format!(r#"{{"features": ["driver_hourly_stats"], {ok_entities}}}"#), 400, "invalid feature reference `driver_hourly_stats`: expected `view:feature`"),
        ("POST", "/get-online-features", format!(r#"{{"features": ["nope:conv_rate"], {ok_entities}}}"#), 404, "unknown feature view `nope`; feature views: driver_hourly_stats, driver_hourly_stats_stream"),
        ("POST", "/get-online-features", format!(r#"{{"features": ["driver_hourly_stats:nope"], {ok_entities}}}"#), 404, "unknown feature `nope` in view `driver_hourly_stats`"),
        ("POST", "/get-online-features", format!(r#"{{"feature_service": "nope", {ok_entities}}}"#), 404, "unknown feature service `nope`; feature services: driver_activity"),
        ("POST", "/push", r#"{"push_source_name": "nope", "df": {}}"#.into(), 404, "unknown push source `nope`; push sources: driver_stats_push"),
        ("POST", "/push", r#"{"push_source_name": "driver_stats_push", "to": "somewhere", "df": {}}"#.into(), 400, "unknown push mode `somewhere`; expected online, offline or online_and_offline"),
        ("POST", "/push", r#"{"push_source_name": "driver_stats_push", "df": {"drvr_id": [1]}}"#.into(), 400, "df: unknown column `drvr_id`; expected columns: driver_id, event_timestamp, created, conv_rate, acc_rate, avg_daily_trips"),
        ("POST", "/push", r#"{"push_source_name": "driver_stats_push", "df": {"conv_rate": ["high"]}}"#.into(), 400, "df.conv_rate[0]: expected Float32, found a string"),
        ("POST", "/push", r#"{"push_source_name": "driver_stats_push", "df": {"driver_id": [1, 2], "conv_rate": [0.5]}}"#.into(), 400, "df.driver_id has 2 values, but the other columns have 1"),
        ("POST", "/push", r#"{"push_source_name": "driver_stats_push", "df": {"driver_id": 1}}"#.into(), 400, "df.driver_id: expected an array of values"),
        ("POST", "/write-to-online-store", r#"{"feature_view_name": "nope", "df": {}}"#.into(), 404, "unknown feature view `nope`"),
        ("POST", "/write-to-online-store", r#"{"feature_view_name": "driver_hourly_stats", "df": {"driver_id": [null], "event_timestamp": ["2025-01-01T00:00:00Z"], "conv_rate": [1], "acc_rate": [1], "avg_daily_trips": [1]}}"#.into(), 400, "column `driver_id` has a null at row 0; a join key cannot be null"),
        ("POST", "/materialize", r#"{"start_ts": "yesterday", "end_ts": "2025-01-01T00:00:00Z"}"#.into(), 400, "start_ts `yesterday` is not an ISO-8601 time such as 2025-01-01T00:00:00Z"),
        ("POST", "/materialize", r#"{"start_ts": "2025-01-01T00:00:00Z", "end_ts": "2025-01-02T00:00:00Z", "feature_views": ["nope"]}"#.into(), 404, "unknown feature view `nope`"),
        ("GET", "/nope", String::new(), 404, "no endpoint GET /nope"),
        ("GET", "/get-online-features", String::new(), 405, "Method Not Allowed"),
    ];
    for (method, path, body, status, detail) in cases {
        let r = feast_tests::http::request(addr, method, path, &body);
        assert_eq!(r.status, status, "{method} {path} {body}: {}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{path} {body}"
        );
        let got = r.json()["detail"].as_str().unwrap().to_owned();
        assert!(
            got.contains(detail),
            "{method} {path} {body}:\n  {got}\n  does not say {detail:?}"
        );
    }
}

#[test]
fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let s = serve(Backend::Sqlite, &["--body-limit-bytes", "65536"]);
    let ids: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let body = format!(
        r#"{{"features": ["driver_hourly_stats:conv_rate"], "entities": {{"driver_id": [{}]}}}}"#,
        ids.join(",")
    );
    let r = post(&s.server.addr, "/get-online-features", &body);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("length limit exceeded"),
        "{}",
        r.body
    );
    // Below the limit, 1,000 entities are fine.
    let body = format!(
        r#"{{"features": ["driver_hourly_stats:conv_rate"], "entities": {{"driver_id": [{}]}}}}"#,
        ids[..1000].join(",")
    );
    let r = post(&s.server.addr, "/get-online-features", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["results"][1]["values"].as_array().unwrap().len(),
        1000
    );
}

/// Whether the server closes `conn` within `within`.
fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    conn.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error response before the close is fine
            Err(_) => return false,
        }
    }
}

#[test]
fn slow_and_silent_clients_are_cut_off() {
    let s = serve(Backend::Sqlite, &["--header-read-timeout-ms", "500"]);
    let addr = &s.server.addr;
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Healthy clients are served meanwhile.
    assert_eq!(get(addr, "/health").status, 200);
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)),
        "a silent client stayed"
    );
    assert!(
        closed_within(&mut slow, Duration::from_secs(3)),
        "a half-sent request stayed"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn connections_over_the_cap_get_a_503_and_keep_alive_works() {
    let s = serve(
        Backend::Sqlite,
        &["--max-connections", "4", "--header-read-timeout-ms", "3000"],
    );
    let addr = &s.server.addr;
    // One connection, several requests.
    let mut kept = TcpStream::connect(addr).unwrap();
    let mut reader = std::io::BufReader::new(kept.try_clone().unwrap());
    for _ in 0..3 {
        send(&mut kept, addr, "GET", "/health", "", false);
        assert_eq!(read_response(&mut reader).unwrap().status, 200);
    }
    // Three more connections fill the cap; the next is refused at once.
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let r = get(addr, "/health");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["detail"], "too many connections; try again");
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(held);
    drop(reader);
    drop(kept);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(addr, "/health").status, 200);
}

#[test]
fn redis_down_gives_fast_503s_and_health_says_so_until_it_is_back() {
    let mut s = serve(Backend::Redis, &["--request-timeout-ms", "1500"]);
    let addr = s.server.addr.clone();
    let body =
        r#"{"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}"#;
    assert_eq!(post(&addr, "/get-online-features", body).status, 200);
    assert_eq!(get(&addr, "/health").status, 200);

    // Hung: the request ends at the request timeout.
    let redis = s.redis.as_mut().unwrap();
    redis.signal("-STOP");
    let started = Instant::now();
    let r = post(&addr, "/get-online-features", body);
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    redis.signal("-CONT");

    // Gone: connections refused, answered at once.
    redis.stop();
    for _ in 0..5 {
        let started = Instant::now();
        let r = post(&addr, "/get-online-features", body);
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .starts_with("online store unavailable"),
            "{}",
            r.body
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(get(&addr, "/health").status, 503);

    // Back (empty: it kept nothing): served again within the back-off.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&addr, "/health").status != 200 {
        assert!(Instant::now() < deadline, "health did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = post(&addr, "/get-online-features", body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["results"][1]["statuses"],
        serde_json::json!(["NOT_FOUND"])
    );
}

#[test]
fn metrics_count_requests_and_sigterm_stops_cleanly() {
    let s = serve(Backend::Sqlite, &[]);
    let addr = s.server.addr.clone();
    let body =
        r#"{"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}"#;
    for _ in 0..3 {
        assert_eq!(post(&addr, "/get-online-features", body).status, 200);
    }
    assert_eq!(post(&addr, "/get-online-features", "{").status, 400);
    let text = get(&addr, "/metrics").body;
    for line in [
        "feast_http_requests_total{route=\"/get-online-features\",status=\"200\"} 3",
        "feast_http_requests_total{route=\"/get-online-features\",status=\"400\"} 1",
        "feast_http_request_duration_seconds_count{route=\"/get-online-features\"} 4",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let Served { server, .. } = s;
    assert_eq!(server.terminate(), Some(0));
}
