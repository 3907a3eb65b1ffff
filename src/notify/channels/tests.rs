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

#[test]
fn dingtalk_is_signed_in_the_query_with_its_own_construction() {
    let batch = Batch {
        notices: &[notice(Change::Opened)],
        folded: 0,
    };
    let now = Utc
        .timestamp_millis_opt(1_700_000_000_000)
        .single()
        .unwrap();
    let signed = request(
        &target(ChannelKind::Dingtalk, Some(SECRET)),
        &batch,
        Language::En,
        now,
    );
    // The vector was computed with Python's hmac and urllib (see sign.rs).
    assert_eq!(
        signed.url,
        "https://robot.example/send?access_token=tok&timestamp=1700000000000&sign=TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D"
    );
    let v = json(&signed);
    assert_eq!(v["msgtype"], "markdown");
    assert!(
        v["markdown"]["text"]
            .as_str()
            .unwrap()
            .starts_with("#### [CRITICAL]")
    );
    let plain = request(
        &target(ChannelKind::Dingtalk, None),
        &batch,
        Language::En,
        now,
    );
    assert_eq!(plain.url, "https://robot.example/send?access_token=tok");
    assert_eq!(plain.content_type, "application/json; charset=utf-8");
}

#[test]
fn feishu_is_signed_in_the_body_with_its_own_construction() {
    let batch = Batch {
        notices: &[notice(Change::Opened)],
        folded: 0,
    };
    let t = target(ChannelKind::Feishu, Some(SECRET));
    let signed = request(&t, &batch, Language::En, at(1_700_000_000));
    assert_eq!(signed.url, t.url, "Feishu's URL is left as it is");
    let v = json(&signed);
    assert_eq!(v["timestamp"], "1700000000");
    assert_eq!(v["sign"], "PiO7POLlSx/DM2qf8Dy/XCWeJK3exVnevp5G99LEN2M=");
    assert_eq!(v["msg_type"], "post");
    let post = &v["content"]["post"]["en_us"];
    assert_eq!(
        post["title"],
        "[CRITICAL] vendor alpha in every region fails"
    );
    let link = post["content"].as_array().unwrap().last().unwrap();
    assert_eq!(link[0]["tag"], "a");
    assert_eq!(link[0]["href"], "https://watch.example/incidents/12");
    let plain = json(&request(
        &target(ChannelKind::Feishu, None),
        &batch,
        Language::En,
        at(0),
    ));
    assert!(plain.get("sign").is_none() && plain.get("timestamp").is_none());
}

#[test]
fn slack_escapes_its_control_characters_and_links_the_page() {
    let n = Notice {
        hosts: vec!["a<b>&c".into()],
        ..notice(Change::Opened)
    };
    let v = json(&send(ChannelKind::Slack, &[n], 0, Language::En));
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("a&lt;b&gt;&amp;c"), "{text}");
    assert!(
        text.contains("<https://watch.example/incidents/12|Incident page>"),
        "{text}"
    );
    assert_eq!(v["blocks"][0]["type"], "section");
}

#[test]
fn the_webhook_is_alertmanagers_version_4_payload() {
    let notices = [notice(Change::Decided), notice(Change::Resolved)];
    let v = json(&send(ChannelKind::Webhook, &notices, 2, Language::En));
    assert_eq!(v["version"], "4");
    assert_eq!(v["status"], "firing");
    assert_eq!(v["receiver"], "cdnwatch");
    assert_eq!(v["groupKey"], "{}:{alertname=\"CdnwatchIncident\"}");
    assert_eq!(v["groupLabels"]["alertname"], "CdnwatchIncident");
    assert_eq!(v["truncatedAlerts"], 2);
    assert_eq!(v["externalURL"], "https://watch.example");
    assert_eq!(v["commonLabels"]["vendor"], "alpha");
    assert_eq!(
        v["commonAnnotations"]["dashboard"],
        "https://watch.example/incidents/12"
    );
    let firing = &v["alerts"][0];
    let labels = &firing["labels"];
    assert_eq!(labels["alertname"], "CdnwatchIncident");
    assert_eq!(labels["scope"], "vendor");
    // A label is an identity, not a list: many hosts or regions are counted (the annotations
    // list them); the class is the most frequent one's.
    assert_eq!(labels["host"], "2 hosts");
    assert_eq!(labels["region"], "2 regions");
    assert_eq!(labels["class"], "http_status");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["incident"], "12");
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(firing["startsAt"], "2023-11-14T22:13:20+00:00");
    assert_eq!(firing["annotations"]["version"], "12");
    assert_eq!(firing["annotations"]["change"], "decided");
    assert!(
        firing["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("[CRITICAL]")
    );
    assert_eq!(firing["generatorURL"], "https://watch.example/incidents/12");
    let resolved = &v["alerts"][1];
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["endsAt"], "2023-11-14T23:18:20+00:00");
    assert_eq!(
        resolved["fingerprint"], firing["fingerprint"],
        "one alert per incident"
    );
    let only_resolved = json(&send(ChannelKind::Webhook, &notices[1..], 0, Language::En));
    assert_eq!(only_resolved["status"], "resolved");
}

