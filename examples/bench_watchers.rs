//! Watchers benchmark (printed figures, not a timed test): N long-poll watchers parked on a running
//! `cdnwatch serve` (another process), the server's memory per waiter, then a new version and the
//! time until every watcher has it.
//! Usage (scripts/bench-watchers.sh drives it):
//!   bench_watchers --url http://ADDR --pid PID --token ADMIN_TOKEN [--watchers 10000]

#[path = "support/bench_io.rs"]
mod bench_io;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_io::arg;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

fn rss_kib(pid: &str) -> u64 {
    bench_io::rss_kib(pid).expect("the server's /proc status")
}

/// Sends one raw HTTP/1.1 request and reads the whole response (Content-Length bodies only).
async fn exchange(stream: &mut TcpStream, request: &str) -> (u16, String) {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::with_capacity(4096);
    bench_io::read_response(stream, &mut buf)
        .await
        .expect("the server closed the connection")
}

fn version_of(body: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["configVersion"].as_i64().unwrap()
}

/// Forces a host off through the admin API, so that the decision loop publishes a new version.
async fn post_override(addr: &str, token: &str) {
    let body = r#"{"host":"cdn-ss.shop.test","kind":"force_disable","reason":"watchers benchmark","actor":"bench"}"#;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /api/v1/overrides HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, answer) = exchange(&mut s, &request).await;
    assert_eq!(status, 201, "{answer}");
}

/// Collects every watcher's answer: how many got a version newer than `version`, how many did
/// not, and when the first and the last came.
async fn answers(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(Instant, i64)>,
    version: i64,
    since: Instant,
) -> (usize, usize, Instant, Instant) {
    let mut first: Option<Instant> = None;
    let mut last = since;
    let mut got = 0usize;
    let mut wrong = 0usize;
    while let Some((at, v)) = rx.recv().await {
        if v > version {
            got += 1;
        } else {
            wrong += 1;
        }
        first = Some(first.map_or(at, |f| f.min(at)));
        last = last.max(at);
    }
    (got, wrong, first.unwrap(), last)
}

#[tokio::main]
async fn main() {
    let url = arg("--url", "");
    let pid = arg("--pid", "");
    let token = arg("--token", "");
    let n: usize = arg("--watchers", "10000").parse().unwrap();
    let addr = url.trim_start_matches("http://").to_string();
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");

    let mut s = TcpStream::connect(&addr).await.unwrap();
    let (status, body) = exchange(&mut s, &get("/api/v1/hostlist")).await;
    assert_eq!(status, 200);
    let version = version_of(&body);
    drop(s);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(&pid);

    // Park N watchers, each on its own connection, opened 256 at a time.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, i64)>();
    let gate = Arc::new(Semaphore::new(256));
    let parked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t_connect = Instant::now();
    for _ in 0..n {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (tx, parked, addr) = (tx.clone(), parked.clone(), addr.clone());
        let request = get(&format!(
            "/api/v1/hostlist/watch?version={version}&timeout=55"
        ));
        tokio::spawn(async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            s.write_all(request.as_bytes()).await.unwrap();
            drop(permit);
            parked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // The request is written; read the answer when it comes.
            let (status, body) = exchange(&mut s, "").await;
            let got = if status == 200 { version_of(&body) } else { -1 };
            let _ = tx.send((Instant::now(), got));
        });
    }
    drop(tx);
    while parked.load(std::sync::atomic::Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    // Let the server take every request in.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_parked = rss_kib(&pid);

    // A new version: an override through the admin API; the decision loop publishes it.
    post_override(&addr, &token).await;
    let t_override = Instant::now();
    let (got, wrong, first, last) = answers(&mut rx, version, t_override).await;
    println!(
        "BENCHWATCH watchers={n} connect_s={connect_s:.2} server_rss_before_mb={:.1} server_rss_parked_mb={:.1} bytes_per_waiter={:.0} delivered={got} not_delivered={wrong} override_to_first_ms={:.0} first_to_last_ms={:.1}",
        rss_before as f64 / 1024.0,
        rss_parked as f64 / 1024.0,
        (rss_parked.saturating_sub(rss_before)) as f64 * 1024.0 / n as f64,
        (first - t_override).as_secs_f64() * 1000.0,
        (last - first).as_secs_f64() * 1000.0,
    );
}
