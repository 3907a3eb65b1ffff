//! A merged path prefix broken on the lab (the article, section 6, the `/image` incident): the
//! original domains are probed too, and the engine rolls the prefix's merge back (rate 0 in the
//! served `mergeHostConfigs`) while its original serves, restores it once healthy, leaves the
//! failing vendor when the original fails too, and flips nothing when the prefix fails
//! everywhere, original included — or when `path_fault = "raise"`. Stepped clock.

use std::time::Duration;

use cdnwatch::config::Config;
use cdnwatch::engine::PathFault;
use serde_json::Value;

use crate::harness::*;

const SETTLE: Duration = Duration::from_secs(20);
/// The article's incident: alpha's copies under `/image` are wrong.
const ALPHA_IMAGE: &str = r#"{"kind":"wrong_content","vendor":"alpha","path_prefix":"/image"}"#;
/// Every vendor's copies under `/image` are wrong (the unified origin's mirror copy).
const EVERY_IMAGE: &str = r#"{"kind":"wrong_content","path_prefix":"/image"}"#;
/// The original domain `image.shop.test` (on the lab's `origin` servers) fails too.
const ORIGINAL_DOWN: &str = r#"{"kind":"http_status","status":502,"host":"image.shop.test"}"#;

/// The served rate of the merge of `prefix`.
fn merge_rate(doc: &Value, prefix: &str) -> f64 {
    doc["mergeHostConfigs"]
        .as_array()
        .expect("mergeHostConfigs")
        .iter()
        .find(|m| m["pathPrefix"] == prefix)
        .and_then(|m| m["rate"].as_f64())
        .expect("the prefix is published")
}

fn reasons(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn started(edit: impl FnOnce(&mut Config)) -> TestApp {
    let e = TestApp::stepped_with(|c| {
        with_product_path(c);
        edit(c);
    })
    .await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_broken_on_one_vendor_with_its_original_serving_is_rolled_back_then_restored() {
    let e = started(|_| {}).await;
    e.fault(ALPHA_IMAGE).await;
    let doc = e
        .wait_doc(SETTLE, "the /image merge rolled back", |d| {
            merge_rate(d, "/image") == 0.0
        })
        .await;
    assert!(all_enabled(&doc), "a rollback flips no host: {doc:#}");
    assert_eq!(merge_rate(&doc, "/product"), 0.5, "other merges untouched");
    let rollback = e.wait_event(SETTLE, "merge_rollback").await;
    assert!(
        rollback["detail"].as_str().unwrap().contains(
            "prefix /image fails on alpha while its original domain image.shop.test serves"
        ),
        "{rollback:#}"
    );
    let versions = e.versions().await;
    assert_eq!(versions[0]["reason"], "merge_rollback", "{versions:#?}");
    e.clear_faults().await;
    let doc = e
        .wait_doc(SETTLE, "the /image merge restored", |d| {
            merge_rate(d, "/image") == 1.0
        })
        .await;
    assert!(all_enabled(&doc));
    e.wait_event(SETTLE, "merge_restore").await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_broken_on_one_vendor_and_on_its_original_disables_that_vendors_hosts() {
    let e = started(|_| {}).await;
    e.fault(ALPHA_IMAGE).await;
    e.fault(ORIGINAL_DOWN).await;
    let doc = e
        .wait_doc(SETTLE, "alpha's hosts disabled", |d| {
            disabled(d, "cdn.shop.test") && disabled(d, "cdn-ss.shop.test")
        })
        .await;
    assert!(!disabled(&doc, "cdn-bak.shop.test"), "{doc:#}");
    assert_eq!(merge_rate(&doc, "/image"), 1.0, "nothing to roll back onto");
    let events = e.events().await;
    assert!(
        events.iter().any(|ev| ev["reason"] == "prefix_vendor"),
        "{:?}",
        reasons(&events)
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_broken_everywhere_original_included_flips_nothing_and_is_rolled_back_once_the_original_serves()
 {
    let e = started(|_| {}).await;
    e.fault(EVERY_IMAGE).await;
    e.fault(ORIGINAL_DOWN).await;
    e.wait_event(SETTLE, "origin_fault").await;
    e.rounds(8).await;
    let doc = e.document().await.unwrap();
    assert!(all_enabled(&doc), "{doc:#}");
    assert_eq!(merge_rate(&doc, "/image"), 1.0);
    let events = e.events().await;
    assert!(
        !events.iter().any(|ev| ev["reason"] == "merge_rollback"),
        "{:?}",
        reasons(&events)
    );
    // The article's own case: the unified copy is bad on every vendor while the original serves
    // — rolled back, since the original domain's probes say it serves.
    e.clear_faults().await;
    e.fault(EVERY_IMAGE).await;
    e.wait_doc(SETTLE, "the /image merge rolled back", |d| {
        merge_rate(d, "/image") == 0.0
    })
    .await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_path_fault_raise_a_broken_prefix_flips_nothing() {
    let e = started(|c| c.engine.path_fault = PathFault::Raise).await;
    e.fault(ALPHA_IMAGE).await;
    e.wait_event(SETTLE, "degraded").await;
    e.rounds(8).await;
    let doc = e.document().await.unwrap();
    assert!(all_enabled(&doc), "{doc:#}");
    assert_eq!(merge_rate(&doc, "/image"), 1.0);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_rollback_keeps_it() {
    let mut e = started(|_| {}).await;
    e.fault(ALPHA_IMAGE).await;
    e.wait_doc(SETTLE, "the /image merge rolled back", |d| {
        merge_rate(d, "/image") == 0.0
    })
    .await;
    e.restart().await;
    e.rounds(6).await;
    let doc = e.document().await.unwrap();
    assert_eq!(merge_rate(&doc, "/image"), 0.0, "{doc:#}");
    let versions = e.versions().await;
    assert!(
        versions
            .iter()
            .all(|v| v["reason"] != "merge_restore" && v["reason"] != "config"),
        "nothing published undoes the rollback: {versions:#?}"
    );
    e.stop().await;
}
