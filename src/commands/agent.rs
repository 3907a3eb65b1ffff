//! `cdnwatch agent`: probes the regions an agent speaks for and sends the results to the service,
//! until SIGTERM or SIGINT (README: "Running agents in regions").

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Signals;
use crate::agent::{self, AgentOptions, spool};
use crate::auth::AGENT_TOKEN_ENV;
use crate::config::{MIN_AGENT_TOKEN_CHARS, read_token_file, valid_agent_id};

/// `cdnwatch agent`'s options.
#[derive(clap::Args)]
pub(crate) struct AgentArgs {
    /// The service's base URL (its internal listener), e.g. `https://cdnwatch.example:8080`.
    #[arg(long)]
    server: String,
    /// This agent's id, as the service's `[[agents]]` names it.
    #[arg(long)]
    id: String,
    /// The file holding this agent's token (else `CDNWATCH_AGENT_TOKEN`).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Where batches are spooled until the service acknowledges them.
    #[arg(long, default_value = "agent-spool")]
    spool: PathBuf,
    /// The spool's bound in MiB; beyond it the oldest batches are dropped (counted).
    #[arg(long, default_value_t = spool::DEFAULT_MAX_BYTES / 1024 / 1024)]
    spool_max_mib: u64,
    /// The spool's bound in hours; older batches are dropped (counted).
    #[arg(long, default_value_t = spool::DEFAULT_MAX_AGE.as_secs() / 3600)]
    spool_max_hours: u64,
    /// A PEM file of the CA that signed the service's certificate (besides Mozilla's roots).
    #[arg(long)]
    server_ca: Option<PathBuf>,
    /// Tests only: this agent's clock runs this many ms off the system's.
    #[arg(long, hide = true, default_value_t = 0, allow_hyphen_values = true)]
    clock_offset_ms: i64,
    /// Stop (as on SIGTERM) when this process's parent is no longer this pid: `demo` starts its
    /// agents with its own, so a demo killed with -9 leaves no agent behind (a pid, not "the
    /// parent at start": a demo killed while the agent was still starting is gone already then).
    #[arg(long, hide = true)]
    parent_pid: Option<u32>,
}

/// Resolves once this process's parent is no longer `parent` (it died: the process was
/// re-parented). Polled each second: std has no parent-death signal, and a second is soon enough
/// for a demo's agents.
async fn parent_gone(parent: u32) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    while std::os::unix::process::parent_id() == parent {
        every.tick().await;
    }
}

/// Runs the agent until SIGTERM/SIGINT; exit 0 after a clean stop, 2 on bad input.
pub(super) async fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::install()?;
    if !valid_agent_id(&args.id) {
        eprintln!("--id `{}`: 1-64 of A-Z a-z 0-9 - _ .", args.id);
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let token = match token(&args) {
        Ok(t) => t,
        Err(why) => {
            eprintln!("{why}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let extra = match &args.server_ca {
        Some(path) => crate::trust::read_pem_certs(path).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    let opts = AgentOptions {
        server: args.server.clone(),
        id: args.id.clone(),
        token,
        spool_dir: args.spool.clone(),
        spool_max_bytes: args.spool_max_mib.saturating_mul(1024 * 1024),
        spool_max_age: Duration::from_secs(args.spool_max_hours.saturating_mul(3600)),
        roots: crate::trust::root_store(true, &extra),
        clock: if args.clock_offset_ms == 0 {
            crate::clock::Clock::system()
        } else {
            crate::clock::Clock::off_by_ms(args.clock_offset_ms)
        },
    };
    let stop = CancellationToken::new();
    let running = tokio::spawn(agent::run(opts, stop.clone()));
    println!("cdnwatch agent {} reporting to {}", args.id, args.server);
    let mut running = running;
    let orphaned = async {
        if let Some(parent) = args.parent_pid {
            parent_gone(parent).await;
            tracing::info!("the process that started this agent is gone: stopping");
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = signals.stopped() => {}
        () = orphaned => {}
        // It stops by itself only on an error (a spool it cannot open).
        done = &mut running => { done??; return Ok(ExitCode::SUCCESS); }
    }
    stop.cancel();
    running.await??;
    Ok(ExitCode::SUCCESS)
}

/// The token: from `--token-file`, else `CDNWATCH_AGENT_TOKEN` (or `_FILE`).
fn token(args: &AgentArgs) -> Result<String, String> {
    if let Some(path) = &args.token_file {
        return read_token_file(path);
    }
    match std::env::var(AGENT_TOKEN_ENV) {
        Ok(t) if t.trim().chars().count() >= MIN_AGENT_TOKEN_CHARS => Ok(t.trim().to_string()),
        Ok(t) => Err(format!(
            "{AGENT_TOKEN_ENV}: the token has {} characters; at least {MIN_AGENT_TOKEN_CHARS} are required",
            t.trim().chars().count()
        )),
        Err(_) => match std::env::var(format!("{AGENT_TOKEN_ENV}_FILE")) {
            Ok(path) => read_token_file(std::path::Path::new(&path)),
            Err(_) => Err(format!(
                "no token: give --token-file or set {AGENT_TOKEN_ENV}"
            )),
        },
    }
}
