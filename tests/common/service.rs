//! A running service on a lab, with the HTTP calls the end-to-end and API tests make.

use std::time::{Duration, Instant};

use base64::Engine as _;
use cdnwatch::client::{HostListClient, Offer};
use cdnwatch::config::Config;
use cdnwatch::lab::{Lab, LabOptions};
use cdnwatch::startup::{self as service, Running, ServeOptions};
use ed25519_dalek::VerifyingKey;
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const AGENT_TOKEN: &str = "test-agent-token-9876543210";
pub const PRIMARY: &str = "cdn.shop.test";
pub const SAME_VENDOR: &str = "cdn-ss.shop.test";
pub const OTHER_VENDOR: &str = "cdn-bak.shop.test";

pub struct E2e {
    pub lab: Lab,
    pub running: Option<Running>,
    pub base: String,
    pub http: reqwest::Client,
    pub config_path: std::path::PathBuf,
    pub dir: tempfile::TempDir,
    pub tokens: cdnwatch::auth::Tokens,
}

/// The tokens the tests' services run with.
pub fn test_tokens() -> cdnwatch::auth::Tokens {
    cdnwatch::auth::Tokens {
        admin: Some(cdnwatch::auth::TokenDigest::of(ADMIN_TOKEN)),
        agent: Some(cdnwatch::auth::TokenDigest::of(AGENT_TOKEN)),
    }
}

/// Half-second rounds, short holds; the image path only unless `edit` says otherwise.
pub fn fast(c: &mut Config) {
    super::tighten(c);
    c.probe.interval_ms = 500;
    c.engine.hold_base_ms = 1500;
    c.engine.hold_cap_ms = 3000;
    for h in &mut c.hosts {
        h.paths.retain(|p| p.path == "/image/probe.jpg");
    }
}

/// Adds the `/product` object to every host beside its image (a second path, for origin faults).
pub fn with_product_path(c: &mut Config) {
    for h in &mut c.hosts {
        let image = h.paths[0].clone();
        h.paths.push(cdnwatch::config::ProbePath {
            path: "/product/probe.json".into(),
            check: Some(cdnwatch::config::ContentCheck::MinSize(1)),
            ..image
        });
    }
}

async fn start_service(
    config_path: &std::path::Path,
    data: &std::path::Path,
    tokens: &cdnwatch::auth::Tokens,
) -> (Running, String) {
    let running = service::start(ServeOptions {
        config_path: config_path.to_path_buf(),
        data_dir: data.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        prober_id: "e2e".into(),
        tokens: tokens.clone(),
        bump_version: None,
    })
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    (running, base)
}

impl E2e {
    pub async fn start(edit: impl FnOnce(&mut Config)) -> E2e {
        Self::start_with_tokens(edit, test_tokens()).await
    }

    pub async fn start_with_tokens(
        edit: impl FnOnce(&mut Config),
        tokens: cdnwatch::auth::Tokens,
    ) -> E2e {
        let lab = Lab::start(LabOptions::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("cdnwatch.toml");
        lab.write_config(&config_path).unwrap();
        let mut config = Config::load(&config_path).unwrap();
        fast(&mut config);
        edit(&mut config);
        std::fs::write(&config_path, config.to_toml()).unwrap();
        let (running, base) = start_service(&config_path, &dir.path().join("data"), &tokens).await;
        cdnwatch::probe::tls::install_default_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(70))
            .build()
            .unwrap();
        E2e {
            lab,
            running: Some(running),
            base,
            http,
            config_path,
            dir,
            tokens,
        }
    }

    pub async fn restart(&mut self) {
        self.running.take().unwrap().shutdown().await;
        let (running, base) = start_service(
            &self.config_path,
            &self.dir.path().join("data"),
            &self.tokens,
        )
        .await;
        self.running = Some(running);
        self.base = base;
    }

    pub async fn fault(&self, json: &str) {
        self.lab
            .faults()
            .add(serde_json::from_str(json).unwrap())
            .unwrap();
    }

    pub async fn keys(&self) -> Vec<(String, VerifyingKey)> {
        let keys: Value = self
            .http
            .get(format!("{}/api/v1/keys", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        keys.as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(k["publicKey"].as_str().unwrap())
                    .unwrap();
                let key = VerifyingKey::from_bytes(&raw.try_into().unwrap()).unwrap();
                (k["keyId"].as_str().unwrap().to_string(), key)
            })
            .collect()
    }

    /// The current document as served, with its signature header (None before the first version).
    pub async fn fetch(&self) -> Option<(Vec<u8>, String)> {
        let resp = self
            .http
            .get(format!("{}/api/v1/hostlist", self.base))
            .send()
            .await
            .unwrap();
        if resp.status() != 200 {
            return None;
        }
        let sig = resp.headers()["x-config-signature"]
            .to_str()
            .unwrap()
            .to_string();
        Some((resp.bytes().await.unwrap().to_vec(), sig))
    }

    pub async fn document(&self) -> Option<Value> {
        self.fetch()
            .await
            .map(|(body, _)| serde_json::from_slice(&body).unwrap())
    }

    /// Waits for a document satisfying `pred`.
    pub async fn wait_doc(
        &self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(doc) = self.document().await
                && pred(&doc)
            {
                return doc;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; document {:#?}; events {:#?}",
                self.document().await,
                self.events().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A JSON array the service answers at `path`.
    pub async fn list(&self, path: &str) -> Vec<Value> {
        let v: Value = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().expect("a JSON array").clone()
    }

    pub async fn events(&self) -> Vec<Value> {
        self.list("/api/v1/events").await
    }

    pub async fn wait_event(&self, limit: Duration, reason: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(e) = self
                .events()
                .await
                .into_iter()
                .find(|e| e["reason"] == reason)
            {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no `{reason}` event; events {:#?}",
                self.events().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn versions(&self) -> Vec<Value> {
        self.list("/api/v1/hostlist/versions").await
    }

    pub async fn poll(&self, client: &mut HostListClient) -> Offer {
        let (body, sig) = self.fetch().await.expect("a document");
        client.offer(&body, &sig)
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.lab.shutdown().await;
    }
}

pub fn disabled(doc: &Value, host: &str) -> bool {
    doc["hostListConfig"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap()["isDisabled"]
        == true
}

pub fn version(doc: &Value) -> i64 {
    doc["configVersion"].as_i64().unwrap()
}

pub fn all_enabled(doc: &Value) -> bool {
    [PRIMARY, SAME_VENDOR, OTHER_VENDOR]
        .iter()
        .all(|h| !disabled(doc, h))
}
