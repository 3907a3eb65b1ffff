//! A real Prometheus server (Debian's binary) on loopback, with a temporary config and storage
//! directory, scraping given targets every quarter second; killed when dropped, even when a test panics.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Prometheus {
    child: Child,
    pub base: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

/// A port free on 127.0.0.1 right now (the OS picks it; the listener is closed again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Waits until the Prometheus-family server at `base` (Prometheus, Alertmanager) answers its
/// `/-/ready`; a timeout shows `log()`.
pub async fn wait_ready(http: &reqwest::Client, base: &str, what: &str, log: impl Fn() -> String) {
    let url = format!("{base}/-/ready");
    crate::harness::eventually(
        Duration::from_secs(30),
        &format!("{what} ready"),
        async || match http.get(&url).send().await {
            Ok(r) if r.status() == 200 => Ok(()),
            _ => Err(log()),
        },
    )
    .await
}

/// Runs `bin args…` with `stdin`; returns (success, stdout + stderr).
pub fn run_tool(bin: &str, args: &[&str], stdin: &[u8], cwd: &Path) -> (bool, String) {
    use std::io::Write as _;
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin} runs (./scripts/install-test-deps.sh installs it): {e}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (job `cdnwatch`) and evaluating `rule_files` every
    /// quarter second; returns once it is ready.
    pub async fn start(target: SocketAddr, rule_files: &[&Path]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|p| format!("  - {:?}\n", p.canonicalize().unwrap()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 250ms\n  scrape_timeout: 250ms\n  evaluation_interval: 250ms\n\
             rule_files:\n{}\
             scrape_configs:\n  - job_name: cdnwatch\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules.concat()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus runs (./scripts/install-test-deps.sh installs it)");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let p = Prometheus {
            child,
            base: format!("http://{addr}"),
            http,
            dir,
        };
        p.wait_ready().await;
        p
    }

    async fn wait_ready(&self) {
        wait_ready(&self.http, &self.base, "Prometheus", || self.log()).await;
    }

    /// Prometheus's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query through the HTTP API: `Err` with Prometheus's error for a bad query,
    /// else the result vector.
    pub async fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let url = format!("{}/api/v1/query", self.base);
        let url = reqwest::Url::parse_with_params(&url, &[("query", promql)]).unwrap();
        let resp: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if resp["status"] != "success" {
            return Err(format!("{promql}: {resp}"));
        }
        Ok(resp["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until `promql`'s result satisfies `pred`; returns it.
    pub async fn wait_for(
        &self,
        promql: &str,
        limit: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        crate::harness::eventually(limit, promql, async || {
            let result = self.query(promql).await?;
            if pred(&result) {
                return Ok(result);
            }
            Err(format!("{result:?}; targets {}", self.targets().await))
        })
        .await
    }

    pub async fn targets(&self) -> Value {
        let get = self.http.get(format!("{}/api/v1/targets", self.base));
        match get.send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(e) => Value::String(e.to_string()),
        }
    }
}

/// The number in one instant-vector sample.
pub fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
