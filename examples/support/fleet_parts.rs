//! The fleet benchmark's three parts — ingest, replay, propagation — each returning its one line
//! of figures (name, value, unit, target), with whatever was refused or answered other than 200.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fleet_api::{HostlistLoop, Seen, lag_p99, thousands};
use crate::fleet_procs::{Meter, Proc, start_until};
use crate::fleet_synthetic::{Backlog, Shape, write_backlog};
use crate::fleet_upload::Tally;
use crate::{Bench, Opts};

/// The agent sends at most this many backlog batches a second (`BACKLOG_PER_SEC` in
/// src/agent/uplink.rs): the floor of a replay's time.
const AGENT_BACKLOG_BATCHES_PER_SEC: f64 = 20.0;
/// The longest one reload may take to reach every agent before its agents count as missed.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(30);

fn received(seen: &[Seen]) -> u64 {
    seen.iter().map(|a| a.received).sum()
}

fn refused(seen: &[Seen]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (why, n) in seen.iter().flat_map(|a| &a.refused) {
        *out.entry(why.clone()).or_default() += n;
    }
    out
}

/// `refused: none`, or what was refused since `before`, loudly.
fn refused_since(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> String {
    let grew: Vec<String> = after
        .iter()
        .filter_map(|(why, n)| {
            let d = n.saturating_sub(before.get(why).copied().unwrap_or(0));
            (d > 0).then(|| format!("{why} {}", thousands(d)))
        })
        .collect();
    if grew.is_empty() {
        "refused: none".into()
    } else {
        format!("REFUSED: {}", grew.join(", "))
    }
}

/// Part 1: one uploader process per agent, back to back.
pub(crate) async fn ingest(b: &Bench) -> String {
    let before = b.api.agents_ok().await;
    let lag0 = b.api.lag_buckets().await;
    let meter = Meter::begin(b.serve.pid);
    let ids: Vec<String> = b.series.keys().cloned().collect();
    let per = b.o.results / ids.len() as u64;
    let exe = std::env::current_exe().expect("this example's path");
    let mut runs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let n = per
            + if i == 0 {
                b.o.results % ids.len() as u64
            } else {
                0
            };
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(["upload", "--server", &b.api.base, "--id", id])
            .arg("--token-file")
            .arg(b.token_file(id))
            .args([
                "--results",
                &n.to_string(),
                "--batch",
                &b.o.batch.to_string(),
            ])
            .kill_on_drop(true)
            .stdout(std::process::Stdio::piped())
            .stderr(
                std::fs::File::create(b.dir.path().join(format!("upload-{id}.log")))
                    .expect("a log"),
            );
        runs.push(cmd.spawn().expect("an uploader").wait_with_output());
    }
    let tallies: Vec<Tally> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(|out| {
            let out = out.expect("an uploader's output");
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().last().unwrap_or_default();
            serde_json::from_str(line).unwrap_or_else(|_| {
                panic!(
                    "an uploader failed ({}); logs in {}",
                    out.status,
                    b.dir.path().display()
                )
            })
        })
        .collect();
    let figures = meter.end();
    let lag = lag_p99(&lag0, &b.api.lag_buckets().await);
    let after = b.api.agents_ok().await;
    let api = received(&after) - received(&before);
    let rows = count_rows(&b.dir.path().join("data").join("cdnwatch.db")).await;
    let refused = refused_since(&refused(&before), &refused(&after));
    ingest_line(&tallies, api, rows, &refused, &lag, &figures)
}

