//! [`TestLab`]: the simulated CDN on loopback, the config it wrote (with test timeouts) in a
//! temporary directory, a prober on that config, and the lab's HTTP fault API. No service.

use std::net::SocketAddr;
use std::path::PathBuf;

use cdnwatch::config::Config;
use cdnwatch::lab::{Lab, LabOptions};
use cdnwatch::model::{EdgeResult, FailureClass};
use cdnwatch::probe::{ProbeReport, Prober};

use super::machine::{Share, alone, shared};

/// A lab, its config (as loaded, tightened and edited, and written back to `config_path`), a
/// prober on that config, and an HTTP client; the directory goes when this is dropped.
pub struct TestLab {
    pub lab: Lab,
    pub config: Config,
    pub config_path: PathBuf,
    pub prober: Prober,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    _share: Share,
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

impl TestLab {
    /// A lab with the test timeouts.
    pub async fn spawn() -> TestLab {
        Self::spawn_with(|_| {}).await
    }

    /// A lab with the test timeouts, then `edit`, applied to its config.
    pub async fn spawn_with(edit: impl FnOnce(&mut Config)) -> TestLab {
        Self::start(shared().await, edit).await
    }

    /// As [`TestLab::spawn_with`], with the machine to itself: for a test that asserts timings.
    pub async fn spawn_alone_with(edit: impl FnOnce(&mut Config)) -> TestLab {
        Self::start(alone().await, edit).await
    }

    pub(super) async fn start(share: Share, edit: impl FnOnce(&mut Config)) -> TestLab {
        Self::start_with(share, LabOptions::default(), edit).await
    }

    /// As [`TestLab::start`], on a lab started with `options` (e.g. generated hosts).
    pub(super) async fn start_with(
        share: Share,
        options: LabOptions,
        edit: impl FnOnce(&mut Config),
    ) -> TestLab {
        cdnwatch::probe::tls::install_default_provider();
        let lab = Lab::start(options).await.expect("lab starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("cdnwatch.toml");
        lab.write_config(&config_path).expect("config written");
        let mut config = Config::load(&config_path).expect("the lab's config is valid");
        tighten(&mut config);
        edit(&mut config);
        std::fs::write(&config_path, config.to_toml()).expect("config written back");
        let prober = Prober::new(&config).expect("prober");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(70))
            .build()
            .expect("client");
        TestLab {
            lab,
            config,
            config_path,
            prober,
            http,
            dir,
            _share: share,
        }
    }

    /// Where a service on this lab keeps its data: `data/` in the temporary directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The lab's fault API.
    pub fn api(&self) -> SocketAddr {
        self.lab.api_addr()
    }

    /// Adds a fault through the lab's HTTP fault API; returns its id.
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

    /// Lifts every fault through the lab's HTTP fault API.
    pub async fn clear(&self) {
        let resp = self
            .http
            .delete(format!("http://{}/faults", self.api()))
            .send()
            .await
            .expect("fault API reachable");
        assert_eq!(resp.status(), 204);
    }

    /// One probe of `host`'s `path` from `region` through `resolver`, all by name.
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

/// The failure class of each edge's result, in order.
pub fn classes(report: &ProbeReport) -> Vec<Option<FailureClass>> {
    report
        .results
        .iter()
        .map(EdgeResult::failure_class)
        .collect()
}
