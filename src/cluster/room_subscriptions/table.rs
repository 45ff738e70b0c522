//! The table of room channels the front ([`super::RoomSubscriptions`]) and
//! the task share under one lock: what each channel should be (wanted or
//! not), what Redis last confirmed, whether a call about it is in flight,
//! and the joins waiting for its subscription. It also keeps
//! `chatwire_room_channels` up to date.

use std::collections::{HashMap, VecDeque};

use tokio::sync::oneshot;

/// Channels asked for and not yet taken by the task, and channels in one
/// master's queue of the task; past it, a watch is answered `false` at once
/// (and the retry pass subscribes the channel). Per master, so that a
/// frozen master's backlog refuses none of another master's channels.
pub(super) const QUEUE: usize = 4096;
/// Joins waiting on one channel's subscription; past it (closed answers
/// pruned first), a watch is answered `false` at once.
const WAITERS: usize = 1024;

/// One room channel.
#[derive(Default)]
pub(super) struct Channel {
    /// Some local member wants it: the last call was a watch.
    pub(super) wanted: bool,
    /// Redis confirmed its SSUBSCRIBE on the current connection, and no
    /// SUNSUBSCRIBE was made since.
    pub(super) confirmed: bool,
    /// A SSUBSCRIBE was sent since its last confirmed SUNSUBSCRIBE: it may
    /// be subscribed (even unanswered, a frozen master runs it on waking).
    pub(super) sent: bool,
    /// A call about it is in flight: at most one, so calls keep their order.
    pub(super) busy: bool,
    /// Queued by a watch or unwatch (served before passes).
    pub(super) asked: bool,
    /// Queued by a retry or sweep pass.
    pub(super) swept: bool,
    /// Joins waiting for the outcome of its next subscribe.
    waiters: Vec<oneshot::Sender<bool>>,
}

/// What a channel counts as in `chatwire_room_channels`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Confirmed,
    Pending,
}

impl Channel {
    fn state(&self) -> Option<State> {
        match (self.wanted, self.confirmed) {
            (false, _) => None,
            (true, true) => Some(State::Confirmed),
            (true, false) => Some(State::Pending),
        }
    }

    /// Nothing wanted, nothing to undo, nothing queued: forgotten.
    fn idle(&self) -> bool {
        !self.wanted && !self.sent && !self.busy && !self.asked && !self.swept
    }

    /// Answers every waiting join.
    pub(super) fn answer(&mut self, subscribed: bool) {
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(subscribed);
        }
    }
}

/// The channels, and the queue of those a watch or unwatch left to the task.
#[derive(Default)]
pub(super) struct Table {
    channels: HashMap<String, Channel>,
    /// Channels to look at again, in the order they were asked, until the
    /// task sorts them into its masters' queues (at most [`QUEUE`]).
    pub(super) asked: VecDeque<String>,
    /// This table's share of the gauge (several instances may share a
    /// process in tests): confirmed, pending.
    counted: (i64, i64),
}

/// What a watch got.
pub(super) enum Watched {
    /// Answered already (confirmed, or not possible now).
    Answered,
    /// Queued for the task, which is to be woken.
    Queued,
    /// Waiting on a call in flight or queued already.
    Waiting,
    /// Answered `false`: too many channels or joins are waiting.
    Full,
}

impl Table {
    /// Applies `change` to `channel`'s entry (if it has one), then keeps the
    /// gauge right and forgets the entry if it became idle (answering any
    /// join still waiting `false`).
    pub(super) fn update<R>(&mut self, channel: &str, change: impl FnOnce(&mut Channel) -> R) -> Option<R> {
        let entry = self.channels.get_mut(channel)?;
        let before = entry.state();
        let result = change(entry);
        let after = entry.state();
        if entry.idle() {
            entry.answer(false);
            self.channels.remove(channel);
        }
        if before != after {
            self.count(before, -1);
            self.count(after, 1);
        }
        Some(result)
    }

    fn count(&mut self, state: Option<State>, delta: i64) {
        match state {
            Some(State::Confirmed) => self.counted.0 += delta,
            Some(State::Pending) => self.counted.1 += delta,
            None => return,
        }
        let (confirmed, pending) = if state == Some(State::Confirmed) { (delta, 0) } else { (0, delta) };
        crate::metrics::metrics().room_channels(confirmed, pending);
    }

    /// A watch of `channel`: answered at once through `answer` if Redis
    /// confirmed it already or cannot be asked now (`connected` false, too
    /// much waiting), else kept until its subscribe's outcome.
    pub(super) fn watch(&mut self, channel: &str, answer: oneshot::Sender<bool>, connected: bool) -> Watched {
        if !self.channels.contains_key(channel) {
            self.channels.insert(channel.to_owned(), Channel::default());
        }
        let full = self.asked.len() >= QUEUE;
        let watched = self.update(channel, |entry| {
            entry.wanted = true;
            if !connected || entry.confirmed {
                let _ = answer.send(entry.confirmed && connected);
                return Watched::Answered;
            }
            if entry.waiters.len() >= WAITERS {
                entry.waiters.retain(|waiter| !waiter.is_closed());
            }
            let queue = !entry.busy && !entry.asked;
            if entry.waiters.len() >= WAITERS || (queue && full) {
                let _ = answer.send(false);
                return Watched::Full;
            }
            entry.waiters.push(answer);
            entry.asked |= queue;
            if queue { Watched::Queued } else { Watched::Waiting }
        });
        let watched = watched.unwrap_or(Watched::Answered);
        if matches!(watched, Watched::Queued) {
            self.ask(channel.to_owned());
        }
        watched
    }

    /// An unwatch of `channel`; true if queued for the task (to be woken).
    /// With the queue full it is left to the retry pass.
    pub(super) fn unwatch(&mut self, channel: &str) -> bool {
        let full = self.asked.len() >= QUEUE;
        let queued = self.update(channel, |entry| {
            entry.wanted = false;
            // In flight: its outcome decides the next call. Never sent:
            // nothing to undo (the entry goes once idle).
            let queue = !entry.busy && !entry.asked && entry.sent && !full;
            entry.asked |= queue;
            queue
        });
        if queued == Some(true) {
            self.ask(channel.to_owned());
        }
        queued == Some(true)
    }

    /// Queues `channel` (already marked `asked`) for the task.
    pub(super) fn ask(&mut self, channel: String) {
        self.asked.push_back(channel);
    }

    /// Every channel, for a pass.
    pub(super) fn channels_mut(&mut self) -> impl Iterator<Item = (&String, &mut Channel)> {
        self.channels.iter_mut()
    }

    /// Nothing counts as confirmed any more (Redis disconnected, or a new
    /// connection that has no subscriptions yet).
    pub(super) fn unconfirm_all(&mut self) {
        let mut moved = 0;
        for entry in self.channels.values_mut() {
            if entry.wanted && entry.confirmed {
                moved += 1;
            }
            entry.confirmed = false;
        }
        if moved > 0 {
            self.counted.0 -= moved;
            self.counted.1 += moved;
            crate::metrics::metrics().room_channels(-moved, moved);
        }
    }

    /// Wanted channels, and how many of them are confirmed.
    pub(super) fn counts(&self) -> (i64, i64) {
        (self.counted.0 + self.counted.1, self.counted.0)
    }
}

impl Drop for Table {
    /// Takes this table's channels out of the process's gauge.
    fn drop(&mut self) {
        let (confirmed, pending) = self.counted;
        crate::metrics::metrics().room_channels(-confirmed, -pending);
    }
}
