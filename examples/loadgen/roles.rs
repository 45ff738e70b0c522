//! What a client does once logged in, until told to stop: stay idle,
//! record the latency of the messages it receives, or send at a pace.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::connection::{ClientError, Connection};
use crate::pacing::{Pace, Report, Schedule, SenderSeat};
use crate::protocol::{MessageEncoder, sent_micros, unix_micros};
use crate::recorder::Recorder;

/// A client's part in a scenario.
pub enum Role {
    /// Stays connected, answering pings and reading (then dropping) events.
    Idle,
    /// Records the latency of every timestamped `message` it receives.
    Receiver(Arc<Recorder>),
    /// Sends `message`s at its group's pace.
    Sender(SenderSeat),
}

impl Role {
    /// Plays the role on `connection` until `shutdown` turns true (`Ok`) or
    /// the connection fails (`Err`).
    pub async fn play(
        self,
        connection: &mut Connection,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), ClientError> {
        match self {
            Role::Idle => listen(connection, shutdown, |_| {}).await,
            Role::Receiver(recorder) => {
                let seat = recorder.seat();
                listen(connection, shutdown, |packet| {
                    if let Some(sent) = sent_micros(packet) {
                        recorder.record(seat, sent, unix_micros());
                    }
                })
                .await
            }
            Role::Sender(seat) => {
                seat.live.fetch_add(1, Ordering::Relaxed);
                let result = send(connection, &seat, shutdown).await;
                seat.live.fetch_sub(1, Ordering::Relaxed);
                result
            }
        }
    }
}

/// Reads packets until shutdown, handing each to `on_packet`.
async fn listen(
    connection: &mut Connection,
    mut shutdown: watch::Receiver<bool>,
    on_packet: impl Fn(&[u8]),
) -> Result<(), ClientError> {
    // One shutdown future for the whole loop: re-creating it per read
    // would register with the watch channel again every time.
    let stop = stopped(&mut shutdown);
    tokio::pin!(stop);
    loop {
        drain(connection, &on_packet).await?;
        tokio::select! {
            received = connection.receive() => received?,
            () = &mut stop => return Ok(()),
        }
    }
}

/// Hands every packet received so far to `on_packet`, then sends the pongs
/// that answered pings among them.
async fn drain(connection: &mut Connection, on_packet: impl Fn(&[u8])) -> Result<(), ClientError> {
    while let Some(packet) = connection.next_packet()? {
        on_packet(packet);
    }
    connection.flush().await
}

/// Resolves once the fleet shuts down (or is gone). Cancel-safe.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // Either outcome means stop; the guard is dropped before any await.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A step in progress: the schedule and the timer that drives it.
struct Sending {
    /// What is due when.
    schedule: Schedule,
    /// Wakes the sender when the next message is due.
    wake: Pin<Box<Sleep>>,
}

impl Sending {
    /// Sends every message due now, each stamped with the time it is
    /// written, and sets the timer for the next one.
    async fn send_due(
        &mut self,
        connection: &mut Connection,
        encoder: &MessageEncoder,
    ) -> Result<(), ClientError> {
        let due = self.schedule.due(Instant::now());
        for _ in 0..due {
            connection.queue_message(encoder);
        }
        self.schedule.sent += due;
        if let Some(next) = self.schedule.next_due() {
            self.wake.as_mut().reset(next);
        }
        connection.flush().await
    }
}

/// Follows the group's pace until shutdown, reading (and dropping) what
/// the room sends meanwhile. Each step's count is reported when it stops,
/// also when the connection fails mid-step.
async fn send(
    connection: &mut Connection,
    seat: &SenderSeat,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ClientError> {
    let mut pace = seat.pace.clone();
    let mut current: Option<Sending> = start(*pace.borrow_and_update(), seat);
    let stop = stopped(&mut shutdown);
    tokio::pin!(stop);
    let result = loop {
        // The room's messages (the other senders') are read and dropped.
        if let Err(err) = drain(connection, |_| {}).await {
            break Err(err);
        }
        tokio::select! {
            received = connection.receive() => {
                if let Err(err) = received {
                    break Err(err);
                }
            }
            changed = pace.changed() => {
                if changed.is_err() {
                    break Ok(());
                }
                // The step's last messages may be due between the last wake
                // and its end: send them, so every step sends its full count.
                if let Some(sending) = current.as_mut()
                    && let Err(err) = sending.send_due(connection, &seat.encoder).await
                {
                    break Err(err);
                }
                report(seat, current.take());
                current = start(*pace.borrow_and_update(), seat);
            }
            () = next_due(&mut current) => {
                if let Some(sending) = current.as_mut()
                    && let Err(err) = sending.send_due(connection, &seat.encoder).await
                {
                    break Err(err);
                }
            }
            () = &mut stop => break Ok(()),
        }
    };
    report(seat, current);
    result
}

/// The schedule for `pace`, if it says to send.
fn start(pace: Pace, seat: &SenderSeat) -> Option<Sending> {
    let Pace::Sending { step, per_sender, start, until, jitter } = pace else { return None };
    let offset = seat.index as f64 / seat.of.max(1) as f64;
    // Each sender its own phases (a step's seeds, spread by index).
    let jitter = jitter.map(|seed| seed ^ (seat.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let schedule = Schedule { step, start, rate: per_sender, offset, until, sent: 0, jitter };
    let wake = Box::pin(tokio::time::sleep_until(schedule.next_due().unwrap_or(until)));
    Some(Sending { schedule, wake })
}

/// Waits until the next message of the step in progress is due, forever if
/// none is.
async fn next_due(current: &mut Option<Sending>) {
    match current {
        Some(sending) if sending.schedule.next_due().is_some() => {
            sending.wake.as_mut().await;
        }
        _ => std::future::pending().await,
    }
}

/// Hands in a finished step's count.
fn report(seat: &SenderSeat, finished: Option<Sending>) {
    if let Some(Sending { schedule, .. }) = finished {
        // The group may be gone at shutdown; nobody is waiting then.
        let _ = seat.report.send(Report { step: schedule.step, sent: schedule.sent });
    }
}
