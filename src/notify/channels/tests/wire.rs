//! What goes on the wire: each robot's signature, the webhook's payload, how answers read,
//! the targets' redaction and the robots' rates.

use super::*;

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
