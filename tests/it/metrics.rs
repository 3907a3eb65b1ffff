//! `/metrics` of a running service on the lab, checked by the real tools: promtool on the text, a
//! real Prometheus scraping it (queried back through its HTTP API, with monitoring/alerts.yml
//! loaded), promtool on the alert rules, and the Grafana dashboard's queries against both.
//!
//! A test with a real Prometheus shares the machine: it asserts no timings. The in-process service
//! runs stepped, with rounds back to back while the test waits for a scrape (which is real time:
//! Prometheus 2.42 scrapes a new target only after its five-second discovery update).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::process::DemoProcess;
use crate::harness::prometheus::{Prometheus, run_tool, value};
use crate::harness::*;
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(20);

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring")
}

/// One sample line of the text format: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// `k="v",k2="v2"` with `\"` and `\\` escapes in values.
fn parse_labels(mut rest: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("a closed label value") {
                (_, '\\') => value.push(chars.next().expect("an escaped character").1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        out.insert(key.trim_start_matches(',').to_string(), value);
        rest = &after[end + 1..];
    }
    out
}

fn sum_of(samples: &[Sample], name: &str, label: (&str, &str)) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && s.labels.get(label.0).map(String::as_str) == Some(label.1))
        .map(|s| s.value)
        .sum()
}

async fn get_metrics(e: &TestApp) -> (String, String) {
    let resp = e
        .http
        .get(format!("{}/metrics", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    (content_type, resp.text().await.unwrap())
}

/// With `Accept-Encoding: gzip` (as Prometheus sends) the same text comes compressed.
async fn assert_gzip_on_request(e: &TestApp) {
    use std::io::Read as _;
    let resp = e
        .http
        .get(format!("{}/metrics", e.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let body = resp.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    assert!(
        text.len() > 5 * body.len(),
        "{} bytes of text in {} gzipped",
        text.len(),
        body.len()
    );
    assert!(
        samples(&text)
            .iter()
            .any(|s| s.name == "cdnwatch_config_version")
    );
}

/// Scrapes until `pred` holds on the samples (a round between two scrapes on a stepped clock).
async fn wait_metrics(e: &TestApp, what: &str, pred: impl Fn(&[Sample]) -> bool) -> String {
    e.eventually(SETTLE, what, async || {
        let (_, text) = get_metrics(e).await;
        if pred(&samples(&text)) {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await
}

/// Every PromQL expression of the dashboard: panel targets and template-variable queries.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(monitoring().join("grafana-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().expect("a panel has targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        out.extend(
            targets
                .iter()
                .map(|t| t["expr"].as_str().unwrap().to_string()),
        );
    }
    for var in dash["templating"]["list"].as_array().unwrap() {
        if var["type"] == "query" {
            // Grafana's label_values(selector, label): the selector is the PromQL part.
            let q = var["query"]["query"].as_str().unwrap();
            let inner = q.strip_prefix("label_values(").expect("label_values(…)");
            out.push(inner.rsplit_once(',').unwrap().0.to_string());
        }
    }
    out
}

/// The metric names an expression reads: identifiers left once label matchers, ranges, strings
/// and grouping clauses are removed, that are not functions, keywords or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 10] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
    ];
    // Aggregation operators may stand before their `by (…)`, away from their parenthesis.
    const AGGREGATORS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    let mut bare = String::new();
    let mut depth = 0; // inside {…} or […]
    for c in expr.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth == 0 => bare.push(c),
            _ => {}
        }
    }
    let chars: Vec<char> = bare.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut grouping = false; // the (…) after by/without/on/ignoring holds label names
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if KEYWORDS.contains(&word.as_str()) {
                grouping = ["by", "without", "on", "ignoring"].contains(&word.as_str());
            } else if !grouping && next != Some(&'(') && !AGGREGATORS.contains(&word.as_str()) {
                names.insert(word);
            }
            continue;
        }
        if chars[i] == ')' {
            grouping = false;
        }
        if chars[i].is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    names
}

