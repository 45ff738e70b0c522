//! Paced sending: a [`SenderGroup`] sets a combined rate for its senders,
//! each sender takes an even share, offset so that sends interleave, and
//! reports how many messages it sent when the group stops. A jittered group
//! ([`SenderGroup::jittered`]) sends at random points of its slots instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::protocol::MessageEncoder;

/// How long [`SenderGroup::stop`] waits for the senders' counts.
const REPORT_WAIT: Duration = Duration::from_secs(2);

/// What a group's senders are told to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Send nothing.
    Stopped,
    /// Send `per_sender` messages a second each until `until`, counting toward `step`.
    Sending {
        /// Which start this is, so late counts are not mixed up.
        step: u64,
        /// Messages per second for one sender.
        per_sender: f64,
        /// When the step started: the same for every sender, however late
        /// each sees the change.
        start: Instant,
        /// When sending ends, even if the stop is seen late (a busy machine).
        until: Instant,
        /// For a jittered group, the step's random seed.
        jitter: Option<u64>,
    },
}

/// A sender's count for one step.
#[derive(Debug)]
pub struct Report {
    /// The step the count belongs to.
    pub step: u64,
    /// Messages sent.
    pub sent: u64,
}

/// The controller's side of a group of senders.
pub struct SenderGroup {
    /// The current pace, watched by every sender.
    pace: watch::Sender<Pace>,
    /// Counts come back here.
    reports: mpsc::UnboundedReceiver<Report>,
    /// Senders hand their counts in through clones of this.
    report_to: mpsc::UnboundedSender<Report>,
    /// Senders connected and following the pace.
    live: Arc<AtomicUsize>,
    /// What the senders send.
    encoder: Arc<MessageEncoder>,
    /// How many seats were handed out.
    size: usize,
    /// The current or last step.
    step: u64,
    /// Senders that were live when the current step started.
    started_with: usize,
    /// Whether sends fall at random points of their slots.
    jittered: bool,
}

/// One sender's side of a group.
pub struct SenderSeat {
    /// Its position in the group, which sets its offset.
    pub index: usize,
    /// The group's size.
    pub of: usize,
    /// The pace to follow.
    pub pace: watch::Receiver<Pace>,
    /// Where to hand in counts.
    pub report: mpsc::UnboundedSender<Report>,
    /// Incremented while the sender is connected.
    pub live: Arc<AtomicUsize>,
    /// What to send.
    pub encoder: Arc<MessageEncoder>,
}

impl SenderGroup {
    /// A stopped group of `size` senders sending into `room`.
    pub fn new(size: usize, room: &str) -> Self {
        let (pace, _) = watch::channel(Pace::Stopped);
        let (report_to, reports) = mpsc::unbounded_channel();
        Self {
            pace,
            reports,
            report_to,
            live: Arc::new(AtomicUsize::new(0)),
            encoder: Arc::new(MessageEncoder::new(room)),
            size,
            step: 0,
            started_with: 0,
            jittered: false,
        }
    }

    /// The same group, sending each message at a random point of its slot
    /// (message `k` of a sender somewhere in `[k, k + 1) / rate`): the rate
    /// is kept, the phase is not. A latency probe needs this beside paced
    /// background traffic: evenly spaced, it would meet the background's
    /// bursts at the same few points of their cycle for a whole run, points
    /// set by chance at each run, and its p99 would move two or three times
    /// between runs of one build.
    pub fn jittered(self) -> Self {
        Self { jittered: true, ..self }
    }

    /// The seat of sender `index` (of [`SenderGroup::new`]'s `size`).
    pub fn seat(&self, index: usize) -> SenderSeat {
        SenderSeat {
            index,
            of: self.size,
            pace: self.pace.subscribe(),
            report: self.report_to.clone(),
            live: self.live.clone(),
            encoder: self.encoder.clone(),
        }
    }

    /// Senders connected now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Starts sending `total_rate` messages a second for `length`, shared by
    /// the live senders.
    pub fn start(&mut self, total_rate: f64, length: Duration) {
        self.step += 1;
        self.started_with = self.live();
        let per_sender = total_rate / self.started_with.max(1) as f64;
        let start = Instant::now();
        let until = start + length;
        let jitter = self.jittered.then(rand::random::<u64>);
        self.pace.send_replace(Pace::Sending { step: self.step, per_sender, start, until, jitter });
    }

