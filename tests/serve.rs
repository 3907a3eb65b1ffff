//! `cdnwatch serve` as a process, against the lab: health and status, SIGHUP reloads (good and
//! bad files), SIGTERM flushing and exiting 0, and repeated kill -9 leaving an intact file.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cdnwatch::config::Config;
use cdnwatch::lab::{Lab, LabOptions};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cdnwatch");

struct Serve {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Serve {
    fn start(config: &Path, data: &Path) -> Serve {
        let log = data.with_extension(format!("{}.log", rand_suffix()));
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--prober-id",
                "test",
                "--config",
            ])
            .arg(config)
            .arg("--data")
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut base = None;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("cdnwatch listening on ") {
                base = Some(url.trim().to_string());
                break;
            }
        }
        let base = base.unwrap_or_else(|| {
            panic!(
                "serve did not start: {}",
                std::fs::read_to_string(&log).unwrap()
            )
        });
        Serve { child, base, log }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not exit; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    rand::random::<u64>() % 1_000_000
}

async fn get(http: &reqwest::Client, url: String) -> (u16, String) {
    let resp = http.get(url).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn status(http: &reqwest::Client, s: &Serve) -> Value {
    let (code, body) = get(http, format!("{}/api/v1/status", s.base)).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `f` on the status until it holds (or fails after `limit`).
async fn until(
    http: &reqwest::Client,
    s: &Serve,
    limit: Duration,
    what: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let st = status(http, s).await;
        if f(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status: {st:#}\nlog:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A lab and a config file for it with a 1 s interval.
async fn lab_and_config(dir: &Path) -> (Lab, PathBuf, Config) {
    let lab = Lab::start(LabOptions::default()).await.unwrap();
    let path = dir.join("cdnwatch.toml");
    lab.write_config(&path).unwrap();
    let mut config = Config::load(&path).unwrap();
    common::tighten(&mut config);
    config.probe.interval_ms = 1000;
    std::fs::write(&path, config.to_toml()).unwrap();
    (lab, path, config)
}

fn http() -> reqwest::Client {
    cdnwatch::probe::tls::install_default_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_probes_everything_and_reports_per_host_region_resolver_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, config, _) = lab_and_config(dir.path()).await;
    let s = Serve::start(&config, &dir.path().join("data"));
    let http = http();
    assert_eq!(get(&http, format!("{}/healthz", s.base)).await.0, 200);
    assert_eq!(get(&http, format!("{}/readyz", s.base)).await.0, 200);

    let st = until(
        &http,
        &s,
        Duration::from_secs(10),
        "every series reported",
        |st| {
            st["hosts"].as_object().is_some_and(|h| {
                h.len() == 3
                    && h.values().all(|host| {
                        host["by_region_resolver"]
                            .as_object()
                            .is_some_and(|m| m.len() == 6)
                            && host["by_path"].as_object().is_some_and(|m| m.len() == 3)
                    })
            })
        },
    )
    .await;
    assert_eq!(st["scheduler"]["series"], 54);
    let east = &st["hosts"]["cdn.shop.test"]["by_region_resolver"]["cn-east/isp"];
    assert_eq!(east["latest_failed"], 0, "{east}");
    assert_eq!(east["success_ratio_15m"], 1.0, "{east}");

    // A vendor-side 502 shows, with its class, on that vendor's host only.
    lab.faults()
        .add(
            serde_json::from_str(r#"{"kind":"http_status","status":502,"vendor":"beta"}"#).unwrap(),
        )
        .unwrap();
    let st = until(&http, &s, Duration::from_secs(10), "the 502s reported", |st| {
        st["hosts"]["cdn-bak.shop.test"]["by_path"]["/image/probe.jpg"]["latest_failures"]["http_status"].as_u64().is_some_and(|n| n >= 1)
    })
    .await;
    assert_eq!(
        st["hosts"]["cdn.shop.test"]["by_path"]["/image/probe.jpg"]["latest_failed"],
        0
    );
    let ratio =
        st["hosts"]["cdn-bak.shop.test"]["by_path"]["/image/probe.jpg"]["success_ratio_15m"]
            .as_f64()
            .unwrap();
    assert!(ratio < 1.0);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_good_file_and_refuses_a_bad_one_with_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, path, config) = lab_and_config(dir.path()).await;
    let s = Serve::start(&path, &dir.path().join("data"));
    let http = http();
    until(&http, &s, Duration::from_secs(5), "54 series", |st| {
        st["scheduler"]["series"] == 54
    })
    .await;

    let mut smaller = config.clone();
    smaller.hosts.retain(|h| h.domain != "cdn-bak.shop.test");
    std::fs::write(&path, smaller.to_toml()).unwrap();
    s.signal("-HUP");
    until(
        &http,
        &s,
        Duration::from_secs(5),
        "36 series after the reload",
        |st| st["scheduler"]["series"] == 36,
    )
    .await;

    let bad = smaller
        .to_toml()
        .replace("interval_ms = 1000", "interval_ms = 1000\nintervall_ms = 5");
    std::fs::write(&path, bad).unwrap();
    s.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !s.log().contains("refused") {
        assert!(Instant::now() < deadline, "no refusal logged:\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = s.log();
    assert!(
        log.contains("probe.intervall_ms"),
        "the problem names the field: {log}"
    );
    assert!(log.contains("unknown"), "{log}");
    let st = status(&http, &s).await;
    assert_eq!(
        st["scheduler"]["series"], 36,
        "the old config keeps running"
    );
    let started = st["scheduler"]["probes_started"].as_u64().unwrap();
    until(&http, &s, Duration::from_secs(5), "probing goes on", |st| {
        st["scheduler"]["probes_started"].as_u64().unwrap() > started + 36
    })
    .await;
    lab.shutdown().await;
}

async fn count(db: &Path, sql: &'static str) -> i64 {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

async fn integrity(db: &Path) -> String {
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let s: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_probes_finish_flushes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, path, _) = lab_and_config(dir.path()).await;
    let data = dir.path().join("data");
    let mut s = Serve::start(&path, &data);
    let http = http();
    let st = until(
        &http,
        &s,
        Duration::from_secs(10),
        "results written",
        |st| st["store"]["written"].as_u64().unwrap() > 100,
    )
    .await;
    let written = st["store"]["written"].as_i64().unwrap();
    s.signal("-TERM");
    let status = s.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit {status:?}; log:\n{}", s.log());
    let stored = count(&data.join("cdnwatch.db"), "SELECT COUNT(*) FROM results").await;
    assert!(
        stored >= written,
        "{stored} rows stored, {written} had been written before SIGTERM"
    );
    assert_eq!(integrity(&data.join("cdnwatch.db")).await, "ok");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_any_moment_never_corrupts_the_file_or_loses_committed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, path, _) = lab_and_config(dir.path()).await;
    let data = dir.path().join("data");
    let db = data.join("cdnwatch.db");
    let http = http();
    let mut last = 0i64;
    for round in 0..6u64 {
        let mut s = Serve::start(&path, &data);
        until(
            &http,
            &s,
            Duration::from_secs(10),
            "some results written",
            |st| st["store"]["written"].as_u64().unwrap() > 20,
        )
        .await;
        // Kill at a different moment of the writer's cycle each round.
        tokio::time::sleep(Duration::from_millis(37 * round * round)).await;
        s.signal("-KILL");
        s.wait_exit(Duration::from_secs(5));
        assert_eq!(integrity(&db).await, "ok", "round {round}");
        let rows = count(&db, "SELECT COUNT(*) FROM results").await;
        assert!(
            rows > last,
            "round {round}: {rows} rows after, {last} before: committed rows are kept and new ones added"
        );
        last = rows;
        // The series and prober tables stay consistent with the results.
        let orphans = count(
            &db,
            "SELECT COUNT(*) FROM results WHERE series_id NOT IN (SELECT id FROM series)",
        )
        .await;
        assert_eq!(orphans, 0);
    }
    lab.shutdown().await;
}
