//! What the worker counts, served at `/metrics` in Prometheus' text format.
//!
//! Labels are bounded sets only: channel and destination names come from
//! the config, outcomes and reasons from fixed lists. Nothing from a job or
//! an error message becomes a label, so no secret or alert text can leak
//! into a time series and no job can blow up cardinality.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub channel: String,
    pub destination: String,
    /// `delivered`, `retried`, `dead`, or `duplicate` (already sent).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabels {
    /// A configured source's name, or `unknown`.
    pub source: String,
    /// `accepted`, `unauthorized`, `too_large`, `unreadable`, `invalid`,
    /// `unavailable` (the broker did not confirm), `unknown_source`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLabels {
    pub stage: &'static str,
    /// `malformed`, `invalid`, `unknown_destination`, or
    /// `permanent_<reason>` / `exhausted_<reason>` for deliveries.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RenderLabels {
    /// `rendered` or `failed` (the alert went out with the link only).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    pub destination: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChainLabels {
    /// `started`, `joined` (a firing job for a group whose chain runs),
    /// `stopped` (acknowledged or resolved), `postponed` (silenced),
    /// `finished`, `resolved`.
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabels {
    /// `acknowledge`, `resolve`, `silence`, `unsilence`.
    pub signal: &'static str,
    /// `changed`, `unchanged`, `unknown_group`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    /// `job`, or the destination whose default suppression held it back.
    pub scope: String,
}

fn latency_histogram() -> Histogram {
    // 5 ms … ~41 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Every series the worker exports.
pub struct Metrics {
    registry: Registry,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub delivery_seconds: Family<ChannelLabels, Histogram, fn() -> Histogram>,
    pub retries: Family<DestinationLabels, Counter>,
    pub rate_limited: Family<DestinationLabels, Counter>,
    /// Bodies posted to `/ingest/<source>`, by source and outcome.
    pub ingest_bodies: Family<IngestLabels, Counter>,
    /// Alerts read from accepted bodies, by source.
    pub ingest_alerts: Family<SourceLabels, Counter>,
    /// Jobs made durable from them, by source.
    pub ingest_jobs: Family<SourceLabels, Counter>,
    /// From a body's arrival to its answer, by source.
    pub ingest_seconds: Family<SourceLabels, Histogram, fn() -> Histogram>,
    pub dead_letters: Family<DeadLabels, Counter>,
    pub renders: Family<RenderLabels, Counter>,
    pub render_seconds: Histogram,
    pub in_flight: Gauge,
    pub expired: Counter,
    pub connected: Gauge,
    pub chains: Family<ChainLabels, Counter>,
    pub signals: Family<SignalLabels, Counter>,
    pub suppressed: Family<ScopeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("fanout");
        let deliveries = Family::default();
        registry.register(
            "deliveries",
            "Deliveries by channel, destination and outcome",
            deliveries.clone(),
        );
        let delivery_seconds =
            Family::<ChannelLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "delivery_seconds",
            "Time from enqueue to a delivery's outcome",
            delivery_seconds.clone(),
        );
        let retries = Family::default();
        registry.register(
            "retries",
            "Deliveries parked in the delay tiers for another attempt",
            retries.clone(),
        );
        let rate_limited = Family::default();
        registry.register(
            "rate_limited",
            "Deliveries parked to keep a destination's rate limit",
            rate_limited.clone(),
        );
        let ingest_bodies = Family::default();
        registry.register(
            "ingest_bodies",
            "Bodies posted to /ingest/<source>, by source and outcome",
            ingest_bodies.clone(),
        );
        let ingest_alerts = Family::default();
        registry.register(
            "ingest_alerts",
            "Alerts read from accepted ingest bodies",
            ingest_alerts.clone(),
        );
        let ingest_jobs = Family::default();
        registry.register(
            "ingest_jobs",
            "Jobs made durable from ingested alerts",
            ingest_jobs.clone(),
        );
        let ingest_seconds =
            Family::<SourceLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "ingest_seconds",
            "From an ingest body's arrival to its answer",
            ingest_seconds.clone(),
        );
        let dead_letters = Family::default();
        registry.register(
            "dead_letters",
            "Messages put on the dead-letter queue, by stage and reason",
            dead_letters.clone(),
        );
        let renders = Family::default();
        registry.register("renders", "Charts rendered or failed", renders.clone());
        let render_seconds = latency_histogram();
        registry.register(
            "render_seconds",
            "Time to render and store one job's charts",
            render_seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight",
            "Messages being worked on now",
            in_flight.clone(),
        );
        let expired = Counter::default();
        registry.register(
            "expired_jobs",
            "Celery jobs dropped because their `expires` had passed",
            expired.clone(),
        );
        let connected = Gauge::default();
        registry.register(
            "broker_connected",
            "1 while connected to the broker and consuming",
            connected.clone(),
        );
        let chains = Family::default();
        registry.register(
            "chain_events",
            "Escalation chains started, joined, stopped, postponed, finished, resolved",
            chains.clone(),
        );
        let signals = Family::default();
        registry.register(
            "signals",
            "Signals applied to alert groups, by signal and outcome",
            signals.clone(),
        );
        let suppressed = Family::default();
        registry.register(
            "suppressed",
            "Jobs or deliveries held back as repeats within a suppression window",
            suppressed.clone(),
        );
        Self {
            registry,
            deliveries,
            delivery_seconds,
            retries,
            rate_limited,
            ingest_bodies,
            ingest_alerts,
            ingest_jobs,
            ingest_seconds,
            dead_letters,
            renders,
            render_seconds,
            in_flight,
            expired,
            connected,
            chains,
            signals,
            suppressed,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn delivery(&self, channel: &str, destination: &str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                channel: channel.to_string(),
                destination: destination.to_string(),
                outcome,
            })
            .inc();
    }

    pub fn chain(&self, event: &'static str) {
        self.chains.get_or_create(&ChainLabels { event }).inc();
    }

    pub fn dead(&self, stage: &'static str, reason: impl Into<String>) {
        self.dead_letters
            .get_or_create(&DeadLabels {
                stage,
                reason: reason.into(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_series() {
        let m = Metrics::default();
        m.delivery("email", "ops-mail", "delivered");
        m.dead("decode", "malformed");
        m.in_flight.inc();
        let text = m.encode();
        for line in [
            "fanout_deliveries_total{channel=\"email\",destination=\"ops-mail\",outcome=\"delivered\"} 1",
            "fanout_dead_letters_total{stage=\"decode\",reason=\"malformed\"} 1",
            "fanout_in_flight 1",
            "# TYPE fanout_render_seconds histogram",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
