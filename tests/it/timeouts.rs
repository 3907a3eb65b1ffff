//! What a timed-out probe measured: the phase a timeout ended records the time it waited (about its
//! timeout), the total includes it, and the histograms, the stored columns, the `probe` table and the
//! host page show it — so a slow edge and a fast one do not look alike. A probe that fails fast
//! records only what it measured.

use std::ops::Range;

use crate::harness::*;
use cdnwatch::model::{EdgeResult, FailureClass as C, Phase};
use cdnwatch::series::SeriesKey;
use cdnwatch::store::Store;

/// The phases' timeouts in these tests, in ms: short, so each case waits well under a second.
const DNS_MS: u64 = 300;
const TLS_MS: u64 = 300;
const FIRST_BYTE_MS: u64 = 300;
const TRANSFER_MS: u64 = 400;

/// How far past its timeout a phase may end on a machine held alone: the timer's and the
/// scheduler's slack, never a second timeout.
const SLACK_MS: f64 = 200.0;

fn short_timeouts(c: &mut cdnwatch::config::Config) {
    let t = &mut c.probe.timeouts;
    (t.dns_ms, t.connect_ms, t.tls_ms) = (DNS_MS, 300, TLS_MS);
    (t.first_byte_ms, t.transfer_ms) = (FIRST_BYTE_MS, TRANSFER_MS);
}

fn around(timeout_ms: u64) -> Range<f64> {
    timeout_ms as f64..timeout_ms as f64 + SLACK_MS
}

struct Case {
    fault: &'static str,
    class: C,
    phase: Phase,
    timeout_ms: u64,
}

/// The figure of the phase a result failed in.
fn figure(e: &EdgeResult, phase: Phase) -> Option<f64> {
    e.phase_time(phase).map(|t| t.ms())
}

