//! The config center's HTTP API: caching headers, signatures, exact bytes per version, long polls,
//! the article's fallback POST, overrides behind the admin token, and 4xx JSON errors for bad input.

use std::time::{Duration, Instant};

use crate::harness::*;
use cdnwatch::publish::verify;
use serde_json::Value;

/// A stepped app (see [`TestApp::stepped_with`]) once its first document is served.
async fn started() -> (TestApp, Value) {
    settled(TestApp::stepped().await).await
}

/// The app once its first document (all hosts enabled) is served.
async fn settled(e: TestApp) -> (TestApp, Value) {
    let doc = e
        .wait_doc(Duration::from_secs(15), "the first document", all_enabled)
        .await;
    (e, doc)
}

async fn json_error(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = resp.json().await.unwrap();
    v["error"].as_str().expect("an error sentence").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_list_is_cacheable_signed_and_answers_304_when_unchanged() {
    let (e, doc) = started().await;
    let v = version(&doc);
    let resp = e
        .http
        .get(format!("{}/api/v1/hostlist", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let etag = h["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"v{v}\""));
    let cache = h["cache-control"].to_str().unwrap().to_string();
    for part in ["public", "max-age=", "stale-if-error=", "no-transform"] {
        assert!(cache.contains(part), "{cache}");
    }
    let sig = h["x-config-signature"].to_str().unwrap().to_string();
    assert!(sig.starts_with("alg=Ed25519; keyid="), "{sig}");
    let body = resp.bytes().await.unwrap();
    verify(&body, &sig, &e.keys().await).expect("the signature covers the exact bytes served");
    // A tampered byte fails verification.
    let mut tampered = body.to_vec();
    let i = tampered.iter().position(|b| *b == b'0').unwrap();
    tampered[i] = b'1';
    assert!(verify(&tampered, &sig, &e.keys().await).is_err());
    // The article's field names.
    for field in [
        "hostListConfig",
        "mergeHostConfigs",
        "reviveProbeInterval",
        "configRequestInterval",
        "configVersion",
        "publicIpList",
        "issuedAt",
        "expiresAt",
        "keyId",
    ] {
        assert!(doc.get(field).is_some(), "missing {field}");
    }
    assert_eq!(doc["mergeHostConfigs"][0]["pathPrefix"], "/image");

    let resp = e
        .http
        .get(format!("{}/api/v1/hostlist", e.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(resp.headers()["cache-control"].to_str().unwrap(), cache);
    assert!(resp.bytes().await.unwrap().is_empty());

    // The fallback API: same bytes and signature.
    let resp = e
        .http
        .post(format!("{}/app/config-center/module-config", e.base))
        .body("module=hostlist")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-config-signature"].to_str().unwrap(), sig);
    assert_eq!(resp.bytes().await.unwrap(), body);
    let huge = vec![b'a'; 1024 * 1024];
    let resp = e
        .http
        .post(format!("{}/app/config-center/module-config", e.base))
        .body(huge)
        .send()
        .await
        .unwrap();
    json_error(resp, 413).await;

    // Each version's exact bytes, immutable.
    let resp = e
        .http
        .get(format!("{}/api/v1/hostlist/{v}", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(resp.bytes().await.unwrap(), body);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_4xx_with_a_json_error_never_a_500() {
    let (e, doc) = started().await;
    let v = version(&doc);
    let get = |path: String| {
        let http = e.http.clone();
        let url = format!("{}{path}", e.base);
        async move { http.get(url).send().await.unwrap() }
    };
    assert!(
        json_error(get("/api/v1/hostlist/abc".into()).await, 400)
            .await
            .contains("not a version number")
    );
    assert!(
        json_error(get("/api/v1/hostlist/0".into()).await, 400)
            .await
            .contains("not a version number")
    );
    json_error(get(format!("/api/v1/hostlist/{}", v + 1000)).await, 404).await;
    json_error(
        get("/api/v1/hostlist/99999999999999999999999".into()).await,
        400,
    )
    .await;
    assert!(
        json_error(get("/api/v1/hostlist/watch?version=x".into()).await, 400)
            .await
            .contains("`version`")
    );
    assert!(
        json_error(get("/api/v1/hostlist/watch".into()).await, 400)
            .await
            .contains("missing")
    );
    assert!(
        json_error(
            get(format!("/api/v1/hostlist/watch?version={v}&timeout=3600")).await,
            400
        )
        .await
        .contains("55")
    );
    assert!(
        json_error(
            get(format!("/api/v1/hostlist/watch?version={v}&wait=1")).await,
            400
        )
        .await
        .contains("unknown parameter `wait`")
    );
    json_error(get("/api/v1/hostlist/versions?limit=-1".into()).await, 400).await;
    json_error(get("/api/v1/hostlist/versions?offset=1".into()).await, 400).await;
    json_error(get("/api/v1/events?limit=abc".into()).await, 400).await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_answers_at_once_when_newer_and_wakes_on_a_new_version() {
    // Stepped, so the new version comes when the test steps; the watch's timeout is real time.
    let (e, doc) = settled(TestApp::stepped_alone().await).await;
    let v = version(&doc);
    let resp = e
        .http
        .get(format!(
            "{}/api/v1/hostlist/watch?version={}",
            e.base,
            v - 1
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let t = Instant::now();
    let resp = e
        .http
        .get(format!(
            "{}/api/v1/hostlist/watch?version={v}&timeout=1",
            e.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(890) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );

    let watcher = {
        let http = e.http.clone();
        let url = format!("{}/api/v1/hostlist/watch?version={v}&timeout=30", e.base);
        tokio::spawn(async move {
            let resp = http.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    e.fault(r#"{"kind":"http_status","status":502,"vendor":"beta"}"#)
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !watcher.is_finished() {
        assert!(Instant::now() < deadline, "the watch never woke");
        e.round().await;
    }
    let (status, newer) = watcher.await.unwrap();
    assert_eq!(status, 200);
    assert!(version(&newer) > v);
    assert!(disabled(&newer, OTHER_VENDOR));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_need_the_admin_token_and_never_disable_every_host() {
    let (e, doc) = started().await;
    let url = format!("{}/api/v1/overrides", e.base);
    let body = |host: &str, kind: &str| serde_json::json!({"host": host, "kind": kind, "reason": "vendor maintenance", "actor": "oncall@shop"});
    let resp = e
        .http
        .post(&url)
        .json(&body(PRIMARY, "force_disable"))
        .send()
        .await
        .unwrap();
    json_error(resp, 401).await;
    let resp = e
        .http
        .post(&url)
        .bearer_auth("wrong-token")
        .json(&body(PRIMARY, "force_disable"))
        .send()
        .await
        .unwrap();
    json_error(resp, 403).await;
    let resp = e
        .http
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&body("nope.test", "force_disable"))
        .send()
        .await
        .unwrap();
    assert!(json_error(resp, 400).await.contains("no host `nope.test`"));
    let resp = e
        .http
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .body("{")
        .send()
        .await
        .unwrap();
    json_error(resp, 400).await;

    let resp = e
        .http
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&body(PRIMARY, "force_disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let d = e
        .wait_doc(
            Duration::from_secs(10),
            "the primary disabled by hand",
            |d| disabled(d, PRIMARY),
        )
        .await;
    assert!(version(&d) > version(&doc));
    e.wait_event(Duration::from_secs(2), "override").await;

    for host in [SAME_VENDOR, OTHER_VENDOR] {
        let resp = e
            .http
            .post(&url)
            .bearer_auth(ADMIN_TOKEN)
            .json(&body(host, "force_disable"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    e.wait_event(Duration::from_secs(10), "fail_open").await;
    e.rounds(2).await;
    let d = e.document().await.unwrap();
    assert!(
        [PRIMARY, SAME_VENDOR, OTHER_VENDOR]
            .iter()
            .any(|h| !disabled(&d, h)),
        "one host stays enabled: {d:#}"
    );

    // Nothing of the token in the list of overrides.
    let list = e
        .http
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!list.contains(ADMIN_TOKEN));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regional_agent_feeds_the_same_store_over_http_exactly_once() {
    let (e, _) =
        settled(TestApp::stepped_with(|c| with_agent(c, "agent-south", &["cn-south"])).await).await;
    // The agent probes on its own (here: the library prober on the lab's config) …
    let (config, prober) = (&e.lab.config, &e.lab.prober);
    let (h, r) = (&config.hosts[0], &config.regions[2]);
    let report = prober.probe(h, &h.paths[0], r, &r.resolvers[0]).await;
    let agent = TestAgent::new(&e.base, "agent-south", &e.http);
    let batch = agent.batch(report.results.clone());
    // … and sends its batch with its own token, after a heartbeat that tells its clock.
    json_error(agent.post(&batch, "").await, 401).await;
    json_error(
        agent
            .post(&batch, "wrong-wrong-wrong-wrong-wrong-wrong-00")
            .await,
        403,
    )
    .await;
    let before = json_error(agent.post(&batch, AGENT_TOKEN).await, 428).await;
    assert!(before.contains("heartbeat"), "{before}");
    agent.heartbeat(chrono::Utc::now().timestamp_millis()).await;
    let resp = (e.http.post(agent.url("results")))
        .bearer_auth(AGENT_TOKEN)
        .body("[{}]")
        .send()
        .await
        .unwrap();
    assert!(json_error(resp, 400).await.contains("not a batch"));
    let resp = agent.post(&batch, AGENT_TOKEN).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["stored"], report.results.len(), "{v}");
    assert_eq!(v["duplicate"], false);
    // The acknowledgement was lost: the agent sends the same batch again; nothing is stored twice.
    let again: Value = agent.post(&batch, AGENT_TOKEN).await.json().await.unwrap();
    assert_eq!(
        (again["stored"].as_u64(), again["duplicate"].as_bool()),
        (Some(0), Some(true))
    );
    let db = e.db_path();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results r JOIN probers p ON p.id = r.prober_id WHERE p.name = 'agent-south'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(
        n,
        report.results.len() as i64,
        "answered once durable: stored exactly once"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_unavailable_the_last_version_is_still_served_from_memory() {
    let (e, doc) = started().await;
    let (before, sig_before) = e.fetch().await.unwrap();
    // The database goes away under the running service.
    e.running().state.store.close().await;
    let ready = e
        .http
        .get(format!("{}/readyz", e.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "readiness tells the database is gone");
    // Decision ticks pass; publishing fails, the document stays.
    e.rounds(2).await;
    let (after, sig_after) = e.fetch().await.expect("still served");
    assert_eq!((after, sig_after), (before.clone(), sig_before));
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let path = if method == reqwest::Method::GET {
            "/api/v1/hostlist"
        } else {
            "/app/config-center/module-config"
        };
        let resp = e
            .http
            .request(method, format!("{}{path}", e.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.bytes().await.unwrap(), before, "{path}");
    }
    // What needs the database answers 503 with a JSON error, never a 500.
    let resp = e
        .http
        .get(format!("{}/api/v1/hostlist/versions", e.base))
        .send()
        .await
        .unwrap();
    json_error(resp, 503).await;
    assert_eq!(version(&doc), version(&e.document().await.unwrap()));
    e.stop().await;
}
