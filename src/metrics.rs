//! Prometheus metrics of this process, served at `/metrics`: sockets,
//! events in and out by name, flood refusals, Redis errors and reconnects,
//! how long broadcasting a message takes, and the packet parser with the
//! signs of a parser mismatch (undecodable packets, peers using another).
//!
//! Metrics describe the process, so there is one registry per process
//! ([`metrics`]), as with any Prometheus client; counting is a relaxed
//! atomic add on paths that already do far more work. Event names come from
//! fixed lists: a client inventing event names cannot grow the output.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::config::PacketParser;

/// Upper bounds of the emit latency buckets, in microseconds.
const LATENCY_BUCKETS_US: &[u64] =
    &[50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];

/// The process's counters.
pub struct Metrics {
    sockets: AtomicI64,
    events_in: EventCounts,
    events_out: EventCounts,
    rate_limited: AtomicU64,
    redis_errors: AtomicU64,
    redis_reconnects: AtomicU64,
    instances_purged: AtomicU64,
    connections_refused: AtomicU64,
    open_files_limit: AtomicU64,
    emit_buckets: Vec<AtomicU64>,
    emit_sum_us: AtomicU64,
    emit_count: AtomicU64,
    /// PARSER, once socket.io is set up.
    parser: Mutex<Option<PacketParser>>,
    undecodable_packets: AtomicU64,
    mismatched_peers: AtomicI64,
}

/// The registry of this process.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let counters = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        Metrics {
            sockets: AtomicI64::new(0),
            events_in: EventCounts::default(),
            events_out: EventCounts::default(),
            rate_limited: AtomicU64::new(0),
            redis_errors: AtomicU64::new(0),
            redis_reconnects: AtomicU64::new(0),
            instances_purged: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            open_files_limit: AtomicU64::new(0),
            emit_buckets: counters(LATENCY_BUCKETS_US.len()),
            emit_sum_us: AtomicU64::new(0),
            emit_count: AtomicU64::new(0),
            parser: Mutex::new(None),
            undecodable_packets: AtomicU64::new(0),
            mismatched_peers: AtomicI64::new(0),
        }
    })
}

/// Writes a metric family's HELP and TYPE lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Gives the event names counted by name, client → server and server →
/// client: the chat's table of events, so the lists cannot drift from it.
/// Anything else, or counted before, is `other`. The first call wins.
pub fn name_events(incoming: &'static [&'static str], outgoing: &'static [&'static str]) {
    metrics().events_in.name(incoming);
    metrics().events_out.name(outgoing);
}

/// Events counted by name (a fixed list: a client inventing event names
/// cannot grow the output), and `other`.
#[derive(Default)]
struct EventCounts {
    named: OnceLock<(&'static [&'static str], Vec<AtomicU64>)>,
    other: AtomicU64,
}

impl EventCounts {
    fn name(&self, names: &'static [&'static str]) {
        let _ = self.named.set((names, names.iter().map(|_| AtomicU64::new(0)).collect()));
    }

    fn count(&self, name: &str) {
        let named =
            self.named.get().and_then(|(names, counts)| counts.get(names.iter().position(|n| *n == name)?));
        named.unwrap_or(&self.other).fetch_add(1, Ordering::Relaxed);
    }

    /// Each name and its count, then `other`.
    fn counts(&self) -> impl Iterator<Item = (&'static str, &AtomicU64)> {
        let named =
            self.named.get().into_iter().flat_map(|(names, counts)| names.iter().copied().zip(counts));
        named.chain([("other", &self.other)])
    }
}

/// Counts one connected socket until dropped (held in the socket's state).
#[derive(Debug)]
pub struct SocketGauge(());

