//! `latency`: one sender on one instance, one receiver on another, in a
//! private room, optionally under background traffic in a second room.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, ensure};
use serde::Serialize;

use super::{SETTLE, fleet, limits, print_errors, run_token, wait_for_deliveries};
use crate::cli::LatencyArgs;
use crate::fleet::{Fleet, Gate, Member};
use crate::pacing::SenderGroup;
use crate::progress::Progress;
use crate::protocol::unix_micros;
use crate::recorder::{LatencySummary, Recorder, show_ms};
use crate::report::Outcome;
use crate::roles::Role;

/// How long the background traffic and the measured sender run before
/// measuring starts.
const WARM_UP: Duration = Duration::from_secs(2);

/// The `latency` result, as written to `--json`.
#[derive(Serialize)]
struct LatencyResult {
    scenario: &'static str,
    background_clients: u64,
    background_rate: f64,
    samples: u64,
    sent: u64,
    lost: u64,
    #[serde(flatten)]
    latency: LatencySummary,
    background_expected: u64,
    background_delivered: u64,
    background_p99_ms: Option<f64>,
    errors: usize,
}

/// The background: its clients, what they record, and its senders' pace.
struct Background {
    /// Receivers and senders.
    fleet: Fleet,
    /// What the receivers record.
    recorder: Arc<Recorder>,
    /// The senders' pace, when there is a background rate.
    group: Option<SenderGroup>,
}

/// Runs the scenario.
pub async fn run(args: LatencyArgs) -> anyhow::Result<Outcome> {
    ensure!(args.secs > 0.0 && args.rate > 0.0, "--secs and --rate must be positive");
    ensure!(args.background_rate >= 0.0, "--background-rate must not be negative");
    let token = run_token();
    let limits = limits(&args.common, Some(args.concurrency), Gate::None);
    let recorder = Arc::new(Recorder::new()?);
    let mut probe = fleet(limits.clone())?;
    let room: Arc<str> = format!("lat-{token}").into();
    // Jittered: evenly spaced, the probe would meet the background at a few
    // fixed points of its cycle (see `SenderGroup::jittered`).
    let mut group = SenderGroup::new(1, &room).jittered();
    probe.spawn(Member {
        target: args.to,
        name: format!("lat-rx-{token}"),
        room: Some(room.clone()),
        role: Role::Receiver(recorder.clone()),
    });
    probe.spawn(Member {
        target: args.from,
        name: format!("lat-tx-{token}"),
        room: Some(room),
        role: Role::Sender(group.seat(0)),
    });
    let mut background = background(&args, &token, fleet(limits)?)?;
    let progress = {
        let (counters, background_counters) = (probe.counters().clone(), background.fleet.counters().clone());
        let recorder = recorder.clone();
        Progress::start(move || {
            let p99 = recorder.merged().ok().and_then(|histogram| LatencySummary::of(&histogram).p99_ms);
            format!(
                "latency: {} + {} background connected, {} samples, p99 {} ms, {} errors",
                counters.connected.load(Ordering::Relaxed),
                background_counters.connected.load(Ordering::Relaxed),
                recorder.delivered(),
                show_ms(p99),
                counters.errors() + background_counters.errors()
            )
        })
    };
    probe.wait_settled().await;
    background.fleet.wait_settled().await;
    if probe.counters().connected.load(Ordering::Relaxed) < 2 {
        progress.finish();
        print_errors(&[&probe, &background.fleet]);
        probe.shutdown().await;
        background.fleet.shutdown().await;
        bail!("the measuring sender or receiver could not connect");
    }
    tokio::time::sleep(SETTLE).await;

    let background_senders = background.group.as_ref().map_or(0, SenderGroup::live);
    let background_receivers =
        background.fleet.counters().connected.load(Ordering::Relaxed).saturating_sub(background_senders)
            as u64;
    let length = Duration::from_secs_f64(args.secs);
    if let Some(group) = &mut background.group {
        background.recorder.open_window(unix_micros());
        group.start(args.background_rate, WARM_UP + length);
    }
    // The first messages on a path pay for cold caches (script loads on
    // Redis, Node's JIT): they are sent, and not counted.
    group.start(args.rate, WARM_UP);
    tokio::time::sleep(WARM_UP).await;
    group.stop().await;
    recorder.open_window(unix_micros());
    group.start(args.rate, length);
    tokio::time::sleep(length).await;
    let sent = group.stop().await;
    let background_sent = match &mut background.group {
        Some(group) => group.stop().await,
        None => 0,
    };
    let background_expected = background_sent * background_receivers;
    wait_for_deliveries(&[(&recorder, sent), (&background.recorder, background_expected)]).await;
    let histogram = recorder.close_window()?;
    let background_histogram = background.recorder.close_window()?;
    progress.finish();
    print_errors(&[&probe, &background.fleet]);
    let errors = probe.counters().errors() + background.fleet.counters().errors();
    probe.shutdown().await;
    background.fleet.shutdown().await;

    let latency = LatencySummary::of(&histogram);
    let result = LatencyResult {
        scenario: "latency",
        background_clients: args.background_clients,
        background_rate: args.background_rate,
        samples: histogram.len(),
        sent,
        lost: sent.saturating_sub(histogram.len()),
        latency,
        background_expected,
        background_delivered: background_histogram.len(),
        background_p99_ms: LatencySummary::of(&background_histogram).p99_ms,
        errors,
    };
    let summary = format!(
        "latency: {} samples, p50 {} ms, p99 {} ms, max {} ms (background {} clients at {}/s), {errors} errors",
        result.samples,
        show_ms(latency.p50_ms),
        show_ms(latency.p99_ms),
        show_ms(latency.max_ms),
        args.background_clients,
        args.background_rate
    );
    Outcome::new(&result, summary)
}

/// Spawns the background: receivers split across both servers, and one
/// sender per server when there is a background rate.
fn background(args: &LatencyArgs, token: &str, mut fleet: Fleet) -> anyhow::Result<Background> {
    let recorder = Arc::new(Recorder::new()?);
    let room: Arc<str> = format!("bg-{token}").into();
    let targets = [&args.from, &args.to];
    for i in 0..args.background_clients as usize {
        fleet.spawn(Member {
            target: *targets[i % 2],
            name: format!("bg-{i}-{token}"),
            room: Some(room.clone()),
            role: Role::Receiver(recorder.clone()),
        });
    }
    let group = (args.background_rate > 0.0).then(|| {
        let group = SenderGroup::new(targets.len(), &room);
        for (j, target) in targets.iter().enumerate() {
            fleet.spawn(Member {
                target: **target,
                name: format!("bgs-{j}-{token}"),
                room: Some(room.clone()),
                role: Role::Sender(group.seat(j)),
            });
        }
        group
    });
    Ok(Background { fleet, recorder, group })
}
