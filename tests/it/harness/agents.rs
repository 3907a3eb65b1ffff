//! Regional agents for the tests: [`with_agent`] configures one (its token [`AGENT_TOKEN`]'s
//! digest), [`TestAgent`] speaks the agents' API from the test itself (heartbeats, gzip batches),
//! and [`AgentProcess`] runs the real `cdnwatch agent` binary.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cdnwatch::agent::wire::{Batch, ControlCheck, Probed};
use cdnwatch::config::{AgentSettings, Config};
use cdnwatch::model::EdgeResult;
use sha2::Digest as _;

use super::app::AGENT_TOKEN;
use super::process::{BIN, Process};

/// Adds agent `id` speaking for `regions`, with [`AGENT_TOKEN`] (as its digest).
pub fn with_agent(c: &mut Config, id: &str, regions: &[&str]) {
    c.agents.push(AgentSettings {
        id: id.into(),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        token_sha256: vec![hex::encode(sha2::Sha256::digest(AGENT_TOKEN.as_bytes()))],
        token_files: Vec::new(),
    });
}

/// One agent per lab region (`agent-east` for cn-east …): the service probes nothing itself.
pub fn with_an_agent_per_region(c: &mut Config) {
    for r in ["east", "north", "south"] {
        with_agent(c, &format!("agent-{r}"), &[&format!("cn-{r}")]);
    }
}

/// The agents' API, spoken by the test.
pub struct TestAgent {
    base: String,
    pub id: String,
    http: reqwest::Client,
    pub boot: String,
    pub seq: u64,
}

impl TestAgent {
    pub fn new(base: &str, id: &str, http: &reqwest::Client) -> TestAgent {
        TestAgent {
            base: base.to_string(),
            id: id.to_string(),
            http: http.clone(),
            boot: format!("test{}", fastrand::u32(..)),
            seq: 0,
        }
    }

    pub fn url(&self, what: &str) -> String {
        format!("{}/api/v1/agents/{}/{what}", self.base, self.id)
    }

    /// A heartbeat sent at `sent_ms` on the agent's clock; asserts it was taken.
    pub async fn heartbeat(&self, sent_ms: i64) -> serde_json::Value {
        let resp = self.heartbeat_with(sent_ms, AGENT_TOKEN).await;
        let status = resp.status();
        assert_eq!(status, 200, "heartbeat: {}", resp.text().await.unwrap());
        resp.json().await.unwrap()
    }

    /// A heartbeat with `token`, its answer as it is.
    pub async fn heartbeat_with(&self, sent_ms: i64, token: &str) -> reqwest::Response {
        let hb = serde_json::json!({
            "boot": self.boot, "version": "test", "assignmentVersion": null,
            "backlogRecords": 0, "inFlight": 0, "concurrency": 1, "sentMs": sent_ms, "previous": null,
        });
        (self.http.post(self.url("heartbeat")))
            .bearer_auth(token)
            .json(&hb)
            .send()
            .await
            .unwrap()
    }

    /// The next batch of `results` (slot = their `at`), gzip-compressed, with `token`.
    pub async fn send_with(&mut self, results: Vec<EdgeResult>, token: &str) -> reqwest::Response {
        let batch = self.batch(results);
        self.seq += 1;
        self.post(&batch, token).await
    }

    /// [`TestAgent::send_with`] with [`AGENT_TOKEN`].
    pub async fn send(&mut self, results: Vec<EdgeResult>) -> reqwest::Response {
        self.send_with(results, AGENT_TOKEN).await
    }

    /// The batch the next send would make: the results, and a passed control check of each of
    /// their regions (as a real agent's batches carry its control checks).
    pub fn batch(&self, results: Vec<EdgeResult>) -> Batch {
        let mut controls: Vec<ControlCheck> = Vec::new();
        for r in &results {
            if !controls.iter().any(|c| c.region == r.region) {
                controls.push(ControlCheck {
                    region: r.region.clone(),
                    at: r.at,
                    ok: true,
                });
            }
        }
        Batch {
            boot: self.boot.clone(),
            seq: self.seq,
            assignment_version: String::new(),
            results: Probed::probe(results, std::time::Duration::ZERO),
            controls,
        }
    }

    /// Posts `batch` as it is (again, for a re-send).
    pub async fn post(&self, batch: &Batch, token: &str) -> reqwest::Response {
        (self.http.post(self.url("results")))
            .bearer_auth(token)
            .header("content-encoding", "gzip")
            .header("content-type", "application/json")
            .body(gzip(&serde_json::to_vec(batch).unwrap()))
            .send()
            .await
            .unwrap()
    }
}

/// `bytes`, gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A `cdnwatch agent` process, its stderr in a log file beside its spool.
pub struct AgentProcess {
    pub process: Process,
    pub spool: PathBuf,
    log: PathBuf,
}

impl AgentProcess {
    /// `cdnwatch agent --server <server> --id <id>` with [`AGENT_TOKEN`] and its spool in `dir`;
    /// `extra` are more arguments (`--clock-offset-ms …`).
    pub fn start(server: &str, id: &str, dir: &Path, extra: &[&str]) -> AgentProcess {
        let spool = dir.join(format!("spool-{id}"));
        let log = dir.join(format!("agent-{id}-{}.log", fastrand::u32(..)));
        let mut cmd = Command::new(BIN);
        cmd.args(["agent", "--server", server, "--id", id, "--spool"])
            .arg(&spool)
            .args(extra)
            .env("CDNWATCH_AGENT_TOKEN", AGENT_TOKEN)
            .env("RUST_LOG", "info,cdnwatch::agent=debug")
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::piped());
        let (process, _) = Process::spawn_until(cmd, |line| line.contains("reporting to"));
        AgentProcess {
            process,
            spool,
            log,
        }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
