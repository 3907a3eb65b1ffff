//! The engine names each lab fault once, by the smallest scope that explains it: a vendor in one
//! region, a path prefix on one vendor, one edge — one event per scope, not one per edge per host.
//! Stepped clock: a round per look.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

const SETTLE: Duration = Duration::from_secs(15);

/// The `degraded` events' texts, once the first has come and a few more rounds have run.
async fn degraded_after(e: &TestApp, fault: &str) -> Vec<String> {
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(fault).await;
    e.wait_event(SETTLE, "degraded").await;
    e.rounds(4).await;
    e.events()
        .await
        .iter()
        .filter(|ev| ev["reason"] == "degraded")
        .map(|ev: &Value| ev["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_502_on_a_vendor_in_one_region_is_one_event_naming_that_vendor_in_that_region() {
    let e = TestApp::stepped().await;
    let details = degraded_after(
        &e,
        r#"{"kind":"http_status","status":502,"vendor":"alpha","region":"cn-east"}"#,
    )
    .await;
    assert_eq!(
        details.len(),
        1,
        "one event, not one per edge per host: {details:?}"
    );
    assert!(
        details[0].starts_with("alpha in cn-east fails: http_status 502 in processing")
            && details[0].ends_with("on cdn-ss.shop.test and cdn.shop.test"),
        "{details:?}"
    );
    assert!(
        all_enabled(&e.document().await.unwrap()),
        "one region is below the quorum"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_broken_on_one_vendor_is_one_event_naming_that_prefix_on_that_vendor() {
    let e = TestApp::stepped_with(with_product_path).await;
    let details = degraded_after(
        &e,
        r#"{"kind":"http_status","status":502,"vendor":"alpha","path_prefix":"/image"}"#,
    )
    .await;
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(
        details[0].starts_with("prefix /image on alpha fails: http_status 502"),
        "{details:?}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_edge_is_one_event_naming_that_edge_for_every_host_it_serves() {
    let e = TestApp::stepped().await;
    let details = degraded_after(
        &e,
        r#"{"kind":"http_status","status":502,"edge":"127.21.1.1"}"#,
    )
    .await;
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(
        details[0].starts_with("edge 127.21.1.1 (cn-east) fails: http_status 502")
            && details[0].ends_with("on cdn-ss.shop.test and cdn.shop.test"),
        "{details:?}"
    );
    let events = e.events().await;
    assert!(
        !events.iter().any(|ev| ev["reason"] == "probe_network"),
        "every region's probe network works: {events:#?}"
    );
    e.stop().await;
}
