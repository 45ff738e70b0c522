//! Paced sending: a [`SenderGroup`] sets a combined rate for its senders,
//! each sender takes an even share, offset so that sends interleave, and
//! reports how many messages it sent when the group stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
        }
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
        self.pace.send_replace(Pace::Sending { step: self.step, per_sender, start, until });
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
/// `(k + index / of) / rate` seconds after the start.
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
}

impl Schedule {
    /// How often the sender wakes up: once per message, but at most once per
    /// millisecond (the timer's resolution); faster rates send batches.
    pub fn tick(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.rate.max(1e-3)).max(Duration::from_millis(1))
    }

    /// When the first message is due.
    pub fn first_due(&self) -> Instant {
        self.start + Duration::from_secs_f64(self.offset / self.rate.max(1e-3))
    }

    /// How many messages are due at `now` and not sent yet. Message `k` is
    /// due at `(k + offset) / rate`, for due times before `until`.
    pub fn due(&self, now: Instant) -> u64 {
        let elapsed = now.min(self.until).saturating_duration_since(self.start).as_secs_f64();
        let scheduled = elapsed * self.rate - self.offset;
        if scheduled < 0.0 {
            return 0;
        }
        // `ceil`, not `floor + 1`: a message due exactly at `until` is not sent.
        let due = if now >= self.until { scheduled.ceil() } else { scheduled.floor() + 1.0 };
        (due as u64).saturating_sub(self.sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_interleave_and_catch_up() {
        let start = Instant::now();
        let until = start + Duration::from_secs(2);
        let second = Schedule { step: 1, start, rate: 10.0, offset: 0.5, until, sent: 0 };
        assert_eq!(second.due(start), 0);
        assert_eq!(second.due(start + Duration::from_millis(60)), 1);
        assert_eq!(second.due(start + Duration::from_millis(1049)), 10);
        let behind = Schedule { sent: 4, ..second };
        assert_eq!(behind.due(start + Duration::from_millis(1049)), 6);
        assert_eq!(second.due(start + Duration::from_secs(9)), 20);
        let first = Schedule { offset: 0.0, ..second };
        assert_eq!(first.due(start + Duration::from_secs(9)), 20);
    }
}
