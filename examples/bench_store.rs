//! Store benchmark, printing figures (not a timed test):
//!
//! 1. ingest: results per second through the real path (`Ingest::submit` → batching writer →
//!    SQLite file), and bytes per raw result on disk;
//! 2. rollups: bytes per series-day of minute and hour rollups;
//! 3. dashboard-shaped queries on 30 days of rollups for 50 hosts × 20 regions × 3 resolvers:
//!    per-host summary over 24 h and per-series hourly chart over 30 days, p50/p95.
//!
//! Usage: cargo run --release --example bench_store [-- --results N --days D]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cdnwatch::model::{EdgeResult, Failure, FailureClass, Phase};
use cdnwatch::store::writer::{self, WriterSettings};
use cdnwatch::store::{Record, Retention, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[path = "support/bench_data.rs"]
mod bench_data;

use bench_data::HOUR_MS;

fn result(at_ms: i64, host: usize, region: usize, resolver: usize, i: u64) -> EdgeResult {
    let jitter = (i % 17) as f64 * 0.05;
    let failed = i.is_multiple_of(20);
    EdgeResult {
        at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
        host: format!("cdn{host}.shop.test"),
        path: "/image/probe.jpg".into(),
        region: format!("region-{region:02}"),
        resolver: ["isp", "public", "doh"][resolver].into(),
        edge_ip: Some(format!("127.21.{region}.{}", 1 + i % 2).parse().unwrap()),
        dns_ms: Some(0.4 + jitter),
        connect_ms: Some(0.2 + jitter),
        tls_ms: Some(1.0 + jitter),
        first_byte_ms: Some(0.6 + jitter),
        transfer_ms: Some(0.1),
        total_ms: Some(2.3 + 4.0 * jitter),
        status: Some(if failed { 502 } else { 200 }),
        body_bytes: 4096,
        cert: None,
        failure: failed.then(|| {
            Failure::new(
                FailureClass::HttpStatus,
                Phase::Processing,
                "status 502 not accepted",
            )
        }),
    }
}

fn file_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn pct(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
}

async fn ingest(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db")).await.unwrap();
    let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
    let settings = WriterSettings {
        batch_size: 2_000,
        queue_capacity: 100_000,
        maintenance_interval: Duration::from_secs(3600),
        retention: Retention {
            raw: Duration::from_secs(1 << 30),
            minute: Duration::from_secs(1 << 30),
            hour: Duration::from_secs(1 << 30),
        },
        clock: cdnwatch::clock::Clock::system(),
    };
    let ingest = writer::spawn(store.clone(), settings, token.clone(), &tracker);
    let prober: Arc<str> = Arc::from("bench");
    let t0 = Instant::now();
    let base = 1_800_000_000_000;
    for i in 0..n {
        let r = result(
            base + i as i64,
            (i % 50) as usize,
            (i / 50 % 20) as usize,
            (i / 1000 % 3) as usize,
            i,
        );
        let mut rec = Record {
            prober: prober.clone(),
            result: r,
        };
        // Backpressure for the benchmark only: a real prober drops instead of waiting.
        loop {
            match ingest.submit(rec.clone()) {
                Ok(()) => break,
                Err(_) => {
                    ingest.stats().dropped.fetch_sub(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                    rec = rec.clone();
                }
            }
        }
    }
    token.cancel();
    tracker.close();
    tracker.wait().await;
    let secs = t0.elapsed().as_secs_f64();
    let written = ingest.stats().written.load(Ordering::Relaxed);
    let bytes = file_bytes(dir.path());
    println!(
        "BENCHSTORE ingest results={written} seconds={secs:.2} results_per_s={:.0} batches={} bytes_per_raw_result={:.1}",
        written as f64 / secs,
        ingest.stats().batches.load(Ordering::Relaxed),
        bytes as f64 / written as f64
    );
    store.close().await;
}

/// Bytes per series-day of rollups, through the real write + rollup path: `series` series probed
/// every 10 s for one day.
async fn rollup_bytes(series: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db")).await.unwrap();
    let prober: Arc<str> = Arc::from("bench");
    let end = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS;
    let start = end - 24 * HOUR_MS;
    let mut batch = Vec::with_capacity(series);
    let (mut at, mut i) = (start, 0u64);
    while at < end {
        for s in 0..series {
            batch.push(Record {
                prober: prober.clone(),
                result: result(at + s as i64, s % 50, s / 50 % 20, s / 1000 % 3, i),
            });
            i += 1;
        }
        store.write_batch(&batch).await.unwrap();
        batch.clear();
        at += 10_000;
    }
    store.checkpoint().await.unwrap();
    let raw = file_bytes(dir.path());
    let t = Instant::now();
    let (mut minutes, mut hours) = (0, 0);
    loop {
        let r = store.roll_up(end + 2 * 60_000).await.unwrap();
        if r.minutes == 0 && r.hours == 0 {
            break;
        }
        minutes += r.minutes;
        hours += r.hours;
    }
    store.checkpoint().await.unwrap();
    let rolled = file_bytes(dir.path());
    println!(
        "BENCHSTORE rollup series={series} raw_results={i} minutes={minutes} hours={hours} rollup_seconds={:.1} rollup_bytes_per_series_day={:.0} (1440 minute rows + 24 hour rows) raw_bytes_per_result={:.1}",
        t.elapsed().as_secs_f64(),
        rolled.saturating_sub(raw) as f64 / series as f64,
        raw as f64 / i as f64,
    );
    store.close().await;
}

/// Dashboard-shaped queries on `days` of hour rollups for 50 hosts × 20 regions × 3 resolvers.
async fn queries(days: i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db")).await.unwrap();
    let end = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS;
    let start = end - days * 24 * HOUR_MS;
    let key = bench_data::key;
    let t = Instant::now();
    bench_data::import_hours(&store, start, days * 24).await;
    println!(
        "BENCHSTORE dataset hour_rows={} import_seconds={:.1} file_mb={:.0}",
        days * 24 * 3000,
        t.elapsed().as_secs_f64(),
        file_bytes(dir.path()) as f64 / 1e6
    );
    let mut summary = Vec::new();
    let mut chart = Vec::new();
    for q in 0..200usize {
        let t = Instant::now();
        let mut n = 0;
        for region in 0..20 {
            for resolver in ["isp", "public", "doh"] {
                n += store
                    .rollups(
                        &key(q % 50, region, resolver),
                        true,
                        end - 24 * HOUR_MS,
                        end,
                    )
                    .await
                    .unwrap()
                    .len();
            }
        }
        assert_eq!(n, 60 * 24);
        summary.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let got = store
            .rollups(&key(q % 50, q % 20, "isp"), true, start, end)
            .await
            .unwrap();
        chart.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(got.len() as i64, days * 24);
    }
    println!(
        "BENCHSTORE queries host_summary_24h p50_ms={:.2} p95_ms={:.2} series_chart_{days}d p50_ms={:.2} p95_ms={:.2} (target p95 <= 20 ms)",
        pct(summary.clone(), 0.5),
        pct(summary, 0.95),
        pct(chart.clone(), 0.5),
        pct(chart, 0.95)
    );
    store.close().await;
}

#[tokio::main]
async fn main() {
    let mut n = 500_000u64;
    let mut days = 30i64;
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--results" => n = w[1].parse().unwrap(),
            "--days" => days = w[1].parse().unwrap(),
            _ => {}
        }
    }
    ingest(n).await;
    rollup_bytes(100).await;
    queries(days).await;
}
