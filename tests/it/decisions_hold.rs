//! Decisions that hold: overrides work whatever the engine's state, the engine's memory outlives a
//! restart, the served document never lapses, and the signing key is never silently replaced.
//! Every test runs the real service on a stepped clock.

use std::time::Duration;

use cdnwatch::client::{HostListClient, Offer};
use cdnwatch::publish::RESIGN_AFTER;
use cdnwatch::startup::{self as service, ServeOptions};
use serde_json::Value;

use crate::harness::*;

const SETTLE: Duration = Duration::from_secs(15);

/// Sets an override through the API with the admin token; its id.
async fn set_override(e: &TestApp, host: &str, kind: &str) -> i64 {
    let resp = e
        .http
        .post(format!("{}/api/v1/overrides", e.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"host": host, "kind": kind, "reason": "on-call", "actor": "oncall@shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn clear_override(e: &TestApp, id: i64) {
    let resp = e
        .http
        .delete(format!("{}/api/v1/overrides/{id}", e.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

/// One region: fewer than `min_quorum` (2) can ever vote, so the engine is frozen for good and
/// never has its first full round.
fn one_region(c: &mut cdnwatch::config::Config) {
    c.regions.truncate(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_is_applied_and_published_while_frozen_and_before_warm_up() {
    let e = TestApp::stepped_with(one_region).await;
    let first = e.document().await.expect("the cold-start document");
    e.rounds(3).await;
    assert!(e.events().await.iter().any(|ev| ev["reason"] == "freeze"));
    let id = set_override(&e, PRIMARY, "force_disable").await;
    e.round().await;
    let d = e.document().await.unwrap();
    assert!(disabled(&d, PRIMARY), "applied at the next round: {d:#}");
    assert!(version(&d) > version(&first), "and published");
    // Cleared while still frozen: a force_enable then brings it back at once too.
    clear_override(&e, id).await;
    set_override(&e, PRIMARY, "force_enable").await;
    e.round().await;
    let d = e.document().await.unwrap();
    assert!(all_enabled(&d), "{d:#}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_a_force_disable_on_a_healthy_host_enables_it_at_the_next_round() {
    let e = TestApp::stepped().await;
    e.rounds(2).await;
    let id = set_override(&e, PRIMARY, "force_disable").await;
    e.round().await;
    assert!(disabled(&e.document().await.unwrap(), PRIMARY));
    clear_override(&e, id).await;
    e.round().await;
    let d = e.document().await.unwrap();
    assert!(
        all_enabled(&d),
        "back at the first round after the clear, without rise rounds or a hold: {d:#}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_a_hold_keeps_the_host_out_until_its_hold_ends() {
    // A 6 s hold (twelve rounds): far longer than the three ok rounds of the rise rule.
    let e = TestApp::stepped_with(|c| {
        c.engine.hold_base_ms = 6000;
        c.engine.hold_cap_ms = 6000;
    })
    .await;
    let mut e = e;
    e.rounds(2).await;
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#)
        .await;
    e.wait_doc(SETTLE, "the alpha hosts out", |d| disabled(d, PRIMARY))
        .await;
    e.clear_faults().await;
    let healthy_from = e.clock.now();
    e.restart().await;
    e.rounds(6).await;
    let d = e.document().await.unwrap();
    assert!(
        disabled(&d, PRIMARY),
        "six ok rounds after a restart, the hold still runs: {d:#}"
    );
    e.wait_doc(SETTLE, "the alpha hosts back", all_enabled)
        .await;
    let waited = (e.clock.now() - healthy_from).to_std().unwrap();
    assert!(
        waited >= Duration::from_millis(5500),
        "back only after the hold: {waited:?}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_service_re_signs_its_document_before_it_expires() {
    let e = TestApp::stepped_with(one_region).await;
    let keys = e.keys().await;
    let first = e.document().await.unwrap();
    e.round().await;
    e.clock.advance(
        (RESIGN_AFTER + chrono::Duration::minutes(1))
            .to_std()
            .unwrap(),
    );
    e.round().await;
    let (body, sig) = e.fetch().await.unwrap();
    let d: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(version(&d), version(&first) + 1, "a new version: {d:#}");
    assert_ne!(d["issuedAt"], first["issuedAt"]);
    assert_ne!(d["expiresAt"], first["expiresAt"]);
    assert_eq!(d["hostListConfig"], first["hostListConfig"], "same content");
    let last = e.versions().await;
    assert_eq!(last[0]["reason"], "resign");
    // A client whose clock is the service's accepts it: it is not expired.
    let mut client = HostListClient::new("install-x", keys);
    assert!(matches!(
        client.offer_at(&body, &sig, e.clock.now()),
        Offer::Accepted(_)
    ));
    e.stop().await;
}

fn options(e: &TestApp, init_key: bool) -> ServeOptions {
    ServeOptions {
        config_path: e.lab.config_path.clone(),
        data_dir: e.lab.data_dir(),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_listen: None,
        prober_id: "e2e".into(),
        tokens: e.tokens.clone(),
        bump_version: None,
        init_key,
        clock: e.clock.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_missing_key_on_a_deployment_that_published_unless_told_to_init_one() {
    let mut e = TestApp::stepped().await;
    let old = e.keys().await;
    e.running.take().unwrap().shutdown().await;
    std::fs::remove_file(e.lab.data_dir().join("signing.key")).unwrap();
    let refused = service::start(options(&e, false)).await;
    let err = refused
        .err()
        .expect("refused without --init-key")
        .to_string();
    assert!(
        err.contains("--init-key") && err.contains("signing.key"),
        "{err}"
    );
    assert!(
        !e.lab.data_dir().join("signing.key").exists(),
        "no key was made"
    );
    let running = service::start(options(&e, true))
        .await
        .expect("starts with --init-key");
    e.base = format!("http://{}", running.addr);
    e.running = Some(running);
    let new = e.keys().await;
    assert_eq!(new.len(), 1);
    assert_ne!(new[0].0, old[0].0, "a new key");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_key_rotation_both_keys_are_listed_and_clients_verify_with_either() {
    let mut e = TestApp::stepped().await;
    let dir = e.lab.data_dir();
    let (old_body, old_sig) = e.fetch().await.unwrap();
    let old = e.keys().await;
    // Step 1: the next key is listed beside the signing one; the document is still signed by the old.
    let seed: [u8; 32] = cdnwatch::auth::random_bytes();
    std::fs::write(dir.join("signing.key.next"), hex::encode(seed)).unwrap();
    e.restart().await;
    let both = e.keys().await;
    assert_eq!(
        both.len(),
        2,
        "{:?}",
        both.iter().map(|k| &k.0).collect::<Vec<_>>()
    );
    assert_eq!(both[0].0, old[0].0, "the signing key first");
    // Step 2: the next key signs; the old one is still listed.
    std::fs::rename(dir.join("signing.key"), dir.join("signing.key.previous")).unwrap();
    std::fs::rename(dir.join("signing.key.next"), dir.join("signing.key")).unwrap();
    e.restart().await;
    let rotated = e.keys().await;
    assert_eq!(rotated[0].0, both[1].0);
    assert_eq!(rotated[1].0, old[0].0);
    let (new_body, new_sig) = e.fetch().await.unwrap();
    assert!(
        new_sig.contains(&format!("keyid={}", both[1].0)),
        "re-signed at start: {new_sig}"
    );
    // A client that shipped both keys takes either document; one with only the old key sees the
    // new document as unverifiable.
    let mut c = HostListClient::new("install-r", both.clone());
    assert!(matches!(c.offer(&old_body, &old_sig), Offer::Accepted(_)));
    assert!(matches!(c.offer(&new_body, &new_sig), Offer::Accepted(_)));
    let mut only_old = HostListClient::new("install-o", old);
    assert!(matches!(
        only_old.offer(&new_body, &new_sig),
        Offer::Invalid(_)
    ));
    e.stop().await;
}
