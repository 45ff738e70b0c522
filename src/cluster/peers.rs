//! What each instance of a deployment tells the others about its settings,
//! and what it makes of theirs:
//!
//! - PARSER ([`PeerCheck`]). Every instance must use the same: the adapter
//!   relays socketioxide values already encoded by the sending instance's
//!   parser, which an instance on the other parser cannot send to its
//!   clients. Each maintenance round publishes this instance's parser in
//!   `<REDIS_PREFIX>:parsers` (instance id → "parser milliseconds", the
//!   Redis clock) with `registry.lua`, which answers the live peers'; a
//!   peer on another parser is logged as an error (once while it differs).
//!   Instances of earlier versions run their own script on that hash and
//!   remove entries of any other form: its values stay "parser ms".
//! - ROUTED_ROOMS ([`RoutingSwitch`]). Whether an instance routes room
//!   broadcasts rides its heartbeat: the store's heartbeat script writes
//!   the heartbeat and an `on`/`off` entry in one step, and answers the live
//!   peers (a heartbeat within `INSTANCE_TTL_MS`, as the purger counts
//!   them) without `on`: `ROUTED_ROOMS=false`, or a version whose heartbeat
//!   does not say. Such a peer reads only the namespace channel and would
//!   miss whatever is published on room channels. So a routed instance
//!   publishes room broadcasts on room channels only while every live peer
//!   routes; otherwise, and until its first successful heartbeat, on the
//!   namespace channel, exactly as an unrouted instance. It reads room
//!   channels either way, so an unrouted instance leaving, or a routed one
//!   arriving, loses nothing. What it cannot see coming: an unrouted instance that
//!   starts while the others route is seen at their next heartbeat (within
//!   `HEARTBEAT_INTERVAL_MS`, later if theirs fails), and until then its
//!   users may miss room messages from them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use clap::ValueEnum;
use fred::prelude::{Client, HashesInterface};
use fred::types::scripts::Script;
use tokio::time::Instant;

use super::PubSub;
use crate::config::PacketParser;
use crate::metrics::metrics;
use crate::store::{Heartbeat, REDIS_TIMEOUT};

/// This instance's entry in the deployment's parser registry, and the
/// peers it found on another parser.
#[derive(Clone)]
pub struct PeerCheck {
    /// The command client the registry script runs on.
    client: Client,
    /// `registry.lua`: writes this instance's entry, answers the others'.
    script: Script,
    /// The registry hash, `<REDIS_PREFIX>:parsers`.
    key: String,
    /// This instance's id, as its heartbeat names it.
    instance: String,
    /// The parser this instance speaks, published for the others.
    parser: PacketParser,
    /// An entry older than this belongs to an instance that is gone.
    ttl: Duration,
    /// Peers on another parser already reported, so each is logged once
    /// while it differs.
    reported: HashSet<String>,
}

impl PeerCheck {
    /// The check for `instance`, which speaks `parser`, under `prefix`.
    pub fn new(client: Client, prefix: &str, instance: &str, parser: PacketParser, ttl: Duration) -> Self {
        Self {
            client,
            script: Script::from_lua(include_str!("registry.lua")),
            key: format!("{prefix}:parsers"),
            instance: instance.to_owned(),
            parser,
            ttl,
            reported: HashSet::new(),
        }
    }

