//! Metrics benchmark, printing figures (not a timed test):
//!   1. the hot path: `Metrics::observe_probe` for probes of 2 edges each, on 1 and on 2 threads
//!      at once (the scheduler's sink runs on every worker), in µs per probe;
//!   2. a scrape: encoding every series as text, its size, and gzip (what `/metrics` serves to
//!      Prometheus), p50 of several runs.
//!
//! Usage: cargo run --release --example bench_metrics [-- --series N]  (default 5004: the
//! scheduler benchmark's 139 hosts × 12 regions × 3 resolvers, one path each)

use std::time::Instant;

use cdnwatch::metrics::{Metrics, Source};
use cdnwatch::model::{CertInfo, EdgeResult, Failure, FailureClass, Phase};

const PROBES_PER_THREAD: usize = 500_000;

fn probe(series: usize, i: usize) -> Vec<EdgeResult> {
    let at = chrono::Utc::now();
    let failed = i.is_multiple_of(20);
    let jitter = (i % 17) as f64 * 0.3;
    (1..=2)
        .map(|edge| EdgeResult {
            at,
            host: format!("cdn{}.shop.test", series / 36),
            path: "/image/probe.jpg".into(),
            region: format!("region-{:02}", series / 3 % 12),
            resolver: ["isp", "public", "doh"][series % 3].into(),
            edge_ip: Some(format!("127.21.1.{edge}").parse().unwrap()),
            dns_ms: Some(4.0 + jitter),
            connect_ms: Some(12.0 + jitter),
            tls_ms: Some(30.0 + jitter),
            first_byte_ms: Some(45.0 + jitter),
            transfer_ms: Some(80.0 + jitter),
            total_ms: Some(171.0 + jitter),
            status: Some(if failed { 502 } else { 200 }),
            body_bytes: 4096,
            cert: Some(CertInfo {
                not_after: at + chrono::Duration::days(60),
                not_before: at,
                issuer: "bench".into(),
                subject: "bench".into(),
                verified: true,
            }),
            failure: failed
                .then(|| Failure::new(FailureClass::HttpStatus, Phase::Processing, "502")),
        })
        .collect()
}

fn observe(metrics: &Metrics, probes: &[Vec<EdgeResult>], n: usize, offset: usize) {
    for i in 0..n {
        let p = &probes[(i + offset) % probes.len()];
        metrics.observe_probe("alpha", Source::Local, p);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let series = args
        .iter()
        .position(|a| a == "--series")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5004usize);
    let metrics = Metrics::new().expect("metrics");
    // Two probes per series (one failing for every 20th), prepared outside the timing.
    let probes: Vec<Vec<EdgeResult>> = (0..series * 2).map(|i| probe(i % series, i)).collect();
    observe(&metrics, &probes, probes.len(), 0); // every series exists before timing

    let t = Instant::now();
    observe(&metrics, &probes, PROBES_PER_THREAD, 0);
    let one = t.elapsed().as_secs_f64() * 1e6 / PROBES_PER_THREAD as f64;
    let t = Instant::now();
    std::thread::scope(|s| {
        for k in 0..2 {
            let (m, p) = (&metrics, &probes);
            s.spawn(move || observe(m, p, PROBES_PER_THREAD, k * 7919));
        }
    });
    let wall = t.elapsed().as_secs_f64();
    let two = 2.0 * PROBES_PER_THREAD as f64 / wall;
    println!("series: {series} (2 edges per probe)");
    println!(
        "observe_probe, 1 thread:  {one:.2} µs per probe ({:.0} probes/s)",
        1e6 / one
    );
    println!("observe_probe, 2 threads: {two:.0} probes/s together");

    let mut encode_ms = Vec::new();
    let mut text = String::new();
    for _ in 0..7 {
        let t = Instant::now();
        text = metrics.encode().expect("encode");
        encode_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    encode_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let t = Instant::now();
    let rendered = metrics.render().expect("render");
    let render_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    for _ in 0..1000 {
        metrics.render().expect("render");
    }
    let cached_us = t.elapsed().as_secs_f64() * 1e3;
    let lines = text.lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "scrape: {lines} samples, {:.1} MB text, {:.2} MB gzip",
        text.len() as f64 / 1e6,
        rendered.gzip.len() as f64 / 1e6
    );
    println!(
        "encode p50 {:.1} ms (min {:.1}); encode + gzip {render_ms:.1} ms; a cached render {cached_us:.2} µs",
        encode_ms[encode_ms.len() / 2],
        encode_ms[0]
    );
}