#[tokio::test]
async fn each_phase_a_timeout_ends_records_the_time_it_waited_and_the_total_includes_it() {
    let cases = [
        Case {
            fault: r#"{"kind":"dns_timeout"}"#,
            class: C::DnsTimeout,
            phase: Phase::Resolve,
            timeout_ms: DNS_MS,
        },
        Case {
            fault: r#"{"kind":"blackhole","vendor":"alpha"}"#,
            class: C::TlsTimeout,
            phase: Phase::Tls,
            timeout_ms: TLS_MS,
        },
        Case {
            fault: r#"{"kind":"delay","ms":1500}"#,
            class: C::HttpTimeout,
            phase: Phase::Processing,
            timeout_ms: FIRST_BYTE_MS,
        },
        Case {
            fault: r#"{"kind":"slow_body","bytes_per_sec":1000}"#,
            class: C::HttpTimeout,
            phase: Phase::Transfer,
            timeout_ms: TRANSFER_MS,
        },
    ];
    let s = TestLab::spawn_alone_with(short_timeouts).await;
    for c in &cases {
        s.fault(c.fault).await;
        let r = s.probe_primary().await;
        assert!(!r.results.is_empty(), "{}", c.fault);
        for e in &r.results {
            let f = e.failure.as_ref().expect("the probe failed");
            assert_eq!((f.class, f.phase), (c.class, c.phase), "{}: {f:?}", c.fault);
            let waited = figure(e, c.phase).unwrap_or_else(|| panic!("{}: no figure", c.fault));
            assert!(
                around(c.timeout_ms).contains(&waited),
                "{}: {} waited {waited:.1} ms, timeout {} ms",
                c.fault,
                c.phase,
                c.timeout_ms
            );
            assert!(e.phase_time(c.phase).unwrap().timed_out(), "{}", c.fault);
            let total = e.total_ms.expect("a total");
            let before: f64 = Phase::ALL
                .into_iter()
                .take_while(|p| *p != c.phase)
                .filter_map(|p| figure(e, p))
                .sum();
            assert!(
                (total - (before + waited)).abs() < 0.01,
                "{}: the total {total:.1} ms is the phases' sum, the wait included",
                c.fault
            );
        }
        s.clear().await;
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_probe_that_fails_fast_records_only_what_it_measured() {
    let s = TestLab::spawn_with(short_timeouts).await;
    s.fault(r#"{"kind":"refuse","vendor":"alpha","region":"cn-east"}"#)
        .await;
    let r = s.probe_primary().await;
    for e in &r.results {
        assert_eq!(e.failure_class(), Some(C::TcpRefused));
        assert_eq!(
            (e.connect_ms, e.tls_ms, e.first_byte_ms),
            (None, None, None)
        );
        assert!(!e.total_time().unwrap().timed_out());
        assert!(e.total_ms.unwrap() < 100.0, "{:?}", e.total_ms);
    }
    s.clear().await;
    s.fault(r#"{"kind":"dns_nxdomain"}"#).await;
    let r = s.probe_primary().await;
    let e = &r.results[0];
    assert_eq!(e.failure_class(), Some(C::DnsNxdomain));
    assert!(e.dns_ms.unwrap() < 100.0, "{:?}", e.dns_ms);
    assert!(!e.phase_time(Phase::Resolve).unwrap().timed_out());
    s.shutdown().await;
}

/// `probe_http_duration_seconds_bucket` of the processing phase at bound `le`, summed over series.
fn processing_bucket(metrics: &str, le: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("probe_http_duration_seconds_bucket{"))
        .filter(|l| l.contains(r#"phase="processing""#) && l.contains(&format!(r#"le="{le}""#)))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_first_byte_timeout_is_counted_at_its_timeout_stored_and_shown_as_one() {
    let e = TestApp::stepped_alone_with(short_timeouts).await;
    e.fault(r#"{"kind":"delay","ms":1500}"#).await;
    e.round().await;

    // The phase histogram counts every timed-out probe in the bucket of its timeout (0.3 s).
    let metrics = e.get("/metrics").await.text().await.unwrap();
    let (below, at) = (
        processing_bucket(&metrics, "0.25"),
        processing_bucket(&metrics, "0.5"),
    );
    assert!(
        below == 0.0 && at > 0.0,
        "processing le=0.25: {below}, le=0.5: {at}"
    );

    // The stored columns hold the wait, the total includes it.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", e.db_path().display()))
        .await
        .unwrap();
    let rows: Vec<(Option<i64>, Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT first_byte_us, total_us, failure FROM results")
            .fetch_all(&db)
            .await
            .unwrap();
    assert!(!rows.is_empty());
    let us = |ms: u64| (ms * 1000) as i64;
    for (first_byte, total, failure) in &rows {
        assert_eq!(failure.as_deref(), Some("http_timeout"));
        let first_byte = first_byte.expect("the first byte's wait is stored");
        assert!(
            (us(FIRST_BYTE_MS)..us(FIRST_BYTE_MS) + 200_000).contains(&first_byte),
            "first_byte_us {first_byte}"
        );
        assert!(total.expect("a total") > first_byte);
    }

    // The host page shows the wait, marked as a timeout.
    let page = e.get("/hosts/cdn.shop.test").await.text().await.unwrap();
    assert!(page.contains(" (timeout)</td>"), "{page}");
    assert!(page.contains(">≥3"), "the wait, about 300 ms: {page}");

    // The store's rollup histograms count it at its timeout too.
    let store = Store::open(&e.db_path()).await.unwrap();
    let later = chrono::Utc::now().timestamp_millis() + 3_600_000;
    store.roll_up(later).await.unwrap();
    let key = SeriesKey {
        host: "cdn.shop.test".into(),
        path: "/image/probe.jpg".into(),
        region: "cn-east".into(),
        resolver: "isp".into(),
    };
    let rows = store.rollups(&key, false, 0, later).await.unwrap();
    let first_byte = &rows.first().expect("a minute rolled up").agg.hists[3];
    let median = first_byte.quantile_ms(0.5).expect("first bytes counted");
    assert!(
        (250.0..600.0).contains(&median),
        "rollup first-byte median {median:.0} ms"
    );
    e.stop().await;
}
