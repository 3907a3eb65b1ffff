//! Regional agents as real processes (issue 11): `cdnwatch lab`, `cdnwatch serve` and one
//! `cdnwatch agent` per region, each its own process on loopback. The service probes nothing
//! itself; the agents' evidence decides, survives the service stopping and dying, and an agent
//! that dies or whose clock is off is handled as the README says. This file holds the topology
//! they share; `processes` runs them, `refusals` speaks the agents' API in-process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cdnwatch::config::Config;
use serde_json::Value;

use crate::harness::agents::AgentProcess;
use crate::harness::process::{LabProcess, ServeProcess};
use crate::harness::*;

mod processes;
mod refusals;

/// The lab, the service on it with an agent per region, and the agents.
struct Topology {
    lab: LabProcess,
    dir: tempfile::TempDir,
    config: PathBuf,
    serve: ServeProcess,
    agents: BTreeMap<String, AgentProcess>,
    http: reqwest::Client,
}

const REGIONS: [&str; 3] = ["east", "north", "south"];

impl Topology {
    /// Probing every `interval_ms`; `extra(id)` are more arguments for an agent.
    fn start(interval_ms: u64, extra: impl Fn(&str) -> Vec<String>) -> Topology {
        // Starting processes and waiting for their first lines blocks: off the async threads.
        tokio::task::block_in_place(|| Self::start_blocking(interval_ms, extra))
    }

    fn start_blocking(interval_ms: u64, extra: impl Fn(&str) -> Vec<String>) -> Topology {
        let lab = LabProcess::start();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cdnwatch.toml");
        let mut c = Config::load(&lab.config).unwrap();
        c.probe.interval_ms = interval_ms;
        with_an_agent_per_region(&mut c);
        let lab_dir = lab.config.parent().unwrap();
        for v in &mut c.vendors {
            v.ca_file = v.ca_file.as_ref().map(|f| lab_dir.join(f));
        }
        std::fs::write(&config, c.to_toml()).unwrap();
        let serve = ServeProcess::start(&config, &dir.path().join("data"));
        let mut t = Topology {
            lab,
            config,
            serve,
            agents: BTreeMap::new(),
            http: {
                cdnwatch::probe::tls::install_default_provider();
                // No kept-alive connections: the service is stopped for longer than its idle
                // timeout and killed in these tests, and a pooled connection it closed meanwhile
                // would fail the next look.
                reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap()
            },
            dir,
        };
        for r in REGIONS {
            let id = format!("agent-{r}");
            t.start_agent(&id, &extra(&id));
        }
        t
    }

    fn start_agent(&mut self, id: &str, extra: &[String]) {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let agent = AgentProcess::start(&self.serve.base, id, self.dir.path(), &extra);
        self.agents.insert(id.to_string(), agent);
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("data").join("cdnwatch.db")
    }

    async fn get(&self, path: &str) -> Value {
        serde_json::from_str(&self.text(path).await).unwrap()
    }

    async fn text(&self, path: &str) -> String {
        let url = format!("{}{path}", self.serve.base);
        let resp = self.http.get(url).send().await.unwrap();
        resp.text().await.unwrap()
    }

    /// `GET /api/v1/agents`, by id.
    async fn agents_view(&self) -> BTreeMap<String, Value> {
        let list = self.get("/api/v1/agents").await;
        let list = list.as_array().unwrap().iter();
        list.map(|a| (a["id"].as_str().unwrap().to_string(), a.clone()))
            .collect()
    }

    async fn wait_agents(&self, limit: Duration, what: &str, ok: impl Fn(&Value) -> bool) {
        eventually(limit, what, async || {
            let view = self.agents_view().await;
            view.values()
                .all(&ok)
                .then_some(())
                .ok_or(format!("{view:#?}"))
        })
        .await
    }

    async fn events(&self) -> Vec<Value> {
        let v = self.get("/api/v1/events?limit=500").await;
        v.as_array().cloned().unwrap_or_default()
    }

    async fn document(&self) -> Value {
        self.get("/api/v1/hostlist").await
    }
}

/// The batches an agent's log says it spooled durably: (boot, seq) → results.
fn spooled(log: &str) -> BTreeMap<(String, u64), u64> {
    let mut out = BTreeMap::new();
    for line in log.lines() {
        let Some(rest) = line.split("batch spooled: boot ").nth(1) else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if let [boot, "seq", seq, "results", n, ..] = words[..] {
            out.insert((boot.to_string(), seq.parse().unwrap()), n.parse().unwrap());
        }
    }
    out
}

/// What the store holds of an agent: its batches (boot, seq) → records, and its result rows.
async fn stored(db: &Path, agent: &str) -> (BTreeMap<(String, u64), u64>, u64) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT boot, seq, records FROM agent_batches WHERE agent = ?")
            .bind(agent)
            .fetch_all(&pool)
            .await
            .unwrap();
    let results: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM results r JOIN probers p ON p.id = r.prober_id WHERE p.name = ?",
    )
    .bind(agent)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    let batches = rows
        .into_iter()
        .map(|(b, s, n)| ((b, s as u64), n as u64))
        .collect();
    (batches, results as u64)
}

/// Waits until every agent is up and reports an empty backlog.
async fn drained(t: &Topology, limit: Duration) {
    t.wait_agents(limit, "every agent up with its backlog sent", |a| {
        a["up"] == true && a["backlog_records"] == 0
    })
    .await;
}
