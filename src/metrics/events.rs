//! Events counted by name: the one part of the metrics that knows event
//! names, kept apart for the chat's table of events to feed.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;

/// Client → server events counted by name; anything else is `other`.
pub(super) const EVENTS_IN: &[&str] = &[
    "add user",
    "users",
    "new message",
    "message",
    "history",
    "join",
    "leave",
    "rooms",
    "typing",
    "stop typing",
];

/// Server → client events counted by name; anything else is `other`.
pub(super) const EVENTS_OUT: &[&str] = &[
    "login",
    "user joined",
    "user left",
    "new message",
    "message",
    "typing",
    "stop typing",
    "member joined",
    "member left",
    "users",
    "presence",
    "avatar changed",
    "chat error",
];

/// One counter per known event name, and one for `other`, exposed as one
/// counter family labelled `event` (every name shown, counted or not).
/// Counting is an index into a fixed list: no lock, no map, however many
/// events a socket sends.
#[derive(Debug, Clone)]
pub(super) struct EventCounters {
    /// The family's name, `_total` left to the encoder.
    metric: &'static str,
    help: &'static str,
    names: &'static [&'static str],
    /// `names.len() + 1` counters: the last is `other`.
    counters: Vec<Counter>,
}

impl EventCounters {
    pub(super) fn new(metric: &'static str, help: &'static str, names: &'static [&'static str]) -> Self {
        Self { metric, help, names, counters: (0..=names.len()).map(|_| Counter::default()).collect() }
    }

    /// Counts one event called `name`.
    pub(super) fn count(&self, name: &str) {
        let slot = self.names.iter().position(|known| *known == name).unwrap_or(self.names.len());
        if let Some(counter) = self.counters.get(slot) {
            counter.inc();
        }
    }
}

impl Collector for EventCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(self.metric, self.help, None, MetricType::Counter)?;
        for (slot, counter) in self.counters.iter().enumerate() {
            let name = self.names.get(slot).copied().unwrap_or("other");
            counter.encode(family.encode_family(&[("event", name)])?)?;
        }
        Ok(())
    }
}
