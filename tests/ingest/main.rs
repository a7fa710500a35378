//! Kinesis ingestion tested as users run it: the feature repo binary's
//! `ingest` against a real Kinesis emulator (kinesalite), some cases through
//! a fault-injecting proxy in front of it. Each test has its own emulator.

#![allow(clippy::unwrap_used)] // test code: a failure should stop loudly

mod faults;
mod new_user;
mod skew;
mod startup;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use feast_tests::kinesis::{Emulator, Kinesis};
use support::{Rec, Repo, Rng, T0, ingested, newest_per_driver, terminate, wait_exit};

const STREAM: &str = "driver_stats";
const SOURCE: &str = "driver_stats_stream";
const VIEW: &str = "driver_hourly_stats_stream";
const PROJECT: &str = "driver_stats";
const OFFLINE: &str = "data/driver_stats.parquet";

/// `n` records over `drivers` drivers in random order, each driver's event
/// times distinct whole seconds, so that the newest per driver is unique
/// whatever order the stream holds them in (late and out-of-order records).
fn shuffled_records(n: usize, drivers: i64, seed: u64, first_id: u32) -> Vec<Rec> {
    let mut rng = Rng::new(seed);
    let mut used: BTreeMap<i64, std::collections::BTreeSet<i64>> = BTreeMap::new();
    (0..n)
        .map(|i| {
            let driver = 1001 + rng.below(drivers as u64) as i64;
            let event_s = loop {
                let t = T0 + rng.below(100_000) as i64;
                if used.entry(driver).or_default().insert(t) {
                    break t;
                }
            };
            Rec {
                driver,
                event_s,
                created_s: event_s + rng.below(600) as i64,
                conv_rate: (rng.below(1_000_000) as f64) / 1e6,
                id: first_id + i as u32,
            }
        })
        .collect()
}

/// `rounds` records per driver, event times increasing one second a round.
fn ordered_records(drivers: i64, rounds: usize, first_id: u32) -> Vec<Rec> {
    let mut out = Vec::new();
    for round in 0..rounds {
        for d in 0..drivers {
            let id = first_id + out.len() as u32;
            out.push(Rec {
                driver: 1001 + d,
                event_s: T0 + round as i64,
                created_s: T0 + round as i64,
                conv_rate: (round as f64) / 1000.0 + (d as f64) / 1e7,
                id,
            });
        }
    }
    out
}

/// A private emulator with the example's stream of `shards` shards, a
/// client, and the example's repository applied and pointed at it.
fn example_on_stream(shards: i32) -> (Emulator, Kinesis, Repo) {
    let emu = Emulator::start();
    let kinesis = Kinesis::new(&emu.endpoint());
    kinesis.create_stream(STREAM, shards);
    let repo = Repo::example(&emu.endpoint());
    (emu, kinesis, repo)
}

/// The example on a stream of `shards` shards with a Redis online store.
fn example_on_redis_stream(
    shards: i32,
) -> (Emulator, Kinesis, feast_tests::redis::RedisServer, Repo) {
    let emu = Emulator::start();
    let kinesis = Kinesis::new(&emu.endpoint());
    kinesis.create_stream(STREAM, shards);
    let redis = feast_tests::redis::RedisServer::start();
    let repo = Repo::with_config(
        &feast_tests::example_redis_config(PROJECT, &redis.connection_string()),
        support::EXAMPLE,
        &emu.endpoint(),
    );
    (emu, kinesis, redis, repo)
}

/// Starts `ingest` in small batches and kills it (SIGKILL) after 150 to
/// 850 ms.
fn kill_ingest_at_random(repo: &Repo, rng: &mut Rng) {
    let mut child = repo.spawn(&[
        "ingest",
        "--batch-size",
        "100",
        "--max-batch-latency-ms",
        "50",
    ]);
    std::thread::sleep(Duration::from_millis(150 + rng.below(700)));
    child.kill().unwrap();
    child.wait().unwrap();
}

fn put(kinesis: &Kinesis, records: &[Rec]) -> Vec<(String, String)> {
    let entries: Vec<(String, Vec<u8>)> = records.iter().map(Rec::entry).collect();
    kinesis.put(STREAM, &entries)
}

