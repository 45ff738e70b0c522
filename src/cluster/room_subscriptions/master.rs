//! One master's share of the task's work ([`Master`]): the channels queued
//! for it, its calls in flight, its backoff; and how a queued channel
//! becomes a call within the limits.

use std::collections::{BTreeMap, VecDeque};

use tokio::time::Instant;

use super::table::{QUEUE, Table};
use super::{BATCH, IN_FLIGHT, PASS_PER_MASTER, PER_MASTER};

/// A SSUBSCRIBE or a SUNSUBSCRIBE.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Op {
    Subscribe,
    Unsubscribe,
}

/// What a master does with its queues now.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Serving {
    /// Makes the calls they need, as far as the limits allow.
    Calls,
    /// Redis is disconnected: keeps them for when it is back (a reconnect's
    /// pass is queued before fred counts the connection as up), answering
    /// the joins waiting on them `false`.
    Holds,
    /// Backing off: empties them, answering at once; the retry pass makes
    /// what is still needed.
    Refuses,
}

/// One master's queues, calls in flight and backoff.
#[derive(Default)]
pub(super) struct Master {
    /// Channels asked by watches and unwatches, in order (at most
    /// [`QUEUE`]: a frozen master's backlog is its own).
    pub(super) asked: VecDeque<String>,
    /// Channels of a pass by hash slot, with whether to subscribe them even
    /// if confirmed (a sweep).
    pub(super) swept: BTreeMap<u16, Vec<(String, bool)>>,
    /// Its calls in flight, at most [`PER_MASTER`]: a frozen master holds
    /// no more than these.
    pub(super) in_flight: usize,
    /// Of `in_flight`, the calls made by a pass, at most
    /// [`PASS_PER_MASTER`]: the rest stay free for joins.
    pub(super) pass_in_flight: usize,
    /// Until when its channels are answered without asking.
    pub(super) failing: Option<Instant>,
}

impl Master {
    /// Whether it is backing off at `now`.
    pub(super) fn backing_off(&self, now: Instant) -> bool {
        self.failing.is_some_and(|until| now < until)
    }

    /// Whether anything waits in its queues.
    pub(super) fn queued(&self) -> bool {
        !self.asked.is_empty() || !self.swept.is_empty()
    }

    /// Queues `channel`, asked by a watch or an unwatch; when its queue is
    /// full, answers it as refused instead (left to the retry pass) and
    /// gives it back.
    pub(super) fn ask(&mut self, table: &mut Table, channel: String) -> Result<(), String> {
        if self.asked.len() >= QUEUE {
            take(table, &channel, None, true);
            return Err(channel);
        }
        self.asked.push_back(channel);
        Ok(())
    }

    /// Takes the calls its queues need now, asked channels first, as far as
    /// the limits allow (`in_flight`: the task's calls), each as `(op, made
    /// by a pass, channels)`.
    pub(super) fn take(
        &mut self,
        table: &mut Table,
        serving: Serving,
        in_flight: &mut usize,
    ) -> Vec<(Op, bool, Vec<String>)> {
        let mut calls = Vec::new();
        if serving == Serving::Holds {
            for channel in &self.asked {
                table.update(channel, |entry| entry.answer(false));
            }
            return calls;
        }
        let refused = serving == Serving::Refuses;
        while refused || self.room(*in_flight, false) {
            let Some(channel) = self.asked.pop_front() else { break };
            if let Some(op) = take(table, &channel, None, refused) {
                calls.push((op, false, vec![channel]));
                self.in_flight += 1;
                *in_flight += 1;
            }
        }
        while refused || self.room(*in_flight, true) {
            let Some((slot, mut channels)) = self.swept.pop_first() else { break };
            if channels.len() > BATCH {
                self.swept.insert(slot, channels.split_off(BATCH));
            }
            let (mut subscribe, mut unsubscribe) = (Vec::new(), Vec::new());
            for (channel, force) in channels {
                match take(table, &channel, Some(force), refused) {
                    Some(Op::Subscribe) => subscribe.push(channel),
                    Some(Op::Unsubscribe) => unsubscribe.push(channel),
                    None => {}
                }
            }
            for (op, channels) in [(Op::Subscribe, subscribe), (Op::Unsubscribe, unsubscribe)] {
                if channels.is_empty() {
                    continue;
                }
                if !self.room(*in_flight, true) {
                    // A slot needing both calls, room for one: the other
                    // goes back to the pass's queue.
                    self.put_back(table, slot, channels);
                    continue;
                }
                calls.push((op, true, channels));
                self.in_flight += 1;
                self.pass_in_flight += 1;
                *in_flight += 1;
            }
        }
        calls
    }

    /// Whether the limits leave room for one more call (`pass`: made by a
    /// pass), with `in_flight` calls of the task's.
    fn room(&self, in_flight: usize, pass: bool) -> bool {
        self.in_flight < PER_MASTER
            && in_flight < IN_FLIGHT
            && (!pass || self.pass_in_flight < PASS_PER_MASTER)
    }

    /// Undoes [`take`] for a pass's `channels` of `slot`, queued again.
    fn put_back(&mut self, table: &mut Table, slot: u16, channels: Vec<String>) {
        let queue = self.swept.entry(slot).or_default();
        for channel in channels {
            table.update(&channel, |entry| {
                entry.busy = false;
                entry.swept = true;
            });
            queue.push((channel, false));
        }
    }
}

/// Takes `channel` off a queue (`pass`: `Some(force)` for a pass's) and
/// says which call it needs now, marking it busy; `None` if none, or if it
/// cannot be made now (`refused`: the master backing off or its queue
/// full), in which case a subscribe's waiting joins are answered `false`
/// and the channel is left to the retry pass.
fn take(table: &mut Table, channel: &str, pass: Option<bool>, refused: bool) -> Option<Op> {
    table
        .update(channel, |entry| {
            match pass {
                Some(_) => entry.swept = false,
                None => entry.asked = false,
            }
            // A pass's entry that is asked or in flight is handled there.
            if entry.busy || (pass.is_some() && entry.asked) {
                return None;
            }
            let op = match (entry.wanted, entry.confirmed, entry.sent) {
                (true, true, _) if pass != Some(true) => {
                    entry.answer(true);
                    return None;
                }
                (true, _, _) => Op::Subscribe,
                (false, _, true) => Op::Unsubscribe,
                (false, _, false) => return None,
            };
            if refused {
                if op == Op::Subscribe {
                    entry.answer(false);
                }
                return None;
            }
            entry.busy = true;
            // Going: a watch from now on waits for it, then subscribes.
            entry.confirmed &= op == Op::Subscribe;
            Some(op)
        })
        .flatten()
}
