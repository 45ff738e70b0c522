//! What each instance of a deployment tells the others about its settings,
//! beside its heartbeat, and what it makes of theirs. Two registries, hashes
//! of instance id → "value milliseconds" (the Redis clock), each written and
//! read by one call of `registry.lua` per maintenance round:
//!
//! - `<REDIS_PREFIX>:parsers`, the PARSER. Every instance must use the same:
//!   the adapter relays socketioxide values already encoded by the sending
//!   instance's parser, which an instance on the other parser cannot send
//!   to its clients. A live peer on another parser is logged as an error
//!   naming both (once while it differs).
//! - `<REDIS_PREFIX>:routing`, `on` or `off`: whether the instance routes
//!   room broadcasts (`ROUTED_ROOMS`). A peer that does not (`off`, or a
//!   live parser entry without a routing one: a version before routing)
//!   reads only the namespace channel, and would miss whatever is published
//!   on room channels. So a routed instance publishes room broadcasts on
//!   room channels only while every live peer routes
//!   ([`RoutingSwitch`]); otherwise, and before its first successful check,
//!   on the namespace channel, exactly as an unrouted instance. It reads
//!   room channels either way, so neither switch loses a message. A failed
//!   check changes nothing. What it cannot see coming: an unrouted instance
//!   that starts while the others route is noticed at their next round
//!   (within `HEARTBEAT_INTERVAL_MS`); its users miss their room messages
//!   until then.
//!
//! Instances of earlier versions run their own script on the parsers hash
//! and remove entries of any other form: its values stay "parser ms".

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use fred::prelude::{Client, HashesInterface};
use fred::types::scripts::Script;

use super::PubSub;
use crate::config::PacketParser;
use crate::metrics::metrics;
use crate::store::REDIS_TIMEOUT;

/// The routing registry's value of an instance that routes rooms.
const ROUTES: &str = "on";
/// The routing registry's value of an instance that does not.
const DOES_NOT_ROUTE: &str = "off";
/// Successful checks in a row that must find every live peer routing
/// before room channels are used again, once a peer that did not route was
/// seen: an unrouted instance that restarts (a rolling restart), or that
/// re-registers after a Redis restart emptied the registries, is back
/// within a round.
const CLEAR_CHECKS: u32 = 2;

/// Live peers and their value in one registry.
type Entries = BTreeMap<String, String>;

/// This instance's entries in the deployment's registries, and what it
/// concluded from the others'.
#[derive(Clone)]
pub struct PeerCheck {
    client: Client,
    script: Script,
    /// This instance's id, as its heartbeat names it.
    instance: String,
    /// An entry older than this belongs to an instance that is gone.
    ttl: Duration,
    /// The parser registry's key.
    parsers: String,
    parser: PacketParser,
    /// The routing registry's key.
    routing: String,
    /// With `ROUTED_ROOMS`: the driver whose room broadcasts follow the check.
    routed: Option<PubSub>,
    /// Peers on another parser already reported, so each is logged once
    /// while it differs.
    reported: HashSet<String>,
    switch: RoutingSwitch,
}

impl PeerCheck {
    /// The check for `instance`, which speaks `parser` and does not route
    /// rooms, under `prefix`.
    pub fn new(client: Client, prefix: &str, instance: &str, parser: PacketParser, ttl: Duration) -> Self {
        Self {
            client,
            script: Script::from_lua(include_str!("registry.lua")),
            instance: instance.to_owned(),
            ttl,
            parsers: format!("{prefix}:parsers"),
            parser,
            routing: format!("{prefix}:routing"),
            routed: None,
            reported: HashSet::new(),
            switch: RoutingSwitch::default(),
        }
    }

    /// The same, for an instance that routes rooms through `pubsub`: its
    /// room broadcasts go on room channels while every live peer routes.
    pub fn routing_through(mut self, pubsub: PubSub) -> Self {
        self.routed = Some(pubsub);
        self
    }

