//! Per-socket flood control: a token bucket on events, a cap on events
//! waiting for their turn (in number and in bytes), and disconnection of a
//! socket that keeps flooding. Checked synchronously when a packet arrives,
//! before it is parsed or any store call, so a flooding socket costs little
//! and other users do not notice. A large packet costs more of the event
//! allowance than a small one ([`PacketSize::event_cost`]). A second bucket
//! counts bytes delivered (a message's size times its recipients), so that
//! one event cannot fan a file out to everyone.
//!
//! The buckets are ours, not `governor`'s: its direct limiter is 40 bytes
//! with the std clock (72 with its default quanta clock), as ours, but it
//! counts whole cells in a `u32` with a per-cell interval truncated to whole
//! nanoseconds (2 MiB/s becomes 476 ns a byte: 3 MiB short waits 1.497 s,
//! not 1.5 s, and bursts over 4 GiB or costs over `u32` do not fit), and it
//! reads its own clock where these take the time as a value. The flood
//! window, queue and in-flight byte caps around them have no counterpart.

use std::time::{Duration, Instant};

/// Binary attachments one packet may carry (a message has at most one
/// file): the common parser's decoder counts them, `InOrder` counts a
/// MessagePack packet's binaries.
pub const MAX_BINARY_ATTACHMENTS: usize = 2;

/// Events of one socket waiting for their turn (see `InOrder`), at most,
/// unless the burst allowance is larger.
pub const MAX_QUEUED_EVENTS: usize = 64;

/// Refusals counted over this window decide whether a socket is flooding.
const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// Bytes of a packet's JSON that one event token pays for. Every valid
/// event fits (a 4000-character text is at most 24 KB of JSON), so only
/// content over an application limit costs more than one event; this was
/// also the old cap on a packet's text.
pub const EVENT_TEXT_BYTES: usize = 64 * 1024;

/// What an incoming packet weighs, measured before it is parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketSize {
    /// Bytes of its text (JSON, or under PARSER=msgpack everything in the
    /// MessagePack value that is not a binary).
    pub text: usize,
    /// Bytes of its binaries (attachments, or MessagePack binaries).
    pub binary: usize,
}

impl PacketSize {
    /// Every byte the packet holds while it waits for its turn.
    pub fn total(&self) -> usize {
        self.text.saturating_add(self.binary)
    }

    /// Event tokens it costs: one per started [`EVENT_TEXT_BYTES`] of JSON,
    /// at least one. Binary attachments (files) answer to the delivery
    /// allowance and the file quota instead.
    pub fn event_cost(&self) -> u32 {
        u32::try_from(self.text.div_ceil(EVENT_TEXT_BYTES).max(1)).unwrap_or(u32::MAX)
    }
}

/// What to do with an incoming event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Handle it.
    Admit,
    /// Refuse it with `rate_limited`.
    Refuse,
    /// The socket keeps flooding: refuse and disconnect it.
    Disconnect,
}

/// A socket's event allowance.
#[derive(Debug)]
pub struct EventLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
    refusals: u32,
    window_start: Instant,
    max_refusals: u32,
    max_queued: usize,
    /// Bytes of events in flight, at most (one event alone always passes);
    /// `None`: unlimited.
    max_in_flight_bytes: Option<usize>,
    /// Bytes the socket may have delivered; `None`: unlimited.
    delivery: Option<ByteBucket>,
    /// Largest text part of a packet (MAX_FRAME_BYTES, never raised for
    /// files: only binaries need that); `None`: unlimited.
    max_text_bytes: Option<usize>,
}

/// The events of a socket already admitted and not finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// How many.
    pub events: usize,
    /// Their [`PacketSize::total`]s, summed.
    pub bytes: usize,
}

/// A token bucket counted in bytes.
#[derive(Debug)]
struct ByteBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl ByteBucket {
    /// Takes `cost` bytes if they are there, or says how long until they
    /// are. A cost above the burst could never be paid in full: it passes
    /// when the bucket is full, and empties it.
    fn take(&mut self, now: Instant, cost: u64) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        let cost = (cost as f64).min(self.burst);
        if self.tokens < cost {
            return Err(Duration::from_secs_f64((cost - self.tokens) / self.rate));
        }
        self.tokens -= cost;
        Ok(())
    }
}

