//! Agent benchmark (printed figures, not a timed test): one `cdnwatch agent` — run in this
//! process, so its CPU and memory are this process's — with N series of one region, the whole
//! path (scheduler → prober → spool → upload), against the lab in another process and a service
//! (`cdnwatch serve`) in a third; prints full HTTPS probes per minute per CPU core and peak RSS.
//! Usage (scripts/bench-agent.sh drives it):
//!   bench_agent --config LAB.toml --bin CDNWATCH [--series 5000] [--interval-ms 10000] [--seconds 60]
//!               [--max-edges N]
//! A probe is one series' round: its DNS lookup, then a full HTTPS fetch (new connection, TCP,
//! TLS handshake, GET, body) from each edge it resolved to, at most `--max-edges` of them (the
//! lab's hosts resolve to two). With `--max-edges 1` a probe is one fetch, as a
//! blackbox_exporter probe is.

#[path = "support/bench_io.rs"]
mod bench_io;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bench_io::{arg, cpu_and_peak_rss};
use cdnwatch::agent::{self, AgentOptions};
use cdnwatch::config::{AgentSettings, Config};
use tokio_util::sync::CancellationToken;

/// The lab's config with only its first region, widened to `series` series (more paths per
/// host: the query string makes each a distinct series), spoken for by `agent-bench`.
fn config(
    lab: &Path,
    (series, interval_ms, max_edges): (usize, u64, Option<usize>),
    token_file: &Path,
) -> Config {
    let mut c = Config::load(lab).unwrap_or_else(|e| panic!("{e}"));
    c.regions.truncate(1);
    c.merged_hosts.clear();
    bench_io::widen(&mut c, series);
    c.probe.interval_ms = interval_ms;
    c.probe.concurrency = 512;
    if let Some(n) = max_edges {
        c.probe.max_edges = n;
    }
    let base = c.base_dir.canonicalize().unwrap();
    for v in &mut c.vendors {
        v.ca_file = v.ca_file.take().map(|p| base.join(p));
    }
    c.agents = vec![AgentSettings {
        id: "agent-bench".into(),
        regions: vec![c.regions[0].name.clone()],
        token_sha256: Vec::new(),
        token_files: vec![token_file.to_owned()],
    }];
    c
}

/// `cdnwatch serve` on `config`, and its base URL.
fn serve(bin: &str, config: &Path, data: &Path) -> (std::process::Child, String) {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    for line in out.lines() {
        if let Some(url) = line.unwrap().strip_prefix("cdnwatch listening on ") {
            return (child, url.trim().to_string());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not start");
}

/// Probes the service stored from the agent started within [from_ms, to_ms): distinct
/// (series, start) pairs, and their edge results.
async fn stored(db: &Path, from_ms: i64, to_ms: i64) -> (i64, i64) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let q = "SELECT COUNT(DISTINCT series_id || '/' || at_ms), COUNT(*) FROM results WHERE at_ms >= ? AND at_ms < ?";
    let row: (i64, i64) = sqlx::query_as(q)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    row
}

#[tokio::main]
async fn main() {
    let lab = PathBuf::from(arg("--config", ""));
    let bin = arg("--bin", "target/release/cdnwatch");
    let series: usize = arg("--series", "5000").parse().unwrap();
    let interval_ms: u64 = arg("--interval-ms", "10000").parse().unwrap();
    let seconds: u64 = arg("--seconds", "60").parse().unwrap();
    let max_edges: Option<usize> =
        Some(arg("--max-edges", "0").parse().unwrap()).filter(|n| *n > 0);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("agent.token");
    let token = hex::encode(cdnwatch::auth::random_bytes::<32>());
    std::fs::write(&token_file, &token).unwrap();
    let c = config(&lab, (series, interval_ms, max_edges), &token_file);
    let max_edges = c.probe.max_edges;
    let total = c.summary().series;
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, c.to_toml()).unwrap();
    let (mut service, base) = serve(&bin, &path, &dir.path().join("data"));
    let stop = CancellationToken::new();
    let running = tokio::spawn(agent::run(
        AgentOptions {
            server: base,
            id: "agent-bench".into(),
            token,
            spool_dir: dir.path().join("spool"),
            spool_max_bytes: agent::spool::DEFAULT_MAX_BYTES,
            spool_max_age: agent::spool::DEFAULT_MAX_AGE,
            roots: cdnwatch::trust::root_store(true, &[]),
            clock: cdnwatch::clock::Clock::system(),
        },
        stop.clone(),
    ));
    // Warm-up: two intervals (the assignment, TLS setups, the first full round), then measure.
    tokio::time::sleep(Duration::from_millis(2 * interval_ms)).await;
    let (cpu0, _) = cpu_and_peak_rss();
    let t0 = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu1, rss) = cpu_and_peak_rss();
    let t1 = chrono::Utc::now().timestamp_millis();
    // What was probed in the window reaches the store within a few seconds (1 s batches).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let db = dir.path().join("data").join("cdnwatch.db");
    let (probes, results) = stored(&db, t0, t1).await;
    stop.cancel();
    let _ = running.await;
    let _ = service.kill();
    let _ = service.wait();
    let minutes = (t1 - t0) as f64 / 60_000.0;
    let cores = (cpu1 - cpu0) / ((t1 - t0) as f64 / 1000.0);
    let per_min = probes as f64 / minutes;
    println!(
        "BENCHAGENT series={total} max_edges={max_edges} interval_ms={interval_ms} seconds={seconds} probes={probes} https_fetches={results} probes_per_min={per_min:.0} cpu_cores={cores:.3} probes_per_min_per_core={:.0} https_fetches_per_min_per_core={:.0} peak_rss_mb={rss:.1} (targets: >= 100,000 probes/min/core, RSS <= 64 MB)",
        per_min / cores,
        results as f64 / minutes / cores
    );
}
