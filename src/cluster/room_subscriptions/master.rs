//! One master's share of the task's work ([`Master`]): the channels queued
//! for it, its calls in flight, its backoff; and how a queued channel
//! becomes a call within the limits.

use std::collections::{BTreeMap, HashMap, VecDeque};

use tokio::time::Instant;

use super::table::{Channel, QUEUE, Table};
use super::{BATCH, IN_FLIGHT, PASS_PER_MASTER, PER_MASTER};

/// A SSUBSCRIBE or a SUNSUBSCRIBE.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
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
    /// Channels asked by watches and unwatches, with their hash slots, in
    /// order (at most [`QUEUE`]: a frozen master's backlog is its own).
    pub(super) asked: VecDeque<(u16, String)>,
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

    /// Queues `channel` of hash slot `slot`, asked by a watch or an
    /// unwatch; when its queue is full, answers it as refused instead (left
    /// to the retry pass) and gives it back.
    pub(super) fn ask(&mut self, table: &mut Table, slot: u16, channel: String) -> Result<(), String> {
        if self.asked.len() >= QUEUE {
            take(table, &channel, None, true, |_| true);
            return Err(channel);
        }
        self.asked.push_back((slot, channel));
        Ok(())
    }

    /// Takes the calls its queues need now, asked channels first, as far as
    /// the limits allow (`in_flight`: the task's calls), each as `(op, made
    /// by a pass, channels)`. Asked channels sharing a hash slot and an op
    /// share a call (up to [`BATCH`]): on one Redis every channel counts as
    /// slot 0, so a login storm queued behind busy calls takes few calls.
    pub(super) fn take(
        &mut self,
        table: &mut Table,
        serving: Serving,
        in_flight: &mut usize,
    ) -> Vec<(Op, bool, Vec<String>)> {
        let mut calls = Vec::new();
        if serving == Serving::Holds {
            for (_, channel) in &self.asked {
                table.update(channel, |entry| entry.answer(false));
            }
            return calls;
        }
        let refused = serving == Serving::Refuses;
        // The calls taken now that still have room, by slot and op.
        let mut open: HashMap<(u16, Op), usize> = HashMap::new();
        while let Some((slot, channel)) = self.asked.pop_front() {
            let room = self.room(*in_flight, false);
            let fits = |op| room || open.contains_key(&(slot, op));
            let op = match take(table, &channel, None, refused, fits) {
                Taken::Call(op) => op,
                Taken::Nothing => continue,
                Taken::NoRoom => {
                    // First in line for the next call that ends.
                    self.asked.push_front((slot, channel));
                    break;
                }
            };
            let index = match open.get(&(slot, op)) {
                Some(&index) => index,
                None => {
                    calls.push((op, false, Vec::new()));
                    self.in_flight += 1;
                    *in_flight += 1;
                    calls.len() - 1
                }
            };
            let batch = &mut calls[index].2;
            batch.push(channel);
            if batch.len() < BATCH {
                open.insert((slot, op), index);
            } else {
                open.remove(&(slot, op));
            }
        }
        while refused || self.room(*in_flight, true) {
            let Some((slot, mut channels)) = self.swept.pop_first() else { break };
            if channels.len() > BATCH {
                self.swept.insert(slot, channels.split_off(BATCH));
            }
            let (mut subscribe, mut unsubscribe) = (Vec::new(), Vec::new());
            for (channel, force) in channels {
                match take(table, &channel, Some(force), refused, |_| true) {
                    Taken::Call(Op::Subscribe) => subscribe.push(channel),
                    Taken::Call(Op::Unsubscribe) => unsubscribe.push(channel),
                    Taken::Nothing | Taken::NoRoom => {}
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

/// What [`take`] made of a queued channel.
enum Taken {
    /// Taken off the queue, marked busy: it needs this call.
    Call(Op),
    /// Taken off the queue: it needs no call now (answered if it was
    /// confirmed, or refused and left to the retry pass).
    Nothing,
    /// Left queued: it needs a call there is no room for.
    NoRoom,
}

/// Takes `channel` off a queue (`pass`: `Some(force)` for a pass's) and
/// says which call it needs now, marking it busy; [`Taken::Nothing`] if it
/// needs none, or if it cannot be made now (`refused`: the master backing
/// off or its queue full), in which case a subscribe's waiting joins are
/// answered `false` and the channel is left to the retry pass;
/// [`Taken::NoRoom`], untouched, if `fits` says its call has no room.
fn take(
    table: &mut Table,
    channel: &str,
    pass: Option<bool>,
    refused: bool,
    fits: impl FnOnce(Op) -> bool,
) -> Taken {
    table
        .update(channel, |entry| {
            // A pass's entry that is asked or in flight is handled there.
            if entry.busy || (pass.is_some() && entry.asked) {
                dequeue(entry, pass);
                return Taken::Nothing;
            }
            let op = match (entry.wanted, entry.confirmed, entry.sent) {
                (true, true, _) if pass != Some(true) => {
                    dequeue(entry, pass);
                    entry.answer(true);
                    return Taken::Nothing;
                }
                (true, _, _) => Op::Subscribe,
                (false, _, true) => Op::Unsubscribe,
                (false, _, false) => {
                    dequeue(entry, pass);
                    return Taken::Nothing;
                }
            };
            if refused {
                dequeue(entry, pass);
                if op == Op::Subscribe {
                    entry.answer(false);
                }
                return Taken::Nothing;
            }
            if !fits(op) {
                return Taken::NoRoom;
            }
            dequeue(entry, pass);
            entry.busy = true;
            // Going: a watch from now on waits for it, then subscribes.
            entry.confirmed &= op == Op::Subscribe;
            Taken::Call(op)
        })
        .unwrap_or(Taken::Nothing)
}

/// Marks `entry` as off its queue (`pass`: a pass's).
fn dequeue(entry: &mut Channel, pass: Option<bool>) {
    match pass {
        Some(_) => entry.swept = false,
        None => entry.asked = false,
    }
}
