//! Results enter one way: what agents send to `/api/v1/agents/{id}/results` is stored, counted and
//! decided on exactly like what the service probes itself.

use cdnwatch::model::{EdgeResult, Failure, FailureClass, Phase};
use serde_json::Value;

use crate::harness::{
    OTHER_VENDOR, PRIMARY, SAME_VENDOR, TestAgent, TestApp, disabled, with_agent,
    with_an_agent_per_region,
};

/// One result per series of `region` (HTTP 502 from one edge on `vendor`'s hosts, 200 on the
/// others), dated `at`.
fn round_of(
    app: &TestApp,
    region: &str,
    vendor: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Vec<EdgeResult> {
    let config = &app.lab.config;
    let mut out = Vec::new();
    for s in config.series().filter(|s| s.region.name == region) {
        let failing = s.host.vendor == vendor;
        out.push(EdgeResult {
            at,
            host: s.host.domain.clone(),
            path: s.path.path.clone(),
            region: s.region.name.clone(),
            resolver: s.resolver.name.clone(),
            edge_ip: Some([127, 21, 1, 1].into()),
            dns_ms: Some(0.5),
            connect_ms: Some(0.2),
            tls_ms: Some(1.0),
            first_byte_ms: Some(1.0),
            transfer_ms: Some(0.1),
            total_ms: Some(2.8),
            status: Some(if failing { 502 } else { 200 }),
            body_bytes: 0,
            cert: None,
            failure: failing
                .then(|| Failure::new(FailureClass::HttpStatus, Phase::Processing, "status 502")),
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_failing_results_vote_in_the_engine_like_local_ones() {
    // Every region has an agent: the service probes nothing, the agents report alpha failing.
    let app = TestApp::stepped_with(with_an_agent_per_region).await;
    let mut agents: Vec<(TestAgent, &str)> = ["east", "north", "south"]
        .iter()
        .map(|r| {
            (
                TestAgent::new(&app.base, &format!("agent-{r}"), &app.http),
                *r,
            )
        })
        .collect();
    let mut doc = app.document().await.expect("the cold-start document");
    for _ in 0..20 {
        if disabled(&doc, PRIMARY) {
            break;
        }
        let at = app.clock.now();
        for (agent, region) in &mut agents {
            agent.heartbeat(at.timestamp_millis()).await;
            let round = round_of(&app, &format!("cn-{region}"), "alpha", at);
            let resp = agent.send(round).await;
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        }
        app.round().await;
        doc = app.document().await.unwrap();
    }
    assert!(
        disabled(&doc, PRIMARY) && disabled(&doc, SAME_VENDOR),
        "{doc:#}"
    );
    assert!(!disabled(&doc, OTHER_VENDOR));
    let events: Vec<Value> = app.events().await;
    assert!(
        events.iter().any(|e| e["reason"] == "vendor_wide"),
        "{events:#?}"
    );
    app.stop().await;
}

/// Stepped time spent as a running service spends it (`advance`) checks the agents as each
/// decision is made: one that stops sending heartbeats is down 30 s later, recorded, and its
/// region has no valid evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stepped_time_finds_a_silent_agent_down() {
    let app = TestApp::stepped_with(|c| {
        c.probe.interval_ms = 10_000;
        with_agent(c, "agent-south", &["cn-south"]);
    })
    .await;
    let agent = TestAgent::new(&app.base, "agent-south", &app.http);
    agent.heartbeat(app.clock.now().timestamp_millis()).await;
    app.running()
        .advance(std::time::Duration::from_secs(10))
        .await;
    let reasons = async || -> Vec<String> {
        let events: Vec<Value> = app.events().await;
        let reason = |e: &Value| e["reason"].as_str().unwrap_or_default().to_string();
        events
            .iter()
            .map(reason)
            .filter(|r| r.starts_with("agent_"))
            .collect()
    };
    let latest = app.running().state.latest();
    assert!(reasons().await.is_empty() && !latest.unheard("cn-south"));
    app.running()
        .advance(std::time::Duration::from_secs(30))
        .await;
    assert_eq!(reasons().await, ["agent_down"]);
    assert!(latest.unheard("cn-south"));
    app.stop().await;
}
