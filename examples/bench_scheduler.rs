//! Scheduler benchmark (printed figures, not a timed test): N series at a fixed interval against a
//! lab running in another process, through the whole service (scheduler → prober → store), for a
//! while; prints the p50/p99 start lag, the process's CPU and its peak RSS.
//! Usage (scripts/bench-scheduler.sh drives it):
//!   bench_scheduler --config LAB.toml [--series 5000] [--interval-ms 10000] [--seconds 60]

#[path = "support/bench_io.rs"]
mod bench_io;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bench_io::{arg, cpu_and_peak_rss};
use cdnwatch::config::Config;
use cdnwatch::startup::{self as service, ServeOptions};

fn rss_mb() -> f64 {
    bench_io::rss_kib("self").expect("this process's /proc status") as f64 / 1024.0
}

#[tokio::main]
async fn main() {
    let lab_config = PathBuf::from(arg("--config", ""));
    let series: usize = arg("--series", "5000").parse().unwrap();
    let interval_ms: u64 = arg("--interval-ms", "10000").parse().unwrap();
    let seconds: u64 = arg("--seconds", "60").parse().unwrap();
    let mut config = Config::load(&lab_config).unwrap_or_else(|e| panic!("{e}"));
    bench_io::widen(&mut config, series);
    config.probe.interval_ms = interval_ms;
    config.probe.concurrency = 512;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.toml");
    // ca_file paths are relative to the lab's config directory: make them absolute.
    let base = config.base_dir.canonicalize().unwrap();
    for v in &mut config.vendors {
        v.ca_file = v.ca_file.take().map(|p| base.join(p));
    }
    std::fs::write(&path, config.to_toml()).unwrap();
    let total = Config::load(&path).unwrap().summary().series;
    eprintln!("rss before start: {:.0} MB", rss_mb());
    let running = service::start(ServeOptions {
        config_path: path,
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_listen: None,
        prober_id: "bench".into(),
        tokens: Default::default(),
        bump_version: None,
        init_key: false,
        clock: cdnwatch::clock::Clock::system(),
    })
    .await
    .unwrap();
    eprintln!("rss after start: {:.0} MB", rss_mb());
    // Warm-up: one interval, then measure over `seconds`.
    tokio::time::sleep(Duration::from_millis(interval_ms)).await;
    eprintln!("rss after one interval: {:.0} MB", rss_mb());
    *running.state.scheduler.lag.lock().unwrap() = Default::default();
    let started0 = running.state.scheduler.started.load(Ordering::Relaxed);
    let (cpu0, _) = cpu_and_peak_rss();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu1, rss) = cpu_and_peak_rss();
    eprintln!("rss at the end: {:.0} MB", rss_mb());
    let started = running.state.scheduler.started.load(Ordering::Relaxed) - started0;
    let lag = running.state.scheduler.lag.lock().unwrap().clone();
    let stats = running.state.ingest.stats();
    println!(
        "BENCHSCHED series={total} interval_ms={interval_ms} seconds={seconds} probes_started={started} probes_per_s={:.0} lag_p50_ms={:.3} lag_p99_ms={:.3} cpu_s={:.1} cpu_pct={:.0} peak_rss_mb={rss:.0} skipped_overlap={} stored={} dropped={} (targets: p99 lag <= 5 ms, RSS <= 100 MB)",
        started as f64 / seconds as f64,
        lag.quantile_ms(0.5).unwrap_or(f64::NAN),
        lag.quantile_ms(0.99).unwrap_or(f64::NAN),
        cpu1 - cpu0,
        100.0 * (cpu1 - cpu0) / seconds as f64,
        running
            .state
            .scheduler
            .skipped_overlap
            .load(Ordering::Relaxed),
        stats.written.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed),
    );
    running.shutdown().await;
}
