//! Regional agents as real processes (issue 11): `cdnwatch lab`, `cdnwatch serve` and one
//! `cdnwatch agent` per region, each its own process on loopback. The service probes nothing
//! itself; the agents' evidence decides, survives the service stopping and dying, and an agent
//! that dies or whose clock is off is handled as the README says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cdnwatch::config::Config;
use serde_json::Value;

use crate::harness::agents::AgentProcess;
use crate::harness::process::{LabProcess, ServeProcess};
use crate::harness::*;

/// The lab, the service on it with an agent per region, and the agents.
struct Topology {
    lab: LabProcess,
    dir: tempfile::TempDir,
    config: PathBuf,
    serve: ServeProcess,
    agents: BTreeMap<String, AgentProcess>,
    http: reqwest::Client,
}

const REGIONS: [&str; 3] = ["east", "north", "south"];

impl Topology {
    /// Probing every `interval_ms`; `extra(id)` are more arguments for an agent.
    fn start(interval_ms: u64, extra: impl Fn(&str) -> Vec<String>) -> Topology {
        // Starting processes and waiting for their first lines blocks: off the async threads.
        tokio::task::block_in_place(|| Self::start_blocking(interval_ms, extra))
    }

    fn start_blocking(interval_ms: u64, extra: impl Fn(&str) -> Vec<String>) -> Topology {
        let lab = LabProcess::start();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cdnwatch.toml");
        let mut c = Config::load(&lab.config).unwrap();
        c.probe.interval_ms = interval_ms;
        with_an_agent_per_region(&mut c);
        let lab_dir = lab.config.parent().unwrap();
        for v in &mut c.vendors {
            v.ca_file = v.ca_file.as_ref().map(|f| lab_dir.join(f));
        }
        std::fs::write(&config, c.to_toml()).unwrap();
        let serve = ServeProcess::start(&config, &dir.path().join("data"));
        let mut t = Topology {
            lab,
            config,
            serve,
            agents: BTreeMap::new(),
            http: {
                cdnwatch::probe::tls::install_default_provider();
                reqwest::Client::builder().no_proxy().build().unwrap()
            },
            dir,
        };
        for r in REGIONS {
            let id = format!("agent-{r}");
            t.start_agent(&id, &extra(&id));
        }
        t
    }

    fn start_agent(&mut self, id: &str, extra: &[String]) {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let agent = AgentProcess::start(&self.serve.base, id, self.dir.path(), &extra);
        self.agents.insert(id.to_string(), agent);
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("data").join("cdnwatch.db")
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.serve.base);
        let resp = self.http.get(url).send().await.unwrap();
        resp.json().await.unwrap()
    }

    /// `GET /api/v1/agents`, by id.
    async fn agents_view(&self) -> BTreeMap<String, Value> {
        let list = self.get("/api/v1/agents").await;
        let list = list.as_array().unwrap().iter();
        list.map(|a| (a["id"].as_str().unwrap().to_string(), a.clone()))
            .collect()
    }

    async fn wait_agents(&self, limit: Duration, what: &str, ok: impl Fn(&Value) -> bool) {
        eventually(limit, what, async || {
            let view = self.agents_view().await;
            view.values()
                .all(&ok)
                .then_some(())
                .ok_or(format!("{view:#?}"))
        })
        .await
    }

    async fn events(&self) -> Vec<Value> {
        let v = self.get("/api/v1/events?limit=500").await;
        v.as_array().cloned().unwrap_or_default()
    }

    async fn document(&self) -> Value {
        self.get("/api/v1/hostlist").await
    }
}

/// The batches an agent's log says it spooled durably: (boot, seq) → results.
fn spooled(log: &str) -> BTreeMap<(String, u64), u64> {
    let mut out = BTreeMap::new();
    for line in log.lines() {
        let Some(rest) = line.split("batch spooled: boot ").nth(1) else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if let [boot, "seq", seq, "results", n, ..] = words[..] {
            out.insert((boot.to_string(), seq.parse().unwrap()), n.parse().unwrap());
        }
    }
    out
}

/// What the store holds of an agent: its batches (boot, seq) → records, and its result rows.
async fn stored(db: &Path, agent: &str) -> (BTreeMap<(String, u64), u64>, u64) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT boot, seq, records FROM agent_batches WHERE agent = ?")
            .bind(agent)
            .fetch_all(&pool)
            .await
            .unwrap();
    let results: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM results r JOIN probers p ON p.id = r.prober_id WHERE p.name = ?",
    )
    .bind(agent)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    let batches = rows
        .into_iter()
        .map(|(b, s, n)| ((b, s as u64), n as u64))
        .collect();
    (batches, results as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_outage_is_decided_from_three_agent_processes_alone() {
    let t = Topology::start(1000, |_| Vec::new());
    t.wait_agents(Duration::from_secs(20), "every agent up and sending", |a| {
        a["up"] == true && a["received"].as_u64() > Some(0)
    })
    .await;
    let metrics = t
        .http
        .get(format!("{}/metrics", t.serve.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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

/// Waits until every agent is up and reports an empty backlog.
async fn drained(t: &Topology, limit: Duration) {
    t.wait_agents(limit, "every agent up with its backlog sent", |a| {
        a["up"] == true && a["backlog_records"] == 0
    })
    .await;
}

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
    let metrics = (app.http.get(format!("{}/metrics", app.base)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
