//! The `cdnwatch` binary: parses the command line, sets up tracing, and hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use cdnwatch::app::{self, Selection};

// mimalloc rather than glibc's malloc: the config-center endpoint's cost per request is mostly
// small allocations, and mimalloc's per-thread free lists make them cheaper (see README, benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cdnwatch",
    version,
    about = "Keeps static content reachable when a CDN vendor fails"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per command line: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Validate a config file: every problem with line, column and field, or a summary.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Probe once and print one row per (region, resolver, edge IP); exit 1 if any probe failed.
    Probe {
        #[arg(long)]
        config: PathBuf,
        /// Only this host (domain).
        #[arg(long)]
        host: Option<String>,
        /// Only this probe path.
        #[arg(long)]
        path: Option<String>,
        /// Only this region.
        #[arg(long)]
        region: Option<String>,
        /// Only resolvers with this name.
        #[arg(long)]
        resolver: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run continuously: scheduler, store and HTTP server, until SIGTERM/SIGINT; SIGHUP reloads.
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// Where the database lives.
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Address of the HTTP server (health, status API).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// This prober's identity, stored with every result.
        #[arg(long, default_value = "local")]
        prober_id: String,
        /// Make the next config version larger than this (after restoring an older database).
        #[arg(long)]
        bump_version: Option<i64>,
    },
    /// The simulated two-vendor CDN on loopback, and its fault injection.
    Lab(cdnwatch::lab::cli::LabArgs),
    /// The simulated CDN and the whole service in one process: the README's first command.
    Demo(cdnwatch::demo::DemoArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,hickory_server=warn,hickory_proto=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Command::CheckConfig { file } = &cli.command {
        return app::check_config(file);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::CheckConfig { .. } => unreachable!("handled above"),
            Command::Probe {
                config,
                host,
                path,
                region,
                resolver,
                json,
            } => {
                let selection = Selection {
                    host,
                    path,
                    region,
                    resolver,
                };
                app::probe(&config, &selection, json).await
            }
            Command::Serve {
                config,
                data,
                listen,
                prober_id,
                bump_version,
            } => {
                let tokens = cdnwatch::auth::Tokens::from_env().map_err(anyhow::Error::msg)?;
                let opts = cdnwatch::service::ServeOptions {
                    config_path: config,
                    data_dir: data,
                    listen,
                    prober_id,
                    tokens,
                    bump_version,
                };
                cdnwatch::service::serve(opts).await
            }
            Command::Lab(args) => cdnwatch::lab::cli::run(args).await,
            Command::Demo(args) => cdnwatch::demo::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
