//! A deterministic driver-stats data set: `drivers` drivers reporting every
//! hour for `hours` hours, in the schema of [`DriverStatsSource`].
//!
//! The values come from a hash of (driver, hour), so the same arguments give
//! the same frame on every machine; the quickstart, the tests and the
//! benchmarks all use it.
//!
//! [`DriverStatsSource`]: crate::sources::DriverStatsSource

use feast_runtime::chrono::{DateTime, Utc};
use feast_runtime::polars::prelude::*;

/// The first driver's id; drivers are numbered consecutively from it.
pub const FIRST_DRIVER_ID: i64 = 1001;

/// SplitMix64: a small, well-mixed, deterministic hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn unit(h: u64) -> f32 {
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Driver stats for `drivers` drivers over `hours` hours from `start`; row
/// `(hour, driver)` has event time `start + hour` hours and is created up to
/// ten minutes later.
pub fn driver_stats(drivers: usize, hours: usize, start: DateTime<Utc>) -> DataFrame {
    let n = drivers * hours;
    let start_us = start.timestamp_micros();
    let mut driver_id = Vec::with_capacity(n);
    let mut event = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut conv = Vec::with_capacity(n);
    let mut acc = Vec::with_capacity(n);
    let mut trips = Vec::with_capacity(n);
    for hour in 0..hours as u64 {
        for d in 0..drivers as u64 {
            let h = mix((d << 32) ^ hour);
            let ts = start_us + (hour as i64) * 3_600_000_000;
            driver_id.push(FIRST_DRIVER_ID + d as i64);
            event.push(ts);
            created.push(ts + ((h % 600) as i64) * 1_000_000);
            conv.push(unit(mix(h ^ 1)));
            acc.push(unit(mix(h ^ 2)));
            trips.push((mix(h ^ 3) % 1000) as i64);
        }
    }
    let ts_type = feast_runtime::definition::FeastType::UnixTimestamp.dtype();
    let ts = |name: &str, v: Vec<i64>| {
        Column::new(name.into(), v)
            .cast(&ts_type)
            .expect("i64 microseconds cast to a datetime")
    };
    DataFrame::new(
        n,
        vec![
            Column::new("driver_id".into(), driver_id),
            ts("event_timestamp", event),
            ts("created", created),
            Column::new("conv_rate".into(), conv),
            Column::new("acc_rate".into(), acc),
            Column::new("avg_daily_trips".into(), trips),
        ],
    )
    .expect("columns of equal length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use feast_runtime::chrono::TimeZone as _;

    #[test]
    fn is_deterministic_and_shaped() {
        let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let a = driver_stats(3, 4, start);
        let b = driver_stats(3, 4, start);
        assert!(a.equals(&b));
        assert_eq!(a.height(), 12);
        assert_eq!(
            a.get_column_names(),
            [
                "driver_id",
                "event_timestamp",
                "created",
                "conv_rate",
                "acc_rate",
                "avg_daily_trips"
            ]
        );
        let ids: Vec<i64> = a
            .column("driver_id")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(
            ids,
            [
                1001, 1002, 1003, 1001, 1002, 1003, 1001, 1002, 1003, 1001, 1002, 1003
            ]
        );
        let conv = a.column("conv_rate").unwrap().f32().unwrap();
        assert!(conv.iter().flatten().all(|v| (0.0..1.0).contains(&v)));
    }
}
