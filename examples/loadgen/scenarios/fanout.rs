//! `fanout`: receivers in one room, senders at rising combined rates; per
//! step, how many deliveries arrived and how late.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::ensure;
use serde::Serialize;

use super::{SETTLE, fleet, limits, print_errors, run_token, wait_for_deliveries};
use crate::cli::FanoutArgs;
use crate::fleet::{Fleet, Gate, Member};
use crate::pacing::SenderGroup;
use crate::progress::{Progress, RateMeter};
use crate::protocol::unix_micros;
use crate::recorder::{LatencySummary, Recorder, show_ms};
use crate::report::Outcome;
use crate::roles::Role;

/// Share of expected deliveries that may be lost before stepping stops.
const MAX_LOSS: f64 = 0.01;

/// One rate's result.
#[derive(Debug, Serialize)]
struct Step {
    offered_rate: f64,
    sent: u64,
    expected: u64,
    delivered: u64,
    deliveries_per_sec: f64,
    lost: u64,
    #[serde(flatten)]
    latency: LatencySummary,
}

/// The `fanout` result, as written to `--json`.
#[derive(Serialize)]
struct FanoutResult {
    scenario: &'static str,
    clients: u64,
    instances: usize,
    senders: u64,
    receivers_connected: usize,
    steps: Vec<Step>,
    errors: usize,
}

/// Runs the scenario.
pub async fn run(args: FanoutArgs) -> anyhow::Result<Outcome> {
    ensure!(args.step_secs > 0.0, "--step-secs must be positive");
    ensure!(args.rates.iter().all(|rate| *rate > 0.0), "--rates must be positive");
    let token = run_token();
    let limits = limits(&args.common, Some(args.concurrency), Gate::None);
    let recorder = Arc::new(Recorder::new()?);
    let mut receivers = fleet(limits.clone())?;
    let mut senders = fleet(limits)?;
    let mut group = SenderGroup::new(args.senders as usize, &args.room);
    let room: Arc<str> = args.room.as_str().into();
    let urls = &args.urls;
    for i in 0..args.clients as usize {
        receivers.spawn(Member {
            target: urls[i % urls.len()],
            name: format!("fan-{i}-{token}"),
            room: Some(room.clone()),
            role: Role::Receiver(recorder.clone()),
        });
    }
    for j in 0..args.senders as usize {
        senders.spawn(Member {
            target: urls[j % urls.len()],
            name: format!("snd-{j}-{token}"),
            room: Some(room.clone()),
            role: Role::Sender(group.seat(j)),
        });
    }
    let offered = Arc::new(AtomicU64::new(0));
    let progress = show_progress(&receivers, &senders, &recorder, &offered);
    receivers.wait_settled().await;
    senders.wait_settled().await;
    let receiver_count = receivers.counters().connected.load(Ordering::Relaxed);
    let mut steps = Vec::new();
    if receiver_count > 0 && group.live() > 0 {
        tokio::time::sleep(SETTLE).await;
        for &rate in &args.rates {
            offered.store(rate as u64, Ordering::Relaxed);
            let step = run_step(&mut group, &recorder, &receivers, rate, args.step_secs).await?;
            let saturated = step.latency.p99_ms.is_some_and(|p99| p99 > args.stop_p99_ms)
                || step.lost as f64 > step.expected as f64 * MAX_LOSS;
            progress.note(&format!(
                "rate {rate}/s: sent {}, delivered {}/{}, p50 {} ms, p99 {} ms, max {} ms",
                step.sent,
                step.delivered,
                step.expected,
                show_ms(step.latency.p50_ms),
                show_ms(step.latency.p99_ms),
                show_ms(step.latency.max_ms)
            ));
            steps.push(step);
            if saturated {
                break;
            }
        }
    } else {
        eprintln!("no receivers or no senders connected: nothing to measure");
    }
    progress.finish();
    print_errors(&[&receivers, &senders]);
    let errors = receivers.counters().errors() + senders.counters().errors();
    receivers.shutdown().await;
    senders.shutdown().await;

    let best = steps.iter().map(|step| step.deliveries_per_sec).fold(0.0, f64::max);
    let summary = format!(
        "fanout: {} steps, best {best:.0} deliveries/s to {receiver_count} receivers, {errors} errors",
        steps.len()
    );
    let result = FanoutResult {
        scenario: "fanout",
        clients: args.clients,
        instances: args.urls.len(),
        senders: args.senders,
        receivers_connected: receiver_count,
        steps,
        errors,
    };
    Outcome::new(&result, summary)
}

/// Sends at `rate` for `secs`, then waits for stragglers and measures.
async fn run_step(
    group: &mut SenderGroup,
    recorder: &Recorder,
    receivers: &Fleet,
    rate: f64,
    secs: f64,
) -> anyhow::Result<Step> {
    recorder.open_window(unix_micros());
    let receiver_count = receivers.counters().connected.load(Ordering::Relaxed) as u64;
    let length = Duration::from_secs_f64(secs);
    group.start(rate, length);
    tokio::time::sleep(length).await;
    let sent = group.stop().await;
    let expected = sent * receiver_count;
    wait_for_deliveries(&[(recorder, expected)]).await;
    let histogram = recorder.close_window()?;
    let delivered = histogram.len();
    Ok(Step {
        offered_rate: rate,
        sent,
        expected,
        delivered,
        deliveries_per_sec: delivered as f64 / secs,
        lost: expected.saturating_sub(delivered),
        latency: LatencySummary::of(&histogram),
    })
}

/// The progress line: clients up, offered rate, deliveries a second, p99 so far.
fn show_progress(
    receivers: &Fleet,
    senders: &Fleet,
    recorder: &Arc<Recorder>,
    offered: &Arc<AtomicU64>,
) -> Progress {
    let (receiving, sending) = (receivers.counters().clone(), senders.counters().clone());
    let total = receivers.size() + senders.size();
    let (recorder, offered) = (recorder.clone(), offered.clone());
    let mut meter = RateMeter::new();
    Progress::start(move || {
        let connected =
            receiving.connected.load(Ordering::Relaxed) + sending.connected.load(Ordering::Relaxed);
        let errors = receiving.errors() + sending.errors();
        let delivered = recorder.delivered();
        let per_sec = meter.rate(delivered);
        let p99 = recorder.merged().ok().and_then(|histogram| LatencySummary::of(&histogram).p99_ms);
        format!(
            "fanout: {connected}/{total} connected, rate {}/s, {per_sec:.0} deliveries/s, p99 {} ms, {errors} errors",
            offered.load(Ordering::Relaxed),
            show_ms(p99)
        )
    })
}
