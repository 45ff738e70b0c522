//! Logging setup: `tracing` with an `EnvFilter` read from `RUST_LOG`, plus
//! one thing read from socketioxide's own instrumentation, whatever
//! `RUST_LOG` says: connections closed on a packet the parser could not
//! decode, the sign of a client using another parser ([`Undecodable`]).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::{FilterFn, filter_fn};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::config::LogFormat;
use crate::metrics::metrics;

/// Filter used when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "info";

/// A client stuck reconnecting with the wrong parser closes a connection a
/// second or so: one warning per minute says so without flooding the log.
const UNDECODABLE_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// Installs the global subscriber. Call once, at startup.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::stdout().is_terminal();
    let output = match format {
        LogFormat::Text => fmt::layer().with_ansi(ansi).boxed(),
        LogFormat::Json => fmt::layer().json().flatten_event(true).with_ansi(ansi).boxed(),
    };
    // Each layer has its own filter, so RUST_LOG=warn still lets the
    // parser-mismatch layer see the one span it needs, and that span does
    // not reach the log output.
    let installed = tracing_subscriber::registry()
        .with(output.with_filter(filter))
        .with(Undecodable::default().with_filter(Undecodable::filter()))
        .try_init();
    if let Err(err) = installed {
        eprintln!("logging was already set up: {err}");
    }
}

/// Counts and reports connections closed on an undecodable packet.
///
/// socketioxide notices a packet its parser cannot decode (a
/// socket.io-msgpack-parser client on a `PARSER=common` server, or a
/// default client on `PARSER=msgpack`), closes the connection and logs it
/// only at DEBUG; socket.io-client then reconnects and fails again, forever.
/// socketioxide offers no hook for it (the connection never reaches a
/// namespace, so no handler of ours runs), and turning its DEBUG output on
/// would format a line for every packet. What it does offer is a span:
/// engine.io's `Socket::close(reason)` is instrumented (INFO, target
/// `engineioxide::socket`, name `close`, field `reason`), and both of
/// socketioxide's decode failures close with `reason = PacketParsingError`.
/// This layer's filter enables exactly that callsite, once per closed
/// connection (already enabled by the default `RUST_LOG=info`), and the
/// layer reads the reason from its fields. A mismatched client fails at its
/// very first packet (the socket.io CONNECT), so this is what it looks like.
/// tests/parser.rs runs the real binary against both kinds of mismatch, and
/// fails if a socketioxide upgrade moves that span.
///
/// The first one is logged at once; the next ones at most once per
/// [`UNDECODABLE_REPORT_INTERVAL`], with how many there were meanwhile.
/// Each is counted in `chatwire_undecodable_packets_total`.
///
/// The warning is an event emitted from inside the layer, which `tracing`
/// delivers through the global subscriber (a thread's scoped subscriber
/// drops events emitted from its own callbacks).
#[derive(Clone)]
pub struct Undecodable(Arc<Throttle>);

impl Default for Undecodable {
    fn default() -> Self {
        Self(Arc::new(Throttle::new(UNDECODABLE_REPORT_INTERVAL)))
    }
}

/// Spaces out a repeated warning, so that an outage does not flood the log:
/// the first is logged at once, the next at most once per interval, each
/// with how many were left out meanwhile.
pub struct Throttle {
    interval: Duration,
    /// When the next warning may be logged (`None`: at once).
    next_report: Mutex<Option<Instant>>,
    /// Occurrences seen since the last warning.
    unreported: AtomicU64,
}

impl Undecodable {
    /// The callsite this layer reads, and nothing else.
    pub fn filter() -> FilterFn<impl Fn(&Metadata<'_>) -> bool> {
        filter_fn(|meta: &Metadata<'_>| {
            meta.is_span() && meta.target() == "engineioxide::socket" && meta.name() == "close"
        })
        .with_max_level_hint(Level::INFO)
    }

    fn closed_on_undecodable_packet(&self) {
        metrics().undecodable_packet();
        let Some(earlier) = self.0.due(Instant::now()) else { return };
        let parser = metrics().parser().map_or("?", |parser| parser.as_str());
        tracing::warn!(
            parser,
            unreported = earlier,
            "a client sent a packet that PARSER={parser} cannot decode, and was disconnected: most likely \
             it uses another parser (every client must use the same parser as the server: \
             socket.io-msgpack-parser needs PARSER=msgpack, socket.io's default parser PARSER=common), \
             or it sent malformed packets"
        );
    }
}

