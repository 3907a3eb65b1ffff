//! A storm: one vendor failing for 200 hosts of a generated config is told to each chat robot in
//! at most 3 messages over the first five minutes, none throttled, and those messages name every
//! host or say how many they leave out (uptime-kuma's issue #4779: one message per monitor).
//! Stepped clock in 15-second rounds; the senders send in real time, so the test waits a little
//! for them between two rounds.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cdnwatch::config::{ChannelKind, ChannelSettings, Config};
use cdnwatch::lab::LabOptions;
use serde_json::Value;

use crate::harness::robots::FakeRobot;
use crate::harness::*;

/// Hosts of vendor alpha generated beside the lab's own.
const GENERATED: usize = 200;
/// One round of clock time: 20 rounds are the five minutes.
const ROUND: Duration = Duration::from_secs(15);
const STORM: Duration = Duration::from_secs(300);
const VENDOR_502: &str = r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#;
const DINGTALK_SECRET: &str = "SECstorm-dingtalk-secret";
const FEISHU_SECRET: &str = "storm-feishu-secret";

/// A channel whose URL (and secret) are in files of their own.
fn channel(
    dir: &std::path::Path,
    name: &str,
    robot: &FakeRobot,
    secret: Option<&str>,
) -> ChannelSettings {
    let url_file = dir.join(format!("{name}.url"));
    std::fs::write(&url_file, robot.url()).unwrap();
    let secret_file = secret.map(|s| {
        let f = dir.join(format!("{name}.secret"));
        std::fs::write(&f, s).unwrap();
        f
    });
    ChannelSettings {
        name: name.into(),
        kind: robot.kind(),
        url_file: Some(url_file),
        url_env: None,
        secret_file,
        secret_env: None,
    }
}

/// Every string in a message, joined by newlines: the text the robot would show.
fn text_of(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(a) => a.iter().for_each(|v| text_of(v, out)),
        Value::Object(o) => o.values().for_each(|v| text_of(v, out)),
        _ => {}
    }
}

/// How many more a line says it leaves out: "(+N more)".
fn more_of(line: &str) -> Option<usize> {
    let (_, rest) = line.rsplit_once("(+")?;
    rest.split_once(" more)")?.0.parse().ok()
}

/// Whether `texts` name every generated host, or a line names some and counts the rest.
fn hosts_accounted(texts: &[String]) -> Result<(), String> {
    let all: Vec<String> = (0..GENERATED)
        .map(|i| format!("gen-{i}.alpha.shop.test"))
        .collect();
    let named_anywhere = |h: &String| {
        texts.iter().any(|t| {
            t.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
                .any(|w| w == h)
        })
    };
    if all.iter().all(named_anywhere) {
        return Ok(());
    }
    for line in texts.iter().flat_map(|t| t.lines()) {
        let named: BTreeSet<&str> = line
            .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
            .filter(|w| all.iter().any(|h| h == w))
            .collect();
        if let Some(more) = more_of(line)
            && !named.is_empty()
            && named.len() + more >= GENERATED
        {
            return Ok(());
        }
    }
    Err(format!(
        "no message names every host or counts the rest:\n{}",
        texts.join("\n----\n")
    ))
}

/// The outbox's queue for `channel`, as /metrics shows it.
async fn queued(e: &TestApp, channel: &str) -> f64 {
    let metrics = e.get("/metrics").await.text().await.unwrap();
    let key = format!("cdnwatch_notification_queue_depth{{channel=\"{channel}\"}}");
    metrics
        .lines()
        .find(|l| l.starts_with(&key))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Waits (real time, at most `limit`) until no channel has notices waiting.
async fn drained(e: &TestApp, channels: &[&str], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut waiting = 0.0;
        for c in channels {
            waiting += queued(e, c).await;
        }
        if waiting == 0.0 || Instant::now() >= deadline {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_failing_for_200_hosts_is_at_most_3_messages_per_robot_in_five_minutes() {
    let ding = FakeRobot::start(ChannelKind::Dingtalk, Some(DINGTALK_SECRET), 20);
    let feishu = FakeRobot::start(ChannelKind::Feishu, Some(FEISHU_SECRET), 100);
    let wecom = FakeRobot::start(ChannelKind::Wecom, None, 20);
    let secrets = tempfile::tempdir().unwrap();
    let channels = vec![
        channel(secrets.path(), "ding", &ding, Some(DINGTALK_SECRET)),
        channel(secrets.path(), "feishu", &feishu, Some(FEISHU_SECRET)),
        channel(secrets.path(), "wecom", &wecom, None),
    ];
    let lab = LabOptions {
        generated: Some(("alpha".into(), GENERATED)),
        ..LabOptions::default()
    };
    let e = TestApp::stepped_on_lab(lab, |c: &mut Config| {
        c.probe.interval_ms = ROUND.as_millis() as u64;
        // One resolver per region keeps a round of 200 hosts short; the storm is the same.
        for r in &mut c.regions {
            r.resolvers.truncate(1);
        }
        c.notify.channels = channels;
    })
    .await;
    assert_eq!(e.lab.config.hosts.len(), 3 + GENERATED);
    e.wait_doc(
        Duration::from_secs(120),
        "the cold-start document",
        all_enabled,
    )
    .await;
    e.fault(VENDOR_502).await;
    let names = ["ding", "feishu", "wecom"];
    let start = e.clock.now();
    while e.clock.now() - start < chrono::Duration::from_std(STORM).unwrap() {
        e.round().await;
        drained(&e, &names, Duration::from_secs(3)).await;
    }
    drained(&e, &names, Duration::from_secs(10)).await;
    let incidents = e.list("/api/v1/incidents").await;
    assert!(!incidents.is_empty(), "the storm opened no incident");
    for robot in [&ding, &feishu, &wecom] {
        let got = robot.received();
        let kind = robot.kind();
        assert_eq!(robot.throttled(), 0, "{kind:?} throttled: {got:#?}");
        assert_eq!(robot.refused(), 0, "{kind:?} refused some: {got:#?}");
        assert!(
            (1..=3).contains(&got.len()),
            "{kind:?} got {} messages in five minutes: {got:#?}",
            got.len()
        );
        if let Err(why) = hosts_accounted(&texts(robot)) {
            panic!("{kind:?}: {why}");
        }
    }
    e.stop().await;
}

/// The text of every message `robot` accepted, one string each.
fn texts(robot: &FakeRobot) -> Vec<String> {
    robot
        .received()
        .iter()
        .map(|m| {
            let mut t = String::new();
            text_of(m, &mut t);
            t
        })
        .collect()
}
