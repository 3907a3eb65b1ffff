//! `cdnwatch serve`: the whole service until SIGTERM or SIGINT; SIGHUP reloads the config.

use std::process::ExitCode;

use super::Signals;
use crate::startup::{self, ServeOptions};

/// Starts the service, prints its address, and stops it in order on SIGTERM or SIGINT.
pub(super) async fn run(opts: ServeOptions) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::install()?;
    let running = startup::start(opts).await?;
    tracing::info!(addr = %running.addr, "serving");
    println!("cdnwatch listening on http://{}", running.addr);
    if let Some(public) = running.public_addr {
        tracing::info!(addr = %public, "serving the public face");
        println!("cdnwatch public listener on http://{public}");
    }
    signals.wait(&running).await;
    tracing::info!("shutting down: finishing running probes, flushing the store");
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
