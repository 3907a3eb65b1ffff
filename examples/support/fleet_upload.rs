//! `bench_fleet upload`: one uploader of the ingest part, a process of its own speaking the
//! agents' API directly — its assignment, a heartbeat (two, so the service knows its clock), then
//! gzip batches of synthetic results of its region's configured series, stamped now, back to
//! back, one in flight, honouring 429/503 `Retry-After`. Prints one JSON line of what it counted.
//! Usage: bench_fleet upload --server URL --id ID --token-file F --results N [--batch 5000]

use std::collections::BTreeMap;
use std::time::Duration;

use cdnwatch::agent::wire::{Assignment, Batch, BatchAnswer, Exchange, Heartbeat, HeartbeatAnswer};
use cdnwatch::config::Config;
use cdnwatch::series::SeriesKey;

use crate::bench_io::arg;
use crate::fleet_synthetic::{gzip, probed};

/// What one uploader counted; printed as its one JSON line.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Tally {
    /// Results the service said it stored (200, durable).
    pub(crate) stored: u64,
    /// Batches answered 200.
    pub(crate) acked: u64,
    /// Of those, batches the service had already (re-sends).
    pub(crate) duplicates: u64,
    /// Results refused, by reason.
    pub(crate) refused: BTreeMap<String, u64>,
    /// Answers by status, 200 included.
    pub(crate) statuses: BTreeMap<u16, u64>,
    /// Sends that got no answer (connection errors).
    pub(crate) unreachable: u64,
    /// The first non-200, non-429/503 answer's body, if any.
    pub(crate) first_error: Option<String>,
    /// When the first batch was sent and the last one acknowledged, Unix ms.
    pub(crate) first_send_ms: i64,
    /// See `first_send_ms`.
    pub(crate) last_ack_ms: i64,
    /// This process's own CPU seconds.
    pub(crate) cpu_s: f64,
}

/// One agent's link, as the uploader speaks it.
struct Agent {
    http: reqwest::Client,
    base: String,
    id: String,
    token: String,
    boot: String,
    version: String,
}

impl Agent {
    fn url(&self, what: &str) -> String {
        format!("{}/api/v1/agents/{}/{what}", self.base, self.id)
    }

    async fn assignment(&self) -> Assignment {
        let r = (self.http.get(self.url("assignment")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("the assignment");
        assert_eq!(r.status(), 200, "GET assignment of {}", self.id);
        r.json().await.expect("an assignment")
    }

    /// One heartbeat carrying `previous`; the exchange it made.
    async fn heartbeat(&self, previous: Option<Exchange>) -> Option<Exchange> {
        let t0 = now_ms();
        let hb = Heartbeat {
            boot: self.boot.clone(),
            version: "bench".into(),
            assignment_version: Some(self.version.clone()),
            backlog_records: 0,
            in_flight: 0,
            concurrency: 1,
            sent_ms: t0,
            previous,
            spool_dropped: 0,
        };
        let r = (self.http.post(self.url("heartbeat")))
            .bearer_auth(&self.token)
            .json(&hb)
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            eprintln!("{}: heartbeat answered {}", self.id, r.status());
            return None;
        }
        let a: HeartbeatAnswer = r.json().await.ok()?;
        Some(Exchange {
            t0,
            t1: a.received_ms,
            t2: a.answered_ms,
            t3: now_ms(),
        })
    }

    /// Heartbeats every 10 s, as an agent sends them, each with the previous exchange.
    async fn heartbeats(self: std::sync::Arc<Self>, mut previous: Option<Exchange>) {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            previous = self.heartbeat(previous).await.or(previous);
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The uploader's `main`.
pub(crate) async fn main() {
    let total: u64 = arg("--results", "200000").parse().expect("--results");
    let per_batch: usize = arg("--batch", "5000").parse().expect("--batch");
    let token = cdnwatch::config::read_token_file(arg("--token-file", "").as_ref())
        .unwrap_or_else(|e| panic!("{e}"));
    cdnwatch::probe::tls::install_default_provider();
    let mut agent = Agent {
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client"),
        base: arg("--server", ""),
        id: arg("--id", ""),
        token,
        boot: format!("bench-up-{:08x}", fastrand::u32(..)),
        version: String::new(),
    };
    let assignment = agent.assignment().await;
    agent.version = assignment.assignment_version.clone();
    let config = Config::parse(&assignment.config, "assignment", std::path::Path::new("."))
        .unwrap_or_else(|e| panic!("the assignment's config: {e}"));
    let series: Vec<SeriesKey> = cdnwatch::scheduler::series_of(&config)
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert!(!series.is_empty(), "{}: no series assigned", agent.id);
    let first = agent.heartbeat(None).await;
    let second = agent.heartbeat(first).await;
    let agent = std::sync::Arc::new(agent);
    tokio::spawn(agent.clone().heartbeats(second));
    let mut tally = send_all(&agent, &series, total, per_batch).await;
    tally.cpu_s = crate::fleet_procs::cpu_seconds(std::process::id());
    println!("{}", serde_json::to_string(&tally).expect("a tally"));
}

/// Sends `total` results in batches of `per_batch`, each until it is acknowledged.
async fn send_all(agent: &Agent, series: &[SeriesKey], total: u64, per_batch: usize) -> Tally {
    let mut tally = Tally::default();
    let (mut sent, mut seq, mut next) = (0u64, 0u64, 0usize);
    while sent < total {
        let n = per_batch.min((total - sent) as usize);
        let at = chrono::Utc::now();
        let results = (0..n)
            .map(|i| probed(&series[(next + i) % series.len()], at))
            .collect();
        next = (next + n) % series.len();
        let batch = Batch {
            boot: agent.boot.clone(),
            seq,
            assignment_version: agent.version.clone(),
            results,
            controls: Vec::new(),
        };
        send_one(agent, bytes::Bytes::from(gzip(&batch)), &mut tally).await;
        (sent, seq) = (sent + n as u64, seq + 1);
    }
    tally
}

/// Sends one batch until the service answers 200 (or says it can never take it: 400, 413).
async fn send_one(agent: &Agent, body: bytes::Bytes, tally: &mut Tally) {
    loop {
        if tally.first_send_ms == 0 {
            tally.first_send_ms = now_ms();
        }
        let sent = (agent.http.post(agent.url("results")))
            .bearer_auth(&agent.token)
            .header("content-encoding", "gzip")
            .header("content-type", "application/json")
            .header("x-cdnwatch-assignment", &agent.version)
            .body(body.clone())
            .send()
            .await;
        let Ok(r) = sent else {
            tally.unreachable += 1;
            assert!(
                tally.unreachable < 30,
                "{}: the service is unreachable",
                agent.id
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let status = r.status().as_u16();
        *tally.statuses.entry(status).or_default() += 1;
        let retry_after = (r.headers().get("retry-after"))
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = r.text().await.unwrap_or_default();
        match status {
            200 => {
                let a: BatchAnswer = serde_json::from_str(&text).expect("a batch answer");
                tally.stored += a.stored as u64;
                tally.acked += 1;
                tally.duplicates += u64::from(a.duplicate);
                for (why, n) in a.refused {
                    *tally.refused.entry(why).or_default() += n as u64;
                }
                tally.last_ack_ms = now_ms();
                return;
            }
            429 | 503 => tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(1))).await,
            _ => {
                tally.first_error.get_or_insert(format!("{status}: {text}"));
                if status == 400 || status == 413 {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
