use chrono::TimeZone;
use serde_json::Value;

use super::*;
use crate::config::Severity;
use crate::engine::{ClassCount, FaultScope};
use crate::incident::{Decision, Refusal};
use crate::model::{FailureClass, Outcome, Phase};
use crate::notify::Change;

const SECRET: &str = "SEC0123456789abcdef";

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap()
}

/// A vendor-wide incident (#12) with `change`.
fn notice(change: Change) -> Notice {
    let decision = (change == Change::Decided).then(|| Decision::Flip {
        host: "cdn.shop.test".into(),
        enabled: false,
        reason: crate::engine::Reason::VendorWide,
        version: Some(12),
    });
    Notice {
        incident: 12,
        seq: 0,
        change,
        at: at(1_700_003_900),
        scope: FaultScope::Vendor {
            vendor: "alpha".into(),
        },
        severity: Severity::Critical,
        classes: vec![ClassCount {
            outcome: Outcome::new(FailureClass::HttpStatus, Some(502)),
            phase: Some(Phase::Processing),
            count: 8,
        }],
        hosts: vec!["cdn.shop.test".into(), "img.shop.test".into()],
        vendors: vec!["alpha".into()],
        regions: vec!["cn-east".into(), "cn-north".into()],
        decision,
        version: Some(12),
        opened_at: at(1_700_000_000),
        resolved_at: (change == Change::Resolved).then(|| at(1_700_003_900)),
        link: "https://watch.example/incidents/12".into(),
    }
}

fn probing() -> Notice {
    Notice {
        scope: FaultScope::ProbeNetwork {
            region: "cn-east".into(),
        },
        severity: Severity::Warning,
        hosts: vec![],
        vendors: vec![],
        ..notice(Change::Opened)
    }
}

fn target(kind: ChannelKind, secret: Option<&str>) -> Target {
    Target {
        kind,
        url: "https://robot.example/send?access_token=tok".into(),
        secret: secret.map(str::to_string),
    }
}

fn send(kind: ChannelKind, notices: &[Notice], folded: usize, lang: Language) -> Outgoing {
    let batch = Batch { notices, folded };
    request(&target(kind, None), &batch, lang, at(1_700_000_000))
}

fn json(o: &Outgoing) -> Value {
    serde_json::from_slice(&o.body).unwrap()
}

/// All the text a robot shows, whatever its JSON shape.
fn shown(kind: ChannelKind, notices: &[Notice], folded: usize, lang: Language) -> String {
    let v = json(&send(kind, notices, folded, lang));
    match kind {
        ChannelKind::Dingtalk => v["markdown"]["text"].as_str().unwrap().to_string(),
        ChannelKind::Wecom => v["markdown"]["content"].as_str().unwrap().to_string(),
        ChannelKind::Slack => v["text"].as_str().unwrap().to_string(),
        _ => v.to_string(),
    }
}

const ROBOTS: [ChannelKind; 5] = [
    ChannelKind::Dingtalk,
    ChannelKind::Feishu,
    ChannelKind::Wecom,
    ChannelKind::Slack,
    ChannelKind::Webhook,
];

#[test]
fn every_robot_names_scope_decision_classes_hosts_regions_version_and_page_in_english() {
    for kind in ROBOTS {
        let text = shown(kind, &[notice(Change::Decided)], 0, Language::En);
        for want in [
            "[CRITICAL] vendor alpha in every region: cdn.shop.test disabled",
            "#12, opened 2023-11-14 22:13 UTC",
            "http_status 502 in processing",
            "cdn.shop.test, img.shop.test",
            "Vendors",
            "cn-east, cn-north",
            "cdn.shop.test disabled (vendor_wide), version 12",
            "Version",
            "https://watch.example/incidents/12",
        ] {
            assert!(text.contains(want), "{kind:?} lacks {want:?}: {text}");
        }
    }
}

#[test]
fn every_robot_says_it_in_chinese_when_asked() {
    for kind in ROBOTS {
        let text = shown(kind, &[notice(Change::Decided)], 0, Language::ZhCn);
        for want in [
            "【严重】厂商 alpha 在所有地区：cdn.shop.test 已停用",
            "故障单",
            "http_status 502（processing 阶段）",
            "主机",
            "cdn.shop.test、img.shop.test",
            "地区",
            "cdn.shop.test 已停用（vendor_wide），版本 12",
            "版本",
            "https://watch.example/incidents/12",
        ] {
            assert!(text.contains(want), "{kind:?} lacks {want:?}: {text}");
        }
        assert!(!text.contains("Hosts"), "{kind:?}: {text}");
    }
}

#[test]
fn a_resolution_says_how_long_it_lasted() {
    let en = shown(
        ChannelKind::Wecom,
        &[notice(Change::Resolved)],
        0,
        Language::En,
    );
    assert!(
        en.contains("[RESOLVED] vendor alpha in every region works again after 1h 5m"),
        "{en}"
    );
    let zh = shown(
        ChannelKind::Wecom,
        &[notice(Change::Resolved)],
        0,
        Language::ZhCn,
    );
    assert!(
        zh.contains("【已恢复】厂商 alpha 在所有地区已恢复，持续 1小时5分"),
        "{zh}"
    );
    assert!(zh.contains("持续时间"), "{zh}");
}