#[test]
fn metric_names_are_read_from_promql_without_functions_labels_or_keywords() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (le, phase) (rate(probe_http_duration_seconds_bucket{vendor=~"$vendor"}[$__rate_interval]))) / on (host) group_left max(cdnwatch_x) > 0.5 * 86400"#,
    );
    let want: BTreeSet<String> = ["probe_http_duration_seconds_bucket", "cdnwatch_x"]
        .map(String::from)
        .into();
    assert_eq!(names, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_of_a_running_service_pass_promtool_carry_no_edge_ip_and_count_agent_results() {
    let e = TestApp::stepped_with(|c| with_agent(c, "agent-south", &["cn-south"])).await;
    e.wait_doc(SETTLE, "a first document", all_enabled).await;
    let text = wait_metrics(&e, "probes, a document and a written batch", |s| {
        let has = |n: &str| s.iter().any(|x| x.name == n && x.value > 0.0);
        has("probe_success")
            && has("cdnwatch_config_version")
            && has("cdnwatch_store_batch_write_duration_seconds_count")
    })
    .await;
    let (content_type, _) = get_metrics(&e).await;
    assert_eq!(content_type, "text/plain; version=0.0.4");
    assert_gzip_on_request(&e).await;

    let (ok, lint) = run_tool(
        "promtool",
        &["check", "metrics"],
        text.as_bytes(),
        &monitoring(),
    );
    assert!(
        ok && lint.trim().is_empty(),
        "promtool check metrics:\n{lint}"
    );

    let allowed = [
        "host", "path", "region", "resolver", "vendor", "outcome", "class", "phase", "source",
        "endpoint", "le", "scope", "channel", "result", "agent", "reason",
    ];
    for s in samples(&text) {
        for (k, v) in &s.labels {
            assert!(
                allowed.contains(&k.as_str()),
                "unexpected label {k} on {s:?}"
            );
            assert!(
                v.parse::<IpAddr>().is_err(),
                "an IP as a label value: {s:?}"
            );
        }
    }

    // A remote agent in cn-south posts one probe's results: they are counted as the agent's.
    let (config, prober) = (&e.lab.config, &e.lab.prober);
    let (h, r) = (&config.hosts[0], &config.regions[2]);
    let report = prober.probe(h, &h.paths[0], r, &r.resolvers[0]).await;
    let posted = report.results.len() as f64;
    let mut agent = TestAgent::new(&e.base, "agent-south", &e.http);
    agent.heartbeat(chrono::Utc::now().timestamp_millis()).await;
    let resp = agent.send(report.results.clone()).await;
    assert_eq!(resp.status(), 200);
    let received = "cdnwatch_results_received_total";
    let text = wait_metrics(&e, "the agent's results", |s| {
        sum_of(s, received, ("source", "agent")) == posted
    })
    .await;
    let s = samples(&text);
    assert!(sum_of(&s, received, ("source", "local")) > 0.0);
    let results = "cdnwatch_probe_results_total";
    assert!(sum_of(&s, results, ("region", "cn-south")) >= posted);

    // Every metric the Grafana dashboard reads is one the service exports.
    let exported: BTreeSet<&str> = s.iter().map(|x| x.name.as_str()).collect();
    for q in dashboard_queries() {
        let names = metric_names(&q);
        assert!(!names.is_empty(), "no metric in dashboard query `{q}`");
        for n in names {
            assert!(
                exported.contains(n.as_str()),
                "the dashboard reads `{n}` (in `{q}`), which cdnwatch does not export"
            );
        }
    }
    e.stop().await;
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = monitoring();
    let (ok, out) = run_tool("promtool", &["check", "rules", "alerts.yml"], b"", &dir);
    assert!(
        ok && out.contains("SUCCESS"),
        "promtool check rules:\n{out}"
    );
    let (ok, out) = run_tool("promtool", &["test", "rules", "alerts_test.yml"], b"", &dir);
    assert!(ok && out.contains("SUCCESS"), "promtool test rules:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_served_version_every_host_and_region_and_an_injected_fault()
{
    // Stepped: while the test waits for Prometheus (which scrapes in real time), the service runs
    // rounds back to back.
    let e = TestApp::stepped().await;
    e.wait_doc(SETTLE, "a first document", all_enabled).await;
    let addr = e.running().addr;
    let prom = Prometheus::start(addr, &[&monitoring().join("alerts.yml")]).await;

    let per_host_region = e
        .stepping(
            prom.wait_for("count by (host, region) (probe_success)", SETTLE, |r| {
                r.len() == 9
            }),
        )
        .await;
    assert!(
        per_host_region.iter().all(|s| value(s) == 2.0),
        "one series per resolver: {per_host_region:?}"
    );
    wait_version_matches(&e, &prom).await;

    e.fault(r#"{"kind":"http_status","status":503,"vendor":"beta"}"#)
        .await;
    let class =
        r#"sum(cdnwatch_probe_results_total{outcome="failure",class="http_status",vendor="beta"})"#;
    let first = e
        .stepping(prom.wait_for(class, SETTLE, |r| r.first().is_some_and(|s| value(s) > 0.0)))
        .await;
    e.stepping(prom.wait_for(class, SETTLE, |r| value(&r[0]) > value(&first[0])))
        .await;
    let status = r#"max(probe_http_status_code{host="cdn-bak.shop.test"})"#;
    e.stepping(prom.wait_for(status, SETTLE, |r| {
        r.first().is_some_and(|s| value(s) == 503.0)
    }))
    .await;

    // The engine disables beta's host; Prometheus sees it and the shipped rules alert on it.
    e.wait_doc(SETTLE, "beta disabled", |d| disabled(d, OTHER_VENDOR))
        .await;
    let disabled_host = r#"cdnwatch_host_disabled{host="cdn-bak.shop.test",vendor="beta"}"#;
    e.stepping(prom.wait_for(disabled_host, SETTLE, |r| {
        r.first().is_some_and(|s| value(s) == 1.0)
    }))
    .await;
    wait_version_matches(&e, &prom).await;
    for alert in [
        r#"ALERTS{alertname="CdnwatchHostDisabled",host="cdn-bak.shop.test"}"#,
        r#"ALERTS{alertname="CdnwatchVendorDisabled",vendor="beta"}"#,
    ] {
        e.stepping(prom.wait_for(alert, SETTLE, |r| !r.is_empty()))
            .await;
    }
    let healthy = r#"ALERTS{alertname="CdnwatchHostDisabled",host="cdn.shop.test"}"#;
    assert_eq!(prom.query(healthy).await.unwrap(), Vec::<Value>::new());

    e.stepping(every_dashboard_query_returns_data(&prom)).await;
    drop(prom);
    e.stop().await;
}

/// `cdnwatch_config_version` in Prometheus equals the served document's configVersion (the
/// document may move on between the two reads, so this waits for them to agree).
async fn wait_version_matches(e: &TestApp, prom: &Prometheus) {
    eventually(SETTLE, "the served version in Prometheus", async || {
        let served = version(&e.document().await.unwrap()) as f64;
        let seen = prom.query("cdnwatch_config_version").await?;
        match seen.first() {
            Some(s) if value(s) == served => Ok(()),
            _ => Err(format!("served {served}, Prometheus has {seen:?}")),
        }
    })
    .await
}

/// Each dashboard query, with Grafana's variables filled in, parses in Prometheus and has data.
async fn every_dashboard_query_returns_data(prom: &Prometheus) {
    for q in dashboard_queries() {
        let q = q
            .replace("$__rate_interval", "15s")
            .replace("$vendor", ".*")
            .replace("$host", ".*")
            .replace("$region", ".*");
        prom.wait_for(&q, SETTLE, |r| !r.is_empty()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_a_running_demo_process_and_reads_its_served_version_back() {
    cdnwatch::probe::tls::install_default_provider();
    let demo = DemoProcess::start();
    let prom = Prometheus::start(demo.addr, &[]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}/api/v1/hostlist", demo.addr);
    eventually(SETTLE, "the demo's version in Prometheus", async || {
        let doc: Value = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let served = doc["configVersion"].as_f64().ok_or("no configVersion")?;
        let seen = prom.query("cdnwatch_config_version").await?;
        match seen.first().map(value) {
            Some(v) if v == served => Ok(()),
            other => Err(format!("served {served}, Prometheus has {other:?}")),
        }
    })
    .await;
    // Every host is probed from every region of the demo's lab (one series per resolver).
    prom.wait_for(
        "count by (host, region) (probe_success)",
        Duration::from_secs(30),
        |r| r.len() == 9,
    )
    .await;
}