impl Throttle {
    /// At most one warning per `interval` (usable in a `static`).
    pub const fn new(interval: Duration) -> Self {
        Self { interval, next_report: Mutex::new(None), unreported: AtomicU64::new(0) }
    }

    /// Notes one more occurrence. `Some(earlier ones not reported)` if a
    /// warning is due now.
    pub fn due(&self, now: Instant) -> Option<u64> {
        let mut next = self.next_report.lock().unwrap_or_else(PoisonError::into_inner);
        if next.is_some_and(|at| now < at) {
            self.unreported.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *next = Some(now + self.interval);
        Some(self.unreported.swap(0, Ordering::Relaxed))
    }
}

impl<S: Subscriber> Layer<S> for Undecodable {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut reason = ParsingErrorReason(false);
        attrs.record(&mut reason);
        if reason.0 {
            self.closed_on_undecodable_packet();
        }
    }
}

/// Finds `reason = PacketParsingError` among a span's fields.
struct ParsingErrorReason(bool);

impl Visit for ParsingErrorReason {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "reason" {
            self.0 = format!("{value:?}") == "PacketParsingError";
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum Reason {
        PacketParsingError,
        TransportClose,
    }

    #[test]
    fn only_the_close_span_with_a_parsing_error_counts() {
        let layer = Undecodable::default();
        let subscriber =
            tracing_subscriber::registry().with(layer.clone().with_filter(Undecodable::filter()));
        tracing::subscriber::with_default(subscriber, || {
            let _ = tracing::span!(target: "engineioxide::socket", Level::INFO, "close", reason = ?Reason::TransportClose);
            let _ =
                tracing::span!(target: "other", Level::INFO, "close", reason = ?Reason::PacketParsingError);
            let _ = tracing::span!(target: "engineioxide::socket", Level::INFO, "open", reason = ?Reason::PacketParsingError);
            assert!(layer.0.next_report.lock().unwrap().is_none(), "nothing seen yet");
            for _ in 0..3 {
                let _ = tracing::span!(target: "engineioxide::socket", Level::INFO, "close", reason = ?Reason::PacketParsingError);
            }
        });
        assert!(layer.0.next_report.lock().unwrap().is_some(), "the first one was reported");
        assert_eq!(layer.0.unreported.load(Ordering::Relaxed), 2, "the next two wait");
    }

    #[test]
    fn warnings_are_spaced_and_say_how_many_were_not_reported() {
        let throttle = Throttle::new(UNDECODABLE_REPORT_INTERVAL);
        let start = Instant::now();
        assert_eq!(throttle.due(start), Some(0));
        assert_eq!(throttle.due(start + Duration::from_secs(1)), None);
        assert_eq!(throttle.due(start + Duration::from_secs(59)), None);
        assert_eq!(throttle.due(start + UNDECODABLE_REPORT_INTERVAL), Some(2));
        assert_eq!(throttle.due(start + UNDECODABLE_REPORT_INTERVAL * 2), Some(0));
    }

    #[test]
    fn the_layer_enables_no_other_callsite() {
        let subscriber =
            tracing_subscriber::registry().with(Undecodable::default().with_filter(Undecodable::filter()));
        tracing::subscriber::with_default(subscriber, || {
            assert!(!tracing::enabled!(target: "socketioxide::client", Level::DEBUG));
            assert!(!tracing::enabled!(target: "engineioxide::socket", Level::INFO), "events stay off");
            assert!(!tracing::enabled!(target: "chatwire", Level::INFO));
        });
    }
}
