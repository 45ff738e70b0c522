//! Room-routed delivery (`ROUTED_ROOMS`): each room broadcast travels on a
//! sharded channel of its own room, read only by the instances with local
//! members of that room, instead of on the namespace channel every instance
//! reads.
//!
//! socketioxide-redis publishes a broadcast once, on the namespace request
//! channel `{prefix}-request#/#`. [`Routing::fan_out`] peeks at that
//! request (msgpack, the packet skipped) and, for a plain broadcast to
//! rooms, queues one copy per room on `{req_chan}{room}#` instead. Those
//! channels hash to different slots, so on a Redis Cluster they spread over
//! the masters. A broadcast to more than [`MAX_ROOMS`] rooms stays on the
//! namespace channel: one copy read by every instance costs less than a
//! copy per room (a large multicast) published and read by several. The
//! receiving adapter accepts any channel that starts with its request
//! channel, so copies are handed to the namespace's stream;
//! an instance subscribed to several of the rooms keeps the first copy
//! ([`Routing::receive`]): the adapter delivers it to the local members
//! of every room it names. Only requests naming more than one room are
//! remembered for that (as a 64-bit hash of sender and request id), and an
//! instance's own requests, which come back on the channels it subscribes,
//! are dropped before the adapter decodes them.
//!
//! Room channels are used only while every live instance reads them: until
//! [`Routing::set_active`] says so (see [`super::peers`]), `fan_out` leaves
//! every request on the namespace channel, as an instance without routing.
//!
//! Which room channels are subscribed follows chatwire's own room
//! membership (`chat::Membership`), through [`Routing::watch`] and
//! [`Routing::unwatch`] ([`super::room_subscriptions`] makes the calls).

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use fred::clients::SubscriberClient;
use serde::Deserialize;
use serde::de::IgnoredAny;
use socketioxide_core::Sid;
use socketioxide_core::adapter::BroadcastOptions;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::room_subscriptions::{self, RoomSubscriptions};

/// How long a request id is remembered, at least (two generations of this).
const SEEN_FOR: Duration = Duration::from_secs(5);
/// Most rooms a broadcast is copied to; above, it stays on the namespace
/// channel (a private message names 2 rooms, a small multicast a few).
const MAX_ROOMS: usize = 8;
/// Request type of a plain broadcast (socketioxide-core's `RequestTypeOut`).
const BROADCAST: u8 = 0;

/// The routing of one namespace's broadcasts. Cheap to share.
pub(super) struct Routing {
    /// The namespace's request channel, `{prefix}-request#/#`.
    req_chan: String,
    /// Rooms every logged-in socket is in: broadcasts to them stay on the
    /// namespace channel (a channel every instance subscribes anyway).
    wide: Vec<String>,
    /// Which room channels are subscribed.
    subscriptions: RoomSubscriptions,
    seen: Mutex<Seen>,
    /// This instance's adapter uid (`node_id` of the requests it publishes),
    /// learnt from the first one: its own requests coming back are dropped.
    own: OnceLock<String>,
    /// Whether room broadcasts go on room channels: only while every live
    /// instance reads them (off at the start).
    active: AtomicBool,
}

/// What to do with a request received on a room channel or the namespace
/// channel.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Received {
    /// Hand it to the adapter.
    New,
    /// Another room's copy of a request already handed over.
    Duplicate,
    /// Published by this instance (which delivered it locally already).
    Own,
}

/// The fields of socketioxide-core's `RequestOut` routing needs; the packet
/// is skipped, not decoded. Positional, as msgpack carries it.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    node_id: &'a str,
    id: Sid,
    r#type: u8,
    _packet: IgnoredAny,
    _rooms: IgnoredAny,
    opts: Option<BroadcastOptions>,
    #[serde(default)]
    _ack_timeout_ms: Option<IgnoredAny>,
}

/// Request ids seen lately, in two generations: an id is remembered for
/// between [`SEEN_FOR`] and twice that.
struct Seen {
    current: HashSet<u64>,
    previous: HashSet<u64>,
    rotated: Instant,
}

impl Routing {
    /// Routing for the namespace whose request channel is `req_chan`;
    /// `wide` are the rooms that stay on it. Starts the subscription task.
    pub(super) fn start(
        client: SubscriberClient,
        req_chan: String,
        wide: Vec<String>,
    ) -> (Self, JoinHandle<()>) {
        let (subscriptions, task) = room_subscriptions::start(client);
        let seen = Seen { current: HashSet::new(), previous: HashSet::new(), rotated: Instant::now() };
        let active = AtomicBool::new(false);
        (Self { req_chan, wide, subscriptions, seen: Mutex::new(seen), own: OnceLock::new(), active }, task)
    }

