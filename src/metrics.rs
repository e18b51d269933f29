//! Request counts and latencies per route, rendered with the database pool's
//! state in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// (method, route pattern, status) → latency histogram.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let histogram = requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default();
        histogram.buckets[slot] += 1;
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// The exposition text; `pool` is (open, idle, max) connections,
    /// `hit_backlog` the opens and clicks taken in and not yet applied (when
    /// the hit journal is open).
    pub fn render(&self, pool: (u32, u32, u32), hit_backlog: Option<u64>) -> String {
        let mut out = String::new();
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str(
            "# HELP espbridge_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE espbridge_http_requests_total counter\n");
        for ((method, route, status), h) in requests.iter() {
            let _ = writeln!(
                out,
                "espbridge_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                h.count
            );
        }
        out.push_str(
            "# HELP espbridge_http_request_duration_seconds Time to answer HTTP requests.\n",
        );
        out.push_str("# TYPE espbridge_http_request_duration_seconds histogram\n");
        for ((method, route, status), h) in requests.iter() {
            let labels = format!(
                "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                escape(route)
            );
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(h.buckets.iter()) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "espbridge_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "espbridge_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "espbridge_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "espbridge_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        let (open, idle, max) = pool;
        out.push_str(
            "# HELP espbridge_db_pool_connections Database connections open, idle and allowed.\n",
        );
        out.push_str("# TYPE espbridge_db_pool_connections gauge\n");
        let _ = writeln!(
            out,
            "espbridge_db_pool_connections{{state=\"open\"}} {open}"
        );
        let _ = writeln!(
            out,
            "espbridge_db_pool_connections{{state=\"idle\"}} {idle}"
        );
        let _ = writeln!(
            out,
            "espbridge_db_pool_connections{{state=\"in_use\"}} {}",
            open - idle.min(open)
        );
        let _ = writeln!(out, "espbridge_db_pool_connections{{state=\"max\"}} {max}");
        if let Some(backlog) = hit_backlog {
            out.push_str(
                "# HELP espbridge_hit_journal_backlog Opens and clicks taken in and not yet applied.\n",
            );
            out.push_str("# TYPE espbridge_hit_journal_backlog gauge\n");
            let _ = writeln!(out, "espbridge_hit_journal_backlog {backlog}");
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/healthz", 200, Duration::from_micros(500));
        metrics.observe("GET", "/healthz", 200, Duration::from_millis(30));
        let text = metrics.render((3, 1, 8), Some(4));
        assert!(text.contains(
            "espbridge_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.001\"} 1\n"));
        assert!(text.contains("le=\"0.05\"} 2\n"));
        assert!(text.contains("le=\"+Inf\"} 2\n"));
        assert!(text.contains("espbridge_db_pool_connections{state=\"in_use\"} 2"));
        assert!(text.contains("espbridge_hit_journal_backlog 4\n"));
        assert!(!metrics.render((3, 1, 8), None).contains("hit_journal"));
    }
}
