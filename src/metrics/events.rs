//! Events counted by name: the one part of the metrics that counts by
//! event name. The names are the chat's (its table of events hands them
//! over through [`super::name_events`]), so this module knows none itself.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;

/// One counter per known event name, and one for `other`, exposed as one
/// counter family labelled `event` (every name shown, counted or not).
/// Counting is a search of a short fixed list: no lock, no map, and a
/// client inventing event names cannot grow the output.
#[derive(Debug, Clone)]
pub(super) struct EventCounters {
    /// The family's name, `_total` left to the encoder.
    metric: &'static str,
    help: &'static str,
    /// The known names and their counters, once named (shared by the
    /// clone the registry holds).
    named: Arc<OnceLock<Vec<(&'static str, Counter)>>>,
    /// Everything else, and what was counted before the names were given.
    other: Counter,
}

impl EventCounters {
    pub(super) fn new(metric: &'static str, help: &'static str) -> Self {
        Self { metric, help, named: Arc::default(), other: Counter::default() }
    }

    /// Gives the names counted on their own; the first call wins.
    pub(super) fn name(&self, names: &'static [&'static str]) {
        let _ = self.named.set(names.iter().map(|name| (*name, Counter::default())).collect());
    }

    /// Counts one event called `name`.
    pub(super) fn count(&self, name: &str) {
        let named = self.named.get().into_iter().flatten();
        match named.into_iter().find(|(known, _)| *known == name) {
            Some((_, counter)) => counter.inc(),
            None => self.other.inc(),
        };
    }
}

impl Collector for EventCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(self.metric, self.help, None, MetricType::Counter)?;
        let named = self.named.get().into_iter().flatten().map(|(name, counter)| (*name, counter));
        for (name, counter) in named.chain([("other", &self.other)]) {
            counter.encode(family.encode_family(&[("event", name)])?)?;
        }
        Ok(())
    }
}
