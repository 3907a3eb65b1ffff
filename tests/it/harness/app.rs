//! [`TestApp`]: the service running in-process on a [`TestLab`], listening on 127.0.0.1:0 with
//! the test tokens and its data in the lab's temporary directory, and the API calls the tests make.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cdnwatch::auth::{TokenDigest, Tokens};
use cdnwatch::client::{HostListClient, Offer};
use cdnwatch::clock::Clock;
use cdnwatch::config::Config;
use cdnwatch::lab::LabOptions;
use cdnwatch::publish::PublicKey;
use cdnwatch::startup::{self as service, Running, ServeOptions};
use serde_json::Value;

use super::lab::{TestLab, tighten};
use super::machine::{Share, alone, shared};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123456789";
/// The token of every agent the tests configure (`harness::agents::with_agent`).
pub const AGENT_TOKEN: &str = "test-agent-token-9876543210fedcba9876543210";

/// A running service on its own lab; `stop` shuts both down.
pub struct TestApp {
    pub lab: TestLab,
    pub running: Option<Running>,
    /// `http://127.0.0.1:PORT`, the port the OS gave.
    pub base: String,
    pub http: reqwest::Client,
    pub tokens: Tokens,
    /// The service's stepped clock, which [`TestApp::round`] moves.
    pub clock: Clock,
}

/// The tokens the tests' services run with.
pub fn test_tokens() -> Tokens {
    Tokens {
        admin: Some(TokenDigest::of(ADMIN_TOKEN)),
    }
}

