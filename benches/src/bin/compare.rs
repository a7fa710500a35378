//! The feast-rs side of `scripts/bench compare`, the side-by-side benchmark against
//! Feast: one workload per call, timed in-process, the result as one line
//! of JSON on stdout (and the data to compare written where asked).
//!
//! ```text
//! bench-compare materialize REPO START END
//! bench-compare write REPO FILE.parquet          write_to_online_store of the file's rows
//! bench-compare read REPO ENTITIES REPEATS       online reads of ENTITIES random drivers
//! bench-compare historical REPO ENTITIES.parquet OUT.parquet
//! bench-compare online-values REPO FIRST COUNT OUT.json
//! ```

#![allow(clippy::unwrap_used)] // test and benchmark code: a failure should stop loudly

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use feast_example_driver_stats as _;
use feast_runtime::chrono::{DateTime, Utc};
use feast_runtime::definition::JoinKeyValue;
use feast_runtime::feature_store::{FeatureStore, Features};
use feast_runtime::offline_store;

const FEATURES: [&str; 3] = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:avg_daily_trips",
];

fn time(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("missing argument {i}; see the source's usage"))
    };
    let store = FeatureStore::open(Path::new(arg(1))).unwrap();
    let out = match arg(0) {
        "materialize" => {
            let t = Instant::now();
            let s = store
                .materialize(time(arg(2)), time(arg(3)), Some(&["driver_hourly_stats"]))
                .unwrap();
            serde_json::json!({"seconds": t.elapsed().as_secs_f64(), "rows_read": s.rows_read})
        }
        "write" => {
            let df = offline_store::read_file(Path::new(arg(2))).unwrap();
            let t = Instant::now();
            let s = store
                .write_to_online_store("driver_hourly_stats", &df)
                .unwrap();
            serde_json::json!({"seconds": t.elapsed().as_secs_f64(), "rows": s.rows})
        }
        "read" => {
            let n: usize = arg(2).parse().unwrap();
            let repeats: usize = arg(3).parse().unwrap();
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            let mut times = Vec::with_capacity(repeats);
            for _ in 0..repeats {
                let ids: Vec<JoinKeyValue<'_>> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        JoinKeyValue::Int64(1001 + (x % 10_000) as i64)
                    })
                    .collect();
                let t = Instant::now();
                let r = store
                    .get_online_features(&Features::Refs(&FEATURES), &[("driver_id", ids)], false)
                    .unwrap();
                times.push(t.elapsed());
                assert_eq!(r.columns.len(), 4);
            }
            times.sort();
            serde_json::json!({"p50": percentile(&times, 0.5), "p99": percentile(&times, 0.99)})
        }
        "historical" => {
            let entities = offline_store::read_file(Path::new(arg(2))).unwrap();
            let t = Instant::now();
            let df = store
                .get_historical_features(&entities, &Features::Refs(&FEATURES), false, false)
                .unwrap();
            let seconds = t.elapsed().as_secs_f64();
            offline_store::write_file(Path::new(arg(3)), &df).unwrap();
            serde_json::json!({"seconds": seconds, "rows": df.height()})
        }
        "online-values" => {
            let first: i64 = arg(2).parse().unwrap();
            let count: i64 = arg(3).parse().unwrap();
            let ids: Vec<JoinKeyValue<'_>> =
                (first..first + count).map(JoinKeyValue::Int64).collect();
            let r = store
                .get_online_features(&Features::Refs(&FEATURES), &[("driver_id", ids)], false)
                .unwrap();
            std::fs::write(
                arg(4),
                feast_runtime::feature_store::json::feast_json(&r).to_string(),
            )
            .unwrap();
            serde_json::json!({"drivers": count})
        }
        other => panic!("unknown workload `{other}`"),
    };
    println!("{out}");
    ExitCode::SUCCESS
}
