//! [`Membership`]: how many of this instance's sockets are in each room, so
//! that with `ROUTED_ROOMS` the instance listens to a room's channel exactly
//! while it has members there.
//!
//! socketioxide has no hook for joins and leaves, so chatwire counts at its
//! own call sites: the login (`online`, `user:<key>`), `join` / `leave`, and
//! the disconnect handler (which still sees the socket's rooms). The first
//! local member subscribes the room's channel, and its join is answered once
//! Redis confirmed (bounded by [`CONFIRM`]); the last one leaving
//! unsubscribes after [`LINGER`], unless someone joined again meanwhile.
//! In memory mode, and with routing off, nothing is counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// Longest a join waits for its room's subscription. Past it, the join goes
/// on: the channel stays wanted and is subscribed when Redis answers;
/// meanwhile messages from other instances to that room do not arrive here.
pub const CONFIRM: Duration = Duration::from_secs(2);
/// How long a room's channel stays subscribed after its last local member
/// left: a user who leaves and comes back (a reload, a reconnect) finds it
/// subscribed, and messages in flight still land.
pub const LINGER: Duration = Duration::from_secs(10);

/// Subscribes and unsubscribes rooms' channels (the cluster's pub/sub).
pub trait RoomChannels: Send + Sync + 'static {
    /// Subscribes `room`'s channel, in call order with [`Self::unwatch`];
    /// the receiver answers whether Redis confirmed it (at once when it
    /// already had). Never waits.
    fn watch(&self, room: &str) -> Option<oneshot::Receiver<bool>>;
    /// Unsubscribes `room`'s channel, after every earlier call.
    fn unwatch(&self, room: &str);
}

/// Local room membership, counted only when rooms are routed. Cheap to clone.
#[derive(Clone, Default)]
pub struct Membership(Option<Arc<Counted>>);

struct Counted {
    channels: Arc<dyn RoomChannels>,
    rooms: Mutex<HashMap<String, Count>>,
}

/// One room's local members, since when it is empty, and whether a linger
/// is waiting on it (at most one per room, however often it empties).
#[derive(Default)]
struct Count {
    sockets: usize,
    empty_since: Option<Instant>,
    lingering: bool,
}

impl Membership {
    /// Counts members and (un)subscribes rooms' channels through `channels`.
    pub fn routed(channels: Arc<dyn RoomChannels>) -> Self {
        Self(Some(Arc::new(Counted { channels, rooms: Mutex::default() })))
    }

    /// One socket enters `rooms` (rooms it was not in). Returns once every
    /// room's channel is subscribed, or [`CONFIRM`] passed (once for all of
    /// them: a login enters two rooms, and waits no longer than a join).
    pub async fn enter(&self, rooms: impl IntoIterator<Item = String>) {
        let Some(counted) = &self.0 else { return };
        let mut confirmations = Vec::new();
        {
            let mut counts = counted.rooms.lock().unwrap_or_else(PoisonError::into_inner);
            for room in rooms {
                let count = counts.entry(room.clone()).or_default();
                count.sockets += 1;
                count.empty_since = None;
                // Asked at every entry, not only the first: a confirmed
                // channel answers at once, and a second member also waits
                // for a subscription still in flight.
                if let Some(confirmation) = counted.channels.watch(&room) {
                    confirmations.push((room, confirmation));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + CONFIRM;
        for (room, confirmation) in confirmations {
            match tokio::time::timeout_at(deadline, confirmation).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false) | Err(_)) => tracing::warn!(
                    room,
                    "room channel not subscribed (Redis unreachable?): other instances' messages to it arrive once it is"
                ),
                Err(_) => tracing::warn!(room, "room subscription not confirmed in time; going on"),
            }
        }
    }