    /// The channel of `room`.
    pub(super) fn channel(&self, room: &str) -> String {
        format!("{}{room}#", self.req_chan)
    }

    /// True for a room channel of this namespace (not its request channel,
    /// which the adapter subscribes itself, with its own).
    pub(super) fn is_room_channel(&self, channel: &str) -> bool {
        channel.len() > self.req_chan.len() && channel.starts_with(&self.req_chan)
    }

    /// The namespace's request channel, which room channels' messages go to.
    pub(super) fn req_chan(&self) -> &str {
        &self.req_chan
    }

    /// Publishes room broadcasts on room channels (`true`), or leaves them
    /// on the namespace channel (`false`). Room channels stay subscribed.
    pub(super) fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }

    /// Where a publish on `chan` goes: one copy per room channel for a
    /// plain broadcast to rooms while active, else `chan` itself.
    pub(super) fn fan_out(&self, chan: String, val: Vec<u8>) -> Vec<(String, Vec<u8>)> {
        if chan != self.req_chan {
            return vec![(chan, val)];
        }
        let active = self.active.load(Ordering::Relaxed);
        // Inactive, a request is peeked at only until this instance's id is known.
        if !active && self.own.get().is_some() {
            return vec![(chan, val)];
        }
        let peek = rmp_serde::from_slice::<Peek>(&val);
        if let Ok(Peek { node_id, .. }) = &peek
            && self.own.get().is_none()
        {
            let _ = self.own.set((*node_id).to_owned());
        }
        if !active {
            return vec![(chan, val)];
        }
        let rooms = match peek {
            Ok(Peek { r#type: BROADCAST, opts: Some(opts), .. })
                if opts.server_id.is_none()
                    && !opts.rooms.is_empty()
                    && !opts.rooms.iter().any(|room| self.wide.iter().any(|wide| **room == **wide)) =>
            {
                opts.rooms
            }
            Ok(_) => return vec![(chan, val)],
            Err(err) => {
                tracing::warn!(error = %err, "unreadable adapter request: published on the namespace channel");
                return vec![(chan, val)];
            }
        };
        let mut channels: Vec<String> = rooms.iter().map(|room| self.channel(room)).collect();
        channels.sort_unstable();
        channels.dedup();
        if channels.len() > MAX_ROOMS {
            return vec![(chan, val)];
        }
        let Some(last) = channels.pop() else { return vec![(chan, val)] };
        let mut copies: Vec<(String, Vec<u8>)> =
            channels.into_iter().map(|channel| (channel, val.clone())).collect();
        copies.push((last, val));
        copies
    }

    /// Whether a request received on a room channel (`room`) or on the
    /// namespace channel is new, this instance's own, or (on a room channel
    /// only) a copy already received through another room's channel. An
    /// unreadable request is `New`: the adapter logs and drops it.
    pub(super) fn receive(&self, payload: &[u8], room: bool) -> Received {
        let Ok(peek) = rmp_serde::from_slice::<Peek>(payload) else { return Received::New };
        if self.own.get().is_some_and(|own| own == peek.node_id) {
            return Received::Own;
        }
        // A request naming one room travels on one channel: no other copy.
        if !room || peek.opts.is_none_or(|opts| opts.rooms.len() < 2) {
            return Received::New;
        }
        let mut hasher = DefaultHasher::new();
        peek.node_id.hash(&mut hasher);
        peek.id.hash(&mut hasher);
        let key = hasher.finish();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.rotated.elapsed() >= SEEN_FOR {
            seen.previous = std::mem::take(&mut seen.current);
            seen.rotated = Instant::now();
        }
        if seen.previous.contains(&key) || !seen.current.insert(key) {
            return Received::Duplicate;
        }
        Received::New
    }

    /// Subscribes `room`'s channel (unless it is already); the receiver
    /// answers once Redis confirmed it (`true`, at once if it had), or it
    /// failed or cannot be asked now (`false`: it is made by a later pass).
    /// In call order with [`Self::unwatch`]. `None` for a namespace-wide
    /// room, whose broadcasts have no channel.
    pub(super) fn watch(&self, room: &str) -> Option<oneshot::Receiver<bool>> {
        if self.wide.iter().any(|wide| wide == room) {
            return None;
        }
        Some(self.subscriptions.watch(&self.channel(room)))
    }

    /// Unsubscribes `room`'s channel, after every earlier call about it.
    pub(super) fn unwatch(&self, room: &str) {
        self.subscriptions.unwatch(&self.channel(room));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use socketioxide_core::Str;
    use socketioxide_core::Uid;
    use socketioxide_core::adapter::remote_packet::{RequestOut, RequestTypeOut};
    use socketioxide_core::packet::Packet;

    use super::*;

    fn request(rooms: &[&str], server_id: Option<Uid>) -> Vec<u8> {
        let mut opts = BroadcastOptions::default();
        opts.rooms = rooms.iter().map(|room| room.to_string().into()).collect();
        opts.server_id = server_id;
        let packet =
            Packet::event("/", socketioxide_core::Value::Str(Str::from("[\"message\",\"hi\"]"), None));
        rmp_serde::to_vec(&RequestOut::new(Uid::new(), RequestTypeOut::Broadcast(&packet), &opts)).unwrap()
    }

    fn routing() -> Routing {
        let seen = Seen { current: HashSet::new(), previous: HashSet::new(), rotated: Instant::now() };
        Routing {
            req_chan: "p-request#/#".into(),
            wide: vec!["online".into()],
            subscriptions: RoomSubscriptions::unstarted(),
            seen: Mutex::new(seen),
            own: OnceLock::new(),
            active: AtomicBool::new(true),
        }
    }

    #[test]
    fn a_broadcast_to_rooms_goes_once_to_each_room_channel() {
        let copies = routing().fan_out("p-request#/#".into(), request(&["user:a", "user:b"], None));
        let channels: Vec<&str> = copies.iter().map(|(chan, _)| chan.as_str()).collect();
        assert_eq!(channels, ["p-request#/#user:a#", "p-request#/#user:b#"]);
        let twice = routing().fan_out("p-request#/#".into(), request(&["room:x", "room:x"], None));
        assert_eq!(twice.len(), 1, "a room named twice is published once");
    }

    #[test]
    fn a_broadcast_to_many_rooms_stays_on_the_namespace_channel() {
        let rooms: Vec<String> = (0..=MAX_ROOMS).map(|i| format!("user:{i}")).collect();
        let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
        let copies = routing().fan_out("p-request#/#".into(), request(&rooms, None));
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].0, "p-request#/#");
        let copies = routing().fan_out("p-request#/#".into(), request(&rooms[..MAX_ROOMS], None));
        assert_eq!(copies.len(), MAX_ROOMS, "up to the limit, a copy per room");
    }

    #[test]
    fn namespace_wide_and_addressed_requests_keep_their_channel() {
        let routing = routing();
        for (chan, val) in [
            ("p-request#/#", request(&[], None)),
            ("p-request#/#", request(&["online"], None)),
            ("p-request#/#", request(&["room:x"], Some(Uid::new()))),
            ("p-request#/#someuid#", request(&["room:x"], None)),
        ] {
            let copies = routing.fan_out(chan.into(), val);
            assert_eq!(copies.len(), 1);
            assert_eq!(copies[0].0, chan);
        }
    }

    #[test]
    fn while_inactive_every_request_stays_on_the_namespace_channel() {
        let routing = routing();
        routing.set_active(false);
        let copies = routing.fan_out("p-request#/#".into(), request(&["user:a", "user:b"], None));
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].0, "p-request#/#");
        assert_eq!(routing.receive(&copies[0].1, false), Received::Own, "its own requests still known");
        routing.set_active(true);
        assert_eq!(
            routing.fan_out("p-request#/#".into(), request(&["user:a"], None))[0].0,
            "p-request#/#user:a#"
        );
    }

    #[test]
    fn the_second_copy_of_a_request_is_a_duplicate() {
        let from_elsewhere = routing();
        let copies = routing().fan_out("p-request#/#".into(), request(&["user:a", "user:b"], None));
        assert_eq!(from_elsewhere.receive(&copies[0].1, true), Received::New);
        assert_eq!(from_elsewhere.receive(&copies[1].1, true), Received::Duplicate);
        assert_eq!(
            from_elsewhere.receive(&request(&["user:a"], None), true),
            Received::New,
            "another request"
        );
    }

    #[test]
    fn own_requests_are_dropped_and_single_room_ones_not_remembered() {
        let routing = routing();
        let mine = routing.fan_out("p-request#/#".into(), request(&["user:a", "user:b"], None));
        assert_eq!(routing.receive(&mine[0].1, true), Received::Own);
        assert_eq!(routing.receive(&mine[0].1, false), Received::Own, "on the namespace channel too");
        let single = request(&["room:x"], None);
        assert_eq!(routing.receive(&single, true), Received::New);
        assert_eq!(routing.receive(&single, true), Received::New, "one room, one channel: not remembered");
        assert!(routing.seen.lock().unwrap().current.is_empty());
    }
}
