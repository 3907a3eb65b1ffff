//! The demo's agents: one per lab region, each its own `cdnwatch agent` process with its own
//! token file and spool under the data directory, stopped with SIGTERM when the demo stops.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{AgentSettings, Config};

/// One configured demo agent.
#[derive(Debug, Clone)]
pub(super) struct DemoAgent {
    id: String,
    region: String,
    token_file: PathBuf,
    spool: PathBuf,
    log: PathBuf,
}

/// A running demo agent.
pub(super) struct Child {
    agent: DemoAgent,
    process: tokio::process::Child,
}

/// Adds an agent per region of `config`, its token (fresh, 64 hex characters) in a file under
/// `data/agents/` readable by its owner only.
pub(super) fn configure(config: &mut Config, data: &Path) -> anyhow::Result<Vec<DemoAgent>> {
    let dir = std::path::absolute(data.join("agents")).context("the agents' directory")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Vec::new();
    for region in &config.regions {
        let id = format!("agent-{}", region.name.trim_start_matches("cn-"));
        let token_file = dir.join(format!("{id}.token"));
        write_secret(&token_file, &hex::encode(crate::auth::random_bytes::<32>()))?;
        out.push(DemoAgent {
            spool: dir.join(format!("spool-{id}")),
            log: dir.join(format!("{id}.log")),
            id,
            region: region.name.clone(),
            token_file,
        });
    }
    config.agents = out
        .iter()
        .map(|a| AgentSettings {
            id: a.id.clone(),
            regions: vec![a.region.clone()],
            token_sha256: Vec::new(),
            token_files: vec![a.token_file.clone()],
        })
        .collect();
    Ok(out)
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Starts each agent as a process of this binary reporting to `server`.
pub(super) fn spawn(agents: &[DemoAgent], server: &str) -> anyhow::Result<Vec<Child>> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut out = Vec::new();
    for a in agents {
        let log = std::fs::File::create(&a.log)
            .with_context(|| format!("creating {}", a.log.display()))?;
        let process = tokio::process::Command::new(&exe)
            .args(["agent", "--server", server, "--id", &a.id, "--token-file"])
            .arg(&a.token_file)
            .arg("--spool")
            .arg(&a.spool)
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting agent {}", a.id))?;
        out.push(Child {
            agent: a.clone(),
            process,
        });
    }
    Ok(out)
}

/// Says which agent probes which region, and how to stop one.
pub(super) fn print(children: &[Child]) {
    if children.is_empty() {
        println!("  agents:     none (--local): the service probes every region itself");
        return;
    }
    for c in children {
        let pid = c.process.id().unwrap_or(0);
        println!(
            "  agent:      {} probes {} (pid {pid}, log {})",
            c.agent.id,
            c.agent.region,
            c.agent.log.display()
        );
    }
    if let Some(pid) = children.first().and_then(|c| c.process.id()) {
        println!(
            "  stop one:   kill {pid}   (its region has no valid evidence within 30 s: \"no agent\" on the dashboard, nothing flips)"
        );
    }
}

/// SIGTERM to every agent, then waits for each (killing one still running after 10 s).
pub(super) async fn stop(children: Vec<Child>) {
    for c in &children {
        if let Some(pid) = c.process.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    for mut c in children {
        match tokio::time::timeout(Duration::from_secs(10), c.process.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(agent = %c.agent.id, "agent still running after SIGTERM; killing it");
                let _ = c.process.kill().await;
            }
        }
    }
}
