//! Results enter one way: what an agent posts to `/api/v1/ingest` is stored, counted and decided on
//! exactly like what the service probes itself.

use cdnwatch::model::{EdgeResult, Failure, FailureClass, Phase};
use serde_json::Value;

use crate::harness::{AGENT_TOKEN, OTHER_VENDOR, PRIMARY, SAME_VENDOR, TestApp, disabled};

/// One failed result (HTTP 502 from one edge) per series of `vendor`'s hosts, dated `at`.
fn failed_round(app: &TestApp, vendor: &str, at: chrono::DateTime<chrono::Utc>) -> Vec<EdgeResult> {
    let config = &app.lab.config;
    let mut out = Vec::new();
    for s in config.series().filter(|s| s.host.vendor == vendor) {
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
            status: Some(502),
            body_bytes: 0,
            cert: None,
            failure: Some(Failure::new(
                FailureClass::HttpStatus,
                Phase::Processing,
                "status 502",
            )),
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_failing_results_vote_in_the_engine_like_local_ones() {
    // The service's own probes find every host healthy; only the agent reports alpha failing.
    let app = TestApp::stepped_with(|_| {}).await;
    let url = format!("{}/api/v1/ingest", app.base);
    let mut doc = app.document().await.expect("the cold-start document");
    for _ in 0..20 {
        if disabled(&doc, PRIMARY) {
            break;
        }
        // Stamped just after this round's own probes, so the agent's round is each series' newest.
        let at = app.clock.now() + chrono::Duration::milliseconds(1);
        let body = serde_json::to_vec(&failed_round(&app, "alpha", at)).unwrap();
        let resp = app
            .http
            .post(&url)
            .bearer_auth(AGENT_TOKEN)
            .header("x-prober-id", "agent-east")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
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