fn ingest_line(
    t: &[Tally],
    api: u64,
    rows: (u64, u64, u64),
    refused: &str,
    lag: &str,
    figures: &str,
) -> String {
    let stored: u64 = t.iter().map(|t| t.stored).sum();
    let first = t.iter().map(|t| t.first_send_ms).min().unwrap_or(0);
    let last = t.iter().map(|t| t.last_ack_ms).max().unwrap_or(0);
    let secs = ((last - first) as f64 / 1000.0).max(1e-3);
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for (s, n) in t.iter().flat_map(|t| &t.statuses) {
        *statuses.entry(*s).or_default() += n;
    }
    let answers: Vec<String> = (statuses.iter())
        .map(|(s, n)| {
            let odd = if [200, 429, 503].contains(s) {
                ""
            } else {
                " (UNEXPECTED)"
            };
            format!("{} x {s}{odd}", thousands(*n))
        })
        .collect();
    let dups: u64 = t.iter().map(|t| t.duplicates).sum();
    let unreachable: u64 = t.iter().map(|t| t.unreachable).sum();
    let first_error = t.iter().find_map(|t| t.first_error.clone());
    let cpu: f64 = t.iter().map(|t| t.cpu_s).sum();
    format!(
        "ingest: {} results/s into the store [target >= 50,000/s] ({} uploaders, {} results acknowledged stored (200, durable) in {secs:.1} s, first send to last acknowledgement; GET /api/v1/agents received +{}; {} rows in results from agents, {} in agent_batches' {} batches); service's own probes: {lag} [target <= 5 ms]; answers: {}; duplicates: {dups}; unreachable: {unreachable}{}; {refused}; {figures}; uploaders' own CPU {cpu:.1} s",
        thousands((stored as f64 / secs) as u64),
        t.len(),
        thousands(stored),
        thousands(api),
        thousands(rows.0),
        thousands(rows.1),
        thousands(rows.2),
        answers.join(", "),
        first_error.map_or(String::new(), |e| format!("; FIRST ERROR: {e}")),
    )
}

/// Rows in `results` from any agent, and the records and batches of the uploaders' batches.
async fn count_rows(db: &Path) -> (u64, u64, u64) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("the store, read-only");
    let rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM results WHERE prober_id IN (SELECT id FROM probers WHERE name LIKE 'agent-%')",
    )
    .fetch_one(&pool)
    .await
    .expect("counting results");
    let (records, batches): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(records), 0), COUNT(*) FROM agent_batches WHERE boot LIKE 'bench-up-%'",
    )
    .fetch_one(&pool)
    .await
    .expect("counting batches");
    pool.close().await;
    (rows as u64, records as u64, batches as u64)
}

/// Part 2's spools: each agent's backlog written in the agent's format, all at once.
async fn spool_backlogs(b: &Bench) -> BTreeMap<String, (PathBuf, Backlog)> {
    let t = Instant::now();
    let mut versions = BTreeMap::new();
    for id in b.series.keys() {
        versions.insert(id.clone(), assignment_version(b, id).await);
    }
    let shape = Shape {
        minutes: b.o.backlog_minutes,
        interval_ms: b.o.interval_ms,
        seal_ms: b.o.seal_ms,
        end_ms: chrono::Utc::now().timestamp_millis(),
    };
    let out = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            let writers: Vec<_> = (b.series.iter())
                .map(|(id, series)| {
                    let dir = b.dir.path().join(format!("spool-{id}"));
                    let version = &versions[id];
                    s.spawn(move || {
                        let backlog = write_backlog(&dir, id, series, version, shape);
                        (id.clone(), (dir, backlog))
                    })
                })
                .collect();
            writers
                .into_iter()
                .map(|w| w.join().expect("a spool writer"))
                .collect()
        })
    });
    eprintln!(
        "replay: backlog spooled in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    out
}

async fn assignment_version(b: &Bench, id: &str) -> String {
    let token = cdnwatch::config::read_token_file(&b.token_file(id)).expect("a token");
    let path = format!("/api/v1/agents/{id}/assignment");
    let (status, body) = b.api.get_with(&path, Some(&token)).await;
    assert_eq!(status, 200, "GET assignment of {id}");
    let a: cdnwatch::agent::wire::Assignment = serde_json::from_str(&body).expect("an assignment");
    a.assignment_version
}

/// A real `cdnwatch agent` on its spool.
async fn start_agent(b: &Bench, id: &str, spool: &Path) -> Proc {
    let mut cmd = tokio::process::Command::new(&b.o.bin);
    cmd.args(["agent", "--server", &b.api.base, "--id", id])
        .arg("--token-file")
        .arg(b.token_file(id))
        .arg("--spool")
        .arg(spool)
        .env("RUST_LOG", "warn");
    let log = b.dir.path().join(format!("agent-{id}.log"));
    start_until(cmd, &log, "cdnwatch agent ").await.0
}

