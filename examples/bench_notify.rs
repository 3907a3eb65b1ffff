//! Notification benchmark (printed figures, not a timed test): the outbox in a real SQLite file,
//! the real sender of one webhook channel (`group_window_ms = 0`, its own rate of 600 a minute,
//! never reached here) and a fake receiver written here on loopback that answers 200 at once.
//!   1. latency: one decision's notice written to the outbox (the commit the decision loop makes
//!      right after the version is published) → the message accepted by the receiver, p50 and
//!      p99 over `--n` incidents one after another (target p99 ≤ 1 s, no throttling);
//!   2. throughput: `--notices` notices written at once for the channel → all marked sent; the
//!      notices and the messages (up to 500 notices each, 10 listed) per second.
//!
//! Usage: cargo run --release --example bench_notify -- --n 200 --notices 10000

#[path = "support/bench_io.rs"]
mod bench_io;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use cdnwatch::clock::Clock;
use cdnwatch::config::{ChannelKind, ChannelSettings, Config, Severity};
use cdnwatch::engine::{FaultScope, Reason};
use cdnwatch::incident::Decision;
use cdnwatch::metrics::Metrics;
use cdnwatch::notify::dispatch::{self, Outbox, Shared};
use cdnwatch::notify::{Change, Notice};
use cdnwatch::store::Store;
use cdnwatch::store::outbox::NewNotice;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const CHANNEL: &str = "bench";

/// A decision's notice for incident `id`, as the decision loop makes it.
fn notice(id: i64) -> Notice {
    let now = Utc::now();
    Notice {
        incident: id,
        seq: 1,
        change: Change::Decided,
        at: now,
        scope: FaultScope::Vendor {
            vendor: "alpha".into(),
        },
        severity: Severity::Critical,
        classes: Vec::new(),
        hosts: vec!["cdn.shop.test".into(), "cdn-ss.shop.test".into()],
        vendors: vec!["alpha".into()],
        regions: vec!["cn-east".into(), "cn-north".into(), "cn-south".into()],
        decision: Some(Decision::Flip {
            host: "cdn.shop.test".into(),
            enabled: false,
            reason: Reason::VendorWide,
            version: Some(id),
        }),
        version: Some(id),
        opened_at: now,
        resolved_at: None,
        link: format!("/incidents/{id}"),
    }
}

/// The fake receiver: every message's arrival, sent on `arrived`.
async fn receiver(arrived: mpsc::UnboundedSender<Instant>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new()
        .fallback(
            async |State(tx): State<mpsc::UnboundedSender<Instant>>, _body: axum::body::Bytes| {
                let _ = tx.send(Instant::now());
                "ok"
            },
        )
        .with_state(arrived);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// Writes `notices` for incidents `first..` in one transaction, as the decision loop does.
async fn enqueue(store: &Store, outbox: &Outbox, first: i64, count: usize) -> anyhow::Result<()> {
    let bodies: Vec<(i64, String)> = (0..count as i64)
        .map(|i| (first + i, serde_json::to_string(&notice(first + i))))
        .map(|(id, body)| body.map(|b| (id, b)))
        .collect::<Result<_, _>>()?;
    let rows: Vec<NewNotice<'_>> = bodies
        .iter()
        .map(|(id, body)| NewNotice {
            channel: CHANNEL,
            incident: *id,
            seq: 1,
            change: Change::Decided.as_str(),
            body: body.clone(),
        })
        .collect();
    store
        .save_incidents(&[], &rows, Utc::now().timestamp_millis())
        .await?;
    outbox.ring();
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The channel's config: one webhook to `url_file`, no grouping window.
fn config(dir: &std::path::Path, url_file: std::path::PathBuf) -> Config {
    let mut config = Config {
        base_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.notify.group_window_ms = 0;
    config.notify.channels = vec![ChannelSettings {
        name: CHANNEL.into(),
        kind: ChannelKind::Webhook,
        url_file: Some(url_file),
        url_env: None,
        secret_file: None,
        secret_env: None,
    }];
    config
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Part 1: `n` incidents one after another, each notice written → accepted.
async fn latency(
    store: &Store,
    outbox: &Outbox,
    arrived: &mut mpsc::UnboundedReceiver<Instant>,
    n: usize,
) -> anyhow::Result<()> {
    let mut took = Vec::with_capacity(n);
    for id in 1..=n as i64 {
        let t = Instant::now();
        enqueue(store, outbox, id, 1).await?;
        let at = tokio::time::timeout(Duration::from_secs(30), arrived.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the receiver stopped"))?;
        took.push(at - t);
    }
    took.sort();
    println!(
        "BENCHNOTIFY decision notice written -> message accepted, {n} incidents one at a time: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 <= 1000 ms)",
        ms(percentile(&took, 0.5)),
        ms(percentile(&took, 0.99)),
        ms(*took.last().unwrap_or(&Duration::ZERO))
    );
    Ok(())
}

/// Part 2: `total` notices at once (incidents from `first`) → all marked sent.
async fn throughput(
    store: &Store,
    outbox: &Outbox,
    arrived: &mut mpsc::UnboundedReceiver<Instant>,
    (first, total): (i64, usize),
) -> anyhow::Result<()> {
    let t = Instant::now();
    enqueue(store, outbox, first, total).await?;
    let written = t.elapsed();
    let mut messages = 0usize;
    loop {
        let counts = store.outbox_counts(CHANNEL).await?;
        while arrived.try_recv().is_ok() {
            messages += 1;
        }
        if counts.pending == 0 {
            anyhow::ensure!(
                counts.failed == 0,
                "notices failed: {:?}",
                counts.last_error
            );
            break;
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(600), "not drained");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "BENCHNOTIFY {total} notices for one channel (written in {:.0} ms) -> all marked sent after {:.2} s: {:.0} notices/s, {messages} messages, {:.1} messages/s",
        ms(written),
        secs,
        total as f64 / secs,
        messages as f64 / secs
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = bench_io::arg("--n", "200").parse()?;
    let total: usize = bench_io::arg("--notices", "10000").parse()?;
    let dir = tempfile::tempdir()?;
    let (tx, mut arrived) = mpsc::unbounded_channel();
    let url_file = dir.path().join("bench.url");
    std::fs::write(&url_file, receiver(tx).await?)?;
    let store = Store::open(&dir.path().join("bench.db")).await?;
    let outbox = Outbox::new();
    let shared = Shared {
        store: store.clone(),
        clock: Clock::system(),
        metrics: Metrics::new()?,
        outbox: outbox.clone(),
        roots: cdnwatch::trust::root_store(false, &[]),
    };
    let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
    let config = Arc::new(config(dir.path(), url_file));
    dispatch::spawn(&config, &shared, &stop, &tracker)?;
    latency(&store, &outbox, &mut arrived, n).await?;
    throughput(&store, &outbox, &mut arrived, (n as i64 + 1, total)).await?;
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}
