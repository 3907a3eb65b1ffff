//! Incidents told to on-call: a real Alertmanager receives each open incident as a firing alert
//! (with its labels and annotations) and then its resolution; the outbox survives a kill -9 with
//! exactly one "opened" and one "resolved" per channel. Stepped clock; the senders run in real
//! time, so a look waits a little for them.

use std::time::{Duration, Instant};

use cdnwatch::config::{ChannelKind, ChannelSettings, Config};
use serde_json::Value;

use crate::harness::alertmanager::Alertmanager;
use crate::harness::process::ServeProcess;
use crate::harness::robots::FakeRobot;
use crate::harness::*;

const SETTLE: Duration = Duration::from_secs(15);
const VENDOR_502: &str = r#"{"kind":"http_status","status":502,"vendor":"alpha"}"#;

/// A channel whose URL is in a file of its own (the URL may carry a token: never in the config).
fn channel(name: &str, kind: ChannelKind, url: &str) -> ChannelSettings {
    let file = std::env::temp_dir().join(format!("cdnwatch-test-{name}-{}.url", fastrand::u64(..)));
    std::fs::write(&file, url).unwrap();
    ChannelSettings {
        name: name.into(),
        kind,
        url_file: Some(file),
        url_env: None,
        secret_file: None,
        secret_env: None,
    }
}

fn notify_to(c: &mut Config, channels: Vec<ChannelSettings>) {
    c.notify.group_window_ms = 0;
    c.notify.alertmanager_resend_ms = 1_000;
    c.notify.channels = channels;
}

