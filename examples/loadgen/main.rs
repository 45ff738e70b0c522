//! Load generator for chatwire and its Node.js socket.io baseline: thousands
//! of raw-websocket socket.io v4 clients, one task each, against loopback
//! servers. Run with `cargo run --release --example loadgen -- <scenario> ...`.
//!
//! Module map:
//! - `cli`: the command line, one subcommand per scenario;
//! - `scenarios`: `idle`, `fanout`, `latency`, `storm`;
//! - `fleet`: client tasks (handshake limits, start gate, shutdown);
//! - `roles`: what a logged-in client does (idle, receive, send);
//! - `pacing`: senders sharing a rate, evenly interleaved;
//! - `connection`, `protocol`, `target`, `ws`: the socket.io client itself,
//!   on a minimal websocket client;
//! - `recorder`, `counters`: latency histograms, handshake counts and errors;
//! - `progress`, `report`, `rss`: output and server memory.

mod cli;
mod connection;
mod counters;
mod fleet;
mod pacing;
mod progress;
mod protocol;
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
    };
    outcome.publish(json_path.as_deref())
}
