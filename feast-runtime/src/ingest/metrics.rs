//! Ingestion metrics, served in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds of the batch-duration histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct ShardStats {
    records_in: u64,
    dead_lettered: u64,
    millis_behind_latest: i64,
    last_checkpoint_unix: f64,
    /// Failed Kinesis calls by error code.
    errors: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone)]
struct ViewStats {
    rows_written: u64,
    too_late: u64,
    batches: u64,
    seconds_sum: f64,
    /// Batches per bucket of `BUCKETS` (not cumulative), then one for +Inf.
    buckets: [u64; BUCKETS.len() + 1],
}

/// One worker's shard leases of a stream.
#[derive(Debug, Default, Clone)]
struct LeaseStats {
    held: u64,
    taken: u64,
    stolen: u64,
    lost: u64,
    /// Batches the online store refused for a stale fencing token.
    fenced: u64,
    /// Lease-table calls by operation.
    calls: BTreeMap<&'static str, u64>,
    renewals: u64,
    renew_seconds_sum: f64,
    renew_seconds_max: f64,
}

/// Counters and gauges of one ingestion run.
#[derive(Debug, Default)]
pub struct Metrics {
    shards: Mutex<BTreeMap<(String, String), ShardStats>>,
    views: Mutex<BTreeMap<(String, String), ViewStats>>,
    leases: Mutex<BTreeMap<String, LeaseStats>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A label value with Prometheus' escapes.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts a committed batch of a shard: its records, those dead-lettered, its lag.
    pub fn record_batch(&self, stream: &str, shard: &str, records: u64, dead: u64, behind_ms: i64) {
        let mut s = lock(&self.shards);
        let e = s.entry((stream.to_owned(), shard.to_owned())).or_default();
        e.records_in += records;
        e.dead_lettered += dead;
        e.millis_behind_latest = behind_ms;
    }

    /// Records a shard's lag behind the stream's head.
    pub fn record_lag(&self, stream: &str, shard: &str, behind_ms: i64) {
        lock(&self.shards)
            .entry((stream.to_owned(), shard.to_owned()))
            .or_default()
            .millis_behind_latest = behind_ms;
    }

    /// Counts a failed call of a shard, by error code.
    pub fn record_error(&self, stream: &str, shard: &str, code: &str) {
        *lock(&self.shards)
            .entry((stream.to_owned(), shard.to_owned()))
            .or_default()
            .errors
            .entry(code.to_owned())
            .or_default() += 1;
    }

    /// Records that a shard's checkpoint advanced now.
    pub fn record_checkpoint(&self, stream: &str, shard: &str) {
        let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        lock(&self.shards)
            .entry((stream.to_owned(), shard.to_owned()))
            .or_default()
            .last_checkpoint_unix = now;
    }

    /// A batch of `view` from `shard`: `rows` written, taking `seconds` from
    /// decoding to commit.
    pub fn record_write(&self, view: &str, shard: &str, rows: u64, seconds: f64) {
        let mut v = lock(&self.views);
        let e = v.entry((view.to_owned(), shard.to_owned())).or_default();
        e.rows_written += rows;
        e.batches += 1;
        e.seconds_sum += seconds;
        let bucket = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        e.buckets[bucket] += 1;
    }

    /// Counts events of `view` from `shard` that arrived too late for any
    /// window of the view (committed batches only).
    pub fn record_too_late(&self, view: &str, shard: &str, events: u64) {
        lock(&self.views)
            .entry((view.to_owned(), shard.to_owned()))
            .or_default()
            .too_late += events;
    }

    fn lease_stats<T>(&self, stream: &str, f: impl FnOnce(&mut LeaseStats) -> T) -> T {
        f(lock(&self.leases).entry(stream.to_owned()).or_default())
    }

    /// Sets the number of leases this worker holds on `stream`.
    pub fn record_leases_held(&self, stream: &str, held: usize) {
        self.lease_stats(stream, |l| l.held = held as u64);
    }

    /// Counts a lease taken: free or expired, or stolen from a busier worker.
    pub fn record_lease_taken(&self, stream: &str, stolen: bool) {
        self.lease_stats(stream, |l| {
            l.taken += 1;
            l.stolen += u64::from(stolen);
        });
    }

    /// Counts a lease lost: taken over, or not renewed in time.
    pub fn record_lease_lost(&self, stream: &str) {
        self.lease_stats(stream, |l| l.lost += 1);
    }