    /// Stops sending and returns how many messages the step sent (counts of
    /// senders that do not answer within two seconds are missing).
    pub async fn stop(&mut self) -> u64 {
        self.pace.send_replace(Pace::Stopped);
        let mut sent = 0;
        let mut answered = 0;
        let deadline = Instant::now() + REPORT_WAIT;
        while answered < self.started_with {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(report)) if report.step == self.step => {
                    sent += report.sent;
                    answered += 1;
                }
                Ok(Some(_stale)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        sent
    }
}

/// One sender's schedule for a step: message `k` is due at
/// `(k + offset + phase(k)) / rate` seconds after the start, where `phase`
/// is 0, or random in `[0, 1)` for a jittered group.
#[derive(Debug)]
pub struct Schedule {
    /// The step being counted.
    pub step: u64,
    /// When the step started.
    pub start: Instant,
    /// Messages per second.
    pub rate: f64,
    /// Nothing is due after this.
    pub until: Instant,
    /// This sender's offset, in messages (0 ≤ offset < 1).
    pub offset: f64,
    /// Messages sent so far.
    pub sent: u64,
    /// For a jittered group, this sender's seed: message `k`'s phase is
    /// drawn from it and `k`, so it is the same whenever it is asked.
    pub jitter: Option<u64>,
}

impl Schedule {
    /// Where in its slot message `k` falls, in messages (0 ≤ phase < 1).
    fn phase(&self, k: u64) -> f64 {
        self.jitter.map_or(0.0, |seed| SmallRng::seed_from_u64(seed.wrapping_add(k)).random())
    }

    /// When the next message (the first not sent) is due; `None` once
    /// nothing more is due before `until`. The timer's resolution is a
    /// millisecond, so faster rates send batches.
    pub fn next_due(&self) -> Option<Instant> {
        if self.rate <= 0.0 {
            return None;
        }
        let at = (self.sent as f64 + self.offset + self.phase(self.sent)) / self.rate;
        let due = self.start + Duration::from_secs_f64(at);
        (due < self.until).then_some(due)
    }

    /// How many messages are due at `now` and not sent yet: those due at or
    /// before `now` (before `until`, at most).
    pub fn due(&self, now: Instant) -> u64 {
        if self.rate <= 0.0 {
            return 0;
        }
        let elapsed = now.min(self.until).saturating_duration_since(self.start).as_secs_f64();
        let scheduled = elapsed * self.rate - self.offset;
        if scheduled < 0.0 {
            return 0;
        }
        // Every message before `whole` is due; message `whole` once its phase
        // is reached, and not if it falls exactly at `until`.
        let whole = scheduled.floor();
        let (phase, reached) = (self.phase(whole as u64), scheduled - whole);
        let last = if now >= self.until { phase < reached } else { phase <= reached };
        (whole as u64 + u64::from(last)).saturating_sub(self.sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_interleave_and_catch_up() {
        let start = Instant::now();
        let until = start + Duration::from_secs(2);
        let second = Schedule { step: 1, start, rate: 10.0, offset: 0.5, until, sent: 0, jitter: None };
        assert_eq!(second.due(start), 0);
        assert_eq!(second.due(start + Duration::from_millis(60)), 1);
        assert_eq!(second.due(start + Duration::from_millis(1049)), 10);
        let behind = Schedule { sent: 4, ..second };
        assert_eq!(behind.due(start + Duration::from_millis(1049)), 6);
        assert_eq!(second.due(start + Duration::from_secs(9)), 20);
        let first = Schedule { offset: 0.0, ..second };
        assert_eq!(first.due(start + Duration::from_secs(9)), 20);
    }

    /// Walks a schedule as a sender does: each message sent at its due time.
    /// Returns where each fell in its slot, in messages.
    fn phases(mut schedule: Schedule) -> Vec<f64> {
        let mut phases = Vec::new();
        let micro = Duration::from_micros(1);
        while let Some(due) = schedule.next_due() {
            if due > schedule.start + micro {
                assert_eq!(schedule.due(due - micro), 0, "message {} is not due early", schedule.sent);
            }
            assert_eq!(schedule.due(due + micro), 1, "message {} is due on time", schedule.sent);
            let slots = (due - schedule.start).as_secs_f64() * schedule.rate - schedule.offset;
            phases.push(slots - schedule.sent as f64);
            schedule.sent += 1;
        }
        phases
    }

    #[test]
    fn a_jittered_schedule_keeps_the_rate_but_spreads_the_phase() {
        let start = Instant::now();
        let until = start + Duration::from_secs(20);
        let even = Schedule { step: 1, start, rate: 50.0, offset: 0.0, until, sent: 0, jitter: None };
        let jittered = Schedule { jitter: Some(7), ..even };
        let (even, jittered) = (phases(even), phases(jittered));
        assert_eq!(even.len(), 1000);
        assert_eq!(jittered.len(), 1000, "the same number of messages in the step");
        assert!(even.iter().all(|phase| phase.abs() < 1e-6), "evenly spaced: always at the slot's start");
        let mut tenths = [0u32; 10];
        for phase in &jittered {
            assert!((0.0..1.0).contains(phase), "each message stays in its own slot: {phase}");
            tenths[(phase * 10.0) as usize] += 1;
        }
        assert!(tenths.iter().all(|&n| (50..=150).contains(&n)), "spread over the slot: {tenths:?}");
    }
}