/// Part 2: the backlogs replayed by real agents; returns the agents (running on into part 3).
pub(crate) async fn replay(b: &Bench) -> (Vec<Proc>, String) {
    let spools = spool_backlogs(b).await;
    let before = b.api.agents_ok().await;
    let lag0 = b.api.lag_buckets().await;
    let meter = Meter::begin(b.serve.pid);
    let t0 = Instant::now();
    let mut agents = Vec::new();
    for (id, (dir, _)) in &spools {
        agents.push(start_agent(b, id, dir).await);
    }
    let hostlist = HostlistLoop::start(&b.api.base, Duration::from_millis(b.o.hostlist_every_ms));
    let drained = wait_drained(b, (&spools, &agents), &before, t0).await;
    let hostlist = hostlist.finish();
    let figures = meter.end();
    let lag = lag_p99(&lag0, &b.api.lag_buckets().await);
    let after = b.api.agents_ok().await;
    let refused = refused_since(&refused(&before), &refused(&after));
    let results: u64 = spools.values().map(|(_, s)| s.results).sum();
    let batches: u64 = spools.values().map(|(_, s)| s.batches).sum();
    let floor = batches as f64 / spools.len() as f64 / AGENT_BACKLOG_BATCHES_PER_SEC;
    let line = format!(
        "replay: {} agents' backlog ({} results in {} batches, {} min each) sent in {drained} [target: none set; floor {floor:.0} s at the agent's {AGENT_BACKLOG_BATCHES_PER_SEC} backlog batches/s]; service's own probes: {lag} [target <= 5 ms]; config API GET /api/v1/hostlist every {} ms: {hostlist} [target: none set]; {refused}; {figures}",
        spools.len(),
        thousands(results),
        thousands(batches),
        b.o.backlog_minutes,
        b.o.hostlist_every_ms,
    );
    (agents, line)
}

/// Waits until every backlog is sent: its files gone from the spool (acknowledged), and
/// `GET /api/v1/agents` showing backlog 0 and received ≥ the backlog. Says when each held.
async fn wait_drained(
    b: &Bench,
    (spools, agents): (&BTreeMap<String, (PathBuf, Backlog)>, &[Proc]),
    before: &[Seen],
    t0: Instant,
) -> String {
    let was: BTreeMap<&str, u64> = before.iter().map(|a| (a.id.as_str(), a.received)).collect();
    let (mut files, mut api): (BTreeMap<String, f64>, BTreeMap<String, f64>) = Default::default();
    let (mut not_ok, mut round) = (0u64, 0u64);
    let limit = Duration::from_secs(b.o.drain_timeout_s);
    while (files.len() < spools.len() || api.len() < spools.len()) && t0.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        insist_all_alive(b, agents);
        let now = t0.elapsed().as_secs_f64();
        for (id, (dir, backlog)) in spools {
            if !files.contains_key(id) && !holds_boot(dir, &backlog.boot) {
                files.insert(id.clone(), now);
            }
        }
        round += 1;
        if !round.is_multiple_of(5) {
            continue;
        }
        match b.api.agents().await {
            Err(_) => not_ok += 1,
            Ok(seen) => {
                for a in seen.iter().filter(|a| spools.contains_key(&a.id)) {
                    let backlog = spools[&a.id].1.results;
                    let got =
                        (a.received).saturating_sub(was.get(a.id.as_str()).copied().unwrap_or(0));
                    if a.backlog_records == 0 && got >= backlog && !api.contains_key(&a.id) {
                        api.insert(a.id.clone(), now);
                    }
                }
            }
        }
    }
    drained_text(spools.len(), &files, &api, not_ok, limit)
}

fn drained_text(
    n: usize,
    files: &BTreeMap<String, f64>,
    api: &BTreeMap<String, f64>,
    not_ok: u64,
    limit: Duration,
) -> String {
    let last = |m: &BTreeMap<String, f64>| m.values().copied().fold(0.0, f64::max);
    let first = |m: &BTreeMap<String, f64>| m.values().copied().fold(f64::INFINITY, f64::min);
    let mut out = if files.len() == n {
        format!(
            "{:.1} s (every backlog file acknowledged; the first agent's at {:.1} s)",
            last(files),
            first(files)
        )
    } else {
        format!(
            "NOT DRAINED within {} s ({} of {n} agents' files acknowledged)",
            limit.as_secs(),
            files.len()
        )
    };
    if api.len() == n {
        out += &format!(
            "; GET /api/v1/agents showed backlog 0 and received >= backlog for all at {:.1} s",
            last(api)
        );
    } else {
        out += &format!(
            "; GET /api/v1/agents showed it for only {} of {n}",
            api.len()
        );
    }
    if not_ok > 0 {
        out += &format!("; GET /api/v1/agents NOT 200 {not_ok} times");
    }
    out
}

