//! The on-call pages over HTTP, on the lab with the service running: a fault injected in the lab
//! shows where it belongs (the host's row and the region's cell, the stale resolver, the origin
//! row, the events and the incident report), and bad input gets a readable 4xx page.
//!
//! Every test runs stepped: the pages, the rollups and the incident report read the service's
//! clock, so a wait runs a round instead of sleeping.

use std::time::{Duration, Instant};

use crate::harness::*;

const SETTLE: Duration = Duration::from_secs(20);

struct Page {
    status: u16,
    content_type: String,
    csp: String,
    body: String,
}

async fn get(e: &TestApp, path: &str) -> Page {
    let resp = e
        .http
        .get(format!("{}{path}", e.base))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (content_type, csp) = (header("content-type"), header("content-security-policy"));
    Page {
        status: resp.status().as_u16(),
        content_type,
        csp,
        body: resp.text().await.unwrap(),
    }
}

/// Polls a page until `pred` holds for its body.
async fn wait_page(e: &TestApp, path: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let page = get(e, path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        if pred(&page.body) {
            return page.body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} on {path}:\n{}",
            page.body
        );
        e.next_look().await;
    }
}

/// The overview row of `host`: from its link to the end of the row.
fn row<'a>(body: &'a str, host: &str) -> &'a str {
    let start = body
        .find(&format!(r#"<a href="/hosts/{host}">"#))
        .unwrap_or_else(|| panic!("no row for {host} in\n{body}"));
    let end = start + body[start..].find("</tr>").unwrap();
    &body[start..end]
}

/// The cell of `region` in an overview row: its opening tag with class and title, and its text.
fn cell<'a>(row: &'a str, region: &str) -> &'a str {
    let at = row
        .find(&format!(r#"title="{region}: "#))
        .unwrap_or_else(|| panic!("no {region} cell in\n{row}"));
    let start = row[..at].rfind("<td").unwrap();
    let end = at + row[at..].find("</td>").unwrap();
    &row[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_fault_shows_in_its_cells_then_in_the_summary_events_and_incident_report() {
    let e = TestApp::stepped().await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    wait_page(&e, "/", "every cell ok", |b| {
        b.contains("All 3 hosts healthy in 3 regions; serving version")
    })
    .await;

    // One region first: alpha's cn-east cells fail, nothing else, and one region is no quorum.
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"alpha","region":"cn-east"}"#)
        .await;
    let body = wait_page(&e, "/", "alpha failing in cn-east", |b| {
        [PRIMARY, SAME_VENDOR]
            .iter()
            .all(|h| cell(row(b, h), "cn-east").contains("failing"))
    })
    .await;
    for host in [PRIMARY, SAME_VENDOR] {
        let r = row(&body, host);
        let east = cell(r, "cn-east");
        assert!(east.contains(r#"class="cell failing""#), "{east}");
        assert!(
            east.contains("http_status 502"),
            "the tooltip names the class: {east}"
        );
        assert!(east.contains("✗"), "a symbol, not only a colour: {east}");
        for region in ["cn-north", "cn-south"] {
            assert!(cell(r, region).contains(r#"class="cell ok""#), "{r}");
        }
    }
    assert!(!row(&body, OTHER_VENDOR).contains("failing"));
    assert!(
        body.contains("cdn.shop.test and cdn-ss.shop.test failing in cn-east"),
        "{body}"
    );

    // A second region makes a quorum: both alpha hosts go out together.
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"alpha","region":"cn-north"}"#)
        .await;
    let doc = e
        .wait_doc(SETTLE, "both alpha hosts disabled", |d| {
            disabled(d, PRIMARY) && disabled(d, SAME_VENDOR)
        })
        .await;
    let v = version(&doc);
    let body = wait_page(&e, "/", "the disabled hosts", |b| {
        b.contains(&format!("serving version {v}."))
    })
    .await;
    assert!(
        body.contains("cdn.shop.test is disabled (vendor_wide since "),
        "the summary says what is wrong: {body}"
    );
    let r = row(&body, PRIMARY);
    assert!(
        r.contains("○ disabled") && r.contains("vendor_wide since"),
        "{r}"
    );
    assert!(row(&body, OTHER_VENDOR).contains("● enabled"));

    let events = get(&e, &format!("/events?host={PRIMARY}")).await;
    assert_eq!(events.status, 200);
    assert!(events.body.contains("vendor_wide") && events.body.contains("enabled → disabled"));
    assert!(
        events
            .body
            .contains(&format!(r#"href="/api/v1/hostlist/{v}""#)),
        "{}",
        events.body
    );
    assert!(
        events.body.contains("cn-east: 0 ok / "),
        "evidence per region: {}",
        events.body
    );
    let incident_link = events
        .body
        .split("href=\"")
        .find_map(|s| s.strip_prefix("/events/incident?"))
        .map(|s| s[..s.find('"').unwrap()].replace("&#38;", "&"))
        .expect("a link to the incident report");
    let other = get(&e, &format!("/events?host={OTHER_VENDOR}")).await;
    assert!(!other.body.contains("vendor_wide"), "filtered by host");

    e.clear_faults().await;
    e.wait_doc(SETTLE, "alpha back", all_enabled).await;
    let report = get(&e, &format!("/events/incident?{incident_link}")).await;
    assert_eq!(report.status, 200);
    assert_eq!(report.content_type, "text/plain; charset=utf-8");
    let text = get(&e, &format!("/events/incident?host={PRIMARY}&since=10m"))
        .await
        .body;
    for want in [
        "Scope:     cdn.shop.test (vendor alpha)",
        "http_status 502",
        "in processing",
        "cn-east",
        "cn-north",
        "first failure",
        "detected",
        &format!("(version {v}): cdn.shop.test disabled (vendor_wide)"),
        "enabled again (rise)",
    ] {
        assert!(text.contains(want), "the report lacks {want:?}:\n{text}");
    }
    assert!(!text.contains("cn-south"), "cn-south never failed:\n{text}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_resolver_is_marked_beside_the_others_answers_on_the_host_page() {
    let e = TestApp::stepped().await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(r#"{"kind":"stale_dns","region":"cn-east","resolver":"isp"}"#)
        .await;
    let body = wait_page(&e, "/hosts/cdn.shop.test", "the stale answer", |b| {
        b.contains("127.21.1.9")
    })
    .await;
    let stale = body
        .split("<tr")
        .find(|r| r.contains(r#"class="ip">127.21.1.9<"#) && r.contains("stale DNS"))
        .unwrap_or_else(|| panic!("no stale row in\n{body}"));
    assert!(stale.contains(r#" class="stale""#), "{stale}");
    assert!(stale.contains("⚠ stale DNS on isp"), "{stale}");
    assert!(stale.contains("✗ served, failing"), "{stale}");
    let result = body
        .split("<tr>")
        .find(|r| r.contains("127.21.1.9") && r.contains("tcp_refused"))
        .unwrap_or_else(|| panic!("no result row of the retired edge in\n{body}"));
    assert!(
        result.contains("<td>isp</td>") && result.contains("cn-east"),
        "{result}"
    );
    // The other regions' answers agree.
    assert!(!body.contains("127.21.2.9") && !body.contains("127.21.3.9"));
    let overview = get(&e, "/").await.body;
    let east = cell(row(&overview, PRIMARY), "cn-east");
    assert!(
        east.contains("degraded") && east.contains("tcp_refused"),
        "{east}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_whose_own_network_is_down_is_shown_invalid_not_failing() {
    let e = TestApp::stepped().await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    for f in [
        r#"{"kind":"refuse","region":"cn-south"}"#,
        r#"{"kind":"dns_timeout","region":"cn-south"}"#,
    ] {
        e.fault(f).await;
    }
    let body = wait_page(&e, "/", "cn-south invalid", |b| {
        [PRIMARY, SAME_VENDOR, OTHER_VENDOR]
            .iter()
            .all(|h| cell(row(b, h), "cn-south").contains(r#"class="cell invalid""#))
    })
    .await;
    assert!(
        body.contains("cn-south cannot vote (its control targets are unreachable)"),
        "{body}"
    );
    assert!(!body.contains(r#"<td class="cell failing""#), "{body}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_failing_on_every_vendor_is_marked_as_an_origin_fault_on_the_paths_page() {
    let e = TestApp::stepped_with(with_product_path).await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(r#"{"kind":"http_status","status":504,"path_prefix":"/product"}"#)
        .await;
    let body = wait_page(&e, "/paths", "the origin row", |b| {
        b.contains(r#"<tr class="origin">"#)
    })
    .await;
    let origin = &body[body.find(r#"<tr class="origin">"#).unwrap()..];
    let origin = &origin[..origin.find("</tr>").unwrap()];
    assert!(
        origin.contains("/product") && origin.contains("origin fault"),
        "{origin}"
    );
    assert_eq!(
        origin
            .matches(r#"<span class="class">http_status 504</span>"#)
            .count(),
        3,
        "every host: {origin}"
    );
    let image = &body[body.find("<th scope=\"row\">/image").unwrap()..];
    assert!(!image[..image.find("</tr>").unwrap()].contains("origin fault"));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_readable_page_naming_what_is_wrong_and_every_page_is_protected() {
    // Stepped: no round is needed, the pages are looked at without results.
    let e = TestApp::stepped().await;
    let cases = [
        (
            "/hosts/nope.test",
            404,
            "no host named `nope.test` is configured",
        ),
        ("/hosts/cdn.shop.test?window=2h", 400, "parameter `window`"),
        ("/events?since=yesterday", 400, "parameter `since`"),
        (
            "/events?hots=cdn.shop.test",
            400,
            "parameter `hots`: unknown parameter",
        ),
        ("/events?host=evil.test", 400, "parameter `host`"),
        ("/events?since=1h&until=2h", 400, "parameter `until`"),
        ("/events/incident?until=soon", 400, "parameter `until`"),
        ("/?x=1", 400, "parameter `x`"),
    ];
    for (path, status, says) in cases {
        let page = get(&e, path).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        assert!(page.content_type.starts_with("text/html"), "{path}");
        assert!(
            page.body.contains(says),
            "{path} should say {says:?}:\n{}",
            page.body
        );
        assert_eq!(page.csp, "default-src 'self'", "{path}");
    }
    let escaped = get(&e, "/hosts/%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(escaped.status, 404);
    assert!(!escaped.body.contains("<script>"), "{}", escaped.body);
    assert!(
        escaped.body.contains("&#60;script&#62;"),
        "{}",
        escaped.body
    );
    for path in ["/", "/hosts/cdn.shop.test", "/paths", "/events"] {
        let page = get(&e, path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert_eq!(page.csp, "default-src 'self'", "{path}");
        assert!(
            page.body.contains(r#"<meta http-equiv="refresh""#),
            "{path}"
        );
        assert!(
            page.body.contains(r#"href="/static/cdnwatch.css""#),
            "{path}"
        );
        assert!(
            !page.body.contains("style=") && !page.body.contains("<script"),
            "{path}"
        );
    }
    let css = get(&e, "/static/cdnwatch.css").await;
    assert_eq!(
        (css.status, css.content_type.as_str()),
        (200, "text/css; charset=utf-8")
    );
    assert_eq!(get(&e, "/static/nope.css").await.status, 404);
    e.stop().await;
}
