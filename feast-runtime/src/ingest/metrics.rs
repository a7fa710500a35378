//! Ingestion metrics, served in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

#[derive(Debug, Default, Clone)]
struct ShardStats {
    records_in: u64,
    dead_lettered: u64,
    millis_behind_latest: i64,
    last_checkpoint_unix: f64,
}

#[derive(Debug, Default, Clone)]
struct ViewStats {
    rows_written: u64,
    batches: u64,
    batch_seconds_sum: f64,
}

/// Counters and gauges of one ingestion run.
#[derive(Debug, Default)]
pub struct Metrics {
    shards: Mutex<BTreeMap<(String, String), ShardStats>>,
    views: Mutex<BTreeMap<(String, String), ViewStats>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    pub fn record_batch(&self, stream: &str, shard: &str, records: u64, dead: u64, behind_ms: i64) {
        let mut s = lock(&self.shards);
        let e = s.entry((stream.to_owned(), shard.to_owned())).or_default();
        e.records_in += records;
        e.dead_lettered += dead;
        e.millis_behind_latest = behind_ms;
    }

    pub fn record_lag(&self, stream: &str, shard: &str, behind_ms: i64) {
        lock(&self.shards)
            .entry((stream.to_owned(), shard.to_owned()))
            .or_default()
            .millis_behind_latest = behind_ms;
    }

    pub fn record_checkpoint(&self, stream: &str, shard: &str) {
        let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        lock(&self.shards)
            .entry((stream.to_owned(), shard.to_owned()))
            .or_default()
            .last_checkpoint_unix = now;
    }

    pub fn record_write(&self, view: &str, shard: &str, rows: u64, seconds: f64) {
        let mut v = lock(&self.views);
        let e = v.entry((view.to_owned(), shard.to_owned())).or_default();
        e.rows_written += rows;
        e.batches += 1;
        e.batch_seconds_sum += seconds;
    }

    /// Totals: (records in, dead-lettered).
    pub fn totals(&self) -> (u64, u64) {
        lock(&self.shards)
            .values()
            .fold((0, 0), |(a, b), s| (a + s.records_in, b + s.dead_lettered))
    }

    /// Rows written over every view and shard.
    pub fn rows_written(&self) -> u64 {
        lock(&self.views).values().map(|v| v.rows_written).sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let shards = lock(&self.shards).clone();
        let views = lock(&self.views).clone();
        let mut family = |name: &str, help: &str, kind: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
        let sl =
            |(stream, shard): &(String, String)| format!("stream=\"{stream}\",shard=\"{shard}\"");
        let vl =
            |(view, shard): &(String, String)| format!("feature_view=\"{view}\",shard=\"{shard}\"");
        family(
            "feast_ingest_records_in_total",
            "Records read from Kinesis.",
            "counter",
            shards
                .iter()
                .map(|(k, s)| (sl(k), s.records_in.to_string()))
                .collect(),
        );
        family(
            "feast_ingest_records_dead_lettered_total",
            "Records sent to the dead-letter sink.",
            "counter",
            shards
                .iter()
                .map(|(k, s)| (sl(k), s.dead_lettered.to_string()))
                .collect(),
        );
        family(
            "feast_ingest_millis_behind_latest",
            "MillisBehindLatest of the shard's last GetRecords.",
            "gauge",
            shards
                .iter()
                .map(|(k, s)| (sl(k), s.millis_behind_latest.to_string()))
                .collect(),
        );
        family(
            "feast_ingest_last_checkpoint_timestamp_seconds",
            "When the shard's checkpoint last advanced.",
            "gauge",
            shards
                .iter()
                .map(|(k, s)| (sl(k), format!("{:.3}", s.last_checkpoint_unix)))
                .collect(),
        );
        family(
            "feast_ingest_rows_written_total",
            "Feature rows written per view.",
            "counter",
            views
                .iter()
                .map(|(k, v)| (vl(k), v.rows_written.to_string()))
                .collect(),
        );
        family(
            "feast_ingest_batch_seconds_sum",
            "Time spent transforming and writing batches.",
            "counter",
            views
                .iter()
                .map(|(k, v)| (vl(k), format!("{:.6}", v.batch_seconds_sum)))
                .collect(),
        );
        family(
            "feast_ingest_batch_seconds_count",
            "Batches transformed and written.",
            "counter",
            views
                .iter()
                .map(|(k, v)| (vl(k), v.batches.to_string()))
                .collect(),
        );
        out
    }
}
