//! The agents' API in-process: what a batch may not be (another agent's token or region, unknown
//! series, oversized strings, future times) and a token's rotation.

use cdnwatch::config::Config;
use serde_json::Value;

use super::stored;
use crate::harness::*;

/// A token of another agent than [`AGENT_TOKEN`]'s.
const OTHER_TOKEN: &str = "other-agent-token-00000000000000000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_unknown_oversized_and_future_results_are_refused_with_their_reasons_and_never_stored()
 {
    let app = TestApp::stepped_with(|c| {
        with_agent(c, "agent-east", &["cn-east"]);
        with_agent(c, "agent-north", &["cn-north"]);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(OTHER_TOKEN));
        c.agents[1].token_sha256 = vec![digest];
    })
    .await;
    let (config, prober) = (&app.lab.config, &app.lab.prober);
    let probe = async |region: usize| {
        let (h, r) = (&config.hosts[0], &config.regions[region]);
        prober
            .probe(h, &h.paths[0], r, &r.resolvers[0])
            .await
            .results
    };
    let (east, north) = (probe(0).await, probe(1).await);
    let mut a = TestAgent::new(&app.base, "agent-east", &app.http);
    a.heartbeat(chrono::Utc::now().timestamp_millis()).await;
    // Agent east's token on agent north's routes: refused.
    let b = TestAgent::new(&app.base, "agent-north", &app.http);
    assert_eq!(
        b.post(&b.batch(north.clone()), AGENT_TOKEN).await.status(),
        403
    );
    // Agent east sending agent north's region: the batch is forged, refused whole.
    let mut forged = east.clone();
    forged.extend(north.clone());
    let resp = a.send(forged).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("does not speak for"));
    // Unknown series, a 7 MiB path, a time an hour ahead: each refused with its reason.
    let mut unknown = east[0].clone();
    unknown.host = "evil.example".into();
    let mut huge = east[0].clone();
    huge.path = format!("/{}", "a".repeat(7 * 1024 * 1024));
    let mut future = east[0].clone();
    future.at = chrono::Utc::now() + chrono::Duration::hours(1);
    let resp = a.send(vec![unknown, huge, future, east[0].clone()]).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["stored"], 1, "{answer}");
    for reason in ["unknown_series", "oversized", "future"] {
        assert_eq!(answer["refused"][reason], 1, "{answer}");
    }
    let (_, results) = stored(&app.db_path(), "agent-east").await;
    assert_eq!(results, 1, "only the good result is stored");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(!metrics.contains("evil.example") && !metrics.contains("aaaaaaaa"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_token_is_rotated_with_two_valid_at_once_and_the_old_one_revoked_by_a_reload() {
    let digest = |t: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t));
    let app = TestApp::stepped_with(|c| {
        with_agent(c, "agent-east", &["cn-east"]);
        c.agents[0].token_sha256.push(digest(OTHER_TOKEN));
    })
    .await;
    let a = TestAgent::new(&app.base, "agent-east", &app.http);
    let now = chrono::Utc::now().timestamp_millis();
    for token in [AGENT_TOKEN, OTHER_TOKEN] {
        assert_eq!(a.heartbeat_with(now, token).await.status(), 200, "{token}");
    }
    // The old token is taken out of the file; a reload revokes it at once.
    let path = &app.lab.config_path;
    let mut c = Config::load(path).unwrap();
    c.agents[0].token_sha256 = vec![digest(OTHER_TOKEN)];
    std::fs::write(path, c.to_toml()).unwrap();
    app.running().reload().await.unwrap();
    assert_eq!(a.heartbeat_with(now, AGENT_TOKEN).await.status(), 403);
    assert_eq!(a.heartbeat_with(now, OTHER_TOKEN).await.status(), 200);
    app.stop().await;
}
