//! The `chatwire` binary: parse settings, set up logging, run until stopped.

use clap::Parser;

use chatwire::app::Application;
use chatwire::config::Config;
use chatwire::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    telemetry::init(config.log_format);
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown::signal()).await?;
    Ok(())
}
