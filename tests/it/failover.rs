//! End to end on the lab: the service probes, decides and publishes; reference clients poll the real
//! API, verify the signature and switch hosts by the document. Every test here runs on a stepped
//! clock: "N rounds later" is N rounds run, and a wait runs a round per look.

use std::time::Duration;

use crate::harness::*;
use cdnwatch::client::{HostListClient, Offer};

const SETTLE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_wide_outage_moves_clients_to_the_other_vendor_in_one_version_and_back_after_the_hold()
 {
    let e = TestApp::stepped().await;
    let first = e
        .wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    let keys = e.keys().await;
    let mut clients: Vec<HostListClient> = (0..3)
        .map(|i| HostListClient::new(format!("install-{i}"), keys.clone()))
        .collect();
    for c in &mut clients {
        assert!(matches!(e.poll(c).await, Offer::Accepted { .. }));
        assert_eq!(c.current_host(), Some(PRIMARY));
    }

    e.fault(r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#)
        .await;
    let t = e.clock.now();
    let down = e
        .wait_doc(SETTLE, "both alpha hosts disabled", |d| {
            disabled(d, PRIMARY) && disabled(d, SAME_VENDOR)
        })
        .await;
    assert!(!disabled(&down, OTHER_VENDOR));
    // One version took both alpha hosts out: none in between had only one of them disabled.
    for v in e.versions().await {
        let c = &v["content"];
        let p = disabled(c, PRIMARY);
        let s = disabled(c, SAME_VENDOR);
        assert_eq!(
            p, s,
            "version {} disabled one alpha host without the other",
            v["version"]
        );
    }
    assert!(version(&down) > version(&first));
    let ev = e.wait_event(Duration::from_secs(1), "vendor_wide").await;
    assert_eq!(ev["version"], version(&down));
    for c in &mut clients {
        assert!(matches!(e.poll(c).await, Offer::Accepted { .. }));
        assert_eq!(
            c.current_host(),
            Some(OTHER_VENDOR),
            "clients go straight to the other vendor"
        );
        // The same version again changes nothing.
        assert!(matches!(e.poll(c).await, Offer::Unchanged));
    }
    let detected = (e.clock.now() - t).to_std().unwrap();

    e.clear_faults().await;
    let t = e.clock.now();
    let up = e.wait_doc(SETTLE, "alpha back", all_enabled).await;
    let recovered = (e.clock.now() - t).to_std().unwrap();
    assert!(
        recovered >= Duration::from_millis(1500),
        "not before the hold: {recovered:?}"
    );
    assert!(
        version(&up) > version(&down),
        "a rollback of content is a new, higher version"
    );
    let rise = e.wait_event(Duration::from_secs(1), "rise").await;
    assert_eq!(rise["new_enabled"], true);
    for c in &mut clients {
        e.poll(c).await;
        assert_eq!(c.current_host(), Some(PRIMARY));
    }
    eprintln!(
        "detected in {detected:?}, recovered in {recovered:?} of service time (500 ms rounds)"
    );
    e.stop().await;
}

/// A region whose own network is down: its control target refuses, so do its edges and DNS.
const REGION_DOWN: [&str; 2] = [
    r#"{"kind":"refuse","region":"REGION"}"#,
    r#"{"kind":"dns_timeout","region":"REGION"}"#,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_region_down_flips_nothing_and_two_freeze_the_list() {
    // A round lasts as long as its slowest probe: a short DNS timeout keeps the down region's
    // rounds short (how long a lookup may take is not what this test is about).
    let e = TestApp::stepped_with(|c| c.probe.timeouts.dns_ms = 100).await;
    let first = e
        .wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    for f in REGION_DOWN {
        e.fault(&f.replace("REGION", "cn-north")).await;
    }
    // Eight rounds later: nothing flipped, the version is the same.
    e.rounds(8).await;
    let doc = e.document().await.unwrap();
    assert_eq!(version(&doc), version(&first));
    assert!(all_enabled(&doc));
    assert!(
        !e.events().await.iter().any(|ev| ev["new_enabled"] == false),
        "{:#?}",
        e.events().await
    );

    for f in REGION_DOWN {
        e.fault(&f.replace("REGION", "cn-south")).await;
    }
    // And now a real outage in the one region left: with one valid region the engine freezes.
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#)
        .await;
    let freeze = e.wait_event(SETTLE, "freeze").await;
    assert!(
        freeze["detail"].as_str().unwrap().contains("region"),
        "{freeze}"
    );
    e.rounds(6).await;
    let doc = e.document().await.unwrap();
    assert_eq!(
        version(&doc),
        version(&first),
        "nothing new is published while frozen"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_host_fails_one_stays_enabled_and_fail_open_is_raised() {
    let e = TestApp::stepped().await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(r#"{"kind":"reset"}"#).await;
    e.wait_event(SETTLE, "fail_open").await;
    e.rounds(4).await;
    let doc = e.document().await.unwrap();
    let enabled: Vec<_> = [PRIMARY, SAME_VENDOR, OTHER_VENDOR]
        .into_iter()
        .filter(|h| !disabled(&doc, h))
        .collect();
    assert_eq!(enabled.len(), 1, "exactly one host is kept: {doc:#}");
    for v in e.versions().await {
        let c = &v["content"];
        assert!(
            [PRIMARY, SAME_VENDOR, OTHER_VENDOR]
                .iter()
                .any(|h| !disabled(c, h)),
            "version {} disabled every host",
            v["version"]
        );
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_broken_at_the_origin_flips_nothing() {
    let e = TestApp::stepped_with(with_product_path).await;
    let first = e
        .wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(r#"{"kind":"http_status","status":504,"path_prefix":"/product"}"#)
        .await;
    // The original domain fails too: no rollback would make /product load (merge_rollback.rs).
    e.fault(r#"{"kind":"http_status","status":504,"host":"product.shop.test"}"#)
        .await;
    let ev = e.wait_event(SETTLE, "origin_fault").await;
    assert!(
        ev["detail"]
            .as_str()
            .unwrap()
            .contains("/product/probe.json"),
        "{ev}"
    );
    e.rounds(6).await;
    let doc = e.document().await.unwrap();
    assert_eq!(version(&doc), version(&first));
    assert!(all_enabled(&doc));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dead_edge_degrades_its_host_without_a_flip() {
    let e = TestApp::stepped().await;
    let first = e
        .wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(r#"{"kind":"refuse","edge":"127.21.1.1"}"#).await;
    let ev = e.wait_event(SETTLE, "degraded").await;
    assert!(
        ev["detail"].as_str().unwrap().contains("127.21.1.1"),
        "{ev}"
    );
    e.rounds(6).await;
    let doc = e.document().await.unwrap();
    assert_eq!(version(&doc), version(&first));
    assert!(all_enabled(&doc));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_version_goes_on_from_where_it_was() {
    let mut e = TestApp::stepped().await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"beta"}"#)
        .await;
    let down = e
        .wait_doc(SETTLE, "beta disabled", |d| disabled(d, OTHER_VENDOR))
        .await;
    let (body_before, _) = e.fetch().await.unwrap();

    e.restart().await;
    // The last version is served again from the file, byte for byte.
    let (body_after, sig) = e.fetch().await.expect("served at once after the restart");
    assert_eq!(body_after, body_before);
    let mut client = HostListClient::new("install-r", e.keys().await);
    assert!(matches!(
        client.offer(&body_after, &sig),
        Offer::Accepted { .. }
    ));

    e.clear_faults().await;
    let up = e.wait_doc(SETTLE, "beta back", all_enabled).await;
    assert!(
        version(&up) > version(&down),
        "{} after {}",
        version(&up),
        version(&down)
    );
    let versions: Vec<i64> = e
        .versions()
        .await
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    let mut sorted = versions.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(versions, sorted, "strictly increasing, never reused");
    e.stop().await;
}
