//! The `chatwire` binary: parse settings, set up logging, start the async
//! runtime, run until stopped.

use clap::Parser;

use chatwire::app::Application;
use chatwire::config::Config;
use chatwire::{shutdown, telemetry};

/// jemalloc, with background threads that hand freed memory back to the
/// system: after a burst (a reconnect storm queues a `user joined` for every
/// socket) glibc's allocator kept the peak resident. See docs/BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    chatwire::http::raise_open_files_limit();
    runtime(config.worker_threads)?.block_on(async {
        let app = Application::build(config).await?;
        app.run_until_stopped(shutdown::signal()).await?;
        Ok(())
    })
}

/// The multi-threaded runtime, with `workers` threads (tokio's default, one
/// per core, when unset).
fn runtime(workers: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        builder.worker_threads(usize::from(workers));
    }
    builder.enable_all().build()
}
