//! What on-call sees of the regional agents: the `/agents` page (up or down, last seen, clock skew
//! with its round trip, backlog, assignment, results received and refused), the overview's "no
//! agent" cells for a region whose agent is down or not heard yet, and the agents' families on
//! `/metrics`. Stepped: the agent is the test itself, and a round re-checks the agents' liveness.

use std::collections::BTreeMap;
use std::time::Duration;

use cdnwatch::model::EdgeResult;
use serde_json::{Value, json};

use crate::harness::*;

const AGENT_FAMILIES: [&str; 6] = [
    "cdnwatch_agent_up",
    "cdnwatch_agent_last_seen_timestamp_seconds",
    "cdnwatch_agent_clock_skew_seconds",
    "cdnwatch_agent_backlog_records",
    "cdnwatch_agent_results_received_total",
    "cdnwatch_agent_records_refused_total",
];
const REASONS: [&str; 6] = [
    "foreign_region",
    "unknown_series",
    "oversized",
    "future",
    "too_old",
    "clock_skew",
];

/// The body of a page that must answer 200.
async fn page(app: &TestApp, path: &str) -> String {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

/// The `/agents` row of agent `id`.
fn agent_row(body: &str, id: &str) -> String {
    let start = body
        .find(&format!(r#"<tr id="agent-{id}">"#))
        .unwrap_or_else(|| panic!("no row for {id} in\n{body}"));
    let end = start + body[start..].find("</tr>").unwrap();
    body[start..end].to_string()
}

/// The overview cells' classes of `region`, one per host.
fn cell_classes(body: &str, region: &str) -> Vec<String> {
    body.match_indices(&format!(r#"" title="{region}: "#))
        .map(|(at, _)| {
            let open = body[..at].rfind(r#"<td class=""#).unwrap();
            body[open + r#"<td class=""#.len()..at].to_string()
        })
        .collect()
}

/// The agent families' samples on `/metrics`: (name, labels) to value. Their label values are
/// ids and reasons, with no comma or quote to escape.
async fn agent_samples(app: &TestApp) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let text = page(app, "/metrics").await;
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("cdnwatch_agent_")) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let labels = (labels.trim_end_matches('}').split(','))
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.trim_matches('"').to_string())
            })
            .collect();
        out.insert((name.to_string(), labels), value.parse().unwrap());
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Sends a heartbeat of `agent` as a real agent does: its clock `skew_ms` ahead of the service's,
/// its backlog, its assignment version, and the previous exchange (for a round trip) if given.
async fn heartbeat(app: &TestApp, agent: &TestAgent, hb: Value) -> Value {
    let resp = (app.http.post(agent.url("heartbeat")))
        .bearer_auth(AGENT_TOKEN)
        .json(&hb)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// One probe of the first host in `region`, through the lab's prober.
async fn probed(app: &TestApp, region: &str) -> Vec<EdgeResult> {
    let config = &app.lab.config;
    let host = &config.hosts[0];
    let region = config.regions.iter().find(|r| r.name == region).unwrap();
    let report = (app.lab.prober)
        .probe(host, &host.paths[0], region, &region.resolvers[0])
        .await;
    report.results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_not_heard_is_down_with_its_regions_no_agent_then_its_page_and_metrics_show_it_up()
{
    let app = TestApp::stepped_with(|c| {
        with_agent(c, "agent-east", &["cn-east"]);
        with_agent(c, "agent-north", &["cn-north"]);
    })
    .await;

    // Before any heartbeat: both agents down, their regions' cells "no agent" (not failing, not
    // healthy), the region the service probes itself as it is.
    let overview = page(&app, "/").await;
    for region in ["cn-east", "cn-north"] {
        let classes = cell_classes(&overview, region);
        assert_eq!(classes.len(), app.lab.config.hosts.len(), "{overview}");
        assert!(classes.iter().all(|c| c == "cell noagent"), "{classes:?}");
    }
    let south = cell_classes(&overview, "cn-south");
    assert!(south.iter().all(|c| c != "cell noagent"), "{south:?}");
    assert!(
        overview.contains("no agent up for cn-east and cn-north"),
        "{overview}"
    );
    assert!(overview.contains(r#"<span class="cell noagent">"#));
    let agents = page(&app, "/agents").await;
    assert!(agents.contains(r#"<a href="/agents">Agents</a>"#));
    for id in ["agent-east", "agent-north"] {
        let row = agent_row(&agents, id);
        assert!(row.contains("○ down") && row.contains("never"), "{row}");
    }
    let before = agent_samples(&app).await;
    for id in ["agent-east", "agent-north"] {
        let agent = labels(&[("agent", id)]);
        let at = |name: &str| before.get(&(name.to_string(), agent.clone())).copied();
        assert_eq!(at("cdnwatch_agent_up"), Some(0.0));
        assert_eq!(at("cdnwatch_agent_last_seen_timestamp_seconds"), None);
        assert_eq!(at("cdnwatch_agent_clock_skew_seconds"), None);
        assert_eq!(at("cdnwatch_agent_results_received_total"), Some(0.0));
    }

    // agent-east, its clock 3 s ahead, heartbeats twice (the second completes the first's
    // exchange: a 4 ms round trip), runs the assignment in force with 1,234 results spooled.
    let mut east = TestAgent::new(&app.base, "agent-east", &app.http);
    let assignment = (app.http.get(east.url("assignment")))
        .bearer_auth(AGENT_TOKEN)
        .send()
        .await
        .unwrap();
    let version = assignment.headers()["etag"].to_str().unwrap();
    let version = version.trim_matches('"').to_string();
    let s = app.clock.now().timestamp_millis();
    let mut hb = json!({
        "boot": east.boot, "version": "test-9.9", "assignmentVersion": version,
        "backlogRecords": 1234, "inFlight": 1, "concurrency": 4, "sentMs": s + 2_998, "previous": null,
    });
    let answer = heartbeat(&app, &east, hb.clone()).await;
    let (t1, t2) = (
        answer["receivedMs"].as_i64().unwrap(),
        answer["answeredMs"].as_i64().unwrap(),
    );
    assert_eq!(
        (t1, t2),
        (s, s),
        "the stepped clock stands still between rounds"
    );
    hb["sentMs"] = json!(s + 3_010);
    hb["previous"] = json!({"t0": s + 2_998, "t1": s, "t2": s, "t3": s + 3_002});
    heartbeat(&app, &east, hb).await;

    // A batch naming agent-north's region is forged: refused whole, counted as foreign_region.
    let mut forged = east.batch(probed(&app, "cn-north").await[..1].to_vec());
    forged.controls.clear();
    let resp = east.post(&forged, AGENT_TOKEN).await;
    assert_eq!(resp.status(), 403);
    let results = probed(&app, "cn-east").await;
    let resp = east.send(results.clone()).await;
    assert_eq!(resp.status(), 200);
    let stored: Value = resp.json().await.unwrap();
    assert_eq!(stored["stored"], results.len(), "{stored}");
    app.round().await;

    let agents = page(&app, "/agents").await;
    let row = agent_row(&agents, "agent-east");
    for says in [
        "● up",
        "0 s ago",
        "skew-flagged",
        "⚠ +3.000 s",
        "round trip 4 ms",
        "<td class=\"num\">1234</td>",
        &format!("<td class=\"num\">{}</td>", results.len()),
        "in force",
        "test-9.9",
        "1 / 4",
        "<td class=\"refused\">foreign_region 1</td>",
    ] {
        assert!(
            row.contains(says),
            "agent-east's row should say {says:?}:\n{row}"
        );
    }
    assert!(!row.contains("not the one in force"), "{row}");
    let row = agent_row(&agents, "agent-north");
    assert!(
        row.contains("○ down") && row.contains("<td class=\"refused\">—</td>"),
        "{row}"
    );
    assert!(agents.contains("1 of 2 up"), "{agents}");

    // On the overview only agent-north's region is without an agent now.
    let overview = page(&app, "/").await;
    let east_cells = cell_classes(&overview, "cn-east");
    assert!(
        east_cells.iter().all(|c| c != "cell noagent"),
        "{east_cells:?}"
    );
    let north_cells = cell_classes(&overview, "cn-north");
    assert!(
        north_cells.iter().all(|c| c == "cell noagent"),
        "{north_cells:?}"
    );

    // /metrics: the six families, labelled by agent (and reason) only, with these values.
    // (`/metrics` serves one rendering for a second: rounds go on until the new one is out.)
    let east_up = (
        "cdnwatch_agent_up".to_string(),
        labels(&[("agent", "agent-east")]),
    );
    let after = app
        .eventually(
            Duration::from_secs(10),
            "a rendering with agent-east up",
            async || {
                let samples = agent_samples(&app).await;
                match samples.get(&east_up) {
                    Some(up) if *up == 1.0 => Ok(samples),
                    other => Err(format!("agent-east up: {other:?}")),
                }
            },
        )
        .await;
    let east_l = labels(&[("agent", "agent-east")]);
    let north_l = labels(&[("agent", "agent-north")]);
    let at = |name: &str, l: &BTreeMap<String, String>| {
        after.get(&(name.to_string(), l.clone())).copied()
    };
    assert_eq!(at("cdnwatch_agent_up", &east_l), Some(1.0));
    assert_eq!(at("cdnwatch_agent_up", &north_l), Some(0.0));
    let seen = "cdnwatch_agent_last_seen_timestamp_seconds";
    assert_eq!(at(seen, &east_l), Some(s as f64 / 1e3));
    assert_eq!(at(seen, &north_l), None, "never heard: no sample");
    let skew = "cdnwatch_agent_clock_skew_seconds";
    assert_eq!(at(skew, &east_l), Some(3.0));
    assert_eq!(at(skew, &north_l), None);
    assert_eq!(at("cdnwatch_agent_backlog_records", &east_l), Some(1234.0));
    assert_eq!(at("cdnwatch_agent_backlog_records", &north_l), Some(0.0));
    let received = "cdnwatch_agent_results_received_total";
    assert_eq!(at(received, &east_l), Some(results.len() as f64));
    assert_eq!(at(received, &north_l), Some(0.0));
    for id in ["agent-east", "agent-north"] {
        for reason in REASONS {
            let l = labels(&[("agent", id), ("reason", reason)]);
            let want = if (id, reason) == ("agent-east", "foreign_region") {
                1.0
            } else {
                0.0
            };
            let n = at("cdnwatch_agent_records_refused_total", &l);
            assert_eq!(n, Some(want), "{id} {reason}");
        }
    }
    for (name, l) in after.keys() {
        assert!(AGENT_FAMILIES.contains(&name.as_str()), "{name}");
        assert!(
            l.keys().all(|k| k == "agent" || k == "reason"),
            "{name} {l:?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_agent_configured_the_agents_page_says_the_service_probes_every_region_itself() {
    let app = TestApp::stepped().await;
    let agents = page(&app, "/agents").await;
    assert!(
        agents.contains("the service probes every region itself"),
        "{agents}"
    );
    assert!(!agents.contains("<table"), "{agents}");
    assert!(agent_samples(&app).await.is_empty());
    let overview = page(&app, "/").await;
    assert!(
        !overview.contains(r#"<td class="cell noagent""#),
        "{overview}"
    );
    app.stop().await;
}
