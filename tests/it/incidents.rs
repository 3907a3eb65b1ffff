//! One fault is one incident: opened when its diagnosis first holds, carrying its scope, classes,
//! what it touched and the decisions (or refusals) made for it, shown in the API, the pages, the
//! overview's sentence and `/metrics`, resolved after `rise_rounds` clean rounds, and continued —
//! never duplicated, never unresolved — across a restart and a kill -9. Stepped clock except the
//! kill test, which runs the real binary.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::process::ServeProcess;
use crate::harness::*;

const SETTLE: Duration = Duration::from_secs(15);
const VENDOR_502: &str = r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#;

async fn incidents(e: &TestApp, query: &str) -> Vec<Value> {
    e.list(&format!("/api/v1/incidents{query}")).await
}

/// The open incidents once at least one is there.
async fn open_incidents(e: &TestApp) -> Vec<Value> {
    e.eventually(SETTLE, "an open incident", async || {
        let open = incidents(e, "?state=open").await;
        if open.is_empty() {
            Err(format!("events {:#?}", e.events().await))
        } else {
            Ok(open)
        }
    })
    .await
}

async fn text(e: &TestApp, path: &str) -> String {
    let resp = e.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

fn metric_line(metrics: &str, scope: &str) -> Option<String> {
    let prefix = format!("cdnwatch_incidents_open{{scope=\"{scope}\"}} ");
    metrics
        .lines()
        .find(|l| l.starts_with(&prefix))
        .map(|l| l[prefix.len()..].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_failing_in_one_region_is_one_incident_below_the_quorum_until_it_resolves() {
    let e = TestApp::stepped().await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"alpha","region":"cn-east"}"#)
        .await;
    let open = open_incidents(&e).await;
    e.rounds(3).await;
    let all = incidents(&e, "").await;
    assert_eq!(all.len(), 1, "one fault, one incident: {all:#?}");
    let i = &all[0];
    assert_eq!(i["id"], open[0]["id"]);
    assert_eq!(
        i["scope"],
        json!({"kind": "region_vendor", "region": "cn-east", "vendor": "alpha"})
    );
    assert_eq!(i["state"], "open");
    assert_eq!(i["hosts"], json!(["cdn-ss.shop.test", "cdn.shop.test"]));
    assert_eq!(i["regions"], json!(["cn-east"]));
    assert_eq!(i["classes"][0]["outcome"], "http_status:502");
    assert_eq!(i["classes"][0]["phase"], "processing");
    assert!(
        i["decisions"]
            .as_array()
            .unwrap()
            .contains(&json!({"decision": "refused", "refusal": "below_quorum", "host": null})),
        "{i:#}"
    );
    assert!(all_enabled(&e.document().await.unwrap()), "nothing flipped");
    let id = i["id"].as_i64().unwrap();
    // Shown where on-call looks.
    let overview = text(&e, "/").await;
    assert!(
        overview.contains(&format!("1 incident open (#{id} alpha in cn-east)")),
        "{overview}"
    );
    let list = text(&e, "/incidents").await;
    assert!(
        list.contains(&format!("href=\"/incidents/{id}\"")),
        "{list}"
    );
    let page = text(&e, &format!("/incidents/{id}")).await;
    assert!(page.contains("opened: alpha in cn-east fails"), "{page}");
    assert!(page.contains("nothing flipped: it fails in fewer valid regions than the quorum"));
    let report = text(&e, &format!("/incidents/{id}/report")).await;
    assert!(report.contains("http_status 502"), "{report}");
    let metrics = text(&e, "/metrics").await;
    assert_eq!(metric_line(&metrics, "region_vendor").as_deref(), Some("1"));
    assert_eq!(metric_line(&metrics, "vendor").as_deref(), Some("0"));
    // Clean for rise_rounds rounds: resolved.
    e.clear_faults().await;
    e.rounds(4).await;
    let resolved = incidents(&e, "?state=resolved").await;
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert_eq!(resolved[0]["id"], id);
    assert!(resolved[0]["resolved_at"].is_string());
    assert!(incidents(&e, "?state=open").await.is_empty());
    // /metrics renders at most once a second (real time): the next rendering says 0.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric_line(&text(&e, "/metrics").await, "region_vendor").as_deref() != Some("0") {
        assert!(
            Instant::now() < deadline,
            "the open-incident gauge stays up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_outage_is_one_incident_with_its_decisions_and_versions_and_a_restart_continues_it()
 {
    let mut e = TestApp::stepped().await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(VENDOR_502).await;
    let doc = e
        .wait_doc(SETTLE, "alpha disabled", |d| {
            disabled(d, "cdn.shop.test") && disabled(d, "cdn-ss.shop.test")
        })
        .await;
    let out_in = version(&doc);
    let all = incidents(&e, "").await;
    assert_eq!(all.len(), 1, "{all:#?}");
    let id = all[0]["id"].as_i64().unwrap();
    assert_eq!(
        all[0]["scope"],
        json!({"kind": "vendor", "vendor": "alpha"})
    );
    assert_eq!(all[0]["versions"], json!([out_in]), "{:#}", all[0]);
    let flips: Vec<&Value> = all[0]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["decision"] == "flip")
        .collect();
    assert_eq!(flips.len(), 2, "{flips:#?}");
    assert!(
        flips
            .iter()
            .all(|f| f["enabled"] == false && f["version"] == out_in)
    );
    // Its events name it.
    let detail: Value = e
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let events = detail["events"].as_array().unwrap();
    assert!(events.iter().all(|ev| ev["incident"] == id));
    assert!(
        events
            .iter()
            .any(|ev| ev["host"] == "cdn.shop.test" && ev["new_enabled"] == false),
        "{events:#?}"
    );
    // A restart in the middle continues the same incident and undoes nothing.
    e.restart().await;
    e.rounds(3).await;
    let all = incidents(&e, "").await;
    assert_eq!(
        all.len(),
        1,
        "no second incident after the restart: {all:#?}"
    );
    assert_eq!(
        (all[0]["id"].as_i64(), &all[0]["state"]),
        (Some(id), &json!("open"))
    );
    let doc = e.document().await.unwrap();
    assert!(disabled(&doc, "cdn.shop.test") && disabled(&doc, "cdn-ss.shop.test"));
    let after: Value = e
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(after["events"].as_array().unwrap().len() >= events.len());
    // Recovery: resolved, and the hosts' return is its decision too.
    e.clear_faults().await;
    let back = e
        .eventually(Duration::from_secs(60), "alpha back", async || {
            let doc = e.document().await.unwrap_or_default();
            if all_enabled(&doc) {
                Ok(doc)
            } else {
                Err(format!("{doc:#}"))
            }
        })
        .await;
    e.rounds(1).await;
    let one: Value = e
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["state"], "resolved", "{one:#}");
    assert_eq!(one["versions"], json!([out_in, version(&back)]), "{one:#}");
    assert_eq!(incidents(&e, "").await.len(), 1);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incidents_api_refuses_what_it_does_not_know() {
    let e = TestApp::stepped().await;
    for (path, status, says) in [
        ("/api/v1/incidents?state=closed", 400, "state"),
        ("/api/v1/incidents?limit=3", 400, "limit"),
        ("/api/v1/incidents?since=yesterday", 400, "since"),
        ("/api/v1/incidents/x", 400, "not an incident number"),
        ("/api/v1/incidents/99", 404, "no incident 99"),
    ] {
        let resp = e.get(path).await;
        assert_eq!(resp.status(), status, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{path}: {body}"
        );
    }
    assert_eq!(e.get("/incidents/99").await.status(), 404);
    e.stop().await;
}

async fn sql(db: &Path, query: &'static str) -> Vec<(i64, String)> {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows: Vec<(i64, String)> = sqlx::query_as(query)
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
    pool.close().await;
    rows
}

/// Waits until the incidents table reads `want`, as (id, state) rows.
async fn incidents_become(db: &Path, want: &[(i64, &str)], s: &ServeProcess) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = sql(db, "SELECT id, state FROM incidents ORDER BY id").await;
        let rows: Vec<(i64, &str)> = rows.iter().map(|(i, st)| (*i, st.as_str())).collect();
        if rows == want {
            return;
        }
        if Instant::now() >= deadline {
            let events = sql(
                db,
                "SELECT id, at_ms || ' ' || reason || ' ' || coalesce(host, '-') || ' ' || detail \
                 || ' evidence ' || evidence || ' samples ' || substr(samples, 1, 1500) \
                 FROM events ORDER BY id DESC LIMIT 12",
            )
            .await;
            let opened = sql(
                db,
                "SELECT id, kind || ' opened ' || opened_at_ms || ' ' || substr(body, 1, 1200) \
                 FROM incidents ORDER BY id",
            )
            .await;
            let memory = sql(db, "SELECT saved_at_ms, state FROM engine_state").await;
            panic!(
                "incidents {rows:?}, want {want:?}; {opened:#?}; newest events {events:#?}\nkept memory {memory:?}\nlog:\n{}",
                s.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_neither_duplicates_an_incident_nor_loses_its_resolution() {
    let lab = TestLab::spawn_with(|c| c.probe.interval_ms = 1000).await;
    let data = lab.data_dir();
    let db = data.join("cdnwatch.db");
    let mut s = ServeProcess::start(&lab.config_path, &data);
    lab.fault(VENDOR_502).await;
    incidents_become(&db, &[(1, "open")], &s).await;
    s.process.signal("-KILL");
    s.wait_exit(Duration::from_secs(5));
    let mut s = ServeProcess::start(&lab.config_path, &data);
    // Rounds after the restart fail again: the same incident, not a second one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    incidents_become(&db, &[(1, "open")], &s).await;
    lab.clear().await;
    incidents_become(&db, &[(1, "resolved")], &s).await;
    s.process.signal("-KILL");
    s.wait_exit(Duration::from_secs(5));
    let mut s = ServeProcess::start(&lab.config_path, &data);
    tokio::time::sleep(Duration::from_secs(3)).await;
    incidents_become(&db, &[(1, "resolved")], &s).await;
    s.process.signal("-TERM");
    s.wait_exit(Duration::from_secs(10));
    lab.shutdown().await;
}

/// The one incident a lab fault makes after a few rounds, and the document then.
async fn sole_incident(e: &TestApp, faults: &[&str]) -> (Value, Value) {
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    for f in faults {
        e.fault(f).await;
    }
    open_incidents(e).await;
    e.rounds(3).await;
    let all = incidents(e, "").await;
    assert_eq!(all.len(), 1, "one fault, one incident: {all:#?}");
    (all[0].clone(), e.document().await.unwrap())
}

fn refused(incident: &Value, refusal: &str) -> bool {
    incident["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["decision"] == "refused" && d["refusal"] == refusal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_edge_is_one_incident_of_that_edge_and_flips_nothing() {
    let e = TestApp::stepped().await;
    let (i, doc) = sole_incident(
        &e,
        &[r#"{"kind":"http_status","status":502,"edge":"127.21.1.1"}"#],
    )
    .await;
    assert_eq!(
        i["scope"],
        json!({"kind": "edge", "region": "cn-east", "edge": "127.21.1.1"})
    );
    assert_eq!(i["edges"], json!(["127.21.1.1"]));
    assert!(refused(&i, "below_quorum"), "{i:#}");
    assert!(all_enabled(&doc));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broken_resolver_is_one_incident_of_that_resolver() {
    let e = TestApp::stepped_with(|c| c.probe.timeouts.dns_ms = 200).await;
    let (i, doc) = sole_incident(
        &e,
        &[r#"{"kind":"dns_servfail","region":"cn-east","resolver":"isp"}"#],
    )
    .await;
    assert_eq!(
        i["scope"],
        json!({"kind": "resolver", "region": "cn-east", "resolver": "isp"}),
        "{i:#}"
    );
    assert_eq!(i["resolvers"], json!([["cn-east", "isp"]]));
    assert_eq!(i["classes"][0]["outcome"], "dns_servfail");
    assert!(all_enabled(&doc));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_failing_on_every_vendor_is_one_origin_incident_and_flips_nothing() {
    let e = TestApp::stepped_with(with_product_path).await;
    let (i, doc) = sole_incident(
        &e,
        &[r#"{"kind":"http_status","status":502,"path_prefix":"/image"}"#],
    )
    .await;
    assert_eq!(i["scope"]["kind"], "origin", "{i:#}");
    assert!(
        i["scope"]["path"].as_str().unwrap().starts_with("/image"),
        "{i:#}"
    );
    assert!(refused(&i, "origin"), "{i:#}");
    assert!(all_enabled(&doc), "no host would help");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regions_probe_network_down_is_one_incident_against_our_network_not_the_cdn() {
    let e = TestApp::stepped_with(|c| c.probe.timeouts.dns_ms = 100).await;
    let (i, doc) = sole_incident(
        &e,
        &[
            r#"{"kind":"refuse","region":"cn-east"}"#,
            r#"{"kind":"dns_timeout","region":"cn-east"}"#,
        ],
    )
    .await;
    assert_eq!(
        i["scope"],
        json!({"kind": "probe_network", "region": "cn-east"}),
        "no incident against the CDN: {i:#}"
    );
    assert!(refused(&i, "probe_network"), "{i:#}");
    assert!(all_enabled(&doc));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_edge_is_one_incident_not_one_per_flap() {
    let e = TestApp::stepped().await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    for _ in 0..4 {
        e.fault(r#"{"kind":"http_status","status":502,"edge":"127.21.1.1"}"#)
            .await;
        e.rounds(2).await;
        e.clear_faults().await;
        // Longer than rise_rounds clean rounds: each flap resolves before the next.
        e.rounds(4).await;
    }
    let all = incidents(&e, "").await;
    assert_eq!(all.len(), 1, "one flapping edge, one incident: {all:#?}");
    let timeline = all[0]["timeline"].as_array().unwrap();
    let reopened = timeline.iter().filter(|t| t["kind"] == "reopened").count();
    assert_eq!(reopened, 3, "{timeline:#?}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_broken_on_one_vendor_is_one_incident_with_its_merge_rollback_and_restore() {
    let e = TestApp::stepped_with(with_product_path).await;
    let (i, doc) = sole_incident(
        &e,
        &[r#"{"kind":"wrong_content","vendor":"alpha","path_prefix":"/image"}"#],
    )
    .await;
    assert_eq!(
        i["scope"],
        json!({"kind": "prefix_vendor", "prefix": "/image", "vendor": "alpha"}),
        "{i:#}"
    );
    let merges = |i: &Value| -> Vec<Value> {
        let d = i["decisions"].as_array().unwrap().iter();
        d.filter(|d| d["decision"] == "merge").cloned().collect()
    };
    let rollback = merges(&i);
    assert_eq!(rollback.len(), 1, "{i:#}");
    assert_eq!(rollback[0]["rolled_back"], true);
    assert_eq!(
        rollback[0]["version"],
        version(&doc),
        "the version that rolled it back: {i:#}"
    );
    let id = i["id"].as_i64().unwrap();
    e.clear_faults().await;
    e.eventually(Duration::from_secs(60), "the merge restored", async || {
        let one: Value = e
            .get(&format!("/api/v1/incidents/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let m = merges(&one);
        if m.len() == 2 && m[1]["rolled_back"] == false && m[1]["version"].is_i64() {
            Ok(())
        } else {
            Err(format!("{one:#}"))
        }
    })
    .await;
    assert_eq!(incidents(&e, "").await.len(), 1);
    e.stop().await;
}