use ChannelKind::*;

#[test]
fn each_robots_success_is_delivered() {
    let delivered = [
        (Dingtalk, 200, r#"{"errcode":0,"errmsg":"ok"}"#),
        (Wecom, 200, r#"{"errcode":0,"errmsg":"ok"}"#),
        (Feishu, 200, r#"{"code":0,"msg":"success","data":{}}"#),
        (Feishu, 200, r#"{"StatusCode":0,"StatusMessage":"success"}"#),
        (Slack, 200, "ok"),
        (Webhook, 200, ""),
        (Alertmanager, 200, ""),
    ];
    for (kind, status, body) in delivered {
        assert_eq!(
            answer(kind, status, body.as_bytes()),
            Answer::Delivered,
            "{kind:?} {body}"
        );
    }
}

#[test]
fn each_robots_throttle_429_and_5xx_are_retried() {
    let retried = [
        (
            Dingtalk,
            200,
            r#"{"errcode":130101,"errmsg":"send too fast"}"#,
            Some(600),
        ),
        (
            Wecom,
            200,
            r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#,
            Some(60),
        ),
        (
            Feishu,
            200,
            r#"{"code":9499,"msg":"too many request"}"#,
            Some(10),
        ),
        (
            Feishu,
            200,
            r#"{"code":11232,"msg":"frequency limited"}"#,
            Some(10),
        ),
        (Slack, 429, "rate_limited", None),
        (Webhook, 503, "", None),
        (Dingtalk, 502, "bad gateway", None),
    ];
    for (kind, status, body, after) in retried {
        match answer(kind, status, body.as_bytes()) {
            Answer::Retry { after: a, why } => {
                assert_eq!(a, after.map(Duration::from_secs), "{kind:?} {body}");
                assert!(why.contains(&status.to_string()), "{why}");
            }
            other => panic!("{kind:?} {status} {body}: {other:?}"),
        }
    }
}

#[test]
fn a_bad_signature_token_or_request_is_refused_for_good() {
    let refused = [
        (
            Dingtalk,
            200,
            r#"{"errcode":310000,"errmsg":"sign not match"}"#,
        ),
        (
            Dingtalk,
            200,
            r#"{"errcode":300001,"errmsg":"token is not exist"}"#,
        ),
        (Feishu, 200, r#"{"code":19021,"msg":"sign match fail"}"#),
        (
            Wecom,
            200,
            r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#,
        ),
        (
            Wecom,
            200,
            r#"{"errcode":40058,"errmsg":"content exceed max length"}"#,
        ),
        (Slack, 400, "invalid_payload"),
        (Slack, 404, "no_service"),
        (Webhook, 400, "bad"),
        (Dingtalk, 200, "not json"),
    ];
    for (kind, status, body) in refused {
        assert!(
            matches!(
                answer(kind, status, body.as_bytes()),
                Answer::Refused { .. }
            ),
            "{kind:?} {status} {body}"
        );
    }
}

#[test]
fn a_retry_after_header_sets_the_wait_of_a_retry_only() {
    let retry = answer(ChannelKind::Slack, 429, b"rate_limited").with_retry_after(Some("3"));
    assert!(matches!(retry, Answer::Retry { after: Some(d), .. } if d == Duration::from_secs(3)));
    let ok = answer(ChannelKind::Slack, 200, b"ok").with_retry_after(Some("3"));
    assert_eq!(ok, Answer::Delivered);
}

#[test]
fn a_target_never_shows_its_url_or_secret() {
    let t = Target {
        kind: ChannelKind::Dingtalk,
        url: "https://oapi.dingtalk.com/robot/send?access_token=TOKEN123".into(),
        secret: Some("SECabc".into()),
    };
    let shown = format!("{t:?} {t:#?}");
    assert!(
        !shown.contains("TOKEN123") && !shown.contains("SECabc"),
        "{shown}"
    );
    assert!(shown.contains("Dingtalk"));
}

#[test]
fn rates_are_the_robots_published_limits() {
    let r = |k| rate(k);
    assert_eq!(r(ChannelKind::Dingtalk).per_minute, 20);
    assert_eq!(r(ChannelKind::Wecom).per_minute, 20);
    assert_eq!(
        r(ChannelKind::Feishu),
        Rate {
            per_minute: 100,
            per_second: Some(5)
        }
    );
    assert_eq!(r(ChannelKind::Slack).per_second, Some(1));
    assert!(r(ChannelKind::Webhook).per_minute >= 100);
}