/// The online values are the newest record per driver after the view's
/// function.
fn assert_online_is_newest(repo: &Repo, records: &[Rec]) {
    let online = repo.conv_percentages(PROJECT, VIEW);
    let want: BTreeMap<i64, f32> = newest_per_driver(records)
        .into_iter()
        .map(|(d, r)| (d, r.conv_percentage()))
        .collect();
    assert_eq!(online.len(), want.len(), "drivers online");
    assert_eq!(online, want);
}

#[test]
fn ingest_writes_the_newest_value_per_driver_online_and_every_record_offline() {
    let (_emu, kinesis, repo) = example_on_stream(2);
    let records = shuffled_records(3000, 200, 1, 1);
    put(&kinesis, &records);

    let r = repo.ingest_until_caught_up(&["--batch-size", "250"]);
    assert!(
        r.stdout
            .starts_with("ingested 3000 records (0 dead-lettered) from 2 shards, wrote "),
        "{}",
        r.stdout
    );

    assert_online_is_newest(&repo, &records);
    // The event time stored is the newest record's, in whole seconds.
    let online = repo.online(PROJECT, VIEW);
    for (driver, rec) in newest_per_driver(&records) {
        assert_eq!(
            online[&driver].0, rec.event_s,
            "event time of driver {driver}"
        );
    }
    let all: Vec<&Rec> = records.iter().collect();
    repo.assert_offline_exactly(OFFLINE, &all);
    let checkpoints = repo.checkpoints(STREAM);
    assert_eq!(checkpoints.len(), 2);
    assert_eq!(repo.committed(STREAM), 3000);
    assert!(repo.dead_letters(SOURCE).is_empty());

    // Served online, the records of 2025 are past the view's ttl of one day.
    let driver = *newest_per_driver(&records).keys().next().unwrap();
    let r = repo.run(&[
        "get-online",
        "--features",
        "driver_hourly_stats_stream:conv_percentage",
        "--entity",
        &format!("driver_id={driver}"),
        "--json",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["results"][1]["statuses"][0], "OUTSIDE_MAX_AGE", "{v}");
}

#[test]
fn a_second_run_reads_only_new_records() {
    let (_emu, kinesis, repo) = example_on_stream(1);
    let first = shuffled_records(1000, 50, 2, 1);
    put(&kinesis, &first);
    assert_eq!(ingested(&repo.ingest_until_caught_up(&[]).stdout), 1000);

    let second = shuffled_records(400, 80, 3, 1001);
    put(&kinesis, &second);
    assert_eq!(ingested(&repo.ingest_until_caught_up(&[]).stdout), 400);
    assert_eq!(ingested(&repo.ingest_until_caught_up(&[]).stdout), 0);
    assert_eq!(repo.committed(STREAM), 1400);
    let all: Vec<Rec> = first.into_iter().chain(second).collect();
    assert_online_is_newest(&repo, &all);
}

#[test]
fn kill_9_at_random_points_loses_nothing_and_applies_nothing_twice() {
    let (_emu, kinesis, repo) = example_on_stream(2);
    // Each driver's records in event-time order: the last one is the truth,
    // and a value going back in time would be a regression.
    let records = ordered_records(200, 40, 1);
    put(&kinesis, &records);

    let mut rng = Rng::new(99);
    let mut seen: BTreeMap<i64, i64> = BTreeMap::new();
    let (mut regressions, mut kills, mut committed_at_kill) = (0, 0, Vec::new());
    while kills < 12 {
        kill_ingest_at_random(&repo, &mut rng);
        kills += 1;
        committed_at_kill.push(repo.committed(STREAM));
        for (driver, (event, _)) in repo.online(PROJECT, VIEW) {
            let before = seen.insert(driver, event).unwrap_or(i64::MIN);
            if event < before {
                regressions += 1;
            }
        }
    }
    let r = repo.ingest_until_caught_up(&["--batch-size", "500"]);
    let total = records.len() as u64;
    assert_eq!(
        committed_at_kill.last().copied().unwrap() + ingested(&r.stdout),
        total,
        "records read after the last kill"
    );
    assert!(
        committed_at_kill.windows(2).all(|w| w[0] <= w[1]),
        "checkpoints went backwards: {committed_at_kill:?}"
    );
    assert!(
        committed_at_kill[0] < total,
        "the first kill came after ingestion finished: {committed_at_kill:?}"
    );
    assert_eq!(regressions, 0, "online values went back in time");
    // Each batch adds its records to the checkpoint in its own transaction:
    // exactly the number put means none lost and none applied twice.
    assert_eq!(repo.committed(STREAM), total);
    assert_online_is_newest(&repo, &records);
    let all: Vec<&Rec> = records.iter().collect();
    repo.assert_offline_exactly(OFFLINE, &all);
    // The windowed view's tiles, folded batch by batch through every kill,
    // equal the windows recomputed from the offline log (which holds each
    // record once): no batch counted twice, none lost.
    let at = feast_runtime::chrono::DateTime::from_timestamp(T0 + 60, 0)
        .unwrap()
        .to_rfc3339();
    let r = repo.run(&["verify", "--views", "driver_trip_windows", "--at", &at]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("driver_trip_windows: 200 entities agree"),
        "{}",
        r.stdout
    );
    let r = repo.run(&["verify", "--views", "driver_trip_windows"]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
}

/// The windowed view on Redis through kill -9 at random points: each batch's
/// tiles and its checkpoint are one script, and a batch the checkpoint
/// covers is refused, so the windows end equal to their recomputation from
/// the log, which holds each record once.
#[test]
fn kill_9_on_redis_counts_every_windowed_event_once() {
    let (_emu, kinesis, _redis, repo) = example_on_redis_stream(2);
    let records = ordered_records(200, 40, 1);
    put(&kinesis, &records);
    let mut rng = Rng::new(7);
    for _ in 0..8 {
        kill_ingest_at_random(&repo, &mut rng);
    }
    let r = repo.ingest_until_caught_up(&["--batch-size", "500"]);
    assert!(ingested(&r.stdout) < records.len() as u64, "{}", r.stdout);
    let all: Vec<&Rec> = records.iter().collect();
    repo.assert_offline_exactly(OFFLINE, &all);
    let at = feast_runtime::chrono::DateTime::from_timestamp(T0 + 60, 0)
        .unwrap()
        .to_rfc3339();
    let r = repo.run(&["verify", "--views", "driver_trip_windows", "--at", &at]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("driver_trip_windows: 200 entities agree"),
        "{}",
        r.stdout
    );
}

#[test]
fn split_and_merge_during_ingestion_keep_each_drivers_order() {
    let (_emu, kinesis, repo) = example_on_stream(1);

    // Every record of a driver has the same event and created time, so the
    // store keeps the one applied last: the last round only if the rounds
    // were applied in order across the reshards.
    let drivers = 150;
    let mut all = Vec::new();
    let mut put_round = |round: usize| {
        let batch: Vec<Rec> = (0..drivers)
            .map(|d| Rec {
                driver: 1001 + d,
                event_s: T0,
                created_s: T0,
                conv_rate: (round as f64 + 1.0) / 100.0,
                id: 1 + (round * drivers as usize + d as usize) as u32,
            })
            .collect();
        put(&kinesis, &batch);
        all.extend(batch);
    };
    // A backlog on the parent and on its children before ingestion starts...
    (0..5).for_each(&mut put_round);
    kinesis.split(STREAM, "shardId-000000000000");
    (5..10).for_each(&mut put_round);

    let child = repo.spawn(&[
        "ingest",
        "--batch-size",
        "100",
        "--shard-discovery-interval-secs",
        "1",
    ]);
    // ...watched: no shard may commit a record before its parents finish.
    let lineage: BTreeMap<&str, Vec<&str>> = [
        ("shardId-000000000000", vec![]),
        ("shardId-000000000001", vec!["shardId-000000000000"]),
        ("shardId-000000000002", vec!["shardId-000000000000"]),
        (
            "shardId-000000000003",
            vec!["shardId-000000000001", "shardId-000000000002"],
        ),
    ]
    .into();
    let done = std::sync::atomic::AtomicBool::new(false);
    let violations = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            // The first violation seen per shard.
            let mut violations = BTreeMap::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let cps = repo.checkpoints(STREAM);
                for (shard, (records, _)) in &cps {
                    let parents = &lineage[shard.as_str()];
                    if *records > 0 && !parents.iter().all(|p| cps.get(*p).is_some_and(|c| c.1)) {
                        violations.entry(shard.clone()).or_insert_with(|| {
                            format!(
                                "{records} records committed before its parents finished: {cps:?}"
                            )
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            violations
        });
        // ...and a merge while ingestion runs.
        (10..12).for_each(&mut put_round);
        kinesis.merge(STREAM, "shardId-000000000001", "shardId-000000000002");
        (12..15).for_each(&mut put_round);
        repo.wait_committed(STREAM, 15 * drivers as u64, Duration::from_secs(90));
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        watcher.join().unwrap()
    });
    assert_eq!(violations, BTreeMap::new());
    let shards = kinesis.shards(STREAM);
    let listed: BTreeMap<&str, Vec<&str>> = shards
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                s.parents.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(listed, lineage);
    terminate(&child);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");

    let online = repo.conv_percentages(PROJECT, VIEW);
    assert_eq!(online.len(), drivers as usize);
    let last_round = all.last().unwrap().conv_percentage();
    for (driver, value) in online {
        assert_eq!(
            value, last_round,
            "driver {driver} did not end on the last round"
        );
    }
    let checkpoints = repo.checkpoints(STREAM);
    let finished: Vec<bool> = checkpoints.values().map(|c| c.1).collect();
    assert_eq!(finished, [true, true, true, false], "{checkpoints:?}");
    let refs: Vec<&Rec> = all.iter().collect();
    repo.assert_offline_exactly(OFFLINE, &refs);
}

#[test]
fn sigterm_under_load_exits_0_within_10_seconds_and_the_restart_replays_nothing() {
    let (_emu, kinesis, repo) = example_on_stream(2);
    let records = ordered_records(500, 30, 1);
    put(&kinesis, &records);

    let child = repo.spawn(&["ingest", "--batch-size", "200"]);
    repo.wait_committed_at_least(STREAM, 1000, Duration::from_secs(30));
    let asked = Instant::now();
    terminate(&child);
    let (code, stdout, stderr) = wait_exit(child, Duration::from_secs(10));
    let took = asked.elapsed();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");
    assert!(stderr.contains("stopping: flushing"), "{stderr}");
    let first = ingested(&stdout);
    assert_eq!(repo.committed(STREAM), first, "committed = reported");
    assert!(
        first < records.len() as u64,
        "the run finished before the signal"
    );

    let r = repo.ingest_until_caught_up(&[]);
    assert_eq!(first + ingested(&r.stdout), records.len() as u64);
    assert_online_is_newest(&repo, &records);
}

#[test]
fn the_emulator_stopped_and_restarted_mid_run_is_retried_then_resumed() {
    let data = tempfile::tempdir().unwrap();
    let mut emu = Emulator::start_persistent(data.path());
    let kinesis = Kinesis::new(&emu.endpoint());
    kinesis.create_stream(STREAM, 1);
    let first = ordered_records(100, 20, 1);
    put(&kinesis, &first);
    let repo = Repo::example(&emu.endpoint());
    let mut child = repo.spawn(&["ingest", "--batch-size", "100"]);
    repo.wait_committed_at_least(STREAM, 300, Duration::from_secs(30));

    emu.stop();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "ingest gave up while the emulator was down"
    );
    emu.restart();
    let kinesis = Kinesis::new(&emu.endpoint());
    let second = ordered_records(100, 5, 2001)
        .into_iter()
        .map(|mut r| {
            r.event_s += 100;
            r.created_s += 100;
            r
        })
        .collect::<Vec<_>>();
    put(&kinesis, &second);
    let total = (first.len() + second.len()) as u64;
    repo.wait_committed(STREAM, total, Duration::from_secs(60));
    terminate(&child);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("failed"), "no retry was logged:\n{stderr}");
    let all: Vec<Rec> = first.into_iter().chain(second).collect();
    assert_online_is_newest(&repo, &all);
}

