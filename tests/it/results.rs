//! Results enter one way: what agents send to `/api/v1/agents/{id}/results` is stored, counted and
//! decided on exactly like what the service probes itself.

use cdnwatch::model::{EdgeResult, Failure, FailureClass, Phase};
use serde_json::Value;

use crate::harness::{
    OTHER_VENDOR, PRIMARY, SAME_VENDOR, TestAgent, TestApp, disabled, with_an_agent_per_region,
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