    /// Publishes this instance's settings and compares them with the live
    /// peers'. A failed call is logged and leaves the routing as it was.
    pub async fn run(&mut self) {
        // Routing first, as every instance does: a peer whose parser entry
        // is read below wrote its routing entry before, unless it started
        // between these two calls (then it counts as unrouted until
        // CLEAR_CHECKS later checks: the safe side).
        let routes = if self.routed.is_some() { ROUTES } else { DOES_NOT_ROUTE };
        let routing = self.announce(&self.routing, routes).await;
        let parsers = self.announce(&self.parsers, self.parser.as_str()).await;
        match &parsers {
            Ok(parsers) => self.compare_parsers(parsers),
            Err(error) => failed(error, "could not compare PARSER with the other instances"),
        }
        match (parsers, routing) {
            (Ok(parsers), Ok(routing)) => self.follow(unrouted(&parsers, &routing)),
            (_, Err(error)) => failed(&error, "could not read which instances route rooms"),
            (Err(_), Ok(_)) => {}
        }
    }

    /// Writes `value` as this instance's entry in the registry `key`;
    /// returns the other live instances' entries.
    async fn announce(&self, key: &str, value: &str) -> Result<Entries, String> {
        let args = vec![self.instance.clone(), value.to_owned(), self.ttl.as_millis().to_string()];
        let call = self.script.evalsha_with_reload::<Vec<String>, _, _>(&self.client, vec![key], args);
        match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok(flat)) => Ok(flat.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {REDIS_TIMEOUT:?}")),
        }
    }

    /// Logs each peer newly seen on another parser, as an error.
    fn compare_parsers(&mut self, parsers: &Entries) {
        let others: Vec<(&String, &String)> =
            parsers.iter().filter(|(_, parser)| *parser != self.parser.as_str()).collect();
        for (peer, peer_parser) in &others {
            if !self.reported.contains(*peer) {
                tracing::error!(
                    %peer,
                    peer_parser = %peer_parser,
                    parser = %self.parser,
                    "instance {peer} uses PARSER={peer_parser}, this instance PARSER={}: every instance of a \
                     deployment must use the same parser (events relayed between them cannot reach their clients)",
                    self.parser,
                );
            }
        }
        self.reported = others.iter().map(|(peer, _)| (*peer).clone()).collect();
        metrics().set_mismatched_peers(others.len());
    }

    /// Turns room channels on or off after a successful check that found
    /// `unrouted` peers, and says so once per change.
    fn follow(&mut self, unrouted: BTreeSet<String>) {
        metrics().set_unrouted_peers(unrouted.len());
        let Some(pubsub) = &self.routed else { return };
        match self.switch.saw(unrouted) {
            Some(Change::Unrouted(peers)) => {
                pubsub.route_room_broadcasts(false);
                metrics().set_rooms_routed(false);
                // Debug-quoted: ids come from Redis, and may hold anything.
                tracing::warn!(
                    ?peers,
                    "instances that do not route rooms (ROUTED_ROOMS=false, or an earlier version): {peers:?}; \
                     room messages go on the namespace channel until every instance routes"
                );
            }
            Some(Change::On) => {
                pubsub.route_room_broadcasts(true);
                metrics().set_rooms_routed(true);
                tracing::info!("every live instance routes rooms: room messages go on room channels");
            }
            None => {}
        }
    }

    /// Removes this instance's entries, when it leaves the cluster: the
    /// parser's first, so that no peer ever sees it live without routing.
    pub async fn withdraw(&self) {
        for key in [&self.parsers, &self.routing] {
            let removed = tokio::time::timeout(
                REDIS_TIMEOUT,
                self.client.hdel::<i64, _, _>(key, self.instance.as_str()),
            )
            .await;
            if !matches!(removed, Ok(Ok(_))) {
                tracing::debug!(registry = %key, "could not remove this instance's entry; it expires with its heartbeat");
            }
        }
    }
}

/// Logs a failed registry call; the next round retries.
fn failed(error: &str, what: &str) {
    metrics().redis_error();
    tracing::warn!(error, "{what}");
}

