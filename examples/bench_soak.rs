//! Soak benchmark (printed figures, not a timed test): the public listener of a running
//! `cdnwatch serve` (another process, probing the lab) held at saturation for minutes by
//! host-list clients asking with their ETag (304), beside slow sockets that trickle headers and
//! watchers parked on the long poll. Every report line gives, over its window: the 304 answers per
//! second and their p99, the scheduler's p99 start lag (from the internal listener's /metrics), the
//! server's RSS, how many slow sockets are open and how many the server has closed, and how many
//! watchers are parked.
//! Usage (scripts/bench-soak.sh drives it):
//!   bench_soak --public http://ADDR --internal http://ADDR --pid PID [--slow 5000]
//!     [--watchers 10000] [--clients 32] [--seconds 600] [--every 60]

#[path = "support/bench_io.rs"]
mod bench_io;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bench_io::{arg, lag_buckets_in, lag_p99_ms, read_response};
use cdnwatch::hist::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn rss_mb(pid: &str) -> f64 {
    bench_io::rss_kib(pid).map_or(0.0, |kib| kib as f64 / 1024.0)
}

/// What the load tasks count; the reporter reads and resets the window's histogram.
#[derive(Default)]
struct Counters {
    not_modified: AtomicU64,
    other: AtomicU64,
    window: std::sync::Mutex<Histogram>,
    slow_open: AtomicUsize,
    slow_closed_by_server: AtomicU64,
    parked: AtomicUsize,
    watch_answers: AtomicU64,
    refused: AtomicU64,
}

