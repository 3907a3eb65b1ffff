//! The `cdnwatch` binary: parses the command line, sets up tracing, and hands over to
//! [`cdnwatch::commands`].

use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

// mimalloc rather than glibc's malloc: the config-center endpoint's cost per request is mostly
// small allocations, and mimalloc's per-thread free lists make them cheaper (see README, benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,hickory_server=warn,hickory_proto=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    cdnwatch::commands::Cli::parse().run()
}
