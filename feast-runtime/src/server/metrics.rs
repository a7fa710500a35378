//! Request metrics of the feature server, in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

const ROUTES: [&str; 7] = [
    "/get-online-features",
    "/push",
    "/write-to-online-store",
    "/materialize",
    "/materialize-incremental",
    "/health",
    "/metrics",
];

/// The route label of a path: one of the endpoints, or `other` (so that
/// stray paths cannot grow the label set).
pub(crate) fn route_label(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("other")
}

#[derive(Debug, Default, Clone)]
struct RouteStats {
    /// Requests by status code.
    by_status: BTreeMap<u16, u64>,
    seconds_sum: f64,
    /// Requests per bucket of `BUCKETS` (not cumulative), then +Inf.
    buckets: [u64; BUCKETS.len() + 1],
}

/// Counters and latency histograms per route.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<&'static str, RouteStats>>,
}

impl Metrics {
    pub(crate) fn record(&self, route: &'static str, status: u16, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = routes.entry(route).or_default();
        *r.by_status.entry(status).or_default() += 1;
        r.seconds_sum += seconds;
        let b = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        r.buckets[b] += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP feast_http_requests_total Requests served, by route and status.\n# TYPE feast_http_requests_total counter"
        );
        for (route, r) in &routes {
            for (status, n) in &r.by_status {
                let _ = writeln!(
                    out,
                    "feast_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP feast_http_request_duration_seconds Time to answer a request.\n# TYPE feast_http_request_duration_seconds histogram"
        );
        for (route, r) in &routes {
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += r.buckets[i];
                let _ = writeln!(
                    out,
                    "feast_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count: u64 = r.by_status.values().sum();
            let _ = writeln!(
                out,
                "feast_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}\nfeast_http_request_duration_seconds_sum{{route=\"{route}\"}} {:.6}\nfeast_http_request_duration_seconds_count{{route=\"{route}\"}} {count}",
                r.seconds_sum
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_and_status_with_a_histogram() {
        let m = Metrics::default();
        m.record(
            route_label("/get-online-features"),
            200,
            Duration::from_micros(80),
        );
        m.record(
            route_label("/get-online-features"),
            404,
            Duration::from_millis(2),
        );
        m.record(route_label("/nope"), 404, Duration::from_micros(10));
        let text = m.render();
        for line in [
            "feast_http_requests_total{route=\"/get-online-features\",status=\"200\"} 1",
            "feast_http_requests_total{route=\"/get-online-features\",status=\"404\"} 1",
            "feast_http_requests_total{route=\"other\",status=\"404\"} 1",
            "feast_http_request_duration_seconds_bucket{route=\"/get-online-features\",le=\"0.0001\"} 1",
            "feast_http_request_duration_seconds_bucket{route=\"/get-online-features\",le=\"0.001\"} 1",
            "feast_http_request_duration_seconds_bucket{route=\"/get-online-features\",le=\"0.0025\"} 2",
            "feast_http_request_duration_seconds_count{route=\"/get-online-features\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
    }
}
