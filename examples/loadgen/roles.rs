//! What a client does once logged in, until told to stop: stay idle,
//! record the latency of the messages it receives, or send at a pace.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

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
    /// Wakes the sender when messages are due.
    ticker: Interval,
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
                // The step's last messages may be due between the last tick
                // and its end: send them, so every step sends its full count.
                if let Some(sending) = current.as_mut()
                    && let Err(err) = send_due(connection, &mut sending.schedule, &seat.encoder).await
                {
                    break Err(err);
                }
                report(seat, current.take());
                current = start(*pace.borrow_and_update(), seat);
            }
            () = next_tick(&mut current) => {
                if let Some(sending) = current.as_mut()
                    && let Err(err) = send_due(connection, &mut sending.schedule, &seat.encoder).await
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
    let Pace::Sending { step, per_sender, start, until } = pace else { return None };
    let offset = seat.index as f64 / seat.of.max(1) as f64;
    let schedule = Schedule { step, start, rate: per_sender, offset, until, sent: 0 };
    let mut ticker = tokio::time::interval_at(schedule.first_due(), schedule.tick());
    // Missed ticks need no catching up: `Schedule::due` counts what is owed.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    Some(Sending { schedule, ticker })
}

/// Waits for the next tick of the step in progress, forever if none is.
async fn next_tick(current: &mut Option<Sending>) {
    match current {
        Some(sending) => {
            sending.ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Sends every message due now, each stamped with the time it is written.
async fn send_due(
    connection: &mut Connection,
    schedule: &mut Schedule,
    encoder: &MessageEncoder,
) -> Result<(), ClientError> {
    let due = schedule.due(Instant::now());
    for _ in 0..due {
        connection.queue_message(encoder);
    }
    schedule.sent += due;
    connection.flush().await
}

/// Hands in a finished step's count.
fn report(seat: &SenderSeat, finished: Option<Sending>) {
    if let Some(Sending { schedule, .. }) = finished {
        // The group may be gone at shutdown; nobody is waiting then.
        let _ = seat.report.send(Report { step: schedule.step, sent: schedule.sent });
    }
}