/// Waits (real time) until `am` holds an alert passing `pred`.
async fn am_alert(am: &Alertmanager, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(a) = am.alerts().await.into_iter().find(&pred) {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "no alert {what}; alerts {:#?}\nlog:\n{}",
            am.alerts().await,
            am.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_sees_the_incident_fire_and_then_resolve() {
    let am = Alertmanager::start().await;
    let url = am.base.clone();
    let e = TestApp::stepped_with(|c| {
        notify_to(c, vec![channel("am", ChannelKind::Alertmanager, &url)]);
    })
    .await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(VENDOR_502).await;
    e.wait_doc(SETTLE, "alpha disabled", |d| disabled(d, PRIMARY))
        .await;
    let firing = am_alert(&am, "firing", |a| {
        a["labels"]["alertname"] == "CdnwatchIncident" && a["status"]["state"] == "active"
    })
    .await;
    let l = &firing["labels"];
    assert_eq!(l["incident"], "1", "{firing:#}");
    assert_eq!(l["scope"], "vendor");
    assert_eq!(l["vendor"], "alpha");
    assert_eq!(l["severity"], "critical");
    assert_eq!(l["class"], "http_status");
    assert_eq!(l["host"], "2 hosts");
    assert_eq!(l["region"], "3 regions");
    let a = &firing["annotations"];
    assert!(
        a["summary"]
            .as_str()
            .unwrap()
            .contains("vendor alpha in every region fails"),
        "{a:#}"
    );
    assert!(a["dashboard"].as_str().unwrap().ends_with("/incidents/1"));
    assert!(!a["version"].as_str().unwrap().is_empty(), "{a:#}");
    // Delivery is visible: on the incidents page and on /metrics.
    let page = e.get("/incidents").await.text().await.unwrap();
    assert!(page.contains("<td>am</td><td>alertmanager</td>"), "{page}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = e.get("/metrics").await.text().await.unwrap();
        let sent = metrics
            .lines()
            .find(|l| l.starts_with("cdnwatch_notifications_total{channel=\"am\",result=\"sent\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if sent >= 1.0 {
            assert!(metrics.contains("cdnwatch_notification_queue_depth{channel=\"am\"}"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no sent message counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Resolved: Alertmanager hears the end.
    e.clear_faults().await;
    e.eventually(
        Duration::from_secs(60),
        "the incident resolved",
        async || {
            let i: Value = e.get("/api/v1/incidents/1").await.json().await.unwrap();
            if i["state"] == "resolved" {
                Ok(())
            } else {
                Err(format!("{i:#}"))
            }
        },
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let active = am
            .alerts()
            .await
            .into_iter()
            .filter(|a| a["status"]["state"] == "active")
            .count();
        if active == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still firing: {:#?}",
            am.alerts().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    e.stop().await;
}

/// Every text a robot received, whatever its format (DingTalk markdown, Slack text …).
fn texts(robot: &FakeRobot) -> Vec<String> {
    robot
        .received()
        .iter()
        .map(|m| {
            [
                &m["markdown"]["text"],
                &m["markdown"]["content"],
                &m["text"],
            ]
            .iter()
            .find_map(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
        })
        .collect()
}

/// Waits (real time) until `robot`'s texts pass `pred`.
async fn robot_says(robot: &FakeRobot, what: &str, pred: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pred(&texts(robot)) {
        assert!(
            Instant::now() < deadline,
            "the robot was not told {what}: {:#?}",
            texts(robot)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_dingtalk_robot_is_told_in_chinese_when_the_vendor_fails_and_when_it_recovers() {
    let robot = FakeRobot::start(ChannelKind::Dingtalk, Some("SEC-test-secret"), 20);
    let secret = std::env::temp_dir().join(format!("cdnwatch-test-{}.secret", fastrand::u64(..)));
    std::fs::write(&secret, "SEC-test-secret").unwrap();
    let url = robot.url();
    let e = TestApp::stepped_with(|c| {
        let mut chat = channel("chat", ChannelKind::Dingtalk, &url);
        chat.secret_file = Some(secret.clone());
        notify_to(c, vec![chat]);
        c.notify.language = cdnwatch::config::Language::ZhCn;
    })
    .await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(VENDOR_502).await;
    e.wait_doc(SETTLE, "alpha disabled", |d| disabled(d, PRIMARY))
        .await;
    robot_says(&robot, "the vendor fails", |t| {
        t.iter().any(|m| m.contains("故障") && m.contains("alpha"))
    })
    .await;
    e.clear_faults().await;
    e.eventually(
        Duration::from_secs(60),
        "the incident resolved",
        async || {
            let i: Value = e.get("/api/v1/incidents/1").await.json().await.unwrap();
            if i["state"] == "resolved" {
                Ok(())
            } else {
                Err(format!("{i:#}"))
            }
        },
    )
    .await;
    robot_says(&robot, "the recovery", |t| {
        t.iter().any(|m| m.contains("已恢复"))
    })
    .await;
    assert_eq!(
        robot.refused(),
        0,
        "every message signed as DingTalk checks it"
    );
    assert_eq!(robot.throttled(), 0);
    let all = texts(&robot).join("\n");
    assert!(
        all.contains("/incidents/1"),
        "each message links its incident: {all}"
    );
    e.stop().await;
}

/// Notice headers in `texts` that say the vendor's incident opened, and that it recovered.
fn opened_and_resolved(texts: &[String]) -> (usize, usize) {
    let lines = texts
        .iter()
        .flat_map(|t| t.lines())
        .map(|l| l.trim_matches('*'));
    let (mut opened, mut resolved) = (0, 0);
    for l in lines {
        if l.ends_with("vendor alpha in every region fails") && !l.contains("widened") {
            opened += 1;
        }
        if l.contains("vendor alpha in every region works again after") {
            resolved += 1;
        }
    }
    (opened, resolved)
}

/// Waits until the outbox in `data` records a `change` notice as sent: the moment past which a
/// kill must not send it again. (Between the receiver's answer and this record a kill sends the
/// message again — delivery is at least once, as Alertmanager's — so the test kills after it.)
async fn recorded_sent(data: &std::path::Path, change: &str) {
    let pool = read_only_db(&data.join("cdnwatch.db")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notifications WHERE change = ? AND state = 'sent'",
        )
        .bind(change)
        .fetch_one(&pool)
        .await
        .unwrap();
        if sent > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox did not record the {change} notice sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pool.close().await;
}

/// What the outbox in `data` holds, for a failure's message.
async fn outbox_rows(data: &std::path::Path) -> String {
    let pool = read_only_db(&data.join("cdnwatch.db")).await;
    let rows: Vec<(i64, String, String)> = sqlx::query_as("SELECT id, state, body FROM incidents")
        .fetch_all(&pool)
        .await
        .unwrap();
    let outbox: Vec<(String, String, i64, Option<String>)> =
        sqlx::query_as("SELECT change, state, attempts, last_error FROM notifications")
            .fetch_all(&pool)
            .await
            .unwrap();
    format!("incidents {rows:?}\noutbox {outbox:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_incident_tells_each_channel_once_it_opened_and_once_it_resolved() {
    let robot = FakeRobot::start(ChannelKind::Slack, None, 600);
    let url = robot.url();
    let lab = TestLab::spawn_with(|c| {
        c.probe.interval_ms = 1000;
        notify_to(c, vec![channel("chat", ChannelKind::Slack, &url)]);
    })
    .await;
    let data = lab.data_dir();
    let mut s = ServeProcess::start(&lab.config_path, &data);
    lab.fault(VENDOR_502).await;
    robot_says(&robot, "the vendor fails", |t| {
        opened_and_resolved(t).0 >= 1
    })
    .await;
    recorded_sent(&data, "opened").await;
    s.process.signal("-KILL");
    s.wait_exit(Duration::from_secs(5));
    let mut s = ServeProcess::start(&lab.config_path, &data);
    tokio::time::sleep(Duration::from_secs(3)).await;
    lab.clear().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while opened_and_resolved(&texts(&robot)).1 == 0 {
        if Instant::now() > deadline {
            panic!(
                "the recovery was not told within 30 s: {}\nlog {}",
                outbox_rows(&data).await,
                s.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    recorded_sent(&data, "resolved").await;
    s.process.signal("-KILL");
    s.wait_exit(Duration::from_secs(5));
    let mut s = ServeProcess::start(&lab.config_path, &data);
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.process.signal("-TERM");
    s.wait_exit(Duration::from_secs(10));
    assert_eq!(
        opened_and_resolved(&texts(&robot)),
        (1, 1),
        "exactly one opened and one resolved: {:#?}\n{}",
        texts(&robot),
        outbox_rows(&data).await
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_is_retried_then_given_up_and_shown_failed() {
    // A port nothing listens on: every attempt is refused by the kernel.
    let dead = format!(
        "http://127.0.0.1:{}/hook",
        crate::harness::prometheus::free_port()
    );
    let e = TestApp::stepped_with(|c| {
        notify_to(c, vec![channel("gone", ChannelKind::Webhook, &dead)]);
        c.notify.max_attempts = 2;
    })
    .await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(VENDOR_502).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Rounds move the service clock past each backoff.
        e.round().await;
        let page = e.get("/incidents").await.text().await.unwrap();
        let metrics = e.get("/metrics").await.text().await.unwrap();
        let failed = metrics
            .lines()
            .find(|l| {
                l.starts_with("cdnwatch_notifications_total{channel=\"gone\",result=\"failed\"}")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if failed >= 1.0 {
            assert!(
                page.contains("<tr class=\"failing\"><td>gone</td>"),
                "{page}"
            );
            assert!(
                page.contains("cannot connect"),
                "the error is shown: {page}"
            );
            assert!(!page.contains(&dead), "the URL is never shown");
            assert!(
                metrics.contains(
                    "cdnwatch_notifications_total{channel=\"gone\",result=\"retried\"} 1"
                ),
                "{metrics}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never given up:\n{page}\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_delays_neither_the_engine_nor_another_channel() {
    // Accepts connections and never answers: each attempt waits out the send limit.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_url = format!("http://{}/hook", hang.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            open.push(s);
        }
    });
    let robot = FakeRobot::start(ChannelKind::Slack, None, 600);
    let url = robot.url();
    let e = TestApp::stepped_with(|c| {
        notify_to(
            c,
            vec![
                channel("stuck", ChannelKind::Webhook, &hang_url),
                channel("chat", ChannelKind::Slack, &url),
            ],
        );
    })
    .await;
    e.wait_doc(SETTLE, "the cold-start document", all_enabled)
        .await;
    e.fault(VENDOR_502).await;
    let started = Instant::now();
    e.wait_doc(SETTLE, "alpha disabled", |d| disabled(d, PRIMARY))
        .await;
    robot_says(&robot, "the vendor fails", |t| {
        opened_and_resolved(t).0 >= 1
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the healthy channel was told within the stuck one's 10 s send limit: {:?}",
        started.elapsed()
    );
    e.stop().await;
    held.abort();
}
