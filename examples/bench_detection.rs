//! Detection benchmark on the lab (printed figures, not a timed test): the whole service — scheduler,
//! prober, decision loop, publisher, HTTP — probing the simulated CDN at a 10 s interval with the
//! default engine policy, while a client polls `GET /api/v1/hostlist` every 100 ms.
//!   1. a vendor-wide outage (every alpha edge answers 502) → time until a served version has both
//!      alpha hosts disabled (target ≤ 15 s: one interval, then the failed series' confirmations),
//!      and the confirmation probes it cost;
//!   2. the fault cleared → time until a served version has them enabled again (target ≤ 90 s; the
//!      first hold is 60 s from the last failed round).
//!
//! Usage: cargo run --release --example bench_detection

use std::time::{Duration, Instant};

use cdnwatch::config::Config;
use cdnwatch::lab::{Lab, LabOptions};
use cdnwatch::startup::{self as service, ServeOptions};
use serde_json::Value;

const INTERVAL_MS: u64 = 10_000;
const ALPHA: [&str; 2] = ["cdn.shop.test", "cdn-ss.shop.test"];

fn disabled(doc: &Value, host: &str) -> bool {
    doc["hostListConfig"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|h| h["host"] == host && h["isDisabled"] == true)
}

struct Poller {
    http: reqwest::Client,
    url: String,
}

impl Poller {
    async fn document(&self) -> Option<Value> {
        let resp = self.http.get(&self.url).send().await.ok()?;
        resp.json().await.ok()
    }

    /// Polls every 100 ms until `pred` holds; returns the time it took and the document.
    async fn until(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> (Duration, Value) {
        let t = Instant::now();
        loop {
            if let Some(doc) = self.document().await
                && pred(&doc)
            {
                return (t.elapsed(), doc);
            }
            assert!(t.elapsed() < limit, "nothing after {limit:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Prints the lab's shape and the interval, so the figures below can be read against them.
fn describe(config: &Config) {
    let series = config.hosts.iter().map(|h| h.paths.len()).sum::<usize>()
        * config
            .regions
            .iter()
            .map(|r| r.resolvers.len())
            .sum::<usize>();
    println!(
        "BENCHDETECT lab: {} hosts, {} regions, {series} series at {} s; default engine policy",
        config.hosts.len(),
        config.regions.len(),
        INTERVAL_MS / 1000
    );
}

/// The service on `lab` at the benchmark's interval, its data in `dir`.
async fn start(lab: &Lab, dir: &std::path::Path) -> anyhow::Result<(service::Running, Config)> {
    let config_path = dir.join("cdnwatch.toml");
    lab.write_config(&config_path)?;
    let mut config = Config::load(&config_path)?;
    config.probe.interval_ms = INTERVAL_MS;
    std::fs::write(&config_path, config.to_toml())?;
    let running = service::start(ServeOptions {
        config_path,
        data_dir: dir.join("data"),
        listen: "127.0.0.1:0".parse()?,
        public_listen: None,
        prober_id: "bench".into(),
        tokens: Default::default(),
        bump_version: None,
        init_key: false,
        clock: cdnwatch::clock::Clock::system(),
    })
    .await?;
    Ok((running, config))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cdnwatch::probe::tls::install_default_provider();
    let lab = Lab::start(LabOptions::default()).await?;
    let dir = tempfile::tempdir()?;
    let (running, config) = start(&lab, dir.path()).await?;
    let poller = Poller {
        http: reqwest::Client::builder().no_proxy().build()?,
        url: format!("http://{}/api/v1/hostlist", running.addr),
    };
    describe(&config);
    // Warm-up: the engine publishes nothing derived before a full round in two regions.
    tokio::time::sleep(Duration::from_millis(2 * INTERVAL_MS + 1000)).await;

    lab.faults()
        .add(serde_json::from_str(
            r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#,
        )?)
        .map_err(anyhow::Error::msg)?;
    let stats = running.state.scheduler.clone();
    let runs = |s: &std::sync::atomic::AtomicU64| s.load(std::sync::atomic::Ordering::Relaxed);
    let (healthy_confirmations, started) = (runs(&stats.confirmations), runs(&stats.started));
    let (detected, down) = poller
        .until(Duration::from_secs(180), |d| {
            ALPHA.iter().all(|h| disabled(d, h))
        })
        .await;
    println!(
        "BENCHDETECT vendor-wide 502 on alpha -> version {} with both alpha hosts disabled served after {:.1} s (target <= 15 s)",
        down["configVersion"],
        detected.as_secs_f64()
    );
    println!(
        "BENCHDETECT confirmation probes: {healthy_confirmations} while healthy (of {started} runs), {} from the outage to detection (of {} runs)",
        runs(&stats.confirmations) - healthy_confirmations,
        runs(&stats.started) - started
    );

    lab.faults().clear();
    let (recovered, up) = poller
        .until(Duration::from_secs(300), |d| {
            ALPHA.iter().all(|h| !disabled(d, h))
        })
        .await;
    println!(
        "BENCHDETECT fault cleared -> version {} with alpha enabled served after {:.1} s (target <= 90 s)",
        up["configVersion"],
        recovered.as_secs_f64()
    );
    running.shutdown().await;
    lab.shutdown().await;
    Ok(())
}
