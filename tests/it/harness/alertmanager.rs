//! A real Alertmanager (Debian's `prometheus-alertmanager`) on loopback, with a temporary config
//! (one receiver that sends nowhere, clustering off) and storage; killed when dropped. Alerts are
//! read back through its v2 API.

use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::prometheus::{free_port, wait_ready};

pub struct Alertmanager {
    child: Child,
    pub base: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager; returns once it is ready.
    pub async fn start() -> Alertmanager {
        cdnwatch::probe::tls::install_default_provider();
        let dir = tempfile::tempdir().unwrap();
        let config =
            "route:\n  receiver: nowhere\n  group_wait: 1s\nreceivers:\n  - name: nowhere\n";
        std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.path().join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus-alertmanager runs (./scripts/install-test-deps.sh installs it)");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let am = Alertmanager {
            child,
            base: format!("http://{addr}"),
            http,
            dir,
        };
        wait_ready(&am.http, &am.base, "Alertmanager", || am.log()).await;
        am
    }

    /// Alertmanager's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// Every alert it holds (`GET /api/v2/alerts`), active or not.
    pub async fn alerts(&self) -> Vec<Value> {
        let url = format!("{}/api/v2/alerts", self.base);
        let v: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
