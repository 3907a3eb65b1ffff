//! Shared by the integration tests: a lab on loopback, the config it writes, and a prober on it.
#![allow(dead_code)]

pub mod prometheus;
pub mod service;

use std::net::SocketAddr;

use cdnwatch::config::Config;
use cdnwatch::lab::{Lab, LabOptions};
use cdnwatch::model::{EdgeResult, FailureClass};
use cdnwatch::probe::{ProbeReport, Prober};

pub struct Setup {
    pub lab: Lab,
    pub config: Config,
    pub prober: Prober,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// Timeouts short enough for tests, long enough for a debug build on a busy machine.
pub fn tighten(config: &mut Config) {
    let t = &mut config.probe.timeouts;
    t.dns_ms = 600;
    t.connect_ms = 800;
    t.tls_ms = 800;
    t.first_byte_ms = 800;
    t.transfer_ms = 1500;
}

impl Setup {
    pub async fn start() -> Setup {
        Self::start_with(tighten).await
    }

    pub async fn start_with(edit: impl FnOnce(&mut Config)) -> Setup {
        let lab = Lab::start(LabOptions::default()).await.expect("lab starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cdnwatch.toml");
        lab.write_config(&path).expect("config written");
        let mut config = Config::load(&path).expect("the lab's config is valid");
        edit(&mut config);
        let prober = Prober::new(&config).expect("prober");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Setup {
            lab,
            config,
            prober,
            http,
            dir,
        }
    }

    pub fn api(&self) -> SocketAddr {
        self.lab.api_addr()
    }

    /// Adds a fault through the lab's HTTP API; returns its id.
    pub async fn fault(&self, json: &str) -> u64 {
        let resp = self
            .http
            .post(format!("http://{}/faults", self.api()))
            .header("content-type", "application/json")
            .body(json.to_string())
            .send()
            .await
            .expect("fault API reachable");
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.expect("JSON answer");
        assert_eq!(status, 201, "fault {json} refused: {body}");
        body["id"].as_u64().expect("id")
    }

    pub async fn clear(&self) {
        let resp = self
            .http
            .delete(format!("http://{}/faults", self.api()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    }

    pub async fn probe(&self, host: &str, path: &str, region: &str, resolver: &str) -> ProbeReport {
        let h = self.config.host(host).expect("host");
        let p = h.paths.iter().find(|p| p.path == path).expect("path");
        let r = self
            .config
            .regions
            .iter()
            .find(|r| r.name == region)
            .expect("region");
        let v = r
            .resolvers
            .iter()
            .find(|v| v.name == resolver)
            .expect("resolver");
        self.prober.probe(h, p, r, v).await
    }

    /// The primary host's image probe from cn-east through `isp`.
    pub async fn probe_primary(&self) -> ProbeReport {
        self.probe("cdn.shop.test", "/image/probe.jpg", "cn-east", "isp")
            .await
    }

    pub async fn shutdown(self) {
        self.lab.shutdown().await;
    }
}

/// Polls `check` every 250 ms until it answers `Ok`; after `limit`, panics with `what` and the last
/// `Err` (which should say what was seen instead).
pub async fn eventually<T>(
    limit: std::time::Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; last seen: {last}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

pub fn classes(report: &ProbeReport) -> Vec<Option<FailureClass>> {
    report
        .results
        .iter()
        .map(EdgeResult::failure_class)
        .collect()
}