impl SocketGauge {
    /// Counts a socket in.
    pub fn new() -> Self {
        metrics().sockets.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Default for SocketGauge {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SocketGauge {
    fn drop(&mut self) {
        metrics().sockets.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// An event arrived from a client.
    pub fn event_in(&self, name: &str) {
        self.events_in.count(name);
    }

    /// An event was emitted (to one socket or broadcast to a room).
    pub fn event_out(&self, name: &str) {
        self.events_out.count(name);
    }

    /// An event was refused by flood control.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// A Redis call failed or timed out.
    pub fn redis_error(&self) {
        self.redis_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The Redis connection came back.
    pub fn redis_reconnect(&self) {
        self.redis_reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was answered 503: the open-files limit was near.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the open-files limit in force.
    pub fn set_open_files_limit(&self, limit: u64) {
        self.open_files_limit.store(limit, Ordering::Relaxed);
    }

    /// This instance removed a dead instance's sockets from Redis.
    pub fn instance_purged(&self) {
        self.instances_purged.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the packet parser this process's socket.io speaks.
    pub fn set_parser(&self, parser: PacketParser) {
        *self.parser.lock().unwrap_or_else(PoisonError::into_inner) = Some(parser);
    }

    /// The packet parser this process's socket.io speaks, once set up.
    pub fn parser(&self) -> Option<PacketParser> {
        *self.parser.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection was closed because a packet could not be decoded.
    pub fn undecodable_packet(&self) {
        self.undecodable_packets.fetch_add(1, Ordering::Relaxed);
    }

    /// How many live instances of the deployment use another parser.
    pub fn set_mismatched_peers(&self, peers: usize) {
        self.mismatched_peers.store(i64::try_from(peers).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// A message broadcast took `took` (local delivery and the publish).
    pub fn emit_latency(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = LATENCY_BUCKETS_US.iter().position(|bound| us <= *bound) {
            self.emit_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.emit_sum_us.fetch_add(us, Ordering::Relaxed);
        self.emit_count.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the deployment-wide gauges the
    /// caller read from the store (`None` when it could not).
    pub fn render(&self, users_online: Option<usize>, rooms: Option<usize>) -> String {
        let mut out = String::with_capacity(4096);
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        family(&mut out, "chatwire_sockets", "gauge", "Sockets connected to this instance.");
        let _ = writeln!(out, "chatwire_sockets {}", self.sockets.load(Ordering::Relaxed));
        if let Some(users) = users_online {
            family(&mut out, "chatwire_users_online", "gauge", "Logged-in users of the deployment.");
            let _ = writeln!(out, "chatwire_users_online {users}");
        }
        if let Some(rooms) = rooms {
            family(&mut out, "chatwire_rooms", "gauge", "Rooms of the deployment with at least one member.");
            let _ = writeln!(out, "chatwire_rooms {rooms}");
        }
        for (metric, counts, help) in [
            ("chatwire_events_in_total", &self.events_in, "Events received from clients, by name."),
            (
                "chatwire_events_out_total",
                &self.events_out,
                "Events emitted (one per socket or broadcast), by name.",
            ),
        ] {
            family(&mut out, metric, "counter", help);
            for (name, counter) in counts.counts() {
                let _ = writeln!(out, "{metric}{{event=\"{name}\"}} {}", get(counter));
            }
        }
        for (metric, counter, help) in [
            (
                "chatwire_rate_limited_total",
                &self.rate_limited,
                "Events refused by per-socket flood control.",
            ),
            ("chatwire_redis_errors_total", &self.redis_errors, "Redis calls that failed or timed out."),
            (
                "chatwire_redis_reconnects_total",
                &self.redis_reconnects,
                "Times the Redis connection came back.",
            ),
            (
                "chatwire_connections_refused_total",
                &self.connections_refused,
                "Connections answered 503 because the open-files limit was near.",
            ),
            (
                "chatwire_instances_purged_total",
                &self.instances_purged,
                "Dead instances whose sockets this instance removed (closed connections, or no heartbeat).",
            ),
            (
                "chatwire_undecodable_packets_total",
                &self.undecodable_packets,
                "Connections closed on a packet the parser could not decode (most often a client using another PARSER).",
            ),
        ] {
            family(&mut out, metric, "counter", help);
            let _ = writeln!(out, "{metric} {}", get(counter));
        }
        if let Some(parser) = self.parser() {
            family(&mut out, "chatwire_parser_info", "gauge", "The packet parser (PARSER) of this instance.");
            let _ = writeln!(out, "chatwire_parser_info{{parser=\"{parser}\"}} 1");
        }
        family(
            &mut out,
            "chatwire_open_files_limit",
            "gauge",
            "The open-files limit in force (RLIMIT_NOFILE).",
        );
        let _ = writeln!(out, "chatwire_open_files_limit {}", self.open_files_limit.load(Ordering::Relaxed));
        family(
            &mut out,
            "chatwire_parser_mismatched_peers",
            "gauge",
            "Live instances of the deployment whose PARSER differs from this one's.",
        );
        let _ = writeln!(
            out,
            "chatwire_parser_mismatched_peers {}",
            self.mismatched_peers.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "chatwire_emit_seconds",
            "histogram",
            "Time to broadcast a message: local delivery and the publish.",
        );
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS_US.iter().zip(&self.emit_buckets) {
            cumulative += get(bucket);
            let _ =
                writeln!(out, "chatwire_emit_seconds_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
        }
        let count = get(&self.emit_count);
        let _ = writeln!(out, "chatwire_emit_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "chatwire_emit_seconds_sum {}", get(&self.emit_sum_us) as f64 / 1e6);
        let _ = writeln!(out, "chatwire_emit_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_is_prometheus_text() {
        let m = metrics();
        m.event_in("made-up event");
        m.emit_latency(Duration::from_micros(700));
        let text = m.render(Some(3), None);
        assert!(text.contains("# TYPE chatwire_events_in_total counter"));
        assert!(text.contains("chatwire_events_in_total{event=\"other\"}"), "unknown names fold into other");
        assert!(!text.contains("made-up"));
        assert!(text.contains("chatwire_users_online 3"));
        assert!(!text.contains("chatwire_rooms "), "unknown gauges are left out");
        assert!(text.contains("chatwire_emit_seconds_bucket{le=\"+Inf\"}"));
    }

    #[test]
    fn the_parser_and_its_mismatches_are_exposed() {
        let m = metrics();
        m.set_parser(PacketParser::Msgpack);
        m.undecodable_packet();
        m.set_mismatched_peers(2);
        let text = m.render(None, None);
        assert!(text.contains("chatwire_parser_info{parser=\"msgpack\"} 1"), "{text}");
        assert!(text.contains("# TYPE chatwire_undecodable_packets_total counter"));
        assert!(!text.contains("chatwire_undecodable_packets_total 0"), "counted");
        assert!(text.contains("chatwire_parser_mismatched_peers 2"));
    }
}
