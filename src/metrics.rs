//! Prometheus metrics of this process, served at `/metrics`: sockets,
//! events in and out by name, flood refusals, Redis errors and reconnects,
//! how long broadcasting a message takes, the packet parser with the
//! signs of a parser mismatch (undecodable packets, peers using another),
//! and whether room broadcasts are routed (peers that do not route).
//!
//! The metrics and their text exposition (format 0.0.4) are
//! `prometheus-client`'s, the Prometheus project's own crate. Metrics
//! describe the process, so there is one registry per process
//! ([`metrics`]), as with any Prometheus client; counting is a relaxed
//! atomic add on paths that already do far more work (the emit histogram
//! takes a short lock, once per broadcast). Event names come from fixed
//! lists (`events`, the one part that knows event names): a client
//! inventing event names cannot grow the output.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

mod events;

use self::events::EventCounters;
use crate::config::PacketParser;

/// Upper bounds of the emit latency buckets, in microseconds.
const LATENCY_BUCKETS_US: &[u64] =
    &[50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];

/// The process's metrics, and the registry that exposes them.
pub struct Metrics {
    /// Every family always shown, registered once.
    registry: Registry,
    sockets: Gauge,
    events_in: EventCounters,
    events_out: EventCounters,
    rate_limited: Counter,
    redis_errors: Counter,
    redis_reconnects: Counter,
    instances_purged: Counter,
    connections_refused: Counter,
    undecodable_packets: Counter,
    tls_reload_failures: Counter,
    open_files_limit: Gauge,
    mismatched_peers: Gauge,
    /// 1 while room broadcasts go on room channels (`ROUTED_ROOMS`).
    rooms_routed: Gauge,
    /// Live peers that do not route rooms, as the last heartbeat found them.
    unrouted_peers: Gauge,
    emit_seconds: Histogram,
    /// Bytes (channel and payload) read from Redis pub/sub, by `kind`:
    /// `room` (routed room channels), `namespace`, `response`.
    pubsub_bytes: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// `pubsub_bytes`' counters of [`PUBSUB_KINDS`], each looked up once
    /// (at its first message, so that no kind is listed before it counts):
    /// not a label vector built and hashed per message.
    pubsub_kinds: [OnceLock<Counter>; 3],
    /// Second copies of a routed broadcast (one per room channel) dropped.
    pubsub_duplicates: Counter,
    /// Broadcasts that reached only this instance's clients.
    pubsub_unpublished: Counter,
    /// Room channels wanted (`ROUTED_ROOMS`), by state: `confirmed` by
    /// Redis, or `pending` (in flight, failed, or Redis down).
    room_channels: Family<Vec<(&'static str, &'static str)>, Gauge>,
    /// `room_channels`' two gauges, looked up once.
    room_channels_confirmed: Gauge,
    room_channels_pending: Gauge,
    /// PARSER, once socket.io is set up.
    parser: Mutex<Option<PacketParser>>,
}

/// The kinds of pub/sub channel `chatwire_pubsub_received_bytes_total`
/// counts by.
const PUBSUB_KINDS: [&str; 3] = ["room", "namespace", "response"];

/// The registry of this process.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Gives the event names counted by name, client → server and server →
/// client: the chat's table of events, so the lists cannot drift from it.
/// Anything else, or counted before, is `other`. The first call wins.
pub fn name_events(incoming: &'static [&'static str], outgoing: &'static [&'static str]) {
    metrics().events_in.name(incoming);
    metrics().events_out.name(outgoing);
}

impl Metrics {
    fn new() -> Self {
        let seconds = LATENCY_BUCKETS_US.iter().map(|us| *us as f64 / 1e6);
        let metrics = Self {
            registry: Registry::default(),
            sockets: Gauge::default(),
            events_in: EventCounters::new("chatwire_events_in", "Events received from clients, by name."),
            events_out: EventCounters::new(
                "chatwire_events_out",
                "Events emitted (one per socket or broadcast), by name.",
            ),
            rate_limited: Counter::default(),
            redis_errors: Counter::default(),
            redis_reconnects: Counter::default(),
            instances_purged: Counter::default(),
            connections_refused: Counter::default(),
            undecodable_packets: Counter::default(),
            tls_reload_failures: Counter::default(),
            open_files_limit: Gauge::default(),
            mismatched_peers: Gauge::default(),
            rooms_routed: Gauge::default(),
            unrouted_peers: Gauge::default(),
            emit_seconds: Histogram::new(seconds),
            pubsub_bytes: Family::default(),
            pubsub_kinds: Default::default(),
            pubsub_duplicates: Counter::default(),
            pubsub_unpublished: Counter::default(),
            room_channels: Family::default(),
            room_channels_confirmed: Gauge::default(),
            room_channels_pending: Gauge::default(),
            parser: Mutex::new(None),
        };
        metrics.registered()
    }

