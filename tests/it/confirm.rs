//! Confirm fast, on the lab with a stepped clock moved a little at a time
//! ([`cdnwatch::startup::Running::advance`]): a failed series is probed again at once and every
//! `confirm_interval_ms`, its failed confirmations count as rounds, so a vendor-wide failure is
//! out within about one interval and the confirmations; a healthy service probes nothing extra, a
//! transient failure flips nothing, and the confirmations of many series are spread in time.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::harness::*;

const SETTLE: Duration = Duration::from_secs(15);
const INTERVAL: Duration = Duration::from_millis(4000);
const CONFIRM: Duration = Duration::from_millis(200);
const STEP: Duration = Duration::from_millis(100);

async fn app() -> TestApp {
    let e = TestApp::stepped_with(|c| {
        c.probe.interval_ms = INTERVAL.as_millis() as u64;
        c.probe.confirm_interval_ms = CONFIRM.as_millis() as u64;
    })
    .await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.rounds(3).await;
    e
}

fn stepped_since(e: &TestApp, t0: chrono::DateTime<chrono::Utc>) -> Duration {
    (e.clock.now() - t0).to_std().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_wide_failure_is_out_after_fall_rounds_confirmations_within_about_one_interval() {
    let e = app().await;
    let stats = e.running().state.scheduler.clone();
    assert_eq!(
        stats.confirmations.load(Ordering::Relaxed),
        0,
        "a healthy service confirms nothing"
    );
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#)
        .await;
    let t0 = e.clock.now();
    loop {
        e.running().advance(STEP).await;
        let doc = e.document().await.unwrap();
        if disabled(&doc, PRIMARY) && disabled(&doc, SAME_VENDOR) {
            assert!(!disabled(&doc, OTHER_VENDOR));
            break;
        }
        assert!(
            stepped_since(&e, t0) < 3 * INTERVAL,
            "not out after {:?}",
            stepped_since(&e, t0)
        );
    }
    let took = stepped_since(&e, t0);
    // One interval for every series to meet the fault, then three confirmations (the first within
    // half a confirm interval), then the step that saw it.
    let bound = INTERVAL + 3 * CONFIRM + STEP;
    assert!(
        took <= bound,
        "out after {took:?} of stepped time, more than {bound:?}"
    );
    assert!(stats.confirmations.load(Ordering::Relaxed) > 0);
    // The confirmations were not a burst: every failed probe of alpha had an instant of its own.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", e.db_path().display()))
        .await
        .unwrap();
    let (probes, instants): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT r.at_ms) FROM results r JOIN series s ON s.id = r.series_id \
         WHERE r.at_ms >= ? AND r.failure IS NOT NULL AND r.edge LIKE '127.21.%' AND r.edge LIKE '%.1'",
    )
    .bind(t0.timestamp_millis())
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    let series = e.running().state.config.get().series().count() as i64;
    assert!(
        probes >= series / 3 * 2,
        "{probes} failed alpha probes for {series} series"
    );
    assert!(
        instants * 10 >= probes * 9,
        "{probes} failed alpha probes at only {instants} instants"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_passes_at_its_first_confirmation_flips_nothing() {
    let e = app().await;
    let stats = e.running().state.scheduler.clone();
    let versions = e.versions().await.len();
    e.fault(&format!(
        r#"{{"kind":"http_status","status":502,"host":"{PRIMARY}"}}"#
    ))
    .await;
    let t0 = e.clock.now();
    // Step a few ms at a time until one series of the primary has failed, then lift the fault
    // before its first confirmation runs.
    while !primary_failed(&e) {
        e.running().advance(Duration::from_millis(5)).await;
        assert!(stepped_since(&e, t0) < INTERVAL, "nothing failed");
    }
    assert_eq!(stats.confirmations.load(Ordering::Relaxed), 0);
    e.clear_faults().await;
    for _ in 0..(3 * INTERVAL.as_millis() / STEP.as_millis()) {
        e.running().advance(STEP).await;
    }
    let confirmations = stats.confirmations.load(Ordering::Relaxed);
    assert!(
        (1..=2).contains(&confirmations),
        "the failed series was confirmed once, and it passed: {confirmations} confirmations"
    );
    let doc = e.document().await.unwrap();
    assert!(all_enabled(&doc));
    assert_eq!(e.versions().await.len(), versions, "no new version");
}

/// Whether the primary has a failed result among the newest ones.
fn primary_failed(e: &TestApp) -> bool {
    let latest = e.running().state.latest();
    let fresh = latest.fresh_by_region(e.clock.now(), 10 * INTERVAL);
    fresh
        .values()
        .flatten()
        .any(|(r, _)| r.host == PRIMARY && !r.ok())
}