/// One host-list client: back-to-back GETs with its ETag on one keep-alive connection.
async fn client(addr: String, etag: String, c: Arc<Counters>) {
    let request =
        format!("GET /api/v1/hostlist HTTP/1.1\r\nHost: {addr}\r\nIf-None-Match: {etag}\r\n\r\n");
    loop {
        let Ok(mut s) = TcpStream::connect(&addr).await else {
            c.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let _ = s.set_nodelay(true);
        let mut buf = Vec::with_capacity(1024);
        loop {
            let t = Instant::now();
            if s.write_all(request.as_bytes()).await.is_err() {
                break;
            }
            let Some((status, _)) = read_response(&mut s, &mut buf).await else {
                break;
            };
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if status == 304 {
                c.not_modified.fetch_add(1, Ordering::Relaxed);
                c.window.lock().unwrap().record_ms(ms);
            } else {
                c.other.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One slow socket: a request head sent one short header line a second, never finished. When the
/// server closes it (its header timeout), it opens another.
async fn slow(addr: String, c: Arc<Counters>) {
    loop {
        let Ok(mut s) = TcpStream::connect(&addr).await else {
            c.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        c.slow_open.fetch_add(1, Ordering::Relaxed);
        let mut ok = s
            .write_all(format!("GET /api/v1/hostlist HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
            .await
            .is_ok();
        let mut probe = [0u8; 512];
        while ok {
            tokio::time::sleep(Duration::from_secs(1)).await;
            ok = s.write_all(b"X-Slow: 1\r\n").await.is_ok();
            // A closed socket reads 0 (or an answer the server sent before closing).
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await
            {
                let _ = n;
                ok = false;
            }
        }
        c.slow_open.fetch_sub(1, Ordering::Relaxed);
        c.slow_closed_by_server.fetch_add(1, Ordering::Relaxed);
    }
}

/// One watcher: parked on the long poll at the newest version, parked again after each answer.
async fn watcher(addr: String, version: i64, c: Arc<Counters>) {
    let request = format!(
        "GET /api/v1/hostlist/watch?version={version}&timeout=55 HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    );
    loop {
        let Ok(mut s) = TcpStream::connect(&addr).await else {
            c.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let mut buf = Vec::with_capacity(2048);
        loop {
            if s.write_all(request.as_bytes()).await.is_err() {
                break;
            }
            c.parked.fetch_add(1, Ordering::Relaxed);
            let answer = read_response(&mut s, &mut buf).await;
            c.parked.fetch_sub(1, Ordering::Relaxed);
            if answer.is_none() {
                break;
            }
            c.watch_answers.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One GET on a fresh connection: its status, its head and its body.
async fn get(base: &str, path: &str) -> Option<(u16, String, String)> {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.ok()?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).await.ok()?;
    let end = all.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&all[..end]).to_string();
    let status = head.get(9..12)?.parse().ok()?;
    Some((
        status,
        head,
        String::from_utf8_lossy(&all[end + 4..]).to_string(),
    ))
}

/// The scheduler's start-lag histogram from /metrics: (upper bound in seconds, cumulative count).
async fn lag_buckets(internal: &str) -> Vec<(f64, u64)> {
    let Some((_, _, text)) = get(internal, "/metrics").await else {
        return Vec::new();
    };
    lag_buckets_in(&text)
}

#[tokio::main]
async fn main() {
    let public = arg("--public", "");
    let internal = arg("--internal", "");
    let pid = arg("--pid", "");
    let n_slow: usize = arg("--slow", "5000").parse().unwrap();
    let n_watch: usize = arg("--watchers", "10000").parse().unwrap();
    let n_clients: usize = arg("--clients", "32").parse().unwrap();
    let seconds: u64 = arg("--seconds", "600").parse().unwrap();
    let every: u64 = arg("--every", "60").parse().unwrap();
    let addr = public.trim_start_matches("http://").to_string();

    let (status, head, body) = get(&public, "/api/v1/hostlist")
        .await
        .expect("the host list");
    assert_eq!(status, 200, "{head}");
    let etag = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("etag:")
                .then(|| l[5..].trim().to_string())
        })
        .expect("an ETag");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let version = doc["configVersion"].as_i64().unwrap();
    let rss_start = rss_mb(&pid);
    println!("BENCHSOAK start version={version} etag={etag} server_rss_mb={rss_start:.1}");

    let c = Arc::new(Counters::default());
    start_load(&addr, &etag, version, (n_slow, n_watch, n_clients), &c).await;
    report(&c, &internal, &pid, seconds, every, rss_start).await;
}

/// Opens the watchers and slow sockets (256 at a time), then starts the host-list clients.
async fn start_load(
    addr: &str,
    etag: &str,
    version: i64,
    n: (usize, usize, usize),
    c: &Arc<Counters>,
) {
    let (n_slow, n_watch, n_clients) = n;
    let addr = addr.to_string();
    for i in 0..n_watch.max(n_slow) {
        if i < n_watch {
            tokio::spawn(watcher(addr.clone(), version, c.clone()));
        }
        if i < n_slow {
            tokio::spawn(slow(addr.clone(), c.clone()));
        }
        if i % 256 == 255 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for _ in 0..n_clients {
        tokio::spawn(client(addr.clone(), etag.to_string(), c.clone()));
    }
}

/// Prints one line per window until `seconds` have passed, then the totals.
async fn report(c: &Counters, internal: &str, pid: &str, seconds: u64, every: u64, rss_start: f64) {
    let t0 = Instant::now();
    let (mut lag_before, mut served_before) = (lag_buckets(internal).await, 0u64);
    let mut all = Histogram::default();
    let mut rss_peak = 0.0f64;
    while t0.elapsed() < Duration::from_secs(seconds) {
        let window = Duration::from_secs(
            every
                .min(seconds.saturating_sub(t0.elapsed().as_secs()))
                .max(1),
        );
        tokio::time::sleep(window).await;
        let h = std::mem::take(&mut *c.window.lock().unwrap());
        all.merge(&h);
        let served = c.not_modified.load(Ordering::Relaxed);
        let lag_after = lag_buckets(internal).await;
        let rss = rss_mb(pid);
        rss_peak = rss_peak.max(rss);
        println!(
            "BENCHSOAK t_s={} not_modified_per_s={:.0} p99_304_ms={:.2} scheduler_lag_p99_ms={} server_rss_mb={rss:.1} slow_open={} slow_closed_by_server={} watchers_parked={} watch_answers={} other_status={} refused_connects={}",
            t0.elapsed().as_secs(),
            (served - served_before) as f64 / window.as_secs_f64(),
            h.quantile_ms(0.99).unwrap_or(f64::NAN),
            lag_p99_ms(&lag_before, &lag_after).map_or("n/a".into(), |(ms, _)| format!("{ms:.1}")),
            c.slow_open.load(Ordering::Relaxed),
            c.slow_closed_by_server.load(Ordering::Relaxed),
            c.parked.load(Ordering::Relaxed),
            c.watch_answers.load(Ordering::Relaxed),
            c.other.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
        );
        (lag_before, served_before) = (lag_after, served);
    }
    println!(
        "BENCHSOAK total seconds={seconds} not_modified={} p99_304_ms={:.2} p999_304_ms={:.2} server_rss_start_mb={rss_start:.1} server_rss_peak_mb={rss_peak:.1}",
        c.not_modified.load(Ordering::Relaxed),
        all.quantile_ms(0.99).unwrap_or(f64::NAN),
        all.quantile_ms(0.999).unwrap_or(f64::NAN),
    );
}