/// Panics (killing every child) when the service or an agent is gone.
fn insist_all_alive(b: &Bench, agents: &[Proc]) {
    b.insist_serving();
    for (id, agent) in b.series.keys().zip(agents) {
        let log = b.dir.path().join(format!("agent-{id}.log"));
        b.insist_alive(&format!("agent {id}"), agent, &log);
    }
}

/// Whether the spool `dir` still holds a batch of boot `boot`.
fn holds_boot(dir: &Path, boot: &str) -> bool {
    let needle = format!("-{boot}-");
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains(&needle))
    })
}

/// Part 3: reloads, each timed until every agent runs the new assignment.
pub(crate) async fn propagation(b: &mut Bench, agents: &[Proc]) -> String {
    let meter = Meter::begin(b.serve.pid);
    let (mut samples, mut missed, mut not_ok) = (Vec::new(), 0usize, 0u64);
    let base_ms = b.config.probe.timeouts.first_byte_ms;
    for r in 0..b.o.reloads {
        let before: BTreeMap<String, Option<String>> = (b.api.agents_ok().await.into_iter())
            .map(|a| (a.id, a.assignment_version))
            .collect();
        b.config.probe.timeouts.first_byte_ms = base_ms + r as u64 + 1;
        b.write_config();
        let t0 = Instant::now();
        b.serve.signal("-HUP");
        let mut pending: BTreeSet<String> = b.series.keys().cloned().collect();
        while !pending.is_empty() && t0.elapsed() < PROPAGATION_LIMIT {
            tokio::time::sleep(Duration::from_millis(10)).await;
            insist_all_alive(b, agents);
            let Ok(seen) = b.api.agents().await else {
                not_ok += 1;
                continue;
            };
            for a in seen {
                let moved = a.assignment_current && a.assignment_version != before[&a.id];
                if moved && pending.remove(&a.id) {
                    samples.push(t0.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
        missed += pending.len();
    }
    propagation_line(&b.o, samples, missed, not_ok, &meter.end())
}

fn propagation_line(
    o: &Opts,
    mut ms: Vec<f64>,
    missed: usize,
    not_ok: u64,
    figures: &str,
) -> String {
    ms.sort_by(f64::total_cmp);
    let q = |q: f64| {
        let i = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len().max(1)) - 1;
        ms.get(i).copied().unwrap_or(f64::NAN)
    };
    let missed = if missed == 0 {
        "none".to_string()
    } else {
        format!(
            "{missed} (NOT PROPAGATED within {} s)",
            PROPAGATION_LIMIT.as_secs()
        )
    };
    format!(
        "propagation: SIGHUP -> each agent on the new assignment (GET /api/v1/agents, polled every 10 ms): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} samples ({} reloads x {} agents) [target p99 <= 2,000 ms]; missed: {missed}; GET /api/v1/agents non-200: {not_ok}; {figures}",
        q(0.5),
        q(0.99),
        ms.last().copied().unwrap_or(f64::NAN),
        ms.len(),
        o.reloads,
        o.agents,
    )
}

/// `logs: serve 0 warning/error lines, agents 2 (first: …), uploaders 0`: what the children
/// logged at warn or error over the whole run (their logs go with the temporary directory).
pub(crate) fn logs(b: &Bench) -> String {
    let mut parts = Vec::new();
    for (what, prefix) in [
        ("serve", "serve"),
        ("agents", "agent-"),
        ("uploaders", "upload-"),
    ] {
        let mut lines: Vec<String> = Vec::new();
        for entry in std::fs::read_dir(b.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) && name.ends_with(".log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let bad = text
                    .lines()
                    .filter(|l| l.contains("WARN") || l.contains("ERROR"));
                lines.extend(
                    bad.map(|l| format!("{name}: {}", l.chars().take(300).collect::<String>())),
                );
            }
        }
        let first = lines
            .first()
            .map_or(String::new(), |l| format!(" (first: {l})"));
        parts.push(format!("{what} {} warning/error lines{first}", lines.len()));
    }
    format!("logs: {}", parts.join(", "))
}
