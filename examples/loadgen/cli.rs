//! The command line: one subcommand per scenario.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::target::Target;

/// Load generator for socket.io chat servers (chatwire and its Node.js
/// baseline): raw websocket clients, loopback servers only.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Connect and log in many clients, then measure the server's memory.
    Idle(IdleArgs),
    /// Receivers in one room, senders at rising rates: throughput and latency.
    Fanout(FanoutArgs),
    /// Latency of one sender → one receiver across instances, under optional load.
    Latency(LatencyArgs),
    /// Many clients connecting and logging in at the same moment.
    Storm(StormArgs),
    /// Many idle connections logging in at the same moment: login rate,
    /// memory per connection before and after, time until the server is quiet.
    Loginstorm(LoginstormArgs),
    /// Many small rooms whose members are spread over the instances, each
    /// with its own sender: what delivery costs each instance (issue 18's
    /// scale model).
    Rooms(RoomsArgs),
}

/// Options every scenario takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seconds one handshake (TCP connect to the last ack) may take.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub handshake_timeout_secs: u64,
}

/// `idle`.
#[derive(Debug, Args)]
pub struct IdleArgs {
    /// The server.
    #[arg(long)]
    pub url: Target,
    /// Clients to connect.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub clients: u64,
    /// The server's process id, to read its memory (VmRSS) from /proc.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: u64,
    /// Seconds to keep the clients connected after measuring (to profile
    /// the server by hand meanwhile).
    #[arg(long, default_value_t = 0)]
    pub hold_secs: u64,
    /// Stop starting new clients after this many seconds and measure with
    /// those that got in (a slow server must not make the run endless).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub login_budget_secs: Option<u64>,
    /// Options every scenario takes.
    #[command(flatten)]
    pub common: Common,
}

/// `fanout`.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// A server; repeat for several instances (clients go round-robin).
    #[arg(long = "url", required = true)]
    pub urls: Vec<Target>,
    /// Receivers in the room.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub clients: u64,
    /// Combined send rates to step through, messages a second.
    #[arg(long, value_delimiter = ',', required = true)]
    pub rates: Vec<f64>,
    /// Seconds each rate is held.
    #[arg(long, default_value_t = 5.0)]
    pub step_secs: f64,
    /// Sending sockets sharing the rate.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    pub senders: u64,
    /// The room.
    #[arg(long, default_value = "bench")]
    pub room: String,
    /// Stop stepping up once p99 latency exceeds this.
    #[arg(long, default_value_t = 1000.0)]
    pub stop_p99_ms: f64,
    /// Handshakes in flight at once while setting up.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: u64,
    /// Options every scenario takes.
    #[command(flatten)]
    pub common: Common,
}

/// `latency`.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// The sender's server.
    #[arg(long)]
    pub from: Target,
    /// The receiver's server.
    #[arg(long)]
    pub to: Target,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
    /// Messages a second from the sender.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Receivers of background traffic, split across both servers.
    #[arg(long, default_value_t = 0)]
    pub background_clients: u64,
    /// Background messages a second (one sender per server).
    #[arg(long, default_value_t = 0.0)]
    pub background_rate: f64,
    /// Handshakes in flight at once while setting up.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: u64,
    /// Options every scenario takes.
    #[command(flatten)]
    pub common: Common,
}

/// `storm`.
#[derive(Debug, Args)]
pub struct StormArgs {
    /// A server; repeat for several instances (clients go round-robin).
    #[arg(long = "url", required = true)]
    pub urls: Vec<Target>,
    /// Clients connecting at once.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub clients: u64,
    /// Options every scenario takes.
    #[command(flatten)]
    pub common: Common,
}

/// `loginstorm`.
#[derive(Debug, Args)]
pub struct LoginstormArgs {
    /// The server.
    #[arg(long)]
    pub url: Target,
    /// Clients to connect, then log in at once (up to the open-files limit
    /// less a few dozen: each is a socket in this process).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub clients: u64,
    /// The server's process id, to read its memory and CPU time from /proc.
    #[arg(long)]
    pub pid: u32,
    /// Connections being opened at once (logins all start together).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: u64,
    /// The longest wait, in each phase, for the server to go quiet; memory
    /// is read then anyway and the run is marked not quiet.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub quiet_limit_secs: u64,
    /// Seconds to keep the clients connected after measuring (to profile
    /// the server by hand meanwhile).
    #[arg(long, default_value_t = 0)]
    pub hold_secs: u64,
    /// Options every scenario takes (the handshake timeout bounds each
    /// connection, and each login from `add user` to its ack).
    #[command(flatten)]
    pub common: Common,
}

/// `rooms`.
#[derive(Debug, Args)]
pub struct RoomsArgs {
    /// A server; repeat for several instances. Room `r`'s members are on
    /// instances `r`, `r + 1`, … (round-robin), its sender on instance `r`.
    #[arg(long = "url", required = true)]
    pub urls: Vec<Target>,
    /// Rooms.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub rooms: u64,
    /// Receivers in each room (2 models a private conversation).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub room_size: u64,
    /// Messages a second, all rooms together.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
    /// Handshakes in flight at once while setting up.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: u64,
    /// Options every scenario takes.
    #[command(flatten)]
    pub common: Common,
}
