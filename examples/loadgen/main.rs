//! Load generator for chatwire and its Node.js socket.io baseline: thousands
//! of raw-websocket socket.io v4 clients, one task each, against loopback
//! servers. Run with `cargo run --release --example loadgen -- <scenario> ...`.
//!
//! Module map:
//! - `cli`: the command line, one subcommand per scenario;
//! - `scenarios`: `idle`, `fanout`, `latency`, `storm`, `loginstorm`;
//! - `fleet`: client tasks (handshake limits, start gate, shutdown);
//! - `roles`: what a logged-in client does (idle, receive, send);
//! - `pacing`: senders sharing a rate, evenly interleaved;
//! - `connection`, `protocol`, `target`, `ws`: the socket.io client itself,
//!   on a minimal websocket client;
//! - `recorder`, `counters`: latency histograms, handshake counts and errors;
//! - `progress`, `report`, `rss`, `quiet`: output, server memory and CPU.

mod cli;
mod connection;
mod counters;
mod fleet;
mod pacing;
mod progress;
mod protocol;
mod quiet;
mod recorder;
mod report;
mod roles;
mod rss;
mod scenarios;
mod target;
mod ws;

use clap::Parser;

use cli::{Cli, Scenario};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    raise_open_files_limit();
    let (outcome, json_path) = match cli.scenario {
        Scenario::Idle(args) => {
            let path = args.common.json.clone();
            (scenarios::idle::run(args).await?, path)
        }
        Scenario::Fanout(args) => {
            let path = args.common.json.clone();
            (scenarios::fanout::run(args).await?, path)
        }
        Scenario::Latency(args) => {
            let path = args.common.json.clone();
            (scenarios::latency::run(args).await?, path)
        }
        Scenario::Storm(args) => {
            let path = args.common.json.clone();
            (scenarios::storm::run(args).await?, path)
        }
        Scenario::Loginstorm(args) => {
            let path = args.common.json.clone();
            (scenarios::loginstorm::run(args).await?, path)
        }
        Scenario::Rooms(args) => {
            let path = args.common.json.clone();
            (scenarios::rooms::run(args).await?, path)
        }
    };
    outcome.publish(json_path.as_deref())
}

/// Every client is a socket in this process: raises the soft limit on open
/// files to the hard one (a shell's default soft limit is often 1,024).
/// Going on with a lower limit is still worth it: the clients past it fail
/// and are counted, so a failure is only reported.
fn raise_open_files_limit() {
    if let Err(err) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("cannot raise the open-files limit: {err}");
    }
}
