//! The agents as real processes: a vendor outage decided from their evidence alone, an agent
//! killed, a clock five minutes off, a reload, and the service stopped or killed while they spool.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cdnwatch::config::Config;
use serde_json::Value;

use super::{REGIONS, Topology, drained, spooled, stored};
use crate::harness::process::ServeProcess;
use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_outage_is_decided_from_three_agent_processes_alone() {
    let t = Topology::start(1000, |_| Vec::new());
    t.wait_agents(Duration::from_secs(20), "every agent up and sending", |a| {
        a["up"] == true && a["received"].as_u64() > Some(0)
    })
    .await;
    let metrics = t.text("/metrics").await;
    assert!(
        metrics.contains("\ncdnwatch_scheduler_series 0\n"),
        "the service schedules nothing of its own"
    );
    let (code, _, err) = t.lab.fault(&[
        "add",
        "--kind",
        "http_status",
        "--status",
        "502",
        "--vendor",
        "alpha",
    ]);
    assert_eq!(code, 0, "{err}");
    let doc = eventually(
        Duration::from_secs(30),
        "alpha's hosts disabled",
        async || {
            let doc = t.document().await;
            (disabled(&doc, PRIMARY) && disabled(&doc, SAME_VENDOR))
                .then_some(doc.clone())
                .ok_or(format!("{doc}"))
        },
    )
    .await;
    assert!(!disabled(&doc, OTHER_VENDOR));
    let events = t.events().await;
    assert!(
        events.iter().any(|e| e["reason"] == "vendor_wide"),
        "{events:#?}"
    );
    // Every stored result is an agent's.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", t.db().display()))
        .await
        .unwrap();
    let probers: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT p.name FROM results r JOIN probers p ON p.id = r.prober_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let want: BTreeSet<String> = REGIONS.iter().map(|r| format!("agent-{r}")).collect();
    assert_eq!(probers.into_iter().collect::<BTreeSet<_>>(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_leaves_its_region_invalid_within_30_s_and_two_killed_freeze() {
    let mut t = Topology::start(1000, |_| Vec::new());
    t.wait_agents(Duration::from_secs(20), "every agent up", |a| {
        a["up"] == true
    })
    .await;
    let doc = eventually(Duration::from_secs(20), "a document", async || {
        let doc = t.document().await;
        (version(&doc) >= 1)
            .then_some(doc.clone())
            .ok_or(format!("{doc}"))
    })
    .await;
    let killed = Instant::now();
    t.agents["agent-south"].process.signal("-KILL");
    eventually(Duration::from_secs(40), "agent-south down", async || {
        let view = t.agents_view().await;
        (view["agent-south"]["up"] == false)
            .then_some(())
            .ok_or(format!("{:#?}", view["agent-south"]))
    })
    .await;
    let took = killed.elapsed();
    // Down after 3 missed heartbeats: 30 s after the last one, checked every second.
    assert!(took <= Duration::from_secs(32), "down after {took:?}");
    let events = t.events().await;
    let down: Vec<&Value> = events
        .iter()
        .filter(|e| e["reason"] == "agent_down")
        .collect();
    assert_eq!(down.len(), 1, "{events:#?}");
    assert!(down[0]["detail"].as_str().unwrap().contains("cn-south"));
    assert_eq!(
        t.document().await["hostListConfig"],
        doc["hostListConfig"],
        "nothing flipped"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["reason"] == "freeze" && e["at"].as_str() > down[0]["at"].as_str())
    );
    // A second agent dies: one valid region is below the quorum's two: the engine freezes.
    t.agents.remove("agent-north"); // killed and reaped on drop
    eventually(
        Duration::from_secs(45),
        "a freeze for too few valid regions",
        async || {
            let events = t.events().await;
            events
                .iter()
                .any(|e| {
                    e["reason"] == "freeze"
                        && e["detail"].as_str().unwrap().contains("only 1 region")
                })
                .then_some(())
                .ok_or(format!("{:#?}", &events[..events.len().min(5)]))
        },
    )
    .await;
    assert_eq!(
        t.document().await["hostListConfig"],
        doc["hostListConfig"],
        "nothing flipped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_five_minutes_ahead_is_measured_at_once_and_its_results_re_stamped() {
    let t = Topology::start(1000, |id| {
        if id == "agent-east" {
            vec!["--clock-offset-ms".into(), "300000".into()]
        } else {
            Vec::new()
        }
    });
    let started = Instant::now();
    let skew = eventually(Duration::from_secs(5), "agent-east's skew", async || {
        let view = t.agents_view().await;
        let a = &view["agent-east"];
        a["skew_ms"].as_f64().ok_or(format!("{a:#?}"))
    })
    .await;
    let took = started.elapsed();
    assert!((skew - 300_000.0).abs() < 1_000.0, "skew {skew} ms");
    assert!(took <= Duration::from_secs(1), "measured after {took:?}");
    t.wait_agents(Duration::from_secs(20), "every agent sending", |a| {
        a["received"].as_u64() > Some(0)
    })
    .await;
    let view = t.agents_view().await;
    assert_eq!(view["agent-east"]["skew_flagged"], true);
    assert_eq!(view["agent-north"]["skew_flagged"], false);
    assert_eq!(view["agent-east"]["refused"]["future"], 0);
    // Its results are stored on the service's clock, not five minutes ahead.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", t.db().display()))
        .await
        .unwrap();
    let newest: i64 = sqlx::query_scalar(
        "SELECT MAX(at_ms) FROM results r JOIN probers p ON p.id = r.prober_id WHERE p.name = 'agent-east'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    let now = chrono::Utc::now().timestamp_millis();
    assert!((now - newest).abs() < 10_000, "newest {newest}, now {now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reaches_every_agent_within_2_s_and_unchanged_series_keep_their_rhythm() {
    let t = Topology::start(1000, |_| Vec::new());
    t.wait_agents(
        Duration::from_secs(20),
        "every agent up on its assignment",
        |a| a["up"] == true && a["assignment_current"] == true,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await; // a few probes of each series first
    let before: BTreeMap<String, Value> = t.agents_view().await;
    let mut c = Config::load(&t.config).unwrap();
    c.probe.timeouts.transfer_ms += 1;
    std::fs::write(&t.config, c.to_toml()).unwrap();
    let sent = Instant::now();
    let reload_ms = chrono::Utc::now().timestamp_millis();
    t.serve.process.signal("-HUP");
    t.wait_agents(
        Duration::from_secs(5),
        "every agent on the new assignment",
        |a| {
            let id = a["id"].as_str().unwrap();
            a["assignment_current"] == true
                && a["assignment_version"] != before[id]["assignment_version"]
        },
    )
    .await;
    let took = sent.elapsed();
    assert!(
        took <= Duration::from_secs(2),
        "every agent applied it after {took:?}"
    );
    // One series of each agent: its probes stay one interval apart across the reload.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", t.db().display()))
        .await
        .unwrap();
    for r in REGIONS {
        let ats: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT r.at_ms FROM results r JOIN series s ON s.id = r.series_id
             WHERE s.id = (SELECT MIN(s2.id) FROM series s2 WHERE s2.region = ?) ORDER BY r.at_ms",
        )
        .bind(format!("cn-{r}"))
        .fetch_all(&pool)
        .await
        .unwrap();
        let (before, after) = ats.iter().partition::<Vec<i64>, _>(|at| **at < reload_ms);
        assert!(
            before.len() >= 2 && after.len() >= 3,
            "cn-{r} around {reload_ms}: {ats:?}"
        );
        for w in ats.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                (800..=1200).contains(&gap),
                "cn-{r}: probes {gap} ms apart: {ats:?}"
            );
        }
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_agents_spooled_while_the_service_was_stopped_or_killed_is_stored_exactly_once() {
    let mut t = Topology::start(1000, |_| Vec::new());
    t.wait_agents(Duration::from_secs(20), "every agent sending", |a| {
        a["received"].as_u64() > Some(0)
    })
    .await;
    // The service stops for 60 s while the agents probe on.
    t.serve.process.signal("-STOP");
    tokio::time::sleep(Duration::from_secs(60)).await;
    t.serve.process.signal("-CONT");
    drained(&t, Duration::from_secs(90)).await;
    // It dies (kill -9) and comes back on the same port and data.
    let listen = t.serve.base.trim_start_matches("http://").to_string();
    t.serve.process.signal("-KILL");
    let _ = t.serve.process.wait_exit(Duration::from_secs(5));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let data = t.dir.path().join("data");
    t.serve = tokio::task::block_in_place(|| ServeProcess::start_on(&t.config, &data, &listen));
    // An agent dies while spooling and starts again on the same spool.
    let first_log = t.agents["agent-east"].log();
    t.agents["agent-east"].process.signal("-KILL");
    t.agents.remove("agent-east");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut logs: BTreeMap<String, String> = BTreeMap::new();
    logs.insert("agent-east".into(), first_log);
    tokio::task::block_in_place(|| t.start_agent("agent-east", &[]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    drained(&t, Duration::from_secs(60)).await;
    // Every agent stops cleanly (SIGTERM: exit 0, its last batches sent).
    for (id, agent) in &mut t.agents {
        agent.process.signal("-TERM");
        let status = agent
            .process
            .wait_exit(Duration::from_secs(20))
            .expect("the agent stops");
        assert!(status.success(), "{id}: {status:?}\n{}", agent.log());
        logs.entry(id.clone()).or_default().push_str(&agent.log());
        let left = std::fs::read_dir(&agent.spool).unwrap().count();
        assert_eq!(left, 0, "{id}: {left} batches left in its spool");
    }
    for (id, log) in &logs {
        let spooled = spooled(log);
        let (batches, results) = stored(&t.db(), id).await;
        assert!(
            spooled.len() > 60,
            "{id}: {} batches spooled",
            spooled.len()
        );
        for (key, n) in &spooled {
            assert_eq!(
                batches.get(key),
                Some(n),
                "{id}: batch {key:?} of {n} results"
            );
        }
        // Nothing twice: the store's result rows are exactly its batches' results.
        assert_eq!(results, batches.values().sum::<u64>(), "{id}");
        let boots: BTreeSet<&String> = batches.keys().map(|(b, _)| b).collect();
        let want = if id == "agent-east" { 2 } else { 1 };
        assert_eq!(boots.len(), want, "{id}: {boots:?}");
    }
}