    /// Counts a batch the online store refused for a stale fencing token.
    pub fn record_fenced(&self, stream: &str) {
        self.lease_stats(stream, |l| l.fenced += 1);
    }

    /// Counts a call to the lease table.
    pub fn record_lease_call(&self, stream: &str, op: &'static str) {
        self.lease_stats(stream, |l| *l.calls.entry(op).or_default() += 1);
    }

    /// Records how long a successful renewal took.
    pub fn record_renewal(&self, stream: &str, seconds: f64) {
        self.lease_stats(stream, |l| {
            l.renewals += 1;
            l.renew_seconds_sum += seconds;
            l.renew_seconds_max = l.renew_seconds_max.max(seconds);
        });
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

    /// The largest MillisBehindLatest over every shard.
    pub fn max_behind_ms(&self) -> i64 {
        lock(&self.shards)
            .values()
            .map(|s| s.millis_behind_latest)
            .max()
            .unwrap_or(0)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let shards = lock(&self.shards).clone();
        let views = lock(&self.views).clone();
        let leases = lock(&self.leases).clone();
        let mut family = |name: &str, help: &str, kind: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
        let sl = |(stream, shard): &(String, String)| {
            format!("stream=\"{}\",shard=\"{}\"", esc(stream), esc(shard))
        };
        let vl = |(view, shard): &(String, String)| {
            format!("feature_view=\"{}\",shard=\"{}\"", esc(view), esc(shard))
        };
        let per_shard =
            |f: &dyn Fn(&ShardStats) -> String| shards.iter().map(|(k, s)| (sl(k), f(s))).collect();
        family(
            "feast_ingest_records_in_total",
            "Records read from Kinesis and committed.",
            "counter",
            per_shard(&|s| s.records_in.to_string()),
        );
        family(
            "feast_ingest_records_dead_lettered_total",
            "Records sent to the dead-letter sink.",
            "counter",
            per_shard(&|s| s.dead_lettered.to_string()),
        );
        family(
            "feast_ingest_millis_behind_latest",
            "MillisBehindLatest of the shard's last GetRecords.",
            "gauge",
            per_shard(&|s| s.millis_behind_latest.to_string()),
        );
        family(
            "feast_ingest_last_checkpoint_timestamp_seconds",
            "When the shard's checkpoint last advanced.",
            "gauge",
            per_shard(&|s| format!("{:.3}", s.last_checkpoint_unix)),
        );
        family(
            "feast_ingest_kinesis_errors_total",
            "Failed Kinesis calls, by error code.",
            "counter",
            shards
                .iter()
                .flat_map(|(k, s)| {
                    s.errors.iter().map(move |(code, n)| {
                        (format!("{},code=\"{}\"", sl(k), esc(code)), n.to_string())
                    })
                })
                .collect(),
        );
        family(
            "feast_ingest_rows_written_total",
            "Feature rows written to the online store.",
            "counter",
            views
                .iter()
                .map(|(k, v)| (vl(k), v.rows_written.to_string()))
                .collect(),
        );
        family(
            "feast_ingest_events_too_late_total",
            "Events older than every window of an aggregated view when they arrived: dead-lettered for that view, not counted.",
            "counter",
            views
                .iter()
                .filter(|(_, v)| v.too_late > 0)
                .map(|(k, v)| (vl(k), v.too_late.to_string()))
                .collect(),
        );
        if !leases.is_empty() {
            let ll = |stream: &str| format!("stream=\"{}\"", esc(stream));
            let per_stream = |f: &dyn Fn(&LeaseStats) -> String| {
                leases.iter().map(|(k, l)| (ll(k), f(l))).collect()
            };
            family(
                "feast_ingest_leases_held",
                "Shard leases this worker holds.",
                "gauge",
                per_stream(&|l| l.held.to_string()),
            );
            family(
                "feast_ingest_leases_taken_total",
                "Shard leases taken (free, expired or stolen).",
                "counter",
                per_stream(&|l| l.taken.to_string()),
            );
            family(
                "feast_ingest_leases_stolen_total",
                "Shard leases taken from a busier worker to balance.",
                "counter",
                per_stream(&|l| l.stolen.to_string()),
            );
            family(
                "feast_ingest_leases_lost_total",
                "Shard leases lost: taken over, or not renewed in time.",
                "counter",
                per_stream(&|l| l.lost.to_string()),
            );
            family(
                "feast_ingest_fenced_batches_total",
                "Batches the online store refused because a newer lease owner had written the shard.",
                "counter",
                per_stream(&|l| l.fenced.to_string()),
            );
            family(
                "feast_ingest_lease_table_calls_total",
                "Calls to the lease table, by operation.",
                "counter",
                leases
                    .iter()
                    .flat_map(|(k, l)| {
                        l.calls
                            .iter()
                            .map(move |(op, n)| (format!("{},op=\"{op}\"", ll(k)), n.to_string()))
                    })
                    .collect(),
            );
            family(
                "feast_ingest_lease_renew_seconds_sum",
                "Time spent in successful lease renewals.",
                "counter",
                per_stream(&|l| format!("{:.6}", l.renew_seconds_sum)),
            );
            family(
                "feast_ingest_lease_renew_seconds_count",
                "Successful lease renewals.",
                "counter",
                per_stream(&|l| l.renewals.to_string()),
            );
            family(
                "feast_ingest_lease_renew_seconds_max",
                "The slowest successful lease renewal.",
                "gauge",
                per_stream(&|l| format!("{:.6}", l.renew_seconds_max)),
            );
        }
        let mut histogram = Vec::new();
        for (k, v) in &views {
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += v.buckets[i];
                histogram.push((format!("{},le=\"{bound}\"", vl(k)), cumulative.to_string()));
            }
            histogram.push((format!("{},le=\"+Inf\"", vl(k)), v.batches.to_string()));
        }
        // A histogram family: HELP and TYPE name the family, its samples
        // are `_bucket`, `_sum` and `_count`.
        let name = "feast_ingest_batch_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from decoding a batch to committing it.\n# TYPE {name} histogram"
        );
        for (labels, value) in histogram {
            let _ = writeln!(out, "{name}_bucket{{{labels}}} {value}");
        }
        for (k, v) in &views {
            let _ = writeln!(
                out,
                "feast_ingest_batch_duration_seconds_sum{{{}}} {:.6}",
                vl(k),
                v.seconds_sum
            );
            let _ = writeln!(
                out,
                "feast_ingest_batch_duration_seconds_count{{{}}} {}",
                vl(k),
                v.batches
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn renders_counters_gauges_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.record_batch("s", "shardId-0", 10, 1, 250);
        m.record_write("v", "shardId-0", 9, 0.003);
        m.record_write("v", "shardId-0", 4, 0.2);
        m.record_error("s", "shardId-0", "ProvisionedThroughputExceededException");
        let text = m.render();
        for line in [
            "feast_ingest_records_in_total{stream=\"s\",shard=\"shardId-0\"} 10",
            "feast_ingest_records_dead_lettered_total{stream=\"s\",shard=\"shardId-0\"} 1",
            "feast_ingest_millis_behind_latest{stream=\"s\",shard=\"shardId-0\"} 250",
            "feast_ingest_kinesis_errors_total{stream=\"s\",shard=\"shardId-0\",code=\"ProvisionedThroughputExceededException\"} 1",
            "feast_ingest_rows_written_total{feature_view=\"v\",shard=\"shardId-0\"} 13",
            "feast_ingest_batch_duration_seconds_bucket{feature_view=\"v\",shard=\"shardId-0\",le=\"0.0025\"} 0",
            "feast_ingest_batch_duration_seconds_bucket{feature_view=\"v\",shard=\"shardId-0\",le=\"0.005\"} 1",
            "feast_ingest_batch_duration_seconds_bucket{feature_view=\"v\",shard=\"shardId-0\",le=\"0.25\"} 2",
            "feast_ingest_batch_duration_seconds_bucket{feature_view=\"v\",shard=\"shardId-0\",le=\"+Inf\"} 2",
            "feast_ingest_batch_duration_seconds_count{feature_view=\"v\",shard=\"shardId-0\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        // The histogram's HELP and TYPE name its family, not a sample.
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| *l == "# TYPE feast_ingest_batch_duration_seconds histogram")
            .expect("the histogram's TYPE line");
        assert_eq!(
            lines[at - 1],
            "# HELP feast_ingest_batch_duration_seconds Time from decoding a batch to committing it."
        );
        assert!(lines[at + 1].starts_with("feast_ingest_batch_duration_seconds_bucket{"));
        assert!(!text.contains("TYPE feast_ingest_batch_duration_seconds_bucket"));
        assert_eq!(m.totals(), (10, 1));
        assert_eq!(m.rows_written(), 13);
    }
}