/// Half-second rounds, short holds; the image path only unless an edit says otherwise.
fn fast_rounds(c: &mut Config) {
    tighten(c);
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

impl TestApp {
    /// [`TestApp::stepped_with`] with no edit.
    pub async fn stepped() -> TestApp {
        Self::stepped_with(|_| {}).await
    }

    /// The service with half-second rounds on a fresh lab, with the test tokens and `edit` applied
    /// to the config after the fast rounds, on a stepped clock: nothing probes or decides until
    /// the test runs a round ([`TestApp::round`], or the waits, which step instead of sleeping).
    pub async fn stepped_with(edit: impl FnOnce(&mut Config)) -> TestApp {
        Self::stepped_with_tokens(edit, test_tokens()).await
    }

    /// As [`TestApp::stepped_with`], with these tokens.
    pub async fn stepped_with_tokens(edit: impl FnOnce(&mut Config), tokens: Tokens) -> TestApp {
        Self::start_on(shared().await, edit, tokens, stepped_clock()).await
    }

    /// As [`TestApp::stepped`], with the machine to itself: for a stepped test that asserts
    /// timings of its own.
    pub async fn stepped_alone() -> TestApp {
        Self::start_on(alone().await, |_| {}, test_tokens(), stepped_clock()).await
    }

    /// As [`TestApp::stepped_with`], with the machine to itself: for a test of real-time limits
    /// (the HTTP edge's timeouts).
    pub async fn stepped_alone_with(edit: impl FnOnce(&mut Config)) -> TestApp {
        Self::start_on(alone().await, edit, test_tokens(), stepped_clock()).await
    }

    /// As [`TestApp::stepped_with`], on a lab started with `options` (e.g. 200 generated hosts).
    pub async fn stepped_on_lab(options: LabOptions, edit: impl FnOnce(&mut Config)) -> TestApp {
        let share = shared().await;
        Self::start_on_lab(share, options, edit, test_tokens(), stepped_clock()).await
    }

    async fn start_on(
        share: Share,
        edit: impl FnOnce(&mut Config),
        tokens: Tokens,
        clock: Clock,
    ) -> TestApp {
        Self::start_on_lab(share, LabOptions::default(), edit, tokens, clock).await
    }

    async fn start_on_lab(
        share: Share,
        options: LabOptions,
        edit: impl FnOnce(&mut Config),
        tokens: Tokens,
        clock: Clock,
    ) -> TestApp {
        let lab = TestLab::start_with(share, options, |c| {
            fast_rounds(c);
            edit(c);
        })
        .await;
        let (running, base) = start_service(&lab, &tokens, &clock).await;
        TestApp {
            http: lab.http.clone(),
            lab,
            running: Some(running),
            base,
            tokens,
            clock,
        }
    }

    /// Stops the service and starts it again on the same config, data and clock.
    pub async fn restart(&mut self) {
        self.running.take().expect("running").shutdown().await;
        let (running, base) = start_service(&self.lab, &self.tokens, &self.clock).await;
        self.running = Some(running);
        self.base = base;
    }

    /// One round: every series probed once, one decision (none when the database is gone), the
    /// clock one interval on.
    pub async fn round(&self) {
        self.running().step().await;
    }

    /// `n` rounds.
    pub async fn rounds(&self, n: usize) {
        for _ in 0..n {
            self.round().await;
        }
    }

    /// Runs `wait` to its end while the service goes on: rounds back to back with a short real
    /// pause between them. For waits on something that runs in real time beside the service (a
    /// Prometheus scraping it).
    pub async fn stepping<T>(&self, wait: impl Future<Output = T>) -> T {
        let done = std::sync::atomic::AtomicBool::new(false);
        let (out, ()) = tokio::join!(
            async {
                let out = wait.await;
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                out
            },
            async {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    self.round().await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        );
        out
    }

    /// As [`super::eventually`], with a round between two looks.
    pub async fn eventually<T>(
        &self,
        limit: Duration,
        what: &str,
        check: impl AsyncFnMut() -> Result<T, String>,
    ) -> T {
        super::eventually_between(limit, what, check, async || self.next_look().await).await
    }

    /// Between two looks of a wait: a round.
    pub async fn next_look(&self) {
        self.round().await;
    }

    /// The running service.
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    /// The service's SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.lab.data_dir().join("cdnwatch.db")
    }

    /// Adds a fault through the lab's HTTP fault API.
    pub async fn fault(&self, json: &str) {
        self.lab.fault(json).await;
    }

    /// Lifts every fault in the lab.
    pub async fn clear_faults(&self) {
        self.lab.clear().await;
    }

    /// A GET on the service's `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the service answers")
    }

    /// The signing keys the service publishes.
    pub async fn keys(&self) -> Vec<(String, PublicKey)> {
        let keys: Value = self.get("/api/v1/keys").await.json().await.unwrap();
        keys.as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(k["publicKey"].as_str().unwrap())
                    .unwrap();
                let key = PublicKey::from_bytes(raw.try_into().unwrap());
                (k["keyId"].as_str().unwrap().to_string(), key)
            })
            .collect()
    }

    /// The current document as served, with its signature header (None before the first version).
    pub async fn fetch(&self) -> Option<(Vec<u8>, String)> {
        let resp = self.get("/api/v1/hostlist").await;
        if resp.status() != 200 {
            return None;
        }
        let sig = resp.headers()["x-config-signature"]
            .to_str()
            .unwrap()
            .to_string();
        Some((resp.bytes().await.unwrap().to_vec(), sig))
    }

    /// The current document, parsed.
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
            self.next_look().await;
        }
    }

    /// A JSON array the service answers at `path`.
    pub async fn list(&self, path: &str) -> Vec<Value> {
        let v: Value = self.get(path).await.json().await.unwrap();
        v.as_array().expect("a JSON array").clone()
    }

    pub async fn events(&self) -> Vec<Value> {
        self.list("/api/v1/events").await
    }

    /// Waits for an event with this reason.
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
            self.next_look().await;
        }
    }

    pub async fn versions(&self) -> Vec<Value> {
        self.list("/api/v1/hostlist/versions").await
    }

    /// Offers the current document to a reference client.
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

/// A stepped clock standing at the real now until the first round.
fn stepped_clock() -> Clock {
    Clock::stepped(chrono::Utc::now())
}

async fn start_service(lab: &TestLab, tokens: &Tokens, clock: &Clock) -> (Running, String) {
    let running = service::start(ServeOptions {
        config_path: lab.config_path.clone(),
        data_dir: lab.data_dir(),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_listen: None,
        prober_id: "e2e".into(),
        tokens: tokens.clone(),
        bump_version: None,
        init_key: false,
        clock: clock.clone(),
    })
    .await
    .expect("the service starts");
    let base = format!("http://{}", running.addr);
    (running, base)
}