    /// Registers every family always shown. Help texts have no final
    /// period: the registry adds it.
    fn registered(mut self) -> Self {
        self.room_channels_confirmed =
            self.room_channels.get_or_create(&vec![("state", "confirmed")]).clone();
        self.room_channels_pending = self.room_channels.get_or_create(&vec![("state", "pending")]).clone();
        let r = &mut self.registry;
        r.register("chatwire_sockets", "Sockets connected to this instance", self.sockets.clone());
        r.register_collector(Box::new(self.events_in.clone()));
        r.register_collector(Box::new(self.events_out.clone()));
        let by_kind =
            "Bytes read from Redis pub/sub (channel and payload), by kind: room, namespace, response";
        r.register("chatwire_pubsub_received_bytes", by_kind, self.pubsub_bytes.clone());
        for (name, counter, help) in [
            ("chatwire_rate_limited", &self.rate_limited, "Events refused by per-socket flood control"),
            ("chatwire_redis_errors", &self.redis_errors, "Redis calls that failed or timed out"),
            ("chatwire_redis_reconnects", &self.redis_reconnects, "Times the Redis connection came back"),
            (
                "chatwire_connections_refused",
                &self.connections_refused,
                "Connections answered 503 because the open-files limit was near",
            ),
            (
                "chatwire_instances_purged",
                &self.instances_purged,
                "Dead instances whose sockets this instance removed (closed connections, or no heartbeat)",
            ),
            (
                "chatwire_undecodable_packets",
                &self.undecodable_packets,
                "Connections closed on a packet the parser could not decode (most often a client using another PARSER)",
            ),
            (
                "chatwire_tls_reload_failures",
                &self.tls_reload_failures,
                "Changes of TLS_CERT / TLS_KEY that could not be loaded (the previous certificate stays in use)",
            ),
            (
                "chatwire_pubsub_duplicates_dropped",
                &self.pubsub_duplicates,
                "Copies of a room-routed broadcast dropped because another room's copy already arrived",
            ),
            (
                "chatwire_pubsub_unpublished",
                &self.pubsub_unpublished,
                "Publishes for other instances that did not reach Redis (unreachable, queue full, or the publish \
                 failed; a room-routed broadcast counts once per room): they reached this instance's clients only",
            ),
        ] {
            r.register(name, help, counter.clone());
        }
        r.register(
            "chatwire_room_channels",
            "Room channels this process subscribes (ROUTED_ROOMS), by state: confirmed by Redis, or pending \
             (in flight, failed and to be retried, or Redis unreachable)",
            self.room_channels.clone(),
        );
        r.register(
            "chatwire_open_files_limit",
            "The open-files limit in force (RLIMIT_NOFILE)",
            self.open_files_limit.clone(),
        );
        for (name, gauge, help) in [
            (
                "chatwire_parser_mismatched_peers",
                &self.mismatched_peers,
                "Live instances of the deployment whose PARSER differs from this one's",
            ),
            (
                "chatwire_routed_rooms_active",
                &self.rooms_routed,
                "1 while this instance publishes room broadcasts on room channels (ROUTED_ROOMS, and every live instance routes)",
            ),
            (
                "chatwire_unrouted_peers",
                &self.unrouted_peers,
                "Live instances of the deployment that do not route rooms (ROUTED_ROOMS=false, or an earlier version), at this instance's last heartbeat",
            ),
        ] {
            r.register(name, help, gauge.clone());
        }
        r.register(
            "chatwire_emit_seconds",
            "Time to broadcast a message: local delivery and the publish",
            self.emit_seconds.clone(),
        );
        self
    }
}

/// Counts one connected socket until dropped (held in the socket's state).
#[derive(Debug)]
pub struct SocketGauge(());

impl SocketGauge {
    /// Counts a socket in.
    pub fn new() -> Self {
        metrics().sockets.inc();
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
        metrics().sockets.dec();
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
        self.rate_limited.inc();
    }

    /// A Redis call failed or timed out.
    pub fn redis_error(&self) {
        self.redis_errors.inc();
    }

    /// The Redis connection came back.
    pub fn redis_reconnect(&self) {
        self.redis_reconnects.inc();
    }

    /// A connection was answered 503: the open-files limit was near.
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// Records the open-files limit in force.
    pub fn set_open_files_limit(&self, limit: u64) {
        self.open_files_limit.set(i64::try_from(limit).unwrap_or(i64::MAX));
    }