    /// One socket leaves `rooms` (rooms it was in). A room left empty is
    /// unsubscribed after [`LINGER`] if still empty.
    pub fn leave(&self, rooms: impl IntoIterator<Item = String>) {
        let Some(counted) = &self.0 else { return };
        let mut counts = counted.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        for room in rooms {
            let Some(count) = counts.get_mut(&room) else { continue };
            count.sockets = count.sockets.saturating_sub(1);
            if count.sockets == 0 {
                count.empty_since = Some(Instant::now());
                if !count.lingering {
                    count.lingering = true;
                    tokio::spawn(unwatch_later(counted.clone(), room));
                }
            }
        }
    }

    /// True when rooms are routed (and members counted).
    pub fn is_counted(&self) -> bool {
        self.0.is_some()
    }

    /// Local members of `room` (0 when not counted).
    #[cfg(test)]
    pub fn members(&self, room: &str) -> usize {
        let Some(counted) = &self.0 else { return 0 };
        let counts = counted.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(room).map_or(0, |count| count.sockets)
    }
}

/// Unsubscribes `room` once it has been empty for [`LINGER`] without a
/// break; gives up if someone is in it. Decided and asked under the lock,
/// so a join's subscribe cannot slip in between and be undone. One per
/// room at a time: a join/leave loop re-arms it instead of adding tasks.
async fn unwatch_later(counted: Arc<Counted>, room: String) {
    let mut wait = LINGER;
    loop {
        tokio::time::sleep(wait).await;
        let mut counts = counted.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(count) = counts.get_mut(&room) else { return };
        let Some(since) = count.empty_since.filter(|_| count.sockets == 0) else {
            count.lingering = false;
            return;
        };
        match LINGER.checked_sub(since.elapsed()).filter(|left| !left.is_zero()) {
            Some(left) => wait = left,
            None => {
                counts.remove(&room);
                counted.channels.unwatch(&room);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    /// Records the calls, and confirms every watch.
    #[derive(Default)]
    struct Calls(Mutex<Vec<String>>);

    impl RoomChannels for Calls {
        fn watch(&self, room: &str) -> Option<oneshot::Receiver<bool>> {
            self.0.lock().unwrap().push(format!("watch {room}"));
            let (answer, answered) = oneshot::channel();
            answer.send(true).unwrap();
            Some(answered)
        }
        fn unwatch(&self, room: &str) {
            self.0.lock().unwrap().push(format!("unwatch {room}"));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_member_leaving_unsubscribes_after_the_linger_unless_someone_rejoined() {
        let calls = Arc::new(Calls::default());
        let membership = Membership::routed(calls.clone());
        membership.enter(["r".to_owned()]).await;
        membership.enter(["r".to_owned()]).await;
        membership.leave(["r".to_owned()]);
        membership.leave(["r".to_owned()]);
        tokio::time::sleep(LINGER / 2).await;
        membership.enter(["r".to_owned()]).await;
        tokio::time::sleep(LINGER).await;
        assert!(!calls.0.lock().unwrap().iter().any(|call| call.starts_with("unwatch")), "re-joined in time");
        membership.leave(["r".to_owned()]);
        tokio::time::sleep(LINGER + Duration::from_millis(1)).await;
        assert_eq!(calls.0.lock().unwrap().last().unwrap(), "unwatch r");
        assert_eq!(membership.members("r"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_room_left_and_rejoined_over_and_over_unsubscribes_a_linger_after_the_last_leave() {
        let calls = Arc::new(Calls::default());
        let membership = Membership::routed(calls.clone());
        for _ in 0..5 {
            membership.enter(["r".to_owned()]).await;
            membership.leave(["r".to_owned()]);
            tokio::time::sleep(LINGER / 4).await;
        }
        // The last leave was LINGER / 4 ago: still subscribed.
        tokio::time::sleep(LINGER / 2).await;
        assert!(!calls.0.lock().unwrap().iter().any(|call| call.starts_with("unwatch")));
        tokio::time::sleep(LINGER / 4 + Duration::from_millis(1)).await;
        let unwatches = calls.0.lock().unwrap().iter().filter(|call| call.starts_with("unwatch")).count();
        assert_eq!(unwatches, 1, "one linger, one unsubscribe");
    }
}