    /// Publishes this instance's parser and compares it with the live
    /// peers': a peer newly seen on another parser is logged as an error.
    /// A failed call is logged; the next round retries.
    pub async fn run(&mut self) {
        let args =
            vec![self.instance.clone(), self.parser.as_str().to_owned(), self.ttl.as_millis().to_string()];
        let call = self.script.evalsha_with_reload::<Vec<String>, _, _>(&self.client, vec![&self.key], args);
        let flat = match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok(flat)) => flat,
            Ok(Err(err)) => {
                metrics().redis_error();
                return tracing::warn!(error = %err, "could not compare PARSER with the other instances");
            }
            Err(_) => {
                metrics().redis_error();
                return tracing::warn!(timeout = ?REDIS_TIMEOUT, "could not compare PARSER with the other instances");
            }
        };
        let parsers: BTreeMap<String, String> =
            flat.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
        self.compare(&parsers);
    }

    /// Logs each peer newly seen on another parser, as an error.
    fn compare(&mut self, parsers: &BTreeMap<String, String>) {
        let others: Vec<(&String, &String)> =
            parsers.iter().filter(|(_, parser)| *parser != self.parser.as_str()).collect();
        for (peer, raw) in others.iter().filter(|(peer, _)| !self.reported.contains(*peer)) {
            // Both come from Redis, and may hold anything: the id is
            // Debug-quoted, the parser written out only if it is one.
            let theirs =
                PacketParser::from_str(raw, false).map_or_else(|_| format!("{raw:?}"), |p| p.to_string());
            tracing::error!(
                ?peer,
                "an instance uses PARSER={theirs}, this instance PARSER={}: every instance of a deployment must \
                 use the same parser (events relayed between them cannot reach their clients)",
                self.parser,
            );
        }
        self.reported = others.iter().map(|(peer, _)| (*peer).clone()).collect();
        metrics().set_mismatched_peers(others.len());
    }

    /// Removes this instance's entry, when it leaves the cluster.
    pub async fn withdraw(&self) {
        let removed = tokio::time::timeout(
            REDIS_TIMEOUT,
            self.client.hdel::<i64, _, _>(&self.key, self.instance.as_str()),
        )
        .await;
        if !matches!(removed, Ok(Ok(_))) {
            tracing::debug!("could not remove this instance's PARSER entry; it expires with its heartbeat");
        }
    }
}

/// Whether a routed instance publishes room broadcasts on room channels,
/// following its heartbeats: off at the start; off from any heartbeat that
/// finds a live peer not routing; on from the first that finds none.
///
/// One such heartbeat suffices: it writes this instance's heartbeat and
/// reads everyone's in one atomic step, and every instance writes its
/// routing entry in the same step as its heartbeat, so no instance is live
/// in what it reads without saying whether it routes. What that read can
/// miss is a peer Redis forgot (a restart without persistence, a failover
/// to a replica behind) that has not written its heartbeat again yet. The
/// heartbeat tells: Redis did not know this instance either. Then, if the
/// last heartbeat Redis knew found peers that do not route, they may just
/// not be back: room channels stay off for a heartbeat interval (each peer
/// writes its heartbeat first thing when its connection comes back; rounds
/// can follow each other at once after a reconnect, so the hold is a time,
/// not a count).
pub struct RoutingSwitch {
    /// With `ROUTED_ROOMS`: the driver whose room broadcasts follow the
    /// switch (`None`: only the gauge of unrouted peers is kept).
    routed: Option<PubSub>,
    /// The unrouted peers of the last successful heartbeat (`None` before it).
    unrouted: Option<BTreeSet<String>>,
    /// Whether room broadcasts go on room channels.
    on: bool,
    /// How long room channels stay off after Redis forgot the unrouted
    /// peers (the heartbeat interval).
    hold: Duration,
    /// Until when they stay off, if Redis forgot them.
    held_until: Option<Instant>,
}

/// What a heartbeat changed, to be logged.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    /// These peers do not route (a new set): room channels are off.
    Unrouted(BTreeSet<String>),
    /// Every peer routes: room channels are on.
    On,
}

impl RoutingSwitch {
    /// The switch of an instance that routes rooms through `routed`, or of
    /// one that does not (`None`), heartbeating every `interval`.
    pub fn new(routed: Option<PubSub>, interval: Duration) -> Self {
        Self { routed, unrouted: None, on: false, hold: interval, held_until: None }
    }

    /// Follows a successful heartbeat: turns room channels on or off, and
    /// says so once per change (a failed heartbeat keeps the decision).
    pub fn follow(&mut self, heartbeat: &Heartbeat) {
        let change = self.saw(&heartbeat.unrouted, heartbeat.registered, Instant::now());
        // The driver first, then the gauges: once they say so, it is so.
        if let Some(pubsub) = &self.routed {
            match &change {
                Some(Change::Unrouted(peers)) => {
                    pubsub.route_room_broadcasts(false);
                    // Debug-quoted: ids come from Redis, and may hold anything.
                    tracing::warn!(
                        ?peers,
                        "instances that do not route rooms (ROUTED_ROOMS=false, or an earlier version): \
                         room messages go on the namespace channel until every instance routes"
                    );
                }
                Some(Change::On) => {
                    pubsub.route_room_broadcasts(true);
                    tracing::info!("every live instance routes rooms: room messages go on room channels");
                }
                None => {}
            }
            metrics().set_rooms_routed(self.on);
        }
        metrics().set_unrouted_peers(heartbeat.unrouted.len());
    }