#[test]
fn every_change_has_its_own_first_line() {
    let heads: Vec<String> = [Change::Opened, Change::Widened, Change::Reopened]
        .into_iter()
        .map(|c| text::headline(&notice(c), Language::En))
        .collect();
    assert_eq!(
        heads,
        [
            "[CRITICAL] vendor alpha in every region fails",
            "[CRITICAL] widened: vendor alpha in every region fails",
            "[CRITICAL] reopened: vendor alpha in every region fails again",
        ]
    );
    let fail_open = Notice {
        decision: Some(Decision::Refused {
            refusal: Refusal::FailOpen,
            host: Some("cdn.shop.test".into()),
        }),
        ..notice(Change::Decided)
    };
    let head = text::headline(&fail_open, Language::En);
    assert_eq!(
        head,
        "[CRITICAL] vendor alpha in every region: fail-open, cdn.shop.test kept enabled"
    );
}

#[test]
fn a_probe_network_notice_is_about_our_probing_never_the_cdn_down() {
    for kind in ROBOTS {
        let en = shown(kind, &[probing()], 0, Language::En);
        assert!(
            en.contains(
                "[WARNING] our own probing, not the CDN: the probe network of cn-east fails"
            ),
            "{kind:?}: {en}"
        );
        assert!(en.contains("The CDN is not known to be down"), "{en}");
        assert!(!en.to_lowercase().contains("cdn down"), "{en}");
        let zh = shown(kind, &[probing()], 0, Language::ZhCn);
        assert!(
            zh.contains("【警告】我方探测问题（非 CDN 故障）：cn-east 的探测网络故障"),
            "{zh}"
        );
        assert!(zh.contains("不代表 CDN 故障"), "{zh}");
    }
}

#[test]
fn a_batch_is_one_message_listing_each_notice_and_the_folded_ones() {
    let notices = [notice(Change::Opened), notice(Change::Decided)];
    for kind in [
        ChannelKind::Dingtalk,
        ChannelKind::Wecom,
        ChannelKind::Slack,
    ] {
        let text = shown(kind, &notices, 5, Language::En);
        assert!(text.contains("every region fails"), "{text}");
        assert!(
            text.contains("every region: cdn.shop.test disabled"),
            "{text}"
        );
        assert!(text.ends_with("… (+5 more)"), "{kind:?}: {text}");
        let zh = shown(kind, &notices, 5, Language::ZhCn);
        assert!(zh.ends_with("…（另有 5 条）"), "{kind:?}: {zh}");
    }
    let v = json(&send(ChannelKind::Dingtalk, &notices, 5, Language::En));
    assert_eq!(v["markdown"]["title"], "[CRITICAL] 7 incident changes");
    let v = json(&send(ChannelKind::Feishu, &notices, 5, Language::ZhCn));
    assert_eq!(
        v["content"]["post"]["zh_cn"]["title"],
        "【严重】7 条故障变更"
    );
}

/// `n` notices on many hosts with Chinese text: far past every robot's limit.
fn storm(n: i64) -> Vec<Notice> {
    (0..n)
        .map(|i| Notice {
            incident: i,
            hosts: (0..30).map(|h| format!("主机-{h}.商店.test")).collect(),
            regions: (0..30).map(|r| format!("华东-{r}")).collect(),
            link: format!("https://watch.example/incidents/{i}"),
            ..notice(Change::Decided)
        })
        .collect()
}

/// The number in the closing "…（另有 N 条）".
fn left_out(text: &str) -> usize {
    let tail = text.rsplit("另有 ").next().unwrap();
    tail.trim_end_matches(" 条）").parse().unwrap()
}

#[test]
fn wecom_content_stays_within_4096_bytes_of_chinese_by_whole_notices() {
    let notices = storm(60);
    let text = shown(ChannelKind::Wecom, &notices, 3, Language::ZhCn);
    assert!(text.len() <= 4096, "{}", text.len());
    let listed = text.matches("【严重】").count();
    assert!(listed >= 2, "{text}");
    assert_eq!(listed + left_out(&text), 63, "{text}");
    // Ten hosts shown per notice, the rest counted.
    assert!(text.contains("（另有 20 个）"), "{text}");
}

#[test]
fn dingtalk_feishu_and_slack_stay_within_their_limits() {
    let notices = storm(400);
    let ding = shown(ChannelKind::Dingtalk, &notices, 0, Language::ZhCn);
    assert!(
        ding.len() <= 20_000 && ding.len() > 15_000,
        "{}",
        ding.len()
    );
    assert_eq!(ding.matches("#### 【严重】").count() + left_out(&ding), 400);
    let feishu = send(ChannelKind::Feishu, &notices, 0, Language::ZhCn);
    assert!(feishu.body.len() <= 20 * 1024, "{}", feishu.body.len());
    assert!(json(&feishu).to_string().contains("另有"));
    let slack = json(&send(ChannelKind::Slack, &notices, 0, Language::ZhCn));
    assert!(slack["text"].as_str().unwrap().chars().count() <= 40_000);
    let blocks = slack["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50, "{}", blocks.len());
    for b in &blocks[..blocks.len() - 1] {
        assert!(b["text"]["text"].as_str().unwrap().chars().count() <= 3_000);
    }
    let closing = blocks.last().unwrap()["elements"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(closing, "…（另有 352 条）");
}

mod wire;
