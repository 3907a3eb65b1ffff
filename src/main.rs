//! The `cdnwatch` binary: parses the command line, sets up tracing, and hands over to
//! [`cdnwatch::commands`].

use std::process::ExitCode;

use clap::Parser as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

// mimalloc rather than glibc's malloc: the config-center endpoint's cost per request is mostly
// small allocations, and mimalloc's per-thread free lists make them cheaper (see README, benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What is logged when `RUST_LOG` says nothing.
const DEFAULT_LOG: &str = "info,hickory_server=warn,hickory_proto=warn";

fn main() -> ExitCode {
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(log_filter())
        .init();
    cdnwatch::commands::Cli::parse().run()
}

/// `RUST_LOG` as `target=level` directives (tracing's `Targets`, which needs no regex engine, unlike
/// `EnvFilter`: that saved a release build the `regex` crates), else [`DEFAULT_LOG`].
fn log_filter() -> Targets {
    let default = || DEFAULT_LOG.parse().expect("the default log filter parses");
    match std::env::var("RUST_LOG") {
        Err(_) => default(),
        Ok(spec) => spec.parse().unwrap_or_else(|e| {
            eprintln!("RUST_LOG={spec:?} is not a list of target=level directives ({e}); using {DEFAULT_LOG:?}");
            default()
        }),
    }
}
