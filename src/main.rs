//! The `chatwire` binary: parse settings, set up logging, run until stopped.

use clap::Parser;

use chatwire::app::Application;
use chatwire::config::Config;
use chatwire::{shutdown, telemetry};

/// jemalloc, with background threads that hand freed memory back to the
/// system: after a burst (a reconnect storm queues a `user joined` for every
/// socket) glibc's allocator kept the peak resident. See docs/BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown::signal()).await?;
    Ok(())
}