impl EventLimiter {
    /// `rate` events per second sustained, `burst` at once; at most
    /// `max(burst, 64)` in flight. A socket refused more than `4 × burst`
    /// times within ten seconds is flooding.
    pub fn new(rate: u32, burst: u32) -> Self {
        let now = Instant::now();
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            refilled: now,
            refusals: 0,
            window_start: now,
            max_refusals: burst.max(1).saturating_mul(4),
            max_queued: MAX_QUEUED_EVENTS.max(burst as usize),
            max_in_flight_bytes: None,
            delivery: None,
            max_text_bytes: None,
        }
    }

    /// Caps the bytes of the events in flight (admitted, not finished) at
    /// `max`: a packet that would go over it is refused unless nothing else
    /// is in flight. With `max` the transport cap, what a socket's queue
    /// holds stays within one frame however fast it sends.
    pub fn with_in_flight_bytes(self, max: usize) -> Self {
        Self { max_in_flight_bytes: Some(max), ..self }
    }

    /// Caps a packet's text part at `max` bytes (see [`Self::text_fits`]).
    pub fn with_max_text_bytes(self, max: usize) -> Self {
        Self { max_text_bytes: Some(max), ..self }
    }

    /// Whether a packet's text fits the cap. Files raise the frame cap to
    /// twice MAX_FILE_BYTES, but only for binaries: a text that large is
    /// parsed whole (serde buffers it at several times its size), so text
    /// over MAX_FRAME_BYTES is a frame over the transport cap.
    pub fn text_fits(&self, size: PacketSize) -> bool {
        self.max_text_bytes.is_none_or(|max| size.text <= max)
    }

    /// Adds a delivery allowance: `bytes_per_sec` sustained, `burst` at once.
    pub fn with_delivery_allowance(self, bytes_per_sec: u64, burst: u64) -> Self {
        let burst = burst.max(1) as f64;
        let bucket =
            ByteBucket { rate: bytes_per_sec.max(1) as f64, burst, tokens: burst, refilled: Instant::now() };
        Self { delivery: Some(bucket), ..self }
    }

    /// Charges a delivery costing `cost` bytes (see [`delivery_cost`]). Over
    /// the allowance nothing is charged, and the error says how long until
    /// the cost would pass.
    pub fn charge_delivery(&mut self, cost: u64) -> Result<(), Duration> {
        match &mut self.delivery {
            Some(bucket) => bucket.take(Instant::now(), cost),
            None => Ok(()),
        }
    }

    /// Decides on one packet of `size`, given the socket's events already
    /// in flight. A cost above the burst could never be paid in full: it
    /// passes when the bucket is full, and empties it.
    pub fn admit(&mut self, backlog: Backlog, size: PacketSize) -> Admission {
        self.admit_at(Instant::now(), backlog, size)
    }

    fn admit_at(&mut self, now: Instant, backlog: Backlog, size: PacketSize) -> Admission {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        let cost = f64::from(size.event_cost()).min(self.burst);
        let fits = backlog.events == 0
            || self.max_in_flight_bytes.is_none_or(|max| backlog.bytes.saturating_add(size.total()) <= max);
        if backlog.events < self.max_queued && fits && self.tokens >= cost {
            self.tokens -= cost;
            return Admission::Admit;
        }
        if now.saturating_duration_since(self.window_start) > FLOOD_WINDOW {
            self.window_start = now;
            self.refusals = 0;
        }
        self.refusals += 1;
        if self.refusals > self.max_refusals { Admission::Disconnect } else { Admission::Refuse }
    }
}