#[test]
fn malformed_records_land_exactly_in_the_dead_letter_sink() {
    let (_emu, kinesis, repo) = example_on_stream(2);
    let good = shuffled_records(1980, 100, 5, 1);
    let long = format!(
        r#"{{"driver_id": 1001, "event_timestamp": "2025-01-01T00:00:00Z", "conv_rate": 0.5, "acc_rate": 0.5, "pad": "{}"}}"#,
        "x".repeat(3000)
    );
    // (record, what the reason must say), 1% of the stream.
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (b"not json at all".to_vec(), "not JSON"),
        (b"{\"driver_id\": 1001, \"conv_rate\": ".to_vec(), "not JSON"),
        (vec![0xff, 0xfe, 0x7b, 0x22], "not JSON"),
        (b"[1001, 0.5]".to_vec(), "expected a JSON object, found an array"),
        (b"\"a string\"".to_vec(), "expected a JSON object, found a string"),
        (br#"{"event_timestamp": "2025-01-01T00:00:00Z", "conv_rate": 0.5}"#.to_vec(), "field `driver_id` is missing"),
        (br#"{"driver_id": null, "event_timestamp": "2025-01-01T00:00:00Z"}"#.to_vec(), "field `driver_id` is null"),
        (br#"{"driver_id": "1001", "event_timestamp": "2025-01-01T00:00:00Z"}"#.to_vec(), "field `driver_id`: expected Int32, found a string"),
        (br#"{"driver_id": 1.5, "event_timestamp": "2025-01-01T00:00:00Z"}"#.to_vec(), "field `driver_id`: not an integer"),
        (br#"{"driver_id": 99999999999, "event_timestamp": "2025-01-01T00:00:00Z"}"#.to_vec(), "field `driver_id`: out of the Int32 range"),
        (br#"{"driver_id": 1001, "event_timestamp": "yesterday"}"#.to_vec(), "field `event_timestamp`: not an ISO-8601 timestamp"),
        (br#"{"driver_id": 1001, "event_timestamp": true}"#.to_vec(), "field `event_timestamp`: expected UnixTimestamp, found a boolean"),
        (br#"{"driver_id": 1001}"#.to_vec(), "field `event_timestamp` is missing"),
        (br#"{"driver_id": 1001, "event_timestamp": "2025-01-01T00:00:00Z", "conv_rate": "high"}"#.to_vec(), "field `conv_rate`: expected Float64, found a string"),
        (br#"{"driver_id": 1001, "event_timestamp": "2025-01-01T00:00:00Z", "acc_rate": [1]}"#.to_vec(), "field `acc_rate`: expected Float64, found an array"),
        (br#"{"driver_id": 1001, "event_timestamp": "2025-01-01T00:00:00Z", "created": {}}"#.to_vec(), "field `created`: expected UnixTimestamp, found an object"),
        (long.into_bytes(), "bytes is over the 2048-byte limit"),
        (b"".to_vec(), "not JSON"),
        (b"{}".to_vec(), "field `driver_id` is missing"),
        (b"null".to_vec(), "expected a JSON object, found null"),
    ];
    assert_eq!(bad.len(), 20);
    // Interleave the bad records through the stream, on both shards.
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut bad_at = Vec::new();
    let mut rng = Rng::new(7);
    let mut bad_iter = bad.iter();
    for r in &good {
        if rng.below(99) == 0
            && let Some((data, _)) = bad_iter.next()
        {
            bad_at.push(entries.len());
            entries.push((format!("bad-{}", entries.len()), data.clone()));
        }
        entries.push(r.entry());
    }
    for (data, _) in bad_iter {
        bad_at.push(entries.len());
        entries.push((format!("bad-{}", entries.len()), data.clone()));
    }
    assert_eq!(entries.len(), 2000);
    let placed = kinesis.put(STREAM, &entries);

    let r = repo.ingest_until_caught_up(&["--batch-size", "300", "--max-record-bytes", "2048"]);
    assert!(
        r.stdout
            .starts_with("ingested 2000 records (20 dead-lettered)"),
        "{}",
        r.stdout
    );

    let letters = repo.dead_letters(SOURCE);
    let want: BTreeMap<(String, String), (&str, &Vec<u8>)> = bad_at
        .iter()
        .zip(&bad)
        .map(|(&i, (data, reason))| (placed[i].clone(), (*reason, data)))
        .collect();
    assert_eq!(
        letters.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "dead letters are exactly the bad records"
    );
    for (key, (reason, data)) in &want {
        let (got_reason, got_data) = &letters[key];
        assert!(
            got_reason.contains(reason),
            "{key:?}: {got_reason:?} does not say {reason:?}"
        );
        assert_eq!(&got_data, data, "{key:?}: raw bytes");
    }
    assert_online_is_newest(&repo, &good);
    let refs: Vec<&Rec> = good.iter().collect();
    repo.assert_offline_exactly(OFFLINE, &refs);
    assert_eq!(repo.committed(STREAM), 2000);
}

#[test]
fn a_panicking_view_dead_letters_only_the_marked_records() {
    let emu = Emulator::start();
    let kinesis = Kinesis::new(&emu.endpoint());
    kinesis.create_stream("marked_events", 1);
    let mut records = shuffled_records(600, 40, 11, 1);
    // Markers at scattered places: 666 panics, 667 returns an error.
    for (i, marker) in [(13, 666), (250, 667), (251, 666), (599, 667)] {
        records[i].driver = marker;
    }
    let entries: Vec<(String, Vec<u8>)> = records.iter().map(Rec::entry).collect();
    let placed = kinesis.put("marked_events", &entries);

    let repo = Repo::marked(&emu.endpoint());
    let r = repo.ingest_until_caught_up(&["--batch-size", "100"]);
    assert!(
        r.stdout
            .starts_with("ingested 600 records (4 dead-lettered)"),
        "{}",
        r.stdout
    );

    let letters = repo.dead_letters("marked_events");
    let reasons: Vec<(&String, &str)> = letters
        .iter()
        .map(|((_, seq), (reason, _))| (seq, reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                &placed[13].1,
                "the function of view `marked_stats` panicked: driver 666 is a poison record"
            ),
            (
                &placed[250].1,
                "the function of view `marked_stats` returned an error: driver 667 is refused"
            ),
            (
                &placed[251].1,
                "the function of view `marked_stats` panicked: driver 666 is a poison record"
            ),
            (
                &placed[599].1,
                "the function of view `marked_stats` returned an error: driver 667 is refused"
            ),
        ]
    );
    let kept: Vec<Rec> = records
        .iter()
        .filter(|r| r.driver != 666 && r.driver != 667)
        .cloned()
        .collect();
    let online = repo.conv_percentages("marked", "marked_stats");
    let want: BTreeMap<i64, f32> = newest_per_driver(&kept)
        .into_iter()
        .map(|(d, r)| (d, r.conv_percentage()))
        .collect();
    assert_eq!(online, want);
    let refs: Vec<&Rec> = kept.iter().collect();
    repo.assert_offline_exactly_marked(&refs);
}

#[test]
fn an_uncommitted_offline_file_is_replaced_not_duplicated() {
    // What a crash between the offline write and the commit leaves behind:
    // a file for a batch that no checkpoint covers.
    let (_emu, kinesis, repo) = example_on_stream(1);
    let records = shuffled_records(500, 30, 17, 1);
    let placed = put(&kinesis, &records);
    let r = repo.ingest_until_caught_up(&["--batch-size", "200"]);
    assert_eq!(ingested(&r.stdout), 500);
    let files = repo.offline_files(OFFLINE);
    assert_eq!(files.len(), 3, "{files:?}");

    // Roll the checkpoint back to the first batch, as if the later batches'
    // commits never happened: their files are orphans.
    let db = repo.db();
    db.execute(
        "UPDATE feast_rs_kinesis_checkpoints SET sequence_number = ?1, records = 200",
        [&placed[199].1],
    )
    .unwrap();
    drop(db);
    let r = repo.ingest_until_caught_up(&["--batch-size", "150"]);
    assert_eq!(ingested(&r.stdout), 300);
    let all: Vec<&Rec> = records.iter().collect();
    repo.assert_offline_exactly(OFFLINE, &all);
    assert_eq!(
        repo.offline_files(OFFLINE).len(),
        3,
        "one file of the first run, two of the replay"
    );
}

#[test]
fn metrics_are_served_while_ingesting() {
    let (_emu, kinesis, repo) = example_on_stream(1);
    let records = shuffled_records(300, 20, 23, 1);
    put(&kinesis, &records);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut child = repo.spawn(&["ingest", "--metrics-addr", &addr]);
    // The first line says where the metrics are.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    assert_eq!(
        first,
        format!("serving Prometheus metrics at http://{addr}/metrics\n")
    );
    repo.wait_committed(STREAM, 300, Duration::from_secs(30));
    let body = http_get(&addr, "/metrics");
    for line in [
        "feast_ingest_records_in_total{stream=\"driver_stats\",shard=\"shardId-000000000000\"} 300",
        "feast_ingest_records_dead_lettered_total{stream=\"driver_stats\",shard=\"shardId-000000000000\"} 0",
        "feast_ingest_millis_behind_latest{stream=\"driver_stats\",shard=\"shardId-000000000000\"} 0",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }
    let rows = newest_per_driver(&records).len();
    assert!(
        body.lines().any(|l| l
            == format!("feast_ingest_rows_written_total{{feature_view=\"driver_hourly_stats_stream\",shard=\"shardId-000000000000\"}} {rows}")),
        "{body}"
    );
    assert!(
        body.contains("feast_ingest_batch_duration_seconds_bucket{")
            && body.contains("# TYPE feast_ingest_batch_duration_seconds histogram\n"),
        "{body}"
    );
    assert!(
        body.contains("feast_ingest_last_checkpoint_timestamp_seconds{"),
        "{body}"
    );
    assert!(http_get(&addr, "/other").starts_with("metrics are at /metrics"));
    terminate(&child);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
}

/// The body of a plain HTTP GET.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[test]
fn a_locked_store_pauses_ingestion_until_it_is_free() {
    let (_emu, kinesis, repo) = example_on_stream(1);
    let first = shuffled_records(300, 30, 43, 1);
    put(&kinesis, &first);
    let child = repo.spawn(&["ingest", "--batch-size", "100"]);
    repo.wait_committed(STREAM, 300, Duration::from_secs(30));

    // Another writer holds the database for longer than the store's busy
    // timeout (10 s): the next batch fails, and is retried until it is free.
    let lock = repo.db();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let second = shuffled_records(300, 30, 47, 301);
    let mut entries: Vec<(String, Vec<u8>)> = second.iter().map(Rec::entry).collect();
    entries.insert(10, ("bad".into(), b"not json".to_vec()));
    kinesis.put(STREAM, &entries);
    std::thread::sleep(Duration::from_secs(14));
    assert_eq!(
        repo.committed(STREAM),
        300,
        "committed while the store was locked"
    );
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);

    repo.wait_committed(STREAM, 601, Duration::from_secs(30));
    terminate(&child);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("cannot write a batch; retrying"),
        "{stderr}"
    );
    // The batch was tried more than once; its dead letter is written once
    // (`dead_letters` fails on a repeated line).
    assert_eq!(repo.dead_letters(SOURCE).len(), 1);
    let all: Vec<Rec> = first.into_iter().chain(second).collect();
    assert_online_is_newest(&repo, &all);
}

#[test]
fn on_redis_ingestion_pauses_while_redis_hangs_then_resumes() {
    let (_emu, kinesis, redis, repo) = example_on_redis_stream(1);
    let mut client = redis.client();
    let committed = |c: &mut redis::Connection| -> u64 {
        redis::cmd("HGET")
            .arg(format!(
                "feast_rs:{PROJECT}:checkpoint:{PROJECT}:{STREAM}:shardId-000000000000"
            ))
            .arg("records")
            .query::<Option<u64>>(c)
            .unwrap()
            .unwrap_or(0)
    };
    let wait_for = |c: &mut redis::Connection, n: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while committed(c) < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n} committed",
                committed(c)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(committed(c), n);
    };

    // Events of the last seven hours, within the view's ttl when read.
    let now = feast_runtime::chrono::Utc::now().timestamp();
    let recent = |mut records: Vec<Rec>| {
        for r in &mut records {
            let age = (T0 + 100_000 - r.event_s) / 4;
            r.created_s = now - age + (r.created_s - r.event_s);
            r.event_s = now - age;
        }
        records
    };
    let first = recent(shuffled_records(1000, 100, 53, 1));
    put(&kinesis, &first);
    let child = repo.spawn(&["ingest", "--batch-size", "200"]);
    wait_for(&mut client, 1000);

    // A hung server: every call times out, the batch is retried, nothing is
    // checkpointed, fetching waits.
    redis.signal("-STOP");
    let second = recent(shuffled_records(500, 100, 59, 1001));
    put(&kinesis, &second);
    std::thread::sleep(Duration::from_secs(8));
    redis.signal("-CONT");
    wait_for(&mut client, 1500);
    terminate(&child);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(15));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("cannot write a batch; retrying"),
        "{stderr}"
    );

    // Served from Redis, through the binary: the newest value per driver.
    let all: Vec<Rec> = first.into_iter().chain(second).collect();
    let want = newest_per_driver(&all);
    let drivers: Vec<i64> = want.keys().copied().collect();
    let values = repo.served_conv_percentages(&drivers);
    let expected: Vec<Option<f32>> = want.values().map(|r| Some(r.conv_percentage())).collect();
    assert_eq!(values, expected);
}
