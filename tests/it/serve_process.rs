//! `cdnwatch serve` as a process, against the lab: health and status, SIGHUP reloads (good and
//! bad files), SIGTERM flushing and exiting 0, and repeated kill -9 leaving an intact file.

use std::path::Path;
use std::time::{Duration, Instant};

use cdnwatch::config::Config;
use serde_json::Value;

use crate::harness::TestLab;
use crate::harness::process::ServeProcess;

async fn get(http: &reqwest::Client, url: String) -> (u16, String) {
    let resp = http.get(url).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn status(http: &reqwest::Client, s: &ServeProcess) -> Value {
    let (code, body) = get(http, format!("{}/api/v1/status", s.base)).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `f` on the status until it holds (or fails after `limit`).
async fn until(
    http: &reqwest::Client,
    s: &ServeProcess,
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

/// A lab whose config probes every series once a second.
async fn lab_probing_every_second() -> TestLab {
    TestLab::spawn_with(|c: &mut Config| c.probe.interval_ms = 1000).await
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
    let lab = lab_probing_every_second().await;
    let s = ServeProcess::start(&lab.config_path, &lab.data_dir());
    let http = http();
    assert_eq!(get(&http, format!("{}/healthz", s.base)).await.0, 200);
    assert_eq!(get(&http, format!("{}/readyz", s.base)).await.0, 200);

    let st = until(
        &http,
        &s,
        Duration::from_secs(10),
        "every series reported",
        |st| {
            // The three hosts with three paths each, and the three merged prefixes' original
            // domains with one each.
            st["hosts"].as_object().is_some_and(|h| {
                h.len() == 6
                    && h.iter().all(|(name, host)| {
                        let paths = if name.starts_with("cdn") { 3 } else { 1 };
                        host["by_region_resolver"]
                            .as_object()
                            .is_some_and(|m| m.len() == 6)
                            && host["by_path"]
                                .as_object()
                                .is_some_and(|m| m.len() == paths)
                    })
            })
        },
    )
    .await;
    assert_eq!(st["scheduler"]["series"], 54 + 18);
    let east = &st["hosts"]["cdn.shop.test"]["by_region_resolver"]["cn-east/isp"];
    assert_eq!(east["latest_failed"], 0, "{east}");
    assert_eq!(east["success_ratio_15m"], 1.0, "{east}");

    // A vendor-side 502 shows, with its class, on that vendor's host only.
    lab.fault(r#"{"kind":"http_status","status":502,"vendor":"beta"}"#)
        .await;
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
    let lab = lab_probing_every_second().await;
    let (path, config) = (&lab.config_path, &lab.config);
    let s = ServeProcess::start(path, &lab.data_dir());
    let http = http();
    until(&http, &s, Duration::from_secs(5), "72 series", |st| {
        st["scheduler"]["series"] == 54 + 18 // the original domains' 18 too
    })
    .await;

    let mut smaller = config.clone();
    smaller.hosts.retain(|h| h.domain != "cdn-bak.shop.test");
    std::fs::write(path, smaller.to_toml()).unwrap();
    s.process.signal("-HUP");
    until(
        &http,
        &s,
        Duration::from_secs(5),
        "54 series after the reload",
        |st| st["scheduler"]["series"] == 36 + 18,
    )
    .await;

    let bad = smaller
        .to_toml()
        .replace("interval_ms = 1000", "interval_ms = 1000\nintervall_ms = 5");
    std::fs::write(path, bad).unwrap();
    s.process.signal("-HUP");
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
        st["scheduler"]["series"],
        36 + 18,
        "the old config keeps running"
    );
    let started = st["scheduler"]["probes_started"].as_u64().unwrap();
    until(&http, &s, Duration::from_secs(5), "probing goes on", |st| {
        st["scheduler"]["probes_started"].as_u64().unwrap() > started + 36 + 18
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
    let lab = lab_probing_every_second().await;
    let data = lab.data_dir();
    let mut s = ServeProcess::start(&lab.config_path, &data);
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
    s.process.signal("-TERM");
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
    let lab = lab_probing_every_second().await;
    let data = lab.data_dir();
    let db = data.join("cdnwatch.db");
    let mut last = 0i64;
    for round in 0..6u64 {
        let mut s = ServeProcess::start(&lab.config_path, &data);
        // Some results committed by this process (read from the file: the status API is cached).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !db.exists() || count(&db, "SELECT COUNT(*) FROM results").await <= last + 20 {
            assert!(
                Instant::now() < deadline,
                "no results written; log:\n{}",
                s.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Kill at a different moment of the writer's cycle each round.
        tokio::time::sleep(Duration::from_millis(37 * round * round)).await;
        s.process.signal("-KILL");
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
