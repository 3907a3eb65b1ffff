//! Dashboard benchmark, printing figures (not a timed test): every on-call page rendered N times
//! through the real router (`tower::ServiceExt::oneshot`, no socket) on the store benchmark's
//! shape — 50 hosts × 20 regions × 3 resolvers = 3,000 series with 30 days of hour rollups — plus
//! what a running service has beside it: a day of minute rollups, 30 minutes of raw results at a
//! 30 s interval with two edges each, decision events and published versions.
//!
//! The store is built relative to the current time and kept in `--store DIR`; a later run reuses
//! it, topping it up to the present (a gap over a day rebuilds it).
//! Usage: cargo run --release --example bench_dashboard [-- --store DIR --n N --rebuild]

#[path = "support/bench_data.rs"]
mod bench_data;
#[path = "support/dashboard_store.rs"]
mod dashboard_store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bench_data::host_name;
use cdnwatch::publish::{Publisher, Signer};
use cdnwatch::store::writer::{self, WriterSettings};
use cdnwatch::store::{Retention, Store};
use cdnwatch::web::AppState;
use dashboard_store::{DAY_MS, config, fill, history, newest_result};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

struct Bench {
    state: AppState,
    _writer: (CancellationToken, TaskTracker),
}

/// The store writer's settings for the benchmark.
fn writer_settings() -> WriterSettings {
    WriterSettings {
        batch_size: 2_000,
        queue_capacity: 1_000,
        maintenance_interval: Duration::from_secs(3_600),
        retention: Retention {
            raw: Duration::from_secs(48 * 3_600),
            minute: Duration::from_secs(7 * 86_400),
            hour: Duration::from_secs(90 * 86_400),
        },
        clock: cdnwatch::clock::Clock::system(),
    }
}

async fn open(dir: &Path, rebuild: bool) -> Bench {
    if rebuild {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::fs::create_dir_all(dir).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let mut store = Store::open(&dir.join("cdnwatch.db")).await.unwrap();
    let mut have = newest_result(&store).await;
    if have.is_some_and(|h| now - h > DAY_MS) {
        store.close().await;
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        store = Store::open(&dir.join("cdnwatch.db")).await.unwrap();
        have = None;
    }
    let config = config();
    let signer = Arc::new(Signer::load_or_create(&dir.join("signing.key")).unwrap());
    let publisher = Arc::new(
        Publisher::open(store.clone(), signer, dir.join("version.floor"), None)
            .await
            .unwrap(),
    );
    if have.is_none() {
        history(&publisher, &store, &config, now).await;
    }
    fill(&store, have, now).await;
    let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
    let ingest = writer::spawn(store.clone(), writer_settings(), token.clone(), &tracker);
    let fleet = Arc::new(cdnwatch::fleet::Fleet::new(&config, chrono::Utc::now()).unwrap());
    let config = cdnwatch::config::LiveConfig::new(config);
    let metrics = cdnwatch::metrics::Metrics::new().expect("metrics");
    let results = cdnwatch::results::Results::new(ingest.clone(), metrics.clone(), config.clone());
    let state = AppState {
        store,
        ingest,
        results,
        scheduler: Arc::default(),
        config,
        clock: cdnwatch::clock::Clock::system(),
        tokens: Arc::new(cdnwatch::auth::Tokens { admin: None }),
        publisher,
        metrics,
        guards: Arc::default(),
        incidents: cdnwatch::incident::Board::new(),
        outbox: cdnwatch::notify::dispatch::Outbox::new(),
        fleet,
    };
    Bench {
        state,
        _writer: (token, tracker),
    }
}

fn pct(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
}

/// Renders `uri` once (printing that first time: caches cold), then `n` times; prints p50/p95.
async fn page(router: &axum::Router, uri: &str, n: usize) {
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    let mut first_ms = 0.0;
    for i in 0..=n {
        let t = Instant::now();
        let resp = router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(
            status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
        bytes = body.len();
        if i == 0 {
            first_ms = ms;
        } else {
            times.push(ms);
        }
    }
    println!(
        "BENCHDASH page={uri} n={n} p50_ms={:.1} p95_ms={:.1} first_ms={first_ms:.1} bytes={bytes}",
        pct(times.clone(), 0.5),
        pct(times, 0.95)
    );
}

/// The command line: `--store DIR`, `--n N`, `--rebuild`, `--dump DIR`.
fn args() -> (PathBuf, usize, bool, Option<PathBuf>) {
    let mut dir = PathBuf::from("data/bench-dashboard");
    let mut n = 100usize;
    let mut rebuild = false;
    let mut dump = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" => dir = PathBuf::from(it.next().expect("--store DIR")),
            "--n" => n = it.next().expect("--n N").parse().expect("a number"),
            "--rebuild" => rebuild = true,
            "--dump" => dump = Some(PathBuf::from(it.next().expect("--dump DIR"))),
            other => panic!("unknown argument {other}"),
        }
    }
    (dir, n, rebuild, dump)
}

/// The router with every route, as one listener serves it.
fn every_route(state: &cdnwatch::web::AppState) -> axum::Router {
    let http = cdnwatch::config::HttpSettings::default();
    let gates = cdnwatch::web::server::Gates::new(&http, None);
    cdnwatch::web::router(state.clone(), cdnwatch::web::Face::All, &gates)
}

#[tokio::main]
async fn main() {
    let (dir, n, rebuild, dump) = args();
    let bench = open(&dir, rebuild).await;
    let router = every_route(&bench.state);
    let host = host_name(3);
    let pages = [
        "/".to_string(),
        format!("/hosts/{host}"),
        format!("/hosts/{host}?window=1h"),
        format!("/hosts/{host}?window=24h"),
        format!("/hosts/{host}?window=7d"),
        format!("/hosts/{host}?window=30d"),
        "/paths".to_string(),
        "/events".to_string(),
        format!("/events?host={host}&since=3h"),
        format!("/events/incident?host={host}&since=3h"),
        "/events/incident?since=3h".to_string(),
        "/static/cdnwatch.css".to_string(),
    ];
    let file_mb: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum::<u64>()
        / 1_000_000;
    println!(
        "BENCHDASH store series=3000 hour_rollups=30d minute_rollups>=24h raw_results={} file_mb={file_mb} cores={}",
        bench.state.store.result_count().await.unwrap(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for uri in &pages {
        page(&router, uri, n).await;
    }
    // What `serve` does at start and every minute (web::dashboard::keep_warm): on fresh caches, the
    // background pass, then an engineer's first view.
    let fresh = every_route(&bench.state);
    let t = Instant::now();
    cdnwatch::web::dashboard::warm(&fresh).await;
    let warm_ms = t.elapsed().as_secs_f64() * 1000.0;
    for uri in ["/", "/paths"] {
        let t = Instant::now();
        let resp = fresh
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        println!(
            "BENCHDASH after_warm_pass page={uri} first_ms={:.1} (background pass {warm_ms:.1} ms)",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    if let Some(out) = dump {
        dump_pages(&router, &pages, &out).await;
    }
}

/// Writes each page's body to `out` (to look at them).
async fn dump_pages(router: &axum::Router, pages: &[String], out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    for (i, uri) in pages.iter().enumerate() {
        let resp = router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        std::fs::write(out.join(format!("page{i}.html")), &body).unwrap();
    }
}
