//! What each robot receives from cdnwatch, sent over a real socket to a fake of it that checks
//! what the real service checks: accepted with the right token and secret, refused for good with
//! a wrong one or a stale signature, throttled (and told to retry) past its rate.

use std::time::Duration;

use cdnwatch::config::{ChannelKind, Language, Severity};
use cdnwatch::engine::FaultScope;
use cdnwatch::notify::channels::{self, Answer, Batch, Target};
use cdnwatch::notify::{Change, Notice};
use chrono::Utc;
use serde_json::Value;

use crate::harness::robots::FakeRobot;

const SECRET: &str = "SECfake0123456789";

fn notice(incident: i64) -> Notice {
    let now = Utc::now();
    Notice {
        incident,
        seq: 0,
        change: Change::Opened,
        at: now,
        scope: FaultScope::Vendor {
            vendor: "alpha".into(),
        },
        severity: Severity::Critical,
        classes: vec![],
        hosts: vec!["cdn.shop.test".into()],
        vendors: vec!["alpha".into()],
        regions: vec!["cn-east".into()],
        decision: None,
        version: Some(7),
        opened_at: now,
        resolved_at: None,
        link: format!("http://127.0.0.1/incidents/{incident}"),
    }
}

/// `request` → POST → `answer`, as the dispatcher does.
async fn send(
    target: &Target,
    notices: &[Notice],
    lang: Language,
    at: chrono::DateTime<Utc>,
) -> Answer {
    cdnwatch::probe::tls::install_default_provider();
    let out = channels::request(target, &Batch { notices, folded: 0 }, lang, at);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = client
        .post(&out.url)
        .header("content-type", out.content_type)
        .body(out.body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = res.bytes().await.unwrap();
    channels::answer(target.kind, status, &body).with_retry_after(retry_after.as_deref())
}

fn secret_of(kind: ChannelKind) -> Option<&'static str> {
    kind.signs().then_some(SECRET)
}

const KINDS: [ChannelKind; 5] = [
    ChannelKind::Dingtalk,
    ChannelKind::Feishu,
    ChannelKind::Wecom,
    ChannelKind::Slack,
    ChannelKind::Webhook,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_robot_accepts_a_message_signed_with_its_own_construction() {
    for kind in KINDS {
        let robot = FakeRobot::start(kind, secret_of(kind), 20);
        let target = Target {
            kind,
            url: robot.url(),
            secret: secret_of(kind).map(str::to_string),
        };
        let answer = send(&target, &[notice(1)], Language::ZhCn, Utc::now()).await;
        assert_eq!(answer, Answer::Delivered, "{kind:?}");
        let got: Vec<Value> = robot.received();
        assert_eq!(got.len(), 1, "{kind:?}");
        let text = got[0].to_string();
        assert!(
            text.contains("【严重】厂商 alpha 在所有地区故障"),
            "{kind:?}: {text}"
        );
        assert!(
            text.contains("http://127.0.0.1/incidents/1"),
            "{kind:?}: {text}"
        );
        assert_eq!(robot.refused(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_or_token_is_refused_for_good() {
    for kind in KINDS {
        let robot = FakeRobot::start(kind, secret_of(kind), 20);
        let wrong = match kind {
            // The signing robots: the right URL, the wrong secret.
            ChannelKind::Dingtalk | ChannelKind::Feishu => Target {
                kind,
                url: robot.url(),
                secret: Some("SECwrong".into()),
            },
            // The webhook takes anyone; the others: a wrong token in the URL.
            ChannelKind::Webhook => continue,
            _ => Target {
                kind,
                url: robot.wrong_url(),
                secret: None,
            },
        };
        let answer = send(&wrong, &[notice(1)], Language::En, Utc::now()).await;
        assert!(
            matches!(answer, Answer::Refused { .. }),
            "{kind:?}: {answer:?}"
        );
        assert_eq!(
            (robot.received().len(), robot.refused()),
            (0, 1),
            "{kind:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_older_than_an_hour_is_refused() {
    for kind in [ChannelKind::Dingtalk, ChannelKind::Feishu] {
        let robot = FakeRobot::start(kind, Some(SECRET), 20);
        let target = Target {
            kind,
            url: robot.url(),
            secret: Some(SECRET.into()),
        };
        let stale = Utc::now() - chrono::Duration::minutes(70);
        let answer = send(&target, &[notice(1)], Language::En, stale).await;
        assert!(
            matches!(answer, Answer::Refused { .. }),
            "{kind:?}: {answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_rate_every_robot_throttles_and_the_answer_is_retry() {
    for kind in KINDS {
        let robot = FakeRobot::start(kind, secret_of(kind), 3);
        let target = Target {
            kind,
            url: robot.url(),
            secret: secret_of(kind).map(str::to_string),
        };
        for i in 0..3 {
            let answer = send(&target, &[notice(i)], Language::En, Utc::now()).await;
            assert_eq!(answer, Answer::Delivered, "{kind:?} message {i}");
        }
        let answer = send(&target, &[notice(9)], Language::En, Utc::now()).await;
        match answer {
            Answer::Retry { after, .. } => {
                assert!(
                    after.is_some(),
                    "{kind:?}: the robot's throttle says how long to wait"
                );
            }
            other => panic!("{kind:?}: {other:?}"),
        }
        assert_eq!(
            (robot.received().len(), robot.throttled()),
            (3, 1),
            "{kind:?}"
        );
    }
}
