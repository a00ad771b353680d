//! `/metrics` in the Prometheus text format, written by hand: a few
//! counters, gauges and one histogram do not need a metrics framework.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rookery_common::ClientMessage;

use crate::hub::HubStats;

/// Upper bounds of the command latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1,
];

/// Counters the connection tasks update without taking the hub's lock.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per command kind (in [`ClientMessage::KINDS`] order): bucket counts,
    /// then the total count and the sum in nanoseconds.
    latency: Vec<Histogram>,
    pub n_connections_refused_origin: AtomicU64,
    pub n_connections_refused_per_ip: AtomicU64,
    pub n_rate_limited: AtomicU64,
    pub n_floods: AtomicU64,
    pub n_bad_frames: AtomicU64,
    pub n_expired_tokens: AtomicU64,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            latency: ClientMessage::KINDS
                .iter()
                .map(|_| Histogram::default())
                .collect(),
            ..Self::default()
        }
    }

    pub fn observe_command(&self, kind: &str, elapsed: Duration) {
        let Some(index) = ClientMessage::KINDS.iter().position(|k| *k == kind) else {
            return;
        };
        let histogram = &self.latency[index];
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        histogram.count.fetch_add(1, Ordering::Relaxed);
        histogram
            .sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The whole exposition: hub gauges and counters, then these.
    pub fn render(&self, hub: &HubStats, n_sockets: usize) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |value: String| vec![(String::new(), value)];
        metric(
            "rookery_sockets",
            "gauge",
            "Open WebSocket connections.",
            &plain(n_sockets.to_string()),
        );
        metric(
            "rookery_connections",
            "gauge",
            "Connections that completed connect.",
            &plain(hub.n_connections.to_string()),
        );
        metric(
            "rookery_channels",
            "gauge",
            "Channels with subscribers or history.",
            &plain(hub.n_channels.to_string()),
        );
        let per_namespace = |value: &dyn Fn(&crate::hub::NamespaceStats) -> String| {
            hub.namespaces
                .iter()
                .map(|(namespace, stats)| (format!("{{namespace=\"{namespace}\"}}"), value(stats)))
                .collect::<Vec<_>>()
        };
        metric(
            "rookery_subscriptions",
            "gauge",
            "Subscriptions by namespace.",
            &per_namespace(&|s| s.n_subscriptions.to_string()),
        );
        metric(
            "rookery_publications_total",
            "counter",
            "Publications by namespace.",
            &per_namespace(&|s| s.n_publications.to_string()),
        );
        metric(
            "rookery_deliveries_total",
            "counter",
            "Messages queued to subscribers by namespace.",
            &per_namespace(&|s| s.n_deliveries.to_string()),
        );
        metric(
            "rookery_drops_total",
            "counter",
            "Deliveries not queued because the subscriber's queue was full or closing.",
            &per_namespace(&|s| s.n_drops.to_string()),
        );
        metric(
            "rookery_slow_consumer_disconnects_total",
            "counter",
            "Connections closed with 4100 because their outbound queue filled.",
            &plain(hub.n_slow_consumers.to_string()),
        );
        metric(
            "rookery_duplicate_publications_total",
            "counter",
            "Publishes answered from the idempotency window without publishing again.",
            &plain(hub.n_duplicate_publications.to_string()),
        );
        let load = |counter: &AtomicU64| plain(counter.load(Ordering::Relaxed).to_string());
        metric(
            "rookery_refused_origin_total",
            "counter",
            "WebSocket upgrades refused for a foreign Origin.",
            &load(&self.n_connections_refused_origin),
        );
        metric(
            "rookery_refused_per_ip_total",
            "counter",
            "Connections closed with 4101: too many from one address.",
            &load(&self.n_connections_refused_per_ip),
        );
        metric(
            "rookery_rate_limited_total",
            "counter",
            "Publishes refused with 111.",
            &load(&self.n_rate_limited),
        );
        metric(
            "rookery_floods_total",
            "counter",
            "Connections closed with 4102.",
            &load(&self.n_floods),
        );
        metric(
            "rookery_bad_frames_total",
            "counter",
            "Frames answered with an error code or a protocol close.",
            &load(&self.n_bad_frames),
        );
        metric(
            "rookery_expired_tokens_total",
            "counter",
            "Connections closed with 4002.",
            &load(&self.n_expired_tokens),
        );

        let _ = writeln!(
            out,
            "# HELP rookery_command_duration_seconds Time to handle one command.\n\
             # TYPE rookery_command_duration_seconds histogram"
        );
        for (kind, histogram) in ClientMessage::KINDS.iter().zip(&self.latency) {
            let mut cumulative = 0;
            for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&histogram.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "rookery_command_duration_seconds_bucket{{command=\"{kind}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "rookery_command_duration_seconds_bucket{{command=\"{kind}\",le=\"+Inf\"}} {count}\n\
                 rookery_command_duration_seconds_sum{{command=\"{kind}\"}} {sum}\n\
                 rookery_command_duration_seconds_count{{command=\"{kind}\"}} {count}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::new();
        metrics.observe_command("publish", Duration::from_micros(30));
        metrics.observe_command("publish", Duration::from_millis(3));
        metrics.observe_command("publish", Duration::from_secs(1));
        let text = metrics.render(&HubStats::default(), 0);
        assert!(text.contains(
            "rookery_command_duration_seconds_bucket{command=\"publish\",le=\"0.00005\"} 1"
        ));
        assert!(text.contains(
            "rookery_command_duration_seconds_bucket{command=\"publish\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "rookery_command_duration_seconds_bucket{command=\"publish\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("rookery_command_duration_seconds_count{command=\"publish\"} 3"));
    }
}
