//! The commands, one file each: `check-config`, `probe`, `serve`, `agent`, `demo` and `lab`. This module
//! holds the command line's shape and hands each command to its file; none of them holds logic
//! beyond selection, output and exit codes.

mod agent;
mod check_config;
mod demo;
mod lab;
mod probe;
mod serve;
mod signals;

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use probe::{Selection, probe_once};
pub use signals::Signals;

/// Exit status for a run whose probes (or checks) found failures.
pub const EXIT_FAILED: u8 = 1;
/// Exit status for bad input: an unreadable or invalid config, an unknown filter value.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "cdnwatch",
    version,
    about = "Keeps static content reachable when a CDN vendor fails"
)]
/// The command line.
pub struct Cli {
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
        /// Address of the HTTP server: every route, or with `--public-listen` the internal ones
        /// (pages, config page, overrides, status, events, metrics, the agents' API, readyz).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Address of the public listener: only what app clients need (the host list, its
        /// versions and long poll, the fallback API, the keys, /healthz).
        #[arg(long)]
        public_listen: Option<std::net::SocketAddr>,
        /// This prober's identity, stored with every result.
        #[arg(long, default_value = "local")]
        prober_id: String,
        /// Make the next config version larger than this (after restoring an older database).
        #[arg(long)]
        bump_version: Option<i64>,
        /// Make a new signing key although versions were published here (apps that pinned the
        /// old key refuse every document until they ship the new one).
        #[arg(long)]
        init_key: bool,
    },
    /// A regional agent: probes the regions it speaks for and sends the results to the service.
    Agent(agent::AgentArgs),
    /// The simulated two-vendor CDN on loopback, and its fault injection.
    Lab(lab::LabArgs),
    /// The simulated CDN and the whole service in one process: the README's first command.
    Demo(demo::DemoArgs),
}

impl Cli {
    /// Runs the command. `check-config` needs no runtime; every other command runs on a new
    /// multi-threaded tokio runtime.
    pub fn run(self) -> ExitCode {
        if let Command::CheckConfig { file } = &self.command {
            return check_config::run(file);
        }
        let runtime = match tokio::runtime::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(self.command.run_async()) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

impl Command {
    async fn run_async(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::CheckConfig { file } => Ok(check_config::run(&file)),
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
                probe::run(&config, &selection, json).await
            }
            Command::Serve {
                config,
                data,
                listen,
                public_listen,
                prober_id,
                bump_version,
                init_key,
            } => {
                let tokens = crate::auth::Tokens::from_env().map_err(anyhow::Error::msg)?;
                serve::run(crate::startup::ServeOptions {
                    config_path: config,
                    data_dir: data,
                    listen,
                    public_listen,
                    prober_id,
                    tokens,
                    bump_version,
                    init_key,
                    clock: crate::clock::Clock::system(),
                })
                .await
            }
            Command::Agent(args) => agent::run(args).await,
            Command::Lab(args) => lab::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    }
}
