//! Pages of a running service in a real headless Chromium (Debian's `chromium`, installed by
//! scripts/install-test-deps.sh), driven over the DevTools protocol with chromiumoxide.
//!
//! The service runs on the lab with a fault injected through the lab's fault API; every page in
//! [`PAGES`] is loaded, must show its text in its element, is saved as a screenshot, and must
//! raise no console error and no uncaught exception. The override form is driven end to end like
//! an operator would. Chromium only ever loads pages on 127.0.0.1: every request it makes is
//! recorded and checked, and it resolves no host name at all.
//!
//! A browser test shares the machine: it asserts no timings. Both run stepped: a wait runs a
//! round, and while the browser reads the pages the clock stands still, so what they show stays.

use std::time::{Duration, Instant};

use crate::harness::chromium::{Chromium, screenshot_name};
use crate::harness::*;

/// Every page checked with the fault in place: path, text that must appear, CSS selector of the
/// element it must appear in. One line per page.
const PAGES: &[(&str, &str, &str)] = &[
    ("/", "cdn.shop.test is disabled", "p.summary"),
    ("/", "disabled", "table.board tbody tr:first-child"),
    ("/hosts/cdn.shop.test", "http_status", "table.results"),
    ("/paths", "http_status", "table.paths"),
    ("/events", "vendor_wide", "main"),
    (
        "/events/incident?host=cdn.shop.test&since=1h",
        "http_status",
        "body",
    ),
    ("/config", "cdn.shop.test: enabled → disabled", "#versions"),
    (
        "/incidents",
        "vendor alpha in every region",
        "table.incidents.open",
    ),
    (
        "/incidents/1",
        "cdn.shop.test disabled (vendor_wide)",
        "ol.timeline",
    ),
    ("/incidents/1", "http_status", "pre.report"),
    (
        "/agents",
        "the service probes every region itself",
        "p.summary",
    ),
];

/// The fault the pages are looked at under: every alpha edge answers 502.
const FAULT: &str = r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_shows_the_injected_fault_with_no_console_error() {
    let e = TestApp::stepped().await;
    e.wait_doc(Duration::from_secs(15), "the first document", all_enabled)
        .await;
    e.fault(FAULT).await;
    e.wait_doc(Duration::from_secs(30), "alpha disabled", |d| {
        disabled(d, PRIMARY) && disabled(d, SAME_VENDOR)
    })
    .await;

    let chromium = Chromium::launch().await;
    let tab = chromium.tab().await;
    for (path, text, selector) in PAGES {
        tab.open(&format!("{}{path}", e.base)).await;
        tab.wait_text(selector, text).await;
        tab.screenshot(&screenshot_name(path)).await;
    }
    tab.assert_clean();

    // The harness itself: a failed load and an uncaught exception are both caught.
    let probe = chromium.tab().await;
    probe
        .open(&format!("{}/static/no-such-file.css", e.base))
        .await;
    probe
        .page
        .evaluate("setTimeout(() => { throw new Error('harness self-check') }, 0)")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !probe.problems().join("\n").contains("harness self-check") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = probe.problems().join("\n");
    assert!(seen.contains("404"), "a failed load is caught: {seen}");
    assert!(
        seen.contains("harness self-check"),
        "an exception is caught: {seen}"
    );

    drop((tab, probe));
    chromium.close().await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_forces_a_host_off_sees_it_published_and_clears_it_in_the_browser() {
    let e = TestApp::stepped().await;
    let first = e
        .wait_doc(Duration::from_secs(15), "the first document", all_enabled)
        .await;
    let chromium = Chromium::launch().await;
    let tab = chromium.tab().await;
    let config = format!("{}/config", e.base);
    tab.open(&config).await;

    tab.type_into("#token", ADMIN_TOKEN).await;
    tab.click("#sign-in button").await;
    tab.wait_text("#flash", "Signed in").await;
    let cookie: String = tab
        .page
        .evaluate("document.cookie")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(
        cookie, "",
        "the session cookie is HttpOnly: scripts cannot read it"
    );
    assert!(!tab.page.content().await.unwrap().contains(ADMIN_TOKEN));

    tab.choose("#host", SAME_VENDOR).await;
    tab.choose("#kind", "force_disable").await;
    tab.type_into("#reason", "vendor maintenance window").await;
    tab.type_into("#actor", "oncall@shop").await;
    tab.choose("#expires_in_s", "3600").await;
    tab.click("#add-override button").await;
    tab.wait_text("#flash", "added").await;
    let row = tab.wait_text("#overrides", SAME_VENDOR).await;
    assert!(
        row.contains("force_disable") && row.contains("oncall@shop"),
        "{row}"
    );

    let doc = e
        .wait_doc(Duration::from_secs(10), "the override published", |d| {
            disabled(d, SAME_VENDOR)
        })
        .await;
    assert!(version(&doc) > version(&first));
    tab.open(&config).await;
    let versions = tab
        .wait_text("#versions", &format!("{SAME_VENDOR}: enabled → disabled"))
        .await;
    assert!(versions.contains("override"), "{versions}");
    tab.screenshot("config_signed_in").await;

    tab.click("#overrides form button").await;
    tab.wait_text("#flash", "cleared").await;
    tab.wait_text("#overrides", "None.").await;
    e.wait_doc(Duration::from_secs(15), "the host back", all_enabled)
        .await;

    tab.click("#sign-out button").await;
    tab.wait_text("#flash", "Signed out").await;
    tab.wait_text("#admin", "Admin token").await;
    tab.assert_clean();
    drop(tab);
    chromium.close().await;
    e.stop().await;
}
