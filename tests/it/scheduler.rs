//! The scheduler on the real prober against the lab: series spread across the interval, each on
//! its rhythm, never overlapping itself, under the concurrency bound; a reload keeps the rhythm.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::TestLab;
use cdnwatch::config::Config;
use cdnwatch::probe::Prober;
use cdnwatch::scheduler::{Scheduler, Sink};
use cdnwatch::series::SeriesKey;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// (start, end) of every run of every series, in ms since the test's origin.
type Runs = Arc<Mutex<HashMap<SeriesKey, Vec<(f64, f64)>>>>;

fn recording_sink(origin: chrono::DateTime<chrono::Utc>) -> (Sink, Runs) {
    let runs: Runs = Arc::default();
    let r = runs.clone();
    let sink: Sink = Arc::new(move |spec, report| {
        let start = report.results[0].at;
        let ms = |t: chrono::DateTime<chrono::Utc>| {
            (t - origin).num_microseconds().unwrap() as f64 / 1000.0
        };
        r.lock()
            .unwrap()
            .entry(spec.key.clone())
            .or_default()
            .push((ms(start), ms(chrono::Utc::now())));
    });
    (sink, runs)
}

async fn run_for(
    config: &Config,
    prober: Arc<Prober>,
    sink: Sink,
    how_long: Duration,
) -> Arc<cdnwatch::scheduler::SchedulerStats> {
    let scheduler = Scheduler::new(config, prober, sink, Instant::now());
    let stats = scheduler.stats();
    let token = CancellationToken::new();
    let (_reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(scheduler.run(reload_rx, token.clone()));
    tokio::time::sleep(how_long).await;
    token.cancel();
    // Cancelling stops new starts and waits for the running probes.
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the scheduler stops")
        .unwrap();
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_are_spread_across_the_interval_and_keep_their_rhythm() {
    let s = TestLab::spawn_alone_with(|c| {
        c.probe.interval_ms = 1000;
        c.merged_hosts.clear(); // the hosts' 54 series only, not their original domains'
    })
    .await;
    let origin = chrono::Utc::now();
    let (sink, runs) = recording_sink(origin);
    let stats = run_for(
        &s.config,
        Arc::new(Prober::new(&s.config).unwrap()),
        sink,
        Duration::from_millis(2500),
    )
    .await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 54, "every series ran");
    // First round: 54 starts spread over one second, ~18.5 ms apart; no burst.
    let mut first: Vec<f64> = runs.values().map(|r| r[0].0).collect();
    first.sort_by(f64::total_cmp);
    for window in first.windows(9) {
        assert!(
            window[8] - window[0] > 100.0,
            "9 starts within {:.0} ms: a burst",
            window[8] - window[0]
        );
    }
    assert!(first[53] - first[0] > 900.0, "the round spans the interval");
    // Each series then runs once per interval, on time.
    for (key, r) in runs.iter() {
        assert!((2..=3).contains(&r.len()), "{key:?} ran {} times", r.len());
        for pair in r.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            // ±50 ms: a start a few ms late under a loaded machine is no loss of rhythm; a drift
            // or a skipped slot is (a gap near 0 or 2000 ms).
            assert!(
                (950.0..1050.0).contains(&gap),
                "{key:?}: {gap:.1} ms between starts"
            );
        }
    }
    let lag = stats.lag.lock().unwrap().clone();
    let p99 = lag.quantile_ms(0.99).unwrap();
    assert!(p99 < 20.0, "p99 start lag {p99:.2} ms");
    assert_eq!(stats.skipped_overlap.load(Ordering::Relaxed), 0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_slower_than_its_interval_never_overlaps_itself() {
    let s = TestLab::spawn_alone_with(|c| {
        c.probe.interval_ms = 400;
        c.probe.timeouts.first_byte_ms = 2000;
        // One slow series and one fast one.
        c.hosts.retain(|h| h.domain == "cdn.shop.test");
        c.hosts[0]
            .paths
            .retain(|p| p.path != "/community/probe.css");
        c.regions.truncate(1);
        c.regions[0].resolvers.truncate(1);
    })
    .await;
    s.fault(r#"{"kind":"delay","ms":700,"path_prefix":"/image"}"#)
        .await;
    let (sink, runs) = recording_sink(chrono::Utc::now());
    let stats = run_for(
        &s.config,
        Arc::new(Prober::new(&s.config).unwrap()),
        sink,
        Duration::from_millis(2000),
    )
    .await;
    let runs = runs.lock().unwrap().clone();
    let slow = runs
        .iter()
        .find(|(k, _)| k.path.starts_with("/image"))
        .unwrap()
        .1;
    let fast = runs
        .iter()
        .find(|(k, _)| k.path.starts_with("/product"))
        .unwrap()
        .1;
    assert!(slow.len() >= 2, "{slow:?}");
    for pair in slow.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "run started at {:.0} ms before the previous one ended at {:.0} ms",
            pair[1].0,
            pair[0].1
        );
    }
    assert!(
        stats.skipped_overlap.load(Ordering::Relaxed) >= 2,
        "skipped runs are counted"
    );
    assert!(
        fast.len() >= 4,
        "the other series kept its rhythm: {fast:?}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded() {
    let s = TestLab::spawn_with(|c| {
        c.probe.interval_ms = 300;
        c.probe.concurrency = 3;
    })
    .await;
    s.fault(r#"{"kind":"delay","ms":100}"#).await;
    let (sink, runs) = recording_sink(chrono::Utc::now());
    let stats = run_for(
        &s.config,
        Arc::new(Prober::new(&s.config).unwrap()),
        sink,
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(stats.peak_in_flight.load(Ordering::Relaxed), 3);
    assert!(!runs.lock().unwrap().is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn a_reload_keeps_the_rhythm_of_the_series_it_does_not_change() {
    let s = TestLab::spawn().await;
    let prober = Arc::new(Prober::new(&s.config).unwrap());
    let (sink, _) = recording_sink(chrono::Utc::now());
    let t0 = Instant::now();
    let mut sched = Scheduler::new(&s.config, prober.clone(), sink, t0);
    let key = |host: &str, path: &str, region: &str, resolver: &str| SeriesKey {
        host: host.into(),
        path: path.into(),
        region: region.into(),
        resolver: resolver.into(),
    };
    let kept = key("cdn.shop.test", "/image/probe.jpg", "cn-south", "public");
    let changed = key("cdn.shop.test", "/product/probe.json", "cn-east", "isp");
    let removed = key("cdn-bak.shop.test", "/image/probe.jpg", "cn-east", "isp");
    let before_kept = sched.planned(&kept).unwrap();
    let before_changed = sched.planned(&changed).unwrap();
    assert!(sched.planned(&removed).is_some());

    let mut next = s.config.clone();
    next.hosts.retain(|h| h.domain != "cdn-bak.shop.test");
    next.hosts[0].paths[1].accept_status = vec![200, 204];
    let new_path = cdnwatch::config::ProbePath {
        path: "/image/new.jpg".into(),
        ..next.hosts[0].paths[0].clone()
    };
    next.hosts[0].paths.push(new_path);
    sched.reload(&next, prober.clone(), t0 + Duration::from_millis(1234));
    // The hosts' paths, then the original domains': /image (two paths now), /product, /community.
    assert_eq!(sched.series_count(), 36 + 6 + 4 * 6);
    assert_eq!(
        sched.planned(&kept),
        Some(before_kept),
        "an unchanged series keeps its time"
    );
    assert_eq!(
        sched.planned(&changed),
        Some(before_changed),
        "a changed series keeps its slot"
    );
    assert_eq!(sched.planned(&removed), None);
    let added = sched
        .planned(&key("cdn.shop.test", "/image/new.jpg", "cn-east", "isp"))
        .unwrap();
    let offset = added - (t0 + Duration::from_millis(1234));
    assert!(
        offset < s.config.probe.interval(),
        "a new series starts within one interval"
    );

    // Nothing was due yet, so nothing ran; stale entries of the removed series are skipped.
    assert_eq!(
        sched.tick(t0 + Duration::from_millis(1)),
        1,
        "only the first series is due at t0"
    );
}