    /// Takes a successful heartbeat's unrouted peers, and whether Redis
    /// knew this instance before it, at `now`.
    fn saw(&mut self, unrouted: &BTreeSet<String>, registered: bool, now: Instant) -> Option<Change> {
        let was_unrouted = self.unrouted.as_ref().is_some_and(|peers| !peers.is_empty());
        let new = self.unrouted.as_ref() != Some(unrouted);
        self.unrouted = Some(unrouted.clone());
        if !unrouted.is_empty() {
            self.on = false;
            self.held_until = None;
            return new.then(|| Change::Unrouted(unrouted.clone()));
        }
        if !registered && was_unrouted {
            self.held_until = Some(now + self.hold);
        }
        if self.on || self.held_until.is_some_and(|until| now < until) {
            return None;
        }
        self.held_until = None;
        self.on = true;
        Some(Change::On)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(5);

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    /// A switch, and heartbeats one interval apart from now.
    fn switch() -> (RoutingSwitch, impl FnMut() -> Instant) {
        let mut at = Instant::now();
        let ticks = move || {
            at += INTERVAL;
            at
        };
        (RoutingSwitch::new(None, INTERVAL), ticks)
    }

    #[test]
    fn room_channels_turn_on_at_a_clear_first_heartbeat() {
        let (mut switch, mut at) = switch();
        assert_eq!(switch.saw(&set(&[]), false, at()), Some(Change::On));
        assert_eq!(switch.saw(&set(&[]), true, at()), None, "said once");
        assert!(switch.on);
    }

    #[test]
    fn room_channels_turn_off_at_once_and_on_again_at_the_next_clear_heartbeat() {
        let (mut switch, mut at) = switch();
        assert_eq!(switch.saw(&set(&[]), false, at()), Some(Change::On));
        assert_eq!(switch.saw(&set(&["b"]), true, at()), Some(Change::Unrouted(set(&["b"]))));
        assert!(!switch.on);
        assert_eq!(switch.saw(&set(&["b"]), true, at()), None, "said once per change");
        assert_eq!(switch.saw(&set(&["b", "c"]), true, at()), Some(Change::Unrouted(set(&["b", "c"]))));
        assert_eq!(switch.saw(&set(&[]), true, at()), Some(Change::On), "one clear heartbeat suffices");
    }

    #[test]
    fn an_unrouted_peer_at_the_first_heartbeat_is_said_at_once() {
        let (mut switch, mut at) = switch();
        assert_eq!(switch.saw(&set(&["old"]), false, at()), Some(Change::Unrouted(set(&["old"]))));
        assert_eq!(switch.saw(&set(&[]), true, at()), Some(Change::On));
    }

    #[test]
    fn after_redis_forgot_everyone_room_channels_stay_off_for_an_interval() {
        let (mut switch, mut at) = switch();
        switch.saw(&set(&[]), false, at());
        switch.saw(&set(&["b"]), true, at());
        // Redis restarted empty: b has not written its heartbeat again yet,
        // and rounds come back to back after the reconnect.
        let forgotten = at();
        assert_eq!(switch.saw(&set(&[]), false, forgotten), None);
        assert_eq!(switch.saw(&set(&[]), true, forgotten + INTERVAL / 10), None);
        assert!(!switch.on, "stays off");
        assert_eq!(switch.saw(&set(&["b"]), true, at()), Some(Change::Unrouted(set(&["b"]))), "b is back");
        // Had b not come back, room channels turn on an interval later.
        let forgotten = at();
        switch.saw(&set(&[]), false, forgotten);
        assert_eq!(switch.saw(&set(&[]), true, forgotten + INTERVAL / 2), None);
        assert_eq!(switch.saw(&set(&[]), true, forgotten + INTERVAL), Some(Change::On));
    }
}
