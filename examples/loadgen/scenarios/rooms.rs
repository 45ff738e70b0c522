//! `rooms`: many small rooms, each with its members spread over the
//! instances and a sender of its own, all sending together at one combined
//! rate. What it measures is the clients' side (deliveries, losses,
//! latency); the bench reads each instance's side (bytes from Redis, CPU)
//! around it. A room of two stands for a private conversation: both travel
//! as a broadcast to one or two socket.io rooms.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use serde::Serialize;

use super::{SETTLE, fleet, limits, print_errors, run_token, wait_for_deliveries};
use crate::cli::RoomsArgs;
use crate::fleet::{Gate, Member};
use crate::pacing::SenderGroup;
use crate::protocol::unix_micros;
use crate::recorder::{LatencySummary, Recorder, show_ms};
use crate::report::Outcome;
use crate::roles::Role;

/// Printed (stderr) just before sending starts.
const SENDING: &str = "rooms: sending";
/// Printed once sending stopped and the last deliveries arrived.
const DONE: &str = "rooms: delivered";

/// The `rooms` result, as written to `--json`.
#[derive(Serialize)]
struct RoomsResult {
    scenario: &'static str,
    instances: usize,
    rooms: u64,
    room_size: u64,
    offered_rate: f64,
    secs: f64,
    sent: u64,
    expected: u64,
    delivered: u64,
    lost: u64,
    #[serde(flatten)]
    latency: LatencySummary,
    errors: usize,
}

/// Runs the scenario.
pub async fn run(args: RoomsArgs) -> anyhow::Result<Outcome> {
    ensure!(args.secs > 0.0 && args.rate > 0.0, "--secs and --rate must be positive");
    let token = run_token();
    let limits = limits(&args.common, Some(args.concurrency), Gate::None);
    let recorder = Arc::new(Recorder::new()?);
    let mut receivers = fleet(limits.clone())?;
    let mut senders = fleet(limits)?;
    let urls = &args.urls;
    let mut groups = Vec::with_capacity(args.rooms as usize);
    for r in 0..args.rooms as usize {
        let name: Arc<str> = format!("r{r}-{token}").into();
        for j in 0..args.room_size as usize {
            receivers.spawn(Member {
                target: urls[(r + j) % urls.len()],
                name: format!("m{r}-{j}-{token}"),
                room: Some(name.clone()),
                role: Role::Receiver(recorder.clone()),
            });
        }
        let group = SenderGroup::new(1, &name);
        senders.spawn(Member {
            target: urls[r % urls.len()],
            name: format!("s{r}-{token}"),
            room: Some(name),
            role: Role::Sender(group.seat(0)),
        });
        groups.push(group);
    }
    receivers.wait_settled().await;
    senders.wait_settled().await;
    tokio::time::sleep(SETTLE).await;

    // Every room sends its share, from the same moment, for the same time.
    // The marker lines let the bench read the servers just around sending.
    eprintln!("{SENDING}");
    recorder.open_window(unix_micros());
    let length = Duration::from_secs_f64(args.secs);
    let per_room = args.rate / args.rooms as f64;
    for group in &mut groups {
        group.start(per_room, length);
    }
    tokio::time::sleep(length).await;
    let mut sent = 0;
    for group in &mut groups {
        sent += group.stop().await;
    }
    let expected = sent * args.room_size;
    wait_for_deliveries(&[(&recorder, expected)]).await;
    let histogram = recorder.close_window()?;
    eprintln!("{DONE}");
    let delivered = histogram.len();
    let latency = LatencySummary::of(&histogram);

    print_errors(&[&receivers, &senders]);
    let errors = receivers.counters().errors() + senders.counters().errors();
    receivers.shutdown().await;
    senders.shutdown().await;
    let summary = format!(
        "rooms: {} rooms of {} on {} instances, sent {sent}, delivered {delivered}/{expected}, p99 {} ms, {errors} errors",
        args.rooms,
        args.room_size,
        urls.len(),
        show_ms(latency.p99_ms)
    );
    let result = RoomsResult {
        scenario: "rooms",
        instances: urls.len(),
        rooms: args.rooms,
        room_size: args.room_size,
        offered_rate: args.rate,
        secs: args.secs,
        sent,
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        latency,
        errors,
    };
    Outcome::new(&result, summary)
}