/// What a message costs against the delivery allowance: each recipient
/// gets its bytes.
pub fn delivery_cost(bytes: usize, recipients: usize) -> u64 {
    (bytes as u64).saturating_mul(recipients.max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing in flight.
    const IDLE: Backlog = Backlog { events: 0, bytes: 0 };
    /// An ordinary chat event.
    const SMALL: PacketSize = PacketSize { text: 100, binary: 0 };

    #[test]
    fn large_text_costs_more_of_the_event_allowance() {
        assert_eq!(SMALL.event_cost(), 1);
        assert_eq!(PacketSize { text: 0, binary: 0 }.event_cost(), 1);
        assert_eq!(PacketSize { text: EVENT_TEXT_BYTES, binary: 0 }.event_cost(), 1);
        assert_eq!(PacketSize { text: EVENT_TEXT_BYTES + 1, binary: 0 }.event_cost(), 2);
        assert_eq!(PacketSize { text: 1_000_000, binary: 0 }.event_cost(), 16);
        assert_eq!(PacketSize { text: 100, binary: 5_000_000 }.event_cost(), 1, "files pay elsewhere");

        let mut limiter = EventLimiter::new(1, 40);
        let start = Instant::now();
        let megabyte = PacketSize { text: 1_000_000, binary: 0 };
        assert_eq!(limiter.admit_at(start, IDLE, megabyte), Admission::Admit);
        assert_eq!(limiter.admit_at(start, IDLE, megabyte), Admission::Admit);
        assert_eq!(limiter.admit_at(start, IDLE, megabyte), Admission::Refuse, "8 of 40 tokens left");
        for _ in 0..8 {
            assert_eq!(limiter.admit_at(start, IDLE, SMALL), Admission::Admit);
        }
        assert_eq!(limiter.admit_at(start, IDLE, SMALL), Admission::Refuse);

        let mut narrow = EventLimiter::new(1, 4);
        assert_eq!(
            narrow.admit_at(start, IDLE, megabyte),
            Admission::Admit,
            "over the burst: passes when full"
        );
        assert_eq!(narrow.admit_at(start, IDLE, SMALL), Admission::Refuse, "...and empties the bucket");
    }

    #[test]
    fn events_in_flight_hold_at_most_the_byte_budget() {
        let mut limiter = EventLimiter::new(1000, 1000).with_in_flight_bytes(1_000_000);
        let big = PacketSize { text: 600_000, binary: 0 };
        let one_waiting = Backlog { events: 1, bytes: 600_000 };
        assert_eq!(limiter.admit(IDLE, big), Admission::Admit);
        assert_eq!(limiter.admit(one_waiting, big), Admission::Refuse, "1.2 MB would wait");
        assert_eq!(limiter.admit(one_waiting, SMALL), Admission::Admit, "small events still pass");
        let file = PacketSize { text: 200, binary: 3_000_000 };
        assert_eq!(limiter.admit(IDLE, file), Admission::Admit, "one event alone always fits");
        let after_file = Backlog { events: 1, bytes: file.total() };
        assert_eq!(limiter.admit(after_file, SMALL), Admission::Refuse, "nothing more while it waits");
        let mut unlimited = EventLimiter::new(1000, 1000);
        assert_eq!(unlimited.admit(one_waiting, big), Admission::Admit, "no budget set");
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let mut limiter = EventLimiter::new(10, 5);
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.admit_at(start, IDLE, SMALL), Admission::Admit);
        }
        assert_eq!(limiter.admit_at(start, IDLE, SMALL), Admission::Refuse, "the burst is spent");
        assert_eq!(
            limiter.admit_at(start + Duration::from_millis(100), IDLE, SMALL),
            Admission::Admit,
            "one token per 100 ms"
        );
        assert_eq!(limiter.admit_at(start + Duration::from_millis(110), IDLE, SMALL), Admission::Refuse);
        let later = start + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(
                limiter.admit_at(later, IDLE, SMALL),
                Admission::Admit,
                "refills up to the burst, not beyond"
            );
        }
        assert_eq!(limiter.admit_at(later, IDLE, SMALL), Admission::Refuse);
    }

    #[test]
    fn bytes_times_recipients_are_counted_against_the_delivery_allowance() {
        const MIB: u64 = 1024 * 1024;
        let start = Instant::now();
        let (rate, burst) = ((2 * MIB) as f64, (32 * MIB) as f64);
        let mut bucket = ByteBucket { rate, burst, tokens: burst, refilled: start };
        assert!(bucket.take(start, delivery_cost(5 * MIB as usize, 1)).is_ok(), "a 5 MiB file to one person");
        let fan_out: Vec<_> = (0..10).map(|_| bucket.take(start, delivery_cost(MIB as usize, 10))).collect();
        let passed = fan_out.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(passed, 2, "27 MiB left: two of ten 10 MiB fan-outs pass");
        assert_eq!(fan_out[9], Err(Duration::from_millis(1500)), "3 MiB short at 2 MiB/s");
        assert!(bucket.take(start, delivery_cost(100, 10)).is_ok(), "small messages still pass");
        let later = start + Duration::from_secs(5);
        assert!(bucket.take(later, 10 * MIB).is_ok(), "refilled at 2 MiB/s");
        let much_later = start + Duration::from_secs(60);
        assert!(bucket.take(much_later, 500 * MIB).is_ok(), "more than the burst passes on a full bucket...");
        assert!(bucket.take(much_later, 1).is_err(), "...and empties it");
        assert!(EventLimiter::new(1, 1).charge_delivery(u64::MAX).is_ok(), "no allowance set: unlimited");
    }

    #[test]
    fn a_full_queue_refuses_even_with_tokens() {
        let mut limiter = EventLimiter::new(10, 5);
        let full = Backlog { events: MAX_QUEUED_EVENTS, bytes: 0 };
        assert_eq!(limiter.admit(full, SMALL), Admission::Refuse);
        assert_eq!(limiter.admit(IDLE, SMALL), Admission::Admit);
    }

    #[test]
    fn a_socket_that_keeps_flooding_is_cut_off() {
        let mut limiter = EventLimiter::new(1, 2);
        let start = Instant::now();
        let outcomes: Vec<_> = (0..12).map(|_| limiter.admit_at(start, IDLE, SMALL)).collect();
        assert_eq!(outcomes.iter().filter(|a| **a == Admission::Admit).count(), 2);
        assert_eq!(outcomes.iter().filter(|a| **a == Admission::Refuse).count(), 8);
        assert_eq!(outcomes.last(), Some(&Admission::Disconnect), "more than 4 × burst refusals");
        let mut calm = EventLimiter::new(1, 2);
        for second in 0..100 {
            let at = start + Duration::from_secs(second);
            assert_eq!(
                calm.admit_at(at, IDLE, SMALL),
                Admission::Admit,
                "a socket within its rate is never refused"
            );
        }
    }
}
