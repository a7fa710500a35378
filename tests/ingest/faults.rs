//! Kinesis faults injected by a proxy in front of the emulator: throttling,
//! 5xx errors, an expired iterator and denied access.

use std::time::{Duration, Instant};

use feast_tests::fault_proxy::{Fault, FaultProxy};
use feast_tests::kinesis::{Emulator, Kinesis};

use super::support::{Rec, Repo, ingested, terminate, wait_exit};
use super::{OFFLINE, STREAM, assert_online_is_newest, put, shuffled_records};

/// The most calls in any one-second window, less 50 ms for the jitter
/// between a call leaving the consumer and reaching the proxy.
fn max_calls_in_a_second(calls: &[Instant]) -> usize {
    let window = Duration::from_millis(950);
    (0..calls.len())
        .map(|i| {
            calls[i..]
                .iter()
                .take_while(|t| t.duration_since(calls[i]) < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn throttling_and_server_errors_are_retried_within_five_calls_a_second() {
    let emu = Emulator::start();
    let kinesis = Kinesis::new(&emu.endpoint());
    kinesis.create_stream(STREAM, 1);
    let records = shuffled_records(2000, 100, 31, 1);
    put(&kinesis, &records);
    let proxy = FaultProxy::start(emu.port());
    proxy.fail_next("GetRecords", 4, Fault::THROTTLED);
    proxy.fail_next("GetRecords", 2, Fault::INTERNAL_FAILURE);
    proxy.fail_next("GetRecords", 2, Fault::SERVICE_UNAVAILABLE);
    proxy.fail_next("ListShards", 1, Fault::SERVICE_UNAVAILABLE);
    proxy.fail_next("GetShardIterator", 1, Fault::THROTTLED);

    let repo = Repo::example(&proxy.endpoint());
    let started = Instant::now();
    let r = repo.ingest_until_caught_up(&["--batch-size", "100"]);
    assert_eq!(ingested(&r.stdout), 2000);
    assert_eq!(proxy.injected("GetRecords"), 8);
    assert_eq!(proxy.injected("ListShards"), 1);
    assert_eq!(proxy.injected("GetShardIterator"), 1);
    assert_online_is_newest(&repo, &records);

    let calls = proxy.calls("GetRecords");
    // 20 batches of 100 plus the retries, and the final empty read.
    assert!(calls.len() >= 29, "{} GetRecords calls", calls.len());
    let peak = max_calls_in_a_second(&calls);
    assert!(peak <= 5, "{peak} GetRecords calls in one second");
    // Backing off: eight consecutive failures take well over the 1.6 s that
    // eight calls at the plain 200 ms pace would.
    let backoff = calls[8].duration_since(calls[0]);
    assert!(
        backoff >= Duration::from_secs(3),
        "retried after {backoff:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn an_expired_iterator_resumes_from_the_checkpoint() {
    let emu = Emulator::start();
    let kinesis = Kinesis::new(&emu.endpoint());
    kinesis.create_stream(STREAM, 1);
    let proxy = FaultProxy::start(emu.port());
    // Records trickle in, so that a batch gathers over several reads: the
    // iterator expires while records are fetched but not yet written.
    proxy.fail_call("GetRecords", 4, Fault::EXPIRED_ITERATOR);
    proxy.fail_call("GetRecords", 9, Fault::EXPIRED_ITERATOR);
    let repo = Repo::example(&proxy.endpoint());
    let child = repo.spawn(&[
        "ingest",
        "--batch-size",
        "400",
        "--max-batch-latency-ms",
        "5000",
    ]);
    let records = shuffled_records(1500, 100, 37, 1);
    for chunk in records.chunks(30) {
        put(&kinesis, chunk);
        std::thread::sleep(Duration::from_millis(50));
    }
    repo.wait_committed(STREAM, 1500, Duration::from_secs(60));
    terminate(&child);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(proxy.injected("GetRecords"), 2);
    // One iterator at the start, and a fresh one after each expiry.
    assert_eq!(proxy.calls("GetShardIterator").len(), 3);
    // Each expiry is a warning an operator sees, without colour codes in a
    // pipe.
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains(" WARN ")
                && l.contains("shard iterator expired")
                && l.contains("reading again from the checkpoint"))
            .count(),
        2,
        "{stderr}"
    );
    let all: Vec<&Rec> = records.iter().collect();
    repo.assert_offline_exactly(OFFLINE, &all);
    assert_online_is_newest(&repo, &records);
}

#[test]
fn denied_access_is_reported_not_spun_on() {
    let emu = Emulator::start();
    let kinesis = Kinesis::new(&emu.endpoint());
    kinesis.create_stream(STREAM, 2);
    put(&kinesis, &shuffled_records(50, 10, 41, 1));
    let proxy = FaultProxy::start(emu.port());
    proxy.fail_next("GetRecords", 1, Fault::ACCESS_DENIED);
    let repo = Repo::example(&proxy.endpoint());
    let started = Instant::now();
    let r = repo.run(&["ingest"]);
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        r.stderr
            .contains("error: stream `driver_stats`, shard shardId-00000000000")
            && r.stderr.contains(": AccessDeniedException: ")
            && r.stderr
                .contains("User is not authorized to perform: kinesis:GetRecords (not retried)"),
        "{}",
        r.stderr
    );
    // The failing shard stopped the run: no call was retried.
    assert!(
        proxy.calls("GetRecords").len() <= 3,
        "{:?}",
        proxy.calls("GetRecords").len()
    );
}