    /// This instance removed a dead instance's sockets from Redis.
    pub fn instance_purged(&self) {
        self.instances_purged.inc();
    }

    /// Records the packet parser this process's socket.io speaks.
    pub fn set_parser(&self, parser: PacketParser) {
        *self.parser.lock().unwrap_or_else(PoisonError::into_inner) = Some(parser);
    }

    /// The packet parser this process's socket.io speaks, once set up.
    pub fn parser(&self) -> Option<PacketParser> {
        *self.parser.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `bytes` read from Redis pub/sub on a channel of `kind`.
    pub fn pubsub_received(&self, kind: &'static str, bytes: usize) {
        let Some(index) = PUBSUB_KINDS.iter().position(|known| *known == kind) else {
            self.pubsub_bytes.get_or_create(&vec![("kind", kind)]).inc_by(bytes as u64);
            return;
        };
        let counter = self.pubsub_kinds[index]
            .get_or_init(|| self.pubsub_bytes.get_or_create(&vec![("kind", kind)]).clone());
        counter.inc_by(bytes as u64);
    }

    /// Counts a routed broadcast's copy dropped as already seen.
    pub fn pubsub_duplicate(&self) {
        self.pubsub_duplicates.inc();
    }

    /// Publishes for other instances (a room-routed broadcast makes one
    /// per room) that did not reach Redis.
    pub fn pubsub_unpublished(&self, copies: u64) {
        self.pubsub_unpublished.inc_by(copies);
    }

    /// Room channels became (or stopped being) confirmed or pending.
    pub fn room_channels(&self, confirmed: i64, pending: i64) {
        self.room_channels_confirmed.inc_by(confirmed);
        self.room_channels_pending.inc_by(pending);
    }

    /// Changed certificate files could not be loaded (the old pair stays).
    pub fn tls_reload_failed(&self) {
        self.tls_reload_failures.inc();
    }

    /// A connection was closed because a packet could not be decoded.
    pub fn undecodable_packet(&self) {
        self.undecodable_packets.inc();
    }

    /// How many live instances of the deployment use another parser.
    pub fn set_mismatched_peers(&self, peers: usize) {
        self.mismatched_peers.set(i64::try_from(peers).unwrap_or(i64::MAX));
    }

    /// Whether room broadcasts go on room channels now.
    pub fn set_rooms_routed(&self, on: bool) {
        self.rooms_routed.set(i64::from(on));
    }

    /// How many live instances of the deployment do not route rooms, as
    /// this instance's last successful heartbeat found them.
    pub fn set_unrouted_peers(&self, peers: usize) {
        self.unrouted_peers.set(i64::try_from(peers).unwrap_or(i64::MAX));
    }

    /// A message broadcast took `took` (local delivery and the publish),
    /// counted in whole microseconds as the bucket bounds are.
    pub fn emit_latency(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.emit_seconds.observe(us as f64 / 1e6);
    }

    /// The Prometheus text exposition, with the deployment-wide gauges the
    /// caller read from the store (left out when `None`: it could not).
    pub fn render(&self, users_online: Option<usize>, rooms: Option<usize>) -> String {
        // What is known only now: the store's gauges and the parser.
        let mut now = Registry::default();
        let gauge = |value: usize| {
            let gauge: Gauge = Gauge::default();
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
            gauge
        };
        if let Some(users) = users_online {
            now.register("chatwire_users_online", "Logged-in users of the deployment", gauge(users));
        }
        if let Some(rooms) = rooms {
            now.register("chatwire_rooms", "Rooms of the deployment with at least one member", gauge(rooms));
        }
        if let Some(parser) = self.parser() {
            let info = Info::new([("parser", parser.as_str())]);
            now.register("chatwire_parser", "The packet parser (PARSER) of this instance", info);
        }
        let mut out = String::with_capacity(4096);
        for registry in [&self.registry, &now] {
            // Writing to a String cannot fail.
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
        }
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
        assert!(text.contains("# TYPE chatwire_room_channels gauge"));
        for state in ["confirmed", "pending"] {
            assert!(
                text.contains(&format!("chatwire_room_channels{{state=\"{state}\"}}")),
                "{state} shown from the start"
            );
        }
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

    #[test]
    fn routed_rooms_and_unrouted_peers_are_exposed() {
        let m = metrics();
        m.set_rooms_routed(true);
        m.set_unrouted_peers(3);
        let text = m.render(None, None);
        assert!(text.contains("# TYPE chatwire_routed_rooms_active gauge"), "{text}");
        assert!(text.contains("chatwire_routed_rooms_active 1"), "{text}");
        assert!(text.contains("chatwire_unrouted_peers 3"), "{text}");
    }
}
