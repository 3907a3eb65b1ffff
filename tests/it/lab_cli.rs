//! `cdnwatch lab`, `cdnwatch lab fault …` and `cdnwatch probe` as an on-call engineer runs them:
//! the real binary, a standalone lab process, loopback only.

use std::time::{Duration, Instant};

use crate::harness::machine::shared_blocking;
use crate::harness::process::{BIN, DemoProcess, LabProcess, run};

#[test]
fn an_engineer_injects_a_fault_sees_it_in_probe_and_clears_it() {
    let lab = LabProcess::start();
    let (code, rows) = lab.probe(&["--host", "cdn.shop.test", "--region", "cn-east"]);
    assert_eq!(code, 0, "{rows:?}");
    // 3 paths x 2 resolvers x 2 edges.
    assert_eq!(rows.len(), 12);
    assert!(
        rows.iter()
            .all(|r| r["status"] == 200 && r["failure"].is_null()),
        "{rows:?}"
    );

    let (code, id, stderr) = lab.fault(&[
        "add",
        "--kind",
        "http_status",
        "--status",
        "502",
        "--vendor",
        "alpha",
        "--path-prefix",
        "/image",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let id = id.trim().to_string();
    assert!(id.parse::<u64>().is_ok(), "prints the id: {id}");
    let (_, listed, _) = lab.fault(&["list"]);
    assert!(
        listed.contains("http_status") && listed.contains("\"vendor\":\"alpha\""),
        "{listed}"
    );

    let (code, rows) = lab.probe(&["--host", "cdn.shop.test", "--region", "cn-east"]);
    assert_eq!(code, 1, "a failed probe makes the exit status 1");
    let failed: Vec<_> = rows.iter().filter(|r| !r["failure"].is_null()).collect();
    assert_eq!(
        failed.len(),
        4,
        "only the image path, both resolvers, both edges"
    );
    assert!(failed.iter().all(|r| r["path"] == "/image/probe.jpg"
        && r["status"] == 502
        && r["failure"]["class"] == "http_status"));

    let (code, _, _) = lab.fault(&["rm", &id]);
    assert_eq!(code, 0);
    let (code, _, stderr) = lab.fault(&["rm", &id]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!("no fault with id {id}")),
        "{stderr}"
    );

    let (code, _, _) = lab.fault(&["add", "--kind", "dns_servfail", "--region", "cn-south"]);
    assert_eq!(code, 0);
    let (code, _, _) = lab.fault(&["clear"]);
    assert_eq!(code, 0);
    let (_, listed, _) = lab.fault(&["list"]);
    assert_eq!(listed.trim(), "no faults");
    let (code, _) = lab.probe(&["--region", "cn-south", "--path", "/product/probe.json"]);
    assert_eq!(code, 0);
}

#[test]
fn bad_faults_are_refused_with_a_reason() {
    let lab = LabProcess::start();
    let (code, _, stderr) = lab.fault(&["add", "--kind", "meltdown"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("--kind \"meltdown\" is not a fault kind"),
        "{stderr}"
    );
    let (code, _, stderr) = lab.fault(&["add", "--kind", "delay"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("`ms` is required"), "{stderr}");
    let (code, _, stderr) = lab.fault(&["add", "--kind", "reset", "--vendor", "gamma"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("no vendor `gamma`"), "{stderr}");
}

#[test]
fn the_table_shows_one_row_per_edge_with_the_failure_class() {
    let lab = LabProcess::start();
    let (code, _, _) = lab.fault(&[
        "add",
        "--kind",
        "cert_expiring",
        "--days",
        "9",
        "--host",
        "cdn-bak.shop.test",
    ]);
    assert_eq!(code, 0);
    let (code, _, _) = lab.fault(&["add", "--kind", "reset", "--edge", "127.22.1.2"]);
    assert_eq!(code, 0);
    let config = lab.config.to_str().unwrap();
    let (code, table, _) = run(&[
        "probe",
        "--config",
        config,
        "--host",
        "cdn-bak.shop.test",
        "--path",
        "/image/probe.jpg",
        "--region",
        "cn-east",
        "--resolver",
        "isp",
    ]);
    assert_eq!(code, 1);
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("127.22.1.")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].contains("127.22.1.1") && rows[0].ends_with("ok") && rows[0].contains(" 9 "),
        "{table}"
    );
    assert!(
        rows[1].contains("127.22.1.2") && rows[1].ends_with("conn_reset"),
        "{table}"
    );
}

#[test]
fn the_lab_stops_cleanly_on_sigterm() {
    let mut lab = LabProcess::start();
    lab.process.signal("-TERM");
    let status = lab
        .process
        .wait_exit(Duration::from_secs(10))
        .expect("the lab did not stop");
    assert!(status.success(), "{status:?}");
}

/// `cdnwatch demo ARGS` at half-second rounds on free ports, its data in `data`, run to its end:
/// its output and its stdout as text.
fn demo(args: &[&str], data: &std::path::Path) -> (std::process::Output, String) {
    let out = std::process::Command::new(BIN)
        .arg("demo")
        .args(args)
        .args(["--interval-ms", "500", "--listen", "127.0.0.1:0"])
        .args(["--lab-api", "127.0.0.1:0", "--data"])
        .arg(data)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    (out, stdout)
}

#[test]
fn the_demo_runs_with_no_setup_and_prints_what_to_open_and_how_to_inject_a_fault() {
    let _machine = shared_blocking();
    let dir = tempfile::tempdir().unwrap();
    // Its agents start, pull their assignments and send their first batches within a few rounds.
    let (out, stdout) = demo(&["--rounds", "8"], dir.path());
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "status:",
        "fault API:",
        "inject:",
        "lab fault add",
        "cdn.shop.test",
        "cn-south",
        "agent-east probes cn-east",
        "agent-south probes cn-south",
        "stop one:",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    let last_matrix: Vec<&str> = stdout.lines().rev().take(3).collect();
    assert!(last_matrix.iter().all(|l| l.contains("ok ")), "{stdout}");
    assert!(dir.path().join("cdnwatch.db").exists());
    // Every result came from an agent process, each with its own token file.
    for r in ["east", "north", "south"] {
        let token = dir.path().join(format!("agents/agent-{r}.token"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&token).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{}", token.display());
    }
}

/// Whether process `pid` still runs (an exited one not reaped yet is a zombie: it does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z")
        })
        .unwrap_or(false)
}