/// The live peers that do not route rooms: those whose routing entry says
/// so, and those with a parser entry but no routing entry (an earlier
/// version, which reads only the namespace channel).
fn unrouted(parsers: &Entries, routing: &Entries) -> BTreeSet<String> {
    parsers
        .keys()
        .chain(routing.keys())
        .filter(|peer| routing.get(*peer).is_none_or(|routes| routes != ROUTES))
        .cloned()
        .collect()
}

/// Whether a routed instance publishes room broadcasts on room channels:
/// off at the start; on from the first successful check if it finds every
/// live peer routing; off from any check that finds one that does not, and
/// on again after [`CLEAR_CHECKS`] successful checks in a row found none.
#[derive(Clone, Default)]
struct RoutingSwitch {
    /// The unrouted peers of the last successful check (`None` before it).
    unrouted: Option<BTreeSet<String>>,
    /// Successful checks in a row that found none.
    clear: u32,
    on: bool,
}

/// What a check changed, to be logged.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    /// These peers do not route (a new set): room channels are off.
    Unrouted(BTreeSet<String>),
    /// Every peer routes: room channels are on.
    On,
}

impl RoutingSwitch {
    /// Takes a successful check's unrouted peers.
    fn saw(&mut self, unrouted: BTreeSet<String>) -> Option<Change> {
        let first = self.unrouted.is_none();
        let new = self.unrouted.as_ref() != Some(&unrouted);
        self.unrouted = Some(unrouted.clone());
        if !unrouted.is_empty() {
            self.clear = 0;
            self.on = false;
            return new.then_some(Change::Unrouted(unrouted));
        }
        self.clear = self.clear.saturating_add(1);
        if self.on || (self.clear < CLEAR_CHECKS && !first) {
            return None;
        }
        self.on = true;
        Some(Change::On)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> Entries {
        pairs.iter().map(|(id, value)| ((*id).to_owned(), (*value).to_owned())).collect()
    }

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn a_peer_without_a_routing_entry_or_saying_off_is_unrouted() {
        let parsers = entries(&[("new", "common"), ("off", "common"), ("old", "common")]);
        let routing = entries(&[("new", "on"), ("off", "off"), ("parserless", "off")]);
        assert_eq!(unrouted(&parsers, &routing), set(&["off", "old", "parserless"]));
        assert_eq!(unrouted(&entries(&[]), &entries(&[("leaving", "on")])), set(&[]));
    }

    #[test]
    fn room_channels_turn_on_at_a_clear_first_check() {
        let mut switch = RoutingSwitch::default();
        assert_eq!(switch.saw(set(&[])), Some(Change::On));
        assert_eq!(switch.saw(set(&[])), None, "said once");
        assert!(switch.on);
    }

    #[test]
    fn room_channels_turn_off_at_once_and_on_again_after_two_clear_checks() {
        let mut switch = RoutingSwitch::default();
        assert_eq!(switch.saw(set(&[])), Some(Change::On));
        assert_eq!(switch.saw(set(&["b"])), Some(Change::Unrouted(set(&["b"]))));
        assert!(!switch.on);
        assert_eq!(switch.saw(set(&["b"])), None, "said once per change");
        assert_eq!(switch.saw(set(&["b", "c"])), Some(Change::Unrouted(set(&["b", "c"]))));
        assert_eq!(switch.saw(set(&[])), None, "one clear check is not enough");
        assert_eq!(switch.saw(set(&["c"])), Some(Change::Unrouted(set(&["c"]))), "a clear check in between");
        assert_eq!(switch.saw(set(&[])), None);
        assert_eq!(switch.saw(set(&[])), Some(Change::On));
    }

    #[test]
    fn an_unrouted_peer_at_the_first_check_is_said_at_once() {
        let mut switch = RoutingSwitch::default();
        assert_eq!(switch.saw(set(&["old"])), Some(Change::Unrouted(set(&["old"]))));
        assert_eq!(switch.saw(set(&[])), None);
        assert_eq!(switch.saw(set(&[])), Some(Change::On));
    }
}