/// A demo killed with -9 cannot stop its agents: each notices its parent is gone and stops by
/// itself (they used to probe on, orphaned, until the machine rebooted). Killed once its agents
/// are up — heard by its service — so each is in its running loop, not still starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_killed_with_9_leaves_no_agent_running() {
    let _machine = crate::harness::machine::shared().await;
    let mut demo = DemoProcess::start();
    assert_eq!(demo.agents.len(), 3, "one agent per region");
    cdnwatch::probe::tls::install_default_provider();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}/api/v1/agents", demo.addr);
    crate::harness::eventually(
        Duration::from_secs(30),
        "the demo's agents up",
        async || {
            let agents: Vec<serde_json::Value> = http
                .get(&url)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let up = agents.iter().filter(|a| a["up"] == true).count();
            (up == 3).then_some(()).ok_or(format!("{up} of 3 up"))
        },
    )
    .await;
    assert!(demo.agents.iter().all(|pid| running(*pid)));
    demo.process.signal("-KILL");
    demo.process.wait_exit(Duration::from_secs(5)).unwrap();
    // Each looks once a second, then stops as on SIGTERM (its running probes end against the
    // dead lab, its last batch is synced, its sends to the dead service fail at once).
    let deadline = Instant::now() + Duration::from_secs(20);
    while demo.agents.iter().any(|pid| running(*pid)) {
        assert!(
            Instant::now() < deadline,
            "agents still running: {:?}",
            demo.agents
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn the_local_demo_runs_in_one_process_and_probes_every_region_itself() {
    let _machine = shared_blocking();
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout) = demo(&["--local", "--rounds", "4"], dir.path());
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("agents:     none (--local)"), "{stdout}");
    let last_matrix: Vec<&str> = stdout.lines().rev().take(3).collect();
    assert!(last_matrix.iter().all(|l| l.contains("ok ")), "{stdout}");
    assert!(!dir.path().join("agents").exists());
}
